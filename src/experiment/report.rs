//! The study's `report.md`: a table shaped like the paper's Table 1 (mAP / NDS and mIoU per
//! method and sparsity, dense row on top, mean ± std over training seeds), who wins each
//! column, per-group sparsity, scoring cost relative to SNIP, the structured rows with
//! GFLOPs and measured latency; PNG plots of accuracy vs sparsity per method and of per-group
//! sparsity per method.

use crate::model::Group;
use crate::plot::{line_chart, Series};
use crate::pruning::Method;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

use super::results::{mean_std, Accuracy, PrunedResult, Study};

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn ms(xs: &[f64]) -> String {
    let (m, s) = mean_std(xs);
    if m.is_nan() {
        "–".into()
    } else if xs.len() > 1 {
        format!("{} ± {}", pct(m), pct(s))
    } else {
        pct(m)
    }
}

fn sparsity_key(s: f64) -> i64 {
    (s * 1000.0).round() as i64
}

fn metric(a: &Accuracy, which: &str) -> f64 {
    match which {
        "map" => a.map,
        "nds" => a.nds,
        _ => a.miou,
    }
}

/// Methods and sparsities present, in display order.
fn axes(study: &Study) -> (Vec<Method>, Vec<f64>) {
    let methods: BTreeSet<Method> = study.pruned.iter().map(|r| r.method).collect();
    let mut ms: Vec<Method> = Method::ALL
        .iter()
        .copied()
        .filter(|m| methods.contains(m) && *m != Method::Altermoma)
        .collect();
    if methods.contains(&Method::Altermoma) {
        ms.push(Method::Altermoma); // last, as in the paper
    }
    let sp: BTreeSet<i64> = study
        .pruned
        .iter()
        .map(|r| sparsity_key(r.sparsity))
        .collect();
    (ms, sp.into_iter().map(|k| k as f64 / 1000.0).collect())
}

fn cells<'a>(study: &'a Study, m: Method, s: f64) -> Vec<&'a PrunedResult> {
    study
        .pruned
        .iter()
        .filter(|r| r.method == m && sparsity_key(r.sparsity) == sparsity_key(s))
        .collect()
}

/// Mean of a metric for a method at a sparsity (NaN when absent).
pub fn mean_metric(study: &Study, m: Method, s: f64, which: &str) -> f64 {
    let v: Vec<f64> = cells(study, m, s)
        .iter()
        .map(|r| metric(&r.acc, which))
        .collect();
    mean_std(&v).0
}

/// The Table-1-shaped markdown table.
pub fn table1(study: &Study) -> String {
    let (methods, sps) = axes(study);
    let mut s = String::from("| Method |");
    let mut sep = String::from("|---|");
    for sp in &sps {
        s.push_str(&format!(
            " {:.0}% mAP | {:.0}% NDS | {:.0}% mIoU |",
            100.0 * sp,
            100.0 * sp,
            100.0 * sp
        ));
        sep.push_str("---|---|---|");
    }
    s.push('\n');
    s.push_str(&sep);
    s.push('\n');
    let d = |f: fn(&Accuracy) -> f64| -> String {
        ms(&study.dense.iter().map(|r| f(&r.fusion)).collect::<Vec<_>>())
    };
    let (dm, dn, di) = (d(|a| a.map), d(|a| a.nds), d(|a| a.miou));
    s.push_str("| Unpruned |");
    for _ in &sps {
        s.push_str(&format!(" {dm} | {dn} | {di} |"));
    }
    s.push('\n');
    for m in &methods {
        s.push_str(&format!("| {} |", m.label()));
        for sp in &sps {
            let c = cells(study, *m, *sp);
            for which in ["map", "nds", "miou"] {
                let v: Vec<f64> = c.iter().map(|r| metric(&r.acc, which)).collect();
                let best = methods.iter().all(|o| {
                    mean_metric(study, *o, *sp, which) <= mean_metric(study, *m, *sp, which)
                        || mean_metric(study, *o, *sp, which).is_nan()
                });
                if best && !v.is_empty() {
                    s.push_str(&format!(" **{}** |", ms(&v)));
                } else {
                    s.push_str(&format!(" {} |", ms(&v)));
                }
            }
        }
        s.push('\n');
    }
    s
}

