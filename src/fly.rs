//! `depthpilot fly`.

use crate::log_file::FlightLog;
use crate::{ControllerArg, EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_runtime::{ClockMode, FlightExtras, RealtimeReport, VisionSource};
use depthpilot_sim::{NoLog, Summary};
use depthpilot_types::Scene;
use depthpilot_types::scene::{ControllerKind, LinkTransport, Realism};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `depthpilot fly`.
#[derive(clap::Args, Debug)]
pub struct FlyArgs {
    /// Scene file (RON), e.g. scenes/hover.ron.
    pub scene: PathBuf,
    /// Seed for every random process of the flight (overrides the scene's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the flight summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the flight log to this file: MCAP if it ends in `.mcap` (topics /flight/header,
    /// /flight/state, /flight/summary, and Foxglove's /tf, /quad/pose, /quad/estimate,
    /// /quad/setpoint, /kinect/calibration, /scene, /log: open it in Foxglove for 3D), else JSON
    /// Lines (one row per log period).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Fly with this controller instead of the one the scene names.
    #[arg(long, value_enum)]
    pub controller: Option<ControllerArg>,
    /// Where the setpoints go: `in_process` (the simulated link and firmware in this process,
    /// virtual time), `sitl_udp` (CRTP/UDP to `depthpilot sitl` on udp://127.0.0.1:19850, real
    /// time) or the URI of a link to a simulated Crazyflie (`udp://host:port`,
    /// `cfzmq://host:2000?uri=udp://...`). Overrides the scene's `link.transport`.
    #[arg(long, value_name = "LINK")]
    pub link: Option<String>,
    /// Pace the flight to the wall clock (in process): the actors run as they would against
    /// hardware, control runs on every frame as it arrives, and the report gives the loop's
    /// latency (frame available → setpoint sent) and the real-time factor. Default: lockstep
    /// virtual time, as fast as the CPU allows, deterministic.
    #[arg(long)]
    pub realtime: bool,
    /// Push the controller's PID terms to this endpoint as the 2015 demo's controller did
    /// (`kctrl.py` → tcp://127.0.0.1:5123: `{"name":…,"data":{"P","I","D","E","SP","OUT"}}`, one
    /// message per loop per command). Connects; never blocks the flight.
    #[arg(long, value_name = "ENDPOINT")]
    pub pid_viz: Option<String>,
    /// Watch the flight live in the 3D viewer (`depthpilot-viewer --live`); flies in real time.
    #[arg(long)]
    pub view: bool,
    /// Publish every log row on this endpoint (PUB, bound; topics `flight/state` and
    /// `flight/header`) for a live viewer; with --view the default is tcp://127.0.0.1:7730.
    #[arg(long, value_name = "ENDPOINT")]
    pub state_out: Option<String>,
    /// A live teacher through the mux: the client's ZMQ input device bound here (the live
    /// viewer's keyboard sends to it); with --view the default is tcp://127.0.0.1:7731. Real
    /// time.
    #[arg(long, value_name = "ENDPOINT")]
    pub teacher_in: Option<String>,
    /// The realism layer, replacing the scene's `realism`: `Ideal`, `Bench`, or a preset with
    /// overrides, e.g. `Bench,turbulence=off,battery_start_v=3.8` or `Ideal,imu=on`.
    #[arg(long, value_name = "SPEC", value_parser = Realism::parse_spec)]
    pub realism: Option<Realism>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// CURVE (authenticated, encrypted) on the endpoints this flight binds, keys from DIR (see
    /// `depthpilot keygen`): DIR/server.key and DIR/server.pub, and per role the clients allowed:
    /// DIR/allow/state/*.pub for --state-out, DIR/allow/teacher/*.pub for --teacher-in (a key
    /// allowed on one role is refused on the other). They may then bind a non-loopback endpoint
    /// without --insecure.
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    pub keys: Option<PathBuf>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where `fly --view` publishes the flight's rows for the live viewer.
pub const DEFAULT_STATE_ENDPOINT: &str = "tcp://127.0.0.1:7730";
/// Where `fly --view` takes the live viewer's keyboard teacher input.
pub const DEFAULT_TEACHER_ENDPOINT: &str = "tcp://127.0.0.1:7731";

/// The SITL `--link sitl_udp` reaches.
pub const DEFAULT_SITL_URI: &str = "udp://127.0.0.1:19850";

fn link_transport(arg: &str) -> Result<LinkTransport, Failure> {
    match arg {
        "in_process" => Ok(LinkTransport::InProcess),
        "sitl_udp" => Ok(LinkTransport::Remote(DEFAULT_SITL_URI.to_string())),
        uri => match depthpilot_radio::LinkUri::parse(uri) {
            Ok(_) => Ok(LinkTransport::Remote(uri.to_string())),
            Err(e) => Err(Failure {
                code: EXIT_BAD_INPUT,
                error: anyhow::anyhow!(
                    "--link `{uri}`: expected in_process, sitl_udp or a link URI ({e})"
                ),
            }),
        },
    }
}

/// The server's CURVE keys of `--keys DIR` (`server.key`, `server.pub`, `allow/<role>/*.pub`);
/// a missing directory or key file is named (exit 2).
pub(crate) fn load_server_keys(
    dir: &Path,
) -> Result<depthpilot_runtime::curve::ServerKeys, Failure> {
    if !dir.is_dir() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--keys {}: no such directory; it holds server.key, server.pub and allow/<role>/*.pub \
             (`depthpilot keygen --name server --dir {}`)",
            dir.display(),
            dir.display()
        )));
    }
    depthpilot_runtime::curve::ServerKeys::load(dir).map_err(|e| {
        Failure::bad_input(anyhow::Error::new(e).context(format!("--keys {}", dir.display())))
    })
}

/// Flies through a link to a simulator in another process, in real time.
fn fly_sitl(
    scene: &Scene,
    uri: &str,
    log: &mut dyn depthpilot_sim::LogSink,
) -> Result<Summary, Failure> {
    let link = depthpilot_radio::open(uri).map_err(|e| Failure {
        code: 1,
        error: anyhow::Error::new(e).context(format!(
            "cannot connect to the simulated Crazyflie at {uri} (start it with `depthpilot sitl --scene <scene>`)"
        )),
    })?;
    let controller = depthpilot_control::from_config(&scene.controller);
    depthpilot_runtime::fly_remote(scene, controller, link, log).map_err(|e| Failure {
        code: 1,
        error: anyhow::Error::new(e),
    })
}

/// The summary file: the flight's results plus the wall-clock figures.
#[derive(Serialize)]
struct SummaryFile<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    wall_seconds: f64,
    realtime_factor: f64,
    /// Real-time flights in process: the loop's latency and pacing.
    #[serde(skip_serializing_if = "Option::is_none")]
    realtime: Option<&'a RealtimeReport>,
}

/// Loads a scene and applies the CLI's overrides; a bad scene maps to exit code 2.
pub fn load_scene(
    path: &Path,
    seed: Option<u64>,
    controller: Option<ControllerArg>,
) -> Result<Scene, Failure> {
    // Through the façade's error, so that a missing file reads as in batch, tune and Python
    // (the OS error once, exit 2).
    let mut scene = Scene::load(path).map_err(|e| Failure::from(depthpilot_api::Error::from(e)))?;
    if let Some(s) = seed {
        scene.seed = s;
    }
    if let Some(c) = controller {
        scene.controller.kind = match c {
            ControllerArg::Cascade => ControllerKind::Cascade,
            ControllerArg::Bitcraze2015 => ControllerKind::Bitcraze2015,
        };
    }
    Ok(scene)
}

/// A scene for the commands that fly many flights in virtual time (batch, tune, bench): a
/// scene that names a remote simulator cannot be one of them.
pub fn load_inline_scene(path: &Path) -> Result<Scene, Failure> {
    Ok(depthpilot_api::load_scene(path)?)
}

pub fn fly(args: &FlyArgs) -> Result<(), Failure> {
    let mut scene = load_scene(&args.scene, args.seed, args.controller)?;
    if let Some(r) = &args.realism {
        scene.realism = r.clone();
    }
    if let Some(l) = &args.link {
        scene.link.transport = link_transport(l)?;
    }
    if let Some(e) = &args.pid_viz {
        crate::run::check_endpoint("pid-viz", e)?;
        if !matches!(scene.link.transport, LinkTransport::InProcess) {
            return Err(Failure {
                code: EXIT_BAD_INPUT,
                error: anyhow::anyhow!(
                    "--pid-viz: flights against a simulator in another process do not run the \
                     actors; fly in process (no --link) for the PID visualisation"
                ),
            });
        }
    }
    let state_out = match (&args.state_out, args.view) {
        (Some(e), _) => Some(e.clone()),
        (None, true) => Some(DEFAULT_STATE_ENDPOINT.to_string()),
        (None, false) => None,
    };
    if let Some(e) = &state_out {
        crate::run::check_endpoint("state-out", e)?;
        if !matches!(scene.link.transport, LinkTransport::InProcess) {
            return Err(Failure {
                code: EXIT_BAD_INPUT,
                error: anyhow::anyhow!(
                    "--view / --state-out: flights against a simulator in another process do not \
                     run the actors; fly in process (no --link)"
                ),
            });
        }
    }
    let teacher_in = match (&args.teacher_in, args.view) {
        (Some(e), _) => Some(e.clone()),
        (None, true) => Some(DEFAULT_TEACHER_ENDPOINT.to_string()),
        (None, false) => None,
    };
    if let Some(e) = &teacher_in {
        crate::run::check_endpoint("teacher-in", e)?;
    }
    let keys = match &args.keys {
        None => None,
        Some(_) if args.view => {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--keys with --view: the live viewer (depthpilot-viewer --live) holds no CURVE \
                 keys, so the flight would refuse it; fly --view without --keys (its endpoints \
                 stay on loopback), or give --state-out / --teacher-in to clients that hold keys"
            )));
        }
        Some(_) if state_out.is_none() && teacher_in.is_none() => {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--keys: this flight binds no endpoint for CURVE to protect; give --state-out \
                 and/or --teacher-in"
            )));
        }
        Some(dir) => Some(load_server_keys(dir)?),
    };
    let extras = FlightExtras {
        setpoints_in: None,
        pid_viz: args.pid_viz.clone(),
        shadow: None,
        state_out: state_out.clone(),
        teacher_in: teacher_in.clone(),
        bind_policy: depthpilot_runtime::netpolicy::BindPolicy::from_insecure(args.insecure),
        keys,
    };
    // The viewer, started before the flight so that it sees it from the start.
    let _viewer = match (&state_out, args.view) {
        (Some(e), true) => {
            let exe = crate::view::viewer_or_hint()?;
            let connect = e
                .replace("://*:", "://127.0.0.1:")
                .replace("://0.0.0.0:", "://127.0.0.1:");
            let mut viewer = std::process::Command::new(&exe);
            viewer.arg("--live").arg(&connect);
            if let Some(t) = &teacher_in {
                viewer
                    .arg("--teacher")
                    .arg(t.replace("://*:", "://127.0.0.1:"));
            }
            let child = viewer
                .arg("--scene")
                .arg(&args.scene)
                .spawn()
                .map_err(|err| anyhow::anyhow!("cannot start {}: {err}", exe.display()))?;
            if !args.quiet {
                eprintln!(
                    "depthpilot fly: watching live in {} ({connect})",
                    exe.display()
                );
            }
            Some(child)
        }
        _ => None,
    };
    let started = Instant::now();
    let remote = match &scene.link.transport {
        LinkTransport::Remote(uri) => Some(uri.clone()),
        LinkTransport::InProcess => None,
    };
    let mode = if args.realtime || args.view || args.teacher_in.is_some() {
        ClockMode::Realtime
    } else {
        ClockMode::Lockstep
    };
    let realtime = args.realtime || args.view || args.teacher_in.is_some() || remote.is_some();
    let (summary, rt) = match (&remote, &args.log) {
        (Some(uri), Some(path)) => {
            let mut log = FlightLog::create(path, &scene, Some(uri), true)?;
            let s = fly_sitl(&scene, uri, &mut log);
            log.finish(s.as_ref().ok())?;
            (s?, None)
        }
        (Some(uri), None) => (fly_sitl(&scene, uri, &mut NoLog)?, None),
        (None, Some(path)) => {
            let log = FlightLog::create(path, &scene, None, realtime)?;
            let (s, log, rt) = fly_in_process(&scene, &args.scene, log, mode, &extras)?;
            log.finish(Some(&s))?;
            (s, rt)
        }
        (None, None) => {
            let (s, _, rt) = fly_in_process(&scene, &args.scene, NoLog, mode, &extras)?;
            (s, rt)
        }
    };
    write_summary(
        args.summary.as_deref(),
        args.quiet,
        &summary,
        rt.as_ref(),
        started,
    )
}

/// Flies in this process with the actors (lockstep or real time).
fn fly_in_process<L: depthpilot_sim::LogSink + Send + Unpin + 'static>(
    scene: &Scene,
    path: &Path,
    log: L,
    mode: ClockMode,
    extras: &FlightExtras,
) -> Result<(Summary, L, Option<RealtimeReport>), Failure> {
    let controller = depthpilot_control::from_config(&scene.controller);
    depthpilot_runtime::fly_actors_with(scene, controller, log, mode, &VisionSource::Local, extras)
        .map_err(|e| Failure {
            code: EXIT_BAD_INPUT,
            error: anyhow::Error::new(e).context(format!("{}", path.display())),
        })
}

/// Writes the summary file (if asked) and prints the report (unless quiet).
pub fn write_summary(
    path: Option<&Path>,
    quiet: bool,
    summary: &Summary,
    realtime: Option<&RealtimeReport>,
    started: Instant,
) -> Result<(), Failure> {
    let wall_seconds = started.elapsed().as_secs_f64();
    let realtime_factor = if wall_seconds > 0.0 {
        summary.sim_seconds / wall_seconds
    } else {
        f64::INFINITY
    };
    if let Some(path) = path {
        let file = SummaryFile {
            summary,
            wall_seconds,
            realtime_factor,
            realtime,
        };
        let text = serde_json::to_string_pretty(&file).context("serialising the summary")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write summary {}", path.display()))?;
    }
    if !quiet {
        print_report(summary, wall_seconds, realtime_factor);
        if let Some(r) = realtime {
            println!(
                "  real time   factor {:.4}; latency frame available → setpoint sent: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} setpoints); {} steps late",
                r.realtime_factor,
                r.latency_p50_us,
                r.latency_p99_us,
                r.latency_max_us,
                r.latency_samples,
                r.late_steps
            );
            for (domain, a) in &r.auth {
                println!(
                    "  CURVE       `{domain}`: {} handshake(s) accepted, {} denied, {} failed",
                    a.accepted, a.denied, a.handshake_failures
                );
            }
        }
    }
    Ok(())
}

fn print_report(s: &Summary, wall_seconds: f64, realtime_factor: f64) {
    let [x, y, z] = s.final_position_m;
    println!(
        "depthpilot fly — scene `{}`, seed {}, controller {}",
        s.scene, s.seed, s.controller
    );
    if s.physics_steps == 0 {
        println!(
            "  flew        {:.2} s in real time against a simulator in another process ({:.3} s wall)",
            s.sim_seconds, wall_seconds
        );
    } else {
        println!(
            "  flew        {:.2} s simulated in {:.3} s wall ({:.0}× real time, {} physics steps)",
            s.sim_seconds, wall_seconds, realtime_factor, s.physics_steps
        );
    }
    println!("  realism     {}", crate::batch::realism_text(&s.realism));
    println!(
        "  sensing     {} frames, {} measurements delivered",
        s.frames, s.detections
    );
    if let Some(v) = &s.vision {
        let misses: Vec<String> = v
            .miss_reasons
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        println!(
            "  vision      {} detections in {} frames ({} with yaw); {} dropped, {} blacked out; no detection: {}",
            v.detections,
            v.frames_rendered,
            v.with_yaw,
            v.frames_dropped,
            v.frames_blacked_out,
            if misses.is_empty() {
                "none".to_string()
            } else {
                misses.join(", ")
            }
        );
        if v.frames_in_collapse > 0 || v.frames_while_dead > 0 || v.restarts > 0 {
            println!(
                "  faults      {} frames at a collapsed rate; vision dead for {} frames, restarted {}× ({} learnt the background again)",
                v.frames_in_collapse, v.frames_while_dead, v.restarts, v.relearnt
            );
        }
    }
    if s.safety_events.len() > 1 {
        const SHOWN: usize = 12;
        let path: Vec<String> = s
            .safety_events
            .iter()
            .take(SHOWN)
            .map(|e| format!("{} {:.2} s", e.state, e.t_s))
            .collect();
        let more = s.safety_events.len().saturating_sub(SHOWN);
        println!(
            "  safety      {}{}",
            path.join(" → "),
            if more > 0 {
                format!(" … ({more} more changes in the summary file)")
            } else {
                String::new()
            }
        );
    }
    println!(
        "  radio       {} packets sent, {} dropped, {} undecodable",
        s.radio_packets_sent, s.radio_packets_dropped, s.radio_decode_errors
    );
    println!(
        "  error       rms {:.1} mm, max {:.1} mm (after settle); estimate rms {:.1} mm",
        s.rms_error_m * 1e3,
        s.max_error_m * 1e3,
        s.rms_estimate_error_m * 1e3
    );
    for st in &s.steps {
        let settle = st
            .settling_time_s
            .map_or("never".to_string(), |t| format!("{t:.2} s"));
        println!(
            "  step        at {:.1} s, {:.2} m: settled (5 %) in {settle}, overshoot {:.1} %",
            st.t_s, st.size_m, st.overshoot_pct
        );
    }
    match &s.crash {
        Some(c) => println!(
            "  result      CRASHED at {:.2} s ({:.2} m/s, tilt {:.0}°, {})",
            c.t_s,
            c.speed_m_s,
            c.tilt_deg,
            if c.with_floor {
                "floor"
            } else {
                "obstacle or tumble"
            }
        ),
        None => println!(
            "  result      no crash; {} touchdown(s); final position ({x:.3}, {y:.3}, {z:.3}) m; controller {}",
            s.touchdowns, s.final_safety_state
        ),
    }
}
