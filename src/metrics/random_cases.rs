//! Randomised evaluation inputs for the devkit comparison tests and the benchmark: boxes
//! with the awkward cases the metrics must get right (score ties, exact zero scores, label
//! confusions, duplicates, NaN velocities, absent classes, near-threshold matches), and
//! small nuScenes-layout datasets (tables only, plus the map file and `splits.json` the
//! devkit wants) with instances tracked over samples, time gaps, singletons, zero-point
//! boxes, boxes on the class range limits, bicycle racks and non-detection categories.
//! Deterministic from a seed.

use super::detection_box::{attribute_index, DetectionBox, ATTRIBUTE_NAMES};
use super::results_json::{DetectionResults, ResultsMeta, SampleResults};
use crate::classes::{class_range, detection_class_index, DETECTION_CLASSES};
use crate::data::nuscenes_tables::*;
use anyhow::Result;
use nalgebra::UnitQuaternion;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::path::Path;

/// Typical (width, length, height) of a class.
fn size_prior(label: usize) -> [f64; 3] {
    match DETECTION_CLASSES[label] {
        "car" => [1.9, 4.6, 1.7],
        "truck" => [2.5, 7.0, 3.0],
        "bus" => [2.9, 11.0, 3.5],
        "trailer" => [2.9, 12.0, 3.9],
        "construction_vehicle" => [2.8, 6.4, 3.2],
        "pedestrian" => [0.7, 0.7, 1.8],
        "motorcycle" => [0.8, 2.1, 1.5],
        "bicycle" => [0.6, 1.7, 1.3],
        "traffic_cone" => [0.4, 0.4, 1.0],
        _ => [2.5, 0.5, 1.0],
    }
}

/// Attributes that make sense for a class.
fn relevant_attributes(label: usize) -> &'static [&'static str] {
    match DETECTION_CLASSES[label] {
        "pedestrian" => &[
            "pedestrian.moving",
            "pedestrian.sitting_lying_down",
            "pedestrian.standing",
        ],
        "bicycle" | "motorcycle" => &["cycle.with_rider", "cycle.without_rider"],
        "barrier" | "traffic_cone" => &[],
        _ => &["vehicle.moving", "vehicle.parked", "vehicle.stopped"],
    }
}

fn token(rng: &mut ChaCha8Rng) -> String {
    format!("{:032x}", rng.random::<u128>())
}

fn yaw_quat(yaw: f64) -> [f64; 4] {
    [(yaw / 2.0).cos(), 0.0, 0.0, (yaw / 2.0).sin()]
}

fn tilted_quat(rng: &mut ChaCha8Rng, yaw: f64) -> [f64; 4] {
    let n = Normal::new(0.0, 0.02).unwrap();
    let q = UnitQuaternion::from_euler_angles(n.sample(rng), n.sample(rng), yaw);
    [q.w, q.i, q.j, q.k]
}

/// A score: a third are rounded to one decimal (ties), a few exactly zero.
fn score(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    let s: f64 = rng.random_range(lo..hi);
    let r: f64 = rng.random();
    if r < 0.33 {
        (s * 10.0).round() / 10.0
    } else if r < 0.36 {
        0.0
    } else {
        s
    }
}

