//! The scene format: one RON file describes a whole flight (world, quad, sensing, link,
//! setpoints, disturbances, controller, duration). Every struct denies unknown fields, and every
//! number is checked while it is parsed, so an error names the file, line, column and field.
//!
//! Human-facing angles are in degrees (`_deg`, `_deg_s` suffixes); everything else is SI.

use crate::Vec3;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod realism;
mod validate;
pub use realism::{
    BATTERY_FULL_V, BATTERY_MIN_START_V, ITEM_NAMES as REALISM_ITEMS,
    KINECT_ITEMS as KINECT_REALISM_ITEMS, Realism, RealismPreset,
};
use validate::*;
pub use validate::{FIRMWARE_PARAMS, FirmwareParamKind, firmware_param_problem};

/// A scene could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("{file}: cannot read scene: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{col}: {message}{}", field_suffix(.field))]
    Parse {
        file: PathBuf,
        line: usize,
        col: usize,
        /// Dotted path of the offending field, e.g. `quad.mass_kg` (empty for syntax errors).
        field: String,
        message: String,
    },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

fn field_suffix(field: &str) -> String {
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!(" (field `{field}`)")
    }
}

/// A whole flight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    pub name: String,
    /// Simulated duration of the flight.
    #[serde(deserialize_with = "positive")]
    pub duration_s: f64,
    /// Errors are scored from this time on (take-off is not scored).
    #[serde(default = "default_settle_s", deserialize_with = "non_negative")]
    pub settle_s: f64,
    /// Seed of every random process of the flight (noise, gusts, drops).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub rates: Rates,
    #[serde(default)]
    pub world: WorldConfig,
    #[serde(default)]
    pub quad: QuadConfig,
    #[serde(default)]
    pub sensing: Sensing,
    #[serde(default)]
    pub link: LinkConfig,
    pub setpoints: Trajectory,
    #[serde(default)]
    pub disturbances: Disturbances,
    #[serde(default)]
    pub controller: ControllerConfig,
    /// A controller file (e.g. written by `depthpilot tune`), relative to the scene file; it
    /// replaces `controller`.
    #[serde(default)]
    pub controller_file: Option<String>,
    /// A teacher and the input mux (none: the autopilot flies alone, no mux).
    #[serde(default)]
    pub teacher: Option<TeacherConfig>,
    /// Per-seed variations for Monte Carlo batches (`depthpilot batch`).
    #[serde(default)]
    pub variations: Variations,
    /// Who closes the position loop: our controller sending roll / pitch / yaw-rate / thrust
    /// (`Offboard`, the 2015 demo), or the firmware's own estimator and position controller,
    /// fed the vision position as external position plus position setpoints (`Onboard`).
    #[serde(default)]
    pub architecture: crate::rig::Architecture,
    /// Packets the radio sends instead of the controller's, for firmware experiments (rate
    /// commands, silence, motors off). Each entry holds until the next. Empty: the controller
    /// flies.
    #[serde(default)]
    pub script: Vec<ScriptEntry>,
    /// Parameters of the simulated firmware set at boot, by `group.name`, e.g.
    /// `[("flightmode.stabModeRoll", 0.0)]` (names and types: `depthpilot_firmware::firmware_params`).
    #[serde(default)]
    pub firmware_params: Vec<(String, f64)>,
    /// Parameter writes during the flight, as a client's param write would make them (e.g. the
    /// alt-hold button of the 2015 cfclient writing `flightmode.althold`).
    #[serde(default)]
    pub param_writes: Vec<ParamWrite>,
    /// Faults of the running system: the bus between the vision and the controller, and peers
    /// that die and come back. (Camera faults are the camera's: `sensing`.)
    #[serde(default)]
    pub faults: Faults,
    /// The realism layer: `Ideal` (default), `Bench`, or a preset with per-item overrides
    /// (see [`Realism`]).
    #[serde(default)]
    pub realism: Realism,
}

/// Scripted faults of the running system (DESIGN §3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Extra delay on the bus from the vision to the controller, in windows.
    pub bus_latency: Vec<BusLatency>,
    /// Peers that die and (maybe) come back.
    pub peer_deaths: Vec<PeerDeath>,
}

/// A window of extra bus delay: each measurement sent in it waits `latency_s` plus a uniform
/// draw in [0, `jitter_s`) (seeded) more. Order is kept, as over TCP: a message never
/// overtakes the one before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusLatency {
    #[serde(deserialize_with = "non_negative")]
    pub start_s: f64,
    /// How long; `None` means for good.
    #[serde(default, deserialize_with = "optional_non_negative")]
    pub duration_s: Option<f64>,
    #[serde(default, deserialize_with = "non_negative")]
    pub latency_s: f64,
    #[serde(default, deserialize_with = "non_negative")]
    pub jitter_s: f64,
}

impl BusLatency {
    pub fn active(&self, t_s: f64) -> bool {
        t_s >= self.start_s && self.duration_s.is_none_or(|d| t_s < self.start_s + d)
    }
}

/// A peer of the off-board side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Peer {
    /// The vision process: no measurements while dead; what was in its pipeline is lost.
    Vision,
    /// The teacher's input device: no input frames while dead.
    Teacher,
}

/// A peer dies at `at_s` and is restarted `back_after_s` later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerDeath {
    pub peer: Peer,
    #[serde(deserialize_with = "non_negative")]
    pub at_s: f64,
    /// `None`: it stays dead.
    #[serde(default, deserialize_with = "optional_non_negative")]
    pub back_after_s: Option<f64>,
    /// Vision only: the restarted vision learns its background again instead of loading the one
    /// it saved (with the quad in view, the quad becomes part of the background).
    #[serde(default)]
    pub relearn_background: bool,
}

impl PeerDeath {
    pub fn dead(&self, t_s: f64) -> bool {
        t_s >= self.at_s && self.back_after_s.is_none_or(|d| t_s < self.at_s + d)
    }
}

/// One firmware parameter write at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamWrite {
    #[serde(deserialize_with = "non_negative")]
    pub t_s: f64,
    /// `group.name`.
    pub name: String,
    #[serde(deserialize_with = "finite")]
    pub value: f64,
}

/// One step of a packet script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptEntry {
    #[serde(deserialize_with = "non_negative")]
    pub t_s: f64,
    pub send: ScriptPacket,
}

