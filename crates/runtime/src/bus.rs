//! The ZMQ bus codec, without sockets: how depthpilot's own messages and the 2015 Bitcraze
//! Kinect demo's messages are written and read, and how bad messages are counted.
//!
//! **Our bus.** A message is two ZMQ frames: frame 0 is the topic as UTF-8 (so a SUB socket can
//! prefix-filter on it), frame 1 is the JSON of an [`Envelope`] (topic again, bus version, the
//! publisher's sequence number, a timestamp, and the typed payload). [`encode`] and [`decode`] are
//! the only entry points; [`decode_measurement`] also checks that every number is finite.
//!
//! **The Kinect demo (compat).** Single-frame JSON messages, from
//! `bitcraze/kinect-detector-windows:DepthBasics.cpp` (the detector), `bitcraze/crazyflie-vision:
//! control/kctrl.py` + `control/pid.py` (the controller and its PID visualisation) and
//! `set-point/ksp.py` (the set-point UI). See `shared/reference/protocols.md` §1.6. Those peers
//! can send tokens that are not JSON (`-inf` from C's `printf`, `NaN`/`Infinity` from Python's
//! json); they are rejected as [`Garbage::Json`].
//!
//! Nothing here panics on input: every bad message is a [`Garbage`] with a stable
//! [`reason`](Garbage::reason) key, tallied by [`GarbageCounts`]. Out of scope: sockets, rates,
//! and what the runtime does with a message.

use std::collections::BTreeMap;

use depthpilot_types::{Measurement, Vec3};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The envelope version this build writes and accepts.
pub const BUS_VERSION: u32 = 1;

/// Ground truth from the simulator: [`TruthMsg`].
pub const TOPIC_TRUTH: &str = "sim/truth";
/// A position (and yaw) fix from the vision pipeline: [`MeasurementMsg`].
pub const TOPIC_MEASUREMENT: &str = "vision/measurement";
/// Counters of the vision pipeline: [`VisionStatusMsg`].
pub const TOPIC_VISION_STATUS: &str = "vision/status";
/// Every log row of a flight, as the recorder gets it (`depthpilot_sim::LogRow`): what a live
/// viewer draws.
pub const TOPIC_FLIGHT_STATE: &str = "flight/state";
/// The flight's scene name, every second: `{"scene": name}`.
pub const TOPIC_FLIGHT_HEADER: &str = "flight/header";

/// Longest topic or serde message kept in a [`Garbage`] (bytes), so a hostile peer cannot make
/// the counters grow.
const MAX_TEXT_BYTES: usize = 200;

/// Frame 1 of a bus message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The same topic as frame 0.
    pub topic: String,
    /// [`BUS_VERSION`] of the writer.
    pub version: u32,
    /// The publisher's counter, per topic; starts again from 0 or 1 when the publisher restarts.
    pub seq: u64,
    /// When the publisher sent it, on the publisher's clock (ns).
    pub stamp_ns: u64,
    pub payload: T,
}

/// The borrowed twin of [`Envelope`] that [`encode`] writes (same fields, same order).
#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    topic: &'a str,
    version: u32,
    seq: u64,
    stamp_ns: u64,
    payload: &'a T,
}

/// The two frames of a bus message: `[topic, envelope JSON]`.
///
/// A payload that JSON cannot represent (a map with non-string keys; none of the types here)
/// gives an empty frame 1, which every receiver counts as [`Garbage::Json`]. Non-finite floats
/// are written as `null` by serde_json: validate before publishing ([`MeasurementMsg::validate`]).
pub fn encode<T: Serialize>(topic: &str, seq: u64, stamp_ns: u64, payload: &T) -> [Vec<u8>; 2] {
    let envelope = EnvelopeRef {
        topic,
        version: BUS_VERSION,
        seq,
        stamp_ns,
        payload,
    };
    [
        topic.as_bytes().to_vec(),
        serde_json::to_vec(&envelope).unwrap_or_default(),
    ]
}

