//! A batch of frames as model inputs (and optional training targets).
//!
//! - Images of any resolution are scaled to the configured width (antialiased bilinear),
//!   cropped from the top (or zero-padded at the bottom) to the configured height, and
//!   normalised; the intrinsics follow the same resize and crop. A camera whose `image` is
//!   None is masked: its image is zeros and it contributes no BEV features.
//! - LiDAR points are voxelised in Rust ([`Voxelizer`]); a frame without points has no voxels
//!   and contributes no LiDAR BEV features.
//! - Optional BEV flips (training augmentation) mirror points, boxes, map and extrinsics
//!   together, so images need no change.
//! - Targets: CenterPoint heatmaps and box codes from the annotations, and the BEV map
//!   rasterised onto the segmentation grid from `Frame.map`.

use crate::classes::MAP_CLASSES;
use crate::data::{Frame, POINT_DIMS};
use crate::geometry::Box3D;
use crate::model::centerpoint::{encode_targets, DetTargets};
use crate::model::config::{ModelConfig, VTransformKind};
use crate::model::depth_lss::project_depth;
use crate::model::voxelize::{Voxelizer, Voxels, VOXEL_POINT_DIMS};
use anyhow::{bail, Result};
use nalgebra::{Matrix3, Matrix4};
use tch::{Device, Kind, Tensor};

/// Calibration of one camera as the network sees it: intrinsics of the resized/cropped image
/// and camera-to-LiDAR transform (including any BEV flip).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraGeometry {
    pub intrinsics: Matrix3<f64>,
    pub cam_to_lidar: Matrix4<f64>,
}

/// Voxels on the model's device.
#[derive(Debug)]
pub struct VoxelTensors {
    /// `[V, max_points, 4]` (x, y, z, scaled intensity), zero-padded.
    pub features: Tensor,
    /// `[V]` int64.
    pub num_points: Tensor,
    /// `[V, 4]` int64 `(batch, iz, ix, iy)`.
    pub coords: Tensor,
}

/// Training targets of a batch.
#[derive(Debug)]
pub struct Targets {
    pub det: Option<DetTargets>,
    /// `[B, 6, SX, SY]` binary map layers on the segmentation grid.
    pub seg: Option<Tensor>,
    /// `[B]` 1 where the frame has a map.
    pub seg_valid: Option<Tensor>,
}

/// When to build targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetMode {
    /// When any frame has annotations or a map.
    Auto,
    Always,
    Never,
}

/// Options of [`Batch::from_frames_with`].
#[derive(Clone, Debug)]
pub struct BatchOptions {
    pub targets: TargetMode,
    /// Per-frame BEV flip `(negate x, negate y)`; None = no flips.
    pub flips: Option<Vec<(bool, bool)>>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            targets: TargetMode::Auto,
            flips: None,
        }
    }
}

/// Model inputs of B frames with N cameras each.
#[derive(Debug)]
pub struct Batch {
    pub size: usize,
    pub num_cameras: usize,
    pub device: Device,
    /// `[B, N, 3, H, W]` normalised images (zeros where missing).
    pub images: Tensor,
    /// `[B, N]` float, 1 where the camera has an image.
    pub camera_valid: Tensor,
    /// `B * N` camera geometries, frame-major.
    pub calib: Vec<CameraGeometry>,
    /// `[B, N, 1, H, W]` sparse LiDAR depth (DepthLSS only).
    pub depth_hint: Option<Tensor>,
    pub voxels: VoxelTensors,
    /// `[B]` float, 1 where the frame has LiDAR points.
    pub lidar_valid: Tensor,
    pub targets: Option<Targets>,
    /// Ground-truth boxes per frame in the model's (possibly flipped) LiDAR frame.
    pub gt_boxes: Vec<Vec<Box3D>>,
    pub tokens: Vec<String>,
    pub flips: Vec<(bool, bool)>,
}

