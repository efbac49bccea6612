//! The official nuScenes detection-results JSON:
//!
//! ```json
//! {"meta": {"use_camera": true, "use_lidar": true, "use_radar": false, "use_map": false, "use_external": false},
//!  "results": {"<sample_token>": [{"sample_token": "<sample_token>", "translation": [x, y, z],
//!       "size": [w, l, h], "rotation": [w, x, y, z], "velocity": [vx, vy],
//!       "detection_name": "car", "detection_score": 0.9, "attribute_name": "vehicle.moving"}, ...]}}
//! ```
//!
//! Boxes are in the global frame. [`DetectionResults::load`] validates every box while it
//! streams the file and reports the first problem with the file, the sample token, the box
//! index and the field: unknown or missing keys, unknown class or attribute, NaN/Infinity,
//! non-positive sizes, a zero quaternion, scores outside [0, 1], a box filed under another
//! sample's token, a sample listed twice. [`DetectionResults::check_samples`] then checks the
//! samples against the evaluated split (exactly the same samples, at most 500 boxes each).
//! The sample order of the file is kept: the devkit breaks score ties by it.
//!
//! Our pipeline's boxes ([`Box3D`] in the LiDAR frame) become result boxes with
//! [`SampleResults::from_lidar_boxes`] / [`SampleResults::from_frame`].

use super::detection_box::{attribute_index, default_attribute, DetectionBox, ATTRIBUTE_NAMES};
use crate::classes::{detection_class_index, DETECTION_CLASSES};
use crate::data::Frame;
use crate::geometry::Box3D;
use anyhow::{bail, Context, Result};
use nalgebra::Isometry3;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// The `meta` block: which inputs the method used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsMeta {
    pub use_camera: bool,
    pub use_lidar: bool,
    pub use_radar: bool,
    pub use_map: bool,
    pub use_external: bool,
}

impl ResultsMeta {
    /// Camera + LiDAR, nothing else (our fusion model).
    pub fn camera_lidar() -> Self {
        Self {
            use_camera: true,
            use_lidar: true,
            ..Default::default()
        }
    }
}

/// The predicted boxes of one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleResults {
    pub sample_token: String,
    pub boxes: Vec<DetectionBox>,
}

/// A whole results file: `meta` and the samples in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectionResults {
    pub meta: ResultsMeta,
    pub samples: Vec<SampleResults>,
}

impl SampleResults {
    /// Convert boxes predicted in the LiDAR frame to global result boxes, keeping the
    /// `max_boxes` highest scores (the limit of the format is 500). Attributes follow
    /// [`default_attribute`] (the model predicts none).
    pub fn from_lidar_boxes(
        sample_token: &str,
        boxes: &[Box3D],
        lidar_to_ego: &Isometry3<f64>,
        ego_to_global: &Isometry3<f64>,
        max_boxes: usize,
    ) -> Self {
        let mut order: Vec<usize> = (0..boxes.len()).collect();
        order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score).then(a.cmp(&b)));
        order.truncate(max_boxes);
        let boxes = order
            .into_iter()
            .map(|i| {
                let mut d = DetectionBox::from_lidar_box(&boxes[i], lidar_to_ego, ego_to_global);
                d.attribute = default_attribute(d.label, d.velocity);
                d
            })
            .collect();
        Self {
            sample_token: sample_token.to_string(),
            boxes,
        }
    }

    /// [`Self::from_lidar_boxes`] with the frame's token and transforms.
    pub fn from_frame(frame: &Frame, boxes: &[Box3D], max_boxes: usize) -> Self {
        Self::from_lidar_boxes(
            &frame.token,
            boxes,
            &frame.lidar_to_ego,
            &frame.ego_to_global,
            max_boxes,
        )
    }
}

impl DetectionResults {
    pub fn new(meta: ResultsMeta) -> Self {
        Self {
            meta,
            samples: Vec::new(),
        }
    }

    /// Total number of boxes.
    pub fn num_boxes(&self) -> usize {
        self.samples.iter().map(|s| s.boxes.len()).sum()
    }

