//! The demo's final table (printed and in `report.md`), `results.json` and PNG plots:
//! accuracy (mAP, NDS, mIoU), replay latency (p50, p99), size (parameters, GFLOPs) and the
//! wall time of every step.

use crate::plot::bar_chart;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

use super::results::{DemoResults, LatencyRow, ModelRow};

/// Plot files written next to `report.md`.
pub const PLOTS: [&str; 4] = [
    "plots/accuracy.png",
    "plots/latency.png",
    "plots/size.png",
    "plots/steps.png",
];

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", 100.0 * x)
    } else {
        "–".into()
    }
}

fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

fn latency<'a>(r: &'a DemoResults, name: &str) -> Option<&'a LatencyRow> {
    r.replay.rows.iter().find(|l| l.name == name)
}

fn label(r: &DemoResults, row: &ModelRow) -> String {
    if row.name == "dense" {
        "dense (fused)".into()
    } else {
        format!("{} {:.0} %", row.name, 100.0 * r.sparsity)
    }
}

/// The final table: dense vs pruned models (markdown; also readable in a terminal).
pub fn final_table(r: &DemoResults) -> String {
    let mut s = String::from(
        "| model | sparsity | mAP | NDS | mIoU | params (M) | GFLOPs | p50 ms | p99 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &r.eval.rows {
        let lat = latency(r, &row.name);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            label(r, row),
            pct(row.sparsity),
            pct(row.acc.map),
            pct(row.acc.nds),
            pct(row.acc.miou),
            num(row.params as f64 / 1e6, 3),
            num(row.gflops, 3),
            lat.map_or("–".into(), |l| num(l.p50_ms, 1)),
            lat.map_or("–".into(), |l| num(l.p99_ms, 1)),
        );
    }
    s
}

fn steps_table(r: &DemoResults) -> String {
    let mut s = String::from("| step | status | wall time (s) |\n|---|---|---:|\n");
    for st in &r.steps {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} |",
            st.name,
            st.status.label(),
            st.seconds
        );
    }
    let total: f64 = r.steps.iter().map(|s| s.seconds).sum();
    let _ = writeln!(s, "| **all steps** | | **{total:.1}** |");
    s
}

