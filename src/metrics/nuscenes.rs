//! The nuScenes detection evaluation (the devkit's `DetectionEval.evaluate`, with
//! `accumulate`, `calc_ap` and `calc_tp`), re-implemented to give the same numbers, fast.
//!
//! Per class and distance threshold (0.5, 1, 2, 4 m): predictions sorted by score
//! (descending; equal scores: the later one in the results first), each matched greedily to
//! the nearest unmatched ground-truth box of its class in its sample by centre distance
//! (first box wins equal distances), a match when the distance is below the threshold.
//! Precision and the confidences are interpolated at 101 recall points; AP is the mean over
//! recall > 0.1 of max(precision - 0.1, 0) / 0.9. The TP errors (ATE, ASE, AOE, AVE, AAE)
//! come from the matches at 2 m: running means interpolated at the same confidences,
//! averaged from recall 0.11 to the maximum recall reached (1.0 when that is below 0.11).
//! Barriers have a yaw period of pi and no AVE/AAE; traffic cones have no AOE/AVE/AAE. A
//! class without ground truth gets AP 0 and TP errors 1. mAP averages AP over thresholds and
//! classes; NDS = (5 mAP + sum of (1 - min(1, mTP))) / 10.
//!
//! The API: [`evaluate_detections`] (ground truth + a results file's content, with the
//! devkit's sample checks and filters) and [`evaluate_filtered`] (already filtered boxes,
//! the level of the devkit's `accumulate`).

use super::detection_box::{
    attr_acc, center_distance, quaternion_yaw, scale_iou, velocity_l2, yaw_diff, DetectionBox,
};
use super::detection_config::{DetectionConfig, TP_METRICS};
use super::filter::filter_boxes;
use super::ground_truth::GroundTruth;
use super::numpy_compat::{cummean, interp, linspace, mean, nanmean, pairwise_sum, py_round};
use super::ordered_json::OrderedEntries;
use super::results_json::{DetectionResults, ResultsMeta};
use crate::classes::DETECTION_CLASSES;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::HashMap;
use std::time::Instant;

/// Number of recall points of the interpolated curves.
pub const NELEM: usize = 101;

/// The accumulated curves of one class at one distance threshold (the devkit's
/// `DetectionMetricData`): 101 recall points with the interpolated precision, confidence and
/// running-mean TP errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricData {
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
    pub confidence: Vec<f64>,
    pub trans_err: Vec<f64>,
    pub vel_err: Vec<f64>,
    pub scale_err: Vec<f64>,
    pub orient_err: Vec<f64>,
    pub attr_err: Vec<f64>,
}

impl MetricData {
    /// The curves of a class that has no ground truth or no match.
    pub fn no_predictions() -> Self {
        Self {
            recall: linspace(0.0, 1.0, NELEM),
            precision: vec![0.0; NELEM],
            confidence: vec![0.0; NELEM],
            trans_err: vec![1.0; NELEM],
            vel_err: vec![1.0; NELEM],
            scale_err: vec![1.0; NELEM],
            orient_err: vec![1.0; NELEM],
            attr_err: vec![1.0; NELEM],
        }
    }

    /// Index of the last non-zero confidence (0 when there is none).
    pub fn max_recall_ind(&self) -> usize {
        self.confidence.iter().rposition(|c| *c != 0.0).unwrap_or(0)
    }

    /// The maximum recall reached.
    pub fn max_recall(&self) -> f64 {
        self.recall[self.max_recall_ind()]
    }

    /// The curve of a TP metric by its devkit name.
    pub fn tp_curve(&self, metric: &str) -> &[f64] {
        match metric {
            "trans_err" => &self.trans_err,
            "scale_err" => &self.scale_err,
            "orient_err" => &self.orient_err,
            "vel_err" => &self.vel_err,
            "attr_err" => &self.attr_err,
            other => panic!("unknown TP metric `{other}`"),
        }
    }
}

/// AP of one curve (the devkit's `calc_ap`).
pub fn calc_ap(md: &MetricData, min_recall: f64, min_precision: f64) -> f64 {
    let first = (py_round(100.0 * min_recall) + 1) as usize;
    let prec: Vec<f64> = md.precision[first.min(NELEM)..]
        .iter()
        .map(|p| (p - min_precision).max(0.0))
        .collect();
    mean(&prec) / (1.0 - min_precision)
}

