//! Streaming evaluation over frames, for training validation, pruning experiments and bag
//! replay: feed each frame with the model's boxes (LiDAR frame) and, optionally, its BEV
//! segmentation probabilities; `finish` gives the nuScenes detection metrics (ground truth
//! from the frames' annotations, see [`GroundTruthBuilder`]), the BEV mIoU, and the results
//! in the official JSON format (to save with [`DetectionResults::save`]).
//!
//! ```no_run
//! # use altermoma::metrics::{FrameEvaluator, DetectionConfig};
//! # fn f(frames: &[altermoma::data::Frame], boxes: &[Vec<altermoma::geometry::Box3D>]) -> anyhow::Result<()> {
//! let mut ev = FrameEvaluator::new(DetectionConfig::default());
//! for (frame, b) in frames.iter().zip(boxes) {
//!     ev.add_detections(frame, b)?;
//! }
//! let out = ev.finish()?;
//! println!("mAP {:.4} NDS {:.4}", out.detection.mean_ap(), out.detection.nd_score());
//! # Ok(()) }
//! ```

use super::bev_miou::{BevMiou, MiouResult};
use super::detection_config::DetectionConfig;
use super::ground_truth::{GroundTruth, GroundTruthBuilder};
use super::nuscenes::{evaluate_detections, DetectionMetrics};
use super::results_json::{DetectionResults, ResultsMeta, SampleResults};
use crate::data::{BevMap, Frame};
use crate::geometry::Box3D;
use anyhow::{bail, Result};

/// Accumulates frames; see the module documentation.
pub struct FrameEvaluator {
    cfg: DetectionConfig,
    gt: GroundTruthBuilder,
    results: DetectionResults,
    seg: Option<BevMiou>,
}

/// What [`FrameEvaluator::finish`] returns.
pub struct Evaluation {
    pub detection: DetectionMetrics,
    pub segmentation: Option<MiouResult>,
    pub ground_truth: GroundTruth,
    pub results: DetectionResults,
}

impl FrameEvaluator {
    pub fn new(cfg: DetectionConfig) -> Self {
        Self {
            cfg,
            gt: GroundTruthBuilder::new(),
            results: DetectionResults::new(ResultsMeta::camera_lidar()),
            seg: None,
        }
    }

    /// Set the results file's `meta` (default: camera + LiDAR).
    pub fn with_meta(mut self, meta: ResultsMeta) -> Self {
        self.results.meta = meta;
        self
    }

    /// Add one frame: its annotations become ground truth, `boxes` (LiDAR frame, any
    /// number; the highest `max_boxes_per_sample` scores are kept) its predictions.
    pub fn add_detections(&mut self, frame: &Frame, boxes: &[Box3D]) -> Result<()> {
        self.gt.add_frame(frame)?;
        let n = self.cfg.max_boxes_per_sample;
        self.results
            .samples
            .push(SampleResults::from_frame(frame, boxes, n));
        Ok(())
    }

    /// Add one sample's BEV segmentation: probabilities and ground truth as `[C, NX, NY]`
    /// tensors (C = the six map classes).
    pub fn add_segmentation(&mut self, probs: &tch::Tensor, gt: &tch::Tensor) -> Result<()> {
        self.seg
            .get_or_insert_with(BevMiou::map_classes)
            .update_tensor(probs, gt)
    }

    /// Add one sample's BEV segmentation against a frame's rasterised map (which must have
    /// the probabilities' grid size).
    pub fn add_segmentation_map(&mut self, probs: &tch::Tensor, map: &BevMap) -> Result<()> {
        let (nx, ny) = (map.grid.nx() as i64, map.grid.ny() as i64);
        let c = (map.data.len() as i64) / (nx * ny).max(1);
        if probs.size() != [c, nx, ny] {
            bail!(
                "segmentation probabilities {:?} do not match the map grid [{c}, {nx}, {ny}]",
                probs.size()
            );
        }
        let gt = tch::Tensor::from_slice(&map.data).view([c, nx, ny]);
        self.add_segmentation(probs, &gt)
    }

    /// Number of frames added.
    pub fn len(&self) -> usize {
        self.results.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.results.samples.is_empty()
    }

    /// Evaluate everything added.
    pub fn finish(self) -> Result<Evaluation> {
        let ground_truth = self.gt.finish();
        let detection = evaluate_detections(&ground_truth, &self.results, &self.cfg)?;
        Ok(Evaluation {
            detection,
            segmentation: self.seg.map(|s| s.finish()),
            ground_truth,
            results: self.results,
        })
    }
}
