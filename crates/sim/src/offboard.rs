//! The off-board side of a flight, as the 2015 demo split it: sensing (oracle or synthetic
//! Kinect + vision), the controller, the teacher/student mux and the legacy setpoint packet the
//! radio sends. The inline runner drives it against the in-process plant; the real-time runner
//! drives it against a plant behind a link (`depthpilot sitl`, or a real Crazyflie in shadow).
//! Pure and deterministic: time comes in as `now_ns`, the truth as an argument.

use crate::faults::{BusDelay, Life, Lifeline};
use crate::kinect::{KinectSensor, VisionStats};
use crate::kinect_pipeline::KinectPipeline;
use crate::plant::period_ns;
use crate::runner::SimError;
use crate::sensor::OracleSensor;
use crate::trajectory::setpoint_at;
use crate::world::BodyState;
use depthpilot_control::{Controller, SafetyState};
use depthpilot_crtp::{GenericSetpoint, LocalizationPacket, RpytSetpoint, Uplink};
use depthpilot_mux::{InputFrame, Mux, MuxOutput, Source};
use depthpilot_types::rig::Architecture;
use depthpilot_types::scene::Sensing as SensingConfig;
use depthpilot_types::scene::{
    Faults, Peer, PeerDeath, Scene, ScriptEntry, ScriptPacket, TeacherKey, Trajectory,
};
use depthpilot_types::{AttitudeCommand, Measurement, Rot, Setpoint, Vec3};

/// A sensor to hold the place of one being moved between variants.
fn placeholder() -> SensorSource {
    SensorSource::Oracle(Box::new(OracleSensor::new(
        &depthpilot_types::scene::OracleConfig::default(),
        0,
    )))
}

/// The sensing seam: the oracle or the synthetic Kinect with the vision stage.
pub(crate) enum SensorSource {
    Oracle(Box<OracleSensor>),
    Kinect(Box<KinectSensor>),
    /// The synthetic Kinect on a worker thread (`Sensing::pipeline`).
    Pipelined(Box<KinectPipeline>),
}

impl SensorSource {
    fn due(&self, now_ns: u64) -> bool {
        match self {
            Self::Oracle(s) => s.due(now_ns),
            Self::Kinect(k) => k.due(now_ns),
            Self::Pipelined(k) => k.due(now_ns),
        }
    }
    fn capture(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot, yaw_rad: f64) {
        match self {
            Self::Oracle(s) => s.capture(now_ns, pos_m, yaw_rad),
            Self::Kinect(k) => k.capture(now_ns, pos_m, world_from_body),
            Self::Pipelined(k) => k.capture(now_ns, pos_m, world_from_body),
        }
    }
    fn deliver(&mut self, now_ns: u64) -> Option<Measurement> {
        match self {
            Self::Oracle(s) => s.deliver(now_ns),
            Self::Kinect(k) => k.deliver(now_ns),
            Self::Pipelined(k) => k.deliver(now_ns),
        }
    }
    fn skip(&mut self, now_ns: u64) {
        match self {
            Self::Oracle(s) => s.skip(),
            Self::Kinect(k) => k.skip_frame(now_ns),
            Self::Pipelined(k) => k.skip_frame(now_ns),
        }
    }
    fn lose_pipeline(&mut self) {
        match self {
            Self::Oracle(s) => s.lose_in_flight(),
            Self::Kinect(k) => k.lose_pipeline(),
            Self::Pipelined(k) => k.lose_pipeline(),
        }
    }
    fn restart(&mut self, relearn_background: bool) {
        match self {
            Self::Kinect(k) => k.restart_vision(relearn_background),
            Self::Pipelined(k) => k.restart_vision(relearn_background),
            Self::Oracle(_) => {}
        }
    }
    pub(crate) fn frames(&self) -> u64 {
        match self {
            Self::Oracle(s) => s.captured,
            Self::Kinect(k) => k.stats.frames_rendered,
            Self::Pipelined(k) => k.frames_rendered(),
        }
    }
    pub(crate) fn last_frame_pixels(&self) -> Option<usize> {
        match self {
            Self::Oracle(_) => None,
            Self::Kinect(k) => k.last_frame_pixels,
            Self::Pipelined(k) => k.last_frame_pixels(),
        }
    }

