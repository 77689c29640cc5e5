//! The rapier3d world: a floor, static boxes and one rigid body for the quad with the exact mass
//! and inertia of the airframe. Forces are reset and re-applied every step (rapier keeps user
//! forces otherwise). Contacts are classified as touchdowns or crashes by impact speed and tilt.
//!
//! This is the only file that touches rapier's f32 glam types; everything else sees f64.

use crate::quad::Airframe;
use depthpilot_types::Rot;
use depthpilot_types::Vec3;
use depthpilot_types::scene::WorldConfig;
use rapier3d::prelude::*;
use serde::Serialize;

/// Half extents of the quad's collision box: the frame with its propellers, 10 cm across, 3 cm tall.
pub const QUAD_HALF_EXTENTS_M: [f64; 3] = [0.05, 0.05, 0.015];
/// Radius of the sphere around the collision box.
const QUAD_RADIUS_M: f64 = 0.0723;
/// Distance within which contacts are queried (far more than one step of travel at 10 m/s).
const CONTACT_MARGIN_M: f64 = 0.05;

/// The quad's kinematic state, world frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BodyState {
    pub pos_m: Vec3,
    pub vel_m_s: Vec3,
    pub world_from_body: Rot,
    /// Angular velocity in the body frame.
    pub body_rates_rad_s: Vec3,
}

/// The first moment of a contact.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Impact {
    pub t_s: f64,
    pub speed_m_s: f64,
    pub tilt_deg: f64,
    pub with_floor: bool,
    pub crash: bool,
}

/// See the module doc.
pub struct World {
    pw: PhysicsWorld,
    quad: RigidBodyHandle,
    quad_collider: ColliderHandle,
    floor: Option<ColliderHandle>,
    has_floor: bool,
    crash_speed_m_s: f64,
    crash_tilt_rad: f64,
    in_contact: bool,
    check_contacts: bool,
    /// (centre, half extents) of each box.
    boxes: Vec<(Vec3, Vec3)>,
}

fn v32(v: Vec3) -> Vector {
    Vector::new(v.x as f32, v.y as f32, v.z as f32)
}

fn v64(v: Vector) -> Vec3 {
    Vec3::new(f64::from(v.x), f64::from(v.y), f64::from(v.z))
}

impl World {
    /// The world with the quad level at `initial_pos_m`, heading `initial_yaw_rad`.
    pub fn new(
        cfg: &WorldConfig,
        af: &Airframe,
        dt_s: f64,
        initial_pos_m: Vec3,
        initial_yaw_rad: f64,
    ) -> Self {
        Self::with_attitude(cfg, af, dt_s, initial_pos_m, [0.0, 0.0, initial_yaw_rad])
    }

