//! The clock of an actor flight: lockstep virtual time (each physics step waits for every
//! actor's reply, as fast as the CPU allows, deterministic) or real time (the same steps paced
//! to the wall clock, control on every measurement as it arrives).

use crate::RuntimeError;
use crate::actors::*;
use crate::bridge_vision::{BridgeVisionActor, CameraReport, TakeCameraReport, WAIT_FOR_FRAMES};
use crate::bus::GarbageCounts;
use crate::curve::{CurveServers, DomainCounts, ServerKeys};
use crate::netpolicy::{BindPolicy, Role, bind_checked};
use crate::split::{BusEndpoints, BusReport, BusVisionActor, SetPointsIn, TakeBusReport};
use actix::prelude::*;
use depthpilot_control::Controller;
use depthpilot_mux::Mux;
use depthpilot_sim::offboard::{Decision, Teacher};
use depthpilot_sim::runner::{ErrorStats, OffBoardReport, OffState, SafetyLog, log_row};
use depthpilot_sim::world::BodyState;
use depthpilot_sim::{LogSink, SimError, Summary};
use depthpilot_types::Scene;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How the clock runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// Virtual time, one step after another, as fast as the CPU allows.
    Lockstep,
    /// Paced to the wall clock.
    Realtime,
}

/// The wall-clock figures of a real-time flight.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RealtimeReport {
    /// Simulated seconds per wall-clock second over the flight.
    pub realtime_factor: f64,
    /// Frame available → setpoint handed to the link, microseconds.
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub latency_max_us: f64,
    pub latency_samples: usize,
    /// Steps that started more than one step period behind the wall clock.
    pub late_steps: u64,
    /// A split flight: what the bus saw (garbage, sequence gaps, stale stretches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<BusReport>,
    /// A flight with a Kinect bridge: frames, garbage, stale stretches, the vision on them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera: Option<CameraReport>,
    /// Shadow: what went to the real Crazyflie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowReport>,
    /// With CURVE (`--keys`): the handshakes of the flight's own server sockets by ZAP domain
    /// (`state`, `teacher`); the bus's are in `bus.auth`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub auth: BTreeMap<String, DomainCounts>,
}

/// What a shadow link carried.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ShadowReport {
    pub uri: String,
    pub packets_sent: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

/// Where the vision runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum VisionSource {
    /// A vision actor in this process.
    #[default]
    Local,
    /// Another process, over the ZMQ bus (real time only).
    Bus(BusEndpoints),
    /// Depth frames from a Kinect bridge at `endpoint`, the vision in this process (real time
    /// only); with `truth`, the simulated world's truth is published there for a fake bridge.
    Bridge {
        endpoint: String,
        truth: Option<String>,
        /// CURVE: the bridge is a CURVE server and these are this client's keys.
        curve: Option<depthpilot_camera::CurveClientKeys>,
    },
}

/// The vision seam of a flight.
enum VisionSeam {
    Local(Addr<VisionActor>),
    Bus(Addr<BusVisionActor>),
    Bridge(Addr<BridgeVisionActor>),
}

impl VisionSeam {
    async fn sense(&self, now_ns: u64, truth: BodyState, realtime: bool) -> Vec<Timed> {
        match self {
            Self::Local(v) if realtime => alive(v.send(SenseRealtime { now_ns, truth }).await),
            Self::Local(v) => {
                let start = Instant::now();
                alive(v.send(Sense { now_ns, truth }).await)
                    .into_iter()
                    .map(|m| Timed {
                        m,
                        frame_available: start,
                    })
                    .collect()
            }
            Self::Bus(b) => alive(b.send(SenseRealtime { now_ns, truth }).await),
            Self::Bridge(b) => alive(b.send(SenseRealtime { now_ns, truth }).await),
        }
    }

    async fn report(&self) -> VisionReport {
        match self {
            Self::Local(v) => alive(v.send(ReportVision).await),
            Self::Bus(b) => alive(b.send(ReportVision).await),
            Self::Bridge(b) => alive(b.send(ReportVision).await),
        }
    }
}

