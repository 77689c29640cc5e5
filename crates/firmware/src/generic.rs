//! The generic-setpoint path through the stabiliser, after `controllerPid`
//! (`src/modules/src/controller/controller_pid.c`): mode-change resets, yaw from rate or
//! absolute, the position controller at 100 Hz, then per axis either its outputs or the
//! setpoint's, the attitude PIDs, rate overrides for rate modes, the rate PIDs, and everything
//! reset when the thrust is 0.
//!
//! Simplifications, stated: the controller reads this tick's estimate (the firmware's
//! stabiliser reads the Kalman task's previous result); the 2 s watchdog stage stops the motors
//! as on the legacy path (`Watchdog::Disabled`), whereas the current supervisor state machine
//! goes on to "Locked" when that happens in flight; the yaw `YAW_MAX_DELTA` clamp is 0 (off) by
//! default and not modelled.

use super::setpoint::{Mode, Setpoint};
use super::{Firmware, ImuSample, Watchdog, saturate_i16, wrap_180};

impl Firmware {
    /// `controllerResetAllPids`: position, attitude and rate PIDs; attitude setpoint to the state.
    /// (`controllerPidReinitialize`, controller_pid.c:43 @2a18fc29.)
    pub(super) fn reset_all_pids(&mut self, imu: &ImuSample, pos_m: [f64; 3]) {
        self.pos_ctl.reset(pos_m);
        self.reset_pids(imu);
        self.attitude_desired_deg = [imu.roll_deg, imu.pitch_deg];
    }

