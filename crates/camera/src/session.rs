//! Recorded camera sessions: the bridge's frames, and what the vision made of them, in an MCAP
//! file (<https://mcap.dev>) that standard MCAP readers open.
//!
//! | topic | message encoding | message | log time |
//! |---|---|---|---|
//! | `/session/header` | `json` | [`SessionHeader`]; once, first | `started_unix_ns` |
//! | `/kinect/frame` | `depthpilot.frame.v1` | one bridge frame ([`ReceivedFrame`]), packed below | the caller's |
//! | `/vision/detection` | `json` | [`DetectionRecord`] | the caller's |
//!
//! A `depthpilot.frame.v1` message is the protocol's multipart message ([`encode_frame`]) packed
//! as `[u32 LE part count]` then, for each part, `[u32 LE length][bytes]`; reading it back goes
//! through [`protocol::decode`], so a recorded frame is exactly what a
//! live one was (depth, IR, header with intrinsics, seq, stamps). The header and detections are
//! JSON with a JSON Schema (`jsonschema`) each; floats are written in the shortest form that
//! parses back to the same `f64`, and non-finite floats are refused when written.
//!
//! Log time is the caller's clock in ns: depthpilot passes the UNIX wall clock of the recording
//! host when the frame was received. Publish time is the bridge's `host_stamp_ns` for a frame
//! and the log time for everything else.
//!
//! ## Durability
//! The same design as the flight recorder (`depthpilot_runtime::recorder`). Chunks are
//! uncompressed, held in memory and written whole; a chunk is closed and handed to the OS when
//! (a) the next message is [`SessionOptions::chunk_span`] (0.5 s) or more of log time after the
//! chunk's first message, (b) it holds more than [`SessionOptions::chunk_bytes`] (4 MiB; a depth
//! frame is 424 KiB, 848 KiB with IR) or (c), unless turned off, the oldest message in it has
//! waited `chunk_span` of wall time (a background thread checks every 50 ms, so a camera that
//! stops still gets its last frames out). A recorder killed with SIGKILL therefore loses at most
//! ~0.55 s. The header is written and flushed on its own when the file is created.
//!
//! [`read_session`] reads a cut or damaged file up to the damage: every complete chunk before
//! it (a chunk's CRC is checked before any of its messages is taken), and then says what it
//! found in [`Session::damage`].

use crate::protocol::{self, BridgeMessage, FrameError, ReceivedFrame, encode_frame};
use mcap::records::MessageHeader;
use mcap::write::{NoSeek, WriteOptions, Writer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The [`SessionHeader`], once, first.
pub const TOPIC_SESSION_HEADER: &str = "/session/header";
/// One bridge frame per message, [`FRAME_ENCODING`].
pub const TOPIC_SESSION_FRAME: &str = "/kinect/frame";
/// One [`DetectionRecord`] per message.
pub const TOPIC_SESSION_DETECTION: &str = "/vision/detection";
/// The message encoding of [`TOPIC_SESSION_FRAME`]: the protocol's parts, packed.
pub const FRAME_ENCODING: &str = "depthpilot.frame.v1";
/// The MCAP header's profile (the flight recorder's too).
pub const SESSION_PROFILE: &str = "depthpilot";

/// What a session was recorded with: the rig, the scene and where the camera stood.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionHeader {
    pub rig: String,
    pub scene: String,
    /// The camera's position in the world frame (z up), metres.
    pub camera_position_m: [f64; 3],
    /// The point the camera looks at, world frame, metres.
    pub camera_look_at_m: [f64; 3],
    /// Roughly "up" for the image, world frame.
    pub camera_up_hint: [f64; 3],
    /// The bridge the frames came from; `None` for synthetic frames.
    pub bridge_endpoint: Option<String>,
    /// When the recording started, ns since the UNIX epoch.
    pub started_unix_ns: u64,
}

/// What the vision found in one frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionRecord {
    /// The `seq` of the frame it was found in.
    pub frame_seq: u64,
    pub found: bool,
    /// Position in the world frame, metres.
    pub pos_m: Option<[f64; 3]>,
    pub yaw_rad: Option<f64>,
    /// Pixels of the detection.
    pub pixels: Option<usize>,
    /// Why nothing was found (for people).
    pub miss: Option<String>,
}

