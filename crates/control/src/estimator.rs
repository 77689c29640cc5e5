//! Position/velocity estimator: per axis, a Kalman filter on position, velocity and an
//! acceleration bias, driven by the acceleration the controller expects from its own commands.
//! Each measurement is fused at its *capture* time and the state is predicted forward to "now"
//! through the recorded inputs, which compensates the sensor latency.
//!
//! The bias state absorbs whatever the input model gets wrong and persists: a heavier or lighter
//! quad than the controller's model, a thrust-map error, a steady wind. Without it the velocity
//! estimate is biased whenever the model is, and a controller that trusts it never settles.

use depthpilot_types::{Measurement, Vec3};
use std::collections::VecDeque;

/// The estimator's belief, at some time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub stamp_ns: u64,
    pub pos_in_world_m: Vec3,
    pub vel_in_world_m_s: Vec3,
    /// Acceleration the input model does not explain (actual minus expected).
    pub accel_bias_m_s2: Vec3,
    pub yaw_rad: Option<f64>,
    /// Capture time of the newest measurement used.
    pub last_measurement_ns: u64,
}

/// One axis: state x = [p, v, b], symmetric covariance stored as
/// [pp, pv, pb, vv, vb, bb].
#[derive(Clone, Copy, Debug)]
struct Axis {
    x: [f64; 3],
    cov: [f64; 6],
}

impl Axis {
    fn new(p: f64, meas_var: f64, bias_var: f64) -> Self {
        Self {
            x: [p, 0.0, 0.0],
            cov: [meas_var, 0.0, 0.0, 1.0, 0.0, bias_var],
        }
    }

    /// x ← F x + G u, P ← F P Fᵀ + Q with F = [[1, dt, dt²/2], [0, 1, dt], [0, 0, 1]].
    fn predict(&mut self, dt: f64, u: f64, q_acc: f64, q_bias: f64) {
        let [p, v, b] = self.x;
        let h = 0.5 * dt * dt;
        self.x = [p + v * dt + (u + b) * h, v + (u + b) * dt, b];
        let [pp, pv, pb, vv, vb, bb] = self.cov;
        // Rows of F·P.
        let fp = [
            [
                pp + dt * pv + h * pb,
                pv + dt * vv + h * vb,
                pb + dt * vb + h * bb,
            ],
            [pv + dt * pb, vv + dt * vb, vb + dt * bb],
            [pb, vb, bb],
        ];
        // (F·P)·Fᵀ, upper triangle.
        let col = |r: &[f64; 3]| [r[0] + dt * r[1] + h * r[2], r[1] + dt * r[2], r[2]];
        let (r0, r1, r2) = (col(&fp[0]), col(&fp[1]), col(&fp[2]));
        let dt2 = dt * dt;
        self.cov = [
            r0[0] + q_acc * dt2 * dt2 / 4.0,
            r0[1] + q_acc * dt2 * dt / 2.0,
            r0[2],
            r1[1] + q_acc * dt2,
            r1[2],
            r2[2] + q_bias * dt,
        ];
    }

    /// Fuses a position measurement z with variance r.
    fn update(&mut self, z: f64, r: f64) {
        let [pp, pv, pb, vv, vb, bb] = self.cov;
        let s = pp + r;
        let k = [pp / s, pv / s, pb / s];
        let innov = z - self.x[0];
        for (xi, ki) in self.x.iter_mut().zip(k) {
            *xi += ki * innov;
        }
        // P ← (I − K H) P, H = [1, 0, 0].
        self.cov = [
            pp - k[0] * pp,
            pv - k[0] * pv,
            pb - k[0] * pb,
            vv - k[1] * pv,
            vb - k[1] * pb,
            bb - k[2] * pb,
        ];
    }
}

