//! `altermoma eval` (issue #5).

/// Options of `altermoma eval`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma eval` is not implemented yet (issue #5)")
}
