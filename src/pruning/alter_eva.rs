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

use crate::model::Group;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::Tensor;

use super::model_api::PrunableParam;
use super::Scores;

/// alpha (DeCI weight) and beta (ReRI weight); the paper's default is a = b = 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlterEvaConfig {
    pub alpha: f64,
    pub beta: f64,
}

impl Default for AlterEvaConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 1.0,
        }
    }
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
    let d_sum = group_sums(params, deci)?;
    let rl_sum = group_sums(params, reri_lidar_masked)?;
    let rc_sum = group_sums(params, reri_camera_masked)?;
    let mut out = Scores::new();
    for p in params {
        let g = p.group;
        let d = normalised(&deci[&p.name], d_sum[&g]) * cfg.alpha;
        let s = match g {
            Group::Camera => d - normalised(&reri_lidar_masked[&p.name], rl_sum[&g]) * cfg.beta,
            Group::Lidar => d - normalised(&reri_camera_masked[&p.name], rc_sum[&g]) * cfg.beta,
            Group::Fusion => {
                d - normalised(&reri_lidar_masked[&p.name], rl_sum[&g]) * (cfg.beta / 2.0)
                    - normalised(&reri_camera_masked[&p.name], rc_sum[&g]) * (cfg.beta / 2.0)
            }
        };
        out.insert(p.name.clone(), s);
    }
    Ok(out)
}
