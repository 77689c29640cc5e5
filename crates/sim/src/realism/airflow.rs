//! The room's air and the quad's own wake.
//!
//! **Turbulence** ([`Dryden`], `realism.turbulence`): the Dryden model's low-altitude forms
//! (MIL-F-8785C §3.7.2.3 / MIL-HDBK-1797 App. A §A.3.1.1.3.3 "low altitude", h < 1000 ft):
//! scale lengths `L_w = h`, `L_u = L_v = h / (0.177 + 0.000823 h)^1.2` and intensity ratio
//! `σ_u/σ_w = σ_v/σ_w = 1 / (0.177 + 0.000823 h)^0.4` (h in feet). The horizontal intensity is
//! the room's, not the outdoor `0.1 W20`: ISO 7730:2005 §6 (draught rating) and ASHRAE 55-2020
//! §5.3.3 describe indoor air by its mean speed and turbulence intensity `Tu = SD / mean`;
//! ISO 7730's draught model takes `Tu` between 10 % and 60 % and 40 % when unknown, and its
//! comfort categories keep the mean air speed of an occupied room under about 0.15–0.2 m/s
//! (ISO 7730 Annex A, Fig. A.2). Each axis is driven by white noise from `Stream::Turbulence`
//! through a first-order shaping filter (the Dryden longitudinal form `σ√(2L/πV)/(1 + (L/V)s)`),
//! discretised exactly at the physics step: `x ← a x + σ√(1 − a²) n`, `a = exp(−V dt / L)`,
//! so the stationary variance is σ² and the correlation time L/V at any step size.
//! Simplification: the Dryden lateral and vertical forms are second order (an extra
//! `(1 + √3 L s / V)` zero and a double pole); here all three axes use the first-order form,
//! which has the same variance and scale but less power at high frequency.
//! The output is an air velocity added to the scene's wind, so it acts through the existing
//! rotor-drag path (`quad::rotor_wrench`).
//!
//! **Downwash** ([`Downwash`], `realism.downwash`): the quad's wake coming back from nearby
//! surfaces. Near the floor the mean thrust gain is the ground effect already in
//! `quad::rotor_wrench` (Cheeseman–Bennett); this adds only the unsteady part, a random
//! buffeting that grows as the rotors near the floor or a box (recirculation of the wake that
//! hits the surface, reported for small multirotors near the ground by Sanchez-Cuevas, Heredia
//! & Ollero, "Characterization of the aerodynamic ground effect and its influence in multirotor
//! control", Int. J. Aerospace Eng. 2017, as larger attitude and height disturbances in ground
//! effect). Near a wall (a box's side) a mean force pulls the quad toward the wall: the wall
//! blocks the inflow on its side (wall effect; "Experimental evaluation of Wall Effect for small
//! scale multi-rotors", unibz, measures forces and moments against the distance to a wall;
//! Conyers, Rutherford & Valavanis, "An empirical evaluation of ceiling and wall effects on
//! small-scale rotorcraft", ICUAS 2019, find the wall effect small and short-ranged next to the
//! ceiling effect). The magnitudes are UNVERIFIED: no number for a 27 g quad was found; see the
//! constants.

use crate::noise::{Noise, Stream};
use depthpilot_types::Vec3;
use depthpilot_types::scene::WorldConfig;

const FT_PER_M: f64 = 1.0 / 0.3048;
/// Validity range of the low-altitude Dryden forms, 10 ft to 1000 ft (MIL-HDBK-1797 App. A,
/// low altitude; below 10 ft the forms are held at their 10 ft values).
const DRYDEN_MIN_H_FT: f64 = 10.0;
const DRYDEN_MAX_H_FT: f64 = 1000.0;
/// UNVERIFIED: an indoor eddy cannot be larger than the room; scale lengths are capped at 5 m
/// (a lab room's size). At 10 ft the open-air L_u would be 23 m.
pub const ROOM_SCALE_CAP_M: f64 = 5.0;
/// ISO 7730:2005 Annex A comfort limit of the mean air speed (category B, ≈0.15 m/s in winter);
/// also the Taylor convection speed when the quad hovers (frozen turbulence needs a speed).
pub const ROOM_MEAN_AIR_SPEED_M_S: f64 = 0.15;
/// ISO 7730:2005 §6: turbulence intensity "if unknown, 40 %".
pub const ROOM_TURBULENCE_INTENSITY: f64 = 0.40;

