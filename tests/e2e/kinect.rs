//! Flying from the synthetic Kinect v2: accuracy, seeds, blackouts and loss of the camera.

use crate::scene_path;
use depthpilot_control::Estimator;
use depthpilot_sim::NoLog;
use depthpilot_sim::kinect::KinectSensor;
use depthpilot_types::scene::{KinectConfig, WorldConfig};
use depthpilot_types::{Rot, Scene, Vec3};

fn fly(name: &str, seed: u64) -> depthpilot_sim::Summary {
    let mut scene = Scene::load(&scene_path(name)).expect("bundled scene loads");
    scene.seed = seed;
    depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs")
}

#[test]
fn hover_kinect_holds_within_25_mm_rms_over_20_seeds() {
    let rms: Vec<f64> = (0..20)
        .map(|seed| {
            let s = fly("hover_kinect.ron", seed);
            assert!(!s.crashed, "seed {seed}: {:?}", s.crash);
            s.rms_error_m
        })
        .collect();
    let mean = rms.iter().sum::<f64>() / rms.len() as f64;
    let worst = rms.iter().cloned().fold(0.0, f64::max);
    println!(
        "hover_kinect over 20 seeds: mean rms {:.2} mm, worst {:.2} mm",
        mean * 1e3,
        worst * 1e3
    );
    assert!(worst <= 0.025, "worst rms {worst}");
}

/// A quad held still `height_m` above the floor camera: how well vision + tracking filter
/// estimate where it is, and how often it is detected.
fn static_accuracy(height_m: f64) -> (f64, f64) {
    let mut k = KinectSensor::new(&KinectConfig::default(), &WorldConfig::default(), 0.046, 7)
        .expect("camera");
    let mut est = Estimator::new(1.0, 0.002);
    let truth = Vec3::new(0.03, -0.02, height_m);
    let rot = Rot::from_rpy(0.0, 0.0, 0.4);
    let period = 33_250_000u64;
    let (mut frames, mut sum_sq, mut n) = (0u64, 0.0, 0u64);
    let mut bias = Vec3::ZERO;
    for f in 0..309u64 {
        let t = f * period;
        // Out of view while the background is learnt, then still.
        let pos = if f < 9 {
            Vec3::new(0.0, 8.0, 0.5)
        } else {
            truth
        };
        let before = k.stats.detections;
        k.capture(t, pos, &rot);
        if f >= 9 {
            frames += 1;
        }
        while let Some(m) = k.deliver(u64::MAX) {
            est.input(m.stamp_ns, Vec3::ZERO);
            est.measure(&m);
        }
        if f >= 39 && k.stats.detections > before {
            let e = est.estimate(t).expect("tracking");
            sum_sq += (e.pos_in_world_m - truth).norm().powi(2);
            bias += e.pos_in_world_m - truth;
            n += 1;
        }
    }
    let rate = (k.stats.detections as f64) / frames as f64;
    println!(
        "  bias at {height_m} m: {:?}",
        bias * (1.0 / n.max(1) as f64)
    );
    ((sum_sq / n.max(1) as f64).sqrt(), rate)
}

#[test]
fn static_estimate_is_within_6_mm_at_2_m_with_99_percent_detections() {
    for h in [1.0, 2.0, 4.0] {
        let (rms, rate) = static_accuracy(h);
        println!(
            "static quad at {h} m: estimate rms {:.2} mm, detection rate {:.1} %",
            rms * 1e3,
            rate * 100.0
        );
        assert!(rate >= 0.99, "{h} m: detection rate {rate}");
        if h == 2.0 {
            assert!(rms <= 0.006, "2 m: estimate rms {rms}");
        } else {
            assert!(rms <= 0.015, "{h} m: estimate rms {rms}");
        }
    }
}

#[test]
fn blackout_holds_within_half_a_metre_and_reacquires() {
    let mut scene = Scene::load(&scene_path("blackout.ron")).expect("loads");
    scene.settle_s = 5.0;
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(&scene, &mut rows).expect("flight runs");
    assert!(!s.crashed, "{:?}", s.crash);
    assert!(s.max_error_m <= 0.5, "max error {}", s.max_error_m);
    let state = |t: f64| rows.iter().find(|r| r.t_s >= t).map(|r| r.safety);
    assert_eq!(state(6.0), Some("tracking"));
    assert_eq!(state(6.8), Some("holding"));
    assert_eq!(
        state(8.0),
        Some("tracking"),
        "re-acquired after the blackout"
    );
    assert_eq!(s.final_safety_state, "tracking");
}

#[test]
fn lost_camera_lands_without_crashing() {
    let s = fly("lost.ron", 1);
    assert!(!s.crashed, "{:?}", s.crash);
    assert_eq!(s.final_safety_state, "cut");
    assert!(s.final_position_m[2] < 0.05, "{:?}", s.final_position_m);
}

#[test]
fn kinect_flights_are_deterministic() {
    let a = serde_json::to_string(&fly("figure8_kinect.ron", 3)).expect("json");
    let b = serde_json::to_string(&fly("figure8_kinect.ron", 3)).expect("json");
    assert_eq!(a, b);
}

#[test]
fn depth_only_still_flies_with_the_firmware_holding_yaw() {
    let mut scene = Scene::load(&scene_path("hover_kinect.ron")).expect("loads");
    if let depthpilot_types::scene::Sensing::Kinect(k) = &mut scene.sensing {
        k.ir_markers = false;
    }
    let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
    assert!(!s.crashed, "{:?}", s.crash);
    let v = s.vision.expect("kinect stats");
    assert_eq!(v.with_yaw, 0, "no IR, no yaw");
    assert!(s.rms_error_m <= 0.025, "rms {}", s.rms_error_m);
    println!("depth only: rms {:.2} mm", s.rms_error_m * 1e3);
}

