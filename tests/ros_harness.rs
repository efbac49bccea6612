//! The ROS 2 test harness itself: r2r participants exchange a sensor_msgs/PointCloud2 and one
//! of our own messages inside the private network namespace.
#![cfg(feature = "ros")]

mod common;

use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use std::time::{Duration, Instant};

#[test]
fn harness_refuses_outside_and_isolates_inside() {
    if !common::ros_isolated("harness_refuses_outside_and_isolates_inside") {
        return;
    }
    let ifs = altermoma::netns::interfaces().unwrap();
    assert_eq!(ifs, vec!["lo".to_string()]);
    assert_eq!(
        std::env::var("ROS_AUTOMATIC_DISCOVERY_RANGE").unwrap(),
        "LOCALHOST"
    );
}

#[test]
fn guard_and_wrapper_refuse_an_extra_interface() {
    if !common::ros_isolated("guard_and_wrapper_refuse_an_extra_interface") {
        return;
    }
    let ip = |args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    let check = || {
        std::process::Command::new(altermoma::netns::wrapper_path())
            .arg("--check")
            .status()
            .unwrap()
    };
    assert!(check().success());
    ip(&[
        "link", "add", "probe0", "type", "veth", "peer", "name", "probe1",
    ]);
    let problem = altermoma::netns::isolation_problem().expect("a veth pair must break isolation");
    assert!(
        problem.contains("probe0") && problem.contains("probe1"),
        "{problem}"
    );
    assert_eq!(check().code(), Some(97), "the wrapper's check must refuse");
    ip(&["link", "del", "probe0"]);
    assert!(altermoma::netns::is_isolated());
    assert!(check().success());
}

fn wait_for<T, F: FnMut() -> Option<T>>(what: &str, timeout: Duration, mut f: F) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
    }
}

#[test]
fn pointcloud_and_own_message_round_trip() {
    if !common::ros_isolated("pointcloud_and_own_message_round_trip") {
        return;
    }
    use r2r::altermoma_msgs::msg::{Detection3D, Detection3DArray};
    use r2r::sensor_msgs::msg::{PointCloud2, PointField};

    let ctx = r2r::Context::create().unwrap();
    let mut talker = r2r::Node::create(ctx.clone(), "harness_talker", "").unwrap();
    let mut listener = r2r::Node::create(ctx, "harness_listener", "").unwrap();
    let mut clouds = listener
        .subscribe::<PointCloud2>("/harness/cloud", QosProfile::default())
        .unwrap();
    let mut dets = listener
        .subscribe::<Detection3DArray>("/harness/objects", QosProfile::default())
        .unwrap();
    let cloud_pub = talker
        .create_publisher::<PointCloud2>("/harness/cloud", QosProfile::default())
        .unwrap();
    let det_pub = talker
        .create_publisher::<Detection3DArray>("/harness/objects", QosProfile::default())
        .unwrap();

    wait_for("subscribers to match", Duration::from_secs(20), || {
        talker.spin_once(Duration::from_millis(5));
        listener.spin_once(Duration::from_millis(5));
        let a = cloud_pub.get_inter_process_subscription_count().unwrap();
        let b = det_pub.get_inter_process_subscription_count().unwrap();
        (a > 0 && b > 0).then_some(())
    });

    let xyz: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut cloud = PointCloud2::default();
    cloud.header.frame_id = "lidar_top".into();
    cloud.header.stamp.sec = 42;
    cloud.header.stamp.nanosec = 7;
    cloud.height = 1;
    cloud.width = 2;
    cloud.point_step = 12;
    cloud.row_step = 24;
    cloud.fields = ["x", "y", "z"]
        .iter()
        .enumerate()
        .map(|(i, n)| PointField {
            name: n.to_string(),
            offset: 4 * i as u32,
            datatype: 7,
            count: 1,
        })
        .collect();
    cloud.data = xyz.iter().flat_map(|v| v.to_le_bytes()).collect();

    let mut array = Detection3DArray::default();
    array.header = cloud.header.clone();
    array.mode = "fusion".into();
    let mut d = Detection3D::default();
    d.class_name = "car".into();
    d.score = 0.75;
    d.size.x = 4.5;
    array.detections.push(d);

    cloud_pub.publish(&cloud).unwrap();
    det_pub.publish(&array).unwrap();

    let got_cloud = wait_for("the point cloud", Duration::from_secs(10), || {
        listener.spin_once(Duration::from_millis(10));
        clouds.next().now_or_never().flatten()
    });
    let got_array = wait_for("the detections", Duration::from_secs(10), || {
        listener.spin_once(Duration::from_millis(10));
        dets.next().now_or_never().flatten()
    });
    assert_eq!(got_cloud, cloud);
    let floats: Vec<f32> = got_cloud
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(floats, xyz);
    assert_eq!(got_array, array);
    assert_eq!(got_array.detections[0].class_name, "car");
}
