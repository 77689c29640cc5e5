//! Every bundled scene flies; the foundation's figures hold.

use crate::{all_scenes, scene_path};
use depthpilot_sim::{NoLog, Summary};
use depthpilot_types::Scene;
use depthpilot_types::scene::ControllerKind;

fn fly(name: &str, kind: ControllerKind) -> Summary {
    let mut scene = Scene::load(&scene_path(name)).expect("bundled scene loads");
    scene.controller.kind = kind;
    depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs")
}

#[test]
fn every_bundled_scene_loads_and_flies_without_crashing() {
    let scenes = all_scenes();
    assert!(scenes.len() >= 4, "{scenes:?}");
    for path in scenes {
        let scene = Scene::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
        assert!(!s.crashed, "{}: crashed: {:?}", path.display(), s.crash);
        assert!(s.detections > 0, "{}: no measurements", path.display());
        assert!((s.sim_seconds - scene.duration_s).abs() < 1e-6);
        assert_eq!(s.radio_decode_errors, 0);
    }
}

#[test]
fn hover_takes_off_and_holds_one_metre_within_10_mm_rms() {
    let s = fly("hover.ron", ControllerKind::Cascade);
    assert!(!s.crashed);
    assert!(s.rms_error_m <= 0.010, "rms {:.4} m", s.rms_error_m);
    let [_, _, z] = s.final_position_m;
    assert!((z - 1.0).abs() < 0.02, "final height {z}");
    assert_eq!(s.final_safety_state, "tracking");
}

#[test]
fn step_settles_within_2_s_with_less_than_10_percent_overshoot() {
    let s = fly("step.ron", ControllerKind::Cascade);
    let step = s.steps.first().expect("step.ron has a step");
    assert!((step.size_m - 0.5).abs() < 1e-9);
    let settle = step.settling_time_s.expect("settles");
    assert!(settle <= 2.0, "settling time {settle:.2} s");
    assert!(
        step.overshoot_pct <= 10.0,
        "overshoot {:.1} %",
        step.overshoot_pct
    );
}

#[test]
fn default_cascade_beats_bitcraze2015_on_every_foundation_scene() {
    for name in ["hover.ron", "step.ron", "figure8.ron", "gusts.ron"] {
        let ours = fly(name, ControllerKind::Cascade);
        let theirs = fly(name, ControllerKind::Bitcraze2015);
        assert!(
            ours.rms_error_m < theirs.rms_error_m,
            "{name}: cascade {:.4} m vs bitcraze2015 {:.4} m",
            ours.rms_error_m,
            theirs.rms_error_m
        );
    }
}

#[test]
fn lost_link_levels_then_cuts_and_the_quad_comes_down() {
    let mut scene = Scene::load(&scene_path("hover.ron")).expect("loads");
    scene.link.cut_at_s = Some(5.0);
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(&scene, &mut rows).expect("flight runs");
    let at = |t: f64| {
        rows.iter()
            .find(|r| r.t_s >= t - 1e-9)
            .unwrap_or_else(|| panic!("no row at {t}"))
    };
    assert_eq!(at(5.4).firmware, "fresh");
    assert_eq!(at(5.6).firmware, "levelling");
    assert_eq!(at(7.1).firmware, "locked"); // "Locked, reboot required" (supervisor.c)
    assert_eq!(at(7.1).motors_pwm, [0; 4]);
    assert!(
        s.final_position_m[2] < 0.1,
        "fell after the cut: {:?}",
        s.final_position_m
    );
}

