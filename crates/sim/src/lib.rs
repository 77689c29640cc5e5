//! The simulated world: a Crazyflie 2.x in rapier3d, the oracle sensor, the synthetic Kinect,
//! the simulated radio link, disturbances, the realism layer, and the inline runner that flies a
//! scene. The firmware the simulated Crazyflie runs is its own crate, `depthpilot-firmware`
//! (the Crazyflie's code, not the simulator's); the plant feeds it sensor samples and reads its
//! motor commands.
//!
//! In scope: physics (rigid body, motor lag, thrust/torque maps, rotor drag, ground effect,
//! contacts), sensing with noise/latency/drops, and the deterministic fixed-step loop.
//! Out of scope: the firmware (`depthpilot-firmware`), rendering, actors and real-time pacing
//! (the runtime crate), real hardware.

pub mod batch;
pub mod delay;
pub mod disturbance;
pub mod faults;
pub mod kinect;
pub mod kinect_errors;
pub mod kinect_pipeline;
pub mod link;
pub mod noise;
pub mod offboard;
pub mod plant;
pub mod quad;
pub mod realism;
pub use depthpilot_types::rot;
pub mod runner;
pub mod sensor;
pub mod trajectory;
pub mod world;

pub use depthpilot_firmware::{
    FwSetpoint, NavSample, ParamError, ParamSpec, ParamType, Situation, StateEstimate,
    firmware_params,
};
pub use offboard::OffBoard;
pub use plant::Plant;
pub use runner::{
    LogRow, LogSink, NoLog, NoProbe, Probe, SimError, Stage, StepResponse, Summary,
    camera_thread_pays, fly, run, set_camera_thread,
};
pub use world::{BareMode, BareWorld};
