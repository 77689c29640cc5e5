//! Collective thrust in newtons ↔ the firmware's thrust command, through a per-motor map
//! F = a·PWM² + b·PWM + c.
//!
//! The off-board controller must know the law of the firmware build it flies. The default
//! build (CF2.1, `CONFIG_ENABLE_THRUST_BAT_COMPENSATED` default on, 2.1+ propellers) compensates
//! the battery voltage so that a command gives `cmd / 65535 · THRUST_MAX` per motor, linear and
//! independent of the battery ([`ThrustMap::CF21_COMPENSATED`], `src/drivers/src/motors.c:198
//! @2a18fc29`, `platform_defaults_cf2.h:74`). Förster's quadratic ([`ThrustMap::FORSTER`],
//! `reference/sim_vision.md` §1.2) is the CF2.0's command → thrust map of 2015; its slope at
//! hover is 41 % steeper than the compensated law's, so a controller using it over-corrects
//! height errors by that much.

use depthpilot_types::AttitudeCommand;

/// Per-motor thrust map of a CF2.x.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrustMap {
    pub a: f64,
    pub b: f64,
    pub c: f64,
}

/// Full-scale raw thrust (the wire's u16 maximum).
const FULL_SCALE: f64 = 65535.0;

impl ThrustMap {
    /// Förster, "System Identification of the Crazyflie 2.0", 2015.
    pub const FORSTER: Self = Self {
        a: 2.130295e-11,
        b: 1.032633e-6,
        c: 5.484560e-4,
    };

    /// The default firmware build's compensated law: `THRUST_MAX` = 0.12 N per motor at 65535
    /// (`platform_defaults_cf2.h:74 @2a18fc29`), through zero. (Below `THRUST_MIN`, cmd ≈ 7000,
    /// the firmware stops the motor; a hovering controller never asks that little.)
    pub const CF21_COMPENSATED: Self = Self {
        a: 0.0,
        b: 0.12 / FULL_SCALE,
        c: 0.0,
    };

    /// Per-motor thrust at a PWM value.
    pub fn thrust_n(&self, pwm: f64) -> f64 {
        self.a * pwm * pwm + self.b * pwm + self.c
    }

    /// PWM that gives `thrust_n` per motor (0 for thrust below the map's intercept).
    pub fn pwm_for(&self, thrust_n: f64) -> f64 {
        if thrust_n.is_nan() || thrust_n <= self.c {
            return 0.0;
        }
        if self.a == 0.0 {
            return (thrust_n - self.c) / self.b;
        }
        let disc = self.b * self.b - 4.0 * self.a * (self.c - thrust_n);
        (-self.b + disc.sqrt()) / (2.0 * self.a)
    }

    /// Thrust command fraction for a collective thrust of a four-motor vehicle.
    pub fn frac_for_collective(&self, collective_n: f64) -> f64 {
        (self.pwm_for(collective_n / 4.0) / FULL_SCALE).clamp(0.0, 1.0)
    }

    /// Collective thrust for a command, ignoring the motor lag.
    pub fn collective_for(&self, cmd: &AttitudeCommand) -> f64 {
        4.0 * self.thrust_n(cmd.thrust_frac * FULL_SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hover_pwm_of_27_g_matches_reference() {
        let pwm = ThrustMap::FORSTER.pwm_for(0.027 * 9.81 / 4.0);
        assert!((pwm - 36_344.0).abs() < 150.0, "{pwm}");
    }

    #[test]
    fn inverse_is_inverse() {
        for pwm in [5_000.0, 20_000.0, 36_000.0, 65_535.0] {
            let back = ThrustMap::FORSTER.pwm_for(ThrustMap::FORSTER.thrust_n(pwm));
            assert!((back - pwm).abs() < 1e-6, "{pwm} {back}");
        }
        assert_eq!(ThrustMap::FORSTER.pwm_for(f64::NAN), 0.0);
        assert_eq!(ThrustMap::FORSTER.pwm_for(-1.0), 0.0);
    }

    #[test]
    fn the_compensated_law_is_linear_and_hovers_27_g_at_36_163() {
        let m = ThrustMap::CF21_COMPENSATED;
        let pwm = m.pwm_for(0.027 * 9.81 / 4.0);
        assert!((pwm - 36_163.0).abs() < 1.0, "{pwm}");
        assert!((m.thrust_n(65535.0) - 0.12).abs() < 1e-15);
        assert!((m.pwm_for(m.thrust_n(20_000.0)) - 20_000.0).abs() < 1e-9);
        assert_eq!(m.pwm_for(f64::NAN), 0.0);
    }
}
