//! SynFlow (Tanaka et al. 2020), baseline: iterative synaptic flow pruning, data-free.
//!
//! Each of the n iterations: every variable is replaced by its absolute value (times the
//! current mask), an all-ones input goes through an eval-mode forward, R = sum(output), and
//! the score is `|dR/dw * w|`; the mask is recomputed with one global threshold at the
//! exponential schedule `sparsity_k = 1 - (1 - sparsity)^(k/n)` (density d^(k/n)), weights
//! pruned earlier staying pruned. The batch source is never touched.
//!
//! BatchNorm handling: the forward runs in eval mode, so a BN layer is the per-channel affine
//! map `|gamma| * (x - mean) / sqrt(var + eps) + |beta|`; its `running_mean` is set to 0 for
//! the duration so that the map is positive (every path keeps a positive sign, as SynFlow's
//! linearisation requires), while `running_var` keeps its trained value (the BN's real
//! per-channel scale enters the path products). Every variable, buffers included, is restored
//! to theta_init afterwards.

use crate::model::ModalityMask;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::masks::MaskSet;
use super::model_api::{gradients_of, named_vars, PrunableModel, PrunableParam, Snapshot};
use super::threshold::global_mask;
use super::Scores;

/// SynFlow's options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynFlowConfig {
    /// n: pruning iterations (the paper uses 100).
    pub iterations: usize,
}

impl Default for SynFlowConfig {
    fn default() -> Self {
        Self { iterations: 100 }
    }
}

/// Linearise the model in place: |w| for every variable, BN running means set to zero.
fn linearise(vars: &std::collections::BTreeMap<String, Tensor>) {
    tch::no_grad(|| {
        for (name, v) in vars {
            let mut v = v.shallow_clone();
            if name.ends_with("running_mean") {
                let _ = v.zero_();
            } else if v.is_floating_point() {
                let _ = v.abs_();
            }
        }
    });
}

/// One SynFlow score evaluation at the current (linearised, masked) weights.
pub fn synflow_scores<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
) -> Result<Scores> {
    let ones = model.ones_batch()?;
    let r = model.output_sum(&ones, ModalityMask::FUSION, false)?;
    let rv = r.double_value(&[]);
    if !rv.is_finite() {
        bail!("SynFlow objective R = {rv} is not finite (the path products overflow)");
    }
    let grads = gradients_of(model.var_store(), &r)?;
    let vars = named_vars(model.var_store());
    Ok(params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                (&grads[&p.name] * vars[&p.name].detach()).abs(),
            )
        })
        .collect())
}

/// Iterative SynFlow down to `sparsity`; the model's variables are unchanged afterwards.
/// Returns the mask and the last iteration's scores.
pub fn synflow<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    sparsity: f64,
    cfg: &SynFlowConfig,
) -> Result<(MaskSet, Scores)> {
    let vs = model.var_store();
    let init = Snapshot::take(vs);
    let result = (|| {
        let n = cfg.iterations.max(1);
        linearise(&named_vars(vs));
        let mut mask = MaskSet::ones(params, vs.device());
        let mut scores = Scores::new();
        for k in 1..=n {
            mask.apply(vs)?;
            scores = synflow_scores(model, params)?;
            let s_k = 1.0 - (1.0 - sparsity).powf(k as f64 / n as f64);
            let s_k = if k == n { sparsity } else { s_k };
            mask = global_mask(params, &scores, s_k, Some(&mask))?;
        }
        Ok((mask, scores))
    })();
    init.restore(vs);
    result
}