/// Resize (fit width), crop the top or pad the bottom, normalise. Returns the image
/// `[3, H, W]` and the matrix mapping original pixel coordinates to network ones.
pub fn preprocess_image(
    img: &image::RgbImage,
    cfg: &ModelConfig,
    device: Device,
) -> (Tensor, Matrix3<f64>) {
    let [h_out, w_out] = cfg.camera.image_size;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let raw = Tensor::from_slice(img.as_raw().as_slice())
        .view([h, w, 3])
        .to_device(device);
    let x = raw.permute([2, 0, 1]).to_kind(Kind::Float).unsqueeze(0);
    let sx = w_out as f64 / w as f64;
    let h_res = ((h as f64 * sx).round() as i64).max(1);
    let sy = h_res as f64 / h as f64;
    let x = if h_res == h && w_out == w {
        x
    } else if sx < 1.0 {
        x.internal_upsample_bilinear2d_aa([h_res, w_out], false, None, None)
    } else {
        x.upsample_bilinear2d([h_res, w_out], false, None, None)
    };
    let top = (h_res - h_out).max(0);
    let x = if h_res > h_out {
        x.narrow(2, top, h_out)
    } else if h_res < h_out {
        x.constant_pad_nd([0, 0, 0, h_out - h_res])
    } else {
        x
    };
    let m = &cfg.camera.mean;
    let s = &cfg.camera.std;
    let mean = Tensor::from_slice(&[m[0] as f32, m[1] as f32, m[2] as f32])
        .view([1, 3, 1, 1])
        .to_device(device);
    let std = Tensor::from_slice(&[s[0] as f32, s[1] as f32, s[2] as f32])
        .view([1, 3, 1, 1])
        .to_device(device);
    let x = (x - mean) / std;
    if h_res < h_out {
        // keep the padding at exactly zero after normalisation
        let _ = x.narrow(2, h_res, h_out - h_res).zero_();
    }
    let a = Matrix3::new(
        sx,
        0.0,
        0.5 * (sx - 1.0),
        0.0,
        sy,
        0.5 * (sy - 1.0) - top as f64,
        0.0,
        0.0,
        1.0,
    );
    (x.squeeze_dim(0), a)
}

fn flip_matrix(flip: (bool, bool)) -> Matrix4<f64> {
    let mut f = Matrix4::identity();
    if flip.0 {
        f[(0, 0)] = -1.0;
    }
    if flip.1 {
        f[(1, 1)] = -1.0;
    }
    f
}

/// A box mirrored by a BEV flip.
pub fn flip_box(b: &Box3D, flip: (bool, bool)) -> Box3D {
    let mut o = b.clone();
    if flip.0 {
        o.center[0] = -o.center[0];
        o.yaw = std::f64::consts::PI - o.yaw;
        o.velocity[0] = -o.velocity[0];
    }
    if flip.1 {
        o.center[1] = -o.center[1];
        o.yaw = -o.yaw;
        o.velocity[1] = -o.velocity[1];
    }
    o.yaw = o.yaw.sin().atan2(o.yaw.cos());
    o
}

fn voxel_tensors(v: &Voxels, max_points: usize, device: Device) -> VoxelTensors {
    let n = v.len() as i64;
    VoxelTensors {
        features: Tensor::from_slice(&v.features)
            .view([n, max_points as i64, VOXEL_POINT_DIMS as i64])
            .to_device(device),
        num_points: Tensor::from_slice(&v.num_points).to_device(device),
        coords: Tensor::from_slice(&v.coords).view([n, 4]).to_device(device),
    }
}

