//! The report of one pruning run: overall and per-group (camera / LiDAR / fusion) sparsity,
//! per-layer sparsity, parameter counts, GFLOPs, scoring time; written as `report.json`,
//! `report.md` and a per-layer sparsity chart `sparsity.png`.

use crate::model::Group;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::nn;

use super::harness::{Granularity, Method};
use super::masks::{Count, MaskSet};
use super::model_api::PrunableParam;

/// One tensor's line of the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerStats {
    pub name: String,
    pub group: Group,
    pub numel: i64,
    pub pruned: i64,
    pub sparsity: f64,
}

/// Channel-pruning summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChannelStats {
    pub channels_before: i64,
    pub channels_after: i64,
    pub widths_before: BTreeMap<String, i64>,
    pub widths_after: BTreeMap<String, i64>,
}

/// The report of one pruning run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneReport {
    pub method: Method,
    pub granularity: Granularity,
    pub target_sparsity: f64,
    /// Sparsity over the prunable tensors.
    pub sparsity: f64,
    pub prunable_params: i64,
    pub pruned_params: i64,
    /// Parameters (every trainable tensor) before pruning and left after it.
    pub params_total: i64,
    pub params_remaining: i64,
    pub groups: BTreeMap<Group, Count>,
    pub layers: Vec<LayerStats>,
    /// GFLOPs of the dense model and of the pruned one (unstructured masks do not reduce
    /// dense compute: both are equal there).
    pub gflops_dense: f64,
    pub gflops: f64,
    pub channels: Option<ChannelStats>,
    pub scoring_seconds: f64,
    pub details: serde_json::Value,
}

fn trainable_params(vs: &nn::VarStore) -> i64 {
    vs.variables()
        .values()
        .filter(|t| t.requires_grad())
        .map(|t| t.numel() as i64)
        .sum()
}

fn layers_from(
    counts: &BTreeMap<String, (Group, Count)>,
) -> (Vec<LayerStats>, BTreeMap<Group, Count>, Count) {
    let mut layers = Vec::new();
    let mut groups: BTreeMap<Group, Count> =
        Group::ALL.iter().map(|g| (*g, Count::default())).collect();
    let mut total = Count::default();
    for (name, (g, c)) in counts {
        layers.push(LayerStats {
            name: name.clone(),
            group: *g,
            numel: c.numel,
            pruned: c.pruned,
            sparsity: c.sparsity(),
        });
        let e = groups.get_mut(g).unwrap();
        e.numel += c.numel;
        e.pruned += c.pruned;
        total.numel += c.numel;
        total.pruned += c.pruned;
    }
    (layers, groups, total)
}