/// Reads a bus message that must be on `expected_topic`. Checks, in order: frame count, topic
/// frame (UTF-8, expected), JSON, object, version, envelope fields, topic agreement, payload.
pub fn decode<T: DeserializeOwned>(
    expected_topic: &str,
    frames: &[Vec<u8>],
) -> Result<Envelope<T>, Garbage> {
    let [topic_frame, body] = frames else {
        return Err(Garbage::Frames { got: frames.len() });
    };
    let frame_topic = std::str::from_utf8(topic_frame).map_err(|_| Garbage::TopicUtf8)?;
    if frame_topic != expected_topic {
        return Err(Garbage::UnexpectedTopic {
            got: clip(frame_topic),
            expected: clip(expected_topic),
        });
    }
    let mut obj = parse_object(body, "envelope")?;
    let version = u64_field(&obj, "version")?;
    if version != u64::from(BUS_VERSION) {
        return Err(Garbage::Version { got: version });
    }
    let topic = match obj.get("topic") {
        Some(Value::String(s)) => s.clone(),
        other => return Err(field_error("topic", "a string", other)),
    };
    if topic != frame_topic {
        return Err(Garbage::TopicMismatch {
            frame: clip(frame_topic),
            envelope: clip(&topic),
        });
    }
    let seq = u64_field(&obj, "seq")?;
    let stamp_ns = u64_field(&obj, "stamp_ns")?;
    let payload = obj
        .remove("payload")
        .ok_or_else(|| field_error("payload", "a value", None))?;
    let payload = serde_json::from_value(payload).map_err(|e| Garbage::Schema {
        message: clip(&e.to_string()),
    })?;
    Ok(Envelope {
        topic,
        version: BUS_VERSION,
        seq,
        stamp_ns,
        payload,
    })
}

/// [`decode`] on [`TOPIC_MEASUREMENT`], then [`MeasurementMsg::validate`].
pub fn decode_measurement(frames: &[Vec<u8>]) -> Result<Envelope<MeasurementMsg>, Garbage> {
    let envelope = decode::<MeasurementMsg>(TOPIC_MEASUREMENT, frames)?;
    envelope.payload.validate()?;
    Ok(envelope)
}

/// Why a message was dropped. Strings taken from the message are clipped to 200 bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Garbage {
    #[error("expected 2 frames (topic, envelope), got {got}")]
    Frames { got: usize },
    #[error("topic frame is not UTF-8")]
    TopicUtf8,
    #[error("topic frame `{frame}` differs from the envelope's topic `{envelope}`")]
    TopicMismatch { frame: String, envelope: String },
    #[error("unexpected topic `{got}` (expected `{expected}`)")]
    UnexpectedTopic { got: String, expected: String },
    #[error("not JSON: {message}")]
    Json { message: String },
    #[error("the {what} is {found}, expected a JSON object")]
    NotObject {
        what: &'static str,
        found: &'static str,
    },
    #[error("version {got} is not supported (supported: {})", BUS_VERSION)]
    Version { got: u64 },
    #[error("payload does not match the topic's schema: {message}")]
    Schema { message: String },
    #[error("`{field}` is not finite")]
    NonFinite { field: &'static str },
    #[error("field `{field}` is {found}, expected {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

impl Garbage {
    /// A short key that does not change between releases, for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Garbage::Frames { .. } => "frames",
            Garbage::TopicUtf8 => "utf8",
            Garbage::TopicMismatch { .. } => "topic_mismatch",
            Garbage::UnexpectedTopic { .. } => "topic",
            Garbage::Json { .. } => "json",
            Garbage::NotObject { .. } => "not_object",
            Garbage::Version { .. } => "version",
            Garbage::Schema { .. } => "schema",
            Garbage::NonFinite { .. } => "non_finite",
            Garbage::Field { .. } => "field",
        }
    }
}

/// Tally of dropped messages.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GarbageCounts {
    pub total: u64,
    pub by_topic: BTreeMap<String, u64>,
    /// Keyed by [`Garbage::reason`].
    pub by_reason: BTreeMap<String, u64>,
    /// `"{topic}: {garbage}"` of the latest one.
    pub last: Option<String>,
}

