//! `metadata.yaml` of a rosbag2 directory: versions 1 to 9 are read, version 8 is written
//! (the newest version whose QoS serialisation every rosbag2 since Iron and `rosbags`
//! read; version 9 only changed the QoS profile layout).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The version [`Metadata::to_yaml`] writes.
pub const WRITE_VERSION: u32 = 8;
/// The newest version read.
pub const MAX_READ_VERSION: u32 = 9;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Nanoseconds {
    pub nanoseconds: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StartingTime {
    pub nanoseconds_since_epoch: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default = "cdr")]
    pub serialization_format: String,
    /// A YAML string (versions 4-8) or a list of mappings (version 9); kept as read.
    #[serde(default)]
    pub offered_qos_profiles: serde_yaml::Value,
    #[serde(default)]
    pub type_description_hash: String,
}

fn cdr() -> String {
    "cdr".into()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicWithMessageCount {
    pub topic_metadata: TopicMetadata,
    #[serde(default)]
    pub message_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileInformation {
    pub path: String,
    pub starting_time: StartingTime,
    pub duration: Nanoseconds,
    pub message_count: u64,
}

/// `rosbag2_bagfile_information`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub version: u32,
    pub storage_identifier: String,
    #[serde(default)]
    pub duration: Nanoseconds,
    #[serde(default)]
    pub starting_time: StartingTime,
    #[serde(default)]
    pub message_count: u64,
    #[serde(default)]
    pub topics_with_message_count: Vec<TopicWithMessageCount>,
    #[serde(default)]
    pub compression_format: String,
    #[serde(default)]
    pub compression_mode: String,
    #[serde(default)]
    pub relative_file_paths: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileInformation>,
    #[serde(default)]
    pub custom_data: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub ros_distro: String,
}

#[derive(Serialize, Deserialize)]
struct Document {
    rosbag2_bagfile_information: Metadata,
}

/// How a bag's storage files are compressed (rosbag2's `compression_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCompression {
    None,
    /// Each storage file is one zstd stream (`<name>.mcap.zstd`).
    File,
    /// Each message's data is one zstd frame.
    Message,
}

impl Metadata {
    /// Parse `metadata.yaml` text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let de = serde_yaml::Deserializer::from_str(text);
        let doc: Document = serde_path_to_error::deserialize(de).map_err(|e| {
            let loc = e.inner().location().map(|l| format!(" line {} column {}", l.line(), l.column()));
            anyhow::anyhow!("{}:{}: field `{}`: {}", path.display(), loc.unwrap_or_default(), e.path(), e.inner())
        })?;
        let m = doc.rosbag2_bagfile_information;
        if m.version == 0 || m.version > MAX_READ_VERSION {
            bail!(
                "{}: rosbag2 metadata version {} is not supported (1..={MAX_READ_VERSION})",
                path.display(),
                m.version
            );
        }
        Ok(m)
    }

    /// Read `<dir>/metadata.yaml`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("metadata.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, &path)
    }

    /// The YAML document as rosbag2 writes it.
    pub fn to_yaml(&self) -> Result<String> {
        Ok(serde_yaml::to_string(&Document { rosbag2_bagfile_information: self.clone() })?)
    }

    /// The compression mode; an unknown mode or format is an error.
    pub fn file_compression(&self) -> Result<FileCompression> {
        let mode = self.compression_mode.to_ascii_lowercase();
        let c = match mode.as_str() {
            "" | "none" => return Ok(FileCompression::None),
            "file" => FileCompression::File,
            "message" => FileCompression::Message,
            m => bail!("unknown rosbag2 compression_mode `{m}`"),
        };
        if self.compression_format != "zstd" {
            bail!("rosbag2 compression_format `{}` is not supported (only zstd)", self.compression_format);
        }
        Ok(c)
    }
}

/// QoS of a recorded topic, in the serialisation of metadata version 8 (a YAML string of
/// integer enums, as `offered_qos_profiles` in metadata.yaml and MCAP channel metadata).
/// `latched` = reliable + transient local (a calibration topic); otherwise reliable +
/// volatile.
pub fn qos_profiles_v8(latched: bool) -> String {
    let durability = if latched { 1 } else { 2 };
    format!(
        "- history: 3\n  depth: 0\n  reliability: 1\n  durability: {durability}\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false"
    )
}

