//! Bag replay (issue #8): the node's per-frame pipeline over a recorded bag, with metrics
//! against the bag's ground truth, latency statistics and a report.
//!
//! - [`processor`]: [`FrameProcessor`], what replay needs from the pipeline;
//! - [`run`]: the replay loop (as fast as possible, or realtime with the node's drop
//!   policy), several pipelines side by side for `altermoma latency`;
//! - [`latency`]: per-stage percentiles;
//! - [`report`]: markdown, PNG histogram and timeline, JSON.
pub mod evaluation;
pub mod latency;
pub mod node_processor;
pub mod processor;
pub mod report;
pub mod run;
#[cfg(test)]
mod tests;

pub use latency::{LatencyStats, Percentiles};
pub use processor::{Fed, FrameProcessor, ProcessedFrame, STAGES};
pub use run::{replay, replay_many, FrameRecord, ReplayOptions, ReplayRun};
