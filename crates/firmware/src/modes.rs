//! The `flightmode` parameters on the legacy RPYT path: per-axis stabilisation mode (rate or
//! angle) and the yaw modes (X, plus, carefree).
//!
//! Facts, from `src/modules/src/crtp_commander_rpyt.c` (bitcraze/crazyflie-firmware; the decoder
//! runs for every RPYT packet):
//! - `stabModeRoll`/`stabModePitch`: `RATE = 0`, `ANGLE = 1`, default `ANGLE`. An axis in `RATE`
//!   gets `mode = modeVelocity`, `attitudeRate = value` and `attitude = 0`; any other value is
//!   treated as `ANGLE` (`if (stabilizationModeRoll == RATE) ... else ...`). The pitch rate is the
//!   wire's pitch, i.e. already negated by cflib, in the legacy frame (positive = nose up).
//! - `stabModeYaw` (default `RATE`, crtp_commander_rpyt.c:73): any other value makes the
//!   packet's yaw an absolute heading in degrees (`mode.yaw = modeAbs`,
//!   `attitude.yaw = values->yaw`, not negated, crtp_commander_rpyt.c:212-224 @2a18fc29), and the
//!   yaw mode's rotation below is then skipped (it sits in the rate branch). The 2016.02
//!   stabiliser honoured it too but hands the attitude PID `-eulerYawDesired`
//!   (`modules/src/stabilizer.c:264-290` @2016.02): the heading is the packet's yaw negated, and
//!   the yaw mode's rotation still applies.
//! - `yawMode`: `CAREFREE = 0`, `PLUSMODE = 1` ("M1 is defined as front"), `XMODE = 2` ("M1 & M4
//!   are defined as front"), default `XMODE` (`DEFAULT_YAW_MODE`, commander.h); unknown values
//!   act as X (`default:`). `yawModeUpdate` rotates only `setpoint->attitude.roll/pitch`, after
//!   the rate/angle split, with `rotateYaw(yawRad)`: `roll' = roll·cos − pitch·sin`,
//!   `pitch' = pitch·cos + roll·sin`. Plus mode rotates by +45°; X mode does nothing.
//! - Carefree: the current decoder has `ASSERT(false)` there ("TODO: Add frame of reference to
//!   setpoint"), i.e. a current Crazyflie halts when it is selected. The model follows the last
//!   firmware that implemented it, `commander.c` of 2016–2017 (`rotateYawCarefree`, the same code
//!   as `stabilizerRotateYawCarefree` in the 2015 `stabilizer.c`): rotate by
//!   `state.attitude.yaw − carefreeFrontAngle`, where the front angle is a zero-initialised
//!   static (the estimator's yaw at boot, i.e. the heading at power-on) and is set to the current
//!   yaw on every update while `yawRst` (`carefreeResetFront`) is non-zero.
//!
//! Sign check (legacy frame: roll positive = right side down, pitch positive = nose up, yaw
//! counter-clockwise): a forward command is pitch −p. After the quad turned +90° (nose along the
//! world's +y), carefree gives roll' = +p (right side down, towards the world's +x, the old
//! front) and pitch' = 0. Plus mode turns a forward command into roll +0.71p, pitch −0.71p:
//! towards M1 (front right), tilting about the M2–M4 arm.

/// `RATE` in `RPYType`.
const RATE: u8 = 0;
const CAREFREE: u8 = 0;
const PLUSMODE: u8 = 1;
/// `XMODE`, the default.
const XMODE: u8 = 2;

/// The `flightmode` parameters, as the firmware stores them (u8 each).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct FlightModes {
    pub althold: u8,
    pub yaw_mode: u8,
    pub yaw_rst: u8,
    pub stab_roll: u8,
    pub stab_pitch: u8,
    pub stab_yaw: u8,
    /// `carefreeFrontAngle` (degrees); None until the first tick sets it to the boot heading.
    pub carefree_front_deg: Option<f64>,
    /// The 2016.02 decoder (`FirmwareGains::Era2015`): see the module doc on `stabModeYaw`.
    pub era2015: bool,
}

impl Default for FlightModes {
    fn default() -> Self {
        Self {
            althold: 0,
            yaw_mode: XMODE,
            yaw_rst: 0,
            stab_roll: 1,
            stab_pitch: 1,
            stab_yaw: RATE,
            carefree_front_deg: None,
            era2015: false,
        }
    }
}

/// What the legacy decoder makes of a packet's roll and pitch: the attitude setpoint (degrees,
/// legacy frame) and, for axes in rate mode, the rate setpoint (deg/s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct LegacyDemand {
    pub roll_deg: f64,
    pub pitch_deg: f64,
    pub roll_rate_deg_s: Option<f64>,
    pub pitch_rate_deg_s: Option<f64>,
    /// The absolute heading (degrees, right-handed) when `stabModeYaw` is angle; None: yaw
    /// rate from the packet.
    pub yaw_deg: Option<f64>,
}

impl LegacyDemand {
    /// Level, angle mode (the supervisor's level-out override).
    pub const LEVEL: Self = Self {
        roll_deg: 0.0,
        pitch_deg: 0.0,
        roll_rate_deg_s: None,
        pitch_rate_deg_s: None,
        yaw_deg: None,
    };
}

/// `rotateYaw`: what is considered front turns by `yaw_rad`.
fn rotate_yaw(roll: f64, pitch: f64, yaw_rad: f64) -> (f64, f64) {
    let (sin, cos) = yaw_rad.sin_cos();
    (roll * cos - pitch * sin, pitch * cos + roll * sin)
}

