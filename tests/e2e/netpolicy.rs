//! Issue 20, step 1 (safe defaults): binds are loopback unless `--insecure` says otherwise, and
//! a receiving socket refuses a 100 MB message without allocating it and keeps serving. Over
//! real sockets, against the real `depthpilot` processes; the senders are pyzmq
//! (`tests/zmq_oversized_client.py`), so that the receiver's memory is measured alone.

use crate::{depthpilot, free_port};

use crate::root;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXIT_BAD_INPUT: i32 = 2;
/// What a receiver's peak resident memory may grow by while it refuses a 100 MB message.
const MAX_GROWTH_KB: u64 = 20 * 1024;

fn python() -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_pyzmq = Command::new(&python)
        .args(["-c", "import zmq"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_pyzmq,
        "this test needs Python with pyzmq: run scripts/setup (it installs it), or set PYTHON"
    );
    python
}

/// Kills a child if the test panics before it exits.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A line of `/proc/PID/status` in kB (`VmHWM`: peak resident set; `VmRSS`: resident now).
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Waits until `pid` has bound `port` on loopback (its socket accepts connections).
fn wait_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn oversized(python: &str, kind: &str, port: u16) -> String {
    let out = Command::new(python)
        .arg(root().join("tests/zmq_oversized_client.py"))
        .args([kind, &port.to_string(), "100"])
        .output()
        .expect("run the pyzmq sender");
    assert!(
        out.status.success(),
        "the sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn teach_refuses_a_non_loopback_bind_and_allows_it_with_insecure() {
    let out = depthpilot(&["teach", "--bind", "tcp://0.0.0.0:0", "--ticks", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{stderr}");
    for part in [
        "refusing to bind the teacher input socket to `tcp://0.0.0.0:0`",
        "take all four axes or latch the e-stop",
        "ssh -L",
        "--insecure",
    ] {
        assert!(stderr.contains(part), "stderr lacks `{part}`:\n{stderr}");
    }
    let out = depthpilot(&["teach", "--bind", "tcp://*:*", "--ticks", "1", "--insecure"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "WARNING: --insecure: the teacher input socket is bound to `tcp://*:*` without \
             authentication or encryption"
        ),
        "{stderr}"
    );
    let help = depthpilot(&["teach", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: tcp://127.0.0.1:1212]"), "{help}");
}

#[test]
fn the_fake_bridge_binds_loopback_by_default_and_refuses_any_interface() {
    let scene = root().join("scenes/hover_kinect.ron");
    let scene = scene.to_str().expect("utf-8 path");
    let help = depthpilot(&["fake-bridge", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: tcp://127.0.0.1:7720]"), "{help}");

    let out = depthpilot(&[
        "fake-bridge",
        scene,
        "--bind",
        "tcp://*:*",
        "--duration",
        "0.2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{stderr}");
    assert!(
        stderr.contains("refusing to bind the Kinect bridge socket to `tcp://*:*`")
            && stderr.contains("live depth and IR video of the room"),
        "{stderr}"
    );
    let out = depthpilot(&[
        "fake-bridge",
        scene,
        "--bind",
        "tcp://*:*",
        "--duration",
        "0.2",
        "--insecure",
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARNING: --insecure: the Kinect bridge socket is bound to `tcp://*:*`"),
        "{stderr}"
    );
}

/// The teacher input: the 100 MB message is dropped with its sender's connection; the sender's
/// next message (libzmq reconnects the PUSH by itself) and a fresh sender's both reach the mux.
#[test]
fn the_teacher_input_refuses_a_100_mb_message_without_memory_growth() {
    let python = python();
    let port = free_port();
    let mut teach = Kill(
        Command::new(env!("CARGO_BIN_EXE_depthpilot"))
            .args([
                "teach",
                "--bind",
                &format!("tcp://127.0.0.1:{port}"),
                "--ticks",
                "500",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start depthpilot teach"),
    );
    let pid = teach.0.id();
    wait_listening(port);
    let before_kb = status_kb(pid, "VmHWM");
    let sent = oversized(&python, "teacher", port);
    assert!(sent.contains("sent fresh-socket"), "{sent}");
    let grew_kb = status_kb(pid, "VmHWM").saturating_sub(before_kb);
    assert!(
        grew_kb < MAX_GROWTH_KB,
        "teach's peak memory grew by {grew_kb} kB"
    );
    let stdout = teach.0.stdout.take().expect("stdout");
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).expect("each tick is a JSON line"))
        .collect();
    let status = teach.0.wait().expect("teach ends");
    assert!(status.success(), "teach failed");
    assert_eq!(lines.len(), 500, "teach kept running");
    for (roll, who) in [(3.0, "the same sender"), (-4.0, "a fresh sender")] {
        assert!(
            lines.iter().any(|l| l["roll_deg"] == roll),
            "the valid message of {who} never reached the output"
        );
    }
}

/// The control side's measurement SUB of a split flight (before issue 20 it had no limit: the
/// 100 MB went into memory): refused, and a real vision process then starts the flight.
#[test]
fn the_split_measurement_sub_refuses_a_100_mb_message_and_still_flies() {
    let python = python();
    let (truth, meas) = (free_port(), free_port());
    let rig = root().join("hil/split.ron");
    let rig = rig.to_str().expect("utf-8 path");
    let truth_ep = format!("tcp://127.0.0.1:{truth}");
    let meas_ep = format!("tcp://127.0.0.1:{meas}");
    let endpoints = [
        "--truth-endpoint",
        truth_ep.as_str(),
        "--measurement-endpoint",
        meas_ep.as_str(),
    ];
    let mut control = Kill(
        Command::new(env!("CARGO_BIN_EXE_depthpilot"))
            .args([
                "run",
                rig,
                "--role",
                "control",
                "--duration",
                "1",
                "--quiet",
            ])
            .args(endpoints)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the control role"),
    );
    let pid = control.0.id();
    wait_listening(meas);
    let before_kb = status_kb(pid, "VmHWM");
    let sent = oversized(&python, "pub", meas);
    assert!(sent.contains("sent oversized"), "{sent}");
    let grew_kb = status_kb(pid, "VmHWM").saturating_sub(before_kb);
    assert!(
        grew_kb < MAX_GROWTH_KB,
        "the control role's peak memory grew by {grew_kb} kB"
    );
    let _vision = Kill(
        Command::new(env!("CARGO_BIN_EXE_depthpilot"))
            .args([
                "run",
                rig,
                "--role",
                "vision",
                "--duration",
                "30",
                "--quiet",
            ])
            .args(endpoints)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the vision role"),
    );
    let mut stderr = String::new();
    control
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read the control role's stderr");
    let status = control.0.wait().expect("the control role ends");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("vision process there"), "{stderr}");
}
