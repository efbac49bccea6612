//! End to end (issue #8): a synthetic nuScenes-layout dataset (`altermoma gen-data`) turned
//! into a bag (`altermoma gen-bag --from`), replayed with a real checkpoint (tiny config,
//! fixed seed) by `altermoma replay`, gives the same detections and the same metrics as the
//! per-frame pipeline run offline on the dataset's frames and scored by `altermoma eval`
//! against the dataset's own tables.
#![cfg(feature = "ros")]

mod common;

use altermoma::bag::frames::{camera_image_topic, camera_info_topic, CALIBRATION_TOPIC, LIDAR_TOPIC};
use altermoma::bag::messages::{decode, Decoded};
use altermoma::checkpoint::Checkpoint;
use altermoma::metrics::{DetectionResults, ResultsMeta, SampleResults};
use altermoma::model::load::LoadedModel;
use altermoma::model::ModelConfig;
use altermoma::pipeline::loader::load_pipeline;
use altermoma::pipeline::{FrameInput, PipelineOptions};
use altermoma::replay::node_processor::bag_camera_names;
use altermoma::ros::convert::stamp_to_ns;
use altermoma::ros::detections::msg_to_boxes;
use futures::{FutureExt, StreamExt};
use r2r::altermoma_msgs::msg::Detection3DArray;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn altermoma(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_altermoma")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "altermoma {}:\n{text}", args.join(" "));
    text
}

/// Every number of `a` equals `b`'s within `tol` (keys in `skip` ignored at any depth).
fn same_numbers(a: &Value, b: &Value, path: &str, tol: f64, skip: &[&str]) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().filter(|k| !skip.contains(&k.as_str())).collect();
            let ky: Vec<_> = y.keys().filter(|k| !skip.contains(&k.as_str())).collect();
            assert_eq!(kx, ky, "{path}: keys differ");
            for k in kx {
                same_numbers(&x[k], &y[k], &format!("{path}.{k}"), tol, skip);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                same_numbers(p, q, &format!("{path}[{i}]"), tol, skip);
            }
        }
        (Value::Number(p), Value::Number(q)) => {
            let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
            assert!((p - q).abs() <= tol * (1.0 + q.abs()), "{path}: replay {p} vs eval {q}");
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn gen_bag_replay_gives_the_metrics_of_offline_eval() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    // Two scenes (the bag cuts the pause between them), three key frames each.
    altermoma(&["gen-data", "--out", &d("data"), "--scenes", "2", "--frames-per-scene", "3", "--seed", "5"]);
    altermoma(&["gen-bag", "--from", &d("data"), "--out", &d("bag")]);

    let cfg = ModelConfig::load(common::root().join("config/model/tiny.yaml")).unwrap();
    tch::manual_seed(11);
    let ck = dir.path().join("tiny.safetensors");
    LoadedModel::new(&cfg, tch::Device::Cpu).unwrap().save(&ck, &BTreeMap::new()).unwrap();

    // `altermoma replay` of the bag on the CPU into `out`, with `extra` arguments
    let replay = |out: &str, extra: &[&str]| {
        let (bag, model, out) = (d("bag"), ck.to_string_lossy().into_owned(), d(out));
        let mut args = vec!["replay", "--bag", &bag, "--model", &model, "--param", "num_threads=2"];
        args.extend(["--param", "device=cpu", "--out", &out, "--quiet"]);
        args.extend(extra);
        let text = altermoma(&args);
        assert!(text.contains("6 frames (0 dropped)"), "{text}");
    };
    replay("replay", &["--record", &d("outputs")]);

    // Offline: the dataset's frames through the same pipeline, scored by `altermoma eval`.
    let data = altermoma::data::open_dataset(&dir.path().join("data"), None).unwrap();
    assert_eq!(data.len(), 6);
    let mut pipe = load_pipeline(&ck, "cpu", false, 2, PipelineOptions::default()).unwrap();
    let mut results = DetectionResults::new(ResultsMeta::camera_lidar());
    let (mut seg_pred, mut seg_gt) = (Checkpoint::new(), Checkpoint::new());
    for i in 0..data.len() {
        let f = data.get(i).unwrap();
        let out = pipe.run(&FrameInput::from_frame(&f, "lidar_top")).unwrap();
        assert_eq!(out.mode.name(), "fusion", "frame {i}: every camera and the LiDAR are present");
        results.samples.push(SampleResults::from_frame(&f, &out.detections, 500));
        let (s, m) = (out.segmentation.unwrap(), f.map.as_ref().unwrap());
        let (nx, ny) = (m.grid.nx() as i64, m.grid.ny() as i64);
        seg_pred.tensors.insert(f.token.clone(), tch::Tensor::from_slice(&s.probs).view([-1, nx, ny]));
        seg_gt.tensors.insert(f.token.clone(), tch::Tensor::from_slice(&m.data).view([-1, nx, ny]));
    }
    assert!(results.num_boxes() > 0, "the model detects something, so the comparison compares boxes");
    results.save(dir.path().join("predictions.json")).unwrap();
    seg_pred.save(dir.path().join("seg_pred.safetensors")).unwrap();
    seg_gt.save(dir.path().join("seg_gt.safetensors")).unwrap();
    altermoma(&[
        "eval",
        "--predictions",
        &d("predictions.json"),
        "--dataroot",
        &d("data"),
        "--version",
        "v1.0-synthetic",
        "--seg-predictions",
        &d("seg_pred.safetensors"),
        "--seg-gt",
        &d("seg_gt.safetensors"),
        "--out",
        &d("eval"),
        "--no-plots",
    ]);

    // Same detections (global boxes, per sample), same metrics.
    let ours = read_json(&dir.path().join("replay/detections.json"));
    let theirs = read_json(&dir.path().join("predictions.json"));
    same_numbers(&ours["results"], &theirs["results"], "results", 1e-5, &[]);
    let (m_r, m_e) =
        (read_json(&dir.path().join("replay/metrics.json")), read_json(&dir.path().join("eval/metrics.json")));
    same_numbers(&m_r, &m_e, "metrics", 1e-6, &["eval_time", "meta"]);
    assert!(m_r["bev_map_segmentation"]["miou"].as_f64().is_some(), "{m_r}");
    assert!(m_r["nd_score"].as_f64().is_some(), "{m_r}");

    // gen-bag writes the extrinsics twice: the rig calibration and the vehicle's /tf_static
    // tree (base_link -> lidar_top, base_link -> each camera). Taken from /tf_static alone,
    // every frame is fused and the detections are the same.
    replay("replay_tf", &["--param", "extrinsics_source=tf_static"]);
    let via_tf = read_json(&dir.path().join("replay_tf/detections.json"));
    same_numbers(&via_tf["results"], &theirs["results"], "results via /tf_static", 1e-5, &[]);

    // The report and the recorded outputs are there.
    for f in ["report.md", "latency.json", "latency_hist.png", "latency_timeline.png", "metrics.md"] {
        assert!(dir.path().join("replay").join(f).is_file(), "replay/{f} missing");
    }
    // Every frame has the node's stages, `receive` (taking the messages) first.
    let lat = read_json(&dir.path().join("replay/latency.json"));
    let frames = lat["frames"].as_array().expect("frames");
    assert_eq!(frames.len(), 6);
    for f in frames {
        let st = f["stages_ms"].as_object().expect("stages_ms");
        let names: Vec<&str> = st.keys().map(String::as_str).collect();
        for n in ["receive", "decode", "voxelize", "camera", "lidar", "fuse", "heads", "postprocess", "publish"] {
            assert!(names.contains(&n), "stage {n} missing: {names:?}");
        }
        // the images are taken (copied out of the bag's messages) before each cloud
        let receive = st["receive"].as_f64().unwrap();
        assert!(receive > 0.0 && receive < 10_000.0, "receive {receive} ms");
    }
    let rec = altermoma::bag::Bag::open(dir.path().join("outputs")).unwrap();
    let counts: BTreeMap<String, u64> =
        rec.topics().into_iter().map(|t| (t.name, t.message_count.unwrap_or(0))).collect();
    assert_eq!(counts.get("/replay/objects"), Some(&6), "{counts:?}");
}

