//! The actors of a flight (DESIGN §2): each wraps one pure component and does only messaging.
//!
//! ```text
//!  world ──truth──► vision ──measurements──► controller ──command──► mux ──packet──► radio ──► world
//!    ▲                                           ▲                   ▲ teacher
//!    └──────── clock (lockstep or real time) ────┴── recorder ◄── rows
//! ```
//!
//! The clock ([`crate::clock`]) drives one physics step at a time and awaits each actor's reply,
//! so a lockstep flight is the same sequence of calls as the inline runner, bit for bit.

use crate::radio_actor::Radio;
use actix::prelude::*;
use depthpilot_control::{Controller, Estimate, SafetyState};
use depthpilot_crtp::RpytSetpoint;
use depthpilot_mux::{InputFrame, Mux};
use depthpilot_sim::faults::BusDelay;
use depthpilot_sim::kinect::VisionStats;
use depthpilot_sim::offboard::{Decision, Outgoing, Pilot, Sensing, Teacher, Unlock, mux_step};
use depthpilot_sim::runner::{OffBoardReport, SimWorld};
use depthpilot_sim::world::BodyState;
use depthpilot_sim::{LogRow, LogSink, NoProbe, SimError, Summary};
use depthpilot_types::{AttitudeCommand, Measurement, Scene, Setpoint};
use depthpilot_vision::DepthFrame;
use std::collections::VecDeque;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// World: the plant and the simulated link.

/// The simulated world: plant, firmware model, simulated radio link.
pub struct WorldActor {
    world: SimWorld,
}

impl WorldActor {
    pub fn new(scene: &Scene) -> Self {
        Self {
            world: SimWorld::new(scene),
        }
    }
}

impl Actor for WorldActor {
    type Context = Context<Self>;
}

/// The world's state before the next step.
#[derive(Clone, Copy, Debug)]
pub struct WorldNow {
    pub now_ns: u64,
    pub truth: BodyState,
    pub finished: bool,
}

/// After one step.
#[derive(Clone, Copy, Debug)]
pub struct WorldStepped {
    pub after_ns: u64,
    pub log_due: bool,
    pub truth: BodyState,
    pub motors_pwm: [u16; 4],
    pub firmware: &'static str,
    pub finished: bool,
}

#[derive(Message)]
#[rtype(result = "WorldNow")]
pub struct GetNow;

impl Handler<GetNow> for WorldActor {
    type Result = MessageResult<GetNow>;
    fn handle(&mut self, _: GetNow, _: &mut Context<Self>) -> Self::Result {
        MessageResult(WorldNow {
            now_ns: self.world.now_ns(),
            truth: *self.world.truth(),
            finished: self.world.finished(),
        })
    }
}

/// A CRTP message the radio puts on the simulated link.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Uplink {
    pub now_ns: u64,
    pub msg: Outgoing,
}

impl Handler<Uplink> for WorldActor {
    type Result = ();
    fn handle(&mut self, m: Uplink, _: &mut Context<Self>) {
        self.world.send(m.now_ns, &m.msg);
    }
}

/// A parameter write over the link.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetParam {
    pub now_ns: u64,
    pub name: String,
    pub value: f64,
}

impl Handler<SetParam> for WorldActor {
    type Result = ();
    fn handle(&mut self, m: SetParam, _: &mut Context<Self>) {
        self.world.set_param(m.now_ns, &m.name, m.value);
    }
}

/// Deliver what the link carries, then one physics step.
#[derive(Message)]
#[rtype(result = "WorldStepped")]
pub struct Step;

impl Handler<Step> for WorldActor {
    type Result = MessageResult<Step>;
    fn handle(&mut self, _: Step, _: &mut Context<Self>) -> Self::Result {
        self.world.receive();
        let (after_ns, log_due) = self.world.step(&mut NoProbe);
        MessageResult(WorldStepped {
            after_ns,
            log_due,
            truth: *self.world.truth(),
            motors_pwm: self.world.motor_cmd(),
            firmware: self.world.firmware_state(),
            finished: self.world.finished(),
        })
    }
}