    pub(crate) fn vision(&self) -> Option<VisionStats> {
        match self {
            Self::Oracle(_) => None,
            Self::Kinect(k) => Some(k.stats.clone()),
            Self::Pipelined(k) => Some(k.stats().clone()),
        }
    }
}

/// The autopilot's command as a client input frame (degrees, deg/s, percent). The client's pitch
/// is the user's (positive = nose down) and its yaw rate is positive clockwise (the firmware
/// inverts legacy yaw rates), so yaw changes sign here.
fn student_frame(now_ns: u64, cmd: &AttitudeCommand) -> InputFrame {
    InputFrame {
        stamp_ns: now_ns,
        roll_deg: cmd.roll_rad.to_degrees(),
        pitch_deg: cmd.pitch_rad.to_degrees(),
        yaw_rate_deg_s: -cmd.yaw_rate_rad_s.to_degrees(),
        thrust_pct: cmd.thrust_frac * depthpilot_crtp::FULL_SCALE_THRUST / 650.0,
        estop: false,
        muxswitch: false,
        alt1: false,
        alt2: false,
    }
}

/// A person's height keeping by eye: thrust percent per metre of height error and per m/s of
/// climb rate.
const PILOT_KP_PCT_PER_M: f64 = 15.0;
const PILOT_KD_PCT_PER_M_S: f64 = 10.0;

/// The scripted teacher's frame at `t_s`, if the teacher is there. `height_m` and `climb_m_s`
/// are what the person sees.
fn teacher_frame(
    script: &[TeacherKey],
    now_ns: u64,
    t_s: f64,
    height_m: f64,
    climb_m_s: f64,
) -> Option<InputFrame> {
    let key = script.iter().rev().find(|k| k.t_s <= t_s)?;
    let thrust_pct = match key.hold_height_m {
        Some(target) => {
            key.thrust_pct + PILOT_KP_PCT_PER_M * (target - height_m)
                - PILOT_KD_PCT_PER_M_S * climb_m_s
        }
        None => key.thrust_pct,
    };
    key.present.then(|| InputFrame {
        stamp_ns: now_ns,
        roll_deg: key.roll_deg,
        pitch_deg: key.pitch_deg,
        yaw_rate_deg_s: key.yaw_rate_deg_s,
        thrust_pct: thrust_pct.clamp(0.0, 100.0),
        estop: key.estop,
        muxswitch: key.muxswitch,
        alt1: false,
        alt2: false,
    })
}

/// The mux output as the legacy packet (cflib's conventions: pitch negated on the wire, yaw rate
/// as the user gave it).
fn packet_of(o: &MuxOutput) -> RpytSetpoint {
    RpytSetpoint {
        roll_deg: o.roll_deg as f32,
        pitch_deg: -o.pitch_deg as f32,
        yaw_rate_deg_s: o.yaw_rate_deg_s as f32,
        thrust: o.thrust,
    }
}

/// The scripted message at `t_s` (each entry holds until the next; before the first: silence).
fn scripted(script: &[ScriptEntry], t_s: f64) -> Option<Outgoing> {
    let entry = script.iter().rev().find(|e| e.t_s <= t_s)?;
    match &entry.send {
        // cflib's send_setpoint: the pitch goes on the wire negated, the rest as given.
        ScriptPacket::Rpyt {
            roll_deg,
            pitch_deg,
            yaw_rate_deg_s,
            thrust,
        } => Some(Outgoing::Rpyt(RpytSetpoint {
            roll_deg: *roll_deg as f32,
            pitch_deg: -*pitch_deg as f32,
            yaw_rate_deg_s: *yaw_rate_deg_s as f32,
            thrust: *thrust,
        })),
        ScriptPacket::Position {
            position_m,
            yaw_deg,
        } => Some(Outgoing::Position {
            pos_in_world_m: [
                position_m.x as f32,
                position_m.y as f32,
                position_m.z as f32,
            ],
            yaw_deg: *yaw_deg as f32,
        }),
        ScriptPacket::Stop => Some(Outgoing::Stop),
        ScriptPacket::Silence => None,
    }
}

