//! The replay loop: read a bag, feed its messages to [`FrameProcessor`]s in recorded order,
//! run the frames, collect ground truth, latency and outputs, and record the outputs.
//!
//! Two modes:
//! - as fast as possible (default): every frame is run as soon as its cloud is read; no
//!   frame is dropped, so results are deterministic and comparable with offline evaluation.
//! - `realtime`: messages arrive at their recorded times (scaled by `rate`) and the
//!   pipeline behaves as the node: when clouds arrive while a frame is running, only the
//!   newest is run next and the others count as dropped. Done in one thread by simulating
//!   the arrival clock: whatever arrived while a frame ran is delivered, in order, before
//!   the next frame starts.
//!
//! Latency per frame: the stage times the pipeline reports, the time from the cloud's
//! arrival to the outputs (queueing included in realtime mode), and the end-to-end latency
//! the node reports (output time minus cloud stamp: recorded transport delay + arrival to
//! output).

use super::processor::{Fed, FrameProcessor, ProcessedFrame};
use crate::bag::frames::frame_from_ground_truth;
use crate::bag::messages::{decode, is_known, Decoded};
use crate::bag::{Bag, BagWriter, Issue, StorageKind, TopicId};
use crate::data::Frame;
use crate::geometry::Box3D;
use anyhow::Result;
use r2r::altermoma_msgs::msg::{Detection3DArray, ProcessingTime};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of [`replay`].
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub realtime: bool,
    /// Speed factor of realtime mode.
    pub rate: f64,
    /// Record the outputs into a new bag here.
    pub record: Option<PathBuf>,
    /// Stop after this many processed frames.
    pub max_frames: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self { realtime: false, rate: 1.0, record: None, max_frames: None, progress: true }
    }
}

/// One processed frame's record.
#[derive(Clone, Debug)]
pub struct FrameRecord {
    pub stamp_ns: i64,
    /// The ground-truth sample token of the frame, when the bag has ground truth for it.
    pub sample_token: Option<String>,
    pub mode: String,
    pub boxes: Vec<Box3D>,
    pub seg_probs: Option<Vec<f32>>,
    pub stages_ms: [f64; crate::pipeline::StageTimings::COUNT],
    /// Cloud arrival to outputs (ms).
    pub latency_ms: f64,
    /// Output time minus cloud stamp (ms), as the node's `pipeline_latency_ms`.
    pub e2e_ms: f64,
    /// Arrival of the cloud, seconds from the first message (recorded time).
    pub t_s: f64,
    pub masked_cameras: Vec<String>,
    pub objects: Detection3DArray,
}

/// Everything one replay produced.
#[derive(Clone, Debug, Default)]
pub struct ReplayRun {
    pub describe: String,
    pub frames: Vec<FrameRecord>,
    /// Ground truth found in the bag, in bag order (one per sample token).
    pub ground_truth: Vec<Frame>,
    /// Frames not run because a newer cloud arrived while the pipeline was busy.
    pub dropped: u64,
    /// Frames whose processing failed (message, count).
    pub failed: Vec<String>,
    /// Messages the pipeline rejected, counted by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Topics not used (unknown types), with their message counts.
    pub skipped_topics: BTreeMap<String, (String, u64)>,
    /// Bag damage.
    pub issues: Vec<Issue>,
    pub messages: u64,
    pub bytes: u64,
    pub wall_s: f64,
    /// Time spent reading and decoding messages (ms), apart from the pipeline.
    pub read_ms: f64,
}

struct Recorder {
    w: BagWriter,
    objects: TopicId,
    seg: TopicId,
    timing: TopicId,
}

impl Recorder {
    fn new(path: &std::path::Path) -> Result<Self> {
        let mut w = BagWriter::create(path, StorageKind::default())?;
        Ok(Self {
            objects: w.add_topic("/replay/objects", "altermoma_msgs/msg/Detection3DArray", false)?,
            seg: w.add_topic("/replay/bev_segmentation", "altermoma_msgs/msg/BevSegmentation", false)?,
            timing: w.add_topic("/replay/processing_time", "altermoma_msgs/msg/ProcessingTime", false)?,
            w,
        })
    }
}

/// A frame waiting for the pipeline: the job, its arrival and recorded times.
struct Pending<J> {
    job: J,
    arrival: Instant,
    log_time: i64,
}

