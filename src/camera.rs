//! The Kinect bridge commands: `fake-bridge` (the synthetic Kinect through the bridge protocol),
//! `record` (a bridge's frames and the vision's detections into an MCAP session) and `replay`
//! (the vision again over a recorded session).

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_runtime::fake_bridge::{FakeBridge, run_fake_bridge};
use depthpilot_runtime::netpolicy::BindPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// `AT:VALUE` of a repeated flag.
fn pair(flag: &str, s: &str) -> Result<(f64, f64), Failure> {
    let parsed = s
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| a.is_finite() && b.is_finite() && *a >= 0.0 && *b > 0.0);
    parsed.ok_or_else(|| {
        Failure::bad_input(anyhow::anyhow!(
            "--{flag} `{s}`: expected AT:VALUE with AT ≥ 0 and VALUE > 0 (e.g. 6.0:1.5)"
        ))
    })
}

/// Arguments of `depthpilot fake-bridge`.
#[derive(clap::Args, Debug)]
pub struct FakeBridgeArgs {
    /// Scene file (RON) with a Kinect (`sensing: Kinect((…))`): its camera, noise and latency.
    /// Not needed with --replay.
    #[arg(required_unless_present = "replay")]
    pub scene: Option<PathBuf>,
    /// Publish the frames of a recorded session (`depthpilot record`) at their recorded pace
    /// instead of rendering: a recording as the camera.
    #[arg(long, value_name = "SESSION", conflicts_with_all = ["truth_endpoint", "stall", "wrong_size"])]
    pub replay: Option<PathBuf>,
    /// Where to bind the bridge's PUB socket.
    #[arg(long, value_name = "ENDPOINT", default_value = depthpilot_camera::DEFAULT_BRIDGE_BIND)]
    pub bind: String,
    /// Render the truth of a running simulated flight, published on this endpoint by
    /// `depthpilot run <bridge rig> --role control`. Without it: open loop, the quad exactly on
    /// the scene's setpoints, for the scene's duration.
    #[arg(long, value_name = "ENDPOINT")]
    pub truth_endpoint: Option<String>,
    /// Stop after this long (s).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Stall: send no frames from AT s of flight time for FOR s (repeatable), e.g. `6:1.5`.
    #[arg(long, value_name = "AT:FOR")]
    pub stall: Vec<String>,
    /// Send N frames with the depth image cut short from AT s on (repeatable), e.g. `8:10`.
    #[arg(long, value_name = "AT:N")]
    pub wrong_size: Vec<String>,
    /// The realism layer for the simulated parts, replacing the scene's: `Ideal`, `Bench`, or
    /// a preset with overrides, e.g. `Bench,turbulence=off` (README "Realism").
    #[arg(long, value_name = "SPEC", value_parser = depthpilot_types::scene::Realism::parse_spec)]
    pub realism: Option<depthpilot_types::scene::Realism>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// CURVE (authenticated, encrypted) on the bridge's PUB, keys from DIR (`depthpilot
    /// keygen`): DIR/server.key, DIR/server.pub and DIR/allow/bridge/*.pub, the only clients
    /// that get frames (a key allowed on another role is refused). It may then bind a
    /// non-loopback endpoint without --insecure. Clients: `record --bridge-keys`.
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The `auth` line of a CURVE bridge's summary.
fn auth_line(auth: Option<depthpilot_runtime::curve::DomainCounts>) -> String {
    auth.map(|a| {
        format!(
            "; CURVE: {} subscriber(s) accepted, {} denied, {} failed handshake(s)",
            a.accepted, a.denied, a.handshake_failures
        )
    })
    .unwrap_or_default()
}

pub fn fake_bridge(args: &FakeBridgeArgs) -> Result<(), Failure> {
    crate::run::check_endpoint("bind", &args.bind)?;
    let status_every = if args.quiet {
        Duration::MAX
    } else {
        Duration::from_secs(2)
    };
    let keys = args
        .keys
        .as_deref()
        .map(crate::fly::load_server_keys)
        .transpose()?;
    if let Some(path) = &args.replay {
        let report = depthpilot_runtime::fake_bridge::replay_session(
            path,
            &args.bind,
            BindPolicy::from_insecure(args.insecure),
            keys.as_ref(),
            status_every,
        )
        .map_err(|e| Failure::bad_input(anyhow::Error::new(e)))?;
        if !args.quiet {
            println!(
                "depthpilot fake-bridge — replay of {}: {} frames sent{}",
                path.display(),
                report.frames_sent,
                auth_line(report.auth)
            );
        }
        return Ok(());
    }
    let Some(scene_path) = &args.scene else {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "a scene (or --replay SESSION) is needed"
        )));
    };
    let mut scene = crate::fly::load_inline_scene(scene_path)?;
    if let Some(r) = &args.realism {
        scene.realism = r.clone();
    }
    if let Some(t) = &args.truth_endpoint {
        crate::run::check_endpoint("truth-endpoint", t)?;
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--duration {d}: expected a positive number of seconds"
        )));
    }
    let stalls = args
        .stall
        .iter()
        .map(|s| pair("stall", s))
        .collect::<Result<Vec<_>, _>>()?;
    let wrong_size = args
        .wrong_size
        .iter()
        .map(|s| pair("wrong-size", s).map(|(at, n)| (at, n.round() as u32)))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = FakeBridge {
        bind: args.bind.clone(),
        bind_policy: BindPolicy::from_insecure(args.insecure),
        keys,
        truth: args.truth_endpoint.clone(),
        duration: args.duration.map(Duration::from_secs_f64),
        stalls,
        wrong_size,
        status_every,
    };
    let report = run_fake_bridge(&scene, &opts).map_err(|e| {
        let code = match e {
            depthpilot_runtime::RuntimeError::Setup(_)
            | depthpilot_runtime::RuntimeError::Bind { .. }
            | depthpilot_runtime::RuntimeError::Connect { .. } => EXIT_BAD_INPUT,
            _ => 1,
        };
        Failure {
            code,
            error: anyhow::Error::new(e),
        }
    })?;
    if !args.quiet {
        println!(
            "depthpilot fake-bridge — `{}`: {} frames sent, {} stalled, {} of the wrong size, {} truth messages{}",
            scene.name,
            report.frames_sent,
            report.frames_stalled,
            report.frames_wrong_size,
            report.truth_received,
            auth_line(report.auth)
        );
    }
    Ok(())
}

