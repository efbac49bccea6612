//! `bevfusion_node`: the ROS 2 node (r2r).
//!
//! Threads: the calling thread spins the r2r node and does the cheap work on arrival
//! (validation, cloud conversion, synchronisation, diagnostics); a dedicated inference
//! thread owns the [`FramePipeline`] and the output publishers. They meet in a
//! [`LatestSlot`]: a frame that was not picked up before the next one arrived is dropped and
//! counted, so the node always works on the newest data and never queues without bound.
//!
//! Topics (relative names, remappable with `--ros-args -r`):
//! inputs `~/input/pointcloud`, `~/input/image_<i>`, `~/input/camera_info_<i>` (sensor-data
//! QoS by default); outputs `~/output/objects`, `~/output/bev_segmentation`,
//! `~/output/occupancy/<class>` (optional), `~/output/markers`, `~/debug/processing_time`,
//! `/diagnostics`. Output header = the triggering cloud's header. Extrinsics: `/tf_static`
//! (reliable, transient local) when built with tf2_msgs, `cameras.<name>.lidar_to_camera`,
//! or the optional RigCalibration topic, as `extrinsics_source` says.

use super::convert::header;
use super::detections::detections_to_msg;
use super::diagnostics::{latency_ms, processing_time_msg, NodeStatus};
use super::markers::detections_to_markers;
use super::native_cloud::NativeCloud;
use super::native_image::NativeImage;
use super::params::{ExtrinsicsSource, NodeParams, Reliability, Transport};
use super::segmentation::{segmentation_to_msg, segmentation_to_occupancy_grids};
use super::sync::{CameraSetup, FrameJob, ImageMsg, SyncConfig, Synchronizer, Trigger};
use crate::pipeline::frame_pipeline::ms;
use crate::pipeline::{FramePipeline, LatestSlot};
use anyhow::{bail, Context, Result};
use futures::{FutureExt, Stream, StreamExt};
use r2r::altermoma_msgs::msg::{BevSegmentation, Detection3DArray, ProcessingTime, RigCalibration};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::nav_msgs::msg::OccupancyGrid;
use r2r::sensor_msgs::msg::{CameraInfo, CompressedImage, Image, PointCloud2};
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::QosProfile;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Default node name.
pub const NODE_NAME: &str = "bevfusion_node";

/// True when this build subscribes to /tf_static: r2r generated tf2_msgs (build.rs sets
/// `altermoma_tf2_msgs` when tf2_msgs is installed and let through IDL_PACKAGE_FILTER).
pub const READS_TF_STATIC: bool = cfg!(altermoma_tf2_msgs);

/// Refuse parameters that need /tf_static in a build that cannot read it.
pub fn check_tf_static_support(params: &NodeParams) -> Result<()> {
    if READS_TF_STATIC || !params.extrinsics_source.reads_tf_static() {
        return Ok(());
    }
    const WHY: &str = "this build has no tf2_msgs, so /tf_static is not read (rebuild with tf2_msgs \
                       installed and listed in IDL_PACKAGE_FILTER; ./setup.sh provides it)";
    if params.extrinsics_source == ExtrinsicsSource::TfStatic {
        bail!("parameter `extrinsics_source` is tf_static but {WHY}");
    }
    let missing: Vec<&str> = (0..params.camera_names.len())
        .filter(|&i| params.cam_to_lidar(i).is_none())
        .map(|i| params.camera_names[i].as_str())
        .collect();
    if !missing.is_empty() && params.rig_calibration_topic.is_empty() {
        bail!(
            "camera(s) {} have no `lidar_to_camera` and no `rig_calibration_topic` is set, but {WHY}",
            missing.join(", ")
        );
    }
    tracing::warn!("{WHY}: extrinsics come from the parameters");
    Ok(())
}