    /// Read and validate a results file (see the module documentation).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading results file {}", path.display()))?;
        Self::from_json_slice(&bytes, &path.display().to_string())
    }

    /// Parse and validate results JSON; `source` names the input in errors.
    pub fn from_json_slice(bytes: &[u8], source: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed: Result<RawFile, _> = serde_path_to_error::deserialize(&mut de);
        let raw = match parsed {
            Ok(r) => r,
            Err(e) => {
                let inner = e.inner();
                let hint = non_finite_hint(bytes, inner.line(), inner.column());
                let path = e.path().to_string();
                if path == "." || path.is_empty() {
                    bail!("{source}: {inner}{hint}");
                }
                bail!("{source}: at `{path}`: {inner}{hint}");
            }
        };
        de.end().map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        Ok(Self {
            meta: raw.meta,
            samples: raw.results.0,
        })
    }

    /// Check the samples against the evaluated ones: every evaluated sample present, no
    /// other sample, at most `max_boxes_per_sample` boxes each (checked before filtering).
    pub fn check_samples(&self, expected: &[String], max_boxes_per_sample: usize) -> Result<()> {
        let expected_set: HashSet<&str> = expected.iter().map(|s| s.as_str()).collect();
        let have: HashSet<&str> = self
            .samples
            .iter()
            .map(|s| s.sample_token.as_str())
            .collect();
        let extra: Vec<&str> = self
            .samples
            .iter()
            .map(|s| s.sample_token.as_str())
            .filter(|t| !expected_set.contains(t))
            .collect();
        if !extra.is_empty() {
            bail!(
                "results contain {} sample token(s) that are not in the evaluated split, e.g. `{}`",
                extra.len(),
                extra[..extra.len().min(3)].join("`, `")
            );
        }
        let missing: Vec<&str> = expected
            .iter()
            .map(|s| s.as_str())
            .filter(|t| !have.contains(t))
            .collect();
        if !missing.is_empty() {
            bail!(
                "results miss {} of the {} evaluated samples (every sample needs an entry, possibly an empty list), e.g. `{}`",
                missing.len(),
                expected.len(),
                missing[..missing.len().min(3)].join("`, `")
            );
        }
        for s in &self.samples {
            if s.boxes.len() > max_boxes_per_sample {
                bail!(
                    "sample `{}` has {} boxes; at most {max_boxes_per_sample} boxes per sample are allowed",
                    s.sample_token,
                    s.boxes.len()
                );
            }
        }
        Ok(())
    }

    /// Put the samples in the order of `tokens` (which must be exactly this file's samples),
    /// as the devkit does when it evaluates a custom split.
    pub fn reorder_to(&mut self, tokens: &[String]) -> Result<()> {
        let mut by_token: std::collections::HashMap<String, SampleResults> = self
            .samples
            .drain(..)
            .map(|s| (s.sample_token.clone(), s))
            .collect();
        let mut out = Vec::with_capacity(tokens.len());
        for t in tokens {
            out.push(
                by_token
                    .remove(t)
                    .with_context(|| format!("results have no entry for sample `{t}`"))?,
            );
        }
        if let Some(t) = by_token.keys().next() {
            bail!("results contain sample `{t}`, which is not in the evaluated split");
        }
        self.samples = out;
        Ok(())
    }

    /// Write the file atomically. Fails (writing nothing) on non-finite values, which JSON
    /// cannot carry.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        for s in &self.samples {
            for (i, b) in s.boxes.iter().enumerate() {
                if let Some(field) = first_invalid_field(b) {
                    bail!(
                        "cannot save results: sample `{}`, box {i}, field `{field}` is invalid",
                        s.sample_token
                    );
                }
            }
        }
        crate::io::atomic_write_with(path, |f| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            serde_json::to_writer(&mut w, self)?;
            w.flush()?;
            Ok(())
        })
    }
}

/// The first field of a box that the file format rejects, if any.
fn first_invalid_field(b: &DetectionBox) -> Option<&'static str> {
    if !b.translation.iter().all(|v| v.is_finite()) {
        return Some("translation");
    }
    if !b.size.iter().all(|v| v.is_finite() && *v > 0.0) {
        return Some("size");
    }
    if !b.rotation.iter().all(|v| v.is_finite()) || b.rotation.iter().all(|v| *v == 0.0) {
        return Some("rotation");
    }
    if !b.velocity.iter().all(|v| v.is_finite()) {
        return Some("velocity");
    }
    if !(b.score.is_finite() && (0.0..=1.0).contains(&b.score)) {
        return Some("detection_score");
    }
    if b.label >= DETECTION_CLASSES.len() {
        return Some("detection_name");
    }
    if b.attribute.is_some_and(|a| a >= ATTRIBUTE_NAMES.len()) {
        return Some("attribute_name");
    }
    None
}

/// When a parse error sits on a NaN/Infinity literal (Python's json writes them), say so.
fn non_finite_hint(bytes: &[u8], line: usize, column: usize) -> String {
    if line == 0 {
        return String::new();
    }
    let mut l = 1;
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if l == line {
            start = i;
            break;
        }
        if c == b'\n' {
            l += 1;
        }
    }
    if l != line {
        return String::new();
    }
    let at = start + column.saturating_sub(1);
    let lo = at.saturating_sub(1);
    let window = &bytes[lo.min(bytes.len())..(at + 10).min(bytes.len())];
    let w = String::from_utf8_lossy(window);
    if w.contains("NaN") || w.contains("Infinity") {
        " (NaN/Infinity are not valid values in a results file)".to_string()
    } else {
        String::new()
    }
}

