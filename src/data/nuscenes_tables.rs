//! The thirteen JSON tables of the nuScenes layout (`<dataroot>/<version>/*.json`), as the
//! official devkit loads them, with token indexes. Used by the dataset reader and writer and
//! by the metrics (ground truth).

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub token: String,
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibratedSensor {
    pub token: String,
    pub sensor_token: String,
    pub translation: [f64; 3],
    /// Quaternion `[w, x, y, z]`.
    pub rotation: [f64; 4],
    /// 3x3 row-major intrinsics for cameras, empty for other sensors.
    #[serde(default)]
    pub camera_intrinsic: Vec<Vec<f64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub token: String,
    /// Full nuScenes category, e.g. `vehicle.car`, `human.pedestrian.adult`.
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EgoPose {
    pub token: String,
    pub timestamp: i64,
    pub rotation: [f64; 4],
    pub translation: [f64; 3],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub token: String,
    pub category_token: String,
    pub nbr_annotations: u32,
    pub first_annotation_token: String,
    pub last_annotation_token: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub token: String,
    pub logfile: String,
    pub vehicle: String,
    pub date_captured: String,
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapRecord {
    pub token: String,
    pub log_tokens: Vec<String>,
    pub category: String,
    /// Relative to the dataroot, e.g. `maps/<token>.png`.
    pub filename: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub token: String,
    pub timestamp: i64,
    pub prev: String,
    pub next: String,
    pub scene_token: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleAnnotation {
    pub token: String,
    pub sample_token: String,
    pub instance_token: String,
    pub visibility_token: String,
    pub attribute_tokens: Vec<String>,
    /// Global frame, box centre.
    pub translation: [f64; 3],
    /// width, length, height.
    pub size: [f64; 3],
    pub rotation: [f64; 4],
    pub prev: String,
    pub next: String,
    pub num_lidar_pts: i64,
    pub num_radar_pts: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleData {
    pub token: String,
    pub sample_token: String,
    pub ego_pose_token: String,
    pub calibrated_sensor_token: String,
    pub timestamp: i64,
    pub fileformat: String,
    pub is_key_frame: bool,
    pub height: u32,
    pub width: u32,
    /// Relative to the dataroot, e.g. `samples/LIDAR_TOP/<name>.pcd.bin`.
    pub filename: String,
    pub prev: String,
    pub next: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub token: String,
    pub log_token: String,
    pub nbr_samples: u32,
    pub first_sample_token: String,
    pub last_sample_token: String,
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sensor {
    pub token: String,
    /// e.g. `LIDAR_TOP`, `CAM_FRONT`.
    pub channel: String,
    /// `lidar`, `camera` or `radar`.
    pub modality: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Visibility {
    pub token: String,
    /// `v0-40`, `v40-60`, `v60-80`, `v80-100`.
    pub level: String,
    pub description: String,
}

/// All thirteen tables of one version folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NuScenesTables {
    pub attribute: Vec<Attribute>,
    pub calibrated_sensor: Vec<CalibratedSensor>,
    pub category: Vec<Category>,
    pub ego_pose: Vec<EgoPose>,
    pub instance: Vec<Instance>,
    pub log: Vec<Log>,
    pub map: Vec<MapRecord>,
    pub sample: Vec<Sample>,
    pub sample_annotation: Vec<SampleAnnotation>,
    pub sample_data: Vec<SampleData>,
    pub scene: Vec<Scene>,
    pub sensor: Vec<Sensor>,
    pub visibility: Vec<Visibility>,
}

/// Names of the table files, in the devkit's loading order.
pub const TABLE_NAMES: [&str; 13] = [
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
];

fn read_table<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Vec<T>> {
    let path = dir.join(format!("{name}.json"));
    let file = std::fs::File::open(&path)
        .with_context(|| format!("opening nuScenes table {}", path.display()))?;
    let reader = std::io::BufReader::new(file);
    let mut de = serde_json::Deserializer::from_reader(reader);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| anyhow::anyhow!("{}: at `{}`: {}", path.display(), e.path(), e.inner()))
}

impl NuScenesTables {
    /// Load `<dataroot>/<version>/*.json`.
    pub fn load(dataroot: impl AsRef<Path>, version: &str) -> Result<Self> {
        let dir: PathBuf = dataroot.as_ref().join(version);
        if !dir.is_dir() {
            anyhow::bail!(
                "{} is not a nuScenes version folder (expected <dataroot>/{version}/*.json)",
                dir.display()
            );
        }
        Ok(Self {
            attribute: read_table(&dir, "attribute")?,
            calibrated_sensor: read_table(&dir, "calibrated_sensor")?,
            category: read_table(&dir, "category")?,
            ego_pose: read_table(&dir, "ego_pose")?,
            instance: read_table(&dir, "instance")?,
            log: read_table(&dir, "log")?,
            map: read_table(&dir, "map")?,
            sample: read_table(&dir, "sample")?,
            sample_annotation: read_table(&dir, "sample_annotation")?,
            sample_data: read_table(&dir, "sample_data")?,
            scene: read_table(&dir, "scene")?,
            sensor: read_table(&dir, "sensor")?,
            visibility: read_table(&dir, "visibility")?,
        })
    }

    /// Write every table to `<dataroot>/<version>/<table>.json`, each atomically.
    pub fn save(&self, dataroot: impl AsRef<Path>, version: &str) -> Result<()> {
        let dir = dataroot.as_ref().join(version);
        let w = |name: &str, v: serde_json::Value| {
            crate::io::write_json(dir.join(format!("{name}.json")), &v)
        };
        w("attribute", serde_json::to_value(&self.attribute)?)?;
        w(
            "calibrated_sensor",
            serde_json::to_value(&self.calibrated_sensor)?,
        )?;
        w("category", serde_json::to_value(&self.category)?)?;
        w("ego_pose", serde_json::to_value(&self.ego_pose)?)?;
        w("instance", serde_json::to_value(&self.instance)?)?;
        w("log", serde_json::to_value(&self.log)?)?;
        w("map", serde_json::to_value(&self.map)?)?;
        w("sample", serde_json::to_value(&self.sample)?)?;
        w(
            "sample_annotation",
            serde_json::to_value(&self.sample_annotation)?,
        )?;
        w("sample_data", serde_json::to_value(&self.sample_data)?)?;
        w("scene", serde_json::to_value(&self.scene)?)?;
        w("sensor", serde_json::to_value(&self.sensor)?)?;
        w("visibility", serde_json::to_value(&self.visibility)?)?;
        Ok(())
    }
}

/// Token -> position index over a table, with errors that name the table and the token.
pub struct TokenIndex<'a, T> {
    table: &'static str,
    rows: &'a [T],
    by_token: HashMap<&'a str, usize>,
}

/// Rows that have a token.
pub trait HasToken {
    fn token(&self) -> &str;
}

macro_rules! has_token {
    ($($t:ty),*) => { $(impl HasToken for $t { fn token(&self) -> &str { &self.token } })* };
}
has_token!(
    Attribute,
    CalibratedSensor,
    Category,
    EgoPose,
    Instance,
    Log,
    MapRecord,
    Sample,
    SampleAnnotation,
    SampleData,
    Scene,
    Sensor,
    Visibility
);

impl<'a, T: HasToken> TokenIndex<'a, T> {
    pub fn new(table: &'static str, rows: &'a [T]) -> Self {
        let by_token = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.token(), i))
            .collect();
        Self {
            table,
            rows,
            by_token,
        }
    }

    /// The row with `token`, or an error naming the table and the token.
    pub fn get(&self, token: &str) -> Result<&'a T> {
        self.by_token
            .get(token)
            .map(|&i| &self.rows[i])
            .with_context(|| format!("table `{}` has no record with token `{token}`", self.table))
    }

    pub fn contains(&self, token: &str) -> bool {
        self.by_token.contains_key(token)
    }
}

