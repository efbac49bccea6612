//! `altermoma prune`: prune a trained fusion checkpoint with AlterMOMA or a baseline.
//!
//! Options come from `--config config/pruning/<x>.yaml` (or the defaults), then any flag
//! given on the command line overrides the file. Writes the pruned checkpoint (weight
//! granularity: theta_init * mask plus `__mask__.*` tensors; channel granularity: a
//! physically smaller model with its `widths`) and a report directory.

use crate::pruning::reri::ReactivationOptimizer;
use crate::pruning::structured::ChannelAggregation;
use crate::pruning::{Granularity, Method, PrunableScope, PruneConfig};
use anyhow::Result;
use std::path::PathBuf;

/// Options of `altermoma prune`. Defaults are those of `config/pruning/altermoma.yaml`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Trained (dense) fusion checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output checkpoint.
    #[arg(long)]
    pub out: PathBuf,
    /// Dataset (nuScenes layout) whose training split supplies the scoring batches.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Report directory (default: `<out without extension>.report/`).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Pruning YAML (config/pruning/*.yaml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// auto | cpu | cuda | cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Samples per scoring batch.
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,

    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// Fraction of prunable weights (or of channels with --granularity channel) to remove.
    #[arg(long)]
    pub sparsity: Option<f64>,
    #[arg(long, value_enum)]
    pub granularity: Option<Granularity>,
    /// weights (conv/linear weights; default) | all (biases and norms too).
    #[arg(long, value_parser = parse_scope)]
    pub scope: Option<PrunableScope>,
    /// Batches D for the data-driven scores.
    #[arg(long)]
    pub score_batches: Option<usize>,
    /// Seed of the data order and of random scores.
    #[arg(long)]
    pub seed: Option<u64>,

    /// AlterMOMA: DeCI weight alpha (default 1).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// AlterMOMA: ReRI weight beta (default 1).
    #[arg(long)]
    pub beta: Option<f64>,
    /// AlterMOMA: reactivation batches B per masked modality (default 10).
    #[arg(long)]
    pub reactivation_steps: Option<usize>,
    /// AlterMOMA: reactivation learning rate (default 1e-4).
    #[arg(long)]
    pub reactivation_lr: Option<f64>,
    /// AlterMOMA: reactivation optimiser, adam | sgd (default adam).
    #[arg(long, value_parser = parse_optimizer)]
    pub reactivation_optimizer: Option<ReactivationOptimizer>,
    /// SynFlow: iterations n (default 100).
    #[arg(long)]
    pub synflow_iterations: Option<usize>,
    /// ProsPr: inner steps M (default 3).
    #[arg(long)]
    pub prospr_inner_steps: Option<usize>,
    /// ProsPr: inner learning rate (default 0.5).
    #[arg(long)]
    pub prospr_inner_lr: Option<f64>,
    /// ProsPr: inner momentum (default 0.9).
    #[arg(long)]
    pub prospr_momentum: Option<f64>,
    /// IMP: prune-rewind-retrain rounds (default 1).
    #[arg(long)]
    pub imp_rounds: Option<usize>,
    /// IMP: retraining steps per round (default 100).
    #[arg(long)]
    pub imp_retrain_steps: Option<usize>,
    /// IMP: retraining learning rate (default 1e-3).
    #[arg(long)]
    pub imp_retrain_lr: Option<f64>,
    /// Channel granularity: sum | sum_abs (default sum).
    #[arg(long, value_parser = parse_aggregation)]
    pub channel_aggregation: Option<ChannelAggregation>,
    /// Channel granularity: minimum channels kept per slot (default 2).
    #[arg(long)]
    pub min_channels: Option<i64>,
    /// Channel granularity: minimum fraction of each slot kept (default 0.125).
    #[arg(long)]
    pub min_fraction: Option<f64>,
}

fn parse_scope(s: &str) -> Result<PrunableScope, String> {
    match s {
        "weights" => Ok(PrunableScope::Weights),
        "all" => Ok(PrunableScope::All),
        _ => Err(format!("`{s}`: expected weights or all")),
    }
}

fn parse_optimizer(s: &str) -> Result<ReactivationOptimizer, String> {
    match s {
        "adam" => Ok(ReactivationOptimizer::Adam),
        "sgd" => Ok(ReactivationOptimizer::Sgd),
        _ => Err(format!("`{s}`: expected adam or sgd")),
    }
}

fn parse_aggregation(s: &str) -> Result<ChannelAggregation, String> {
    match s {
        "sum" => Ok(ChannelAggregation::Sum),
        "sum_abs" => Ok(ChannelAggregation::SumAbs),
        _ => Err(format!("`{s}`: expected sum or sum_abs")),
    }
}

/// The configuration file (or defaults) with every given flag applied, validated.
pub fn config_from(a: &Args) -> Result<PruneConfig> {
    let mut c: PruneConfig = match &a.config {
        Some(p) => crate::config::load_yaml(p)?,
        None => PruneConfig::default(),
    };
    macro_rules! set {
        ($flag:expr, $field:expr) => {
            if let Some(v) = $flag {
                $field = v;
            }
        };
    }
    set!(a.method, c.method);
    set!(a.sparsity, c.sparsity);
    set!(a.granularity, c.granularity);
    set!(a.scope, c.scope);
    set!(a.score_batches, c.score_batches);
    set!(a.seed, c.seed);
    set!(a.alpha, c.altermoma.alpha);
    set!(a.beta, c.altermoma.beta);
    set!(a.reactivation_steps, c.altermoma.reactivation.steps);
    set!(a.reactivation_lr, c.altermoma.reactivation.lr);
    set!(a.reactivation_optimizer, c.altermoma.reactivation.optimizer);
    set!(a.synflow_iterations, c.synflow.iterations);
    set!(a.prospr_inner_steps, c.prospr.inner_steps);
    set!(a.prospr_inner_lr, c.prospr.inner_lr);
    set!(a.prospr_momentum, c.prospr.momentum);
    set!(a.imp_rounds, c.imp.rounds);
    set!(a.imp_retrain_steps, c.imp.retrain.steps);
    set!(a.imp_retrain_lr, c.imp.retrain.lr);
    set!(a.channel_aggregation, c.structured.aggregation);
    set!(a.min_channels, c.structured.min_channels);
    set!(a.min_fraction, c.structured.min_fraction);
    use crate::config::Validate;
    c.validate()
        .map_err(|e| anyhow::anyhow!("pruning options: {e}"))?;
    Ok(c)
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma prune` is not implemented yet (issue #6)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "method: snip\nsparsity: 0.85\nsynflow: {iterations: 7}\n",
        )
        .unwrap();
        let a = Args {
            config: Some(p.clone()),
            sparsity: Some(0.9),
            beta: Some(0.5),
            ..Default::default()
        };
        let c = config_from(&a).unwrap();
        assert_eq!(
            (c.method, c.sparsity, c.synflow.iterations, c.altermoma.beta),
            (Method::Snip, 0.9, 7, 0.5)
        );
        let a = Args {
            config: Some(p),
            sparsity: Some(1.5),
            ..Default::default()
        };
        assert!(config_from(&a)
            .unwrap_err()
            .to_string()
            .contains("sparsity"));
    }
}
