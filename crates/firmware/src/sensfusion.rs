//! The attitude estimate a Crazyflie with no positioning deck flies on: the complementary
//! estimator (`src/modules/src/estimator/estimator_complementary.c` @2a18fc29), the default
//! (`DEFAULT_ESTIMATOR StateEstimatorTypeComplementary`, `estimator/estimator.c:19`; only a
//! deck that names `requiredEstimator`, e.g. the flow deck, switches to the Kalman filter),
//! which runs `sensfusion6.c`'s Mahony filter at 250 Hz (`ATTITUDE_UPDATE_RATE RATE_250_HZ`,
//! `estimator_complementary.c:46`) on the filtered gyro and accelerometer of [`crate::sensors`].
//!
//! [`AttitudeEstimation`] is the whole path the firmware model runs when it flies on its own
//! estimate ([`crate::Firmware::set_attitude_estimation`]): sensor processing every tick, the
//! Mahony update every `rate / 250` ticks, the Euler angles of `sensfusion6GetEulerRPY`.
//! With no magnetometer yaw is the integral of the gyro: it starts at 0 at power-on and drifts
//! with the residual gyro bias.

use crate::ImuSample;
use crate::sensors::SensorProcessing;

/// `TWO_KP_DEF (2.0f * 0.4f)` (`sensfusion6.c:38`), the Mahony build (no
/// `CONFIG_IMU_MADGWICK_QUATERNION` in the default config).
pub const TWO_KP: f64 = 2.0 * 0.4;
/// `TWO_KI_DEF (2.0f * 0.001f)` (`sensfusion6.c:39`).
pub const TWO_KI: f64 = 2.0 * 0.001;
/// `ATTITUDE_UPDATE_RATE RATE_250_HZ` (`estimator_complementary.c:46`).
pub const ATTITUDE_UPDATE_HZ: f64 = 250.0;

/// `sensfusion6.c`'s Mahony filter (`sensfusion6UpdateQImpl`, `:181-252`): quaternion of the
/// body in the world (w, x, y, z), integral feedback, gravity direction.
#[derive(Clone, Debug, PartialEq)]
pub struct SensFusion6 {
    q: [f64; 4],
    integral_fb: [f64; 3],
    /// Estimated gravity direction in the body frame (`estimatedGravityDirection`, `:303-308`).
    grav: [f64; 3],
    pub two_kp: f64,
    pub two_ki: f64,
}

impl Default for SensFusion6 {
    fn default() -> Self {
        Self {
            // `qw = 1.0f` and the rest 0 (`:52-55`): level, yaw 0 at power-on.
            q: [1.0, 0.0, 0.0, 0.0],
            integral_fb: [0.0; 3],
            grav: [0.0, 0.0, 1.0],
            two_kp: TWO_KP,
            two_ki: TWO_KI,
        }
    }
}

impl SensFusion6 {
    /// `sensfusion6UpdateQ` (`:88-97`): gyro in deg/s, accelerometer in g, `dt_s` the update
    /// period.
    pub fn update(&mut self, gyro_deg_s: [f64; 3], acc_g: [f64; 3], dt_s: f64) {
        let [mut gx, mut gy, mut gz] = gyro_deg_s.map(f64::to_radians);
        let [qw, qx, qy, qz] = self.q;
        let [ax, ay, az] = acc_g;
        // Feedback only with a valid accelerometer sample (`:193`).
        if !(ax == 0.0 && ay == 0.0 && az == 0.0) {
            let n = (ax * ax + ay * ay + az * az).sqrt();
            let (ax, ay, az) = (ax / n, ay / n, az / n);
            // Half the estimated gravity direction (`:202-204`).
            let hvx = qx * qz - qw * qy;
            let hvy = qw * qx + qy * qz;
            let hvz = qw * qw - 0.5 + qz * qz;
            // Measured × estimated (`:207-209`).
            let ex = ay * hvz - az * hvy;
            let ey = az * hvx - ax * hvz;
            let ez = ax * hvy - ay * hvx;
            if self.two_ki > 0.0 {
                self.integral_fb[0] += self.two_ki * ex * dt_s;
                self.integral_fb[1] += self.two_ki * ey * dt_s;
                self.integral_fb[2] += self.two_ki * ez * dt_s;
                gx += self.integral_fb[0];
                gy += self.integral_fb[1];
                gz += self.integral_fb[2];
            } else {
                self.integral_fb = [0.0; 3];
            }
            gx += self.two_kp * ex;
            gy += self.two_kp * ey;
            gz += self.two_kp * ez;
        }
        // q̇ = ½ q ⊗ (0, ω), first-order step, renormalised (`:235-251`).
        let (hx, hy, hz) = (gx * 0.5 * dt_s, gy * 0.5 * dt_s, gz * 0.5 * dt_s);
        let q = [
            qw + (-qx * hx - qy * hy - qz * hz),
            qx + (qw * hx + qy * hz - qz * hy),
            qy + (qw * hy - qx * hz + qz * hx),
            qz + (qw * hz + qx * hy - qy * hx),
        ];
        let n = q.iter().map(|c| c * c).sum::<f64>().sqrt();
        self.q = q.map(|c| c / n);
        let [qw, qx, qy, qz] = self.q;
        self.grav = [
            2.0 * (qx * qz - qw * qy),
            2.0 * (qw * qx + qy * qz),
            qw * qw - qx * qx - qy * qy + qz * qz,
        ];
    }

