//! Sensor synchronisation: which messages make up a frame.
//!
//! Each valid LiDAR cloud triggers a frame. The newest image of each camera joins it when
//! its stamp is within `max_camera_lidar_delay` of the cloud's and the camera has a valid
//! CameraInfo; otherwise the camera is masked (the reason is kept for diagnostics). With no
//! usable camera the pipeline runs LiDAR-only. When no cloud has arrived for `lidar_timeout`
//! (wall time), [`Synchronizer::on_tick`] (called by a timer at `camera_only_rate`) makes
//! camera-only frames from new images, stamped with the newest image's stamp.
//!
//! A camera's extrinsics come from /tf_static (the chain from the cloud's frame to the
//! image's frame, looked up when the frame is assembled) or from the configuration
//! (`lidar_to_camera`, a RigCalibration message), as [`ExtrinsicsSource`] says; each ready
//! camera records which one it used.
//!
//! Everything here is plain logic on r2r message types with the time passed in, so bag
//! replay can drive it with recorded times and tests can drive it without ROS.

use super::camera_info::{camera_info_to_intrinsics, Intrinsics};
use super::convert::{rigid_from_parts, stamp_to_ns, ConvertError};
use super::image::{compressed_dimensions, compressed_to_rgb, image_to_rgb, RawImageView};
use super::native_image::NativeImage;
use super::params::ExtrinsicsSource;
use super::pointcloud::{pointcloud_to_points, RawCloudView};
use super::tf_static::StaticTransforms;
use crate::data::{CameraCalib, PixelBytes, Points, SharedImage};
use crate::pipeline::{CameraImage, FrameInput};
use nalgebra::Isometry3;
use r2r::geometry_msgs::msg::TransformStamped;
use r2r::sensor_msgs::msg::{CameraInfo, CompressedImage, Image};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A camera image as it arrived.
#[derive(Clone, Debug)]
pub enum ImageMsg {
    Raw(Image),
    /// A raw image in the middleware's C message (the node's subscriptions), converted from
    /// there when a frame uses it.
    Native(Arc<NativeImage>),
    Compressed(CompressedImage),
    /// A raw image without row padding, its buffer taken over as it is (no copy) and kept in
    /// its own layout: the model's input is built straight from those bytes.
    Stored { header: r2r::std_msgs::msg::Header, image: SharedImage },
}

impl ImageMsg {
    /// A raw image as it arrived: a tightly packed one is taken over without copying (its
    /// buffer becomes the image the pipeline reads); a padded one stays as it is and is
    /// converted when a frame uses it.
    pub fn from_raw(msg: Image) -> ImageMsg {
        let Some(layout) = RawImageView::from(&msg).packed_layout() else {
            return ImageMsg::Raw(msg);
        };
        let Image { header, width, height, data, .. } = msg;
        let image = crate::data::share_bytes(width, height, layout, PixelBytes::Owned(data))
            .expect("checked: width x height x channels bytes");
        ImageMsg::Stored { header, image }
    }

    /// A raw image in its C message, taken over the same way: a packed image's bytes stay
    /// where the middleware wrote them and become the pipeline's image.
    pub fn from_native(msg: NativeImage) -> ImageMsg {
        let view = msg.view();
        let (layout, width, height) = (view.packed_layout(), view.width, view.height);
        let Some(layout) = layout else {
            return ImageMsg::Native(Arc::new(msg));
        };
        let header = msg.header().clone();
        let image = crate::data::share_external(width, height, layout, Arc::new(msg))
            .expect("checked: width x height x channels bytes");
        ImageMsg::Stored { header, image }
    }

    pub fn header(&self) -> &r2r::std_msgs::msg::Header {
        match self {
            ImageMsg::Raw(m) => &m.header,
            ImageMsg::Native(m) => m.header(),
            ImageMsg::Compressed(m) => &m.header,
            ImageMsg::Stored { header, .. } => header,
        }
    }

    pub fn stamp_ns(&self) -> i64 {
        stamp_to_ns(&self.header().stamp)
    }

    /// Cheap validation (layout of a raw image, header of a compressed one): the size.
    pub fn check(&self) -> Result<(u32, u32), ConvertError> {
        match self {
            ImageMsg::Raw(m) => RawImageView::from(m).checked_size(),
            ImageMsg::Native(m) => m.view().checked_size(),
            ImageMsg::Compressed(m) => compressed_dimensions(m),
            ImageMsg::Stored { image, .. } => Ok(image.dimensions()),
        }
    }

