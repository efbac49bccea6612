//! Interoperability with an independent rosbag2 implementation (`rosbags` from PyPI, run
//! through tests/python/rosbags_peer.py): bags we write open in rosbags with the right
//! topics, counts and field values, and bags rosbags writes (MCAP plain, zstd chunks,
//! zstd file; sqlite3 plain and zstd per message) read in ours with equal values.
#![cfg(feature = "ros")]

mod common;

use altermoma::bag::cdr::CdrMessage;
use altermoma::bag::mcap::ChunkCompression;
use altermoma::bag::messages::{decode, Decoded, TfMessage};
use altermoma::bag::{Bag, BagWriter, StorageKind};
use r2r::altermoma_msgs::msg::{
    BevSegmentation, Detection3D, Detection3DArray, FrameGroundTruth, ProcessingTime, RigCalibration,
};
use r2r::builtin_interfaces::msg::Time;
use r2r::geometry_msgs::msg::{Point, Pose, Quaternion, Transform, TransformStamped, Vector3};
use r2r::sensor_msgs::msg::{CameraInfo, CompressedImage, Image, PointCloud2, PointField};
use r2r::std_msgs::msg::Header;
use serde_json::Value;
use std::path::Path;

fn peer(args: &[&str]) {
    let py = std::env::var("ALTERMOMA_TOOLS_PYTHON").expect("ALTERMOMA_TOOLS_PYTHON (source .deps/env.sh)");
    let script = common::root().join("tests/python/rosbags_peer.py");
    let out = std::process::Command::new(py).arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "rosbags_peer {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Structural equality; numbers equal to float32 precision (rosbags widens float32).
fn same(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-30), "{path}: {x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                same(p, q, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut kx: Vec<_> = x.keys().collect();
            let mut ky: Vec<_> = y.keys().collect();
            kx.sort();
            ky.sort();
            assert_eq!(kx, ky, "{path}: fields");
            for k in kx {
                same(&x[k], &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

fn to_value(d: &Decoded) -> Value {
    match d {
        Decoded::PointCloud2(m) => serde_json::to_value(m),
        Decoded::Image(m) => serde_json::to_value(m),
        Decoded::CompressedImage(m) => serde_json::to_value(m),
        Decoded::CameraInfo(m) => serde_json::to_value(m),
        Decoded::Detection3DArray(m) => serde_json::to_value(m),
        Decoded::BevSegmentation(m) => serde_json::to_value(m),
        Decoded::ProcessingTime(m) => serde_json::to_value(m),
        Decoded::FrameGroundTruth(m) => serde_json::to_value(m),
        Decoded::RigCalibration(m) => serde_json::to_value(m),
        Decoded::TfMessage(m) => serde_json::to_value(&m.transforms).map(|t| serde_json::json!({ "transforms": t })),
    }
    .unwrap()
}

/// Every message of a bag as (topic, log time, decoded value); fails on any issue.
fn read_ours(p: &Path) -> Vec<(String, i64, Value)> {
    let bag = Bag::open(p).unwrap();
    let mut out = Vec::new();
    let issues = bag
        .messages(|m, t| {
            let d = decode(&t.type_name, m.data).unwrap_or_else(|e| panic!("{}: {e}", t.name)).expect("known type");
            out.push((t.name.clone(), m.log_time, to_value(&d)));
            Ok(true)
        })
        .unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    out
}

#[test]
fn bags_written_by_rosbags_read_in_ours_with_equal_values() {
    let dir = tempfile::tempdir().unwrap();
    for storage in ["mcap", "mcap-zstd", "mcap-file", "sqlite3", "sqlite3-message"] {
        let bag = dir.path().join(storage);
        let json = dir.path().join(format!("{storage}.json"));
        peer(&["write", bag.to_str().unwrap(), json.to_str().unwrap(), storage]);
        let expected: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let ours = read_ours(&bag);
        let theirs = expected["messages"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{storage}");
        assert_eq!(ours.len(), 32);
        for (i, ((topic, t, v), e)) in ours.iter().zip(theirs).enumerate() {
            assert_eq!(topic, e["topic"].as_str().unwrap(), "{storage} #{i}");
            assert_eq!(*t, e["t"].as_i64().unwrap(), "{storage} #{i}");
            same(v, &e["msg"], &format!("{storage} #{i} {topic}"));
        }
        // Topic list and counts from metadata.yaml.
        let b = Bag::open(&bag).unwrap();
        for t in b.topics() {
            assert_eq!(t.message_count, expected["topics"][&t.name].as_u64(), "{storage} {}", t.name);
        }
        // A rosbags point cloud decodes to the float32 points it was made of.
        let (_, _, cloud) = ours.iter().find(|(n, _, _)| n == "/lidar_top").unwrap();
        let c: PointCloud2 = serde_json::from_value(cloud.clone()).unwrap();
        assert_eq!(c.data.len(), 16 * c.width as usize);
        assert!(c.data.chunks_exact(4).all(|b| f32::from_le_bytes(b.try_into().unwrap()).is_finite()));
    }
}

fn header(i: i32, frame: &str) -> Header {
    Header { stamp: Time { sec: 1_700_000_000 + i, nanosec: 250_000_000 }, frame_id: frame.into() }
}

fn pose(x: f64) -> Pose {
    Pose { position: Point { x, y: 2.0, z: -0.5 }, orientation: Quaternion { x: 0.0, y: 0.0, z: 0.6, w: 0.8 } }
}

fn det(k: usize) -> Detection3D {
    Detection3D {
        class_name: ["car", "truck", "pedestrian"][k % 3].into(),
        class_id: (k % 3) as u8,
        score: 0.125 * k as f32,
        pose: pose(k as f64),
        size: Vector3 { x: 4.0, y: 1.75, z: 1.5 },
        velocity: Vector3 { x: -1.0, y: 0.5, z: 0.0 },
        attribute_name: if k % 2 == 0 { "vehicle.moving".into() } else { String::new() },
    }
}

fn seg(i: i32) -> BevSegmentation {
    BevSegmentation {
        header: header(i, "lidar_top"),
        class_names: vec!["drivable_area".into(), "walkway".into()],
        origin: pose(-51.2),
        resolution: 0.8,
        rows: 2,
        cols: 2,
        thresholds: vec![0.5, 0.45],
        data: vec![0, 255, 255, 0, 12, 34, 56, 78],
    }
}

/// What the Rust side writes: (topic, type, log time, message).
fn our_messages() -> Vec<(&'static str, i64, Decoded)> {
    let mut v = Vec::new();
    let t0 = 1_700_000_000_000_000_000i64;
    v.push((
        "/calibration",
        t0,
        Decoded::RigCalibration(RigCalibration {
            header: header(0, "lidar_top"),
            camera_names: vec!["CAM_FRONT".into(), "CAM_BACK".into()],
            camera_to_lidar: vec![pose(1.0), pose(-1.0)],
        }),
    ));
    let tf = |parent: &str, child: &str, x: f64| {
        let p = pose(x);
        TransformStamped {
            header: header(0, parent),
            child_frame_id: child.into(),
            transform: Transform {
                translation: Vector3 { x: p.position.x, y: p.position.y, z: p.position.z },
                rotation: p.orientation,
            },
        }
    };
    v.push((
        "/tf_static",
        t0,
        Decoded::TfMessage(TfMessage { transforms: vec![tf("base_link", "lidar_top", 0.94), tf("base_link", "cam_front", 1.5)] }),
    ));
    for i in 0..5i32 {
        let t = t0 + i as i64 * 100_000_000;
        let mut ci = CameraInfo::default();
        ci.header = header(i, "cam_front");
        ci.width = 16;
        ci.height = 8;
        ci.distortion_model = "plumb_bob".into();
        ci.d = vec![0.0, 0.1, 0.0, 0.0, 0.0];
        ci.k = vec![20.0 + i as f64, 0.0, 8.0, 0.0, 20.0, 4.0, 0.0, 0.0, 1.0];
        ci.r = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        ci.p = vec![20.0, 0.0, 8.0, 0.0, 0.0, 20.0, 4.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        v.push(("/cam_front/camera_info", t + 1_000_000, Decoded::CameraInfo(ci)));
        v.push((
            "/cam_front/image",
            t + 2_000_000,
            Decoded::Image(Image {
                header: header(i, "cam_front"),
                height: 8,
                width: 16,
                encoding: "bgr8".into(),
                is_bigendian: 0,
                step: 48,
                data: (0..8 * 48).map(|k| (k * 7 + i as usize) as u8).collect(),
            }),
        ));
        v.push((
            "/cam_back/compressed",
            t + 3_000_000,
            Decoded::CompressedImage(CompressedImage {
                header: header(i, "cam_back"),
                format: "png".into(),
                data: (0..33).map(|k| k as u8 ^ i as u8).collect(),
            }),
        ));
        let n = 20 + i as usize;
        let xyz: Vec<f32> = (0..n * 4).map(|k| (k as f32) * 0.25 - 3.0).collect();
        v.push((
            "/lidar_top",
            t + 5_000_000,
            Decoded::PointCloud2(PointCloud2 {
                header: header(i, "lidar_top"),
                height: 1,
                width: n as u32,
                fields: ["x", "y", "z", "intensity"]
                    .iter()
                    .enumerate()
                    .map(|(k, f)| PointField { name: f.to_string(), offset: 4 * k as u32, datatype: 7, count: 1 })
                    .collect(),
                is_bigendian: false,
                point_step: 16,
                row_step: 16 * n as u32,
                data: xyz.iter().flat_map(|f| f.to_le_bytes()).collect(),
                is_dense: true,
            }),
        ));
        let k = i as usize % 4;
        v.push((
            "/ground_truth",
            t + 5_000_000,
            Decoded::FrameGroundTruth(FrameGroundTruth {
                header: header(i, "lidar_top"),
                sample_token: format!("sample-{i}"),
                scene_token: "scene-0042".into(),
                ego_to_global: pose(600.0 + i as f64),
                lidar_to_ego: pose(0.94),
                boxes: (0..k).map(det).collect(),
                instance_tokens: (0..k).map(|j| format!("instance-{j}")).collect(),
                num_lidar_pts: (0..k as u32).map(|j| 5 * j).collect(),
                visibility: (0..k as u8).map(|j| 1 + j).collect(),
                map: seg(i),
            }),
        ));
        v.push((
            "/objects",
            t + 60_000_000,
            Decoded::Detection3DArray(Detection3DArray {
                header: header(i, "lidar_top"),
                mode: "fusion".into(),
                detections: (0..k + 1).map(det).collect(),
            }),
        ));
        v.push(("/bev", t + 61_000_000, Decoded::BevSegmentation(seg(i))));
        v.push((
            "/processing_time",
            t + 62_000_000,
            Decoded::ProcessingTime(ProcessingTime {
                header: header(i, "lidar_top"),
                stage_names: vec!["decode".into(), "heads".into()],
                stage_ms: vec![0.25, 40.5 + i as f64],
                total_ms: 40.75 + i as f64,
                pipeline_latency_ms: 55.0,
                dropped_frames: i as u64,
                wait_ms: 2.5 * i as f64,
            }),
        ));
    }
    v
}

#[test]
fn bags_written_by_us_open_in_rosbags_with_right_counts_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let msgs = our_messages();
    for (name, kind) in [
        ("zstd", StorageKind::Mcap { compression: ChunkCompression::Zstd, chunk_size: 2048 }),
        ("lz4", StorageKind::Mcap { compression: ChunkCompression::Lz4, chunk_size: 2048 }),
        ("plain", StorageKind::Mcap { compression: ChunkCompression::None, chunk_size: 1 << 20 }),
        ("sqlite", StorageKind::Sqlite3),
    ] {
        let p = dir.path().join(name);
        let mut w = BagWriter::create(&p, kind).unwrap();
        let mut ids = std::collections::HashMap::new();
        for (topic, t, m) in &msgs {
            let id = match ids.get(topic) {
                Some(id) => *id,
                None => {
                    let latched = *topic == "/calibration" || *topic == "/tf_static";
                    let id = w.add_topic(topic, m.type_name(), latched).unwrap();
                    ids.insert(*topic, id);
                    id
                }
            };
            w.write_raw(id, *t, &m.encode().unwrap()).unwrap();
        }
        w.finish().unwrap();

        let json = dir.path().join(format!("{name}.json"));
        peer(&["read", p.to_str().unwrap(), json.to_str().unwrap()]);
        let got: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        // Topics, types and counts.
        let topics = got["topics"].as_object().unwrap();
        assert_eq!(topics.len(), 10, "{name}: {topics:?}");
        for (topic, _, m) in &msgs {
            assert_eq!(topics[*topic]["type"], m.type_name(), "{name} {topic}");
            let n = msgs.iter().filter(|(t, _, _)| t == topic).count() as u64;
            assert_eq!(topics[*topic]["count"].as_u64(), Some(n), "{name} {topic}");
        }
        // Every value, in order.
        let theirs = got["messages"].as_array().unwrap();
        assert_eq!(theirs.len(), msgs.len());
        for (i, ((topic, t, m), e)) in msgs.iter().zip(theirs).enumerate() {
            assert_eq!(e["topic"], *topic, "{name} #{i}");
            assert_eq!(e["t"].as_i64(), Some(*t), "{name} #{i}");
            same(&to_value(m), &e["msg"], &format!("{name} #{i} {topic}"));
        }
        // Spot checks named by the issue: point bytes, K, ground-truth fields.
        let cloud = theirs.iter().find(|e| e["topic"] == "/lidar_top").unwrap();
        let Decoded::PointCloud2(c) = &msgs.iter().find(|(t, _, _)| *t == "/lidar_top").unwrap().2 else { panic!() };
        let bytes: Vec<u8> =
            cloud["msg"]["data"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
        assert_eq!(bytes, c.data);
        let k = &theirs.iter().find(|e| e["topic"] == "/cam_front/camera_info").unwrap()["msg"]["k"];
        assert_eq!(k[0].as_f64(), Some(20.0));
        let gt = &theirs.iter().filter(|e| e["topic"] == "/ground_truth").nth(3).unwrap()["msg"];
        assert_eq!(gt["sample_token"], "sample-3");
        assert_eq!(gt["boxes"].as_array().unwrap().len(), 3);
        assert_eq!(gt["instance_tokens"][2], "instance-2");
        assert_eq!(gt["visibility"], serde_json::json!([1, 2, 3]));
        assert_eq!(gt["map"]["class_names"][1], "walkway");
    }
    // The values we encode are the ones rmw would: decode our own bytes back.
    for (_, _, m) in &msgs {
        if let Decoded::FrameGroundTruth(g) = m {
            assert_eq!(&FrameGroundTruth::decode(&g.encode().unwrap()).unwrap(), g);
        }
    }
}