/// Replay `bag` through each processor (the same messages to each; frames are run in turn,
/// alternating the order per frame so that no processor always runs on a warm cache).
/// `procs.len() > 1` is only meaningful without realtime.
pub fn replay_many<P: FrameProcessor>(bag: &Bag, procs: &mut [P], opts: &ReplayOptions) -> Result<Vec<ReplayRun>> {
    anyhow::ensure!(opts.rate > 0.0 && opts.rate.is_finite(), "rate must be positive, got {}", opts.rate);
    anyhow::ensure!(!(opts.realtime && procs.len() > 1), "realtime replay runs one pipeline at a time");
    let n = procs.len();
    let mut runs: Vec<ReplayRun> =
        procs.iter().map(|p| ReplayRun { describe: p.describe(), ..Default::default() }).collect();
    let mut recorders: Vec<Option<Recorder>> = (0..n)
        .map(|k| {
            opts.record
                .as_ref()
                .map(|p| {
                    if n == 1 {
                        p.clone()
                    } else {
                        p.with_file_name(format!("{}_{k}", p.file_name().unwrap_or_default().to_string_lossy()))
                    }
                })
                .map(|p| Recorder::new(&p))
                .transpose()
        })
        .collect::<Result<_>>()?;
    let total_clouds: u64 =
        bag.topics().iter().filter(|t| t.type_name.ends_with("/PointCloud2")).filter_map(|t| t.message_count).sum();
    let pb =
        if opts.progress { crate::progress::bar(total_clouds, "replay") } else { indicatif::ProgressBar::hidden() };
    let mut gt_by_stamp: HashMap<i64, String> = HashMap::new();
    let mut ground_truth: Vec<Frame> = Vec::new();
    let mut skipped: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut pending: Vec<Option<Pending<P::Job>>> = (0..n).map(|_| None).collect();
    let mut first_log: Option<i64> = None;
    let start = Instant::now();
    let mut messages = 0u64;
    let mut bytes = 0u64;
    let mut read_ms = 0.0;
    let mut frames_done = 0usize;
    let mut decode_issues: Vec<Issue> = Vec::new();
    let mut t_read = Instant::now();

    // Run one frame of processor k and record it.
    let run_frame = |k: usize,
                     p: &mut P,
                     job: Pending<P::Job>,
                     run: &mut ReplayRun,
                     rec: &mut Option<Recorder>,
                     gt: &HashMap<i64, String>,
                     first: i64|
     -> Result<()> {
        let stamp = P::job_stamp(&job.job);
        // waiting for the pipeline since the (simulated) arrival of the frame's cloud
        let wait_ms = Instant::now().saturating_duration_since(job.arrival).as_secs_f64() * 1e3;
        let out: ProcessedFrame = match p.process(job.job) {
            Ok(o) => o,
            Err(e) => {
                run.failed.push(format!("frame at {:.3} s: {e:#}", stamp as f64 * 1e-9));
                return Ok(());
            }
        };
        let done = Instant::now();
        let latency_ms = done.saturating_duration_since(job.arrival).as_secs_f64() * 1e3;
        let transport_ms = (job.log_time - stamp) as f64 / 1e6;
        let e2e_ms = transport_ms + latency_ms;
        if let Some(r) = rec {
            let out_time = job.log_time + (latency_ms * 1e6) as i64;
            r.w.write(r.objects, out_time, &out.objects)?;
            if let Some(s) = &out.segmentation {
                r.w.write(r.seg, out_time, s)?;
            }
            let pt = ProcessingTime {
                header: out.objects.header.clone(),
                stage_names: super::processor::STAGES.iter().map(|s| s.to_string()).collect(),
                stage_ms: out.stages_ms.to_vec(),
                total_ms: out.total_ms(),
                pipeline_latency_ms: e2e_ms,
                dropped_frames: run.dropped,
                wait_ms,
            };
            r.w.write(r.timing, out_time, &pt)?;
        }
        let _ = k;
        run.frames.push(FrameRecord {
            stamp_ns: out.stamp_ns,
            sample_token: gt.get(&out.stamp_ns).cloned(),
            mode: out.mode.clone(),
            boxes: out.boxes,
            seg_probs: out.seg_probs,
            stages_ms: out.stages_ms,
            latency_ms,
            e2e_ms,
            t_s: (job.log_time - first) as f64 / 1e9,
            masked_cameras: out.masked_cameras,
            objects: out.objects,
        });
        Ok(())
    };

    let mut stop = false;
    let issues = bag.messages(|m, topic| {
        if stop {
            return Ok(false);
        }
        messages += 1;
        bytes += m.data.len() as u64;
        let first = *first_log.get_or_insert(m.log_time);
        let due = start + Duration::from_secs_f64(((m.log_time - first).max(0) as f64 / 1e9) / opts.rate);
        if opts.realtime {
            if due > Instant::now() {
                // The pipeline is idle until this message arrives: it runs what is waiting.
                read_ms += t_read.elapsed().as_secs_f64() * 1e3;
                if let Some(job) = pending[0].take() {
                    run_frame(0, &mut procs[0], job, &mut runs[0], &mut recorders[0], &gt_by_stamp, first)?;
                    frames_done += 1;
                    pb.inc(1);
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                t_read = Instant::now();
            }
        }
        if !is_known(&topic.type_name) {
            skipped.entry(topic.name.clone()).or_insert_with(|| (topic.type_name.clone(), 0)).1 += 1;
            return Ok(true);
        }
        let msg = match decode(&topic.type_name, m.data) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(true),
            Err(e) => {
                decode_issues.push(m.issue(format!("{} ({}) does not decode: {e}", topic.name, topic.type_name)));
                return Ok(true);
            }
        };
        if let Decoded::FrameGroundTruth(g) = &msg {
            match frame_from_ground_truth(g) {
                Ok(f) => {
                    if gt_by_stamp.insert(crate::ros::convert::stamp_to_ns(&g.header.stamp), f.token.clone()).is_none() {
                        ground_truth.push(f);
                    }
                }
                Err(e) => decode_issues.push(m.issue(format!("ground truth unusable: {e:#}"))),
            }
        }
        // A message arrives at its recorded time (scaled), even when the pipeline was busy
        // and it is only delivered now: the node's spin thread would have taken it then, so
        // the synchroniser's clock and the frame's queueing latency start there.
        let now = due;
        let order: Vec<usize> = if frames_done % 2 == 0 { (0..n).collect() } else { (0..n).rev().collect() };
        let mut ready = Vec::new();
        for k in 0..n {
            // As the node's spin loop: arrivals first, then the camera-only timer.
            match procs[k].on_message(&topic.name, &msg, now) {
                Fed::Frame(job) => ready.push((k, Pending { job, arrival: now, log_time: m.log_time })),
                Fed::Rejected(why) => *runs[k].rejected.entry(why).or_insert(0) += 1,
                Fed::Ignored | Fed::Taken => {}
            }
            if let Some(job) = procs[k].on_tick(now) {
                ready.push((k, Pending { job, arrival: now, log_time: m.log_time }));
            }
        }
        read_ms += t_read.elapsed().as_secs_f64() * 1e3;
        if opts.realtime {
            for (k, job) in ready {
                if pending[k].replace(job).is_some() {
                    runs[k].dropped += 1;
                    pb.inc(1);
                }
            }
        } else if !ready.is_empty() {
            let mut by_k: Vec<Option<Pending<P::Job>>> = (0..n).map(|_| None).collect();
            let mut extra = Vec::new();
            for (k, job) in ready {
                if by_k[k].is_none() {
                    by_k[k] = Some(job);
                } else {
                    extra.push((k, job));
                }
            }
            for k in order {
                if let Some(job) = by_k[k].take() {
                    run_frame(k, &mut procs[k], job, &mut runs[k], &mut recorders[k], &gt_by_stamp, first)?;
                }
            }
            for (k, job) in extra {
                run_frame(k, &mut procs[k], job, &mut runs[k], &mut recorders[k], &gt_by_stamp, first)?;
            }
            frames_done += 1;
            pb.inc(1);
        }
        if opts.max_frames.is_some_and(|mx| frames_done >= mx) {
            stop = true;
        }
        t_read = Instant::now();
        Ok(!stop)
    })?;
    let first = first_log.unwrap_or(0);
    for k in 0..n {
        if let Some(job) = pending[k].take() {
            run_frame(k, &mut procs[k], job, &mut runs[k], &mut recorders[k], &gt_by_stamp, first)?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let wall_s = start.elapsed().as_secs_f64();
    // Tokens of frames whose ground truth came after their outputs (order in the bag).
    for run in runs.iter_mut() {
        for f in &mut run.frames {
            if f.sample_token.is_none() {
                f.sample_token = gt_by_stamp.get(&f.stamp_ns).cloned();
            }
        }
    }
    for (run, rec) in runs.iter_mut().zip(recorders) {
        if let Some(r) = rec {
            r.w.finish()?;
        }
        run.ground_truth = ground_truth.clone();
        run.skipped_topics = skipped.clone();
        run.issues = issues.iter().chain(&decode_issues).cloned().collect();
        run.messages = messages;
        run.bytes = bytes;
        run.wall_s = wall_s;
        run.read_ms = read_ms;
    }
    for (t, (ty, c)) in &skipped {
        tracing::info!("skipped topic {t} ({ty}, {c} messages): type not used by the pipeline");
    }
    Ok(runs)
}

/// Replay `bag` through one processor.
pub fn replay<P: FrameProcessor>(bag: &Bag, proc_: &mut P, opts: &ReplayOptions) -> Result<ReplayRun> {
    let mut procs = std::slice::from_mut(proc_);
    let mut runs = replay_many(bag, &mut procs, opts)?;
    Ok(runs.remove(0))
}
