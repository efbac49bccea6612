//! Width slots and channel groups: the bookkeeping that makes structured pruning possible.
//!
//! Every prunable width of the model (a conv's output channels and everything coupled to
//! them) is a named *slot*. Modules ask [`Slots::width`] for a slot's width (the default from
//! the config, or the `widths:` override), then register the tensor slices that belong to it:
//! the producing conv's weight rows (dim 0) and bias, the BatchNorm's four vectors, and every
//! consumer's weight columns (dim 1, with the offset of the slot inside a concatenated input).
//! Residual streams share one slot. [`ChannelGroup`] lists a slot's members, so a pruner can
//! remove channel `k` of a slot by dropping index `offset + k` along `dim` of every member.
//!
//! Not prunable (never a slot): the image and point inputs, the LSS depth bins (the depth
//! part of the depth net's output), the heads' output channels (classes and box codes).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One tensor slice coupled to a width slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMember {
    /// Variable name in the VarStore.
    pub param: String,
    /// The tensor dimension indexed by the slot's channels.
    pub dim: usize,
    /// Index of the slot's channel 0 along `dim`.
    pub offset: i64,
}

/// A width slot and the tensor slices coupled to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGroup {
    pub slot: String,
    pub size: i64,
    pub members: Vec<ChannelMember>,
}

/// Channel layout of a feature tensor: consecutive segments, each a slot (prunable) or a
/// fixed-size block (not prunable). A concatenation is the concatenation of the segments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelSpec {
    pub segments: Vec<(Option<String>, i64)>,
}

impl ChannelSpec {
    pub fn slot(name: &str, size: i64) -> Self {
        Self {
            segments: vec![(Some(name.to_string()), size)],
        }
    }
    pub fn fixed(size: i64) -> Self {
        Self {
            segments: vec![(None, size)],
        }
    }
    pub fn concat(parts: &[&ChannelSpec]) -> Self {
        Self {
            segments: parts
                .iter()
                .flat_map(|p| p.segments.iter().cloned())
                .collect(),
        }
    }
    /// Total channels.
    pub fn size(&self) -> i64 {
        self.segments.iter().map(|s| s.1).sum()
    }
}

/// Registry of width slots filled while the model is built.
#[derive(Debug, Default)]
pub struct Slots {
    overrides: BTreeMap<String, i64>,
    used: BTreeSet<String>,
    groups: BTreeMap<String, ChannelGroup>,
}

impl Slots {
    pub fn new(overrides: &BTreeMap<String, i64>) -> Self {
        Self {
            overrides: overrides.clone(),
            ..Default::default()
        }
    }

    /// Width of `slot`: the override when given, else `default`. Registers the slot.
    pub fn width(&mut self, slot: &str, default: i64) -> i64 {
        let w = self.overrides.get(slot).copied().unwrap_or(default);
        self.used.insert(slot.to_string());
        self.groups
            .entry(slot.to_string())
            .or_insert_with(|| ChannelGroup {
                slot: slot.to_string(),
                size: w,
                members: vec![],
            });
        w
    }

    /// `param` produces the slot's channels along `dim`, starting at `offset`.
    pub fn produce(&mut self, slot: &str, param: String, dim: usize, offset: i64) {
        let g = self
            .groups
            .get_mut(slot)
            .unwrap_or_else(|| panic!("slot `{slot}` used before its width was asked"));
        g.members.push(ChannelMember { param, dim, offset });
    }

    /// `param` consumes a tensor laid out as `input` along `dim`.
    pub fn consume(&mut self, input: &ChannelSpec, param: String, dim: usize) {
        let mut offset = 0;
        for (slot, size) in &input.segments {
            if let Some(s) = slot {
                self.produce(s, param.clone(), dim, offset);
            }
            offset += size;
        }
    }

    /// Override keys that named no slot.
    pub fn unused_overrides(&self) -> Vec<String> {
        self.overrides
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect()
    }

    /// `slot -> width`.
    pub fn sizes(&self) -> BTreeMap<String, i64> {
        self.groups
            .iter()
            .map(|(k, g)| (k.clone(), g.size))
            .collect()
    }

    pub fn into_groups(self) -> Vec<ChannelGroup> {
        self.groups.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_offsets_and_overrides() {
        let mut ov = BTreeMap::new();
        ov.insert("b".to_string(), 3);
        ov.insert("nope".to_string(), 3);
        let mut s = Slots::new(&ov);
        let a = s.width("a", 4);
        let b = s.width("b", 5);
        assert_eq!((a, b), (4, 3));
        let spec = ChannelSpec::concat(&[
            &ChannelSpec::fixed(2),
            &ChannelSpec::slot("a", a),
            &ChannelSpec::slot("b", b),
        ]);
        assert_eq!(spec.size(), 9);
        s.consume(&spec, "fuse.weight".into(), 1);
        let g = s.into_groups();
        let gb = g.iter().find(|g| g.slot == "b").unwrap();
        assert_eq!(
            gb.members,
            vec![ChannelMember {
                param: "fuse.weight".into(),
                dim: 1,
                offset: 6
            }]
        );
        let ga = g.iter().find(|g| g.slot == "a").unwrap();
        assert_eq!(ga.members[0].offset, 2);
    }

    #[test]
    fn unknown_override_is_reported() {
        let mut ov = BTreeMap::new();
        ov.insert("nope".to_string(), 3);
        let mut s = Slots::new(&ov);
        s.width("a", 4);
        assert_eq!(s.unused_overrides(), vec!["nope".to_string()]);
    }
}
