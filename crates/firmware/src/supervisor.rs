//! The supervisor (`src/modules/src/supervisor.c`, `supervisor_state_machine.c` @2a18fc29):
//! a state machine run at `RATE_SUPERVISOR` = 25 Hz (`stabilizer_types.h:375`) that arms, lets
//! the quad fly, levels it out when setpoints stop, and stops the motors on tumble, emergency
//! stop or a link loss in flight.
//!
//! What is modelled, from the source:
//! - conditions (`updateAndPopulateConditions`, supervisor.c:461): armed, flying (a motor above
//!   idle within 2 s, `isFlyingCheck`), tumbled (`isTumbledCheck`, gated by
//!   `supervisor.tmblChckEn`), setpoint age > 500 ms (warning) and > 2 s (timeout), emergency
//!   stop (latched request), crashed, pre-flight timeout (30 s armed in "Ready to fly"), landing
//!   timeout (3 s after the first landing: `latestLandingTick` is never cleared), spin-up timeout
//!   (2 s); `rpmAtArmingValid` is always set (no bidirectional DSHOT on the CF2 or the CF2.1
//!   Brushless defconfig), motors-not-responding and deck faults never are;
//!   `supervisor.crashDetectGs` is 0 by default (`CONFIG_SUPERVISOR_CRASH_DETECTION_G`), off;
//! - the transition tables, first match wins, one transition per tick;
//! - the post-transition actions: disarm outside arming/ready/flying/level-out/landed,
//!   auto-arm on entering "Pre-flight checks passed" unless `CONFIG_MOTORS_REQUIRE_ARMING`
//!   (set for the CF2.1 Brushless: `configs/cf21bl_defconfig`, `Kconfig:65-68`), "Crashed" sets
//!   the crashed flag that only a client's recovery request clears;
//! - what the stabiliser does with the state (`stabilizer.c:332-367`): the setpoint is zeroed
//!   when the quad cannot fly, level-out in "Warning, level out", the null setpoint in any
//!   state but arming/ready/flying/level-out/landed, and the motors stopped unless arming,
//!   ready, flying, levelling or landed.
//!
//! Simplifications, stated: the model starts after the boot sequence ("Not initialized →
//! Pre-flight checks not passed → passed [→ Arming → Ready]", 3–4 ticks), as a client connects
//! seconds after power-on; a tick that the caller skipped (steps further apart than 40 ms) is run
//! late with the latest inputs; an emergency stop request takes effect at once ("Locked"), not
//! over the next two 40 ms ticks.
//!
//! The 2016.02 firmware (`FirmwareGains::Era2015`) has no supervisor: its commander watchdog
//! levels at 500 ms and cuts the thrust (and re-locks it) at 2 s, and nothing detects a tumble
//! (`sitaw.h`: `//#define SITAW_ENABLED`). [`Supervisor::disabled`] stands for that.

use serde::Serialize;

/// `RATE_SUPERVISOR` (`stabilizer_types.h:375` @2a18fc29).
const TICK_NS: u64 = 40_000_000;
/// `COMMANDER_WDT_TIMEOUT_STABILIZE`, `COMMANDER_WDT_TIMEOUT_SHUTDOWN` (supervisor.c:58-59).
pub(crate) const WDT_STABILIZE_NS: u64 = 500_000_000;
pub(crate) const WDT_SHUTDOWN_NS: u64 = 2_000_000_000;
/// `IS_FLYING_HYSTERESIS_THRESHOLD` (supervisor.c:56).
const IS_FLYING_HYSTERESIS_NS: u64 = 2_000_000_000;
/// `PREFLIGHT_TIMEOUT_MS`, `LANDING_TIMEOUT_MS`, `ARMING_SPINUP_TIMEOUT_MS`
/// (`platform_defaults.h:176-186`).
const PREFLIGHT_TIMEOUT_NS: u64 = 30_000_000_000;
const LANDING_TIMEOUT_NS: u64 = 3_000_000_000;
const SPINUP_TIMEOUT_NS: u64 = 2_000_000_000;
/// Tumble check thresholds (`platform_defaults.h:156-171`, supervisor.c:311-359): tilted
/// (acc.z < 0.5 g) for 1 s, or upside down (acc.z < −0.2 g) after 0.1 s of being tilted,
/// unless free falling (|acc| < 0.1 g on every axis).
const TILT_ACC_Z_G: f64 = 0.5;
const TILT_MAX_NS: u64 = 1_000_000_000;
const UPSIDE_DOWN_ACC_Z_G: f64 = -0.2;
const UPSIDE_DOWN_MAX_NS: u64 = 100_000_000;
const FREE_FALL_G: f64 = 0.1;

