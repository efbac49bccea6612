//! ONE global threshold over all prunable parameters (Algorithm 1, step 2): camera, LiDAR
//! and fusion scores are ranked together, so the groups end up with different sparsities.
//!
//! The threshold tau is the rho-quantile of the scores, found with `kthvalue` (libtorch's
//! `quantile` refuses inputs above 16M elements). Exactly `round(rho * N)` weights are
//! pruned: everything strictly below tau, then as many weights scoring exactly tau as still
//! needed, earliest first in the deterministic order (parameters sorted by name, then
//! row-major position). Weights already pruned by a `frozen` mask (iterative methods) are
//! ranked below everything else and stay pruned.

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::masks::MaskSet;
use super::model_api::PrunableParam;
use super::Scores;

/// Number of weights pruned at `sparsity` out of `n`: `round(sparsity * n)`.
pub fn prune_count(sparsity: f64, n: i64) -> i64 {
    ((sparsity * n as f64).round() as i64).clamp(0, n)
}

/// Boolean tensor marking the `k` smallest entries of the 1-D tensor `flat`; ties at the
/// k-th value are broken by position (earlier entries are pruned first).
pub fn lowest_k(flat: &Tensor, k: i64) -> Tensor {
    let n = flat.numel() as i64;
    if k <= 0 {
        return flat.zeros_like().to_kind(Kind::Bool);
    }
    if k >= n {
        return flat.ones_like().to_kind(Kind::Bool);
    }
    let (tau, _) = flat.kthvalue(k, 0, false);
    let below = flat.lt_tensor(&tau);
    let n_below = below.sum(Kind::Int64).int64_value(&[]);
    let ties = flat.eq_tensor(&tau);
    let need = k - n_below;
    let tie_rank = ties.to_kind(Kind::Int64).cumsum(0, Kind::Int64);
    let tie_pruned = ties.logical_and(&tie_rank.le(need));
    below.logical_or(&tie_pruned)
}

/// Concatenate the scores of `params` (in order) into one 1-D tensor.
pub fn flatten_scores(params: &[PrunableParam], scores: &Scores) -> Result<Tensor> {
    let mut parts = Vec::with_capacity(params.len());
    let double = scores.values().any(|t| t.kind() == Kind::Double);
    let kind = if double { Kind::Double } else { Kind::Float };
    for p in params {
        let s = match scores.get(&p.name) {
            Some(s) => s,
            None => bail!("no score for prunable parameter `{}`", p.name),
        };
        if s.size() != p.shape {
            bail!(
                "score of `{}` has shape {:?}, the parameter {:?}",
                p.name,
                s.size(),
                p.shape
            );
        }
        let nan = s.isnan().any().int64_value(&[]) != 0;
        if nan {
            bail!(
                "the scores of `{}` contain NaN (diverged gradients?)",
                p.name
            );
        }
        parts.push(
            s.detach()
                .to_kind(kind)
                .to_device(tch::Device::Cpu)
                .flatten(0, -1),
        );
    }
    if parts.is_empty() {
        bail!("there are no prunable parameters");
    }
    Ok(Tensor::cat(&parts, 0))
}

