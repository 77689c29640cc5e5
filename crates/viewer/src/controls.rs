//! The window: replay at a speed, and the controls. Mouse: left drag orbits, right drag pans,
//! the wheel zooms. Keys: space plays / pauses, + / − change the speed, ← / → scrub one second,
//! Home / End jump to the start / end.

use crate::flight::Flight;
use crate::scene3d::Orbit;
use crate::{Args, FlightData, Playback, Redraw, ViewSettings, add_common};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::log::{Level, LogPlugin};
use bevy::prelude::*;
use bevy::text::FontSize;

const SPEED_MIN: f64 = 1.0 / 16.0;
const SPEED_MAX: f64 = 16.0;

/// The windowed app.
pub fn app(args: &Args, flight: Flight, playback: Playback) -> App {
    let (w, h) = args.size.unwrap_or((1280, 720));
    let title = format!("depthpilot-viewer: {}", flight.path.display());
    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: Some(Window {
                    title,
                    resolution: (w, h).into(),
                    ..default()
                }),
                ..default()
            })
            .set(LogPlugin {
                level: Level::WARN,
                filter: "wgpu=error,naga=error".into(),
                ..default()
            }),
    );
    let settings = ViewSettings {
        ui_scale: 1.0,
        depth_panel: !args.no_depth_panel,
    };
    add_common(&mut app, flight, playback, settings);
    app.add_systems(Startup, spawn_camera)
        .add_systems(Update, (keys, advance, mouse).chain().before(Redraw));
    app
}

fn spawn_camera(mut commands: Commands, flight: Res<FlightData>) {
    let orbit = Orbit::framing(&flight.0);
    commands.spawn((Camera3d::default(), orbit.transform(), orbit));
    commands.spawn((
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(6.0),
            left: Val::Px(8.0),
            ..default()
        },
        Text::new(
            "left drag: orbit   right drag: pan   wheel: zoom   space: play/pause   +/-: speed   \
             left/right: -/+1 s   Home/End",
        ),
        TextFont::from_font_size(FontSize::Px(12.0)),
        TextColor(Color::srgba(0.85, 0.87, 0.9, 0.8)),
    ));
}

fn keys(keys: Res<ButtonInput<KeyCode>>, mut playback: ResMut<Playback>, flight: Res<FlightData>) {
    let f = &flight.0;
    if keys.just_pressed(KeyCode::Space) {
        if !playback.playing && playback.t_s >= f.end_s() {
            playback.t_s = f.start_s();
        }
        playback.playing = !playback.playing;
    }
    if keys.any_just_pressed([KeyCode::Equal, KeyCode::NumpadAdd]) {
        playback.speed = (playback.speed * 2.0).min(SPEED_MAX);
    }
    if keys.any_just_pressed([KeyCode::Minus, KeyCode::NumpadSubtract]) {
        playback.speed = (playback.speed / 2.0).max(SPEED_MIN);
    }
    let mut t = playback.t_s;
    if keys.just_pressed(KeyCode::ArrowRight) {
        t += 1.0;
    }
    if keys.just_pressed(KeyCode::ArrowLeft) {
        t -= 1.0;
    }
    if keys.just_pressed(KeyCode::Home) {
        t = f.start_s();
    }
    if keys.just_pressed(KeyCode::End) {
        t = f.end_s();
    }
    playback.t_s = t.clamp(f.start_s(), f.end_s());
}

fn advance(time: Res<Time>, mut playback: ResMut<Playback>, flight: Res<FlightData>) {
    if !playback.playing {
        return;
    }
    let end = flight.0.end_s();
    playback.t_s += time.delta_secs_f64() * playback.speed;
    if playback.t_s >= end {
        playback.t_s = end;
        playback.playing = false;
    }
}

fn mouse(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut cameras: Query<(&mut Orbit, &mut Transform)>,
) {
    for (mut orbit, mut transform) in &mut cameras {
        let d = motion.delta;
        if buttons.pressed(MouseButton::Left) && d != Vec2::ZERO {
            orbit.yaw_rad -= d.x * 0.006;
            orbit.pitch_rad = (orbit.pitch_rad + d.y * 0.006).clamp(-1.5, 1.5);
        }
        if buttons.pressed(MouseButton::Right) && d != Vec2::ZERO {
            let k = orbit.distance_m * 0.0015;
            let right = transform.right().as_vec3();
            let up = transform.up().as_vec3();
            orbit.target += (-right * d.x + up * d.y) * k;
        }
        let lines = match scroll.unit {
            MouseScrollUnit::Line => scroll.delta.y,
            MouseScrollUnit::Pixel => scroll.delta.y / 40.0,
        };
        if lines != 0.0 {
            orbit.distance_m = (orbit.distance_m * 0.9f32.powf(lines)).clamp(0.2, 100.0);
        }
        *transform = orbit.transform();
    }
}
