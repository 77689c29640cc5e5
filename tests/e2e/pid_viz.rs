//! The 2015 demo's PID visualisation output (`kctrl.py` pushed `{"name":…,"data":{"P","I","D",
//! "E","SP","OUT"}}` to tcp://127.0.0.1:5123): `fly --pid-viz` pushes the same, per loop per
//! command, and never blocks the flight when nobody listens.

use crate::scene_path;
use depthpilot_runtime::bus::{PidVizMsg, parse_pid_viz};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_depthpilot"))
}

/// Flies `scene` (lockstep) pushing to a PULL bound here; returns the messages by loop name.
fn collect(scene: &str, extra: &[&str]) -> BTreeMap<String, Vec<PidVizMsg>> {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).expect("socket");
    pull.set_linger(0).expect("linger");
    pull.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = pull.get_last_endpoint().expect("endpoint").expect("utf-8");
    let mut child = exe()
        .arg("fly")
        .arg(scene_path(scene))
        .args(["--quiet", "--pid-viz", &endpoint])
        .args(extra)
        .spawn()
        .expect("depthpilot fly");
    let mut by_name: BTreeMap<String, Vec<PidVizMsg>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done: Option<bool> = None;
    while Instant::now() < deadline {
        if pull.poll(zmq::POLLIN, 50).expect("poll") > 0 {
            while let Ok(bytes) = pull.recv_bytes(zmq::DONTWAIT) {
                let m = parse_pid_viz(&bytes).expect("a valid PID visualisation message");
                by_name.entry(m.name.clone()).or_default().push(m);
            }
        } else if let Some(status) = done {
            assert!(status, "fly failed");
            break;
        }
        if done.is_none()
            && let Some(s) = child.try_wait().expect("wait")
        {
            done = Some(s.success());
        }
    }
    // Reap it (and stop it if it overran the deadline).
    let _ = child.kill();
    child.wait().expect("wait");
    assert!(done.is_some(), "fly did not finish within the deadline");
    by_name
}

#[test]
fn the_cascade_pushes_its_loops_terms_and_they_add_up() {
    let by_name = collect("hover_kinect.ron", &[]);
    let counts: Vec<(String, usize)> = by_name.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    println!("hover_kinect, cascade: {counts:?}");
    let names: Vec<&str> = by_name.keys().map(String::as_str).collect();
    assert_eq!(names, ["x", "y", "yaw", "z"]);
    // A command every 10 ms while tracking (about 11 s of 12): over 1000 per loop.
    for (name, msgs) in &by_name {
        assert!(msgs.len() > 1000, "{name}: {}", msgs.len());
    }
    for m in by_name["z"].iter().chain(&by_name["x"]) {
        // A hover setpoint has no feed-forward acceleration: OUT = P + I + D.
        assert!((m.p + m.i + m.d - m.out).abs() < 1e-9, "{m:?}");
    }
    let z = by_name["z"].last().expect("z");
    assert!((z.sp - 1.0).abs() < 1e-12 && z.e.abs() < 0.01, "{z:?}");
    // Take-off from the floor: the first z errors are large and positive.
    assert!(by_name["z"][0].e > 0.5, "{:?}", by_name["z"][0]);
}

#[test]
fn the_2015_controller_pushes_kctrl_names() {
    let by_name = collect("hover.ron", &["--controller", "bitcraze2015"]);
    let names: Vec<&str> = by_name.keys().map(String::as_str).collect();
    println!(
        "hover, bitcraze2015: {names:?}, {} thrust messages",
        by_name.get("thrust").map_or(0, Vec::len)
    );
    assert_eq!(names, ["pitch", "roll", "thrust", "yaw", "z"]);
    for m in &by_name["roll"] {
        assert!((m.p + m.i + m.d - m.out).abs() < 1e-9, "{m:?}");
    }
    for m in &by_name["thrust"] {
        // kctrl.py: thrust = vv PID + 0.50, clamped to [0.40, 1.0].
        assert!((0.40..=1.0).contains(&m.out), "{m:?}");
    }
}

#[test]
fn nobody_listening_does_not_block_and_a_bad_endpoint_is_refused() {
    // Nothing bound there: the flight runs and says what was dropped.
    let out = exe()
        .arg("fly")
        .arg(scene_path("hover.ron"))
        .args(["--quiet", "--pid-viz", "tcp://127.0.0.1:9"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dropped"), "{err}");
    let out = exe()
        .arg("fly")
        .arg(scene_path("hover.ron"))
        .args(["--pid-viz", "localhost:5123"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--pid-viz `localhost:5123`: not a ZMQ endpoint"),
        "{err}"
    );
}
