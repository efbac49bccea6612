//! BEV map-segmentation IoU as BEVFusion evaluates it: per class, a binary IoU whose
//! intersections and unions are summed over the whole split (not averaged per sample), at
//! the sigmoid thresholds 0.35, 0.40, ..., 0.65 (a pixel is positive when its probability is
//! `>=` the threshold); a class's IoU is the maximum over the thresholds and mIoU the mean of
//! those over classes. IoU = TP / (TP + FP + FN + 1e-7) as in BEVFusion, so a class that is
//! never present nor predicted scores 0. Counts are exact 64-bit integers (BEVFusion sums
//! them in float32, which rounds beyond 2^24 pixels).
//!
//! ```
//! use altermoma::metrics::BevMiou;
//! let mut acc = BevMiou::new(&["drivable_area", "divider"]);
//! // [C, NX, NY] = [2, 1, 2] probabilities and ground truth
//! acc.update(&[0.9, 0.1, 0.5, 0.2], &[1, 0, 1, 1]).unwrap();
//! let r = acc.finish();
//! assert!((r.iou_max[0] - 1.0).abs() < 1e-6);
//! ```

use anyhow::{bail, Result};
use serde::Serialize;

/// The sigmoid thresholds, as float32 like BEVFusion's threshold tensor.
pub const THRESHOLDS: [f32; 7] = [0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65];
const NT: usize = THRESHOLDS.len();

/// Accumulates per-class, per-threshold confusion counts over samples.
#[derive(Clone, Debug)]
pub struct BevMiou {
    class_names: Vec<String>,
    /// `hist[c][g][k]`: pixels of class `c` with ground truth `g` (0/1) whose probability
    /// reaches exactly the first `k` thresholds.
    hist: Vec<[[u64; NT + 1]; 2]>,
    samples: usize,
}

/// Final IoUs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MiouResult {
    pub class_names: Vec<String>,
    pub thresholds: Vec<f64>,
    /// `iou[c][t]`.
    pub iou: Vec<Vec<f64>>,
    /// Per class, the maximum over thresholds.
    pub iou_max: Vec<f64>,
    /// Mean of `iou_max` over classes.
    pub miou: f64,
    /// Number of samples accumulated.
    pub samples: usize,
}

impl BevMiou {
    pub fn new(class_names: &[&str]) -> Self {
        Self {
            class_names: class_names.iter().map(|s| s.to_string()).collect(),
            hist: vec![[[0; NT + 1]; 2]; class_names.len()],
            samples: 0,
        }
    }

    /// An accumulator for BEVFusion's six map classes ([`crate::classes::MAP_CLASSES`]).
    pub fn map_classes() -> Self {
        Self::new(&crate::classes::MAP_CLASSES)
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Add one sample: `probs` (sigmoid probabilities) and `gt` (non-zero = class present),
    /// both laid out class-major `[C, NX, NY]` with the same length.
    pub fn update(&mut self, probs: &[f32], gt: &[u8]) -> Result<()> {
        let c = self.num_classes();
        if probs.len() != gt.len() {
            bail!(
                "BEV mIoU: {} probabilities but {} ground-truth pixels",
                probs.len(),
                gt.len()
            );
        }
        if c == 0 || probs.len() % c != 0 {
            bail!(
                "BEV mIoU: {} values are not {c} classes x pixels",
                probs.len()
            );
        }
        let n = probs.len() / c;
        for (ci, h) in self.hist.iter_mut().enumerate() {
            let p = &probs[ci * n..(ci + 1) * n];
            let g = &gt[ci * n..(ci + 1) * n];
            for (pv, gv) in p.iter().zip(g) {
                let mut k = 0usize;
                for t in THRESHOLDS {
                    k += (*pv >= t) as usize;
                }
                h[(*gv != 0) as usize][k] += 1;
            }
        }
        self.samples += 1;
        Ok(())
    }

    /// Add samples from tensors: `[C, NX, NY]` or a batch `[B, C, NX, NY]` of probabilities
    /// (any float kind, any device) and ground truth of the same shape (any kind; non-zero =
    /// present).
    pub fn update_tensor(&mut self, probs: &tch::Tensor, gt: &tch::Tensor) -> Result<()> {
        let ps = probs.size();
        if ps != gt.size() {
            bail!(
                "BEV mIoU: probability shape {ps:?} differs from ground-truth shape {:?}",
                gt.size()
            );
        }
        let c = self.num_classes() as i64;
        let (batch, class_dim) = match ps.len() {
            3 => (1, ps[0]),
            4 => (ps[0], ps[1]),
            _ => bail!("BEV mIoU: expected [C, NX, NY] or [B, C, NX, NY], got {ps:?}"),
        };
        if class_dim != c {
            bail!("BEV mIoU: tensor has {class_dim} classes, the accumulator {c}");
        }
        let p = probs
            .detach()
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Float)
            .contiguous()
            .view([batch, -1]);
        let g = gt
            .detach()
            .to_device(tch::Device::Cpu)
            .ne(0)
            .to_kind(tch::Kind::Uint8)
            .contiguous()
            .view([batch, -1]);
        for b in 0..batch {
            let pv = Vec::<f32>::try_from(p.get(b))?;
            let gv = Vec::<u8>::try_from(g.get(b))?;
            self.update(&pv, &gv)?;
        }
        Ok(())
    }

