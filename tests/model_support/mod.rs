//! Hand-made frames for the model and training tests: boxes sampled as LiDAR points and
//! painted into pinhole images, a drivable-area strip as the map.
#![allow(dead_code)]

use altermoma::data::{Annotation, BevMap, CameraCalib, CameraFrame, Frame, Points};
use altermoma::geometry::{BevGrid, Box3D};
use altermoma::model::ModelConfig;
use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

pub fn config_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/model")
        .join(format!("{name}.yaml"))
}

pub fn tiny() -> ModelConfig {
    ModelConfig::load(config_path("tiny")).expect("tiny config")
}

/// Three cameras (front, left, right) of `w x h` pixels.
pub fn rig(w: u32, h: u32) -> Vec<CameraCalib> {
    let f = w as f64 / 2.0 / (35f64.to_radians()).tan();
    let base = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    [
        ("CAM_FRONT", 0.0),
        ("CAM_FRONT_LEFT", 1.2),
        ("CAM_FRONT_RIGHT", -1.2),
    ]
    .iter()
    .map(|(name, yaw)| {
        let r = Rotation3::from_axis_angle(&Vector3::z_axis(), *yaw).into_inner() * base;
        let rot = UnitQuaternion::from_matrix(&r);
        CameraCalib {
            name: name.to_string(),
            width: w,
            height: h,
            intrinsics: Matrix3::new(
                f,
                0.0,
                w as f64 / 2.0,
                0.0,
                f,
                h as f64 / 2.0,
                0.0,
                0.0,
                1.0,
            ),
            cam_to_lidar: Isometry3::from_parts(Translation3::new(0.5, 0.0, 0.2), rot),
        }
    })
    .collect()
}

/// A frame with a few boxes (cars and pedestrians) in front of the ego vehicle.
pub fn frame(seed: u64) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cams = rig(160, 96);
    let mut boxes = Vec::new();
    for _ in 0..rng.random_range(2..5) {
        let car = rng.random_bool(0.6);
        let (size, label) = if car {
            ([1.9, 4.4, 1.6], 0)
        } else {
            ([0.7, 0.7, 1.8], 8)
        };
        boxes.push(Box3D {
            center: [
                rng.random_range(4.0..20.0),
                rng.random_range(-12.0..12.0),
                size[2] / 2.0 - 1.7,
            ],
            size,
            yaw: rng.random_range(-3.1..3.1),
            velocity: [rng.random_range(-2.0..2.0), 0.0],
            label,
            score: 1.0,
        });
    }
    let mut pts = Vec::new();
    for _ in 0..1500 {
        let (x, y): (f32, f32) = (rng.random_range(-24.0..24.0), rng.random_range(-24.0..24.0));
        pts.extend_from_slice(&[x, y, -1.7, 10.0, 0.0]);
    }
    let mut annotations = Vec::new();
    for (k, b) in boxes.iter().enumerate() {
        let mut n = 0;
        for _ in 0..150 {
            let l = [
                rng.random_range(-0.5..0.5),
                rng.random_range(-0.5..0.5),
                rng.random_range(-0.5..0.5),
            ];
            let (s, c) = b.yaw.sin_cos();
            let (lx, ly) = (l[0] * b.size[1], l[1] * b.size[0]);
            let p = [
                b.center[0] + c * lx - s * ly,
                b.center[1] + s * lx + c * ly,
                b.center[2] + l[2] * b.size[2],
            ];
            pts.extend_from_slice(&[p[0] as f32, p[1] as f32, p[2] as f32, 100.0, 1.0]);
            n += 1;
        }
        annotations.push(Annotation {
            bbox: b.clone(),
            instance_token: format!("inst{seed}-{k}"),
            num_lidar_pts: n,
            attribute: String::new(),
            visibility: 4,
        });
    }
    let cameras = cams
        .into_iter()
        .map(|calib| {
            let mut img =
                image::RgbImage::from_pixel(calib.width, calib.height, image::Rgb([90, 90, 110]));
            let inv = calib.cam_to_lidar.inverse();
            for b in &boxes {
                let colour = if b.label == 0 {
                    [200, 30, 30]
                } else {
                    [30, 200, 30]
                };
                for corner in b.corners() {
                    let pc = inv * nalgebra::Point3::new(corner[0], corner[1], corner[2]);
                    if pc.z < 0.5 {
                        continue;
                    }
                    let q = calib.intrinsics * pc.coords;
                    let (u, v) = ((q.x / q.z) as i64, (q.y / q.z) as i64);
                    for du in -3..=3 {
                        for dv in -3..=3 {
                            let (x, y) = (u + du, v + dv);
                            if x >= 0
                                && y >= 0
                                && (x as u32) < calib.width
                                && (y as u32) < calib.height
                            {
                                img.put_pixel(x as u32, y as u32, image::Rgb(colour));
                            }
                        }
                    }
                }
            }
            CameraFrame {
                calib,
                image: Some(altermoma::data::share(img)),
                timestamp_us: 0,
            }
        })
        .collect();
    let grid = BevGrid {
        x_min: -30.0,
        x_max: 30.0,
        y_min: -30.0,
        y_max: 30.0,
        resolution: 0.5,
    };
    let (nx, ny) = (grid.nx(), grid.ny());
    let mut data = vec![0u8; 6 * nx * ny];
    let off: f64 = rng.random_range(-3.0..3.0);
    for i in 0..nx {
        for j in 0..ny {
            let (_, y) = grid.center(i, j);
            if (y - off).abs() < 4.0 {
                data[i * ny + j] = 1; // drivable_area
            }
            if (y - off).abs() < 0.3 {
                data[5 * nx * ny + i * ny + j] = 1; // divider
            }
        }
    }
    Frame {
        token: format!("tok{seed}"),
        scene_token: "scene".into(),
        timestamp_us: seed as i64 * 500_000,
        lidar_to_ego: Isometry3::identity(),
        ego_to_global: Isometry3::identity(),
        points: Some(Points { data: pts }),
        cameras,
        annotations,
        map: Some(BevMap { grid, data }),
    }
}

pub fn frames(seed: u64, n: usize) -> Vec<Frame> {
    (0..n as u64).map(|i| frame(seed * 1000 + i)).collect()
}

/// An in-memory dataset of frames.
pub struct VecDataset(pub Vec<Frame>);

impl altermoma::data::Dataset for VecDataset {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> anyhow::Result<Frame> {
        self.0
            .get(index)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no frame {index}"))
    }
    fn token(&self, index: usize) -> String {
        self.0[index].token.clone()
    }
    fn cameras(&self) -> Vec<CameraCalib> {
        self.0
            .first()
            .map(|f| f.cameras.iter().map(|c| c.calib.clone()).collect())
            .unwrap_or_default()
    }
}
