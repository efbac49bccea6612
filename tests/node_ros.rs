//! The node over ROS 2 (inside the network namespace): outputs, synchronisation, modality
//! switches, busy handling and malformed inputs. The network is the stand-in (a cheap
//! deterministic function of every input, see `pipeline::stand_in`) so these tests exercise
//! the node's machinery; `node_model.rs` runs the real model against `altermoma infer`.
#![cfg(feature = "ros")]

mod common;
mod node_peer;

use altermoma::geometry::Box3D;
use altermoma::pipeline::stand_in::StandInNetwork;
use altermoma::pipeline::synthetic_input::{ring_rig, synthetic_input, SyntheticSpec};
use altermoma::pipeline::{FrameInput, FrameOutput, FramePipeline};
use altermoma::ros::convert::stamp_to_ns;
use altermoma::ros::detections::msg_to_boxes;
use node_peer::*;
use r2r::altermoma_msgs::msg::Detection3DArray;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const FRAME: i64 = 100_000_000; // 10 Hz

fn expected(params: &altermoma::ros::params::NodeParams, input: &FrameInput) -> FrameOutput {
    let mut p =
        FramePipeline::new(Box::new(StandInNetwork::new(input.cameras.len())), params.pipeline_options()).unwrap();
    p.run(input).unwrap()
}

fn assert_same_boxes(got: &[Box3D], want: &[Box3D]) {
    assert_eq!(got.len(), want.len(), "number of detections\n got {got:?}\nwant {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.label, w.label);
        assert_eq!(g.score, w.score as f32 as f64, "score");
        for k in 0..3 {
            assert!((g.center[k] - w.center[k]).abs() < 1e-9, "centre {g:?} vs {w:?}");
            assert_eq!(g.size[k], w.size[k]);
        }
        assert!((g.yaw - w.yaw).abs() < 1e-9);
    }
}

fn check_frame(msg: &Detection3DArray, want: &FrameOutput) {
    altermoma::logging::init();
    assert_eq!(msg.header.frame_id, want.frame_id);
    assert_eq!(stamp_to_ns(&msg.header.stamp), want.stamp_ns);
    assert_eq!(msg.mode, want.mode.name());
    assert_same_boxes(&msg_to_boxes(msg), &want.detections);
}

/// Send frames until the node answers with a fused frame (discovery of every topic),
/// returning the next free stamp.
fn prime(peer: &mut Peer, rig: &[altermoma::data::CameraCalib], spec: &SyntheticSpec, mut stamp: i64) -> i64 {
    for _ in 0..40 {
        let f = synthetic_input(spec, rig, 0, stamp, "lidar_top");
        peer.publish_infos(&f);
        peer.publish_frame(&f);
        stamp += FRAME;
        peer.pump(Duration::from_millis(300));
        if peer.objects.iter().any(|o| o.mode == "fusion") {
            return stamp;
        }
    }
    panic!("the node never answered");
}

