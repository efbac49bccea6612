//! `altermoma bench node`: the ROS node end to end, in a private network namespace.
//!
//! For each model (and optionally the stand-in network, which measures the node's own cost):
//! start the node (the same `ros::node::run` the binary runs), publish synthetic camera +
//! LiDAR frames at `--rate` Hz from a second participant, and read the node's
//! `~/debug/processing_time`: end-to-end latency (cloud stamp, set at publish time, to the
//! node's publish) p50/p99, per-stage times (the receiving thread's CPU time included), the
//! share of frame time spent outside the network forward, drops, and the CPU time of every
//! thread of the process per frame (node inference, node receiving, DDS, this publisher).
//! Then, for one model, run `--memory-frames` frames back to back and follow
//! the process's resident memory. Writes `report.md`, `results.json` and PNG charts.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Models to measure, as LABEL=PATH (e.g. tiny-dense=runs/tiny.safetensors). Repeatable.
    /// PATH may also be a model config (.yaml): a randomly initialised model of that config
    /// (same cost as a trained one) is measured.
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Also measure the node with the stand-in network (no model: the node's own cost).
    #[arg(long)]
    pub stand_in: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Half precision (CUDA).
    #[arg(long)]
    pub fp16: bool,
    /// Input rate (Hz) of the latency measurement.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Frames published at `--rate` per model.
    #[arg(long, default_value_t = 200)]
    pub latency_frames: usize,
    /// Frames run back to back while following memory (0: skip).
    #[arg(long, default_value_t = 5000)]
    pub memory_frames: usize,
    /// Label of the model whose memory is followed (default: the first measured).
    #[arg(long)]
    pub memory_model: Option<String>,
    /// Cameras of the stand-in (a model brings its own count).
    #[arg(long, default_value_t = 6)]
    pub cameras: usize,
    /// Published image size, WIDTHxHEIGHT (default: the model's input size; 704x256 for the
    /// stand-in).
    #[arg(long)]
    pub image_size: Option<String>,
    /// Encoding of the published raw images: rgb8, or bgr8 (what most camera drivers send).
    /// Either way the node keeps the middleware's buffer as the image, in its own layout.
    #[arg(long, default_value = "rgb8", value_parser = ["rgb8", "bgr8"])]
    pub encoding: String,
    /// Points per published cloud (about).
    #[arg(long, default_value_t = 30000)]
    pub points: usize,
    /// How the inputs reach the node. `intra-process`: published from this process, where Fast
    /// DDS hands them over without its transports (drivers composed with the node).
    /// `inter-process`: published from a second process through Fast DDS's default transports,
    /// as camera and LiDAR drivers on an untuned robot. `inter-process-large-images`: the same
    /// with `config/fastdds_large_images.xml`. Both inter-process modes write the Fast DDS
    /// profile they use to `OUT/fastdds_profile.xml` (intra-process delivery off, so that the
    /// outputs also go through the transports) and report the publisher process's CPU apart.
    #[arg(long, value_enum, default_value_t = Delivery::IntraProcess)]
    pub delivery: Delivery,
    /// Internal: run as the inter-process modes' publisher (`CAMERAS:WIDTHxHEIGHT`), taking
    /// frame numbers on stdin and answering each with the stamp it published.
    #[arg(long, hide = true)]
    pub publisher: Option<String>,
    /// The report's description of the delivery (set when the measurement starts).
    #[arg(skip)]
    pub delivery_note: String,
    /// libtorch CPU threads (0: default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also subscribe to `~/output/markers`, as RViz would (the node builds markers only while
    /// somebody subscribes). Detections and segmentation are always subscribed.
    #[arg(long)]
    pub visualize: bool,
    /// Output directory.
    #[arg(long, default_value = "bench/node")]
    pub out: PathBuf,
}

/// How the benchmark's messages reach the node (`--delivery`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    IntraProcess,
    InterProcess,
    InterProcessLargeImages,
}

/// The environment variable that names Fast DDS's XML profile file (Fast DDS 2.x, ROS 2 Jazzy).
pub const FASTDDS_PROFILE_VAR: &str = "FASTRTPS_DEFAULT_PROFILES_FILE";

/// The shipped profile for camera-size images between processes.
const LARGE_IMAGES_PROFILE: &str = include_str!("../../config/fastdds_large_images.xml");

/// The Fast DDS profile of an inter-process mode: intra-process delivery off (so that the
/// node's outputs, read in the node's process, also go through the transports), plus the
/// shipped profile's transports for `inter-process-large-images`. None for `intra-process`.
pub fn delivery_profile(delivery: Delivery) -> Option<String> {
    let settings = "  <library_settings>\n    <intraprocess_delivery>OFF</intraprocess_delivery>\n  </library_settings>\n</dds>";
    let base = match delivery {
        Delivery::IntraProcess => return None,
        Delivery::InterProcess => {
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<dds xmlns=\"http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles\">\n</dds>\n"
        }
        Delivery::InterProcessLargeImages => LARGE_IMAGES_PROFILE,
    };
    let at = base.rfind("</dds>").expect("a Fast DDS profile ends with </dds>");
    Some(format!("{}{settings}{}", &base[..at], &base[at + "</dds>".len()..]))
}