/// A prediction derived from a ground-truth box with random errors of every kind.
fn noisy_prediction(
    rng: &mut ChaCha8Rng,
    g: &DetectionBox,
    allow_nan_velocity: bool,
) -> DetectionBox {
    let sigma = *[0.05, 0.3, 0.8, 1.6, 3.0].choose(rng).unwrap();
    let n = Normal::new(0.0, sigma).unwrap();
    let mut label = g.label;
    if rng.random::<f64>() < 0.05 {
        label = rng.random_range(0..DETECTION_CLASSES.len());
    }
    let yaw = quaternion_yaw_of(g)
        + Normal::new(0.0, 0.3).unwrap().sample(rng)
        + if rng.random::<f64>() < 0.1 {
            std::f64::consts::PI
        } else {
            0.0
        };
    let size = g.size.map(|s| (s * rng.random_range(0.7..1.3)).max(0.05));
    let velocity = if allow_nan_velocity && rng.random::<f64>() < 0.05 {
        [f64::NAN, f64::NAN]
    } else if g.velocity[0].is_finite() {
        [
            g.velocity[0] + rng.random_range(-1.0..1.0),
            g.velocity[1] + rng.random_range(-1.0..1.0),
        ]
    } else {
        [rng.random_range(-3.0..3.0), rng.random_range(-3.0..3.0)]
    };
    let attrs = relevant_attributes(label);
    let attribute = if attrs.is_empty() {
        None
    } else {
        attribute_index(attrs.choose(rng).unwrap())
    };
    DetectionBox {
        translation: [
            g.translation[0] + n.sample(rng),
            g.translation[1] + n.sample(rng),
            g.translation[2] + n.sample(rng),
        ],
        size,
        rotation: yaw_quat(yaw),
        velocity,
        label,
        score: score(rng, 0.2, 1.0),
        attribute,
        num_pts: -1,
    }
}

fn quaternion_yaw_of(b: &DetectionBox) -> f64 {
    super::detection_box::quaternion_yaw(b.rotation)
}

fn false_positive(rng: &mut ChaCha8Rng, center: [f64; 3], radius: f64) -> DetectionBox {
    let label = rng.random_range(0..DETECTION_CLASSES.len());
    let r = radius * rng.random::<f64>().sqrt();
    let a: f64 = rng.random_range(-3.2..3.2);
    let attrs = relevant_attributes(label);
    DetectionBox {
        translation: [
            center[0] + r * a.cos(),
            center[1] + r * a.sin(),
            center[2] + rng.random_range(-1.0..1.0),
        ],
        size: size_prior(label).map(|s| s * rng.random_range(0.8..1.2)),
        rotation: yaw_quat(rng.random_range(-3.2..3.2)),
        velocity: [rng.random_range(-5.0..5.0), rng.random_range(-5.0..5.0)],
        label,
        score: score(rng, 0.0, 0.7),
        attribute: if attrs.is_empty() {
            None
        } else {
            attribute_index(attrs.choose(rng).unwrap())
        },
        num_pts: -1,
    }
}

/// Boxes of an evaluation that is already filtered (the level of the devkit's `accumulate`).
#[derive(Clone, Debug)]
pub struct BoxCase {
    pub tokens: Vec<String>,
    pub gt: Vec<Vec<DetectionBox>>,
    pub pred: Vec<Vec<DetectionBox>>,
}

/// A random filtered case: `samples` samples with up to `max_gt` GT boxes each. One class
/// (chosen by the seed) has no ground truth at all, and predictions may carry NaN velocity.
pub fn random_box_case(seed: u64, samples: usize, max_gt: usize) -> BoxCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let absent = rng.random_range(0..DETECTION_CLASSES.len());
    let mut case = BoxCase {
        tokens: Vec::new(),
        gt: Vec::new(),
        pred: Vec::new(),
    };
    for s in 0..samples {
        case.tokens.push(format!("sample{seed}_{s:03}"));
        let n_gt = rng.random_range(0..=max_gt);
        let mut gt = Vec::new();
        for _ in 0..n_gt {
            let mut label = rng.random_range(0..DETECTION_CLASSES.len());
            if label == absent {
                label = (label + 1) % DETECTION_CLASSES.len();
            }
            let attrs = relevant_attributes(label);
            let attribute = if attrs.is_empty() || rng.random::<f64>() < 0.1 {
                None
            } else {
                attribute_index(attrs.choose(&mut rng).unwrap())
            };
            let velocity = if rng.random::<f64>() < 0.15 {
                [f64::NAN, f64::NAN]
            } else {
                [rng.random_range(-8.0..8.0), rng.random_range(-8.0..8.0)]
            };
            gt.push(DetectionBox {
                translation: [
                    rng.random_range(-40.0..40.0),
                    rng.random_range(-40.0..40.0),
                    rng.random_range(-2.0..2.0),
                ],
                size: size_prior(label).map(|v| v * rng.random_range(0.8..1.2)),
                rotation: {
                    let yaw = rng.random_range(-3.2..3.2);
                    tilted_quat(&mut rng, yaw)
                },
                velocity,
                label,
                score: -1.0,
                attribute,
                num_pts: rng.random_range(1..100),
            });
        }
        let mut pred = Vec::new();
        for g in &gt {
            if rng.random::<f64>() < 0.75 {
                pred.push(noisy_prediction(&mut rng, g, true));
            }
            if rng.random::<f64>() < 0.1 {
                pred.push(noisy_prediction(&mut rng, g, true));
            }
        }
        // a cluster near one box: equal-distance and near-threshold candidates
        if let Some(g) = gt.first() {
            let mut p = noisy_prediction(&mut rng, g, false);
            p.translation = [g.translation[0] + 0.5, g.translation[1], g.translation[2]];
            pred.push(p);
        }
        for _ in 0..rng.random_range(0..=max_gt / 2 + 1) {
            pred.push(false_positive(&mut rng, [0.0, 0.0, 0.0], 45.0));
        }
        pred.shuffle(&mut rng);
        case.gt.push(gt);
        case.pred.push(pred);
    }
    case
}

