//! A model of the Crazyflie firmware's path from a setpoint to four motor commands:
//! commander (`crtp_commander_rpyt.c`: thrust lock, clamps, inverted yaw rate; the generic
//! setpoints of `crtp_commander_generic.c`, see [`setpoint`]), setpoint watchdog
//! (`supervisor.c`/`commander.c`: level after 500 ms, motors off after 2 s), tumble detection,
//! the supervisor's emergency stop, the state estimate with external positions ([`estimator`]),
//! the on-board position controller (`position_controller_pid.c`, see [`position`]), the PID
//! attitude and rate cascade (`controller_pid.c`, `attitude_pid_controller.c`, `pid.c`) and the
//! legacy X mixer with its saturation cap (`power_distribution_quadrotor.c`); the `flightmode`
//! stabilisation and yaw modes of the RPYT decoder ([`modes`]); situation awareness with the 2015
//! barometric alt-hold and automatic take-off ([`sitaw`]); and the parameters that switch and
//! tune all of it ([`params`]).
//!
//! The legacy RPYT path ([`Firmware::receive`]) is kept exactly as it was before the other
//! setpoint types were added (same operations in the same order); the generic setpoints take a
//! separate path through [`Firmware::step`] that follows `controller_pid.c`.
//!
//! It works in the firmware's own units and frames so that its gains are the firmware's: degrees,
//! deg/s, int16 actuator counts, and the legacy attitude in which pitch is inverted (positive =
//! nose up). The mapping from the right-handed world is done once, in [`ImuSample::from_truth`].
//!
//! Pure and deterministic: time arrives as `now_ns`; no I/O.

use depthpilot_crtp::RpytSetpoint;
use depthpilot_types::scene::FirmwareGains;
use serde::Serialize;

pub mod estimator;
mod generic;
pub mod modes;
pub mod params;
pub mod position;
pub mod setpoint;
pub mod sitaw;

pub use estimator::StateEstimate;
pub use params::{ParamError, ParamSpec, ParamType, firmware_param, firmware_params};
pub use setpoint::{FwSetpoint, Mode, Modes, Setpoint, manual_thrust_from_pct};
pub use sitaw::Situation;

use modes::{FlightModes, LegacyDemand};
use sitaw::{AltHoldInput, SitAw};

use estimator::Estimator;
use position::PositionController;

const MIN_THRUST: u16 = 1000;
const MAX_THRUST: u16 = 60000;
const WDT_STABILIZE_NS: u64 = 500_000_000;
const WDT_SHUTDOWN_NS: u64 = 2_000_000_000;
/// Tumble detection (`supervisor.c` @0714e40, `isTumbledCheck`; thresholds
/// `SUPERVISOR_TUMBLE_CHECK_ACCEPTED_*` of `platform_defaults.h`): tilted (acc.z < 0.5 g) for
/// 1 s, or upside down (acc.z < -0.2 g) after 0.1 s of being tilted, unless free falling
/// (|acc| < 0.1 g on every axis). The supervisor runs at `RATE_SUPERVISOR` = 25 Hz
/// (`stabilizer_types.h`). The lock is for good here (a reboot); the 2023+ state machine calls
/// it "crashed" and lets a client recover once the quad is upright again (not modelled).
const TILT_ACC_Z_G: f64 = 0.5;
const TILT_MAX_NS: u64 = 1_000_000_000;
const UPSIDE_DOWN_ACC_Z_G: f64 = -0.2;
const UPSIDE_DOWN_MAX_NS: u64 = 100_000_000;
const FREE_FALL_G: f64 = 0.1;
/// `POSITION_RATE` = `RATE_100_HZ` (`stabilizer_types.h`).
const POSITION_RATE_HZ: f64 = 100.0;
const SUPERVISOR_RATE_HZ: f64 = 25.0;
/// `IS_FLYING_HYSTERESIS_THRESHOLD` (`supervisor.c`): flying while a motor ran above idle within
/// the last 2 s.
const IS_FLYING_HYSTERESIS_NS: u64 = 2_000_000_000;
/// Situation awareness tests at the 2015 attitude-update rate ("Configured for 250Hz testing").
const SITAW_RATE_HZ: f64 = 250.0;
/// `ALTHOLD_UPDATE_RATE_DIVIDER 5`: the 2015 alt-hold loop at 100 Hz.
const ALT_HOLD_RATE_HZ: f64 = 100.0;

