//! Global BEV map rasters and their crops into a frame's LiDAR grid.
//!
//! On disk (nuScenes layout), each log has one raster of the six map classes:
//! `maps/bev/<log_token>.png`, an 8-bit grey PNG whose pixel value has bit k set when the
//! cell belongs to `MAP_CLASSES[k]` (drivable_area = bit 0, ..., divider = bit 5), at
//! `resolution` metres per pixel. `maps/bev/index.json` lists the rasters:
//!
//! ```json
//! { "format": "altermoma-bev-map-v1", "classes": ["drivable_area", ...],
//!   "resolution": 0.1, "logs": { "<log_token>": { "filename": "maps/bev/<log_token>.png",
//!   "width": 3200, "height": 1800 } },
//!   "default_grid": { "x_min": -32.0, "x_max": 32.0, "y_min": -32.0, "y_max": 32.0, "resolution": 0.5 } }
//! ```
//!
//! Pixels follow the nuScenes devkit's `MapMask` convention, so the rasters line up with the
//! devkit's semantic-prior masks: global (x, y) falls in column `round(x / res)` and row
//! `round(height - y / res)`; pixel (col, row) is centred at global
//! `(col * res, (height - row) * res)`. Points outside the raster have no class.
//!
//! A crop gives a BEV cell a class when any of its sub-samples (an n x n grid with
//! n = ceil(resolution / 0.25 m), so thin dividers and stop lines are never skipped) falls
//! on a raster pixel of that class, after mapping the samples from the LiDAR frame to the
//! global frame. The in-memory world evaluates its layout at the same pixel centres, so it
//! and the reader give identical masks.

use crate::classes::MAP_CLASSES;
use crate::data::frame::BevMap;
use crate::geometry::BevGrid;
use nalgebra::{Isometry3, Point3};
use serde::{Deserialize, Serialize};

/// Name of the index file under the dataroot.
pub const INDEX_PATH: &str = "maps/bev/index.json";
pub const FORMAT: &str = "altermoma-bev-map-v1";

/// Size and resolution of one global raster.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RasterGeometry {
    pub width: u32,
    pub height: u32,
    pub resolution: f64,
}

impl RasterGeometry {
    /// Pixel (col, row) holding a global point, if inside the raster.
    #[inline]
    pub fn pixel_of(&self, x: f64, y: f64) -> Option<(u32, u32)> {
        let c = (x / self.resolution).round();
        let r = (self.height as f64 - y / self.resolution).round();
        if c < 0.0
            || r < 0.0
            || c >= self.width as f64
            || r >= self.height as f64
            || !c.is_finite()
            || !r.is_finite()
        {
            return None;
        }
        Some((c as u32, r as u32))
    }

    /// Global coordinates of a pixel's centre.
    #[inline]
    pub fn pixel_center(&self, col: u32, row: u32) -> (f64, f64) {
        (
            col as f64 * self.resolution,
            (self.height as f64 - row as f64) * self.resolution,
        )
    }
}

/// Crop a global raster into a BEV grid in the LiDAR frame. `bits_at(col, row)` returns the
/// class bits of a raster pixel.
pub fn crop(
    grid: &BevGrid,
    lidar_to_global: &Isometry3<f64>,
    raster: &RasterGeometry,
    bits_at: impl Fn(u32, u32) -> u8,
) -> BevMap {
    let (nx, ny) = (grid.nx(), grid.ny());
    let c = MAP_CLASSES.len();
    let sub = ((grid.resolution / SUBSAMPLE_SPACING) - 1e-9)
        .ceil()
        .max(1.0) as usize;
    let step = grid.resolution / sub as f64;
    let mut data = vec![0u8; c * nx * ny];
    for i in 0..nx {
        for j in 0..ny {
            let x0 = grid.x_min + i as f64 * grid.resolution;
            let y0 = grid.y_min + j as f64 * grid.resolution;
            let mut bits = 0u8;
            for a in 0..sub {
                for b in 0..sub {
                    let p = Point3::new(
                        x0 + (a as f64 + 0.5) * step,
                        y0 + (b as f64 + 0.5) * step,
                        0.0,
                    );
                    let g = lidar_to_global * p;
                    if let Some((col, row)) = raster.pixel_of(g.x, g.y) {
                        bits |= bits_at(col, row);
                    }
                }
            }
            if bits != 0 {
                for k in 0..c {
                    if bits & (1 << k) != 0 {
                        data[k * nx * ny + i * ny + j] = 1;
                    }
                }
            }
        }
    }
    BevMap { grid: *grid, data }
}

/// Spacing of the sub-samples of a crop cell (metres).
pub const SUBSAMPLE_SPACING: f64 = 0.25;

/// `maps/bev/index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RasterIndex {
    pub format: String,
    pub classes: Vec<String>,
    pub resolution: f64,
    pub logs: std::collections::BTreeMap<String, RasterEntry>,
    /// BEV grid the generator's rig crops by default (readers use it unless told otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_grid: Option<BevGrid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RasterEntry {
    pub filename: String,
    pub width: u32,
    pub height: u32,
}

/// A raster loaded from disk.
#[derive(Clone, Debug)]
pub struct LoadedRaster {
    pub geometry: RasterGeometry,
    pub pixels: image::GrayImage,
}

impl LoadedRaster {
    pub fn bits_at(&self, col: u32, row: u32) -> u8 {
        self.pixels.get_pixel(col, row).0[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_convention_matches_the_devkit_map_mask() {
        let g = RasterGeometry {
            width: 100,
            height: 50,
            resolution: 0.1,
        };
        // Devkit: px = round(x / res), py = round(-y / res + nrows).
        assert_eq!(g.pixel_of(1.04, 4.0), Some((10, 10)));
        assert_eq!(g.pixel_of(-1.0, 1.0), None);
        let (x, y) = g.pixel_center(10, 10);
        assert!((x - 1.0).abs() < 1e-12 && (y - 4.0).abs() < 1e-12);
        assert_eq!(g.pixel_of(x, y), Some((10, 10)));
    }

    #[test]
    fn crop_follows_the_pose() {
        let raster = RasterGeometry {
            width: 200,
            height: 200,
            resolution: 0.5,
        };
        // Class 0 where global x > 50.
        let bits = |c: u32, _r: u32| u8::from(c as f64 * 0.5 > 50.0);
        let grid = BevGrid {
            x_min: -4.0,
            x_max: 4.0,
            y_min: -4.0,
            y_max: 4.0,
            resolution: 1.0,
        };
        // LiDAR at global (50, 50) looking along +x: cells with x > 0 have class 0.
        let pose = Isometry3::translation(50.0, 50.0, 0.0);
        let m = crop(&grid, &pose, &raster, bits);
        let (nx, ny) = (grid.nx(), grid.ny());
        for i in 0..nx {
            let want = u8::from(grid.center(i, 0).0 > 0.0);
            assert_eq!(m.data[i * ny], want, "row {i}");
        }
        assert!(m.data[nx * ny..].iter().all(|&v| v == 0));
    }
}
