//! `depthpilot teach` driven by a real pyzmq client speaking the Crazyflie client's input-device
//! JSON; bad messages are skipped with a reason and the next good message still works.

use crate::free_port;

use crate::root;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_pyzmq_client_drives_the_mux_and_bad_messages_are_skipped() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_pyzmq = Command::new(&python)
        .args(["-c", "import zmq"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_pyzmq,
        "this test needs Python with pyzmq: run scripts/setup (it installs it), or set PYTHON"
    );
    let port = free_port();
    let mut teach = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "teach",
            "--bind",
            &format!("tcp://127.0.0.1:{port}"),
            "--ticks",
            "250",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depthpilot teach");
    let client = Command::new(&python)
        .arg(root().join("tests/zmq_teacher_client.py"))
        .arg(port.to_string())
        .status()
        .expect("run the pyzmq client");
    assert!(client.success(), "the pyzmq client failed");
    let stdout = teach.stdout.take().expect("stdout");
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).expect("each tick is a JSON line"))
        .collect();
    let out = teach.wait_with_output().expect("teach ends");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(lines.len(), 250, "one line per tick");

    // The first good message reached the output (roll 5°, 40 % = raw 26000, teacher's axes).
    assert!(
        lines
            .iter()
            .any(|l| l["roll_deg"] == 5.0 && l["thrust"] == 26000),
        "first message never reached the output"
    );
    // Each bad message was skipped with its reason...
    for why in [
        "not JSON",
        "no `ctrl`",
        "`ctrl.roll` must be a finite number",
        "larger than",
    ] {
        assert!(stderr.contains(why), "stderr lacks `{why}`:\n{stderr}");
    }
    // ... and the last good message still worked.
    let second = lines.iter().position(|l| {
        l["roll_deg"] == -7.0 && l["thrust"] == 32500 && l["sources"][0] == "teacher"
    });
    assert!(
        second.is_some(),
        "the good message after the bad ones never reached the output"
    );
    // Unlike the client, which flies the last value forever, a silent teacher goes stale: the
    // mux falls back to the safe output (level, thrust held, then ramped down).
    let last = lines.last().expect("ticks");
    assert_eq!(last["sources"][3], "safe", "{last}");
    assert_eq!(last["roll_deg"], 0.0, "{last}");
}

#[test]
fn teach_refuses_a_bad_endpoint_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args(["teach", "--bind", "nonsense://here", "--ticks", "1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nonsense://here"), "{stderr}");
}

#[test]
fn teach_with_a_gamepad_says_clearly_when_there_is_none() {
    let mapping = root().join("hil/gamepad_mode2.ron");
    let out = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "teach",
            "--gamepad",
            mapping.to_str().expect("utf-8"),
            "--ticks",
            "2",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // A gamepad is plugged into this machine: it was opened and named.
        assert!(stderr.contains("gamepad `"), "{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("no gamepad connected"), "{stderr}");
        assert!(stderr.contains("plug in a gamepad"), "{stderr}");
    }
}

#[test]
fn teach_refuses_a_broken_gamepad_mapping_naming_the_file() {
    let dir = crate::temp_dir("pad");
    let path = dir.join("pad.ron");
    std::fs::write(&path, "GamepadMapping(name: \"x\")").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "teach",
            "--gamepad",
            path.to_str().expect("utf-8"),
            "--ticks",
            "1",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pad.ron"));
}

/// Issue 20: a Python (pyzmq) teacher takes CURVE keys too. Against `teach --keys` on all
/// interfaces, a pyzmq client holding a key allowed only on `bus` gets nothing through (its roll
/// never reaches the output, the denial is printed), and one holding a `teacher` key does.
#[test]
fn a_pyzmq_client_with_a_teacher_key_drives_teach_with_curve_and_a_bus_key_does_not() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let dir = crate::temp_dir("teach-curve-python");
    let keys = dir.join("keys");
    depthpilot_runtime::curve::write_keypair(&keys, "server", false).expect("keygen");
    for (name, role) in [("pilot", "teacher"), ("vision", "bus")] {
        depthpilot_runtime::curve::write_keypair(&keys, name, false).expect("keygen");
        let allow = keys.join("allow").join(role);
        std::fs::create_dir_all(&allow).expect("mkdir");
        std::fs::copy(
            keys.join(format!("{name}.pub")),
            allow.join(format!("{name}.pub")),
        )
        .expect("copy");
    }
    let port = free_port();
    let teach = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "teach",
            "--bind",
            &format!("tcp://0.0.0.0:{port}"),
            "--keys",
            keys.to_str().expect("utf-8"),
            "--ticks",
            "600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depthpilot teach");
    std::thread::sleep(std::time::Duration::from_millis(300));
    for (name, roll) in [("vision", "9"), ("pilot", "5")] {
        let client = Command::new(&python)
            .arg(root().join("tests/zmq_teacher_client.py"))
            .args([&port.to_string(), "--keys", keys.to_str().expect("utf-8")])
            .args(["--key", name, "--roll", roll])
            .output()
            .expect("run the pyzmq client");
        assert!(
            client.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&client.stderr)
        );
    }
    let out = teach.wait_with_output().expect("teach ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each tick is a JSON line"))
        .collect();
    assert!(
        lines.iter().any(|l| l["roll_deg"] == 5.0),
        "the teacher key's roll never reached the output: {stderr}"
    );
    assert!(
        !lines.iter().any(|l| l["roll_deg"] == 9.0),
        "the bus key's roll reached the output"
    );
    let vision_key = std::fs::read_to_string(keys.join("vision.pub")).expect("vision.pub");
    assert!(
        stderr.contains("denied client key") && stderr.contains(vision_key.trim()),
        "the denial names the key: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