/// Intensities and scale lengths of the three axes (x, y horizontal; z vertical).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrydenParams {
    pub sigma_m_s: [f64; 3],
    pub scale_m: [f64; 3],
}

impl DrydenParams {
    /// At `height_m` above the floor (see the module doc).
    pub fn at_height(height_m: f64) -> Self {
        let h_ft = (height_m * FT_PER_M).clamp(DRYDEN_MIN_H_FT, DRYDEN_MAX_H_FT);
        let k = 0.177 + 0.000823 * h_ft;
        let l_uv = (h_ft / k.powf(1.2) / FT_PER_M).min(ROOM_SCALE_CAP_M);
        let l_w = (h_ft / FT_PER_M).min(ROOM_SCALE_CAP_M);
        let sigma_uv = ROOM_TURBULENCE_INTENSITY * ROOM_MEAN_AIR_SPEED_M_S;
        let sigma_w = sigma_uv * k.powf(0.4);
        Self {
            sigma_m_s: [sigma_uv, sigma_uv, sigma_w],
            scale_m: [l_uv, l_uv, l_w],
        }
    }
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Dryden {
    noise: Noise,
    /// Turbulent air velocity, world frame.
    state: [f64; 3],
    started: bool,
}

impl Dryden {
    pub fn new(seed: u64) -> Self {
        Self {
            noise: Noise::new(seed, Stream::Turbulence),
            state: [0.0; 3],
            started: false,
        }
    }

    /// Advances one step of `dt_s` at `height_m` with the quad moving at `airspeed_m_s`
    /// relative to the mean air; returns the turbulent air velocity (world, m/s). The first
    /// call starts from the stationary distribution.
    pub fn step(&mut self, height_m: f64, airspeed_m_s: f64, dt_s: f64) -> Vec3 {
        let p = DrydenParams::at_height(height_m);
        let v = airspeed_m_s.max(ROOM_MEAN_AIR_SPEED_M_S);
        for i in 0..3 {
            let n = self.noise.normal();
            if self.started {
                let a = (-v * dt_s / p.scale_m[i]).exp();
                self.state[i] = a * self.state[i] + p.sigma_m_s[i] * (1.0 - a * a).sqrt() * n;
            } else {
                self.state[i] = p.sigma_m_s[i] * n;
            }
        }
        self.started = true;
        Vec3::new(self.state[0], self.state[1], self.state[2])
    }
}

/// UNVERIFIED: range of the wake's return, in rotor diameters from the surface to the nearest
/// rotor disk; beyond it nothing. Chosen from the ground effect's own range: the
/// Cheeseman–Bennett gain `1/(1 − (R/4z)²)` already in `quad.rs` is under 0.2 % at three
/// rotor diameters (z = 6R), so the wake's return is taken to vanish there too.
pub const RANGE_ROTOR_DIAMETERS: f64 = 3.0;
/// UNVERIFIED: buffeting force, one sigma per axis, as a fraction of the total thrust with the
/// rotors at the surface (falls as (1 − d/range)²). 5 % chosen: of the order of the
/// Cheeseman–Bennett mean gain at one rotor radius (≈6 %), the unsteady part taken no larger.
pub const BUFFET_FRACTION: f64 = 0.05;
/// UNVERIFIED: mean pull toward a wall, as a fraction of thrust with the rotors at the wall,
/// same fall-off. 2 % chosen, smaller than the buffeting (the wall effect is reported small next
/// to the ground and ceiling effects, Conyers et al. 2019).
pub const WALL_PULL_FRACTION: f64 = 0.02;
/// Air density at sea level, 20 °C (ISA), for the wake's speed.
const AIR_DENSITY_KG_M3: f64 = 1.204;

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Downwash {
    noise: Noise,
    /// Unit-variance, wake-correlated noise per axis.
    state: [f64; 3],
    floor: bool,
    boxes: Vec<(Vec3, Vec3)>,
    prop_radius_m: f64,
    /// Centre to the outer edge of a rotor disk, horizontally.
    reach_m: f64,
}

impl Downwash {
    pub fn new(seed: u64, world: &WorldConfig, arm_m: f64, prop_radius_m: f64) -> Self {
        Self {
            noise: Noise::new(seed, Stream::Downwash),
            state: [0.0; 3],
            floor: world.floor,
            boxes: world
                .boxes
                .iter()
                .map(|b| (b.center_m, b.half_extents_m))
                .collect(),
            prop_radius_m,
            reach_m: arm_m + prop_radius_m,
        }
    }

