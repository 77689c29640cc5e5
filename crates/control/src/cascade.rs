//! The default controller: position → velocity → acceleration → attitude + collective thrust,
//! with trajectory feed-forward, hover feed-forward through the identified thrust map, tilt
//! compensation, integrators with conditional anti-windup, output limits, and a supervisor that
//! holds, lands and cuts when measurements stop.
//!
//! ```text
//!  sp.pos ─►(+)─► kp ─► clamp ─►(+)─► kv + ki∫ ─►(+)─► +g ─► tilt limit ─► roll, pitch (yaw frame)
//!            ▲ est.pos           ▲ est.vel        ▲ sp.acc               └► |f|·m ─► thrust map ─► thrust
//! ```

use crate::{Controller, Estimate, Estimator, GRAVITY_M_S2, PidTerms, ThrustMap};
use depthpilot_types::math::wrap_pi;
use depthpilot_types::scene::CascadeGains;
use depthpilot_types::{AttitudeCommand, Measurement, Setpoint, Vec3};
use serde::Serialize;

/// What the loss-of-tracking supervisor is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SafetyState {
    /// No measurement yet: motors off (this is also the thrust-unlock packet).
    Idle,
    /// Placed at a known spot, no measurement yet: flying on the prediction (a blind take-off
    /// into the camera's view), landing if nothing is seen within a few seconds.
    Acquiring,
    /// Fresh measurements: closed-loop control.
    Tracking,
    /// Fresh measurements, the setpoint is on the floor and so is the quad: motors off.
    Landed,
    /// Measurements stale: brake to a stop on the prediction, wait for them to return.
    Holding,
    /// Stale for long: level, descend open-loop at a gentle rate.
    Landing,
    /// Landed (or gave up): motors off until reset.
    Cut,
}

impl SafetyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Acquiring => "acquiring",
            Self::Tracking => "tracking",
            Self::Landed => "landed",
            Self::Holding => "holding",
            Self::Landing => "landing",
            Self::Cut => "cut",
        }
    }
}

/// A placed quad may fly blind this long waiting for its first measurement, then it lands.
const ACQUIRE_FOR_NS: u64 = 3_000_000_000;
/// Measurements older than this (by arrival) make the controller hold.
const HOLD_AFTER_NS: u64 = 250_000_000;
/// ... and land after this.
const LAND_AFTER_NS: u64 = 1_500_000_000;
/// Blind landing: descent speed, the time to reach it, and how far below the resting height
/// the profile goes before the motors are cut.
const LAND_DESCENT_M_S: f64 = 0.3;
const LAND_RAMP_S: f64 = 1.0;
/// The sink phase starts when the profile is this far above the resting height, lasts this
/// long, and ends at this fraction of the hover thrust.
const LAND_SINK_ABOVE_M: f64 = 0.10;
const LAND_SINK_S: f64 = 3.0;
const LAND_SINK_TO_HOVER: f64 = 0.5;
/// Landing by setpoint: a setpoint below this height above the resting height means "land"; the
/// motors stop once the estimate is within `FLOOR_CONTACT_M` of the floor and slower than
/// `FLOOR_SPEED_M_S` vertically.
const FLOOR_SETPOINT_M: f64 = 0.02;
const FLOOR_CONTACT_M: f64 = 0.04;
const FLOOR_SPEED_M_S: f64 = 0.3;
/// Height of the centre of mass of a CF2.x resting on the floor.
const RESTING_HEIGHT_M: f64 = 0.015;
/// Vertical rotor drag of a CF2.x at hover rotor speeds (Förster; `reference/sim_vision.md`
/// §1.4): 10.311e-7 kg/rad × 4 × 1862 rad/s.
const ROTOR_DRAG_Z_KG_S: f64 = 0.00768;
/// Holding brakes on the prediction (see [`Cascade::hold_setpoint`]): the tilt it may use, and
/// the speed at which it may close on the stopping point. Braking from the cascade's 1.5 m/s at
/// this tilt (2.6 m/s²) takes 0.43 m; from a step's 0.6–0.9 m/s, 0.07–0.16 m.
const HOLD_MAX_TILT_DEG: f64 = 15.0;
const HOLD_MAX_VEL_M_S: f64 = 0.3;
/// The tracking loop's horizontal aggressiveness (tilt, horizontal speed) follows the measurement
/// rate: with measurements at least this often (the Kinect's 30 Hz with a drop or two) it uses
/// the gains' limits ...
const FULL_RATE_INTERVAL_S: f64 = 0.07;
/// ... with them this far apart (4 Hz: a rate collapse, a run of drops, the first after a gap)
/// the hold's, and in between, in proportion. The interval is the longest recent one, which
/// fades with `INTERVAL_MEMORY_S` (so the quad resumes a step gently after a gap, and stays
/// gentle through a collapse whose frames come in bursts).
const SLOW_RATE_INTERVAL_S: f64 = 0.25;
const INTERVAL_MEMORY_S: f64 = 1.0;
/// Fresh measurements needed in a row to resume tracking from landing.
const RESUME_AFTER: u32 = 3;
/// Minimum thrust while flying, as a fraction of hover, so attitude control keeps authority.
const MIN_THRUST_OF_HOVER: f64 = 0.3;
/// Integrators run while the position error is below this ...
const INTEGRATE_WITHIN_M: f64 = 0.1;
/// ... or while the quad moves slower than this.
const STEADY_BELOW_M_S: f64 = 0.05;
/// Firmware thrust cap (raw 60000 of 65535).
const MAX_THRUST_FRAC: f64 = 60000.0 / 65535.0;
/// Blind take-off: a quad still unseen this long after it was placed is heavier (or its motors
/// weaker) than the model says, and its prediction runs ahead of it. A quad of the model's mass
/// is first seen 0.31–0.54 s after placement in every bundled Kinect scene, 0.57–0.64 s under
/// `realism: Bench` (the camera's background learning and its 0.5 m minimum range; the mass
/// sweep is in the README's robust tuning section), so this never acts on a quad of the
/// model's mass: their flights are what they were before it.
const BLIND_GRACE_S: f64 = 0.8;
/// ... from then on, the model's vertical specific force is at least g (the quad is lower than
/// predicted: it must not be asked to descend), and the collective thrust grows by this
/// fraction of itself per second of blindness (a mass correction) ...
const BLIND_BOOST_PER_S: f64 = 1.0;
/// ... up to this. Published CF2.x masses span 25–34 g (×0.93–×1.26 of the 27 g model; see
/// `depthpilot_sim::batch::Randomisation::BENCH`): +40 % covers the heaviest with a margin for
/// a tired battery. When the quad is first seen, the correction becomes the height integrator's
/// starting value, so the thrust does not step down under a heavy quad.
const BLIND_BOOST_MAX: f64 = 0.4;

