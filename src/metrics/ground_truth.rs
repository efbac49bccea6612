//! Ground truth for the detection metrics, exactly as the devkit's `load_gt` +
//! `add_center_dist` build it (filtering happens in the evaluation, see [`super::filter`]):
//!
//! - from a dataset in the nuScenes layout ([`GroundTruth::from_tables`], ours or a real
//!   download): every annotation of the evaluated samples whose category maps to a detection
//!   class (`category_to_detection_name`), its single attribute (more than one is an error),
//!   `num_pts` = LiDAR + radar points, velocity from the devkit's `box_velocity` (difference
//!   of the neighbouring annotations of the instance; NaN for a single annotation or a gap
//!   over 1.5 s, 3 s for a centred difference), the ego position of the sample's key-frame
//!   LIDAR_TOP sample_data, and the sample's `static_object.bicycle_rack` boxes;
//! - from in-memory [`Frame`]s ([`GroundTruthBuilder`]), with the same semantics: boxes moved
//!   from the LiDAR frame to the global frame, velocity from neighbouring frames of the same
//!   instance in the same scene (the frames carry no bicycle racks).
//!
//! Samples keep the split's order; boxes keep the table (or frame) order, which the matching
//! uses to break distance ties.

use super::detection_box::{attribute_index, DetectionBox, RegionBox};
use crate::classes::{detection_class_index, DETECTION_CLASSES};
use crate::data::nuscenes_tables::{category_to_detection_name, NuScenesTables, TokenIndex};
use crate::data::Frame;
use anyhow::{bail, Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Which samples to evaluate. Synthetic data has no official splits.
#[derive(Clone, Debug, PartialEq)]
pub enum Split {
    /// Every sample, in table order.
    All,
    /// The samples of these scenes (by scene name), in table order (the devkit's
    /// `get_samples_of_scenes`).
    Scenes(Vec<String>),
    /// These sample tokens, in this order.
    Samples(Vec<String>),
}

impl Split {
    /// A custom split from `<dataroot>/<version>/splits.json` (`{"name": [scene names]}`),
    /// the devkit's custom-split file.
    pub fn from_splits_file(
        dataroot: impl AsRef<Path>,
        version: &str,
        name: &str,
    ) -> Result<Split> {
        let path = dataroot.as_ref().join(version).join("splits.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "split `{name}` requested but {} cannot be read",
                path.display()
            )
        })?;
        let map: HashMap<String, serde_json::Value> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let v = map.get(name).with_context(|| {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            format!(
                "{}: no split named `{name}` (it has {names:?})",
                path.display()
            )
        })?;
        let scenes: Vec<String> = serde_json::from_value(v.clone()).with_context(|| {
            format!(
                "{}: split `{name}` must be a list of scene names",
                path.display()
            )
        })?;
        Ok(Split::Scenes(scenes))
    }

    /// The sample tokens of the split in evaluation order.
    pub fn sample_tokens(&self, tables: &NuScenesTables) -> Result<Vec<String>> {
        match self {
            Split::All => Ok(tables.sample.iter().map(|s| s.token.clone()).collect()),
            Split::Scenes(names) => {
                let known: HashSet<&str> = tables.scene.iter().map(|s| s.name.as_str()).collect();
                if let Some(bad) = names.iter().find(|n| !known.contains(n.as_str())) {
                    bail!("split lists scene `{bad}`, which the scene table does not have");
                }
                let wanted: HashSet<&str> = names.iter().map(|s| s.as_str()).collect();
                let scenes = TokenIndex::new("scene", &tables.scene);
                let mut out = Vec::new();
                for s in &tables.sample {
                    let scene = scenes
                        .get(&s.scene_token)
                        .with_context(|| format!("sample `{}`", s.token))?;
                    if wanted.contains(scene.name.as_str()) {
                        out.push(s.token.clone());
                    }
                }
                Ok(out)
            }
            Split::Samples(tokens) => {
                let idx = TokenIndex::new("sample", &tables.sample);
                for t in tokens {
                    idx.get(t)?;
                }
                Ok(tokens.clone())
            }
        }
    }
}

