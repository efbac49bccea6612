//! `altermoma latency` (issue #8): dense and pruned models on the same bag in one run, frame
//! by frame in alternating order, with the speed-up at p50 / p90 / p99.

use std::path::PathBuf;

/// Options of `altermoma latency`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// rosbag2 directory, or one .mcap / .db3 file.
    #[arg(long)]
    pub bag: PathBuf,
    /// Checkpoints, comma separated; the first is the baseline (usually the dense model).
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<PathBuf>,
    /// Node parameter file(s) (see `altermoma replay --config`).
    #[arg(long)]
    pub config: Vec<PathBuf>,
    /// Parameter overrides NAME=VALUE, repeatable.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// `auto`, `cpu`, `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
    /// Stop after this many frames.
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Output folder: one replay report per model and `latency.md`.
    #[arg(long, default_value = "latency_out")]
    pub out: PathBuf,
    #[arg(long)]
    pub quiet: bool,
}

#[cfg(not(feature = "ros"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma latency` needs the `ros` feature (message types)")
}

#[cfg(feature = "ros")]
pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::replay::node_processor::{node_processor, replay_params};
    use crate::replay::{replay_many, report, LatencyStats, ReplayOptions};
    use std::fmt::Write as _;
    anyhow::ensure!(!args.models.is_empty(), "--models: at least one checkpoint");
    let bag = crate::bag::Bag::open(&args.bag)?;
    let mut ov = super::replay::parse_overrides(&args.params)?;
    if let Some(d) = &args.device {
        ov.push(("device".into(), d.clone()));
    }
    let mut procs = Vec::new();
    for m in &args.models {
        let params = replay_params(&bag, &args.config, m, &ov)?;
        procs.push(node_processor(&bag, &params, m)?);
    }
    let opts = ReplayOptions { max_frames: args.max_frames, progress: !args.quiet, ..Default::default() };
    let runs = replay_many(&bag, &mut procs, &opts)?;
    let stats: Vec<LatencyStats> = runs.iter().map(LatencyStats::of).collect();
    let mut md = String::from("# Latency comparison\n\n");
    let _ = writeln!(
        md,
        "bag `{}`, {} frames per model, models run frame by frame in alternating order.\n",
        args.bag.display(),
        stats[0].frames
    );
    md += "| model | p50 ms | p90 ms | p99 ms | mean ms | speed-up p50 | p90 | p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    let base = &stats[0].total;
    for (k, (m, s)) in args.models.iter().zip(&stats).enumerate() {
        let t = &s.total;
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.2}x |",
            m.display(),
            t.p50,
            t.p90,
            t.p99,
            t.mean,
            base.p50 / t.p50,
            base.p90 / t.p90,
            base.p99 / t.p99
        );
        let dir = args.out.join(format!("model_{k}"));
        report::write_report(&dir, &args.bag, &runs[k], s, None, false)?;
    }
    std::fs::create_dir_all(&args.out)?;
    crate::io::atomic_write(args.out.join("latency.md"), md.as_bytes())?;
    print!("{md}");
    Ok(())
}