/// `EvalBoxes.serialize()`-style JSON text of per-sample boxes for the devkit, samples in
/// the given order (NaN as `null`; the Python side turns it back into NaN).
pub fn eval_boxes_json(tokens: &[String], boxes: &[Vec<DetectionBox>]) -> String {
    let f = |v: f64| {
        if v.is_finite() {
            serde_json::json!(v)
        } else {
            serde_json::Value::Null
        }
    };
    let mut parts = Vec::with_capacity(tokens.len());
    for (t, bs) in tokens.iter().zip(boxes) {
        let list: Vec<serde_json::Value> = bs
            .iter()
            .map(|b| {
                serde_json::json!({
                    "sample_token": t,
                    "translation": b.translation,
                    "size": b.size,
                    "rotation": b.rotation,
                    "velocity": [f(b.velocity[0]), f(b.velocity[1])],
                    "ego_translation": [0.0, 0.0, 0.0],
                    "num_pts": b.num_pts,
                    "detection_name": b.detection_name(),
                    "detection_score": b.score,
                    "attribute_name": b.attribute_name(),
                })
            })
            .collect();
        parts.push(format!(
            "{}: {}",
            serde_json::Value::String(t.clone()),
            serde_json::Value::Array(list)
        ));
    }
    format!("{{{}}}", parts.join(",\n"))
}

/// Size of a random nuScenes-layout dataset.
#[derive(Clone, Debug)]
pub struct DatasetParams {
    pub scenes: usize,
    pub samples_per_scene: usize,
    /// Tracked objects per scene (each lives over a random run of samples).
    pub objects_per_scene: usize,
    /// Predictions per sample: `None` for "noisy detections + a few false positives", or
    /// exactly this many (filled with low-score false positives; the benchmark uses 500).
    pub boxes_per_sample: Option<usize>,
}

impl Default for DatasetParams {
    fn default() -> Self {
        Self {
            scenes: 3,
            samples_per_scene: 10,
            objects_per_scene: 40,
            boxes_per_sample: None,
        }
    }
}

/// Tables of a random dataset and predictions for all its samples (samples shuffled, to
/// exercise ordering), plus the scene names.
pub struct RandomDataset {
    pub tables: NuScenesTables,
    pub results: DetectionResults,
    pub scene_names: Vec<String>,
}

const EXTRA_CATEGORIES: [&str; 4] = [
    "static_object.bicycle_rack",
    "animal",
    "vehicle.emergency.police",
    "human.pedestrian.stroller",
];

