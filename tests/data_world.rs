//! The synthetic world in memory: determinism, geometry that lines up across modalities,
//! plausible placement, ground-truth velocities, and the designed complementarity of camera
//! and LiDAR.

use altermoma::classes::{map_class_index, DETECTION_CLASSES};
use altermoma::data::layout::Material;
use altermoma::data::rig::Rig;
use altermoma::data::scene::ConditionMix;
use altermoma::data::snapshot::LidarCondition;
use altermoma::data::world::{SimFrame, SyntheticWorld, WorldConfig};
use altermoma::data::{Dataset, Frame};
use nalgebra::Point3;

fn world(seed: u64, scenes: usize, frames: usize, mix: ConditionMix) -> SyntheticWorld {
    let mut cfg = WorldConfig::new(seed, scenes, Rig::tiny());
    cfg.frames_per_scene = frames;
    cfg.conditions = mix;
    SyntheticWorld::new(cfg).unwrap()
}

fn class(name: &str) -> usize {
    DETECTION_CLASSES.iter().position(|c| *c == name).unwrap()
}

/// Annotations equal, with NaN velocities equal to each other.
fn same_annotations(a: &[altermoma::data::Annotation], b: &[altermoma::data::Annotation]) -> bool {
    let key = |x: &altermoma::data::Annotation| {
        let mut y = x.clone();
        y.bbox.velocity = y.bbox.velocity.map(|v| if v.is_nan() { 1e300 } else { v });
        y
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}

fn same_frame(a: &Frame, b: &Frame) -> bool {
    a.token == b.token
        && a.points == b.points
        && same_annotations(&a.annotations, &b.annotations)
        && a.map == b.map
        && a.cameras.len() == b.cameras.len()
        && a.cameras
            .iter()
            .zip(&b.cameras)
            .all(|(x, y)| x.image == y.image && x.calib == y.calib)
}

#[test]
fn same_seed_gives_the_same_frames_and_another_seed_does_not() {
    let a = world(3, 2, 4, ConditionMix::default());
    let b = world(3, 2, 4, ConditionMix::default());
    let c = world(4, 2, 4, ConditionMix::default());
    for i in [0, 5] {
        let (fa, fb, fc) = (a.get(i).unwrap(), b.get(i).unwrap(), c.get(i).unwrap());
        assert!(
            same_frame(&fa, &fb),
            "frame {i} differs between two runs with the same seed"
        );
        assert!(
            fa.points != fc.points && fa.token != fc.token,
            "frame {i} is the same for seeds 3 and 4"
        );
    }
    // Reading frames in another order or from several threads changes nothing.
    let f5 = a.get(5).unwrap();
    let parallel: Vec<Frame> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2).map(|_| s.spawn(|| a.get(5).unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(parallel.iter().all(|f| same_frame(f, &f5)));
}

/// Pixel rectangle of a box's projection (None when a corner is behind the camera).
fn projected_rect(frame: &Frame, cam: usize, b: &altermoma::geometry::Box3D) -> Option<[f64; 4]> {
    let c = &frame.cameras[cam].calib;
    let l2c = c.cam_to_lidar.inverse();
    let k = c.intrinsics;
    let mut r = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in b.corners() {
        let q = l2c * Point3::new(p[0], p[1], p[2]);
        if q.z < 0.2 {
            return None;
        }
        let (u, v) = (
            k[(0, 0)] * q.x / q.z + k[(0, 2)],
            k[(1, 1)] * q.y / q.z + k[(1, 2)],
        );
        r = [r[0].min(u), r[1].min(v), r[2].max(u), r[3].max(v)];
    }
    Some(r)
}

#[test]
fn projected_boxes_land_on_the_rendered_objects() {
    let w = world(21, 4, 6, ConditionMix::clean());
    let (mut checked, mut tight) = (0, 0);
    for s in 0..4 {
        for k in [0, 5] {
            let sim: SimFrame = w.generate(s, k, true);
            let owners = sim.camera_owners.as_ref().unwrap();
            for (ai, a) in sim.annotations.iter().enumerate() {
                let b = &sim.frame.annotations[ai].bbox;
                for (ci, cam) in sim.frame.cameras.iter().enumerate() {
                    let (vis, tot) = a.camera_pixels[ci];
                    if vis < 15 {
                        continue;
                    }
                    let Some(r) = projected_rect(&sim.frame, ci, b) else {
                        continue;
                    };
                    let wdt = cam.calib.width as usize;
                    let (mut inside, mut n, mut su, mut sv) = (0usize, 0usize, 0.0, 0.0);
                    let mut pb = [
                        f64::INFINITY,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        f64::NEG_INFINITY,
                    ];
                    for (i, &o) in owners[ci].iter().enumerate() {
                        if o as usize != a.actor {
                            continue;
                        }
                        let (u, v) = ((i % wdt) as f64 + 0.5, (i / wdt) as f64 + 0.5);
                        n += 1;
                        su += u;
                        sv += v;
                        pb = [
                            pb[0].min(u - 0.5),
                            pb[1].min(v - 0.5),
                            pb[2].max(u + 0.5),
                            pb[3].max(v + 0.5),
                        ];
                        if u >= r[0] - 1.0 && u <= r[2] + 1.0 && v >= r[1] - 1.0 && v <= r[3] + 1.0
                        {
                            inside += 1;
                        }
                    }
                    assert_eq!(
                        n as u32, vis,
                        "visible pixel count of {} in {}",
                        a.token, cam.calib.name
                    );
                    assert!(
                        inside as f64 >= 0.99 * n as f64,
                        "{} pixels of {} ({}) fall outside its projected box in {}",
                        n - inside,
                        a.token,
                        a.category,
                        cam.calib.name
                    );
                    let (cu, cv) = (su / n as f64, sv / n as f64);
                    assert!(cu >= r[0] && cu <= r[2] && cv >= r[1] && cv <= r[3]);
                    checked += 1;
                    // Unoccluded and fully in the image: the silhouette fills the projection.
                    let in_image = r[0] >= 0.0
                        && r[1] >= 0.0
                        && r[2] <= wdt as f64
                        && r[3] <= cam.calib.height as f64;
                    if vis == tot && in_image && vis > 40 {
                        let ix = (pb[2].min(r[2]) - pb[0].max(r[0])).max(0.0)
                            * (pb[3].min(r[3]) - pb[1].max(r[1])).max(0.0);
                        let union =
                            (pb[2] - pb[0]) * (pb[3] - pb[1]) + (r[2] - r[0]) * (r[3] - r[1]) - ix;
                        // Vehicles fill their boxes; people and cycles are thinner than theirs.
                        let min_iou = if a.category.starts_with("vehicle.")
                            && !a.category.contains("cycle")
                        {
                            0.5
                        } else {
                            0.3
                        };
                        assert!(
                            ix / union > min_iou,
                            "{} ({}): silhouette {pb:?} vs projected box {r:?}",
                            a.token,
                            a.category
                        );
                        tight += 1;
                    }
                }
            }
        }
    }
    assert!(
        checked > 100 && tight > 10,
        "checked {checked}, tight {tight}"
    );
}

#[test]
fn objects_are_placed_where_they_belong() {
    let w = world(33, 8, 3, ConditionMix::default());
    let bit = |n: &str| 1u8 << map_class_index(n).unwrap();
    let (mut n_veh, mut ok_veh, mut n_ped, mut ok_ped, mut n_obs, mut ok_obs) = (0, 0, 0, 0, 0, 0);
    let mut seen = [0usize; 10];
    for s in 0..8 {
        let sim = w.generate(s, 1, false);
        let map = sim.frame.map.as_ref().unwrap();
        let (nx, ny) = (map.grid.nx(), map.grid.ny());
        for (a, sa) in sim.frame.annotations.iter().zip(&sim.annotations) {
            let b = &a.bbox;
            seen[b.label] += 1;
            let Some((i, j)) = map.grid.cell(b.center[0], b.center[1]) else {
                panic!("annotation outside the map grid: {:?}", b.center)
            };
            let bits = (0..6).fold(0u8, |acc, k| {
                acc | (map.data[k * nx * ny + i * ny + j] << k)
            });
            let name = DETECTION_CLASSES[b.label];
            match name {
                "car" | "truck" | "bus" | "trailer" | "construction_vehicle" => {
                    n_veh += 1;
                    ok_veh += usize::from(bits & bit("drivable_area") != 0);
                }
                "pedestrian" => {
                    n_ped += 1;
                    let walk = bit("walkway") | bit("ped_crossing") | bit("carpark_area");
                    ok_ped += usize::from(
                        bits & walk != 0 || sa.category == "human.pedestrian.construction_worker",
                    );
                }
                "traffic_cone" | "barrier" => {
                    n_obs += 1;
                    ok_obs += usize::from(
                        bits & (bit("drivable_area") | bit("carpark_area") | bit("walkway")) != 0,
                    );
                }
                _ => {}
            }
            // Boxes sit on the ground: road level or kerb height below the LiDAR.
            let bottom = b.center[2] - b.size[2] / 2.0;
            assert!(
                (bottom + 1.84).abs() < 0.2,
                "{name} bottom at {bottom} in the LiDAR frame"
            );
        }
    }
    assert!(
        n_veh > 50 && ok_veh as f64 >= 0.99 * n_veh as f64,
        "vehicles on drivable area: {ok_veh}/{n_veh}"
    );
    assert!(
        n_ped > 30 && ok_ped as f64 >= 0.97 * n_ped as f64,
        "pedestrians on walkways/crossings/car parks: {ok_ped}/{n_ped}"
    );
    assert!(
        ok_obs as f64 >= 0.95 * n_obs as f64,
        "cones/barriers on the road, car parks or kerbs: {ok_obs}/{n_obs}"
    );
    assert!(seen[class("car")] > seen[class("bus")], "{seen:?}");
}

#[test]
fn velocities_are_the_true_motion() {
    let w = world(44, 3, 8, ConditionMix::default());
    let (mut moving, mut still, mut nan) = (0, 0, 0);
    for s in 0..3 {
        let scene = w.scene(s);
        for k in [0, 3, 7] {
            let sim = w.generate(s, k, false);
            let rot = (sim.frame.ego_to_global * sim.frame.lidar_to_ego).rotation;
            for (a, sa) in sim.frame.annotations.iter().zip(&sim.annotations) {
                let actor = &scene.actors[sa.actor];
                let v = a.bbox.velocity;
                if v[0].is_nan() {
                    // Unknown only for an object annotated in one frame alone.
                    assert!(
                        sa.prev.is_empty() && sa.next.is_empty(),
                        "{}: NaN velocity with neighbours",
                        sa.token
                    );
                    nan += 1;
                    continue;
                }
                let m = actor.motion;
                let t = scene.time(k);
                let linear = !m.t_start.is_finite() && !m.t_stop.is_finite();
                if linear || m.v == [0.0, 0.0] {
                    let g = rot * nalgebra::Vector3::new(v[0], v[1], 0.0);
                    let (c, s_) = (scene.theta.cos(), scene.theta.sin());
                    let truth = [c * m.v[0] - s_ * m.v[1], s_ * m.v[0] + c * m.v[1]];
                    assert!(
                        (g.x - truth[0]).abs() < 1e-6 && (g.y - truth[1]).abs() < 1e-6,
                        "{}: {g:?} vs {truth:?} at t={t}",
                        sa.token
                    );
                    if m.v == [0.0, 0.0] {
                        still += 1;
                    } else {
                        moving += 1;
                        assert!(
                            sa.attribute.ends_with("moving") || sa.attribute == "cycle.with_rider",
                            "{} {}",
                            sa.category,
                            sa.attribute
                        );
                    }
                }
            }
        }
    }
    assert!(
        moving > 20 && still > 20,
        "moving {moving}, still {still}, nan {nan}"
    );
}

/// Mean and variance helper.
fn stats(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (
        m,
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64,
    )
}

#[test]
fn paint_is_clear_in_the_camera_and_faint_for_the_lidar() {
    // Ground points on white paint vs plain asphalt: their LiDAR intensity and the camera
    // brightness where they project.
    let w = world(55, 6, 2, ConditionMix::clean());
    let rig = Rig::tiny();
    let (mut li_paint, mut li_asph, mut cam_paint, mut cam_asph) = (vec![], vec![], vec![], vec![]);
    for s in 0..6 {
        let scene = w.scene(s);
        let f = w.get(s * 2).unwrap();
        let [ex, ey] = scene.ego_at(scene.time(0));
        let (lx, ly) = (ex + rig.lidar.translation[0], ey + rig.lidar.translation[1]);
        for p in f.points.as_ref().unwrap().iter() {
            if p[2] > -1.7 {
                continue;
            }
            let m = scene.layout.material(p[0] as f64 + lx, p[1] as f64 + ly);
            let (li, cam) = match m {
                Material::WhitePaint => (&mut li_paint, &mut cam_paint),
                Material::Asphalt => (&mut li_asph, &mut cam_asph),
                _ => continue,
            };
            li.push(p[3] as f64);
            for c in &f.cameras {
                let q = c.calib.cam_to_lidar.inverse()
                    * Point3::new(p[0] as f64, p[1] as f64, p[2] as f64);
                if q.z < 1.0 {
                    continue;
                }
                let k = c.calib.intrinsics;
                let (u, v) = (
                    k[(0, 0)] * q.x / q.z + k[(0, 2)],
                    k[(1, 1)] * q.y / q.z + k[(1, 2)],
                );
                if u >= 0.0 && v >= 0.0 && (u as u32) < c.calib.width && (v as u32) < c.calib.height
                {
                    let px = c.image.as_ref().unwrap().get_pixel(u as u32, v as u32).0;
                    cam.push((px[0] as f64 + px[1] as f64 + px[2] as f64) / 3.0);
                    break;
                }
            }
        }
    }
    assert!(
        li_paint.len() > 40 && cam_paint.len() > 20,
        "{} {}",
        li_paint.len(),
        cam_paint.len()
    );
    let dprime = |a: &[f64], b: &[f64]| {
        let ((ma, va), (mb, vb)) = (stats(a), stats(b));
        (ma - mb) / ((va + vb) / 2.0).sqrt()
    };
    let d_lidar = dprime(&li_paint, &li_asph);
    let d_cam = dprime(&cam_paint, &cam_asph);
    println!("paint vs asphalt separation d': lidar {d_lidar:.2}, camera {d_cam:.2}");
    assert!(
        d_lidar < 1.5,
        "paint must be faint in LiDAR intensity (d' {d_lidar})"
    );
    assert!(
        d_cam > 2.5 && d_cam > 2.0 * d_lidar,
        "paint must be clear in the camera (d' {d_cam} vs lidar {d_lidar})"
    );
}

#[test]
fn far_and_small_objects_are_sparse_in_the_lidar() {
    let w = world(66, 6, 2, ConditionMix::clean());
    let (mut near, mut far, mut cones) = (vec![], vec![], vec![]);
    for i in 0..w.len() {
        for a in w.get(i).unwrap().annotations {
            let d = a.bbox.center[0].hypot(a.bbox.center[1]);
            if a.bbox.label == class("car") && a.visibility == 4 {
                if d < 12.0 {
                    near.push(a.num_lidar_pts as f64);
                } else if d > 22.0 {
                    far.push(a.num_lidar_pts as f64);
                }
            }
            if a.bbox.label == class("traffic_cone") && d > 15.0 {
                cones.push(a.num_lidar_pts as f64);
            }
        }
    }
    let (mn, mf) = (stats(&near).0, stats(&far).0);
    println!(
        "visible cars: {mn:.0} points within 12 m, {mf:.1} beyond 22 m; far cones {:?}",
        cones
    );
    assert!(near.len() >= 5 && far.len() >= 5);
    assert!(mn > 5.0 * mf, "near {mn} vs far {mf}");
}

#[test]
fn degradations_hit_one_modality_and_spare_the_other() {
    // The same scenes (same seed) generated clean, at night, in fog and with a degraded
    // LiDAR: scene content is identical, only the sensors' view changes.
    let mk = |mix| world(77, 3, 2, mix);
    let clean = mk(ConditionMix::clean());
    let night = mk(ConditionMix {
        night: 1.0,
        fog: 0.0,
        lidar_degraded: 0.0,
    });
    let fog = mk(ConditionMix {
        night: 0.0,
        fog: 1.0,
        lidar_degraded: 0.0,
    });
    let bad_lidar = mk(ConditionMix {
        night: 0.0,
        fog: 0.0,
        lidar_degraded: 1.0,
    });
    let brightness = |f: &Frame| {
        let mut s = 0.0;
        let mut n = 0.0;
        for c in &f.cameras {
            for p in c.image.as_ref().unwrap().pixels() {
                s += (p.0[0] as f64 + p.0[1] as f64 + p.0[2] as f64) / 3.0;
                n += 1.0;
            }
        }
        s / n
    };
    // Contrast: standard deviation of grey levels across the front camera.
    let contrast = |f: &Frame| {
        let v: Vec<f64> = f.cameras[0]
            .image
            .as_ref()
            .unwrap()
            .pixels()
            .map(|p| (p.0[0] as f64 + p.0[1] as f64 + p.0[2] as f64) / 3.0)
            .collect();
        stats(&v).1.sqrt()
    };
    for i in [0, 3, 5] {
        let (c, n, f, b) = (
            clean.get(i).unwrap(),
            night.get(i).unwrap(),
            fog.get(i).unwrap(),
            bad_lidar.get(i).unwrap(),
        );
        assert_eq!(c.annotations.len(), n.annotations.len());
        // Night and fog: the LiDAR sees exactly the same thing; the cameras do not.
        assert_eq!(c.points, n.points);
        assert_eq!(c.points, f.points);
        assert!(
            brightness(&n) < 0.4 * brightness(&c),
            "night {} vs day {}",
            brightness(&n),
            brightness(&c)
        );
        assert!(
            contrast(&f) < 0.8 * contrast(&c),
            "fog contrast {} vs clear {}",
            contrast(&f),
            contrast(&c)
        );
        // Degraded LiDAR: the degradation shows in the points, the images are unchanged.
        let (pc, pb) = (c.points.as_ref().unwrap(), b.points.as_ref().unwrap());
        let count = |p: &altermoma::data::Points, f: &dyn Fn(&[f32]) -> bool| {
            p.iter().filter(|q| f(q)).count() as f64
        };
        match bad_lidar.scene(i / 2).conditions.lidar {
            LidarCondition::Dropout { p } => {
                assert!(count(pb, &|_| true) < (1.0 - 0.8 * p) * count(pc, &|_| true))
            }
            LidarCondition::SparseFar { beyond, keep } => {
                let far = |q: &[f32]| (q[0] as f64).hypot(q[1] as f64) > beyond + 1.0;
                assert!(
                    count(pb, &far) < (keep + 0.1) * count(pc, &far),
                    "far points {} vs {}",
                    count(pb, &far),
                    count(pc, &far)
                );
            }
            LidarCondition::BeamLoss => {
                assert_eq!(count(pb, &|q| q[4] as u32 % 2 == 1), 0.0);
                assert!(count(pb, &|_| true) < 0.7 * count(pc, &|_| true));
            }
            LidarCondition::Normal => panic!("scene {} should have a degraded LiDAR", i / 2),
        }
        assert!(c
            .cameras
            .iter()
            .zip(&b.cameras)
            .all(|(x, y)| x.image == y.image));
    }
}

#[test]
fn every_class_and_map_class_shows_up() {
    let w = world(88, 10, 2, ConditionMix::default());
    let mut classes = [0usize; 10];
    let mut map = [0usize; 6];
    for i in (0..w.len()).step_by(2) {
        let f = w.get(i).unwrap();
        for a in &f.annotations {
            classes[a.bbox.label] += 1;
        }
        let m = f.map.unwrap();
        let cells = m.grid.nx() * m.grid.ny();
        for k in 0..6 {
            map[k] += m.data[k * cells..(k + 1) * cells]
                .iter()
                .map(|&v| v as usize)
                .sum::<usize>();
        }
        assert_eq!(f.cameras.len(), 6);
        assert!(f.points.as_ref().unwrap().len() > 3000);
    }
    println!("annotations per class {classes:?}, map cells per class {map:?}");
    assert!(classes.iter().all(|&n| n > 0), "{classes:?}");
    assert!(map.iter().all(|&n| n > 0), "{map:?}");
}
