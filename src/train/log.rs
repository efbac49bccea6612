//! Training logs: one row per logged step, written as CSV and plotted as a PNG loss curve
//! (both atomically, rewritten from the full history so a resumed run's files are whole).

use crate::plot::{line_chart, Series};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub step: usize,
    pub lr: f64,
    /// Mean training loss over the steps since the previous row.
    pub loss: f64,
    pub heatmap: f64,
    pub bbox: f64,
    pub seg: f64,
    pub grad_norm: f64,
    /// Validation loss when evaluated at this step.
    pub val_loss: Option<f64>,
    /// Seconds of training so far (this process and the ones before a resume).
    pub elapsed_s: f64,
}

pub fn write_csv(path: impl AsRef<Path>, rows: &[LogRow]) -> Result<()> {
    let mut s = String::from("step,lr,loss,heatmap,bbox,seg,grad_norm,val_loss,elapsed_s\n");
    for r in rows {
        s.push_str(&format!(
            "{},{:.6e},{:.6},{:.6},{:.6},{:.6},{:.4},{},{:.1}\n",
            r.step,
            r.lr,
            r.loss,
            r.heatmap,
            r.bbox,
            r.seg,
            r.grad_norm,
            r.val_loss.map(|v| format!("{v:.6}")).unwrap_or_default(),
            r.elapsed_s
        ));
    }
    crate::io::atomic_write(path, s.as_bytes())
}

pub fn plot_loss(path: impl AsRef<Path>, title: &str, rows: &[LogRow]) -> Result<()> {
    let mut series = vec![
        Series::new(
            "train loss",
            rows.iter().map(|r| (r.step as f64, r.loss)).collect(),
        ),
        Series::new(
            "heatmap",
            rows.iter().map(|r| (r.step as f64, r.heatmap)).collect(),
        ),
        Series::new(
            "box",
            rows.iter().map(|r| (r.step as f64, r.bbox)).collect(),
        ),
        Series::new("seg", rows.iter().map(|r| (r.step as f64, r.seg)).collect()),
    ];
    let val: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.val_loss.map(|v| (r.step as f64, v)))
        .collect();
    if !val.is_empty() {
        series.push(Series::new("validation loss", val));
    }
    line_chart(path, title, "step", "loss", &series, true)
}
