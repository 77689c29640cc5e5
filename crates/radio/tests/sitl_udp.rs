//! CRTP over UDP end to end: crazyflie-lib connects through our `UdpConnection` to a minimal
//! fake Crazyflie (protocol version, log/param TOCs, log blocks, param read/write, memory list),
//! and what reaches the fake is compared byte for byte with what cflib 0.1.34 builds.

use depthpilot_crtp::RpytSetpoint;
use depthpilot_radio::{CrtpLink, CrtpLinkConfig, Link, LinkErrorKind, open, scan_udp};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// (group, name, log type) — log types: 7 float, 4 int8.
const LOG_TOC: [(&str, &str, u8); 3] = [
    ("pm", "vbat", 7),
    ("stateEstimate", "z", 7),
    ("pm", "state", 4),
];
/// (group, name, param type byte) — 0x08 u8, 0x06 float, 0x40 flag = read-only.
const PARAM_TOC: [(&str, &str, u8); 3] = [
    ("stabilizer", "estimator", 0x08),
    ("pid_rate", "yaw_kp", 0x06),
    ("deck", "bcFlow2", 0x48),
];

struct FakeCf {
    port: u16,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FakeCf {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeCf {
    fn uri(&self) -> String {
        format!("udp://127.0.0.1:{}", self.port)
    }

    /// Datagrams received on one port/channel (header masked with 0xF3), whole.
    fn received_on(&self, port: u8, channel: u8) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|d| {
                d.first()
                    .is_some_and(|h| h >> 4 == port && h & 3 == channel)
            })
            .cloned()
            .collect()
    }

