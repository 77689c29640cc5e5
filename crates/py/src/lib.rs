//! The Python extension module `depthpilot._native`: the library façade (`depthpilot-api`:
//! load a scene, fly it, fly a batch, score gains) and the learning environments
//! (`depthpilot-gym`). The Python package (`python/depthpilot`) wraps these in a friendlier
//! API and gymnasium's classes. Long calls release the GIL.

mod envs;

use depthpilot_api::Error as ApiError;
use depthpilot_sim::LogRow;
use depthpilot_types::scene::{CascadeGains, ControllerKind, Realism};
use numpy::{IntoPyArray, PyArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// The façade's error as the Python exception of its kind, with the CLI's message.
pub(crate) fn api_err(e: ApiError) -> PyErr {
    match e {
        ApiError::NotFound { message, .. } => PyFileNotFoundError::new_err(message),
        ApiError::BadInput(m) => PyValueError::new_err(m),
        ApiError::Failed(m) => PyRuntimeError::new_err(m),
    }
}

/// A scene, loaded and checked.
#[pyclass(module = "depthpilot._native", name = "Scene", from_py_object)]
#[derive(Clone)]
pub struct PyScene {
    pub(crate) scene: depthpilot_types::Scene,
}

#[pymethods]
impl PyScene {
    #[getter]
    fn name(&self) -> String {
        self.scene.name.clone()
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.scene.seed
    }

    #[getter]
    fn duration_s(&self) -> f64 {
        self.scene.duration_s
    }

    /// The realism items on (empty: `Ideal`).
    #[getter]
    fn realism(&self) -> Vec<&'static str> {
        self.scene.realism.items_on()
    }

    /// The cascade controller's gains, as a dict.
    #[getter]
    fn gains<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.scene.controller.cascade)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// A copy with another seed.
    fn with_seed(&self, seed: u64) -> Self {
        let mut s = self.clone();
        s.scene.seed = seed;
        s
    }

    /// A copy with another realism layer: `Ideal`, `Bench`, or a preset with overrides, e.g.
    /// `Bench,turbulence=off`.
    fn with_realism(&self, spec: &str) -> PyResult<Self> {
        let mut s = self.clone();
        s.scene.realism = Realism::parse_spec(spec)
            .map_err(|e| PyValueError::new_err(format!("realism `{spec}`: {e}")))?;
        Ok(s)
    }

    /// A copy flown by the cascade controller with some gains replaced (a dict of name →
    /// value; unknown names and negative values are refused, naming them).
    fn with_gains(&self, gains: &Bound<'_, PyDict>) -> PyResult<Self> {
        let mut s = self.clone();
        s.scene.controller.kind = ControllerKind::Cascade;
        s.scene.controller.cascade = merged_gains(&s.scene.controller.cascade, gains)?;
        Ok(s)
    }

    /// The scene as JSON (every field, defaults filled in).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.scene).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Scene(name={:?}, seed={}, duration_s={})",
            self.scene.name, self.scene.seed, self.scene.duration_s
        )
    }
}

/// `base` with the values of `gains` (a dict) in place.
fn merged_gains(base: &CascadeGains, gains: &Bound<'_, PyDict>) -> PyResult<CascadeGains> {
    let mut v = serde_json::to_value(base).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| PyRuntimeError::new_err("gains are not an object"))?;
    for (k, val) in gains.iter() {
        let name: String = k.extract()?;
        if !obj.contains_key(&name) {
            let known: Vec<&String> = obj.keys().collect();
            return Err(PyValueError::new_err(format!(
                "unknown gain `{name}`; the cascade's gains are {known:?}"
            )));
        }
        let x: f64 = val
            .extract()
            .map_err(|_| PyValueError::new_err(format!("gain `{name}`: expected a number")))?;
        if !x.is_finite() {
            return Err(PyValueError::new_err(format!(
                "gain `{name}` = {x}: expected a finite number"
            )));
        }
        obj.insert(name.clone(), serde_json::json!(x));
        // Checked one by one, so that the message names the gain at fault.
        serde_json::from_value::<CascadeGains>(serde_json::Value::Object(obj.clone()))
            .map_err(|e| PyValueError::new_err(format!("gain `{name}` = {x}: {e}")))?;
    }
    serde_json::from_value(v).map_err(|e| PyValueError::new_err(format!("gains: {e}")))
}

