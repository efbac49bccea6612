//! The replay loop with a stand-in processor (ground truth echoed as detections) over bags
//! written by the scene writer: frames, ground truth matching, drops in realtime mode,
//! recording, report files, skipped topics and damaged bags.

use super::*;
use crate::bag::frames::{frame_from_ground_truth, GROUND_TRUTH_TOPIC, LIDAR_TOPIC};
use crate::bag::mcap::ChunkCompression;
use crate::bag::messages::Decoded;
use crate::bag::scene_writer::{write_scene_bag, ImageFormat, SceneBagOptions};
use crate::bag::{Bag, StorageKind};
use crate::data::{Annotation, BevMap, CameraCalib, CameraFrame, Frame, Points};
use crate::geometry::{BevGrid, Box3D};
use nalgebra::{Isometry3, Matrix3, Vector3};
use r2r::altermoma_msgs::msg::Detection3DArray;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn calib(name: &str) -> CameraCalib {
    CameraCalib {
        name: name.into(),
        width: 32,
        height: 16,
        intrinsics: Matrix3::new(20.0, 0.0, 16.0, 0.0, 20.0, 8.0, 0.0, 0.0, 1.0),
        cam_to_lidar: Isometry3::new(Vector3::new(0.5, 0.0, -0.3), Vector3::new(-1.5, 0.0, -1.5)),
    }
}

/// Frame `i` of scene `i / per_scene`, 10 Hz within a scene, every scene starting at the
/// same clock (as a simulator does).
fn frame(i: usize, per_scene: usize) -> Frame {
    let t = 1_600_000_000_000_000 + (i % per_scene) as i64 * 100_000;
    let grid = BevGrid { x_min: -4.0, x_max: 4.0, y_min: -2.0, y_max: 2.0, resolution: 0.5 };
    Frame {
        token: format!("sample-{i}"),
        scene_token: format!("scene-{}", i / per_scene),
        timestamp_us: t,
        lidar_to_ego: Isometry3::identity(),
        ego_to_global: Isometry3::new(Vector3::new(i as f64, 0.0, 0.0), Vector3::zeros()),
        points: Some(Points { data: (0..50 * 5).map(|k| ((k * 7 + i) % 23) as f32 - 11.0).collect() }),
        cameras: ["CAM_FRONT", "CAM_BACK"]
            .iter()
            .enumerate()
            .map(|(k, n)| CameraFrame {
                calib: calib(n),
                image: Some(crate::data::share(image::RgbImage::from_fn(32, 16, |x, y| image::Rgb([x as u8, y as u8, (i + k) as u8])))),
                timestamp_us: t + 5_000 * k as i64,
            })
            .collect(),
        annotations: (0..1 + i % 3)
            .map(|k| Annotation {
                bbox: Box3D {
                    center: [5.0 + k as f64, 1.0, 0.5],
                    size: [1.8, 4.2, 1.5],
                    yaw: 0.3,
                    velocity: [1.0, 0.0],
                    label: 0,
                    score: 1.0,
                },
                instance_token: format!("inst-{k}"),
                num_lidar_pts: 12,
                attribute: "vehicle.moving".into(),
                visibility: 4,
            })
            .collect(),
        map: Some(BevMap { grid, data: (0..6 * 16 * 8).map(|k| (k % 5 == 0) as u8).collect() }),
    }
}

fn scene_bag(dir: &Path, frames: usize, per_scene: usize) -> PathBuf {
    let p = dir.join("scenes");
    let opts = SceneBagOptions {
        storage: StorageKind::Mcap { compression: ChunkCompression::Zstd, chunk_size: 16 << 10 },
        ..Default::default()
    };
    let r = write_scene_bag(
        (0..frames).map(|i| Ok(frame(i, per_scene))),
        frames,
        &[calib("CAM_FRONT"), calib("CAM_BACK")],
        &p,
        &opts,
    )
    .unwrap();
    assert_eq!(r.frames, frames);
    p
}

