//! The flight recorder: topics into an MCAP file (<https://mcap.dev>) that standard MCAP readers
//! open (tested with Python's `mcap`), and the reader `depthpilot plot` uses.
//!
//! Every message is JSON (`message_encoding: "json"`) with a JSON Schema per channel
//! (`encoding: "jsonschema"`) for the built-in topics:
//!
//! | topic | message | log time |
//! |---|---|---|
//! | `/flight/header` | [`FlightHeader`]: scene, seed, rates, clock, link; once, first | 0 |
//! | `/flight/state` | one `depthpilot_sim::LogRow` per log period | the row's `t_s` |
//! | `/flight/summary` | the flight's `depthpilot_sim::Summary`; once, last | the flight's end |
//!
//! Other topics go through [`Recorder::record`] (schema-less unless [`Recorder::add_topic`] gave
//! one). Log time is the flight's clock in ns since its start: virtual time for an inline flight,
//! the real-time clock for a flight against a remote simulator. Publish time is the UNIX wall
//! clock (ns) when the message was recorded for a real-time flight, and equal to the log time
//! for a virtual-time flight, so that recordings of the same virtual flight are byte-identical.
//!
//! ## Durability
//! Chunks are uncompressed, buffered in memory and written whole. A chunk is closed, written and
//! flushed to the OS when (a) the next message is [`RecorderOptions::flush_after`] (0.25 s) or
//! more of flight time after the chunk's first message, (b) it exceeds
//! [`RecorderOptions::chunk_bytes`] (256 KiB) or (c), for a real-time flight, the oldest message
//! in it has waited 0.25 s of wall time (a background thread checks every 50 ms, so a stalled
//! flight loop still gets its data out). A process killed with SIGKILL therefore loses at most
//! the last ~0.3 s of wall time (the kernel keeps what was written; a power cut needs an fsync,
//! which the recorder does not do). What a reader then sees: every complete chunk, and then the
//! end of the file without a data-end record, summary or footer (or, if the kill hit the write
//! of a chunk, a last record cut short). [`read_recording`] returns the messages before the cut
//! and says why it stopped; Python's `mcap` `NonSeekingReader` (with
//! `iter_messages(log_time_order=False)`) yields the same messages and then raises at the end;
//! readers that need the summary (indexed, seeking) refuse the file.

use depthpilot_sim::{LogRow, LogSink, Summary};
use depthpilot_types::scene::Rates;
use mcap::records::MessageHeader;
use mcap::write::{NoSeek, WriteOptions, Writer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The flight's state, one `LogRow` per log period.
pub const TOPIC_STATE: &str = "/flight/state";
/// The [`FlightHeader`], once at the start.
pub const TOPIC_HEADER: &str = "/flight/header";
/// The flight's `Summary`, once at the end.
pub const TOPIC_SUMMARY: &str = "/flight/summary";
/// `FlightHeader::format` of every depthpilot flight log, JSON lines or MCAP.
pub const LOG_FORMAT: &str = "depthpilot-flight-log";
/// The MCAP header's profile.
pub const MCAP_PROFILE: &str = "depthpilot";
/// The first bytes of every MCAP file.
pub const MCAP_MAGIC: &[u8] = mcap::MAGIC;

/// Which clock the flight ran on (and so what log time means).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlightClock {
    /// Virtual (lockstep) time: as fast as the CPU allows, deterministic.
    Virtual,
    /// The wall clock: a real-time flight.
    RealTime,
}

/// The `/flight/header` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlightHeader {
    /// Always [`LOG_FORMAT`].
    pub format: String,
    /// Version of the topics' layout: 1.
    pub version: u32,
    pub scene: String,
    pub seed: u64,
    pub rates: Rates,
    pub clock: FlightClock,
    /// `in_process` or the URI of the link to the simulated Crazyflie.
    pub link: String,
}

impl FlightHeader {
    pub fn new(scene: &str, seed: u64, rates: Rates, clock: FlightClock, link: &str) -> Self {
        Self {
            format: LOG_FORMAT.to_string(),
            version: 1,
            scene: scene.to_string(),
            seed,
            rates,
            clock,
            link: link.to_string(),
        }
    }
}

