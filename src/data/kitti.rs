//! The KITTI object layout: read it into [`Frame`]s, and write synthetic frames into it.
//!
//! ```text
//! <root>/[training/]velodyne/000000.bin   float32 x, y, z, reflectance (0..1)
//! <root>/[training/]image_2/000000.png    left colour camera
//! <root>/[training/]calib/000000.txt      P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
//! <root>/[training/]label_2/000000.txt    type trunc occl alpha x1 y1 x2 y2 h w l x y z ry [score]
//! ```
//!
//! Frames come out like every other dataset's: points in the velodyne frame (x forward,
//! y left, z up) as `[x, y, z, intensity, ring]` with intensity = reflectance x 255 (the
//! nuScenes scale) and ring = 0 (KITTI does not store it); one camera `CAM_FRONT`
//! (image_2) whose intrinsics are `P2[:, :3]` and whose pose includes P2's baseline
//! offset, `R0_rect` and `Tr_velo_to_cam`; boxes converted from rectified-camera
//! coordinates (bottom centre, rotation about the camera's y axis) to LiDAR-frame centres.
//! Velocities are unknown (NaN); ego poses are identity; there is no BEV map.
//!
//! Classes: Car and Van -> car, Truck -> truck, Pedestrian and Person_sitting -> pedestrian,
//! Cyclist -> bicycle; Tram, Misc and DontCare are skipped. Our other classes are written
//! and read under the names Bus, Trailer, Construction_vehicle, Barrier, Motorcycle and
//! Traffic_cone (not KITTI classes; other tools skip them). Occlusion 0/1/2/3 maps to
//! visibility 4/3/1/0 (0 = unknown); visibility 4/3/2/1 is written as 0/1/1/2.

use crate::classes::{detection_class_index, DETECTION_CLASSES};
use crate::data::dataset::Dataset;
use crate::data::frame::{Annotation, CameraCalib, Frame, Points, POINT_DIMS};
use crate::data::world::SyntheticWorld;
use crate::geometry::Box3D;
use anyhow::{bail, Context, Result};
use nalgebra::{
    Isometry3, Matrix3, Matrix3x4, Point3, Rotation3, Translation3, UnitQuaternion, Vector3,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bytes per point in a KITTI velodyne `.bin`.
pub const KITTI_POINT_BYTES: usize = 16;

/// Calibration of one KITTI frame.
#[derive(Clone, Debug, PartialEq)]
pub struct KittiCalib {
    pub p2: Matrix3x4<f64>,
    pub r0_rect: Matrix3<f64>,
    pub tr_velo_to_cam: Matrix3x4<f64>,
}

impl KittiCalib {
    /// Rectified camera-2 coordinates of a velodyne point: `R0 * Tr * p + K^-1 * P2[:, 3]`.
    pub fn velo_to_cam2(&self) -> Isometry3<f64> {
        let k = self.p2.fixed_view::<3, 3>(0, 0).into_owned();
        let b = k.try_inverse().unwrap_or_else(Matrix3::identity) * self.p2.column(3);
        let r_tr = self.tr_velo_to_cam.fixed_view::<3, 3>(0, 0).into_owned();
        let t_tr = self.tr_velo_to_cam.column(3).into_owned();
        let r = self.r0_rect * r_tr;
        let t = self.r0_rect * t_tr + b;
        let rot = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix(&r));
        Isometry3::from_parts(Translation3::from(t), rot)
    }

    /// Rectified camera-0 frame (where labels live) to velodyne.
    pub fn rect_to_velo(&self) -> Isometry3<f64> {
        let r_tr = self.tr_velo_to_cam.fixed_view::<3, 3>(0, 0).into_owned();
        let t_tr = self.tr_velo_to_cam.column(3).into_owned();
        let r = self.r0_rect * r_tr;
        let t = self.r0_rect * t_tr;
        let rot = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix(&r));
        Isometry3::from_parts(Translation3::from(t), rot).inverse()
    }

    pub fn intrinsics(&self) -> Matrix3<f64> {
        self.p2.fixed_view::<3, 3>(0, 0).into_owned()
    }
}

