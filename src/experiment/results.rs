//! Result records of the study's cells and their aggregation over training seeds.

use crate::model::Group;
use crate::pruning::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Accuracy of one model on the held-out split (fractions in [0, 1]; NaN = not measured,
/// written as JSON `null` and read back as NaN so such cells stay resumable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    #[serde(deserialize_with = "nan_if_null")]
    pub map: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub nds: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub miou: f64,
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A dense (unpruned) model of one training seed, and its single-modal ancestors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DenseResult {
    pub seed: u64,
    pub fusion: Accuracy,
    pub camera_only: Accuracy,
    pub lidar_only: Accuracy,
    /// Budget-matched controls: the single-modal models trained for the fusion stage's
    /// steps more (when the study asks for them).
    #[serde(default)]
    pub camera_control: Option<Accuracy>,
    #[serde(default)]
    pub lidar_control: Option<Accuracy>,
    pub params: i64,
    pub gflops: f64,
}

/// One method x sparsity x seed cell (unstructured).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrunedResult {
    pub method: Method,
    pub sparsity: f64,
    pub seed: u64,
    /// After masked fine-tuning.
    pub acc: Accuracy,
    /// Right after pruning, before fine-tuning.
    pub acc_pruned: Accuracy,
    /// Achieved sparsity over the prunable weights and per group.
    pub achieved: f64,
    pub groups: BTreeMap<Group, f64>,
    pub scoring_seconds: f64,
    pub finetune_seconds: f64,
    /// Pruned weights found nonzero after fine-tuning (must be 0).
    pub mask_violations: i64,
}

/// One structured AlterMOMA row of one seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StructuredResult {
    pub seed: u64,
    /// Fraction of channels removed.
    pub sparsity: f64,
    pub acc: Accuracy,
    pub params: i64,
    pub params_dense: i64,
    pub gflops: f64,
    pub gflops_dense: f64,
    /// Median forward latency of the pruned and the dense model, measured side by side.
    pub latency_ms: f64,
    pub latency_dense_ms: f64,
    pub widths: BTreeMap<String, i64>,
}

impl StructuredResult {
    pub fn speedup(&self) -> f64 {
        self.latency_dense_ms / self.latency_ms
    }
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (m, 0.0);
    }
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, v.sqrt())
}

/// Median of a sample (NaN when empty).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Everything the study measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Study {
    pub name: String,
    pub dense: Vec<DenseResult>,
    pub pruned: Vec<PrunedResult>,
    pub structured: Vec<StructuredResult>,
    /// Cells that failed (key, error); they are retried by the next run.
    #[serde(default)]
    pub failures: Vec<(String, String)>,
    /// Wall time of every finished cell (key -> seconds, as measured when it was computed).
    #[serde(default)]
    pub cell_seconds: BTreeMap<String, f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn unmeasured_accuracy_round_trips_through_json() {
        let a = Accuracy {
            map: f64::NAN,
            nds: 0.5,
            miou: f64::NAN,
        };
        let text = serde_json::to_string(&a).unwrap();
        let b: Accuracy = serde_json::from_str(&text).unwrap();
        assert!(b.map.is_nan() && b.miou.is_nan() && b.nds == 0.5, "{text}");
    }
}
