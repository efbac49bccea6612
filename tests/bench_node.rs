//! `altermoma bench node` end to end, in the network namespace: with `--delivery
//! inter-process-large-images` the inputs come from a second process (driven over a pipe) through
//! the shipped Fast DDS profile, every frame is processed, and the report shows the publisher
//! process's CPU apart from the node's, and the copy of a frame's inputs that `receive` is set
//! against.
#![cfg(feature = "ros")]

mod common;

#[test]
fn inter_process_delivery_measures_the_node_apart_from_its_publisher() {
    if !common::ros_isolated("inter_process_delivery_measures_the_node_apart_from_its_publisher") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args(["bench", "node", "--stand-in", "--cameras", "2", "--latency-frames", "10", "--memory-frames", "0"])
        .args(["--delivery", "inter-process-large-images", "--encoding", "bgr8", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "bench node failed:\n{log}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let r = &results[0];
    assert_eq!(r["label"], "stand-in");
    assert_eq!((r["published"].as_u64(), r["processed"].as_u64()), (Some(10), Some(10)), "{r}");
    let rows: Vec<(String, f64)> = serde_json::from_value(r["cpu_per_frame_ms"].clone()).unwrap();
    let publisher = rows.iter().find(|(g, _)| g.starts_with("publisher process")).unwrap_or_else(|| panic!("{rows:?}"));
    assert!(publisher.1 > 0.0, "the publisher process used CPU: {rows:?}");
    assert!(rows.iter().any(|(g, v)| g == "node receiving (ros-spin)" && *v > 0.0), "{rows:?}");
    let profile = std::fs::read_to_string(out.path().join("fastdds_profile.xml")).unwrap();
    assert!(profile.contains("<intraprocess_delivery>OFF</intraprocess_delivery>") && profile.contains("33554432"));
    // the copy floor: two 704x256 bgr8 images and a cloud of about 30,000 points at 20 bytes each
    assert_eq!(r["input_bytes"].as_u64(), Some(2 * 704 * 256 * 3 + 30_000 * 20), "{r}");
    assert!(r["input_copy_ms"].as_f64().is_some_and(|v| v > 0.0), "{r}");
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("Delivery: inter-process"), "{report}");
    assert!(report.contains("| stand-in | 1.7 MB |"), "{report}");
}
