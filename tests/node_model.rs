//! The product end to end: the `bevfusion_node` binary with a real checkpoint (tiny config),
//! started with a parameter file as on a robot, fed synthetic frames over ROS 2 (inside the
//! network namespace); its detections and segmentation equal the per-frame pipeline's on the
//! same bytes, and it stops cleanly on SIGINT; fed dataset samples, its detections equal what
//! `altermoma infer` writes for the same samples.
#![cfg(feature = "ros")]

mod common;
mod node_peer;

use altermoma::model::load::LoadedModel;
use altermoma::model::ModelConfig;
use altermoma::pipeline::loader::load_pipeline;
use altermoma::pipeline::synthetic_input::{ring_rig, synthetic_input, SyntheticSpec};
use altermoma::pipeline::FrameInput;
use altermoma::ros::convert::stamp_to_ns;
use altermoma::ros::detections::msg_to_boxes;
use node_peer::*;
use std::collections::BTreeMap;
use std::time::Duration;

const FRAME: i64 = 100_000_000;

/// Start `bevfusion_node` with a parameter file, stderr to `log`.
fn spawn_node(params_file: &std::path::Path, log: &std::path::Path) -> common::StopOnDrop {
    let log = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bevfusion_node"))
        .args(["--ros-args", "--params-file"])
        .arg(params_file)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    common::StopOnDrop(child)
}

/// Run the `altermoma` CLI; panics with its output when it fails.
fn altermoma_cli(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_altermoma")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "altermoma {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Same boxes: labels and float32 scores exactly, geometry to float precision of the message.
fn assert_same_boxes(what: &str, got: &[altermoma::geometry::Box3D], want: &[altermoma::geometry::Box3D]) {
    assert_eq!(got.len(), want.len(), "{what}: number of detections");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.label, g.score as f32), (w.label, w.score as f32), "{what}");
        for i in 0..3 {
            assert!(
                (g.center[i] - w.center[i]).abs() < 1e-9 && (g.size[i] - w.size[i]).abs() < 1e-12,
                "{what}: {g:?} vs {w:?}"
            );
        }
        assert!((g.yaw - w.yaw).abs() < 1e-9, "{what}: {g:?} vs {w:?}");
        assert!((0..2).all(|i| (g.velocity[i] - w.velocity[i]).abs() < 1e-9), "{what}: {g:?} vs {w:?}");
    }
}

