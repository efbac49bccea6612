//! The dataset interface: random access to [`Frame`]s, implemented by the nuScenes-layout
//! reader (ours or a real download), the KITTI reader and the in-memory synthetic world.

use super::frame::{CameraCalib, Frame};

pub trait Dataset: Send + Sync {
    /// Number of frames (samples).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Frame `index` with sensor data and ground truth.
    fn get(&self, index: usize) -> anyhow::Result<Frame>;
    /// Sample token of frame `index` (without loading its sensor data).
    fn token(&self, index: usize) -> String;
    /// The camera rig (same for every frame of the dataset).
    fn cameras(&self) -> Vec<CameraCalib>;
}
