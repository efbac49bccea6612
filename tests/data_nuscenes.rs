//! The nuScenes layout: byte-identical generation per seed, read-back equality, the official
//! nuscenes-devkit loading our output and agreeing with it, clear errors, `altermoma render`.

use altermoma::data::nuscenes::NuScenesDataset;
use altermoma::data::nuscenes_writer::{write_nuscenes, WriteOptions, WriteSummary};
use altermoma::data::rig::Rig;
use altermoma::data::tokens::Hasher128;
use altermoma::data::world::{SyntheticWorld, WorldConfig};
use altermoma::data::Dataset;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = "v1.0-synthetic";

fn world(seed: u64, scenes: usize, frames: usize) -> SyntheticWorld {
    let mut cfg = WorldConfig::new(seed, scenes, Rig::tiny());
    cfg.frames_per_scene = frames;
    SyntheticWorld::new(cfg).unwrap()
}

fn write(w: &SyntheticWorld, out: &Path) -> WriteSummary {
    write_nuscenes(
        w,
        out,
        &WriteOptions {
            version: VERSION.into(),
            force: false,
        },
        None,
    )
    .unwrap()
}

/// Every file under `dir` by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_string_lossy().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn digest(t: &BTreeMap<String, Vec<u8>>) -> String {
    t.iter()
        .fold(Hasher128::new(), |h, (k, v)| h.str(k).bytes(v))
        .hex()
}

#[test]
fn same_seed_gives_a_byte_identical_tree_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    // The command line, with a progress bar forced on.
    let out = Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args([
            "gen-data",
            "--scenes",
            "2",
            "--seed",
            "5",
            "--frames-per-scene",
            "4",
            "--rig",
            "tiny",
            "--out",
        ])
        .arg(&a)
        .env("ALTERMOMA_PROGRESS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gen-data failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 scenes, 8 samples"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The library with the same settings.
    let b = tmp.path().join("b");
    write(&world(5, 2, 4), &b);
    let c = tmp.path().join("c");
    write(&world(6, 2, 4), &c);
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    println!(
        "digests: seed 5 {} / {}, seed 6 {}",
        digest(&ta),
        digest(&tb),
        digest(&tc)
    );
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(tb[k] == *v, "{k} differs between two runs with seed 5");
    }
    assert_ne!(digest(&ta), digest(&tc));
    let common = ta.keys().filter(|k| tc.get(*k) == ta.get(*k)).count();
    // Only the seed-independent tables (category, attribute, visibility, sensor) coincide.
    assert!(common <= 4, "{common} files identical across seeds");
    assert!(
        ta.keys()
            .filter(|k| k.starts_with("samples/CAM_FRONT/"))
            .count()
            == 8
    );
    assert!(
        ta.contains_key("maps/bev/index.json")
            && ta.keys().filter(|k| k.starts_with("maps/bev/")).count() == 3
    );
    // No temporary folders left behind; an existing output is not overwritten silently.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
    let e = write_nuscenes(
        &world(5, 1, 2),
        &a,
        &WriteOptions {
            version: VERSION.into(),
            force: false,
        },
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--force") && e.contains("already exists"), "{e}");
}