/// The recorder could not write its file.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("cannot create flight log {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write flight log {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
    #[error("flight log {}: topic `{topic}`: cannot serialise the message", path.display())]
    Serialize {
        path: PathBuf,
        topic: String,
        #[source]
        source: serde_json::Error,
    },
}

/// How the recorder chunks its file.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    pub clock: FlightClock,
    /// Close a chunk once it spans this much flight time, or (real time) once its oldest
    /// message has waited this long on the wall clock.
    pub flush_after: Duration,
    /// Close a chunk once it holds more than this many bytes.
    pub chunk_bytes: u64,
}

impl RecorderOptions {
    pub fn new(clock: FlightClock) -> Self {
        Self {
            clock,
            flush_after: Duration::from_millis(250),
            chunk_bytes: 256 * 1024,
        }
    }
}

/// What [`Recorder::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingStats {
    pub messages: u64,
    pub chunks: u32,
}

type McapWriter = Writer<NoSeek<BufWriter<File>>>;

/// What the flight thread and the flusher thread share.
struct Shared {
    writer: Option<McapWriter>,
    /// Log time of the open chunk's first message, and when (wall) it was recorded.
    open_chunk: Option<(u64, Instant)>,
    /// The flusher's error, reported by the next call on the recorder.
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

/// Writes a flight log as MCAP. See the module doc for topics, times and durability.
pub struct Recorder {
    path: PathBuf,
    options: RecorderOptions,
    shared: Arc<Mutex<Shared>>,
    flusher: Option<Flusher>,
    channels: HashMap<String, u16>,
    sequence: u32,
    messages: u64,
    /// The first error of the `LogSink` side (which cannot return one), for `finish`.
    sink_error: Option<RecorderError>,
    buf: Vec<u8>,
}

impl Recorder {
    /// Creates the file (replacing it) and, for a real-time clock, starts the flusher thread.
    pub fn create(path: &Path, options: RecorderOptions) -> Result<Self, RecorderError> {
        let file = File::create(path).map_err(|source| RecorderError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let write_err = |source| RecorderError::Write {
            path: path.to_path_buf(),
            source,
        };
        let writer = WriteOptions::new()
            .profile(MCAP_PROFILE)
            .compression(None)
            .chunk_size(Some(options.chunk_bytes))
            .disable_seeking(true)
            .create(NoSeek::new(BufWriter::with_capacity(64 * 1024, file)))
            .map_err(write_err)?;
        let shared = Arc::new(Mutex::new(Shared {
            writer: Some(writer),
            open_chunk: None,
            deferred: None,
        }));
        let flusher = match options.clock {
            FlightClock::Virtual => None,
            FlightClock::RealTime => Some(
                spawn_flusher(Arc::clone(&shared), options.flush_after).map_err(|source| {
                    RecorderError::Create {
                        path: path.to_path_buf(),
                        source,
                    }
                })?,
            ),
        };
        let mut rec = Self {
            path: path.to_path_buf(),
            options,
            shared,
            flusher,
            channels: HashMap::new(),
            sequence: 0,
            messages: 0,
            sink_error: None,
            buf: Vec::with_capacity(1024),
        };
        // The header (MCAP magic and header record) reaches the file at once.
        rec.with_writer(|w| w.flush())?;
        Ok(rec)
    }

    /// Creates the file and records the header at log time 0.
    pub fn start_flight(path: &Path, header: &FlightHeader) -> Result<Self, RecorderError> {
        let mut rec = Self::create(path, RecorderOptions::new(header.clock))?;
        rec.record(TOPIC_HEADER, 0, header)?;
        Ok(rec)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Registers `topic` with a JSON Schema (`None`: schema-less). Recording to a topic that was
    /// not registered registers it with the built-in schema, if any, else schema-less.
    pub fn add_topic(
        &mut self,
        topic: &str,
        schema_name: &str,
        json_schema: Option<&str>,
    ) -> Result<(), RecorderError> {
        if self.channels.contains_key(topic) {
            return Ok(());
        }
        let id = self.with_writer(|w| {
            let schema_id = match json_schema {
                Some(s) => w.add_schema(schema_name, "jsonschema", s.as_bytes())?,
                None => 0,
            };
            w.add_channel(schema_id, topic, "json", &BTreeMap::new())
        })?;
        self.channels.insert(topic.to_string(), id);
        Ok(())
    }

    /// Records `message` as JSON on `topic` at log time `stamp_ns` (the flight's clock).
    pub fn record<T: Serialize + ?Sized>(
        &mut self,
        topic: &str,
        stamp_ns: u64,
        message: &T,
    ) -> Result<(), RecorderError> {
        if !self.channels.contains_key(topic) {
            let (name, schema) = builtin_schema(topic).unzip();
            self.add_topic(topic, name.unwrap_or(""), schema)?;
        }
        let channel_id = self.channels.get(topic).copied().unwrap_or_default();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let serialised = serde_json::to_writer(&mut buf, message);
        let result = match serialised {
            Err(source) => Err(RecorderError::Serialize {
                path: self.path.clone(),
                topic: topic.to_string(),
                source,
            }),
            Ok(()) => self.write_message(channel_id, stamp_ns, &buf),
        };
        self.buf = buf;
        result
    }

    /// Records the flight's summary at its end time.
    pub fn record_summary(&mut self, summary: &Summary) -> Result<(), RecorderError> {
        let end_ns = (summary.sim_seconds * 1e9).round() as u64;
        self.record(TOPIC_SUMMARY, end_ns, summary)
    }

    fn write_message(
        &mut self,
        channel_id: u16,
        stamp_ns: u64,
        data: &[u8],
    ) -> Result<(), RecorderError> {
        let publish_time = match self.options.clock {
            FlightClock::Virtual => stamp_ns,
            FlightClock::RealTime => unix_now_ns(),
        };
        let header = MessageHeader {
            channel_id,
            sequence: self.sequence,
            log_time: stamp_ns,
            publish_time,
        };
        let span_ns = self.options.flush_after.as_nanos() as u64;
        let mut shared = lock(&self.shared);
        if let Some(e) = shared.deferred.take() {
            return Err(self.write_error(e));
        }
        let now = Instant::now();
        let result = (|| {
            // Chunks cover at most `flush_after` of flight time: close the open one first if
            // this message lies beyond it (deterministic, unlike the wall clock).
            if let Some((first_ns, _)) = shared.open_chunk
                && stamp_ns.saturating_sub(first_ns) >= span_ns
            {
                shared.close_chunk()?;
            }
            let Some(w) = shared.writer.as_mut() else {
                return Err(mcap::McapError::AttemptedWriteAfterFailure);
            };
            w.write_to_known_channel(&header, data)?;
            let (_, since) = *shared.open_chunk.get_or_insert((stamp_ns, now));
            if self.options.clock == FlightClock::RealTime
                && now.duration_since(since) >= self.options.flush_after
            {
                shared.close_chunk()?;
            }
            Ok(())
        })();
        drop(shared);
        result.map_err(|e| self.write_error(e))?;
        self.sequence = self.sequence.wrapping_add(1);
        self.messages += 1;
        Ok(())
    }

    fn write_error(&self, source: mcap::McapError) -> RecorderError {
        RecorderError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn with_writer<R>(
        &mut self,
        f: impl FnOnce(&mut McapWriter) -> Result<R, mcap::McapError>,
    ) -> Result<R, RecorderError> {
        let mut shared = lock(&self.shared);
        let result = match shared.writer.as_mut() {
            Some(w) => f(w),
            None => Err(mcap::McapError::AttemptedWriteAfterFailure),
        };
        drop(shared);
        result.map_err(|e| self.write_error(e))
    }

    /// Writes the last chunk, the summary section and the footer; reports the first error of
    /// the recording, if any.
    pub fn finish(mut self) -> Result<RecordingStats, RecorderError> {
        let closed = self.close();
        if let Some(e) = self.sink_error.take() {
            return Err(e);
        }
        closed
    }

    fn close(&mut self) -> Result<RecordingStats, RecorderError> {
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
        Ok(RecordingStats {
            messages: self.messages,
            chunks: summary.stats.map_or(0, |s| s.chunk_count),
        })
    }
}

impl Drop for Recorder {
    /// A recorder dropped without `finish` (an error path) still completes its file.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl LogSink for Recorder {
    fn row(&mut self, row: &LogRow) {
        if self.sink_error.is_some() {
            return;
        }
        let stamp_ns = (row.t_s * 1e9).round() as u64;
        if let Err(e) = self.record(TOPIC_STATE, stamp_ns, row) {
            self.sink_error = Some(e);
        }
    }
}

fn spawn_flusher(shared: Arc<Mutex<Shared>>, flush_after: Duration) -> std::io::Result<Flusher> {
    let (stop, stopped) = mpsc::channel::<()>();
    let tick = (flush_after / 5).max(Duration::from_millis(1));
    let thread = std::thread::Builder::new()
        .name("recorder-flush".to_string())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                let mut s = lock(&shared);
                if s.deferred.is_none()
                    && let Some((_, since)) = s.open_chunk
                    && since.elapsed() >= flush_after
                    && let Err(e) = s.close_chunk()
                {
                    s.deferred = Some(e);
                }
            }
        })?;
    Ok(Flusher { stop, thread })
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The schema name and JSON Schema of a built-in topic.
pub fn builtin_schema(topic: &str) -> Option<(&'static str, &'static str)> {
    match topic {
        TOPIC_STATE => Some(("depthpilot.LogRow", STATE_SCHEMA)),
        TOPIC_HEADER => Some(("depthpilot.FlightHeader", HEADER_SCHEMA)),
        TOPIC_SUMMARY => Some(("depthpilot.Summary", SUMMARY_SCHEMA)),
        _ => None,
    }
}

const STATE_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "depthpilot.LogRow",
  "description": "The flight's state at one log period. SI units, world frame (z up), radians.",
  "type": "object",
  "$defs": {
    "vec3": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
  },
  "properties": {
    "t_s": {"type": "number", "description": "flight time"},
    "pos_m": {"$ref": "#/$defs/vec3", "description": "true position"},
    "vel_m_s": {"$ref": "#/$defs/vec3"},
    "rpy_rad": {"$ref": "#/$defs/vec3", "description": "true roll, pitch, yaw"},
    "setpoint_m": {"$ref": "#/$defs/vec3"},
    "estimate_m": {"anyOf": [{"$ref": "#/$defs/vec3"}, {"type": "null"}]},
    "cmd_roll_rad": {"type": "number"},
    "cmd_pitch_rad": {"type": "number"},
    "cmd_yaw_rate_rad_s": {"type": "number"},
    "cmd_thrust_frac": {"type": "number"},
    "motors_pwm": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 65535}, "minItems": 4, "maxItems": 4},
    "safety": {"type": "string", "description": "controller state: acquiring, tracking, holding, landing, landed, cut, idle"},
    "firmware": {"type": "string"},
    "mux_sources": {"anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4}, {"type": "null"}]},
    "measurement_age_s": {"type": ["number", "null"]},
    "detection_pixels": {"type": ["integer", "null"], "minimum": 0}
  },
  "required": ["t_s", "pos_m", "vel_m_s", "rpy_rad", "setpoint_m", "estimate_m", "cmd_roll_rad",
    "cmd_pitch_rad", "cmd_yaw_rate_rad_s", "cmd_thrust_frac", "motors_pwm", "safety", "firmware",
    "mux_sources", "measurement_age_s", "detection_pixels"]
}"##;