/// The flight's summary, with the off-board side's part.
#[derive(Message)]
#[rtype(result = "Summary")]
pub struct Finish {
    pub scene: Box<Scene>,
    pub off: OffBoardReport,
}

impl Handler<Finish> for WorldActor {
    type Result = MessageResult<Finish>;
    fn handle(&mut self, m: Finish, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.world.summary(&m.scene, m.off))
    }
}

// ---------------------------------------------------------------------------------------------
// Vision: the depth source and the detector.

/// The depth source and the vision stage (synthetic Kinect or oracle).
pub struct VisionActor {
    sensing: Sensing,
    /// Real time: frames on their way to the host and measurements on the bus.
    realtime: RealtimeSensing,
    out: Vec<Measurement>,
}

impl VisionActor {
    pub fn new(scene: &Scene) -> Result<Self, SimError> {
        Ok(Self {
            sensing: Sensing::new(scene)?,
            realtime: RealtimeSensing::new(scene),
            out: Vec::new(),
        })
    }
}

impl Actor for VisionActor {
    type Context = Context<Self>;
}

/// Lockstep: capture when due, return what arrives by `now_ns`.
#[derive(Message)]
#[rtype(result = "Vec<Measurement>")]
pub struct Sense {
    pub now_ns: u64,
    pub truth: BodyState,
}

impl Handler<Sense> for VisionActor {
    type Result = MessageResult<Sense>;
    fn handle(&mut self, m: Sense, _: &mut Context<Self>) -> Self::Result {
        self.out.clear();
        self.sensing.sense(m.now_ns, &m.truth, &mut self.out);
        MessageResult(std::mem::take(&mut self.out))
    }
}

/// A measurement and the wall-clock instant its frame reached the host.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    pub m: Measurement,
    pub frame_available: Instant,
}

/// Real time: render when due; run the vision on each frame when it reaches the host (after
/// the camera's latency), not at capture.
#[derive(Message)]
#[rtype(result = "Vec<Timed>")]
pub struct SenseRealtime {
    pub now_ns: u64,
    pub truth: BodyState,
}

impl Handler<SenseRealtime> for VisionActor {
    type Result = MessageResult<SenseRealtime>;
    fn handle(&mut self, m: SenseRealtime, _: &mut Context<Self>) -> Self::Result {
        MessageResult(sense_realtime(
            &mut self.sensing,
            &mut self.realtime,
            m.now_ns,
            &m.truth,
        ))
    }
}

/// The real-time state of a vision: rendered frames on their way to the host (due time,
/// frame), and measurements on the bus to the controller (`faults.bus_latency`).
pub struct RealtimeSensing {
    in_transit: VecDeque<(u64, DepthFrame)>,
    bus: BusDelay<Timed>,
}

impl RealtimeSensing {
    pub fn new(scene: &Scene) -> Self {
        Self {
            in_transit: VecDeque::new(),
            bus: BusDelay::new(&scene.faults, scene.seed),
        }
    }
}

/// The real-time sensing step (also used by the vision role of a split run): render when due,
/// run the vision on each frame when it reaches the host, send the measurement over the bus.
/// A dead vision (`faults.peer_deaths`) loses the frames in its pipeline.
pub fn sense_realtime(
    sensing: &mut Sensing,
    rt: &mut RealtimeSensing,
    now_ns: u64,
    truth: &BodyState,
) -> Vec<Timed> {
    if sensing.kinect_mut().is_none() {
        let mut out = Vec::new();
        sensing.sense(now_ns, truth, &mut out);
        let now = Instant::now();
        return out
            .into_iter()
            .map(|m| Timed {
                m,
                frame_available: now,
            })
            .collect();
    }
    if sensing.live(now_ns) {
        if sensing.due(now_ns) {
            let k = sensing.kinect_mut().expect("kinect");
            if let Some(f) = k.capture_frame(now_ns, truth.pos_m, &truth.world_from_body) {
                rt.in_transit.push_back(f);
            }
        }
        while let Some(i) = rt.in_transit.iter().position(|(due, _)| *due <= now_ns) {
            let (_, frame) = rt.in_transit.remove(i).expect("index");
            let frame_available = Instant::now();
            let k = sensing.kinect_mut().expect("kinect");
            if let Some(m) = k.detect_frame(&frame) {
                rt.bus.push(now_ns, Timed { m, frame_available });
            }
        }
    } else {
        rt.in_transit.clear();
    }
    let mut timed = Vec::new();
    while let Some(t) = rt.bus.pop_due(now_ns) {
        sensing.detections += 1;
        timed.push(t);
    }
    timed
}

