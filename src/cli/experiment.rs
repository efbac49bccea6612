//! `altermoma experiment --config config/experiments/<name>.yaml`: the whole pruning study
//! (see [`crate::experiment`]); resumable: re-running the same command skips finished cells.

use crate::experiment::config::ExperimentConfig;
use crate::experiment::runner::Runner;
use anyhow::Result;
use std::path::PathBuf;

/// Options of `altermoma experiment`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Study YAML (config/experiments/*.yaml).
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder (default: runs/experiments/<name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let cfg: ExperimentConfig = crate::config::load_yaml(&args.config)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/experiments").join(&cfg.name));
    let mut command = format!("altermoma experiment --config {}", args.config.display());
    if let Some(o) = &args.out {
        command.push_str(&format!(" --out {}", o.display()));
    }
    let t0 = std::time::Instant::now();
    let mut runner = Runner::new(cfg, &out, command)?;
    let study = runner.run()?;
    println!("{}", crate::experiment::report::table1(&study));
    println!(
        "report: {} ({:.1} min)",
        out.join("report.md").display(),
        t0.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}
