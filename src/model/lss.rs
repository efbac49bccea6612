//! Lift-Splat-Shoot view transform (BEVFusion's LSS / DepthLSS).
//!
//! Lift: a depth net predicts, per image-feature pixel, a distribution over D depth bins and
//! C context features; their outer product places C features at D frustum points. The frustum
//! points go through the (resized) intrinsics and the camera-to-LiDAR extrinsics into the
//! LiDAR frame. Splat: every frustum point inside the BEV pooling grid is summed into its
//! cell (segment sum by `index_add` over indices sorted by cell). The geometry (which frustum
//! point lands in which cell) depends only on the calibration: it is computed once per
//! distinct batch calibration and cached. Optional downsampling convs bring the pooled BEV to
//! the model's BEV grid.
//!
//! Width slots: `camera.vtransform.depthnet.mid`, `camera.vtransform.feat` (the context part
//! of the depth net's output, at offset D: the D depth channels are not prunable),
//! `camera.vtransform.downsample.<i>`, plus the depth-hint encoder's (DepthLSS).

use crate::geometry::BevGrid;
use crate::model::batch::{Batch, CameraGeometry};
use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::{ModelConfig, VTransformKind};
use crate::model::depth_lss::DepthHintEncoder;
use crate::model::flops;
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tch::{nn, Device, Kind, Tensor};

/// Frustum-to-BEV indices of one batch calibration.
#[derive(Debug)]
pub struct LssGeometry {
    /// Index of each kept frustum point into the flattened `[B*N, D, fh, fw]` depth tensor.
    pub depth_index: Tensor,
    /// Index into the flattened `[B*N, fh, fw]` feature pixels.
    pub pixel_index: Tensor,
    /// Destination cell in the flattened `[B, NX, NY]` pooling grid (sorted ascending).
    pub cell_index: Tensor,
    pub kept: usize,
    pub total: usize,
}

const CACHE_SIZE: usize = 8;

#[derive(Debug)]
pub struct Lss {
    kind: VTransformKind,
    bins: Vec<f64>,
    channels: i64,
    feature_stride: i64,
    image_size: [i64; 2],
    z_range: [f64; 2],
    pool_grid: BevGrid,
    hint: Option<DepthHintEncoder>,
    depthnet_mid: Option<ConvBn>,
    depthnet_out: ConvBn,
    downsample: Vec<ConvBn>,
    cache: Mutex<Vec<(u64, Arc<LssGeometry>)>>,
    pub out_spec: ChannelSpec,
}

impl Lss {
    /// `input`: the neck's output layout at `feature_stride`.
    pub fn new(
        p: &nn::Path,
        cfg: &ModelConfig,
        input: &ChannelSpec,
        feature_stride: i64,
        slots: &mut Slots,
    ) -> Self {
        let vt = &cfg.camera.vtransform;
        let prefix = path_name(p);
        let d = vt.num_bins();
        let bins = (0..d)
            .map(|k| vt.depth[0] + (k as f64 + 0.5) * vt.depth[2])
            .collect();
        let hint = (vt.kind == VTransformKind::DepthLss).then(|| {
            DepthHintEncoder::new(&(p / "hint"), vt.depth_hint_channels, feature_stride, slots)
        });
        let dn_in = match &hint {
            Some(h) => ChannelSpec::concat(&[&h.out_spec, input]),
            None => input.clone(),
        };
        let (depthnet_mid, out_in) = if vt.depthnet_channels > 0 {
            let slot = format!("{prefix}.depthnet.mid");
            let w = slots.width(&slot, vt.depthnet_channels);
            let c = ConvBn::new(
                &(p / "depthnet" / "mid"),
                &dn_in,
                w,
                Some(&slot),
                ConvOpts::cbr(3, 1),
                slots,
            );
            (Some(c), ChannelSpec::slot(&slot, w))
        } else {
            (None, dn_in)
        };
        let feat_slot = format!("{prefix}.feat");
        let c = slots.width(&feat_slot, vt.channels);
        let depthnet_out = ConvBn::new(
            &(p / "depthnet" / "out"),
            &out_in,
            d + c,
            None,
            ConvOpts::plain(1),
            slots,
        );
        let out_p = p / "depthnet" / "out" / "conv";
        slots.produce(&feat_slot, out_p.path("weight"), 0, d);
        slots.produce(&feat_slot, out_p.path("bias"), 0, d);
        let mut spec = ChannelSpec::slot(&feat_slot, c);
        let mut downsample = Vec::new();
        if vt.downsample > 1 {
            for (i, st) in [1, vt.downsample, 1].into_iter().enumerate() {
                let slot = format!("{prefix}.downsample.{i}");
                let w = slots.width(&slot, vt.channels);
                downsample.push(ConvBn::new(
                    &(p / "downsample" / i),
                    &spec,
                    w,
                    Some(&slot),
                    ConvOpts::cbr(3, st),
                    slots,
                ));
                spec = ChannelSpec::slot(&slot, w);
            }
        }
        Self {
            kind: vt.kind,
            bins,
            channels: c,
            feature_stride,
            image_size: cfg.camera.image_size,
            z_range: vt.z_range,
            pool_grid: cfg.bev.finer(vt.downsample as f64).grid(),
            hint,
            depthnet_mid,
            depthnet_out,
            downsample,
            cache: Mutex::new(Vec::new()),
            out_spec: spec,
        }
    }