    fn wait_received_on(&self, port: u8, channel: u8, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let got = self.received_on(port, channel);
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn hdr(port: u8, channel: u8) -> u8 {
    (port << 4) | channel
}

fn toc_item(id: u16, ty: u8, group: &str, name: &str) -> Vec<u8> {
    let mut out = vec![2];
    out.extend_from_slice(&id.to_le_bytes());
    out.push(ty);
    out.extend_from_slice(group.as_bytes());
    out.push(0);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out
}

fn toc_info(count: usize, log: bool) -> Vec<u8> {
    let mut out = vec![3];
    out.extend_from_slice(&(count as u16).to_le_bytes());
    out.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    if log {
        out.extend_from_slice(&[16, 128]);
    }
    out
}

/// A fake Crazyflie on 127.0.0.1:<ephemeral>. `protocol_version: None` = never answers.
fn spawn_fake_cf(protocol_version: Option<u8>) -> FakeCf {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(2)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (log, stop_flag) = (received.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        let mut params: Vec<Vec<u8>> = vec![vec![2], 6.0f32.to_le_bytes().to_vec(), vec![0]];
        // block id → (variable ids, period, next due, started)
        let mut blocks: HashMap<u8, (Vec<u16>, Duration, Instant, bool)> = HashMap::new();
        let started = Instant::now();
        let mut peer = None;
        let mut buf = [0u8; 256];
        while !stop_flag.load(Ordering::SeqCst) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                peer = Some(from);
                let pk = buf[..n].to_vec();
                log.lock().expect("lock").push(pk.clone());
                let Some(version) = protocol_version else {
                    continue;
                };
                let (h, d) = (pk[0], &pk[1..]);
                let (port, ch) = (h >> 4, h & 3);
                let reply: Option<Vec<u8>> = match (port, ch, d) {
                    (15, 3, []) => Some(vec![0xF3]),
                    (13, 1, [0]) => Some(vec![hdr(13, 1), 0, version]),
                    (5, 0, [3]) => Some([vec![hdr(5, 0)], toc_info(LOG_TOC.len(), true)].concat()),
                    (5, 0, [2, lo, hi]) => LOG_TOC
                        .get(usize::from(u16::from_le_bytes([*lo, *hi])))
                        .map(|(g, n, t)| {
                            let item = toc_item(u16::from_le_bytes([*lo, *hi]), *t, g, n);
                            [vec![hdr(5, 0)], item].concat()
                        }),
                    (5, 1, [5]) => Some(vec![hdr(5, 1), 5, 0, 0]),
                    (5, 1, [6, blk]) => {
                        blocks.insert(*blk, (Vec::new(), Duration::ZERO, Instant::now(), false));
                        Some(vec![hdr(5, 1), 6, *blk, 0])
                    }
                    (5, 1, [7, blk, _ty, lo, hi]) => {
                        let id = u16::from_le_bytes([*lo, *hi]);
                        let ok = usize::from(id) < LOG_TOC.len();
                        if let (true, Some(b)) = (ok, blocks.get_mut(blk)) {
                            b.0.push(id);
                        }
                        Some(vec![hdr(5, 1), 7, *blk, if ok { 0 } else { 2 }])
                    }
                    (5, 1, [3, blk, period]) => {
                        if let Some(b) = blocks.get_mut(blk) {
                            b.1 = Duration::from_millis(u64::from(*period) * 10);
                            b.3 = true;
                        }
                        Some(vec![hdr(5, 1), 3, *blk, 0])
                    }
                    (5, 1, [cmd @ (2 | 4), blk]) => {
                        blocks.remove(blk);
                        Some(vec![hdr(5, 1), *cmd, *blk, 0])
                    }
                    (4, 0, [1]) => Some(vec![hdr(4, 0), 1, 0]),
                    (2, 0, [3]) => {
                        Some([vec![hdr(2, 0)], toc_info(PARAM_TOC.len(), false)].concat())
                    }
                    (2, 0, [2, lo, hi]) => PARAM_TOC
                        .get(usize::from(u16::from_le_bytes([*lo, *hi])))
                        .map(|(g, n, t)| {
                            let item = toc_item(u16::from_le_bytes([*lo, *hi]), *t, g, n);
                            [vec![hdr(2, 0)], item].concat()
                        }),
                    (2, 1, [lo, hi]) => params
                        .get(usize::from(u16::from_le_bytes([*lo, *hi])))
                        .map(|v| [vec![hdr(2, 1), *lo, *hi, 0], v.clone()].concat()),
                    (2, 2, [lo, hi, value @ ..]) => {
                        let id = usize::from(u16::from_le_bytes([*lo, *hi]));
                        match PARAM_TOC.get(id) {
                            Some((_, _, t)) if t & 0x40 == 0 => {
                                params[id] = value.to_vec();
                                Some([vec![hdr(2, 2)], d.to_vec()].concat())
                            }
                            _ => None, // read-only or unknown: the firmware stays silent
                        }
                    }
                    _ => None,
                };
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, from);
                }
            }
            // Log data for started blocks.
            let Some(to) = peer else { continue };
            for (blk, (vars, period, due, running)) in &mut blocks {
                if !*running || Instant::now() < *due {
                    continue;
                }
                *due = Instant::now() + *period;
                let ts = u32::try_from(started.elapsed().as_millis()).unwrap_or(0);
                let mut out = vec![hdr(5, 2), *blk];
                out.extend_from_slice(&ts.to_le_bytes()[..3]);
                for id in vars.iter() {
                    match id {
                        0 => out.extend_from_slice(&3.7f32.to_le_bytes()),
                        1 => out.extend_from_slice(&0.5f32.to_le_bytes()),
                        _ => out.push(1),
                    }
                }
                let _ = socket.send_to(&out, to);
            }
        }
    });
    FakeCf {
        port,
        received,
        stop,
        thread: Some(thread),
    }
}

fn poll_until(link: &mut dyn Link, min: usize) -> Vec<depthpilot_radio::LogSample> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut all = Vec::new();
    while all.len() < min && Instant::now() < deadline {
        all.extend(link.poll_log().expect("poll"));
        std::thread::sleep(Duration::from_millis(5));
    }
    all
}

const SETPOINT: RpytSetpoint = RpytSetpoint {
    roll_deg: 10.5,
    pitch_deg: -5.25,
    yaw_rate_deg_s: -20.0,
    thrust: 36000,
};