/// Loads a scene file (RON). A missing file raises FileNotFoundError, a bad one ValueError,
/// with the message the CLI prints.
#[pyfunction]
fn load_scene(py: Python<'_>, path: std::path::PathBuf) -> PyResult<PyScene> {
    let scene = py
        .detach(|| depthpilot_api::load_scene(&path))
        .map_err(api_err)?;
    Ok(PyScene { scene })
}

/// Collects log rows as columns.
#[derive(Default)]
struct Columns {
    n: usize,
    t_s: Vec<f64>,
    pos_m: Vec<f64>,
    vel_m_s: Vec<f64>,
    rpy_rad: Vec<f64>,
    setpoint_m: Vec<f64>,
    estimate_m: Vec<f64>,
    cmd: Vec<f64>,
    motors_pwm: Vec<u16>,
    measurement_age_s: Vec<f64>,
    detection_pixels: Vec<i64>,
    safety: Vec<&'static str>,
    firmware: Vec<&'static str>,
}

impl depthpilot_sim::LogSink for Columns {
    fn row(&mut self, r: &LogRow) {
        self.n += 1;
        self.t_s.push(r.t_s);
        self.pos_m.extend(r.pos_m);
        self.vel_m_s.extend(r.vel_m_s);
        self.rpy_rad.extend(r.rpy_rad);
        self.setpoint_m.extend(r.setpoint_m);
        self.estimate_m
            .extend(r.estimate_m.unwrap_or([f64::NAN; 3]));
        self.cmd.extend([
            r.cmd_roll_rad,
            r.cmd_pitch_rad,
            r.cmd_yaw_rate_rad_s,
            r.cmd_thrust_frac,
        ]);
        self.motors_pwm.extend(r.motors_pwm);
        self.measurement_age_s
            .push(r.measurement_age_s.unwrap_or(f64::NAN));
        self.detection_pixels
            .push(r.detection_pixels.map_or(-1, |p| p as i64));
        self.safety.push(r.safety);
        self.firmware.push(r.firmware);
    }
}

impl Columns {
    fn into_dict(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        let n = self.n;
        d.set_item("t_s", self.t_s.into_pyarray(py))?;
        for (name, v, w) in [
            ("pos_m", self.pos_m, 3),
            ("vel_m_s", self.vel_m_s, 3),
            ("rpy_rad", self.rpy_rad, 3),
            ("setpoint_m", self.setpoint_m, 3),
            ("estimate_m", self.estimate_m, 3),
            ("cmd_roll_pitch_yawrate_thrust", self.cmd, 4),
        ] {
            d.set_item(name, v.into_pyarray(py).reshape([n, w])?)?;
        }
        d.set_item(
            "motors_pwm",
            self.motors_pwm.into_pyarray(py).reshape([n, 4])?,
        )?;
        d.set_item("measurement_age_s", self.measurement_age_s.into_pyarray(py))?;
        d.set_item("detection_pixels", self.detection_pixels.into_pyarray(py))?;
        d.set_item("safety", self.safety)?;
        d.set_item("firmware", self.firmware)?;
        Ok(d)
    }
}

/// Flies a scene (with `seed` in place of its own): `(summary_json, log)`, the log a dict of
/// numpy arrays (None with `log=False`, which also lets the camera run on a second thread).
#[pyfunction]
#[pyo3(signature = (scene, seed=None, log=true))]
fn fly<'py>(
    py: Python<'py>,
    scene: &PyScene,
    seed: Option<u64>,
    log: bool,
) -> PyResult<(String, Option<Bound<'py, PyDict>>)> {
    let mut s = scene.scene.clone();
    if let Some(seed) = seed {
        s.seed = seed;
    }
    let (summary, cols) = py
        .detach(|| {
            if log {
                let mut cols = Columns::default();
                depthpilot_api::fly(&s, &mut cols).map(|x| (x, Some(cols)))
            } else {
                depthpilot_api::fly(&s, &mut depthpilot_sim::NoLog).map(|x| (x, None))
            }
        })
        .map_err(api_err)?;
    let json =
        serde_json::to_string(&summary).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let log = cols.map(|c| c.into_dict(py)).transpose()?;
    Ok((json, log))
}