/// Rasterise a frame's map onto the segmentation grid (nearest cell), mirrored by `flip`.
fn seg_target(frame: &Frame, cfg: &ModelConfig, flip: (bool, bool), out: &mut [f32]) -> bool {
    let (Some(seg), Some(map)) = (&cfg.heads.seg, &frame.map) else {
        return false;
    };
    let g = seg.grid.grid();
    let (sx, sy) = (g.nx(), g.ny());
    let (mx, my) = (map.grid.nx(), map.grid.ny());
    let nc = MAP_CLASSES.len();
    if map.data.len() < nc * mx * my {
        return false;
    }
    for i in 0..sx {
        for j in 0..sy {
            let (mut x, mut y) = g.center(i, j);
            if flip.0 {
                x = -x;
            }
            if flip.1 {
                y = -y;
            }
            if let Some((a, b)) = map.grid.cell(x, y) {
                for c in 0..nc {
                    if map.data[(c * mx + a) * my + b] != 0 {
                        out[(c * sx + i) * sy + j] = 1.0;
                    }
                }
            }
        }
    }
    true
}

impl Batch {
    /// Inputs (and targets when the frames carry annotations or maps).
    pub fn from_frames(frames: &[Frame], cfg: &ModelConfig, device: Device) -> Result<Batch> {
        Self::from_frames_with(frames, cfg, device, &BatchOptions::default())
    }

