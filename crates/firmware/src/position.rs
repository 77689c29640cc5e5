//! The on-board PID position controller (`src/modules/src/controller/position_controller_pid.c`):
//! position PIDs (x, y in the body's yaw-aligned frame, z in the world) → velocity setpoint →
//! velocity PIDs → roll/pitch (deg, legacy frame) and thrust. Runs at `POSITION_RATE` = 100 Hz
//! (`stabilizer_types.h`); `controller_pid.c` calls it at that rate whatever the modes are and
//! then overrides its outputs for disabled axes.
//!
//! Gains and limits: CF2 defaults, `src/platform/interface/platform_defaults_cf2.h`; the
//! Crazyflie 2.1 Brushless build (`platform_defaults_cf21bl.h`) has the same gains and limits
//! but `PID_VEL_THRUST_BASE 30000`.

use super::setpoint::{Mode, Setpoint};

/// `PID_POS_X_KP`, `PID_POS_Y_KP` (ki, kd, kff 0).
const POS_XY_KP: f64 = 2.0;
/// `PID_POS_Z_KP`, `PID_POS_Z_KI` (kd, kff 0).
const POS_Z_KP: f64 = 2.0;
const POS_Z_KI: f64 = 0.5;
/// `PID_VEL_X_KP/KI`, `PID_VEL_Y_KP/KI` (kd, kff 0).
const VEL_XY_KP: f64 = 25.0;
const VEL_XY_KI: f64 = 1.0;
/// `PID_VEL_Z_KP/KI` (kd, kff 0; the `_BARO_Z_HOLD` variant is a build option, not modelled).
const VEL_Z_KP: f64 = 25.0;
const VEL_Z_KI: f64 = 15.0;
/// `PID_VEL_ROLL_MAX`, `PID_VEL_PITCH_MAX` (deg) and `rpLimitOverhead` (position_controller_pid.c).
const RP_LIMIT_DEG: f64 = 20.0;
const RP_LIMIT_OVERHEAD: f64 = 1.10;
/// `PID_POS_VEL_{X,Y,Z}_MAX` (m/s) and `velMaxOverhead`.
const VEL_MAX_M_S: f64 = 1.0;
const VEL_MAX_OVERHEAD: f64 = 1.10;
/// `PID_VEL_THRUST_BASE` (CF2; 30000 on the 2.1 Brushless), `PID_VEL_THRUST_MIN`, `thrustScale`.
const THRUST_BASE: f64 = 36000.0;
const THRUST_BASE_CF21BL: f64 = 30000.0;
const THRUST_MIN: f64 = 20000.0;
const THRUST_SCALE: f64 = 1000.0;
/// `DEFAULT_PID_INTEGRATION_LIMIT` (`src/utils/interface/pid.h`): the position and velocity
/// PIDs keep pidInit's default.
const I_LIMIT: f64 = 5000.0;

/// One `PidObject` as `pid.c` updates it. The D term's 20 Hz low-pass filter
/// (`PID_*_FILT_ENABLE`, platform_defaults.h) is not modelled: every kd is 0 on a CF2.
#[derive(Clone, Copy, Debug)]
struct AxisPid {
    kp: f64,
    ki: f64,
    kd: f64,
    /// 0: no limit.
    output_limit: f64,
    integ: f64,
    prev_measured: f64,
}

impl AxisPid {
    const fn new(kp: f64, ki: f64) -> Self {
        Self {
            kp,
            ki,
            kd: 0.0,
            output_limit: 0.0,
            integ: 0.0,
            prev_measured: 0.0,
        }
    }

    /// `pidUpdate` (kff = 0): P on error, D on measurement, clamped integral, clamped output.
    fn update(&mut self, desired: f64, measured: f64, dt: f64) -> f64 {
        let error = desired - measured;
        let mut out = self.kp * error;
        out += self.kd * (-(measured - self.prev_measured) / dt);
        self.integ = (self.integ + error * dt).clamp(-I_LIMIT, I_LIMIT);
        out += self.ki * self.integ;
        if self.output_limit != 0.0 {
            out = out.clamp(-self.output_limit, self.output_limit);
        }
        self.prev_measured = measured;
        out
    }

    /// `pidReset(pid, actual)`.
    fn reset(&mut self, actual: f64) {
        self.integ = 0.0;
        self.prev_measured = actual;
    }
}

/// What the position controller hands to the attitude loop.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct PositionOutput {
    /// Raw thrust (0..65535).
    pub thrust: f64,
    pub roll_deg: f64,
    /// Legacy frame: positive = nose up.
    pub pitch_deg: f64,
}

