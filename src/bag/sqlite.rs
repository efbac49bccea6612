//! sqlite3 storage (`.db3`, rosbag2's default up to Humble): reader for schema versions 1-4
//! and a writer (schema 4: topics with QoS and type hash, message_definitions).
//!
//! Messages are read in row order (the order rosbag2 recorded them) in windows of row ids;
//! a window that SQLite cannot read is split down to single rows, so a damaged page costs
//! only the rows on it, each reported with the file and row id.

use super::msgdef::Definition;
use super::reader::{Issue, Location, MessageRef, Topic};
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const WINDOW: i64 = 512;

/// An opened `.db3`.
pub struct SqliteFile {
    path: PathBuf,
    conn: Connection,
    topics: Vec<Topic>,
    by_id: HashMap<i64, Arc<Topic>>,
    /// A decompressed or repaired copy lives here.
    _tmp: Option<tempfile::TempDir>,
    /// Problems found while opening (a truncated file).
    open_issues: Vec<Issue>,
    /// For a truncated file: the same bytes padded with 0xFF instead of zeros. A row whose
    /// data differs between the two copies reached past the cut and is skipped, never
    /// returned with made-up bytes.
    shadow: Option<(Connection, tempfile::TempDir)>,
}

/// Page size and page count from the SQLite header, when it is one.
fn header_pages(head: &[u8]) -> Option<(u64, u64)> {
    if head.len() < 100 || &head[..16] != b"SQLite format 3\0" {
        return None;
    }
    let ps = u16::from_be_bytes([head[16], head[17]]) as u64;
    let ps = if ps == 1 { 65536 } else { ps };
    let pc = u32::from_be_bytes([head[28], head[29], head[30], head[31]]) as u64;
    Some((ps, pc))
}

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let Ok(mut st) = conn.prepare(&format!("PRAGMA table_info({table})")) else { return Vec::new() };
    st.query_map([], |r| r.get::<_, String>(1)).map(|rows| rows.filter_map(|r| r.ok()).collect()).unwrap_or_default()
}

