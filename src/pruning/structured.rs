//! Structured (channel) pruning, `--granularity channel`: removes whole channels and
//! produces a PHYSICALLY smaller model.
//!
//! 1. Channel scores from per-weight scores: for each channel slot (a set of coupled
//!    channels, [`ChannelGroup`]), the score of channel j is the sum of the per-weight scores
//!    of every scored tensor slice belonging to it (the producing conv's output row, the
//!    consuming convs' input columns, at the concat offset). The default aggregation, `sum`,
//!    adds the scores with their sign: for the non-negative criteria (SNIP, magnitude,
//!    SynFlow, ProsPr, random) it is exactly the usual "sum of |scores|", and for AlterEva's
//!    signed importance it keeps the meaning of a negative score (more reactivated
//!    redundancy than contribution). `sum_abs` sums absolute values instead.
//! 2. One global threshold over all channel scores removes `round(sparsity * channels)`
//!    channels, keeping at least `max(min_channels, ceil(min_fraction * width))` channels in
//!    every slot (ties broken by position, deterministically).
//! 3. Every member tensor is sliced along its dimension (conv outputs, BN vectors and
//!    statistics, next layers' inputs, all producers of a residual sum, the right range of a
//!    concatenation), and the new widths are returned for the model config's `widths`
//!    overrides: the result loads into a model built with those widths and needs no mask.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

use super::model_api::ChannelGroup;
use super::threshold::lowest_k;
use super::Scores;

/// How per-weight scores aggregate into a channel score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelAggregation {
    /// Sum of the scores (= sum of |scores| for non-negative criteria).
    #[default]
    Sum,
    /// Sum of absolute values.
    SumAbs,
}

/// Structured-pruning options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StructuredConfig {
    pub aggregation: ChannelAggregation,
    /// Every slot keeps at least this many channels...
    pub min_channels: i64,
    /// ...and at least this fraction of its width.
    pub min_fraction: f64,
}

impl Default for StructuredConfig {
    fn default() -> Self {
        Self {
            aggregation: ChannelAggregation::Sum,
            min_channels: 2,
            min_fraction: 0.125,
        }
    }
}

/// The outcome of a channel selection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChannelSelection {
    /// New width per slot.
    pub widths: BTreeMap<String, i64>,
    /// Kept channel indices per slot (ascending).
    pub kept: BTreeMap<String, Vec<i64>>,
    /// Channels before / after over all slots.
    pub channels_before: i64,
    pub channels_after: i64,
}

/// Channel scores (1-D, double, length = slot width) per slot.
pub fn channel_scores(
    groups: &[ChannelGroup],
    scores: &Scores,
    agg: ChannelAggregation,
) -> Result<Vec<Tensor>> {
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let mut acc = Tensor::zeros([g.size], (Kind::Double, tch::Device::Cpu));
        let mut scored = 0;
        for m in &g.members {
            let Some(s) = scores.get(&m.param) else {
                continue;
            };
            let s = s.detach().to_device(tch::Device::Cpu).to_kind(Kind::Double);
            let d = s.size().get(m.dim as usize).copied().with_context(|| {
                format!(
                    "slot `{}`: `{}` has no dimension {} (shape {:?})",
                    g.slot,
                    m.param,
                    m.dim,
                    s.size()
                )
            })?;
            if m.offset < 0 || m.offset + g.size > d {
                bail!(
                    "slot `{}` (width {}): `{}` dim {} has size {d}, offset {} does not fit",
                    g.slot,
                    g.size,
                    m.param,
                    m.dim,
                    m.offset
                );
            }
            let part = s
                .narrow(m.dim, m.offset, g.size)
                .transpose(0, m.dim)
                .reshape([g.size, -1]);
            let part = match agg {
                ChannelAggregation::Sum => part,
                ChannelAggregation::SumAbs => part.abs(),
            };
            acc += part.sum_dim_intlist(1, false, Kind::Double);
            scored += 1;
        }
        if scored == 0 {
            bail!(
                "channel slot `{}` has no scored (prunable) member tensor",
                g.slot
            );
        }
        out.push(acc);
    }
    Ok(out)
}

/// Minimum width of a slot of `size` channels.
pub fn min_width(size: i64, cfg: &StructuredConfig) -> i64 {
    let frac = (cfg.min_fraction * size as f64).ceil() as i64;
    cfg.min_channels.max(frac).clamp(1, size)
}

