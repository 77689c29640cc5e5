//! The Crazyflie 2.1's BMI088 (Bosch Sensortec, data sheet BST-BMI088-DS001, rev. 1.3 / 1.4,
//! §1 "Specification"): what its gyroscope and accelerometer read, given the true body rates and
//! specific force: white noise at the data sheet's noise densities, a turn-on offset per axis
//! drawn once, a slow offset drift, and the output quantised to the ranges the firmware sets.
//!
//! Sampling: one reading per firmware tick. The white noise is drawn with standard deviation
//! `density · √(rate / 2)`, which keeps the data sheet's density flat up to the Nyquist
//! frequency of the rate the firmware reads at: the band the estimator and the rate loop see.
//! (The chip's own output filter, 116 Hz for the gyro at ODR 1 kHz and ≈145 Hz for the
//! accelerometer at OSR4/1.6 kHz as the firmware configures it, `sensors_bmi088_bmp3xx.c:411`,
//! `:450-452` @2a18fc29, passes about the same band.)
//!
//! All draws come from `Stream::Imu`; the model exists only when `realism.imu` is on.
//!
//! Data-sheet numbers below are the typical values of the BMI088 data sheet's specification
//! tables (§1.2, accelerometer and gyroscope characteristics) as known to the author; the PDF
//! could not be opened from the machine this was written on, so each number is marked "check
//! against BST-BMI088-DS001 §1.2" until someone reads it off the table. The drift's time scale
//! has no data-sheet figure and is marked UNVERIFIED.

use crate::noise::{Noise, Stream};
use depthpilot_firmware::sensors::{ACC_G_PER_LSB, GYRO_DEG_S_PER_LSB};
use depthpilot_firmware::{Firmware, ImuSample};

/// Gyro rate noise density, 0.014 °/s/√Hz typ. (BST-BMI088-DS001 §1.2, gyroscope table,
/// "Rate noise density"; check against BST-BMI088-DS001 §1.2).
pub const GYRO_NOISE_DENSITY_DEG_S_RTHZ: f64 = 0.014;
/// Accelerometer output noise density, 160 µg/√Hz typ. for x and y, 190 µg/√Hz for z
/// (BST-BMI088-DS001 §1.2, accelerometer table, "Output noise density"; check against BST-BMI088-DS001 §1.2).
pub const ACC_NOISE_DENSITY_G_RTHZ: [f64; 3] = [160e-6, 160e-6, 190e-6];
/// Zero-rate offset, ±1 °/s typ. (§1.2, gyroscope table, "Zero-rate offset"; check). Drawn per axis as
/// a normal with this standard deviation (reading "typ." as one sigma: UNVERIFIED, the data sheet
/// does not define its typical values statistically).
pub const GYRO_TURN_ON_OFFSET_SD_DEG_S: f64 = 1.0;
/// Zero-g offset, ±20 mg typ. (§1.2, accelerometer table, "Zero-g offset"; check), same reading.
pub const ACC_TURN_ON_OFFSET_SD_G: f64 = 0.020;
/// Zero-rate offset change over temperature, 0.015 °/s/K typ. (§1.2, gyroscope table, "Zero-rate
/// offset over temperature" / TCO; check).
pub const GYRO_TCO_DEG_S_K: f64 = 0.015;
/// Zero-g offset temperature drift, 0.2 mg/K typ. (§1.2, accelerometer table, TCO; check).
pub const ACC_TCO_G_K: f64 = 0.2e-3;
/// UNVERIFIED: the board's temperature wander during a flight, as one sigma. The BMI088 sits
/// next to the Crazyflie's regulators and warms when the motors draw current; no measurement of
/// the Crazyflie 2.1's IMU temperature in flight was found. 2 K chosen as a modest wander.
pub const TEMPERATURE_WANDER_SD_K: f64 = 2.0;
/// UNVERIFIED: time constant of that wander (a first-order Gauss–Markov drift). A small PCB's
/// thermal time constant is minutes; 120 s chosen.
pub const DRIFT_TAU_S: f64 = 120.0;

