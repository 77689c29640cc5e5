//! A model of the Crazyflie firmware's path from a setpoint to four motor commands:
//! commander (`crtp_commander_rpyt.c`: thrust lock, clamps, inverted yaw rate; the generic
//! setpoints of `crtp_commander_generic.c`, see [`setpoint`]), the supervisor's state machine
//! ([`supervisor`]: arming, level-out after 500 ms without setpoints, "Locked" after 2 s in
//! flight, tumble → crashed and the client's recovery, emergency stop; in the 2016.02 era the
//! commander's watchdog instead, which cuts and re-locks the thrust), the state estimate with external positions ([`estimator`]),
//! the on-board position controller (`position_controller_pid.c`, see [`position`]), the PID
//! attitude and rate cascade (`controller_pid.c`, `attitude_pid_controller.c`, `pid.c`; the 2016
//! `pid.c`/`controller.c` for the `Era2015` gains, see `pid.rs`) and the
//! legacy X mixer with its saturation cap (`power_distribution_quadrotor.c`); the `flightmode`
//! stabilisation and yaw modes of the RPYT decoder ([`modes`]); situation awareness with the 2015
//! barometric alt-hold and automatic take-off ([`sitaw`]); and the parameters that switch and
//! tune all of it ([`params`]).
//!
//! The legacy RPYT path ([`Firmware::receive`]) keeps the commander operations it had before the
//! other setpoint types were added; its PIDs follow `controllerPid` (mode-change and thrust-0
//! resets, D on measurement with the yaw delta wrapped) or, with the `Era2015` gains, the 2016
//! stabiliser loop. The generic setpoints take a separate path through [`Firmware::step`] that
//! follows `controller_pid.c`.
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
mod pid;
pub mod position;
pub mod power;
pub mod sensfusion;
pub mod sensors;
pub mod setpoint;
pub mod sitaw;
pub mod supervisor;

pub use estimator::StateEstimate;
pub use params::{ParamError, ParamSpec, ParamType, firmware_param, firmware_params};
pub use pid::{GainSet, PidForm, PidGains};
pub use setpoint::{FwSetpoint, Mode, Modes, Setpoint, manual_thrust_from_pct};
pub use sitaw::Situation;
pub use supervisor::{Lockout, Supervisor, SupervisorState};

use modes::{FlightModes, LegacyDemand};
use sitaw::{AltHoldInput, SitAw};

use estimator::Estimator;
use pid::{Pid, saturate_i16};
use position::PositionController;
use power::PowerDistribution;

const MIN_THRUST: u16 = 1000;
const MAX_THRUST: u16 = 60000;
use supervisor::{Inputs as SupervisorInputs, Override, WDT_SHUTDOWN_NS, WDT_STABILIZE_NS};
/// `POSITION_RATE` = `RATE_100_HZ` (`stabilizer_types.h`).
const POSITION_RATE_HZ: f64 = 100.0;
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

/// State of the setpoint watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Watchdog {
    /// The null setpoint, motors off: 2016.02, no setpoint yet or none for 2 s (the thrust
    /// re-locks); 2a18fc29, the supervisor cannot fly or substitutes the null setpoint.
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
    /// The supervisor ([`supervisor`]; disabled for the 2016.02 era).
    supervisor: Supervisor,
    /// Which firmware era: `Era2015` = 2016.02, the others = 2a18fc29.
    era: FirmwareGains,
    /// `now_ns` of the latest step.
    now_ns: u64,
    /// Mirrors [`Supervisor::lockout`] after each step (read by the setpoint paths).
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
    rate_hz: f64,
    /// Mixer, battery compensation and cap of the build ([`power`]).
    power: PowerDistribution,
    /// Flying on the firmware's own attitude estimate ([`Firmware::set_attitude_estimation`]);
    /// None: on the sample's (true) attitude.
    attitude_estimation: Option<sensfusion::AttitudeEstimation>,
}

