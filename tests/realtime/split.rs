//! A flight split over processes on the ZMQ bus (issue 7, lines 3 and 5): the vision in one
//! process, control + mux + radio + world in another; the vision dies and comes back; garbage on
//! the bus; the same over a veth pair between two network namespaces where the machine allows.

use crate::sitl::Kill;
use crate::temp_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_depthpilot")
}

fn rig() -> PathBuf {
    crate::root().join("hil").join("split.ron")
}

/// The split flying a figure-8 (22 s): the rms comparisons use it.
fn figure8_rig() -> PathBuf {
    crate::root().join("hil").join("split_figure8.ron")
}

/// Two free TCP endpoints on loopback.
fn endpoints() -> (String, String) {
    let port = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    (
        format!("tcp://127.0.0.1:{}", port()),
        format!("tcp://127.0.0.1:{}", port()),
    )
}

fn role(prefix: &[&str], role: &str, truth: &str, meas: &str, extra: &[&str]) -> Command {
    role_on(&rig(), prefix, role, truth, meas, extra)
}

fn role_on(
    rig: &Path,
    prefix: &[&str],
    role: &str,
    truth: &str,
    meas: &str,
    extra: &[&str],
) -> Command {
    let mut c = Command::new(prefix.first().copied().unwrap_or(exe()));
    if !prefix.is_empty() {
        c.args(&prefix[1..]).arg(exe());
    }
    c.arg("run")
        .arg(rig)
        .args(["--role", role, "--truth-endpoint", truth])
        .args(["--measurement-endpoint", meas])
        .args(extra);
    c
}

fn spawn(mut c: Command, err: &Path) -> Child {
    c.stdout(std::fs::File::create(err.with_extension("out")).expect("stdout file"))
        .stderr(std::fs::File::create(err).expect("stderr file"))
        .spawn()
        .expect("start depthpilot run")
}

fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no summary at {}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary is JSON")
}

fn wait(mut c: Child, what: &str, err: &Path) {
    let status = c.wait().expect("wait");
    assert!(
        status.success(),
        "{what} failed ({status}): {}",
        std::fs::read_to_string(err).unwrap_or_default()
    );
}

/// One split flight (22 s of figure8_kinect): control here, vision there.
fn split_flight(
    dir: &Path,
    tag: &str,
    ctl_prefix: &[&str],
    vis_prefix: &[&str],
    truth: &str,
    meas: &str,
) -> Value {
    split_flight_with(dir, tag, ctl_prefix, vis_prefix, truth, meas, &[], &[])
}

/// [`split_flight`] with extra arguments for the control and the vision process.
#[allow(clippy::too_many_arguments)]
fn split_flight_with(
    dir: &Path,
    tag: &str,
    ctl_prefix: &[&str],
    vis_prefix: &[&str],
    truth: &str,
    meas: &str,
    ctl_extra: &[&str],
    vis_extra: &[&str],
) -> Value {
    let sum = dir.join(format!("{tag}.json"));
    let ctl_err = dir.join(format!("{tag}-control.err"));
    let control = spawn(
        role_on(
            &figure8_rig(),
            ctl_prefix,
            "control",
            truth,
            meas,
            &[
                &["--quiet", "--summary", sum.to_str().expect("utf-8 path")],
                ctl_extra,
            ]
            .concat(),
        ),
        &ctl_err,
    );
    let vision = Kill(spawn(
        role_on(
            &figure8_rig(),
            vis_prefix,
            "vision",
            truth,
            meas,
            &[&["--quiet"], vis_extra].concat(),
        ),
        &dir.join(format!("{tag}-vision.err")),
    ));
    wait(control, "the control process", &ctl_err);
    drop(vision);
    summary(&sum)
}

/// The split run's rms may differ from the one-process run's by this much (issue 7: 10 %).
/// Measured on figure8_kinect: see the test output.
const SPLIT_RMS_TOLERANCE: f64 = 0.10;