    fn range_m(&self) -> f64 {
        RANGE_ROTOR_DIAMETERS * 2.0 * self.prop_radius_m
    }

    /// `(1 − d/range)²` inside the range, 0 outside.
    fn falloff(&self, d_m: f64) -> f64 {
        let r = self.range_m();
        if d_m >= r {
            0.0
        } else {
            (1.0 - d_m.max(0.0) / r).powi(2)
        }
    }

    /// Every surface near enough to matter: `visit(distance from the rotors, unit direction from
    /// the quad toward it)`. No allocation: it runs every physics step.
    fn surfaces(&self, pos_m: Vec3, mut visit: impl FnMut(f64, Vec3)) {
        if self.floor {
            visit(pos_m.z, Vec3::new(0.0, 0.0, -1.0));
        }
        for (c, h) in &self.boxes {
            let closest = Vec3::new(
                pos_m.x.clamp(c.x - h.x, c.x + h.x),
                pos_m.y.clamp(c.y - h.y, c.y + h.y),
                pos_m.z.clamp(c.z - h.z, c.z + h.z),
            );
            let to = closest - pos_m;
            let d = to.norm();
            if d <= 1e-9 {
                continue;
            }
            let dir = to * (1.0 / d);
            // Below the quad a box's top is a floor (the rotor plane's distance); beside it a
            // wall (from the rotor disks' outer edge).
            let clear = if dir.z < -0.7 { d } else { d - self.reach_m };
            visit(clear, dir);
        }
    }

    /// The wake's force on the quad this step (world, N): `thrust_n` the rotors' total thrust,
    /// `dt_s` the step. Far from every surface: zero, and the stream still advances by the same
    /// number of draws so the flight's randomness does not depend on where it went.
    pub fn force_n(&mut self, pos_m: Vec3, thrust_n: f64, dt_s: f64) -> Vec3 {
        // Wake correlation time: a rotor diameter over the momentum-theory induced speed
        // v_i = √(T / (2ρA)) per rotor (Leishman, Principles of Helicopter Aerodynamics, §2.3).
        let disk_m2 = std::f64::consts::PI * self.prop_radius_m.powi(2);
        let v_i = (thrust_n.max(0.0) / 4.0 / (2.0 * AIR_DENSITY_KG_M3 * disk_m2)).sqrt();
        let tau_s = 2.0 * self.prop_radius_m / v_i.max(0.1);
        let a = (-dt_s / tau_s).exp();
        let drive = (1.0 - a * a).sqrt();
        for x in &mut self.state {
            *x = a * *x + drive * self.noise.normal();
        }
        if thrust_n <= 0.0 {
            return Vec3::ZERO;
        }
        let mut buffet: f64 = 0.0;
        let mut pull = Vec3::ZERO;
        self.surfaces(pos_m, |d, dir| {
            let f = self.falloff(d);
            buffet = buffet.max(f);
            let horizontal = Vec3::new(dir.x, dir.y, 0.0);
            pull += horizontal * (WALL_PULL_FRACTION * thrust_n * f);
        });
        let s = BUFFET_FRACTION * thrust_n * buffet;
        pull + Vec3::new(self.state[0] * s, self.state[1] * s, self.state[2] * s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depthpilot_types::scene::BoxConfig;

    #[test]
    fn dryden_variance_and_correlation_time_match_sigma_and_l_over_v() {
        let mut d = Dryden::new(4);
        let (h, v, dt) = (1.0, 10.0, 0.001);
        let p = DrydenParams::at_height(h);
        let n = 1_000_000;
        let xs: Vec<[f64; 3]> = (0..n).map(|_| d.step(h, v, dt).to_array()).collect();
        for axis in [0, 2] {
            let sigma = p.sigma_m_s[axis];
            let tau = p.scale_m[axis] / v;
            let lag = (tau / dt).round() as usize;
            let mean = xs.iter().map(|x| x[axis]).sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x[axis] - mean).powi(2)).sum::<f64>() / n as f64;
            let cov = (0..n - lag)
                .map(|k| (xs[k][axis] - mean) * (xs[k + lag][axis] - mean))
                .sum::<f64>()
                / (n - lag) as f64;
            let rho = cov / var;
            assert!(
                (var.sqrt() / sigma - 1.0).abs() < 0.15,
                "axis {axis}: sd {} want {sigma}",
                var.sqrt()
            );
            assert!(
                (rho - (-1.0f64).exp()).abs() < 0.1,
                "axis {axis}: autocorrelation at L/V {rho}"
            );
        }
    }