    /// The image for the pipeline: decoded (compressed), converted (padded raw rows) or, for a
    /// taken-over image, shared as it is stored (not copied, not converted).
    pub fn to_image(&self) -> Result<SharedImage, ConvertError> {
        match self {
            ImageMsg::Raw(m) => image_to_rgb(m).map(crate::data::share),
            ImageMsg::Native(m) => image_to_rgb(m.view()).map(crate::data::share),
            ImageMsg::Compressed(m) => compressed_to_rgb(m).map(crate::data::share),
            ImageMsg::Stored { image, .. } => Ok(image.clone()),
        }
    }
}

/// Static description of one camera.
#[derive(Clone, Debug)]
pub struct CameraSetup {
    pub name: String,
    pub image_topic: String,
    pub info_topic: String,
    /// From the parameters or a RigCalibration; None until one provides it.
    pub cam_to_lidar: Option<Isometry3<f64>>,
}

/// Synchronisation settings.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub max_camera_lidar_delay: Duration,
    /// Zero disables camera-only mode.
    pub lidar_timeout: Duration,
    /// Output frame id of camera-only frames before any cloud was seen.
    pub default_frame_id: String,
    pub cloud_capacity: usize,
    pub cloud_topic: String,
    pub extrinsics_source: ExtrinsicsSource,
}

/// Where a ready camera's extrinsics came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtrinsicsFrom {
    TfStatic,
    /// `lidar_to_camera` or a RigCalibration.
    Config,
}

impl ExtrinsicsFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            ExtrinsicsFrom::TfStatic => "tf_static",
            ExtrinsicsFrom::Config => "config",
        }
    }
}

/// A camera's part of a frame.
#[derive(Clone, Debug)]
pub enum CameraSlot {
    Ready { image: Arc<ImageMsg>, calib: CameraCalib, extrinsics: ExtrinsicsFrom },
    Masked(String),
}

/// What triggered a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Cloud,
    CameraOnlyTimer,
}

/// The messages of one frame, ready for decoding and inference.
#[derive(Clone, Debug)]
pub struct FrameJob {
    pub stamp_ns: i64,
    pub frame_id: String,
    pub points: Option<Points>,
    pub cameras: Vec<CameraSlot>,
    pub camera_names: Vec<String>,
    pub image_topics: Vec<String>,
    /// Time spent converting the cloud (ms).
    pub decode_ms: f64,
    /// Time the receiving side spent on this frame's inputs other than converting the cloud
    /// (ms): see [`Self::charge_receive`]; 0 until the caller sets it.
    pub receive_ms: f64,
    /// When the receiving side handed the frame over to be processed (the node's `wait_ms`
    /// starts there); None until the caller sets it.
    pub handed_over: Option<Instant>,
    pub trigger: Trigger,
    /// Non-fatal problems found while assembling (NaN points skipped, ...).
    pub warnings: Vec<String>,
}

impl FrameJob {
    /// Charge this frame with `spent_ms`, what the receiving side spent since the previous
    /// frame was handed over (taking messages, checks, synchronisation, diagnostics), less
    /// the cloud conversion, which `decode_ms` already counts.
    pub fn charge_receive(&mut self, spent_ms: f64) {
        self.receive_ms = (spent_ms - self.decode_ms).max(0.0);
    }

    /// Decode the images and build the pipeline input. Images that fail to decode mask
    /// their camera; the returned warnings say why. Adds the decode time to `decode_ms`.
    pub fn decode(&mut self) -> (FrameInput, Vec<String>) {
        use rayon::prelude::*;
        let t0 = Instant::now();
        let mut warnings = Vec::new();
        // the cameras' conversions (JPEG decoding, padded rows) are independent: spread over
        // rayon's pool; a packed image of any layout is only shared
        let converted: Vec<Option<Result<SharedImage, ConvertError>>> = self
            .cameras
            .par_iter()
            .map(|slot| match slot {
                CameraSlot::Masked(_) => None,
                CameraSlot::Ready { image, .. } => Some(image.to_image()),
            })
            .collect();
        let cameras = self
            .cameras
            .iter()
            .zip(converted)
            .enumerate()
            .map(|(i, (slot, decoded))| match (slot, decoded) {
                (CameraSlot::Ready { image, calib, .. }, Some(Ok(decoded))) => {
                    Some(CameraImage { image: decoded, calib: calib.clone(), stamp_ns: image.stamp_ns() })
                }
                (_, Some(Err(e))) => {
                    let e = e.on_topic(&self.image_topics[i]);
                    warnings.push(format!("{e}: camera {} masked", self.camera_names[i]));
                    None
                }
                _ => None,
            })
            .collect();
        self.decode_ms += t0.elapsed().as_secs_f64() * 1e3;
        let input = FrameInput {
            stamp_ns: self.stamp_ns,
            frame_id: self.frame_id.clone(),
            points: self.points.take(),
            cameras,
            camera_names: self.camera_names.clone(),
        };
        (input, warnings)
    }

