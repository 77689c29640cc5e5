//! Issue 20's acceptance line: "the bridge at 30 frames/s with CURVE costs at most 10 % more CPU
//! than without, measured". This test measures it: a publisher process sends N frames of
//! 512 × 424 depth + IR (what the fake bridge and `kinect_bridge.py` send) at 30 frames/s over
//! loopback TCP to a subscriber process (a [`BridgeClient`], decoding every frame), once with
//! the NULL mechanism and once with CURVE (a `bridge` key), and prints the CPU time (user +
//! system, `/proc/self/stat`, all threads: libzmq encrypts in its I/O thread) of each process
//! over the stream. It asserts only that the frames arrived (no timing assertion): the figures
//! are for a person to read. Only the transport is measured (no rendering, no detection).
//!
//! The two processes are this test binary again (`DP_BRIDGE_CPU_ROLE`). A debug build is not
//! representative; the release measurement (`scripts/bridge_cpu`):
//!
//! ```sh
//! DP_BRIDGE_CPU_FRAMES=600 cargo test --workspace --release --test bridge_cpu -- --nocapture
//! ```

use depthpilot_camera::{BridgeClient, BridgeConfig, BridgeEvent, BridgeState, FrameHeader};
use depthpilot_camera::{StatusMsg, encode_frame, encode_status};
use depthpilot_runtime::bridge_curve::{BridgeServer, load_client_keys};
use depthpilot_runtime::curve::{ServerKeys, write_keypair};
use depthpilot_runtime::netpolicy::BindPolicy;
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{HEIGHT, WIDTH};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEST: &str = "bridge_cpu_with_and_without_curve";
const RATE_HZ: f64 = 30.0;
/// Frames per run by default (2 s): enough to show the tool works in the normal test run.
const DEFAULT_FRAMES: u64 = 60;
const END: &str = "bridge-cpu: end";

/// CPU time (user + system, every thread) of this process so far, s.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / clock_ticks_per_s()
}

fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A frame as a Kinect sends it: depth (mm) and IR, varying with `seq`.
fn frame(seq: u64) -> (FrameHeader, Vec<u16>, Vec<u16>) {
    let header = FrameHeader::kinect_v2(seq, seq * 33_333, 0, Intrinsics::KINECT_V2_DEVICE2);
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 64) as u16
    };
    let depth = (0..WIDTH * HEIGHT).map(|_| 1500 + noise()).collect();
    let ir = (0..WIDTH * HEIGHT).map(|_| 1000 + 4 * noise()).collect();
    (header, depth, ir)
}

fn status(message: &str) -> Vec<Vec<u8>> {
    encode_status(&StatusMsg {
        state: BridgeState::Streaming,
        message: message.to_string(),
    })
}

/// The publisher process: binds, announces itself until told to go (a line on stdin), then
/// sends the frames at 30 /s and prints its CPU time over them.
fn publisher(endpoint: &str, keys: Option<&Path>, frames: u64) {
    let keys = keys.map(|d| ServerKeys::load(d).expect("server keys"));
    let ctx = zmq::Context::new();
    let server =
        BridgeServer::bind(&ctx, endpoint, BindPolicy::LoopbackOnly, keys.as_ref()).expect("bind");
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = go_tx.send(());
    });
    while go_rx.try_recv().is_err() {
        let _ = server.send_raw(status("waiting"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let frames_data: Vec<_> = (0..30).map(frame).collect();
    let cpu0 = cpu_s();
    let start = Instant::now();
    for seq in 0..frames {
        let due = start + Duration::from_secs_f64(seq as f64 / RATE_HZ);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (h, d, ir) = &frames_data[(seq % 30) as usize];
        let mut h = h.clone();
        h.seq = seq + 1;
        server
            .send_raw(encode_frame(&h, d, Some(ir)))
            .expect("send");
    }
    // One frame period for libzmq's I/O thread to write the last one.
    std::thread::sleep(Duration::from_secs_f64(1.0 / RATE_HZ));
    let (cpu, wall) = (cpu_s() - cpu0, start.elapsed().as_secs_f64());
    for _ in 0..10 {
        let _ = server.send_raw(status(END));
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "BRIDGE_CPU pub cpu_s={cpu:.3} wall_s={wall:.3} frames={frames} accepted={}",
        server.auth_counts().map_or(0, |c| c.accepted)
    );
}

/// The subscriber process: says `ready` at its first message, then reads and decodes frames
/// until the end, and prints its CPU time from its first frame on.
fn subscriber(endpoint: &str, keys: Option<&Path>) {
    let mut config = BridgeConfig::new(endpoint);
    config.curve = keys.map(|d| load_client_keys(d, "vision").expect("client keys"));
    let ctx = zmq::Context::new();
    let mut client = BridgeClient::connect(&ctx, &config).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ready = false;
    let mut cpu0 = None;
    let mut frames = 0u64;
    let mut ended = false;
    while !ended && Instant::now() < deadline {
        client.wait(Duration::from_millis(100)).expect("wait");
        for e in client.poll(Instant::now()).expect("poll") {
            match e {
                BridgeEvent::Frame(f) => {
                    cpu0.get_or_insert_with(cpu_s);
                    frames += 1;
                    assert_eq!(f.frame.depth_mm.len(), WIDTH * HEIGHT);
                }
                BridgeEvent::Status(s) if s.message == END => ended = true,
                BridgeEvent::Status(_) if !ready => {
                    ready = true;
                    println!("BRIDGE_CPU ready");
                    std::io::stdout().flush().expect("flush");
                }
                _ => {}
            }
        }
    }
    let cpu = cpu0.map_or(0.0, |c| cpu_s() - c);
    println!("BRIDGE_CPU sub cpu_s={cpu:.3} frames={frames}");
}

/// `key=value` of a `BRIDGE_CPU` line.
fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in `{line}`"))
}

struct Run {
    pub_cpu_s: f64,
    pub_wall_s: f64,
    sub_cpu_s: f64,
    frames_received: f64,
    accepted: f64,
}

fn child(role: &str, endpoint: &str, keys: Option<&Path>, frames: u64) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("DP_BRIDGE_CPU_ROLE", role)
        .env("DP_BRIDGE_CPU_ENDPOINT", endpoint)
        .env("DP_BRIDGE_CPU_FRAMES", frames.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(k) = keys {
        c.env("DP_BRIDGE_CPU_KEYS", k);
    }
    c
}

fn measure(keys: Option<&Path>, frames: u64) -> Run {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut publ = child("pub", &endpoint, keys, frames)
        .spawn()
        .expect("publisher");
    let mut sub = child("sub", &endpoint, keys, frames)
        .spawn()
        .expect("subscriber");
    let mut sub_out = BufReader::new(sub.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("BRIDGE_CPU ready") {
        line.clear();
        assert!(
            sub_out.read_line(&mut line).expect("read") > 0,
            "the subscriber ended before it heard the publisher"
        );
    }
    writeln!(publ.stdin.as_mut().expect("stdin"), "go").expect("go");
    let find = |text: &str, tag: &str| {
        // libtest's "test … " may precede it on the same line.
        text.lines()
            .find_map(|l| l.find(tag).map(|i| l[i..].to_string()))
            .unwrap_or_else(|| panic!("no `{tag}` line in:\n{text}"))
    };
    let publ = publ.wait_with_output().expect("publisher");
    let pub_line = find(&String::from_utf8_lossy(&publ.stdout), "BRIDGE_CPU pub");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut sub_out, &mut rest).expect("read");
    assert!(sub.wait().expect("subscriber").success());
    let sub_line = find(&rest, "BRIDGE_CPU sub");
    Run {
        pub_cpu_s: field(&pub_line, "cpu_s"),
        pub_wall_s: field(&pub_line, "wall_s"),
        sub_cpu_s: field(&sub_line, "cpu_s"),
        frames_received: field(&sub_line, "frames"),
        accepted: field(&pub_line, "accepted"),
    }
}

fn keys_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dp-bridge-cpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_keypair(&dir, "server", false).expect("server keys");
    let (_, public, _) = write_keypair(&dir, "vision", false).expect("vision keys");
    std::fs::create_dir_all(dir.join("allow/bridge")).expect("mkdir");
    std::fs::copy(public, dir.join("allow/bridge/vision.pub")).expect("allow");
    dir
}

