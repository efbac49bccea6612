//! `altermoma bench model` (issue #4).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma bench model` is not implemented yet (issue #4)")
}