/// The node's own topic names (relative, before remapping) for `num_cameras` cameras with the
/// default per-camera topics: inputs first, then outputs (occupancy grids included).
pub fn node_topics(num_cameras: usize) -> Vec<String> {
    let mut t = vec!["~/input/pointcloud".to_string()];
    for i in 0..num_cameras {
        t.push(format!("~/input/image_{i}"));
        t.push(format!("~/input/camera_info_{i}"));
    }
    t.extend(
        ["~/output/objects", "~/output/bev_segmentation", "~/output/markers", "~/debug/processing_time"]
            .map(String::from),
    );
    t.extend(crate::classes::MAP_CLASSES.iter().map(|c| format!("~/output/occupancy/{c}")));
    t
}

/// A topic name as rcl expands it (`~/x` -> `/ns/node/x`, `x` -> `/ns/x`), for messages;
/// remappings are not reflected.
pub fn expand_topic(topic: &str, fq_node_name: &str) -> String {
    if let Some(rest) = topic.strip_prefix("~/") {
        format!("{}/{rest}", fq_node_name.trim_end_matches('/'))
    } else if topic.starts_with('/') {
        topic.to_string()
    } else {
        let ns = fq_node_name.rsplit_once('/').map_or("", |(ns, _)| ns);
        format!("{ns}/{topic}")
    }
}

/// Builds the pipeline on the inference thread (model loading happens there, so the model
/// never crosses threads).
pub type PipelineFactory = Box<dyn FnOnce() -> Result<FramePipeline> + Send>;

fn qos(rel: Reliability, depth: usize, sensor: bool) -> QosProfile {
    let base = if sensor { QosProfile::sensor_data() } else { QosProfile::default() };
    let q = base.keep_last(depth);
    match rel {
        Reliability::BestEffort => q.best_effort(),
        Reliability::Reliable => q.reliable(),
    }
}

struct Publishers {
    objects: r2r::Publisher<Detection3DArray>,
    segmentation: r2r::Publisher<BevSegmentation>,
    occupancy: Vec<r2r::Publisher<OccupancyGrid>>,
    markers: r2r::Publisher<MarkerArray>,
    processing_time: r2r::Publisher<ProcessingTime>,
    #[cfg(feature = "vision_msgs")]
    vision: r2r::Publisher<r2r::vision_msgs::msg::Detection3DArray>,
}

type BoxStream<T> = Box<dyn Stream<Item = T> + Unpin + Send>;

enum ImageSub {
    /// Raw images stay in the middleware's C message (see [`super::native_image`]); such a
    /// stream cannot leave the spin thread, which is where it is read.
    Raw(Box<dyn Stream<Item = r2r::NativeMsg<Image>> + Unpin>),
    Compressed(BoxStream<CompressedImage>),
}

impl ImageSub {
    fn try_next(&mut self) -> Option<ImageMsg> {
        match self {
            ImageSub::Raw(s) => s.next().now_or_never().flatten().map(|m| match NativeImage::new(m) {
                Ok(native) => ImageMsg::from_native(native),
                Err(copied) => ImageMsg::from_raw(copied),
            }),
            ImageSub::Compressed(s) => s.next().now_or_never().flatten().map(ImageMsg::Compressed),
        }
    }
}

/// Whether a publisher has matched subscriptions (an error counts as yes: publish anyway).
fn has_subscribers<T: r2r::WrappedTypesupport + 'static>(p: &r2r::Publisher<T>) -> bool {
    p.get_inter_process_subscription_count().map_or(true, |n| n > 0)
}

