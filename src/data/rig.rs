//! Sensor rigs: where the cameras and the LiDAR sit on the car and how they see.
//!
//! Rigs are YAML files (`config/data/<name>.yaml`); the two built-in ones are embedded in the
//! binary: `tiny` (6 x 176x96 cameras, 16-beam LiDAR: tests, the CPU demo, the `tiny` model)
//! and `nuscenes` (6 x 1600x900 cameras with nuScenes-like calibration, 32-beam LiDAR).
//!
//! Frames: the ego frame is x forward, y left, z up with its origin on the ground. The
//! synthetic LiDAR is mounted axis-aligned with the ego at `lidar.translation`; cameras are
//! level, turned by `yaw_deg` about +z (and optionally pitched down by `pitch_deg`), and
//! their optical frame is z forward, x right, y down.

use crate::config::{ensure, FieldError, Validate};
use crate::data::frame::CameraCalib;
use crate::geometry::BevGrid;
use anyhow::{Context, Result};
use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The spinning LiDAR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LidarSpec {
    #[serde(default = "default_lidar_channel")]
    pub channel: String,
    /// Mount position in the ego frame (metres).
    pub translation: [f64; 3],
    pub beams: usize,
    pub elevation_min_deg: f64,
    pub elevation_max_deg: f64,
    pub azimuth_step_deg: f64,
    #[serde(default = "default_min_range")]
    pub min_range: f64,
    pub max_range: f64,
    /// Gaussian range noise (metres, one sigma).
    pub range_noise_std: f64,
    /// Probability that a return is randomly lost.
    pub dropout: f64,
}

fn default_lidar_channel() -> String {
    "LIDAR_TOP".into()
}
fn default_min_range() -> f64 {
    1.0
}

/// One pinhole camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    /// nuScenes channel name, e.g. `CAM_FRONT`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Horizontal field of view; gives fx = fy with the principal point at the centre.
    #[serde(default)]
    pub hfov_deg: Option<f64>,
    /// `[fx, fy, cx, cy]` in pixels; overrides `hfov_deg`.
    #[serde(default)]
    pub intrinsics: Option<[f64; 4]>,
    /// Optical centre in the ego frame (metres).
    pub translation: [f64; 3],
    /// Viewing direction about +z (0 = forward, 90 = left).
    pub yaw_deg: f64,
    /// Downward tilt of the optical axis.
    #[serde(default)]
    pub pitch_deg: f64,
}

/// A complete rig.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rig {
    pub name: String,
    /// `log.vehicle` in the nuScenes tables.
    pub vehicle: String,
    /// Objects whose centre lies within this horizontal distance of the LiDAR are annotated.
    pub annotation_range: f64,
    /// Default BEV grid of the map crop in [`crate::data::Frame::map`].
    pub map_grid: BevGrid,
    #[serde(default = "default_jpeg_quality")]
    pub jpeg_quality: u8,
    pub lidar: LidarSpec,
    pub cameras: Vec<CameraSpec>,
}

fn default_jpeg_quality() -> u8 {
    90
}

const TINY_YAML: &str = include_str!("../../config/data/tiny.yaml");
const NUSCENES_YAML: &str = include_str!("../../config/data/nuscenes.yaml");

/// Names of the built-in rigs.
pub const BUILTIN_RIGS: [&str; 2] = ["tiny", "nuscenes"];

