//! The Crazyflie 2.x airframe: motor layout, first-order motor lag, the PWM → thrust,
//! PWM → rotor speed and thrust → torque maps of the scene's quad, rotor drag and ground
//! effect (`reference/sim_vision.md` §1, §7). Pure functions of the state; the rigid body itself
//! lives in [`crate::world`].
//!
//! The thrust law is the firmware's own identified one for the build
//! ([`QuadConfig::preset`](depthpilot_types::scene::QuadConfig::preset)): per motor
//! F = VMOTOR2THRUST cubic of v_motor = v_supply · PWM / 65535, with v_supply the battery's
//! loaded terminal voltage at that instant ([`Airframe::supply_v`], set by the plant from
//! [`crate::realism::battery`]). The firmware inverts the same cubic, so the default flight's
//! per-motor thrust is `cmd / 65535 · 0.12 N`. Förster's PWM quadratic (voltage-blind) stays
//! available as `ThrustCurve::FORSTER`. With the realism item `motor_spread` each motor's thrust
//! is scaled and one arm's thrust axis is tilted ([`crate::realism::motors`]).
//!
//! Motor layout (body frame x forward, y left, seen from above):
//! ```text
//!        front (+x)
//!    M4 (CW)   M1 (CCW)
//!         \   /
//!          [ ]
//!         /   \
//!    M3 (CCW)  M2 (CW)
//! ```

use crate::realism::motors::MotorSpread;
use depthpilot_control::ThrustMap;
use depthpilot_types::Rot;
use depthpilot_types::Vec3;
use depthpilot_types::scene::{QuadConfig, ThrustCurve};

/// Förster rotor drag, kg/rad, body axes (via gym-pybullet-drones' cf2x.urdf). Used for every
/// airframe: no identified value for the 2.1 Brushless was found (UNVERIFIED there).
const DRAG_K: [f64; 3] = [9.1785e-7, 9.1785e-7, 10.311e-7];
/// Ground effect (gym-pybullet-drones `_groundEffect`, after Shi et al. 2019).
const GROUND_EFFECT_C: f64 = 11.36859;
const GROUND_EFFECT_CLIP_M: f64 = 0.0378;

/// Per-motor thrust for a PWM value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MotorThrust {
    /// a·PWM² + b·PWM + c (Förster): blind to the supply voltage.
    Pwm(ThrustMap),
    /// c0 + c1·v + c2·v² + c3·v³, v = v_supply · PWM / 65535.
    Voltage { c: [f64; 4] },
}

impl MotorThrust {
    pub fn from_curve(curve: ThrustCurve) -> Self {
        match curve {
            ThrustCurve::PwmQuadratic { a, b, c } => Self::Pwm(ThrustMap { a, b, c }),
            ThrustCurve::VoltageCubic { c0, c1, c2, c3 } => Self::Voltage {
                c: [c0, c1, c2, c3],
            },
        }
    }

    /// Thrust of one motor at an effective PWM with `supply_v` across the motor driver (never
    /// negative for the voltage law).
    pub fn thrust_n(&self, pwm: f64, supply_v: f64) -> f64 {
        match self {
            Self::Pwm(map) => map.thrust_n(pwm),
            Self::Voltage { c } => {
                let v = supply_v * pwm / 65535.0;
                (c[0] + v * (c[1] + v * (c[2] + v * c[3]))).max(0.0)
            }
        }
    }
}

/// Body-frame motor positions of M1..M4 (unit square diagonal, scaled by the arm length).
const MOTOR_DIRS: [(f64, f64); 4] = [(1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)];
/// +1 for a clockwise rotor (its reaction torque on the body is counter-clockwise, +z).
const SPIN_REACTION: [f64; 4] = [-1.0, 1.0, -1.0, 1.0];

/// Airframe parameters (from the scene).
#[derive(Clone, Debug)]
pub struct Airframe {
    pub mass_kg: f64,
    pub inertia_kg_m2: Vec3,
    pub motor_pos_m: [Vec3; 4],
    pub tau_up_s: f64,
    pub tau_down_s: f64,
    pub thrust: MotorThrust,
    /// Rotor reaction torque per newton of thrust.
    pub torque_per_thrust_m: f64,
    /// Ω = offset + slope · PWM.
    pub omega_offset_rad_s: f64,
    pub omega_per_pwm_rad_s: f64,
    pub prop_radius_m: f64,
    pub ground_effect: bool,
    /// The battery's loaded terminal voltage now (the plant sets it every step; 4.2 V, a
    /// charged cell, until then).
    pub supply_v: f64,
    /// Per-motor thrust scale and a bent arm (none unless the realism item is on).
    pub spread: MotorSpread,
}

