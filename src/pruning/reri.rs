//! ReRI, the reactivated redundancy indicator (paper Eq. 10).
//!
//! Camera example: mask the LiDAR backbone (mu_l = 0), so the fusion module is forced to
//! reactivate the camera backbone's redundant features; train the masked model for B batches
//! D_1..D_B with a small learning rate ("redundancy reactivation"); with g_0 the gradient at
//! theta_init before the steps and g_B the gradient after them, both under the same mask,
//!
//! ```text
//! ReRI(w) = | w_init * g_0 - w_init * g_B |      (both terms use the INITIAL weight)
//! ```
//!
//! LiDAR ReRI is the mirror (mu_c = 0); fusion parameters get a ReRI from both stages.
//! Afterwards every variable (BN statistics included) is restored to theta_init: the
//! reactivation training is thrown away.
//!
//! Choices the paper leaves open (options, see [`ReactivationConfig`]): g_0 and g_B are
//! evaluated on the same reference batches D (the ones DeCI uses) so that their difference
//! reflects the parameter change only, not batch noise; the steps use fresh batches; the
//! optimiser is Adam (the paper's training optimiser) or plain SGD.

use crate::model::{Group, ModalityMask};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};

use super::model_api::{
    mean_loss_gradients, take_batches, BatchSource, PrunableModel, PrunableParam, Snapshot,
};
use super::Scores;

/// Optimiser of the reactivation steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReactivationOptimizer {
    Sgd,
    Adam,
}

/// Redundancy-reactivation settings (B steps with a small learning rate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReactivationConfig {
    /// B: reactivation batches (optimiser steps) per masked modality.
    pub steps: usize,
    /// Learning rate of the reactivation steps.
    pub lr: f64,
    pub optimizer: ReactivationOptimizer,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
}

impl Default for ReactivationConfig {
    fn default() -> Self {
        Self {
            steps: 10,
            lr: 1e-4,
            optimizer: ReactivationOptimizer::Adam,
            momentum: 0.0,
        }
    }
}

/// The result of one reactivation stage.
#[derive(Debug)]
pub struct ReriStage {
    /// The backbone that was masked (switched off).
    pub masked: Group,
    /// ReRI of every prunable parameter (zero for the masked backbone's own weights).
    pub reri: Scores,
    /// Task loss on the reference batches under the mask, before and after reactivation.
    pub loss_before: f64,
    pub loss_after: f64,
}

/// Modality mask that switches `masked` off.
pub fn mask_without(masked: Group) -> Result<ModalityMask> {
    Ok(match masked {
        Group::Lidar => ModalityMask::CAMERA_ONLY,
        Group::Camera => ModalityMask::LIDAR_ONLY,
        Group::Fusion => bail!("only a backbone (camera or lidar) can be masked"),
    })
}

fn mean_loss<M: PrunableModel + ?Sized>(
    model: &M,
    batches: &[M::Batch],
    mask: ModalityMask,
) -> Result<f64> {
    let mut s = 0.0;
    for b in batches {
        s += tch::no_grad(|| model.loss(b, mask))?.double_value(&[]);
    }
    Ok(s / batches.len() as f64)
}

/// Run one reactivation stage with `masked` switched off and return ReRI for `params`.
/// The model's variables are back at their values on entry when this returns (also on error).
pub fn reri<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    masked: Group,
    reference: &[M::Batch],
    data: &mut dyn BatchSource<M::Batch>,
    cfg: &ReactivationConfig,
) -> Result<ReriStage> {
    let mask = mask_without(masked)?;
    let vs = model.var_store();
    let init = Snapshot::take(vs);
    let result = (|| {
        let loss_before = mean_loss(model, reference, mask)?;
        let g0 = mean_loss_gradients(model, reference, mask)?;
        let mut opt = match cfg.optimizer {
            ReactivationOptimizer::Adam => nn::Adam::default().build(vs, cfg.lr)?,
            ReactivationOptimizer::Sgd => nn::Sgd {
                momentum: cfg.momentum,
                ..Default::default()
            }
            .build(vs, cfg.lr)?,
        };
        for _ in 0..cfg.steps {
            let batch = take_batches(data, 1)?.pop().expect("one batch");
            let loss = model.loss(&batch, mask)?;
            let v = loss.double_value(&[]);
            if !v.is_finite() {
                bail!("reactivation diverged (loss {v}) with the {} backbone masked: lower the reactivation lr", masked.name());
            }
            opt.backward_step(&loss);
        }
        opt.zero_grad();
        let loss_after = mean_loss(model, reference, mask)?;
        let gb = mean_loss_gradients(model, reference, mask)?;
        let mut out = Scores::new();
        for p in params {
            let w = init.get(&p.name).expect("snapshot has every variable");
            out.insert(p.name.clone(), (w * (&g0[&p.name] - &gb[&p.name])).abs());
        }
        Ok(ReriStage {
            masked,
            reri: out,
            loss_before,
            loss_after,
        })
    })();
    init.restore(vs);
    result
}
