//! `altermoma gen-bag` (issue #8): synthetic scenes, or the frames of an existing dataset,
//! as a rosbag2 MCAP bag with the sensor topics at their rates, CameraInfo per camera, the
//! rig calibration on a latched topic and ground truth on its own topic.

use std::path::PathBuf;

/// Options of `altermoma gen-bag`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output bag directory (written atomically; must not exist unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Convert this dataset (nuScenes or KITTI layout) instead of generating scenes.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// nuScenes version folder of --from, when it has several.
    #[arg(long)]
    pub version: Option<String>,
    /// Number of synthetic scenes.
    #[arg(long, default_value_t = 2)]
    pub scenes: usize,
    /// World seed (the same seed, rig, scenes, frames and rate give the same frames as
    /// `altermoma gen-data`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sensor rig: `tiny`, `nuscenes` or a rig YAML file.
    #[arg(long, default_value = "tiny")]
    pub rig: String,
    /// Frames per scene.
    #[arg(long, default_value_t = 20)]
    pub frames_per_scene: usize,
    /// LiDAR (frame) rate in Hz.
    #[arg(long, default_value_t = 10.0)]
    pub hz: f64,
    /// Storage: mcap-zstd, mcap-lz4, mcap (uncompressed chunks) or sqlite3.
    #[arg(long, default_value = "mcap-zstd")]
    pub storage: String,
    /// Camera images: raw (sensor_msgs/Image rgb8), png, jpeg or jpeg:<quality>
    /// (sensor_msgs/CompressedImage).
    #[arg(long, default_value = "raw")]
    pub images: String,
    /// Only the first N frames.
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Parse a storage name.
pub fn storage_kind(s: &str) -> anyhow::Result<crate::bag::StorageKind> {
    use crate::bag::mcap::ChunkCompression;
    use crate::bag::StorageKind;
    let chunk_size = 4 << 20;
    Ok(match s {
        "mcap-zstd" | "mcap" | "mcap-lz4" | "mcap-none" => StorageKind::Mcap {
            compression: match s {
                "mcap-zstd" => ChunkCompression::Zstd,
                "mcap-lz4" => ChunkCompression::Lz4,
                _ => ChunkCompression::None,
            },
            chunk_size,
        },
        "sqlite3" => StorageKind::Sqlite3,
        o => anyhow::bail!("--storage {o}: one of mcap-zstd, mcap-lz4, mcap, sqlite3"),
    })
}

#[cfg(not(feature = "ros"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`altermoma gen-bag` needs the `ros` feature (message types)")
}

#[cfg(feature = "ros")]
pub fn run(args: Args) -> anyhow::Result<()> {
    use crate::bag::scene_writer::{write_scene_bag, ImageFormat, SceneBagOptions};
    use crate::data::rig::Rig;
    use crate::data::world::{SyntheticWorld, WorldConfig};
    use crate::data::Dataset;
    use anyhow::Context;
    let opts = SceneBagOptions { storage: storage_kind(&args.storage)?, images: args.images.parse::<ImageFormat>()?, ..Default::default() };
    let data: Box<dyn Dataset> = match &args.from {
        Some(dir) => crate::data::open_dataset(dir, args.version.as_deref())?,
        None => {
            anyhow::ensure!(args.hz > 0.0 && args.hz.is_finite(), "--hz must be positive");
            let mut cfg = WorldConfig::new(args.seed, args.scenes, Rig::load(&args.rig)?);
            cfg.frames_per_scene = args.frames_per_scene;
            cfg.hz = args.hz;
            Box::new(SyntheticWorld::new(cfg)?)
        }
    };
    if args.out.exists() {
        anyhow::ensure!(args.force, "{} exists (use --force to replace it)", args.out.display());
        std::fs::remove_dir_all(&args.out).with_context(|| format!("removing {}", args.out.display()))?;
    }
    let n = args.max_frames.map_or(data.len(), |m| m.min(data.len()));
    let t0 = std::time::Instant::now();
    let r = write_scene_bag((0..n).map(|i| data.get(i)), n, &data.cameras(), &args.out, &opts)?;
    println!(
        "wrote {}: {} frames, {} messages, {:.1} MB of messages, {:.1} s recorded (LiDAR {:.1} Hz), in {:.1} s",
        r.path.display(),
        r.frames,
        r.messages,
        r.bytes as f64 / 1e6,
        r.duration_s,
        r.lidar_hz,
        t0.elapsed().as_secs_f64()
    );
    if !r.time_shifts_s.is_empty() {
        println!("{} scene start(s) shifted in time to keep the recording monotonic", r.time_shifts_s.len());
    }
    println!("topics: {}", r.topics.join(", "));
    Ok(())
}