#[test]
fn node_publishes_what_the_pipeline_computes_with_stamps_and_frames() {
    if !common::ros_isolated("node_publishes_what_the_pipeline_computes_with_stamps_and_frames") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let compressed = [false, true];
    let rig0 = ring_rig(&["CAM_A", "CAM_B"]);
    let params = load(
        dir.path(),
        &params_yaml(
            &rig0,
            &compressed,
            "lidar_timeout: 0.0\npublish_occupancy_grids: true\nscore_threshold: 0.3\ndiagnostics_period: 0.1",
        ),
    );
    let rig = node_rig(&rig0, &params);
    let spec = SyntheticSpec::default();
    altermoma::logging::init();
    let node = RunningNode::start_stand_in(params.clone(), Duration::ZERO);
    let mut peer = Peer::new(&compressed);
    let mut stamp = prime(&mut peer, &rig, &spec, now_ns());

    for k in 1..=3u64 {
        let input = synthetic_input(&spec, &rig, k, stamp, "lidar_top");
        let want = expected(&params, &input);
        assert!(want.detections.len() >= 3, "the synthetic frame must produce detections");
        peer.publish_frame_once_images_arrive(&input, T);
        let got = peer.objects_at(stamp, T);
        if got.mode != "fusion" {
            peer.pump(Duration::from_millis(1500));
            eprintln!("{}", peer.diags.iter().map(diag_text).collect::<Vec<_>>().join("\n"));
        }
        check_frame(&got, &want);
        assert_eq!(got.mode, "fusion");
        // segmentation, markers, timing and occupancy grids of the same frame
        let seg =
            peer.wait("segmentation", T, |p| p.seg.iter().find(|s| stamp_to_ns(&s.header.stamp) == stamp).cloned());
        let ws = want.segmentation.as_ref().unwrap();
        assert_eq!(seg.header.frame_id, "lidar_top");
        assert_eq!((seg.rows as usize, seg.cols as usize), (ws.grid.nx(), ws.grid.ny()));
        let q: Vec<u8> = ws.probs.iter().map(|p| (p.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        assert!(seg.data == q, "segmentation bytes differ");
        let markers = peer.wait("markers", T, |p| {
            p.markers.iter().find(|m| stamp_to_ns(&m.markers[0].header.stamp) == stamp).cloned()
        });
        assert_eq!(markers.markers.len(), 1 + 2 * want.detections.len());
        assert_eq!(markers.markers[0].action, 3, "DELETEALL first");
        assert!(markers.markers.iter().all(|m| m.header.frame_id == "lidar_top"));
        let pt = peer
            .wait("processing time", T, |p| p.times.iter().find(|t| stamp_to_ns(&t.header.stamp) == stamp).cloned());
        assert_eq!(
            pt.stage_names,
            ["receive", "decode", "voxelize", "camera", "lidar", "fuse", "heads", "postprocess", "publish"]
        );
        assert_eq!(pt.stage_ms.len(), 9);
        // receiving is the spin thread's CPU time (less the cloud conversion, which `decode` counts)
        assert!(pt.stage_ms.iter().all(|v| v.is_finite() && *v >= 0.0), "{:?}", pt.stage_ms);
        assert!(pt.stage_ms[0] < 1000.0, "receive {} ms", pt.stage_ms[0]);
        assert!((pt.total_ms - pt.stage_ms.iter().sum::<f64>()).abs() < 1e-9);
        assert!(pt.pipeline_latency_ms > 0.0 && pt.pipeline_latency_ms.is_finite());
        // the frame waited for the inference thread at most as long as it took in all
        assert!(pt.wait_ms >= 0.0 && pt.wait_ms <= pt.pipeline_latency_ms, "wait {} ms", pt.wait_ms);
        let grid =
            peer.wait("occupancy grid", T, |p| p.grids.iter().find(|g| stamp_to_ns(&g.header.stamp) == stamp).cloned());
        assert_eq!((grid.info.width as usize, grid.info.height as usize), (ws.grid.nx(), ws.grid.ny()));
        #[cfg(feature = "vision_msgs")]
        check_vision(
            &peer.wait("vision_msgs detections", T, |p| {
                p.vision.iter().find(|v| stamp_to_ns(&v.header.stamp) == stamp).cloned()
            }),
            &want,
            stamp,
        );
        stamp += FRAME;
    }

    // a big-endian cloud with float64 coordinates and the same points gives the same output
    let input = synthetic_input(&spec, &rig, 9, stamp, "lidar_top");
    let want = expected(&params, &input);
    for i in 0..2 {
        peer.publish_image(&input, i);
    }
    peer.wait_images_received(T);
    let pts = input.points.as_ref().unwrap();
    let mut cloud = r2r::sensor_msgs::msg::PointCloud2::default();
    cloud.header = altermoma::ros::convert::header(stamp, "lidar_top");
    cloud.height = 1;
    cloud.width = pts.len() as u32;
    cloud.is_bigendian = true;
    cloud.point_step = 32;
    cloud.row_step = 32 * pts.len() as u32;
    let f =
        |n: &str, o: u32, d: u8| r2r::sensor_msgs::msg::PointField { name: n.into(), offset: o, datatype: d, count: 1 };
    cloud.fields = vec![f("ring", 0, 4), f("intensity", 2, 2), f("z", 8, 8), f("y", 16, 8), f("x", 24, 8)];
    for p in pts.iter() {
        let mut b = vec![0u8; 32];
        b[0..2].copy_from_slice(&(p[4] as u16).to_be_bytes());
        b[2] = p[3] as u8;
        b[8..16].copy_from_slice(&(p[2] as f64).to_be_bytes());
        b[16..24].copy_from_slice(&(p[1] as f64).to_be_bytes());
        b[24..32].copy_from_slice(&(p[0] as f64).to_be_bytes());
        cloud.data.extend(b);
    }
    peer.cloud.publish(&cloud).unwrap();
    check_frame(&peer.objects_at(stamp, T), &want);
    node.stop();
}

/// With the `vision_msgs` feature (what `make` builds), the node also publishes
/// vision_msgs/Detection3DArray: the same boxes, class names and scores as its own message,
/// with the frame's stamp and frame.
#[cfg(feature = "vision_msgs")]
fn check_vision(got: &r2r::vision_msgs::msg::Detection3DArray, want: &FrameOutput, stamp: i64) {
    assert_eq!(got.header.frame_id, "lidar_top");
    assert_eq!(got.detections.len(), want.detections.len());
    for (k, (d, w)) in got.detections.iter().zip(&want.detections).enumerate() {
        assert_eq!((stamp_to_ns(&d.header.stamp), d.header.frame_id.as_str()), (stamp, "lidar_top"));
        assert_eq!(d.id, k.to_string());
        assert_eq!(d.results.len(), 1);
        let h = &d.results[0].hypothesis;
        assert_eq!(h.class_id, altermoma::classes::DETECTION_CLASSES[w.label]);
        assert_eq!(h.score, w.score, "vision_msgs carries the score as float64, unrounded");
        let c = &d.bbox.center.position;
        for (got, want) in [c.x, c.y, c.z].iter().zip(&w.center) {
            assert!((got - want).abs() < 1e-9, "centre {c:?} vs {:?}", w.center);
        }
        // length along the box's x axis (heading), width along y, as our Detection3D
        assert_eq!((d.bbox.size.x, d.bbox.size.y, d.bbox.size.z), (w.size[1], w.size[0], w.size[2]));
        let q = &d.bbox.center.orientation;
        let yaw = 2.0 * q.z.atan2(q.w);
        let diff = (yaw - w.yaw).rem_euclid(std::f64::consts::TAU);
        assert!(diff.min(std::f64::consts::TAU - diff) < 1e-9, "yaw {yaw} vs {}", w.yaw);
        assert_eq!(d.results[0].pose.pose, d.bbox.center);
    }
}

#[test]
fn camera_and_lidar_dropouts_switch_modes_within_one_frame_and_back() {
    if !common::ros_isolated("camera_and_lidar_dropouts_switch_modes_within_one_frame_and_back") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let compressed = [false, false];
    let rig0 = ring_rig(&["CAM_A", "CAM_B"]);
    let params = load(
        dir.path(),
        &params_yaml(&rig0, &compressed, "lidar_timeout: 0.6\ncamera_only_rate: 20.0\ndiagnostics_period: 0.1"),
    );
    let rig = node_rig(&rig0, &params);
    let spec = SyntheticSpec::default();
    let _node = RunningNode::start_stand_in(params.clone(), Duration::ZERO);
    let mut peer = Peer::new(&compressed);
    let mut stamp = prime(&mut peer, &rig, &spec, now_ns());
    let base = stamp;
    let frame = |stamp: i64| synthetic_input(&spec, &rig, ((stamp - base) / FRAME) as u64 + 1, stamp, "lidar_top");

    // fusion
    let f = frame(stamp);
    peer.publish_frame(&f);
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &f));
    let last_image = stamp;

    // camera drop-out: clouds only. +0.1 s: images still within 0.12 s -> fusion;
    // +0.2 s: too old -> LiDAR-only on that very frame.
    for (dt, mode) in [(FRAME, "fusion"), (2 * FRAME, "lidar_only"), (3 * FRAME, "lidar_only")] {
        stamp = last_image + dt;
        let mut f = frame(stamp);
        peer.publish_cloud(&f);
        let got = peer.objects_at(stamp, T);
        assert_eq!(got.mode, mode, "{} ms after the last image", dt / 1_000_000);
        if mode == "lidar_only" {
            f.cameras.iter_mut().for_each(|c| *c = None);
            check_frame(&got, &expected(&params, &f));
        }
    }
    let d = peer.diagnostic_with(&["masked.CAM_A", "max_camera_lidar_delay"], T);
    assert!(d.contains("degraded: running lidar_only"), "{d}");
    // cameras return: the first cloud with fresh images is fused again
    stamp += FRAME;
    let f = frame(stamp);
    peer.publish_frame(&f);
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &f));

    // LiDAR drop-out: images keep coming at 10 Hz; after lidar_timeout the node runs
    // camera-only frames stamped with the images
    let lidar_last = stamp;
    let mut cam_only_first = None;
    for _ in 0..30 {
        stamp += FRAME;
        let f = frame(stamp);
        for i in 0..2 {
            peer.publish_image(&f, i);
        }
        peer.pump(Duration::from_millis(100));
        if let Some(o) = peer.objects.iter().find(|o| stamp_to_ns(&o.header.stamp) > lidar_last) {
            cam_only_first = Some(o.clone());
            break;
        }
    }
    let first = cam_only_first.expect("camera-only frames after the LiDAR timeout");
    assert_eq!(first.mode, "camera_only");
    assert_eq!(first.header.frame_id, "lidar_top", "camera-only frames keep the LiDAR frame");
    // its content is the pipeline's on those images alone
    let mut f = frame(stamp_to_ns(&first.header.stamp));
    f.points = None;
    check_frame(&first, &expected(&params, &f));
    // the LiDAR returns: its first cloud is fused at once (the images published just before
    // it still make a camera-only frame of their own while the LiDAR counts as silent)
    stamp += FRAME;
    let f = frame(stamp);
    peer.publish_frame(&f);
    let got = peer.wait("the returning cloud's frame", T, |p| {
        p.objects.iter().find(|o| stamp_to_ns(&o.header.stamp) == stamp && o.mode != "camera_only").cloned()
    });
    check_frame(&got, &expected(&params, &f));
    // and no camera-only frame follows while clouds keep coming
    let n_before = peer.objects.len();
    for _ in 0..3 {
        stamp += FRAME;
        let f = frame(stamp);
        peer.publish_frame(&f);
        assert_eq!(peer.objects_at(stamp, T).mode, "fusion");
    }
    assert_eq!(peer.objects.len(), n_before + 3, "only cloud-triggered frames while the LiDAR is alive");
    peer.pump(Duration::from_millis(300));
    let n: u64 = diag_value(&peer.diags, "camera_only_frames").unwrap().parse().unwrap();
    assert!(n >= 1, "diagnostics count the camera-only frames");
}

