//! `altermoma bench data`: synthetic frames generated per second for the built-in rigs
//! (one thread and all threads), writing a nuScenes-layout dataset, and loader throughput
//! (frames/s, batches/s) reading it back, all measured in one run and printed as a table.
//!
//! The loader must deliver batches faster than the tiny model trains on them; compare the
//! loader's batches/s with the training steps/s that `altermoma bench model` prints.

use crate::data::dataset::Dataset;
use crate::data::loader::{Loader, LoaderConfig};
use crate::data::nuscenes::NuScenesDataset;
use crate::data::nuscenes_writer::{write_nuscenes, WriteOptions};
use crate::data::rig::Rig;
use crate::data::world::{SyntheticWorld, WorldConfig};
use rayon::prelude::*;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Frames generated per measurement with the tiny rig.
    #[arg(long, default_value_t = 40)]
    pub tiny_frames: usize,
    /// Frames generated per measurement with the nuscenes rig (0 to skip).
    #[arg(long, default_value_t = 6)]
    pub nuscenes_frames: usize,
    /// Loader batch size.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

struct Row {
    what: String,
    rig: String,
    frames: usize,
    seconds: f64,
    /// CPU seconds of this process over the measurement (all its threads).
    cpu: f64,
    extra: String,
}

/// CPU time of this process (all threads), seconds. On a shared machine wall time is
/// inflated by other load; CPU time is not.
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Wall and CPU clocks started together.
struct Clock(Instant, f64);

impl Clock {
    fn start() -> Self {
        Clock(Instant::now(), cpu_now())
    }
    fn stop(&self) -> (f64, f64) {
        (self.0.elapsed().as_secs_f64(), cpu_now() - self.1)
    }
}

