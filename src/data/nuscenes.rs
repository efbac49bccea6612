//! Read a dataset in the nuScenes layout — ours or a real nuScenes download (v1.0-mini,
//! v1.0-trainval, ...) — as [`Frame`]s.
//!
//! - Samples are ordered scene by scene (scene table order), following each scene's
//!   `first_sample_token` / `next` chain. Only key frames are read (no sweeps).
//! - Points: the LIDAR_TOP `.pcd.bin` (float32 x, y, z, intensity, ring) in the LiDAR frame.
//! - Cameras: every camera key frame of the sample, JPEG-decoded; `cam_to_lidar` goes
//!   camera -> ego (camera time) -> global -> ego (LiDAR time) -> LiDAR, as BEVFusion does.
//! - Annotations: boxes in the LiDAR frame; categories mapped to the ten detection classes
//!   like the devkit (others, e.g. `static_object.bicycle_rack`, are left out); velocity
//!   computed like the devkit's `box_velocity` (NaN where unknown); attribute name,
//!   visibility bin and `num_lidar_pts` from the tables.
//! - Map: with [`NuScenesDataset::with_map_grid`], our six-class rasters
//!   (`maps/bev/index.json`, written by `gen-data`) are cropped into the LiDAR frame. A real
//!   nuScenes download has no such rasters (its vector map expansion is not read), so
//!   `Frame::map` is `None` there.
//!
//! Errors name the file and the record token.

use crate::classes::detection_class_index;
use crate::data::dataset::Dataset;
use crate::data::frame::{Annotation, CameraCalib, CameraFrame, Frame, Points, POINT_DIMS};
use crate::data::map_raster::{self, LoadedRaster, RasterGeometry, RasterIndex};
use crate::data::nuscenes_tables::{category_to_detection_name, NuScenesTables};
use crate::data::records::{devkit_velocity, iso_from_record, record_box_to_lidar, ChainPoint};
use crate::geometry::BevGrid;
use anyhow::{bail, Context, Result};
use nalgebra::{Isometry3, Matrix3};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Bytes per point in a nuScenes `.pcd.bin`.
pub const PCD_POINT_BYTES: usize = POINT_DIMS * 4;

/// Token -> row index of one table, with errors naming the table.
#[derive(Debug, Default)]
struct Index {
    table: &'static str,
    map: HashMap<String, usize>,
}

impl Index {
    fn new<'a>(table: &'static str, tokens: impl Iterator<Item = &'a str>) -> Self {
        Index {
            table,
            map: tokens
                .enumerate()
                .map(|(i, t)| (t.to_string(), i))
                .collect(),
        }
    }
    fn get(&self, token: &str, referrer: &str) -> Result<usize> {
        self.map.get(token).copied().with_context(|| {
            format!(
                "table `{}` has no record with token `{token}` (referenced by {referrer})",
                self.table
            )
        })
    }
}

/// A nuScenes-layout dataset on disk.
pub struct NuScenesDataset {
    root: PathBuf,
    version: String,
    tables: NuScenesTables,
    /// Row indices into `tables.sample`, in scene order.
    samples: Vec<usize>,
    /// Key-frame sample_data rows per sample row.
    sample_data: Vec<Vec<usize>>,
    /// Annotation rows per sample row.
    annotations: Vec<Vec<usize>>,
    sample_idx: Index,
    ann_idx: Index,
    ego_idx: Index,
    cs_idx: Index,
    sensor_idx: Index,
    instance_idx: Index,
    category_idx: Index,
    attribute_idx: Index,
    visibility_idx: Index,
    scene_idx: Index,
    map_grid: Option<BevGrid>,
    raster_index: Option<RasterIndex>,
    rasters: HashMap<String, OnceLock<Result<Arc<LoadedRaster>, String>>>,
    lidar_channel: String,
    /// Camera channels in the order frames list them.
    camera_channels: Vec<String>,
}

fn camera_order(name: &str) -> usize {
    [
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_FRONT_LEFT",
        "CAM_BACK",
        "CAM_BACK_LEFT",
        "CAM_BACK_RIGHT",
    ]
    .iter()
    .position(|c| *c == name)
    .unwrap_or(usize::MAX)
}

