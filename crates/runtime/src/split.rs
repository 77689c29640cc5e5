//! A flight split over processes (DESIGN §3): the vision in one process, control + mux + radio +
//! world in another, talking over the ZMQ bus (`bus.rs` envelopes).
//!
//! ```text
//!  control process                                  vision process
//!  world ── PUB sim/truth (bind) ─────────────────► SUB (connect) ─► camera + detector
//!  controller ◄─ SUB vision/measurement (bind) ◄─── PUB (connect)  ─┘  └► PUSH 2015 detector JSON
//! ```
//!
//! The control side binds both endpoints, so a vision process may die and come back (ZMQ
//! reconnects); it notices within [`STALE_AFTER`] when measurements stop, says so, and the
//! controller's supervisor holds, then lands. Garbage on any topic is counted, never fatal.
//!
//! CURVE (issue 20, `run --keys DIR`, [`BusCurve`]): the control side makes both of its bus
//! sockets (truth PUB, measurement SUB) CURVE servers of the ZAP domain `bus` (one allow-list,
//! `DIR/allow/bus/*.pub`, for both: a vision needs both directions), in a ZMQ context of their
//! own so that its ZAP handler sees no other socket of the flight; the vision side's two sockets
//! are CURVE clients. A vision whose key is not on the list gets no truth and its measurements
//! never reach the controller (its handshake fails before any message); each denial and failed
//! handshake is printed and counted ([`BusReport::auth`]). What libzmq does next (measured, see
//! `curve_tests`): a CURVE client whose key ZAP denied gets the server's ERROR and is not
//! reconnected (restart it with a good key); a client without CURVE (a vision run without
//! `--keys`) is reconnected by libzmq a few times (when it sees the connection closed before
//! it sees the mismatch itself: 2 to 10 times per socket within ~1 s here), each attempt
//! failing, printed and counted, then it stops: never through, never silent.

use crate::RuntimeError;
use crate::actors::{
    RealtimeSensing, ReportVision, SenseRealtime, Timed, VisionReport, sense_realtime,
};
use crate::bus::{
    self, DetectorMsg, Garbage, GarbageCounts, MeasurementMsg, SeqTracker, TOPIC_MEASUREMENT,
    TOPIC_TRUTH, TOPIC_VISION_STATUS, TruthMsg, VisionStatusMsg,
};
use crate::curve::{
    AuthCounts, AuthMonitor, DomainCounts, KeyPair, PublicKey, ServerKeys, ZapHandler, make_client,
    make_server, zap_domain,
};
use crate::netpolicy::{BindPolicy, Role, bind_checked, limit_size};
use actix::prelude::*;
use depthpilot_sim::offboard::Sensing;
use depthpilot_sim::world::BodyState;
use depthpilot_types::{Scene, Vec3};
use depthpilot_vision::detector::LearntBackground;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// No measurement for this long (after the first) counts as stale.
/// (Frames come every 33 ms: this is three in a row; checked every physics step, so staleness
/// is reported at most ~96 ms after the last measurement, and so after the vision died.)
pub const STALE_AFTER: Duration = Duration::from_millis(95);
/// How long the control side waits for a vision process before the flight starts.
pub const WAIT_FOR_VISION: Duration = Duration::from_secs(60);
/// The bus endpoints' defaults.
pub const DEFAULT_TRUTH_ENDPOINT: &str = "tcp://127.0.0.1:7710";
pub const DEFAULT_MEASUREMENT_ENDPOINT: &str = "tcp://127.0.0.1:7711";

/// Where the bus lives. The control side binds, the vision side connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusEndpoints {
    pub truth: String,
    pub measurements: String,
    /// Whether the sides' binds may leave loopback (`--insecure`). With `curve`, the control
    /// side's bus binds may leave loopback without it.
    pub policy: BindPolicy,
    /// CURVE on the bus (`--keys`); None: NULL (no authentication, no encryption).
    pub curve: Option<BusCurve>,
}

/// CURVE on the bus: the control side serves, the vision side is a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusCurve {
    /// The control side: its key pair and the vision keys it accepts (`allow/bus/`).
    Server(ServerKeys),
    /// The vision side: the control side's public key and this vision's key pair.
    Client { server: PublicKey, client: KeyPair },
}

impl Default for BusEndpoints {
    fn default() -> Self {
        Self {
            truth: DEFAULT_TRUTH_ENDPOINT.to_string(),
            measurements: DEFAULT_MEASUREMENT_ENDPOINT.to_string(),
            policy: BindPolicy::LoopbackOnly,
            curve: None,
        }
    }
}