    /// `sensfusion6GetEulerRPY` (`:263-275`): roll, pitch and yaw in degrees, in the legacy
    /// frame the stabiliser uses (pitch positive nose up: `asin` of the gravity's x component).
    pub fn euler_rpy_deg(&self) -> [f64; 3] {
        let [qw, qx, qy, qz] = self.q;
        let [gx, gy, gz] = self.grav;
        let yaw = (2.0 * (qw * qz + qx * qy)).atan2(qw * qw + qx * qx - qy * qy - qz * qz);
        let pitch = gx.clamp(-1.0, 1.0).asin();
        let roll = gy.atan2(gz);
        [roll.to_degrees(), pitch.to_degrees(), yaw.to_degrees()]
    }

    /// The quaternion (w, x, y, z) of the body in the world.
    pub fn quaternion(&self) -> [f64; 4] {
        self.q
    }
}

/// Sensor processing and the complementary estimator together: what replaces the true attitude
/// in an [`ImuSample`] when the firmware model flies on its own estimate.
#[derive(Clone, Debug)]
pub struct AttitudeEstimation {
    pub sensors: SensorProcessing,
    pub fusion: SensFusion6,
    /// Ticks (calls) between Mahony updates.
    divider: u64,
    /// Ticks since the stabiliser loop started (the filter runs on tick 0, `divider`, ...).
    ticks: u64,
    update_dt_s: f64,
    /// The estimate of the last update (legacy frame, degrees).
    rpy_deg: [f64; 3],
}

impl AttitudeEstimation {
    /// `rate_hz`: the rate at which samples arrive (the firmware model's tick).
    pub fn new(rate_hz: f64) -> Self {
        let divider = (rate_hz / ATTITUDE_UPDATE_HZ).round().max(1.0) as u64;
        Self {
            sensors: SensorProcessing::new(rate_hz),
            fusion: SensFusion6::default(),
            divider,
            ticks: 0,
            update_dt_s: divider as f64 / rate_hz,
            rpy_deg: [0.0; 3],
        }
    }

    /// Whether the gyro bias is found (the stabiliser loop runs only then).
    pub fn calibrated(&self) -> bool {
        self.sensors.calibrated()
    }

    /// One tick: `raw`'s gyro and accelerometer are the chip's readings. Returns the sample the
    /// stabiliser sees: filtered gyro and accelerometer, the estimator's attitude; position and
    /// velocity pass through. Before the bias is found the estimator does not run (its loop
    /// has not started) and the attitude stays at the power-on zero.
    pub fn apply(&mut self, raw: &ImuSample) -> ImuSample {
        let (gyro, acc) = self.sensors.process(raw.gyro_deg_s, raw.acc_g);
        if self.sensors.calibrated() {
            if self.ticks.is_multiple_of(self.divider) {
                self.fusion.update(gyro, acc, self.update_dt_s);
                self.rpy_deg = self.fusion.euler_rpy_deg();
            }
            self.ticks += 1;
        }
        let [roll_deg, pitch_deg, yaw_deg] = self.rpy_deg;
        ImuSample {
            roll_deg,
            pitch_deg,
            yaw_deg,
            gyro_deg_s: gyro,
            acc_g: acc,
            nav: raw.nav,
        }
    }

