//! The attitude and rate PIDs of the firmware (`pid.c`) and the gain sets they are built with.
//!
//! Two forms of `pidUpdate`, one per era, because they differ in what flies:
//! - [`PidForm::Measured`], `src/utils/src/pid.c:58` @2a18fc29: error `desired − measured`,
//!   wrapped into ±180° for the yaw angle (`pid.c:64`); D on the measurement, `−Δmeasured / dt`,
//!   with the measured delta also wrapped for the yaw angle (`pid.c:85`: "take care of spikes
//!   when crossing 180deg <-> -180deg"); a NaN derivative is 0 (`pid.c:102`); integral clamped
//!   to `iLimit` (`pid.c:111`); `kff·desired` (every kff is 0 in `platform_defaults_cf2.h`, so
//!   not modelled); output limit 0 = none for the attitude and rate PIDs (`pid.h:34`, not set by
//!   `attitude_pid_controller.c`). The D-term low-pass filter is off for all six
//!   (`ATTITUDE_LPF_ENABLE`/`ATTITUDE_RATE_LPF_ENABLE` false, `platform_defaults.h:100,112`), and
//!   `CONFIG_CONTROLLER_PID_FILTER_ALL` is only set by the flapper's defconfig, so no filter is
//!   modelled. `pidReset(pid, actual)` (`pid.c:151`) zeroes the integral and sets
//!   `prevMeasured = actual`; `pidInit` starts at `prevMeasured = 0` (`pid.c:40`).
//! - [`PidForm::Error2016`], `modules/src/pid.c:46` @2016.02: D on the *error*,
//!   `(error − prevError) / dt`, the yaw error wrapped by the caller (`controller.c:114`
//!   @2016.02); `pidReset` zeroes error, prevError and integral (`pid.c:87`); the integral's
//!   lower limit stays at −5000 whatever `pidSetIntegralLimit` set (only the upper one).
//!
//! Each PID keeps the `dt` it was initialised with, as `pid->dt` does: in 2016 the attitude
//! PIDs were initialised with `IMU_UPDATE_DT` = 1/500 s (`controller.c:72` @2016.02) although
//! the stabiliser ran them every second tick, at 250 Hz (`ATTITUDE_UPDATE_RATE_DIVIDER 2`,
//! `stabilizer.c:60,275` @2016.02). So their integral grew at half the rate, per second, that
//! the gains suggest, and their D term was doubled. The model keeps that.

use depthpilot_types::scene::FirmwareGains;

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

/// Which `pidUpdate` a gain set's firmware ran (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidForm {
    /// `pid.c` @2a18fc29: D on the measurement, yaw delta wrapped.
    Measured,
    /// `pid.c` @2016.02: D on the error.
    Error2016,
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
    /// The `dt` the attitude PIDs were initialised with, in rate-loop ticks (not necessarily
    /// `attitude_divider`: 1 in 2016, see the module doc).
    pub attitude_dt_ticks: u32,
    pub form: PidForm,
}

impl GainSet {
    pub fn of(kind: FirmwareGains) -> Self {
        match kind {
            // src/platform/interface/platform_defaults_cf2.h:96-130 @2a18fc29; both loops at
            // ATTITUDE_RATE = 500 Hz (stabilizer_types.h:372, controller_pid.c:85,119), dt
            // ATTITUDE_UPDATE_DT = 1/500 (controller_pid.c:13,30).
            FirmwareGains::Current => Self {
                roll: g(6.0, 3.0, 0.0, 20.0),
                pitch: g(6.0, 3.0, 0.0, 20.0),
                yaw: g(6.0, 1.0, 0.35, 360.0),
                roll_rate: g(250.0, 500.0, 2.5, 33.3),
                pitch_rate: g(250.0, 500.0, 2.5, 33.3),
                yaw_rate: g(120.0, 16.7, 0.0, 166.7),
                attitude_divider: 1,
                attitude_dt_ticks: 1,
                form: PidForm::Measured,
            },
            // platform_defaults_cf21bl.h:77-111 @2a18fc29: rate roll/pitch 200/400/2.5.
            FirmwareGains::Cf21Brushless => Self {
                roll: g(6.0, 3.0, 0.0, 20.0),
                pitch: g(6.0, 3.0, 0.0, 20.0),
                yaw: g(6.0, 1.0, 0.35, 360.0),
                roll_rate: g(200.0, 400.0, 2.5, 33.3),
                pitch_rate: g(200.0, 400.0, 2.5, 33.3),
                yaw_rate: g(120.0, 16.7, 0.0, 166.7),
                attitude_divider: 1,
                attitude_dt_ticks: 1,
                form: PidForm::Measured,
            },
            // modules/interface/pid.h:32-60 @2016.02 (the same numbers at bfab2077, 2016-03).
            // Rate loop every tick at IMU_UPDATE_FREQ = 500 Hz (hal/interface/imu.h:36,
            // stabilizer.c:253,314), attitude loop every 2nd tick (stabilizer.c:60,275), all six
            // PIDs with dt = IMU_UPDATE_DT (controller.c:65-74).
            FirmwareGains::Era2015 => Self {
                roll: g(3.5, 2.0, 0.0, 20.0),
                pitch: g(3.5, 2.0, 0.0, 20.0),
                yaw: g(10.0, 1.0, 0.35, 360.0),
                roll_rate: g(70.0, 0.0, 0.0, 33.3),
                pitch_rate: g(70.0, 0.0, 0.0, 33.3),
                yaw_rate: g(70.0, 16.7, 0.0, 166.7),
                attitude_divider: 2,
                attitude_dt_ticks: 1,
                form: PidForm::Error2016,
            },
        }
    }
}

