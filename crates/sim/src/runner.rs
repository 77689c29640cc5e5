//! The inline runner: one fixed-step loop that flies a scene with every component in-process, in
//! virtual time. Same scene and seed → bit-identical flight.
//!
//! One physics step (1 kHz by default):
//! ```text
//!  truth ─► sensor (capture, latency, drops) ─► controller.measure
//!  every link period: setpoint(t) ─► controller.command ─► CRTP bytes ─► link ─► firmware.receive
//!  every firmware period: IMU(truth) ─► firmware.step ─► motor PWM
//!  motors (lag) ─► rotor wrench + disturbances ─► rapier step ─► contacts (touchdown / crash)
//! ```

use crate::kinect::VisionStats;
use crate::link::SimLink;
use crate::offboard::{OffBoard, Outgoing};
use crate::plant::{Plant, period_ns};
use crate::trajectory::setpoint_at;
use crate::world::{BodyState, Impact};
use depthpilot_control::{Controller, SafetyState};
use depthpilot_crtp::{CrtpError, LocalizationPacket, Packet, Uplink};
use depthpilot_firmware::{Firmware, FwSetpoint};
use depthpilot_types::scene::{Scene, Trajectory};
use depthpilot_types::{Setpoint, Vec3};
use serde::Serialize;

/// A flight could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("camera: {0}")]
    Camera(#[from] depthpilot_vision::VisionError),
}

/// The run ends this long after a crash.
const AFTER_CRASH_S: f64 = 1.0;

/// One row of the flight log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRow {
    pub t_s: f64,
    pub pos_m: [f64; 3],
    pub vel_m_s: [f64; 3],
    pub rpy_rad: [f64; 3],
    pub setpoint_m: [f64; 3],
    pub estimate_m: Option<[f64; 3]>,
    pub cmd_roll_rad: f64,
    pub cmd_pitch_rad: f64,
    pub cmd_yaw_rate_rad_s: f64,
    pub cmd_thrust_frac: f64,
    pub motors_pwm: [u16; 4],
    /// The off-board controller's safety state (tracking, holding, landing, cut, idle).
    pub safety: &'static str,
    /// The firmware's state: fresh, levelling, disabled (watchdog) or tumbled.
    pub firmware: &'static str,
    /// With a teacher: who flies roll, pitch, yaw and thrust (teacher, student, mix, safe, estop).
    pub mux_sources: Option<[&'static str; 4]>,
    /// Age of the newest measurement the controller has fused (capture to now): the loop's
    /// sensing latency as the controller sees it.
    pub measurement_age_s: Option<f64>,
    /// Kinect only: pixels of the quad's blob in the newest frame (None: not detected).
    pub detection_pixels: Option<usize>,
}

/// Where log rows go. The runner does no I/O itself.
pub trait LogSink {
    fn row(&mut self, row: &LogRow);

    /// Whether rows are kept. A flight that keeps none runs the synthetic Kinect on a second
    /// thread (`crate::kinect_pipeline`): bit-identical, but a row's detection pixel count
    /// would lag.
    fn wants_rows(&self) -> bool {
        true
    }
}

/// Discards the log.
pub struct NoLog;
impl LogSink for NoLog {
    fn row(&mut self, _row: &LogRow) {}

    fn wants_rows(&self) -> bool {
        false
    }
}

impl LogSink for Vec<LogRow> {
    fn row(&mut self, row: &LogRow) {
        self.push(row.clone());
    }
}

/// Stages of one loop iteration, for profiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Sensing,
    Control,
    Firmware,
    Forces,
    Physics,
    Metrics,
}

/// Called after each stage of each iteration; the benchmark measures time with it.
pub trait Probe {
    fn done(&mut self, stage: Stage);
}

pub struct NoProbe;
impl Probe for NoProbe {
    #[inline(always)]
    fn done(&mut self, _stage: Stage) {}
}

/// Response to one step of a `Steps` trajectory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepResponse {
    pub t_s: f64,
    pub size_m: f64,
    /// Time after the step until the error stays within 5 % of the step size (None: never).
    pub settling_time_s: Option<f64>,
    /// Largest excursion past the target along the step direction, in % of the step size.
    pub overshoot_pct: f64,
}

