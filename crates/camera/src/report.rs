//! What a [`BridgeClient`](crate::BridgeClient) saw: frames and their sequence gaps, dropped
//! messages by reason, stretches without frames. Plain counters without sockets, so the stale
//! rule is tested with made-up instants.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::protocol::{FrameError, StatusMsg};

/// Tally of dropped messages.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GarbageCounts {
    pub total: u64,
    /// Keyed by [`FrameError::reason`].
    pub by_reason: BTreeMap<String, u64>,
    /// The text of the latest one.
    pub last: Option<String>,
}

impl GarbageCounts {
    pub fn count(&mut self, e: &FrameError) {
        self.total = self.total.saturating_add(1);
        let slot = self.by_reason.entry(e.reason().to_string()).or_default();
        *slot = slot.saturating_add(1);
        self.last = Some(e.to_string());
    }

    /// How many were dropped for `reason`.
    pub fn of(&self, reason: &str) -> u64 {
        self.by_reason.get(reason).copied().unwrap_or(0)
    }
}

/// Follows a publisher's `seq` (a bridge's frames, a bus topic's messages): gaps (lost messages)
/// and restarts. A restart is not garbage.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SeqTracker {
    pub received: u64,
    /// Times `seq` jumped forward by more than one.
    pub gaps: u64,
    /// Messages skipped by those jumps.
    pub missed: u64,
    /// Times `seq` was lower than or equal to the previous one (the publisher restarted).
    pub restarts: u64,
    last: Option<u64>,
}

impl SeqTracker {
    pub fn observe(&mut self, seq: u64) {
        self.received = self.received.saturating_add(1);
        if let Some(last) = self.last {
            if seq <= last {
                self.restarts = self.restarts.saturating_add(1);
            } else if seq - last > 1 {
                self.gaps = self.gaps.saturating_add(1);
                self.missed = self.missed.saturating_add(seq - last - 1);
            }
        }
        self.last = Some(seq);
    }

    /// The latest `seq` seen.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

/// The stale rule: once frames have arrived, no frame for `stale_after` is one stale event
/// (reported once), and the next frame ends it.
#[derive(Debug, Clone)]
pub struct StaleWatch {
    stale_after: Duration,
    last_frame_at: Option<Instant>,
    stale: bool,
}

impl StaleWatch {
    pub fn new(stale_after: Duration) -> Self {
        Self {
            stale_after,
            last_frame_at: None,
            stale: false,
        }
    }

    /// A frame arrived at `now`. Returns the time since the previous frame (ms), and whether
    /// this frame ends a stale stretch.
    pub fn frame(&mut self, now: Instant) -> (Option<u64>, bool) {
        let gap_ms = self
            .last_frame_at
            .map(|last| millis(now.saturating_duration_since(last)));
        let recovered = std::mem::replace(&mut self.stale, false);
        self.last_frame_at = Some(now);
        (gap_ms, recovered)
    }

    /// At `now`: `Some(ms since the last frame)` the first time that reaches `stale_after`.
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        let last = self.last_frame_at?;
        let since = now.saturating_duration_since(last);
        if self.stale || since < self.stale_after {
            return None;
        }
        self.stale = true;
        Some(millis(since))
    }

    pub fn is_stale(&self) -> bool {
        self.stale
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Everything a client saw since it connected.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BridgeReport {
    /// Where the client connected.
    pub endpoint: String,
    pub frames: SeqTracker,
    pub garbage: GarbageCounts,
    /// Times frames stopped for the stale time (after having arrived).
    pub stale_events: u64,
    /// Times they came back after that.
    pub recoveries: u64,
    /// No frame for the stale time right now.
    pub stale: bool,
    /// Longest time between two consecutive frames, as the client polled (ms).
    pub longest_gap_ms: u64,
    /// Status messages received.
    pub statuses: u64,
    /// The newest status message.
    pub last_status: Option<StatusMsg>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_is_reported_once_and_only_after_a_first_frame() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = StaleWatch::new(ms(100));
        assert_eq!(w.check(t0 + ms(1000)), None, "no frame yet: not stale");
        assert_eq!(w.frame(t0 + ms(1000)), (None, false));
        assert_eq!(w.frame(t0 + ms(1033)), (Some(33), false));
        assert_eq!(w.check(t0 + ms(1132)), None);
        assert_eq!(w.check(t0 + ms(1133)), Some(100));
        assert!(w.is_stale());
        assert_eq!(w.check(t0 + ms(1500)), None, "once");
        assert_eq!(w.frame(t0 + ms(1600)), (Some(567), true));
        assert!(!w.is_stale());
        assert_eq!(w.check(t0 + ms(1650)), None);
        assert_eq!(w.check(t0 + ms(1750)), Some(150), "a second stretch");
    }

    #[test]
    fn an_earlier_now_does_not_panic() {
        let t0 = Instant::now();
        let mut w = StaleWatch::new(Duration::from_millis(100));
        w.frame(t0 + Duration::from_secs(1));
        assert_eq!(w.check(t0), None);
        assert_eq!(w.frame(t0), (Some(0), false));
    }

    #[test]
    fn seq_gaps_and_restarts_are_counted() {
        let mut s = SeqTracker::default();
        for seq in [0, 1, 2, 5, 6, 0, 1] {
            s.observe(seq);
        }
        assert_eq!((s.received, s.gaps, s.missed, s.restarts), (7, 1, 2, 1));
        assert_eq!(s.last(), Some(1));
    }

    #[test]
    fn garbage_is_counted_by_reason() {
        let mut g = GarbageCounts::default();
        g.count(&FrameError::Empty);
        g.count(&FrameError::ImageSize {
            part: "depth",
            got: 2,
        });
        g.count(&FrameError::Empty);
        assert_eq!(g.total, 3);
        assert_eq!(g.of("parts"), 2);
        assert_eq!(g.of("size"), 1);
        assert_eq!(g.of("json"), 0);
        assert_eq!(
            g.last.as_deref(),
            Some("empty message (no parts, not even a topic)")
        );
    }
}
