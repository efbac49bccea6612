//! End-to-end smoke test of `altermoma demo` with the seconds-scale `micro` config: every
//! step on the real library code (data, training, pruning, fine-tuning, evaluation, bag,
//! replay through the node's pipeline, report), then a re-run that reuses every step.

use altermoma::demo::report::PLOTS;
use altermoma::demo::steps::StepStatus;
use altermoma::demo::{DemoConfig, DemoOptions};
use std::path::Path;

fn micro() -> DemoConfig {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/micro.yaml");
    DemoConfig::load(&p).unwrap()
}

#[test]
fn demo_runs_end_to_end_and_reruns_reuse_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo_out");
    let opts = DemoOptions {
        out: out.clone(),
        config: micro(),
        config_source: "config/demo/micro.yaml".into(),
        command: "altermoma demo --config config/demo/micro.yaml".into(),
    };
    let r = altermoma::demo::run(&opts).unwrap();

    // Three models, in order, with finite accuracy, size and cost.
    let names: Vec<&str> = r.eval.rows.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["dense", "altermoma", "snip"]);
    for row in &r.eval.rows {
        for v in [
            row.acc.map,
            row.acc.nds,
            row.acc.miou,
            row.gflops,
            row.gflops_dense,
        ] {
            assert!(v.is_finite(), "{row:?}");
        }
        assert!(row.params > 0);
    }
    let dense = &r.eval.rows[0];
    assert_eq!(dense.sparsity, 0.0);
    assert!((dense.gflops - dense.gflops_dense).abs() < 1e-9);
    for row in &r.eval.rows[1..] {
        assert!((row.sparsity - 0.8).abs() < 0.02, "{row:?}");
        assert!(row.params < dense.params);
        assert!(row.gflops < dense.gflops);
    }
    for p in &r.pruned {
        assert!((p.achieved - 0.8).abs() < 0.02, "{p:?}");
    }
    // Replay: every held-out frame through the node pipeline for each model, finite latency.
    assert_eq!(r.bag.frames, 3);
    let replayed: Vec<&str> = r.replay.rows.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(replayed, ["dense", "altermoma", "snip"]);
    for l in &r.replay.rows {
        assert_eq!(l.frames, 3, "{l:?}");
        assert_eq!(l.failed, 0);
        for v in [
            l.p50_ms,
            l.p99_ms,
            l.mean_ms,
            l.network_p50_ms,
            l.map,
            l.nds,
        ] {
            assert!(v.is_finite() && v >= 0.0, "{l:?}");
        }
        assert!(l.p99_ms >= l.p50_ms);
    }

    // The report: the table with all rows, finite numbers, the plots.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let table = altermoma::demo::report::final_table(&r);
    assert!(md.contains(&table));
    let rows: Vec<&str> = table.lines().skip(2).collect();
    assert_eq!(rows.len(), 3, "{table}");
    for line in &rows {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 9, "{line}");
        for c in &cells[1..] {
            let v: f64 = c.parse().unwrap_or_else(|_| panic!("`{c}` in `{line}`"));
            assert!(v.is_finite());
        }
    }
    for p in PLOTS {
        let bytes = std::fs::read(out.join(p)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{p}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["eval"]["rows"].as_array().unwrap().len(), 3);
    assert_eq!(r.steps.len(), altermoma::demo::flow::STEP_NAMES.len());
    assert!(r.steps.iter().all(|s| s.status == StepStatus::Computed));

    // Re-run: every step reused, same numbers.
    let r2 = altermoma::demo::run(&opts).unwrap();
    assert!(
        r2.steps.iter().all(|s| s.status == StepStatus::Reused),
        "{:?}",
        r2.steps
    );
    assert_eq!(
        serde_json::to_value(&r2.eval).unwrap(),
        serde_json::to_value(&r.eval).unwrap()
    );

    // A changed fine-tuning setting reruns fine-tuning and what follows, nothing before.
    let mut changed = opts.clone();
    changed.config.finetune.steps += 1;
    let r3 = altermoma::demo::run(&changed).unwrap();
    let st: Vec<(&str, StepStatus)> = r3
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    let first_rerun = st
        .iter()
        .position(|(_, s)| *s != StepStatus::Reused)
        .unwrap();
    assert_eq!(st[first_rerun].0, "finetune-altermoma", "{st:?}");
    assert!(
        st[first_rerun..]
            .iter()
            .all(|(_, s)| *s == StepStatus::Computed),
        "{st:?}"
    );
}