/// What a flight produced (DESIGN §1 summary, minus the wall-clock fields the caller adds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub scene: String,
    pub seed: u64,
    pub controller: &'static str,
    pub sim_seconds: f64,
    pub physics_steps: u64,
    pub frames: u64,
    pub detections: u64,
    pub rms_error_m: f64,
    pub max_error_m: f64,
    pub rms_estimate_error_m: f64,
    pub crashed: bool,
    pub crash: Option<Impact>,
    pub touchdowns: u32,
    pub final_position_m: [f64; 3],
    pub final_safety_state: &'static str,
    pub firmware_lockout: bool,
    pub radio_packets_sent: u64,
    pub radio_packets_dropped: u64,
    pub radio_decode_errors: u64,
    pub gusts: usize,
    pub steps: Vec<StepResponse>,
    /// Camera and vision counters (Kinect sensing only).
    pub vision: Option<VisionStats>,
    /// Every change of the controller's safety state (tracking, holding, landing, cut, …), as
    /// the log rows saw it.
    pub safety_events: Vec<SafetyEvent>,
    /// The realism items the flight had on (`scene.realism`; empty: `Ideal`).
    pub realism: Vec<&'static str>,
}

/// The controller's safety state changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafetyEvent {
    pub t_s: f64,
    pub state: &'static str,
}

/// Collects the safety state's changes.
#[derive(Clone, Debug, Default)]
pub struct SafetyLog {
    pub events: Vec<SafetyEvent>,
}

impl SafetyLog {
    pub fn observe(&mut self, now_ns: u64, state: SafetyState) {
        let name = state.as_str();
        if self.events.last().is_none_or(|e| e.state != name) {
            self.events.push(SafetyEvent {
                t_s: now_ns as f64 * 1e-9,
                state: name,
            });
        }
    }
}

/// Running rms and maximum of an error.
#[derive(Clone, Debug, Default)]
pub struct ErrorStats {
    sum_sq: f64,
    /// The largest error added.
    pub max: f64,
    n: u64,
}

impl ErrorStats {
    pub fn add(&mut self, e: f64) {
        self.sum_sq += e * e;
        self.max = self.max.max(e);
        self.n += 1;
    }
    pub fn rms(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.sum_sq / self.n as f64).sqrt()
        }
    }
}

/// The simulated side of a flight: the plant (firmware, motors, rapier world), the simulated
/// link in front of it, and the flight's metrics measured on the truth. The inline runner and
/// the world actor both drive one.
pub struct SimWorld {
    plant: Plant,
    link: SimLink,
    setpoints: Trajectory,
    dt_ns: u64,
    n_steps: u64,
    settle_ns: u64,
    link_cut_ns: Option<u64>,
    log_period_ns: u64,
    next_log_ns: u64,
    k: u64,
    truth: BodyState,
    pos_err: ErrorStats,
    decode_errors: u64,
    crash: Option<Impact>,
    touchdowns: u32,
    started_tumbled: bool,
    track: Vec<(f64, Vec3)>,
}

/// The off-board side's part of the summary.
#[derive(Clone, Debug)]
pub struct OffBoardReport {
    pub controller: &'static str,
    pub frames: u64,
    pub detections: u64,
    pub rms_estimate_error_m: f64,
    pub safety: SafetyState,
    pub vision: Option<VisionStats>,
    pub safety_events: Vec<SafetyEvent>,
}

impl SimWorld {
    pub fn new(scene: &Scene) -> Self {
        let dt_ns = period_ns(scene.rates.physics_hz);
        let plant = Plant::new(scene);
        let truth = *plant.truth();
        Self {
            link: SimLink::new(&scene.link, scene.seed),
            setpoints: scene.setpoints.clone(),
            dt_ns,
            n_steps: (scene.duration_s / (dt_ns as f64 * 1e-9)).round() as u64,
            settle_ns: (scene.settle_s * 1e9).round() as u64,
            link_cut_ns: scene.link.cut_at_s.map(|t| (t * 1e9).round() as u64),
            log_period_ns: period_ns(scene.rates.log_hz),
            next_log_ns: 0,
            k: 0,
            started_tumbled: truth.world_from_body.tilt_rad() > std::f64::consts::FRAC_PI_2,
            truth,
            plant,
            pos_err: ErrorStats::default(),
            decode_errors: 0,
            crash: None,
            touchdowns: 0,
            track: Vec::new(),
        }
    }

    /// The time of the next step.
    pub fn now_ns(&self) -> u64 {
        self.k * self.dt_ns
    }

    pub fn dt_ns(&self) -> u64 {
        self.dt_ns
    }

