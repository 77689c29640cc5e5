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

/// Follows one publisher's `seq`: gaps (lost messages) and restarts. A restart is not garbage.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SeqTracker {
    pub received: u64,
    /// Times `seq` jumped forward by more than one.
    pub gaps: u64,
    /// Messages skipped by those jumps.
    pub missed: u64,
    /// Times `seq` was lower than or equal to the previous one (the peer came back from 0/1).
    pub restarts: u64,
    last: Option<u64>,
}

impl SeqTracker {
    pub fn observe(&mut self, seq: u64) {
        self.received = self.received.saturating_add(1);
        if let Some(last) = self.last {
            if seq <= last {
                self.restarts += 1;
            } else if seq - last > 1 {
                self.gaps += 1;
                self.missed = self.missed.saturating_add(seq - last - 1);
            }
        }
        self.last = Some(seq);
    }

    /// The latest `seq` seen.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

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
fn clip(s: &str) -> String {
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn truth() -> TruthMsg {
        TruthMsg {
            t_ns: 1_500_000_000,
            pos_m: [0.25, -1.5, 1.0],
            vel_m_s: [0.0, 0.125, -0.5],
            rpy_rad: [0.01, -0.02, 3.0],
        }
    }

    fn measurement() -> MeasurementMsg {
        MeasurementMsg {
            capture_ns: 1_000,
            available_ns: 34_000_000,
            seq: 7,
            pos_m: [0.5, -0.25, 1.75],
            yaw_rad: Some(-1.5),
        }
    }

    fn frames(topic: &[u8], body: &str) -> Vec<Vec<u8>> {
        vec![topic.to_vec(), body.as_bytes().to_vec()]
    }

    fn keys(json: &[u8]) -> BTreeSet<String> {
        let value: Value = serde_json::from_slice(json).expect("valid JSON");
        value.as_object().expect("object").keys().cloned().collect()
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn wire_form_is_topic_frame_then_envelope_json() {
        let [topic, body] = encode(TOPIC_VISION_STATUS, 3, 99, &VisionStatusMsg::default());
        assert_eq!(topic, b"vision/status");
        assert_eq!(
            keys(&body),
            set(&["topic", "version", "seq", "stamp_ns", "payload"])
        );
        let value: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(value["version"], 1);
        assert_eq!(value["topic"], "vision/status");
    }

    #[test]
    fn payloads_round_trip() {
        let env =
            decode::<TruthMsg>(TOPIC_TRUTH, &encode(TOPIC_TRUTH, 1, 2, &truth())).expect("truth");
        assert_eq!(
            env,
            Envelope {
                topic: TOPIC_TRUTH.to_string(),
                version: BUS_VERSION,
                seq: 1,
                stamp_ns: 2,
                payload: truth(),
            }
        );

        for m in [
            measurement(),
            MeasurementMsg {
                yaw_rad: None,
                ..measurement()
            },
        ] {
            let env = decode_measurement(&encode(TOPIC_MEASUREMENT, u64::MAX, 5, &m))
                .expect("measurement");
            assert_eq!((env.seq, env.stamp_ns, env.payload), (u64::MAX, 5, m));
        }

        let status = VisionStatusMsg {
            frames: 30,
            detections: 29,
        };
        let env = decode::<VisionStatusMsg>(
            TOPIC_VISION_STATUS,
            &encode(TOPIC_VISION_STATUS, 0, 0, &status),
        )
        .expect("status");
        assert_eq!(env.payload, status);
    }

    #[test]
    fn extra_fields_are_tolerated() {
        let body = r#"{"topic":"vision/status","version":1,"seq":1,"stamp_ns":2,"extra":true,
            "payload":{"frames":3,"detections":1,"fps":30.0}}"#;
        let env = decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, &frames(b"vision/status", body))
            .expect("tolerant");
        assert_eq!(
            env.payload,
            VisionStatusMsg {
                frames: 3,
                detections: 1
            }
        );
    }

    #[test]
    fn measurement_converts_at_capture_time() {
        let m = measurement().to_measurement();
        assert_eq!(m.stamp_ns, 1_000);
        assert_eq!(m.seq, 7);
        assert_eq!(m.pos_in_world_m, Vec3::new(0.5, -0.25, 1.75));
        assert_eq!(m.yaw_rad, Some(-1.5));
        assert_eq!(
            MeasurementMsg::from_measurement(&m, 34_000_000),
            measurement()
        );
    }

