//! The node's health: input rates, rejected messages, drops, masked sensors, mode, device;
//! published as `diagnostic_msgs/DiagnosticArray` on `/diagnostics` (periodically, and at
//! once when something went wrong) and as `altermoma_msgs/ProcessingTime` per frame.

use super::convert::ConvertError;
use crate::model::ModalityMask;
use crate::pipeline::StageTimings;
use r2r::altermoma_msgs::msg::ProcessingTime;
use r2r::diagnostic_msgs::msg::{DiagnosticArray, DiagnosticStatus, KeyValue};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// diagnostic_msgs/DiagnosticStatus levels.
pub mod level {
    pub const OK: u8 = 0;
    pub const WARN: u8 = 1;
    pub const ERROR: u8 = 2;
}

/// Message rate over a sliding window.
#[derive(Clone, Debug)]
pub struct RateMeter {
    window: Duration,
    times: VecDeque<Instant>,
}

impl RateMeter {
    pub fn new(window: Duration) -> Self {
        Self { window, times: VecDeque::new() }
    }
    pub fn tick(&mut self, now: Instant) {
        self.times.push_back(now);
        self.trim(now);
    }
    fn trim(&mut self, now: Instant) {
        while self.times.front().is_some_and(|t| now.duration_since(*t) > self.window) {
            self.times.pop_front();
        }
    }
    /// Messages per second over the window ending now.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.trim(now);
        self.times.len() as f64 / self.window.as_secs_f64()
    }
}

/// Counters of one input topic.
#[derive(Clone, Debug)]
pub struct TopicStats {
    pub topic: String,
    pub received: u64,
    pub rejected: u64,
    pub last_error: Option<String>,
    rate: RateMeter,
}

/// Index of an input in [`NodeStatus::inputs`].
pub type InputId = usize;

/// Everything the diagnostics report, shared by the spin and inference threads.
#[derive(Debug)]
pub struct NodeStatus {
    pub node_name: String,
    pub device: String,
    pub model: String,
    pub inputs: Vec<TopicStats>,
    pub frames_processed: u64,
    pub frames_failed: u64,
    pub frames_dropped: u64,
    pub camera_only_frames: u64,
    pub last_mode: Option<ModalityMask>,
    /// (camera, reason) masked in the last frame.
    pub masked: Vec<(String, String)>,
    /// (camera, `tf_static` or `config`): where each camera of the last frame got its extrinsics.
    pub extrinsics: Vec<(String, &'static str)>,
    pub lidar_alive: bool,
    pub last_latency_ms: Option<f64>,
    /// How long the last frame waited for the inference thread (ms).
    pub last_wait_ms: Option<f64>,
    pub last_timings: StageTimings,
    pub warnings_total: u64,
    /// Warnings not yet published.
    pending: Vec<String>,
}

impl NodeStatus {
    pub fn new(node_name: &str, device: &str, model: &str, topics: &[String]) -> Self {
        Self {
            node_name: node_name.to_string(),
            device: device.to_string(),
            model: model.to_string(),
            inputs: topics
                .iter()
                .map(|t| TopicStats {
                    topic: t.clone(),
                    received: 0,
                    rejected: 0,
                    last_error: None,
                    rate: RateMeter::new(Duration::from_secs(2)),
                })
                .collect(),
            frames_processed: 0,
            frames_failed: 0,
            frames_dropped: 0,
            camera_only_frames: 0,
            last_mode: None,
            masked: Vec::new(),
            extrinsics: Vec::new(),
            lidar_alive: false,
            last_latency_ms: None,
            last_wait_ms: None,
            last_timings: StageTimings::default(),
            warnings_total: 0,
            pending: Vec::new(),
        }
    }

    pub fn received(&mut self, input: InputId, now: Instant) {
        let s = &mut self.inputs[input];
        s.received += 1;
        s.rate.tick(now);
    }

    /// A message that could not be used.
    pub fn rejected(&mut self, input: InputId, err: &ConvertError) {
        let s = &mut self.inputs[input];
        s.rejected += 1;
        let text = err.to_string();
        s.last_error = Some(text.clone());
        self.warn(format!("rejected: {text}"));
    }

    /// A warning: logged now, published with the next diagnostics (which come at once).
    pub fn warn(&mut self, text: String) {
        tracing::warn!("{text}");
        self.warnings_total += 1;
        // bounded: a flood of bad messages keeps the newest warnings
        if self.pending.len() >= 32 {
            self.pending.remove(0);
        }
        self.pending.push(text);
    }