/// What a script sends at the link rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ScriptPacket {
    /// The arguments of cflib's `commander.send_setpoint`: roll and pitch in degrees (cflib
    /// negates the pitch on the wire), yaw rate in deg/s as cflib passes it, raw thrust.
    Rpyt {
        roll_deg: f64,
        pitch_deg: f64,
        yaw_rate_deg_s: f64,
        thrust: u16,
    },
    /// Generic position setpoint (world frame, yaw in degrees).
    Position { position_m: Vec3, yaw_deg: f64 },
    /// Generic stop setpoint: motors off.
    Stop,
    /// Nothing at all (the firmware's watchdog takes over).
    Silence,
}

/// Ranges a batch draws from, per seed (uniformly). All zero: only the seed's noise and gusts
/// change between flights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Variations {
    /// Relative spread of the mass: ×(1 ± mass_rel).
    #[serde(deserialize_with = "probability")]
    pub mass_rel: f64,
    /// Relative spread of both motor time constants.
    #[serde(deserialize_with = "probability")]
    pub motor_tau_rel: f64,
    /// Extra sensor latency in [0, this].
    #[serde(deserialize_with = "non_negative")]
    pub latency_extra_s: f64,
}

fn default_settle_s() -> f64 {
    3.0
}

/// Loop rates. Physics must be an integer multiple of the firmware rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rates {
    #[serde(deserialize_with = "positive")]
    pub physics_hz: f64,
    #[serde(deserialize_with = "positive")]
    pub firmware_hz: f64,
    /// How often the flight log gets a row.
    #[serde(deserialize_with = "positive")]
    pub log_hz: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            physics_hz: 1000.0,
            firmware_hz: 500.0,
            log_hz: 100.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldConfig {
    pub floor: bool,
    pub ground_effect: bool,
    pub boxes: Vec<BoxConfig>,
    /// A contact faster than this is a crash.
    #[serde(deserialize_with = "positive")]
    pub crash_impact_speed_m_s: f64,
    /// A contact while tilted more than this is a crash.
    #[serde(deserialize_with = "positive")]
    pub crash_tilt_deg: f64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            floor: true,
            ground_effect: true,
            boxes: Vec::new(),
            crash_impact_speed_m_s: 1.0,
            crash_tilt_deg: 60.0,
        }
    }
}

/// A static box obstacle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxConfig {
    #[serde(deserialize_with = "finite_vec3")]
    pub center_m: Vec3,
    #[serde(deserialize_with = "positive_vec3")]
    pub half_extents_m: Vec3,
}

/// Airframe presets. Each field of [`QuadConfig`] given in a scene overrides the preset's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuadVariant {
    /// Crazyflie 2.0/2.1 with brushed motors (Förster's identification).
    #[default]
    Cf2x,
    /// The big quad: Crazyflie 2.1 Brushless (heavier frame, brushless motors, ESC idle thrust),
    /// after `platform_defaults_cf21bl.h` (bitcraze/crazyflie-firmware) and the `cf21B_500`
    /// entry of utiasDSL/drone-models `params.toml`.
    Cf21Brushless,
}

/// The firmware build the model behaves as: its era (which release of
/// bitcraze/crazyflie-firmware) and platform, hence its gains and its commander and supervisor
/// behaviour (see `docs/firmware-audit/`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirmwareGains {
    /// The pinned commit 2a18fc29 built for a CF2: `platform_defaults_cf2.h` gains, attitude and
    /// rate loops at 500 Hz; the supervisor state machine, auto-arming.
    #[default]
    Current,
    /// Release 2016.02 (the 2015 demo's firmware): 2016-03 `pid.h` gains, attitude loop at
    /// 250 Hz; no supervisor: the commander's watchdog cuts and re-locks the thrust after 2 s,
    /// no tumble detection.
    Era2015,
    /// The pinned commit 2a18fc29 built for the Crazyflie 2.1 Brushless:
    /// `platform_defaults_cf21bl.h` gains (softer roll/pitch rate loops, position controller
    /// base thrust 30000); the supervisor requires an arming request
    /// (`CONFIG_MOTORS_REQUIRE_ARMING`).
    Cf21Brushless,
}

/// Per-motor thrust as a function of the motor command (0..65535).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ThrustCurve {
    /// F [N] = a·PWM² + b·PWM + c (Förster 2015, brushed CF2.0).
    PwmQuadratic { a: f64, b: f64, c: f64 },
    /// F [N] = c0 + c1·v + c2·v² + c3·v³ with the motor voltage v = v_battery · PWM / 65535
    /// (the firmware's `VMOTOR2THRUST0..3` curves); v_battery is the battery's loaded terminal
    /// voltage at that instant (the realism item `battery`; off: an ideal source at
    /// `realism.battery_start_v`).
    VoltageCubic { c0: f64, c1: f64, c2: f64, c3: f64 },
}

impl ThrustCurve {
    /// Förster, "System Identification of the Crazyflie 2.0", 2015 (`reference/sim_vision.md`
    /// §1.2): thrust vs the motor command of a CF2.0 with the legacy propellers. Blind to the
    /// battery voltage; a scene may still choose it.
    pub const FORSTER: Self = Self::PwmQuadratic {
        a: 2.130295e-11,
        b: 1.032633e-6,
        c: 5.484560e-4,
    };
    /// CF2.1 with the 2.1+ propellers: `VMOTOR2THRUST0..3` of the default `CRAZYFLIE_21_PLUS`
    /// setup (`src/platform/interface/platform_defaults_cf2.h:69-72 @2a18fc29`).
    pub const CF21_PLUS_PROPS: Self = Self::VoltageCubic {
        c0: -0.02476537915958403,
        c1: 0.06523793527519485,
        c2: -0.026792504967750107,
        c3: 0.006776789303971145,
    };
    /// CF2.x with the legacy propellers (`platform_defaults_cf2.h:85-88 @2a18fc29`).
    pub const CF2_LEGACY_PROPS: Self = Self::VoltageCubic {
        c0: -0.014830744918356092,
        c1: 0.04724465241828281,
        c2: -0.01847364358025878,
        c3: 0.005960923942142,
    };
    /// Crazyflie 2.1 Brushless (`platform_defaults_cf21bl.h:68-71 @2a18fc29`).
    pub const CF21_BRUSHLESS: Self = Self::VoltageCubic {
        c0: -0.014058926705279723,
        c1: 0.04265273261724981,
        c2: 0.0018327760144017432,
        c3: 0.0020576974784587178,
    };
}

