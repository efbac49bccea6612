//! Dataset frames as a rosbag2 sensor bag (`altermoma gen-bag`): per frame a LiDAR cloud,
//! each camera's image and CameraInfo, and the frame's ground truth on its own topic; the
//! rig's extrinsics once, on a latched topic.
//!
//! Timing: header stamps are the capture times of the frame (LiDAR) and of each camera
//! image; log (receive) times add a transport delay, cameras a few milliseconds apart and
//! the LiDAR after its sweep completes, so a cloud arrives after the images of its frame as
//! on a car. Frames keep the dataset's rate; where time jumps back (a new scene starting at
//! the same clock), later frames are shifted to continue the recording, and the shift is
//! reported.

use super::frames::{self, CALIBRATION_TOPIC, GROUND_TRUTH_TOPIC, LIDAR_FRAME, LIDAR_TOPIC, TF_STATIC_TOPIC};
use super::writer::{BagWriter, StorageKind, TopicId};
use crate::ros::convert::header;
use crate::data::{CameraCalib, Frame, Points};
use anyhow::{bail, Context, Result};
use r2r::sensor_msgs::msg::{CompressedImage, Image, PointCloud2, PointField};
use crate::ros::camera_info::calib_to_camera_info;
use std::path::{Path, PathBuf};

/// How camera images are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// `sensor_msgs/Image`, rgb8.
    Raw,
    /// `sensor_msgs/CompressedImage`, JPEG at this quality.
    Jpeg(u8),
    /// `sensor_msgs/CompressedImage`, PNG (lossless).
    Png,
}

impl std::str::FromStr for ImageFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "raw" => Self::Raw,
            "png" => Self::Png,
            "jpeg" | "jpg" => Self::Jpeg(90),
            o => match o.strip_prefix("jpeg:").and_then(|q| q.parse().ok()) {
                Some(q) if (1..=100).contains(&q) => Self::Jpeg(q),
                _ => bail!("image format `{o}`: raw, png, jpeg or jpeg:<quality 1-100>"),
            },
        })
    }
}

/// Options of [`write_scene_bag`].
#[derive(Clone, Debug)]
pub struct SceneBagOptions {
    pub storage: StorageKind,
    pub images: ImageFormat,
    /// Receive delay of a cloud after its stamp (ns).
    pub lidar_delay_ns: i64,
    /// Receive delay of the first camera's image (ns); camera i adds `i * camera_step_ns`.
    pub camera_delay_ns: i64,
    pub camera_step_ns: i64,
}

impl Default for SceneBagOptions {
    fn default() -> Self {
        Self {
            storage: StorageKind::default(),
            images: ImageFormat::Raw,
            lidar_delay_ns: 30_000_000,
            camera_delay_ns: 8_000_000,
            camera_step_ns: 2_000_000,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SceneBagReport {
    pub path: PathBuf,
    pub frames: usize,
    pub messages: u64,
    pub bytes: u64,
    pub duration_s: f64,
    /// LiDAR rate (median frame period).
    pub lidar_hz: f64,
    /// Time shifts applied at scene boundaries (seconds, negative when a pause was cut).
    pub time_shifts_s: Vec<f64>,
    pub topics: Vec<String>,
}

/// A dense little-endian cloud: float32 x, y, z, intensity, uint16 ring (point_step 20), the
/// layout the node reads and writes.
pub fn points_to_cloud(points: &Points, header: r2r::std_msgs::msg::Header) -> PointCloud2 {
    const STEP: usize = 20;
    let mut data = Vec::with_capacity(points.len() * STEP);
    for p in points.iter() {
        for v in &p[..4] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&(p[4].round().clamp(0.0, u16::MAX as f32) as u16).to_le_bytes());
        data.extend_from_slice(&[0, 0]);
    }
    let field = |name: &str, offset: u32, datatype: u8| PointField { name: name.into(), offset, datatype, count: 1 };
    PointCloud2 {
        header,
        height: 1,
        width: points.len() as u32,
        fields: vec![
            field("x", 0, 7),
            field("y", 4, 7),
            field("z", 8, 7),
            field("intensity", 12, 7),
            field("ring", 16, 4),
        ],
        is_bigendian: false,
        point_step: STEP as u32,
        row_step: (STEP * points.len()) as u32,
        data,
        is_dense: true,
    }
}

enum ImageMsg {
    Raw(Image),
    Compressed(CompressedImage),
}

fn image_msg<C: std::ops::Deref<Target = [u8]>>(
    img: &image::ImageBuffer<image::Rgb<u8>, C>,
    format: ImageFormat,
    header: r2r::std_msgs::msg::Header,
) -> Result<ImageMsg> {
    Ok(match format {
        ImageFormat::Raw => ImageMsg::Raw(Image {
            header,
            height: img.height(),
            width: img.width(),
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: img.width() * 3,
            data: img.as_raw().to_vec(),
        }),
        ImageFormat::Jpeg(q) => {
            let mut data = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, q).encode_image(img)?;
            ImageMsg::Compressed(CompressedImage { header, format: "jpeg".into(), data })
        }
        ImageFormat::Png => {
            let mut data = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut data), image::ImageFormat::Png)?;
            ImageMsg::Compressed(CompressedImage { header, format: "png".into(), data })
        }
    })
}

