//! `altermoma bench bag` (issue #8): bag decoding throughput, ours vs `rosbags`, on the same
//! bag in one run. Both sides read every message and fully deserialise it (ours into r2r
//! message structs, rosbags into its Python dataclasses); no inference. Throughput is the
//! serialised message bytes per second of the best of `--repeats` runs.
//!
//! Without `--bag`, a sensor bag is generated per storage format: `--frames` frames of a
//! LiDAR cloud, six cameras (raw images and CameraInfo) and ground truth, about what
//! `altermoma gen-bag` writes for a nuScenes-like rig.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bags to read (default: generate one per storage format in a temporary directory).
    #[arg(long)]
    pub bag: Vec<PathBuf>,
    /// Frames of the generated bags.
    #[arg(long, default_value_t = 30)]
    pub frames: usize,
    /// Storage formats of the generated bags (mcap-zstd, mcap-lz4, mcap, sqlite3).
    #[arg(long, value_delimiter = ',', default_value = "mcap-zstd,mcap,sqlite3")]
    pub storage: Vec<String>,
    /// Runs per side; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Also write the table as JSON here, and keep the generated bags in OUT/bags (reused
    /// by later runs).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One side's measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Throughput {
    pub seconds: f64,
    pub bytes: u64,
    pub messages: u64,
    pub mb_per_s: f64,
}

/// Read and fully decode every message of `bag`, best of `repeats`.
#[cfg(feature = "ros")]
pub fn ours(bag: &Path, repeats: usize) -> Result<Throughput> {
    use crate::bag::messages::decode;
    let mut best: Option<Throughput> = None;
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        let b = crate::bag::Bag::open(bag)?;
        let (mut bytes, mut messages) = (0u64, 0u64);
        let mut failed = 0u64;
        b.messages(|m, t| {
            match decode(&t.type_name, m.data) {
                Ok(Some(d)) => {
                    std::hint::black_box(&d);
                }
                Ok(None) => {}
                Err(_) => failed += 1,
            }
            bytes += m.data.len() as u64;
            messages += 1;
            Ok(true)
        })?;
        let s = t0.elapsed().as_secs_f64();
        if failed > 0 {
            bail!("{failed} messages of {} did not decode", bag.display());
        }
        let r = Throughput { seconds: s, bytes, messages, mb_per_s: bytes as f64 / s / 1e6 };
        if best.as_ref().is_none_or(|b| r.seconds < b.seconds) {
            best = Some(r);
        }
    }
    Ok(best.expect("at least one run"))
}