/// One stretch without measurements.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StaleEvent {
    /// Flight time when it was detected.
    pub detected_at_s: f64,
    /// Time from the last measurement to the detection.
    pub after_last_ms: f64,
    /// Flight time when measurements came back (None: they did not).
    pub recovered_at_s: Option<f64>,
}

/// What the bus saw during a flight.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BusReport {
    pub garbage: GarbageCounts,
    pub measurements: SeqTracker,
    pub truth_published: u64,
    pub stale: Vec<StaleEvent>,
    /// The vision process's own counters (its newest status message).
    pub vision_frames: u64,
    pub vision_detections: u64,
    /// Valid messages from the 2015 set-point UI (`--setpoints-in`).
    pub set_points_received: u64,
    /// With CURVE: the handshakes of the bus's ZAP domain (both bus sockets).
    pub auth: Option<DomainCounts>,
}

fn bind(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    role: Role,
    endpoint: &str,
    policy: BindPolicy,
) -> Result<zmq::Socket, RuntimeError> {
    let s = ctx.socket(kind)?;
    s.set_linger(0)?;
    if matches!(kind, zmq::SUB | zmq::PULL) {
        limit_size(&s, role)?;
    }
    bind_checked(&s, socket_name(kind), role, endpoint, policy)?;
    Ok(s)
}

/// The bus's CURVE server side: one ZAP handler for the bus's own context, and a monitor per
/// socket. Kept after the sockets (dropped last).
struct BusAuth {
    zap: ZapHandler,
    _monitors: Vec<AuthMonitor>,
}

/// Binds the control side's bus sockets as CURVE servers of the `bus` domain, in a context of
/// their own. Any endpoint, loopback or not.
fn bind_curve(
    endpoints: &BusEndpoints,
    keys: &ServerKeys,
) -> Result<(zmq::Socket, zmq::Socket, BusAuth), RuntimeError> {
    let domain = zap_domain(Role::Measurements);
    let allowed = keys.allow.len(domain);
    if allowed == 0 {
        return Err(RuntimeError::Setup(format!(
            "the bus has CURVE keys but no vision may connect: its allow-list (allow/{domain}/ \
             in the keys directory) is empty; copy the vision's .pub there (`depthpilot keygen \
             --name vision` makes one)"
        )));
    }
    for e in [&endpoints.truth, &endpoints.measurements] {
        depthpilot_types::netpolicy::classify(e)?;
    }
    let ctx = zmq::Context::new();
    let zap = ZapHandler::start(&ctx, keys.allow.clone())?;
    let mut monitors = Vec::new();
    let mut open = |kind: zmq::SocketType, role: Role, endpoint: &str| {
        let s = ctx.socket(kind)?;
        s.set_linger(0)?;
        if kind == zmq::SUB {
            limit_size(&s, role)?;
        }
        make_server(&s, role, &keys.server)?;
        monitors.push(AuthMonitor::start(&ctx, &s, role, zap.counts())?);
        s.bind(endpoint).map_err(|source| RuntimeError::Bind {
            kind: socket_name(kind),
            endpoint: endpoint.to_string(),
            source,
        })?;
        Ok::<_, RuntimeError>(s)
    };
    let truth_pub = open(zmq::PUB, Role::Truth, &endpoints.truth)?;
    let meas_sub = open(zmq::SUB, Role::Measurements, &endpoints.measurements)?;
    eprintln!(
        "depthpilot: the bus is bound with CURVE (truth `{}`, measurements `{}`): {allowed} \
         vision key(s) allowed (allow/{domain}/), server key {}",
        endpoints.truth, endpoints.measurements, keys.server.public
    );
    Ok((
        truth_pub,
        meas_sub,
        BusAuth {
            zap,
            _monitors: monitors,
        },
    ))
}

fn connect(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    role: Role,
    endpoint: &str,
) -> Result<zmq::Socket, RuntimeError> {
    connect_with(ctx, kind, role, endpoint, |_| Ok(()))
}

/// Connects a socket after `setup` (e.g. CURVE) has had it.
fn connect_with(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    role: Role,
    endpoint: &str,
    setup: impl FnOnce(&zmq::Socket) -> Result<(), RuntimeError>,
) -> Result<zmq::Socket, RuntimeError> {
    let s = ctx.socket(kind)?;
    s.set_linger(0)?;
    if matches!(kind, zmq::SUB | zmq::PULL) {
        limit_size(&s, role)?;
    }
    setup(&s)?;
    s.connect(endpoint)
        .map_err(|source| RuntimeError::Connect {
            kind: socket_name(kind),
            endpoint: endpoint.to_string(),
            source,
        })?;
    Ok(s)
}

