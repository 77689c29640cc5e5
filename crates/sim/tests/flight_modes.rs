//! The `flightmode` parameters in closed loop with the physics (issue 11, acceptance line 1):
//! rate mode turns a roll command into a roll rate, angle mode into an angle; plus mode tilts
//! about a motor arm, X mode between two; carefree keeps the frame the quad booted in. Each test
//! prints what it measured (`cargo test -p depthpilot-sim --test flight_modes -- --nocapture`).

use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::{Firmware, ImuSample};
use depthpilot_sim::{NoProbe, Plant};
use depthpilot_types::Vec3;
use depthpilot_types::scene::{FirmwareGains, Scene, parse};

/// Commander packets at 100 Hz, as cflib streams them.
const LINK_PERIOD_NS: u64 = 10_000_000;
/// Slightly above the 27 g CF2's hover command (36 344, Förster).
const HOVER: u16 = 36_500;

/// A CF2 at 3 m in a world without a floor, with these firmware params.
fn scene(params: &str) -> Scene {
    parse(&format!(
        "Scene(name: \"modes\", duration_s: 10.0, settle_s: 0.0,
         world: (floor: false),
         quad: (initial_position_m: (0.0, 0.0, 3.0)),
         firmware_params: [{params}],
         setpoints: Hover(position_m: (0.0, 0.0, 3.0)))"
    ))
    .expect("scene")
}

/// What cflib's `send_setpoint(roll, pitch, yawrate, thrust)` puts on the wire: the pitch
/// negated.
fn cflib(roll_deg: f32, pitch_deg: f32, yaw_rate_deg_s: f32, thrust: u16) -> RpytSetpoint {
    RpytSetpoint {
        roll_deg,
        pitch_deg: -pitch_deg,
        yaw_rate_deg_s,
        thrust,
    }
}

/// Streams `sp` for `secs`, calling `each` after every physics step.
fn fly(plant: &mut Plant, sp: RpytSetpoint, secs: f64, mut each: impl FnMut(&Plant)) {
    let end = plant.now_ns() + (secs * 1e9).round() as u64;
    while plant.now_ns() < end {
        let now = plant.now_ns();
        if now.is_multiple_of(LINK_PERIOD_NS) {
            plant.firmware_mut().receive(now, &sp);
        }
        plant.step(&mut NoProbe);
        each(plant);
    }
}

/// Unlocks the thrust (a zero packet) and hovers for a moment.
fn take_off(plant: &mut Plant) {
    fly(plant, cflib(0.0, 0.0, 0.0, 0), 0.05, |_| {});
    fly(plant, cflib(0.0, 0.0, 0.0, HOVER), 0.3, |_| {});
}

fn roll_deg(p: &Plant) -> f64 {
    p.truth().world_from_body.rpy()[0].to_degrees()
}

fn roll_rate_deg_s(p: &Plant) -> f64 {
    p.truth().body_rates_rad_s.x.to_degrees()
}

/// The rate-mode roll burst: 90 deg/s for `secs`; returns (mean rate over the last 60 %,
/// roll at the end, rate at the end).
fn roll_burst(params: &str, secs: f64) -> (f64, f64, f64) {
    let mut plant = Plant::new(&scene(params));
    take_off(&mut plant);
    let start = plant.now_ns();
    let (mut sum, mut n) = (0.0, 0);
    fly(&mut plant, cflib(90.0, 0.0, 0.0, HOVER), secs, |p| {
        if (p.now_ns() - start) as f64 * 1e-9 > 0.4 * secs {
            sum += roll_rate_deg_s(p);
            n += 1;
        }
    });
    (
        sum / f64::from(n),
        roll_deg(&plant),
        roll_rate_deg_s(&plant),
    )
}

#[test]
fn rate_mode_turns_a_roll_command_of_90_into_90_deg_per_s() {
    let (mean, roll, rate) = roll_burst("(\"flightmode.stabModeRoll\", 0.0)", 0.5);
    println!(
        "rate mode, roll 90 for 0.5 s: mean roll rate {mean:.2} deg/s (last 0.3 s), \
         roll {roll:.1} deg, rate {rate:.2} deg/s at the end"
    );
    assert!((mean - 90.0).abs() <= 5.0, "mean roll rate {mean:.2} deg/s");
    assert!((roll - 45.0).abs() < 6.0, "roll after 0.5 s: {roll:.1} deg");
}