#[test]
fn busy_node_processes_the_newest_frame_and_counts_drops() {
    if !common::ros_isolated("busy_node_processes_the_newest_frame_and_counts_drops") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let compressed = [false];
    let rig0 = ring_rig(&["CAM_A"]);
    let params = load(dir.path(), &params_yaml(&rig0, &compressed, "lidar_timeout: 0.0\ndiagnostics_period: 0.2"));
    let rig = node_rig(&rig0, &params);
    let spec = SyntheticSpec { num_ground_points: 500, ..Default::default() };
    let _node = RunningNode::start_stand_in(params.clone(), Duration::from_millis(400));
    let mut peer = Peer::new(&compressed);
    let mut stamp = prime(&mut peer, &rig, &spec, now_ns());
    peer.pump(Duration::from_millis(1000));
    let processed_before = peer.times.len();
    let dropped_before: u64 = diag_value(&peer.diags, "frames_dropped").unwrap().parse().unwrap();

    // 12 clouds at 20 Hz into a node that needs 0.4 s per frame
    let mut last = 0;
    for k in 0..12 {
        let f = synthetic_input(&spec, &rig, 100 + k, stamp, "lidar_top");
        peer.publish_cloud(&f);
        last = stamp;
        stamp += FRAME / 2;
        peer.pump(Duration::from_millis(50));
    }
    // the newest cloud is always processed
    peer.objects_at(last, T);
    peer.pump(Duration::from_millis(600));
    let processed = (peer.times.len() - processed_before) as u64;
    let dropped: u64 = diag_value(&peer.diags, "frames_dropped").unwrap().parse::<u64>().unwrap() - dropped_before;
    assert!(processed < 12 && dropped > 0, "processed {processed}, dropped {dropped}");
    assert_eq!(processed + dropped, 12, "every cloud is processed or counted as dropped");
    // frames are processed in order, newest last; the timing message reports the drops
    let stamps: Vec<i64> = peer.times[processed_before..].iter().map(|t| stamp_to_ns(&t.header.stamp)).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert_eq!(*stamps.last().unwrap(), last);
    assert!(peer.times.last().unwrap().dropped_frames >= dropped_before + dropped - 1);
    // frames that came while the node was busy waited for it, and say so
    let waits: Vec<f64> = peer.times[processed_before..].iter().map(|t| t.wait_ms).collect();
    assert!(waits.iter().all(|w| w.is_finite() && *w >= 0.0), "{waits:?}");
    assert!(waits.iter().any(|w| *w > 20.0), "no frame waited for the busy node: {waits:?}");
}

