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
