//! The demo's bag and replay steps: the held-out scenes written as a rosbag2 bag (the scene
//! writer of `altermoma gen-bag`), then replayed through the node's pipeline for the dense
//! and the pruned models side by side (`crate::replay::replay_many`: the same messages to
//! each, frames run in alternating order) for per-frame latency percentiles and the accuracy
//! of the replayed outputs against the bag's ground truth.

use crate::bag::scene_writer::{write_scene_bag, ImageFormat, SceneBagOptions};
use crate::bag::Bag;
use crate::data::Dataset;
use crate::metrics::DetectionConfig;
use crate::replay::node_processor::{node_processor, replay_params};
use crate::replay::{replay_many, LatencyStats, Percentiles, ReplayOptions};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use super::config::{DemoBag, DemoReplay};
use super::results::{BagOut, LatencyRow, ReplayOut};

/// Write `data`'s frames as a bag at `out` (replacing what an interrupted run left there).
pub fn write_bag(data: &dyn Dataset, cfg: &DemoBag, out: &Path) -> Result<BagOut> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    let opts = SceneBagOptions {
        storage: crate::cli::gen_bag::storage_kind(&cfg.storage)?,
        images: cfg.images.parse::<ImageFormat>()?,
        ..Default::default()
    };
    let n = cfg.max_frames.map_or(data.len(), |m| m.min(data.len()));
    let r = write_scene_bag((0..n).map(|i| data.get(i)), n, &data.cameras(), out, &opts)?;
    eprintln!(
        "    {}: {} frames, {} messages, {:.1} MB, {:.1} s recorded",
        out.display(),
        r.frames,
        r.messages,
        r.bytes as f64 / 1e6,
        r.duration_s
    );
    Ok(BagOut {
        frames: r.frames,
        messages: r.messages,
        megabytes: r.bytes as f64 / 1e6,
        duration_s: r.duration_s,
    })
}

/// Replay the bag at `bag` through one node pipeline per `(name, checkpoint)`.
pub fn replay_models(
    bag: &Path,
    models: &[(String, PathBuf)],
    cameras: &[crate::data::CameraCalib],
    device: &str,
    cfg: &DemoReplay,
) -> Result<ReplayOut> {
    // The replay tool's own processor: node parameters (extrinsics from the bag's latched rig
    // calibration, camera names from the bag), the node's synchroniser and FramePipeline.
    let _ = cameras;
    let bag_r = Bag::open(bag)?;
    let mut procs = Vec::new();
    let mut dev = String::new();
    for (name, path) in models {
        let overrides = [
            ("device".to_string(), serde_json::to_string(device)?),
            ("warmup_frames".to_string(), cfg.warmup_frames.to_string()),
        ];
        let params = replay_params(&bag_r, &[], path, &overrides)
            .with_context(|| format!("node parameters for the {name} model"))?;
        let p = node_processor(&bag_r, &params, path).with_context(|| format!("loading the {name} pipeline"))?;
        dev = p.pipeline().info().device.clone();
        procs.push(p);
    }
    let runs = replay_many(&bag_r, &mut procs, &ReplayOptions::default())?;
    let mut rows = Vec::new();
    for ((name, _), run) in models.iter().zip(&runs) {
        let stats = LatencyStats::of(run);
        let network = Percentiles::of(
            run.frames.iter().map(|f| crate::pipeline::StageTimings::from_array(f.stages_ms).network()),
        );
        let ev = crate::replay::evaluation::evaluate(run, &DetectionConfig::default())?;
        let (map, nds) = match ev.as_ref().and_then(|e| e.detection.as_ref()) {
            Some(d) => (d.mean_ap(), d.nd_score()),
            None => (f64::NAN, f64::NAN),
        };
        eprintln!(
            "    {name}: {} frames, p50 {:.1} ms, p99 {:.1} ms (network p50 {:.1} ms); replayed mAP {:.3} NDS {:.3}",
            stats.frames, stats.total.p50, stats.total.p99, network.p50, map, nds
        );
        rows.push(LatencyRow {
            name: name.clone(),
            frames: stats.frames,
            p50_ms: stats.total.p50,
            p99_ms: stats.total.p99,
            mean_ms: stats.total.mean,
            network_p50_ms: network.p50,
            map,
            nds,
            failed: stats.failed,
        });
        anyhow::ensure!(
            run.failed.is_empty(),
            "{name}: {} frame(s) failed in replay, first: {}",
            run.failed.len(),
            run.failed[0]
        );
    }
    Ok(ReplayOut { rows, device: dev })
}