/// Echoes each frame's ground truth as its detections, after sleeping `work`.
struct Oracle {
    gt: HashMap<i64, (Vec<Box3D>, Option<Vec<f32>>)>,
    images: usize,
    work: Duration,
}

impl FrameProcessor for Oracle {
    type Job = i64;
    fn on_message(&mut self, topic: &str, msg: &Decoded, _now: Instant) -> Fed<i64> {
        match msg {
            Decoded::FrameGroundTruth(g) => {
                let f = frame_from_ground_truth(g).unwrap();
                let seg = f.map.as_ref().map(|m| m.data.iter().map(|&v| v as f32).collect());
                self.gt.insert(f.timestamp_us * 1000, (f.annotations.iter().map(|a| a.bbox.clone()).collect(), seg));
                Fed::Taken
            }
            Decoded::Image(_) => {
                self.images += 1;
                Fed::Taken
            }
            Decoded::PointCloud2(c) if topic == LIDAR_TOPIC => {
                Fed::Frame(crate::ros::convert::stamp_to_ns(&c.header.stamp))
            }
            Decoded::PointCloud2(_) => Fed::Rejected("cloud on an unexpected topic".into()),
            _ => Fed::Ignored,
        }
    }
    fn job_stamp(job: &i64) -> i64 {
        *job
    }
    fn process(&mut self, job: i64) -> anyhow::Result<ProcessedFrame> {
        std::thread::sleep(self.work);
        // The scene writer puts a frame's truth before its cloud.
        let (boxes, seg_probs) = self.gt.get(&job).cloned().expect("ground truth before the cloud");
        let stages = crate::pipeline::StageTimings {
            heads: self.work.as_secs_f64() * 1e3,
            decode: 0.1,
            ..Default::default()
        }
        .as_array();
        Ok(ProcessedFrame {
            stamp_ns: job,
            frame_id: "lidar_top".into(),
            mode: "fusion".into(),
            objects: Detection3DArray {
                header: crate::ros::convert::header(job, "lidar_top"),
                mode: "fusion".into(),
                detections: vec![Default::default(); boxes.len()],
            },
            boxes,
            segmentation: None,
            seg_probs,
            stages_ms: stages,
            masked_cameras: Vec::new(),
            warnings: Vec::new(),
        })
    }
    fn describe(&self) -> String {
        "oracle".into()
    }
}

fn oracle(work_ms: u64) -> Oracle {
    Oracle { gt: HashMap::new(), images: 0, work: Duration::from_millis(work_ms) }
}

