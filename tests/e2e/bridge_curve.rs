//! Issue 20, CURVE on the Kinect bridge link, end to end through the CLI: `fake-bridge --keys`
//! bound on every interface (no --insecure) and `record --bridge-keys`.

use crate::free_port;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_depthpilot");

fn keygen(dir: &std::path::Path, name: &str) {
    let o = Command::new(BIN)
        .args(["keygen", "--name", name, "--dir"])
        .arg(dir)
        .output()
        .expect("keygen");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Kills a child the test left running.
struct Running(Option<Child>);

impl Running {
    fn finish(mut self) -> Output {
        self.0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn record(port: u16, out: &std::path::Path, keys: Option<(&std::path::Path, &str)>) -> Output {
    let mut c = Command::new(BIN);
    c.args(["record", "hil/bridge_sim.ron", "--duration", "3", "--quiet"])
        .args(["--bridge-endpoint", &format!("tcp://127.0.0.1:{port}")])
        .arg("--out")
        .arg(out);
    if let Some((dir, name)) = keys {
        c.arg("--bridge-keys").arg(dir).args(["--bridge-key", name]);
    }
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("record")
}

/// A recorder without a key and one whose key is allowed only on the bus get no frame from a
/// `fake-bridge --keys` (exit non-zero, naming the way out); the one with a `bridge` key records
/// frames; the bridge's summary counts the one accepted and the denied.
#[test]
fn fake_bridge_with_keys_serves_only_bridge_keys() {
    let dir = std::env::temp_dir().join(format!("dp-e2e-bridge-curve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys = dir.join("keys");
    keygen(&keys, "server");
    keygen(&keys, "vision");
    keygen(&keys, "split");
    for (role, name) in [("bridge", "vision"), ("bus", "split")] {
        std::fs::create_dir_all(keys.join("allow").join(role)).expect("mkdir");
        std::fs::copy(
            keys.join(format!("{name}.pub")),
            keys.join("allow").join(role).join(format!("{name}.pub")),
        )
        .expect("copy");
    }
    let port = free_port();
    let bridge = Running(Some(
        Command::new(BIN)
            .args(["fake-bridge", "scenes/hover_kinect.ron", "--duration", "14"])
            .args(["--bind", &format!("tcp://0.0.0.0:{port}"), "--keys"])
            .arg(&keys)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fake-bridge"),
    ));
    std::thread::sleep(Duration::from_millis(500));

    let null = record(port, &dir.join("null.mcap"), None);
    let stderr = String::from_utf8_lossy(&null.stderr);
    assert!(!null.status.success(), "a recorder without a key: {stderr}");
    assert!(
        stderr.contains("no frame from the Kinect bridge"),
        "{stderr}"
    );
    assert!(stderr.contains("--bridge-keys"), "{stderr}");

    let wrong = record(port, &dir.join("split.mcap"), Some((&keys, "split")));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "a bus key: {stderr}");
    assert!(stderr.contains("allow/bridge/"), "{stderr}");

    let allowed = record(port, &dir.join("vision.mcap"), Some((&keys, "vision")));
    let stdout = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        allowed.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let frames: u64 = stdout
        .split_once("frames in")
        .and_then(|(head, _)| head.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {stdout}"));
    assert!(frames >= 30, "{frames} frames recorded in 3 s: {stdout}");

    let out = bridge.finish();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    assert!(
        stderr.contains("with CURVE: 1 client key(s) allowed"),
        "{stderr}"
    );
    let split_key = std::fs::read_to_string(keys.join("split.pub")).expect("split.pub");
    assert!(
        stderr.contains(&format!("denied client key {}", split_key.trim())),
        "{stderr}"
    );
    assert!(
        stdout.contains("CURVE: 1 subscriber(s) accepted, 1 denied"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --bridge-keys` flies a bridge rig on the frames of a `fake-bridge --keys`; without a
/// bridge camera the option is refused.
#[test]
fn run_with_bridge_keys_flies_on_a_curve_bridge() {
    let dir = std::env::temp_dir().join(format!("dp-e2e-run-bridge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    keygen(&dir, "server");
    keygen(&dir, "vision");
    std::fs::create_dir_all(dir.join("allow/bridge")).expect("mkdir");
    std::fs::copy(dir.join("vision.pub"), dir.join("allow/bridge/vision.pub")).expect("copy");
    let (truth, frames) = (free_port(), free_port());
    let bridge = Running(Some(
        Command::new(BIN)
            .args(["fake-bridge", "scenes/hover_kinect.ron", "--duration", "30"])
            .args(["--truth-endpoint", &format!("tcp://127.0.0.1:{truth}")])
            .args(["--bind", &format!("tcp://127.0.0.1:{frames}"), "--keys"])
            .arg(&dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fake-bridge"),
    ));
    let out = Command::new(BIN)
        .args([
            "run",
            "hil/bridge_sim.ron",
            "--role",
            "control",
            "--duration",
            "3",
        ])
        .args(["--truth-endpoint", &format!("tcp://127.0.0.1:{truth}")])
        .args(["--bridge-endpoint", &format!("tcp://127.0.0.1:{frames}")])
        .arg("--bridge-keys")
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    drop(bridge);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let camera = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("camera"))
        .unwrap_or_else(|| panic!("no camera line: {stdout}"));
    let got: u64 = camera
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in `{camera}`"));
    assert!(got >= 30, "{camera}");

    let refused = Command::new(BIN)
        .args(["run", "hil/split.ron", "--bridge-keys"])
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--bridge-keys"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
