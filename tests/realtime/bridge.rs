//! The Kinect bridge path (issue 10): a fake bridge publishes the synthetic camera's frames
//! through the real protocol; the control process runs the vision on them with the device's
//! intrinsics and flies the simulated Crazyflie. Stalls, wrong-size frames and a bridge that dies
//! and comes back.

use crate::sitl::Kill;
use crate::{root, scene_path, temp_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_depthpilot")
}

fn free_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("tcp://127.0.0.1:{}", l.local_addr().expect("addr").port())
}

fn bridge_rig() -> PathBuf {
    root().join("hil").join("bridge_sim.ron")
}

fn spawn_logged(c: &mut Command, err: &Path) -> Child {
    c.stdout(std::fs::File::create(err.with_extension("out")).expect("stdout file"))
        .stderr(std::fs::File::create(err).expect("stderr file"))
        .spawn()
        .expect("start depthpilot")
}

fn control(truth: &str, bridge: &str, extra: &[&str], err: &Path) -> Child {
    spawn_logged(
        Command::new(exe())
            .arg("run")
            .arg(bridge_rig())
            .args(["--role", "control", "--truth-endpoint", truth])
            .args(["--bridge-endpoint", bridge, "--quiet"])
            .args(extra),
        err,
    )
}

fn fake_bridge(bind: &str, truth: &str, extra: &[&str], err: &Path) -> Kill {
    Kill(spawn_logged(
        Command::new(exe())
            .arg("fake-bridge")
            .arg(scene_path("hover_kinect.ron"))
            .args(["--bind", bind, "--truth-endpoint", truth])
            .args(extra),
        err,
    ))
}

fn finish(mut c: Child, err: &Path) {
    let status = c.wait().expect("wait");
    assert!(
        status.success(),
        "control failed ({status}): {}",
        std::fs::read_to_string(err).unwrap_or_default()
    );
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary")).expect("JSON")
}

/// The direct simulated camera, one process, real time (hil/split.ron flies hover_kinect).
fn direct(dir: &Path) -> Value {
    let out = dir.join("direct.json");
    let status = Command::new(exe())
        .arg("run")
        .arg(root().join("hil").join("split.ron"))
        .args(["--role", "all", "--quiet", "--summary"])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("run --role all");
    assert!(status.success());
    summary(&out)
}

/// Within the noise: the rms of hover_kinect is the camera's noise floor (~1 mm); seeds 1–5 give
/// 0.89–1.00 mm and a shift of the measurement's arrival by a millisecond moves it by up to 6 %.
const BRIDGE_RMS_TOLERANCE: f64 = 0.15;

