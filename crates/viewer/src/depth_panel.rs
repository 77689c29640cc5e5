//! The depth camera's view as 2D panels: the flight's own synthetic Kinect
//! (`depthpilot_sim::kinect::KinectSensor`) re-renders the depth frame (and the IR frame, if the
//! scene has IR markers) for the logged true pose at the playback time, the detector runs on it,
//! and the detection is circled. False colour: near is warm, far is cool, no return is black.
//! A scene without a Kinect has no panel.

use crate::scene3d::kinect_camera;
use crate::{FlightData, Playback, Redraw};
use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::text::FontSize;
use depthpilot_sim::kinect::KinectSensor;
use depthpilot_types::scene::Sensing;
use depthpilot_types::{Rot, Vec3 as DVec3};
use depthpilot_vision::detector::LearntBackground;
use depthpilot_vision::{CameraModel, DepthFrame, Detector, DetectorConfig, HEIGHT, WIDTH};

/// Panel size on screen (half the Kinect's resolution), before the UI scale.
const PANEL_W_PX: f32 = 256.0;
const PANEL_H_PX: f32 = 212.0;
/// Colour-map range of the depth (the Kinect v2's).
const NEAR_MM: f64 = 500.0;
const FAR_MM: f64 = 4500.0;

pub fn add(app: &mut App) {
    app.init_resource::<PanelStatus>()
        .add_systems(Startup, setup.after(crate::setup_common))
        .add_systems(Update, update.in_set(Redraw));
}

/// The panel's state: the sensor, the learnt background, the images.
#[derive(Resource)]
struct Panel {
    sensor: KinectSensor,
    cam: CameraModel,
    background: Option<LearntBackground>,
    depth: Handle<Image>,
    ir: Option<Handle<Image>>,
    /// Row index last rendered.
    shown: Option<usize>,
}

#[derive(Component)]
struct PanelCaption;

/// What the depth panel shows now (its caption), for the screenshot's report.
#[derive(Resource, Default, Debug)]
pub struct PanelStatus(pub Option<String>);

fn rgba_image(images: &mut Assets<Image>) -> Handle<Image> {
    images.add(Image::new(
        Extent3d {
            width: WIDTH as u32,
            height: HEIGHT as u32,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        vec![0; WIDTH * HEIGHT * 4],
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::default(),
    ))
}

fn setup(
    mut commands: Commands,
    mut images: ResMut<Assets<Image>>,
    flight: Res<FlightData>,
    settings: Res<crate::ViewSettings>,
) {
    let f = &flight.0;
    let Some(scene) = &f.scene else { return };
    let Sensing::Kinect(cfg) = &scene.sensing else {
        return;
    };
    let Some(cam) = kinect_camera(f) else { return };
    let mut sensor = match KinectSensor::new(cfg, &scene.world, scene.quad.arm_m, scene.seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("depthpilot-viewer: warning: no depth panel: the scene's Kinect: {e}");
            return;
        }
    };
    // Learn the background as the flight's vision did, with the quad out of sight.
    let away = DVec3::new(1e3, 1e3, -1e3);
    let mut background = None;
    for i in 0..64u64 {
        let frame = sensor.render(i * 33_000_000, away, &Rot::IDENTITY).clone();
        let _ = sensor.detect_frame(&frame);
        background = sensor.detector().learnt_background();
        if background.is_some() {
            break;
        }
    }
    let depth = rgba_image(&mut images);
    let ir = cfg.ir_markers.then(|| rgba_image(&mut images));
    let scale = settings.ui_scale;
    let font = TextFont::from_font_size(FontSize::Px(12.0 * scale));
    let panel_node = Node {
        width: Val::Px(PANEL_W_PX * scale),
        height: Val::Px(PANEL_H_PX * scale),
        ..default()
    };
    commands
        .spawn((
            Node {
                position_type: PositionType::Absolute,
                top: Val::Px(8.0),
                right: Val::Px(8.0),
                padding: UiRect::all(Val::Px(4.0 * scale)),
                row_gap: Val::Px(4.0 * scale),
                flex_direction: FlexDirection::Column,
                ..default()
            },
            BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.55)),
        ))
        .with_children(|p| {
            p.spawn((
                PanelCaption,
                Text::new("Kinect depth"),
                font.clone(),
                TextColor(Color::srgb(0.92, 0.94, 0.97)),
            ));
            p.spawn((ImageNode::new(depth.clone()), panel_node.clone()));
            if let Some(ir) = &ir {
                p.spawn((
                    Text::new("Kinect IR"),
                    font.clone(),
                    TextColor(Color::srgb(0.92, 0.94, 0.97)),
                ));
                p.spawn((ImageNode::new(ir.clone()), panel_node.clone()));
            }
        });
    commands.insert_resource(Panel {
        sensor,
        cam,
        background,
        depth,
        ir,
        shown: None,
    });
}