/// Mean TP error of one curve between recall `min_recall` (exclusive) and the maximum recall
/// (inclusive); 1.0 when the maximum recall is not beyond `min_recall` (the devkit's `calc_tp`).
pub fn calc_tp(md: &MetricData, min_recall: f64, metric: &str) -> f64 {
    let first = (py_round(100.0 * min_recall) + 1) as usize;
    let last = md.max_recall_ind();
    if last < first {
        1.0
    } else {
        mean(&md.tp_curve(metric)[first..=last])
    }
}

/// The ground truth and predictions of one sample after filtering.
#[derive(Clone, Debug, Default)]
pub struct SampleBoxes<'a> {
    pub gt: Vec<&'a DetectionBox>,
    pub pred: Vec<&'a DetectionBox>,
}

/// A class's ground truth, grouped by sample, and its predictions in evaluation order.
struct ClassData<'a> {
    npos: usize,
    /// `gt_start[s]..gt_start[s + 1]` indexes the class's GT of sample `s` in `gt`.
    gt_start: Vec<usize>,
    gt: Vec<&'a DetectionBox>,
    gt_yaw: Vec<f64>,
    /// (sample index, box, yaw) sorted by descending score, later first on ties.
    preds: Vec<(usize, &'a DetectionBox, f64)>,
}