/// A session could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create camera session {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write camera session {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
    #[error(
        "camera session {}: topic `{topic}`: {field} is not finite (JSON cannot hold it)",
        path.display()
    )]
    NotFinite {
        path: PathBuf,
        topic: &'static str,
        field: &'static str,
    },
    #[error("camera session {}: topic `{topic}`: cannot serialise the message", path.display())]
    Serialize {
        path: PathBuf,
        topic: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "camera session {}: a frame part of {bytes} bytes does not fit the packed format",
        path.display()
    )]
    FrameTooLarge { path: PathBuf, bytes: usize },
    #[error("cannot read camera session {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not an MCAP camera session: it starts with {starts_with} (an MCAP file starts \
         with 89 4d 43 41 50 30 0d 0a, \"\\x89MCAP0\\r\\n\")",
        path.display()
    )]
    NotMcap { path: PathBuf, starts_with: String },
}

/// How the writer chunks its file.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Close a chunk once it spans this much log time, or (with `wall_clock_flush`) once its
    /// oldest message has waited this long.
    pub chunk_span: Duration,
    /// Close a chunk once it holds more than this many bytes.
    pub chunk_bytes: u64,
    /// Run the background thread of rule (c) (module doc). Off: the file depends only on what
    /// was written, not on when.
    pub wall_clock_flush: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            chunk_span: Duration::from_millis(500),
            chunk_bytes: 4 * 1024 * 1024,
            wall_clock_flush: true,
        }
    }
}

/// What [`SessionWriter::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionStats {
    /// All messages, the header included.
    pub messages: u64,
    pub frames: u64,
    pub detections: u64,
    pub chunks: u32,
}

type McapWriter = Writer<NoSeek<BufWriter<File>>>;

/// What the caller's thread and the flusher thread share.
struct Shared {
    writer: Option<McapWriter>,
    /// Log time of the open chunk's first message, and when (wall) it was written.
    open_chunk: Option<(u64, Instant)>,
    /// The flusher's error, returned by the next call on the writer.
    deferred: Option<mcap::McapError>,
}