#[test]
fn lost_sensor_makes_the_controller_hold_land_and_cut() {
    let mut scene = Scene::load(&scene_path("hover.ron")).expect("loads");
    scene.duration_s = 15.0;
    // The controller stops seeing measurements at 5 s.
    let mut rows = Vec::new();
    let controller = depthpilot_control::from_config(&scene.controller);
    struct Blind(Box<dyn depthpilot_control::Controller + Send>);
    impl depthpilot_control::Controller for Blind {
        fn name(&self) -> &'static str {
            "blind-after-5s"
        }
        fn measure(&mut self, now_ns: u64, m: &depthpilot_types::Measurement) {
            if now_ns < 5_000_000_000 {
                self.0.measure(now_ns, m);
            }
        }
        fn command(
            &mut self,
            now_ns: u64,
            sp: &depthpilot_types::Setpoint,
        ) -> depthpilot_types::AttitudeCommand {
            self.0.command(now_ns, sp)
        }
        fn estimate(&self, now_ns: u64) -> Option<depthpilot_control::Estimate> {
            self.0.estimate(now_ns)
        }
        fn safety(&self) -> depthpilot_control::SafetyState {
            self.0.safety()
        }
    }
    let s = depthpilot_sim::run(
        &scene,
        Box::new(Blind(controller)),
        &mut rows,
        &mut depthpilot_sim::NoProbe,
    )
    .expect("flight runs");
    let state_at = |t: f64| rows.iter().find(|r| r.t_s >= t).map(|r| r.safety);
    assert_eq!(state_at(5.1), Some("tracking"));
    assert_eq!(state_at(5.5), Some("holding"));
    assert_eq!(state_at(6.5), Some("landing"));
    assert_eq!(s.final_safety_state, "cut");
    assert!(!s.crashed, "landed, not crashed: {:?}", s.crash);
    assert!(
        s.final_position_m[2] < 0.05,
        "on the floor: {:?}",
        s.final_position_m
    );
    assert!(s.touchdowns >= 1);
}

#[test]
fn quads_heavier_or_lighter_than_the_controller_model_still_settle() {
    // The controller assumes 27 g; the estimator's bias state and the integrator must absorb
    // the difference (before the bias state, a 32 g quad sagged 18 cm and never settled).
    for mass_kg in [0.024, 0.032] {
        let mut scene = Scene::load(&scene_path("step.ron")).expect("loads");
        scene.quad.mass_kg = mass_kg;
        let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
        let step = &s.steps[0];
        let settle = step.settling_time_s.unwrap_or(f64::INFINITY);
        assert!(settle <= 2.5, "{mass_kg} kg: settling {settle:.2} s");
        assert!(
            step.overshoot_pct <= 10.0,
            "{mass_kg} kg: overshoot {:.1} %",
            step.overshoot_pct
        );
    }
}

#[test]
fn flying_into_a_box_is_a_crash_and_a_gentle_landing_is_not() {
    let text = r#"Scene(
        name: "wall",
        duration_s: 8.0,
        settle_s: 1.0,
        world: (boxes: [(center_m: (1.0, 0.0, 1.0), half_extents_m: (0.1, 1.0, 1.0))]),
        setpoints: Steps([
            (t_s: 0.0, position_m: (0.0, 0.0, 1.0)),
            (t_s: 4.0, position_m: (2.0, 0.0, 1.0)),
        ]),
    )"#;
    let scene = depthpilot_types::scene::parse(text).expect("parses");
    let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
    let crash = s.crash.expect("hit the wall");
    assert!(!crash.with_floor);
    assert!(crash.speed_m_s > 1.0, "{crash:?}");
    assert!(crash.t_s > 4.0 && crash.t_s < 6.0, "{crash:?}");

    let text = r#"Scene(
        name: "land",
        duration_s: 12.0,
        settle_s: 1.0,
        setpoints: Waypoints([
            (t_s: 0.0, position_m: (0.0, 0.0, 1.0)),
            (t_s: 4.0, position_m: (0.0, 0.0, 1.0)),
            (t_s: 8.0, position_m: (0.0, 0.0, -0.1)),
        ]),
    )"#;
    let scene = depthpilot_types::scene::parse(text).expect("parses");
    let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
    assert!(!s.crashed, "{:?}", s.crash);
    assert!(s.touchdowns >= 1);
    assert!(s.final_position_m[2] < 0.03, "{:?}", s.final_position_m);
}

#[test]
fn a_drop_from_two_metres_is_a_crash() {
    let text = r#"Scene(
        name: "drop",
        duration_s: 2.0,
        settle_s: 0.0,
        quad: (initial_position_m: (0.0, 0.0, 2.0)),
        link: (cut_at_s: Some(0.0)),
        setpoints: Hover(position_m: (0.0, 0.0, 2.0)),
    )"#;
    let scene = depthpilot_types::scene::parse(text).expect("parses");
    let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
    let crash = s.crash.expect("crashed");
    assert!(crash.with_floor);
    assert!(
        (crash.speed_m_s - (2.0f64 * 9.81 * 1.985).sqrt()).abs() < 0.2,
        "{crash:?}"
    );
}
