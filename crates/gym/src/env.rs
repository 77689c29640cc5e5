//! One environment: a simulated flight that advances one radio period per step.

use crate::spec::{ActionMode, Key, ObsSpec, Task, oracle_for};
use crate::{EnvError, ObsOut};
use depthpilot_crtp::RpytSetpoint;
use depthpilot_sim::NoProbe;
use depthpilot_sim::batch::{Randomisation, domain_seed, randomised_scene, varied_scene};
use depthpilot_sim::noise::{Noise, Stream};
use depthpilot_sim::offboard::{Decision, OffBoard, Outgoing};
use depthpilot_sim::plant::period_ns;
use depthpilot_sim::runner::SimWorld;
use depthpilot_sim::trajectory::setpoint_at;
use depthpilot_types::rig::Architecture;
use depthpilot_types::scene::{LinkTransport, Realism, Sensing, Trajectory};
use depthpilot_types::{Measurement, Rot, Scene, Vec3};
use std::collections::VecDeque;

/// Reward scale: the reward is `exp(-(e / REWARD_SCALE_M)²)` for a position error `e`.
pub const REWARD_SCALE_M: f64 = 0.3;
/// The reward of the step that ends an episode by a crash, a touch of the floor (airborne
/// tasks) or leaving the room.
pub const FAIL_REWARD: f64 = -10.0;
/// The episode ends when the quad is this far from its setpoint.
pub const MAX_ERROR_M: f64 = 2.0;
/// Below this height (body centre) an airborne task's quad touches the floor (it rests on it at
/// about 15 mm).
pub const FLOOR_Z_M: f64 = 0.05;
/// Where a Kinect task that starts in the air learns its background: the quad is put out of
/// view (behind the camera) for the learning frames, as one starts the vision before holding
/// the quad up.
const OUT_OF_VIEW_M: Vec3 = Vec3 {
    x: 0.0,
    y: 0.0,
    z: -10.0,
};

/// An environment's fixed set-up.
#[derive(Clone, Debug)]
pub struct EnvConfig {
    /// The scene as given (per-episode variations and the task's start are applied at reset).
    pub scene: Scene,
    pub task: Task,
    pub action: ActionMode,
    pub obs: ObsSpec,
}

impl EnvConfig {
    /// Checks that `scene` can be an environment and adapts it to the action mode (on-board
    /// architecture for position actions) and the observation (a Kinect scene whose keys need no
    /// camera is flown with the oracle in its place: nothing is rendered).
    pub fn new(
        mut scene: Scene,
        task: Task,
        action: ActionMode,
        obs: ObsSpec,
    ) -> Result<Self, EnvError> {
        if !scene.script.is_empty() {
            return Err(EnvError::BadInput(format!(
                "scene `{}` has a `script` (scripted radio packets): an environment's actions \
                 are the radio packets",
                scene.name
            )));
        }
        if scene.teacher.is_some() {
            return Err(EnvError::BadInput(format!(
                "scene `{}` has a `teacher`: an environment has no teacher/student mux",
                scene.name
            )));
        }
        if let LinkTransport::Remote(uri) = &scene.link.transport {
            return Err(EnvError::BadInput(format!(
                "scene `{}`: `link.transport` names a remote simulator ({uri}); environments fly \
                 in virtual time in this process",
                scene.name
            )));
        }
        scene.architecture = match action {
            ActionMode::Position => Architecture::Onboard,
            ActionMode::Rpyt | ActionMode::Residual => Architecture::Offboard,
        };
        if obs.needs_camera() {
            if matches!(scene.sensing, Sensing::Oracle(_)) {
                let keys: Vec<&str> = obs
                    .keys
                    .iter()
                    .filter(|k| k.needs_camera())
                    .map(|k| k.as_str())
                    .collect();
                return Err(EnvError::BadInput(format!(
                    "observation key(s) {} need the synthetic Kinect, but scene `{}` is sensed \
                     by the oracle: use a Kinect scene or obs=\"state\"",
                    keys.join(", "),
                    scene.name
                )));
            }
        } else if let Some(o) = oracle_for(&scene.sensing) {
            scene.sensing = o;
        }
        Ok(Self {
            scene,
            task,
            action,
            obs,
        })
    }

