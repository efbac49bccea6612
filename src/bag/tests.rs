//! Round trips through the writer and reader, and damaged bags.

use super::cdr::CdrMessage;
use super::mcap::ChunkCompression;
use super::messages::{decode, Decoded};
use super::{Bag, BagWriter, StorageKind};
use r2r::altermoma_msgs::msg::RigCalibration;
use r2r::geometry_msgs::msg::Pose;
use r2r::sensor_msgs::msg::{CameraInfo, PointCloud2, PointField};
use std::path::{Path, PathBuf};

fn cloud(i: usize, points: usize) -> PointCloud2 {
    let mut c = PointCloud2::default();
    c.header.frame_id = "lidar_top".into();
    c.header.stamp.sec = 1_700_000_000 + i as i32 / 10;
    c.header.stamp.nanosec = (i % 10) as u32 * 100_000_000;
    c.height = 1;
    c.width = points as u32;
    c.point_step = 16;
    c.row_step = 16 * points as u32;
    c.fields = ["x", "y", "z", "intensity"]
        .iter()
        .enumerate()
        .map(|(k, n)| PointField { name: n.to_string(), offset: 4 * k as u32, datatype: 7, count: 1 })
        .collect();
    // Pseudo-random bytes so that compressed chunks stay about as large as the data.
    let mut s = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    c.data = (0..16 * points)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    c
}

