//! The simulated world: a Crazyflie 2.x in rapier3d with a model of its firmware, the oracle
//! sensor, the simulated radio link, disturbances, and the inline runner that flies a scene.
//!
//! In scope: physics (rigid body, motor lag, thrust/torque maps, rotor drag, ground effect,
//! contacts), the firmware model (commander, watchdog, tumble cut-off, attitude and rate PIDs,
//! mixer), sensing with noise/latency/drops, and the deterministic fixed-step loop.
//! Out of scope: rendering, actors and real-time pacing (the runtime crate), real hardware.

pub mod batch;
pub mod delay;
pub mod disturbance;
pub mod faults;
pub mod firmware;
pub mod kinect;
pub mod link;
pub mod noise;
pub mod offboard;
pub mod plant;
pub mod quad;
pub use depthpilot_types::rot;
pub mod runner;
pub mod sensor;
pub mod trajectory;
pub mod world;

pub use firmware::{
    FwSetpoint, NavSample, ParamError, ParamSpec, ParamType, Situation, StateEstimate,
    firmware_params,
};
pub use offboard::OffBoard;
pub use plant::Plant;
pub use runner::{
    LogRow, LogSink, NoLog, NoProbe, Probe, SimError, Stage, StepResponse, Summary, fly, run,
};
pub use world::{BareMode, BareWorld};