    /// The depth image's (rows, columns); (0, 0) without the depth key.
    pub fn depth_shape(&self) -> (usize, usize) {
        match (&self.scene.sensing, self.obs.has(Key::Depth)) {
            (Sensing::Kinect(_), true) => self.obs.depth_shape(
                depthpilot_vision::camera::WIDTH,
                depthpilot_vision::camera::HEIGHT,
            ),
            _ => (0, 0),
        }
    }

    /// Values per world of each key, in [`Key::ALL`] order (0 for keys not observed).
    pub fn lens(&self) -> [usize; 8] {
        let (r, c) = self.depth_shape();
        Key::ALL.map(|k| match (self.obs.has(k), k) {
            (false, _) => 0,
            (true, Key::Depth) => r * c,
            (true, k) => k.len(),
        })
    }

    /// Seconds of simulated time per step (one radio period).
    pub fn step_s(&self) -> f64 {
        period_ns(self.scene.link.rate_hz) as f64 * 1e-9
    }
}

/// Domain randomisation and start overrides for `reset`. They persist: a reset without options
/// (an autoreset) keeps the last ones given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResetOptions {
    /// Draw mass, extra camera latency, camera noise and battery from `tune --randomise`'s
    /// ranges (`depthpilot_sim::batch::Randomisation::BENCH`), per episode.
    pub randomise: bool,
    /// Multiplies the airframe's mass.
    pub mass_factor: Option<f64>,
    /// Added to the sensor's latency.
    pub latency_extra_s: Option<f64>,
    /// Multiplies the sensor's noise.
    pub noise_factor: Option<f64>,
    /// Battery rest voltage at the start (turns the battery model on).
    pub battery_start_v: Option<f64>,
    /// The realism layer, replacing the scene's.
    pub realism: Option<Realism>,
    /// Start here instead of the task's start.
    pub initial_position_m: Option<[f64; 3]>,
    /// Start in this attitude (roll, pitch, yaw in degrees) instead of the task's.
    pub initial_attitude_deg: Option<[f64; 3]>,
}

impl ResetOptions {
    /// Rejects values no flight could have, naming the option.
    pub fn validate(&self) -> Result<(), EnvError> {
        let check = |name: &str, v: Option<f64>, lo: f64, hi: f64| match v {
            Some(x) if !(x.is_finite() && (lo..=hi).contains(&x)) => Err(EnvError::BadInput(
                format!("reset option `{name}` = {x}: expected a number in [{lo}, {hi}]"),
            )),
            _ => Ok(()),
        };
        check("mass_factor", self.mass_factor, 0.5, 2.0)?;
        check("latency_extra_s", self.latency_extra_s, 0.0, 0.5)?;
        check("noise_factor", self.noise_factor, 0.0, 10.0)?;
        check("battery_start_v", self.battery_start_v, 3.0, 4.2)?;
        for (name, v) in [
            ("initial_position_m", self.initial_position_m),
            ("initial_attitude_deg", self.initial_attitude_deg),
        ] {
            if let Some(a) = v
                && a.iter().any(|x| !x.is_finite() || x.abs() > 1e3)
            {
                return Err(EnvError::BadInput(format!(
                    "reset option `{name}` = {a:?}: expected three finite numbers"
                )));
            }
        }
        Ok(())
    }
}

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Running,
    Crash,
    Floor,
    OutOfBounds,
    /// The scene's duration has passed (truncation).
    Time,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "",
            Self::Crash => "crash",
            Self::Floor => "floor",
            Self::OutOfBounds => "out_of_bounds",
            Self::Time => "time",
        }
    }
}

/// What one step gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOut {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub end: End,
    /// Distance from the setpoint after the step.
    pub error_m: f64,
    pub t_s: f64,
}

/// A depth frame on its way to the host.
struct InFlight {
    arrive_ns: u64,
    stamp_ns: u64,
    depth: Vec<u16>,
}

