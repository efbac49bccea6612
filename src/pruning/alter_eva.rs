//! AlterEva, the alternative evaluation (paper Eqs. 11-13): each parameter's importance
//! combines its contribution (DeCI) and, with a negative sign, its reactivated redundancy
//! (ReRI), each term normalised by its sum over the parameter's own group:
//!
//! ```text
//! S(c) = a*DeCI_c/sum(DeCI_c) - b*ReRI_c(mu_l=0)/sum(ReRI_c(mu_l=0))
//! S(l) = a*DeCI_l/sum(DeCI_l) - b*ReRI_l(mu_c=0)/sum(ReRI_l(mu_c=0))
//! S(f) = a*DeCI_f/sum(DeCI_f) - (b/2)*ReRI_f(mu_l=0)/sum(..) - (b/2)*ReRI_f(mu_c=0)/sum(..)
//! ```
//!
//! Sums run over all prunable parameters of the group. A term whose group sum is zero (a
//! group that received no gradient at all) contributes zero.
//!
//! `normalisation: mean` (not the paper's; an option for studying it) divides each term by
//! its group MEAN instead of its sum. Within a group the ranking is the same; across groups
//! it removes the 1/(group size) scale that the sum gives, which decides how one global
//! threshold splits the sparsity between camera, LiDAR and fusion.
//!
//! [`diagnostics`] measures, per group, how the two terms relate (rank correlation of DeCI
//! and ReRI, of AlterEva and DeCI, share of negative scores): when ReRI ranks parameters the
//! same way DeCI does, the difference of the two normalised terms carries little of either.

use crate::model::Group;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::Tensor;

use super::model_api::PrunableParam;
use super::Scores;

/// What each AlterEva term is divided by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupNormalisation {
    /// Its sum over the group (paper Eqs. 11-13; the default).
    #[default]
    Sum,
    /// Its mean over the group (a deviation from the paper, for study).
    Mean,
}

impl GroupNormalisation {
    pub fn is_sum(&self) -> bool {
        *self == Self::Sum
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Mean => "mean",
        }
    }
}

/// alpha (DeCI weight) and beta (ReRI weight); the paper's default is a = b = 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlterEvaConfig {
    pub alpha: f64,
    pub beta: f64,
    pub normalisation: GroupNormalisation,
}

impl Default for AlterEvaConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 1.0,
            normalisation: GroupNormalisation::Sum,
        }
    }
}

/// Number of prunable weights per group.
fn group_sizes(params: &[PrunableParam]) -> BTreeMap<Group, f64> {
    let mut out: BTreeMap<Group, f64> = Group::ALL.iter().map(|g| (*g, 0.0)).collect();
    for p in params {
        *out.get_mut(&p.group).unwrap() += p.numel() as f64;
    }
    out
}

/// Sum of `scores` over each group's parameters.
pub fn group_sums(params: &[PrunableParam], scores: &Scores) -> Result<BTreeMap<Group, f64>> {
    let mut out: BTreeMap<Group, f64> = Group::ALL.iter().map(|g| (*g, 0.0)).collect();
    for p in params {
        let s = scores
            .get(&p.name)
            .with_context(|| format!("no score for `{}`", p.name))?;
        *out.get_mut(&p.group).unwrap() += s.sum(tch::Kind::Double).double_value(&[]);
    }
    Ok(out)
}

fn normalised(s: &Tensor, sum: f64) -> Tensor {
    if sum > 0.0 {
        s / sum
    } else {
        s.zeros_like()
    }
}

/// AlterEva scores from DeCI and the two ReRI stages (`reri_lidar_masked`: mu_l = 0, gives
/// the camera and fusion ReRI; `reri_camera_masked`: mu_c = 0, gives LiDAR and fusion ReRI).
pub fn alter_eva(
    params: &[PrunableParam],
    deci: &Scores,
    reri_lidar_masked: &Scores,
    reri_camera_masked: &Scores,
    cfg: &AlterEvaConfig,
) -> Result<Scores> {
    let mut d_sum = group_sums(params, deci)?;
    let mut rl_sum = group_sums(params, reri_lidar_masked)?;
    let mut rc_sum = group_sums(params, reri_camera_masked)?;
    if cfg.normalisation == GroupNormalisation::Mean {
        let n = group_sizes(params);
        for sums in [&mut d_sum, &mut rl_sum, &mut rc_sum] {
            for (g, v) in sums.iter_mut() {
                *v /= n[g].max(1.0);
            }
        }
    }
    let mut out = Scores::new();
    for p in params {
        let g = p.group;
        let mut s = normalised(&deci[&p.name], d_sum[&g]) * cfg.alpha;
        let stages = [(reri_lidar_masked, &rl_sum), (reri_camera_masked, &rc_sum)];
        for (w, (reri, sums)) in reri_stage_weights(g).into_iter().zip(stages) {
            if w > 0.0 {
                s = s - normalised(&reri[&p.name], sums[&g]) * (cfg.beta * w);
            }
        }
        out.insert(p.name.clone(), s);
    }
    Ok(out)
}

