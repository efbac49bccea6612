//! `altermoma replay` (issue #8): the node's per-frame pipeline over a rosbag2 bag, with
//! metrics against the bag's ground truth, latency percentiles and a report.

use std::path::PathBuf;

/// Options of `altermoma replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// rosbag2 directory (metadata.yaml + MCAP or sqlite3), or one .mcap / .db3 file.
    #[arg(long)]
    pub bag: PathBuf,
    /// Checkpoint (dense, masked or structured-pruned).
    #[arg(long)]
    pub model: PathBuf,
    /// Node parameter file(s) as the node takes them (thresholds, camera names and topics,
    /// synchronisation); relative topics fall back to the gen-bag topic layout.
    #[arg(long)]
    pub config: Vec<PathBuf>,
    /// Parameter overrides NAME=VALUE (as `-p name:=value` of the node), repeatable.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// `auto`, `cpu`, `cuda:N` (overrides the parameter file).
    #[arg(long)]
    pub device: Option<String>,
    /// Output folder: report.md, metrics.json/md, detections.json, latency.json, PNG plots.
    #[arg(long, default_value = "replay_out")]
    pub out: PathBuf,
    /// Messages arrive at their recorded times; a busy pipeline drops older frames as the
    /// node does.
    #[arg(long)]
    pub realtime: bool,
    /// Speed factor of --realtime.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Also record the outputs (objects, segmentation, processing time) into this new bag.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// A devkit-format detection config JSON (default: detection_cvpr_2019).
    #[arg(long)]
    pub eval_config: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Parse `NAME=VALUE` overrides.
pub fn parse_overrides(v: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    v.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(a, b)| (a.trim_end_matches(':').to_string(), b.to_string()))
                .filter(|(a, _)| !a.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--param {s}: expected NAME=VALUE"))
        })
        .collect()
}

#[cfg(not(feature = "ros"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma replay` needs the `ros` feature (message types)")
}

#[cfg(feature = "ros")]
pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::metrics::DetectionConfig;
    use crate::replay::node_processor::{node_processor, replay_params};
    use crate::replay::{evaluation, replay, report, LatencyStats, ReplayOptions};
    let bag = crate::bag::Bag::open(&args.bag)?;
    for i in bag.open_issues() {
        eprintln!("bag damage: {i}");
    }
    let mut ov = parse_overrides(&args.params)?;
    if let Some(d) = &args.device {
        ov.push(("device".into(), d.clone()));
    }
    let params = replay_params(&bag, &args.config, &args.model, &ov)?;
    let mut proc_ = node_processor(&bag, &params, &args.model)?;
    let opts = ReplayOptions {
        realtime: args.realtime,
        rate: args.rate,
        record: args.record.clone(),
        max_frames: args.max_frames,
        progress: !args.quiet,
    };
    let run = replay(&bag, &mut proc_, &opts)?;
    let cfg = match &args.eval_config {
        Some(p) => DetectionConfig::from_json_file(p)?,
        None => DetectionConfig::cvpr_2019(),
    };
    let eval = evaluation::evaluate(&run, &cfg)?;
    if let Some(e) = &eval {
        e.write(&args.out)?;
    }
    let stats = LatencyStats::of(&run);
    report::write_report(
        &args.out,
        &args.bag,
        &run,
        &stats,
        eval.as_ref().map(|e| e.section()).as_ref(),
        args.realtime,
    )?;
    for (t, (ty, n)) in &run.skipped_topics {
        println!("skipped topic {t} ({ty}, {n} messages): not used by the pipeline");
    }
    for i in &run.issues {
        println!("bag damage: {i}");
    }
    for (why, n) in &run.rejected {
        println!("rejected {n} message(s): {why}");
    }
    for f in &run.failed {
        println!("failed: {f}");
    }
    println!(
        "{}: {} frames ({} dropped), {} messages, {:.1} MB read in {:.0} ms; pipeline p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        run.describe,
        run.frames.len(),
        run.dropped,
        run.messages,
        run.bytes as f64 / 1e6,
        run.read_ms,
        stats.total.p50,
        stats.total.p90,
        stats.total.p99
    );
    match &eval {
        Some(e) => {
            let h: Vec<String> = e.section().headline.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            println!("metrics against the bag's ground truth: {}", h.join(", "));
        }
        None => println!("no ground truth in the bag for the frames run: no metrics"),
    }
    println!("report: {}", args.out.join("report.md").display());
    if let Some(r) = &args.record {
        println!("outputs recorded in {}", r.display());
    }
    Ok(())
}