    /// IoUs over everything accumulated so far.
    pub fn finish(&self) -> MiouResult {
        let mut iou = Vec::with_capacity(self.num_classes());
        for h in &self.hist {
            let mut row = Vec::with_capacity(NT);
            for t in 0..NT {
                // positive at threshold t <=> k > t
                let tp: u64 = h[1][t + 1..].iter().sum();
                let fp: u64 = h[0][t + 1..].iter().sum();
                let fn_: u64 = h[1][..=t].iter().sum();
                row.push(tp as f64 / ((tp + fp + fn_) as f64 + 1e-7));
            }
            iou.push(row);
        }
        let iou_max: Vec<f64> = iou
            .iter()
            .map(|r| r.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
            .collect();
        let miou = if iou_max.is_empty() {
            0.0
        } else {
            iou_max.iter().sum::<f64>() / iou_max.len() as f64
        };
        MiouResult {
            class_names: self.class_names.clone(),
            thresholds: THRESHOLDS.iter().map(|t| *t as f64).collect(),
            iou,
            iou_max,
            miou,
            samples: self.samples,
        }
    }
}

/// Evaluate BEV segmentation files: `pred_path` and `gt_path` are safetensors files (as
/// [`crate::checkpoint::Checkpoint`] writes them) holding one tensor per sample named by its
/// sample token: `[C, NX, NY]` sigmoid probabilities, and ground-truth masks of the same shape
/// (non-zero = present). Both must hold the same samples; `expected` (when given) must be
/// exactly those samples too.
pub fn evaluate_files(
    pred_path: &std::path::Path,
    gt_path: &std::path::Path,
    class_names: &[&str],
    expected: Option<&[String]>,
) -> Result<MiouResult> {
    let preds = crate::checkpoint::Checkpoint::load(pred_path)?;
    let gts = crate::checkpoint::Checkpoint::load(gt_path)?;
    let check = |have: &std::collections::BTreeMap<String, tch::Tensor>,
                 what: &std::path::Path|
     -> Result<()> {
        if let Some(exp) = expected {
            if let Some(t) = exp.iter().find(|t| !have.contains_key(t.as_str())) {
                bail!("{}: no tensor for evaluated sample `{t}`", what.display());
            }
            let set: std::collections::HashSet<&str> = exp.iter().map(|s| s.as_str()).collect();
            if let Some(t) = have.keys().find(|t| !set.contains(t.as_str())) {
                bail!(
                    "{}: sample `{t}` is not in the evaluated split",
                    what.display()
                );
            }
        }
        Ok(())
    };
    check(&preds.tensors, pred_path)?;
    check(&gts.tensors, gt_path)?;
    let mut acc = BevMiou::new(class_names);
    for (token, p) in &preds.tensors {
        let g = gts.tensors.get(token).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no ground truth for sample `{token}`",
                gt_path.display()
            )
        })?;
        acc.update_tensor(p, g)
            .map_err(|e| anyhow::anyhow!("sample `{token}`: {e}"))?;
    }
    if let Some(t) = gts.tensors.keys().find(|t| !preds.tensors.contains_key(*t)) {
        bail!("{}: no prediction for sample `{t}`", pred_path.display());
    }
    Ok(acc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Straightforward per-threshold counting, the way BEVFusion writes it.
    fn naive(samples: &[(Vec<f32>, Vec<u8>)], c: usize) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; NT]; c];
        for (ci, row) in out.iter_mut().enumerate() {
            for (t, th) in THRESHOLDS.iter().enumerate() {
                let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
                for (p, g) in samples {
                    let n = p.len() / c;
                    for i in ci * n..(ci + 1) * n {
                        let pred = p[i] >= *th;
                        let lab = g[i] != 0;
                        tp += (pred && lab) as u64;
                        fp += (pred && !lab) as u64;
                        fn_ += (!pred && lab) as u64;
                    }
                }
                row[t] = tp as f64 / ((tp + fp + fn_) as f64 + 1e-7);
            }
        }
        out
    }

    #[test]
    fn matches_naive_counting_and_sums_over_the_split() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let c = 3;
        let samples: Vec<(Vec<f32>, Vec<u8>)> = (0..4)
            .map(|_| {
                let p: Vec<f32> = (0..c * 50).map(|_| rng.random::<f32>()).collect();
                let g: Vec<u8> = p.iter().map(|v| (rng.random::<f32>() < *v) as u8).collect();
                (p, g)
            })
            .collect();
        let mut acc = BevMiou::new(&["a", "b", "c"]);
        for (p, g) in &samples {
            acc.update(p, g).unwrap();
        }
        let r = acc.finish();
        assert_eq!(r.iou, naive(&samples, c));
        let mean_max: f64 = r
            .iou
            .iter()
            .map(|row| row.iter().cloned().fold(0.0, f64::max))
            .sum::<f64>()
            / 3.0;
        assert!((r.miou - mean_max).abs() < 1e-12);
    }

    #[test]
    fn split_level_not_per_sample_average() {
        // sample 1: 1 pixel, perfect; sample 2: 3 pixels, 1 of 3 right -> split IoU 2/4
        let mut acc = BevMiou::new(&["x"]);
        acc.update(&[0.9], &[1]).unwrap();
        acc.update(&[0.9, 0.9, 0.1], &[1, 0, 1]).unwrap();
        let r = acc.finish();
        assert!((r.iou_max[0] - 0.5).abs() < 1e-6, "{:?}", r.iou);
        // threshold edge: 0.35 itself is positive at 0.35 and negative at 0.40
        let mut acc = BevMiou::new(&["x"]);
        acc.update(&[0.35], &[1]).unwrap();
        let r = acc.finish();
        assert!(
            (r.iou[0][0] - 1.0).abs() < 1e-6 && r.iou[0][1] == 0.0,
            "{:?}",
            r.iou
        );
        assert!(BevMiou::new(&["x"]).update(&[0.1], &[1, 1]).is_err());
    }

    #[test]
    fn tensors_and_slices_agree() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let p: Vec<f32> = (0..2 * 6 * 4 * 5).map(|_| rng.random::<f32>()).collect();
        let g: Vec<u8> = (0..p.len()).map(|_| rng.random_range(0..2u8)).collect();
        let pt = tch::Tensor::from_slice(&p).view([2, 6, 4, 5]);
        let gt = tch::Tensor::from_slice(&g)
            .view([2, 6, 4, 5])
            .to_kind(tch::Kind::Bool);
        let mut a = BevMiou::map_classes();
        a.update_tensor(&pt, &gt).unwrap();
        let mut b = BevMiou::map_classes();
        b.update(&p[..120], &g[..120]).unwrap();
        b.update(&p[120..], &g[120..]).unwrap();
        assert_eq!(a.finish(), b.finish());
        assert!(a
            .update_tensor(&pt.view([2, 6, 20]).get(0), &gt.view([2, 6, 20]).get(0))
            .is_err());
    }
}
