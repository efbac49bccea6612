//! The KITTI object layout: a round trip of synthetic frames through files the test writes,
//! `gen-data --format kitti`, and clear errors for broken files.

use altermoma::data::kitti::{parse_calib, parse_labels, read_velodyne, write_frame, KittiDataset};
use altermoma::data::rig::Rig;
use altermoma::data::world::{SyntheticWorld, WorldConfig};
use altermoma::data::Dataset;
use nalgebra::Point3;
use std::process::Command;

fn world() -> SyntheticWorld {
    let mut cfg = WorldConfig::new(17, 2, Rig::tiny());
    cfg.frames_per_scene = 2;
    SyntheticWorld::new(cfg).unwrap()
}

#[test]
fn frames_round_trip_through_the_kitti_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world();
    let mut checked = 0;
    for i in 0..w.len() {
        let f = w.get(i).unwrap();
        write_frame(&tmp.path().join("training"), &format!("{i:06}"), &f, 0).unwrap();
    }
    let ds = KittiDataset::open(tmp.path()).unwrap();
    assert_eq!(ds.len(), w.len());
    for i in 0..w.len() {
        let (g, r) = (w.get(i).unwrap(), ds.get(i).unwrap());
        assert_eq!(r.token, format!("{i:06}"));
        // Points: x, y, z exact; intensity through KITTI's 0..1 reflectance; no ring.
        let (pg, pr) = (g.points.as_ref().unwrap(), r.points.as_ref().unwrap());
        assert_eq!(pg.len(), pr.len());
        for (a, b) in pg.iter().zip(pr.iter()) {
            assert_eq!(&a[..3], &b[..3]);
            assert!((a[3] - b[3]).abs() < 1e-3 && b[4] == 0.0);
        }
        // The front camera: lossless image, same calibration.
        let (cg, cr) = (&g.cameras[0], &r.cameras[0]);
        assert_eq!(cr.calib.name, "CAM_FRONT");
        assert_eq!(cg.image, cr.image);
        assert!((cg.calib.intrinsics - cr.calib.intrinsics).abs().max() < 1e-9);
        assert!(
            (cg.calib.cam_to_lidar.to_homogeneous() - cr.calib.cam_to_lidar.to_homogeneous())
                .abs()
                .max()
                < 1e-9
        );
        // Labels: exactly the objects in front of the camera whose projection meets the image.
        let l2c = cg.calib.cam_to_lidar.inverse();
        let k = cg.calib.intrinsics;
        let expected: Vec<&altermoma::data::Annotation> = g
            .annotations
            .iter()
            .filter(|a| {
                let cs: Vec<Point3<f64>> = a
                    .bbox
                    .corners()
                    .iter()
                    .map(|c| l2c * Point3::new(c[0], c[1], c[2]))
                    .collect();
                let centre =
                    l2c * Point3::new(a.bbox.center[0], a.bbox.center[1], a.bbox.center[2]);
                if centre.z <= 0.1 || cs.iter().any(|c| c.z <= 0.05) {
                    return false;
                }
                let us: Vec<f64> = cs
                    .iter()
                    .map(|c| k[(0, 0)] * c.x / c.z + k[(0, 2)])
                    .collect();
                let vs: Vec<f64> = cs
                    .iter()
                    .map(|c| k[(1, 1)] * c.y / c.z + k[(1, 2)])
                    .collect();
                us.iter().cloned().fold(f64::NEG_INFINITY, f64::max) >= 0.0
                    && us.iter().cloned().fold(f64::INFINITY, f64::min) < cg.calib.width as f64
                    && vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) >= 0.0
                    && vs.iter().cloned().fold(f64::INFINITY, f64::min) < cg.calib.height as f64
            })
            .collect();
        assert_eq!(r.annotations.len(), expected.len(), "frame {i}");
        for (a, b) in expected.iter().zip(&r.annotations) {
            assert_eq!(a.bbox.label, b.bbox.label);
            for j in 0..3 {
                assert!(
                    (a.bbox.center[j] - b.bbox.center[j]).abs() < 1e-6,
                    "{:?} vs {:?}",
                    a.bbox.center,
                    b.bbox.center
                );
                assert!((a.bbox.size[j] - b.bbox.size[j]).abs() < 1e-6);
            }
            let dy = (a.bbox.yaw - b.bbox.yaw + std::f64::consts::PI)
                .rem_euclid(2.0 * std::f64::consts::PI)
                - std::f64::consts::PI;
            assert!(dy.abs() < 1e-6, "yaw {} vs {}", a.bbox.yaw, b.bbox.yaw);
            assert!(b.bbox.velocity[0].is_nan());
            // Points are counted by the reader in the same boxes.
            assert_eq!(a.num_lidar_pts, b.num_lidar_pts);
            let expected_vis = match a.visibility {
                4 => 4,
                3 | 2 => 3,
                _ => 1,
            };
            assert_eq!(b.visibility, expected_vis);
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} boxes checked");
}