    /// The world with the quad at `initial_pos_m` in an attitude given as right-handed ZYX
    /// Euler angles (roll, pitch, yaw; radians), e.g. roll π: on its back.
    pub fn with_attitude(
        cfg: &WorldConfig,
        af: &Airframe,
        dt_s: f64,
        initial_pos_m: Vec3,
        initial_rpy_rad: [f64; 3],
    ) -> Self {
        let mut pw = PhysicsWorld::new();
        pw.gravity = Vector::new(0.0, 0.0, -9.81);
        pw.integration_parameters.dt = dt_s as f32;
        let floor = cfg.floor.then(|| {
            let body = pw.insert_body(RigidBodyBuilder::fixed());
            let col = ColliderBuilder::cuboid(50.0, 50.0, 0.5)
                .translation(Vector::new(0.0, 0.0, -0.5))
                .friction(0.8)
                .restitution(0.0);
            pw.insert_collider(col, Some(body))
        });
        for b in &cfg.boxes {
            let body = pw.insert_body(RigidBodyBuilder::fixed().translation(v32(b.center_m)));
            let h = b.half_extents_m;
            let col = ColliderBuilder::cuboid(h.x as f32, h.y as f32, h.z as f32).friction(0.8);
            pw.insert_collider(col, Some(body));
        }
        let i = af.inertia_kg_m2;
        let mprops = MassProperties::new(Vector::ZERO, af.mass_kg as f32, v32(i));
        let [roll, pitch, yaw] = initial_rpy_rad;
        let q = Rot::from_rpy(roll, pitch, yaw).to_quat();
        let body = RigidBodyBuilder::dynamic()
            .translation(v32(initial_pos_m))
            .additional_mass_properties(mprops)
            .can_sleep(false)
            .gyroscopic_forces_enabled(true)
            .build();
        let quad = pw.insert_body(body);
        if let Some(b) = pw.bodies.get_mut(quad) {
            b.set_rotation(
                Rotation::from_xyzw(q[1] as f32, q[2] as f32, q[3] as f32, q[0] as f32),
                true,
            );
        }
        let [hx, hy, hz] = QUAD_HALF_EXTENTS_M;
        let col = ColliderBuilder::cuboid(hx as f32, hy as f32, hz as f32)
            .density(0.0)
            .friction(0.5)
            .restitution(0.0);
        let quad_collider = pw.insert_collider(col, Some(quad));
        let resting = cfg.floor && initial_pos_m.z <= hz + 1e-3;
        Self {
            pw,
            quad,
            quad_collider,
            floor,
            has_floor: cfg.floor,
            crash_speed_m_s: cfg.crash_impact_speed_m_s,
            crash_tilt_rad: cfg.crash_tilt_deg.to_radians(),
            in_contact: resting,
            check_contacts: cfg.floor || !cfg.boxes.is_empty(),
            boxes: cfg
                .boxes
                .iter()
                .map(|b| (b.center_m, b.half_extents_m))
                .collect(),
        }
    }

    pub fn has_floor(&self) -> bool {
        self.has_floor
    }

    pub fn state(&self) -> BodyState {
        let Some(b) = self.pw.bodies.get(self.quad) else {
            return BodyState {
                pos_m: Vec3::ZERO,
                vel_m_s: Vec3::ZERO,
                world_from_body: Rot::IDENTITY,
                body_rates_rad_s: Vec3::ZERO,
            };
        };
        let q = b.rotation();
        let rot = Rot::from_quat(
            f64::from(q.w),
            f64::from(q.x),
            f64::from(q.y),
            f64::from(q.z),
        );
        BodyState {
            pos_m: v64(b.translation()),
            vel_m_s: v64(b.linvel()),
            world_from_body: rot,
            body_rates_rad_s: rot.inverse_apply(v64(b.angvel())),
        }
    }

    /// Applies a force and a torque (both in the world frame) for the next step, replacing the
    /// previous ones, plus an optional one-off impulse.
    pub fn set_wrench(&mut self, force_world_n: Vec3, torque_world_n_m: Vec3, impulse_n_s: Vec3) {
        if let Some(b) = self.pw.bodies.get_mut(self.quad) {
            b.reset_forces(false);
            b.reset_torques(false);
            b.add_force(v32(force_world_n), false);
            b.add_torque(v32(torque_world_n_m), false);
            if impulse_n_s != Vec3::ZERO {
                b.apply_impulse(v32(impulse_n_s), true);
            }
        }
    }

    /// Could the quad touch anything within one step? A cheap bound (bounding sphere against the
    /// floor plane and the boxes' bounding boxes) that skips the contact query in free flight.
    fn near_obstacle(&self, pos_m: Vec3) -> bool {
        let reach = QUAD_RADIUS_M + CONTACT_MARGIN_M;
        if self.has_floor && pos_m.z < reach {
            return true;
        }
        self.boxes.iter().any(|(c, h)| {
            (pos_m.x - c.x).abs() < h.x + reach
                && (pos_m.y - c.y).abs() < h.y + reach
                && (pos_m.z - c.z).abs() < h.z + reach
        })
    }

