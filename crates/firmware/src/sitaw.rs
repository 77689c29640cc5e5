//! Situation awareness (`sitAw`), the barometric altitude hold it drives and the automatic
//! take-off, as the Crazyflie firmware had them from 2015 to 2021.
//!
//! Versions read (bitcraze/crazyflie-firmware):
//! - PR #59 (2015-07, "Situation Awareness framework"): `utils/src/trigger.c`, `sitaw.c`/`.h`,
//!   and the call-outs in `stabilizer.c`: after each attitude update (250 Hz) the free-fall,
//!   tumbled and at-rest tests run; free fall (and not tumbled) calls
//!   `commanderSetAltHoldMode(true)`, tumbled calls `commanderSetAltHoldMode(false)`; before the
//!   thrust is distributed, tumbled sets `actuatorThrust = 0`. "All disabled by default"
//!   (`SITAW_ENABLED` commented out).
//! - PR #68 (2015-08, automatic take-off): in `stabilizerAltHoldUpdate` (100 Hz), when at rest,
//!   not tumbled and alt-hold has just been switched on, the alt-hold target rises from the
//!   current height by `autoTO.TargetAdjust` (1.5 m), smoothed by `autoTO.Alpha` (0.98 per
//!   update), until `autoTO.Thresh` (97 %) of it is reached; alt-hold then keeps that height.
//! - 2016–2020 `sitaw.c` moved the call-outs into `sitAwUpdateSetpoint` (free fall then forces
//!   `mode.z = modeVelocity, velocity.z = 0` only while detected — the file's own FIXME notes
//!   the detection ends as soon as that works); 2019 added a latched thrust cut with
//!   `sitAw.resetDetector`; in 2021 `supervisor.c` replaced the tumble detection and `sitaw.h`
//!   became a shim. The model follows the 2015 design, the only one in which the reactions
//!   and the automatic take-off form a whole, in the era of the Kinect demo we re-create.
//!
//! Detection, exactly as `sitaw.c` (one `trigger_t` each, tested at 250 Hz, "Configured for
//! 250Hz testing"):
//! - free fall: `accMAG = ax² + ay² + az²` (g², squared!) must be ≤ `SITAW_FF_THRESHOLD` (0.1),
//!   else the trigger resets; then `|accWZ + 1| ≤ 0.1` for 15 consecutive tests (60 ms), where
//!   `accWZ` is the world-vertical specific force minus 1 g (`sensfusion6GetAccZWithoutGravity`);
//! - at rest: `|ax|, |ay| ≤ 0.05` g, else reset; then `|az − 1| ≤ 0.05` for 500 tests (2 s);
//! - tumbled: `max(|roll|, |pitch|) ≥ 60°` (`triggerFuncIsGE`) for 15 tests (the angle version,
//!   2015–2019).
//!
//! `trigger.c`: a failed test resets the counter and the released flag; a passed one counts up
//! to `triggerCount`; `released = counter ≥ triggerCount`; an inactive trigger returns at once
//! without touching its state. The `sitAw.*Active` params write `trigger.active` directly (no
//! reset).
//!
//! Switches. The firmware switched each detector at build time (`SITAW_ENABLED`,
//! `SITAW_FF_ENABLED`, `SITAW_AR_ENABLED`, `SITAW_TU_ENABLED`: everything off in the 2015 PRs,
//! free fall and at rest off and tumbled on in 2016–2020 releases) and, in a build with
//! `SITAW_PARAM_ENABLED`, by the `sitAw` params (an enabled detector boots active). The model has
//! no build step: the params are the switch and boot at 0 (off), so a scene turns on what it
//! uses. Tumble protection is on by default anyway through the current supervisor's check
//! (`supervisor.tmblChckEn`, see the firmware module).
//!
//! Altitude hold (2015 `stabilizer.c`, `stabilizerAltHoldUpdate`, gains and filters as there):
//! the barometer's height (`asl`, modelled as the true height: no barometer noise or offset) is
//! low-passed twice (α 0.92 and 0.93 per 100 Hz update); a vertical speed is integrated from
//! `accWZ` (deadband 0.05 g, clamp ±0.05, leak 0.98, blended with the baro speed); a PI on the
//! height error (`kp` 0.5, `ki` 0.18, error clamped to ±1 m) plus `−48 ×` that speed, smoothed
//! (α 0.8), scaled by 13000 and added to `baseThrust` 43000 gives the thrust, clamped to
//! 0..`maxThrust`. In alt-hold the stick's thrust moves the target: `(thrust − 32767)/32767/200`
//! m per update (±0.5 m/s), and the commander's thrust lock does not apply (the 2015 stabiliser
//! skips `commanderGetThrust`). `flightmode.althold` switches it; its rising edge sets the target
//! to the current height. The watchdog's drop-to-ground (no setpoint for 2 s, or none yet)
//! clears `flightmode.althold`.