impl NuScenesDataset {
    /// Open `<dataroot>/<version>/` (e.g. `v1.0-mini`).
    pub fn open(dataroot: impl AsRef<Path>, version: &str) -> Result<Self> {
        let root = dataroot.as_ref().to_path_buf();
        let tables = NuScenesTables::load(&root, version)?;
        let t = &tables;
        let sample_idx = Index::new("sample", t.sample.iter().map(|r| r.token.as_str()));
        let ann_idx = Index::new(
            "sample_annotation",
            t.sample_annotation.iter().map(|r| r.token.as_str()),
        );
        let ego_idx = Index::new("ego_pose", t.ego_pose.iter().map(|r| r.token.as_str()));
        let cs_idx = Index::new(
            "calibrated_sensor",
            t.calibrated_sensor.iter().map(|r| r.token.as_str()),
        );
        let sensor_idx = Index::new("sensor", t.sensor.iter().map(|r| r.token.as_str()));
        let instance_idx = Index::new("instance", t.instance.iter().map(|r| r.token.as_str()));
        let category_idx = Index::new("category", t.category.iter().map(|r| r.token.as_str()));
        let attribute_idx = Index::new("attribute", t.attribute.iter().map(|r| r.token.as_str()));
        let visibility_idx =
            Index::new("visibility", t.visibility.iter().map(|r| r.token.as_str()));
        let scene_idx = Index::new("scene", t.scene.iter().map(|r| r.token.as_str()));

        // Samples in scene order.
        let mut samples = Vec::with_capacity(t.sample.len());
        for sc in &t.scene {
            let mut tok = sc.first_sample_token.clone();
            let mut guard = 0usize;
            while !tok.is_empty() {
                let i = sample_idx.get(&tok, &format!("scene `{}`", sc.token))?;
                samples.push(i);
                tok = t.sample[i].next.clone();
                guard += 1;
                if guard > t.sample.len() {
                    bail!(
                        "scene `{}`: the sample chain loops (sample `{tok}`)",
                        sc.token
                    );
                }
            }
        }

        // Key-frame sample_data and annotations per sample.
        let mut sample_data = vec![Vec::new(); t.sample.len()];
        let mut lidar_channel = None;
        let mut cams: Vec<String> = Vec::new();
        for (i, sd) in t.sample_data.iter().enumerate() {
            if !sd.is_key_frame {
                continue;
            }
            let s = sample_idx.get(&sd.sample_token, &format!("sample_data `{}`", sd.token))?;
            sample_data[s].push(i);
            let cs = &t.calibrated_sensor[cs_idx.get(
                &sd.calibrated_sensor_token,
                &format!("sample_data `{}`", sd.token),
            )?];
            let sensor = &t.sensor[sensor_idx.get(
                &cs.sensor_token,
                &format!("calibrated_sensor `{}`", cs.token),
            )?];
            match sensor.modality.as_str() {
                "lidar" if lidar_channel.is_none() => lidar_channel = Some(sensor.channel.clone()),
                "camera" if !cams.contains(&sensor.channel) => cams.push(sensor.channel.clone()),
                _ => {}
            }
        }
        cams.sort_by_key(|c| (camera_order(c), c.clone()));
        let mut annotations = vec![Vec::new(); t.sample.len()];
        for (i, a) in t.sample_annotation.iter().enumerate() {
            let s = sample_idx.get(&a.sample_token, &format!("sample_annotation `{}`", a.token))?;
            annotations[s].push(i);
        }

        // Our six-class rasters, if present.
        let index_path = root.join(map_raster::INDEX_PATH);
        let raster_index: Option<RasterIndex> = if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .with_context(|| format!("reading {}", index_path.display()))?;
            let idx: RasterIndex = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", index_path.display()))?;
            if idx.format != map_raster::FORMAT {
                bail!(
                    "{}: unknown map raster format `{}` (expected `{}`)",
                    index_path.display(),
                    idx.format,
                    map_raster::FORMAT
                );
            }
            Some(idx)
        } else {
            None
        };
        let rasters = raster_index
            .as_ref()
            .map(|r| {
                r.logs
                    .keys()
                    .map(|k| (k.clone(), OnceLock::new()))
                    .collect()
            })
            .unwrap_or_default();

