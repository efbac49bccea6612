//! `altermoma gen-data` (issue #3).

/// Options of `altermoma gen-data`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma gen-data` is not implemented yet (issue #3)")
}
