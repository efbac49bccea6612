//! Oriented 3D boxes with nuScenes conventions.
//!
//! Frame: right-handed, x forward, y left, z up. `size` is `[width, length, height]`
//! (nuScenes `wlh`): length lies along the heading, width across it. `yaw` is the heading
//! about +z in radians; `center` is the box centre (not the bottom).

use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Box3D {
    pub center: [f64; 3],
    /// width, length, height in metres.
    pub size: [f64; 3],
    pub yaw: f64,
    /// Ground-plane velocity (vx, vy) in m/s in the box's frame.
    pub velocity: [f64; 2],
    /// Index into [`crate::classes::DETECTION_CLASSES`].
    pub label: usize,
    /// Confidence; 1.0 for ground truth.
    pub score: f64,
}

impl Box3D {
    /// Heading as a unit quaternion `[w, x, y, z]` (rotation about +z).
    pub fn quaternion_wxyz(&self) -> [f64; 4] {
        let h = 0.5 * self.yaw;
        [h.cos(), 0.0, 0.0, h.sin()]
    }

    /// Yaw of a quaternion `[w, x, y, z]`, as the nuScenes devkit's `quaternion_yaw`:
    /// the angle of the rotated x axis projected on the ground plane.
    pub fn yaw_from_quaternion(q: [f64; 4]) -> f64 {
        let uq = UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(q[0], q[1], q[2], q[3]));
        let v = uq * Vector3::x();
        v.y.atan2(v.x)
    }

    /// The eight corners: bottom four counter-clockwise from front-left, then the top four.
    pub fn corners(&self) -> [[f64; 3]; 8] {
        let [w, l, h] = self.size;
        let (s, c) = self.yaw.sin_cos();
        let mut out = [[0.0; 3]; 8];
        let xs = [l / 2.0, -l / 2.0, -l / 2.0, l / 2.0];
        let ys = [w / 2.0, w / 2.0, -w / 2.0, -w / 2.0];
        for k in 0..8 {
            let (x, y) = (xs[k % 4], ys[k % 4]);
            let z = if k < 4 { -h / 2.0 } else { h / 2.0 };
            out[k] = [
                self.center[0] + c * x - s * y,
                self.center[1] + s * x + c * y,
                self.center[2] + z,
            ];
        }
        out
    }

    /// The four ground-plane corners (x, y), counter-clockwise.
    pub fn bev_corners(&self) -> [[f64; 2]; 4] {
        let c = self.corners();
        [
            [c[0][0], c[0][1]],
            [c[1][0], c[1][1]],
            [c[2][0], c[2][1]],
            [c[3][0], c[3][1]],
        ]
    }

    /// True when the point lies inside the box (boundary included).
    pub fn contains(&self, p: [f64; 3]) -> bool {
        let (s, c) = self.yaw.sin_cos();
        let dx = p[0] - self.center[0];
        let dy = p[1] - self.center[1];
        let lx = c * dx + s * dy;
        let ly = -s * dx + c * dy;
        let lz = p[2] - self.center[2];
        lx.abs() <= self.size[1] / 2.0
            && ly.abs() <= self.size[0] / 2.0
            && lz.abs() <= self.size[2] / 2.0
    }

    /// The same box expressed in another frame: `iso` maps this box's frame into the target
    /// frame. Yaw follows the rotated heading; velocity is rotated (no ego-motion added).
    pub fn transformed(&self, iso: &Isometry3<f64>) -> Box3D {
        let c = iso * Point3::new(self.center[0], self.center[1], self.center[2]);
        let heading = iso.rotation * Vector3::new(self.yaw.cos(), self.yaw.sin(), 0.0);
        let v = iso.rotation * Vector3::new(self.velocity[0], self.velocity[1], 0.0);
        Box3D {
            center: [c.x, c.y, c.z],
            size: self.size,
            yaw: heading.y.atan2(heading.x),
            velocity: [v.x, v.y],
            label: self.label,
            score: self.score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::FRAC_PI_2;

    fn unit_box(yaw: f64) -> Box3D {
        Box3D {
            center: [1.0, 2.0, 0.5],
            size: [2.0, 4.0, 1.0],
            yaw,
            velocity: [1.0, 0.0],
            label: 0,
            score: 1.0,
        }
    }

    #[test]
    fn quaternion_round_trip() {
        for yaw in [-3.0, -1.0, 0.0, 0.5, 3.1] {
            let b = unit_box(yaw);
            let y = Box3D::yaw_from_quaternion(b.quaternion_wxyz());
            assert!((y - yaw).abs() < 1e-12, "{y} vs {yaw}");
        }
    }

    #[test]
    fn corners_follow_length_along_heading() {
        let b = unit_box(FRAC_PI_2);
        let c = b.corners();
        // front-left corner: +l/2 along heading (+y), +w/2 to the left (-x)
        assert!(
            (c[0][0] - 0.0).abs() < 1e-12 && (c[0][1] - 4.0).abs() < 1e-12,
            "{:?}",
            c[0]
        );
        assert!(b.contains([1.0, 3.9, 0.5]));
        assert!(!b.contains([2.1, 2.0, 0.5]));
    }

    #[test]
    fn transform_rotates_heading_and_velocity() {
        let iso = Isometry3::new(
            Vector3::new(10.0, 0.0, 0.0),
            Vector3::new(0.0, 0.0, FRAC_PI_2),
        );
        let t = unit_box(0.0).transformed(&iso);
        assert!((t.center[0] - 8.0).abs() < 1e-12 && (t.center[1] - 1.0).abs() < 1e-12);
        assert!((t.yaw - FRAC_PI_2).abs() < 1e-12);
        assert!(t.velocity[0].abs() < 1e-12 && (t.velocity[1] - 1.0).abs() < 1e-12);
    }
}
