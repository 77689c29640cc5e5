//! The thrust path through the firmware's power distribution and the plant: the firmware's
//! battery compensation (`motorsCompensateBatteryVoltage`, `src/drivers/src/motors.c:180-222
//! @2a18fc29`) against the plant's identified voltage law, and the battery under it.

use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::{Firmware, ImuSample};
use depthpilot_sim::Plant;
use depthpilot_sim::quad::{Airframe, Motors};
use depthpilot_sim::runner::{NoLog, NoProbe, fly};
use depthpilot_types::scene::{QuadConfig, parse};

/// `THRUST_MAX` of the default CF2.1 build (2.1+ propellers), N per motor
/// (`platform_defaults_cf2.h:74 @2a18fc29`).
const THRUST_MAX_N: f64 = 0.12;

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

/// Per-motor thrust (N) of the default CF2.x after 1 s of a steady thrust command with the
/// battery at `battery_v`: the firmware at 500 Hz measuring `battery_v`, the plant's motors
/// (lag settled) at the same supply voltage.
fn per_motor_thrust_n(battery_v: f64, cmd: u16) -> [f64; 4] {
    let quad = QuadConfig::default();
    let mut af = Airframe::from_config(&quad, false);
    af.supply_v = battery_v;
    let mut fw = Firmware::new(quad.firmware_gains, 500.0, quad.idle_thrust);
    let mut motors = Motors::default();
    fw.receive(0, &sp(0));
    for k in 0..500u64 {
        let t = k * 2_000_000;
        fw.receive(t, &sp(cmd));
        fw.set_battery_voltage(battery_v);
        let m = fw.step(t, &level());
        motors.step(m, 0.002, &af);
    }
    motors.thrust_n(&af)
}

/// Acceptance: the per-motor thrust is `cmd / 65535 · THRUST_MAX` whatever the battery voltage
/// (here 4.1 V and 3.6 V), from `THRUST_MIN` (cmd 7000) to the commander's 60000, and falls
/// short only where the battery cannot give the motor voltage.
///
/// Tolerance 2e-5 N (0.017 % of `THRUST_MAX`): the PWM ratio is truncated to a whole count
/// (one count moves the thrust by dF/dv · v / 65535 ≤ 0.12 N/V · 4.1 V / 65535 ≈ 8e-6 N), and
/// the firmware's voltage low-pass (b = 0.01 per 1 kHz tick, from 4.2 V) leaves
/// 0.99¹⁰⁰⁰ · 0.6 V ≈ 3e-5 V after 1 s (≈ 4e-6 N). The model computes in f64 where the
/// firmware uses f32 (relative 6e-8).
#[test]
fn thrust_follows_the_compensated_linear_in_command_law_at_two_battery_voltages() {
    let mut worst = 0.0_f64;
    for cmd in (8000..=60000).step_by(4000) {
        let want = f64::from(cmd) / 65535.0 * THRUST_MAX_N;
        let at_4v1 = per_motor_thrust_n(4.1, cmd);
        let at_3v6 = per_motor_thrust_n(3.6, cmd);
        for f in at_4v1.iter().chain(at_3v6.iter()) {
            worst = worst.max((f - want).abs());
            assert!(
                (f - want).abs() < 2e-5,
                "cmd {cmd}: {f:.6} N per motor, the law says {want:.6} N \
                 (4.1 V: {at_4v1:?}, 3.6 V: {at_3v6:?})"
            );
        }
    }
    eprintln!("largest deviation from cmd/65535·THRUST_MAX: {worst:.2e} N");
    // Below THRUST_MIN (0.0128 N ↔ cmd 7000) the compensation stops the motor.
    assert_eq!(per_motor_thrust_n(4.1, 6000), [0.0; 4]);
    // 2.9 V cannot give the 2.98 V that 60000 needs: the ratio caps at 65535 and the thrust
    // falls short of the law.
    let short = per_motor_thrust_n(2.9, 60000)[0];
    assert!(short < 60000.0 / 65535.0 * THRUST_MAX_N - 0.005, "{short}");
}

fn hover_scene(duration_s: f64, realism: &str) -> depthpilot_types::scene::Scene {
    parse(&format!(
        "Scene(name: \"battery hover\", duration_s: {duration_s}, settle_s: 4.0, seed: 1,
          sensing: Oracle((noise_m: 0.002, yaw_noise_deg: 0.5, rate_hz: 30.0, latency_s: 0.040)),
          setpoints: Hover(position_m: (0.0, 0.0, 1.0)),
          realism: {realism})"
    ))
    .expect("scene parses")
}