#[derive(Clone, Debug)]
pub(super) struct PositionController {
    x: AxisPid,
    y: AxisPid,
    z: AxisPid,
    vx: AxisPid,
    vy: AxisPid,
    vz: AxisPid,
    thrust_base: f64,
}

impl PositionController {
    pub fn new() -> Self {
        Self {
            thrust_base: THRUST_BASE,
            x: AxisPid::new(POS_XY_KP, 0.0),
            y: AxisPid::new(POS_XY_KP, 0.0),
            z: AxisPid::new(POS_Z_KP, POS_Z_KI),
            vx: AxisPid::new(VEL_XY_KP, VEL_XY_KI),
            vy: AxisPid::new(VEL_XY_KP, VEL_XY_KI),
            vz: AxisPid::new(VEL_Z_KP, VEL_Z_KI),
        }
    }

    /// The controller of a firmware built with `gains`' platform defaults.
    pub fn for_gains(gains: depthpilot_types::scene::FirmwareGains) -> Self {
        use depthpilot_types::scene::FirmwareGains;
        let mut c = Self::new();
        if gains == FirmwareGains::Cf21Brushless {
            c.thrust_base = THRUST_BASE_CF21BL;
        }
        c
    }

    /// `positionControllerResetAllPID(x, y, z)`.
    pub fn reset(&mut self, pos_m: [f64; 3]) {
        self.x.reset(pos_m[0]);
        self.y.reset(pos_m[1]);
        self.z.reset(pos_m[2]);
        self.vx.reset(0.0);
        self.vy.reset(0.0);
        self.vz.reset(0.0);
    }

    /// `positionController` + `velocityController`. `pos_m`, `vel_m_s`: the state estimate
    /// (world); `yaw_deg`: the estimated yaw; `dt`: the position-loop period.
    pub fn update(
        &mut self,
        sp: &Setpoint,
        pos_m: [f64; 3],
        vel_m_s: [f64; 3],
        yaw_deg: f64,
        dt: f64,
    ) -> PositionOutput {
        self.x.output_limit = VEL_MAX_M_S * VEL_MAX_OVERHEAD;
        self.y.output_limit = VEL_MAX_M_S * VEL_MAX_OVERHEAD;
        // "The ROS landing detector will prematurely trip if this value is below 0.5".
        self.z.output_limit = VEL_MAX_M_S.max(0.5) * VEL_MAX_OVERHEAD;

        let (sin_yaw, cos_yaw) = yaw_deg.to_radians().sin_cos();
        let [px, py, pz] = sp.position_m;
        let setp_body_x = px * cos_yaw + py * sin_yaw;
        let setp_body_y = -px * sin_yaw + py * cos_yaw;
        let state_body_x = pos_m[0] * cos_yaw + pos_m[1] * sin_yaw;
        let state_body_y = -pos_m[0] * sin_yaw + pos_m[1] * cos_yaw;

        let [gvx, gvy, _] = sp.velocity_m_s;
        let mut v = sp.velocity_m_s;
        if sp.mode.x == Mode::Abs {
            v[0] = self.x.update(setp_body_x, state_body_x, dt);
        } else if !sp.velocity_body {
            v[0] = gvx * cos_yaw + gvy * sin_yaw;
        }
        if sp.mode.y == Mode::Abs {
            v[1] = self.y.update(setp_body_y, state_body_y, dt);
        } else if !sp.velocity_body {
            v[1] = gvy * cos_yaw - gvx * sin_yaw;
        }
        if sp.mode.z == Mode::Abs {
            v[2] = self.z.update(pz, pos_m[2], dt);
        }
        self.velocity(v, vel_m_s, cos_yaw, sin_yaw, dt)
    }