/// `triggerFunc_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TriggerFunc {
    IsLe,
    IsGe,
}

/// A `trigger_t` (`trigger.c`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Trigger {
    pub active: bool,
    func: TriggerFunc,
    pub threshold: f64,
    pub trigger_count: u32,
    pub test_counter: u32,
    pub released: bool,
}

impl Trigger {
    fn new(func: TriggerFunc, threshold: f64, trigger_count: u32) -> Self {
        Self {
            active: false,
            func,
            threshold,
            trigger_count,
            test_counter: 0,
            released: false,
        }
    }

    /// `triggerReset`.
    fn reset(&mut self) {
        self.test_counter = 0;
        self.released = false;
    }

    /// `triggerTestValue`.
    fn test(&mut self, value: f64) -> bool {
        if !self.active {
            return false;
        }
        let pass = match self.func {
            TriggerFunc::IsLe => value <= self.threshold,
            TriggerFunc::IsGe => value >= self.threshold,
        };
        if !pass {
            self.reset();
            return false;
        }
        if self.test_counter < self.trigger_count {
            self.test_counter += 1;
        }
        self.released = self.test_counter >= self.trigger_count;
        self.released
    }

    pub fn active_param(&self) -> f64 {
        f64::from(u8::from(self.active))
    }

    /// A write of the `...Active` param: the flag only, as `PARAM_ADD(..., &trigger.active)`.
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }
}

/// The 2015 `pid.c` object the alt-hold loop uses (error set from outside, D on error).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Pid2015 {
    error: f64,
    prev_error: f64,
    integ: f64,
    kp: f64,
    ki: f64,
    dt: f64,
}

/// `DEFAULT_PID_INTEGRATION_LIMIT` (2015 `pid.h`).
const PID_I_LIMIT: f64 = 5000.0;

impl Pid2015 {
    /// `pidInit` (desired is not kept: the loop sets the error itself).
    fn init(&mut self, kp: f64, ki: f64, dt: f64) {
        *self = Self {
            kp,
            ki,
            dt,
            ..Self::default()
        };
    }

    /// `pidUpdate(pid, measured, false)`: kd is 0 in the alt-hold loop.
    fn update(&mut self) -> f64 {
        self.integ = (self.integ + self.error * self.dt).clamp(-PID_I_LIMIT, PID_I_LIMIT);
        self.prev_error = self.error;
        self.kp * self.error + self.ki * self.integ
    }
}

/// `autoTO*` of the 2015 `stabilizer.c`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct AutoTakeoff {
    pub active: bool,
    pub alt_base_m: f64,
    pub alt_current: f64,
    pub alpha: f64,
    pub target_adjust_m: f64,
    pub thresh: f64,
}

/// Constants of `stabilizerAltHoldUpdate` that have no param (2015 `stabilizer.c`).
const ALT_HOLD_CHANGE_SENS: f64 = 200.0;
const ALT_HOLD_ERR_MAX_M: f64 = 1.0;
const PID_ASL_FAC: f64 = 13000.0;
const PID_ALPHA: f64 = 0.8;
const V_SPEED_ASL_FAC: f64 = 0.0;
const V_SPEED_ACC_FAC: f64 = -48.0;
const V_ACC_DEADBAND_G: f64 = 0.05;
const V_SPEED_ASL_DEADBAND: f64 = 0.005;
const V_SPEED_LIMIT: f64 = 0.05;
const V_BIAS_ALPHA: f64 = 0.98;
const ASL_ALPHA: f64 = 0.92;
const ASL_ALPHA_LONG: f64 = 0.93;
const ALT_HOLD_MIN_THRUST: f64 = 0.0;

fn deadband(v: f64, threshold: f64) -> f64 {
    if v.abs() < threshold {
        0.0
    } else if v > 0.0 {
        v - threshold
    } else {
        v + threshold
    }
}

/// The 2015 barometric altitude hold and its automatic take-off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct AltHold {
    pub kp: f64,
    pub ki: f64,
    pub base_thrust: f64,
    pub max_thrust: f64,
    pub auto_to: AutoTakeoff,
    /// `altHold`: alt-hold as of the last update.
    pub alt_hold: bool,
    mode_old: bool,
    pub target_m: f64,
    asl_m: f64,
    asl_long_m: f64,
    v_speed: f64,
    v_speed_asl: f64,
    pid: Pid2015,
    pid_val: f64,
    /// The thrust the loop asks for (`actuatorThrust` while in alt-hold).
    pub thrust: u16,
}

