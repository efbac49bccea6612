//! The box the nuScenes detection evaluation works on (the devkit's `DetectionBox`), for
//! ground truth and predictions alike, in the global frame, and the per-pair quantities the
//! metrics use: centre distance, velocity error, scale IoU, yaw difference, attribute
//! accuracy. Each is computed with the devkit's formula and operation order.

use crate::classes::DETECTION_CLASSES;
use crate::geometry::Box3D;
use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};

/// The eight nuScenes attributes a detection may carry (the devkit's `ATTRIBUTE_NAMES`).
pub const ATTRIBUTE_NAMES: [&str; 8] = [
    "pedestrian.moving",
    "pedestrian.sitting_lying_down",
    "pedestrian.standing",
    "cycle.with_rider",
    "cycle.without_rider",
    "vehicle.moving",
    "vehicle.parked",
    "vehicle.stopped",
];

/// Index of an attribute name in [`ATTRIBUTE_NAMES`].
pub fn attribute_index(name: &str) -> Option<usize> {
    ATTRIBUTE_NAMES.iter().position(|a| *a == name)
}

/// One box of the evaluation, in the global frame.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionBox {
    /// Box centre, metres.
    pub translation: [f64; 3],
    /// width, length, height in metres (all > 0).
    pub size: [f64; 3],
    /// Orientation quaternion `[w, x, y, z]` (need not be normalised, must not be zero).
    pub rotation: [f64; 4],
    /// Ground-plane velocity (vx, vy) in m/s; NaN where unknown (ground truth only).
    pub velocity: [f64; 2],
    /// Index into [`crate::classes::DETECTION_CLASSES`].
    pub label: usize,
    /// Confidence in [0, 1]; -1 for ground truth.
    pub score: f64,
    /// Index into [`ATTRIBUTE_NAMES`]; None for the empty attribute.
    pub attribute: Option<usize>,
    /// LiDAR + radar points inside the box (ground truth); -1 for predictions.
    pub num_pts: i64,
}

impl DetectionBox {
    /// The nuScenes detection class name.
    pub fn detection_name(&self) -> &'static str {
        DETECTION_CLASSES[self.label]
    }

    /// The attribute name, or `""`.
    pub fn attribute_name(&self) -> &'static str {
        self.attribute.map(|a| ATTRIBUTE_NAMES[a]).unwrap_or("")
    }

    /// Yaw of [`Self::rotation`], as the devkit's `quaternion_yaw`.
    pub fn yaw(&self) -> f64 {
        quaternion_yaw(self.rotation)
    }

    /// Horizontal distance from the ego position (the devkit's `ego_dist` after
    /// `add_center_dist`, with the LIDAR_TOP sample_data's ego pose translation).
    pub fn ego_dist(&self, ego_translation: [f64; 3]) -> f64 {
        let ex = self.translation[0] - ego_translation[0];
        let ey = self.translation[1] - ego_translation[1];
        (ex * ex + ey * ey).sqrt()
    }

    /// A prediction (or ground-truth box) from a [`Box3D`] in the LiDAR frame, moved to the
    /// global frame with `lidar_to_ego` then `ego_to_global` (the usual
    /// `lidar_nusc_box_to_global`): the centre is transformed, the orientation quaternion is
    /// the full rotation composed with the box's yaw, and the velocity `(vx, vy, 0)` is
    /// rotated with it (its first two components are kept).
    pub fn from_lidar_box(
        b: &Box3D,
        lidar_to_ego: &Isometry3<f64>,
        ego_to_global: &Isometry3<f64>,
    ) -> DetectionBox {
        let iso = ego_to_global * lidar_to_ego;
        let c = iso * Point3::new(b.center[0], b.center[1], b.center[2]);
        let q = iso.rotation * UnitQuaternion::from_axis_angle(&Vector3::z_axis(), b.yaw);
        let v = iso.rotation * Vector3::new(b.velocity[0], b.velocity[1], 0.0);
        DetectionBox {
            translation: [c.x, c.y, c.z],
            size: b.size,
            rotation: [q.w, q.i, q.j, q.k],
            velocity: [v.x, v.y],
            label: b.label,
            score: b.score,
            attribute: None,
            num_pts: -1,
        }
    }
}