#[test]
fn a_fake_bridge_flies_hover_kinect_like_the_direct_simulated_camera() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("bridge");
    let reference = direct(&dir);
    let (truth, bridge) = (free_endpoint(), free_endpoint());
    let sum = dir.join("bridge.json");
    let err = dir.join("control.err");
    let ctl = control(
        &truth,
        &bridge,
        &["--summary", sum.to_str().expect("utf-8")],
        &err,
    );
    // The rig (hil/bridge_sim.ron) flies with `realism: Bench`, like the direct run's
    // hil/split.ron: the fake bridge renders the same Kinect, with its systematic errors.
    let _fb = fake_bridge(
        &bridge,
        &truth,
        &["--quiet", "--realism", "Bench"],
        &dir.join("fb.err"),
    );
    finish(ctl, &err);
    let s = summary(&sum);
    let cam = &s["realtime"]["camera"];
    let rms = |v: &Value| v["rms_error_m"].as_f64().expect("rms");
    let rel = (rms(&s) - rms(&reference)).abs() / rms(&reference);
    println!(
        "bridge: rms {:.3} mm, {} frames, {} detections, final {:?}; direct: rms {:.3} mm, {} frames, {} detections, final {:?} ({:.1} %); intrinsics {}",
        rms(&s) * 1e3,
        cam["bridge"]["frames"]["received"],
        cam["vision"]["detections"],
        s["final_position_m"],
        rms(&reference) * 1e3,
        reference["frames"],
        reference["detections"],
        reference["final_position_m"],
        rel * 100.0,
        cam["vision"]["intrinsics"]
    );
    assert_eq!(s["crashed"], false);
    assert!(
        rel <= BRIDGE_RMS_TOLERANCE,
        "{} vs {}",
        rms(&s),
        rms(&reference)
    );
    for i in 0..3 {
        let a = s["final_position_m"][i].as_f64().expect("a number");
        let b = reference["final_position_m"][i].as_f64().expect("a number");
        assert!((a - b).abs() < 0.003, "final position {i}: {a} vs {b}");
    }
    let frames = cam["bridge"]["frames"]["received"]
        .as_u64()
        .expect("frames");
    let detections = cam["vision"]["detections"].as_u64().expect("detections");
    let ref_det = reference["detections"].as_u64().expect("detections");
    assert!(frames > 340, "{frames}");
    assert!(
        detections.abs_diff(ref_det) <= ref_det / 20,
        "{detections} vs {ref_det}"
    );
    // The vision used the device's intrinsics from the frames (the scene's, in the fake bridge).
    assert_eq!(cam["vision"]["intrinsics"]["fx"].as_f64(), Some(365.402802));
    assert_eq!(cam["bridge"]["garbage"]["total"], 0);
}

#[test]
fn a_bridge_that_stalls_sends_the_wrong_size_and_dies_is_survived_and_recovered_from() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("bridge-faults");
    let (truth, bridge) = (free_endpoint(), free_endpoint());
    let sum = dir.join("faults.json");
    let log = dir.join("faults.jsonl");
    let err = dir.join("control.err");
    // The bridge's faults in still air with a perfect IMU (`--realism Ideal`): under the rig's
    // Bench realism the open-loop landing after the kill drifts out of the camera's view (3 m
    // in one run) and nothing can find the quad again. That is the safety path's limit under
    // degraded sensing (README "Realism"), not the bridge client's, which this test is about.
    let ctl = control(
        &truth,
        &bridge,
        &[
            "--realism",
            "Ideal",
            "--duration",
            "16",
            "--summary",
            sum.to_str().expect("utf-8"),
            "--log",
            log.to_str().expect("utf-8"),
        ],
        &err,
    );
    // Stalls 4.0–4.6 s (frames stop: stale, hold); 10 frames of the wrong size from 6 s.
    let mut fb = fake_bridge(
        &bridge,
        &truth,
        &["--stall", "4:0.6", "--wrong-size", "6:10"],
        &dir.join("fb1.err"),
    );
    let started = Instant::now();
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("flying")
    {
        assert!(started.elapsed() < Duration::from_secs(30), "never flew");
        std::thread::sleep(Duration::from_millis(20));
    }
    let flying = Instant::now();
    // The bridge dies at 8.5 s and comes back at 11.0 s.
    std::thread::sleep(Duration::from_millis(8500));
    fb.0.kill().expect("kill -9 the bridge");
    let _ = fb.0.wait();
    let killed_at = flying.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(2500));
    let restarted_at = flying.elapsed().as_secs_f64();
    let _fb2 = fake_bridge(&bridge, &truth, &[], &dir.join("fb2.err"));
    finish(ctl, &err);

    let s = summary(&sum);
    let cam = &s["realtime"]["camera"];
    let stale = cam["stale"].as_array().expect("stale stretches");
    let rows = crate::log_rows(&log);
    let first = |from: f64, want: &str| {
        rows.iter()
            .find(|r| r["t_s"].as_f64().expect("t") >= from && r["safety"] == want)
            .map(|r| r["t_s"].as_f64().expect("t"))
    };
    let console = std::fs::read_to_string(&err).unwrap_or_default();
    println!(
        "stale stretches {stale:?}; garbage {}; killed {killed_at:.2} s, restarted {restarted_at:.2} s; holding after the stall {:?}, landing after the kill {:?}, tracking again {:?}; final {:?}",
        cam["bridge"]["garbage"],
        first(4.0, "holding"),
        first(killed_at, "landing"),
        first(restarted_at, "tracking"),
        s["final_position_m"]
    );
    assert_eq!(s["crashed"], false);
    // The stall: stale within ~100 ms of the last frame, the controller holds, and frames return.
    let stall = stale
        .iter()
        .find(|e| (3.9..4.6).contains(&e["detected_at_s"].as_f64().expect("t")))
        .unwrap_or_else(|| panic!("no stale stretch at the stall: {stale:?}"));
    assert!(
        stall["after_last_ms"].as_u64().expect("ms") <= 110,
        "{stall}"
    );
    assert!(stall["recovered_at_s"].as_f64().is_some(), "{stall}");
    let hold = first(4.0, "holding").expect("holds during the stall");
    assert!(hold < 4.7, "{hold}");
    // The wrong-size frames: counted under `size`, named in the log line, nothing else broke.
    assert_eq!(cam["bridge"]["garbage"]["by_reason"]["size"], 10, "{cam}");
    assert!(
        console.contains("expected 512×424×2 = 434176") || console.contains("434176"),
        "{console}"
    );
    // The death: stale, hold, land; the restarted bridge brings tracking back.
    let death = stale
        .iter()
        .find(|e| e["detected_at_s"].as_f64().expect("t") > killed_at - 0.3)
        .unwrap_or_else(|| panic!("no stale stretch after the kill: {stale:?}"));
    assert!(
        death["after_last_ms"].as_u64().expect("ms") <= 110,
        "{death}"
    );
    let land = first(killed_at, "landing").expect("lands while the bridge is dead");
    let back = first(restarted_at, "tracking").expect("tracks again");
    assert!(land < restarted_at && back > land, "{land} {back}");
    assert!(
        death["recovered_at_s"].as_f64().is_some(),
        "frames came back: {death}"
    );
    assert!(
        cam["bridge"]["frames"]["restarts"].as_u64().expect("n") >= 1,
        "the bridge's sequence restarted: {cam}"
    );
    let z = s["final_position_m"][2].as_f64().expect("z");
    assert!((z - 1.0).abs() < 0.05, "back at 1 m: {z}");
}

