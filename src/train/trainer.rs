//! The training loop.
//!
//! Determinism and resume: everything random is derived from `(seed, step)`: the frame order
//! of each epoch is a seeded shuffle, the BEV flips of a step come from a seeded generator,
//! torch is re-seeded before every step. The resumable state (`train_state.safetensors` in the
//! output folder: variables incl. BatchNorm statistics, optimiser moments and step counts, the
//! log history, the loss scaler) is written atomically every `checkpoint_every` steps, so a
//! run killed at any point and restarted with `resume` continues from its last state and ends
//! with the same weights as an uninterrupted run.
//!
//! Masks (pruning): gradients and weights of masked entries are zeroed around every
//! optimiser step, so pruned weights stay exactly zero.

use crate::data::{Dataset, Frame};
use crate::model::batch::{Batch, BatchOptions, TargetMode};
use crate::model::bevfusion::trainable_parameters;
use crate::model::config::TrainConfig;
use crate::model::load::{checkpoint_of, LoadedModel, OPTIM_PREFIX};
use crate::model::{Group, LossBreakdown, ModalityMask};
use crate::train::log::{plot_loss, write_csv, LogRow};
use crate::train::optimizer::{Adam, LossScaler};
use crate::train::schedule::cosine_with_warmup;
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

/// File names inside the output folder.
pub const STATE_FILE: &str = "train_state.safetensors";
pub const MODEL_FILE: &str = "model.safetensors";
pub const CSV_FILE: &str = "metrics.csv";
pub const PLOT_FILE: &str = "loss.png";

/// Options of one training run.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Which branches run (`CAMERA_ONLY`, `LIDAR_ONLY` pre-training; `FUSION`).
    pub modality: ModalityMask,
    pub recipe: TrainConfig,
    pub seed: u64,
    pub device: Device,
    /// fp16 autocast with dynamic loss scaling (CUDA only; ignored on the CPU).
    pub amp: bool,
    pub out_dir: PathBuf,
    /// Groups whose parameters are updated (others stay frozen).
    pub trainable: Vec<Group>,
    /// Continue from `out_dir/train_state.safetensors` when it exists.
    pub resume: bool,
    /// Validation loss every this many steps (0 = only at the end, when validation data is given).
    pub val_every: usize,
    /// At most this many validation frames.
    pub val_frames: usize,
    /// Stop (after saving the state) once this many steps are done: simulates a kill.
    pub stop_after: Option<usize>,
    /// Keep decoded frames in memory (small datasets, many epochs).
    pub cache_frames: bool,
    /// Progress-bar label.
    pub label: String,
    /// Extra metadata for the final checkpoint.
    pub extra_meta: BTreeMap<String, String>,
}

impl TrainOptions {
    pub fn new(recipe: &TrainConfig, modality: ModalityMask, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            modality,
            recipe: recipe.clone(),
            seed: 0,
            device: Device::Cpu,
            amp: false,
            out_dir: out_dir.into(),
            trainable: Group::ALL.to_vec(),
            resume: false,
            val_every: 0,
            val_frames: 64,
            stop_after: None,
            cache_frames: true,
            label: modality.name().to_string(),
            extra_meta: BTreeMap::new(),
        }
    }

    /// What must match for a resume to be the same run.
    fn fingerprint(&self, cfg_json: &str, data_len: usize) -> String {
        let r = &self.recipe;
        serde_json::json!({
            "modality": self.modality.name(),
            "seed": self.seed,
            "steps": r.steps,
            "batch_size": r.batch_size,
            "lr": r.lr,
            "weight_decay": r.weight_decay,
            "optimizer": r.optimizer,
            "warmup_steps": r.warmup_steps,
            "flip": r.flip,
            "trainable": self.trainable,
            "frames": data_len,
            "model_config": cfg_json,
        })
        .to_string()
    }
}

/// Outcome of [`train`].
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Steps done in total (including those before a resume).
    pub steps_done: usize,
    /// Training loss of the last logged window.
    pub final_loss: f64,
    /// Final validation loss, when validation data was given.
    pub final_val: Option<LossBreakdown>,
    pub history: Vec<LogRow>,
    /// The final model (written only when all steps are done).
    pub model_path: PathBuf,
    pub state_path: PathBuf,
    /// True when `stop_after` ended the run early.
    pub stopped_early: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateMeta {
    step: usize,
    optimizer_steps: Vec<i64>,
    history: Vec<LogRow>,
    scaler: LossScaler,
    elapsed_s: f64,
    fingerprint: String,
}

