//! ProsPr (Alizadeh et al. 2022), baseline: prospect pruning. The score of a weight is
//! `|dL/dc|`, the meta-gradient of the loss after M masked SGD-with-momentum inner steps
//! with respect to a multiplicative mask c (= 1) on the weights, differentiated THROUGH the
//! inner steps.
//!
//! The unrolled computation (all trainable variables w take the inner steps; c multiplies
//! the prunable ones):
//!
//! ```text
//! theta_k = c * w_k,  g_k = dL_k/dtheta (theta_k),   v_{k+1} = mu v_k + c * g_k,
//! w_{k+1} = w_k - eta v_{k+1}   (k = 0..M-1, v_0 = 0),    score = |d L_M(c * w_M) / dc|
//! ```
//!
//! The meta-gradient is computed by reverse-mode differentiation of this recursion by hand:
//! each step's backward needs a Hessian-vector product `H_k v`, obtained by double
//! backward at w_k. This needs nothing from the model but its loss (no functional forward
//! with substituted weights), and [`unrolled_loss`] replays the same recursion for any c, so
//! the meta-gradient is checked against finite differences in the tests. Batches: D_0..D_{M-1}
//! for the inner steps and D_M for the final loss. The model is restored to theta_init.

use crate::model::ModalityMask;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::Tensor;

use super::model_api::{gradients_of, named_vars, PrunableModel, PrunableParam, Snapshot};
use super::Scores;

/// ProsPr's options (reference setup: M = 3, inner lr 0.5, momentum 0.9).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProsPrConfig {
    /// M: inner SGD steps.
    pub inner_steps: usize,
    pub inner_lr: f64,
    pub momentum: f64,
}

impl Default for ProsPrConfig {
    fn default() -> Self {
        Self {
            inner_steps: 3,
            inner_lr: 0.5,
            momentum: 0.9,
        }
    }
}

type Vars = BTreeMap<String, Tensor>;

fn trainable(vs: &tch::nn::VarStore) -> Vars {
    named_vars(vs)
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect()
}

fn set_values(vars: &Vars, values: &Vars, c: Option<&Scores>) {
    tch::no_grad(|| {
        for (name, v) in vars {
            let mut v = v.shallow_clone();
            let val = &values[name];
            match c.and_then(|c| c.get(name)) {
                Some(c) => v.copy_(&(val * c)),
                None => v.copy_(val),
            }
        }
    });
}

fn shallow(vars: &Vars) -> Vars {
    vars.iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect()
}

fn detached(vars: &Vars) -> Vars {
    vars.iter()
        .map(|(k, v)| (k.clone(), v.detach().copy()))
        .collect()
}

fn loss_at<M: PrunableModel + ?Sized>(model: &M, batch: &M::Batch) -> Result<Tensor> {
    let l = model.loss(batch, ModalityMask::FUSION)?;
    let v = l.double_value(&[]);
    if !v.is_finite() {
        bail!("ProsPr inner loss is not finite ({v}): lower the inner lr");
    }
    Ok(l)
}

/// Forward recursion for a given mask `c` (missing entries = 1); returns the final loss
/// L_M and the inner iterates w_0..w_M and gradients g_0..g_{M-1}. Leaves the model at
/// c * w_M (callers restore).
fn unroll<M: PrunableModel + ?Sized>(
    model: &M,
    c: Option<&Scores>,
    batches: &[M::Batch],
    cfg: &ProsPrConfig,
) -> Result<(f64, Vec<Vars>, Vec<Vars>, Tensor)> {
    let vs = model.var_store();
    let vars = trainable(vs);
    let m = cfg.inner_steps;
    if batches.len() != m + 1 {
        bail!(
            "ProsPr needs {} batches (M inner steps + 1), got {}",
            m + 1,
            batches.len()
        );
    }
    let mut w = detached(&vars);
    let mut v: Vars = w.iter().map(|(k, t)| (k.clone(), t.zeros_like())).collect();
    let mut ws = vec![shallow(&w)];
    let mut gs = Vec::new();
    for batch in &batches[..m] {
        set_values(&vars, &w, c);
        let g = gradients_of(vs, &loss_at(model, batch)?)?;
        let mut w_next = Vars::new();
        for (name, wk) in &w {
            let mut gk = g[name].shallow_clone();
            if let Some(ci) = c.and_then(|c| c.get(name)) {
                gk = gk * ci;
            }
            let vk = &v[name] * cfg.momentum + gk;
            w_next.insert(name.clone(), wk - &vk * cfg.inner_lr);
            v.insert(name.clone(), vk);
        }
        gs.push(g);
        w = w_next;
        ws.push(shallow(&w));
    }
    set_values(&vars, &w, c);
    let lm = loss_at(model, &batches[m])?;
    Ok((lm.double_value(&[]), ws, gs, lm))
}

