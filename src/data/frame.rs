//! One frame of sensor data with its calibration and (optional) ground truth: the unit that
//! the synthetic world generates, the dataset readers return, the loader batches, and the
//! per-frame pipeline (node, `altermoma infer`, bag replay) consumes.
//!
//! Frames: the LiDAR frame is the reference of everything in a [`Frame`] (points, boxes, BEV
//! map, camera extrinsics). `lidar_to_ego` and `ego_to_global` place it in the world, which
//! the nuScenes metrics (global boxes, ego-distance filter) need.

use crate::geometry::{BevGrid, Box3D};
use nalgebra::{Isometry3, Matrix3};
use serde::{Deserialize, Serialize};

/// Floats per LiDAR point: x, y, z, intensity, ring (the nuScenes `.pcd.bin` layout).
pub const POINT_DIMS: usize = 5;

/// A LiDAR sweep in the LiDAR frame, `POINT_DIMS` floats per point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Points {
    pub data: Vec<f32>,
}

impl Points {
    pub fn len(&self) -> usize {
        self.data.len() / POINT_DIMS
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(POINT_DIMS)
    }
}

/// Pinhole camera calibration. The camera frame is the optical frame (z forward, x right,
/// y down); `cam_to_lidar` maps camera coordinates into the LiDAR frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraCalib {
    /// e.g. `CAM_FRONT`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub intrinsics: Matrix3<f64>,
    pub cam_to_lidar: Isometry3<f64>,
}

pub use super::shared_image::SharedImage;

/// One camera's image of the frame. `image` is None when the camera is missing (dropped,
/// too old, failed to decode): the model then masks it.
#[derive(Clone, Debug)]
pub struct CameraFrame {
    pub calib: CameraCalib,
    pub image: Option<SharedImage>,
    /// Capture time in microseconds.
    pub timestamp_us: i64,
}

/// Rasterised BEV map layers in the LiDAR frame: `MAP_CLASSES.len()` binary masks laid out
/// class-major as `[C, NX, NY]` (see [`BevGrid`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BevMap {
    pub grid: BevGrid,
    pub data: Vec<u8>,
}

/// One ground-truth object with the bookkeeping nuScenes keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Box in the LiDAR frame; velocity NaN where unknown (as in nuScenes).
    pub bbox: Box3D,
    /// Stable across the frames of a scene.
    pub instance_token: String,
    pub num_lidar_pts: u32,
    /// nuScenes attribute name, or empty.
    pub attribute: String,
    /// nuScenes visibility bin 1..=4 (0-40%, 40-60%, 60-80%, 80-100% visible in the cameras).
    pub visibility: u8,
}

/// Everything known about one frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// nuScenes sample token (unique per frame).
    pub token: String,
    pub scene_token: String,
    /// LiDAR capture time in microseconds.
    pub timestamp_us: i64,
    pub lidar_to_ego: Isometry3<f64>,
    pub ego_to_global: Isometry3<f64>,
    /// None when the LiDAR is missing.
    pub points: Option<Points>,
    pub cameras: Vec<CameraFrame>,
    /// Ground truth; empty for live data.
    pub annotations: Vec<Annotation>,
    pub map: Option<BevMap>,
}
