//! The study's YAML (`config/experiments/<name>.yaml`): data, model, training recipes,
//! methods x sparsities, fine-tuning, structured rows, latency and evaluation settings. Every
//! duration is an option so the same study scales from a CPU smoke run to a GPU study.

use crate::config::{ensure, FieldError, Validate};
use crate::pruning::{FitConfig, Method, PruneConfig};
use serde::{Deserialize, Serialize};

/// One synthetic split: a generator seed (seeds are the train / held-out split).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    pub seed: u64,
    pub scenes: usize,
    pub frames_per_scene: usize,
}

/// The synthetic data of the study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Sensor rig (`tiny`, `nuscenes` or a YAML path).
    pub rig: String,
    pub train: SplitSpec,
    /// Held-out split: a generator seed never used for training.
    pub test: SplitSpec,
}

/// One training stage (pre-training or fusion training).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub steps: usize,
    pub lr: f64,
    /// Samples per batch (default: the model config's recipe).
    #[serde(default)]
    pub batch_size: Option<usize>,
}

/// Single-modal pre-training and fusion training (BEVFusion's recipe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    pub camera: StageSpec,
    pub lidar: StageSpec,
    pub fusion: StageSpec,
    /// Also train each single-modal model for the fusion stage's steps more (same learning
    /// rate, heads included), so that fusion is compared with single-modal models that got
    /// the same number of training steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub budget_matched_controls: bool,
}

/// The unstructured grid: methods x sparsities with shared options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneGrid {
    pub methods: Vec<Method>,
    pub sparsities: Vec<f64>,
    /// Samples per scoring batch.
    pub batch_size: usize,
    /// Method options (method, sparsity and granularity are set per cell).
    #[serde(default)]
    pub options: PruneConfig,
}

/// Structured AlterMOMA rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructuredSpec {
    /// Fractions of channels removed (e.g. 0.3, 0.5).
    pub sparsities: Vec<f64>,
    pub finetune: FitConfig,
    /// Latency: warm-up and timed forward passes (batch 1), dense and pruned interleaved.
    pub latency_warmup: usize,
    pub latency_runs: usize,
}

/// Evaluation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    pub batch_size: usize,
    /// Also evaluate right after pruning, before fine-tuning.
    #[serde(default = "yes")]
    pub before_finetune: bool,
}

fn yes() -> bool {
    true
}

/// The whole study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub name: String,
    /// Model config: a name under `config/model/` or a YAML path.
    pub model: String,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    #[serde(default = "auto")]
    pub device: String,
    /// libtorch CPU threads (0: libtorch's default).
    #[serde(default)]
    pub threads: i32,
    pub data: DataSpec,
    /// Training seeds (>= 2 for a spread).
    pub seeds: Vec<u64>,
    pub training: TrainingSpec,
    pub prune: PruneGrid,
    /// Masked fine-tuning after unstructured pruning (the same for every method).
    pub finetune: FitConfig,
    #[serde(default)]
    pub structured: Option<StructuredSpec>,
    pub eval: EvalSpec,
}

fn auto() -> String {
    "auto".into()
}

impl Validate for ExperimentConfig {
    fn validate(&self) -> Result<(), FieldError> {
        ensure(
            !self.seeds.is_empty(),
            "seeds",
            "needs at least one training seed",
        )?;
        let mut s = self.seeds.clone();
        s.sort();
        s.dedup();
        ensure(
            s.len() == self.seeds.len(),
            "seeds",
            "seeds must be distinct",
        )?;
        ensure(
            self.data.train.seed != self.data.test.seed,
            "data.test.seed",
            "the held-out seed must differ from the training seed",
        )?;
        ensure(
            self.data.train.scenes >= 1,
            "data.train.scenes",
            "must be at least 1",
        )?;
        ensure(
            self.data.test.scenes >= 1,
            "data.test.scenes",
            "must be at least 1",
        )?;
        for (f, st) in [
            ("training.camera", &self.training.camera),
            ("training.lidar", &self.training.lidar),
            ("training.fusion", &self.training.fusion),
        ] {
            ensure(st.steps >= 1, &format!("{f}.steps"), "must be at least 1")?;
            ensure(st.lr > 0.0, &format!("{f}.lr"), "must be positive")?;
        }
        ensure(
            !self.prune.methods.is_empty(),
            "prune.methods",
            "needs at least one method",
        )?;
        for sp in &self.prune.sparsities {
            ensure(
                (0.0..1.0).contains(sp),
                "prune.sparsities",
                "every sparsity must be in [0, 1)",
            )?;
        }
        ensure(
            self.prune.batch_size >= 1,
            "prune.batch_size",
            "must be at least 1",
        )?;
        self.prune
            .options
            .validate()
            .map_err(|e| FieldError::new(format!("prune.options.{}", e.field), e.message))?;
        ensure(self.finetune.lr > 0.0, "finetune.lr", "must be positive")?;
        if let Some(st) = &self.structured {
            for sp in &st.sparsities {
                ensure(
                    (0.0..1.0).contains(sp),
                    "structured.sparsities",
                    "every sparsity must be in [0, 1)",
                )?;
            }
            ensure(
                st.latency_runs >= 1,
                "structured.latency_runs",
                "must be at least 1",
            )?;
        }
        ensure(
            self.eval.batch_size >= 1,
            "eval.batch_size",
            "must be at least 1",
        )?;
        Ok(())
    }
}
