//! The real Kinect v2: depth frames from the acquisition bridge over ZMQ.
//!
//! The Kinect v2 is read by a separate program, the bridge (`hil/kinect_bridge/kinect_bridge.py`,
//! libfreenect2 through pylibfreenect2), which publishes every depth frame (512 × 424 u16 mm, plus
//! the IR image) with the device's own intrinsics on a ZMQ PUB socket (default `tcp://127.0.0.1:7720`).
//! This crate is the depthpilot end of that link.
//!
//! In scope: the frame protocol, version 1 ([`protocol`]: one encode and one decode entry point,
//! every bad message a named [`FrameError`]); the SUB client that the runtime polls, with garbage
//! counts, sequence gaps and the stale rule (100 ms without a frame; [`BridgeClient`],
//! [`BridgeReport`]); a PUB publisher for fake bridges and tests ([`BridgePublisher`]). The
//! protocol for the bridge's side is `hil/PROTOCOL.md`. Recorded camera sessions: frames and
//! detections in an MCAP file that survives a killed recorder ([`session`]: [`SessionWriter`],
//! [`read_session`]).
//!
//! Out of scope: the device itself (the Python bridge), detection (`depthpilot-vision`), and what
//! the runtime does with a frame or a stale camera (`depthpilot-runtime`, which depends on this
//! crate, never the reverse).

pub mod bridge;
pub mod protocol;
pub mod report;
pub mod session;

pub use bridge::{
    BridgeClient, BridgeConfig, BridgeError, BridgeEvent, BridgePublisher, CurveClientKeys,
    DEFAULT_RECONNECT_IVL, DEFAULT_STALE_AFTER,
};
pub use protocol::{
    BridgeMessage, BridgeState, DEFAULT_BRIDGE_BIND, DEFAULT_BRIDGE_CONNECT, FrameError,
    FrameHeader, PROTOCOL_VERSION, ReceivedFrame, StatusMsg, TOPIC_FRAME, TOPIC_STATUS, decode,
    encode_frame, encode_status,
};
pub use report::{BridgeReport, GarbageCounts, SeqTracker, StaleWatch};
pub use session::{
    DetectionRecord, FRAME_ENCODING, FrameRecordError, Session, SessionError, SessionHeader,
    SessionOptions, SessionStats, SessionWriter, TOPIC_SESSION_DETECTION, TOPIC_SESSION_FRAME,
    TOPIC_SESSION_HEADER, read_session,
};
