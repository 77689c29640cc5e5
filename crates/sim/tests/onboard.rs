//! The firmware model's on-board paths in closed loop with the real physics: the generic
//! setpoints, the state estimate with external positions (CRTP 6:0), the on-board position
//! controller, and the supervisor's emergency stop. Uses only the crate's public API.

use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::{Firmware, ImuSample};
use depthpilot_sim::quad::{Airframe, Motors, rotor_wrench};
use depthpilot_sim::world::{BodyState, World};
use depthpilot_sim::{FwSetpoint, StateEstimate};
use depthpilot_types::Vec3;
use depthpilot_types::scene::{FirmwareGains, QuadConfig, WorldConfig};
use std::collections::VecDeque;

// ---------------------------------------------------------------------------------------------
// Closed loop with the real physics: the on-board position controller.

/// Physics step (1 kHz) and firmware period (500 Hz), as the scenes use.
const DT_NS: u64 = 1_000_000;
const FW_PERIOD_NS: u64 = 2_000_000;
/// The commander and the localization packets arrive at 100 Hz, as cflib streams them.
const RADIO_PERIOD_NS: u64 = 10_000_000;
const G: f64 = 9.81;

/// The few lines of `Plant::step` this test needs (firmware tick, motor lag, rotor wrench,
/// rapier), with the truth handed to the firmware as its positioning stand-in.
struct Sim {
    af: Airframe,
    world: World,
    fw: Firmware,
    motors: Motors,
    cmd: [u16; 4],
    prev_vel: Vec3,
    t_ns: u64,
    /// External positions in flight: (delivery time, position).
    ext: VecDeque<(u64, [f64; 3])>,
    max_tilt_deg: f64,
}

impl Sim {
    fn new() -> Self {
        let q = QuadConfig::default();
        let cfg = WorldConfig::default();
        let af = Airframe::from_config(&q, cfg.ground_effect);
        let world = World::new(&cfg, &af, DT_NS as f64 * 1e-9, q.initial_position_m, 0.0);
        Self {
            fw: Firmware::new(
                FirmwareGains::Current,
                1e9 / FW_PERIOD_NS as f64,
                q.idle_thrust,
            ),
            prev_vel: world.state().vel_m_s,
            world,
            af,
            motors: Motors::default(),
            cmd: [0; 4],
            t_ns: 0,
            ext: VecDeque::new(),
            max_tilt_deg: 0.0,
        }
    }

    fn truth(&self) -> BodyState {
        self.world.state()
    }

    /// Measures the truth now and delivers it `delay_ns` later as CRTP 6:0.
    fn send_external_position(&mut self, delay_ns: u64) {
        let p = self.truth().pos_m.to_array();
        self.ext.push_back((self.t_ns + delay_ns, p));
    }

    fn step(&mut self) {
        while let Some(&(due, p)) = self.ext.front() {
            if due > self.t_ns {
                break;
            }
            self.fw.receive_external_position(self.t_ns, p);
            self.ext.pop_front();
        }
        let dt_s = DT_NS as f64 * 1e-9;
        let s = self.world.state();
        if self.t_ns.is_multiple_of(FW_PERIOD_NS) {
            let acc = (s.vel_m_s - self.prev_vel) * (1.0 / dt_s) + Vec3::new(0.0, 0.0, G);
            let acc_g = s.world_from_body.inverse_apply(acc) * (1.0 / G);
            let imu = ImuSample::from_truth(
                s.world_from_body.rpy(),
                s.body_rates_rad_s.to_array(),
                acc_g.to_array(),
            )
            .with_nav(s.pos_m.to_array(), s.vel_m_s.to_array());
            self.cmd = self.fw.step(self.t_ns, &imu);
        }
        self.prev_vel = s.vel_m_s;
        self.motors.step(self.cmd, dt_s, &self.af);
        let w = rotor_wrench(
            &self.af,
            &self.motors,
            &s.world_from_body,
            s.vel_m_s,
            Vec3::ZERO,
            Some(s.pos_m.z),
        );
        self.world.set_wrench(
            w.force_world_n,
            s.world_from_body.apply(w.torque_body_n_m),
            Vec3::ZERO,
        );
        self.world.step(self.t_ns as f64 * 1e-9 + dt_s, &s);
        self.t_ns += DT_NS;
        let tilt = self.truth().world_from_body.tilt_rad().to_degrees();
        self.max_tilt_deg = self.max_tilt_deg.max(tilt);
    }

