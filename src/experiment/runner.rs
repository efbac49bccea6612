//! Runs the study cell by cell (see [`super::cells`]): per training seed, camera-only and
//! LiDAR-only pre-training, fusion training from both branches (BEVFusion's recipe), then
//! every method x sparsity (prune the fused model, evaluate, masked fine-tuning, evaluate),
//! then the structured AlterMOMA rows (physically smaller model, fine-tuning, evaluation,
//! latency against the dense model in the same run). The report is rewritten after every
//! finished cell, so an interrupted study still has a partial report; re-running the same
//! command resumes at the first unfinished cell.

use crate::data::world::{SyntheticWorld, WorldConfig};
use crate::data::{CameraCalib, Dataset, Frame};
use crate::model::batch::{Batch, BatchOptions, TargetMode};
use crate::model::config::ModelConfig;
use crate::model::load::{load_groups, LoadedModel};
use crate::model::{Group, ModalityMask};
use crate::pruning::bevfusion::{frame_batches, save_masked, save_structured, PrunableBevFusion};
use crate::pruning::finetune::finetune;
use crate::pruning::report::{ChannelStats, PruneReport};
use crate::pruning::{prune, Granularity, Method, PrunableModel, PruneConfig};
use crate::train::trainer::{train, TrainOptions};
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

use super::cells::{fingerprint, CellStore};
use super::config::{ExperimentConfig, SplitSpec, StageSpec};
use super::latency::median_pair;
use super::results::{Accuracy, DenseResult, PrunedResult, StructuredResult, Study};

/// Frames generated once and kept in memory (training runs and evaluations reuse them).
pub struct CachedDataset {
    frames: Vec<Frame>,
    cameras: Vec<CameraCalib>,
}

impl CachedDataset {
    /// Generate every frame of a synthetic split (in parallel).
    pub fn synthetic(rig: &str, split: &SplitSpec, what: &str) -> Result<Self> {
        let rig = crate::data::rig::Rig::load(rig)?;
        let mut wc = WorldConfig::new(split.seed, split.scenes, rig);
        wc.frames_per_scene = split.frames_per_scene;
        let world = SyntheticWorld::new(wc)?;
        let n = world.len();
        let pb = crate::progress::bar(n as u64, what);
        let frames: Vec<Frame> = (0..n)
            .into_par_iter()
            .map(|i| {
                let f = world.get(i);
                pb.inc(1);
                f
            })
            .collect::<Result<_>>()?;
        pb.finish_and_clear();
        Ok(Self {
            cameras: world.cameras(),
            frames,
        })
    }
}

impl Dataset for CachedDataset {
    fn len(&self) -> usize {
        self.frames.len()
    }
    fn get(&self, index: usize) -> Result<Frame> {
        self.frames.get(index).cloned().with_context(|| {
            format!(
                "frame index {index} out of range ({} frames)",
                self.frames.len()
            )
        })
    }
    fn token(&self, index: usize) -> String {
        self.frames[index].token.clone()
    }
    fn cameras(&self) -> Vec<CameraCalib> {
        self.cameras.clone()
    }
}

/// Resolve a model config name (`tiny`) or path.
pub fn model_config(name: &str) -> Result<ModelConfig> {
    let p = Path::new(name);
    let path = if p.exists() {
        p.to_path_buf()
    } else {
        let local = Path::new("config/model").join(format!("{name}.yaml"));
        if local.exists() {
            local
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/model")
                .join(format!("{name}.yaml"))
        }
    };
    Ok(ModelConfig::load(&path)?)
}

pub use super::evaluate::evaluate;

/// A finished training stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageResult {
    pub checkpoint: PathBuf,
    pub acc: Accuracy,
    pub final_loss: f64,
}

/// The running study.
pub struct Runner {
    pub cfg: ExperimentConfig,
    pub out: PathBuf,
    pub store: CellStore,
    pub device: Device,
    pub model_cfg: ModelConfig,
    pub train: CachedDataset,
    pub test: CachedDataset,
    /// The command line that produced the report.
    pub command: String,
    pub study: Study,
}

