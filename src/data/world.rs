//! The synthetic world as a dataset: `SyntheticWorld` generates any frame of any scene on
//! demand (in memory, no disk), implements [`Dataset`], and carries everything the nuScenes
//! writer needs (tokens, global records, prev/next links, visibility, per-camera pixels).
//!
//! A dataset is `(seed, scenes, frames per scene, rate, rig)`. Scene `i` is a pure function
//! of `(seed, i)` (see `scene.rs`); its frames are rendered with the rig's sensors.
//! **Seeds are the train / held-out split**: generate training data with one seed and
//! evaluation data with another; no scene of one appears in the other.
//!
//! Annotation rules (as nuScenes): an object is annotated in a frame when its centre lies
//! within the rig's `annotation_range` of the LiDAR (horizontally), whatever its visibility
//! or LiDAR point count; consecutive annotations of an object are linked (prev/next) even
//! across gaps; velocities come from those links exactly as the devkit computes them.

use crate::data::camera_sim;
use crate::data::dataset::Dataset;
use crate::data::frame::{Annotation, CameraCalib, CameraFrame, Frame};
use crate::data::lidar_sim;
use crate::data::map_raster;
use crate::data::records::{
    devkit_velocity, iso_from_record, record_box_to_lidar, visibility_bin, ChainPoint,
};
use crate::data::rig::Rig;
use crate::data::scene::{ConditionMix, Scene};
use crate::data::tokens::{token, Hasher128};
use crate::geometry::BevGrid;
use anyhow::Result;
use nalgebra::Isometry3;
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

/// What to generate.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub seed: u64,
    pub scenes: usize,
    pub frames_per_scene: usize,
    /// Key-frame rate (Hz).
    pub hz: f64,
    pub rig: Rig,
    /// Grid of `Frame::map` (None: no map in frames).
    pub map_grid: Option<BevGrid>,
    pub conditions: ConditionMix,
}

impl WorldConfig {
    /// `scenes` scenes of 20 frames at 2 Hz (nuScenes key-frame rate), the rig's map grid.
    pub fn new(seed: u64, scenes: usize, rig: Rig) -> Self {
        let map_grid = Some(rig.map_grid);
        WorldConfig {
            seed,
            scenes,
            frames_per_scene: 20,
            hz: 2.0,
            rig,
            map_grid,
            conditions: ConditionMix::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.scenes == 0 {
            anyhow::bail!("--scenes must be at least 1");
        }
        if !(2..=400).contains(&self.frames_per_scene) {
            anyhow::bail!(
                "frames per scene must be in 2..=400 (got {})",
                self.frames_per_scene
            );
        }
        if !(self.hz >= 0.5 && self.hz <= 20.0) {
            anyhow::bail!("frame rate must be in 0.5..=20 Hz (got {})", self.hz);
        }
        Ok(())
    }
}

/// One annotation with the bookkeeping the nuScenes tables need.
#[derive(Clone, Debug)]
pub struct SimAnnotation {
    pub token: String,
    pub instance_token: String,
    /// Actor index in the scene.
    pub actor: usize,
    pub category: &'static str,
    pub attribute: &'static str,
    /// Global-frame record values (sample_annotation.json).
    pub translation: [f64; 3],
    pub size: [f64; 3],
    pub rotation: [f64; 4],
    /// Tokens of the instance's previous/next annotation ("" at the ends).
    pub prev: String,
    pub next: String,
    pub num_lidar_pts: u32,
    pub visibility: u8,
    /// Per camera (rig order): (visible pixels, pixels without occluders).
    pub camera_pixels: Vec<(u32, u32)>,
}

/// A generated frame and its extras.
#[derive(Clone, Debug)]
pub struct SimFrame {
    pub frame: Frame,
    /// Parallel to `frame.annotations`.
    pub annotations: Vec<SimAnnotation>,
    pub scene: usize,
    pub index_in_scene: usize,
    /// Per camera, the row-major actor index of every pixel (`u32::MAX` for none), if asked.
    pub camera_owners: Option<Vec<Vec<u32>>>,
}

struct SceneEntry {
    scene: Arc<Scene>,
    /// present[actor][frame]: annotated in that frame.
    present: Vec<Vec<bool>>,
}

/// The in-memory synthetic dataset.
pub struct SyntheticWorld {
    cfg: WorldConfig,
    scenes: Vec<OnceLock<Arc<SceneEntry>>>,
    calibs: Vec<CameraCalib>,
}

/// Index of a channel in token derivations: 0 = LiDAR, 1.. = cameras in rig order.
pub const LIDAR_CHANNEL: u64 = 0;

impl SyntheticWorld {
    pub fn new(cfg: WorldConfig) -> Result<Self> {
        cfg.validate()?;
        let calibs = cfg.rig.camera_calibs();
        let scenes = (0..cfg.scenes).map(|_| OnceLock::new()).collect();
        Ok(SyntheticWorld {
            cfg,
            scenes,
            calibs,
        })
    }

