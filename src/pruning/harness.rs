//! The common harness of every pruning method: one configuration (YAML and CLI flags), one
//! entry point [`prune`], the same prunable tensors, the same global threshold, the same
//! data, so that AlterMOMA and the baselines differ only in their scores.

use crate::config::{ensure, FieldError, Validate};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;
use tch::Tensor;

use super::altermoma::{altermoma_scores, AlterMomaConfig};
use super::imp::{imp, magnitude_scores, ImpConfig};
use super::masks::MaskSet;
use super::model_api::{
    named_vars, take_batches, BatchSource, PrunableModel, PrunableParam, PrunableScope,
};
use super::prospr::{prospr, ProsPrConfig};
use super::random::random_scores;
use super::snip::snip;
use super::structured::{
    channel_scores, select_channels, shrink, ChannelSelection, StructuredConfig,
};
use super::synflow::{synflow, SynFlowConfig};
use super::threshold::global_mask;
use super::Scores;

/// Pruning method.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    #[default]
    Altermoma,
    Imp,
    Snip,
    Synflow,
    Prospr,
    Random,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Altermoma,
        Method::Imp,
        Method::Snip,
        Method::Synflow,
        Method::Prospr,
        Method::Random,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Method::Altermoma => "altermoma",
            Method::Imp => "imp",
            Method::Snip => "snip",
            Method::Synflow => "synflow",
            Method::Prospr => "prospr",
            Method::Random => "random",
        }
    }

    /// Display name as in the paper's tables.
    pub fn label(&self) -> &'static str {
        match self {
            Method::Altermoma => "AlterMOMA",
            Method::Imp => "IMP",
            Method::Snip => "SNIP",
            Method::Synflow => "SynFlow",
            Method::Prospr => "ProsPr",
            Method::Random => "Random",
        }
    }
}

/// Unstructured (per weight) or structured (per channel, physically smaller model).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    #[default]
    Weight,
    Channel,
}

/// Every option of `altermoma prune` (`config/pruning/*.yaml`; CLI flags override).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneConfig {
    pub method: Method,
    /// Fraction of prunable weights (weight granularity) or of channels (channel
    /// granularity) to remove.
    pub sparsity: f64,
    pub granularity: Granularity,
    /// Which tensors are prunable (`weights`: conv/linear weights; `all`).
    pub scope: PrunableScope,
    /// Batches D for the data-driven scores (DeCI/SNIP gradient, ReRI's g_0/g_B).
    pub score_batches: usize,
    /// Seed of the data order and of random scores.
    pub seed: u64,
    pub altermoma: AlterMomaConfig,
    pub imp: ImpConfig,
    pub synflow: SynFlowConfig,
    pub prospr: ProsPrConfig,
    pub structured: StructuredConfig,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            method: Method::Altermoma,
            sparsity: 0.8,
            granularity: Granularity::Weight,
            scope: PrunableScope::Weights,
            score_batches: 1,
            seed: 0,
            altermoma: AlterMomaConfig::default(),
            imp: ImpConfig::default(),
            synflow: SynFlowConfig::default(),
            prospr: ProsPrConfig::default(),
            structured: StructuredConfig::default(),
        }
    }
}

impl Validate for PruneConfig {
    fn validate(&self) -> Result<(), FieldError> {
        ensure(
            (0.0..=1.0).contains(&self.sparsity),
            "sparsity",
            "must be in [0, 1]",
        )?;
        if self.granularity == Granularity::Channel {
            ensure(
                self.sparsity < 1.0,
                "sparsity",
                "channel sparsity must be below 1",
            )?;
        }
        ensure(
            self.score_batches >= 1,
            "score_batches",
            "must be at least 1",
        )?;
        ensure(
            self.altermoma.alpha >= 0.0,
            "altermoma.alpha",
            "must be >= 0",
        )?;
        ensure(self.altermoma.beta >= 0.0, "altermoma.beta", "must be >= 0")?;
        ensure(
            self.altermoma.reactivation.lr > 0.0,
            "altermoma.reactivation.lr",
            "must be > 0",
        )?;
        ensure(self.imp.rounds >= 1, "imp.rounds", "must be at least 1")?;
        ensure(
            self.synflow.iterations >= 1,
            "synflow.iterations",
            "must be at least 1",
        )?;
        ensure(
            self.prospr.inner_steps >= 1,
            "prospr.inner_steps",
            "must be at least 1",
        )?;
        ensure(self.prospr.inner_lr > 0.0, "prospr.inner_lr", "must be > 0")?;
        ensure(
            (0.0..1.0).contains(&self.prospr.momentum),
            "prospr.momentum",
            "must be in [0, 1)",
        )?;
        ensure(
            self.structured.min_channels >= 1,
            "structured.min_channels",
            "must be at least 1",
        )?;
        ensure(
            (0.0..=1.0).contains(&self.structured.min_fraction),
            "structured.min_fraction",
            "must be in [0, 1]",
        )?;
        Ok(())
    }
}

/// What a pruning run produced.
#[derive(Debug)]
pub struct PruneOutcome {
    /// Weight granularity: the mask (the model holds theta_init * mask).
    pub masks: Option<MaskSet>,
    /// Channel granularity: the selection and every variable sliced to the new widths.
    pub selection: Option<ChannelSelection>,
    pub shrunk: Option<BTreeMap<String, Tensor>>,
    /// Wall time of scoring (+ thresholding; IMP: including its retraining rounds), without
    /// report-only diagnostics.
    pub scoring_seconds: f64,
    /// Method-specific details for the report (e.g. AlterMOMA's reactivation losses).
    pub details: serde_json::Value,
}

