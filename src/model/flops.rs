//! FLOP counting per model part: GFLOPs = 2 x multiply-accumulates, counted from the actual
//! layer shapes of a forward pass (convs, transposed convs, linear layers, LSS lifting and
//! pooling). The counter is thread-local and only active inside [`with_counter`].

use crate::model::batch::Batch;
use crate::model::bevfusion::BevFusion;
use crate::model::config::ModelConfig;
use crate::model::ModalityMask;
use anyhow::Result;
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    static COUNTER: RefCell<Option<BTreeMap<String, i64>>> = const { RefCell::new(None) };
}

/// True inside [`with_counter`].
pub fn counting() -> bool {
    COUNTER.with(|c| c.borrow().is_some())
}

/// The part a variable/layer name belongs to: `camera.backbone`, `lidar.neck`, `fuser`,
/// `decoder.backbone`, `heads.det`, ...
pub fn part_of(name: &str) -> String {
    let mut it = name.split('.');
    let a = it.next().unwrap_or("");
    if a == "fuser" {
        return a.to_string();
    }
    match it.next() {
        Some(b) => format!("{a}.{b}"),
        None => a.to_string(),
    }
}

/// Add `macs` multiply-accumulates to the part of layer `name`.
pub fn record(name: &str, macs: i64) {
    COUNTER.with(|c| {
        if let Some(m) = c.borrow_mut().as_mut() {
            *m.entry(part_of(name)).or_insert(0) += macs;
        }
    });
}

/// Run `f` with counting on; returns its result and the MACs per part.
pub fn with_counter<T>(f: impl FnOnce() -> T) -> (T, BTreeMap<String, i64>) {
    let prev = COUNTER.with(|c| c.replace(Some(BTreeMap::new())));
    let r = f();
    let counts = COUNTER.with(|c| c.replace(prev)).unwrap_or_default();
    (r, counts)
}

/// GFLOPs per part of one forward pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlopReport {
    /// `(part, GFLOPs)` in forward order.
    pub parts: Vec<(String, f64)>,
}

impl FlopReport {
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|p| p.1).sum()
    }
    pub fn get(&self, part: &str) -> f64 {
        self.parts.iter().filter(|p| p.0 == part).map(|p| p.1).sum()
    }
    /// Sum over the parts of one group (`camera`, `lidar`, fusion = everything else).
    pub fn group(&self, group: crate::model::Group) -> f64 {
        self.parts
            .iter()
            .filter(|p| crate::model::Group::of_param(&p.0) == group)
            .map(|p| p.1)
            .sum()
    }
}

const ORDER: [&str; 11] = [
    "camera.backbone",
    "camera.neck",
    "camera.vtransform",
    "lidar.encoder",
    "lidar.backbone",
    "lidar.neck",
    "fuser",
    "decoder.backbone",
    "decoder.neck",
    "heads.det",
    "heads.seg",
];

fn report(counts: BTreeMap<String, i64>, batch_size: usize) -> FlopReport {
    let mut parts = Vec::new();
    let g = |v: i64| 2.0 * v as f64 / 1e9 / batch_size.max(1) as f64;
    for p in ORDER {
        if let Some(&v) = counts.get(p) {
            parts.push((p.to_string(), g(v)));
        }
    }
    for (k, &v) in &counts {
        if !ORDER.contains(&k.as_str()) {
            parts.push((k.clone(), g(v)));
        }
    }
    FlopReport { parts }
}

/// GFLOPs per frame of `model` on `batch` (forward only, no gradients).
pub fn count_model(model: &BevFusion, batch: &Batch, mask: ModalityMask) -> FlopReport {
    let (_, counts) = with_counter(|| tch::no_grad(|| model.forward(batch, mask, false)));
    report(counts, batch.size)
}

/// GFLOPs per frame of a config on its default rig (`camera.default_rig`) with a data-free
/// batch in which every pillar cell up to `max_voxels` holds points.
pub fn count(cfg: &ModelConfig, mask: ModalityMask) -> Result<FlopReport> {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = crate::model::layers::with_fast_init(|| BevFusion::new(&vs.root(), cfg))?;
    let batch = Batch::ones(cfg, 1, tch::Device::Cpu)?;
    Ok(count_model(&model, &batch, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_counter_scope() {
        assert_eq!(
            part_of("camera.backbone.layer1.0.conv1.conv"),
            "camera.backbone"
        );
        assert_eq!(part_of("fuser.conv.conv"), "fuser");
        assert!(!counting());
        let (_, c) = with_counter(|| {
            record("lidar.neck.deblocks.0.conv", 10);
            record("lidar.neck.deblocks.1.conv", 5);
        });
        assert_eq!(c["lidar.neck"], 15);
        assert!(!counting());
        let r = report(c, 1);
        assert!((r.total() - 30e-9).abs() < 1e-15);
    }
}