fn socket_name(kind: zmq::SocketType) -> &'static str {
    match kind {
        zmq::PUB => "PUB",
        zmq::SUB => "SUB",
        zmq::PUSH => "PUSH",
        zmq::PULL => "PULL",
        _ => "ZMQ",
    }
}

/// The control side's end of the vision seam: publishes the truth each step, takes the
/// measurements that came in, watches for staleness.
pub struct BusVisionActor {
    truth_pub: zmq::Socket,
    meas_sub: zmq::Socket,
    seq: u64,
    report: BusReport,
    last_arrival: Option<Instant>,
    stale_since: Option<usize>,
    /// With CURVE (after the sockets: dropped last).
    auth: Option<BusAuth>,
}

impl BusVisionActor {
    pub fn bind(ctx: &zmq::Context, endpoints: &BusEndpoints) -> Result<Self, RuntimeError> {
        let policy = endpoints.policy;
        let (truth_pub, meas_sub, auth) = match &endpoints.curve {
            None => (
                bind(ctx, zmq::PUB, Role::Truth, &endpoints.truth, policy)?,
                bind(
                    ctx,
                    zmq::SUB,
                    Role::Measurements,
                    &endpoints.measurements,
                    policy,
                )?,
                None,
            ),
            Some(BusCurve::Server(keys)) => {
                let (t, m, a) = bind_curve(endpoints, keys)?;
                (t, m, Some(a))
            }
            Some(BusCurve::Client { .. }) => {
                return Err(RuntimeError::Setup(
                    "the control side serves the bus: with CURVE it needs the server's keys \
                     (server.key, server.pub, allow/bus/), not a client's"
                        .into(),
                ));
            }
        };
        meas_sub.set_subscribe(b"")?;
        Ok(Self {
            truth_pub,
            meas_sub,
            seq: 0,
            report: BusReport::default(),
            last_arrival: None,
            stale_since: None,
            auth,
        })
    }

    /// With CURVE: the bus's handshake counts so far.
    pub fn auth_counts(&self) -> Option<DomainCounts> {
        self.auth
            .as_ref()
            .map(|a| a.zap.counts().get(zap_domain(Role::Measurements)))
    }

