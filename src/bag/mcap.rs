//! MCAP storage (rosbag2's default since Iron): a recovering chunk-by-chunk reader over a
//! memory-mapped file, and a writer (the `mcap` crate: chunked, zstd or lz4 compressed,
//! with summary and indexes).
//!
//! Reading walks the records of the data section in file order. Each chunk is decompressed
//! on its own (into one reused buffer) and its messages are handed out in log-time order.
//! Damage never stops the walk: a chunk that fails its CRC or does not decompress is
//! reported (file and byte offset) and skipped; a record whose length is impossible loses
//! the framing, and the walk resumes at the next chunk, found from the summary's chunk
//! index when the file has one and by scanning for a plausible chunk header when not; a
//! truncated file yields everything before the cut, including the decodable prefix of the
//! chunk that was being written.

use super::msgdef::Definition;
use super::reader::{Issue, Location, MessageRef, Topic};
use anyhow::{Context, Result};
use mcap::records::{op, Record};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";
/// Largest chunk we decompress in one allocation sized from its header.
const BULK_LIMIT: u64 = 256 << 20;
/// Largest chunk we decompress at all.
const CHUNK_LIMIT: u64 = 4 << 30;

/// A chunk or file compression of MCAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkCompression {
    None,
    Zstd,
    Lz4,
}

impl std::str::FromStr for ChunkCompression {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "none" | "" => Self::None,
            "zstd" => Self::Zstd,
            "lz4" => Self::Lz4,
            o => anyhow::bail!("unknown chunk compression `{o}` (none, zstd, lz4)"),
        })
    }
}

/// An opened MCAP file.
pub struct McapFile {
    path: PathBuf,
    data: Bytes,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// The fixed part of a chunk record body.
struct ChunkHeader<'a> {
    uncompressed_size: u64,
    uncompressed_crc: u32,
    compression: &'a str,
    compressed_size: u64,
    /// Offset of the compressed records within the body.
    records_at: usize,
}

fn parse_chunk_header(body: &[u8]) -> Option<ChunkHeader<'_>> {
    let uncompressed_size = u64_at(body, 16)?;
    let uncompressed_crc = u32_at(body, 24)?;
    let clen = u32_at(body, 28)? as usize;
    let compression = std::str::from_utf8(body.get(32..32usize.checked_add(clen)?)?).ok()?;
    let compressed_size = u64_at(body, 32 + clen)?;
    Some(ChunkHeader { uncompressed_size, uncompressed_crc, compression, compressed_size, records_at: 40 + clen })
}

/// What the walk knows about schemas and channels so far.
#[derive(Default)]
struct Channels {
    schemas: HashMap<u16, (String, String, String)>,
    topics: HashMap<u16, Arc<Topic>>,
}

impl Channels {
    fn add_record(&mut self, rec: Record<'_>) {
        match rec {
            Record::Schema { header, data } => {
                let text = String::from_utf8_lossy(&data).into_owned();
                self.schemas.insert(header.id, (header.name, header.encoding, text));
            }
            Record::Channel(c) => {
                if self.topics.contains_key(&c.id) {
                    return;
                }
                let (type_name, encoding, text) = self.schemas.get(&c.schema_id).cloned().unwrap_or_default();
                let qos = c.metadata.get("offered_qos_profiles").cloned().unwrap_or_default();
                let topic = Topic {
                    name: c.topic,
                    type_name,
                    serialization_format: c.message_encoding,
                    latched: super::metadata::qos_is_latched(&serde_yaml::Value::String(qos.clone())),
                    offered_qos_profiles: qos,
                    definition: if encoding == "ros2msg" { text } else { String::new() },
                    type_hash: c.metadata.get("topic_type_hash").cloned().unwrap_or_default(),
                    message_count: None,
                };
                self.topics.insert(c.id, Arc::new(topic));
            }
            _ => {}
        }
    }
}

/// One message found in a chunk: where its data lies in the decompressed buffer.
struct Pending {
    channel: u16,
    log_time: u64,
    at: usize,
    len: usize,
    record_at: u64,
}

impl McapFile {
    /// Map `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the bag is opened read-only; a file truncated by another process while it
        // is mapped is the usual caveat of memory maps (SIGBUS), accepted for bag files.
        let m = unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("mapping {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), data: Bytes::Mapped(m) })
    }

