//! What each demo step produces (stored in its done-stamp, so a reused step hands its result
//! back without recomputing) and the assembled results the report is made of.

use crate::experiment::results::Accuracy;
use crate::model::Group;
use crate::pruning::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::steps::StepRecord;

/// `gen-data`: the two splits written in the nuScenes layout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataOut {
    pub train_frames: usize,
    pub test_frames: usize,
    pub train_annotations: usize,
    pub test_annotations: usize,
    pub megabytes: f64,
}

/// A training stage (`pretrain-camera`, `pretrain-lidar`, `train-fusion`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOut {
    pub steps: usize,
    pub final_loss: f64,
    /// Held-out accuracy under the stage's modality.
    pub acc: Accuracy,
}

/// `prune-<method>`: the pruned (not yet fine-tuned) model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneOut {
    pub method: Method,
    /// Achieved sparsity over the prunable weights, and per group.
    pub achieved: f64,
    pub groups: BTreeMap<Group, f64>,
    pub scoring_seconds: f64,
    /// Held-out accuracy right after pruning.
    pub acc_pruned: Accuracy,
}

/// `finetune-<method>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinetuneOut {
    pub steps: usize,
    /// Pruned weights found nonzero afterwards (0: the mask held).
    pub mask_violations: i64,
}

/// One model of the final comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRow {
    /// `dense`, `altermoma`, `snip`, ...
    pub name: String,
    /// Held-out accuracy.
    pub acc: Accuracy,
    /// Nonzero parameters (all trainable tensors).
    pub params: i64,
    /// GFLOPs per frame of the dense forward.
    pub gflops_dense: f64,
    /// GFLOPs per frame counting only multiply-accumulates with nonzero weights.
    pub gflops: f64,
    /// Sparsity over the prunable weights (0 for the dense model).
    pub sparsity: f64,
}

/// `evaluate`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalOut {
    /// Dense, AlterMOMA, baseline (after fine-tuning).
    pub rows: Vec<ModelRow>,
}

/// `gen-bag`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BagOut {
    pub frames: usize,
    pub messages: u64,
    pub megabytes: f64,
    pub duration_s: f64,
}

/// Latency of one model replayed through the node's pipeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyRow {
    pub name: String,
    pub frames: usize,
    /// Sum of the pipeline stages per frame (ms).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Network forward only (camera, LiDAR, fuse, heads), median (ms).
    pub network_p50_ms: f64,
    /// Accuracy of the replayed outputs against the bag's ground truth.
    pub map: f64,
    pub nds: f64,
    pub failed: usize,
}

/// `replay`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayOut {
    pub rows: Vec<LatencyRow>,
    pub device: String,
}

/// Everything the report shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoResults {
    pub name: String,
    pub command: String,
    pub config_source: String,
    pub sparsity: f64,
    pub baseline: Method,
    pub data: DataOut,
    pub camera: TrainOut,
    pub lidar: TrainOut,
    pub fusion: TrainOut,
    pub pruned: Vec<PruneOut>,
    pub eval: EvalOut,
    pub bag: BagOut,
    pub replay: ReplayOut,
    pub steps: Vec<StepRecord>,
    /// Wall time of this run (s).
    pub wall_s: f64,
}