    /// (camera name, reason) of every camera masked at assembly.
    pub fn mask_reasons(&self) -> Vec<(String, String)> {
        self.cameras
            .iter()
            .zip(&self.camera_names)
            .filter_map(|(s, n)| match s {
                CameraSlot::Masked(r) => Some((n.clone(), r.clone())),
                CameraSlot::Ready { .. } => None,
            })
            .collect()
    }

    /// (camera name, where its extrinsics came from) of every ready camera.
    pub fn extrinsics_sources(&self) -> Vec<(String, ExtrinsicsFrom)> {
        self.cameras
            .iter()
            .zip(&self.camera_names)
            .filter_map(|(s, n)| match s {
                CameraSlot::Ready { extrinsics, .. } => Some((n.clone(), *extrinsics)),
                CameraSlot::Masked(_) => None,
            })
            .collect()
    }
}

struct CameraState {
    setup: CameraSetup,
    info: Option<Intrinsics>,
    distortion_warned: bool,
    image: Option<Arc<ImageMsg>>,
    last_image_stamp: Option<i64>,
}

/// The synchroniser.
pub struct Synchronizer {
    cfg: SyncConfig,
    cams: Vec<CameraState>,
    last_cloud_stamp: Option<i64>,
    last_cloud_wall: Option<Instant>,
    last_frame_id: Option<String>,
    last_camera_only_stamp: Option<i64>,
    start: Instant,
    tf: StaticTransforms,
}

fn secs(ns: i64) -> f64 {
    ns as f64 * 1e-9
}

impl Synchronizer {
    pub fn new(cfg: SyncConfig, cameras: Vec<CameraSetup>, start: Instant) -> Self {
        let cams = cameras
            .into_iter()
            .map(|setup| CameraState {
                setup,
                info: None,
                distortion_warned: false,
                image: None,
                last_image_stamp: None,
            })
            .collect();
        Self {
            cfg,
            cams,
            last_cloud_stamp: None,
            last_cloud_wall: None,
            last_frame_id: None,
            last_camera_only_stamp: None,
            start,
            tf: StaticTransforms::new(),
        }
    }

    pub fn num_cameras(&self) -> usize {
        self.cams.len()
    }

    /// A CameraInfo for camera `i`. A bad one is rejected and the previous one kept.
    /// Returns warnings worth reporting once (distortion ignored).
    pub fn on_camera_info(&mut self, i: usize, msg: &CameraInfo) -> Result<Vec<String>, ConvertError> {
        let cam = &mut self.cams[i];
        let intr = camera_info_to_intrinsics(msg).map_err(|e| e.on_topic(&cam.setup.info_topic))?;
        let mut warnings = Vec::new();
        if !intr.warnings.is_empty() && !cam.distortion_warned {
            cam.distortion_warned = true;
            warnings.extend(intr.warnings.iter().map(|w| format!("{}: {w}", cam.setup.info_topic)));
        }
        cam.info = Some(intr);
        Ok(warnings)
    }

    /// Extrinsics from an `altermoma_msgs/RigCalibration`: cameras are matched by name and
    /// take the message's poses. Returns the names updated; names the node does not know are
    /// ignored, a malformed message is rejected.
    pub fn on_rig_calibration(
        &mut self,
        msg: &r2r::altermoma_msgs::msg::RigCalibration,
        topic: &str,
    ) -> Result<Vec<String>, ConvertError> {
        if msg.camera_names.len() != msg.camera_to_lidar.len() {
            return Err(ConvertError::new(
                "camera_to_lidar",
                format!("{} poses for {} camera names", msg.camera_to_lidar.len(), msg.camera_names.len()),
            )
            .on_topic(topic));
        }
        let mut isos = Vec::new();
        for (k, (name, pose)) in msg.camera_names.iter().zip(&msg.camera_to_lidar).enumerate() {
            let (p, q) = (&pose.position, &pose.orientation);
            let iso = rigid_from_parts([p.x, p.y, p.z], [q.x, q.y, q.z, q.w]).map_err(|_| {
                ConvertError::new(
                    format!("camera_to_lidar[{k}]"),
                    format!("pose of `{name}` is not finite with a unit quaternion"),
                )
                .on_topic(topic)
            })?;
            isos.push((name.clone(), iso));
        }
        let mut updated = Vec::new();
        for (name, iso) in isos {
            if let Some(c) = self.cams.iter_mut().find(|c| c.setup.name == name) {
                c.setup.cam_to_lidar = Some(iso);
                updated.push(name);
            }
        }
        Ok(updated)
    }

