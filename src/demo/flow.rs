//! The demo's chain of steps, end to end on library code:
//!
//! `gen-data` (training and held-out splits, nuScenes layout) -> `pretrain-camera`,
//! `pretrain-lidar` (single-modal pre-training) -> `train-fusion` (camera branch from the
//! camera model, the rest from the LiDAR model: BEVFusion's recipe) -> `prune-altermoma`,
//! `prune-<baseline>` (same sparsity, same scoring batches) -> `finetune-altermoma`,
//! `finetune-<baseline>` (masked) -> `evaluate` (held-out mAP, NDS, mIoU, parameters,
//! GFLOPs) -> `gen-bag` (held-out scenes as a rosbag2 bag) -> `replay` (the node's pipeline
//! over the bag, dense and pruned side by side: latency) -> `report.md` and plots.
//!
//! Each step is resumable ([`super::steps`]); re-running reuses every finished step.

use crate::data::Dataset;
use crate::experiment::config::StageSpec;
use crate::experiment::evaluate::evaluate;
use crate::experiment::runner::model_config;
use crate::model::config::ModelConfig;
use crate::model::load::{load_groups, LoadedModel};
use crate::model::{Group, ModalityMask};
use crate::pruning::bevfusion::{frame_batches, save_masked, PrunableBevFusion};
use crate::pruning::finetune::finetune;
use crate::pruning::{prune, MaskSet, Method, PrunableModel};
use crate::train::trainer::{train, TrainOptions, MODEL_FILE};
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;
use tch::Device;

use super::config::DemoConfig;
use super::results::*;
use super::steps::{StepDir, Steps};

/// Step names, in order (`baseline` stands for the baseline method's name, e.g. `snip`).
pub const STEP_NAMES: [&str; 11] = [
    "gen-data",
    "pretrain-camera",
    "pretrain-lidar",
    "train-fusion",
    "prune-altermoma",
    "prune-<baseline>",
    "finetune-altermoma",
    "finetune-<baseline>",
    "evaluate",
    "gen-bag",
    "replay",
];

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub out: PathBuf,
    pub config: DemoConfig,
    /// Where the config came from (a path, or `embedded tiny`).
    pub config_source: String,
    /// The command line, for the report.
    pub command: String,
}

/// The splits, read from the `gen-data` folder on first use.
struct Splits {
    dir: PathBuf,
    train: RefCell<Option<Rc<super::MemoryDataset>>>,
    test: RefCell<Option<Rc<super::MemoryDataset>>>,
}

impl Splits {
    fn get(
        &self,
        cell: &RefCell<Option<Rc<super::MemoryDataset>>>,
        split: &str,
    ) -> Result<Rc<super::MemoryDataset>> {
        if let Some(d) = cell.borrow().as_ref() {
            return Ok(d.clone());
        }
        let d = Rc::new(super::MemoryDataset::open(
            &self.dir.join(split),
            &format!("{split} data"),
        )?);
        *cell.borrow_mut() = Some(d.clone());
        Ok(d)
    }
    fn train(&self) -> Result<Rc<super::MemoryDataset>> {
        self.get(&self.train, "train")
    }
    fn test(&self) -> Result<Rc<super::MemoryDataset>> {
        self.get(&self.test, "test")
    }
}

/// Nonzero parameters, dense and nonzero-weight GFLOPs, sparsity of a (masked) model.
pub fn model_row(
    name: &str,
    m: &LoadedModel,
    acc: crate::experiment::results::Accuracy,
) -> Result<ModelRow> {
    let total: i64 =
        m.vs.variables()
            .values()
            .filter(|v| v.requires_grad())
            .map(|v| v.numel() as i64)
            .sum();
    let masks = MaskSet::from_map(&m.masks);
    let overall = masks.overall();
    let batch = crate::model::batch::Batch::ones(&m.cfg, 1, m.vs.device())?;
    let flops = crate::model::flops::count_model(&m.model, &batch, ModalityMask::FUSION);
    // Share of weights kept per model part: the multiply-accumulates of a part scale with it.
    let mut per_part: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (layer, c) in masks.per_layer() {
        let e = per_part
            .entry(crate::model::flops::part_of(&layer))
            .or_default();
        e.0 += c.numel;
        e.1 += c.pruned;
    }
    let gflops = flops
        .parts
        .iter()
        .map(|(part, g)| match per_part.get(part) {
            Some(&(n, p)) if n > 0 => g * (1.0 - p as f64 / n as f64),
            _ => *g,
        })
        .sum();
    Ok(ModelRow {
        name: name.into(),
        acc,
        params: total - overall.pruned,
        gflops_dense: flops.total(),
        gflops,
        sparsity: overall.sparsity(),
    })
}