/// How a malformed-input case is sent: it gets a valid frame at a fresh stamp to corrupt.
type Send = Box<dyn Fn(&mut Peer, &FrameInput)>;

fn cloud_msg(f: &FrameInput) -> r2r::sensor_msgs::msg::PointCloud2 {
    altermoma::ros::pointcloud::points_to_pointcloud(
        f.points.as_ref().unwrap(),
        altermoma::ros::convert::header(f.stamp_ns, &f.frame_id),
    )
}

fn bad_cloud(edit: impl Fn(&mut r2r::sensor_msgs::msg::PointCloud2) + 'static) -> Send {
    Box::new(move |p: &mut Peer, f: &FrameInput| {
        let mut m = cloud_msg(f);
        edit(&mut m);
        p.cloud.publish(&m).unwrap();
    })
}

fn bad_image(edit: impl Fn(&mut r2r::sensor_msgs::msg::Image) + 'static) -> Send {
    Box::new(move |p: &mut Peer, f: &FrameInput| {
        let c = f.cameras[0].as_ref().unwrap();
        let mut m = altermoma::ros::image::rgb_to_image(&c.image, altermoma::ros::convert::header(f.stamp_ns, "cam_a"));
        edit(&mut m);
        p.images[0].publish(&m).unwrap();
    })
}

fn bad_compressed(format: &'static str, data: Vec<u8>) -> Send {
    Box::new(move |p: &mut Peer, f: &FrameInput| {
        let m = r2r::sensor_msgs::msg::CompressedImage {
            header: altermoma::ros::convert::header(f.stamp_ns, "cam_b"),
            format: format.into(),
            data: data.clone(),
        };
        p.compressed[0].publish(&m).unwrap();
    })
}

fn bad_info(edit: impl Fn(&mut r2r::sensor_msgs::msg::CameraInfo) + 'static) -> Send {
    Box::new(move |p: &mut Peer, f: &FrameInput| {
        let c = f.cameras[0].as_ref().unwrap();
        let mut m = altermoma::ros::camera_info::calib_to_camera_info(
            &c.calib,
            altermoma::ros::convert::header(f.stamp_ns, "cam_a"),
        );
        edit(&mut m);
        p.infos[0].publish(&m).unwrap();
    })
}

