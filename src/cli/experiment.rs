//! `altermoma experiment` (issue #6).

/// Options of `altermoma experiment`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma experiment` is not implemented yet (issue #6)")
}