    /// Before the flight: publishes the truth at t = 0 until a vision process answers (its
    /// first status or measurement), so that the flight's clock starts with the camera there.
    pub fn wait_for_vision(
        &mut self,
        truth: &BodyState,
        timeout: Duration,
        endpoints: &BusEndpoints,
    ) -> Result<(), RuntimeError> {
        let start = Instant::now();
        let mut said = None::<Instant>;
        loop {
            self.publish_truth(0, truth);
            if self.meas_sub.poll(zmq::POLLIN, 20)? > 0 {
                while let Ok(frames) = self.meas_sub.recv_multipart(zmq::DONTWAIT) {
                    let topic = frames
                        .first()
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .unwrap_or("")
                        .to_string();
                    let ok = if topic == TOPIC_VISION_STATUS {
                        bus::decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, &frames).map(|_| ())
                    } else {
                        bus::decode_measurement(&frames).map(|_| ())
                    };
                    match ok {
                        Ok(()) => {
                            eprintln!(
                                "depthpilot: vision process there after {:.2} s; flying",
                                start.elapsed().as_secs_f64()
                            );
                            return Ok(());
                        }
                        Err(g) => self.count(TOPIC_MEASUREMENT, &g),
                    }
                }
            }
            if start.elapsed() > timeout {
                let auth = self.auth_counts().map_or(String::new(), |c| {
                    format!(
                        "; CURVE on the bus: {} accepted, {} denied, {} failed handshake(s){}",
                        c.accepted,
                        c.denied,
                        c.handshake_failures,
                        if c.denied + c.handshake_failures > 0 {
                            " (see the messages above: is the vision's key in allow/bus/, and \
                             does it have this server's server.pub?)"
                        } else {
                            ""
                        }
                    )
                });
                return Err(RuntimeError::Setup(format!(
                    "no vision process answered on {} within {:.1} s (truth published on {}{auth}); \
                     start one with `depthpilot run <rig> --role vision`",
                    endpoints.measurements,
                    timeout.as_secs_f64(),
                    endpoints.truth
                )));
            }
            if said.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                said = Some(Instant::now());
                eprintln!(
                    "depthpilot: waiting for a vision process (truth on {}, measurements to {})",
                    endpoints.truth, endpoints.measurements
                );
            }
        }
    }

    fn publish_truth(&mut self, now_ns: u64, truth: &BodyState) {
        self.seq += 1;
        let msg = TruthMsg::of(now_ns, truth);
        let frames = bus::encode(TOPIC_TRUTH, self.seq, now_ns, &msg);
        // No subscriber yet, or a slow one: PUB drops, never blocks.
        if self.truth_pub.send_multipart(frames, zmq::DONTWAIT).is_ok() {
            self.report.truth_published += 1;
        }
    }

    fn count(&mut self, topic: &str, g: &Garbage) {
        if self.report.garbage.total < 10 || self.report.garbage.total.is_power_of_two() {
            eprintln!(
                "depthpilot: bus: garbage on {topic} ({} so far): {g}",
                self.report.garbage.total + 1
            );
        }
        self.report.garbage.count(topic, g);
    }

    fn receive(&mut self, now_ns: u64) -> Vec<Timed> {
        let mut out = Vec::new();
        while let Ok(frames) = self.meas_sub.recv_multipart(zmq::DONTWAIT) {
            let topic = frames
                .first()
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or("");
            if topic == TOPIC_VISION_STATUS {
                match bus::decode::<VisionStatusMsg>(TOPIC_VISION_STATUS, &frames) {
                    Ok(e) => {
                        self.report.vision_frames = e.payload.frames;
                        self.report.vision_detections = e.payload.detections;
                    }
                    Err(g) => self.count(TOPIC_VISION_STATUS, &g),
                }
                continue;
            }
            match bus::decode_measurement(&frames) {
                Ok(e) => {
                    self.report.measurements.observe(e.seq);
                    let arrival = Instant::now();
                    self.last_arrival = Some(arrival);
                    if let Some(i) = self.stale_since.take() {
                        let t = now_ns as f64 * 1e-9;
                        self.report.stale[i].recovered_at_s = Some(t);
                        eprintln!(
                            "depthpilot: vision: measurements again at {t:.3} s (after {:.2} s without)",
                            t - self.report.stale[i].detected_at_s
                                + self.report.stale[i].after_last_ms * 1e-3
                        );
                    }
                    out.push(Timed {
                        m: e.payload.to_measurement(),
                        frame_available: arrival,
                    });
                }
                Err(g) => self.count(TOPIC_MEASUREMENT, &g),
            }
        }
        if self.stale_since.is_none()
            && let Some(last) = self.last_arrival
            && last.elapsed() >= STALE_AFTER
        {
            let t = now_ns as f64 * 1e-9;
            let ms = last.elapsed().as_secs_f64() * 1e3;
            eprintln!(
                "depthpilot: vision: STALE at {t:.3} s — no measurement for {ms:.0} ms; the \
                 controller holds (after 250 ms), then lands (after 1.5 s)"
            );
            self.report.stale.push(StaleEvent {
                detected_at_s: t,
                after_last_ms: ms,
                recovered_at_s: None,
            });
            self.stale_since = Some(self.report.stale.len() - 1);
        }
        out
    }
}

impl Actor for BusVisionActor {
    type Context = Context<Self>;
}

impl Handler<SenseRealtime> for BusVisionActor {
    type Result = MessageResult<SenseRealtime>;
    fn handle(&mut self, m: SenseRealtime, _: &mut Context<Self>) -> Self::Result {
        self.publish_truth(m.now_ns, &m.truth);
        MessageResult(self.receive(m.now_ns))
    }
}

impl Handler<ReportVision> for BusVisionActor {
    type Result = MessageResult<ReportVision>;
    fn handle(&mut self, _: ReportVision, _: &mut Context<Self>) -> Self::Result {
        MessageResult(VisionReport {
            frames: self.report.vision_frames,
            detections: self.report.measurements.received,
            vision: None,
            last_frame_pixels: None,
        })
    }
}

/// The bus report at the end of a flight.
#[derive(Message)]
#[rtype(result = "BusReport")]
pub struct TakeBusReport;

impl Handler<TakeBusReport> for BusVisionActor {
    type Result = MessageResult<TakeBusReport>;
    fn handle(&mut self, _: TakeBusReport, _: &mut Context<Self>) -> Self::Result {
        let mut report = self.report.clone();
        report.auth = self.auth_counts();
        MessageResult(report)
    }
}

/// The 2015 set-point UI's input (`set-point/ksp.py` pushes `{"version":1,"set-points":{"roll": m,
/// "pitch": m, "yaw": deg, "velocity": m/s}}` every 10 ms from a bound PUSH on tcp://*:5124): a
/// PULL socket connected to it. `roll` and `pitch` are the target's x and y (metres, as kctrl.py
/// used them), `velocity` moves the target height (m/s), `yaw` is the heading. Garbage is counted
/// under the topic `compat/set-points`.
pub struct SetPointsIn {
    socket: zmq::Socket,
    height_m: f64,
    last_ns: Option<u64>,
    /// Valid set-point messages taken.
    pub received: u64,
}