    /// The truth at `now_ns()`.
    pub fn truth(&self) -> &BodyState {
        &self.truth
    }

    /// The flight is over: its duration has passed, or a second after a crash.
    pub fn finished(&self) -> bool {
        self.k >= self.n_steps
            || self.crash.is_some_and(|c| {
                self.k > 0 && (self.k - 1) as f64 * self.dt_ns as f64 * 1e-9 > c.t_s + AFTER_CRASH_S
            })
    }

    /// Whether the (scripted) link still carries packets at `now_ns`.
    pub fn link_up(&self, now_ns: u64) -> bool {
        self.link_cut_ns.is_none_or(|cut| now_ns < cut)
    }

    /// Puts one message on the simulated link (lost if the link is cut).
    pub fn send(&mut self, now_ns: u64, msg: &Outgoing) {
        if self.link_up(now_ns) {
            send(&mut self.link, now_ns, msg);
        }
    }

    /// A parameter write over the link (lost if the link is cut).
    pub fn set_param(&mut self, now_ns: u64, name: &str, value: f64) {
        if self.link_up(now_ns) {
            let _ = self.plant.set_firmware_param(name, value);
        }
    }

    /// Delivers what the link carries by now to the firmware.
    pub fn receive(&mut self) {
        let t_ns = self.now_ns();
        while let Some(bytes) = self.link.receive(t_ns) {
            if deliver(self.plant.firmware_mut(), t_ns, &bytes).is_err() {
                self.decode_errors += 1;
            }
        }
    }

    /// One physics step (firmware, motors, forces, rapier) and the metrics after it. Returns
    /// the time after the step and whether a log row is due then.
    pub fn step<P: Probe>(&mut self, probe: &mut P) -> (u64, bool) {
        let impact = self.plant.step(probe);
        self.k += 1;
        let after_ns = self.now_ns();
        if let Some(i) = impact {
            if i.crash {
                self.crash.get_or_insert(i);
            } else {
                self.touchdowns += 1;
            }
        }
        self.truth = *self.plant.truth();
        if after_ns > self.settle_ns {
            let sp_now = setpoint_at(&self.setpoints, after_ns as f64 * 1e-9);
            self.pos_err
                .add((self.truth.pos_m - sp_now.pos_in_world_m).norm());
        }
        let log_due = after_ns >= self.next_log_ns;
        if log_due {
            self.next_log_ns += self.log_period_ns;
            self.track.push((after_ns as f64 * 1e-9, self.truth.pos_m));
        }
        (after_ns, log_due)
    }

    /// The first crash so far (a hard impact), if any.
    pub fn crash(&self) -> Option<Impact> {
        self.crash
    }

    /// Physics steps a flight of the scene's duration takes.
    pub fn n_steps(&self) -> u64 {
        self.n_steps
    }

    pub fn motor_cmd(&self) -> [u16; 4] {
        self.plant.motor_cmd()
    }

    pub fn firmware_state(&self) -> &'static str {
        self.plant.firmware().state_name()
    }

    /// The summary of the flight so far, with the off-board side's part.
    pub fn summary(&self, scene: &Scene, off: OffBoardReport) -> Summary {
        let dt_s = self.dt_ns as f64 * 1e-9;
        let steps_done = self.plant.steps();
        let final_state = *self.plant.truth();
        let tumbled = final_state.world_from_body.tilt_rad() > std::f64::consts::FRAC_PI_2;
        let mut crash = self.crash;
        // A quad that started on its back and never moved did not crash.
        if crash.is_none() && tumbled && !self.started_tumbled {
            crash = Some(Impact {
                t_s: steps_done as f64 * dt_s,
                speed_m_s: final_state.vel_m_s.norm(),
                tilt_deg: final_state.world_from_body.tilt_rad().to_degrees(),
                with_floor: false,
                crash: true,
            });
        }
        Summary {
            scene: scene.name.clone(),
            seed: scene.seed,
            controller: off.controller,
            sim_seconds: steps_done as f64 * dt_s,
            physics_steps: steps_done,
            frames: off.frames,
            detections: off.detections,
            rms_error_m: self.pos_err.rms(),
            max_error_m: self.pos_err.max,
            rms_estimate_error_m: off.rms_estimate_error_m,
            crashed: crash.is_some(),
            crash,
            touchdowns: self.touchdowns,
            final_position_m: final_state.pos_m.to_array(),
            final_safety_state: match off.safety {
                SafetyState::Idle => "idle",
                s => s.as_str(),
            },
            firmware_lockout: self.plant.firmware().lockout().is_some(),
            radio_packets_sent: self.link.sent,
            radio_packets_dropped: self.link.dropped,
            radio_decode_errors: self.decode_errors,
            gusts: self.plant.disturbances().gust_count(),
            steps: step_responses(&self.setpoints, &self.track),
            vision: off.vision,
            safety_events: off.safety_events,
            realism: scene.realism.items_on(),
        }
    }
}

