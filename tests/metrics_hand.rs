//! Hand-computed cases of the nuScenes detection metrics, the frame-based ground truth, and
//! the `altermoma eval` command line.

use altermoma::classes::{detection_class_index, DETECTION_CLASSES};
use altermoma::data::{Annotation, Frame};
use altermoma::geometry::Box3D;
use altermoma::metrics::detection_box::attribute_index;
use altermoma::metrics::nuscenes::{accumulate, calc_ap, calc_tp};
use altermoma::metrics::*;
use nalgebra::{Isometry3, Vector3};
use std::f64::consts::PI;

fn label(name: &str) -> usize {
    detection_class_index(name).unwrap()
}

fn gt_box(name: &str, x: f64, y: f64, yaw: f64) -> DetectionBox {
    DetectionBox {
        translation: [x, y, 1.0],
        size: [2.0, 4.0, 1.5],
        rotation: [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()],
        velocity: [1.0, -2.0],
        label: label(name),
        score: -1.0,
        attribute: None,
        num_pts: 10,
    }
}

fn as_pred(g: &DetectionBox, score: f64) -> DetectionBox {
    DetectionBox {
        score,
        num_pts: -1,
        ..g.clone()
    }
}

/// One sample per class with two boxes of that class.
fn all_classes_gt() -> Vec<Vec<DetectionBox>> {
    DETECTION_CLASSES
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                gt_box(c, 10.0 + i as f64, 5.0, 0.3),
                gt_box(c, -10.0, -5.0 - i as f64, -1.0),
            ]
        })
        .collect()
}

fn eval(gt: &[Vec<DetectionBox>], pred: &[Vec<DetectionBox>]) -> DetectionMetrics {
    let samples: Vec<SampleBoxes> = gt
        .iter()
        .zip(pred)
        .map(|(g, p)| SampleBoxes {
            gt: g.iter().collect(),
            pred: p.iter().collect(),
        })
        .collect();
    evaluate_filtered(&samples, &DetectionConfig::default()).unwrap()
}

#[test]
fn perfect_predictions_give_map_one_and_zero_errors() {
    let gt = all_classes_gt();
    let pred: Vec<Vec<DetectionBox>> = gt
        .iter()
        .map(|s| s.iter().map(|g| as_pred(g, 0.9)).collect())
        .collect();
    let m = eval(&gt, &pred);
    // the devkit gives 1.0000000000000004 (numpy's pairwise mean of 0.9s divided by 0.9)
    assert!((m.mean_ap() - 1.0).abs() < 1e-12, "{}", m.mean_ap());
    assert_eq!(m.label_aps[0][0], 1.0000000000000004);
    for (c, name) in m.class_names().iter().enumerate() {
        for (k, metric) in [
            "trans_err",
            "scale_err",
            "orient_err",
            "vel_err",
            "attr_err",
        ]
        .iter()
        .enumerate()
        {
            let v = m.label_tp_errors[c][k];
            let undefined =
                (*name == "traffic_cone" && k != 0 && k != 1) || (*name == "barrier" && k >= 3);
            if undefined {
                assert!(v.is_nan(), "{name} {metric} should be undefined, got {v}");
            } else if *metric == "attr_err" {
                // ground truth without attribute -> accuracy NaN -> all-NaN -> error 1
                assert_eq!(v, 1.0, "{name} {metric}");
            } else {
                assert!(v.abs() < 1e-12, "{name} {metric} = {v}");
            }
        }
    }
    let e = m.tp_errors();
    assert!(e[0].abs() < 1e-12 && e[1].abs() < 1e-12 && e[2].abs() < 1e-12 && e[3].abs() < 1e-12);
    // NDS = (5 * 1 + 4 + 0) / 10 since AAE is 1 without GT attributes
    assert!((m.nd_score() - 0.9).abs() < 1e-12, "{}", m.nd_score());

    // with GT attributes predicted correctly, NDS is 1
    let mut gt2 = gt.clone();
    for s in gt2.iter_mut() {
        for b in s.iter_mut() {
            b.attribute = altermoma::metrics::detection_box::default_attribute(b.label, [0.0, 0.0]);
        }
    }
    let pred2: Vec<Vec<DetectionBox>> = gt2
        .iter()
        .map(|s| s.iter().map(|g| as_pred(g, 0.9)).collect())
        .collect();
    let m2 = eval(&gt2, &pred2);
    assert!((m2.nd_score() - 1.0).abs() < 1e-12, "{}", m2.nd_score());
}