#[test]
fn a_dropped_frame_rate_collapse_is_survived() {
    let mut scene = Scene::load(&scene_path("hover_kinect.ron")).expect("loads");
    if let depthpilot_types::scene::Sensing::Kinect(k) = &mut scene.sensing {
        k.drop_probability = 0.5;
        k.latency_jitter_s = 0.02;
    }
    let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
    assert!(!s.crashed, "{:?}", s.crash);
    assert!(s.rms_error_m <= 0.025, "rms {}", s.rms_error_m);
    let v = s.vision.expect("kinect stats");
    assert!(v.frames_dropped > 100, "{v:?}");
}

/// The Kinect items of the realism layer, all on.
fn every_kinect_item(scene: &mut Scene) {
    for item in depthpilot_types::scene::KINECT_REALISM_ITEMS {
        scene.realism.set_item(item, true).expect("item");
    }
}

#[test]
fn hover_kinect_is_tracked_with_every_kinect_error_on() {
    let mut scene = Scene::load(&scene_path("hover_kinect.ron")).expect("loads");
    every_kinect_item(&mut scene);
    let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
    assert!(!s.crashed, "{:?}", s.crash);
    let v = s.vision.as_ref().expect("kinect stats");
    println!(
        "hover_kinect, every Kinect item on: rms {:.2} mm, max {:.2} mm, {} detections",
        s.rms_error_m * 1e3,
        s.max_error_m * 1e3,
        v.detections
    );
    assert!(v.detections > 300, "{v:?}");
    assert_eq!(s.final_safety_state, "tracking");
    // The spinning propellers hide most of their discs, which the vision's surface-to-centre
    // offset assumes it sees: a centimetre-scale height bias, not a loss of track.
    assert!(s.rms_error_m <= 0.05, "rms {}", s.rms_error_m);
}

#[test]
fn kinect_errors_are_deterministic_per_seed_and_off_changes_nothing() {
    let mut on = Scene::load(&scene_path("hover_kinect.ron")).expect("loads");
    every_kinect_item(&mut on);
    let a =
        serde_json::to_string(&depthpilot_sim::fly(&on, &mut NoLog).expect("runs")).expect("json");
    let b =
        serde_json::to_string(&depthpilot_sim::fly(&on, &mut NoLog).expect("runs")).expect("json");
    assert_eq!(a, b, "same seed, same flight");
    on.seed += 1;
    let c =
        serde_json::to_string(&depthpilot_sim::fly(&on, &mut NoLog).expect("runs")).expect("json");
    assert_ne!(a, c, "another seed, another camera unit");
    // Every item off (explicitly Ideal) flies the flight of a scene without `realism`.
    let plain = Scene::load(&scene_path("hover_kinect.ron")).expect("loads");
    let mut ideal = plain.clone();
    ideal.realism = depthpilot_types::scene::Realism::default();
    let p = serde_json::to_string(&depthpilot_sim::fly(&plain, &mut NoLog).expect("runs"))
        .expect("json");
    let i = serde_json::to_string(&depthpilot_sim::fly(&ideal, &mut NoLog).expect("runs"))
        .expect("json");
    assert_eq!(p, i);
}

#[test]
fn a_cold_camera_reads_the_hover_lower_than_a_warm_one() {
    // The warm-up drift reads depth long; the camera looks up, so the quad seems higher and the
    // controller holds it lower, by about the drift (5 mm at switch-on, < 0.3 mm after 30 min).
    let fly_on = |on_s: f64| {
        let mut scene = Scene::load(&scene_path("hover_kinect.ron")).expect("loads");
        scene.realism.set_item("kinect_warmup", true).expect("item");
        scene.realism.kinect_on_s = on_s;
        let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
        assert!(!s.crashed, "{:?}", s.crash);
        s.final_position_m[2]
    };
    let (cold, warm) = (fly_on(0.0), fly_on(1800.0));
    let shift_mm = (warm - cold) * 1e3;
    println!("cold camera holds the hover {shift_mm:.2} mm lower");
    assert!((3.0..7.0).contains(&shift_mm), "{shift_mm} mm");
}

/// The blind take-off survives the published CF2.x mass range (25–34 g) on the cascade's 27 g
/// model: a quad the upward camera has not seen by the time a 27 g one would have been is
/// lower than predicted, and the cascade keeps it climbing (with a growing mass correction)
/// until the camera catches it. Before, 32.4 g and 34 g quads fell back to the floor blind
/// ("CRASHED at 1.41 s (1.22 m/s)" and "at 1.16 s" on figure8_kinect).
#[test]
fn the_blind_take_off_reaches_the_camera_across_the_published_masses() {
    for name in ["hover_kinect.ron", "figure8_kinect.ron"] {
        for mass_kg in [0.0251, 0.0324, 0.034] {
            let mut scene = Scene::load(&scene_path(name)).expect("loads");
            scene.quad.mass_kg = mass_kg;
            let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
            println!(
                "{name} at {:.1} g: rms {:.2} mm, crashed {}",
                mass_kg * 1e3,
                s.rms_error_m * 1e3,
                s.crashed
            );
            assert!(!s.crashed, "{name}, {mass_kg} kg: {:?}", s.crash);
            assert_eq!(s.final_safety_state, "tracking", "{name}, {mass_kg} kg");
            // Tracked after the settle time, the mass error integrated out (the default
            // integrator limit, 3 m/s², holds +30 %; at 2 m/s² a 34 g quad hung 5 cm low).
            assert!(
                s.rms_error_m < 0.03,
                "{name}, {mass_kg} kg: rms {}",
                s.rms_error_m
            );
        }
    }
}
