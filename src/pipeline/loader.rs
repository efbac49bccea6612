//! Build a [`FramePipeline`] from a checkpoint file: dense, masked or structured-pruned,
//! on `auto|cpu|cuda:N`, optionally FP16 on CUDA.

use super::{FramePipeline, PipelineOptions};
use anyhow::Result;
use std::path::Path;

/// Load `model_path` on `device` and wrap it in a pipeline. `num_threads` sets libtorch's
/// CPU threads (0 leaves libtorch's default).
pub fn load_pipeline(
    model_path: &Path,
    device: &str,
    fp16: bool,
    num_threads: usize,
    opts: PipelineOptions,
) -> Result<FramePipeline> {
    let _ = (device, fp16, num_threads, opts);
    anyhow::bail!(
        "{}: loading checkpoints needs the model (issue #4), not merged into this build yet",
        model_path.display()
    )
}