/// The addresses of a flight's actors.
struct Crew {
    world: Addr<WorldActor>,
    vision: VisionSeam,
    controller: Addr<ControllerActor>,
    teacher: Option<(Addr<TeacherActor>, Addr<MuxActor>)>,
    radio: Addr<SimRadioActor>,
}

impl Crew {
    fn start(
        scene: &Scene,
        controller: Box<dyn Controller + Send>,
        source: &VisionSource,
        zmq: &zmq::Context,
        shadow: Option<crate::radio_actor::Radio>,
        live_teacher: bool,
        policy: BindPolicy,
    ) -> Result<Self, RuntimeError> {
        let vision = match source {
            VisionSource::Local => VisionSeam::Local(VisionActor::new(scene)?.start()),
            VisionSource::Bus(e) => {
                let mut bus = BusVisionActor::bind(zmq, e)?;
                let world = depthpilot_sim::runner::SimWorld::new(scene);
                bus.wait_for_vision(world.truth(), crate::split::WAIT_FOR_VISION, e)?;
                VisionSeam::Bus(bus.start())
            }
            VisionSource::Bridge {
                endpoint,
                truth,
                curve,
            } => {
                let mut config = depthpilot_camera::BridgeConfig::new(endpoint);
                config.curve = curve.clone();
                let mut b =
                    BridgeVisionActor::connect_with(zmq, scene, &config, truth.as_deref(), policy)?;
                let world = depthpilot_sim::runner::SimWorld::new(scene);
                b.wait_for_frames(world.truth(), WAIT_FOR_FRAMES)?;
                VisionSeam::Bridge(b.start())
            }
        };
        let world = WorldActor::new(scene).start();
        Ok(Self {
            vision,
            controller: ControllerActor::new(scene, controller).start(),
            teacher: match &scene.teacher {
                Some(t) => Some((
                    TeacherActor::new(Teacher::new(t.script.clone(), &scene.faults)).start(),
                    MuxActor::new(Mux::new(t.mux)).start(),
                )),
                None if live_teacher => Some((
                    TeacherActor::new(Teacher::new(Vec::new(), &scene.faults)).start(),
                    MuxActor::new(Mux::new(depthpilot_types::scene::MuxConfig::default())).start(),
                )),
                None => None,
            },
            radio: SimRadioActor::new(world.clone(), shadow).start(),
            world,
        })
    }
}

/// A mailbox closed under the clock: an actor died, which is a bug.
fn alive<T>(r: Result<T, MailboxError>) -> T {
    r.expect("a flight actor stopped during the flight")
}

/// What a flight may use besides its actors: the 2015 demo's ZMQ endpoints, and a real
/// Crazyflie in shadow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlightExtras {
    /// Take setpoints from the set-point UI (`ksp.py`) pushing here (real time only).
    pub setpoints_in: Option<String>,
    /// Push the controller's PID terms here, as `kctrl.py` pushed them to its visualisation
    /// (`{"name":…,"data":{"P","I","D","E","SP","OUT"}}`, one message per loop per command).
    pub pid_viz: Option<String>,
    /// Shadow (real time only): every message the radio sends to the simulated Crazyflie also
    /// goes to the Crazyflie behind this link (a real one with its propellers off, on the bench).
    pub shadow: Option<String>,
    /// Publish every log row here (PUB, bound; topics `flight/state`, `flight/header`): what a
    /// live viewer (`depthpilot-viewer --live`) draws.
    pub state_out: Option<String>,
    /// A live teacher through the mux (real time only): the client's ZMQ input device bound here
    /// (what the live viewer's keyboard sends). Without a teacher in the scene, the mux is
    /// `TeacherRpyt` with its defaults.
    pub teacher_in: Option<String>,
    /// Whether the binds above (and a bridge's truth output) may leave loopback (`--insecure`).
    pub bind_policy: BindPolicy,
    /// CURVE (`--keys DIR`, issue 20) on the flight's own server sockets: the state PUB (ZAP
    /// domain `state`, `allow/state/`) and the live teacher input (`teacher`, `allow/teacher/`),
    /// each in a ZMQ context of its own with its ZAP handler. They may then bind any interface
    /// without `--insecure`; an empty allow-list is said at start and refuses everyone.
    pub keys: Option<ServerKeys>,
}

