//! `altermoma bench data` (issue #3).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma bench data` is not implemented yet (issue #3)")
}