/// One training stage into the step folder (resuming the trainer's own state when the step
/// was interrupted), then its held-out accuracy under its modality.
#[allow(clippy::too_many_arguments)]
fn train_stage(
    mc: &ModelConfig,
    device: Device,
    data: &dyn Dataset,
    test: &dyn Dataset,
    mask: ModalityMask,
    spec: &StageSpec,
    seed: u64,
    dir: &StepDir,
    init: &dyn Fn(&LoadedModel) -> Result<()>,
    label: &str,
    eval_batch: usize,
) -> Result<TrainOut> {
    tch::manual_seed(seed as i64);
    let mut m = LoadedModel::new(mc, device)?;
    init(&m)?;
    let mut recipe = mc.train.clone();
    recipe.steps = spec.steps;
    recipe.lr = spec.lr;
    recipe.warmup_steps = recipe.warmup_steps.min(spec.steps / 4);
    recipe.checkpoint_every = recipe.checkpoint_every.clamp(1, spec.steps.max(1));
    if let Some(b) = spec.batch_size {
        recipe.batch_size = b;
    }
    let mut o = TrainOptions::new(&recipe, mask, &dir.path);
    o.seed = seed;
    o.device = device;
    o.resume = true;
    o.label = label.into();
    let s = train(&mut m, data, None, &o, None)?;
    let acc = evaluate(&m, test, mask, eval_batch)?;
    eprintln!(
        "    {label}: loss {:.3}, held-out mAP {:.3} NDS {:.3} mIoU {:.3}",
        s.final_loss, acc.map, acc.nds, acc.miou
    );
    Ok(TrainOut {
        steps: s.steps_done,
        final_loss: s.final_loss,
        acc,
    })
}

