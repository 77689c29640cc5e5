//! The firmware's processing of the BMI088's raw samples before anything else sees them
//! (`src/hal/src/sensors_bmi088_bmp3xx.c` @2a18fc29, `sensorsTask`): the gyro bias found once
//! while the quad sits still, the accelerometer's scale found on the samples after it, and a
//! second-order Butterworth low-pass on every axis (`src/utils/src/filter.c` @2a18fc29).
//!
//! Samples arrive in the firmware's units (deg/s, g) and are converted back to the chip's
//! counts at the configured ranges, where the firmware's thresholds live.
//!
//! Model difference: the real task runs at the BMI088's interrupt rate, 1 kHz
//! (`SENSORS_READ_RATE_HZ`, :61), and designs its filters for 1 kHz (:546-547). Here it runs
//! at the rate [`SensorProcessing::new`] is given (the firmware model's tick, 500 Hz), with the
//! filters designed for that rate, so the cut-off frequencies are the firmware's.

/// `SENSORS_BMI088_DEG_PER_LSB_CFG`: the ±2000 °/s range (`:68-69`).
pub const GYRO_DEG_S_PER_LSB: f64 = 2.0 * 2000.0 / 65536.0;
/// `SENSORS_BMI088_G_PER_LSB_CFG`: the ±24 g range (`:71-73`).
pub const ACC_G_PER_LSB: f64 = 2.0 * 24.0 / 65536.0;
/// `SENSORS_NBR_OF_BIAS_SAMPLES` (`:83`): the bias buffer's length.
const BIAS_SAMPLES: usize = 512;
/// `GYRO_VARIANCE_BASE` (`:86-89`): the variance (counts²) under which, on every axis, the
/// buffer's mean is taken as the bias.
const GYRO_VARIANCE_THRESHOLD_LSB2: f64 = 100.0;
/// `GYRO_MIN_BIAS_TIMEOUT_MS` (`:80`), compared with the tick count since boot at `:858`
/// (`varianceSampleTime` starts at 0): no bias before 1 s after boot.
const GYRO_MIN_BIAS_TIMEOUT_S: f64 = 1.0;
/// `SENSORS_ACC_SCALE_SAMPLES` (`:91`).
const ACC_SCALE_SAMPLES: u32 = 200;
/// `GYRO_LPF_CUTOFF_FREQ` (`:140`).
pub const GYRO_LPF_CUTOFF_HZ: f64 = 80.0;
/// `ACCEL_LPF_CUTOFF_FREQ` (`:141`), the flight mode's (`:981`).
pub const ACC_LPF_CUTOFF_HZ: f64 = 30.0;

/// `lpf2pData` (`filter.c:65-101`): a two-pole Butterworth low-pass, bilinear transform with
/// pre-warping, direct form II.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lpf2p {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    d1: f64,
    d2: f64,
}

impl Lpf2p {
    /// `lpf2pSetCutoffFreq` (`filter.c:74-86`).
    pub fn new(sample_hz: f64, cutoff_hz: f64) -> Self {
        let ohm = (std::f64::consts::PI * cutoff_hz / sample_hz).tan();
        let k = 2.0 * std::f64::consts::FRAC_PI_4.cos();
        let c = 1.0 + k * ohm + ohm * ohm;
        let b0 = ohm * ohm / c;
        Self {
            b0,
            b1: 2.0 * b0,
            b2: b0,
            a1: 2.0 * (ohm * ohm - 1.0) / c,
            a2: (1.0 - k * ohm + ohm * ohm) / c,
            d1: 0.0,
            d2: 0.0,
        }
    }