impl Runner {
    pub fn new(cfg: ExperimentConfig, out: impl Into<PathBuf>, command: String) -> Result<Self> {
        let out = out.into();
        if cfg.threads > 0 {
            tch::set_num_threads(cfg.threads);
        }
        let device = crate::device::parse_device(&cfg.device)?;
        let model_cfg = model_config(&cfg.model)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        crate::io::atomic_write(
            out.join("experiment.yaml"),
            serde_yaml::to_string(&cfg)?.as_bytes(),
        )?;
        let t0 = Instant::now();
        let train = CachedDataset::synthetic(&cfg.data.rig, &cfg.data.train, "train data")?;
        let test = CachedDataset::synthetic(&cfg.data.rig, &cfg.data.test, "held-out data")?;
        tracing::info!(
            "generated {} training and {} held-out frames in {:.1} s",
            train.len(),
            test.len(),
            t0.elapsed().as_secs_f64()
        );
        let store = CellStore::new(out.join("cells"));
        let study = Study {
            name: cfg.name.clone(),
            ..Default::default()
        };
        Ok(Self {
            cfg,
            out,
            store,
            device,
            model_cfg,
            train,
            test,
            command,
            study,
        })
    }

    fn data_fp(&self) -> serde_json::Value {
        serde_json::json!({ "model": self.model_cfg.to_json(), "data": self.cfg.data })
    }

    /// Copy a finished cell's recorded wall time into the study (for the cost section).
    fn note_seconds(&mut self, key: &str) {
        if let Some(t) = self.store.seconds(key) {
            self.study.cell_seconds.insert(key.to_string(), t);
        }
    }

    fn write_report(&self) -> Result<()> {
        super::report::write(&self.study, &self.out, &self.command)
    }

    fn train_stage(
        &self,
        seed: u64,
        name: &str,
        mask: ModalityMask,
        spec: &StageSpec,
        init: &dyn Fn(&LoadedModel) -> Result<()>,
        fp: &str,
    ) -> Result<StageResult> {
        let dir = self
            .out
            .join("models")
            .join(format!("seed{seed}"))
            .join(format!("{name}-{}", &fp[..8]));
        tch::manual_seed(seed as i64);
        let mut m = LoadedModel::new(&self.model_cfg, self.device)?;
        init(&m)?;
        let mut recipe = self.model_cfg.train.clone();
        recipe.steps = spec.steps;
        recipe.lr = spec.lr;
        if let Some(b) = spec.batch_size {
            recipe.batch_size = b;
        }
        let mut opts = TrainOptions::new(&recipe, mask, &dir);
        opts.seed = seed;
        opts.device = self.device;
        opts.resume = true;
        opts.label = format!("{name} s{seed}");
        let summary = train(&mut m, &self.train, None, &opts, None)?;
        let acc = evaluate(&m, &self.test, mask, self.cfg.eval.batch_size)?;
        tracing::info!(
            "seed {seed} {name}: mAP {:.4} NDS {:.4} mIoU {:.4}",
            acc.map,
            acc.nds,
            acc.miou
        );
        Ok(StageResult {
            checkpoint: summary.model_path,
            acc,
            final_loss: summary.final_loss,
        })
    }