#[test]
fn frames_read_back_equal_the_generated_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let w = world(12, 2, 5);
    write(&w, &dir);
    let ds = NuScenesDataset::open(&dir, VERSION).unwrap();
    assert_eq!(ds.default_map_grid(), Some(Rig::tiny().map_grid));
    let ds = ds.with_map_grid(Rig::tiny().map_grid);
    assert_eq!(ds.len(), w.len());
    let close = |a: &nalgebra::Isometry3<f64>, b: &nalgebra::Isometry3<f64>| {
        (a.to_homogeneous() - b.to_homogeneous()).abs().max() < 1e-9
    };
    for i in 0..w.len() {
        let (g, r) = (w.get(i).unwrap(), ds.get(i).unwrap());
        assert_eq!(ds.token(i), g.token);
        assert_eq!(
            (&g.token, &g.scene_token, g.timestamp_us),
            (&r.token, &r.scene_token, r.timestamp_us)
        );
        assert!(
            close(&g.lidar_to_ego, &r.lidar_to_ego) && close(&g.ego_to_global, &r.ego_to_global)
        );
        assert_eq!(
            g.points, r.points,
            "points of frame {i} must round-trip exactly"
        );
        assert_eq!(g.cameras.len(), r.cameras.len());
        for (cg, cr) in g.cameras.iter().zip(&r.cameras) {
            assert_eq!(cg.calib.name, cr.calib.name);
            assert_eq!(
                (cg.calib.width, cg.calib.height),
                (cr.calib.width, cr.calib.height)
            );
            assert!((cg.calib.intrinsics - cr.calib.intrinsics).abs().max() < 1e-9);
            assert!(
                close(&cg.calib.cam_to_lidar, &cr.calib.cam_to_lidar),
                "{}",
                cg.calib.name
            );
            let (ig, ir) = (cg.image.as_ref().unwrap(), cr.image.as_ref().unwrap());
            let diff: f64 = ig
                .as_raw()
                .iter()
                .zip(ir.as_raw())
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum::<f64>()
                / ig.as_raw().len() as f64;
            assert!(
                diff < 4.0,
                "JPEG round trip of {} in frame {i}: mean abs diff {diff}",
                cg.calib.name
            );
        }
        assert_eq!(g.annotations.len(), r.annotations.len());
        for (a, b) in g.annotations.iter().zip(&r.annotations) {
            assert_eq!(
                (
                    &a.instance_token,
                    a.num_lidar_pts,
                    a.visibility,
                    &a.attribute
                ),
                (
                    &b.instance_token,
                    b.num_lidar_pts,
                    b.visibility,
                    &b.attribute
                )
            );
            assert_eq!(a.bbox.label, b.bbox.label);
            for k in 0..3 {
                assert!(
                    (a.bbox.center[k] - b.bbox.center[k]).abs() < 1e-6
                        && (a.bbox.size[k] - b.bbox.size[k]).abs() < 1e-6
                );
            }
            let dyaw = (a.bbox.yaw - b.bbox.yaw + std::f64::consts::PI)
                .rem_euclid(2.0 * std::f64::consts::PI)
                - std::f64::consts::PI;
            assert!(dyaw.abs() < 1e-6);
            for k in 0..2 {
                let (x, y) = (a.bbox.velocity[k], b.bbox.velocity[k]);
                assert!(
                    (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-6,
                    "velocity {x} vs {y}"
                );
            }
        }
        assert_eq!(g.map, r.map, "map crop of frame {i}");
    }
}

fn tools_python() -> Option<PathBuf> {
    match std::env::var("ALTERMOMA_TOOLS_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipping the devkit check: ALTERMOMA_TOOLS_PYTHON is not set (source .deps/env.sh; setup.sh installs nuscenes-devkit)");
            None
        }
    }
}