#[test]
fn known_shift_gives_known_ate_and_threshold_aps() {
    let gt = all_classes_gt();
    for (shift, ap_expected) in [(0.3, 1.0), (0.7, 0.75), (1.5, 0.5), (3.0, 0.25)] {
        let pred: Vec<Vec<DetectionBox>> = gt
            .iter()
            .map(|s| {
                s.iter()
                    .map(|g| {
                        let mut p = as_pred(g, 0.8);
                        p.translation[0] += shift * 0.6;
                        p.translation[1] -= shift * 0.8;
                        p.translation[2] += 5.0; // height does not count
                        p
                    })
                    .collect()
            })
            .collect();
        let m = eval(&gt, &pred);
        for (c, name) in m.class_names().iter().enumerate() {
            let ap = m.mean_dist_aps()[c];
            assert!(
                (ap - ap_expected).abs() < 1e-12,
                "shift {shift} {name}: AP {ap}"
            );
            let ate = m.label_tp_errors[c][0];
            if shift < 2.0 {
                assert!(
                    (ate - shift).abs() < 1e-9,
                    "shift {shift} {name}: ATE {ate}"
                );
            } else {
                // no match at 2 m: TP errors are 1
                assert_eq!(ate, 1.0, "shift {shift} {name}");
            }
        }
    }
}

#[test]
fn symmetric_class_yaw_rules() {
    let gt = all_classes_gt();
    let pred: Vec<Vec<DetectionBox>> = gt
        .iter()
        .map(|s| {
            s.iter()
                .map(|g| {
                    let mut p = as_pred(g, 0.8);
                    let yaw = p.yaw() + PI; // facing backwards
                    p.rotation = [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()];
                    p
                })
                .collect()
        })
        .collect();
    let m = eval(&gt, &pred);
    let aoe = |c: &str| m.label_tp_error(c, "orient_err").unwrap();
    assert!(
        aoe("barrier").abs() < 1e-9,
        "barrier: period pi, {}",
        aoe("barrier")
    );
    assert!((aoe("car") - PI).abs() < 1e-9, "car: {}", aoe("car"));
    assert!(aoe("traffic_cone").is_nan(), "cone: no AOE");
    assert!(m.label_tp_error("barrier", "vel_err").unwrap().is_nan());
    assert!(m.label_tp_error("barrier", "attr_err").unwrap().is_nan());
    assert!(m
        .label_tp_error("traffic_cone", "vel_err")
        .unwrap()
        .is_nan());
    // mAOE averages the 9 defined classes: 8 at pi and the barrier at 0
    assert!(
        (m.tp_errors()[2] - 8.0 * PI / 9.0).abs() < 1e-9,
        "{}",
        m.tp_errors()[2]
    );
    // a quarter turn: barrier error pi/2 as well
    let quarter: Vec<Vec<DetectionBox>> = gt
        .iter()
        .map(|s| {
            s.iter()
                .map(|g| {
                    let mut p = as_pred(g, 0.8);
                    let yaw = p.yaw() + PI / 2.0;
                    p.rotation = [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()];
                    p
                })
                .collect()
        })
        .collect();
    let m = eval(&gt, &quarter);
    assert!((m.label_tp_error("barrier", "orient_err").unwrap() - PI / 2.0).abs() < 1e-9);
}

#[test]
fn empty_predictions_and_absent_classes() {
    let gt = all_classes_gt();
    let empty = vec![Vec::new(); gt.len()];
    let m = eval(&gt, &empty);
    assert_eq!(m.mean_ap(), 0.0);
    assert_eq!(m.nd_score(), 0.0);
    for e in m.tp_errors() {
        assert_eq!(e, 1.0);
    }

    // trailers absent from the ground truth but predicted: AP 0, TP errors 1, still averaged
    let trailer = label("trailer");
    let gt_nt: Vec<Vec<DetectionBox>> = gt
        .iter()
        .map(|s| s.iter().filter(|b| b.label != trailer).cloned().collect())
        .collect();
    let pred: Vec<Vec<DetectionBox>> = gt
        .iter()
        .map(|s| s.iter().map(|g| as_pred(g, 0.7)).collect())
        .collect();
    let m = eval(&gt_nt, &pred);
    assert_eq!(m.label_ap("trailer", 2.0), Some(0.0));
    for metric in [
        "trans_err",
        "scale_err",
        "orient_err",
        "vel_err",
        "attr_err",
    ] {
        assert_eq!(m.label_tp_error("trailer", metric), Some(1.0));
    }
    assert!((m.mean_ap() - 0.9).abs() < 1e-12, "{}", m.mean_ap());
    // mATE over 10 classes: trailer 1, others 0
    assert!((m.tp_errors()[0] - 0.1).abs() < 1e-12);
}