/// Run (or resume) the whole demo; writes `report.md`, `results.json` and the plots.
pub fn run(opts: &DemoOptions) -> Result<DemoResults> {
    let t_run = Instant::now();
    let cfg = &opts.config;
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads);
    }
    let device = crate::device::parse_device(&cfg.device)?;
    let mc = model_config(&cfg.model)?;
    let out = &opts.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::io::atomic_write(
        out.join("demo.yaml"),
        serde_yaml::to_string(cfg)?.as_bytes(),
    )?;
    let mut steps = Steps::new(out, STEP_NAMES.len(), "altermoma demo v1")?;
    let splits = Splits {
        dir: steps.dir("gen-data"),
        train: RefCell::new(None),
        test: RefCell::new(None),
    };
    let seed = cfg.seed;
    let eval_bs = cfg.eval.batch_size;

    // 1. Data.
    let data = steps.run("gen-data", &cfg.data, |d| gen_data(cfg, d))?;

    // 2-4. Pre-training and fusion training.
    let model_json = mc.to_json();
    let camera = steps.run(
        "pretrain-camera",
        &(&model_json, &cfg.training.camera, seed),
        |d| {
            let (tr, te) = (splits.train()?, splits.test()?);
            train_stage(
                &mc,
                device,
                tr.as_ref(),
                te.as_ref(),
                ModalityMask::CAMERA_ONLY,
                &cfg.training.camera,
                seed,
                d,
                &|_| Ok(()),
                "camera-only",
                eval_bs,
            )
        },
    )?;
    let lidar = steps.run(
        "pretrain-lidar",
        &(&model_json, &cfg.training.lidar, seed),
        |d| {
            let (tr, te) = (splits.train()?, splits.test()?);
            train_stage(
                &mc,
                device,
                tr.as_ref(),
                te.as_ref(),
                ModalityMask::LIDAR_ONLY,
                &cfg.training.lidar,
                seed,
                d,
                &|_| Ok(()),
                "LiDAR-only",
                eval_bs,
            )
        },
    )?;
    let cam_ck = steps.dir("pretrain-camera").join(MODEL_FILE);
    let lid_ck = steps.dir("pretrain-lidar").join(MODEL_FILE);
    let fusion = steps.run(
        "train-fusion",
        &(&model_json, &cfg.training.fusion, seed),
        |d| {
            let (tr, te) = (splits.train()?, splits.test()?);
            let init = |m: &LoadedModel| -> Result<()> {
                load_groups(&m.vs, &cam_ck, &[Group::Camera])?;
                load_groups(&m.vs, &lid_ck, &[Group::Lidar, Group::Fusion])?;
                Ok(())
            };
            train_stage(
                &mc,
                device,
                tr.as_ref(),
                te.as_ref(),
                ModalityMask::FUSION,
                &cfg.training.fusion,
                seed,
                d,
                &init,
                "fused",
                eval_bs,
            )
        },
    )?;
    let fused_ck = steps.dir("train-fusion").join(MODEL_FILE);

    // 5-6. Pruning: AlterMOMA and the baseline, from the same fused model.
    let baseline = cfg.prune.baseline;
    let mut pruned = Vec::new();
    for method in [Method::Altermoma, baseline] {
        let pc = cfg.prune_options(method);
        let name = format!("prune-{}", method.name());
        let r = steps.run(&name, &(&pc, cfg.prune.batch_size), |d| {
            let (tr, te) = (splits.train()?, splits.test()?);
            prune_step(&fused_ck, device, tr.as_ref(), te.as_ref(), cfg, method, d)
        })?;
        pruned.push(r);
    }

    // 7-8. Masked fine-tuning of both.
    for method in [Method::Altermoma, baseline] {
        let key = method.name();
        let src = steps.dir(&format!("prune-{key}")).join(MODEL_FILE);
        steps.run(&format!("finetune-{key}"), &(&cfg.finetune, method), |d| {
            let tr = splits.train()?;
            finetune_step(&src, device, tr.as_ref(), cfg, d)
        })?;
    }

    // 9. Evaluation of the three models on the held-out scenes.
    let models: Vec<(String, PathBuf)> = vec![
        ("dense".into(), fused_ck.clone()),
        (
            Method::Altermoma.name().into(),
            steps.dir("finetune-altermoma").join(MODEL_FILE),
        ),
        (
            baseline.name().into(),
            steps
                .dir(&format!("finetune-{}", baseline.name()))
                .join(MODEL_FILE),
        ),
    ];
    let eval = steps.run("evaluate", &(eval_bs, "fusion"), |_| {
        let te = splits.test()?;
        let mut rows = Vec::new();
        let pb = crate::progress::bar(models.len() as u64, "evaluate");
        for (name, path) in &models {
            let m = LoadedModel::from_checkpoint(path, device)?;
            let acc = evaluate(&m, te.as_ref(), ModalityMask::FUSION, eval_bs)?;
            rows.push(model_row(name, &m, acc)?);
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(EvalOut { rows })
    })?;

    // 10. The held-out scenes as a rosbag2 bag.
    let bag = steps.run("gen-bag", &cfg.bag, |d| {
        let te = splits.test()?;
        super::latency::write_bag(te.as_ref(), &cfg.bag, &d.path.join("bag"))
    })?;

    // 11. Replay through the node's pipeline: dense and pruned side by side.
    let mut replay_models = vec![models[0].clone(), models[1].clone()];
    if cfg.replay.baseline {
        replay_models.push(models[2].clone());
    }
    let bag_dir = steps.dir("gen-bag").join("bag");
    let replay = steps.run("replay", &(&cfg.replay, &cfg.device, cfg.threads), |_| {
        let te = splits.test()?;
        super::latency::replay_models(
            &bag_dir,
            &replay_models,
            &te.cameras(),
            &cfg.device,
            &cfg.replay,
        )
    })?;

    let results = DemoResults {
        name: cfg.name.clone(),
        command: opts.command.clone(),
        config_source: opts.config_source.clone(),
        sparsity: cfg.prune.sparsity,
        baseline,
        data,
        camera,
        lidar,
        fusion,
        pruned,
        eval,
        bag,
        replay,
        steps: steps.records.clone(),
        wall_s: t_run.elapsed().as_secs_f64(),
    };
    super::report::write(&results, out)?;
    Ok(results)
}

