//! The commander's thrust lock and the supervisor, per firmware era, against
//! bitcraze/crazyflie-firmware @2a18fc29 (`supervisor.c`, `supervisor_state_machine.c`,
//! `crtp_commander_rpyt.c`) and tag 2016.02 (`modules/src/commander.c`, `stabilizer.c`,
//! `sitaw.h`). Audit: docs/firmware-audit/10-commander-supervisor.md.

use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::{Firmware, ImuSample};
use depthpilot_types::scene::FirmwareGains;

/// 500 Hz.
const TICK_NS: u64 = 2_000_000;

fn level() -> ImuSample {
    ImuSample {
        acc_g: [0.0, 0.0, 1.0],
        ..Default::default()
    }
}

/// Lying on its back: 1 g along −z of the body.
fn on_its_back() -> ImuSample {
    ImuSample {
        roll_deg: 180.0,
        acc_g: [0.0, 0.0, -1.0],
        ..Default::default()
    }
}

fn rpyt(thrust: u16) -> RpytSetpoint {
    RpytSetpoint {
        roll_deg: 0.0,
        pitch_deg: 0.0,
        yaw_rate_deg_s: 0.0,
        thrust,
    }
}

/// Runs the firmware from `*t` for `secs`, sending `packet` (if any) before every tick; returns
/// the highest motor command seen.
fn run(fw: &mut Firmware, t: &mut u64, secs: f64, packet: Option<u16>, imu: &ImuSample) -> u16 {
    let end = *t + (secs * 1e9) as u64;
    let mut max = 0;
    while *t < end {
        if let Some(thrust) = packet {
            fw.receive(*t, &rpyt(thrust));
        }
        max = max.max(fw.step(*t, imu).into_iter().max().unwrap_or(0));
        *t += TICK_NS;
    }
    max
}

/// Acceptance: the supervisor's lock after a link loss in flight. Flying (motors above idle),
/// the setpoints stop: level-out after 500 ms (`Flying → Warning, level out`), then after 2 s
/// `Exception, free fall → Locked` ("Locked, reboot required"): nothing the client sends
/// afterwards, not even the zero-thrust packet that used to unlock the thrust, starts the motors.
#[test]
fn link_loss_in_flight_locks_the_motors_until_reboot() {
    let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
    let mut t = 0;
    run(&mut fw, &mut t, 0.1, Some(0), &level());
    let flying = run(&mut fw, &mut t, 1.0, Some(40000), &level());
    assert!(flying > 30000, "flies first: {flying}");
    // Link lost for 2.5 s.
    let levelling = run(&mut fw, &mut t, 1.0, None, &level());
    assert!(levelling > 0, "levels out on the last thrust first");
    run(&mut fw, &mut t, 1.5, None, &level());
    assert_eq!(fw.motors(), [0; 4], "stopped after 2 s without setpoints");
    // The link comes back: a zero packet, then thrust.
    run(&mut fw, &mut t, 0.1, Some(0), &level());
    let after = run(&mut fw, &mut t, 1.0, Some(40000), &level());
    assert_eq!(
        after, 0,
        "locked after a link loss in flight: the motors must stay off until a reboot"
    );
}

/// Era: the thrust lock re-engages after 2 s without setpoints in 2016.02
/// (`commanderWatchdog`: `thrustLocked = true`), but only at boot at 2a18fc29
/// (`commanderGetActivePriority() == COMMANDER_PRIORITY_DISABLE`, which the commander's priority
/// leaves with the first setpoint and never returns to). On the ground (never flown, so the
/// supervisor stays "Ready to fly"), a thrust packet after a long silence starts the motors of
/// a current Crazyflie but not of a 2016 one.
#[test]
fn thrust_lock_re_engages_after_silence_in_2016_only() {
    for (era, starts) in [
        (FirmwareGains::Current, true),
        (FirmwareGains::Era2015, false),
    ] {
        let mut fw = Firmware::new(era, 500.0, 0);
        let mut t = 0;
        run(&mut fw, &mut t, 0.1, Some(0), &level());
        run(&mut fw, &mut t, 3.0, None, &level());
        let m = run(&mut fw, &mut t, 0.2, Some(40000), &level());
        assert_eq!(
            m > 0,
            starts,
            "{era:?}: thrust after 3 s of silence on the ground (highest motor {m})"
        );
        // A zero packet unlocks both.
        run(&mut fw, &mut t, 0.02, Some(0), &level());
        let m = run(&mut fw, &mut t, 0.2, Some(40000), &level());
        assert!(m > 0, "{era:?}: unlocked by a zero packet");
    }
}

/// Era: 2016.02 has no supervisor, and its situation awareness is compiled out
/// (`sitaw.h`: `//#define SITAW_ENABLED`): a 2016 Crazyflie on its back keeps its motors running.
/// The current supervisor cuts them (`Ready to fly → Pre-flight checks not passed`).
#[test]
fn a_2016_crazyflie_has_no_tumble_cut_a_current_one_has() {
    for (era, runs) in [
        (FirmwareGains::Era2015, true),
        (FirmwareGains::Current, false),
    ] {
        let mut fw = Firmware::new(era, 500.0, 0);
        let mut t = 0;
        run(&mut fw, &mut t, 0.1, Some(0), &on_its_back());
        let m = run(&mut fw, &mut t, 1.0, Some(40000), &on_its_back());
        let settled = fw.motors().into_iter().max().unwrap_or(0);
        assert_eq!(
            settled > 0,
            runs,
            "{era:?}: motors on its back after 1 s (highest {m}, last {settled})"
        );
    }
}

