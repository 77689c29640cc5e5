//! What moves: the quad (body, arms, props spinning with the motor commands, attitude from the
//! log), the trails of the true and the estimated position up to the current time, the
//! setpoint and the estimate markers. All of it is a function of [`Playback::t_s`], so scrubbing
//! is a redraw.

use crate::flight::Flight;
use crate::scene3d::{flat, line_strip, quat_of, v3};
use crate::{FlightData, Playback};
use bevy::light::NotShadowCaster;
use bevy::prelude::*;
use depthpilot_types::Rot;

pub const QUAD_COLOR: Color = Color::srgb(1.0, 0.45, 0.0);
pub const TRUE_TRAIL_COLOR: Color = Color::srgb(0.2, 1.0, 0.35);
pub const ESTIMATE_COLOR: Color = Color::srgb(1.0, 0.25, 0.95);
pub const SETPOINT_COLOR: Color = Color::srgb(0.3, 0.85, 1.0);

/// Props' visual spin at full PWM (rad/s; a rate that reads as "fast" on screen).
const PROP_SPIN_AT_FULL_RAD_S: f64 = 40.0;
/// Crazyflie rotor directions (quad.rs: M1 CCW, M2 CW, M3 CCW, M4 CW), + is CCW from above.
const PROP_DIRECTION: [f64; 4] = [1.0, -1.0, 1.0, -1.0];

#[derive(Component)]
pub struct QuadBody;

#[derive(Component)]
pub struct Prop(pub usize);

#[derive(Component)]
pub struct SetpointMarker;

#[derive(Component)]
pub struct EstimateMarker;

/// A trail's mesh and the row index it was last built up to.
#[derive(Component)]
pub struct Trail {
    pub estimate: bool,
    pub mesh: Handle<Mesh>,
    pub built_to: Option<usize>,
}

/// Spawns the quad (true scale: `scene.quad.arm_m`, Crazyflie 2.x by default), markers, trails.
pub fn spawn(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<StandardMaterial>,
    flight: &Flight,
) {
    let arm_m = flight.scene.as_ref().map_or(0.046, |s| s.quad.arm_m) as f32;
    let body_mat = materials.add(StandardMaterial {
        base_color: QUAD_COLOR,
        emissive: LinearRgba::rgb(0.4, 0.15, 0.0),
        perceptual_roughness: 0.5,
        ..default()
    });
    let arm_mat = materials.add(StandardMaterial {
        base_color: Color::srgb(0.92, 0.92, 0.95),
        ..default()
    });
    let front_prop = materials.add(StandardMaterial {
        base_color: Color::srgba(1.0, 0.15, 0.1, 0.75),
        emissive: LinearRgba::rgb(0.3, 0.0, 0.0),
        alpha_mode: AlphaMode::Blend,
        ..default()
    });
    let back_prop = materials.add(StandardMaterial {
        base_color: Color::srgba(1.0, 0.9, 0.1, 0.75),
        emissive: LinearRgba::rgb(0.3, 0.25, 0.0),
        alpha_mode: AlphaMode::Blend,
        ..default()
    });
    let blade_mat = materials.add(StandardMaterial {
        base_color: Color::srgb(0.1, 0.1, 0.1),
        ..default()
    });
    let a = arm_m / std::f32::consts::SQRT_2;
    let motors = [(a, -a), (-a, -a), (-a, a), (a, a)];
    let prop_r = (arm_m * 0.5).max(0.012);
    let disc = meshes.add(Cylinder::new(prop_r, 0.002));
    let blade = meshes.add(Cuboid::new(2.0 * prop_r, prop_r * 0.22, 0.003));
    let pod = meshes.add(Cylinder::new(0.004, 0.016));
    let arm_mesh = meshes.add(Cuboid::new(arm_m, 0.006, 0.006));

    let start = flight.sample(flight.start_s());
    commands
        .spawn((
            QuadBody,
            Transform::from_translation(v3(start.pos_m)),
            Visibility::default(),
        ))
        .with_children(|q| {
            q.spawn((
                Mesh3d(meshes.add(Cuboid::new(0.04, 0.03, 0.018))),
                MeshMaterial3d(body_mat.clone()),
            ));
            // A nose so the heading reads: a short bar towards +x.
            q.spawn((
                Mesh3d(meshes.add(Cuboid::new(0.02, 0.008, 0.008))),
                MeshMaterial3d(body_mat.clone()),
                Transform::from_xyz(0.028, 0.0, 0.0),
            ));
            for (i, &(x, y)) in motors.iter().enumerate() {
                let angle = y.atan2(x);
                q.spawn((
                    Mesh3d(arm_mesh.clone()),
                    MeshMaterial3d(arm_mat.clone()),
                    Transform::from_xyz(x / 2.0, y / 2.0, 0.0)
                        .with_rotation(Quat::from_rotation_z(angle)),
                ));
                q.spawn((
                    Mesh3d(pod.clone()),
                    MeshMaterial3d(arm_mat.clone()),
                    Transform::from_xyz(x, y, -0.002)
                        .with_rotation(Quat::from_rotation_x(std::f32::consts::FRAC_PI_2)),
                ));
                let mat = if x > 0.0 {
                    front_prop.clone()
                } else {
                    back_prop.clone()
                };
                q.spawn((
                    Prop(i),
                    Transform::from_xyz(x, y, 0.009),
                    Visibility::default(),
                ))
                .with_children(|p| {
                    // Cylinder's axis is +y: turn it to +z.
                    p.spawn((
                        Mesh3d(disc.clone()),
                        MeshMaterial3d(mat),
                        Transform::from_rotation(Quat::from_rotation_x(
                            std::f32::consts::FRAC_PI_2,
                        )),
                    ));
                    p.spawn((
                        Mesh3d(blade.clone()),
                        MeshMaterial3d(blade_mat.clone()),
                        Transform::from_xyz(0.0, 0.0, 0.0015),
                    ));
                });
            }
        });

    commands.spawn((
        SetpointMarker,
        NotShadowCaster,
        Mesh3d(meshes.add(Sphere::new(0.015))),
        MeshMaterial3d(flat(materials, SETPOINT_COLOR)),
        Transform::from_translation(v3(start.row.setpoint_m)),
    ));
    commands.spawn((
        EstimateMarker,
        NotShadowCaster,
        Mesh3d(meshes.add(Sphere::new(0.01))),
        MeshMaterial3d(flat(materials, ESTIMATE_COLOR)),
        Transform::from_translation(v3(start.pos_m)),
        Visibility::Hidden,
    ));
    for (estimate, color) in [(false, TRUE_TRAIL_COLOR), (true, ESTIMATE_COLOR)] {
        let mesh = meshes.add(line_strip(Vec::new()));
        commands.spawn((
            NotShadowCaster,
            Trail {
                estimate,
                mesh: mesh.clone(),
                built_to: None,
            },
            Mesh3d(mesh),
            MeshMaterial3d(flat(materials, color)),
        ));
    }
}