#[test]
fn bad_bridge_flags_are_named() {
    let run = |args: &[&str]| {
        let out = Command::new(exe()).args(args).output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let scene = scene_path("hover_kinect.ron");
    let scene = scene.to_str().expect("utf-8");
    let (code, err) = run(&["fake-bridge", scene, "--stall", "soon"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--stall `soon`"), "{err}");
    let (code, err) = run(&["fake-bridge", scene, "--bind", "7720"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--bind `7720`: not a ZMQ endpoint"), "{err}");
    let oracle = scene_path("hover.ron");
    let (code, err) = run(&[
        "fake-bridge",
        oracle.to_str().expect("utf-8"),
        "--duration",
        "1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has no Kinect"), "{err}");
    let rig = bridge_rig();
    let (code, err) = run(&["run", rig.to_str().expect("utf-8"), "--role", "vision"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("vision runs in the control process"), "{err}");
}

#[test]
fn record_then_replay_gives_bit_identical_vision_and_a_cut_recording_still_replays() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("bridge-record");
    let bridge = free_endpoint();
    // Open loop: the quad rests out of view for 1 s, then flies the figure-8's setpoints.
    let _fb = Kill(
        Command::new(exe())
            .arg("fake-bridge")
            .arg(scene_path("figure8_kinect.ron"))
            .args(["--bind", &bridge, "--duration", "12", "--quiet"])
            .stdout(Stdio::null())
            .spawn()
            .expect("fake bridge"),
    );
    let session = dir.join("session.mcap");
    let snapshot = dir.join("view.png");
    let out = Command::new(exe())
        .arg("record")
        .arg(bridge_rig())
        .args([
            "--bridge-endpoint",
            &bridge,
            "--duration",
            "7",
            "--quiet",
            "--out",
        ])
        .arg(&session)
        .arg("--snapshot")
        .arg(&snapshot)
        .output()
        .expect("record");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{said}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("intrinsics fx 365.4028"), "{said}");
    // The camera view: a false-colour PNG of the newest frame, 512×424.
    let png = std::fs::read(&snapshot).expect("snapshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().expect("width")),
        u32::from_be_bytes(png[20..24].try_into().expect("height")),
    );
    assert_eq!((w, h), (512, 424));

    let replay = |path: &Path| {
        let out = Command::new(exe())
            .arg("replay")
            .arg(path)
            .output()
            .expect("replay");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, stderr) = replay(&session);
    println!("{stdout}");
    assert_eq!(code, Some(0), "{stderr}");
    let number = |s: &str, before: &str| -> u64 {
        let i = s
            .find(before)
            .unwrap_or_else(|| panic!("`{before}` in {s}"));
        s[..i]
            .split_whitespace()
            .last()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("a number before `{before}` in {s}"))
    };
    let frames = number(&stdout, "frames replayed");
    let identical = number(&stdout, "detections identical");
    let found = number(&stdout, "found");
    assert!(frames > 180, "{stdout}");
    assert_eq!(
        identical, frames,
        "every frame's result bit-identical: {stdout}"
    );
    assert!(found > frames / 2, "the quad was seen: {stdout}");
    assert!(stdout.contains("0 different"), "{stdout}");

    // Cut the file at two thirds: what precedes the cut replays, and the damage is said.
    let bytes = std::fs::read(&session).expect("read");
    let cut = dir.join("cut.mcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let (code, stdout, stderr) = replay(&cut);
    println!("cut: {stdout} / {stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("replaying what was read"), "{stderr}");
    let cut_frames = number(&stdout, "frames replayed");
    assert!(
        cut_frames > frames / 2 && cut_frames < frames,
        "{cut_frames} of {frames}"
    );
    // The newest frame may have lost its detection to the cut: not compared, never different.
    let unrecorded = number(&stdout, "frames without a recorded detection");
    assert_eq!(
        number(&stdout, "detections identical") + unrecorded,
        cut_frames,
        "{stdout}"
    );
    assert!(unrecorded <= 1, "{stdout}");
    assert!(stdout.contains("0 different"), "{stdout}");

    // Not a recording at all: named, exit 2.
    let junk = dir.join("junk.mcap");
    std::fs::write(&junk, b"definitely not mcap").expect("write");
    let (code, _, stderr) = replay(&junk);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("junk.mcap"), "{stderr}");

    // The recording as a camera: replayed through the protocol and recorded again, the vision
    // gives the same detections once more.
    let bridge2 = free_endpoint();
    let _replayer = Kill(
        Command::new(exe())
            .arg("fake-bridge")
            .args([
                "--replay",
                session.to_str().expect("utf-8"),
                "--bind",
                &bridge2,
                "--quiet",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("fake bridge --replay"),
    );
    let again = dir.join("again.mcap");
    let out = Command::new(exe())
        .arg("record")
        .arg(bridge_rig())
        .args([
            "--bridge-endpoint",
            &bridge2,
            "--duration",
            "9",
            "--quiet",
            "--out",
        ])
        .arg(&again)
        .output()
        .expect("record the replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, stdout, stderr) = replay(&again);
    println!("re-recorded: {stdout}");
    assert_eq!(code, Some(0), "{stderr}");
    let re_frames = number(&stdout, "frames replayed");
    assert_eq!(number(&stdout, "detections identical"), re_frames);
    // (A subscriber may miss the first frames while it connects, or the last if the recorder
    // stops first.)
    assert!(
        re_frames * 10 >= frames * 9,
        "{re_frames} of {frames} came through"
    );
    // Sessions are large (~25 MB/s of raw depth and IR): do not leave ~0.5 GB behind.
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rig file in `dir` (its scene: the bundled one by absolute path).
fn write_rig(
    dir: &Path,
    name: &str,
    scene: &str,
    link: &str,
    camera: &str,
    shadow: bool,
) -> PathBuf {
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(
        &path,
        format!(
            "(name: \"{name}\", scene: \"{}\", link: \"{link}\", architecture: Offboard, camera: {camera}, shadow: {shadow})",
            scene_path(scene).display()
        ),
    )
    .expect("write rig");
    path
}

#[test]
fn hil_flies_a_crazyflie_behind_a_link_with_the_camera_from_a_bridge() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("hil-bridge");
    let sitl = crate::sitl::start_sitl(
        crate::sitl::free_udp_port(),
        &[
            "--scene",
            scene_path("hover_kinect.ron").to_str().expect("utf-8"),
        ],
    );
    let (truth, bridge) = (free_endpoint(), free_endpoint());
    let rig = write_rig(
        &dir,
        "hil_bridge",
        "hover_kinect.ron",
        &format!("udp://127.0.0.1:{}", sitl.port),
        &format!("KinectBridge(endpoint: \"{bridge}\")"),
        false,
    );
    let sum = dir.join("hil.json");
    let err = dir.join("hil.err");
    let hil = spawn_logged(
        Command::new(exe())
            .arg("hil")
            .arg(&rig)
            .args(["--truth-endpoint", &truth, "--quiet", "--summary"])
            .arg(&sum),
        &err,
    );
    let _fb = fake_bridge(&bridge, &truth, &["--quiet"], &dir.join("fb.err"));
    finish(hil, &err);
    let s = summary(&sum);
    let console = std::fs::read_to_string(&err).unwrap_or_default();
    println!(
        "hil over udp with a bridge camera: rms {:.3} mm, {} frames, {} detections, final {:?}, {} packets",
        s["rms_error_m"].as_f64().expect("rms") * 1e3,
        s["frames"],
        s["detections"],
        s["final_position_m"],
        s["radio_packets_sent"]
    );
    assert_eq!(s["crashed"], false, "{console}");
    assert!(s["detections"].as_u64().expect("n") > 300, "{console}");
    assert!(s["rms_error_m"].as_f64().expect("rms") < 0.003, "{console}");
    let z = s["final_position_m"][2].as_f64().expect("z");
    assert!((z - 1.0).abs() < 0.02, "{z}");
    assert!(console.contains("camera: bridge"), "{console}");
}

#[test]
fn hil_in_shadow_flies_the_simulation_and_the_crazyflie_behind_the_link_gets_every_setpoint() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("hil-shadow");
    let sitl_log = dir.join("sitl.jsonl");
    let sitl = crate::sitl::start_sitl(
        crate::sitl::free_udp_port(),
        &[
            "--scene",
            scene_path("hover_kinect.ron").to_str().expect("utf-8"),
            "--log",
            sitl_log.to_str().expect("utf-8"),
        ],
    );
    let rig = write_rig(
        &dir,
        "shadow",
        "hover_kinect.ron",
        &format!("udp://127.0.0.1:{}", sitl.port),
        "Simulated",
        true,
    );
    let sum = dir.join("shadow.json");
    let out = Command::new(exe())
        .arg("hil")
        .arg(&rig)
        .arg("--summary")
        .arg(&sum)
        .output()
        .expect("hil");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("SHADOW") && stderr.contains("propellers must be OFF"),
        "{stderr}"
    );
    let s = summary(&sum);
    let sh = &s["realtime"]["shadow"];
    assert_eq!(s["crashed"], false);
    assert!(sh["packets_sent"].as_u64().expect("n") > 1000, "{sh}");
    assert_eq!(sh["errors"], 0, "{sh}");
    drop(sitl);
    // The simulated Crazyflie behind the link flew on the shadowed setpoints (open loop: they
    // are the in-process loop's, so it climbs; it need not hold 1 m).
    let max_z = std::fs::read_to_string(&sitl_log)
        .expect("sitl log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| r["pos_m"][2].as_f64())
        .fold(0.0f64, f64::max);
    println!(
        "shadow: {} packets; the quad behind the link rose to {max_z:.2} m",
        sh["packets_sent"]
    );
    assert!(max_z > 0.3, "{max_z}");

    // A bridge camera in shadow is refused, saying why.
    let bad = write_rig(
        &dir,
        "shadow_bridge",
        "hover_kinect.ron",
        "udp://127.0.0.1:9",
        "KinectBridge(endpoint: \"tcp://127.0.0.1:7720\")",
        true,
    );
    let out = Command::new(exe())
        .arg("hil")
        .arg(&bad)
        .output()
        .expect("hil");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("shadow flies the simulated world and camera"),
        "{stderr}"
    );
}

#[test]
fn hil_takes_a_live_teacher_who_takes_over_and_e_stops() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("hil-teacher");
    let sitl = crate::sitl::start_sitl(
        crate::sitl::free_udp_port(),
        &[
            "--scene",
            scene_path("hover_kinect.ron").to_str().expect("utf-8"),
        ],
    );
    let rig = write_rig(
        &dir,
        "teacher_udp",
        "hover_kinect.ron",
        &format!("udp://127.0.0.1:{}", sitl.port),
        "Simulated",
        false,
    );
    let teacher = free_endpoint();
    let (sum, log, err) = (dir.join("t.json"), dir.join("t.jsonl"), dir.join("t.err"));
    let hil = spawn_logged(
        Command::new(exe())
            .arg("hil")
            .arg(&rig)
            .args(["--teacher-zmq", &teacher, "--quiet", "--summary"])
            .arg(&sum)
            .arg("--log")
            .arg(&log),
        &err,
    );
    // The person: the cfclient input format over PUSH, 50 Hz. Hands off until 6 s, then holds the
    // mux switch with hover thrust, then hits the e-stop at 9 s.
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).expect("socket");
    push.set_linger(0).expect("linger");
    push.connect(&teacher).expect("connect");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        let t = started.elapsed().as_secs_f64();
        let (muxswitch, estop) = (t >= 6.0, t >= 9.0);
        let msg = format!(
            r#"{{"version":1,"client_name":"test","ctrl":{{"roll":0.0,"pitch":0.0,"yaw":0.0,"thrust":55.9,"muxswitch":{muxswitch},"estop":{estop}}}}}"#
        );
        let _ = push.send(msg.as_bytes(), zmq::DONTWAIT);
        std::thread::sleep(Duration::from_millis(20));
    }
    push.send(b"not json".as_slice(), 0).expect("send garbage");
    finish(hil, &err);
    let console = std::fs::read_to_string(&err).unwrap_or_default();
    let rows = crate::log_rows(&log);
    let sources_at = |t: f64| {
        rows.iter()
            .find(|r| r["t_s"].as_f64().expect("t") >= t)
            .map(|r| r["mux_sources"].clone())
            .unwrap_or(Value::Null)
    };
    let s = summary(&sum);
    println!(
        "live teacher: sources at 4 s {}, 7.5 s {}, 11 s {}; final {:?}; {}",
        sources_at(4.0),
        sources_at(7.5),
        sources_at(11.0),
        s["final_position_m"],
        console
            .lines()
            .filter(|l| l.contains("teacher"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(console.contains("live teacher on"), "{console}");
    // The flight clock starts a moment after the sender: allow a second either way.
    assert_eq!(
        sources_at(4.0),
        serde_json::json!(["student", "student", "student", "student"])
    );
    assert_eq!(
        sources_at(7.5),
        serde_json::json!(["teacher", "teacher", "teacher", "teacher"])
    );
    assert_eq!(
        sources_at(11.0),
        serde_json::json!(["estop", "estop", "estop", "estop"])
    );
    let z = s["final_position_m"][2].as_f64().expect("z");
    assert!(
        z < 0.1,
        "motors cut by the e-stop: the quad came down ({z} m)"
    );
}

#[test]
fn fly_publishes_every_log_row_for_a_live_viewer() {
    let _slot = crate::realtime_slot();
    let endpoint = free_endpoint();
    let mut fly = Kill(
        Command::new(exe())
            .arg("fly")
            .arg(scene_path("step.ron"))
            .args(["--realtime", "--quiet", "--state-out", &endpoint])
            .stdout(Stdio::null())
            .spawn()
            .expect("fly"),
    );
    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB).expect("socket");
    sub.set_linger(0).expect("linger");
    sub.set_subscribe(b"flight/").expect("subscribe");
    sub.connect(&endpoint).expect("connect");
    let (mut rows, mut headers, mut last_t) = (0u64, 0u64, -1.0f64);
    let mut max_x = f64::MIN;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if sub.poll(zmq::POLLIN, 200).expect("poll") == 0 {
            if fly.0.try_wait().expect("wait").is_some() {
                break;
            }
            continue;
        }
        let frames = sub.recv_multipart(0).expect("recv");
        let env: Value = serde_json::from_slice(&frames[1]).expect("JSON envelope");
        match frames[0].as_slice() {
            b"flight/header" => {
                headers += 1;
                assert_eq!(env["payload"]["scene"], "step");
            }
            b"flight/state" => {
                let t = env["payload"]["t_s"].as_f64().expect("t_s");
                assert!(t > last_t, "rows in time order: {t} after {last_t}");
                last_t = t;
                rows += 1;
                max_x = max_x.max(env["payload"]["pos_m"][0].as_f64().expect("x"));
            }
            other => panic!("unexpected topic {other:?}"),
        }
    }
    println!(
        "live rows: {rows} rows up to t = {last_t:.2} s, {headers} headers, max x {max_x:.3} m"
    );
    assert!(rows > 500, "{rows}");
    assert!(headers >= 5, "{headers}");
    assert!(max_x > 0.45, "the step to 0.5 m came through: {max_x}");
}

#[test]
fn fly_takes_a_live_teacher_as_the_live_viewer_sends_it() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("fly-teacher");
    let teacher = free_endpoint();
    let log = dir.join("t.jsonl");
    let fly = Kill(
        Command::new(exe())
            .arg("fly")
            .arg(scene_path("hover.ron"))
            .args(["--quiet", "--teacher-in", &teacher, "--log"])
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .expect("fly"),
    );
    // The viewer's keyboard messages: hands off, then Tab held from 4 s, then X at 7 s.
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).expect("socket");
    push.set_linger(0).expect("linger");
    push.connect(&teacher).expect("connect");
    let started = Instant::now();
    let mut fly = fly;
    while fly.0.try_wait().expect("wait").is_none() && started.elapsed() < Duration::from_secs(30) {
        let t = started.elapsed().as_secs_f64();
        let msg = format!(
            r#"{{"version":1,"client_name":"depthpilot-viewer keyboard","ctrl":{{"roll":0,"pitch":0,"yaw":0,"thrust":55.9,"muxswitch":{},"estop":{}}}}}"#,
            t >= 4.0,
            t >= 7.0
        );
        let _ = push.send(msg.as_bytes(), zmq::DONTWAIT);
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows = crate::log_rows(&log);
    let at = |t: f64| {
        rows.iter()
            .find(|r| r["t_s"].as_f64().expect("t") >= t)
            .map(|r| r["mux_sources"][0].clone())
            .unwrap_or(Value::Null)
    };
    // The e-stop cuts the motors: the quad drops and the flight ends there.
    let last = rows
        .last()
        .map(|r| r["mux_sources"][0].clone())
        .unwrap_or(Value::Null);
    println!(
        "fly --teacher-in: roll source at 2.5 s {}, 5.5 s {}, at the end {last}",
        at(2.5),
        at(5.5)
    );
    assert_eq!(at(2.5), "student");
    assert_eq!(at(5.5), "teacher");
    assert_eq!(last, "estop");
}
