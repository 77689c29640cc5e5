//! `depthpilot hil <rig>`: fly a rig on the bench. Checks every device the rig needs before
//! anything moves, and fails fast with what is missing and how to fix it.

use crate::fly::write_summary;
use crate::{EXIT_BAD_INPUT, Failure};
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
    let not_yet = |what: &str| Failure {
        code: 1,
        error: anyhow::anyhow!(
            "rig `{}`: {what} is not available in this version of depthpilot (see the open \
             issues); the rig itself is valid",
            rig.name
        ),
    };
    if let CameraSource::KinectBridge { .. } = rig.camera {
        return Err(not_yet("the Kinect bridge camera source"));
    }
    if rig.link_is_real() {
        // Shadow mode: the real Crazyflie receives what a simulated loop computes.
        return Err(not_yet("shadow mode against a real Crazyflie"));
    }
    // A simulated Crazyflie behind the link (udp://): the real-time remote flight.
    let started = Instant::now();
    let link = depthpilot_radio::open(&rig.link).map_err(|e| Failure {
        code: EXIT_NO_DEVICE,
        error: anyhow::Error::new(e).context(format!("rig `{}`", rig.name)),
    })?;
    let controller = depthpilot_control::from_config(&scene.controller);
    let summary =
        depthpilot_runtime::fly_remote(&scene, controller, link, &mut NoLog).map_err(|e| {
            Failure {
                code: 1,
                error: anyhow::Error::new(e),
            }
        })?;
    write_summary(args.summary.as_deref(), args.quiet, &summary, None, started)
}