fn info() -> CameraInfo {
    let mut ci = CameraInfo::default();
    ci.header.frame_id = "cam_front".into();
    ci.width = 64;
    ci.height = 32;
    ci.distortion_model = "plumb_bob".into();
    ci.d = vec![0.0; 5];
    ci.k = vec![50.0, 0.0, 32.0, 0.0, 50.0, 16.0, 0.0, 0.0, 1.0];
    ci.r = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    ci.p = vec![50.0, 0.0, 32.0, 0.0, 0.0, 50.0, 16.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    ci
}

/// A bag with 40 clouds (10 Hz), 40 camera infos, one latched calibration and one message
/// of a type the decoder does not know.
fn write_bag(dir: &Path, kind: StorageKind) -> PathBuf {
    let p = dir.join("bag");
    let mut w = BagWriter::create(&p, kind).unwrap();
    let calib = w.add_topic("/calibration", "altermoma_msgs/msg/RigCalibration", true).unwrap();
    let lidar = w.add_topic("/lidar", "sensor_msgs/msg/PointCloud2", false).unwrap();
    let cinfo = w.add_topic("/cam/info", "sensor_msgs/msg/CameraInfo", false).unwrap();
    let other = w.add_topic("/chatter", "std_msgs/msg/String", false).unwrap();
    let t0 = 1_700_000_000_000_000_000i64;
    // std_msgs/String "hi".
    w.write_raw(other, t0 - 1, &[0, 1, 0, 0, 3, 0, 0, 0, b'h', b'i', 0]).unwrap();
    let rc = RigCalibration {
        camera_names: vec!["CAM_FRONT".into()],
        camera_to_lidar: vec![Pose::default()],
        ..Default::default()
    };
    w.write(calib, t0, &rc).unwrap();
    for i in 0..40 {
        let t = t0 + i as i64 * 100_000_000;
        w.write(cinfo, t + 5_000_000, &info()).unwrap();
        w.write(lidar, t + 10_000_000, &cloud(i, 2000)).unwrap();
    }
    assert_eq!(w.message_count(), 82);
    w.finish().unwrap()
}

fn small_chunks() -> StorageKind {
    StorageKind::Mcap { compression: ChunkCompression::Zstd, chunk_size: 64 << 10 }
}

/// Decoded clouds (by index from the stamp) and the issues.
fn read_clouds(p: &Path) -> (Vec<usize>, Vec<super::Issue>) {
    let bag = Bag::open(p).unwrap();
    let mut got = Vec::new();
    let issues = bag
        .messages(|m, t| {
            if let Ok(Some(Decoded::PointCloud2(c))) = decode(&t.type_name, m.data) {
                let i = (c.header.stamp.sec - 1_700_000_000) as usize * 10
                    + (c.header.stamp.nanosec / 100_000_000) as usize;
                assert_eq!(c, cloud(i, 2000), "cloud {i} decoded wrongly");
                got.push(i);
            }
            Ok(true)
        })
        .unwrap();
    (got, issues)
}

#[test]
fn round_trip_every_storage() {
    for kind in [
        small_chunks(),
        StorageKind::Mcap { compression: ChunkCompression::Lz4, chunk_size: 64 << 10 },
        StorageKind::Mcap { compression: ChunkCompression::None, chunk_size: 64 << 10 },
        StorageKind::Sqlite3,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = write_bag(dir.path(), kind);
        // Nothing but the bag is left in the parent.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{kind:?}");
        let bag = Bag::open(&p).unwrap();
        let topics = bag.topics();
        let names: Vec<_> = topics.iter().map(|t| (t.name.as_str(), t.message_count)).collect();
        assert_eq!(
            names,
            vec![("/calibration", Some(1)), ("/lidar", Some(40)), ("/cam/info", Some(40)), ("/chatter", Some(1))],
            "{kind:?}"
        );
        assert!(topics[0].latched && !topics[1].latched);
        assert!(topics[1].definition.contains("MSG: sensor_msgs/PointField"), "{kind:?}");
        let mut by_topic = std::collections::BTreeMap::new();
        let mut last = i64::MIN;
        let issues = bag
            .messages(|m, t| {
                assert!(m.log_time >= last, "messages out of order");
                last = m.log_time;
                *by_topic.entry(t.name.clone()).or_insert(0) += 1;
                match decode(&t.type_name, m.data).unwrap() {
                    Some(Decoded::CameraInfo(ci)) => assert_eq!(ci, info()),
                    Some(Decoded::RigCalibration(rc)) => assert_eq!(rc.camera_names, vec!["CAM_FRONT".to_string()]),
                    Some(Decoded::PointCloud2(_)) => {}
                    None => assert_eq!(t.type_name, "std_msgs/msg/String"),
                    Some(other) => panic!("unexpected {other:?}"),
                }
                Ok(true)
            })
            .unwrap();
        assert!(issues.is_empty(), "{kind:?}: {issues:?}");
        assert_eq!(by_topic["/lidar"], 40);
        assert_eq!(by_topic["/cam/info"], 40);
        let (clouds, _) = read_clouds(&p);
        assert_eq!(clouds, (0..40).collect::<Vec<_>>());
    }
}

#[test]
fn writer_refuses_existing_target_and_cleans_up_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_bag(dir.path(), small_chunks());
    assert!(BagWriter::create(&p, small_chunks()).is_err());
    {
        let mut w = BagWriter::create(dir.path().join("other"), small_chunks()).unwrap();
        let t = w.add_topic("/lidar", "sensor_msgs/msg/PointCloud2", false).unwrap();
        w.write(t, 1, &cloud(0, 10)).unwrap();
        assert!(w.write(t, 2, &info()).is_err(), "type mismatch must be refused");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

fn storage_file(bag: &Path, ext: &str) -> PathBuf {
    std::fs::read_dir(bag).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with(ext)).unwrap()
}

/// Byte offsets of the chunk records of an MCAP file (from its summary).
fn chunk_offsets(f: &Path) -> Vec<u64> {
    let bytes = std::fs::read(f).unwrap();
    let s = mcap::read::Summary::read(&bytes).unwrap().unwrap();
    let mut v: Vec<u64> = s.chunk_indexes.iter().map(|c| c.chunk_start_offset).collect();
    v.sort();
    v
}

/// Cloud index -> byte offset of its chunk.
fn cloud_chunks(p: &Path) -> Vec<(usize, u64)> {
    let bag = Bag::open(p).unwrap();
    let mut v = Vec::new();
    bag.messages(|m, t| {
        if let Ok(Some(Decoded::PointCloud2(c))) = decode(&t.type_name, m.data) {
            let i =
                (c.header.stamp.sec - 1_700_000_000) as usize * 10 + (c.header.stamp.nanosec / 100_000_000) as usize;
            v.push((i, m.location.byte_offset().unwrap()));
        }
        Ok(true)
    })
    .unwrap();
    v
}

#[test]
fn truncated_mcap_reports_file_and_offset_and_keeps_the_readable_part() {
    for compression in [ChunkCompression::Zstd, ChunkCompression::None] {
        let dir = tempfile::tempdir().unwrap();
        let p = write_bag(dir.path(), StorageKind::Mcap { compression, chunk_size: 64 << 10 });
        let f = storage_file(&p, ".mcap");
        let chunks = chunk_offsets(&f);
        assert!(chunks.len() >= 8, "{chunks:?}");
        let in_whole_chunks = cloud_chunks(&p).iter().filter(|(_, c)| *c < chunks[4]).count();
        // Cut in the middle of the fifth chunk.
        let cut = (chunks[4] + chunks[5]) / 2;
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..cut as usize]).unwrap();
        let (clouds, issues) = read_clouds(&p);
        // Everything before the cut, in order, without gaps.
        assert_eq!(clouds, (0..clouds.len()).collect::<Vec<_>>());
        assert!(clouds.len() >= in_whole_chunks && clouds.len() < 40, "{compression:?}: {}", clouds.len());
        if compression == ChunkCompression::None {
            // The readable prefix of the cut chunk is delivered too.
            assert!(clouds.len() > in_whole_chunks, "{} vs {in_whole_chunks}", clouds.len());
        }
        let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        let i = issues.iter().find(|i| i.message.contains("truncated")).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(i.file, f);
        assert_eq!(i.offset, Some(chunks[4]), "{text:?}");
        assert!(i.to_string().contains(&format!("{} at byte {}", f.display(), chunks[4])), "{i}");
    }
}