    /// A tf2_msgs/TFMessage from /tf_static (its transforms). A malformed message is rejected
    /// whole; returns the child frames added. Ignored (empty list) when `extrinsics_source` is
    /// `config`.
    pub fn on_static_transforms(
        &mut self,
        transforms: &[TransformStamped],
        topic: &str,
    ) -> Result<Vec<String>, ConvertError> {
        if !self.cfg.extrinsics_source.reads_tf_static() {
            return Ok(Vec::new());
        }
        self.tf.insert(transforms).map_err(|e| e.on_topic(topic))
    }

    /// A camera's extrinsics for a frame in `lidar_frame`, or why there are none.
    fn extrinsics(&self, c: &CameraState, lidar_frame: &str, image: &ImageMsg) -> Result<(Isometry3<f64>, ExtrinsicsFrom), String> {
        let source = self.cfg.extrinsics_source;
        let camera_frame = image.header().frame_id.as_str();
        if source.reads_tf_static() {
            if let Some(t) = self.tf.lookup(lidar_frame, camera_frame) {
                return Ok((t, ExtrinsicsFrom::TfStatic));
            }
        }
        match (source, c.setup.cam_to_lidar) {
            (ExtrinsicsSource::TfStatic, _) | (ExtrinsicsSource::Auto, None) => {
                Err(format!("no extrinsics yet: {}", self.tf.explain_missing(lidar_frame, camera_frame)))
            }
            (_, Some(t)) => Ok((t, ExtrinsicsFrom::Config)),
            (ExtrinsicsSource::Config, None) => Err("no extrinsics yet (waiting for the rig calibration)".into()),
        }
    }

    /// An image for camera `i`: checked (layout, size against the CameraInfo, stamp order)
    /// and kept as the camera's newest.
    pub fn on_image(&mut self, i: usize, msg: ImageMsg) -> Result<(), ConvertError> {
        let cam = &mut self.cams[i];
        let topic = cam.setup.image_topic.clone();
        let (w, h) = msg.check().map_err(|e| e.on_topic(&topic))?;
        if let Some(info) = &cam.info {
            if (w, h) != (info.width, info.height) {
                return Err(ConvertError::new(
                    "width",
                    format!("image is {w}x{h} but camera_info says {}x{}", info.width, info.height),
                )
                .on_topic(&topic));
            }
        }
        let stamp = msg.stamp_ns();
        if let Some(prev) = cam.last_image_stamp {
            if stamp < prev {
                cam.last_image_stamp = Some(stamp);
                return Err(ConvertError::new(
                    "header.stamp",
                    format!("went backwards by {:.3} s: image dropped", secs(prev - stamp)),
                )
                .on_topic(&topic));
            }
        }
        cam.last_image_stamp = Some(stamp);
        cam.image = Some(Arc::new(msg));
        Ok(())
    }

