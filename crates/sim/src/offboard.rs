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
use depthpilot_control::Controller;
use depthpilot_crtp::RpytSetpoint;
use depthpilot_mux::{InputFrame, Mux, MuxOutput, Source};
use depthpilot_types::scene::{Scene, Sensing, TeacherKey};
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

/// Zero-thrust packets the radio sends first, as cfclient does on connect (unlocks the thrust).
const UNLOCK_PACKETS: u32 = 5;

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
        })
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
        }
    }

    /// At the link rate: the packet the radio sends now (None between ticks). `truth` is what
    /// the scripted teacher sees.
    pub fn control(&mut self, now_ns: u64, truth: &BodyState) -> Option<RpytSetpoint> {
        if now_ns < self.next_radio_ns {
            return None;
        }
        let t_s = now_ns as f64 * 1e-9;
        self.next_radio_ns += self.radio_period_ns;
        self.sp = setpoint_at(&self.scene.setpoints, t_s);
        self.cmd = self.controller.command(now_ns, &self.sp);
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
        Some(packet)
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
