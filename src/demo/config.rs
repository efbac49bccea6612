//! The demo's YAML (`config/demo/<name>.yaml`): the synthetic data, the training recipe of
//! each stage, the AlterMOMA sparsity and the baseline it is compared with, masked
//! fine-tuning, evaluation, the bag and the replay. The default (`tiny`) is embedded in the
//! binary so `altermoma demo` runs from anywhere with no file of the user's.

use crate::config::{ensure, ConfigError, FieldError, Validate};
use crate::experiment::config::{DataSpec, TrainingSpec};
use crate::pruning::{FitConfig, Method, PruneConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The embedded default: `config/demo/tiny.yaml`.
pub const TINY_YAML: &str = include_str!("../../config/demo/tiny.yaml");

/// Pruning: AlterMOMA and one baseline at the same sparsity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoPrune {
    /// Fraction of the prunable weights removed (0.8 = 80 %).
    pub sparsity: f64,
    /// The baseline pruned side by side with AlterMOMA (imp, snip, synflow, prospr, random).
    pub baseline: Method,
    /// Samples per scoring batch.
    pub batch_size: usize,
    /// Method options (method, sparsity and seed are set per step; see config/pruning/).
    #[serde(default)]
    pub options: PruneConfig,
}

/// Held-out evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoEval {
    pub batch_size: usize,
}

/// The rosbag2 bag of the held-out scenes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoBag {
    /// `mcap-zstd`, `mcap-lz4`, `mcap` or `sqlite3`.
    pub storage: String,
    /// `raw`, `png`, `jpeg` or `jpeg:<quality>`.
    pub images: String,
    /// At most this many frames (all held-out frames when absent).
    #[serde(default)]
    pub max_frames: Option<usize>,
}

/// Replay of the bag through the node's pipeline (dense and pruned).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoReplay {
    /// Pipeline warm-up frames before timing (each model).
    pub warmup_frames: usize,
    /// Also replay the baseline's pruned model.
    #[serde(default)]
    pub baseline: bool,
}

/// The whole demo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    pub name: String,
    /// Model config: a name under `config/model/` or a YAML path.
    pub model: String,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    #[serde(default = "auto")]
    pub device: String,
    /// libtorch CPU threads (0: libtorch's default).
    #[serde(default)]
    pub threads: i32,
    /// Synthetic data: the training and the held-out generator seeds.
    pub data: DataSpec,
    /// Seed of training, pruning and fine-tuning.
    #[serde(default)]
    pub seed: u64,
    /// Camera-only and LiDAR-only pre-training, then fusion training.
    pub training: TrainingSpec,
    pub prune: DemoPrune,
    /// Masked fine-tuning of both pruned models.
    pub finetune: FitConfig,
    pub eval: DemoEval,
    pub bag: DemoBag,
    pub replay: DemoReplay,
}

fn auto() -> String {
    "auto".into()
}

impl DemoConfig {
    /// The embedded `tiny` demo.
    pub fn tiny() -> Self {
        Self::parse(TINY_YAML, Path::new("config/demo/tiny.yaml")).expect("embedded demo config")
    }

    /// Parse YAML text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        crate::config::parse_yaml(text, origin)
    }

    /// Load a YAML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        crate::config::load_yaml(path)
    }

    /// Pruning options of `method`.
    pub fn prune_options(&self, method: Method) -> PruneConfig {
        let mut c = self.prune.options.clone();
        c.method = method;
        c.sparsity = self.prune.sparsity;
        c.seed = self.seed;
        c
    }
}

impl Validate for DemoConfig {
    fn validate(&self) -> Result<(), FieldError> {
        ensure(
            self.data.train.seed != self.data.test.seed,
            "data.test.seed",
            "the held-out seed must differ from the training seed",
        )?;
        for (f, s) in [
            ("data.train", &self.data.train),
            ("data.test", &self.data.test),
        ] {
            ensure(s.scenes >= 1, &format!("{f}.scenes"), "must be at least 1")?;
            ensure(
                s.frames_per_scene >= 1,
                &format!("{f}.frames_per_scene"),
                "must be at least 1",
            )?;
        }
        for (f, st) in [
            ("training.camera", &self.training.camera),
            ("training.lidar", &self.training.lidar),
            ("training.fusion", &self.training.fusion),
        ] {
            ensure(st.steps >= 1, &format!("{f}.steps"), "must be at least 1")?;
            ensure(st.lr > 0.0, &format!("{f}.lr"), "must be positive")?;
            ensure(
                st.batch_size != Some(0),
                &format!("{f}.batch_size"),
                "must be at least 1",
            )?;
        }
        ensure(
            (0.0..1.0).contains(&self.prune.sparsity),
            "prune.sparsity",
            "must be in [0, 1)",
        )?;
        ensure(
            self.prune.baseline != Method::Altermoma,
            "prune.baseline",
            "the baseline must be another method than altermoma (imp, snip, synflow, prospr, random)",
        )?;
        ensure(
            self.prune.batch_size >= 1,
            "prune.batch_size",
            "must be at least 1",
        )?;
        self.prune
            .options
            .validate()
            .map_err(|e| FieldError::new(format!("prune.options.{}", e.field), e.message))?;
        ensure(
            self.finetune.steps >= 1,
            "finetune.steps",
            "must be at least 1",
        )?;
        ensure(self.finetune.lr > 0.0, "finetune.lr", "must be positive")?;
        ensure(
            self.eval.batch_size >= 1,
            "eval.batch_size",
            "must be at least 1",
        )?;
        ensure(
            self.bag.max_frames != Some(0),
            "bag.max_frames",
            "must be at least 1",
        )?;
        crate::cli::gen_bag::storage_kind(&self.bag.storage)
            .map_err(|e| FieldError::new("bag.storage", e.to_string()))?;
        self.bag
            .images
            .parse::<crate::bag::scene_writer::ImageFormat>()
            .map_err(|e| FieldError::new("bag.images", e.to_string()))?;
        Ok(())
    }
}
