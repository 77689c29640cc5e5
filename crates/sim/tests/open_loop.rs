//! Open-loop checks of the simulated Crazyflie: the thrust map against the physics, the watchdog
//! and the thrust lock, and the sign of each axis end to end (command → CRTP bytes → firmware →
//! motors → rapier).

use depthpilot_control::ThrustMap;
use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::power::PowerDistribution;
use depthpilot_firmware::{Firmware, ImuSample, Watchdog};
use depthpilot_sim::quad::{Airframe, Motors, rotor_wrench};
use depthpilot_sim::world::{BodyState, World};
use depthpilot_types::scene::{FirmwareGains, QuadConfig, WorldConfig};
use depthpilot_types::{AttitudeCommand, Vec3};

const DT: f64 = 0.001;
const G: f64 = 9.81;

fn airborne_world(af: &Airframe) -> World {
    let cfg = WorldConfig {
        floor: false,
        ..WorldConfig::default()
    };
    World::new(&cfg, af, DT, Vec3::new(0.0, 0.0, 1.0), 0.0)
}

/// Holds the motors at a fixed PWM (lag already settled) and returns the mean vertical
/// acceleration over `n` steps.
fn vertical_acceleration(pwm: f64, n: u32) -> f64 {
    let af = Airframe::from_config(&QuadConfig::default(), false);
    let mut world = airborne_world(&af);
    let motors = Motors { pwm: [pwm; 4] };
    let v0 = world.state().vel_m_s.z;
    for k in 0..n {
        let s = world.state();
        let w = rotor_wrench(
            &af,
            &motors,
            &s.world_from_body,
            s.vel_m_s,
            Vec3::ZERO,
            None,
        );
        world.set_wrench(
            w.force_world_n,
            s.world_from_body.apply(w.torque_body_n_m),
            Vec3::ZERO,
        );
        world.step(f64::from(k) * DT, &s);
    }
    (world.state().vel_m_s.z - v0) / (f64::from(n) * DT)
}

/// The PWM the default firmware build sends for a thrust command on a charged battery (its
/// battery compensation, `depthpilot_firmware::power`).
fn firmware_pwm(cmd: f64) -> f64 {
    f64::from(
        PowerDistribution::for_build(FirmwareGains::Current, 500.0, 0)
            .distribute(cmd, 0.0, 0.0, 0.0)[0],
    )
}

/// Was `hover_pwm_from_the_forster_map_holds_altitude`: the plant's law is now the firmware's
/// (compensated, linear in the command), so the hover command comes from that law.
#[test]
fn hover_command_from_the_compensated_law_holds_altitude() {
    let cmd = ThrustMap::CF21_COMPENSATED.pwm_for(0.027 * G / 4.0);
    let pwm = firmware_pwm(cmd);
    let a = vertical_acceleration(pwm, 200);
    println!(
        "hover PWM {pwm:.0}: vertical acceleration {a:+.4} m/s² ({:+.2} % of g)",
        100.0 * a / G
    );
    assert!(
        a.abs() <= 0.05 * G,
        "vertical acceleration at hover PWM {pwm:.0}: {a} m/s²"
    );
}

/// Was `full_thrust_gives_thrust_to_weight_of_2_4` (Förster's map at PWM 65535). The default
/// build's full command is `THRUST_MAX` = 0.12 N per motor: T/W 1.81 for 27 g.
#[test]
fn full_command_gives_thrust_to_weight_of_1_8() {
    let a = vertical_acceleration(firmware_pwm(65535.0), 100);
    let tw = a / G + 1.0;
    println!("full command: T/W = {tw:.3}");
    assert!((tw - 1.81).abs() < 0.05, "T/W = {tw:.3}");
}

/// A closed firmware + physics loop driven by raw CRTP packets.
struct Bench {
    af: Airframe,
    world: World,
    fw: Firmware,
    motors: Motors,
    t_ns: u64,
    prev_vel: Vec3,
}

impl Bench {
    fn new() -> Self {
        let af = Airframe::from_config(&QuadConfig::default(), false);
        let world = airborne_world(&af);
        Self {
            fw: Firmware::new(FirmwareGains::Current, 500.0, 0),
            world,
            af,
            motors: Motors::default(),
            t_ns: 0,
            prev_vel: Vec3::ZERO,
        }
    }

    fn send(&mut self, cmd: &AttitudeCommand) {
        let bytes = RpytSetpoint::from_command(cmd).encode();
        let sp = RpytSetpoint::decode(&bytes).expect("own packet decodes");
        self.fw.receive(self.t_ns, &sp);
    }