const HEADER_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "depthpilot.FlightHeader",
  "type": "object",
  "properties": {
    "format": {"const": "depthpilot-flight-log"},
    "version": {"type": "integer"},
    "scene": {"type": "string"},
    "seed": {"type": "integer", "minimum": 0},
    "rates": {
      "type": "object",
      "properties": {
        "physics_hz": {"type": "number"},
        "firmware_hz": {"type": "number"},
        "log_hz": {"type": "number"}
      },
      "required": ["physics_hz", "firmware_hz", "log_hz"]
    },
    "clock": {"enum": ["virtual", "real_time"]},
    "link": {"type": "string"}
  },
  "required": ["format", "version", "scene", "seed", "rates", "clock", "link"]
}"##;

const SUMMARY_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "depthpilot.Summary",
  "description": "What a flight produced. Metres, seconds, degrees where named _deg.",
  "type": "object",
  "properties": {
    "scene": {"type": "string"},
    "seed": {"type": "integer", "minimum": 0},
    "controller": {"type": "string"},
    "sim_seconds": {"type": "number"},
    "physics_steps": {"type": "integer", "description": "0 for a flight against a remote simulator"},
    "frames": {"type": "integer"},
    "detections": {"type": "integer"},
    "rms_error_m": {"type": "number"},
    "max_error_m": {"type": "number"},
    "rms_estimate_error_m": {"type": "number"},
    "crashed": {"type": "boolean"},
    "crash": {"type": ["object", "null"]},
    "touchdowns": {"type": "integer"},
    "final_position_m": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
    "final_safety_state": {"type": "string"},
    "firmware_lockout": {"type": "boolean"},
    "radio_packets_sent": {"type": "integer"},
    "radio_packets_dropped": {"type": "integer"},
    "radio_decode_errors": {"type": "integer"},
    "gusts": {"type": "integer"},
    "steps": {"type": "array", "items": {"type": "object"}},
    "vision": {"type": ["object", "null"]}
  },
  "required": ["scene", "seed", "controller", "sim_seconds", "rms_error_m", "crashed"]
}"##;