#[test]
fn damaged_chunk_is_skipped_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_bag(dir.path(), small_chunks());
    let f = storage_file(&p, ".mcap");
    let chunks = chunk_offsets(&f);
    let mut bytes = std::fs::read(&f).unwrap();
    // Overwrite the middle of chunk 3's compressed data.
    let mid = ((chunks[3] + chunks[4]) / 2) as usize;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5A;
    }
    std::fs::write(&f, &bytes).unwrap();
    let (clouds, issues) = read_clouds(&p);
    let damaged: Vec<_> = issues.iter().filter(|i| i.offset == Some(chunks[3])).collect();
    assert_eq!(damaged.len(), 1, "{issues:?}");
    assert!(damaged[0].message.contains("skipped"), "{}", damaged[0]);
    assert!(clouds.len() < 40 && clouds.len() >= 30, "{}", clouds.len());
    assert!(clouds.contains(&39), "clouds after the damaged chunk must be read");
}

#[test]
fn broken_framing_resumes_at_the_next_chunk_with_or_without_summary() {
    for keep_summary in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let p = write_bag(dir.path(), small_chunks());
        let f = storage_file(&p, ".mcap");
        let chunks = chunk_offsets(&f);
        let mut bytes = std::fs::read(&f).unwrap();
        // Chunk 2's record length becomes absurd: the framing is lost there.
        let at = chunks[2] as usize + 1;
        bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        if !keep_summary {
            // Destroy the footer so that no summary can be found.
            let n = bytes.len();
            bytes[n - 8..].copy_from_slice(b"garbage!");
        }
        std::fs::write(&f, &bytes).unwrap();
        let (clouds, issues) = read_clouds(&p);
        let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert!(issues.iter().any(|i| i.offset == Some(chunks[2])), "{text:?}");
        assert!(issues.iter().any(|i| i.offset == Some(chunks[3]) && i.message.contains("resuming")), "{text:?}");
        assert!(clouds.contains(&39) && clouds.len() < 40, "summary {keep_summary}: {}", clouds.len());
    }
}

