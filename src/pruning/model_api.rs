//! What a pruning method needs from a model: [`PrunableModel`].
//!
//! Every method (AlterMOMA and the baselines) is written against this trait only, so each can
//! be unit-tested on the tiny hand-checkable fusion models of [`super::toy`] long before (and
//! independently of) the real BEVFusion model, whose adapter lives in
//! [`super::bevfusion`].
//!
//! The contract:
//! - the model's variables live in one `tch::nn::VarStore`; trainable variable names start
//!   with their group (`camera.*`, `lidar.*`, everything else is fusion: [`Group::of_param`]);
//! - [`PrunableModel::loss`] is the task loss of a **train-mode** forward under a
//!   [`ModalityMask`] (a masked branch contributes exactly zero BEV features);
//! - [`PrunableModel::ones_batch`] + [`PrunableModel::output_sum`] give SynFlow's data-free
//!   objective R = sum(output) of an eval-mode forward on an all-ones input;
//! - [`PrunableModel::fit`] trains on the model's training data with the model's own trainer,
//!   keeping a mask set after every optimiser step (masked fine-tuning, IMP's retraining);
//! - [`PrunableModel::channel_groups`] lists the coupled channel slots for structured pruning;
//! - batches come from a [`BatchSource`] (any `FnMut() -> Result<Batch>` closure is one).

use crate::model::{Group, ModalityMask};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{nn, Tensor};

use super::masks::MaskSet;

/// Which tensors a pruning method may prune.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrunableScope {
    /// Weights of convolution and linear layers (trainable tensors with two or more
    /// dimensions). Norm layers and biases stay dense. The paper's choice and the default.
    #[default]
    Weights,
    /// Every trainable tensor, biases and norm parameters included.
    All,
}

/// One prunable tensor: its variable name, AlterMOMA group and shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunableParam {
    pub name: String,
    pub group: Group,
    pub shape: Vec<i64>,
}

impl PrunableParam {
    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
}

/// One tensor's share of a channel slot: along dimension `dim` of variable `param`, the
/// slot's channel `j` is index `offset + j`. A conv's output channels are `dim 0`, the
/// next conv's input channels `dim 1`, a BN's vectors `dim 0`; a concatenation puts two
/// slots into one input dimension at different offsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMember {
    pub param: String,
    pub dim: i64,
    pub offset: i64,
}

/// A set of channels that must be removed together (a conv's outputs with its BN and every
/// consumer; all convolutions feeding one residual sum). `slot` names the width in the
/// model config (`widths` overrides) and `size` is its current width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGroup {
    pub slot: String,
    pub size: i64,
    pub members: Vec<ChannelMember>,
}

/// Settings of a masked training run ([`PrunableModel::fit`]): fine-tuning after pruning,
/// IMP's retraining rounds. The trainer behind it is the model's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    /// Optimiser steps (one batch each).
    pub steps: usize,
    /// Peak learning rate (Adam/AdamW).
    pub lr: f64,
    /// Decoupled weight decay (AdamW); 0 for Adam.
    pub weight_decay: f64,
    /// Linear warm-up steps before the cosine decay.
    pub warmup_steps: usize,
    /// Gradient clipping by global norm (0 = off).
    pub clip_grad_norm: f64,
    /// Seed of the trainer (data order, dropout).
    pub seed: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            steps: 200,
            lr: 1e-3,
            weight_decay: 1e-4,
            warmup_steps: 10,
            clip_grad_norm: 10.0,
            seed: 0,
        }
    }
}

/// A stream of training batches. Closures `FnMut() -> Result<B>` are batch sources.
pub trait BatchSource<B> {
    fn next_batch(&mut self) -> Result<B>;
}

impl<B, F: FnMut() -> Result<B>> BatchSource<B> for F {
    fn next_batch(&mut self) -> Result<B> {
        self()
    }
}

/// The interface AlterMOMA and the baselines need from a model. See the module docs.
pub trait PrunableModel {
    type Batch;

    /// The store holding every variable (parameters and buffers such as BN statistics).
    fn var_store(&self) -> &nn::VarStore;

    /// Task loss (scalar) of a train-mode forward with the branches of `mask` switched on.
    fn loss(&self, batch: &Self::Batch, mask: ModalityMask) -> Result<Tensor>;

    /// An all-ones input batch (SynFlow's data-free input).
    fn ones_batch(&self) -> Result<Self::Batch>;

    /// Sum of every output of a forward pass (SynFlow's R), in train or eval mode.
    fn output_sum(&self, batch: &Self::Batch, mask: ModalityMask, train: bool) -> Result<Tensor>;