fn categories_of(label: usize) -> &'static [&'static str] {
    match DETECTION_CLASSES[label] {
        "car" => &["vehicle.car"],
        "truck" => &["vehicle.truck"],
        "bus" => &["vehicle.bus.bendy", "vehicle.bus.rigid"],
        "trailer" => &["vehicle.trailer"],
        "construction_vehicle" => &["vehicle.construction"],
        "pedestrian" => &[
            "human.pedestrian.adult",
            "human.pedestrian.child",
            "human.pedestrian.construction_worker",
            "human.pedestrian.police_officer",
        ],
        "motorcycle" => &["vehicle.motorcycle"],
        "bicycle" => &["vehicle.bicycle"],
        "traffic_cone" => &["movable_object.trafficcone"],
        _ => &["movable_object.barrier"],
    }
}

struct Obj {
    category: String,
    label: Option<usize>,
    start: usize,
    len: usize,
    p0: [f64; 3],
    v: [f64; 2],
    yaw: f64,
    size: [f64; 3],
}

/// Generate a random dataset (see the module documentation).
pub fn random_dataset(seed: u64, p: &DatasetParams) -> RandomDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = NuScenesTables::default();
    let mut all_categories: Vec<&str> = Vec::new();
    for l in 0..DETECTION_CLASSES.len() {
        all_categories.extend(categories_of(l));
    }
    all_categories.extend(EXTRA_CATEGORIES);
    for c in &all_categories {
        t.category.push(Category {
            token: token(&mut rng),
            name: c.to_string(),
            description: String::new(),
            index: None,
        });
    }
    let cat_token = |t: &NuScenesTables, name: &str| {
        t.category
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .token
            .clone()
    };
    for a in ATTRIBUTE_NAMES {
        t.attribute.push(Attribute {
            token: token(&mut rng),
            name: a.to_string(),
            description: String::new(),
        });
    }
    for (i, lvl) in ["v0-40", "v40-60", "v60-80", "v80-100"].iter().enumerate() {
        t.visibility.push(Visibility {
            token: (i + 1).to_string(),
            level: lvl.to_string(),
            description: String::new(),
        });
    }
    let lidar = Sensor {
        token: token(&mut rng),
        channel: "LIDAR_TOP".into(),
        modality: "lidar".into(),
    };
    let cam = Sensor {
        token: token(&mut rng),
        channel: "CAM_FRONT".into(),
        modality: "camera".into(),
    };
    let lidar_cs = CalibratedSensor {
        token: token(&mut rng),
        sensor_token: lidar.token.clone(),
        translation: [0.94, 0.0, 1.84],
        rotation: yaw_quat(-std::f64::consts::FRAC_PI_2),
        camera_intrinsic: Vec::new(),
    };
    let cam_cs = CalibratedSensor {
        token: token(&mut rng),
        sensor_token: cam.token.clone(),
        translation: [1.7, 0.0, 1.5],
        rotation: [0.5, -0.5, 0.5, -0.5],
        camera_intrinsic: vec![
            vec![1266.0, 0.0, 816.0],
            vec![0.0, 1266.0, 491.0],
            vec![0.0, 0.0, 1.0],
        ],
    };
    t.sensor.extend([lidar, cam]);
    t.calibrated_sensor
        .extend([lidar_cs.clone(), cam_cs.clone()]);
    let log = Log {
        token: token(&mut rng),
        logfile: "random-log".into(),
        vehicle: "n015".into(),
        date_captured: "2018-07-24".into(),
        location: "singapore-onenorth".into(),
    };
    t.map.push(MapRecord {
        token: token(&mut rng),
        log_tokens: vec![log.token.clone()],
        category: "semantic_prior".into(),
        filename: "maps/random_map.png".into(),
    });
    t.log.push(log.clone());

    let mut results = DetectionResults::new(ResultsMeta::camera_lidar());
    let mut scene_names = Vec::new();
    for sc in 0..p.scenes {
        let scene_token = token(&mut rng);
        let name = format!("scene-{:04}", sc + 1);
        scene_names.push(name.clone());
        let n = p.samples_per_scene;
        // timestamps: 0.5 s apart, with a 1.7 s gap (one-sided differences NaN) in scene 0 and
        // a 2.7 s gap (centred differences NaN too) in scene 1
        let mut ts = Vec::with_capacity(n);
        let mut now: i64 = 1_532_402_927_000_000 + sc as i64 * 100_000_000;
        for k in 0..n {
            if k == n / 2 && sc % 3 == 0 {
                now += 1_200_000;
            }
            if k == n / 2 && sc % 3 == 1 {
                now += 2_200_000;
            }
            ts.push(now);
            now += 500_000;
        }
        let ego_origin = [rng.random_range(0.0..2000.0), rng.random_range(0.0..2000.0)];
        let ego_yaw: f64 = rng.random_range(-3.2..3.2);
        let ego_speed: f64 = rng.random_range(0.0..12.0);
        let ego_at = |k: usize| -> [f64; 3] {
            let dt = (ts[k] - ts[0]) as f64 * 1e-6;
            [
                ego_origin[0] + ego_speed * dt * ego_yaw.cos(),
                ego_origin[1] + ego_speed * dt * ego_yaw.sin(),
                0.0,
            ]
        };
        let sample_tokens: Vec<String> = (0..n).map(|_| token(&mut rng)).collect();
        for k in 0..n {
            t.sample.push(Sample {
                token: sample_tokens[k].clone(),
                timestamp: ts[k],
                prev: if k > 0 {
                    sample_tokens[k - 1].clone()
                } else {
                    String::new()
                },
                next: if k + 1 < n {
                    sample_tokens[k + 1].clone()
                } else {
                    String::new()
                },
                scene_token: scene_token.clone(),
            });
            let e = ego_at(k);
            // key-frame LIDAR_TOP, a non-key-frame sweep far away, and a camera key frame
            for (cs, key, offset, fmt) in [
                (&lidar_cs, true, 0.0, "pcd"),
                (&lidar_cs, false, 500.0, "pcd"),
                (&cam_cs, true, 0.3, "jpg"),
            ] {
                let pose = EgoPose {
                    token: token(&mut rng),
                    timestamp: ts[k],
                    rotation: yaw_quat(ego_yaw),
                    translation: [e[0] + offset, e[1], 0.0],
                };
                t.sample_data.push(SampleData {
                    token: token(&mut rng),
                    sample_token: sample_tokens[k].clone(),
                    ego_pose_token: pose.token.clone(),
                    calibrated_sensor_token: cs.token.clone(),
                    timestamp: ts[k] + if key { 0 } else { 50_000 },
                    fileformat: fmt.into(),
                    is_key_frame: key,
                    height: if fmt == "jpg" { 900 } else { 0 },
                    width: if fmt == "jpg" { 1600 } else { 0 },
                    filename: format!("samples/x/{}.{fmt}", pose.token),
                    prev: String::new(),
                    next: String::new(),
                });
                t.ego_pose.push(pose);
            }
        }
        t.scene.push(Scene {
            token: scene_token.clone(),
            log_token: log.token.clone(),
            nbr_samples: n as u32,
            first_sample_token: sample_tokens[0].clone(),
            last_sample_token: sample_tokens[n - 1].clone(),
            name,
            description: "random".into(),
        });

        // objects
        let mut objs: Vec<Obj> = Vec::new();
        let rack_count = 2;
        for _ in 0..p.objects_per_scene {
            let extra = rng.random::<f64>() < 0.08;
            let (category, label) = if extra {
                (
                    EXTRA_CATEGORIES[rng.random_range(1..EXTRA_CATEGORIES.len())].to_string(),
                    None,
                )
            } else {
                let l = rng.random_range(0..DETECTION_CLASSES.len());
                (
                    categories_of(l).choose(&mut rng).unwrap().to_string(),
                    Some(l),
                )
            };
            let start = rng.random_range(0..n);
            let len = if rng.random::<f64>() < 0.15 {
                1
            } else {
                rng.random_range(1..=n - start)
            };
            let e = ego_at(start);
            let r = 62.0 * rng.random::<f64>().sqrt();
            let a: f64 = rng.random_range(-3.2..3.2);
            let moving =
                label.is_some_and(|l| !matches!(DETECTION_CLASSES[l], "barrier" | "traffic_cone"));
            let yaw: f64 = rng.random_range(-3.2..3.2);
            let speed = if moving && rng.random::<f64>() < 0.6 {
                rng.random_range(0.0..10.0)
            } else {
                0.0
            };
            objs.push(Obj {
                category,
                label,
                start,
                len,
                p0: [
                    e[0] + r * a.cos(),
                    e[1] + r * a.sin(),
                    rng.random_range(0.0..2.0),
                ],
                v: [speed * yaw.cos(), speed * yaw.sin()],
                yaw,
                size: label
                    .map(size_prior)
                    .unwrap_or([0.8, 1.0, 1.0])
                    .map(|s| s * rng.random_range(0.8..1.2)),
            });
        }
        // objects around and on the range limits: singletons at range -/+ 1e-4 m and at range
        for l in 0..DETECTION_CLASSES.len() {
            let k = rng.random_range(0..n);
            let e = ego_at(k);
            let range = class_range(DETECTION_CLASSES[l]).unwrap();
            for d in [range - 1e-4, range + 1e-4, range] {
                // the last exactly at the range along +x (ego_dist == range: dropped)
                let a: f64 = if d == range {
                    0.0
                } else {
                    rng.random_range(-3.2..3.2)
                };
                objs.push(Obj {
                    category: categories_of(l)[0].to_string(),
                    label: Some(l),
                    start: k,
                    len: 1,
                    p0: [e[0] + d * a.cos(), e[1] + d * a.sin(), 1.0],
                    v: [0.0, 0.0],
                    yaw: a,
                    size: size_prior(l),
                });
            }
        }
        // bicycle racks, each with a bicycle and a motorcycle parked inside and a pedestrian
        // standing in it (the filter drops only the cycles)
        for _ in 0..rack_count {
            let k = rng.random_range(0..n);
            let e = ego_at(k);
            let a: f64 = rng.random_range(-3.2..3.2);
            let c = [e[0] + 15.0 * a.cos(), e[1] + 15.0 * a.sin(), 0.6];
            let yaw: f64 = rng.random_range(-3.2..3.2);
            let len = n - k;
            objs.push(Obj {
                category: "static_object.bicycle_rack".into(),
                label: None,
                start: k,
                len,
                p0: c,
                v: [0.0, 0.0],
                yaw,
                size: [2.0, 6.0, 1.5],
            });
            for (cls, off) in [("bicycle", -1.5), ("motorcycle", 1.5), ("pedestrian", 0.0)] {
                let l = detection_class_index(cls).unwrap();
                objs.push(Obj {
                    category: categories_of(l)[0].to_string(),
                    label: Some(l),
                    start: k,
                    len,
                    p0: [c[0] + off * yaw.cos(), c[1] + off * yaw.sin(), 0.6],
                    v: [0.0, 0.0],
                    yaw,
                    size: size_prior(l),
                });
            }
        }

        // annotations per sample, in object order
        let mut per_sample_gt: Vec<Vec<DetectionBox>> = vec![Vec::new(); n];
        for o in &objs {
            let inst_token = token(&mut rng);
            let ann_tokens: Vec<String> = (0..o.len).map(|_| token(&mut rng)).collect();
            let cat = cat_token(&t, &o.category);
            t.instance.push(Instance {
                token: inst_token.clone(),
                category_token: cat,
                nbr_annotations: o.len as u32,
                first_annotation_token: ann_tokens[0].clone(),
                last_annotation_token: ann_tokens[o.len - 1].clone(),
            });
            for j in 0..o.len {
                let k = o.start + j;
                let dt = (ts[k] - ts[o.start]) as f64 * 1e-6;
                let translation = [o.p0[0] + o.v[0] * dt, o.p0[1] + o.v[1] * dt, o.p0[2]];
                let attribute_tokens = match o.label {
                    Some(l) if !relevant_attributes(l).is_empty() && rng.random::<f64>() < 0.9 => {
                        let name = relevant_attributes(l).choose(&mut rng).unwrap();
                        vec![t.attribute[attribute_index(name).unwrap()].token.clone()]
                    }
                    _ => Vec::new(),
                };
                let num_lidar_pts = if rng.random::<f64>() < 0.12 {
                    0
                } else {
                    rng.random_range(1..300)
                };
                let num_radar_pts = if rng.random::<f64>() < 0.6 {
                    0
                } else {
                    rng.random_range(1..6)
                };
                let rotation = tilted_quat(&mut rng, o.yaw);
                t.sample_annotation.push(SampleAnnotation {
                    token: ann_tokens[j].clone(),
                    sample_token: sample_tokens[k].clone(),
                    instance_token: inst_token.clone(),
                    visibility_token: rng.random_range(1..=4).to_string(),
                    attribute_tokens: attribute_tokens.clone(),
                    translation,
                    size: o.size,
                    rotation,
                    prev: if j > 0 {
                        ann_tokens[j - 1].clone()
                    } else {
                        String::new()
                    },
                    next: if j + 1 < o.len {
                        ann_tokens[j + 1].clone()
                    } else {
                        String::new()
                    },
                    num_lidar_pts,
                    num_radar_pts,
                });
                if let Some(l) = o.label {
                    per_sample_gt[k].push(DetectionBox {
                        translation,
                        size: o.size,
                        rotation,
                        velocity: o.v,
                        label: l,
                        score: -1.0,
                        attribute: None,
                        num_pts: num_lidar_pts + num_radar_pts,
                    });
                }
            }
        }

        // predictions
        for k in 0..n {
            let mut boxes: Vec<DetectionBox> = Vec::new();
            for g in &per_sample_gt[k] {
                if rng.random::<f64>() < 0.8 {
                    boxes.push(noisy_prediction(&mut rng, g, false));
                }
                if rng.random::<f64>() < 0.05 {
                    boxes.push(noisy_prediction(&mut rng, g, false));
                }
            }
            let e = ego_at(k);
            let target = p
                .boxes_per_sample
                .unwrap_or(boxes.len() + rng.random_range(0..8));
            while boxes.len() < target {
                boxes.push(false_positive(&mut rng, e, 58.0));
            }
            boxes.truncate(target);
            boxes.shuffle(&mut rng);
            results.samples.push(SampleResults {
                sample_token: sample_tokens[k].clone(),
                boxes,
            });
        }
    }
    results.samples.shuffle(&mut rng);
    RandomDataset {
        tables: t,
        results,
        scene_names,
    }
}