impl FlightModes {
    /// The boot heading becomes carefree's front (the estimator starts at yaw 0 on a real
    /// Crazyflie, so its zero-initialised front angle is the heading at power-on).
    pub fn boot(&mut self, yaw_deg: f64) {
        self.carefree_front_deg.get_or_insert(yaw_deg);
    }

    /// `crtpCommanderRpytDecodeSetpoint` for roll, pitch and the yaw mode, then `yawModeUpdate`.
    /// `packet_yaw_deg` is the packet's yaw field as sent (cflib's sign).
    pub fn decode(
        &mut self,
        roll_deg: f64,
        pitch_deg: f64,
        packet_yaw_deg: f64,
        yaw_now_deg: f64,
    ) -> LegacyDemand {
        let (mut roll, roll_rate) = if self.stab_roll == RATE {
            (0.0, Some(roll_deg))
        } else {
            (roll_deg, None)
        };
        let (mut pitch, pitch_rate) = if self.stab_pitch == RATE {
            (0.0, Some(pitch_deg))
        } else {
            (pitch_deg, None)
        };
        let yaw_deg = (self.stab_yaw != RATE).then_some(if self.era2015 {
            -packet_yaw_deg
        } else {
            packet_yaw_deg
        });
        let rotate = yaw_deg.is_none() || self.era2015;
        match self.yaw_mode {
            _ if !rotate => {}
            CAREFREE => {
                if self.yaw_rst != 0 || self.carefree_front_deg.is_none() {
                    self.carefree_front_deg = Some(yaw_now_deg);
                }
                let front = self.carefree_front_deg.unwrap_or(yaw_now_deg);
                (roll, pitch) = rotate_yaw(roll, pitch, (yaw_now_deg - front).to_radians());
            }
            PLUSMODE => (roll, pitch) = rotate_yaw(roll, pitch, 45f64.to_radians()),
            // XMODE and anything else: "Default in x-mode. Do nothing".
            _ => {}
        }
        LegacyDemand {
            roll_deg: roll,
            pitch_deg: pitch,
            roll_rate_deg_s: roll_rate,
            pitch_rate_deg_s: pitch_rate,
            yaw_deg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn defaults_pass_angles_through_untouched() {
        let mut m = FlightModes::default();
        let d = m.decode(3.0, -4.0, 0.0, 57.0);
        assert_eq!(d.roll_deg, 3.0);
        assert_eq!(d.pitch_deg, -4.0);
        assert_eq!((d.roll_rate_deg_s, d.pitch_rate_deg_s), (None, None));
    }

    #[test]
    fn rate_axes_take_the_command_as_a_rate_and_zero_attitude() {
        let mut m = FlightModes {
            stab_roll: 0,
            ..Default::default()
        };
        let d = m.decode(90.0, -5.0, 0.0, 0.0);
        assert_eq!(d.roll_rate_deg_s, Some(90.0));
        assert_eq!(d.roll_deg, 0.0);
        assert_eq!(d.pitch_deg, -5.0);
        assert_eq!(d.pitch_rate_deg_s, None);
    }

    #[test]
    fn yaw_angle_mode_takes_the_packet_yaw_as_a_heading_per_era() {
        let mut m = FlightModes {
            stab_yaw: 1,
            yaw_mode: PLUSMODE,
            ..Default::default()
        };
        let d = m.decode(0.0, -10.0, 30.0, 0.0);
        assert_eq!(d.yaw_deg, Some(30.0), "2a18fc29: not negated");
        assert_eq!((d.roll_deg, d.pitch_deg), (0.0, -10.0), "no plus rotation");
        m.era2015 = true;
        let d = m.decode(0.0, -10.0, 30.0, 0.0);
        assert_eq!(d.yaw_deg, Some(-30.0), "2016.02: negated");
        assert!(close(d.pitch_deg, -10.0 * std::f64::consts::FRAC_1_SQRT_2));
        m.stab_yaw = RATE;
        assert_eq!(m.decode(0.0, 0.0, 30.0, 0.0).yaw_deg, None);
    }

    #[test]
    fn plus_mode_turns_forward_into_the_m1_direction() {
        let mut m = FlightModes {
            yaw_mode: PLUSMODE,
            ..Default::default()
        };
        // Forward: pitch −10 (nose down).
        let d = m.decode(0.0, -10.0, 0.0, 0.0);
        let s = 10.0 * std::f64::consts::FRAC_1_SQRT_2;
        assert!(close(d.roll_deg, s), "right side down: {d:?}");
        assert!(close(d.pitch_deg, -s), "nose down: {d:?}");
    }

    #[test]
    fn carefree_keeps_the_boot_front_after_a_quarter_turn_left() {
        let mut m = FlightModes {
            yaw_mode: CAREFREE,
            ..Default::default()
        };
        m.boot(0.0);
        let d = m.decode(0.0, -10.0, 0.0, 90.0);
        assert!(close(d.roll_deg, 10.0), "{d:?}");
        assert!(close(d.pitch_deg, 0.0), "{d:?}");
        // yawRst makes the current heading the front.
        m.yaw_rst = 1;
        let d = m.decode(0.0, -10.0, 0.0, 90.0);
        assert!(close(d.roll_deg, 0.0) && close(d.pitch_deg, -10.0), "{d:?}");
        m.yaw_rst = 0;
        let d = m.decode(0.0, -10.0, 0.0, 180.0);
        assert!(close(d.roll_deg, 10.0), "front stays at 90: {d:?}");
    }
}