/// The conventional attribute of a predicted box when the model predicts none: vehicles and
/// cycles moving faster than 0.2 m/s are `vehicle.moving` / `cycle.with_rider`, otherwise
/// each class gets its most common nuScenes attribute (pedestrians `pedestrian.moving`,
/// barriers and cones none). This is the rule the common nuScenes result exporters use.
pub fn default_attribute(label: usize, velocity: [f64; 2]) -> Option<usize> {
    let speed = (velocity[0] * velocity[0] + velocity[1] * velocity[1]).sqrt();
    let moving = speed > 0.2;
    let name = match DETECTION_CLASSES[label] {
        "car" | "construction_vehicle" | "truck" | "trailer" => {
            if moving {
                "vehicle.moving"
            } else {
                "vehicle.parked"
            }
        }
        "bus" => "vehicle.moving",
        "bicycle" | "motorcycle" => {
            if moving {
                "cycle.with_rider"
            } else {
                "cycle.without_rider"
            }
        }
        "pedestrian" => "pedestrian.moving",
        _ => return None,
    };
    attribute_index(name)
}

/// The 3x3 rotation matrix of a quaternion `[w, x, y, z]` after normalising it (as
/// pyquaternion does; a zero quaternion gives the zero matrix).
pub fn rotation_matrix(q: [f64; 4]) -> [[f64; 3]; 3] {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    let [w, x, y, z] = if n > 0.0 {
        [q[0] / n, q[1] / n, q[2] / n, q[3] / n]
    } else {
        q
    };
    [
        [
            w * w + x * x - y * y - z * z,
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            w * w - x * x + y * y - z * z,
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            w * w - x * x - y * y + z * z,
        ],
    ]
}

/// The devkit's `quaternion_yaw`: the angle of the rotated x axis in the ground plane.
pub fn quaternion_yaw(q: [f64; 4]) -> f64 {
    let r = rotation_matrix(q);
    r[1][0].atan2(r[0][0])
}

/// The devkit's `angle_diff`: signed smallest difference from `y` to `x` for a period.
pub fn angle_diff(x: f64, y: f64, period: f64) -> f64 {
    let mut diff = super::numpy_compat::py_mod(x - y + period / 2.0, period) - period / 2.0;
    if diff > std::f64::consts::PI {
        diff -= 2.0 * std::f64::consts::PI;
    }
    diff
}

/// Centre distance in the ground plane (the matching criterion and ATE).
#[inline]
pub fn center_distance(gt: &DetectionBox, pred: &DetectionBox) -> f64 {
    let dx = pred.translation[0] - gt.translation[0];
    let dy = pred.translation[1] - gt.translation[1];
    (dx * dx + dy * dy).sqrt()
}

/// L2 velocity error; NaN when either velocity is NaN.
#[inline]
pub fn velocity_l2(gt: &DetectionBox, pred: &DetectionBox) -> f64 {
    let dx = pred.velocity[0] - gt.velocity[0];
    let dy = pred.velocity[1] - gt.velocity[1];
    (dx * dx + dy * dy).sqrt()
}

/// IoU of the two boxes after aligning centres and orientation (sizes only).
#[inline]
pub fn scale_iou(gt: &DetectionBox, pred: &DetectionBox) -> f64 {
    let a = gt.size;
    let b = pred.size;
    let inter = a[0].min(b[0]) * a[1].min(b[1]) * a[2].min(b[2]);
    let va = a[0] * a[1] * a[2];
    let vb = b[0] * b[1] * b[2];
    let union = va + vb - inter;
    inter / union
}

/// Absolute yaw difference for precomputed yaws.
#[inline]
pub fn yaw_diff(yaw_gt: f64, yaw_pred: f64, period: f64) -> f64 {
    angle_diff(yaw_gt, yaw_pred, period).abs()
}