/// The one-process real-time flight of the figure-8 rig, flown once for the tests that compare
/// with it (it is deterministic: the same every time).
fn one_process() -> Value {
    static ONE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    ONE.get_or_init(|| {
        let dir = temp_dir("split-one");
        let one = dir.join("one.json");
        let status = role_on(
            &figure8_rig(),
            &[],
            "all",
            "tcp://127.0.0.1:1",
            "tcp://127.0.0.1:2",
            &["--quiet", "--summary", one.to_str().expect("utf-8 path")],
        )
        .status()
        .expect("run --role all");
        assert!(status.success());
        summary(&one)
    })
    .clone()
}

fn rms(s: &Value) -> f64 {
    s["rms_error_m"].as_f64().expect("rms_error_m")
}

#[test]
fn split_run_over_tcp_flies_like_one_process_and_counts_garbage_on_the_bus() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("split");
    let one = one_process();

    // Split, with a peer that sends garbage to the measurement topic meanwhile.
    let (truth, meas) = endpoints();
    let ctx = zmq::Context::new();
    let junk = ctx.socket(zmq::PUB).expect("socket");
    junk.set_linger(0).expect("linger");
    junk.connect(&meas).expect("connect");
    let sender = {
        let junk_frames: Vec<Vec<Vec<u8>>> = vec![
            vec![b"vision/measurement".to_vec(), b"not json".to_vec()],
            vec![b"vision/measurement".to_vec()],
            vec![b"vision/measurement".to_vec(), br#"{"topic":"vision/measurement","version":2,"seq":1,"stamp_ns":0,"payload":{}}"#.to_vec()],
            vec![b"vision/measurement".to_vec(), br#"{"topic":"vision/measurement","version":1,"seq":1,"stamp_ns":0,"payload":{"capture_ns":0}}"#.to_vec()],
            vec![vec![0xff, 0xfe], b"{}".to_vec()],
            vec![b"sim/unknown".to_vec(), b"[1,2,3]".to_vec()],
        ];
        std::thread::spawn(move || {
            // Slow joiner: PUB drops until the connection is up; send each kind a few times
            // during the flight, well after it started.
            std::thread::sleep(Duration::from_secs(4));
            let mut sent = 0;
            for _ in 0..5 {
                for f in &junk_frames {
                    junk.send_multipart(f.iter(), 0).expect("send");
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            sent
        })
    };
    let split = split_flight(&dir, "split", &[], &[], &truth, &meas);
    let sent = sender.join().expect("sender");
    let bus = &split["realtime"]["bus"];
    println!(
        "one process: rms {:.3} mm, p50 {:.0} µs, p99 {:.0} µs, factor {:.4}; split over TCP: rms {:.3} mm, p99 {:.0} µs (control side), factor {:.4}; garbage counted {} of {sent} sent: {}",
        rms(&one) * 1e3,
        one["realtime"]["latency_p50_us"]
            .as_f64()
            .expect("a number"),
        one["realtime"]["latency_p99_us"]
            .as_f64()
            .expect("a number"),
        one["realtime"]["realtime_factor"]
            .as_f64()
            .expect("a number"),
        rms(&split) * 1e3,
        split["realtime"]["latency_p99_us"]
            .as_f64()
            .expect("a number"),
        split["realtime"]["realtime_factor"]
            .as_f64()
            .expect("a number"),
        bus["garbage"]["total"],
        bus["garbage"]["by_reason"]
    );
    assert_eq!(split["crashed"], false);
    assert_eq!(one["crashed"], false);
    let rel = (rms(&split) - rms(&one)).abs() / rms(&one);
    assert!(
        rel <= SPLIT_RMS_TOLERANCE,
        "split rms {} vs one process {} ({:.1} %)",
        rms(&split),
        rms(&one),
        rel * 100.0
    );
    assert!(
        bus["measurements"]["received"].as_u64().expect("a count") > 300,
        "{bus}"
    );
    assert_eq!(
        bus["garbage"]["total"].as_u64(),
        Some(sent as u64),
        "every garbage message counted: {bus}"
    );
    for reason in ["json", "frames", "version", "schema", "utf8", "topic"] {
        assert!(
            bus["garbage"]["by_reason"][reason].as_u64().unwrap_or(0) > 0,
            "{reason}: {bus}"
        );
    }
}

#[test]
fn the_vision_process_dies_the_quad_holds_and_lands_and_tracking_resumes_when_it_returns() {
    let _slot = crate::realtime_slot();
    // Both processes fly `--realism Ideal`: under the rig's Bench realism the blind landing
    // drifts out of the camera's view while the vision is dead, and the restarted vision cannot
    // find the quad (README "Realism"). This test is about the process death and the restart.
    let dir = temp_dir("split-kill");
    let (truth, meas) = endpoints();
    let sum = dir.join("kill.json");
    let log = dir.join("kill.jsonl");
    let ctl_err = dir.join("control.err");
    let control = spawn(
        role(
            &[],
            "control",
            &truth,
            &meas,
            &[
                "--realism",
                "Ideal",
                "--quiet",
                "--duration",
                "16",
                "--summary",
                sum.to_str().expect("utf-8 path"),
                "--log",
                log.to_str().expect("utf-8 path"),
            ],
        ),
        &ctl_err,
    );
    // The vision saves its learnt background; the restarted one loads it.
    let bg = dir.join("background.dpbg");
    let bg_arg = bg.to_str().expect("utf-8 path");
    let vision = spawn(
        role(
            &[],
            "vision",
            &truth,
            &meas,
            &["--realism", "Ideal", "--quiet", "--background", bg_arg],
        ),
        &dir.join("v1.err"),
    );
    // The control side waits for the vision before its clock starts; give it that moment.
    let started = Instant::now();
    while !std::fs::read_to_string(&ctl_err)
        .unwrap_or_default()
        .contains("flying")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "control never started flying"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let flying = Instant::now();
    std::thread::sleep(Duration::from_millis(6500));
    let mut vision = Kill(vision);
    vision.0.kill().expect("kill -9 the vision process");
    let killed_at = flying.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(2500));
    let restarted_at = flying.elapsed().as_secs_f64();
    let _vision2 = Kill(spawn(
        role(
            &[],
            "vision",
            &truth,
            &meas,
            &["--realism", "Ideal", "--quiet", "--background", bg_arg],
        ),
        &dir.join("v2.err"),
    ));
    wait(control, "the control process", &ctl_err);
    let v1 = std::fs::read_to_string(dir.join("v1.err")).unwrap_or_default();
    let v2 = std::fs::read_to_string(dir.join("v2.err")).unwrap_or_default();
    assert!(v1.contains("saved it to"), "the first vision saved: {v1}");
    assert!(
        v2.contains("loaded the background from"),
        "the restarted vision loaded: {v2}"
    );

    let s = summary(&sum);
    let stale = &s["realtime"]["bus"]["stale"];
    let first = stale
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["detected_at_s"].as_f64().expect("a number") > killed_at - 0.2)
        })
        .unwrap_or_else(|| panic!("no stale stretch after the kill at {killed_at:.2} s: {stale}"));
    let after_last_ms = first["after_last_ms"].as_f64().expect("a number");
    let detected = first["detected_at_s"].as_f64().expect("a number");
    // The last measurement came before the kill, so this bounds the time from the kill too.
    assert!(
        after_last_ms <= 100.0,
        "stale detected {after_last_ms} ms after the last measurement"
    );
    let recovered = first["recovered_at_s"]
        .as_f64()
        .expect("measurements came back");
    let rows = crate::log_rows(&log);
    let state_after = |t: f64, want: &str| {
        rows.iter()
            .find(|r| r["t_s"].as_f64().expect("a number") >= t && r["safety"] == want)
            .map(|r| r["t_s"].as_f64().expect("a number"))
    };
    let holding = state_after(detected, "holding").expect("holds after the vision died");
    let landing = state_after(holding, "landing").expect("then lands");
    let tracking = state_after(landing, "tracking").expect("tracks again once the vision is back");
    let low = rows
        .iter()
        .filter(|r| (landing..tracking).contains(&r["t_s"].as_f64().expect("a number")))
        .map(|r| r["pos_m"][2].as_f64().expect("a number"))
        .fold(f64::INFINITY, f64::min);
    let last = rows.last().expect("rows");
    println!(
        "killed at {killed_at:.2} s; stale detected at {detected:.3} s ({after_last_ms:.0} ms after the last measurement); holding at {holding:.2} s, landing at {landing:.2} s (down to {low:.2} m); restarted at {restarted_at:.2} s; measurements back at {recovered:.2} s, tracking at {tracking:.2} s; final z {:.3} m, crashed {}",
        last["pos_m"][2], s["crashed"]
    );
    assert_eq!(s["crashed"], false, "{s}");
    assert!(low < 0.95, "it descended while landing: {low}");
    assert_eq!(s["final_safety_state"], "tracking");
    assert!(
        (last["pos_m"][2].as_f64().expect("a number") - 1.0).abs() < 0.1,
        "back at its setpoint: {last}"
    );
}

