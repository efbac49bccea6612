//! `altermoma demo` (issue #9): the whole product end to end on the embedded synthetic
//! world — data, single-modal pre-training, fusion training, AlterMOMA and a baseline at the
//! same sparsity, masked fine-tuning, held-out evaluation, a rosbag2 bag of the held-out
//! scenes replayed through the node's pipeline for latency, and a report with plots.
//!
//! - [`config`]: the demo's YAML (the `tiny` default is embedded);
//! - [`steps`]: resumable, crash-safe steps (done-stamps keyed by chained fingerprints);
//! - [`flow`]: the chain of steps on library code;
//! - [`memory_dataset`]: the splits decoded once per run;
//! - [`latency`]: the bag and replay steps (through `crate::replay::node_processor`, as `altermoma replay`);
//! - [`results`], [`report`]: what the steps produce; table, `report.md`, plots.
pub mod config;
pub mod flow;
pub mod latency;
pub mod memory_dataset;
pub mod report;
pub mod results;
pub mod steps;

pub use config::DemoConfig;
pub use flow::{run, DemoOptions};
pub use memory_dataset::MemoryDataset;
