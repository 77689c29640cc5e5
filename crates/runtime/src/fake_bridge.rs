//! A fake Kinect bridge: the scene's synthetic Kinect v2, published through the real bridge
//! protocol (`depthpilot-camera`), so that everything downstream of a real bridge can be flown
//! and tested without one.
//!
//! What it renders: the truth of a running simulated flight (`truth`: it subscribes to the
//! control side's `sim/truth`, as the vision role does), or, open loop, a quad that stands at the
//! scene's start position for the first [`OPEN_LOOP_REST_S`] (so a vision learns its background
//! with the view clear, as on the bench) and then follows the scene's setpoints exactly, paced
//! by the wall clock. Each frame is published when it would
//! reach the host (capture + the camera's modelled latency), stamped with its capture time as the
//! device's timestamp and the scene's intrinsics as the device's.
//!
//! Misbehaviour on demand, for tests of the client: stalls (frames not sent) and frames of the
//! wrong size.

use crate::RuntimeError;
use crate::actors::{RealtimeSensing, sense_realtime_frames};
use crate::bridge_curve::BridgeServer;
use crate::bus::{self, TOPIC_TRUTH, TruthMsg};
use crate::curve::{DomainCounts, ServerKeys};
use crate::netpolicy::{BindPolicy, Role, limit_size};
use depthpilot_camera::{BridgeState, FrameHeader, StatusMsg, encode_frame, encode_status};
use depthpilot_sim::offboard::Sensing;
use depthpilot_sim::trajectory::setpoint_at;
use depthpilot_sim::world::BodyState;
use depthpilot_types::scene::Sensing as SensingConfig;
use depthpilot_types::{Rot, Scene, Vec3};
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Options of `depthpilot fake-bridge`.
#[derive(Clone, Debug)]
pub struct FakeBridge {
    /// Where to bind the PUB (the bridge's default: tcp://127.0.0.1:7720).
    pub bind: String,
    /// Whether `bind` may leave loopback (`--insecure`).
    pub bind_policy: BindPolicy,
    /// CURVE (`--keys DIR`): the PUB is a CURVE server of the `bridge` role
    /// (`DIR/allow/bridge/*.pub`); any interface without `--insecure`.
    pub keys: Option<ServerKeys>,
    /// Render the truth published here; None: open loop (the quad on its setpoints).
    pub truth: Option<String>,
    /// Stop after this long (wall clock); None: until killed (open loop: the scene's duration).
    pub duration: Option<Duration>,
    /// Flight-time windows (start s, length s) in which frames are not sent.
    pub stalls: Vec<(f64, f64)>,
    /// From this flight time on, this many frames go out with a depth image cut short.
    pub wrong_size: Vec<(f64, u32)>,
    pub status_every: Duration,
}

/// Publishes the frames of a recorded session (`depthpilot record`) through the bridge protocol
/// at their recorded pace: a recording as the camera of `run`, `record` or anything that takes a
/// bridge. The frames keep their recorded headers (device stamps, intrinsics, sequence numbers);
/// the host stamp is the time they are sent.
pub fn replay_session(
    path: &std::path::Path,
    bind: &str,
    bind_policy: BindPolicy,
    keys: Option<&ServerKeys>,
    status_every: Duration,
) -> Result<FakeBridgeReport, RuntimeError> {
    let session = depthpilot_camera::session::read_session(path)
        .map_err(|e| RuntimeError::Setup(e.to_string()))?;
    if let Some(d) = &session.damage {
        eprintln!(
            "depthpilot fake-bridge: {}: {d}; replaying what was read",
            path.display()
        );
    }
    if session.frames.is_empty() {
        return Err(RuntimeError::Setup(format!(
            "{}: no frames to replay",
            path.display()
        )));
    }
    let ctx = zmq::Context::new();
    let publisher = BridgeServer::bind(&ctx, bind, bind_policy, keys)?;
    eprintln!(
        "depthpilot fake-bridge: replaying {} frames of {} on {}",
        session.frames.len(),
        path.display(),
        publisher.endpoint()
    );
    let status = encode_status(&StatusMsg {
        state: BridgeState::Streaming,
        message: format!("replay of {}", path.display()),
    });
    // Subscribers need a moment to connect (ZMQ's slow joiner): announce, then start.
    for _ in 0..4 {
        let _ = publisher.send_raw(status.clone());
        std::thread::sleep(Duration::from_millis(250));
    }
    let t0 = session.frames[0].0;
    let started = Instant::now();
    let mut report = FakeBridgeReport::default();
    let mut last_status = Instant::now();
    for (log_ns, f) in &session.frames {
        let due = started + Duration::from_nanos(log_ns.saturating_sub(t0));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let mut header = f.header.clone();
        header.host_stamp_ns = unix_ns();
        let parts = encode_frame(&header, &f.frame.depth_mm, f.frame.ir.as_deref());
        if publisher.send_raw(parts).is_ok() {
            report.frames_sent += 1;
        }
        if last_status.elapsed() >= status_every {
            last_status = Instant::now();
            let _ = publisher.send_raw(status.clone());
            eprintln!(
                "depthpilot fake-bridge: {} of {} frames replayed",
                report.frames_sent,
                session.frames.len()
            );
        }
    }
    report.auth = publisher.auth_counts();
    Ok(report)
}

