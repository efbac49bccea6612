//! `altermoma play` publishes a bag's messages byte for byte, in order, with latched topics
//! transient-local and unpublishable types skipped with a note (inside the network
//! namespace harness).
#![cfg(feature = "ros")]

mod common;

use altermoma::bag::mcap::ChunkCompression;
use altermoma::bag::{BagWriter, StorageKind};
use futures::{FutureExt, StreamExt};
use r2r::altermoma_msgs::msg::RigCalibration;
use r2r::sensor_msgs::msg::{CameraInfo, PointCloud2, PointField};
use r2r::QosProfile;
use std::time::{Duration, Instant};

fn cloud(i: u32) -> PointCloud2 {
    let mut c = PointCloud2::default();
    c.header.frame_id = "lidar_top".into();
    c.header.stamp.sec = 100 + i as i32;
    (c.height, c.width, c.point_step, c.row_step) = (1, 3 + i, 12, 12 * (3 + i));
    c.fields = ["x", "y", "z"]
        .iter()
        .enumerate()
        .map(|(k, n)| PointField { name: n.to_string(), offset: 4 * k as u32, datatype: 7, count: 1 })
        .collect();
    c.data = (0..12 * (3 + i)).map(|k| (k * 3 + i) as u8).collect();
    c
}

#[test]
fn play_publishes_recorded_bytes_in_order() {
    if !common::ros_isolated("play_publishes_recorded_bytes_in_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("bag");
    let mut w =
        BagWriter::create(&bag, StorageKind::Mcap { compression: ChunkCompression::Zstd, chunk_size: 4096 }).unwrap();
    let calib = w.add_topic("/calibration", "altermoma_msgs/msg/RigCalibration", true).unwrap();
    let lidar = w.add_topic("/lidar", "sensor_msgs/msg/PointCloud2", false).unwrap();
    let info = w.add_topic("/cam/info", "sensor_msgs/msg/CameraInfo", false).unwrap();
    // a type this ROS installation cannot publish (no radar_msgs here)
    let radar = w.add_topic("/radar_scan", "radar_msgs/msg/RadarScan", true).unwrap();
    let rc = RigCalibration {
        camera_names: vec!["CAM_FRONT".into()],
        camera_to_lidar: vec![Default::default()],
        ..Default::default()
    };
    let t0 = 1_000_000_000_000i64;
    w.write(calib, t0, &rc).unwrap();
    w.write_raw(radar, t0, &[0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
    let mut ci = CameraInfo::default();
    ci.k = vec![1.0; 9];
    ci.r = vec![0.0; 9];
    ci.p = vec![0.0; 12];
    for i in 0..12u32 {
        let t = t0 + i as i64 * 50_000_000;
        w.write(info, t, &ci).unwrap();
        w.write(lidar, t + 1_000_000, &cloud(i)).unwrap();
    }
    w.finish().unwrap();

    let ctx = r2r::Context::create().unwrap();
    let mut node = r2r::Node::create(ctx, "play_listener", "").unwrap();
    let qos = QosProfile::default().keep_last(100).reliable();
    let mut clouds = node.subscribe::<PointCloud2>("/points", qos.clone()).unwrap();
    let mut infos = node.subscribe::<CameraInfo>("/cam/info", qos.clone()).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args(["play", "--bag", bag.to_str().unwrap(), "--rate", "2", "--loop", "--remap", "/lidar=/points"])
        .args(["--wait-for-subscribers", "--wait-topics", "/points,/cam/info", "--wait-timeout", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut got_clouds, mut got_infos) = (Vec::new(), 0);
    let mut late = None;
    let mut got_calib = None;
    let t = Instant::now();
    while (got_clouds.len() < 12 || got_calib.is_none()) && t.elapsed() < Duration::from_secs(60) {
        node.spin_once(Duration::from_millis(10));
        while let Some(Some(c)) = clouds.next().now_or_never() {
            got_clouds.push(c);
        }
        while let Some(Some(_)) = infos.next().now_or_never() {
            got_infos += 1;
        }
        // Subscribed after the calibration went out: transient-local must still deliver it.
        if late.is_none() && !got_clouds.is_empty() {
            let qos = QosProfile::default().keep_last(1).reliable().transient_local();
            late = Some(node.subscribe::<RigCalibration>("/calibration", qos).unwrap());
        }
        if let Some(l) = late.as_mut() {
            if got_calib.is_none() {
                got_calib = l.next().now_or_never().flatten();
            }
        }
    }
    // Stop the looping player with Ctrl-C: it must exit cleanly and print its report.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    got_clouds.truncate(12);
    assert_eq!(got_clouds, (0..12).map(cloud).collect::<Vec<_>>(), "clouds in order, byte for byte");
    assert!(got_infos >= 12);
    assert!(stdout.contains("skipped /radar_scan"), "{stdout}");
    assert!(stdout.contains("messages on /points"), "{stdout}");
    assert_eq!(got_calib, Some(rc), "latched calibration for a late subscriber");
}