/// Point Fast DDS at `--delivery`'s profile, written to `OUT/fastdds_profile.xml`. Must run
/// before any participant exists (and before other threads read the environment). Returns
/// the report's description of the delivery.
fn configure_delivery(args: &Args) -> Result<String> {
    let from_env = std::env::var_os(FASTDDS_PROFILE_VAR).map(|p| p.to_string_lossy().into_owned());
    let Some(xml) = delivery_profile(args.delivery) else {
        return Ok(match from_env {
            Some(p) => format!("intra-process, with the Fast DDS profile of the environment ({FASTDDS_PROFILE_VAR}={p})"),
            None => "intra-process (Fast DDS hands the messages over inside the process)".into(),
        });
    };
    if let Some(p) = &from_env {
        tracing::warn!("{FASTDDS_PROFILE_VAR}={p} is replaced for this measurement (--delivery {:?})", args.delivery);
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join("fastdds_profile.xml");
    crate::io::atomic_write(&path, xml.as_bytes())?;
    let path = std::fs::canonicalize(&path).with_context(|| format!("resolving {}", path.display()))?;
    std::env::set_var(FASTDDS_PROFILE_VAR, &path);
    let what = match args.delivery {
        Delivery::InterProcess => "Fast DDS's default transports",
        _ => "the transports of config/fastdds_large_images.xml",
    };
    Ok(format!(
        "inter-process: the inputs are published from a second process, through {what}; intra-process delivery \
         is off, so the outputs go through them too (profile: {})",
        path.display()
    ))
}

pub fn run(args: Args) -> Result<()> {
    if !crate::netns::is_isolated() {
        if std::env::var("ALTERMOMA_IN_NETNS").as_deref() == Ok("1") {
            bail!("refusing to start ROS 2 participants: {}", crate::netns::isolation_problem().unwrap_or_default());
        }
        // Re-run this very command inside a private network namespace (loopback only).
        let exe = std::env::current_exe()?;
        let status = std::process::Command::new(crate::netns::wrapper_path())
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .status()
            .context("running tests/netns.sh")?;
        if !status.success() {
            bail!("`altermoma bench node` failed inside the network namespace ({status})");
        }
        return Ok(());
    }
    #[cfg(feature = "ros")]
    {
        match args.publisher.clone() {
            Some(spec) => imp::serve_publisher(&args, &spec),
            None => imp::run(args),
        }
    }
    #[cfg(not(feature = "ros"))]
    {
        let _ = args;
        bail!("`altermoma bench node` needs the `ros` feature")
    }
}

#[cfg(feature = "ros")]
mod imp {
    use super::Args;
    use crate::data::{CameraCalib, PixelLayout};
    use crate::pipeline::stand_in::StandInNetwork;
    use crate::pipeline::synthetic_input::{ring_rig, synthetic_input, SyntheticSpec};
    use crate::pipeline::{FramePipeline, StageTimings};
    use crate::ros::camera_info::calib_to_camera_info;
    use crate::ros::convert::{header, ns_to_stamp, stamp_to_ns};
    use crate::ros::image::rgb_to_image;
    use crate::ros::node::PipelineFactory;
    use crate::ros::params::{load_params, NodeParams};
    use crate::ros::pointcloud::{points_to_pointcloud, WRITTEN_POINT_STEP};
    use anyhow::{bail, Context, Result};
    use futures::{FutureExt, Stream, StreamExt};
    use r2r::altermoma_msgs::msg::{BevSegmentation, Detection3DArray, ProcessingTime};
    use r2r::visualization_msgs::msg::MarkerArray;
    use r2r::sensor_msgs::msg::{CameraInfo, Image, PointCloud2};
    use r2r::QosProfile;
    use serde::Serialize;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const NS: &str = "/bevfusion_node";

    fn now_ns() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
    }

    /// Resident set size of this process in MiB.
    pub fn rss_mib() -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn percentile(sorted: &[f64], q: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[i]
    }

    /// What was measured for one model.
    #[derive(Clone, Debug, Serialize)]
    pub struct ModelResult {
        pub label: String,
        pub network: String,
        pub device: String,
        pub cameras: usize,
        pub image_size: String,
        pub published: usize,
        pub processed: usize,
        pub dropped: u64,
        pub latency_p50_ms: f64,
        pub latency_p99_ms: f64,
        pub latency_mean_ms: f64,
        /// Mean per stage (ms), in `StageTimings::NAMES` order.
        pub stage_mean_ms: Vec<f64>,
        pub network_mean_ms: f64,
        /// (latency - network forward) / latency, mean over frames.
        pub outside_share_of_latency: f64,
        /// (sum of stages - network forward) / sum of stages, mean over frames.
        pub outside_share_of_processing: f64,
        /// Sum of stages - network forward (ms), mean over frames.
        pub outside_network_mean_ms: f64,
        /// `outside_network_mean_ms` / the input period (1 / `--rate`).
        pub outside_share_of_period: f64,
        /// Latency - sum of stages (ms), mean over frames: the time before the node's stages
        /// ran that is not the receiving thread's CPU time (DDS delivery of the cloud and
        /// images to the node, and waiting while the inference thread was busy with an earlier
        /// frame).
        pub before_processing_mean_ms: f64,
        /// Of that, the wait for the busy inference thread (`wait_ms`, mean over frames); the
        /// rest is the inputs' delivery to the node.
        pub waiting_mean_ms: f64,
        /// CPU time per published frame (ms) by group of threads of this process, most first
        /// (see [`thread_group`]).
        pub cpu_per_frame_ms: Vec<(String, f64)>,
        /// Bytes of one frame's images and cloud as published (the cloud at `WRITTEN_POINT_STEP`
        /// bytes a point).
        pub input_bytes: usize,
        /// A plain copy of `input_bytes` on this machine, measured after the latency run (ms,
        /// median; [`crate::bench::copy_floor`]): the floor under `receive`.
        pub input_copy_ms: f64,
        pub latencies_ms: Vec<f64>,
        pub memory: Option<MemoryResult>,
    }

    #[derive(Clone, Debug, Serialize)]
    pub struct MemoryResult {
        pub frames: usize,
        pub missing: usize,
        /// (frames processed, RSS MiB) samples.
        pub rss_mib: Vec<(usize, f64)>,
        pub start_mib: f64,
        pub end_mib: f64,
        /// Least-squares slope over the second half, MiB per 1000 frames.
        pub slope_mib_per_1000: f64,
    }

    type BoxStream<T> = Box<dyn Stream<Item = T> + Unpin + Send>;

    /// The publishers of the node's inputs.
    struct Inputs {
        cloud: r2r::Publisher<PointCloud2>,
        images: Vec<r2r::Publisher<Image>>,
        infos: Vec<r2r::Publisher<CameraInfo>>,
    }

    impl Inputs {
        fn new(node: &mut r2r::Node, n: usize) -> Result<Self> {
            let q = QosProfile::default();
            Ok(Self {
                cloud: node.create_publisher(&format!("{NS}/input/pointcloud"), q.clone())?,
                images: (0..n)
                    .map(|i| node.create_publisher(&format!("{NS}/input/image_{i}"), q.clone()))
                    .collect::<r2r::Result<_>>()?,
                infos: (0..n)
                    .map(|i| node.create_publisher(&format!("{NS}/input/camera_info_{i}"), q.clone()))
                    .collect::<r2r::Result<_>>()?,
            })
        }
    }

    /// The benchmark's participant: the node's outputs and timings, and (intra-process) the
    /// input publishers.
    struct Peer {
        node: r2r::Node,
        /// None when a publisher process sends the inputs.
        inputs: Option<Inputs>,
        times: BoxStream<ProcessingTime>,
        got: HashMap<i64, ProcessingTime>,
        /// The outputs a vehicle consumes (and markers with `--visualize`), read and dropped.
        outputs: Vec<BoxStream<()>>,
    }

    impl Peer {
        /// `n` input publishers, or none (`n` = None).
        fn new(n: Option<usize>, visualize: bool) -> Result<Self> {
            let ctx = r2r::Context::create()?;
            let mut node = r2r::Node::create(ctx, "bench_peer", "")?;
            let q = QosProfile::default();
            let deep = QosProfile::default().keep_last(1000);
            let mut outputs: Vec<BoxStream<()>> = vec![
                Box::new(node.subscribe::<Detection3DArray>(&format!("{NS}/output/objects"), q.clone())?.map(|_| ())),
                Box::new(
                    node.subscribe::<BevSegmentation>(&format!("{NS}/output/bev_segmentation"), q.clone())?.map(|_| ()),
                ),
            ];
            if visualize {
                outputs
                    .push(Box::new(node.subscribe::<MarkerArray>(&format!("{NS}/output/markers"), q.clone())?.map(|_| ())));
            }
            let inputs = n.map(|n| Inputs::new(&mut node, n)).transpose()?;
            Ok(Self {
                outputs,
                inputs,
                times: Box::new(node.subscribe(&format!("{NS}/debug/processing_time"), deep)?),
                node,
                got: HashMap::new(),
            })
        }

        fn pump_until(&mut self, t: Instant) {
            loop {
                let now = Instant::now();
                let left = t.saturating_duration_since(now);
                self.node.spin_once(left.min(Duration::from_millis(2)));
                while let Some(m) = self.times.next().now_or_never().flatten() {
                    self.got.insert(stamp_to_ns(&m.header.stamp), m);
                }
                for s in &mut self.outputs {
                    while s.next().now_or_never().flatten().is_some() {}
                }
                if Instant::now() >= t {
                    return;
                }
            }
        }
    }

    /// Pre-built messages of a few distinct frames; stamps are set at publish time.
    struct Frames {
        clouds: Vec<PointCloud2>,
        images: Vec<Vec<Image>>,
        infos: Vec<CameraInfo>,
    }

    impl Frames {
        fn new(rig: &[CameraCalib], spec: &SyntheticSpec, encoding: &str) -> Self {
            let mut clouds = Vec::new();
            let mut images = Vec::new();
            let mut infos = Vec::new();
            for k in 0..8 {
                let f = synthetic_input(spec, rig, k, 0, "lidar_top");
                clouds.push(points_to_pointcloud(f.points.as_ref().unwrap(), header(0, "lidar_top")));
                images.push(
                    f.cameras
                        .iter()
                        .map(|c| {
                            let mut m = rgb_to_image(&c.as_ref().unwrap().image, header(0, "cam"));
                            if encoding == "bgr8" {
                                m.data.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
                                m.encoding = encoding.into();
                            }
                            m
                        })
                        .collect(),
                );
                if k == 0 {
                    infos = f
                        .cameras
                        .iter()
                        .map(|c| calib_to_camera_info(&c.as_ref().unwrap().calib, header(0, "cam")))
                        .collect();
                }
            }
            Self { clouds, images, infos }
        }

        /// Publish frame `k` stamped now; returns the stamp.
        fn publish(&mut self, inputs: &Inputs, k: usize) -> Result<i64> {
            let stamp = now_ns();
            let i = k % self.clouds.len();
            for (c, img) in self.images[i].iter_mut().enumerate() {
                img.header.stamp = ns_to_stamp(stamp);
                inputs.images[c].publish(img)?;
                if k % 10 == 0 {
                    inputs.infos[c].publish(&self.infos[c])?;
                }
            }
            self.clouds[i].header.stamp = ns_to_stamp(stamp);
            inputs.cloud.publish(&self.clouds[i])?;
            Ok(stamp)
        }
    }

    /// The rig and the synthetic frames of a run: `n` cameras of `w` x `h`, about `points`
    /// points per cloud.
    fn input_spec(n: usize, w: u32, h: u32, points: usize) -> (Vec<CameraCalib>, SyntheticSpec) {
        let names: Vec<String> = (0..n).map(|i| format!("CAM_{i}")).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let per_obj = 200;
        let spec = SyntheticSpec {
            num_ground_points: points.saturating_sub(8 * per_obj).max(100),
            num_objects: 8,
            points_per_object: per_obj,
            image_width: w,
            image_height: h,
            integer_intensity: true,
        };
        (ring_rig(&name_refs), spec)
    }

    /// `WIDTHxHEIGHT`.
    fn parse_size(size: &str) -> Option<(u32, u32)> {
        let (w, h) = size.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    }

    /// `CAMERAS:WIDTHxHEIGHT`.
    pub(super) fn parse_publisher_spec(spec: &str) -> Result<(usize, u32, u32)> {
        let parsed = spec.split_once(':').and_then(|(n, size)| {
            let (w, h) = parse_size(size)?;
            Some((n.parse().ok()?, w, h))
        });
        parsed.with_context(|| format!("--publisher {spec}: expected CAMERAS:WIDTHxHEIGHT"))
    }

    /// The inter-process modes' publisher (`--publisher`), a child of the benchmark in its
    /// network namespace: announces `ready`, then publishes frame `k` for every line `k` on
    /// stdin and answers with the stamp, until stdin closes.
    pub fn serve_publisher(args: &Args, spec: &str) -> Result<()> {
        use std::io::{BufRead, Write};
        let (n, w, h) = parse_publisher_spec(spec)?;
        let (rig, spec) = input_spec(n, w, h, args.points);
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "bench_publisher", "")?;
        let inputs = Inputs::new(&mut node, n)?;
        let mut frames = Frames::new(&rig, &spec, &args.encoding);
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            let k: usize = line.trim().parse().with_context(|| format!("publisher: `{line}` is not a frame number"))?;
            let stamp = frames.publish(&inputs, k)?;
            writeln!(out, "{stamp}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// The inter-process modes' publisher process, driven over its stdin and stdout.
    struct ChildPublisher {
        child: std::process::Child,
        /// None once closed (the child then ends).
        to: Option<std::process::ChildStdin>,
        from: std::io::BufReader<std::process::ChildStdout>,
    }

    impl ChildPublisher {
        fn spawn(args: &Args, n: usize, w: u32, h: u32) -> Result<Self> {
            use std::io::BufRead;
            let exe = std::env::current_exe()?;
            let mut child = std::process::Command::new(exe)
                .args(["bench", "node", "--publisher", &format!("{n}:{w}x{h}")])
                .args(["--encoding", &args.encoding, "--points", &args.points.to_string()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .context("starting the publisher process")?;
            let to = child.stdin.take().context("the publisher's stdin")?;
            let mut from = std::io::BufReader::new(child.stdout.take().context("the publisher's stdout")?);
            let mut line = String::new();
            from.read_line(&mut line).context("waiting for the publisher process")?;
            if line.trim() != "ready" {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the publisher process did not start (it said `{}`; its errors are above)", line.trim());
            }
            Ok(Self { child, to: Some(to), from })
        }

        fn publish(&mut self, k: usize) -> Result<i64> {
            use std::io::{BufRead, Write};
            let to = self.to.as_mut().context("the publisher process was closed")?;
            writeln!(to, "{k}").and_then(|_| to.flush()).context("the publisher process ended")?;
            let mut line = String::new();
            if self.from.read_line(&mut line).context("reading from the publisher process")? == 0 {
                bail!("the publisher process ended while publishing frame {k} (its errors are above)");
            }
            line.trim().parse().with_context(|| format!("the publisher process answered `{}`", line.trim()))
        }

        /// Its threads' CPU time (ms) so far.
        fn cpu_ms(&self) -> f64 {
            crate::cpu_time::threads_of(self.child.id()).values().map(|t| t.cpu_ms).sum()
        }
    }

    impl Drop for ChildPublisher {
        fn drop(&mut self) {
            // closing its stdin ends the child; one that does not end within 10 s is killed
            drop(self.to.take());
            let t = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) {
                if t.elapsed() > Duration::from_secs(10) {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Where the frames are published from.
    enum Sender {
        InProcess(Frames),
        Child(ChildPublisher),
    }

    impl Sender {
        fn publish(&mut self, peer: &Peer, k: usize) -> Result<i64> {
            match self {
                Sender::InProcess(frames) => frames.publish(peer.inputs.as_ref().expect("in-process inputs"), k),
                Sender::Child(child) => child.publish(k),
            }
        }

        fn cpu_ms(&self) -> Option<f64> {
            match self {
                Sender::InProcess(_) => None,
                Sender::Child(child) => Some(child.cpu_ms()),
            }
        }
    }

    fn params_for(
        rig: &[CameraCalib],
        model_path: &str,
        device: &str,
        fp16: bool,
        threads: usize,
    ) -> Result<NodeParams> {
        let mut s = format!(
            "/**:\n  ros__parameters:\n    model_path: \"{model_path}\"\n    device: \"{device}\"\n    fp16: {fp16}\n    \
             num_threads: {threads}\n    lidar_timeout: 0.0\n    cloud_capacity: 2000000\n    score_threshold: 0.05\n"
        );
        let names: Vec<_> = rig.iter().map(|c| format!("\"{}\"", c.name)).collect();
        s += &format!("    camera_names: [{}]\n    cameras:\n", names.join(", "));
        for c in rig {
            let m = c.cam_to_lidar.inverse().to_homogeneous();
            let v: Vec<String> = (0..16).map(|k| format!("{:?}", m[(k / 4, k % 4)])).collect();
            s += &format!("      {}:\n        lidar_to_camera: [{}]\n", c.name, v.join(", "));
        }
        s += "    qos:\n      input_reliability: reliable\n      input_depth: 10\n";
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("params.yaml");
        std::fs::write(&p, s)?;
        Ok(load_params(&[p], &[], "bevfusion_node", "/")?)
    }

    struct Job {
        label: String,
        model: Option<PathBuf>,
        /// What the user named (checkpoint, or model config with random weights).
        source: String,
    }
    use std::path::PathBuf;

    fn measure(args: &Args, job: &Job, follow_memory: bool) -> Result<ModelResult> {
        let opts =
            crate::pipeline::PipelineOptions { score_threshold: 0.05, cloud_capacity: 2_000_000, ..Default::default() };
        // the camera count and image size come from the model when there is one
        let (make, n_cams, model_size): (PipelineFactory, usize, [i64; 2]) = match &job.model {
            None => {
                let n = args.cameras;
                (Box::new(move || FramePipeline::new(Box::new(StandInNetwork::new(n)), opts)), n, [256, 704])
            }
            Some(path) => {
                let probe = crate::model::load::LoadedModel::from_checkpoint(path, tch::Device::Cpu)
                    .with_context(|| format!("reading {}", path.display()))?;
                let n = probe.cfg.camera.default_rig.num_cameras;
                let size = probe.cfg.camera.image_size;
                drop(probe);
                let (p, d, f, t) = (path.clone(), args.device.clone(), args.fp16, args.threads);
                (Box::new(move || crate::pipeline::loader::load_pipeline(&p, &d, f, t, opts)), n, size)
            }
        };
        let size = args.image_size.clone().unwrap_or_else(|| format!("{}x{}", model_size[1], model_size[0]));
        let (w, h) = parse_size(&size).with_context(|| format!("--image-size {size}: expected WIDTHxHEIGHT"))?;
        let (rig, spec) = input_spec(n_cams, w, h, args.points);
        let model_str = job.source.clone();
        let params = params_for(&rig, &model_str, &args.device, args.fp16, args.threads)?;
        let stop = Arc::new(AtomicBool::new(false));
        let node = {
            let stop = stop.clone();
            // the thread spins the node as bevfusion_node's main does, and has its name
            std::thread::Builder::new()
                .name("ros-spin".into())
                .spawn(move || crate::ros::node::run(params, make, stop))?
        };
        let result = (|| -> Result<ModelResult> {
            let mut frames = match args.delivery {
                super::Delivery::IntraProcess => Sender::InProcess(Frames::new(&rig, &spec, &args.encoding)),
                _ => Sender::Child(ChildPublisher::spawn(args, n_cams, w, h)?),
            };
            let in_process = matches!(frames, Sender::InProcess(_));
            let mut peer = Peer::new(in_process.then_some(n_cams), args.visualize)?;
            // discovery and warm start: frames until one comes back
            let t0 = Instant::now();
            let mut k = 0;
            loop {
                if node.is_finished() {
                    bail!("the node stopped while starting");
                }
                let s = frames.publish(&peer, k)?;
                k += 1;
                let _ = s;
                peer.pump_until(Instant::now() + Duration::from_millis(500));
                if !peer.got.is_empty() {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(600) {
                    bail!("the node did not answer within 600 s");
                }
            }
            // a few more frames to settle
            for _ in 0..5 {
                let s = frames.publish(&peer, k)?;
                k += 1;
                let t = Instant::now();
                while !peer.got.contains_key(&s) && t.elapsed() < Duration::from_secs(30) {
                    peer.pump_until(Instant::now() + Duration::from_millis(5));
                }
            }
            peer.got.clear();
            let dropped_before = peer_dropped(&peer);

            // latency at the input rate
            let period = Duration::from_secs_f64(1.0 / args.rate);
            let pb = crate::progress::bar(args.latency_frames as u64, &format!("{} @{}Hz", job.label, args.rate));
            let cpu_before = crate::cpu_time::process_threads();
            let publisher_before = frames.cpu_ms();
            let start = Instant::now();
            let mut stamps = Vec::with_capacity(args.latency_frames);
            for i in 0..args.latency_frames {
                peer.pump_until(start + period * i as u32);
                stamps.push(frames.publish(&peer, k)?);
                k += 1;
                pb.inc(1);
            }
            pb.finish_and_clear();
            // the CPU of the frames published, not of the wait for the last outputs (idle)
            let cpu_after = crate::cpu_time::process_threads();
            let publisher_after = frames.cpu_ms();
            peer.pump_until(Instant::now() + Duration::from_secs(3));
            let per_frame = 1.0 / stamps.len().max(1) as f64;
            let mut cpu_per_frame_ms: Vec<(String, f64)> =
                crate::cpu_time::cpu_between(&cpu_before, &cpu_after, thread_group)
                    .into_iter()
                    .map(|(g, v)| (g, v * per_frame))
                    .collect();
            if let (Some(a), Some(b)) = (publisher_before, publisher_after) {
                cpu_per_frame_ms.push((PUBLISHER_PROCESS.into(), (b - a) * per_frame));
            }
            let mut lat = Vec::new();
            let mut stage_sum = [0.0; StageTimings::COUNT];
            let (mut out_lat, mut out_proc, mut out_ms, mut net, mut before) = (0.0, 0.0, 0.0, 0.0, 0.0);
            let mut waiting = 0.0;
            let mut last: Option<&ProcessingTime> = None;
            for s in &stamps {
                if let Some(m) = peer.got.get(s) {
                    lat.push(m.pipeline_latency_ms);
                    let t = StageTimings::from_named(&m.stage_names, &m.stage_ms);
                    for (acc, v) in stage_sum.iter_mut().zip(t.as_array()) {
                        *acc += v;
                    }
                    net += t.network();
                    out_lat += (m.pipeline_latency_ms - t.network()).max(0.0) / m.pipeline_latency_ms.max(1e-9);
                    out_proc += t.outside_network() / t.total().max(1e-9);
                    out_ms += t.outside_network();
                    before += (m.pipeline_latency_ms - t.total()).max(0.0);
                    waiting += m.wait_ms;
                    last = Some(m);
                }
            }
            let n = lat.len().max(1) as f64;
            let latencies = lat.clone();
            lat.sort_by(f64::total_cmp);
            let dropped = last.map_or(0, |m| m.dropped_frames).saturating_sub(dropped_before);
            // the floor under `receive`, measured now that the node is idle
            let channels = PixelLayout::from_encoding(&args.encoding).expect("clap allows rgb8 and bgr8 only").channels();
            let mut input_sizes = vec![w as usize * h as usize * channels; n_cams];
            input_sizes.push(args.points * WRITTEN_POINT_STEP);
            let input_copy_ms = crate::bench::copy_floor::copy_ms(&input_sizes, 30);
            let mut r = ModelResult {
                label: job.label.clone(),
                network: model_str.clone(),
                device: args.device.clone(),
                cameras: n_cams,
                image_size: size.clone(),
                published: stamps.len(),
                processed: lat.len(),
                dropped,
                latency_p50_ms: percentile(&lat, 0.5),
                latency_p99_ms: percentile(&lat, 0.99),
                latency_mean_ms: lat.iter().sum::<f64>() / n,
                stage_mean_ms: stage_sum.iter().map(|v| v / n).collect(),
                network_mean_ms: net / n,
                outside_share_of_latency: out_lat / n,
                outside_share_of_processing: out_proc / n,
                outside_network_mean_ms: out_ms / n,
                outside_share_of_period: out_ms / n * args.rate / 1e3,
                before_processing_mean_ms: before / n,
                waiting_mean_ms: waiting / n,
                cpu_per_frame_ms,
                input_bytes: input_sizes.iter().sum(),
                input_copy_ms,
                latencies_ms: latencies,
                memory: None,
            };

            if follow_memory && args.memory_frames > 0 {
                peer.got.clear();
                let pb = crate::progress::bar(args.memory_frames as u64, &format!("{} memory", job.label));
                let mut samples = Vec::new();
                let mut missing = 0;
                for i in 0..args.memory_frames {
                    let s = frames.publish(&peer, k)?;
                    k += 1;
                    let t = Instant::now();
                    while !peer.got.contains_key(&s) {
                        if t.elapsed() > Duration::from_secs(30) {
                            missing += 1;
                            break;
                        }
                        peer.pump_until(Instant::now() + Duration::from_millis(1));
                    }
                    peer.got.remove(&s);
                    if i % 50 == 0 || i + 1 == args.memory_frames {
                        samples.push((i + 1, rss_mib()));
                    }
                    pb.inc(1);
                }
                pb.finish_and_clear();
                let half: Vec<_> = samples[samples.len() / 2..].to_vec();
                let mx = half.iter().map(|p| p.0 as f64).sum::<f64>() / half.len() as f64;
                let my = half.iter().map(|p| p.1).sum::<f64>() / half.len() as f64;
                let sxy: f64 = half.iter().map(|p| (p.0 as f64 - mx) * (p.1 - my)).sum();
                let sxx: f64 = half.iter().map(|p| (p.0 as f64 - mx).powi(2)).sum();
                r.memory = Some(MemoryResult {
                    frames: args.memory_frames,
                    missing,
                    start_mib: samples.first().map_or(0.0, |s| s.1),
                    end_mib: samples.last().map_or(0.0, |s| s.1),
                    slope_mib_per_1000: if sxx > 0.0 { 1000.0 * sxy / sxx } else { 0.0 },
                    rss_mib: samples,
                });
            }
            Ok(r)
        })();
        stop.store(true, Ordering::Relaxed);
        let node_result = node.join().map_err(|_| anyhow::anyhow!("node thread panicked"))?;
        let r = result?;
        node_result.context("the node")?;
        Ok(r)
    }

    /// The row of the inter-process modes' publisher process (all its threads) in the CPU table.
    pub const PUBLISHER_PROCESS: &str = "publisher process (other process, all its threads: not the node's)";

    /// The group a thread of this process belongs to, by its name: the node's spin thread
    /// (`ros-spin`: taking messages from DDS, checks, synchronisation), its inference thread
    /// (with the libtorch and rayon workers it started, which take its name), the DDS threads
    /// of this process's participants (the node's and the benchmark's), and the benchmark's
    /// main thread (which reads the outputs, and publishes the inputs when intra-process).
    pub fn thread_group(name: &str) -> String {
        match name {
            "ros-spin" => "node receiving (ros-spin)".into(),
            "inference" => "node inference (with its libtorch and rayon workers)".into(),
            "altermoma" => "benchmark main thread (reads the outputs; publishes the inputs when intra-process)".into(),
            n if n.starts_with("dds.") => "DDS threads (this process's participants)".into(),
            n => n.to_string(),
        }
    }

    fn peer_dropped(peer: &Peer) -> u64 {
        peer.got.values().map(|m| m.dropped_frames).max().unwrap_or(0)
    }

    pub fn run(mut args: Args) -> Result<()> {
        // first: Fast DDS reads its profile when the first participant is created
        args.delivery_note = super::configure_delivery(&args)?;
        let mut jobs = Vec::new();
        for m in &args.models {
            let (label, path) = m.split_once('=').with_context(|| format!("--model {m}: expected LABEL=PATH"))?;
            jobs.push(Job { label: label.to_string(), model: Some(PathBuf::from(path)), source: path.to_string() });
        }
        if args.stand_in {
            jobs.push(Job { label: "stand-in".into(), model: None, source: "stand-in network".into() });
        }
        if jobs.is_empty() {
            bail!("nothing to measure: give --model LABEL=PATH (repeatable) and/or --stand-in");
        }
        let tmp = tempfile::tempdir()?;
        for job in &mut jobs {
            let Some(path) = job.model.clone() else { continue };
            if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                let cfg = crate::model::ModelConfig::load(&path)?;
                tch::manual_seed(0);
                let m = crate::model::load::LoadedModel::new(&cfg, tch::Device::Cpu)?;
                let ck = tmp.path().join(format!("{}.safetensors", job.label));
                let mut meta = std::collections::BTreeMap::new();
                meta.insert("note".to_string(), format!("random weights of {}", path.display()));
                m.save(&ck, &meta)?;
                tracing::info!("{}: random weights of model config {}", job.label, path.display());
                job.source = format!("{} (random weights)", path.display());
                job.model = Some(ck);
            }
        }
        let mem_label = args.memory_model.clone().unwrap_or_else(|| jobs[0].label.clone());
        let mut results = Vec::new();
        for job in &jobs {
            tracing::info!("measuring {}", job.label);
            let r = measure(&args, job, job.label == mem_label)?;
            print_row(&r);
            results.push(r);
            // what is measured so far survives a later failure
            write_outputs(&args, &results)?;
        }
        let report = report(&args, &results);
        println!("\n{report}");
        println!("written to {}", args.out.display());
        Ok(())
    }

    fn write_outputs(args: &Args, results: &[ModelResult]) -> Result<()> {
        std::fs::create_dir_all(&args.out)?;
        crate::io::write_json(args.out.join("results.json"), &results)?;
        let series: Vec<_> = results
            .iter()
            .map(|r| {
                crate::plot::Series::new(
                    &r.label,
                    r.latencies_ms.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect(),
                )
            })
            .collect();
        crate::plot::line_chart(
            args.out.join("latency.png"),
            &format!("end-to-end latency at {} Hz", args.rate),
            "frame",
            "cloud stamp to publish (ms)",
            &series,
            false,
        )?;
        if let Some(m) = results.iter().find_map(|r| r.memory.as_ref().map(|m| (r.label.clone(), m))) {
            let s = crate::plot::Series::new(&m.0, m.1.rss_mib.iter().map(|(f, v)| (*f as f64, *v)).collect());
            crate::plot::line_chart(
                args.out.join("memory.png"),
                "resident memory",
                "frames",
                "RSS (MiB)",
                &[s],
                false,
            )?;
        }
        crate::io::atomic_write(args.out.join("report.md"), report(args, results).as_bytes())?;
        Ok(())
    }

    fn print_row(r: &ModelResult) {
        println!(
            "{:<16} p50 {:>8.1} ms  p99 {:>8.1} ms  network {:>7.1} ms  outside network {:>6.2} ms (receive {:.2}) = {:>5.1}% of latency, {:>5.1}% of processing, {:>5.1}% of the input period  before processing {:>6.2} ms (waiting {:.2})  dropped {}/{}",
            r.label,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.network_mean_ms,
            r.outside_network_mean_ms,
            r.stage_mean_ms.first().copied().unwrap_or(f64::NAN),
            100.0 * r.outside_share_of_latency,
            100.0 * r.outside_share_of_processing,
            100.0 * r.outside_share_of_period,
            r.before_processing_mean_ms,
            r.waiting_mean_ms,
            r.dropped,
            r.published
        );
    }

    fn report(args: &Args, results: &[ModelResult]) -> String {
        let mut s = format!(
            "# bevfusion_node benchmark\n\nInput: {} Hz, {} frames per model, raw {} cameras ({}), about {} points per cloud; device `{}`{}.\n\
             Subscribed outputs: detections, BEV segmentation{} (the node builds markers only while subscribed).\n\
             Latency = node publish time minus the cloud stamp (set when the cloud is published). \
             The stages include `receive`, the CPU time of the node's receiving thread (taking the messages from DDS, \
             checks, synchronisation, diagnostics) charged to the frame it hands over; \"outside network\" counts it. \
             \"Before processing\" = latency minus the sum of the node's stages: delivery of the inputs to the node \
             and waiting while it was busy with an earlier frame; \"waiting\" is the latter alone (`wait_ms`).\n\n\
             Delivery: {}.\n\n",
            args.rate,
            args.latency_frames,
            args.encoding,
            results.iter().map(|r| format!("{}: {} x {}", r.label, r.cameras, r.image_size)).collect::<Vec<_>>().join(", "),
            args.points,
            args.device,
            if args.fp16 { ", fp16" } else { "" },
            if args.visualize { ", RViz markers (`--visualize`)" } else { "" },
            args.delivery_note
        );
        s += "| model | processed / published | dropped | p50 ms | p99 ms | network ms | outside network ms | of latency | of processing | of the input period | before processing ms | of which waiting ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        for r in results {
            s += &format!(
                "| {} | {}/{} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1}% | {:.1}% | {:.1}% | {:.2} | {:.2} |\n",
                r.label,
                r.processed,
                r.published,
                r.dropped,
                r.latency_p50_ms,
                r.latency_p99_ms,
                r.network_mean_ms,
                r.outside_network_mean_ms,
                100.0 * r.outside_share_of_latency,
                100.0 * r.outside_share_of_processing,
                100.0 * r.outside_share_of_period,
                r.before_processing_mean_ms,
                r.waiting_mean_ms
            );
        }
        s += "\nMean stage times (ms):\n\n| model | ";
        s += &StageTimings::NAMES.join(" | ");
        s += " |\n|---|";
        s += &"---|".repeat(StageTimings::COUNT);
        s += "\n";
        for r in results {
            s += &format!("| {} | ", r.label);
            s += &r.stage_mean_ms.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" | ");
            s += " |\n";
        }
        s += "\nThe floor under `receive`: one plain copy of a frame's inputs (the images and the cloud as published), \
              median of 30, measured in this run after each model's latency run. The middleware copies every image and \
              cloud into the node once; `receive` is that copy plus the node's checks.\n\n\
              | model | input bytes a frame | one copy ms | of the input period | `receive` / one copy |\n|---|---:|---:|---:|---:|\n";
        for r in results {
            let receive = r.stage_mean_ms.first().copied().unwrap_or(f64::NAN);
            s += &format!(
                "| {} | {:.1} MB | {:.2} | {:.1}% | {:.1} |\n",
                r.label,
                r.input_bytes as f64 / 1e6,
                r.input_copy_ms,
                r.input_copy_ms * args.rate / 10.0,
                receive / r.input_copy_ms.max(1e-6)
            );
        }
        s += &format!(
            "\nCPU time per input frame by thread (ms; every thread of the node's process, {}; a thread waiting for \
             work is not charged):\n\n| model | threads | ms per frame | of the input period |\n|---|---|---:|---:|\n",
            if args.delivery == super::Delivery::IntraProcess {
                "where the benchmark also publishes the inputs"
            } else {
                "where the benchmark reads the outputs; the publisher process in a row of its own"
            }
        );
        for r in results {
            for (g, v) in &r.cpu_per_frame_ms {
                s += &format!("| {} | {} | {:.2} | {:.1}% |\n", r.label, g, v, v * args.rate / 10.0);
            }
        }
        for r in results {
            if let Some(m) = &r.memory {
                s += &format!(
                    "\nMemory ({}, {} frames back to back, {} missing): RSS {:.1} MiB after the first frames, {:.1} MiB at the end; \
                     slope over the second half {:+.3} MiB per 1000 frames.\n",
                    r.label, m.frames, m.missing, m.start_mib, m.end_mib, m.slope_mib_per_1000
                );
            }
        }
        s += "\nCharts: latency.png, memory.png.\n";
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(doc: &'a roxmltree::Document, tag: &str) -> Option<&'a str> {
        doc.descendants().find(|n| n.has_tag_name(tag)).and_then(|n| n.text())
    }

    /// The transport modes' profiles are well-formed Fast DDS XML that turn intra-process
    /// delivery off; the large-images one keeps the shipped profile's 32 MiB segment as the
    /// default participant profile.
    #[test]
    fn transport_profiles_turn_intra_process_delivery_off() {
        assert_eq!(delivery_profile(Delivery::IntraProcess), None);
        for d in [Delivery::InterProcess, Delivery::InterProcessLargeImages] {
            let xml = delivery_profile(d).unwrap();
            let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{d:?}: {e}"));
            assert!(doc.root_element().has_tag_name("dds"));
            assert_eq!(text(&doc, "intraprocess_delivery"), Some("OFF"), "{d:?}");
            let segment = text(&doc, "segment_size");
            assert_eq!(segment, (d == Delivery::InterProcessLargeImages).then_some("33554432"), "{d:?}");
        }
        let shipped = roxmltree::Document::parse(LARGE_IMAGES_PROFILE).unwrap();
        let participant = shipped.descendants().find(|n| n.has_tag_name("participant")).unwrap();
        assert_eq!(participant.attribute("is_default_profile"), Some("true"));
        assert_eq!(text(&shipped, "intraprocess_delivery"), None, "the shipped profile leaves composition alone");
    }

    #[cfg(feature = "ros")]
    #[test]
    fn the_publisher_spec_is_cameras_and_size() {
        assert_eq!(imp::parse_publisher_spec("6:1600x900").unwrap(), (6, 1600, 900));
        for bad in ["6", "6:1600", "x:1600x900", "6:1600x", "6:-1x900"] {
            let e = imp::parse_publisher_spec(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("CAMERAS:WIDTHxHEIGHT"), "{bad}: {e}");
        }
    }
}
