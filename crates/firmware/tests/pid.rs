//! The attitude and rate PIDs on the legacy RPYT path, against `pid.c` (see
//! docs/firmware-audit/20-pid-position.md).

use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::{Firmware, ImuSample};
use depthpilot_types::scene::FirmwareGains;

const TICK_NS: u64 = 2_000_000;

fn sp(thrust: u16, yaw_rate_deg_s: f32) -> RpytSetpoint {
    RpytSetpoint {
        roll_deg: 0.0,
        pitch_deg: 0.0,
        yaw_rate_deg_s,
        thrust,
    }
}

/// Level, turning counter-clockwise at `rate_deg_s`, heading `yaw_deg` (any value; wrapped into
/// (−180, 180] as an estimator reports it).
fn turning(yaw_deg: f64, rate_deg_s: f64) -> ImuSample {
    let yaw = (yaw_deg + 180.0).rem_euclid(360.0) - 180.0;
    ImuSample::from_truth(
        [0.0, 0.0, yaw.to_radians()],
        [0.0, 0.0, rate_deg_s.to_radians()],
        [0.0, 0.0, 1.0],
    )
}

/// The mixer's yaw share: M1 and M3 get +yaw, M2 and M4 −yaw.
fn yaw_share(m: [u16; 4]) -> f64 {
    let m = m.map(f64::from);
    (m[0] - m[1] + m[2] - m[3]) / 4.0
}

/// Regression for the fidelity issue: `pid.c` wraps the measured yaw delta of the yaw angle
/// PID (`src/utils/src/pid.c:85` @2a18fc29); without it the tick where the estimate jumps from
/// +180° to −180° demands tens of thousands of deg/s and kicks the yaw-rate integrator.
#[test]
fn yaw_crossing_180_gives_no_rate_kick() {
    for gains in [FirmwareGains::Current, FirmwareGains::Era2015] {
        let mut fw = Firmware::new(gains, 500.0, 0);
        let rate = 20.0;
        let mut yaw = 175.0;
        // Sitting with the thrust at 0 for a while (every tick resets the PIDs).
        for k in 0..10u64 {
            fw.receive(k, &sp(0, 0.0));
            fw.step(k, &turning(yaw, rate));
        }
        let (mut prev_demand, mut prev_share) = (None::<f64>, None::<f64>);
        for k in 1..1000u64 {
            let t = 10 + k * TICK_NS;
            yaw += rate * 0.002;
            // The legacy yaw rate is inverted: −20 on the wire turns counter-clockwise.
            fw.receive(t, &sp(30000, -rate as f32));
            let m = fw.step(t, &turning(yaw, rate));
            let demand = fw.rate_setpoint_deg_s()[2];
            let share = yaw_share(m);
            assert!(
                demand.abs() < 300.0,
                "{gains:?}: yaw-rate demand {demand} deg/s at yaw {yaw:.2}°"
            );
            if let (Some(pd), Some(ps)) = (prev_demand, prev_share) {
                assert!(
                    (demand - pd).abs() < 50.0,
                    "{gains:?}: yaw-rate demand jumped {pd} → {demand} at yaw {yaw:.2}°"
                );
                assert!(
                    (share - ps).abs() < 1500.0,
                    "{gains:?}: yaw command jumped {ps} → {share} at yaw {yaw:.2}°"
                );
            }
            prev_demand = Some(demand);
            prev_share = Some(share);
        }
        assert!(yaw > 190.0, "the test crossed ±180° ({yaw})");
    }
}

fn level_with(gyro_deg_s: [f64; 3]) -> ImuSample {
    ImuSample {
        gyro_deg_s,
        acc_g: [0.0, 0.0, 1.0],
        ..Default::default()
    }
}

/// 2016's attitude PIDs ran at 250 Hz with dt = IMU_UPDATE_DT = 1/500 s
/// (`modules/src/controller.c:72` @2016.02): after 1 s of a constant 10° roll error the
/// integral is 10 · 0.002 · 250 = 5 deg·s, not 10.
#[test]
fn era2015_attitude_pids_integrate_with_the_rate_loop_dt() {
    let mut fw = Firmware::new(FirmwareGains::Era2015, 500.0, 0);
    fw.receive(0, &sp(0, 0.0));
    fw.step(0, &level_with([0.0; 3]));
    let mut tilt = sp(30000, 0.0);
    tilt.roll_deg = 10.0;
    for k in 1..=500u64 {
        fw.receive(k * TICK_NS, &tilt);
        fw.step(k * TICK_NS, &level_with([0.0; 3]));
    }
    // 250 attitude updates: P 3.5 · 10, I 2 · (250 · 10 · 0.002).
    let want = 3.5 * 10.0 + 2.0 * (250.0 * 10.0 * 0.002);
    let got = fw.rate_setpoint_deg_s()[0];
    assert!(
        (got - want).abs() < 1e-6,
        "roll-rate demand {got}, want {want}"
    );
}

/// controller_pid.c @2a18fc29 no longer resets the angle PID every tick in rate mode; it
/// reinitialises every PID when the modes change (`setpointModeChanged`, line 81). Going back
/// from rate to angle mode therefore drops the rate integrator wound up in rate mode.
#[test]
fn switching_rate_to_angle_mode_resets_the_rate_integrators() {
    let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
    let imu = level_with([0.0; 3]);
    fw.receive(0, &sp(0, 0.0));
    fw.step(0, &imu);
    fw.set_param("flightmode.stabModeRoll", 0.0)
        .expect("rate mode");
    let mut spin = sp(30000, 0.0);
    spin.roll_deg = 20.0; // 20 deg/s in rate mode; the gyro says 0: the integrator winds up
    let mut t = 0;
    for k in 1..=500u64 {
        t = k * TICK_NS;
        fw.receive(t, &spin);
        fw.step(t, &imu);
    }
    fw.set_param("flightmode.stabModeRoll", 1.0)
        .expect("angle mode");
    t += TICK_NS;
    fw.receive(t, &sp(30000, 0.0));
    let m = fw.step(t, &imu);
    // Level and at rest after the reset: no roll command at all (the wound-up 500 · 33.3
    // = 16650 counts would show as an 8325 share).
    let roll_share = (f64::from(m[2]) + f64::from(m[3]) - f64::from(m[0]) - f64::from(m[1])) / 4.0;
    assert!(roll_share.abs() <= 1.0, "roll share {roll_share} ({m:?})");
}