impl SqliteFile {
    /// Open read-only. A file shorter than its header says (a recording cut off) is read
    /// from a zero-padded copy, so that SQLite serves every page that is still there.
    pub fn open(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut head = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(100).read_to_end(&mut head))
            .with_context(|| format!("opening sqlite3 bag {}", path.display()))?;
        let len = std::fs::metadata(path)?.len();
        if let Some((ps, pc)) = header_pages(&head) {
            let want = ps * pc;
            if len < want || len % ps != 0 {
                let issue = Issue {
                    file: path.to_path_buf(),
                    offset: Some(len),
                    message: format!(
                        "file ends at byte {len} but its header says {pc} pages of {ps} bytes: truncated, reading what is there"
                    ),
                };
                let bytes = std::fs::read(path)?;
                let padded = want.max(len.div_ceil(ps) * ps) as usize;
                let mut ones = bytes.clone();
                ones.resize(padded, 0xFF);
                let mut zeros = bytes;
                zeros.resize(padded, 0);
                let mut s = Self::open_bytes(path, zeros)?;
                let dir = tempfile::tempdir()?;
                let p = dir.path().join("bag_ff.db3");
                std::fs::write(&p, ones)?;
                // A copy SQLite cannot open at all just means no row can be confirmed: the
                // comparison then skips every row that it cannot read identically.
                if let Ok(conn) = Connection::open_with_flags(
                    &p,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                ) {
                    s.shadow = Some((conn, dir));
                }
                s.open_issues.push(issue);
                return Ok(s);
            }
        }
        Self::open_at(path, path, None)
    }

    /// Problems found while opening.
    pub fn open_issues(&self) -> &[Issue] {
        &self.open_issues
    }

    /// Open a decompressed copy of `path` held in memory (written to a temporary file,
    /// since SQLite reads files).
    pub fn open_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("bag.db3");
        std::fs::write(&p, bytes)?;
        Self::open_at(path, &p, Some(dir))
    }

    fn open_at(name: &Path, real: &Path, tmp: Option<tempfile::TempDir>) -> Result<Self> {
        let conn = Connection::open_with_flags(
            real,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .with_context(|| format!("opening sqlite3 bag {}", name.display()))?;
        // Memory-mapped reads: blobs are served from the page cache without a copy.
        let _ = conn.pragma_update(None, "mmap_size", 1i64 << 34);
        let tcols = columns(&conn, "topics");
        if tcols.is_empty() || columns(&conn, "messages").is_empty() {
            anyhow::bail!("{}: not a rosbag2 sqlite3 file (no topics/messages tables)", name.display());
        }
        let mut defs: HashMap<String, (String, String)> = HashMap::new();
        if !columns(&conn, "message_definitions").is_empty() {
            let mut st = conn.prepare(
                "SELECT topic_type, encoding, encoded_message_definition, type_description_hash FROM message_definitions",
            )?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?;
            for (ty, enc, text, hash) in rows.flatten() {
                defs.insert(ty, (if enc == "ros2msg" { text } else { String::new() }, hash));
            }
        }
        let has = |c: &str| tcols.iter().any(|x| x == c);
        let sql = format!(
            "SELECT id, name, type, serialization_format, {}, {} FROM topics ORDER BY id",
            if has("offered_qos_profiles") { "offered_qos_profiles" } else { "''" },
            if has("type_description_hash") { "type_description_hash" } else { "''" },
        );
        let mut topics = Vec::new();
        let mut by_id = HashMap::new();
        {
            let mut st = conn.prepare(&sql).with_context(|| format!("{}: reading topics", name.display()))?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            for row in rows {
                let (id, topic, ty, fmt, qos, hash) =
                    row.with_context(|| format!("{}: reading topics", name.display()))?;
                let (definition, dhash) = defs.get(&ty).cloned().unwrap_or_default();
                let t = Topic {
                    name: topic,
                    latched: super::metadata::qos_is_latched(&serde_yaml::Value::String(qos.clone())),
                    type_name: ty,
                    serialization_format: fmt,
                    offered_qos_profiles: qos,
                    definition,
                    type_hash: if hash.is_empty() { dhash } else { hash },
                    message_count: None,
                };
                by_id.insert(id, Arc::new(t.clone()));
                topics.push(t);
            }
        }
        Ok(Self { path: name.to_path_buf(), conn, topics, by_id, _tmp: tmp, open_issues: Vec::new(), shadow: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    fn issue(&self, what: String) -> Issue {
        Issue { file: self.path.clone(), offset: None, message: what }
    }

    /// Visit every readable message in row order; `visit` returns false to stop.
    pub fn messages(
        &self,
        issues: &mut Vec<Issue>,
        visit: &mut dyn FnMut(&MessageRef<'_>, &Arc<Topic>) -> Result<bool>,
    ) -> Result<()> {
        let bounds: rusqlite::Result<(Option<i64>, Option<i64>)> =
            self.conn.query_row("SELECT MIN(id), MAX(id) FROM messages", [], |r| Ok((r.get(0)?, r.get(1)?)));
        let (lo, hi) = match bounds {
            Ok((Some(lo), Some(hi))) => (lo, hi),
            Ok(_) => return Ok(()),
            Err(e) => {
                issues.push(self.issue(format!("cannot read the messages table ({e})")));
                return Ok(());
            }
        };
        let mut st = self.conn.prepare_cached(
            "SELECT id, topic_id, timestamp, data FROM messages WHERE id >= ?1 AND id < ?2 ORDER BY id",
        )?;
        let mut unknown: HashMap<i64, u64> = HashMap::new();
        let mut shadow_st = match &self.shadow {
            Some((c, _)) => Some(c.prepare("SELECT data FROM messages WHERE id = ?1")?),
            None => None,
        };
        // Rows of a truncated file whose bytes depend on the padding (ids, first and last).
        let mut past_cut: Vec<i64> = Vec::new();
        // Ranges of row ids still to read; damaged ranges are split.
        let mut todo: Vec<(i64, i64)> = Vec::new();
        let mut start = lo;
        while start <= hi {
            let end = start.saturating_add(WINDOW).min(hi + 1);
            todo.push((start, end));
            start = end;
        }
        todo.reverse();
        let mut bad: Option<(i64, i64, String)> = None;
        let flush = |bad: &mut Option<(i64, i64, String)>, issues: &mut Vec<Issue>| {
            if let Some((a, b, e)) = bad.take() {
                let rows = if a == b { format!("messages row {a} is") } else { format!("messages rows {a}..={b} are") };
                issues.push(self.issue(format!("{rows} unreadable ({e}): skipped")));
            }
        };
        while let Some((a, b)) = todo.pop() {
            // Rows are handed out straight from SQLite's buffers. When SQLite fails inside the
            // window, the rows not handed out yet (`next..b`) are split and retried, down to
            // single rows, which are reported.
            let mut next = a;
            let failure: Option<rusqlite::Error> = 'window: {
                let mut rows = match st.query(params![a, b]) {
                    Ok(r) => r,
                    Err(e) => break 'window Some(e),
                };
                loop {
                    let row = match rows.next() {
                        Ok(Some(r)) => r,
                        Ok(None) => break 'window None,
                        Err(e) => break 'window Some(e),
                    };
                    let fields = (|| -> rusqlite::Result<(i64, i64, i64, &[u8])> {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get_ref(3)?.as_blob()?))
                    })();
                    let (id, topic_id, ts, data) = match fields {
                        Ok(f) => f,
                        Err(e) => break 'window Some(e),
                    };
                    flush(&mut bad, issues);
                    next = id + 1;
                    let Some(topic) = self.by_id.get(&topic_id) else {
                        let n = unknown.entry(topic_id).or_insert(0);
                        if *n == 0 {
                            issues.push(self.issue(format!(
                                "messages row {id}: topic id {topic_id} is not in the topics table: skipped"
                            )));
                        }
                        *n += 1;
                        continue;
                    };
                    if let Some(sh) = shadow_st.as_mut() {
                        let same = sh
                            .query_row(params![id], |r| Ok(r.get_ref(0)?.as_blob()? == data))
                            .unwrap_or(false);
                        if !same {
                            past_cut.push(id);
                            continue;
                        }
                    }
                    let m = MessageRef { file: &self.path, location: Location::Row { id }, log_time: ts, data };
                    if !visit(&m, topic)? {
                        return Ok(());
                    }
                }
            };
            let Some(e) = failure else { continue };
            if b - next > 1 {
                let mid = next + (b - next) / 2;
                tracing::debug!("{}: rows {next}..{b} unreadable ({e}), splitting", self.path.display());
                todo.push((mid, b));
                todo.push((next, mid));
            } else if b - next == 1 {
                match &mut bad {
                    Some((_, end, _)) if *end + 1 == next => *end = next,
                    _ => {
                        flush(&mut bad, issues);
                        bad = Some((next, next, e.to_string()));
                    }
                }
            }
        }
        flush(&mut bad, issues);
        if let (Some(first), Some(last)) = (past_cut.first(), past_cut.last()) {
            issues.push(self.issue(format!(
                "{} messages row(s) between {first} and {last} reach past the end of the truncated file: skipped",
                past_cut.len()
            )));
        }
        Ok(())
    }
}

/// Writes one `.db3` storage file (schema version 4, as rosbag2 Iron+ and rosbags write).
pub struct SqliteWriter {
    conn: Connection,
    path: PathBuf,
}

impl SqliteWriter {
    pub fn create(path: &Path) -> Result<Self> {
        if path.exists() {
            anyhow::bail!("{} exists", path.display());
        }
        let conn = Connection::open(path).with_context(|| format!("creating {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;
             CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
             CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL, metadata TEXT NOT NULL);
             CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
               serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL, type_description_hash TEXT NOT NULL);
             CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT NULL, encoding TEXT NOT NULL,
               encoded_message_definition TEXT NOT NULL, type_description_hash TEXT NOT NULL);
             CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, timestamp INTEGER NOT NULL, data BLOB NOT NULL);
             CREATE INDEX timestamp_idx ON messages (timestamp ASC);
             INSERT INTO schema(schema_version, ros_distro) VALUES (4, 'jazzy');
             BEGIN;",
        )
        .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { conn, path: path.to_path_buf() })
    }

    /// Declare a topic; returns its id.
    pub fn add_topic(
        &mut self,
        id: u16,
        name: &str,
        type_name: &str,
        qos: &str,
        def: Option<&Definition>,
    ) -> Result<u16> {
        let hash = def.map(|d| d.type_hash.clone()).unwrap_or_default();
        if let Some(d) = def {
            let known: i64 = self.conn.query_row(
                "SELECT COUNT(*) FROM message_definitions WHERE topic_type = ?1",
                params![type_name],
                |r| r.get(0),
            )?;
            if known == 0 {
                self.conn.execute(
                    "INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, type_description_hash) VALUES (?1, 'ros2msg', ?2, ?3)",
                    params![type_name, d.text, hash],
                )?;
            }
        }
        self.conn.execute(
            "INSERT INTO topics (id, name, type, serialization_format, offered_qos_profiles, type_description_hash) VALUES (?1, ?2, ?3, 'cdr', ?4, ?5)",
            params![id, name, type_name, qos, hash],
        )?;
        Ok(id)
    }

    pub fn write(&mut self, topic: u16, log_time_ns: i64, data: &[u8]) -> Result<()> {
        let mut st =
            self.conn.prepare_cached("INSERT INTO messages (topic_id, timestamp, data) VALUES (?1, ?2, ?3)")?;
        st.execute(params![topic, log_time_ns, data]).with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }

    pub fn finish(self, version: u32, serialized_metadata: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO metadata (metadata_version, metadata) VALUES (?1, ?2)",
            params![version, serialized_metadata],
        )?;
        self.conn.execute_batch("COMMIT;").with_context(|| format!("finishing {}", self.path.display()))?;
        self.conn.close().map_err(|(_, e)| e).with_context(|| format!("closing {}", self.path.display()))?;
        Ok(())
    }
}
