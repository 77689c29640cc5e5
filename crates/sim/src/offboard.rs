//! The off-board side of a flight, as the 2015 demo split it: sensing (oracle or synthetic
//! Kinect + vision), the controller, the teacher/student mux and the legacy setpoint packet the
//! radio sends. The inline runner drives it against the in-process plant; the real-time runner
//! drives it against a plant behind a link (`depthpilot sitl`, or a real Crazyflie in shadow).
//! Pure and deterministic: time comes in as `now_ns`, the truth as an argument.

use crate::kinect::{KinectSensor, VisionStats};
use crate::plant::period_ns;
use crate::runner::SimError;
use crate::sensor::OracleSensor;
use crate::trajectory::setpoint_at;
use crate::world::BodyState;
use depthpilot_control::{Controller, SafetyState};
use depthpilot_crtp::{GenericSetpoint, LocalizationPacket, RpytSetpoint, Uplink};
use depthpilot_mux::{InputFrame, Mux, MuxOutput, Source};
use depthpilot_types::rig::Architecture;
use depthpilot_types::scene::{Scene, ScriptEntry, ScriptPacket, Sensing, TeacherKey};
use depthpilot_types::{AttitudeCommand, Measurement, Rot, Setpoint, Vec3};

/// The sensing seam: the oracle or the synthetic Kinect with the vision stage.
pub(crate) enum SensorSource {
    Oracle(Box<OracleSensor>),
    Kinect(Box<KinectSensor>),
}

impl SensorSource {
    fn due(&self, now_ns: u64) -> bool {
        match self {
            Self::Oracle(s) => s.due(now_ns),
            Self::Kinect(k) => k.due(now_ns),
        }
    }
    fn capture(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot, yaw_rad: f64) {
        match self {
            Self::Oracle(s) => s.capture(now_ns, pos_m, yaw_rad),
            Self::Kinect(k) => k.capture(now_ns, pos_m, world_from_body),
        }
    }
    fn deliver(&mut self, now_ns: u64) -> Option<Measurement> {
        match self {
            Self::Oracle(s) => s.deliver(now_ns),
            Self::Kinect(k) => k.deliver(now_ns),
        }
    }
    pub(crate) fn frames(&self) -> u64 {
        match self {
            Self::Oracle(s) => s.captured,
            Self::Kinect(k) => k.stats.frames_rendered,
        }
    }
    pub(crate) fn last_frame_pixels(&self) -> Option<usize> {
        match self {
            Self::Oracle(_) => None,
            Self::Kinect(k) => k.last_frame_pixels,
        }
    }

