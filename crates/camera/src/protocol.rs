//! The Kinect bridge's frame protocol, version 1: how the acquisition bridge
//! (`hil/kinect_bridge/kinect_bridge.py`) writes depth frames and how we read them. The same
//! text for the bridge's side is `hil/PROTOCOL.md`.
//!
//! One ZMQ multipart message per frame, on a PUB socket that the bridge binds
//! ([`DEFAULT_BRIDGE_BIND`]); receivers connect a SUB and subscribe to [`TOPIC_PREFIX`]:
//!
//! | part | content |
//! |---|---|
//! | 0 | topic [`TOPIC_FRAME`] |
//! | 1 | JSON header: the fields of [`FrameHeader`] plus `"version": 1`, `"depth_format": "u16_mm_le"` and `"ir": bool` |
//! | 2 | depth: 512 × 424 little-endian u16, millimetres, row-major, 0 = invalid |
//! | 3 | only when `"ir": true`: IR amplitude, 512 × 424 little-endian u16 |
//!
//! A bridge may also publish [`TOPIC_STATUS`]: `[topic, {"version": 1, "state": …, "message": …}]`
//! ([`StatusMsg`]).
//!
//! [`encode_frame`], [`encode_status`] and [`decode`] are the only entry points. Nothing here
//! panics on input: every bad message is a [`FrameError`] that says what was wrong, with a stable
//! [`reason`](FrameError::reason) key for counting. Unknown header fields are ignored (a bridge
//! may add diagnostics); a change to the meaning or layout of a field takes a new version, and a
//! receiver rejects every version but its own.

use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{DepthFrame, HEIGHT, WIDTH};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this build writes and accepts.
pub const PROTOCOL_VERSION: u32 = 1;
/// What a receiver subscribes to.
pub const TOPIC_PREFIX: &str = "kinect/";
/// A depth (and IR) frame.
pub const TOPIC_FRAME: &str = "kinect/frame";
/// The bridge's state: [`StatusMsg`].
pub const TOPIC_STATUS: &str = "kinect/status";
/// The only depth encoding of version 1: little-endian u16 millimetres, 0 = invalid.
pub const DEPTH_FORMAT: &str = "u16_mm_le";
/// Where the bridge binds by default: loopback (issue 20); another host tunnels, or the bridge
/// binds elsewhere with `--insecure`.
pub const DEFAULT_BRIDGE_BIND: &str = "tcp://127.0.0.1:7720";
/// Where a receiver on the same machine connects by default.
pub const DEFAULT_BRIDGE_CONNECT: &str = "tcp://127.0.0.1:7720";
/// Bytes of one depth or IR image: 512 × 424 × 2.
pub const IMAGE_BYTES: usize = WIDTH * HEIGHT * 2;

/// Longest text taken from a message into a [`FrameError`] (bytes).
const MAX_TEXT_BYTES: usize = 200;
/// Longest status message kept (bytes).
const MAX_STATUS_BYTES: usize = 1000;

/// The per-frame fields of the JSON header. `version`, `depth_format` and `ir` are not here:
/// [`encode_frame`] writes them (`ir` from whether an IR image is given) and [`decode`] checks
/// them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameHeader {
    /// The device's frame counter (libfreenect2 `Frame::sequence`); +1 per frame, a jump means
    /// frames were lost on the way.
    pub seq: u64,
    /// Device timestamp (µs, device clock, as the device gives it).
    pub device_stamp_us: u64,
    /// Bridge host clock when the frame came from the device (ns since the Unix epoch).
    pub host_stamp_ns: u64,
    /// Pixels; version 1 accepts only 512.
    pub width: u32,
    /// Pixels; version 1 accepts only 424.
    pub height: u32,
    /// The device's factory IR/depth intrinsics (libfreenect2 `getIrCameraParams`).
    pub intrinsics: Intrinsics,
    /// Device serial number; may be empty.
    pub serial: String,
}

impl FrameHeader {
    /// A 512 × 424 header with an empty serial.
    pub fn kinect_v2(
        seq: u64,
        device_stamp_us: u64,
        host_stamp_ns: u64,
        intrinsics: Intrinsics,
    ) -> Self {
        Self {
            seq,
            device_stamp_us,
            host_stamp_ns,
            width: WIDTH as u32,
            height: HEIGHT as u32,
            intrinsics,
            serial: String::new(),
        }
    }
}

