//! [`NodeProcessor`]: the node's own per-frame path as a [`FrameProcessor`]: the node's
//! [`Synchronizer`] (CameraInfo and image checks, camera-LiDAR matching, camera-only frames
//! when the LiDAR is silent), its image decoding, the shared [`FramePipeline`] and the
//! node's output messages. Replay therefore runs exactly what `bevfusion_node` runs, with the
//! arrival clock simulated from the bag's log times.
//!
//! Topics: the node subscribes to relative names (`~/input/...`) that are remapped on the
//! car; in a bag the sensors have their recorded names. [`NodeInputs`] says which bag topic
//! feeds which input: absolute topics from the node parameters are used as they are,
//! relative ones fall back to the `altermoma gen-bag` layout (`/lidar_top/points`,
//! `/<camera>/image_raw[/compressed]`, `/<camera>/camera_info`, `/calibration/rig`).

use super::processor::{Fed, FrameProcessor, ProcessedFrame};
use crate::bag::frames::{self, CALIBRATION_TOPIC, LIDAR_TOPIC};
use crate::bag::messages::Decoded;
use crate::bag::Bag;
use crate::pipeline::frame_pipeline::ms;
use crate::pipeline::FramePipeline;
use crate::ros::convert::header;
use crate::ros::detections::detections_to_msg;
use crate::ros::params::NodeParams;
use crate::ros::segmentation::segmentation_to_msg;
use crate::ros::sync::{CameraSetup, FrameJob, ImageMsg, SyncConfig, Synchronizer};
use anyhow::Result;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Which bag topics feed the node's inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInputs {
    pub cloud_topic: String,
    /// Per camera, in the model's order: name, image topics (raw and compressed accepted),
    /// CameraInfo topic.
    pub cameras: Vec<(String, Vec<String>, String)>,
    /// Topic of `altermoma_msgs/RigCalibration` (extrinsics), if any.
    pub rig_topic: Option<String>,
    /// Topic of static transforms (tf2_msgs/TFMessage), unless `extrinsics_source` is config.
    pub tf_static_topic: Option<String>,
}

impl NodeInputs {
    /// The topics of `params`, relative ones replaced by the gen-bag layout.
    pub fn from_params(params: &NodeParams) -> Self {
        let abs = |t: String| t.starts_with('/').then_some(t);
        let cameras = params
            .camera_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let images = abs(params.image_topic(i)).map(|t| vec![t]).unwrap_or_else(|| {
                    vec![frames::camera_image_topic(name, false), frames::camera_image_topic(name, true)]
                });
                let info = abs(params.camera_info_topic(i)).unwrap_or_else(|| frames::camera_info_topic(name));
                (name.clone(), images, info)
            })
            .collect();
        Self {
            cloud_topic: abs(params.pointcloud_topic.clone()).unwrap_or_else(|| LIDAR_TOPIC.to_string()),
            cameras,
            rig_topic: Some(abs(params.rig_calibration_topic.clone()).unwrap_or_else(|| CALIBRATION_TOPIC.into())),
            tf_static_topic: params
                .extrinsics_source
                .reads_tf_static()
                .then(|| abs(params.tf_static_topic.clone()).unwrap_or_else(|| format!("/{}", params.tf_static_topic))),
        }
    }
}