/// The flight's rows on the bus, for a live viewer.
struct StatePub {
    socket: zmq::Socket,
    scene: String,
    seq: u64,
    last_header: Option<Instant>,
    /// With CURVE (after the socket: dropped last).
    curve: Option<CurveServers>,
}

impl StatePub {
    /// Binds the PUB in `ctx`, or with `keys` as a CURVE server of the `state` domain in a
    /// context of its own (so that its ZAP handler sees no other socket of the flight).
    fn bind(
        ctx: &zmq::Context,
        endpoint: &str,
        scene: &str,
        policy: BindPolicy,
        keys: Option<&ServerKeys>,
    ) -> Result<Self, RuntimeError> {
        let (socket, curve) = match keys {
            None => {
                let socket = ctx.socket(zmq::PUB)?;
                socket.set_linger(0)?;
                bind_checked(&socket, "PUB", Role::State, endpoint, policy)?;
                (socket, None)
            }
            Some(keys) => {
                let own = zmq::Context::new();
                let socket = own.socket(zmq::PUB)?;
                socket.set_linger(0)?;
                let mut curve = CurveServers::start(&own, keys)?;
                curve.bind(&own, &socket, "PUB", Role::State, endpoint)?;
                (socket, Some(curve))
            }
        };
        Ok(Self {
            socket,
            scene: scene.to_string(),
            seq: 0,
            last_header: None,
            curve,
        })
    }

    /// Never blocks: a slow viewer or none loses rows, the flight does not wait.
    fn send(&mut self, t_ns: u64, row: &depthpilot_sim::LogRow) {
        self.seq += 1;
        if self
            .last_header
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_header = Some(Instant::now());
            let header = serde_json::json!({ "scene": self.scene });
            let _ = self.socket.send_multipart(
                crate::bus::encode(crate::bus::TOPIC_FLIGHT_HEADER, self.seq, t_ns, &header),
                zmq::DONTWAIT,
            );
        }
        let _ = self.socket.send_multipart(
            crate::bus::encode(crate::bus::TOPIC_FLIGHT_STATE, self.seq, t_ns, row),
            zmq::DONTWAIT,
        );
    }
}

/// The PID visualisation output: a PUSH socket connected to the visualisation.
struct PidViz {
    socket: zmq::Socket,
    endpoint: String,
    sent: u64,
    dropped: u64,
}

impl PidViz {
    fn connect(ctx: &zmq::Context, endpoint: &str) -> Result<Self, RuntimeError> {
        let socket = ctx.socket(zmq::PUSH)?;
        socket.set_linger(0)?;
        socket.set_sndhwm(1000)?;
        socket
            .connect(endpoint)
            .map_err(|source| RuntimeError::Connect {
                kind: "PUSH",
                endpoint: endpoint.to_string(),
                source,
            })?;
        Ok(Self {
            socket,
            endpoint: endpoint.to_string(),
            sent: 0,
            dropped: 0,
        })
    }

    /// Never blocks: with no visualisation there (or a slow one) the message is dropped.
    fn send(&mut self, terms: &[depthpilot_control::PidTerms]) {
        for t in terms {
            let msg = crate::bus::PidVizMsg {
                name: t.name.to_string(),
                p: t.p,
                i: t.i,
                d: t.d,
                e: t.e,
                sp: t.sp,
                out: t.out,
            };
            match self.socket.send(msg.to_json(), zmq::DONTWAIT) {
                Ok(()) => self.sent += 1,
                Err(_) => self.dropped += 1,
            }
        }
    }
}