#[test]
fn connects_logs_and_sends_over_udp() {
    let fake = spawn_fake_cf(Some(12));
    let mut link = open(&fake.uri()).expect("connect over UDP");
    assert_eq!(link.uri(), fake.uri());

    link.start_log("state", &["pm.vbat", "stateEstimate.z"], 20)
        .expect("log block");
    let samples = poll_until(link.as_mut(), 3);
    assert!(samples.len() >= 3, "{samples:?}");
    for s in &samples {
        assert_eq!(s.block, "state");
        assert_eq!(
            s.values,
            vec![
                ("pm.vbat".to_owned(), f64::from(3.7f32)),
                ("stateEstimate.z".to_owned(), 0.5)
            ]
        );
    }
    assert!(
        samples
            .windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    );

    link.send_setpoint(&SETPOINT).expect("setpoint");
    link.send_external_position([1.0, -2.5, 0.75])
        .expect("extpos");
    link.send_position_setpoint([1.0, -2.5, 0.75], 90.0)
        .expect("position");
    assert_eq!(
        fake.wait_received_on(3, 0, 1)[0],
        SETPOINT.encode().to_vec()
    );
    assert_eq!(
        fake.wait_received_on(6, 0, 1)[0],
        [
            vec![0x6C],
            [1.0f32, -2.5, 0.75]
                .iter()
                .flat_map(|f| f.to_le_bytes())
                .collect()
        ]
        .concat()
    );
    let position = fake.wait_received_on(7, 0, 1);
    assert_eq!(&position[0][..2], &[0x7C, 7]);

    let stats = link.stats();
    assert_eq!((stats.packets_sent, stats.send_errors), (3, 0));
    assert!(stats.log_samples_received >= 3);
    assert_eq!(stats.link_quality, None, "UDP has no radio statistics");

    link.emergency_stop().expect("estop");
    assert_eq!(fake.wait_received_on(9, 1, 1)[0], vec![0x9D, 0x03]);
    let e = link.send_setpoint(&SETPOINT).expect_err("latched");
    assert_eq!(e.kind(), LinkErrorKind::EmergencyStopped);
}

#[test]
fn params_over_udp() {
    let fake = spawn_fake_cf(Some(12));
    let mut link = CrtpLink::connect(&fake.uri()).expect("connect");
    assert_eq!(
        link.param_names(),
        vec!["deck.bcFlow2", "pid_rate.yaw_kp", "stabilizer.estimator"]
    );
    assert_eq!(link.log_names().len(), 3);
    let params = link.params().expect("CRTP links have params");
    assert_eq!(params.param_get("pid_rate.yaw_kp").expect("get"), 6.0);
    assert_eq!(params.param_get("stabilizer.estimator").expect("get"), 2.0);
    params.param_set("pid_rate.yaw_kp", 7.25).expect("set");
    params.param_set("stabilizer.estimator", 1.0).expect("set");
    assert_eq!(params.param_get("pid_rate.yaw_kp").expect("get"), 7.25);
    assert_eq!(params.param_get("stabilizer.estimator").expect("get"), 1.0);
    // Write packets: [id u16][value] on 2:2.
    let writes = fake.received_on(2, 2);
    assert_eq!(
        writes[0],
        [vec![0x2E, 1, 0], 7.25f32.to_le_bytes().to_vec()].concat()
    );
    assert_eq!(writes[1], vec![0x2E, 0, 0, 1]);

    let e = params
        .param_set("deck.bcFlow2", 1.0)
        .expect_err("read-only");
    assert_eq!(e.kind(), LinkErrorKind::Rejected, "{e}");
    let e = params.param_get("no.such").expect_err("unknown");
    assert_eq!(e.kind(), LinkErrorKind::NotFound, "{e}");
    let e = params.param_set("no.such", 1.0).expect_err("unknown");
    assert_eq!(e.kind(), LinkErrorKind::NotFound, "{e}");

    let e = link
        .start_log("bad", &["no.such"], 100)
        .expect_err("unknown variable");
    assert_eq!(e.kind(), LinkErrorKind::NotFound, "{e}");
    for period in [0, 5, 2551] {
        let e = link
            .start_log("bad", &["pm.vbat"], period)
            .expect_err("bad period");
        assert_eq!(e.kind(), LinkErrorKind::InvalidArgument, "{e}");
    }
    let nan = RpytSetpoint {
        roll_deg: f32::NAN,
        ..SETPOINT
    };
    assert_eq!(
        link.send_setpoint(&nan).expect_err("nan").kind(),
        LinkErrorKind::InvalidArgument
    );
    assert!(
        fake.received_on(3, 0).is_empty(),
        "a NaN setpoint is never sent"
    );
}

