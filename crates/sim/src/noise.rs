//! Seeded random streams. Each random process of a flight (sensor noise, link drops, gusts) has
//! its own stream derived from the scene seed, so changing one never shifts the others.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Stream ids.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Sensor = 1,
    Link = 2,
    Gusts = 3,
    Camera = 4,
    Variations = 5,
    Bus = 6,
    /// Realism layer (`realism`): each item its own stream, so switching one item never shifts
    /// another's draws, and an ideal flight draws nothing from any of them.
    Imu = 7,
    Battery = 8,
    MotorSpread = 9,
    Turbulence = 10,
    Downwash = 11,
    KinectSystematic = 12,
    /// A learning environment's per-episode draws (`depthpilot-gym`: a tumble's attitude).
    Episode = 13,
}

/// A deterministic random source.
#[derive(Clone, Debug)]
pub struct Noise {
    rng: ChaCha8Rng,
    /// The second normal of the last Box–Muller pair ([`Noise::normal`]).
    spare: Option<f64>,
}

impl Noise {
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream as u64);
        Self { rng, spare: None }
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// Standard normal (Box–Muller; one draw per call keeps streams easy to reason about).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Standard normal, using both outputs of each Box–Muller pair: half the logarithms, roots
    /// and sines of [`Noise::gaussian`] per draw. The realism layer's per-step processes use it;
    /// the older streams keep `gaussian`, so their flights stay bit-identical.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.uniform() < p
    }

    /// A fast source of standard normals for per-pixel noise, seeded from this stream.
    pub fn fast_gaussians(&mut self) -> FastGaussian {
        let table = (0..FAST_TABLE).map(|_| self.gaussian() as f32).collect();
        let mut state = self.rng.random::<u64>();
        if state == 0 {
            state = 0x9E37_79B9_7F4A_7C15;
        }
        FastGaussian::new(table, state)
    }
}

const FAST_TABLE: usize = 1 << 16;

/// Standard normals drawn from a table of 65 536 Box–Muller samples with a xorshift64* index: a
/// few nanoseconds per draw, deterministic, and plenty random for sensor noise (not for statistics
/// that need more than 2¹⁶ distinct values).
#[derive(Clone, Debug)]
pub struct FastGaussian {
    table: Vec<f32>,
    /// The largest |draw| the table can give.
    max_abs: f64,
    state: u64,
}

impl FastGaussian {
    fn new(table: Vec<f32>, state: u64) -> Self {
        let max_abs = table.iter().fold(0.0f64, |m, &g| m.max(f64::from(g).abs()));
        Self {
            table,
            max_abs,
            state,
        }
    }

    /// Advances the source past `n` draws without making them.
    pub fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.next_u64();
        }
    }

    /// The largest |draw| this source can give (a bound for culling, not a statistic).
    pub fn max_abs(&self) -> f64 {
        self.max_abs
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[inline]
    pub fn gaussian(&mut self) -> f64 {
        let i = (self.next_u64() >> 48) as usize;
        f64::from(self.table[i])
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_same_numbers() {
        let mut a = Noise::new(7, Stream::Sensor);
        let mut b = Noise::new(7, Stream::Sensor);
        let mut c = Noise::new(7, Stream::Link);
        let (x, y, z) = (a.gaussian(), b.gaussian(), c.gaussian());
        assert_eq!(x.to_bits(), y.to_bits());
        assert_ne!(x.to_bits(), z.to_bits());
    }

    #[test]
    fn gaussian_has_unit_variance() {
        let mut n = Noise::new(1, Stream::Sensor);
        let k = 20_000;
        let xs: Vec<f64> = (0..k).map(|_| n.gaussian()).collect();
        let mean = xs.iter().sum::<f64>() / k as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / k as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