/// What the fake bridge did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FakeBridgeReport {
    pub frames_sent: u64,
    pub frames_stalled: u64,
    pub frames_wrong_size: u64,
    pub truth_received: u64,
    /// With CURVE: the `bridge` role's handshakes (accepted, denied, failed).
    pub auth: Option<DomainCounts>,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Open loop: the quad rests at its start position this long.
pub const OPEN_LOOP_REST_S: f64 = 1.0;

/// The open-loop quad at `t_s`: at its start position, then exactly on the scene's setpoint,
/// level.
fn on_setpoint(scene: &Scene, t_s: f64) -> BodyState {
    if t_s < OPEN_LOOP_REST_S {
        return BodyState {
            pos_m: scene.quad.initial_position_m,
            vel_m_s: Vec3::ZERO,
            world_from_body: Rot::from_rpy(0.0, 0.0, scene.quad.initial_yaw_deg.to_radians()),
            body_rates_rad_s: Vec3::ZERO,
        };
    }
    let sp = setpoint_at(&scene.setpoints, t_s);
    BodyState {
        pos_m: sp.pos_in_world_m,
        vel_m_s: sp.vel_in_world_m_s,
        world_from_body: Rot::from_rpy(0.0, 0.0, sp.yaw_rad),
        body_rates_rad_s: Vec3::ZERO,
    }
}