    /// An MCAP held in memory (a decompressed `.mcap.zstd`); `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Self {
        Self { path: path.to_path_buf(), data: Bytes::Owned(bytes) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn issue(&self, offset: u64, message: impl Into<String>) -> Issue {
        Issue { file: self.path.clone(), offset: Some(offset), message: message.into() }
    }

    /// Schemas, channels and chunk offsets from the summary section, when the file ends
    /// with a valid footer.
    fn summary(&self, channels: &mut Channels) -> Option<Vec<u64>> {
        let buf: &[u8] = &self.data;
        if buf.len() < 8 + 29 + 8 || &buf[buf.len() - 8..] != MAGIC {
            return None;
        }
        let summary = mcap::read::Summary::read(buf).ok()??;
        for (id, s) in &summary.schemas {
            channels
                .schemas
                .insert(*id, (s.name.clone(), s.encoding.clone(), String::from_utf8_lossy(&s.data).into_owned()));
        }
        for (id, c) in &summary.channels {
            let schema = c.schema.as_ref();
            let rec = mcap::records::Channel {
                id: *id,
                schema_id: schema.map(|s| s.id).unwrap_or(0),
                topic: c.topic.clone(),
                message_encoding: c.message_encoding.clone(),
                metadata: c.metadata.clone(),
            };
            channels.add_record(Record::Channel(rec));
        }
        let mut chunks: Vec<u64> = summary.chunk_indexes.iter().map(|c| c.chunk_start_offset).collect();
        chunks.sort_unstable();
        Some(chunks)
    }

    /// The topics (channels) the file declares: from the summary when there is one, else
    /// from a scan of the whole file.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut ch = Channels::default();
        if self.summary(&mut ch).is_none() {
            let mut issues = Vec::new();
            let _ = self.walk(&mut ch, None, &mut issues, &mut |_, _| Ok(true));
        }
        let mut v: Vec<(u16, Arc<Topic>)> = ch.topics.into_iter().collect();
        v.sort_by_key(|(id, _)| *id);
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// Visit every readable message in file order (log-time order within each chunk).
    /// `visit` returns false to stop early. Damage is appended to `issues`.
    pub fn messages(
        &self,
        issues: &mut Vec<Issue>,
        visit: &mut dyn FnMut(&MessageRef<'_>, &Arc<Topic>) -> Result<bool>,
    ) -> Result<()> {
        let mut ch = Channels::default();
        let chunk_offsets = self.summary(&mut ch);
        self.walk(&mut ch, chunk_offsets.as_deref(), issues, &mut |m, t| visit(m, t))?;
        Ok(())
    }

    /// The linear walk. Returns Ok(false) when `visit` asked to stop.
    fn walk(
        &self,
        ch: &mut Channels,
        chunk_offsets: Option<&[u64]>,
        issues: &mut Vec<Issue>,
        visit: &mut dyn FnMut(&MessageRef<'_>, &Arc<Topic>) -> Result<bool>,
    ) -> Result<bool> {
        let buf: &[u8] = &self.data;
        if buf.len() < 8 || &buf[..8] != MAGIC {
            issues.push(self.issue(0, "not an MCAP file (bad magic bytes)"));
            return Ok(true);
        }
        let len = buf.len() as u64;
        let mut pos: u64 = 8;
        let mut scratch: Vec<u8> = Vec::new();
        let mut unknown_channels: HashMap<u16, u64> = HashMap::new();
        let resync = |from: u64, issues: &mut Vec<Issue>| -> Option<u64> {
            let next = match chunk_offsets {
                Some(offs) => offs.iter().copied().find(|&o| o > from),
                None => find_chunk(buf, from),
            };
            if let Some(n) = next {
                issues.push(self.issue(n, format!("resuming at the chunk at byte {n}")));
            }
            next
        };
        loop {
            if pos >= len {
                issues.push(self.issue(pos, "file ends without a footer: truncated (everything before was read)"));
                break;
            }
            if pos + 9 > len {
                issues.push(self.issue(pos, "file ends inside a record header: truncated"));
                break;
            }
            let p = pos as usize;
            let opcode = buf[p];
            let rlen = u64_at(buf, p + 1).unwrap_or(u64::MAX);
            let body_at = pos + 9;
            if rlen > len - body_at {
                let rest = &buf[body_at as usize..];
                let consistent = opcode == op::CHUNK
                    && parse_chunk_header(rest)
                        .is_some_and(|h| (h.records_at as u64).checked_add(h.compressed_size) == Some(rlen));
                if consistent {
                    // The chunk being written when the recording stopped: read what is there.
                    issues.push(self.issue(
                        pos,
                        format!("chunk record claims {rlen} bytes but the file ends after {}: truncated", rest.len()),
                    ));
                    let go = self.chunk(pos, rest, true, ch, &mut scratch, issues, &mut unknown_channels, visit)?;
                    if !go {
                        return Ok(false);
                    }
                } else {
                    issues.push(self.issue(
                        pos,
                        format!("record (opcode {opcode:#04x}) claims {rlen} bytes, more than the {} left", rest.len()),
                    ));
                }
                match resync(pos, issues) {
                    Some(n) => {
                        pos = n;
                        continue;
                    }
                    None => break,
                }
            }
            let body = &buf[body_at as usize..(body_at + rlen) as usize];
            match opcode {
                op::SCHEMA | op::CHANNEL => match mcap::read::parse_record(opcode, body) {
                    Ok(r) => ch.add_record(r),
                    Err(e) => issues.push(self.issue(pos, format!("bad schema/channel record: {e}"))),
                },
                op::MESSAGE => {
                    if let Some(m) = message_header(body) {
                        let data = &body[22..];
                        let go = self.deliver(m.0, m.1, data, pos, None, ch, issues, &mut unknown_channels, visit)?;
                        if !go {
                            return Ok(false);
                        }
                    } else {
                        issues.push(self.issue(pos, "message record shorter than its header"));
                    }
                }
                op::CHUNK => {
                    let go = self.chunk(pos, body, false, ch, &mut scratch, issues, &mut unknown_channels, visit)?;
                    if !go {
                        return Ok(false);
                    }
                }
                op::DATA_END | op::FOOTER => break,
                0x00 => {
                    issues.push(self.issue(pos, "invalid record opcode 0x00"));
                    match resync(pos, issues) {
                        Some(n) => {
                            pos = n;
                            continue;
                        }
                        None => break,
                    }
                }
                _ => {}
            }
            pos = body_at + rlen;
        }
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        channel: u16,
        log_time: u64,
        data: &[u8],
        record_at: u64,
        chunk_at: Option<u64>,
        ch: &Channels,
        issues: &mut Vec<Issue>,
        unknown: &mut HashMap<u16, u64>,
        visit: &mut dyn FnMut(&MessageRef<'_>, &Arc<Topic>) -> Result<bool>,
    ) -> Result<bool> {
        let Some(topic) = ch.topics.get(&channel) else {
            let n = unknown.entry(channel).or_insert(0);
            if *n == 0 {
                let at = chunk_at.unwrap_or(record_at);
                issues.push(
                    self.issue(at, format!("message on channel {channel}, which no channel record declares: skipped")),
                );
            }
            *n += 1;
            return Ok(true);
        };
        let location = match chunk_at {
            Some(chunk_offset) => Location::InChunk { chunk_offset, record_offset: record_at },
            None => Location::Record { offset: record_at },
        };
        let m = MessageRef { file: &self.path, location, log_time: log_time as i64, data };
        visit(&m, topic)
    }

    /// Decompress one chunk and deliver its messages in log-time order.
    #[allow(clippy::too_many_arguments)]
    fn chunk(
        &self,
        at: u64,
        body: &[u8],
        truncated: bool,
        ch: &mut Channels,
        scratch: &mut Vec<u8>,
        issues: &mut Vec<Issue>,
        unknown: &mut HashMap<u16, u64>,
        visit: &mut dyn FnMut(&MessageRef<'_>, &Arc<Topic>) -> Result<bool>,
    ) -> Result<bool> {
        let Some(h) = parse_chunk_header(body) else {
            issues.push(self.issue(at, "chunk header is damaged: chunk skipped"));
            return Ok(true);
        };
        let avail = body.len().saturating_sub(h.records_at);
        let csize =
            if h.compressed_size as usize > avail {
                if !truncated {
                    issues.push(self.issue(
                        at,
                        format!("chunk claims {} compressed bytes, record holds {avail}", h.compressed_size),
                    ));
                }
                avail
            } else {
                h.compressed_size as usize
            };
        let compressed = &body[h.records_at..h.records_at + csize];
        let partial = truncated || csize < h.compressed_size as usize;
        if h.uncompressed_size > CHUNK_LIMIT {
            issues.push(self.issue(at, format!("chunk claims {} uncompressed bytes: skipped", h.uncompressed_size)));
            return Ok(true);
        }
        let records: &[u8] = match h.compression {
            "" => compressed,
            "zstd" | "lz4" => {
                scratch.clear();
                let r = decompress(h.compression, compressed, h.uncompressed_size, scratch);
                if let Err(e) = r {
                    if !partial {
                        issues.push(
                            self.issue(at, format!("{} chunk does not decompress ({e}): skipped", h.compression)),
                        );
                        return Ok(true);
                    }
                }
                &scratch[..]
            }
            other => {
                issues.push(self.issue(at, format!("chunk compression `{other}` is not supported: skipped")));
                return Ok(true);
            }
        };
        if !partial {
            if records.len() as u64 != h.uncompressed_size {
                issues.push(self.issue(
                    at,
                    format!(
                        "chunk decompressed to {} bytes, header says {}: skipped",
                        records.len(),
                        h.uncompressed_size
                    ),
                ));
                return Ok(true);
            }
            if h.uncompressed_crc != 0 && crc32fast::hash(records) != h.uncompressed_crc {
                issues.push(self.issue(at, "chunk CRC mismatch: skipped"));
                return Ok(true);
            }
        }
        let mut pending: Vec<Pending> = Vec::new();
        let mut p = 0usize;
        while p < records.len() {
            if p + 9 > records.len() {
                if !partial {
                    issues.push(self.issue(at, format!("chunk ends inside a record header at uncompressed byte {p}")));
                }
                break;
            }
            let opcode = records[p];
            let rlen = u64_at(records, p + 1).unwrap_or(u64::MAX);
            if rlen > (records.len() - p - 9) as u64 {
                if !partial {
                    issues.push(self.issue(
                        at,
                        format!(
                            "record at uncompressed byte {p} of the chunk claims {rlen} bytes: rest of chunk skipped"
                        ),
                    ));
                }
                break;
            }
            let body = &records[p + 9..p + 9 + rlen as usize];
            match opcode {
                op::MESSAGE => match message_header(body) {
                    Some((channel, log_time)) => pending.push(Pending {
                        channel,
                        log_time,
                        at: p + 9 + 22,
                        len: rlen as usize - 22,
                        record_at: p as u64,
                    }),
                    None => {
                        issues.push(self.issue(at, format!("message record at uncompressed byte {p} is too short")))
                    }
                },
                op::SCHEMA | op::CHANNEL => match mcap::read::parse_record(opcode, body) {
                    Ok(r) => ch.add_record(r),
                    Err(e) => {
                        issues.push(self.issue(at, format!("bad record at uncompressed byte {p} of the chunk: {e}")))
                    }
                },
                _ => {}
            }
            p += 9 + rlen as usize;
        }
        if !pending.windows(2).all(|w| w[0].log_time <= w[1].log_time) {
            pending.sort_by_key(|m| m.log_time);
        }
        for m in &pending {
            let data = &records[m.at..m.at + m.len];
            if !self.deliver(m.channel, m.log_time, data, m.record_at, Some(at), ch, issues, unknown, visit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Channel id and log time of a message record body.
fn message_header(body: &[u8]) -> Option<(u16, u64)> {
    if body.len() < 22 {
        return None;
    }
    Some((u16_at(body, 0)?, u64_at(body, 6)?))
}

/// Decompress a chunk into `out` (cleared by the caller). On error `out` holds what could
/// be decoded.
fn decompress(kind: &str, src: &[u8], size: u64, out: &mut Vec<u8>) -> Result<()> {
    match kind {
        "zstd" if size <= BULK_LIMIT => {
            out.reserve(size as usize);
            match zstd::bulk::Decompressor::new()?.decompress_to_buffer(src, out) {
                Ok(_) => Ok(()),
                Err(_) => {
                    // Truncated or damaged: decode the readable prefix with the streaming decoder.
                    out.clear();
                    let mut d = zstd::stream::read::Decoder::with_buffer(src)?;
                    read_prefix(&mut d, CHUNK_LIMIT, out)
                }
            }
        }
        "zstd" => {
            let mut d = zstd::stream::read::Decoder::with_buffer(src)?;
            read_prefix(&mut d, CHUNK_LIMIT, out)
        }
        "lz4" => {
            out.reserve(size.min(BULK_LIMIT) as usize);
            let mut d = lz4::Decoder::new(src)?;
            read_prefix(&mut d, CHUNK_LIMIT, out)
        }
        o => anyhow::bail!("unknown compression {o}"),
    }
}

/// Read until end, error or `limit` bytes; an error after some output is reported but the
/// output is kept.
fn read_prefix(r: &mut dyn Read, limit: u64, out: &mut Vec<u8>) -> Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() as u64 > limit {
                    anyhow::bail!("decompressed data exceeds {limit} bytes");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The next offset after `from` where a plausible chunk record starts (opcode, a length
/// that fits the file, and a header whose sizes and compression name agree with it).
fn find_chunk(buf: &[u8], from: u64) -> Option<u64> {
    let mut p = from as usize + 1;
    while p + 9 + 40 <= buf.len() {
        let Some(off) = buf[p..].iter().position(|&b| b == op::CHUNK) else { return None };
        p += off;
        if let Some(rlen) = u64_at(buf, p + 1) {
            if rlen >= 40 && rlen <= (buf.len() - p - 9) as u64 {
                let body = &buf[p + 9..p + 9 + rlen as usize];
                if let Some(h) = parse_chunk_header(body) {
                    let plausible = matches!(h.compression, "" | "zstd" | "lz4")
                        && h.records_at as u64 + h.compressed_size == rlen
                        && u64_at(body, 0) <= u64_at(body, 8);
                    if plausible {
                        return Some(p as u64);
                    }
                }
            }
        }
        p += 1;
    }
    None
}

/// Writes one MCAP storage file of a rosbag2 bag.
pub struct McapWriter {
    inner: mcap::Writer<BufWriter<std::fs::File>>,
    path: PathBuf,
    sequence: HashMap<u16, u32>,
}

impl McapWriter {
    /// Create `path` (which must not exist yet).
    pub fn create(path: &Path, compression: ChunkCompression, chunk_size: u64) -> Result<Self> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        let opts = mcap::WriteOptions::new()
            .profile("ros2")
            .library(format!("altermoma-{}", env!("CARGO_PKG_VERSION")))
            .compression(match compression {
                ChunkCompression::None => None,
                ChunkCompression::Zstd => Some(mcap::Compression::Zstd),
                ChunkCompression::Lz4 => Some(mcap::Compression::Lz4),
            })
            .compression_threads(1)
            .chunk_size(Some(chunk_size));
        let inner =
            opts.create(BufWriter::with_capacity(1 << 20, f)).with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { inner, path: path.to_path_buf(), sequence: HashMap::new() })
    }

    /// Declare a topic: its schema (definition) and channel. Returns the channel id.
    pub fn add_topic(&mut self, name: &str, type_name: &str, qos: &str, def: Option<&Definition>) -> Result<u16> {
        let (encoding, text, hash) = match def {
            Some(d) => ("ros2msg", d.text.as_bytes(), d.type_hash.clone()),
            None => ("", &[][..], String::new()),
        };
        let schema = self.inner.add_schema(type_name, encoding, text)?;
        let mut meta = BTreeMap::new();
        meta.insert("offered_qos_profiles".to_string(), qos.to_string());
        meta.insert("topic_type_hash".to_string(), hash);
        Ok(self.inner.add_channel(schema, name, "cdr", &meta)?)
    }

    /// Append one message.
    pub fn write(&mut self, channel: u16, log_time_ns: u64, publish_time_ns: u64, data: &[u8]) -> Result<()> {
        let seq = self.sequence.entry(channel).or_insert(0);
        *seq = seq.wrapping_add(1);
        let h = mcap::records::MessageHeader {
            channel_id: channel,
            sequence: *seq,
            log_time: log_time_ns,
            publish_time: publish_time_ns,
        };
        self.inner.write_to_known_channel(&h, data).with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }

    /// Write the rosbag2 metadata record, the summary and the footer, and sync the file.
    pub fn finish(mut self, serialized_metadata: &str) -> Result<()> {
        let mut m = BTreeMap::new();
        m.insert("serialized_metadata".to_string(), serialized_metadata.to_string());
        self.inner.write_metadata(&mcap::records::Metadata { name: "rosbag2".into(), metadata: m })?;
        self.inner.finish().with_context(|| format!("finishing {}", self.path.display()))?;
        let w = self.inner.into_inner();
        let f = w.into_inner().map_err(|e| anyhow::anyhow!("flushing {}: {}", self.path.display(), e.error()))?;
        f.sync_all()?;
        Ok(())
    }
}
