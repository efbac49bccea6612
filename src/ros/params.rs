//! The node's parameters: `config/bevfusion_node.param.yaml` (Autoware layout,
//! `/**: ros__parameters: ...`), `--ros-args --params-file FILE` and `-p name:=value`
//! overrides, validated at start with errors that name the file, the line and the field.
//!
//! Sections are matched as rcl does: `/**`, `**`, the node's fully qualified name or its
//! plain name; later files and `-p` overrides win. Nested maps in the file are the dotted
//! parameter names ROS uses (`cameras.CAM_FRONT.lidar_to_camera`, `qos.input_depth`).
//!
//! Extrinsics come from /tf_static (the chain from the cloud's frame to each image's frame),
//! `cameras.<name>.lidar_to_camera` or an `altermoma_msgs/RigCalibration` topic, as
//! `extrinsics_source` says. The node reads /tf_static when it was built with tf2_msgs
//! (`setup.sh` provides it where ROS lacks it); bag replay reads it from the bag.

use crate::config::{ensure, locate_field, ConfigError, FieldError};
use nalgebra::{Isometry3, Matrix3, Matrix4, Rotation3, Translation3, UnitQuaternion};
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reliability of a topic's QoS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reliability {
    BestEffort,
    Reliable,
}

/// QoS of inputs and outputs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QosParams {
    /// Sensor-data QoS by default (best effort, keep last 5).
    #[serde(default = "d_best_effort")]
    pub input_reliability: Reliability,
    #[serde(default = "d_input_depth")]
    pub input_depth: usize,
    #[serde(default = "d_reliable")]
    pub output_reliability: Reliability,
    #[serde(default = "d_output_depth")]
    pub output_depth: usize,
}

impl Default for QosParams {
    fn default() -> Self {
        Self {
            input_reliability: Reliability::BestEffort,
            input_depth: 5,
            output_reliability: Reliability::Reliable,
            output_depth: 10,
        }
    }
}

/// How a camera's images arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// sensor_msgs/Image
    Raw,
    /// sensor_msgs/CompressedImage (JPEG or PNG)
    Compressed,
}

/// Per-camera parameters.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraParams {
    #[serde(default = "d_raw")]
    pub transport: Transport,
    /// Row-major 4x4 rigid transform from the LiDAR frame to the camera's optical frame
    /// (z forward, x right, y down), as BEVFusion's `lidar2camera`. May be omitted when
    /// `rig_calibration_topic` provides the extrinsics.
    #[serde(default)]
    pub lidar_to_camera: Option<Vec<f64>>,
    /// Image topic; default `~/input/image_<i>`.
    #[serde(default)]
    pub image_topic: Option<String>,
    /// CameraInfo topic; default `~/input/camera_info_<i>`.
    #[serde(default)]
    pub camera_info_topic: Option<String>,
}

/// Where camera extrinsics come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtrinsicsSource {
    /// /tf_static where it joins the cloud's frame to the image's frame, otherwise the
    /// configured extrinsics (`lidar_to_camera`, `rig_calibration_topic`).
    Auto,
    /// Only `lidar_to_camera` and `rig_calibration_topic`; /tf_static is not read.
    Config,
    /// Only /tf_static: a camera is masked until its frame is joined to the cloud's.
    TfStatic,
}

impl ExtrinsicsSource {
    pub fn reads_tf_static(self) -> bool {
        self != ExtrinsicsSource::Config
    }
}

/// How boxes are drawn in `~/output/markers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerStyle {
    LineList,
    Cube,
}