struct CameraTopics {
    image: TopicId,
    info: TopicId,
}

/// Write `frames` (in time order) as a bag at `out` (atomically). `cameras` is the rig,
/// in the model's camera order; every frame's cameras must use the same names.
pub fn write_scene_bag(
    frames: impl IntoIterator<Item = Result<Frame>>,
    num_frames: usize,
    cameras: &[CameraCalib],
    out: &Path,
    opts: &SceneBagOptions,
) -> Result<SceneBagReport> {
    let mut w = BagWriter::create(out, opts.storage)?;
    let compressed = opts.images != ImageFormat::Raw;
    let calib_topic = w.add_topic(CALIBRATION_TOPIC, "altermoma_msgs/msg/RigCalibration", true)?;
    let tf_topic = w.add_topic(TF_STATIC_TOPIC, "tf2_msgs/msg/TFMessage", true)?;
    let cam_topics: Vec<CameraTopics> = cameras
        .iter()
        .map(|c| {
            let ty = if compressed { "sensor_msgs/msg/CompressedImage" } else { "sensor_msgs/msg/Image" };
            Ok(CameraTopics {
                image: w.add_topic(&frames::camera_image_topic(&c.name, compressed), ty, false)?,
                info: w.add_topic(&frames::camera_info_topic(&c.name), "sensor_msgs/msg/CameraInfo", false)?,
            })
        })
        .collect::<Result<_>>()?;
    let lidar_topic = w.add_topic(LIDAR_TOPIC, "sensor_msgs/msg/PointCloud2", false)?;
    let gt_topic = w.add_topic(GROUND_TRUTH_TOPIC, "altermoma_msgs/msg/FrameGroundTruth", false)?;
    let mut report = SceneBagReport { path: out.to_path_buf(), ..Default::default() };
    report.topics = [CALIBRATION_TOPIC.to_string(), TF_STATIC_TOPIC.to_string()]
        .into_iter()
        .chain(
            cameras
                .iter()
                .flat_map(|c| [frames::camera_image_topic(&c.name, compressed), frames::camera_info_topic(&c.name)]),
        )
        .chain([LIDAR_TOPIC.to_string(), GROUND_TRUTH_TOPIC.to_string()])
        .collect();

    let pb = crate::progress::bar(num_frames as u64, "gen-bag");
    let mut shift_ns: i64 = 0;
    let mut last_stamp: Option<i64> = None;
    let mut gaps: Vec<i64> = Vec::new();
    let (mut first_log, mut last_log) = (i64::MAX, i64::MIN);
    for (i, frame) in frames.into_iter().enumerate() {
        let mut frame = frame.with_context(|| format!("frame {i}"))?;
        let names: Vec<&str> = frame.cameras.iter().map(|c| c.calib.name.as_str()).collect();
        if names.len() != cameras.len() || names.iter().zip(cameras).any(|(a, b)| *a != b.name) {
            bail!(
                "frame {i} ({}) has cameras {names:?}, the rig {:?}",
                frame.token,
                cameras.iter().map(|c| &c.name).collect::<Vec<_>>()
            );
        }
        let mut stamp = frame.timestamp_us.saturating_mul(1000) + shift_ns;
        if let Some(last) = last_stamp {
            // A new scene: time going back, or a pause much longer than the frame period
            // (scenes recorded hours apart), continues one period after the last frame.
            let period = median(&gaps).unwrap_or(100_000_000);
            if stamp <= last || (!gaps.is_empty() && stamp - last > 10 * period.max(1)) {
                let extra = last + period - stamp;
                shift_ns += extra;
                stamp += extra;
                report.time_shifts_s.push(extra as f64 / 1e9);
            } else {
                gaps.push(stamp - last);
            }
        }
        last_stamp = Some(stamp);
        // Apply the shift to everything the frame carries, ground truth included.
        frame.timestamp_us = stamp / 1000;
        let shift_us = shift_ns / 1000;
        for c in &mut frame.cameras {
            c.timestamp_us += shift_us;
        }
        let mut batch: Vec<(i64, TopicId, Vec<u8>)> = Vec::new();
        if i == 0 {
            let calibs: Vec<CameraCalib> = frame.cameras.iter().map(|c| c.calib.clone()).collect();
            let msg = frames::rig_calibration(&calibs, header(stamp, LIDAR_FRAME));
            let first = stamp.min(frame.cameras.iter().map(|c| c.timestamp_us * 1000).min().unwrap_or(stamp));
            batch.push((first, calib_topic, encode(&msg)?));
            // the same extrinsics as the vehicle's transform tree, rooted at base_link
            batch.push((first, tf_topic, encode(&frames::static_transforms(&frame.lidar_to_ego, &calibs, stamp))?));
        }
        for (k, (cam, topics)) in frame.cameras.iter().zip(&cam_topics).enumerate() {
            let cstamp = cam.timestamp_us * 1000;
            let log = cstamp + opts.camera_delay_ns + k as i64 * opts.camera_step_ns;
            let h = header(cstamp, &frames::camera_frame_id(&cam.calib.name));
            batch.push((log, topics.info, encode(&calib_to_camera_info(&cam.calib, h.clone()))?));
            if let Some(img) = &cam.image {
                let bytes = match image_msg(img, opts.images, h)? {
                    ImageMsg::Raw(m) => encode(&m)?,
                    ImageMsg::Compressed(m) => encode(&m)?,
                };
                batch.push((log, topics.image, bytes));
            }
        }
        // The truth goes first: a replay has it when the cloud triggers the frame.
        let lidar_log = stamp + opts.lidar_delay_ns;
        batch.push((lidar_log, gt_topic, encode(&frames::ground_truth_msg(&frame))?));
        if let Some(points) = &frame.points {
            batch.push((lidar_log, lidar_topic, encode(&points_to_cloud(points, header(stamp, LIDAR_FRAME)))?));
        }
        batch.sort_by_key(|(t, _, _)| *t);
        for (t, topic, bytes) in batch {
            w.write_raw(topic, t, &bytes)?;
            report.bytes += bytes.len() as u64;
            first_log = first_log.min(t);
            last_log = last_log.max(t);
        }
        report.frames += 1;
        pb.inc(1);
    }
    pb.finish_and_clear();
    if report.frames == 0 {
        bail!("no frames to write");
    }
    report.messages = w.message_count();
    report.duration_s = (last_log - first_log) as f64 / 1e9;
    report.lidar_hz = median(&gaps).map_or(0.0, |g| 1e9 / g as f64);
    w.finish()?;
    Ok(report)
}

fn encode<M: super::cdr::CdrMessage>(m: &M) -> Result<Vec<u8>> {
    m.encode().map_err(|e| anyhow::anyhow!("serialising {}: {e}", M::TYPE_NAME))
}

fn median(v: &[i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    Some(s[s.len() / 2])
}
