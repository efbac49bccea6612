//! `altermoma play` (issue #8).

/// Options of `altermoma play`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma play` is not implemented yet (issue #8)")
}
