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
use crate::data::{Frame, PixelLayout, SharedImage, StoredImage, POINT_DIMS};
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

/// Voxels on the model's device, in the compact layout of [`crate::model::voxelize`]: the
/// points kept, not the padded slots ([`Self::padded_features`] builds those).
#[derive(Debug)]
pub struct VoxelTensors {
    /// `[N, 4]` (x, y, z, scaled intensity) of the points kept.
    pub points: Tensor,
    /// `[N]` int64: each point's slot in the padded layout, `voxel * max_points + k`.
    pub slots: Tensor,
    /// `[V]` int64.
    pub num_points: Tensor,
    /// `[V, 4]` int64 `(batch, iz, ix, iy)`.
    pub coords: Tensor,
    /// `[V, 3]` mean x, y, z of each voxel's points.
    pub means: Tensor,
    /// Slots per voxel in the padded layout.
    pub max_points: i64,
}

impl VoxelTensors {
    pub fn to_device(self, device: Device) -> Self {
        Self {
            points: self.points.to_device(device),
            slots: self.slots.to_device(device),
            num_points: self.num_points.to_device(device),
            coords: self.coords.to_device(device),
            means: self.means.to_device(device),
            max_points: self.max_points,
        }
    }

    /// Voxels in the batch.
    pub fn len(&self) -> i64 {
        self.num_points.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The zero-padded `[V, max_points, 4]` layout (empty slots zero), on the points' device.
    pub fn padded_features(&self) -> Tensor {
        let (nv, p) = (self.len(), self.max_points);
        let d = VOXEL_POINT_DIMS as i64;
        Tensor::zeros([nv * p, d], (self.points.kind(), self.points.device()))
            .index_copy(0, &self.slots, &self.points)
            .view([nv, p, d])
    }
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
/// (One image, for the tests; [`Batch::from_frames_in`] writes all images of a batch straight
/// into the batch tensor with [`preprocess_images_into`].)
#[cfg(test)]
pub fn preprocess_image<C: std::ops::Deref<Target = [u8]>>(
    img: &image::ImageBuffer<image::Rgb<u8>, C>,
    cfg: &ModelConfig,
    device: Device,
) -> (Tensor, Matrix3<f64>) {
    let [h, w] = cfg.camera.image_size;
    let mut buffers = ImageResizeBuffers::default();
    let mut a = Matrix3::identity();
    let t = host_tensor_with(&[3, h, w], |out| a = preprocess_image_into(img, cfg, &mut buffers, out));
    (t.to_device(device), a)
}

/// How an image of `width` x `height` becomes the network's input: scaled by `sx` x `sy` to
/// the input width and `resized_height` rows, of which the first `top` are cropped.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ResizeGeometry {
    sx: f64,
    sy: f64,
    resized_height: usize,
    top: usize,
}

impl ResizeGeometry {
    /// Fit the width; at least one row (a degenerate size gives a 1-pixel image, not a panic).
    fn new(width: u32, height: u32, cfg: &ModelConfig) -> Self {
        let [h_out, w_out] = cfg.camera.image_size;
        let (w, h) = (width.max(1) as f64, height.max(1) as f64);
        let sx = w_out as f64 / w;
        let resized_height = ((h * sx).round() as usize).max(1);
        Self { sx, sy: resized_height as f64 / h, resized_height, top: resized_height.saturating_sub(h_out as usize) }
    }