/// With the battery on, a minute of hover at a steady command: the terminal voltage falls, the
/// firmware raises the PWM, and the motors' thrust stays where it was.
#[test]
fn the_compensation_keeps_the_thrust_as_the_battery_drains() {
    let scene = hover_scene(70.0, "(battery: true)");
    let mut plant = Plant::new(&scene);
    let cmd = 34000; // just under the 27 g hover: the quad stays on the floor.
    plant.firmware_mut().receive(0, &sp(0));
    let law = Airframe::from_config(&scene.quad, false);
    let thrust_now = |p: &Plant| {
        let mut af = law.clone();
        af.supply_v = p.battery().terminal_v();
        p.motors().thrust_n(&af)[0]
    };
    let mut at_5s = None;
    let start_v = plant.battery().terminal_v();
    while plant.now_ns() < 65_000_000_000 {
        if plant.now_ns().is_multiple_of(10_000_000) {
            let t = plant.now_ns();
            plant.firmware_mut().receive(t, &sp(cmd));
        }
        plant.step(&mut NoProbe);
        if plant.now_ns() == 5_000_000_000 {
            at_5s = Some((
                thrust_now(&plant),
                plant.motors().pwm[0],
                plant.battery().terminal_v(),
            ));
        }
    }
    let (f5, pwm5, v5) = at_5s.expect("reached 5 s");
    let (f65, pwm65, v65) = (
        thrust_now(&plant),
        plant.motors().pwm[0],
        plant.battery().terminal_v(),
    );
    eprintln!(
        "start {start_v:.3} V; 5 s: {v5:.3} V, PWM {pwm5:.0}, {f5:.5} N; 65 s: {v65:.3} V, \
         PWM {pwm65:.0}, {f65:.5} N; rest {:.3} V, {:.2} A",
        plant.battery().rest_v(),
        plant.battery().current_a()
    );
    assert!(v5 - v65 > 0.03, "the battery drained: {v5} → {v65} V");
    assert!(
        pwm65 > pwm5 + 300.0,
        "the firmware raised the PWM: {pwm5} → {pwm65}"
    );
    assert!(
        (f65 - f5).abs() < 2e-4 * f5.max(1e-3) + 2e-5,
        "{f5} → {f65} N"
    );
    let want = f64::from(cmd) / 65535.0 * THRUST_MAX_N;
    assert!((f65 - want).abs() < 1e-4, "{f65} vs the law's {want}");
}

/// A 60 s hover with the battery on holds its height like the ideal source does.
#[test]
fn a_minute_of_hover_on_a_draining_battery_holds_height() {
    let s = fly(&hover_scene(64.0, "(battery: true)"), &mut NoLog).expect("flies");
    let [_, _, z] = s.final_position_m;
    eprintln!("rms {:.4} m, final z {z:.3} m", s.rms_error_m);
    assert!(!s.crashed);
    assert!(s.rms_error_m < 0.02, "rms {:.4} m", s.rms_error_m);
    assert!((z - 1.0).abs() < 0.03, "final z {z}");
}

/// The battery item off: no draw, the firmware and the motors see the start voltage.
#[test]
fn with_the_battery_off_the_supply_is_ideal() {
    let scene = hover_scene(5.0, "(battery: false, battery_start_v: 3.9)");
    let mut plant = Plant::new(&scene);
    for _ in 0..2000 {
        plant.step(&mut NoProbe);
    }
    assert_eq!(plant.battery().terminal_v(), 3.9);
    assert_eq!(plant.battery().current_a(), 0.0);
    assert_eq!(plant.firmware().power().battery_voltage(), 3.9);
}

/// Motor spread and a bent arm on: the firmware's integrators take out the torque bias and the
/// quad still holds its hover.
#[test]
fn a_hover_with_motor_spread_and_a_bent_arm_holds() {
    let s = fly(&hover_scene(12.0, "(motor_spread: true)"), &mut NoLog).expect("flies");
    let [x, y, z] = s.final_position_m;
    eprintln!("rms {:.4} m, final ({x:.3}, {y:.3}, {z:.3})", s.rms_error_m);
    assert!(!s.crashed);
    assert!(s.rms_error_m < 0.02, "rms {:.4} m", s.rms_error_m);
}

/// The 2015 era: a CF2.x on `Era2015` flies the legacy propellers' curve by default, and the
/// 2016.02 compensation on it gives Förster's command → thrust map within 2 % from cmd 28000 to
/// the hover command (36344) and 6.5 % at 20000, whatever the battery (Förster identified the
/// CF2.0 through that era's command).
#[test]
fn the_2015_era_reproduces_forster_through_its_own_compensation() {
    use depthpilot_firmware::power::PowerDistribution;
    use depthpilot_types::scene::{FirmwareGains, ThrustCurve};
    let scene = parse(
        "Scene(name: \"era\", duration_s: 5.0, seed: 1, setpoints: Hover(position_m: (0.0, 0.0, 1.0)),
           quad: (firmware_gains: Era2015))",
    )
    .expect("scene parses");
    assert_eq!(scene.quad.thrust_curve, ThrustCurve::CF2_LEGACY_PROPS);
    let mut af = Airframe::from_config(&scene.quad, false);
    let forster = depthpilot_control::ThrustMap::FORSTER;
    for v in [4.1, 3.7] {
        af.supply_v = v;
        let mut pd = PowerDistribution::for_build(FirmwareGains::Era2015, 500.0, 0);
        pd.set_battery_voltage(v);
        for (cmd, within) in [(20000.0, 0.065), (28000.0, 0.02), (36344.0, 0.02)] {
            let pwm = f64::from(pd.distribute(cmd, 0.0, 0.0, 0.0)[0]);
            let f = Motors { pwm: [pwm; 4] }.thrust_n(&af)[0];
            let want = forster.thrust_n(cmd);
            assert!(
                (f / want - 1.0).abs() < within,
                "{v} V, cmd {cmd}: {f:.5} vs Förster {want:.5}"
            );
        }
    }
}
