//! Issue 11, the firmware model: situation awareness flown as scenes (acceptance line 2) and the
//! rate-mode scene (line 1). Each scene is flown twice: by the runner (what `depthpilot fly`
//! does: no crash, the log's firmware state) and by a replay of its packet script straight into
//! the plant, which lets the test watch the firmware's detectors tick by tick. The figures are
//! printed (`cargo test --test e2e firmware_modes -- --nocapture`).

use crate::scene_path;
use depthpilot_crtp::RpytSetpoint;
use depthpilot_firmware::Lockout;
use depthpilot_sim::plant::period_ns;
use depthpilot_sim::{FwSetpoint, LogRow, NoProbe, Plant, Summary};
use depthpilot_types::Scene;
use depthpilot_types::scene::ScriptPacket;

fn load(name: &str) -> Scene {
    Scene::load(&scene_path(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// The runner's flight with its log.
fn fly(scene: &Scene) -> (Summary, Vec<LogRow>) {
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(scene, &mut rows).expect("flight runs");
    (s, rows)
}

/// Replays the scene's script into a plant at the link rate (cflib's conventions: the pitch
/// negated on the wire), calling `each` after every physics step with the time in seconds.
fn replay(scene: &Scene, mut each: impl FnMut(f64, &Plant)) -> Plant {
    let mut plant = Plant::new(scene);
    let link_ns = period_ns(scene.link.rate_hz);
    let end_ns = (scene.duration_s * 1e9).round() as u64;
    while plant.now_ns() < end_ns {
        let now = plant.now_ns();
        let t_s = now as f64 * 1e-9;
        if now.is_multiple_of(link_ns)
            && let Some(e) = scene.script.iter().rev().find(|e| e.t_s <= t_s + 1e-12)
        {
            let fw = plant.firmware_mut();
            match &e.send {
                ScriptPacket::Rpyt {
                    roll_deg,
                    pitch_deg,
                    yaw_rate_deg_s,
                    thrust,
                } => fw.receive(
                    now,
                    &RpytSetpoint {
                        roll_deg: *roll_deg as f32,
                        pitch_deg: -*pitch_deg as f32,
                        yaw_rate_deg_s: *yaw_rate_deg_s as f32,
                        thrust: *thrust,
                    },
                ),
                ScriptPacket::Position {
                    position_m,
                    yaw_deg,
                } => fw.receive_setpoint(
                    now,
                    &FwSetpoint::Position {
                        x_m: position_m.x,
                        y_m: position_m.y,
                        z_m: position_m.z,
                        yaw_deg: *yaw_deg,
                    },
                ),
                ScriptPacket::Stop => fw.receive_setpoint(now, &FwSetpoint::Stop),
                ScriptPacket::Silence => {}
            }
        }
        plant.step(&mut NoProbe);
        each(plant.now_ns() as f64 * 1e-9, &plant);
    }
    plant
}

/// The first time `cond` held.
fn first(times: &[(f64, bool)]) -> Option<f64> {
    times.iter().find(|(_, c)| *c).map(|(t, _)| *t)
}

#[test]
fn a_dropped_quad_is_seen_falling_within_100_ms_and_alt_hold_catches_it() {
    let scene = load("freefall.ron");
    let mut ff = Vec::new();
    let mut alt = Vec::new();
    let mut lowest_vz = 0.0f64;
    let mut caught_at_m = f64::INFINITY;
    let mut touchdown_vz = None;
    replay(&scene, |t, p| {
        let s = p.firmware().situation();
        ff.push((t, s.free_fall));
        alt.push((t, s.alt_hold));
        let truth = p.truth();
        lowest_vz = lowest_vz.min(truth.vel_m_s.z);
        if t < 1.0 && truth.vel_m_s.z.abs() < 0.05 && t > 0.1 {
            caught_at_m = caught_at_m.min(truth.pos_m.z);
        }
        if touchdown_vz.is_none() && truth.pos_m.z < 0.02 {
            touchdown_vz = Some(truth.vel_m_s.z);
        }
    });
    let detected = first(&ff).expect("free fall detected");
    let alt_on = first(&alt).expect("alt-hold switched on");
    let touchdown_vz = touchdown_vz.expect("landed");
    println!(
        "freefall.ron: free fall detected at {:.0} ms, alt-hold on at {:.0} ms, fastest fall \
         {:.2} m/s, caught at {caught_at_m:.3} m, touchdown at {touchdown_vz:.2} m/s",
        detected * 1e3,
        alt_on * 1e3,
        -lowest_vz
    );
    assert!(detected <= 0.100, "{detected} s");
    assert!(
        alt_on <= detected + 0.011,
        "alt-hold follows within one 100 Hz update"
    );
    assert!(-lowest_vz < 1.0, "fall arrested: {lowest_vz:.2} m/s");
    assert!(touchdown_vz.abs() < 1.0, "{touchdown_vz:.2} m/s");

    let (s, _) = fly(&scene);
    assert!(!s.crashed, "{:?}", s.crash);

    // Without the detector the same drop is a crash.
    let mut off = scene.clone();
    off.firmware_params.clear();
    let (s, _) = fly(&off);
    let crash = s.crash.expect("falls and crashes without sitAw");
    println!(
        "freefall.ron with sitAw.FFActive 0: crash at {:.2} m/s",
        crash.speed_m_s
    );
}

#[test]
fn a_quad_on_its_back_is_tumbled_and_its_motors_stay_cut() {
    let scene = load("tumbled.ron");
    let mut tu = Vec::new();
    let mut locked = Vec::new();
    let mut max_motor = 0u16;
    replay(&scene, |t, p| {
        tu.push((t, p.firmware().situation().tumbled));
        locked.push((t, p.firmware().lockout() == Some(Lockout::Tumbled)));
        max_motor = max_motor.max(p.motor_cmd().into_iter().max().unwrap_or(0));
    });
    let sitaw_at = first(&tu).expect("sitAw tumbled");
    let supervisor_at = first(&locked).expect("supervisor tumbled");
    println!(
        "tumbled.ron: sitAw tumbled at {:.0} ms, supervisor lock at {:.0} ms, highest motor \
         command {max_motor} (thrust 40000 commanded from 500 ms)",
        sitaw_at * 1e3,
        supervisor_at * 1e3
    );
    assert!(sitaw_at <= 0.1 && supervisor_at <= 0.15);
    assert_eq!(max_motor, 0);
    let (s, rows) = fly(&scene);
    // The runner calls a flight that ends upside down a crash; this one started that way, and
    // nothing hit anything.
    assert!(
        s.crash.is_none_or(|c| !c.with_floor && c.speed_m_s < 0.01),
        "{:?}",
        s.crash
    );
    let last = rows.last().expect("rows");
    assert_eq!(last.firmware, "tumbled");
    assert_eq!(last.motors_pwm, [0; 4]);

    // Each layer alone cuts the motors; with both off they run.
    for (tmbl, tu_active, runs) in [(0.0, 1.0, false), (1.0, 0.0, false), (0.0, 0.0, true)] {
        let mut v = scene.clone();
        v.firmware_params = vec![
            ("supervisor.tmblChckEn".into(), tmbl),
            ("sitAw.TuActive".into(), tu_active),
        ];
        let mut max_motor = 0u16;
        replay(&v, |_, p| {
            max_motor = max_motor.max(p.motor_cmd().into_iter().max().unwrap_or(0));
        });
        println!("tmblChckEn {tmbl}, TuActive {tu_active}: highest motor command {max_motor}");
        assert_eq!(max_motor > 0, runs);
    }
}

#[test]
fn a_quad_on_the_floor_reports_at_rest_after_two_seconds() {
    let scene = load("at_rest.ron");
    let mut ar = Vec::new();
    replay(&scene, |t, p| {
        ar.push((t, p.firmware().situation().at_rest))
    });
    let at = first(&ar).expect("at rest");
    println!("at_rest.ron: at rest reported at {at:.3} s (500 tests at 250 Hz)");
    assert!((at - 2.0).abs() < 0.01, "{at}");
    assert!(
        ar.iter().filter(|(t, _)| *t > at).all(|(_, r)| *r),
        "stays at rest"
    );
    let (s, _) = fly(&scene);
    assert!(!s.crashed);
}

#[test]
fn auto_takeoff_lifts_to_its_configured_height() {
    let scene = load("autotakeoff.ron");
    let mut started = None;
    let mut target = 0.0f64;
    let (mut sum, mut n, mut lo, mut hi) = (0.0, 0, f64::INFINITY, f64::NEG_INFINITY);
    replay(&scene, |t, p| {
        let s = p.firmware().situation();
        if s.auto_takeoff && started.is_none() {
            started = Some(t);
        }
        if t > 3.0 {
            target = target.max(s.alt_hold_target_m);
        }
        if t >= 8.0 {
            let z = p.truth().pos_m.z;
            sum += z;
            n += 1;
            lo = lo.min(z);
            hi = hi.max(z);
        }
    });
    let started = started.expect("auto take-off started");
    let mean = sum / f64::from(n);
    // autoTO.TargetAdjust 1.5 m × autoTO.Thresh 0.97 above the height at the button press.
    let expected = 0.015 + 1.5 * (1.0 - 0.98f64.powi(174));
    println!(
        "autotakeoff.ron: started at {started:.2} s, target {target:.3} m (expected \
         {expected:.3}), height over 8–20 s: mean {mean:.3} m, {lo:.2}..{hi:.2} m"
    );
    assert!((started - 3.0).abs() < 0.02);
    assert!((target - expected).abs() < 0.01, "{target}");
    assert!((mean - target).abs() < 0.1, "mean height {mean:.3} m");
    assert!(lo > target - 0.4 && hi < target + 0.4, "{lo:.2}..{hi:.2}");
    let (s, _) = fly(&scene);
    assert!(!s.crashed);
}

#[test]
fn the_rate_mode_scene_rolls_at_90_deg_per_s() {
    let scene = load("rate_mode.ron");
    let (mut up, mut down) = ((0.0, 0), (0.0, 0));
    let mut roll_at_3_5 = 0.0;
    replay(&scene, |t, p| {
        let rate = p.truth().body_rates_rad_s.x.to_degrees();
        if (3.3..3.5).contains(&t) {
            up.0 += rate;
            up.1 += 1;
        }
        if (3.6..3.8).contains(&t) {
            down.0 += rate;
            down.1 += 1;
        }
        if (t - 3.5).abs() < 5e-4 {
            roll_at_3_5 = p.truth().world_from_body.rpy()[0].to_degrees();
        }
    });
    let up = up.0 / f64::from(up.1);
    let down = down.0 / f64::from(down.1);
    println!(
        "rate_mode.ron: roll rate {up:.2} deg/s for +90, {down:.2} deg/s for −90, \
         roll {roll_at_3_5:.1} deg after 0.3 s"
    );
    assert!((up - 90.0).abs() <= 5.0 && (down + 90.0).abs() <= 5.0);
    let (s, _) = fly(&scene);
    assert!(!s.crashed, "{:?}", s.crash);
}

/// A parameter bound to a teacher's button reaches the firmware: in `takeover.ron` the teacher's
/// key at 2 s switches the roll axis to rate mode while the autopilot still flies (it sends roll
/// *angles*), and the flight changes: the autopilot's small roll angles become roll rates.
#[test]
fn a_teacher_key_sets_a_firmware_parameter() {
    let base = load("takeover.ron");
    let mut switched = base.clone();
    let script = &mut switched.teacher.as_mut().expect("teacher").script;
    let mut key = script[0].clone();
    key.t_s = 2.0;
    key.params = vec![("flightmode.stabModeRoll".to_string(), 0.0)];
    script.insert(1, key);
    let (a, base_rows) = fly(&base);
    let (b, rows) = fly(&switched);
    let max_roll = |rows: &[LogRow], from: f64| {
        rows.iter()
            .filter(|r| r.t_s >= from && r.t_s < 5.0)
            .map(|r| r.rpy_rad[0].abs().to_degrees())
            .fold(0.0, f64::max)
    };
    let before = max_roll(&base_rows, 2.5);
    let after = max_roll(&rows, 2.5);
    eprintln!(
        "teacher key sets flightmode.stabModeRoll = 0 at 2 s: max |roll| 2.5–5 s {before:.2}° -> {after:.2}°; \
         max error {:.3} -> {:.3} m",
        a.max_error_m, b.max_error_m
    );
    assert!(after > 2.0 * before.max(0.5), "{before} -> {after}");
}