#[test]
fn nan_velocities_are_skipped_and_all_nan_gives_one() {
    let mut gt = all_classes_gt();
    let car = label("car");
    let bus = label("bus");
    for s in gt.iter_mut() {
        for (i, b) in s.iter_mut().enumerate() {
            if b.label == car && i == 0 {
                b.velocity = [f64::NAN, f64::NAN];
            }
            if b.label == bus {
                b.velocity = [f64::NAN, f64::NAN];
            }
        }
    }
    let pred: Vec<Vec<DetectionBox>> = gt
        .iter()
        .map(|s| {
            s.iter()
                .map(|g| {
                    let mut p = as_pred(g, 0.8);
                    p.velocity = [4.0, 2.0]; // (4, 2) - (1, -2) = (3, 4): error 5 m/s
                    p
                })
                .collect()
        })
        .collect();
    let m = eval(&gt, &pred);
    // car: one NaN skipped, the other has |(4,2) - (1,-2)| = 5
    assert!((m.label_tp_error("car", "vel_err").unwrap() - 5.0).abs() < 1e-9);
    // bus: every error NaN -> 1
    assert_eq!(m.label_tp_error("bus", "vel_err").unwrap(), 1.0);
}

#[test]
fn hand_computed_curve_ap_and_ate() {
    // 2 GT; predictions by score: TP (0.9, 0.2 m off), FP (0.8), TP (0.7, 0.4 m off)
    let car = "car";
    let g1 = gt_box(car, 0.0, 0.0, 0.0);
    let g2 = gt_box(car, 20.0, 0.0, 0.0);
    let mut p1 = as_pred(&g1, 0.9);
    p1.translation[0] += 0.2;
    let mut fp = as_pred(&g1, 0.8);
    fp.translation = [50.0, 50.0, 0.0];
    let mut p3 = as_pred(&g2, 0.7);
    p3.translation[1] += 0.4;
    let samples = [SampleBoxes {
        gt: vec![&g1, &g2],
        pred: vec![&fp, &p3, &p1],
    }];
    let md = accumulate(&samples, label(car), 2.0);
    // precision interpolated over recall [0.5, 0.5, 1.0] with precision [1, 0.5, 2/3]
    let rec = |i: usize| i as f64 * 0.01;
    let prec = |r: f64| {
        if r < 0.5 {
            1.0
        } else if r == 0.5 {
            0.5
        } else {
            0.5 + (r - 0.5) / 0.5 * (2.0 / 3.0 - 0.5)
        }
    };
    let expected_ap = (11..=100)
        .map(|i| (prec(rec(i)) - 0.1).max(0.0))
        .sum::<f64>()
        / 90.0
        / 0.9;
    let ap = calc_ap(&md, 0.1, 0.1);
    assert!((ap - expected_ap).abs() < 1e-12, "{ap} vs {expected_ap}");
    // ATE: running mean [0.2, 0.3] of the matches at confidences [0.9, 0.7], interpolated
    // at the confidence of each recall point (0.9 below recall 0.5, 0.8 at 0.5, then linear to 0.7)
    let conf = |r: f64| {
        if r < 0.5 {
            0.9
        } else if r == 0.5 {
            0.8
        } else {
            0.8 + (r - 0.5) / 0.5 * (0.7 - 0.8)
        }
    };
    let err = |c: f64| 0.3 + (c - 0.7) / 0.2 * (0.2 - 0.3);
    let expected_ate = (11..=100).map(|i| err(conf(rec(i)))).sum::<f64>() / 90.0;
    let ate = calc_tp(&md, 0.1, "trans_err");
    assert!(
        (ate - expected_ate).abs() < 1e-12,
        "{ate} vs {expected_ate}"
    );
}

