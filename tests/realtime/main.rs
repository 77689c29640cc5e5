//! Tests that run in real time: `depthpilot sitl` against Bitcraze's clients, flights through a
//! link to a simulator in another process, the recorder's kill test. A binary of their own, so
//! that `cargo test` does not run them beside the CPU-heavy end-to-end tests (it runs test
//! binaries one after another), and one at a time within it (`realtime_slot`): a real-time loop
//! measures what it measures only with a core to itself.

mod bridge;
mod recorder;
mod sitl;
mod split;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The workspace root (where `scenes/` lives).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn scene_path(name: &str) -> PathBuf {
    root().join("scenes").join(name)
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("depthpilot-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The rows of a JSON Lines flight log (`--log x.jsonl`), as JSON values.
pub fn log_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no log at {}: {e}", path.display()))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r.get("t_s").is_some())
        .collect()
}

static SLOT: Mutex<()> = Mutex::new(());

/// Held for the whole of a test that runs something in real time.
pub fn realtime_slot() -> MutexGuard<'static, ()> {
    SLOT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