/// One message read back from a flight log.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedMessage {
    pub topic: String,
    pub log_time_ns: u64,
    pub publish_time_ns: u64,
    /// The message as recorded (JSON for depthpilot's own topics).
    pub data: Vec<u8>,
}

/// Why a flight log could not be read to its end. (The message includes the MCAP reader's.)
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not an MCAP file (it does not start with the MCAP magic bytes)")]
    NotMcap,
    #[error(
        "the file ends early, without its summary and footer (the recording was cut short, \
         e.g. a killed flight): {0}"
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
    /// The log times its header claims (chunks): flight time, ns. A damaged header may lie.
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

/// What a reader found in an MCAP file: the messages it could read, in file order; the damaged
/// records it skipped (their messages are missing, the ones after them are read); and why it
/// stopped early (`None`: the file is complete, summary and footer included).
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
        if self.skipped.is_empty() {
            return None;
        }
        let each: Vec<String> = self.skipped.iter().map(ToString::to_string).collect();
        Some(format!(
            "{} damaged record{} skipped, the messages in {} lost: {}",
            self.skipped.len(),
            if self.skipped.len() == 1 { "" } else { "s" },
            if self.skipped.len() == 1 {
                "it"
            } else {
                "them"
            },
            each.join("; ")
        ))
    }
}

