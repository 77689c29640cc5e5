//! Headless screenshots: no window, the 3D camera renders into an image, which is captured until
//! the picture is complete (the first frames are black, or lack parts, while pipelines
//! compile), written as PNG; then a few more frames are timed while scrubbing, and the app
//! exits. Works on lavapipe (Mesa's software Vulkan): see `check_vulkan`.

use crate::depth_panel::PanelStatus;
use crate::flight::Flight;
use crate::scene3d::{Orbit, camera_quality, v3};
use crate::{Args, FlightData, Playback, Redraw, ViewSettings, add_common};
use bevy::app::ScheduleRunnerPlugin;
use bevy::camera::RenderTarget;
use bevy::log::{Level, LogPlugin};
use bevy::prelude::*;
use bevy::render::render_resource::TextureFormat;
use bevy::render::renderer::RenderAdapterInfo;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::ui::IsDefaultUiCamera;
use bevy::window::ExitCondition;
use bevy::winit::WinitPlugin;
use std::num::NonZeroU8;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Frames between two capture attempts.
const CAPTURE_EVERY_FRAMES: u32 = 4;
/// Give up after this many captures without a complete picture.
const MAX_CAPTURES: u32 = 400;
/// Frames timed after the screenshot (scrubbing through the flight).
const TIMED_FRAMES: u32 = 10;

/// Where the screenshot stands.
#[derive(Resource)]
struct Shot {
    out: PathBuf,
    target: Handle<Image>,
    started: Instant,
    load_ms: f64,
    rows: usize,
    /// The requested time (restored after timing is done, not used again).
    t_s: f64,
    frame: u32,
    captures: u32,
    pending: bool,
    /// The previous complete-looking capture, and when it arrived: accepted once the next one
    /// is identical (the picture was complete then; a window would have shown it).
    previous: Option<(Vec<u8>, Instant)>,
    /// Milliseconds from start to the accepted capture.
    first_ms: Option<f64>,
    /// Milliseconds from start to the capture that confirmed it.
    confirmed_ms: f64,
    phase: Phase,
}

enum Phase {
    Capturing,
    Timing { since: Instant, frames: u32 },
    Done,
}

#[derive(Component)]
pub struct MainCamera;

/// Fails with what to install when the machine has no Vulkan driver at all (Linux).
pub fn check_vulkan() -> Result<(), String> {
    if !cfg!(target_os = "linux")
        || std::env::var_os("VK_ICD_FILENAMES").is_some()
        || std::env::var_os("VK_DRIVER_FILES").is_some()
    {
        return Ok(());
    }
    let dirs = [
        "/usr/share/vulkan/icd.d",
        "/etc/vulkan/icd.d",
        "/usr/local/share/vulkan/icd.d",
    ];
    let any = dirs.iter().any(|d| {
        std::fs::read_dir(d).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
    });
    if any {
        Ok(())
    } else {
        Err(format!(
            "no Vulkan driver found (no ICD file in {}): headless screenshots need Mesa's \
             software Vulkan (lavapipe): run scripts/setup, or `apt-get install \
             mesa-vulkan-drivers`",
            dirs.join(", ")
        ))
    }
}

/// The headless app: renders `flight` at `playback.t_s` into `out`.
pub fn app(args: &Args, out: &Path, flight: Flight, playback: Playback, t0: Instant) -> App {
    let (w, h) = args.size.unwrap_or((1280, 720));
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rows = flight.rows.len();
    let t_s = playback.t_s;
    let mut app = App::new();
    app.add_plugins((
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: None,
                exit_condition: ExitCondition::DontExit,
                ..default()
            })
            .set(LogPlugin {
                level: Level::WARN,
                filter: "wgpu=error,naga=error".into(),
                ..default()
            })
            .disable::<WinitPlugin>(),
        ScheduleRunnerPlugin::run_loop(Duration::ZERO),
    ));
    let settings = ViewSettings {
        ui_scale: (h as f32 / 720.0).clamp(0.6, 3.0),
        depth_panel: !args.no_depth_panel,
    };
    add_common(&mut app, flight, playback, settings);
    crate::opening::add(&mut app, t0, false);
    let target = app
        .world_mut()
        .resource_mut::<Assets<Image>>()
        .add(Image::new_target_texture(
            w,
            h,
            TextureFormat::Rgba8UnormSrgb,
            None,
        ));
    app.insert_resource(Shot {
        out: out.to_path_buf(),
        target,
        started: t0,
        load_ms,
        rows,
        t_s,
        frame: 0,
        captures: 0,
        pending: false,
        previous: None,
        first_ms: None,
        confirmed_ms: 0.0,
        phase: Phase::Capturing,
    })
    .add_systems(Startup, spawn_camera)
    .add_systems(Update, drive.after(Redraw));
    app
}