/// The whole `report.md`.
pub fn markdown(r: &DemoResults) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# AlterMOMA demo: `{}`\n", r.name);
    let _ = writeln!(
        s,
        "Command: `{}` (config: {}). This run: {:.1} s wall time; the steps' own times \
         (including those reused from earlier runs) are listed below.\n",
        r.command, r.config_source, r.wall_s
    );
    let _ = writeln!(
        s,
        "Synthetic world: {} training frames (seed-split), {} held-out frames from a different \
         generator seed. All metrics are on the held-out frames. Accuracy in %: nuScenes mAP and \
         NDS (the devkit's definitions), BEV map mIoU. Params: nonzero parameters. GFLOPs: per \
         frame, counting only multiply-accumulates with nonzero weights (each model part \
         scaled by the share of its weights kept; the dense kernels run all of them). Latency: \
         the node's per-frame pipeline (decode, voxelise, network, post-process, message \
         building) replaying the bag of the held-out scenes, dense and pruned interleaved, on {}.\n",
        r.data.train_frames, r.data.test_frames, r.replay.device
    );
    s += "## Dense vs pruned\n\n";
    s += &final_table(r);
    s += "\n![accuracy](plots/accuracy.png)\n![latency](plots/latency.png)\n![size](plots/size.png)\n\n";
    s += "Unstructured (weight-level) pruning makes the model sparse, not smaller in memory \
          layout: dense CPU/GPU kernels still multiply the zeros, so latency stays close to the \
          dense model's. The GFLOPs column is what sparse kernels or structured pruning \
          (`altermoma prune --granularity channel`) turn into speed.\n\n";
    s += "## Training stages (held-out, under each stage's modality)\n\n";
    s += "| model | steps | final loss | mAP | NDS | mIoU |\n|---|---:|---:|---:|---:|---:|\n";
    for (name, t) in [
        ("camera-only", &r.camera),
        ("LiDAR-only", &r.lidar),
        ("fused", &r.fusion),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {} | {:.3} | {} | {} | {} |",
            t.steps,
            t.final_loss,
            pct(t.acc.map),
            pct(t.acc.nds),
            pct(t.acc.miou)
        );
    }
    s += "\n## Pruning\n\n";
    s += "| method | achieved sparsity | camera | LiDAR | fusion | scoring s | mAP before fine-tuning | NDS before | mIoU before |\n\
          |---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for p in &r.pruned {
        let g = |grp| p.groups.get(&grp).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
            p.method.name(),
            pct(p.achieved),
            pct(g(crate::model::Group::Camera)),
            pct(g(crate::model::Group::Lidar)),
            pct(g(crate::model::Group::Fusion)),
            p.scoring_seconds,
            pct(p.acc_pruned.map),
            pct(p.acc_pruned.nds),
            pct(p.acc_pruned.miou)
        );
    }
    s += "\n## Replay of the bag through the node's pipeline\n\n";
    let _ = writeln!(
        s,
        "Bag: {} frames, {} messages, {:.1} MB, {:.1} s recorded.\n",
        r.bag.frames, r.bag.messages, r.bag.megabytes, r.bag.duration_s
    );
    s += "| model | frames | p50 ms | p99 ms | mean ms | network p50 ms | replayed mAP | replayed NDS |\n\
          |---|---:|---:|---:|---:|---:|---:|---:|\n";
    for l in &r.replay.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            l.name,
            l.frames,
            num(l.p50_ms, 1),
            num(l.p99_ms, 1),
            num(l.mean_ms, 1),
            num(l.network_p50_ms, 1),
            pct(l.map),
            pct(l.nds)
        );
    }
    s += "\n## Steps\n\n";
    s += &steps_table(r);
    s += "\n![steps](plots/steps.png)\n\nRe-running the same command reuses every finished \
          step; a changed setting reruns that step and the ones after it.\n";
    s
}

/// Write `report.md`, `results.json` and the plots under `out`.
pub fn write(r: &DemoResults, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out.join("plots"))?;
    crate::io::write_json(out.join("results.json"), r)?;
    let rows = &r.eval.rows;
    let names: Vec<String> = rows.iter().map(|row| label(r, row)).collect();
    let metrics = ["mAP", "NDS", "mIoU"].map(String::from).to_vec();
    let acc: Vec<(String, Vec<f64>)> = rows
        .iter()
        .zip(&names)
        .map(|(row, n)| {
            (
                n.clone(),
                [row.acc.map, row.acc.nds, row.acc.miou]
                    .iter()
                    .map(|v| 100.0 * if v.is_finite() { *v } else { 0.0 })
                    .collect(),
            )
        })
        .collect();
    bar_chart(
        out.join(PLOTS[0]),
        "Held-out accuracy: dense vs pruned",
        "%",
        &metrics,
        &acc,
    )?;
    let lat: Vec<(String, Vec<f64>)> = r
        .replay
        .rows
        .iter()
        .map(|l| (l.name.clone(), vec![l.p50_ms, l.p99_ms]))
        .collect();
    bar_chart(
        out.join(PLOTS[1]),
        &format!(
            "Per-frame latency, node pipeline replay ({})",
            r.replay.device
        ),
        "ms",
        &["p50".to_string(), "p99".to_string()],
        &lat,
    )?;
    bar_chart(
        out.join(PLOTS[2]),
        "Model size: nonzero parameters and GFLOPs",
        "M params / GFLOPs",
        &names,
        &[
            (
                "params (M)".into(),
                rows.iter().map(|x| x.params as f64 / 1e6).collect(),
            ),
            ("GFLOPs".into(), rows.iter().map(|x| x.gflops).collect()),
        ],
    )?;
    bar_chart(
        out.join(PLOTS[3]),
        "Wall time per step",
        "s",
        &r.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        &[(
            "seconds".into(),
            r.steps.iter().map(|s| s.seconds).collect(),
        )],
    )?;
    crate::io::atomic_write(out.join("report.md"), markdown(r).as_bytes())?;
    Ok(())
}