// Condition bits (`supervisor_state_machine.h`), the ones that can be set here.
const ARMED: u32 = 1 << 0;
const IS_FLYING: u32 = 1 << 1;
const IS_TUMBLED: u32 = 1 << 2;
const WDT_WARNING: u32 = 1 << 3;
const WDT_TIMEOUT: u32 = 1 << 4;
const EMERGENCY_STOP: u32 = 1 << 5;
const CRASHED: u32 = 1 << 6;
const PREFLIGHT_TIMEOUT: u32 = 1 << 7;
const LANDING_TIMEOUT: u32 = 1 << 8;
const RPM_AT_ARMING_VALID: u32 = 1 << 10;
const SPINUP_TIMEOUT: u32 = 1 << 11;

/// `supervisorState_t` (without "Not initialized", which the model never is in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SupervisorState {
    PreFlChecksNotPassed,
    PreFlChecksPassed,
    Arming,
    ReadyToFly,
    Flying,
    Landed,
    Reset,
    WarningLevelOut,
    ExceptFreeFall,
    Locked,
    Crashed,
}

/// Why the supervisor keeps the motors stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Lockout {
    /// Tumbled while not flying: the pre-flight checks fail until the quad is upright again
    /// (then it re-arms by itself on a CF2); or, tumbled while levelling out: locked.
    Tumbled,
    /// The emergency stop (`SUPERVISOR_CB_EMERGENCY_STOP` → "Exception, free fall" → "Locked,
    /// reboot required").
    EmergencyStop,
    /// No setpoint for 2 s while flying (`SUPERVISOR_CB_COMMANDER_WDT_TIMEOUT` → "Exception,
    /// free fall" → "Locked, reboot required").
    LinkLost,
    /// Tumbled in flight: "Crashed, recovery required" (a client's crash-recovery request,
    /// once upright).
    Crashed,
}

/// What the supervisor does to the setpoint (`supervisorOverrideSetpoint`, plus the
/// stabiliser's zeroing when the quad cannot fly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Override {
    Keep,
    LevelOut,
    Null,
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Supervisor {
    enabled: bool,
    auto_arming: bool,
    state: SupervisorState,
    armed: bool,
    crashed: bool,
    is_tumbled: bool,
    estop_requested: bool,
    tumble_since_ns: Option<u64>,
    latest_thrust_ns: Option<u64>,
    latest_arming_ns: u64,
    latest_landing_ns: Option<u64>,
    arming_start_ns: Option<u64>,
    next_tick_ns: u64,
    /// The cause recorded on entering "Exception, free fall".
    lock_cause: Option<Lockout>,
}

/// What one supervisor tick reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inputs {
    pub acc_g: [f64; 3],
    /// When the active setpoint arrived; None: the stabiliser zeroed it (cannot fly) or there
    /// was none (its timestamp is then 0, i.e. very old).
    pub setpoint_rx_ns: Option<u64>,
    /// A motor ran above the idle thrust in the last tick.
    pub over_idle: bool,
    pub tumble_check_enabled: bool,
}