impl PruneReport {
    /// Report of an unstructured run from its masks.
    pub fn from_masks(
        method: Method,
        target: f64,
        masks: &MaskSet,
        vs: &nn::VarStore,
        gflops: f64,
        scoring_seconds: f64,
        details: serde_json::Value,
    ) -> Self {
        let counts: BTreeMap<String, (Group, Count)> = masks
            .per_layer()
            .into_iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    (masks.group(&k).unwrap_or_else(|| Group::of_param(&k)), c),
                )
            })
            .collect();
        let (layers, groups, total) = layers_from(&counts);
        let params_total = trainable_params(vs);
        Self {
            method,
            granularity: Granularity::Weight,
            target_sparsity: target,
            sparsity: total.sparsity(),
            prunable_params: total.numel,
            pruned_params: total.pruned,
            params_total,
            params_remaining: params_total - total.pruned,
            groups,
            layers,
            gflops_dense: gflops,
            gflops,
            channels: None,
            scoring_seconds,
            details,
        }
    }

    /// Report of a structured run: per-tensor sizes before (`params`, the dense prunable
    /// tensors; `vs`, the dense model) and after (`shrunk`).
    #[allow(clippy::too_many_arguments)]
    pub fn from_structured(
        method: Method,
        target: f64,
        params: &[PrunableParam],
        vs: &nn::VarStore,
        shrunk: &BTreeMap<String, tch::Tensor>,
        channels: ChannelStats,
        gflops_dense: f64,
        gflops: f64,
        scoring_seconds: f64,
        details: serde_json::Value,
    ) -> Self {
        let counts: BTreeMap<String, (Group, Count)> = params
            .iter()
            .map(|p| {
                let after = shrunk
                    .get(&p.name)
                    .map(|t| t.numel() as i64)
                    .unwrap_or(p.numel());
                (
                    p.name.clone(),
                    (
                        p.group,
                        Count {
                            numel: p.numel(),
                            pruned: p.numel() - after,
                        },
                    ),
                )
            })
            .collect();
        let (layers, groups, total) = layers_from(&counts);
        let params_total = trainable_params(vs);
        let trainable: std::collections::HashSet<String> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(k, _)| k)
            .collect();
        let params_remaining = shrunk
            .iter()
            .filter(|(k, _)| trainable.contains(*k))
            .map(|(_, t)| t.numel() as i64)
            .sum();
        Self {
            method,
            granularity: Granularity::Channel,
            target_sparsity: target,
            sparsity: total.sparsity(),
            prunable_params: total.numel,
            pruned_params: total.pruned,
            params_total,
            params_remaining,
            groups,
            layers,
            gflops_dense,
            gflops,
            channels: Some(channels),
            scoring_seconds,
            details,
        }
    }

    /// Markdown rendering.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "# Pruning report: {} ({:?} granularity)\n\n",
            self.method.label(),
            self.granularity
        ));
        s.push_str("| quantity | value |\n|---|---|\n");
        s.push_str(&format!(
            "| target sparsity | {:.1}% |\n",
            100.0 * self.target_sparsity
        ));
        s.push_str(&format!(
            "| sparsity of prunable weights | {:.2}% ({} of {}) |\n",
            100.0 * self.sparsity,
            self.pruned_params,
            self.prunable_params
        ));
        s.push_str(&format!(
            "| parameters | {} -> {} ({:.2}% removed) |\n",
            self.params_total,
            self.params_remaining,
            100.0 * (1.0 - self.params_remaining as f64 / self.params_total.max(1) as f64)
        ));
        s.push_str(&format!(
            "| GFLOPs | {:.3} -> {:.3} |\n",
            self.gflops_dense, self.gflops
        ));
        if let Some(c) = &self.channels {
            s.push_str(&format!(
                "| channels | {} -> {} |\n",
                c.channels_before, c.channels_after
            ));
        }
        s.push_str(&format!(
            "| scoring time | {:.2} s |\n\n",
            self.scoring_seconds
        ));
        s.push_str("## Per group\n\n| group | weights | pruned | sparsity |\n|---|---|---|---|\n");
        for (g, c) in &self.groups {
            s.push_str(&format!(
                "| {} | {} | {} | {:.2}% |\n",
                g.name(),
                c.numel,
                c.pruned,
                100.0 * c.sparsity()
            ));
        }
        if let Some(stats) = self.details.get("alter_eva").and_then(|v| v.as_array()) {
            let norm = self.details.get("normalisation").and_then(|v| v.as_str()).unwrap_or("sum");
            s.push_str(&format!(
                "\n## AlterEva terms (normalisation: {norm})\n\n\
                 Spearman rank correlations within each group; ReRI/DeCI is the ratio of the raw sums.\n\n\
                 | group | weights | corr(DeCI, ReRI) | corr(AlterEva, DeCI) | AlterEva < 0 | ReRI/DeCI |\n\
                 |---|---|---|---|---|---|\n"
            ));
            for g in stats {
                let f = |k: &str| g.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
                s.push_str(&format!(
                    "| {} | {} | {:.3} | {:.3} | {:.1}% | {:.3} |\n",
                    g.get("group").and_then(|v| v.as_str()).unwrap_or("?"),
                    g.get("weights").and_then(|v| v.as_i64()).unwrap_or(0),
                    f("rank_corr_deci_reri"),
                    f("rank_corr_score_deci"),
                    100.0 * f("negative_share"),
                    f("reri_to_deci"),
                ));
            }
        }
        if let Some(c) = &self.channels {
            s.push_str("\n## Channel widths\n\n| slot | before | after |\n|---|---|---|\n");
            for (k, b) in &c.widths_before {
                s.push_str(&format!(
                    "| {k} | {b} | {} |\n",
                    c.widths_after.get(k).copied().unwrap_or(*b)
                ));
            }
        }
        s.push_str("\n## Per layer\n\n![per-layer sparsity](sparsity.png)\n\n| # | tensor | group | weights | sparsity |\n|---|---|---|---|---|\n");
        for (i, l) in self.layers.iter().enumerate() {
            s.push_str(&format!(
                "| {} | `{}` | {} | {} | {:.2}% |\n",
                i + 1,
                l.name,
                l.group.name(),
                l.numel,
                100.0 * l.sparsity
            ));
        }
        s
    }

    /// Write `report.json`, `report.md` and `sparsity.png` into `dir` (atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::io::write_json(dir.join("report.json"), self)?;
        crate::io::atomic_write(dir.join("report.md"), self.markdown().as_bytes())?;
        // Layers are numbered as in report.md's per-layer table (full names do not fit).
        let cats: Vec<String> = (1..=self.layers.len()).map(|i| i.to_string()).collect();
        let vals: Vec<f64> = self.layers.iter().map(|l| l.sparsity).collect();
        crate::plot::bar_chart(
            dir.join("sparsity.png"),
            &format!(
                "{} per-layer sparsity (overall {:.1}%)",
                self.method.label(),
                100.0 * self.sparsity
            ),
            "fraction pruned",
            &cats,
            &[("pruned".to_string(), vals)],
        )
    }
}
