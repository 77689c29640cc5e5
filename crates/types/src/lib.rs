//! Shared vocabulary of depthpilot: small math types, the messages that flow between the
//! components of one control cycle, and the typed scene format (RON).
//!
//! In scope: plain data, units and frames, scene parsing and validation with errors that name the
//! file, line and field. Out of scope: any I/O beyond reading a scene file, any algorithm.
//!
//! Conventions (see README "Axes"): the world is right-handed with z up and the floor at z = 0;
//! the body frame is x forward, y left, z up. Angles are right-handed about those axes, in radians
//! inside the program: positive roll lowers the right side, positive pitch lowers the nose,
//! positive yaw turns left (counter-clockwise seen from above). Degrees, deg/s and raw thrust only
//! exist at the CRTP boundary (`depthpilot-crtp`) and in the human-facing scene file.

pub mod math;
pub mod messages;
pub mod netpolicy;
pub mod rig;
pub mod rot;
pub mod scene;

pub use math::Vec3;
pub use messages::{AttitudeCommand, Measurement, Setpoint};
pub use rig::Rig;
pub use rot::Rot;
pub use scene::{Scene, SceneError};
