//! [`PrunableModel`] for the real BEVFusion-style model ([`crate::model::load::LoadedModel`]):
//! the task loss of a train-mode forward under a modality mask, SynFlow's all-ones batch,
//! the model's trainer (with the mask set) for fine-tuning and IMP's retraining, its channel
//! groups for structured pruning, and its FLOP counter. Plus the helpers the CLI and the
//! study share: scoring batches from a dataset, masked and structured checkpoints.

use crate::checkpoint::Checkpoint;
use crate::data::{Dataset, Frame};
use crate::model::batch::{Batch, BatchOptions, TargetMode};
use crate::model::config::{ModelConfig, TrainConfig};
use crate::model::load::LoadedModel;
use crate::model::ModalityMask;
use crate::train::trainer::{train, TrainOptions};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, Kind, Tensor};

use super::masks::MaskSet;
use super::model_api::{ChannelGroup, ChannelMember, FitConfig, PrunableModel};

/// A loaded BEVFusion model with the training data and recipe its trainer uses.
pub struct PrunableBevFusion<'a> {
    pub m: LoadedModel,
    /// Training split (fine-tuning, IMP retraining).
    pub data: &'a dyn Dataset,
    /// Base training recipe (optimiser, batch size, flips); [`FitConfig`] overrides steps,
    /// learning rate, weight decay, warm-up, clipping and seed.
    pub recipe: TrainConfig,
    /// Folder for the trainer's output of each fit (`fit_<k>/`).
    pub work_dir: PathBuf,
    fits: usize,
}

impl<'a> PrunableBevFusion<'a> {
    pub fn new(m: LoadedModel, data: &'a dyn Dataset, work_dir: impl Into<PathBuf>) -> Self {
        let recipe = m.cfg.train.clone();
        Self {
            m,
            data,
            recipe,
            work_dir: work_dir.into(),
            fits: 0,
        }
    }

    pub fn device(&self) -> tch::Device {
        self.m.vs.device()
    }
}

/// The model's channel groups in the pruning harness's form.
pub fn convert_groups(groups: Vec<crate::model::channels::ChannelGroup>) -> Vec<ChannelGroup> {
    groups
        .into_iter()
        .map(|g| ChannelGroup {
            slot: g.slot,
            size: g.size,
            members: g
                .members
                .into_iter()
                .map(|m| ChannelMember {
                    param: m.param,
                    dim: m.dim as i64,
                    offset: m.offset,
                })
                .collect(),
        })
        .collect()
}

impl PrunableModel for PrunableBevFusion<'_> {
    type Batch = Batch;

    fn var_store(&self) -> &nn::VarStore {
        &self.m.vs
    }

    fn loss(&self, batch: &Batch, mask: ModalityMask) -> Result<Tensor> {
        let out = self.m.model.forward(batch, mask, true);
        Ok(self.m.model.loss(&out, batch)?.0)
    }

    fn ones_batch(&self) -> Result<Batch> {
        Batch::ones(&self.m.cfg, 1, self.device())
    }

    /// Sum of the detection heatmap logits, box codes and segmentation logits.
    fn output_sum(&self, batch: &Batch, mask: ModalityMask, train: bool) -> Result<Tensor> {
        let out = self.m.model.forward(batch, mask, train);
        let mut r = Tensor::zeros([], (Kind::Float, self.device()));
        if let Some(d) = &out.det {
            r = r + d.heatmap.sum(Kind::Float) + d.codes.sum(Kind::Float);
        }
        if let Some(s) = &out.seg {
            r = r + s.sum(Kind::Float);
        }
        Ok(r)
    }

    fn fit(&mut self, cfg: &FitConfig, masks: Option<&MaskSet>) -> Result<()> {
        let mut recipe = self.recipe.clone();
        recipe.steps = cfg.steps.max(1);
        recipe.lr = cfg.lr;
        recipe.weight_decay = cfg.weight_decay;
        recipe.warmup_steps = cfg.warmup_steps;
        recipe.grad_clip = cfg.clip_grad_norm;
        recipe.checkpoint_every = recipe.steps;
        let dir = self.work_dir.join(format!("fit_{}", self.fits));
        self.fits += 1;
        let mut opts = TrainOptions::new(&recipe, ModalityMask::FUSION, &dir);
        opts.seed = cfg.seed;
        opts.device = self.device();
        opts.label = "fine-tune".into();
        let map = masks.map(|m| m.to_map());
        train(&mut self.m, self.data, None, &opts, map.as_ref())?;
        Ok(())
    }

    fn channel_groups(&self) -> Vec<ChannelGroup> {
        convert_groups(self.m.model.channel_groups())
    }

    fn gflops(&self) -> f64 {
        match Batch::ones(&self.m.cfg, 1, self.device()) {
            Ok(b) => {
                crate::model::flops::count_model(&self.m.model, &b, ModalityMask::FUSION).total()
            }
            Err(_) => f64::NAN,
        }
    }
}