    /// True when warnings wait to be published.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The diagnostics message; takes the pending warnings.
    pub fn to_msg(&mut self, now: Instant, header: r2r::std_msgs::msg::Header) -> DiagnosticArray {
        let kv = |k: &str, v: String| KeyValue { key: k.to_string(), value: v };
        let pending = std::mem::take(&mut self.pending);
        let mode = self.last_mode.map_or("none yet", |m| m.name()).to_string();

        let mut pv = vec![
            kv("mode", mode.clone()),
            kv("device", self.device.clone()),
            kv("model", self.model.clone()),
            kv("frames_processed", self.frames_processed.to_string()),
            kv("frames_dropped", self.frames_dropped.to_string()),
            kv("frames_failed", self.frames_failed.to_string()),
            kv("camera_only_frames", self.camera_only_frames.to_string()),
            kv("lidar_alive", self.lidar_alive.to_string()),
            kv("pipeline_latency_ms", self.last_latency_ms.map_or("-".into(), |v| format!("{v:.1}"))),
            kv("wait_ms", self.last_wait_ms.map_or("-".into(), |v| format!("{v:.1}"))),
            kv("warnings_total", self.warnings_total.to_string()),
        ];
        for (n, v) in StageTimings::NAMES.iter().zip(self.last_timings.as_array()) {
            pv.push(kv(&format!("stage_ms.{n}"), format!("{v:.2}")));
        }
        let degraded = self.last_mode.is_some_and(|m| m != ModalityMask::FUSION);
        let (plevel, pmsg) = if self.frames_failed > 0 && self.frames_processed == 0 {
            (level::ERROR, "no frame processed successfully".to_string())
        } else if degraded {
            (level::WARN, format!("degraded: running {mode}"))
        } else {
            (level::OK, format!("running {mode}"))
        };

        let mut iv = Vec::new();
        for s in &mut self.inputs {
            iv.push(kv(&format!("{}.rate_hz", s.topic), format!("{:.2}", s.rate.rate(now))));
            iv.push(kv(&format!("{}.received", s.topic), s.received.to_string()));
            iv.push(kv(&format!("{}.rejected", s.topic), s.rejected.to_string()));
            if let Some(e) = &s.last_error {
                iv.push(kv(&format!("{}.last_error", s.topic), e.clone()));
            }
        }
        for (cam, why) in &self.masked {
            iv.push(kv(&format!("masked.{cam}"), why.clone()));
        }
        for (cam, from) in &self.extrinsics {
            iv.push(kv(&format!("extrinsics.{cam}"), from.to_string()));
        }
        for (k, w) in pending.iter().enumerate() {
            iv.push(kv(&format!("warning.{k}"), w.clone()));
        }
        let (ilevel, imsg) = if let Some(last) = pending.last() {
            (level::WARN, last.clone())
        } else if !self.masked.is_empty() {
            (level::WARN, format!("{} camera(s) masked", self.masked.len()))
        } else {
            (level::OK, "inputs ok".to_string())
        };
        DiagnosticArray {
            header,
            status: vec![
                DiagnosticStatus {
                    level: plevel,
                    name: format!("{}: pipeline", self.node_name),
                    message: pmsg,
                    hardware_id: self.device.clone(),
                    values: pv,
                },
                DiagnosticStatus {
                    level: ilevel,
                    name: format!("{}: inputs", self.node_name),
                    message: imsg,
                    hardware_id: self.device.clone(),
                    values: iv,
                },
            ],
        }
    }
}

/// The per-frame timing message.
pub fn processing_time_msg(
    header: r2r::std_msgs::msg::Header,
    t: &StageTimings,
    latency_ms: f64,
    dropped: u64,
    wait_ms: f64,
) -> ProcessingTime {
    ProcessingTime {
        header,
        stage_names: StageTimings::NAMES.iter().map(|s| s.to_string()).collect(),
        stage_ms: t.as_array().to_vec(),
        total_ms: t.total(),
        pipeline_latency_ms: latency_ms,
        dropped_frames: dropped,
        wait_ms,
    }
}

/// Milliseconds from a stamp (ns since the epoch) to now on the system clock.
pub fn latency_ms(stamp_ns: i64) -> f64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    (now - stamp_ns) as f64 * 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_meter_counts_the_window() {
        let t = Instant::now();
        let mut r = RateMeter::new(Duration::from_secs(2));
        for k in 0..30 {
            r.tick(t + Duration::from_millis(100 * k));
        }
        let rate = r.rate(t + Duration::from_millis(2950));
        assert!((rate - 10.0).abs() < 1.01, "{rate}");
        assert_eq!(r.rate(t + Duration::from_secs(60)), 0.0);
    }

    #[test]
    fn rejections_raise_a_warning_once_then_clear() {
        let t = Instant::now();
        let mut s = NodeStatus::new("n", "cpu", "m", &["/cloud".into()]);
        s.received(0, t);
        s.rejected(0, &ConvertError::new("point_step", "too small").on_topic("/cloud"));
        assert!(s.has_pending());
        let m = s.to_msg(t, Default::default());
        let inputs = &m.status[1];
        assert_eq!(inputs.level, level::WARN);
        assert!(inputs.message.contains("point_step"), "{}", inputs.message);
        assert!(inputs.values.iter().any(|kv| kv.key == "/cloud.rejected" && kv.value == "1"));
        let m = s.to_msg(t, Default::default());
        assert_eq!(m.status[1].level, level::OK);
        s.last_mode = Some(ModalityMask::LIDAR_ONLY);
        let m = s.to_msg(t, Default::default());
        assert_eq!((m.status[0].level, m.status[0].message.as_str()), (level::WARN, "degraded: running lidar_only"));
    }
}
