//! `altermoma bench model`: per-stage forward time (median and p99) and GFLOPs per config.
//!
//! Stages, timed separately on one frame: `preprocess` (N distinct camera images of 1600x900
//! resized, cropped and normalised into a new input tensor, as the node's batch building does
//! it), `voxelise` (a 34k-point sweep), `camera` (backbone + neck + LSS),
//! `lidar` (pillars + BEV backbone), `fuse` (ConvFuser + decoder), `heads`, `post` (top-k,
//! circle NMS, segmentation sigmoid), and apart from the total both box decoding paths on the
//! same head outputs (`decode: on host`, `decode: on device`). Model inputs are the data-free
//! batch (every voxel slot up to `max_voxels` filled: the LiDAR branch's worst case), weights random.

use crate::model::batch::{host_tensor_with, preprocess_images_into, Batch, ResizeBuffers};
use crate::model::centerpoint;
use crate::model::config::ModelConfig;
use crate::model::flops;
use crate::model::load::LoadedModel;
use crate::model::voxelize::Voxelizer;
use crate::model::ModalityMask;
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model configs (names under config/model or YAML paths), comma separated.
    #[arg(long, default_value = "tiny,small,base", value_delimiter = ',')]
    pub configs: Vec<String>,
    /// Timed runs per config (after warm-up).
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Timed runs for `base` (slow on a CPU).
    #[arg(long, default_value_t = 5)]
    pub base_runs: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Also write the table as markdown here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CPU threads for libtorch (0: libtorch's default). On a loaded machine 1 thread avoids
    /// oversubscription.
    #[arg(long, default_value_t = 0)]
    pub threads: i32,
}

/// Resolve `tiny` to `config/model/tiny.yaml` (next to the binary's source tree or the CWD).
pub fn config_path(name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.extension().is_some() || p.exists() {
        return p;
    }
    let local = PathBuf::from("config/model").join(format!("{name}.yaml"));
    if local.exists() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/model")
        .join(format!("{name}.yaml"))
}

fn sync(dev: Device) {
    if let Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
}

/// `(median, p99)` of samples in ms (nearest-rank p99).
pub fn median_p99(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
    (med, v[rank - 1])
}

struct Row {
    config: String,
    stage: &'static str,
    median: f64,
    p99: f64,
    gflops: Option<f64>,
    runs: usize,
}

pub fn run(args: Args) -> Result<()> {
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let dev = crate::device::parse_device(&args.device)?;
    let mut rows = Vec::new();
    for name in &args.configs {
        let path = config_path(name);
        let cfg = ModelConfig::load(&path).with_context(|| format!("model config `{name}`"))?;
        let runs = if cfg.name == "base" {
            args.base_runs
        } else {
            args.runs
        };
        eprintln!(
            "bench model: {} ({} runs on {})",
            cfg.name,
            runs,
            crate::device::describe(dev)
        );
        rows.extend(bench_config(&cfg, runs, args.warmup, dev)?);
    }
    let mut md = String::from(
        "| config | stage | median ms | p99 ms | GFLOPs | runs |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let g = r
            .gflops
            .map(|g| format!("{g:.2}"))
            .unwrap_or_else(|| "-".into());
        md.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {} | {} |\n",
            r.config, r.stage, r.median, r.p99, g, r.runs
        ));
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let header = format!(
        "device: {}, load average at the end: {load}\n\n",
        crate::device::describe(dev)
    );
    let md = format!("{header}{md}");
    println!("{md}");
    if let Some(out) = &args.out {
        crate::io::atomic_write(out, md.as_bytes())?;
    }
    Ok(())
}