/// Zero-thrust packets the radio sends first, as cfclient does on connect (unlocks the thrust).
const UNLOCK_PACKETS: u32 = 5;

/// What the radio sends: one CRTP message each.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    /// Legacy roll / pitch / yaw-rate / thrust (off-board control).
    Rpyt(RpytSetpoint),
    /// Generic position setpoint (on-board control).
    Position {
        pos_in_world_m: [f32; 3],
        yaw_deg: f32,
    },
    /// The vision position for the on-board estimator.
    ExternalPosition([f32; 3]),
    /// Generic stop: motors off.
    Stop,
}

impl Outgoing {
    /// The CRTP message this is.
    pub fn to_uplink(&self) -> Uplink {
        match *self {
            Self::Rpyt(sp) => Uplink::Commander(sp),
            Self::Position {
                pos_in_world_m: [x, y, z],
                yaw_deg,
            } => Uplink::Generic(GenericSetpoint::Position {
                x_m: x,
                y_m: y,
                z_m: z,
                yaw_deg,
            }),
            Self::ExternalPosition([x, y, z]) => {
                Uplink::Localization(LocalizationPacket::ExternalPosition {
                    x_m: x,
                    y_m: y,
                    z_m: z,
                })
            }
            Self::Stop => Uplink::Generic(GenericSetpoint::Stop),
        }
    }
}

/// Descent rate of an on-board landing after tracking is lost.
const ONBOARD_LAND_M_S: f64 = 0.3;

/// The sensing part: the oracle, or the synthetic Kinect with the vision stage. The vision
/// actor wraps one.
pub struct Sensing {
    pub(crate) sensor: SensorSource,
    /// Measurements delivered.
    pub detections: u64,
    /// The vision's scripted deaths (`faults.peer_deaths`).
    life: Lifeline,
    /// The bus to the controller (`faults.bus_latency`).
    bus: BusDelay<Measurement>,
}

impl Sensing {
    pub fn new(scene: &Scene) -> Result<Self, SimError> {
        let seed = scene.seed;
        let sensor = match &scene.sensing {
            SensingConfig::Oracle(o) => SensorSource::Oracle(Box::new(OracleSensor::new(o, seed))),
            SensingConfig::Kinect(k) => SensorSource::Kinect(Box::new(KinectSensor::with_realism(
                k,
                &scene.world,
                scene.quad.arm_m,
                seed,
                &scene.realism,
            )?)),
        };
        Ok(Self {
            sensor,
            detections: 0,
            life: Lifeline::new(&scene.faults, Peer::Vision),
            bus: BusDelay::new(&scene.faults, seed),
        })
    }

    /// Captures a frame of `truth` when one is due and appends what arrives by `now_ns`.
    pub fn sense(&mut self, now_ns: u64, truth: &BodyState, out: &mut Vec<Measurement>) {
        if self.live(now_ns) {
            if self.sensor.due(now_ns) {
                let yaw = truth.world_from_body.rpy()[2];
                self.sensor
                    .capture(now_ns, truth.pos_m, &truth.world_from_body, yaw);
            }
            while let Some(m) = self.sensor.deliver(now_ns) {
                self.bus.push(now_ns, m);
            }
        }
        while let Some(m) = self.bus.pop_due(now_ns) {
            self.detections += 1;
            out.push(m);
        }
    }

    /// The vision's life at `now_ns` (call once per step): when it dies what was in its pipeline
    /// is lost; while dead the camera's frames go untaken; when it restarts it has a fresh
    /// detector. True when the vision works at this step.
    pub fn live(&mut self, now_ns: u64) -> bool {
        let life = self.life.at(now_ns);
        match life {
            Life::Died => self.sensor.lose_pipeline(),
            Life::Restarted { relearn_background } => self.sensor.restart(relearn_background),
            Life::Alive | Life::Dead => {}
        }
        if !life.alive() && self.sensor.due(now_ns) {
            self.sensor.skip(now_ns);
        }
        life.alive()
    }

