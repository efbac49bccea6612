//! `altermoma bench bag` (issue #8).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma bench bag` is not implemented yet (issue #8)")
}