    pub fn config(&self) -> &WorldConfig {
        &self.cfg
    }
    pub fn num_scenes(&self) -> usize {
        self.cfg.scenes
    }
    pub fn frames_per_scene(&self) -> usize {
        self.cfg.frames_per_scene
    }

    fn entry(&self, i: usize) -> Arc<SceneEntry> {
        self.scenes[i]
            .get_or_init(|| {
                let c = &self.cfg;
                let scene = Scene::generate(c.seed, i, c.frames_per_scene, c.hz, &c.conditions);
                let lt = c.rig.lidar.translation;
                let present = (0..scene.actors.len())
                    .map(|a| {
                        (0..c.frames_per_scene)
                            .map(|k| {
                                let t = scene.time(k);
                                let [ex, ey] = scene.ego_at(t);
                                let ([x, y, _], _) = scene.actor_pose(a, t);
                                (x - ex - lt[0]).hypot(y - ey - lt[1]) <= c.rig.annotation_range
                            })
                            .collect()
                    })
                    .collect();
                Arc::new(SceneEntry {
                    scene: Arc::new(scene),
                    present,
                })
            })
            .clone()
    }

    /// The procedural scene `i` (generated on first use, then cached).
    pub fn scene(&self, i: usize) -> Arc<Scene> {
        self.entry(i).scene.clone()
    }

    // ---- tokens -------------------------------------------------------------------------
    pub fn sample_token(&self, scene: usize, k: usize) -> String {
        token("sample", self.cfg.seed, &[scene as u64, k as u64])
    }
    pub fn scene_token(&self, scene: usize) -> String {
        token("scene", self.cfg.seed, &[scene as u64])
    }
    pub fn log_token(&self, scene: usize) -> String {
        token("log", self.cfg.seed, &[scene as u64])
    }
    pub fn map_token(&self, scene: usize) -> String {
        token("map", self.cfg.seed, &[scene as u64])
    }
    pub fn instance_token(&self, scene: usize, actor: usize) -> String {
        token("instance", self.cfg.seed, &[scene as u64, actor as u64])
    }
    pub fn annotation_token(&self, scene: usize, k: usize, actor: usize) -> String {
        token(
            "sample_annotation",
            self.cfg.seed,
            &[scene as u64, k as u64, actor as u64],
        )
    }
    pub fn sample_data_token(&self, scene: usize, k: usize, channel: u64) -> String {
        token(
            "sample_data",
            self.cfg.seed,
            &[scene as u64, k as u64, channel],
        )
    }
    pub fn ego_pose_token(&self, scene: usize, k: usize, channel: u64) -> String {
        token(
            "ego_pose",
            self.cfg.seed,
            &[scene as u64, k as u64, channel],
        )
    }
    pub fn calibrated_sensor_token(&self, channel: u64) -> String {
        token("calibrated_sensor", self.cfg.seed, &[channel])
    }
    /// nuScenes-style scene name; unique across seeds.
    pub fn scene_name(&self, scene: usize) -> String {
        format!("scene-s{}-{:04}", self.cfg.seed, scene)
    }
    /// Log file name (also the prefix of sample file names).
    pub fn log_name(&self, scene: usize) -> String {
        format!("altermoma-s{}-{:04}", self.cfg.seed, scene)
    }