fn steps_per_epoch(n: usize, b: usize) -> usize {
    (n / b.max(1)).max(1)
}

/// Dataset indices of the frames of `step`.
pub fn batch_indices(seed: u64, step: usize, n: usize, batch: usize) -> Vec<usize> {
    let spe = steps_per_epoch(n, batch);
    let (epoch, pos) = (step / spe, step % spe);
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64);
    perm.shuffle(&mut rng);
    let b = batch.min(n);
    perm[pos * b..(pos + 1) * b].to_vec()
}

/// BEV flips of the frames of `step`.
pub fn batch_flips(seed: u64, step: usize, frames: usize, enabled: bool) -> Vec<(bool, bool)> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ 0xF11B_0000_0000_0000 ^ (step as u64).wrapping_mul(0x2545_F491),
    );
    (0..frames)
        .map(|_| {
            if enabled {
                (rng.random_bool(0.5), rng.random_bool(0.5))
            } else {
                (false, false)
            }
        })
        .collect()
}

fn save_state(
    path: &Path,
    m: &LoadedModel,
    opt: &Adam,
    meta: &StateMeta,
    masks: &BTreeMap<String, Tensor>,
) -> Result<()> {
    let mut extra = BTreeMap::new();
    extra.insert("train_state".to_string(), serde_json::to_string(meta)?);
    extra.insert("kind".to_string(), "training_state".to_string());
    let mut ck = checkpoint_of(&m.vs, &m.cfg, masks, &extra);
    let (t, _) = opt.state();
    ck.tensors.extend(t);
    ck.save(path)
}

