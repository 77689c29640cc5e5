//! CRTP, the Crazyflie's packet protocol: the header, the raw packet, and a typed codec for every
//! port that depthpilot speaks, in both directions.
//!
//! In scope: byte-exact encoding and decoding of the messages cflib 0.1.34 and crazyflie-lib 0.8.2
//! send to a Crazyflie ([`Uplink`]) and of the replies the firmware sends back ([`Downlink`]):
//! console (port 0), parameters (2), legacy commander (3), memory (4), log (5), localization (6),
//! generic setpoints (7), supervisor (9), platform (13) and link service (15). Ports we do not
//! model (1, 8 high-level commander, 10–12, 14 debug) pass through untouched as `Other(Packet)`.
//!
//! Out of scope: any transport (radio, UDP, Safelink counters) — those live in
//! `depthpilot-radio` — and any behaviour (TOC contents, CRCs, log timers): a simulated Crazyflie
//! builds on this codec.
//!
//! Contract:
//! - `Uplink::decode` / `Downlink::decode` take a [`Packet`] (link bits already masked by
//!   [`Packet::decode`]) and return a typed message or a typed [`CrtpError`]; they never panic.
//! - `to_packet` is **fallible** (`Result<Packet, CrtpError>`): message fields are public, so a
//!   message built by hand can be too long for 30 bytes, hold a NUL in a name, or a non-finite
//!   setpoint. Everything `decode` returns re-encodes without error and decodes back to itself
//!   (property-tested and fuzzed). `decode(to_packet(x)) == x` for every message except two
//!   documented wire facts: an `Other` built for a modelled port re-decodes as the typed variant,
//!   and a TOC out-of-range reply (`item: None`) carries no id, so it decodes with `id: 0`.
//! - Little-endian throughout; floats are `f32` exactly as on the wire (degrees, deg/s, metres
//!   where the firmware uses them: the SI/right-handed conversion exists only in
//!   [`RpytSetpoint::from_command`] / [`RpytSetpoint::to_command`]).
//!
//! Facts: `reference/protocols.md` §2, §3.3, and the Bitcraze sources each module names.

mod commander;
mod console;
mod generic;
mod header;
mod link;
mod localization;
mod log;
mod mem;
mod message;
mod packet;
mod param;
mod platform;
mod supervisor;
mod toc;
mod wire;

#[cfg(test)]
mod arb;

pub use commander::{FULL_SCALE_THRUST, RpytSetpoint};
pub use generic::{FullStateSetpoint, GenericSetpoint, MAX_CPPM_AUX_CHANNELS, MetaCommand};
pub use header::{Header, Port, header_byte};
pub use link::{LinkReply, LinkRequest, SOURCE_BANNER};
pub use localization::{LocalizationPacket, LocalizationReply};
pub use log::{LogReply, LogRequest, LogVarSpec, MAX_LOG_TIMESTAMP_MS};
pub use mem::{MemReply, MemRequest};
pub use message::{Downlink, Uplink};
pub use packet::{MAX_DATA, Packet};
pub use param::{ParamMisc, ParamReply, ParamRequest};
pub use platform::{PlatformReply, PlatformRequest};
pub use supervisor::{SupervisorCommand, SupervisorReply, SupervisorState};
pub use toc::{
    PARAM_FLAG_CORE, PARAM_FLAG_EXTENDED, PARAM_FLAG_READ_ONLY, TocItem, TocKind, ValueType,
};

/// A packet could not be decoded or encoded. Never a panic: every byte string maps to a packet
/// or to this.
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
    #[error("payload of {got} bytes, expected at least {expected_at_least}")]
    TooShort {
        expected_at_least: usize,
        got: usize,
    },
    #[error("unknown command {command:#04x} on port {port} channel {channel}")]
    UnknownCommand { port: u8, channel: u8, command: u8 },
    #[error("channel {channel} of port {port} carries nothing in this direction")]
    UnknownChannel { port: u8, channel: u8 },
    #[error("string `{field}` is not NUL-free UTF-8 terminated where the wire needs it")]
    BadString { field: &'static str },
    #[error("field `{field}` is out of its wire range")]
    OutOfRange { field: &'static str },
}
