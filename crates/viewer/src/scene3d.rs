//! The static 3D scene: lights, the floor and its grid, the scene's boxes, the Kinect's body and
//! frustum; and where the 3D camera starts (framing the flight). World axes are the project's
//! (z up, metres): the camera's up vector is +z, nothing is converted.

use crate::flight::Flight;
use bevy::asset::RenderAssetUsages;
use bevy::light::{CascadeShadowConfigBuilder, NotShadowCaster, ShadowFilteringMethod};
use bevy::mesh::PrimitiveTopology;
use bevy::prelude::*;
use bevy::render::renderer::RenderAdapterInfo;
use depthpilot_types::scene::Sensing;
use depthpilot_vision::CameraModel;

/// How far the frustum is drawn (the Kinect v2's range).
pub const FRUSTUM_FAR_M: f64 = 4.5;
/// Kinect depth image size.
pub const KINECT_WIDTH_PX: f64 = 512.0;
pub const KINECT_HEIGHT_PX: f64 = 424.0;

pub const BACKGROUND: Color = Color::srgb(0.07, 0.08, 0.11);

/// glam vector of an `[f64; 3]`.
/// How the 3D camera renders on this adapter. On a software renderer (Mesa's lavapipe, what CI
/// and GPU-less machines have) every pixel is CPU time: without MSAA and with 2×2 shadow
/// filtering a 1280×720 frame took 115 ms instead of 210 ms (release build, 2 cores); a GPU
/// keeps 4× MSAA and soft shadows.
pub fn camera_quality(adapter: Option<&RenderAdapterInfo>) -> (Msaa, ShadowFilteringMethod) {
    // wgpu's DeviceType, which bevy does not re-export.
    let software = adapter.is_some_and(|a| format!("{:?}", a.device_type) == "Cpu");
    if software {
        (Msaa::Off, ShadowFilteringMethod::Hardware2x2)
    } else {
        (Msaa::Sample4, ShadowFilteringMethod::Gaussian)
    }
}

pub fn v3(a: [f64; 3]) -> Vec3 {
    Vec3::new(a[0] as f32, a[1] as f32, a[2] as f32)
}

pub fn dv3(a: depthpilot_types::Vec3) -> Vec3 {
    v3([a.x, a.y, a.z])
}

/// Rotation of a project rotation matrix (world_from_body).
pub fn quat_of(r: &depthpilot_types::Rot) -> Quat {
    let m = &r.m;
    let col = |j: usize| Vec3::new(m[0][j] as f32, m[1][j] as f32, m[2][j] as f32);
    Quat::from_mat3(&Mat3::from_cols(col(0), col(1), col(2))).normalize()
}

/// A mesh of line segments (pairs of points).
pub fn line_list(points: Vec<Vec3>) -> Mesh {
    Mesh::new(PrimitiveTopology::LineList, RenderAssetUsages::default())
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, points)
}

/// A polyline mesh (at least two points; a shorter one is padded).
pub fn line_strip(mut points: Vec<Vec3>) -> Mesh {
    while points.len() < 2 {
        points.push(points.last().copied().unwrap_or(Vec3::ZERO));
    }
    Mesh::new(PrimitiveTopology::LineStrip, RenderAssetUsages::default())
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, points)
}

/// An unlit colour (lines, markers).
pub fn flat(materials: &mut Assets<StandardMaterial>, color: Color) -> Handle<StandardMaterial> {
    materials.add(StandardMaterial {
        base_color: color,
        unlit: true,
        alpha_mode: if color.alpha() < 1.0 {
            AlphaMode::Blend
        } else {
            AlphaMode::Opaque
        },
        ..default()
    })
}

/// The Kinect's camera model, if the scene has one.
pub fn kinect_camera(flight: &Flight) -> Option<CameraModel> {
    let scene = flight.scene.as_ref()?;
    let Sensing::Kinect(k) = &scene.sensing else {
        return None;
    };
    CameraModel::new(k.intrinsics.resolve(), k.position_m, k.look_at_m, k.up_hint).ok()
}

/// Where the 3D camera looks from: an orbit around `target`.
#[derive(Component, Clone, Copy, Debug)]
pub struct Orbit {
    pub target: Vec3,
    /// Azimuth of the camera seen from the target, radians from +x towards +y.
    pub yaw_rad: f32,
    /// Elevation above the horizontal, radians.
    pub pitch_rad: f32,
    pub distance_m: f32,
}

impl Orbit {
    pub fn transform(&self) -> Transform {
        let (sy, cy) = self.yaw_rad.sin_cos();
        let (sp, cp) = self.pitch_rad.sin_cos();
        let eye = self.target + self.distance_m * Vec3::new(cp * cy, cp * sy, sp);
        Transform::from_translation(eye).looking_at(self.target, Vec3::Z)
    }

    /// Frames the flight: centred on the setpoints (where the flight is meant to be), seen
    /// from a few metres away, from the side (−y, so +x is to the right) and slightly above.
    pub fn framing(flight: &Flight) -> Self {
        let (lo, hi) = bounds(flight.rows.iter().map(|r| v3(r.setpoint_m)))
            .unwrap_or((Vec3::new(0.0, 0.0, 1.0), Vec3::new(0.0, 0.0, 1.0)));
        let target = (lo + hi) / 2.0;
        let radius = (hi - lo).length() / 2.0 + 0.55;
        Self {
            target,
            yaw_rad: -100f32.to_radians(),
            pitch_rad: 24f32.to_radians(),
            distance_m: (radius * 2.4 + 0.4).clamp(1.5, 30.0),
        }
    }
}