impl Default for AltHold {
    fn default() -> Self {
        Self {
            kp: 0.5,
            ki: 0.18,
            base_thrust: 43000.0,
            max_thrust: 60000.0,
            auto_to: AutoTakeoff {
                active: false,
                alt_base_m: 0.0,
                alt_current: 0.0,
                alpha: 0.98,
                target_adjust_m: 1.5,
                thresh: 0.97,
            },
            alt_hold: false,
            mode_old: false,
            target_m: -1.0,
            asl_m: 0.0,
            asl_long_m: 0.0,
            v_speed: 0.0,
            v_speed_asl: 0.0,
            pid: Pid2015::default(),
            pid_val: 0.0,
            thrust: 0,
        }
    }
}

/// What the alt-hold update reads from the rest of the firmware.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct AltHoldInput {
    /// `altHoldMode` (`flightmode.althold`).
    pub mode: bool,
    /// The active setpoint's raw thrust (the stick).
    pub raw_thrust: u16,
    /// The barometer's height.
    pub asl_m: f64,
    pub at_rest: bool,
    pub tumbled: bool,
    pub dt_s: f64,
}

impl AltHold {
    /// `vSpeed += deadband(accWZ, vAccDeadband) * FUSION_UPDATE_DT` (each attitude update).
    pub fn integrate_acc(&mut self, acc_wz_g: f64, dt_s: f64) {
        self.v_speed += deadband(acc_wz_g, V_ACC_DEADBAND_G) * dt_s;
    }

    /// `stabilizerAltHoldUpdate` with `stabilizerPreAltHoldComputeThrustCallOut` (100 Hz).
    pub fn update(&mut self, i: AltHoldInput) {
        // commanderGetAltHold.
        let alt_hold = i.mode;
        let set_alt_hold = !self.mode_old && i.mode;
        let change = if i.mode {
            (f64::from(i.raw_thrust) - 32767.0) / 32767.0
        } else {
            0.0
        };
        self.mode_old = i.mode;
        self.alt_hold = alt_hold;

        self.asl_m = self.asl_m * ASL_ALPHA + i.asl_m * (1.0 - ASL_ALPHA);
        self.asl_long_m = self.asl_long_m * ASL_ALPHA_LONG + i.asl_m * (1.0 - ASL_ALPHA_LONG);
        self.v_speed_asl = deadband(self.asl_m - self.asl_long_m, V_SPEED_ASL_DEADBAND);
        self.v_speed = self.v_speed.clamp(-V_SPEED_LIMIT, V_SPEED_LIMIT);
        self.v_speed = self.v_speed * V_BIAS_ALPHA + self.v_speed_asl * (1.0 - V_BIAS_ALPHA);
        let v_speed_acc = self.v_speed;
        // `if (!pmIsDischarging()) integ = 0`: never charging in flight.

        if set_alt_hold {
            self.target_m = self.asl_m;
            let pre_integral = self.pid.integ;
            self.pid.init(self.kp, self.ki, i.dt_s);
            self.pid.integ = pre_integral;
            self.pid_val = self.pid.update();
        }

        // Automatic take-off.
        let to = &mut self.auto_to;
        if !to.active && i.at_rest && !i.tumbled && set_alt_hold {
            to.active = true;
            to.alt_base_m = self.target_m;
            to.alt_current = 0.0;
        }
        if to.active {
            to.alt_current = to.alt_current * to.alpha + (1.0 - to.alpha);
            self.target_m = to.alt_base_m + to.alt_current * to.target_adjust_m;
            if to.alt_current >= to.thresh {
                to.active = false;
                to.alt_base_m = 0.0;
                to.alt_current = 0.0;
            }
        }

        if alt_hold {
            self.target_m += change / ALT_HOLD_CHANGE_SENS;
            let err = deadband(self.asl_m - self.target_m, 0.0)
                .clamp(-ALT_HOLD_ERR_MAX_M, ALT_HOLD_ERR_MAX_M);
            self.pid.error = -err;
            self.pid_val = PID_ALPHA * self.pid_val
                + (1.0 - PID_ALPHA)
                    * (v_speed_acc * V_SPEED_ACC_FAC
                        + self.v_speed_asl * V_SPEED_ASL_FAC
                        + self.pid.update());
            // `limitThrust(altHoldBaseThrust + (int32_t)(altHoldPIDVal*pidAslFac))`.
            let raw = (self.base_thrust + (self.pid_val * PID_ASL_FAC).trunc()).clamp(0.0, 65535.0);
            self.thrust = raw.min(self.max_thrust).max(ALT_HOLD_MIN_THRUST) as u16;
        } else {
            self.target_m = 0.0;
            self.pid_val = 0.0;
        }
    }
}

