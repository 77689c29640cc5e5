//! The I/O edge of depthpilot: where the pure components meet sockets and devices.
//!
//! In scope now: the teacher input that speaks the Crazyflie client's ZMQ input-device protocol
//! (a PULL socket, JSON messages, latched values); the radio actor (one Crazyflie link of any
//! backend, on its own actix thread); and the real-time flight against a remote plant (a
//! `depthpilot sitl` over CRTP/UDP); and the flight recorder (MCAP files, and their reader).
//! The other actors and the ZMQ bus arrive with the runtime issue.

pub mod actors;
pub mod bus;
pub mod clock;
pub mod gamepad;
pub mod radio_actor;
pub mod recorder;
pub mod remote;
pub mod zmq_client;
pub mod zmq_teacher;

pub use clock::{ClockMode, RealtimeReport, fly_actors};
pub use gamepad::GamepadTeacher;
pub use radio_actor::{Radio, RadioActor, RadioCommand, RadioStats};
pub use recorder::{
    FlightClock, FlightHeader, ReadError, RecordedMessage, Recorder, RecorderError,
    RecorderOptions, Recording, read_recording,
};
pub use remote::{RemoteError, fly_remote};
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
    #[error("ZMQ socket error: {0}")]
    Zmq(#[from] zmq::Error),
    #[error("no gamepad connected (the gamepad library sees none{})", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    NoGamepad { detail: Option<String> },
}
