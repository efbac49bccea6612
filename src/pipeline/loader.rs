//! Build a [`FramePipeline`] from a checkpoint file: dense, masked or structured-pruned,
//! on `auto|cpu|cuda:N`, optionally FP16 on CUDA.

use super::bevfusion_network::BevFusionNetwork;
use super::{FramePipeline, PipelineOptions};
use anyhow::{Context, Result};
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
    let dev = crate::device::parse_device(device)?;
    if fp16 && dev == tch::Device::Cpu {
        tracing::warn!("fp16 needs CUDA; running float32 on the CPU");
    }
    if num_threads > 0 {
        tch::set_num_threads(num_threads as i32);
    }
    let net = BevFusionNetwork::load(model_path, dev, fp16)
        .with_context(|| format!("loading the model {}", model_path.display()))?;
    FramePipeline::new(Box::new(net), opts)
}