    /// Runs `ms` milliseconds; the firmware ticks every other step (500 Hz).
    fn run_ms(&mut self, ms: u64, resend: Option<AttitudeCommand>) -> BodyState {
        for _ in 0..ms {
            if let Some(c) = resend
                && self.t_ns.is_multiple_of(10_000_000)
            {
                self.send(&c);
            }
            let s = self.world.state();
            if self.t_ns.is_multiple_of(2_000_000) {
                let acc = (s.vel_m_s - self.prev_vel) * (1.0 / DT) + Vec3::new(0.0, 0.0, G);
                let acc_g = s.world_from_body.inverse_apply(acc) * (1.0 / G);
                let imu = ImuSample::from_truth(
                    s.world_from_body.rpy(),
                    s.body_rates_rad_s.to_array(),
                    acc_g.to_array(),
                );
                self.fw.step(self.t_ns, &imu);
            }
            self.prev_vel = s.vel_m_s;
            self.motors.step(self.fw.motors(), DT, &self.af);
            let w = rotor_wrench(
                &self.af,
                &self.motors,
                &s.world_from_body,
                s.vel_m_s,
                Vec3::ZERO,
                None,
            );
            self.world.set_wrench(
                w.force_world_n,
                s.world_from_body.apply(w.torque_body_n_m),
                Vec3::ZERO,
            );
            self.world.step(self.t_ns as f64 * 1e-9, &s);
            self.t_ns += 1_000_000;
        }
        self.world.state()
    }
}

fn hover_cmd() -> AttitudeCommand {
    AttitudeCommand {
        thrust_frac: ThrustMap::CF21_COMPENSATED.frac_for_collective(0.027 * G),
        ..AttitudeCommand::ZERO
    }
}

#[test]
fn positive_roll_command_rolls_right_side_down_and_moves_right() {
    let mut b = Bench::new();
    b.send(&AttitudeCommand::ZERO);
    let cmd = AttitudeCommand {
        roll_rad: 10f64.to_radians(),
        ..hover_cmd()
    };
    let s = b.run_ms(300, Some(cmd));
    let [roll, pitch, _] = s.world_from_body.rpy();
    assert!(
        (roll.to_degrees() - 10.0).abs() < 3.0,
        "roll {:.2}°",
        roll.to_degrees()
    );
    assert!(pitch.abs().to_degrees() < 1.0);
    assert!(
        s.vel_m_s.y < -0.1,
        "moves towards -y (right): {:?}",
        s.vel_m_s
    );
}

#[test]
fn positive_pitch_command_lowers_the_nose_and_moves_forward() {
    let mut b = Bench::new();
    b.send(&AttitudeCommand::ZERO);
    let cmd = AttitudeCommand {
        pitch_rad: 10f64.to_radians(),
        ..hover_cmd()
    };
    let s = b.run_ms(300, Some(cmd));
    let [_, pitch, _] = s.world_from_body.rpy();
    assert!(
        (pitch.to_degrees() - 10.0).abs() < 3.0,
        "pitch {:.2}°",
        pitch.to_degrees()
    );
    assert!(
        s.vel_m_s.x > 0.1,
        "moves towards +x (forward): {:?}",
        s.vel_m_s
    );
}

#[test]
fn positive_yaw_rate_command_turns_left() {
    let mut b = Bench::new();
    b.send(&AttitudeCommand::ZERO);
    let cmd = AttitudeCommand {
        yaw_rate_rad_s: 45f64.to_radians(),
        ..hover_cmd()
    };
    let s = b.run_ms(1000, Some(cmd));
    let yaw = s.world_from_body.rpy()[2].to_degrees();
    assert!(
        yaw > 25.0 && yaw < 50.0,
        "yaw after 1 s at 45 deg/s: {yaw:.1}°"
    );
}

#[test]
fn thrust_stays_locked_until_a_zero_packet() {
    let mut b = Bench::new();
    // No zero packet first: the firmware must ignore the thrust and the quad falls.
    let s = b.run_ms(300, Some(hover_cmd()));
    assert!(b.fw.thrust_locked());
    assert_eq!(b.fw.motors(), [0; 4]);
    assert!(s.vel_m_s.z < -2.0, "falls freely: {:?}", s.vel_m_s);
    b.send(&AttitudeCommand::ZERO);
    b.run_ms(50, Some(hover_cmd()));
    assert!(!b.fw.thrust_locked());
    assert!(
        b.fw.motors().iter().all(|&m| m > 30_000),
        "{:?}",
        b.fw.motors()
    );
}

#[test]
fn watchdog_levels_after_500_ms_and_cuts_after_2_s() {
    let mut b = Bench::new();
    b.send(&AttitudeCommand::ZERO);
    let tilted = AttitudeCommand {
        roll_rad: 8f64.to_radians(),
        ..hover_cmd()
    };
    let s = b.run_ms(300, Some(tilted));
    assert!(s.world_from_body.rpy()[0].to_degrees() > 5.0);
    // The link goes silent.
    let s = b.run_ms(450, None);
    assert_eq!(b.fw.watchdog(), Watchdog::Fresh);
    assert!(
        s.world_from_body.rpy()[0].to_degrees() > 5.0,
        "still tilted before 500 ms"
    );
    let s = b.run_ms(450, None);
    assert_eq!(b.fw.watchdog(), Watchdog::Levelling);
    assert!(
        s.world_from_body.rpy()[0].to_degrees().abs() < 1.0,
        "levelled after 500 ms"
    );
    assert!(
        b.fw.motors().iter().all(|&m| m > 20_000),
        "thrust kept while levelling"
    );
    b.run_ms(1_150, None);
    assert_eq!(b.fw.watchdog(), Watchdog::Disabled);
    assert_eq!(b.fw.motors(), [0; 4], "motors off after 2 s");
}