/// One first-order Gauss–Markov process per axis, exactly discretised at the sample period:
/// stationary standard deviation `sd`, time constant `tau_s`.
#[derive(Clone, Debug)]
struct Markov3 {
    x: [f64; 3],
    a: f64,
    drive: f64,
}

impl Markov3 {
    fn new(sd: f64, tau_s: f64, dt_s: f64, noise: &mut Noise) -> Self {
        let a = (-dt_s / tau_s).exp();
        Self {
            // Started from its stationary distribution: the board has been on for a while.
            x: [
                noise.normal() * sd,
                noise.normal() * sd,
                noise.normal() * sd,
            ],
            a,
            drive: sd * (1.0 - a * a).sqrt(),
        }
    }

    fn step(&mut self, noise: &mut Noise) -> [f64; 3] {
        for x in &mut self.x {
            *x = self.a * *x + self.drive * noise.normal();
        }
        self.x
    }
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Bmi088 {
    noise: Noise,
    rate_hz: f64,
    gyro_sd_deg_s: f64,
    acc_sd_g: [f64; 3],
    gyro_offset_deg_s: [f64; 3],
    acc_offset_g: [f64; 3],
    gyro_drift: Markov3,
    acc_drift: Markov3,
}

impl Bmi088 {
    /// A chip read `rate_hz` times a second; its turn-on offsets are drawn here, once.
    pub fn new(seed: u64, rate_hz: f64) -> Self {
        let mut noise = Noise::new(seed, Stream::Imu);
        let dt_s = 1.0 / rate_hz;
        let gyro_offset_deg_s =
            [0.0; 3].map(|_: f64| noise.normal() * GYRO_TURN_ON_OFFSET_SD_DEG_S);
        let acc_offset_g = [0.0; 3].map(|_: f64| noise.normal() * ACC_TURN_ON_OFFSET_SD_G);
        let gyro_drift = Markov3::new(
            GYRO_TCO_DEG_S_K * TEMPERATURE_WANDER_SD_K,
            DRIFT_TAU_S,
            dt_s,
            &mut noise,
        );
        let acc_drift = Markov3::new(
            ACC_TCO_G_K * TEMPERATURE_WANDER_SD_K,
            DRIFT_TAU_S,
            dt_s,
            &mut noise,
        );
        let band = (rate_hz / 2.0).sqrt();
        Self {
            noise,
            rate_hz,
            gyro_sd_deg_s: GYRO_NOISE_DENSITY_DEG_S_RTHZ * band,
            acc_sd_g: ACC_NOISE_DENSITY_G_RTHZ.map(|d| d * band),
            gyro_offset_deg_s,
            acc_offset_g,
            gyro_drift,
            acc_drift,
        }
    }

    /// Standard deviation of one sample's white noise: gyro (°/s), accelerometer (g) per axis.
    pub fn noise_sd(&self) -> (f64, [f64; 3]) {
        (self.gyro_sd_deg_s, self.acc_sd_g)
    }

    /// The turn-on offsets drawn at construction: gyro (°/s), accelerometer (g).
    pub fn turn_on_offsets(&self) -> ([f64; 3], [f64; 3]) {
        (self.gyro_offset_deg_s, self.acc_offset_g)
    }