/// One-shot per-weight scores of `cfg.method` at the model's current weights. Iterative
/// methods give their first-iteration scores (SynFlow: one iteration; IMP: magnitude).
/// The model's variables are unchanged afterwards.
pub fn method_scores<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    data: &mut dyn BatchSource<M::Batch>,
    cfg: &PruneConfig,
) -> Result<(Scores, serde_json::Value)> {
    scores_and_details(model, params, data, cfg).map(|(s, d, _)| (s, d))
}

/// [`method_scores`] plus the seconds spent on report-only details (AlterMOMA's AlterEva
/// diagnostics), which are not part of the method's scoring cost.
fn scores_and_details<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    data: &mut dyn BatchSource<M::Batch>,
    cfg: &PruneConfig,
) -> Result<(Scores, serde_json::Value, f64)> {
    let mut report_seconds = 0.0;
    let (scores, details) = match cfg.method {
        Method::Altermoma => {
            let reference = take_batches(data, cfg.score_batches)?;
            let s = altermoma_scores(model, params, &reference, data, &cfg.altermoma)?;
            let losses: Vec<_> = s
                .reactivation_losses
                .iter()
                .map(|(g, b, a)| serde_json::json!({"masked": g.name(), "loss_before": b, "loss_after": a}))
                .collect();
            let t_report = Instant::now();
            let stats = super::alter_eva::diagnostics(
                params,
                &s.deci,
                &s.reri_lidar_masked,
                &s.reri_camera_masked,
                &s.scores,
            )?;
            report_seconds = t_report.elapsed().as_secs_f64();
            (
                s.scores,
                serde_json::json!({
                    "reactivation": losses,
                    "normalisation": cfg.altermoma.normalisation.name(),
                    "alter_eva": stats,
                }),
            )
        }
        Method::Snip => (
            snip(model, params, &take_batches(data, cfg.score_batches)?)?,
            serde_json::Value::Null,
        ),
        Method::Imp => (magnitude_scores(model, params), serde_json::Value::Null),
        // One linearised evaluation (the routine restores the model).
        Method::Synflow => (
            synflow(model, params, 0.0, &SynFlowConfig { iterations: 1 })?.1,
            serde_json::Value::Null,
        ),
        Method::Prospr => {
            let b = take_batches(data, cfg.prospr.inner_steps + 1)?;
            (
                prospr(model, params, &b, &cfg.prospr)?,
                serde_json::Value::Null,
            )
        }
        Method::Random => (random_scores(params, cfg.seed)?, serde_json::Value::Null),
    };
    Ok((scores, details, report_seconds))
}

/// Prune `model` according to `cfg`.
///
/// Weight granularity: on return the model holds theta_init * mask. Channel granularity: the
/// model is unchanged and the outcome holds the sliced variables and new widths.
pub fn prune<M: PrunableModel + ?Sized>(
    model: &mut M,
    data: &mut dyn BatchSource<M::Batch>,
    cfg: &PruneConfig,
) -> Result<PruneOutcome> {
    let params = model.prunable_params(cfg.scope);
    let t0 = Instant::now();
    match cfg.granularity {
        Granularity::Weight => {
            // report-only work inside the timed region, taken out of `scoring_seconds`
            let mut report_seconds = 0.0;
            let (masks, details) = match cfg.method {
                Method::Imp => (
                    imp(model, &params, cfg.sparsity, &cfg.imp)?,
                    serde_json::Value::Null,
                ),
                Method::Synflow => {
                    let (m, _) = synflow(&*model, &params, cfg.sparsity, &cfg.synflow)?;
                    (m, serde_json::Value::Null)
                }
                _ => {
                    let (scores, details, r) = scores_and_details(&*model, &params, data, cfg)?;
                    report_seconds = r;
                    (global_mask(&params, &scores, cfg.sparsity, None)?, details)
                }
            };
            masks.apply(model.var_store())?;
            Ok(PruneOutcome {
                masks: Some(masks),
                selection: None,
                shrunk: None,
                scoring_seconds: t0.elapsed().as_secs_f64() - report_seconds,
                details,
            })
        }
        Granularity::Channel => {
            let groups = model.channel_groups();
            if groups.is_empty() {
                anyhow::bail!(
                    "this model declares no channel groups: channel granularity is not supported"
                );
            }
            if (cfg.method == Method::Imp && cfg.imp.rounds > 1)
                || (cfg.method == Method::Synflow && cfg.synflow.iterations > 1)
            {
                tracing::warn!(
                    "channel granularity uses one-shot scores of {}: its iterations are not used",
                    cfg.method.label()
                );
            }
            let (scores, details, report_seconds) = scores_and_details(&*model, &params, data, cfg)?;
            let ch = channel_scores(&groups, &scores, cfg.structured.aggregation)?;
            let sel = select_channels(&groups, &ch, cfg.sparsity, &cfg.structured)?;
            let shrunk = shrink(&named_vars(model.var_store()), &groups, &sel)?;
            Ok(PruneOutcome {
                masks: None,
                selection: Some(sel),
                shrunk: Some(shrunk),
                scoring_seconds: t0.elapsed().as_secs_f64() - report_seconds,
                details,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pruning_configs_parse_and_validate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pruning");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let c: PruneConfig = crate::config::load_yaml(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.sparsity > 0.0);
            n += 1;
        }
        assert!(n >= 6);
        let e = crate::config::parse_yaml::<PruneConfig>(
            "method: snip\naltermoma:\n  alpha: 1\n  gamma: 2\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("gamma"), "{e}");
        let e = crate::config::parse_yaml::<PruneConfig>(
            "method: snip\nsparsity: 1.5\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = crate::config::parse_yaml::<PruneConfig>(
            "method: magic\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("magic"), "{e}");
    }
}