/// Everything the node is configured with.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeParams {
    /// Checkpoint: dense, masked or structured-pruned (`altermoma train` / `prune` /
    /// `finetune` output).
    pub model_path: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "d_auto")]
    pub device: String,
    /// Half precision on CUDA.
    #[serde(default)]
    pub fp16: bool,
    /// CPU threads of libtorch (0: libtorch's default).
    #[serde(default)]
    pub num_threads: usize,
    /// Frames run per mode before going live.
    #[serde(default = "d_warmup")]
    pub warmup_frames: usize,
    /// LiDAR input topic.
    #[serde(default = "d_cloud_topic")]
    pub pointcloud_topic: String,
    /// Camera names in the model's camera order.
    pub camera_names: Vec<String>,
    /// Per-camera transport and extrinsics, keyed by camera name.
    #[serde(default)]
    pub cameras: BTreeMap<String, CameraParams>,
    /// When not empty: extrinsics (altermoma_msgs/RigCalibration, transient-local like
    /// /tf_static) override `lidar_to_camera`; cameras without any are masked until it arrives.
    #[serde(default)]
    pub rig_calibration_topic: String,
    /// `auto`, `config` or `tf_static` (see [`ExtrinsicsSource`]).
    #[serde(default = "d_extrinsics_source")]
    pub extrinsics_source: ExtrinsicsSource,
    /// Topic of static transforms (tf2_msgs/TFMessage, transient local).
    #[serde(default = "d_tf_static_topic")]
    pub tf_static_topic: String,
    /// An image is used with a cloud when their stamps differ by at most this (s).
    #[serde(default = "d_delay")]
    pub max_camera_lidar_delay: f64,
    /// Without a cloud for this long (s), the node runs camera-only frames; 0 disables it.
    #[serde(default = "d_lidar_timeout")]
    pub lidar_timeout: f64,
    /// Rate (Hz) of the timer that runs camera-only frames.
    #[serde(default = "d_rate")]
    pub camera_only_rate: f64,
    /// Output frame id of camera-only frames before any cloud has been seen.
    #[serde(default = "d_lidar_frame")]
    pub lidar_frame_id: String,
    /// Clouds with more points are rejected.
    #[serde(default = "d_capacity")]
    pub cloud_capacity: usize,
    #[serde(default = "d_score")]
    pub score_threshold: f64,
    #[serde(default = "d_max_det")]
    pub max_detections: usize,
    /// Per-map-class thresholds of the segmentation (6 values).
    #[serde(default = "d_seg_thresholds")]
    pub seg_thresholds: Vec<f64>,
    /// Also publish one nav_msgs/OccupancyGrid per map class.
    #[serde(default)]
    pub publish_occupancy_grids: bool,
    #[serde(default = "d_marker_style")]
    pub marker_style: MarkerStyle,
    /// Period (s) of /diagnostics (rejections are reported at once as well).
    #[serde(default = "d_diag_period")]
    pub diagnostics_period: f64,
    #[serde(default)]
    pub qos: QosParams,
}

fn d_best_effort() -> Reliability {
    Reliability::BestEffort
}
fn d_reliable() -> Reliability {
    Reliability::Reliable
}
fn d_input_depth() -> usize {
    5
}
fn d_output_depth() -> usize {
    10
}
fn d_raw() -> Transport {
    Transport::Raw
}
fn d_extrinsics_source() -> ExtrinsicsSource {
    ExtrinsicsSource::Auto
}
fn d_tf_static_topic() -> String {
    "/tf_static".into()
}
fn d_auto() -> String {
    "auto".into()
}
fn d_warmup() -> usize {
    2
}
fn d_cloud_topic() -> String {
    "~/input/pointcloud".into()
}
fn d_delay() -> f64 {
    0.12
}
fn d_lidar_timeout() -> f64 {
    0.5
}
fn d_rate() -> f64 {
    10.0
}
fn d_lidar_frame() -> String {
    "lidar_top".into()
}
fn d_capacity() -> usize {
    400_000
}
fn d_score() -> f64 {
    0.1
}
fn d_max_det() -> usize {
    200
}
fn d_seg_thresholds() -> Vec<f64> {
    vec![0.5; crate::classes::MAP_CLASSES.len()]
}
fn d_marker_style() -> MarkerStyle {
    MarkerStyle::LineList
}
fn d_diag_period() -> f64 {
    1.0
}

/// Check a device spec's syntax (availability is checked when the model loads).
fn device_syntax_ok(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase();
    matches!(s.as_str(), "auto" | "cpu" | "cuda" | "gpu")
        || s.strip_prefix("cuda:").is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// A rigid transform from a row-major 4x4 matrix, or why it is not one.
pub fn rigid_from_row_major(m: &[f64]) -> Result<Isometry3<f64>, String> {
    if m.len() != 16 {
        return Err(format!("{} values, expected 16 (row-major 4x4)", m.len()));
    }
    if let Some(i) = m.iter().position(|v| !v.is_finite()) {
        return Err(format!("value {i} is NaN/Inf"));
    }
    let h = Matrix4::from_row_slice(m);
    if (h[(3, 0)], h[(3, 1)], h[(3, 2)], h[(3, 3)]) != (0.0, 0.0, 0.0, 1.0) {
        return Err("last row must be 0 0 0 1".into());
    }
    let r: Matrix3<f64> = h.fixed_view::<3, 3>(0, 0).into();
    let err = (r.transpose() * r - Matrix3::identity()).abs().max();
    if err > 1e-3 || r.determinant() < 0.0 {
        return Err(format!("the 3x3 block is not a rotation (|R^T R - I| = {err:.2e}, det {:.3})", r.determinant()));
    }
    let rot = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix(&r));
    Ok(Isometry3::from_parts(Translation3::new(h[(0, 3)], h[(1, 3)], h[(2, 3)]), rot))
}