/// See the module doc.
pub struct Cascade {
    gains: CascadeGains,
    map: ThrustMap,
    est: Estimator,
    integral: Vec3,
    last_cmd_ns: Option<u64>,
    last_arrival_ns: Option<u64>,
    fresh_in_row: u32,
    state: SafetyState,
    landing: Option<Landing>,
    /// When the quad was placed at a known spot (blind take-off allowed until a measurement).
    placed_ns: Option<u64>,
    /// The commanded acceleration passed through the vehicle's response lag.
    acc_response: Vec3,
    /// Blind take-off's mass correction: extra collective thrust, as a fraction of what the
    /// model asks for (see `BLIND_GRACE_S`). Zero outside `Acquiring`.
    blind_boost: f64,
    /// The loops' terms at the last tracking command.
    terms: Vec<PidTerms>,
    /// While holding: where the quad brakes to (fixed when the hold began).
    hold: Option<Setpoint>,
    /// The longest recent interval between measurement arrivals, s, and when it was taken (it
    /// fades over `INTERVAL_MEMORY_S`).
    slow_interval: (f64, u64),
}

#[derive(Clone, Copy, Debug)]
struct Landing {
    start_ns: u64,
    /// Height of the centre of mass when the landing began (estimate, predicted to then).
    start_height_m: f64,
}

/// The closed loop's limits: the gains' own while tracking, tighter while holding.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_tilt_deg: f64,
    max_vel_xy_m_s: f64,
    max_vel_z_m_s: f64,
    /// Integrate the velocity error (not while flying on the prediction alone).
    integrate: bool,
}

impl Landing {
    /// The open-loop descent profile at `t` s into the landing: (vertical velocity, vertical
    /// acceleration). The speed ramps up to `LAND_DESCENT_M_S` over `LAND_RAMP_S`.
    fn profile(&self, t: f64) -> (f64, f64) {
        let v = LAND_DESCENT_M_S;
        if t < LAND_RAMP_S {
            let a = v / LAND_RAMP_S;
            (-a * t, -a)
        } else {
            (-v, 0.0)
        }
    }

    /// When the profile reaches `LAND_SINK_ABOVE_M` above the resting height.
    fn sink_start_s(&self) -> f64 {
        let v = LAND_DESCENT_M_S;
        let drop = (self.start_height_m - RESTING_HEIGHT_M - LAND_SINK_ABOVE_M).max(0.0);
        let ramp_drop = 0.5 * v * LAND_RAMP_S;
        if drop <= ramp_drop {
            (2.0 * drop / (v / LAND_RAMP_S)).sqrt()
        } else {
            LAND_RAMP_S + (drop - ramp_drop) / v
        }
    }
}

impl Cascade {
    pub fn new(gains: CascadeGains) -> Self {
        let est = Estimator::new(gains.est_accel_sigma_m_s2, gains.est_meas_sigma_m);
        Self {
            gains,
            // The default firmware build's compensated law (see `thrust`).
            map: ThrustMap::CF21_COMPENSATED,
            est,
            integral: Vec3::ZERO,
            last_cmd_ns: None,
            last_arrival_ns: None,
            fresh_in_row: 0,
            state: SafetyState::Idle,
            landing: None,
            placed_ns: None,
            acc_response: Vec3::ZERO,
            blind_boost: 0.0,
            terms: Vec::new(),
            hold: None,
            slow_interval: (0.0, 0),
        }
    }

    /// Feeds the estimator the acceleration the vehicle is expected to have, given what was
    /// commanded (first-order response lag).
    fn feed_estimator(&mut self, now_ns: u64, dt: f64, acc_cmd: Vec3) {
        let tau = self.gains.est_response_tau_s;
        let alpha = if tau > 0.0 {
            1.0 - (-dt / tau).exp()
        } else {
            1.0
        };
        self.acc_response += (acc_cmd - self.acc_response) * alpha;
        self.est.input(now_ns, self.acc_response);
    }

    /// Thrust for a vertical acceleration while level, using the learnt z integral.
    fn level_thrust(&self, acc_z: f64) -> f64 {
        let i_z = self.gains.vel_ki_z * self.integral.z;
        let f = self.gains.mass_kg * (GRAVITY_M_S2 + acc_z + i_z);
        self.map
            .frac_for_collective(f.max(0.0))
            .min(MAX_THRUST_FRAC)
    }

