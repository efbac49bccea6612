//! `altermoma bench node` (issue #7).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma bench node` is not implemented yet (issue #7)")
}
