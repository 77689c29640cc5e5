//! The Kinect bridge commands: `fake-bridge` (the synthetic Kinect through the bridge protocol),
//! `record` (a bridge's frames and the vision's detections into an MCAP session) and `replay`
//! (the vision again over a recorded session).

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_runtime::fake_bridge::{FakeBridge, run_fake_bridge};
use std::path::PathBuf;
use std::time::Duration;

fn bad(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        error,
    }
}

/// `AT:VALUE` of a repeated flag.
fn pair(flag: &str, s: &str) -> Result<(f64, f64), Failure> {
    let parsed = s
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| a.is_finite() && b.is_finite() && *a >= 0.0 && *b > 0.0);
    parsed.ok_or_else(|| {
        bad(anyhow::anyhow!(
            "--{flag} `{s}`: expected AT:VALUE with AT ≥ 0 and VALUE > 0 (e.g. 6.0:1.5)"
        ))
    })
}

/// Arguments of `depthpilot fake-bridge`.
#[derive(clap::Args, Debug)]
pub struct FakeBridgeArgs {
    /// Scene file (RON) with a Kinect (`sensing: Kinect((…))`): its camera, noise and latency.
    pub scene: PathBuf,
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
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn fake_bridge(args: &FakeBridgeArgs) -> Result<(), Failure> {
    let scene = crate::fly::load_inline_scene(&args.scene)?;
    crate::run::check_endpoint("bind", &args.bind)?;
    if let Some(t) = &args.truth_endpoint {
        crate::run::check_endpoint("truth-endpoint", t)?;
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(bad(anyhow::anyhow!(
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
        truth: args.truth_endpoint.clone(),
        duration: args.duration.map(Duration::from_secs_f64),
        stalls,
        wrong_size,
        status_every: if args.quiet {
            Duration::MAX
        } else {
            Duration::from_secs(2)
        },
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
            "depthpilot fake-bridge — `{}`: {} frames sent, {} stalled, {} of the wrong size, {} truth messages",
            scene.name,
            report.frames_sent,
            report.frames_stalled,
            report.frames_wrong_size,
            report.truth_received
        );
    }
    Ok(())
}