/// Flies the scene once per seed (with the scene's per-seed variations), `jobs` at a time:
/// `(report_json, records_json)`.
#[pyfunction]
#[pyo3(signature = (scene, seeds, jobs=None))]
fn batch(
    py: Python<'_>,
    scene: &PyScene,
    seeds: Vec<u64>,
    jobs: Option<usize>,
) -> PyResult<(String, String)> {
    if seeds.is_empty() {
        return Err(PyValueError::new_err("seeds: an empty list"));
    }
    let jobs = jobs.unwrap_or_else(depthpilot_api::default_jobs);
    let s = &scene.scene;
    let (report, records) = py
        .detach(|| {
            let records = depthpilot_api::batch(s, &seeds, jobs, &|_, _| {})?;
            let report = depthpilot_api::report(&s.name, &records)?;
            Ok((report, records))
        })
        .map_err(api_err)?;
    let json =
        |r: serde_json::Result<String>| r.map_err(|e| PyRuntimeError::new_err(e.to_string()));
    Ok((
        json(serde_json::to_string(&report))?,
        json(serde_json::to_string(&records))?,
    ))
}

/// Scores cascade gains (a dict of name → value, the rest from the first scene's) on every
/// scene × seed against the first scene's own gains, with the tuner's objective: JSON with
/// `cost` (lower is better), `baseline_cost`, and the per-scene scores.
#[pyfunction]
#[pyo3(signature = (scenes, gains, seeds, jobs=None))]
fn score_gains(
    py: Python<'_>,
    scenes: Vec<PyScene>,
    gains: &Bound<'_, PyDict>,
    seeds: Vec<u64>,
    jobs: Option<usize>,
) -> PyResult<String> {
    let scenes: Vec<depthpilot_types::Scene> = scenes.into_iter().map(|s| s.scene).collect();
    let base = scenes
        .first()
        .ok_or_else(|| PyValueError::new_err("scenes: an empty list"))?
        .controller
        .cascade
        .clone();
    let g = merged_gains(&base, gains)?;
    let jobs = jobs.unwrap_or_else(depthpilot_api::default_jobs);
    let s = py
        .detach(|| depthpilot_api::tune::score_gains(&scenes, &g, &seeds, jobs))
        .map_err(api_err)?;
    serde_json::to_string(&s).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The gains `depthpilot tune` searches.
#[pyfunction]
fn tunable_gains() -> Vec<&'static str> {
    depthpilot_control::tune::PARAMETERS.to_vec()
}

/// The CRTP packet (header byte included) of cflib's
/// `Commander.send_setpoint(roll, pitch, yawrate, thrust)`; thrust must be 0..=65535 as cflib
/// demands.
#[pyfunction]
fn setpoint_packet<'py>(
    py: Python<'py>,
    roll: f64,
    pitch: f64,
    yawrate: f64,
    thrust: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    if !(0..=0xFFFF).contains(&thrust) {
        return Err(PyValueError::new_err("Thrust must be between 0 and 0xFFFF"));
    }
    let p = depthpilot_gym::env::packet_from_cflib(&[roll, pitch, yawrate, thrust as f64]);
    Ok(PyBytes::new(py, &p.encode()))
}

/// The registered environments: (id, scene file, task, depth by default, summary).
#[pyfunction]
fn registry() -> Vec<(&'static str, &'static str, &'static str, bool, &'static str)> {
    depthpilot_gym::REGISTRY
        .iter()
        .map(|s| (s.id, s.scene_file, s.task.as_str(), s.depth, s.summary))
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyScene>()?;
    m.add_class::<envs::NativeEnv>()?;
    m.add_class::<envs::NativeVecEnv>()?;
    m.add_function(wrap_pyfunction!(load_scene, m)?)?;
    m.add_function(wrap_pyfunction!(fly, m)?)?;
    m.add_function(wrap_pyfunction!(batch, m)?)?;
    m.add_function(wrap_pyfunction!(score_gains, m)?)?;
    m.add_function(wrap_pyfunction!(tunable_gains, m)?)?;
    m.add_function(wrap_pyfunction!(setpoint_packet, m)?)?;
    m.add_function(wrap_pyfunction!(registry, m)?)?;
    Ok(())
}