/// The airframe: mass, inertia, geometry, motors and the firmware build it runs. Start from
/// `variant`'s preset; every field a scene gives replaces the preset's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "QuadConfigFields")]
pub struct QuadConfig {
    pub variant: QuadVariant,
    pub mass_kg: f64,
    /// Principal moments of inertia about body x, y, z.
    pub inertia_kg_m2: Vec3,
    /// Centre to motor distance (X layout).
    pub arm_m: f64,
    /// First-order motor time constant when spinning up.
    pub motor_tau_up_s: f64,
    /// First-order motor time constant when spinning down.
    pub motor_tau_down_s: f64,
    /// Per-motor thrust for a motor command.
    pub thrust_curve: ThrustCurve,
    /// Rotor reaction torque per newton of thrust (the firmware's `THRUST2TORQUE`).
    pub torque_per_thrust_m: f64,
    /// Rotor speed Ω = offset + slope · PWM (for rotor drag).
    pub rotor_speed_offset_rad_s: f64,
    pub rotor_speed_per_pwm_rad_s: f64,
    /// Propeller radius (ground effect).
    pub prop_radius_m: f64,
    /// Position of the centre of mass at t = 0 (z = 0.015 m: resting on the floor).
    pub initial_position_m: Vec3,
    /// Heading at t = 0 (mirrors `initial_attitude_deg.z`).
    pub initial_yaw_deg: f64,
    /// Attitude at t = 0: roll, pitch, yaw (right-handed ZYX Euler angles; roll 180 = on its
    /// back). The plant takes roll and pitch from here and the yaw from `initial_yaw_deg`.
    pub initial_attitude_deg: Vec3,
    pub firmware_gains: FirmwareGains,
    /// Minimum motor command while the motors run (`CONFIG_MOTORS_DEFAULT_IDLE_THRUST`; 0 on a
    /// brushed CF2.x).
    pub idle_thrust: u16,
}

impl QuadConfig {
    /// The preset of a variant, resting level on the floor at the origin.
    pub fn preset(variant: QuadVariant) -> Self {
        match variant {
            QuadVariant::Cf2x => Self {
                variant,
                mass_kg: 0.027,
                inertia_kg_m2: Vec3::new(1.395e-5, 1.436e-5, 2.173e-5),
                arm_m: 0.046,
                motor_tau_up_s: 0.0125,
                motor_tau_down_s: 0.025,
                // The firmware's own identified law for the default build (2.1+ propellers),
                // the curve its battery compensation inverts. Förster's quadratic was the
                // plant's law before; it is `ThrustCurve::FORSTER` now.
                thrust_curve: ThrustCurve::CF21_PLUS_PROPS,
                torque_per_thrust_m: 0.005964552,
                rotor_speed_offset_rad_s: 380.8359,
                rotor_speed_per_pwm_rad_s: 0.04076521,
                prop_radius_m: 0.0231348,
                initial_position_m: Vec3::new(0.0, 0.0, 0.015),
                initial_yaw_deg: 0.0,
                initial_attitude_deg: Vec3::ZERO,
                firmware_gains: FirmwareGains::Current,
                idle_thrust: 0,
            },
            QuadVariant::Cf21Brushless => Self {
                variant,
                // `CF_MASS 0.0393f` (platform_defaults_cf21bl.h: with guards, 350 mAh battery and
                // Lighthouse deck).
                mass_kg: 0.0393,
                // drone-models `cf21B_500` J = diag(25, 28, 49)e-6 (identified at 43.4 g;
                // not rescaled).
                inertia_kg_m2: Vec3::new(25e-6, 28e-6, 49e-6),
                // `ARM_LENGTH 0.050f` (drone-models: L = 0.035355 = 0.050/√2).
                arm_m: 0.050,
                // UNVERIFIED: no identified value found (drone-models' `thrust_tau = 0.08` is
                // marked TODO); 30 ms, symmetric, is our estimate for an ESC-driven motor.
                motor_tau_up_s: 0.03,
                motor_tau_down_s: 0.03,
                // `VMOTOR2THRUST0..3` (platform_defaults_cf21bl.h), at the battery's terminal
                // voltage; the firmware compensates it.
                thrust_curve: ThrustCurve::CF21_BRUSHLESS,
                // `THRUST2TORQUE 0.00569278844371417f`.
                torque_per_thrust_m: 0.00569278844371417,
                // drone-models `vmotor2rpm = [4304.9, 3948.96]` (rpm = a0 + a1·v) at 3.8 V,
                // in rad/s per PWM.
                rotor_speed_offset_rad_s: 4304.90684659941 * std::f64::consts::PI / 30.0,
                rotor_speed_per_pwm_rad_s: 3948.957007115487 * std::f64::consts::PI / 30.0 * 3.8
                    / 65535.0,
                // drone-models `prop_radius = 27.5e-3` (marked "TODO check").
                prop_radius_m: 0.0275,
                initial_position_m: Vec3::new(0.0, 0.0, 0.015),
                initial_yaw_deg: 0.0,
                initial_attitude_deg: Vec3::ZERO,
                firmware_gains: FirmwareGains::Cf21Brushless,
                // `CONFIG_MOTORS_DEFAULT_IDLE_THRUST 7000`.
                idle_thrust: 7000,
            },
        }
    }
}

impl Default for QuadConfig {
    fn default() -> Self {
        Self::preset(QuadVariant::Cf2x)
    }
}

/// [`QuadConfig`] as written in a scene: every field optional, checked while parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuadConfigFields {
    #[serde(default)]
    variant: QuadVariant,
    #[serde(default, deserialize_with = "present_positive")]
    mass_kg: Option<f64>,
    #[serde(default, deserialize_with = "present_positive_vec3")]
    inertia_kg_m2: Option<Vec3>,
    #[serde(default, deserialize_with = "present_positive")]
    arm_m: Option<f64>,
    #[serde(default, deserialize_with = "present_positive")]
    motor_tau_up_s: Option<f64>,
    #[serde(default, deserialize_with = "present_positive")]
    motor_tau_down_s: Option<f64>,
    #[serde(default, deserialize_with = "present_thrust_curve")]
    thrust_curve: Option<ThrustCurve>,
    #[serde(default, deserialize_with = "present_non_negative")]
    torque_per_thrust_m: Option<f64>,
    #[serde(default, deserialize_with = "present_non_negative")]
    rotor_speed_offset_rad_s: Option<f64>,
    #[serde(default, deserialize_with = "present_non_negative")]
    rotor_speed_per_pwm_rad_s: Option<f64>,
    #[serde(default, deserialize_with = "present_positive")]
    prop_radius_m: Option<f64>,
    #[serde(default, deserialize_with = "present_finite_vec3")]
    initial_position_m: Option<Vec3>,
    #[serde(default, deserialize_with = "present_finite")]
    initial_yaw_deg: Option<f64>,
    #[serde(default, deserialize_with = "present_finite_vec3")]
    initial_attitude_deg: Option<Vec3>,
    #[serde(default, deserialize_with = "present")]
    firmware_gains: Option<FirmwareGains>,
    #[serde(default, deserialize_with = "present")]
    idle_thrust: Option<u16>,
}

