//! `altermoma prune`: prune a trained fusion checkpoint with AlterMOMA or a baseline.
//!
//! Options come from `--config config/pruning/<x>.yaml` (or the defaults), then any flag
//! given on the command line overrides the file. Writes the pruned checkpoint (weight
//! granularity: theta_init * mask plus `__mask__.*` tensors; channel granularity: a
//! physically smaller model with its `widths`) and a report directory.

use crate::pruning::alter_eva::GroupNormalisation;
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
    /// AlterMOMA: divide each AlterEva term by its group sum (the paper; default) or mean
    /// (a deviation, for study).
    #[arg(long, value_parser = parse_normalisation)]
    pub normalisation: Option<GroupNormalisation>,
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

fn parse_normalisation(s: &str) -> Result<GroupNormalisation, String> {
    match s {
        "sum" => Ok(GroupNormalisation::Sum),
        "mean" => Ok(GroupNormalisation::Mean),
        _ => Err(format!("`{s}`: expected sum or mean")),
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
    set!(a.normalisation, c.altermoma.normalisation);
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

/// A dataset without frames, for the data-free methods when no `--data` is given.
pub struct NoData;

impl crate::data::Dataset for NoData {
    fn len(&self) -> usize {
        0
    }
    fn get(&self, index: usize) -> Result<crate::data::Frame> {
        anyhow::bail!("frame {index}: no --data was given (this method needs training data)")
    }
    fn token(&self, _index: usize) -> String {
        String::new()
    }
    fn cameras(&self) -> Vec<crate::data::CameraCalib> {
        Vec::new()
    }
}

/// Default report folder of an output checkpoint: `<out without extension>.report/`.
pub fn report_dir(out: &std::path::Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "pruned".into());
    out.with_file_name(format!("{stem}.report"))
}

pub fn run(args: Args) -> Result<()> {
    use crate::model::load::LoadedModel;
    use crate::pruning::bevfusion::{
        frame_batches, save_masked, save_structured, PrunableBevFusion,
    };
    use crate::pruning::model_api::PrunableModel;
    use crate::pruning::report::{ChannelStats, PruneReport};
    use anyhow::Context;

    let cfg = config_from(&args)?;
    let device = crate::device::parse_device(&args.device)?;
    let m = LoadedModel::from_checkpoint(&args.checkpoint, device)?;
    if !m.masks.is_empty() {
        anyhow::bail!(
            "{}: already pruned (it holds masks); prune the dense checkpoint",
            args.checkpoint.display()
        );
    }
    let needs_data = !matches!(cfg.method, Method::Synflow | Method::Random)
        && !(cfg.method == Method::Imp && cfg.imp.rounds == 1);
    let data: Box<dyn crate::data::Dataset> = match &args.data {
        Some(d) => crate::data::open_dataset(d, None)?,
        None if needs_data => anyhow::bail!(
            "--method {} needs --data (a training dataset for its scoring batches)",
            cfg.method.name()
        ),
        None => Box::new(NoData),
    };
    let report = args.report.clone().unwrap_or_else(|| report_dir(&args.out));
    let model_cfg = m.cfg.clone();
    let work = tempfile::tempdir()?;
    let mut pm = PrunableBevFusion::new(m, data.as_ref(), work.path());
    let widths_before = model_cfg.width_slots();
    let gflops_dense = pm.gflops();
    let mut src = frame_batches(data.as_ref(), &model_cfg, args.batch_size, cfg.seed, device);
    tracing::info!(
        "pruning {} with {} to {:.1}% ({:?})",
        args.checkpoint.display(),
        cfg.method.label(),
        100.0 * cfg.sparsity,
        cfg.granularity
    );
    let out = crate::pruning::prune(&mut pm, &mut src, &cfg)?;
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("pruning".to_string(), serde_json::to_string(&cfg)?);
    let rep = match cfg.granularity {
        Granularity::Weight => {
            let masks = out.masks.context("masks")?;
            save_masked(&pm.m, &masks, &args.out, &meta)?;
            PruneReport::from_masks(
                cfg.method,
                cfg.sparsity,
                &masks,
                pm.var_store(),
                gflops_dense,
                out.scoring_seconds,
                out.details,
            )
        }
        Granularity::Channel => {
            let sel = out.selection.context("selection")?;
            let shrunk = out.shrunk.context("tensors")?;
            let new_cfg = save_structured(&model_cfg, &shrunk, &sel.widths, &args.out, &meta)?;
            let small = LoadedModel::new(&new_cfg, tch::Device::Cpu)?;
            let gflops = PrunableBevFusion::new(small, data.as_ref(), work.path()).gflops();
            PruneReport::from_structured(
                cfg.method,
                cfg.sparsity,
                &pm.prunable_params(cfg.scope),
                pm.var_store(),
                &shrunk,
                ChannelStats {
                    channels_before: sel.channels_before,
                    channels_after: sel.channels_after,
                    widths_before,
                    widths_after: sel.widths,
                },
                gflops_dense,
                gflops,
                out.scoring_seconds,
                out.details,
            )
        }
    };
    rep.write(&report)?;
    println!(
        "{}: {} {:.2}% of prunable weights removed (camera {:.1}%, lidar {:.1}%, fusion {:.1}%), {} -> {} parameters, {:.3} -> {:.3} GFLOPs, scoring {:.1} s",
        args.out.display(),
        cfg.method.label(),
        100.0 * rep.sparsity,
        100.0 * rep.groups.get(&crate::model::Group::Camera).map(|c| c.sparsity()).unwrap_or(0.0),
        100.0 * rep.groups.get(&crate::model::Group::Lidar).map(|c| c.sparsity()).unwrap_or(0.0),
        100.0 * rep.groups.get(&crate::model::Group::Fusion).map(|c| c.sparsity()).unwrap_or(0.0),
        rep.params_total,
        rep.params_remaining,
        rep.gflops_dense,
        rep.gflops,
        rep.scoring_seconds
    );
    println!("report: {}", report.join("report.md").display());
    Ok(())
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