/// The garbage-count topic of the set-point input.
pub const TOPIC_SET_POINTS: &str = "compat/set-points";
/// The highest target the set-point input may ask for.
const MAX_TARGET_HEIGHT_M: f64 = 2.5;

impl SetPointsIn {
    pub fn connect(
        ctx: &zmq::Context,
        endpoint: &str,
        start_height_m: f64,
    ) -> Result<Self, RuntimeError> {
        Ok(Self {
            socket: connect(ctx, zmq::PULL, Role::SetPoints, endpoint)?,
            height_m: start_height_m,
            last_ns: None,
            received: 0,
        })
    }

    /// The newest target among the messages that arrived (None: none did), counting garbage.
    pub fn poll(
        &mut self,
        now_ns: u64,
        garbage: &mut GarbageCounts,
    ) -> Option<depthpilot_types::scene::Trajectory> {
        let mut newest = None;
        while let Ok(bytes) = self.socket.recv_bytes(zmq::DONTWAIT) {
            match bus::parse_set_points(&bytes) {
                Ok(m) => newest = Some(m),
                Err(g) => {
                    if garbage.total < 10 {
                        eprintln!("depthpilot: garbage on the set-point input: {g}");
                    }
                    garbage.count(TOPIC_SET_POINTS, &g);
                }
            }
        }
        let m = newest?;
        self.received += 1;
        let dt = self
            .last_ns
            .map_or(0.0, |t| now_ns.saturating_sub(t) as f64 * 1e-9)
            .min(0.1);
        self.last_ns = Some(now_ns);
        self.height_m = (self.height_m + m.velocity_m_s * dt).clamp(0.0, MAX_TARGET_HEIGHT_M);
        Some(depthpilot_types::scene::Trajectory::Hover {
            position_m: Vec3::new(m.roll_m, m.pitch_m, self.height_m),
            yaw_deg: m.yaw_deg,
        })
    }
}

/// Options of the vision role.
#[derive(Clone, Debug)]
pub struct VisionRole {
    pub endpoints: BusEndpoints,
    /// Also push the 2015 detector's JSON here (bound, as the detector did).
    pub detector_out: Option<String>,
    /// Stop after this long (wall clock); None: run until killed.
    pub duration: Option<Duration>,
    /// Print a status line this often.
    pub status_every: Duration,
    /// Load the detector's background from this file at start (if it is there) and save it here
    /// once learnt, so that a restarted vision need not learn it again with the quad in view
    /// (which would make the quad background).
    pub background: Option<std::path::PathBuf>,
}

/// What the vision role did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VisionRoleReport {
    /// The background came from the file (not learnt here).
    pub background_loaded: bool,
    /// The learnt background was saved to the file.
    pub background_saved: bool,
    pub truth_received: u64,
    pub frames: u64,
    pub measurements_sent: u64,
    pub garbage: GarbageCounts,
    pub truth: SeqTracker,
}

/// Loads a saved background into the detector; says why not when it cannot (then the vision
/// learns one, as without the file).
fn load_background(sensing: &mut Sensing, path: &std::path::Path) -> bool {
    let Some(k) = sensing.kinect_mut() else {
        return false;
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "depthpilot: vision: no saved background at {} yet; learning one (keep the camera's view clear) and saving it there",
                path.display()
            );
            return false;
        }
        Err(e) => {
            eprintln!(
                "depthpilot: vision: cannot read the background {}: {e}; learning one",
                path.display()
            );
            return false;
        }
    };
    match LearntBackground::from_bytes(&bytes).and_then(|b| k.restore_background(b)) {
        Ok(()) => {
            eprintln!(
                "depthpilot: vision: loaded the background from {}",
                path.display()
            );
            true
        }
        Err(e) => {
            eprintln!(
                "depthpilot: vision: {}: {e}; learning a new one (the file will be replaced)",
                path.display()
            );
            false
        }
    }
}

/// Saves the detector's background once it has learnt one (write, then rename: a process killed
/// meanwhile leaves the old file or none, never half a file). True when saved.
fn save_background(sensing: &Sensing, path: &std::path::Path) -> bool {
    let Some(b) = sensing
        .kinect()
        .and_then(|k| k.detector().learnt_background())
    else {
        return false;
    };
    let tmp = path.with_extension("tmp");
    let saved = std::fs::write(&tmp, b.to_bytes()).and_then(|()| std::fs::rename(&tmp, path));
    match saved {
        Ok(()) => {
            eprintln!(
                "depthpilot: vision: learnt the background; saved it to {}",
                path.display()
            );
        }
        Err(e) => {
            eprintln!(
                "depthpilot: vision: cannot save the background to {}: {e}",
                path.display()
            );
        }
    }
    // Either way, do not try again every frame.
    true
}

