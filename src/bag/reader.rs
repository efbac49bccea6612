//! Reading a rosbag2 bag: a directory with `metadata.yaml` and its storage files (MCAP or
//! sqlite3, optionally zstd-compressed per file or per message), a directory whose
//! recording crashed before `metadata.yaml` was written (the storage files are read
//! directly), or a single `.mcap` / `.db3` file.
//!
//! Messages are visited in storage order with zero-copy slices of their serialised bytes.
//! Damage is never fatal: each problem becomes an [`Issue`] naming the file and byte offset
//! (MCAP) or row (sqlite3), and reading continues with what is readable.

use super::mcap::McapFile;
use super::metadata::{FileCompression, Metadata};
use super::sqlite::SqliteFile;
use anyhow::{bail, Context, Result};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest message we decompress in `compression_mode: message` bags.
const MESSAGE_LIMIT: u64 = 1 << 30;

/// A topic of a bag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Topic {
    pub name: String,
    /// `pkg/msg/Type`.
    pub type_name: String,
    pub serialization_format: String,
    /// As recorded (a YAML string).
    pub offered_qos_profiles: String,
    /// Transient-local durability (a latched topic such as the rig calibration).
    pub latched: bool,
    /// The concatenated `ros2msg` definition stored with the topic, or empty.
    pub definition: String,
    pub type_hash: String,
    /// From metadata.yaml when present.
    pub message_count: Option<u64>,
}

/// Where a message lies in its storage file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// An MCAP message record outside chunks, at this byte offset.
    Record { offset: u64 },
    /// An MCAP message inside the chunk record at `chunk_offset`, at `record_offset` of the
    /// decompressed chunk.
    InChunk { chunk_offset: u64, record_offset: u64 },
    /// A sqlite3 `messages` row.
    Row { id: i64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Record { offset } => write!(f, "message record at byte {offset}"),
            Location::InChunk { chunk_offset, record_offset } => {
                write!(f, "chunk at byte {chunk_offset}, message at uncompressed byte {record_offset}")
            }
            Location::Row { id } => write!(f, "messages row {id}"),
        }
    }
}

impl Location {
    /// Byte offset in the file (of the record or its chunk), when there is one.
    pub fn byte_offset(&self) -> Option<u64> {
        match self {
            Location::Record { offset } => Some(*offset),
            Location::InChunk { chunk_offset, .. } => Some(*chunk_offset),
            Location::Row { .. } => None,
        }
    }
}

/// One serialised message as stored.
#[derive(Clone, Copy, Debug)]
pub struct MessageRef<'a> {
    pub file: &'a Path,
    pub location: Location,
    /// Receive (log) time in nanoseconds since the epoch.
    pub log_time: i64,
    /// CDR bytes, encapsulation header included.
    pub data: &'a [u8],
}

impl MessageRef<'_> {
    /// An issue about this message (e.g. it does not decode).
    pub fn issue(&self, what: impl Into<String>) -> Issue {
        Issue {
            file: self.file.to_path_buf(),
            offset: self.location.byte_offset(),
            message: format!("{}: {}", self.location, what.into()),
        }
    }
}

/// A problem found while reading: the bag is damaged here, the rest was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub file: PathBuf,
    /// Byte offset in `file` where the problem is, when known.
    pub offset: Option<u64>,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at byte {o}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

enum Storage {
    Mcap(McapFile),
    Sqlite(SqliteFile),
}

/// An opened bag.
pub struct Bag {
    path: PathBuf,
    metadata: Option<Metadata>,
    files: Vec<Storage>,
    message_compression: bool,
    /// Problems found while opening (missing metadata.yaml, missing files).
    open_issues: Vec<Issue>,
}

fn storage_kind(p: &Path) -> Option<&'static str> {
    let name = p.file_name()?.to_string_lossy().to_string();
    let name = name.strip_suffix(".zstd").unwrap_or(&name);
    if name.ends_with(".mcap") {
        Some("mcap")
    } else if name.ends_with(".db3") {
        Some("sqlite3")
    } else {
        None
    }
}

