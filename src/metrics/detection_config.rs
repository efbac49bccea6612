//! The detection evaluation settings (the devkit's `DetectionConfig`), by default the official
//! `detection_cvpr_2019` configuration. Can be read from a devkit config JSON file.

use crate::classes::{detection_class_index, DETECTION_CLASSES};
use anyhow::{bail, Context, Result};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::path::Path;

/// The devkit's class order (`DETECTION_NAMES` / the config's `class_range` keys). Averages
/// over classes run in this order, as in the devkit.
pub const DEVKIT_CLASS_ORDER: [&str; 10] = [
    "car",
    "truck",
    "bus",
    "trailer",
    "construction_vehicle",
    "pedestrian",
    "motorcycle",
    "bicycle",
    "traffic_cone",
    "barrier",
];

/// The five true-positive metrics, in the devkit's order (`TP_METRICS`).
pub const TP_METRICS: [&str; 5] = [
    "trans_err",
    "scale_err",
    "orient_err",
    "vel_err",
    "attr_err",
];

#[derive(Clone, Debug, PartialEq)]
pub struct DetectionConfig {
    /// Classes in evaluation order (labels into [`DETECTION_CLASSES`]) with their range in
    /// metres: boxes at a horizontal ego distance `>= range` are ignored.
    pub class_range: Vec<(usize, f64)>,
    /// Matching distance thresholds in metres (`dist_ths`).
    pub dist_ths: Vec<f64>,
    /// The threshold whose matches give the TP errors (`dist_th_tp`, one of `dist_ths`).
    pub dist_th_tp: f64,
    pub min_recall: f64,
    pub min_precision: f64,
    /// Upper bound on predicted boxes per sample, checked before any filtering.
    pub max_boxes_per_sample: usize,
    /// Weight of mAP in NDS.
    pub mean_ap_weight: f64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self::cvpr_2019()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    class_range: super::ordered_json::OrderedMap<serde_json::Value>,
    dist_fcn: String,
    dist_ths: Vec<f64>,
    dist_th_tp: f64,
    min_recall: f64,
    min_precision: f64,
    max_boxes_per_sample: usize,
    mean_ap_weight: f64,
}

impl DetectionConfig {
    /// The official nuScenes detection configuration (`detection_cvpr_2019`).
    pub fn cvpr_2019() -> Self {
        let class_range = DEVKIT_CLASS_ORDER
            .iter()
            .map(|c| {
                (
                    detection_class_index(c).expect("known class"),
                    crate::classes::class_range(c).expect("range"),
                )
            })
            .collect();
        Self {
            class_range,
            dist_ths: vec![0.5, 1.0, 2.0, 4.0],
            dist_th_tp: 2.0,
            min_recall: 0.1,
            min_precision: 0.1,
            max_boxes_per_sample: 500,
            mean_ap_weight: 5.0,
        }
    }

    /// Range of a class label.
    pub fn range_of(&self, label: usize) -> f64 {
        self.class_range
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, r)| *r)
            .unwrap_or(f64::NEG_INFINITY)
    }

    /// Position of `dist_th_tp` in `dist_ths`.
    pub fn tp_threshold_index(&self) -> usize {
        self.dist_ths
            .iter()
            .position(|t| *t == self.dist_th_tp)
            .expect("validated: dist_th_tp in dist_ths")
    }

    /// Check the invariants the devkit asserts.
    pub fn validate(&self) -> Result<()> {
        let mut seen: Vec<usize> = self.class_range.iter().map(|(l, _)| *l).collect();
        seen.sort_unstable();
        if seen != (0..DETECTION_CLASSES.len()).collect::<Vec<_>>() {
            bail!("class_range must list each of the ten detection classes exactly once");
        }
        if self.dist_ths.is_empty() || !self.dist_ths.contains(&self.dist_th_tp) {
            bail!(
                "dist_th_tp ({}) must be one of dist_ths {:?}",
                self.dist_th_tp,
                self.dist_ths
            );
        }
        if !(0.0..1.0).contains(&self.min_precision) {
            bail!(
                "min_precision must be in [0, 1), got {}",
                self.min_precision
            );
        }
        if !(0.0..=1.0).contains(&self.min_recall) {
            bail!("min_recall must be in [0, 1], got {}", self.min_recall);
        }
        Ok(())
    }

    /// Read a devkit-format config JSON (e.g. `detection_cvpr_2019.json`).
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut de = serde_json::Deserializer::from_str(&text);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| anyhow::anyhow!("{}: at `{}`: {}", path.display(), e.path(), e.inner()))?;
        if raw.dist_fcn != "center_distance" {
            bail!(
                "{}: field `dist_fcn`: only `center_distance` is supported, got `{}`",
                path.display(),
                raw.dist_fcn
            );
        }
        let mut class_range = Vec::new();
        for (name, v) in &raw.class_range.0 {
            let label = detection_class_index(name).with_context(|| {
                format!(
                    "{}: field `class_range.{name}`: unknown detection class",
                    path.display()
                )
            })?;
            let r = v.as_f64().with_context(|| {
                format!(
                    "{}: field `class_range.{name}`: expected a number",
                    path.display()
                )
            })?;
            class_range.push((label, r));
        }
        let cfg = Self {
            class_range,
            dist_ths: raw.dist_ths,
            dist_th_tp: raw.dist_th_tp,
            min_recall: raw.min_recall,
            min_precision: raw.min_precision,
            max_boxes_per_sample: raw.max_boxes_per_sample,
            mean_ap_weight: raw.mean_ap_weight,
        };
        cfg.validate()
            .with_context(|| format!("{}", path.display()))?;
        Ok(cfg)
    }
}

/// A number written as an integer when it is one (the devkit's config has `50`, `5`).
pub(crate) struct PyNumber(pub f64);

impl Serialize for PyNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// Serialises with the devkit's keys (`DetectionConfig.serialize`).
impl Serialize for DetectionConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Ranges<'a>(&'a [(usize, f64)]);
        impl Serialize for Ranges<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (l, r) in self.0 {
                    m.serialize_entry(DETECTION_CLASSES[*l], &PyNumber(*r))?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("class_range", &Ranges(&self.class_range))?;
        m.serialize_entry("dist_fcn", "center_distance")?;
        m.serialize_entry("dist_ths", &self.dist_ths)?;
        m.serialize_entry("dist_th_tp", &self.dist_th_tp)?;
        m.serialize_entry("min_recall", &self.min_recall)?;
        m.serialize_entry("min_precision", &self.min_precision)?;
        m.serialize_entry("max_boxes_per_sample", &self.max_boxes_per_sample)?;
        m.serialize_entry("mean_ap_weight", &PyNumber(self.mean_ap_weight))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_devkit_json() {
        let c = DetectionConfig::cvpr_2019();
        c.validate().unwrap();
        assert_eq!(c.range_of(detection_class_index("barrier").unwrap()), 30.0);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfg.json");
        crate::io::write_json(&p, &c).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\"car\": 50,") && text.contains("\"mean_ap_weight\": 5"),
            "{text}"
        );
        assert_eq!(DetectionConfig::from_json_file(&p).unwrap(), c);
        std::fs::write(&p, text.replace("\"barrier\"", "\"wall\"")).unwrap();
        let e = DetectionConfig::from_json_file(&p).unwrap_err().to_string();
        assert!(e.contains("class_range.wall"), "{e}");
    }
}