fn gen_data(cfg: &DemoConfig, d: &StepDir) -> Result<DataOut> {
    use crate::data::nuscenes_writer::{write_nuscenes, WriteOptions};
    use crate::data::world::{SyntheticWorld, WorldConfig};
    let rig = crate::data::rig::Rig::load(&cfg.data.rig)?;
    let mut frames = [0usize; 2];
    let mut anns = [0usize; 2];
    let mut bytes = 0u64;
    for (k, (split, spec)) in [("train", &cfg.data.train), ("test", &cfg.data.test)]
        .into_iter()
        .enumerate()
    {
        let mut wc = WorldConfig::new(spec.seed, spec.scenes, rig.clone());
        wc.frames_per_scene = spec.frames_per_scene;
        let world = SyntheticWorld::new(wc)?;
        let pb = crate::progress::bar(world.len() as u64, &format!("gen-data {split}"));
        let s = write_nuscenes(
            &world,
            &d.path.join(split),
            &WriteOptions {
                version: "v1.0-synthetic".into(),
                force: true,
            },
            Some(&pb),
        )?;
        pb.finish_and_clear();
        frames[k] = s.samples;
        anns[k] = s.annotations;
        bytes += s.bytes;
    }
    eprintln!(
        "    {} training and {} held-out frames (seeds {} and {}), {:.1} MB",
        frames[0],
        frames[1],
        cfg.data.train.seed,
        cfg.data.test.seed,
        bytes as f64 / 1e6
    );
    Ok(DataOut {
        train_frames: frames[0],
        test_frames: frames[1],
        train_annotations: anns[0],
        test_annotations: anns[1],
        megabytes: bytes as f64 / 1e6,
    })
}

fn prune_step(
    fused: &Path,
    device: Device,
    train: &dyn Dataset,
    test: &dyn Dataset,
    cfg: &DemoConfig,
    method: Method,
    d: &StepDir,
) -> Result<PruneOut> {
    let m = LoadedModel::from_checkpoint(fused, device)?;
    let mc = m.cfg.clone();
    let work = d.path.join("work");
    let mut pm = PrunableBevFusion::new(m, train, &work);
    let pc = cfg.prune_options(method);
    // The same scoring batches for every method.
    let mut src = frame_batches(train, &mc, cfg.prune.batch_size, cfg.seed, device);
    let out = prune(&mut pm, &mut src, &pc)?;
    let masks = out.masks.context("weight granularity gives masks")?;
    let acc_pruned = evaluate(&pm.m, test, ModalityMask::FUSION, cfg.eval.batch_size)?;
    let mut meta = BTreeMap::new();
    meta.insert("pruning".to_string(), serde_json::to_string(&pc)?);
    save_masked(&pm.m, &masks, &d.path.join(MODEL_FILE), &meta)?;
    let _ = std::fs::remove_dir_all(&work);
    let overall = masks.overall();
    eprintln!(
        "    {}: {:.1} % of the weights pruned in {:.1} s; before fine-tuning mAP {:.3} NDS {:.3} mIoU {:.3}",
        method.name(),
        100.0 * overall.sparsity(),
        out.scoring_seconds,
        acc_pruned.map,
        acc_pruned.nds,
        acc_pruned.miou
    );
    Ok(PruneOut {
        method,
        achieved: overall.sparsity(),
        groups: masks
            .per_group()
            .into_iter()
            .map(|(g, c)| (g, c.sparsity()))
            .collect(),
        scoring_seconds: out.scoring_seconds,
        acc_pruned,
    })
}

fn finetune_step(
    pruned: &Path,
    device: Device,
    train: &dyn Dataset,
    cfg: &DemoConfig,
    d: &StepDir,
) -> Result<FinetuneOut> {
    let m = LoadedModel::from_checkpoint(pruned, device)?;
    let masks = MaskSet::from_map(&m.masks);
    anyhow::ensure!(
        !masks.is_empty(),
        "{} holds no pruning masks",
        pruned.display()
    );
    let work = d.path.join("work");
    let _ = std::fs::remove_dir_all(&work);
    let mut pm = PrunableBevFusion::new(m, train, &work);
    let mut ft = cfg.finetune.clone();
    ft.seed = cfg.seed;
    finetune(&mut pm, &ft, &masks)?;
    let violations = masks.violations(pm.var_store());
    let mut meta = pm.m.metadata.clone();
    meta.remove("model_config");
    meta.insert("finetune".into(), serde_json::to_string(&ft)?);
    save_masked(&pm.m, &masks, &d.path.join(MODEL_FILE), &meta)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(FinetuneOut {
        steps: ft.steps,
        mask_violations: violations,
    })
}
