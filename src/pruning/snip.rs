//! SNIP (Lee et al. 2019), baseline: connection sensitivity `|g * w|` of the unmasked model
//! on a data batch at the initial weights, ranked with one global threshold.
//!
//! The formula equals DeCI's; what separates AlterMOMA from SNIP is the reactivation term
//! and the per-group normalisation of [`super::alter_eva`].

use crate::model::ModalityMask;
use anyhow::Result;

use super::deci::taylor_scores;
use super::model_api::{mean_loss_gradients, named_vars, PrunableModel, PrunableParam, Snapshot};
use super::Scores;

/// SNIP scores `|g * w|` of `params` (gradient averaged over `batches`).
pub fn snip<M: PrunableModel + ?Sized>(
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
