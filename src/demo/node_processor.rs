//! The node's per-frame path as a replay [`FrameProcessor`]: the node's own
//! [`Synchronizer`] (camera/LiDAR matching, CameraInfo and rig calibration handling, checks),
//! the same [`FramePipeline`] and the same output messages (`detections_to_msg`,
//! `segmentation_to_msg`), fed by the bag's topics as the scene writer names them. What the
//! demo times is therefore what `bevfusion_node` runs per frame, minus DDS.

use crate::bag::frames::{
    camera_image_topic, camera_info_topic, CALIBRATION_TOPIC, LIDAR_FRAME, LIDAR_TOPIC,
};
use crate::bag::messages::Decoded;
use crate::pipeline::frame_pipeline::ms;
use crate::pipeline::FramePipeline;
use crate::replay::{Fed, FrameProcessor, ProcessedFrame};
use crate::ros::convert::header;
use crate::ros::detections::detections_to_msg;
use crate::ros::segmentation::segmentation_to_msg;
use crate::ros::sync::{CameraSetup, FrameJob, ImageMsg, SyncConfig, Synchronizer};
use anyhow::Result;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The node's synchroniser and pipeline over a bag's messages.
pub struct NodeProcessor {
    sync: Synchronizer,
    pipeline: FramePipeline,
    images: HashMap<String, usize>,
    infos: HashMap<String, usize>,
    describe: String,
}

impl NodeProcessor {
    /// `cameras`: the rig's camera names (topics as the scene writer names them);
    /// `describe`: one line for the report. Sync settings are the node's defaults.
    pub fn new(pipeline: FramePipeline, cameras: &[String], describe: String) -> Self {
        let mut images = HashMap::new();
        let mut infos = HashMap::new();
        let setups = cameras
            .iter()
            .enumerate()
            .map(|(i, name)| {
                images.insert(camera_image_topic(name, false), i);
                images.insert(camera_image_topic(name, true), i);
                infos.insert(camera_info_topic(name), i);
                CameraSetup {
                    name: name.clone(),
                    image_topic: camera_image_topic(name, false),
                    info_topic: camera_info_topic(name),
                    cam_to_lidar: None,
                }
            })
            .collect();
        let sync = Synchronizer::new(
            SyncConfig {
                max_camera_lidar_delay: Duration::from_secs_f64(0.12),
                // No camera-only frames: the bag's LiDAR never goes silent.
                lidar_timeout: Duration::ZERO,
                default_frame_id: LIDAR_FRAME.into(),
                cloud_capacity: pipeline.options().cloud_capacity,
                cloud_topic: LIDAR_TOPIC.into(),
            },
            setups,
            Instant::now(),
        );
        Self {
            sync,
            pipeline,
            images,
            infos,
            describe,
        }
    }

    pub fn pipeline(&self) -> &FramePipeline {
        &self.pipeline
    }
}

fn taken(r: Result<impl Sized, impl std::fmt::Display>) -> Fed<FrameJob> {
    match r {
        Ok(_) => Fed::Taken,
        Err(e) => Fed::Rejected(e.to_string()),
    }
}

impl FrameProcessor for NodeProcessor {
    type Job = FrameJob;

    fn on_message(&mut self, topic: &str, msg: &Decoded, now: Instant) -> Fed<FrameJob> {
        match msg {
            Decoded::PointCloud2(c) if topic == LIDAR_TOPIC => match self.sync.on_cloud(c, now) {
                Ok(job) => Fed::Frame(job),
                Err(e) => Fed::Rejected(e.to_string()),
            },
            Decoded::Image(m) => match self.images.get(topic) {
                Some(&i) => taken(self.sync.on_image(i, ImageMsg::Raw(m.clone()))),
                None => Fed::Ignored,
            },
            Decoded::CompressedImage(m) => match self.images.get(topic) {
                Some(&i) => taken(self.sync.on_image(i, ImageMsg::Compressed(m.clone()))),
                None => Fed::Ignored,
            },
            Decoded::CameraInfo(m) => match self.infos.get(topic) {
                Some(&i) => taken(self.sync.on_camera_info(i, m)),
                None => Fed::Ignored,
            },
            Decoded::RigCalibration(m) if topic == CALIBRATION_TOPIC => {
                taken(self.sync.on_rig_calibration(m, topic))
            }
            _ => Fed::Ignored,
        }
    }

    fn job_stamp(job: &FrameJob) -> i64 {
        job.stamp_ns
    }

    fn process(&mut self, mut job: FrameJob) -> Result<ProcessedFrame> {
        let (input, mut warnings) = job.decode();
        warnings.extend(job.warnings.iter().cloned());
        let mut out = self.pipeline.run_owned(input)?;
        out.timings.decode = job.decode_ms;
        let t_pub = Instant::now();
        let hdr = header(out.stamp_ns, &out.frame_id);
        let objects = detections_to_msg(&out.detections, out.mode, hdr.clone());
        let segmentation = out
            .segmentation
            .as_ref()
            .map(|s| segmentation_to_msg(s, hdr.clone()));
        out.timings.publish = ms(t_pub);
        warnings.extend(out.warnings);
        Ok(ProcessedFrame {
            stamp_ns: out.stamp_ns,
            frame_id: out.frame_id,
            mode: out.mode.name().into(),
            boxes: out.detections,
            objects,
            segmentation,
            seg_probs: out.segmentation.map(|s| s.probs),
            stages_ms: out.timings.as_array(),
            masked_cameras: out.masked_cameras,
            warnings,
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
