//! Monte Carlo batches: one flight per seed with the scene's per-seed variations, one JSON line
//! per flight, and the aggregate report. Pure: running flights in parallel, writing files and
//! showing progress are the CLI's job. A flight's result depends on its seed alone, so a batch
//! gives the same report however it is sliced across threads, shards or machines.

use crate::noise::{Noise, Stream};
use crate::runner::{NoLog, SimError, fly};
use depthpilot_types::scene::{Scene, Sensing};
use serde::{Deserialize, Serialize};

/// One flight of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlightRecord {
    pub seed: u64,
    pub rms_error_m: f64,
    pub max_error_m: f64,
    pub rms_estimate_error_m: f64,
    pub crashed: bool,
    pub frames: u64,
    pub detections: u64,
    pub sim_seconds: f64,
}

/// The aggregate of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scene: String,
    pub flights: usize,
    pub first_seed: u64,
    pub last_seed: u64,
    pub crash_rate: f64,
    pub mean_rms_error_m: f64,
    pub p50_rms_error_m: f64,
    pub p95_rms_error_m: f64,
    pub worst_rms_error_m: f64,
    pub worst_seed: u64,
    /// Delivered measurements per sensor frame, over all flights.
    pub detection_rate: f64,
}

/// The scene as flown for `seed`: the seed set, and the variations drawn from it.
pub fn varied_scene(scene: &Scene, seed: u64) -> Scene {
    let mut s = scene.clone();
    s.seed = seed;
    let v = &scene.variations;
    let mut n = Noise::new(seed, Stream::Variations);
    let mut spread = |rel: f64| 1.0 + rel * (2.0 * n.uniform() - 1.0);
    s.quad.mass_kg *= spread(v.mass_rel);
    let tau = spread(v.motor_tau_rel);
    s.quad.motor_tau_up_s *= tau;
    s.quad.motor_tau_down_s *= tau;
    let extra = v.latency_extra_s * n.uniform();
    match &mut s.sensing {
        Sensing::Oracle(o) => o.latency_s += extra,
        Sensing::Kinect(k) => k.latency_s += extra,
    }
    s
}

/// Flies one seed of a batch.
pub fn fly_seed(scene: &Scene, seed: u64) -> Result<FlightRecord, SimError> {
    let s = fly(&varied_scene(scene, seed), &mut NoLog)?;
    Ok(FlightRecord {
        seed,
        rms_error_m: s.rms_error_m,
        max_error_m: s.max_error_m,
        rms_estimate_error_m: s.rms_estimate_error_m,
        crashed: s.crashed,
        frames: s.frames,
        detections: s.detections,
        sim_seconds: s.sim_seconds,
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// Aggregates flight records (any order, duplicates of a seed counted once). None if empty.
    pub fn from_records(scene: &str, records: &[FlightRecord]) -> Option<Self> {
        let mut recs: Vec<&FlightRecord> = records.iter().collect();
        recs.sort_by_key(|r| r.seed);
        recs.dedup_by_key(|r| r.seed);
        let first = recs.first()?;
        let last = recs.last()?;
        let n = recs.len() as f64;
        let mut rms: Vec<f64> = recs.iter().map(|r| r.rms_error_m).collect();
        rms.sort_by(f64::total_cmp);
        let worst = recs
            .iter()
            .max_by(|a, b| a.rms_error_m.total_cmp(&b.rms_error_m))
            .map_or(first.seed, |r| r.seed);
        let frames: u64 = recs.iter().map(|r| r.frames).sum();
        let detections: u64 = recs.iter().map(|r| r.detections).sum();
        Some(Self {
            scene: scene.to_string(),
            flights: recs.len(),
            first_seed: first.seed,
            last_seed: last.seed,
            crash_rate: recs.iter().filter(|r| r.crashed).count() as f64 / n,
            mean_rms_error_m: rms.iter().sum::<f64>() / n,
            p50_rms_error_m: percentile(&rms, 50.0),
            p95_rms_error_m: percentile(&rms, 95.0),
            worst_rms_error_m: rms.last().copied().unwrap_or(0.0),
            worst_seed: worst,
            detection_rate: if frames == 0 {
                0.0
            } else {
                detections as f64 / frames as f64
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seed: u64, rms: f64, crashed: bool) -> FlightRecord {
        FlightRecord {
            seed,
            rms_error_m: rms,
            max_error_m: rms,
            rms_estimate_error_m: 0.0,
            crashed,
            frames: 10,
            detections: 9,
            sim_seconds: 1.0,
        }
    }

    #[test]
    fn report_is_independent_of_order_and_duplicates() {
        let a: Vec<FlightRecord> = (0..20).map(|s| rec(s, s as f64 * 0.001, s == 3)).collect();
        let mut b = a.clone();
        b.reverse();
        b.push(a[5].clone());
        let ra = Report::from_records("x", &a).expect("report");
        assert_eq!(ra, Report::from_records("x", &b).expect("report"));
        assert_eq!(ra.flights, 20);
        assert_eq!(ra.crash_rate, 0.05);
        assert_eq!(ra.p50_rms_error_m, a[9].rms_error_m);
        assert_eq!(ra.p95_rms_error_m, a[18].rms_error_m);
        assert_eq!(
            (ra.worst_rms_error_m, ra.worst_seed),
            (a[19].rms_error_m, 19)
        );
        assert!((ra.detection_rate - 0.9).abs() < 1e-12);
        assert_eq!(Report::from_records("x", &[]), None);
    }
}
