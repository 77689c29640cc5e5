//! Issue 20, the control side's own endpoints with CURVE (`fly`/`run`/`hil --keys DIR`), over
//! real TCP sockets on 127.0.0.1: the parameter and LED servers, the live teacher inside a
//! flight and the flight's state PUB each take only the client keys of their own role's
//! allow-list; everyone else changes nothing, receives nothing, and is counted.

use depthpilot_runtime::curve::{AllowList, KeyPair, ServerKeys, make_client};
use depthpilot_runtime::netpolicy::Role;
use depthpilot_runtime::zmq_client::{ClientAccess, ClientServers, ParamEntry, RING_LEDS};
use depthpilot_runtime::{ClockMode, FlightExtras, RealtimeReport, VisionSource};
use depthpilot_sim::LogRow;
use depthpilot_types::Scene;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs `ok` every 5 ms until it holds; fails naming `what` after 5 s.
fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if ok() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Keys of a server and of four clients: `pilot` on teacher and param, `led` on led, `viewer`
/// on state, `vision` on the bus.
struct Keys {
    server: ServerKeys,
    pilot: KeyPair,
    led: KeyPair,
    viewer: KeyPair,
    vision: KeyPair,
}

fn keys() -> Keys {
    let pair = || KeyPair::generate().expect("a key pair");
    let (pilot, led, viewer, vision) = (pair(), pair(), pair(), pair());
    let mut allow = AllowList::default();
    allow.allow("teacher", "pilot", pilot.public);
    allow.allow("param", "pilot", pilot.public);
    allow.allow("led", "led", led.public);
    allow.allow("state", "viewer", viewer.public);
    allow.allow("bus", "vision", vision.public);
    Keys {
        server: ServerKeys {
            server: pair(),
            allow,
        },
        pilot,
        led,
        viewer,
        vision,
    }
}

/// A client socket to `endpoint`, with CURVE when `client` is given.
fn client(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    endpoint: &str,
    keys: &Keys,
    client: Option<&KeyPair>,
) -> zmq::Socket {
    let s = ctx.socket(kind).expect("socket");
    s.set_linger(0).expect("linger");
    if let Some(c) = client {
        make_client(&s, &keys.server.server.public, c).expect("CURVE client");
    }
    s.connect(endpoint).expect("connect");
    s
}

/// A Crazyflie with one writable parameter and an LED ring.
#[derive(Default)]
struct FakeCf {
    effect: String,
    led_writes: u64,
}

impl ClientAccess for FakeCf {
    fn param_toc(&mut self) -> Vec<ParamEntry> {
        vec![ParamEntry {
            name: "ring.effect".into(),
            type_name: "uint8_t",
            writable: true,
            value: self.effect.clone(),
        }]
    }
    fn param_set(&mut self, name: &str, value: &str) -> Result<String, String> {
        if name != "ring.effect" {
            return Err(format!("no parameter {name}"));
        }
        self.effect = value.to_string();
        Ok(self.effect.clone())
    }
    fn led_write(&mut self, _rgb: &[[u8; 3]; RING_LEDS]) -> Result<(), String> {
        self.led_writes += 1;
        Ok(())
    }
}

const SET_EFFECT_13: &str = r#"{"version":1,"cmd":"set","name":"ring.effect","value":"13"}"#;

