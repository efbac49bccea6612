//! `altermoma demo` (issue #9): the whole product end to end (see [`crate::demo`]).

use std::path::PathBuf;

/// Options of `altermoma demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder: every step's outputs, report.md, results.json, plots/. Re-running with
    /// the same folder reuses finished steps.
    #[arg(long, default_value = "demo_out")]
    pub out: PathBuf,
    /// Demo config (default: the embedded config/demo/tiny.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override the config's device (`auto`, `cpu`, `cuda`, `cuda:N`).
    #[arg(long)]
    pub device: Option<String>,
}

#[cfg(not(feature = "ros"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma demo` needs the `ros` feature (bag and replay)")
}

#[cfg(feature = "ros")]
pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::demo::{DemoConfig, DemoOptions};
    let (mut config, source) = match &args.config {
        Some(p) => (DemoConfig::load(p)?, p.display().to_string()),
        None => (
            DemoConfig::tiny(),
            "embedded config/demo/tiny.yaml".to_string(),
        ),
    };
    if let Some(d) = args.device {
        config.device = d;
    }
    let command = std::iter::once("altermoma".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let opts = DemoOptions {
        out: args.out.clone(),
        config,
        config_source: source,
        command,
    };
    let r = crate::demo::run(&opts)?;
    println!();
    println!(
        "AlterMOMA demo `{}`: dense vs {:.0} % pruned (AlterMOMA and {}), held-out scenes",
        r.name,
        100.0 * r.sparsity,
        r.baseline.name()
    );
    println!();
    print!("{}", crate::demo::report::final_table(&r));
    println!();
    println!(
        "report: {}  (plots in {})",
        args.out.join("report.md").display(),
        args.out.join("plots").display()
    );
    println!("wall time of this run: {:.1} s", r.wall_s);
    Ok(())
}