fn class_data<'a>(samples: &[SampleBoxes<'a>], label: usize) -> ClassData<'a> {
    let mut gt_start = Vec::with_capacity(samples.len() + 1);
    let mut gt = Vec::new();
    let mut preds = Vec::new();
    for (si, s) in samples.iter().enumerate() {
        gt_start.push(gt.len());
        gt.extend(s.gt.iter().copied().filter(|b| b.label == label));
        preds.extend(
            s.pred
                .iter()
                .filter(|b| b.label == label)
                .map(|b| (si, *b, 0.0)),
        );
    }
    gt_start.push(gt.len());
    // Python: sorted((score, index))[::-1] -> descending score, descending index on ties.
    preds.reverse();
    preds.sort_by(|a, b| {
        b.1.score
            .partial_cmp(&a.1.score)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for p in preds.iter_mut() {
        p.2 = quaternion_yaw(p.1.rotation);
    }
    let gt_yaw = gt.iter().map(|b| quaternion_yaw(b.rotation)).collect();
    ClassData {
        npos: gt.len(),
        gt_start,
        gt,
        gt_yaw,
        preds,
    }
}

/// Match one class at one distance threshold and build its curves (the devkit's
/// `accumulate`). `yaw_period` is pi for barriers, 2 pi otherwise.
fn accumulate_class(cd: &ClassData, dist_th: f64, yaw_period: f64) -> MetricData {
    if cd.npos == 0 {
        return MetricData::no_predictions();
    }
    let n = cd.preds.len();
    let mut taken = vec![false; cd.gt.len()];
    let mut tp = Vec::with_capacity(n);
    let mut fp = Vec::with_capacity(n);
    let mut conf = Vec::with_capacity(n);
    let mut m_trans = Vec::new();
    let mut m_vel = Vec::new();
    let mut m_scale = Vec::new();
    let mut m_orient = Vec::new();
    let mut m_attr = Vec::new();
    let mut m_conf = Vec::new();
    let (mut ctp, mut cfp) = (0.0f64, 0.0f64);
    for &(si, pred, pred_yaw) in &cd.preds {
        let mut min_dist = f64::INFINITY;
        let mut best = usize::MAX;
        for gi in cd.gt_start[si]..cd.gt_start[si + 1] {
            if taken[gi] {
                continue;
            }
            let d = center_distance(cd.gt[gi], pred);
            if d < min_dist {
                min_dist = d;
                best = gi;
            }
        }
        if min_dist < dist_th {
            taken[best] = true;
            ctp += 1.0;
            let g = cd.gt[best];
            m_trans.push(center_distance(g, pred));
            m_vel.push(velocity_l2(g, pred));
            m_scale.push(1.0 - scale_iou(g, pred));
            m_orient.push(yaw_diff(cd.gt_yaw[best], pred_yaw, yaw_period));
            m_attr.push(1.0 - attr_acc(g, pred));
            m_conf.push(pred.score);
        } else {
            cfp += 1.0;
        }
        tp.push(ctp);
        fp.push(cfp);
        conf.push(pred.score);
    }
    if m_trans.is_empty() {
        return MetricData::no_predictions();
    }
    let npos = cd.npos as f64;
    let prec: Vec<f64> = tp.iter().zip(&fp).map(|(t, f)| t / (f + t)).collect();
    let rec: Vec<f64> = tp.iter().map(|t| t / npos).collect();
    let rec_interp = linspace(0.0, 1.0, NELEM);
    let precision = interp(&rec_interp, &rec, &prec, None, Some(0.0));
    let confidence = interp(&rec_interp, &rec, &conf, None, Some(0.0));
    // TP errors: running means, interpolated at the confidences (on reversed, ascending axes).
    let conf_rev: Vec<f64> = confidence.iter().rev().copied().collect();
    let mconf_rev: Vec<f64> = m_conf.iter().rev().copied().collect();
    let resample = |errs: &[f64]| -> Vec<f64> {
        let tmp: Vec<f64> = cummean(errs).into_iter().rev().collect();
        let mut r = interp(&conf_rev, &mconf_rev, &tmp, None, None);
        r.reverse();
        r
    };
    MetricData {
        recall: rec_interp,
        precision,
        confidence,
        trans_err: resample(&m_trans),
        vel_err: resample(&m_vel),
        scale_err: resample(&m_scale),
        orient_err: resample(&m_orient),
        attr_err: resample(&m_attr),
    }
}

/// The devkit's `accumulate` for one class (a label into [`DETECTION_CLASSES`]) and one
/// distance threshold over filtered boxes.
pub fn accumulate(samples: &[SampleBoxes], label: usize, dist_th: f64) -> MetricData {
    let cd = class_data(samples, label);
    accumulate_class(&cd, dist_th, yaw_period(label))
}

fn yaw_period(label: usize) -> f64 {
    if DETECTION_CLASSES[label] == "barrier" {
        std::f64::consts::PI
    } else {
        2.0 * std::f64::consts::PI
    }
}

/// Whether the devkit leaves a TP metric undefined (NaN) for a class.
pub fn tp_metric_undefined(class: &str, metric: &str) -> bool {
    match class {
        "traffic_cone" => matches!(metric, "attr_err" | "vel_err" | "orient_err"),
        "barrier" => matches!(metric, "attr_err" | "vel_err"),
        _ => false,
    }
}

/// Result of the detection evaluation (the devkit's `DetectionMetrics` and the curves).
#[derive(Clone, Debug)]
pub struct DetectionMetrics {
    pub cfg: DetectionConfig,
    /// `label_aps[c][t]`: AP of class `cfg.class_range[c]` at threshold `cfg.dist_ths[t]`.
    pub label_aps: Vec<Vec<f64>>,
    /// `label_tp_errors[c][m]`, metrics in [`TP_METRICS`] order; NaN where undefined.
    pub label_tp_errors: Vec<[f64; 5]>,
    /// `metric_data[c][t]`: the curves behind each AP.
    pub metric_data: Vec<Vec<MetricData>>,
    /// Seconds spent in matching and metric computation.
    pub eval_time: f64,
}

impl DetectionMetrics {
    /// Class names in evaluation order.
    pub fn class_names(&self) -> Vec<&'static str> {
        self.cfg
            .class_range
            .iter()
            .map(|(l, _)| DETECTION_CLASSES[*l])
            .collect()
    }

    fn class_pos(&self, class: &str) -> Option<usize> {
        self.cfg
            .class_range
            .iter()
            .position(|(l, _)| DETECTION_CLASSES[*l] == class)
    }

    /// AP of a class at a threshold.
    pub fn label_ap(&self, class: &str, dist_th: f64) -> Option<f64> {
        let c = self.class_pos(class)?;
        let t = self.cfg.dist_ths.iter().position(|d| *d == dist_th)?;
        Some(self.label_aps[c][t])
    }

    /// TP error of a class by metric name (`trans_err`, ...); NaN where undefined.
    pub fn label_tp_error(&self, class: &str, metric: &str) -> Option<f64> {
        let c = self.class_pos(class)?;
        let m = TP_METRICS.iter().position(|x| *x == metric)?;
        Some(self.label_tp_errors[c][m])
    }

    /// Per class: AP averaged over the distance thresholds.
    pub fn mean_dist_aps(&self) -> Vec<f64> {
        self.label_aps.iter().map(|aps| mean(aps)).collect()
    }

    /// mAP: over classes and thresholds.
    pub fn mean_ap(&self) -> f64 {
        mean(&self.mean_dist_aps())
    }

    /// Per TP metric: the mean over classes, ignoring NaN (mATE, mASE, mAOE, mAVE, mAAE).
    pub fn tp_errors(&self) -> [f64; 5] {
        let mut out = [0.0; 5];
        for (m, o) in out.iter_mut().enumerate() {
            let v: Vec<f64> = self.label_tp_errors.iter().map(|e| e[m]).collect();
            *o = nanmean(&v);
        }
        out
    }

    /// `max(0, 1 - mTP)` per TP metric.
    pub fn tp_scores(&self) -> [f64; 5] {
        self.tp_errors().map(|e| (1.0 - e).max(0.0))
    }

    /// The nuScenes detection score.
    pub fn nd_score(&self) -> f64 {
        let w = self.cfg.mean_ap_weight;
        let total = w * self.mean_ap() + pairwise_sum(&self.tp_scores());
        total / (w + TP_METRICS.len() as f64)
    }

    /// The devkit's `metrics_summary.json` content (non-finite values written as `null`).
    pub fn summary(&self, meta: Option<&ResultsMeta>) -> MetricsSummary<'_> {
        MetricsSummary {
            m: self,
            meta: meta.cloned(),
            extra: Vec::new(),
        }
    }

    /// The devkit's `metrics_details.json` content: every curve keyed `class:threshold`.
    pub fn details(&self) -> Vec<(String, &MetricData)> {
        let mut out = Vec::new();
        for (c, name) in self.class_names().iter().enumerate() {
            for (t, th) in self.cfg.dist_ths.iter().enumerate() {
                out.push((format!("{name}:{th:?}"), &self.metric_data[c][t]));
            }
        }
        out
    }
}