/// Flies `scene` with the actors, in lockstep or real time. Returns the summary, the sink with
/// every row written, and (real time) the wall-clock figures.
pub fn fly_actors<L: LogSink + Send + Unpin + 'static>(
    scene: &Scene,
    controller: Box<dyn Controller + Send>,
    log: L,
    mode: ClockMode,
) -> Result<(Summary, L, Option<RealtimeReport>), SimError> {
    match fly_actors_with(
        scene,
        controller,
        log,
        mode,
        &VisionSource::Local,
        &FlightExtras::default(),
    ) {
        Ok(r) => Ok(r),
        Err(RuntimeError::Sim(e)) => Err(e),
        Err(e) => unreachable!("a local flight has no bus: {e}"),
    }
}

/// [`fly_actors`] with the vision where `source` says (another process: real time only), and
/// the extra endpoints and outputs of `extras` (the set-point input: real time only).
pub fn fly_actors_with<L: LogSink + Send + Unpin + 'static>(
    scene: &Scene,
    controller: Box<dyn Controller + Send>,
    log: L,
    mode: ClockMode,
    source: &VisionSource,
    extras: &FlightExtras,
) -> Result<(Summary, L, Option<RealtimeReport>), RuntimeError> {
    if mode == ClockMode::Lockstep
        && (*source != VisionSource::Local
            || extras.setpoints_in.is_some()
            || extras.shadow.is_some()
            || extras.teacher_in.is_some())
    {
        return Err(RuntimeError::Setup(
            "peers on the bus run on the wall clock: fly a split run in real time".to_string(),
        ));
    }
    let system = System::new();
    system.block_on(run(
        scene.clone(),
        controller,
        log,
        mode,
        source.clone(),
        extras.clone(),
    ))
}