/// The loss after the M masked inner steps for mask values `c` (finite-difference checks).
/// The model's variables are unchanged afterwards.
pub fn unrolled_loss<M: PrunableModel + ?Sized>(
    model: &M,
    c: &Scores,
    batches: &[M::Batch],
    cfg: &ProsPrConfig,
) -> Result<f64> {
    let init = Snapshot::take(model.var_store());
    let out = unroll(model, Some(c), batches, cfg).map(|x| x.0);
    init.restore(model.var_store());
    out
}

/// Hessian-vector product of the loss on `batch` at the model's current weights.
fn hvp<M: PrunableModel + ?Sized>(model: &M, batch: &M::Batch, vec: &Vars) -> Result<Vars> {
    let vs = model.var_store();
    let vars: Vec<(String, Tensor)> = trainable(vs).into_iter().collect();
    let inputs: Vec<&Tensor> = vars.iter().map(|(_, t)| t).collect();
    let loss = loss_at(model, batch)?;
    let grads = Tensor::f_run_backward(&[&loss], &inputs, true, true)
        .map_err(|e| anyhow::anyhow!("ProsPr: backward failed: {e}"))?;
    let mut dot: Option<Tensor> = None;
    for ((name, _), g) in vars.iter().zip(&grads) {
        if g.defined() && g.requires_grad() {
            let term = (g * &vec[name]).sum(g.kind());
            dot = Some(match dot {
                None => term,
                Some(d) => d + term,
            });
        }
    }
    let Some(dot) = dot else {
        // The loss is linear in every variable: the Hessian is zero.
        return Ok(vars
            .iter()
            .map(|(k, t)| (k.clone(), t.zeros_like()))
            .collect());
    };
    let hv = Tensor::f_run_backward(&[&dot], &inputs, false, false)
        .map_err(|e| anyhow::anyhow!("ProsPr: double backward failed: {e}"))?;
    Ok(vars
        .iter()
        .zip(hv)
        .map(|((k, t), h)| {
            (
                k.clone(),
                if h.defined() {
                    h.detach()
                } else {
                    t.zeros_like()
                },
            )
        })
        .collect())
}

/// The signed meta-gradient dL_M/dc at c = 1 for every prunable parameter. The model's
/// variables are unchanged afterwards.
pub fn meta_gradient<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    batches: &[M::Batch],
    cfg: &ProsPrConfig,
) -> Result<Scores> {
    let vs = model.var_store();
    let init = Snapshot::take(vs);
    let result = (|| {
        let (_, ws, gs, lm) = unroll(model, None, batches, cfg)?;
        let m = cfg.inner_steps;
        let g_final = gradients_of(vs, &lm)?;
        let vars = trainable(vs);
        // Adjoints.
        let mut c_bar: Scores = params
            .iter()
            .map(|p| (p.name.clone(), &g_final[&p.name] * &ws[m][&p.name]))
            .collect();
        let mut w_bar: Vars = shallow(&g_final);
        let mut v_bar: Vars = w_bar
            .iter()
            .map(|(k, t)| (k.clone(), t.zeros_like()))
            .collect();
        for k in (0..m).rev() {
            for (name, vb) in v_bar.iter_mut() {
                *vb = &*vb - &w_bar[name] * cfg.inner_lr;
            }
            for p in params {
                let cb = c_bar.get_mut(&p.name).unwrap();
                *cb = &*cb + &v_bar[&p.name] * &gs[k][&p.name];
            }
            set_values(&vars, &ws[k], None);
            let theta_bar = hvp(model, &batches[k], &v_bar)?;
            for (name, wb) in w_bar.iter_mut() {
                *wb = &*wb + &theta_bar[name];
            }
            for p in params {
                let cb = c_bar.get_mut(&p.name).unwrap();
                *cb = &*cb + &ws[k][&p.name] * &theta_bar[&p.name];
            }
            for vb in v_bar.values_mut() {
                *vb = &*vb * cfg.momentum;
            }
        }
        Ok(c_bar)
    })();
    init.restore(vs);
    result
}

/// ProsPr scores `|dL/dc|`.
pub fn prospr<M: PrunableModel + ?Sized>(
    model: &M,
    params: &[PrunableParam],
    batches: &[M::Batch],
    cfg: &ProsPrConfig,
) -> Result<Scores> {
    Ok(meta_gradient(model, params, batches, cfg)?
        .into_iter()
        .map(|(k, v)| (k, v.abs()))
        .collect())
}