/// Whether AlterMOMA's mean beats every other method, per sparsity and metric (cells
/// without results on both sides are left out).
pub fn wins(study: &Study) -> Vec<(f64, &'static str, bool, f64)> {
    let (methods, sps) = axes(study);
    let mut out = Vec::new();
    for sp in &sps {
        for which in ["map", "miou"] {
            let a = mean_metric(study, Method::Altermoma, *sp, which);
            let best_other = methods
                .iter()
                .filter(|m| **m != Method::Altermoma)
                .map(|m| mean_metric(study, *m, *sp, which))
                .filter(|v| !v.is_nan())
                .fold(f64::NEG_INFINITY, f64::max);
            // only where AlterMOMA and at least one baseline have results (a study in progress)
            if a.is_nan() || best_other == f64::NEG_INFINITY {
                continue;
            }
            out.push((*sp, which, a > best_other, a - best_other));
        }
    }
    out
}

/// Full markdown report.
pub fn markdown(study: &Study, command: &str) -> String {
    let (methods, sps) = axes(study);
    let seeds: BTreeSet<u64> = study.dense.iter().map(|d| d.seed).collect();
    let mut s = format!("# Pruning study `{}`\n\nProduced by `{command}`. Held-out synthetic scenes; {} training seed(s) {:?}; values are mean ± sample std over seeds, in percent. Bold: best mean in the column.\n\n", study.name, seeds.len(), seeds);
    s.push_str("## Table 1 (unstructured, after masked fine-tuning)\n\n");
    s.push_str(&table1(study));
    s.push_str(
        "\n![mAP vs sparsity](map_vs_sparsity.png)\n![mIoU vs sparsity](miou_vs_sparsity.png)\n\n",
    );

    s.push_str("## Does AlterMOMA win?\n\n| sparsity | metric | AlterMOMA − best baseline (points) | wins |\n|---|---|---|---|\n");
    for (sp, which, win, margin) in wins(study) {
        s.push_str(&format!(
            "| {:.0}% | {} | {:+.2} | {} |\n",
            100.0 * sp,
            if which == "map" { "mAP" } else { "mIoU" },
            100.0 * margin,
            if win { "yes" } else { "no" }
        ));
    }

    s.push_str("\n## Dense models\n\n| model | mAP | NDS | mIoU |\n|---|---|---|---|\n");
    let controls = study.dense.iter().all(|d| d.camera_control.is_some() && d.lidar_control.is_some());
    let mut rows = vec![("camera only", 0), ("LiDAR only", 1), ("fusion (unpruned)", 2)];
    if controls && !study.dense.is_empty() {
        rows.push(("camera only, trained as long as fusion (control)", 3));
        rows.push(("LiDAR only, trained as long as fusion (control)", 4));
    }
    for (name, f) in rows {
        let pick = |d: &super::results::DenseResult| match f {
            0 => d.camera_only,
            1 => d.lidar_only,
            3 => d.camera_control.unwrap_or(d.camera_only),
            4 => d.lidar_control.unwrap_or(d.lidar_only),
            _ => d.fusion,
        };
        let v = |w: fn(&Accuracy) -> f64| {
            ms(&study.dense.iter().map(|d| w(&pick(d))).collect::<Vec<_>>())
        };
        s.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            v(|a| a.map),
            v(|a| a.nds),
            v(|a| a.miou)
        ));
    }

    s.push_str("\n## Before fine-tuning (right after pruning, mAP / mIoU)\n\n| Method |");
    for sp in &sps {
        s.push_str(&format!(" {:.0}% |", 100.0 * sp));
    }
    s.push_str("\n|---|");
    for _ in &sps {
        s.push_str("---|");
    }
    s.push('\n');
    for m in &methods {
        s.push_str(&format!("| {} |", m.label()));
        for sp in &sps {
            let c = cells(study, *m, *sp);
            let a: Vec<f64> = c.iter().map(|r| r.acc_pruned.map).collect();
            let b: Vec<f64> = c.iter().map(|r| r.acc_pruned.miou).collect();
            s.push_str(&format!(" {} / {} |", ms(&a), ms(&b)));
        }
        s.push('\n');
    }

    s.push_str("\n## Per-group sparsity (one global threshold; mean over seeds)\n\n| Method | sparsity | camera | LiDAR | fusion |\n|---|---|---|---|---|\n");
    for m in &methods {
        for sp in &sps {
            let c = cells(study, *m, *sp);
            if c.is_empty() {
                continue;
            }
            let g = |grp: Group| {
                ms(&c
                    .iter()
                    .map(|r| r.groups.get(&grp).copied().unwrap_or(f64::NAN))
                    .collect::<Vec<_>>())
            };
            s.push_str(&format!(
                "| {} | {:.0}% | {} | {} | {} |\n",
                m.label(),
                100.0 * sp,
                g(Group::Camera),
                g(Group::Lidar),
                g(Group::Fusion)
            ));
        }
    }
    s.push_str("\n![camera](group_sparsity_camera.png)\n![LiDAR](group_sparsity_lidar.png)\n![fusion](group_sparsity_fusion.png)\n");

    s.push_str("\n## Scoring cost\n\n| Method | scoring time (s, mean) | relative to SNIP |\n|---|---|---|\n");
    let snip_t = mean_std(
        &study
            .pruned
            .iter()
            .filter(|r| r.method == Method::Snip)
            .map(|r| r.scoring_seconds)
            .collect::<Vec<_>>(),
    )
    .0;
    for m in &methods {
        let t = mean_std(
            &study
                .pruned
                .iter()
                .filter(|r| r.method == *m)
                .map(|r| r.scoring_seconds)
                .collect::<Vec<_>>(),
        )
        .0;
        s.push_str(&format!(
            "| {} | {:.2} | {:.1}x |\n",
            m.label(),
            t,
            t / snip_t
        ));
    }

    if !study.cell_seconds.is_empty() {
        s.push_str(&cost_section(study));
    }

    if !study.failures.is_empty() {
        s.push_str("\n## Failed cells (retried by the next run)\n\n| cell | error |\n|---|---|\n");
        for (k, e) in &study.failures {
            s.push_str(&format!(
                "| {k} | {} |\n",
                e.replace('|', "/").replace('\n', " ")
            ));
        }
    }

    if !study.structured.is_empty() {
        s.push_str("\n## Structured AlterMOMA (channels removed; physically smaller model)\n\n");
        s.push_str("| Model | mAP | NDS | mIoU | params | GFLOPs | median latency (ms) | speed-up |\n|---|---|---|---|---|---|---|---|\n");
        let dense_lat: Vec<f64> = study
            .structured
            .iter()
            .map(|r| r.latency_dense_ms)
            .collect();
        let d0 = &study.structured[0];
        s.push_str(&format!(
            "| Unpruned | {} | {} | {} | {} | {:.3} | {:.1} | 1.00x |\n",
            ms(&study.dense.iter().map(|d| d.fusion.map).collect::<Vec<_>>()),
            ms(&study.dense.iter().map(|d| d.fusion.nds).collect::<Vec<_>>()),
            ms(&study
                .dense
                .iter()
                .map(|d| d.fusion.miou)
                .collect::<Vec<_>>()),
            d0.params_dense,
            d0.gflops_dense,
            mean_std(&dense_lat).0
        ));
        let sps: BTreeSet<i64> = study
            .structured
            .iter()
            .map(|r| sparsity_key(r.sparsity))
            .collect();
        for k in sps {
            let rows: Vec<_> = study
                .structured
                .iter()
                .filter(|r| sparsity_key(r.sparsity) == k)
                .collect();
            let v = |f: fn(&super::results::StructuredResult) -> f64| {
                rows.iter().map(|r| f(r)).collect::<Vec<f64>>()
            };
            s.push_str(&format!(
                "| AlterMOMA-{:.0}% | {} | {} | {} | {:.0} | {:.3} ({:+.1}%) | {:.1} | {:.2}x |\n",
                k as f64 / 10.0,
                ms(&v(|r| r.acc.map)),
                ms(&v(|r| r.acc.nds)),
                ms(&v(|r| r.acc.miou)),
                mean_std(&v(|r| r.params as f64)).0,
                mean_std(&v(|r| r.gflops)).0,
                100.0 * (mean_std(&v(|r| r.gflops / r.gflops_dense)).0 - 1.0),
                mean_std(&v(|r| r.latency_ms)).0,
                mean_std(&v(|r| r.speedup())).0,
            ));
        }
        s.push_str("\nLatency: median forward time (batch 1, this machine), pruned and dense models timed interleaved in the same run.\n");
    }
    s
}

