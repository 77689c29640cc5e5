//! `depthpilot matrix` (issue 19): a small matrix writes its table, every cell's scene, the JSON
//! and the heat-map; a written cell replays with `fly`; bad flags and a camera-less base scene
//! are refused by name.

use crate::{depthpilot, refused, scene_path, temp_dir};

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn a_small_matrix_writes_its_table_scenes_json_and_heatmap_and_a_cell_replays() {
    let dir = temp_dir("matrix");
    let out = depthpilot(&[
        "matrix",
        s(&scene_path("hover_kinect.ron")),
        "--seeds",
        "0..1",
        "--arch",
        "offboard",
        "--manoeuvres",
        "hover",
        "--degradations",
        "none,blackout-1s",
        "--out",
        s(&dir),
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "| offboard | hover | none | 0/1 |",
        "| offboard | hover | blackout-1s | 0/1 |",
    ] {
        assert!(stdout.contains(line), "`{line}` not in:\n{stdout}");
    }
    assert_eq!(stdout.matches("| met |").count(), 2, "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.join("matrix.md")).expect("matrix.md"),
        stdout
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("matrix.json")).expect("json"))
            .expect("parses");
    assert_eq!(json["cells"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["cells"][1]["name"], "offboard-hover-blackout-1s");
    let png = std::fs::read(dir.join("heatmap.png")).expect("heatmap");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let cell = dir.join("scenes/offboard-hover-blackout-1s.ron");
    let fly = depthpilot(&["fly", s(&cell), "--seed", "0"]);
    assert!(
        fly.status.success(),
        "{}",
        String::from_utf8_lossy(&fly.stderr)
    );
    let summary = String::from_utf8_lossy(&fly.stdout);
    assert!(
        summary.contains("blacked out") && !summary.contains(" 0 blacked out"),
        "{summary}"
    );
}

#[test]
fn matrix_refuses_bad_flags_and_a_base_without_a_camera() {
    let base = scene_path("hover_kinect.ron");
    let out = depthpilot(&["matrix", s(&base), "--degradations", "fog"]);
    refused(&out, &["unknown degradation `fog`", "collapse-4hz"]);
    let out = depthpilot(&["matrix", s(&base), "--arch", "inboard"]);
    refused(&out, &["unknown architecture `inboard`"]);
    let out = depthpilot(&["matrix", s(&base), "--seeds", "5..5"]);
    assert_eq!(out.status.code(), Some(2));
    let out = depthpilot(&["matrix", s(&scene_path("step.ron"))]);
    refused(&out, &["`step`", "sensing: Kinect"]);
    let out = depthpilot(&["matrix", "/nope.ron"]);
    refused(&out, &["/nope.ron"]);
}
