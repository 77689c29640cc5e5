//! The lenient reader: every intact record of a whole, cut or damaged MCAP file.
//!
//! Records are walked by their framing (opcode, length), not through the summary, so a file
//! without summary and footer (a killed recorder) reads up to its cut. A chunk is taken whole or
//! not at all: its CRC is checked before any of its messages is taken, and a chunk whose CRC
//! fails, or with a record inside that does not parse, is skipped and said
//! ([`Scan::skipped`]); the chunks after it are read. Where the framing itself breaks (garbage
//! over a record's length), reading goes on from the next chunk that is whole (its CRC holds,
//! which garbage does not fake); with none after it, reading stops there ([`Scan::damage`]).

use mcap::records::{Record, op};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes the reader walks: a slice, or a file ([`FileSource`]), read at offsets.
pub trait Source {
    /// How many bytes there are.
    fn size(&self) -> u64;
    /// Fills `buf` from offset `at` (the reader never asks past [`Source::size`]).
    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let from = usize::try_from(at).unwrap_or(usize::MAX);
        let part = from
            .checked_add(buf.len())
            .and_then(|end| self.get(from..end))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

/// A file read at offsets (a whole recording need not fit in memory).
pub struct FileSource {
    file: File,
    size: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(Self { file, size })
    }
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(at))?;
        self.file.read_exact(buf)
    }
}

/// A schema record.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemaInfo {
    pub id: u16,
    pub name: String,
    /// e.g. `jsonschema`.
    pub encoding: String,
    pub data: Vec<u8>,
}

/// A channel record.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelInfo {
    pub id: u16,
    /// 0: schema-less.
    pub schema_id: u16,
    pub topic: String,
    /// e.g. `json`.
    pub message_encoding: String,
    pub metadata: BTreeMap<String, String>,
}

/// One message as [`scan`] hands it over, borrowed from the reader.
#[derive(Clone, Copy, Debug)]
pub struct MessageRef<'a> {
    /// The header record's profile (empty if it was not read).
    pub profile: &'a str,
    pub channel: &'a ChannelInfo,
    /// The channel's schema, if it has one and the schema record was read.
    pub schema: Option<&'a SchemaInfo>,
    pub sequence: u32,
    pub log_time_ns: u64,
    pub publish_time_ns: u64,
    pub data: &'a [u8],
}

/// Why a file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not an MCAP file (it does not start with the MCAP magic bytes)")]
    NotMcap,
    #[error(
        "the file ends early, without its summary and footer (the recording was cut short, \
         e.g. a killed recorder): {0}"
    )]
    Truncated(mcap::McapError),
    #[error("corrupt MCAP data from byte {offset} on ({why}), and no intact chunk after it")]
    Unframed { offset: usize, why: String },
}

/// A record of the file that could not be used (a chunk whose CRC fails, say); reading went on
/// after it.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRecord {
    /// Where the record starts in the file.
    pub offset: usize,
    /// What it is (`chunk`, or the opcode of another record).
    pub what: String,
    /// The log times its header claims (chunks), ns. A damaged header may lie.
    pub log_time_ns: Option<(u64, u64)>,
    pub reason: String,
}

