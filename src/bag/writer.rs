//! Writing a rosbag2 bag directory (metadata.yaml version 8 + one MCAP or sqlite3 storage
//! file), atomically: everything is written into a temporary directory beside the target,
//! synced, and renamed into place by [`BagWriter::finish`]; a writer dropped before that
//! (error, Ctrl-C) leaves nothing under the target name.

use super::cdr::CdrMessage;
use super::mcap::{ChunkCompression, McapWriter};
use super::metadata::{
    self, FileInformation, Metadata, Nanoseconds, StartingTime, TopicMetadata, TopicWithMessageCount,
};
use super::msgdef;
use super::sqlite::SqliteWriter;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Storage plugin of a new bag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// MCAP with chunks of about `chunk_size` bytes, compressed as given.
    Mcap {
        compression: ChunkCompression,
        chunk_size: u64,
    },
    Sqlite3,
}

impl Default for StorageKind {
    fn default() -> Self {
        StorageKind::Mcap { compression: ChunkCompression::Zstd, chunk_size: 4 << 20 }
    }
}

enum Store {
    Mcap(McapWriter),
    Sqlite(SqliteWriter),
}

/// Handle of a declared topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicId(usize);

struct TopicState {
    meta: TopicMetadata,
    storage_id: u16,
    count: u64,
}

/// A bag being written.
pub struct BagWriter {
    target: PathBuf,
    tmp: tempfile::TempDir,
    file_name: String,
    kind: StorageKind,
    store: Option<Store>,
    topics: Vec<TopicState>,
    first: i64,
    last: i64,
}

impl BagWriter {
    /// Start a bag that will appear as directory `target` (which must not exist).
    pub fn create(target: impl AsRef<Path>, kind: StorageKind) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        if target.exists() {
            bail!("{} already exists (remove it or choose another name)", target.display());
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .with_context(|| format!("{} does not name a directory", target.display()))?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
        let file_name = match kind {
            StorageKind::Mcap { .. } => format!("{name}_0.mcap"),
            StorageKind::Sqlite3 => format!("{name}_0.db3"),
        };
        let path = tmp.path().join(&file_name);
        let store = match kind {
            StorageKind::Mcap { compression, chunk_size } => {
                Store::Mcap(McapWriter::create(&path, compression, chunk_size)?)
            }
            StorageKind::Sqlite3 => Store::Sqlite(SqliteWriter::create(&path)?),
        };
        Ok(Self {
            target,
            tmp,
            file_name,
            kind,
            store: Some(store),
            topics: Vec::new(),
            first: i64::MAX,
            last: i64::MIN,
        })
    }

    /// Declare a topic of type `type_name` (`pkg/msg/Type`). `latched` records it with
    /// transient-local durability (calibration, static data). The message definition is
    /// stored when one is known (see [`msgdef`]).
    pub fn add_topic(&mut self, name: &str, type_name: &str, latched: bool) -> Result<TopicId> {
        if self.topics.iter().any(|t| t.meta.name == name) {
            bail!("topic {name} declared twice");
        }
        let def = msgdef::definition(type_name);
        if def.is_none() {
            tracing::warn!("no message definition for {type_name}: topic {name} is written without one");
        }
        let qos = metadata::qos_profiles_v8(latched);
        let storage_id = match self.store.as_mut().expect("open") {
            Store::Mcap(w) => w.add_topic(name, type_name, &qos, def.as_ref())?,
            Store::Sqlite(w) => w.add_topic(self.topics.len() as u16 + 1, name, type_name, &qos, def.as_ref())?,
        };
        self.topics.push(TopicState {
            meta: TopicMetadata {
                name: name.into(),
                type_name: type_name.into(),
                serialization_format: "cdr".into(),
                offered_qos_profiles: serde_yaml::Value::String(qos),
                type_description_hash: def.map(|d| d.type_hash).unwrap_or_default(),
            },
            storage_id,
            count: 0,
        });
        Ok(TopicId(self.topics.len() - 1))
    }