fn world(rig: &str, seed: u64, frames: usize) -> anyhow::Result<SyntheticWorld> {
    let fps = 10usize;
    let mut cfg = WorldConfig::new(seed, frames.div_ceil(fps).max(1), Rig::load(rig)?);
    cfg.frames_per_scene = fps;
    SyntheticWorld::new(cfg)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = rayon::current_num_threads();
    let mut rows: Vec<Row> = Vec::new();
    let mut rigs = vec![("tiny", args.tiny_frames)];
    if args.nuscenes_frames > 0 {
        rigs.push(("nuscenes", args.nuscenes_frames));
    }
    for (rig, n) in rigs {
        // Scene generation (layout + objects) is cached per world: warm it up so the rows
        // measure frame rendering (LiDAR + cameras + map crop + annotations).
        let w = world(rig, args.seed, n)?;
        for s in 0..w.num_scenes() {
            let _ = w.scene(s);
        }
        let t = Clock::start();
        let mut pts = 0usize;
        for i in 0..n {
            pts += w.get(i)?.points.map(|p| p.len()).unwrap_or(0);
        }
        let (dt, cpu) = t.stop();
        rows.push(Row {
            what: "generate frames, 1 thread".into(),
            rig: rig.into(),
            frames: n,
            seconds: dt,
            cpu,
            extra: format!("{} points/frame", pts / n.max(1)),
        });
        let t = Clock::start();
        let ok: anyhow::Result<Vec<usize>> = (0..n)
            .into_par_iter()
            .map(|i| Ok(w.get(i)?.annotations.len()))
            .collect();
        let boxes: usize = ok?.iter().sum();
        let (dt, cpu) = t.stop();
        rows.push(Row {
            what: format!("generate frames, {threads} threads"),
            rig: rig.into(),
            frames: n,
            seconds: dt,
            cpu,
            extra: format!("{:.1} boxes/frame", boxes as f64 / n.max(1) as f64),
        });
        // Scene set-up alone (layout, objects), for reference.
        let t = Clock::start();
        let w2 = world(rig, args.seed + 1, n)?;
        for s in 0..w2.num_scenes() {
            let _ = w2.scene(s);
        }
        rows.push(Row {
            what: "generate scenes (layout + objects)".into(),
            rig: rig.into(),
            frames: 0,
            seconds: t.stop().0,
            cpu: t.stop().1,
            extra: format!("{} scenes", w2.num_scenes()),
        });
    }

    // Write a tiny dataset to disk, then read it back through the loader.
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("bench-data");
    let w = world("tiny", args.seed, args.tiny_frames)?;
    let t = Clock::start();
    let s = write_nuscenes(
        &w,
        &out,
        &WriteOptions {
            version: "v1.0-bench".into(),
            force: false,
        },
        None,
    )?;
    rows.push(Row {
        what: "gen-data to disk (nuScenes layout, maps, JPEG)".into(),
        rig: "tiny".into(),
        frames: s.samples,
        seconds: t.stop().0,
        cpu: t.stop().1,
        extra: format!("{:.1} MB", s.bytes as f64 / 1e6),
    });
    let ds = NuScenesDataset::open(&out, "v1.0-bench")?;
    let grid = ds.default_map_grid();
    let ds = match grid {
        Some(g) => ds.with_map_grid(g),
        None => ds,
    };
    let n = ds.len();
    let t = Clock::start();
    for i in 0..n {
        ds.get(i)?;
    }
    let (dt, cpu) = t.stop();
    rows.push(Row {
        what: "read frames from disk, 1 thread".into(),
        rig: "tiny".into(),
        frames: n,
        seconds: dt,
        cpu,
        extra: String::new(),
    });
    let ds: Arc<dyn Dataset> = Arc::new(ds);
    for workers in [1usize, args.workers.max(1)] {
        let loader = Loader::new(
            ds.clone(),
            LoaderConfig {
                batch_size: args.batch_size,
                workers,
                seed: 1,
                ..LoaderConfig::default()
            },
        )?;
        let t = Clock::start();
        let mut frames = 0;
        let mut batches = 0;
        for b in loader.epoch(0) {
            frames += b?.len();
            batches += 1;
        }
        let (dt, cpu) = t.stop();
        rows.push(Row {
            what: format!(
                "loader from disk, batch {}, {workers} worker(s)",
                args.batch_size
            ),
            rig: "tiny".into(),
            frames,
            seconds: dt,
            cpu,
            extra: format!("{:.1} batches/s", batches as f64 / dt),
        });
        if workers == args.workers.max(1) {
            break;
        }
    }
    let mem: Arc<dyn Dataset> = Arc::new(world("tiny", args.seed, args.tiny_frames)?);
    let loader = Loader::new(
        mem,
        LoaderConfig {
            batch_size: args.batch_size,
            workers: args.workers.max(1),
            seed: 1,
            ..LoaderConfig::default()
        },
    )?;
    let t = Clock::start();
    let (mut frames, mut batches) = (0, 0);
    for b in loader.epoch(0) {
        frames += b?.len();
        batches += 1;
    }
    let (dt, cpu) = t.stop();
    rows.push(Row {
        what: format!(
            "loader over the in-memory world, batch {}, {} worker(s)",
            args.batch_size,
            args.workers.max(1)
        ),
        rig: "tiny".into(),
        frames,
        seconds: dt,
        cpu,
        extra: format!("{:.1} batches/s", batches as f64 / dt),
    });

    println!("\n`altermoma bench data` ({threads} threads)\n");
    println!("| measurement | rig | frames | wall s | CPU s | frames/s (wall) | frames per CPU-s | notes |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        let (fps, fpc) = if r.frames > 0 {
            (
                format!("{:.1}", r.frames as f64 / r.seconds),
                format!("{:.1}", r.frames as f64 / r.cpu.max(1e-9)),
            )
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {} |",
            r.what, r.rig, r.frames, r.seconds, r.cpu, fps, fpc, r.extra
        );
    }
    println!("\nWall-clock rates depend on other load on the machine; CPU seconds do not.");
    println!(
        "\nCompare the loader's batches/s with the training steps/s of `altermoma bench model`."
    );
    Ok(())
}