#[test]
fn gen_data_writes_the_kitti_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("kitti");
    let o = Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args([
            "gen-data",
            "--format",
            "kitti",
            "--scenes",
            "1",
            "--frames-per-scene",
            "3",
            "--seed",
            "4",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for sub in [
        "velodyne/000002.bin",
        "image_2/000002.png",
        "calib/000002.txt",
        "label_2/000002.txt",
    ] {
        assert!(out.join("training").join(sub).exists(), "{sub}");
    }
    let ds = altermoma::data::open_dataset(&out, None).unwrap();
    assert_eq!(ds.len(), 3);
    let f = ds.get(2).unwrap();
    assert!(f.points.unwrap().len() > 1000 && f.cameras[0].image.is_some());
}

#[test]
fn broken_files_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A truncated velodyne file.
    let bin = d.join("000000.bin");
    std::fs::write(&bin, vec![0u8; 16 * 10 + 5]).unwrap();
    let e = read_velodyne(&bin).unwrap_err().to_string();
    assert!(
        e.contains("000000.bin") && e.contains("165 bytes") && e.contains("not a multiple of 16"),
        "{e}"
    );
    // A calib file without Tr_velo_to_cam, one with a short row, one with a bad number.
    let calib = d.join("calib.txt");
    std::fs::write(
        &calib,
        "P2: 1 0 0 0 0 1 0 0 0 0 1 0\nR0_rect: 1 0 0 0 1 0 0 0 1\n",
    )
    .unwrap();
    let e = parse_calib(&calib).unwrap_err().to_string();
    assert!(
        e.contains("calib.txt") && e.contains("missing calibration key `Tr_velo_to_cam`"),
        "{e}"
    );
    std::fs::write(&calib, "P2: 1 0 0 0 0 1 0 0 0 0 1\nR0_rect: 1 0 0 0 1 0 0 0 1\nTr_velo_to_cam: 0 -1 0 0 0 0 -1 0 1 0 0 0\n").unwrap();
    let e = parse_calib(&calib).unwrap_err().to_string();
    assert!(
        e.contains("calib.txt:1") && e.contains("`P2` needs 12 numbers, got 11"),
        "{e}"
    );
    std::fs::write(&calib, "P2: 1 0 0 0 0 1 0 0 0 0 1 x\n").unwrap();
    let e = parse_calib(&calib).unwrap_err().to_string();
    assert!(
        e.contains("calib.txt:1") && e.contains("`x` is not a number"),
        "{e}"
    );
    // Label lines: wrong field count, a non-number, a bad occlusion flag.
    let label = d.join("label.txt");
    let good = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59";
    std::fs::write(&label, format!("{good}\nCar 0.00 0 -1.58 587.01 173.33\n")).unwrap();
    let e = parse_labels(&label).unwrap_err().to_string();
    assert!(
        e.contains("label.txt:2") && e.contains("15 fields") && e.contains("got 6"),
        "{e}"
    );
    std::fs::write(
        &label,
        format!("{good}\n{good}\n{}\n", good.replace("1.65", "tall")),
    )
    .unwrap();
    let e = parse_labels(&label).unwrap_err().to_string();
    assert!(
        e.contains("label.txt:3") && e.contains("field `height`") && e.contains("`tall`"),
        "{e}"
    );
    std::fs::write(&label, good.replacen(" 0 ", " 7 ", 1)).unwrap();
    let e = parse_labels(&label).unwrap_err().to_string();
    assert!(e.contains("label.txt:1") && e.contains("occluded"), "{e}");
    let ok = parse_labels(&{
        std::fs::write(&label, format!("{good}\nDontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n")).unwrap();
        label.clone()
    })
    .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].hwl, [1.65, 1.67, 3.64]);
    // A folder that is not KITTI.
    let e = KittiDataset::open(d).err().unwrap().to_string();
    assert!(e.contains("not a KITTI object folder"), "{e}");
}