fn bench_config(cfg: &ModelConfig, runs: usize, warmup: usize, dev: Device) -> Result<Vec<Row>> {
    tch::manual_seed(0);
    let m = LoadedModel::new(cfg, dev)?;
    let model = &m.model;
    let batch = Batch::ones(cfg, 1, dev)?;
    let fl = flops::count_model(model, &batch, ModalityMask::FUSION);
    // inputs for the host-side stages
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n_cam = cfg.camera.default_rig.num_cameras;
    // one 1600x900 image per camera (distinct buffers, as a rig sends them)
    let imgs: Vec<crate::data::SharedImage> = (0..n_cam as u32)
        .map(|k| {
            crate::data::share(image::RgbImage::from_fn(1600, 900, |x, y| {
                image::Rgb([((x + k) % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
            }))
        })
        .collect();
    let slots: Vec<Option<&crate::data::SharedImage>> = imgs.iter().map(Some).collect();
    let [hh, ww] = cfg.camera.image_size;
    let mut resize_buffers = ResizeBuffers::default();
    let g = cfg.bev.grid();
    let pts: Vec<f32> = (0..34_000)
        .flat_map(|_| {
            [
                rng.random_range(g.x_min as f32..g.x_max as f32),
                rng.random_range(g.y_min as f32..g.y_max as f32),
                rng.random_range(-3.0f32..2.0),
                rng.random_range(0.0f32..255.0),
                0.0,
            ]
        })
        .collect();
    let mut vox = Voxelizer::new(cfg);
    let stages = [
        "preprocess",
        "voxelise",
        "camera",
        "lidar",
        "fuse",
        "heads",
        "post",
        "total",
        // both decoding paths side by side (not in the total): `post` runs the one for the
        // device (host on the CPU, the device formulation elsewhere)
        "decode: on host",
        "decode: on device",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); stages.len()];
    tch::no_grad(|| {
        for it in 0..warmup + runs {
            let mut t = [0f64; 10];
            t[8..].fill(f64::NAN); // (no detection head: no decoding)
            let clock = Instant::now();
            let mut s = Instant::now();
            let mut lap = |k: usize, s: &mut Instant| {
                sync(dev);
                t[k] = s.elapsed().as_secs_f64() * 1e3;
                *s = Instant::now();
            };
            let _ = host_tensor_with(&[n_cam as i64, 3, hh, ww], |px: &mut [f32]| {
                preprocess_images_into(&slots, cfg, &mut resize_buffers, px)
            })
            .to_device(dev);
            lap(0, &mut s);
            let _ = vox.voxelize_tensors(std::iter::once((0, pts.as_slice(), (false, false))), 1).to_device(dev);
            lap(1, &mut s);
            let cam = model.camera_bev(&batch, true, false);
            lap(2, &mut s);
            let lid = model.lidar_bev(&batch, false);
            lap(3, &mut s);
            let bev = model.decode_bev(&model.fuse(&cam, &lid, false), false);
            lap(4, &mut s);
            let (det, seg) = model.heads(&bev, false);
            lap(5, &mut s);
            let out = crate::model::ModelOutput {
                mask: ModalityMask::FUSION,
                camera_bev: cam,
                lidar_bev: lid,
                fused: bev.shallow_clone(),
                bev,
                det,
                seg,
            };
            let _ = model.decode(&out);
            let _ = model.seg_probs(&out).map(|p| p.to_device(Device::Cpu));
            lap(6, &mut s);
            sync(dev);
            t[7] = clock.elapsed().as_secs_f64() * 1e3;
            if let (Some(d), Some(c)) = (&out.det, &cfg.heads.det) {
                let grid = model.bev_grid();
                let s = Instant::now();
                let _ = centerpoint::decode_on_host(d, c, &grid);
                t[8] = s.elapsed().as_secs_f64() * 1e3;
                let s = Instant::now();
                let _ = centerpoint::decode_on_device(d, c, &grid);
                t[9] = s.elapsed().as_secs_f64() * 1e3;
            }
            if it >= warmup {
                for k in 0..stages.len() {
                    times[k].push(t[k]);
                }
            }
        }
    });
    let gf = |stage: &str| -> Option<f64> {
        let parts: &[&str] = match stage {
            "camera" => &["camera.backbone", "camera.neck", "camera.vtransform"],
            "lidar" => &["lidar.encoder", "lidar.backbone", "lidar.neck"],
            "fuse" => &["fuser", "decoder.backbone", "decoder.neck"],
            "heads" => &["heads.det", "heads.seg"],
            "total" => return Some(fl.total()),
            _ => return None,
        };
        Some(parts.iter().map(|p| fl.get(p)).sum())
    };
    Ok(stages
        .iter()
        .zip(times.iter_mut())
        .map(|(st, v)| {
            let (median, p99) = median_p99(v);
            Row {
                config: cfg.name.clone(),
                stage: st,
                median,
                p99,
                gflops: gf(st),
                runs,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99() {
        let mut v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(median_p99(&mut v), (50.5, 99.0));
        let mut w = vec![3.0, 1.0, 2.0];
        assert_eq!(median_p99(&mut w), (2.0, 3.0));
    }
}
