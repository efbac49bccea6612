//! Write a synthetic dataset in the nuScenes layout:
//!
//! ```text
//! <out>/v1.0-<name>/{attribute,calibrated_sensor,category,ego_pose,instance,log,map,
//!                    sample,sample_annotation,sample_data,scene,sensor,visibility}.json
//! <out>/samples/LIDAR_TOP/<log>__LIDAR_TOP__<timestamp>.pcd.bin   float32 x,y,z,intensity,ring
//! <out>/samples/CAM_*/<log>__CAM_*__<timestamp>.jpg
//! <out>/maps/<map_token>.png            semantic prior (drivable area = 255), devkit MapMask
//! <out>/maps/bev/<log_token>.png        six-class bit raster (see `map_raster.rs`)
//! <out>/maps/bev/index.json
//! ```
//!
//! One log, map and scene per synthetic scene; only key frames (no sweeps); every sensor of
//! a sample shares its timestamp and ego pose (each sample_data still has its own ego_pose
//! record, as in nuScenes). Annotations are in the global frame with `[w, x, y, z]`
//! rotations, linked prev/next per instance.
//!
//! The whole tree is written into a temporary sibling folder and renamed into place at the
//! end, so an interrupted run never leaves a half-written dataset under the final name.
//! Output bytes depend only on the world's configuration: frames are rendered in parallel
//! but written and recorded in a fixed order.

use crate::classes::MAP_CLASSES;
use crate::data::map_raster::{self, RasterEntry, RasterIndex};
use crate::data::nuscenes_tables::*;
use crate::data::records::{rotation_record, ATTRIBUTES, VISIBILITY_LEVELS};
use crate::data::scene::Scene as SynthScene;
use crate::data::tokens::stable_token;
use crate::data::world::{SimFrame, SyntheticWorld, LIDAR_CHANNEL};
use anyhow::{Context, Result};
use image::ImageEncoder;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Categories the synthetic world annotates, with nuScenes descriptions.
pub const CATEGORIES: [(&str, &str); 13] = [
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    ("movable_object.barrier", "Temporary road barrier placed in the scene in order to redirect traffic."),
    ("movable_object.trafficcone", "All types of traffic cone."),
    ("vehicle.bicycle", "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds."),
    ("vehicle.bus.bendy", "Bendy bus subcategory. Annotate each section of the bendy bus individually."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    ("vehicle.car", "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans, mini-vans, SUVs and jeeps."),
    ("vehicle.construction", "Vehicles primarily designed for construction. Typically very slow moving or stationary."),
    ("vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly (at the speed of standard cars) on the road surface."),
    ("vehicle.trailer", "Any vehicle trailer, both for trucks, cars and bikes."),
    ("vehicle.truck", "Vehicles primarily designed to haul cargo including pick-ups, lorrys, trucks and semi-tractors."),
];

/// Counts of what was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteSummary {
    pub scenes: usize,
    pub samples: usize,
    pub annotations: usize,
    pub instances: usize,
    pub lidar_points: usize,
    pub bytes: u64,
    /// Annotations per detection class (`DETECTION_CLASSES` order).
    pub per_class: [usize; 10],
}

fn lidar_file(
    world: &SyntheticWorld,
    scene: &SynthScene,
    s: usize,
    k: usize,
    channel: &str,
) -> String {
    format!(
        "samples/{channel}/{}__{channel}__{}.pcd.bin",
        world.log_name(s),
        scene.timestamp_us(k)
    )
}
fn camera_file(
    world: &SyntheticWorld,
    scene: &SynthScene,
    s: usize,
    k: usize,
    channel: &str,
) -> String {
    format!(
        "samples/{channel}/{}__{channel}__{}.jpg",
        world.log_name(s),
        scene.timestamp_us(k)
    )
}

/// Encode points as a nuScenes `.pcd.bin` (little-endian float32, 5 per point).
pub fn encode_pcd_bin(points: &crate::data::frame::Points) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.data.len() * 4);
    for v in &points.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn encode_jpeg<C: std::ops::Deref<Target = [u8]>>(img: &image::ImageBuffer<image::Rgb<u8>, C>, quality: u8) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    enc.encode_image(img)?;
    Ok(buf)
}

