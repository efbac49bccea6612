//! `altermoma bench pruning`: the cost of each method's scoring (wall time of the whole
//! weight-granularity pruning step, AlterMOMA relative to SNIP) and the speed-up of
//! structured AlterMOMA (median forward of the dense and the channel-pruned model, timed
//! interleaved in the same run), printed as tables.

use crate::data::Dataset;
use crate::experiment::config::SplitSpec;
use crate::experiment::latency::median_pair;
use crate::experiment::runner::{model_config, CachedDataset};
use crate::model::batch::{Batch, BatchOptions, TargetMode};
use crate::model::load::LoadedModel;
use crate::model::ModalityMask;
use crate::pruning::bevfusion::{frame_batches, save_structured, PrunableBevFusion};
use crate::pruning::model_api::{PrunableModel, Snapshot};
use crate::pruning::{prune, Granularity, Method, PruneConfig};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model config (name under config/model or YAML path); ignored with --checkpoint.
    #[arg(long, default_value = "tiny")]
    pub config: String,
    /// A trained checkpoint to prune (default: a freshly initialised model).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Pruning options (config/pruning/*.yaml); method, sparsity and granularity are set here.
    #[arg(long)]
    pub prune_config: Option<PathBuf>,
    /// Methods to time (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "snip,altermoma,synflow,prospr,imp,random"
    )]
    pub methods: Vec<Method>,
    /// Sparsity of the timed unstructured runs.
    #[arg(long, default_value_t = 0.8)]
    pub sparsity: f64,
    /// Channel sparsities of the structured rows.
    #[arg(long, value_delimiter = ',', default_value = "0.3,0.5")]
    pub channel_sparsities: Vec<f64>,
    /// Synthetic sensor rig of the scoring data.
    #[arg(long, default_value = "tiny")]
    pub rig: String,
    /// Synthetic frames generated for scoring.
    #[arg(long, default_value_t = 8)]
    pub frames: usize,
    /// Samples per scoring batch.
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,
    /// Timed forward passes per model (after warm-up).
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch CPU threads (0: default).
    #[arg(long, default_value_t = 0)]
    pub threads: i32,
    /// Also write the tables as markdown here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let device = crate::device::parse_device(&args.device)?;
    let m = match &args.checkpoint {
        Some(p) => LoadedModel::from_checkpoint(p, device)?,
        None => {
            tch::manual_seed(0);
            LoadedModel::new(&model_config(&args.config)?, device)?
        }
    };
    let base: PruneConfig = match &args.prune_config {
        Some(p) => crate::config::load_yaml(p)?,
        None => PruneConfig::default(),
    };
    let split = SplitSpec {
        seed: 424_242,
        scenes: 1,
        frames_per_scene: args.frames.max(2),
    };
    let data = CachedDataset::synthetic(&args.rig, &split, "bench data")?;
    let cfg = m.cfg.clone();
    let work = tempfile::tempdir()?;
    let mut pm = PrunableBevFusion::new(m, &data, work.path());
    let init = Snapshot::take(pm.var_store());
    let mut md = format!(
        "bench pruning: model `{}`, {}, {} scoring frames, batch {}\n\n",
        cfg.name,
        crate::device::describe(device),
        data.len(),
        args.batch_size
    );

    // Scoring cost.
    let mut rows = Vec::new();
    for &method in &args.methods {
        init.restore(pm.var_store());
        let pc = PruneConfig {
            method,
            sparsity: args.sparsity,
            granularity: Granularity::Weight,
            ..base.clone()
        };
        let mut src = frame_batches(&data, &cfg, args.batch_size, 0, device);
        let t0 = Instant::now();
        let out = prune(&mut pm, &mut src, &pc)
            .with_context(|| format!("pruning with {}", method.label()))?;
        let wall = t0.elapsed().as_secs_f64();
        let opts = match method {
            Method::Altermoma => format!(
                "B = {}, lr {:e}, {} score batch(es)",
                pc.altermoma.reactivation.steps, pc.altermoma.reactivation.lr, pc.score_batches
            ),
            Method::Synflow => format!("{} iterations", pc.synflow.iterations),
            Method::Prospr => format!("M = {}", pc.prospr.inner_steps),
            Method::Imp => format!(
                "{} round(s), {} retrain steps",
                pc.imp.rounds, pc.imp.retrain.steps
            ),
            Method::Snip => format!("{} score batch(es)", pc.score_batches),
            Method::Random => String::new(),
        };
        rows.push((method, wall, out.scoring_seconds, opts));
    }
    init.restore(pm.var_store());
    let snip = rows.iter().find(|r| r.0 == Method::Snip).map(|r| r.1);
    md.push_str(&format!("## Scoring cost (sparsity {:.0}%, weight granularity)\n\n| method | options | seconds | relative to SNIP |\n|---|---|---:|---:|\n", 100.0 * args.sparsity));
    for (m, wall, _, opts) in &rows {
        let rel = snip
            .map(|s| format!("{:.1}x", wall / s))
            .unwrap_or_else(|| "-".into());
        md.push_str(&format!(
            "| {} | {} | {:.2} | {} |\n",
            m.label(),
            opts,
            wall,
            rel
        ));
    }

    // Structured speed-up.
    md.push_str("\n## Structured AlterMOMA speed-up (median forward, batch 1, interleaved)\n\n| channels removed | GFLOPs | params | dense ms | pruned ms | speed-up |\n|---|---:|---:|---:|---:|---:|\n");
    let frame = data.get(0)?;
    let bopts = BatchOptions {
        targets: TargetMode::Never,
        flips: None,
    };
    let dense_gflops = pm.gflops();
    let dense_params: i64 = pm
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    for &sp in &args.channel_sparsities {
        init.restore(pm.var_store());
        let pc = PruneConfig {
            method: Method::Altermoma,
            sparsity: sp,
            granularity: Granularity::Channel,
            ..base.clone()
        };
        let mut src = frame_batches(&data, &cfg, args.batch_size, 0, device);
        let out = prune(&mut pm, &mut src, &pc)?;
        let sel = out.selection.context("selection")?;
        let path = work.path().join(format!("structured_{sp}.safetensors"));
        save_structured(
            &cfg,
            &out.shrunk.context("tensors")?,
            &sel.widths,
            &path,
            &Default::default(),
        )?;
        let small = LoadedModel::from_checkpoint(&path, device)?;
        let bd = Batch::from_frames_with(std::slice::from_ref(&frame), &cfg, device, &bopts)?;
        let bs = Batch::from_frames_with(std::slice::from_ref(&frame), &small.cfg, device, &bopts)?;
        let (ld, ls) = tch::no_grad(|| {
            median_pair(
                args.warmup,
                args.runs,
                || {
                    let _ = pm.m.model.forward(&bd, ModalityMask::FUSION, false);
                },
                || {
                    let _ = small.model.forward(&bs, ModalityMask::FUSION, false);
                },
            )
        });
        let params: i64 = small
            .vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        let g = PrunableBevFusion::new(small, &data, work.path()).gflops();
        md.push_str(&format!(
            "| {:.0}% | {:.3} -> {:.3} ({:+.1}%) | {} -> {} | {:.1} | {:.1} | {:.2}x |\n",
            100.0 * sp,
            dense_gflops,
            g,
            100.0 * (g / dense_gflops - 1.0),
            dense_params,
            params,
            ld,
            ls,
            ld / ls
        ));
    }
    println!("{md}");
    if let Some(p) = &args.out {
        crate::io::atomic_write(p, md.as_bytes())?;
    }
    Ok(())
}