/// The ground truth of one sample and what the filters need to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct GtSample {
    pub sample_token: String,
    /// Ego position of the sample's LIDAR_TOP key frame (global frame).
    pub ego_translation: [f64; 3],
    /// Annotations mapped to detection classes, score -1.
    pub boxes: Vec<DetectionBox>,
    /// The sample's bicycle racks.
    pub bike_racks: Vec<RegionBox>,
}

/// Ground truth of the evaluated samples, in split order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroundTruth {
    pub samples: Vec<GtSample>,
}

impl GroundTruth {
    /// The evaluated sample tokens, in order.
    pub fn sample_tokens(&self) -> Vec<String> {
        self.samples
            .iter()
            .map(|s| s.sample_token.clone())
            .collect()
    }

    /// Total number of (unfiltered) boxes.
    pub fn num_boxes(&self) -> usize {
        self.samples.iter().map(|s| s.boxes.len()).sum()
    }

    /// Load `<dataroot>/<version>` and build the ground truth of `split`.
    pub fn load(dataroot: impl AsRef<Path>, version: &str, split: &Split) -> Result<Self> {
        let tables = NuScenesTables::load(dataroot, version)?;
        Self::from_tables(&tables, split)
    }

    /// Build the ground truth of `split` from loaded tables.
    pub fn from_tables(tables: &NuScenesTables, split: &Split) -> Result<Self> {
        let tokens = split.sample_tokens(tables)?;
        if tables.sample.is_empty() {
            bail!("the dataset has no samples");
        }
        let samples = TokenIndex::new("sample", &tables.sample);
        let anns = TokenIndex::new("sample_annotation", &tables.sample_annotation);
        let instances = TokenIndex::new("instance", &tables.instance);
        let categories = TokenIndex::new("category", &tables.category);
        let sensors = TokenIndex::new("sensor", &tables.sensor);
        let calibs = TokenIndex::new("calibrated_sensor", &tables.calibrated_sensor);
        let poses = TokenIndex::new("ego_pose", &tables.ego_pose);
        let attribute_names: HashMap<&str, &str> = tables
            .attribute
            .iter()
            .map(|a| (a.token.as_str(), a.name.as_str()))
            .collect();

        // The key-frame LIDAR_TOP sample_data of each sample (the last one, as the devkit).
        let mut lidar_of: HashMap<&str, &str> = HashMap::new();
        for sd in tables.sample_data.iter().filter(|sd| sd.is_key_frame) {
            let cs = calibs
                .get(&sd.calibrated_sensor_token)
                .with_context(|| format!("sample_data `{}`", sd.token))?;
            let sensor = sensors
                .get(&cs.sensor_token)
                .with_context(|| format!("calibrated_sensor `{}`", cs.token))?;
            if sensor.channel == "LIDAR_TOP" {
                lidar_of.insert(sd.sample_token.as_str(), sd.token.as_str());
            }
        }
        let sample_data = TokenIndex::new("sample_data", &tables.sample_data);

        // Annotations of each sample, in table order.
        let mut anns_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, a) in tables.sample_annotation.iter().enumerate() {
            anns_of.entry(a.sample_token.as_str()).or_default().push(i);
        }

        let category_name = |inst_token: &str, ann_token: &str| -> Result<&str> {
            let inst = instances
                .get(inst_token)
                .with_context(|| format!("sample_annotation `{ann_token}`"))?;
            let cat = categories
                .get(&inst.category_token)
                .with_context(|| format!("instance `{inst_token}`"))?;
            Ok(cat.name.as_str())
        };
        let seconds = |sample_token: &str| -> Result<f64> {
            Ok(1e-6 * samples.get(sample_token)?.timestamp as f64)
        };