    /// Pre-training and fusion training of one seed.
    fn dense(&mut self, seed: u64) -> Result<(StageResult, DenseResult, String)> {
        let training = self.cfg.training.clone();
        let t = &training;
        let fp_c = fingerprint(&(self.data_fp(), &t.camera, seed, "camera"));
        let fp_l = fingerprint(&(self.data_fp(), &t.lidar, seed, "lidar"));
        let (cam, _) = self.store.run(&format!("seed{seed}/camera"), &fp_c, || {
            self.train_stage(
                seed,
                "camera",
                ModalityMask::CAMERA_ONLY,
                &t.camera,
                &|_| Ok(()),
                &fp_c,
            )
        })?;
        let (lid, _) = self.store.run(&format!("seed{seed}/lidar"), &fp_l, || {
            self.train_stage(
                seed,
                "lidar",
                ModalityMask::LIDAR_ONLY,
                &t.lidar,
                &|_| Ok(()),
                &fp_l,
            )
        })?;
        let fp_f = fingerprint(&(&fp_c, &fp_l, &t.fusion, seed, "fusion"));
        let (cam_ck, lid_ck) = (cam.checkpoint.clone(), lid.checkpoint.clone());
        let (fus, _) = self.store.run(&format!("seed{seed}/fusion"), &fp_f, || {
            // BEVFusion: the camera branch from the camera model, the LiDAR branch and the
            // fuser/decoder/heads from the LiDAR model.
            let init = |m: &LoadedModel| -> Result<()> {
                load_groups(&m.vs, &cam_ck, &[Group::Camera])?;
                load_groups(&m.vs, &lid_ck, &[Group::Lidar, Group::Fusion])?;
                Ok(())
            };
            self.train_stage(
                seed,
                "fusion",
                ModalityMask::FUSION,
                &t.fusion,
                &init,
                &fp_f,
            )
        })?;
        for stage in ["camera", "lidar", "fusion"] {
            self.note_seconds(&format!("seed{seed}/{stage}"));
        }
        // Budget-matched controls: each single-modal model continued for the fusion stage's
        // steps, from its own checkpoint (all of its groups), with the fusion stage's settings.
        let mut controls = [None, None];
        if t.budget_matched_controls {
            for (k, (name, mask, fp_pre, ck)) in [
                ("camera_control", ModalityMask::CAMERA_ONLY, &fp_c, &cam_ck),
                ("lidar_control", ModalityMask::LIDAR_ONLY, &fp_l, &lid_ck),
            ]
            .into_iter()
            .enumerate()
            {
                let fp = fingerprint(&(fp_pre, &t.fusion, seed, name));
                let init = |m: &LoadedModel| -> Result<()> { load_groups(&m.vs, ck, &Group::ALL).map(|_| ()) };
                let (r, _) = self.store.run(&format!("seed{seed}/{name}"), &fp, || {
                    self.train_stage(seed, name, mask, &t.fusion, &init, &fp)
                })?;
                self.note_seconds(&format!("seed{seed}/{name}"));
                controls[k] = Some(r.acc);
            }
        }
        let m = LoadedModel::from_checkpoint(&fus.checkpoint, self.device)?;
        let params =
            m.vs.variables()
                .values()
                .filter(|v| v.requires_grad())
                .map(|v| v.numel() as i64)
                .sum();
        let gflops = PrunableBevFusion::new(m, &self.train, self.out.join("tmp")).gflops();
        let dense = DenseResult {
            seed,
            fusion: fus.acc,
            camera_only: cam.acc,
            lidar_only: lid.acc,
            camera_control: controls[0],
            lidar_control: controls[1],
            params,
            gflops,
        };
        Ok((fus, dense, fp_f))
    }

    fn prune_options(
        &self,
        method: Method,
        sparsity: f64,
        granularity: Granularity,
        seed: u64,
    ) -> PruneConfig {
        let mut c = self.cfg.prune.options.clone();
        c.method = method;
        c.sparsity = sparsity;
        c.granularity = granularity;
        c.seed = seed;
        c
    }

