//! The learned part of the per-frame pipeline, behind a small trait so that the pipeline's
//! bookkeeping (input checks, modality choice, thresholds, timings) is the same whatever
//! network runs.

use super::output::StageTimings;
use crate::data::Frame;
use crate::geometry::{BevGrid, Box3D};
use crate::model::ModalityMask;

/// Static facts about a loaded network.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkInfo {
    /// Human-readable description (model config name, checkpoint kind, sparsity).
    pub name: String,
    /// Where it runs (`cpu (2 threads)`, `cuda:0 fp16`).
    pub device: String,
    /// Number of camera slots the network requires per frame (None: any rig size).
    pub num_cameras: Option<usize>,
    /// BEV grid of the segmentation output (None without a segmentation head).
    pub seg_grid: Option<BevGrid>,
    /// Maximum number of LiDAR points the network accepts per frame (None: unbounded).
    pub max_points: Option<usize>,
    /// Image size (width, height) the network works at, when it has one (warm-up frames use
    /// it).
    pub input_size: Option<(u32, u32)>,
}

/// Raw network output of one frame, before the pipeline's thresholds.
#[derive(Clone, Debug, Default)]
pub struct NetworkOutput {
    /// Decoded boxes in the LiDAR frame (any order, any score).
    pub boxes: Vec<Box3D>,
    /// Segmentation probabilities `[C, NX, NY]` on [`NetworkInfo::seg_grid`], when present.
    pub seg_probs: Option<Vec<f32>>,
}

/// A network the pipeline can run. Not `Send`: libtorch models stay on the thread that
/// loaded them (the node builds its pipeline on the inference thread).
pub trait Network {
    fn info(&self) -> NetworkInfo;

    /// Run one frame with the given modality mask. Implementations time their stages into
    /// `timings.voxelize`, `camera`, `lidar`, `fuse`, `heads` and `postprocess` (box decoding);
    /// the pipeline adds its own post-processing time.
    fn infer(&mut self, frame: &Frame, mask: ModalityMask, timings: &mut StageTimings)
        -> anyhow::Result<NetworkOutput>;
}