    fn update_safety(&mut self, now_ns: u64) {
        if self.state == SafetyState::Acquiring {
            if self.last_arrival_ns.is_some() {
                self.hand_blind_boost_to_integrator();
                self.state = SafetyState::Tracking;
            } else if self
                .placed_ns
                .is_some_and(|t| now_ns.saturating_sub(t) > ACQUIRE_FOR_NS)
            {
                // Never seen: the correction ends with the take-off (it is not handed on).
                self.blind_boost = 0.0;
                self.start_landing(now_ns);
                self.state = SafetyState::Landing;
                return;
            } else {
                return;
            }
        }
        let age = match self.last_arrival_ns {
            None => {
                self.state = SafetyState::Idle;
                return;
            }
            Some(t) => now_ns.saturating_sub(t),
        };
        self.state = match self.state {
            SafetyState::Cut => SafetyState::Cut,
            SafetyState::Acquiring => SafetyState::Acquiring,
            SafetyState::Idle
            | SafetyState::Tracking
            | SafetyState::Landed
            | SafetyState::Holding => {
                if age > LAND_AFTER_NS {
                    self.start_landing(now_ns);
                    SafetyState::Landing
                } else if age > HOLD_AFTER_NS {
                    SafetyState::Holding
                } else {
                    SafetyState::Tracking
                }
            }
            SafetyState::Landing => {
                if self.fresh_in_row >= RESUME_AFTER && age <= HOLD_AFTER_NS {
                    self.landing = None;
                    SafetyState::Tracking
                } else if let Some(l) = self.landing {
                    let t = now_ns.saturating_sub(l.start_ns) as f64 * 1e-9;
                    // Cut at the end of the sink phase: the quad is down.
                    if t > l.sink_start_s() + LAND_SINK_S {
                        SafetyState::Cut
                    } else {
                        SafetyState::Landing
                    }
                } else {
                    SafetyState::Cut
                }
            }
        };
    }

    /// The blind take-off's mass correction for `now_ns`: none within `BLIND_GRACE_S` of the
    /// placement, then growing at `BLIND_BOOST_PER_S` up to `BLIND_BOOST_MAX`.
    fn update_blind_boost(&mut self, now_ns: u64) {
        let blind_s = self
            .placed_ns
            .map_or(0.0, |t| now_ns.saturating_sub(t) as f64 * 1e-9);
        self.blind_boost =
            (BLIND_BOOST_PER_S * (blind_s - BLIND_GRACE_S)).clamp(0.0, BLIND_BOOST_MAX);
    }

    /// First measurement after a blind take-off: the mass correction the take-off needed
    /// becomes the height integrator's value (m·(1 + b)·g = m·(g + ki·i) → i = b·g/ki), so the
    /// thrust carries on and the integrator refines it.
    fn hand_blind_boost_to_integrator(&mut self) {
        let b = std::mem::take(&mut self.blind_boost);
        let ki = self.gains.vel_ki_z;
        if b > 0.0 && ki > 0.0 {
            let limit = self.gains.i_limit_m_s2 / ki;
            self.integral.z = (self.integral.z + b * GRAVITY_M_S2 / ki).clamp(-limit, limit);
        }
    }

    fn start_landing(&mut self, now_ns: u64) {
        // The last fused measurement, not a prediction: by now the prediction has run open-loop
        // for over a second and may have drifted far.
        let height_m = self
            .est
            .last_fused()
            .map(|e| e.pos_in_world_m.z)
            .filter(|z| z.is_finite())
            .unwrap_or(2.0)
            .clamp(0.0, 10.0);
        self.landing = Some(Landing {
            start_ns: now_ns,
            start_height_m: height_m,
        });
        self.fresh_in_row = 0;
    }

    fn tracking_command(&mut self, now_ns: u64, dt: f64, sp: &Setpoint) -> AttitudeCommand {
        let c = self.sensing_confidence(now_ns);
        let g = &self.gains;
        let mix = |slow: f64, full: f64| slow.min(full) + (full - slow.min(full)) * c;
        let limits = Limits {
            max_tilt_deg: mix(HOLD_MAX_TILT_DEG, g.max_tilt_deg),
            max_vel_xy_m_s: mix(HOLD_MAX_VEL_M_S, g.max_vel_xy_m_s),
            // Not the height: climbing and sinking barely move the quad across the image, the
            // camera measures depth well, and a quad that sank during a gap must climb back.
            max_vel_z_m_s: g.max_vel_z_m_s,
            integrate: true,
        };
        self.closed_loop_command(now_ns, dt, sp, limits)
    }

    /// 1 with measurements at the camera's rate, 0 with them 4 Hz apart or worse (recently, or
    /// since the last one), linear in between: see `FULL_RATE_INTERVAL_S`.
    fn sensing_confidence(&self, now_ns: u64) -> f64 {
        let Some(last) = self.last_arrival_ns else {
            return 1.0;
        };
        let since = now_ns.saturating_sub(last) as f64 * 1e-9;
        let interval = since.max(self.faded_interval(now_ns));
        let c = (SLOW_RATE_INTERVAL_S - interval) / (SLOW_RATE_INTERVAL_S - FULL_RATE_INTERVAL_S);
        c.clamp(0.0, 1.0)
    }

    /// The longest recent arrival interval, faded linearly to nothing over `INTERVAL_MEMORY_S`.
    fn faded_interval(&self, now_ns: u64) -> f64 {
        let (interval, at_ns) = self.slow_interval;
        let age = now_ns.saturating_sub(at_ns) as f64 * 1e-9;
        interval * (1.0 - age / INTERVAL_MEMORY_S).max(0.0)
    }

