//! Binary masks over the prunable tensors: apply them to weights, keep pruned weights at
//! exactly zero, count sparsity per layer / per group / overall, and store them in
//! checkpoints as `__mask__.<param>` tensors (uint8).

use crate::checkpoint::{Checkpoint, MASK_PREFIX};
use crate::model::Group;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{nn, Kind, Tensor};

use super::model_api::{named_vars, PrunableParam};

/// One 0/1 mask (float, same shape and device as its parameter) per pruned tensor.
#[derive(Debug, Default)]
pub struct MaskSet {
    masks: BTreeMap<String, Tensor>,
    groups: BTreeMap<String, Group>,
}

/// Pruned and total counts of one layer or group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub numel: i64,
    pub pruned: i64,
}

impl Count {
    pub fn sparsity(&self) -> f64 {
        if self.numel == 0 {
            0.0
        } else {
            self.pruned as f64 / self.numel as f64
        }
    }
    fn add(&mut self, o: &Count) {
        self.numel += o.numel;
        self.pruned += o.pruned;
    }
}

impl Clone for MaskSet {
    fn clone(&self) -> Self {
        Self {
            masks: self
                .masks
                .iter()
                .map(|(k, v)| (k.clone(), v.copy()))
                .collect(),
            groups: self.groups.clone(),
        }
    }
}

impl MaskSet {
    /// All-ones masks (nothing pruned) for `params` on `device`.
    pub fn ones(params: &[PrunableParam], device: tch::Device) -> Self {
        let mut m = Self::default();
        for p in params {
            m.insert(
                &p.name,
                p.group,
                Tensor::ones(p.shape.as_slice(), (Kind::Float, device)),
            );
        }
        m
    }

    /// Add or replace the mask of `name` (any nonzero value means "keep").
    pub fn insert(&mut self, name: &str, group: Group, mask: Tensor) {
        let m = mask.detach().ne(0.0).to_kind(Kind::Float);
        self.masks.insert(name.to_string(), m);
        self.groups.insert(name.to_string(), group);
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.masks.get(name)
    }

    pub fn group(&self, name: &str) -> Option<Group> {
        self.groups.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.masks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// Masks by parameter name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.masks.iter()
    }

    /// Move every mask to `device`.
    pub fn to_device(&self, device: tch::Device) -> Self {
        Self {
            masks: self
                .masks
                .iter()
                .map(|(k, v)| (k.clone(), v.to_device(device)))
                .collect(),
            groups: self.groups.clone(),
        }
    }

    /// Check that every mask names a variable of `vs` with the same shape.
    pub fn check_against(&self, vs: &nn::VarStore) -> Result<()> {
        let vars = named_vars(vs);
        for (name, m) in &self.masks {
            let v = vars
                .get(name)
                .with_context(|| format!("mask `{name}` names no parameter of the model"))?;
            if v.size() != m.size() {
                bail!(
                    "mask `{name}` has shape {:?} but the parameter has {:?}",
                    m.size(),
                    v.size()
                );
            }
        }
        Ok(())
    }

    /// Multiply the variables by their masks in place (pruned weights become exactly 0).
    pub fn apply(&self, vs: &nn::VarStore) -> Result<()> {
        self.check_against(vs)?;
        let vars = named_vars(vs);
        tch::no_grad(|| {
            for (name, m) in &self.masks {
                let mut v = vars[name].shallow_clone();
                let _ = v.g_mul_(&m.to_device(v.device()).to_kind(v.kind()));
            }
        });
        Ok(())
    }

    /// Multiply the accumulated gradients by the masks (so no optimiser state builds up on
    /// pruned weights).
    pub fn mask_grads(&self, vs: &nn::VarStore) {
        let vars = named_vars(vs);
        tch::no_grad(|| {
            for (name, m) in &self.masks {
                if let Some(v) = vars.get(name) {
                    let mut g = v.grad();
                    if g.defined() {
                        let _ = g.g_mul_(&m.to_device(g.device()).to_kind(g.kind()));
                    }
                }
            }
        });
    }

