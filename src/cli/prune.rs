//! `altermoma prune` (issue #6).

/// Options of `altermoma prune`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma prune` is not implemented yet (issue #6)")
}