impl Shared {
    fn close_chunk(&mut self) -> Result<(), mcap::McapError> {
        if self.open_chunk.take().is_some()
            && let Some(w) = self.writer.as_mut()
        {
            w.flush()?;
        }
        Ok(())
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

#[derive(Clone, Copy)]
struct Channels {
    header: u16,
    frame: u16,
    detection: u16,
}

/// Writes a camera session as MCAP. See the module doc for topics, times and durability.
pub struct SessionWriter {
    path: PathBuf,
    options: SessionOptions,
    shared: Arc<Mutex<Shared>>,
    flusher: Option<Flusher>,
    channels: Channels,
    sequence: u32,
    messages: u64,
    frames: u64,
    detections: u64,
    buf: Vec<u8>,
}

impl SessionWriter {
    /// Creates the file (replacing it), with the default options, and writes the header.
    pub fn create(path: &Path, header: &SessionHeader) -> Result<Self, SessionError> {
        Self::create_with(path, header, SessionOptions::default())
    }

    /// Creates the file (replacing it), writes the header and flushes it to the file.
    pub fn create_with(
        path: &Path,
        header: &SessionHeader,
        options: SessionOptions,
    ) -> Result<Self, SessionError> {
        let finite = header
            .camera_position_m
            .iter()
            .chain(&header.camera_look_at_m)
            .chain(&header.camera_up_hint)
            .all(|v| v.is_finite());
        if !finite {
            return Err(SessionError::NotFinite {
                path: path.to_path_buf(),
                topic: TOPIC_SESSION_HEADER,
                field: "a camera vector",
            });
        }
        let create_err = |source| SessionError::Create {
            path: path.to_path_buf(),
            source,
        };
        let write_err = |source| SessionError::Write {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(create_err)?;
        let mut writer = WriteOptions::new()
            .profile(SESSION_PROFILE)
            .compression(None)
            .chunk_size(Some(options.chunk_bytes))
            .disable_seeking(true)
            .create(NoSeek::new(BufWriter::with_capacity(64 * 1024, file)))
            .map_err(write_err)?;
        let channels = add_channels(&mut writer).map_err(write_err)?;
        let shared = Arc::new(Mutex::new(Shared {
            writer: Some(writer),
            open_chunk: None,
            deferred: None,
        }));
        let flusher = if options.wall_clock_flush {
            Some(spawn_flusher(Arc::clone(&shared), options.chunk_span).map_err(create_err)?)
        } else {
            None
        };
        let mut session = Self {
            path: path.to_path_buf(),
            options,
            shared,
            flusher,
            channels,
            sequence: 0,
            messages: 0,
            frames: 0,
            detections: 0,
            buf: Vec::new(),
        };
        let json = serde_json::to_vec(header).map_err(|source| SessionError::Serialize {
            path: path.to_path_buf(),
            topic: TOPIC_SESSION_HEADER,
            source,
        })?;
        let stamp_ns = header.started_unix_ns;
        session.write_message(channels.header, stamp_ns, stamp_ns, &json)?;
        // The header (and the channels) reach the file at once.
        let closed = lock(&session.shared).close_chunk();
        closed.map_err(|e| session.write_error(e))?;
        Ok(session)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one bridge frame at log time `log_time_ns`: its header, depth and IR, as
    /// [`encode_frame`] writes them (`frame.stamp_ns`, `frame.seq` and `intrinsics` are read back
    /// from the header).
    pub fn write_frame(&mut self, log_time_ns: u64, f: &ReceivedFrame) -> Result<(), SessionError> {
        let parts = encode_frame(&f.header, &f.frame.depth_mm, f.frame.ir.as_deref());
        let mut buf = std::mem::take(&mut self.buf);
        let packed = pack_parts_into(&parts, &mut buf);
        let result = match packed {
            Err(bytes) => Err(SessionError::FrameTooLarge {
                path: self.path.clone(),
                bytes,
            }),
            Ok(()) => {
                let channel = self.channels.frame;
                self.write_message(channel, log_time_ns, f.header.host_stamp_ns, &buf)
            }
        };
        self.buf = buf;
        result?;
        self.frames += 1;
        Ok(())
    }

    /// Records what the vision found in a frame at log time `log_time_ns`.
    pub fn write_detection(
        &mut self,
        log_time_ns: u64,
        d: &DetectionRecord,
    ) -> Result<(), SessionError> {
        let not_finite = |field| SessionError::NotFinite {
            path: self.path.clone(),
            topic: TOPIC_SESSION_DETECTION,
            field,
        };
        if d.pos_m.is_some_and(|p| !p.iter().all(|v| v.is_finite())) {
            return Err(not_finite("pos_m"));
        }
        if d.yaw_rad.is_some_and(|v| !v.is_finite()) {
            return Err(not_finite("yaw_rad"));
        }
        let json = serde_json::to_vec(d).map_err(|source| SessionError::Serialize {
            path: self.path.clone(),
            topic: TOPIC_SESSION_DETECTION,
            source,
        })?;
        let channel = self.channels.detection;
        self.write_message(channel, log_time_ns, log_time_ns, &json)?;
        self.detections += 1;
        Ok(())
    }

    fn write_message(
        &mut self,
        channel_id: u16,
        log_time_ns: u64,
        publish_time_ns: u64,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let header = MessageHeader {
            channel_id,
            sequence: self.sequence,
            log_time: log_time_ns,
            publish_time: publish_time_ns,
        };
        let span_ns = u64::try_from(self.options.chunk_span.as_nanos()).unwrap_or(u64::MAX);
        let mut shared = lock(&self.shared);
        if let Some(e) = shared.deferred.take() {
            drop(shared);
            return Err(self.write_error(e));
        }
        let result = (|| {
            // A chunk spans less than `chunk_span` of log time: close the open one first if
            // this message lies beyond it.
            if let Some((first_ns, _)) = shared.open_chunk
                && log_time_ns.saturating_sub(first_ns) >= span_ns
            {
                shared.close_chunk()?;
            }
            let Some(w) = shared.writer.as_mut() else {
                return Err(mcap::McapError::AttemptedWriteAfterFailure);
            };
            w.write_to_known_channel(&header, data)?;
            shared
                .open_chunk
                .get_or_insert((log_time_ns, Instant::now()));
            Ok(())
        })();
        drop(shared);
        result.map_err(|e| self.write_error(e))?;
        self.sequence = self.sequence.wrapping_add(1);
        self.messages += 1;
        Ok(())
    }

    fn write_error(&self, source: mcap::McapError) -> SessionError {
        SessionError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes the last chunk, the summary section and the footer.
    pub fn finish(mut self) -> Result<SessionStats, SessionError> {
        self.close()
    }

    fn close(&mut self) -> Result<SessionStats, SessionError> {
        if let Some(f) = self.flusher.take() {
            drop(f.stop);
            let _ = f.thread.join();
        }
        let mut shared = lock(&self.shared);
        let deferred = shared.deferred.take();
        let writer = shared.writer.take();
        drop(shared);
        if let Some(e) = deferred {
            return Err(self.write_error(e));
        }
        let Some(mut writer) = writer else {
            return Err(self.write_error(mcap::McapError::AttemptedWriteAfterFailure));
        };
        let summary = writer.finish().map_err(|e| self.write_error(e))?;
        writer
            .into_inner()
            .into_inner()
            .into_inner()
            .map_err(|e| self.write_error(mcap::McapError::Io(e.into_error())))?;
        Ok(SessionStats {
            messages: self.messages,
            frames: self.frames,
            detections: self.detections,
            chunks: summary.stats.map_or(0, |s| s.chunk_count),
        })
    }
}

impl Drop for SessionWriter {
    /// A writer dropped without `finish` (an error path) still completes its file.
    fn drop(&mut self) {
        if self.flusher.is_some() || lock(&self.shared).writer.is_some() {
            let _ = self.close();
        }
    }
}

fn add_channels(w: &mut McapWriter) -> Result<Channels, mcap::McapError> {
    let none = BTreeMap::new();
    let header_schema = w.add_schema(
        "depthpilot.SessionHeader",
        "jsonschema",
        HEADER_SCHEMA.as_bytes(),
    )?;
    let detection_schema = w.add_schema(
        "depthpilot.DetectionRecord",
        "jsonschema",
        DETECTION_SCHEMA.as_bytes(),
    )?;
    Ok(Channels {
        header: w.add_channel(header_schema, TOPIC_SESSION_HEADER, "json", &none)?,
        frame: w.add_channel(0, TOPIC_SESSION_FRAME, FRAME_ENCODING, &none)?,
        detection: w.add_channel(detection_schema, TOPIC_SESSION_DETECTION, "json", &none)?,
    })
}

fn spawn_flusher(shared: Arc<Mutex<Shared>>, span: Duration) -> std::io::Result<Flusher> {
    let (stop, stopped) = mpsc::channel::<()>();
    let tick = (span / 10).max(Duration::from_millis(1));
    let thread = std::thread::Builder::new()
        .name("session-flush".to_string())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                let mut s = lock(&shared);
                if s.deferred.is_none()
                    && let Some((_, since)) = s.open_chunk
                    && since.elapsed() >= span
                    && let Err(e) = s.close_chunk()
                {
                    s.deferred = Some(e);
                }
            }
        })?;
    Ok(Flusher { stop, thread })
}

/// `parts` as a [`FRAME_ENCODING`] message: `[u32 LE count]` then `[u32 LE length][bytes]` per
/// part. `None` if the count or a length does not fit a u32.
pub fn pack_parts(parts: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    pack_parts_into(parts, &mut out).ok().map(|()| out)
}

/// [`pack_parts`] into `out` (cleared first); `Err(the size that does not fit)`.
fn pack_parts_into(parts: &[Vec<u8>], out: &mut Vec<u8>) -> Result<(), usize> {
    out.clear();
    let count = u32::try_from(parts.len()).map_err(|_| parts.len())?;
    out.reserve(4 + parts.iter().map(|p| 4 + p.len()).sum::<usize>());
    out.extend_from_slice(&count.to_le_bytes());
    for part in parts {
        let len = u32::try_from(part.len()).map_err(|_| part.len())?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    Ok(())
}

/// Why a [`FRAME_ENCODING`] message could not be unpacked into parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("the message ends at byte {len}, inside {what}")]
    Short { what: &'static str, len: usize },
    #[error("{extra} bytes follow the last of the {count} parts")]
    Trailing { count: u32, extra: usize },
}

/// The parts of a [`FRAME_ENCODING`] message.
pub fn unpack_parts(bytes: &[u8]) -> Result<Vec<Vec<u8>>, UnpackError> {
    let short = |what| UnpackError::Short {
        what,
        len: bytes.len(),
    };
    let (count, mut rest) = split_u32(bytes).ok_or(short("the part count"))?;
    // No allocation from the count: a part takes at least its 4-byte length.
    let mut parts = Vec::with_capacity((count as usize).min(rest.len() / 4));
    for _ in 0..count {
        let (len, tail) = split_u32(rest).ok_or(short("a part length"))?;
        let len = len as usize;
        if tail.len() < len {
            return Err(short("a part"));
        }
        let (part, tail) = tail.split_at(len);
        parts.push(part.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(UnpackError::Trailing {
            count,
            extra: rest.len(),
        });
    }
    Ok(parts)
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, tail) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), tail))
}

