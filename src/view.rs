//! `depthpilot view`: starts the 3D viewer, `depthpilot-viewer` (its own binary, so that this
//! CLI never links bevy), with the same arguments, and passes its exit code through.

use crate::{EXIT_BAD_INPUT, Failure};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

/// The viewer's binary name.
const VIEWER: &str = "depthpilot-viewer";

/// Arguments of `depthpilot view`: all passed to `depthpilot-viewer` as they are.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ViewArgs {
    /// FLIGHT.mcap [--screenshot OUT.png --at T_S --size WxH] [--speed X] [--scene FILE]
    /// (`depthpilot view --help` shows the viewer's own help).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "VIEWER_ARGS"
    )]
    pub args: Vec<OsString>,
}

/// The viewer, or the error that says how to build it.
pub(crate) fn viewer_or_hint() -> Result<PathBuf, Failure> {
    find_viewer().ok_or_else(|| Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::anyhow!(
            "the 3D viewer `{VIEWER}` was found neither next to this executable nor on PATH; \
             build it with `cargo build --release --workspace --bin {VIEWER}` (it is a separate binary \
             so that depthpilot itself builds without bevy)"
        ),
    })
}

/// Runs the viewer found next to this executable, else on `PATH`.
pub fn view(args: &ViewArgs) -> Result<(), Failure> {
    let viewer = viewer_or_hint()?;
    let status = Command::new(&viewer)
        .args(&args.args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", viewer.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure {
            code: u8::try_from(code).unwrap_or(1),
            error: anyhow::anyhow!("{VIEWER} exited with status {code}"),
        }),
        None => Err(anyhow::anyhow!("{VIEWER} was killed ({status})").into()),
    }
}

/// The viewer's executable: next to this one, else on `PATH`.
pub(crate) fn find_viewer() -> Option<PathBuf> {
    let file = format!("{VIEWER}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&file)));
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(&file)).collect())
        .unwrap_or_default();
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}