/// Train `m` on `data` (and report validation loss on `val`). `masks` (param -> 0/1) keep
/// pruned weights at zero; when None, the model's own masks (masked checkpoint) are used.
pub fn train(
    m: &mut LoadedModel,
    data: &dyn Dataset,
    val: Option<&dyn Dataset>,
    opts: &TrainOptions,
    masks: Option<&BTreeMap<String, Tensor>>,
) -> Result<TrainSummary> {
    let r = &opts.recipe;
    let n = data.len();
    if n == 0 {
        bail!("the training dataset has no frames");
    }
    if !opts.modality.camera && !opts.modality.lidar {
        bail!("cannot train with both modalities masked");
    }
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("creating {}", opts.out_dir.display()))?;
    let state_path = opts.out_dir.join(STATE_FILE);
    let model_path = opts.out_dir.join(MODEL_FILE);
    let device = m.vs.device();
    let vars = m.vs.variables();
    let src = masks.unwrap_or(&m.masks);
    let masks: BTreeMap<String, Tensor> = src
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .map(|(k, v)| {
            let var = vars
                .get(&k)
                .with_context(|| format!("mask for unknown parameter `{k}`"))?;
            if v.size() != var.size() {
                bail!(
                    "mask of `{k}` has shape {:?}, the parameter {:?}",
                    v.size(),
                    var.size()
                );
            }
            Ok((k, v.to_kind(var.kind()).to_device(device)))
        })
        .collect::<Result<_>>()?;
    // masked weights start at zero
    tch::no_grad(|| {
        for (k, mk) in &masks {
            let _ = vars[k].shallow_clone().g_mul_(mk);
        }
    });
    let params: BTreeMap<String, Tensor> = trainable_parameters(&m.vs, None)
        .into_iter()
        .filter(|(k, _)| opts.trainable.contains(&Group::of_param(k)))
        .collect();
    let mut opt = Adam::new(&params, r.optimizer, r.betas, r.weight_decay);
    let fingerprint = opts.fingerprint(&m.cfg.to_json(), n);
    let mut meta = StateMeta {
        step: 0,
        optimizer_steps: vec![],
        history: vec![],
        scaler: LossScaler::default(),
        elapsed_s: 0.0,
        fingerprint: fingerprint.clone(),
    };
    if opts.resume && state_path.exists() {
        let ck = crate::checkpoint::Checkpoint::load(&state_path)?;
        let saved: StateMeta = serde_json::from_str(ck.meta("train_state")?)
            .with_context(|| format!("{}: bad train_state metadata", state_path.display()))?;
        if saved.fingerprint != fingerprint {
            bail!(
                "{}: was written by a run with other options, data or model config; \
                 resume with the same options or use a new output folder",
                state_path.display()
            );
        }
        ck.load_into_var_store(&mut m.vs, &[crate::checkpoint::MASK_PREFIX, OPTIM_PREFIX])?;
        opt.load_state(&ck.tensors, &saved.optimizer_steps)?;
        meta = saved;
        tracing::info!("resuming {} at step {}", state_path.display(), meta.step);
    }
    let total = r.steps;
    let amp = opts.amp && matches!(device, Device::Cuda(_));
    let use_masks = (!masks.is_empty()).then_some(&masks);
    let pb = crate::progress::bar(total as u64, &opts.label);
    pb.set_position(meta.step as u64);
    let start_step = meta.step;
    let end_step = opts
        .stop_after
        .map(|s| s.min(total))
        .unwrap_or(total)
        .max(start_step);
    let clock = Instant::now();
    let elapsed0 = meta.elapsed_s;
    let bsz = r.batch_size.min(n);
    let mut window = (LossBreakdown::default(), 0.0f64, 0usize); // sums, grad norm sum, count
    let mut bad_steps = 0;
    let model = &m.model;
    let batch_opts = |flips| BatchOptions {
        targets: TargetMode::Always,
        flips: Some(flips),
    };

    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Frame>>>(2);
        let seed = opts.seed;
        let cache = opts.cache_frames;
        scope.spawn(move || {
            let mut store: HashMap<usize, Frame> = HashMap::new();
            for step in start_step..end_step {
                let idx = batch_indices(seed, step, n, bsz);
                let frames: Result<Vec<Frame>> = idx
                    .iter()
                    .map(|&i| {
                        if let Some(f) = store.get(&i) {
                            return Ok(f.clone());
                        }
                        let f = data
                            .get(i)
                            .with_context(|| format!("loading training frame {i}"))?;
                        if cache {
                            store.insert(i, f.clone());
                        }
                        Ok(f)
                    })
                    .collect();
                if tx.send(frames).is_err() {
                    return;
                }
            }
        });
        for step in start_step..end_step {
            let frames = rx.recv().context("frame loader stopped")??;
            let flips = batch_flips(opts.seed, step, frames.len(), r.flip);
            let batch = Batch::from_frames_with(&frames, &m.cfg, device, &batch_opts(flips))?;
            tch::manual_seed(opts.seed as i64 ^ (step as i64).wrapping_mul(7919));
            let lr = cosine_with_warmup(step, total, r.lr, r.warmup_steps, r.min_lr_ratio);
            let out = tch::autocast(amp, || model.forward(&batch, opts.modality, true));
            let (loss, br) = model.loss(&out, &batch)?;
            opt.zero_grad();
            let finite = br.total.is_finite();
            let mut gn = f64::NAN;
            if finite {
                if amp {
                    (&loss * meta.scaler.scale).backward();
                } else {
                    loss.backward();
                }
                let ok = !amp || meta.scaler.unscale(&opt);
                if ok {
                    gn = opt.clip_grad_norm(r.grad_clip);
                    if gn.is_finite() {
                        opt.step(lr, use_masks);
                    }
                }
            }
            if !finite || !gn.is_finite() {
                bad_steps += 1;
                tracing::warn!("step {step}: non-finite loss or gradient ({br:?}); step skipped");
                if bad_steps >= 10 && !amp {
                    bail!("training diverged: 10 steps with non-finite loss or gradients (last {br:?}); lower the learning rate");
                }
            } else {
                bad_steps = 0;
                window.0.total += br.total;
                window.0.heatmap += br.heatmap;
                window.0.bbox += br.bbox;
                window.0.seg += br.seg;
                window.1 += gn;
                window.2 += 1;
            }
            let done = step + 1;
            meta.step = done;
            pb.set_position(done as u64);
            let last = done == total || done == end_step;
            if done % r.log_every == 0 || last {
                let c = window.2.max(1) as f64;
                let mut row = LogRow {
                    step: done,
                    lr,
                    loss: window.0.total / c,
                    heatmap: window.0.heatmap / c,
                    bbox: window.0.bbox / c,
                    seg: window.0.seg / c,
                    grad_norm: window.1 / c,
                    val_loss: None,
                    elapsed_s: elapsed0 + clock.elapsed().as_secs_f64(),
                };
                window = (LossBreakdown::default(), 0.0, 0);
                let val_now = opts.val_every > 0 && done % opts.val_every == 0 && done != total;
                if let (Some(v), true) = (val, val_now) {
                    let idx: Vec<usize> = (0..v.len().min(opts.val_frames)).collect();
                    let vl = crate::train::evaluate::validation_loss(
                        model,
                        v,
                        &idx,
                        opts.modality,
                        bsz,
                        device,
                    )?;
                    row.val_loss = Some(vl.total);
                }
                pb.set_message(format!("loss {:.3} lr {:.1e}", row.loss, lr));
                meta.history.push(row);
                write_csv(opts.out_dir.join(CSV_FILE), &meta.history)?;
            }
            if done % r.checkpoint_every == 0 || last {
                meta.elapsed_s = elapsed0 + clock.elapsed().as_secs_f64();
                meta.optimizer_steps = opt.state().1;
                save_state(&state_path, m, &opt, &meta, &masks)?;
                plot_loss(
                    opts.out_dir.join(PLOT_FILE),
                    &format!("training loss ({})", opts.label),
                    &meta.history,
                )?;
            }
        }
        drop(rx);
        Ok(())
    })?;
    pb.finish_and_clear();

    let stopped_early = meta.step < total;
    let mut final_val = None;
    if !stopped_early {
        if let Some(v) = val {
            let idx: Vec<usize> = (0..v.len().min(opts.val_frames)).collect();
            let vl = crate::train::evaluate::validation_loss(
                model,
                v,
                &idx,
                opts.modality,
                bsz,
                device,
            )?;
            if let Some(last) = meta.history.last_mut() {
                last.val_loss = Some(vl.total);
            }
            write_csv(opts.out_dir.join(CSV_FILE), &meta.history)?;
            plot_loss(
                opts.out_dir.join(PLOT_FILE),
                &format!("training loss ({})", opts.label),
                &meta.history,
            )?;
            final_val = Some(vl);
        }
        let mut extra = opts.extra_meta.clone();
        extra.insert(
            "train_meta".into(),
            serde_json::json!({
                "modality": opts.modality.name(),
                "steps": total,
                "batch_size": r.batch_size,
                "lr": r.lr,
                "seed": opts.seed,
                "frames": n,
                "final_loss": meta.history.last().map(|h| h.loss),
                "final_val_loss": final_val.map(|v| v.total),
                "elapsed_s": meta.elapsed_s,
            })
            .to_string(),
        );
        checkpoint_of(&m.vs, &m.cfg, &masks, &extra).save(&model_path)?;
        if !masks.is_empty() {
            m.masks = masks
                .iter()
                .map(|(k, v)| (k.clone(), v.shallow_clone()))
                .collect();
        }
    }
    Ok(TrainSummary {
        steps_done: meta.step,
        final_loss: meta.history.last().map(|h| h.loss).unwrap_or(f64::NAN),
        final_val,
        history: meta.history,
        model_path,
        state_path,
        stopped_early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_cover_every_frame_once_and_are_reproducible() {
        let n = 10;
        let mut seen: Vec<usize> = (0..5).flat_map(|s| batch_indices(3, s, n, 2)).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(batch_indices(3, 7, n, 2), batch_indices(3, 7, n, 2));
        assert_ne!(
            batch_indices(3, 0, n, 10),
            batch_indices(3, 5, n, 10),
            "epochs reshuffle"
        );
        assert_eq!(batch_flips(1, 4, 3, true), batch_flips(1, 4, 3, true));
        assert!(batch_flips(1, 4, 3, false)
            .iter()
            .all(|f| *f == (false, false)));
    }
}