impl NodeParams {
    /// Semantic checks; errors name the dotted field.
    pub fn validate(&self) -> Result<(), FieldError> {
        ensure(!self.model_path.as_os_str().is_empty(), "model_path", "must name a checkpoint file")?;
        ensure(
            device_syntax_ok(&self.device),
            "device",
            format!("`{}`: expected auto, cpu, cuda or cuda:N", self.device),
        )?;
        ensure(
            !(self.fp16 && self.device.trim().eq_ignore_ascii_case("cpu")),
            "fp16",
            "half precision needs a CUDA device (device is cpu)",
        )?;
        ensure(!self.pointcloud_topic.trim().is_empty(), "pointcloud_topic", "must not be empty")?;
        ensure(
            !(self.extrinsics_source.reads_tf_static() && self.tf_static_topic.trim().is_empty()),
            "tf_static_topic",
            "must not be empty while extrinsics_source reads /tf_static",
        )?;
        for (i, n) in self.camera_names.iter().enumerate() {
            ensure(
                !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "camera_names",
                format!("name {i} `{n}`: use letters, digits and _ only"),
            )?;
            ensure(!self.camera_names[..i].contains(n), "camera_names", format!("`{n}` is listed twice"))?;
            ensure(
                self.cameras.contains_key(n) || self.extrinsics_elsewhere(),
                "cameras",
                format!(
                    "camera `{n}` has no entry (needs `lidar_to_camera`, or set `rig_calibration_topic`, \
                     or extrinsics_source auto/tf_static to take it from /tf_static)"
                ),
            )?;
        }
        for (name, c) in &self.cameras {
            ensure(
                self.camera_names.contains(name),
                &format!("cameras.{name}"),
                format!("`{name}` is not in camera_names [{}]", self.camera_names.join(", ")),
            )?;
            match &c.lidar_to_camera {
                Some(m) => {
                    rigid_from_row_major(m)
                        .map_err(|m| FieldError::new(format!("cameras.{name}.lidar_to_camera"), m))?;
                }
                None => ensure(
                    self.extrinsics_elsewhere(),
                    &format!("cameras.{name}"),
                    "no `lidar_to_camera` (and extrinsics_source is config without a `rig_calibration_topic`)",
                )?,
            }
        }
        let pos_finite = |v: f64| v.is_finite() && v >= 0.0;
        ensure(
            pos_finite(self.max_camera_lidar_delay),
            "max_camera_lidar_delay",
            "must be a finite number of seconds >= 0",
        )?;
        ensure(
            pos_finite(self.lidar_timeout),
            "lidar_timeout",
            "must be a finite number of seconds >= 0 (0 disables camera-only mode)",
        )?;
        ensure(self.camera_only_rate.is_finite() && self.camera_only_rate > 0.0, "camera_only_rate", "must be > 0 Hz")?;
        ensure(!self.lidar_frame_id.is_empty(), "lidar_frame_id", "must not be empty")?;
        ensure(self.cloud_capacity >= 1, "cloud_capacity", "must be at least 1")?;
        ensure((0.0..=1.0).contains(&self.score_threshold), "score_threshold", "must be within [0, 1]")?;
        ensure(self.max_detections >= 1, "max_detections", "must be at least 1")?;
        ensure(
            self.seg_thresholds.len() == crate::classes::MAP_CLASSES.len(),
            "seg_thresholds",
            format!(
                "{} values given, one per map class expected ({})",
                self.seg_thresholds.len(),
                crate::classes::MAP_CLASSES.join(", ")
            ),
        )?;
        ensure(
            self.seg_thresholds.iter().all(|t| (0.0..=1.0).contains(t)),
            "seg_thresholds",
            "values must be within [0, 1]",
        )?;
        ensure(
            self.diagnostics_period.is_finite() && self.diagnostics_period > 0.0,
            "diagnostics_period",
            "must be > 0 s",
        )?;
        ensure(self.qos.input_depth >= 1, "qos.input_depth", "must be at least 1")?;
        ensure(self.qos.output_depth >= 1, "qos.output_depth", "must be at least 1")?;
        Ok(())
    }

