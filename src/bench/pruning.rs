//! `altermoma bench pruning` (issue #6).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma bench pruning` is not implemented yet (issue #6)")
}
