//! `altermoma bench metrics`: our nuScenes detection evaluation against the official
//! nuscenes-devkit on the same input, side by side in one run.
//!
//! A random nuScenes-layout dataset (tables only) and a results file with exactly `--boxes`
//! predictions per sample are written to a work folder; then both implementations evaluate
//! the file against the dataset on the same custom split, stage by stage: loading the
//! tables, loading + checking + filtering ground truth and predictions, and the evaluation
//! proper (matching, curves, AP, TP errors). The numbers of both are compared (|diff| <= 1e-6).

use crate::data::nuscenes_tables::NuScenesTables;
use crate::metrics::random_cases::{random_dataset, write_dataset, DatasetParams};
use crate::metrics::{evaluate_detections, DetectionConfig, DetectionResults, GroundTruth, Split};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of samples (nuScenes val has 6019).
    #[arg(long, default_value_t = 6000)]
    pub samples: usize,
    /// Predicted boxes per sample (the format's maximum is 500).
    #[arg(long, default_value_t = 500)]
    pub boxes: usize,
    /// Tracked objects per scene of 40 samples (100 gives about 35 annotations per sample).
    #[arg(long, default_value_t = 100)]
    pub objects_per_scene: usize,
    /// Random seed of the generated input.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Work folder for the dataset and results file (default: a temporary folder).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Only time our implementation.
    #[arg(long)]
    pub skip_devkit: bool,
}

fn devkit_script() -> PathBuf {
    let local = PathBuf::from("tests/python/devkit_eval.py");
    if local.exists() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/devkit_eval.py")
    }
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

pub fn run(a: Args) -> Result<()> {
    if a.samples == 0 || a.boxes == 0 {
        bail!("--samples and --boxes must be positive");
    }
    let tmp = tempfile::tempdir()?;
    let root = a
        .workdir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let version = "v1.0-bench";
    let per_scene = 40usize.min(a.samples);
    let scenes = a.samples.div_ceil(per_scene);
    println!(
        "generating {} samples ({scenes} scenes) x {} boxes in {}",
        scenes * per_scene,
        a.boxes,
        root.display()
    );
    let t = Instant::now();
    let ds = random_dataset(
        a.seed,
        &DatasetParams {
            scenes,
            samples_per_scene: per_scene,
            objects_per_scene: a.objects_per_scene,
            boxes_per_sample: Some(a.boxes),
        },
    );
    write_dataset(
        &root,
        version,
        &ds.tables,
        &[("bench", ds.scene_names.clone())],
    )?;
    let results_path = root.join("results.json");
    ds.results.save(&results_path)?;
    let size_mb = std::fs::metadata(&results_path)?.len() as f64 / 1e6;
    println!(
        "  {} GT annotations, {} predicted boxes, results file {size_mb:.0} MB (generated in {:.1} s)",
        ds.tables.sample_annotation.len(),
        ds.results.num_boxes(),
        secs(t)
    );
    drop(ds);

    // ours, stage by stage (the same work `altermoma eval` does)
    let cfg = DetectionConfig::cvpr_2019();
    let t_all = Instant::now();
    let t = Instant::now();
    let tables = NuScenesTables::load(&root, version)?;
    let ours_tables = secs(t);
    let t = Instant::now();
    let split = Split::from_splits_file(&root, version, "bench")?;
    let gt = GroundTruth::from_tables(&tables, &split)?;
    drop(tables);
    let t_res = Instant::now();
    let mut preds = DetectionResults::load(&results_path)?;
    tracing::info!("results file parsed and validated in {:.2} s", secs(t_res));
    preds.check_samples(&gt.sample_tokens(), cfg.max_boxes_per_sample)?;
    preds.reorder_to(&gt.sample_tokens())?;
    let ours_load = secs(t);
    let t = Instant::now();
    let m = evaluate_detections(&gt, &preds, &cfg)?;
    let ours_eval_with_filter = secs(t);
    let ours_eval = m.eval_time;
    let ours_total = secs(t_all);
    drop(preds);
    println!("ours:   mAP {:.6}  NDS {:.6}", m.mean_ap(), m.nd_score());

    let mut rows = vec![
        ("load tables", ours_tables, None),
        ("load + check GT and predictions", ours_load, None),
        ("filter + evaluate", ours_eval_with_filter, None),
        ("total", ours_total, None),
    ];
    if !a.skip_devkit {
        let python = std::env::var("ALTERMOMA_TOOLS_PYTHON").context(
            "ALTERMOMA_TOOLS_PYTHON is not set (source .deps/env.sh), or pass --skip-devkit",
        )?;
        let out = root.join("devkit_out");
        println!("running the nuscenes-devkit (this can take minutes) ...");
        let t = Instant::now();
        let o = std::process::Command::new(&python)
            .arg(devkit_script())
            .args([
                "eval",
                root.to_str().unwrap(),
                version,
                "bench",
                results_path.to_str().unwrap(),
            ])
            .arg(&out)
            .output()
            .context("running the devkit script")?;
        if !o.status.success() {
            bail!(
                "the devkit run failed ({}):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let wall = secs(t);
        let timing: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("timing.json"))?)?;
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("metrics_summary.json"))?)?;
        let g = |k: &str| timing[k].as_f64().unwrap_or(f64::NAN);
        let dk_map = summary["mean_ap"].as_f64().unwrap_or(f64::NAN);
        let dk_nds = summary["nd_score"].as_f64().unwrap_or(f64::NAN);
        println!("devkit: mAP {dk_map:.6}  NDS {dk_nds:.6}  (process wall time {wall:.1} s)");
        let agree = (dk_map - m.mean_ap()).abs() <= 1e-6 && (dk_nds - m.nd_score()).abs() <= 1e-6;
        println!("metrics agree within 1e-6: {agree}");
        rows[0].2 = Some(g("load_tables"));
        rows[1].2 = Some(g("load_and_filter"));
        rows[2].2 = Some(g("evaluate"));
        rows[3].2 = Some(g("load_tables") + g("total_without_tables"));
        // the devkit filters while loading; compare the evaluation proper separately
        println!("\n| stage | ours (s) | devkit (s) | devkit / ours |");
        println!("|---|---|---|---|");
        for (name, ours, dk) in &rows {
            let dk = dk.unwrap();
            println!("| {name} | {ours:.2} | {dk:.2} | {:.1}x |", dk / ours);
        }
        println!(
            "| evaluate only (matching, curves, AP, TP) | {ours_eval:.2} | {:.2} | {:.1}x |",
            g("evaluate"),
            g("evaluate") / ours_eval
        );
        println!(
            "\nOur filter runs inside `filter + evaluate`; the devkit's inside its load stage. \
             Threads: {} (rayon).",
            rayon::current_num_threads()
        );
    } else {
        println!("\n| stage | ours (s) |\n|---|---|");
        for (name, ours, _) in &rows {
            println!("| {name} | {ours:.2} |");
        }
        println!("| evaluate only | {ours_eval:.2} |");
    }
    Ok(())
}
