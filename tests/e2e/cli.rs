//! The `depthpilot` binary as a user runs it.

use crate::depthpilot;

use crate::{scene_path, temp_dir};
use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn fly_hover_writes_the_summary_of_the_design() {
    let dir = temp_dir("summary");
    let summary = dir.join("s.json");
    let out = depthpilot(&[
        "fly",
        path_str(&scene_path("hover.ron")),
        "--summary",
        path_str(&summary),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no crash"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary written"))
            .expect("summary is JSON");
    for key in [
        "scene",
        "seed",
        "sim_seconds",
        "wall_seconds",
        "realtime_factor",
        "frames",
        "detections",
        "rms_error_m",
        "max_error_m",
        "rms_estimate_error_m",
        "crashed",
        "final_position_m",
    ] {
        assert!(v.get(key).is_some(), "summary lacks `{key}`: {v}");
    }
    assert_eq!(v["crashed"], false);
    assert_eq!(v["scene"], "hover");
    assert!(v["rms_error_m"].as_f64().expect("number") <= 0.010);
    assert_eq!(v["final_position_m"].as_array().map(|a| a.len()), Some(3));
}

#[test]
fn same_seed_gives_byte_identical_summary_and_log_from_the_cli() {
    let dir = temp_dir("determinism");
    let run = |tag: &str, seed: &str| {
        let s = dir.join(format!("{tag}.json"));
        let l = dir.join(format!("{tag}.jsonl"));
        let out = depthpilot(&[
            "fly",
            path_str(&scene_path("step.ron")),
            "--seed",
            seed,
            "--summary",
            path_str(&s),
            "--log",
            path_str(&l),
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&s).expect("summary")).expect("json");
        let obj = v.as_object_mut().expect("object");
        obj.remove("wall_seconds");
        obj.remove("realtime_factor");
        (v.to_string(), std::fs::read(&l).expect("log"))
    };
    let (s1, l1) = run("a", "42");
    let (s2, l2) = run("b", "42");
    let (s3, l3) = run("c", "43");
    assert_eq!(s1, s2);
    assert!(l1 == l2, "logs differ for the same seed");
    assert!(!l1.is_empty());
    assert_ne!(s1, s3);
    assert!(l1 != l3, "another seed gave the same log");
}

#[test]
fn help_explains_every_flag() {
    let out = depthpilot(&["fly", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--seed", "--summary", "--log", "--controller", "--quiet"] {
        assert!(text.contains(flag), "help lacks {flag}: {text}");
    }
}

/// Writes a scene into a temp file and flies it; returns the output.
fn fly_text(tag: &str, text: &str) -> (Output, String) {
    let dir = temp_dir(tag);
    let path = dir.join("bad.ron");
    std::fs::write(&path, text).expect("write scene");
    let out = depthpilot(&["fly", path_str(&path)]);
    (out, path.display().to_string())
}

const GOOD: &str = "Scene(\n    name: \"t\",\n    duration_s: 5.0,\n    quad: (\n        mass_kg: 0.027,\n    ),\n    setpoints: Hover(position_m: (0.0, 0.0, 1.0)),\n)\n";

fn assert_bad_scene(tag: &str, text: &str, must_contain: &[&str]) {
    let (out, path) = fly_text(tag, text);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{tag}: exit code, stderr {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&path),
        "{tag}: message does not name the file: {err}"
    );
    for s in must_contain {
        assert!(err.contains(s), "{tag}: message lacks `{s}`: {err}");
    }
    assert!(!err.contains("panicked"), "{tag}: {err}");
}

