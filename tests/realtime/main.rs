//! Tests that run in real time: `depthpilot sitl` against Bitcraze's clients, flights through a
//! link to a simulator in another process, the recorder's kill test. A binary of their own, so
//! that `cargo test` does not run them beside the CPU-heavy end-to-end tests (it runs test
//! binaries one after another), and one at a time within it (`realtime_slot`): a real-time loop
//! measures what it measures only with a core to itself.

mod bridge;
mod recorder;
mod sitl;
mod split;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The workspace root (where `scenes/` lives).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn scene_path(name: &str) -> PathBuf {
    root().join("scenes").join(name)
}

#[path = "../common/temp_dir.rs"]
mod common_temp_dir;
pub use common_temp_dir::TempDir;

/// A fresh temporary directory for one test, removed when the test ends.
pub fn temp_dir(tag: &str) -> TempDir {
    common_temp_dir::temp_dir_tagged(&format!("rt-{tag}"))
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

/// The longest a test may hold the slot. The longest test (two 22 s flights) takes about a minute;
/// one that hangs (a child that never exits, a socket that never closes) fails the whole run here,
/// named, instead of holding the slot until CI's own limit.
const SLOT_LIMIT: Duration = Duration::from_secs(240);

/// Held for the whole of a test that runs something in real time; a watchdog ends the test
/// process if the test holds it longer than `SLOT_LIMIT`.
pub struct Slot {
    _guard: MutexGuard<'static, ()>,
    released: Arc<AtomicBool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

/// SIGKILL to every child process of this test binary (Linux: `/proc/self/task/*/children`), so
/// that a hung test leaves no simulator or bridge running behind it.
fn kill_children() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in list.split_whitespace() {
            // The shell's own `kill`: no procps needed.
            let _ = std::process::Command::new("sh")
                .args(["-c", &format!("kill -KILL {pid}")])
                .status();
        }
    }
}

pub fn realtime_slot() -> Slot {
    let guard = SLOT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let released = Arc::new(AtomicBool::new(false));
    let test = std::thread::current()
        .name()
        .unwrap_or("a real-time test")
        .to_string();
    let watch = Arc::clone(&released);
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < SLOT_LIMIT {
            if watch.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !watch.load(Ordering::SeqCst) {
            // Past libtest's output capture (which the `eprintln!` of a spawned thread inherits).
            let _ = writeln!(
                std::io::stderr(),
                "realtime: `{test}` has run for {} s, longer than any test should: it hangs; \
                 killing its child processes and ending the test run",
                SLOT_LIMIT.as_secs()
            );
            kill_children();
            std::process::exit(101);
        }
    });
    Slot {
        _guard: guard,
        released,
    }
}