/// The CF2.1 Brushless is built with `CONFIG_MOTORS_REQUIRE_ARMING=y` (`configs/cf21bl_defconfig`,
/// `Kconfig`: `PLATFORM_CF21BL` selects `MOTORS_REQUIRE_ARMING`), so `AUTO_ARMING` is 0
/// (`supervisor.c:61-65`): it waits in "Pre-flight checks passed" with its motors stopped until
/// a client arms it, whatever setpoints arrive.
#[test]
fn a_brushless_crazyflie_does_not_fly_until_armed() {
    let mut fw = Firmware::new(FirmwareGains::Cf21Brushless, 500.0, 7000);
    let mut t = 0;
    run(&mut fw, &mut t, 0.1, Some(0), &level());
    let m = run(&mut fw, &mut t, 1.0, Some(40000), &level());
    assert_eq!(m, 0, "not armed: motors stopped");
}

/// Tumbled in flight: "Flying → Crashed" (supervisor_state_machine.c:208-216), motors stopped
/// and, unlike the emergency stop and the link loss, recoverable: once upright, a client's
/// crash-recovery request clears the crashed flag and the CF2 re-arms itself
/// (Crashed → Pre-flight checks not passed → passed → Arming → Ready to fly). Refused while
/// still on its back.
#[test]
fn a_crash_in_flight_is_recovered_by_a_client_request_once_upright() {
    use depthpilot_firmware::{Lockout, SupervisorState};
    let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
    let mut t = 0;
    run(&mut fw, &mut t, 0.1, Some(0), &level());
    run(&mut fw, &mut t, 0.5, Some(40000), &level());
    assert_eq!(fw.supervisor().state(), SupervisorState::Flying);
    run(&mut fw, &mut t, 0.5, Some(40000), &on_its_back());
    assert_eq!(fw.lockout(), Some(Lockout::Crashed));
    assert_eq!(fw.motors(), [0; 4]);
    assert!(!fw.request_crash_recovery(), "refused while tumbled");
    // Upright again, still crashed: motors stay off until the request.
    let m = run(&mut fw, &mut t, 1.0, Some(40000), &level());
    assert_eq!(m, 0, "crashed until recovered");
    assert!(fw.request_crash_recovery());
    let m = run(&mut fw, &mut t, 0.5, Some(40000), &level());
    assert!(m > 0, "flies again after the recovery request");
    assert!(fw.armed());
}

/// The CF2.1 Brushless flies once a client arms it ("Pre-flight checks passed → Arming → Ready
/// to fly"), and disarms itself 3 s after a
/// landing (Landed → Reset → Pre-flight checks not passed → passed), needing a new request.
#[test]
fn a_brushless_crazyflie_flies_once_armed_and_must_re_arm_after_landing() {
    use depthpilot_firmware::SupervisorState;
    let mut fw = Firmware::new(FirmwareGains::Cf21Brushless, 500.0, 7000);
    let mut t = 0;
    run(&mut fw, &mut t, 0.1, Some(0), &level());
    assert!(fw.supervisor().can_arm() && !fw.armed());
    assert!(fw.request_arming(true));
    let m = run(&mut fw, &mut t, 1.0, Some(40000), &level());
    assert!(m > 30000, "armed: flies ({m})");
    // Land: thrust 0 (idle), then wait past the 2 s flying hysteresis and the 3 s landing
    // timeout.
    run(&mut fw, &mut t, 6.0, Some(0), &level());
    assert_eq!(fw.supervisor().state(), SupervisorState::PreFlChecksPassed);
    assert!(!fw.armed());
    let m = run(&mut fw, &mut t, 0.5, Some(40000), &level());
    assert_eq!(m, 0, "disarmed after the landing timeout");
}

/// `flightmode.stabModeYaw` = 1 (angle): the RPYT packet's yaw field is a heading, not a rate
/// (crtp_commander_rpyt.c:212-224 @2a18fc29: `attitude.yaw = values->yaw`; 2016.02 hands the
/// PID its negation, `modules/src/stabilizer.c:264-290`). The yaw setpoint holds the heading
/// instead of integrating a rate.
#[test]
fn yaw_angle_mode_holds_the_packet_heading() {
    for (era, want) in [
        (FirmwareGains::Current, 30.0),
        (FirmwareGains::Era2015, -30.0),
    ] {
        let mut fw = Firmware::new(era, 500.0, 0);
        fw.set_param("flightmode.stabModeYaw", 1.0)
            .expect("writable");
        let mut t = 0;
        run(&mut fw, &mut t, 0.1, Some(0), &level());
        let mut sp = rpyt(30000);
        sp.yaw_rate_deg_s = 30.0;
        for _ in 0..250 {
            fw.receive(t, &sp);
            fw.step(t, &level());
            t += TICK_NS;
        }
        let yaw = fw.attitude_setpoint_deg()[2];
        assert!(
            (yaw - want).abs() < 1e-9,
            "{era:?}: yaw setpoint {yaw} after 0.5 s of yaw field 30 (want {want})"
        );
    }
}

/// The RPYT minimum thrust: 2a18fc29 zeroes a thrust `< 1000` (crtp_commander_rpyt.c:135),
/// 2016.02 passes only `> 1000` (`modules/src/commander.c:192`): 1000 itself runs the motors
/// now and did not then.
#[test]
fn thrust_1000_runs_the_motors_now_but_not_in_2016() {
    for (era, runs) in [
        (FirmwareGains::Current, true),
        (FirmwareGains::Era2015, false),
    ] {
        let mut fw = Firmware::new(era, 500.0, 0);
        let mut t = 0;
        run(&mut fw, &mut t, 0.02, Some(0), &level());
        run(&mut fw, &mut t, 0.02, Some(1000), &level());
        assert_eq!(fw.thrust() > 0, runs, "{era:?}: thrust {}", fw.thrust());
    }
}
