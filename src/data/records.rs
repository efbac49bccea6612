//! Conversions between nuScenes records (global-frame boxes, poses as translation +
//! `[w, x, y, z]` quaternion) and [`crate::data::Frame`] contents (LiDAR-frame boxes,
//! isometries), shared by the synthetic world and the dataset reader so both produce the
//! same numbers from the same records. Velocity follows the devkit's `box_velocity`.

use crate::geometry::Box3D;
use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};

/// nuScenes visibility tokens (`visibility.json`) by level, and the bin each stands for.
pub const VISIBILITY_LEVELS: [(&str, &str, &str); 4] = [
    (
        "1",
        "v0-40",
        "visibility of whole object is between 0 and 40%",
    ),
    (
        "2",
        "v40-60",
        "visibility of whole object is between 40 and 60%",
    ),
    (
        "3",
        "v60-80",
        "visibility of whole object is between 60 and 80%",
    ),
    (
        "4",
        "v80-100",
        "visibility of whole object is between 80 and 100%",
    ),
];

/// The eight nuScenes attributes and their descriptions.
pub const ATTRIBUTES: [(&str, &str); 8] = [
    ("vehicle.moving", "Vehicle is moving."),
    (
        "vehicle.stopped",
        "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    ),
    (
        "vehicle.parked",
        "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    ),
    (
        "cycle.with_rider",
        "There is a rider on the bicycle or motorcycle.",
    ),
    (
        "cycle.without_rider",
        "There is NO rider on the bicycle or motorcycle.",
    ),
    (
        "pedestrian.sitting_lying_down",
        "The human is sitting or lying down.",
    ),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
];

/// Isometry of a record's translation and `[w, x, y, z]` rotation.
pub fn iso_from_record(translation: [f64; 3], rotation: [f64; 4]) -> Isometry3<f64> {
    let q = UnitQuaternion::from_quaternion(Quaternion::new(
        rotation[0],
        rotation[1],
        rotation[2],
        rotation[3],
    ));
    Isometry3::from_parts(
        Translation3::new(translation[0], translation[1], translation[2]),
        q,
    )
}

/// Record `[w, x, y, z]` of an isometry's rotation.
pub fn rotation_record(iso: &Isometry3<f64>) -> [f64; 4] {
    let q = iso.rotation.quaternion();
    [q.w, q.i, q.j, q.k]
}

/// A global-frame annotation as a box in the LiDAR frame. `velocity` is the global
/// ground-plane velocity (NaN when unknown); it is rotated like the box.
pub fn record_box_to_lidar(
    translation: [f64; 3],
    size: [f64; 3],
    rotation: [f64; 4],
    velocity: [f64; 2],
    label: usize,
    global_to_lidar: &Isometry3<f64>,
) -> Box3D {
    let b = Box3D {
        center: translation,
        size,
        yaw: Box3D::yaw_from_quaternion(rotation),
        velocity,
        label,
        score: 1.0,
    };
    b.transformed(global_to_lidar)
}

/// One annotation of an instance's chain, for [`devkit_velocity`].
#[derive(Clone, Copy, Debug)]
pub struct ChainPoint {
    pub translation: [f64; 3],
    /// Timestamp of the annotation's sample, microseconds.
    pub timestamp_us: i64,
}

/// The devkit's `NuScenes.box_velocity` (max_time_diff 1.5 s): centred difference over the
/// previous and next annotations of the instance, one-sided at the ends, NaN for a lone
/// annotation or when the annotations are too far apart in time. Returns (vx, vy, vz).
pub fn devkit_velocity(
    current: ChainPoint,
    prev: Option<ChainPoint>,
    next: Option<ChainPoint>,
) -> [f64; 3] {
    if prev.is_none() && next.is_none() {
        return [f64::NAN; 3];
    }
    let first = prev.unwrap_or(current);
    let last = next.unwrap_or(current);
    let time_last = 1e-6 * last.timestamp_us as f64;
    let time_first = 1e-6 * first.timestamp_us as f64;
    let time_diff = time_last - time_first;
    let mut max_time_diff = 1.5;
    if prev.is_some() && next.is_some() {
        max_time_diff *= 2.0;
    }
    if time_diff > max_time_diff {
        return [f64::NAN; 3];
    }
    [
        (last.translation[0] - first.translation[0]) / time_diff,
        (last.translation[1] - first.translation[1]) / time_diff,
        (last.translation[2] - first.translation[2]) / time_diff,
    ]
}

/// Visibility bin (1..=4) of a visible fraction.
pub fn visibility_bin(fraction: f64) -> u8 {
    if fraction <= 0.4 {
        1
    } else if fraction <= 0.6 {
        2
    } else if fraction <= 0.8 {
        3
    } else {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velocity_follows_the_devkit_rules() {
        let p = |x: f64, t: i64| ChainPoint {
            translation: [x, 0.0, 0.0],
            timestamp_us: t,
        };
        // Centred difference.
        let v = devkit_velocity(p(1.0, 500_000), Some(p(0.0, 0)), Some(p(3.0, 1_000_000)));
        assert!((v[0] - 3.0).abs() < 1e-12);
        // One-sided.
        let v = devkit_velocity(p(1.0, 500_000), Some(p(0.0, 0)), None);
        assert!((v[0] - 2.0).abs() < 1e-12);
        // Lone annotation, and a gap over 1.5 s one-sided.
        assert!(devkit_velocity(p(1.0, 0), None, None)[0].is_nan());
        assert!(devkit_velocity(p(1.0, 2_000_000), Some(p(0.0, 0)), None)[0].is_nan());
        // Centred allows up to 3 s.
        assert!(
            !devkit_velocity(p(1.0, 1_000_000), Some(p(0.0, 0)), Some(p(2.0, 2_900_000)))[0]
                .is_nan()
        );
        assert_eq!(visibility_bin(0.4), 1);
        assert_eq!(visibility_bin(0.95), 4);
    }

    #[test]
    fn record_boxes_move_into_the_lidar_frame() {
        let ego = iso_from_record(
            [10.0, 20.0, 0.0],
            [
                std::f64::consts::FRAC_1_SQRT_2,
                0.0,
                0.0,
                std::f64::consts::FRAC_1_SQRT_2,
            ],
        );
        let lidar_to_ego = iso_from_record([1.0, 0.0, 2.0], [1.0, 0.0, 0.0, 0.0]);
        let g2l = (ego * lidar_to_ego).inverse();
        // A box 5 m ahead of the LiDAR (ego faces +y globally), heading the same way.
        let yaw = std::f64::consts::FRAC_PI_2;
        let b = record_box_to_lidar(
            [10.0, 26.0, 1.0],
            [2.0, 4.0, 1.5],
            [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()],
            [0.0, 3.0],
            0,
            &g2l,
        );
        assert!(
            (b.center[0] - 5.0).abs() < 1e-9
                && b.center[1].abs() < 1e-9
                && (b.center[2] + 1.0).abs() < 1e-9,
            "{:?}",
            b.center
        );
        assert!(b.yaw.abs() < 1e-9 && (b.velocity[0] - 3.0).abs() < 1e-9);
        let r = rotation_record(&ego);
        assert!((r[0] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
    }
}
