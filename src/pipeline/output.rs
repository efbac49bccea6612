//! What the pipeline produces for one frame, and how long each stage took.

use crate::geometry::{BevGrid, Box3D};
use crate::model::ModalityMask;
use serde::{Deserialize, Serialize};

/// Wall time of each stage of one frame, in milliseconds.
///
/// `decode` (messages or files to [`crate::pipeline::FrameInput`]) and `publish` are filled
/// by the caller (node, replay, infer); the pipeline fills the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub decode: f64,
    pub voxelize: f64,
    pub camera: f64,
    pub lidar: f64,
    pub fuse: f64,
    pub heads: f64,
    pub postprocess: f64,
    pub publish: f64,
}

impl StageTimings {
    /// Stage names in message order (`ProcessingTime.stage_names`).
    pub const NAMES: [&'static str; 8] =
        ["decode", "voxelize", "camera", "lidar", "fuse", "heads", "postprocess", "publish"];

    /// The stages in [`Self::NAMES`] order.
    pub fn as_array(&self) -> [f64; 8] {
        [self.decode, self.voxelize, self.camera, self.lidar, self.fuse, self.heads, self.postprocess, self.publish]
    }

    /// Sum of all stages.
    pub fn total(&self) -> f64 {
        self.as_array().iter().sum()
    }

    /// The network forward: camera branch, LiDAR branch, fuser + decoder, heads.
    pub fn network(&self) -> f64 {
        self.camera + self.lidar + self.fuse + self.heads
    }

    /// Everything else: decode, voxelise, post-process, publish.
    pub fn outside_network(&self) -> f64 {
        self.total() - self.network()
    }
}

/// BEV map segmentation of one frame: per-class probabilities `[C, NX, NY]` (class-major,
/// see [`BevGrid`]) for [`crate::classes::MAP_CLASSES`].
#[derive(Clone, Debug, PartialEq)]
pub struct Segmentation {
    pub grid: BevGrid,
    pub class_names: Vec<String>,
    /// Per-class decision thresholds.
    pub thresholds: Vec<f32>,
    pub probs: Vec<f32>,
}

impl Segmentation {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    /// Probability of class `c` at cell `(i, j)`.
    pub fn prob(&self, c: usize, i: usize, j: usize) -> f32 {
        let (nx, ny) = (self.grid.nx(), self.grid.ny());
        self.probs[c * nx * ny + i * ny + j]
    }
}

/// Everything one frame produces.
#[derive(Clone, Debug)]
pub struct FrameOutput {
    /// Same as the input's.
    pub stamp_ns: i64,
    pub frame_id: String,
    /// Boxes in the input's (LiDAR) frame, best score first, after the score threshold and
    /// the max-detections cap.
    pub detections: Vec<Box3D>,
    /// None when the model has no segmentation head.
    pub segmentation: Option<Segmentation>,
    /// Which modalities ran.
    pub mode: ModalityMask,
    /// Names of the cameras that were masked in this frame.
    pub masked_cameras: Vec<String>,
    pub timings: StageTimings,
    /// Things worth a warning that did not stop the frame (cloud truncated to capacity,
    /// image size differing from its calibration, ...).
    pub warnings: Vec<String>,
}
