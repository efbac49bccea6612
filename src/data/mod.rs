//! Data: the synthetic driving world, the nuScenes and KITTI layouts, and the loader.
//!
//! Planned files (issue #3): `world.rs` (procedural scenes: roads, map layers, objects and
//! their motion), `lidar_sim.rs` (ray-cast spinning LiDAR), `camera_sim.rs` (z-buffered
//! rasteriser), `rig.rs` (camera rigs and calibration), `nuscenes.rs` (write and read the
//! nuScenes layout), `kitti.rs` (read the KITTI layout), `loader.rs` (batches for training),
//! `render.rs` (PNG montage of a sample).
pub mod camera_sim;
pub mod dataset;
pub mod frame;
pub mod layout;
pub mod lidar_sim;
pub mod map_raster;
pub mod nuscenes_tables;
pub mod objects;
pub mod rig;
pub mod scene;
pub mod snapshot;
pub mod tokens;

pub use dataset::Dataset;
pub use frame::{Annotation, BevMap, CameraCalib, CameraFrame, Frame, Points, POINT_DIMS};