/// Remove `round(sparsity * channels)` lowest-scoring channels over all slots together,
/// respecting each slot's minimum width.
pub fn select_channels(
    groups: &[ChannelGroup],
    ch_scores: &[Tensor],
    sparsity: f64,
    cfg: &StructuredConfig,
) -> Result<ChannelSelection> {
    if !(0.0..1.0).contains(&sparsity) {
        bail!("channel sparsity must be in [0, 1), got {sparsity}");
    }
    let mut parts = Vec::new();
    let mut floor_total = 0;
    for (g, s) in groups.iter().zip(ch_scores) {
        if s.isnan().any().int64_value(&[]) != 0 {
            bail!("channel scores of slot `{}` contain NaN", g.slot);
        }
        // The best min-width channels of each slot are protected.
        let keep_min = min_width(g.size, cfg);
        floor_total += keep_min;
        let (_, top) = s.topk(keep_min, 0, true, true);
        let protected = s.zeros_like().index_fill(0, &top, 1.0).ne(0.0);
        parts.push(s.where_self(&protected.logical_not(), &Tensor::from(f64::INFINITY)));
    }
    let flat = Tensor::cat(&parts, 0);
    let total: i64 = groups.iter().map(|g| g.size).sum();
    let k = super::threshold::prune_count(sparsity, total).min(total - floor_total);
    let prune = lowest_k(&flat, k);
    let mut sel = ChannelSelection {
        widths: BTreeMap::new(),
        kept: BTreeMap::new(),
        channels_before: total,
        channels_after: 0,
    };
    let mut start = 0;
    for g in groups {
        let p = prune.narrow(0, start, g.size);
        let kept: Vec<i64> = Vec::<bool>::try_from(&p)?
            .iter()
            .enumerate()
            .filter(|(_, &x)| !x)
            .map(|(i, _)| i as i64)
            .collect();
        sel.channels_after += kept.len() as i64;
        sel.widths.insert(g.slot.clone(), kept.len() as i64);
        sel.kept.insert(g.slot.clone(), kept);
        start += g.size;
    }
    Ok(sel)
}

/// Slice every member tensor down to the kept channels. Tensors no slot touches are copied
/// unchanged. Positions of a dimension not covered by any slot are kept.
pub fn shrink(
    tensors: &BTreeMap<String, Tensor>,
    groups: &[ChannelGroup],
    sel: &ChannelSelection,
) -> Result<BTreeMap<String, Tensor>> {
    // param -> dim -> removed positions
    let mut removed: BTreeMap<String, BTreeMap<i64, Vec<i64>>> = BTreeMap::new();
    for g in groups {
        let kept = sel
            .kept
            .get(&g.slot)
            .with_context(|| format!("no selection for slot `{}`", g.slot))?;
        let mut is_kept = vec![false; g.size as usize];
        for &j in kept {
            is_kept[j as usize] = true;
        }
        for m in &g.members {
            let t = tensors.get(&m.param).with_context(|| {
                format!(
                    "slot `{}` names `{}`, which the model does not have",
                    g.slot, m.param
                )
            })?;
            let d = t.size().get(m.dim as usize).copied().with_context(|| {
                format!(
                    "slot `{}`: `{}` has no dimension {}",
                    g.slot, m.param, m.dim
                )
            })?;
            if m.offset < 0 || m.offset + g.size > d {
                bail!(
                    "slot `{}` (width {}): `{}` dim {} has size {d}, offset {} does not fit",
                    g.slot,
                    g.size,
                    m.param,
                    m.dim,
                    m.offset
                );
            }
            let r = removed
                .entry(m.param.clone())
                .or_default()
                .entry(m.dim)
                .or_default();
            r.extend(
                (0..g.size)
                    .filter(|&j| !is_kept[j as usize])
                    .map(|j| m.offset + j),
            );
        }
    }
    let mut out = BTreeMap::new();
    for (name, t) in tensors {
        let mut t = t.detach().shallow_clone();
        if let Some(dims) = removed.get(name) {
            for (&dim, rem) in dims {
                let n = t.size()[dim as usize];
                let keep: Vec<i64> = (0..n).filter(|i| !rem.contains(i)).collect();
                t = t.index_select(dim, &Tensor::from_slice(&keep).to_device(t.device()));
            }
        }
        out.insert(name.clone(), t.contiguous());
    }
    Ok(out)
}