/// Parse a calib file; errors name the file and the key or line.
pub fn parse_calib(path: &Path) -> Result<KittiCalib> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut keys: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            bail!(
                "{}:{}: expected `KEY: numbers`, got `{line}`",
                path.display(),
                ln + 1
            );
        };
        let vals: Result<Vec<f64>> = rest
            .split_whitespace()
            .map(|v| {
                v.parse::<f64>().with_context(|| {
                    format!(
                        "{}:{}: `{key}`: `{v}` is not a number",
                        path.display(),
                        ln + 1
                    )
                })
            })
            .collect();
        keys.insert(key.trim().to_string(), (ln + 1, vals?));
    }
    // KITTI tracking/raw calib files spell two keys differently.
    fn alias(k: &str) -> &str {
        match k {
            "R0_rect" => "R_rect",
            "Tr_velo_to_cam" => "Tr_velo_cam",
            other => other,
        }
    }
    let get = |k: &str, n: usize| -> Result<Vec<f64>> {
        match keys.get(k).or_else(|| keys.get(alias(k))) {
            Some((_, v)) if v.len() == n => Ok(v.clone()),
            Some((ln, v)) => bail!(
                "{}:{ln}: `{k}` needs {n} numbers, got {}",
                path.display(),
                v.len()
            ),
            None => bail!(
                "{}: missing calibration key `{k}` (present: {})",
                path.display(),
                keys.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let p2 = get("P2", 12)?;
    let r0 = get("R0_rect", 9)?;
    let tr = get("Tr_velo_to_cam", 12)?;
    Ok(KittiCalib {
        p2: Matrix3x4::from_row_slice(&p2),
        r0_rect: Matrix3::from_row_slice(&r0),
        tr_velo_to_cam: Matrix3x4::from_row_slice(&tr),
    })
}

/// One parsed label line.
#[derive(Clone, Debug, PartialEq)]
pub struct KittiLabel {
    pub kind: String,
    pub truncated: f64,
    pub occluded: i64,
    pub alpha: f64,
    pub bbox: [f64; 4],
    /// height, width, length.
    pub hwl: [f64; 3],
    /// Bottom centre in rectified camera coordinates.
    pub location: [f64; 3],
    pub rotation_y: f64,
    pub score: Option<f64>,
}

/// Parse a label file; errors name the file, line and field.
pub fn parse_labels(path: &Path) -> Result<Vec<KittiLabel>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let names = [
        "type",
        "truncated",
        "occluded",
        "alpha",
        "left",
        "top",
        "right",
        "bottom",
        "height",
        "width",
        "length",
        "x",
        "y",
        "z",
        "rotation_y",
        "score",
    ];
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() != 15 && f.len() != 16 {
            bail!(
                "{}:{}: a label line has 15 fields (16 with a score), got {}: `{line}`",
                path.display(),
                ln + 1,
                f.len()
            );
        }
        let num = |i: usize| -> Result<f64> {
            let v: f64 = f[i].parse().map_err(|_| {
                anyhow::anyhow!(
                    "{}:{}: field `{}` is not a number: `{}`",
                    path.display(),
                    ln + 1,
                    names[i],
                    f[i]
                )
            })?;
            if !v.is_finite() {
                bail!(
                    "{}:{}: field `{}` is not finite: `{}`",
                    path.display(),
                    ln + 1,
                    names[i],
                    f[i]
                );
            }
            Ok(v)
        };
        let occluded = num(2)?;
        if occluded.fract() != 0.0 || !(-1.0..=3.0).contains(&occluded) {
            bail!(
                "{}:{}: field `occluded` must be an integer in 0..=3, got `{}`",
                path.display(),
                ln + 1,
                f[2]
            );
        }
        let hwl = [num(8)?, num(9)?, num(10)?];
        if f[0] != "DontCare" && hwl.iter().any(|&v| v < 0.0) {
            bail!(
                "{}:{}: box dimensions must not be negative: {:?}",
                path.display(),
                ln + 1,
                hwl
            );
        }
        out.push(KittiLabel {
            kind: f[0].to_string(),
            truncated: num(1)?,
            occluded: occluded as i64,
            alpha: num(3)?,
            bbox: [num(4)?, num(5)?, num(6)?, num(7)?],
            hwl,
            location: [num(11)?, num(12)?, num(13)?],
            rotation_y: num(14)?,
            score: if f.len() == 16 { Some(num(15)?) } else { None },
        });
    }
    Ok(out)
}