/// Whether `bytes` start like an MCAP file.
pub fn is_mcap(bytes: &[u8]) -> bool {
    bytes.starts_with(MCAP_MAGIC)
}

/// An MCAP record's framing: opcode, length, body; `None` if the bytes end inside it.
fn framed(bytes: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let opcode = *bytes.get(at)?;
    let len = u64::from_le_bytes(bytes.get(at + 1..at + 9)?.try_into().ok()?);
    let start = at + 9;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some((opcode, bytes.get(start..end)?, end))
}

/// Reads every message it can, tolerating a missing summary and footer (a killed recording).
/// Records are walked by their framing (opcode, length), so a damaged chunk (its CRC, checked
/// before any of its messages is taken, fails; or a record inside it does not parse) is skipped
/// and said, and the chunks after it are read. Reading stops where the framing itself ends or
/// breaks: a cut file, or garbage over a record's length.
pub fn read_recording(bytes: &[u8]) -> Recording {
    use mcap::records::Record;

    let mut out = Recording::default();
    if !is_mcap(bytes) {
        out.damage = Some(ReadError::NotMcap);
        return out;
    }
    let mut topics: HashMap<u16, String> = HashMap::new();
    let mut at = MCAP_MAGIC.len();
    loop {
        if at == bytes.len() {
            out.damage = Some(ReadError::Truncated(mcap::McapError::UnexpectedEof));
            break;
        }
        let record = framed(bytes, at)
            .map(|(opcode, body, end)| (opcode, mcap::read::parse_record(opcode, body), end));
        match record {
            Some((_, Ok(Record::Footer(_)), _)) => break,
            Some((_, Ok(Record::Chunk { header, data }), end)) => {
                let log_time_ns = Some((header.message_start_time, header.message_end_time));
                let skip = |reason: String| SkippedRecord {
                    offset: at,
                    what: "chunk".to_string(),
                    log_time_ns,
                    reason,
                };
                if !header.compression.is_empty() {
                    out.skipped.push(skip(format!(
                        "compressed with `{}`, which depthpilot does not read (it writes \
                         uncompressed chunks)",
                        header.compression
                    )));
                } else if header.uncompressed_crc != 0
                    && crc32fast::hash(&data) != header.uncompressed_crc
                {
                    out.skipped.push(skip(format!(
                        "its CRC fails (expected {:08X}, got {:08X})",
                        header.uncompressed_crc,
                        crc32fast::hash(&data)
                    )));
                } else if let Err(reason) = read_chunk(&data, &mut topics, &mut out.messages) {
                    out.skipped.push(skip(reason));
                }
                at = end;
            }
            Some((opcode, Ok(record), end)) => {
                if let Err(reason) = take(record, &mut topics, &mut out.messages) {
                    out.skipped.push(SkippedRecord {
                        offset: at,
                        what: format!("record (opcode {opcode:#04x})"),
                        log_time_ns: None,
                        reason,
                    });
                }
                at = end;
            }
            // Garbage where a record should be, or a length running past the end: the file
            // was cut here (a killed flight), or bytes were damaged. Read on from the next
            // chunk that is whole (its CRC holds), if there is one.
            broken => {
                let why = match &broken {
                    None => "a record's length runs past the end of the file".to_string(),
                    Some((opcode, Err(e), _)) => {
                        format!("the record there (opcode {opcode:#04x}) does not parse: {e}")
                    }
                    Some(_) => unreachable!("the intact records are matched above"),
                };
                match next_intact_chunk(bytes, at + 1) {
                    Some(next) => {
                        out.skipped.push(SkippedRecord {
                            offset: at,
                            what: format!("{} bytes", next - at),
                            log_time_ns: None,
                            reason: format!(
                                "{why}; read on from the next whole chunk, at byte {next}"
                            ),
                        });
                        at = next;
                    }
                    None if broken.is_none() && !bytes.ends_with(MCAP_MAGIC) => {
                        out.damage = Some(ReadError::Truncated(mcap::McapError::UnexpectedEof));
                        break;
                    }
                    None => {
                        out.damage = Some(ReadError::Unframed { offset: at, why });
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Where the next whole chunk starts at or after `from`: a chunk record that parses and whose
/// CRC holds (which garbage does not fake).
fn next_intact_chunk(bytes: &[u8], from: usize) -> Option<usize> {
    use mcap::records::{Record, op};
    (from..bytes.len()).find(|&i| {
        bytes[i] == op::CHUNK
            && framed(bytes, i).is_some_and(|(_, body, _)| {
                matches!(
                    mcap::read::parse_record(op::CHUNK, body),
                    Ok(Record::Chunk { header, data })
                        if header.compression.is_empty()
                            && header.uncompressed_crc != 0
                            && crc32fast::hash(&data) == header.uncompressed_crc
                )
            })
    })
}

/// The records inside one (checked, uncompressed) chunk. All or nothing: a chunk with a bad
/// record inside gives none of its messages (its CRC passed, so the writer wrote it so).
fn read_chunk(
    data: &[u8],
    topics: &mut HashMap<u16, String>,
    messages: &mut Vec<RecordedMessage>,
) -> Result<(), String> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let (opcode, body, end) =
            framed(data, at).ok_or_else(|| format!("a record inside it is cut at byte {at}"))?;
        let record = mcap::read::parse_record(opcode, body).map_err(|e| e.to_string())?;
        take(record, topics, &mut found)?;
        at = end;
    }
    messages.append(&mut found);
    Ok(())
}

/// Channels are remembered; messages are kept with their topic.
fn take(
    record: mcap::records::Record<'_>,
    topics: &mut HashMap<u16, String>,
    messages: &mut Vec<RecordedMessage>,
) -> Result<(), String> {
    use mcap::records::Record;
    match record {
        Record::Channel(c) => {
            topics.entry(c.id).or_insert(c.topic);
        }
        Record::Message { header, data } => {
            let topic = topics.get(&header.channel_id).ok_or_else(|| {
                format!(
                    "message {} is on channel {}, which no channel record declared",
                    header.sequence, header.channel_id
                )
            })?;
            messages.push(RecordedMessage {
                topic: topic.clone(),
                log_time_ns: header.log_time,
                publish_time_ns: header.publish_time,
                data: data.into_owned(),
            });
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_s: f64) -> LogRow {
        LogRow {
            t_s,
            pos_m: [0.1, -0.2, 1.0],
            vel_m_s: [0.0; 3],
            rpy_rad: [0.01, 0.02, 0.03],
            setpoint_m: [0.0, 0.0, 1.0],
            estimate_m: Some([0.1, -0.2, 0.99]),
            cmd_roll_rad: 0.0,
            cmd_pitch_rad: 0.0,
            cmd_yaw_rate_rad_s: 0.0,
            cmd_thrust_frac: 0.6,
            motors_pwm: [1, 2, 3, 4],
            safety: "tracking",
            firmware: "fresh",
            mux_sources: None,
            measurement_age_s: Some(0.03),
            detection_pixels: Some(120),
        }
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("depthpilot-recorder-{}-{name}", std::process::id()))
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    }

    /// Each built-in schema names exactly the fields the message serialises.
    #[test]
    fn schemas_match_the_messages() {
        let header = FlightHeader::new("s", 1, Rates::default(), FlightClock::Virtual, "x");
        for (topic, message) in [
            (TOPIC_STATE, serde_json::to_value(row(0.0)).expect("json")),
            (TOPIC_HEADER, serde_json::to_value(&header).expect("json")),
        ] {
            let (_, schema) = builtin_schema(topic).expect("schema");
            let schema: serde_json::Value = serde_json::from_str(schema).expect("schema is JSON");
            assert_eq!(keys(&schema["properties"]), keys(&message), "{topic}");
        }
        let summary: serde_json::Value =
            serde_json::from_str(SUMMARY_SCHEMA).expect("schema is JSON");
        assert!(summary["properties"].is_object());
    }

    #[test]
    fn round_trip_complete_and_cut() {
        let path = temp("rt.mcap");
        let header = FlightHeader::new("s", 7, Rates::default(), FlightClock::Virtual, "x");
        let mut rec = Recorder::start_flight(&path, &header).expect("create");
        for i in 0..300 {
            rec.row(&row(f64::from(i) * 0.01));
        }
        rec.record("/other", 5, &serde_json::json!({"a": 1}))
            .expect("record");
        let stats = rec.finish().expect("finish");
        assert_eq!(stats.messages, 302);
        // 3 s of rows in chunks of at most 0.25 s of flight time.
        assert!(stats.chunks >= 12, "{stats:?}");

        let bytes = std::fs::read(&path).expect("read");
        let r = read_recording(&bytes);
        assert!(r.damage.is_none(), "{:?}", r.damage);
        assert_eq!(r.topic(TOPIC_STATE).count(), 300);
        assert_eq!(r.topic(TOPIC_HEADER).count(), 1);
        let back: FlightHeader =
            serde_json::from_slice(&r.topic(TOPIC_HEADER).next().expect("header").data)
                .expect("header");
        assert_eq!(back, header);
        let last = r.topic(TOPIC_STATE).last().expect("rows");
        assert_eq!(last.log_time_ns, 2_990_000_000);
        assert_eq!(last.publish_time_ns, last.log_time_ns);
        // The mcap crate's own readers agree: the streaming one, and the summary (indexed).
        let n = mcap::MessageStream::new(&bytes).expect("stream").count();
        assert_eq!(n, 302);
        let summary = mcap::Summary::read(&bytes)
            .expect("summary")
            .expect("present");
        assert_eq!(summary.stats.map(|s| s.message_count), Some(302));

        // Cut in the middle: the rows of the whole chunks before the cut, then `Truncated`.
        let r = read_recording(&bytes[..bytes.len() / 2]);
        assert!(
            matches!(r.damage, Some(ReadError::Truncated(_))),
            "{:?}",
            r.damage
        );
        let n = r.topic(TOPIC_STATE).count();
        assert!((100..160).contains(&n), "{n} rows before the cut");
        let streamed = mcap::MessageStream::new(&bytes[..bytes.len() / 2])
            .expect("stream")
            .take_while(Result::is_ok)
            .count();
        // (It also yields the cut chunk's first messages, unchecked by its CRC.)
        assert!(
            streamed > n,
            "the crate's MessageStream reads the cut file: {streamed}"
        );

        // A flipped byte inside a chunk: the chunk CRC catches it before any of its rows; the
        // chunk is skipped, said, and the chunks after it are read to the footer.
        let all = read_recording(&bytes).topic(TOPIC_STATE).count();
        let mut bad = bytes.clone();
        let mid = bytes.len() / 2;
        bad[mid] ^= 0x55;
        let r = read_recording(&bad);
        assert!(r.damage.is_none(), "{:?}", r.damage);
        assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
        let said = r.describe_skipped().expect("said");
        assert!(
            said.contains("CRC fails") && said.contains("chunk at byte"),
            "{said}"
        );
        let lost = all - r.topic(TOPIC_STATE).count();
        assert!((1..all / 2).contains(&lost), "{lost} of {all} rows lost");
        // The rows keep their order, with a gap where the chunk was.
        let t: Vec<u64> = r.topic(TOPIC_STATE).map(|m| m.log_time_ns).collect();
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        assert!(t.windows(2).any(|w| w[1] - w[0] > 20_000_000), "a gap");

        // Garbage over a chunk's framing: the reader finds the next whole chunk and reads on.
        let mut chunks = Vec::new();
        let mut at = MCAP_MAGIC.len();
        while let Some((opcode, _, end)) = framed(&bytes, at) {
            if opcode == mcap::records::op::CHUNK {
                chunks.push(at);
            }
            at = end;
        }
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        let mut bad = bytes.clone();
        let second = chunks[1];
        bad[second..second + 9].copy_from_slice(&[0xAB; 9]);
        let r = read_recording(&bad);
        assert!(r.damage.is_none(), "{:?}", r.damage);
        let said = r.describe_skipped().expect("said");
        assert!(
            said.contains(&format!(
                "read on from the next whole chunk, at byte {}",
                chunks[2]
            )),
            "{said}"
        );
        let kept = r.topic(TOPIC_STATE).count();
        assert!(kept > all / 2 && kept < all, "{kept} of {all}");
        // ... and with no whole chunk after the garbage, stops there, named.
        let mut bad = bytes.clone();
        let last = chunks[chunks.len() - 1];
        bad[last..last + 9].copy_from_slice(&[0xAB; 9]);
        let r = read_recording(&bad);
        assert!(
            matches!(r.damage, Some(ReadError::Unframed { offset, .. }) if offset == last),
            "{:?}",
            r.damage
        );
        assert!(read_recording(b"hello").damage.is_some());
        let _ = std::fs::remove_file(&path);
    }

    /// A real-time recording reaches the file within `flush_after` plus a tick of the flusher,
    /// with no further message to push it out.
    #[test]
    fn real_time_chunks_reach_the_file_without_more_messages() {
        let path = temp("rt-flush.mcap");
        let header = FlightHeader::new("s", 7, Rates::default(), FlightClock::RealTime, "x");
        let mut rec = Recorder::start_flight(&path, &header).expect("create");
        rec.row(&row(0.0));
        std::thread::sleep(Duration::from_millis(600));
        let r = read_recording(&std::fs::read(&path).expect("read"));
        assert_eq!(r.topic(TOPIC_STATE).count(), 1, "{:?}", r.damage);
        assert!(matches!(r.damage, Some(ReadError::Truncated(_))));
        let m = r.topic(TOPIC_STATE).next().expect("row");
        assert!(m.publish_time_ns > 1_600_000_000_000_000_000, "UNIX ns");
        rec.finish().expect("finish");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unwritable_path_names_the_path() {
        let path = Path::new("/nonexistent-dir/x.mcap");
        let e = Recorder::create(path, RecorderOptions::new(FlightClock::Virtual))
            .err()
            .expect("fails");
        assert!(e.to_string().contains("/nonexistent-dir/x.mcap"), "{e}");
    }
}