#[test]
fn angle_mode_turns_the_same_command_into_an_angle() {
    let (_, roll, rate) = roll_burst("", 2.0);
    println!("angle mode, roll 90 for 2.0 s: roll {roll:.2} deg, rate {rate:.2} deg/s at the end");
    assert!((roll - 90.0).abs() <= 5.0, "roll {roll:.2} deg");
    assert!(rate.abs() < 20.0, "still turning at {rate:.1} deg/s");
}

#[test]
fn the_rate_pid_tracks_from_level_within_a_tenth_of_a_second() {
    // The pitch axis in rate mode too, with cflib's pitch sign: +90 (cflib) is nose down.
    let mut plant = Plant::new(&scene("(\"flightmode.stabModePitch\", 0.0)"));
    take_off(&mut plant);
    fly(&mut plant, cflib(0.0, 90.0, 0.0, HOVER), 0.3, |_| {});
    let pitch_rate = plant.truth().body_rates_rad_s.y.to_degrees();
    println!("rate mode, cflib pitch 90 for 0.3 s: body pitch rate {pitch_rate:.2} deg/s");
    assert!(
        (pitch_rate - 90.0).abs() < 5.0,
        "right-handed pitch rate {pitch_rate:.1} deg/s (nose down)"
    );
}

/// Level, at rest: what the firmware sees on its first ticks.
fn level() -> ImuSample {
    ImuSample {
        acc_g: [0.0, 0.0, 1.0],
        ..Default::default()
    }
}

/// The motor commands of the first tick after a forward (cflib pitch +10) command.
fn first_tick_motors(yaw_mode: f64) -> [i64; 4] {
    let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
    fw.set_param("flightmode.yawMode", yaw_mode)
        .expect("writable");
    fw.receive(0, &cflib(0.0, 0.0, 0.0, 0));
    fw.receive(1, &cflib(0.0, 10.0, 0.0, 30_000));
    fw.step(2, &level()).map(i64::from)
}

#[test]
fn plus_mode_tilts_about_the_m2_m4_arm_and_x_mode_between_arms() {
    // Layout: M1 front right, M2 back right, M3 back left, M4 front left.
    let [m1, m2, m3, m4] = first_tick_motors(1.0);
    println!("plus mode, forward: motors {:?}", [m1, m2, m3, m4]);
    // The commands are battery-compensated (the firmware's power distribution), so compare
    // them with the untouched M2–M4 pair rather than with the 30000 sent.
    assert_eq!(m2, m4, "the M2–M4 arm is the tilt axis");
    assert!(m1 < m2 && m3 > m2, "front motor M1 slows, M3 speeds up");

    let [m1, m2, m3, m4] = first_tick_motors(2.0);
    println!("X mode, forward: motors {:?}", [m1, m2, m3, m4]);
    assert!(m1 == m4 && m2 == m3, "front pair and back pair");
    assert!(m1 < m2, "front pair slows");
}

/// Where the thrust axis leans after 0.6 s of forward command: its horizontal direction
/// (degrees from the world's +x, counter-clockwise) and the tilt.
fn lean_after_forward(yaw_mode: f64) -> (f64, f64) {
    let mut plant = Plant::new(&scene(&format!("(\"flightmode.yawMode\", {yaw_mode:.1})")));
    take_off(&mut plant);
    fly(&mut plant, cflib(0.0, 10.0, 0.0, HOVER), 0.6, |_| {});
    let up = plant
        .truth()
        .world_from_body
        .apply(Vec3::new(0.0, 0.0, 1.0));
    (
        up.y.atan2(up.x).to_degrees(),
        up.z.clamp(-1.0, 1.0).acos().to_degrees(),
    )
}

#[test]
fn plus_mode_leans_towards_m1_and_x_mode_straight_ahead() {
    let (dir, tilt) = lean_after_forward(1.0);
    println!("plus mode, forward 10 deg: leans towards {dir:.1} deg, tilt {tilt:.1} deg");
    assert!(
        (dir + 45.0).abs() < 3.0,
        "towards M1, front right: {dir:.1}"
    );
    assert!((tilt - 10.0).abs() < 1.5, "{tilt:.1}");
    let (dir, tilt) = lean_after_forward(2.0);
    println!("X mode, forward 10 deg: leans towards {dir:.1} deg, tilt {tilt:.1} deg");
    assert!(dir.abs() < 3.0, "straight ahead: {dir:.1}");
    assert!((tilt - 10.0).abs() < 1.5, "{tilt:.1}");
}

