//! `depthpilot teach`: run the input mux live against a teacher input and print what it would
//! send, tick by tick (100 Hz, as the Crazyflie client). For checking an input device or a
//! script that speaks the client's ZMQ input protocol before it flies anything.

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_mux::{GamepadMapping, InputFrame};
use depthpilot_mux::{Mux, Source};
use depthpilot_runtime::LiveTeacher;
use depthpilot_runtime::netpolicy::BindPolicy;
use depthpilot_runtime::{GamepadTeacher, ZmqTeacher};
use depthpilot_types::scene::{MuxConfig, MuxMode};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Mux mode names on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// The autopilot flies everything; the teacher has e-stop only.
    Normal,
    /// Student roll/pitch, teacher thrust/yaw; the mux switch gives the teacher everything.
    TeacherRp,
    /// Student everything; the mux switch gives the teacher everything.
    TeacherRpyt,
    /// Both added (2015 MixMux; unsafe).
    Mix,
}

/// Arguments of `depthpilot teach`.
#[derive(clap::Args, Debug)]
pub struct TeachArgs {
    /// ZMQ endpoint to bind the PULL socket to (the Crazyflie client's input-device port).
    #[arg(long, default_value = depthpilot_runtime::zmq_teacher::DEFAULT_ENDPOINT)]
    pub bind: String,
    /// Mux mode.
    #[arg(long, value_enum, default_value_t = ModeArg::TeacherRpyt)]
    pub mode: ModeArg,
    /// Read the teacher from a gamepad with this mapping file (e.g. hil/gamepad_mode2.ron)
    /// instead of ZMQ.
    #[arg(long, value_name = "MAPPING")]
    pub gamepad: Option<PathBuf>,
    /// Stop after this many 10 ms ticks (default: run until interrupted).
    #[arg(long)]
    pub ticks: Option<u64>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// Serve the ZMQ input with CURVE (authenticated, encrypted) using the keys in DIR:
    /// DIR/server.key and DIR/server.pub, and DIR/allow/teacher/*.pub, the clients allowed (see
    /// `depthpilot keygen`). A non-loopback --bind then needs no --insecure.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["gamepad", "insecure"])]
    pub keys: Option<PathBuf>,
}

/// Where the teacher's input comes from.
enum Teacher {
    Zmq(ZmqTeacher),
    Gamepad(Box<GamepadTeacher>),
}

fn open_teacher(args: &TeachArgs) -> Result<Teacher, Failure> {
    if let Some(dir) = &args.keys {
        let bad_input = |error: anyhow::Error| Failure {
            code: EXIT_BAD_INPUT,
            error,
        };
        let keys = depthpilot_runtime::curve::ServerKeys::load(dir)
            .map_err(|e| bad_input(anyhow::Error::new(e)))?;
        return ZmqTeacher::bind_curve(&args.bind, &keys)
            .map(Teacher::Zmq)
            .map_err(|e| bad_input(anyhow::Error::new(e)));
    }
    Ok(
        match open_live_teacher(
            &args.bind,
            args.gamepad.as_deref(),
            BindPolicy::from_insecure(args.insecure),
        )? {
            LiveTeacher::Zmq(z) => Teacher::Zmq(z),
            LiveTeacher::Gamepad(g) => Teacher::Gamepad(g),
        },
    )
}

/// The ModeArg's mux mode.
pub(crate) fn mux_mode(m: ModeArg) -> MuxMode {
    match m {
        ModeArg::Normal => MuxMode::Normal,
        ModeArg::TeacherRp => MuxMode::TeacherRp,
        ModeArg::TeacherRpyt => MuxMode::TeacherRpyt,
        ModeArg::Mix => MuxMode::Mix,
    }
}

/// A live teacher: a gamepad with this mapping file, else the client's ZMQ input bound at `bind`.
pub(crate) fn open_live_teacher(
    bind: &str,
    gamepad: Option<&std::path::Path>,
    policy: BindPolicy,
) -> Result<LiveTeacher, Failure> {
    let bad_input = |error: anyhow::Error| Failure {
        code: EXIT_BAD_INPUT,
        error,
    };
    match gamepad {
        None => ZmqTeacher::bind_with(bind, policy)
            .map(LiveTeacher::Zmq)
            .map_err(|e| bad_input(anyhow::Error::new(e))),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad_input(anyhow::anyhow!(
                    "{}: cannot read gamepad mapping: {e}",
                    path.display()
                ))
            })?;
            let mapping = GamepadMapping::from_ron(&text, &path.display().to_string())
                .map_err(|e| bad_input(anyhow::Error::new(e)))?;
            let pad = GamepadTeacher::open(mapping).map_err(|e| Failure {
                code: 1,
                error: anyhow::anyhow!(
                    "{e}; plug in a gamepad, or drop --gamepad to use the ZMQ input"
                ),
            })?;
            Ok(LiveTeacher::Gamepad(Box::new(pad)))
        }
    }
}

pub fn teach(args: &TeachArgs) -> Result<(), Failure> {
    let mut teacher = open_teacher(args)?;
    let mode = mux_mode(args.mode);
    let mut mux = Mux::new(MuxConfig {
        mode,
        ..MuxConfig::default()
    });
    let source = match &teacher {
        Teacher::Zmq(z) => format!("listening on {} (client input-device JSON)", z.endpoint()),
        Teacher::Gamepad(g) => format!("gamepad `{}`", g.name()),
    };
    eprintln!("depthpilot teach: {source}, mux {mode:?}; one JSON line per 10 ms tick on stdout");
    let start = Instant::now();
    let tick = Duration::from_millis(10);
    let stdout = std::io::stdout();
    let mut k = 0u64;
    while args.ticks.is_none_or(|n| k < n) {
        let now_ns = start.elapsed().as_nanos() as u64;
        let frame: Option<InputFrame> = match &mut teacher {
            Teacher::Zmq(z) => {
                let skipped = z.poll(now_ns).map_err(anyhow::Error::new)?;
                for reason in skipped {
                    eprintln!(
                        "depthpilot teach: skipped a message ({reason}); {} accepted, {} skipped so far",
                        z.stats.accepted, z.stats.rejected
                    );
                }
                z.frame()
            }
            Teacher::Gamepad(g) => g.poll(now_ns),
        };
        let out = mux.step(now_ns, frame.as_ref(), None);
        let line = format!(
            "{{\"t_s\":{:.3},\"roll_deg\":{},\"pitch_deg\":{},\"yaw_rate_deg_s\":{},\"thrust\":{},\"sources\":[{}],\"estop\":{}}}",
            now_ns as f64 * 1e-9,
            out.roll_deg,
            out.pitch_deg,
            out.yaw_rate_deg_s,
            out.thrust,
            out.sources
                .iter()
                .map(|s: &Source| format!("\"{}\"", s.as_str()))
                .collect::<Vec<_>>()
                .join(","),
            out.estop
        );
        let mut lock = stdout.lock();
        if writeln!(lock, "{line}")
            .and_then(|()| lock.flush())
            .is_err()
        {
            // Whoever read our output has gone: stop quietly.
            return Ok(());
        }
        drop(lock);
        k += 1;
        let next = tick * (k as u32);
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}
