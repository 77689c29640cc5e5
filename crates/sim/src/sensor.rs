//! The oracle position sensor: ground truth plus Gaussian noise, sampled at a fixed rate, each
//! sample delivered after a latency (plus jitter) or dropped. It stands in the depth-camera seam
//! until the synthetic Kinect arrives.

use crate::delay::DelayLine;
use crate::noise::{Noise, Stream};
use depthpilot_types::scene::OracleConfig;
use depthpilot_types::{Measurement, Vec3};

pub struct OracleSensor {
    cfg: OracleConfig,
    period_ns: u64,
    next_capture_ns: u64,
    seq: u64,
    noise: Noise,
    /// (delivery time, measurement), in capture order.
    in_flight: DelayLine<Measurement>,
    pub captured: u64,
    pub dropped: u64,
}

impl OracleSensor {
    pub fn new(cfg: &OracleConfig, seed: u64) -> Self {
        Self {
            period_ns: (1e9 / cfg.rate_hz).round() as u64,
            cfg: cfg.clone(),
            next_capture_ns: 0,
            seq: 0,
            noise: Noise::new(seed, Stream::Sensor),
            in_flight: DelayLine::default(),
            captured: 0,
            dropped: 0,
        }
    }

    /// Is a capture due at `now_ns`?
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_capture_ns
    }

    /// Switched on at `now_ns`: the first sample is then.
    pub fn start_at(&mut self, now_ns: u64) {
        self.next_capture_ns = self.next_capture_ns.max(now_ns);
    }

    /// The consumer is dead: the sample of `now_ns` is not taken.
    pub fn skip(&mut self) {
        self.next_capture_ns += self.period_ns;
    }

    /// The consumer died: samples in transit are lost.
    pub fn lose_in_flight(&mut self) {
        self.in_flight = DelayLine::default();
    }

    /// Captures the truth at `now_ns`.
    pub fn capture(&mut self, now_ns: u64, pos_m: Vec3, yaw_rad: f64) {
        self.next_capture_ns += self.period_ns;
        self.captured += 1;
        let s = self.cfg.noise_m;
        let noisy = pos_m
            + Vec3::new(
                s * self.noise.gaussian(),
                s * self.noise.gaussian(),
                s * self.noise.gaussian(),
            );
        let yaw = yaw_rad + self.cfg.yaw_noise_deg.to_radians() * self.noise.gaussian();
        let jitter = self.cfg.latency_jitter_s * self.noise.uniform();
        let dropped = self.noise.chance(self.cfg.drop_probability);
        self.seq += 1;
        if dropped {
            self.dropped += 1;
            return;
        }
        let delay_ns = ((self.cfg.latency_s + jitter) * 1e9).round() as u64;
        self.in_flight.push(
            now_ns + delay_ns,
            Measurement {
                stamp_ns: now_ns,
                seq: self.seq,
                pos_in_world_m: noisy,
                yaw_rad: Some(yaw),
            },
        );
    }

    /// Takes the next measurement whose delivery time has come (in delivery order).
    pub fn deliver(&mut self, now_ns: u64) -> Option<Measurement> {
        self.in_flight.pop_due(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_after_latency_at_rate() {
        let cfg = OracleConfig {
            noise_m: 0.0,
            yaw_noise_deg: 0.0,
            rate_hz: 100.0,
            latency_s: 0.025,
            latency_jitter_s: 0.0,
            drop_probability: 0.0,
        };
        let mut s = OracleSensor::new(&cfg, 0);
        let mut got = Vec::new();
        for ms in 0..100u64 {
            let now = ms * 1_000_000;
            if s.due(now) {
                s.capture(now, Vec3::new(ms as f64, 0.0, 0.0), 0.0);
            }
            while let Some(m) = s.deliver(now) {
                got.push((now, m));
            }
        }
        assert_eq!(s.captured, 10);
        assert_eq!(got.len(), 8, "captures at 80 and 90 ms are still in flight");
        for (now, m) in got {
            assert_eq!(now - m.stamp_ns, 25_000_000);
            assert_eq!(m.pos_in_world_m.x, (m.stamp_ns / 1_000_000) as f64);
        }
    }
}
