//! `altermoma train` (issue #4).

/// Options of `altermoma train`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma train` is not implemented yet (issue #4)")
}