    // ---- per-scene bookkeeping ------------------------------------------------------------
    /// Frames in which each actor is annotated.
    pub fn annotated(&self, scene: usize, actor: usize, k: usize) -> bool {
        self.entry(scene).present[actor][k]
    }
    /// Number of actors in a scene.
    pub fn num_actors(&self, scene: usize) -> usize {
        self.entry(scene).present.len()
    }
    /// Actors annotated at least once in a scene, with their first and last frame and count.
    pub fn instances(&self, scene: usize) -> Vec<(usize, usize, usize, usize)> {
        let e = self.entry(scene);
        e.present
            .iter()
            .enumerate()
            .filter_map(|(a, p)| {
                let first = p.iter().position(|&b| b)?;
                let last = p.iter().rposition(|&b| b)?;
                Some((a, first, last, p.iter().filter(|&&b| b).count()))
            })
            .collect()
    }

    /// Global translation of an actor's box at frame `k` (the record value).
    pub fn global_translation(scene: &Scene, actor: usize, k: usize) -> [f64; 3] {
        let ([x, y, z], _) = scene.actor_pose(actor, scene.time(k));
        let [gx, gy] = scene.layout_to_global(x, y);
        [gx, gy, z]
    }

    /// The LiDAR's global pose at frame `k`, built from the records as a reader would.
    pub fn poses(&self, scene: &Scene, k: usize) -> (Isometry3<f64>, Isometry3<f64>) {
        let (t, q) = scene.ego_pose_record(k);
        let ego_to_global = iso_from_record(t, q);
        let lidar_to_ego = iso_from_record(self.cfg.rig.lidar.translation, [1.0, 0.0, 0.0, 0.0]);
        (lidar_to_ego, ego_to_global)
    }

