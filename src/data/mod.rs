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
pub mod kitti;
pub mod layout;
pub mod lidar_sim;
pub mod loader;
pub mod map_raster;
pub mod nuscenes;
pub mod nuscenes_tables;
pub mod nuscenes_writer;
pub mod objects;
pub mod pixel_layout;
pub mod records;
pub mod render;
pub mod rig;
pub mod scene;
pub mod shared_image;
pub mod snapshot;
pub mod tokens;
pub mod world;

pub use dataset::Dataset;
pub use frame::{Annotation, BevMap, CameraCalib, CameraFrame, Frame, Points, SharedImage, POINT_DIMS};
pub use pixel_layout::PixelLayout;
pub use shared_image::{share, share_bytes, share_external, ExternalBytes, PixelBytes, RgbPixels, StoredImage};

/// Open a dataset folder: nuScenes layout (`<dir>/v1.0-*/`; `version` picks the folder when
/// there are several) or KITTI object layout (`velodyne/`, `calib/`, ... or `training/...`).
/// nuScenes datasets with six-class map rasters get `Frame::map` on the grid their generator
/// used (`maps/bev/index.json`), else on [`DEFAULT_MAP_GRID`].
pub fn open_dataset(
    dir: &std::path::Path,
    version: Option<&str>,
) -> anyhow::Result<Box<dyn Dataset>> {
    let versions = nuscenes::versions(dir);
    if !versions.is_empty() || version.is_some() {
        let v = match version {
            Some(v) => v.to_string(),
            None if versions.len() == 1 => versions[0].clone(),
            None => anyhow::bail!(
                "{} holds several nuScenes versions ({}); pick one with --version",
                dir.display(),
                versions.join(", ")
            ),
        };
        let ds = nuscenes::NuScenesDataset::open(dir, &v)?;
        let ds = match (ds.has_maps(), ds.default_map_grid()) {
            (true, Some(g)) => ds.with_map_grid(g),
            (true, None) => ds.with_map_grid(DEFAULT_MAP_GRID),
            _ => ds,
        };
        return Ok(Box::new(ds));
    }
    if kitti::KittiDataset::is_kitti(dir) {
        return Ok(Box::new(kitti::KittiDataset::open(dir)?));
    }
    anyhow::bail!(
        "{} is neither a nuScenes dataroot (no v1.0-*/ folder) nor a KITTI object folder",
        dir.display()
    )
}

/// BEV grid of maps read by [`open_dataset`]: +-50 m at 0.5 m.
pub const DEFAULT_MAP_GRID: crate::geometry::BevGrid = crate::geometry::BevGrid {
    x_min: -50.0,
    x_max: 50.0,
    y_min: -50.0,
    y_max: 50.0,
    resolution: 0.5,
};