impl TryFrom<QuadConfigFields> for QuadConfig {
    type Error = String;

    fn try_from(f: QuadConfigFields) -> Result<Self, String> {
        let p = QuadConfig::preset(f.variant);
        let (initial_yaw_deg, initial_attitude_deg) = match (
            f.initial_yaw_deg,
            f.initial_attitude_deg,
        ) {
            (None, None) => (p.initial_yaw_deg, p.initial_attitude_deg),
            (Some(yaw), None) => (yaw, Vec3::new(0.0, 0.0, yaw)),
            (None, Some(a)) => (a.z, a),
            (Some(yaw), Some(a)) if yaw == a.z => (yaw, a),
            (Some(yaw), Some(a)) => {
                return Err(format!(
                    "initial_yaw_deg ({yaw}) and initial_attitude_deg's yaw ({}) differ; give one",
                    a.z
                ));
            }
        };
        Ok(Self {
            variant: f.variant,
            mass_kg: f.mass_kg.unwrap_or(p.mass_kg),
            inertia_kg_m2: f.inertia_kg_m2.unwrap_or(p.inertia_kg_m2),
            arm_m: f.arm_m.unwrap_or(p.arm_m),
            motor_tau_up_s: f.motor_tau_up_s.unwrap_or(p.motor_tau_up_s),
            motor_tau_down_s: f.motor_tau_down_s.unwrap_or(p.motor_tau_down_s),
            // A CF2.x on the 2015 firmware flew the legacy propellers: their identified curve
            // (with the 2016.02 compensation it gives Förster's thrust within 2 % at hover).
            thrust_curve: f
                .thrust_curve
                .unwrap_or(match (f.variant, f.firmware_gains) {
                    (QuadVariant::Cf2x, Some(FirmwareGains::Era2015)) => {
                        ThrustCurve::CF2_LEGACY_PROPS
                    }
                    _ => p.thrust_curve,
                }),
            torque_per_thrust_m: f.torque_per_thrust_m.unwrap_or(p.torque_per_thrust_m),
            rotor_speed_offset_rad_s: f
                .rotor_speed_offset_rad_s
                .unwrap_or(p.rotor_speed_offset_rad_s),
            rotor_speed_per_pwm_rad_s: f
                .rotor_speed_per_pwm_rad_s
                .unwrap_or(p.rotor_speed_per_pwm_rad_s),
            prop_radius_m: f.prop_radius_m.unwrap_or(p.prop_radius_m),
            initial_position_m: f.initial_position_m.unwrap_or(p.initial_position_m),
            initial_yaw_deg,
            initial_attitude_deg,
            firmware_gains: f.firmware_gains.unwrap_or(p.firmware_gains),
            idle_thrust: f.idle_thrust.unwrap_or(p.idle_thrust),
        })
    }
}

/// Where position measurements come from.
// One per scene, read once: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Sensing {
    /// Ground truth plus Gaussian noise, at a rate, with latency and drops.
    Oracle(OracleConfig),
    /// A synthetic Kinect v2 depth (and IR) camera and the vision stage.
    Kinect(KinectConfig),
}

/// Depth-camera intrinsics: focal lengths and principal point in pixels, Brown distortion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intrinsics {
    #[serde(deserialize_with = "positive")]
    pub fx: f64,
    #[serde(deserialize_with = "positive")]
    pub fy: f64,
    #[serde(deserialize_with = "finite")]
    pub cx: f64,
    #[serde(deserialize_with = "finite")]
    pub cy: f64,
    #[serde(deserialize_with = "finite")]
    pub k1: f64,
    #[serde(deserialize_with = "finite")]
    pub k2: f64,
    #[serde(deserialize_with = "finite")]
    pub k3: f64,
    #[serde(default, deserialize_with = "finite")]
    pub p1: f64,
    #[serde(default, deserialize_with = "finite")]
    pub p2: f64,
}

impl Intrinsics {
    /// Factory depth intrinsics read from a real Kinect v2 (libfreenect2 issue 41, device 2).
    pub const KINECT_V2_DEVICE2: Self = Self {
        fx: 365.402802,
        fy: 365.402802,
        cx: 260.925507,
        cy: 205.594604,
        k1: 0.095575,
        k2: -0.277055,
        k3: 0.097539,
        p1: 0.0,
        p2: 0.0,
    };
    /// Another real device (libfreenect2 issue 41, device 1).
    pub const KINECT_V2_DEVICE1: Self = Self {
        fx: 368.096588,
        fy: 368.096588,
        cx: 261.696594,
        cy: 202.522202,
        k1: 0.084061,
        k2: -0.271582,
        k3: 0.101907,
        p1: 0.0,
        p2: 0.0,
    };
    /// A user's checkerboard calibration, with tangential terms (libfreenect2 issue 670).
    pub const KINECT_V2_CHECKERBOARD: Self = Self {
        fx: 362.310,
        fy: 362.522,
        cx: 260.130,
        cy: 205.958,
        k1: 0.09793,
        k2: -0.28229,
        k3: 0.10599,
        p1: 0.000375,
        p2: 0.000909,
    };
}

/// Which intrinsics the camera has.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CameraIntrinsics {
    KinectV2Device2,
    KinectV2Device1,
    KinectV2Checkerboard,
    Custom(Intrinsics),
}

impl CameraIntrinsics {
    pub fn resolve(&self) -> Intrinsics {
        match self {
            Self::KinectV2Device2 => Intrinsics::KINECT_V2_DEVICE2,
            Self::KinectV2Device1 => Intrinsics::KINECT_V2_DEVICE1,
            Self::KinectV2Checkerboard => Intrinsics::KINECT_V2_CHECKERBOARD,
            Self::Custom(i) => *i,
        }
    }
}

/// A stretch of time without camera frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    #[serde(deserialize_with = "non_negative")]
    pub start_s: f64,
    /// How long; `None` means for good.
    #[serde(default, deserialize_with = "optional_non_negative")]
    pub duration_s: Option<f64>,
}

