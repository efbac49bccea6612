//! `altermoma finetune`: train a pruned checkpoint with the task loss. A masked checkpoint's
//! pruned weights stay exactly zero through every optimiser step (checked at the end); a
//! structured checkpoint is simply a smaller model and needs no mask.

use crate::pruning::FitConfig;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Options of `altermoma finetune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pruned checkpoint (masked or structured; a dense one is fine-tuned as is).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Training data (nuScenes-layout dataroot or KITTI folder).
    #[arg(long)]
    pub data: PathBuf,
    /// Output checkpoint.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = FitConfig::default().steps)]
    pub steps: usize,
    #[arg(long, default_value_t = FitConfig::default().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = FitConfig::default().weight_decay)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = FitConfig::default().warmup_steps)]
    pub warmup_steps: usize,
    /// Gradient clipping by global norm (0 = off).
    #[arg(long, default_value_t = FitConfig::default().clip_grad_norm)]
    pub clip_grad_norm: f64,
    /// Samples per batch (default: the model config's recipe).
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn run(args: Args) -> Result<()> {
    use crate::model::load::LoadedModel;
    use crate::pruning::bevfusion::{save_masked, PrunableBevFusion};
    use crate::pruning::finetune::finetune;
    use crate::pruning::model_api::PrunableModel;
    use crate::pruning::MaskSet;

    let device = crate::device::parse_device(&args.device)?;
    let m = LoadedModel::from_checkpoint(&args.checkpoint, device)?;
    let kind = m
        .metadata
        .get("kind")
        .cloned()
        .unwrap_or_else(|| "dense".into());
    let data = crate::data::open_dataset(&args.data, None)?;
    if data.is_empty() {
        bail!("{}: the dataset has no frames", args.data.display());
    }
    let fit = FitConfig {
        steps: args.steps,
        lr: args.lr,
        weight_decay: args.weight_decay,
        warmup_steps: args.warmup_steps,
        clip_grad_norm: args.clip_grad_norm,
        seed: args.seed,
    };
    let masks = MaskSet::from_map(&m.masks);
    let work = tempfile::tempdir()?;
    let mut pm = PrunableBevFusion::new(m, data.as_ref(), work.path());
    if let Some(b) = args.batch_size {
        pm.recipe.batch_size = b;
    }
    let mut meta = pm.m.metadata.clone();
    meta.remove("model_config");
    meta.insert("finetune".into(), serde_json::to_string(&fit)?);
    if masks.is_empty() {
        pm.fit(&fit, None)?;
        pm.m.save(&args.out, &meta)?;
    } else {
        finetune(&mut pm, &fit, &masks)?;
        save_masked(&pm.m, &masks, &args.out, &meta)?;
    }
    let c = masks.overall();
    println!(
        "{}: fine-tuned {} checkpoint for {} steps; {} of {} masked weights pruned, all exactly zero",
        args.out.display(),
        kind,
        fit.steps,
        c.pruned,
        c.numel
    );
    Ok(())
}