impl Validate for Rig {
    fn validate(&self) -> Result<(), FieldError> {
        ensure(!self.name.is_empty(), "name", "must not be empty")?;
        ensure(
            self.annotation_range > 0.0,
            "annotation_range",
            "must be positive",
        )?;
        let g = &self.map_grid;
        ensure(
            g.resolution > 0.0 && g.x_max > g.x_min && g.y_max > g.y_min,
            "map_grid",
            "needs x_min < x_max, y_min < y_max and resolution > 0",
        )?;
        ensure(
            (1..=100).contains(&self.jpeg_quality),
            "jpeg_quality",
            "must be in 1..=100",
        )?;
        let l = &self.lidar;
        ensure(
            l.beams >= 1 && l.beams <= 256,
            "lidar.beams",
            "must be in 1..=256",
        )?;
        ensure(
            l.elevation_max_deg > l.elevation_min_deg || l.beams == 1,
            "lidar.elevation_max_deg",
            "must exceed elevation_min_deg",
        )?;
        ensure(
            l.elevation_min_deg > -89.0 && l.elevation_max_deg < 89.0,
            "lidar.elevation_min_deg",
            "elevations must lie within (-89, 89) degrees",
        )?;
        ensure(
            l.azimuth_step_deg >= 0.05 && l.azimuth_step_deg <= 10.0,
            "lidar.azimuth_step_deg",
            "must be in [0.05, 10]",
        )?;
        ensure(
            l.max_range > l.min_range && l.min_range >= 0.0,
            "lidar.max_range",
            "must exceed min_range >= 0",
        )?;
        ensure(
            l.range_noise_std >= 0.0,
            "lidar.range_noise_std",
            "must be >= 0",
        )?;
        ensure(
            (0.0..1.0).contains(&l.dropout),
            "lidar.dropout",
            "must be in [0, 1)",
        )?;
        ensure(
            l.translation[2] > 0.3,
            "lidar.translation",
            "the LiDAR must sit above the ground (z > 0.3 m)",
        )?;
        ensure(
            !self.cameras.is_empty(),
            "cameras",
            "at least one camera is needed",
        )?;
        for (i, c) in self.cameras.iter().enumerate() {
            let f = |s: &str| format!("cameras[{i}].{s}");
            ensure(
                c.name.starts_with("CAM_"),
                &f("name"),
                format!("`{}` must start with CAM_ (nuScenes channel)", c.name),
            )?;
            ensure(
                self.cameras.iter().filter(|o| o.name == c.name).count() == 1,
                &f("name"),
                format!("`{}` is used twice", c.name),
            )?;
            ensure(
                c.width >= 8 && c.height >= 8 && c.width <= 8192 && c.height <= 8192,
                &f("width"),
                "image size must be in 8..=8192",
            )?;
            match (c.hfov_deg, c.intrinsics) {
                (_, Some(k)) => ensure(
                    k[0] > 0.0 && k[1] > 0.0,
                    &f("intrinsics"),
                    "fx and fy must be positive",
                )?,
                (Some(h), None) => {
                    ensure(h > 5.0 && h < 170.0, &f("hfov_deg"), "must be in (5, 170)")?
                }
                (None, None) => {
                    return Err(FieldError::new(
                        f("hfov_deg"),
                        "give hfov_deg or intrinsics",
                    ))
                }
            }
            ensure(
                c.pitch_deg.abs() < 60.0,
                &f("pitch_deg"),
                "must be within +-60 degrees",
            )?;
        }
        Ok(())
    }
}

impl Rig {
    /// A built-in rig by name (`tiny`, `nuscenes`), or a rig YAML file by path.
    pub fn load(name_or_path: &str) -> Result<Rig> {
        let text = match name_or_path {
            "tiny" => TINY_YAML,
            "nuscenes" => NUSCENES_YAML,
            path => {
                let p = Path::new(path);
                if !p.exists() {
                    anyhow::bail!(
                        "unknown rig `{path}`: not a built-in rig ({}) and no such file",
                        BUILTIN_RIGS.join(", ")
                    );
                }
                return crate::config::load_yaml::<Rig>(p).map_err(anyhow::Error::from);
            }
        };
        crate::config::parse_yaml::<Rig>(
            text,
            Path::new(&format!("config/data/{name_or_path}.yaml")),
        )
        .with_context(|| format!("built-in rig `{name_or_path}`"))
    }

    /// The built-in `tiny` rig.
    pub fn tiny() -> Rig {
        Rig::load("tiny").expect("the embedded tiny rig is valid")
    }

    /// The built-in `nuscenes` rig.
    pub fn nuscenes() -> Rig {
        Rig::load("nuscenes").expect("the embedded nuscenes rig is valid")
    }

    /// LiDAR pose in the ego frame (axis-aligned).
    pub fn lidar_to_ego(&self) -> Isometry3<f64> {
        let t = self.lidar.translation;
        Isometry3::from_parts(
            Translation3::new(t[0], t[1], t[2]),
            UnitQuaternion::identity(),
        )
    }

