//! The model configuration: which parts make up the model and how big they are, loaded from
//! `config/model/<name>.yaml` (mmdetection3d-style: each part has a `type` and its options).
//!
//! Every prunable width is a named *width slot* (see [`crate::model::channels`]); the
//! `widths:` map overrides slot defaults by name, so a structurally pruned model is rebuilt
//! physically smaller from its config alone. The config is embedded (as JSON) in every
//! checkpoint under the `model_config` metadata key.

use crate::config::{ensure, ConfigError, FieldError, Validate};
use crate::geometry::BevGrid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The whole model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Short name (`tiny`, `small`, `base`, or anything).
    pub name: String,
    /// The fused BEV feature grid (LiDAR frame, x forward): every branch's BEV output, the
    /// fuser, the decoder and the detection head live on it.
    pub bev: GridConfig,
    pub camera: CameraConfig,
    pub lidar: LidarConfig,
    pub fuser: FuserConfig,
    pub decoder: DecoderConfig,
    pub heads: HeadsConfig,
    /// Width-slot overrides (`slot name -> channels`), written by structured pruning.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub widths: BTreeMap<String, i64>,
    /// Training recipe defaults for this model (the CLI may override each).
    #[serde(default)]
    pub train: TrainConfig,
}

/// A BEV grid in YAML (`x: [min, max]`, `y: [min, max]`, `resolution`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    pub x: [f64; 2],
    pub y: [f64; 2],
    /// Metres per cell.
    pub resolution: f64,
}