    /// Where a hold brakes to: the predicted stopping point, decelerating from the predicted
    /// velocity at what the hold's tilt gives (g·tan 15°, vertically too). The estimator is fed
    /// every command, so its prediction knows the quad is braking: holding does
    /// not coast on the velocity it had when the measurements stopped (as "level at hover
    /// thrust" did), and the quad stays near where the camera last saw it, inside the vision's
    /// gate.
    fn hold_setpoint(&self, now_ns: u64, sp: &Setpoint) -> Option<Setpoint> {
        let est = self.est.estimate(now_ns)?;
        let (p, v) = (est.pos_in_world_m, est.vel_in_world_m_s);
        if !p.is_finite() || !v.is_finite() {
            return None;
        }
        let brake = GRAVITY_M_S2 * HOLD_MAX_TILT_DEG.to_radians().tan();
        let stop = p + v * (v.norm() / (2.0 * brake));
        let yaw = if sp.yaw_rad.is_finite() {
            sp.yaw_rad
        } else {
            est.yaw_rad.unwrap_or(0.0)
        };
        Some(Setpoint::hold(stop, yaw))
    }

    /// Holding: the closed loop on the prediction towards the hold's stopping point, gently
    /// (the hold's tilt and speed limits, integrators frozen); level at hover thrust if there is
    /// no usable prediction.
    fn holding_command(&mut self, now_ns: u64, dt: f64, sp: &Setpoint) -> AttitudeCommand {
        if self.hold.is_none() {
            self.hold = self.hold_setpoint(now_ns, sp);
        }
        let Some(hold) = self.hold else {
            let cmd = self.hold_command();
            self.feed_estimator(now_ns, dt, Vec3::ZERO);
            return cmd;
        };
        let limits = Limits {
            max_tilt_deg: HOLD_MAX_TILT_DEG.min(self.gains.max_tilt_deg),
            max_vel_xy_m_s: HOLD_MAX_VEL_M_S.min(self.gains.max_vel_xy_m_s),
            max_vel_z_m_s: HOLD_MAX_VEL_M_S.min(self.gains.max_vel_z_m_s),
            integrate: false,
        };
        self.closed_loop_command(now_ns, dt, &hold, limits)
    }

    fn closed_loop_command(
        &mut self,
        now_ns: u64,
        dt: f64,
        sp: &Setpoint,
        limits: Limits,
    ) -> AttitudeCommand {
        let Some(est) = self.est.estimate(now_ns) else {
            return AttitudeCommand::ZERO;
        };
        let g = self.gains.clone();
        let sp_ok = sp.pos_in_world_m.is_finite()
            && sp.vel_in_world_m_s.is_finite()
            && sp.acc_in_world_m_s2.is_finite();
        // A broken setpoint means: hold where we are.
        let (sp_pos, sp_vel, sp_acc) = if sp_ok {
            (sp.pos_in_world_m, sp.vel_in_world_m_s, sp.acc_in_world_m_s2)
        } else {
            (est.pos_in_world_m, Vec3::ZERO, Vec3::ZERO)
        };
        let e_pos = sp_pos - est.pos_in_world_m;
        let v_des = (sp_vel
            + Vec3::new(
                g.pos_kp_xy * e_pos.x,
                g.pos_kp_xy * e_pos.y,
                g.pos_kp_z * e_pos.z,
            ))
        .clamp_xy_norm(limits.max_vel_xy_m_s);
        let v_des = Vec3::new(
            v_des.x,
            v_des.y,
            v_des.z.clamp(-limits.max_vel_z_m_s, limits.max_vel_z_m_s),
        );
        let e_vel = v_des - est.vel_in_world_m_s;
        let ki = Vec3::new(g.vel_ki_xy, g.vel_ki_xy, g.vel_ki_z);
        let i_term = |i: Vec3| Vec3::new(ki.x * i.x, ki.y * i.y, ki.z * i.z);
        let p_term = Vec3::new(
            g.vel_kp_xy * e_vel.x,
            g.vel_kp_xy * e_vel.y,
            g.vel_kp_z * e_vel.z,
        );
        let i_now = i_term(self.integral);
        let acc_unsat = sp_acc + p_term + i_now;
        // As a PID on the position: P acts on the (limited) position error, D on the velocity
        // error against the trajectory's velocity, I is the velocity integral; OUT is the
        // acceleration asked for (with the trajectory's feed-forward acceleration).
        let kv = Vec3::new(g.vel_kp_xy, g.vel_kp_xy, g.vel_kp_z);
        let axis =
            |name, k: f64, p_lim: f64, sp_v: f64, v: f64, i: f64, e: f64, sp: f64, out| PidTerms {
                name,
                p: k * (p_lim - sp_v),
                i,
                d: k * (sp_v - v),
                e,
                sp,
                out,
            };
        let v = est.vel_in_world_m_s;
        self.terms = vec![
            axis(
                "x",
                kv.x,
                v_des.x,
                sp_vel.x,
                v.x,
                i_now.x,
                e_pos.x,
                sp_pos.x,
                acc_unsat.x,
            ),
            axis(
                "y",
                kv.y,
                v_des.y,
                sp_vel.y,
                v.y,
                i_now.y,
                e_pos.y,
                sp_pos.y,
                acc_unsat.y,
            ),
            axis(
                "z",
                kv.z,
                v_des.z,
                sp_vel.z,
                v.z,
                i_now.z,
                e_pos.z,
                sp_pos.z,
                acc_unsat.z,
            ),
        ];

        let max_tilt = limits.max_tilt_deg.to_radians();
        let m = g.mass_kg;
        // Desired specific force (thrust per mass) in the world frame.
        let mut f = acc_unsat + Vec3::new(0.0, 0.0, GRAVITY_M_S2);
        if self.blind_boost > 0.0 {
            // A blind quad that should have been seen by now is lower than predicted: never
            // ask it to descend (the prediction would slow a climb that never happened).
            f.z = f.z.max(GRAVITY_M_S2);
        }
        let f_z_min = MIN_THRUST_OF_HOVER * GRAVITY_M_S2;
        let max_thrust_n = 4.0 * self.map.thrust_n(MAX_THRUST_FRAC * 65535.0);
        let f_z_max = max_thrust_n / m;
        let mut saturated_z = false;
        if f.z < f_z_min || f.z > f_z_max {
            f.z = f.z.clamp(f_z_min, f_z_max);
            saturated_z = true;
        }
        let max_xy = f.z * max_tilt.tan();
        let saturated_xy = f.norm_xy() > max_xy;
        f = f.clamp_xy_norm(max_xy);

        // Conditional integration: do not integrate an axis further into saturation.
        let i_limit = |k: f64| {
            if k > 0.0 { g.i_limit_m_s2 / k } else { 0.0 }
        };
        if dt > 0.0 && limits.integrate {
            let mut next = self.integral + e_vel * dt;
            // The integral is for steady biases (wind, a heavier quad), not for transients, where
            // it would wind up and overshoot: integrate near the setpoint, or when the quad is
            // (nearly) at rest away from it — a bias is holding it there.
            let v = est.vel_in_world_m_s;
            let steady_xy = e_pos.norm_xy() < INTEGRATE_WITHIN_M || v.norm_xy() < STEADY_BELOW_M_S;
            let steady_z = e_pos.z.abs() < INTEGRATE_WITHIN_M || v.z.abs() < STEADY_BELOW_M_S;
            if saturated_xy || !steady_xy {
                next.x = self.integral.x;
                next.y = self.integral.y;
            }
            if saturated_z || !steady_z {
                next.z = self.integral.z;
            }
            let (lxy, lz) = (i_limit(ki.x), i_limit(ki.z));
            self.integral = Vec3::new(
                next.x.clamp(-lxy, lxy),
                next.y.clamp(-lxy, lxy),
                next.z.clamp(-lz, lz),
            );
        }

        // Tell the estimator what acceleration we asked for (its input model).
        self.feed_estimator(now_ns, dt, f - Vec3::new(0.0, 0.0, GRAVITY_M_S2));

        let yaw = est.yaw_rad.unwrap_or(sp.yaw_rad);
        let (s, c) = yaw.sin_cos();
        // Specific force in the yaw-aligned frame.
        let fb = Vec3::new(c * f.x + s * f.y, -s * f.x + c * f.y, f.z);
        let pitch = fb.x.atan2(fb.z);
        let roll = (-fb.y).atan2((fb.x * fb.x + fb.z * fb.z).sqrt());
        // Blind take-off: the mass correction scales the thrust, not the estimator's input
        // (which stays what the model expects of a quad that needed the correction).
        let collective_n = m * f.norm() * (1.0 + self.blind_boost);
        let yaw_rate = match est.yaw_rad {
            Some(y) if sp.yaw_rad.is_finite() => {
                let lim = g.max_yaw_rate_deg_s.to_radians();
                let e = wrap_pi(sp.yaw_rad - y);
                let out = (g.yaw_kp * e).clamp(-lim, lim);
                self.terms.push(PidTerms {
                    name: "yaw",
                    p: g.yaw_kp * e,
                    i: 0.0,
                    d: 0.0,
                    e,
                    sp: sp.yaw_rad,
                    out,
                });
                out
            }
            _ => 0.0,
        };
        let cmd = AttitudeCommand {
            roll_rad: roll,
            pitch_rad: pitch,
            yaw_rate_rad_s: yaw_rate,
            thrust_frac: self
                .map
                .frac_for_collective(collective_n)
                .min(MAX_THRUST_FRAC),
        };
        if cmd.is_finite() {
            cmd
        } else {
            self.hold_command()
        }
    }