/// The camera half of the real-time sensing step, for a fake bridge: render when due; the
/// frames that reach the host by `now_ns` (their stamps are the capture times). Kinect only.
pub fn sense_realtime_frames(
    sensing: &mut Sensing,
    rt: &mut RealtimeSensing,
    now_ns: u64,
    truth: &BodyState,
) -> Vec<(u64, DepthFrame)> {
    if sensing.due(now_ns)
        && let Some(k) = sensing.kinect_mut()
        && let Some(f) = k.capture_frame(now_ns, truth.pos_m, &truth.world_from_body)
    {
        rt.in_transit.push_back(f);
    }
    let mut out = Vec::new();
    while let Some(i) = rt.in_transit.iter().position(|(due, _)| *due <= now_ns) {
        let (_, frame) = rt.in_transit.remove(i).expect("index");
        out.push((frame.stamp_ns, frame));
    }
    out
}

/// Counters for the summary.
#[derive(Clone, Debug)]
pub struct VisionReport {
    pub frames: u64,
    pub detections: u64,
    pub vision: Option<VisionStats>,
    pub last_frame_pixels: Option<usize>,
}

#[derive(Message)]
#[rtype(result = "VisionReport")]
pub struct ReportVision;

impl Handler<ReportVision> for VisionActor {
    type Result = MessageResult<ReportVision>;
    fn handle(&mut self, _: ReportVision, _: &mut Context<Self>) -> Self::Result {
        MessageResult(VisionReport {
            frames: self.sensing.frames(),
            detections: self.sensing.detections,
            vision: self.sensing.vision(),
            last_frame_pixels: self.sensing.last_frame_pixels(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Controller.

/// The controller, the setpoints and the flight architecture.
pub struct ControllerActor {
    pilot: Pilot,
}

impl ControllerActor {
    pub fn new(scene: &Scene, controller: Box<dyn Controller + Send>) -> Self {
        Self {
            pilot: Pilot::new(scene, controller),
        }
    }
}

impl Actor for ControllerActor {
    type Context = Context<Self>;
}

/// Measurements arrived; returns what they make the radio send (external positions in on-board
/// control).
#[derive(Message)]
#[rtype(result = "Vec<Outgoing>")]
pub struct Measure {
    pub now_ns: u64,
    pub measurements: Vec<Measurement>,
}

impl Handler<Measure> for ControllerActor {
    type Result = MessageResult<Measure>;
    fn handle(&mut self, m: Measure, _: &mut Context<Self>) -> Self::Result {
        for x in &m.measurements {
            self.pilot.measure(m.now_ns, x);
        }
        MessageResult(self.pilot.drain().collect())
    }
}

/// The periodic control tick (None between ticks); `now: true` ticks whether due or not.
#[derive(Message)]
#[rtype(result = "Option<Decision>")]
pub struct Tick {
    pub now_ns: u64,
    pub now: bool,
}

impl Handler<Tick> for ControllerActor {
    type Result = MessageResult<Tick>;
    fn handle(&mut self, m: Tick, _: &mut Context<Self>) -> Self::Result {
        MessageResult(if m.now {
            Some(self.pilot.tick_now(m.now_ns))
        } else {
            self.pilot.tick(m.now_ns)
        })
    }
}

/// New setpoints from outside (the 2015 set-point UI): hold this point from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retarget(pub depthpilot_types::scene::Trajectory);

impl Handler<Retarget> for ControllerActor {
    type Result = ();
    fn handle(&mut self, m: Retarget, _: &mut Context<Self>) {
        self.pilot.set_setpoints(m.0);
    }
}

/// The controller's state for logs and metrics.
#[derive(Clone, Copy, Debug)]
pub struct PilotState {
    pub name: &'static str,
    pub estimate: Option<Estimate>,
    pub safety: SafetyState,
    pub sp: Setpoint,
    pub cmd: AttitudeCommand,
}

/// The state with the estimate predicted to `now_ns`.
#[derive(Message)]
#[rtype(result = "PilotState")]
pub struct GetPilot {
    pub now_ns: u64,
}

impl Handler<GetPilot> for ControllerActor {
    type Result = MessageResult<GetPilot>;
    fn handle(&mut self, m: GetPilot, _: &mut Context<Self>) -> Self::Result {
        let c = &self.pilot.controller;
        MessageResult(PilotState {
            name: c.name(),
            estimate: c.estimate(m.now_ns),
            safety: c.safety(),
            sp: self.pilot.sp,
            cmd: self.pilot.cmd,
        })
    }
}

/// The loops' terms at the last command (for the PID visualisation output).
#[derive(Message)]
#[rtype(result = "Vec<depthpilot_control::PidTerms>")]
pub struct GetPidTerms;

impl Handler<GetPidTerms> for ControllerActor {
    type Result = MessageResult<GetPidTerms>;
    fn handle(&mut self, _: GetPidTerms, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.pilot.controller.pid_terms())
    }
}

// ---------------------------------------------------------------------------------------------
// Teacher and mux.

/// The scripted teacher.
pub struct TeacherActor {
    teacher: Teacher,
}

impl TeacherActor {
    pub fn new(teacher: Teacher) -> Self {
        Self { teacher }
    }
}

impl Actor for TeacherActor {
    type Context = Context<Self>;
}

/// The teacher's frame now (None: not at the controls) and the parameters a key that has just
/// begun sets.
#[derive(Message)]
#[rtype(result = "TeacherOut")]
pub struct TeacherInput {
    pub now_ns: u64,
    pub truth: BodyState,
    pub frame: bool,
}

pub struct TeacherOut {
    pub frame: Option<InputFrame>,
    pub params: Vec<(String, f64)>,
}

impl Handler<TeacherInput> for TeacherActor {
    type Result = MessageResult<TeacherInput>;
    fn handle(&mut self, m: TeacherInput, _: &mut Context<Self>) -> Self::Result {
        let frame = if m.frame {
            self.teacher.frame(m.now_ns, &m.truth)
        } else {
            None
        };
        MessageResult(TeacherOut {
            frame,
            params: self.teacher.params(m.now_ns),
        })
    }
}

/// The teacher/student mux.
pub struct MuxActor {
    mux: Mux,
}

impl MuxActor {
    pub fn new(mux: Mux) -> Self {
        Self { mux }
    }
}

impl Actor for MuxActor {
    type Context = Context<Self>;
}

/// One mux step: the teacher's frame and the autopilot's command.
#[derive(Message)]
#[rtype(result = "(RpytSetpoint, [&'static str; 4])")]
pub struct MuxStep {
    pub now_ns: u64,
    pub teacher: Option<InputFrame>,
    pub cmd: AttitudeCommand,
}

impl Handler<MuxStep> for MuxActor {
    type Result = MessageResult<MuxStep>;
    fn handle(&mut self, m: MuxStep, _: &mut Context<Self>) -> Self::Result {
        MessageResult(mux_step(
            &mut self.mux,
            m.now_ns,
            m.teacher.as_ref(),
            &m.cmd,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Radio (to the simulated link).

/// The radio in front of the simulated link: frames attitude packets (thrust unlock), forwards
/// every message to the world, and measures the loop's latency (frame available → sent).
pub struct SimRadioActor {
    unlock: Unlock,
    world: Addr<WorldActor>,
    /// Shadow: a Crazyflie behind a real link that receives every message too.
    shadow: Option<Radio>,
    /// Real time: microseconds from a frame reaching the host to the setpoint it produced
    /// being handed to the link.
    pub latencies_us: Vec<f64>,
}

impl SimRadioActor {
    pub fn new(world: Addr<WorldActor>, shadow: Option<Radio>) -> Self {
        Self {
            unlock: Unlock::default(),
            world,
            shadow,
            latencies_us: Vec::new(),
        }
    }
}

impl Actor for SimRadioActor {
    type Context = Context<Self>;
}

/// What the radio is asked to send.
#[derive(Clone, Debug)]
pub enum RadioPacket {
    /// An attitude packet (subject to the thrust unlock).
    Attitude(RpytSetpoint),
    /// Any other message, as is.
    Raw(Outgoing),
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Transmit {
    pub now_ns: u64,
    pub packet: RadioPacket,
    /// Real time: when the frame this setpoint answers reached the host.
    pub frame_available: Option<Instant>,
}

impl Handler<Transmit> for SimRadioActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, m: Transmit, _: &mut Context<Self>) -> Self::Result {
        let msg = match m.packet {
            RadioPacket::Attitude(p) => self.unlock.frame(p),
            RadioPacket::Raw(o) => o,
        };
        if let Some(shadow) = &self.shadow {
            shadow.send(crate::remote::command_of(msg.clone()));
        }
        let world = self.world.clone();
        let sent = world.send(Uplink {
            now_ns: m.now_ns,
            msg,
        });
        if let Some(t) = m.frame_available {
            self.latencies_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Box::pin(async move {
            let _ = sent.await;
        })
    }
}

#[derive(Message)]
#[rtype(result = "Vec<f64>")]
pub struct TakeLatencies;

/// Shadow: the link's counters (None without a shadow).
#[derive(Message)]
#[rtype(result = "Option<crate::radio_actor::RadioStats>")]
pub struct ShadowStats;

impl Handler<ShadowStats> for SimRadioActor {
    type Result = MessageResult<ShadowStats>;
    fn handle(&mut self, _: ShadowStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.shadow.as_ref().map(Radio::stats))
    }
}

impl Handler<TakeLatencies> for SimRadioActor {
    type Result = MessageResult<TakeLatencies>;
    fn handle(&mut self, _: TakeLatencies, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::mem::take(&mut self.latencies_us))
    }
}

// ---------------------------------------------------------------------------------------------
// Recorder.

/// Writes log rows to a sink (JSON Lines, MCAP, memory).
pub struct RecorderActor<L: LogSink + Send + Unpin + 'static> {
    log: Option<L>,
}

impl<L: LogSink + Send + Unpin + 'static> RecorderActor<L> {
    pub fn new(log: L) -> Self {
        Self { log: Some(log) }
    }
}

impl<L: LogSink + Send + Unpin + 'static> Actor for RecorderActor<L> {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Row(pub LogRow);

impl<L: LogSink + Send + Unpin + 'static> Handler<Row> for RecorderActor<L> {
    type Result = ();
    fn handle(&mut self, m: Row, _: &mut Context<Self>) {
        if let Some(l) = &mut self.log {
            l.row(&m.0);
        }
    }
}

/// Hands the sink back (after every row before it was written).
pub struct TakeLog<L>(std::marker::PhantomData<L>);

impl<L> Default for TakeLog<L> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<L: Send + 'static> Message for TakeLog<L> {
    type Result = Option<L>;
}

impl<L: LogSink + Send + Unpin + 'static> Handler<TakeLog<L>> for RecorderActor<L> {
    type Result = MessageResult<TakeLog<L>>;
    fn handle(&mut self, _: TakeLog<L>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.log.take())
    }
}
