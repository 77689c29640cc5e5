//! `depthpilot hil <rig>`: fly a rig on the bench. Checks every device the rig needs before
//! anything moves, and fails fast with what is missing and how to fix it.

use crate::fly::write_summary;
use crate::log_file::FlightLog;
use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_runtime::netpolicy::BindPolicy;
use depthpilot_runtime::{ClockMode, FlightExtras, RemoteCamera, VisionSource};
use depthpilot_sim::NoLog;
use depthpilot_types::Rig;
use depthpilot_types::rig::CameraSource;
use std::path::PathBuf;
use std::time::Instant;

/// Exit code when a device the rig needs is missing or unusable.
pub const EXIT_NO_DEVICE: u8 = 3;

/// Arguments of `depthpilot hil`.
#[derive(clap::Args, Debug)]
pub struct HilArgs {
    /// Rig file (RON), e.g. hil/bench.ron.
    pub rig: PathBuf,
    /// Write the flight summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the flight log (MCAP if it ends in .mcap, else JSON Lines).
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
    /// A simulated Crazyflie behind the link (udp://) with a Kinect bridge camera: publish its
    /// truth here for `depthpilot fake-bridge --truth-endpoint`.
    #[arg(long, value_name = "ENDPOINT", default_value = depthpilot_runtime::split::DEFAULT_TRUTH_ENDPOINT)]
    pub truth_endpoint: String,
    /// A live teacher through the mux: the client's ZMQ input device bound here (cfclient's
    /// format; `depthpilot teach` shows what a sender does), e.g. tcp://127.0.0.1:1212.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "gamepad")]
    pub teacher_zmq: Option<String>,
    /// A live teacher on a gamepad with this mapping (e.g. hil/gamepad_mode2.ron).
    #[arg(long, value_name = "MAPPING")]
    pub gamepad: Option<PathBuf>,
    /// The mux mode for the live teacher.
    #[arg(long, value_enum, default_value_t = crate::teach::ModeArg::TeacherRpyt)]
    pub mux_mode: crate::teach::ModeArg,
    /// The realism layer for the simulated parts (a shadow flight, a simulated camera),
    /// replacing the rig's: `Ideal`, `Bench`, or a preset with overrides (README "Realism").
    #[arg(long, value_name = "SPEC", value_parser = depthpilot_types::scene::Realism::parse_spec)]
    pub realism: Option<depthpilot_types::scene::Realism>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// CURVE (authenticated, encrypted) on the live teacher input (--teacher-zmq), keys from DIR
    /// (see `depthpilot keygen`): DIR/server.key, DIR/server.pub and DIR/allow/teacher/*.pub,
    /// the only clients that may take over (a vision's or any other role's key is refused).
    /// It may then bind a non-loopback endpoint without --insecure.
    #[arg(long, value_name = "DIR", requires = "teacher_zmq")]
    pub keys: Option<PathBuf>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn hil(args: &HilArgs) -> Result<(), Failure> {
    let (rig, mut scene) = Rig::load(&args.rig).map_err(|e| Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::Error::new(e),
    })?;
    // The rig chooses who closes the position loop.
    scene.architecture = rig.architecture;
    if let Some(r) = &args.realism {
        scene.realism = r.clone();
    }
    eprintln!(
        "depthpilot hil: rig `{}`: link {}, {:?} control, camera {}, {}",
        rig.name,
        rig.link,
        rig.architecture,
        match &rig.camera {
            CameraSource::Simulated => "simulated".to_string(),
            CameraSource::KinectBridge { endpoint } => format!("Kinect bridge at {endpoint}"),
        },
        if rig.shadow {
            "shadow (propellers off)"
        } else {
            "live"
        }
    );
    if rig.link_scheme() == "sim" {
        return Err(Failure {
            code: EXIT_BAD_INPUT,
            error: anyhow::anyhow!(
                "rig `{}` flies the simulated Crazyflie in process (`sim://`): use `depthpilot run {}`",
                rig.name,
                args.rig.display()
            ),
        });
    }
    // The keys first: a bad keys directory is a usage error, before any device is opened.
    let keys = match &args.keys {
        Some(dir) => Some(crate::fly::load_server_keys(dir)?),
        None => None,
    };
    // The link's device first: no point in waiting for a camera without a radio.
    if rig.link_scheme() == "radio" {
        let dongle = depthpilot_radio::probe_crazyradio().map_err(|e| Failure {
            code: EXIT_NO_DEVICE,
            error: anyhow::Error::new(e).context(format!("rig `{}`", rig.name)),
        })?;
        eprintln!(
            "depthpilot hil: Crazyradio found (firmware {}, serial {})",
            dongle.firmware_version,
            dongle.serial.as_deref().unwrap_or("?")
        );
    }
    let started = Instant::now();
    let controller = depthpilot_control::from_config(&scene.controller);
    if rig.shadow {
        // Shadow: the simulated world and camera fly in this process; the Crazyflie behind the
        // link receives every setpoint too (propellers off).
        if let CameraSource::KinectBridge { .. } = rig.camera {
            return Err(Failure {
                code: EXIT_BAD_INPUT,
                error: anyhow::anyhow!(
                    "rig `{}`: shadow flies the simulated world and camera, and the real \
                     Crazyflie (propellers off) only receives the setpoints; a Kinect bridge \
                     would watch a quad that does not fly. Use `camera: Simulated` for shadow, \
                     or `shadow: false` to fly",
                    rig.name
                ),
            });
        }
        let extras = FlightExtras {
            shadow: Some(rig.link.clone()),
            ..FlightExtras::default()
        };
        let (summary, rt) = match &args.log {
            Some(path) => {
                let log = FlightLog::create(path, &scene, Some(&rig.link), true)?;
                let (s, log, rt) = shadow_flight(&scene, controller, log, &extras, &rig.name)?;
                log.finish(Some(&s))?;
                (s, rt)
            }
            None => {
                let (s, _, rt) = shadow_flight(&scene, controller, NoLog, &extras, &rig.name)?;
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
        if let Some(sh) = rt.as_ref().and_then(|r| r.shadow.as_ref())
            && !args.quiet
        {
            println!(
                "  shadow      {} messages to {}, {} errors{}",
                sh.packets_sent,
                sh.uri,
                sh.errors,
                sh.last_error
                    .as_deref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
        return Ok(());
    }
    let camera = match &rig.camera {
        CameraSource::Simulated if args.bridge_keys.is_some() => {
            return Err(Failure {
                code: EXIT_BAD_INPUT,
                error: anyhow::anyhow!(
                    "--bridge-keys: rig `{}` renders the synthetic camera (`camera: Simulated`)",
                    rig.name
                ),
            });
        }
        CameraSource::Simulated => RemoteCamera::Simulated,
        CameraSource::KinectBridge { endpoint } => {
            let endpoint = args.bridge_endpoint.clone().unwrap_or(endpoint.clone());
            crate::run::check_endpoint("bridge-endpoint", &endpoint)?;
            crate::run::check_endpoint("truth-endpoint", &args.truth_endpoint)?;
            RemoteCamera::Bridge {
                endpoint,
                // A simulated Crazyflie logs its truth: a fake bridge can render it.
                truth_out: (!rig.link_is_real()).then(|| args.truth_endpoint.clone()),
                curve: crate::camera::bridge_client_keys(
                    args.bridge_keys.as_deref(),
                    args.bridge_key.as_deref(),
                )?,
            }
        }
    };
    let link = depthpilot_radio::open(&rig.link).map_err(|e| Failure {
        code: EXIT_NO_DEVICE,
        error: anyhow::Error::new(e).context(format!("rig `{}`", rig.name)),
    })?;
    let teacher = match (&args.teacher_zmq, &args.gamepad) {
        (None, None) => None,
        (zmq, pad) => {
            let bind = zmq
                .as_deref()
                .unwrap_or(depthpilot_runtime::zmq_teacher::DEFAULT_ENDPOINT);
            let t = match &keys {
                Some(keys) => depthpilot_runtime::ZmqTeacher::bind_curve_flight(bind, keys)
                    .map(depthpilot_runtime::remote::LiveTeacher::Zmq)
                    .map_err(|e| Failure {
                        code: EXIT_BAD_INPUT,
                        error: anyhow::Error::new(e),
                    })?,
                None => crate::teach::open_live_teacher(
                    bind,
                    pad.as_deref(),
                    BindPolicy::from_insecure(args.insecure),
                )?,
            };
            let mux = depthpilot_types::scene::MuxConfig {
                mode: crate::teach::mux_mode(args.mux_mode),
                ..Default::default()
            };
            eprintln!(
                "depthpilot hil: live teacher {} through the mux ({:?}): it takes over with the mux \
                 switch and has the e-stop",
                match (&args.teacher_zmq, &args.gamepad) {
                    (_, Some(p)) => format!("on the gamepad ({})", p.display()),
                    (Some(e), _) => format!("on {e}"),
                    (None, None) => unreachable!(),
                },
                mux.mode
            );
            Some((t, mux))
        }
    };
    let opts = depthpilot_runtime::RemoteOptions {
        camera,
        truth_from_link: !rig.link_is_real(),
        teacher,
        bind_policy: BindPolicy::from_insecure(args.insecure),
    };
    let fly = |log: &mut dyn depthpilot_sim::LogSink| {
        depthpilot_runtime::fly_remote_with(&scene, controller, link, opts, log).map_err(|e| {
            Failure {
                code: 1,
                error: anyhow::Error::new(e),
            }
        })
    };
    let summary = match &args.log {
        Some(path) => {
            let mut log = FlightLog::create(path, &scene, Some(&rig.link), true)?;
            let s = fly(&mut log);
            log.finish(s.as_ref().ok())?;
            s?
        }
        None => fly(&mut NoLog)?,
    };
    write_summary(args.summary.as_deref(), args.quiet, &summary, None, started)
}

/// The in-process real-time flight of a shadow rig.
fn shadow_flight<L: depthpilot_sim::LogSink + Send + Unpin + 'static>(
    scene: &depthpilot_types::Scene,
    controller: Box<dyn depthpilot_control::Controller + Send>,
    log: L,
    extras: &FlightExtras,
    rig: &str,
) -> Result<
    (
        depthpilot_sim::Summary,
        L,
        Option<depthpilot_runtime::RealtimeReport>,
    ),
    Failure,
> {
    depthpilot_runtime::fly_actors_with(
        scene,
        controller,
        log,
        ClockMode::Realtime,
        &VisionSource::Local,
        extras,
    )
    .map_err(|e| Failure {
        code: EXIT_NO_DEVICE,
        error: anyhow::Error::new(e).context(format!("rig `{rig}`")),
    })
}