async fn run<L: LogSink + Send + Unpin + 'static>(
    scene: Scene,
    controller: Box<dyn Controller + Send>,
    log: L,
    mode: ClockMode,
    source: VisionSource,
    extras: FlightExtras,
) -> Result<(Summary, L, Option<RealtimeReport>), RuntimeError> {
    let zmq = zmq::Context::new();
    let shadow = match &extras.shadow {
        Some(uri) => {
            let link = depthpilot_radio::open(uri)
                .map_err(|e| RuntimeError::Setup(format!("shadow link: {e}")))?;
            eprintln!(
                "depthpilot: SHADOW: the Crazyflie at {uri} receives every setpoint of this flight; \
                 its propellers must be OFF"
            );
            Some(crate::radio_actor::Radio::spawn(link))
        }
        None => None,
    };
    let mut live_teacher = match &extras.teacher_in {
        Some(e) => Some(match &extras.keys {
            Some(keys) => crate::ZmqTeacher::bind_curve_flight(e, keys)?,
            None => crate::ZmqTeacher::bind_with(e, extras.bind_policy)?,
        }),
        None => None,
    };
    let crew = Crew::start(
        &scene,
        controller,
        &source,
        &zmq,
        shadow,
        live_teacher.is_some(),
        extras.bind_policy,
    )?;
    let mut state_pub = match &extras.state_out {
        Some(e) => Some(StatePub::bind(
            &zmq,
            e,
            &scene.name,
            extras.bind_policy,
            extras.keys.as_ref(),
        )?),
        None => None,
    };
    let mut pid_viz = match &extras.pid_viz {
        Some(e) => Some(PidViz::connect(&zmq, e)?),
        None => None,
    };
    let mut set_points = match &extras.setpoints_in {
        Some(e) => {
            let z = depthpilot_sim::trajectory::setpoint_at(&scene.setpoints, 0.0)
                .pos_in_world_m
                .z;
            Some(SetPointsIn::connect(&zmq, e, z)?)
        }
        None => None,
    };
    let mut compat_garbage = GarbageCounts::default();
    let recorder = RecorderActor::new(log).start();
    let settle_ns = (scene.settle_s * 1e9).round() as u64;
    let mut est_err = ErrorStats::default();
    let mut safety = SafetyLog::default();
    let mut mux_sources = None;
    let realtime = mode == ClockMode::Realtime;
    let start = Instant::now();
    let mut late_steps = 0u64;

    let mut now = alive(crew.world.send(GetNow).await);
    while !now.finished {
        let t_ns = now.now_ns;
        let truth = now.truth;
        let mut frame_available = None;
        if realtime {
            let due = start + Duration::from_nanos(t_ns);
            let wall = Instant::now();
            if due > wall {
                actix_rt::time::sleep_until(due.into()).await;
            } else if wall - due > Duration::from_nanos(1_000_000) {
                late_steps += 1;
            }
        }

        // The set-point UI (real time): the newest target replaces the scene's setpoints.
        if let Some(sp) = &mut set_points
            && let Some(target) = sp.poll(t_ns, &mut compat_garbage)
        {
            alive(crew.controller.send(Retarget(target)).await);
        }

        // Sensing → controller (→ external positions to the radio, on-board control).
        let timed = crew.vision.sense(t_ns, truth, realtime).await;
        if realtime {
            frame_available = timed.iter().map(|t| t.frame_available).min();
        }
        let measurements: Vec<_> = timed.into_iter().map(|t| t.m).collect();
        if !measurements.is_empty() {
            let ext = alive(
                crew.controller
                    .send(Measure {
                        now_ns: t_ns,
                        measurements,
                    })
                    .await,
            );
            for msg in ext {
                alive(
                    crew.radio
                        .send(Transmit {
                            now_ns: t_ns,
                            packet: RadioPacket::Raw(msg),
                            frame_available: None,
                        })
                        .await,
                );
            }
        }

        // Control: at the link rate; in real time also at once when a frame brought news.
        let decision = alive(
            crew.controller
                .send(Tick {
                    now_ns: t_ns,
                    now: frame_available.is_some(),
                })
                .await,
        );
        let ticked = decision.is_some();
        let commanded = matches!(decision, Some(Decision::Command(_)));
        if commanded && let Some(viz) = &mut pid_viz {
            viz.send(&alive(crew.controller.send(GetPidTerms).await));
        }
        let mut params = Vec::new();
        if let Some(d) = decision {
            let packet = match d {
                Decision::Send(msg) => msg.map(RadioPacket::Raw),
                Decision::Command(cmd) => Some(match &crew.teacher {
                    Some((teacher, mux)) => {
                        let t = alive(
                            teacher
                                .send(TeacherInput {
                                    now_ns: t_ns,
                                    truth,
                                    frame: true,
                                })
                                .await,
                        );
                        params = t.params;
                        // A live teacher's frame replaces the script's.
                        let frame = match &mut live_teacher {
                            Some(live) => {
                                if let Ok(skipped) = live.poll(t_ns) {
                                    for e in skipped {
                                        eprintln!("depthpilot: teacher input skipped: {e}");
                                    }
                                }
                                live.frame()
                            }
                            None => t.frame,
                        };
                        let (p, sources) = alive(
                            mux.send(MuxStep {
                                now_ns: t_ns,
                                teacher: frame,
                                cmd,
                            })
                            .await,
                        );
                        mux_sources = Some(sources);
                        RadioPacket::Attitude(p)
                    }
                    None => {
                        RadioPacket::Attitude(depthpilot_crtp::RpytSetpoint::from_command(&cmd))
                    }
                }),
            };
            if let Some(packet) = packet {
                alive(
                    crew.radio
                        .send(Transmit {
                            now_ns: t_ns,
                            packet,
                            frame_available,
                        })
                        .await,
                );
            }
        }
        if params.is_empty()
            && let Some((teacher, _)) = &crew.teacher
            && !commanded
        {
            params = alive(
                teacher
                    .send(TeacherInput {
                        now_ns: t_ns,
                        truth,
                        frame: false,
                    })
                    .await,
            )
            .params;
        }
        for (name, value) in params {
            alive(
                crew.world
                    .send(SetParam {
                        now_ns: t_ns,
                        name,
                        value,
                    })
                    .await,
            );
        }
        if ticked && t_ns >= settle_ns {
            let p = alive(crew.controller.send(GetPilot { now_ns: t_ns }).await);
            if let Some(e) = p.estimate {
                est_err.add((e.pos_in_world_m - truth.pos_m).norm());
            }
        }

        // The world steps; the recorder gets a row when one is due.
        let stepped = alive(crew.world.send(Step).await);
        if stepped.log_due {
            let p = alive(
                crew.controller
                    .send(GetPilot {
                        now_ns: stepped.after_ns,
                    })
                    .await,
            );
            let v = crew.vision.report().await;
            safety.observe(stepped.after_ns, p.safety);
            let off = OffState {
                estimate: p.estimate,
                safety: p.safety,
                sp: p.sp,
                cmd: p.cmd,
                mux_sources,
                detection_pixels: v.last_frame_pixels,
            };
            let row = log_row(
                stepped.after_ns,
                &stepped.truth,
                stepped.motors_pwm,
                stepped.firmware,
                &off,
            );
            if let Some(p) = &mut state_pub {
                p.send(stepped.after_ns, &row);
            }
            recorder.do_send(Row(row));
        }
        now = WorldNow {
            now_ns: stepped.after_ns,
            truth: stepped.truth,
            finished: stepped.finished,
        };
    }
    let wall_s = start.elapsed().as_secs_f64();
    let mut auth = BTreeMap::new();
    if let Some(c) = state_pub.as_ref().and_then(|p| p.curve.as_ref()) {
        auth.extend(c.all_counts().into_iter().map(|(d, n)| (d.to_string(), n)));
    }
    if let Some(n) = live_teacher.as_ref().and_then(|t| t.auth_counts()) {
        auth.insert(crate::curve::zap_domain(Role::Teacher).to_string(), n);
    }
    for (domain, n) in &auth {
        eprintln!(
            "depthpilot: CURVE `{domain}`: {} handshake(s) accepted, {} denied, {} failed",
            n.accepted, n.denied, n.handshake_failures
        );
    }
    if let Some(v) = &pid_viz {
        eprintln!(
            "depthpilot: PID visualisation: {} messages pushed to {}, {} dropped (no peer there, or a slow one)",
            v.sent, v.endpoint, v.dropped
        );
    }

    let p = alive(crew.controller.send(GetPilot { now_ns: now.now_ns }).await);
    let v = crew.vision.report().await;
    let summary = alive(
        crew.world
            .send(Finish {
                scene: Box::new(scene.clone()),
                off: OffBoardReport {
                    controller: p.name,
                    frames: v.frames,
                    detections: v.detections,
                    rms_estimate_error_m: est_err.rms(),
                    safety: p.safety,
                    vision: v.vision,
                    safety_events: safety.events,
                },
            })
            .await,
    );
    let log = alive(recorder.send(TakeLog::<L>::default()).await).expect("the log is taken once");
    let report = if realtime {
        let mut lat = alive(crew.radio.send(TakeLatencies).await);
        lat.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            if lat.is_empty() {
                f64::NAN
            } else {
                lat[((lat.len() - 1) as f64 * q).round() as usize]
            }
        };
        Some(RealtimeReport {
            realtime_factor: summary.sim_seconds / wall_s,
            latency_p50_us: pct(0.5),
            latency_p99_us: pct(0.99),
            latency_max_us: lat.last().copied().unwrap_or(f64::NAN),
            latency_samples: lat.len(),
            late_steps,
            bus: {
                let mut bus = match &crew.vision {
                    VisionSeam::Bus(b) => Some(alive(b.send(TakeBusReport).await)),
                    VisionSeam::Local(_) | VisionSeam::Bridge(_) => None,
                };
                if let Some(sp) = &set_points {
                    let b = bus.get_or_insert_with(BusReport::default);
                    b.garbage.merge(&compat_garbage);
                    b.set_points_received = sp.received;
                }
                bus
            },
            camera: match &crew.vision {
                VisionSeam::Bridge(b) => Some(alive(b.send(TakeCameraReport).await)),
                _ => None,
            },
            shadow: alive(crew.radio.send(ShadowStats).await).map(|s| ShadowReport {
                uri: extras.shadow.clone().unwrap_or_default(),
                packets_sent: s.link.packets_sent,
                errors: s.errors,
                last_error: s.last_error,
            }),
            auth,
        })
    } else {
        None
    };
    Ok((summary, log, report))
}
