//! Test peer of the node tests: runs `bevfusion_node`'s library entry point in a thread (with
//! a chosen network) and talks to it through its own r2r node. Only used inside the network
//! namespace (`common::ros_isolated`).
#![allow(dead_code)]

use altermoma::data::CameraCalib;
use altermoma::pipeline::stand_in::StandInNetwork;
use altermoma::pipeline::{FrameInput, FramePipeline};
use altermoma::ros::camera_info::calib_to_camera_info;
use altermoma::ros::convert::{header, stamp_to_ns};
use altermoma::ros::image::{rgb_to_compressed, rgb_to_image, CompressedFormat};
use altermoma::ros::params::{load_params, NodeParams};
use altermoma::ros::pointcloud::points_to_pointcloud;
use futures::{FutureExt, Stream, StreamExt};
use r2r::altermoma_msgs::msg::{BevSegmentation, Detection3DArray, ProcessingTime};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::nav_msgs::msg::OccupancyGrid;
use r2r::sensor_msgs::msg::{CameraInfo, CompressedImage, Image, PointCloud2};
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::QosProfile;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const NS: &str = "/bevfusion_node";

/// Seconds since the epoch, now, in ns (synthetic stamps near the wall clock keep the
/// latency meaningful).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

fn fmt_f64(v: f64) -> String {
    let v = if v.abs() < 1e-15 { 0.0 } else { v };
    format!("{v:?}")
}

/// A parameter file for `rig` (camera `i` compressed when `compressed[i]`), plus `extra`
/// lines of parameters.
pub fn params_yaml(rig: &[CameraCalib], compressed: &[bool], extra: &str) -> String {
    let mut s =
        String::from("/**:\n  ros__parameters:\n    model_path: \"stand-in\"\n    device: cpu\n    warmup_frames: 1\n");
    let names: Vec<_> = rig.iter().map(|c| format!("\"{}\"", c.name)).collect();
    s += &format!("    camera_names: [{}]\n    cameras:\n", names.join(", "));
    for (c, comp) in rig.iter().zip(compressed) {
        let m = c.cam_to_lidar.inverse().to_homogeneous();
        let vals: Vec<String> =
            (0..4).flat_map(|r| (0..4).map(move |k| (r, k))).map(|(r, k)| fmt_f64(m[(r, k)])).collect();
        s += &format!(
            "      {}:\n        transport: {}\n        lidar_to_camera: [{}]\n",
            c.name,
            if *comp { "compressed" } else { "raw" },
            vals.join(", ")
        );
    }
    s += "    qos:\n      input_reliability: reliable\n      input_depth: 10\n";
    for l in extra.lines() {
        s += &format!("    {l}\n");
    }
    s
}

/// Load parameters from YAML text (through the product's loader).
pub fn load(dir: &Path, yaml: &str) -> NodeParams {
    let p = dir.join("params.yaml");
    std::fs::write(&p, yaml).unwrap();
    load_params(&[p], &[], "bevfusion_node", "/").unwrap()
}

/// The rig as the node sees it (extrinsics round-tripped through the parameter file).
pub fn node_rig(rig: &[CameraCalib], params: &NodeParams) -> Vec<CameraCalib> {
    rig.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c.cam_to_lidar = params.cam_to_lidar(i).unwrap();
            c
        })
        .collect()
}

/// The node under test, running in a thread.
pub struct RunningNode {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningNode {
    /// Start the node with the stand-in network (optionally slowed by `delay`).
    pub fn start_stand_in(params: NodeParams, delay: Duration) -> Self {
        let n = params.camera_names.len();
        let opts = params.pipeline_options();
        let make = Box::new(move || {
            let mut net = StandInNetwork::new(n);
            net.delay = delay;
            FramePipeline::new(Box::new(net), opts)
        });
        Self::start(params, make)
    }