// ---------------------------------------------------------------------------------------
// Reading

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    meta: ResultsMeta,
    results: RawResults,
}

/// One box as written in the file (the devkit's own `serialize()` adds `ego_translation`
/// and `num_pts`; they are accepted and ignored).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBox<'a> {
    #[serde(borrow)]
    sample_token: Cow<'a, str>,
    translation: [f64; 3],
    size: [f64; 3],
    rotation: [f64; 4],
    velocity: [f64; 2],
    #[serde(borrow)]
    detection_name: Cow<'a, str>,
    detection_score: f64,
    #[serde(borrow)]
    attribute_name: Cow<'a, str>,
    #[serde(default)]
    #[allow(dead_code)]
    ego_translation: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    num_pts: Option<serde::de::IgnoredAny>,
}

impl RawBox<'_> {
    fn validate(self, key: &str, index: usize) -> std::result::Result<DetectionBox, String> {
        let err = |field: &str, msg: String| Err(format!("box {index}, field `{field}`: {msg}"));
        if self.sample_token != key {
            return err(
                "sample_token",
                format!(
                    "`{}` differs from the sample it is listed under",
                    self.sample_token
                ),
            );
        }
        let Some(label) = detection_class_index(&self.detection_name) else {
            return err(
                "detection_name",
                format!(
                    "unknown detection class `{}` (expected one of {})",
                    self.detection_name,
                    DETECTION_CLASSES.join(", ")
                ),
            );
        };
        let attribute = if self.attribute_name.is_empty() {
            None
        } else {
            match attribute_index(&self.attribute_name) {
                Some(a) => Some(a),
                None => {
                    return err(
                        "attribute_name",
                        format!(
                            "unknown attribute `{}` (expected \"\" or one of {})",
                            self.attribute_name,
                            ATTRIBUTE_NAMES.join(", ")
                        ),
                    )
                }
            }
        };
        let b = DetectionBox {
            translation: self.translation,
            size: self.size,
            rotation: self.rotation,
            velocity: self.velocity,
            label,
            score: self.detection_score,
            attribute,
            num_pts: -1,
        };
        match first_invalid_field(&b) {
            None => Ok(b),
            Some(f) => {
                let why = match f {
                    "size" => format!("{:?}: every size must be finite and > 0", b.size),
                    "rotation" => format!(
                        "{:?}: must be a finite, non-zero quaternion [w, x, y, z]",
                        b.rotation
                    ),
                    "detection_score" => format!("{}: must be a finite score in [0, 1]", b.score),
                    "translation" => format!("{:?}: must be finite", b.translation),
                    _ => format!("{:?}: must be finite", b.velocity),
                };
                err(f, why)
            }
        }
    }
}

struct RawResults(Vec<SampleResults>);

impl<'de> Deserialize<'de> for RawResults {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawResults;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping sample tokens to lists of boxes")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawResults, A::Error> {
                let mut out: Vec<SampleResults> = Vec::new();
                let mut seen: HashSet<String> = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!(
                            "sample token `{key}` is listed twice"
                        )));
                    }
                    let boxes = map.next_value_seed(SampleSeed { key: &key })?;
                    out.push(SampleResults {
                        sample_token: key,
                        boxes,
                    });
                }
                Ok(RawResults(out))
            }
        }
        d.deserialize_map(V)
    }
}

struct SampleSeed<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for SampleSeed<'_> {
    type Value = Vec<DetectionBox>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        struct V<'k>(&'k str);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Vec<DetectionBox>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of result boxes")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(raw) = seq.next_element::<RawBox>()? {
                    let i = out.len();
                    out.push(raw.validate(self.0, i).map_err(serde::de::Error::custom)?);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V(self.key))
    }
}

// ---------------------------------------------------------------------------------------
// Writing

struct BoxOut<'a> {
    token: &'a str,
    b: &'a DetectionBox,
}

impl Serialize for BoxOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("DetectionBox", 8)?;
        st.serialize_field("sample_token", self.token)?;
        st.serialize_field("translation", &self.b.translation)?;
        st.serialize_field("size", &self.b.size)?;
        st.serialize_field("rotation", &self.b.rotation)?;
        st.serialize_field("velocity", &self.b.velocity)?;
        st.serialize_field("detection_name", self.b.detection_name())?;
        st.serialize_field("detection_score", &self.b.score)?;
        st.serialize_field("attribute_name", self.b.attribute_name())?;
        st.end()
    }
}

struct SampleOut<'a>(&'a SampleResults);

