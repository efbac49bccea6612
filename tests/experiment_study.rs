//! The study runner end to end on the seconds-scale `smoke` study (same code path as `tiny`):
//! pre-training, fusion, two methods at 80%, masked fine-tuning, held-out evaluation, a
//! structured row with latency; `report.md` with Table 1, the cost section and the plots;
//! a second run resumes every finished cell instead of recomputing it; config errors name
//! the file and the field.

use altermoma::experiment::config::ExperimentConfig;
use altermoma::experiment::runner::Runner;
use altermoma::pruning::Method;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

fn cell_times(dir: &Path) -> BTreeMap<String, SystemTime> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("cells/seed0")).unwrap() {
        let e = e.unwrap();
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            e.metadata().unwrap().modified().unwrap(),
        );
    }
    out
}

#[test]
fn smoke_study_runs_reports_and_resumes() {
    let cfg: ExperimentConfig =
        altermoma::config::load_yaml("config/experiments/smoke.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let study = Runner::new(cfg.clone(), &out, "test".into())
        .unwrap()
        .run()
        .unwrap();
    assert!(study.failures.is_empty(), "{:?}", study.failures);
    assert_eq!(study.dense.len(), 1);
    assert_eq!(study.pruned.len(), 2);
    for r in &study.pruned {
        assert!([Method::Snip, Method::Altermoma].contains(&r.method));
        assert!((r.achieved - 0.8).abs() < 1e-3, "achieved {}", r.achieved);
        assert_eq!(r.mask_violations, 0, "pruned weights moved in fine-tuning");
        assert!(r.acc.miou.is_finite() && r.acc.map >= 0.0);
    }
    assert_eq!(study.structured.len(), 1);
    let st = &study.structured[0];
    assert!(st.params < st.params_dense && st.gflops < st.gflops_dense);
    assert!(st.latency_ms > 0.0 && st.latency_dense_ms > 0.0);
    // Every cell's wall time is in the study: 3 training stages + 2 methods + 1 structured.
    assert_eq!(study.cell_seconds.len(), 6, "{:?}", study.cell_seconds);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for want in [
        "| Unpruned |",
        "| SNIP |",
        "| AlterMOMA |",
        "AlterMOMA-50%",
        "## Cost",
        "relative to SNIP",
    ] {
        assert!(md.contains(want), "report.md lacks {want:?}:\n{md}");
    }
    for f in [
        "map_vs_sparsity.png",
        "miou_vs_sparsity.png",
        "group_sparsity_camera.png",
        "runs/seed0/altermoma_080/report.md",
        "runs/seed0/altermoma_080/sparsity.png",
        "runs/seed0/structured_050/structured_finetuned.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }

    // Resume: nothing is recomputed, the results are the stored ones.
    let before = cell_times(&out);
    let again = Runner::new(cfg, &out, "test".into())
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(cell_times(&out), before, "a finished cell was recomputed");
    assert_eq!(again.pruned.len(), 2);
    for (a, b) in study.pruned.iter().zip(&again.pruned) {
        assert_eq!(a.method, b.method);
        assert!((a.acc.miou - b.acc.miou).abs() < 1e-12 && (a.acc.map - b.acc.map).abs() < 1e-12);
    }
    assert_eq!(again.cell_seconds, study.cell_seconds);
}

#[test]
fn study_config_errors_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("config/experiments/smoke.yaml")
        .unwrap()
        .replace("seeds: [0]", "seeds: [0, 0]");
    let p = dir.path().join("dup.yaml");
    std::fs::write(&p, text).unwrap();
    let e = altermoma::config::load_yaml::<ExperimentConfig>(&p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dup.yaml") && e.contains("seeds"), "{e}");

    let text = std::fs::read_to_string("config/experiments/tiny.yaml")
        .unwrap()
        .replace("methods: [altermoma,", "methods: [altermomma,");
    let p = dir.path().join("typo.yaml");
    std::fs::write(&p, text).unwrap();
    let e = altermoma::config::load_yaml::<ExperimentConfig>(&p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("typo.yaml") && e.contains("altermomma"), "{e}");
}

#[test]
fn shipped_study_configs_load() {
    for name in ["smoke", "cpu_short", "tiny"] {
        let p = format!("config/experiments/{name}.yaml");
        let c: ExperimentConfig =
            altermoma::config::load_yaml(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(c.name, name);
        assert!(c.data.train.seed != c.data.test.seed);
    }
}