    /// Advances one physics step; returns the impact if a new contact began. `before` is the
    /// state the caller read before the step (saves reading it twice).
    pub fn step(&mut self, t_s: f64, before: &BodyState) -> Option<Impact> {
        self.pw.step();
        if !self.check_contacts {
            return None;
        }
        if !self.near_obstacle(before.pos_m) {
            self.in_contact = false;
            return None;
        }
        let mut touching = false;
        let mut with_floor = false;
        for pair in self.pw.narrow_phase.contact_pairs_with(self.quad_collider) {
            if pair.has_any_active_contact() {
                touching = true;
                let other = if pair.collider1 == self.quad_collider {
                    pair.collider2
                } else {
                    pair.collider1
                };
                with_floor |= Some(other) == self.floor;
            }
        }
        let began = touching && !self.in_contact;
        self.in_contact = touching;
        if !began {
            return None;
        }
        let speed = before.vel_m_s.norm();
        let tilt = before.world_from_body.tilt_rad();
        Some(Impact {
            t_s,
            speed_m_s: speed,
            tilt_deg: tilt.to_degrees(),
            with_floor,
            crash: speed > self.crash_speed_m_s || tilt > self.crash_tilt_rad,
        })
    }

    pub fn in_contact(&self) -> bool {
        self.in_contact
    }
}

/// How the benchmark's bare body moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BareMode {
    /// Motionless at 1 m, gravity off: the cheapest step rapier has.
    Still,
    /// Gravity and a persistent cancelling force, slow drift: a body that flies without anyone
    /// touching it between steps.
    Coasting,
    /// As `Coasting`, but the force is reset and set again before every step, as any
    /// force-driven vehicle must (rapier then re-processes the modified body each step).
    Driven,
}

/// A bare rapier world with one dynamic body and the floor, for the speed benchmark: what
/// stepping rapier costs with nothing of ours around it.
pub struct BareWorld {
    pw: PhysicsWorld,
    body: RigidBodyHandle,
    mode: BareMode,
    weight_n: f32,
}

impl BareWorld {
    pub fn new(dt_s: f64, mode: BareMode) -> Self {
        let mut pw = PhysicsWorld::new();
        pw.gravity = Vector::new(0.0, 0.0, -9.81);
        pw.integration_parameters.dt = dt_s as f32;
        let floor = pw.insert_body(RigidBodyBuilder::fixed());
        pw.insert_collider(
            ColliderBuilder::cuboid(50.0, 50.0, 0.5).translation(Vector::new(0.0, 0.0, -0.5)),
            Some(floor),
        );
        let mass_kg = 0.027f32;
        let mut builder = RigidBodyBuilder::dynamic()
            .translation(Vector::new(0.0, 0.0, 1.0))
            .additional_mass_properties(MassProperties::new(
                Vector::ZERO,
                mass_kg,
                Vector::new(1.395e-5, 1.436e-5, 2.173e-5),
            ))
            .can_sleep(false);
        builder = if mode == BareMode::Still {
            builder.gravity_scale(0.0)
        } else {
            builder
                .linvel(Vector::new(0.01, 0.005, 0.0))
                .angvel(Vector::new(0.0, 0.0, 0.05))
        };
        let body = pw.insert_body(builder);
        let weight_n = 9.81 * mass_kg;
        if mode == BareMode::Coasting
            && let Some(b) = pw.bodies.get_mut(body)
        {
            b.add_force(Vector::new(0.0, 0.0, weight_n), true);
        }
        pw.insert_collider(
            ColliderBuilder::cuboid(0.05, 0.05, 0.015).density(0.0),
            Some(body),
        );
        Self {
            pw,
            body,
            mode,
            weight_n,
        }
    }

    pub fn step(&mut self) {
        if self.mode == BareMode::Driven
            && let Some(b) = self.pw.bodies.get_mut(self.body)
        {
            b.reset_forces(false);
            b.add_force(Vector::new(0.0, 0.0, self.weight_n), false);
        }
        self.pw.step();
    }
}