impl Serialize for SampleOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.boxes.iter().map(|b| BoxOut {
            token: &self.0.sample_token,
            b,
        }))
    }
}

struct ResultsOut<'a>(&'a [SampleResults]);

impl Serialize for ResultsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for smp in self.0 {
            m.serialize_entry(&smp.sample_token, &SampleOut(smp))?;
        }
        m.end()
    }
}

impl Serialize for DetectionResults {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("meta", &self.meta)?;
        m.serialize_entry("results", &ResultsOut(&self.samples))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_box_json(body: &str) -> String {
        format!(
            r#"{{"meta": {{"use_camera": true, "use_lidar": true, "use_radar": false, "use_map": false, "use_external": false}},
 "results": {{"tokA": [], "tokB": [{{"sample_token": "tokB", "translation": [1.0, 2.0, 0.5], "size": [1.9, 4.5, 1.6],
   "rotation": [1.0, 0.0, 0.0, 0.0], "velocity": [0.0, 0.5], "detection_name": "car", "detection_score": 0.5,
   "attribute_name": "vehicle.moving"{body}}}]}}}}"#
        )
    }

    #[test]
    fn round_trip_keeps_order_and_values() {
        let r = DetectionResults::from_json_slice(one_box_json("").as_bytes(), "t").unwrap();
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.samples[0].sample_token, "tokA");
        let b = &r.samples[1].boxes[0];
        assert_eq!(b.detection_name(), "car");
        assert_eq!(b.attribute_name(), "vehicle.moving");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        r.save(&p).unwrap();
        assert_eq!(DetectionResults::load(&p).unwrap(), r);
    }

    #[test]
    fn devkit_serialized_extras_are_accepted() {
        let j = one_box_json(r#", "ego_translation": [1, 2, 3], "num_pts": -1"#);
        DetectionResults::from_json_slice(j.as_bytes(), "t").unwrap();
    }

    #[test]
    fn errors_name_token_box_and_field() {
        let cases = [
            (
                one_box_json("").replace("\"car\"", "\"spaceship\""),
                "detection_name",
            ),
            (
                one_box_json("").replace("[0.0, 0.5]", "[0.0, NaN]"),
                "velocity",
            ),
            (one_box_json("").replace("[1.9,", "[0.0,"), "size"),
            (
                one_box_json("").replace("0.5,\n", "1.5,\n"),
                "detection_score",
            ),
            (one_box_json(", \"colour\": 3"), "colour"),
            (
                one_box_json("")
                    .replace("\"sample_token\": \"tokB\"", "\"sample_token\": \"tokC\""),
                "sample_token",
            ),
            (
                one_box_json("").replace("\"vehicle.moving\"", "\"vehicle.flying\""),
                "attribute_name",
            ),
            (
                one_box_json("").replace("[1.0, 0.0, 0.0, 0.0]", "[0.0, 0.0, 0.0, 0.0]"),
                "rotation",
            ),
            (one_box_json("").replace("\"size\"", "\"sizes\""), "size"),
        ];
        for (text, field) in cases {
            let e = DetectionResults::from_json_slice(text.as_bytes(), "f.json")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("tokB") && e.contains(field) && e.contains("f.json"),
                "{field}: {e}"
            );
        }
        let nan = one_box_json("").replace("[0.0, 0.5]", "[0.0, NaN]");
        let e = DetectionResults::from_json_slice(nan.as_bytes(), "f.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN"), "{e}");
        let e = DetectionResults::from_json_slice(
            one_box_json("").replace("\"meta\"", "\"mta\"").as_bytes(),
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mta"), "{e}");
        let dup = one_box_json("").replace("\"tokA\": []", "\"tokB\": []");
        let e = DetectionResults::from_json_slice(dup.as_bytes(), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokB") && e.contains("twice"), "{e}");
    }

    #[test]
    fn sample_checks() {
        let r = DetectionResults::from_json_slice(one_box_json("").as_bytes(), "t").unwrap();
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        r.check_samples(&t(&["tokB", "tokA"]), 500).unwrap();
        let e = r.check_samples(&t(&["tokA"]), 500).unwrap_err().to_string();
        assert!(
            e.contains("tokB") && e.contains("not in the evaluated split"),
            "{e}"
        );
        let e = r
            .check_samples(&t(&["tokA", "tokB", "tokZ"]), 500)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokZ") && e.contains("miss"), "{e}");
        let e = r
            .check_samples(&t(&["tokA", "tokB"]), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokB") && e.contains("at most 0"), "{e}");
        let mut r2 = r.clone();
        r2.reorder_to(&t(&["tokB", "tokA"])).unwrap();
        assert_eq!(r2.samples[0].sample_token, "tokB");
    }
}