#[test]
fn malformed_inputs_are_reported_and_the_next_frame_is_processed() {
    if !common::ros_isolated("malformed_inputs_are_reported_and_the_next_frame_is_processed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let compressed = [false, true];
    let rig0 = ring_rig(&["CAM_A", "CAM_B"]);
    let params = load(
        dir.path(),
        &params_yaml(&rig0, &compressed, "lidar_timeout: 0.0\ncloud_capacity: 5000\ndiagnostics_period: 0.2"),
    );
    let rig = node_rig(&rig0, &params);
    let spec = SyntheticSpec::default();
    let node = RunningNode::start_stand_in(params.clone(), Duration::ZERO);
    let mut peer = Peer::new(&compressed);
    let mut stamp = now_ns();
    let mut index = 0u64;
    let mut next = |stamp: &mut i64| {
        *stamp += FRAME;
        index += 1;
        synthetic_input(&spec, &rig, index, *stamp, "lidar_top")
    };

    // missing CameraInfo: the node runs LiDAR-only and says why
    let got = loop {
        let f = next(&mut stamp);
        peer.publish_frame(&f);
        peer.pump(Duration::from_millis(300));
        if let Some(o) = peer.objects.last() {
            break o.clone();
        }
    };
    assert_eq!(got.mode, "lidar_only");
    peer.diagnostic_with(&["masked.CAM_A = no valid camera_info on /bevfusion_node/input/camera_info_0"], T);
    let f = next(&mut stamp);
    peer.publish_infos(&f);
    peer.pump(Duration::from_millis(200));
    peer.publish_frame(&f);
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &f));

    let big = || {
        Box::new(|p: &mut Peer, f: &FrameInput| {
            let mut f = f.clone();
            let pts = f.points.as_mut().unwrap();
            let n = pts.data.len();
            pts.data = pts.data.iter().cycle().take(n * 2).copied().collect(); // 6720 > 5000 points
            p.cloud.publish(&cloud_msg(&f)).unwrap();
        }) as Send
    };
    let cases: Vec<(&str, Vec<&str>, Send)> = vec![
        (
            "truncated cloud",
            vec!["input/pointcloud", "field `data`", "truncated"],
            bad_cloud(|m| {
                m.data.truncate(m.data.len() - 7);
            }),
        ),
        (
            "cloud data too long",
            vec!["field `data`", "too long"],
            bad_cloud(|m| {
                m.data.extend([0u8; 20]);
            }),
        ),
        (
            "point_step smaller than the fields",
            vec!["field `point_step`", "smaller than field"],
            bad_cloud(|m| {
                m.point_step = 12;
                m.row_step = 12 * m.width;
            }),
        ),
        (
            "width*height mismatch",
            vec!["field `data`", "width 3359"],
            bad_cloud(|m| {
                m.width -= 1;
                m.row_step = m.width * m.point_step;
            }),
        ),
        ("row_step too small", vec!["field `row_step`"], bad_cloud(|m| m.row_step -= 20)),
        ("missing z", vec!["no `z` field"], bad_cloud(|m| m.fields.retain(|f| f.name != "z"))),
        ("integer coordinates", vec!["float32 or float64"], bad_cloud(|m| m.fields[0].datatype = 3)),
        ("unknown datatype", vec!["unknown PointField datatype 11"], bad_cloud(|m| m.fields[3].datatype = 11)),
        ("cloud beyond capacity", vec!["capacity of 5000"], big()),
        ("cloud stamp going backwards", vec!["field `header.stamp`", "went backwards"], {
            Box::new(|p: &mut Peer, f: &FrameInput| {
                let mut m = cloud_msg(f);
                m.header.stamp = altermoma::ros::convert::ns_to_stamp(f.stamp_ns - 10 * FRAME);
                p.cloud.publish(&m).unwrap();
            })
        }),
        ("cloud stamp repeated", vec!["repeats the previous cloud's stamp"], {
            Box::new(|p: &mut Peer, f: &FrameInput| {
                let mut m = cloud_msg(f);
                m.header.stamp = altermoma::ros::convert::ns_to_stamp(f.stamp_ns - FRAME);
                p.cloud.publish(&m).unwrap();
            })
        }),
        ("empty frame id", vec!["field `header.frame_id`"], bad_cloud(|m| m.header.frame_id.clear())),
        (
            "unknown encoding",
            vec!["input/image_0", "unsupported encoding `yuv422`"],
            bad_image(|m| m.encoding = "yuv422".into()),
        ),
        ("16-bit encoding", vec!["unsupported encoding `rgb16`"], bad_image(|m| m.encoding = "rgb16".into())),
        ("zero-size image", vec!["zero-size image 0x36"], bad_image(|m| m.width = 0)),
        ("step too small", vec!["field `step`"], bad_image(|m| m.step = 100)),
        (
            "truncated image",
            vec!["input/image_0", "truncated"],
            bad_image(|m| {
                m.data.truncate(100);
            }),
        ),
        (
            "image size differs from camera_info",
            vec!["image is 32x18 but camera_info says 64x36"],
            bad_image(|m| {
                m.width = 32;
                m.height = 18;
                m.step = 96;
                m.data.truncate(96 * 18);
            }),
        ),
        ("image stamp going backwards", vec!["input/image_0", "went backwards"], {
            Box::new(|p: &mut Peer, f: &FrameInput| {
                let c = f.cameras[0].as_ref().unwrap();
                let m = altermoma::ros::image::rgb_to_image(
                    &c.image,
                    altermoma::ros::convert::header(f.stamp_ns - 5 * FRAME, "cam_a"),
                );
                p.images[0].publish(&m).unwrap();
            })
        }),
        (
            "garbage jpeg",
            vec!["input/image_1", "cannot read the Jpeg header"],
            bad_compressed("jpeg", vec![0xff, 0xd8, 1, 2, 3]),
        ),
        (
            "unsupported compression",
            vec!["unsupported compressed format `webp`"],
            bad_compressed("webp", vec![1, 2, 3]),
        ),
        ("empty compressed image", vec!["empty compressed image"], bad_compressed("png", vec![])),
        ("uncalibrated camera_info", vec!["input/camera_info_0", "uncalibrated"], bad_info(|m| m.k = vec![0.0; 9])),
        ("NaN in camera_info", vec!["field `k[5]`", "NaN/Inf"], bad_info(|m| m.k[5] = f64::NAN)),
    ];
    assert!(cases.len() >= 20);
    for (name, needles, send) in &cases {
        let bad = next(&mut stamp);
        peer.diags.clear();
        send(&mut peer, &bad);
        peer.diagnostic_with(needles, T);
        // the next valid frame is processed normally
        let f = next(&mut stamp);
        peer.publish_frame(&f);
        let got = peer.objects_at(stamp, T);
        assert_eq!(got.mode, "fusion", "after {name}");
        check_frame(&got, &expected(&params, &f));
    }

    // NaN/Inf points are skipped with a warning; the frame is processed without them
    let mut f = next(&mut stamp);
    let clean = f.clone();
    f.points.as_mut().unwrap().data.extend([f32::NAN, 1.0, 1.0, 5.0, 0.0, 2.0, f32::INFINITY, 0.0, 5.0, 0.0]);
    peer.diags.clear();
    peer.publish_frame(&f);
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &clean));
    peer.diagnostic_with(&["skipped 2 points with NaN/Inf values"], T);
    // a cloud of nothing but NaN: the frame runs camera-only
    let mut f = next(&mut stamp);
    f.points.as_mut().unwrap().data.iter_mut().step_by(5).for_each(|x| *x = f32::NAN);
    peer.publish_frame(&f);
    let got = peer.objects_at(stamp, T);
    assert_eq!(got.mode, "camera_only");
    check_frame(&got, &expected(&params, &f));
    // and everything is counted
    peer.pump(Duration::from_millis(400));
    let rejected: u64 = diag_value(&peer.diags, "/bevfusion_node/input/pointcloud.rejected").unwrap().parse().unwrap();
    assert_eq!(rejected, 12);
    let failed: u64 = diag_value(&peer.diags, "frames_failed").unwrap().parse().unwrap();
    assert_eq!(failed, 0);
    node.stop();
}

#[test]
fn an_rclpy_client_gets_the_same_results() {
    if !common::ros_isolated("an_rclpy_client_gets_the_same_results") {
        return;
    }
    rclpy_round_trip(false, 3);
}

