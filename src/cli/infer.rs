//! `altermoma infer` (issue #4).

/// Options of `altermoma infer`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma infer` is not implemented yet (issue #4)")
}
