//! `repair`: a killed or damaged recording, re-read leniently and rewritten whole.

use crate::reader::{FileSource, ReadError, Scan, SkippedRecord, describe_start, scan};
use mcap::records::MessageHeader;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Why [`repair`] wrote nothing. Every variant names its file.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not an MCAP file: it starts with {starts_with} (an MCAP file starts with \
         89 4d 43 41 50 30 0d 0a, \"\\x89MCAP0\\r\\n\")",
        path.display()
    )]
    NotMcap { path: PathBuf, starts_with: String },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
}

/// What [`repair`] read and wrote.
#[derive(Debug)]
pub struct RepairReport {
    /// Messages written (every intact message of the input).
    pub messages: u64,
    /// Chunks written.
    pub chunks: u32,
    /// Damaged records of the input that were skipped (their messages are lost).
    pub skipped: Vec<SkippedRecord>,
    /// Why the input ended early (`None`: it had its footer).
    pub damage: Option<ReadError>,
    /// The topics of the channels read, sorted (what the recording is).
    pub topics: Vec<String>,
}

impl RepairReport {
    /// Whether the input was whole: nothing skipped, summary and footer present.
    pub fn input_was_whole(&self) -> bool {
        self.skipped.is_empty() && self.damage.is_none()
    }
}

/// Reads `input` leniently (every intact message; see [`scan`]) and writes them, in file order
/// with their channels, schemas, sequence numbers and times, to `output` as a complete MCAP file
/// with summary, statistics and chunk and message indexes (uncompressed chunks, the input's
/// profile). `output` may be `input`: the file is written beside it and renamed over it.
pub fn repair(input: &Path, output: &Path) -> Result<RepairReport, RepairError> {
    let read_err = |source| RepairError::Read {
        path: input.to_path_buf(),
        source,
    };
    let src = FileSource::open(input).map_err(read_err)?;
    let partial = partial_path(output);
    let write_err = |source| RepairError::Write {
        path: output.to_path_buf(),
        source,
    };
    let file = File::create(&partial).map_err(|e| write_err(mcap::McapError::Io(e)))?;
    let mut rewrite = Rewrite {
        writer: None,
        file: Some(BufWriter::new(file)),
        schemas: HashMap::new(),
        channels: HashMap::new(),
        error: None,
    };
    let scanned = scan(src, |m| rewrite.message(m));
    let result = finish(rewrite, scanned, input);
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(match e {
                Failed::Read(source) => read_err(source),
                Failed::NotMcap(start) => RepairError::NotMcap {
                    path: input.to_path_buf(),
                    starts_with: start,
                },
                Failed::Write(source) => write_err(source),
            });
        }
    };
    std::fs::rename(&partial, output).map_err(|e| write_err(mcap::McapError::Io(e)))?;
    Ok(report)
}

enum Failed {
    Read(std::io::Error),
    NotMcap(String),
    Write(mcap::McapError),
}

type Out = mcap::Writer<BufWriter<File>>;

/// The output while the input is read: the writer is created with the first message, once the
/// input's header (its profile) has been read.
struct Rewrite {
    writer: Option<Out>,
    file: Option<BufWriter<File>>,
    /// Input schema id → output schema id.
    schemas: HashMap<u16, u16>,
    /// Input channel id → output channel id.
    channels: HashMap<u16, u16>,
    error: Option<mcap::McapError>,
}

impl Rewrite {
    fn message(&mut self, m: crate::MessageRef<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_message(m) {
            self.error = Some(e);
        }
    }

    fn writer(&mut self, profile: &str) -> Result<&mut Out, mcap::McapError> {
        if self.writer.is_none() {
            let file = self
                .file
                .take()
                .ok_or(mcap::McapError::AttemptedWriteAfterFailure)?;
            let w = mcap::WriteOptions::new()
                .profile(profile)
                .compression(None)
                .create(file)?;
            self.writer = Some(w);
        }
        self.writer
            .as_mut()
            .ok_or(mcap::McapError::AttemptedWriteAfterFailure)
    }

    fn try_message(&mut self, m: crate::MessageRef<'_>) -> Result<(), mcap::McapError> {
        let channel_id = match self.channels.get(&m.channel.id) {
            Some(&id) => id,
            None => {
                let schema_id = match m.schema {
                    None => 0,
                    Some(s) => match self.schemas.get(&s.id) {
                        Some(&id) => id,
                        None => {
                            let w = self.writer(m.profile)?;
                            let id = w.add_schema(&s.name, &s.encoding, &s.data)?;
                            self.schemas.insert(s.id, id);
                            id
                        }
                    },
                };
                let c = m.channel;
                let w = self.writer(m.profile)?;
                let id = w.add_channel(schema_id, &c.topic, &c.message_encoding, &c.metadata)?;
                self.channels.insert(c.id, id);
                id
            }
        };
        let header = MessageHeader {
            channel_id,
            sequence: m.sequence,
            log_time: m.log_time_ns,
            publish_time: m.publish_time_ns,
        };
        self.writer(m.profile)?
            .write_to_known_channel(&header, m.data)
    }
}

fn finish(
    mut rewrite: Rewrite,
    scanned: std::io::Result<Scan>,
    input: &Path,
) -> Result<RepairReport, Failed> {
    let scanned = scanned.map_err(Failed::Read)?;
    if matches!(scanned.damage, Some(ReadError::NotMcap)) {
        let mut start = [0u8; 16];
        let n = std::fs::File::open(input)
            .and_then(|mut f| read_up_to(&mut f, &mut start))
            .map_err(Failed::Read)?;
        return Err(Failed::NotMcap(describe_start(&start[..n])));
    }
    if let Some(e) = rewrite.error.take() {
        return Err(Failed::Write(e));
    }
    let profile = scanned.profile.clone().unwrap_or_default();
    // No message at all: the output still gets the input's schemas and channels.
    if rewrite.writer.is_none() {
        let w = rewrite.writer(&profile).map_err(Failed::Write)?;
        let mut schema_ids = BTreeMap::new();
        for s in scanned.schemas.values() {
            let id = w
                .add_schema(&s.name, &s.encoding, &s.data)
                .map_err(Failed::Write)?;
            schema_ids.insert(s.id, id);
        }
        for c in scanned.channels.values() {
            let schema_id = schema_ids.get(&c.schema_id).copied().unwrap_or(0);
            w.add_channel(schema_id, &c.topic, &c.message_encoding, &c.metadata)
                .map_err(Failed::Write)?;
        }
    }
    let Some(mut w) = rewrite.writer.take() else {
        return Err(Failed::Write(mcap::McapError::AttemptedWriteAfterFailure));
    };
    let summary = w.finish().map_err(Failed::Write)?;
    let file = w.into_inner();
    file.into_inner()
        .map_err(|e| Failed::Write(mcap::McapError::Io(e.into_error())))?
        .sync_all()
        .map_err(|e| Failed::Write(mcap::McapError::Io(e)))?;
    let mut topics: Vec<String> = scanned.channels.values().map(|c| c.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    Ok(RepairReport {
        topics,
        messages: scanned.messages,
        chunks: summary.stats.map_or(0, |s| s.chunk_count),
        skipped: scanned.skipped,
        damage: scanned.damage,
    })
}

fn read_up_to(f: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `output` with `.partial` appended: where the file is written before it is renamed.
fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}