    pub fn from_frames_with(
        frames: &[Frame],
        cfg: &ModelConfig,
        device: Device,
        opts: &BatchOptions,
    ) -> Result<Batch> {
        if frames.is_empty() {
            bail!("cannot build a batch from zero frames");
        }
        let b = frames.len();
        let n = frames[0].cameras.len();
        if n == 0 {
            bail!(
                "frame {}: no cameras in the rig (the model needs at least one)",
                frames[0].token
            );
        }
        for f in frames {
            if f.cameras.len() != n {
                bail!(
                    "frame {} has {} cameras but frame {} has {n}: a batch needs one rig",
                    f.token,
                    f.cameras.len(),
                    frames[0].token
                );
            }
        }
        let flips = match &opts.flips {
            Some(v) if v.len() == b => v.clone(),
            Some(v) => bail!("{} flips given for {b} frames", v.len()),
            None => vec![(false, false); b],
        };
        let [hh, ww] = cfg.camera.image_size;
        let mut images = Vec::with_capacity(b * n);
        let mut valid = Vec::with_capacity(b * n);
        let mut calib = Vec::with_capacity(b * n);
        for (f, &flip) in frames.iter().zip(&flips) {
            let fm = flip_matrix(flip);
            for (ci, cam) in f.cameras.iter().enumerate() {
                let k0 = cam.calib.intrinsics;
                let ext = cam.calib.cam_to_lidar.to_homogeneous();
                if !k0.iter().all(|v| v.is_finite()) || k0[(0, 0)] == 0.0 || k0[(1, 1)] == 0.0 {
                    bail!(
                        "frame {}: camera {ci} ({}) has invalid intrinsics {:?}",
                        f.token,
                        cam.calib.name,
                        k0
                    );
                }
                let (t, a) = match &cam.image {
                    Some(img) if img.width() > 0 && img.height() > 0 => {
                        // intrinsics are for calib.width x calib.height; rescale if the image differs
                        let cw = if cam.calib.width > 0 {
                            cam.calib.width
                        } else {
                            img.width()
                        } as f64;
                        let ch = if cam.calib.height > 0 {
                            cam.calib.height
                        } else {
                            img.height()
                        } as f64;
                        let (rx, ry) = (img.width() as f64 / cw, img.height() as f64 / ch);
                        let pre = Matrix3::new(
                            rx,
                            0.0,
                            0.5 * (rx - 1.0),
                            0.0,
                            ry,
                            0.5 * (ry - 1.0),
                            0.0,
                            0.0,
                            1.0,
                        );
                        let (t, a) = preprocess_image(img, cfg, device);
                        valid.push(1f32);
                        (t, a * pre)
                    }
                    _ => {
                        let sx = ww as f64 / cam.calib.width.max(1) as f64;
                        let h_res = (cam.calib.height as f64 * sx).round();
                        let sy = h_res / cam.calib.height.max(1) as f64;
                        let top = (h_res - hh as f64).max(0.0);
                        let a = Matrix3::new(
                            sx,
                            0.0,
                            0.5 * (sx - 1.0),
                            0.0,
                            sy,
                            0.5 * (sy - 1.0) - top,
                            0.0,
                            0.0,
                            1.0,
                        );
                        valid.push(0f32);
                        (Tensor::zeros([3, hh, ww], (Kind::Float, device)), a)
                    }
                };
                images.push(t);
                calib.push(CameraGeometry {
                    intrinsics: a * k0,
                    cam_to_lidar: fm * ext,
                });
            }
        }
        let images = Tensor::stack(&images, 0).view([b as i64, n as i64, 3, hh, ww]);
        let camera_valid = Tensor::from_slice(&valid)
            .view([b as i64, n as i64])
            .to_device(device);

        let mut vox = Voxelizer::new(cfg);
        let mut voxels = Voxels::default();
        let mut lidar_valid = Vec::with_capacity(b);
        for (bi, (f, &flip)) in frames.iter().zip(&flips).enumerate() {
            match &f.points {
                Some(p) if !p.is_empty() => {
                    if p.data.len() % POINT_DIMS != 0 {
                        bail!(
                            "frame {}: point buffer of {} floats is not a multiple of {POINT_DIMS}",
                            f.token,
                            p.data.len()
                        );
                    }
                    vox.voxelize_into(&p.data, POINT_DIMS, bi as i64, flip, &mut voxels);
                    lidar_valid.push(1f32);
                }
                _ => lidar_valid.push(0f32),
            }
        }
        let voxels_t = voxel_tensors(&voxels, cfg.lidar.voxel.max_points, device);

        let depth_hint = (cfg.camera.vtransform.kind == VTransformKind::DepthLss).then(|| {
            let (h, w) = (hh as usize, ww as usize);
            let mut all = vec![0f32; b * n * h * w];
            for (bi, f) in frames.iter().enumerate() {
                let Some(p) = &f.points else { continue };
                for ci in 0..n {
                    // the unflipped geometry: depth along the optical axis is flip-invariant
                    let cam = &f.cameras[ci];
                    let k = &calib[bi * n + ci].intrinsics;
                    let g = CameraGeometry {
                        intrinsics: *k,
                        cam_to_lidar: cam.calib.cam_to_lidar.to_homogeneous(),
                    };
                    let d = project_depth(&p.data, POINT_DIMS, &g, h, w);
                    let o = (bi * n + ci) * h * w;
                    all[o..o + h * w].copy_from_slice(&d);
                }
            }
            Tensor::from_slice(&all)
                .view([b as i64, n as i64, 1, hh, ww])
                .to_device(device)
        });

        let gt_boxes: Vec<Vec<Box3D>> = frames
            .iter()
            .zip(&flips)
            .map(|(f, &fl)| {
                f.annotations
                    .iter()
                    .map(|a| flip_box(&a.bbox, fl))
                    .collect()
            })
            .collect();
        let want_targets = match opts.targets {
            TargetMode::Always => true,
            TargetMode::Never => false,
            TargetMode::Auto => frames
                .iter()
                .any(|f| !f.annotations.is_empty() || f.map.is_some()),
        };
        let targets = want_targets.then(|| {
            let det = cfg.heads.det.as_ref().map(|dc| {
                let per: Vec<_> = frames
                    .iter()
                    .zip(&flips)
                    .map(|(f, &fl)| {
                        let boxes: Vec<Box3D> = f
                            .annotations
                            .iter()
                            .filter(|a| a.num_lidar_pts >= dc.min_lidar_points)
                            .map(|a| flip_box(&a.bbox, fl))
                            .collect();
                        encode_targets(&boxes, dc, &cfg.bev.grid())
                    })
                    .collect();
                DetTargets::stack(&per, &cfg.bev.grid(), dc.max_objects, device)
            });
            let (seg, seg_valid) = match &cfg.heads.seg {
                Some(sc) => {
                    let g = sc.grid.grid();
                    let (sx, sy) = (g.nx(), g.ny());
                    let per = MAP_CLASSES.len() * sx * sy;
                    let mut data = vec![0f32; b * per];
                    let mut v = Vec::with_capacity(b);
                    for (bi, (f, &fl)) in frames.iter().zip(&flips).enumerate() {
                        let ok = seg_target(f, cfg, fl, &mut data[bi * per..(bi + 1) * per]);
                        v.push(if ok { 1f32 } else { 0.0 });
                    }
                    let t = Tensor::from_slice(&data)
                        .view([b as i64, MAP_CLASSES.len() as i64, sx as i64, sy as i64])
                        .to_device(device);
                    (Some(t), Some(Tensor::from_slice(&v).to_device(device)))
                }
                None => (None, None),
            };
            Targets {
                det,
                seg,
                seg_valid,
            }
        });

        Ok(Batch {
            size: b,
            num_cameras: n,
            device,
            images,
            camera_valid,
            calib,
            depth_hint,
            voxels: voxels_t,
            lidar_valid: Tensor::from_slice(&lidar_valid).to_device(device),
            targets,
            gt_boxes,
            tokens: frames.iter().map(|f| f.token.clone()).collect(),
            flips,
        })
    }