/// The same with rosbags (tests/python/rosbags_peer.py bench).
pub fn rosbags(bag: &Path, repeats: usize) -> Result<Throughput> {
    let py = std::env::var("ALTERMOMA_TOOLS_PYTHON")
        .context("ALTERMOMA_TOOLS_PYTHON is not set (source .deps/env.sh): it runs rosbags")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rosbags_peer.py");
    let out = std::process::Command::new(&py)
        .arg(&script)
        .args(["bench", &bag.to_string_lossy(), &repeats.max(1).to_string()])
        .output()
        .with_context(|| format!("running {py}"))?;
    if !out.status.success() {
        bail!("rosbags bench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing the rosbags bench output")?;
    Ok(Throughput {
        seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        messages: v["messages"].as_u64().unwrap_or(0),
        mb_per_s: v["mb_per_s"].as_f64().unwrap_or(f64::NAN),
    })
}

/// A sensor bag of `frames` frames in `storage` format.
#[cfg(feature = "ros")]
pub fn generate(dir: &Path, storage: &str, frames: usize) -> Result<PathBuf> {
    use crate::bag::mcap::ChunkCompression;
    use crate::bag::{BagWriter, StorageKind};
    use r2r::altermoma_msgs::msg::{Detection3D, FrameGroundTruth};
    use r2r::sensor_msgs::msg::{CameraInfo, Image, PointCloud2, PointField};
    let kind = match storage {
        "mcap-zstd" => StorageKind::Mcap { compression: ChunkCompression::Zstd, chunk_size: 4 << 20 },
        "mcap-lz4" => StorageKind::Mcap { compression: ChunkCompression::Lz4, chunk_size: 4 << 20 },
        "mcap" => StorageKind::Mcap { compression: ChunkCompression::None, chunk_size: 4 << 20 },
        "sqlite3" => StorageKind::Sqlite3,
        o => bail!("unknown storage `{o}` (mcap-zstd, mcap-lz4, mcap, sqlite3)"),
    };
    let path = dir.join(storage);
    let mut w = BagWriter::create(&path, kind)?;
    let lidar = w.add_topic("/lidar_top/points", "sensor_msgs/msg/PointCloud2", false)?;
    let gt = w.add_topic("/ground_truth", "altermoma_msgs/msg/FrameGroundTruth", false)?;
    let cams: Vec<_> = (0..6)
        .map(|i| {
            let img = w.add_topic(&format!("/cam_{i}/image_raw"), "sensor_msgs/msg/Image", false)?;
            let info = w.add_topic(&format!("/cam_{i}/camera_info"), "sensor_msgs/msg/CameraInfo", false)?;
            Ok((img, info))
        })
        .collect::<Result<_>>()?;
    let (width, height, points) = (704u32, 256u32, 34_000usize);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let t0 = 1_700_000_000_000_000_000i64;
    for f in 0..frames {
        let t = t0 + f as i64 * 100_000_000;
        let stamp =
            r2r::builtin_interfaces::msg::Time { sec: (t / 1_000_000_000) as i32, nanosec: (t % 1_000_000_000) as u32 };
        for (i, (img, info)) in cams.iter().enumerate() {
            let mut m = Image::default();
            m.header.stamp = stamp.clone();
            m.header.frame_id = format!("cam_{i}");
            (m.width, m.height, m.encoding, m.step) = (width, height, "rgb8".into(), 3 * width);
            // A smooth scene with sensor noise: compresses about as well as camera images.
            m.data = (0..(3 * width * height) as usize)
                .map(|k| {
                    let (x, y) = ((k / 3) % width as usize, (k / 3) / width as usize);
                    ((x + y + f * 3 + i * 40 + 30 * (k % 3)) / 4) as u8 ^ (rnd() as u8 & 7)
                })
                .collect();
            w.write(*img, t + 2_000_000 + i as i64 * 1_000_000, &m)?;
            let mut ci = CameraInfo::default();
            ci.header = m.header.clone();
            (ci.width, ci.height, ci.distortion_model) = (width, height, "plumb_bob".into());
            ci.d = vec![0.0; 5];
            ci.k = vec![560.0, 0.0, 352.0, 0.0, 560.0, 128.0, 0.0, 0.0, 1.0];
            ci.r = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
            ci.p = vec![560.0, 0.0, 352.0, 0.0, 0.0, 560.0, 128.0, 0.0, 0.0, 0.0, 1.0, 0.0];
            w.write(*info, t + 2_000_000 + i as i64 * 1_000_000, &ci)?;
        }
        let mut c = PointCloud2::default();
        c.header.stamp = stamp.clone();
        c.header.frame_id = "lidar_top".into();
        (c.height, c.width, c.point_step) = (1, points as u32, 20);
        c.row_step = 20 * points as u32;
        c.fields = ["x", "y", "z", "intensity", "ring"]
            .iter()
            .enumerate()
            .map(|(k, n)| PointField { name: n.to_string(), offset: 4 * k as u32, datatype: 7, count: 1 })
            .collect();
        c.data = Vec::with_capacity(20 * points);
        for p in 0..points {
            let a = p as f32 * 0.0185;
            let r = 5.0 + (rnd() % 5000) as f32 / 100.0;
            for v in [r * a.cos(), r * a.sin(), -1.5 + (p % 32) as f32 * 0.1, (rnd() % 255) as f32, (p % 32) as f32] {
                c.data.extend_from_slice(&v.to_le_bytes());
            }
        }
        w.write(lidar, t + 50_000_000, &c)?;
        let mut g = FrameGroundTruth::default();
        g.header = c.header.clone();
        g.sample_token = format!("{f:032x}");
        g.boxes = (0..30)
            .map(|k| {
                let mut d = Detection3D::default();
                d.class_name = "car".into();
                d.pose.position.x = k as f64;
                d.pose.orientation.w = 1.0;
                d
            })
            .collect();
        g.instance_tokens = (0..30).map(|k| format!("{k:032x}")).collect();
        g.num_lidar_pts = vec![10; 30];
        g.visibility = vec![4; 30];
        g.map.rows = 200;
        g.map.cols = 200;
        g.map.data = (0..6 * 200 * 200).map(|k| if (k / 7) % 3 == 0 { 255 } else { 0 }).collect();
        w.write(gt, t + 50_000_000, &g)?;
    }
    w.finish()
}

#[cfg(not(feature = "ros"))]
pub fn run(_args: Args) -> Result<()> {
    bail!("`altermoma bench bag` needs the `ros` feature (message types)")
}

#[cfg(feature = "ros")]
pub fn run(args: Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // Generated bags are kept beside the table when --out is given.
    let gen_dir = match &args.out {
        Some(o) => {
            let d = o.join("bags");
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tmp.path().to_path_buf(),
    };
    let mut bags: Vec<(String, PathBuf)> = args.bag.iter().map(|b| (b.display().to_string(), b.clone())).collect();
    if bags.is_empty() {
        for s in &args.storage {
            eprintln!("generating a {}-frame {s} bag ...", args.frames);
            let existing = gen_dir.join(s);
            if existing.join("metadata.yaml").exists() {
                bags.push((s.clone(), existing));
                continue;
            }
            bags.push((s.clone(), generate(&gen_dir, s, args.frames)?));
        }
    }
    let mut rows = Vec::new();
    println!("| bag | size MB | messages | ours MB/s | rosbags MB/s | speed-up |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, path) in &bags {
        let size = crate::bag::Bag::open(path)?.storage_bytes() as f64 / 1e6;
        let a = ours(path, args.repeats)?;
        let b = rosbags(path, args.repeats)?;
        if a.messages != b.messages || a.bytes != b.bytes {
            bail!(
                "{name}: ours read {} messages / {} bytes, rosbags {} / {}",
                a.messages,
                a.bytes,
                b.messages,
                b.bytes
            );
        }
        let ratio = a.mb_per_s / b.mb_per_s;
        println!("| {name} | {size:.1} | {} | {:.0} | {:.0} | {ratio:.1}x |", a.messages, a.mb_per_s, b.mb_per_s);
        rows.push(serde_json::json!({"bag": name, "size_mb": size, "ours": a, "rosbags": b, "speedup": ratio}));
    }
    println!(
        "(message bytes per second, full deserialisation of every message, best of {} runs, one process each)",
        args.repeats
    );
    if let Some(out) = &args.out {
        crate::io::write_json(out.join("bench_bag.json"), &rows)?;
    }
    Ok(())
}