    /// Original pixel coordinates -> network pixel coordinates.
    fn pixel_map(&self) -> Matrix3<f64> {
        pixel_map(self.sx, self.sy, self.top as f64)
    }
}

/// [`preprocess_image`] into `out` (`3 * H * W` floats, channel-major), on the host, with
/// `buffers` (reused from call to call). An RGB image's pixels go to
/// [`preprocess_pixels_into`].
pub fn preprocess_image_into<C: std::ops::Deref<Target = [u8]>>(
    img: &image::ImageBuffer<image::Rgb<u8>, C>,
    cfg: &ModelConfig,
    buffers: &mut ImageResizeBuffers,
    out: &mut [f32],
) -> Matrix3<f64> {
    preprocess_pixels_into(img.width(), img.height(), PixelLayout::Rgb8, img.as_raw(), cfg, buffers, out)
}

/// A stored camera image ([`crate::data::StoredImage`]) into `out`, from the bytes as they
/// are stored: a `bgr8` (or four-channel, or grey) image is not converted to RGB first.
pub fn preprocess_stored_into(
    img: &StoredImage,
    cfg: &ModelConfig,
    buffers: &mut ImageResizeBuffers,
    out: &mut [f32],
) -> Matrix3<f64> {
    let (layout, bytes) = img.stored();
    preprocess_pixels_into(img.width(), img.height(), layout, bytes, cfg, buffers, out)
}

/// `width` x `height` packed pixels of `layout` resized (fit width), cropped from the top or
/// padded at the bottom, and normalised into `out`; returns the map from original to network
/// pixel coordinates.
///
/// Downscaling is antialiased bilinear (a triangle filter widened by the scale factor, as
/// PIL's and torchvision's `antialias=True`), upscaling plain bilinear, both with the
/// SIMD 8-bit kernels of `fast_image_resize` (fixed-point weights: within one level of a
/// float resize). Every channel is filtered alike and alone, so the resize runs on the bytes
/// as they are stored (alpha is resized as a plain channel, not premultiplied) and the
/// normalisation picks red, green and blue from where the layout keeps them: the result is
/// bit for bit that of the image converted to RGB first (unit test). Everything here is
/// plain Rust: no libtorch operator runs per image, so building the input neither allocates
/// tensors per camera nor waits on libtorch's thread pool, which on a loaded CPU costs more
/// than the arithmetic itself.
fn preprocess_pixels_into(
    width: u32,
    height: u32,
    layout: PixelLayout,
    bytes: &[u8],
    cfg: &ModelConfig,
    buffers: &mut ImageResizeBuffers,
    out: &mut [f32],
) -> Matrix3<f64> {
    use fast_image_resize::{images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions};
    let [h_out, w_out] = cfg.camera.image_size;
    let (h_out, w_out) = (h_out as usize, w_out as usize);
    let (w, h) = (width as usize, height as usize);
    let ch = layout.channels();
    let geo = ResizeGeometry::new(width, height, cfg);
    let (h_res, top) = (geo.resized_height, geo.top);
    let rows = h_res.min(h_out);
    // `pixels` holds the kept rows of the resized image from row `first` on
    let (pixels, first): (&[u8], usize) = if h_res == h && w_out == w {
        (bytes, top)
    } else {
        // Only the kept rows are computed: the source box of resized rows [top, top + rows)
        // goes to `rows` rows at the full resize's scale. The filter reaches past the box
        // into the image as a full resize would, so the kept rows are the same (bit for bit
        // in the unit test's sizes).
        let pixel_type = match ch {
            1 => PixelType::U8,
            3 => PixelType::U8x3,
            _ => PixelType::U8x4,
        };
        let src = ImageRef::new(width, height, bytes, pixel_type)
            .expect("a stored image's bytes hold width x height pixels of its layout");
        let scale = h as f64 / h_res as f64;
        let box_top = top as f64 * scale;
        let box_height = (rows as f64 * scale).min(h as f64 - box_top);
        buffers.resized.resize(w_out * rows * ch, 0);
        let mut dst = Image::from_slice_u8(w_out as u32, rows as u32, &mut buffers.resized, pixel_type)
            .expect("the buffer was sized for the destination");
        let opts = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .use_alpha(false)
            .crop(0.0, box_top, w as f64, box_height);
        buffers.resizer.resize(&src, &mut dst, &opts).expect("source and destination have one layout and are non-empty");
        (&buffers.resized, 0)
    };
    let plane = h_out * w_out;
    assert_eq!(out.len(), 3 * plane, "output buffer is not 3 x H x W");
    let kept = &pixels[first * w_out * ch..(first + rows) * w_out * ch];
    match ch {
        1 => normalise::<1>(kept, layout, cfg, out),
        3 => normalise::<3>(kept, layout, cfg, out),
        _ => normalise::<4>(kept, layout, cfg, out),
    }
    geo.pixel_map()
}

/// Rows of `CH`-byte pixels of `layout` into the top of each of `out`'s three channel planes,
/// normalised; the planes' remaining rows (bottom padding) are set to zero.
fn normalise<const CH: usize>(rows: &[u8], layout: PixelLayout, cfg: &ModelConfig, out: &mut [f32]) {
    let plane = out.len() / 3;
    let n = rows.len() / CH;
    for (c, offset) in layout.rgb_offsets().into_iter().enumerate() {
        // (p - mean) / std exactly as libtorch computed it before (division, not a reciprocal
        // multiply): an image at the input size gives bit-identical inputs
        let (mean, std) = (cfg.camera.mean[c] as f32, cfg.camera.std[c] as f32);
        let dst = &mut out[c * plane..(c + 1) * plane];
        for (d, p) in dst[..n].iter_mut().zip(rows.chunks_exact(CH)) {
            *d = (p[offset] as f32 - mean) / std;
        }
        // padding at the bottom stays exactly zero
        dst[n..].fill(0.0);
    }
}

/// Host buffers that building a batch needs, kept from one batch to the next so that a
/// steady stream of frames (the node, replay) allocates nothing per frame but the input
/// tensors: the image resizer and its destination, the voxeliser's cell table, the voxels.
#[derive(Default)]
pub struct BatchWorkspace {
    images: ResizeBuffers,
    lidar: VoxelBuffers,
}

/// Resize and normalise every image of a batch into its `3 * H * W` chunk of `pixels`, zeros
/// for a masked camera (None). The images are spread over rayon's pool, each with its own
/// resizer and buffer: on the 16-core GPU machine (H200) this is what keeps six 1600x900
/// camera images from costing the node several milliseconds per frame; on the 2-core
/// development machine, where six such images are memory-bound, it is about as fast as one
/// image after the other. Each image's values do not depend on the others or on the order.
pub fn preprocess_images_into(
    images: &[Option<&SharedImage>],
    cfg: &ModelConfig,
    buffers: &mut ResizeBuffers,
    pixels: &mut [f32],
) {
    use rayon::prelude::*;
    let per_image = pixels.len() / images.len().max(1);
    if buffers.per_image.len() < images.len() {
        buffers.per_image.resize_with(images.len(), Default::default);
    }
    images
        .par_iter()
        .zip(pixels.par_chunks_exact_mut(per_image.max(1)))
        .zip(buffers.per_image.par_iter_mut())
        .for_each(|((img, out), bufs)| match img {
            Some(img) => {
                preprocess_stored_into(img, cfg, bufs, out);
            }
            None => out.fill(0.0),
        });
}

/// The image resizers and their destination buffers of a batch: one set per image, so that
/// the images are resized in parallel.
#[derive(Default)]
pub struct ResizeBuffers {
    per_image: Vec<ImageResizeBuffers>,
}

/// One image's resizer and destination buffer.
#[derive(Default)]
pub struct ImageResizeBuffers {
    resizer: fast_image_resize::Resizer,
    resized: Vec<u8>,
}

/// The voxeliser (with its cell table).
#[derive(Default)]
struct VoxelBuffers {
    voxelizer: Option<Voxelizer>,
}

impl VoxelBuffers {
    /// Voxelise the points of every frame (mirrored by its flip) straight into new CPU
    /// tensors ([`Voxelizer::voxelize_tensors`]); also per frame 1 if it has points, else 0.
    fn voxelize(
        &mut self,
        frames: &[Frame],
        flips: &[(bool, bool)],
        cfg: &ModelConfig,
    ) -> Result<(VoxelTensors, Vec<f32>)> {
        match &self.voxelizer {
            Some(v) if v.matches(cfg) => {}
            _ => self.voxelizer = Some(Voxelizer::new(cfg)),
        }
        let vox = self.voxelizer.as_mut().expect("set above");
        for f in frames {
            if let Some(p) = &f.points {
                if p.data.len() % POINT_DIMS != 0 {
                    bail!("frame {}: point buffer of {} floats is not a multiple of {POINT_DIMS}", f.token, p.data.len());
                }
            }
        }
        let lidar_valid: Vec<f32> =
            frames.iter().map(|f| if f.points.as_ref().is_some_and(|p| !p.is_empty()) { 1.0 } else { 0.0 }).collect();
        let samples = frames.iter().zip(flips).enumerate().filter_map(|(bi, (f, &flip))| {
            f.points.as_ref().filter(|p| !p.is_empty()).map(|p| (bi as i64, p.data.as_slice(), flip))
        });
        let tensors = vox.voxelize_tensors(samples, frames.len());
        Ok((tensors, lidar_valid))
    }
}

/// The map from original to resized pixel coordinates (pixel centres at +0.5) for a resize by
/// `sx` x `sy`, then a crop of `top` rows.
fn pixel_map(sx: f64, sy: f64, top: f64) -> Matrix3<f64> {
    Matrix3::new(sx, 0.0, 0.5 * (sx - 1.0), 0.0, sy, 0.5 * (sy - 1.0) - top, 0.0, 0.0, 1.0)
}

/// A CPU tensor holding a copy of `data` with shape `shape`, filled by one plain memcpy.
/// (`Tensor::from_slice` zero-fills the new tensor first with a parallel libtorch operator;
/// on a busy CPU, waiting for libtorch's worker threads costs more than the copy.)
pub fn host_tensor<T: tch::kind::Element + Copy>(data: &[T], shape: &[i64]) -> Tensor {
    let n = data.len();
    host_tensor_with(shape, |dst: &mut [T]| {
        assert_eq!(dst.len(), n, "host_tensor: {n} values for shape {shape:?}");
        dst.copy_from_slice(data)
    })
}

/// A new CPU tensor of shape `shape` whose values `fill` writes in place (so a large input is
/// written once, straight into the tensor's storage, instead of into a buffer then copied).
/// The slice starts with unspecified values: `fill` must write every element, or the caller
/// must narrow the tensor to the part written.
pub fn host_tensor_with<T: tch::kind::Element + Copy>(shape: &[i64], fill: impl FnOnce(&mut [T])) -> Tensor {
    let t = Tensor::empty(shape, (T::KIND, Device::Cpu));
    let n = t.numel();
    if n == 0 {
        fill(&mut []);
        return t;
    }
    // SAFETY: `t` is a fresh contiguous CPU tensor of `n` elements of kind T::KIND, so its
    // storage holds exactly `n` values of T (plain numbers: any bit pattern is a value); no
    // other reference to that storage exists while `fill` runs.
    let dst = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n) };
    fill(dst);
    t
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
    let (n, np) = (v.len() as i64, v.slots.len() as i64);
    VoxelTensors {
        points: host_tensor(&v.points, &[np, VOXEL_POINT_DIMS as i64]),
        slots: host_tensor(&v.slots, &[np]),
        num_points: host_tensor(&v.num_points, &[n]),
        coords: host_tensor(&v.coords, &[n, 4]),
        means: host_tensor(&v.means, &[n, 3]),
        max_points: max_points as i64,
    }
    .to_device(device)
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