#[test]
fn nuscenes_devkit_loads_the_dataset_and_agrees_with_it() {
    let Some(py) = tools_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let w = world(31, 3, 4);
    let summary = write(&w, &dir);
    let json = tmp.path().join("devkit.json");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/nuscenes_devkit_check.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(&dir)
        .arg(VERSION)
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "devkit failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();

    // Counts.
    let names: Vec<String> = (0..3).map(|s| w.scene_name(s)).collect();
    assert_eq!(v["scenes"], serde_json::json!(names));
    assert_eq!(v["samples_per_scene"], serde_json::json!([4, 4, 4]));
    assert_eq!(v["walked_samples_per_scene"], serde_json::json!([4, 4, 4]));
    assert_eq!(v["n_samples"], summary.samples);
    assert_eq!(v["n_annotations"], summary.annotations);
    assert_eq!(v["n_instances"], summary.instances);
    assert_eq!(v["n_sample_data"], summary.samples * 7);
    let first = w.get(0).unwrap();
    assert_eq!(v["first_sample"], first.token);
    assert_eq!(
        v["first_lidar_points"],
        first.points.as_ref().unwrap().len()
    );
    let xyz = v["first_lidar_xyz"].as_array().unwrap();
    for (p, q) in first.points.as_ref().unwrap().iter().zip(xyz) {
        for k in 0..3 {
            assert!((p[k] as f64 - q[k].as_f64().unwrap()).abs() < 1e-6);
        }
    }

    // Boxes and velocities as the devkit builds them; projections where we drew the objects.
    let boxes = &v["boxes"];
    let cams = &v["cameras"];
    let (mut n_boxes, mut n_proj, mut all_in, mut drawn) = (0, 0, 0, 0);
    for s in 0..3 {
        let scene = w.scene(s);
        for k in 0..4 {
            let sim = w.generate(s, k, true);
            let owners = sim.camera_owners.as_ref().unwrap();
            let l2g = (sim.frame.ego_to_global * sim.frame.lidar_to_ego).rotation;
            for (a, fa) in sim.annotations.iter().zip(&sim.frame.annotations) {
                let d = &boxes[&a.token];
                assert!(!d.is_null(), "devkit lacks annotation {}", a.token);
                for i in 0..3 {
                    assert!((d["center"][i].as_f64().unwrap() - a.translation[i]).abs() < 1e-6);
                    assert!((d["wlh"][i].as_f64().unwrap() - a.size[i]).abs() < 1e-6);
                }
                let yaw = scene.theta + scene.actors[a.actor].yaw;
                let dy = (d["yaw"].as_f64().unwrap() - yaw + std::f64::consts::PI)
                    .rem_euclid(2.0 * std::f64::consts::PI)
                    - std::f64::consts::PI;
                assert!(dy.abs() < 1e-6, "yaw of {}", a.token);
                assert_eq!(d["category"], a.category);
                assert_eq!(d["num_lidar_pts"], a.num_lidar_pts);
                let vg =
                    l2g * nalgebra::Vector3::new(fa.bbox.velocity[0], fa.bbox.velocity[1], 0.0);
                for (i, ours) in [vg.x, vg.y].into_iter().enumerate() {
                    match d["velocity"][i].as_f64() {
                        None => assert!(ours.is_nan(), "devkit: unknown velocity, ours {ours}"),
                        Some(x) => assert!(
                            (x - ours).abs() < 1e-6,
                            "velocity of {}: devkit {x}, ours {ours}",
                            a.token
                        ),
                    }
                }
                n_boxes += 1;
            }
            for (ci, cam) in sim.frame.cameras.iter().enumerate() {
                let sd = w.sample_data_token(s, k, ci as u64 + 1);
                let entry = &cams[&sd];
                assert_eq!(entry["channel"], cam.calib.name);
                let listed: BTreeMap<String, &serde_json::Value> = entry["boxes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| (b["token"].as_str().unwrap().to_string(), b))
                    .collect();
                let wdt = cam.calib.width as usize;
                for a in &sim.annotations {
                    let (vis, tot) = a.camera_pixels[ci];
                    // The devkit's BoxVisibility.ANY: every corner at least 0.1 m in front of
                    // the camera, and some corner more than 1 m in front projects strictly
                    // inside the image.
                    let l2c = cam.calib.cam_to_lidar.inverse();
                    let kk = cam.calib.intrinsics;
                    let fa = &sim.frame.annotations[sim
                        .annotations
                        .iter()
                        .position(|x| x.token == a.token)
                        .unwrap()];
                    let cam_corners = fa
                        .bbox
                        .corners()
                        .map(|c| l2c * nalgebra::Point3::new(c[0], c[1], c[2]));
                    let all_in_front = cam_corners.iter().all(|q| q.z > 0.1);
                    let corner_in = all_in_front
                        && fa.bbox.corners().iter().any(|c| {
                            let q = l2c * nalgebra::Point3::new(c[0], c[1], c[2]);
                            let (u, v) = (
                                kk[(0, 0)] * q.x / q.z + kk[(0, 2)],
                                kk[(1, 1)] * q.y / q.z + kk[(1, 2)],
                            );
                            q.z > 1.0
                                && u > 0.0
                                && v > 0.0
                                && u < cam.calib.width as f64
                                && v < cam.calib.height as f64
                        });
                    assert_eq!(
                        corner_in,
                        listed.contains_key(&a.token),
                        "{} in {}: our ANY-visibility {corner_in} disagrees with the devkit",
                        a.token,
                        cam.calib.name
                    );
                    if vis >= 10 && corner_in {
                        // We drew it in this camera: its projected box must contain the
                        // object's pixels.
                        let b = listed[&a.token];
                        let (mut su, mut sv, mut n) = (0.0, 0.0, 0.0);
                        for (i, &o) in owners[ci].iter().enumerate() {
                            if o as usize == a.actor {
                                su += (i % wdt) as f64 + 0.5;
                                sv += (i / wdt) as f64 + 0.5;
                                n += 1.0;
                            }
                        }
                        let (cu, cv) = (su / n, sv / n);
                        let f = |k: &str| b[k].as_f64().unwrap();
                        assert!(cu >= f("umin") - 1.0 && cu <= f("umax") + 1.0 && cv >= f("vmin") - 1.0 && cv <= f("vmax") + 1.0, "{}: pixels centred at ({cu:.1}, {cv:.1}) outside the devkit's projection {b}", a.token);
                        n_proj += 1;
                    }
                    if let Some(b) = listed.get(&a.token) {
                        let f = |k: &str| b[k].as_f64().unwrap();
                        let inside = f("umin") >= 0.0
                            && f("vmin") >= 0.0
                            && f("umax") <= cam.calib.width as f64
                            && f("vmax") <= cam.calib.height as f64;
                        if inside
                            && f("depth") > 1.0
                            && (f("umax") - f("umin")) * (f("vmax") - f("vmin")) > 4.0
                        {
                            all_in += 1;
                            drawn += usize::from(tot > 0);
                        }
                    }
                }
            }
        }
    }
    println!("{n_boxes} boxes compared, {n_proj} projections checked, {drawn}/{all_in} fully-in-image boxes drawn");
    assert!(n_boxes > 100 && n_proj > 50);
    assert!(drawn as f64 >= 0.98 * all_in as f64 && all_in > 20);
}

#[test]
fn errors_name_the_file_and_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    write(&world(2, 1, 3), &dir);
    let ds = NuScenesDataset::open(&dir, VERSION).unwrap();
    let t = ds.tables().clone();
    let sample1 = ds.token(1);
    let lidar_sd = t
        .sample_data
        .iter()
        .find(|sd| sd.sample_token == sample1 && sd.filename.contains("LIDAR_TOP"))
        .unwrap();
    let path = dir.join(&lidar_sd.filename);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let e = format!("{:#}", ds.get(1).unwrap_err());
    assert!(
        e.contains(&lidar_sd.filename)
            && e.contains(&lidar_sd.token)
            && e.contains("not a multiple of 20"),
        "{e}"
    );

    let cam_sd = t
        .sample_data
        .iter()
        .find(|sd| sd.sample_token == ds.token(2) && sd.filename.contains("CAM_BACK/"))
        .unwrap();
    std::fs::write(dir.join(&cam_sd.filename), b"not a jpeg").unwrap();
    let e = format!("{:#}", ds.get(2).unwrap_err());
    assert!(
        e.contains(&cam_sd.filename) && e.contains(&cam_sd.token),
        "{e}"
    );

    // A dangling reference: the first sample's LiDAR ego pose is gone.
    let sd0 = t
        .sample_data
        .iter()
        .find(|sd| sd.sample_token == ds.token(0) && sd.filename.contains("LIDAR_TOP"))
        .unwrap();
    let mut t2 = t.clone();
    t2.ego_pose.retain(|e| e.token != sd0.ego_pose_token);
    t2.save(&dir, VERSION).unwrap();
    let ds2 = NuScenesDataset::open(&dir, VERSION).unwrap();
    let e = format!("{:#}", ds2.get(0).unwrap_err());
    assert!(
        e.contains("ego_pose") && e.contains(&sd0.ego_pose_token) && e.contains(&sd0.token),
        "{e}"
    );

    let e = NuScenesDataset::open(&dir, "v1.0-nope")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("v1.0-nope"), "{e}");
    let e = altermoma::data::open_dataset(tmp.path(), None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither a nuScenes dataroot"), "{e}");
}