    /// One unstructured cell.
    fn pruned_cell(
        &self,
        seed: u64,
        fused: &Path,
        method: Method,
        sparsity: f64,
        dir: &Path,
    ) -> Result<PrunedResult> {
        let m = LoadedModel::from_checkpoint(fused, self.device)?;
        let mut pm = PrunableBevFusion::new(m, &self.train, dir.join("work"));
        let pc = self.prune_options(method, sparsity, Granularity::Weight, seed);
        // The same scoring batches for every method of a seed.
        let mut src = frame_batches(
            &self.train,
            &self.model_cfg,
            self.cfg.prune.batch_size,
            seed,
            self.device,
        );
        let out = prune(&mut pm, &mut src, &pc)?;
        let masks = out.masks.context("weight granularity gives masks")?;
        let acc_pruned = if self.cfg.eval.before_finetune {
            evaluate(
                &pm.m,
                &self.test,
                ModalityMask::FUSION,
                self.cfg.eval.batch_size,
            )?
        } else {
            Accuracy {
                map: f64::NAN,
                nds: f64::NAN,
                miou: f64::NAN,
            }
        };
        let mut ft = self.cfg.finetune.clone();
        ft.seed = seed;
        let t0 = Instant::now();
        finetune(&mut pm, &ft, &masks)?;
        let finetune_seconds = t0.elapsed().as_secs_f64();
        let acc = evaluate(
            &pm.m,
            &self.test,
            ModalityMask::FUSION,
            self.cfg.eval.batch_size,
        )?;
        let report = PruneReport::from_masks(
            method,
            sparsity,
            &masks,
            pm.var_store(),
            pm.gflops(),
            out.scoring_seconds,
            out.details.clone(),
        );
        report.write(dir)?;
        save_masked(
            &pm.m,
            &masks,
            &dir.join("pruned_finetuned.safetensors"),
            &Default::default(),
        )?;
        let _ = std::fs::remove_dir_all(dir.join("work"));
        Ok(PrunedResult {
            method,
            sparsity,
            seed,
            acc,
            acc_pruned,
            achieved: report.sparsity,
            groups: report
                .groups
                .iter()
                .map(|(g, c)| (*g, c.sparsity()))
                .collect(),
            scoring_seconds: out.scoring_seconds,
            finetune_seconds,
            mask_violations: masks.violations(pm.var_store()),
        })
    }

    /// One structured AlterMOMA row.
    fn structured_cell(
        &self,
        seed: u64,
        fused: &Path,
        sparsity: f64,
        dir: &Path,
    ) -> Result<StructuredResult> {
        let st = self
            .cfg
            .structured
            .as_ref()
            .context("no structured section")?;
        let dense = LoadedModel::from_checkpoint(fused, self.device)?;
        let mut pm = PrunableBevFusion::new(dense, &self.train, dir.join("work"));
        let gflops_dense = pm.gflops();
        let params_dense: i64 = pm
            .var_store()
            .variables()
            .values()
            .filter(|v| v.requires_grad())
            .map(|v| v.numel() as i64)
            .sum();
        let widths_before = pm.m.cfg.width_slots();
        let pc = self.prune_options(Method::Altermoma, sparsity, Granularity::Channel, seed);
        let mut src = frame_batches(
            &self.train,
            &self.model_cfg,
            self.cfg.prune.batch_size,
            seed,
            self.device,
        );
        let out = prune(&mut pm, &mut src, &pc)?;
        let sel = out
            .selection
            .context("channel granularity gives a selection")?;
        let shrunk = out.shrunk.context("channel granularity gives tensors")?;
        let path = dir.join("structured.safetensors");
        save_structured(&pm.m.cfg, &shrunk, &sel.widths, &path, &Default::default())?;
        let small = LoadedModel::from_checkpoint(&path, self.device)?;
        let mut ps = PrunableBevFusion::new(small, &self.train, dir.join("work_small"));
        let mut ft = st.finetune.clone();
        ft.seed = seed;
        ps.fit(&ft, None)?;
        let acc = evaluate(
            &ps.m,
            &self.test,
            ModalityMask::FUSION,
            self.cfg.eval.batch_size,
        )?;
        let gflops = ps.gflops();
        let params = ps
            .var_store()
            .variables()
            .values()
            .filter(|v| v.requires_grad())
            .map(|v| v.numel() as i64)
            .sum();
        ps.m.save(
            dir.join("structured_finetuned.safetensors"),
            &Default::default(),
        )?;
        // Latency: forward of one held-out frame, dense vs pruned interleaved in this process.
        let frame = self.test.get(0)?;
        let opts = BatchOptions {
            targets: TargetMode::Never,
            flips: None,
        };
        let b_dense =
            Batch::from_frames_with(std::slice::from_ref(&frame), &pm.m.cfg, self.device, &opts)?;
        let b_small =
            Batch::from_frames_with(std::slice::from_ref(&frame), &ps.m.cfg, self.device, &opts)?;
        let (ld, ls) = tch::no_grad(|| {
            median_pair(
                st.latency_warmup,
                st.latency_runs,
                || {
                    let _ = pm.m.model.forward(&b_dense, ModalityMask::FUSION, false);
                },
                || {
                    let _ = ps.m.model.forward(&b_small, ModalityMask::FUSION, false);
                },
            )
        });
        let report = PruneReport::from_structured(
            Method::Altermoma,
            sparsity,
            &pm.prunable_params(pc.scope),
            pm.var_store(),
            &shrunk,
            ChannelStats {
                channels_before: sel.channels_before,
                channels_after: sel.channels_after,
                widths_before,
                widths_after: sel.widths.clone(),
            },
            gflops_dense,
            gflops,
            out.scoring_seconds,
            out.details,
        );
        report.write(dir)?;
        let _ = std::fs::remove_dir_all(dir.join("work"));
        let _ = std::fs::remove_dir_all(dir.join("work_small"));
        Ok(StructuredResult {
            seed,
            sparsity,
            acc,
            params,
            params_dense,
            gflops,
            gflops_dense,
            latency_ms: ls,
            latency_dense_ms: ld,
            widths: sel.widths,
        })
    }

