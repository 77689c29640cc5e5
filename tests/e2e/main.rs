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
mod export;
mod faults;
mod firmware_modes;
mod keygen;
mod kinect;
mod log_repair;
mod matrix;
mod mux;
mod netpolicy;
mod pid_viz;
mod plot;
mod run_curve;
mod scenes;
mod teach_zmq;
mod tune;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the depthpilot binary with `args` and waits for it.
pub fn depthpilot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args(args)
        .output()
        .expect("run depthpilot")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The command was refused as bad input (exit 2), and its error says each of `parts`.
pub fn refused(o: &Output, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    for p in parts {
        assert!(stderr.contains(p), "`{p}` not in: {stderr}");
    }
}

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

#[path = "../common/temp_dir.rs"]
mod common_temp_dir;
pub use common_temp_dir::TempDir;

/// A fresh temporary directory for one test, removed when the test ends.
pub fn temp_dir(tag: &str) -> TempDir {
    common_temp_dir::temp_dir_tagged(&format!("test-{tag}"))
}
