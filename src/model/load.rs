//! Loading and saving models: the helper every component uses.
//!
//! A checkpoint ([`crate::checkpoint::Checkpoint`]) holds the model's variables, its config as
//! JSON under `model_config` and a `kind`: `dense`, `masked` (unstructured pruning; masks as
//! `__mask__.<param>` tensors, weights already zero where masked) or `structured` (a
//! physically smaller model: the widths are in the embedded config). All three load the same
//! way.

use crate::checkpoint::{Checkpoint, MASK_PREFIX};
use crate::model::bevfusion::BevFusion;
use crate::model::config::ModelConfig;
use crate::model::Group;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// Prefix of optimiser-state tensors in training-state files.
pub const OPTIM_PREFIX: &str = "__optim__.";

/// A model with its variables, config and (for masked checkpoints) masks.
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub model: BevFusion,
    pub cfg: ModelConfig,
    /// Parameter name -> 0/1 mask (empty for dense and structured models).
    pub masks: BTreeMap<String, Tensor>,
    /// The checkpoint's metadata (empty for a fresh model).
    pub metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("cfg", &self.cfg.name)
            .field("masks", &self.masks.len())
            .finish()
    }
}

impl LoadedModel {
    /// A freshly initialised model (seed torch first for reproducible weights).
    pub fn new(cfg: &ModelConfig, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let model = BevFusion::new(&vs.root(), cfg)?;
        Ok(Self {
            vs,
            model,
            cfg: cfg.clone(),
            masks: BTreeMap::new(),
            metadata: BTreeMap::new(),
        })
    }

    /// Load a checkpoint with the config embedded in it.
    pub fn from_checkpoint(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        let ck = Checkpoint::load(path)?;
        let json = ck
            .meta("model_config")
            .with_context(|| format!("{}: not a model checkpoint", path.display()))?;
        let cfg = ModelConfig::from_json(json, &path.display().to_string())?;
        Self::from_loaded(ck, &cfg, device).with_context(|| format!("loading {}", path.display()))
    }

    /// Load a checkpoint's weights into a model built from `cfg` (not the embedded config).
    /// A checkpoint of another shape gives an error naming the first mismatching parameter.
    pub fn from_checkpoint_with_config(
        path: impl AsRef<Path>,
        cfg: &ModelConfig,
        device: Device,
    ) -> Result<Self> {
        let path = path.as_ref();
        let ck = Checkpoint::load(path)?;
        Self::from_loaded(ck, cfg, device).with_context(|| {
            format!(
                "loading {} into model config `{}`",
                path.display(),
                cfg.name
            )
        })
    }

    fn from_loaded(ck: Checkpoint, cfg: &ModelConfig, device: Device) -> Result<Self> {
        let mut m = Self::new(cfg, device)?;
        ck.load_into_var_store(&mut m.vs, &[MASK_PREFIX, OPTIM_PREFIX])?;
        let vars = m.vs.variables();
        for (name, mask) in ck.masks() {
            let Some(var) = vars.get(&name) else {
                bail!("mask `{MASK_PREFIX}{name}` has no parameter `{name}`")
            };
            if mask.size() != var.size() {
                bail!(
                    "mask of `{name}` has shape {:?}, the parameter {:?}",
                    mask.size(),
                    var.size()
                );
            }
            let mask = mask.to_kind(var.kind()).to_device(device);
            tch::no_grad(|| {
                let _ = var.shallow_clone().g_mul_(&mask);
            });
            m.masks.insert(name, mask);
        }
        m.metadata = ck.metadata;
        Ok(m)
    }

    /// A checkpoint of this model (variables, masks, config, `kind`) plus `extra` metadata.
    pub fn to_checkpoint(&self, extra: &BTreeMap<String, String>) -> Checkpoint {
        checkpoint_of(&self.vs, &self.cfg, &self.masks, extra)
    }

    /// Save atomically.
    pub fn save(&self, path: impl AsRef<Path>, extra: &BTreeMap<String, String>) -> Result<()> {
        self.to_checkpoint(extra).save(path)
    }
}

/// Build a checkpoint from a VarStore: variables, masks, `model_config`, `kind`.
pub fn checkpoint_of(
    vs: &nn::VarStore,
    cfg: &ModelConfig,
    masks: &BTreeMap<String, Tensor>,
    extra: &BTreeMap<String, String>,
) -> Checkpoint {
    let mut ck = Checkpoint::new();
    ck.insert_var_store(vs);
    for (n, m) in masks {
        ck.tensors.insert(
            format!("{MASK_PREFIX}{n}"),
            m.to_kind(tch::Kind::Uint8).to_device(Device::Cpu),
        );
    }
    ck.metadata
        .extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    ck.metadata.insert("model_config".into(), cfg.to_json());
    let kind = if !masks.is_empty() {
        "masked"
    } else if !cfg.widths.is_empty() {
        "structured"
    } else {
        "dense"
    };
    ck.metadata
        .entry("kind".into())
        .or_insert_with(|| kind.to_string());
    ck
}

/// Copy the variables of `groups` from a checkpoint into `vs` (BEVFusion's recipe: a fused
/// model starts from the single-modal models' branches). Every variable of those groups must
/// be present with the same shape. Returns the number of tensors copied.
pub fn load_groups(vs: &nn::VarStore, path: impl AsRef<Path>, groups: &[Group]) -> Result<usize> {
    let path = path.as_ref();
    let ck = Checkpoint::load(path)?;
    let mut n = 0;
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    for (name, var) in vars {
        if !groups.contains(&Group::of_param(&name)) {
            continue;
        }
        let src = ck.tensors.get(&name).with_context(|| {
            format!(
                "{}: lacks parameter `{name}` (a checkpoint of another model config?)",
                path.display()
            )
        })?;
        if src.size() != var.size() {
            bail!(
                "{}: parameter `{name}` has shape {:?}, the model {:?} (a checkpoint of another model config?)",
                path.display(),
                src.size(),
                var.size()
            );
        }
        tch::no_grad(|| {
            var.shallow_clone()
                .copy_(&src.to_kind(var.kind()).to_device(var.device()))
        });
        n += 1;
    }
    Ok(n)
}