    /// `velocityController`: `v` is the velocity setpoint (x, y body-yaw-aligned, z world).
    fn velocity(
        &mut self,
        v: [f64; 3],
        vel_m_s: [f64; 3],
        cos_yaw: f64,
        sin_yaw: f64,
        dt: f64,
    ) -> PositionOutput {
        self.vx.output_limit = RP_LIMIT_DEG * RP_LIMIT_OVERHEAD;
        self.vy.output_limit = RP_LIMIT_DEG * RP_LIMIT_OVERHEAD;
        // `UINT16_MAX / 2 / thrustScale`: integer 32767, then / 1000.0f.
        self.vz.output_limit = 32767.0 / THRUST_SCALE;

        let state_body_vx = vel_m_s[0] * cos_yaw + vel_m_s[1] * sin_yaw;
        let state_body_vy = -vel_m_s[0] * sin_yaw + vel_m_s[1] * cos_yaw;
        // Positive forward speed error → negative (nose-down) legacy pitch; positive leftward
        // error → negative roll (left side down).
        let pitch = -self.vx.update(v[0], state_body_vx, dt);
        let roll = -self.vy.update(v[1], state_body_vy, dt);

        let thrust_raw = self.vz.update(v[2], vel_m_s[2], dt);
        let thrust = (thrust_raw * THRUST_SCALE + self.thrust_base)
            .max(THRUST_MIN)
            .clamp(0.0, 65535.0);
        PositionOutput {
            thrust,
            roll_deg: roll.clamp(-RP_LIMIT_DEG, RP_LIMIT_DEG),
            pitch_deg: pitch.clamp(-RP_LIMIT_DEG, RP_LIMIT_DEG),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::setpoint::FwSetpoint;
    use super::*;

    const DT: f64 = 0.01;

    fn pos(x: f64, y: f64, z: f64, yaw: f64) -> Setpoint {
        FwSetpoint::Position {
            x_m: x,
            y_m: y,
            z_m: z,
            yaw_deg: yaw,
        }
        .decode()
    }

    #[test]
    fn target_ahead_pitches_nose_down_and_left_rolls_left() {
        let mut pc = PositionController::new();
        let o = pc.update(&pos(0.3, 0.0, 1.0, 0.0), [0.0, 0.0, 1.0], [0.0; 3], 0.0, DT);
        assert!(o.pitch_deg < 0.0 && o.roll_deg == 0.0, "{o:?}");
        let mut pc = PositionController::new();
        let o = pc.update(&pos(0.0, 0.3, 1.0, 0.0), [0.0, 0.0, 1.0], [0.0; 3], 0.0, DT);
        assert!(o.roll_deg < 0.0 && o.pitch_deg == 0.0, "{o:?}");
    }

    #[test]
    fn setpoints_are_rotated_into_the_yaw_frame() {
        // Facing +y, a target at +x is on the right: roll right (positive), no pitch.
        let mut pc = PositionController::new();
        let o = pc.update(
            &pos(0.3, 0.0, 1.0, 90.0),
            [0.0, 0.0, 1.0],
            [0.0; 3],
            90.0,
            DT,
        );
        assert!(o.roll_deg > 0.0 && o.pitch_deg.abs() < 1e-9, "{o:?}");
        // World velocity +x while facing +y: the same.
        let mut pc = PositionController::new();
        let vw = FwSetpoint::VelocityWorld {
            vx_m_s: 0.5,
            vy_m_s: 0.0,
            vz_m_s: 0.0,
            yaw_rate_deg_s: 0.0,
        }
        .decode();
        let o = pc.update(&vw, [0.0; 3], [0.0; 3], 90.0, DT);
        assert!(o.roll_deg > 0.0 && o.pitch_deg.abs() < 1e-9, "{o:?}");
        // Hover velocities are already body-frame: forward stays forward.
        let mut pc = PositionController::new();
        let hv = FwSetpoint::Hover {
            vx_body_m_s: 0.5,
            vy_body_m_s: 0.0,
            yaw_rate_deg_s: 0.0,
            z_m: 0.0,
        }
        .decode();
        let o = pc.update(&hv, [0.0; 3], [0.0; 3], 90.0, DT);
        assert!(o.pitch_deg < 0.0 && o.roll_deg.abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn thrust_is_base_plus_scaled_vz_output_with_floor_and_limits() {
        let mut pc = PositionController::new();
        // At the target, at rest: thrust base.
        let o = pc.update(&pos(0.0, 0.0, 1.0, 0.0), [0.0, 0.0, 1.0], [0.0; 3], 0.0, DT);
        assert_eq!(o.thrust, THRUST_BASE);
        // Far below: the z PID saturates at 1.1 m/s, vz P = 25 · 1.1 (+ I) → ~63 500.
        let mut pc = PositionController::new();
        let o = pc.update(&pos(0.0, 0.0, 5.0, 0.0), [0.0; 3], [0.0; 3], 0.0, DT);
        let want = THRUST_BASE + THRUST_SCALE * (25.0 * 1.1 + 15.0 * 1.1 * DT);
        assert!((o.thrust - want).abs() < 1e-6, "{}", o.thrust);
        // Far above: floored at thrustMin.
        let mut pc = PositionController::new();
        let o = pc.update(&pos(0.0, 0.0, 0.0, 0.0), [0.0, 0.0, 5.0], [0.0; 3], 0.0, DT);
        assert_eq!(o.thrust, THRUST_MIN);
        // Far away sideways: tilt limited to 20°.
        let mut pc = PositionController::new();
        let o = pc.update(&pos(50.0, 0.0, 0.0, 0.0), [0.0; 3], [0.0; 3], 0.0, DT);
        assert_eq!(o.pitch_deg, -RP_LIMIT_DEG);
    }
}