/// One environment.
pub struct Env {
    cfg: EnvConfig,
    flown: Scene,
    world: SimWorld,
    off: OffBoard,
    base_seed: u64,
    episode: u64,
    flight_seed: u64,
    options: ResetOptions,
    period_ns: u64,
    last_action: [f64; 4],
    last_packet: Vec<u8>,
    depth_shape: (usize, usize),
    depth: Vec<u16>,
    frame_stamp_ns: Option<u64>,
    frame_new: bool,
    last_shot_ns: Option<u64>,
    in_flight: VecDeque<InFlight>,
    vision: Option<Measurement>,
    arrived: Vec<Measurement>,
    outbox: Vec<Outgoing>,
    ended: End,
}

impl Env {
    /// An environment ready to step (episode 0 of the scene's seed); `reset` starts another.
    pub fn new(cfg: EnvConfig) -> Result<Self, EnvError> {
        let seed = cfg.scene.seed;
        let (world, off, flown) = build(&cfg, &ResetOptions::default(), seed)?;
        let depth_shape = cfg.depth_shape();
        Ok(Self {
            period_ns: period_ns(cfg.scene.link.rate_hz),
            depth: vec![0; depth_shape.0 * depth_shape.1],
            depth_shape,
            cfg,
            flown,
            world,
            off,
            base_seed: seed,
            episode: 0,
            flight_seed: seed,
            options: ResetOptions::default(),
            last_action: [0.0; 4],
            last_packet: Vec::new(),
            frame_stamp_ns: None,
            frame_new: false,
            last_shot_ns: None,
            in_flight: VecDeque::new(),
            vision: None,
            arrived: Vec::new(),
            outbox: Vec::new(),
            ended: End::Running,
        })
    }

    pub fn config(&self) -> &EnvConfig {
        &self.cfg
    }

    /// The scene of the current episode, as flown (variations, randomisation and start applied).
    pub fn scene(&self) -> &Scene {
        &self.flown
    }

    /// The seed of the current episode's flight: the reset's seed for the first episode after
    /// it, then one derived from it and the episode's index (`domain_seed(seed, k)`).
    pub fn flight_seed(&self) -> u64 {
        self.flight_seed
    }

    /// Episodes since the last reset with a seed.
    pub fn episode(&self) -> u64 {
        self.episode
    }

