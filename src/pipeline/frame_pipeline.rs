//! [`FramePipeline`]: one frame of sensor data in, detections and BEV segmentation out.
//!
//! The pipeline checks its input, chooses the modality mask from what is present (no LiDAR
//! points: camera-only; no usable camera: LiDAR-only), runs the [`Network`], applies the
//! score threshold and the detection cap, and times every stage. It is what the ROS node,
//! bag replay and `altermoma infer` share.

use super::frame_input::{neutral_calib, FrameInput};
use super::network::{Network, NetworkInfo};
use super::output::{FrameOutput, Segmentation, StageTimings};
use crate::classes::MAP_CLASSES;
use crate::data::{CameraCalib, Points, POINT_DIMS};
use crate::model::ModalityMask;
use anyhow::{bail, Result};
use std::time::Instant;

/// Knobs of the pipeline that do not depend on the network.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineOptions {
    /// Detections scoring below are dropped.
    pub score_threshold: f32,
    /// At most this many detections per frame (best first).
    pub max_detections: usize,
    /// Clouds with more points are rejected.
    pub cloud_capacity: usize,
    /// Frames run before going live (each mode once per warm-up frame).
    pub warmup_frames: usize,
    /// Per-class segmentation thresholds (one per map class).
    pub seg_thresholds: Vec<f32>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.1,
            max_detections: 200,
            cloud_capacity: 400_000,
            warmup_frames: 2,
            seg_thresholds: vec![0.5; MAP_CLASSES.len()],
        }
    }
}

/// The per-frame pipeline.
pub struct FramePipeline {
    net: Box<dyn Network>,
    info: NetworkInfo,
    opts: PipelineOptions,
    /// Last calibration seen per camera slot, used for masked slots.
    last_calibs: Vec<CameraCalib>,
    frames_run: u64,
}

impl FramePipeline {
    /// Wrap a network.
    pub fn new(net: Box<dyn Network>, opts: PipelineOptions) -> Result<Self> {
        let info = net.info();
        if opts.seg_thresholds.len() != MAP_CLASSES.len() {
            bail!(
                "segmentation thresholds: {} given, {} map classes ({})",
                opts.seg_thresholds.len(),
                MAP_CLASSES.len(),
                MAP_CLASSES.join(", ")
            );
        }
        if opts.max_detections == 0 {
            bail!("max_detections must be at least 1");
        }
        Ok(Self { net, info, opts, last_calibs: Vec::new(), frames_run: 0 })
    }

    pub fn info(&self) -> &NetworkInfo {
        &self.info
    }

    pub fn options(&self) -> &PipelineOptions {
        &self.opts
    }

    /// Frames run so far (warm-up included).
    pub fn frames_run(&self) -> u64 {
        self.frames_run
    }

    /// Run synthetic frames through every mode (fusion, LiDAR-only, camera-only) so that
    /// lazy initialisation (allocator pools, CUDA kernels, cuDNN autotuning, the view
    /// transform's geometry for these calibrations) happens before going live.
    /// `camera_names` and `calibs` shape the frames like the live ones (neutral calibrations
    /// at the network's input size where None).
    pub fn warm_up(&mut self, camera_names: &[String], calibs: &[Option<CameraCalib>]) -> Result<()> {
        let size = self.info.input_size;
        for k in 0..self.opts.warmup_frames {
            let input = synthetic_input(camera_names, calibs, size, k as u64);
            for mask in [ModalityMask::FUSION, ModalityMask::LIDAR_ONLY, ModalityMask::CAMERA_ONLY] {
                let mut f = input.clone();
                if !mask.lidar {
                    f.points = None;
                }
                if !mask.camera {
                    f.cameras.iter_mut().for_each(|c| *c = None);
                }
                self.run(&f).map_err(|e| e.context(format!("warm-up frame {k} ({})", mask.name())))?;
            }
        }
        Ok(())
    }

    /// Run one frame.
    pub fn run(&mut self, input: &FrameInput) -> Result<FrameOutput> {
        self.run_owned(input.clone())
    }