    pub fn start(params: NodeParams, make: altermoma::ros::node::PipelineFactory) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || altermoma::ros::node::run(params, make, s));
        Self { stop, handle: Some(handle) }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let r = self.handle.take().unwrap().join().expect("node thread panicked");
        r.expect("node returned an error");
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

type BoxStream<T> = Box<dyn Stream<Item = T> + Unpin + Send>;

/// The test's own ROS 2 participant: publishes inputs, collects outputs.
pub struct Peer {
    pub node: r2r::Node,
    pub cloud: r2r::Publisher<PointCloud2>,
    pub images: Vec<r2r::Publisher<Image>>,
    pub compressed: Vec<r2r::Publisher<CompressedImage>>,
    pub infos: Vec<r2r::Publisher<CameraInfo>>,
    pub is_compressed: Vec<bool>,
    s_objects: BoxStream<Detection3DArray>,
    s_seg: BoxStream<BevSegmentation>,
    s_markers: BoxStream<MarkerArray>,
    s_time: BoxStream<ProcessingTime>,
    s_diag: BoxStream<DiagnosticArray>,
    s_grid: BoxStream<OccupancyGrid>,
    #[cfg(feature = "vision_msgs")]
    s_vision: BoxStream<r2r::vision_msgs::msg::Detection3DArray>,
    pub objects: Vec<Detection3DArray>,
    pub seg: Vec<BevSegmentation>,
    pub markers: Vec<MarkerArray>,
    pub times: Vec<ProcessingTime>,
    pub diags: Vec<DiagnosticArray>,
    pub grids: Vec<OccupancyGrid>,
    /// `~/output/vision_objects` (built with the `vision_msgs` feature).
    #[cfg(feature = "vision_msgs")]
    pub vision: Vec<r2r::vision_msgs::msg::Detection3DArray>,
    /// Every input publisher has been matched by the node's subscription.
    matched: bool,
    /// Images published per camera slot (what the node's `received` counts should reach).
    sent_images: Vec<u64>,
}

impl Peer {
    pub fn new(compressed: &[bool]) -> Self {
        let ctx = r2r::Context::create().unwrap();
        let mut node = r2r::Node::create(ctx, "node_test_peer", "").unwrap();
        let q = QosProfile::default();
        let big = QosProfile::default().keep_last(50);
        let mut images = Vec::new();
        let mut comp = Vec::new();
        let mut infos = Vec::new();
        for (i, c) in compressed.iter().enumerate() {
            if *c {
                comp.push(node.create_publisher(&format!("{NS}/input/image_{i}"), q.clone()).unwrap());
            } else {
                images.push(node.create_publisher(&format!("{NS}/input/image_{i}"), q.clone()).unwrap());
            }
            infos.push(node.create_publisher(&format!("{NS}/input/camera_info_{i}"), q.clone()).unwrap());
        }
        Self {
            cloud: node.create_publisher(&format!("{NS}/input/pointcloud"), q.clone()).unwrap(),
            images,
            compressed: comp,
            infos,
            is_compressed: compressed.to_vec(),
            s_objects: Box::new(node.subscribe(&format!("{NS}/output/objects"), big.clone()).unwrap()),
            s_seg: Box::new(node.subscribe(&format!("{NS}/output/bev_segmentation"), big.clone()).unwrap()),
            s_markers: Box::new(node.subscribe(&format!("{NS}/output/markers"), big.clone()).unwrap()),
            s_time: Box::new(node.subscribe(&format!("{NS}/debug/processing_time"), big.clone()).unwrap()),
            s_diag: Box::new(node.subscribe("/diagnostics", big.clone()).unwrap()),
            s_grid: Box::new(node.subscribe(&format!("{NS}/output/occupancy/drivable_area"), big.clone()).unwrap()),
            #[cfg(feature = "vision_msgs")]
            s_vision: Box::new(node.subscribe(&format!("{NS}/output/vision_objects"), big).unwrap()),
            node,
            objects: Vec::new(),
            seg: Vec::new(),
            markers: Vec::new(),
            times: Vec::new(),
            diags: Vec::new(),
            grids: Vec::new(),
            #[cfg(feature = "vision_msgs")]
            vision: Vec::new(),
            matched: false,
            sent_images: vec![0; compressed.len()],
        }
    }

    /// Pump until the node subscribes to every input this peer publishes: DDS drops what is
    /// published before a subscription has matched, so a CameraInfo sent earlier may never
    /// arrive (the camera then stays masked while the others fuse).
    pub fn wait_matched(&mut self, timeout: Duration) {
        if self.matched {
            return;
        }
        let t0 = Instant::now();
        loop {
            let counts = std::iter::once(self.cloud.get_inter_process_subscription_count())
                .chain(self.images.iter().map(|p| p.get_inter_process_subscription_count()))
                .chain(self.compressed.iter().map(|p| p.get_inter_process_subscription_count()))
                .chain(self.infos.iter().map(|p| p.get_inter_process_subscription_count()));
            if counts.map(|c| c.unwrap_or(0)).all(|c| c > 0) {
                self.matched = true;
                return;
            }
            assert!(t0.elapsed() < timeout, "the node did not subscribe to every input within {timeout:?}");
            self.pump(Duration::from_millis(20));
        }
    }

    /// Spin for about `d`, collecting outputs.
    pub fn pump(&mut self, d: Duration) {
        let t0 = Instant::now();
        loop {
            self.node.spin_once(Duration::from_millis(2));
            fn drain<T>(s: &mut BoxStream<T>, v: &mut Vec<T>) {
                while let Some(m) = s.next().now_or_never().flatten() {
                    v.push(m);
                }
            }
            drain(&mut self.s_objects, &mut self.objects);
            drain(&mut self.s_seg, &mut self.seg);
            drain(&mut self.s_markers, &mut self.markers);
            drain(&mut self.s_time, &mut self.times);
            drain(&mut self.s_diag, &mut self.diags);
            drain(&mut self.s_grid, &mut self.grids);
            #[cfg(feature = "vision_msgs")]
            drain(&mut self.s_vision, &mut self.vision);
            if t0.elapsed() >= d {
                return;
            }
        }
    }