/// A decoded, validated frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedFrame {
    pub header: FrameHeader,
    /// `stamp_ns` = `device_stamp_us` × 1000 (device clock), `seq` from the header.
    pub frame: DepthFrame,
    /// The same as `header.intrinsics` (validated: fx, fy finite and positive, the rest finite).
    pub intrinsics: Intrinsics,
}

/// What the bridge says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeState {
    /// Frames are flowing.
    Streaming,
    /// The device is open but no frame came for a while (1 s in our bridge).
    Stalled,
    /// No Kinect v2 found (the bridge exits).
    NoDevice,
    /// Anything else; the message says what.
    Error,
}

/// A [`TOPIC_STATUS`] message (its `version` is checked by [`decode`] and written by
/// [`encode_status`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMsg {
    pub state: BridgeState,
    /// For people; clipped to 1000 bytes when decoded.
    pub message: String,
}

/// Anything a bridge publishes.
#[derive(Clone, Debug, PartialEq)]
pub enum BridgeMessage {
    Frame(Box<ReceivedFrame>),
    Status(StatusMsg),
}

/// Why a message was dropped. Text taken from the message is clipped to 200 bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("empty message (no parts, not even a topic)")]
    Empty,
    #[error("{layout} has {expected} parts, got {got}")]
    Parts {
        layout: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("the topic part is not UTF-8")]
    TopicUtf8,
    #[error("unknown topic `{topic}` (this receiver knows `{TOPIC_FRAME}` and `{TOPIC_STATUS}`)")]
    UnknownTopic { topic: String },
    #[error("the {part} is not UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        part: &'static str,
        valid_up_to: usize,
    },
    #[error("the {part} is not JSON: {message}")]
    Json { part: &'static str, message: String },
    #[error("the {part} is {found}, expected a JSON object")]
    NotObject {
        part: &'static str,
        found: &'static str,
    },
    #[error(
        "unsupported {part} version: got {found}, this receiver supports version \
         {PROTOCOL_VERSION} only"
    )]
    Version { part: &'static str, found: String },
    #[error("the {part} does not match protocol version {PROTOCOL_VERSION}: {message}")]
    Schema { part: &'static str, message: String },
    #[error(
        "the frame is {width}×{height}; only the Kinect v2 depth size {WIDTH}×{HEIGHT} is accepted"
    )]
    Geometry { width: u32, height: u32 },
    #[error(
        "depth_format `{found}` is not supported (protocol version {PROTOCOL_VERSION} has only \
         `{DEPTH_FORMAT}`)"
    )]
    DepthFormat { found: String },
    #[error("intrinsics.{field} = {value} is not usable: it must be {rule}")]
    Intrinsics {
        field: &'static str,
        value: f64,
        rule: &'static str,
    },
    #[error("{part} is {got} bytes, expected {WIDTH}×{HEIGHT}×2 = {IMAGE_BYTES}")]
    ImageSize { part: &'static str, got: usize },
}

impl FrameError {
    /// A short key that does not change between releases, for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Empty | FrameError::Parts { .. } => "parts",
            FrameError::TopicUtf8 => "topic_utf8",
            FrameError::UnknownTopic { .. } => "topic",
            FrameError::NotUtf8 { .. } => "utf8",
            FrameError::Json { .. } => "json",
            FrameError::NotObject { .. } => "not_object",
            FrameError::Version { .. } => "version",
            FrameError::Schema { .. } => "schema",
            FrameError::Geometry { .. } => "geometry",
            FrameError::DepthFormat { .. } => "depth_format",
            FrameError::Intrinsics { .. } => "intrinsics",
            FrameError::ImageSize { .. } => "size",
        }
    }
}

/// The header as written: [`FrameHeader`] plus the fixed fields, in the documented order.
#[derive(Serialize)]
struct HeaderOut<'a> {
    version: u32,
    seq: u64,
    device_stamp_us: u64,
    host_stamp_ns: u64,
    width: u32,
    height: u32,
    depth_format: &'static str,
    ir: bool,
    intrinsics: &'a Intrinsics,
    serial: &'a str,
}

