//! Benchmarks behind `altermoma bench`, one file per area.
pub mod bag;
pub mod copy_floor;
pub mod data;
pub mod metrics;
pub mod model;
pub mod node;
pub mod pruning;