impl std::fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} at byte {}", self.what, self.offset)?;
        if let Some((a, b)) = self.log_time_ns {
            write!(
                f,
                " (t = {:.2} s .. {:.2} s)",
                a as f64 / 1e9,
                b as f64 / 1e9
            )?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// One line on skipped records, if any: how many, and each one.
fn describe_skipped(skipped: &[SkippedRecord]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let each: Vec<String> = skipped.iter().map(ToString::to_string).collect();
    let one = skipped.len() == 1;
    Some(format!(
        "{} damaged record{} skipped, the messages in {} lost: {}",
        skipped.len(),
        if one { "" } else { "s" },
        if one { "it" } else { "them" },
        each.join("; ")
    ))
}

/// What [`scan`] found besides the messages it handed over.
#[derive(Debug, Default)]
pub struct Scan {
    /// The header record's profile, if it was read.
    pub profile: Option<String>,
    pub schemas: BTreeMap<u16, SchemaInfo>,
    pub channels: BTreeMap<u16, ChannelInfo>,
    /// Messages handed over.
    pub messages: u64,
    /// Damaged records skipped (their messages are missing, the ones after them were read).
    pub skipped: Vec<SkippedRecord>,
    /// Why reading stopped early (`None`: the file is complete, summary and footer included).
    pub damage: Option<ReadError>,
}

impl Scan {
    /// One line on the skipped records, if any: how many, and each one.
    pub fn describe_skipped(&self) -> Option<String> {
        describe_skipped(&self.skipped)
    }

    /// A record outside chunks (or, via [`Scan::take_chunk`], inside one).
    fn take(
        &mut self,
        record: Record<'_>,
        on_message: &mut impl FnMut(MessageRef<'_>),
    ) -> Result<(), String> {
        match record {
            Record::Header(h) => {
                self.profile.get_or_insert(h.profile);
            }
            Record::Schema { header, data } => {
                self.schemas.entry(header.id).or_insert(SchemaInfo {
                    id: header.id,
                    name: header.name,
                    encoding: header.encoding,
                    data: data.into_owned(),
                });
            }
            Record::Channel(c) => {
                self.channels.entry(c.id).or_insert(ChannelInfo {
                    id: c.id,
                    schema_id: c.schema_id,
                    topic: c.topic,
                    message_encoding: c.message_encoding,
                    metadata: c.metadata,
                });
            }
            Record::Message { header, data } => {
                let channel = self
                    .channels
                    .get(&header.channel_id)
                    .ok_or_else(|| unknown_channel(header.sequence, header.channel_id))?;
                on_message(MessageRef {
                    profile: self.profile.as_deref().unwrap_or(""),
                    channel,
                    schema: self.schemas.get(&channel.schema_id),
                    sequence: header.sequence,
                    log_time_ns: header.log_time,
                    publish_time_ns: header.publish_time,
                    data: &data,
                });
                self.messages += 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// The records inside one (checked, uncompressed) chunk. All or nothing: a chunk with a bad
    /// record inside gives none of its messages (its CRC passed, so the writer wrote it so).
    fn take_chunk(
        &mut self,
        data: &[u8],
        on_message: &mut impl FnMut(MessageRef<'_>),
    ) -> Result<(), String> {
        let mut records = Vec::new();
        let mut declared = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let (opcode, body, end) = framed(data, at)
                .ok_or_else(|| format!("a record inside it is cut at byte {at}"))?;
            let record = mcap::read::parse_record(opcode, body).map_err(|e| e.to_string())?;
            match &record {
                Record::Channel(c) => declared.push(c.id),
                Record::Message { header, .. }
                    if !self.channels.contains_key(&header.channel_id)
                        && !declared.contains(&header.channel_id) =>
                {
                    return Err(unknown_channel(header.sequence, header.channel_id));
                }
                _ => {}
            }
            records.push(record);
            at = end;
        }
        for record in records {
            self.take(record, on_message)?;
        }
        Ok(())
    }
}

fn unknown_channel(sequence: u32, channel_id: u16) -> String {
    format!("message {sequence} is on channel {channel_id}, which no channel record declared")
}

/// Reads every intact message of `src` in file order, handing each to `on_message`, and says
/// what it skipped and why it stopped (module doc). `Err` only when `src` cannot be read; a file
/// that is not MCAP gives [`ReadError::NotMcap`] in [`Scan::damage`].
pub fn scan<S: Source>(
    mut src: S,
    mut on_message: impl FnMut(MessageRef<'_>),
) -> std::io::Result<Scan> {
    let mut out = Scan::default();
    let size = src.size();
    let magic_len = mcap::MAGIC.len() as u64;
    let mut magic = [0u8; 8];
    if size < magic_len || {
        src.read_at(0, &mut magic)?;
        !is_mcap(&magic)
    } {
        out.damage = Some(ReadError::NotMcap);
        return Ok(out);
    }
    let mut body = Vec::new();
    let mut at = magic_len;
    loop {
        if at == size {
            out.damage = Some(ReadError::Truncated(mcap::McapError::UnexpectedEof));
            break;
        }
        let record = read_framed(&mut src, at, &mut body)?
            .map(|(opcode, end)| (opcode, mcap::read::parse_record(opcode, &body), end));
        let offset = usize::try_from(at).unwrap_or(usize::MAX);
        let why = match record {
            Some((_, Ok(Record::Footer(_)), _)) => break,
            Some((_, Ok(Record::Chunk { header, data }), end)) => {
                let log_time_ns = Some((header.message_start_time, header.message_end_time));
                let reason = if !header.compression.is_empty() {
                    Err(format!(
                        "compressed with `{}`, which depthpilot does not read (it writes \
                         uncompressed chunks)",
                        header.compression
                    ))
                } else if header.uncompressed_crc != 0
                    && crc32fast::hash(&data) != header.uncompressed_crc
                {
                    Err(format!(
                        "its CRC fails (expected {:08X}, got {:08X})",
                        header.uncompressed_crc,
                        crc32fast::hash(&data)
                    ))
                } else {
                    out.take_chunk(&data, &mut on_message)
                };
                if let Err(reason) = reason {
                    out.skipped.push(SkippedRecord {
                        offset,
                        what: "chunk".to_string(),
                        log_time_ns,
                        reason,
                    });
                }
                at = end;
                continue;
            }
            Some((opcode, Ok(record), end)) => {
                if let Err(reason) = out.take(record, &mut on_message) {
                    out.skipped.push(SkippedRecord {
                        offset,
                        what: format!("record (opcode {opcode:#04x})"),
                        log_time_ns: None,
                        reason,
                    });
                }
                at = end;
                continue;
            }
            None => None,
            Some((opcode, Err(e), _)) => Some(format!(
                "the record there (opcode {opcode:#04x}) does not parse: {e}"
            )),
        };
        // Garbage where a record should be, or a length running past the end: the file was cut
        // here (a killed recorder), or bytes were damaged. Read on from the next chunk that is
        // whole, if there is one.
        let cut = why.is_none();
        let why = why.unwrap_or_else(|| "a record's length runs past the end of the file".into());
        match next_intact_chunk(&mut src, at + 1)? {
            Some(next) => {
                out.skipped.push(SkippedRecord {
                    offset,
                    what: format!("{} bytes", next - at),
                    log_time_ns: None,
                    reason: format!("{why}; read on from the next whole chunk, at byte {next}"),
                });
                at = next;
            }
            None if cut && !ends_with_magic(&mut src)? => {
                out.damage = Some(ReadError::Truncated(mcap::McapError::UnexpectedEof));
                break;
            }
            None => {
                out.damage = Some(ReadError::Unframed { offset, why });
                break;
            }
        }
    }
    Ok(out)
}

fn ends_with_magic(src: &mut impl Source) -> std::io::Result<bool> {
    let mut tail = [0u8; 8];
    let size = src.size();
    if size < tail.len() as u64 {
        return Ok(false);
    }
    src.read_at(size - tail.len() as u64, &mut tail)?;
    Ok(tail == mcap::MAGIC)
}

/// Reads the record framed at `at` into `body`: `(opcode, end)`, or `None` if the file ends
/// inside it.
fn read_framed(
    src: &mut impl Source,
    at: u64,
    body: &mut Vec<u8>,
) -> std::io::Result<Option<(u8, u64)>> {
    let size = src.size();
    let mut head = [0u8; 9];
    if size.saturating_sub(at) < head.len() as u64 {
        return Ok(None);
    }
    src.read_at(at, &mut head)?;
    let [opcode, len @ ..] = head;
    let len = u64::from_le_bytes(len);
    let start = at + head.len() as u64;
    if len > size - start {
        return Ok(None);
    }
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    body.clear();
    body.resize(len, 0);
    src.read_at(start, body)?;
    Ok(Some((opcode, start + len as u64)))
}

/// Where the next whole chunk starts at or after `from`: a chunk record that parses and whose
/// CRC holds (which garbage does not fake).
fn next_intact_chunk(src: &mut impl Source, from: u64) -> std::io::Result<Option<u64>> {
    const BLOCK: usize = 64 * 1024;
    let size = src.size();
    let mut block = vec![0u8; BLOCK];
    let mut body = Vec::new();
    let mut start = from;
    while start < size {
        let n = usize::try_from(size - start).map_or(BLOCK, |left| left.min(BLOCK));
        src.read_at(start, &mut block[..n])?;
        for (i, &byte) in block[..n].iter().enumerate() {
            if byte != op::CHUNK {
                continue;
            }
            let at = start + i as u64;
            if read_framed(src, at, &mut body)?.is_some()
                && matches!(
                    mcap::read::parse_record(op::CHUNK, &body),
                    Ok(Record::Chunk { header, data })
                        if header.compression.is_empty()
                            && header.uncompressed_crc != 0
                            && crc32fast::hash(&data) == header.uncompressed_crc
                )
            {
                return Ok(Some(at));
            }
        }
        start += n as u64;
    }
    Ok(None)
}

/// An MCAP record's framing: opcode, body, end; `None` if the bytes end inside it.
fn framed(bytes: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let opcode = *bytes.get(at)?;
    let len = u64::from_le_bytes(bytes.get(at + 1..at + 9)?.try_into().ok()?);
    let start = at + 9;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some((opcode, bytes.get(start..end)?, end))
}

/// Where the chunk records of a file start, walking its framing from the magic to where the
/// framing ends (for tests that damage one chunk, and for people).
pub fn chunk_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut chunks = Vec::new();
    let mut at = mcap::MAGIC.len();
    while let Some((opcode, _, end)) = framed(bytes, at) {
        if opcode == op::CHUNK {
            chunks.push(at);
        }
        at = end;
    }
    chunks
}

/// Whether `bytes` start like an MCAP file.
pub fn is_mcap(bytes: &[u8]) -> bool {
    bytes.starts_with(mcap::MAGIC)
}

/// The first bytes of a file, for people: hex, and printable ASCII quoted.
pub fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".to_string();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    format!("{} (\"{text}\")", hex.join(" "))
}

/// One message read back by [`read_bytes`].
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedMessage {
    pub topic: String,
    pub log_time_ns: u64,
    pub publish_time_ns: u64,
    /// The message as recorded.
    pub data: Vec<u8>,
}

/// What [`read_bytes`] found in an MCAP file: the messages it could read, in file order; the
/// damaged records it skipped (their messages are missing, the ones after them are read); and
/// why it stopped early (`None`: the file is complete, summary and footer included).
#[derive(Debug, Default)]
pub struct Recording {
    pub messages: Vec<RecordedMessage>,
    pub skipped: Vec<SkippedRecord>,
    pub damage: Option<ReadError>,
}

impl Recording {
    /// The messages of one topic.
    pub fn topic<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a RecordedMessage> + 'a {
        self.messages.iter().filter(move |m| m.topic == topic)
    }

    /// One line on the skipped records, if any: how many, and each one.
    pub fn describe_skipped(&self) -> Option<String> {
        describe_skipped(&self.skipped)
    }
}

/// [`scan`] of `bytes`, every message kept with its topic.
pub fn read_bytes(bytes: &[u8]) -> Recording {
    let mut messages = Vec::new();
    let scanned = scan(bytes, |m| {
        messages.push(RecordedMessage {
            topic: m.channel.topic.clone(),
            log_time_ns: m.log_time_ns,
            publish_time_ns: m.publish_time_ns,
            data: m.data.to_vec(),
        });
    });
    match scanned {
        Ok(s) => Recording {
            messages,
            skipped: s.skipped,
            damage: s.damage,
        },
        // A slice is read within its length: unreachable, but said rather than panicked on.
        Err(e) => Recording {
            messages,
            skipped: Vec::new(),
            damage: Some(ReadError::Truncated(mcap::McapError::Io(e))),
        },
    }
}