/// Why a recorded frame message was not a frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameRecordError {
    #[error("message encoding `{found}`, expected `{FRAME_ENCODING}`")]
    Encoding { found: String },
    #[error("the packed parts are malformed: {0}")]
    Unpack(#[from] UnpackError),
    #[error("the parts are not a valid bridge frame: {0}")]
    Frame(#[from] FrameError),
    #[error("the parts are a bridge status message, not a frame")]
    NotAFrame,
}

/// Decodes one [`FRAME_ENCODING`] message with the bridge protocol's decoder.
pub fn decode_frame_message(bytes: &[u8]) -> Result<ReceivedFrame, FrameRecordError> {
    match protocol::decode(&unpack_parts(bytes)?)? {
        BridgeMessage::Frame(f) => Ok(*f),
        BridgeMessage::Status(_) => Err(FrameRecordError::NotAFrame),
    }
}

/// What [`read_session`] found.
#[derive(Debug, Default)]
pub struct Session {
    /// The first `/session/header` message that parsed.
    pub header: Option<SessionHeader>,
    /// Frames in file order, with their log times.
    pub frames: Vec<(u64, ReceivedFrame)>,
    /// Detections in file order, with their log times.
    pub detections: Vec<(u64, DetectionRecord)>,
    /// Why reading stopped before the end of a complete file (`None`: the file is complete,
    /// summary and footer included).
    pub damage: Option<String>,
    /// `/kinect/frame` messages that were not a valid frame (skipped).
    pub undecodable_frames: u64,
    /// Why the first of them was not.
    pub first_undecodable_frame: Option<FrameRecordError>,
    /// `/session/header` and `/vision/detection` messages that were not their JSON (skipped).
    pub undecodable_json: u64,
}

/// Reads a camera session: every message before any damage (see [`Session::damage`]);
/// messages on other topics are skipped. `Err` only when the file cannot be read or is not
/// MCAP at all.
pub fn read_session(path: &Path) -> Result<Session, SessionError> {
    let read_err = |source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    read_session_from(path, std::io::BufReader::new(file), len)
}

/// [`read_session`] of `len` bytes from `src`; `path` names them in errors.
pub fn read_session_from(
    path: &Path,
    mut src: impl Read,
    len: u64,
) -> Result<Session, SessionError> {
    use mcap::records::Record;
    use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions};

    let read_err = |source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut start = [0u8; 16];
    let mut got = 0;
    while got < start.len() {
        let n = read_some(&mut src, &mut start[got..]).map_err(read_err)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let start = &start[..got];
    let magic_len = mcap::MAGIC.len().min(got);
    if got == 0 || start[..magic_len] != mcap::MAGIC[..magic_len] {
        return Err(SessionError::NotMcap {
            path: path.to_path_buf(),
            starts_with: describe_start(start),
        });
    }
    let mut src = start.chain(src);
    let mut reader = LinearReader::new_with_options(
        LinearReaderOptions::default()
            .with_prevalidate_chunk_crcs(true)
            .with_record_length_limit(usize::try_from(len).unwrap_or(usize::MAX)),
    );
    let mut out = Session::default();
    let mut channels: HashMap<u16, (String, String)> = HashMap::new();
    let mut messages = 0u64;
    while let Some(event) = reader.next_event() {
        let record = match event {
            Ok(LinearReadEvent::ReadRequest(need)) => {
                let n = read_some(&mut src, reader.insert(need)).map_err(read_err)?;
                reader.notify_read(n);
                continue;
            }
            Ok(LinearReadEvent::Record { data, opcode }) => mcap::read::parse_record(opcode, data),
            Err(e) => Err(e),
        };
        match record {
            Ok(Record::Channel(c)) => {
                channels
                    .entry(c.id)
                    .or_insert((c.topic, c.message_encoding));
            }
            Ok(Record::Message { header, data }) => {
                let Some((topic, encoding)) = channels.get(&header.channel_id) else {
                    out.damage = Some(format!(
                        "corrupt MCAP data after {messages} readable messages: message {} \
                         refers to channel {}, which no channel record defines",
                        header.sequence, header.channel_id
                    ));
                    break;
                };
                messages += 1;
                take_message(&mut out, topic, encoding, header.log_time, &data);
            }
            Ok(_) => {}
            Err(e) => {
                out.damage = Some(describe_damage(&e, len, messages));
                break;
            }
        }
    }
    Ok(out)
}

fn take_message(out: &mut Session, topic: &str, encoding: &str, log_time_ns: u64, data: &[u8]) {
    match topic {
        TOPIC_SESSION_FRAME => {
            let frame = if encoding == FRAME_ENCODING {
                decode_frame_message(data)
            } else {
                Err(FrameRecordError::Encoding {
                    found: encoding.chars().take(100).collect(),
                })
            };
            match frame {
                Ok(f) => out.frames.push((log_time_ns, f)),
                Err(e) => {
                    out.undecodable_frames += 1;
                    out.first_undecodable_frame.get_or_insert(e);
                }
            }
        }
        TOPIC_SESSION_DETECTION => match serde_json::from_slice(data) {
            Ok(d) => out.detections.push((log_time_ns, d)),
            Err(_) => out.undecodable_json += 1,
        },
        TOPIC_SESSION_HEADER => match serde_json::from_slice(data) {
            Ok(h) => {
                out.header.get_or_insert(h);
            }
            Err(_) => out.undecodable_json += 1,
        },
        _ => {}
    }
}

fn describe_damage(e: &mcap::McapError, len: u64, messages: u64) -> String {
    match e {
        mcap::McapError::UnexpectedEof | mcap::McapError::BadFooter => format!(
            "the file ({len} bytes) ends early, without its summary and footer (the recording \
             was cut short, e.g. a killed recorder): {e}; read the {messages} messages of the \
             complete chunks before the cut"
        ),
        // The limit is the file's length: a record (or chunk) longer than the whole file.
        mcap::McapError::RecordTooLarge {
            opcode,
            len: record_len,
        } => format!(
            "the file ({len} bytes) ends early, inside a record of {record_len} bytes (opcode \
             {opcode:#04x}): the recording was cut short (e.g. a killed recorder) or the \
             record's length is corrupt; read the {messages} messages before it"
        ),
        mcap::McapError::ChunkTooLarge(chunk_len) => format!(
            "the file ({len} bytes) ends early, inside a chunk of {chunk_len} bytes: the \
             recording was cut short (e.g. a killed recorder) or the chunk's length is corrupt; \
             read the {messages} messages before it"
        ),
        mcap::McapError::BytesAfterEndMagic => format!(
            "the file ({len} bytes) has bytes after the end of its MCAP data; read all \
             {messages} messages"
        ),
        e => format!(
            "corrupt MCAP data after {messages} readable messages (a damaged chunk is skipped \
             whole, and reading stops there): {e}"
        ),
    }
}

/// The first bytes of a file, for people: printable ASCII quoted, and hex.
fn describe_start(bytes: &[u8]) -> String {
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

/// One `read`, retried when interrupted.
fn read_some(src: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

const HEADER_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "depthpilot.SessionHeader",
  "description": "What a camera session was recorded with. World frame (z up), metres.",
  "type": "object",
  "$defs": {
    "vec3": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
  },
  "properties": {
    "rig": {"type": "string"},
    "scene": {"type": "string"},
    "camera_position_m": {"$ref": "#/$defs/vec3"},
    "camera_look_at_m": {"$ref": "#/$defs/vec3"},
    "camera_up_hint": {"$ref": "#/$defs/vec3"},
    "bridge_endpoint": {"type": ["string", "null"]},
    "started_unix_ns": {"type": "integer", "minimum": 0}
  },
  "required": ["rig", "scene", "camera_position_m", "camera_look_at_m", "camera_up_hint",
    "bridge_endpoint", "started_unix_ns"]
}"##;

const DETECTION_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "depthpilot.DetectionRecord",
  "description": "What the vision found in one frame. World frame (z up), metres, radians.",
  "type": "object",
  "properties": {
    "frame_seq": {"type": "integer", "minimum": 0},
    "found": {"type": "boolean"},
    "pos_m": {"anyOf": [{"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}, {"type": "null"}]},
    "yaw_rad": {"type": ["number", "null"]},
    "pixels": {"type": ["integer", "null"], "minimum": 0},
    "miss": {"type": ["string", "null"], "description": "why nothing was found"}
  },
  "required": ["frame_seq", "found", "pos_m", "yaw_rad", "pixels", "miss"]
}"##;

#[cfg(test)]
mod tests;