    #[test]
    fn dryden_scales_follow_the_low_altitude_forms_and_the_room_cap() {
        // 300 ft: L_w = 300 ft, L_u = 300/(0.177+0.2469)^1.2 ft: both capped by the room.
        let high = DrydenParams::at_height(300.0 * 0.3048);
        assert_eq!(high.scale_m, [ROOM_SCALE_CAP_M; 3]);
        let low = DrydenParams::at_height(1.0);
        let l_w_10ft = 10.0 * 0.3048;
        assert!(
            (low.scale_m[2] - l_w_10ft).abs() < 1e-9,
            "{:?}",
            low.scale_m
        );
        assert!(low.sigma_m_s[2] < low.sigma_m_s[0]);
        assert!((low.sigma_m_s[0] - 0.06).abs() < 1e-12);
    }

    fn wall_world() -> WorldConfig {
        WorldConfig {
            floor: true,
            boxes: vec![BoxConfig {
                center_m: Vec3::new(2.0, 0.0, 1.0),
                half_extents_m: Vec3::new(0.05, 2.0, 1.0),
            }],
            ..Default::default()
        }
    }

    fn mean_force(dw: &mut Downwash, pos: Vec3, n: usize) -> (Vec3, f64) {
        let fs: Vec<Vec3> = (0..n).map(|_| dw.force_n(pos, 0.27, 0.001)).collect();
        let mean = fs.iter().fold(Vec3::ZERO, |a, f| a + *f) * (1.0 / n as f64);
        let sd = (fs.iter().map(|f| (*f - mean).norm().powi(2)).sum::<f64>() / n as f64).sqrt();
        (mean, sd)
    }

    #[test]
    fn pulled_toward_a_near_wall_and_nothing_far_away() {
        let (arm, r) = (0.046, 0.0231);
        let mut dw = Downwash::new(1, &wall_world(), arm, r);
        // Wall face at x = 1.95; rotors' edge 2 cm from it, 1 m up.
        let near = Vec3::new(1.95 - arm - r - 0.02, 0.0, 1.0);
        let (m, _) = mean_force(&mut dw, near, 20_000);
        assert!(m.x > 0.001, "pull toward the wall {m:?}");
        let far = Vec3::new(0.0, 0.0, 1.0);
        for _ in 0..100 {
            assert_eq!(dw.force_n(far, 0.27, 0.001), Vec3::ZERO);
        }
    }

    #[test]
    fn buffeting_grows_near_the_floor() {
        let mut dw = Downwash::new(2, &WorldConfig::default(), 0.046, 0.0231);
        let (_, sd_low) = mean_force(&mut dw, Vec3::new(0.0, 0.0, 0.03), 20_000);
        let (_, sd_mid) = mean_force(&mut dw, Vec3::new(0.0, 0.0, 0.09), 20_000);
        let (_, sd_high) = mean_force(&mut dw, Vec3::new(0.0, 0.0, 0.5), 20_000);
        assert!(sd_low > 2.0 * sd_mid && sd_mid > 0.0, "{sd_low} {sd_mid}");
        assert_eq!(sd_high, 0.0);
    }
}