/// The header as read, before validation (unknown fields are ignored).
#[derive(Deserialize)]
struct HeaderIn {
    seq: u64,
    device_stamp_us: u64,
    host_stamp_ns: u64,
    width: u32,
    height: u32,
    depth_format: String,
    ir: bool,
    intrinsics: IntrinsicsIn,
    serial: String,
}

/// Plain numbers, checked by [`validate_intrinsics`] so that the error names the field.
#[derive(Deserialize)]
struct IntrinsicsIn {
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
    k1: f64,
    k2: f64,
    k3: f64,
    p1: f64,
    p2: f64,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    version: u32,
    state: BridgeState,
    message: &'a str,
}

/// The parts of one frame message: `[topic, header, depth]`, plus `IR` when `ir` is given.
///
/// Writes what it is given: a receiver checks sizes and values (a fake bridge uses this to send
/// wrong frames on purpose). Intrinsics that are not finite are written as `null` by serde_json,
/// which every receiver rejects.
pub fn encode_frame(header: &FrameHeader, depth_mm: &[u16], ir: Option<&[u16]>) -> Vec<Vec<u8>> {
    let out = HeaderOut {
        version: PROTOCOL_VERSION,
        seq: header.seq,
        device_stamp_us: header.device_stamp_us,
        host_stamp_ns: header.host_stamp_ns,
        width: header.width,
        height: header.height,
        depth_format: DEPTH_FORMAT,
        ir: ir.is_some(),
        intrinsics: &header.intrinsics,
        serial: &header.serial,
    };
    let mut parts = Vec::with_capacity(4);
    parts.push(TOPIC_FRAME.as_bytes().to_vec());
    parts.push(serde_json::to_vec(&out).unwrap_or_default());
    parts.push(le_bytes(depth_mm));
    if let Some(ir) = ir {
        parts.push(le_bytes(ir));
    }
    parts
}

/// The parts of a status message: `[topic, JSON]`.
pub fn encode_status(status: &StatusMsg) -> Vec<Vec<u8>> {
    let out = StatusOut {
        version: PROTOCOL_VERSION,
        state: status.state,
        message: &status.message,
    };
    vec![
        TOPIC_STATUS.as_bytes().to_vec(),
        serde_json::to_vec(&out).unwrap_or_default(),
    ]
}

/// Reads one multipart message. Checks, in order: a topic part (UTF-8, known); for a frame:
/// the header part (UTF-8, JSON object, version, fields, geometry, depth format, intrinsics),
/// the number of parts for its `ir` flag, then the image sizes.
pub fn decode(parts: &[Vec<u8>]) -> Result<BridgeMessage, FrameError> {
    let Some(topic) = parts.first() else {
        return Err(FrameError::Empty);
    };
    let topic = std::str::from_utf8(topic).map_err(|_| FrameError::TopicUtf8)?;
    match topic {
        TOPIC_FRAME => decode_frame(parts).map(|f| BridgeMessage::Frame(Box::new(f))),
        TOPIC_STATUS => decode_status(parts).map(BridgeMessage::Status),
        other => Err(FrameError::UnknownTopic { topic: clip(other) }),
    }
}