#[test]
fn tie_breaking_follows_the_devkit() {
    // equal distances: the first GT box in order wins (the attribute tells which one)
    let mut g1 = gt_box("car", -1.0, 0.0, 0.0);
    g1.attribute = attribute_index("vehicle.parked");
    let mut g2 = gt_box("car", 1.0, 0.0, 0.0);
    g2.attribute = attribute_index("vehicle.moving");
    let mut p = as_pred(&g1, 0.5);
    p.translation = [0.0, 0.0, 1.0];
    let samples = [SampleBoxes {
        gt: vec![&g1, &g2],
        pred: vec![&p],
    }];
    let md = accumulate(&samples, label("car"), 2.0);
    assert_eq!(md.attr_err[11], 0.0, "matched the first GT");

    // equal scores: the later prediction is matched first
    let g = gt_box("car", 0.0, 0.0, 0.0);
    let mut a = as_pred(&g, 0.5);
    a.translation[0] += 0.1;
    let mut b = as_pred(&g, 0.5);
    b.translation[0] += 0.3;
    let samples = [SampleBoxes {
        gt: vec![&g],
        pred: vec![&a, &b],
    }];
    let md = accumulate(&samples, label("car"), 2.0);
    assert!((calc_tp(&md, 0.1, "trans_err") - 0.3).abs() < 1e-12);
}

#[test]
fn recall_below_min_recall_gives_tp_errors_one() {
    let gts: Vec<DetectionBox> = (0..20)
        .map(|i| gt_box("car", 10.0 * i as f64, 0.0, 0.0))
        .collect();
    let p = as_pred(&gts[0], 0.9);
    let samples = [SampleBoxes {
        gt: gts.iter().collect(),
        pred: vec![&p],
    }];
    let md = accumulate(&samples, label("car"), 2.0);
    assert_eq!(md.max_recall(), 0.05);
    assert_eq!(calc_tp(&md, 0.1, "trans_err"), 1.0);
    assert_eq!(calc_ap(&md, 0.1, 0.1), 0.0);
}

fn frame(token: &str, scene: &str, t_us: i64, ego_x: f64, anns: Vec<(&str, f64)>) -> Frame {
    Frame {
        token: token.into(),
        scene_token: scene.into(),
        timestamp_us: t_us,
        lidar_to_ego: Isometry3::new(Vector3::new(1.0, 0.0, 1.8), Vector3::zeros()),
        ego_to_global: Isometry3::new(
            Vector3::new(ego_x, 100.0, 0.0),
            Vector3::new(0.0, 0.0, PI / 2.0),
        ),
        points: None,
        cameras: Vec::new(),
        annotations: anns
            .into_iter()
            .map(|(inst, x)| Annotation {
                bbox: Box3D {
                    center: [x, 0.0, 0.0],
                    size: [1.9, 4.5, 1.6],
                    yaw: 0.0,
                    velocity: [0.0; 2],
                    label: 0,
                    score: 1.0,
                },
                instance_token: inst.into(),
                num_lidar_pts: 5,
                attribute: "vehicle.moving".into(),
                visibility: 4,
            })
            .collect(),
        map: None,
    }
}