/// The inference thread: wait for the newest frame, decode, run, publish.
fn inference_loop(
    mut pipeline: FramePipeline,
    params: &NodeParams,
    pubs: Publishers,
    slot: &LatestSlot<FrameJob>,
    status: &Mutex<NodeStatus>,
) {
    let lock = || status.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let Some(mut job) = slot.take(Duration::from_millis(200)) else {
            if slot.is_closed() {
                return;
            }
            continue;
        };
        // how long the frame waited for this thread (busy with an earlier frame)
        let wait_ms = job.handed_over.map_or(0.0, ms);
        let (input, decode_warnings) = job.decode();
        {
            let mut s = lock();
            for w in job.warnings.iter().chain(&decode_warnings) {
                s.warn(w.clone());
            }
        }
        let mut out = match pipeline.run_owned(input) {
            Ok(out) => out,
            Err(e) => {
                let mut s = lock();
                s.frames_failed += 1;
                s.warn(format!("frame at {:.3} s failed: {e:#}", job.stamp_ns as f64 * 1e-9));
                continue;
            }
        };
        out.timings.decode = job.decode_ms;
        out.timings.receive = job.receive_ms;
        let t_pub = Instant::now();
        let hdr = header(out.stamp_ns, &out.frame_id);
        let mut errors = Vec::new();
        let mut check = |what: &str, r: r2r::Result<()>| {
            if let Err(e) = r {
                errors.push(format!("publishing {what}: {e}"));
            }
        };
        check("objects", pubs.objects.publish(&detections_to_msg(&out.detections, out.mode, hdr.clone())));
        #[cfg(feature = "vision_msgs")]
        check(
            "vision objects",
            pubs.vision.publish(&super::detections::detections_to_vision_msgs(&out.detections, hdr.clone())),
        );
        if let Some(seg) = &out.segmentation {
            check("segmentation", pubs.segmentation.publish(&segmentation_to_msg(seg, hdr.clone())));
            // visualisation outputs are built only while somebody listens (RViz, a recorder)
            if pubs.occupancy.iter().any(has_subscribers) {
                for (p, g) in pubs.occupancy.iter().zip(segmentation_to_occupancy_grids(seg, hdr.clone())) {
                    check("occupancy grid", p.publish(&g));
                }
            }
        }
        if has_subscribers(&pubs.markers) {
            check(
                "markers",
                pubs.markers.publish(&detections_to_markers(&out.detections, params.marker_style, hdr.clone())),
            );
        }
        out.timings.publish = ms(t_pub);
        let latency = latency_ms(out.stamp_ns);
        let dropped = slot.dropped();
        check(
            "processing time",
            pubs.processing_time.publish(&processing_time_msg(hdr, &out.timings, latency, dropped, wait_ms)),
        );

        let mut s = lock();
        s.frames_processed += 1;
        s.frames_dropped = dropped;
        if job.trigger == Trigger::CameraOnlyTimer {
            s.camera_only_frames += 1;
        }
        s.last_mode = Some(out.mode);
        s.last_latency_ms = Some(latency);
        s.last_wait_ms = Some(wait_ms);
        s.last_timings = out.timings;
        s.extrinsics = job.extrinsics_sources().into_iter().map(|(n, e)| (n, e.as_str())).collect();
        let reasons = job.mask_reasons();
        s.masked = out
            .masked_cameras
            .iter()
            .map(|c| {
                let why = reasons.iter().find(|(n, _)| n == c).map_or("image unusable (see warnings)", |(_, r)| r);
                (c.clone(), why.to_string())
            })
            .collect();
        for w in out.warnings.into_iter().chain(errors) {
            s.warn(w);
        }
    }
}

