//! The pruning study behind `altermoma experiment` (issue #6): single-modal pre-training,
//! fusion training, every method x sparsity, masked fine-tuning, evaluation on held-out
//! seeds over several training seeds, structured rows with measured latency; resumable cell
//! by cell; `report.md` with a Table-1-shaped table and PNG plots.
pub mod cells;
pub mod config;
pub mod evaluate;
pub mod latency;
pub mod report;
pub mod results;
pub mod runner;