#[test]
fn ground_truth_from_frames_has_devkit_velocity_semantics() {
    // ego fixed at x=1000 (global), heading +y; lidar 1 m ahead of the ego origin.
    // Instance "a": lidar x = 10, 11, 12 at t = 0, 0.5, 1.0 s -> global y grows 2 m/s.
    // Instance "b": seen at 0 s and then 2.0 s later (gap > 1.5 s) -> NaN both.
    // Instance "c": single annotation -> NaN.
    let frames = vec![
        frame(
            "f0",
            "s",
            0,
            1000.0,
            vec![("a", 10.0), ("b", 20.0), ("c", 30.0)],
        ),
        frame("f1", "s", 500_000, 1000.0, vec![("a", 11.0)]),
        frame("f2", "s", 1_000_000, 1000.0, vec![("a", 12.0)]),
        frame("f3", "s", 2_000_000, 1000.0, vec![("b", 20.0)]),
    ];
    let gt = GroundTruth::from_frames(&frames).unwrap();
    assert_eq!(gt.sample_tokens(), vec!["f0", "f1", "f2", "f3"]);
    let a0 = &gt.samples[0].boxes[0];
    // lidar (10, 0, 0) -> ego (11, 0, 1.8) -> global rotated +90 deg: (1000, 111, 1.8)
    assert!((a0.translation[0] - 1000.0).abs() < 1e-9 && (a0.translation[1] - 111.0).abs() < 1e-9);
    assert!((a0.yaw() - PI / 2.0).abs() < 1e-9);
    assert!(
        a0.velocity[0].abs() < 1e-9 && (a0.velocity[1] - 2.0).abs() < 1e-9,
        "{:?}",
        a0.velocity
    );
    let a1 = &gt.samples[1].boxes[0];
    assert!(
        (a1.velocity[1] - 2.0).abs() < 1e-9,
        "centred difference {:?}",
        a1.velocity
    );
    assert!(gt.samples[0].boxes[1].velocity[0].is_nan(), "gap > 1.5 s");
    assert!(
        gt.samples[0].boxes[2].velocity[0].is_nan(),
        "single annotation"
    );
    assert_eq!(gt.samples[0].ego_translation, [1000.0, 100.0, 0.0]);
    assert_eq!(gt.samples[0].boxes[0].attribute_name(), "vehicle.moving");
    assert!(GroundTruth::from_frames([&frames[0], &frames[0]]).is_err());

    // predictions from the same LiDAR-frame boxes evaluate perfectly
    let mut preds = DetectionResults::new(ResultsMeta::camera_lidar());
    for f in &frames {
        let boxes: Vec<Box3D> = f
            .annotations
            .iter()
            .map(|a| Box3D {
                score: 0.6,
                ..a.bbox.clone()
            })
            .collect();
        preds
            .samples
            .push(SampleResults::from_frame(f, &boxes, 500));
    }
    let m = evaluate_detections(&gt, &preds, &DetectionConfig::default()).unwrap();
    assert!((m.label_ap("car", 0.5).unwrap() - 1.0).abs() < 1e-12);
    assert!(m.label_tp_error("car", "trans_err").unwrap().abs() < 1e-9);
    // the results survive a save/load round trip and evaluate the same
    let dir = tempfile::tempdir().unwrap();
    preds.save(dir.path().join("r.json")).unwrap();
    let back = DetectionResults::load(dir.path().join("r.json")).unwrap();
    let m2 = evaluate_detections(&gt, &back, &DetectionConfig::default()).unwrap();
    assert_eq!(m.label_aps, m2.label_aps);
    // a missing sample is an error naming it
    preds.samples.pop();
    let e = evaluate_detections(&gt, &preds, &DetectionConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("f3"), "{e}");
}

#[test]
fn lidar_boxes_keep_the_top_scores() {
    let boxes: Vec<Box3D> = (0..10)
        .map(|i| Box3D {
            center: [i as f64, 0.0, 0.0],
            size: [1.0; 3],
            yaw: 0.0,
            velocity: [0.0; 2],
            label: 0,
            score: i as f64 / 10.0,
        })
        .collect();
    let s = SampleResults::from_lidar_boxes(
        "t",
        &boxes,
        &Isometry3::identity(),
        &Isometry3::identity(),
        3,
    );
    let scores: Vec<f64> = s.boxes.iter().map(|b| b.score).collect();
    assert_eq!(scores, vec![0.9, 0.8, 0.7]);
    assert_eq!(s.boxes[0].attribute_name(), "vehicle.parked");
}