    /// Runs until `t_s`; `radio` is called at every radio period (send setpoints, positions).
    fn run_until(&mut self, t_s: f64, mut radio: impl FnMut(&mut Self)) {
        let end_ns = (t_s * 1e9).round() as u64;
        while self.t_ns < end_ns {
            if self.t_ns.is_multiple_of(RADIO_PERIOD_NS) {
                radio(self);
            }
            self.step();
        }
    }

    fn error_to(&self, target: [f64; 3]) -> f64 {
        (self.truth().pos_m - Vec3::new(target[0], target[1], target[2])).norm()
    }
}

/// The brief's flight: from rest on the floor to (0.3, -0.2, 1.0), external positions = truth
/// delayed 20 ms at 100 Hz. With the firmware's gains the height overshoots (about 10 cm at
/// 2 s: `PID_POS_Z_KI` winds up during the 1 m climb) and returns along the z loop's slow mode
/// (poles of s² + 2s + 0.5: τ ≈ 3.4 s), so the 5 cm band is entered at about 5.8 s.
#[test]
fn position_setpoint_with_delayed_external_position_reaches_the_target() {
    let target = [0.3, -0.2, 1.0];
    let sp = FwSetpoint::Position {
        x_m: target[0],
        y_m: target[1],
        z_m: target[2],
        yaw_deg: 0.0,
    };
    let mut sim = Sim::new();
    let mut radio = |s: &mut Sim| {
        s.fw.receive_setpoint(s.t_ns, &sp);
        s.send_external_position(20_000_000);
    };
    let mut worst_est_climb: f64 = 0.0;
    let mut worst_xy_late: f64 = 0.0;
    let mut worst_after_6: f64 = 0.0;
    let mut error_at_6 = f64::NAN;
    while sim.t_ns < 8_000_000_000 {
        sim.run_until(sim.t_ns as f64 * 1e-9 + 0.01, &mut radio);
        let t_s = sim.t_ns as f64 * 1e-9;
        let truth = sim.truth().pos_m;
        let StateEstimate { pos_m: e, .. } = sim.fw.state_estimate();
        let est_err = (truth - Vec3::new(e[0], e[1], e[2])).norm();
        if t_s <= 1.5 {
            worst_est_climb = worst_est_climb.max(est_err);
        }
        if t_s >= 5.0 {
            let xy = (truth.x - target[0]).hypot(truth.y - target[1]);
            worst_xy_late = worst_xy_late.max(xy);
        }
        if (t_s - 6.0).abs() < 1e-6 {
            error_at_6 = sim.error_to(target);
        }
        if t_s >= 6.0 {
            worst_after_6 = worst_after_6.max(sim.error_to(target));
        }
    }
    println!(
        "error at 6 s {:.1} mm, worst in [6, 8] s {:.1} mm, xy worst in [5, 8] s {:.1} mm, \
         estimate error up to 1.5 s (20 ms late fixes while climbing) {:.1} mm, max tilt {:.1}°",
        1e3 * error_at_6,
        1e3 * worst_after_6,
        1e3 * worst_xy_late,
        1e3 * worst_est_climb,
        sim.max_tilt_deg
    );
    assert!(sim.fw.external_position_fused());
    assert_eq!(sim.fw.lockout(), None, "no tumble");
    assert!(sim.max_tilt_deg < 30.0, "max tilt {:.1}°", sim.max_tilt_deg);
    assert!(error_at_6 < 0.05, "error at 6 s: {error_at_6} m");
    assert!(
        worst_after_6 < 0.05,
        "left the 5 cm band after 6 s: {worst_after_6} m"
    );
    assert!(worst_xy_late < 0.01, "xy: {worst_xy_late} m");
    assert!(
        worst_est_climb > 0.005,
        "the 20 ms delay must show in the estimate while climbing at ~1 m/s"
    );
    assert!(
        sim.truth().vel_m_s.norm() < 0.05,
        "{:?}",
        sim.truth().vel_m_s
    );
}