/// True when the recorded QoS of a topic says transient local (latched) durability, in
/// either the version 8 (string, integer enums) or version 9 (list, names) form.
pub fn qos_is_latched(v: &serde_yaml::Value) -> bool {
    let list = match v {
        serde_yaml::Value::String(s) if !s.trim().is_empty() => match serde_yaml::from_str(s) {
            Ok(l) => l,
            Err(_) => return false,
        },
        other => other.clone(),
    };
    let Some(items) = list.as_sequence() else { return false };
    items.iter().any(|q| match q.get("durability") {
        Some(serde_yaml::Value::Number(n)) => n.as_u64() == Some(1),
        Some(serde_yaml::Value::String(s)) => s.eq_ignore_ascii_case("transient_local"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSBAGS_V9: &str = r#"rosbag2_bagfile_information:
  compression_format: ''
  compression_mode: ''
  custom_data: null
  duration:
    nanoseconds: 100
  files:
  - duration:
      nanoseconds: 100
    message_count: 2
    path: b.db3
    starting_time:
      nanoseconds_since_epoch: 5
  message_count: 2
  relative_file_paths:
  - b.db3
  ros_distro: rosbags
  starting_time:
    nanoseconds_since_epoch: 5
  storage_identifier: sqlite3
  topics_with_message_count:
  - message_count: 2
    topic_metadata:
      name: /cloud
      offered_qos_profiles:
      - avoid_ros_namespace_conventions: false
        deadline:
          nsec: 0
          sec: 0
        depth: 0
        durability: transient_local
        history: unknown
        lifespan:
          nsec: 0
          sec: 0
        liveliness: automatic
        liveliness_lease_duration:
          nsec: 0
          sec: 0
        reliability: reliable
      serialization_format: cdr
      type: sensor_msgs/msg/PointCloud2
      type_description_hash: RIHS01_abc
  version: 9
"#;

    #[test]
    fn reads_version_9_and_writes_version_8() {
        let m = Metadata::parse(ROSBAGS_V9, Path::new("metadata.yaml")).unwrap();
        assert_eq!(m.version, 9);
        assert_eq!(m.storage_identifier, "sqlite3");
        assert_eq!(m.topics_with_message_count[0].topic_metadata.type_name, "sensor_msgs/msg/PointCloud2");
        assert!(qos_is_latched(&m.topics_with_message_count[0].topic_metadata.offered_qos_profiles));
        assert_eq!(m.file_compression().unwrap(), FileCompression::None);

        let mut w = m.clone();
        w.version = WRITE_VERSION;
        w.topics_with_message_count[0].topic_metadata.offered_qos_profiles =
            serde_yaml::Value::String(qos_profiles_v8(false));
        let text = w.to_yaml().unwrap();
        let back = Metadata::parse(&text, Path::new("m.yaml")).unwrap();
        assert_eq!(back, w);
        assert!(!qos_is_latched(&back.topics_with_message_count[0].topic_metadata.offered_qos_profiles));
        assert!(qos_is_latched(&serde_yaml::Value::String(qos_profiles_v8(true))));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = ROSBAGS_V9.replace("message_count: 2\n  relative", "message_count: lots\n  relative");
        let e = Metadata::parse(&bad, Path::new("/x/metadata.yaml")).unwrap_err().to_string();
        assert!(e.contains("/x/metadata.yaml") && e.contains("message_count") && e.contains("line"), "{e}");
        let future = ROSBAGS_V9.replace("version: 9", "version: 10");
        assert!(Metadata::parse(&future, Path::new("m")).unwrap_err().to_string().contains("version 10"));
        let lz = ROSBAGS_V9
            .replace("compression_format: ''", "compression_format: lz4")
            .replace("compression_mode: ''", "compression_mode: FILE");
        assert!(Metadata::parse(&lz, Path::new("m")).unwrap().file_compression().is_err());
    }
}