    /// One reading: true body rates (°/s, x forward, y left, z up) and specific force (g) in;
    /// what the chip's registers give, in the same units, out.
    pub fn read(&mut self, gyro_deg_s: [f64; 3], acc_g: [f64; 3]) -> ([f64; 3], [f64; 3]) {
        let gd = self.gyro_drift.step(&mut self.noise);
        let ad = self.acc_drift.step(&mut self.noise);
        let mut g = [0.0; 3];
        let mut a = [0.0; 3];
        for i in 0..3 {
            let gv = gyro_deg_s[i]
                + self.gyro_offset_deg_s[i]
                + gd[i]
                + self.gyro_sd_deg_s * self.noise.normal();
            let av =
                acc_g[i] + self.acc_offset_g[i] + ad[i] + self.acc_sd_g[i] * self.noise.normal();
            g[i] = quantise(gv, GYRO_DEG_S_PER_LSB, 2000.0);
            a[i] = quantise(av, ACC_G_PER_LSB, 24.0);
        }
        (g, a)
    }
}

/// UNVERIFIED: how long the quad sits still between power-on and take-off. The firmware finds
/// the gyro bias after at least 1 s (`sensors_bmi088_bmp3xx.c:80`, `:858` @2a18fc29) and the
/// complementary filter's attitude settles with a time constant of 1/Kp = 2.5 s
/// (`sensfusion6.c:38`), and the accelerometer scale takes 200 samples more. 3 s chosen: the
/// bias is found (at ~1 s), the scale too, and the estimate has moved most of the way to what the
/// chip's offsets tell it (a client connecting and taking off at once; a longer wait changes
/// only how far the estimate has settled).
pub const SIT_STILL_S: f64 = 3.0;

/// Power-on on the floor: the chip read at rest (`acc_g` the specific force at rest, body
/// frame, g) for [`SIT_STILL_S`], fed to the firmware's sensor processing and estimator
/// ([`Firmware::feed_sensors`]), so the flight starts with the bias found and the estimate
/// settled, as on the bench.
pub fn sit_still_before_flight(chip: &mut Bmi088, fw: &mut Firmware, acc_g: [f64; 3]) {
    let samples = (SIT_STILL_S * chip.rate_hz).round() as u64;
    for _ in 0..samples {
        let (gyro_deg_s, acc) = chip.read([0.0; 3], acc_g);
        fw.feed_sensors(&ImuSample {
            gyro_deg_s,
            acc_g: acc,
            ..ImuSample::default()
        });
    }
}

/// To the register's counts (16 bit, ±`range`) and back.
fn quantise(x: f64, lsb: f64, range: f64) -> f64 {
    (x.clamp(-range, range) / lsb).round() * lsb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn white_noise_sd_is_density_times_root_half_rate() {
        let rate = 500.0;
        let mut imu = Bmi088::new(3, rate);
        let n = 20_000;
        let (gx, az): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|_| {
                let (g, a) = imu.read([0.0; 3], [0.0, 0.0, 1.0]);
                (g[0], a[2])
            })
            .unzip();
        let (_, gsd) = stats(&gx);
        let (_, asd) = stats(&az);
        let want_g = 0.014 * (rate / 2.0f64).sqrt();
        let want_a = 190e-6 * (rate / 2.0f64).sqrt();
        // The drift adds a little over 40 s; quantisation adds lsb²/12.
        assert!(
            (gsd / want_g - 1.0).abs() < 0.08,
            "gyro sd {gsd} want {want_g}"
        );
        assert!(
            (asd / want_a - 1.0).abs() < 0.15,
            "acc sd {asd} want {want_a}"
        );
    }

    #[test]
    fn turn_on_offsets_are_drawn_once_and_repeat_per_seed() {
        let a = Bmi088::new(11, 500.0);
        let b = Bmi088::new(11, 500.0);
        let c = Bmi088::new(12, 500.0);
        assert_eq!(a.turn_on_offsets(), b.turn_on_offsets());
        assert_ne!(a.turn_on_offsets(), c.turn_on_offsets());
        let mut a = a;
        let before = a.turn_on_offsets();
        for _ in 0..1000 {
            a.read([0.0; 3], [0.0, 0.0, 1.0]);
        }
        assert_eq!(a.turn_on_offsets(), before);
        // The offsets are of the data sheet's size: well under 5 sigma.
        let (g, acc) = before;
        assert!(g.iter().all(|x| x.abs() < 5.0) && acc.iter().all(|x| x.abs() < 0.1));
        assert!(g.iter().any(|x| x.abs() > 0.01), "offsets drawn: {g:?}");
    }

    #[test]
    fn mean_reading_is_truth_plus_offset() {
        let mut imu = Bmi088::new(5, 500.0);
        let (g0, _) = imu.turn_on_offsets();
        let xs: Vec<f64> = (0..5000)
            .map(|_| imu.read([10.0, 0.0, 0.0], [0.0, 0.0, 1.0]).0[0])
            .collect();
        let (mean, _) = stats(&xs);
        // Offset plus the drift (sd 0.03 °/s) plus noise's standard error.
        assert!((mean - 10.0 - g0[0]).abs() < 0.15, "{mean} {}", g0[0]);
    }
}