/// Serialises as the devkit's `metrics_summary.json`.
pub struct MetricsSummary<'a> {
    m: &'a DetectionMetrics,
    meta: Option<ResultsMeta>,
    extra: Vec<(String, serde_json::Value)>,
}

impl MetricsSummary<'_> {
    /// Append a key of our own after the devkit's keys (e.g. `bev_map_segmentation`).
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.push((key.to_string(), value));
        self
    }
}

/// A float that serialises NaN/inf as `null` (JSON has no NaN).
struct F(f64);
impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_none()
        }
    }
}

impl Serialize for MetricsSummary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.m;
        let names = m.class_names();
        let label_aps: Vec<(&str, Vec<(String, F)>)> = names
            .iter()
            .zip(&m.label_aps)
            .map(|(n, aps)| {
                (
                    *n,
                    m.cfg
                        .dist_ths
                        .iter()
                        .zip(aps)
                        .map(|(t, a)| (format!("{t:?}"), F(*a)))
                        .collect(),
                )
            })
            .collect();
        let label_aps: Vec<(&str, OrderedEntries<String, F>)> = label_aps
            .iter()
            .map(|(n, v)| (*n, OrderedEntries(v.as_slice())))
            .collect();
        let mean_dist_aps: Vec<(&str, F)> = names
            .iter()
            .zip(m.mean_dist_aps())
            .map(|(n, a)| (*n, F(a)))
            .collect();
        let tps: Vec<(&str, Vec<(&str, F)>)> = names
            .iter()
            .zip(&m.label_tp_errors)
            .map(|(n, e)| {
                (
                    *n,
                    TP_METRICS.iter().zip(e).map(|(k, v)| (*k, F(*v))).collect(),
                )
            })
            .collect();
        let tps: Vec<(&str, OrderedEntries<&str, F>)> = tps
            .iter()
            .map(|(n, v)| (*n, OrderedEntries(v.as_slice())))
            .collect();
        let tp_errors: Vec<(&str, F)> = TP_METRICS
            .iter()
            .zip(m.tp_errors())
            .map(|(k, v)| (*k, F(v)))
            .collect();
        let tp_scores: Vec<(&str, F)> = TP_METRICS
            .iter()
            .zip(m.tp_scores())
            .map(|(k, v)| (*k, F(v)))
            .collect();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("label_aps", &OrderedEntries(&label_aps))?;
        map.serialize_entry("mean_dist_aps", &OrderedEntries(&mean_dist_aps))?;
        map.serialize_entry("mean_ap", &F(m.mean_ap()))?;
        map.serialize_entry("label_tp_errors", &OrderedEntries(&tps))?;
        map.serialize_entry("tp_errors", &OrderedEntries(&tp_errors))?;
        map.serialize_entry("tp_scores", &OrderedEntries(&tp_scores))?;
        map.serialize_entry("nd_score", &F(m.nd_score()))?;
        map.serialize_entry("eval_time", &F(m.eval_time))?;
        map.serialize_entry("cfg", &m.cfg)?;
        if let Some(meta) = &self.meta {
            map.serialize_entry("meta", meta)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Evaluate filtered boxes, one entry per sample in the predictions' sample order (the
/// level of the devkit's `accumulate` + `calc_ap` + `calc_tp` loop in
/// `DetectionEval.evaluate`). Classes and thresholds run in parallel.
pub fn evaluate_filtered(
    samples: &[SampleBoxes],
    cfg: &DetectionConfig,
) -> Result<DetectionMetrics> {
    cfg.validate()?;
    let start = Instant::now();
    for (si, s) in samples.iter().enumerate() {
        if let Some(b) = s.pred.iter().find(|b| b.score.is_nan()) {
            bail!(
                "sample {si}: a {} prediction has a NaN score",
                b.detection_name()
            );
        }
    }
    let tp_t = cfg.tp_threshold_index();
    let per_class: Vec<(Vec<f64>, [f64; 5], Vec<MetricData>)> = cfg
        .class_range
        .par_iter()
        .map(|&(label, _)| {
            let cd = class_data(samples, label);
            let period = yaw_period(label);
            let mds: Vec<MetricData> = cfg
                .dist_ths
                .par_iter()
                .map(|&th| accumulate_class(&cd, th, period))
                .collect();
            let aps = mds
                .iter()
                .map(|md| calc_ap(md, cfg.min_recall, cfg.min_precision))
                .collect();
            let name = DETECTION_CLASSES[label];
            let mut tps = [0.0; 5];
            for (k, metric) in TP_METRICS.iter().enumerate() {
                tps[k] = if tp_metric_undefined(name, metric) {
                    f64::NAN
                } else {
                    calc_tp(&mds[tp_t], cfg.min_recall, metric)
                };
            }
            (aps, tps, mds)
        })
        .collect();
    let mut m = DetectionMetrics {
        cfg: cfg.clone(),
        label_aps: Vec::new(),
        label_tp_errors: Vec::new(),
        metric_data: Vec::new(),
        eval_time: 0.0,
    };
    for (aps, tps, mds) in per_class {
        m.label_aps.push(aps);
        m.label_tp_errors.push(tps);
        m.metric_data.push(mds);
    }
    m.eval_time = start.elapsed().as_secs_f64();
    Ok(m)
}

/// Evaluate predictions against ground truth as `DetectionEval` does: the predictions must
/// cover exactly the ground truth's samples with at most `max_boxes_per_sample` boxes each;
/// both sides are filtered ([`filter_boxes`]) with each sample's ego pose and bicycle racks;
/// the predictions' sample order is the evaluation order.
pub fn evaluate_detections(
    gt: &GroundTruth,
    preds: &DetectionResults,
    cfg: &DetectionConfig,
) -> Result<DetectionMetrics> {
    cfg.validate()?;
    let start = Instant::now();
    preds.check_samples(&gt.sample_tokens(), cfg.max_boxes_per_sample)?;
    let by_token: HashMap<&str, usize> = gt
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| (s.sample_token.as_str(), i))
        .collect();
    let samples: Vec<SampleBoxes> = preds
        .samples
        .par_iter()
        .map(|p| {
            let g = &gt.samples[by_token[p.sample_token.as_str()]];
            SampleBoxes {
                gt: filter_boxes(&g.boxes, g.ego_translation, &g.bike_racks, cfg),
                pred: filter_boxes(&p.boxes, g.ego_translation, &g.bike_racks, cfg),
            }
        })
        .collect();
    tracing::debug!(
        "checks and filters took {:.3} s",
        start.elapsed().as_secs_f64()
    );
    // eval_time: matching and metrics only, as the devkit's
    evaluate_filtered(&samples, cfg).context("evaluating detections")
}