/// Runs the fake bridge for `scene` until its duration is over (or it is killed).
pub fn run_fake_bridge(scene: &Scene, opts: &FakeBridge) -> Result<FakeBridgeReport, RuntimeError> {
    let SensingConfig::Kinect(k) = &scene.sensing else {
        return Err(RuntimeError::Setup(format!(
            "scene `{}` has no Kinect (`sensing: Kinect((…))`): nothing to render",
            scene.name
        )));
    };
    let intrinsics = k.intrinsics.resolve();
    let mut sensing = Sensing::new(scene)?;
    let mut realtime = RealtimeSensing::new(scene);
    let ctx = zmq::Context::new();
    let publisher = BridgeServer::bind(&ctx, &opts.bind, opts.bind_policy, opts.keys.as_ref())?;
    let truth_sub = match &opts.truth {
        Some(e) => {
            let s = ctx.socket(zmq::SUB)?;
            s.set_linger(0)?;
            limit_size(&s, Role::Truth)?;
            s.set_subscribe(TOPIC_TRUTH.as_bytes())?;
            s.connect(e).map_err(|source| RuntimeError::Connect {
                kind: "SUB",
                endpoint: e.to_string(),
                source,
            })?;
            Some(s)
        }
        None => None,
    };
    eprintln!(
        "depthpilot fake-bridge: `{}` on {} ({}); intrinsics fx {:.3} fy {:.3} cx {:.3} cy {:.3}",
        scene.name,
        publisher.endpoint(),
        match &opts.truth {
            Some(t) => format!("rendering the truth from {t}"),
            None => "open loop: the quad at its start for 1 s, then on its setpoints".to_string(),
        },
        intrinsics.fx,
        intrinsics.fy,
        intrinsics.cx,
        intrinsics.cy
    );
    let mut report = FakeBridgeReport::default();
    let mut wrong_left: Vec<(f64, u32)> = opts.wrong_size.clone();
    let started = Instant::now();
    let mut last_status = Instant::now();
    let mut seq = 0u64;
    let stalled = |t: f64| opts.stalls.iter().any(|(a, l)| t >= *a && t < a + l);
    let mut publish = |t_ns: u64,
                       capture_ns: u64,
                       depth: &[u16],
                       ir: Option<&[u16]>,
                       report: &mut FakeBridgeReport| {
        let t = t_ns as f64 * 1e-9;
        if stalled(t) {
            report.frames_stalled += 1;
            return;
        }
        seq += 1;
        let header = FrameHeader::kinect_v2(seq, capture_ns / 1000, unix_ns(), intrinsics);
        let mut parts = encode_frame(&header, depth, ir);
        if let Some(w) = wrong_left.iter_mut().find(|(at, n)| t >= *at && *n > 0) {
            w.1 -= 1;
            // The depth image cut short: a bridge sending the wrong size.
            let half = parts[2].len() / 2;
            parts[2].truncate(half);
            report.frames_wrong_size += 1;
        }
        if publisher.send_raw(parts).is_ok() {
            report.frames_sent += 1;
        }
    };
    let status = encode_status(&StatusMsg {
        state: BridgeState::Streaming,
        message: format!("fake bridge for `{}`", scene.name),
    });
    let mut last_heartbeat: Option<Instant> = None;
    let end = opts.duration.or(match opts.truth {
        None => Some(Duration::from_secs_f64(scene.duration_s)),
        Some(_) => None,
    });
    let step = Duration::from_millis(1);
    loop {
        if end.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        // Its status every half second (subscribers that join late hear it too).
        if last_heartbeat.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            last_heartbeat = Some(Instant::now());
            let _ = publisher.send_raw(status.clone());
        }
        // The next instant of flight time and where the quad is then.
        let (t_ns, body) = match &truth_sub {
            Some(sub) => {
                if sub.poll(zmq::POLLIN, 100)? == 0 {
                    continue;
                }
                let frames = sub.recv_multipart(0)?;
                let Ok(e) = bus::decode::<TruthMsg>(TOPIC_TRUTH, &frames) else {
                    continue;
                };
                let Some(body) = e.payload.body() else {
                    continue;
                };
                report.truth_received += 1;
                if report.truth_received == 1 {
                    sensing.start_at(e.payload.t_ns);
                }
                (e.payload.t_ns, body)
            }
            None => {
                let next = started + step * (report_steps(started, step));
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                let t_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                (t_ns, on_setpoint(scene, t_ns as f64 * 1e-9))
            }
        };
        for (capture_ns, frame) in sense_realtime_frames(&mut sensing, &mut realtime, t_ns, &body) {
            publish(
                t_ns,
                capture_ns,
                &frame.depth_mm,
                frame.ir.as_deref(),
                &mut report,
            );
        }
        if last_status.elapsed() >= opts.status_every {
            last_status = Instant::now();
            eprintln!(
                "depthpilot fake-bridge: {} frames sent ({} stalled, {} of the wrong size){}",
                report.frames_sent,
                report.frames_stalled,
                report.frames_wrong_size,
                if opts.truth.is_some() {
                    format!(", {} truth messages", report.truth_received)
                } else {
                    String::new()
                }
            );
        }
    }
    report.auth = publisher.auth_counts();
    Ok(report)
}

/// Steps of `step` since `started`, plus one: the next pacing instant.
fn report_steps(started: Instant, step: Duration) -> u32 {
    let n = started.elapsed().as_nanos() / step.as_nanos().max(1);
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}
