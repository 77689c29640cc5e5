//! CRTP, the Crazyflie's packet protocol: header codec and the packets depthpilot speaks.
//!
//! In scope now: the header (port, channel, link bits) and the legacy commander packet
//! (port 3, channel 0: roll/pitch/yaw-rate/thrust). The rest of the ports arrive with the
//! CRTP/SITL work. Out of scope: any transport (radio, UDP) — those live in `depthpilot-radio`.
//!
//! This crate is the only place where depthpilot's right-handed SI commands meet the wire's
//! degrees, deg/s, raw u16 thrust, the negated pitch that cflib puts on the wire and the
//! inverted legacy yaw rate. Facts: `reference/protocols.md` §2.1, §2.3.

mod commander;
mod header;
mod packet;

pub use commander::{FULL_SCALE_THRUST, RpytSetpoint};
pub use header::{Header, Port, header_byte};
pub use packet::{MAX_DATA, Packet};

/// A packet could not be decoded. Never a panic: every byte string maps to a packet or to this.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CrtpError {
    #[error("empty packet (no header byte)")]
    Empty,
    #[error(
        "packet for port {got_port} channel {got_channel}, expected port {expected_port} channel {expected_channel}"
    )]
    WrongPort {
        expected_port: u8,
        expected_channel: u8,
        got_port: u8,
        got_channel: u8,
    },
    #[error("payload of {got} bytes, expected {expected}")]
    BadLength { expected: usize, got: usize },
    #[error("field `{field}` is not a finite number")]
    NonFinite { field: &'static str },
    #[error("packet of {got} data bytes; CRTP allows at most 30")]
    TooLong { got: usize },
    #[error("invalid header: port {port} channel {channel} (port 0-15, channel 0-3)")]
    BadHeader { port: u8, channel: u8 },
}