/// Kind of a cell key `seed<N>/<kind>[_<sparsity>]`: `camera`, `snip`, `structured`, ...
fn cell_kind(key: &str) -> String {
    let tail = key.split_once('/').map(|(_, t)| t).unwrap_or(key);
    match tail.rsplit_once('_') {
        Some((k, sp)) if sp.chars().all(|c| c.is_ascii_digit()) => k.to_string(),
        _ => tail.to_string(),
    }
}

/// Wall time of the cells, per kind: what a re-run or a bigger study costs on this machine.
fn cost_section(study: &Study) -> String {
    let mut per_kind: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for (k, t) in &study.cell_seconds {
        per_kind.entry(cell_kind(k)).or_default().push(*t);
    }
    let total: f64 = study.cell_seconds.values().sum();
    let mut s = String::from(
        "\n## Cost (wall time of the cells, as measured when each was computed)\n\n| cell | count | mean (s) | total (min) |\n|---|---|---|---|\n",
    );
    for (k, v) in &per_kind {
        s.push_str(&format!(
            "| {k} | {} | {:.1} | {:.1} |\n",
            v.len(),
            mean_std(v).0,
            v.iter().sum::<f64>() / 60.0
        ));
    }
    s.push_str(&format!(
        "| **all** | {} | | **{:.1}** |\n\nTraining stages are `camera`, `lidar`, `fusion`; a method cell is pruning + masked fine-tuning + held-out evaluation.\n",
        study.cell_seconds.len(),
        total / 60.0
    ));
    s
}