/// A frame's map rasterised onto the model's segmentation grid, `[6, SX, SY]` as 0/1 (the
/// ground truth of the BEV mIoU); None without a map or a segmentation head.
pub fn seg_ground_truth(frame: &Frame, cfg: &ModelConfig) -> Option<Vec<u8>> {
    let seg = cfg.heads.seg.as_ref()?;
    let g = seg.grid.grid();
    let mut out = vec![0f32; MAP_CLASSES.len() * g.nx() * g.ny()];
    seg_target(frame, cfg, (false, false), &mut out).then(|| out.iter().map(|&v| (v > 0.5) as u8).collect())
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
        Self::from_frames_in(frames, cfg, device, opts, &mut BatchWorkspace::default())
    }

    /// [`Self::from_frames_with`] with the host buffers of `ws`, kept between calls (a stream
    /// of frames then allocates only the input tensors themselves).
    pub fn from_frames_in(
        frames: &[Frame],
        cfg: &ModelConfig,
        device: Device,
        opts: &BatchOptions,
        ws: &mut BatchWorkspace,
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
        // camera geometries first (checks only), then the pixels straight into the tensor
        let mut images_in = Vec::with_capacity(b * n);
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
                let image = cam.image.as_ref().filter(|img| img.width() > 0 && img.height() > 0);
                let a = match image {
                    Some(img) => {
                        // intrinsics are for calib.width x calib.height; rescale if the image differs
                        let cw = if cam.calib.width > 0 { cam.calib.width } else { img.width() } as f64;
                        let ch = if cam.calib.height > 0 { cam.calib.height } else { img.height() } as f64;
                        let pre = pixel_map(img.width() as f64 / cw, img.height() as f64 / ch, 0.0);
                        ResizeGeometry::new(img.width(), img.height(), cfg).pixel_map() * pre
                    }
                    None => ResizeGeometry::new(cam.calib.width, cam.calib.height, cfg).pixel_map(),
                };
                images_in.push(image);
                calib.push(CameraGeometry {
                    intrinsics: a * k0,
                    cam_to_lidar: fm * ext,
                });
            }
        }
        // all images of the batch, [B, N, 3, H, W], zeros where a camera is masked. (Running
        // this beside the voxelisation on a second thread was slower on 2 cores: libtorch's
        // worker threads spin on the other core for a while after each forward.)
        let BatchWorkspace { images: resize, lidar } = ws;
        let images = host_tensor_with(&[b as i64, n as i64, 3, hh, ww], |pixels: &mut [f32]| {
            preprocess_images_into(&images_in, cfg, resize, pixels)
        })
        .to_device(device);
        let (voxels_t, lidar_valid) = lidar.voxelize(frames, &flips, cfg)?;
        let voxels_t = voxels_t.to_device(device);
        let valid: Vec<f32> = images_in.iter().map(|i| if i.is_some() { 1.0 } else { 0.0 }).collect();
        let camera_valid = Tensor::from_slice(&valid)
            .view([b as i64, n as i64])
            .to_device(device);

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
            host_tensor(&all, &[b as i64, n as i64, 1, hh, ww]).to_device(device)
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
                    let t = host_tensor(&data, &[b as i64, MAP_CLASSES.len() as i64, sx as i64, sy as i64])
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
                let v = voxels.len();
                voxels.num_points.push(p as i64);
                voxels
                    .coords
                    .extend_from_slice(&[bi as i64, iz as i64, ix as i64, iy as i64]);
                voxels.means.extend_from_slice(&[1.0; 3]);
                voxels.points.extend(std::iter::repeat_n(1f32, p * VOXEL_POINT_DIMS));
                voxels.slots.extend((v * p..(v + 1) * p).map(|s| s as i64));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelConfig {
        ModelConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/config/model/tiny.yaml")).expect("tiny config")
    }

    /// Undo the normalisation: pixel values on the 0..255 scale, `[3, H, W]`.
    fn pixels(x: &Tensor, cfg: &ModelConfig) -> Tensor {
        let m: Vec<f32> = cfg.camera.mean.iter().map(|&v| v as f32).collect();
        let s: Vec<f32> = cfg.camera.std.iter().map(|&v| v as f32).collect();
        x * Tensor::from_slice(&s).view([3, 1, 1]) + Tensor::from_slice(&m).view([3, 1, 1])
    }

    fn pattern(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([((x * 7 + y * 3) % 256) as u8, ((x / 5 + y / 3) % 256) as u8, ((x ^ y) % 256) as u8])
        })
    }

    /// Resizing only the kept rows gives what resizing the whole image and cropping gave
    /// (measured: 1.0x for tiny, 1.5x faster for small, 1.6-2x for base at 1600x900).
    #[test]
    fn only_the_kept_rows_are_resized_and_they_equal_the_full_resize_cropped() {
        use fast_image_resize::{images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions};
        for (w, h, name) in [(1600u32, 900u32, "tiny"), (1600, 900, "small"), (1280, 1024, "tiny"), (800, 450, "tiny"), (1600, 900, "base")] {
            let cfg = ModelConfig::load(format!("{}/config/model/{name}.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let [h_out, w_out] = cfg.camera.image_size.map(|v| v as usize);
            let img = pattern(w, h);
            let mut out = vec![0f32; 3 * h_out * w_out];
            preprocess_image_into(&img, &cfg, &mut ImageResizeBuffers::default(), &mut out);
            // the former way: the whole image resized, then the top rows dropped
            let geo = ResizeGeometry::new(w, h, &cfg);
            let (h_res, top) = (geo.resized_height, geo.top);
            assert!(top > 0 || h_res <= h_out, "{w}x{h} {name}");
            let src = ImageRef::new(w, h, img.as_raw(), PixelType::U8x3).unwrap();
            let mut full = vec![0u8; w_out * h_res * 3];
            let mut dst = Image::from_slice_u8(w_out as u32, h_res as u32, &mut full, PixelType::U8x3).unwrap();
            let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
            fast_image_resize::Resizer::new().resize(&src, &mut dst, &opts).unwrap();
            let rows = h_res.min(h_out);
            let mut differ = 0usize;
            for c in 0..3 {
                let (mean, std) = (cfg.camera.mean[c] as f32, cfg.camera.std[c] as f32);
                for y in 0..rows {
                    for x in 0..w_out {
                        let want = (full[((top + y) * w_out + x) * 3 + c] as f32 - mean) / std;
                        differ += (out[c * h_out * w_out + y * w_out + x] != want) as usize;
                    }
                }
            }
            // bit for bit: the kept rows' filter windows and weights are those of the full resize
            assert_eq!(differ, 0, "{w}x{h} {name}: {differ} of {} values differ", 3 * rows * w_out);
        }
    }

    /// The batch's images, in slot order with a masked slot and a model-size image among
    /// camera-size ones, come out as each image does alone, and a masked slot is all zeros.
    /// The second batch reuses the first one's buffers with the slots reversed, so each
    /// per-image resizer and buffer meets another size than before.
    #[test]
    fn batch_images_equal_images_preprocessed_one_by_one() {
        let cfg = tiny();
        let [h_out, w_out] = cfg.camera.image_size.map(|v| v as usize);
        let per = 3 * h_out * w_out;
        let sizes = [(1600u32, 900u32), (1280, 720), (w_out as u32, h_out as u32), (1920, 1080)];
        let imgs: Vec<SharedImage> =
            sizes.iter().enumerate().map(|(k, &(w, h))| crate::data::share(pattern(w + k as u32, h))).collect();
        let mut slots: Vec<Option<&SharedImage>> = imgs.iter().map(Some).collect();
        slots.insert(2, None);
        let mut buffers = ResizeBuffers::default();
        for round in 0..2 {
            if round == 1 {
                slots.reverse();
            }
            let mut batch = vec![f32::NAN; slots.len() * per];
            preprocess_images_into(&slots, &cfg, &mut buffers, &mut batch);
            for (k, slot) in slots.iter().enumerate() {
                let got = &batch[k * per..(k + 1) * per];
                match slot {
                    Some(img) => {
                        let mut alone = vec![0f32; per];
                        preprocess_image_into(img, &cfg, &mut ImageResizeBuffers::default(), &mut alone);
                        let differ = got.iter().zip(&alone).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                        assert_eq!(
                            differ,
                            0,
                            "round {round}, slot {k} ({}x{}): {differ} values differ",
                            img.width(),
                            img.height()
                        );
                    }
                    None => assert!(got.iter().all(|&v| v == 0.0), "round {round}: masked slot {k} is not zero"),
                }
            }
        }
    }

    /// An image stored as `bgr8`, `rgba8`, `bgra8` or `mono8` gives, resized from its own
    /// bytes, bit for bit the input of the same image converted to RGB first: downscaled
    /// (camera size, odd width), at the input size (no resize) and upscaled.
    #[test]
    fn every_layout_gives_the_input_of_its_rgb_conversion() {
        use crate::data::pixel_layout::tests::encode;
        let cfg = tiny();
        let [h_out, w_out] = cfg.camera.image_size.map(|v| v as u32);
        let per = (3 * h_out * w_out) as usize;
        for (w, h) in [(1601u32, 900u32), (w_out, h_out), (w_out / 2, h_out / 2 + 3)] {
            let mut img = pattern(w, h);
            // alpha 1 and grey = green are what `encode` writes; a grey image is compared with
            // its grey RGB twin
            for layout in PixelLayout::ALL {
                if layout == PixelLayout::Mono8 {
                    img.pixels_mut().for_each(|p| p.0 = [p.0[1]; 3]);
                }
                let (bytes, _) = encode(&img, layout, 0);
                let stored = crate::data::share_bytes(w, h, layout, crate::data::PixelBytes::Owned(bytes)).unwrap();
                let (mut got, mut want) = (vec![f32::NAN; per], vec![f32::NAN; per]);
                let a = preprocess_stored_into(&stored, &cfg, &mut ImageResizeBuffers::default(), &mut got);
                assert_eq!(stored.has_rgb(), layout == PixelLayout::Rgb8, "{layout:?}: built without converting");
                let b = preprocess_image_into(&img, &cfg, &mut ImageResizeBuffers::default(), &mut want);
                let differ = got.iter().zip(&want).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
                assert_eq!(differ, 0, "{w}x{h} {layout:?}: {differ} of {per} values differ");
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn eight_bit_downscale_matches_the_float_antialiased_resize_within_one_level() {
        let cfg = tiny();
        let [h_out, w_out] = cfg.camera.image_size;
        let img = pattern(1600, 900);
        let (x, a) = preprocess_image(&img, &cfg, Device::Cpu);
        assert_eq!(x.size(), vec![3, h_out, w_out]);
        // reference: the whole image in float, resized in float, cropped from the top
        let sx = w_out as f64 / 1600.0;
        let h_res = (900.0 * sx).round() as i64;
        let reference = Tensor::from_slice(img.as_raw().as_slice())
            .view([900, 1600, 3])
            .permute([2, 0, 1])
            .to_kind(Kind::Float)
            .unsqueeze(0)
            .internal_upsample_bilinear2d_aa([h_res, w_out], false, None, None)
            .squeeze_dim(0);
        let top = (h_res - h_out).max(0);
        let reference = if h_res >= h_out {
            reference.narrow(1, top, h_out)
        } else {
            reference.constant_pad_nd([0, 0, 0, h_out - h_res])
        };
        let valid = h_res.min(h_out);
        let err = (pixels(&x, &cfg) - reference).narrow(1, 0, valid).abs();
        // the 8-bit kernel uses fixed-point weights and rounds: at most one level off, half a
        // level on average at most
        let (max, mean) = (err.max().double_value(&[]), err.mean(Kind::Float).double_value(&[]));
        assert!(max <= 1.0 + 1e-3, "8-bit resize differs from the float one by up to {max} levels");
        assert!(mean <= 0.5, "8-bit resize differs from the float one by {mean} levels on average");
        // the pixel-coordinate map follows the resize and the crop
        assert!((a[(0, 0)] - sx).abs() < 1e-12);
        assert!((a[(1, 2)] - (0.5 * (h_res as f64 / 900.0 - 1.0) - top as f64)).abs() < 1e-12);
    }

    #[test]
    fn batch_voxels_equal_voxelize_into_frame_by_frame_with_flips() {
        let cfg = tiny();
        let calib = crate::pipeline::frame_input::neutral_calib("CAM");
        let frame = |seed: u32, with_points: bool| {
            let data: Vec<f32> = (0..4000u32)
                .flat_map(|k| {
                    let a = (k * 7 + seed) as f32 * 0.013;
                    let r = 2.0 + ((k * 31 + seed) % 400) as f32 * 0.1;
                    [r * a.cos(), r * a.sin(), -1.0 + (k % 5) as f32 * 0.4, (k % 256) as f32, 0.0]
                })
                .collect();
            let mut f = crate::pipeline::FrameInput {
                stamp_ns: seed as i64,
                frame_id: "lidar".into(),
                points: with_points.then_some(crate::data::Points { data }),
                cameras: vec![None],
                camera_names: vec!["CAM".into()],
            }
            .into_frame(std::slice::from_ref(&calib));
            f.token = format!("f{seed}");
            f
        };
        let frames = [frame(1, true), frame(2, false), frame(3, true)];
        let flips = vec![(true, false), (false, false), (true, true)];
        let opts = BatchOptions { targets: TargetMode::Never, flips: Some(flips.clone()) };
        let mut ws = BatchWorkspace::default();
        for _ in 0..2 {
            // twice: the reused buffers give the same answer
            let batch = Batch::from_frames_in(&frames, &cfg, Device::Cpu, &opts, &mut ws).unwrap();
            let mut vox = Voxelizer::new(&cfg);
            let mut want = Voxels::default();
            for (bi, (f, &flip)) in frames.iter().zip(&flips).enumerate() {
                if let Some(p) = &f.points {
                    vox.voxelize_into(&p.data, POINT_DIMS, bi as i64, flip, &mut want);
                }
            }
            assert!(want.len() > 100, "{} voxels", want.len());
            let v = &batch.voxels;
            assert_eq!(Vec::<f32>::try_from(v.points.reshape([-1])).unwrap(), want.points);
            assert_eq!(Vec::<i64>::try_from(&v.slots).unwrap(), want.slots);
            assert_eq!(Vec::<i64>::try_from(&v.num_points).unwrap(), want.num_points);
            assert_eq!(Vec::<i64>::try_from(v.coords.reshape([-1])).unwrap(), want.coords);
            assert_eq!(Vec::<f32>::try_from(v.means.reshape([-1])).unwrap(), want.means);
            let padded = want.padded_features(vox.max_points);
            assert_eq!(Vec::<f32>::try_from(v.padded_features().reshape([-1])).unwrap(), padded);
            assert_eq!(Vec::<f32>::try_from(&batch.lidar_valid).unwrap(), vec![1.0, 0.0, 1.0]);
        }
    }

    #[test]
    fn host_tensor_equals_from_slice() {
        let v: Vec<f32> = (0..70_000).map(|i| i as f32 * 0.5 - 3.0).collect();
        let t = host_tensor(&v, &[7, 100, 100]);
        assert!(t.equal(&Tensor::from_slice(&v).view([7, 100, 100])));
        let c: Vec<i64> = (0..40_000).collect();
        assert!(host_tensor(&c, &[10_000, 4]).equal(&Tensor::from_slice(&c).view([10_000, 4])));
        assert_eq!(host_tensor::<f32>(&[], &[0, 12, 4]).size(), vec![0, 12, 4]);
    }

    #[test]
    fn an_image_at_the_input_size_is_only_normalised() {
        let cfg = tiny();
        let [h_out, w_out] = cfg.camera.image_size;
        let img = pattern(w_out as u32, h_out as u32);
        let (x, a) = preprocess_image(&img, &cfg, Device::Cpu);
        let exact = Tensor::from_slice(img.as_raw().as_slice())
            .view([h_out, w_out, 3])
            .permute([2, 0, 1])
            .to_kind(Kind::Float);
        let diff = (pixels(&x, &cfg) - &exact).abs().max().double_value(&[]);
        assert!(diff < 1e-3, "same-size image changed by {diff} levels");
        // bit for bit what libtorch's (x - mean) / std gives
        let m: Vec<f32> = cfg.camera.mean.iter().map(|&v| v as f32).collect();
        let s: Vec<f32> = cfg.camera.std.iter().map(|&v| v as f32).collect();
        let torch = (exact - Tensor::from_slice(&m).view([3, 1, 1])) / Tensor::from_slice(&s).view([3, 1, 1]);
        assert!(x.equal(&torch), "normalisation differs from libtorch's");
        assert_eq!(a, Matrix3::identity());
    }

    #[test]
    fn a_wide_image_is_padded_at_the_bottom_with_exact_zeros() {
        let cfg = tiny();
        let [h_out, w_out] = cfg.camera.image_size;
        // twice the width, same height: resized to half the height, the rest padded
        let img = pattern(2 * w_out as u32, h_out as u32);
        let (x, _) = preprocess_image(&img, &cfg, Device::Cpu);
        let h_res = (h_out as f64 / 2.0).round() as i64;
        let pad = x.narrow(1, h_res, h_out - h_res);
        assert_eq!(pad.abs().max().double_value(&[]), 0.0);
        assert!(x.narrow(1, 0, h_res).abs().max().double_value(&[]) > 0.0);
    }
}