impl Airframe {
    pub fn from_config(q: &QuadConfig, ground_effect: bool) -> Self {
        let a = q.arm_m / std::f64::consts::SQRT_2;
        Self {
            mass_kg: q.mass_kg,
            inertia_kg_m2: q.inertia_kg_m2,
            motor_pos_m: MOTOR_DIRS.map(|(x, y)| Vec3::new(x * a, y * a, 0.0)),
            tau_up_s: q.motor_tau_up_s,
            tau_down_s: q.motor_tau_down_s,
            thrust: MotorThrust::from_curve(q.thrust_curve),
            torque_per_thrust_m: q.torque_per_thrust_m,
            omega_offset_rad_s: q.rotor_speed_offset_rad_s,
            omega_per_pwm_rad_s: q.rotor_speed_per_pwm_rad_s,
            prop_radius_m: q.prop_radius_m,
            ground_effect,
            supply_v: depthpilot_types::scene::BATTERY_FULL_V,
            spread: MotorSpread::NONE,
        }
    }

    /// The same airframe with motor spread and a bent arm.
    pub fn with_spread(self, spread: MotorSpread) -> Self {
        Self { spread, ..self }
    }
}

/// The four motors' lagged state, as an effective PWM each.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Motors {
    pub pwm: [f64; 4],
}

impl Motors {
    /// First-order lag towards the commanded PWM, exact for a constant command over `dt`.
    pub fn step(&mut self, cmd: [u16; 4], dt_s: f64, af: &Airframe) {
        for (state, &c) in self.pwm.iter_mut().zip(cmd.iter()) {
            let target = f64::from(c);
            let tau = if target > *state {
                af.tau_up_s
            } else {
                af.tau_down_s
            };
            let alpha = 1.0 - (-dt_s / tau).exp();
            *state += (target - *state) * alpha;
        }
    }

    /// Per-motor thrust at the airframe's supply voltage. A stopped motor (effective PWM < 1)
    /// gives none.
    pub fn thrust_n(&self, af: &Airframe) -> [f64; 4] {
        let mut f = self.pwm.map(|p| {
            if p < 1.0 {
                0.0
            } else {
                af.thrust.thrust_n(p, af.supply_v)
            }
        });
        // × 1.0 when there is no spread: exact, so an Ideal flight is unchanged.
        for (f, scale) in f.iter_mut().zip(af.spread.thrust_scale) {
            *f *= scale;
        }
        f
    }

    /// Per-motor rotor speed; the offset fades in over the first 1000 PWM so a stopped rotor
    /// does not spin.
    pub fn omega_rad_s(&self, af: &Airframe) -> [f64; 4] {
        self.pwm.map(|p| {
            af.omega_per_pwm_rad_s * p + af.omega_offset_rad_s * (p / 1000.0).clamp(0.0, 1.0)
        })
    }
}

/// The wrench on the body, force in the world frame, torque in the body frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wrench {
    pub force_world_n: Vec3,
    pub torque_body_n_m: Vec3,
}