impl Firmware {
    /// `rate_hz` is the rate at which [`Firmware::step`] is called (500 Hz on a CF2.x).
    pub fn new(kind: FirmwareGains, rate_hz: f64, idle_thrust: u16) -> Self {
        let gains = GainSet::of(kind);
        let dt_s = 1.0 / rate_hz;
        let att_dt_s = dt_s * f64::from(gains.attitude_dt_ticks);
        let pid = |g, dt, yaw| Pid::new(g, gains.form, dt, yaw);
        Self {
            dt_s: 1.0 / rate_hz,
            idle_thrust,
            setpoint: LegacySetpoint::default(),
            last_rx_ns: None,
            thrust_locked: true,
            watchdog: Watchdog::Disabled,
            yaw_desired_deg: 0.0,
            roll: pid(gains.roll, att_dt_s, false),
            pitch: pid(gains.pitch, att_dt_s, false),
            yaw: pid(gains.yaw, att_dt_s, true),
            roll_rate: pid(gains.roll_rate, dt_s, false),
            pitch_rate: pid(gains.pitch_rate, dt_s, false),
            yaw_rate: pid(gains.yaw_rate, dt_s, false),
            gains,
            rate_desired: [0.0; 3],
            tick: 0,
            supervisor: match kind {
                FirmwareGains::Era2015 => Supervisor::disabled(),
                // `AUTO_ARMING` unless `CONFIG_MOTORS_REQUIRE_ARMING` (cf21bl_defconfig:3).
                FirmwareGains::Current => Supervisor::new(true),
                FirmwareGains::Cf21Brushless => Supervisor::new(false),
            },
            era: kind,
            now_ns: 0,
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
            modes: FlightModes {
                era2015: kind == FirmwareGains::Era2015,
                ..FlightModes::default()
            },
            legacy_attitude_deg: [0.0; 2],
            sitaw: SitAw::default(),
            tumble_check_enabled: true,
            ticks: 0,
            sitaw_divider: (rate_hz / SITAW_RATE_HZ).round().max(1.0) as u64,
            alt_hold_divider: (rate_hz / ALT_HOLD_RATE_HZ).round().max(1.0) as u64,
            rate_hz,
            power: PowerDistribution::for_build(kind, rate_hz, idle_thrust),
            attitude_estimation: None,
        }
    }

    /// On: fly on the firmware's own attitude estimate (BMI088 sensor processing and the
    /// complementary estimator, [`sensfusion`]), the samples given to [`Firmware::step`] then
    /// carrying the chip's raw gyro and accelerometer; their roll/pitch/yaw are ignored. Off
    /// (the default): fly on the sample's attitude (the truth). Switching on starts from
    /// power-on (no bias, level, yaw 0).
    pub fn set_attitude_estimation(&mut self, on: bool) {
        self.attitude_estimation = on.then(|| sensfusion::AttitudeEstimation::new(self.rate_hz));
    }

    /// One sensor sample while the quad sits still between power-on and the flight: sensor
    /// processing and estimator only, no stabiliser, no time passing for the rest of the
    /// firmware. Does nothing unless [`Firmware::set_attitude_estimation`] is on.
    pub fn feed_sensors(&mut self, raw: &ImuSample) {
        if let Some(est) = self.attitude_estimation.as_mut() {
            est.apply(raw);
        }
    }

    /// The attitude estimation, when on.
    pub fn attitude_estimation(&self) -> Option<&sensfusion::AttitudeEstimation> {
        self.attitude_estimation.as_ref()
    }