/// Random-walk intensity of the acceleration bias ((m/s²)²/s). Larger learns a changed bias
/// faster but lets sparse measurements (dropped frames) shake the estimate; 0.05 keeps a 50 %
/// frame-drop flight within a few millimetres and still learns a 20 % mass error in a second or two.
const BIAS_RANDOM_WALK: f64 = 0.05;
/// Initial uncertainty of the bias ((m/s²)²).
const BIAS_INITIAL_VAR: f64 = 4.0;
/// The bias is bounded: it models a modest disturbance, not a broken vehicle.
const BIAS_LIMIT_M_S2: f64 = 5.0;

/// A measurement captured this long after the previous one ends a gap (a blackout, a rate
/// collapse, a run of drops): see [`Estimator::measure`] ...
const GAP_NS: u64 = 250_000_000;
/// ... up to this long: the controller's hold (braking on the prediction, which the input model
/// knows well). After longer the quad has been landing blind, a descent the input model knows
/// less well (ground effect, the floor), and a normal update measures its velocity.
const GAP_MAX_NS: u64 = 1_500_000_000;

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Estimator {
    accel_var: f64,
    meas_var: f64,
    axes: Option<[Axis; 3]>,
    /// Time of the filter state (capture time of the last measurement).
    state_ns: u64,
    yaw_rad: Option<f64>,
    /// Commanded world accelerations (time from which each holds), oldest first.
    inputs: VecDeque<(u64, Vec3)>,
    /// The state's last fix is a placement (where the quad was put down), not a sensor's.
    placed: bool,
    /// The last fix ended a gap (and fixed the position alone): the next one updates normally,
    /// whenever it comes, so that a run of sparse fixes (a 4 Hz collapse) still measures the
    /// velocity.
    fixed_after_gap: bool,
}

fn secs(ns: u64) -> f64 {
    ns as f64 * 1e-9
}

impl Estimator {
    pub fn new(accel_sigma_m_s2: f64, meas_sigma_m: f64) -> Self {
        Self {
            accel_var: accel_sigma_m_s2 * accel_sigma_m_s2,
            meas_var: meas_sigma_m * meas_sigma_m,
            axes: None,
            state_ns: 0,
            yaw_rad: None,
            inputs: VecDeque::new(),
            placed: false,
            fixed_after_gap: false,
        }
    }

    /// Fuses where the quad was placed (a known spot before take-off), like a measurement; the
    /// first sensor fix after it is a normal update, not the end of a gap (see [`Self::measure`]).
    pub fn place(&mut self, m: &Measurement) {
        self.measure(m);
        self.placed = true;
    }

    /// Records the acceleration the controller commanded from `now_ns` on.
    pub fn input(&mut self, now_ns: u64, acc_in_world_m_s2: Vec3) {
        if !acc_in_world_m_s2.is_finite() {
            return;
        }
        if self.inputs.back().is_some_and(|&(t, _)| now_ns < t) {
            return;
        }
        self.inputs.push_back((now_ns, acc_in_world_m_s2));
        // Keep a bounded history: one second at any sane rate is plenty.
        while self.inputs.len() > 2000 {
            self.inputs.pop_front();
        }
    }

    /// Integrates the axes from `from_ns` to `to_ns` through the input history.
    fn propagate(&self, axes: &mut [Axis; 3], from_ns: u64, to_ns: u64) {
        if to_ns <= from_ns {
            return;
        }
        let mut t = from_ns;
        let mut acc = Vec3::ZERO;
        let mut it = self.inputs.iter().peekable();
        while let Some(&&(ts, a)) = it.peek() {
            if ts > from_ns {
                break;
            }
            acc = a;
            it.next();
        }
        for &(ts, a) in it {
            if ts >= to_ns {
                break;
            }
            Self::step_axes(axes, secs(ts - t), acc, self.accel_var);
            t = ts;
            acc = a;
        }
        Self::step_axes(axes, secs(to_ns - t), acc, self.accel_var);
    }

    fn step_axes(axes: &mut [Axis; 3], dt: f64, acc: Vec3, q: f64) {
        if dt <= 0.0 {
            return;
        }
        for (axis, a) in axes.iter_mut().zip(acc.to_array()) {
            axis.predict(dt, a, q, BIAS_RANDOM_WALK);
        }
    }

