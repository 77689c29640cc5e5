//! `depthpilot run <rig> --role <all|control|vision>`: one flight as actors, in one process or
//! split over processes (and hosts) on the ZMQ bus, in real time.

use crate::fly::write_summary;
use crate::log_file::FlightLog;
use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_runtime::curve::ServerKeys;
use depthpilot_runtime::netpolicy::BindPolicy;
use depthpilot_runtime::split::{
    BusCurve, BusEndpoints, DEFAULT_MEASUREMENT_ENDPOINT, DEFAULT_TRUTH_ENDPOINT, VisionRole,
};
use depthpilot_runtime::{ClockMode, FlightExtras, RealtimeReport, RuntimeError, VisionSource};
use depthpilot_sim::{LogSink, NoLog, Summary};
use depthpilot_types::Rig;
use depthpilot_types::rig::CameraSource;
use depthpilot_types::scene::Scene;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which actors this process runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Every actor in this process (the same as `fly --realtime`).
    All,
    /// World, controller, teacher, mux, radio and recorder; the vision is another process on
    /// the bus. Binds the bus endpoints.
    Control,
    /// The camera and the detector: truth in, measurements out. Connects to the bus endpoints.
    Vision,
}

/// Arguments of `depthpilot run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Rig file (RON) with `link: "sim://"` (the simulated Crazyflie in the control process)
    /// and `camera: Simulated`, e.g. hil/split.ron.
    pub rig: PathBuf,
    /// The actors this process runs.
    #[arg(long, value_enum, default_value = "all")]
    pub role: Role,
    /// Bus endpoint of the truth topic (the control role binds it, the vision role connects).
    #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_TRUTH_ENDPOINT)]
    pub truth_endpoint: String,
    /// Bus endpoint of the measurement topic (the control role binds it, the vision role
    /// connects).
    #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_MEASUREMENT_ENDPOINT)]
    pub measurement_endpoint: String,
    /// Vision role: also push the 2015 detector's JSON (`{"pos":[x,y,z],"angle":deg,"detect":true}`)
    /// on this endpoint (bound, as the detector did: tcp://0.0.0.0:1213).
    #[arg(long, value_name = "ENDPOINT")]
    pub detector_out: Option<String>,
    /// Control/all: take setpoints from the 2015 set-point UI (`set-point/ksp.py` binds a PUSH
    /// on tcp://*:5124 and sends `{"version":1,"set-points":{"roll": m,"pitch": m,"yaw": deg,
    /// "velocity": m/s}}`): roll / pitch are the target's x / y, velocity moves its height.
    #[arg(long, value_name = "ENDPOINT")]
    pub setpoints_in: Option<String>,
    /// Control/all: push the controller's PID terms here, as kctrl.py did (tcp://127.0.0.1:5123;
    /// `{"name":…,"data":{"P","I","D","E","SP","OUT"}}`).
    #[arg(long, value_name = "ENDPOINT")]
    pub pid_viz: Option<String>,
    /// Control/all: the flight's duration (s), instead of the scene's. Vision: stop after this
    /// long (s); default: run until killed.
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// The realism layer for the simulated parts, replacing the rig's: `Ideal`, `Bench`, or
    /// a preset with overrides, e.g. `Bench,turbulence=off` (README "Realism").
    #[arg(long, value_name = "SPEC", value_parser = depthpilot_types::scene::Realism::parse_spec)]
    pub realism: Option<depthpilot_types::scene::Realism>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// Control/all: publish every log row here (PUB, bound; topics `flight/state` and
    /// `flight/header`) for a live viewer (`depthpilot-viewer --live`).
    #[arg(long, value_name = "ENDPOINT")]
    pub state_out: Option<String>,
    /// Control/all: a live teacher through the mux: the client's ZMQ input device bound here
    /// (cfclient's format; `depthpilot teach` shows what a sender does).
    #[arg(long, value_name = "ENDPOINT")]
    pub teacher_in: Option<String>,
    /// CURVE on the bus and on this process's other server sockets (authenticated, encrypted),
    /// keys from DIR (see `depthpilot keygen`). Control: DIR/server.key, DIR/server.pub and
    /// DIR/allow/bus/*.pub (the vision keys allowed); --state-out takes DIR/allow/state/*.pub,
    /// --teacher-in DIR/allow/teacher/*.pub (control or all). These may then bind a
    /// non-loopback endpoint without --insecure. Vision: DIR/server.pub (the control side's
    /// public key) and its own pair DIR/NAME.key, DIR/NAME.pub (NAME from --key).
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Vision with --keys: the name of this vision's key pair in the keys directory (default
    /// `vision`).
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
    /// Write the flight summary as JSON to this file (control/all).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the flight log (MCAP if it ends in .mcap, else JSON Lines) (control/all).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Rigs with a Kinect bridge camera: connect to the bridge here instead of the rig's
    /// endpoint.
    #[arg(long, value_name = "ENDPOINT")]
    pub bridge_endpoint: Option<String>,
    /// Rigs with a Kinect bridge camera: the bridge is a CURVE server (`kinect_bridge.py
    /// --keys`, `fake-bridge --keys`); DIR holds its server.pub and this client's key pair.
    #[arg(long, value_name = "DIR")]
    pub bridge_keys: Option<PathBuf>,
    /// With --bridge-keys: the name of this client's key pair in DIR (default `vision`); its
    /// .pub must be in the bridge's allow/bridge/.
    #[arg(long, value_name = "NAME", requires = "bridge_keys")]
    pub bridge_key: Option<String>,
    /// Vision: load the detector's learnt background from this file at start (if it exists)
    /// and save it there once learnt, so that a restarted vision does not learn the quad into
    /// its background.
    #[arg(long, value_name = "FILE")]
    pub background: Option<PathBuf>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