#[test]
fn missing_metadata_reads_storage_directly() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_bag(dir.path(), small_chunks());
    std::fs::remove_file(p.join("metadata.yaml")).unwrap();
    let (clouds, issues) = read_clouds(&p);
    assert_eq!(clouds.len(), 40);
    assert!(issues.iter().any(|i| i.message.contains("reading the storage files directly")), "{issues:?}");
    // A single storage file opens too.
    let f = storage_file(&p, ".mcap");
    let (clouds, _) = read_clouds(&f);
    assert_eq!(clouds.len(), 40);
}

#[test]
fn truncated_sqlite_reports_the_cut_and_reads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_bag(dir.path(), StorageKind::Sqlite3);
    let f = storage_file(&p, ".db3");
    let bytes = std::fs::read(&f).unwrap();
    for frac in [0.95, 0.6, 0.3] {
        let cut = (bytes.len() as f64 * frac) as usize;
        std::fs::write(&f, &bytes[..cut]).unwrap();
        let bag = Bag::open(&p).unwrap();
        let (clouds, issues) = read_clouds(&p);
        let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert!(clouds.len() < 40, "{frac}");
        assert_eq!(clouds, (0..clouds.len()).collect::<Vec<_>>(), "the readable part comes in order");
        if frac > 0.9 {
            assert!(clouds.len() >= 30, "{frac}: {} clouds", clouds.len());
        }
        let cut_issue = issues.iter().find(|i| i.message.contains("truncated")).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!((cut_issue.file.as_path(), cut_issue.offset), (f.as_path(), Some(cut as u64)));
        assert!(
            issues.iter().any(|i| (i.message.contains("unreadable") || i.message.contains("past the end")) && i.file == f),
            "{text:?}"
        );
        drop(bag);
    }
}

#[test]
fn random_damage_never_panics() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let p = write_bag(dir.path(), StorageKind::Mcap { compression: ChunkCompression::Lz4, chunk_size: 32 << 10 });
    let f = storage_file(&p, ".mcap");
    let good = std::fs::read(&f).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let rounds: usize = std::env::var("ALTERMOMA_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    for round in 0..rounds {
        let mut b = good.clone();
        match round % 4 {
            3 => {
                // The summary section and footer.
                let n = b.len();
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(n.saturating_sub(2048)..n);
                    b[i] = rng.random();
                }
            }
            0 => {
                for _ in 0..rng.random_range(1..20) {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            }
            1 => b.truncate(rng.random_range(0..b.len())),
            _ => {
                let i = rng.random_range(0..b.len() - 16);
                b[i..i + 16].fill(0xFF);
            }
        }
        std::fs::write(&f, &b).unwrap();
        let bag = Bag::open(&p).unwrap();
        let _ = bag.topics();
        bag.messages(|m, t| {
            let _ = decode(&t.type_name, m.data);
            Ok(true)
        })
        .unwrap();
    }
}

#[test]
fn encode_decode_via_trait_object_free_api() {
    let c = cloud(3, 5);
    let bytes = c.encode().unwrap();
    assert_eq!(PointCloud2::decode(&bytes).unwrap(), c);
}

#[test]
#[ignore]
fn profile_reading() {
    let p = std::path::PathBuf::from(std::env::var("PROFILE_BAG").unwrap());
    for decode_too in [false, true] {
        let t = std::time::Instant::now();
        let bag = Bag::open(&p).unwrap();
        let mut bytes = 0usize;
        bag.messages(|m, t| {
            bytes += m.data.len();
            if decode_too {
                std::hint::black_box(decode(&t.type_name, m.data).unwrap());
            }
            Ok(true)
        })
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!("decode {decode_too}: {:.0} MB/s", bytes as f64 / s / 1e6);
    }
}
