//! The seam between the replay loop and the per-frame pipeline: [`FrameProcessor`] is fed
//! the bag's messages in recorded order (with the simulated arrival time) and runs the
//! frames they trigger. The node's implementation ([`super::node_processor`]) is the
//! node's own synchroniser, conversions and `FramePipeline`, so replay runs exactly what the
//! car runs.

use crate::bag::messages::Decoded;
use crate::geometry::Box3D;
use crate::pipeline::StageTimings;
use anyhow::Result;
use r2r::altermoma_msgs::msg::{BevSegmentation, Detection3DArray};
use std::time::Instant;

/// Names of the pipeline stages, in `ProcessingTime.stage_names` order.
pub const STAGES: [&str; StageTimings::COUNT] = StageTimings::NAMES;

/// What a message did to the processor.
pub enum Fed<J> {
    /// Not a topic the pipeline uses.
    Ignored,
    /// Taken (an image, a CameraInfo, a calibration).
    Taken,
    /// A frame is ready to run (a LiDAR cloud arrived).
    Frame(J),
    /// Rejected as the node would reject it (why, for the report).
    Rejected(String),
}

/// One processed frame.
#[derive(Clone, Debug)]
pub struct ProcessedFrame {
    /// The triggering cloud's stamp (ns) and frame id.
    pub stamp_ns: i64,
    pub frame_id: String,
    /// `fusion`, `lidar_only` or `camera_only`.
    pub mode: String,
    /// Detections in the LiDAR frame.
    pub boxes: Vec<Box3D>,
    /// The messages the node publishes for this frame.
    pub objects: Detection3DArray,
    pub segmentation: Option<BevSegmentation>,
    /// Segmentation probabilities `[C, NX, NY]` (for mIoU; the message quantises them).
    pub seg_probs: Option<Vec<f32>>,
    /// Milliseconds per stage, [`STAGES`] order.
    pub stages_ms: [f64; StageTimings::COUNT],
    pub masked_cameras: Vec<String>,
    pub warnings: Vec<String>,
}

impl ProcessedFrame {
    pub fn total_ms(&self) -> f64 {
        self.stages_ms.iter().sum()
    }
}

/// The per-frame pipeline as replay drives it.
pub trait FrameProcessor {
    /// A frame ready to run (the messages it needs, already assembled).
    type Job;
    /// Offer one decoded message of `topic`, arriving at `now` (simulated from its log time).
    fn on_message(&mut self, topic: &str, msg: &Decoded, now: Instant) -> Fed<Self::Job>;
    /// Timer tick at `now` (camera-only frames when the LiDAR is silent).
    fn on_tick(&mut self, _now: Instant) -> Option<Self::Job> {
        None
    }
    /// Stamp of a job's frame (ns).
    fn job_stamp(job: &Self::Job) -> i64;
    /// Run one frame.
    fn process(&mut self, job: Self::Job) -> Result<ProcessedFrame>;
    /// One line describing the model and device (for the report).
    fn describe(&self) -> String;
}
