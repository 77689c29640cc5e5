//! Closed-loop property test of the default controller.

use crate::{root, scene_path};
use depthpilot_sim::NoLog;
use depthpilot_types::Scene;
use depthpilot_types::Vec3;
use depthpilot_types::scene::{GustConfig, Sensing};
use proptest::prelude::*;

/// The hover scene with one case's conditions.
fn case_scene(
    start_xy: (f64, f64),
    gust_peak_m_s: f64,
    latency_s: f64,
    noise_m: f64,
    mass_kg: f64,
    seed: u64,
) -> Scene {
    let mut s = Scene::load(&scene_path("hover.ron")).expect("hover.ron loads");
    s.name = "counterexample".to_string();
    s.seed = seed;
    s.duration_s = 9.0;
    s.settle_s = 6.0;
    s.quad.initial_position_m = Vec3::new(start_xy.0, start_xy.1, 0.015);
    s.quad.mass_kg = mass_kg;
    let Sensing::Oracle(o) = &mut s.sensing else {
        panic!("hover.ron uses the oracle")
    };
    o.latency_s = latency_s;
    o.noise_m = noise_m;
    s.disturbances.gusts = (gust_peak_m_s > 0.0).then_some(GustConfig {
        mean_interval_s: 2.0,
        duration_s: 1.0,
        peak_m_s: gust_peak_m_s,
        start_s: 0.0,
    });
    s
}

/// Writes the failing case as a scene when `DEPTHPILOT_SAVE_COUNTEREXAMPLE=1` (proptest shrinks,
/// so the last one written is the minimal case): `scenes/counterexample.ron`.
fn save_if_asked(scene: &Scene) {
    if std::env::var("DEPTHPILOT_SAVE_COUNTEREXAMPLE").is_ok_and(|v| v == "1") {
        let text = ron::ser::to_string_pretty(scene, ron::ser::PrettyConfig::default())
            .expect("scene serialises");
        let path = root().join("scenes/counterexample.ron");
        std::fs::write(
            &path,
            format!("// Written by the closed-loop property test.\n{text}\n"),
        )
        .expect("write the counterexample");
        eprintln!("counterexample written to {}", path.display());
    }
}

proptest! {
    // CI runs a fixed seed (a landing does not depend on luck); other runs explore new cases.
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: if std::env::var_os("CI").is_some() {
            proptest::test_runner::RngSeed::Fixed(0x5EED_D00D)
        } else {
            proptest::test_runner::RngSeed::Random
        },
        ..ProptestConfig::default()
    })]

    /// Envelope: take-off from anywhere within ±0.5 m (x, y) of the point below the 1 m hover
    /// setpoint; random gusts of up to 3 m/s every ~2 s; oracle latency 20–60 ms and noise
    /// 0.5–4 mm; mass 24–31 g (the controller assumes 27 g). Property: never a crash, and from
    /// 6 s on (converged) the position stays within 0.15 m of the setpoint. (Known outside: 75 ms
    /// with 4.5 mm noise on a 24 g quad leaves a 0.13 m height offset — see the README.)
    #[test]
    fn hover_converges_and_never_crashes_within_the_envelope(
        x in -0.5f64..0.5,
        y in -0.5f64..0.5,
        gust in 0.0f64..3.0,
        latency in 0.02f64..0.06,
        noise in 0.0005f64..0.004,
        mass in 0.024f64..0.031,
        seed in 0u64..1000,
    ) {
        let scene = case_scene((x, y), gust, latency, noise, mass, seed);
        let s = depthpilot_sim::fly(&scene, &mut NoLog).expect("flight runs");
        let ok = !s.crashed && s.max_error_m <= 0.15;
        if !ok {
            save_if_asked(&scene);
        }
        prop_assert!(!s.crashed, "crashed: {:?}", s.crash);
        prop_assert!(s.max_error_m <= 0.15, "not converged: max error {:.3} m after 6 s", s.max_error_m);
    }
}

#[test]
fn a_saved_counterexample_is_a_loadable_scene() {
    let scene = case_scene((0.3, -0.2), 2.0, 0.05, 0.002, 0.028, 7);
    let text =
        ron::ser::to_string_pretty(&scene, ron::ser::PrettyConfig::default()).expect("serialises");
    let back = depthpilot_types::scene::parse(&text).expect("the written scene loads");
    assert_eq!(back, scene);
}