/// Read a velodyne `.bin` as our points (intensity x 255, ring 0).
pub fn read_velodyne(path: &Path) -> Result<Points> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() % KITTI_POINT_BYTES != 0 {
        bail!(
            "{}: size {} bytes is not a multiple of {KITTI_POINT_BYTES} (4 float32 per point: x, y, z, reflectance); the file is truncated",
            path.display(),
            bytes.len()
        );
    }
    let mut data = Vec::with_capacity(bytes.len() / KITTI_POINT_BYTES * POINT_DIMS);
    for c in bytes.chunks_exact(KITTI_POINT_BYTES) {
        let f = |i: usize| f32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]]);
        data.extend_from_slice(&[f(0), f(1), f(2), f(3) * 255.0, 0.0]);
    }
    Ok(Points { data })
}

/// Our class of a KITTI type name, None for skipped types.
pub fn kitti_class(kind: &str) -> Option<usize> {
    let name = match kind {
        "Car" | "Van" => "car",
        "Truck" => "truck",
        "Pedestrian" | "Person_sitting" => "pedestrian",
        "Cyclist" => "bicycle",
        "Bus" => "bus",
        "Trailer" => "trailer",
        "Construction_vehicle" => "construction_vehicle",
        "Barrier" => "barrier",
        "Motorcycle" => "motorcycle",
        "Traffic_cone" => "traffic_cone",
        _ => return None,
    };
    detection_class_index(name)
}

/// KITTI type name written for our class.
pub fn kitti_type(label: usize) -> &'static str {
    match DETECTION_CLASSES[label] {
        "car" => "Car",
        "truck" => "Truck",
        "pedestrian" => "Pedestrian",
        "bicycle" => "Cyclist",
        "bus" => "Bus",
        "trailer" => "Trailer",
        "construction_vehicle" => "Construction_vehicle",
        "barrier" => "Barrier",
        "motorcycle" => "Motorcycle",
        _ => "Traffic_cone",
    }
}

fn occlusion_to_visibility(o: i64) -> u8 {
    match o {
        0 => 4,
        1 => 3,
        2 => 1,
        _ => 0,
    }
}

fn visibility_to_occlusion(v: u8) -> i64 {
    match v {
        4 => 0,
        3 | 2 => 1,
        1 => 2,
        _ => 3,
    }
}

/// A KITTI object folder.
pub struct KittiDataset {
    dir: PathBuf,
    ids: Vec<String>,
}

impl KittiDataset {
    /// Open `<root>` holding `velodyne/`, `calib/`, ... or `<root>/training/`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let dir = if root.join("velodyne").is_dir() {
            root.to_path_buf()
        } else if root.join("training/velodyne").is_dir() {
            root.join("training")
        } else {
            bail!(
                "{} is not a KITTI object folder (no velodyne/ or training/velodyne/)",
                root.display()
            );
        };
        let mut ids: Vec<String> = std::fs::read_dir(dir.join("velodyne"))
            .with_context(|| format!("listing {}", dir.join("velodyne").display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                (p.extension().and_then(|x| x.to_str()) == Some("bin")).then(|| {
                    p.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string()
                })
            })
            .collect();
        ids.sort();
        Ok(KittiDataset { dir, ids })
    }

    pub fn is_kitti(root: &Path) -> bool {
        root.join("velodyne").is_dir() || root.join("training/velodyne").is_dir()
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    fn read(&self, id: &str) -> Result<Frame> {
        let points = read_velodyne(&self.dir.join(format!("velodyne/{id}.bin")))?;
        let calib = parse_calib(&self.dir.join(format!("calib/{id}.txt")))?;
        let velo_to_cam = calib.velo_to_cam2();
        let img_path = self.dir.join(format!("image_2/{id}.png"));
        let image = if img_path.exists() {
            Some(
                image::open(&img_path)
                    .with_context(|| format!("decoding {}", img_path.display()))?
                    .to_rgb8(),
            )
        } else {
            None
        };
        let (w, h) = image
            .as_ref()
            .map(|i| (i.width(), i.height()))
            .unwrap_or((1242, 375));
        let camera = crate::data::frame::CameraFrame {
            calib: CameraCalib {
                name: "CAM_FRONT".into(),
                width: w,
                height: h,
                intrinsics: calib.intrinsics(),
                cam_to_lidar: velo_to_cam.inverse(),
            },
            image: image.map(super::share),
            timestamp_us: 0,
        };
        let label_path = self.dir.join(format!("label_2/{id}.txt"));
        let mut annotations = Vec::new();
        if label_path.exists() {
            let rect_to_velo = calib.rect_to_velo();
            let mut boxes = Vec::new();
            let mut meta = Vec::new();
            for (i, l) in parse_labels(&label_path)?.into_iter().enumerate() {
                let Some(label) = kitti_class(&l.kind) else {
                    continue;
                };
                let [hh, ww, ll] = l.hwl;
                let c_rect = Point3::new(l.location[0], l.location[1] - hh / 2.0, l.location[2]);
                let c = rect_to_velo * c_rect;
                let heading = rect_to_velo.rotation
                    * Vector3::new(l.rotation_y.cos(), 0.0, -l.rotation_y.sin());
                boxes.push(Box3D {
                    center: [c.x, c.y, c.z],
                    size: [ww, ll, hh],
                    yaw: heading.y.atan2(heading.x),
                    velocity: [f64::NAN, f64::NAN],
                    label,
                    score: l.score.unwrap_or(1.0),
                });
                meta.push((i, occlusion_to_visibility(l.occluded)));
            }
            let counts = crate::data::lidar_sim::count_points_in_boxes(&points, &boxes);
            for ((b, (i, vis)), n) in boxes.into_iter().zip(meta).zip(counts) {
                annotations.push(Annotation {
                    bbox: b,
                    instance_token: format!("kitti-{id}-{i}"),
                    num_lidar_pts: n,
                    attribute: String::new(),
                    visibility: vis,
                });
            }
        }
        Ok(Frame {
            token: id.to_string(),
            scene_token: "kitti".into(),
            timestamp_us: 0,
            lidar_to_ego: Isometry3::identity(),
            ego_to_global: Isometry3::identity(),
            points: Some(points),
            cameras: vec![camera],
            annotations,
            map: None,
        })
    }
}

