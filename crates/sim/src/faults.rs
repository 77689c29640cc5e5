//! Scripted faults of the running system (`Scene::faults`): extra delay and jitter on the bus
//! from the vision to the controller, and peers that die and come back. Pure and deterministic:
//! time comes in as `now_ns`, the jitter from its own seeded stream.

use crate::noise::{Noise, Stream};
use depthpilot_types::scene::{BusLatency, Faults, Peer, PeerDeath};
use std::collections::VecDeque;

/// The bus from the vision to the controller: each message waits the extra delay of the windows
/// active when it was sent; order is kept (a message never overtakes the one before it, as over
/// TCP). Without an active window a message passes at once.
#[derive(Clone, Debug)]
pub struct BusDelay<T> {
    windows: Vec<BusLatency>,
    noise: Noise,
    queue: VecDeque<(u64, T)>,
    last_due_ns: u64,
    /// Messages that waited longer than they would have without the fault.
    pub delayed: u64,
}

impl<T> BusDelay<T> {
    pub fn new(faults: &Faults, seed: u64) -> Self {
        Self {
            windows: faults.bus_latency.clone(),
            noise: Noise::new(seed, Stream::Bus),
            queue: VecDeque::new(),
            last_due_ns: 0,
            delayed: 0,
        }
    }

    /// Sends `item` at `now_ns`.
    pub fn push(&mut self, now_ns: u64, item: T) {
        let t_s = now_ns as f64 * 1e-9;
        let mut extra_s = 0.0;
        for w in self.windows.iter().filter(|w| w.active(t_s)) {
            extra_s += w.latency_s + w.jitter_s * self.noise.uniform();
        }
        let due = (now_ns + (extra_s * 1e9).round() as u64).max(self.last_due_ns);
        if due > now_ns {
            self.delayed += 1;
        }
        self.last_due_ns = due;
        self.queue.push_back((due, item));
    }

    /// The next message that has arrived by `now_ns`.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<T> {
        if self.queue.front().is_some_and(|(due, _)| *due <= now_ns) {
            self.queue.pop_front().map(|(_, item)| item)
        } else {
            None
        }
    }
}

/// What happened to a peer at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    Alive,
    /// Died at this step.
    Died,
    Dead,
    /// Restarted at this step; `relearn_background`: it did not load its saved background.
    Restarted {
        relearn_background: bool,
    },
}

impl Life {
    pub fn alive(self) -> bool {
        matches!(self, Self::Alive | Self::Restarted { .. })
    }
}

/// The deaths of one peer, followed step by step.
#[derive(Clone, Debug)]
pub struct Lifeline {
    deaths: Vec<PeerDeath>,
    /// The death in force at the previous step.
    current: Option<usize>,
    /// Deaths so far.
    pub died: u64,
}

impl Lifeline {
    pub fn new(faults: &Faults, peer: Peer) -> Self {
        Self {
            deaths: faults
                .peer_deaths
                .iter()
                .filter(|d| d.peer == peer)
                .cloned()
                .collect(),
            current: None,
            died: 0,
        }
    }

    /// The peer's life at `now_ns` (call once per step, times increasing).
    pub fn at(&mut self, now_ns: u64) -> Life {
        let t_s = now_ns as f64 * 1e-9;
        let now = self.deaths.iter().position(|d| d.dead(t_s));
        let before = std::mem::replace(&mut self.current, now);
        match (before, now) {
            (None, None) => Life::Alive,
            (Some(a), Some(b)) if a == b => Life::Dead,
            (_, Some(_)) => {
                self.died += 1;
                Life::Died
            }
            (Some(a), None) => Life::Restarted {
                relearn_background: self.deaths[a].relearn_background,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(bus: Vec<BusLatency>, deaths: Vec<PeerDeath>) -> Faults {
        Faults {
            bus_latency: bus,
            peer_deaths: deaths,
        }
    }

    #[test]
    fn without_a_window_messages_pass_at_once() {
        let mut b = BusDelay::new(&Faults::default(), 1);
        b.push(5, "a");
        b.push(5, "b");
        assert_eq!(b.pop_due(5), Some("a"));
        assert_eq!(b.pop_due(5), Some("b"));
        assert_eq!(b.pop_due(5), None);
        assert_eq!(b.delayed, 0);
    }

    #[test]
    fn a_window_delays_with_jitter_and_keeps_order() {
        let w = BusLatency {
            start_s: 1.0,
            duration_s: Some(1.0),
            latency_s: 0.010,
            jitter_s: 0.020,
        };
        let mut b = BusDelay::new(&faults(vec![w], vec![]), 7);
        let ms = 1_000_000u64;
        b.push(999 * ms, 0);
        assert_eq!(b.pop_due(999 * ms), Some(0), "before the window");
        let mut out = Vec::new();
        for i in 0..200u64 {
            b.push(1000 * ms + i * ms, i);
            while let Some(x) = b.pop_due(1000 * ms + i * ms) {
                out.push((x, i));
            }
        }
        // Every message waited 10–30 ms (more only when queued behind a slower one).
        for (x, at) in &out {
            assert!(at - x >= 10, "{x} came at {at}");
        }
        let order: Vec<u64> = out.iter().map(|(x, _)| *x).collect();
        assert!(order.windows(2).all(|p| p[0] < p[1]), "order kept");
        let lags: Vec<u64> = out.iter().map(|(x, at)| at - x).collect();
        assert!(lags.iter().any(|&l| l >= 20), "jitter spreads: {lags:?}");
        assert!(b.delayed >= 200);
    }

    #[test]
    fn a_peer_dies_and_comes_back() {
        let d = PeerDeath {
            peer: Peer::Vision,
            at_s: 1.0,
            back_after_s: Some(0.5),
            relearn_background: true,
        };
        let other = PeerDeath {
            peer: Peer::Teacher,
            at_s: 0.0,
            back_after_s: None,
            relearn_background: false,
        };
        let mut l = Lifeline::new(&faults(vec![], vec![d, other]), Peer::Vision);
        let s = 1_000_000_000u64;
        assert_eq!(l.at(s / 2), Life::Alive);
        assert_eq!(l.at(s), Life::Died);
        assert_eq!(l.at(s + s / 4), Life::Dead);
        assert_eq!(
            l.at(s + s / 2),
            Life::Restarted {
                relearn_background: true
            }
        );
        assert_eq!(l.at(2 * s), Life::Alive);
        assert_eq!(l.died, 1);
    }
}