/// Runs `ip` with these arguments; Err with what it said.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two namespaces joined by a veth pair; removed when dropped.
struct Netns {
    a: String,
    b: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn netns_pair() -> Result<Netns, String> {
    let id = std::process::id() % 10_000;
    let ns = Netns {
        a: format!("dpctl{id}"),
        b: format!("dpvis{id}"),
    };
    let (va, vb) = (format!("dpa{id}"), format!("dpb{id}"));
    ip(&["netns", "add", &ns.a])?;
    ip(&["netns", "add", &ns.b])?;
    ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
    ip(&["link", "set", &va, "netns", &ns.a])?;
    ip(&["link", "set", &vb, "netns", &ns.b])?;
    ip(&["-n", &ns.a, "addr", "add", "10.231.7.1/24", "dev", &va])?;
    ip(&["-n", &ns.b, "addr", "add", "10.231.7.2/24", "dev", &vb])?;
    for (n, v) in [(&ns.a, &va), (&ns.b, &vb)] {
        ip(&["-n", n, "link", "set", v, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
    }
    Ok(ns)
}

#[test]
fn split_run_over_a_veth_pair_between_two_network_namespaces() {
    let _slot = crate::realtime_slot();
    let ns = match netns_pair() {
        Ok(ns) => ns,
        Err(e) => {
            println!(
                "skipped: network namespaces are not available here ({e}); needs root and `ip netns`"
            );
            return;
        }
    };
    let dir = temp_dir("split-netns");
    let one = one_process();
    let (truth, meas) = ("tcp://10.231.7.1:7710", "tcp://10.231.7.1:7711");
    // The NULL bus on a non-loopback address: refused without --insecure (README "Security");
    // the CURVE test below flies the same without it.
    let s = split_flight_with(
        &dir,
        "netns",
        &["ip", "netns", "exec", &ns.a],
        &["ip", "netns", "exec", &ns.b],
        truth,
        meas,
        &["--insecure"],
        &[],
    );
    let rel = (rms(&s) - rms(&one)).abs() / rms(&one);
    println!(
        "over veth between namespaces {} (control, 10.231.7.1) and {} (vision, 10.231.7.2): rms {:.3} mm vs {:.3} mm in one process ({:.1} %), {} measurements",
        ns.a,
        ns.b,
        rms(&s) * 1e3,
        rms(&one) * 1e3,
        rel * 100.0,
        s["realtime"]["bus"]["measurements"]["received"]
    );
    assert_eq!(s["crashed"], false);
    assert!(rel <= SPLIT_RMS_TOLERANCE, "{} vs {}", rms(&s), rms(&one));
}

/// CURVE on the bus may cost this much rms against NULL on loopback (issue 20: 5 %).
const CURVE_RMS_TOLERANCE: f64 = 0.05;

/// Issue 20: the two-host split (network namespaces) flies with CURVE on (`run --keys`, keys
/// made with the curve API: the control host holds the server pair and allow/bus/vision.pub,
/// the vision host its own pair and server.pub), with rms within 5 % of the NULL split on
/// loopback; the control side binds 10.231.7.1 without --insecure.
#[test]
fn split_run_with_curve_over_a_veth_pair_flies_like_null_on_loopback() {
    use depthpilot_runtime::curve::write_keypair;
    let _slot = crate::realtime_slot();
    let ns = match netns_pair() {
        Ok(ns) => ns,
        Err(e) => {
            println!(
                "skipped: network namespaces are not available here ({e}); needs root and `ip netns`"
            );
            return;
        }
    };
    let dir = temp_dir("split-netns-curve");
    let (ctl_keys, vis_keys) = (dir.join("control-keys"), dir.join("vision-keys"));
    let (_, server_pub, _) = write_keypair(&ctl_keys, "server", false).expect("server keys");
    let (_, vision_pub, _) = write_keypair(&vis_keys, "vision", false).expect("vision keys");
    std::fs::create_dir_all(ctl_keys.join("allow/bus")).expect("mkdir");
    std::fs::copy(&vision_pub, ctl_keys.join("allow/bus/vision.pub")).expect("allow vision");
    std::fs::copy(&server_pub, vis_keys.join("server.pub")).expect("server.pub to the vision");

    let (truth, meas) = endpoints();
    let null = split_flight(&dir, "null-loopback", &[], &[], &truth, &meas);
    let curve = split_flight_with(
        &dir,
        "curve-netns",
        &["ip", "netns", "exec", &ns.a],
        &["ip", "netns", "exec", &ns.b],
        "tcp://10.231.7.1:7710",
        "tcp://10.231.7.1:7711",
        &["--keys", ctl_keys.to_str().expect("utf-8 path")],
        &["--keys", vis_keys.to_str().expect("utf-8 path")],
    );
    let rel = (rms(&curve) - rms(&null)).abs() / rms(&null);
    let auth = &curve["realtime"]["bus"]["auth"];
    println!(
        "CURVE over veth ({} → {}): rms {:.3} mm vs NULL on loopback {:.3} mm ({:.1} %); {} and {} measurements; bus handshakes {auth}",
        ns.b,
        ns.a,
        rms(&curve) * 1e3,
        rms(&null) * 1e3,
        rel * 100.0,
        curve["realtime"]["bus"]["measurements"]["received"],
        null["realtime"]["bus"]["measurements"]["received"],
    );
    assert_eq!(curve["crashed"], false, "{curve}");
    assert_eq!(
        null["realtime"]["bus"]["auth"],
        Value::Null,
        "NULL has no CURVE counts"
    );
    // The vision's two sockets, each accepted once; nothing denied.
    assert_eq!(auth["accepted"], 2, "{auth}");
    assert_eq!(auth["denied"], 0, "{auth}");
    assert_eq!(auth["handshake_failures"], 0, "{auth}");
    assert!(
        rel <= CURVE_RMS_TOLERANCE,
        "CURVE {} vs NULL {}",
        rms(&curve),
        rms(&null)
    );
}

#[test]
fn the_vision_role_counts_garbage_on_the_truth_topic_and_keeps_working() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("split-vision-garbage");
    let (truth, meas) = endpoints();
    // A fake control side: binds both endpoints, publishes truth (and garbage).
    let ctx = zmq::Context::new();
    let tpub = ctx.socket(zmq::PUB).expect("pub");
    tpub.set_linger(0).expect("linger");
    tpub.bind(&truth).expect("bind truth");
    let msub = ctx.socket(zmq::SUB).expect("sub");
    msub.set_linger(0).expect("linger");
    msub.bind(&meas).expect("bind meas");
    msub.set_subscribe(b"").expect("subscribe");
    let vision = Kill(spawn(
        role(&[], "vision", &truth, &meas, &["--duration", "6"]),
        &dir.join("vision.err"),
    ));
    // The quad stands beside the camera while it learns the background, then hovers above it.
    let truth_at = |t_ns: u64, seq: u64| {
        let pos = if t_ns < 1_000_000_000 {
            [0.35, 0.0, 0.015]
        } else {
            [0.0, 0.0, 1.0]
        };
        let payload = serde_json::json!({"t_ns": t_ns, "pos_m": pos, "vel_m_s": [0.0, 0.0, 0.0], "rpy_rad": [0.0, 0.0, 0.0]});
        let env = serde_json::json!({"topic": "sim/truth", "version": 1, "seq": seq, "stamp_ns": t_ns, "payload": payload});
        vec![b"sim/truth".to_vec(), env.to_string().into_bytes()]
    };
    let garbage: Vec<Vec<Vec<u8>>> = vec![
        vec![b"sim/truth".to_vec(), b"{".to_vec()],
        vec![
            b"sim/truth".to_vec(),
            br#"{"topic":"sim/truth","version":1,"seq":1,"stamp_ns":0,"payload":{"t_ns":"soon"}}"#
                .to_vec(),
        ],
        vec![b"sim/truth".to_vec()],
        vec![
            b"sim/truth".to_vec(),
            br#"{"topic":"sim/truth","version":9,"seq":1,"stamp_ns":0,"payload":{}}"#.to_vec(),
        ],
    ];
    let mut measurements = 0;
    let mut sent_garbage = 0;
    let start = Instant::now();
    let mut k = 0u64;
    // 3 s of truth at 1 kHz (simulated time), garbage every 100 ms.
    while k < 3000 {
        let due = Duration::from_millis(k);
        // One clock read: reading it twice could pass `due` in between (a panic on subtraction).
        if let Some(rest) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(rest);
        }
        tpub.send_multipart(truth_at(k * 1_000_000, k + 1), 0)
            .expect("send");
        if k % 100 == 50 && k > 500 {
            tpub.send_multipart(&garbage[(k / 100) as usize % garbage.len()], 0)
                .expect("send");
            sent_garbage += 1;
        }
        while let Ok(frames) = msub.recv_multipart(zmq::DONTWAIT) {
            if frames.first().map(|t| t.as_slice()) == Some(b"vision/measurement") {
                measurements += 1;
            }
        }
        k += 1;
    }
    let mut vision = vision;
    let log = vision.0.wait_with_output_or_kill(&dir.join("vision.err"));
    let out = std::fs::read_to_string(dir.join("vision.out")).unwrap_or_default();
    println!(
        "vision role with {sent_garbage} garbage messages on its truth topic: {measurements} measurements back; it said: {}",
        out.trim()
    );
    assert!(
        measurements > 50,
        "the vision kept measuring: {measurements}"
    );
    assert!(
        out.contains(&format!(" {sent_garbage} garbage")),
        "every garbage message counted: {out}"
    );
    assert!(
        log.contains("garbage on sim/truth"),
        "and named in its log: {log}"
    );
}

trait WaitOutput {
    fn wait_with_output_or_kill(&mut self, err: &Path) -> String;
}

impl WaitOutput for Child {
    fn wait_with_output_or_kill(&mut self, err: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(err).unwrap_or_default()
    }
}

#[test]
fn fly_realtime_paces_the_actors_to_the_wall_clock_and_reports_the_loop_latency() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("fly-realtime");
    let sum = dir.join("rt.json");
    let scene = crate::scene_path("hover_kinect.ron");
    let out = Command::new(exe())
        .arg("fly")
        .arg(&scene)
        .args(["--realtime", "--summary", sum.to_str().expect("utf-8 path")])
        .output()
        .expect("fly --realtime");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("real time   factor"))
        .unwrap_or_else(|| panic!("no real-time line: {text}"));
    println!("{}", line.trim());
    let s = summary(&sum);
    let rt = &s["realtime"];
    let factor = rt["realtime_factor"].as_f64().expect("a number");
    let p99 = rt["latency_p99_us"].as_f64().expect("a number");
    let p50 = rt["latency_p50_us"].as_f64().expect("a number");
    assert_eq!(s["crashed"], false);
    // Pacing works (the figure itself is for the report, not a timing assertion).
    assert!((0.9..1.1).contains(&factor), "real-time factor {factor}");
    assert!(p50 > 0.0 && p99 >= p50, "p50 {p50} µs, p99 {p99} µs");
    assert!(
        rt["latency_samples"].as_u64().expect("a count") > 300,
        "{rt}"
    );
    assert!(rms(&s) < 0.005, "hovers: {}", rms(&s));
}