/// The synthetic Kinect v2 (512×424 depth in mm, 0 = invalid) and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinectConfig {
    pub intrinsics: CameraIntrinsics,
    /// Optical centre of the camera in the world.
    #[serde(deserialize_with = "finite_vec3")]
    pub position_m: Vec3,
    /// A point the optical axis goes through.
    #[serde(deserialize_with = "finite_vec3")]
    pub look_at_m: Vec3,
    /// A direction that appears upwards in the image (any vector not along the optical axis).
    #[serde(deserialize_with = "finite_vec3")]
    pub up_hint: Vec3,
    /// Frame rate; the Kinect v2 streams every 33.25 ms.
    #[serde(deserialize_with = "positive")]
    pub rate_hz: f64,
    #[serde(deserialize_with = "non_negative")]
    pub latency_s: f64,
    #[serde(deserialize_with = "non_negative")]
    pub latency_jitter_s: f64,
    #[serde(deserialize_with = "probability")]
    pub drop_probability: f64,
    /// Scale of the depth noise model (0 = noise off).
    #[serde(deserialize_with = "non_negative")]
    pub noise_scale: f64,
    /// Render the IR image with the 2015 retro-reflective markers (yaw measurement).
    pub ir_markers: bool,
    #[serde(deserialize_with = "positive")]
    pub min_depth_m: f64,
    #[serde(deserialize_with = "positive")]
    pub max_depth_m: f64,
    pub blackouts: Vec<Blackout>,
    /// Bursts in which the frame rate collapses (the 2015 demo's USB contention).
    pub rate_collapses: Vec<RateCollapse>,
}

/// A burst of slow frames: from `start_s` for `duration_s` the camera streams at `rate_hz`,
/// repeated every `every_s` if given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCollapse {
    #[serde(deserialize_with = "non_negative")]
    pub start_s: f64,
    #[serde(deserialize_with = "positive")]
    pub duration_s: f64,
    #[serde(deserialize_with = "positive")]
    pub rate_hz: f64,
    #[serde(
        default,
        deserialize_with = "present_positive",
        serialize_with = "write_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub every_s: Option<f64>,
}

impl RateCollapse {
    /// In a burst at `t_s`.
    pub fn active(&self, t_s: f64) -> bool {
        if t_s < self.start_s {
            return false;
        }
        let into = match self.every_s {
            Some(every) => (t_s - self.start_s) % every,
            None => t_s - self.start_s,
        };
        into < self.duration_s
    }
}

impl Default for KinectConfig {
    fn default() -> Self {
        Self {
            intrinsics: CameraIntrinsics::KinectV2Device2,
            // On the floor looking up, as in the 2015 demo; world +x is up in the image.
            position_m: Vec3::new(0.0, 0.0, 0.0),
            look_at_m: Vec3::new(0.0, 0.0, 1.0),
            up_hint: Vec3::new(1.0, 0.0, 0.0),
            rate_hz: 1.0 / 0.03325,
            latency_s: 0.040,
            latency_jitter_s: 0.0,
            drop_probability: 0.0,
            noise_scale: 1.0,
            ir_markers: true,
            min_depth_m: 0.5,
            max_depth_m: 4.5,
            blackouts: Vec::new(),
            rate_collapses: Vec::new(),
        }
    }
}

impl Default for Sensing {
    fn default() -> Self {
        Self::Oracle(OracleConfig::default())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OracleConfig {
    /// Standard deviation of the position noise, per axis.
    #[serde(deserialize_with = "non_negative")]
    pub noise_m: f64,
    /// Standard deviation of the yaw noise.
    #[serde(deserialize_with = "non_negative")]
    pub yaw_noise_deg: f64,
    #[serde(deserialize_with = "positive")]
    pub rate_hz: f64,
    /// Capture-to-delivery delay.
    #[serde(deserialize_with = "non_negative")]
    pub latency_s: f64,
    /// Uniform extra delay in [0, jitter].
    #[serde(deserialize_with = "non_negative")]
    pub latency_jitter_s: f64,
    #[serde(deserialize_with = "probability")]
    pub drop_probability: f64,
}

impl Default for OracleConfig {
    fn default() -> Self {
        Self {
            noise_m: 0.002,
            yaw_noise_deg: 0.5,
            rate_hz: 30.0,
            latency_s: 0.040,
            latency_jitter_s: 0.0,
            drop_probability: 0.0,
        }
    }
}

/// The radio link between the off-board controller and the (simulated) Crazyflie.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// Setpoint packets per second (cfclient sends 100).
    #[serde(deserialize_with = "positive")]
    pub rate_hz: f64,
    #[serde(deserialize_with = "non_negative")]
    pub latency_s: f64,
    #[serde(deserialize_with = "probability")]
    pub drop_probability: f64,
    /// The link stops sending at this time (to exercise the firmware watchdog).
    #[serde(deserialize_with = "optional_non_negative")]
    pub cut_at_s: Option<f64>,
    /// Where the setpoints go: the in-process firmware model (virtual time, the latency and drops
    /// above), or a simulated Crazyflie in another process over CRTP/UDP (real time).
    pub transport: LinkTransport,
}

/// The transport of the radio link in simulation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum LinkTransport {
    /// The in-process simulated link and firmware model.
    #[default]
    InProcess,
    /// A simulated Crazyflie in another process, reached by a link URI: CRTP over UDP to
    /// `depthpilot sitl` (`Remote("udp://127.0.0.1:19850")`), or through Bitcraze's `cfzmq`
    /// server in front of it (`Remote("cfzmq://127.0.0.1:2000?uri=udp://127.0.0.1:19850")`).
    /// The flight runs in real time; the simulator must offer the `sim` log group (its truth).
    Remote(String),
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            rate_hz: 100.0,
            latency_s: 0.0,
            drop_probability: 0.0,
            cut_at_s: None,
            transport: LinkTransport::InProcess,
        }
    }
}

/// A point in a timed sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedPoint {
    #[serde(deserialize_with = "non_negative")]
    pub t_s: f64,
    #[serde(deserialize_with = "finite_vec3")]
    pub position_m: Vec3,
    #[serde(default, deserialize_with = "finite")]
    pub yaw_deg: f64,
}