/// Arguments of `depthpilot record`.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// Rig file (RON) with a Kinect bridge camera (`camera: KinectBridge(endpoint: …)`), e.g.
    /// hil/bench.ron; its scene says where the camera stands.
    pub rig: PathBuf,
    /// The session file (MCAP): every frame, every detection.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this long (s); default: until killed (a killed recorder loses ~0.5 s).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Write the newest depth frame here at the end: `.png` in false colour (near red, far blue,
    /// no return black) with the detection circled, anything else as a 16-bit PGM (millimetres).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Connect to the bridge here instead of the rig's endpoint.
    #[arg(long, value_name = "ENDPOINT")]
    pub bridge_endpoint: Option<String>,
    /// CURVE: the bridge is a CURVE server (`fake-bridge --keys`, `kinect_bridge.py --keys`);
    /// DIR holds its server.pub and this client's key pair (see --bridge-key).
    #[arg(long, value_name = "DIR")]
    pub bridge_keys: Option<PathBuf>,
    /// With --bridge-keys: the name of this client's key pair in DIR (NAME.key, NAME.pub;
    /// default `vision`); its NAME.pub must be in the bridge's allow/bridge/.
    #[arg(long, value_name = "NAME", requires = "bridge_keys")]
    pub bridge_key: Option<String>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The bridge client's CURVE keys of `--bridge-keys DIR [--bridge-key NAME]`.