fn spawn_camera(
    mut commands: Commands,
    shot: Res<Shot>,
    flight: Res<FlightData>,
    adapter: Option<Res<RenderAdapterInfo>>,
) {
    let orbit = Orbit::framing(&flight.0);
    let (msaa, shadows) = camera_quality(adapter.as_deref());
    commands.spawn((
        MainCamera,
        Camera3d::default(),
        RenderTarget::Image(shot.target.clone().into()),
        orbit.transform(),
        orbit,
        IsDefaultUiCamera,
        msaa,
        shadows,
    ));
}

fn drive(
    mut commands: Commands,
    mut shot: ResMut<Shot>,
    mut playback: ResMut<Playback>,
    flight: Res<FlightData>,
    adapter: Option<Res<RenderAdapterInfo>>,
    opened: Res<crate::opening::Opened>,
) {
    shot.frame += 1;
    match shot.phase {
        Phase::Capturing => {
            if !shot.pending && shot.frame.is_multiple_of(CAPTURE_EVERY_FRAMES) {
                shot.pending = true;
                shot.captures += 1;
                commands
                    .spawn(Screenshot::image(shot.target.clone()))
                    .observe(on_captured);
            }
        }
        Phase::Timing { since, frames } => {
            if frames < TIMED_FRAMES {
                // Scrub: each timed frame shows another instant of the flight.
                let f = &flight.0;
                let span = (f.end_s() - f.start_s()).max(1e-3);
                let k = f64::from(frames + 1) * 0.618_034;
                playback.t_s = f.start_s() + span * (k - k.floor());
                shot.phase = Phase::Timing {
                    since,
                    frames: frames + 1,
                };
            } else {
                let frame_ms = since.elapsed().as_secs_f64() * 1e3 / f64::from(frames);
                let first_ms = shot.first_ms.unwrap_or(0.0);
                let adapter = adapter.map_or("?".to_string(), |a| a.name.clone());
                eprintln!(
                    "viewer: loaded {} rows in {:.1} ms; first frame after {:.0} ms (the next \
                     capture, identical, at {:.0} ms; every pipeline ready at {}); frame time \
                     {:.1} ms (mean of {frames} frames, scrubbing; adapter: {adapter})",
                    shot.rows,
                    shot.load_ms,
                    first_ms,
                    shot.confirmed_ms,
                    opened
                        .first_frame_ms
                        .map_or("?".to_string(), |ms| format!("{ms:.0} ms")),
                    frame_ms
                );
                eprintln!(
                    "viewer: wrote {} (t = {:.2} s) in {:.0} ms in all",
                    shot.out.display(),
                    shot.t_s,
                    shot.started.elapsed().as_secs_f64() * 1e3
                );
                shot.phase = Phase::Done;
                commands.write_message(AppExit::Success);
            }
        }
        Phase::Done => {}
    }
}

fn on_captured(
    captured: On<ScreenshotCaptured>,
    mut commands: Commands,
    mut shot: ResMut<Shot>,
    playback: Res<Playback>,
    flight: Res<FlightData>,
    cameras: Query<(&Camera, &GlobalTransform), With<MainCamera>>,
    panel: Option<Res<PanelStatus>>,
) {
    shot.pending = false;
    let Some(data) = captured.image.data.as_ref() else {
        return;
    };
    let uniform = data
        .chunks_exact(4)
        .all(|p| data.get(..4).is_some_and(|first| p == first));
    let complete_since = match &shot.previous {
        Some((previous, at)) if !uniform && previous == data => Some(*at),
        _ => None,
    };
    let Some(complete_since) = complete_since else {
        if !uniform {
            shot.previous = Some((data.clone(), Instant::now()));
        }
        if shot.captures >= MAX_CAPTURES {
            eprintln!(
                "depthpilot-viewer: error: no complete picture after {} captures ({} frames): \
                 is the Vulkan driver working?",
                shot.captures, shot.frame
            );
            commands.write_message(AppExit::Error(NonZeroU8::MIN));
        }
        return;
    };
    shot.first_ms = Some((complete_since - shot.started).as_secs_f64() * 1e3);
    shot.confirmed_ms = shot.started.elapsed().as_secs_f64() * 1e3;
    let saved = captured
        .image
        .clone()
        .try_into_dynamic()
        .map_err(|e| e.to_string())
        .and_then(|img| img.to_rgb8().save(&shot.out).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        eprintln!(
            "depthpilot-viewer: error: cannot write {}: {e}",
            shot.out.display()
        );
        commands.write_message(AppExit::Error(NonZeroU8::MIN));
        shot.phase = Phase::Done;
        return;
    }
    // Where the quad is in the picture (for tests and for the curious).
    let s = flight.0.sample(playback.t_s);
    if let Some((camera, transform)) = cameras.iter().next()
        && let Ok(px) = camera.world_to_viewport(transform, v3(s.pos_m))
    {
        eprintln!(
            "viewer: quad at pixel ({:.0}, {:.0}) at t = {:.2} s",
            px.x, px.y, s.t_s
        );
    }
    if let Some(caption) = panel.and_then(|p| p.0.clone()) {
        eprintln!("viewer: depth panel: {caption}");
    }
    shot.phase = Phase::Timing {
        since: Instant::now(),
        frames: 0,
    };
}