/// `DEFAULT_PID_INTEGRATION_LIMIT` (`pid.h:63` @2016.02), the 2016 PIDs' lower integral limit.
const I_LIMIT_LOW_2016: f64 = 5000.0;

/// One `PidObject`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pid {
    pub(crate) g: PidGains,
    form: PidForm,
    dt_s: f64,
    /// The yaw angle PID (`isYawAngle`): error and measured delta wrapped into ±180°.
    yaw_angle: bool,
    integ: f64,
    prev_measured: f64,
    prev_error: f64,
}

impl Pid {
    /// `pidInit`: everything zero.
    pub(crate) fn new(g: PidGains, form: PidForm, dt_s: f64, yaw_angle: bool) -> Self {
        Self {
            g,
            form,
            dt_s,
            yaw_angle,
            integ: 0.0,
            prev_measured: 0.0,
            prev_error: 0.0,
        }
    }

    /// `pidSetDesired` + `pidUpdate`.
    pub(crate) fn update(&mut self, desired: f64, measured: f64) -> f64 {
        let mut error = desired - measured;
        if self.yaw_angle {
            error = wrap_once(error);
        }
        let deriv = match self.form {
            PidForm::Measured => {
                let mut delta = -(measured - self.prev_measured);
                if self.yaw_angle {
                    delta = wrap_once(delta);
                }
                self.prev_measured = measured;
                delta / self.dt_s
            }
            PidForm::Error2016 => {
                let d = (error - self.prev_error) / self.dt_s;
                self.prev_error = error;
                d
            }
        };
        let deriv = if deriv.is_nan() { 0.0 } else { deriv };
        self.integ += error * self.dt_s;
        match self.form {
            PidForm::Measured if self.g.i_limit != 0.0 => {
                self.integ = self.integ.clamp(-self.g.i_limit, self.g.i_limit);
            }
            PidForm::Measured => {}
            // `pidSetIntegralLimit` set only the upper limit; `iLimitLow` stayed at
            // `-DEFAULT_PID_INTEGRATION_LIMIT` (pid.c:42,56-63 @2016.02).
            PidForm::Error2016 => {
                self.integ = self.integ.min(self.g.i_limit).max(-I_LIMIT_LOW_2016);
            }
        }
        self.g.kp * error + self.g.kd * deriv + self.g.ki * self.integ
    }

    /// `pidReset(pid, actual)` (@2a18fc29) or `pidReset(pid)` (@2016.02).
    pub(crate) fn reset(&mut self, actual: f64) {
        self.integ = 0.0;
        self.prev_error = 0.0;
        self.prev_measured = match self.form {
            PidForm::Measured => actual,
            PidForm::Error2016 => self.prev_measured,
        };
    }

    /// The integrated error (`pid->integ`).
    #[cfg(test)]
    pub(crate) fn integral(&self) -> f64 {
        self.integ
    }
}

/// `pid.c`'s single ±360° correction (the inputs are within ±360°).
fn wrap_once(a: f64) -> f64 {
    if a > 180.0 {
        a - 360.0
    } else if a < -180.0 {
        a + 360.0
    } else {
        a
    }
}