    /// Scripted deaths of the vision so far.
    pub fn deaths(&self) -> u64 {
        self.life.died
    }

    /// Measurements the bus fault delayed.
    pub fn bus_delayed(&self) -> u64 {
        self.bus.delayed
    }

    pub fn frames(&self) -> u64 {
        self.sensor.frames()
    }

    /// The sensor was switched on at `now_ns` (a vision or bridge process that starts, or
    /// restarts, mid-flight): its first frame is then, not a burst of the ones since 0.
    pub fn start_at(&mut self, now_ns: u64) {
        match &mut self.sensor {
            SensorSource::Oracle(s) => s.start_at(now_ns),
            SensorSource::Kinect(k) => k.start_at(now_ns),
            SensorSource::Pipelined(k) => k.start_at(now_ns),
        }
    }

    pub fn vision(&self) -> Option<VisionStats> {
        self.sensor.vision()
    }

    /// Kinect only: pixels of the quad's blob in the newest frame.
    pub fn last_frame_pixels(&self) -> Option<usize> {
        self.sensor.last_frame_pixels()
    }

    /// A frame (or an oracle sample) is due at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        self.sensor.due(now_ns)
    }

    /// The synthetic Kinect, if this is one.
    /// (None while it is pipelined: see [`Sensing::pipeline`].)
    pub fn kinect(&self) -> Option<&KinectSensor> {
        match &self.sensor {
            SensorSource::Kinect(k) => Some(k),
            SensorSource::Oracle(_) | SensorSource::Pipelined(_) => None,
        }
    }

    /// Runs the synthetic Kinect's render and vision on a worker thread from now on (the
    /// flight stays bit-identical: [`crate::kinect_pipeline`]); what reads its state mid-flight
    /// ([`Sensing::vision`], [`Sensing::last_frame_pixels`]) sees it as of the newest frame the
    /// worker has finished. No change for the oracle, or if the thread cannot start.
    pub fn pipeline(&mut self) {
        if matches!(self.sensor, SensorSource::Kinect(_))
            && let SensorSource::Kinect(k) = std::mem::replace(&mut self.sensor, placeholder())
        {
            self.sensor = match KinectPipeline::start(*k) {
                Ok(p) => SensorSource::Pipelined(Box::new(p)),
                Err(k) => SensorSource::Kinect(k),
            };
        }
    }

    /// Takes the Kinect back from its worker thread (waits for its frames).
    pub fn unpipeline(&mut self) {
        if matches!(self.sensor, SensorSource::Pipelined(_))
            && let SensorSource::Pipelined(p) = std::mem::replace(&mut self.sensor, placeholder())
        {
            self.sensor = SensorSource::Kinect(Box::new(p.finish()));
        }
    }

    /// The synthetic Kinect, if this is one (the real-time vision actor renders and detects in
    /// separate steps).
    pub fn kinect_mut(&mut self) -> Option<&mut KinectSensor> {
        self.unpipeline();
        match &mut self.sensor {
            SensorSource::Kinect(k) => Some(k),
            SensorSource::Oracle(_) | SensorSource::Pipelined(_) => None,
        }
    }
}

/// What the pilot decided at a control tick.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Send this (a script or on-board control; None: silence).
    Send(Option<Outgoing>),
    /// The autopilot's command: through the mux when there is a teacher, then the radio.
    Command(AttitudeCommand),
}

/// The controller side: the controller, the setpoints, the script and the architecture. The
/// controller actor wraps one.
pub struct Pilot {
    pub controller: Box<dyn Controller + Send>,
    setpoints: Trajectory,
    script: Vec<ScriptEntry>,
    architecture: Architecture,
    radio_period_ns: u64,
    next_radio_ns: u64,
    /// The controller's last command.
    pub cmd: AttitudeCommand,
    /// The setpoint of the last control tick.
    pub sp: Setpoint,
    /// External positions waiting for the radio (on-board control).
    outbox: Vec<Outgoing>,
    /// Where an on-board flight holds or lands when tracking is lost.
    onboard_hold_m: Vec3,
    last_tick_ns: Option<u64>,
}