    /// Number of pruned weights that are not exactly zero in `vs` (0 when the masks hold).
    pub fn violations(&self, vs: &nn::VarStore) -> i64 {
        let vars = named_vars(vs);
        let mut n = 0;
        for (name, m) in &self.masks {
            if let Some(v) = vars.get(name) {
                let bad = v
                    .detach()
                    .ne(0.0)
                    .logical_and(&m.to_device(v.device()).eq(0.0));
                n += bad.sum(Kind::Int64).int64_value(&[]);
            }
        }
        n
    }

    /// Pruned / total counts per tensor.
    pub fn per_layer(&self) -> BTreeMap<String, Count> {
        self.masks
            .iter()
            .map(|(k, m)| {
                let numel = m.numel() as i64;
                let kept = m.sum(Kind::Int64).int64_value(&[]);
                (
                    k.clone(),
                    Count {
                        numel,
                        pruned: numel - kept,
                    },
                )
            })
            .collect()
    }

    /// Pruned / total counts per group.
    pub fn per_group(&self) -> BTreeMap<Group, Count> {
        let mut out: BTreeMap<Group, Count> = BTreeMap::new();
        for (k, c) in self.per_layer() {
            let g = self
                .groups
                .get(&k)
                .copied()
                .unwrap_or_else(|| Group::of_param(&k));
            out.entry(g).or_default().add(&c);
        }
        out
    }

    /// Pruned / total counts over every masked tensor.
    pub fn overall(&self) -> Count {
        let mut c = Count::default();
        for v in self.per_layer().values() {
            c.add(v);
        }
        c
    }

    /// The masks as a `param -> 0/1 tensor` map (the trainer's form).
    pub fn to_map(&self) -> BTreeMap<String, Tensor> {
        self.masks
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect()
    }

    /// Masks from a `param -> 0/1 tensor` map (groups from the names).
    pub fn from_map(map: &BTreeMap<String, Tensor>) -> Self {
        let mut m = Self::default();
        for (k, v) in map {
            m.insert(k, Group::of_param(k), v.shallow_clone());
        }
        m
    }

    /// Store the masks in a checkpoint as uint8 `__mask__.<param>` tensors.
    pub fn write_to(&self, ckpt: &mut Checkpoint) {
        for (name, m) in &self.masks {
            ckpt.tensors.insert(
                format!("{MASK_PREFIX}{name}"),
                m.to_device(tch::Device::Cpu).to_kind(Kind::Uint8),
            );
        }
    }

    /// Read the masks of a checkpoint (empty when it has none).
    pub fn read_from(ckpt: &Checkpoint) -> Self {
        let mut m = Self::default();
        for (name, t) in ckpt.masks() {
            let g = Group::of_param(&name);
            m.insert(&name, g, t);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_apply_and_round_trip() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let w = (&root / "camera" / "fc").var("weight", &[2, 3], nn::Init::Const(1.0));
        let _b = (&root / "lidar" / "fc").var("weight", &[4], nn::Init::Const(2.0));
        let mut m = MaskSet::default();
        m.insert(
            "camera.fc.weight",
            Group::Camera,
            Tensor::from_slice(&[1f32, 0., 1., 0., 0., 1.]).view([2, 3]),
        );
        m.insert(
            "lidar.fc.weight",
            Group::Lidar,
            Tensor::from_slice(&[0f32, 0., 0., 1.]),
        );
        assert_eq!(m.violations(&vs), 6);
        m.apply(&vs).unwrap();
        assert_eq!(m.violations(&vs), 0);
        assert_eq!(w.sum(Kind::Float).double_value(&[]), 3.0);
        assert_eq!(
            m.overall(),
            Count {
                numel: 10,
                pruned: 6
            }
        );
        assert_eq!(
            m.per_group()[&Group::Lidar],
            Count {
                numel: 4,
                pruned: 3
            }
        );

        let mut c = Checkpoint::new();
        m.write_to(&mut c);
        let back = MaskSet::read_from(&c);
        assert_eq!(back.per_layer(), m.per_layer());
        assert_eq!(back.group("lidar.fc.weight"), Some(Group::Lidar));

        let mut bad = MaskSet::default();
        bad.insert(
            "fuser.nope",
            Group::Fusion,
            Tensor::ones([1], (Kind::Float, tch::Device::Cpu)),
        );
        let e = bad.apply(&vs).unwrap_err().to_string();
        assert!(e.contains("fuser.nope"), "{e}");
    }
}
