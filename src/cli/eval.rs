//! `altermoma eval`: nuScenes detection metrics of a results file against a dataset in the
//! nuScenes layout, and BEV map-segmentation mIoU; writes `metrics.json` (the devkit's
//! `metrics_summary.json` keys, plus `bev_map_segmentation`), `metrics_details.json` (every
//! curve), `metrics.md` and `pr_<class>.png`.

use crate::metrics::{bev_miou, report, DetectionConfig, DetectionResults, GroundTruth, Split};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Options of `altermoma eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Detection results in the nuScenes results JSON format.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Dataset root in the nuScenes layout (tables under `<dataroot>/<version>/`).
    #[arg(long)]
    pub dataroot: Option<PathBuf>,
    /// Table folder name, e.g. `v1.0-mini`.
    #[arg(long)]
    pub version: Option<String>,
    /// Samples to evaluate: `all` (default), the name of a split in
    /// `<dataroot>/<version>/splits.json` (custom splits are evaluated in split order, the
    /// devkit's predefined names such as `val` in file order, as the devkit does; write the
    /// official lists with `tests/python/nuscenes_splits.py`), `scenes:NAME,NAME,...`, or
    /// `samples:FILE` (one sample token per line).
    #[arg(long, default_value = "all")]
    pub split: String,
    /// A devkit-format detection config JSON (default: detection_cvpr_2019).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// BEV segmentation probabilities: safetensors, one `[C, NX, NY]` tensor per sample token.
    #[arg(long)]
    pub seg_predictions: Option<PathBuf>,
    /// BEV segmentation ground truth: safetensors, one `[C, NX, NY]` mask per sample token.
    #[arg(long, requires = "seg_predictions")]
    pub seg_gt: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Skip the PNG precision-recall curves.
    #[arg(long)]
    pub no_plots: bool,
}

/// The devkit's predefined split names (their scene lists can be written to `splits.json`
/// with `tests/python/nuscenes_splits.py`).
const PREDEFINED_SPLITS: [&str; 7] = [
    "train",
    "val",
    "test",
    "mini_train",
    "mini_val",
    "train_detect",
    "train_track",
];

/// Parse `--split`; the flag says whether predictions follow the split's order.
fn parse_split(s: &str, dataroot: &std::path::Path, version: &str) -> Result<(Split, bool)> {
    if s == "all" {
        return Ok((Split::All, false));
    }
    if let Some(list) = s.strip_prefix("scenes:") {
        let names: Vec<String> = list
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect();
        if names.is_empty() {
            bail!("--split scenes: needs at least one scene name");
        }
        return Ok((Split::Scenes(names), false));
    }
    if let Some(file) = s.strip_prefix("samples:") {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading sample list {file}"))?;
        let tokens: Vec<String> = text
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        return Ok((Split::Samples(tokens), false));
    }
    // the devkit evaluates its predefined splits in the results' order, custom ones in the
    // split's order
    let predefined = PREDEFINED_SPLITS.contains(&s);
    Ok((Split::from_splits_file(dataroot, version, s)?, !predefined))
}

pub fn run(a: Args) -> Result<()> {
    if a.predictions.is_none() && a.seg_predictions.is_none() {
        bail!("nothing to evaluate: give --predictions and/or --seg-predictions");
    }
    let cfg = match &a.config {
        Some(p) => DetectionConfig::from_json_file(p)?,
        None => DetectionConfig::cvpr_2019(),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;

    let mut det = None;
    let mut meta = None;
    let mut eval_tokens: Option<Vec<String>> = None;
    if let Some(pred_path) = &a.predictions {
        let (Some(dataroot), Some(version)) = (&a.dataroot, &a.version) else {
            bail!("--predictions needs --dataroot and --version for the ground truth");
        };
        let (split, split_order) = parse_split(&a.split, dataroot, version)?;
        tracing::info!("loading predictions from {}", pred_path.display());
        let mut preds = DetectionResults::load(pred_path)?;
        tracing::info!("loading ground truth from {}/{version}", dataroot.display());
        let gt = GroundTruth::load(dataroot, version, &split)?;
        preds
            .check_samples(&gt.sample_tokens(), cfg.max_boxes_per_sample)
            .with_context(|| format!("{}", pred_path.display()))?;
        if split_order {
            preds.reorder_to(&gt.sample_tokens())?;
        }
        tracing::info!(
            "evaluating {} predicted boxes against {} ground-truth boxes in {} samples",
            preds.num_boxes(),
            gt.num_boxes(),
            gt.samples.len()
        );
        let m = crate::metrics::evaluate_detections(&gt, &preds, &cfg)?;
        let details: Vec<(String, &crate::metrics::MetricData)> = m.details();
        crate::io::write_json(
            a.out.join("metrics_details.json"),
            &crate::metrics::ordered_json::OrderedEntries(details.as_slice()),
        )?;
        if !a.no_plots {
            report::write_pr_curves(&m, &a.out)?;
        }
        eval_tokens = Some(gt.sample_tokens());
        meta = Some(preds.meta);
        det = Some(m);
    }

    let mut seg = None;
    if let Some(sp) = &a.seg_predictions {
        let Some(gp) = &a.seg_gt else {
            bail!("--seg-predictions needs --seg-gt (ground-truth masks per sample token)");
        };
        let r =
            bev_miou::evaluate_files(sp, gp, &crate::classes::MAP_CLASSES, eval_tokens.as_deref())?;
        seg = Some(r);
    }

    let seg_json = seg.as_ref().map(serde_json::to_value).transpose()?;
    let text = match &det {
        Some(m) => {
            let mut s = m.summary(meta.as_ref());
            if let Some(v) = seg_json {
                s = s.with("bev_map_segmentation", v);
            }
            serde_json::to_string_pretty(&s)?
        }
        None => {
            serde_json::to_string_pretty(&serde_json::json!({ "bev_map_segmentation": seg_json }))?
        }
    };
    crate::io::atomic_write(a.out.join("metrics.json"), text.as_bytes())?;
    let md = report::markdown(det.as_ref(), seg.as_ref());
    crate::io::atomic_write(a.out.join("metrics.md"), md.as_bytes())?;
    if let Some(m) = &det {
        let e = m.tp_errors();
        println!("mAP: {:.4}", m.mean_ap());
        for (name, v) in ["mATE", "mASE", "mAOE", "mAVE", "mAAE"].iter().zip(e) {
            println!("{name}: {v:.4}");
        }
        println!("NDS: {:.4}", m.nd_score());
        println!("Eval time: {:.2}s", m.eval_time);
    }
    if let Some(r) = &seg {
        println!("BEV mIoU: {:.4}", r.miou);
    }
    println!("wrote {}", a.out.join("metrics.json").display());
    Ok(())
}