/// Poses the quad, props and markers at the playback time.
#[allow(clippy::type_complexity)]
pub fn update_quad(
    playback: Res<Playback>,
    flight: Res<FlightData>,
    mut quads: Query<&mut Transform, (With<QuadBody>, Without<Prop>)>,
    mut props: Query<(&Prop, &mut Transform), Without<QuadBody>>,
    mut setpoints: Query<
        &mut Transform,
        (
            With<SetpointMarker>,
            Without<QuadBody>,
            Without<Prop>,
            Without<EstimateMarker>,
        ),
    >,
    mut estimates: Query<
        (&mut Transform, &mut Visibility),
        (
            With<EstimateMarker>,
            Without<QuadBody>,
            Without<Prop>,
            Without<SetpointMarker>,
        ),
    >,
) {
    let s = flight.0.sample(playback.t_s);
    let rot = Rot::from_rpy(s.rpy_rad[0], s.rpy_rad[1], s.rpy_rad[2]);
    for mut t in &mut quads {
        t.translation = v3(s.pos_m);
        t.rotation = quat_of(&rot);
    }
    for (prop, mut t) in &mut props {
        let pwm = f64::from(s.row.motors_pwm[prop.0]) / 65535.0;
        // Angle as if the rotor had spun at this speed all along: a function of time only, so
        // it is the same whether reached by playing or by scrubbing.
        let angle = PROP_DIRECTION[prop.0] * PROP_SPIN_AT_FULL_RAD_S * pwm * s.t_s;
        t.rotation = Quat::from_rotation_z(angle.rem_euclid(std::f64::consts::TAU) as f32);
    }
    for mut t in &mut setpoints {
        t.translation = v3(s.row.setpoint_m);
    }
    for (mut t, mut vis) in &mut estimates {
        match s.estimate_m {
            Some(e) => {
                t.translation = v3(e);
                *vis = Visibility::Inherited;
            }
            None => *vis = Visibility::Hidden,
        }
    }
}

/// Rebuilds a trail's polyline when the current row changes.
pub fn update_trails(
    playback: Res<Playback>,
    flight: Res<FlightData>,
    mut trails: Query<&mut Trail>,
    mut meshes: ResMut<Assets<Mesh>>,
) {
    let f = &flight.0;
    let index = f.index_at(playback.t_s);
    for mut trail in &mut trails {
        if trail.built_to == Some(index) {
            continue;
        }
        let rows = &f.rows[..=index];
        let points: Vec<Vec3> = if trail.estimate {
            rows.iter().filter_map(|r| r.estimate_m.map(v3)).collect()
        } else {
            rows.iter().map(|r| v3(r.pos_m)).collect()
        };
        if let Some(mut mesh) = meshes.get_mut(&trail.mesh) {
            *mesh = line_strip(points);
        }
        trail.built_to = Some(index);
    }
}