pub(crate) fn bridge_client_keys(
    dir: Option<&std::path::Path>,
    name: Option<&str>,
) -> Result<Option<depthpilot_camera::CurveClientKeys>, Failure> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let name = name.unwrap_or(depthpilot_runtime::bridge_curve::DEFAULT_CLIENT_KEY);
    depthpilot_runtime::bridge_curve::load_client_keys(dir, name)
        .map(Some)
        .map_err(|e| {
            Failure::bad_input(anyhow::Error::new(e).context(format!(
                "--bridge-keys {}: it holds the bridge's server.pub and this client's {name}.key                  and {name}.pub (`depthpilot keygen --name {name} --dir {}`)",
                dir.display(),
                dir.display()
            )))
        })
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A depth value's false colour: near red, far blue (a five-stop ramp), no return black.
fn false_colour(d: u16, near: f64, far: f64) -> plotters::style::RGBColor {
    if d == 0 {
        return plotters::style::RGBColor(0, 0, 0);
    }
    let t = ((f64::from(d) - near) / (far - near).max(1.0)).clamp(0.0, 1.0);
    const STOPS: [(f64, f64, f64); 5] = [
        (220.0, 40.0, 30.0),
        (240.0, 200.0, 40.0),
        (60.0, 200.0, 80.0),
        (40.0, 190.0, 220.0),
        (40.0, 60.0, 200.0),
    ];
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    plotters::style::RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A depth frame as a false-colour PNG, the detection (if any) circled and labelled.
fn write_png_view(
    path: &std::path::Path,
    f: &depthpilot_vision::DepthFrame,
    detection: Option<&depthpilot_vision::Detection>,
) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let mut valid: Vec<u16> = f.depth_mm.iter().copied().filter(|d| *d != 0).collect();
    valid.sort_unstable();
    let pick = |q: f64| {
        valid
            .get(((valid.len().saturating_sub(1)) as f64 * q) as usize)
            .map_or(0.0, |d| f64::from(*d))
    };
    let (near, far) = (pick(0.01), pick(0.99));
    let (w, h) = (f.width as u32, f.height as u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    for (i, d) in f.depth_mm.iter().enumerate() {
        let (x, y) = ((i % f.width) as i32, (i / f.width) as i32);
        root.draw_pixel((x, y), &false_colour(*d, near, far))
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    }
    if let Some(d) = detection {
        let (u, v) = (d.pixel.0.round() as i32, d.pixel.1.round() as i32);
        root.draw(&Circle::new((u, v), 14, WHITE.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
        let p = d.pos_in_world_m;
        // The label needs a font; without one the circle says enough.
        if crate::plot::load_font().is_ok() {
            let _ = root.draw(&Text::new(
                format!("({:.3}, {:.3}, {:.3}) m, {} px", p.x, p.y, p.z, d.pixels),
                (u + 18, v - 8),
                ("sans-serif", 14).into_font().color(&WHITE),
            ));
        }
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// A depth frame as a binary 16-bit PGM (big-endian, as the format says).
fn write_pgm(path: &std::path::Path, f: &depthpilot_vision::DepthFrame) -> std::io::Result<()> {
    let mut out = format!(
        "P5\n# depthpilot depth frame seq {} (mm)\n{} {}\n65535\n",
        f.seq, f.width, f.height
    )
    .into_bytes();
    for d in &f.depth_mm {
        out.extend_from_slice(&d.to_be_bytes());
    }
    std::fs::write(path, out)
}

/// `record`'s bar with a duration: seconds recorded of the duration, and `{msg}` (frames).
const RECORD_TIMED_TEMPLATE: &str = "{spinner} [{elapsed_precise}] [{wide_bar}] {seconds}; {msg}";
/// `record`'s spinner until killed: `{msg}` (frames).
const RECORD_TEMPLATE: &str = "{spinner} [{elapsed_precise}] recording; {msg}";

/// `record`'s bar, drawn to `target`: with `duration_s`, its position is the milliseconds
/// recorded; without, a spinner. It ticks on its own while drawn.
fn record_bar(
    duration_s: Option<f64>,
    target: indicatif::ProgressDrawTarget,
) -> indicatif::ProgressBar {
    let style = |t| {
        crate::batch::progress_style(t).with_key(
            "seconds",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let len_s = s.len().unwrap_or(0) as f64 / 1e3;
                let _ = w.write_fmt(format_args!("{:.1}/{len_s:.1} s", s.pos() as f64 / 1e3));
            },
        )
    };
    let bar = match duration_s {
        Some(d) => indicatif::ProgressBar::with_draw_target(Some((d * 1e3) as u64), target)
            .with_style(style(RECORD_TIMED_TEMPLATE)),
        None => indicatif::ProgressBar::with_draw_target(None, target)
            .with_style(style(RECORD_TEMPLATE)),
    };
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    bar
}

/// `record`'s count of frames: `N frames (R /s), D detections` (R since the first frame).
fn frames_text(frames: u64, detections: u64, first_frame: Option<std::time::Instant>) -> String {
    let rate = first_frame
        .map(|f| {
            format!(
                " ({:.1} /s)",
                frames as f64 / f.elapsed().as_secs_f64().max(1e-9)
            )
        })
        .unwrap_or_else(|| " (waiting for the bridge)".to_string());
    format!("{frames} frames{rate}, {detections} detections")
}

pub fn record(args: &RecordArgs) -> Result<(), Failure> {
    use depthpilot_camera::session::{SessionHeader, SessionWriter};
    use depthpilot_camera::{BridgeClient, BridgeConfig, BridgeEvent};
    use depthpilot_runtime::bridge_vision::{BridgeVision, record_of};
    use depthpilot_types::rig::CameraSource;
    use depthpilot_types::scene::Sensing;

    let (rig, scene) = depthpilot_types::Rig::load(&args.rig)
        .map_err(|e| Failure::bad_input(anyhow::Error::new(e)))?;
    let endpoint = match (&args.bridge_endpoint, &rig.camera) {
        (Some(e), _) => e.clone(),
        (None, CameraSource::KinectBridge { endpoint }) => endpoint.clone(),
        (None, CameraSource::Simulated) => {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "rig `{}` has a simulated camera; `record` records a Kinect bridge (a rig with \
                 `camera: KinectBridge(endpoint: …)`, or --bridge-endpoint)",
                rig.name
            )));
        }
    };
    crate::run::check_endpoint("bridge-endpoint", &endpoint)?;
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--duration {d}: expected a positive number of seconds"
        )));
    }
    let Sensing::Kinect(k) = &scene.sensing else {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "rig `{}`: its scene `{}` has no Kinect (`sensing: Kinect((…))`) to say where the camera stands",
            rig.name,
            scene.name
        )));
    };
    let mut vision = BridgeVision::at(k);
    let header = SessionHeader {
        rig: rig.name.clone(),
        scene: scene.name.clone(),
        camera_position_m: k.position_m.to_array(),
        camera_look_at_m: k.look_at_m.to_array(),
        camera_up_hint: k.up_hint.to_array(),
        bridge_endpoint: Some(endpoint.clone()),
        started_unix_ns: unix_ns(),
    };
    let mut writer = SessionWriter::create(&args.out, &header)
        .map_err(|e| Failure::bad_input(anyhow::Error::new(e)))?;
    let mut config = BridgeConfig::new(endpoint.clone());
    config.curve = bridge_client_keys(args.bridge_keys.as_deref(), args.bridge_key.as_deref())?;
    let ctx = zmq::Context::new();
    let mut client = BridgeClient::connect(&ctx, &config)
        .map_err(|e| Failure::bad_input(anyhow::Error::new(e)))?;
    if !args.quiet {
        eprintln!(
            "depthpilot record: frames from {endpoint} into {}{}",
            args.out.display(),
            args.duration
                .map(|d| format!(" for {d} s"))
                .unwrap_or_else(|| " until killed".to_string())
        );
    }
    let started = std::time::Instant::now();
    let bar = crate::batch::StderrBar(record_bar(
        args.duration,
        crate::batch::stderr_target(args.quiet),
    ));
    bar.set_message(frames_text(0, 0, None));
    // indicatif draws nothing when stderr is not a terminal: logs get a line every 2 s.
    let plain = !args.quiet && bar.is_hidden();
    let mut first_frame: Option<std::time::Instant> = None;
    let mut last_progress = std::time::Instant::now();
    let mut newest = None;
    let mut serial = String::new();
    let mut last_state = None;
    loop {
        if args
            .duration
            .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
        {
            break;
        }
        client
            .wait(Duration::from_millis(50))
            .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        let events = client
            .poll(std::time::Instant::now())
            .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        let t = started.elapsed().as_secs_f64();
        for e in events {
            match e {
                BridgeEvent::Frame(f) => {
                    first_frame.get_or_insert_with(std::time::Instant::now);
                    let log_ns = unix_ns();
                    let r = vision
                        .detect(&f)
                        .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
                    writer
                        .write_frame(log_ns, &f)
                        .and_then(|()| writer.write_detection(log_ns, &record_of(f.header.seq, &r)))
                        .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
                    serial.clone_from(&f.header.serial);
                    newest = Some((f, r.ok()));
                }
                BridgeEvent::Garbage(g) => bar.suspend(|| {
                    eprintln!("depthpilot record: {t:.2} s: garbage from the bridge: {g}")
                }),
                BridgeEvent::Stale { for_ms } => bar.suspend(|| {
                    eprintln!("depthpilot record: {t:.2} s: STALE — no frame for {for_ms} ms")
                }),
                BridgeEvent::Recovered { after_ms } => bar.suspend(|| {
                    eprintln!("depthpilot record: {t:.2} s: frames again after {after_ms} ms")
                }),
                BridgeEvent::Status(s) => {
                    if last_state != Some(s.state) {
                        last_state = Some(s.state);
                        bar.suspend(|| {
                            eprintln!(
                                "depthpilot record: {t:.2} s: the bridge says {:?}: {}",
                                s.state, s.message
                            )
                        });
                    }
                }
            }
        }
        let frames = || frames_text(vision.stats.frames, vision.stats.detections, first_frame);
        if !bar.is_hidden() {
            bar.set_position(((t * 1e3) as u64).min(bar.length().unwrap_or(u64::MAX)));
            bar.set_message(frames());
        }
        if plain && last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = std::time::Instant::now();
            eprintln!("depthpilot record: {t:.1} s: {}", frames());
        }
    }
    bar.finish();
    drop(bar);
    let stats = writer
        .finish()
        .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    if let (Some(path), Some((f, detection))) = (&args.snapshot, &newest) {
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if png {
            write_png_view(path, &f.frame, detection.as_ref()).map_err(Failure::from)?;
        } else {
            write_pgm(path, &f.frame)
                .map_err(|e| Failure::from(anyhow::anyhow!("writing {}: {e}", path.display())))?;
        }
    }
    let st = &vision.stats;
    let rep = client.report();
    let span = first_frame.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "depthpilot record — `{}` from {endpoint}: {} frames in {span:.1} s ({:.1} /s), {} gaps ({} frames missed), {} garbage, {} stale stretch(es), longest gap {} ms; {} detections ({} with yaw); misses {:?}",
        rig.name,
        st.frames,
        if span > 0.0 {
            st.frames as f64 / span
        } else {
            0.0
        },
        rep.frames.gaps,
        rep.frames.missed,
        rep.garbage.total,
        rep.stale_events,
        rep.longest_gap_ms,
        st.detections,
        st.with_yaw,
        st.misses
    );
    match st.intrinsics {
        Some(k) => println!(
            "  device      serial {}; intrinsics fx {:.4} fy {:.4} cx {:.4} cy {:.4}, k1 {:.6} k2 {:.6} k3 {:.6}, p1 {:.6} p2 {:.6}",
            if serial.is_empty() {
                "(none given)".to_string()
            } else {
                format!("`{serial}`")
            },
            k.fx,
            k.fy,
            k.cx,
            k.cy,
            k.k1,
            k.k2,
            k.k3,
            k.p1,
            k.p2
        ),
        None => println!("  device      no frame received: is the bridge running at {endpoint}?"),
    }
    println!(
        "  session     {}: {} messages, {} chunks{}",
        args.out.display(),
        stats.messages,
        stats.chunks,
        match (&args.snapshot, &newest) {
            (Some(p), Some(_)) => format!("; newest depth frame in {}", p.display()),
            (Some(_), None) => "; no frame for the snapshot".to_string(),
            _ => String::new(),
        }
    );
    if st.frames == 0 {
        return Err(Failure::from(anyhow::anyhow!(
            "no frame from the Kinect bridge at {endpoint}; start it (`python3 hil/kinect_bridge/kinect_bridge.py`, or `depthpilot fake-bridge <scene>`){}",
            if config.curve.is_some() {
                "; with --bridge-keys the bridge must run with --keys and have this client's .pub in its allow/bridge/ (its log names a denied key), and DIR/server.pub must be the bridge's"
            } else {
                "; a bridge run with --keys sends nothing to a client without --bridge-keys"
            }
        )));
    }
    Ok(())
}

