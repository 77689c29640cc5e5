//! A flight against a plant in another process: the off-board side (sensing, controller, mux)
//! runs here in real time; the radio actor carries its setpoints over a link (CRTP/UDP to
//! `depthpilot sitl`); the simulated world's truth comes back as a log block of the `sim` group
//! (which only a simulated Crazyflie has), at 100 Hz. The synthetic camera renders from that
//! truth, and the errors are measured on it.

use crate::radio_actor::{Radio, RadioCommand};
use depthpilot_control::{Controller, SafetyState};
use depthpilot_crtp::RpytSetpoint;
use depthpilot_radio::{Link, LinkError, LogSample};
use depthpilot_sim::offboard::Outgoing;
use depthpilot_sim::plant::period_ns;
use depthpilot_sim::runner::ErrorStats;
use depthpilot_sim::trajectory::setpoint_at;
use depthpilot_sim::world::BodyState;
use depthpilot_sim::{LogRow, LogSink, OffBoard, SimError, Summary};
use depthpilot_types::{AttitudeCommand, Rot, Scene, Vec3};
use std::time::{Duration, Instant};

/// The truth log block: the simulation's own pose of the quad.
pub const TRUTH_VARIABLES: [&str; 6] = [
    "sim.x",
    "sim.y",
    "sim.z",
    "sim.roll",
    "sim.pitch",
    "sim.yaw",
];
/// Truth sample period (the log's shortest: one 10 ms tick).
pub const TRUTH_PERIOD_MS: u32 = 10;
/// Tick of the real-time loop.
const TICK: Duration = Duration::from_millis(1);
/// Zero-thrust packets sent at the end so the quad stops at once, not 2 s later.
const STOP_PACKETS: u32 = 5;

/// A remote flight could not run.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Setup(#[from] SimError),
    #[error("link: {0}")]
    Link(#[from] LinkError),
    #[error(
        "no truth from {uri} within {waited_s} s: the other side must be a simulated Crazyflie \
         with the `sim` log group (`depthpilot sitl`)"
    )]
    NoTruth { uri: String, waited_s: f64 },
    #[error("camera: {0}")]
    Camera(#[from] crate::RuntimeError),
}

/// Where a remote flight's measurements come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteCamera {
    /// The scene's synthetic camera, rendering the truth the simulated Crazyflie logs.
    Simulated,
    /// A Kinect bridge at `endpoint` (hil/kinect_bridge, or `depthpilot fake-bridge`); with
    /// `truth_out`, the simulated Crazyflie's truth is published there for a fake bridge.
    Bridge {
        endpoint: String,
        truth_out: Option<String>,
        /// CURVE: the bridge is a CURVE server and these are this client's keys.
        curve: Option<depthpilot_camera::CurveClientKeys>,
    },
}

fn truth_of(s: &LogSample, prev: Option<(f64, Vec3)>, t_s: f64) -> Option<BodyState> {
    let g = |n: &str| s.get(n);
    let pos = Vec3::new(g("sim.x")?, g("sim.y")?, g("sim.z")?);
    let rpy = [g("sim.roll")?, g("sim.pitch")?, g("sim.yaw")?].map(f64::to_radians);
    let vel = match prev {
        Some((t0, p0)) if t_s > t0 => (pos - p0) * (1.0 / (t_s - t0)),
        _ => Vec3::ZERO,
    };
    Some(BodyState {
        pos_m: pos,
        vel_m_s: vel,
        world_from_body: Rot::from_rpy(rpy[0], rpy[1], rpy[2]),
        body_rates_rad_s: Vec3::ZERO,
    })
}

/// The radio actor's command for one message of the off-board side.
pub(crate) fn command_of(msg: Outgoing) -> RadioCommand {
    match msg {
        Outgoing::Rpyt(sp) => RadioCommand::Setpoint(sp),
        Outgoing::Position {
            pos_in_world_m,
            yaw_deg,
        } => RadioCommand::PositionSetpoint {
            pos_in_world_m,
            yaw_deg,
        },
        Outgoing::ExternalPosition(p) => RadioCommand::ExternalPosition(p),
        Outgoing::Stop => {
            RadioCommand::Setpoint(RpytSetpoint::from_command(&AttitudeCommand::ZERO))
        }
    }
}