/// The issue's acceptance line: a param client without a key, and one whose key is allowed
/// only on the LED ring, each send a real `set`: the parameter keeps its value, nothing reaches
/// the Crazyflie, both are counted; the param key's `set` does change it. Likewise on the LED
/// server, the param key writes nothing and the LED key does.
#[test]
fn an_unauthorised_param_client_changes_nothing() {
    let k = keys();
    let (param_ep, led_ep) = (
        format!("tcp://127.0.0.1:{}", free_port()),
        format!("tcp://127.0.0.1:{}", free_port()),
    );
    let mut servers = ClientServers::bind_curve(Some(&param_ep), Some(&led_ep), &k.server)
        .expect("CURVE servers");
    assert_eq!(
        servers.auth_counts(Role::Param).map(|c| c.denied),
        Some(0),
        "counts kept with CURVE"
    );
    let mut cf = FakeCf {
        effect: "0".into(),
        ..FakeCf::default()
    };
    let ctx = zmq::Context::new();

    // Denied: no CURVE at all, and the LED ring's key.
    let keyless = client(&ctx, zmq::REQ, &param_ep, &k, None);
    let led_key = client(&ctx, zmq::REQ, &param_ep, &k, Some(&k.led));
    for s in [&keyless, &led_key] {
        // Queued in the pipe before the handshake, or refused at once if it already failed.
        match s.send(SET_EFFECT_13, zmq::DONTWAIT) {
            Ok(()) | Err(zmq::Error::EAGAIN) => {}
            Err(e) => panic!("send: {e}"),
        }
    }
    wait_for("both param clients are refused", || {
        servers.poll(&mut cf);
        servers
            .auth_counts(Role::Param)
            .is_some_and(|c| c.denied >= 1 && c.handshake_failures >= 2)
    });
    // Serve a while longer: nothing comes through late.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        servers.poll(&mut cf);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cf.effect, "0", "an unauthorised client set the parameter");
    assert_eq!(servers.stats.param_requests, 0);
    for s in [&keyless, &led_key] {
        assert_eq!(
            s.poll(zmq::POLLIN, 0).expect("poll"),
            0,
            "a refused client got a reply"
        );
    }
    let c = servers.auth_counts(Role::Param).expect("CURVE");
    assert_eq!(c.accepted, 0);
    assert_eq!(c.denied, 1, "the LED key asked ZAP and was denied: {c:?}");

    // The param key: its set changes the parameter, and it gets the confirmation.
    let pilot = client(&ctx, zmq::REQ, &param_ep, &k, Some(&k.pilot));
    pilot.send(SET_EFFECT_13, 0).expect("send");
    wait_for("the param key's reply", || {
        servers.poll(&mut cf);
        pilot.poll(zmq::POLLIN, 0).expect("poll") > 0
    });
    let reply = pilot.recv_string(0).expect("recv").expect("utf-8");
    assert!(reply.contains(r#""value":"13""#), "{reply}");
    assert_eq!(cf.effect, "13");
    assert_eq!(
        servers.auth_counts(Role::Param).map(|c| c.accepted),
        Some(1)
    );

    // The LED ring: the param key (not on allow/led/) writes nothing; the LED key does.
    let leds = r#"{"version":1,"rgbleds":[[255,0,0]]}"#;
    let wrong = client(&ctx, zmq::PUSH, &led_ep, &k, Some(&k.pilot));
    let _ = wrong.send(leds, zmq::DONTWAIT);
    wait_for("the param key is refused on the LED ring", || {
        servers.poll(&mut cf);
        servers
            .auth_counts(Role::Led)
            .is_some_and(|c| c.denied == 1)
    });
    assert_eq!(cf.led_writes, 0);
    let right = client(&ctx, zmq::PUSH, &led_ep, &k, Some(&k.led));
    right.send(leds, 0).expect("send");
    wait_for("the LED key's write", || {
        servers.poll(&mut cf);
        cf.led_writes == 1
    });
    assert_eq!(servers.stats.led_writes, 1);
}

fn short_scene(seconds: f64) -> Scene {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/hover.ron");
    let mut scene = Scene::load(&path).expect("scenes/hover.ron");
    scene.duration_s = seconds;
    scene.settle_s = 0.0;
    scene
}

/// Flies `scene` in real time with `extras` in a thread; `during` runs meanwhile.
fn fly_while(
    scene: &Scene,
    extras: &FlightExtras,
    during: impl FnOnce(),
) -> (Vec<LogRow>, RealtimeReport) {
    let (scene, extras) = (scene.clone(), extras.clone());
    let flight = std::thread::spawn(move || {
        let controller = depthpilot_control::from_config(&scene.controller);
        depthpilot_runtime::fly_actors_with(
            &scene,
            controller,
            Vec::<LogRow>::new(),
            ClockMode::Realtime,
            &VisionSource::Local,
            &extras,
        )
    });
    during();
    let (_, rows, report) = flight
        .join()
        .expect("the flight thread")
        .expect("the flight");
    (rows, report.expect("a real-time report"))
}

/// Sends a takeover (mux switch held, full left roll) every 10 ms until `stop`.
fn takeover_sender(socket: zmq::Socket, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let msg = r#"{"version":1,"client_name":"t","ctrl":{"roll":-20.0,"pitch":0.0,"yaw":0.0,"thrust":40.0,"muxswitch":true}}"#;
        while !stop.load(Ordering::Relaxed) {
            let _ = socket.send(msg, zmq::DONTWAIT);
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

fn teacher_rows(rows: &[LogRow]) -> usize {
    rows.iter()
        .filter(|r| r.mux_sources.is_some_and(|s| s.contains(&"teacher")))
        .count()
}

/// The issue's acceptance line: inside a flight with `--keys`, a client holding a valid vision
/// (bus) key sends takeovers for the whole flight, and a client without a key too: the mux
/// never gives them an axis, and the denials are counted. In a second flight the teacher's key
/// does take over (so the check can fail).
#[test]
fn a_vision_key_cannot_take_over_the_teacher_inside_a_flight() {
    let k = keys();
    let scene = short_scene(1.5);
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let extras = FlightExtras {
        teacher_in: Some(endpoint.clone()),
        keys: Some(k.server.clone()),
        ..FlightExtras::default()
    };
    let ctx = zmq::Context::new();

    let stop = Arc::new(AtomicBool::new(false));
    let (rows, report) = fly_while(&scene, &extras, || {
        let senders = [Some(&k.vision), None]
            .map(|key| takeover_sender(client(&ctx, zmq::PUSH, &endpoint, &k, key), stop.clone()));
        std::thread::sleep(Duration::from_secs_f64(scene.duration_s + 0.5));
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().expect("sender");
        }
    });
    assert!(
        rows.iter().filter(|r| r.mux_sources.is_some()).count() > 50,
        "the mux ran"
    );
    assert_eq!(teacher_rows(&rows), 0, "the vision key took an axis");
    let auth = report.auth.get("teacher").expect("teacher counts");
    assert_eq!(auth.accepted, 0, "{auth:?}");
    assert_eq!(auth.denied, 1, "the vision key is denied by ZAP: {auth:?}");
    assert!(auth.handshake_failures >= 2, "{auth:?}");

    // The teacher's key takes over.
    stop.store(false, Ordering::Relaxed);
    let (rows, report) = fly_while(&scene, &extras, || {
        let s = takeover_sender(
            client(&ctx, zmq::PUSH, &endpoint, &k, Some(&k.pilot)),
            stop.clone(),
        );
        std::thread::sleep(Duration::from_secs_f64(scene.duration_s + 0.5));
        stop.store(true, Ordering::Relaxed);
        s.join().expect("sender");
    });
    assert!(teacher_rows(&rows) > 10, "the teacher never took over");
    assert_eq!(report.auth.get("teacher").map(|c| c.accepted), Some(1));
}

/// The flight's state PUB with `--keys`: a subscriber without a key receives nothing in the
/// whole flight, one holding a `state` key receives the rows, one holding a teacher key
/// receives nothing.
#[test]
fn the_state_pub_with_curve_serves_only_state_keys() {
    let k = keys();
    let scene = short_scene(1.5);
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let extras = FlightExtras {
        state_out: Some(endpoint.clone()),
        keys: Some(k.server.clone()),
        ..FlightExtras::default()
    };
    let ctx = zmq::Context::new();
    let subscriber = |key: Option<&KeyPair>| {
        let s = client(&ctx, zmq::SUB, &endpoint, &k, key);
        s.set_subscribe(b"").expect("subscribe");
        s
    };
    let (viewer, keyless, pilot) = (
        subscriber(Some(&k.viewer)),
        subscriber(None),
        subscriber(Some(&k.pilot)),
    );
    let mut received = [0u64; 3];
    let (_, report) = fly_while(&scene, &extras, || {
        let end = Instant::now() + Duration::from_secs_f64(scene.duration_s + 0.5);
        while Instant::now() < end {
            for (s, n) in [&viewer, &keyless, &pilot].iter().zip(received.iter_mut()) {
                while s.recv_multipart(zmq::DONTWAIT).is_ok() {
                    *n += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert!(received[0] > 20, "the state key received {}", received[0]);
    assert_eq!(received[1], 0, "a subscriber without a key received state");
    assert_eq!(received[2], 0, "a teacher key received state");
    let auth = report.auth.get("state").expect("state counts");
    assert_eq!((auth.accepted, auth.denied), (1, 1), "{auth:?}");
    assert!(auth.handshake_failures >= 2, "{auth:?}");
}