fn encode_png_gray(img: &image::GrayImage) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::L8,
    )?;
    Ok(buf)
}


/// Per-frame records, produced in parallel and merged in order.
struct FrameRecords {
    sample: Sample,
    sample_data: Vec<SampleData>,
    ego_pose: Vec<EgoPose>,
    annotations: Vec<SampleAnnotation>,
    bytes: u64,
    points: usize,
    labels: Vec<usize>,
}

/// Where to write and how.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Version folder name, e.g. `v1.0-synthetic`.
    pub version: String,
    /// Replace an existing output folder.
    pub force: bool,
}

/// Generate and write every frame of `world` under `out`.
pub fn write_nuscenes(
    world: &SyntheticWorld,
    out: &Path,
    opts: &WriteOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<WriteSummary> {
    if !opts.version.starts_with("v1.0-") || opts.version.len() <= 5 || opts.version.contains('/') {
        anyhow::bail!(
            "version folder must look like `v1.0-<name>` (got `{}`)",
            opts.version
        );
    }
    if out.exists() && !opts.force {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !empty {
            anyhow::bail!(
                "{} already exists; choose another --out or pass --force to replace it",
                out.display()
            );
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "dataset".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    let root = tmp.path().to_path_buf();
    let summary = write_tree(world, &root, opts, progress)?;
    // Move into place.
    let tmp_path = tmp.keep();
    if out.exists() {
        std::fs::remove_dir_all(out)
            .with_context(|| format!("removing the old {}", out.display()))?;
    }
    std::fs::rename(&tmp_path, out)
        .with_context(|| format!("renaming {} to {}", tmp_path.display(), out.display()))?;
    Ok(summary)
}

fn write_file(root: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(rel);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_tree(
    world: &SyntheticWorld,
    root: &Path,
    opts: &WriteOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<WriteSummary> {
    let cfg = world.config();
    let rig = &cfg.rig;
    let mut t = NuScenesTables::default();
    let mut summary = WriteSummary::default();

    // Static tables.
    for (name, desc) in CATEGORIES {
        t.category.push(Category {
            token: stable_token("category", name),
            name: name.into(),
            description: desc.into(),
            index: None,
        });
    }
    for (name, desc) in ATTRIBUTES {
        t.attribute.push(Attribute {
            token: stable_token("attribute", name),
            name: name.into(),
            description: desc.into(),
        });
    }
    for (tok, level, desc) in VISIBILITY_LEVELS {
        t.visibility.push(Visibility {
            token: tok.into(),
            level: level.into(),
            description: desc.into(),
        });
    }
    let mut channels: Vec<(String, &str)> = vec![(rig.lidar.channel.clone(), "lidar")];
    channels.extend(rig.cameras.iter().map(|c| (c.name.clone(), "camera")));
    for (ch, (name, modality)) in channels.iter().enumerate() {
        let sensor_token = stable_token("sensor", name);
        t.sensor.push(Sensor {
            token: sensor_token.clone(),
            channel: name.clone(),
            modality: modality.to_string(),
        });
        let (translation, rotation, intrinsic) = if ch as u64 == LIDAR_CHANNEL {
            (rig.lidar.translation, [1.0, 0.0, 0.0, 0.0], Vec::new())
        } else {
            let spec = &rig.cameras[ch - 1];
            let iso = spec.cam_to_ego();
            let k = spec.intrinsics();
            let t3 = iso.translation.vector;
            (
                [t3.x, t3.y, t3.z],
                rotation_record(&iso),
                (0..3)
                    .map(|r| (0..3).map(|c| k[(r, c)]).collect())
                    .collect(),
            )
        };
        t.calibrated_sensor.push(CalibratedSensor {
            token: world.calibrated_sensor_token(ch as u64),
            sensor_token,
            translation,
            rotation,
            camera_intrinsic: intrinsic,
        });
    }
    let category_token = |name: &str| stable_token("category", name);
    let attribute_token = |name: &str| stable_token("attribute", name);

    let mut raster_index = RasterIndex {
        format: map_raster::FORMAT.into(),
        classes: MAP_CLASSES.iter().map(|s| s.to_string()).collect(),
        resolution: crate::data::scene::MAP_RESOLUTION,
        logs: BTreeMap::new(),
        default_grid: cfg.map_grid.or(Some(rig.map_grid)),
    };

    for s in 0..world.num_scenes() {
        let scene = world.scene(s);
        let log_token = world.log_token(s);
        let map_token = world.map_token(s);
        let frames = world.frames_per_scene();

        // Maps: the six-class raster and the devkit's semantic prior, rows in parallel.
        let g = scene.raster;
        let rows: Vec<Vec<u8>> = (0..g.height)
            .into_par_iter()
            .map(|r| scene.map_row(r))
            .collect();
        let bits =
            image::GrayImage::from_raw(g.width, g.height, rows.concat()).context("raster size")?;
        let prior = image::GrayImage::from_fn(g.width, g.height, |c, r| {
            image::Luma([if bits.get_pixel(c, r).0[0] & 1 != 0 {
                255
            } else {
                0
            }])
        });
        let bev_rel = format!("maps/bev/{log_token}.png");
        let prior_rel = format!("maps/{map_token}.png");
        let png = encode_png_gray(&bits)?;
        summary.bytes += png.len() as u64;
        write_file(root, &bev_rel, &png)?;
        let png = encode_png_gray(&prior)?;
        summary.bytes += png.len() as u64;
        write_file(root, &prior_rel, &png)?;
        raster_index.logs.insert(
            log_token.clone(),
            RasterEntry {
                filename: bev_rel,
                width: g.width,
                height: g.height,
            },
        );

        let date = chrono_date(scene.start_us);
        t.log.push(Log {
            token: log_token.clone(),
            logfile: world.log_name(s),
            vehicle: rig.vehicle.clone(),
            date_captured: date,
            location: "altermoma-synthetic".into(),
        });
        t.map.push(MapRecord {
            token: map_token,
            log_tokens: vec![log_token.clone()],
            category: "semantic_prior".into(),
            filename: prior_rel,
        });
        t.scene.push(Scene {
            token: world.scene_token(s),
            log_token: log_token.clone(),
            nbr_samples: frames as u32,
            first_sample_token: world.sample_token(s, 0),
            last_sample_token: world.sample_token(s, frames - 1),
            name: world.scene_name(s),
            description: scene.description(),
        });

        // Frames: render and write in parallel, record in order.
        let recs: Vec<Result<FrameRecords>> = (0..frames)
            .into_par_iter()
            .map(|k| {
                let sim = world.generate(s, k, false);
                let r = frame_records(world, &scene, s, k, &sim, root, &attribute_token);
                if let Some(pb) = progress {
                    pb.inc(1);
                }
                r
            })
            .collect();
        for r in recs {
            let r = r?;
            for &l in &r.labels {
                summary.per_class[l] += 1;
            }
            summary.samples += 1;
            summary.annotations += r.annotations.len();
            summary.bytes += r.bytes;
            summary.lidar_points += r.points;
            t.sample.push(r.sample);
            t.sample_data.extend(r.sample_data);
            t.ego_pose.extend(r.ego_pose);
            t.sample_annotation.extend(r.annotations);
        }
        // Instances of this scene.
        for (a, first, last, n) in world.instances(s) {
            t.instance.push(Instance {
                token: world.instance_token(s, a),
                category_token: category_token(scene.actors[a].variant.category()),
                nbr_annotations: n as u32,
                first_annotation_token: world.annotation_token(s, first, a),
                last_annotation_token: world.annotation_token(s, last, a),
            });
        }
        summary.scenes += 1;
    }
    summary.instances = t.instance.len();
    crate::io::write_json(root.join(map_raster::INDEX_PATH), &raster_index)?;
    t.save(root, &opts.version)?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn frame_records(
    world: &SyntheticWorld,
    scene: &SynthScene,
    s: usize,
    k: usize,
    sim: &SimFrame,
    root: &Path,
    attribute_token: &dyn Fn(&str) -> String,
) -> Result<FrameRecords> {
    let cfg = world.config();
    let rig = &cfg.rig;
    let frames = world.frames_per_scene();
    let ts = scene.timestamp_us(k);
    let sample_token = world.sample_token(s, k);
    let (translation, rotation) = scene.ego_pose_record(k);
    let mut bytes = 0u64;
    let mut sample_data = Vec::new();
    let mut ego_pose = Vec::new();
    let prev_sd = |ch: u64| {
        if k > 0 {
            world.sample_data_token(s, k - 1, ch)
        } else {
            String::new()
        }
    };
    let next_sd = |ch: u64| {
        if k + 1 < frames {
            world.sample_data_token(s, k + 1, ch)
        } else {
            String::new()
        }
    };

    // LiDAR.
    let points = sim
        .frame
        .points
        .as_ref()
        .context("synthetic frames always have points")?;
    let rel = lidar_file(world, scene, s, k, &rig.lidar.channel);
    let data = encode_pcd_bin(points);
    bytes += data.len() as u64;
    write_file(root, &rel, &data)?;
    let mut push_sd = |ch: u64, rel: String, fileformat: &str, w: u32, h: u32| {
        let ep = world.ego_pose_token(s, k, ch);
        ego_pose.push(EgoPose {
            token: ep.clone(),
            timestamp: ts,
            rotation,
            translation,
        });
        sample_data.push(SampleData {
            token: world.sample_data_token(s, k, ch),
            sample_token: sample_token.clone(),
            ego_pose_token: ep,
            calibrated_sensor_token: world.calibrated_sensor_token(ch),
            timestamp: ts,
            fileformat: fileformat.into(),
            is_key_frame: true,
            height: h,
            width: w,
            filename: rel,
            prev: prev_sd(ch),
            next: next_sd(ch),
        });
    };
    push_sd(LIDAR_CHANNEL, rel, "pcd", 0, 0);

    // Cameras.
    for (ci, cam) in sim.frame.cameras.iter().enumerate() {
        let img = cam
            .image
            .as_ref()
            .context("synthetic frames always have images")?;
        let rel = camera_file(world, scene, s, k, &cam.calib.name);
        let jpg = encode_jpeg(img, rig.jpeg_quality)?;
        bytes += jpg.len() as u64;
        write_file(root, &rel, &jpg)?;
        push_sd(ci as u64 + 1, rel, "jpg", cam.calib.width, cam.calib.height);
    }

    let annotations = sim
        .annotations
        .iter()
        .map(|a| SampleAnnotation {
            token: a.token.clone(),
            sample_token: sample_token.clone(),
            instance_token: a.instance_token.clone(),
            visibility_token: a.visibility.to_string(),
            attribute_tokens: if a.attribute.is_empty() {
                vec![]
            } else {
                vec![attribute_token(a.attribute)]
            },
            translation: a.translation,
            size: a.size,
            rotation: a.rotation,
            prev: a.prev.clone(),
            next: a.next.clone(),
            num_lidar_pts: a.num_lidar_pts as i64,
            num_radar_pts: 0,
        })
        .collect();
    let sample = Sample {
        token: sample_token,
        timestamp: ts,
        prev: if k > 0 {
            world.sample_token(s, k - 1)
        } else {
            String::new()
        },
        next: if k + 1 < frames {
            world.sample_token(s, k + 1)
        } else {
            String::new()
        },
        scene_token: world.scene_token(s),
    };
    let labels = sim.frame.annotations.iter().map(|a| a.bbox.label).collect();
    Ok(FrameRecords {
        sample,
        sample_data,
        ego_pose,
        annotations,
        bytes,
        points: points.len(),
        labels,
    })
}

/// `YYYY-MM-DD` of a Unix timestamp in microseconds (UTC, proleptic Gregorian).
fn chrono_date(us: i64) -> String {
    let days = us.div_euclid(86_400_000_000);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(chrono_date(0), "1970-01-01");
        assert_eq!(
            chrono_date(crate::data::scene::BASE_TIMESTAMP_US),
            "2018-08-01"
        );
        assert_eq!(chrono_date(951_782_400_000_000), "2000-02-29");
    }
}