/// Weights of the two ReRI stages (LiDAR masked, camera masked) in a group's score: camera
/// parameters are reactivated with the LiDAR masked, LiDAR parameters with the camera
/// masked, and fusion parameters take half of each (Eq. 13).
fn reri_stage_weights(g: Group) -> [f64; 2] {
    match g {
        Group::Camera => [1.0, 0.0],
        Group::Lidar => [0.0, 1.0],
        Group::Fusion => [0.5, 0.5],
    }
}

/// How the AlterEva terms relate within one group (see [`diagnostics`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaGroupStats {
    pub group: String,
    pub weights: i64,
    /// Spearman rank correlation of DeCI and the group's ReRI (fusion: the mean of its two
    /// normalised stages). Near 1: ReRI ranks weights as DeCI does.
    pub rank_corr_deci_reri: f64,
    /// Spearman rank correlation of the AlterEva score and DeCI.
    pub rank_corr_score_deci: f64,
    /// Share of the group's weights with a negative AlterEva score.
    pub negative_share: f64,
    /// sum(ReRI) / sum(DeCI) over the group, raw (before normalisation).
    pub reri_to_deci: f64,
}

fn flat(params: &[&PrunableParam], scores: &Scores) -> Tensor {
    let parts: Vec<Tensor> =
        params.iter().map(|p| scores[&p.name].flatten(0, -1).to_kind(tch::Kind::Double)).collect();
    Tensor::cat(&parts, 0)
}

/// Spearman rank correlation (ordinal ranks; ties broken by position).
fn spearman(a: &Tensor, b: &Tensor) -> f64 {
    let rank = |t: &Tensor| t.argsort(0, false).argsort(0, false).to_kind(tch::Kind::Double);
    let (ra, rb) = (rank(a), rank(b));
    let (ra, rb) = (&ra - ra.mean(tch::Kind::Double), &rb - rb.mean(tch::Kind::Double));
    let den = (ra.square().sum(tch::Kind::Double) * rb.square().sum(tch::Kind::Double))
        .sqrt()
        .double_value(&[]);
    if den > 0.0 {
        (ra * rb).sum(tch::Kind::Double).double_value(&[]) / den
    } else {
        0.0
    }
}

/// Per-group statistics of DeCI, ReRI and the AlterEva scores (for the pruning report).
pub fn diagnostics(
    params: &[PrunableParam],
    deci: &Scores,
    reri_lidar_masked: &Scores,
    reri_camera_masked: &Scores,
    scores: &Scores,
) -> Result<Vec<EvaGroupStats>> {
    let rl_sum = group_sums(params, reri_lidar_masked)?;
    let rc_sum = group_sums(params, reri_camera_masked)?;
    let mut out = Vec::new();
    for g in Group::ALL {
        let ps: Vec<&PrunableParam> = params.iter().filter(|p| p.group == g).collect();
        if ps.is_empty() {
            continue;
        }
        let d = flat(&ps, deci);
        // the group's ReRI as its score uses it: the weighted normalised stages (ranks do not
        // depend on the normalisation), and the weighted raw sums
        let mut r = d.zeros_like();
        let mut r_raw = 0.0;
        let stages = [(reri_lidar_masked, &rl_sum), (reri_camera_masked, &rc_sum)];
        for (w, (reri, sums)) in reri_stage_weights(g).into_iter().zip(stages) {
            if w > 0.0 {
                r += normalised(&flat(&ps, reri), sums[&g]) * w;
                r_raw += w * sums[&g];
            }
        }
        let s = flat(&ps, scores);
        let n = d.numel() as i64;
        let d_total = d.sum(tch::Kind::Double).double_value(&[]);
        out.push(EvaGroupStats {
            group: g.name().to_string(),
            weights: n,
            rank_corr_deci_reri: spearman(&d, &r),
            rank_corr_score_deci: spearman(&s, &d),
            negative_share: s.lt(0.0).sum(tch::Kind::Double).double_value(&[]) / n.max(1) as f64,
            reri_to_deci: if d_total > 0.0 { r_raw / d_total } else { 0.0 },
        });
    }
    Ok(out)
}