/// What the firmware's sensors and estimator report, in firmware units.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ImuSample {
    pub roll_deg: f64,
    /// Legacy frame: positive = nose up.
    pub pitch_deg: f64,
    pub yaw_deg: f64,
    /// Body rates about x (forward), y (left), z (up), right-handed.
    pub gyro_deg_s: [f64; 3],
    /// Specific force in the body frame, in g (1 g up when at rest and level).
    pub acc_g: [f64; 3],
    /// True position and velocity, standing in for on-board positioning sensors (flow deck,
    /// positioning deck, barometer) until external positions arrive. None: not simulated (the
    /// estimate then stays where it was, zeros at boot).
    pub nav: Option<NavSample>,
}

/// The plant's position and velocity for the estimator (world frame, z up).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NavSample {
    pub pos_m: [f64; 3],
    pub vel_m_s: [f64; 3],
}

impl ImuSample {
    /// From right-handed Euler angles (ZYX, radians), body rates (rad/s) and specific force (g).
    pub fn from_truth(rpy_rad: [f64; 3], body_rates_rad_s: [f64; 3], acc_g: [f64; 3]) -> Self {
        Self {
            roll_deg: rpy_rad[0].to_degrees(),
            pitch_deg: -rpy_rad[1].to_degrees(),
            yaw_deg: rpy_rad[2].to_degrees(),
            gyro_deg_s: body_rates_rad_s.map(f64::to_degrees),
            acc_g,
            nav: None,
        }
    }

    /// The same sample with the plant's true position and velocity (see [`ImuSample::nav`]).
    pub fn with_nav(self, pos_m: [f64; 3], vel_m_s: [f64; 3]) -> Self {
        Self {
            nav: Some(NavSample { pos_m, vel_m_s }),
            ..self
        }
    }
}

/// Gains of one firmware PID (`pid.c`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidGains {
    pub kp: f64,
    pub ki: f64,
    pub kd: f64,
    /// Limit on the integrated error (not on the output).
    pub i_limit: f64,
}

const fn g(kp: f64, ki: f64, kd: f64, i_limit: f64) -> PidGains {
    PidGains {
        kp,
        ki,
        kd,
        i_limit,
    }
}

/// The six attitude/rate PIDs of a gain set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GainSet {
    pub roll: PidGains,
    pub pitch: PidGains,
    pub yaw: PidGains,
    pub roll_rate: PidGains,
    pub pitch_rate: PidGains,
    pub yaw_rate: PidGains,
    /// The attitude loop runs every `attitude_divider`-th rate-loop tick.
    pub attitude_divider: u32,
}