/// The must-show of the node: a dataset sample published over ROS 2 to the node binary gives
/// the detections `altermoma infer` writes for that sample (same checkpoint, same options), in
/// fusion and, with the cameras silent, in LiDAR-only mode; stamps and frame ids are the
/// sample's.
#[test]
fn node_detections_equal_altermoma_infer_on_the_same_frames() {
    if !common::ros_isolated("node_detections_equal_altermoma_infer_on_the_same_frames") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = ModelConfig::load(common::root().join("config/model/tiny.yaml")).unwrap();
    tch::manual_seed(5);
    let ck = d.join("tiny.safetensors");
    LoadedModel::new(&cfg, tch::Device::Cpu).unwrap().save(&ck, &BTreeMap::new()).unwrap();
    let data = d.join("data");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    altermoma_cli(&["gen-data", "--out", &s(&data), "--scenes", "1", "--frames-per-scene", "2", "--seed", "11"]);
    // `altermoma infer` on sample 0 (fusion) and sample 1 with the cameras masked
    let runs = [("0", "fusion"), ("1", "lidar")];
    let mut inferred = Vec::new();
    for (sample, modality) in runs {
        let out = d.join(format!("infer_{sample}"));
        altermoma_cli(&[
            "infer",
            "--model",
            &s(&ck),
            "--data",
            &s(&data),
            "--sample",
            sample,
            "--out",
            &s(&out),
            "--device",
            "cpu",
            "--threads",
            "2",
            "--modality",
            modality,
            "--frame-id",
            "LIDAR_TOP",
        ]);
        let text = std::fs::read_to_string(out.join("detections.json")).unwrap();
        let v: altermoma::cli::infer::InferOutput = serde_json::from_str(&text).unwrap();
        inferred.push(v);
    }
    assert_eq!(inferred[0].mode, "fusion");
    assert_eq!(inferred[1].mode, "lidar_only");
    assert!(!inferred[0].detections.is_empty(), "random tiny weights give detections above 0.1");

    // the node, configured for the dataset's rig, as on a robot
    let ds = altermoma::data::open_dataset(&data, None).unwrap();
    let frames: Vec<_> = (0..2).map(|i| FrameInput::from_frame(&ds.get(i).unwrap(), "LIDAR_TOP")).collect();
    let rig: Vec<_> = frames[0].cameras.iter().map(|c| c.as_ref().unwrap().calib.clone()).collect();
    let compressed: Vec<bool> = (0..rig.len()).map(|i| i == 2).collect(); // one PNG camera
    let extra = format!(
        "lidar_timeout: 0.0\nscore_threshold: 0.1\nnum_threads: 2\ndiagnostics_period: 0.1\nmodel_path: \"{}\"",
        ck.display()
    );
    let yaml = params_yaml(&rig, &compressed, &extra).replace("    model_path: \"stand-in\"\n", "");
    load(d, &yaml);
    let log_path = d.join("node.log");
    let mut node = spawn_node(&d.join("params.yaml"), &log_path);
    let child = &mut node.0;
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut peer = Peer::new(&compressed);

    // until the node is live and fuses: sample 0's sensor data stamped before the sample
    let t0 = frames[0].stamp_ns;
    let shifted = |f: &FrameInput, dt: i64| {
        let mut f = f.clone();
        f.stamp_ns += dt;
        f.cameras.iter_mut().flatten().for_each(|c| c.stamp_ns += dt);
        f
    };
    for k in 0.. {
        assert!(k < 120, "the node never produced a fused frame; its log:\n{}", log_text());
        assert!(child.try_wait().unwrap().is_none(), "the node exited; its log:\n{}", log_text());
        let f = shifted(&frames[0], (k - 150) * FRAME);
        peer.publish_infos(&f);
        peer.publish_frame(&f);
        peer.pump(Duration::from_millis(400));
        if peer.objects.iter().any(|o| o.mode == "fusion") {
            break;
        }
    }
    // sample 0 as recorded (the cloud once the node has every image: under load an image can
    // arrive after its cloud, and the node would then rightly mask that camera)
    peer.publish_frame_once_images_arrive(&frames[0], Duration::from_secs(60));
    let got = peer.objects_at(t0, Duration::from_secs(60));
    assert_eq!((got.header.frame_id.as_str(), got.mode.as_str()), ("LIDAR_TOP", "fusion"));
    assert_eq!(inferred[0].stamp_ns, t0);
    assert_same_boxes("sample 0, fusion", &msg_to_boxes(&got), &inferred[0].detections);
    // sample 1 (0.5 s later at 2 Hz): only the cloud, so every camera's newest image is too old
    peer.publish_cloud(&frames[1]);
    let got = peer.objects_at(frames[1].stamp_ns, Duration::from_secs(60));
    assert_eq!((got.header.frame_id.as_str(), got.mode.as_str()), ("LIDAR_TOP", "lidar_only"));
    assert_eq!(inferred[1].stamp_ns, frames[1].stamp_ns);
    assert_same_boxes("sample 1, LiDAR only", &msg_to_boxes(&got), &inferred[1].detections);

    let st = node.interrupt(Duration::from_secs(60));
    assert!(st.is_some_and(|st| st.success()), "exit status {st:?}; log:\n{}", log_text());
}