impl GarbageCounts {
    /// Counts one dropped message. Pass the topic the socket listens to (the expected one), not
    /// the received frame, so that `by_topic` stays bounded.
    pub fn count(&mut self, topic: &str, g: &Garbage) {
        self.total = self.total.saturating_add(1);
        bump(&mut self.by_topic, topic, 1);
        bump(&mut self.by_reason, g.reason(), 1);
        self.last = Some(format!("{topic}: {g}"));
    }

    /// Adds `other`'s counts; its `last`, if any, becomes ours.
    pub fn merge(&mut self, other: &GarbageCounts) {
        self.total = self.total.saturating_add(other.total);
        for (topic, n) in &other.by_topic {
            bump(&mut self.by_topic, topic, *n);
        }
        for (reason, n) in &other.by_reason {
            bump(&mut self.by_reason, reason, *n);
        }
        if other.last.is_some() {
            self.last.clone_from(&other.last);
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    let slot = map.entry(key.to_string()).or_default();
    *slot = slot.saturating_add(n);
}

/// Follows one publisher's `seq`: gaps (lost messages) and restarts (the camera crate's, which
/// does the same for a Kinect bridge's frames).
pub use depthpilot_camera::SeqTracker;

// ---------------------------------------------------------------------------------------------
// Our payloads.

/// Ground truth of the simulated quad ([`TOPIC_TRUTH`]), world frame (z up).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthMsg {
    /// Simulation time (ns).
    pub t_ns: u64,
    pub pos_m: [f64; 3],
    pub vel_m_s: [f64; 3],
    /// Roll, pitch, yaw (rad).
    pub rpy_rad: [f64; 3],
}

impl TruthMsg {
    /// The truth of the world at `t_ns`.
    pub fn of(t_ns: u64, truth: &depthpilot_sim::world::BodyState) -> Self {
        Self {
            t_ns,
            pos_m: truth.pos_m.to_array(),
            vel_m_s: truth.vel_m_s.to_array(),
            rpy_rad: truth.world_from_body.rpy(),
        }
    }

    /// The body it describes (None if a number is not finite; body rates are not carried).
    pub fn body(&self) -> Option<depthpilot_sim::world::BodyState> {
        let finite = self
            .pos_m
            .iter()
            .chain(&self.vel_m_s)
            .chain(&self.rpy_rad)
            .all(|x| x.is_finite());
        let v = |a: [f64; 3]| depthpilot_types::Vec3::new(a[0], a[1], a[2]);
        let [roll, pitch, yaw] = self.rpy_rad;
        finite.then(|| depthpilot_sim::world::BodyState {
            pos_m: v(self.pos_m),
            vel_m_s: v(self.vel_m_s),
            world_from_body: depthpilot_types::Rot::from_rpy(roll, pitch, yaw),
            body_rates_rad_s: depthpilot_types::Vec3::ZERO,
        })
    }
}

/// A vision fix of the quad in the world frame ([`TOPIC_MEASUREMENT`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasurementMsg {
    /// When the depth frame was captured (ns, bus clock).
    pub capture_ns: u64,
    /// When the fix was ready, after processing (ns, bus clock).
    pub available_ns: u64,
    /// The vision pipeline's frame counter.
    pub seq: u64,
    pub pos_m: [f64; 3],
    /// `None` when the markers did not give a heading.
    pub yaw_rad: Option<f64>,
}

impl MeasurementMsg {
    pub fn from_measurement(m: &Measurement, available_ns: u64) -> Self {
        let p = m.pos_in_world_m;
        Self {
            capture_ns: m.stamp_ns,
            available_ns,
            seq: m.seq,
            pos_m: [p.x, p.y, p.z],
            yaw_rad: m.yaw_rad,
        }
    }

    /// The measurement as the controller sees it, stamped at capture time.
    pub fn to_measurement(&self) -> Measurement {
        let [x, y, z] = self.pos_m;
        Measurement {
            stamp_ns: self.capture_ns,
            seq: self.seq,
            pos_in_world_m: Vec3 { x, y, z },
            yaw_rad: self.yaw_rad,
        }
    }