    /// True when cameras may lack `lidar_to_camera`: another source can supply it.
    fn extrinsics_elsewhere(&self) -> bool {
        !self.rig_calibration_topic.is_empty() || self.extrinsics_source.reads_tf_static()
    }

    fn camera(&self, i: usize) -> Option<&CameraParams> {
        self.cameras.get(&self.camera_names[i])
    }

    /// Camera-to-LiDAR pose of camera `i` (the inverse of its `lidar_to_camera`), when the
    /// parameters give one.
    pub fn cam_to_lidar(&self, i: usize) -> Option<Isometry3<f64>> {
        let m = self.camera(i)?.lidar_to_camera.as_ref()?;
        Some(rigid_from_row_major(m).expect("validated").inverse())
    }

    /// Transport of camera `i`.
    pub fn transport(&self, i: usize) -> Transport {
        self.camera(i).map_or(Transport::Raw, |c| c.transport)
    }

    /// Image topic of camera `i`.
    pub fn image_topic(&self, i: usize) -> String {
        self.camera(i).and_then(|c| c.image_topic.clone()).unwrap_or_else(|| format!("~/input/image_{i}"))
    }

    /// CameraInfo topic of camera `i`.
    pub fn camera_info_topic(&self, i: usize) -> String {
        self.camera(i).and_then(|c| c.camera_info_topic.clone()).unwrap_or_else(|| format!("~/input/camera_info_{i}"))
    }

    /// The pipeline options these parameters describe.
    pub fn pipeline_options(&self) -> crate::pipeline::PipelineOptions {
        crate::pipeline::PipelineOptions {
            score_threshold: self.score_threshold as f32,
            max_detections: self.max_detections,
            cloud_capacity: self.cloud_capacity,
            warmup_frames: self.warmup_frames,
            seg_thresholds: self.seg_thresholds.iter().map(|&t| t as f32).collect(),
        }
    }
}

/// What the node takes from its `--ros-args` (rcl itself parses them too: remaps, log
/// levels, ... are handled there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RosArgs {
    /// `--params-file FILE`, in order.
    pub params_files: Vec<PathBuf>,
    /// `-p name:=value`, in order.
    pub overrides: Vec<(String, String)>,
    /// `-r __node:=NAME`
    pub node_name: Option<String>,
    /// `-r __ns:=NS`
    pub namespace: Option<String>,
}

/// Parse the ROS part of a command line: everything after each `--ros-args` up to `--`.
pub fn parse_ros_args(args: &[String]) -> Result<RosArgs, String> {
    let mut out = RosArgs::default();
    let mut in_ros = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--ros-args" {
            in_ros = true;
            continue;
        }
        if a == "--" {
            in_ros = false;
            continue;
        }
        if !in_ros {
            continue;
        }
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"));
        match a.as_str() {
            "--params-file" => out.params_files.push(PathBuf::from(value(a)?)),
            "-p" | "--param" => {
                let v = value(a)?;
                let (name, val) = v.split_once(":=").ok_or_else(|| format!("`-p {v}`: expected name:=value"))?;
                out.overrides.push((name.to_string(), val.to_string()));
            }
            "-r" | "--remap" => {
                let v = value(a)?;
                let (from, to) = v.split_once(":=").ok_or_else(|| format!("`-r {v}`: expected from:=to"))?;
                // node-specific remaps (`node:__node:=x`) carry a prefix
                let from = from.rsplit(':').next().unwrap_or(from);
                match from {
                    "__node" | "__name" => out.node_name = Some(to.to_string()),
                    "__ns" => out.namespace = Some(to.to_string()),
                    _ => {}
                }
            }
            "-e" | "--enclave" | "--log-level" | "--log-config-file" | "--log-file-name" => {
                value(a)?;
            }
            _ => {} // flags such as --disable-rosout-logs
        }
    }
    Ok(out)
}

/// Which source set a parameter, for error messages.
#[derive(Clone, Debug)]
enum Source {
    File { path: PathBuf, text: String, section: String },
    Override { name: String, value: String },
}

