//! The I/O edge of depthpilot: where the pure components meet sockets and devices.
//!
//! In scope now: the teacher input that speaks the Crazyflie client's ZMQ input-device protocol
//! (a PULL socket, JSON messages, latched values); the radio actor (one Crazyflie link of any
//! backend, on its own actix thread); and the real-time flight against a remote plant (a
//! `depthpilot sitl` over CRTP/UDP); and the flight recorder (MCAP files, and their reader).
//! The actors of a flight (`actors`), their clocks (`clock`: lockstep or real time), the ZMQ bus
//! (`bus`: envelopes, garbage counts, the 2015 demo's messages) and flights split over
//! processes (`split`).

pub mod actors;
pub mod bridge_curve;
pub mod bridge_vision;
pub mod bus;
pub mod clock;
pub mod curve;
pub mod fake_bridge;
pub mod flight_foxglove;
pub mod foxglove_messages;
pub mod gamepad;
pub mod netpolicy;
pub mod radio_actor;
pub mod recorder;
pub mod remote;
pub mod split;
pub mod zmq_client;
pub mod zmq_teacher;

pub use clock::{
    ClockMode, FlightExtras, RealtimeReport, VisionSource, fly_actors, fly_actors_with,
};
pub use gamepad::GamepadTeacher;
pub use radio_actor::{Radio, RadioActor, RadioCommand, RadioStats};
pub use recorder::{
    FlightClock, FlightHeader, ReadError, RecordedMessage, Recorder, RecorderError,
    RecorderOptions, Recording, read_recording,
};
pub use remote::{
    LiveTeacher, RemoteCamera, RemoteError, RemoteOptions, fly_remote, fly_remote_with,
};
pub use zmq_teacher::{TeacherStats, ZmqTeacher};

/// An endpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot bind ZMQ {kind} socket to `{endpoint}`: {source}")]
    Bind {
        kind: &'static str,
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    #[error("cannot connect ZMQ {kind} socket to `{endpoint}`: {source}")]
    Connect {
        kind: &'static str,
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    #[error(transparent)]
    Sim(#[from] depthpilot_sim::SimError),
    /// A non-loopback bind without `--insecure`, or an endpoint that is not one.
    #[error(transparent)]
    Policy(#[from] depthpilot_types::netpolicy::NetPolicyError),
    #[error("{0}")]
    Setup(String),
    #[error("ZMQ socket error: {0}")]
    Zmq(#[from] zmq::Error),
    #[error("no gamepad connected (the gamepad library sees none{})", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    NoGamepad { detail: Option<String> },
}