    /// Pump until `f` gives a value (panics after `timeout`).
    pub fn wait<T>(&mut self, what: &str, timeout: Duration, mut f: impl FnMut(&Self) -> Option<T>) -> T {
        let t0 = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(t0.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
            self.pump(Duration::from_millis(5));
        }
    }

    /// Publish every camera's CameraInfo (once the node subscribes to every input).
    pub fn publish_infos(&mut self, input: &FrameInput) {
        self.wait_matched(Duration::from_secs(30));
        for (i, c) in input.cameras.iter().enumerate() {
            let c = c.as_ref().expect("infos need every camera");
            self.infos[i].publish(&calib_to_camera_info(&c.calib, header(c.stamp_ns, &c.calib.name))).unwrap();
        }
    }

    /// Publish camera `i`'s image of `input` (raw or PNG as configured).
    pub fn publish_image(&mut self, input: &FrameInput, i: usize) {
        self.sent_images[i] += 1;
        let c = input.cameras[i].as_ref().unwrap();
        let h = header(c.stamp_ns, &c.calib.name);
        if self.is_compressed[i] {
            let k = self.is_compressed[..i].iter().filter(|c| **c).count();
            let m = rgb_to_compressed(&c.image, CompressedFormat::Png, 90, h).unwrap();
            self.compressed[k].publish(&m).unwrap();
        } else {
            let k = self.is_compressed[..i].iter().filter(|c| !**c).count();
            self.images[k].publish(&rgb_to_image(&c.image, h)).unwrap();
        }
    }

    pub fn publish_cloud(&self, input: &FrameInput) {
        let pts = input.points.clone().unwrap_or_default();
        self.cloud.publish(&points_to_pointcloud(&pts, header(input.stamp_ns, &input.frame_id))).unwrap();
    }

    /// Images of every present camera, a pause so they arrive first, then the cloud.
    pub fn publish_frame(&mut self, input: &FrameInput) {
        for i in 0..input.cameras.len() {
            if input.cameras[i].is_some() {
                self.publish_image(input, i);
            }
        }
        self.pump(Duration::from_millis(150));
        self.publish_cloud(input);
    }

    /// [`Self::publish_frame`], but the cloud goes out only once the node's diagnostics count
    /// every image sent so far as received. On a loaded machine an image can reach the node
    /// after its cloud, and the node then rightly masks that camera; a test comparing exact
    /// outputs needs the frame as sent. Needs a short `diagnostics_period` in the parameters.
    pub fn publish_frame_once_images_arrive(&mut self, input: &FrameInput, timeout: Duration) {
        for i in 0..input.cameras.len() {
            if input.cameras[i].is_some() {
                self.publish_image(input, i);
            }
        }
        self.wait_images_received(timeout);
        self.publish_cloud(input);
    }

    /// Pump until the node's diagnostics count every image this peer sent as received.
    pub fn wait_images_received(&mut self, timeout: Duration) {
        let sent = self.sent_images.clone();
        self.wait("the node to receive every image", timeout, |p| {
            let received = |i: usize| {
                diag_value(&p.diags, &format!("{NS}/input/image_{i}.received")).and_then(|v| v.parse::<u64>().ok())
            };
            sent.iter().enumerate().all(|(i, &n)| n == 0 || received(i).is_some_and(|r| r >= n)).then_some(())
        });
    }

    /// Wait for the detections of the frame stamped `stamp_ns`.
    pub fn objects_at(&mut self, stamp_ns: i64, timeout: Duration) -> Detection3DArray {
        self.wait(&format!("objects stamped {stamp_ns}"), timeout, |p| {
            p.objects.iter().find(|o| stamp_to_ns(&o.header.stamp) == stamp_ns).cloned()
        })
    }

    /// Wait for a diagnostics message whose text contains every needle.
    pub fn diagnostic_with(&mut self, needles: &[&str], timeout: Duration) -> String {
        let needles: Vec<String> = needles.iter().map(|s| s.to_string()).collect();
        self.wait(&format!("a diagnostic mentioning {needles:?}"), timeout, |p| {
            p.diags.iter().find_map(|d| {
                let text = diag_text(d);
                needles.iter().all(|n| text.contains(n.as_str())).then_some(text)
            })
        })
    }
}

/// Everything a diagnostics message says, as one string.
pub fn diag_text(d: &DiagnosticArray) -> String {
    let mut s = String::new();
    for st in &d.status {
        s += &format!("[{}] {}: {}\n", st.level, st.name, st.message);
        for kv in &st.values {
            s += &format!("  {} = {}\n", kv.key, kv.value);
        }
    }
    s
}

/// Value of a key in the latest diagnostics that has it.
pub fn diag_value(diags: &[DiagnosticArray], key: &str) -> Option<String> {
    diags
        .iter()
        .rev()
        .find_map(|d| d.status.iter().flat_map(|s| &s.values).find(|kv| kv.key == key).map(|kv| kv.value.clone()))
}