/// Objects messages of a bag's topic, by stamp.
fn objects_by_stamp(bag: &Path, topic: &str) -> BTreeMap<i64, Detection3DArray> {
    let bag = altermoma::bag::Bag::open(bag).unwrap();
    let mut out = BTreeMap::new();
    bag.messages(|m, t| {
        if t.name == topic {
            if let Some(Decoded::Detection3DArray(d)) = decode(&t.type_name, m.data).unwrap() {
                out.insert(stamp_to_ns(&d.header.stamp), d);
            }
        }
        Ok(true)
    })
    .unwrap();
    out
}

#[test]
fn play_to_the_live_node_gives_replays_detections() {
    if !common::ros_isolated("play_to_the_live_node_gives_replays_detections") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    altermoma(&["gen-data", "--out", &d("data"), "--scenes", "1", "--frames-per-scene", "5", "--seed", "8"]);
    altermoma(&["gen-bag", "--from", &d("data"), "--out", &d("bag")]);
    let cfg = ModelConfig::load(common::root().join("config/model/tiny.yaml")).unwrap();
    tch::manual_seed(12);
    let ck = dir.path().join("tiny.safetensors");
    LoadedModel::new(&cfg, tch::Device::Cpu).unwrap().save(&ck, &BTreeMap::new()).unwrap();

    // One parameter file for the node and for replay: the bag's topics, extrinsics from the
    // bag's latched rig calibration.
    let bag = altermoma::bag::Bag::open(dir.path().join("bag")).unwrap();
    let names = bag_camera_names(&bag).unwrap();
    let mut yaml = format!(
        "/**:\n  ros__parameters:\n    model_path: \"{}\"\n    device: cpu\n    num_threads: 2\n    warmup_frames: 1\n    \
         lidar_timeout: 0.0\n    pointcloud_topic: {LIDAR_TOPIC}\n    rig_calibration_topic: {CALIBRATION_TOPIC}\n    \
         qos:\n      input_reliability: reliable\n      input_depth: 10\n    camera_names: [{}]\n    cameras:\n",
        ck.display(),
        names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    );
    let mut wait = vec![LIDAR_TOPIC.to_string()];
    for n in &names {
        yaml += &format!(
            "      {n}:\n        image_topic: {}\n        camera_info_topic: {}\n",
            camera_image_topic(n, false),
            camera_info_topic(n)
        );
        wait.push(camera_image_topic(n, false));
        wait.push(camera_info_topic(n));
    }
    std::fs::write(dir.path().join("params.yaml"), &yaml).unwrap();

    altermoma(&[
        "replay",
        "--bag",
        &d("bag"),
        "--model",
        &ck.to_string_lossy(),
        "--config",
        &d("params.yaml"),
        "--out",
        &d("replay"),
        "--record",
        &d("replay_outputs"),
        "--quiet",
    ]);
    let want = objects_by_stamp(&dir.path().join("replay_outputs"), "/replay/objects");
    assert_eq!(want.len(), 5);

    // The live node, fed by `altermoma play` at half speed; its outputs collected here.
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let node = std::process::Command::new(env!("CARGO_BIN_EXE_bevfusion_node"))
        .args(["--ros-args", "--params-file", &d("params.yaml")])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut node = common::StopOnDrop(node);
    let ctx = r2r::Context::create().unwrap();
    let mut sub_node = r2r::Node::create(ctx, "e2e_recorder", "").unwrap();
    let mut objects = sub_node
        .subscribe::<Detection3DArray>("/bevfusion_node/output/objects", r2r::QosProfile::default().keep_last(50))
        .unwrap();
    // Outputs published before this recorder has discovered the node's publisher are lost
    // (DDS discovery takes a while, longer with the node's many endpoints): start the player
    // only once the node's output publisher is visible here.
    let node_log = || std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    let t_discovery = std::time::Instant::now();
    while sub_node
        .get_publishers_info_by_topic("/bevfusion_node/output/objects", false)
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        assert!(node.0.try_wait().unwrap().is_none(), "the node exited; its log:\n{}", node_log());
        assert!(t_discovery.elapsed() < std::time::Duration::from_secs(120), "the node's output publisher never appeared");
        sub_node.spin_once(std::time::Duration::from_millis(50));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // endpoint matching follows discovery closely; leave it a moment
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut player = common::StopOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_altermoma"))
            .args(["play", "--bag", &d("bag"), "--rate", "0.5", "--wait-for-subscribers", "--wait-timeout", "120"])
            .args(["--wait-topics", &wait.join(",")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut got: BTreeMap<i64, Detection3DArray> = BTreeMap::new();
    let mut deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let mut played = false;
    while got.len() < want.len() && std::time::Instant::now() < deadline {
        sub_node.spin_once(std::time::Duration::from_millis(50));
        while let Some(m) = objects.next().now_or_never().flatten() {
            got.insert(stamp_to_ns(&m.header.stamp), m);
        }
        assert!(node.0.try_wait().unwrap().is_none(), "the node exited; its log:\n{}", node_log());
        if !played {
            if let Some(st) = player.0.try_wait().unwrap() {
                assert!(st.success(), "altermoma play failed: {st}");
                played = true;
                // what is still in the pipeline
                deadline = deadline.min(std::time::Instant::now() + std::time::Duration::from_secs(30));
            }
        }
    }
    // a clean stop, as ros2 launch does it (which also frees the node's shared memory)
    let st = node.interrupt(std::time::Duration::from_secs(60));
    assert!(st.is_some_and(|st| st.success()), "the node's exit on SIGINT: {st:?}; log:\n{}", node_log());
    assert!(
        got.len() >= want.len() - 1,
        "node gave {} of {} frames (stamps {:?} of {:?}); log:\n{}",
        got.len(),
        want.len(),
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        node_log()
    );
    let mut same = 0;
    for (stamp, g) in &got {
        let w = want.get(stamp).unwrap_or_else(|| panic!("node output at {stamp} that replay does not have"));
        if g.mode != w.mode {
            // Only the first frame may race DDS matching of an image topic.
            assert_eq!(*stamp, *want.keys().next().unwrap(), "mode {} vs replay {}", g.mode, w.mode);
            continue;
        }
        let (gb, wb) = (msg_to_boxes(g), msg_to_boxes(w));
        assert_eq!(gb.len(), wb.len(), "frame at {stamp}");
        assert!(!wb.is_empty(), "random tiny weights give detections above the threshold");
        for (a, b) in gb.iter().zip(&wb) {
            assert_eq!((a.label, a.score as f32), (b.label, b.score as f32), "frame at {stamp}");
            for i in 0..3 {
                assert!((a.center[i] - b.center[i]).abs() < 1e-6 && (a.size[i] - b.size[i]).abs() < 1e-6);
            }
            assert!((a.yaw - b.yaw).abs() < 1e-6);
        }
        same += 1;
    }
    assert!(same >= want.len() - 1, "{same} of {} frames equal; log:\n{}", want.len(), node_log());
}