    /// Every number finite. (A NaN yaw would otherwise travel as `null`, that is as no yaw.)
    pub fn validate(&self) -> Result<(), Garbage> {
        finite3("pos_m", self.pos_m)?;
        match self.yaw_rad {
            Some(yaw) if !yaw.is_finite() => Err(Garbage::NonFinite { field: "yaw_rad" }),
            _ => Ok(()),
        }
    }
}

/// Counters of the vision pipeline since it started ([`TOPIC_VISION_STATUS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisionStatusMsg {
    /// Depth frames processed.
    pub frames: u64,
    /// Frames in which the quad was found.
    pub detections: u64,
}

// ---------------------------------------------------------------------------------------------
// The 2015 Kinect demo (single-frame JSON).

/// The detector's message, `{"pos": [x, y, z], "angle": deg, "detect": bool}`, one per Kinect
/// frame (`DepthBasics.cpp`, PUSH bound on `tcp://0.0.0.0:1213`). When nothing was found it
/// repeats the last position with `detect: false`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorMsg {
    /// Kinect camera space (m): the camera lies on the floor facing up, so z is the height.
    pub pos_m: [f64; 3],
    /// Heading of the marker pattern, 0..360 (deg).
    pub angle_deg: f64,
    pub detect: bool,
}

impl DetectorMsg {
    /// Exactly the keys `pos`, `angle`, `detect`. Non-finite numbers become `null`.
    pub fn to_json(&self) -> Vec<u8> {
        json!({ "pos": self.pos_m, "angle": self.angle_deg, "detect": self.detect })
            .to_string()
            .into_bytes()
    }
}

/// Reads a detector message; `angle` may be an integer. Extra keys are ignored.
pub fn parse_detector(bytes: &[u8]) -> Result<DetectorMsg, Garbage> {
    let obj = parse_object(bytes, "detector message")?;
    let pos_m = vec3_field(&obj, "pos")?;
    let angle_deg = number_field(&obj, "angle", "angle")?;
    let detect = match obj.get("detect") {
        Some(Value::Bool(b)) => *b,
        other => return Err(field_error("detect", "a boolean", other)),
    };
    Ok(DetectorMsg {
        pos_m,
        angle_deg,
        detect,
    })
}

/// The set-point UI's message (`ksp.py`, PUSH bound on `tcp://*:5124`, every 10 ms):
/// `{"version": 1, "set-points": {"roll": m, "pitch": m, "yaw": deg, "velocity": m/s}}`.
/// `roll`/`pitch` are the horizontal position targets in the Kinect's x/y, `velocity` the
/// vertical speed target.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SetPointsMsg {
    pub roll_m: f64,
    pub pitch_m: f64,
    pub yaw_deg: f64,
    pub velocity_m_s: f64,
}

impl SetPointsMsg {
    /// Version 1 with all four set-points. Non-finite numbers become `null`.
    pub fn to_json(&self) -> Vec<u8> {
        json!({
            "version": 1,
            "set-points": {
                "roll": self.roll_m,
                "pitch": self.pitch_m,
                "yaw": self.yaw_deg,
                "velocity": self.velocity_m_s,
            }
        })
        .to_string()
        .into_bytes()
    }
}

/// Reads a set-point message: `version` must be 1 and `set-points` an object; each set-point is
/// optional (0.0) but, when present, a number.
pub fn parse_set_points(bytes: &[u8]) -> Result<SetPointsMsg, Garbage> {
    let obj = parse_object(bytes, "set-point message")?;
    let version = u64_field(&obj, "version")?;
    if version != 1 {
        return Err(Garbage::Version { got: version });
    }
    let sp = match obj.get("set-points") {
        Some(Value::Object(sp)) => sp,
        other => return Err(field_error("set-points", "an object", other)),
    };
    let optional = |key: &str, field: &'static str| match sp.get(key) {
        None => Ok(0.0),
        Some(_) => number_field(sp, key, field),
    };
    Ok(SetPointsMsg {
        roll_m: optional("roll", "set-points.roll")?,
        pitch_m: optional("pitch", "set-points.pitch")?,
        yaw_deg: optional("yaw", "set-points.yaw")?,
        velocity_m_s: optional("velocity", "set-points.velocity")?,
    })
}

