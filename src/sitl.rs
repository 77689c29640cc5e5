//! `depthpilot sitl`: simulated Crazyflies served over CRTP-in-UDP, the way cflib's `udp://`
//! driver and CrazySim expect: one raw CRTP packet (header + data) per datagram, a lone `0xFF`
//! probe answered (that is how cflib scans ports 19850–19859), replies to the sender's address.
//! Each quad runs in real time in its own thread on its own port (19850, 19851, …).

use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_runtime::zmq_client::{
    ClientAccess, ClientServers, DEFAULT_LED_ENDPOINT, DEFAULT_PARAM_ENDPOINT, ParamEntry,
    format_value, rgb565_be,
};
use depthpilot_sitl::{SimCrazyflie, SitlStats};
use depthpilot_types::Scene;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The scene `sitl` simulates when none is given: a quad on the floor at the origin.
const DEFAULT_SCENE: &str = include_str!("../scenes/hover.ron");

/// Arguments of `depthpilot sitl`.
#[derive(clap::Args, Debug)]
pub struct SitlArgs {
    /// Scene whose quad, world and disturbances to simulate (its setpoints are ignored: the
    /// clients fly). Default: a CF2.x on the floor at the origin.
    #[arg(long)]
    pub scene: Option<PathBuf>,
    /// UDP port of the first quad (cflib scans 19850–19859).
    #[arg(long, default_value_t = 19850)]
    pub port: u16,
    /// Address to bind (use 0.0.0.0 to serve other hosts).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Number of quads, on consecutive ports.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub count: u16,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Seconds between status lines (0: none).
    #[arg(long, default_value_t = 5.0)]
    pub status_every: f64,
    /// Serve the client's ZMQ parameter protocol (REP) in front of the first quad, as cfclient
    /// does on port 1213 (loopback by default; give an endpoint such as tcp://*:1213, with --insecure, for others).
    #[arg(long, value_name = "ENDPOINT", num_args = 0..=1, default_missing_value = DEFAULT_PARAM_ENDPOINT)]
    pub zmq_param: Option<String>,
    /// Serve the client's ZMQ LED-ring protocol (PULL) in front of the first quad, as cfclient
    /// does on port 1214.
    #[arg(long, value_name = "ENDPOINT", num_args = 0..=1, default_missing_value = DEFAULT_LED_ENDPOINT)]
    pub zmq_led: Option<String>,
    /// Write the first quad's flight log (JSON lines at 100 Hz: pose, motors, firmware state, the
    /// LED ring's colours) to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// CURVE (authenticated, encrypted) on the parameter and LED servers, keys from DIR (see
    /// `depthpilot keygen`): DIR/server.key, DIR/server.pub, and the clients allowed per role,
    /// DIR/allow/param/*.pub and DIR/allow/led/*.pub. They may then bind any interface without
    /// --insecure.
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    pub keys: Option<std::path::PathBuf>,
}

/// The simulated Crazyflie as the client's ZMQ servers see it.
struct Access<'a>(&'a mut SimCrazyflie);

impl ClientAccess for Access<'_> {
    fn param_toc(&mut self) -> Vec<ParamEntry> {
        self.0
            .param_entries()
            .into_iter()
            .map(|p| ParamEntry {
                value: format_value(p.value, p.is_float),
                name: p.name,
                type_name: p.type_name,
                writable: p.writable,
            })
            .collect()
    }

    fn param_set(&mut self, name: &str, value: &str) -> Result<String, String> {
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("value {value:?} is not a number"))?;
        let confirmed = self.0.set_param_by_name(name, v)?;
        let is_float = self
            .0
            .param_entries()
            .iter()
            .any(|p| p.name == name && p.is_float);
        Ok(format_value(confirmed, is_float))
    }

    fn led_write(&mut self, rgb: &[[u8; 3]; 12]) -> Result<(), String> {
        self.0.write_led_memory(&rgb565_be(rgb));
        Ok(())
    }
}

/// One row of the sitl's flight log.
#[derive(serde::Serialize)]
struct SitlRow {
    t_s: f64,
    pos_m: [f64; 3],
    rpy_deg: [f64; 3],
    motors: [u16; 4],
    firmware: &'static str,
    ring_effect: u8,
    /// The LED ring's colours (None: an effect the model does not render).
    ring_rgb: Option<[[u8; 3]; 12]>,
}

/// The first quad's flight log: JSON lines, flushed every 0.2 s (a killed process loses at most that).
struct SitlLog {
    out: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    next_ns: u64,
    last_flush: Instant,
}

impl SitlLog {
    const PERIOD_NS: u64 = 10_000_000;