/// Forces and torques of the rotors, rotor drag and ground effect.
///
/// `air_vel_world_m_s` is the wind; `height_m` is the centre of mass above the floor (None: no
/// floor below).
pub fn rotor_wrench(
    af: &Airframe,
    motors: &Motors,
    world_from_body: &Rot,
    vel_world_m_s: Vec3,
    air_vel_world_m_s: Vec3,
    height_m: Option<f64>,
) -> Wrench {
    let mut thrust = motors.thrust_n(af);
    let upright = world_from_body.m[2][2] > 0.0;
    if af.ground_effect
        && upright
        && let Some(h) = height_m
    {
        for (f, pos) in thrust.iter_mut().zip(af.motor_pos_m.iter()) {
            let prop_h = (h + world_from_body.apply(*pos).z).max(GROUND_EFFECT_CLIP_M);
            let ratio = af.prop_radius_m / (4.0 * prop_h);
            *f *= 1.0 + GROUND_EFFECT_C * ratio * ratio;
        }
    }
    let total: f64 = thrust.iter().sum();
    let mut torque = Vec3::ZERO;
    for i in 0..4 {
        let p = af.motor_pos_m[i];
        // r × (0, 0, F) = (y F, -x F, 0)
        torque += Vec3::new(p.y * thrust[i], -p.x * thrust[i], 0.0);
        torque.z += SPIN_REACTION[i] * af.torque_per_thrust_m * thrust[i];
    }
    // A bent arm: that rotor's thrust leans off the body z axis; the lean's force and its moment.
    let mut lean_force = Vec3::ZERO;
    if let Some(bent) = af.spread.bent_arm {
        let i = bent.motor;
        let lean = (bent.axis_body() - Vec3::new(0.0, 0.0, 1.0)) * thrust[i];
        lean_force = lean;
        torque += af.motor_pos_m[i].cross(lean);
    }
    // Rotor drag: proportional to the sum of rotor speeds and the body-frame air-relative velocity.
    let omega_sum: f64 = motors.omega_rad_s(af).iter().sum();
    let rel_body = world_from_body.inverse_apply(vel_world_m_s - air_vel_world_m_s);
    let drag_body = Vec3::new(
        -DRAG_K[0] * omega_sum * rel_body.x,
        -DRAG_K[1] * omega_sum * rel_body.y,
        -DRAG_K[2] * omega_sum * rel_body.z,
    );
    let mut force_body = Vec3::new(0.0, 0.0, total) + drag_body;
    if af.spread.bent_arm.is_some() {
        force_body += lean_force;
    }
    Wrench {
        force_world_n: world_from_body.apply(force_body),
        torque_body_n_m: torque,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn af() -> Airframe {
        Airframe::from_config(&QuadConfig::default(), false)
    }

    /// Was `full_thrust_gives_thrust_to_weight_2_4` (Förster's quadratic at PWM 65535). The
    /// default plant is now the firmware's 2.1+ curve; what the firmware can ask of it is
    /// `THRUST_MAX` = 0.12 N per motor (T/W 1.81 for 27 g), reached at a motor voltage of
    /// 3.08 V, below a 4.2 V battery.
    #[test]
    fn the_firmware_ceiling_is_reachable_on_a_charged_battery() {
        let a = af();
        // Motor voltage for 0.12 N by bisection on the plant's curve.
        let (mut lo, mut hi) = (0.0, 65535.0);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if a.thrust.thrust_n(mid, 4.2) < 0.12 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let motor_v = 4.2 * lo / 65535.0;
        assert!((motor_v - 3.08).abs() < 0.01, "{motor_v} V");
        let m = Motors { pwm: [lo; 4] };
        let w = rotor_wrench(&a, &m, &Rot::IDENTITY, Vec3::ZERO, Vec3::ZERO, None);
        let tw = w.force_world_n.z / (a.mass_kg * 9.81);
        assert!((tw - 1.81).abs() < 0.01, "T/W = {tw}");
    }

    #[test]
    fn the_thrust_follows_the_supply_voltage() {
        let mut a = af();
        let m = Motors { pwm: [36000.0; 4] };
        let at_4v2 = m.thrust_n(&a)[0];
        a.supply_v = 3.7;
        let at_3v7 = m.thrust_n(&a)[0];
        // v_motor 2.31 V → 2.03 V: about a fifth less thrust.
        assert!(at_3v7 < 0.85 * at_4v2, "{at_4v2} → {at_3v7}");
        // Förster's map does not see the voltage.
        a.thrust = MotorThrust::from_curve(ThrustCurve::FORSTER);
        assert_eq!(m.thrust_n(&a)[0], a.thrust.thrust_n(36000.0, 4.2));
    }

    #[test]
    fn spread_scales_the_motors_and_a_bent_arm_twists_the_body() {
        use crate::realism::motors::{BentArm, MotorSpread};
        let m = Motors { pwm: [36000.0; 4] };
        let straight = af();
        let f0 = m.thrust_n(&straight)[0];
        let spread = MotorSpread {
            thrust_scale: [1.05, 1.0, 1.0, 1.0],
            bent_arm: Some(BentArm {
                motor: 1,
                tilt_rad: 1f64.to_radians(),
                // Leaning tangentially (M2 sits at (−x, −y)): a yaw torque.
                azimuth_rad: -45f64.to_radians(),
            }),
        };
        let a = af().with_spread(spread);
        assert!((m.thrust_n(&a)[0] / f0 - 1.05).abs() < 1e-12);
        let w = rotor_wrench(&a, &m, &Rot::IDENTITY, Vec3::ZERO, Vec3::ZERO, None);
        // The same scales on straight arms, to isolate the lean.
        let scaled = af().with_spread(MotorSpread {
            bent_arm: None,
            ..spread
        });
        let w0 = rotor_wrench(&scaled, &m, &Rot::IDENTITY, Vec3::ZERO, Vec3::ZERO, None);
        // M1 (front right, y < 0) 5 % stronger: torque.x = y·ΔF < 0 (right side up).
        assert!(w.torque_body_n_m.x < -1e-5, "{:?}", w.torque_body_n_m);
        // The lean: F·sin 1° ≈ 1.16 mN sideways, and a yaw torque r·F·sin 1° ≈ 5.3e-5 N·m
        // (r = 0.046 m, F = 0.066 N).
        let side = w.force_world_n - w0.force_world_n;
        assert!(
            side.norm_xy() > 1.0e-3 && side.norm_xy() < 1.3e-3,
            "{side:?}"
        );
        let dyaw = w.torque_body_n_m.z - w0.torque_body_n_m.z;
        assert!(dyaw.abs() > 5.0e-5 && dyaw.abs() < 5.6e-5, "{dyaw}");
    }

    #[test]
    fn the_brushless_preset_hovers_near_its_firmware_figures() {
        use depthpilot_types::scene::QuadVariant;
        let a = Airframe::from_config(&QuadConfig::preset(QuadVariant::Cf21Brushless), false);
        let weight = a.mass_kg * 9.81;
        // Hover PWM by bisection on the thrust curve.
        let (mut lo, mut hi) = (0.0, 65535.0);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if 4.0 * a.thrust.thrust_n(mid, 3.8) < weight {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        assert!((lo - 34_800.0).abs() < 300.0, "hover PWM {lo}");
        // More thrust in reserve than the brushed CF2 (T/W 2.4): about 3 at 3.8 V.
        let tw = 4.0 * a.thrust.thrust_n(65535.0, 3.8) / weight;
        assert!(tw > 2.8 && tw < 3.2, "T/W {tw}");
        assert_eq!(a.thrust.thrust_n(0.0, 3.8), 0.0, "clamped at zero");
    }

    #[test]
    fn equal_motors_give_no_torque() {
        let a = af();
        let m = Motors { pwm: [40000.0; 4] };
        let w = rotor_wrench(&a, &m, &Rot::IDENTITY, Vec3::ZERO, Vec3::ZERO, None);
        assert!(w.torque_body_n_m.norm() < 1e-12, "{:?}", w.torque_body_n_m);
    }

    #[test]
    fn clockwise_rotors_faster_yaw_the_body_left() {
        let a = af();
        let m = Motors {
            pwm: [30000.0, 40000.0, 30000.0, 40000.0],
        };
        let w = rotor_wrench(&a, &m, &Rot::IDENTITY, Vec3::ZERO, Vec3::ZERO, None);
        assert!(w.torque_body_n_m.z > 0.0);
    }

    #[test]
    fn motor_lag_time_constants() {
        let a = af();
        let mut m = Motors::default();
        // After one time constant a step reaches 63 %.
        for _ in 0..125 {
            m.step([60000; 4], 0.0001, &a);
        }
        assert!((m.pwm[0] / 60000.0 - 0.632).abs() < 0.005, "{}", m.pwm[0]);
        let mut m = Motors { pwm: [60000.0; 4] };
        for _ in 0..250 {
            m.step([0; 4], 0.0001, &a);
        }
        assert!((m.pwm[0] / 60000.0 - 0.368).abs() < 0.005, "{}", m.pwm[0]);
    }

    #[test]
    fn ground_effect_adds_thrust_near_the_floor_only() {
        let mut a = af();
        a.ground_effect = true;
        let m = Motors { pwm: [36000.0; 4] };
        let f = |h| {
            rotor_wrench(&a, &m, &Rot::IDENTITY, Vec3::ZERO, Vec3::ZERO, Some(h))
                .force_world_n
                .z
        };
        let free = 4.0 * a.thrust.thrust_n(36000.0, a.supply_v);
        assert!(f(0.02) > free * 1.2);
        assert!((f(1.0) - free) / free < 0.001);
    }

    #[test]
    fn drag_opposes_air_relative_motion() {
        let a = af();
        let m = Motors { pwm: [36000.0; 4] };
        let w = rotor_wrench(
            &a,
            &m,
            &Rot::IDENTITY,
            Vec3::new(1.0, 0.0, 0.0),
            Vec3::ZERO,
            None,
        );
        assert!(
            w.force_world_n.x < -0.005 && w.force_world_n.x > -0.01,
            "{:?}",
            w.force_world_n
        );
        let w = rotor_wrench(
            &a,
            &m,
            &Rot::IDENTITY,
            Vec3::ZERO,
            Vec3::new(1.0, 0.0, 0.0),
            None,
        );
        assert!(w.force_world_n.x > 0.005);
    }
}
