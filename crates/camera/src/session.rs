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
//! The MCAP layer is the flight recorder's too (`depthpilot_mcaplog`). Chunks are
//! uncompressed, held in memory and written whole; a chunk is closed and handed to the OS when
//! (a) the next message is [`SessionOptions::chunk_span`] (0.5 s) or more of log time after the
//! chunk's first message, (b) it holds more than [`SessionOptions::chunk_bytes`] (4 MiB; a depth
//! frame is 424 KiB, 848 KiB with IR) or (c), unless turned off, the oldest message in it has
//! waited `chunk_span` of wall time (a background thread checks every 50 ms, so a camera that
//! stops still gets its last frames out). A recorder killed with SIGKILL therefore loses at most
//! ~0.55 s. The header is written and flushed on its own when the file is created.
//!
//! [`read_session`] reads a cut or damaged file leniently: every intact chunk (a chunk's CRC is
//! checked before any of its messages is taken); a damaged chunk is skipped, and the frames
//! after it are read. It says what it skipped and where a cut file ends in
//! [`Session::damage`]. `depthpilot log repair` rewrites a killed session whole.

use crate::protocol::{self, BridgeMessage, FrameError, ReceivedFrame, encode_frame};
use depthpilot_mcaplog::{
    ChunkedWriter, FileSource, ReadError, SkippedRecord, Source, WriteError, WriterOptions,
    describe_start, scan,
};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

impl SessionHeader {
    /// The camera as it stood: a Kinect at the recorded pose (the rest default), what the
    /// vision replays and the export projects against.
    pub fn camera(&self) -> depthpilot_types::scene::KinectConfig {
        let v = |a: [f64; 3]| depthpilot_types::Vec3::new(a[0], a[1], a[2]);
        depthpilot_types::scene::KinectConfig {
            position_m: v(self.camera_position_m),
            look_at_m: v(self.camera_look_at_m),
            up_hint: v(self.camera_up_hint),
            ..Default::default()
        }
    }
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

impl From<WriteError> for SessionError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Create { path, source } => Self::Create { path, source },
            WriteError::Write { path, source } => Self::Write { path, source },
        }
    }
}

#[derive(Clone, Copy)]
struct Channels {
    header: u16,
    frame: u16,
    detection: u16,
}

/// Writes a camera session as MCAP. See the module doc for topics, times and durability.
/// Dropped without [`SessionWriter::finish`] (an error path), it still completes its file.
pub struct SessionWriter {
    path: PathBuf,
    writer: ChunkedWriter,
    channels: Channels,
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
        let json = serde_json::to_vec(header).map_err(|source| SessionError::Serialize {
            path: path.to_path_buf(),
            topic: TOPIC_SESSION_HEADER,
            source,
        })?;
        let mut writer = ChunkedWriter::create(
            path,
            WriterOptions {
                profile: SESSION_PROFILE.to_string(),
                chunk_span: options.chunk_span,
                chunk_bytes: options.chunk_bytes,
                wall_clock_flush: options.wall_clock_flush,
            },
        )?;
        let channels = add_channels(&mut writer)?;
        let stamp_ns = header.started_unix_ns;
        writer.write(channels.header, stamp_ns, stamp_ns, &json)?;
        // The header (and the channels) reach the file at once.
        writer.close_chunk()?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            channels,
            frames: 0,
            detections: 0,
            buf: Vec::new(),
        })
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
        pack_parts_into(&parts, &mut self.buf).map_err(|bytes| SessionError::FrameTooLarge {
            path: self.path.clone(),
            bytes,
        })?;
        let channel = self.channels.frame;
        self.writer
            .write(channel, log_time_ns, f.header.host_stamp_ns, &self.buf)?;
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
        self.writer
            .write(channel, log_time_ns, log_time_ns, &json)?;
        self.detections += 1;
        Ok(())
    }

    /// Writes the last chunk, the summary section and the footer.
    pub fn finish(self) -> Result<SessionStats, SessionError> {
        let stats = self.writer.finish()?;
        Ok(SessionStats {
            messages: stats.messages,
            frames: self.frames,
            detections: self.detections,
            chunks: stats.chunks,
        })
    }
}

fn add_channels(w: &mut ChunkedWriter) -> Result<Channels, WriteError> {
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
        header: w.add_channel(header_schema, TOPIC_SESSION_HEADER, "json")?,
        frame: w.add_channel(0, TOPIC_SESSION_FRAME, FRAME_ENCODING)?,
        detection: w.add_channel(detection_schema, TOPIC_SESSION_DETECTION, "json")?,
    })
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
    /// What was wrong with the file, for people: the damaged chunks skipped (their messages
    /// are lost, the ones after them were read) and why reading stopped before the end of a
    /// complete file. `None`: the file is complete and intact, summary and footer included.
    pub damage: Option<String>,
    /// The damaged records skipped (also said in `damage`).
    pub skipped: Vec<SkippedRecord>,
    /// `/kinect/frame` messages that were not a valid frame (skipped).
    pub undecodable_frames: u64,
    /// Why the first of them was not.
    pub first_undecodable_frame: Option<FrameRecordError>,
    /// `/session/header` and `/vision/detection` messages that were not their JSON (skipped).
    pub undecodable_json: u64,
}

/// Reads a camera session: every intact message (see [`Session::damage`]), read from the file
/// chunk by chunk; messages on other topics are skipped. `Err` only when the file cannot be read
/// or is not MCAP at all.
pub fn read_session(path: &Path) -> Result<Session, SessionError> {
    let src = FileSource::open(path).map_err(|source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    read_session_source(path, src)
}

/// [`read_session`] of `len` bytes from `src` (read into memory first); `path` names them in
/// errors.
pub fn read_session_from(path: &Path, src: impl Read, len: u64) -> Result<Session, SessionError> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
    src.take(len)
        .read_to_end(&mut bytes)
        .map_err(|source| SessionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    read_session_source(path, bytes.as_slice())
}

fn read_session_source(path: &Path, mut src: impl Source) -> Result<Session, SessionError> {
    let read_err = |source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut start = [0u8; 16];
    let got = usize::try_from(src.size()).map_or(start.len(), |n| n.min(start.len()));
    let start = &mut start[..got];
    src.read_at(0, start).map_err(read_err)?;
    let magic_len = mcap::MAGIC.len().min(got);
    if got == 0 || start[..magic_len] != mcap::MAGIC[..magic_len] {
        return Err(SessionError::NotMcap {
            path: path.to_path_buf(),
            starts_with: describe_start(start),
        });
    }
    let mut out = Session::default();
    let scanned = scan(src, |m| {
        let c = m.channel;
        take_message(
            &mut out,
            &c.topic,
            &c.message_encoding,
            m.log_time_ns,
            m.data,
        );
    })
    .map_err(read_err)?;
    let mut said: Vec<String> = scanned.describe_skipped().into_iter().collect();
    match scanned.damage {
        None => {}
        // Fewer bytes than the magic, but the magic's start: a file cut at its first bytes.
        Some(ReadError::NotMcap) => said.push(
            ReadError::Truncated(mcap::McapError::UnexpectedEof).to_string()
                + "; no message was read",
        ),
        Some(d) => said.push(format!(
            "{d}; read the {} messages before it",
            scanned.messages
        )),
    }
    out.damage = (!said.is_empty()).then(|| said.join("; "));
    out.skipped = scanned.skipped;
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