pub(crate) fn check_endpoint(flag: &str, e: &str) -> Result<(), Failure> {
    let ok = ["tcp://", "ipc://", "inproc://"]
        .iter()
        .any(|p| e.starts_with(p) && e.len() > p.len());
    if ok {
        Ok(())
    } else {
        Err(Failure::bad_input(anyhow::anyhow!(
            "--{flag} `{e}`: not a ZMQ endpoint (e.g. tcp://127.0.0.1:7710)"
        )))
    }
}

pub fn run(args: &RunArgs) -> Result<(), Failure> {
    let (rig, mut scene) =
        Rig::load(&args.rig).map_err(|e| Failure::bad_input(anyhow::Error::new(e)))?;
    scene.architecture = rig.architecture;
    if let Some(r) = &args.realism {
        scene.realism = r.clone();
    }
    if rig.link_scheme() != "sim" {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "rig `{}`: `depthpilot run` flies the simulated Crazyflie in the control process \
             (`link: \"sim://\"`); for `{}` use `depthpilot hil {}`",
            rig.name,
            rig.link,
            args.rig.display()
        )));
    }
    let bridge = match &rig.camera {
        CameraSource::Simulated => None,
        CameraSource::KinectBridge { endpoint } => {
            let e = args.bridge_endpoint.clone().unwrap_or(endpoint.clone());
            check_endpoint("bridge-endpoint", &e)?;
            if args.role == Role::Vision {
                return Err(Failure::bad_input(anyhow::anyhow!(
                    "rig `{}`: its frames come from a Kinect bridge ({e}) and the vision runs in \
                     the control process; start the bridge (`python3 hil/kinect_bridge/kinect_bridge.py`, \
                     or `depthpilot fake-bridge <scene> --truth-endpoint {}`) and `--role control`",
                    rig.name,
                    args.truth_endpoint
                )));
            }
            Some(e)
        }
    };
    if bridge.is_none() && args.bridge_keys.is_some() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--bridge-keys: rig `{}` renders the synthetic camera (`camera: Simulated`)",
            rig.name
        )));
    }
    if bridge.is_none() && args.bridge_endpoint.is_some() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--bridge-endpoint: rig `{}` renders the synthetic camera (`camera: Simulated`)",
            rig.name
        )));
    }
    check_endpoint("truth-endpoint", &args.truth_endpoint)?;
    check_endpoint("measurement-endpoint", &args.measurement_endpoint)?;
    if let Some(d) = &args.detector_out {
        check_endpoint("detector-out", d)?;
    }
    if let Some(d) = &args.setpoints_in {
        check_endpoint("setpoints-in", d)?;
    }
    if let Some(d) = &args.pid_viz {
        check_endpoint("pid-viz", d)?;
    }
    for (flag, e) in [
        ("state-out", &args.state_out),
        ("teacher-in", &args.teacher_in),
    ] {
        if let Some(e) = e {
            check_endpoint(flag, e)?;
            if args.role == Role::Vision {
                return Err(Failure::bad_input(anyhow::anyhow!(
                    "--{flag}: the flight's state and its teacher are the control side's; use \
                     it with --role control or --role all"
                )));
            }
        }
    }
    let (bus_keys, flight_keys) = curve_keys(args, bridge.is_some())?;
    if args.background.is_some() && args.role != Role::Vision {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--background: the learnt background is the vision's; use it with --role vision"
        )));
    }
    let extras = FlightExtras {
        setpoints_in: args.setpoints_in.clone(),
        pid_viz: args.pid_viz.clone(),
        shadow: None,
        state_out: args.state_out.clone(),
        teacher_in: args.teacher_in.clone(),
        bind_policy: BindPolicy::from_insecure(args.insecure),
        keys: flight_keys,
    };
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--duration {d}: expected a positive number of seconds"
        )));
    }
    let endpoints = BusEndpoints {
        truth: args.truth_endpoint.clone(),
        measurements: args.measurement_endpoint.clone(),
        policy: BindPolicy::from_insecure(args.insecure),
        curve: bus_keys,
    };
    match args.role {
        Role::Vision => {
            let role = VisionRole {
                endpoints,
                detector_out: args.detector_out.clone(),
                duration: args.duration.map(Duration::from_secs_f64),
                status_every: Duration::from_secs(2),
                background: args.background.clone(),
            };
            let report = depthpilot_runtime::split::run_vision(&scene, &role).map_err(runtime)?;
            if !args.quiet {
                println!(
                    "depthpilot run — vision of `{}`: background {}; {} truth messages, {} frames, {} measurements sent, {} garbage",
                    scene.name,
                    if report.background_loaded {
                        "loaded"
                    } else {
                        "learnt"
                    },
                    report.truth_received,
                    report.frames,
                    report.measurements_sent,
                    report.garbage.total
                );
            }
            Ok(())
        }
        Role::All | Role::Control => {
            if let Some(d) = args.duration {
                scene.duration_s = d;
            }
            let source = match (&bridge, args.role) {
                (Some(endpoint), _) => VisionSource::Bridge {
                    endpoint: endpoint.clone(),
                    truth: Some(args.truth_endpoint.clone()),
                    curve: crate::camera::bridge_client_keys(
                        args.bridge_keys.as_deref(),
                        args.bridge_key.as_deref(),
                    )?,
                },
                (None, Role::Control) => VisionSource::Bus(endpoints),
                (None, _) => VisionSource::Local,
            };
            if !args.quiet
                && let Some(b) = &bridge
            {
                eprintln!(
                    "depthpilot run: `{}` in real time with frames from the Kinect bridge at {b}; truth on {} (for a fake bridge)",
                    scene.name, args.truth_endpoint
                );
            } else if !args.quiet && args.role == Role::Control {
                eprintln!(
                    "depthpilot run: control of `{}` in real time; truth on {}, measurements from {} (start `depthpilot run {} --role vision`)",
                    scene.name,
                    args.truth_endpoint,
                    args.measurement_endpoint,
                    args.rig.display()
                );
            }
            let started = Instant::now();
            let (summary, rt) = match &args.log {
                Some(path) => {
                    let log = FlightLog::create(path, &scene, None, true)?;
                    let (s, log, rt) = fly(&scene, log, &source, &extras)?;
                    log.finish(Some(&s))?;
                    (s, rt)
                }
                None => {
                    let (s, _, rt) = fly(&scene, NoLog, &source, &extras)?;
                    (s, rt)
                }
            };
            write_summary(
                args.summary.as_deref(),
                args.quiet,
                &summary,
                rt.as_ref(),
                started,
            )?;
            if !args.quiet
                && let Some(cam) = rt.as_ref().and_then(|r| r.camera.as_ref())
            {
                println!("  camera      {}", cam.describe());
            }
            if !args.quiet
                && let Some(bus) = rt.as_ref().and_then(|r| r.bus.as_ref())
            {
                if let Some(a) = &bus.auth {
                    println!(
                        "  bus CURVE   {} handshake(s) accepted, {} denied, {} failed",
                        a.accepted, a.denied, a.handshake_failures
                    );
                }
                println!(
                    "  bus         {} set-point messages in; {} truth messages out, {} measurements in ({} gaps, {} missed, {} restarts of the sender), {} garbage{}; {} stale stretch(es){}",
                    bus.set_points_received,
                    bus.truth_published,
                    bus.measurements.received,
                    bus.measurements.gaps,
                    bus.measurements.missed,
                    bus.measurements.restarts,
                    bus.garbage.total,
                    bus.garbage
                        .last
                        .as_deref()
                        .map(|l| format!(" (last: {l})"))
                        .unwrap_or_default(),
                    bus.stale.len(),
                    bus.stale
                        .iter()
                        .map(|s| format!(
                            " [at {:.2} s, {:.0} ms after the last; {}]",
                            s.detected_at_s,
                            s.after_last_ms,
                            s.recovered_at_s
                                .map_or("not recovered".to_string(), |t| format!(
                                    "back at {t:.2} s"
                                ))
                        ))
                        .collect::<String>()
                );
            }
            Ok(())
        }
    }
}