/// What the quad should do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Trajectory {
    /// Take off and hold one point.
    Hover {
        #[serde(deserialize_with = "finite_vec3")]
        position_m: Vec3,
        #[serde(default, deserialize_with = "finite")]
        yaw_deg: f64,
    },
    /// Piecewise constant: each point holds from its time on (the first from t = 0).
    Steps(Vec<TimedPoint>),
    /// Piecewise linear between timed points, with velocity feed-forward.
    Waypoints(Vec<TimedPoint>),
    /// A figure-8 (lemniscate of Gerono) in the horizontal plane around `center_m`, started after
    /// a hover at the centre; the angular speed ramps up over the first period.
    Figure8 {
        #[serde(deserialize_with = "finite_vec3")]
        center_m: Vec3,
        /// Half the extent along x.
        #[serde(deserialize_with = "positive")]
        half_length_m: f64,
        /// Half the extent along y.
        #[serde(deserialize_with = "positive")]
        half_width_m: f64,
        #[serde(deserialize_with = "positive")]
        period_s: f64,
        #[serde(deserialize_with = "non_negative")]
        start_s: f64,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Disturbances {
    /// Constant wind (air velocity in the world frame).
    #[serde(deserialize_with = "finite_vec3")]
    pub wind_m_s: Vec3,
    pub gusts: Option<GustConfig>,
    pub impulses: Vec<ImpulseConfig>,
    /// A constant extra force on the body (world frame), e.g. a tether or a payload's pull.
    #[serde(deserialize_with = "finite_vec3")]
    pub force_n: Vec3,
}

/// Random gusts: each gust is a raised-cosine wind pulse in a random horizontal direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GustConfig {
    /// Mean time between gust starts (exponentially distributed).
    #[serde(deserialize_with = "positive")]
    pub mean_interval_s: f64,
    #[serde(deserialize_with = "positive")]
    pub duration_s: f64,
    /// Peak air speed of a gust; each gust draws uniformly in [0.5, 1] × this.
    #[serde(deserialize_with = "non_negative")]
    pub peak_m_s: f64,
    /// No gust starts before this time.
    #[serde(default, deserialize_with = "non_negative")]
    pub start_s: f64,
}

/// A one-off push.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpulseConfig {
    #[serde(deserialize_with = "non_negative")]
    pub t_s: f64,
    #[serde(deserialize_with = "finite_vec3")]
    pub impulse_n_s: Vec3,
}

/// The Crazyflie client's input-mux modes, and ours (`depthpilot-mux`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MuxMode {
    /// The autopilot flies every axis; the teacher only has e-stop.
    Normal,
    /// "Teacher (RP)": the student flies roll/pitch, the teacher thrust/yaw; holding `muxswitch`
    /// gives roll/pitch to the teacher too.
    TeacherRp,
    /// "Teacher (RPYT)": the student flies everything; holding `muxswitch` gives everything to the
    /// teacher.
    TeacherRpyt,
    /// 2015 MixMux: teacher and student added on every axis. Unsafe; for reproducing the demo.
    Mix,
    /// Per axis (roll, pitch, yaw, thrust): `true` = the teacher flies it; `muxswitch` gives all
    /// axes to the teacher.
    Custom([bool; 4]),
}

/// Limits and timing of the mux.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MuxConfig {
    pub mode: MuxMode,
    /// An input older than this counts as lost.
    #[serde(deserialize_with = "positive")]
    pub max_age_s: f64,
    #[serde(deserialize_with = "positive")]
    pub max_angle_deg: f64,
    #[serde(deserialize_with = "positive")]
    pub max_yaw_rate_deg_s: f64,
    /// Largest raw thrust the mux passes (the firmware caps at 60000 anyway).
    pub max_thrust: u16,
    /// Bumpless transfer: after a change of source, the output moves towards the new source at
    /// most this much per tick.
    #[serde(deserialize_with = "positive")]
    pub thrust_slew_per_tick: f64,
    #[serde(deserialize_with = "positive")]
    pub angle_slew_deg_per_tick: f64,
    #[serde(deserialize_with = "positive")]
    pub yaw_slew_deg_s_per_tick: f64,
    /// With no usable source for thrust, hold the last thrust this long, then ramp to zero over
    /// `safe_ramp_s`.
    #[serde(deserialize_with = "non_negative")]
    pub safe_hold_s: f64,
    #[serde(deserialize_with = "positive")]
    pub safe_ramp_s: f64,
}

/// A teacher flying through the mux: a person at the gamepad, written as a script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    #[serde(default)]
    pub mux: MuxConfig,
    /// Piecewise constant: each key holds from its time until the next; before the first key
    /// there is no teacher input.
    pub script: Vec<TeacherKey>,
}

/// What the teacher's sticks and buttons say from `t_s` on (the client's units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherKey {
    #[serde(deserialize_with = "non_negative")]
    pub t_s: f64,
    #[serde(default, deserialize_with = "finite")]
    pub roll_deg: f64,
    #[serde(default, deserialize_with = "finite")]
    pub pitch_deg: f64,
    #[serde(default, deserialize_with = "finite")]
    pub yaw_rate_deg_s: f64,
    #[serde(default, deserialize_with = "finite")]
    pub thrust_pct: f64,
    #[serde(default)]
    pub muxswitch: bool,
    #[serde(default)]
    pub estop: bool,
    /// `false`: the teacher's input stops (a disconnected gamepad).
    #[serde(default = "yes")]
    pub present: bool,
    /// A person keeping the quad at this height by eye: the thrust becomes
    /// `thrust_pct + 15 %/m · (height error) − 10 %/(m/s) · (climb rate)`, from what they see.
    #[serde(default, deserialize_with = "optional_finite")]
    pub hold_height_m: Option<f64>,
    /// Firmware parameters the teacher sets when this key begins, as a client's button bound to
    /// a parameter does (cfclient's alt-hold button writes `flightmode.althold`), e.g.
    /// `params: [("flightmode.stabModeRoll", 0.0)]`.
    #[serde(default)]
    pub params: Vec<(String, f64)>,
}

fn yes() -> bool {
    true
}

impl Default for MuxConfig {
    fn default() -> Self {
        Self {
            mode: MuxMode::TeacherRpyt,
            max_age_s: 0.5,
            max_angle_deg: 30.0,
            max_yaw_rate_deg_s: 200.0,
            max_thrust: 60000,
            thrust_slew_per_tick: 1500.0,
            angle_slew_deg_per_tick: 1.0,
            yaw_slew_deg_s_per_tick: 10.0,
            safe_hold_s: 0.5,
            safe_ramp_s: 2.0,
        }
    }
}

/// Which off-board controller flies, and the gains of each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    pub kind: ControllerKind,
    pub cascade: CascadeGains,
    pub bitcraze2015: Bitcraze2015Gains,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerKind {
    /// Position → velocity → attitude cascade with hover feed-forward (the default).
    #[default]
    Cascade,
    /// The 2015 Bitcraze Kinect demo's PID structure (`kctrl.py`).
    Bitcraze2015,
}

