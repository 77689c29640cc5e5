//! The Python bridge's encoder against the Rust decoder: `kinect_bridge.py --self-test` publishes
//! synthetic frames through exactly the encoder its device path uses, and a [`BridgeClient`]
//! reads them. Needs `python3` with pyzmq (CI installs it); without it the test fails and says so.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use depthpilot_camera::{BridgeClient, BridgeConfig, BridgeEvent, BridgeState, ReceivedFrame};
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{HEIGHT, WIDTH};

const BRIDGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../hil/kinect_bridge/kinect_bridge.py"
);
const FRAMES: u64 = 30;

// The self-test scene, as `kinect_bridge.py` documents it.
const PLANE_MM: u16 = 2000;
const SQUARE_MM: u16 = 1800;
const SQUARE_PX: usize = 40;
const SQUARE_ROW: usize = 180;
/// Row 0 of the depth image: NaN, inf, -inf, -5, 0.3, 70000, 1234.5, 65535.4 converted.
const DEPTH_PROBES: [u16; 8] = [0, 0, 0, 0, 0, 0, 1235, 65535];
/// Row 0 of the IR image: NaN, -1, 70000, 123.5 converted.
const IR_PROBES: [u16; 4] = [0, 0, 65535, 124];

fn square_col(seq: u64) -> usize {
    40 + (8 * seq as usize) % 400
}

