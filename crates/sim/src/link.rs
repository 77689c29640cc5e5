//! The simulated radio link: CRTP bytes from the off-board side to the firmware, with latency and
//! drops. The bytes are the real legacy-commander packets, encoded and decoded by
//! `depthpilot-crtp`, so the firmware model only ever sees what the wire carries.

use crate::noise::{Noise, Stream};
use depthpilot_types::scene::LinkConfig;
use std::collections::VecDeque;

pub struct SimLink {
    latency_ns: u64,
    drop_probability: f64,
    noise: Noise,
    in_flight: VecDeque<(u64, Vec<u8>)>,
    pub sent: u64,
    pub dropped: u64,
}

impl SimLink {
    pub fn new(cfg: &LinkConfig, seed: u64) -> Self {
        Self {
            latency_ns: (cfg.latency_s * 1e9).round() as u64,
            drop_probability: cfg.drop_probability,
            noise: Noise::new(seed, Stream::Link),
            in_flight: VecDeque::new(),
            sent: 0,
            dropped: 0,
        }
    }

    pub fn send(&mut self, now_ns: u64, packet: &[u8]) {
        self.sent += 1;
        if self.noise.chance(self.drop_probability) {
            self.dropped += 1;
            return;
        }
        self.in_flight
            .push_back((now_ns + self.latency_ns, packet.to_vec()));
    }

    /// The next packet due at `now_ns` (constant latency keeps them in order).
    pub fn receive(&mut self, now_ns: u64) -> Option<Vec<u8>> {
        if self.in_flight.front().is_some_and(|(t, _)| *t <= now_ns) {
            self.in_flight.pop_front().map(|(_, p)| p)
        } else {
            None
        }
    }
}
