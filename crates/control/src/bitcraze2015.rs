//! The 2015 Bitcraze Kinect demo's controller (`crazyflie-vision/control/kctrl.py` and
//! `control/pid.py`, last changed 2015-10-21), re-created for comparison:
//!
//! - runs once per measurement (the detector's frame), with `dt` the time between frames;
//! - x/y PIDs from metres to degrees, with the original integrator quirk: `I = Σe · ki · dt`,
//!   the sum of errors clamped but not multiplied by dt;
//! - the result rotated by the measured yaw; yaw by a PD on the angle error, capped at 200 deg/s;
//! - height through a vertical-velocity PID around a 0.50 thrust feed-forward, clamped to
//!   [0.40, 1.0] and sent as cfclient percent (raw = 65000 · pct / 100). The velocity setpoint
//!   comes from a height PID that kctrl.py computed but overwrote with 0 m/s (the published demo
//!   had no height control); without it no height can be held, so we use it;
//! - inactive (all zero, integrators reset) unless the last two frames had detections and the
//!   last detection is under 1 s old.

use crate::{Controller, Estimate, PidTerms, SafetyState};
use depthpilot_types::math::wrap_pi;
use depthpilot_types::scene::Bitcraze2015Gains;
use depthpilot_types::{AttitudeCommand, Measurement, Setpoint, Vec3};

/// `PID_RP` of pid.py.
#[derive(Clone, Debug, Default)]
struct PidRp {
    kp: f64,
    ki: f64,
    kd: f64,
    integrator_max: f64,
    integrator: f64,
    prev_error: Option<f64>,
    /// The last update's (P, I, D, error).
    last: (f64, f64, f64, f64),
}

impl PidRp {
    fn new(kp: f64, ki: f64, kd: f64, integrator_max: f64) -> Self {
        Self {
            kp,
            ki,
            kd,
            integrator_max,
            ..Default::default()
        }
    }

    fn update(&mut self, error: f64, dt: f64) -> f64 {
        let p = self.kp * error;
        let i = self.integrator * self.ki * dt;
        let d = match self.prev_error {
            Some(prev) if dt > 0.0 => self.kd * (error - prev) / dt,
            _ => 0.0,
        };
        self.prev_error = Some(error);
        self.integrator =
            (self.integrator + error).clamp(-self.integrator_max, self.integrator_max);
        self.last = (p, i, d, error);
        p + i + d
    }

    /// The last update as visualisation terms.
    fn terms(&self, name: &'static str, sp: f64, out: f64) -> PidTerms {
        let (p, i, d, e) = self.last;
        PidTerms {
            name,
            p,
            i,
            d,
            e,
            sp,
            out,
        }
    }

    fn reset(&mut self) {
        self.integrator = 0.0;
        self.prev_error = None;
    }
}

/// cfclient's percent → raw mapping (`p2t`: 65000 is 100 %), as a fraction of 65535.
const CFCLIENT_FULL_SCALE_FRAC: f64 = 65000.0 / 65535.0;
const ACTIVE_WINDOW_NS: u64 = 1_000_000_000;

/// See the module doc.
pub struct Bitcraze2015 {
    g: Bitcraze2015Gains,
    x: PidRp,
    y: PidRp,
    yaw: PidRp,
    z: PidRp,
    vv: PidRp,
    last: Option<Measurement>,
    pending: Option<(u64, Measurement)>,
    consecutive: u32,
    last_detect_ns: Option<u64>,
    cmd: AttitudeCommand,
    vel_estimate: Vec3,
    active: bool,
    terms: Vec<PidTerms>,
}

impl Bitcraze2015 {
    pub fn new(g: Bitcraze2015Gains) -> Self {
        Self {
            x: PidRp::new(g.rp_kp, g.rp_ki, g.rp_kd, g.rp_integrator_max),
            y: PidRp::new(g.rp_kp, g.rp_ki, g.rp_kd, g.rp_integrator_max),
            yaw: PidRp::new(g.yaw_kp, 0.0, g.yaw_kd, 0.0),
            z: PidRp::new(g.z_kp, g.z_ki, 0.0, g.z_integrator_max),
            vv: PidRp::new(g.vv_kp, g.vv_ki, g.vv_kd, g.vv_integrator_max),
            g,
            last: None,
            pending: None,
            consecutive: 0,
            last_detect_ns: None,
            cmd: AttitudeCommand::ZERO,
            vel_estimate: Vec3::ZERO,
            active: false,
            terms: Vec::new(),
        }
    }

    fn reset(&mut self) {
        for pid in [
            &mut self.x,
            &mut self.y,
            &mut self.yaw,
            &mut self.z,
            &mut self.vv,
        ] {
            pid.reset();
        }
    }