/// cflib 0.1.34 builds the same bytes (needs `python3` with cflib; skipped otherwise).
#[test]
fn bytes_match_cflib() {
    const SCRIPT: &str = r#"
from cflib.crazyflie.commander import Commander
from cflib.crazyflie.localization import Localization
from cflib.crazyflie.supervisor import Supervisor
class Platform:
    def get_protocol_version(self): return 12
class CF:
    def __init__(self):
        self.out = []
        self.platform = Platform()
    def send_packet(self, pk): self.out.append(bytes([pk.header]) + bytes(pk.data))
    def add_port_callback(self, *a): pass
cf = CF()
Commander(cf).send_setpoint(10.5, 5.25, -20.0, 36000)
Localization(cf).send_extpos([1.0, -2.5, 0.75])
Commander(cf).send_position_setpoint(1.0, -2.5, 0.75, 90.0)
Supervisor(cf).send_emergency_stop()
for p in cf.out: print(p.hex())
"#;
    let Ok(out) = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .output()
    else {
        eprintln!("skipped: no python3");
        return;
    };
    if !out.status.success() {
        eprintln!(
            "skipped: python3 cannot run cflib: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let cflib: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();

    let fake = spawn_fake_cf(Some(12));
    let mut link = open(&fake.uri()).expect("connect");
    // cflib's send_setpoint takes the user pitch (+5.25) and negates it: our wire value.
    link.send_setpoint(&SETPOINT).expect("setpoint");
    link.send_external_position([1.0, -2.5, 0.75])
        .expect("extpos");
    link.send_position_setpoint([1.0, -2.5, 0.75], 90.0)
        .expect("position");
    link.emergency_stop().expect("estop");
    let hex = |v: &Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let ours: Vec<String> = [(3, 0), (6, 0), (7, 0), (9, 1)]
        .iter()
        .map(|(p, c)| hex(&fake.wait_received_on(*p, *c, 1)[0]))
        .collect();
    assert_eq!(ours, cflib);
}

#[test]
fn scan_finds_the_simulator() {
    let fake = spawn_fake_cf(Some(12));
    let nobody = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent = nobody.local_addr().expect("addr").port();
    assert_eq!(scan_udp("127.0.0.1", [silent, fake.port]), vec![fake.uri()]);
}

#[test]
fn nothing_listening_fails_fast_and_says_why() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let t0 = Instant::now();
    let e = CrtpLink::connect(&format!("udp://127.0.0.1:{port}"))
        .err()
        .expect("nobody there");
    eprintln!("{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert!(e.to_string().contains("connection refused"), "{e}");
}

#[test]
fn silent_peer_times_out() {
    let fake = spawn_fake_cf(None);
    let config = CrtpLinkConfig {
        connect_timeout: Duration::from_millis(300),
        ..CrtpLinkConfig::default()
    };
    let e = CrtpLink::connect_with(&fake.uri(), config)
        .err()
        .expect("silent");
    assert_eq!(e.kind(), LinkErrorKind::Timeout, "{e}");
    // It asked for the protocol version first (13:1 [0]).
    assert_eq!(fake.received_on(13, 1)[0], vec![0xDD, 0]);
}

#[test]
fn unsupported_protocol_version_is_refused() {
    let fake = spawn_fake_cf(Some(11));
    let e = CrtpLink::connect(&fake.uri()).err().expect("too old");
    assert_eq!(e.kind(), LinkErrorKind::ConnectFailed, "{e}");
    assert!(e.to_string().contains("protocol version 11"), "{e}");
}
