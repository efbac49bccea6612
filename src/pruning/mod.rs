//! AlterMOMA (NeurIPS 2024) and the baseline pruning methods, in one harness.
//!
//! | idea | file |
//! |---|---|
//! | what a method needs from a model | [`model_api`] |
//! | masks: apply, keep zero, sparsity, checkpoints | [`masks`] |
//! | one global threshold (rho-quantile via kthvalue) | [`threshold`] |
//! | DeCI, Eq. 6 | [`deci`] |
//! | ReRI + redundancy reactivation, Eq. 10 | [`reri`] |
//! | AlterEva, Eqs. 11-13 | [`alter_eva`] |
//! | Algorithm 1 (alternative modality masking) | [`altermoma`] |
//! | baselines | [`imp`], [`snip`], [`synflow`], [`prospr`], [`random`] |
//! | method choice, options, dispatch | [`harness`] |
//! | masked fine-tuning | [`finetune`] |
//! | channel pruning, physically smaller model | [`structured`] |
//! | per-run report (sparsity, params, GFLOPs, PNG) | [`report`] |
//! | toy fusion models for hand-checked tests | [`toy`] |
//! | the BEVFusion model as a prunable model | [`bevfusion`] |
pub mod alter_eva;
pub mod altermoma;
pub mod bevfusion;
pub mod deci;
pub mod finetune;
pub mod harness;
pub mod imp;
pub mod masks;
pub mod model_api;
pub mod prospr;
pub mod random;
pub mod report;
pub mod reri;
pub mod snip;
pub mod structured;
pub mod synflow;
pub mod threshold;
pub mod toy;

/// Per-weight scores (same shape as each parameter), keyed by parameter name.
pub type Scores = std::collections::BTreeMap<String, tch::Tensor>;

pub use harness::{prune, Granularity, Method, PruneConfig, PruneOutcome};
pub use masks::MaskSet;
pub use model_api::{
    BatchSource, ChannelGroup, ChannelMember, FitConfig, PrunableModel, PrunableParam,
    PrunableScope,
};