    pub(crate) fn vision(&self) -> Option<VisionStats> {
        match self {
            Self::Oracle(_) => None,
            Self::Kinect(k) => Some(k.stats.clone()),
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

/// See the module doc.
pub struct OffBoard<'a> {
    pub controller: &'a mut dyn Controller,
    scene: &'a Scene,
    pub(crate) sensor: SensorSource,
    mux: Option<(Mux, &'a [TeacherKey])>,
    radio_period_ns: u64,
    next_radio_ns: u64,
    packets: u32,
    /// The controller's last command.
    pub cmd: AttitudeCommand,
    /// The setpoint of the last control tick.
    pub sp: Setpoint,
    /// With a teacher: the source of each axis at the last control tick.
    pub mux_sources: Option<[&'static str; 4]>,
    /// Measurements delivered to the controller.
    pub detections: u64,
    architecture: Architecture,
    script: &'a [ScriptEntry],
    /// External positions waiting for the radio (on-board control).
    outbox: Vec<Outgoing>,
    /// Where an on-board flight holds or lands when tracking is lost.
    onboard_hold_m: Vec3,
    last_tick_ns: Option<u64>,
    /// The teacher's script key whose parameters were last handed out.
    teacher_key: Option<usize>,
}

impl<'a> OffBoard<'a> {
    /// Sets up sensing and the mux for `scene` and tells the controller where the quad stands.
    pub fn new(scene: &'a Scene, controller: &'a mut dyn Controller) -> Result<Self, SimError> {
        let seed = scene.seed;
        let sensor = match &scene.sensing {
            Sensing::Oracle(o) => SensorSource::Oracle(Box::new(OracleSensor::new(o, seed))),
            Sensing::Kinect(k) => SensorSource::Kinect(Box::new(KinectSensor::new(
                k,
                &scene.world,
                scene.quad.arm_m,
                seed,
            )?)),
        };
        // The quad stands on its marked start spot: the controller may know that much.
        controller.place(
            0,
            scene.quad.initial_position_m,
            scene.quad.initial_yaw_deg.to_radians(),
        );
        Ok(Self {
            controller,
            scene,
            sensor,
            mux: scene
                .teacher
                .as_ref()
                .map(|t| (Mux::new(t.mux), t.script.as_slice())),
            radio_period_ns: period_ns(scene.link.rate_hz),
            next_radio_ns: 0,
            packets: 0,
            cmd: AttitudeCommand::ZERO,
            sp: setpoint_at(&scene.setpoints, 0.0),
            mux_sources: None,
            detections: 0,
            architecture: scene.architecture,
            script: &scene.script,
            outbox: Vec::new(),
            onboard_hold_m: scene.quad.initial_position_m,
            last_tick_ns: None,
            teacher_key: None,
        })
    }

    /// The firmware parameters the scripted teacher sets now: those of a script key that has
    /// just begun (empty otherwise). The runner writes them to the Crazyflie.
    pub fn teacher_params(&mut self, now_ns: u64) -> Vec<(String, f64)> {
        let Some((_, script)) = &self.mux else {
            return Vec::new();
        };
        let t_s = now_ns as f64 * 1e-9;
        let active = script.iter().rposition(|k| k.t_s <= t_s);
        if active == self.teacher_key {
            return Vec::new();
        }
        self.teacher_key = active;
        active.map_or_else(Vec::new, |i| script[i].params.clone())
    }

    /// True when the control tick ran at `now_ns` (whether or not it sent anything).
    pub fn ticked(&self, now_ns: u64) -> bool {
        self.last_tick_ns == Some(now_ns)
    }

    /// Messages queued by sensing (external positions in on-board control), oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Outgoing> {
        self.outbox.drain(..)
    }

    /// Captures a frame when one is due (of `truth`) and feeds what arrives to the controller.
    pub fn sense(&mut self, now_ns: u64, truth: &BodyState) {
        if self.sensor.due(now_ns) {
            let yaw = truth.world_from_body.rpy()[2];
            self.sensor
                .capture(now_ns, truth.pos_m, &truth.world_from_body, yaw);
        }
        while let Some(m) = self.sensor.deliver(now_ns) {
            self.detections += 1;
            self.controller.measure(now_ns, &m);
            if self.architecture == Architecture::Onboard {
                let p = m.pos_in_world_m;
                self.outbox.push(Outgoing::ExternalPosition([
                    p.x as f32, p.y as f32, p.z as f32,
                ]));
            }
        }
    }

    /// At the link rate: the message the radio sends now (None between ticks, or when a script
    /// says silence). `truth` is what the scripted teacher sees.
    pub fn control(&mut self, now_ns: u64, truth: &BodyState) -> Option<Outgoing> {
        if now_ns < self.next_radio_ns {
            return None;
        }
        let t_s = now_ns as f64 * 1e-9;
        self.next_radio_ns += self.radio_period_ns;
        self.last_tick_ns = Some(now_ns);
        self.sp = setpoint_at(&self.scene.setpoints, t_s);
        self.cmd = self.controller.command(now_ns, &self.sp);
        if !self.script.is_empty() {
            return scripted(self.script, t_s);
        }
        if self.architecture == Architecture::Onboard {
            return Some(self.onboard());
        }
        let mut packet = match self.mux.as_mut() {
            Some((m, script)) => {
                let teacher = teacher_frame(script, now_ns, t_s, truth.pos_m.z, truth.vel_m_s.z);
                let out = m.step(
                    now_ns,
                    teacher.as_ref(),
                    Some(&student_frame(now_ns, &self.cmd)),
                );
                self.mux_sources = Some(out.sources.map(Source::as_str));
                packet_of(&out)
            }
            None => RpytSetpoint::from_command(&self.cmd),
        };
        if self.packets < UNLOCK_PACKETS {
            packet = RpytSetpoint::from_command(&AttitudeCommand::ZERO);
        }
        self.packets += 1;
        Some(Outgoing::Rpyt(packet))
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

    pub fn frames(&self) -> u64 {
        self.sensor.frames()
    }

    pub fn vision(&self) -> Option<VisionStats> {
        self.sensor.vision()
    }

    /// Kinect only: pixels of the quad's blob in the newest frame.
    pub fn last_frame_pixels(&self) -> Option<usize> {
        self.sensor.last_frame_pixels()
    }
}