/// What the off-board side contributes to a log row.
#[derive(Clone, Debug, PartialEq)]
pub struct OffState {
    pub estimate: Option<depthpilot_control::Estimate>,
    pub safety: SafetyState,
    pub sp: Setpoint,
    pub cmd: depthpilot_types::AttitudeCommand,
    pub mux_sources: Option<[&'static str; 4]>,
    pub detection_pixels: Option<usize>,
}

impl OffState {
    /// The in-process off-board side's state, with the estimate predicted to `now_ns`.
    pub fn of(off: &OffBoard, now_ns: u64) -> Self {
        Self {
            estimate: off.controller().estimate(now_ns),
            safety: off.controller().safety(),
            sp: off.sp(),
            cmd: off.cmd(),
            mux_sources: off.mux_sources,
            detection_pixels: off.last_frame_pixels(),
        }
    }
}

/// A log row: the truth after a step, the plant's motors and state, the off-board side's state.
pub fn log_row(
    after_ns: u64,
    now: &BodyState,
    motors_pwm: [u16; 4],
    firmware: &'static str,
    off: &OffState,
) -> LogRow {
    LogRow {
        t_s: after_ns as f64 * 1e-9,
        pos_m: now.pos_m.to_array(),
        vel_m_s: now.vel_m_s.to_array(),
        rpy_rad: now.world_from_body.rpy(),
        setpoint_m: off.sp.pos_in_world_m.to_array(),
        estimate_m: off.estimate.map(|e| e.pos_in_world_m.to_array()),
        cmd_roll_rad: off.cmd.roll_rad,
        cmd_pitch_rad: off.cmd.pitch_rad,
        cmd_yaw_rate_rad_s: off.cmd.yaw_rate_rad_s,
        cmd_thrust_frac: off.cmd.thrust_frac,
        motors_pwm,
        safety: off.safety.as_str(),
        firmware,
        mux_sources: off.mux_sources,
        measurement_age_s: off
            .estimate
            .map(|e| after_ns.saturating_sub(e.last_measurement_ns) as f64 * 1e-9),
        detection_pixels: off.detection_pixels,
    }
}

/// Whether flights that keep no log rows run the synthetic Kinect on a second thread (on by
/// default). Flights fly bit-identically either way; the thread only pays when a core is free
/// for it, so `batch` and `tune` turn it off when their parallel flights already fill the cores.
static CAMERA_THREAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets [`CAMERA_THREAD`] for this process.
pub fn set_camera_thread(on: bool) {
    CAMERA_THREAD.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether parallel flights (`jobs` at once) leave a core free for each one's camera thread.
pub fn camera_thread_pays(jobs: usize) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    2 * jobs <= cores
}

/// Flies a scene with the given controller. `probe` sees stage boundaries (profiling only).
pub fn run<P: Probe>(
    scene: &Scene,
    controller: Box<dyn Controller + Send>,
    log: &mut dyn LogSink,
    probe: &mut P,
) -> Result<Summary, SimError> {
    let settle_ns = (scene.settle_s * 1e9).round() as u64;
    let mut world = SimWorld::new(scene);
    let mut off = OffBoard::new(scene, controller)?;
    if !log.wants_rows() && CAMERA_THREAD.load(std::sync::atomic::Ordering::Relaxed) {
        off.pipeline_sensing();
    }
    let mut est_err = ErrorStats::default();
    let mut safety = SafetyLog::default();

    while !world.finished() {
        let t_ns = world.now_ns();
        let truth = *world.truth();

        // Sensing (and, in on-board control, the external positions it yields).
        off.sense(t_ns, &truth);
        for msg in off.drain() {
            world.send(t_ns, &msg);
        }
        probe.done(Stage::Sensing);

        // Control at the link rate.
        if let Some(msg) = off.control(t_ns, &truth) {
            world.send(t_ns, &msg);
        }
        // Parameters bound to the teacher's buttons (cfclient writes them over the link too).
        for (name, value) in off.teacher_params(t_ns) {
            world.set_param(t_ns, &name, value);
        }
        if off.ticked(t_ns)
            && t_ns >= settle_ns
            && let Some(e) = off.controller().estimate(t_ns)
        {
            est_err.add((e.pos_in_world_m - truth.pos_m).norm());
        }
        world.receive();
        probe.done(Stage::Control);

        // Firmware, motors, forces, physics; metrics and log (state after the step).
        let (after_ns, log_due) = world.step(probe);
        if log_due {
            let state = OffState::of(&off, after_ns);
            safety.observe(after_ns, state.safety);
            log.row(&log_row(
                after_ns,
                world.truth(),
                world.motor_cmd(),
                world.firmware_state(),
                &state,
            ));
        }
        probe.done(Stage::Metrics);
    }
    off.unpipeline_sensing();
    Ok(world.summary(
        scene,
        OffBoardReport {
            controller: off.controller().name(),
            frames: off.frames(),
            detections: off.detections(),
            rms_estimate_error_m: est_err.rms(),
            safety: off.controller().safety(),
            vision: off.vision(),
            safety_events: safety.events,
        },
    ))
}

/// Encodes a message onto the simulated link (every message is valid by construction; one
/// that could not be encoded would be a bug, and is not sent).
fn send(link: &mut SimLink, now_ns: u64, msg: &Outgoing) {
    if let Ok(p) = msg.to_uplink().to_packet() {
        link.send(now_ns, &p.encode());
    }
}

/// What the firmware's CRTP dispatch does with the bytes of one packet.
fn deliver(fw: &mut Firmware, now_ns: u64, bytes: &[u8]) -> Result<(), CrtpError> {
    let msg = Packet::decode(bytes).and_then(|p| Uplink::decode(&p))?;
    match msg {
        Uplink::Commander(sp) => fw.receive(now_ns, &sp),
        Uplink::Generic(g) => {
            if let Some(sp) = FwSetpoint::from_generic(&g) {
                fw.receive_setpoint(now_ns, &sp);
            }
        }
        Uplink::Localization(LocalizationPacket::ExternalPosition { x_m, y_m, z_m }) => {
            fw.receive_external_position(now_ns, [x_m, y_m, z_m].map(f64::from));
        }
        _ => {}
    }
    Ok(())
}

/// Settling time and overshoot of each step after the first point of a `Steps` trajectory.
fn step_responses(traj: &Trajectory, track: &[(f64, Vec3)]) -> Vec<StepResponse> {
    let Trajectory::Steps(points) = traj else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, w) in points.windows(2).enumerate() {
        let (from, to) = (&w[0], &w[1]);
        let delta = to.position_m - from.position_m;
        let size = delta.norm();
        if size <= 0.0 {
            continue;
        }
        let dir = delta * (1.0 / size);
        let end = points.get(i + 2).map_or(f64::INFINITY, |p| p.t_s);
        let window: Vec<&(f64, Vec3)> = track
            .iter()
            .filter(|(t, _)| *t >= to.t_s && *t < end)
            .collect();
        let tol = 0.05 * size;
        let last_outside = window
            .iter()
            .filter(|(_, p)| (*p - to.position_m).norm() > tol)
            .map(|(t, _)| *t)
            .fold(None, |acc: Option<f64>, t| {
                Some(acc.map_or(t, |a| a.max(t)))
            });
        let settled = match (last_outside, window.last()) {
            (_, None) => None,
            (None, Some(_)) => Some(0.0),
            (Some(t), Some((t_end, _))) if t < *t_end => Some(t - to.t_s),
            _ => None,
        };
        let overshoot = window
            .iter()
            .map(|(_, p)| (*p - to.position_m).dot(dir))
            .fold(0.0f64, f64::max);
        out.push(StepResponse {
            t_s: to.t_s,
            size_m: size,
            settling_time_s: settled,
            overshoot_pct: 100.0 * overshoot / size,
        });
    }
    out
}

/// Flies a scene with the controller it names.
pub fn fly(scene: &Scene, log: &mut dyn LogSink) -> Result<Summary, SimError> {
    run(
        scene,
        depthpilot_control::from_config(&scene.controller),
        log,
        &mut NoProbe,
    )
}

/// Convenience for tests: the setpoint function.
pub fn setpoint(scene: &Scene, t_s: f64) -> Setpoint {
    setpoint_at(&scene.setpoints, t_s)
}