/// The extrinsics from an rclpy static broadcaster (/tf_static, transient local, a chain
/// base_link -> mount -> camera as a vehicle's URDF gives it): a client that shares no code
/// with the node, for the type, the QoS and the tree lookup.
#[cfg(altermoma_tf2_msgs)]
#[test]
fn an_rclpy_tf_static_broadcaster_supplies_the_extrinsics() {
    if !common::ros_isolated("an_rclpy_tf_static_broadcaster_supplies_the_extrinsics") {
        return;
    }
    rclpy_round_trip(true, 2);
}

/// Frames sent and outputs received by the rclpy peer (`tests/python/node_rclpy_peer.py`),
/// checked against the pipeline run here on the same frames. With `tf_static`, the parameters
/// carry no extrinsics and the peer broadcasts the camera frames on /tf_static instead.
fn rclpy_round_trip(tf_static: bool, num_frames: u64) {
    use nalgebra::{Isometry3, Vector3};
    let python = std::env::var("ALTERMOMA_ROS_PYTHON").expect("ALTERMOMA_ROS_PYTHON (source .deps/env.sh)");
    let dir = tempfile::tempdir().unwrap();
    let compressed = [false, false];
    let rig0 = ring_rig(&["CAM_A", "CAM_B"]);
    let mut yaml = params_yaml(&rig0, &compressed, "lidar_timeout: 0.0");
    if tf_static {
        yaml = yaml.lines().filter(|l| !l.contains("lidar_to_camera:")).map(|l| format!("{l}\n")).collect();
        yaml += "    extrinsics_source: tf_static\n";
    }
    let params = load(dir.path(), &yaml);
    let rig = if tf_static { rig0.clone() } else { node_rig(&rig0, &params) };
    let spec = SyntheticSpec { num_ground_points: 1500, ..Default::default() };
    let node = RunningNode::start_stand_in(params.clone(), Duration::ZERO);

    // the peer names its image frames cam<i>; the tree gives each the rig's pose in lidar_top
    let base_lidar = Isometry3::new(Vector3::new(0.94, 0.0, 1.84), Vector3::new(0.0, 0.0, 0.015));
    let tf_json = |parent: &str, child: &str, iso: &Isometry3<f64>| {
        let (t, r) = (iso.translation.vector, iso.rotation);
        serde_json::json!({"parent": parent, "child": child, "t": [t.x, t.y, t.z], "q": [r.i, r.j, r.k, r.w]})
    };
    let mut transforms = vec![tf_json("base_link", "lidar_top", &base_lidar)];
    for (k, c) in rig.iter().enumerate() {
        let base_mount = Isometry3::new(Vector3::new(1.2, -0.4 * k as f64, 1.5), Vector3::new(0.0, 0.0, 0.7 * k as f64));
        let mount_cam = base_mount.inverse() * base_lidar * c.cam_to_lidar;
        transforms.push(tf_json("base_link", &format!("cam{k}_mount"), &base_mount));
        transforms.push(tf_json(&format!("cam{k}_mount"), &format!("cam{k}"), &mount_cam));
    }

    // frames as the Python client will send them: no ring field (ring 0), uint8 intensity
    let base = now_ns() + 5_000_000_000;
    let inputs: Vec<FrameInput> = (0..num_frames)
        .map(|k| {
            let mut f = synthetic_input(&spec, &rig, 10 + k, base + k as i64 * FRAME, "lidar_top");
            f.points.as_mut().unwrap().data.iter_mut().skip(4).step_by(5).for_each(|r| *r = 0.0);
            f
        })
        .collect();
    let frames: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let cams: Vec<serde_json::Value> = f
                .cameras
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let c = c.as_ref().unwrap();
                    let path = dir.path().join(format!("f{k}_c{i}.rgb"));
                    std::fs::write(&path, c.image.as_raw()).unwrap();
                    let kk: Vec<f64> = c.calib.intrinsics.transpose().iter().copied().collect();
                    serde_json::json!({"rgb": path, "width": c.calib.width, "height": c.calib.height, "k": kk})
                })
                .collect();
            let pts: Vec<[f32; 4]> = f.points.as_ref().unwrap().iter().map(|p| [p[0], p[1], p[2], p[3]]).collect();
            serde_json::json!({"stamp_ns": f.stamp_ns, "frame_id": f.frame_id, "points": pts, "cameras": cams})
        })
        .collect();
    let spec_path = dir.path().join("spec.json");
    let out_path = dir.path().join("out.json");
    let tf_static = if tf_static { serde_json::json!(transforms) } else { serde_json::json!([]) };
    std::fs::write(&spec_path, serde_json::json!({"node": NS, "frames": frames, "tf_static": tf_static}).to_string())
        .unwrap();
    let st = std::process::Command::new(python)
        .arg(common::root().join("tests/python/node_rclpy_peer.py"))
        .args([&spec_path, &out_path])
        .status()
        .unwrap();
    assert!(st.success(), "the rclpy peer failed");
    let got: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(got.len(), inputs.len());
    for (g, input) in got.iter().zip(&inputs) {
        let want = expected(&params, input);
        assert_eq!(g["stamp_ns"].as_i64().unwrap(), input.stamp_ns);
        assert_eq!(g["frame_id"], "lidar_top");
        assert_eq!(g["mode"], "fusion");
        let dets = g["detections"].as_array().unwrap();
        assert_eq!(dets.len(), want.detections.len());
        for (d, w) in dets.iter().zip(&want.detections) {
            assert_eq!(d["class_id"].as_u64().unwrap() as usize, w.label);
            assert_eq!(d["score"].as_f64().unwrap() as f32, w.score as f32);
            let pos: Vec<f64> = d["position"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            for k in 0..3 {
                assert!((pos[k] - w.center[k]).abs() < 1e-9, "{pos:?} vs {:?}", w.center);
            }
            assert_eq!(d["size_lwh"][0].as_f64().unwrap(), w.size[1]);
        }
        let ws = want.segmentation.as_ref().unwrap();
        let q: Vec<u8> = ws.probs.iter().map(|p| (p.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        let hex: String = q.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(g["seg"]["rows"].as_u64().unwrap() as usize, ws.grid.nx());
        assert!(g["seg"]["data_hex"].as_str().unwrap() == hex, "segmentation bytes differ");
        assert_eq!(g["markers"]["count"].as_u64().unwrap() as usize, 1 + 2 * want.detections.len());
        assert_eq!(g["markers"]["first_action"], 3);
        assert_eq!(g["markers"]["frame_ids"], serde_json::json!(["lidar_top"]));
    }
    node.stop();
}

/// Send frames until the node answers LiDAR-only with the diagnostics saying `why` (the
/// cameras have no extrinsics yet); returns the last stamp sent.
fn until_lidar_only_because(peer: &mut Peer, rig: &[altermoma::data::CameraCalib], spec: &SyntheticSpec, why: &str) -> i64 {
    let mut stamp = now_ns();
    for k in 0.. {
        assert!(k < 60, "no LiDAR-only frame explained by `{why}`");
        stamp += FRAME;
        let f = synthetic_input(spec, rig, 1, stamp, "lidar_top");
        peer.publish_infos(&f);
        peer.publish_frame(&f);
        peer.pump(Duration::from_millis(300));
        let explained = peer.diags.iter().any(|d| diag_text(d).contains(why));
        if explained && peer.objects.last().is_some_and(|o| o.mode == "lidar_only") {
            break;
        }
    }
    assert!(peer.objects.iter().all(|o| o.mode == "lidar_only"));
    stamp
}

/// Send frames after `stamp` until one comes back fused; returns it and its stamp.
fn until_fused(peer: &mut Peer, rig: &[altermoma::data::CameraCalib], spec: &SyntheticSpec, mut stamp: i64) -> (FrameInput, i64) {
    loop {
        stamp += FRAME;
        let f = synthetic_input(spec, rig, 2, stamp, "lidar_top");
        peer.publish_frame(&f);
        if peer.objects_at(stamp, T).mode == "fusion" {
            return (f, stamp);
        }
    }
}

#[test]
fn extrinsics_can_come_from_a_rig_calibration_topic() {
    if !common::ros_isolated("extrinsics_can_come_from_a_rig_calibration_topic") {
        return;
    }
    use r2r::geometry_msgs::msg::{Point, Pose, Quaternion};
    let dir = tempfile::tempdir().unwrap();
    let rig = ring_rig(&["CAM_A", "CAM_B"]);
    let yaml = "/**:\n  ros__parameters:\n    model_path: stand-in\n    warmup_frames: 1\n    camera_names: [CAM_A, CAM_B]\n    \
                lidar_timeout: 0.0\n    rig_calibration_topic: /rig_calibration\n    qos:\n      input_reliability: reliable\n";
    let params = load(dir.path(), yaml);
    let spec = SyntheticSpec::default();
    let _node = RunningNode::start_stand_in(params.clone(), Duration::ZERO);
    let mut peer = Peer::new(&[false, false]);
    // no extrinsics yet: LiDAR-only, and the diagnostics say why
    let stamp = until_lidar_only_because(&mut peer, &rig, &spec, "masked.CAM_B = no extrinsics yet");
    // a transient-local RigCalibration (as /tf_static) brings the cameras in
    let q = r2r::QosProfile::default().keep_last(1).reliable().transient_local();
    let rig_pub =
        peer.node.create_publisher::<r2r::altermoma_msgs::msg::RigCalibration>("/rig_calibration", q).unwrap();
    let poses = rig
        .iter()
        .map(|c| {
            let t = c.cam_to_lidar.translation.vector;
            let r = c.cam_to_lidar.rotation;
            Pose {
                position: Point { x: t.x, y: t.y, z: t.z },
                orientation: Quaternion { x: r.i, y: r.j, z: r.k, w: r.w },
            }
        })
        .collect();
    let msg = r2r::altermoma_msgs::msg::RigCalibration {
        header: altermoma::ros::convert::header(stamp, "lidar_top"),
        camera_names: rig.iter().map(|c| c.name.clone()).collect(),
        camera_to_lidar: poses,
    };
    rig_pub.publish(&msg).unwrap();
    let (f, stamp) = until_fused(&mut peer, &rig, &spec, stamp);
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &f));
}