/// Write the tables to `<dataroot>/<version>/`, the map file every map record names (the
/// devkit opens it), and `splits.json` with the given custom splits.
pub fn write_dataset(
    dataroot: impl AsRef<Path>,
    version: &str,
    tables: &NuScenesTables,
    splits: &[(&str, Vec<String>)],
) -> Result<()> {
    let root = dataroot.as_ref();
    tables.save(root, version)?;
    for m in &tables.map {
        let path = root.join(&m.filename);
        crate::io::atomic_write_via_path(&path, |tmp| {
            Ok(image::GrayImage::new(8, 8).save_with_format(tmp, image::ImageFormat::Png)?)
        })?;
    }
    let obj: serde_json::Map<String, serde_json::Value> = splits
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    crate::io::write_json(root.join(version).join("splits.json"), &obj)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_loadable() {
        let p = DatasetParams {
            scenes: 2,
            samples_per_scene: 6,
            objects_per_scene: 10,
            boxes_per_sample: None,
        };
        let a = random_dataset(7, &p);
        let b = random_dataset(7, &p);
        assert_eq!(a.tables, b.tables);
        assert_eq!(a.results, b.results);
        assert_eq!(a.tables.sample.len(), 12);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(
            dir.path(),
            "v1.0-rand",
            &a.tables,
            &[("val", a.scene_names.clone())],
        )
        .unwrap();
        let gt =
            super::super::GroundTruth::load(dir.path(), "v1.0-rand", &super::super::Split::All)
                .unwrap();
        assert_eq!(gt.samples.len(), 12);
        assert!(gt.samples.iter().any(|s| !s.bike_racks.is_empty()));
        let c = random_box_case(1, 5, 10);
        assert_eq!(c.gt.len(), 5);
    }
}
