//! BEVFusion's DepthLSS extra: LiDAR points projected into each (resized) image as a sparse
//! depth map, encoded by a small strided conv stack down to the image-feature stride and
//! concatenated with the image features before the depth net. The camera branch then uses
//! LiDAR geometry; when the LiDAR is masked the hint is all zeros, so the camera branch
//! never sees LiDAR data under `ModalityMask::CAMERA_ONLY`.
//!
//! Width slots: `camera.vtransform.hint.<i>`.

use crate::model::batch::CameraGeometry;
use crate::model::channels::{ChannelSpec, Slots};
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Tensor};

/// Sparse depth image `[height * width]` (metres, 0 = no point) of the points seen by one
/// camera; the nearest point wins a pixel.
pub fn project_depth(
    points: &[f32],
    point_dims: usize,
    cam: &CameraGeometry,
    height: usize,
    width: usize,
) -> Vec<f32> {
    let mut depth = vec![0f32; height * width];
    let t = &cam.cam_to_lidar;
    // lidar -> camera: R^T (p - t)
    let r = t.fixed_view::<3, 3>(0, 0);
    let tr = t.fixed_view::<3, 1>(0, 3);
    let rinv = r.try_inverse().unwrap_or_else(nalgebra::Matrix3::identity);
    let k = &cam.intrinsics;
    for p in points.chunks_exact(point_dims) {
        let v = nalgebra::Vector3::new(
            p[0] as f64 - tr[0],
            p[1] as f64 - tr[1],
            p[2] as f64 - tr[2],
        );
        let c = rinv * v;
        if c.z < 0.1 {
            continue;
        }
        let q = k * c;
        let (u, w) = (q.x / q.z, q.y / q.z);
        let (ui, vi) = ((u + 0.5).floor(), (w + 0.5).floor());
        if ui < 0.0 || vi < 0.0 || ui >= width as f64 || vi >= height as f64 {
            continue;
        }
        let cell = &mut depth[vi as usize * width + ui as usize];
        let z = c.z as f32;
        if *cell == 0.0 || z < *cell {
            *cell = z;
        }
    }
    depth
}

/// Strided conv stack: depth image `[N, 1, H, W]` -> `[N, C, H / stride, W / stride]`.
#[derive(Debug)]
pub struct DepthHintEncoder {
    convs: Vec<ConvBn>,
    pub out_spec: ChannelSpec,
}

impl DepthHintEncoder {
    /// `stride` must be a power of two (checked by the config).
    pub fn new(p: &nn::Path, channels: i64, stride: i64, slots: &mut Slots) -> Self {
        let prefix = path_name(p);
        let mut convs = Vec::new();
        let mut input = ChannelSpec::fixed(1);
        let mut s = stride;
        let mut i = 0;
        loop {
            let st = if s > 1 { 2 } else { 1 };
            let slot = format!("{prefix}.{i}");
            let w = slots.width(&slot, channels);
            convs.push(ConvBn::new(
                &(p / i),
                &input,
                w,
                Some(&slot),
                ConvOpts::cbr(3, st),
                slots,
            ));
            input = ChannelSpec::slot(&slot, w);
            i += 1;
            s /= 2;
            if s < 1 {
                break;
            }
        }
        Self {
            convs,
            out_spec: input,
        }
    }

    pub fn forward_t(&self, depth: &Tensor, train: bool) -> Tensor {
        let mut y = depth.shallow_clone();
        for c in &self.convs {
            y = c.forward_t(&y, train);
        }
        y
    }
}