/// One PID update for the visualiser (`pid.py` `PID_RP.update`, PUSH to port 5123):
/// `{"name": "roll", "data": {"P", "I", "D", "E", "SP", "OUT"}}` — the three terms, the error,
/// the set-point and the output, in the loop's own units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PidVizMsg {
    pub name: String,
    pub p: f64,
    pub i: f64,
    pub d: f64,
    pub e: f64,
    pub sp: f64,
    pub out: f64,
}

impl PidVizMsg {
    /// Exactly `name` and `data` with `P`, `I`, `D`, `E`, `SP`, `OUT`. Non-finite numbers become
    /// `null`.
    pub fn to_json(&self) -> Vec<u8> {
        json!({
            "name": self.name,
            "data": {
                "P": self.p, "I": self.i, "D": self.d,
                "E": self.e, "SP": self.sp, "OUT": self.out,
            }
        })
        .to_string()
        .into_bytes()
    }
}

/// Reads a PID visualisation message (for tests and tools); all six values are required.
pub fn parse_pid_viz(bytes: &[u8]) -> Result<PidVizMsg, Garbage> {
    let obj = parse_object(bytes, "PID visualisation message")?;
    let name = match obj.get("name") {
        Some(Value::String(s)) => clip(s),
        other => return Err(field_error("name", "a string", other)),
    };
    let data = match obj.get("data") {
        Some(Value::Object(data)) => data,
        other => return Err(field_error("data", "an object", other)),
    };
    Ok(PidVizMsg {
        name,
        p: number_field(data, "P", "data.P")?,
        i: number_field(data, "I", "data.I")?,
        d: number_field(data, "D", "data.D")?,
        e: number_field(data, "E", "data.E")?,
        sp: number_field(data, "SP", "data.SP")?,
        out: number_field(data, "OUT", "data.OUT")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// `s`, cut to [`MAX_TEXT_BYTES`] at a character boundary.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT_BYTES {
        return s.to_string();
    }
    let mut end = MAX_TEXT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn parse_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, Garbage> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Garbage::Json {
        message: clip(&e.to_string()),
    })?;
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(Garbage::NotObject {
            what,
            found: kind(Some(&other)),
        }),
    }
}

fn kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn field_error(field: &'static str, expected: &'static str, found: Option<&Value>) -> Garbage {
    Garbage::Field {
        field,
        expected,
        found: kind(found),
    }
}

fn u64_field(obj: &Map<String, Value>, field: &'static str) -> Result<u64, Garbage> {
    let value = obj.get(field);
    value
        .and_then(Value::as_u64)
        .ok_or_else(|| field_error(field, "a non-negative integer", value))
}

/// `obj[key]` as a finite number (integers accepted); `field` names it in the error.
fn number_field(obj: &Map<String, Value>, key: &str, field: &'static str) -> Result<f64, Garbage> {
    let value = obj.get(key);
    let x = value
        .and_then(Value::as_f64)
        .ok_or_else(|| field_error(field, "a number", value))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Garbage::NonFinite { field })
    }
}

fn vec3_field(obj: &Map<String, Value>, field: &'static str) -> Result<[f64; 3], Garbage> {
    const EXPECTED: &str = "an array of 3 numbers";
    let value = obj.get(field);
    let Some(Value::Array(items)) = value else {
        return Err(field_error(field, EXPECTED, value));
    };
    let [a, b, c] = items.as_slice() else {
        return Err(Garbage::Field {
            field,
            expected: EXPECTED,
            found: "an array of another length",
        });
    };
    let mut out = [0.0; 3];
    for (slot, item) in out.iter_mut().zip([a, b, c]) {
        *slot = item.as_f64().ok_or(Garbage::Field {
            field,
            expected: EXPECTED,
            found: "an array holding a non-number",
        })?;
    }
    finite3(field, out)?;
    Ok(out)
}

fn finite3(field: &'static str, v: [f64; 3]) -> Result<(), Garbage> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Garbage::NonFinite { field })
    }
}

#[cfg(test)]
mod tests;