/// Run the node until `stop` is set. `make_pipeline` runs on the inference thread, which
/// warms the pipeline up before any subscription exists (nothing is lost or queued while
/// the model loads).
pub fn run(params: NodeParams, make_pipeline: PipelineFactory, stop: Arc<AtomicBool>) -> Result<()> {
    check_tf_static_support(&params)?;
    let params = Arc::new(params);
    let n_cams = params.camera_names.len();
    let slot = Arc::new(LatestSlot::<FrameJob>::new());
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(String, String)>>();
    let (pubs_tx, pubs_rx) = mpsc::channel::<Publishers>();
    let (status_tx, status_rx) = mpsc::channel::<Arc<Mutex<NodeStatus>>>();

    let worker = {
        let params = params.clone();
        let slot = slot.clone();
        std::thread::Builder::new().name("inference".into()).spawn(move || {
            let pipeline = (|| -> Result<FramePipeline> {
                let mut p = make_pipeline()?;
                if let Some(want) = p.info().num_cameras {
                    if want != n_cams {
                        bail!("parameter `camera_names` lists {n_cams} camera(s) but the model expects {want}");
                    }
                }
                let (w, h) = p.info().input_size.unwrap_or((1600, 900));
                let calibs: Vec<_> = (0..n_cams)
                    .map(|i| {
                        let mut c = crate::pipeline::frame_input::neutral_calib_sized(&params.camera_names[i], w, h);
                        if let Some(iso) = params.cam_to_lidar(i) {
                            c.cam_to_lidar = iso;
                        }
                        Some(c)
                    })
                    .collect();
                let t0 = Instant::now();
                p.warm_up(&params.camera_names, &calibs)?;
                tracing::info!("warm-up: {} frames in {:.0} ms", p.frames_run(), ms(t0));
                Ok(p)
            })();
            let pipeline = match pipeline {
                Ok(p) => {
                    let _ = ready_tx.send(Ok((p.info().device.clone(), p.info().name.clone())));
                    p
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let (Ok(pubs), Ok(status)) = (pubs_rx.recv(), status_rx.recv()) else { return };
            inference_loop(pipeline, &params, pubs, &slot, &status);
        })?
    };
    let (device, model) = match ready_rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let _ = worker.join();
            return Err(e.context("loading the model"));
        }
        Err(_) => {
            let _ = worker.join();
            bail!("the inference thread ended while loading the model");
        }
    };

    // the worker is joined inside `spin`, before the node (and its publishers) go away
    spin(&params, &slot, pubs_tx, status_tx, &device, &model, &stop, worker)
}

#[allow(clippy::too_many_arguments)]
fn spin(
    params: &NodeParams,
    slot: &LatestSlot<FrameJob>,
    pubs_tx: mpsc::Sender<Publishers>,
    status_tx: mpsc::Sender<Arc<Mutex<NodeStatus>>>,
    device: &str,
    model: &str,
    stop: &AtomicBool,
    worker: std::thread::JoinHandle<()>,
) -> Result<()> {
    let result = spin_node(params, slot, pubs_tx, status_tx, device, model, stop);
    slot.close();
    let _ = worker.join();
    result.map(|_node| ())
}