    fn step(&mut self, now_ns: u64, m: Measurement, sp: &Setpoint) {
        let prev = self.last.replace(m);
        self.consecutive = self.consecutive.saturating_add(1);
        self.last_detect_ns = Some(now_ns);
        let Some(prev) = prev else {
            return;
        };
        let dt = m.stamp_ns.saturating_sub(prev.stamp_ns) as f64 * 1e-9;
        if self.consecutive < 2 || dt <= 0.0 || !sp.pos_in_world_m.is_finite() {
            self.cmd = AttitudeCommand::ZERO;
            self.reset();
            self.active = false;
            return;
        }
        self.active = true;
        let g = &self.g;
        let p = m.pos_in_world_m;
        let e = sp.pos_in_world_m - p;
        // World-frame corrections in degrees of tilt towards +x and +y.
        let out_x = self.x.update(e.x, dt);
        let out_y = self.y.update(e.y, dt);
        let yaw_meas = m.yaw_rad.unwrap_or(0.0);
        let (s, c) = yaw_meas.sin_cos();
        let body_x = c * out_x + s * out_y;
        let body_y = -s * out_x + c * out_y;
        let lim = g.max_angle_deg;
        let pitch_deg = body_x.clamp(-lim, lim);
        let roll_deg = (-body_y).clamp(-lim, lim);

        let yaw_err_deg = wrap_pi(sp.yaw_rad - yaw_meas).to_degrees();
        let yaw_rate_deg_s = self
            .yaw
            .update(yaw_err_deg, dt)
            .clamp(-g.yaw_cap_deg_s, g.yaw_cap_deg_s);

        let vz = (p.z - prev.pos_in_world_m.z) / dt;
        self.vel_estimate = (p - prev.pos_in_world_m) * (1.0 / dt);
        let vz_sp = self.z.update(e.z, dt).clamp(-1.0, 1.0);
        let thrust = (self.vv.update(vz_sp - vz, dt) + g.thrust_feed_forward)
            .clamp(g.thrust_min, g.thrust_max);
        self.cmd = AttitudeCommand {
            roll_rad: roll_deg.to_radians(),
            pitch_rad: pitch_deg.to_radians(),
            yaw_rate_rad_s: yaw_rate_deg_s.to_radians(),
            thrust_frac: thrust * CFCLIENT_FULL_SCALE_FRAC,
        };
        // kctrl.py's names: "roll" is the x loop (x+ → roll−), "pitch" the y loop.
        self.terms = vec![
            self.x.terms("roll", sp.pos_in_world_m.x, out_x),
            self.y.terms("pitch", sp.pos_in_world_m.y, out_y),
            self.yaw
                .terms("yaw", sp.yaw_rad.to_degrees(), yaw_rate_deg_s),
            self.z.terms("z", sp.pos_in_world_m.z, vz_sp),
            self.vv.terms("thrust", vz_sp, thrust),
        ];
        if !self.cmd.is_finite() {
            self.cmd = AttitudeCommand::ZERO;
            self.reset();
        }
    }
}

impl Controller for Bitcraze2015 {
    fn name(&self) -> &'static str {
        "bitcraze2015"
    }

    fn measure(&mut self, now_ns: u64, m: &Measurement) {
        if m.pos_in_world_m.is_finite() {
            self.pending = Some((now_ns, *m));
        }
    }

    fn command(&mut self, now_ns: u64, sp: &Setpoint) -> AttitudeCommand {
        if let Some((t, m)) = self.pending.take() {
            self.step(t, m, sp);
        }
        let fresh = self
            .last_detect_ns
            .is_some_and(|t| now_ns.saturating_sub(t) < ACTIVE_WINDOW_NS);
        if !fresh || !self.active {
            self.terms.clear();
        }
        if !fresh {
            // kctrl.py: no detection for 1 s → send zeros and reset.
            self.consecutive = 0;
            self.active = false;
            self.cmd = AttitudeCommand::ZERO;
            self.reset();
        }
        self.cmd
    }

    fn estimate(&self, _now_ns: u64) -> Option<Estimate> {
        self.last.map(|m| Estimate {
            stamp_ns: m.stamp_ns,
            pos_in_world_m: m.pos_in_world_m,
            vel_in_world_m_s: self.vel_estimate,
            accel_bias_m_s2: Vec3::ZERO,
            yaw_rad: m.yaw_rad,
            last_measurement_ns: m.stamp_ns,
        })
    }

    fn pid_terms(&self) -> Vec<PidTerms> {
        self.terms.clone()
    }

    fn safety(&self) -> SafetyState {
        match (self.last.is_some(), self.active) {
            (false, _) => SafetyState::Idle,
            (true, true) => SafetyState::Tracking,
            (true, false) => SafetyState::Cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrator_quirk_sums_errors_without_dt() {
        let mut pid = PidRp::new(0.0, 1.0, 0.0, 100.0);
        pid.update(1.0, 0.1);
        pid.update(1.0, 0.1);
        // Third call: I = (1 + 1) · ki · dt = 0.2.
        let out = pid.update(1.0, 0.1);
        assert!((out - 0.2).abs() < 1e-12, "{out}");
    }

    #[test]
    fn needs_two_frames_and_goes_to_zero_after_a_second() {
        let mut c = Bitcraze2015::new(Bitcraze2015Gains::default());
        let sp = Setpoint::hold(Vec3::new(0.0, 0.0, 1.0), 0.0);
        let m = |t: u64| Measurement {
            stamp_ns: t,
            seq: 0,
            pos_in_world_m: Vec3::new(0.0, 0.0, 0.5),
            yaw_rad: Some(0.0),
        };
        c.measure(0, &m(0));
        assert_eq!(c.command(0, &sp), AttitudeCommand::ZERO);
        c.measure(33_000_000, &m(33_000_000));
        let cmd = c.command(33_000_000, &sp);
        assert!(
            cmd.thrust_frac >= 0.40 * CFCLIENT_FULL_SCALE_FRAC - 1e-12,
            "{cmd:?}"
        );
        assert_eq!(c.command(1_100_000_000, &sp), AttitudeCommand::ZERO);
    }
}