    /// Fuses a measurement. Out-of-order or non-finite measurements are ignored.
    pub fn measure(&mut self, m: &Measurement) {
        if !m.pos_in_world_m.is_finite() {
            return;
        }
        if let Some(yaw) = m.yaw_rad.filter(|y| y.is_finite()) {
            self.yaw_rad = Some(yaw);
        }
        match self.axes {
            None => {
                let init = |p: f64| Axis::new(p, self.meas_var, BIAS_INITIAL_VAR);
                let p = m.pos_in_world_m;
                self.axes = Some([init(p.x), init(p.y), init(p.z)]);
                self.state_ns = m.stamp_ns;
            }
            Some(mut axes) => {
                if m.stamp_ns < self.state_ns {
                    return;
                }
                self.propagate(&mut axes, self.state_ns, m.stamp_ns);
                let gap_ns = m.stamp_ns - self.state_ns;
                let after_gap = (GAP_NS + 1..=GAP_MAX_NS).contains(&gap_ns)
                    && !self.placed
                    && !self.fixed_after_gap;
                self.fixed_after_gap = after_gap;
                for (axis, z) in axes.iter_mut().zip(m.pos_in_world_m.to_array()) {
                    if after_gap {
                        // After a gap, how far the prediction is off is mostly what the input
                        // model missed while blind (a hold's braking, a gust), not a velocity
                        // or bias error. Through the cross-covariances a blind second builds up,
                        // the first fix would put that miss into the velocity (0.5 m/s from a
                        // 0.18 m miss after 0.7 s) and the bias, and the controller would brake
                        // against a velocity the quad does not have. So the first measurement
                        // after a gap fixes the position alone; the next one, however late,
                        // updates normally and measures the velocity again.
                        let [pp, _, _, vv, _, bb] = axis.cov;
                        axis.cov = [pp, 0.0, 0.0, vv, 0.0, bb];
                    }
                    axis.update(z, self.meas_var);
                    axis.x[2] = axis.x[2].clamp(-BIAS_LIMIT_M_S2, BIAS_LIMIT_M_S2);
                }
                self.axes = Some(axes);
                self.state_ns = m.stamp_ns;
            }
        }
        self.placed = false;
        // Inputs older than the state are no longer needed (keep the one in force).
        while self.inputs.len() > 1 && self.inputs[1].0 <= self.state_ns {
            self.inputs.pop_front();
        }
    }

    /// The belief at the newest measurement's capture time, without prediction: what the
    /// sensor last said, filtered. Safer than a prediction once measurements have stopped.
    pub fn last_fused(&self) -> Option<Estimate> {
        self.estimate(self.state_ns)
    }

    /// The belief predicted to `now_ns`, or `None` before the first measurement.
    pub fn estimate(&self, now_ns: u64) -> Option<Estimate> {
        let mut axes = self.axes?;
        self.propagate(&mut axes, self.state_ns, now_ns);
        Some(Estimate {
            stamp_ns: now_ns.max(self.state_ns),
            pos_in_world_m: Vec3::new(axes[0].x[0], axes[1].x[0], axes[2].x[0]),
            vel_in_world_m_s: Vec3::new(axes[0].x[1], axes[1].x[1], axes[2].x[1]),
            accel_bias_m_s2: Vec3::new(axes[0].x[2], axes[1].x[2], axes[2].x[2]),
            yaw_rad: self.yaw_rad,
            last_measurement_ns: self.state_ns,
        })
    }