    /// `lpf2pApply` (`filter.c:88-101`), with its guard against a non-finite state.
    pub fn apply(&mut self, x: f64) -> f64 {
        let mut d0 = x - self.d1 * self.a1 - self.d2 * self.a2;
        if !d0.is_finite() {
            d0 = x;
        }
        let y = d0 * self.b0 + self.d1 * self.b1 + self.d2 * self.b2;
        self.d2 = self.d1;
        self.d1 = d0;
        y
    }
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct SensorProcessing {
    dt_s: f64,
    samples: u64,
    /// `gyroBiasRunning`'s ring buffer, in counts.
    buffer: Vec<[f64; 3]>,
    head: usize,
    filled: bool,
    /// `gyroBias` in counts; zero until found (the firmware subtracts its zero-initialised value).
    gyro_bias_lsb: [f64; 3],
    bias_found: bool,
    acc_scale_sum: f64,
    acc_scale_count: u32,
    acc_scale: f64,
    gyro_lpf: [Lpf2p; 3],
    acc_lpf: [Lpf2p; 3],
}

impl SensorProcessing {
    pub fn new(rate_hz: f64) -> Self {
        Self {
            dt_s: 1.0 / rate_hz,
            samples: 0,
            buffer: vec![[0.0; 3]; BIAS_SAMPLES],
            head: 0,
            filled: false,
            gyro_bias_lsb: [0.0; 3],
            bias_found: false,
            acc_scale_sum: 0.0,
            acc_scale_count: 0,
            // `accScale = 1` (`:135`) until found.
            acc_scale: 1.0,
            gyro_lpf: [Lpf2p::new(rate_hz, GYRO_LPF_CUTOFF_HZ); 3],
            acc_lpf: [Lpf2p::new(rate_hz, ACC_LPF_CUTOFF_HZ); 3],
        }
    }

    /// `sensorsAreCalibrated` (`:287-290`): the gyro bias is found. The stabiliser loop does
    /// not start before (`stabilizer.c:302` @2a18fc29).
    pub fn calibrated(&self) -> bool {
        self.bias_found
    }

    /// The gyro bias the firmware subtracts, deg/s.
    pub fn gyro_bias_deg_s(&self) -> [f64; 3] {
        self.gyro_bias_lsb.map(|b| b * GYRO_DEG_S_PER_LSB)
    }

    /// `accScale`: the mean |acc| (g) of the samples after the bias was found.
    pub fn acc_scale(&self) -> f64 {
        self.acc_scale
    }

    /// One sample of `sensorsTask` (`:311-346`): raw gyro (deg/s) and accelerometer (g) in,
    /// bias-corrected, scaled and filtered gyro (deg/s) and accelerometer (g) out. The board's
    /// alignment rotations (`sensorsAlignToAirframe`, `sensorsAccAlignToGravity`) are identities
    /// with the default zero trims and are left out.
    pub fn process(&mut self, gyro_deg_s: [f64; 3], acc_g: [f64; 3]) -> ([f64; 3], [f64; 3]) {
        self.samples += 1;
        let gyro_lsb = gyro_deg_s.map(|g| (g / GYRO_DEG_S_PER_LSB).round());
        let acc_lsb = acc_g.map(|a| (a / ACC_G_PER_LSB).round());
        self.process_gyro_bias(gyro_lsb);
        if self.bias_found {
            self.process_acc_scale(acc_lsb);
        }
        let mut gyro = [0.0; 3];
        let mut acc = [0.0; 3];
        for i in 0..3 {
            let g = (gyro_lsb[i] - self.gyro_bias_lsb[i]) * GYRO_DEG_S_PER_LSB;
            gyro[i] = self.gyro_lpf[i].apply(g);
            let a = acc_lsb[i] * ACC_G_PER_LSB / self.acc_scale;
            acc[i] = self.acc_lpf[i].apply(a);
        }
        (gyro, acc)
    }

