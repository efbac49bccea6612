//! Agreement with the official nuscenes-devkit 1.2.0 ($ALTERMOMA_TOOLS_PYTHON) on randomised
//! inputs: every AP, TP error, mAP, NDS and every 101-point curve within 1e-6.
//!
//! 1. `accumulate` level: filtered boxes fed to the devkit's `DetectionEval.evaluate`.
//! 2. End to end: small nuScenes-layout datasets written with `NuScenesTables`, evaluated by
//!    `altermoma eval` and by `NuScenes` + `DetectionEval` on a custom split, so that ground
//!    truth loading (categories, attributes, velocities, points, ego distances) and the
//!    filters (ranges, zero points, bicycle racks) are compared too.

use altermoma::metrics::random_cases::{
    eval_boxes_json, random_box_case, random_dataset, write_dataset, DatasetParams,
};
use altermoma::metrics::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOL: f64 = 1e-6;

fn tools_python() -> String {
    std::env::var("ALTERMOMA_TOOLS_PYTHON")
        .expect("ALTERMOMA_TOOLS_PYTHON is not set: `source .deps/env.sh` (the venv with nuscenes-devkit 1.2.0)")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/devkit_eval.py")
}

fn devkit(args: &[&str]) {
    let o = Command::new(tools_python())
        .arg(script())
        .args(args)
        .output()
        .expect("running the devkit script");
    assert!(
        o.status.success(),
        "devkit script failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// Compare two JSON values recursively: numbers within TOL, null == null (NaN), same keys.
fn compare(ours: &Value, theirs: &Value, path: &str, worst: &mut f64) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "keys differ at {path}");
            for k in ka {
                compare(&a[k], &b[k], &format!("{path}.{k}"), worst);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "lengths differ at {path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{path}[{i}]"), worst);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let d = (x.as_f64().unwrap() - y.as_f64().unwrap()).abs();
            *worst = worst.max(d);
            assert!(d <= TOL, "{path}: ours {x} vs devkit {y} (|diff| = {d:e})");
        }
        (Value::Null, Value::Null) => {}
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

/// The metric keys both sides must agree on (eval_time differs by nature; cfg and meta are
/// compared separately where meaningful).
fn metric_part(summary: &Value) -> Value {
    let keys = [
        "label_aps",
        "mean_dist_aps",
        "mean_ap",
        "label_tp_errors",
        "tp_errors",
        "tp_scores",
        "nd_score",
    ];
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), summary[*k].clone()))
            .collect(),
    )
}

