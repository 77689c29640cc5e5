//! End-to-end tests of depthpilot, compiled into one binary: the CLI, every bundled scene, the
//! acceptance figures of the foundation, and determinism.

mod actors;
mod batch;
mod bridge_curve;
mod cli;
mod closed_loop;
mod control_curve;
mod curve;
mod determinism;
mod faults;
mod firmware_modes;
mod keygen;
mod kinect;
mod mux;
mod netpolicy;
mod pid_viz;
mod plot;
mod run_curve;
mod scenes;
mod teach_zmq;
mod tune;

use std::path::{Path, PathBuf};

/// The workspace root (where `scenes/` lives).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn scene_path(name: &str) -> PathBuf {
    root().join("scenes").join(name)
}

/// Every scene file in `scenes/`, sorted.
pub fn all_scenes() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("scenes"))
        .expect("scenes/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    v.sort();
    v
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("depthpilot-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