/// Arguments of `depthpilot replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// A session recorded by `depthpilot record` (MCAP).
    pub session: PathBuf,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn replay(args: &ReplayArgs) -> Result<(), Failure> {
    use depthpilot_camera::session::read_session;
    use depthpilot_runtime::bridge_vision::{BridgeVision, record_of};
    use std::collections::HashMap;

    let session =
        read_session(&args.session).map_err(|e| Failure::bad_input(anyhow::Error::new(e)))?;
    if let Some(d) = &session.damage {
        eprintln!(
            "depthpilot replay: {}: {d}; replaying what was read",
            args.session.display()
        );
    }
    if session.undecodable_frames > 0 {
        eprintln!(
            "depthpilot replay: {} frame message(s) could not be decoded (first: {})",
            session.undecodable_frames,
            session
                .first_undecodable_frame
                .as_ref()
                .map_or("?".to_string(), ToString::to_string)
        );
    }
    let Some(h) = &session.header else {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "{}: no session header (where the camera stood): nothing to replay against",
            args.session.display()
        )));
    };
    let mut vision = BridgeVision::at(&h.camera());
    let recorded: HashMap<u64, _> = session
        .detections
        .iter()
        .map(|(_, d)| (d.frame_seq, d.clone()))
        .collect();
    let (mut same, mut differ, mut unrecorded) = (0u64, 0u64, 0u64);
    let mut first_difference = None;
    for (_, f) in &session.frames {
        let r = vision
            .detect(f)
            .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
        let now = record_of(f.header.seq, &r);
        match recorded.get(&f.header.seq) {
            Some(d) if *d == now => same += 1,
            Some(d) => {
                differ += 1;
                first_difference.get_or_insert_with(|| (d.clone(), now));
            }
            None => unrecorded += 1,
        }
    }
    if !args.quiet {
        println!(
            "depthpilot replay — {} (rig `{}`, scene `{}`): {} frames replayed through the vision; {} detections identical to the recording, {} different, {} frames without a recorded detection; {} found",
            args.session.display(),
            h.rig,
            h.scene,
            session.frames.len(),
            same,
            differ,
            unrecorded,
            vision.stats.detections
        );
    }
    if let Some((was, now)) = first_difference {
        return Err(Failure::from(anyhow::anyhow!(
            "the vision differs from the recording at frame {}: recorded {was:?}, now {now:?}",
            was.frame_seq
        )));
    }
    if session.frames.is_empty() {
        return Err(Failure::from(anyhow::anyhow!(
            "{}: no frames in the session",
            args.session.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> depthpilot_vision::DepthFrame {
        depthpilot_vision::DepthFrame {
            stamp_ns: 0,
            seq: 7,
            width: 4,
            height: 2,
            depth_mm: vec![0, 500, 1000, 65535, 1, 2, 3, 4],
            ir: None,
        }
    }

    #[test]
    fn the_pgm_snapshot_is_16_bit_big_endian_millimetres() {
        let path = std::env::temp_dir().join(format!("dp-pgm-{}.pgm", std::process::id()));
        write_pgm(&path, &frame()).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        let header = b"P5\n# depthpilot depth frame seq 7 (mm)\n4 2\n65535\n";
        assert!(bytes.starts_with(header));
        let body = &bytes[header.len()..];
        assert_eq!(body.len(), 16);
        assert_eq!(&body[2..4], &500u16.to_be_bytes());
        assert_eq!(&body[6..8], &65535u16.to_be_bytes());
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn false_colour_is_black_without_a_return_and_red_near_blue_far() {
        let c = |d| false_colour(d, 1000.0, 3000.0);
        assert_eq!(c(0), plotters::style::RGBColor(0, 0, 0));
        let near = c(1000);
        let far = c(3000);
        assert!(near.0 > near.2 && far.2 > far.0, "{near:?} {far:?}");
    }

    #[test]
    fn the_record_bar_shows_seconds_of_the_duration_and_the_frames() {
        let term = crate::batch::RecordingTerm::default();
        let bar = record_bar(Some(3.0), term.target());
        bar.set_position(1_500);
        bar.set_message(frames_text(45, 40, None));
        bar.abandon();
        let text = term.text();
        assert!(
            text.contains("] 1.5/3.0 s; 45 frames (waiting for the bridge), 40 detections"),
            "{text:?}"
        );
        let term = crate::batch::RecordingTerm::default();
        let spinner = record_bar(None, term.target());
        spinner.set_message(frames_text(7, 0, None));
        spinner.abandon();
        assert!(
            term.text().contains("] recording; 7 frames"),
            "{}",
            term.text()
        );
    }

    #[test]
    fn the_record_templates_parse() {
        for t in [RECORD_TIMED_TEMPLATE, RECORD_TEMPLATE] {
            assert!(indicatif::ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn at_value_flags_are_checked() {
        assert_eq!(pair("stall", "6:1.5").ok(), Some((6.0, 1.5)));
        for bad in ["6", "a:b", "-1:2", "3:0", "nan:1"] {
            assert!(pair("stall", bad).is_err(), "{bad}");
        }
    }
}