/// Turns the quad +90° (counter-clockwise; cflib's yaw rate is clockwise-positive), then
/// commands forward for 0.8 s. Returns (heading before the forward command, direction of the
/// horizontal velocity gained, degrees from the world's +x).
fn forward_after_a_quarter_turn(yaw_mode: f64) -> (f64, f64) {
    let mut plant = Plant::new(&scene(&format!("(\"flightmode.yawMode\", {yaw_mode:.1})")));
    take_off(&mut plant);
    fly(&mut plant, cflib(0.0, 0.0, -90.0, HOVER), 1.0, |_| {});
    fly(&mut plant, cflib(0.0, 0.0, 0.0, HOVER), 1.0, |_| {});
    let heading = plant.truth().world_from_body.rpy()[2].to_degrees();
    let v0 = plant.truth().vel_m_s;
    fly(&mut plant, cflib(0.0, 10.0, 0.0, HOVER), 0.8, |_| {});
    let dv = plant.truth().vel_m_s - v0;
    (heading, dv.y.atan2(dv.x).to_degrees())
}

#[test]
fn carefree_forward_stays_the_boot_front_after_a_quarter_turn() {
    let (heading, dir) = forward_after_a_quarter_turn(0.0);
    println!("carefree: heading {heading:.1} deg, forward moves towards {dir:.1} deg");
    assert!((heading - 90.0).abs() < 5.0, "turned to {heading:.1}");
    assert!(dir.abs() < 10.0, "along the boot front (+x): {dir:.1}");
    let (heading, dir) = forward_after_a_quarter_turn(2.0);
    println!("X mode: heading {heading:.1} deg, forward moves towards {dir:.1} deg");
    assert!(
        (dir - heading).abs() < 10.0,
        "X mode follows the nose: {dir:.1}"
    );
}

/// `flightmode.stabModeYaw` 1: the packet's yaw field is a heading (crtp_commander_rpyt.c:219-222
/// @2a18fc29, not negated, counter-clockwise positive as the state's yaw): 45 turns the quad to
/// 45° and holds it.
#[test]
fn yaw_angle_mode_turns_the_quad_to_the_packet_heading() {
    let mut plant = Plant::new(&scene("(\"flightmode.stabModeYaw\", 1.0)"));
    take_off(&mut plant);
    fly(&mut plant, cflib(0.0, 0.0, 45.0, HOVER), 3.0, |_| {});
    let yaw = plant.truth().world_from_body.rpy()[2].to_degrees();
    println!("stabModeYaw 1, yaw field 45: heading after 3 s {yaw:.2}°");
    assert!((yaw - 45.0).abs() < 2.0, "heading {yaw}");
}

/// The supervisor's lock after a link loss in flight, with the physics: hovering at 3 m (no
/// floor), the setpoints stop for 2.5 s: level-out, then "Locked" at 2 s; the link comes back
/// with a zero packet and hover thrust, and the quad keeps falling with its motors stopped.
#[test]
fn a_link_loss_in_flight_drops_the_quad_and_it_stays_locked() {
    let mut plant = Plant::new(&scene(""));
    take_off(&mut plant);
    fly(&mut plant, cflib(0.0, 0.0, 0.0, HOVER), 1.0, |_| {});
    let end = plant.now_ns() + 2_500_000_000;
    while plant.now_ns() < end {
        plant.step(&mut NoProbe);
    }
    fly(&mut plant, cflib(0.0, 0.0, 0.0, 0), 0.05, |_| {});
    let mut max_motor = 0;
    fly(&mut plant, cflib(0.0, 0.0, 0.0, HOVER), 1.0, |p| {
        max_motor = max_motor.max(p.motor_cmd().into_iter().max().unwrap_or(0));
    });
    let vz = plant.truth().vel_m_s.z;
    println!(
        "link lost 2.5 s in flight, back for 1 s: firmware {}, highest motor {max_motor}, \
         vz {vz:.2} m/s",
        plant.firmware().state_name()
    );
    assert_eq!(max_motor, 0, "locked: motors stay stopped");
    assert_eq!(plant.firmware().state_name(), "locked");
    assert!(vz < -5.0, "still falling: {vz}");
}
