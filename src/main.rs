//! `depthpilot`: fly a Crazyflie 2.x from a (simulated) depth camera. See README.md.

mod batch;
mod bench;
mod bridge;
mod camera;
mod export;
mod fly;
mod hil;
mod keygen;
mod log_file;
mod log_repair;
mod matrix;
mod plot;
mod run;
mod sitl;
mod teach;
mod tune;
mod view;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Fly a Bitcraze Crazyflie 2.x from a depth camera, simulation first.
#[derive(Parser, Debug)]
#[command(name = "depthpilot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Off-board controller override.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ControllerArg {
    /// Position → velocity → attitude cascade (the default).
    Cascade,
    /// The 2015 Bitcraze Kinect demo's PID structure.
    Bitcraze2015,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fly a scene in simulation, headless and faster than real time (or, with `--link`, in real
    /// time through the radio actor to a simulated Crazyflie in another process).
    Fly(fly::FlyArgs),
    /// Search the cascade gains in simulation and write a controller file scenes can use.
    Tune(tune::TuneArgs),
    /// Plot a flight log (from `fly --log`) as a PNG.
    Plot(plot::PlotArgs),
    /// Replay a flight log in 3D, or render one frame of it (`--screenshot`), with the separate
    /// `depthpilot-viewer` binary (same arguments).
    View(view::ViewArgs),
    /// Monte Carlo over seeds: many flights in parallel, an aggregate report; sliceable into
    /// shards for a scheduler and mergeable.
    Batch(batch::BatchArgs),
    /// The degraded-sensing matrix: each architecture × manoeuvre × degradation (rate
    /// collapses, drops, blackouts, bus jitter) as a generated scene over many seeds; a table
    /// and a heat-map.
    Matrix(matrix::MatrixArgs),
    /// Run the input mux live against a teacher on the Crazyflie client's ZMQ input protocol
    /// and print what it would send (100 Hz).
    Teach(teach::TeachArgs),
    /// Serve the client's ZMQ parameter and LED-ring protocols (cfclient's 1213 / 1214) in front
    /// of a Crazyflie behind any link.
    Bridge(bridge::BridgeArgs),
    /// Fly a rig's actors in real time: all in this process, or split over processes (and
    /// hosts) on the ZMQ bus with `--role control` here and `--role vision` elsewhere.
    Run(run::RunArgs),
    /// A fake Kinect v2 bridge: the scene's synthetic camera published through the bridge
    /// protocol (hil/PROTOCOL.md), rendering a running simulated flight or, open loop, the
    /// scene's setpoints.
    FakeBridge(camera::FakeBridgeArgs),
    /// Record a Kinect bridge's frames and the vision's detections into an MCAP session; prints
    /// the frame rate, the device's intrinsics, gaps and detections.
    Record(camera::RecordArgs),
    /// Run the vision again over a recorded session and check it gives the recorded detections
    /// bit for bit.
    Replay(camera::ReplayArgs),
    /// Turn a camera session into an MCAP that Foxglove opens: depth and IR images,
    /// calibration, the camera's transforms, the detections as image annotations.
    Export(export::ExportArgs),
    /// Work on MCAP recordings: `log repair IN [OUT]` rewrites a killed or damaged flight log
    /// or camera session whole, with summary and index.
    Log(log_repair::LogArgs),
    /// Fly a rig on the bench (hil/bench.ron): checks the devices it needs first and fails fast
    /// with what is missing.
    Hil(hil::HilArgs),
    /// Serve simulated Crazyflies over CRTP/UDP (cflib's `udp://` driver, CrazySim's wire
    /// format), in real time: Bitcraze's clients connect to them as to real ones.
    Sitl(sitl::SitlArgs),
    /// Write a CURVE key pair for remote links: NAME.key (secret, 0600) and NAME.pub.
    Keygen(keygen::KeygenArgs),
    /// Measure the speed of the whole loop against a bare rapier world, with a per-stage profile.
    Bench {
        /// Scene file (RON), e.g. scenes/hover.ron.
        scene: PathBuf,
        /// Flights to time (the best is reported).
        #[arg(long, default_value_t = 5)]
        repeat: u32,
        /// The realism layer, replacing the scene's `realism`: `Ideal`, `Bench`, or a preset
        /// with overrides, e.g. `Bench,turbulence=off`.
        #[arg(long, value_name = "SPEC", value_parser = depthpilot_types::scene::Realism::parse_spec)]
        realism: Option<depthpilot_types::scene::Realism>,
    },
}

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// Bad input (a scene, a file, a flag): exit code 2, as clap's usage errors.
    pub fn bad_input(error: anyhow::Error) -> Self {
        Self {
            code: EXIT_BAD_INPUT,
            error,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self { code: 1, error }
    }
}

impl From<depthpilot_api::Error> for Failure {
    fn from(error: depthpilot_api::Error) -> Self {
        Self {
            code: error.exit_code(),
            error: anyhow::Error::new(error),
        }
    }
}

/// Exit code for bad input (a scene or a flag): the same as clap's usage errors.
pub const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fly(args) => fly::fly(&args),
        Command::Batch(args) => batch::batch(&args),
        Command::Matrix(args) => matrix::matrix(&args),
        Command::Plot(args) => plot::plot(&args),
        Command::View(args) => view::view(&args),
        Command::Tune(args) => tune::tune(&args),
        Command::Teach(args) => teach::teach(&args),
        Command::Sitl(args) => sitl::sitl(&args),
        Command::Hil(args) => hil::hil(&args),
        Command::Run(args) => run::run(&args),
        Command::FakeBridge(args) => camera::fake_bridge(&args),
        Command::Record(args) => camera::record(&args),
        Command::Replay(args) => camera::replay(&args),
        Command::Export(args) => export::export(&args),
        Command::Log(args) => log_repair::log(&args),
        Command::Bridge(args) => bridge::bridge(&args),
        Command::Keygen(args) => keygen::keygen(&args),
        Command::Bench {
            scene,
            repeat,
            realism,
        } => bench::bench(&scene, repeat, realism.as_ref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("depthpilot: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