#[test]
fn as_fast_replay_runs_every_frame_and_matches_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    // Two scenes on the same clock: the writer shifts the second to continue the recording.
    let bag = scene_bag(dir.path(), 12, 6);
    let b = Bag::open(&bag).unwrap();
    let mut p = oracle(0);
    let rec = dir.path().join("outputs");
    let run = replay(&b, &mut p, &ReplayOptions { record: Some(rec.clone()), progress: false, ..Default::default() })
        .unwrap();
    assert_eq!(run.frames.len(), 12);
    assert_eq!(run.dropped, 0);
    assert_eq!(run.ground_truth.len(), 12);
    assert_eq!(p.images, 24);
    let tokens: Vec<_> = run.frames.iter().map(|f| f.sample_token.clone().unwrap()).collect();
    assert_eq!(tokens, (0..12).map(|i| format!("sample-{i}")).collect::<Vec<_>>());
    // Recorded times increase across the scene boundary.
    assert!(run.frames.windows(2).all(|w| w[1].stamp_ns > w[0].stamp_ns));
    assert!(run.issues.is_empty() && run.skipped_topics.is_empty(), "{:?}", run.issues);
    // Ground truth survived the bag: boxes of frame 5 as written.
    let g5 = run.ground_truth.iter().find(|f| f.token == "sample-5").unwrap();
    assert_eq!(g5.annotations.len(), 3);
    assert_eq!(g5.map, frame(5, 6).map);
    // The recorded outputs: one objects and one timing message per frame.
    let r = Bag::open(&rec).unwrap();
    let counts: HashMap<String, u64> = r.topics().into_iter().map(|t| (t.name, t.message_count.unwrap())).collect();
    assert_eq!(counts["/replay/objects"], 12);
    assert_eq!(counts["/replay/processing_time"], 12);
    // Report files.
    let stats = LatencyStats::of(&run);
    assert_eq!(stats.frames, 12);
    let out = dir.path().join("report");
    report::write_report(&out, &bag, &run, &stats, None, false).unwrap();
    for f in report::REPORT_FILES {
        assert!(out.join(f).exists(), "{f}");
    }
    assert!(image::open(out.join("latency_hist.png")).unwrap().width() > 100);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("frames run: 12, dropped: 0"), "{md}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("latency.json")).unwrap()).unwrap();
    assert_eq!(j["frames"].as_array().unwrap().len(), 12);
    assert_eq!(j["summary"]["stages"][5][1]["count"], 12);
    // Perfect detections and maps score perfectly against the bag's truth.
    let cfg = crate::metrics::DetectionConfig::cvpr_2019();
    let e = evaluation::evaluate(&run, &cfg).unwrap().expect("ground truth present");
    let m = e.detection.as_ref().unwrap();
    assert!((m.label_ap("car", 2.0).unwrap() - 1.0).abs() < 1e-9);
    let seg = e.segmentation.as_ref().unwrap();
    assert_eq!(seg.samples, 12);
    assert!(seg.iou_max.iter().all(|v| (*v - 1.0).abs() < 1e-6), "{:?}", seg.iou_max);
    assert_eq!(e.unmatched_ground_truth, 0);
    e.write(&out).unwrap();
    let results = crate::metrics::DetectionResults::load(out.join("detections.json")).unwrap();
    assert_eq!(results.samples.len(), 12);
    assert_eq!(results.num_boxes(), (0..12).map(|i| 1 + i % 3).sum::<usize>());
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["mean_ap"].as_f64().unwrap() > 0.0 && metrics["bev_map_segmentation"]["samples"] == 12);
}

#[test]
fn realtime_replay_drops_older_frames_when_the_pipeline_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let bag = scene_bag(dir.path(), 10, 10);
    let b = Bag::open(&bag).unwrap();
    // Each frame takes 250 ms while clouds come every 100 ms: a busy pipeline must drop.
    let mut p = oracle(250);
    let run = replay(&b, &mut p, &ReplayOptions { realtime: true, progress: false, ..Default::default() }).unwrap();
    assert!(run.dropped > 0, "no frame dropped");
    assert_eq!(run.frames.len() as u64 + run.dropped, 10);
    // The newest cloud is never the one dropped.
    assert_eq!(run.frames.last().unwrap().sample_token.as_deref(), Some("sample-9"));
}