impl Supervisor {
    /// A booted supervisor: "Ready to fly" and armed when it arms itself (CF2), "Pre-flight
    /// checks passed" and waiting for an arming request otherwise (CF2.1 Brushless).
    pub fn new(auto_arming: bool) -> Self {
        Self {
            enabled: true,
            auto_arming,
            state: if auto_arming {
                SupervisorState::ReadyToFly
            } else {
                SupervisorState::PreFlChecksPassed
            },
            armed: auto_arming,
            crashed: false,
            is_tumbled: false,
            estop_requested: false,
            tumble_since_ns: None,
            latest_thrust_ns: None,
            latest_arming_ns: 0,
            latest_landing_ns: None,
            arming_start_ns: None,
            next_tick_ns: 0,
            lock_cause: None,
        }
    }

    /// The 2016.02 firmware: no supervisor; the quad can always fly and is never locked.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::new(true)
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn state(&self) -> SupervisorState {
        self.state
    }

    /// The firmware's state name (`stateNames`, supervisor_state_machine.c:39-52).
    pub fn state_name(&self) -> &'static str {
        use SupervisorState as S;
        match self.state {
            S::PreFlChecksNotPassed => "Pre-flight checks not passed",
            S::PreFlChecksPassed => "Pre-flight checks passed",
            S::Arming => "Arming",
            S::ReadyToFly => "Ready to fly",
            S::Flying => "Flying",
            S::Landed => "Landed",
            S::Reset => "Reset",
            S::WarningLevelOut => "Warning, level out",
            S::ExceptFreeFall => "Exception, free fall",
            S::Locked => "Locked",
            S::Crashed => "Crashed",
        }
    }

    /// `supervisorCanFly`.
    pub fn can_fly(&self) -> bool {
        use SupervisorState as S;
        !self.enabled
            || matches!(
                self.state,
                S::ReadyToFly | S::Flying | S::WarningLevelOut | S::Landed
            )
    }

    /// `supervisorAreMotorsAllowedToRun`.
    pub fn motors_allowed(&self) -> bool {
        use SupervisorState as S;
        !self.enabled
            || matches!(
                self.state,
                S::Arming | S::ReadyToFly | S::Flying | S::WarningLevelOut | S::Landed
            )
    }

    /// `supervisorIsArmed` (always true without a supervisor).
    pub fn armed(&self) -> bool {
        !self.enabled || self.armed
    }

    /// `supervisorCanArm`.
    pub fn can_arm(&self) -> bool {
        self.enabled && self.state == SupervisorState::PreFlChecksPassed
    }

    pub fn auto_arming(&self) -> bool {
        self.auto_arming
    }

    /// The supervisor's `isFlying`: flying or levelling out.
    pub fn is_flying(&self) -> bool {
        matches!(
            self.state,
            SupervisorState::Flying | SupervisorState::WarningLevelOut
        )
    }

    pub fn is_tumbled(&self) -> bool {
        self.is_tumbled
    }

    pub fn is_crashed(&self) -> bool {
        self.crashed
    }

    pub fn is_locked(&self) -> bool {
        self.state == SupervisorState::Locked
    }

    /// Why the motors are kept stopped, if they are (see [`Lockout`]).
    pub fn lockout(&self) -> Option<Lockout> {
        use SupervisorState as S;
        match self.state {
            S::ExceptFreeFall | S::Locked => self.lock_cause.or(Some(Lockout::EmergencyStop)),
            S::Crashed => Some(Lockout::Crashed),
            S::PreFlChecksNotPassed | S::PreFlChecksPassed | S::Reset if self.is_tumbled => {
                Some(Lockout::Tumbled)
            }
            _ => None,
        }
    }

    /// `supervisorRequestArming` (CRTP 9:1 `CMD_ARM_SYSTEM`): true when done or already so.
    pub fn request_arming(&mut self, arm: bool) -> bool {
        if !self.enabled || arm == self.armed {
            return true;
        }
        if arm && !self.can_arm() {
            return false;
        }
        self.armed = arm;
        true
    }

    /// `supervisorRequestCrashRecovery(true)` (CRTP 9:1 `CMD_RECOVER_SYSTEM`): clears the
    /// crashed flag unless still tumbled; true when not crashed afterwards.
    pub fn request_crash_recovery(&mut self) -> bool {
        if !self.crashed {
            return true;
        }
        if !self.is_tumbled {
            self.crashed = false;
            return true;
        }
        false
    }

    /// The emergency stop request (`crtpSupervisorIsEmergencyStopRequested`, latched), applied
    /// at once: every state that has an emergency-stop transition leaves for "Exception, free
    /// fall" ("Landed" has none; it is caught after its reset). None in 2016.02.
    pub fn emergency_stop(&mut self, now_ns: u64) {
        if !self.enabled {
            return;
        }
        self.estop_requested = true;
        let c = self.conditions_now() | EMERGENCY_STOP;
        let next = transition(self.state, c);
        if next != self.state {
            self.enter(next, c, now_ns);
        }
        // "Exception, free fall" always goes on to "Locked" at the following tick.
        if self.state == SupervisorState::ExceptFreeFall {
            self.enter(SupervisorState::Locked, c, now_ns);
        }
    }

    fn conditions_now(&self) -> u32 {
        let mut c = RPM_AT_ARMING_VALID;
        if self.armed {
            c |= ARMED;
        }
        if self.is_tumbled {
            c |= IS_TUMBLED;
        }
        if self.crashed {
            c |= CRASHED;
        }
        c
    }

    /// What the stabiliser does to this tick's setpoint, given whether the quad could fly
    /// before this tick's update (`stabilizer.c:332-354`).
    pub(crate) fn override_for(&self, could_fly: bool) -> Override {
        use SupervisorState as S;
        if !self.enabled {
            return Override::Keep;
        }
        if !could_fly {
            return Override::Null;
        }
        match self.state {
            S::Arming | S::ReadyToFly | S::Landed | S::Flying => Override::Keep,
            S::WarningLevelOut => Override::LevelOut,
            _ => Override::Null,
        }
    }

    /// Runs the supervisor ticks due by `now_ns` (`supervisorUpdate`).
    pub(crate) fn run(&mut self, now_ns: u64, i: Inputs) {
        if !self.enabled {
            return;
        }
        while self.next_tick_ns <= now_ns {
            let t = self.next_tick_ns;
            self.tick(t, i);
            self.next_tick_ns = t + TICK_NS;
        }
    }

    fn tick(&mut self, t: u64, i: Inputs) {
        let mut c = RPM_AT_ARMING_VALID;
        if self.armed {
            c |= ARMED;
        }
        if i.over_idle {
            self.latest_thrust_ns = Some(t);
        }
        if self
            .latest_thrust_ns
            .is_some_and(|lt| t - lt < IS_FLYING_HYSTERESIS_NS)
        {
            c |= IS_FLYING;
        }
        if self.tumbled_check(t, i.acc_g) && i.tumble_check_enabled {
            c |= IS_TUMBLED;
        }
        let age = i.setpoint_rx_ns.map_or(u64::MAX, |rx| t.saturating_sub(rx));
        if age > WDT_STABILIZE_NS {
            c |= WDT_WARNING;
        }
        if age > WDT_SHUTDOWN_NS {
            c |= WDT_TIMEOUT;
        }
        if self.estop_requested {
            c |= EMERGENCY_STOP;
        }
        if self.crashed {
            c |= CRASHED;
        }
        if self.state == SupervisorState::ReadyToFly
            && t.saturating_sub(self.latest_arming_ns) > PREFLIGHT_TIMEOUT_NS
        {
            c |= PREFLIGHT_TIMEOUT;
        }
        if self
            .latest_landing_ns
            .is_some_and(|l| t.saturating_sub(l) > LANDING_TIMEOUT_NS)
        {
            c |= LANDING_TIMEOUT;
        }
        if self.state == SupervisorState::Arming
            && self
                .arming_start_ns
                .is_some_and(|s| t.saturating_sub(s) > SPINUP_TIMEOUT_NS)
        {
            c |= SPINUP_TIMEOUT;
        }
        let next = transition(self.state, c);
        if next != self.state {
            self.enter(next, c, t);
        }
        // updateLogData.
        self.is_tumbled = c & IS_TUMBLED != 0;
    }

    /// `postTransitionActions` (supervisor.c:372-457).
    fn enter(&mut self, next: SupervisorState, c: u32, t: u64) {
        use SupervisorState as S;
        if next == S::ExceptFreeFall {
            self.lock_cause = Some(if c & EMERGENCY_STOP != 0 {
                Lockout::EmergencyStop
            } else if c & WDT_TIMEOUT != 0 {
                Lockout::LinkLost
            } else {
                Lockout::Tumbled
            });
        }
        if next == S::Locked && self.state == S::Crashed {
            self.lock_cause = Some(Lockout::EmergencyStop);
        }
        self.state = next;
        self.arming_start_ns = (next == S::Arming).then_some(t);
        if next == S::ReadyToFly {
            self.latest_arming_ns = t;
        }
        if next == S::Landed {
            self.latest_landing_ns = Some(t);
        }
        if next == S::Crashed {
            self.crashed = true;
        }
        if !matches!(
            next,
            S::Arming | S::ReadyToFly | S::Flying | S::WarningLevelOut | S::Landed
        ) {
            self.armed = false;
        }
        if self.auto_arming && next == S::PreFlChecksPassed {
            self.armed = true;
        }
    }

    /// `isTumbledCheck` (supervisor.c:311-359), crash detection by g off (default 0).
    fn tumbled_check(&mut self, t: u64, acc_g: [f64; 3]) -> bool {
        if acc_g.iter().all(|a| a.abs() < FREE_FALL_G) {
            self.tumble_since_ns = None;
        }
        if acc_g[2] >= TILT_ACC_Z_G {
            self.tumble_since_ns = None;
            return false;
        }
        let tumbled_for = t - *self.tumble_since_ns.get_or_insert(t);
        (acc_g[2] < UPSIDE_DOWN_ACC_Z_G && tumbled_for > UPSIDE_DOWN_MAX_NS)
            || tumbled_for > TILT_MAX_NS
    }
}