    /// `processGyroBias` + `sensorsFindBiasValue` (`:747-766`, `:846-870`): the buffer's mean
    /// once its variance is under the threshold on every axis, searched for until found.
    fn process_gyro_bias(&mut self, gyro_lsb: [f64; 3]) {
        self.buffer[self.head] = gyro_lsb;
        self.head += 1;
        if self.head >= BIAS_SAMPLES {
            self.head = 0;
            self.filled = true;
        }
        let since_boot_s = self.samples as f64 * self.dt_s;
        if self.bias_found || !self.filled || since_boot_s <= GYRO_MIN_BIAS_TIMEOUT_S {
            return;
        }
        let n = BIAS_SAMPLES as f64;
        let mut mean = [0.0; 3];
        let mut var = [0.0; 3];
        for i in 0..3 {
            let sum: f64 = self.buffer.iter().map(|s| s[i]).sum();
            let sum_sq: f64 = self.buffer.iter().map(|s| s[i] * s[i]).sum();
            mean[i] = sum / n;
            var[i] = sum_sq / n - mean[i] * mean[i];
        }
        if var.iter().all(|&v| v < GYRO_VARIANCE_THRESHOLD_LSB2) {
            self.gyro_bias_lsb = mean;
            self.bias_found = true;
        }
    }

    /// `processAccScale` (`:679-694`).
    fn process_acc_scale(&mut self, acc_lsb: [f64; 3]) {
        if self.acc_scale_count >= ACC_SCALE_SAMPLES {
            return;
        }
        let norm = acc_lsb
            .iter()
            .map(|a| (a * ACC_G_PER_LSB).powi(2))
            .sum::<f64>()
            .sqrt();
        self.acc_scale_sum += norm;
        self.acc_scale_count += 1;
        if self.acc_scale_count == ACC_SCALE_SAMPLES {
            self.acc_scale = self.acc_scale_sum / f64::from(ACC_SCALE_SAMPLES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpf_passes_dc_and_cuts_above_the_cutoff() {
        let mut f = Lpf2p::new(500.0, 80.0);
        let mut y = 0.0;
        for _ in 0..500 {
            y = f.apply(1.0);
        }
        assert!((y - 1.0).abs() < 1e-9, "dc gain {y}");
        // 200 Hz at 500 Hz sampling: well above 80 Hz, attenuated by more than 10 dB.
        let mut f = Lpf2p::new(500.0, 80.0);
        let mut peak: f64 = 0.0;
        for k in 0..2000 {
            let x = (std::f64::consts::TAU * 200.0 * k as f64 / 500.0).sin();
            let y = f.apply(x);
            if k > 1000 {
                peak = peak.max(y.abs());
            }
        }
        assert!(peak < 0.3, "gain at 200 Hz {peak}");
    }

    #[test]
    fn bias_is_found_after_one_second_when_still_and_not_when_shaken() {
        let mut s = SensorProcessing::new(500.0);
        let bias = [0.5, -0.3, 0.8];
        for k in 0..600 {
            s.process(bias, [0.0, 0.0, 1.0]);
            if k < 499 {
                assert!(!s.calibrated(), "found at sample {k}");
            }
        }
        assert!(s.calibrated());
        for (found, want) in s.gyro_bias_deg_s().iter().zip(bias) {
            assert!((found - want).abs() <= GYRO_DEG_S_PER_LSB, "{found} {want}");
        }
        let mut shaken = SensorProcessing::new(500.0);
        for k in 0..2000 {
            let swing = if k % 2 == 0 { 5.0 } else { -5.0 };
            shaken.process([swing, 0.0, 0.0], [0.0, 0.0, 1.0]);
        }
        assert!(!shaken.calibrated());
    }

    #[test]
    fn acc_scale_normalises_gravity_to_one_g() {
        let mut s = SensorProcessing::new(500.0);
        let mut acc = [0.0; 3];
        for _ in 0..2000 {
            (_, acc) = s.process([0.0; 3], [0.0, 0.0, 1.02]);
        }
        assert!((s.acc_scale() - 1.02).abs() < 1e-3, "{}", s.acc_scale());
        assert!((acc[2] - 1.0).abs() < 1e-3, "{acc:?}");
    }
}