    /// A legacy setpoint packet arrived (the commander's CRTP callback).
    /// The thrust lock re-engages, in 2016.02, when the watchdog cut the thrust after 2 s
    /// without setpoints (`modules/src/commander.c:111-117` @2016.02); at 2a18fc29 only while
    /// the commander's priority is still `COMMANDER_PRIORITY_DISABLE`, i.e. before the first
    /// setpoint since boot (`crtp_commander_rpyt.c:125-127`, `commander.c:65`).
    pub fn receive(&mut self, now_ns: u64, sp: &RpytSetpoint) {
        let relock = match self.era {
            FirmwareGains::Era2015 => self.watchdog == Watchdog::Disabled,
            FirmwareGains::Current | FirmwareGains::Cf21Brushless => self.last_rx_ns.is_none(),
        };
        if relock {
            self.thrust_locked = true;
        }
        if sp.thrust == 0 {
            self.thrust_locked = false;
        }
        // 2016.02 passes `rawThrust > MIN_THRUST` (commander.c:192), 2a18fc29 fails
        // `rawThrust < MIN_THRUST` (crtp_commander_rpyt.c:135): 1000 itself differs.
        let below_min = match self.era {
            FirmwareGains::Era2015 => sp.thrust <= MIN_THRUST,
            FirmwareGains::Current | FirmwareGains::Cf21Brushless => sp.thrust < MIN_THRUST,
        };
        let thrust = if self.thrust_locked || below_min {
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
    /// 6:1 type 3): motors off until the model is rebuilt, whatever arrives next ("Locked"),
    /// except on the ground after a landing, where "Landed" ignores it until its reset. The
    /// 2016.02 firmware has no supervisor and ignores it.
    pub fn emergency_stop(&mut self) {
        self.supervisor.emergency_stop(self.now_ns);
        self.lockout = self.supervisor.lockout();
    }

    /// A client's arming request (CRTP 9:1 `CMD_ARM_SYSTEM`, `supervisorRequestArming`): true
    /// when done (or already so). Arming is possible in "Pre-flight checks passed" only; a CF2
    /// arms itself, a CF2.1 Brushless waits for this.
    pub fn request_arming(&mut self, arm: bool) -> bool {
        self.supervisor.request_arming(arm)
    }

    /// A client's crash-recovery request (CRTP 9:1 `CMD_RECOVER_SYSTEM`,
    /// `supervisorRequestCrashRecovery(true)`): true when not crashed afterwards (refused while
    /// still tumbled).
    pub fn request_crash_recovery(&mut self) -> bool {
        self.supervisor.request_crash_recovery()
    }

    /// The supervisor's state (see [`supervisor`]).
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// `attitudeControllerResetAllPID` (attitude_pid_controller.c:183 @2a18fc29): the angle
    /// PIDs to the estimate, the rate PIDs to 0 (`controllerResetAllPID` @2016.02).
    fn reset_pids(&mut self, imu: &ImuSample) {
        self.roll.reset(imu.roll_deg);
        self.pitch.reset(imu.pitch_deg);
        self.yaw.reset(imu.yaw_deg);
        self.roll_rate.reset(0.0);
        self.pitch_rate.reset(0.0);
        self.yaw_rate.reset(0.0);
    }

    /// The supervisor's ticks due by now ([`supervisor`]), then the setpoint watchdog: in
    /// 2016.02 by the setpoint's age (`commanderWatchdog`: level after 500 ms, cut after 2 s);
    /// at 2a18fc29 from the supervisor's state (`stabilizer.c:332-354`: zeroed when the quad
    /// cannot fly, level-out in "Warning, level out", null outside the flying states).
    fn supervise(&mut self, now_ns: u64, acc_g: [f64; 3]) {
        self.now_ns = now_ns;
        let could_fly = self.supervisor.can_fly();
        self.supervisor.run(
            now_ns,
            SupervisorInputs {
                acc_g,
                setpoint_rx_ns: self.last_rx_ns.filter(|_| could_fly),
                over_idle: self.motors.iter().any(|&m| m > self.idle_thrust),
                tumble_check_enabled: self.tumble_check_enabled,
            },
        );
        self.lockout = self.supervisor.lockout();
        self.watchdog = if self.supervisor.enabled() {
            // No setpoint since boot: the commander's initial null setpoint (commander.c:61).
            match self
                .supervisor
                .override_for(could_fly && self.last_rx_ns.is_some())
            {
                Override::Keep => Watchdog::Fresh,
                Override::LevelOut => Watchdog::Levelling,
                Override::Null => Watchdog::Disabled,
            }
        } else {
            match self.last_rx_ns.map(|t| now_ns.saturating_sub(t)) {
                None => Watchdog::Disabled,
                Some(a) if a > WDT_SHUTDOWN_NS => Watchdog::Disabled,
                Some(a) if a > WDT_STABILIZE_NS => Watchdog::Levelling,
                Some(_) => Watchdog::Fresh,
            }
        };
    }

    /// One tick of the stabiliser loop. Returns the four motor commands (M1..M4).
    pub fn step(&mut self, now_ns: u64, imu: &ImuSample) -> [u16; 4] {
        // Flying on the estimate: the sample's gyro and accelerometer are the chip's readings,
        // processed and fused here before anything else sees them ([`sensfusion`]). The
        // stabiliser loop starts only once the gyro bias is found (`stabilizer.c:302`).
        let estimated;
        let imu = match self.attitude_estimation.as_mut() {
            None => imu,
            Some(est) => {
                estimated = est.apply(imu);
                if !est.calibrated() {
                    self.motors = [0; 4];
                    return self.motors;
                }
                &estimated
            }
        };
        self.supervise(now_ns, imu.acc_g);
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
        // "to be extra sure prevent motors from running" (stabilizer.c:360-367).
        if !self.supervisor.motors_allowed() {
            self.motors = [0; 4];
        }
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
            // The packet's yaw as sent (the setpoint holds it un-inverted).
            self.modes
                .decode(sp.roll_deg, sp.pitch_deg, -sp.yaw_rate_deg_s, imu.yaw_deg)
        };
        self.legacy_attitude_deg = [demand.roll_deg, demand.pitch_deg];

        // The attitude and rate PIDs ([`pid`]): `controllerPid` (controller_pid.c:74 @2a18fc29)
        // or the 2016 stabiliser loop (stabilizer.c:251-352 @2016.02), by the gain set's form.
        let current = self.gains.form == PidForm::Measured;
        let modes_now = if self.watchdog == Watchdog::Disabled || self.lockout.is_some() {
            // The supervisor's (or the watchdog's) null setpoint.
            Modes::NULL
        } else {
            let axis = |rate: Option<f64>| match rate {
                Some(_) => Mode::Velocity,
                None => Mode::Abs,
            };
            Modes {
                roll: axis(demand.roll_rate_deg_s),
                pitch: axis(demand.pitch_rate_deg_s),
                yaw: match demand.yaw_deg {
                    Some(_) => Mode::Abs,
                    None => Mode::Velocity,
                },
                ..Modes::LEGACY
            }
        };
        // setpointModeChanged (controller_pid.c:81): a change of modes (e.g. a `flightmode`
        // axis switched between rate and angle) reinitialises every PID. 2016 had no such reset.
        if current && modes_now != self.prev_modes {
            self.reset_all_pids(imu, self.estimator.estimate().pos_m);
        }
        self.prev_modes = modes_now;
        let divider = u64::from(self.gains.attitude_divider);
        let attitude_tick = self.tick.is_multiple_of(divider);
        if attitude_tick {
            // Both eras integrate the yaw rate at the rate-loop rate (2016: `eulerYawDesired/500`
            // every tick; now every ATTITUDE_RATE tick), read here every `divider` ticks.
            let att_dt = self.dt_s * divider as f64;
            // `flightmode.stabModeYaw` angle: the packet's heading ([`modes`]).
            self.yaw_desired_deg = match demand.yaw_deg {
                Some(yaw) => yaw,
                None => wrap_180(self.yaw_desired_deg + sp.yaw_rate_deg_s * att_dt),
            };
            self.rate_desired = [
                self.roll.update(demand.roll_deg, imu.roll_deg),
                self.pitch.update(demand.pitch_deg, imu.pitch_deg),
                self.yaw.update(self.yaw_desired_deg, imu.yaw_deg),
            ];
        }
        // "For roll and pitch, if velocity mode, overwrite rateDesired with the setpoint value"
        // (controller_pid.c:133; stabilizer.c:304 @2016.02). Neither resets the angle PID here.
        if let Some(rate) = demand.roll_rate_deg_s {
            self.rate_desired[0] = rate;
        }
        if let Some(rate) = demand.pitch_rate_deg_s {
            self.rate_desired[1] = rate;
        }
        let [gx, gy, gz] = imu.gyro_deg_s;
        // Legacy frame: the pitch rate is -gyro.y (controller_pid.c:142).
        let rates = [gx, -gy, gz];
        let mut roll_out = saturate_i16(self.roll_rate.update(self.rate_desired[0], rates[0]));
        let mut pitch_out = saturate_i16(self.pitch_rate.update(self.rate_desired[1], rates[1]));
        let mut yaw_out = -saturate_i16(self.yaw_rate.update(self.rate_desired[2], rates[2]));
        if sp.thrust == 0 {
            // controller_pid.c:163-179 (stabilizer.c:345-352 @2016.02): outputs 0, every PID
            // reset, the yaw setpoint to the estimate.
            (roll_out, pitch_out, yaw_out) = (0.0, 0.0, 0.0);
            if current {
                self.reset_all_pids(imu, self.estimator.estimate().pos_m);
            } else {
                self.reset_pids(imu);
            }
            self.yaw_desired_deg = imu.yaw_deg;
        }
        self.tick += 1;
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

    /// `controlMotors`: mixer, battery compensation, cap ([`power`]). Locked out:
    /// `motorsStop` (the compensation's low-pass does not run either).
    fn mix(&mut self, thrust: f64, roll: f64, pitch: f64, yaw: f64) -> [u16; 4] {
        if self.lockout.is_some() {
            return [0; 4];
        }
        self.power.distribute(thrust, roll, pitch, yaw)
    }

    /// The battery voltage the firmware's power management measures (`pmGetBatteryVoltage`),
    /// from now until the next call; the plant feeds it every firmware tick. The compensation
    /// low-passes it itself ([`power`]). Not a finite voltage: ignored.
    pub fn set_battery_voltage(&mut self, volts: f64) {
        self.power.set_battery_voltage(volts);
    }

    /// Mixer, compensation and cap state (measured and filtered voltage, requests).
    pub fn power(&self) -> &PowerDistribution {
        &self.power
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

    /// One word for logs: `tumbled` (the supervisor's tumble check, or situation awareness
    /// cutting the thrust), `estop`, `locked` (link lost in flight), `crashed`, or the
    /// watchdog state.
    pub fn state_name(&self) -> &'static str {
        match (self.lockout, self.watchdog) {
            (Some(Lockout::Tumbled), _) => "tumbled",
            (None, _) if self.sitaw.tu.released => "tumbled",
            (Some(Lockout::EmergencyStop), _) => "estop",
            (Some(Lockout::LinkLost), _) => "locked",
            (Some(Lockout::Crashed), _) => "crashed",
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

    /// The supervisor's armed flag (`supervisorIsArmed`). A CF2 arms itself (`AUTO_ARMING`,
    /// supervisor.c:61-65, 451-456), a CF2.1 Brushless on request; both disarm in any state but
    /// arming, ready, flying, level-out and landed. Always true in 2016.02 (no supervisor).
    pub fn armed(&self) -> bool {
        self.supervisor.armed()
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

    /// What the default build's battery compensation makes of a level `cmd` on a charged
    /// battery ([`power`]).
    fn compensated(cmd: u16) -> [u16; 4] {
        PowerDistribution::for_build(FirmwareGains::Current, 500.0, 0).distribute(
            f64::from(cmd),
            0.0,
            0.0,
            0.0,
        )
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
            compensated(40000),
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
        assert_eq!(fw.step(4, &level()), compensated(60000));
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
        // The supervisor sees it at its next 25 Hz tick (520 ms).
        let m = fw.step(522_000_000, &level());
        assert_eq!(fw.watchdog(), Watchdog::Levelling);
        assert!(m.iter().all(|&v| v > 0), "levelling keeps thrust: {m:?}");
        let m = fw.step(2_042_000_000, &level());
        assert_eq!(fw.watchdog(), Watchdog::Disabled);
        assert_eq!(m, [0; 4]);
        // Cut in flight: "Locked, reboot required" (2a18fc29), whatever arrives next.
        fw.receive(2_050_000_000, &sp(0));
        fw.receive(2_050_000_000, &sp(40000));
        assert_eq!(fw.step(2_050_000_000, &level()), [0; 4]);
        assert_eq!(fw.lockout(), Some(Lockout::LinkLost));
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
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.power = fw.power.clone().with_compensation(power::Compensation::Off);
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
        // The motors ran for one supervisor tick: "Flying", then tumbled → "Crashed".
        assert_eq!(fw.lockout(), Some(Lockout::Crashed));
        assert_eq!(fw.motors(), [0; 4]);
    }
}