#[test]
fn good_scene_text_flies() {
    let (out, _) = fly_text("good", GOOD);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn syntax_error_names_file_and_line() {
    assert_bad_scene(
        "syntax",
        &GOOD.replace("duration_s: 5.0,", "duration_s: 5.0"),
        &[":4:"],
    );
}

#[test]
fn unknown_field_names_file_line_and_field() {
    assert_bad_scene(
        "unknown",
        &GOOD.replace("mass_kg: 0.027,", "mass_kg: 0.027,\n        colour: 3,"),
        &[":6:", "colour"],
    );
}

#[test]
fn negative_mass_names_file_line_and_field() {
    assert_bad_scene(
        "negative",
        &GOOD.replace("mass_kg: 0.027", "mass_kg: -0.027"),
        &[":5:", "quad.mass_kg", "must be > 0"],
    );
}

#[test]
fn nan_names_file_line_and_field() {
    assert_bad_scene(
        "nan",
        &GOOD.replace("duration_s: 5.0", "duration_s: NaN"),
        &[":3:", "duration_s", "finite"],
    );
}

#[test]
fn missing_scene_file_is_exit_2() {
    let out = depthpilot(&["fly", "/nonexistent/scene.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/scene.ron"));
}

#[test]
fn binary_garbage_scene_is_a_clear_error() {
    let dir = temp_dir("garbage");
    let path = dir.join("garbage.ron");
    std::fs::write(&path, [0xffu8, 0xfe, 0x00, 0x42, 0x13]).expect("write");
    let out = depthpilot(&["fly", path_str(&path)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("garbage.ron"));
}

#[test]
fn bad_flag_value_is_exit_2() {
    let out = depthpilot(&[
        "fly",
        path_str(&scene_path("hover.ron")),
        "--seed",
        "minus-one",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--seed"));
}

#[test]
fn unwritable_summary_is_exit_1_with_the_path() {
    let out = depthpilot(&[
        "fly",
        path_str(&scene_path("hover.ron")),
        "--summary",
        "/nonexistent-dir/s.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent-dir/s.json"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn controller_flag_switches_the_controller() {
    let dir = temp_dir("controller");
    let summary = dir.join("s.json");
    let out = depthpilot(&[
        "fly",
        path_str(&scene_path("hover.ron")),
        "--controller",
        "bitcraze2015",
        "--summary",
        path_str(&summary),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "--quiet prints nothing");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    assert_eq!(v["controller"], "bitcraze2015");
}

#[test]
fn realism_flag_replaces_the_scenes_realism_and_the_summary_names_it() {
    let dir = temp_dir("realism-flag");
    let hover = scene_path("hover.ron");
    let summary = |extra: &[&str], name: &str| {
        let file = dir.join(name);
        let mut args = vec!["fly", path_str(&hover), "--summary", path_str(&file)];
        args.extend_from_slice(extra);
        let out = depthpilot(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("summary")).expect("json");
        (String::from_utf8_lossy(&out.stdout).into_owned(), v)
    };
    let (text, v) = summary(&[], "ideal.json");
    assert_eq!(v["realism"], serde_json::json!([]), "hover.ron is Ideal");
    assert!(text.contains("realism     Ideal"), "{text}");
    let (text, v) = summary(&["--realism", "Ideal,imu=on,battery=on"], "two.json");
    assert_eq!(v["realism"], serde_json::json!(["imu", "battery"]));
    assert!(text.contains("realism     imu, battery"), "{text}");
    let (_, v) = summary(&["--realism", "Bench,turbulence=off"], "bench.json");
    let items = v["realism"].as_array().expect("list");
    assert_eq!(items.len(), 9, "{v}");
    assert!(!items.contains(&serde_json::json!("turbulence")));
}

#[test]
fn garbage_realism_is_exit_2_naming_the_bad_part() {
    let hover = scene_path("hover.ron");
    let hover = path_str(&hover);
    let kinect = scene_path("hover_kinect.ron");
    let kinect = path_str(&kinect);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let split = root.join("hil").join("split.ron");
    let split = path_str(&split);
    let bench_rig = root.join("hil").join("bench.ron");
    let bench_rig = path_str(&bench_rig);
    for (cmd, spec, named) in [
        (vec!["fly", hover], "Realistic", "`Realistic`"),
        (
            vec!["batch", hover, "--seeds", "0..1"],
            "Bench,wind=on",
            "`wind=on`",
        ),
        (vec!["tune", hover], "Bench,imu=maybe", "`imu=maybe`"),
        (
            vec!["bench", hover],
            "Ideal,battery_start_v=9",
            "`battery_start_v=9`",
        ),
        (vec!["tune", hover, "--holdout-realism"], "\u{1}zz", "zz"),
        (vec!["run", split], "Bench,props=on", "`props=on`"),
        (vec!["hil", bench_rig], "Ideal,imu=yes", "`imu=yes`"),
        (
            vec!["fake-bridge", kinect],
            "Bench,kinect_on_s=-3",
            "`kinect_on_s=-3`",
        ),
    ] {
        let mut args = cmd.clone();
        if args.last() != Some(&"--holdout-realism") {
            args.push("--realism");
        }
        args.push(spec);
        let out = depthpilot(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains("realism") && e.contains(named), "{args:?}: {e}");
    }
}
