//! The teacher/student input mux of the Crazyflie client, made safer.
//!
//! In scope: per-axis source selection between a teacher (a person, or a script) and a student
//! (the autopilot) with the client's presets — Normal, Teacher (RP), Teacher (RPYT) — plus the 2015
//! Mix mode and a custom per-axis map; momentary take-over while the teacher holds `muxswitch`;
//! e-stop from the teacher, latched; bumpless transfer (slew-limited at a switch); staleness (an
//! input older than a limit is lost; the client flies the last value forever); output limits; and
//! the client's units (degrees, deg/s, thrust percent → raw `65000·pct/100`) at the input boundary.
//!
//! Out of scope: where inputs come from (ZMQ, gamepads, scripts live in the runtime and the
//! scene), and the wire (`depthpilot-crtp`). Pure: time arrives as `now_ns`.

mod client_json;
mod frame;
pub mod gamepad;
mod mux;

pub use client_json::{ClientInput, InputError, MAX_MESSAGE_BYTES};
pub use frame::{InputFrame, percent_to_raw};
pub use gamepad::{GamepadMapping, MappingError};
pub use mux::{Axis, Mux, MuxConfig, MuxMode, MuxOutput, Source};
