//! Position/velocity estimator: a per-axis constant-velocity Kalman filter driven by the
//! controller's own commanded acceleration, updated at each measurement's *capture* time and
//! predicted forward to "now" to compensate the sensor latency.

use depthpilot_types::{Measurement, Vec3};
use std::collections::VecDeque;

/// The estimator's belief, at some time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub stamp_ns: u64,
    pub pos_in_world_m: Vec3,
    pub vel_in_world_m_s: Vec3,
    pub yaw_rad: Option<f64>,
    /// Capture time of the newest measurement used.
    pub last_measurement_ns: u64,
}

/// One axis: state [p, v], covariance [[pp, pv], [pv, vv]].
#[derive(Clone, Copy, Debug)]
struct Axis {
    p: f64,
    v: f64,
    cov: [f64; 3],
}

impl Axis {
    fn predict(&mut self, dt: f64, acc: f64, q: f64) {
        self.p += self.v * dt + 0.5 * acc * dt * dt;
        self.v += acc * dt;
        let [pp, pv, vv] = self.cov;
        // F P Fᵀ + Q with white-acceleration Q.
        let dt2 = dt * dt;
        self.cov = [
            pp + 2.0 * dt * pv + dt2 * vv + q * dt2 * dt2 / 4.0,
            pv + dt * vv + q * dt2 * dt / 2.0,
            vv + q * dt2,
        ];
    }

    fn update(&mut self, z: f64, r: f64) {
        let [pp, pv, vv] = self.cov;
        let s = pp + r;
        let (kp, kv) = (pp / s, pv / s);
        let innov = z - self.p;
        self.p += kp * innov;
        self.v += kv * innov;
        self.cov = [(1.0 - kp) * pp, (1.0 - kp) * pv, vv - kv * pv];
    }
}

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
        }
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
            axis.predict(dt, a, q);
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
                let init = |p: f64| Axis {
                    p,
                    v: 0.0,
                    cov: [self.meas_var, 0.0, 1.0],
                };
                let p = m.pos_in_world_m;
                self.axes = Some([init(p.x), init(p.y), init(p.z)]);
                self.state_ns = m.stamp_ns;
            }
            Some(mut axes) => {
                if m.stamp_ns < self.state_ns {
                    return;
                }
                self.propagate(&mut axes, self.state_ns, m.stamp_ns);
                for (axis, z) in axes.iter_mut().zip(m.pos_in_world_m.to_array()) {
                    axis.update(z, self.meas_var);
                }
                self.axes = Some(axes);
                self.state_ns = m.stamp_ns;
            }
        }
        // Inputs older than the state are no longer needed (keep the one in force).
        while self.inputs.len() > 1 && self.inputs[1].0 <= self.state_ns {
            self.inputs.pop_front();
        }
    }

    /// The belief predicted to `now_ns`, or `None` before the first measurement.
    pub fn estimate(&self, now_ns: u64) -> Option<Estimate> {
        let mut axes = self.axes?;
        self.propagate(&mut axes, self.state_ns, now_ns);
        Some(Estimate {
            stamp_ns: now_ns.max(self.state_ns),
            pos_in_world_m: Vec3::new(axes[0].p, axes[1].p, axes[2].p),
            vel_in_world_m_s: Vec3::new(axes[0].v, axes[1].v, axes[2].v),
            yaw_rad: self.yaw_rad,
            last_measurement_ns: self.state_ns,
        })
    }

    pub fn reset(&mut self) {
        self.axes = None;
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
    fn ignores_nan_and_out_of_order() {
        let mut e = Estimator::new(1.0, 0.002);
        e.measure(&meas(100, Vec3::new(1.0, 2.0, 3.0)));
        e.measure(&meas(200, Vec3::new(f64::NAN, 0.0, 0.0)));
        e.measure(&meas(50, Vec3::new(9.0, 9.0, 9.0)));
        let est = e.estimate(200).expect("initialised");
        assert_eq!(est.pos_in_world_m, Vec3::new(1.0, 2.0, 3.0));
    }
}