    /// Starts an episode. With a seed, the episode is the first of that seed; without, the next
    /// one. Options replace the previous ones; without, the previous ones stay.
    pub fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<ResetOptions>,
    ) -> Result<(), EnvError> {
        if let Some(o) = &options {
            o.validate()?;
        }
        let (base, episode) = match seed {
            Some(s) => (s, 0),
            None => (self.base_seed, self.episode + 1),
        };
        let opts = options.unwrap_or_else(|| self.options.clone());
        let flight_seed = episode_seed(base, episode);
        let (world, off, flown) = build(&self.cfg, &opts, flight_seed)?;
        self.base_seed = base;
        self.episode = episode;
        self.flight_seed = flight_seed;
        self.options = opts;
        self.world = world;
        self.off = off;
        self.flown = flown;
        self.last_action = [0.0; 4];
        self.last_packet.clear();
        self.depth.iter_mut().for_each(|d| *d = 0);
        self.frame_stamp_ns = None;
        self.frame_new = false;
        self.last_shot_ns = None;
        self.in_flight.clear();
        self.vision = None;
        self.ended = End::Running;
        Ok(())
    }

    /// Whether the episode has ended (a step now is an error until `reset`).
    pub fn ended(&self) -> bool {
        self.ended != End::Running
    }

    /// Checks an action: four finite numbers. (Out-of-range values are clamped by `step`.)
    pub fn check_action(action: &[f64]) -> Result<[f64; 4], EnvError> {
        let a: [f64; 4] = action.try_into().map_err(|_| {
            EnvError::BadInput(format!(
                "an action has 4 values, this one has {}",
                action.len()
            ))
        })?;
        if let Some(i) = a.iter().position(|x| !x.is_finite()) {
            return Err(EnvError::BadInput(format!(
                "action[{i}] is {}: actions must be finite (NaN and infinities are rejected, \
                 the environment is unchanged)",
                a[i]
            )));
        }
        Ok(a)
    }

    /// One radio period: the action goes out as CRTP bytes at its start, then the physics, the
    /// firmware and the sensing run to its end.
    pub fn step(&mut self, action: &[f64]) -> Result<StepOut, EnvError> {
        let a = Self::check_action(action)?;
        if self.ended() {
            return Err(EnvError::BadInput(
                "step() after the episode ended: call reset() first".into(),
            ));
        }
        let (lo, hi) = self.cfg.action.bounds();
        let a: [f64; 4] = std::array::from_fn(|i| a[i].clamp(lo[i], hi[i]));
        self.last_action = a;
        self.frame_new = false;
        let t0 = self.world.now_ns();
        let end_ns = t0 + self.period_ns;
        let mut tick = true;
        while self.world.now_ns() < end_ns && !self.world.finished() {
            let now = self.world.now_ns();
            let truth = *self.world.truth();
            self.sense(now, &truth);
            if tick {
                tick = false;
                if let Some(msg) = self.command(now, &a)
                    && self.world.link_up(now)
                {
                    self.world.send(now, &msg);
                    self.last_packet = msg
                        .to_uplink()
                        .to_packet()
                        .map(|p| p.encode())
                        .unwrap_or_default();
                }
            }
            self.world.receive();
            self.world.step(&mut NoProbe);
        }
        Ok(self.outcome())
    }

    /// Sensing at `now`: measurements to the pilot (and, on-board, to the radio), frames to the
    /// host after their latency.
    fn sense(&mut self, now: u64, truth: &depthpilot_sim::world::BodyState) {
        self.arrived.clear();
        self.off.sensing.sense(now, truth, &mut self.arrived);
        for m in &self.arrived {
            self.off.pilot.measure(now, m);
            self.vision = Some(*m);
        }
        self.outbox.extend(self.off.pilot.drain());
        for msg in self.outbox.drain(..) {
            self.world.send(now, &msg);
        }
        if self.depth_shape.0 > 0
            && let Some(k) = self.off.sensing.kinect()
            && let Some((stamp, arrive)) = k.last_shot()
            && self.last_shot_ns != Some(stamp)
        {
            self.last_shot_ns = Some(stamp);
            let f = k.frame();
            let s = self.cfg.obs.stride;
            let mut depth = Vec::with_capacity(self.depth.len());
            for row in f.depth_mm.chunks_exact(f.width).step_by(s) {
                depth.extend(row.iter().step_by(s));
            }
            self.in_flight.push_back(InFlight {
                arrive_ns: arrive,
                stamp_ns: stamp,
                depth,
            });
        }
        while self.in_flight.front().is_some_and(|f| f.arrive_ns <= now) {
            if let Some(f) = self.in_flight.pop_front() {
                self.depth = f.depth;
                self.frame_stamp_ns = Some(f.stamp_ns);
                self.frame_new = true;
            }
        }
    }

    /// The message of the control tick at `now` for action `a` (already clamped).
    fn command(&mut self, now: u64, a: &[f64; 4]) -> Option<Outgoing> {
        match self.cfg.action {
            ActionMode::Rpyt => {
                // The controller still runs (its estimate is an observation); its command is
                // not sent.
                let _ = self.off.pilot.tick_now(now);
                Some(Outgoing::Rpyt(packet_from_cflib(a)))
            }
            ActionMode::Residual => match self.off.pilot.tick_now(now) {
                Decision::Command(cmd) => {
                    let base = cflib_args(&RpytSetpoint::from_command(&cmd));
                    let sum: [f64; 4] = std::array::from_fn(|i| base[i] + a[i]);
                    Some(Outgoing::Rpyt(packet_from_cflib(&sum)))
                }
                Decision::Send(m) => m,
            },
            ActionMode::Position => {
                self.off.pilot.set_setpoints(Trajectory::Hover {
                    position_m: Vec3::new(a[0], a[1], a[2]),
                    yaw_deg: a[3],
                });
                match self.off.pilot.tick_now(now) {
                    Decision::Send(m) => m,
                    Decision::Command(_) => None,
                }
            }
        }
    }

    /// The scene's setpoint now (what the reward measures against).
    pub fn target(&self) -> Vec3 {
        setpoint_at(&self.flown.setpoints, self.world.now_ns() as f64 * 1e-9).pos_in_world_m
    }

    fn outcome(&mut self) -> StepOut {
        let truth = *self.world.truth();
        let error_m = (truth.pos_m - self.target()).norm();
        let end = if self.world.crash().is_some() {
            End::Crash
        } else if self.cfg.task.airborne() && truth.pos_m.z < FLOOR_Z_M {
            End::Floor
        } else if error_m > MAX_ERROR_M || !error_m.is_finite() {
            End::OutOfBounds
        } else if self.world.finished() {
            End::Time
        } else {
            End::Running
        };
        self.ended = end;
        let terminated = matches!(end, End::Crash | End::Floor | End::OutOfBounds);
        StepOut {
            reward: if terminated {
                FAIL_REWARD
            } else {
                (-(error_m / REWARD_SCALE_M).powi(2)).exp()
            },
            terminated,
            truncated: end == End::Time,
            end,
            error_m,
            t_s: self.world.now_ns() as f64 * 1e-9,
        }
    }

    /// The CRTP bytes (header included) the last step sent; empty when it sent none.
    pub fn last_packet(&self) -> &[u8] {
        &self.last_packet
    }

    /// Writes the observation of now into `out` (slices of the lengths `EnvConfig::lens`).
    pub fn write_obs(&self, out: ObsOut<'_>) {
        let now = self.world.now_ns();
        let now_s = now as f64 * 1e-9;
        let truth = self.world.truth();
        if !out.depth.is_empty() {
            out.depth.copy_from_slice(&self.depth);
        }
        if let Some(x) = out.frame_age.first_mut() {
            *x = match self.frame_stamp_ns {
                Some(s) => now.saturating_sub(s) as f64 * 1e-9,
                None => now_s,
            } as f32;
        }
        if let Some(x) = out.frame_new.first_mut() {
            *x = u8::from(self.frame_new);
        }
        if !out.vision.is_empty() {
            let v = match &self.vision {
                Some(m) => {
                    let p = m.pos_in_world_m;
                    let age = now.saturating_sub(m.stamp_ns) as f64 * 1e-9;
                    [1.0, p.x, p.y, p.z, age]
                }
                None => [0.0; 5],
            };
            fill(out.vision, &v);
        }
        if !out.estimate.is_empty() {
            let v = match self.off.controller().estimate(now) {
                Some(e) => {
                    let (p, v) = (e.pos_in_world_m, e.vel_in_world_m_s);
                    [1.0, p.x, p.y, p.z, v.x, v.y, v.z]
                }
                None => [0.0; 7],
            };
            fill(out.estimate, &v);
        }
        if !out.state.is_empty() {
            let q = quaternion(&truth.world_from_body);
            let (p, v, w) = (truth.pos_m, truth.vel_m_s, truth.body_rates_rad_s);
            fill(
                out.state,
                &[
                    p.x, p.y, p.z, v.x, v.y, v.z, q[0], q[1], q[2], q[3], w.x, w.y, w.z,
                ],
            );
        }
        if !out.target.is_empty() {
            let t = self.target();
            fill(out.target, &[t.x, t.y, t.z]);
        }
        if !out.last_action.is_empty() {
            fill(out.last_action, &self.last_action);
        }
    }
}

