use super::*;

const MINIMAL: &str = r#"Scene(
    name: "t",
    duration_s: 5.0,
    setpoints: Hover(position_m: (0.0, 0.0, 1.0)),
)"#;

fn parse_err(text: &str) -> SceneError {
    match parse(text) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn minimal_scene_gets_defaults() {
    let s = parse(MINIMAL).expect("minimal scene parses");
    assert_eq!(s.quad.mass_kg, 0.027);
    assert_eq!(s.rates.physics_hz, 1000.0);
    assert_eq!(s.controller.kind, ControllerKind::Cascade);
    assert_eq!(s.settle_s, 3.0);
}

#[test]
fn syntax_error_names_line() {
    let e = parse_err(
        "Scene(\n name: \"t\",\n duration_s: 5.0\n setpoints: Hover(position_m: (0.0, 0.0, 1.0)),\n)",
    );
    let SceneError::Parse { line, .. } = &e else {
        panic!("wrong kind: {e}")
    };
    assert_eq!(*line, 4, "{e}");
}

#[test]
fn unknown_field_is_named() {
    let e =
        parse_err(&MINIMAL.replace("duration_s: 5.0,", "duration_s: 5.0,\n    durration: 1.0,"));
    let msg = e.to_string();
    assert!(msg.contains("durration"), "{msg}");
    let SceneError::Parse { line, .. } = e else {
        panic!("wrong kind")
    };
    assert_eq!(line, 4);
}

#[test]
fn negative_mass_names_field_and_line() {
    let text = MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0,\n    quad: (\n        mass_kg: -0.027,\n    ),",
    );
    let e = parse_err(&text);
    let msg = e.to_string();
    assert!(msg.contains("quad.mass_kg"), "{msg}");
    assert!(msg.contains("must be > 0"), "{msg}");
    let SceneError::Parse { line, .. } = e else {
        panic!("wrong kind")
    };
    assert_eq!(line, 5, "{msg}");
}

#[test]
fn nan_is_rejected_with_field() {
    let e = parse_err(&MINIMAL.replace("(0.0, 0.0, 1.0)", "(0.0, NaN, 1.0)"));
    let msg = e.to_string();
    assert!(msg.contains("setpoints"), "{msg}");
    assert!(msg.contains("finite"), "{msg}");
}

#[test]
fn cross_field_checks() {
    let e = parse_err(&MINIMAL.replace("duration_s: 5.0,", "duration_s: 5.0, settle_s: 6.0,"));
    assert!(e.to_string().contains("settle_s"), "{e}");
    let e = parse_err(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, rates: (physics_hz: 1000.0, firmware_hz: 300.0),",
    ));
    assert!(e.to_string().contains("integer multiple"), "{e}");
}

#[test]
fn steps_must_increase_in_time() {
    let text = r#"Scene(name: "t", duration_s: 5.0, setpoints: Steps([
        (t_s: 0.0, position_m: (0.0, 0.0, 1.0)),
        (t_s: 0.0, position_m: (0.5, 0.0, 1.0)),
    ]))"#;
    let e = parse_err(text);
    assert!(e.to_string().contains("setpoints[1].t_s"), "{e}");
}

#[test]
fn missing_file_names_it() {
    let e = Scene::load(Path::new("/nonexistent/scene.ron")).expect_err("missing file");
    assert!(e.to_string().contains("/nonexistent/scene.ron"), "{e}");
}

#[test]
fn round_trips_through_ron() {
    let s = parse(MINIMAL).expect("parses");
    let text = ron::ser::to_string_pretty(&s, ron::ser::PrettyConfig::default()).expect("ser");
    let back = parse(&text).expect("re-parses");
    assert_eq!(s, back);
}