/// Natural order of split files (`x_2.mcap` before `x_10.mcap`).
fn split_index(p: &Path) -> (String, u64) {
    let stem = p.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let base = stem.split('.').next().unwrap_or("").to_string();
    let idx = base.rsplit('_').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (base.rsplit_once('_').map(|(a, _)| a.to_string()).unwrap_or(base), idx)
}

impl Bag {
    /// Open a bag directory or a single storage file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            bail!("bag {} does not exist", path.display());
        }
        let mut open_issues = Vec::new();
        let (metadata, file_paths, compression) = if path.is_dir() {
            let meta_path = path.join("metadata.yaml");
            if meta_path.exists() {
                let m = Metadata::read(path)?;
                let c = m.file_compression().with_context(|| format!("{}", meta_path.display()))?;
                let mut files = Vec::new();
                for rel in &m.relative_file_paths {
                    let name = Path::new(rel).file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(rel));
                    let p = path.join(name);
                    if p.exists() {
                        files.push(p);
                    } else {
                        open_issues.push(Issue {
                            file: p.clone(),
                            offset: None,
                            message: "listed in metadata.yaml but missing: skipped".into(),
                        });
                    }
                }
                (Some(m), files, c)
            } else {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .with_context(|| format!("listing {}", path.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| storage_kind(p).is_some())
                    .collect();
                files.sort_by_key(|p| split_index(p));
                if files.is_empty() {
                    bail!("{} has neither metadata.yaml nor .mcap/.db3 storage files", path.display());
                }
                open_issues.push(Issue {
                    file: meta_path,
                    offset: None,
                    message: "missing (recording interrupted?): reading the storage files directly".into(),
                });
                let c = if files.iter().any(|p| p.to_string_lossy().ends_with(".zstd")) {
                    FileCompression::File
                } else {
                    FileCompression::None
                };
                (None, files, c)
            }
        } else {
            (None, vec![path.to_path_buf()], FileCompression::None)
        };
        let mut files = Vec::new();
        for p in file_paths {
            let kind = match (&metadata, storage_kind(&p)) {
                (_, Some(k)) => k,
                (Some(m), None) => match m.storage_identifier.as_str() {
                    "mcap" => "mcap",
                    "sqlite3" => "sqlite3",
                    o => bail!("{}: storage `{o}` is not supported (mcap, sqlite3)", path.display()),
                },
                (None, None) => bail!("{}: not a .mcap or .db3 file", p.display()),
            };
            let storage = match (kind, compression) {
                ("mcap", FileCompression::File) => Storage::Mcap(McapFile::from_bytes(&p, unzstd_file(&p)?)),
                ("mcap", _) => Storage::Mcap(McapFile::open(&p)?),
                ("sqlite3", FileCompression::File) => Storage::Sqlite(SqliteFile::open_bytes(&p, unzstd_file(&p)?)?),
                (_, _) => {
                    let s = SqliteFile::open(&p)?;
                    open_issues.extend(s.open_issues().iter().cloned());
                    Storage::Sqlite(s)
                }
            };
            files.push(storage);
        }
        Ok(Self {
            path: path.to_path_buf(),
            metadata,
            files,
            message_compression: compression == FileCompression::Message,
            open_issues,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// Problems found while opening.
    pub fn open_issues(&self) -> &[Issue] {
        &self.open_issues
    }

    /// The bag's topics: metadata.yaml's list (with message counts) completed by what the
    /// storage files declare (types, definitions).
    pub fn topics(&self) -> Vec<Topic> {
        let mut stored: Vec<Topic> = Vec::new();
        for f in &self.files {
            let ts: Vec<Topic> = match f {
                Storage::Mcap(m) => m.topics().into_iter().map(|t| (*t).clone()).collect(),
                Storage::Sqlite(s) => s.topics().to_vec(),
            };
            for t in ts {
                if !stored.iter().any(|s| s.name == t.name && s.type_name == t.type_name) {
                    stored.push(t);
                }
            }
        }
        let Some(m) = &self.metadata else { return stored };
        m.topics_with_message_count
            .iter()
            .map(|tw| {
                let tm = &tw.topic_metadata;
                let s = stored.iter().find(|s| s.name == tm.name && s.type_name == tm.type_name);
                let qos = match &tm.offered_qos_profiles {
                    serde_yaml::Value::String(s) => s.clone(),
                    serde_yaml::Value::Null => String::new(),
                    v => serde_yaml::to_string(v).unwrap_or_default(),
                };
                Topic {
                    name: tm.name.clone(),
                    type_name: tm.type_name.clone(),
                    serialization_format: tm.serialization_format.clone(),
                    latched: super::metadata::qos_is_latched(&tm.offered_qos_profiles),
                    offered_qos_profiles: qos,
                    definition: s.map(|s| s.definition.clone()).unwrap_or_default(),
                    type_hash: if tm.type_description_hash.is_empty() {
                        s.map(|s| s.type_hash.clone()).unwrap_or_default()
                    } else {
                        tm.type_description_hash.clone()
                    },
                    message_count: Some(tw.message_count),
                }
            })
            .collect()
    }

    /// Total size of the storage files in bytes.
    pub fn storage_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f {
                Storage::Mcap(m) => m.path(),
                Storage::Sqlite(s) => s.path(),
            })
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Visit every readable message in storage order; `visit` returns false to stop. The
    /// returned issues list every damaged place (opening issues included).
    pub fn messages(&self, mut visit: impl FnMut(&MessageRef<'_>, &Topic) -> Result<bool>) -> Result<Vec<Issue>> {
        let mut issues = self.open_issues.clone();
        let mut scratch = Vec::new();
        let stop = std::cell::Cell::new(false);
        let mut inner = |m: &MessageRef<'_>, t: &Arc<Topic>, issues: &mut Vec<Issue>| -> Result<bool> {
            if stop.get() {
                return Ok(false);
            }
            let go = if self.message_compression {
                scratch.clear();
                let r = zstd::stream::read::Decoder::with_buffer(m.data).map_err(anyhow::Error::from).and_then(|d| {
                    d.take(MESSAGE_LIMIT + 1).read_to_end(&mut scratch)?;
                    Ok(())
                });
                match r {
                    Ok(()) if scratch.len() as u64 <= MESSAGE_LIMIT => {
                        let d = MessageRef { data: &scratch, ..*m };
                        visit(&d, t)?
                    }
                    Ok(()) => {
                        issues.push(m.issue("message decompresses to more than 1 GiB: skipped"));
                        true
                    }
                    Err(e) => {
                        issues.push(m.issue(format!("message does not decompress ({e}): skipped")));
                        true
                    }
                }
            } else {
                visit(m, t)?
            };
            stop.set(!go);
            Ok(go)
        };
        for f in &self.files {
            let mut file_issues = Vec::new();
            let mut local = Vec::new();
            match f {
                Storage::Mcap(mf) => mf.messages(&mut file_issues, &mut |m, t| inner(m, t, &mut local))?,
                Storage::Sqlite(sf) => sf.messages(&mut file_issues, &mut |m, t| inner(m, t, &mut local))?,
            }
            issues.extend(file_issues);
            issues.extend(local);
            if stop.get() {
                break;
            }
        }
        for i in &issues {
            tracing::warn!("{i}");
        }
        Ok(issues)
    }
}

/// Decompress a `compression_mode: file` storage file into memory.
fn unzstd_file(p: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(f)
        .and_then(|mut d| d.read_to_end(&mut out))
        .with_context(|| format!("{}: zstd decompression failed after {} bytes", p.display(), out.len()))?;
    Ok(out)
}