impl Pilot {
    /// Tells the controller where the quad stands (its marked start spot).
    pub fn new(scene: &Scene, mut controller: Box<dyn Controller + Send>) -> Self {
        controller.place(
            0,
            scene.quad.initial_position_m,
            scene.quad.initial_yaw_deg.to_radians(),
        );
        Self {
            controller,
            setpoints: scene.setpoints.clone(),
            script: scene.script.clone(),
            architecture: scene.architecture,
            radio_period_ns: period_ns(scene.link.rate_hz),
            next_radio_ns: 0,
            cmd: AttitudeCommand::ZERO,
            sp: setpoint_at(&scene.setpoints, 0.0),
            outbox: Vec::new(),
            onboard_hold_m: scene.quad.initial_position_m,
            last_tick_ns: None,
        }
    }

    /// A measurement arrived (in on-board control it also goes to the quad as an external
    /// position).
    pub fn measure(&mut self, now_ns: u64, m: &Measurement) {
        self.controller.measure(now_ns, m);
        if self.architecture == Architecture::Onboard {
            let p = m.pos_in_world_m;
            self.outbox.push(Outgoing::ExternalPosition([
                p.x as f32, p.y as f32, p.z as f32,
            ]));
        }
    }

    /// Messages queued by measurements (external positions in on-board control), oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Outgoing> {
        self.outbox.drain(..)
    }

    /// True when the control tick ran at `now_ns`.
    pub fn ticked(&self, now_ns: u64) -> bool {
        self.last_tick_ns == Some(now_ns)
    }

    /// The control tick, at the link rate (None between ticks).
    pub fn tick(&mut self, now_ns: u64) -> Option<Decision> {
        if now_ns < self.next_radio_ns {
            return None;
        }
        self.next_radio_ns += self.radio_period_ns;
        Some(self.tick_now(now_ns))
    }

    /// A control tick now, whether or not one is due (real time: control on each measurement);
    /// the next periodic tick comes one period later.
    pub fn tick_now(&mut self, now_ns: u64) -> Decision {
        if now_ns >= self.next_radio_ns {
            self.next_radio_ns = now_ns + self.radio_period_ns;
        }
        let t_s = now_ns as f64 * 1e-9;
        self.last_tick_ns = Some(now_ns);
        self.sp = setpoint_at(&self.setpoints, t_s);
        self.cmd = self.controller.command(now_ns, &self.sp);
        if !self.script.is_empty() {
            return Decision::Send(scripted(&self.script, t_s));
        }
        if self.architecture == Architecture::Onboard {
            return Decision::Send(Some(self.onboard()));
        }
        Decision::Command(self.cmd)
    }

    /// Replaces the setpoint trajectory (the set-point input of the 2015 demo).
    pub fn set_setpoints(&mut self, setpoints: Trajectory) {
        self.setpoints = setpoints;
    }

    /// On-board control: the setpoint while the vision tracks (or before it first sees the quad:
    /// the firmware's estimator starts from its own sensors); when tracking is lost, hold where
    /// it was, then descend, then stop the motors — the same safety sequence as off-board.
    fn onboard(&mut self) -> Outgoing {
        let period_s = self.radio_period_ns as f64 * 1e-9;
        let yaw_deg = self.sp.yaw_rad.to_degrees() as f32;
        let target = match self.controller.safety() {
            SafetyState::Idle | SafetyState::Acquiring | SafetyState::Tracking => {
                self.onboard_hold_m = self.sp.pos_in_world_m;
                self.onboard_hold_m
            }
            SafetyState::Holding => self.onboard_hold_m,
            SafetyState::Landing => {
                self.onboard_hold_m.z =
                    (self.onboard_hold_m.z - ONBOARD_LAND_M_S * period_s).max(0.0);
                if self.onboard_hold_m.z <= 0.0 {
                    return Outgoing::Stop;
                }
                self.onboard_hold_m
            }
            SafetyState::Landed | SafetyState::Cut => return Outgoing::Stop,
        };
        Outgoing::Position {
            pos_in_world_m: [target.x as f32, target.y as f32, target.z as f32],
            yaw_deg,
        }
    }
}