        Ok(NuScenesDataset {
            root,
            version: version.to_string(),
            samples,
            sample_data,
            annotations,
            sample_idx,
            ann_idx,
            ego_idx,
            cs_idx,
            sensor_idx,
            instance_idx,
            category_idx,
            attribute_idx,
            visibility_idx,
            scene_idx,
            map_grid: None,
            raster_index,
            rasters,
            lidar_channel: lidar_channel.unwrap_or_else(|| "LIDAR_TOP".into()),
            camera_channels: cams,
            tables,
        })
    }

    /// Crop the six-class map into every frame on this grid (when the dataset has rasters).
    pub fn with_map_grid(mut self, grid: BevGrid) -> Self {
        self.map_grid = Some(grid);
        self
    }

    /// The map grid the dataset's generator used (from `maps/bev/index.json`), if any.
    pub fn default_map_grid(&self) -> Option<BevGrid> {
        self.raster_index.as_ref().and_then(|r| r.default_grid)
    }

    /// Whether the dataset carries six-class map rasters.
    pub fn has_maps(&self) -> bool {
        self.raster_index.is_some()
    }

    pub fn tables(&self) -> &NuScenesTables {
        &self.tables
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Index of a sample token in scene order.
    pub fn index_of(&self, sample_token: &str) -> Option<usize> {
        let row = self.sample_idx.map.get(sample_token)?;
        self.samples.iter().position(|r| r == row)
    }

    fn sensor_of(
        &self,
        sd: usize,
    ) -> Result<(
        &crate::data::nuscenes_tables::CalibratedSensor,
        &crate::data::nuscenes_tables::Sensor,
    )> {
        let t = &self.tables;
        let rec = &t.sample_data[sd];
        let cs = &t.calibrated_sensor[self.cs_idx.get(
            &rec.calibrated_sensor_token,
            &format!("sample_data `{}`", rec.token),
        )?];
        let sensor = &t.sensor[self.sensor_idx.get(
            &cs.sensor_token,
            &format!("calibrated_sensor `{}`", cs.token),
        )?];
        Ok((cs, sensor))
    }

    fn ego_of(&self, sd: usize) -> Result<Isometry3<f64>> {
        let rec = &self.tables.sample_data[sd];
        let e = &self.tables.ego_pose[self
            .ego_idx
            .get(&rec.ego_pose_token, &format!("sample_data `{}`", rec.token))?];
        Ok(iso_from_record(e.translation, e.rotation))
    }

    fn intrinsics(cs: &crate::data::nuscenes_tables::CalibratedSensor) -> Result<Matrix3<f64>> {
        let k = &cs.camera_intrinsic;
        if k.len() != 3 || k.iter().any(|r| r.len() != 3) {
            bail!(
                "calibrated_sensor `{}`: camera_intrinsic must be 3x3 (got {} rows)",
                cs.token,
                k.len()
            );
        }
        Ok(Matrix3::new(
            k[0][0], k[0][1], k[0][2], k[1][0], k[1][1], k[1][2], k[2][0], k[2][1], k[2][2],
        ))
    }

    fn raster(&self, log_token: &str) -> Result<Option<Arc<LoadedRaster>>> {
        let (Some(index), Some(cell)) = (&self.raster_index, self.rasters.get(log_token)) else {
            return Ok(None);
        };
        let entry = &index.logs[log_token];
        let loaded = cell.get_or_init(|| {
            let path = self.root.join(&entry.filename);
            let img = image::open(&path)
                .map_err(|e| format!("{}: {e} (map raster of log `{log_token}`)", path.display()))?
                .to_luma8();
            if img.width() != entry.width || img.height() != entry.height {
                return Err(format!(
                    "{}: {}x{} pixels but index.json says {}x{} (log `{log_token}`)",
                    path.display(),
                    img.width(),
                    img.height(),
                    entry.width,
                    entry.height
                ));
            }
            Ok(Arc::new(LoadedRaster {
                geometry: RasterGeometry {
                    width: entry.width,
                    height: entry.height,
                    resolution: index.resolution,
                },
                pixels: img,
            }))
        });
        loaded.clone().map(Some).map_err(anyhow::Error::msg)
    }

    /// Read the frame of sample row `row`.
    fn read_frame(&self, row: usize) -> Result<Frame> {
        let t = &self.tables;
        let sample = &t.sample[row];
        let mut lidar_sd = None;
        let mut cam_sd: Vec<(String, usize)> = Vec::new();
        for &sd in &self.sample_data[row] {
            let (_, sensor) = self.sensor_of(sd)?;
            if sensor.modality == "lidar" && sensor.channel == self.lidar_channel {
                lidar_sd = Some(sd);
            } else if sensor.modality == "camera" {
                cam_sd.push((sensor.channel.clone(), sd));
            }
        }
        cam_sd.sort_by_key(|(c, _)| (camera_order(c), c.clone()));

        // Reference frame: the LiDAR's (or, without LiDAR, the first camera's ego pose).
        let (lidar_to_ego, ego_to_global, timestamp_us, points) = match lidar_sd {
            Some(sd) => {
                let (cs, _) = self.sensor_of(sd)?;
                let rec = &t.sample_data[sd];
                let pts = read_pcd_bin(&self.root.join(&rec.filename))
                    .with_context(|| format!("sample_data `{}`", rec.token))?;
                (
                    iso_from_record(cs.translation, cs.rotation),
                    self.ego_of(sd)?,
                    rec.timestamp,
                    Some(pts),
                )
            }
            None => {
                let ego = match cam_sd.first() {
                    Some(&(_, sd)) => self.ego_of(sd)?,
                    None => bail!(
                        "sample `{}` has neither a LiDAR nor a camera key frame",
                        sample.token
                    ),
                };
                (Isometry3::identity(), ego, sample.timestamp, None)
            }
        };
        let global_to_lidar = (ego_to_global * lidar_to_ego).inverse();

        let mut cameras = Vec::with_capacity(cam_sd.len());
        for (channel, sd) in cam_sd {
            let rec = &t.sample_data[sd];
            let (cs, _) = self.sensor_of(sd)?;
            let cam_to_ego = iso_from_record(cs.translation, cs.rotation);
            let cam_ego = self.ego_of(sd)?;
            let cam_to_lidar = if cam_ego == ego_to_global {
                lidar_to_ego.inverse() * cam_to_ego
            } else {
                global_to_lidar * cam_ego * cam_to_ego
            };
            let path = self.root.join(&rec.filename);
            let bytes = std::fs::read(&path).with_context(|| {
                format!("reading {} (sample_data `{}`)", path.display(), rec.token)
            })?;
            let img = image::load_from_memory(&bytes)
                .with_context(|| {
                    format!("decoding {} (sample_data `{}`)", path.display(), rec.token)
                })?
                .to_rgb8();
            let (w, h) = if rec.width > 0 && rec.height > 0 {
                (rec.width, rec.height)
            } else {
                (img.width(), img.height())
            };
            if img.width() != w || img.height() != h {
                bail!(
                    "{}: image is {}x{} but sample_data `{}` says {w}x{h}",
                    path.display(),
                    img.width(),
                    img.height(),
                    rec.token
                );
            }
            cameras.push(CameraFrame {
                calib: CameraCalib {
                    name: channel,
                    width: w,
                    height: h,
                    intrinsics: Self::intrinsics(cs)?,
                    cam_to_lidar,
                },
                image: Some(super::share(img)),
                timestamp_us: rec.timestamp,
            });
        }

        // Annotations.
        let mut annotations = Vec::new();
        for &ai in &self.annotations[row] {
            let a = &t.sample_annotation[ai];
            let who = format!("sample_annotation `{}`", a.token);
            let inst = &t.instance[self.instance_idx.get(&a.instance_token, &who)?];
            let cat = &t.category[self
                .category_idx
                .get(&inst.category_token, &format!("instance `{}`", inst.token))?];
            let Some(class) = category_to_detection_name(&cat.name) else {
                continue;
            };
            let label = detection_class_index(class).expect("detection classes agree");
            let point =
                |ann: &crate::data::nuscenes_tables::SampleAnnotation| -> Result<ChainPoint> {
                    let s = &t.sample[self.sample_idx.get(
                        &ann.sample_token,
                        &format!("sample_annotation `{}`", ann.token),
                    )?];
                    Ok(ChainPoint {
                        translation: ann.translation,
                        timestamp_us: s.timestamp,
                    })
                };
            let prev = if a.prev.is_empty() {
                None
            } else {
                Some(point(
                    &t.sample_annotation[self.ann_idx.get(&a.prev, &who)?],
                )?)
            };
            let next = if a.next.is_empty() {
                None
            } else {
                Some(point(
                    &t.sample_annotation[self.ann_idx.get(&a.next, &who)?],
                )?)
            };
            let v = devkit_velocity(point(a)?, prev, next);
            let bbox = record_box_to_lidar(
                a.translation,
                a.size,
                a.rotation,
                [v[0], v[1]],
                label,
                &global_to_lidar,
            );
            let attribute = match a.attribute_tokens.first() {
                Some(tok) => t.attribute[self.attribute_idx.get(tok, &who)?].name.clone(),
                None => String::new(),
            };
            let visibility = if a.visibility_token.is_empty() {
                0
            } else {
                let v = &t.visibility[self.visibility_idx.get(&a.visibility_token, &who)?];
                match v.level.as_str() {
                    "v0-40" => 1,
                    "v40-60" => 2,
                    "v60-80" => 3,
                    "v80-100" => 4,
                    other => bail!(
                        "visibility `{}`: unknown level `{other}` (referenced by {who})",
                        v.token
                    ),
                }
            };
            annotations.push(Annotation {
                bbox,
                instance_token: a.instance_token.clone(),
                num_lidar_pts: a.num_lidar_pts.max(0) as u32,
                attribute,
                visibility,
            });
        }

        // Map crop.
        let map = match self.map_grid {
            Some(grid) => {
                let scene = &t.scene[self
                    .scene_idx
                    .get(&sample.scene_token, &format!("sample `{}`", sample.token))?];
                match self.raster(&scene.log_token)? {
                    Some(r) => Some(map_raster::crop(
                        &grid,
                        &(ego_to_global * lidar_to_ego),
                        &r.geometry,
                        |c, rw| r.bits_at(c, rw),
                    )),
                    None => None,
                }
            }
            None => None,
        };

        Ok(Frame {
            token: sample.token.clone(),
            scene_token: sample.scene_token.clone(),
            timestamp_us,
            lidar_to_ego,
            ego_to_global,
            points,
            cameras,
            annotations,
            map,
        })
    }
}