#[test]
fn unknown_topics_are_skipped_with_a_note_and_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bag = scene_bag(dir.path(), 8, 8);
    // Add a topic of a type nobody decodes by rewriting the bag with an extra topic.
    let src = Bag::open(&bag).unwrap();
    let dst_path = dir.path().join("with_unknown");
    let mut w = crate::bag::BagWriter::create(
        &dst_path,
        StorageKind::Mcap { compression: ChunkCompression::None, chunk_size: 8 << 10 },
    )
    .unwrap();
    let mut ids = HashMap::new();
    for t in src.topics() {
        ids.insert(t.name.clone(), w.add_topic(&t.name, &t.type_name, t.latched).unwrap());
    }
    let extra = w.add_topic("/diagnostics_raw", "diagnostic_msgs/msg/DiagnosticArray", false).unwrap();
    src.messages(|m, t| {
        w.write_raw(ids[&t.name], m.log_time, m.data).unwrap();
        if t.name == GROUND_TRUTH_TOPIC {
            w.write_raw(extra, m.log_time, &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap();
        }
        Ok(true)
    })
    .unwrap();
    w.finish().unwrap();
    // Cut the storage file in its second half.
    let f = std::fs::read_dir(&dst_path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "mcap"))
        .unwrap();
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let b = Bag::open(&dst_path).unwrap();
    let run = replay(&b, &mut oracle(0), &ReplayOptions { progress: false, ..Default::default() }).unwrap();
    assert!(!run.frames.is_empty() && run.frames.len() < 8, "{}", run.frames.len());
    let (ty, n) = &run.skipped_topics["/diagnostics_raw"];
    assert_eq!(ty, "diagnostic_msgs/msg/DiagnosticArray");
    assert!(*n >= 1);
    let issue = run.issues.iter().find(|i| i.message.contains("truncated")).expect("the cut is reported");
    assert_eq!(issue.file, f);
    assert!(issue.offset.is_some());
    let stats = LatencyStats::of(&run);
    let out = dir.path().join("report");
    report::write_report(&out, &dst_path, &run, &stats, None, false).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("skipped topic `/diagnostics_raw`")
            && md.contains("bag damage:")
            && md.contains(&f.display().to_string()),
        "{md}"
    );
}

#[test]
fn two_pipelines_see_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let bag = scene_bag(dir.path(), 6, 6);
    let b = Bag::open(&bag).unwrap();
    let mut ps = [oracle(1), oracle(2)];
    let runs = replay_many(&b, &mut ps, &ReplayOptions { progress: false, ..Default::default() }).unwrap();
    assert_eq!(runs.len(), 2);
    let s0: Vec<i64> = runs[0].frames.iter().map(|f| f.stamp_ns).collect();
    let s1: Vec<i64> = runs[1].frames.iter().map(|f| f.stamp_ns).collect();
    assert_eq!(s0.len(), 6);
    assert_eq!(s0, s1);
    let l0 = LatencyStats::of(&runs[0]);
    let l1 = LatencyStats::of(&runs[1]);
    let heads = |l: &LatencyStats| l.stages.iter().find(|(n, _)| n == "heads").map(|s| s.1.p50).unwrap();
    assert!(heads(&l1) > heads(&l0));
    assert!(replay_many(&b, &mut ps, &ReplayOptions { realtime: true, progress: false, ..Default::default() }).is_err());
    let _ = ImageFormat::Raw;
}

#[test]
fn scene_writer_keeps_the_rate_and_cuts_pauses_between_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Frame> = (0..9)
        .map(|i| {
            let mut f = frame(i, 3);
            // Scenes recorded an hour apart, as the synthetic world stamps them.
            let hour = 3_600_000_000 * (i / 3) as i64;
            f.timestamp_us += hour;
            f.cameras.iter_mut().for_each(|c| c.timestamp_us += hour);
            f
        })
        .collect();
    let p = dir.path().join("b");
    let r = write_scene_bag(frames.into_iter().map(Ok), 9, &[calib("CAM_FRONT"), calib("CAM_BACK")], &p, &SceneBagOptions::default())
        .unwrap();
    assert_eq!(r.time_shifts_s.len(), 2, "{:?}", r.time_shifts_s);
    assert!((r.lidar_hz - 10.0).abs() < 1e-9, "{}", r.lidar_hz);
    assert!(r.duration_s < 1.0, "{}", r.duration_s);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::metadata(p.join("metadata.yaml")).unwrap().permissions().mode() & 0o777, 0o644);
    }
    // The ground truth carries the shifted stamps: replay still pairs every frame.
    let run = replay(&Bag::open(&p).unwrap(), &mut oracle(0), &ReplayOptions { progress: false, ..Default::default() }).unwrap();
    assert_eq!(run.frames.iter().filter(|f| f.sample_token.is_some()).count(), 9);
}