fn fill(out: &mut [f32], v: &[f64]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o = *x as f32;
    }
}

/// The flight seed of episode `k` after a reset with `seed`.
pub fn episode_seed(seed: u64, k: u64) -> u64 {
    if k == 0 { seed } else { domain_seed(seed, k) }
}

/// The legacy setpoint cflib's `send_setpoint(roll, pitch, yawrate, thrust)` sends: the
/// payload is `struct.pack('<fffH', roll, -pitch, yawrate, thrust)` (Python floats rounded to
/// f32, as `as f32` rounds), thrust rounded to an integer count within 0..=65535.
pub fn packet_from_cflib(a: &[f64; 4]) -> RpytSetpoint {
    RpytSetpoint {
        roll_deg: a[0] as f32,
        pitch_deg: -a[1] as f32,
        yaw_rate_deg_s: a[2] as f32,
        thrust: a[3].round().clamp(0.0, 65535.0) as u16,
    }
}

/// The `send_setpoint` arguments that give this packet.
pub fn cflib_args(p: &RpytSetpoint) -> [f64; 4] {
    [
        f64::from(p.roll_deg),
        -f64::from(p.pitch_deg),
        f64::from(p.yaw_rate_deg_s),
        f64::from(p.thrust),
    ]
}

/// Unit quaternion (w, x, y, z) of a rotation, with w ≥ 0 (one of the two signs, so that an
/// observation does not flip between them).
pub fn quaternion(r: &Rot) -> [f64; 4] {
    let q = r.to_quat();
    if q[0] < 0.0 { q.map(|x| -x) } else { q }
}

