//! `depthpilot-viewer`: the 3D flight viewer (bevy). Replays a flight log from `depthpilot fly
//! --log flight.mcap` in a window, or renders one frame of it offscreen (`--screenshot`), which
//! works on a machine without a GPU through Mesa's software Vulkan (lavapipe).
//!
//! In scope: replay of MCAP and JSON Lines flight logs, damaged ones included (what is readable
//! is shown, with the damage named); headless screenshots; the Kinect's view re-rendered from the
//! logged pose; live flights from the bus (`--live`, what `depthpilot fly --view` starts), with
//! keyboard teacher input to the flight's mux (`--teacher`). The viewer never owns physics: it
//! draws poses from the log.
//!
//! It is its own binary so that only people who view pay for bevy; `depthpilot view` starts it.

mod controls;
mod depth_panel;
mod flight;
mod hud;
mod live;
mod opening;
mod quad;
mod scene3d;
mod shot;
mod teach;

use bevy::prelude::*;
use clap::Parser;
use flight::Flight;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Replay a depthpilot flight log in 3D, or render one frame of it to a PNG.
#[derive(Parser, Debug, Clone)]
#[command(name = "depthpilot-viewer", version, about)]
pub struct Args {
    /// Flight log from `depthpilot fly --log` (MCAP or JSON Lines), or a camera session from
    /// `depthpilot record`.
    #[arg(required_unless_present = "live")]
    pub log: Option<PathBuf>,
    /// Watch a running flight instead: the endpoint its rows are published on (`depthpilot fly
    /// --view` starts the viewer with it; `fly --state-out ENDPOINT` publishes). With
    /// --screenshot, waits until the flight reaches --at.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "log")]
    pub live: Option<String>,
    /// Live: send keyboard teacher input (the client's ZMQ input format) to this endpoint: hold
    /// Tab to take over, arrows tilt, Q/E yaw, Page Up/Down thrust, X e-stop.
    #[arg(long, value_name = "ENDPOINT", requires = "live")]
    pub teacher: Option<String>,
    /// Render one frame offscreen (no window) to this PNG and exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Flight time to show, seconds (screenshot time, or where the replay starts).
    #[arg(long)]
    pub at: Option<f64>,
    /// Image or window size, WIDTHxHEIGHT.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Replay speed (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// The scene file the flight flew (default: `scenes/<name>.ron` found near the log or the
    /// binary, by the name in the log's header).
    #[arg(long)]
    pub scene: Option<PathBuf>,
    /// Without the depth-camera panel.
    #[arg(long)]
    pub no_depth_panel: bool,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}`: expected WIDTHxHEIGHT"))?;
    let w: u32 = w.parse().map_err(|_| format!("`{w}` is not a width"))?;
    let h: u32 = h.parse().map_err(|_| format!("`{h}` is not a height"))?;
    if !(64..=8192).contains(&w) || !(64..=8192).contains(&h) {
        return Err(format!("`{s}`: each side must be 64..8192 pixels"));
    }
    Ok((w, h))
}

/// Exit code for input that cannot be shown (no rows, not a log): as clap's usage errors.
pub const EXIT_BAD_INPUT: u8 = 2;

/// The flight being shown.
#[derive(Resource)]
pub struct FlightData(pub Flight);

/// The replay clock.
#[derive(Resource, Debug)]
pub struct Playback {
    pub t_s: f64,
    pub speed: f64,
    pub playing: bool,
    /// A window (replay with controls) rather than one screenshot.
    pub interactive: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let t0 = Instant::now();
    let mut live_source = None;
    let loaded = match (&args.live, &args.log) {
        (Some(endpoint), _) => live::LiveSource::connect(endpoint).and_then(|mut src| {
            let f = live::first_flight(
                &mut src,
                args.scene.as_deref(),
                args.screenshot.as_ref().and(args.at),
                std::time::Duration::from_secs(120),
            );
            if f.is_ok() {
                eprintln!(
                    "viewer: live from {}: {} rows so far, {} skipped",
                    src.endpoint, src.received, src.garbage
                );
            }
            live_source = Some(src);
            f
        }),
        (None, Some(log)) => flight::load(log, args.scene.as_deref()),
        (None, None) => Err(flight::LoadError(
            "a flight log or --live ENDPOINT".to_string(),
        )),
    };
    let flight = match loaded {
        Ok(f) => f,
        Err(e) => {
            eprintln!("depthpilot-viewer: error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    for w in &flight.warnings {
        eprintln!("depthpilot-viewer: warning: {w}");
    }
    eprintln!(
        "viewer: loaded {} rows ({:.2} s .. {:.2} s of flight) in {load_ms:.1} ms",
        flight.rows.len(),
        flight.start_s(),
        flight.end_s()
    );
    let mut t_s = args.at.unwrap_or(flight.start_s());
    if !t_s.is_finite() {
        t_s = flight.start_s();
    }
    if t_s > flight.end_s() || t_s < flight.start_s() {
        let clamped = t_s.clamp(flight.start_s(), flight.end_s());
        eprintln!(
            "depthpilot-viewer: --at {t_s} is outside the log ({:.2} s .. {:.2} s): showing t = \
             {clamped:.2} s",
            flight.start_s(),
            flight.end_s()
        );
        t_s = clamped;
    }
    let playback = Playback {
        t_s,
        speed: if args.speed.is_finite() && args.speed > 0.0 {
            args.speed
        } else {
            1.0
        },
        playing: args.screenshot.is_none(),
        interactive: args.screenshot.is_none(),
    };
    let exit = match &args.screenshot {
        Some(out) => {
            if let Err(e) = shot::check_vulkan() {
                eprintln!("depthpilot-viewer: error: {e}");
                return ExitCode::from(1);
            }
            shot::app(&args, out, flight, playback, t0).run()
        }
        None => {
            let mut app = controls::app(&args, flight, playback, t0);
            if let Some(src) = live_source {
                live::add(&mut app, src);
            }
            if let Some(endpoint) = &args.teacher {
                match teach::KeyboardTeacher::connect(endpoint) {
                    Ok(t) => {
                        eprintln!(
                            "depthpilot-viewer: keyboard teacher to {endpoint}: hold Tab to take over, arrows tilt, Q/E yaw, Page Up/Down thrust, X e-stop"
                        );
                        teach::add(&mut app, t);
                    }
                    Err(e) => {
                        eprintln!("depthpilot-viewer: error: {e}");
                        return ExitCode::from(EXIT_BAD_INPUT);
                    }
                }
            }
            app.run()
        }
    };
    match exit {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    }
}

/// Spawns everything the views share (scene, quad, HUD, depth panel).
pub fn setup_common(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    flight: Res<FlightData>,
    settings: Res<ViewSettings>,
) {
    scene3d::spawn_static(&mut commands, &mut meshes, &mut materials, &flight.0);
    quad::spawn(&mut commands, &mut meshes, &mut materials, &flight.0);
    hud::spawn(&mut commands, &flight.0, settings.ui_scale);
}

/// What both views were asked for.
#[derive(Resource, Clone, Copy, Debug)]
pub struct ViewSettings {
    pub ui_scale: f32,
    pub depth_panel: bool,
}

/// The systems both views run each frame, after the playback clock moved.
pub fn add_common(app: &mut App, flight: Flight, playback: Playback, settings: ViewSettings) {
    app.insert_resource(FlightData(flight))
        .insert_resource(playback)
        .insert_resource(settings)
        .add_systems(Startup, setup_common)
        .add_systems(
            Update,
            (quad::update_quad, quad::update_trails, hud::update).in_set(Redraw),
        );
    if settings.depth_panel {
        depth_panel::add(app);
    }
}

/// Systems that draw the state at `Playback::t_s` (run after the clock moves).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct Redraw;
