//! Adam / AdamW written over tensors, so that its state (moments, step counts) can be saved
//! in a checkpoint and a resumed run continues bit-exactly. Gradient-norm clipping, optional
//! pruning masks (masked gradients and weights stay exactly zero), and a dynamic loss scaler
//! for mixed precision on CUDA.

use crate::model::config::OptimizerKind;
use crate::model::load::OPTIM_PREFIX;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Adam (L2 weight decay added to the gradient) or AdamW (decoupled weight decay).
#[derive(Debug)]
pub struct Adam {
    pub kind: OptimizerKind,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    steps: Vec<i64>,
}

impl Adam {
    /// Optimise `params` (name -> variable; iteration order is the name order).
    pub fn new(
        params: &BTreeMap<String, Tensor>,
        kind: OptimizerKind,
        betas: [f64; 2],
        weight_decay: f64,
    ) -> Self {
        let names: Vec<String> = params.keys().cloned().collect();
        let params: Vec<Tensor> = params.values().map(|t| t.shallow_clone()).collect();
        let exp_avg = params.iter().map(|p| p.zeros_like().detach()).collect();
        let exp_avg_sq = params.iter().map(|p| p.zeros_like().detach()).collect();
        let steps = vec![0; params.len()];
        Self {
            kind,
            beta1: betas[0],
            beta2: betas[1],
            eps: 1e-8,
            weight_decay,
            names,
            params,
            exp_avg,
            exp_avg_sq,
            steps,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn zero_grad(&self) {
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// Global L2 norm of the gradients (of parameters that have one).
    pub fn grad_norm(&self) -> f64 {
        tch::no_grad(|| {
            let mut sq = Vec::new();
            for p in &self.params {
                let g = p.grad();
                if g.defined() {
                    sq.push(g.to_kind(Kind::Float).square().sum(Kind::Float));
                }
            }
            if sq.is_empty() {
                return 0.0;
            }
            f64::try_from(Tensor::stack(&sq, 0).sum(Kind::Float).sqrt()).unwrap_or(f64::NAN)
        })
    }

    /// Multiply every gradient by `s`.
    pub fn scale_grads(&self, s: f64) {
        tch::no_grad(|| {
            for p in &self.params {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(s);
                }
            }
        });
    }

    /// Clip the global gradient norm to `max` (0 = off). Returns the norm before clipping.
    pub fn clip_grad_norm(&self, max: f64) -> f64 {
        let n = self.grad_norm();
        if max > 0.0 && n.is_finite() && n > max {
            self.scale_grads(max / (n + 1e-6));
        }
        n
    }

    /// One update with learning rate `lr`. Parameters without a gradient are skipped.
    /// `masks` (param name -> 0/1) zero the masked gradients before and the masked weights
    /// after the update.
    pub fn step(&mut self, lr: f64, masks: Option<&BTreeMap<String, Tensor>>) {
        tch::no_grad(|| {
            for i in 0..self.params.len() {
                let p = &self.params[i];
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mask = masks.and_then(|m| m.get(&self.names[i]));
                if let Some(m) = mask {
                    let _ = g.g_mul_(m);
                }
                self.steps[i] += 1;
                let t = self.steps[i] as f64;
                let mut grad = g.to_kind(Kind::Float);
                if self.kind == OptimizerKind::Adam && self.weight_decay != 0.0 {
                    grad = grad + p * self.weight_decay;
                }
                let (b1, b2) = (self.beta1, self.beta2);
                let m = &mut self.exp_avg[i];
                let _ = m.g_mul_scalar_(b1);
                let _ = m.g_add_(&(&grad * (1.0 - b1)));
                let v = &mut self.exp_avg_sq[i];
                let _ = v.g_mul_scalar_(b2);
                let _ = v.g_add_(&(grad.square() * (1.0 - b2)));
                let bc1 = 1.0 - b1.powf(t);
                let bc2 = 1.0 - b2.powf(t);
                let mut p = p.shallow_clone();
                if self.kind == OptimizerKind::Adamw && self.weight_decay != 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
                }
                let denom = (v.shallow_clone() / bc2).sqrt() + self.eps;
                let upd = (m.shallow_clone() / bc1) / denom * lr;
                let _ = p.g_sub_(&upd.to_kind(p.kind()));
                if let Some(m) = mask {
                    let _ = p.g_mul_(m);
                }
            }
        });
    }

    /// Moments as checkpoint tensors (`__optim__.exp_avg.<name>`, ...) and step counts.
    pub fn state(&self) -> (BTreeMap<String, Tensor>, Vec<i64>) {
        let mut t = BTreeMap::new();
        for (i, n) in self.names.iter().enumerate() {
            t.insert(
                format!("{OPTIM_PREFIX}exp_avg.{n}"),
                self.exp_avg[i].to_device(tch::Device::Cpu),
            );
            t.insert(
                format!("{OPTIM_PREFIX}exp_avg_sq.{n}"),
                self.exp_avg_sq[i].to_device(tch::Device::Cpu),
            );
        }
        (t, self.steps.clone())
    }

    /// Restore from [`Adam::state`].
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, steps: &[i64]) -> Result<()> {
        if steps.len() != self.params.len() {
            bail!(
                "optimiser state has {} parameters, the optimiser {}",
                steps.len(),
                self.params.len()
            );
        }
        tch::no_grad(|| -> Result<()> {
            for (i, n) in self.names.iter().enumerate() {
                for (which, dst) in [
                    ("exp_avg", &mut self.exp_avg[i]),
                    ("exp_avg_sq", &mut self.exp_avg_sq[i]),
                ] {
                    let key = format!("{OPTIM_PREFIX}{which}.{n}");
                    let src = tensors
                        .get(&key)
                        .with_context(|| format!("optimiser state lacks `{key}`"))?;
                    if src.size() != dst.size() {
                        bail!(
                            "optimiser state `{key}` has shape {:?}, expected {:?}",
                            src.size(),
                            dst.size()
                        );
                    }
                    dst.copy_(&src.to_device(dst.device()));
                }
            }
            Ok(())
        })?;
        self.steps = steps.to_vec();
        Ok(())
    }
}

