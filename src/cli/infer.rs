//! `altermoma infer`: one dataset sample through the per-frame pipeline the ROS node and bag
//! replay run (dataset frame -> [`FrameInput`] -> [`crate::pipeline::FramePipeline`]), written
//! as a nuScenes results file, the LiDAR-frame detections with timings, and a PNG.

use crate::data::Annotation;
use crate::metrics::{DetectionResults, ResultsMeta, SampleResults};
use crate::model::ModalityMask;
use crate::pipeline::loader::load_pipeline;
use crate::pipeline::{FrameInput, PipelineOptions, StageTimings};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which sensors the frame keeps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    Fusion,
    Lidar,
    Camera,
}

/// Options of `altermoma infer`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint (dense, masked or structured-pruned).
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset folder (nuScenes or KITTI layout).
    #[arg(long)]
    pub data: PathBuf,
    /// nuScenes version folder when the dataset has several (e.g. v1.0-mini).
    #[arg(long)]
    pub version: Option<String>,
    /// Sample index (0-based) or sample token.
    #[arg(long)]
    pub sample: String,
    /// Output folder (results.json, detections.json, detections.png).
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Half precision on CUDA.
    #[arg(long)]
    pub fp16: bool,
    /// libtorch CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[arg(long, default_value_t = 0.1)]
    pub score_threshold: f64,
    #[arg(long, default_value_t = 200)]
    pub max_detections: usize,
    /// Sensors used: fusion, lidar (cameras masked) or camera (LiDAR masked).
    #[arg(long, value_enum, default_value_t = Modality::Fusion)]
    pub modality: Modality,
    /// Frame id recorded with the LiDAR-frame detections.
    #[arg(long, default_value = "LIDAR_TOP")]
    pub frame_id: String,
}

/// `detections.json`: what the pipeline produced, in the LiDAR frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InferOutput {
    pub sample_token: String,
    pub stamp_ns: i64,
    pub frame_id: String,
    pub mode: String,
    pub masked_cameras: Vec<String>,
    pub model: String,
    pub device: String,
    pub timings_ms: StageTimings,
    pub warnings: Vec<String>,
    pub detections: Vec<crate::geometry::Box3D>,
}

pub fn run(args: Args) -> Result<()> {
    let ds = crate::data::open_dataset(&args.data, args.version.as_deref())
        .with_context(|| format!("opening dataset {}", args.data.display()))?;
    let index = match args.sample.parse::<usize>() {
        Ok(i) if i < ds.len() => i,
        Ok(i) => bail!("--sample {i}: the dataset has {} samples (0..{})", ds.len(), ds.len()),
        Err(_) => (0..ds.len())
            .find(|&i| ds.token(i) == args.sample)
            .with_context(|| format!("--sample {}: no sample with that token", args.sample))?,
    };
    let t0 = std::time::Instant::now();
    let frame = ds.get(index).with_context(|| format!("reading sample {index}"))?;
    let mut input = FrameInput::from_frame(&frame, &args.frame_id);
    match args.modality {
        Modality::Fusion => {}
        Modality::Lidar => input.cameras.iter_mut().for_each(|c| *c = None),
        Modality::Camera => input.points = None,
    }
    let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
    let opts = PipelineOptions {
        score_threshold: args.score_threshold as f32,
        max_detections: args.max_detections,
        cloud_capacity: usize::MAX,
        ..Default::default()
    };
    let mut pipeline = load_pipeline(&args.model, &args.device, args.fp16, args.threads, opts)?;
    let mut out = pipeline.run(&input)?;
    out.timings.decode = decode_ms;
    for w in &out.warnings {
        tracing::warn!("{w}");
    }

    let mode: ModalityMask = out.mode;
    let meta = ResultsMeta { use_camera: mode.camera, use_lidar: mode.lidar, ..Default::default() };
    let mut results = DetectionResults::new(meta);
    results.samples.push(SampleResults::from_frame(&frame, &out.detections, 500));
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    results.save(args.out.join("results.json"))?;
    let info = pipeline.info();
    let record = InferOutput {
        sample_token: frame.token.clone(),
        stamp_ns: out.stamp_ns,
        frame_id: out.frame_id.clone(),
        mode: mode.name().to_string(),
        masked_cameras: out.masked_cameras.clone(),
        model: info.name.clone(),
        device: info.device.clone(),
        timings_ms: out.timings,
        warnings: out.warnings.clone(),
        detections: out.detections.clone(),
    };
    crate::io::write_json(args.out.join("detections.json"), &record)?;
    // the montage draws a frame's annotations: draw the detections instead
    let mut shown = frame.clone();
    shown.annotations = out
        .detections
        .iter()
        .map(|b| Annotation {
            bbox: b.clone(),
            instance_token: String::new(),
            num_lidar_pts: 0,
            attribute: crate::metrics::detection_box::default_attribute(b.label, b.velocity)
                .map_or(String::new(), |i| crate::metrics::detection_box::ATTRIBUTE_NAMES[i].to_string()),
            visibility: 4,
        })
        .collect();
    crate::data::render::save_montage(&shown, args.out.join("detections.png"), &Default::default())?;
    println!(
        "sample {index} ({}): {} detections ({}), {:.1} ms in the network, written to {}",
        frame.token,
        out.detections.len(),
        mode.name(),
        out.timings.network(),
        args.out.display()
    );
    Ok(())
}