#[test]
fn cli_writes_reports_and_names_bad_input() {
    use altermoma::metrics::random_cases::{random_dataset, write_dataset, DatasetParams};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ds = random_dataset(
        5,
        &DatasetParams {
            scenes: 2,
            samples_per_scene: 5,
            objects_per_scene: 25,
            boxes_per_sample: None,
        },
    );
    write_dataset(
        root,
        "v1.0-t",
        &ds.tables,
        &[("half", vec![ds.scene_names[0].clone()])],
    )
    .unwrap();
    let preds = root.join("results.json");
    ds.results.save(&preds).unwrap();

    // BEV segmentation files for the same samples
    let mut p = altermoma::checkpoint::Checkpoint::new();
    let mut g = altermoma::checkpoint::Checkpoint::new();
    let mut acc = BevMiou::map_classes();
    for (i, s) in ds.tables.sample.iter().enumerate() {
        let probs: Vec<f32> = (0..6 * 8 * 8)
            .map(|k| ((k * 7 + i * 13) % 100) as f32 / 100.0)
            .collect();
        let mask: Vec<u8> = (0..6 * 8 * 8)
            .map(|k| ((k * 3 + i) % 5 < 2) as u8)
            .collect();
        acc.update(&probs, &mask).unwrap();
        p.tensors.insert(
            s.token.clone(),
            tch::Tensor::from_slice(&probs).view([6, 8, 8]),
        );
        g.tensors.insert(
            s.token.clone(),
            tch::Tensor::from_slice(&mask).view([6, 8, 8]),
        );
    }
    p.save(root.join("seg.safetensors")).unwrap();
    g.save(root.join("seg_gt.safetensors")).unwrap();

    let out = root.join("out");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_altermoma"))
            .arg("eval")
            .args(args)
            .output()
            .unwrap()
    };
    let root_s = root.to_str().unwrap();
    let o = run(&[
        "--predictions",
        preds.to_str().unwrap(),
        "--dataroot",
        root_s,
        "--version",
        "v1.0-t",
        "--seg-predictions",
        root.join("seg.safetensors").to_str().unwrap(),
        "--seg-gt",
        root.join("seg_gt.safetensors").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("mAP:") && stdout.contains("NDS:") && stdout.contains("BEV mIoU"),
        "{stdout}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "label_aps",
        "mean_dist_aps",
        "mean_ap",
        "label_tp_errors",
        "tp_errors",
        "tp_scores",
        "nd_score",
        "eval_time",
        "cfg",
        "meta",
    ] {
        assert!(m.get(key).is_some(), "metrics.json lacks {key}");
    }
    assert!(m["label_aps"]["car"]["0.5"].is_number());
    assert!(m["label_tp_errors"]["traffic_cone"]["orient_err"].is_null());
    assert_eq!(m["meta"]["use_lidar"], true);
    let miou = m["bev_map_segmentation"]["miou"].as_f64().unwrap();
    assert!((miou - acc.finish().miou).abs() < 1e-12);
    let details: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics_details.json")).unwrap())
            .unwrap();
    assert_eq!(
        details["car:2.0"]["precision"].as_array().unwrap().len(),
        101
    );
    let md = std::fs::read_to_string(out.join("metrics.md")).unwrap();
    assert!(
        md.contains("| mAP | NDS |") && md.contains("| pedestrian |") && md.contains("mIoU"),
        "{md}"
    );
    for c in DETECTION_CLASSES {
        let img = image::open(out.join(format!("pr_{c}.png"))).unwrap();
        assert!(img.width() > 100);
    }
    // the in-memory API gives the same numbers
    let gt = GroundTruth::load(root, "v1.0-t", &Split::All).unwrap();
    let mem = evaluate_detections(&gt, &ds.results, &DetectionConfig::default()).unwrap();
    assert!(
        (m["nd_score"].as_f64().unwrap() - mem.nd_score()).abs() < 1e-15,
        "{} vs {} {:?} {:?}",
        m["nd_score"],
        mem.nd_score(),
        m["label_aps"],
        mem.label_aps
    );

    // a custom split from splits.json: predictions must then cover exactly its samples
    let o = run(&[
        "--predictions",
        preds.to_str().unwrap(),
        "--dataroot",
        root_s,
        "--version",
        "v1.0-t",
        "--split",
        "half",
        "--out",
        out.to_str().unwrap(),
        "--no-plots",
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("not in the evaluated split"), "{e}");

    // bad files: errors name the file, the sample token and the field
    let text = std::fs::read_to_string(&preds).unwrap();
    let tok = &ds
        .results
        .samples
        .iter()
        .find(|s| !s.boxes.is_empty())
        .unwrap()
        .sample_token;
    let first = text.find(&format!("\"{tok}\":[")).unwrap();
    let name_at = first + text[first..].find("\"detection_name\"").unwrap();
    let end = name_at + text[name_at..].find(',').unwrap();
    let bad = format!(
        "{}\"detection_name\":\"ufo\"{}",
        &text[..name_at],
        &text[end..]
    );
    std::fs::write(root.join("bad.json"), bad).unwrap();
    let o = run(&[
        "--predictions",
        root.join("bad.json").to_str().unwrap(),
        "--dataroot",
        root_s,
        "--version",
        "v1.0-t",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("bad.json")
            && e.contains(tok.as_str())
            && e.contains("detection_name")
            && e.contains("ufo"),
        "{e}"
    );
    // a sample missing from the results
    let mut fewer = ds.results.clone();
    let dropped = fewer.samples.remove(0).sample_token;
    fewer.save(root.join("fewer.json")).unwrap();
    let o = run(&[
        "--predictions",
        root.join("fewer.json").to_str().unwrap(),
        "--dataroot",
        root_s,
        "--version",
        "v1.0-t",
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains(&dropped) && e.contains("fewer.json"),
        "{e}"
    );
}

#[test]
fn frame_evaluator_streams_detections_and_segmentation() {
    use altermoma::data::BevMap;
    use altermoma::geometry::BevGrid;
    let grid = BevGrid {
        x_min: -2.0,
        x_max: 2.0,
        y_min: -1.0,
        y_max: 1.0,
        resolution: 1.0,
    };
    let mut ev = FrameEvaluator::new(DetectionConfig::default());
    let mut acc = BevMiou::map_classes();
    for (i, t) in [0i64, 500_000, 1_000_000].iter().enumerate() {
        let mut f = frame(
            &format!("f{i}"),
            "s",
            *t,
            0.0,
            vec![("a", 10.0 + i as f64), ("b", -8.0)],
        );
        let mask: Vec<u8> = (0..6 * 4 * 2).map(|k| ((k + i) % 3 == 0) as u8).collect();
        f.map = Some(BevMap {
            grid,
            data: mask.clone(),
        });
        // one good box, one 1.2 m off, one false positive
        let mut boxes: Vec<Box3D> = f
            .annotations
            .iter()
            .map(|a| Box3D {
                score: 0.8,
                ..a.bbox.clone()
            })
            .collect();
        boxes[1].center[0] += 1.2;
        boxes.push(Box3D {
            center: [0.0, 30.0, 0.0],
            score: 0.3,
            ..boxes[0].clone()
        });
        ev.add_detections(&f, &boxes).unwrap();
        let probs: Vec<f32> = mask
            .iter()
            .enumerate()
            .map(|(k, m)| if k % 5 == 0 { 0.5 } else { *m as f32 * 0.9 })
            .collect();
        let pt = tch::Tensor::from_slice(&probs).view([6, 4, 2]);
        ev.add_segmentation_map(&pt, f.map.as_ref().unwrap())
            .unwrap();
        acc.update(&probs, &mask).unwrap();
        assert!(ev
            .add_segmentation_map(&pt.view([6, 2, 4]), f.map.as_ref().unwrap())
            .is_err());
    }
    assert_eq!(ev.len(), 3);
    let out = ev.finish().unwrap();
    assert_eq!(out.results.samples.len(), 3);
    assert_eq!(out.segmentation.unwrap(), acc.finish());
    // 6 GT cars, 3 predicted at 0 m and 3 at 1.2 m, 3 false positives with lower scores.
    // At 2 m and 4 m all are found before the FPs; as in the devkit, the precision at recall
    // 1.0 is that of the last prediction (6/9), not 1.
    let ap = |t: f64| out.detection.label_ap("car", t).unwrap();
    let expected = (89.0 * 0.9 + (6.0 / 9.0 - 0.1)) / 90.0 / 0.9;
    assert!(
        (ap(2.0) - expected).abs() < 1e-12 && (ap(4.0) - expected).abs() < 1e-12,
        "{}",
        ap(2.0)
    );
    // at 0.5 m and 1 m only half are found, interleaved with misses
    assert_eq!(ap(0.5), ap(1.0));
    assert!(ap(0.5) > 0.1 && ap(0.5) < 0.3, "{}", ap(0.5));
    // ATE with tied scores, as the devkit computes it: the running mean is interpolated at
    // the (single) match confidence 0.8, where numpy picks the first match's value (1.2 m, the
    // later 1.2 m-off box goes first); only recall 1.0, at the FP confidence 0.3 below every
    // match, takes the final running mean 0.6.
    let ate = out.detection.label_tp_error("car", "trans_err").unwrap();
    assert!((ate - (89.0 * 1.2 + 0.6) / 90.0).abs() < 1e-9, "{ate}");
}
