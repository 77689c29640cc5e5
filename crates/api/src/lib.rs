//! The library façade of depthpilot: load a scene, fly it, fly a batch of seeds, run a tuning
//! generation, merge shards. The `depthpilot` CLI and the Python bindings call the same
//! functions, so both give the same numbers and the same error messages.
//!
//! In scope: the orchestration of flights in virtual time in this process (parallel flights on
//! `std::thread::scope`, shard files, the tuner's search state). Out of scope: argument parsing,
//! printing and exit codes (the callers'), real-time flights, radios, buses and viewers (this
//! crate links none of zmq, actix, bevy, tokio or the runtime).
//!
//! Nothing here prints: long operations report progress through a callback. Every failure is an
//! [`Error`] whose message is the text the CLI prints, and whose [`Error::exit_code`] is the
//! code the CLI exits with.
//!
//! Modules: [`batch`] (Monte Carlo over seeds, shards, merge), [`matrix`] (the degraded-sensing
//! matrix: generated cells, their flights and scores) and [`tune`] (the cascade-gain search and
//! [`tune::score_gains`], the objective for external tuners).

pub mod batch;
pub mod matrix;
pub mod tune;

pub use batch::{
    batch, merge, parse_seeds, parse_shard, read_records, report, shard_from_env, shard_seeds,
    write_records,
};
pub use depthpilot_sim::batch::{FlightRecord, Report};
pub use depthpilot_sim::{LogSink, NoLog, Summary};
pub use depthpilot_types::Scene;
pub use depthpilot_types::scene::{CascadeGains, ControllerConfig};
pub use tune::{GainsScore, Score, TuneConfig, cost, score_gains};

use depthpilot_types::SceneError;
use depthpilot_types::scene::{LinkTransport, parse_ron};
use std::path::{Path, PathBuf};

/// Why a façade call failed. The Display text is the whole message (it names the file or the
/// flag at fault); the Python bindings raise `FileNotFoundError`, `ValueError` and
/// `RuntimeError` for the three kinds.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scene, controller or records file or directory does not exist.
    #[error("{message}")]
    NotFound {
        /// The path that does not exist.
        path: PathBuf,
        /// The full message, naming the path.
        message: String,
    },
    /// Bad input: a bad scene, a bad flag value, an empty seed range, a bad records line, a
    /// flight the scene makes impossible.
    #[error("{0}")]
    BadInput(String),
    /// Anything else: a file that cannot be written, a worker that panicked.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// The CLI's exit code for this error: 2 (bad input, as clap's usage errors) for
    /// [`Error::NotFound`] and [`Error::BadInput`], 1 for [`Error::Failed`].
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. } | Error::BadInput(_) => 2,
            Error::Failed(_) => 1,
        }
    }

    /// The error for reading `path` failing with `e`: [`Error::NotFound`] when it does not
    /// exist, else [`Error::BadInput`]; `message` is the whole text either way.
    pub(crate) fn reading(path: &Path, e: &std::io::Error, message: String) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                path: path.to_path_buf(),
                message,
            }
        } else {
            Error::BadInput(message)
        }
    }
}

impl From<SceneError> for Error {
    /// A file that does not exist (the scene, or the controller file it names) is
    /// [`Error::NotFound`]; every other scene error is [`Error::BadInput`].
    fn from(e: SceneError) -> Self {
        match &e {
            SceneError::Io { file, source } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::NotFound {
                    path: file.clone(),
                    message: e.to_string(),
                }
            }
            _ => Error::BadInput(e.to_string()),
        }
    }
}

/// Loads a scene for flights in virtual time in this process (fly, batch, tune, bench): a
/// scene whose `link.transport` names a remote simulator is refused.
pub fn load_scene(path: &Path) -> Result<Scene, Error> {
    let scene = Scene::load(path)?;
    if let LinkTransport::Remote(uri) = &scene.link.transport {
        return Err(Error::BadInput(format!(
            "{}: `link.transport` names a remote simulator ({uri}); this command flies in \
             virtual time in this process: remove the transport, or use `depthpilot fly`",
            path.display()
        )));
    }
    Ok(scene)
}

/// Loads a controller file (e.g. written by `depthpilot tune`), to replace a scene's
/// `controller`.
pub fn load_controller(path: &Path) -> Result<ControllerConfig, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::reading(path, &e, format!("{}: cannot read: {e}", path.display())))?;
    Ok(parse_ron::<ControllerConfig>(&text, path)?)
}

/// Flies one scene as it is (its own seed), writing log rows to `log` (use [`NoLog`] for none).
pub fn fly(scene: &Scene, log: &mut dyn LogSink) -> Result<Summary, Error> {
    depthpilot_sim::fly(scene, log).map_err(|e| Error::BadInput(e.to_string()))
}

/// The default number of parallel flights: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `jobs` within 1..=256, and the camera-thread rule: parallel flights that fill the cores
/// leave none for each one's camera thread, so it is turned off (flights fly bit-identically
/// either way; this is a process-wide setting of `depthpilot_sim`).
pub(crate) fn prepare_jobs(jobs: usize) -> usize {
    let jobs = jobs.clamp(1, 256);
    depthpilot_sim::set_camera_thread(depthpilot_sim::camera_thread_pays(jobs));
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn scene_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenes")
            .join(name)
    }

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("depthpilot-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_missing_scene_is_not_found_naming_the_path() {
        let path = Path::new("/nonexistent/depthpilot/nope.ron");
        let e = load_scene(path).expect_err("missing");
        match &e {
            Error::NotFound { path: p, message } => {
                assert_eq!(p, path);
                assert!(
                    message.contains("/nonexistent/depthpilot/nope.ron"),
                    "{message}"
                );
                assert!(message.contains("cannot read scene"), "{message}");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_garbage_scene_is_bad_input_naming_the_file() {
        let dir = temp_dir("garbage");
        let path = dir.join("garbage.ron");
        std::fs::write(&path, "this is not a scene {{{").expect("write");
        let e = load_scene(&path).expect_err("garbage");
        assert!(matches!(e, Error::BadInput(_)), "{e:?}");
        assert!(e.to_string().contains("garbage.ron"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(Error::Failed("x".into()).exit_code(), 1);
    }

    #[test]
    fn a_remote_transport_is_refused() {
        let text = std::fs::read_to_string(scene_path("hover.ron"))
            .expect("hover")
            .replacen(
                "setpoints:",
                "link: (transport: Remote(\"udp://127.0.0.1:19850\")),\n    setpoints:",
                1,
            );
        let dir = temp_dir("remote");
        let path = dir.join("remote.ron");
        std::fs::write(&path, text).expect("write");
        let e = load_scene(&path).expect_err("remote");
        assert!(matches!(e, Error::BadInput(_)), "{e:?}");
        assert!(e.to_string().contains("names a remote simulator"), "{e}");
    }

    #[test]
    fn a_missing_controller_file_is_not_found() {
        let e = load_controller(Path::new("/nonexistent/tuned.ron")).expect_err("missing");
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/tuned.ron: cannot read: ")
        );
    }

    #[test]
    fn fly_gives_the_simulators_summary() {
        let scene = load_scene(&scene_path("hover.ron")).expect("hover");
        let a = fly(&scene, &mut NoLog).expect("fly");
        let b = depthpilot_sim::fly(&scene, &mut NoLog).expect("fly");
        assert_eq!(a.rms_error_m.to_bits(), b.rms_error_m.to_bits());
        assert!(a.rms_error_m.is_finite());
    }
}