impl Dataset for KittiDataset {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn get(&self, index: usize) -> Result<Frame> {
        let id = self.ids.get(index).with_context(|| {
            format!(
                "frame index {index} out of range ({} frames)",
                self.ids.len()
            )
        })?;
        self.read(id)
    }
    fn token(&self, index: usize) -> String {
        self.ids.get(index).cloned().unwrap_or_default()
    }
    fn cameras(&self) -> Vec<CameraCalib> {
        self.get(0)
            .map(|f| f.cameras.into_iter().map(|c| c.calib).collect())
            .unwrap_or_default()
    }
}

fn fmt_row(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:e}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write one frame (its `camera` index, and the annotations visible in it) as KITTI files
/// `<dir>/{velodyne,image_2,calib,label_2}/<id>.*`. Each file is written atomically.
pub fn write_frame(dir: &Path, id: &str, frame: &Frame, camera: usize) -> Result<()> {
    let cam = frame
        .cameras
        .get(camera)
        .with_context(|| format!("frame `{}` has no camera {camera}", frame.token))?;
    let points = frame
        .points
        .as_ref()
        .with_context(|| format!("frame `{}` has no points", frame.token))?;
    let mut bin = Vec::with_capacity(points.len() * KITTI_POINT_BYTES);
    for p in points.iter() {
        for v in [p[0], p[1], p[2], p[3] / 255.0] {
            bin.extend_from_slice(&v.to_le_bytes());
        }
    }
    crate::io::atomic_write(dir.join(format!("velodyne/{id}.bin")), &bin)?;
    if let Some(img) = &cam.image {
        let path = dir.join(format!("image_2/{id}.png"));
        crate::io::atomic_write_via_path(&path, |tmp| {
            img.save_with_format(tmp, image::ImageFormat::Png)
                .map_err(Into::into)
        })?;
    }
    // Calibration: rectified camera = the camera itself (R0 = I), P = K [I | 0].
    let k = cam.calib.intrinsics;
    let p = [
        k[(0, 0)],
        k[(0, 1)],
        k[(0, 2)],
        0.0,
        k[(1, 0)],
        k[(1, 1)],
        k[(1, 2)],
        0.0,
        k[(2, 0)],
        k[(2, 1)],
        k[(2, 2)],
        0.0,
    ];
    let l2c = cam.calib.cam_to_lidar.inverse();
    let r = l2c.rotation.to_rotation_matrix();
    let t = l2c.translation.vector;
    let m = r.matrix();
    let tr = [
        m[(0, 0)],
        m[(0, 1)],
        m[(0, 2)],
        t.x,
        m[(1, 0)],
        m[(1, 1)],
        m[(1, 2)],
        t.y,
        m[(2, 0)],
        m[(2, 1)],
        m[(2, 2)],
        t.z,
    ];
    let ident34 = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let calib = format!(
        "P0: {p}\nP1: {p}\nP2: {p}\nP3: {p}\nR0_rect: {r0}\nTr_velo_to_cam: {tr}\nTr_imu_to_velo: {imu}\n",
        p = fmt_row(&p),
        r0 = fmt_row(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
        tr = fmt_row(&tr),
        imu = fmt_row(&ident34)
    );
    crate::io::atomic_write(dir.join(format!("calib/{id}.txt")), calib.as_bytes())?;
    // Labels: objects in front of the camera whose projection meets the image.
    let (w, h) = (cam.calib.width as f64, cam.calib.height as f64);
    let mut labels = String::new();
    for a in &frame.annotations {
        let b = &a.bbox;
        let corners: Vec<Point3<f64>> = b
            .corners()
            .iter()
            .map(|c| l2c * Point3::new(c[0], c[1], c[2]))
            .collect();
        let centre = l2c * Point3::new(b.center[0], b.center[1], b.center[2]);
        if centre.z <= 0.1 || corners.iter().any(|c| c.z <= 0.05) {
            continue;
        }
        let proj: Vec<(f64, f64)> = corners
            .iter()
            .map(|c| {
                (
                    k[(0, 0)] * c.x / c.z + k[(0, 2)],
                    k[(1, 1)] * c.y / c.z + k[(1, 2)],
                )
            })
            .collect();
        let (x0, x1) = proj
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let (y0, y1) = proj
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        if x1 < 0.0 || y1 < 0.0 || x0 >= w || y0 >= h {
            continue;
        }
        let area = (x1 - x0) * (y1 - y0);
        let (cx0, cx1, cy0, cy1) = (x0.max(0.0), x1.min(w - 1.0), y0.max(0.0), y1.min(h - 1.0));
        let truncated = if area > 0.0 {
            (1.0 - (cx1 - cx0) * (cy1 - cy0) / area).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let heading = l2c.rotation * Vector3::new(b.yaw.cos(), b.yaw.sin(), 0.0);
        let ry = (-heading.z).atan2(heading.x);
        let [bw, bl, bh] = b.size;
        // Bottom centre: half the height along the camera's down axis (-up of the LiDAR).
        let down = l2c.rotation * Vector3::new(0.0, 0.0, -1.0);
        let bottom = centre + down * (bh / 2.0);
        let alpha = ry - bottom.x.atan2(bottom.z);
        let alpha = (alpha + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
            - std::f64::consts::PI;
        labels.push_str(&format!(
            "{} {:.2} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
            kitti_type(b.label),
            truncated,
            visibility_to_occlusion(a.visibility),
            alpha,
            cx0,
            cy0,
            cx1,
            cy1,
            bh,
            bw,
            bl,
            bottom.x,
            bottom.y,
            bottom.z,
            ry
        ));
    }
    crate::io::atomic_write(dir.join(format!("label_2/{id}.txt")), labels.as_bytes())?;
    Ok(())
}

/// Write every frame of a synthetic world as `<out>/training/...` (front camera only).
/// Written into a temporary sibling folder and renamed into place at the end.
pub fn write_world(
    world: &SyntheticWorld,
    out: &Path,
    force: bool,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<usize> {
    use rayon::prelude::*;
    if out.exists() && !force {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !empty {
            bail!(
                "{} already exists; choose another --out or pass --force to replace it",
                out.display()
            );
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "kitti".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(&parent)?;
    let dir = tmp.path().join("training");
    let cam = world
        .config()
        .rig
        .cameras
        .iter()
        .position(|c| c.name == "CAM_FRONT")
        .unwrap_or(0);
    let n = world.len();
    (0..n).into_par_iter().try_for_each(|i| -> Result<()> {
        let f = world.get(i)?;
        write_frame(&dir, &format!("{i:06}"), &f, cam)?;
        if let Some(pb) = progress {
            pb.inc(1);
        }
        Ok(())
    })?;
    let tmp_path = tmp.keep();
    if out.exists() {
        std::fs::remove_dir_all(out)
            .with_context(|| format!("removing the old {}", out.display()))?;
    }
    std::fs::rename(&tmp_path, out)
        .with_context(|| format!("renaming {} to {}", tmp_path.display(), out.display()))?;
    Ok(n)
}