    /// Run (or resume) the whole study; writes `report.md` and returns the results.
    pub fn run(&mut self) -> Result<Study> {
        let seeds = self.cfg.seeds.clone();
        for &seed in &seeds {
            let (fused, dense, fp_dense) = self.dense(seed)?;
            self.study.dense.push(dense);
            self.write_report()?;
            let grid = self.cfg.prune.clone();
            for &method in &grid.methods {
                for &sp in &grid.sparsities {
                    let key = format!(
                        "seed{seed}/{}_{:03}",
                        method.name(),
                        (sp * 100.0).round() as i64
                    );
                    let pc = self.prune_options(method, sp, Granularity::Weight, seed);
                    let fp = fingerprint(&(
                        &fp_dense,
                        &pc,
                        &self.cfg.finetune,
                        &self.cfg.eval,
                        grid.batch_size,
                    ));
                    let dir = self.out.join("runs").join(&key);
                    match self.store.run(&key, &fp, || {
                        self.pruned_cell(seed, &fused.checkpoint, method, sp, &dir)
                    }) {
                        Ok((r, _)) => {
                            self.study.pruned.push(r);
                            self.note_seconds(&key);
                        }
                        Err(e) => {
                            tracing::error!("{e:#}");
                            self.study.failures.push((key.clone(), format!("{e:#}")));
                        }
                    }
                    self.write_report()?;
                }
            }
            if let Some(st) = self.cfg.structured.clone() {
                for &sp in &st.sparsities {
                    let key = format!("seed{seed}/structured_{:03}", (sp * 100.0).round() as i64);
                    let pc = self.prune_options(Method::Altermoma, sp, Granularity::Channel, seed);
                    let fp = fingerprint(&(&fp_dense, &pc, &st, &self.cfg.eval, grid.batch_size));
                    let dir = self.out.join("runs").join(&key);
                    match self.store.run(&key, &fp, || {
                        self.structured_cell(seed, &fused.checkpoint, sp, &dir)
                    }) {
                        Ok((r, _)) => {
                            self.study.structured.push(r);
                            self.note_seconds(&key);
                        }
                        Err(e) => {
                            tracing::error!("{e:#}");
                            self.study.failures.push((key.clone(), format!("{e:#}")));
                        }
                    }
                    self.write_report()?;
                }
            }
        }
        self.write_report()?;
        Ok(self.study.clone())
    }
}