    /// A LiDAR cloud: converted and checked; on success the frame it triggers.
    pub fn on_cloud<'a>(&mut self, msg: impl Into<RawCloudView<'a>>, now: Instant) -> Result<FrameJob, ConvertError> {
        let msg = msg.into();
        let topic = self.cfg.cloud_topic.clone();
        if msg.header.frame_id.is_empty() {
            return Err(ConvertError::new("header.frame_id", "empty: outputs would have no frame").on_topic(&topic));
        }
        let t0 = Instant::now();
        let conv = pointcloud_to_points(msg, self.cfg.cloud_capacity).map_err(|e| e.on_topic(&topic))?;
        let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        self.last_cloud_wall = Some(now);
        let stamp = stamp_to_ns(&msg.header.stamp);
        if let Some(prev) = self.last_cloud_stamp {
            if stamp <= prev {
                self.last_cloud_stamp = Some(stamp);
                let what = if stamp == prev {
                    "repeats the previous cloud's stamp".to_string()
                } else {
                    format!("went backwards by {:.3} s", secs(prev - stamp))
                };
                return Err(ConvertError::new("header.stamp", format!("{what}: cloud dropped")).on_topic(&topic));
            }
        }
        self.last_cloud_stamp = Some(stamp);
        self.last_frame_id = Some(msg.header.frame_id.clone());
        let mut warnings = Vec::new();
        if conv.skipped_nonfinite > 0 {
            warnings.push(format!("{topic}: skipped {} points with NaN/Inf values", conv.skipped_nonfinite));
        }
        Ok(self.assemble(stamp, msg.header.frame_id.clone(), Some(conv.points), decode_ms, Trigger::Cloud, warnings))
    }

    /// True when a cloud arrived within `lidar_timeout` (always true when camera-only mode
    /// is disabled and a cloud was ever seen).
    pub fn lidar_alive(&self, now: Instant) -> bool {
        match self.last_cloud_wall {
            None => false,
            Some(t) => self.cfg.lidar_timeout.is_zero() || now.duration_since(t) < self.cfg.lidar_timeout,
        }
    }

    /// Timer tick: a camera-only frame when the LiDAR has been silent for `lidar_timeout`
    /// and some camera has an image newer than the last camera-only frame.
    pub fn on_tick(&mut self, now: Instant) -> Option<FrameJob> {
        if self.cfg.lidar_timeout.is_zero() {
            return None;
        }
        let silent_since = self.last_cloud_wall.unwrap_or(self.start);
        if now.duration_since(silent_since) < self.cfg.lidar_timeout {
            return None;
        }
        let newest = self
            .cams
            .iter()
            .filter(|c| c.info.is_some())
            .filter_map(|c| c.image.as_ref().map(|m| m.stamp_ns()))
            .max()?;
        if self.last_camera_only_stamp.is_some_and(|s| newest <= s) {
            return None;
        }
        self.last_camera_only_stamp = Some(newest);
        let frame_id = self.last_frame_id.clone().unwrap_or_else(|| self.cfg.default_frame_id.clone());
        let job = self.assemble(newest, frame_id, None, 0.0, Trigger::CameraOnlyTimer, Vec::new());
        job.cameras.iter().any(|c| matches!(c, CameraSlot::Ready { .. })).then_some(job)
    }

    fn assemble(
        &self,
        stamp: i64,
        frame_id: String,
        points: Option<Points>,
        decode_ms: f64,
        trigger: Trigger,
        warnings: Vec<String>,
    ) -> FrameJob {
        let max = self.cfg.max_camera_lidar_delay.as_nanos() as i64;
        let cameras = self
            .cams
            .iter()
            .map(|c| {
                let Some(info) = &c.info else {
                    return CameraSlot::Masked(format!("no valid camera_info on {}", c.setup.info_topic));
                };
                let Some(img) = &c.image else {
                    return CameraSlot::Masked(format!("no image on {}", c.setup.image_topic));
                };
                let (cam_to_lidar, extrinsics) = match self.extrinsics(c, &frame_id, img) {
                    Ok(e) => e,
                    Err(why) => return CameraSlot::Masked(why),
                };
                let dt = img.stamp_ns() - stamp;
                if dt.abs() > max {
                    return CameraSlot::Masked(format!(
                        "newest image is {:+.3} s from the frame (max_camera_lidar_delay {:.3} s)",
                        secs(dt),
                        secs(max)
                    ));
                }
                match img.check() {
                    Ok((w, h)) if (w, h) != (info.width, info.height) => CameraSlot::Masked(format!(
                        "image is {w}x{h} but camera_info says {}x{}",
                        info.width, info.height
                    )),
                    Err(e) => CameraSlot::Masked(e.to_string()),
                    Ok(_) => CameraSlot::Ready {
                        extrinsics,
                        image: img.clone(),
                        calib: CameraCalib {
                            name: c.setup.name.clone(),
                            width: info.width,
                            height: info.height,
                            intrinsics: info.k,
                            cam_to_lidar,
                        },
                    },
                }
            })
            .collect();
        FrameJob {
            stamp_ns: stamp,
            frame_id,
            points,
            cameras,
            camera_names: self.cams.iter().map(|c| c.setup.name.clone()).collect(),
            image_topics: self.cams.iter().map(|c| c.setup.image_topic.clone()).collect(),
            decode_ms,
            receive_ms: 0.0,
            handed_over: None,
            trigger,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2r::sensor_msgs::msg::PointCloud2;
    use crate::ros::camera_info::calib_to_camera_info;
    use crate::ros::convert::header;
    use crate::ros::image::rgb_to_image;
    use crate::ros::pointcloud::points_to_pointcloud;

    const S: i64 = 1_000_000_000;

    fn sync(start: Instant) -> Synchronizer {
        let cams = (0..2)
            .map(|i| CameraSetup {
                name: format!("CAM_{i}"),
                image_topic: format!("/img{i}"),
                info_topic: format!("/info{i}"),
                cam_to_lidar: Some(Isometry3::identity()),
            })
            .collect();
        let cfg = SyncConfig {
            max_camera_lidar_delay: Duration::from_millis(120),
            lidar_timeout: Duration::from_millis(500),
            default_frame_id: "lidar_top".into(),
            cloud_capacity: 1000,
            cloud_topic: "/cloud".into(),
            extrinsics_source: ExtrinsicsSource::Auto,
        };
        Synchronizer::new(cfg, cams, start)
    }

    fn cloud(stamp: i64) -> PointCloud2 {
        points_to_pointcloud(&Points { data: vec![1.0, 2.0, 3.0, 4.0, 0.0] }, header(stamp, "lidar"))
    }

    fn image(stamp: i64, w: u32) -> ImageMsg {
        ImageMsg::from_raw(rgb_to_image(&image::RgbImage::new(w, 4), header(stamp, "cam")))
    }

    fn info(w: u32) -> CameraInfo {
        let mut c = crate::pipeline::frame_input::neutral_calib("x");
        c.width = w;
        c.height = 4;
        calib_to_camera_info(&c, header(0, "cam"))
    }

    fn ready(job: &FrameJob) -> Vec<bool> {
        job.cameras.iter().map(|c| matches!(c, CameraSlot::Ready { .. })).collect()
    }

    #[test]
    fn receiving_is_charged_without_the_cloud_conversion() {
        let t = Instant::now();
        let mut s = sync(t);
        let mut job = s.on_cloud(&cloud(10 * S), t).unwrap();
        assert_eq!(job.receive_ms, 0.0, "nothing is charged until the caller does");
        job.decode_ms = 0.25;
        job.charge_receive(1.0);
        assert_eq!(job.receive_ms, 0.75);
        // measured by different clocks, the conversion may exceed what was charged: never negative
        job.charge_receive(0.125);
        assert_eq!(job.receive_ms, 0.0);
    }

    #[test]
    fn cameras_join_within_the_delay_and_are_masked_otherwise() {
        let t = Instant::now();
        let mut s = sync(t);
        s.on_camera_info(0, &info(8)).unwrap();
        s.on_image(0, image(10 * S, 8)).unwrap();
        s.on_image(1, image(10 * S, 8)).unwrap(); // no camera_info for camera 1
        let job = s.on_cloud(&cloud(10 * S + 100_000_000), t).unwrap();
        assert_eq!(ready(&job), vec![true, false]);
        assert!(job.mask_reasons()[0].1.contains("camera_info"), "{:?}", job.mask_reasons());
        // 0.2 s later the image is too old: LiDAR-only
        let job = s.on_cloud(&cloud(10 * S + 200_000_000), t).unwrap();
        assert_eq!(ready(&job), vec![false, false]);
        assert!(job.mask_reasons()[0].1.contains("max_camera_lidar_delay"));
        // a fresh image brings the camera back on the next cloud
        s.on_image(0, image(10 * S + 280_000_000, 8)).unwrap();
        let mut job = s.on_cloud(&cloud(10 * S + 300_000_000), t).unwrap();
        assert_eq!(ready(&job), vec![true, false]);
        let (input, warnings) = job.decode();
        assert!(warnings.is_empty());
        assert_eq!(input.num_cameras_present(), 1);
        assert_eq!(input.num_points(), 1);
        assert_eq!(input.cameras[0].as_ref().unwrap().calib.width, 8);
    }

    #[test]
    fn rig_calibration_supplies_extrinsics() {
        use r2r::geometry_msgs::msg::{Point, Pose, Quaternion};
        let t = Instant::now();
        let mut s = sync(t);
        s.cams[1].setup.cam_to_lidar = None;
        s.on_camera_info(1, &info(8)).unwrap();
        s.on_image(1, image(S, 8)).unwrap();
        let job = s.on_cloud(&cloud(S), t).unwrap();
        assert!(job.mask_reasons()[1].1.contains("extrinsics"), "{:?}", job.mask_reasons());
        let pose = Pose {
            position: Point { x: 1.0, y: 2.0, z: 3.0 },
            orientation: Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 },
        };
        let mut msg = r2r::altermoma_msgs::msg::RigCalibration {
            camera_names: vec!["CAM_1".into(), "OTHER".into()],
            camera_to_lidar: vec![pose.clone(), pose],
            ..Default::default()
        };
        assert_eq!(s.on_rig_calibration(&msg, "/rig").unwrap(), vec!["CAM_1".to_string()]);
        let job = s.on_cloud(&cloud(S + 1), t).unwrap();
        match &job.cameras[1] {
            CameraSlot::Ready { calib, .. } => assert_eq!(calib.cam_to_lidar.translation.vector.y, 2.0),
            other => panic!("{other:?}"),
        }
        msg.camera_to_lidar[0].orientation.w = 3.0;
        assert_eq!(s.on_rig_calibration(&msg, "/rig").unwrap_err().field, "camera_to_lidar[0]");
        msg.camera_to_lidar.pop();
        assert!(s.on_rig_calibration(&msg, "/rig").is_err());
    }

    #[test]
    fn tf_static_supplies_extrinsics_as_extrinsics_source_says() {
        let tf = |parent: &str, child: &str, x: f64| {
            crate::ros::convert::transform_stamped(0, parent, child, &Isometry3::translation(x, 0.0, 0.0))
        };
        let source = |job: &FrameJob| -> Vec<(f64, ExtrinsicsFrom)> {
            job.cameras
                .iter()
                .filter_map(|c| match c {
                    CameraSlot::Ready { calib, extrinsics, .. } => Some((calib.cam_to_lidar.translation.x, *extrinsics)),
                    CameraSlot::Masked(_) => None,
                })
                .collect()
        };
        let t = Instant::now();
        for mode in [ExtrinsicsSource::Auto, ExtrinsicsSource::Config, ExtrinsicsSource::TfStatic] {
            let mut s = sync(t);
            s.cfg.extrinsics_source = mode;
            s.cams[1].setup.cam_to_lidar = None; // camera 1 has nothing configured
            for i in 0..2 {
                s.on_camera_info(i, &info(8)).unwrap();
                s.on_image(i, image(S, 8)).unwrap(); // both images in frame `cam`
            }
            let before = s.on_cloud(&cloud(S), t).unwrap(); // cloud frame `lidar`
            // base_link -> lidar at x = 1, base_link -> cam at x = 3: cam in lidar at x = 2
            let msg = [tf("base_link", "lidar", 1.0), tf("/base_link", "cam", 3.0)];
            let added = s.on_static_transforms(&msg, "/tf_static").unwrap();
            let after = s.on_cloud(&cloud(S + 1), t).unwrap();
            let why = before.mask_reasons();
            match mode {
                ExtrinsicsSource::Auto => {
                    assert_eq!(source(&before), vec![(0.0, ExtrinsicsFrom::Config)]);
                    assert!(why[0].1.contains("/tf_static has no frame `lidar`"), "{why:?}");
                    assert_eq!(source(&after), vec![(2.0, ExtrinsicsFrom::TfStatic); 2]);
                }
                ExtrinsicsSource::Config => {
                    assert!(added.is_empty());
                    assert!(why[0].1.contains("rig calibration"), "{why:?}");
                    assert_eq!(source(&after), vec![(0.0, ExtrinsicsFrom::Config)]);
                }
                ExtrinsicsSource::TfStatic => {
                    assert!(source(&before).is_empty(), "configured extrinsics are not used");
                    assert_eq!(why.len(), 2);
                    assert_eq!(source(&after), vec![(2.0, ExtrinsicsFrom::TfStatic); 2]);
                    assert_eq!(after.extrinsics_sources()[1], ("CAM_1".to_string(), ExtrinsicsFrom::TfStatic));
                }
            }
        }
        // a malformed message is reported on its topic and changes nothing
        let mut s = sync(t);
        let e = s.on_static_transforms(&[tf("a", "a", 0.0)], "/tf_static").unwrap_err();
        assert_eq!((e.topic.as_deref(), e.field.as_str()), (Some("/tf_static"), "transforms[0].child_frame_id"));
    }

    #[test]
    fn packed_images_are_taken_over_without_copying() {
        use crate::data::pixel_layout::tests::encode;
        use crate::data::PixelLayout;
        let img = image::RgbImage::from_fn(6, 4, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let shared = crate::data::share(img.clone());
        let msg = rgb_to_image(&img, header(3, "cam"));
        let buffer = msg.data.as_ptr();
        let m = ImageMsg::from_raw(msg);
        let (a, b) = (m.to_image().unwrap(), m.to_image().unwrap());
        assert_eq!(a.as_raw().as_ptr(), buffer, "the message's buffer is the image");
        assert!(Arc::ptr_eq(&a, &b) && a == shared);
        assert_eq!((m.check().unwrap(), m.stamp_ns()), ((6, 4), 3));
        // every packed layout, from the r2r message and from the middleware's C message: the
        // bytes are kept where they are, in their layout, and read as the same RGB image
        for layout in PixelLayout::ALL {
            let (data, step) = encode(&img, layout, 0);
            let msg = Image { encoding: layout.encoding().into(), step: step as u32, data, ..rgb_to_image(&img, header(3, "cam")) };
            let native = NativeImage::new(r2r::NativeMsg::<Image>::from(&msg)).unwrap();
            let c_buffer = crate::data::ExternalBytes::bytes(&native).as_ptr();
            let r2r_buffer = msg.data.as_ptr();
            for (m, buffer) in [(ImageMsg::from_native(native), c_buffer), (ImageMsg::from_raw(msg), r2r_buffer)] {
                assert!(matches!(m, ImageMsg::Stored { .. }), "{layout:?}");
                let a = m.to_image().unwrap();
                let (stored_layout, bytes) = a.stored();
                assert_eq!((stored_layout, bytes.as_ptr(), bytes.len()), (layout, buffer, 6 * 4 * layout.channels()));
                assert_eq!((m.check().unwrap(), m.stamp_ns()), ((6, 4), 3));
                assert_eq!(a.has_rgb(), layout == PixelLayout::Rgb8, "{layout:?}: not converted to be passed on");
                if layout != PixelLayout::Mono8 {
                    assert_eq!(a, shared, "{layout:?}");
                }
            }
        }
        // padded rows and bad geometry stay raw: converted (or rejected) when a frame uses them
        for layout in [PixelLayout::Rgb8, PixelLayout::Bgr8] {
            let (data, step) = encode(&img, layout, 2);
            let m = Image { encoding: layout.encoding().into(), step: step as u32, data, ..rgb_to_image(&img, header(3, "cam")) };
            let native = ImageMsg::from_native(NativeImage::new(r2r::NativeMsg::<Image>::from(&m)).unwrap());
            assert!(matches!(native, ImageMsg::Native(_)));
            assert_eq!((native.to_image().unwrap(), native.check().unwrap()), (shared.clone(), (6, 4)));
            let m = ImageMsg::from_raw(m);
            assert!(matches!(m, ImageMsg::Raw(_)));
            assert_eq!(m.to_image().unwrap(), shared);
        }
        let mut truncated = rgb_to_image(&img, header(3, "cam"));
        truncated.data.pop();
        let native = ImageMsg::from_native(NativeImage::new(r2r::NativeMsg::<Image>::from(&truncated)).unwrap());
        assert!(matches!(native, ImageMsg::Native(_)));
        assert_eq!(native.check().unwrap_err().field, "data");
        assert_eq!(native.to_image().unwrap_err().field, "data");
        let m = ImageMsg::from_raw(truncated);
        assert!(matches!(m, ImageMsg::Raw(_)));
        assert_eq!(m.check().unwrap_err().field, "data");
    }

    #[test]
    fn bad_messages_are_rejected_with_topic_and_field() {
        let t = Instant::now();
        let mut s = sync(t);
        s.on_camera_info(0, &info(8)).unwrap();
        let e = s.on_image(0, image(S, 6)).unwrap_err();
        assert_eq!((e.topic.as_deref(), e.field.as_str()), (Some("/img0"), "width"));
        s.on_image(0, image(2 * S, 8)).unwrap();
        let e = s.on_image(0, image(S, 8)).unwrap_err();
        assert!(e.message.contains("backwards"), "{e}");
        s.on_image(0, image(S + 1, 8)).unwrap(); // the new timeline is accepted
        s.on_cloud(&cloud(5 * S), t).unwrap();
        let e = s.on_cloud(&cloud(4 * S), t).unwrap_err();
        assert_eq!((e.topic.as_deref(), e.field.as_str()), (Some("/cloud"), "header.stamp"));
        assert!(s.on_cloud(&cloud(4 * S), t).unwrap_err().message.contains("repeats"));
        s.on_cloud(&cloud(4 * S + 1), t).unwrap();
        let mut c = cloud(6 * S);
        c.header.frame_id.clear();
        assert_eq!(s.on_cloud(&c, t).unwrap_err().field, "header.frame_id");
        let mut bad = info(8);
        bad.k[0] = 0.0;
        assert!(s.on_camera_info(1, &bad).is_err());
    }

    #[test]
    fn lidar_silence_switches_to_camera_only_and_back() {
        let t = Instant::now();
        let mut s = sync(t);
        s.on_camera_info(0, &info(8)).unwrap();
        s.on_camera_info(1, &info(8)).unwrap();
        s.on_image(0, image(S, 8)).unwrap();
        assert!(s.on_tick(t + Duration::from_millis(100)).is_none(), "not before the timeout");
        let job = s.on_tick(t + Duration::from_millis(600)).expect("camera-only after the timeout");
        assert_eq!((job.trigger, job.stamp_ns, job.frame_id.as_str()), (Trigger::CameraOnlyTimer, S, "lidar_top"));
        assert!(job.points.is_none());
        assert!(s.on_tick(t + Duration::from_millis(700)).is_none(), "same images: no new frame");
        s.on_image(1, image(S + 50_000_000, 8)).unwrap();
        let job = s.on_tick(t + Duration::from_millis(800)).unwrap();
        assert_eq!(ready(&job), vec![true, true]);
        // the LiDAR comes back: clouds trigger again and the timer stays quiet
        let now = t + Duration::from_millis(900);
        s.on_image(0, image(S + 90_000_000, 8)).unwrap();
        let job = s.on_cloud(&cloud(S + 100_000_000), now).unwrap();
        assert_eq!(job.trigger, Trigger::Cloud);
        assert!(s.lidar_alive(now));
        assert!(s.on_tick(now + Duration::from_millis(100)).is_none());
        // silent again: the cloud's frame id is used from now on
        s.on_image(0, image(2 * S, 8)).unwrap();
        let job = s.on_tick(now + Duration::from_millis(600)).unwrap();
        assert_eq!(job.frame_id, "lidar");
    }
}
