//! A dataset read once from disk and kept in memory: the demo's small splits are read by
//! several steps (training, pruning scores, fine-tuning, evaluation), so every frame is
//! decoded once per run instead of once per use.

use crate::data::{CameraCalib, Dataset, Frame};
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::path::Path;

/// Every frame of a dataset, decoded.
pub struct MemoryDataset {
    frames: Vec<Frame>,
    cameras: Vec<CameraCalib>,
}

impl MemoryDataset {
    /// Read every frame of `data` (in parallel) with a progress bar labelled `what`.
    pub fn read(data: &dyn Dataset, what: &str) -> Result<Self> {
        let n = data.len();
        let pb = crate::progress::bar(n as u64, what);
        let frames: Vec<Frame> = (0..n)
            .into_par_iter()
            .map(|i| {
                let f = data.get(i).with_context(|| format!("{what}: frame {i}"));
                pb.inc(1);
                f
            })
            .collect::<Result<_>>()?;
        pb.finish_and_clear();
        Ok(Self {
            frames,
            cameras: data.cameras(),
        })
    }

    /// Open a nuScenes-layout or KITTI dataset folder and read it.
    pub fn open(dir: &Path, what: &str) -> Result<Self> {
        let ds = crate::data::open_dataset(dir, None)
            .with_context(|| format!("opening the {what} dataset {}", dir.display()))?;
        Self::read(ds.as_ref(), what)
    }

    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

impl Dataset for MemoryDataset {
    fn len(&self) -> usize {
        self.frames.len()
    }
    fn get(&self, index: usize) -> Result<Frame> {
        self.frames.get(index).cloned().with_context(|| {
            format!(
                "frame index {index} out of range ({} frames)",
                self.frames.len()
            )
        })
    }
    fn token(&self, index: usize) -> String {
        self.frames
            .get(index)
            .map(|f| f.token.clone())
            .unwrap_or_default()
    }
    fn cameras(&self) -> Vec<CameraCalib> {
        self.cameras.clone()
    }
}