    pub fn reset(&mut self) {
        self.axes = None;
        self.placed = false;
        self.fixed_after_gap = false;
        self.inputs.clear();
        self.yaw_rad = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meas(t_ns: u64, p: Vec3) -> Measurement {
        Measurement {
            stamp_ns: t_ns,
            seq: 0,
            pos_in_world_m: p,
            yaw_rad: None,
        }
    }

    /// A quad at rest at x = 0, measured at 30 Hz for 1 s, then a gap of `gap_ns`, then a fix
    /// 0.1 m to the side: the velocity estimate right after that fix.
    fn velocity_after_a_gap(gap_ns: u64) -> f64 {
        let mut e = Estimator::new(2.0, 0.005);
        let mut t = 0;
        while t <= 1_000_000_000 {
            e.measure(&meas(t, Vec3::ZERO));
            t += 33_333_333;
        }
        let at = 1_000_000_000 + gap_ns;
        e.measure(&meas(at, Vec3::new(0.1, 0.0, 0.0)));
        e.estimate(at).expect("estimate").vel_in_world_m_s.x
    }

    /// Issue 19: the first fix after a hold-length gap fixes the position alone (the miss is the
    /// input model's, not a velocity); after a short interval or a landing-length gap a fix is
    /// a normal update, which reads a velocity into the miss.
    #[test]
    fn the_first_fix_after_a_hold_length_gap_fixes_the_position_alone() {
        let after_hold = velocity_after_a_gap(600_000_000);
        assert!(after_hold.abs() < 1e-9, "{after_hold}");
        let normal = velocity_after_a_gap(66_666_666);
        assert!(normal > 0.3, "{normal}");
        let after_landing = velocity_after_a_gap(2_000_000_000);
        assert!(after_landing > 0.01, "{after_landing}");
        // The fix after that one updates normally, however late.
        let mut e = Estimator::new(2.0, 0.005);
        e.measure(&meas(0, Vec3::ZERO));
        e.measure(&meas(33_000_000, Vec3::ZERO));
        e.measure(&meas(533_000_000, Vec3::new(0.1, 0.0, 0.0)));
        e.measure(&meas(1_033_000_000, Vec3::new(0.2, 0.0, 0.0)));
        let v = e
            .estimate(1_033_000_000)
            .expect("estimate")
            .vel_in_world_m_s
            .x;
        assert!(v > 0.05, "{v}");
    }

    #[test]
    fn tracks_constant_velocity_and_predicts_through_latency() {
        let mut e = Estimator::new(1.0, 0.002);
        let v = 0.5;
        for k in 0..60u64 {
            let t = k * 33_333_333;
            e.measure(&meas(t, Vec3::new(v * secs(t), 0.0, 1.0)));
        }
        let last = 59 * 33_333_333;
        let now = last + 40_000_000;
        let est = e.estimate(now).expect("initialised");
        assert!((est.vel_in_world_m_s.x - v).abs() < 0.01, "{est:?}");
        assert!(
            (est.pos_in_world_m.x - v * secs(now)).abs() < 0.002,
            "{est:?}"
        );
    }

    #[test]
    fn learns_an_unmodelled_acceleration() {
        // The controller expects no acceleration but the quad sinks at 1 m/s² (too heavy).
        let mut e = Estimator::new(1.0, 0.002);
        let truth = |t: f64| 1.0 - 0.5 * t * t;
        for k in 0..90u64 {
            let t = k * 33_333_333;
            e.input(t, Vec3::ZERO);
            e.measure(&meas(t, Vec3::new(0.0, 0.0, truth(secs(t)))));
        }
        let now = 89 * 33_333_333;
        let est = e.estimate(now).expect("initialised");
        assert!((est.accel_bias_m_s2.z + 1.0).abs() < 0.1, "{est:?}");
        assert!((est.vel_in_world_m_s.z + secs(now)).abs() < 0.05, "{est:?}");
    }

    #[test]
    fn ignores_nan_and_out_of_order() {
        let mut e = Estimator::new(1.0, 0.002);
        e.measure(&meas(100, Vec3::new(1.0, 2.0, 3.0)));
        e.measure(&meas(200, Vec3::new(f64::NAN, 0.0, 0.0)));
        e.measure(&meas(50, Vec3::new(9.0, 9.0, 9.0)));
        let est = e.estimate(200).expect("initialised");
        assert_eq!(est.pos_in_world_m, Vec3::new(1.0, 2.0, 3.0));
    }
}
