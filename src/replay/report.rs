//! The replay report: `report.md` with the run's facts, metrics and latency tables, a PNG
//! latency histogram and a per-frame timeline, `latency.json` with every number and every
//! frame's stage times.

use super::latency::LatencyStats;
use super::processor::STAGES;
use super::run::ReplayRun;
use crate::plot::{self, Series};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// Metrics of a replay against the bag's ground truth, already formatted.
#[derive(Clone, Debug, Default)]
pub struct EvalSection {
    /// Markdown (tables).
    pub markdown: String,
    /// Headline numbers for the summary line, e.g. `[("mAP", 0.41), ("NDS", 0.52)]`.
    pub headline: Vec<(String, f64)>,
}

/// Files written by [`write_report`].
pub const REPORT_FILES: [&str; 4] = ["report.md", "latency.json", "latency_hist.png", "latency_timeline.png"];

/// Write the report of `run` into `dir`.
pub fn write_report(
    dir: &Path,
    bag: &Path,
    run: &ReplayRun,
    stats: &LatencyStats,
    eval: Option<&EvalSection>,
    realtime: bool,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let frames: Vec<serde_json::Value> = run
        .frames
        .iter()
        .map(|f| {
            serde_json::json!({
                "stamp_ns": f.stamp_ns,
                "t_s": f.t_s,
                "sample_token": f.sample_token,
                "mode": f.mode,
                "detections": f.boxes.len(),
                "stages_ms": STAGES.iter().zip(f.stages_ms).map(|(s, v)| (s.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                "latency_ms": f.latency_ms,
                "e2e_ms": f.e2e_ms,
                "masked_cameras": f.masked_cameras,
            })
        })
        .collect();
    crate::io::write_json(
        dir.join("latency.json"),
        &serde_json::json!({"bag": bag, "pipeline": run.describe, "realtime": realtime, "summary": stats, "frames": frames}),
    )?;
    let totals: Vec<f64> = run.frames.iter().map(|f| f.stages_ms.iter().sum()).collect();
    plot::histogram(
        dir.join("latency_hist.png"),
        &format!("Per-frame pipeline time ({} frames)", totals.len()),
        "ms (sum of stages)",
        &totals,
        30,
    )?;
    let x = |f: &super::run::FrameRecord| f.t_s;
    let mut series = vec![Series::new("total", run.frames.iter().map(|f| (x(f), f.stages_ms.iter().sum())).collect())];
    for (i, s) in STAGES.iter().enumerate() {
        if run.frames.iter().any(|f| f.stages_ms[i] > 0.0) {
            series.push(Series::new(*s, run.frames.iter().map(|f| (x(f), f.stages_ms[i])).collect()));
        }
    }
    series.push(Series::new("end to end", run.frames.iter().map(|f| (x(f), f.e2e_ms)).collect()));
    plot::line_chart(
        dir.join("latency_timeline.png"),
        "Per-frame latency over the bag",
        "recorded time (s)",
        "ms",
        &series,
        false,
    )?;

    let mut md = String::new();
    let _ = writeln!(md, "# Replay report\n");
    let _ = writeln!(md, "- bag: `{}`", bag.display());
    let _ = writeln!(md, "- pipeline: {}", run.describe);
    let _ = writeln!(
        md,
        "- mode: {}",
        if realtime {
            "realtime (recorded timing; busy pipeline drops older frames)"
        } else {
            "as fast as possible (no frame dropped)"
        }
    );
    let _ = writeln!(
        md,
        "- messages read: {} ({:.1} MB) in {:.1} s wall",
        run.messages,
        run.bytes as f64 / 1e6,
        run.wall_s
    );
    let _ = writeln!(md, "- frames run: {}, dropped: {}, failed: {}", stats.frames, stats.dropped, stats.failed);
    let modes: Vec<String> = stats.modes.iter().map(|(m, n)| format!("{m} {n}")).collect();
    let _ = writeln!(md, "- frames per mode: {}", if modes.is_empty() { "-".into() } else { modes.join(", ") });
    let _ = writeln!(md, "- ground-truth frames in the bag: {}", run.ground_truth.len());
    if let Some(e) = eval {
        let h: Vec<String> = e.headline.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        let _ = writeln!(md, "- metrics: {}", h.join(", "));
    }
    let _ = writeln!(
        md,
        "- pipeline time p50 / p90 / p99: {:.1} / {:.1} / {:.1} ms ({:.1} frames/s); outside the network forward: {:.1} %",
        stats.total.p50,
        stats.total.p90,
        stats.total.p99,
        stats.pipeline_fps,
        100.0 * stats.outside_network_share
    );
    if let Some(e) = eval {
        let _ = writeln!(md, "\n## Metrics against the bag's ground truth\n\n{}", e.markdown);
    }
    let _ = writeln!(md, "\n## Latency\n\n{}", stats.markdown());
    let _ = writeln!(md, "![latency histogram](latency_hist.png)\n\n![latency timeline](latency_timeline.png)\n");
    if !run.skipped_topics.is_empty() || !run.rejected.is_empty() || !run.issues.is_empty() || !run.failed.is_empty() {
        let _ = writeln!(md, "## Notes\n");
        for (t, (ty, n)) in &run.skipped_topics {
            let _ = writeln!(md, "- skipped topic `{t}` (`{ty}`, {n} messages): not used by the pipeline");
        }
        for (why, n) in &run.rejected {
            let _ = writeln!(md, "- {n} message(s) rejected: {why}");
        }
        for i in &run.issues {
            let _ = writeln!(md, "- bag damage: {i}");
        }
        for f in &run.failed {
            let _ = writeln!(md, "- failed {f}");
        }
    }
    crate::io::atomic_write(dir.join("report.md"), md.as_bytes())?;
    Ok(())
}