/// `areConditionsMet` for the `supervisorAll` combiner.
fn all(c: u32, set: u32, clear: u32) -> bool {
    c & set == set && c & clear == 0
}

/// `areConditionsMet` for `supervisorAny`: any of `set`, or not all of `clear`.
fn any(c: u32, set: u32, clear: u32) -> bool {
    c & set != 0 || c & clear != clear
}

/// The transition tables (supervisor_state_machine.c:73-356), first match wins.
fn transition(s: SupervisorState, c: u32) -> SupervisorState {
    use SupervisorState as S;
    let tumbled = c & IS_TUMBLED != 0;
    match s {
        S::PreFlChecksNotPassed if any(c, EMERGENCY_STOP, 0) => S::ExceptFreeFall,
        S::PreFlChecksNotPassed if !tumbled => S::PreFlChecksPassed,
        S::PreFlChecksPassed if any(c, EMERGENCY_STOP, 0) => S::ExceptFreeFall,
        S::PreFlChecksPassed if tumbled => S::PreFlChecksNotPassed,
        S::PreFlChecksPassed if all(c, ARMED, 0) => S::Arming,
        S::Arming if any(c, EMERGENCY_STOP, 0) => S::ExceptFreeFall,
        S::Arming if any(c, IS_TUMBLED | SPINUP_TIMEOUT, ARMED) => S::PreFlChecksNotPassed,
        S::Arming if all(c, RPM_AT_ARMING_VALID, 0) => S::ReadyToFly,
        S::ReadyToFly if any(c, EMERGENCY_STOP, 0) => S::ExceptFreeFall,
        S::ReadyToFly if any(c, IS_TUMBLED | PREFLIGHT_TIMEOUT, ARMED) => S::PreFlChecksNotPassed,
        S::ReadyToFly if all(c, IS_FLYING, 0) => S::Flying,
        S::Flying if any(c, WDT_TIMEOUT | EMERGENCY_STOP, 0) => S::ExceptFreeFall,
        S::Flying if tumbled => S::Crashed,
        S::Flying if all(c, 0, ARMED) => S::Reset,
        S::Flying if all(c, WDT_WARNING, 0) => S::WarningLevelOut,
        S::Flying if all(c, 0, IS_FLYING) => S::Landed,
        S::Landed if any(c, LANDING_TIMEOUT, ARMED) => S::Reset,
        S::Landed if all(c, IS_FLYING, 0) => S::Flying,
        S::Reset => S::PreFlChecksNotPassed,
        S::WarningLevelOut if any(c, WDT_TIMEOUT | IS_TUMBLED | EMERGENCY_STOP, 0) => {
            S::ExceptFreeFall
        }
        S::WarningLevelOut if all(c, 0, WDT_WARNING | WDT_TIMEOUT) => S::Flying,
        S::ExceptFreeFall => S::Locked,
        S::Crashed if all(c, 0, CRASHED | IS_TUMBLED) => S::PreFlChecksNotPassed,
        S::Crashed if all(c, EMERGENCY_STOP, 0) => S::Locked,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SupervisorState as S;

    #[test]
    fn tables_pick_the_first_matching_transition() {
        // Flying with a timed-out watchdog and a tumble: the free-fall exception comes first.
        assert_eq!(
            transition(S::Flying, ARMED | IS_TUMBLED | WDT_WARNING | WDT_TIMEOUT),
            S::ExceptFreeFall
        );
        assert_eq!(transition(S::Flying, ARMED | IS_TUMBLED), S::Crashed);
        assert_eq!(
            transition(S::Flying, ARMED | IS_FLYING | WDT_WARNING),
            S::WarningLevelOut
        );
        assert_eq!(transition(S::Flying, ARMED), S::Landed);
        assert_eq!(transition(S::Flying, IS_FLYING), S::Reset);
        // Landed ignores the watchdog and the emergency stop.
        assert_eq!(
            transition(S::Landed, ARMED | WDT_TIMEOUT | EMERGENCY_STOP),
            S::Landed
        );
        assert_eq!(transition(S::Locked, 0), S::Locked);
        assert_eq!(transition(S::Crashed, ARMED | CRASHED), S::Crashed);
        assert_eq!(transition(S::Crashed, 0), S::PreFlChecksNotPassed);
        assert_eq!(
            transition(S::ReadyToFly, ARMED | IS_TUMBLED),
            S::PreFlChecksNotPassed
        );
        assert_eq!(transition(S::ReadyToFly, 0), S::PreFlChecksNotPassed);
    }

    #[test]
    fn a_cf2_re_arms_itself_after_a_reset() {
        let mut s = Supervisor::new(true);
        s.state = S::Reset;
        s.armed = false;
        let i = Inputs {
            acc_g: [0.0, 0.0, 1.0],
            setpoint_rx_ns: None,
            over_idle: false,
            tumble_check_enabled: true,
        };
        let mut states = Vec::new();
        for k in 0..4u64 {
            s.run(k * TICK_NS, i);
            states.push(s.state);
        }
        assert_eq!(
            states,
            [
                S::PreFlChecksNotPassed,
                S::PreFlChecksPassed,
                S::Arming,
                S::ReadyToFly
            ]
        );
        assert!(s.armed());
    }
}