/// The build reads /tf_static exactly where tf2_msgs is installed (setup.sh provides it where
/// ROS lacks it), so the /tf_static test below is not silently compiled out.
#[test]
fn tf_static_is_built_in_where_tf2_msgs_is_installed() {
    let installed = std::env::var("AMENT_PREFIX_PATH").is_ok_and(|paths| {
        std::env::split_paths(&paths).any(|p| p.join("share/tf2_msgs/msg/TFMessage.msg").is_file())
    });
    assert_eq!(altermoma::ros::node::READS_TF_STATIC, installed);
}

#[cfg(altermoma_tf2_msgs)]
#[test]
fn extrinsics_come_from_tf_static_through_a_chain_of_frames() {
    if !common::ros_isolated("extrinsics_come_from_tf_static_through_a_chain_of_frames") {
        return;
    }
    use nalgebra::{Isometry3, Vector3};
    let dir = tempfile::tempdir().unwrap();
    let rig = ring_rig(&["CAM_A", "CAM_B"]);
    // no extrinsics in the parameters: they come from /tf_static (extrinsics_source: auto)
    let yaml = "/**:\n  ros__parameters:\n    model_path: stand-in\n    warmup_frames: 1\n    camera_names: [CAM_A, CAM_B]\n    \
                lidar_timeout: 0.0\n    diagnostics_period: 0.2\n    qos:\n      input_reliability: reliable\n";
    let params = load(dir.path(), yaml);
    let spec = SyntheticSpec::default();
    let node = RunningNode::start_stand_in(params.clone(), Duration::ZERO);
    let mut peer = Peer::new(&[false, false]);
    let why = "masked.CAM_B = no extrinsics yet: /tf_static has no frame `lidar_top`";
    let stamp = until_lidar_only_because(&mut peer, &rig, &spec, why);

    // a vehicle's tree: base_link -> lidar_top, base_link -> <cam>_mount -> <cam> (the image's
    // frame), with the mounts chosen so that the chain gives the rig's camera-to-LiDAR poses
    let base_lidar = Isometry3::new(Vector3::new(0.94, 0.0, 1.84), Vector3::new(0.0, 0.0, 0.015));
    let tf_stamp = stamp;
    let tf = move |parent: &str, child: &str, iso: &Isometry3<f64>| {
        altermoma::ros::convert::transform_stamped(tf_stamp, parent, child, iso)
    };
    let mut transforms = vec![tf("base_link", "lidar_top", &base_lidar)];
    for (k, c) in rig.iter().enumerate() {
        let base_mount = Isometry3::new(Vector3::new(1.2, 0.3 * k as f64, 1.5), Vector3::new(0.0, 0.0, 0.4 * k as f64));
        let mount_cam = base_mount.inverse() * base_lidar * c.cam_to_lidar;
        transforms.push(tf("base_link", &format!("{}_mount", c.name), &base_mount));
        transforms.push(tf(&format!("{}_mount", c.name), &c.name, &mount_cam));
    }
    // transient local, as tf2's static broadcaster: the node gets it although it subscribed first
    let q = r2r::QosProfile::default().keep_last(1).reliable().transient_local();
    let tf_pub = peer.node.create_publisher::<r2r::tf2_msgs::msg::TFMessage>("/tf_static", q).unwrap();
    tf_pub.publish(&r2r::tf2_msgs::msg::TFMessage { transforms }).unwrap();
    let (f, mut stamp) = until_fused(&mut peer, &rig, &spec, stamp);
    // the stand-in puts a box 10 m along each camera's optical axis: the extrinsics are used
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &f));
    let d = peer.diagnostic_with(&["extrinsics.CAM_A = tf_static", "extrinsics.CAM_B = tf_static"], T);
    assert!(!d.contains("masked."), "{d}");
    // a malformed /tf_static message is rejected with its field and the node carries on
    let mut bad = vec![tf("base_link", "CAM_A", &Isometry3::identity())];
    bad[0].transform.rotation.w = 2.0;
    let q = r2r::QosProfile::default().keep_last(1).reliable().transient_local();
    let bad_pub = peer.node.create_publisher::<r2r::tf2_msgs::msg::TFMessage>("/tf_static", q).unwrap();
    peer.wait("the second /tf_static publisher to match", T, |_| {
        (bad_pub.get_inter_process_subscription_count().unwrap_or(0) > 0).then_some(())
    });
    bad_pub.publish(&r2r::tf2_msgs::msg::TFMessage { transforms: bad }).unwrap();
    peer.diagnostic_with(&["/tf_static.last_error", "transforms[0].transform.rotation"], T);
    stamp += FRAME;
    let f = synthetic_input(&spec, &rig, 3, stamp, "lidar_top");
    peer.publish_frame(&f);
    check_frame(&peer.objects_at(stamp, T), &expected(&params, &f));
    node.stop();
}

