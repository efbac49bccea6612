//! Publishing a bag on ROS 2 with its recorded timing (`altermoma play`), so that a live
//! node can be measured as it runs on the car.
//!
//! Messages go out as the bytes stored in the bag (r2r untyped publishers, `publish_raw`):
//! nothing is decoded or re-encoded on the way. Each message is sent at
//! `start + (log_time - first_log_time) / rate`. Latched topics (transient-local QoS in the
//! recording) are published transient-local so that late subscribers still get them.
//! Topics whose type this ROS installation cannot publish are skipped with a note.

use super::reader::{Bag, Issue, Topic};
use anyhow::{Context, Result};
use r2r::QosProfile;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How to play.
#[derive(Clone, Debug)]
pub struct PlayOptions {
    /// Speed factor (2 = twice as fast).
    pub rate: f64,
    /// Start again at the end, until stopped.
    pub looped: bool,
    /// Before the first message, wait until each of `wait_topics` has a subscriber in
    /// another process.
    pub wait_for_subscribers: bool,
    /// Topics to wait for (after remapping); empty = every PointCloud2 topic.
    pub wait_topics: Vec<String>,
    pub wait_timeout: Duration,
    /// Only these topics (bag names); empty = all.
    pub topics: Vec<String>,
    /// Bag topic -> published topic.
    pub remap: Vec<(String, String)>,
    /// Queue depth of the publishers.
    pub depth: usize,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            rate: 1.0,
            looped: false,
            wait_for_subscribers: false,
            wait_topics: Vec::new(),
            wait_timeout: Duration::from_secs(60),
            topics: Vec::new(),
            remap: Vec::new(),
            depth: 10,
        }
    }
}

/// What was played.
#[derive(Clone, Debug, Default)]
pub struct PlayReport {
    /// Published topic -> messages.
    pub published: BTreeMap<String, u64>,
    /// Bag topic -> why it was not published.
    pub skipped: BTreeMap<String, String>,
    /// Damage found in the bag (the readable part was played).
    pub issues: Vec<Issue>,
    pub loops: u64,
    /// How late messages went out relative to their schedule, in ms.
    pub lateness_p50_ms: f64,
    pub lateness_max_ms: f64,
}

/// Publish `bag` through `node` until the end (or forever with `looped`, until `stop`).
pub fn play(bag: &Bag, node: &mut r2r::Node, opts: &PlayOptions, stop: &AtomicBool) -> Result<PlayReport> {
    anyhow::ensure!(opts.rate > 0.0 && opts.rate.is_finite(), "--rate must be positive, got {}", opts.rate);
    let mut report = PlayReport::default();
    let topics: Vec<Topic> = bag.topics();
    let remap: HashMap<&str, &str> = opts.remap.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut pubs: HashMap<String, (String, r2r::PublisherUntyped)> = HashMap::new();
    for t in &topics {
        if !opts.topics.is_empty() && !opts.topics.contains(&t.name) {
            continue;
        }
        if t.serialization_format != "cdr" {
            report.skipped.insert(t.name.clone(), format!("serialization format {}", t.serialization_format));
            continue;
        }
        let out = remap.get(t.name.as_str()).map(|s| s.to_string()).unwrap_or_else(|| t.name.clone());
        let qos = if t.latched {
            QosProfile::default().keep_last(opts.depth.max(1)).reliable().transient_local()
        } else {
            QosProfile::default().keep_last(opts.depth.max(1)).reliable().volatile()
        };
        match node.create_publisher_untyped(&out, &t.type_name, qos) {
            Ok(p) => {
                pubs.insert(t.name.clone(), (out, p));
            }
            Err(e) => {
                let why = format!("type {} cannot be published here ({e})", t.type_name);
                tracing::warn!("skipping topic {}: {why}", t.name);
                report.skipped.insert(t.name.clone(), why);
            }
        }
    }
    if opts.wait_for_subscribers {
        let wanted: Vec<String> = if opts.wait_topics.is_empty() {
            pubs.iter()
                .filter(|(bag_name, _)| {
                    topics.iter().any(|t| &t.name == *bag_name && t.type_name.ends_with("/PointCloud2"))
                })
                .map(|(_, (out, _))| out.clone())
                .collect()
        } else {
            opts.wait_topics.clone()
        };
        let t0 = Instant::now();
        for w in &wanted {
            let Some((_, p)) = pubs.values().find(|(out, _)| out == w) else {
                anyhow::bail!("--wait-topics: {w} is not a published topic of this bag");
            };
            tracing::info!("waiting for a subscriber on {w}");
            loop {
                node.spin_once(Duration::from_millis(10));
                if p.get_inter_process_subscription_count().context("counting subscribers")? > 0 {
                    break;
                }
                if stop.load(Ordering::Relaxed) {
                    return Ok(report);
                }
                if t0.elapsed() > opts.wait_timeout {
                    anyhow::bail!("no subscriber on {w} after {:.0} s", opts.wait_timeout.as_secs_f64());
                }
            }
        }
        // Let the subscribers' other topics match too before the first message.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_millis(500) {
            node.spin_once(Duration::from_millis(10));
        }
    }
    let mut lateness: Vec<f64> = Vec::new();
    loop {
        let start = Instant::now();
        let mut first: Option<i64> = None;
        let issues = bag.messages(|m, t| {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let Some((out, p)) = pubs.get(&t.name) else { return Ok(true) };
            let f = *first.get_or_insert(m.log_time);
            let due = Duration::from_secs_f64(((m.log_time - f).max(0) as f64 / 1e9) / opts.rate);
            loop {
                let now = start.elapsed();
                if now >= due {
                    lateness.push((now - due).as_secs_f64() * 1e3);
                    break;
                }
                let wait = (due - now).min(Duration::from_millis(20));
                node.spin_once(Duration::ZERO);
                std::thread::sleep(wait);
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            p.publish_raw(m.data).with_context(|| format!("publishing on {out}"))?;
            *report.published.entry(out.clone()).or_insert(0) += 1;
            Ok(true)
        })?;
        if report.loops == 0 {
            report.issues = issues;
        }
        report.loops += 1;
        if !opts.looped || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    // Give the middleware a moment to deliver the last messages before the node goes away.
    let end = Instant::now();
    while end.elapsed() < Duration::from_millis(300) {
        node.spin_once(Duration::from_millis(10));
    }
    lateness.sort_by(|a, b| a.total_cmp(b));
    report.lateness_p50_ms = lateness.get(lateness.len() / 2).copied().unwrap_or(0.0);
    report.lateness_max_ms = lateness.last().copied().unwrap_or(0.0);
    Ok(report)
}