    /// A data-free all-ones batch (SynFlow): every image pixel 1, every voxel of an evenly
    /// spread set (up to `max_voxels` per frame) full of points whose features are all 1,
    /// depth hint 1, cameras on the config's default rig. No targets.
    pub fn ones(cfg: &ModelConfig, batch_size: usize, device: Device) -> Result<Batch> {
        if batch_size == 0 {
            bail!("batch size must be >= 1");
        }
        let rig = &cfg.camera.default_rig;
        let n = rig.num_cameras;
        let [hh, ww] = cfg.camera.image_size;
        let (b, ni) = (batch_size as i64, n as i64);
        let mut calib = Vec::with_capacity(batch_size * n);
        for _ in 0..batch_size {
            for c in 0..n {
                let yaw = 2.0 * std::f64::consts::PI * c as f64 / n as f64;
                calib.push(crate::model::lss::ring_camera(
                    yaw,
                    rig.fov_deg,
                    rig.height,
                    cfg.camera.image_size,
                ));
            }
        }
        let vox = Voxelizer::new(cfg);
        let [nx, ny, nz] = vox.dims;
        let cells = nx * ny * nz;
        let per = cfg.lidar.voxel.max_voxels.min(cells);
        let p = cfg.lidar.voxel.max_points;
        let mut voxels = Voxels::default();
        for bi in 0..batch_size {
            for k in 0..per {
                let cell = k * cells / per;
                let (iz, rest) = (cell / (nx * ny), cell % (nx * ny));
                let (ix, iy) = (rest / ny, rest % ny);
                voxels.num_points.push(p as i64);
                voxels
                    .coords
                    .extend_from_slice(&[bi as i64, iz as i64, ix as i64, iy as i64]);
                voxels
                    .features
                    .extend(std::iter::repeat_n(1f32, p * VOXEL_POINT_DIMS));
            }
        }
        let opts = (Kind::Float, device);
        Ok(Batch {
            size: batch_size,
            num_cameras: n,
            device,
            images: Tensor::ones([b, ni, 3, hh, ww], opts),
            camera_valid: Tensor::ones([b, ni], opts),
            calib,
            depth_hint: (cfg.camera.vtransform.kind == VTransformKind::DepthLss)
                .then(|| Tensor::ones([b, ni, 1, hh, ww], opts)),
            voxels: voxel_tensors(&voxels, p, device),
            lidar_valid: Tensor::ones([b], opts),
            targets: None,
            gt_boxes: vec![vec![]; batch_size],
            tokens: (0..batch_size).map(|i| format!("ones-{i}")).collect(),
            flips: vec![(false, false); batch_size],
        })
    }
}