/// The RIHS01 type hash of `pkg/msg/name` as the package in use (first in AMENT_PREFIX_PATH)
/// declares it, with the file it came from.
fn type_hash_in_use(pkg: &str, name: &str) -> (String, std::path::PathBuf) {
    let paths = std::env::var("AMENT_PREFIX_PATH").unwrap_or_default();
    let rel = format!("share/{pkg}/msg/{name}.json");
    let Some(json) = std::env::split_paths(&paths).map(|p| p.join(&rel)).find(|p| p.is_file()) else {
        panic!("no {rel} in AMENT_PREFIX_PATH (./setup.sh builds a stand-in where ROS lacks {pkg})");
    };
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let full = format!("{pkg}/msg/{name}");
    let hash = v["type_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["type_name"] == full.as_str())
        .and_then(|h| h["hash_string"].as_str())
        .unwrap()
        .to_string();
    (hash, json)
}

/// The vision_msgs in use (the stand-in setup.sh builds where ROS lacks it) declares
/// Detection3DArray with the type hash of vision_msgs 4.1.1, Jazzy's release. That hash was
/// computed by building upstream's five .msg files with the same rosidl, so a real vision_msgs
/// subscriber matches the node's output. The hash covers the nested types too.
#[test]
fn vision_msgs_in_use_has_jazzy_vision_msgs_type_hash() {
    if std::env::var("ROS_DISTRO").as_deref() != Ok("jazzy") {
        return;
    }
    let (hash, json) = type_hash_in_use("vision_msgs", "Detection3DArray");
    assert_eq!(hash, "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018", "{}", json.display());
}

/// The tf2_msgs in use declares TFMessage with the type hash of Jazzy's tf2_msgs (as
/// `ros2 topic info -v /tf_static` shows on a Jazzy robot), so the stand-in setup.sh builds
/// where tf2_msgs is missing matches real static broadcasters.
#[test]
fn tf2_msgs_in_use_has_jazzy_tf2_msgs_type_hash() {
    if std::env::var("ROS_DISTRO").as_deref() != Ok("jazzy") {
        return;
    }
    let (hash, json) = type_hash_in_use("tf2_msgs", "TFMessage");
    assert_eq!(hash, "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087", "{}", json.display());
}