#[test]
fn firmware_params_are_checked_by_name_and_type() {
    let ok = MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, firmware_params: [(\"flightmode.stabModeRoll\", 0.0)],",
    );
    let s = parse(&ok).expect("known param");
    assert_eq!(
        s.firmware_params,
        vec![("flightmode.stabModeRoll".to_string(), 0.0)]
    );
    let e = parse_err(&ok.replace("stabModeRoll", "stabModeRol"));
    let msg = e.to_string();
    assert!(msg.contains("firmware_params[0]"), "{msg}");
    assert!(
        msg.contains("unknown firmware parameter `flightmode.stabModeRol`"),
        "{msg}"
    );
    let e = parse_err(&ok.replace("0.0)]", "2.5)]"));
    assert!(e.to_string().contains("firmware_params[0]"), "{e}");
    let e = parse_err(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, param_writes: [(t_s: 1.0, name: \"sitAw.nope\", value: 1.0)],",
    ));
    assert!(e.to_string().contains("param_writes[0].name"), "{e}");
}

#[test]
fn a_variant_is_a_preset_and_fields_override_it() {
    let s = parse(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, quad: (variant: Cf21Brushless, arm_m: 0.06),",
    ))
    .expect("parses");
    let preset = QuadConfig::preset(QuadVariant::Cf21Brushless);
    assert_eq!(s.quad.mass_kg, preset.mass_kg);
    assert_eq!(s.quad.idle_thrust, 7000);
    assert_eq!(s.quad.firmware_gains, FirmwareGains::Cf21Brushless);
    assert_eq!(s.quad.arm_m, 0.06);
    assert_eq!(parse(MINIMAL).expect("parses").quad, QuadConfig::default());
}

#[test]
fn initial_attitude_sets_roll_pitch_and_yaw() {
    let s = parse(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, quad: (initial_attitude_deg: (180.0, 0.0, 30.0)),",
    ))
    .expect("parses");
    assert_eq!(s.quad.initial_attitude_deg, Vec3::new(180.0, 0.0, 30.0));
    assert_eq!(s.quad.initial_yaw_deg, 30.0);
    let s = parse(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, quad: (initial_yaw_deg: 45.0),",
    ))
    .expect("parses");
    assert_eq!(s.quad.initial_attitude_deg, Vec3::new(0.0, 0.0, 45.0));
    let e = parse_err(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, quad: (initial_yaw_deg: 45.0, initial_attitude_deg: (0.0, 0.0, 10.0)),",
    ));
    assert!(e.to_string().contains("give one"), "{e}");
}

#[test]
fn rate_collapses_with_and_without_a_period_round_trip() {
    let s = parse(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, sensing: Kinect((rate_collapses: [
             (start_s: 1.0, duration_s: 0.5, rate_hz: 4.0),
             (start_s: 2.0, duration_s: 0.5, rate_hz: 2.0, every_s: 2.5)])),",
    ))
    .expect("parses");
    let text = ron::ser::to_string_pretty(&s, ron::ser::PrettyConfig::default()).expect("ser");
    assert_eq!(parse(&text).expect("reads back"), s, "{text}");
}

#[test]
fn a_big_quad_scene_with_params_round_trips() {
    let s = parse(&MINIMAL.replace(
        "duration_s: 5.0,",
        "duration_s: 5.0, quad: (variant: Cf21Brushless, initial_attitude_deg: (180.0, 0.0, 0.0)),
         firmware_params: [(\"sitAw.TuActive\", 1.0)],
         param_writes: [(t_s: 1.0, name: \"flightmode.althold\", value: 1.0)],",
    ))
    .expect("parses");
    let text = ron::ser::to_string_pretty(&s, ron::ser::PrettyConfig::default()).expect("ser");
    assert_eq!(parse(&text).expect("re-parses"), s);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text never panics the scene parser: it parses or returns an error.
        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        /// Mutating one character of a valid scene never panics the parser.
        #[test]
        fn mutated_scene_never_panics(pos in 0usize..100, c in any::<char>()) {
            let mut chars: Vec<char> = MINIMAL.chars().collect();
            let i = pos % chars.len();
            chars[i] = c;
            let text: String = chars.into_iter().collect();
            let _ = parse(&text);
        }
    }
}
