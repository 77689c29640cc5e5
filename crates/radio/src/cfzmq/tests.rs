//! The cfzmq link against fake REP/PUB/PULL peers bound like cfzmq binds them.

use super::*;
use crate::LinkErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    /// `connect` answers status 1.
    ConnectFails,
    /// The first `log create` is answered only after 500 ms.
    SlowFirstLogCreate,
}

struct FakeCfzmq {
    base: u16,
    requests: Arc<Mutex<Vec<Value>>>,
    controls: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FakeCfzmq {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

static NEXT_BASE: AtomicU16 = AtomicU16::new(0);

/// Binds REP on base, PUB on base+1 and PULL on base+4 for a free base.
fn bind_all(ctx: &zmq::Context) -> (u16, zmq::Socket, zmq::Socket, zmq::Socket) {
    let seed = 20000 + (std::process::id() % 2000) as u16 * 10;
    for _ in 0..200 {
        let base = seed + NEXT_BASE.fetch_add(5, Ordering::SeqCst) % 20000;
        let bind = |kind, offset: u16| -> Option<zmq::Socket> {
            let s = ctx.socket(kind).ok()?;
            s.set_linger(0).ok()?;
            s.bind(&format!("tcp://127.0.0.1:{}", base + offset)).ok()?;
            Some(s)
        };
        if let (Some(rep), Some(publ), Some(pull)) =
            (bind(zmq::REP, 0), bind(zmq::PUB, 1), bind(zmq::PULL, 4))
        {
            return (base, rep, publ, pull);
        }
    }
    panic!("no free port range for the fake cfzmq");
}

fn spawn_fake(mode: Mode) -> FakeCfzmq {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let controls = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (req_log, ctrl_log, stop_flag) = (requests.clone(), controls.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        let ctx = zmq::Context::new();
        let (base, rep, publ, pull) = bind_all(&ctx);
        port_tx.send(base).expect("port");
        let mut publishing: Option<String> = None;
        let mut slow_pending = mode == Mode::SlowFirstLogCreate;
        let mut t_ms = 1000u64;
        let mut last_pub = Instant::now();
        while !stop_flag.load(Ordering::SeqCst) {
            let mut items = [
                rep.as_poll_item(zmq::POLLIN),
                pull.as_poll_item(zmq::POLLIN),
            ];
            zmq::poll(&mut items, 5).expect("poll");
            if items[0].is_readable() {
                let req: Value =
                    serde_json::from_slice(&rep.recv_bytes(0).expect("req")).expect("json");
                req_log.lock().expect("lock").push(req.clone());
                let reply = match (req["cmd"].as_str(), req["action"].as_str()) {
                    (Some("connect"), _) if mode == Mode::ConnectFails => {
                        json!({"version": 1, "status": 1, "msg": "Too many packets lost"})
                    }
                    (Some("connect"), _) => json!({"version": 1, "status": 0,
                        "log": {"pm": {"vbat": {"type": "float"}}},
                        "param": {"stabilizer": {"estimator": {"type": "uint8_t", "access": "RW", "value": "2"}},
                                  "pid_rate": {"yaw_kp": {"type": "float", "access": "RW", "value": "6.0"}}}}),
                    (Some("log"), Some("create")) => {
                        if slow_pending {
                            slow_pending = false;
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        let known = req["variables"]
                            .as_array()
                            .expect("variables")
                            .iter()
                            .all(|v| v == "pm.vbat" || v == "stateEstimate.z");
                        if known {
                            json!({"version": 1, "status": 0})
                        } else {
                            json!({"version": 1, "status": 1, "msg": "'Variable not in TOC'"})
                        }
                    }
                    (Some("log"), Some("start")) => {
                        publishing = req["name"].as_str().map(str::to_owned);
                        json!({"version": 1, "status": 0})
                    }
                    (Some("param"), _) if req["name"] == "stabilizer.estimator" => {
                        json!({"version": 1, "status": 0, "name": "stabilizer.estimator",
                               "value": req["value"].to_string()})
                    }
                    (Some("param"), _) => {
                        json!({"version": 1, "status": 1, "msg": "'nope.nope'"})
                    }
                    _ => json!({"version": 1, "status": 255, "msg": "Unknown command"}),
                };
                rep.send(reply.to_string().as_bytes(), 0).expect("reply");
            }
            if items[1].is_readable() {
                let msg: Value =
                    serde_json::from_slice(&pull.recv_bytes(0).expect("ctrl")).expect("json");
                ctrl_log.lock().expect("lock").push(msg);
            }
            if let Some(name) = &publishing
                && last_pub.elapsed() >= Duration::from_millis(10)
            {
                last_pub = Instant::now();
                t_ms += 10;
                let events = [
                    json!({"version": 1, "name": name, "event": "started"}),
                    json!({"version": 1, "name": "someone-else", "event": "data",
                               "timestamp": t_ms, "variables": {"pm.vbat": 1.0}}),
                    json!({"version": 1, "name": name, "event": "data", "timestamp": t_ms,
                               "variables": {"stateEstimate.z": 0.25, "pm.vbat": 3.875}}),
                ];
                for e in events {
                    publ.send(e.to_string().as_bytes(), 0).expect("pub");
                }
            }
        }
    });
    let base = port_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("fake cfzmq started");
    FakeCfzmq {
        base,
        requests,
        controls,
        stop,
        thread: Some(thread),
    }
}

fn quick() -> CfzmqConfig {
    CfzmqConfig {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(3),
    }
}

fn uri(base: u16) -> String {
    format!("cfzmq://127.0.0.1:{base}?uri=radio://0/80/2M/E7E7E7E7E7")
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn connect_log_control_and_params() {
    let fake = spawn_fake(Mode::Normal);
    let mut link = CfzmqLink::open_with(&uri(fake.base), quick()).expect("open");
    assert_eq!(link.crazyflie_uri(), "radio://0/80/2M/E7E7E7E7E7");
    assert_eq!(
        fake.requests.lock().expect("lock")[0],
        json!({"version": 1, "cmd": "connect", "uri": "radio://0/80/2M/E7E7E7E7E7"})
    );

    // Logs: create + start, then data from the PUB socket, ours only, in our variable order.
    link.start_log("bat", &["pm.vbat", "stateEstimate.z"], 10)
        .expect("log");
    let requests = fake.requests.lock().expect("lock").clone();
    assert_eq!(
        requests[1],
        json!({"version": 1, "cmd": "log", "action": "create", "name": "bat", "period": 10,
               "variables": ["pm.vbat", "stateEstimate.z"]})
    );
    assert_eq!(
        requests[2],
        json!({"version": 1, "cmd": "log", "action": "start", "name": "bat"})
    );
    let samples = wait_for("log data", || {
        let s = link.poll_log().expect("poll");
        (!s.is_empty()).then_some(s)
    });
    for s in &samples {
        assert_eq!(s.block, "bat");
        assert_eq!(
            s.values,
            vec![
                ("pm.vbat".to_owned(), 3.875),
                ("stateEstimate.z".to_owned(), 0.25)
            ]
        );
        assert!(s.timestamp_ms > 1000);
    }
    assert!(link.stats().log_samples_received >= samples.len() as u64);
    let e = link
        .start_log("bad", &["no.such"], 10)
        .expect_err("unknown variable");
    assert_eq!(e.kind(), LinkErrorKind::NotFound, "{e}");

    // Control: cflib's send_setpoint(roll, pitch, yaw, thrust) packs (roll, -pitch, yaw,
    // thrust): the bytes must equal our wire setpoint.
    let sp = RpytSetpoint {
        roll_deg: 10.0,
        pitch_deg: -5.0,
        yaw_rate_deg_s: -20.0,
        thrust: 36000,
    };
    link.send_setpoint(&sp).expect("setpoint");
    let ctrl = wait_for("control message", || {
        fake.controls.lock().expect("lock").first().cloned()
    });
    assert_eq!(
        ctrl,
        json!({"version": 1, "roll": 10.0, "pitch": 5.0, "yaw": -20.0, "thrust": 36000})
    );
    let f = |k: &str| ctrl[k].as_f64().expect("number") as f32;
    let mut wire = vec![0x3C];
    wire.extend_from_slice(&f("roll").to_le_bytes());
    wire.extend_from_slice(&(-f("pitch")).to_le_bytes());
    wire.extend_from_slice(&f("yaw").to_le_bytes());
    let thrust = u16::try_from(ctrl["thrust"].as_u64().expect("integer thrust")).expect("u16");
    wire.extend_from_slice(&thrust.to_le_bytes());
    assert_eq!(wire, sp.encode().to_vec());

    // Params: values from the connect reply, writes confirmed by cfzmq.
    assert_eq!(link.param_get("stabilizer.estimator").expect("get"), 2.0);
    assert_eq!(link.param_get("pid_rate.yaw_kp").expect("get"), 6.0);
    link.param_set("stabilizer.estimator", 1.0).expect("set");
    let last = fake
        .requests
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("req");
    assert_eq!(
        last,
        json!({"version": 1, "cmd": "param", "name": "stabilizer.estimator", "value": 1})
    );
    assert_eq!(link.param_get("stabilizer.estimator").expect("get"), 1.0);
    let e = link.param_set("nope.nope", 1.5).expect_err("unknown");
    assert_eq!(e.kind(), LinkErrorKind::NotFound, "{e}");
    assert_eq!(
        link.param_get("nope.nope").expect_err("unknown").kind(),
        LinkErrorKind::NotFound
    );
    assert!(link.params().is_some());

    // No external position or position setpoints over cfzmq.
    assert_eq!(
        link.send_external_position([0.0; 3])
            .expect_err("unsupported")
            .kind(),
        LinkErrorKind::Unsupported
    );

    // E-stop: a zero setpoint, then the link refuses to fly.
    link.emergency_stop().expect("estop");
    wait_for("zero setpoint", || {
        let controls = fake.controls.lock().expect("lock");
        (controls.len() == 2).then_some(())
    });
    assert_eq!(fake.controls.lock().expect("lock")[1]["thrust"], 0);
    assert_eq!(
        link.send_setpoint(&sp).expect_err("latched").kind(),
        LinkErrorKind::EmergencyStopped
    );
    assert_eq!(link.stats().packets_sent, 2);
}

#[test]
fn connect_failure_is_reported_with_cfzmq_message() {
    let fake = spawn_fake(Mode::ConnectFails);
    let e = CfzmqLink::open_with(&uri(fake.base), quick())
        .err()
        .expect("connect fails");
    assert_eq!(e.kind(), LinkErrorKind::ConnectFailed, "{e}");
    assert!(e.to_string().contains("Too many packets lost"), "{e}");
}

#[test]
fn a_timed_out_request_resets_the_req_socket() {
    let fake = spawn_fake(Mode::SlowFirstLogCreate);
    let config = CfzmqConfig {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_millis(200),
    };
    let mut link = CfzmqLink::open_with(&uri(fake.base), config).expect("open");
    let e = link
        .start_log("bat", &["pm.vbat"], 100)
        .expect_err("slow reply");
    assert_eq!(e.kind(), LinkErrorKind::Timeout, "{e}");
    // Let the fake send its late reply into the void, then the fresh REQ works.
    std::thread::sleep(Duration::from_millis(500));
    link.start_log("bat", &["pm.vbat"], 100)
        .expect("works after reset");
}

#[test]
fn no_server_times_out() {
    let ctx = zmq::Context::new();
    let (base, rep, publ, pull) = bind_all(&ctx);
    drop((rep, publ, pull));
    let config = CfzmqConfig {
        connect_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_millis(200),
    };
    let e = CfzmqLink::open_with(&uri(base), config)
        .err()
        .expect("nobody");
    assert_eq!(e.kind(), LinkErrorKind::Timeout, "{e}");
}