    pub fn num_bins(&self) -> i64 {
        self.bins.len() as i64
    }

    /// Feature-map size `(fh, fw)`.
    pub fn feature_size(&self) -> (i64, i64) {
        (
            self.image_size[0] / self.feature_stride,
            self.image_size[1] / self.feature_stride,
        )
    }

    fn key(&self, calib: &[CameraGeometry], batch: usize) -> u64 {
        let mut h = DefaultHasher::new();
        batch.hash(&mut h);
        calib.len().hash(&mut h);
        for c in calib {
            for v in c.intrinsics.iter().chain(c.cam_to_lidar.iter()) {
                v.to_bits().hash(&mut h);
            }
        }
        h.finish()
    }

    /// The cached geometry of a batch's calibration (computed on first use).
    pub fn geometry(
        &self,
        calib: &[CameraGeometry],
        batch: usize,
        device: Device,
    ) -> Arc<LssGeometry> {
        let key = self.key(calib, batch);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pos) = cache.iter().position(|(k, _)| *k == key) {
                let hit = cache.remove(pos);
                let g = hit.1.clone();
                cache.push(hit);
                if g.cell_index.device() == device {
                    return g;
                }
            }
        }
        let g = Arc::new(self.compute_geometry(calib, batch, device));
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(k, _)| *k != key);
        cache.push((key, g.clone()));
        if cache.len() > CACHE_SIZE {
            cache.remove(0);
        }
        g
    }

    fn compute_geometry(
        &self,
        calib: &[CameraGeometry],
        batch: usize,
        device: Device,
    ) -> LssGeometry {
        let (fh, fw) = self.feature_size();
        let (fh, fw) = (fh as usize, fw as usize);
        let d = self.bins.len();
        let n_cam = calib.len() / batch.max(1);
        let s = self.feature_stride as f64;
        let g = &self.pool_grid;
        let (nx, ny) = (g.nx(), g.ny());
        let mut entries: Vec<(i64, i64, i64)> = Vec::new(); // (cell, depth index, pixel index)
        for (cam_i, cam) in calib.iter().enumerate() {
            let b = cam_i / n_cam.max(1);
            let Some(kinv) = cam.intrinsics.try_inverse() else {
                continue;
            };
            let r = cam.cam_to_lidar.fixed_view::<3, 3>(0, 0).into_owned();
            let t = cam.cam_to_lidar.fixed_view::<3, 1>(0, 3).into_owned();
            for v in 0..fh {
                let py = v as f64 * s + (s - 1.0) / 2.0;
                for u in 0..fw {
                    let px = u as f64 * s + (s - 1.0) / 2.0;
                    let ray = r * (kinv * nalgebra::Vector3::new(px, py, 1.0));
                    let pix = (cam_i * fh + v) * fw + u;
                    for (k, &depth) in self.bins.iter().enumerate() {
                        let p = ray * depth + t;
                        if p.z < self.z_range[0] || p.z >= self.z_range[1] {
                            continue;
                        }
                        if let Some((i, j)) = g.cell(p.x, p.y) {
                            let cell = (b * nx + i) * ny + j;
                            let di = ((cam_i * d + k) * fh + v) * fw + u;
                            entries.push((cell as i64, di as i64, pix as i64));
                        }
                    }
                }
            }
        }
        entries.sort_unstable();
        let total = calib.len() * d * fh * fw;
        let kept = entries.len();
        let cell: Vec<i64> = entries.iter().map(|e| e.0).collect();
        let di: Vec<i64> = entries.iter().map(|e| e.1).collect();
        let pi: Vec<i64> = entries.iter().map(|e| e.2).collect();
        LssGeometry {
            depth_index: Tensor::from_slice(&di).to_device(device),
            pixel_index: Tensor::from_slice(&pi).to_device(device),
            cell_index: Tensor::from_slice(&cell).to_device(device),
            kept,
            total,
        }
    }

    /// Image features `[B*N, C_in, fh, fw]` -> camera BEV `[B, C, NX, NY]`. `use_hint`: feed
    /// the LiDAR depth hint (DepthLSS; false when the LiDAR is masked).
    pub fn forward_t(&self, feats: &Tensor, batch: &Batch, use_hint: bool, train: bool) -> Tensor {
        let b = batch.size as i64;
        let n = batch.num_cameras as i64;
        let dev = feats.device();
        let mut x = feats.shallow_clone();
        if let Some(h) = &self.hint {
            let [hh, ww] = self.image_size;
            let depth = match (&batch.depth_hint, use_hint) {
                (Some(dh), true) => dh.view([b * n, 1, hh, ww]),
                _ => Tensor::zeros([b * n, 1, hh, ww], (feats.kind(), dev)),
            };
            x = Tensor::cat(&[h.forward_t(&depth, train), x], 1);
        }
        if let Some(m) = &self.depthnet_mid {
            x = m.forward_t(&x, train);
        }
        let y = self.depthnet_out.forward_t(&x, train);
        let d = self.num_bins();
        let c = self.channels;
        let depth = y.narrow(1, 0, d).softmax(1, Kind::Float);
        let valid = batch.camera_valid.view([b * n, 1, 1, 1]).to_kind(y.kind());
        let ctx = y.narrow(1, d, c) * valid;
        let geom = self.geometry(&batch.calib, batch.size, dev);
        let g = &self.pool_grid;
        let (nx, ny) = (g.nx() as i64, g.ny() as i64);
        let d_sel = depth.reshape([-1]).index_select(0, &geom.depth_index);
        let f_sel = ctx
            .permute([0, 2, 3, 1])
            .reshape([-1, c])
            .index_select(0, &geom.pixel_index);
        let vals = f_sel.to_kind(Kind::Float) * d_sel.unsqueeze(1);
        if flops::counting() {
            // lifting (outer product) and pooling (sum): one MAC per kept point and channel
            flops::record("camera.vtransform.pool", geom.kept as i64 * c);
        }
        let bev = Tensor::zeros([b * nx * ny, c], (Kind::Float, dev)).index_add(
            0,
            &geom.cell_index,
            &vals,
        );
        let mut bev = bev.view([b, nx, ny, c]).permute([0, 3, 1, 2]).contiguous();
        for conv in &self.downsample {
            bev = conv.forward_t(&bev, train);
        }
        // Frames without any camera image contribute nothing (the convs' biases included).
        let any = batch
            .camera_valid
            .amax([1], false)
            .view([b, 1, 1, 1])
            .to_kind(bev.kind());
        let _ = self.kind;
        bev * any
    }
}

/// Build the camera geometry of a pinhole camera (used by data-free batches and tests).
pub fn ring_camera(yaw: f64, fov_deg: f64, height: f64, image_size: [i64; 2]) -> CameraGeometry {
    let [h, w] = image_size;
    let f = (w as f64 / 2.0) / (fov_deg.to_radians() / 2.0).tan();
    let k = nalgebra::Matrix3::new(
        f,
        0.0,
        w as f64 / 2.0 - 0.5,
        0.0,
        f,
        h as f64 / 2.0 - 0.5,
        0.0,
        0.0,
        1.0,
    );
    // optical (x right, y down, z forward) -> LiDAR (x forward, y left, z up), then yaw
    let base = nalgebra::Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    let rz = nalgebra::Rotation3::from_axis_angle(&nalgebra::Vector3::z_axis(), yaw).into_inner();
    let r = rz * base;
    let mut t = nalgebra::Matrix4::identity();
    t.fixed_view_mut::<3, 3>(0, 0).copy_from(&r);
    t[(2, 3)] = height;
    CameraGeometry {
        intrinsics: k,
        cam_to_lidar: t,
    }
}
