//! Random pruning, the sanity floor: uniform random scores from a seed, one global
//! threshold (every tensor ends up with about the target sparsity).

use anyhow::Result;
use tch::{Kind, Tensor};

use super::model_api::PrunableParam;
use super::Scores;

/// Uniform [0, 1) scores, deterministic for a seed.
pub fn random_scores(params: &[PrunableParam], seed: u64) -> Result<Scores> {
    let _generator = crate::seed::seed_generator(seed as i64);
    Ok(params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                Tensor::rand(p.shape.as_slice(), (Kind::Float, tch::Device::Cpu)),
            )
        })
        .collect())
}
