//! The window: replay at a speed, and the controls. Mouse: left drag orbits, right drag pans,
//! the wheel zooms. Keys: space plays / pauses, + / − change the speed, ← / → scrub one second,
//! Home / End jump to the start / end; P saves the window as a PNG. Live, the view follows the
//! flight and the arrows belong to the keyboard teacher (`teach`). Each action is said on
//! stderr (`viewer: …`), so a session can be followed, and tested.

use crate::flight::Flight;
use crate::scene3d::{Orbit, camera_quality};
use crate::{Args, FlightData, Playback, Redraw, ViewSettings, add_common};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::log::{Level, LogPlugin};
use bevy::prelude::*;
use bevy::render::renderer::RenderAdapterInfo;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::text::FontSize;
use std::path::PathBuf;
use std::time::Instant;

const SPEED_MIN: f64 = 1.0 / 16.0;
const SPEED_MAX: f64 = 16.0;

/// Live (the view follows a running flight): no replay keys.
#[derive(Resource, Clone, Copy, Debug)]
pub struct Mode {
    pub live: bool,
    pub teacher: bool,
}

/// The windowed app; `started` is when the process started (for the opening time).
pub fn app(args: &Args, flight: Flight, playback: Playback, started: Instant) -> App {
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
    crate::opening::add(&mut app, started, true);
    app.insert_resource(Mode {
        live: args.live.is_some(),
        teacher: args.teacher.is_some(),
    })
    .add_systems(Startup, spawn_camera)
    .add_systems(
        Update,
        (keys, advance, mouse, save_window).chain().before(Redraw),
    );
    app
}

fn spawn_camera(
    mut commands: Commands,
    flight: Res<FlightData>,
    mode: Res<Mode>,
    adapter: Option<Res<RenderAdapterInfo>>,
) {
    let orbit = Orbit::framing(&flight.0);
    let (msaa, shadows) = camera_quality(adapter.as_deref());
    commands.spawn((Camera3d::default(), orbit.transform(), orbit, msaa, shadows));
    let help = match (mode.live, mode.teacher) {
        (true, true) => {
            "hold Tab: take over   arrows: tilt   Q/E: yaw   PgUp/PgDn: thrust   X: e-stop   \
             mouse: orbit / pan / zoom   P: save PNG"
        }
        (true, false) => "live   left drag: orbit   right drag: pan   wheel: zoom   P: save PNG",
        (false, _) => {
            "left drag: orbit   right drag: pan   wheel: zoom   space: play/pause   +/-: speed   \
             left/right: -/+1 s   Home/End   P: save PNG"
        }
    };
    commands.spawn((
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(6.0),
            left: Val::Px(8.0),
            ..default()
        },
        Text::new(help),
        TextFont::from_font_size(FontSize::Px(12.0)),
        TextColor(Color::srgba(0.85, 0.87, 0.9, 0.8)),
    ));
}

fn keys(
    keys: Res<ButtonInput<KeyCode>>,
    mut playback: ResMut<Playback>,
    flight: Res<FlightData>,
    mode: Res<Mode>,
) {
    if mode.live {
        return;
    }
    let f = &flight.0;
    if keys.just_pressed(KeyCode::Space) {
        if !playback.playing && playback.t_s >= f.end_s() {
            playback.t_s = f.start_s();
        }
        playback.playing = !playback.playing;
        if playback.playing {
            eprintln!(
                "viewer: playing from {:.2} s at {}×",
                playback.t_s, playback.speed
            );
        } else {
            eprintln!("viewer: paused at {:.2} s", playback.t_s);
        }
    }
    if keys.any_just_pressed([KeyCode::Equal, KeyCode::NumpadAdd]) {
        playback.speed = (playback.speed * 2.0).min(SPEED_MAX);
        eprintln!("viewer: speed {}×", playback.speed);
    }
    if keys.any_just_pressed([KeyCode::Minus, KeyCode::NumpadSubtract]) {
        playback.speed = (playback.speed / 2.0).max(SPEED_MIN);
        eprintln!("viewer: speed {}×", playback.speed);
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
    let t = t.clamp(f.start_s(), f.end_s());
    if t != playback.t_s {
        playback.t_s = t;
        eprintln!("viewer: at {t:.2} s");
    }
}

/// The replay clock runs from when the window shows the flight (on lavapipe the first seconds
/// go to compiling pipelines; a replay started then would be seconds in when first seen).
fn advance(
    time: Res<Time>,
    mut playback: ResMut<Playback>,
    flight: Res<FlightData>,
    opened: Res<crate::opening::Opened>,
) {
    if !playback.playing || opened.first_frame_ms.is_none() {
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
    let released = buttons.any_just_released([MouseButton::Left, MouseButton::Right]);
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
        if released || lines != 0.0 {
            eprintln!(
                "viewer: view: yaw {:.0}°, pitch {:.0}°, {:.2} m from ({:.2}, {:.2}, {:.2})",
                orbit.yaw_rad.to_degrees(),
                orbit.pitch_rad.to_degrees(),
                orbit.distance_m,
                orbit.target.x,
                orbit.target.y,
                orbit.target.z
            );
        }
    }
}

/// P: the window as `depthpilot-view-N.png` in the working directory (the first N not taken).
fn save_window(
    mut commands: Commands,
    keys: Res<ButtonInput<KeyCode>>,
    playback: Res<Playback>,
    mut last: Local<u32>,
) {
    if !keys.just_pressed(KeyCode::KeyP) {
        return;
    }
    // After the last one asked for: two presses before the first is written get two files.
    let Some((n, path)) = (*last + 1..10_000)
        .map(|n| (n, PathBuf::from(format!("depthpilot-view-{n}.png"))))
        .find(|(_, p)| !p.exists())
    else {
        eprintln!("depthpilot-viewer: error: depthpilot-view-1..9999.png all exist here");
        return;
    };
    *last = n;
    let t_s = playback.t_s;
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>| {
            let saved = captured
                .image
                .clone()
                .try_into_dynamic()
                .map_err(|e| e.to_string())
                .and_then(|img| img.to_rgb8().save(&path).map_err(|e| e.to_string()));
            match saved {
                Ok(()) => eprintln!("viewer: saved {} (t = {t_s:.2} s)", path.display()),
                Err(e) => eprintln!(
                    "depthpilot-viewer: error: cannot write {}: {e}",
                    path.display()
                ),
            }
        },
    );
}