    #[test]
    fn non_finite_measurements_are_garbage() {
        let nan_pos = MeasurementMsg {
            pos_m: [0.0, f64::NAN, 0.0],
            ..measurement()
        };
        assert_eq!(
            nan_pos.validate(),
            Err(Garbage::NonFinite { field: "pos_m" })
        );
        let inf_yaw = MeasurementMsg {
            yaw_rad: Some(f64::INFINITY),
            ..measurement()
        };
        assert_eq!(
            inf_yaw.validate(),
            Err(Garbage::NonFinite { field: "yaw_rad" })
        );
        // On the wire a NaN position becomes `null`, which the schema refuses.
        let g = decode_measurement(&encode(TOPIC_MEASUREMENT, 0, 0, &nan_pos))
            .expect_err("NaN position");
        assert_eq!(g.reason(), "schema");
    }

    #[test]
    fn compat_messages_have_exactly_the_2015_keys() {
        let det = DetectorMsg {
            pos_m: [0.1, -0.2, 1.5],
            angle_deg: 45.0,
            detect: true,
        };
        assert_eq!(keys(&det.to_json()), set(&["pos", "angle", "detect"]));
        assert_eq!(parse_detector(&det.to_json()), Ok(det));

        let sp = SetPointsMsg {
            roll_m: 0.5,
            pitch_m: -0.5,
            yaw_deg: 90.0,
            velocity_m_s: 0.1,
        };
        let json = sp.to_json();
        assert_eq!(keys(&json), set(&["version", "set-points"]));
        let value: Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(value["version"], 1);
        let inner: BTreeSet<String> = value["set-points"]
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(inner, set(&["roll", "pitch", "yaw", "velocity"]));
        assert_eq!(parse_set_points(&json), Ok(sp));

        let pid = PidVizMsg {
            name: "roll".to_string(),
            p: 1.0,
            i: 0.5,
            d: -0.25,
            e: 0.04,
            sp: 0.0,
            out: 1.25,
        };
        let json = pid.to_json();
        assert_eq!(keys(&json), set(&["name", "data"]));
        let value: Value = serde_json::from_slice(&json).expect("JSON");
        let data: BTreeSet<String> = value["data"]
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(data, set(&["P", "I", "D", "E", "SP", "OUT"]));
        assert_eq!(parse_pid_viz(&json), Ok(pid));
    }