/// Camera names of a bag in rig order: from its first `altermoma_msgs/RigCalibration`
/// (gen-bag writes one first), else from its CameraInfo topics (`/cam_front/camera_info` ->
/// `CAM_FRONT`) in topic order.
pub fn bag_camera_names(bag: &Bag) -> Result<Vec<String>> {
    let mut names: Option<Vec<String>> = None;
    let _ = bag.messages(|m, topic| {
        if topic.type_name.ends_with("/RigCalibration") {
            if let Ok(Some(Decoded::RigCalibration(r))) = crate::bag::messages::decode(&topic.type_name, m.data) {
                names = Some(r.camera_names);
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if let Some(n) = names.filter(|n| !n.is_empty()) {
        return Ok(n);
    }
    let n: Vec<String> = bag
        .topics()
        .iter()
        .filter(|t| t.type_name.ends_with("/CameraInfo"))
        .filter_map(|t| t.name.strip_suffix("/camera_info").map(|c| c.trim_start_matches('/').to_uppercase()))
        .collect();
    anyhow::ensure!(
        !n.is_empty(),
        "{}: no rig calibration and no `/<camera>/camera_info` topics: pass the camera names",
        bag.path().display()
    );
    Ok(n)
}

/// The node's synchroniser and pipeline, fed from a bag.
pub struct NodeProcessor {
    sync: Synchronizer,
    pipeline: FramePipeline,
    inputs: NodeInputs,
    image_of: HashMap<String, usize>,
    info_of: HashMap<String, usize>,
    tick: Duration,
    next_tick: Option<Instant>,
    /// Time spent taking messages since the last frame was handed over (ms): the next frame's
    /// `receive` stage, as the node charges its receiving thread.
    receiving_ms: f64,
}

impl NodeProcessor {
    /// `start` is the simulated time of the first message (the node's start).
    pub fn new(params: &NodeParams, inputs: NodeInputs, pipeline: FramePipeline, start: Instant) -> Result<Self> {
        anyhow::ensure!(
            inputs.cameras.len() == params.camera_names.len(),
            "{} camera inputs for {} camera names",
            inputs.cameras.len(),
            params.camera_names.len()
        );
        if let Some(want) = pipeline.info().num_cameras {
            anyhow::ensure!(
                want == inputs.cameras.len(),
                "the model expects {want} camera(s), the replay has {} ({})",
                inputs.cameras.len(),
                params.camera_names.join(", ")
            );
        }
        let setups = inputs
            .cameras
            .iter()
            .enumerate()
            .map(|(i, (name, images, info))| CameraSetup {
                name: name.clone(),
                image_topic: images[0].clone(),
                info_topic: info.clone(),
                cam_to_lidar: params.cam_to_lidar(i),
            })
            .collect();
        let sync = Synchronizer::new(
            SyncConfig {
                max_camera_lidar_delay: Duration::from_secs_f64(params.max_camera_lidar_delay),
                lidar_timeout: Duration::from_secs_f64(params.lidar_timeout),
                default_frame_id: params.lidar_frame_id.clone(),
                cloud_capacity: params.cloud_capacity,
                cloud_topic: inputs.cloud_topic.clone(),
                extrinsics_source: params.extrinsics_source,
            },
            setups,
            start,
        );
        let mut image_of = HashMap::new();
        let mut info_of = HashMap::new();
        for (i, (_, images, info)) in inputs.cameras.iter().enumerate() {
            for t in images {
                image_of.insert(t.clone(), i);
            }
            info_of.insert(info.clone(), i);
        }
        Ok(Self {
            sync,
            pipeline,
            inputs,
            image_of,
            info_of,
            tick: Duration::from_secs_f64(1.0 / params.camera_only_rate.max(1e-3)),
            next_tick: None,
            receiving_ms: 0.0,
        })
    }

    pub fn pipeline(&self) -> &FramePipeline {
        &self.pipeline
    }

    /// Add the time since `t0` to what receiving has cost, and charge it to `job` if one is
    /// handed over.
    fn charge(&mut self, t0: Instant, job: Option<&mut FrameJob>) {
        self.receiving_ms += ms(t0);
        if let Some(job) = job {
            job.charge_receive(self.receiving_ms);
            self.receiving_ms = 0.0;
        }
    }

    /// [`FrameProcessor::on_message`] before the time it took is charged.
    fn take_message(&mut self, topic: &str, msg: &Decoded, now: Instant) -> Fed<FrameJob> {
        let why = |e: crate::ros::convert::ConvertError| Fed::Rejected(e.to_string());
        match msg {
            Decoded::PointCloud2(c) if topic == self.inputs.cloud_topic => match self.sync.on_cloud(c, now) {
                Ok(job) => Fed::Frame(job),
                Err(e) => why(e),
            },
            Decoded::Image(m) if self.image_of.contains_key(topic) => {
                match self.sync.on_image(self.image_of[topic], ImageMsg::from_raw(m.clone())) {
                    Ok(()) => Fed::Taken,
                    Err(e) => why(e),
                }
            }
            Decoded::CompressedImage(m) if self.image_of.contains_key(topic) => {
                match self.sync.on_image(self.image_of[topic], ImageMsg::Compressed(m.clone())) {
                    Ok(()) => Fed::Taken,
                    Err(e) => why(e),
                }
            }
            Decoded::CameraInfo(m) if self.info_of.contains_key(topic) => {
                match self.sync.on_camera_info(self.info_of[topic], m) {
                    Ok(_) => Fed::Taken,
                    Err(e) => why(e),
                }
            }
            Decoded::RigCalibration(m) if self.inputs.rig_topic.as_deref() == Some(topic) => {
                match self.sync.on_rig_calibration(m, topic) {
                    Ok(_) => Fed::Taken,
                    Err(e) => why(e),
                }
            }
            Decoded::TfMessage(m) if self.inputs.tf_static_topic.as_deref() == Some(topic) => {
                match self.sync.on_static_transforms(&m.transforms, topic) {
                    Ok(_) => Fed::Taken,
                    Err(e) => why(e),
                }
            }
            _ => Fed::Ignored,
        }
    }

    /// [`FrameProcessor::on_tick`] before the time it took is charged.
    fn timer(&mut self, now: Instant) -> Option<FrameJob> {
        let next = *self.next_tick.get_or_insert(now + self.tick);
        if now < next {
            return None;
        }
        self.next_tick = Some((next + self.tick).max(now));
        self.sync.on_tick(now)
    }
}

impl FrameProcessor for NodeProcessor {
    type Job = FrameJob;

    fn on_message(&mut self, topic: &str, msg: &Decoded, now: Instant) -> Fed<FrameJob> {
        let t0 = Instant::now();
        let mut fed = self.take_message(topic, msg, now);
        self.charge(t0, if let Fed::Frame(job) = &mut fed { Some(job) } else { None });
        fed
    }

    /// The node's camera-only timer, at `camera_only_rate` of simulated time.
    fn on_tick(&mut self, now: Instant) -> Option<FrameJob> {
        let t0 = Instant::now();
        let mut job = self.timer(now);
        self.charge(t0, job.as_mut());
        job
    }

    fn job_stamp(job: &FrameJob) -> i64 {
        job.stamp_ns
    }

    fn process(&mut self, mut job: FrameJob) -> Result<ProcessedFrame> {
        let (input, mut warnings) = job.decode();
        warnings.extend(job.warnings.iter().cloned());
        let mut out = self.pipeline.run_owned(input)?;
        out.timings.decode = job.decode_ms;
        out.timings.receive = job.receive_ms;
        // "publish": building the messages the node publishes.
        let t_pub = Instant::now();
        let hdr = header(out.stamp_ns, &out.frame_id);
        let objects = detections_to_msg(&out.detections, out.mode, hdr.clone());
        let segmentation = out.segmentation.as_ref().map(|s| segmentation_to_msg(s, hdr));
        out.timings.publish = ms(t_pub);
        warnings.extend(out.warnings);
        Ok(ProcessedFrame {
            stamp_ns: out.stamp_ns,
            frame_id: out.frame_id,
            mode: out.mode.name().to_string(),
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
        let i = self.pipeline.info();
        format!("{} on {}", i.name, i.device)
    }
}

/// The node parameters replay uses: `files` (node parameter YAML, as on the car), then
/// `model_path` set to `model` and, when the files do not name them, `camera_names` from the
/// bag (see [`bag_camera_names`]); `overrides` (`name`, YAML value) last.
pub fn replay_params(
    bag: &Bag,
    files: &[std::path::PathBuf],
    model: &std::path::Path,
    overrides: &[(String, String)],
) -> Result<NodeParams> {
    use crate::ros::node::NODE_NAME;
    use crate::ros::params::load_params;
    let mut ov = vec![("model_path".to_string(), serde_json::to_string(&model.to_string_lossy())?)];
    if files.is_empty() {
        // Extrinsics from the bag's rig calibration (gen-bag writes one, latched).
        ov.push(("rig_calibration_topic".into(), CALIBRATION_TOPIC.into()));
    }
    let try_files = load_params(files, &ov, NODE_NAME, "/");
    let need_names = match &try_files {
        Ok(p) => p.camera_names.is_empty(),
        Err(_) => true,
    };
    if need_names {
        let names = bag_camera_names(bag)?;
        ov.push(("camera_names".into(), serde_json::to_string(&names)?));
    }
    ov.extend(overrides.iter().cloned());
    Ok(load_params(files, &ov, NODE_NAME, "/")?)
}

/// A [`NodeProcessor`] for `model` on `bag` with `params` (the pipeline loaded and warmed up
/// as the node does).
pub fn node_processor(bag: &Bag, params: &NodeParams, model: &std::path::Path) -> Result<NodeProcessor> {
    let _ = bag;
    let mut pipeline = crate::pipeline::loader::load_pipeline(
        model,
        &params.device,
        params.fp16,
        params.num_threads,
        params.pipeline_options(),
    )?;
    let n = params.camera_names.len();
    let (w, h) = pipeline.info().input_size.unwrap_or((1600, 900));
    let calibs: Vec<_> = (0..n)
        .map(|i| {
            let mut c = crate::pipeline::frame_input::neutral_calib_sized(&params.camera_names[i], w, h);
            if let Some(iso) = params.cam_to_lidar(i) {
                c.cam_to_lidar = iso;
            }
            Some(c)
        })
        .collect();
    if pipeline.info().num_cameras.is_none_or(|k| k == n) {
        pipeline.warm_up(&params.camera_names, &calibs)?;
    }
    NodeProcessor::new(params, NodeInputs::from_params(params), pipeline, Instant::now())
}
