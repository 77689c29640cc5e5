//! Gain tuning: which cascade gains are searched, and the search itself — the cross-entropy
//! method with a diagonal Gaussian in log-gain space. Derivative-free, robust to the noisy
//! objective a Monte Carlo estimate is, deterministic for a seed, and resumable from its small
//! state (mean, spread, generation). Pure: evaluating candidates (flying them) is the caller's.

use depthpilot_types::scene::CascadeGains;
use serde::{Deserialize, Serialize};

/// The searched gains, by name, with a getter and a setter each.
pub const PARAMETERS: [&str; 7] = [
    "pos_kp_xy",
    "pos_kp_z",
    "vel_kp_xy",
    "vel_ki_xy",
    "vel_kp_z",
    "vel_ki_z",
    "est_response_tau_s",
];

/// Gains are searched within ×[1/RANGE, RANGE] of the starting point.
const RANGE: f64 = 3.0;

fn slot(g: &mut CascadeGains, i: usize) -> &mut f64 {
    match i {
        0 => &mut g.pos_kp_xy,
        1 => &mut g.pos_kp_z,
        2 => &mut g.vel_kp_xy,
        3 => &mut g.vel_ki_xy,
        4 => &mut g.vel_kp_z,
        5 => &mut g.vel_ki_z,
        _ => &mut g.est_response_tau_s,
    }
}

/// Gains at log-offsets `x` (one per parameter) from `base`, clamped to the search range.
pub fn gains_at(base: &CascadeGains, x: &[f64]) -> CascadeGains {
    let mut g = base.clone();
    for (i, &xi) in x.iter().enumerate().take(PARAMETERS.len()) {
        let v = slot(&mut g, i);
        *v *= xi.clamp(-RANGE.ln(), RANGE.ln()).exp();
    }
    g
}

/// The search state (what `--state` saves).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cem {
    pub generation: u32,
    pub mean: Vec<f64>,
    pub sigma: Vec<f64>,
    pub best_x: Vec<f64>,
    pub best_cost: f64,
    pub seed: u64,
}

/// splitmix64: a tiny deterministic generator (no dependency, stable across versions).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn gaussian(state: &mut u64) -> f64 {
    let u = |s: &mut u64| ((splitmix(s) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u1, u2) = (u(state), u(state));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Cem {
    /// Starts at the base gains (log-offset 0) with a spread of `sigma0` (log units).
    pub fn new(dims: usize, sigma0: f64, seed: u64) -> Self {
        Self {
            generation: 0,
            mean: vec![0.0; dims],
            sigma: vec![sigma0; dims],
            best_x: vec![0.0; dims],
            best_cost: f64::INFINITY,
            seed,
        }
    }

    /// The candidates of the current generation (the same for the same seed and generation).
    pub fn sample(&self, population: usize) -> Vec<Vec<f64>> {
        let mut state = self.seed ^ (u64::from(self.generation) << 32) ^ 0x5EED;
        (0..population)
            .map(|k| {
                if k == 0 {
                    // Always re-evaluate the mean itself.
                    return self.mean.clone();
                }
                self.mean
                    .iter()
                    .zip(self.sigma.iter())
                    .map(|(m, s)| (m + s * gaussian(&mut state)).clamp(-RANGE.ln(), RANGE.ln()))
                    .collect()
            })
            .collect()
    }

    /// Updates from the candidates' costs: the mean and spread move to the elite quarter.
    pub fn update(&mut self, candidates: &[Vec<f64>], costs: &[f64]) {
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| costs[a].total_cmp(&costs[b]));
        if let Some(&best) = order.first()
            && costs[best] < self.best_cost
        {
            self.best_cost = costs[best];
            self.best_x = candidates[best].clone();
        }
        let elite = (candidates.len() / 4).max(2).min(candidates.len());
        let chosen: Vec<&Vec<f64>> = order.iter().take(elite).map(|&i| &candidates[i]).collect();
        for d in 0..self.mean.len() {
            let m = chosen.iter().map(|c| c[d]).sum::<f64>() / elite as f64;
            let var = chosen.iter().map(|c| (c[d] - m).powi(2)).sum::<f64>() / elite as f64;
            self.mean[d] = m;
            // Smoothed spread with a floor, so that the search does not collapse on noise.
            self.sigma[d] = (0.6 * self.sigma[d] + 0.4 * var.sqrt()).max(0.03);
        }
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_noisy_bowl() {
        let target = [0.4, -0.3, 0.2];
        let mut cem = Cem::new(3, 0.5, 7);
        let mut noise = 99u64;
        for _ in 0..30 {
            let cands = cem.sample(12);
            let costs: Vec<f64> = cands
                .iter()
                .map(|c| {
                    c.iter()
                        .zip(target)
                        .map(|(x, t)| (x - t).powi(2))
                        .sum::<f64>()
                        + 0.001 * gaussian(&mut noise)
                })
                .collect();
            cem.update(&cands, &costs);
        }
        for (m, t) in cem.mean.iter().zip(target) {
            assert!((m - t).abs() < 0.08, "{:?}", cem.mean);
        }
    }

    #[test]
    fn same_seed_same_candidates() {
        let a = Cem::new(7, 0.3, 1);
        assert_eq!(a.sample(8), a.clone().sample(8));
        assert_ne!(a.sample(8), Cem::new(7, 0.3, 2).sample(8));
    }

    #[test]
    fn gains_stay_within_the_range() {
        let base = CascadeGains::default();
        let g = gains_at(&base, &[100.0; 7]);
        assert!((g.pos_kp_xy / base.pos_kp_xy - 3.0).abs() < 1e-9);
        assert_eq!(gains_at(&base, &[0.0; 7]), base);
    }
}
