//! `altermoma render` (issue #3).

/// Options of `altermoma render`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma render` is not implemented yet (issue #3)")
}
