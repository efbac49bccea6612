//! `altermoma gen-data`: generate a synthetic driving dataset (nuScenes or KITTI layout).
use crate::data::nuscenes_writer::{write_nuscenes, WriteOptions};
use crate::data::rig::Rig;
use crate::data::scene::ConditionMix;
use crate::data::world::{SyntheticWorld, WorldConfig};
use std::path::PathBuf;

/// Output layout.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Nuscenes,
    Kitti,
}

/// Options of `altermoma gen-data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder (created; must not exist unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of scenes.
    #[arg(long, default_value_t = 10)]
    pub scenes: usize,
    /// Dataset seed. Seeds are the split: use different seeds for training and held-out data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sensor rig: `tiny`, `nuscenes` or a rig YAML file (see config/data/).
    #[arg(long, default_value = "tiny")]
    pub rig: String,
    /// Key frames per scene.
    #[arg(long, default_value_t = 20)]
    pub frames_per_scene: usize,
    /// Key-frame rate in Hz.
    #[arg(long, default_value_t = 2.0)]
    pub hz: f64,
    /// Output layout.
    #[arg(long, value_enum, default_value_t = Format::Nuscenes)]
    pub format: Format,
    /// Dataset name: the nuScenes version folder is `v1.0-<name>`.
    #[arg(long, default_value = "synthetic")]
    pub name: String,
    /// Share of night scenes (camera weak).
    #[arg(long, default_value_t = ConditionMix::default().night)]
    pub night: f64,
    /// Share of fog scenes (camera weak at distance).
    #[arg(long, default_value_t = ConditionMix::default().fog)]
    pub fog: f64,
    /// Share of scenes with a degraded LiDAR (dropout, sparse far range, lost beams).
    #[arg(long, default_value_t = ConditionMix::default().lidar_degraded)]
    pub lidar_degraded: f64,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rig = Rig::load(&args.rig)?;
    let mut cfg = WorldConfig::new(args.seed, args.scenes, rig);
    cfg.frames_per_scene = args.frames_per_scene;
    cfg.hz = args.hz;
    cfg.conditions = ConditionMix {
        night: args.night,
        fog: args.fog,
        lidar_degraded: args.lidar_degraded,
    };
    for (v, name) in [
        (args.night, "--night"),
        (args.fog, "--fog"),
        (args.lidar_degraded, "--lidar-degraded"),
    ] {
        if !(0.0..=1.0).contains(&v) {
            anyhow::bail!("{name} must be a share in [0, 1] (got {v})");
        }
    }
    if args.night + args.fog + args.lidar_degraded > 1.0 {
        anyhow::bail!("--night + --fog + --lidar-degraded must not exceed 1");
    }
    let world = SyntheticWorld::new(cfg)?;
    let total = (args.scenes * args.frames_per_scene) as u64;
    let pb = crate::progress::bar(total, "gen-data");
    let t0 = std::time::Instant::now();
    match args.format {
        Format::Nuscenes => {
            let version = format!("v1.0-{}", args.name);
            let s = write_nuscenes(
                &world,
                &args.out,
                &WriteOptions {
                    version: version.clone(),
                    force: args.force,
                },
                Some(&pb),
            )?;
            pb.finish_and_clear();
            println!(
                "wrote {} ({version}): {} scenes, {} samples, {} annotations of {} instances, {:.1} MB, {:.1} s",
                args.out.display(),
                s.scenes,
                s.samples,
                s.annotations,
                s.instances,
                s.bytes as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
            let counts: Vec<String> = crate::classes::DETECTION_CLASSES
                .iter()
                .zip(s.per_class)
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            println!("annotations per class: {}", counts.join(", "));
        }
        Format::Kitti => {
            let n = crate::data::kitti::write_world(&world, &args.out, args.force, Some(&pb))?;
            pb.finish_and_clear();
            println!(
                "wrote {} (KITTI object layout): {n} frames, {:.1} s",
                args.out.display(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
