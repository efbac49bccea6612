//! The per-frame pipeline shared by the ROS node, `altermoma infer` and bag replay.
//!
//! - [`bevfusion_network`]: the BEVFusion model as a [`Network`], stage by stage;
//! - [`loader`]: a pipeline from a checkpoint file (device, FP16, threads);
//! - [`frame_input`]: [`FrameInput`], one frame of sensor data (LiDAR points, camera images
//!   with calibration) however it was obtained;
//! - [`frame_pipeline`]: [`FramePipeline`], checks the input, chooses the modality mask,
//!   runs the network, thresholds and times everything;
//! - [`latest_slot`]: [`LatestSlot`], hand the newest frame to a busy consumer, count drops;
//! - [`network`]: the [`Network`] trait the pipeline runs;
//! - [`output`]: [`FrameOutput`] and [`StageTimings`];
//! - [`stand_in`]: a non-learned network for tests of the machinery around the model;
//! - [`synthetic_input`]: deterministic synthetic frames (warm-up, tests, bench).
pub mod bevfusion_network;
pub mod frame_input;
pub mod frame_pipeline;
pub mod latest_slot;
pub mod loader;
pub mod network;
pub mod output;
pub mod stand_in;
pub mod synthetic_input;

pub use frame_input::{CameraImage, FrameInput};
pub use frame_pipeline::{FramePipeline, PipelineOptions};
pub use latest_slot::LatestSlot;
pub use network::{Network, NetworkInfo, NetworkOutput};
pub use output::{FrameOutput, Segmentation, StageTimings};