/// A person's input during a remote flight, through the mux.
pub enum LiveTeacher {
    /// The client's ZMQ input device format (cfclient's PULL on tcp://127.0.0.1:1212).
    Zmq(crate::ZmqTeacher),
    Gamepad(Box<crate::GamepadTeacher>),
}

impl LiveTeacher {
    fn poll(&mut self, now_ns: u64) -> Option<depthpilot_mux::InputFrame> {
        match self {
            Self::Zmq(t) => {
                match t.poll(now_ns) {
                    Ok(skipped) => {
                        for e in skipped {
                            eprintln!("depthpilot: teacher input skipped: {e}");
                        }
                    }
                    Err(e) => eprintln!("depthpilot: teacher input: {e}"),
                }
                t.frame()
            }
            Self::Gamepad(g) => g.poll(now_ns),
        }
    }
}

/// How a remote flight senses and who else has a say.
pub struct RemoteOptions {
    pub camera: RemoteCamera,
    /// The far side is a simulated Crazyflie that logs its truth (the errors are measured on it);
    /// without (a real Crazyflie on the bench), the errors are measured on the controller's
    /// estimate and the log's positions are the estimate's.
    pub truth_from_link: bool,
    /// A live teacher and the mux it goes through (instead of the scene's scripted teacher).
    pub teacher: Option<(LiveTeacher, depthpilot_types::scene::MuxConfig)>,
    /// Whether a bridge's truth output may bind off loopback (`--insecure`).
    pub bind_policy: crate::netpolicy::BindPolicy,
}

/// Flies `scene` in real time through `link`. The far side must simulate the same scene's quad
/// (start it with `depthpilot sitl --scene <the same scene>`).
pub fn fly_remote(
    scene: &Scene,
    controller: Box<dyn Controller + Send>,
    link: Box<dyn Link>,
    log: &mut dyn LogSink,
) -> Result<Summary, RemoteError> {
    let opts = RemoteOptions {
        camera: RemoteCamera::Simulated,
        truth_from_link: true,
        teacher: None,
        bind_policy: crate::netpolicy::BindPolicy::LoopbackOnly,
    };
    fly_remote_with(scene, controller, link, opts, log)
}

