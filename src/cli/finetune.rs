//! `altermoma finetune` (issue #6).

/// Options of `altermoma finetune`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma finetune` is not implemented yet (issue #6)")
}