/// The mask keeping the `1 - sparsity` fraction of highest-scoring weights over all `params`
/// together (one global threshold). With `frozen`, weights it already prunes stay pruned.
pub fn global_mask(
    params: &[PrunableParam],
    scores: &Scores,
    sparsity: f64,
    frozen: Option<&MaskSet>,
) -> Result<MaskSet> {
    if !(0.0..=1.0).contains(&sparsity) {
        bail!("sparsity {sparsity} is outside [0, 1]");
    }
    let mut flat = flatten_scores(params, scores)?;
    if let Some(f) = frozen {
        let mut parts = Vec::new();
        for p in params {
            match f.get(&p.name) {
                Some(m) => parts.push(m.to_device(tch::Device::Cpu).flatten(0, -1)),
                None => parts.push(Tensor::ones([p.numel()], (Kind::Float, tch::Device::Cpu))),
            }
        }
        let keep = Tensor::cat(&parts, 0).ne(0.0);
        flat = flat.where_self(&keep, &Tensor::from(f64::NEG_INFINITY).to_kind(flat.kind()));
    }
    let n = flat.numel() as i64;
    let mut k = prune_count(sparsity, n);
    if let Some(f) = frozen {
        k = k.max(f.overall().pruned);
    }
    let prune = lowest_k(&flat, k);
    let keep = prune.logical_not().to_kind(Kind::Float);
    let mut out = MaskSet::default();
    let mut start = 0i64;
    let device = scores
        .values()
        .next()
        .map(|t| t.device())
        .unwrap_or(tch::Device::Cpu);
    for p in params {
        let m = keep
            .narrow(0, start, p.numel())
            .view(p.shape.as_slice())
            .to_device(device);
        out.insert(&p.name, p.group, m);
        start += p.numel();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Group;

    fn param(name: &str, shape: &[i64]) -> PrunableParam {
        PrunableParam {
            name: name.into(),
            group: Group::of_param(name),
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn lowest_k_breaks_ties_by_position() {
        let t = Tensor::from_slice(&[3f32, 1., 1., 1., 0., 5.]);
        let p = lowest_k(&t, 3);
        assert_eq!(
            Vec::<bool>::try_from(&p).unwrap(),
            vec![false, true, true, false, true, false]
        );
        assert_eq!(lowest_k(&t, 0).sum(Kind::Int64).int64_value(&[]), 0);
        assert_eq!(lowest_k(&t, 6).sum(Kind::Int64).int64_value(&[]), 6);
    }

    #[test]
    fn global_threshold_hits_sparsity_exactly_across_groups() {
        tch::manual_seed(3);
        let params = vec![
            param("camera.a", &[37, 11]),
            param("fuser.b", &[5, 3, 3]),
            param("lidar.c", &[101]),
        ];
        let mut scores = Scores::new();
        for p in &params {
            // Rounded to create many ties.
            let s =
                (Tensor::rand(p.shape.as_slice(), (Kind::Float, tch::Device::Cpu)) * 20.0).floor();
            scores.insert(p.name.clone(), s);
        }
        let n: i64 = params.iter().map(|p| p.numel()).sum();
        for rho in [0.0, 0.1, 0.5, 0.8, 0.85, 0.9, 0.999, 1.0] {
            let m = global_mask(&params, &scores, rho, None).unwrap();
            let pruned = m.overall().pruned;
            assert!(
                (pruned as f64 - rho * n as f64).abs() <= 0.5 + 1e-9,
                "rho {rho}: {pruned} of {n}"
            );
            // Every kept score >= every pruned score.
            let flat = flatten_scores(&params, &scores).unwrap();
            let keep = Tensor::cat(
                &params
                    .iter()
                    .map(|p| m.get(&p.name).unwrap().flatten(0, -1))
                    .collect::<Vec<_>>(),
                0,
            );
            if pruned > 0 && pruned < n {
                let min_kept = flat.masked_select(&keep.ne(0.0)).min().double_value(&[]);
                let max_pruned = flat.masked_select(&keep.eq(0.0)).max().double_value(&[]);
                assert!(min_kept >= max_pruned);
            }
        }
    }

    #[test]
    fn frozen_weights_stay_pruned_and_nan_is_an_error() {
        let params = vec![param("camera.a", &[4])];
        let mut scores = Scores::new();
        scores.insert("camera.a".into(), Tensor::from_slice(&[9f32, 1., 2., 3.]));
        let mut frozen = MaskSet::default();
        frozen.insert(
            "camera.a",
            Group::Camera,
            Tensor::from_slice(&[0f32, 1., 1., 1.]),
        );
        let m = global_mask(&params, &scores, 0.5, Some(&frozen)).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(m.get("camera.a").unwrap()).unwrap(),
            vec![0., 0., 1., 1.]
        );
        scores.insert(
            "camera.a".into(),
            Tensor::from_slice(&[f32::NAN, 1., 2., 3.]),
        );
        let e = global_mask(&params, &scores, 0.5, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("camera.a") && e.contains("NaN"), "{e}");
    }
}
