//! `depthpilot tune`: deterministic, resumable, and its output is a controller file a scene uses.

use crate::{scene_path, temp_dir};
use std::process::Command;

fn tune(dir: &std::path::Path, out: &str, generations: &str, state: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depthpilot"));
    cmd.args(["tune"])
        .arg(scene_path("hover.ron"))
        .args([
            "--train-seeds",
            "0..1",
            "--holdout-seeds",
            "50..52",
            "--population",
            "4",
        ])
        .args([
            "--generations",
            generations,
            "--seed",
            "3",
            "--jobs",
            "2",
            "--out",
        ])
        .arg(dir.join(out));
    if let Some(s) = state {
        cmd.arg("--state").arg(dir.join(s));
    }
    let o = cmd.output().expect("run tune");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(dir.join(out)).expect("tuned file")
}

#[test]
fn tune_is_deterministic_resumable_and_usable_from_a_scene() {
    let dir = temp_dir("tune");
    let gains = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("// Use"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let a = tune(&dir, "a.ron", "2", None);
    let b = tune(&dir, "b.ron", "2", None);
    assert_eq!(gains(&a), gains(&b), "same seed, same result");
    // Resumed: one generation, then continued to two, gives the same gains as two at once.
    tune(&dir, "c1.ron", "1", Some("state.json"));
    let c = tune(&dir, "c.ron", "2", Some("state.json"));
    assert_eq!(gains(&a), gains(&c));
    // A scene next to the file uses it.
    let scene = std::fs::read_to_string(scene_path("hover.ron"))
        .expect("hover")
        .replace(
            "setpoints:",
            "controller_file: Some(\"a.ron\"),\n    setpoints:",
        );
    std::fs::write(dir.join("scene.ron"), scene).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .arg("fly")
        .arg(dir.join("scene.ron"))
        .arg("--quiet")
        .output()
        .expect("fly");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A missing controller file is a clear error naming it.
    std::fs::write(
        dir.join("bad.ron"),
        "Scene(name: \"b\", duration_s: 2.0, settle_s: 1.0, controller_file: Some(\"nope.ron\"), setpoints: Hover(position_m: (0.0, 0.0, 1.0)))",
    )
    .expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .arg("fly")
        .arg(dir.join("bad.ron"))
        .output()
        .expect("fly");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.ron"));
}

#[test]
fn tune_sharded_over_a_scheduler_matches_the_local_search() {
    let dir = temp_dir("tune-shards");
    let local = tune(&dir, "local.ron", "2", None);
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
            .arg("tune")
            .arg(scene_path("hover.ron"))
            .args([
                "--train-seeds",
                "0..1",
                "--holdout-seeds",
                "50..52",
                "--population",
                "4",
            ])
            .args([
                "--generations",
                "2",
                "--seed",
                "3",
                "--jobs",
                "1",
                "--state",
            ])
            .arg(dir.join("shared-state.json"))
            .arg("--out")
            .arg(dir.join("sharded.ron"))
            .args(extra)
            .output()
            .expect("run tune");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let flights = dir.join("flights");
    let flights = flights.to_str().expect("utf-8");
    for _generation in 0..2 {
        for k in 0..3 {
            run(&["--shard", &format!("{k}/3"), "--flights", flights]);
        }
        run(&["--merge", flights]);
    }
    let sharded =
        std::fs::read_to_string(dir.join("sharded.ron")).expect("written by the last merge");
    let gains = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("// Use"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(gains(&local), gains(&sharded));
}
