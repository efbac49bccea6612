//! Data: the synthetic driving world, the nuScenes and KITTI layouts, and the loader.
//!
//! Planned files (issue #3): `world.rs` (procedural scenes: roads, map layers, objects and
//! their motion), `lidar_sim.rs` (ray-cast spinning LiDAR), `camera_sim.rs` (z-buffered
//! rasteriser), `rig.rs` (camera rigs and calibration), `nuscenes.rs` (write and read the
//! nuScenes layout), `kitti.rs` (read the KITTI layout), `loader.rs` (batches for training),
//! `render.rs` (PNG montage of a sample).
pub mod dataset;
pub mod frame;
pub mod nuscenes_tables;

pub use dataset::Dataset;
pub use frame::{Annotation, BevMap, CameraCalib, CameraFrame, Frame, Points, POINT_DIMS};