#[allow(clippy::too_many_arguments)]
fn spin_node(
    params: &NodeParams,
    slot: &LatestSlot<FrameJob>,
    pubs_tx: mpsc::Sender<Publishers>,
    status_tx: mpsc::Sender<Arc<Mutex<NodeStatus>>>,
    device: &str,
    model: &str,
    stop: &AtomicBool,
) -> Result<r2r::Node> {
    let ctx = r2r::Context::create().context("initialising ROS 2 (rcl)")?;
    let mut node = r2r::Node::create(ctx, NODE_NAME, "").context("creating the ROS 2 node")?;
    let fq_name = node.fully_qualified_name().unwrap_or_else(|_| NODE_NAME.into());
    let in_q = qos(params.qos.input_reliability, params.qos.input_depth, true);
    let out_q = qos(params.qos.output_reliability, params.qos.output_depth, false);

    let pubs = Publishers {
        objects: node.create_publisher("~/output/objects", out_q.clone())?,
        segmentation: node.create_publisher("~/output/bev_segmentation", out_q.clone())?,
        occupancy: if params.publish_occupancy_grids {
            crate::classes::MAP_CLASSES
                .iter()
                .map(|c| node.create_publisher(&format!("~/output/occupancy/{c}"), out_q.clone()))
                .collect::<r2r::Result<_>>()?
        } else {
            Vec::new()
        },
        markers: node.create_publisher("~/output/markers", out_q.clone())?,
        processing_time: node.create_publisher("~/debug/processing_time", out_q.clone())?,
        #[cfg(feature = "vision_msgs")]
        vision: node.create_publisher("~/output/vision_objects", out_q.clone())?,
    };
    let diag_pub = node.create_publisher::<DiagnosticArray>("/diagnostics", QosProfile::default())?;

    let n = params.camera_names.len();
    // clouds are read in the middleware's C message (see `native_cloud`)
    let mut cloud_sub = node.subscribe_native::<PointCloud2>(&params.pointcloud_topic, in_q.clone())?;
    let mut image_subs = Vec::with_capacity(n);
    let mut info_subs: Vec<BoxStream<CameraInfo>> = Vec::with_capacity(n);
    let mut setups = Vec::with_capacity(n);
    // diagnostics inputs: 0 = cloud, 1 + 2i = image i, 2 + 2i = camera_info i
    let mut topics = vec![params.pointcloud_topic.clone()];
    for i in 0..n {
        let (it, ct) = (params.image_topic(i), params.camera_info_topic(i));
        image_subs.push(match params.transport(i) {
            Transport::Raw => ImageSub::Raw(Box::new(node.subscribe_native::<Image>(&it, in_q.clone())?)),
            Transport::Compressed => {
                ImageSub::Compressed(Box::new(node.subscribe::<CompressedImage>(&it, in_q.clone())?))
            }
        });
        info_subs.push(Box::new(node.subscribe::<CameraInfo>(&ct, in_q.clone())?));
        setups.push(CameraSetup {
            name: params.camera_names[i].clone(),
            image_topic: expand_topic(&it, &fq_name),
            info_topic: expand_topic(&ct, &fq_name),
            cam_to_lidar: params.cam_to_lidar(i),
        });
        topics.push(it);
        topics.push(ct);
    }
    // the rig calibration (optional) is the last input
    let mut rig_sub: Option<BoxStream<RigCalibration>> = None;
    let rig_topic = expand_topic(&params.rig_calibration_topic, &fq_name);
    if !params.rig_calibration_topic.is_empty() {
        let q = QosProfile::default().keep_last(1).reliable().transient_local();
        rig_sub = Some(Box::new(node.subscribe::<RigCalibration>(&params.rig_calibration_topic, q)?));
    }
    let mut display: Vec<String> = topics.iter().map(|t| expand_topic(t, &fq_name)).collect();
    if rig_sub.is_some() {
        display.push(rig_topic.clone());
    }
    let rig_input = display.len() - 1;
    // /tf_static (when built with tf2_msgs and extrinsics_source reads it) is the last input
    #[cfg(altermoma_tf2_msgs)]
    let tf_topic = expand_topic(&params.tf_static_topic, &fq_name);
    #[cfg(altermoma_tf2_msgs)]
    let mut tf_sub: Option<BoxStream<r2r::tf2_msgs::msg::TFMessage>> = None;
    #[cfg(altermoma_tf2_msgs)]
    if params.extrinsics_source.reads_tf_static() {
        // as tf2's static listener: reliable, transient local, room for many broadcasters
        let q = QosProfile::default().keep_last(100).reliable().transient_local();
        tf_sub = Some(Box::new(node.subscribe(&params.tf_static_topic, q)?));
        display.push(tf_topic.clone());
    }
    #[cfg(altermoma_tf2_msgs)]
    let tf_input = display.len() - 1;
    let status = Arc::new(Mutex::new(NodeStatus::new(&fq_name, device, model, &display)));
    let lock = || status.lock().unwrap_or_else(|e| e.into_inner());
    let start = Instant::now();
    let mut sync = Synchronizer::new(
        SyncConfig {
            max_camera_lidar_delay: Duration::from_secs_f64(params.max_camera_lidar_delay),
            lidar_timeout: Duration::from_secs_f64(params.lidar_timeout),
            default_frame_id: params.lidar_frame_id.clone(),
            cloud_capacity: params.cloud_capacity,
            cloud_topic: expand_topic(&params.pointcloud_topic, &fq_name),
            extrinsics_source: params.extrinsics_source,
        },
        setups,
        start,
    );
    let _ = pubs_tx.send(pubs);
    let _ = status_tx.send(status.clone());
    tracing::info!(
        "{fq_name}: live on {device} with {model}; {} camera(s), cloud topic {}",
        n,
        params.pointcloud_topic
    );

    let tick = Duration::from_secs_f64(1.0 / params.camera_only_rate);
    let diag_period = Duration::from_secs_f64(params.diagnostics_period);
    let mut next_tick = start + tick;
    let mut next_diag = start;
    // this thread's CPU time when the last frame was handed over: the next frame is charged
    // with what receiving cost since (`receive` in ~/debug/processing_time)
    let mut cpu_at_handover = crate::cpu_time::thread_cpu_ms();
    let mut hand_over = |mut job: FrameJob| {
        let now = crate::cpu_time::thread_cpu_ms();
        job.charge_receive(now - cpu_at_handover);
        cpu_at_handover = now;
        job.handed_over = Some(Instant::now());
        slot.put(job);
    };
    while !stop.load(Ordering::Relaxed) {
        // wait for messages until the next timer is due (a message ends the wait at once):
        // no wake-ups for nothing, each of which costs r2r a new wait set
        let due = next_tick.min(next_diag).saturating_duration_since(Instant::now());
        node.spin_once(due.clamp(Duration::from_millis(1), Duration::from_millis(100)));
        let now = Instant::now();
        if let Some(sub) = rig_sub.as_mut() {
            while let Some(m) = sub.next().now_or_never().flatten() {
                let mut s = lock();
                s.received(rig_input, now);
                match sync.on_rig_calibration(&m, &rig_topic) {
                    Ok(names) => tracing::info!("rig calibration for {}", names.join(", ")),
                    Err(e) => s.rejected(rig_input, &e),
                }
            }
        }
        #[cfg(altermoma_tf2_msgs)]
        if let Some(sub) = tf_sub.as_mut() {
            while let Some(m) = sub.next().now_or_never().flatten() {
                let mut s = lock();
                s.received(tf_input, now);
                match sync.on_static_transforms(&m.transforms, &tf_topic) {
                    Ok(frames) => tracing::info!("static transforms for {}", frames.join(", ")),
                    Err(e) => s.rejected(tf_input, &e),
                }
            }
        }
        for (i, sub) in info_subs.iter_mut().enumerate() {
            while let Some(m) = sub.next().now_or_never().flatten() {
                let mut s = lock();
                s.received(2 + 2 * i, now);
                match sync.on_camera_info(i, &m) {
                    Ok(warnings) => warnings.into_iter().for_each(|w| s.warn(w)),
                    Err(e) => s.rejected(2 + 2 * i, &e),
                }
            }
        }
        for (i, sub) in image_subs.iter_mut().enumerate() {
            while let Some(m) = sub.try_next() {
                let mut s = lock();
                s.received(1 + 2 * i, now);
                if let Err(e) = sync.on_image(i, m) {
                    s.rejected(1 + 2 * i, &e);
                }
            }
        }
        while let Some(m) = cloud_sub.next().now_or_never().flatten() {
            lock().received(0, now);
            match sync.on_cloud(&NativeCloud::new(m), now) {
                Ok(job) => hand_over(job),
                Err(e) => lock().rejected(0, &e),
            }
        }
        if now >= next_tick {
            next_tick = (next_tick + tick).max(now);
            if let Some(job) = sync.on_tick(now) {
                hand_over(job);
            }
        }
        let mut s = lock();
        s.lidar_alive = sync.lidar_alive(now);
        s.frames_dropped = slot.dropped();
        if now >= next_diag || s.has_pending() {
            next_diag = now + diag_period;
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            let msg = s.to_msg(now, header(stamp, ""));
            drop(s);
            if let Err(e) = diag_pub.publish(&msg) {
                tracing::warn!("publishing diagnostics: {e}");
            }
        }
    }
    tracing::info!("{fq_name}: shutting down");
    // the node is returned so that it outlives the inference thread's last publish
    Ok(node)
}