fn update(
    panel: Option<ResMut<Panel>>,
    playback: Res<Playback>,
    flight: Res<FlightData>,
    mut images: ResMut<Assets<Image>>,
    mut captions: Query<&mut Text, With<PanelCaption>>,
    mut status: ResMut<PanelStatus>,
) {
    let Some(mut panel) = panel else { return };
    let f = &flight.0;
    let index = f.index_at(playback.t_s);
    if panel.shown == Some(index) {
        return;
    }
    panel.shown = Some(index);
    let s = f.sample(playback.t_s);
    let pos = DVec3::new(s.pos_m[0], s.pos_m[1], s.pos_m[2]);
    if let Some(frames) = &f.frames {
        // A camera session: the recorded frame at this time, as the camera saw it.
        let i = frames
            .partition_point(|(t, _)| *t <= playback.t_s)
            .saturating_sub(1);
        let Some((_, frame)) = frames.get(i) else {
            return;
        };
        let mut rgba = false_colour(frame);
        let row = &f.rows[index];
        let caption = match row.estimate_m {
            Some(p) => {
                let seen = DVec3::new(p[0], p[1], p[2]);
                if let Some(px) = panel.cam.pixel_of(panel.cam.camera_from_world(seen)) {
                    ring(&mut rgba, px, 9.0, [40, 255, 90]);
                }
                format!(
                    "recorded frame {}: detected at ({:.3}, {:.3}, {:.3}) m",
                    frame.seq, p[0], p[1], p[2]
                )
            }
            None => format!("recorded frame {}: quad not seen", frame.seq),
        };
        show(
            &panel,
            &mut images,
            rgba,
            frame.ir.as_deref(),
            caption,
            &mut captions,
            &mut status,
        );
        return;
    }
    let rot = Rot::from_rpy(s.rpy_rad[0], s.rpy_rad[1], s.rpy_rad[2]);
    let now_ns = (s.t_s.max(0.0) * 1e9) as u64;
    let frame = panel.sensor.render(now_ns, pos, &rot).clone();
    // A fresh detector with the learnt background per frame: a replay jumps, and a tracking
    // detector would gate out a quad that "moved" by a scrub.
    let detection = panel.background.clone().map(|b| {
        let mut d = Detector::new(panel.cam.clone(), DetectorConfig::default());
        d.restore_background(b)
            .map_err(|e| e.to_string())
            .and_then(|()| d.detect(&frame).map_err(|e| e.to_string()))
    });
    let mut rgba = false_colour(&frame);
    let caption = match &detection {
        Some(Ok(d)) => {
            ring(&mut rgba, d.pixel, 9.0, [40, 255, 90]);
            format!("Kinect depth: detected, {} px", d.pixels)
        }
        Some(Err(why)) => format!("Kinect depth: no detection ({why})"),
        None => "Kinect depth (no background learnt)".to_string(),
    };
    // The true pose, projected: a small white cross.
    if let Some(px) = panel.cam.pixel_of(panel.cam.camera_from_world(pos)) {
        cross(&mut rgba, px, 4, [255, 255, 255]);
    }
    show(
        &panel,
        &mut images,
        rgba,
        frame.ir.as_deref(),
        caption,
        &mut captions,
        &mut status,
    );
}