/// A batch source drawing `batch_size` random frames (seeded) of `data` with training
/// targets, no augmentation.
pub fn frame_batches<'a>(
    data: &'a dyn Dataset,
    cfg: &'a ModelConfig,
    batch_size: usize,
    seed: u64,
    device: tch::Device,
) -> impl FnMut() -> Result<Batch> + 'a {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5C0E_5C0E);
    let mut order: Vec<usize> = Vec::new();
    move || {
        if data.is_empty() {
            bail!("the dataset has no frames to draw scoring batches from");
        }
        let mut frames: Vec<Frame> = Vec::with_capacity(batch_size);
        for _ in 0..batch_size.max(1) {
            if order.is_empty() {
                order = (0..data.len()).collect();
                order.shuffle(&mut rng);
            }
            let i = order.pop().expect("refilled");
            frames.push(data.get(i).with_context(|| format!("loading frame {i}"))?);
        }
        let opts = BatchOptions {
            targets: TargetMode::Always,
            flips: None,
        };
        Batch::from_frames_with(&frames, cfg, device, &opts)
    }
}

/// Save a pruned model: weights (theta_init * mask after fine-tuning or not), masks as
/// `__mask__.*`, the model config, `kind: masked` and `extra` metadata.
pub fn save_masked(
    m: &LoadedModel,
    masks: &MaskSet,
    path: &Path,
    extra: &BTreeMap<String, String>,
) -> Result<()> {
    crate::model::load::checkpoint_of(&m.vs, &m.cfg, &masks.to_map(), extra).save(path)
}

/// Save a structured (physically smaller) model: the sliced variables and the config with
/// `widths` overrides. Loading it back into that config is checked before writing.
pub fn save_structured(
    cfg: &ModelConfig,
    shrunk: &BTreeMap<String, Tensor>,
    widths: &BTreeMap<String, i64>,
    path: &Path,
    extra: &BTreeMap<String, String>,
) -> Result<ModelConfig> {
    let mut new_cfg = cfg.clone();
    for (k, v) in widths {
        new_cfg.widths.insert(k.clone(), *v);
    }
    let mut ck = Checkpoint::new();
    for (k, v) in shrunk {
        ck.tensors
            .insert(k.clone(), v.detach().to_device(tch::Device::Cpu));
    }
    ck.metadata
        .extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    ck.metadata.insert("model_config".into(), new_cfg.to_json());
    ck.metadata.insert("kind".into(), "structured".into());
    // Check: a model built with the new widths takes exactly these tensors.
    let mut probe = LoadedModel::new(&new_cfg, tch::Device::Cpu)?;
    ck.load_into_var_store(&mut probe.vs, &[])
        .context("the sliced tensors do not fit the model with the new widths")?;
    ck.save(path)?;
    Ok(new_cfg)
}
