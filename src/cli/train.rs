//! `altermoma train` (issue #4): single-modal pre-training and fusion training.
//!
//! BEVFusion's recipe: train a camera-only and a LiDAR-only model (`--modality camera`,
//! `--modality lidar`), then a fused model whose camera branch starts from the camera model
//! and whose LiDAR branch (and, by default, fuser, decoder and heads) from the LiDAR model
//! (`--modality fusion --camera-checkpoint ... --lidar-checkpoint ...`).

use crate::bench::model::config_path;
use crate::model::config::{ModelConfig, OptimizerKind};
use crate::model::load::{load_groups, LoadedModel};
use crate::model::{Group, ModalityMask};
use crate::train::{train, TrainOptions};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    Camera,
    Lidar,
    Fusion,
}

impl Modality {
    pub fn mask(self) -> ModalityMask {
        match self {
            Modality::Camera => ModalityMask::CAMERA_ONLY,
            Modality::Lidar => ModalityMask::LIDAR_ONLY,
            Modality::Fusion => ModalityMask::FUSION,
        }
    }
}

/// Where a fused model's fuser, decoder and heads start from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusionInit {
    /// From the LiDAR checkpoint (BEVFusion).
    Lidar,
    /// From the camera checkpoint.
    Camera,
    /// Freshly initialised.
    Fresh,
}

/// Options of `altermoma train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model config: `tiny`, `small`, `base` or a YAML path.
    #[arg(long, default_value = "tiny")]
    pub config: String,
    /// Training data (nuScenes-layout dataroot or KITTI folder).
    #[arg(long)]
    pub data: PathBuf,
    /// nuScenes version folder (when the dataroot has several).
    #[arg(long)]
    pub version: Option<String>,
    /// Held-out data for the validation loss.
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    #[arg(long)]
    pub val_version: Option<String>,
    #[arg(long, value_enum, default_value_t = Modality::Fusion)]
    pub modality: Modality,
    /// Output folder (model.safetensors, train_state.safetensors, metrics.csv, loss.png).
    #[arg(long)]
    pub out: PathBuf,
    /// Camera-only checkpoint whose camera branch initialises the fused model.
    #[arg(long)]
    pub camera_checkpoint: Option<PathBuf>,
    /// LiDAR-only checkpoint whose LiDAR branch initialises the fused model.
    #[arg(long)]
    pub lidar_checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = FusionInit::Lidar)]
    pub fusion_init: FusionInit,
    /// Start from this model checkpoint (its embedded config wins over --config).
    #[arg(long)]
    pub init_checkpoint: Option<PathBuf>,
    /// Groups to keep frozen (comma separated: camera, lidar, fusion).
    #[arg(long, value_delimiter = ',')]
    pub freeze: Vec<String>,
    /// Named recipe (`config/train/<name>.yaml`, e.g. `demo`): steps, lr and batch size of
    /// --modality's stage. Explicit --steps / --lr / --batch-size win.
    #[arg(long)]
    pub recipe: Option<String>,
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    #[arg(long)]
    pub grad_clip: Option<f64>,
    #[arg(long)]
    pub optimizer: Option<String>,
    /// No random BEV flips.
    #[arg(long)]
    pub no_flip: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Mixed precision (CUDA only).
    #[arg(long)]
    pub amp: bool,
    /// Continue an interrupted run in --out.
    #[arg(long)]
    pub resume: bool,
    /// Validation loss every N steps (0: at the end only).
    #[arg(long, default_value_t = 0)]
    pub val_every: usize,
    /// Only evaluate --init-checkpoint on --val-data under --modality (no training).
    #[arg(long)]
    pub eval_only: bool,
    /// Frames of --val-data used for validation (0 = all).
    #[arg(long, default_value_t = 0)]
    pub val_frames: usize,
    /// CPU threads for libtorch (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    pub threads: i32,
}