    /// Calibration of every camera, extrinsics relative to the LiDAR.
    pub fn camera_calibs(&self) -> Vec<CameraCalib> {
        let ego_to_lidar = self.lidar_to_ego().inverse();
        self.cameras
            .iter()
            .map(|c| CameraCalib {
                name: c.name.clone(),
                width: c.width,
                height: c.height,
                intrinsics: c.intrinsics(),
                cam_to_lidar: ego_to_lidar * c.cam_to_ego(),
            })
            .collect()
    }
}

impl CameraSpec {
    /// The 3x3 pinhole matrix.
    pub fn intrinsics(&self) -> Matrix3<f64> {
        let (fx, fy, cx, cy) = match (self.intrinsics, self.hfov_deg) {
            (Some(k), _) => (k[0], k[1], k[2], k[3]),
            (None, Some(h)) => {
                let f = 0.5 * self.width as f64 / (0.5 * h.to_radians()).tan();
                (f, f, 0.5 * self.width as f64, 0.5 * self.height as f64)
            }
            (None, None) => unreachable!("validated: hfov_deg or intrinsics"),
        };
        Matrix3::new(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0)
    }

    /// Optical frame (z forward, x right, y down) to ego frame.
    pub fn cam_to_ego(&self) -> Isometry3<f64> {
        let (yaw, pitch) = (self.yaw_deg.to_radians(), self.pitch_deg.to_radians());
        // Level camera looking along +x of the ego: columns are the images of the optical axes.
        let base = Rotation3::from_matrix_unchecked(Matrix3::new(
            0.0, 0.0, 1.0, //
            -1.0, 0.0, 0.0, //
            0.0, -1.0, 0.0,
        ));
        let tilt = Rotation3::from_axis_angle(&Vector3::y_axis(), pitch);
        let turn = Rotation3::from_axis_angle(&Vector3::z_axis(), yaw);
        let r = turn * tilt * base;
        let t = self.translation;
        Isometry3::from_parts(
            Translation3::new(t[0], t[1], t[2]),
            UnitQuaternion::from_rotation_matrix(&r),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Point3;

    #[test]
    fn builtin_rigs_load_and_look_where_they_should() {
        for name in BUILTIN_RIGS {
            let rig = Rig::load(name).unwrap();
            assert_eq!(rig.cameras.len(), 6);
            let calibs = rig.camera_calibs();
            for (c, spec) in calibs.iter().zip(&rig.cameras) {
                // A point 10 m along the camera's yaw direction (at camera height) projects
                // to the principal point column.
                let yaw = spec.yaw_deg.to_radians();
                let lidar_to_ego = rig.lidar_to_ego();
                let p_ego = Point3::new(
                    spec.translation[0] + 10.0 * yaw.cos(),
                    spec.translation[1] + 10.0 * yaw.sin(),
                    spec.translation[2],
                );
                let p_cam = c.cam_to_lidar.inverse() * (lidar_to_ego.inverse() * p_ego);
                assert!(
                    (p_cam.z - 10.0).abs() < 1e-9 && p_cam.x.abs() < 1e-9 && p_cam.y.abs() < 1e-9,
                    "{} {p_cam:?}",
                    c.name
                );
                // A point above the camera appears higher in the image (smaller v).
                let up =
                    c.cam_to_lidar.inverse() * (lidar_to_ego.inverse() * (p_ego + Vector3::z()));
                assert!(up.y < 0.0);
                // A point to the left appears at smaller u.
                let left = Vector3::new(-yaw.sin(), yaw.cos(), 0.0);
                let l = c.cam_to_lidar.inverse() * (lidar_to_ego.inverse() * (p_ego + left));
                assert!(l.x < 0.0);
            }
        }
        assert_eq!(Rig::tiny().cameras[0].width, 176);
    }

    #[test]
    fn bad_rigs_are_rejected_with_the_field() {
        let text = TINY_YAML.replace("beams: 16", "beams: 0");
        let e = crate::config::parse_yaml::<Rig>(&text, Path::new("x.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lidar.beams") && e.contains("x.yaml"), "{e}");
        let e = Rig::load("no-such-rig").unwrap_err().to_string();
        assert!(e.contains("no-such-rig") && e.contains("tiny"), "{e}");
    }
}