/// The scripted teacher (a person at the gamepad, as a script). The teacher actor wraps one.
pub struct Teacher {
    script: Vec<TeacherKey>,
    /// The script key whose parameters were last handed out.
    key: Option<usize>,
    /// When the input device is dead (`faults.peer_deaths` of the teacher).
    deaths: Vec<PeerDeath>,
}

impl Teacher {
    pub fn new(script: Vec<TeacherKey>, faults: &Faults) -> Self {
        Self {
            script,
            key: None,
            deaths: faults
                .peer_deaths
                .iter()
                .filter(|d| d.peer == Peer::Teacher)
                .cloned()
                .collect(),
        }
    }

    /// The teacher's input frame at `now_ns` (None: not there, or the input device is dead).
    /// `truth` is what the person sees.
    pub fn frame(&self, now_ns: u64, truth: &BodyState) -> Option<InputFrame> {
        let t_s = now_ns as f64 * 1e-9;
        if self.deaths.iter().any(|d| d.dead(t_s)) {
            return None;
        }
        teacher_frame(
            &self.script,
            now_ns,
            now_ns as f64 * 1e-9,
            truth.pos_m.z,
            truth.vel_m_s.z,
        )
    }

    /// The firmware parameters the teacher sets now: those of a key that has just begun (empty
    /// otherwise).
    pub fn params(&mut self, now_ns: u64) -> Vec<(String, f64)> {
        let t_s = now_ns as f64 * 1e-9;
        let active = self.script.iter().rposition(|k| k.t_s <= t_s);
        if active == self.key {
            return Vec::new();
        }
        self.key = active;
        active.map_or_else(Vec::new, |i| self.script[i].params.clone())
    }
}

/// The radio's framing of attitude commands: zero thrust for the first packets (cfclient's
/// thrust unlock on connect), then what comes.
#[derive(Clone, Debug, Default)]
pub struct Unlock {
    packets: u32,
}

impl Unlock {
    pub fn frame(&mut self, packet: RpytSetpoint) -> Outgoing {
        let packet = if self.packets < UNLOCK_PACKETS {
            RpytSetpoint::from_command(&AttitudeCommand::ZERO)
        } else {
            packet
        };
        self.packets += 1;
        Outgoing::Rpyt(packet)
    }
}

