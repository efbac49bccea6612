//! Masked fine-tuning (Algorithm 1, step 3): after the mask is applied to theta_init, the
//! pruned model is trained with the task loss by the model's own trainer, which re-applies
//! the mask after every optimiser step (and masks the gradients before it), so pruned
//! weights stay EXACTLY zero whatever the optimiser (Adam moments, weight decay) does.
//! This checks that promise afterwards.

use anyhow::{bail, Result};

use super::masks::MaskSet;
use super::model_api::{FitConfig, PrunableModel};

/// Fine-tune `model` with `masks` held; errors if any pruned weight ends up nonzero.
pub fn finetune<M: PrunableModel + ?Sized>(
    model: &mut M,
    cfg: &FitConfig,
    masks: &MaskSet,
) -> Result<()> {
    masks.apply(model.var_store())?;
    model.fit(cfg, Some(masks))?;
    let bad = masks.violations(model.var_store());
    if bad > 0 {
        bail!(
            "{bad} pruned weights are nonzero after fine-tuning: the trainer did not keep the mask"
        );
    }
    Ok(())
}
