//! What one frame of live (or replayed, or dataset) sensor data looks like to the pipeline.
//!
//! A [`FrameInput`] is built by the ROS node from messages (`crate::ros::frame`), by bag
//! replay from decoded messages, and by `altermoma infer` from a dataset [`Frame`]. All three
//! then call the same [`crate::pipeline::FramePipeline::run`], so the same bytes in give the
//! same detections out.

use crate::data::{CameraCalib, CameraFrame, Frame, Points, SharedImage, POINT_DIMS};
use nalgebra::{Isometry3, Matrix3, Translation3, UnitQuaternion};

/// One camera's contribution to a frame: the image (shared, not copied, in the layout it
/// arrived in; it reads as RGB) with its calibration.
#[derive(Clone, Debug)]
pub struct CameraImage {
    pub image: SharedImage,
    pub calib: CameraCalib,
    /// Capture time (header stamp) in nanoseconds since the epoch.
    pub stamp_ns: i64,
}

/// One frame of sensor data, in the LiDAR frame.
#[derive(Clone, Debug)]
pub struct FrameInput {
    /// Stamp of the frame (the LiDAR cloud's header stamp; the newest image's in camera-only
    /// mode) in nanoseconds since the epoch. Outputs carry it unchanged.
    pub stamp_ns: i64,
    /// Frame id of the outputs (the LiDAR cloud's header frame id).
    pub frame_id: String,
    /// LiDAR points, [`POINT_DIMS`] floats each: x, y, z, intensity, ring (ring 0 when the
    /// source has none). None when the LiDAR is missing.
    pub points: Option<Points>,
    /// One entry per configured camera, in the model's camera order; None masks that camera
    /// (no image, too old, undecodable, no calibration).
    pub cameras: Vec<Option<CameraImage>>,
    /// Names of the configured cameras (same length as `cameras`), so that a masked camera is
    /// still known by name.
    pub camera_names: Vec<String>,
}

impl FrameInput {
    /// The sensor data of a dataset frame (ground truth is not part of the input). Cameras
    /// without an image become None.
    pub fn from_frame(frame: &Frame, frame_id: &str) -> FrameInput {
        FrameInput {
            stamp_ns: frame.timestamp_us.saturating_mul(1000),
            frame_id: frame_id.to_string(),
            points: frame.points.clone(),
            cameras: frame
                .cameras
                .iter()
                .map(|c| {
                    c.image.as_ref().map(|img| CameraImage {
                        image: img.clone(),
                        calib: c.calib.clone(),
                        stamp_ns: c.timestamp_us.saturating_mul(1000),
                    })
                })
                .collect(),
            camera_names: frame.cameras.iter().map(|c| c.calib.name.clone()).collect(),
        }
    }

    /// Number of LiDAR points (0 when the LiDAR is missing).
    pub fn num_points(&self) -> usize {
        self.points.as_ref().map_or(0, |p| p.len())
    }

    /// Number of cameras with an image.
    pub fn num_cameras_present(&self) -> usize {
        self.cameras.iter().filter(|c| c.is_some()).count()
    }

    /// The frame as the model's batching code wants it: a [`Frame`] without ground truth.
    /// Masked cameras keep their slot with `image: None` and the calibration in
    /// `fallback_calibs` (the last one seen for that camera, or a neutral pinhole), so that
    /// no NaN or degenerate matrix ever reaches the model.
    pub fn to_frame(&self, fallback_calibs: &[CameraCalib]) -> Frame {
        self.clone().into_frame(fallback_calibs)
    }

    /// [`Self::to_frame`] without copying points or images.
    pub fn into_frame(self, fallback_calibs: &[CameraCalib]) -> Frame {
        let stamp_us = self.stamp_ns / 1000;
        let names = self.camera_names;
        let cameras = self
            .cameras
            .into_iter()
            .enumerate()
            .map(|(i, c)| match c {
                Some(c) => CameraFrame { calib: c.calib, image: Some(c.image), timestamp_us: c.stamp_ns / 1000 },
                None => CameraFrame {
                    calib: fallback_calibs
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| neutral_calib(names.get(i).map(String::as_str).unwrap_or("camera"))),
                    image: None,
                    timestamp_us: stamp_us,
                },
            })
            .collect();
        Frame {
            token: format!("live-{}", self.stamp_ns),
            scene_token: String::new(),
            timestamp_us: stamp_us,
            lidar_to_ego: Isometry3::identity(),
            ego_to_global: Isometry3::identity(),
            points: self.points,
            cameras,
            annotations: Vec::new(),
            map: None,
        }
    }
}

/// [`neutral_calib`] for images of `width` x `height` (same field of view).
pub fn neutral_calib_sized(name: &str, width: u32, height: u32) -> CameraCalib {
    let mut c = neutral_calib(name);
    let (sx, sy) = (width as f64 / c.width as f64, height as f64 / c.height as f64);
    c.intrinsics[(0, 0)] *= sx;
    c.intrinsics[(0, 2)] *= sx;
    c.intrinsics[(1, 1)] *= sy;
    c.intrinsics[(1, 2)] *= sy;
    c.width = width;
    c.height = height;
    c
}

/// A finite, well-conditioned stand-in calibration for a camera slot that has no image (the
/// model masks the slot; the numbers only have to be harmless): 1600x900, f = 1266 px,
/// looking along +x of the LiDAR frame.
pub fn neutral_calib(name: &str) -> CameraCalib {
    // optical frame (z forward, x right, y down) -> LiDAR frame (x forward, y left, z up)
    let r = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    let rot = UnitQuaternion::from_matrix(&r);
    CameraCalib {
        name: name.to_string(),
        width: 1600,
        height: 900,
        intrinsics: Matrix3::new(1266.0, 0.0, 800.0, 0.0, 1266.0, 450.0, 0.0, 0.0, 1.0),
        cam_to_lidar: Isometry3::from_parts(Translation3::new(0.0, 0.0, 0.0), rot),
    }
}

/// Build [`Points`] from x, y, z, intensity, ring tuples.
pub fn points_from_rows(rows: &[[f32; POINT_DIMS]]) -> Points {
    Points { data: rows.iter().flatten().copied().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_calibration_maps_optical_axis_forward() {
        let c = neutral_calib("CAM_X");
        let z_cam = nalgebra::Vector3::new(0.0, 0.0, 1.0);
        let v = c.cam_to_lidar.rotation * z_cam;
        assert!((v.x - 1.0).abs() < 1e-9 && v.y.abs() < 1e-9 && v.z.abs() < 1e-9, "{v:?}");
        let y_cam = nalgebra::Vector3::new(0.0, 1.0, 0.0); // down
        let v = c.cam_to_lidar.rotation * y_cam;
        assert!((v.z + 1.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn masked_cameras_keep_their_slot_and_a_finite_calibration() {
        let input = FrameInput {
            stamp_ns: 1_500_000_000_123_456_789,
            frame_id: "lidar_top".into(),
            points: Some(points_from_rows(&[[1.0, 2.0, 3.0, 4.0, 0.0]])),
            cameras: vec![None, None],
            camera_names: vec!["CAM_FRONT".into(), "CAM_BACK".into()],
        };
        let f = input.to_frame(&[]);
        assert_eq!(f.cameras.len(), 2);
        assert_eq!(f.cameras[1].calib.name, "CAM_BACK");
        assert!(f.cameras.iter().all(|c| c.image.is_none()));
        assert!(f.cameras[0].calib.intrinsics.iter().all(|v| v.is_finite()));
        assert_eq!(f.timestamp_us, 1_500_000_000_123_456);
        assert_eq!(f.points.unwrap().len(), 1);
    }
}
