//! Human-readable output of an evaluation: a markdown report (mAP, NDS, per-class AP and TP
//! errors, per-class BEV IoU) and PNG precision-recall curves, one chart per class with a
//! line per distance threshold.

use super::bev_miou::MiouResult;
use super::detection_config::TP_METRICS;
use super::nuscenes::DetectionMetrics;
use crate::plot::{line_chart, Series};
use anyhow::Result;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a".to_string()
    } else {
        format!("{v:.4}")
    }
}

/// The markdown report.
pub fn markdown(det: Option<&DetectionMetrics>, seg: Option<&MiouResult>) -> String {
    let mut s = String::from("# Evaluation\n\n");
    if let Some(m) = det {
        let e = m.tp_errors();
        let _ = writeln!(s, "## 3D detection (nuScenes detection metrics)\n");
        let _ = writeln!(
            s,
            "| mAP | NDS | mATE (m) | mASE (1-IoU) | mAOE (rad) | mAVE (m/s) | mAAE (1-acc) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            num(m.mean_ap()),
            num(m.nd_score()),
            num(e[0]),
            num(e[1]),
            num(e[2]),
            num(e[3]),
            num(e[4])
        );
        let ths: Vec<String> = m.cfg.dist_ths.iter().map(|t| format!("AP@{t}m")).collect();
        let _ = writeln!(
            s,
            "| class | AP | {} | ATE | ASE | AOE | AVE | AAE |",
            ths.join(" | ")
        );
        let _ = writeln!(
            s,
            "|---|---|{}---|---|---|---|---|",
            "---|".repeat(ths.len())
        );
        let mdaps = m.mean_dist_aps();
        for (c, name) in m.class_names().iter().enumerate() {
            let aps: Vec<String> = m.label_aps[c].iter().map(|a| num(*a)).collect();
            let tps: Vec<String> = (0..TP_METRICS.len())
                .map(|k| num(m.label_tp_errors[c][k]))
                .collect();
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} |",
                num(mdaps[c]),
                aps.join(" | "),
                tps.join(" | ")
            );
        }
        let _ = writeln!(
            s,
            "\nAP: 101-point interpolated, recall > {} and precision > {}; TP errors at {} m; \
             `n/a` = not defined for the class (nuScenes rules). Evaluation took {:.2} s.\n",
            m.cfg.min_recall, m.cfg.min_precision, m.cfg.dist_th_tp, m.eval_time
        );
    }
    if let Some(r) = seg {
        let _ = writeln!(s, "## BEV map segmentation\n");
        let ths: Vec<String> = r.thresholds.iter().map(|t| format!("@{t:.2}")).collect();
        let _ = writeln!(s, "| class | IoU (max) | {} |", ths.join(" | "));
        let _ = writeln!(s, "|---|---|{}", "---|".repeat(ths.len()));
        for (c, name) in r.class_names.iter().enumerate() {
            let row: Vec<String> = r.iou[c].iter().map(|v| num(*v)).collect();
            let _ = writeln!(
                s,
                "| {name} | {} | {} |",
                num(r.iou_max[c]),
                row.join(" | ")
            );
        }
        let _ = writeln!(
            s,
            "| **mIoU** | **{}** |{}",
            num(r.miou),
            " |".repeat(ths.len())
        );
        let _ = writeln!(
            s,
            "\nIoU summed over {} samples, maximised over the sigmoid thresholds.\n",
            r.samples
        );
    }
    s
}

/// One precision-recall PNG per class (`pr_<class>.png` in `dir`), a line per threshold.
pub fn write_pr_curves(m: &DetectionMetrics, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let mut out = Vec::new();
    for (c, name) in m.class_names().iter().enumerate() {
        let series: Vec<Series> = m
            .cfg
            .dist_ths
            .iter()
            .enumerate()
            .map(|(t, th)| {
                let md = &m.metric_data[c][t];
                let pts = md
                    .recall
                    .iter()
                    .zip(&md.precision)
                    .map(|(r, p)| (*r, *p))
                    .collect();
                Series::new(format!("{th} m: AP {:.3}", m.label_aps[c][t]), pts)
            })
            .collect();
        let path = dir.join(format!("pr_{name}.png"));
        line_chart(
            &path,
            &format!("{name}: precision vs recall"),
            "recall",
            "precision",
            &series,
            false,
        )?;
        out.push(path);
    }
    Ok(out)
}