    /// The generic-setpoint path, after `controllerPid` (`controller_pid.c`).
    pub(super) fn step_generic(&mut self, imu: &ImuSample, received: Setpoint) -> [u16; 4] {
        let mut sp = received;
        match self.watchdog {
            Watchdog::Disabled => sp = Setpoint::NULL,
            Watchdog::Levelling => {
                // supervisorOverrideSetpoint, supervisorStateWarningLevelOut: level out, yaw
                // rate 0, "Keep Z as it is" (z mode, height or vertical velocity, thrust).
                sp.mode.x = Mode::Disable;
                sp.mode.y = Mode::Disable;
                sp.mode.roll = Mode::Abs;
                sp.mode.pitch = Mode::Abs;
                sp.mode.yaw = Mode::Velocity;
                sp.attitude_deg[0] = 0.0;
                sp.attitude_deg[1] = 0.0;
                sp.attitude_rate_deg_s[2] = 0.0;
            }
            Watchdog::Fresh => {}
        }
        if self.lockout.is_some() {
            // Any state but flying/levelling: the supervisor substitutes the null setpoint.
            sp = Setpoint::NULL;
        }
        if self.sitaw.tu.released {
            // sitaw.c (2016–2020) `sitAwPreThrustUpdateCallOut`: tumbled kills the thrust.
            sp.mode.x = Mode::Disable;
            sp.mode.y = Mode::Disable;
            sp.mode.z = Mode::Disable;
            sp.thrust = 0.0;
        }
        let est = self.estimator.estimate();
        // setpointModeChanged: a change of modes resets every PID.
        if sp.mode != self.prev_modes {
            self.reset_all_pids(imu, est.pos_m);
        }
        self.prev_modes = sp.mode;

        let dt = self.dt_s;
        let divider = u64::from(self.gains.attitude_divider);
        let attitude_tick = self.tick.is_multiple_of(divider);
        let att_dt = dt * f64::from(self.gains.attitude_divider);
        if attitude_tick {
            match sp.mode.yaw {
                Mode::Velocity => {
                    self.yaw_desired_deg =
                        wrap_180(self.yaw_desired_deg + sp.attitude_rate_deg_s[2] * att_dt);
                }
                Mode::Abs => self.yaw_desired_deg = sp.attitude_deg[2],
                Mode::Disable => {}
            }
            self.yaw_desired_deg = wrap_180(self.yaw_desired_deg);
        }
        if self.tick.is_multiple_of(self.pos_divider) {
            let pos_dt = dt * self.pos_divider as f64;
            let out = self
                .pos_ctl
                .update(&sp, est.pos_m, est.vel_m_s, imu.yaw_deg, pos_dt);
            self.actuator_thrust = out.thrust;
            self.attitude_desired_deg = [out.roll_deg, out.pitch_deg];
        }
        if attitude_tick {
            // Manual and automatic control per axis.
            if sp.mode.z == Mode::Disable {
                self.actuator_thrust = sp.thrust;
            }
            if sp.mode.x == Mode::Disable || sp.mode.y == Mode::Disable {
                self.attitude_desired_deg = [sp.attitude_deg[0], sp.attitude_deg[1]];
            }
            let [roll_d, pitch_d] = self.attitude_desired_deg;
            self.rate_desired = [
                self.roll.update(roll_d, imu.roll_deg),
                self.pitch.update(pitch_d, imu.pitch_deg),
                self.yaw.update(self.yaw_desired_deg, imu.yaw_deg),
            ];
            if sp.mode.roll == Mode::Velocity {
                self.rate_desired[0] = sp.attitude_rate_deg_s[0];
            }
            if sp.mode.pitch == Mode::Velocity {
                self.rate_desired[1] = sp.attitude_rate_deg_s[1];
            }
        }
        let thrust = self.actuator_thrust;
        let [gx, gy, gz] = imu.gyro_deg_s;
        // Legacy frame: the pitch rate is -gyro.y (controller_pid.c:142).
        let rates = [gx, -gy, gz];
        let mut roll_out = saturate_i16(self.roll_rate.update(self.rate_desired[0], rates[0]));
        let mut pitch_out = saturate_i16(self.pitch_rate.update(self.rate_desired[1], rates[1]));
        let mut yaw_out = -saturate_i16(self.yaw_rate.update(self.rate_desired[2], rates[2]));
        if thrust == 0.0 {
            // controller_pid.c:163-179: outputs 0, every PID reset, yaw setpoint to the estimate.
            (roll_out, pitch_out, yaw_out) = (0.0, 0.0, 0.0);
            self.reset_all_pids(imu, est.pos_m);
            self.yaw_desired_deg = imu.yaw_deg;
        }
        self.tick += 1;
        self.control_thrust = thrust;
        self.thrust = thrust.clamp(0.0, 65535.0) as u16;
        self.mix(thrust, roll_out, pitch_out, yaw_out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    const TICK: u64 = 2_000_000;

    /// Level, at rest, at `pos` (the plant's truth for the estimator).
    fn at(pos: [f64; 3]) -> ImuSample {
        ImuSample {
            acc_g: [0.0, 0.0, 1.0],
            ..Default::default()
        }
        .with_nav(pos, [0.0; 3])
    }

    fn new_fw() -> Firmware {
        Firmware::new(FirmwareGains::Current, 500.0, 0)
    }

    /// Sends `sp` every tick for `n` ticks from `*t`.
    fn fly(fw: &mut Firmware, t: &mut u64, sp: &FwSetpoint, imu: &ImuSample, n: u64) -> [u16; 4] {
        let mut m = [0; 4];
        for _ in 0..n {
            fw.receive_setpoint(*t, sp);
            m = fw.step(*t, imu);
            *t += TICK;
        }
        m
    }

    fn position(x_m: f64, y_m: f64, z_m: f64, yaw_deg: f64) -> FwSetpoint {
        FwSetpoint::Position {
            x_m,
            y_m,
            z_m,
            yaw_deg,
        }
    }

    #[test]
    fn position_ahead_commands_nose_down_and_climbs_without_an_unlock_packet() {
        let mut fw = new_fw();
        let mut t = 0;
        let m = fly(
            &mut fw,
            &mut t,
            &position(0.3, 0.0, 1.0, 0.0),
            &at([0.0; 3]),
            1,
        );
        let [roll, pitch, yaw] = fw.attitude_setpoint_deg();
        assert!(
            pitch < 0.0,
            "legacy frame: negative pitch is nose down ({pitch})"
        );
        assert_eq!((roll, yaw), (0.0, 0.0));
        assert!(
            fw.stabilizer_thrust() > 36000.0,
            "{}",
            fw.stabilizer_thrust()
        );
        assert!(
            m.iter().all(|&v| v > 30000),
            "no thrust lock on generic setpoints: {m:?}"
        );
        // To the left (+y): roll left side down, i.e. negative roll.
        let mut fw = new_fw();
        let mut t = 0;
        fly(
            &mut fw,
            &mut t,
            &position(0.0, 0.3, 0.0, 0.0),
            &at([0.0; 3]),
            1,
        );
        assert!(fw.attitude_setpoint_deg()[0] < 0.0);
    }

    #[test]
    fn non_legacy_yaw_rate_is_not_negated_but_the_rpyt_one_is() {
        let mut fw = new_fw();
        let mut t = 0;
        let sp = FwSetpoint::VelocityWorld {
            vx_m_s: 0.0,
            vy_m_s: 0.0,
            vz_m_s: 0.0,
            yaw_rate_deg_s: 30.0,
        };
        fly(&mut fw, &mut t, &sp, &at([0.0, 0.0, 1.0]), 50);
        let yaw = fw.attitude_setpoint_deg()[2];
        assert!(
            (yaw - 30.0 * 50.0 * 0.002).abs() < 1e-9,
            "counter-clockwise: {yaw}"
        );

        let mut fw = fw_legacy_unlocked();
        let mut p = RpytSetpoint {
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 30.0,
            thrust: 30000,
        };
        for k in 1..=50 {
            fw.receive(k * TICK, &p);
            fw.step(k * TICK, &at([0.0, 0.0, 1.0]));
        }
        assert!(
            fw.attitude_setpoint_deg()[2] < -2.0,
            "legacy yaw rate is inverted"
        );
        p.thrust = 0;
        fw.receive(51 * TICK, &p);
        assert!(!fw.thrust_locked());
    }

    fn fw_legacy_unlocked() -> Firmware {
        let mut fw = new_fw();
        fw.receive(
            0,
            &RpytSetpoint {
                roll_deg: 0.0,
                pitch_deg: 0.0,
                yaw_rate_deg_s: 0.0,
                thrust: 0,
            },
        );
        fw
    }

    #[test]
    fn stop_turns_the_motors_off_and_keeps_the_watchdog_fresh() {
        let mut fw = new_fw();
        let mut t = 0;
        let m = fly(
            &mut fw,
            &mut t,
            &position(0.0, 0.0, 1.0, 0.0),
            &at([0.0; 3]),
            10,
        );
        assert!(m.iter().all(|&v| v > 0));
        let m = fly(&mut fw, &mut t, &FwSetpoint::Stop, &at([0.0; 3]), 1);
        assert_eq!(m, [0; 4]);
        assert_eq!(fw.watchdog(), Watchdog::Fresh);
        assert_eq!(fw.stabilizer_thrust(), 0.0);
    }

    #[test]
    fn manual_thrust_is_raw_and_rate_mode_commands_rates() {
        let mut fw = new_fw();
        let mut t = 0;
        let sp = FwSetpoint::Manual {
            roll: 0.0,
            pitch: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust: 30000,
            rate: false,
        };
        // The raw thrust goes to the power distribution as it is (then the default build's
        // battery compensation, `power`).
        let raw = crate::power::PowerDistribution::for_build(FirmwareGains::Current, 500.0, 0)
            .distribute(30000.0, 0.0, 0.0, 0.0);
        assert_eq!(fly(&mut fw, &mut t, &sp, &at([0.0; 3]), 1), raw);
        // Rate mode: a roll rate of 100 deg/s commands the right side down (M1, M2 slower).
        let sp = FwSetpoint::Manual {
            roll: 100.0,
            pitch: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust: 30000,
            rate: true,
        };
        let m = fly(&mut fw, &mut t, &sp, &at([0.0; 3]), 1);
        assert!(m[2] > m[1] && m[3] > m[0], "{m:?}");
        assert_eq!(fw.rate_desired[0], 100.0);
    }

    #[test]
    fn zdistance_passes_roll_and_pitch_and_holds_height_by_thrust() {
        let mut fw = new_fw();
        let mut t = 0;
        let sp = FwSetpoint::ZDistance {
            roll_deg: 3.0,
            pitch_deg: -4.0,
            yaw_rate_deg_s: 0.0,
            z_m: 0.5,
        };
        fly(&mut fw, &mut t, &sp, &at([0.0, 0.0, 0.5]), 5);
        assert_eq!(fw.attitude_setpoint_deg()[..2], [3.0, -4.0]);
        assert!(
            (fw.stabilizer_thrust() - 36000.0).abs() < 1.0,
            "at height: thrust base"
        );
        fly(&mut fw, &mut t, &sp, &at([0.0, 0.0, 0.3]), 5);
        assert!(
            fw.stabilizer_thrust() > 40000.0,
            "{}",
            fw.stabilizer_thrust()
        );
    }

    #[test]
    fn levelling_keeps_the_height_hold_and_the_cut_stops_it() {
        let mut fw = new_fw();
        let mut t = 0;
        fly(
            &mut fw,
            &mut t,
            &position(1.0, 1.0, 1.0, 0.0),
            &at([0.0, 0.0, 1.0]),
            10,
        );
        assert!(fw.attitude_setpoint_deg()[0] != 0.0);
        let m = fw.step(t + 600_000_000, &at([0.0, 0.0, 1.0]));
        assert_eq!(fw.watchdog(), Watchdog::Levelling);
        assert_eq!(fw.attitude_setpoint_deg()[..2], [0.0, 0.0]);
        assert!(m.iter().all(|&v| v > 20000), "z hold keeps flying: {m:?}");
        let m = fw.step(t + 2_100_000_000, &at([0.0, 0.0, 1.0]));
        assert_eq!(fw.watchdog(), Watchdog::Disabled);
        assert_eq!(m, [0; 4]);
    }

    #[test]
    fn emergency_stop_latches_whatever_comes_next() {
        let mut fw = new_fw();
        let mut t = 0;
        fly(
            &mut fw,
            &mut t,
            &position(0.0, 0.0, 1.0, 0.0),
            &at([0.0; 3]),
            10,
        );
        assert!(fw.armed() && fw.is_flying());
        fw.emergency_stop();
        assert_eq!(fw.lockout(), Some(Lockout::EmergencyStop));
        assert_eq!(fw.state_name(), "estop");
        assert!(!fw.armed());
        let m = fly(
            &mut fw,
            &mut t,
            &position(0.0, 0.0, 1.0, 0.0),
            &at([0.0; 3]),
            10,
        );
        assert_eq!(m, [0; 4]);
        for k in 0..10 {
            let p = RpytSetpoint {
                roll_deg: 0.0,
                pitch_deg: 0.0,
                yaw_rate_deg_s: 0.0,
                thrust: if k == 0 { 0 } else { 40000 },
            };
            fw.receive(t, &p);
            assert_eq!(fw.step(t, &at([0.0; 3])), [0; 4]);
            t += TICK;
        }
        // A later tumble does not replace the cause.
        fw.step(t, &ImuSample::default());
        assert_eq!(fw.state_name(), "estop");
    }

    #[test]
    fn is_flying_has_a_two_second_hysteresis() {
        let mut fw = new_fw();
        let mut t = 0;
        assert!(!fw.is_flying());
        fly(
            &mut fw,
            &mut t,
            &position(0.0, 0.0, 1.0, 0.0),
            &at([0.0; 3]),
            5,
        );
        assert!(fw.is_flying());
        fly(&mut fw, &mut t, &FwSetpoint::Stop, &at([0.0; 3]), 500);
        assert!(fw.is_flying(), "still within 2 s");
        fly(&mut fw, &mut t, &FwSetpoint::Stop, &at([0.0; 3]), 600);
        assert!(!fw.is_flying());
    }

    #[test]
    fn external_positions_take_over_the_estimate() {
        let mut fw = new_fw();
        fw.step(0, &at([0.1, 0.2, 0.3]));
        assert_eq!(fw.state_estimate().pos_m, [0.1, 0.2, 0.3]);
        assert!(!fw.external_position_fused());
        for k in 1..=100u64 {
            if k.is_multiple_of(5) {
                fw.receive_external_position(k * TICK, [0.5, 0.2, 0.3]);
            }
            // The truth says otherwise: once fused, it is no longer used.
            fw.step(k * TICK, &at([0.1, 0.2, 0.3]));
        }
        assert!(fw.external_position_fused());
        assert_eq!(fw.last_external_position_ns(), Some(100 * TICK));
        assert!((fw.state_estimate().pos_m[0] - 0.5).abs() < 1e-3);
    }

    #[test]
    fn legacy_outputs_ignore_the_estimator_inputs() {
        // Same legacy packets and attitude; one firmware also gets truth and external positions.
        let (mut a, mut b) = (new_fw(), new_fw());
        for k in 0..2000u64 {
            let t = k * TICK;
            let p = RpytSetpoint {
                roll_deg: (k as f32 * 0.01).sin() * 5.0,
                pitch_deg: (k as f32 * 0.013).cos() * 5.0,
                yaw_rate_deg_s: 20.0,
                thrust: if k < 3 { 0 } else { 38000 },
            };
            let imu = ImuSample::from_truth(
                [0.01 * (k as f64 * 0.02).sin(), 0.02, 0.001 * k as f64],
                [0.1, -0.2, 0.3],
                [0.0, 0.1, 1.0],
            );
            if k % 700 < 600 {
                a.receive(t, &p);
                b.receive(t, &p);
            }
            if k.is_multiple_of(5) {
                b.receive_external_position(t, [1.0, 2.0, k as f64 * 1e-3]);
            }
            let ma = a.step(t, &imu);
            let mb = b.step(t, &imu.with_nav([0.5; 3], [0.1; 3]));
            assert_eq!(ma, mb, "tick {k}");
            assert_eq!(a.attitude_setpoint_deg(), b.attitude_setpoint_deg());
        }
    }

    #[test]
    fn attitude_log_is_the_legacy_frame() {
        let mut fw = new_fw();
        let imu = ImuSample::from_truth([0.1, 0.2, 0.3], [0.0; 3], [0.0, 0.0, 1.0]);
        fw.step(0, &imu);
        let [r, p, y] = fw.attitude_deg();
        assert!((r - 0.1f64.to_degrees()).abs() < 1e-12);
        assert!(
            (p + 0.2f64.to_degrees()).abs() < 1e-12,
            "nose down reads negative"
        );
        assert!((y - 0.3f64.to_degrees()).abs() < 1e-12);
    }
}
