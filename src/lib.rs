//! AlterMOMA: make camera-LiDAR fusion models small enough to run on the car.
//!
//! The library behind the `altermoma` CLI and the `bevfusion_node` ROS 2 node. A reader of the
//! AlterMOMA paper (NeurIPS 2024) finds each of its ideas by file name under [`pruning`].
pub mod bag;
pub mod bench;
pub mod checkpoint;
pub mod classes;
pub mod cli;
pub mod config;
pub mod cpu_time;
pub mod data;
#[cfg(feature = "ros")]
pub mod demo;
pub mod device;
pub mod experiment;
pub mod geometry;
pub mod host_memory;
pub mod io;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod netns;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod pruning;
#[cfg(feature = "ros")]
pub mod replay;
#[cfg(feature = "ros")]
pub mod ros;
pub mod seed;
pub mod train;