    /// [`Self::run`] on an input the caller gives away (no copy of points and images).
    pub fn run_owned(&mut self, input: FrameInput) -> Result<FrameOutput> {
        let mut warnings = Vec::new();
        let n_slots = self.info.num_cameras;
        if input.cameras.len() != input.camera_names.len() {
            bail!("frame has {} camera slots but {} camera names", input.cameras.len(), input.camera_names.len());
        }
        if n_slots.is_some_and(|n| n != input.cameras.len()) {
            bail!(
                "frame has {} camera slots, the model expects {} (check the `camera_names` parameter)",
                input.cameras.len(),
                n_slots.unwrap_or_default()
            );
        }
        let n_slots = input.cameras.len();
        let t_check = Instant::now();
        // LiDAR: finite points within capacity.
        let FrameInput { stamp_ns, frame_id, mut points, mut cameras, camera_names } = input;
        if let Some(p) = &mut points {
            if p.data.len() % POINT_DIMS != 0 {
                bail!("point buffer of {} floats is not a multiple of {POINT_DIMS}", p.data.len());
            }
            let cap = self.info.max_points.map_or(self.opts.cloud_capacity, |m| m.min(self.opts.cloud_capacity));
            if p.len() > cap {
                bail!("cloud has {} points, more than the capacity of {cap}", p.len());
            }
            // one vectorised sweep (no early exit) in the usual case: every value finite
            let all_finite = p.data.iter().fold(true, |a, v| a & v.is_finite());
            let bad = if all_finite { 0 } else { p.iter().filter(|r| !r.iter().all(|v| v.is_finite())).count() };
            if bad > 0 {
                warnings.push(format!("dropped {bad} LiDAR points with NaN/Inf values"));
                *p = Points { data: p.iter().filter(|r| r.iter().all(|v| v.is_finite())).flatten().copied().collect() };
            }
            if p.is_empty() {
                warnings.push("LiDAR cloud has no valid points: LiDAR masked".into());
            }
        }
        let lidar = points.as_ref().is_some_and(|p| !p.is_empty());
        if !lidar {
            points = None;
        }
        // Cameras: image and calibration must agree.
        let mut masked = Vec::new();
        if self.last_calibs.len() != n_slots {
            self.last_calibs = camera_names.iter().map(|n| neutral_calib(n)).collect();
        }
        for (i, slot) in cameras.iter_mut().enumerate() {
            let name = &camera_names[i];
            if let Some(c) = slot {
                let (w, h) = c.image.dimensions();
                let problem = if w == 0 || h == 0 {
                    Some(format!("camera {name}: zero-size image {w}x{h}"))
                } else if (w, h) != (c.calib.width, c.calib.height) {
                    Some(format!(
                        "camera {name}: image is {w}x{h} but its calibration is {}x{}",
                        c.calib.width, c.calib.height
                    ))
                } else if !c.calib.intrinsics.iter().all(|v| v.is_finite())
                    || !c.calib.cam_to_lidar.to_homogeneous().iter().all(|v| v.is_finite())
                {
                    Some(format!("camera {name}: calibration has NaN/Inf values"))
                } else {
                    None
                };
                match problem {
                    Some(p) => {
                        warnings.push(format!("{p}: camera masked"));
                        *slot = None;
                    }
                    None => self.last_calibs[i] = c.calib.clone(),
                }
            }
            if slot.is_none() {
                masked.push(name.clone());
            }
        }
        let camera = cameras.iter().any(|c| c.is_some());
        let mode = ModalityMask { camera, lidar };
        if !camera && !lidar {
            bail!("no usable sensor data: no LiDAR points and no camera image");
        }
        let checked = FrameInput { stamp_ns, frame_id: frame_id.clone(), points, cameras, camera_names };
        let frame = checked.into_frame(&self.last_calibs);
        let check_ms = ms(t_check);

        let mut timings = StageTimings::default();
        let out = self.net.infer(&frame, mode, &mut timings)?;
        self.frames_run += 1;

        let t_post = Instant::now();
        let mut detections: Vec<_> = out
            .boxes
            .into_iter()
            .filter(|b| {
                b.score.is_finite()
                    && b.score >= self.opts.score_threshold as f64
                    && b.center.iter().chain(&b.size).chain(&b.velocity).all(|v| v.is_finite())
                    && b.yaw.is_finite()
            })
            .collect();
        // Best first; ties keep the network's order (stable sort) so output is deterministic.
        detections.sort_by(|a, b| b.score.total_cmp(&a.score));
        detections.truncate(self.opts.max_detections);
        let segmentation = match (out.seg_probs, self.info.seg_grid) {
            (Some(probs), Some(grid)) => {
                let expect = MAP_CLASSES.len() * grid.nx() * grid.ny();
                if probs.len() != expect {
                    bail!("network returned {} segmentation values, expected {expect}", probs.len());
                }
                Some(Segmentation {
                    grid,
                    class_names: MAP_CLASSES.iter().map(|s| s.to_string()).collect(),
                    thresholds: self.opts.seg_thresholds.clone(),
                    probs,
                })
            }
            _ => None,
        };
        timings.postprocess += ms(t_post) + check_ms;
        Ok(FrameOutput {
            stamp_ns,
            frame_id,
            detections,
            segmentation,
            mode,
            masked_cameras: masked,
            timings,
            warnings,
        })
    }
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A deterministic synthetic frame for warm-up: a ring of points and mid-grey images.
fn synthetic_input(
    camera_names: &[String],
    calibs: &[Option<CameraCalib>],
    size: Option<(u32, u32)>,
    seed: u64,
) -> FrameInput {
    let mut data = Vec::with_capacity(2000 * POINT_DIMS);
    for k in 0..2000u64 {
        let a = (k as f32) * 0.0314 + seed as f32;
        let r = 5.0 + (k % 40) as f32;
        data.extend_from_slice(&[r * a.cos(), r * a.sin(), -1.5 + (k % 7) as f32 * 0.3, 10.0, (k % 32) as f32]);
    }
    let cameras = camera_names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let calib = calibs.get(i).cloned().flatten().unwrap_or_else(|| match size {
                Some((w, h)) => super::frame_input::neutral_calib_sized(n, w, h),
                None => neutral_calib(n),
            });
            let image = image::RgbImage::from_pixel(calib.width, calib.height, image::Rgb([128, 128, 128]));
            Some(super::frame_input::CameraImage { image: crate::data::share(image), calib, stamp_ns: 0 })
        })
        .collect();
    FrameInput {
        stamp_ns: 0,
        frame_id: "warmup".into(),
        points: Some(Points { data }),
        cameras,
        camera_names: camera_names.to_vec(),
    }
}