    /// Append a serialised message received at `log_time_ns`.
    pub fn write_raw(&mut self, topic: TopicId, log_time_ns: i64, data: &[u8]) -> Result<()> {
        let t = self.topics.get_mut(topic.0).context("unknown topic id")?;
        if log_time_ns < 0 {
            bail!("negative timestamp {log_time_ns} on {}", t.meta.name);
        }
        match self.store.as_mut().expect("open") {
            Store::Mcap(w) => w.write(t.storage_id, log_time_ns as u64, log_time_ns as u64, data)?,
            Store::Sqlite(w) => w.write(t.storage_id, log_time_ns, data)?,
        }
        t.count += 1;
        self.first = self.first.min(log_time_ns);
        self.last = self.last.max(log_time_ns);
        Ok(())
    }

    /// Serialise and append a message.
    pub fn write<M: CdrMessage>(&mut self, topic: TopicId, log_time_ns: i64, msg: &M) -> Result<()> {
        let t = self.topics.get(topic.0).context("unknown topic id")?;
        if t.meta.type_name != M::TYPE_NAME {
            bail!("topic {} has type {}, not {}", t.meta.name, t.meta.type_name, M::TYPE_NAME);
        }
        let bytes =
            msg.encode().map_err(|e| anyhow::anyhow!("serialising {} for {}: {e}", M::TYPE_NAME, t.meta.name))?;
        self.write_raw(topic, log_time_ns, &bytes)
    }

    /// Messages written so far.
    pub fn message_count(&self) -> u64 {
        self.topics.iter().map(|t| t.count).sum()
    }

    fn metadata(&self) -> Metadata {
        let count = self.message_count();
        let (start, duration) = if count == 0 { (0, 0) } else { (self.first, self.last - self.first) };
        Metadata {
            version: metadata::WRITE_VERSION,
            storage_identifier: match self.kind {
                StorageKind::Mcap { .. } => "mcap".into(),
                StorageKind::Sqlite3 => "sqlite3".into(),
            },
            duration: Nanoseconds { nanoseconds: duration },
            starting_time: StartingTime { nanoseconds_since_epoch: start },
            message_count: count,
            topics_with_message_count: self
                .topics
                .iter()
                .map(|t| TopicWithMessageCount { topic_metadata: t.meta.clone(), message_count: t.count })
                .collect(),
            compression_format: String::new(),
            compression_mode: String::new(),
            relative_file_paths: vec![self.file_name.clone()],
            files: vec![FileInformation {
                path: self.file_name.clone(),
                starting_time: StartingTime { nanoseconds_since_epoch: start },
                duration: Nanoseconds { nanoseconds: duration },
                message_count: count,
            }],
            custom_data: None,
            ros_distro: std::env::var("ROS_DISTRO").unwrap_or_else(|_| "jazzy".into()),
        }
    }

    /// Finish the storage file, write metadata.yaml, sync, and rename the directory into
    /// place. Returns the bag's path.
    pub fn finish(mut self) -> Result<PathBuf> {
        let meta = self.metadata();
        let yaml = meta.to_yaml()?;
        // The storage file carries the inner mapping too (rosbag2 reads it when metadata.yaml
        // is lost).
        let body = serde_yaml::to_string(&meta)?;
        match self.store.take().expect("open") {
            Store::Mcap(w) => w.finish(&body)?,
            Store::Sqlite(w) => w.finish(meta.version, &body)?,
        }
        let storage = self.tmp.path().join(&self.file_name);
        std::fs::File::open(&storage)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", storage.display()))?;
        crate::io::atomic_write(self.tmp.path().join("metadata.yaml"), yaml.as_bytes())?;
        // tempfile creates private (0700/0600) entries; a bag is an ordinary readable directory.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.tmp.path(), std::fs::Permissions::from_mode(0o755))?;
            for e in std::fs::read_dir(self.tmp.path())? {
                std::fs::set_permissions(e?.path(), std::fs::Permissions::from_mode(0o644))?;
            }
        }
        let dir = self.tmp.keep();
        if let Err(e) = std::fs::rename(&dir, &self.target) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e).with_context(|| format!("renaming the finished bag into {}", self.target.display()));
        }
        if let Some(parent) = self.target.parent() {
            if let Ok(d) = std::fs::File::open(if parent.as_os_str().is_empty() { Path::new(".") } else { parent }) {
                let _ = d.sync_all();
            }
        }
        Ok(self.target.clone())
    }
}
