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

/// Runs `tune --randomise` on hover with training seeds 0..3, held out 50..52 on Bench.
fn randomised_tune(dir: &std::path::Path, out: &str, seed: &str) -> (String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .arg("tune")
        .arg(scene_path("hover.ron"))
        .args(["--randomise", "--train-seeds", "0..3"])
        .args(["--holdout-seeds", "50..52", "--holdout-realism", "Bench"])
        .args(["--population", "4", "--generations", "1", "--jobs", "2"])
        .args(["--seed", seed, "--out"])
        .arg(dir.join(out))
        .output()
        .expect("run tune");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), stderr)
}

/// The randomised training flights, as `tune --randomise` reports them: (seed, draw, realism).
fn domains(stderr: &str) -> Vec<(u64, String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("depthpilot tune: training flight `hover` seed "))
        .map(|l| {
            let (seed, rest) = l.split_once(": ").expect("seed: draw");
            let (draw, realism) = rest.split_once("; flew with realism ").expect("realism");
            (
                seed.parse().expect("seed"),
                draw.to_string(),
                realism.to_string(),
            )
        })
        .collect()
}

#[test]
fn randomised_tune_draws_per_flight_flies_realism_and_holds_out_unseen_seeds() {
    let dir = temp_dir("tune-randomise");
    let (stdout, stderr) = randomised_tune(&dir, "a.ron", "3");
    let a = domains(&stderr);
    assert_eq!(
        a.iter().map(|d| d.0).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "{stderr}"
    );
    // Each training flight draws its own domain ...
    assert_ne!(a[0].1, a[1].1);
    assert_ne!(a[1].1, a[2].1);
    assert!(
        a[0].1.contains("mass") && a[0].1.contains("battery"),
        "{stderr}"
    );
    // ... the same again for the same search seed, another for another seed.
    let (_, again) = randomised_tune(&dir, "b.ron", "3");
    assert_eq!(domains(&again), a);
    let (_, other) = randomised_tune(&dir, "c.ron", "4");
    assert_ne!(domains(&other)[0].1, a[0].1);
    // The flights' own summaries say the battery and motor spread were on (hover.ron is Ideal).
    for (_, _, realism) in &a {
        assert_eq!(realism, "[battery motor_spread]", "{stderr}");
    }
    // The held-out flights: Bench, on seeds training never used, with the figures.
    let held = stdout
        .lines()
        .find(|l| l.contains("hover: held-out flights on seeds"))
        .unwrap_or_else(|| panic!("no held-out line: {stdout}"));
    let (seeds, realism) = held
        .split_once("seeds ")
        .and_then(|(_, r)| r.split_once(", realism "))
        .expect("seeds, realism");
    let held_seeds: Vec<u64> = seeds.split(' ').map(|s| s.parse().expect("seed")).collect();
    assert_eq!(held_seeds, vec![50, 51]);
    assert!(held_seeds.iter().all(|s| a.iter().all(|d| d.0 != *s)));
    assert!(
        realism.starts_with("Bench [imu battery motor_spread turbulence"),
        "{held}"
    );
    assert!(
        stdout.contains("held-out p95 rms") && stdout.contains("max") && stdout.contains("crashes"),
        "{stdout}"
    );
    // The standalone held-out score of the file: batch with the controller file on Bench.
    let o = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .arg("batch")
        .arg(scene_path("hover.ron"))
        .args(["--realism", "Bench", "--seeds", "50..52", "--quiet"])
        .arg("--controller-file")
        .arg(dir.join("a.ron"))
        .output()
        .expect("batch");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("p95") && text.contains("realism     imu, battery"),
        "{text}"
    );
    // A garbage controller file is a clear error naming it.
    std::fs::write(dir.join("junk.ron"), "(kind: Nope)").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .arg("batch")
        .arg(scene_path("hover.ron"))
        .args(["--seeds", "0..1", "--controller-file"])
        .arg(dir.join("junk.ron"))
        .output()
        .expect("batch");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.ron"));
}