impl GridConfig {
    pub fn grid(&self) -> BevGrid {
        BevGrid {
            x_min: self.x[0],
            x_max: self.x[1],
            y_min: self.y[0],
            y_max: self.y[1],
            resolution: self.resolution,
        }
    }
    /// The same extent at `resolution / factor`.
    pub fn finer(&self, factor: f64) -> GridConfig {
        GridConfig {
            resolution: self.resolution / factor,
            ..*self
        }
    }
    fn check(&self, field: &str) -> Result<(), FieldError> {
        ensure(
            self.resolution > 0.0,
            &format!("{field}.resolution"),
            "must be positive",
        )?;
        ensure(
            self.x[1] > self.x[0],
            &format!("{field}.x"),
            "max must exceed min",
        )?;
        ensure(
            self.y[1] > self.y[0],
            &format!("{field}.y"),
            "max must exceed min",
        )?;
        for (axis, r) in [("x", self.x), ("y", self.y)] {
            let n = (r[1] - r[0]) / self.resolution;
            ensure(
                (n - n.round()).abs() < 1e-6,
                &format!("{field}.{axis}"),
                format!(
                    "extent {} m is not a whole number of {} m cells",
                    r[1] - r[0],
                    self.resolution
                ),
            )?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Camera branch

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Network input size `[height, width]`. Images of any resolution are scaled to this
    /// width, then cropped from the top (or zero-padded at the bottom) to this height.
    pub image_size: [i64; 2],
    /// Per-channel mean and standard deviation (0..255 scale) for normalisation.
    #[serde(default = "default_mean")]
    pub mean: [f64; 3],
    #[serde(default = "default_std")]
    pub std: [f64; 3],
    /// The rig used when no data gives one (data-free batches, benchmarks, FLOPs).
    #[serde(default)]
    pub default_rig: RigConfig,
    pub backbone: ResNetConfig,
    pub neck: FpnConfig,
    pub vtransform: LssConfig,
}

fn default_mean() -> [f64; 3] {
    [123.675, 116.28, 103.53]
}
fn default_std() -> [f64; 3] {
    [58.395, 57.12, 57.375]
}

/// A ring of cameras looking outwards, evenly spread in yaw (first camera looks along +x).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RigConfig {
    pub num_cameras: usize,
    /// Horizontal field of view of each camera.
    pub fov_deg: f64,
    /// Camera height above the LiDAR origin (metres, LiDAR z up).
    pub height: f64,
}

impl Default for RigConfig {
    fn default() -> Self {
        Self {
            num_cameras: 6,
            fov_deg: 70.0,
            height: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneKind {
    Resnet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3x3 convs (ResNet-18/34).
    Basic,
    /// 1x1 -> 3x3 -> 1x1 with a 4x narrower middle (ResNet-50/101).
    Bottleneck,
}

/// ResNet-style image backbone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    #[serde(rename = "type")]
    pub kind: BackboneKind,
    pub block: BlockKind,
    pub stem_channels: i64,
    /// Stem conv kernel (7 in ResNet, 3 for small inputs).
    #[serde(default = "default_stem_kernel")]
    pub stem_kernel: i64,
    #[serde(default = "default_two")]
    pub stem_stride: i64,
    /// 3x3 stride-2 max pooling after the stem.
    #[serde(default = "default_true")]
    pub stem_pool: bool,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Output channels per stage.
    pub channels: Vec<i64>,
    /// Stride of each stage's first block.
    pub strides: Vec<i64>,
}

fn default_stem_kernel() -> i64 {
    7
}
fn default_two() -> i64 {
    2
}
fn default_true() -> bool {
    true
}

impl ResNetConfig {
    /// Output stride of stage `s` relative to the image.
    pub fn stage_stride(&self, s: usize) -> i64 {
        let mut st = self.stem_stride * if self.stem_pool { 2 } else { 1 };
        for k in 0..=s {
            st *= self.strides[k];
        }
        st
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeckKind {
    Fpn,
}

/// FPN over some backbone stages; one output map at the stride of the first listed stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FpnConfig {
    #[serde(rename = "type")]
    pub kind: NeckKind,
    /// Backbone stage indices (0-based, increasing).
    pub in_stages: Vec<usize>,
    pub channels: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VTransformKind {
    /// Lift-Splat-Shoot: depth distribution from the image alone.
    Lss,
    /// BEVFusion's DepthLSS: LiDAR points projected into the image as a depth hint.
    DepthLss,
}

/// Camera-to-BEV view transform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LssConfig {
    #[serde(rename = "type")]
    pub kind: VTransformKind,
    /// Depth bins `[min, max, step]` in metres (bin centres at min + (k + 0.5) step).
    pub depth: [f64; 3],
    /// Frustum points outside this height band (LiDAR z) are dropped.
    pub z_range: [f64; 2],
    /// Middle width of the depth net (3x3 conv before the 1x1 output); 0 = a single 1x1 conv.
    pub depthnet_channels: i64,
    /// BEV feature channels lifted per pixel.
    pub channels: i64,
    /// BEV pooling happens on a grid `downsample` times finer than `bev`, then a strided
    /// conv stack brings it to the `bev` grid (BEVFusion uses 2). 1 = pool directly on `bev`.
    #[serde(default = "default_one")]
    pub downsample: i64,
    /// Width of the depth-hint encoder (DepthLSS only).
    #[serde(default = "default_hint")]
    pub depth_hint_channels: i64,
}

fn default_one() -> i64 {
    1
}
fn default_hint() -> i64 {
    8
}

impl LssConfig {
    pub fn num_bins(&self) -> i64 {
        ((self.depth[1] - self.depth[0]) / self.depth[2]).round() as i64
    }
}

// ------------------------------------------------------------------------------------------
// LiDAR branch

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LidarConfig {
    pub voxel: VoxelConfig,
    pub encoder: PillarConfig,
    pub backbone: SecondConfig,
    pub neck: SecondFpnConfig,
}

/// Voxelisation. The x/y range is the `bev` grid's; pillars when `size[2]` spans `z_range`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoxelConfig {
    /// Voxel size `[x, y, z]` in metres.
    pub size: [f64; 3],
    pub z_range: [f64; 2],
    pub max_points: usize,
    pub max_voxels: usize,
    /// Multiplier for the raw intensity (nuScenes stores 0..255).
    #[serde(default = "default_intensity_scale")]
    pub intensity_scale: f64,
}

fn default_intensity_scale() -> f64 {
    1.0 / 255.0
}

impl VoxelConfig {
    pub fn nz(&self) -> usize {
        ((self.z_range[1] - self.z_range[0]) / self.size[2])
            .round()
            .max(1.0) as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    Pillar,
}

/// PointPillars-style voxel feature encoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PillarConfig {
    #[serde(rename = "type")]
    pub kind: EncoderKind,
    pub channels: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondKind {
    Second,
}

/// SECOND 2D backbone: stages of `1 + layer_nums[i]` 3x3 conv-BN-ReLU, the first strided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondConfig {
    #[serde(rename = "type")]
    pub kind: SecondKind,
    pub layer_nums: Vec<usize>,
    pub strides: Vec<i64>,
    pub channels: Vec<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFpnKind {
    SecondFpn,
}

/// SECOND-FPN: each stage upsampled (transposed conv) to a common stride, concatenated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondFpnConfig {
    #[serde(rename = "type")]
    pub kind: SecondFpnKind,
    pub upsample_strides: Vec<i64>,
    pub channels: Vec<i64>,
}

// ------------------------------------------------------------------------------------------
// Fusion

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FuserKind {
    Conv,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuserConfig {
    #[serde(rename = "type")]
    pub kind: FuserKind,
    pub channels: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    pub backbone: SecondConfig,
    pub neck: SecondFpnConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadsConfig {
    #[serde(default)]
    pub det: Option<CenterPointConfig>,
    #[serde(default)]
    pub seg: Option<SegHeadConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetHeadKind {
    Centerpoint,
}

/// CenterPoint-style detection head (one task group over the ten classes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterPointConfig {
    #[serde(rename = "type")]
    pub kind: DetHeadKind,
    pub shared_channels: i64,
    pub head_channels: i64,
    /// Weight of the heatmap (Gaussian focal) loss.
    #[serde(default = "default_one_f")]
    pub heatmap_weight: f64,
    /// Weight of the box regression (L1) loss.
    #[serde(default = "default_bbox_weight")]
    pub bbox_weight: f64,
    /// Per-code weights: offset x, offset y, z, log w, log l, log h, sin, cos, vx, vy.
    #[serde(default = "default_code_weights")]
    pub code_weights: [f64; 10],
    /// Gaussian radius: CenterNet's radius at this minimum IoU overlap...
    #[serde(default = "default_overlap")]
    pub gaussian_overlap: f64,
    /// ...and at least this many cells.
    #[serde(default = "default_min_radius")]
    pub min_radius: i64,
    /// Objects per frame kept as regression targets.
    #[serde(default = "default_max_objects")]
    pub max_objects: usize,
    /// Ground-truth boxes with fewer LiDAR points are not trained on (the nuScenes metric
    /// drops boxes without points).
    #[serde(default = "default_one_u")]
    pub min_lidar_points: u32,
    /// Candidates kept by top-k before NMS.
    #[serde(default = "default_pre_max")]
    pub pre_max: i64,
    /// Detections kept per frame after NMS.
    #[serde(default = "default_post_max")]
    pub post_max: usize,
    #[serde(default = "default_score_threshold")]
    pub score_threshold: f64,
    /// Circle-NMS radius per class in metres (order of `classes::DETECTION_CLASSES`);
    /// 0 disables NMS for that class.
    #[serde(default = "default_nms_radius")]
    pub nms_radius: Vec<f64>,
}

fn default_one_f() -> f64 {
    1.0
}
fn default_one_u() -> u32 {
    1
}
fn default_bbox_weight() -> f64 {
    0.25
}
fn default_code_weights() -> [f64; 10] {
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2]
}
fn default_overlap() -> f64 {
    0.1
}
fn default_min_radius() -> i64 {
    2
}
fn default_max_objects() -> usize {
    256
}
fn default_pre_max() -> i64 {
    500
}
fn default_post_max() -> usize {
    300
}
fn default_score_threshold() -> f64 {
    0.05
}
fn default_nms_radius() -> Vec<f64> {
    // CenterPoint's nuScenes circle-NMS radii, by class.
    vec![4.0, 12.0, 10.0, 10.0, 12.0, 1.0, 0.85, 0.85, 0.175, 0.175]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegHeadKind {
    BevSeg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegLoss {
    Focal,
    Bce,
}

/// BEV map segmentation head for the six `classes::MAP_CLASSES`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegHeadConfig {
    #[serde(rename = "type")]
    pub kind: SegHeadKind,
    /// Output grid (features are resampled onto it bilinearly).
    pub grid: GridConfig,
    pub channels: i64,
    #[serde(default = "default_seg_loss")]
    pub loss: SegLoss,
    #[serde(default = "default_alpha")]
    pub focal_alpha: f64,
    #[serde(default = "default_gamma")]
    pub focal_gamma: f64,
    #[serde(default = "default_one_f")]
    pub weight: f64,
}

fn default_seg_loss() -> SegLoss {
    SegLoss::Focal
}
fn default_alpha() -> f64 {
    0.25
}
fn default_gamma() -> f64 {
    2.0
}

// ------------------------------------------------------------------------------------------
// Training recipe

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    Adamw,
}

/// Default training recipe of a model; every field can be overridden on the command line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    pub betas: [f64; 2],
    /// Linear warm-up steps, then cosine decay to `min_lr_ratio * lr`.
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    pub steps: usize,
    pub batch_size: usize,
    /// Global gradient-norm clip (0 = off).
    pub grad_clip: f64,
    /// Random BEV flips along x and y (points, boxes, map, camera extrinsics together).
    pub flip: bool,
    /// Checkpoint (resumable training state) every this many steps.
    pub checkpoint_every: usize,
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adamw,
            lr: 2e-3,
            weight_decay: 0.01,
            betas: [0.9, 0.999],
            warmup_steps: 50,
            min_lr_ratio: 0.01,
            steps: 1000,
            batch_size: 4,
            grad_clip: 10.0,
            flip: true,
            checkpoint_every: 100,
            log_every: 10,
        }
    }
}

// ------------------------------------------------------------------------------------------

fn check_second(s: &SecondConfig, f: &str) -> Result<(), FieldError> {
    let n = s.layer_nums.len();
    ensure(
        n > 0,
        &format!("{f}.layer_nums"),
        "needs at least one stage",
    )?;
    ensure(
        s.strides.len() == n,
        &format!("{f}.strides"),
        format!("needs {n} entries (one per stage)"),
    )?;
    ensure(
        s.channels.len() == n,
        &format!("{f}.channels"),
        format!("needs {n} entries (one per stage)"),
    )?;
    ensure(
        s.strides.iter().all(|&v| v >= 1),
        &format!("{f}.strides"),
        "must be >= 1",
    )?;
    ensure(
        s.channels.iter().all(|&v| v >= 1),
        &format!("{f}.channels"),
        "must be >= 1",
    )
}

/// Checks a SECOND + FPN pair and returns the output stride relative to the SECOND input.
fn check_second_fpn(
    b: &SecondConfig,
    n: &SecondFpnConfig,
    bf: &str,
    nf: &str,
) -> Result<i64, FieldError> {
    check_second(b, bf)?;
    let k = b.strides.len();
    ensure(
        n.upsample_strides.len() == k,
        &format!("{nf}.upsample_strides"),
        format!("needs {k} entries"),
    )?;
    ensure(
        n.channels.len() == k,
        &format!("{nf}.channels"),
        format!("needs {k} entries"),
    )?;
    ensure(
        n.upsample_strides.iter().all(|&v| v >= 1),
        &format!("{nf}.upsample_strides"),
        "must be >= 1",
    )?;
    let mut cum = 1;
    let mut out = None;
    for i in 0..k {
        cum *= b.strides[i];
        let up = n.upsample_strides[i];
        ensure(
            cum % up == 0,
            &format!("{nf}.upsample_strides"),
            format!("stage {i} has stride {cum}, not divisible by its upsampling {up}"),
        )?;
        let o = cum / up;
        match out {
            None => out = Some(o),
            Some(prev) => ensure(
                prev == o,
                &format!("{nf}.upsample_strides"),
                format!("stages end at different strides ({prev} and {o}); all must match"),
            )?,
        }
    }
    Ok(out.unwrap_or(1))
}

impl Validate for ModelConfig {
    fn validate(&self) -> Result<(), FieldError> {
        self.bev.check("bev")?;
        let cam = &self.camera;
        ensure(
            cam.image_size.iter().all(|&v| v > 0),
            "camera.image_size",
            "must be positive",
        )?;
        ensure(
            cam.std.iter().all(|&v| v > 0.0),
            "camera.std",
            "must be positive",
        )?;
        ensure(
            cam.default_rig.num_cameras >= 1,
            "camera.default_rig.num_cameras",
            "must be >= 1",
        )?;
        ensure(
            cam.default_rig.fov_deg > 1.0 && cam.default_rig.fov_deg < 179.0,
            "camera.default_rig.fov_deg",
            "must be in (1, 179) degrees",
        )?;
        let bb = &cam.backbone;
        let ns = bb.depths.len();
        ensure(ns > 0, "camera.backbone.depths", "needs at least one stage")?;
        ensure(
            bb.depths.iter().all(|&d| d >= 1),
            "camera.backbone.depths",
            "every stage needs >= 1 block",
        )?;
        ensure(
            bb.channels.len() == ns,
            "camera.backbone.channels",
            format!("needs {ns} entries (one per stage)"),
        )?;
        ensure(
            bb.strides.len() == ns,
            "camera.backbone.strides",
            format!("needs {ns} entries (one per stage)"),
        )?;
        ensure(
            bb.strides.iter().all(|&s| s == 1 || s == 2),
            "camera.backbone.strides",
            "must be 1 or 2",
        )?;
        ensure(
            bb.channels.iter().all(|&c| c >= 1),
            "camera.backbone.channels",
            "must be >= 1",
        )?;
        ensure(
            bb.stem_channels >= 1,
            "camera.backbone.stem_channels",
            "must be >= 1",
        )?;
        ensure(
            bb.stem_kernel % 2 == 1,
            "camera.backbone.stem_kernel",
            "must be odd",
        )?;
        ensure(
            bb.stem_stride >= 1,
            "camera.backbone.stem_stride",
            "must be >= 1",
        )?;
        if bb.block == BlockKind::Bottleneck {
            ensure(
                bb.channels.iter().all(|&c| c % 4 == 0),
                "camera.backbone.channels",
                "bottleneck stage widths must be multiples of 4",
            )?;
        }
        let neck = &cam.neck;
        ensure(
            !neck.in_stages.is_empty(),
            "camera.neck.in_stages",
            "needs at least one stage",
        )?;
        ensure(
            neck.in_stages.windows(2).all(|w| w[0] < w[1])
                && neck.in_stages.iter().all(|&s| s < ns),
            "camera.neck.in_stages",
            format!("must be increasing stage indices below {ns}"),
        )?;
        ensure(neck.channels >= 1, "camera.neck.channels", "must be >= 1")?;
        let stride = bb.stage_stride(neck.in_stages[0]);
        for (i, &s) in neck.in_stages.iter().enumerate().skip(1) {
            let prev = bb.stage_stride(neck.in_stages[i - 1]);
            let this = bb.stage_stride(s);
            ensure(
                this % prev == 0,
                "camera.neck.in_stages",
                "stage strides must divide each other",
            )?;
        }
        let deepest = bb.stage_stride(*neck.in_stages.last().unwrap_or(&0));
        ensure(
            cam.image_size[0] % deepest == 0 && cam.image_size[1] % deepest == 0,
            "camera.image_size",
            format!("must be divisible by the deepest neck input stride {deepest}"),
        )?;
        let _ = stride;
        let vt = &cam.vtransform;
        ensure(
            vt.depth[2] > 0.0 && vt.depth[1] > vt.depth[0] && vt.depth[0] > 0.0,
            "camera.vtransform.depth",
            "must be [min > 0, max > min, step > 0]",
        )?;
        ensure(
            vt.num_bins() >= 1,
            "camera.vtransform.depth",
            "gives no depth bins",
        )?;
        ensure(
            vt.z_range[1] > vt.z_range[0],
            "camera.vtransform.z_range",
            "max must exceed min",
        )?;
        ensure(
            vt.channels >= 1,
            "camera.vtransform.channels",
            "must be >= 1",
        )?;
        ensure(
            vt.depthnet_channels >= 0,
            "camera.vtransform.depthnet_channels",
            "must be >= 0",
        )?;
        ensure(
            vt.downsample == 1 || vt.downsample == 2,
            "camera.vtransform.downsample",
            "must be 1 or 2",
        )?;
        ensure(
            vt.depth_hint_channels >= 1,
            "camera.vtransform.depth_hint_channels",
            "must be >= 1",
        )?;

        let lid = &self.lidar;
        let v = &lid.voxel;
        ensure(
            v.size.iter().all(|&s| s > 0.0),
            "lidar.voxel.size",
            "must be positive",
        )?;
        ensure(
            v.z_range[1] > v.z_range[0],
            "lidar.voxel.z_range",
            "max must exceed min",
        )?;
        ensure(v.max_points >= 1, "lidar.voxel.max_points", "must be >= 1")?;
        ensure(v.max_voxels >= 1, "lidar.voxel.max_voxels", "must be >= 1")?;
        ensure(
            lid.encoder.channels >= 1,
            "lidar.encoder.channels",
            "must be >= 1",
        )?;
        let lstride = check_second_fpn(&lid.backbone, &lid.neck, "lidar.backbone", "lidar.neck")?;
        ensure(
            (v.size[0] - v.size[1]).abs() < 1e-9,
            "lidar.voxel.size",
            "x and y voxel sizes must be equal",
        )?;
        ensure(
            (v.size[0] * lstride as f64 - self.bev.resolution).abs() < 1e-6,
            "lidar.voxel.size",
            format!(
                "voxel size {} x LiDAR backbone output stride {lstride} must equal bev.resolution {}",
                v.size[0], self.bev.resolution
            ),
        )?;
        ensure(self.fuser.channels >= 1, "fuser.channels", "must be >= 1")?;
        let dstride = check_second_fpn(
            &self.decoder.backbone,
            &self.decoder.neck,
            "decoder.backbone",
            "decoder.neck",
        )?;
        ensure(
            dstride == 1,
            "decoder.neck.upsample_strides",
            "the decoder must end at stride 1 (the bev grid)",
        )?;
        ensure(
            self.heads.det.is_some() || self.heads.seg.is_some(),
            "heads",
            "needs at least one of det, seg",
        )?;
        if let Some(d) = &self.heads.det {
            ensure(
                d.shared_channels >= 1,
                "heads.det.shared_channels",
                "must be >= 1",
            )?;
            ensure(
                d.head_channels >= 1,
                "heads.det.head_channels",
                "must be >= 1",
            )?;
            ensure(
                d.nms_radius.len() == crate::classes::DETECTION_CLASSES.len(),
                "heads.det.nms_radius",
                format!(
                    "needs one radius per detection class ({})",
                    crate::classes::DETECTION_CLASSES.len()
                ),
            )?;
            ensure(d.pre_max >= 1, "heads.det.pre_max", "must be >= 1")?;
            ensure(d.max_objects >= 1, "heads.det.max_objects", "must be >= 1")?;
            ensure(
                d.gaussian_overlap > 0.0 && d.gaussian_overlap < 1.0,
                "heads.det.gaussian_overlap",
                "must be in (0, 1)",
            )?;
        }
        if let Some(s) = &self.heads.seg {
            s.grid.check("heads.seg.grid")?;
            ensure(s.channels >= 1, "heads.seg.channels", "must be >= 1")?;
        }
        for (k, &w) in &self.widths {
            ensure(w >= 1, &format!("widths.{k}"), "a width must be >= 1")?;
        }
        let t = &self.train;
        ensure(t.lr > 0.0, "train.lr", "must be positive")?;
        ensure(t.batch_size >= 1, "train.batch_size", "must be >= 1")?;
        ensure(t.steps >= 1, "train.steps", "must be >= 1")?;
        ensure(t.log_every >= 1, "train.log_every", "must be >= 1")?;
        ensure(
            t.checkpoint_every >= 1,
            "train.checkpoint_every",
            "must be >= 1",
        )?;
        Ok(())
    }
}

impl ModelConfig {
    /// Load and validate a YAML model config. Errors name the file, line and field; width
    /// overrides naming no slot of the model are rejected here too.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let cfg: ModelConfig = crate::config::load_yaml(path)?;
        if let Err(e) = cfg.check_width_slots() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            // Width slot names contain dots: locate the `widths:` block, then the key.
            let line = crate::config::locate_field(&text, "widths").map(|l| {
                let key = e.field.trim_start_matches("widths.");
                text.lines()
                    .enumerate()
                    .skip(l)
                    .find(|(_, s)| s.trim_start().starts_with(&format!("{key}:")))
                    .map(|(i, _)| i + 1)
                    .unwrap_or(l)
            });
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column: None,
                field: e.field,
                message: e.message,
            });
        }
        Ok(cfg)
    }

    /// Parse a config from the JSON embedded in a checkpoint (`origin` names the file).
    pub fn from_json(json: &str, origin: &str) -> anyhow::Result<Self> {
        let mut de = serde_json::Deserializer::from_str(json);
        let cfg: ModelConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            anyhow::anyhow!(
                "{origin}: model_config: field `{}`: {}",
                e.path(),
                e.inner()
            )
        })?;
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("{origin}: model_config: {e}"))?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("model config serialises")
    }

    /// The default value of every width slot and the override in effect, computed without
    /// allocating the model's weights (`slot -> width`).
    pub fn width_slots(&self) -> BTreeMap<String, i64> {
        crate::model::bevfusion::plan_slots(self).sizes()
    }

    /// Every `widths` key must name a slot of the model.
    pub fn check_width_slots(&self) -> Result<(), FieldError> {
        if self.widths.is_empty() {
            return Ok(());
        }
        let plan = crate::model::bevfusion::plan_slots(self);
        if let Some(bad) = plan.unused_overrides().first() {
            let known: Vec<String> = plan.sizes().keys().cloned().collect();
            return Err(FieldError::new(
                format!("widths.{bad}"),
                format!(
                    "no width slot of that name (the model's slots: {})",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }

    pub fn num_det_classes(&self) -> i64 {
        crate::classes::DETECTION_CLASSES.len() as i64
    }
}
