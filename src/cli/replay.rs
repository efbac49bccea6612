//! `altermoma replay` (issue #8).

/// Options of `altermoma replay`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma replay` is not implemented yet (issue #8)")
}