/// The scene of one episode and its world and off-board side.
fn build(
    cfg: &EnvConfig,
    opts: &ResetOptions,
    flight_seed: u64,
) -> Result<(SimWorld, OffBoard, Scene), EnvError> {
    let mut s = varied_scene(&cfg.scene, flight_seed);
    if let Some(r) = &opts.realism {
        s.realism = r.clone();
    }
    if opts.randomise {
        s = randomised_scene(
            &s,
            domain_seed(flight_seed, 0xD03A10),
            &Randomisation::BENCH,
        )
        .0;
    }
    if let Some(f) = opts.mass_factor {
        s.quad.mass_kg *= f;
    }
    let (lat, noise) = (opts.latency_extra_s, opts.noise_factor);
    match &mut s.sensing {
        Sensing::Oracle(o) => {
            o.latency_s += lat.unwrap_or(0.0);
            o.noise_m *= noise.unwrap_or(1.0);
            o.yaw_noise_deg *= noise.unwrap_or(1.0);
        }
        Sensing::Kinect(k) => {
            k.latency_s += lat.unwrap_or(0.0);
            k.noise_scale *= noise.unwrap_or(1.0);
        }
    }
    if let Some(v) = opts.battery_start_v {
        s.realism.battery = true;
        s.realism.battery_start_v = v;
    }
    let sp0 = setpoint_at(&s.setpoints, 0.0);
    match cfg.task {
        Task::Takeoff => {}
        Task::Hover | Task::Track => {
            s.quad.initial_position_m = sp0.pos_in_world_m;
            s.quad.initial_yaw_deg = sp0.yaw_rad.to_degrees();
        }
        Task::Recovery => {
            let mut n = Noise::new(flight_seed, Stream::Episode);
            let mut within = |half: f64| half * (2.0 * n.uniform() - 1.0);
            let (roll, pitch, yaw) = (within(150.0), within(150.0), within(180.0));
            s.quad.initial_position_m = Vec3::new(sp0.pos_in_world_m.x, sp0.pos_in_world_m.y, 1.5);
            s.quad.initial_attitude_deg = Vec3::new(roll, pitch, yaw);
        }
    }
    if let Some(p) = opts.initial_position_m {
        s.quad.initial_position_m = Vec3::new(p[0], p[1], p[2]);
    }
    if let Some(a) = opts.initial_attitude_deg {
        s.quad.initial_attitude_deg = Vec3::new(a[0], a[1], a[2]);
    }
    let mut world = SimWorld::new(&s);
    let controller = depthpilot_control::from_config(&s.controller);
    let mut off = OffBoard::new(&s, controller).map_err(|e| EnvError::Sim(e.to_string()))?;
    if cfg.task.airborne()
        && let Some(k) = off.sensing.kinect_mut()
    {
        // Learn the background with the quad out of view.
        for _ in 0..64 {
            let learning = k.stats.learning;
            let frame = k.render(0, OUT_OF_VIEW_M, &Rot::IDENTITY).clone();
            let _ = k.detect_frame(&frame);
            if k.stats.learning == learning {
                break;
            }
        }
    }
    if cfg.action != ActionMode::Position {
        // cfclient's thrust unlock on connect: one zero setpoint before the first action.
        world.send(0, &Outgoing::Rpyt(packet_from_cflib(&[0.0; 4])));
    }
    Ok((world, off, s))
}