#[test]
fn run_names_bad_rigs_endpoints_and_flags() {
    let dir = temp_dir("run-bad");
    let udp_rig = dir.join("udp.ron");
    std::fs::write(
        &udp_rig,
        format!(
            "(name: \"u\", scene: \"{}\", link: \"udp://127.0.0.1:19850\")",
            crate::scene_path("hover_kinect.ron").display()
        ),
    )
    .expect("write rig");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![udp_rig.display().to_string()], "depthpilot hil"),
        (
            vec![
                rig().display().to_string(),
                "--truth-endpoint".into(),
                "localhost:1".into(),
            ],
            "not a ZMQ endpoint",
        ),
        (
            vec![rig().display().to_string(), "--duration=-3".into()],
            "positive number of seconds",
        ),
        (
            vec![rig().display().to_string(), "--role".into(), "pilot".into()],
            "invalid value 'pilot'",
        ),
        (
            vec![dir.join("missing.ron").display().to_string()],
            "missing.ron",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(exe())
            .arg("run")
            .args(&args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected `{want}` in: {err}");
    }
    // An endpoint another process holds: the control side says which and exits 2.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = format!(
        "tcp://127.0.0.1:{}",
        holder.local_addr().expect("addr").port()
    );
    let out = Command::new(exe())
        .arg("run")
        .arg(rig())
        .args(["--role", "control", "--truth-endpoint", &taken])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&taken) && err.contains("PUB"), "{err}");
}