/// Runs the vision of `scene` as its own process: truth in, measurements out.
pub fn run_vision(scene: &Scene, role: &VisionRole) -> Result<VisionRoleReport, RuntimeError> {
    let mut sensing = Sensing::new(scene).map_err(|e| RuntimeError::Setup(e.to_string()))?;
    let mut background_loaded = false;
    if let Some(path) = &role.background {
        background_loaded = load_background(&mut sensing, path);
    }
    let ctx = zmq::Context::new();
    let client = match &role.endpoints.curve {
        None => None,
        Some(BusCurve::Client { server, client }) => Some((server, client)),
        Some(BusCurve::Server(_)) => {
            return Err(RuntimeError::Setup(
                "the vision side is a CURVE client of the bus: it needs its own key pair and \
                 the control side's server.pub, not the server's keys"
                    .into(),
            ));
        }
    };
    // A failed handshake (a key the control side does not allow, a wrong server.pub) is printed
    // by these monitors; libzmq does not retry it.
    let client_counts = Arc::new(AuthCounts::default());
    let mut monitors = Vec::new();
    let mut curve = |s: &zmq::Socket, role: Role| -> Result<(), RuntimeError> {
        if let Some((server, client)) = client {
            make_client(s, server, client)?;
            monitors.push(AuthMonitor::start(&ctx, s, role, client_counts.clone())?);
        }
        Ok(())
    };
    let truth_sub = connect_with(&ctx, zmq::SUB, Role::Truth, &role.endpoints.truth, |s| {
        curve(s, Role::Truth)
    })?;
    truth_sub.set_subscribe(TOPIC_TRUTH.as_bytes())?;
    let meas_pub = connect_with(
        &ctx,
        zmq::PUB,
        Role::Measurements,
        &role.endpoints.measurements,
        |s| curve(s, Role::Measurements),
    )?;
    if client.is_some() {
        eprintln!(
            "depthpilot: vision: CURVE on the bus, client key {}",
            client
                .map(|(_, c)| c.public.to_string())
                .unwrap_or_default()
        );
    }
    let detector = match &role.detector_out {
        Some(e) => Some(bind(
            &ctx,
            zmq::PUSH,
            Role::Detector,
            e,
            role.endpoints.policy,
        )?),
        None => None,
    };
    let mut report = VisionRoleReport {
        background_loaded,
        ..VisionRoleReport::default()
    };
    let mut realtime = RealtimeSensing::new(scene);
    let mut seq = 0u64;
    let started = Instant::now();
    let mut last_status = Instant::now();
    let mut last_truth: Option<Instant> = None;
    eprintln!(
        "depthpilot: vision: truth from {}, measurements to {}{}",
        role.endpoints.truth,
        role.endpoints.measurements,
        role.detector_out
            .as_deref()
            .map(|d| format!(", 2015 detector JSON on {d}"))
            .unwrap_or_default()
    );
    loop {
        if role.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if truth_sub.poll(zmq::POLLIN, 100)? == 0 {
            if last_truth.is_none_or(|t| t.elapsed() > Duration::from_secs(2))
                && last_status.elapsed() >= role.status_every
            {
                last_status = Instant::now();
                eprintln!(
                    "depthpilot: vision: waiting for truth on {} (is the control process running? \
                     {})",
                    role.endpoints.truth,
                    if client.is_some() {
                        "does it allow this vision's key, and is server.pub its key?"
                    } else {
                        "if it uses --keys, this vision needs --keys too"
                    }
                );
            }
            continue;
        }
        while let Ok(frames) = truth_sub.recv_multipart(zmq::DONTWAIT) {
            let truth = match bus::decode::<TruthMsg>(TOPIC_TRUTH, &frames) {
                Ok(e) => match e.payload.body() {
                    Some(b) => {
                        report.truth.observe(e.seq);
                        (e.payload.t_ns, b)
                    }
                    None => {
                        let g = Garbage::NonFinite { field: "truth" };
                        report.garbage.count(TOPIC_TRUTH, &g);
                        continue;
                    }
                },
                Err(g) => {
                    if report.garbage.total < 10 {
                        eprintln!("depthpilot: vision: garbage on {TOPIC_TRUTH}: {g}");
                    }
                    report.garbage.count(TOPIC_TRUTH, &g);
                    continue;
                }
            };
            last_truth = Some(Instant::now());
            report.truth_received += 1;
            let (now_ns, body) = truth;
            if report.truth_received == 1 {
                sensing.start_at(now_ns);
            }
            let frames_before = sensing.frames();
            for t in sense_realtime(&mut sensing, &mut realtime, now_ns, &body) {
                seq += 1;
                let msg = MeasurementMsg::from_measurement(&t.m, now_ns);
                if msg.validate().is_err() {
                    continue;
                }
                let out = bus::encode(TOPIC_MEASUREMENT, seq, now_ns, &msg);
                if meas_pub.send_multipart(out, zmq::DONTWAIT).is_ok() {
                    report.measurements_sent += 1;
                }
                if let Some(d) = &detector {
                    let json = DetectorMsg {
                        pos_m: msg.pos_m,
                        angle_deg: t.m.yaw_rad.unwrap_or(0.0).to_degrees().rem_euclid(360.0),
                        detect: true,
                    }
                    .to_json();
                    let _ = d.send(json, zmq::DONTWAIT);
                }
            }
            if let Some(path) = &role.background
                && !report.background_loaded
                && !report.background_saved
            {
                report.background_saved = save_background(&sensing, path);
            }
            if sensing.frames() != frames_before {
                report.frames = sensing.frames();
                let status = VisionStatusMsg {
                    frames: sensing.frames(),
                    detections: sensing.detections,
                };
                let _ = meas_pub.send_multipart(
                    bus::encode(TOPIC_VISION_STATUS, report.frames, now_ns, &status),
                    zmq::DONTWAIT,
                );
            }
        }
        if last_status.elapsed() >= role.status_every {
            last_status = Instant::now();
            eprintln!(
                "depthpilot: vision: {} truth messages, {} frames, {} measurements sent, {} garbage",
                report.truth_received,
                report.frames,
                report.measurements_sent,
                report.garbage.total
            );
        }
    }
    Ok(report)
}