/// `saturateSignedInt16` (`attitude_pid_controller.c:46` @2a18fc29, `controller.c:35`
/// @2016.02): clamp to ±32767, then the `(int16_t)` cast truncates towards zero.
pub(crate) fn saturate_i16(v: f64) -> f64 {
    v.clamp(-32767.0, 32767.0).trunc()
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAW: PidGains = g(6.0, 1.0, 0.35, 360.0);

    #[test]
    fn yaw_delta_is_wrapped_and_error_too() {
        let mut p = Pid::new(YAW, PidForm::Measured, 0.002, true);
        p.reset(179.5);
        // The yaw moved 1° (179.5 → −179.5), desired stays at 179.5.
        let out = p.update(179.5, -179.5);
        // error −1°, delta −1° → D = 0.35 · (−1 / 0.002) = −175, P = −6, I ≈ 0.
        assert!((out - (-6.0 - 175.0 - 0.002)).abs() < 1e-9, "{out}");
    }

    /// The legacy path with the yaw estimate crossing ±180°: the yaw-rate integrator moves
    /// smoothly (the acceptance test in tests/pid.rs watches the demand and the motors).
    #[test]
    fn yaw_rate_integrator_does_not_jump_when_yaw_crosses_180() {
        use crate::{Firmware, ImuSample};
        use depthpilot_crtp::RpytSetpoint;
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        let at = |yaw: f64| ImuSample {
            yaw_deg: (yaw + 180.0).rem_euclid(360.0) - 180.0,
            gyro_deg_s: [0.0, 0.0, 20.0],
            acc_g: [0.0, 0.0, 1.0],
            ..Default::default()
        };
        let sp = |thrust| RpytSetpoint {
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: -20.0,
            thrust,
        };
        let mut yaw = 178.0;
        fw.receive(0, &sp(0));
        fw.step(0, &at(yaw));
        let mut prev = fw.yaw_rate.integral();
        for k in 1..500u64 {
            yaw += 20.0 * 0.002;
            fw.receive(k * 2_000_000, &sp(30000));
            fw.step(k * 2_000_000, &at(yaw));
            let i = fw.yaw_rate.integral();
            assert!((i - prev).abs() < 0.1, "integrator {prev} → {i} at {yaw}°");
            prev = i;
        }
    }

    /// `pidReset(&pidRollRate, 0)` (attitude_pid_controller.c:188 @2a18fc29): after a reset the
    /// rate PID's first D term differentiates the gyro against 0, not against itself.
    #[test]
    fn rate_pid_after_reset_differentiates_from_zero() {
        use crate::{Firmware, ImuSample, power::Compensation};
        use depthpilot_crtp::RpytSetpoint;
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.power = fw.power.clone().with_compensation(Compensation::Off);
        let imu = ImuSample {
            gyro_deg_s: [10.0, 0.0, 0.0],
            acc_g: [0.0, 0.0, 1.0],
            ..Default::default()
        };
        let sp = |thrust| RpytSetpoint {
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust,
        };
        fw.receive(0, &sp(0));
        fw.step(0, &imu);
        fw.receive(2_000_000, &sp(30000));
        let m = fw.step(2_000_000, &imu).map(f64::from);
        // P 250 · (−10), D 2.5 · (−10 / 0.002), I 500 · (−10 · 0.002): −15010 counts; the
        // mixer gives each side half of it.
        let roll_share = (m[2] + m[3] - m[0] - m[1]) / 4.0;
        assert!(
            (roll_share + 7505.0).abs() <= 1.0,
            "roll share {roll_share} ({m:?})"
        );
    }

    #[test]
    fn roll_delta_is_not_wrapped() {
        let mut p = Pid::new(g(0.0, 0.0, 1.0, 0.0), PidForm::Measured, 1.0, false);
        p.reset(179.0);
        assert_eq!(p.update(0.0, -179.0), 358.0);
    }

    #[test]
    fn saturation_truncates_like_the_int16_cast() {
        assert_eq!(saturate_i16(12.9), 12.0);
        assert_eq!(saturate_i16(-12.9), -12.0);
        assert_eq!(saturate_i16(1e9), 32767.0);
        assert_eq!(saturate_i16(-1e9), -32767.0);
    }

    #[test]
    fn the_2016_integral_is_clamped_above_only_by_the_set_limit() {
        let mut p = Pid::new(g(0.0, 1.0, 0.0, 20.0), PidForm::Error2016, 1.0, false);
        assert_eq!(p.update(0.0, -100.0), 20.0);
        p.reset(0.0);
        assert_eq!(
            p.update(0.0, 100.0),
            -100.0,
            "below −20: iLimitLow is −5000"
        );
        assert_eq!(p.update(0.0, 1e4), -5000.0);
    }

    #[test]
    fn the_2016_form_differentiates_the_error() {
        let mut p = Pid::new(g(0.0, 0.0, 1.0, 0.0), PidForm::Error2016, 0.5, false);
        // After a reset prevError = 0: the first error counts in full.
        assert_eq!(p.update(3.0, 1.0), 4.0);
        // A setpoint step with the measurement standing still gives a D kick.
        assert_eq!(p.update(4.0, 1.0), 2.0);
    }
}
