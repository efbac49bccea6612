//! Training (issue #4): single-modal pre-training and fusion training with Adam/AdamW, a
//! cosine schedule with warm-up, gradient clipping, optional pruning masks, resumable
//! checkpoints, CSV + PNG logs; and running a model over a dataset for evaluation.
//!
//! Files: [`trainer`] (the loop, resume), [`optimizer`] (Adam/AdamW with savable state,
//! clipping, masks, loss scaling), [`schedule`] (learning rate), [`evaluate`] (predictions,
//! validation loss), [`log`] (CSV and loss curve), [`recipe`] (named per-stage recipes).
pub mod evaluate;
pub mod log;
pub mod optimizer;
pub mod recipe;
pub mod schedule;
pub mod trainer;

pub use evaluate::{evaluate, predict, predict_each, validation_loss, EvalReport, FramePrediction};
pub use trainer::{train, TrainOptions, TrainSummary};