#[test]
fn accumulate_level_agrees_with_devkit_on_random_cases() {
    let dir = tempfile::tempdir().unwrap();
    // (seed, samples, max GT per sample)
    let cases = [
        (0u64, 40usize, 30usize),
        (1, 25, 60),
        (2, 60, 12),
        (3, 10, 5),
        (4, 80, 25),
        (5, 3, 2),
        (6, 30, 40),
    ];
    let mut files = Vec::new();
    let mut ours = Vec::new();
    for (seed, samples, max_gt) in cases {
        let c = random_box_case(seed, samples, max_gt);
        let text = format!(
            "{{\"gt\": {}, \"pred\": {}}}",
            eval_boxes_json(&c.tokens, &c.gt),
            eval_boxes_json(&c.tokens, &c.pred)
        );
        let path = dir.path().join(format!("case{seed}.json"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
        let sb: Vec<SampleBoxes> =
            c.gt.iter()
                .zip(&c.pred)
                .map(|(g, p)| SampleBoxes {
                    gt: g.iter().collect(),
                    pred: p.iter().collect(),
                })
                .collect();
        ours.push(evaluate_filtered(&sb, &DetectionConfig::default()).unwrap());
    }
    let mut args = vec!["algo"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    devkit(&args);
    let mut worst = 0.0f64;
    let mut nontrivial = 0;
    for (f, m) in files.iter().zip(&ours) {
        let out = read(&f.with_extension("out.json"));
        let ours_summary = serde_json::to_value(m.summary(None)).unwrap();
        compare(
            &metric_part(&ours_summary),
            &metric_part(&out["summary"]),
            &f.display().to_string(),
            &mut worst,
        );
        let details: serde_json::Map<String, Value> = m
            .details()
            .into_iter()
            .map(|(k, md)| (k, serde_json::to_value(md).unwrap()))
            .collect();
        compare(
            &Value::Object(details),
            &out["details"],
            &format!("{} details", f.display()),
            &mut worst,
        );
        if m.mean_ap() > 0.05 && m.mean_ap() < 0.95 {
            nontrivial += 1;
        }
        // one class per case has no ground truth: AP 0 and TP errors 1, as the devkit says
        assert!(m.label_aps.iter().any(|a| a.iter().all(|v| *v == 0.0)));
    }
    assert!(
        nontrivial >= 5,
        "the random cases should give intermediate mAPs"
    );
    eprintln!("accumulate level: worst |ours - devkit| = {worst:e}");
}

fn end_to_end(seed: u64, params: DatasetParams, subset: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let version = "v1.0-random";
    let ds = random_dataset(seed, &params);
    let split_scenes: Vec<String> = if subset {
        ds.scene_names.iter().step_by(2).cloned().collect()
    } else {
        ds.scene_names.clone()
    };
    write_dataset(
        root,
        version,
        &ds.tables,
        &[("rand_eval", split_scenes.clone())],
    )
    .unwrap();
    // predictions for exactly the split's samples, in the shuffled order
    let gt = GroundTruth::load(root, version, &Split::Scenes(split_scenes)).unwrap();
    let tokens: std::collections::HashSet<String> = gt.sample_tokens().into_iter().collect();
    let mut results = ds.results.clone();
    results.samples.retain(|s| tokens.contains(&s.sample_token));
    let res_path = root.join("results.json");
    results.save(&res_path).unwrap();

    // the dataset really has the cases the filters and velocities must get right
    let cfg = DetectionConfig::default();
    let all = GroundTruth::load(root, version, &Split::All).unwrap();
    let boxes = || all.samples.iter().flat_map(|s| s.boxes.iter());
    assert!(boxes().any(|b| b.num_pts == 0), "zero-point GT");
    assert!(boxes().any(|b| b.velocity[0].is_nan()), "NaN GT velocity");
    assert!(all.samples.iter().any(|s| s.boxes.iter().any(|b| s
        .bike_racks
        .iter()
        .any(|r| r.contains(b.translation))
        && b.detection_name() == "bicycle")));
    assert!(all.samples.iter().any(|s| s.boxes.iter().any(|b| {
        let d = b.ego_dist(s.ego_translation) - cfg.range_of(b.label);
        d.abs() < 1e-3 && d < 0.0
    })));
    assert!(all.samples.iter().any(|s| s
        .boxes
        .iter()
        .any(|b| b.num_pts != 0 && b.ego_dist(s.ego_translation) == cfg.range_of(b.label))));

    let ours_dir = root.join("ours");
    let o = Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args([
            "eval",
            "--predictions",
            res_path.to_str().unwrap(),
            "--dataroot",
            root.to_str().unwrap(),
        ])
        .args([
            "--version",
            version,
            "--split",
            "rand_eval",
            "--no-plots",
            "--out",
            ours_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "altermoma eval failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dk_dir = root.join("devkit");
    devkit(&[
        "eval",
        root.to_str().unwrap(),
        version,
        "rand_eval",
        res_path.to_str().unwrap(),
        dk_dir.to_str().unwrap(),
    ]);

    let ours = read(&ours_dir.join("metrics.json"));
    let theirs = read(&dk_dir.join("metrics_summary.json"));
    let mut worst = 0.0f64;
    compare(
        &metric_part(&ours),
        &metric_part(&theirs),
        &format!("seed {seed}"),
        &mut worst,
    );
    compare(&ours["cfg"], &theirs["cfg"], "cfg", &mut worst);
    assert_eq!(ours["meta"], theirs["meta"]);
    compare(
        &read(&ours_dir.join("metrics_details.json")),
        &read(&dk_dir.join("metrics_details.json")),
        "details",
        &mut worst,
    );
    let map = ours["mean_ap"].as_f64().unwrap();
    assert!(map > 0.1 && map < 0.9, "mAP {map} should be intermediate");
    eprintln!(
        "end to end seed {seed}: mAP {map:.4}, NDS {:.4}, worst |diff| = {worst:e}",
        ours["nd_score"].as_f64().unwrap()
    );
}

#[test]
fn end_to_end_agrees_with_devkit_on_a_random_dataset() {
    end_to_end(
        11,
        DatasetParams {
            scenes: 3,
            samples_per_scene: 10,
            objects_per_scene: 40,
            boxes_per_sample: None,
        },
        false,
    );
}

#[test]
fn end_to_end_agrees_with_devkit_on_a_custom_split() {
    end_to_end(
        12,
        DatasetParams {
            scenes: 5,
            samples_per_scene: 8,
            objects_per_scene: 60,
            boxes_per_sample: None,
        },
        true,
    );
}