/// Write `report.md`, `report.json` and the PNG plots into `dir`.
pub fn write(study: &Study, dir: &Path, command: &str) -> Result<()> {
    let (methods, sps) = axes(study);
    crate::io::write_json(dir.join("report.json"), study)?;
    crate::io::atomic_write(dir.join("report.md"), markdown(study, command).as_bytes())?;
    for (which, label, file) in [
        ("map", "mAP (%)", "map_vs_sparsity.png"),
        ("miou", "mIoU (%)", "miou_vs_sparsity.png"),
    ] {
        let mut series = Vec::new();
        let dense = mean_std(
            &study
                .dense
                .iter()
                .map(|d| metric(&d.fusion, which))
                .collect::<Vec<_>>(),
        )
        .0;
        if !dense.is_nan() && !sps.is_empty() {
            series.push(Series::new(
                "Unpruned",
                sps.iter().map(|s| (100.0 * s, 100.0 * dense)).collect(),
            ));
        }
        for m in &methods {
            let pts: Vec<(f64, f64)> = sps
                .iter()
                .map(|s| (100.0 * s, 100.0 * mean_metric(study, *m, *s, which)))
                .filter(|p| !p.1.is_nan())
                .collect();
            series.push(Series::new(m.label(), pts));
        }
        line_chart(
            dir.join(file),
            &format!("{} vs sparsity (after fine-tuning)", label),
            "sparsity (%)",
            label,
            &series,
            false,
        )?;
    }
    // Per-group sparsity: one chart per group, one line per method over the target sparsity.
    for g in Group::ALL {
        let series: Vec<Series> = methods
            .iter()
            .map(|m| {
                let pts = sps
                    .iter()
                    .filter_map(|sp| {
                        let c = cells(study, *m, *sp);
                        let v = mean_std(
                            &c.iter()
                                .filter_map(|r| r.groups.get(&g).copied())
                                .collect::<Vec<_>>(),
                        )
                        .0;
                        (!v.is_nan()).then_some((100.0 * sp, 100.0 * v))
                    })
                    .collect();
                Series::new(m.label(), pts)
            })
            .collect();
        line_chart(
            dir.join(format!("group_sparsity_{}.png", g.name())),
            &format!("{} sparsity per method (one global threshold)", g.name()),
            "target sparsity (%)",
            &format!("{} weights pruned (%)", g.name()),
            &series,
            false,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::results::{DenseResult, StructuredResult};
    use super::*;

    fn acc(x: f64) -> Accuracy {
        Accuracy {
            map: x,
            nds: x + 0.05,
            miou: x - 0.05,
        }
    }

    #[test]
    fn report_has_table_wins_and_plots() {
        let mut st = Study {
            name: "t".into(),
            ..Default::default()
        };
        for seed in [0, 1] {
            st.dense.push(DenseResult {
                seed,
                fusion: acc(0.6),
                camera_only: acc(0.2),
                lidar_only: acc(0.5),
                camera_control: Some(acc(0.25)),
                lidar_control: Some(acc(0.55 + 0.01 * seed as f64)),
                params: 100,
                gflops: 1.0,
            });
            for (i, m) in [Method::Snip, Method::Altermoma, Method::Imp]
                .into_iter()
                .enumerate()
            {
                for sp in [0.8, 0.9] {
                    st.pruned.push(PrunedResult {
                        method: m,
                        sparsity: sp,
                        seed,
                        acc: acc(0.5 - 0.1 * sp + 0.01 * i as f64 + 0.001 * seed as f64),
                        acc_pruned: acc(0.1),
                        achieved: sp,
                        groups: Group::ALL.iter().map(|g| (*g, sp)).collect(),
                        scoring_seconds: 1.0 + i as f64,
                        finetune_seconds: 3.0,
                        mask_violations: 0,
                    });
                }
            }
            st.structured.push(StructuredResult {
                seed,
                sparsity: 0.5,
                acc: acc(0.59),
                params: 40,
                params_dense: 100,
                gflops: 0.4,
                gflops_dense: 1.0,
                latency_ms: 10.0,
                latency_dense_ms: 15.0,
                widths: std::collections::BTreeMap::new(),
            });
        }
        st.cell_seconds.insert("seed0/camera".into(), 10.0);
        st.cell_seconds.insert("seed0/snip_080".into(), 4.0);
        st.cell_seconds.insert("seed1/snip_090".into(), 8.0);
        assert_eq!(cell_kind("seed1/structured_050"), "structured");
        assert_eq!(cell_kind("seed0/camera"), "camera");
        let md = markdown(&st, "altermoma experiment --config x");
        assert!(md.contains("| snip | 2 | 6.0 | 0.2 |"), "{md}");
        assert!(md.contains("| **all** | 3 | | **0.4** |"), "{md}");
        assert!(md.contains("| Unpruned | 60.0 ± 0.0 |"), "{md}");
        assert!(md.contains("| LiDAR only, trained as long as fusion (control) | 55.5 ± 0.7 |"), "{md}");
        assert!(md.contains("| camera only, trained as long as fusion (control) | 25.0 ± 0.0 |"), "{md}");
        // a study in progress: no baseline yet at a sparsity, no verdict there
        let mut partial = st.clone();
        partial.pruned.retain(|p| p.method == Method::Altermoma || p.sparsity < 0.85);
        assert!(wins(&partial).iter().all(|w| w.0 < 0.85), "{:?}", wins(&partial));
        assert_eq!(wins(&partial).len(), 2);
        // IMP (i = 2) has the best numbers here, so AlterMOMA does not win.
        assert!(md.contains("| IMP | **"), "{md}");
        assert!(wins(&st).iter().all(|w| !w.2));
        assert!(md.contains("AlterMOMA-50%") && md.contains("1.50x"), "{md}");
        assert!(md.contains("| AlterMOMA | 2.00 | 2.0x |"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        write(&st, dir.path(), "x").unwrap();
        for f in [
            "report.md",
            "report.json",
            "map_vs_sparsity.png",
            "miou_vs_sparsity.png",
            "group_sparsity_camera.png",
            "group_sparsity_lidar.png",
            "group_sparsity_fusion.png",
        ] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
    }
}
