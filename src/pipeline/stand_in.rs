//! [`StandInNetwork`]: a cheap, deterministic, non-learned [`Network`] for exercising the
//! machinery around the model (ROS node synchronisation, busy handling, malformed-input
//! handling) in tests without paying for a forward pass. It is never used by the product
//! binaries, which always load a checkpoint.
//!
//! Its outputs depend on every input so that conversion bugs show up as different
//! detections: one box per 4 m BEV cell holding at least 8 LiDAR points (at the points'
//! centroid, scored by the count) and one box 10 m along each present camera's optical axis
//! (scored by the image's mean brightness); segmentation layer `c` is the point density of a
//! cell scaled by `1 / (c + 1)`.

use super::network::{Network, NetworkInfo, NetworkOutput};
use super::output::StageTimings;
use crate::classes::MAP_CLASSES;
use crate::data::{Frame, POINT_DIMS};
use crate::geometry::{BevGrid, Box3D};
use crate::model::ModalityMask;
use nalgebra::Point3;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct StandInNetwork {
    num_cameras: usize,
    grid: BevGrid,
    /// Extra time spent "in the network" per frame (to make the node busy in tests).
    pub delay: Duration,
}

impl StandInNetwork {
    pub fn new(num_cameras: usize) -> Self {
        Self {
            num_cameras,
            grid: BevGrid { x_min: -51.2, x_max: 51.2, y_min: -51.2, y_max: 51.2, resolution: 0.8 },
            delay: Duration::ZERO,
        }
    }
}

impl Network for StandInNetwork {
    fn info(&self) -> NetworkInfo {
        NetworkInfo {
            name: "stand-in (non-learned test network)".into(),
            device: "cpu".into(),
            num_cameras: Some(self.num_cameras),
            seg_grid: Some(self.grid),
            max_points: None,
            input_size: None,
        }
    }

    fn infer(&mut self, frame: &Frame, mask: ModalityMask, t: &mut StageTimings) -> anyhow::Result<NetworkOutput> {
        let mut boxes = Vec::new();
        let (nx, ny) = (self.grid.nx(), self.grid.ny());
        let mut density = vec![0f32; nx * ny];
        let t0 = Instant::now();
        let mut cells: BTreeMap<(i64, i64), (usize, [f64; 3])> = BTreeMap::new();
        if mask.lidar {
            if let Some(p) = &frame.points {
                for r in p.data.chunks_exact(POINT_DIMS) {
                    let (x, y, z) = (r[0] as f64, r[1] as f64, r[2] as f64);
                    if let Some((i, j)) = self.grid.cell(x, y) {
                        density[i * ny + j] += 1.0;
                    }
                    let key = ((x / 4.0).floor() as i64, (y / 4.0).floor() as i64);
                    let e = cells.entry(key).or_insert((0, [0.0; 3]));
                    e.0 += 1;
                    e.1[0] += x;
                    e.1[1] += y;
                    e.1[2] += z;
                }
            }
        }
        t.voxelize += super::frame_pipeline::ms(t0);
        let t1 = Instant::now();
        for (n, s) in cells.values() {
            if *n >= 8 {
                let c = [s[0] / *n as f64, s[1] / *n as f64, s[2] / *n as f64];
                let score = *n as f64 / (*n as f64 + 20.0);
                boxes.push(Box3D { center: c, size: [1.9, 4.5, 1.6], yaw: 0.0, velocity: [0.0, 0.0], label: 0, score });
            }
        }
        t.lidar += super::frame_pipeline::ms(t1);
        let t2 = Instant::now();
        if mask.camera {
            for cam in &frame.cameras {
                if let Some(img) = &cam.image {
                    let sum: u64 = img.as_raw().iter().map(|&v| v as u64).sum();
                    let mean = sum as f64 / img.as_raw().len().max(1) as f64;
                    let p = cam.calib.cam_to_lidar * Point3::new(0.0, 0.0, 10.0);
                    let score = 0.2 + 0.6 * mean / 255.0;
                    boxes.push(Box3D {
                        center: [p.x, p.y, p.z],
                        size: [0.7, 0.7, 1.8],
                        yaw: 0.0,
                        velocity: [0.0, 0.0],
                        label: 8,
                        score,
                    });
                }
            }
        }
        t.camera += super::frame_pipeline::ms(t2);
        let t3 = Instant::now();
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut probs = Vec::with_capacity(MAP_CLASSES.len() * nx * ny);
        for c in 0..MAP_CLASSES.len() {
            probs.extend(density.iter().map(|d| (d / (d + 4.0)) / (c as f32 + 1.0)));
        }
        t.heads += super::frame_pipeline::ms(t3);
        Ok(NetworkOutput { boxes, seg_probs: Some(probs) })
    }
}
