//! `altermoma render`: PNG montage of one sample (cameras with projected boxes, BEV with
//! points, boxes and map layers), from a dataset on disk or straight from the synthetic world.
use crate::data::dataset::Dataset;
use crate::data::render::{save_montage, RenderOptions};
use crate::data::rig::Rig;
use crate::data::world::{SyntheticWorld, WorldConfig};
use std::path::PathBuf;

/// Options of `altermoma render`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset root: nuScenes layout (`<dir>/v1.0-*/`) or KITTI object layout.
    #[arg(long, required_unless_present = "synthetic_seed")]
    pub data: Option<PathBuf>,
    /// nuScenes version folder (default: the only `v1.0-*` folder under --data).
    #[arg(long)]
    pub version: Option<String>,
    /// Sample index (in scene order).
    #[arg(long, default_value_t = 0)]
    pub sample: usize,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Render from the in-memory synthetic world with this seed instead of --data.
    #[arg(long)]
    pub synthetic_seed: Option<u64>,
    /// Rig of the in-memory world (`tiny`, `nuscenes` or a rig YAML).
    #[arg(long, default_value = "tiny")]
    pub rig: String,
    /// Frames per scene of the in-memory world.
    #[arg(long, default_value_t = 20)]
    pub frames_per_scene: usize,
    /// Width of each camera panel (pixels).
    #[arg(long, default_value_t = 400)]
    pub camera_width: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = RenderOptions {
        camera_width: args.camera_width,
        ..RenderOptions::default()
    };
    let frame = if let Some(seed) = args.synthetic_seed {
        let rig = Rig::load(&args.rig)?;
        let scenes = args.sample / args.frames_per_scene + 1;
        let mut cfg = WorldConfig::new(seed, scenes, rig);
        cfg.frames_per_scene = args.frames_per_scene;
        let world = SyntheticWorld::new(cfg)?;
        println!(
            "scene: {}",
            world
                .scene(args.sample / args.frames_per_scene)
                .description()
        );
        world.get(args.sample)?
    } else {
        let dir = args
            .data
            .as_ref()
            .expect("clap: --data or --synthetic-seed");
        let ds = crate::data::open_dataset(dir, args.version.as_deref())?;
        if args.sample >= ds.len() {
            anyhow::bail!(
                "--sample {} is out of range: {} has {} samples",
                args.sample,
                dir.display(),
                ds.len()
            );
        }
        ds.get(args.sample)?
    };
    save_montage(&frame, &args.out, &opts)?;
    println!(
        "wrote {} (sample {}, {} boxes, {} points)",
        args.out.display(),
        frame.token,
        frame.annotations.len(),
        frame.points.as_ref().map(|p| p.len()).unwrap_or(0)
    );
    Ok(())
}
