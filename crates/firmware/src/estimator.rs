//! The firmware's position and velocity estimate.
//!
//! Until the first external position arrives, the estimate is the truth the plant supplies
//! ([`super::NavSample`]): it stands in for on-board positioning (a flow deck, a positioning deck,
//! the barometer), as CrazySim's SITL does by feeding the simulator's pose to the estimator.
//!
//! From the first external position on (CRTP 6:0, `crtp_localization_service.c`:
//! `estimatorEnqueuePosition` with `extPosStdDev` = 0.01 m), the estimate is a per-axis reduction
//! of the firmware's EKF (`estimator/estimator_kalman.c`, `kalman_core/kalman_core.c`,
//! `kalman_core/mm_position.c`): state (position, velocity) per world axis, predicted at
//! `PREDICT_RATE` = 100 Hz with the IMU's averaged specific force rotated into the world (only
//! the thrust axis, body z, while flying, as `predictDt` does), process noise added every tick
//! (`procNoiseAcc_xy` 0.5, `procNoiseAcc_z` 1.0), and each external position applied as scalar
//! updates (Joseph form, covariance bounded to [1e-6, 100]). The measurement is used as if it
//! were current: the firmware does no latency compensation, so the link's delay and any noise
//! show in the estimate.
//!
//! Stale external positions: the EKF has no freshness test on position measurements; without
//! them it keeps predicting from the IMU (dead reckoning) while its covariance grows. The model
//! does the same and never falls back to the truth. Not modelled: the attitude states (the
//! attitude is the plant's), the body-frame velocity parametrisation, and
//! `kalman_supervisor.c`'s out-of-bounds reset.

use depthpilot_types::Rot;

/// `GRAVITY_MAGNITUDE` (physicalConstants.h; the plant uses the same 9.81).
const G: f64 = 9.81;
/// `PREDICT_RATE` = `RATE_100_HZ` (estimator_kalman.c).
const PREDICT_PERIOD_NS: u64 = 10_000_000;
/// `locSrv.extPosStdDev` default (crtp_localization_service.c).
const EXT_POS_STD_M: f64 = 0.01;
/// `kalmanCoreDefaultParams` (kalman_core.c).
const PROC_NOISE_ACC_XY: f64 = 0.5;
const PROC_NOISE_ACC_Z: f64 = 1.0;
const STD_INITIAL_POS_XY: f64 = 100.0;
const STD_INITIAL_POS_Z: f64 = 1.0;
const STD_INITIAL_VEL: f64 = 0.01;
/// `MAX_COVARIANCE`, `MIN_COVARIANCE` (kalman_core.c).
const MAX_COVARIANCE: f64 = 100.0;
const MIN_COVARIANCE: f64 = 1e-6;

/// The firmware's position and velocity estimate (`stateEstimate.x/y/z`, `.vx/vy/vz`), world
/// frame, z up.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StateEstimate {
    pub pos_m: [f64; 3],
    pub vel_m_s: [f64; 3],
}

/// One world axis of the filter: state (p, v), covariance [[pp, pv], [pv, vv]].
#[derive(Clone, Copy, Debug)]
struct Axis {
    p: f64,
    v: f64,
    pp: f64,
    pv: f64,
    vv: f64,
    q_acc: f64,
}

impl Axis {
    fn new(p: f64, v: f64, std_p: f64, q_acc: f64) -> Self {
        Self {
            p,
            v,
            pp: std_p * std_p,
            pv: 0.0,
            vv: STD_INITIAL_VEL * STD_INITIAL_VEL,
            q_acc,
        }
    }

    fn predict(&mut self, acc: f64, dt: f64) {
        self.p += self.v * dt + acc * dt * dt / 2.0;
        self.v += acc * dt;
        // P = A P A' with A = [[1, dt], [0, 1]].
        let pp = self.pp + 2.0 * dt * self.pv + dt * dt * self.vv;
        let pv = self.pv + dt * self.vv;
        self.pp = pp;
        self.pv = pv;
    }

    fn add_process_noise(&mut self, dt: f64) {
        self.pp += (self.q_acc * dt * dt).powi(2);
        self.vv += (self.q_acc * dt).powi(2);
        self.bound();
    }