    /// Generate frame `k` of scene `scene`. With `keep_owners`, also return every camera's
    /// per-pixel owner buffer.
    pub fn generate(&self, scene_idx: usize, k: usize, keep_owners: bool) -> SimFrame {
        let entry = self.entry(scene_idx);
        let scene = &entry.scene;
        let rig = &self.cfg.rig;
        let (noise_seed, _) = Hasher128::new()
            .str("frame-noise")
            .u64(self.cfg.seed)
            .u64(scene_idx as u64)
            .u64(k as u64)
            .finish();
        let snap = scene.snapshot(
            k,
            rig.lidar.translation,
            rig.lidar.max_range.max(130.0),
            noise_seed,
        );
        let n_actors = scene.actors.len();

        let points = lidar_sim::simulate(&rig.lidar, &snap);
        let ts = scene.timestamp_us(k);
        // Cameras render in parallel; results are collected in rig order.
        let renders: Vec<camera_sim::CameraRender> = self
            .calibs
            .par_iter()
            .enumerate()
            .map(|(ci, calib)| camera_sim::render(calib, &snap, n_actors, ci, keep_owners))
            .collect();
        let mut cameras = Vec::with_capacity(self.calibs.len());
        let mut owners = Vec::new();
        let mut coverage: Vec<Vec<(u32, u32)>> = Vec::new();
        for (calib, r) in self.calibs.iter().zip(renders) {
            coverage.push(r.coverage);
            if let Some(o) = r.owners {
                owners.push(o);
            }
            cameras.push(CameraFrame {
                calib: calib.clone(),
                image: Some(super::share(r.image)),
                timestamp_us: ts,
            });
        }

        let (lidar_to_ego, ego_to_global) = self.poses(scene, k);
        let global_to_lidar = (ego_to_global * lidar_to_ego).inverse();
        let present = &entry.present;
        let mut sims = Vec::new();
        let mut boxes = Vec::new();
        for (a, actor) in scene.actors.iter().enumerate() {
            if !present[a][k] {
                continue;
            }
            let prev_k = (0..k).rev().find(|&j| present[a][j]);
            let next_k = (k + 1..scene.frames).find(|&j| present[a][j]);
            let cp = |j: usize| ChainPoint {
                translation: Self::global_translation(scene, a, j),
                timestamp_us: scene.timestamp_us(j),
            };
            let v = devkit_velocity(cp(k), prev_k.map(cp), next_k.map(cp));
            let translation = Self::global_translation(scene, a, k);
            let yaw_g = scene.theta + actor.yaw;
            let rotation = [(yaw_g / 2.0).cos(), 0.0, 0.0, (yaw_g / 2.0).sin()];
            let label = actor.variant.class();
            let bbox = record_box_to_lidar(
                translation,
                actor.size,
                rotation,
                [v[0], v[1]],
                label,
                &global_to_lidar,
            );
            let pixels: Vec<(u32, u32)> = coverage.iter().map(|c| c[a]).collect();
            let (vis, tot) = pixels
                .iter()
                .fold((0u64, 0u64), |s, p| (s.0 + p.0 as u64, s.1 + p.1 as u64));
            let visibility = if tot == 0 {
                1
            } else {
                visibility_bin(vis as f64 / tot as f64)
            };
            boxes.push(bbox);
            sims.push(SimAnnotation {
                token: self.annotation_token(scene_idx, k, a),
                instance_token: self.instance_token(scene_idx, a),
                actor: a,
                category: actor.variant.category(),
                attribute: actor.attribute(scene.time(k)),
                translation,
                size: actor.size,
                rotation,
                prev: prev_k
                    .map(|j| self.annotation_token(scene_idx, j, a))
                    .unwrap_or_default(),
                next: next_k
                    .map(|j| self.annotation_token(scene_idx, j, a))
                    .unwrap_or_default(),
                num_lidar_pts: 0,
                visibility,
                camera_pixels: pixels,
            });
        }
        let counts = lidar_sim::count_points_in_boxes(&points, &boxes);
        let mut annotations = Vec::with_capacity(sims.len());
        for ((s, b), n) in sims.iter_mut().zip(boxes).zip(counts) {
            s.num_lidar_pts = n;
            annotations.push(Annotation {
                bbox: b,
                instance_token: s.instance_token.clone(),
                num_lidar_pts: n,
                attribute: s.attribute.to_string(),
                visibility: s.visibility,
            });
        }
        let map = self.cfg.map_grid.map(|g| {
            let l2g = ego_to_global * lidar_to_ego;
            map_raster::crop(&g, &l2g, &scene.raster, |c, r| {
                scene.map_bits_at_pixel(c, r)
            })
        });
        let frame = Frame {
            token: self.sample_token(scene_idx, k),
            scene_token: self.scene_token(scene_idx),
            timestamp_us: ts,
            lidar_to_ego,
            ego_to_global,
            points: Some(points),
            cameras,
            annotations,
            map,
        };
        SimFrame {
            frame,
            annotations: sims,
            scene: scene_idx,
            index_in_scene: k,
            camera_owners: keep_owners.then_some(owners),
        }
    }
}

impl Dataset for SyntheticWorld {
    fn len(&self) -> usize {
        self.cfg.scenes * self.cfg.frames_per_scene
    }
    fn get(&self, index: usize) -> Result<Frame> {
        if index >= self.len() {
            anyhow::bail!(
                "frame index {index} out of range (the synthetic world has {} frames)",
                self.len()
            );
        }
        let f = self.cfg.frames_per_scene;
        Ok(self.generate(index / f, index % f, false).frame)
    }
    fn token(&self, index: usize) -> String {
        let f = self.cfg.frames_per_scene;
        self.sample_token(index / f, index % f)
    }
    fn cameras(&self) -> Vec<CameraCalib> {
        self.calibs.clone()
    }
}
