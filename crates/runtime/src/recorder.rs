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
//! With [`Recorder::with_foxglove`] (on for `depthpilot fly --log X.mcap`) the recorder also
//! writes Foxglove's well-known topics (`/tf`, `/quad/pose`, `/scene`, `/log`, ...; see
//! [`crate::flight_foxglove`]) so that Foxglove shows the flight in 3D.
//!
//! Other topics go through [`Recorder::record`] (schema-less unless [`Recorder::add_topic`] gave
//! one). Log time is the flight's clock in ns since its start: virtual time for an inline flight,
//! the real-time clock for a flight against a remote simulator. Publish time is the UNIX wall
//! clock (ns) when the message was recorded for a real-time flight, and equal to the log time
//! for a virtual-time flight, so that recordings of the same virtual flight are byte-identical.
//!
//! ## Durability
//! The MCAP layer is camera sessions' too (`depthpilot_mcaplog`: writer, lenient reader, and
//! `depthpilot log repair`, which rewrites a killed log whole). Chunks are uncompressed, buffered in memory and written whole. A chunk is closed, written and
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

use crate::flight_foxglove::{FlightTopics, foxglove_schema};
use depthpilot_mcaplog::{ChunkedWriter, WriteError, WriterOptions};
use depthpilot_sim::{LogRow, LogSink, Summary};
use depthpilot_types::Scene;
use depthpilot_types::scene::Rates;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use depthpilot_mcaplog::{ReadError, RecordedMessage, Recording, SkippedRecord, is_mcap};

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

impl From<WriteError> for RecorderError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Create { path, source } => Self::Create { path, source },
            WriteError::Write { path, source } => Self::Write { path, source },
        }
    }
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

/// Writes a flight log as MCAP. See the module doc for topics, times and durability.
pub struct Recorder {
    clock: FlightClock,
    /// The MCAP layer shared with camera sessions: chunking, flushing, summary.
    writer: ChunkedWriter,
    channels: HashMap<String, u16>,
    /// The first error of the `LogSink` side (which cannot return one), for `finish`.
    sink_error: Option<RecorderError>,
    buf: Vec<u8>,
    /// Foxglove's topics beside the rows, if on.
    foxglove: Option<Box<FlightTopics>>,
}

impl Recorder {
    /// Creates the file (replacing it) and, for a real-time clock, starts the flusher thread.
    pub fn create(path: &Path, options: RecorderOptions) -> Result<Self, RecorderError> {
        let writer = ChunkedWriter::create(
            path,
            WriterOptions {
                profile: MCAP_PROFILE.to_string(),
                chunk_span: options.flush_after,
                chunk_bytes: options.chunk_bytes,
                wall_clock_flush: options.clock == FlightClock::RealTime,
            },
        )?;
        Ok(Self {
            clock: options.clock,
            writer,
            channels: HashMap::new(),
            sink_error: None,
            buf: Vec::with_capacity(1024),
            foxglove: None,
        })
    }

    /// Creates the file and records the header at log time 0.
    pub fn start_flight(path: &Path, header: &FlightHeader) -> Result<Self, RecorderError> {
        let mut rec = Self::create(path, RecorderOptions::new(header.clock))?;
        rec.record(TOPIC_HEADER, 0, header)?;
        Ok(rec)
    }

    /// Also writes Foxglove's well-known topics for a flight of `scene` with every row and the
    /// summary ([`crate::flight_foxglove`]).
    pub fn with_foxglove(mut self, scene: &Scene) -> Self {
        self.foxglove = Some(Box::new(FlightTopics::new(scene)));
        self
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        self.writer.path()
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
        let schema_id = match json_schema {
            Some(s) => self
                .writer
                .add_schema(schema_name, "jsonschema", s.as_bytes())?,
            None => 0,
        };
        let id = self.writer.add_channel(schema_id, topic, "json")?;
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
                path: self.path().to_path_buf(),
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
        if let Some(mut fox) = self.foxglove.take() {
            let said = fox.summary(self, summary, end_ns);
            self.foxglove = Some(fox);
            said?;
        }
        self.record(TOPIC_SUMMARY, end_ns, summary)
    }

    fn write_message(
        &mut self,
        channel_id: u16,
        stamp_ns: u64,
        data: &[u8],
    ) -> Result<(), RecorderError> {
        let publish_time_ns = match self.clock {
            FlightClock::Virtual => stamp_ns,
            FlightClock::RealTime => unix_now_ns(),
        };
        Ok(self
            .writer
            .write(channel_id, stamp_ns, publish_time_ns, data)?)
    }

    /// Writes the last chunk, the summary section and the footer; reports the first error of
    /// the recording, if any. (A recorder dropped without `finish`, on an error path, still
    /// completes its file.)
    pub fn finish(self) -> Result<RecordingStats, RecorderError> {
        let closed = self.writer.finish();
        if let Some(e) = self.sink_error {
            return Err(e);
        }
        let stats = closed?;
        Ok(RecordingStats {
            messages: stats.messages,
            chunks: stats.chunks,
        })
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
            return;
        }
        if let Some(mut fox) = self.foxglove.take() {
            if let Err(e) = fox.row(self, row, stamp_ns) {
                self.sink_error = Some(e);
            }
            self.foxglove = Some(fox);
        }
    }
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
        _ => foxglove_schema(topic),
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

/// Reads every message it can, tolerating a missing summary and footer (a killed recording):
/// `depthpilot_mcaplog`'s lenient reader. Records are walked by their framing (opcode, length),
/// so a damaged chunk (its CRC, checked before any of its messages is taken, fails; or a record
/// inside it does not parse) is skipped and said, and the chunks after it are read. Reading
/// stops where the framing itself ends or breaks with no whole chunk after it: a cut file, or
/// garbage over a record's length.
pub fn read_recording(bytes: &[u8]) -> Recording {
    depthpilot_mcaplog::read_bytes(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A log row for tests (the Foxglove topics' tests vary it).
    pub(crate) fn row(t_s: f64) -> LogRow {
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
        let chunks = depthpilot_mcaplog::chunk_offsets(&bytes);
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
