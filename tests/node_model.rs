//! The product end to end: the `bevfusion_node` binary with a real checkpoint (tiny config),
//! started with a parameter file as on a robot, fed synthetic frames over ROS 2 (inside the
//! network namespace); its detections and segmentation equal the per-frame pipeline's on the
//! same bytes, and it stops cleanly on SIGINT.
#![cfg(feature = "ros")]

mod common;
mod node_peer;

use altermoma::model::load::LoadedModel;
use altermoma::model::ModelConfig;
use altermoma::pipeline::loader::load_pipeline;
use altermoma::pipeline::synthetic_input::{ring_rig, synthetic_input, SyntheticSpec};
use altermoma::ros::convert::stamp_to_ns;
use altermoma::ros::detections::msg_to_boxes;
use node_peer::*;
use std::collections::BTreeMap;
use std::time::Duration;

const FRAME: i64 = 100_000_000;

/// The node process, killed if the test fails before stopping it.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
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
    let extra = format!("lidar_timeout: 0.0\nscore_threshold: 0.1\nnum_threads: 2\nmodel_path: \"{}\"", ck.display());
    let yaml = params_yaml(&rig0, &compressed, &extra).replace("    model_path: \"stand-in\"\n", "");
    let params = load(dir.path(), &yaml);
    let rig = node_rig(&rig0, &params);

    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bevfusion_node"))
        .args(["--ros-args", "--params-file"])
        .arg(dir.path().join("params.yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(Some(child));
    let child = child.0.as_mut().unwrap();
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
        peer.publish_frame(&f);
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
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = child.wait().unwrap();
    assert!(st.success(), "exit status {st}; log:\n{}", log_text());
    let log = log_text();
    assert!(log.contains("live on cpu") && log.contains("tiny (dense"), "{log}");
}
