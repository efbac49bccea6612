//! `altermoma play` (issue #8): publish a bag's topics on ROS 2 with the recorded timing.

use std::path::PathBuf;

/// Options of `altermoma play`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// rosbag2 directory (or a single .mcap / .db3 file).
    #[arg(long)]
    pub bag: PathBuf,
    /// Speed factor (2 = twice as fast as recorded).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Play again from the start at the end, until Ctrl-C.
    #[arg(long = "loop")]
    pub looped: bool,
    /// Before the first message, wait for a subscriber (in another process) on each
    /// --wait-topics topic (default: every PointCloud2 topic).
    #[arg(long)]
    pub wait_for_subscribers: bool,
    /// Topics (as published) to wait for, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub wait_topics: Vec<String>,
    /// Give up waiting for subscribers after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub wait_timeout: f64,
    /// Only these bag topics, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
    /// Publish a bag topic under another name: --remap /from=/to (repeatable; `=`, not
    /// `:=`, because rcl reads `:=` arguments of the process as its own remapping rules).
    #[arg(long)]
    pub remap: Vec<String>,
    /// Node name.
    #[arg(long, default_value = "altermoma_play")]
    pub node_name: String,
}

#[cfg(not(feature = "ros"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma play` needs the `ros` feature")
}

#[cfg(feature = "ros")]
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(feature = "ros")]
extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(feature = "ros")]
pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::bag::player::{play, PlayOptions};
    use anyhow::Context;
    let remap = args
        .remap
        .iter()
        .map(|r| {
            r.split_once('=')
                .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !a.ends_with(':'))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .with_context(|| format!("--remap {r}: expected /from=/to"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bag = crate::bag::Bag::open(&args.bag)?;
    let opts = PlayOptions {
        rate: args.rate,
        looped: args.looped,
        wait_for_subscribers: args.wait_for_subscribers,
        wait_topics: args.wait_topics.clone(),
        wait_timeout: std::time::Duration::from_secs_f64(args.wait_timeout.max(0.0)),
        topics: args.topics.clone(),
        remap,
        ..Default::default()
    };
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let ctx = r2r::Context::create().context("creating the ROS 2 context")?;
    let mut node = r2r::Node::create(ctx, &args.node_name, "").context("creating the ROS 2 node")?;
    let report = play(&bag, &mut node, &opts, &STOP)?;
    for (topic, why) in &report.skipped {
        println!("skipped {topic}: {why}");
    }
    for i in &report.issues {
        println!("bag damage: {i}");
    }
    for (topic, n) in &report.published {
        println!("published {n:>6} messages on {topic}");
    }
    println!(
        "{} loop(s); send lateness p50 {:.2} ms, max {:.2} ms",
        report.loops, report.lateness_p50_ms, report.lateness_max_ms
    );
    Ok(())
}