        let mut out = Vec::with_capacity(tokens.len());
        for token in &tokens {
            samples.get(token)?;
            let sd_token = lidar_of.get(token.as_str()).with_context(|| {
                format!("sample `{token}` has no key-frame LIDAR_TOP sample_data")
            })?;
            let sd = sample_data.get(sd_token)?;
            let pose = poses
                .get(&sd.ego_pose_token)
                .with_context(|| format!("sample_data `{}`", sd.token))?;
            let mut boxes = Vec::new();
            let mut bike_racks = Vec::new();
            for &ai in anns_of
                .get(token.as_str())
                .map(|v| v.as_slice())
                .unwrap_or(&[])
            {
                let a = &tables.sample_annotation[ai];
                let cat = category_name(&a.instance_token, &a.token)?;
                if cat == "static_object.bicycle_rack" {
                    bike_racks.push(RegionBox {
                        translation: a.translation,
                        size: a.size,
                        rotation: a.rotation,
                    });
                }
                let Some(det) = category_to_detection_name(cat) else {
                    continue;
                };
                let attribute = match a.attribute_tokens.len() {
                    0 => None,
                    1 => {
                        let name = attribute_names.get(a.attribute_tokens[0].as_str()).with_context(|| {
                            format!("sample_annotation `{}`: unknown attribute token `{}`", a.token, a.attribute_tokens[0])
                        })?;
                        Some(attribute_index(name).with_context(|| {
                            format!("sample_annotation `{}`: attribute `{name}` is not a nuScenes detection attribute", a.token)
                        })?)
                    }
                    n => bail!("sample_annotation `{}` has {n} attributes; ground truth may have at most one", a.token),
                };
                if !a.size.iter().all(|s| *s > 0.0) {
                    bail!(
                        "sample_annotation `{}`: size {:?} must be > 0 in every dimension",
                        a.token,
                        a.size
                    );
                }
                // the devkit's box_velocity
                let velocity = {
                    let (has_prev, has_next) = (!a.prev.is_empty(), !a.next.is_empty());
                    if !has_prev && !has_next {
                        [f64::NAN, f64::NAN]
                    } else {
                        let first = if has_prev {
                            anns.get(&a.prev)
                                .with_context(|| format!("`prev` of `{}`", a.token))?
                        } else {
                            a
                        };
                        let last = if has_next {
                            anns.get(&a.next)
                                .with_context(|| format!("`next` of `{}`", a.token))?
                        } else {
                            a
                        };
                        let dt = seconds(&last.sample_token)? - seconds(&first.sample_token)?;
                        let max_dt = if has_prev && has_next { 3.0 } else { 1.5 };
                        if dt > max_dt {
                            [f64::NAN, f64::NAN]
                        } else {
                            [
                                (last.translation[0] - first.translation[0]) / dt,
                                (last.translation[1] - first.translation[1]) / dt,
                            ]
                        }
                    }
                };
                boxes.push(DetectionBox {
                    translation: a.translation,
                    size: a.size,
                    rotation: a.rotation,
                    velocity,
                    label: detection_class_index(det).expect("detection names are classes"),
                    score: -1.0,
                    attribute,
                    num_pts: a.num_lidar_pts + a.num_radar_pts,
                });
            }
            out.push(GtSample {
                sample_token: token.clone(),
                ego_translation: pose.translation,
                boxes,
                bike_racks,
            });
        }
        Ok(GroundTruth { samples: out })
    }

    /// Ground truth of in-memory frames (see [`GroundTruthBuilder`]).
    pub fn from_frames<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Result<Self> {
        let mut b = GroundTruthBuilder::new();
        for f in frames {
            b.add_frame(f)?;
        }
        Ok(b.finish())
    }
}

/// Collects ground truth frame by frame (e.g. during validation or bag replay, where frames
/// stream by) and computes velocities when finished. Keeps only boxes, not sensor data.
#[derive(Default)]
pub struct GroundTruthBuilder {
    samples: Vec<GtSample>,
    /// Per box: (scene token, instance token, timestamp in µs); parallel to the boxes.
    tracks: Vec<Vec<(String, String, i64)>>,
    seen: HashSet<String>,
}