/// The bridge's CPU cost with and without CURVE at 30 frames/s (printed); every frame arrives
/// both ways, and with CURVE through an authenticated subscriber.
#[test]
fn bridge_cpu_with_and_without_curve() {
    let frames = env("DP_BRIDGE_CPU_FRAMES")
        .map(|f| f.parse::<u64>().expect("DP_BRIDGE_CPU_FRAMES is a count"))
        .unwrap_or(DEFAULT_FRAMES);
    if let Some(role) = env("DP_BRIDGE_CPU_ROLE") {
        let endpoint = env("DP_BRIDGE_CPU_ENDPOINT").expect("DP_BRIDGE_CPU_ENDPOINT");
        let keys = env("DP_BRIDGE_CPU_KEYS").map(PathBuf::from);
        match role.as_str() {
            "pub" => publisher(&endpoint, keys.as_deref(), frames),
            "sub" => subscriber(&endpoint, keys.as_deref()),
            other => panic!("DP_BRIDGE_CPU_ROLE={other}: expected pub or sub"),
        }
        return;
    }
    let dir = keys_dir();
    let null = measure(None, frames);
    let curve = measure(Some(&dir), frames);
    let _ = std::fs::remove_dir_all(&dir);
    let build = if cfg!(debug_assertions) {
        "debug build: NOT representative, run it with --release"
    } else {
        "release build"
    };
    println!(
        "bridge CPU, {frames} frames of 512x424 depth + IR at {RATE_HZ} /s over loopback TCP ({build}):"
    );
    for (name, r) in [("NULL ", &null), ("CURVE", &curve)] {
        println!(
            "  {name}  publisher {:.3} s CPU in {:.1} s ({:.1} % of a core), subscriber {:.3} s CPU, {} frames received",
            r.pub_cpu_s,
            r.pub_wall_s,
            100.0 * r.pub_cpu_s / r.pub_wall_s,
            r.sub_cpu_s,
            r.frames_received
        );
    }
    let more = |with: f64, without: f64| 100.0 * (with - without) / without.max(1e-9);
    println!(
        "  CURVE costs {:+.1} % CPU in the publisher, {:+.1} % in the subscriber (acceptance: at most +10 %)",
        more(curve.pub_cpu_s, null.pub_cpu_s),
        more(curve.sub_cpu_s, null.sub_cpu_s)
    );
    // The subscriber's queue holds 8 frames: at 30 /s nothing should be lost on loopback.
    for (name, r) in [("NULL", &null), ("CURVE", &curve)] {
        assert!(
            r.frames_received >= 0.95 * frames as f64,
            "{name}: {} of {frames} frames arrived",
            r.frames_received
        );
    }
    assert_eq!(
        curve.accepted, 1.0,
        "the CURVE subscriber was authenticated"
    );
    assert_eq!(null.accepted, 0.0);
}