/// Bounding box of the finite points.
fn bounds(points: impl Iterator<Item = Vec3>) -> Option<(Vec3, Vec3)> {
    points.filter(|p| p.is_finite()).fold(None, |b, p| match b {
        None => Some((p, p)),
        Some((lo, hi)) => Some((lo.min(p), hi.max(p))),
    })
}

/// Spawns lights, floor, grid, boxes and the Kinect.
pub fn spawn_static(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<StandardMaterial>,
    flight: &Flight,
) {
    commands.insert_resource(ClearColor(BACKGROUND));
    commands.insert_resource(GlobalAmbientLight {
        color: Color::WHITE,
        brightness: 500.0,
        ..default()
    });
    commands.spawn((
        DirectionalLight {
            illuminance: 6_000.0,
            shadow_maps_enabled: true,
            ..default()
        },
        CascadeShadowConfigBuilder {
            num_cascades: 1,
            minimum_distance: 0.1,
            maximum_distance: 15.0,
            ..default()
        }
        .build(),
        Transform::from_xyz(1.5, -2.0, 6.0).looking_at(Vec3::ZERO, Vec3::Z),
    ));

    // Floor: a plane and a 0.5 m grid around the flight, with the x (red) and y (green) axes.
    let floor = flight.scene.as_ref().is_none_or(|s| s.world.floor);
    let orbit = Orbit::framing(flight);
    let half = (orbit.distance_m * 1.5).clamp(3.0, 20.0).ceil();
    let c = (orbit.target / 0.5).round() * 0.5;
    if floor {
        commands.spawn((
            Mesh3d(meshes.add(Plane3d::new(Vec3::Z, Vec2::splat(half)))),
            MeshMaterial3d(materials.add(StandardMaterial {
                base_color: Color::srgb(0.12, 0.13, 0.15),
                perceptual_roughness: 0.95,
                ..default()
            })),
            Transform::from_xyz(c.x, c.y, -0.002),
        ));
    }
    let mut grid = Vec::new();
    let n = (half / 0.5) as i32;
    for i in -n..=n {
        let d = i as f32 * 0.5;
        grid.extend([
            Vec3::new(c.x + d, c.y - half, 0.001),
            Vec3::new(c.x + d, c.y + half, 0.001),
            Vec3::new(c.x - half, c.y + d, 0.001),
            Vec3::new(c.x + half, c.y + d, 0.001),
        ]);
    }
    commands.spawn((
        NotShadowCaster,
        Mesh3d(meshes.add(line_list(grid))),
        MeshMaterial3d(flat(materials, Color::srgb(0.40, 0.43, 0.48))),
    ));
    let axes = [
        (Vec3::X, Color::srgb(0.9, 0.2, 0.2)),
        (Vec3::Y, Color::srgb(0.2, 0.85, 0.3)),
        (Vec3::Z, Color::srgb(0.3, 0.5, 1.0)),
    ];
    for (dir, color) in axes {
        commands.spawn((
            NotShadowCaster,
            Mesh3d(meshes.add(line_list(vec![
                Vec3::Z * 0.002,
                dir * 0.5 + Vec3::Z * 0.002,
            ]))),
            MeshMaterial3d(flat(materials, color)),
        ));
    }

    if let Some(scene) = &flight.scene {
        let box_material = materials.add(StandardMaterial {
            base_color: Color::srgb(0.38, 0.47, 0.62),
            perceptual_roughness: 0.8,
            ..default()
        });
        for b in &scene.world.boxes {
            let h = dv3(b.half_extents_m);
            commands.spawn((
                Mesh3d(meshes.add(Cuboid::new(2.0 * h.x, 2.0 * h.y, 2.0 * h.z))),
                MeshMaterial3d(box_material.clone()),
                Transform::from_translation(dv3(b.center_m)),
            ));
        }
    }
    if let Some(cam) = kinect_camera(flight) {
        spawn_kinect(commands, meshes, materials, &cam);
    }
}

/// The camera's body (a Kinect-sized box, long side along the image's x) and its frustum.
fn spawn_kinect(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<StandardMaterial>,
    cam: &CameraModel,
) {
    let origin = dv3(cam.position_m);
    let rotation = quat_of(&cam.world_from_camera);
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(0.25, 0.066, 0.066))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgb(0.16, 0.17, 0.19),
            perceptual_roughness: 0.4,
            ..default()
        })),
        // Centred on the optical centre (a camera on the floor shows its upper half).
        Transform::from_translation(origin).with_rotation(rotation),
    ));
    let corners = [
        (0.0, 0.0),
        (KINECT_WIDTH_PX, 0.0),
        (KINECT_WIDTH_PX, KINECT_HEIGHT_PX),
        (0.0, KINECT_HEIGHT_PX),
    ];
    let at = |z_m: f64| -> Vec<Vec3> {
        corners
            .iter()
            .map(|&(u, v)| dv3(cam.world_from_camera_point(cam.point_of(u, v, z_m))))
            .collect()
    };
    let far = at(FRUSTUM_FAR_M);
    let near = at(0.5);
    let mut lines = Vec::new();
    for i in 0..4 {
        let j = (i + 1) % 4;
        lines.extend([origin, far[i], far[i], far[j], near[i], near[j]]);
    }
    commands.spawn((
        NotShadowCaster,
        Mesh3d(meshes.add(line_list(lines))),
        MeshMaterial3d(flat(materials, Color::srgba(0.35, 0.8, 1.0, 0.8))),
    ));
}
