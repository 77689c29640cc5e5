//! Off-board flight controllers: from position measurements and a setpoint to the legacy
//! commander's roll / pitch / yaw-rate / thrust.
//!
//! In scope: a position/velocity estimator with latency compensation, the default cascade
//! controller with a loss-of-tracking supervisor, and the 2015 Bitcraze Kinect demo's PID
//! structure for comparison. Pure: no clocks (time arrives as `now_ns` / stamps), no I/O, and no
//! panics — a NaN or missing input yields a defined safe command.
//!
//! Out of scope: the on-board attitude/rate loops (the firmware model in `depthpilot-sim`), the
//! wire format (`depthpilot-crtp`).

mod bitcraze2015;
mod cascade;
mod estimator;
mod thrust;
pub mod tune;

pub use bitcraze2015::Bitcraze2015;
pub use cascade::{Cascade, SafetyState};
pub use estimator::{Estimate, Estimator};
pub use thrust::ThrustMap;

use depthpilot_types::scene::{ControllerConfig, ControllerKind};
use depthpilot_types::{AttitudeCommand, Measurement, Setpoint};

/// Standard gravity used by the controllers' models.
pub const GRAVITY_M_S2: f64 = 9.81;

/// One off-board controller. The runner calls [`Controller::measure`] whenever a measurement
/// arrives and [`Controller::command`] at the link rate.
pub trait Controller {
    fn name(&self) -> &'static str;
    /// The quad stands at a known spot (its marked start position) before any measurement.
    /// Controllers that can fly on prediction use it for a blind take-off into the sensor's view;
    /// the default ignores it.
    fn place(&mut self, _now_ns: u64, _pos_in_world_m: depthpilot_types::Vec3, _yaw_rad: f64) {}
    /// A measurement (captured at `m.stamp_ns`) arrived at `now_ns`.
    fn measure(&mut self, now_ns: u64, m: &Measurement);
    /// The command to send at `now_ns` to follow `sp`.
    fn command(&mut self, now_ns: u64, sp: &Setpoint) -> AttitudeCommand;
    /// The controller's current belief of the state, predicted to `now_ns`.
    fn estimate(&self, now_ns: u64) -> Option<Estimate>;
    /// What the safety logic is doing.
    fn safety(&self) -> SafetyState;
    /// The terms of each loop at the last command, for a PID visualisation (the 2015 demo's
    /// `{"name":…,"data":{"P","I","D","E","SP","OUT"}}`). Empty when the controller is not
    /// closing its loops (no measurement yet, holding, landing).
    fn pid_terms(&self) -> Vec<PidTerms> {
        Vec::new()
    }
}

/// One loop's terms: proportional, integral and derivative parts, the error, the set-point and
/// the output, in the loop's own units (named per controller).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PidTerms {
    pub name: &'static str,
    pub p: f64,
    pub i: f64,
    pub d: f64,
    pub e: f64,
    pub sp: f64,
    pub out: f64,
}

/// Builds the controller a scene asks for.
pub fn from_config(cfg: &ControllerConfig) -> Box<dyn Controller + Send> {
    match cfg.kind {
        ControllerKind::Cascade => Box::new(Cascade::new(cfg.cascade.clone())),
        ControllerKind::Bitcraze2015 => Box::new(Bitcraze2015::new(cfg.bitcraze2015.clone())),
    }
}