    /// `kalmanCoreScalarUpdate` with H = [1, 0].
    fn update(&mut self, measured: f64, std: f64) {
        let r = std * std;
        let s = self.pp + r;
        let (kp, kv) = (self.pp / s, self.pv / s);
        let error = measured - self.p;
        self.p += kp * error;
        self.v += kv * error;
        // (I - KH) P (I - KH)' + K R K'.
        let (a, b) = (1.0 - kp, -kv);
        let pp = a * a * self.pp;
        let pv = a * (b * self.pp + self.pv);
        let vv = b * b * self.pp + 2.0 * b * self.pv + self.vv;
        self.pp = pp + kp * r * kp;
        self.pv = pv + kp * r * kv;
        self.vv = vv + kv * r * kv;
        self.bound();
    }

    fn bound(&mut self) {
        let clamp_diag = |x: f64| {
            if x.is_nan() || x > MAX_COVARIANCE {
                MAX_COVARIANCE
            } else {
                x.max(MIN_COVARIANCE)
            }
        };
        self.pp = clamp_diag(self.pp);
        self.vv = clamp_diag(self.vv);
        if self.pv.is_nan() || self.pv > MAX_COVARIANCE {
            self.pv = MAX_COVARIANCE;
        }
    }
}

#[derive(Clone, Debug)]
struct Filter {
    axes: [Axis; 3],
    next_predict_ns: u64,
    last_predict_ns: u64,
    last_noise_ns: u64,
    acc_sum_g: [f64; 3],
    acc_n: u32,
    /// The last averaged sample (`axis3fSubSamplerFinalize` keeps it when nothing arrived).
    acc_avg_g: [f64; 3],
}

/// See the module doc.
#[derive(Clone, Debug, Default)]
pub(super) struct Estimator {
    estimate: StateEstimate,
    filter: Option<Filter>,
    pending: Vec<[f64; 3]>,
}

impl Estimator {
    /// An external position arrived; it is used at the next tick.
    pub fn enqueue_position(&mut self, pos_m: [f64; 3]) {
        self.pending.push(pos_m);
    }

    pub fn estimate(&self) -> StateEstimate {
        self.estimate
    }

    /// Whether external positions drive the estimate.
    pub fn fused(&self) -> bool {
        self.filter.is_some()
    }

