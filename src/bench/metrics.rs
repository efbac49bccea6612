//! `altermoma bench metrics` (issue #5).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma bench metrics` is not implemented yet (issue #5)")
}
