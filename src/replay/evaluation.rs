//! Metrics of a replay against the bag's ground truth (`altermoma_msgs/FrameGroundTruth`),
//! with the project's nuScenes metrics: the detections of every frame that has ground
//! truth become a nuScenes results file (global boxes), evaluated exactly as `altermoma
//! eval` evaluates one; BEV map segmentation probabilities give the mIoU.
//!
//! Only frames that were run are evaluated (a realtime replay drops frames; the report says
//! how many ground-truth frames had no output).

use super::report::EvalSection;
use super::run::ReplayRun;
use crate::data::Frame;
use crate::metrics::{report, DetectionConfig, DetectionMetrics, DetectionResults, FrameEvaluator, MiouResult};
use anyhow::Result;
use std::collections::HashMap;
use std::path::Path;

/// Metrics of one replay.
pub struct ReplayEval {
    pub detection: Option<DetectionMetrics>,
    pub segmentation: Option<MiouResult>,
    pub results: DetectionResults,
    /// Ground-truth frames in the bag without an output (dropped or failed frames).
    pub unmatched_ground_truth: usize,
    /// Frames whose segmentation could not be scored (grid differs from the ground truth's).
    pub seg_skipped: usize,
}

/// Evaluate `run` with the metrics library's [`FrameEvaluator`] (the path training
/// validation and pruning experiments use); None when the bag has no ground truth for any
/// frame that was run.
pub fn evaluate(run: &ReplayRun, cfg: &DetectionConfig) -> Result<Option<ReplayEval>> {
    let gt_by_token: HashMap<&str, &Frame> = run.ground_truth.iter().map(|f| (f.token.as_str(), f)).collect();
    // Frames with ground truth, in the order they were run, each token once.
    let mut seen = std::collections::HashSet::new();
    let matched: Vec<(&Frame, &super::run::FrameRecord)> = run
        .frames
        .iter()
        .filter_map(|r| {
            let tok = r.sample_token.as_deref()?;
            let f = gt_by_token.get(tok)?;
            seen.insert(tok).then_some((*f, r))
        })
        .collect();
    if matched.is_empty() {
        return Ok(None);
    }
    let mut ev = FrameEvaluator::new(cfg.clone());
    let mut seg_skipped = 0;
    for (f, r) in &matched {
        ev.add_detections(f, &r.boxes)?;
        if let (Some(p), Some(m)) = (&r.seg_probs, &f.map) {
            let (nx, ny) = (m.grid.nx(), m.grid.ny());
            if nx * ny > 0 && p.len() == m.data.len() {
                let c = (p.len() / (nx * ny)) as i64;
                let t = tch::Tensor::from_slice(p).view([c, nx as i64, ny as i64]);
                match ev.add_segmentation_map(&t, m) {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!("frame {}: segmentation not scored: {e:#}", f.token);
                        seg_skipped += 1;
                    }
                }
            } else {
                seg_skipped += 1;
            }
        }
    }
    let out = ev.finish()?;
    Ok(Some(ReplayEval {
        detection: Some(out.detection),
        segmentation: out.segmentation,
        results: out.results,
        unmatched_ground_truth: run.ground_truth.len() - matched.len(),
        seg_skipped,
    }))
}

impl ReplayEval {
    /// Write `detections.json` (nuScenes results), `metrics.json` (the devkit's summary keys
    /// plus `bev_map_segmentation`) and `metrics.md` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        self.results.save(dir.join("detections.json"))?;
        let seg = self.segmentation.as_ref().map(serde_json::to_value).transpose()?;
        let text = match &self.detection {
            Some(m) => {
                let mut s = m.summary(Some(&self.results.meta));
                if let Some(v) = seg {
                    s = s.with("bev_map_segmentation", v);
                }
                serde_json::to_string_pretty(&s)?
            }
            None => serde_json::to_string_pretty(&serde_json::json!({ "bev_map_segmentation": seg }))?,
        };
        crate::io::atomic_write(dir.join("metrics.json"), text.as_bytes())?;
        crate::io::atomic_write(dir.join("metrics.md"), self.markdown().as_bytes())?;
        Ok(())
    }

    /// The metrics as the evaluation report writes them, plus the replay's caveats.
    pub fn markdown(&self) -> String {
        let mut s = report::markdown(self.detection.as_ref(), self.segmentation.as_ref());
        s = s.replacen("# Evaluation\n\n", "", 1);
        if self.unmatched_ground_truth > 0 {
            s += &format!(
                "\n{} ground-truth frame(s) of the bag had no output (dropped or failed) and are not evaluated.\n",
                self.unmatched_ground_truth
            );
        }
        if self.seg_skipped > 0 {
            s += &format!(
                "\n{} frame(s) not scored for segmentation: grid differs from the ground truth's.\n",
                self.seg_skipped
            );
        }
        s
    }

    /// For the report.
    pub fn section(&self) -> EvalSection {
        let mut headline = Vec::new();
        if let Some(m) = &self.detection {
            headline.push(("mAP".to_string(), m.mean_ap()));
            headline.push(("NDS".to_string(), m.nd_score()));
        }
        if let Some(r) = &self.segmentation {
            headline.push(("mIoU".to_string(), r.miou));
        }
        EvalSection { markdown: self.markdown(), headline }
    }
}