#[test]
fn node_binary_with_a_checkpoint_matches_the_pipeline() {
    if !common::ros_isolated("node_binary_with_a_checkpoint_matches_the_pipeline") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::load(common::root().join("config/model/tiny.yaml")).unwrap();
    tch::manual_seed(3);
    let ck = dir.path().join("tiny.safetensors");
    LoadedModel::new(&cfg, tch::Device::Cpu).unwrap().save(&ck, &BTreeMap::new()).unwrap();

    let n = cfg.camera.default_rig.num_cameras;
    let names: Vec<String> = (0..n).map(|i| format!("CAM_{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let [h, w] = cfg.camera.image_size;
    let spec = SyntheticSpec { image_width: w as u32, image_height: h as u32, ..Default::default() };
    let compressed: Vec<bool> = (0..n).map(|i| i == 1).collect(); // one PNG camera (lossless)
    let rig0 = ring_rig(&refs);
    let extra = format!(
        "lidar_timeout: 0.0\nscore_threshold: 0.1\nnum_threads: 2\ndiagnostics_period: 0.1\nmodel_path: \"{}\"",
        ck.display()
    );
    let yaml = params_yaml(&rig0, &compressed, &extra).replace("    model_path: \"stand-in\"\n", "");
    let params = load(dir.path(), &yaml);
    let rig = node_rig(&rig0, &params);

    let mut node = spawn_node(&dir.path().join("params.yaml"), &dir.path().join("node.log"));
    let child = &mut node.0;
    let mut reference = load_pipeline(&ck, "cpu", false, 2, params.pipeline_options()).unwrap();
    let mut peer = Peer::new(&compressed);
    let log_text = || std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();

    // until the node is live and fuses (model load, warm-up, discovery)
    let mut stamp = now_ns();
    for k in 0.. {
        assert!(k < 120, "the node never produced a fused frame; its log:\n{}", log_text());
        assert!(child.try_wait().unwrap().is_none(), "the node exited; its log:\n{}", log_text());
        stamp += FRAME;
        let f = synthetic_input(&spec, &rig, 0, stamp, "lidar_top");
        peer.publish_infos(&f);
        peer.publish_frame(&f);
        peer.pump(Duration::from_millis(400));
        if peer.objects.iter().any(|o| o.mode == "fusion") {
            break;
        }
    }
    for k in 1..=3u64 {
        // frame 3 comes 0.2 s later with camera 4 silent: its last image is too old, so the
        // node masks that slot (and the reference gets None there)
        stamp += if k == 3 { 2 * FRAME } else { FRAME };
        let mut f = synthetic_input(&spec, &rig, k, stamp, "lidar_top");
        if k == 3 {
            f.cameras[4] = None;
        }
        peer.publish_frame_once_images_arrive(&f, Duration::from_secs(60));
        let got = peer.objects_at(stamp, Duration::from_secs(60));
        let want = reference.run(&f).unwrap();
        assert_eq!(got.header.frame_id, "lidar_top");
        assert_eq!(got.mode, "fusion");
        let boxes = msg_to_boxes(&got);
        assert!(!want.detections.is_empty(), "random tiny weights give detections above 0.1");
        assert_eq!(boxes.len(), want.detections.len(), "frame {k}");
        for (g, w) in boxes.iter().zip(&want.detections) {
            assert_eq!((g.label, g.score as f32), (w.label, w.score as f32));
            for i in 0..3 {
                assert!(
                    (g.center[i] - w.center[i]).abs() < 1e-9 && (g.size[i] - w.size[i]).abs() < 1e-12,
                    "frame {k}: {g:?} vs {w:?}"
                );
            }
            assert!((g.yaw - w.yaw).abs() < 1e-9);
        }
        let seg = peer.wait("segmentation", Duration::from_secs(30), |p| {
            p.seg.iter().find(|s| stamp_to_ns(&s.header.stamp) == stamp).cloned()
        });
        let q: Vec<u8> =
            want.segmentation.unwrap().probs.iter().map(|p| (p.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        assert!(seg.data == q, "segmentation of frame {k} differs");
    }
    // a clean stop on SIGINT, as ros2 launch sends it
    let st = node.interrupt(Duration::from_secs(60));
    assert!(st.is_some_and(|st| st.success()), "exit status {st:?}; log:\n{}", log_text());
    let log = log_text();
    assert!(log.contains("live on cpu") && log.contains("tiny (dense"), "{log}");
}
