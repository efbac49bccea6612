//! IMP, iterative magnitude pruning (Frankle & Carbin 2019), baseline: score |w|; R rounds of
//! prune -> rewind -> retrain. Round r prunes to `1 - (1 - sparsity)^(r/R)` by magnitude of
//! the current (retrained) weights with one global threshold, weights pruned earlier staying
//! pruned, then rewinds the survivors to theta_init and retrains them with the mask held
//! (the model's trainer). After the last round the weights are theta_init * mask, ready for
//! the same fine-tuning every method gets. One round is plain magnitude pruning.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::masks::MaskSet;
use super::model_api::{named_vars, FitConfig, PrunableModel, PrunableParam, Snapshot};
use super::threshold::global_mask;
use super::Scores;

/// IMP's options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImpConfig {
    /// R: prune-rewind-retrain rounds (1 = one-shot magnitude pruning).
    pub rounds: usize,
    /// Retraining between rounds (masked, with the model's trainer).
    pub retrain: FitConfig,
}

impl Default for ImpConfig {
    fn default() -> Self {
        Self {
            rounds: 1,
            retrain: FitConfig {
                steps: 100,
                ..FitConfig::default()
            },
        }
    }
}

/// `|w|` of the current weights.
pub fn magnitude_scores<M: PrunableModel + ?Sized>(model: &M, params: &[PrunableParam]) -> Scores {
    let vars = named_vars(model.var_store());
    params
        .iter()
        .map(|p| (p.name.clone(), vars[&p.name].detach().abs()))
        .collect()
}

/// Run IMP to `sparsity`. On return the model holds theta_init * mask.
pub fn imp<M: PrunableModel + ?Sized>(
    model: &mut M,
    params: &[PrunableParam],
    sparsity: f64,
    cfg: &ImpConfig,
) -> Result<MaskSet> {
    let init = Snapshot::take(model.var_store());
    let rounds = cfg.rounds.max(1);
    let mut mask: Option<MaskSet> = None;
    for r in 1..=rounds {
        let s_r = if r == rounds {
            sparsity
        } else {
            1.0 - (1.0 - sparsity).powf(r as f64 / rounds as f64)
        };
        let scores = magnitude_scores(model, params);
        let m = global_mask(params, &scores, s_r, mask.as_ref())?;
        init.restore(model.var_store());
        m.apply(model.var_store())?;
        if r < rounds {
            let mut fit = cfg.retrain.clone();
            fit.seed = fit.seed.wrapping_add(r as u64);
            model.fit(&fit, Some(&m))?;
        }
        mask = Some(m);
    }
    init.restore(model.var_store());
    let mask = mask.expect("at least one round");
    mask.apply(model.var_store())?;
    Ok(mask)
}
