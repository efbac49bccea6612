//! AlterMOMA, Algorithm 1: alternative modality masking.
//!
//! 1. DeCI of every prunable parameter: one backward pass of the unmasked model at
//!    theta_init on the reference batches D ([`super::deci`]).
//! 2. For m in {LiDAR, camera}: switch backbone m off, run B redundancy-reactivation steps,
//!    take ReRI ([`super::reri`]), and restore theta <- theta_init.
//! 3. AlterEva combines them with per-group normalisation ([`super::alter_eva`]).
//! 4. One global threshold tau = the rho-quantile of the scores over all prunable
//!    parameters ([`super::threshold`]); keep S >= tau.
//! 5. The mask is applied to theta_init (then the caller fine-tunes with the task loss,
//!    [`super::finetune`]).

use crate::model::Group;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::time::Instant;

use super::alter_eva::{alter_eva, AlterEvaConfig, GroupNormalisation};
use super::deci::deci;
use super::masks::MaskSet;
use super::model_api::{take_batches, BatchSource, PrunableModel, PrunableParam};
use super::reri::{reri, ReactivationConfig};
use super::threshold::global_mask;
use super::Scores;

/// AlterMOMA's options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlterMomaConfig {
    /// Weight of DeCI (paper: 1).
    pub alpha: f64,
    /// Weight of ReRI (paper: 1); fusion parameters get beta/2 from each stage.
    pub beta: f64,
    pub reactivation: ReactivationConfig,
    /// Divide each AlterEva term by its group sum (paper) or group mean (a deviation, for
    /// study: see [`super::alter_eva`]). Left out of the serialised form when it is the
    /// paper's `sum`, so that settings written before the option existed keep their identity.
    #[serde(skip_serializing_if = "GroupNormalisation::is_sum")]
    pub normalisation: GroupNormalisation,
}

impl Default for AlterMomaConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 1.0,
            reactivation: ReactivationConfig::default(),
            normalisation: GroupNormalisation::Sum,
        }
    }
}

impl AlterMomaConfig {
    pub fn eva(&self) -> AlterEvaConfig {
        AlterEvaConfig {
            alpha: self.alpha,
            beta: self.beta,
            normalisation: self.normalisation,
        }
    }
}

/// Everything AlterMOMA computed, for reports and tests.
#[derive(Debug)]
pub struct AlterMomaScores {
    pub deci: Scores,
    /// ReRI with the LiDAR backbone masked (camera and fusion parameters).
    pub reri_lidar_masked: Scores,
    /// ReRI with the camera backbone masked (LiDAR and fusion parameters).
    pub reri_camera_masked: Scores,
    /// AlterEva importance.
    pub scores: Scores,
    /// Masked task loss before / after reactivation, per stage: (masked group, before, after).
    pub reactivation_losses: Vec<(Group, f64, f64)>,
    pub seconds: f64,
}

/// Steps 1-3 of Algorithm 1: the AlterEva scores at the model's current weights
/// (theta_init). The model's variables are unchanged afterwards.
pub fn altermoma_scores<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    reference: &[M::Batch],
    data: &mut dyn BatchSource<M::Batch>,
    cfg: &AlterMomaConfig,
) -> Result<AlterMomaScores> {
    let t0 = Instant::now();
    let d = deci(model, params, reference)?;
    // Alternate: LiDAR masked first (camera + fusion redundancy), then camera masked.
    let lidar_stage = reri(
        model,
        params,
        Group::Lidar,
        reference,
        data,
        &cfg.reactivation,
    )?;
    let camera_stage = reri(
        model,
        params,
        Group::Camera,
        reference,
        data,
        &cfg.reactivation,
    )?;
    let scores = alter_eva(
        params,
        &d,
        &lidar_stage.reri,
        &camera_stage.reri,
        &cfg.eva(),
    )?;
    Ok(AlterMomaScores {
        deci: d,
        reactivation_losses: vec![
            (
                Group::Lidar,
                lidar_stage.loss_before,
                lidar_stage.loss_after,
            ),
            (
                Group::Camera,
                camera_stage.loss_before,
                camera_stage.loss_after,
            ),
        ],
        reri_lidar_masked: lidar_stage.reri,
        reri_camera_masked: camera_stage.reri,
        scores,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The whole of Algorithm 1: scores, one global threshold at `sparsity`, and the mask
/// applied to theta_init (the model's weights on entry). Returns the mask and the scores.
pub fn altermoma<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    data: &mut dyn BatchSource<M::Batch>,
    score_batches: usize,
    sparsity: f64,
    cfg: &AlterMomaConfig,
) -> Result<(MaskSet, AlterMomaScores)> {
    let reference = take_batches(data, score_batches.max(1))?;
    let s = altermoma_scores(model, params, &reference, data, cfg)?;
    let masks = global_mask(params, &s.scores, sparsity, None)?;
    masks.apply(model.var_store())?;
    Ok((masks, s))
}
