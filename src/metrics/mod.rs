//! nuScenes detection metrics (mAP, TP errors, NDS) and BEV map-segmentation mIoU (issue #5),
//! computed as the official nuscenes-devkit 1.2.0 and BEVFusion compute them.
//!
//! One concept per file:
//! - [`results_json`]: the official detection-results JSON (load with validation, save
//!   atomically) and the conversion of our LiDAR-frame boxes to global result boxes;
//! - [`ground_truth`]: ground truth from nuScenes-layout tables or from in-memory frames;
//! - [`detection_box`]: the evaluated box and the per-pair errors;
//! - [`filter`]: range, zero-point and bicycle-rack filters;
//! - [`detection_config`]: the evaluation settings (`detection_cvpr_2019`);
//! - [`nuscenes`]: matching, AP, TP errors, mAP, NDS;
//! - [`evaluator`]: streaming evaluation over frames;
//! - [`bev_miou`]: BEV map-segmentation IoU accumulator;
//! - [`report`]: markdown table and PR-curve PNGs;
//! - [`numpy_compat`], [`ordered_json`]: numpy numerics and ordered JSON objects the devkit
//!   relies on;
//! - [`random_cases`]: randomised boxes and nuScenes-layout tables for tests and benchmarks.
//!
//! In memory (training validation, pruning experiments, bag replay): [`FrameEvaluator`]
//! takes frames with the model's LiDAR-frame boxes (and BEV probabilities) and returns the
//! metrics; [`evaluate_detections`] takes a [`GroundTruth`] and [`DetectionResults`].
pub mod bev_miou;
pub mod detection_box;
pub mod detection_config;
pub mod evaluator;
pub mod filter;
pub mod ground_truth;
pub mod numpy_compat;
pub mod nuscenes;
pub mod ordered_json;
pub mod random_cases;
pub mod report;
pub mod results_json;

pub use bev_miou::{BevMiou, MiouResult};
pub use detection_box::DetectionBox;
pub use detection_config::DetectionConfig;
pub use evaluator::{Evaluation, FrameEvaluator};
pub use ground_truth::{GroundTruth, GroundTruthBuilder, GtSample, Split};
pub use nuscenes::{
    evaluate_detections, evaluate_filtered, DetectionMetrics, MetricData, SampleBoxes,
};
pub use results_json::{DetectionResults, ResultsMeta, SampleResults};