/// Map a full nuScenes category name (and attributes) to its detection class, as the devkit's
/// `category_to_detection_name` does; None for categories the detection task ignores.
pub fn category_to_detection_name(category: &str) -> Option<&'static str> {
    Some(match category {
        "movable_object.barrier" => "barrier",
        "vehicle.bicycle" => "bicycle",
        "vehicle.bus.bendy" | "vehicle.bus.rigid" => "bus",
        "vehicle.car" => "car",
        "vehicle.construction" => "construction_vehicle",
        "vehicle.motorcycle" => "motorcycle",
        "human.pedestrian.adult"
        | "human.pedestrian.child"
        | "human.pedestrian.construction_worker"
        | "human.pedestrian.police_officer" => "pedestrian",
        "movable_object.trafficcone" => "traffic_cone",
        "vehicle.trailer" => "trailer",
        "vehicle.truck" => "truck",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tables_round_trip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = NuScenesTables::default();
        t.sensor.push(Sensor {
            token: "s1".into(),
            channel: "LIDAR_TOP".into(),
            modality: "lidar".into(),
        });
        t.save(dir.path(), "v1.0-test").unwrap();
        let back = NuScenesTables::load(dir.path(), "v1.0-test").unwrap();
        assert_eq!(back, t);
        let idx = TokenIndex::new("sensor", &back.sensor);
        assert_eq!(idx.get("s1").unwrap().channel, "LIDAR_TOP");
        let e = idx.get("nope").unwrap_err().to_string();
        assert!(e.contains("sensor") && e.contains("nope"), "{e}");

        std::fs::write(dir.path().join("v1.0-test/scene.json"), "[{\"token\": 3}]").unwrap();
        let e = NuScenesTables::load(dir.path(), "v1.0-test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scene.json") && e.contains("token"), "{e}");
    }

    #[test]
    fn categories_map_like_the_devkit() {
        assert_eq!(
            category_to_detection_name("human.pedestrian.police_officer"),
            Some("pedestrian")
        );
        assert_eq!(category_to_detection_name("vehicle.bus.bendy"), Some("bus"));
        assert_eq!(
            category_to_detection_name("static_object.bicycle_rack"),
            None
        );
        assert_eq!(category_to_detection_name("vehicle.emergency.police"), None);
    }
}