impl GainSet {
    pub fn of(kind: FirmwareGains) -> Self {
        match kind {
            // platform_defaults_cf2.h (current master).
            FirmwareGains::Current => Self {
                roll: g(6.0, 3.0, 0.0, 20.0),
                pitch: g(6.0, 3.0, 0.0, 20.0),
                yaw: g(6.0, 1.0, 0.35, 360.0),
                roll_rate: g(250.0, 500.0, 2.5, 33.3),
                pitch_rate: g(250.0, 500.0, 2.5, 33.3),
                yaw_rate: g(120.0, 16.7, 0.0, 166.7),
                attitude_divider: 1,
            },
            // platform_defaults_cf21bl.h (current master): rate roll/pitch 200/400/2.5.
            FirmwareGains::Cf21Brushless => Self {
                roll: g(6.0, 3.0, 0.0, 20.0),
                pitch: g(6.0, 3.0, 0.0, 20.0),
                yaw: g(6.0, 1.0, 0.35, 360.0),
                roll_rate: g(200.0, 400.0, 2.5, 33.3),
                pitch_rate: g(200.0, 400.0, 2.5, 33.3),
                yaw_rate: g(120.0, 16.7, 0.0, 166.7),
                attitude_divider: 1,
            },
            // pid.h @ bfab2077 (2016-03), attitude loop at 250 Hz.
            FirmwareGains::Era2015 => Self {
                roll: g(3.5, 2.0, 0.0, 20.0),
                pitch: g(3.5, 2.0, 0.0, 20.0),
                yaw: g(10.0, 1.0, 0.35, 360.0),
                roll_rate: g(70.0, 0.0, 0.0, 33.3),
                pitch_rate: g(70.0, 0.0, 0.0, 33.3),
                yaw_rate: g(70.0, 16.7, 0.0, 166.7),
                attitude_divider: 2,
            },
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pid {
    g: PidGains,
    integ: f64,
    prev_measured: Option<f64>,
}

impl Pid {
    fn new(g: PidGains) -> Self {
        Self {
            g,
            integ: 0.0,
            prev_measured: None,
        }
    }

    /// `pidUpdate` with the error given (so yaw can be wrapped), D on measurement.
    fn update(&mut self, error: f64, measured: f64, dt: f64) -> f64 {
        let deriv = match self.prev_measured {
            Some(prev) => -(measured - prev) / dt,
            None => 0.0,
        };
        self.prev_measured = Some(measured);
        self.integ = (self.integ + error * dt).clamp(-self.g.i_limit, self.g.i_limit);
        self.g.kp * error + self.g.ki * self.integ + self.g.kd * deriv
    }

    fn reset(&mut self) {
        self.integ = 0.0;
        self.prev_measured = None;
    }

    /// `pidReset(pid, actual)` of the current `pid.c`.
    fn reset_to(&mut self, measured: f64) {
        self.integ = 0.0;
        self.prev_measured = Some(measured);
    }
}

/// Why the motors are stopped for good (until the model is rebuilt, like a reboot). The first
/// cause is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Lockout {
    Tumbled,
    /// The supervisor's emergency stop (`supervisor.c`: `SUPERVISOR_CB_EMERGENCY_STOP` →
    /// "Exception, free fall" → "Locked, reboot required").
    EmergencyStop,
}

/// State of the setpoint watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Watchdog {
    /// No setpoint yet, or none for 2 s: null setpoint, motors off, thrust re-locks.
    Disabled,
    Fresh,
    /// No setpoint for 500 ms: level out, keep thrust.
    Levelling,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct LegacySetpoint {
    roll_deg: f64,
    pitch_deg: f64,
    /// Right-handed yaw rate (already un-inverted).
    yaw_rate_deg_s: f64,
    thrust: u16,
    /// The packet's thrust before lock and clamps (alt-hold reads it as the stick).
    raw_thrust: u16,
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Firmware {
    gains: GainSet,
    dt_s: f64,
    idle_thrust: u16,
    setpoint: LegacySetpoint,
    last_rx_ns: Option<u64>,
    thrust_locked: bool,
    watchdog: Watchdog,
    yaw_desired_deg: f64,
    roll: Pid,
    pitch: Pid,
    yaw: Pid,
    roll_rate: Pid,
    pitch_rate: Pid,
    yaw_rate: Pid,
    rate_desired: [f64; 3],
    tick: u64,
    /// `initialTumbleTick` of the supervisor's tumble check.
    tumble_since_ns: Option<u64>,
    lockout: Option<Lockout>,
    motors: [u16; 4],
    thrust: u16,
    /// The latest setpoint was a generic one (None: legacy RPYT).
    generic: Option<Setpoint>,
    /// `setpointModeChanged`'s memory (zero-initialised: all disabled).
    prev_modes: Modes,
    /// `attitudeDesired.roll/pitch` and `actuatorThrust` of `controller_pid.c` (persist between
    /// position-loop ticks).
    attitude_desired_deg: [f64; 2],
    actuator_thrust: f64,
    pos_ctl: PositionController,
    /// The position loop runs every `pos_divider`-th tick.
    pos_divider: u64,
    estimator: Estimator,
    /// `stabilizer.roll/pitch/yaw` of the last tick (legacy frame).
    attitude_deg: [f64; 3],
    /// `stabilizer.thrust` (`control.thrust`) of the last tick.
    control_thrust: f64,
    last_thrust_over_idle_ns: Option<u64>,
    is_flying: bool,
    last_ext_pos_ns: Option<u64>,
    /// The `flightmode` parameters and carefree's front.
    modes: FlightModes,
    /// Attitude setpoint of the last legacy tick (after the rate/angle split and yaw mode).
    legacy_attitude_deg: [f64; 2],
    sitaw: SitAw,
    /// `supervisor.tmblChckEn`.
    tumble_check_enabled: bool,
    /// Firmware ticks so far, for the 250 Hz and 100 Hz sub-rates.
    ticks: u64,
    sitaw_divider: u64,
    alt_hold_divider: u64,
    supervisor_divider: u64,
    rate_hz: f64,
}

impl Firmware {
    /// `rate_hz` is the rate at which [`Firmware::step`] is called (500 Hz on a CF2.x).
    pub fn new(kind: FirmwareGains, rate_hz: f64, idle_thrust: u16) -> Self {
        let gains = GainSet::of(kind);
        Self {
            dt_s: 1.0 / rate_hz,
            idle_thrust,
            setpoint: LegacySetpoint::default(),
            last_rx_ns: None,
            thrust_locked: true,
            watchdog: Watchdog::Disabled,
            yaw_desired_deg: 0.0,
            roll: Pid::new(gains.roll),
            pitch: Pid::new(gains.pitch),
            yaw: Pid::new(gains.yaw),
            roll_rate: Pid::new(gains.roll_rate),
            pitch_rate: Pid::new(gains.pitch_rate),
            yaw_rate: Pid::new(gains.yaw_rate),
            gains,
            rate_desired: [0.0; 3],
            tick: 0,
            tumble_since_ns: None,
            lockout: None,
            motors: [0; 4],
            thrust: 0,
            generic: None,
            prev_modes: Modes::NULL,
            attitude_desired_deg: [0.0; 2],
            actuator_thrust: 0.0,
            pos_ctl: PositionController::for_gains(kind),
            pos_divider: (rate_hz / POSITION_RATE_HZ).round().max(1.0) as u64,
            estimator: Estimator::default(),
            attitude_deg: [0.0; 3],
            control_thrust: 0.0,
            last_thrust_over_idle_ns: None,
            is_flying: false,
            last_ext_pos_ns: None,
            modes: FlightModes::default(),
            legacy_attitude_deg: [0.0; 2],
            sitaw: SitAw::default(),
            tumble_check_enabled: true,
            ticks: 0,
            sitaw_divider: (rate_hz / SITAW_RATE_HZ).round().max(1.0) as u64,
            alt_hold_divider: (rate_hz / ALT_HOLD_RATE_HZ).round().max(1.0) as u64,
            supervisor_divider: (rate_hz / SUPERVISOR_RATE_HZ).round().max(1.0) as u64,
            rate_hz,
        }
    }

    /// A legacy setpoint packet arrived (the commander's CRTP callback).
    pub fn receive(&mut self, now_ns: u64, sp: &RpytSetpoint) {
        if self.watchdog == Watchdog::Disabled {
            self.thrust_locked = true;
        }
        if sp.thrust == 0 {
            self.thrust_locked = false;
        }
        let thrust = if self.thrust_locked || sp.thrust < MIN_THRUST {
            0
        } else {
            sp.thrust.min(MAX_THRUST)
        };
        self.setpoint = LegacySetpoint {
            roll_deg: f64::from(sp.roll_deg),
            pitch_deg: f64::from(sp.pitch_deg),
            // "legacy rate input is inverted"
            yaw_rate_deg_s: -f64::from(sp.yaw_rate_deg_s),
            thrust,
            raw_thrust: sp.thrust,
        };
        self.generic = None;
        self.last_rx_ns = Some(now_ns);
        self.watchdog = Watchdog::Fresh;
    }

    /// A generic setpoint arrived (CRTP 7:0, already decoded; see [`FwSetpoint`]). It feeds the
    /// same watchdog as the legacy packet and replaces it (one setpoint slot, same priority).
    /// No thrust lock: that belongs to the RPYT decoder only.
    pub fn receive_setpoint(&mut self, now_ns: u64, sp: &FwSetpoint) {
        self.generic = Some(sp.decode());
        self.last_rx_ns = Some(now_ns);
        self.watchdog = Watchdog::Fresh;
    }

    /// An external position arrived (CRTP 6:0, `crtp_localization_service.c`), world frame, m.
    /// It is fused at the next tick (see [`estimator`]).
    pub fn receive_external_position(&mut self, now_ns: u64, pos_m: [f64; 3]) {
        self.last_ext_pos_ns = Some(now_ns);
        self.estimator.enqueue_position(pos_m);
    }

    /// The supervisor's emergency stop (CRTP 9:1 command 0x03, or the deprecated localization
    /// 6:1 type 3): motors off until the model is rebuilt, whatever arrives next.
    pub fn emergency_stop(&mut self) {
        self.lockout.get_or_insert(Lockout::EmergencyStop);
    }

    fn reset_pids(&mut self) {
        for pid in [
            &mut self.roll,
            &mut self.pitch,
            &mut self.yaw,
            &mut self.roll_rate,
            &mut self.pitch_rate,
            &mut self.yaw_rate,
        ] {
            pid.reset();
        }
    }

    /// `isTumbledCheck` (`supervisor.c`), run at `RATE_SUPERVISOR` (25 Hz): one clock starts
    /// when the quad is tilted (acc.z < 0.5 g) and stops when it is not; tumbled when it ran for
    /// more than 1 s, or for more than 0.1 s while upside down (acc.z < −0.2 g). Free fall
    /// (|acc| < 0.1 g on every axis) restarts the clock.
    fn check_tumble(&mut self, now_ns: u64, acc_g: [f64; 3]) {
        if !self.ticks.is_multiple_of(self.supervisor_divider) {
            return;
        }
        if acc_g.iter().all(|a| a.abs() < FREE_FALL_G) {
            self.tumble_since_ns = None;
        }
        if acc_g[2] >= TILT_ACC_Z_G {
            self.tumble_since_ns = None;
            return;
        }
        let tumbled_for = now_ns - *self.tumble_since_ns.get_or_insert(now_ns);
        let upside_down = acc_g[2] < UPSIDE_DOWN_ACC_Z_G;
        let tumbled =
            (upside_down && tumbled_for > UPSIDE_DOWN_MAX_NS) || tumbled_for > TILT_MAX_NS;
        // `if (isTumbled) { if (tumbleCheckEnabled) conditions |= SUPERVISOR_CB_IS_TUMBLED; }`
        if tumbled && self.tumble_check_enabled {
            self.lockout.get_or_insert(Lockout::Tumbled);
        }
    }

    /// One tick of the stabiliser loop. Returns the four motor commands (M1..M4).
    pub fn step(&mut self, now_ns: u64, imu: &ImuSample) -> [u16; 4] {
        self.check_tumble(now_ns, imu.acc_g);
        // Setpoint watchdog.
        let age = self.last_rx_ns.map(|t| now_ns.saturating_sub(t));
        self.watchdog = match age {
            None => Watchdog::Disabled,
            Some(a) if a > WDT_SHUTDOWN_NS => Watchdog::Disabled,
            Some(a) if a > WDT_STABILIZE_NS => Watchdog::Levelling,
            Some(_) => Watchdog::Fresh,
        };
        self.attitude_deg = [imu.roll_deg, imu.pitch_deg, imu.yaw_deg];
        let rpy_rad = [
            imu.roll_deg.to_radians(),
            -imu.pitch_deg.to_radians(),
            imu.yaw_deg.to_radians(),
        ];
        self.estimator.step(
            now_ns,
            imu.nav.map(|n| (n.pos_m, n.vel_m_s)),
            rpy_rad,
            imu.acc_g,
            self.is_flying,
        );
        self.modes.boot(imu.yaw_deg);
        self.situation_tick(imu);
        self.motors = match self.generic {
            None => self.step_legacy(imu),
            Some(sp) => self.step_generic(imu, sp),
        };
        self.update_is_flying(now_ns);
        self.motors
    }

    /// The legacy RPYT path: the commander's setpoint, shaped by the `flightmode` params
    /// ([`modes`]), into the attitude loop; in alt-hold the thrust comes from the 2015 alt-hold
    /// loop ([`sitaw`]). With default params the operations are those of the path before the
    /// modes existed, in the same order.
    fn step_legacy(&mut self, imu: &ImuSample) -> [u16; 4] {
        let mut sp = self.setpoint;
        let mut levelling = false;
        match self.watchdog {
            Watchdog::Disabled => sp = LegacySetpoint::default(),
            Watchdog::Levelling => {
                sp.roll_deg = 0.0;
                sp.pitch_deg = 0.0;
                sp.yaw_rate_deg_s = 0.0;
                levelling = true;
            }
            Watchdog::Fresh => {}
        }
        // 2015 stabilizer.c: `if (!altHold) commanderGetThrust(&actuatorThrust);` — in alt-hold
        // the loop's thrust stands (no thrust lock), until the watchdog drops to the ground.
        if self.sitaw.alt.alt_hold && self.watchdog != Watchdog::Disabled {
            sp.thrust = self.sitaw.alt.thrust;
        }
        // stabilizerPreThrustUpdateCallOut: "Kill the thrust to the motors if a Tumbled
        // situation is detected."
        if self.sitaw.tu.released {
            sp.thrust = 0;
        }
        if self.lockout.is_some() {
            sp.thrust = 0;
        }
        self.thrust = sp.thrust;
        // supervisorOverrideSetpoint (level out): roll and pitch in angle mode, level.
        let demand = if levelling {
            LegacyDemand::LEVEL
        } else {
            self.modes.decode(sp.roll_deg, sp.pitch_deg, imu.yaw_deg)
        };
        self.legacy_attitude_deg = [demand.roll_deg, demand.pitch_deg];

        let dt = self.dt_s;
        let (mut roll_out, mut pitch_out, mut yaw_out) = (0.0, 0.0, 0.0);
        if sp.thrust == 0 {
            self.reset_pids();
            self.yaw_desired_deg = imu.yaw_deg;
            self.rate_desired = [0.0; 3];
        } else {
            if self
                .tick
                .is_multiple_of(u64::from(self.gains.attitude_divider))
            {
                let att_dt = dt * f64::from(self.gains.attitude_divider);
                self.yaw_desired_deg = wrap_180(self.yaw_desired_deg + sp.yaw_rate_deg_s * att_dt);
                self.rate_desired = [
                    self.roll
                        .update(demand.roll_deg - imu.roll_deg, imu.roll_deg, att_dt),
                    self.pitch
                        .update(demand.pitch_deg - imu.pitch_deg, imu.pitch_deg, att_dt),
                    self.yaw.update(
                        wrap_180(self.yaw_desired_deg - imu.yaw_deg),
                        imu.yaw_deg,
                        att_dt,
                    ),
                ];
            }
            // controller_pid.c: "For roll and pitch, if velocity mode, overwrite rateDesired with
            // the setpoint value. Also reset the PID to avoid error buildup".
            if let Some(rate) = demand.roll_rate_deg_s {
                self.rate_desired[0] = rate;
                self.roll.reset_to(imu.roll_deg);
            }
            if let Some(rate) = demand.pitch_rate_deg_s {
                self.rate_desired[1] = rate;
                self.pitch.reset_to(imu.pitch_deg);
            }
            let [gx, gy, gz] = imu.gyro_deg_s;
            // Legacy frame: the pitch rate is -gyro.y.
            let rates = [gx, -gy, gz];
            roll_out = saturate_i16(self.roll_rate.update(
                self.rate_desired[0] - rates[0],
                rates[0],
                dt,
            ));
            pitch_out = saturate_i16(self.pitch_rate.update(
                self.rate_desired[1] - rates[1],
                rates[1],
                dt,
            ));
            yaw_out = -saturate_i16(self.yaw_rate.update(
                self.rate_desired[2] - rates[2],
                rates[2],
                dt,
            ));
        }
        self.tick += 1;
        // Bookkeeping for a later switch to generic setpoints (`controller_pid.c` keeps these
        // across setpoints); none of it feeds back into this path.
        self.prev_modes = if self.watchdog == Watchdog::Disabled || self.lockout.is_some() {
            Modes::NULL
        } else {
            let axis = |rate: Option<f64>| match rate {
                Some(_) => Mode::Velocity,
                None => Mode::Abs,
            };
            Modes {
                roll: axis(demand.roll_rate_deg_s),
                pitch: axis(demand.pitch_rate_deg_s),
                ..Modes::LEGACY
            }
        };
        self.actuator_thrust = f64::from(sp.thrust);
        self.attitude_desired_deg = [demand.roll_deg, demand.pitch_deg];
        self.control_thrust = f64::from(sp.thrust);
        self.mix(f64::from(sp.thrust), roll_out, pitch_out, yaw_out)
    }

    /// The 2015 stabiliser's situation-awareness call-out and alt-hold update ([`sitaw`]): the
    /// tests at 250 Hz (with their reactions on `flightmode.althold`), the alt-hold loop at
    /// 100 Hz.
    fn situation_tick(&mut self, imu: &ImuSample) {
        let k = self.ticks;
        self.ticks += 1;
        // commanderCachSelectorUpdate: no setpoint for 2 s (or none yet) drops to the ground,
        // which switches alt-hold off.
        if self.watchdog == Watchdog::Disabled {
            self.modes.althold = 0;
        }
        if k.is_multiple_of(self.sitaw_divider) {
            let att_dt = self.sitaw_divider as f64 / self.rate_hz;
            let [ax, ay, az] = imu.acc_g;
            // sensfusion6GetAccZWithoutGravity: the world-vertical component of the specific
            // force, minus 1 g (third row of the ZYX rotation; legacy pitch = −right-handed).
            let (sr, cr) = imu.roll_deg.to_radians().sin_cos();
            let (sp, cp) = imu.pitch_deg.to_radians().sin_cos();
            let acc_wz = sp * ax + sr * cp * ay + cr * cp * az - 1.0;
            let acc_mag = ax * ax + ay * ay + az * az;
            self.sitaw.alt.integrate_acc(acc_wz, att_dt);
            self.sitaw.test_free_fall(acc_wz, acc_mag);
            self.sitaw.test_tumbled(imu.roll_deg, imu.pitch_deg);
            self.sitaw.test_at_rest(imu.acc_g);
            if self.sitaw.ff.released && !self.sitaw.tu.released {
                self.set_alt_hold_mode(true);
            }
            if self.sitaw.tu.released {
                self.set_alt_hold_mode(false);
            }
        }
        if k.is_multiple_of(self.alt_hold_divider) {
            let asl_m = imu
                .nav
                .map_or(self.state_estimate().pos_m[2], |n| n.pos_m[2]);
            self.sitaw.alt.update(AltHoldInput {
                mode: self.modes.althold != 0,
                raw_thrust: self.setpoint.raw_thrust,
                asl_m,
                at_rest: self.sitaw.ar.released,
                tumbled: self.sitaw.tu.released,
                dt_s: self.alt_hold_divider as f64 / self.rate_hz,
            });
        }
    }

    /// `commanderSetAltHoldMode`: switching on also sets the active setpoint's thrust to 32767
    /// ("Dirty trick to ensure the altHoldChange variable remains zero") until the next packet.
    fn set_alt_hold_mode(&mut self, on: bool) {
        self.modes.althold = u8::from(on);
        if on {
            self.setpoint.raw_thrust = 32767;
        }
    }

    /// `isFlyingCheck` (`supervisor.c`).
    fn update_is_flying(&mut self, now_ns: u64) {
        if self.motors.iter().any(|&m| m > self.idle_thrust) {
            self.last_thrust_over_idle_ns = Some(now_ns);
        }
        self.is_flying = self
            .last_thrust_over_idle_ns
            .is_some_and(|t| now_ns.saturating_sub(t) < IS_FLYING_HYSTERESIS_NS);
    }

    /// `powerDistributionLegacy` + `powerDistributionCap`.
    fn mix(&self, thrust: f64, roll: f64, pitch: f64, yaw: f64) -> [u16; 4] {
        if self.lockout.is_some() {
            return [0; 4];
        }
        let r = roll / 2.0;
        let p = pitch / 2.0;
        let m = [
            thrust - r + p + yaw,
            thrust - r - p - yaw,
            thrust + r - p + yaw,
            thrust + r + p - yaw,
        ];
        let highest = m.iter().cloned().fold(f64::MIN, f64::max);
        let excess = (highest - 65535.0).max(0.0);
        let floor = f64::from(self.idle_thrust);
        m.map(|v| (v - excess).clamp(floor, 65535.0) as u16)
    }

    pub fn motors(&self) -> [u16; 4] {
        self.motors
    }

    pub fn watchdog(&self) -> Watchdog {
        self.watchdog
    }

    pub fn lockout(&self) -> Option<Lockout> {
        self.lockout
    }

    /// One word for logs: `tumbled` (the supervisor's lock, or situation awareness cutting the
    /// thrust), `estop`, or the watchdog state.
    pub fn state_name(&self) -> &'static str {
        match (self.lockout, self.watchdog) {
            (Some(Lockout::Tumbled), _) => "tumbled",
            (None, _) if self.sitaw.tu.released => "tumbled",
            (Some(Lockout::EmergencyStop), _) => "estop",
            (None, Watchdog::Fresh) => "fresh",
            (None, Watchdog::Levelling) => "levelling",
            (None, Watchdog::Disabled) => "disabled",
        }
    }

    pub fn thrust_locked(&self) -> bool {
        self.thrust_locked
    }

    /// The thrust the controller used in the last tick (after lock, clamps and watchdog).
    pub fn thrust(&self) -> u16 {
        self.thrust
    }

    /// Desired attitude (firmware frame, degrees) of the last tick: roll, pitch, yaw. Legacy
    /// setpoints: the packet's roll and pitch; generic ones: `controller.roll/pitch`
    /// (`attitudeDesired`, from the position controller or the setpoint).
    pub fn attitude_setpoint_deg(&self) -> [f64; 3] {
        match self.generic {
            None => [
                self.legacy_attitude_deg[0],
                self.legacy_attitude_deg[1],
                self.yaw_desired_deg,
            ],
            Some(_) => [
                self.attitude_desired_deg[0],
                self.attitude_desired_deg[1],
                self.yaw_desired_deg,
            ],
        }
    }

    /// The position and velocity estimate (`stateEstimate.x/y/z/vx/vy/vz`).
    pub fn state_estimate(&self) -> StateEstimate {
        self.estimator.estimate()
    }

    /// Whether external positions have arrived and drive the estimate.
    pub fn external_position_fused(&self) -> bool {
        self.estimator.fused()
    }

    /// When the latest external position arrived.
    pub fn last_external_position_ns(&self) -> Option<u64> {
        self.last_ext_pos_ns
    }

    /// The attitude estimate as `stabilizer.roll/pitch/yaw` (and `stateEstimate.roll/...`) log
    /// it (`stabilizer.c`: `state.attitude`): degrees, legacy frame, so pitch is positive nose
    /// up (`kalman_core.c` stores `-pitch`); roll positive right side down; yaw counter-clockwise.
    pub fn attitude_deg(&self) -> [f64; 3] {
        self.attitude_deg
    }

    /// `stabilizer.thrust` (`control.thrust`): the thrust the controller used in the last tick,
    /// before mixing (raw, 0..65535, float in the firmware).
    pub fn stabilizer_thrust(&self) -> f64 {
        self.control_thrust
    }

    /// The supervisor's armed flag. A CF2 arms itself (`AUTO_ARMING`, supervisor.c) and disarms
    /// when locked (tumble, emergency stop).
    pub fn armed(&self) -> bool {
        self.lockout.is_none()
    }

    /// `isFlyingCheck`: a motor ran above the idle thrust within the last 2 s.
    pub fn is_flying(&self) -> bool {
        self.is_flying
    }

    /// What situation awareness detects now (see [`sitaw`]).
    pub fn situation(&self) -> Situation {
        Situation {
            free_fall: self.sitaw.ff.released,
            at_rest: self.sitaw.ar.released,
            tumbled: self.sitaw.tu.released,
            alt_hold: self.sitaw.alt.alt_hold,
            alt_hold_target_m: self.sitaw.alt.target_m,
            auto_takeoff: self.sitaw.alt.auto_to.active,
        }
    }

    /// The rate setpoint of the last tick (legacy frame, deg/s): roll, pitch, yaw.
    pub fn rate_setpoint_deg_s(&self) -> [f64; 3] {
        self.rate_desired
    }
}

fn saturate_i16(v: f64) -> f64 {
    v.clamp(-32767.0, 32767.0)
}

fn wrap_180(deg: f64) -> f64 {
    let mut a = deg % 360.0;
    if a > 180.0 {
        a -= 360.0;
    } else if a < -180.0 {
        a += 360.0;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level() -> ImuSample {
        ImuSample {
            acc_g: [0.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    fn sp(thrust: u16) -> RpytSetpoint {
        RpytSetpoint {
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust,
        }
    }

    #[test]
    fn thrust_locked_until_zero_packet() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.receive(0, &sp(40000));
        assert_eq!(
            fw.step(0, &level()),
            [0; 4],
            "locked: first packet was not zero"
        );
        fw.receive(2_000_000, &sp(40000));
        assert_eq!(fw.step(2_000_000, &level()), [0; 4], "still locked");
        fw.receive(4_000_000, &sp(0));
        fw.receive(6_000_000, &sp(40000));
        assert_eq!(
            fw.step(6_000_000, &level()),
            [40000; 4],
            "unlocked by the zero packet"
        );
    }

    #[test]
    fn thrust_clamps() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.receive(0, &sp(0));
        fw.receive(1, &sp(999));
        assert_eq!(fw.step(2, &level()), [0; 4]);
        fw.receive(3, &sp(65000));
        assert_eq!(fw.step(4, &level()), [60000; 4]);
    }

    #[test]
    fn watchdog_levels_at_500ms_and_cuts_at_2s() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.receive(0, &sp(0));
        let mut tilt = sp(40000);
        tilt.roll_deg = 10.0;
        fw.receive(1_000, &tilt);
        fw.step(2_000, &level());
        assert_eq!(fw.watchdog(), Watchdog::Fresh);
        assert!(fw.attitude_setpoint_deg()[0] == 10.0);
        fw.step(499_000_000, &level());
        assert_eq!(fw.watchdog(), Watchdog::Fresh);
        let m = fw.step(502_000_000, &level());
        assert_eq!(fw.watchdog(), Watchdog::Levelling);
        assert!(m.iter().all(|&v| v > 0), "levelling keeps thrust: {m:?}");
        let m = fw.step(2_002_000_000, &level());
        assert_eq!(fw.watchdog(), Watchdog::Disabled);
        assert_eq!(m, [0; 4]);
        // After the cut the thrust is locked again until a zero packet.
        fw.receive(2_010_000_000, &sp(40000));
        assert_eq!(fw.step(2_010_000_000, &level()), [0; 4]);
        assert!(fw.thrust_locked());
    }

    #[test]
    fn positive_roll_error_speeds_up_the_left_motors() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.receive(0, &sp(0));
        let mut s = sp(30000);
        s.roll_deg = 5.0;
        fw.receive(1, &s);
        let m = fw.step(2, &level());
        // M3, M4 are on the left (+y): they must push harder to lower the right side.
        assert!(m[2] > m[1] && m[3] > m[0], "{m:?}");
    }

    #[test]
    fn mixer_cap_sacrifices_thrust_not_attitude() {
        let fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        let m = fw.mix(60000.0, 20000.0, 0.0, 0.0);
        assert_eq!(m[2], 65535);
        assert_eq!(i32::from(m[2]) - i32::from(m[1]), 20000);
    }

    #[test]
    fn upside_down_locks_out() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.receive(0, &sp(0));
        fw.receive(1, &sp(40000));
        let flipped = ImuSample {
            acc_g: [0.0, 0.0, -1.0],
            ..Default::default()
        };
        for k in 0..100u64 {
            fw.receive(k * 2_000_000, &sp(40000));
            fw.step(k * 2_000_000, &flipped);
        }
        assert_eq!(fw.lockout(), Some(Lockout::Tumbled));
        assert_eq!(fw.motors(), [0; 4]);
    }
}