#[cfg(test)]
mod curve_tests {
    use super::*;
    use crate::curve::AllowList;
    use depthpilot_types::Rot;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    use crate::curve::tests::wait_for;

    /// A fake vision process on real TCP: connects both bus sockets (as a CURVE client of
    /// `server` with `key`, or NULL) and publishes a status and a valid measurement every
    /// 10 ms until `stop`.
    fn fake_vision(
        truth: String,
        measurements: String,
        curve: Option<(PublicKey, KeyPair)>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let ctx = zmq::Context::new();
            let setup = |s: &zmq::Socket| {
                s.set_linger(0).expect("linger");
                if let Some((server, key)) = &curve {
                    make_client(s, server, key).expect("client");
                }
            };
            let sub = ctx.socket(zmq::SUB).expect("sub");
            setup(&sub);
            sub.set_subscribe(b"").expect("subscribe");
            sub.connect(&truth).expect("connect");
            let publ = ctx.socket(zmq::PUB).expect("pub");
            setup(&publ);
            publ.connect(&measurements).expect("connect");
            let mut seq = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                let status = VisionStatusMsg {
                    frames: seq,
                    detections: seq,
                };
                let m = MeasurementMsg {
                    capture_ns: seq * 1_000_000,
                    available_ns: seq * 1_000_000,
                    seq,
                    pos_m: [0.1, 0.2, 0.3],
                    yaw_rad: Some(0.0),
                };
                // PUB drops what it cannot send (no authenticated peer): never blocks.
                let _ = publ.send_multipart(
                    bus::encode(TOPIC_VISION_STATUS, seq, 0, &status),
                    zmq::DONTWAIT,
                );
                let _ = publ.send_multipart(bus::encode(TOPIC_MEASUREMENT, seq, 0, &m), 0);
                while sub.recv_multipart(zmq::DONTWAIT).is_ok() {}
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }

