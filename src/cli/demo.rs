//! `altermoma demo` (issue #9).

/// Options of `altermoma demo`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma demo` is not implemented yet (issue #9)")
}