/// Attribute accuracy: NaN when the ground truth has no attribute, else 1 or 0.
#[inline]
pub fn attr_acc(gt: &DetectionBox, pred: &DetectionBox) -> f64 {
    match gt.attribute {
        None => f64::NAN,
        Some(a) => {
            if pred.attribute == Some(a) {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// An oriented 3D box used only as a region (e.g. a `static_object.bicycle_rack`).
#[derive(Clone, Debug, PartialEq)]
pub struct RegionBox {
    pub translation: [f64; 3],
    /// width, length, height.
    pub size: [f64; 3],
    /// `[w, x, y, z]`.
    pub rotation: [f64; 4],
}

impl RegionBox {
    /// Whether a point lies inside the box, boundary included (the devkit's `points_in_box`
    /// with the same reference corner and axes).
    pub fn contains(&self, p: [f64; 3]) -> bool {
        let r = rotation_matrix(self.rotation);
        let [w, l, h] = self.size;
        let corner = |sx: f64, sy: f64, sz: f64| -> [f64; 3] {
            let local = [l / 2.0 * sx, w / 2.0 * sy, h / 2.0 * sz];
            let mut out = [0.0; 3];
            for (k, o) in out.iter_mut().enumerate() {
                *o = r[k][0] * local[0]
                    + r[k][1] * local[1]
                    + r[k][2] * local[2]
                    + self.translation[k];
            }
            out
        };
        // devkit corner order: 0 = (+,+,+), 1 = (+,-,+), 3 = (+,+,-), 4 = (-,+,+)
        let p1 = corner(1.0, 1.0, 1.0);
        let px = corner(-1.0, 1.0, 1.0);
        let py = corner(1.0, -1.0, 1.0);
        let pz = corner(1.0, 1.0, -1.0);
        let sub = |a: [f64; 3], b: [f64; 3]| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        let v = sub(p, p1);
        [sub(px, p1), sub(py, p1), sub(pz, p1)].iter().all(|&axis| {
            let d = dot(axis, v);
            0.0 <= d && d <= dot(axis, axis)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, PI};

    fn b(t: [f64; 3], yaw: f64) -> DetectionBox {
        DetectionBox {
            translation: t,
            size: [2.0, 4.0, 1.5],
            rotation: [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()],
            velocity: [1.0, 0.0],
            label: 0,
            score: 0.5,
            attribute: None,
            num_pts: -1,
        }
    }

    #[test]
    fn yaw_and_angle_rules() {
        assert!((b([0.0; 3], 1.0).yaw() - 1.0).abs() < 1e-12);
        // a scaled quaternion has the same yaw
        let mut x = b([0.0; 3], -2.0);
        x.rotation.iter_mut().for_each(|v| *v *= 3.0);
        assert!((x.yaw() + 2.0).abs() < 1e-12);
        assert!((yaw_diff(0.1, 0.1 + PI, 2.0 * PI) - PI).abs() < 1e-12);
        assert!(yaw_diff(0.1, 0.1 + PI, PI) < 1e-12);
        assert!((yaw_diff(3.0, -3.0, 2.0 * PI) - (2.0 * PI - 6.0)).abs() < 1e-12);
    }

    #[test]
    fn pair_metrics() {
        let g = b([0.0, 0.0, 0.0], 0.0);
        let mut p = b([3.0, 4.0, 9.0], 0.0);
        assert_eq!(center_distance(&g, &p), 5.0);
        p.size = [1.0, 4.0, 1.5];
        assert!((scale_iou(&g, &p) - 0.5).abs() < 1e-12);
        p.velocity = [f64::NAN, 0.0];
        assert!(velocity_l2(&g, &p).is_nan());
        assert!(attr_acc(&g, &p).is_nan());
    }

    #[test]
    fn region_contains_rotated() {
        let r = RegionBox {
            translation: [10.0, 0.0, 0.0],
            size: [1.0, 4.0, 2.0],
            rotation: [(FRAC_PI_2 / 2.0).cos(), 0.0, 0.0, (FRAC_PI_2 / 2.0).sin()],
        };
        // length (4 m) now along y
        assert!(r.contains([10.0, 1.9, 0.0]));
        assert!(!r.contains([11.9, 0.0, 0.0]));
        assert!(r.contains([10.5, 0.0, 1.0]));
    }

    #[test]
    fn lidar_box_to_global() {
        let bx = Box3D {
            center: [1.0, 0.0, 0.0],
            size: [1.0, 2.0, 3.0],
            yaw: 0.0,
            velocity: [1.0, 0.0],
            label: 3,
            score: 0.7,
        };
        let l2e = Isometry3::new(Vector3::new(0.0, 0.0, 1.0), Vector3::zeros());
        let e2g = Isometry3::new(
            Vector3::new(100.0, 50.0, 0.0),
            Vector3::new(0.0, 0.0, FRAC_PI_2),
        );
        let d = DetectionBox::from_lidar_box(&bx, &l2e, &e2g);
        assert!(
            (d.translation[0] - 100.0).abs() < 1e-12 && (d.translation[1] - 51.0).abs() < 1e-12
        );
        assert!((d.translation[2] - 1.0).abs() < 1e-12);
        assert!((d.yaw() - FRAC_PI_2).abs() < 1e-12);
        assert!(d.velocity[0].abs() < 1e-12 && (d.velocity[1] - 1.0).abs() < 1e-12);
        assert_eq!(d.detection_name(), "bus");
    }
}