/// The CURVE keys from `--keys` / `--key` (None without `--keys`): the bus's, and the server
/// keys of the flight's own endpoints (`--state-out`, `--teacher-in`).
fn curve_keys(
    args: &RunArgs,
    bridge: bool,
) -> Result<(Option<BusCurve>, Option<ServerKeys>), Failure> {
    let Some(dir) = &args.keys else {
        if args.key.is_some() {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--key names the vision's key pair in the --keys directory: pass --keys DIR too"
            )));
        }
        return Ok((None, None));
    };
    let key_err =
        |e: depthpilot_runtime::curve::KeyError| Failure::bad_input(anyhow::Error::new(e));
    // The flight's own server sockets besides the bus.
    let own = args.state_out.is_some() || args.teacher_in.is_some();
    if args.role != Role::Vision && args.key.is_some() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--key: the control side serves the bus with DIR/server.key; --key names a \
             vision's key pair (use it with --role vision)"
        )));
    }
    match args.role {
        Role::All if !own => Err(Failure::bad_input(anyhow::anyhow!(
            "--keys: CURVE protects the bus between `--role control` and `--role vision`, and \
             --state-out / --teacher-in; `--role all` has no bus and binds neither"
        ))),
        Role::Control if bridge && !own => Err(Failure::bad_input(anyhow::anyhow!(
            "--keys: this rig's vision runs in the control process on frames from a Kinect \
             bridge; there is no bus to protect (nor --state-out / --teacher-in)"
        ))),
        Role::All | Role::Control if bridge || args.role == Role::All => {
            let keys = crate::fly::load_server_keys(dir)?;
            Ok((None, Some(keys)))
        }
        Role::All | Role::Control => {
            let keys = crate::fly::load_server_keys(dir)?;
            if keys.allow.len("bus") == 0 {
                return Err(Failure::bad_input(anyhow::anyhow!(
                    "--keys {}: no vision may connect: {} is empty or missing; copy the \
                     vision's .pub there (`depthpilot keygen --name vision` makes one)",
                    dir.display(),
                    dir.join("allow").join("bus").display()
                )));
            }
            let flight = own.then(|| keys.clone());
            Ok((Some(BusCurve::Server(keys)), flight))
        }
        Role::Vision => {
            let name = args.key.as_deref().unwrap_or("vision");
            let client = depthpilot_runtime::curve::KeyPair::load(dir, name).map_err(key_err)?;
            let server =
                depthpilot_runtime::curve::PublicKey::load(dir, "server").map_err(key_err)?;
            Ok((Some(BusCurve::Client { server, client }), None))
        }
    }
}

fn runtime(e: RuntimeError) -> Failure {
    let code = match e {
        RuntimeError::Bind { .. } | RuntimeError::Connect { .. } | RuntimeError::Policy(_) => {
            EXIT_BAD_INPUT
        }
        _ => 1,
    };
    Failure {
        code,
        error: anyhow::Error::new(e),
    }
}

fn fly<L: LogSink + Send + Unpin + 'static>(
    scene: &Scene,
    log: L,
    source: &VisionSource,
    extras: &FlightExtras,
) -> Result<(Summary, L, Option<RealtimeReport>), Failure> {
    let controller = depthpilot_control::from_config(&scene.controller);
    depthpilot_runtime::fly_actors_with(scene, controller, log, ClockMode::Realtime, source, extras)
        .map_err(runtime)
}