/// Gains of the default cascade controller. Units: position gains 1/s (m → m/s), velocity gains
/// 1/s (m/s → m/s²), integral gains 1/s², yaw gain 1/s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CascadeGains {
    #[serde(deserialize_with = "non_negative")]
    pub pos_kp_xy: f64,
    #[serde(deserialize_with = "non_negative")]
    pub pos_kp_z: f64,
    #[serde(deserialize_with = "non_negative")]
    pub vel_kp_xy: f64,
    #[serde(deserialize_with = "non_negative")]
    pub vel_ki_xy: f64,
    #[serde(deserialize_with = "non_negative")]
    pub vel_kp_z: f64,
    #[serde(deserialize_with = "non_negative")]
    pub vel_ki_z: f64,
    /// Limit of each integral term's contribution (m/s²). The default, 3 m/s², holds a quad
    /// 30 % heavier than `mass_kg` (0.3·g): the published CF2.x masses reach 34 g on the 27 g
    /// model, +26 % (see `depthpilot_sim::batch::Randomisation::BENCH`). It was 2 m/s², which
    /// left a 34 g quad 5 cm low.
    #[serde(deserialize_with = "non_negative")]
    pub i_limit_m_s2: f64,
    #[serde(deserialize_with = "positive")]
    pub max_vel_xy_m_s: f64,
    #[serde(deserialize_with = "positive")]
    pub max_vel_z_m_s: f64,
    #[serde(deserialize_with = "positive")]
    pub max_tilt_deg: f64,
    #[serde(deserialize_with = "non_negative")]
    pub yaw_kp: f64,
    #[serde(deserialize_with = "positive")]
    pub max_yaw_rate_deg_s: f64,
    /// The controller's model of the vehicle mass (the plant may differ).
    #[serde(deserialize_with = "positive")]
    pub mass_kg: f64,
    /// Process noise of the estimator's constant-velocity model (white acceleration).
    #[serde(deserialize_with = "positive")]
    pub est_accel_sigma_m_s2: f64,
    /// Measurement noise the estimator assumes.
    #[serde(deserialize_with = "positive")]
    pub est_meas_sigma_m: f64,
    /// Time constant with which the vehicle's acceleration follows the commanded one (the
    /// on-board attitude loop's lag); the estimator's input model.
    #[serde(deserialize_with = "non_negative")]
    pub est_response_tau_s: f64,
}

impl Default for CascadeGains {
    fn default() -> Self {
        Self {
            pos_kp_xy: 2.0,
            pos_kp_z: 2.0,
            vel_kp_xy: 6.0,
            vel_ki_xy: 1.0,
            vel_kp_z: 5.0,
            vel_ki_z: 3.0,
            i_limit_m_s2: 3.0,
            max_vel_xy_m_s: 1.5,
            max_vel_z_m_s: 1.0,
            max_tilt_deg: 25.0,
            yaw_kp: 3.0,
            max_yaw_rate_deg_s: 120.0,
            mass_kg: 0.027,
            est_accel_sigma_m_s2: 1.0,
            est_meas_sigma_m: 0.002,
            est_response_tau_s: 0.2,
        }
    }
}

/// Gains of the 2015 demo (`crazyflie-vision/control/kctrl.py`), in its own units: roll/pitch
/// from metres to degrees, yaw from degrees to deg/s, vertical velocity to a thrust fraction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bitcraze2015Gains {
    pub rp_kp: f64,
    pub rp_ki: f64,
    pub rp_kd: f64,
    pub rp_integrator_max: f64,
    pub yaw_kp: f64,
    pub yaw_kd: f64,
    pub yaw_cap_deg_s: f64,
    pub vv_kp: f64,
    pub vv_ki: f64,
    pub vv_kd: f64,
    pub vv_integrator_max: f64,
    /// Height loop (m → m/s). kctrl.py computed it but overwrote its output with 0 m/s; we use
    /// it, or the quad could not hold a height at all.
    pub z_kp: f64,
    pub z_ki: f64,
    pub z_integrator_max: f64,
    pub thrust_feed_forward: f64,
    pub thrust_min: f64,
    pub thrust_max: f64,
    /// cfclient's maximum roll/pitch angle, which limited what the demo could command.
    pub max_angle_deg: f64,
}

impl Default for Bitcraze2015Gains {
    fn default() -> Self {
        Self {
            rp_kp: 25.0,
            rp_ki: 0.28,
            rp_kd: 7.0,
            rp_integrator_max: 5.0,
            yaw_kp: 5.0,
            yaw_kd: 0.35,
            yaw_cap_deg_s: 200.0,
            vv_kp: 0.1,
            vv_ki: 0.28,
            vv_kd: 0.00315,
            vv_integrator_max: 5.0 / 0.035,
            z_kp: 0.5,
            z_ki: 0.28,
            z_integrator_max: 5.0,
            thrust_feed_forward: 0.50,
            thrust_min: 0.40,
            thrust_max: 1.0,
            max_angle_deg: 30.0,
        }
    }
}

