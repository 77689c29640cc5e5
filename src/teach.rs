//! `depthpilot teach`: run the input mux live against a teacher input and print what it would
//! send, tick by tick (100 Hz, as the Crazyflie client). For checking an input device or a
//! script that speaks the client's ZMQ input protocol before it flies anything.

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_mux::{Mux, Source};
use depthpilot_runtime::ZmqTeacher;
use depthpilot_types::scene::{MuxConfig, MuxMode};
use std::io::Write;
use std::time::{Duration, Instant};

/// Mux mode names on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ModeArg {
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
    /// Stop after this many 10 ms ticks (default: run until interrupted).
    #[arg(long)]
    pub ticks: Option<u64>,
}

pub fn teach(args: &TeachArgs) -> Result<(), Failure> {
    let mut teacher = ZmqTeacher::bind(&args.bind).map_err(|e| Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::Error::new(e),
    })?;
    let mode = match args.mode {
        ModeArg::Normal => MuxMode::Normal,
        ModeArg::TeacherRp => MuxMode::TeacherRp,
        ModeArg::TeacherRpyt => MuxMode::TeacherRpyt,
        ModeArg::Mix => MuxMode::Mix,
    };
    let mut mux = Mux::new(MuxConfig {
        mode,
        ..MuxConfig::default()
    });
    eprintln!(
        "depthpilot teach: listening on {} (client input-device JSON), mux {:?}; one JSON line per 10 ms tick on stdout",
        teacher.endpoint(),
        mode
    );
    let start = Instant::now();
    let tick = Duration::from_millis(10);
    let stdout = std::io::stdout();
    let mut k = 0u64;
    while args.ticks.is_none_or(|n| k < n) {
        let now_ns = start.elapsed().as_nanos() as u64;
        let skipped = teacher.poll(now_ns).map_err(anyhow::Error::new)?;
        for reason in skipped {
            eprintln!(
                "depthpilot teach: skipped a message ({reason}); {} accepted, {} skipped so far",
                teacher.stats.accepted, teacher.stats.rejected
            );
        }
        let out = mux.step(now_ns, teacher.frame().as_ref(), None);
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
