//! `altermoma latency` (issue #8).

/// Options of `altermoma latency`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma latency` is not implemented yet (issue #8)")
}
