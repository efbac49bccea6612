//! What the pipeline produces for one frame, and how long each stage took.

use crate::geometry::{BevGrid, Box3D};
use crate::model::ModalityMask;
use serde::{Deserialize, Serialize};

/// Time of each stage of one frame, in milliseconds.
///
/// `receive` (the node's receiving thread: taking the messages from the middleware, checks,
/// synchronisation, diagnostics; CPU time, see [`crate::cpu_time`]), `decode` (messages or
/// files to [`crate::pipeline::FrameInput`]) and `publish` are filled by the caller (node,
/// replay, infer); the pipeline fills the others, as wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageTimings {
    pub receive: f64,
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
    /// How many stages there are.
    pub const COUNT: usize = 9;

    /// Stage names in message order (`ProcessingTime.stage_names`).
    pub const NAMES: [&'static str; Self::COUNT] =
        ["receive", "decode", "voxelize", "camera", "lidar", "fuse", "heads", "postprocess", "publish"];

    /// The stages in [`Self::NAMES`] order.
    pub fn as_array(&self) -> [f64; Self::COUNT] {
        [
            self.receive,
            self.decode,
            self.voxelize,
            self.camera,
            self.lidar,
            self.fuse,
            self.heads,
            self.postprocess,
            self.publish,
        ]
    }

    /// The stages from [`Self::NAMES`]-ordered values.
    pub fn from_array(a: [f64; Self::COUNT]) -> Self {
        let [receive, decode, voxelize, camera, lidar, fuse, heads, postprocess, publish] = a;
        Self { receive, decode, voxelize, camera, lidar, fuse, heads, postprocess, publish }
    }

    /// The stages from names and values (a `ProcessingTime` message); names this build does not
    /// know are left out, and missing ones stay zero.
    pub fn from_named(names: &[String], values: &[f64]) -> Self {
        let mut a = [0.0; Self::COUNT];
        for (n, v) in names.iter().zip(values) {
            if let Some(i) = Self::NAMES.iter().position(|k| k == n) {
                a[i] = *v;
            }
        }
        Self::from_array(a)
    }

    /// Sum of all stages.
    pub fn total(&self) -> f64 {
        self.as_array().iter().sum()
    }

    /// The network forward: camera branch, LiDAR branch, fuser + decoder, heads.
    pub fn network(&self) -> f64 {
        self.camera + self.lidar + self.fuse + self.heads
    }

    /// Everything else: receive, decode, voxelise, post-process, publish.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_by_position_and_by_name() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let t = StageTimings::from_array(a);
        assert_eq!(t.as_array(), a);
        assert_eq!((t.receive, t.decode, t.publish), (1.0, 2.0, 9.0));
        assert_eq!(t.network(), 4.0 + 5.0 + 6.0 + 7.0);
        assert_eq!(t.outside_network(), 1.0 + 2.0 + 3.0 + 8.0 + 9.0);
        let names: Vec<String> = StageTimings::NAMES.iter().map(|s| s.to_string()).collect();
        assert_eq!(StageTimings::from_named(&names, &a), t);
        // an older sender without `receive`, and a name this build does not know
        let old: Vec<String> = ["decode", "heads", "warp"].map(String::from).to_vec();
        let t = StageTimings::from_named(&old, &[0.5, 40.0, 7.0]);
        assert_eq!(t, StageTimings { decode: 0.5, heads: 40.0, ..Default::default() });
        // JSON written before `receive` existed still reads
        let j: StageTimings = serde_json::from_str(r#"{"decode": 0.25, "publish": 1.0}"#).unwrap();
        assert_eq!(j, StageTimings { decode: 0.25, publish: 1.0, ..Default::default() });
    }
}