    /// The setpoint asks for the floor and the quad is there, slow.
    fn on_the_floor(&self, now_ns: u64, sp: &Setpoint) -> bool {
        let Some(est) = self.est.estimate(now_ns) else {
            return false;
        };
        sp.pos_in_world_m.z < RESTING_HEIGHT_M + FLOOR_SETPOINT_M
            && est.pos_in_world_m.z < RESTING_HEIGHT_M + FLOOR_CONTACT_M
            && est.vel_in_world_m_s.z.abs() < FLOOR_SPEED_M_S
    }

    fn hold_command(&self) -> AttitudeCommand {
        AttitudeCommand {
            thrust_frac: self.level_thrust(0.0),
            ..AttitudeCommand::ZERO
        }
    }

    /// Blind landing, level throughout. First follow the descent profile open-loop, with the
    /// rotor drag that opposes the descent in the thrust model; then, when the profile nears the
    /// floor, sink: ramp the thrust down slowly to half of hover, so that the quad settles
    /// through the ground-effect cushion at a low speed wherever it really is, and cut.
    fn landing_command(&self, now_ns: u64) -> AttitudeCommand {
        let Some(l) = self.landing else {
            return AttitudeCommand::ZERO;
        };
        let t = now_ns.saturating_sub(l.start_ns) as f64 * 1e-9;
        let i_z = self.gains.vel_ki_z * self.integral.z;
        let m = self.gains.mass_kg;
        // m·a = T − m·g − c·v  →  T = m·(g + a) + c·v  (c·v < 0 while descending).
        let model = |t: f64| {
            let (v, a) = l.profile(t);
            m * (GRAVITY_M_S2 + a + i_z) + ROTOR_DRAG_Z_KG_S * v
        };
        let sink_start = l.sink_start_s();
        let thrust_n = if t < sink_start {
            model(t)
        } else {
            let u = ((t - sink_start) / LAND_SINK_S).clamp(0.0, 1.0);
            let from = model(sink_start);
            let to = LAND_SINK_TO_HOVER * m * GRAVITY_M_S2;
            from + (to - from) * u
        };
        AttitudeCommand {
            thrust_frac: self
                .map
                .frac_for_collective(thrust_n.max(0.0))
                .min(MAX_THRUST_FRAC),
            ..AttitudeCommand::ZERO
        }
    }
}

