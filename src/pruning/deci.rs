//! DeCI, the deactivated contribution indicator (paper Eq. 6): the first-order Taylor
//! estimate of the loss change when one parameter is switched off,
//! `DeCI(w) = |w * dL/dw|`, from a backward pass of the UNMASKED fusion model at the initial
//! (trained, unpruned) weights theta_init on a batch D.
//!
//! With several batches the gradient is their mean (one batch is the paper's setting; more
//! give a less noisy gradient on small batches).

use crate::model::ModalityMask;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use tch::Tensor;

use super::model_api::{mean_loss_gradients, named_vars, PrunableModel, PrunableParam, Snapshot};
use super::Scores;

/// `|w * g|` for every prunable parameter, from weight and gradient maps.
pub fn taylor_scores(
    params: &[PrunableParam],
    weights: &BTreeMap<String, Tensor>,
    grads: &BTreeMap<String, Tensor>,
) -> Result<Scores> {
    let mut out = Scores::new();
    for p in params {
        let w = weights
            .get(&p.name)
            .with_context(|| format!("no weight `{}`", p.name))?;
        let g = grads
            .get(&p.name)
            .with_context(|| format!("no gradient for `{}`", p.name))?;
        out.insert(p.name.clone(), (w.detach() * g).abs());
    }
    Ok(out)
}

/// DeCI scores of `params` at the model's current weights (theta_init), unmasked model.
pub fn deci<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    batches: &[M::Batch],
) -> Result<Scores> {
    // The train-mode forward updates BN statistics: put them back.
    let init = Snapshot::take(model.var_store());
    let grads = mean_loss_gradients(model, batches, ModalityMask::FUSION);
    init.restore(model.var_store());
    taylor_scores(params, &named_vars(model.var_store()), &grads?)
}