/// Puts a depth picture (and the IR image, if any) in the panels and the caption above them.
fn show(
    panel: &Panel,
    images: &mut Assets<Image>,
    rgba: Vec<u8>,
    ir: Option<&[u16]>,
    caption: String,
    captions: &mut Query<&mut Text, With<PanelCaption>>,
    status: &mut PanelStatus,
) {
    if let Some(mut image) = images.get_mut(&panel.depth) {
        image.data = Some(rgba);
    }
    if let (Some(handle), Some(ir)) = (&panel.ir, ir)
        && let Some(mut image) = images.get_mut(handle)
    {
        image.data = Some(grey(ir));
    }
    for mut text in captions.iter_mut() {
        if text.0 != caption {
            text.0.clone_from(&caption);
        }
    }
    status.0 = Some(caption);
}

/// Depth in false colour (RGBA8): near warm, far cool, 0 (no return) black.
fn false_colour(frame: &DepthFrame) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.depth_mm.len() * 4);
    for &d in &frame.depth_mm {
        if d == 0 {
            out.extend([0, 0, 0, 255]);
        } else {
            let x = ((f64::from(d) - NEAR_MM) / (FAR_MM - NEAR_MM)).clamp(0.0, 1.0);
            let [r, g, b] = turbo(1.0 - x);
            out.extend([r, g, b, 255]);
        }
    }
    out
}

/// A compact approximation of Google's Turbo colour map (x in 0..1, 0 blue, 1 red).
fn turbo(x: f64) -> [u8; 3] {
    let r = 0.1357 + x * (4.5974 - x * (42.3277 - x * (130.5887 - x * (150.5666 - x * 58.1375))));
    let g = 0.0914 + x * (2.1856 + x * (4.8052 - x * (14.0195 - x * (4.2109 + x * 2.7747))));
    let b = 0.1067 + x * (12.5925 - x * (60.1097 - x * (109.0745 - x * (88.5066 - x * 26.8183))));
    let q = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [q(r), q(g), q(b)]
}

/// IR intensity (u16) as grey, scaled to the frame's maximum.
fn grey(ir: &[u16]) -> Vec<u8> {
    let max = f64::from(ir.iter().copied().max().unwrap_or(1).max(1));
    ir.iter()
        .flat_map(|&v| {
            let g = (f64::from(v) / max * 255.0).round() as u8;
            [g, g, g, 255]
        })
        .collect()
}

fn put(rgba: &mut [u8], x: i64, y: i64, c: [u8; 3]) {
    if x < 0 || y < 0 || x >= WIDTH as i64 || y >= HEIGHT as i64 {
        return;
    }
    let i = (y as usize * WIDTH + x as usize) * 4;
    rgba[i..i + 3].copy_from_slice(&c);
}

fn ring(rgba: &mut [u8], (u, v): (f64, f64), r: f64, c: [u8; 3]) {
    for k in 0..96 {
        let a = f64::from(k) / 96.0 * std::f64::consts::TAU;
        for dr in [-0.5, 0.0, 0.5] {
            let x = (u + (r + dr) * a.cos()).round() as i64;
            let y = (v + (r + dr) * a.sin()).round() as i64;
            put(rgba, x, y, c);
        }
    }
}

fn cross(rgba: &mut [u8], (u, v): (f64, f64), half: i64, c: [u8; 3]) {
    let (x, y) = (u.round() as i64, v.round() as i64);
    for d in -half..=half {
        put(rgba, x + d, y, c);
        put(rgba, x, y + d, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_colour_marks_no_return_black() {
        let frame = DepthFrame {
            stamp_ns: 0,
            seq: 0,
            width: 2,
            height: 1,
            depth_mm: vec![0, 1000],
            ir: None,
        };
        let rgba = false_colour(&frame);
        assert_eq!(&rgba[..4], &[0, 0, 0, 255]);
        assert_ne!(&rgba[4..7], &[0, 0, 0]);
    }
}