    /// Issue 20: with `--keys`, a vision without a key and one whose key is allowed only on
    /// the teacher input publish measurements over TCP to a CURVE control side bound on every
    /// interface (no --insecure): nothing reaches the controller, the flight does not start
    /// (the wait for a vision times out, naming the counts), every failed handshake is counted
    /// (the denied key's once per socket: not retried; the NULL client's again on each of
    /// libzmq's reconnections); a vision with a `bus` key then starts it.
    #[test]
    fn a_vision_without_an_allowed_bus_key_never_starts_the_flight() {
        let server = KeyPair::generate().expect("server");
        let vision = KeyPair::generate().expect("vision");
        let pilot = KeyPair::generate().expect("pilot");
        let mut allow = AllowList::default();
        allow.allow("bus", "vision", vision.public);
        allow.allow("teacher", "pilot", pilot.public);
        let (tp, mp) = (free_port(), free_port());
        let endpoints = BusEndpoints {
            truth: format!("tcp://0.0.0.0:{tp}"),
            measurements: format!("tcp://0.0.0.0:{mp}"),
            policy: BindPolicy::LoopbackOnly,
            curve: Some(BusCurve::Server(ServerKeys {
                server: server.clone(),
                allow,
            })),
        };
        let ctx = zmq::Context::new();
        let mut control =
            BusVisionActor::bind(&ctx, &endpoints).expect("CURVE binds any interface");
        assert_eq!(control.auth_counts(), Some(DomainCounts::default()));
        let (truth, meas) = (
            format!("tcp://127.0.0.1:{tp}"),
            format!("tcp://127.0.0.1:{mp}"),
        );
        let at_rest = BodyState {
            pos_m: Vec3::new(0.0, 0.0, 0.0),
            vel_m_s: Vec3::new(0.0, 0.0, 0.0),
            world_from_body: Rot::IDENTITY,
            body_rates_rad_s: Vec3::new(0.0, 0.0, 0.0),
        };

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let denied = [
            fake_vision(truth.clone(), meas.clone(), None, stop.clone()),
            fake_vision(
                truth.clone(),
                meas.clone(),
                Some((server.public, pilot.clone())),
                stop.clone(),
            ),
        ];
        let e = control
            .wait_for_vision(&at_rest, Duration::from_millis(1500), &endpoints)
            .expect_err("a denied vision started the flight");
        let text = e.to_string();
        assert!(text.contains("no vision process answered"), "{text}");
        assert!(text.contains("CURVE on the bus: 0 accepted"), "{text}");
        // The teacher's key: ZAP denies it once on each of its 2 sockets and libzmq does not
        // retry it (the server's ERROR ends the session). NULL: a mechanism mismatch on each
        // socket (ZAP never asked); libzmq's NULL client reconnects a few times (when it sees
        // the connection closed before it sees the mismatch itself: measured 2 to 10 per
        // socket within ~1 s), each attempt failing, printed and counted, then stops.
        let mut before = control.auth_counts().expect("CURVE");
        let mut after = before;
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(500));
            after = control.auth_counts().expect("CURVE");
            if after == before && after.denied == 2 && after.handshake_failures >= 4 {
                break;
            }
            before = after;
        }
        assert_eq!(after, before, "the failures went on for 5 s");
        assert_eq!((after.accepted, after.denied), (0, 2), "{after:?}");
        assert!(after.handshake_failures >= 4, "{after:?}");
        // Still publishing, never through.
        assert!(control.receive(1).is_empty());
        assert_eq!(control.report.measurements.received, 0);
        assert_eq!(control.report.vision_frames, 0);
        assert_eq!(control.report.garbage.total, 0);
        eprintln!("denied visions: {before:?} then, 500 ms later, {after:?}");

        // The vision's own key: the flight starts, its measurements arrive.
        let ok = fake_vision(
            truth,
            meas,
            Some((server.public, vision.clone())),
            stop.clone(),
        );
        control
            .wait_for_vision(&at_rest, Duration::from_secs(5), &endpoints)
            .expect("the allowed vision starts the flight");
        let mut got = Vec::new();
        wait_for("a measurement", || {
            got.extend(control.receive(2));
            !got.is_empty()
        });
        let c = control.auth_counts().expect("CURVE");
        assert_eq!((c.accepted, c.denied), (2, 2), "{c:?}");
        assert_eq!(control.report.garbage.total, 0);
        assert!((got[0].m.pos_in_world_m.z - 0.3).abs() < 1e-9);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in denied.into_iter().chain([ok]) {
            t.join().expect("fake vision");
        }
    }

    /// Without --keys the bus is NULL as before; keys of the wrong side are refused.
    #[test]
    fn the_bus_refuses_the_wrong_sides_keys_and_an_empty_allow_list() {
        let ctx = zmq::Context::new();
        let server = KeyPair::generate().expect("server");
        let mut endpoints = BusEndpoints {
            truth: "tcp://127.0.0.1:*".into(),
            measurements: "tcp://127.0.0.1:*".into(),
            ..BusEndpoints::default()
        };
        let null = BusVisionActor::bind(&ctx, &endpoints).expect("NULL");
        assert_eq!(null.auth_counts(), None);
        endpoints.curve = Some(BusCurve::Server(ServerKeys {
            server: server.clone(),
            allow: AllowList::default(),
        }));
        let e = BusVisionActor::bind(&ctx, &endpoints)
            .map(drop)
            .expect_err("empty");
        assert!(e.to_string().contains("allow/bus/"), "{e}");
        endpoints.curve = Some(BusCurve::Client {
            server: server.public,
            client: server,
        });
        let e = BusVisionActor::bind(&ctx, &endpoints)
            .map(drop)
            .expect_err("client keys");
        assert!(e.to_string().contains("server's keys"), "{e}");
    }
}