#[test]
fn render_writes_a_montage_of_a_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    write(&world(8, 1, 2), &dir);
    let png = tmp.path().join("m.png");
    let out = Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args(["render", "--sample", "1", "--data"])
        .arg(&dir)
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&png).unwrap().to_rgb8();
    assert!(img.width() > 1000 && img.height() > 500);
    let distinct: std::collections::BTreeSet<[u8; 3]> =
        img.pixels().step_by(97).map(|p| p.0).collect();
    assert!(distinct.len() > 100, "the montage looks empty");
    let out = Command::new(env!("CARGO_BIN_EXE_altermoma"))
        .args(["render", "--sample", "9", "--data"])
        .arg(&dir)
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("out of range"));
}

#[test]
fn reads_what_a_real_nuscenes_download_has() {
    // Real nuScenes has LiDAR sweeps (non-key frames), categories outside the detection
    // task, and cameras that fire after the LiDAR (their own ego poses). Add all three to a
    // generated dataset and read it back.
    use altermoma::data::nuscenes_tables::{Category, Instance, SampleAnnotation};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    write(&world(3, 1, 2), &dir);
    let before = NuScenesDataset::open(&dir, VERSION).unwrap();
    let f0 = before.get(0).unwrap();
    let mut t = before.tables().clone();
    let s0 = before.token(0);
    let lidar = t
        .sample_data
        .iter()
        .find(|sd| sd.sample_token == s0 && sd.filename.contains("LIDAR_TOP"))
        .unwrap()
        .clone();
    let mut sweep = lidar.clone();
    sweep.token = "sweep-0".into();
    sweep.is_key_frame = false;
    sweep.timestamp += 25_000;
    sweep.filename = "sweeps/LIDAR_TOP/sweep-0.pcd.bin".into();
    std::fs::create_dir_all(dir.join("sweeps/LIDAR_TOP")).unwrap();
    std::fs::write(dir.join(&sweep.filename), vec![0u8; 20 * 3]).unwrap();
    t.sample_data.push(sweep);
    t.category.push(Category {
        token: "rack".into(),
        name: "static_object.bicycle_rack".into(),
        description: String::new(),
        index: Some(31),
    });
    t.instance.push(Instance {
        token: "rack-instance".into(),
        category_token: "rack".into(),
        nbr_annotations: 1,
        first_annotation_token: "rack-ann".into(),
        last_annotation_token: "rack-ann".into(),
    });
    t.sample_annotation.push(SampleAnnotation {
        token: "rack-ann".into(),
        sample_token: s0.clone(),
        instance_token: "rack-instance".into(),
        visibility_token: "4".into(),
        attribute_tokens: vec![],
        translation: [1.0, 1.0, 0.5],
        size: [3.0, 1.0, 1.0],
        rotation: [1.0, 0.0, 0.0, 0.0],
        prev: String::new(),
        next: String::new(),
        num_lidar_pts: 5,
        num_radar_pts: 0,
    });
    // CAM_FRONT of sample 0 fires when the car is 1 m further along its heading.
    let ego = t
        .ego_pose
        .iter()
        .find(|e| e.token == lidar.ego_pose_token)
        .unwrap()
        .clone();
    let yaw = altermoma::geometry::Box3D::yaw_from_quaternion(ego.rotation);
    let mut moved = ego.clone();
    moved.token = "camera-ego".into();
    moved.translation = [
        ego.translation[0] + yaw.cos(),
        ego.translation[1] + yaw.sin(),
        ego.translation[2],
    ];
    t.ego_pose.push(moved);
    let cam = t
        .sample_data
        .iter_mut()
        .find(|sd| sd.sample_token == s0 && sd.filename.contains("CAM_FRONT/"))
        .unwrap();
    cam.ego_pose_token = "camera-ego".into();
    t.save(&dir, VERSION).unwrap();

    let after = NuScenesDataset::open(&dir, VERSION).unwrap();
    assert_eq!(after.len(), before.len(), "sweeps are not samples");
    let g0 = after.get(0).unwrap();
    assert_eq!(g0.points, f0.points, "the key-frame LiDAR, not the sweep");
    assert_eq!(
        g0.annotations.len(),
        f0.annotations.len(),
        "the bicycle rack is not a detection class"
    );
    let (a, b) = (&f0.cameras[0].calib, &g0.cameras[0].calib);
    assert_eq!(a.name, "CAM_FRONT");
    // The LiDAR is axis-aligned with the ego: the camera sits 1 m further along LiDAR x.
    let d = b.cam_to_lidar.translation.vector - a.cam_to_lidar.translation.vector;
    assert!(
        (d.x - 1.0).abs() < 1e-9 && d.y.abs() < 1e-9 && d.z.abs() < 1e-9,
        "{d:?}"
    );
    assert!(after.get(1).is_ok());
}