fn hover_without_external_position(sp: FwSetpoint) {
    let mut sim = Sim::new();
    sim.run_until(6.0, |s| s.fw.receive_setpoint(s.t_ns, &sp));
    let p = sim.truth().pos_m;
    println!(
        "{sp:?}: t = 6 s at ({:.3}, {:.3}, {:.3}), max tilt {:.1}°",
        p.x, p.y, p.z, sim.max_tilt_deg
    );
    assert!(!sim.fw.external_position_fused());
    // The truth estimator: the estimate is the truth of the last firmware tick (≤ 2 ms old).
    let StateEstimate { pos_m: e, .. } = sim.fw.state_estimate();
    assert!(
        (p - Vec3::new(e[0], e[1], e[2])).norm() < 1e-3,
        "{e:?} vs {p:?}"
    );
    assert_eq!(sim.fw.lockout(), None);
    assert!((p.z - 0.5).abs() < 0.05, "height {}", p.z);
    assert!(
        sim.truth().vel_m_s.norm() < 0.1,
        "{:?}",
        sim.truth().vel_m_s
    );
    assert!(sim.max_tilt_deg < 10.0, "max tilt {:.1}°", sim.max_tilt_deg);
}

#[test]
fn hover_setpoint_with_the_truth_estimator_holds_half_a_metre() {
    hover_without_external_position(FwSetpoint::Hover {
        vx_body_m_s: 0.0,
        vy_body_m_s: 0.0,
        yaw_rate_deg_s: 0.0,
        z_m: 0.5,
    });
}

#[test]
fn zdistance_setpoint_with_the_truth_estimator_holds_half_a_metre() {
    hover_without_external_position(FwSetpoint::ZDistance {
        roll_deg: 0.0,
        pitch_deg: 0.0,
        yaw_rate_deg_s: 0.0,
        z_m: 0.5,
    });
}

#[test]
fn emergency_stop_cuts_the_motors_for_good() {
    let sp = FwSetpoint::Position {
        x_m: 0.0,
        y_m: 0.0,
        z_m: 0.5,
        yaw_deg: 0.0,
    };
    let mut sim = Sim::new();
    sim.run_until(3.0, |s| s.fw.receive_setpoint(s.t_ns, &sp));
    assert!(sim.truth().pos_m.z > 0.3, "flying: {:?}", sim.truth().pos_m);
    sim.fw.emergency_stop();
    sim.step();
    sim.step();
    assert_eq!(sim.cmd, [0; 4], "cut at the next firmware tick");
    let mut max_cmd = 0u16;
    let mut k = 0u32;
    sim.run_until(6.0, |s| {
        // New setpoints of every kind keep arriving; none restarts the motors.
        k += 1;
        match k % 3 {
            0 => s.fw.receive_setpoint(s.t_ns, &sp),
            1 => s.fw.receive_setpoint(
                s.t_ns,
                &FwSetpoint::Manual {
                    roll: 0.0,
                    pitch: 0.0,
                    yaw_rate_deg_s: 0.0,
                    thrust: 40000,
                    rate: false,
                },
            ),
            _ => s.fw.receive(
                s.t_ns,
                &RpytSetpoint {
                    roll_deg: 0.0,
                    pitch_deg: 0.0,
                    yaw_rate_deg_s: 0.0,
                    thrust: if k < 10 { 0 } else { 40000 },
                },
            ),
        }
        max_cmd = max_cmd.max(*s.cmd.iter().max().unwrap_or(&0));
    });
    assert_eq!(max_cmd, 0);
    assert_eq!(sim.fw.motors(), [0; 4]);
    assert_eq!(sim.fw.state_name(), "estop");
    assert!(sim.truth().pos_m.z < 0.05, "fell: {:?}", sim.truth().pos_m);
}