/// The mux step of one tick: the teacher's frame and the autopilot's command → the packet, and
/// who flies each axis.
pub fn mux_step(
    mux: &mut Mux,
    now_ns: u64,
    teacher: Option<&InputFrame>,
    cmd: &AttitudeCommand,
) -> (RpytSetpoint, [&'static str; 4]) {
    let out = mux.step(now_ns, teacher, Some(&student_frame(now_ns, cmd)));
    (packet_of(&out), out.sources.map(Source::as_str))
}

/// The off-board side in one piece (sensing, pilot, teacher + mux, radio framing), called in
/// the order the inline runner and the lockstep actors both follow.
pub struct OffBoard {
    pub sensing: Sensing,
    pub pilot: Pilot,
    teacher: Option<(Mux, Teacher)>,
    /// A live teacher (gamepad, ZMQ) in place of the scene's script: its newest frame.
    live_teacher: Option<Option<InputFrame>>,
    unlock: Unlock,
    /// With a teacher: the source of each axis at the last control tick.
    pub mux_sources: Option<[&'static str; 4]>,
    arrived: Vec<Measurement>,
}

impl OffBoard {
    /// Sets up sensing and the mux for `scene` and tells the controller where the quad stands.
    pub fn new(scene: &Scene, controller: Box<dyn Controller + Send>) -> Result<Self, SimError> {
        Ok(Self {
            sensing: Sensing::new(scene)?,
            pilot: Pilot::new(scene, controller),
            teacher: scene.teacher.as_ref().map(|t| {
                (
                    Mux::new(t.mux),
                    Teacher::new(t.script.clone(), &scene.faults),
                )
            }),
            live_teacher: None,
            unlock: Unlock::default(),
            mux_sources: None,
            arrived: Vec::new(),
        })
    }

    pub fn controller(&self) -> &dyn Controller {
        self.pilot.controller.as_ref()
    }

    /// The firmware parameters the scripted teacher sets now.
    pub fn teacher_params(&mut self, now_ns: u64) -> Vec<(String, f64)> {
        match &mut self.teacher {
            Some((_, t)) => t.params(now_ns),
            None => Vec::new(),
        }
    }

    /// True when the control tick ran at `now_ns`.
    pub fn ticked(&self, now_ns: u64) -> bool {
        self.pilot.ticked(now_ns)
    }

    /// Messages queued by sensing (external positions in on-board control), oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Outgoing> {
        self.pilot.drain()
    }

    /// Captures a frame when one is due (of `truth`) and feeds what arrives to the controller.
    /// Runs the synthetic Kinect on a worker thread ([`Sensing::pipeline`]).
    pub fn pipeline_sensing(&mut self) {
        self.sensing.pipeline();
    }

    /// Takes the synthetic Kinect back from its worker thread ([`Sensing::unpipeline`]).
    pub fn unpipeline_sensing(&mut self) {
        self.sensing.unpipeline();
    }

    pub fn sense(&mut self, now_ns: u64, truth: &BodyState) {
        self.arrived.clear();
        self.sensing.sense(now_ns, truth, &mut self.arrived);
        for m in &self.arrived {
            self.pilot.measure(now_ns, m);
        }
    }

    /// Measurements from elsewhere (a Kinect bridge) arrived at `now_ns`.
    pub fn measured(&mut self, now_ns: u64, measurements: &[Measurement]) {
        for m in measurements {
            self.pilot.measure(now_ns, m);
        }
    }

    /// A live teacher (a person at a gamepad or a ZMQ sender) instead of the scene's script,
    /// through a mux configured as `mux`; its frames come with [`OffBoard::teacher_frame`].
    pub fn live_teacher(&mut self, mux: depthpilot_types::scene::MuxConfig) {
        self.teacher = Some((Mux::new(mux), Teacher::new(Vec::new(), &Faults::default())));
        self.live_teacher = Some(None);
    }

    /// The live teacher's newest frame (None: none yet). The mux decides whether it is fresh.
    pub fn teacher_frame(&mut self, frame: Option<InputFrame>) {
        if let Some(f) = &mut self.live_teacher {
            *f = frame;
        }
    }

    /// At the link rate: the message the radio sends now (None between ticks, or when a script
    /// says silence). `truth` is what the scripted teacher sees.
    pub fn control(&mut self, now_ns: u64, truth: &BodyState) -> Option<Outgoing> {
        match self.pilot.tick(now_ns)? {
            Decision::Send(msg) => msg,
            Decision::Command(cmd) => {
                let packet = match &mut self.teacher {
                    Some((mux, teacher)) => {
                        let frame = match self.live_teacher {
                            Some(live) => live,
                            None => teacher.frame(now_ns, truth),
                        };
                        let (packet, sources) = mux_step(mux, now_ns, frame.as_ref(), &cmd);
                        self.mux_sources = Some(sources);
                        packet
                    }
                    None => RpytSetpoint::from_command(&cmd),
                };
                Some(self.unlock.frame(packet))
            }
        }
    }

    pub fn cmd(&self) -> AttitudeCommand {
        self.pilot.cmd
    }

    pub fn sp(&self) -> Setpoint {
        self.pilot.sp
    }

    pub fn detections(&self) -> u64 {
        self.sensing.detections
    }

    pub fn frames(&self) -> u64 {
        self.sensing.frames()
    }

    pub fn vision(&self) -> Option<VisionStats> {
        self.sensing.vision()
    }

    /// Kinect only: pixels of the quad's blob in the newest frame.
    pub fn last_frame_pixels(&self) -> Option<usize> {
        self.sensing.last_frame_pixels()
    }
}