fn decode_frame(parts: &[Vec<u8>]) -> Result<ReceivedFrame, FrameError> {
    const PART: &str = "header";
    let Some(header_bytes) = parts.get(1) else {
        return Err(FrameError::Parts {
            layout: "a `kinect/frame` message (topic, header, depth[, IR])",
            expected: "3 or 4",
            got: parts.len(),
        });
    };
    let obj = parse_object(header_bytes, PART)?;
    check_version(&obj, PART)?;
    let h: HeaderIn =
        serde_json::from_value(Value::Object(obj)).map_err(|e| FrameError::Schema {
            part: PART,
            message: clip(&e.to_string()),
        })?;
    if h.width as usize != WIDTH || h.height as usize != HEIGHT {
        return Err(FrameError::Geometry {
            width: h.width,
            height: h.height,
        });
    }
    if h.depth_format != DEPTH_FORMAT {
        return Err(FrameError::DepthFormat {
            found: clip(&h.depth_format),
        });
    }
    let intrinsics = validate_intrinsics(&h.intrinsics)?;
    let (expected, layout) = if h.ir {
        (
            4,
            "a `kinect/frame` message with \"ir\": true (topic, header, depth, IR)",
        )
    } else {
        (
            3,
            "a `kinect/frame` message with \"ir\": false (topic, header, depth)",
        )
    };
    if parts.len() != expected {
        return Err(FrameError::Parts {
            layout,
            expected: if h.ir { "4" } else { "3" },
            got: parts.len(),
        });
    }
    let depth_mm = image(&parts[2], "depth")?;
    let ir = if h.ir {
        Some(image(&parts[3], "IR")?)
    } else {
        None
    };
    let frame = DepthFrame {
        stamp_ns: h.device_stamp_us.saturating_mul(1000),
        seq: h.seq,
        width: WIDTH,
        height: HEIGHT,
        depth_mm,
        ir,
    };
    let header = FrameHeader {
        seq: h.seq,
        device_stamp_us: h.device_stamp_us,
        host_stamp_ns: h.host_stamp_ns,
        width: h.width,
        height: h.height,
        intrinsics,
        serial: clip(&h.serial),
    };
    Ok(ReceivedFrame {
        header,
        frame,
        intrinsics,
    })
}

fn decode_status(parts: &[Vec<u8>]) -> Result<StatusMsg, FrameError> {
    const PART: &str = "status";
    let [_, body] = parts else {
        return Err(FrameError::Parts {
            layout: "a `kinect/status` message (topic, status)",
            expected: "2",
            got: parts.len(),
        });
    };
    let obj = parse_object(body, PART)?;
    check_version(&obj, PART)?;
    let mut status: StatusMsg =
        serde_json::from_value(Value::Object(obj)).map_err(|e| FrameError::Schema {
            part: PART,
            message: clip(&e.to_string()),
        })?;
    status.message = clip_to(&status.message, MAX_STATUS_BYTES);
    Ok(status)
}

fn parse_object(bytes: &[u8], part: &'static str) -> Result<Map<String, Value>, FrameError> {
    let text = std::str::from_utf8(bytes).map_err(|e| FrameError::NotUtf8 {
        part,
        valid_up_to: e.valid_up_to(),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError::Json {
        part,
        message: clip(&e.to_string()),
    })?;
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(FrameError::NotObject {
            part,
            found: kind(&other),
        }),
    }
}

fn check_version(obj: &Map<String, Value>, part: &'static str) -> Result<(), FrameError> {
    match obj.get("version") {
        Some(v) if v.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => Ok(()),
        Some(v) => Err(FrameError::Version {
            part,
            found: clip(&v.to_string()),
        }),
        None => Err(FrameError::Version {
            part,
            found: "no `version` field".to_string(),
        }),
    }
}

fn validate_intrinsics(k: &IntrinsicsIn) -> Result<Intrinsics, FrameError> {
    for (field, value) in [("fx", k.fx), ("fy", k.fy)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(FrameError::Intrinsics {
                field,
                value,
                rule: "finite and positive",
            });
        }
    }
    let rest = [
        ("cx", k.cx),
        ("cy", k.cy),
        ("k1", k.k1),
        ("k2", k.k2),
        ("k3", k.k3),
        ("p1", k.p1),
        ("p2", k.p2),
    ];
    for (field, value) in rest {
        if !value.is_finite() {
            return Err(FrameError::Intrinsics {
                field,
                value,
                rule: "finite",
            });
        }
    }
    Ok(Intrinsics {
        fx: k.fx,
        fy: k.fy,
        cx: k.cx,
        cy: k.cy,
        k1: k.k1,
        k2: k.k2,
        k3: k.k3,
        p1: k.p1,
        p2: k.p2,
    })
}

fn image(bytes: &[u8], part: &'static str) -> Result<Vec<u16>, FrameError> {
    if bytes.len() != IMAGE_BYTES {
        return Err(FrameError::ImageSize {
            part,
            got: bytes.len(),
        });
    }
    let (pixels, _) = bytes.as_chunks::<2>();
    Ok(pixels.iter().map(|&p| u16::from_le_bytes(p)).collect())
}

fn le_bytes(values: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn clip(s: &str) -> String {
    clip_to(s, MAX_TEXT_BYTES)
}

/// `s`, cut to `max` bytes at a character boundary.
fn clip_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests;