impl Scene {
    /// Reads and validates a scene file.
    pub fn load(path: &Path) -> Result<Self, SceneError> {
        let text = std::fs::read_to_string(path).map_err(|source| SceneError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_ron_str(&text, path)
    }

    /// Parses and validates scene text; `file` is only used in error messages (and to find a
    /// `controller_file` next to it).
    pub fn from_ron_str(text: &str, file: &Path) -> Result<Self, SceneError> {
        let mut scene: Scene = parse_ron(text, file)?;
        if let Some(name) = &scene.controller_file {
            let path = file.parent().unwrap_or(Path::new(".")).join(name);
            let text = std::fs::read_to_string(&path).map_err(|source| SceneError::Io {
                file: path.clone(),
                source,
            })?;
            scene.controller = parse_ron(&text, &path)?;
        }
        scene.check(file)?;
        Ok(scene)
    }

    /// Checks that need more than one field.
    fn check(&self, file: &Path) -> Result<(), SceneError> {
        let invalid = |field: &str, message: String| SceneError::Invalid {
            file: file.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let ratio = self.rates.physics_hz / self.rates.firmware_hz;
        if ratio.fract() != 0.0 || ratio < 1.0 {
            return Err(invalid(
                "rates",
                format!(
                    "physics_hz ({}) must be an integer multiple of firmware_hz ({})",
                    self.rates.physics_hz, self.rates.firmware_hz
                ),
            ));
        }
        if self.settle_s >= self.duration_s {
            return Err(invalid(
                "settle_s",
                format!(
                    "settle_s ({}) must be shorter than duration_s ({})",
                    self.settle_s, self.duration_s
                ),
            ));
        }
        if self.duration_s > 24.0 * 3600.0 {
            return Err(invalid("duration_s", "longer than a day".to_string()));
        }
        if let Sensing::Kinect(k) = &self.sensing {
            if crate::Rot::look_along(k.look_at_m - k.position_m, k.up_hint).is_none() {
                return Err(invalid(
                    "sensing.look_at_m",
                    "the camera must look somewhere other than its own position, and up_hint must \
                     not be along the optical axis"
                        .to_string(),
                ));
            }
            if k.min_depth_m >= k.max_depth_m {
                return Err(invalid(
                    "sensing.min_depth_m",
                    format!("must be below max_depth_m ({})", k.max_depth_m),
                ));
            }
            for (i, c) in k.rate_collapses.iter().enumerate() {
                if c.every_s.is_some_and(|e| e <= c.duration_s) {
                    return Err(invalid(
                        &format!("sensing.rate_collapses[{i}].every_s"),
                        format!(
                            "must be longer than the burst (duration_s {})",
                            c.duration_s
                        ),
                    ));
                }
            }
        }
        for (i, d) in self.faults.peer_deaths.iter().enumerate() {
            if d.relearn_background && d.peer != Peer::Vision {
                return Err(invalid(
                    &format!("faults.peer_deaths[{i}].relearn_background"),
                    "only a vision peer has a background".to_string(),
                ));
            }
            let overlaps = self.faults.peer_deaths[..i].iter().any(|e| {
                e.peer == d.peer
                    && d.at_s < e.back_after_s.map_or(f64::INFINITY, |b| e.at_s + b)
                    && e.at_s < d.back_after_s.map_or(f64::INFINITY, |b| d.at_s + b)
            });
            if overlaps {
                return Err(invalid(
                    &format!("faults.peer_deaths[{i}]"),
                    format!("overlaps an earlier death of the same peer ({:?})", d.peer),
                ));
            }
        }
        for (i, pair) in self.script.windows(2).enumerate() {
            if pair[1].t_s <= pair[0].t_s {
                return Err(invalid(
                    &format!("script[{}].t_s", i + 1),
                    format!(
                        "times must increase ({} after {})",
                        pair[1].t_s, pair[0].t_s
                    ),
                ));
            }
        }
        for (i, e) in self.script.iter().enumerate() {
            let finite = match &e.send {
                ScriptPacket::Rpyt {
                    roll_deg,
                    pitch_deg,
                    yaw_rate_deg_s,
                    ..
                } => [roll_deg, pitch_deg, yaw_rate_deg_s]
                    .iter()
                    .all(|v| v.is_finite()),
                ScriptPacket::Position {
                    position_m,
                    yaw_deg,
                } => position_m.to_array().iter().all(|v| v.is_finite()) && yaw_deg.is_finite(),
                ScriptPacket::Stop | ScriptPacket::Silence => true,
            };
            if !finite {
                return Err(invalid(
                    &format!("script[{i}].send"),
                    "every number must be finite".to_string(),
                ));
            }
        }
        if let Some(t) = &self.teacher {
            for (k, key) in t.script.iter().enumerate() {
                for (i, (name, value)) in key.params.iter().enumerate() {
                    if let Some(problem) = firmware_param_problem(name, *value) {
                        return Err(invalid(
                            &format!("teacher.script[{k}].params[{i}]"),
                            problem,
                        ));
                    }
                }
            }
        }
        for (i, (name, value)) in self.firmware_params.iter().enumerate() {
            if let Some(problem) = firmware_param_problem(name, *value) {
                return Err(invalid(&format!("firmware_params[{i}]"), problem));
            }
        }
        for (i, w) in self.param_writes.iter().enumerate() {
            if let Some(problem) = firmware_param_problem(&w.name, w.value) {
                return Err(invalid(&format!("param_writes[{i}].name"), problem));
            }
        }
        for (i, pair) in self.param_writes.windows(2).enumerate() {
            if pair[1].t_s < pair[0].t_s {
                return Err(invalid(
                    &format!("param_writes[{}].t_s", i + 1),
                    format!(
                        "times must not decrease ({} after {})",
                        pair[1].t_s, pair[0].t_s
                    ),
                ));
            }
        }
        if self.architecture == crate::rig::Architecture::Onboard && self.teacher.is_some() {
            return Err(invalid(
                "architecture",
                "`Onboard` sends position setpoints; the teacher's mux works on roll / pitch / \
                 yaw-rate / thrust, so a scene with a teacher must be `Offboard`"
                    .to_string(),
            ));
        }
        if let Some(t) = &self.teacher {
            for (i, pair) in t.script.windows(2).enumerate() {
                if pair[1].t_s <= pair[0].t_s {
                    return Err(invalid(
                        &format!("teacher.script[{}].t_s", i + 1),
                        format!(
                            "times must increase ({} after {})",
                            pair[1].t_s, pair[0].t_s
                        ),
                    ));
                }
            }
        }
        match &self.setpoints {
            Trajectory::Steps(points) | Trajectory::Waypoints(points) => {
                if points.is_empty() {
                    return Err(invalid("setpoints", "needs at least one point".to_string()));
                }
                for (i, pair) in points.windows(2).enumerate() {
                    if pair[1].t_s <= pair[0].t_s {
                        return Err(invalid(
                            &format!("setpoints[{}].t_s", i + 1),
                            format!(
                                "times must increase ({} after {})",
                                pair[1].t_s, pair[0].t_s
                            ),
                        ));
                    }
                }
            }
            Trajectory::Hover { .. } | Trajectory::Figure8 { .. } => {}
        }
        Ok(())
    }
}

/// Parses any of our RON config types with errors that name file, line, column and field.
pub fn parse_ron<T: serde::de::DeserializeOwned>(text: &str, file: &Path) -> Result<T, SceneError> {
    let parse_err = |e: ron::error::SpannedError, field: String| SceneError::Parse {
        file: file.to_path_buf(),
        line: e.span.start.line,
        col: e.span.start.col,
        field,
        message: e.code.to_string(),
    };
    let mut de = ron::Deserializer::from_str(text).map_err(|e| parse_err(e, String::new()))?;
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let field = e.path().to_string();
            let spanned = de.span_error(e.into_inner());
            return Err(parse_err(spanned, field));
        }
    };
    de.end()
        .map_err(|e| parse_err(de.span_error(e), String::new()))?;
    Ok(value)
}

/// Parses a scene from RON text; for tests and tools that build scenes in memory.
pub fn parse(text: &str) -> Result<Scene, SceneError> {
    Scene::from_ron_str(text, Path::new("<memory>"))
}

#[cfg(test)]
mod tests;
