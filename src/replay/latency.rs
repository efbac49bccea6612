//! Latency statistics of a replay: percentiles of every pipeline stage, of the whole frame,
//! of arrival-to-output and of end-to-end latency, plus throughput and drops.

use super::processor::STAGES;
use crate::pipeline::StageTimings;
use super::run::ReplayRun;
use serde::Serialize;

/// Summary of one series of milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// `q`-quantile (0..=1) of sorted values by linear interpolation (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

impl Percentiles {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self { count: 0, mean: f64::NAN, p50: f64::NAN, p90: f64::NAN, p99: f64::NAN, max: f64::NAN };
        }
        v.sort_by(|a, b| a.total_cmp(b));
        Self {
            count: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: quantile(&v, 0.5),
            p90: quantile(&v, 0.9),
            p99: quantile(&v, 0.99),
            max: *v.last().expect("non-empty"),
        }
    }
}

/// Latency of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyStats {
    /// Per stage, [`STAGES`] order.
    pub stages: Vec<(String, Percentiles)>,
    /// Sum of the stages per frame.
    pub total: Percentiles,
    /// Cloud arrival to outputs.
    pub arrival_to_output: Percentiles,
    /// Output minus cloud stamp (recorded transport included).
    pub end_to_end: Percentiles,
    pub frames: usize,
    pub dropped: u64,
    pub failed: usize,
    /// Frames per second of pipeline time (1000 / mean total).
    pub pipeline_fps: f64,
    /// Share of frame time outside the network forward (receive, decode, voxelise,
    /// post-process, publish).
    pub outside_network_share: f64,
    /// Frames per mode.
    pub modes: Vec<(String, usize)>,
}

impl LatencyStats {
    pub fn of(run: &ReplayRun) -> Self {
        let stages = STAGES
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), Percentiles::of(run.frames.iter().map(|f| f.stages_ms[i]))))
            .collect();
        let total = Percentiles::of(run.frames.iter().map(|f| f.stages_ms.iter().sum()));
        let net: f64 = run.frames.iter().map(|f| StageTimings::from_array(f.stages_ms).network()).sum();
        let all: f64 = run.frames.iter().map(|f| f.stages_ms.iter().sum::<f64>()).sum();
        let mut modes: Vec<(String, usize)> = Vec::new();
        for f in &run.frames {
            match modes.iter_mut().find(|(m, _)| *m == f.mode) {
                Some((_, n)) => *n += 1,
                None => modes.push((f.mode.clone(), 1)),
            }
        }
        Self {
            stages,
            total,
            arrival_to_output: Percentiles::of(run.frames.iter().map(|f| f.latency_ms)),
            end_to_end: Percentiles::of(run.frames.iter().map(|f| f.e2e_ms)),
            frames: run.frames.len(),
            dropped: run.dropped,
            failed: run.failed.len(),
            pipeline_fps: if total.mean > 0.0 { 1000.0 / total.mean } else { f64::NAN },
            outside_network_share: if all > 0.0 { 1.0 - net / all } else { f64::NAN },
            modes,
        }
    }

    /// Markdown table of the stages and totals.
    pub fn markdown(&self) -> String {
        let mut s =
            String::from("| stage | mean ms | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n");
        let row = |name: &str, p: &Percentiles| {
            format!("| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n", p.mean, p.p50, p.p90, p.p99, p.max)
        };
        for (n, p) in &self.stages {
            s += &row(n, p);
        }
        s += &row("**total (sum of stages)**", &self.total);
        s += &row("arrival to output", &self.arrival_to_output);
        s += &row("end to end (stamp to output)", &self.end_to_end);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        let v: Vec<f64> = (1..=10).map(|x| x as f64).collect();
        // numpy.percentile(range(1, 11), [50, 90, 99]) = 5.5, 9.1, 9.91
        assert!((quantile(&v, 0.5) - 5.5).abs() < 1e-12);
        assert!((quantile(&v, 0.9) - 9.1).abs() < 1e-12);
        assert!((quantile(&v, 0.99) - 9.91).abs() < 1e-12);
        let p = Percentiles::of([3.0, f64::NAN, 1.0, 2.0]);
        assert_eq!((p.count, p.p50, p.max, p.mean), (3, 2.0, 3.0, 2.0));
        assert_eq!(Percentiles::of([]).count, 0);
    }
}
