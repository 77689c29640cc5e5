//! Wind, gusts, pushes and constant forces, as functions of time. Gusts are drawn once from the
//! seed when the flight starts.

use crate::noise::{Noise, Stream};
use depthpilot_types::Vec3;
use depthpilot_types::scene::Disturbances;

#[derive(Clone, Copy, Debug)]
struct Gust {
    start_s: f64,
    duration_s: f64,
    peak_m_s: Vec3,
}

pub struct DisturbanceModel {
    wind_m_s: Vec3,
    force_n: Vec3,
    gusts: Vec<Gust>,
    /// (time, impulse), sorted; consumed as time passes.
    impulses: Vec<(f64, Vec3)>,
    next_impulse: usize,
}

impl DisturbanceModel {
    pub fn new(cfg: &Disturbances, duration_s: f64, seed: u64) -> Self {
        let mut gusts = Vec::new();
        if let Some(g) = &cfg.gusts {
            let mut n = Noise::new(seed, Stream::Gusts);
            let mut t = g.start_s;
            loop {
                // Exponential inter-arrival times.
                t += -g.mean_interval_s * (1.0 - n.uniform()).ln();
                if t >= duration_s {
                    break;
                }
                let dir = std::f64::consts::TAU * n.uniform();
                let mag = g.peak_m_s * (0.5 + 0.5 * n.uniform());
                gusts.push(Gust {
                    start_s: t,
                    duration_s: g.duration_s,
                    peak_m_s: Vec3::new(mag * dir.cos(), mag * dir.sin(), 0.0),
                });
            }
        }
        let mut impulses: Vec<(f64, Vec3)> = cfg
            .impulses
            .iter()
            .map(|i| (i.t_s, i.impulse_n_s))
            .collect();
        impulses.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            wind_m_s: cfg.wind_m_s,
            force_n: cfg.force_n,
            gusts,
            impulses,
            next_impulse: 0,
        }
    }

    /// Air velocity at time `t_s`: constant wind plus raised-cosine gusts.
    pub fn wind_at(&self, t_s: f64) -> Vec3 {
        let mut w = self.wind_m_s;
        for g in &self.gusts {
            let u = (t_s - g.start_s) / g.duration_s;
            if (0.0..1.0).contains(&u) {
                w += g.peak_m_s * (0.5 * (1.0 - (std::f64::consts::TAU * u).cos()));
            }
        }
        w
    }

    pub fn force_n(&self) -> Vec3 {
        self.force_n
    }

    /// Impulses due at or before `t_s` that have not been applied yet (summed).
    pub fn take_impulses(&mut self, t_s: f64) -> Vec3 {
        let mut sum = Vec3::ZERO;
        while let Some(&(t, j)) = self.impulses.get(self.next_impulse) {
            if t > t_s {
                break;
            }
            sum += j;
            self.next_impulse += 1;
        }
        sum
    }

    pub fn gust_count(&self) -> usize {
        self.gusts.len()
    }
}