    fn create(path: &std::path::Path, scene: &Scene) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create log {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let header = serde_json::json!({
            "format": "depthpilot-sitl-log", "version": 1, "scene": scene.name, "log_hz": 100,
        });
        writeln!(out, "{header}").with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            out,
            path: path.to_path_buf(),
            next_ns: 0,
            last_flush: Instant::now(),
        })
    }

    fn maybe_write(&mut self, cf: &SimCrazyflie) -> anyhow::Result<()> {
        let now_ns = cf.plant().now_ns();
        if now_ns < self.next_ns {
            return Ok(());
        }
        self.next_ns = now_ns + Self::PERIOD_NS;
        let truth = cf.plant().truth();
        let row = SitlRow {
            t_s: now_ns as f64 * 1e-9,
            pos_m: truth.pos_m.to_array(),
            rpy_deg: truth.world_from_body.rpy().map(f64::to_degrees),
            motors: cf.plant().motor_cmd(),
            firmware: cf.plant().firmware().state_name(),
            ring_effect: cf.ring_effect(),
            ring_rgb: cf.ring_colours(),
        };
        let line = serde_json::to_string(&row).context("serialising a log row")?;
        writeln!(self.out, "{line}")
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        if self.last_flush.elapsed() >= Duration::from_millis(200) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.last_flush = Instant::now();
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

pub fn sitl(args: &SitlArgs) -> Result<(), Failure> {
    let scene = match &args.scene {
        Some(path) => Scene::load(path),
        None => Scene::from_ron_str(DEFAULT_SCENE, std::path::Path::new("<built-in hover>")),
    }
    .map_err(|e| Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::Error::new(e),
    })?;
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(Failure {
            code: EXIT_BAD_INPUT,
            error: anyhow::anyhow!("--duration must be a positive number of seconds, got {d}"),
        });
    }
    let last_port = u32::from(args.port) + u32::from(args.count) - 1;
    if last_port > u32::from(u16::MAX) {
        return Err(Failure {
            code: EXIT_BAD_INPUT,
            error: anyhow::anyhow!(
                "--port {} --count {} runs past port 65535",
                args.port,
                args.count
            ),
        });
    }
    let mut sockets = Vec::new();
    for i in 0..args.count {
        let addr = SocketAddr::new(args.bind, args.port + i);
        let socket = UdpSocket::bind(addr)
            .with_context(|| format!("cannot bind UDP {addr} (is another sitl running?)"))?;
        socket
            .set_nonblocking(true)
            .context("cannot make the UDP socket non-blocking")?;
        sockets.push((addr, socket));
    }
    let keys = match &args.keys {
        Some(_) if args.zmq_param.is_none() && args.zmq_led.is_none() => {
            return Err(Failure {
                code: crate::EXIT_BAD_INPUT,
                error: anyhow::anyhow!(
                    "--keys: sitl binds no ZMQ server for CURVE to protect; give --zmq-param \
                     and/or --zmq-led (its CRTP socket is UDP, not ZMQ)"
                ),
            });
        }
        Some(dir) => Some(crate::fly::load_server_keys(dir)?),
        None => None,
    };
    let mut servers = if args.zmq_param.is_some() || args.zmq_led.is_some() {
        let s = match &keys {
            Some(k) => {
                ClientServers::bind_curve(args.zmq_param.as_deref(), args.zmq_led.as_deref(), k)
            }
            None => ClientServers::bind_with(
                args.zmq_param.as_deref(),
                args.zmq_led.as_deref(),
                depthpilot_runtime::netpolicy::BindPolicy::from_insecure(args.insecure),
            ),
        }
        .map_err(|e| Failure {
            code: 1,
            error: anyhow::Error::new(e),
        })?;
        for (what, ep) in [("parameters", &args.zmq_param), ("LED ring", &args.zmq_led)] {
            if let Some(ep) = ep {
                eprintln!("depthpilot sitl: client ZMQ {what} server on {ep} (Crazyflie 0)");
            }
        }
        Some(s)
    } else {
        None
    };
    let mut log = match &args.log {
        Some(path) => Some(SitlLog::create(path, &scene)?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let status_every = (args.status_every > 0.0 && args.status_every.is_finite())
        .then(|| Duration::from_secs_f64(args.status_every));
    let mut threads = Vec::new();
    for (i, (addr, socket)) in sockets.into_iter().enumerate() {
        let mut scene = scene.clone();
        scene.seed = scene.seed.wrapping_add(i as u64);
        eprintln!(
            "depthpilot sitl: Crazyflie {i} at udp://{addr} (scene `{}`)",
            scene.name
        );
        let stop = stop.clone();
        let duration = args.duration.map(Duration::from_secs_f64);
        let extras = Extras {
            servers: if i == 0 { servers.take() } else { None },
            log: if i == 0 { log.take() } else { None },
        };
        threads.push(std::thread::spawn(move || {
            serve(addr, socket, &scene, duration, status_every, &stop, extras)
        }));
    }
    let mut first_error = None;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(anyhow::anyhow!("a simulation thread panicked"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Longest stretch the simulation catches up in one go after the host stalled; beyond it the
/// simulation falls behind the wall clock (and says so in the status line).
const MAX_CATCH_UP: u64 = 50;

/// What the first quad serves besides CRTP.
struct Extras {
    servers: Option<ClientServers>,
    log: Option<SitlLog>,
}

/// One quad: real-time loop of receive → step → send.
fn serve(
    addr: SocketAddr,
    socket: UdpSocket,
    scene: &Scene,
    duration: Option<Duration>,
    status_every: Option<Duration>,
    stop: &AtomicBool,
    mut extras: Extras,
) -> anyhow::Result<()> {
    let mut cf = SimCrazyflie::new(scene);
    let began = Instant::now();
    let mut start = began;
    let mut next_status = status_every.map(|d| start + d);
    let mut peer: Option<SocketAddr> = None;
    let mut buf = [0u8; 1024];
    let mut send_errors = 0u64;
    let mut behind_steps = 0u64;
    let send = |to: SocketAddr, bytes: &[u8], errors: &mut u64| {
        if socket.send_to(bytes, to).is_err() {
            *errors += 1;
        }
    };
    loop {
        if stop.load(Ordering::Relaxed) || duration.is_some_and(|d| began.elapsed() >= d) {
            break;
        }
        // Everything that arrived.
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let replies = cf.handle(&buf[..n]);
                    if !(n == 1 && buf[0] == 0xFF) {
                        peer = Some(from);
                    }
                    for r in replies {
                        send(from, &r, &mut send_errors);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP port unreachable from a client that went away, etc.: keep serving.
                Err(_) => break,
            }
        }
        // The client's ZMQ servers, between packets (as cfclient's threads would).
        if let Some(servers) = extras.servers.as_mut() {
            for problem in servers.poll(&mut Access(&mut cf)) {
                eprintln!("sitl {addr}: {problem}");
            }
        }
        // Advance the simulation to the wall clock.
        let due = (start.elapsed().as_nanos() / u128::from(cf.dt_ns())) as u64;
        let mut done = 0;
        while cf.steps() < due && done < MAX_CATCH_UP {
            let out = cf.step();
            done += 1;
            if let Some(log) = extras.log.as_mut() {
                log.maybe_write(&cf)?;
            }
            if let Some(p) = peer {
                for bytes in out {
                    send(p, &bytes, &mut send_errors);
                }
            }
        }
        behind_steps = behind_steps.max(due.saturating_sub(cf.steps()));
        if due > cf.steps() + 10 * MAX_CATCH_UP {
            // Stalled for good (a suspended process): the simulation resumes from here instead
            // of racing to catch up.
            start = Instant::now() - Duration::from_nanos(cf.steps() * cf.dt_ns());
        }
        if let Some(at) = next_status
            && Instant::now() >= at
        {
            next_status = status_every.map(|d| at + d);
            print_status(addr, &cf.stats(), peer, send_errors, behind_steps);
        }
        let next_step = start + Duration::from_nanos((cf.steps() + 1) * cf.dt_ns());
        let now = Instant::now();
        if next_step > now {
            std::thread::sleep((next_step - now).min(Duration::from_millis(1)));
        }
    }
    print_status(addr, &cf.stats(), peer, send_errors, behind_steps);
    if let Some(s) = &extras.servers {
        eprintln!(
            "sitl {addr}: ZMQ param requests {} ({} errors), LED writes {} ({} skipped)",
            s.stats.param_requests, s.stats.param_errors, s.stats.led_writes, s.stats.led_errors
        );
        print_auth(&format!("sitl {addr}"), s);
    }
    if let Some(log) = extras.log.as_mut() {
        log.flush()?;
    }
    Ok(())
}

fn print_status(
    addr: SocketAddr,
    s: &SitlStats,
    peer: Option<SocketAddr>,
    send_errors: u64,
    behind_steps: u64,
) {
    eprintln!(
        "sitl {addr}: t={:.1} s z={:.3} m firmware={} rx={} tx={} bad={} peer={} send_errors={send_errors} max_lag={behind_steps} steps",
        s.sim_seconds,
        s.z_m,
        s.firmware,
        s.packets_in,
        s.packets_out,
        s.bad_packets,
        peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
    );
}

/// With CURVE: the handshakes of the parameter and LED servers (printed when they stop).
pub(crate) fn print_auth(who: &str, servers: &ClientServers) {
    use depthpilot_types::netpolicy::Role;
    for (name, role) in [("param", Role::Param), ("led", Role::Led)] {
        if let Some(a) = servers.auth_counts(role) {
            eprintln!(
                "{who}: CURVE `{name}`: {} handshake(s) accepted, {} denied, {} failed",
                a.accepted, a.denied, a.handshake_failures
            );
        }
    }
}