impl Controller for Cascade {
    fn name(&self) -> &'static str {
        "cascade"
    }

    fn place(&mut self, now_ns: u64, pos_in_world_m: Vec3, yaw_rad: f64) {
        if !pos_in_world_m.is_finite() || self.state != SafetyState::Idle {
            return;
        }
        self.est.place(&Measurement {
            stamp_ns: now_ns,
            seq: 0,
            pos_in_world_m,
            yaw_rad: yaw_rad.is_finite().then_some(yaw_rad),
        });
        self.placed_ns = Some(now_ns);
        self.state = SafetyState::Acquiring;
    }

    fn measure(&mut self, now_ns: u64, m: &Measurement) {
        if !m.pos_in_world_m.is_finite() {
            return;
        }
        self.est.measure(m);
        if let Some(last) = self.last_arrival_ns {
            let interval = now_ns.saturating_sub(last) as f64 * 1e-9;
            if interval >= self.faded_interval(now_ns) {
                self.slow_interval = (interval, now_ns);
            }
        }
        self.last_arrival_ns = Some(now_ns);
        self.fresh_in_row = self.fresh_in_row.saturating_add(1);
    }

    fn command(&mut self, now_ns: u64, sp: &Setpoint) -> AttitudeCommand {
        let dt = match self.last_cmd_ns {
            Some(t) if now_ns > t => ((now_ns - t) as f64 * 1e-9).min(0.1),
            _ => 0.0,
        };
        self.last_cmd_ns = Some(now_ns);
        let before = self.state;
        self.update_safety(now_ns);
        if before == SafetyState::Holding && self.state == SafetyState::Holding {
            self.fresh_in_row = 0;
        }
        // The loops' terms are those of this command, or none when the loops are open.
        self.terms.clear();
        if self.state != SafetyState::Holding {
            self.hold = None;
        }
        match self.state {
            SafetyState::Idle | SafetyState::Cut => AttitudeCommand::ZERO,
            SafetyState::Acquiring => {
                self.update_blind_boost(now_ns);
                self.tracking_command(now_ns, dt, sp)
            }
            SafetyState::Tracking | SafetyState::Landed => {
                if self.on_the_floor(now_ns, sp) {
                    // Landing by setpoint: once down, stop the motors instead of fighting the
                    // floor and the ground-effect cushion (and reset what was learnt in the air).
                    self.state = SafetyState::Landed;
                    self.integral = Vec3::ZERO;
                    self.feed_estimator(now_ns, dt, Vec3::ZERO);
                    AttitudeCommand::ZERO
                } else {
                    self.state = SafetyState::Tracking;
                    self.tracking_command(now_ns, dt, sp)
                }
            }
            SafetyState::Holding => self.holding_command(now_ns, dt, sp),
            SafetyState::Landing => {
                let cmd = self.landing_command(now_ns);
                // The estimator is told the descent the landing commands (its profile's
                // vertical acceleration), so that its prediction follows the quad down and a
                // resume from the landing starts from the right velocity.
                let acc_z = self.landing.map_or(0.0, |l| {
                    l.profile(now_ns.saturating_sub(l.start_ns) as f64 * 1e-9).1
                });
                self.feed_estimator(now_ns, dt, Vec3::new(0.0, 0.0, acc_z));
                cmd
            }
        }
    }

    fn estimate(&self, now_ns: u64) -> Option<Estimate> {
        self.est.estimate(now_ns)
    }

    fn safety(&self) -> SafetyState {
        self.state
    }

    fn pid_terms(&self) -> Vec<PidTerms> {
        self.terms.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meas(t_ns: u64, p: Vec3) -> Measurement {
        Measurement {
            stamp_ns: t_ns,
            seq: 0,
            pos_in_world_m: p,
            yaw_rad: Some(0.0),
        }
    }

    #[test]
    fn idle_until_first_measurement_then_tracks() {
        let mut c = Cascade::new(CascadeGains::default());
        let sp = Setpoint::hold(Vec3::new(0.0, 0.0, 1.0), 0.0);
        assert_eq!(c.command(0, &sp), AttitudeCommand::ZERO);
        assert_eq!(c.safety(), SafetyState::Idle);
        c.measure(10_000_000, &meas(0, Vec3::new(0.0, 0.0, 1.0)));
        let cmd = c.command(10_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Tracking);
        // At the setpoint, at rest: about hover thrust, level.
        let hover = ThrustMap::CF21_COMPENSATED.frac_for_collective(0.027 * GRAVITY_M_S2);
        assert!((cmd.thrust_frac - hover).abs() < 0.01, "{cmd:?}");
        assert!(cmd.roll_rad.abs() < 1e-9 && cmd.pitch_rad.abs() < 1e-9);
    }

    #[test]
    fn error_to_the_front_left_pitches_nose_down_and_rolls_left() {
        let mut c = Cascade::new(CascadeGains::default());
        c.measure(0, &meas(0, Vec3::new(0.0, 0.0, 1.0)));
        let cmd = c.command(0, &Setpoint::hold(Vec3::new(1.0, 1.0, 1.0), 0.0));
        assert!(
            cmd.pitch_rad > 0.0,
            "forward needs nose-down (positive) pitch: {cmd:?}"
        );
        assert!(
            cmd.roll_rad < 0.0,
            "left needs left-down (negative) roll: {cmd:?}"
        );
    }

    #[test]
    fn pid_terms_add_up_to_the_output_and_aim_at_the_stopping_point_while_holding() {
        let mut c = Cascade::new(CascadeGains::default());
        assert!(c.pid_terms().is_empty(), "no loop closed yet");
        let sp = Setpoint::hold(Vec3::new(0.3, -0.2, 1.0), 0.5);
        c.measure(0, &meas(0, Vec3::new(0.0, 0.0, 0.9)));
        c.command(0, &sp);
        c.measure(20_000_000, &meas(20_000_000, Vec3::new(0.01, -0.01, 0.91)));
        c.command(20_000_000, &sp);
        let terms = c.pid_terms();
        let names: Vec<_> = terms.iter().map(|t| t.name).collect();
        assert_eq!(names, ["x", "y", "z", "yaw"]);
        for t in &terms[..3] {
            // Hold setpoint: no feed-forward acceleration, so OUT = P + I + D.
            assert!((t.p + t.i + t.d - t.out).abs() < 1e-9, "{t:?}");
        }
        assert!(
            terms[0].e > 0.2 && terms[0].p > 0.0 && terms[0].sp == 0.3,
            "{:?}",
            terms[0]
        );
        assert!(terms[1].e < -0.1 && terms[1].p < 0.0, "{:?}", terms[1]);
        assert!(terms[3].e > 0.4 && terms[3].out > 0.0, "{:?}", terms[3]);
        c.command(400_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Holding);
        // Holding closes the loops on the prediction, towards the stopping point it fixed when
        // it began: a new setpoint does not move it.
        let held: Vec<f64> = c.pid_terms().iter().map(|t| t.sp).collect();
        assert_eq!(held.len(), 4, "{held:?}");
        c.command(420_000_000, &Setpoint::hold(Vec3::new(-1.0, 1.0, 2.0), 0.5));
        let again: Vec<f64> = c.pid_terms().iter().map(|t| t.sp).collect();
        assert_eq!(held, again);
        assert!(held[..3] != [0.3, -0.2, 1.0], "{held:?}");
    }

    /// A point-mass quad whose acceleration follows the cascade's attitude and thrust with a
    /// first-order lag of `est_response_tau_s` (the attitude loop's response).
    struct PointMass {
        p: Vec3,
        v: Vec3,
        a: Vec3,
    }

    impl PointMass {
        fn step(&mut self, cmd: &AttitudeCommand, dt: f64) {
            let tau = CascadeGains::default().est_response_tau_s;
            let thrust_n = 4.0 * ThrustMap::CF21_COMPENSATED.thrust_n(cmd.thrust_frac * 65535.0);
            let f = thrust_n / 0.027;
            let (sr, cr) = cmd.roll_rad.sin_cos();
            let (sp, cp) = cmd.pitch_rad.sin_cos();
            // Yaw 0: positive pitch accelerates +x, negative roll +y.
            let a = Vec3::new(f * sp * cr, -f * sr, f * cp * cr - GRAVITY_M_S2);
            self.a += (a - self.a) * (1.0 - (-dt / tau).exp());
            self.v += self.a * dt;
            self.p += self.v * dt;
        }
    }

    /// Issue 19's first strategy: measurements stop while the quad flies a step at speed.
    /// Holding brakes the velocity the prediction knows, so the quad stops near where it was
    /// last seen (inside the vision's gate) instead of coasting on at its speed, as the old
    /// "level at hover thrust" hold did.
    #[test]
    fn holding_brakes_a_moving_quad_instead_of_coasting() {
        let mut c = Cascade::new(CascadeGains::default());
        let mut q = PointMass {
            p: Vec3::new(0.0, 0.0, 1.0),
            v: Vec3::ZERO,
            a: Vec3::ZERO,
        };
        let start = Setpoint::hold(q.p, 0.0);
        let step = Setpoint::hold(Vec3::new(0.5, 0.0, 1.0), 0.0);
        let dt_ns = 10_000_000u64;
        let (step_at, lost_at) = (3_000_000_000u64, 3_350_000_000u64);
        let mut last_seen = q.p;
        let mut lost_at_speed = 0.0;
        for k in 0..500u64 {
            let t = k * dt_ns;
            // 30 Hz measurements; the step at 3 s; nothing from 3.35 s (mid-step, fast).
            if t <= lost_at && k % 3 == 0 {
                c.measure(t, &meas(t, q.p));
                last_seen = q.p;
                lost_at_speed = q.v.norm();
            }
            let cmd = c.command(t, if t < step_at { &start } else { &step });
            q.step(&cmd, 0.01);
            if t == lost_at + 1_450_000_000 {
                // The end of the hold, just before the landing begins. Lost at over 0.5 m/s:
                // coasting for the 1.45 s of the hold would carry it 0.7 m on. Braked, it
                // moves on only for the 0.25 s before the hold (still towards the step's end,
                // 0.35 m on), the attitude lag, and v²/2a at the hold's 15°.
                let drift = (q.p - last_seen).norm();
                assert!(
                    drift < 0.4,
                    "drifted {drift:.3} m from where it was last seen"
                );
                assert!(
                    q.v.norm_xy() < 0.1,
                    "still moving at {:.3} m/s",
                    q.v.norm_xy()
                );
            }
        }
        assert_eq!(
            c.safety(),
            SafetyState::Landing,
            "landing after 1.5 s blind"
        );
        assert!(lost_at_speed > 0.5, "lost at {lost_at_speed:.2} m/s");
    }

    #[test]
    fn stale_data_holds_then_lands_then_cuts() {
        let mut c = Cascade::new(CascadeGains::default());
        let sp = Setpoint::hold(Vec3::new(0.0, 0.0, 1.0), 0.0);
        c.measure(0, &meas(0, Vec3::new(0.0, 0.0, 1.0)));
        c.command(0, &sp);
        c.command(300_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Holding);
        let hold = c.command(400_000_000, &sp);
        assert_eq!((hold.roll_rad, hold.pitch_rad), (0.0, 0.0));
        c.command(1_400_000_000, &sp);
        assert_eq!(
            c.safety(),
            SafetyState::Holding,
            "still holding before 1.5 s"
        );
        c.command(1_600_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Landing);
        let land = c.command(1_700_000_000, &sp);
        assert!(land.thrust_frac < hold.thrust_frac && land.thrust_frac > 0.0);
        c.command(10_000_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Cut);
        assert_eq!(c.command(10_100_000_000, &sp), AttitudeCommand::ZERO);
    }

    /// A quad 26 % heavier than the model, on a vertical line, with a camera that sees it only
    /// above 0.5 m: the blind take-off must still bring it into view, and must not let it
    /// drop to the floor on the way.
    #[test]
    fn a_heavy_quad_climbs_blind_until_the_camera_sees_it() {
        let map = ThrustMap::CF21_COMPENSATED;
        let mass = 0.027 * 1.26;
        let mut c = Cascade::new(CascadeGains::default());
        let sp = Setpoint::hold(Vec3::new(0.0, 0.0, 1.0), 0.0);
        let (mut z, mut vz) = (RESTING_HEIGHT_M, 0.0);
        c.place(0, Vec3::new(0.0, 0.0, z), 0.0);
        let dt_ns = 2_000_000;
        let mut seen_at = None;
        for k in 1..2000u64 {
            let t = k * dt_ns;
            let cmd = c.command(t, &sp);
            let thrust_n = 4.0 * map.thrust_n(cmd.thrust_frac * 65535.0);
            let a = thrust_n / mass - GRAVITY_M_S2;
            vz += a * 2e-3;
            z += vz * 2e-3;
            if z <= RESTING_HEIGHT_M {
                assert!(vz > -1.0, "hit the floor at {vz:.2} m/s, t {t} ns");
                z = RESTING_HEIGHT_M;
                vz = vz.max(0.0);
            }
            if z > 0.5 && k % 17 == 0 {
                seen_at.get_or_insert(t);
                c.measure(t, &meas(t, Vec3::new(0.0, 0.0, z)));
            }
        }
        let seen_at = seen_at.expect("the camera never saw the quad");
        assert!(seen_at < 2_500_000_000, "seen only at {seen_at} ns");
        assert_eq!(c.safety(), SafetyState::Tracking);
        assert!((z - 1.0).abs() < 0.1, "after 4 s: z {z:.3} m");
    }

    /// A take-off never seen lands, and its mass correction does not follow the quad into a
    /// later resumed track.
    #[test]
    fn an_unseen_take_off_drops_its_mass_correction_when_it_lands() {
        let mut c = Cascade::new(CascadeGains::default());
        c.place(0, Vec3::new(0.0, 0.0, RESTING_HEIGHT_M), 0.0);
        let sp = Setpoint::hold(Vec3::new(0.0, 0.0, 1.0), 0.0);
        c.command(2_000_000_000, &sp);
        assert!(c.blind_boost > 0.0);
        c.command(3_100_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Landing);
        assert_eq!(c.blind_boost, 0.0);
    }

    /// A quad of the model's mass is seen within the grace time and flies exactly as before.
    #[test]
    fn no_mass_correction_within_the_grace_time() {
        let mut c = Cascade::new(CascadeGains::default());
        c.place(0, Vec3::new(0.0, 0.0, RESTING_HEIGHT_M), 0.0);
        let sp = Setpoint::hold(Vec3::new(0.0, 0.0, 1.0), 0.0);
        for k in 0..80u64 {
            c.command(k * 10_000_000, &sp);
            assert_eq!(c.blind_boost, 0.0, "at {} ms", k * 10);
        }
        c.command(1_200_000_000, &sp);
        assert!(c.blind_boost > 0.3 && c.blind_boost <= BLIND_BOOST_MAX);
        c.measure(
            1_210_000_000,
            &meas(1_200_000_000, Vec3::new(0.0, 0.0, 0.6)),
        );
        c.command(1_210_000_000, &sp);
        assert_eq!(c.safety(), SafetyState::Tracking);
        assert_eq!(c.blind_boost, 0.0, "handed to the integrator");
        assert!(c.integral.z > 0.0, "{:?}", c.integral);
    }

    proptest! {
        /// Whatever the measurement and setpoint (NaN and infinities included), the command is
        /// finite and within the firmware's limits.
        #[test]
        fn command_is_always_finite_and_bounded(
            px in prop_oneof![any::<f64>(), -10.0f64..10.0],
            pz in prop_oneof![any::<f64>(), -10.0f64..10.0],
            sx in prop_oneof![any::<f64>(), -10.0f64..10.0],
            sz in prop_oneof![any::<f64>(), -10.0f64..10.0],
            yaw in prop_oneof![any::<f64>(), -4.0f64..4.0],
            steps in 1u64..20,
        ) {
            let mut c = Cascade::new(CascadeGains::default());
            let sp = Setpoint::hold(Vec3::new(sx, 0.0, sz), yaw);
            for k in 0..steps {
                let t = k * 10_000_000;
                c.measure(t, &Measurement { stamp_ns: t, seq: k, pos_in_world_m: Vec3::new(px, 0.0, pz), yaw_rad: Some(yaw) });
                let cmd = c.command(t, &sp);
                prop_assert!(cmd.is_finite(), "{:?}", cmd);
                prop_assert!(cmd.thrust_frac >= 0.0 && cmd.thrust_frac <= MAX_THRUST_FRAC);
                let tilt = CascadeGains::default().max_tilt_deg.to_radians() + 1e-9;
                prop_assert!(cmd.roll_rad.abs() <= tilt && cmd.pitch_rad.abs() <= tilt, "{:?}", cmd);
            }
        }
    }
}
