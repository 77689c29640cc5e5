//! `depthpilot batch`: sliced into shards and merged, the report equals the unsliced one.

use crate::depthpilot;

use crate::{scene_path, temp_dir};
use std::process::Command;

fn report(path: &std::path::Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("summary")).expect("json");
    if let Some(o) = v.as_object_mut() {
        for k in ["wall_seconds", "jobs", "flights_per_second"] {
            o.remove(k);
        }
    }
    v
}

#[test]
fn four_shards_merged_equal_the_unsliced_batch() {
    let dir = temp_dir("batch");
    let scene = scene_path("gusts.ron");
    let scene = scene.to_str().expect("utf-8");
    let whole = dir.join("whole.json");
    let out = depthpilot(&[
        "batch",
        scene,
        "--seeds",
        "0..12",
        "--jobs",
        "2",
        "--quiet",
        "--summary",
        whole.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shards = dir.join("shards");
    for k in 0..4 {
        let out = depthpilot(&[
            "batch",
            scene,
            "--seeds",
            "0..12",
            "--jobs",
            "1",
            "--quiet",
            "--shard",
            &format!("{k}/4"),
            "--out",
            shards.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let merged = dir.join("merged.json");
    let out = depthpilot(&[
        "batch",
        "--merge",
        shards.to_str().expect("utf-8"),
        "--summary",
        merged.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = (report(&whole), report(&merged));
    assert_eq!(a["flights"], 12);
    assert_eq!(a, b);
}

#[test]
fn the_shard_comes_from_slurm_or_kubernetes_environment() {
    let dir = temp_dir("batch-env");
    let scene = scene_path("hover.ron");
    let out = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "batch",
            scene.to_str().expect("utf-8"),
            "--seeds",
            "0..6",
            "--out",
        ])
        .arg(&dir)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("hover.shard-1-of-3.jsonl")).expect("shard file");
    let seeds: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["seed"]
                .as_u64()
                .expect("seed")
        })
        .collect();
    assert_eq!(seeds, vec![1, 4]);
    let out = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args(["batch", scene.to_str().expect("utf-8"), "--seeds", "0..6"])
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEPTHPILOT_SHARDS"));
}

#[test]
fn bad_batch_arguments_are_clear() {
    let out = depthpilot(&["batch", "scenes/hover.ron", "--seeds", "9..3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("range is empty"));
    let dir = temp_dir("batch-bad");
    std::fs::write(dir.join("x.shard-0-of-1.jsonl"), "{\"seed\": \"oops\"}\n").expect("write");
    let out = depthpilot(&["batch", "--merge", dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("x.shard-0-of-1.jsonl:1"));
}