    #[test]
    fn compat_parsers_read_what_the_2015_peers_wrote() {
        // DepthBasics.cpp: sprintf("{\"pos\": [%f, %f, %f], \"angle\": %f, \"detect\": true}")
        let det = parse_detector(
            br#"{"pos": [0.012345, -0.100000, 1.600000], "angle": 270.000000, "detect": false}"#,
        )
        .expect("detector");
        assert_eq!(det.pos_m, [0.012345, -0.1, 1.6]);
        assert_eq!((det.angle_deg, det.detect), (270.0, false));
        // An integer angle is accepted.
        let det = parse_detector(br#"{"pos": [0, 0, 1], "angle": 90, "detect": true}"#)
            .expect("integer angle");
        assert_eq!(det.angle_deg, 90.0);
        // ksp.py starts with integer zeros; missing set-points default to 0.
        let sp = parse_set_points(br#"{"version": 1, "set-points": {"yaw": 180}}"#)
            .expect("partial set-points");
        assert_eq!(
            sp,
            SetPointsMsg {
                yaw_deg: 180.0,
                ..SetPointsMsg::default()
            }
        );
    }

    /// The envelope decoders, as one shape for the garbage table.
    type Decoder = fn(&[Vec<u8>]) -> Result<(), Garbage>;

    fn envelope_decoders() -> Vec<(&'static str, Decoder)> {
        vec![
            (TOPIC_TRUTH, |f| {
                decode::<TruthMsg>(TOPIC_TRUTH, f).map(drop)
            }),
            (TOPIC_MEASUREMENT, |f| decode_measurement(f).map(drop)),
            (TOPIC_VISION_STATUS, |f| {
                decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, f).map(drop)
            }),
        ]
    }

    fn envelope(topic: &str, version: &str, payload: &str) -> String {
        format!(
            r#"{{"topic":"{topic}","version":{version},"seq":1,"stamp_ns":2,"payload":{payload}}}"#
        )
    }

    #[test]
    fn envelope_garbage_table() {
        for (topic, decoder) in envelope_decoders() {
            let t = topic.as_bytes();
            let good_payload = match topic {
                TOPIC_TRUTH => serde_json::to_string(&truth()),
                TOPIC_MEASUREMENT => serde_json::to_string(&measurement()),
                _ => serde_json::to_string(&VisionStatusMsg::default()),
            }
            .expect("payload JSON");
            let good = envelope(topic, "1", &good_payload);
            assert_eq!(decoder(&frames(t, &good)), Ok(()), "{topic}: good message");

            let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
                ("no frames", vec![], "frames"),
                ("one frame", vec![t.to_vec()], "frames"),
                (
                    "three frames",
                    vec![t.to_vec(), good.clone().into_bytes(), vec![]],
                    "frames",
                ),
                (
                    "non-UTF-8 topic",
                    vec![vec![0xff, 0xfe], good.clone().into_bytes()],
                    "utf8",
                ),
                ("other topic", frames(b"sim/other", &good), "topic"),
                ("topic prefix only", frames(b"sim", &good), "topic"),
                (
                    "topic frames disagree",
                    frames(t, &envelope("x/y", "1", &good_payload)),
                    "topic_mismatch",
                ),
                ("empty body", frames(t, ""), "json"),
                ("not JSON", frames(t, "hello"), "json"),
                ("truncated JSON", frames(t, &good[..good.len() - 1]), "json"),
                (
                    "NaN token",
                    frames(t, &good.replacen("1,", "NaN,", 1)),
                    "json",
                ),
                ("array", frames(t, "[1, 2, 3]"), "not_object"),
                ("number", frames(t, "42"), "not_object"),
                (
                    "version 2",
                    frames(t, &envelope(topic, "2", &good_payload)),
                    "version",
                ),
                (
                    "version 0",
                    frames(t, &envelope(topic, "0", &good_payload)),
                    "version",
                ),
                (
                    "version string",
                    frames(t, &envelope(topic, "\"1\"", &good_payload)),
                    "field",
                ),
                (
                    "no version",
                    frames(t, &format!(r#"{{"topic":"{topic}","seq":1,"stamp_ns":2}}"#)),
                    "field",
                ),
                (
                    "negative seq",
                    frames(t, &good.replace(r#""seq":1"#, r#""seq":-1"#)),
                    "field",
                ),
                (
                    "no payload",
                    frames(
                        t,
                        &format!(r#"{{"topic":"{topic}","version":1,"seq":1,"stamp_ns":2}}"#),
                    ),
                    "field",
                ),
                (
                    "payload missing a field",
                    frames(t, &envelope(topic, "1", "{}")),
                    "schema",
                ),
                (
                    "payload null",
                    frames(t, &envelope(topic, "1", "null")),
                    "schema",
                ),
                (
                    "payload wrong types",
                    frames(t, &envelope(topic, "1", r#"{"frames":"many","t_ns":"x"}"#)),
                    "schema",
                ),
                (
                    // serde_json refuses numbers beyond f64 ("number out of range").
                    "huge exponent",
                    frames(t, &envelope(topic, "1", r#"{"pos_m":[1e999,0,0]}"#)),
                    "json",
                ),
            ];
            for (name, input, reason) in cases {
                let g = decoder(&input).expect_err(name);
                assert_eq!(g.reason(), reason, "{topic}: {name}: {g}");
                assert!(!g.to_string().is_empty());
            }
        }
    }

    #[test]
    fn compat_garbage_table() {
        type Parser = fn(&[u8]) -> Result<(), Garbage>;
        let parsers: [(&str, Parser); 3] = [
            ("detector", |b| parse_detector(b).map(drop)),
            ("set-points", |b| parse_set_points(b).map(drop)),
            ("pid-viz", |b| parse_pid_viz(b).map(drop)),
        ];
        let common: [(&str, &[u8], &str); 7] = [
            ("empty", b"", "json"),
            ("not UTF-8", &[0xff, 0x00, 0x7b], "json"),
            ("not JSON", b"pos=1,2,3", "json"),
            ("-inf from printf", br#"{"pos": [-inf, 0, 0]}"#, "json"),
            ("huge exponent", br#"{"pos": [1e999, 0, 0]}"#, "json"),
            ("array", b"[1, 2, 3]", "not_object"),
            ("empty object", b"{}", "field"),
        ];
        for (name, parser) in parsers {
            for (case, bytes, reason) in common {
                let g = parser(bytes).expect_err(case);
                assert_eq!(g.reason(), reason, "{name}: {case}: {g}");
            }
        }

        let detector: [(&[u8], Garbage); 6] = [
            (
                br#"{"angle": 1, "detect": true}"#,
                field_error("pos", "an array of 3 numbers", None),
            ),
            (
                br#"{"pos": [1, 2], "angle": 1, "detect": true}"#,
                Garbage::Field {
                    field: "pos",
                    expected: "an array of 3 numbers",
                    found: "an array of another length",
                },
            ),
            (
                br#"{"pos": [1, "2", 3], "angle": 1, "detect": true}"#,
                Garbage::Field {
                    field: "pos",
                    expected: "an array of 3 numbers",
                    found: "an array holding a non-number",
                },
            ),
            (
                br#"{"pos": [1, 2, 3], "angle": "north", "detect": true}"#,
                field_error("angle", "a number", Some(&json!("north"))),
            ),
            (
                br#"{"pos": [1, 2, 3], "angle": 1, "detect": 1}"#,
                field_error("detect", "a boolean", Some(&json!(1))),
            ),
            (
                br#"{"pos": [1, 2, 3], "angle": 1}"#,
                field_error("detect", "a boolean", None),
            ),
        ];
        for (bytes, expected) in detector {
            assert_eq!(parse_detector(bytes), Err(expected));
        }

        let set_points: [(&[u8], &str); 6] = [
            (br#"{"version": 2, "set-points": {}}"#, "version"),
            (br#"{"set-points": {}}"#, "field"),
            (br#"{"version": 1}"#, "field"),
            (br#"{"version": 1, "set-points": [0, 0]}"#, "field"),
            (br#"{"version": 1, "set-points": {"roll": null}}"#, "field"),
            (br#"{"version": 1, "set-points": {"yaw": "90"}}"#, "field"),
        ];
        for (bytes, reason) in set_points {
            let g = parse_set_points(bytes).expect_err("bad set-points");
            assert_eq!(g.reason(), reason, "{g}");
        }
        assert_eq!(
            parse_set_points(br#"{"version": 1, "set-points": {"velocity": true}}"#),
            Err(field_error(
                "set-points.velocity",
                "a number",
                Some(&json!(true))
            ))
        );

        let pid_ok =
            r#"{"name": "roll", "data": {"P": 1, "I": 0, "D": 0, "E": 0, "SP": 0, "OUT": 1}}"#;
        assert!(parse_pid_viz(pid_ok.as_bytes()).is_ok());
        // The 2013 `PID` class has no OUT.
        let no_out = pid_ok.replace(r#", "OUT": 1"#, "");
        assert_eq!(
            parse_pid_viz(no_out.as_bytes()),
            Err(field_error("data.OUT", "a number", None))
        );
        let no_name = pid_ok.replace(r#""name": "roll""#, r#""name": 3"#);
        assert_eq!(
            parse_pid_viz(no_name.as_bytes()).map_err(|g| g.reason()),
            Err("field")
        );
    }

    #[test]
    fn garbage_display_names_the_problem() {
        assert_eq!(
            Garbage::Frames { got: 3 }.to_string(),
            "expected 2 frames (topic, envelope), got 3"
        );
        assert_eq!(
            Garbage::Version { got: 2 }.to_string(),
            "version 2 is not supported (supported: 1)"
        );
        assert_eq!(
            field_error("pos", "an array of 3 numbers", Some(&json!("x"))).to_string(),
            "field `pos` is a string, expected an array of 3 numbers"
        );
        assert_eq!(
            Garbage::NonFinite { field: "yaw_rad" }.to_string(),
            "`yaw_rad` is not finite"
        );
    }

    #[test]
    fn long_topics_are_clipped() {
        let long = "é".repeat(300);
        let g = decode::<TruthMsg>(TOPIC_TRUTH, &frames(long.as_bytes(), "{}")).expect_err("topic");
        let Garbage::UnexpectedTopic { got, .. } = g else {
            panic!("{g:?}");
        };
        assert!(got.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
    }

    #[test]
    fn garbage_counts_count_and_merge() {
        let mut a = GarbageCounts::default();
        a.count(TOPIC_TRUTH, &Garbage::Frames { got: 1 });
        a.count(TOPIC_TRUTH, &Garbage::TopicUtf8);
        let mut b = GarbageCounts::default();
        b.count(TOPIC_MEASUREMENT, &Garbage::NonFinite { field: "pos_m" });
        b.count(TOPIC_TRUTH, &Garbage::Frames { got: 0 });
        assert_eq!(a.total, 2);
        assert_eq!(
            a.last.as_deref(),
            Some("sim/truth: topic frame is not UTF-8")
        );
        a.merge(&b);
        assert_eq!(a.total, 4);
        assert_eq!(a.by_topic[TOPIC_TRUTH], 3);
        assert_eq!(a.by_topic[TOPIC_MEASUREMENT], 1);
        assert_eq!(a.by_reason["frames"], 2);
        assert_eq!(a.by_reason["utf8"], 1);
        assert_eq!(a.by_reason["non_finite"], 1);
        assert_eq!(
            a.last.as_deref(),
            Some("sim/truth: expected 2 frames (topic, envelope), got 0")
        );
        let before = a.clone();
        a.merge(&GarbageCounts::default());
        assert_eq!(a, before, "merging nothing changes nothing");
    }

    #[test]
    fn seq_tracker_counts_gaps() {
        let mut s = SeqTracker::default();
        for seq in [1, 2, 5, 6, 10] {
            s.observe(seq);
        }
        assert_eq!((s.received, s.gaps, s.missed, s.restarts), (5, 2, 5, 0));
        assert_eq!(s.last(), Some(10));
    }

    #[test]
    fn seq_tracker_counts_restarts() {
        let mut s = SeqTracker::default();
        for seq in [100, 101, 0, 1, 2, 2, 3] {
            s.observe(seq);
        }
        assert_eq!((s.received, s.gaps, s.missed, s.restarts), (7, 0, 0, 2));
        s.observe(u64::MAX);
        s.observe(u64::MAX);
        assert_eq!(s.restarts, 3);
        assert_eq!(s.gaps, 1);
    }

    /// Runs every decoder on `input`, counting failures; returns how many failed.
    fn feed_all(input: &[Vec<u8>], counts: &mut GarbageCounts) -> u64 {
        let mut failures = 0;
        for (topic, decoder) in envelope_decoders() {
            if let Err(g) = decoder(input) {
                counts.count(topic, &g);
                failures += 1;
            }
        }
        for frame in input {
            let results = [
                ("detector", parse_detector(frame).map(drop)),
                ("set-points", parse_set_points(frame).map(drop)),
                ("pid-viz", parse_pid_viz(frame).map(drop)),
            ];
            for (topic, result) in results {
                if let Err(g) = result {
                    counts.count(topic, &g);
                    failures += 1;
                }
            }
        }
        failures
    }

    proptest! {
        /// Arbitrary byte frames never panic a decoder, and every failure is counted once.
        #[test]
        fn arbitrary_frames_never_panic(
            input in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4),
        ) {
            let mut counts = GarbageCounts::default();
            let failures = feed_all(&input, &mut counts);
            prop_assert_eq!(counts.total, failures);
            prop_assert_eq!(counts.by_reason.values().sum::<u64>(), failures);
        }

        /// JSON-looking bodies behind a valid topic never panic a decoder either.
        #[test]
        fn json_like_bodies_never_panic(
            topic in prop::sample::select(vec![TOPIC_TRUTH, TOPIC_MEASUREMENT, TOPIC_VISION_STATUS]),
            body in r#"\{("(topic|version|seq|stamp_ns|payload|pos|angle|detect|set-points|name|data|roll)":(1|2|-1|1e999|0.5|"sim/truth"|true|null|\[1,2,3\]|\{\}),?){0,6}\}"#,
        ) {
            let input = frames(topic.as_bytes(), &body);
            let mut counts = GarbageCounts::default();
            let failures = feed_all(&input, &mut counts);
            prop_assert_eq!(counts.total, failures);
        }

        /// Finite measurements survive encode/decode unchanged.
        #[test]
        fn measurements_round_trip(
            seq in any::<u64>(),
            capture_ns in any::<u64>(),
            pos in prop::array::uniform3(any::<i16>()),
            yaw in prop::option::of(any::<i16>()),
        ) {
            let m = MeasurementMsg {
                capture_ns,
                available_ns: capture_ns.saturating_add(1),
                seq,
                pos_m: pos.map(|p| f64::from(p) / 64.0),
                yaw_rad: yaw.map(|y| f64::from(y) / 1024.0),
            };
            let env = decode_measurement(&encode(TOPIC_MEASUREMENT, seq, capture_ns, &m));
            prop_assert_eq!(env.map(|e| e.payload), Ok(m));
        }
    }
}