#[test]
fn the_2015_set_point_ui_moves_the_target_and_its_garbage_is_counted() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("setpoints-in");
    // Bind as ksp.py does (PUSH), then start the flight, which connects a PULL to it.
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).expect("push");
    push.set_linger(0).expect("linger");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let ep = format!("tcp://127.0.0.1:{port}");
    push.bind(&ep).expect("bind push");
    let sum = dir.join("sp.json");
    let flight = spawn(
        role(
            &[],
            "all",
            "tcp://127.0.0.1:1",
            "tcp://127.0.0.1:2",
            &[
                "--quiet",
                "--duration",
                "11",
                "--setpoints-in",
                &ep,
                "--summary",
                sum.to_str().expect("utf-8 path"),
            ],
        ),
        &dir.join("sp.err"),
    );
    std::thread::sleep(Duration::from_secs(5));
    let garbage: [&[u8]; 4] = [
        b"set-points!",
        br#"{"version":2,"set-points":{"roll":0.2}}"#,
        br#"{"version":1,"set-points":5}"#,
        br#"{"version":1,"set-points":{"roll":"left"}}"#,
    ];
    for g in garbage {
        push.send(g, 0).expect("send garbage");
    }
    let good = br#"{"version":1,"set-points":{"roll":0.2,"pitch":-0.1,"yaw":0.0,"velocity":0.0}}"#;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        push.send(&good[..], zmq::DONTWAIT).ok();
        std::thread::sleep(Duration::from_millis(10));
    }
    wait(flight, "the flight", &dir.join("sp.err"));
    let s = summary(&sum);
    let bus = &s["realtime"]["bus"];
    let [x, y, z] = [0, 1, 2].map(|i| s["final_position_m"][i].as_f64().expect("a number"));
    println!(
        "set-point UI: {} messages taken, garbage {}; final position ({x:.3}, {y:.3}, {z:.3}) m",
        bus["set_points_received"], bus["garbage"]
    );
    assert_eq!(s["crashed"], false);
    assert!(
        bus["set_points_received"].as_u64().expect("a count") > 100,
        "{bus}"
    );
    assert_eq!(
        bus["garbage"]["by_topic"]["compat/set-points"].as_u64(),
        Some(4),
        "{bus}"
    );
    assert!((x - 0.2).abs() < 0.05 && (y + 0.1).abs() < 0.05 && (z - 1.0).abs() < 0.05);
}

#[test]
fn a_garbage_background_file_is_named_and_the_vision_learns_a_new_one() {
    let dir = temp_dir("split-bg");
    let bg = dir.join("background.dpbg");
    std::fs::write(&bg, b"this is not a background").expect("write");
    let (truth, meas) = endpoints();
    let out = role(
        &[],
        "vision",
        &truth,
        &meas,
        &[
            "--duration",
            "0.5",
            "--background",
            bg.to_str().expect("utf-8 path"),
        ],
    )
    .output()
    .expect("run --role vision");
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("not a depthpilot background file") && err.contains("learning a new one"),
        "{err}"
    );
    assert!(stdout.contains("background learnt"), "{stdout}");
    // And the flag belongs to the vision.
    let out = role(&[], "control", &truth, &meas, &["--background", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--background"));
}