    /// Train on the model's training data with the model's own trainer (fine-tuning, IMP's
    /// retraining); when `masks` is given, masked weights are zero after every optimiser step.
    fn fit(&mut self, cfg: &FitConfig, masks: Option<&MaskSet>) -> Result<()>;

    /// Coupled channel slots for structured pruning (empty: not supported by this model).
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        Vec::new()
    }

    /// GFLOPs of one forward pass (multiply-add = 2 FLOPs), dense.
    fn gflops(&self) -> f64 {
        0.0
    }

    /// AlterMOMA group of a variable (by default from its name prefix).
    fn group_of(&self, name: &str) -> Group {
        Group::of_param(name)
    }

    /// The prunable tensors under `scope`, sorted by name.
    fn prunable_params(&self, scope: PrunableScope) -> Vec<PrunableParam> {
        let mut out: Vec<PrunableParam> = self
            .var_store()
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .filter(|(_, t)| match scope {
                PrunableScope::Weights => t.dim() >= 2,
                PrunableScope::All => true,
            })
            .map(|(name, t)| PrunableParam {
                group: self.group_of(&name),
                shape: t.size(),
                name,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Variables of `vs` by name (shallow clones sharing storage).
pub fn named_vars(vs: &nn::VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

/// Gradient of `loss` w.r.t. each trainable variable of `vs` (zeros where the loss does not
/// depend on a variable). The graph is freed afterwards.
pub fn gradients_of(vs: &nn::VarStore, loss: &Tensor) -> Result<BTreeMap<String, Tensor>> {
    if loss.numel() != 1 {
        bail!("the loss must be a scalar, got shape {:?}", loss.size());
    }
    let vars: Vec<(String, Tensor)> = named_vars(vs)
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    let inputs: Vec<&Tensor> = vars.iter().map(|(_, t)| t).collect();
    let grads = Tensor::f_run_backward(&[loss], &inputs, false, false)
        .map_err(|e| anyhow::anyhow!("backward pass failed: {e}"))?;
    let mut out = BTreeMap::new();
    for ((name, var), g) in vars.into_iter().zip(grads) {
        let g = if g.defined() { g } else { var.zeros_like() };
        out.insert(name, g.detach());
    }
    Ok(out)
}

/// Mean gradient of the task loss over `batches` batches from `data`, under `mask`.
pub fn mean_loss_gradients<M: PrunableModel + ?Sized>(
    model: &M,
    batches: &[M::Batch],
    mask: ModalityMask,
) -> Result<BTreeMap<String, Tensor>> {
    if batches.is_empty() {
        bail!("at least one batch is needed to compute a gradient");
    }
    let mut acc: Option<BTreeMap<String, Tensor>> = None;
    for b in batches {
        let loss = model.loss(b, mask)?;
        let v = loss.double_value(&[]);
        if !v.is_finite() {
            bail!(
                "the task loss is not finite ({v}) under modality mask `{}`",
                mask.name()
            );
        }
        let g = gradients_of(model.var_store(), &loss)?;
        acc = Some(match acc {
            None => g,
            Some(mut a) => {
                for (k, v) in g {
                    if let Some(t) = a.get_mut(&k) {
                        *t = &*t + v;
                    }
                }
                a
            }
        });
    }
    let n = batches.len() as f64;
    Ok(acc.unwrap().into_iter().map(|(k, v)| (k, v / n)).collect())
}

/// Draw `n` batches from a source.
pub fn take_batches<B>(data: &mut dyn BatchSource<B>, n: usize) -> Result<Vec<B>> {
    (0..n).map(|_| data.next_batch()).collect()
}

/// A copy of every variable of a store (parameters and buffers), to restore theta_init after
/// scoring steps that train or modify the model.
pub struct Snapshot {
    values: BTreeMap<String, Tensor>,
}

impl Snapshot {
    pub fn take(vs: &nn::VarStore) -> Self {
        let values = named_vars(vs)
            .into_iter()
            .map(|(k, v)| (k, v.detach().copy()))
            .collect();
        Self { values }
    }

    /// Copy the saved values back into the store's variables.
    pub fn restore(&self, vs: &nn::VarStore) {
        tch::no_grad(|| {
            for (name, mut var) in named_vars(vs) {
                if let Some(src) = self.values.get(&name) {
                    var.copy_(src);
                }
            }
        });
        zero_grads(vs);
    }

    /// The saved value of one variable.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.values.get(name)
    }

    pub fn values(&self) -> &BTreeMap<String, Tensor> {
        &self.values
    }
}

/// Reset accumulated `.grad` of every variable.
pub fn zero_grads(vs: &nn::VarStore) {
    for (_, t) in vs.variables() {
        let mut g = t.grad();
        if g.defined() {
            let _ = g.detach_().zero_();
        }
    }
}
