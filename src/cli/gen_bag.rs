//! `altermoma gen-bag` (issue #8).

/// Options of `altermoma gen-bag`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma gen-bag` is not implemented yet (issue #8)")
}
