//! Deterministic synthetic [`FrameInput`]s: a ground ring plus box-shaped point clusters and
//! textured camera images. Used for warm-up, by the node's tests and by `altermoma bench
//! node` when no dataset is given. (Realistic scenes come from `altermoma gen-data`.)

use super::frame_input::{neutral_calib, CameraImage, FrameInput};
use crate::data::{CameraCalib, Points, POINT_DIMS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Shape of the synthetic frames.
#[derive(Clone, Debug)]
pub struct SyntheticSpec {
    pub num_ground_points: usize,
    pub num_objects: usize,
    pub points_per_object: usize,
    pub image_width: u32,
    pub image_height: u32,
    /// Intensities are whole numbers in 0..=255 (exact in any integer field type).
    pub integer_intensity: bool,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            num_ground_points: 3000,
            num_objects: 6,
            points_per_object: 60,
            image_width: 64,
            image_height: 36,
            integer_intensity: true,
        }
    }
}

/// Frame `index` of a synthetic sequence: objects drift with the index so consecutive frames
/// differ. `calibs` give the camera rig (names, sizes, extrinsics); their sizes are replaced
/// by the spec's image size.
pub fn synthetic_input(
    spec: &SyntheticSpec,
    calibs: &[CameraCalib],
    index: u64,
    stamp_ns: i64,
    frame_id: &str,
) -> FrameInput {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed ^ index);
    let mut data =
        Vec::with_capacity((spec.num_ground_points + spec.num_objects * spec.points_per_object) * POINT_DIMS);
    let intensity = |rng: &mut ChaCha8Rng| {
        let v: f32 = rng.random_range(0.0..255.0);
        if spec.integer_intensity {
            v.floor()
        } else {
            v
        }
    };
    for k in 0..spec.num_ground_points {
        let a: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let r: f32 = rng.random_range(3.0..50.0);
        let i = intensity(&mut rng);
        data.extend_from_slice(&[r * a.cos(), r * a.sin(), -1.8 + rng.random_range(-0.05..0.05), i, (k % 32) as f32]);
    }
    for o in 0..spec.num_objects {
        let a = o as f32 * 1.1 + index as f32 * 0.02;
        let r = 8.0 + 5.0 * o as f32;
        let (cx, cy) = (r * a.cos(), r * a.sin());
        for k in 0..spec.points_per_object {
            let i = intensity(&mut rng);
            data.extend_from_slice(&[
                cx + rng.random_range(-2.0..2.0),
                cy + rng.random_range(-0.9..0.9),
                -1.0 + rng.random_range(0.0..1.5),
                i,
                (k % 32) as f32,
            ]);
        }
    }
    let cameras = calibs
        .iter()
        .enumerate()
        .map(|(c, calib)| {
            let mut calib = calib.clone();
            let (w, h) = (spec.image_width, spec.image_height);
            let sx = w as f64 / calib.width as f64;
            let sy = h as f64 / calib.height as f64;
            calib.intrinsics[(0, 0)] *= sx;
            calib.intrinsics[(0, 2)] *= sx;
            calib.intrinsics[(1, 1)] *= sy;
            calib.intrinsics[(1, 2)] *= sy;
            calib.width = w;
            calib.height = h;
            let phase = (index as u32 * 7 + c as u32 * 31) % 256;
            let image = image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([
                    ((x * 4 + phase) % 256) as u8,
                    ((y * 6 + phase / 2) % 256) as u8,
                    ((x + y + c as u32 * 50) % 256) as u8,
                ])
            });
            Some(CameraImage { image: crate::data::share(image), calib, stamp_ns })
        })
        .collect();
    FrameInput {
        stamp_ns,
        frame_id: frame_id.to_string(),
        points: Some(Points { data }),
        cameras,
        camera_names: calibs.iter().map(|c| c.name.clone()).collect(),
    }
}

/// A ring of `n` cameras around the LiDAR (neutral intrinsics, yaw 360/n apart).
pub fn ring_rig(names: &[&str]) -> Vec<CameraCalib> {
    use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut c = neutral_calib(n);
            let yaw = i as f64 * std::f64::consts::TAU / names.len() as f64;
            let rz = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw);
            c.cam_to_lidar = Isometry3::from_parts(
                Translation3::new(0.6 * yaw.cos(), 0.6 * yaw.sin(), -0.3),
                rz * c.cam_to_lidar.rotation,
            );
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_deterministic_and_differ_by_index() {
        let rig = ring_rig(&["A", "B"]);
        let s = SyntheticSpec::default();
        let a = synthetic_input(&s, &rig, 3, 10, "l");
        let b = synthetic_input(&s, &rig, 3, 10, "l");
        let c = synthetic_input(&s, &rig, 4, 10, "l");
        assert_eq!(a.points, b.points);
        assert_ne!(a.points, c.points);
        assert_eq!(a.cameras[1].as_ref().unwrap().image, b.cameras[1].as_ref().unwrap().image);
        assert_eq!(a.cameras[0].as_ref().unwrap().calib.width, 64);
        assert!(a.points.unwrap().iter().all(|p| p[3].fract() == 0.0));
    }
}