/// Deep-merge `src` into `dst` (maps merge, everything else replaces).
fn merge(dst: &mut Value, src: Value) {
    match (dst, src) {
        (Value::Mapping(d), Value::Mapping(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(dv) => merge(dv, v),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (d, s) => *d = s,
    }
}

/// Dotted names of every leaf under `v`.
fn leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let k = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                let p = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                leaves(v, &p, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// rcl's YAML parser refuses lists that mix integers and floats (`[1.0, 0]`): catch it
/// here with the field's name instead of an rcl error at start.
fn check_homogeneous(v: &Value, prefix: &str) -> Result<(), FieldError> {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let k = k.as_str().unwrap_or_default();
                check_homogeneous(v, &if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") })?;
            }
            Ok(())
        }
        Value::Sequence(s) => {
            let kind = |v: &Value| match v {
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "integer",
                Value::Bool(_) => "bool",
                Value::String(_) => "string",
                _ => "other",
            };
            if let Some(first) = s.first() {
                if let Some(bad) = s.iter().find(|x| kind(x) != kind(first)) {
                    return Err(FieldError::new(
                        prefix,
                        format!(
                            "list mixes {} and {} values, which ROS 2 (rcl) cannot load: write every number as a float (0.0, not 0)",
                            kind(first),
                            kind(bad)
                        ),
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Section names that apply to a node (as rcl matches them).
fn section_matches(key: &str, node_name: &str, namespace: &str) -> bool {
    let ns = namespace.trim_end_matches('/');
    let fq = format!("{ns}/{node_name}");
    key == "/**" || key == "**" || key == node_name || key == fq || key == format!("/{node_name}")
}

/// Load parameters from files and overrides. `node_name`/`namespace` select the sections.
pub fn load_params(
    files: &[PathBuf],
    overrides: &[(String, String)],
    node_name: &str,
    namespace: &str,
) -> Result<NodeParams, ConfigError> {
    let mut merged = Value::Mapping(Default::default());
    // (dotted parameter name, source index)
    let mut origin: Vec<(String, usize)> = Vec::new();
    let mut sources = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.clone(), source })?;
        let doc: Value = crate::config::parse_yaml_unvalidated(&text, path)?;
        let Value::Mapping(top) = doc else {
            return Err(invalid(path, Some(1), ".", "expected a map of node sections (`/**: ros__parameters: ...`)"));
        };
        let mut found = false;
        for (k, v) in top {
            let key = k.as_str().unwrap_or_default().to_string();
            if !section_matches(&key, node_name, namespace) {
                continue;
            }
            found = true;
            let Some(params) = v.get("ros__parameters").cloned() else {
                return Err(invalid(path, locate_field(&text, &key), &key, "section has no `ros__parameters` map"));
            };
            if let Err(e) = check_homogeneous(&params, "") {
                let f = format!("{key}.ros__parameters.{}", e.field);
                return Err(invalid(path, locate_field(&text, &f), &e.field, &e.message));
            }
            let mut names = Vec::new();
            leaves(&params, "", &mut names);
            sources.push(Source::File { path: path.clone(), text: text.clone(), section: key.clone() });
            origin.extend(names.into_iter().map(|n| (n, sources.len() - 1)));
            merge(&mut merged, params);
        }
        if !found {
            return Err(invalid(
                path,
                None,
                ".",
                &format!(
                    "no section for node `{node_name}` (expected `/**:` or `{node_name}:` with `ros__parameters`)"
                ),
            ));
        }
    }
    for (name, value) in overrides {
        let v: Value = serde_yaml::from_str(value).unwrap_or(Value::String(value.clone()));
        let mut nested = v;
        for seg in name.rsplit('.') {
            let mut m = serde_yaml::Mapping::new();
            m.insert(Value::String(seg.to_string()), nested);
            nested = Value::Mapping(m);
        }
        merge(&mut merged, nested);
        sources.push(Source::Override { name: name.clone(), value: value.clone() });
        origin.push((name.clone(), sources.len() - 1));
    }
    let locate = |field: &str, message: String| -> ConfigError {
        // the last source that set this field (or a parent / child of it)
        let hit = origin
            .iter()
            .rev()
            .find(|(n, _)| n == field || n.starts_with(&format!("{field}.")) || field.starts_with(&format!("{n}.")))
            .or_else(|| origin.iter().rev().find(|_| true))
            .map(|(_, i)| &sources[*i]);
        match hit {
            Some(Source::File { path, text, section }) => {
                let line =
                    if field == "." { None } else { locate_field(text, &format!("{section}.ros__parameters.{field}")) };
                invalid(path, line, field, &message)
            }
            Some(Source::Override { name, value }) => {
                invalid(Path::new(&format!("--ros-args -p {name}:={value}")), None, field, &message)
            }
            None => invalid(Path::new("<no parameter file>"), None, field, &message),
        }
    };
    let params: NodeParams = serde_path_to_error::deserialize(merged).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.into_inner().to_string();
        locate(&field, msg)
    })?;
    params.validate().map_err(|e| locate(&e.field, e.message))?;
    Ok(params)
}

fn invalid(path: &Path, line: Option<usize>, field: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column: None,
        field: field.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
/**:
  ros__parameters:
    model_path: model.safetensors
    device: cpu
    camera_names: [CAM_FRONT]
    cameras:
      CAM_FRONT:
        transport: compressed
        lidar_to_camera: [0.0, -1.0, 0.0, 0.0,
                          0.0, 0.0, -1.0, 0.5,
                          1.0, 0.0, 0.0, -1.0,
                          0.0, 0.0, 0.0, 1.0]
    qos:
      input_depth: 3
";

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn good_file_loads_with_defaults() {
        let d = tempfile::tempdir().unwrap();
        let f = write(&d, "p.yaml", GOOD);
        let p = load_params(&[f], &[], "bevfusion_node", "/").unwrap();
        assert_eq!(p.max_camera_lidar_delay, 0.12);
        assert_eq!(p.qos.input_depth, 3);
        assert_eq!(p.qos.input_reliability, Reliability::BestEffort);
        assert_eq!(p.transport(0), Transport::Compressed);
        assert_eq!(p.image_topic(0), "~/input/image_0");
        // optical z (forward) maps to LiDAR +x; camera origin at LiDAR (1, 0, 0.5)
        let iso = p.cam_to_lidar(0).unwrap();
        let z = iso.rotation * nalgebra::Vector3::z();
        assert!((z.x - 1.0).abs() < 1e-12, "{z:?}");
        let o = iso.translation.vector;
        assert!((o.x - 1.0).abs() < 1e-12 && (o.z - 0.5).abs() < 1e-12, "{o:?}");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let f = write(&d, "p.yaml", &GOOD.replace("input_depth: 3", "input_depth: 0"));
        let e = load_params(&[f.clone()], &[], "n", "/").unwrap_err();
        assert_eq!(e.field(), Some("qos.input_depth"));
        assert_eq!(e.line(), Some(14), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:14", f.display())), "{e}");

        let f = write(&d, "q.yaml", &GOOD.replace("0.0, 0.0, 0.0, 1.0]", "0.0, 0.0, 0.0, 2.0]"));
        let e = load_params(&[f], &[], "n", "/").unwrap_err();
        assert_eq!(e.field(), Some("cameras.CAM_FRONT.lidar_to_camera"), "{e}");
        assert_eq!(e.line(), Some(9), "{e}");

        let f = write(&d, "r.yaml", &GOOD.replace("1.0, 0.0, 0.0, -1.0", "1.0, 0, 0.0, -1.0"));
        let e = load_params(&[f], &[], "n", "/").unwrap_err();
        assert!(e.to_string().contains("mixes"), "{e}");

        let f = write(&d, "s.yaml", &GOOD.replace("device: cpu", "device: tpu"));
        let e = load_params(&[f], &[], "n", "/").unwrap_err();
        assert_eq!((e.field(), e.line()), (Some("device"), Some(4)), "{e}");

        let f = write(&d, "t.yaml", &GOOD.replace("device: cpu", "devize: cpu"));
        let e = load_params(&[f], &[], "n", "/").unwrap_err();
        assert!(e.to_string().contains("devize"), "{e}");

        // a camera without extrinsics, where nothing but the parameters may supply them
        let text = GOOD
            .replace("camera_names: [CAM_FRONT]", "camera_names: [CAM_FRONT, CAM_BACK]")
            .replace("device: cpu", "device: cpu\n    extrinsics_source: config");
        let f = write(&d, "u.yaml", &text);
        let e = load_params(&[f], &[], "n", "/").unwrap_err();
        assert!(e.to_string().contains("CAM_BACK"), "{e}");

        let f = write(&d, "v.yaml", "other_node:\n  ros__parameters:\n    a: 1\n");
        let e = load_params(&[f], &[], "n", "/").unwrap_err();
        assert!(e.to_string().contains("no section"), "{e}");
    }

    #[test]
    fn overrides_and_later_files_win_and_errors_name_the_override() {
        let d = tempfile::tempdir().unwrap();
        let f = write(&d, "p.yaml", GOOD);
        let g = write(&d, "g.yaml", "bevfusion_node:\n  ros__parameters:\n    score_threshold: 0.3\n");
        let o = vec![("qos.output_depth".to_string(), "7".to_string()), ("device".to_string(), "auto".to_string())];
        let p = load_params(&[f.clone(), g], &o, "bevfusion_node", "/").unwrap();
        assert_eq!((p.score_threshold, p.qos.output_depth, p.device.as_str()), (0.3, 7, "auto"));
        let bad = vec![("max_detections".to_string(), "0".to_string())];
        let e = load_params(&[f], &bad, "bevfusion_node", "/").unwrap_err();
        assert!(e.to_string().contains("-p max_detections:=0"), "{e}");
    }

    #[test]
    fn extrinsics_may_come_from_tf_static_or_the_rig_calibration_topic() {
        let d = tempfile::tempdir().unwrap();
        let text = "/**:\n  ros__parameters:\n    model_path: m\n    camera_names: [CAM_A, CAM_B]\n    \
                    cameras:\n      CAM_B:\n        transport: compressed\n";
        let f = write(&d, "p.yaml", text);
        // by default (auto) they may come from /tf_static
        let p = load_params(&[f.clone()], &[], "n", "/").unwrap();
        assert_eq!((p.extrinsics_source, p.tf_static_topic.as_str()), (ExtrinsicsSource::Auto, "/tf_static"));
        assert!(p.cam_to_lidar(0).is_none() && p.cam_to_lidar(1).is_none());
        let config = ("extrinsics_source".to_string(), "config".to_string());
        let e = load_params(&[f.clone()], &[config.clone()], "n", "/").unwrap_err();
        assert!(e.to_string().contains("rig_calibration_topic"), "{e}");
        let o = vec![config, ("rig_calibration_topic".to_string(), "/rig".to_string())];
        let p = load_params(&[f.clone()], &o, "n", "/").unwrap();
        assert!(p.cam_to_lidar(0).is_none() && p.cam_to_lidar(1).is_none());
        assert_eq!((p.transport(0), p.transport(1)), (Transport::Raw, Transport::Compressed));
        let o = vec![("tf_static_topic".to_string(), "".to_string())];
        let e = load_params(&[f.clone()], &o, "n", "/").unwrap_err();
        assert!(e.to_string().contains("tf_static_topic"), "{e}");
        let o = vec![("extrinsics_source".to_string(), "tf".to_string())];
        let e = load_params(&[f], &o, "n", "/").unwrap_err();
        assert!(e.to_string().contains("extrinsics_source"), "{e}");
    }

    #[test]
    fn ros_args_are_parsed() {
        let a: Vec<String> = [
            "node",
            "--foo",
            "--ros-args",
            "--params-file",
            "a.yaml",
            "-p",
            "fp16:=true",
            "-r",
            "__node:=det",
            "-r",
            "~/input/pointcloud:=/lidar",
            "--log-level",
            "debug",
            "--",
            "--params-file",
            "ignored",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_ros_args(&a).unwrap();
        assert_eq!(r.params_files, vec![PathBuf::from("a.yaml")]);
        assert_eq!(r.overrides, vec![("fp16".to_string(), "true".to_string())]);
        assert_eq!(r.node_name.as_deref(), Some("det"));
        assert!(parse_ros_args(&["--ros-args".into(), "-p".into(), "x".into()]).is_err());
    }

    #[test]
    fn rigid_check() {
        let mut id = vec![0.0; 16];
        for i in 0..4 {
            id[i * 5] = 1.0;
        }
        assert!(rigid_from_row_major(&id).is_ok());
        id[0] = 2.0;
        assert!(rigid_from_row_major(&id).unwrap_err().contains("not a rotation"));
        assert!(rigid_from_row_major(&id[..9]).is_err());
    }
}