/// Read a nuScenes `.pcd.bin` (float32 x, y, z, intensity, ring).
pub fn read_pcd_bin(path: &Path) -> Result<Points> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() % PCD_POINT_BYTES != 0 {
        bail!(
            "{}: size {} bytes is not a multiple of {PCD_POINT_BYTES} (5 float32 per point); the file is truncated or not a nuScenes .pcd.bin",
            path.display(),
            bytes.len()
        );
    }
    let data = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Points { data })
}

impl Dataset for NuScenesDataset {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn get(&self, index: usize) -> Result<Frame> {
        let row = *self.samples.get(index).with_context(|| {
            format!(
                "sample index {index} out of range ({} samples)",
                self.samples.len()
            )
        })?;
        self.read_frame(row).with_context(|| {
            format!(
                "reading sample `{}` of {}",
                self.tables.sample[row].token,
                self.root.join(&self.version).display()
            )
        })
    }
    fn token(&self, index: usize) -> String {
        self.samples
            .get(index)
            .map(|&r| self.tables.sample[r].token.clone())
            .unwrap_or_default()
    }
    fn cameras(&self) -> Vec<CameraCalib> {
        // The rig of the first sample (camera poses without ego motion).
        let Some(&row) = self.samples.first() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let lidar = self.sample_data[row].iter().copied().find(|&sd| {
            self.sensor_of(sd)
                .map(|(_, s)| s.modality == "lidar")
                .unwrap_or(false)
        });
        let lidar_to_ego = lidar
            .and_then(|sd| self.sensor_of(sd).ok())
            .map(|(cs, _)| iso_from_record(cs.translation, cs.rotation))
            .unwrap_or_else(Isometry3::identity);
        for ch in &self.camera_channels {
            for &sd in &self.sample_data[row] {
                if let Ok((cs, s)) = self.sensor_of(sd) {
                    if &s.channel == ch {
                        let rec = &self.tables.sample_data[sd];
                        if let Ok(k) = Self::intrinsics(cs) {
                            out.push(CameraCalib {
                                name: ch.clone(),
                                width: rec.width,
                                height: rec.height,
                                intrinsics: k,
                                cam_to_lidar: lidar_to_ego.inverse()
                                    * iso_from_record(cs.translation, cs.rotation),
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// The `v1.0-*` folders under a dataroot.
pub fn versions(dataroot: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dataroot)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("v1.0-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