    /// The estimate of the last update (roll, legacy pitch, yaw; degrees).
    pub fn attitude_deg(&self) -> [f64; 3] {
        self.rpy_deg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gravity in the body frame of a quad at `roll`, right-handed `pitch` (rad), in g.
    fn gravity_body(roll: f64, pitch: f64) -> [f64; 3] {
        [
            -pitch.sin(),
            roll.sin() * pitch.cos(),
            roll.cos() * pitch.cos(),
        ]
    }

    #[test]
    fn converges_to_a_held_tilt_from_level() {
        let mut f = SensFusion6::default();
        let (roll, pitch) = (10f64.to_radians(), -6f64.to_radians());
        for _ in 0..(250 * 20) {
            f.update([0.0; 3], gravity_body(roll, pitch), 1.0 / 250.0);
        }
        let [r, p, _] = f.euler_rpy_deg();
        assert!((r - 10.0).abs() < 0.1, "roll {r}");
        // Legacy pitch: the negated right-handed pitch.
        assert!((p - 6.0).abs() < 0.1, "pitch {p}");
    }

    #[test]
    fn gyro_integrates_yaw() {
        let mut f = SensFusion6::default();
        for _ in 0..250 {
            f.update([0.0, 0.0, 30.0], [0.0, 0.0, 1.0], 1.0 / 250.0);
        }
        let [_, _, y] = f.euler_rpy_deg();
        assert!((y - 30.0).abs() < 0.1, "yaw {y}");
    }
}

#[cfg(test)]
mod through_the_firmware {
    use crate::{Firmware, ImuSample};
    use depthpilot_types::scene::FirmwareGains;

    const RATE_HZ: f64 = 500.0;

    fn raw(gyro_deg_s: [f64; 3], roll_rad: f64) -> ImuSample {
        ImuSample {
            gyro_deg_s,
            acc_g: [0.0, roll_rad.sin(), roll_rad.cos()],
            // The true attitude is not what the firmware flies on: make it wrong on purpose.
            roll_deg: 99.0,
            pitch_deg: 99.0,
            yaw_deg: 99.0,
            nav: None,
        }
    }

    #[test]
    fn firmware_flies_on_its_estimate_which_converges_when_still_and_tracks_a_tilt() {
        let mut fw = Firmware::new(FirmwareGains::Current, RATE_HZ, 0);
        fw.set_attitude_estimation(true);
        let bias = [0.7, -0.4, 0.25];
        let dt_ns = (1e9 / RATE_HZ) as u64;
        let mut t_ns = 0;
        let mut tick = |fw: &mut Firmware, s: ImuSample| {
            let m = fw.step(t_ns, &s);
            t_ns += dt_ns;
            m
        };
        // Still and level for 3 s: the bias is found, the estimate is level.
        for _ in 0..1500 {
            let m = tick(&mut fw, raw(bias, 0.0));
            if !fw.attitude_estimation().is_some_and(|e| e.calibrated()) {
                assert_eq!(m, [0; 4], "motors run before calibration");
            }
        }
        let est = fw.attitude_estimation().map(|e| e.calibrated());
        assert_eq!(est, Some(true));
        let [r, p, y] = fw.attitude_deg();
        assert!(
            r.abs() < 0.1 && p.abs() < 0.1 && y.abs() < 0.1,
            "{r} {p} {y}"
        );
        // Roll to 20° at 20°/s, then hold: the estimate follows within a degree and settles.
        let rate = 20.0;
        let mut roll = 0.0f64;
        let mut worst: f64 = 0.0;
        for _ in 0..500 {
            roll += rate / RATE_HZ;
            tick(
                &mut fw,
                raw([bias[0] + rate, bias[1], bias[2]], roll.to_radians()),
            );
            worst = worst.max((fw.attitude_deg()[0] - roll).abs());
        }
        assert!(worst < 1.0, "tracking error {worst}°");
        for _ in 0..2500 {
            tick(&mut fw, raw(bias, roll.to_radians()));
        }
        let r = fw.attitude_deg()[0];
        assert!((r - 20.0).abs() < 0.2, "held roll {r}");
    }

    #[test]
    fn off_is_the_truth() {
        let mut fw = Firmware::new(FirmwareGains::Current, RATE_HZ, 0);
        let mut s = raw([0.0; 3], 0.0);
        s.roll_deg = 12.0;
        fw.step(0, &s);
        assert_eq!(fw.attitude_deg()[0], 12.0);
        assert!(fw.attitude_estimation().is_none());
    }
}