impl GroundTruthBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one frame's annotations (LiDAR frame) as a sample.
    pub fn add_frame(&mut self, frame: &Frame) -> Result<()> {
        if !self.seen.insert(frame.token.clone()) {
            bail!("frame `{}` was added twice", frame.token);
        }
        let mut boxes = Vec::with_capacity(frame.annotations.len());
        let mut track = Vec::with_capacity(frame.annotations.len());
        for (i, a) in frame.annotations.iter().enumerate() {
            if a.bbox.label >= DETECTION_CLASSES.len() {
                bail!(
                    "frame `{}`, annotation {i}: label {} is not a detection class",
                    frame.token,
                    a.bbox.label
                );
            }
            if !a.bbox.size.iter().all(|s| *s > 0.0) {
                bail!(
                    "frame `{}`, annotation {i}: size {:?} must be > 0",
                    frame.token,
                    a.bbox.size
                );
            }
            let attribute = if a.attribute.is_empty() {
                None
            } else {
                Some(attribute_index(&a.attribute).with_context(|| {
                    format!(
                        "frame `{}`, annotation {i}: unknown attribute `{}`",
                        frame.token, a.attribute
                    )
                })?)
            };
            let mut b =
                DetectionBox::from_lidar_box(&a.bbox, &frame.lidar_to_ego, &frame.ego_to_global);
            b.velocity = [f64::NAN, f64::NAN];
            b.score = -1.0;
            b.attribute = attribute;
            b.num_pts = a.num_lidar_pts as i64;
            boxes.push(b);
            track.push((
                frame.scene_token.clone(),
                a.instance_token.clone(),
                frame.timestamp_us,
            ));
        }
        let t = frame.ego_to_global.translation.vector;
        self.samples.push(GtSample {
            sample_token: frame.token.clone(),
            ego_translation: [t.x, t.y, t.z],
            boxes,
            bike_racks: Vec::new(),
        });
        self.tracks.push(track);
        Ok(())
    }

    /// Compute velocities as the devkit's `box_velocity` would from the annotation chain of
    /// each instance (its annotations in the scene ordered by time) and return the result.
    pub fn finish(mut self) -> GroundTruth {
        // (scene, instance) -> [(timestamp, sample index, box index)]
        let mut chains: HashMap<(&str, &str), Vec<(i64, usize, usize)>> = HashMap::new();
        for (si, track) in self.tracks.iter().enumerate() {
            for (bi, (scene, inst, ts)) in track.iter().enumerate() {
                chains
                    .entry((scene.as_str(), inst.as_str()))
                    .or_default()
                    .push((*ts, si, bi));
            }
        }
        let mut velocities: Vec<(usize, usize, [f64; 2])> = Vec::new();
        for chain in chains.values_mut() {
            chain.sort_by_key(|c| c.0);
            for k in 0..chain.len() {
                let (has_prev, has_next) = (k > 0, k + 1 < chain.len());
                let (_, si, bi) = chain[k];
                if !has_prev && !has_next {
                    continue;
                }
                let first = if has_prev { chain[k - 1] } else { chain[k] };
                let last = if has_next { chain[k + 1] } else { chain[k] };
                let p0 = self.samples[first.1].boxes[first.2].translation;
                let p1 = self.samples[last.1].boxes[last.2].translation;
                let dt = 1e-6 * last.0 as f64 - 1e-6 * first.0 as f64;
                let max_dt = if has_prev && has_next { 3.0 } else { 1.5 };
                if dt <= max_dt {
                    velocities.push((si, bi, [(p1[0] - p0[0]) / dt, (p1[1] - p0[1]) / dt]));
                }
            }
        }
        for (si, bi, v) in velocities {
            self.samples[si].boxes[bi].velocity = v;
        }
        GroundTruth {
            samples: self.samples,
        }
    }
}