    /// One stabiliser tick. `truth`: the plant's position and velocity if it supplies them;
    /// `rpy_rad`: right-handed attitude; `acc_g`: body specific force; `flying`: the
    /// supervisor's is-flying flag of the previous tick.
    pub fn step(
        &mut self,
        now_ns: u64,
        truth: Option<([f64; 3], [f64; 3])>,
        rpy_rad: [f64; 3],
        acc_g: [f64; 3],
        flying: bool,
    ) {
        if self.filter.is_none() {
            if self.pending.is_empty() {
                if let Some((pos_m, vel_m_s)) = truth {
                    self.estimate = StateEstimate { pos_m, vel_m_s };
                }
                return;
            }
            // First external position: start the filter from the current estimate with the
            // EKF's initial variances.
            let e = self.estimate;
            let axis = |i: usize, std_p: f64, q: f64| Axis::new(e.pos_m[i], e.vel_m_s[i], std_p, q);
            self.filter = Some(Filter {
                axes: [
                    axis(0, STD_INITIAL_POS_XY, PROC_NOISE_ACC_XY),
                    axis(1, STD_INITIAL_POS_XY, PROC_NOISE_ACC_XY),
                    axis(2, STD_INITIAL_POS_Z, PROC_NOISE_ACC_Z),
                ],
                next_predict_ns: now_ns,
                last_predict_ns: now_ns,
                last_noise_ns: now_ns,
                acc_sum_g: [0.0; 3],
                acc_n: 0,
                acc_avg_g: acc_g,
            });
        }
        let Some(f) = self.filter.as_mut() else {
            return;
        };
        // estimator_kalman.c's task order: predict (when due), process noise, queued
        // measurements (this tick's IMU sample among them), externalise.
        if now_ns >= f.next_predict_ns {
            if f.acc_n > 0 {
                f.acc_avg_g = f.acc_sum_g.map(|s| s / f64::from(f.acc_n));
            }
            f.acc_sum_g = [0.0; 3];
            f.acc_n = 0;
            let dt = now_ns.saturating_sub(f.last_predict_ns) as f64 * 1e-9;
            if dt > 0.0 {
                let [ax, ay, az] = f.acc_avg_g;
                // In flight only the thrust axis is trusted (predictDt, quadIsFlying).
                let body = if flying { [0.0, 0.0, az] } else { [ax, ay, az] };
                let r = Rot::from_rpy(rpy_rad[0], rpy_rad[1], rpy_rad[2]).m;
                for (i, axis) in f.axes.iter_mut().enumerate() {
                    let specific = r[i][0] * body[0] + r[i][1] * body[1] + r[i][2] * body[2];
                    let gravity = if i == 2 { 1.0 } else { 0.0 };
                    axis.predict((specific - gravity) * G, dt);
                }
            }
            f.last_predict_ns = now_ns;
            f.next_predict_ns = now_ns + PREDICT_PERIOD_NS;
        }
        let dt = now_ns.saturating_sub(f.last_noise_ns) as f64 * 1e-9;
        if dt > 0.0 {
            for axis in &mut f.axes {
                axis.add_process_noise(dt);
            }
            f.last_noise_ns = now_ns;
        }
        for m in self.pending.drain(..) {
            for (axis, &z) in f.axes.iter_mut().zip(m.iter()) {
                axis.update(z, EXT_POS_STD_M);
            }
        }
        for (i, &a) in acc_g.iter().enumerate() {
            f.acc_sum_g[i] += a;
        }
        f.acc_n += 1;
        self.estimate = StateEstimate {
            pos_m: f.axes.map(|a| a.p),
            vel_m_s: f.axes.map(|a| a.v),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK_NS: u64 = 2_000_000;

    #[test]
    fn follows_the_truth_until_an_external_position_arrives() {
        let mut e = Estimator::default();
        let truth = ([1.0, 2.0, 3.0], [0.1, 0.2, 0.3]);
        e.step(0, Some(truth), [0.0; 3], [0.0, 0.0, 1.0], false);
        assert_eq!(e.estimate().pos_m, truth.0);
        assert_eq!(e.estimate().vel_m_s, truth.1);
        assert!(!e.fused());
        e.enqueue_position([1.5, 2.0, 3.0]);
        e.step(TICK_NS, Some(truth), [0.0; 3], [0.0, 0.0, 1.0], false);
        assert!(e.fused());
        // The xy prior is wide (100 m std): the first fix is taken almost as is.
        assert!(
            (e.estimate().pos_m[0] - 1.5).abs() < 1e-6,
            "{:?}",
            e.estimate()
        );
    }

    #[test]
    fn converges_on_a_still_external_position_and_holds_it() {
        let mut e = Estimator::default();
        e.step(
            0,
            Some(([0.0; 3], [0.0; 3])),
            [0.0; 3],
            [0.0, 0.0, 1.0],
            false,
        );
        let target = [0.3, -0.2, 0.05];
        for k in 1..=500u64 {
            if k.is_multiple_of(5) {
                e.enqueue_position(target);
            }
            e.step(k * TICK_NS, None, [0.0; 3], [0.0, 0.0, 1.0], false);
        }
        let s = e.estimate();
        for ((p, v), want) in s.pos_m.iter().zip(s.vel_m_s).zip(target) {
            assert!((p - want).abs() < 1e-3, "{s:?}");
            assert!(v.abs() < 1e-2, "{s:?}");
        }
    }

    #[test]
    fn a_delayed_measurement_shows_as_lag_and_stale_ones_dead_reckon() {
        // Moving at 1 m/s along x, measured 20 ms late: the estimate lags by about the delay.
        let mut e = Estimator::default();
        e.step(
            0,
            Some(([0.0; 3], [1.0, 0.0, 0.0])),
            [0.0; 3],
            [0.0, 0.0, 1.0],
            true,
        );
        let mut truth_x = 0.0;
        for k in 1..=1000u64 {
            let t = (k * TICK_NS) as f64 * 1e-9;
            truth_x = t;
            if k.is_multiple_of(5) {
                e.enqueue_position([t - 0.02, 0.0, 0.0]);
            }
            e.step(k * TICK_NS, None, [0.0; 3], [0.0, 0.0, 1.0], true);
        }
        let lag = truth_x - e.estimate().pos_m[0];
        assert!(lag > 0.005 && lag < 0.025, "lag {lag}");
        // No more measurements: the estimate keeps integrating its velocity.
        let x0 = e.estimate().pos_m[0];
        for k in 1001..=1250u64 {
            e.step(k * TICK_NS, None, [0.0; 3], [0.0, 0.0, 1.0], true);
        }
        let moved = e.estimate().pos_m[0] - x0;
        assert!(
            (moved - 0.5).abs() < 0.05,
            "dead reckoning moved {moved} m in 0.5 s"
        );
    }
}