/// The three detectors and the alt-hold loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SitAw {
    pub ff: Trigger,
    pub ar: Trigger,
    pub tu: Trigger,
    pub alt: AltHold,
}

impl Default for SitAw {
    fn default() -> Self {
        Self {
            ff: Trigger::new(TriggerFunc::IsLe, 0.1, 15),
            ar: Trigger::new(TriggerFunc::IsLe, 0.05, 500),
            tu: Trigger::new(TriggerFunc::IsGe, 60.0, 15),
            alt: AltHold::default(),
        }
    }
}

impl SitAw {
    /// `sitAwFFTest(accWZ, accMAG)`.
    pub fn test_free_fall(&mut self, acc_wz_g: f64, acc_mag_g2: f64) {
        if acc_mag_g2.abs() > self.ff.threshold {
            self.ff.reset();
            return;
        }
        self.ff.test((acc_wz_g + 1.0).abs());
    }

    /// `sitAwARTest(acc.x, acc.y, acc.z)`.
    pub fn test_at_rest(&mut self, acc_g: [f64; 3]) {
        if acc_g[0].abs() > self.ar.threshold || acc_g[1].abs() > self.ar.threshold {
            self.ar.reset();
            return;
        }
        self.ar.test((acc_g[2] - 1.0).abs());
    }

    /// `sitAwTuTest(eulerRollActual, eulerPitchActual)`.
    pub fn test_tumbled(&mut self, roll_deg: f64, pitch_deg: f64) {
        self.tu.test(roll_deg.abs().max(pitch_deg.abs()));
    }
}

/// What situation awareness reports (the firmware's `sitAw` log group:
/// `FFAccWZDetected`, `ARDetected`, `TuDetected`, plus `autoTO.Active` and the alt-hold state).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Situation {
    pub free_fall: bool,
    pub at_rest: bool,
    pub tumbled: bool,
    /// `flightmode.althold` as the last alt-hold update saw it.
    pub alt_hold: bool,
    /// The alt-hold target height (0 when alt-hold is off, as `altHoldTarget`).
    pub alt_hold_target_m: f64,
    pub auto_takeoff: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_releases_after_count_and_resets_on_a_miss() {
        let mut t = Trigger::new(TriggerFunc::IsLe, 0.1, 3);
        assert!(!t.test(0.0), "inactive");
        t.set_active(true);
        assert!(!t.test(0.0));
        assert!(!t.test(0.05));
        assert!(t.test(0.1));
        assert!(t.test(0.0), "stays released");
        assert!(!t.test(0.2));
        assert_eq!((t.test_counter, t.released), (0, false));
    }

    #[test]
    fn free_fall_needs_a_small_total_acceleration() {
        let mut s = SitAw::default();
        s.ff.set_active(true);
        for _ in 0..15 {
            s.test_free_fall(-1.0, 0.0);
        }
        assert!(s.ff.released);
        // Hovering: accWZ 0, |acc|² 1.
        s.test_free_fall(0.0, 1.0);
        assert!(!s.ff.released);
        // 0.3 g total: |acc|² = 0.09 ≤ 0.1 still counts.
        for _ in 0..15 {
            s.test_free_fall(-0.7, 0.09);
        }
        assert!(!s.ff.released, "|accWZ + 1| = 0.3 > 0.1");
    }

    #[test]
    fn auto_takeoff_raises_the_target_by_97_percent_of_1_5_m() {
        let mut a = AltHold::default();
        let mut input = AltHoldInput {
            mode: false,
            raw_thrust: 32767,
            asl_m: 0.0,
            at_rest: true,
            tumbled: false,
            dt_s: 0.01,
        };
        a.update(input);
        input.mode = true;
        a.update(input);
        assert!(a.auto_to.active);
        let mut n = 1;
        while a.auto_to.active {
            a.update(input);
            n += 1;
        }
        // alt_current = 1 − 0.98ⁿ ≥ 0.97 after n = 174 updates.
        assert_eq!(n, 174);
        assert!((a.target_m - 0.97 * 1.5).abs() < 0.01, "{}", a.target_m);
    }
}