/// Dynamic loss scaling for fp16 autocast: scale the loss, skip steps whose gradients
/// overflow and halve the scale; double it after `interval` clean steps.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    pub good_steps: usize,
    pub interval: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            good_steps: 0,
            interval: 200,
        }
    }
}

impl LossScaler {
    /// After backward on `loss * scale`: unscale; returns false (skip the step) on overflow.
    pub fn unscale(&mut self, opt: &Adam) -> bool {
        opt.scale_grads(1.0 / self.scale);
        let ok = opt.grad_norm().is_finite();
        if ok {
            self.good_steps += 1;
            if self.good_steps >= self.interval {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// One AdamW step from zero moments moves each weight by lr * sign(g) (plus decay).
    #[test]
    fn first_step_matches_closed_form_and_masks_hold() {
        let w = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
        let mut ps = BTreeMap::new();
        ps.insert("w".to_string(), w.shallow_clone());
        let mut opt = Adam::new(&ps, OptimizerKind::Adamw, [0.9, 0.999], 0.1);
        let loss = (&w * Tensor::from_slice(&[2.0f32, 3.0, -4.0])).sum(Kind::Float);
        loss.backward();
        let mut masks = BTreeMap::new();
        masks.insert("w".to_string(), Tensor::from_slice(&[1.0f32, 1.0, 0.0]));
        opt.step(0.01, Some(&masks));
        let got = Vec::<f32>::try_from(&w.detach()).unwrap();
        // w * (1 - lr wd) - lr * g / (|g| + eps')
        let expect = [1.0 * (1.0 - 0.001) - 0.01, -2.0 * (1.0 - 0.001) - 0.01, 0.0];
        for (g, e) in got.iter().zip(expect) {
            assert!((*g as f64 - e).abs() < 1e-6, "{got:?}");
        }
        // state round trip
        let (st, steps) = opt.state();
        let mut opt2 = Adam::new(&ps, OptimizerKind::Adamw, [0.9, 0.999], 0.1);
        opt2.load_state(&st, &steps).unwrap();
        assert_eq!(opt2.state().1, vec![1]);
        let _ = Device::Cpu;
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let w = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
        let mut ps = BTreeMap::new();
        ps.insert("w".to_string(), w.shallow_clone());
        let opt = Adam::new(&ps, OptimizerKind::Adam, [0.9, 0.999], 0.0);
        (&w * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(Kind::Float)
            .backward();
        let n = opt.clip_grad_norm(1.0);
        assert!((n - 5.0).abs() < 1e-6);
        assert!((opt.grad_norm() - 1.0).abs() < 1e-5);
    }
}