/// [`fly_remote`] with the measurements from `opts.camera`, and perhaps a live teacher.
pub fn fly_remote_with(
    scene: &Scene,
    controller: Box<dyn Controller + Send>,
    link: Box<dyn Link>,
    opts: RemoteOptions,
    log: &mut dyn LogSink,
) -> Result<Summary, RemoteError> {
    let RemoteOptions {
        camera,
        truth_from_link,
        teacher,
        bind_policy,
    } = opts;
    let camera = &camera;
    if !truth_from_link && *camera == RemoteCamera::Simulated {
        return Err(RemoteError::Camera(crate::RuntimeError::Setup(
            "a simulated camera renders the simulator's truth; a real Crazyflie needs a real \
             camera (a Kinect bridge)"
                .to_string(),
        )));
    }
    let uri = link.uri().to_string();
    let radio = Radio::spawn(link);
    let resting = BodyState {
        pos_m: scene.quad.initial_position_m,
        vel_m_s: Vec3::ZERO,
        world_from_body: Rot::from_rpy(0.0, 0.0, scene.quad.initial_yaw_deg.to_radians()),
        body_rates_rad_s: Vec3::ZERO,
    };
    let mut truth = if truth_from_link {
        radio.start_log("truth", &TRUTH_VARIABLES, TRUTH_PERIOD_MS)?;
        // The first truth sample starts the flight clock.
        let wait = Duration::from_secs(5);
        let waited = Instant::now();
        loop {
            radio.send(RadioCommand::Poll);
            if let Ok(s) = radio.samples.recv_timeout(Duration::from_millis(20))
                && let Some(t) = truth_of(&s, None, 0.0)
            {
                break t;
            }
            if waited.elapsed() > wait {
                return Err(RemoteError::NoTruth {
                    uri,
                    waited_s: wait.as_secs_f64(),
                });
            }
        }
    } else {
        resting
    };
    let zmq_ctx = zmq::Context::new();
    let mut bridge = match camera {
        RemoteCamera::Simulated => None,
        RemoteCamera::Bridge {
            endpoint,
            truth_out,
            curve,
        } => {
            let mut config = depthpilot_camera::BridgeConfig::new(endpoint);
            config.curve = curve.clone();
            let mut b = crate::bridge_vision::BridgeVisionActor::connect_with(
                &zmq_ctx,
                scene,
                &config,
                truth_out.as_deref(),
                bind_policy,
            )?;
            b.wait_for_frames(&truth, crate::bridge_vision::WAIT_FOR_FRAMES)?;
            Some(b)
        }
    };
    let start_offset = (truth.pos_m - scene.quad.initial_position_m).norm();
    if truth_from_link && start_offset > 0.05 {
        eprintln!(
            "depthpilot: warning: the remote quad stands at {:?}, the scene starts it at {:?}; \
             start the simulator with `--scene` of the same scene",
            truth.pos_m.to_array(),
            scene.quad.initial_position_m.to_array()
        );
    }

    let mut off = OffBoard::new(scene, controller)?;
    let mut live = teacher.map(|(t, mux)| {
        off.live_teacher(mux);
        t
    });
    let settle_ns = (scene.settle_s * 1e9).round() as u64;
    let end_ns = (scene.duration_s * 1e9).round() as u64;
    let log_period_ns = period_ns(scene.rates.log_hz);
    let mut next_log_ns = 0u64;
    let mut pos_err = ErrorStats::default();
    let mut est_err = ErrorStats::default();
    let mut safety = depthpilot_sim::runner::SafetyLog::default();
    let mut prev: Option<(f64, Vec3)> = None;
    let mut crashed_at: Option<f64> = None;
    let mut truth_samples = 0u64;
    let mut late_ticks = 0u64;
    let t0 = Instant::now();
    let mut tick = 0u64;
    loop {
        let now_ns = t0.elapsed().as_nanos() as u64;
        if now_ns >= end_ns {
            break;
        }
        let t_s = now_ns as f64 * 1e-9;
        radio.send(RadioCommand::Poll);
        while let Ok(s) = radio.samples.try_recv() {
            if let Some(t) = truth_of(&s, prev, t_s) {
                truth = t;
                prev = Some((t_s, t.pos_m));
                truth_samples += 1;
                if now_ns > settle_ns {
                    let sp = setpoint_at(&scene.setpoints, t_s);
                    pos_err.add((truth.pos_m - sp.pos_in_world_m).norm());
                }
                if crashed_at.is_none() && truth.world_from_body.tilt_rad() > 1.2 {
                    crashed_at = Some(t_s);
                }
            }
        }
        match &mut bridge {
            None => off.sense(now_ns, &truth),
            Some(b) => {
                if truth_from_link {
                    b.publish_truth(now_ns, &truth);
                }
                let ms: Vec<_> = b.sense(now_ns).into_iter().map(|t| t.m).collect();
                off.measured(now_ns, &ms);
            }
        }
        if !truth_from_link && let Some(e) = off.controller().estimate(now_ns) {
            // No truth on the bench: what the controller believes stands in for it.
            truth = BodyState {
                pos_m: e.pos_in_world_m,
                vel_m_s: e.vel_in_world_m_s,
                world_from_body: Rot::from_rpy(0.0, 0.0, e.yaw_rad.unwrap_or(0.0)),
                body_rates_rad_s: Vec3::ZERO,
            };
            if now_ns > settle_ns && off.ticked(now_ns) {
                let sp = setpoint_at(&scene.setpoints, t_s);
                pos_err.add((truth.pos_m - sp.pos_in_world_m).norm());
            }
        }
        for msg in off.drain() {
            radio.send(command_of(msg));
        }
        if let Some(t) = &mut live {
            off.teacher_frame(t.poll(now_ns));
        }
        if let Some(msg) = off.control(now_ns, &truth) {
            radio.send(command_of(msg));
        }
        if truth_from_link
            && off.ticked(now_ns)
            && now_ns >= settle_ns
            && let Some(e) = off.controller().estimate(now_ns)
        {
            est_err.add((e.pos_in_world_m - truth.pos_m).norm());
        }
        if now_ns >= next_log_ns {
            next_log_ns += log_period_ns;
            let estimate = off.controller().estimate(now_ns);
            safety.observe(now_ns, off.controller().safety());
            log.row(&LogRow {
                t_s,
                pos_m: truth.pos_m.to_array(),
                vel_m_s: truth.vel_m_s.to_array(),
                rpy_rad: truth.world_from_body.rpy(),
                setpoint_m: off.sp().pos_in_world_m.to_array(),
                estimate_m: estimate.map(|e| e.pos_in_world_m.to_array()),
                cmd_roll_rad: off.cmd().roll_rad,
                cmd_pitch_rad: off.cmd().pitch_rad,
                cmd_yaw_rate_rad_s: off.cmd().yaw_rate_rad_s,
                cmd_thrust_frac: off.cmd().thrust_frac,
                motors_pwm: [0; 4],
                safety: off.controller().safety().as_str(),
                firmware: "remote",
                mux_sources: off.mux_sources,
                measurement_age_s: estimate
                    .map(|e| now_ns.saturating_sub(e.last_measurement_ns) as f64 * 1e-9),
                detection_pixels: match &bridge {
                    Some(b) => b.last_frame_pixels(),
                    None => off.last_frame_pixels(),
                },
            });
        }
        tick += 1;
        let next = t0 + TICK * tick.min(u64::from(u32::MAX)) as u32;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            late_ticks += 1;
            // Behind by more than a tick: catch up instead of queueing ticks.
            tick = (now.duration_since(t0).as_nanos() / TICK.as_nanos()) as u64;
        }
    }
    for _ in 0..STOP_PACKETS {
        radio.send(RadioCommand::Setpoint(RpytSetpoint::from_command(
            &AttitudeCommand::ZERO,
        )));
    }
    let stats = radio.stats();
    let elapsed = t0.elapsed().as_secs_f64();
    let expected = elapsed * 1000.0 / f64::from(TRUTH_PERIOD_MS);
    let camera_report = bridge.as_ref().map(|b| b.report());
    if let Some(c) = &camera_report {
        eprintln!("depthpilot: camera: {}", c.describe());
    }
    if !truth_from_link {
        eprintln!(
            "depthpilot: no truth on the bench: the errors and positions are the controller's estimate"
        );
    }
    if truth_from_link && (truth_samples as f64) < 0.9 * expected {
        eprintln!(
            "depthpilot: only {truth_samples} truth samples in {elapsed:.1} s (expected {expected:.0}): \
             the link loses packets or the simulator runs slow"
        );
    }
    if late_ticks > 0 {
        eprintln!("depthpilot: {late_ticks} loop ticks ran late (host busy)");
    }
    if let Some(e) = &stats.last_error {
        eprintln!("depthpilot: link errors: {} (last: {e})", stats.errors);
    }
    Ok(Summary {
        scene: scene.name.clone(),
        seed: scene.seed,
        controller: off.controller().name(),
        sim_seconds: elapsed,
        physics_steps: 0,
        frames: camera_report
            .as_ref()
            .map_or(off.frames(), |c| c.bridge.frames.received),
        detections: camera_report
            .as_ref()
            .map_or(off.detections(), |c| c.vision.detections),
        rms_error_m: pos_err.rms(),
        max_error_m: pos_err.max,
        rms_estimate_error_m: est_err.rms(),
        crashed: crashed_at.is_some(),
        crash: None,
        touchdowns: 0,
        final_position_m: truth.pos_m.to_array(),
        final_safety_state: match off.controller().safety() {
            SafetyState::Idle => "idle",
            s => s.as_str(),
        },
        firmware_lockout: false,
        radio_packets_sent: stats.link.packets_sent,
        radio_packets_dropped: stats.link.send_errors,
        radio_decode_errors: 0,
        gusts: 0,
        steps: Vec::new(),
        vision: if bridge.is_some() { None } else { off.vision() },
        safety_events: safety.events,
        realism: scene.realism.items_on(),
    })
}