/// Kills the bridge if the test panics before it exits.
struct Bridge(Child);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_pyzmq() {
    let status = Command::new("python3")
        .args(["-c", "import zmq"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(_) => panic!(
            "python3 cannot `import zmq`: install pyzmq (`python3 -m pip install pyzmq`; CI \
             installs it) to run the Kinect bridge's self-test"
        ),
        Err(e) => panic!("cannot run python3 ({e}): install Python 3 and pyzmq"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn check_frame(f: &ReceivedFrame) {
    let seq = f.header.seq;
    assert_eq!((f.header.width, f.header.height), (512, 424));
    assert_eq!((f.frame.width, f.frame.height), (WIDTH, HEIGHT));
    assert_eq!(f.frame.depth_mm.len(), WIDTH * HEIGHT);
    assert_eq!(f.header.serial, "self-test");
    assert_eq!(f.intrinsics, Intrinsics::KINECT_V2_DEVICE2, "seq {seq}");
    // round(seq × 10⁶ / 30 Hz)
    assert_eq!(f.header.device_stamp_us, (seq * 1_000_000 + 15) / 30);
    assert_eq!(f.frame.stamp_ns, f.header.device_stamp_us * 1000);

    let d = &f.frame;
    assert_eq!(
        d.depth_mm[..8],
        DEPTH_PROBES,
        "seq {seq}: conversion of invalid depth"
    );
    let col = square_col(seq);
    let mut near = 0;
    for row in 0..HEIGHT {
        for c in 0..WIDTH {
            let inside = (SQUARE_ROW..SQUARE_ROW + SQUARE_PX).contains(&row)
                && (col..col + SQUARE_PX).contains(&c);
            let v = d.depth_at(c, row);
            if inside {
                assert_eq!(v, SQUARE_MM, "seq {seq}: ({c}, {row}) is in the square");
                near += 1;
            } else if row > 0 || c >= DEPTH_PROBES.len() {
                assert_eq!(v, PLANE_MM, "seq {seq}: ({c}, {row}) is on the plane");
            }
        }
    }
    assert_eq!(near, SQUARE_PX * SQUARE_PX);
    let ir = d.ir.as_ref().expect("the self-test sends IR");
    assert_eq!(ir[..4], IR_PROBES);
    assert_eq!(ir[SQUARE_ROW * WIDTH + col], 30000);
    assert_eq!(ir[(SQUARE_ROW - 1) * WIDTH + col], 1000);
}

#[test]
fn the_python_bridge_self_test_decodes_in_rust() {
    require_pyzmq();
    let port = free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let ctx = zmq::Context::new();
    let mut client = BridgeClient::connect(&ctx, &BridgeConfig::new(&endpoint)).expect("connect");
    let mut bridge = Bridge(
        Command::new("python3")
            .arg(BRIDGE)
            .args(["--self-test", &endpoint, "--frames", "30", "--wait-s", "30"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start kinect_bridge.py"),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut frames: Vec<Box<ReceivedFrame>> = Vec::new();
    let mut states = Vec::new();
    let exit = loop {
        assert!(
            Instant::now() < deadline,
            "the self-test did not finish in 60 s"
        );
        client.wait(Duration::from_millis(20)).expect("wait");
        for event in client.poll(Instant::now()).expect("poll") {
            match event {
                BridgeEvent::Frame(f) => frames.push(f),
                BridgeEvent::Status(s) => states.push(s.state),
                BridgeEvent::Garbage(e) => panic!("the Python encoder wrote garbage: {e}"),
                BridgeEvent::Stale { .. } | BridgeEvent::Recovered { .. } => {}
            }
        }
        if let Some(status) = bridge.0.try_wait().expect("try_wait") {
            // Whatever is still queued arrives within the bridge's 2 s linger.
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                client.wait(Duration::from_millis(20)).expect("wait");
                for event in client.poll(Instant::now()).expect("poll") {
                    if let BridgeEvent::Frame(f) = event {
                        frames.push(f);
                    }
                }
            }
            break status;
        }
    };
    assert!(
        exit.success(),
        "kinect_bridge.py --self-test exited with {exit}"
    );
    eprintln!("{} of {FRAMES} frames arrived", frames.len());

    assert_eq!(states.first(), Some(&BridgeState::Streaming));
    let seqs: Vec<u64> = frames.iter().map(|f| f.header.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    // The bridge waits for our subscription, so nothing is lost to the slow joiner; the client's
    // queue (8 frames) could still overflow on a very busy machine.
    assert!(
        frames.len() as u64 >= FRAMES - 5,
        "{} of {FRAMES} frames arrived: {seqs:?}",
        frames.len()
    );
    for f in &frames {
        check_frame(f);
    }
    let r = client.report();
    assert_eq!(r.garbage.total, 0);
    assert_eq!(r.frames.received, frames.len() as u64);
}

/// Issue 20: the bridge binds loopback by default, refuses another interface without
/// `--insecure` (naming the endpoint and the way out), and warns with it.
#[test]
fn the_python_bridge_binds_loopback_unless_insecure() {
    require_pyzmq();
    let source = std::fs::read_to_string(BRIDGE).expect("read kinect_bridge.py");
    let default = source
        .lines()
        .find_map(|l| l.strip_prefix("DEFAULT_BIND = "))
        .expect("kinect_bridge.py sets DEFAULT_BIND")
        .trim_matches('"');
    assert_eq!(
        depthpilot_types::netpolicy::classify(default),
        Ok(depthpilot_types::netpolicy::Scope::Loopback),
        "DEFAULT_BIND = {default}"
    );
    assert_eq!(default, depthpilot_camera::DEFAULT_BRIDGE_BIND);

    let run = |extra: &[&str]| {
        let out = Command::new("python3")
            .arg(BRIDGE)
            .args(["--self-test", &format!("tcp://0.0.0.0:{}", free_port())])
            .args(["--frames", "1", "--wait-s", "0.1"])
            .args(extra)
            .output()
            .expect("run kinect_bridge.py");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    for part in [
        "refusing to bind the Kinect bridge socket to `tcp://0.0.0.0:",
        "live depth and IR video of the room",
        "ssh -L",
        "--insecure",
    ] {
        assert!(stderr.contains(part), "stderr lacks `{part}`:\n{stderr}");
    }
    assert!(!stderr.contains("self-test: bound"), "{stderr}");
    // With --insecure it binds (and, with no subscriber in 0.1 s, gives up: exit 1).
    let (_, stderr) = run(&["--insecure"]);
    assert!(
        stderr
            .contains("WARNING: --insecure: the Kinect bridge socket is bound to `tcp://0.0.0.0:")
            && stderr.contains("self-test: bound tcp://0.0.0.0:"),
        "{stderr}"
    );
}

/// Writes a key pair as `depthpilot keygen` does (one Z85 line each); returns the raw keys.
fn write_keys(dir: &std::path::Path, name: &str) -> zmq::CurveKeyPair {
    let pair = zmq::CurveKeyPair::new().expect("CURVE key pair");
    std::fs::create_dir_all(dir).expect("mkdir");
    let z85 = |k: &[u8]| zmq::z85_encode(k).expect("z85");
    std::fs::write(
        dir.join(format!("{name}.pub")),
        z85(&pair.public_key) + "\n",
    )
    .expect("write .pub");
    std::fs::write(
        dir.join(format!("{name}.key")),
        z85(&pair.secret_key) + "\n",
    )
    .expect("write .key");
    pair
}

/// Issue 20: `kinect_bridge.py --keys DIR` is a CURVE server of the `bridge` role on every
/// interface (no --insecure): a subscriber without a key and one whose key is allowed only on
/// the bus get no frame, and the bridge prints and counts those denials; a subscriber with a
/// `bridge` key gets the frames.
#[test]
fn the_python_bridge_with_keys_sends_only_to_bridge_keys() {
    require_pyzmq();
    let dir = std::env::temp_dir().join(format!("dp-pybridge-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = write_keys(&dir, "server");
    let clients_dir = dir.join("clients");
    let vision = write_keys(&clients_dir, "vision");
    let split = write_keys(&clients_dir, "split");
    for (role, name) in [("bridge", "vision"), ("bus", "split")] {
        let to = dir.join("allow").join(role);
        std::fs::create_dir_all(&to).expect("mkdir");
        std::fs::copy(
            clients_dir.join(format!("{name}.pub")),
            to.join(format!("{name}.pub")),
        )
        .expect("copy .pub");
    }
    let port = free_port();
    let ctx = zmq::Context::new();
    let connect = |client: Option<&zmq::CurveKeyPair>| {
        let mut config = BridgeConfig::new(format!("tcp://127.0.0.1:{port}"));
        config.curve = client.map(|c| depthpilot_camera::CurveClientKeys {
            server_public: server.public_key,
            client_public: c.public_key,
            client_secret: c.secret_key,
        });
        BridgeClient::connect(&ctx, &config).expect("connect")
    };
    let bridge = Command::new("python3")
        .arg(BRIDGE)
        .args(["--self-test", &format!("tcp://0.0.0.0:{port}")])
        .args(["--frames", "30", "--wait-s", "30", "--keys"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kinect_bridge.py");
    let mut bridge = Bridge(bridge);
    // The unwelcome subscribers first: the bridge must not count them as its subscriber.
    let mut clients = [connect(None), connect(Some(&split))];
    let frames_of = |c: &mut BridgeClient| {
        c.wait(Duration::from_millis(10)).expect("wait");
        c.poll(Instant::now())
            .expect("poll")
            .iter()
            .filter(|e| matches!(e, BridgeEvent::Frame(_)))
            .count()
    };
    let settle = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < settle {
        for c in &mut clients {
            assert_eq!(
                frames_of(c),
                0,
                "a subscriber without a bridge key got a frame"
            );
        }
    }
    let mut allowed = connect(Some(&vision));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    let exit = loop {
        assert!(
            Instant::now() < deadline,
            "the self-test did not finish in 60 s"
        );
        got += frames_of(&mut allowed);
        for c in &mut clients {
            assert_eq!(
                frames_of(c),
                0,
                "a subscriber without a bridge key got a frame"
            );
        }
        if let Some(status) = bridge.0.try_wait().expect("try_wait") {
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                got += frames_of(&mut allowed);
            }
            break status;
        }
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(bridge.0.stderr.as_mut().expect("stderr piped"), &mut stderr)
        .expect("read stderr");
    assert!(
        exit.success(),
        "kinect_bridge.py exited with {exit}:\n{stderr}"
    );
    assert!(
        got >= 25,
        "the allowed subscriber got {got} of 30 frames:\n{stderr}"
    );
    let split_key = zmq::z85_encode(&split.public_key).expect("z85");
    for part in [
        "CURVE: bound tcp://0.0.0.0:",
        &format!("denied client key {split_key}"),
        "on the `bridge` role",
        "subscriber `vision`",
        "CURVE: 1 subscriber(s) accepted, 1 denied,",
    ] {
        assert!(stderr.contains(part), "stderr lacks `{part}`:\n{stderr}");
    }
    assert!(!stderr.contains("WARNING: --insecure"), "{stderr}");

    // An empty allow/bridge/ is refused: nobody could connect.
    std::fs::remove_file(dir.join("allow/bridge/vision.pub")).expect("rm");
    let out = Command::new("python3")
        .arg(BRIDGE)
        .args([
            "--self-test",
            "tcp://127.0.0.1:0",
            "--frames",
            "1",
            "--wait-s",
            "0.1",
        ])
        .arg("--keys")
        .arg(&dir)
        .output()
        .expect("run kinect_bridge.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("allow/bridge"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