pub fn run(args: Args) -> Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let device = crate::device::parse_device(&args.device)?;
    let data = open_dataset(&args.data, args.version.as_deref())?;
    let val = match &args.val_data {
        Some(p) => Some(open_dataset(p, args.val_version.as_deref())?),
        None => None,
    };
    tch::manual_seed(args.seed as i64);
    let mut m = match &args.init_checkpoint {
        Some(p) => LoadedModel::from_checkpoint(p, device)?,
        None => {
            let path = config_path(&args.config);
            let cfg = ModelConfig::load(&path)?;
            LoadedModel::new(&cfg, device)?
        }
    };
    if args.modality != Modality::Fusion
        && (args.camera_checkpoint.is_some() || args.lidar_checkpoint.is_some())
    {
        bail!("--camera-checkpoint / --lidar-checkpoint initialise a fused model: use --modality fusion");
    }
    if let Some(p) = &args.camera_checkpoint {
        let mut groups = vec![Group::Camera];
        if args.fusion_init == FusionInit::Camera {
            groups.push(Group::Fusion);
        }
        let n = load_groups(&m.vs, p, &groups).with_context(|| "--camera-checkpoint")?;
        tracing::info!("camera branch: {n} tensors from {}", p.display());
    }
    if let Some(p) = &args.lidar_checkpoint {
        let mut groups = vec![Group::Lidar];
        if args.fusion_init == FusionInit::Lidar {
            groups.push(Group::Fusion);
        }
        let n = load_groups(&m.vs, p, &groups).with_context(|| "--lidar-checkpoint")?;
        tracing::info!("LiDAR branch: {n} tensors from {}", p.display());
    }
    if args.eval_only {
        let Some(v) = &val else {
            bail!("--eval-only needs --val-data")
        };
        if args.init_checkpoint.is_none() {
            bail!("--eval-only needs --init-checkpoint");
        }
        let n = if args.val_frames == 0 {
            v.len()
        } else {
            args.val_frames.min(v.len())
        };
        let idx: Vec<usize> = (0..n).collect();
        let bs = args.batch_size.unwrap_or(m.cfg.train.batch_size);
        let ev =
            crate::train::evaluate(&m.model, v.as_ref(), &idx, args.modality.mask(), bs, device)?;
        print_eval(&ev);
        std::fs::create_dir_all(&args.out)?;
        crate::io::write_json(args.out.join(crate::train::trainer::EVAL_FILE), &ev)?;
        return Ok(());
    }
    let mut o = TrainOptions::new(&m.cfg.train, args.modality.mask(), &args.out);
    let r = &mut o.recipe;
    if let Some(name) = &args.recipe {
        let rec = crate::train::recipe::Recipe::load(name)?;
        if rec.model != m.cfg.name {
            tracing::warn!(
                "recipe `{name}` was measured with model `{}`, training `{}`",
                rec.model,
                m.cfg.name
            );
        }
        let st = match args.modality {
            Modality::Camera => rec.camera,
            Modality::Lidar => rec.lidar,
            Modality::Fusion => rec.fusion,
        };
        r.steps = st.steps;
        r.lr = st.lr;
        r.batch_size = st.batch_size;
    }
    if let Some(v) = args.steps {
        r.steps = v;
    }
    if let Some(v) = args.batch_size {
        r.batch_size = v;
    }
    if let Some(v) = args.lr {
        r.lr = v;
    }
    if let Some(v) = args.weight_decay {
        r.weight_decay = v;
    }
    if let Some(v) = args.warmup_steps {
        r.warmup_steps = v;
    }
    if let Some(v) = args.grad_clip {
        r.grad_clip = v;
    }
    if let Some(v) = &args.optimizer {
        r.optimizer = match v.as_str() {
            "adam" => OptimizerKind::Adam,
            "adamw" => OptimizerKind::Adamw,
            other => bail!("--optimizer `{other}`: expected adam or adamw"),
        };
    }
    if args.no_flip {
        r.flip = false;
    }
    if r.steps == 0 || r.batch_size == 0 || !(r.lr > 0.0) {
        bail!("--steps, --batch-size and --lr must be positive");
    }
    o.seed = args.seed;
    o.device = device;
    o.amp = args.amp;
    o.resume = args.resume;
    o.val_every = args.val_every;
    if let Some(v) = &val {
        o.val_frames = if args.val_frames == 0 {
            v.len()
        } else {
            args.val_frames
        };
    }
    o.label = format!("train {}", args.modality.mask().name());
    for g in &args.freeze {
        let g = match g.as_str() {
            "camera" => Group::Camera,
            "lidar" => Group::Lidar,
            "fusion" => Group::Fusion,
            other => bail!("--freeze `{other}`: expected camera, lidar or fusion"),
        };
        o.trainable.retain(|x| *x != g);
    }
    o.extra_meta
        .insert("train_data".into(), args.data.display().to_string());
    eprintln!(
        "training `{}` ({}) on {} frames for {} steps (batch {}, lr {}) on {}",
        m.cfg.name,
        args.modality.mask().name(),
        data.len(),
        o.recipe.steps,
        o.recipe.batch_size,
        o.recipe.lr,
        crate::device::describe(device)
    );
    let s = train(&mut m, data.as_ref(), val.as_deref(), &o, None)?;
    println!("steps: {}", s.steps_done);
    println!("final training loss: {:.4}", s.final_loss);
    if let Some(v) = s.final_val {
        println!(
            "validation loss: {:.4} (heatmap {:.4}, box {:.4}, seg {:.4})",
            v.total, v.heatmap, v.bbox, v.seg
        );
    }
    if let Some(ev) = &s.final_eval {
        print_eval(ev);
    }
    println!("model: {}", s.model_path.display());
    println!(
        "log: {}",
        args.out.join(crate::train::trainer::CSV_FILE).display()
    );
    Ok(())
}

fn print_eval(ev: &crate::train::EvalReport) {
    println!(
        "{} on {} frames: mAP {:.4}  NDS {:.4}  mIoU {}",
        ev.modality,
        ev.frames,
        ev.map,
        ev.nds,
        ev.miou
            .map(|m| format!("{m:.4}"))
            .unwrap_or_else(|| "-".into())
    );
    let aps: Vec<String> = ev
        .class_ap
        .iter()
        .map(|(c, a)| format!("{c} {a:.3}"))
        .collect();
    println!("  AP: {}", aps.join(", "));
    let ious: Vec<String> = ev
        .class_iou
        .iter()
        .map(|(c, a)| format!("{c} {a:.3}"))
        .collect();
    if !ious.is_empty() {
        println!("  IoU: {}", ious.join(", "));
    }
}

fn open_dataset(
    dir: &std::path::Path,
    version: Option<&str>,
) -> Result<Box<dyn crate::data::Dataset>> {
    crate::data::open_dataset(dir, version)
        .with_context(|| format!("opening dataset {}", dir.display()))
}
