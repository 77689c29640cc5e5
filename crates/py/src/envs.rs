//! The environments' native side: `NativeEnv` (one world) and `NativeVecEnv` (N worlds stepped
//! across threads in Rust). The Python package wraps them in gymnasium's classes.

use depthpilot_gym::{
    ActionMode, Autoreset, Env, EnvConfig, EnvError, Key, ObsBuffers, ObsSpec, ResetOptions, Task,
    VecEnv, spec,
};
use depthpilot_types::scene::Realism;
use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

pub(crate) fn env_err(e: EnvError) -> PyErr {
    match e {
        EnvError::BadInput(m) => PyValueError::new_err(m),
        EnvError::Sim(m) => PyRuntimeError::new_err(m),
    }
}

/// The configuration from the constructor's arguments.
fn config(
    id: Option<&str>,
    scene: Option<&str>,
    task: Option<&str>,
    action: &str,
    obs: Option<Vec<String>>,
    depth_downsample: usize,
    realism: Option<&str>,
) -> PyResult<EnvConfig> {
    let action = ActionMode::parse(action).map_err(env_err)?;
    let (mut sc, default_task, depth) = match (id, scene) {
        (Some(id), None) => {
            let s = spec(id).map_err(env_err)?;
            (s.scene().map_err(env_err)?, s.task, s.depth)
        }
        (None, Some(path)) => {
            let sc =
                depthpilot_api::load_scene(std::path::Path::new(path)).map_err(crate::api_err)?;
            let depth = matches!(sc.sensing, depthpilot_types::scene::Sensing::Kinect(_));
            (sc, Task::Hover, depth)
        }
        _ => {
            return Err(PyValueError::new_err(
                "give either a registered id or a scene file, not both",
            ));
        }
    };
    let task = match task {
        Some(t) => Task::parse(t).map_err(env_err)?,
        None => default_task,
    };
    let keys = obs.unwrap_or_else(|| vec![if depth { "depth" } else { "state" }.to_string()]);
    let obs = ObsSpec::parse(&keys, depth_downsample).map_err(env_err)?;
    if let Some(r) = realism {
        sc.realism = Realism::parse_spec(r)
            .map_err(|e| PyValueError::new_err(format!("realism `{r}`: {e}")))?;
    }
    EnvConfig::new(sc, task, action, obs).map_err(env_err)
}

/// Reset options from a Python dict (unknown keys are errors, naming the key).
fn reset_options(d: Option<&Bound<'_, PyDict>>) -> PyResult<Option<ResetOptions>> {
    let Some(d) = d else { return Ok(None) };
    let mut o = ResetOptions::default();
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        let num = |v: &Bound<'_, PyAny>| -> PyResult<f64> {
            v.extract::<f64>().map_err(|_| {
                PyValueError::new_err(format!("reset option `{key}`: expected a number"))
            })
        };
        let triple = |v: &Bound<'_, PyAny>| -> PyResult<[f64; 3]> {
            v.extract::<[f64; 3]>().map_err(|_| {
                PyValueError::new_err(format!("reset option `{key}`: expected three numbers"))
            })
        };
        match key.as_str() {
            "randomise" | "randomize" => o.randomise = v.is_truthy()?,
            "mass_factor" => o.mass_factor = Some(num(&v)?),
            "latency_extra_s" => o.latency_extra_s = Some(num(&v)?),
            "noise_factor" => o.noise_factor = Some(num(&v)?),
            "battery_start_v" => o.battery_start_v = Some(num(&v)?),
            "initial_position_m" => o.initial_position_m = Some(triple(&v)?),
            "initial_attitude_deg" => o.initial_attitude_deg = Some(triple(&v)?),
            "realism" => {
                let spec: String = v.extract().map_err(|_| {
                    PyValueError::new_err(
                        "reset option `realism`: expected a string, e.g. \"Bench\"",
                    )
                })?;
                o.realism = Some(
                    Realism::parse_spec(&spec)
                        .map_err(|e| PyValueError::new_err(format!("realism `{spec}`: {e}")))?,
                );
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown reset option `{other}`; known: randomise, mass_factor, \
                     latency_extra_s, noise_factor, battery_start_v, realism, \
                     initial_position_m, initial_attitude_deg"
                )));
            }
        }
    }
    o.validate().map_err(env_err)?;
    Ok(Some(o))
}

/// The observation dict of `b` (N worlds; `single`: without the leading axis). The arrays own
/// the buffers (no copy).
fn obs_dict<'py>(
    py: Python<'py>,
    cfg: &EnvConfig,
    mut b: ObsBuffers,
    single: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let n = b.n;
    let (rows, cols) = cfg.depth_shape();
    let lead = |mut dims: Vec<usize>| {
        if !single {
            dims.insert(0, n);
        }
        dims
    };
    for key in &cfg.obs.keys {
        let name = key.as_str();
        match key {
            Key::Depth => {
                let a = std::mem::take(&mut b.depth)
                    .into_pyarray(py)
                    .reshape(lead(vec![rows, cols]))?;
                d.set_item(name, a)?;
            }
            Key::FrameNew => {
                let v: Vec<i8> = b.frame_new.iter().map(|x| *x as i8).collect();
                d.set_item(name, v.into_pyarray(py).reshape(lead(vec![1]))?)?;
            }
            k => {
                let v = match k {
                    Key::FrameAge => &mut b.frame_age,
                    Key::Vision => &mut b.vision,
                    Key::Estimate => &mut b.estimate,
                    Key::State => &mut b.state,
                    Key::Target => &mut b.target,
                    _ => &mut b.last_action,
                };
                let a = std::mem::take(v)
                    .into_pyarray(py)
                    .reshape(lead(vec![k.len()]))?;
                d.set_item(name, a)?;
            }
        }
    }
    Ok(d)
}

/// Facts Python needs to build the spaces.
fn describe<'py>(py: Python<'py>, cfg: &EnvConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let (lo, hi) = cfg.action.bounds();
    d.set_item("action", cfg.action.as_str())?;
    d.set_item("action_low", lo.to_vec())?;
    d.set_item("action_high", hi.to_vec())?;
    d.set_item("action_names", cfg.action.names().to_vec())?;
    d.set_item(
        "keys",
        cfg.obs.keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "lens",
        Key::ALL
            .iter()
            .zip(cfg.lens())
            .map(|(k, l)| (k.as_str(), l))
            .collect::<Vec<_>>(),
    )?;
    d.set_item("depth_shape", cfg.depth_shape())?;
    d.set_item("step_s", cfg.step_s())?;
    d.set_item("task", cfg.task.as_str())?;
    d.set_item("scene", cfg.scene.name.clone())?;
    d.set_item("duration_s", cfg.scene.duration_s)?;
    d.set_item(
        "max_steps",
        (cfg.scene.duration_s / cfg.step_s()).ceil() as u64,
    )?;
    d.set_item("reward_scale_m", depthpilot_gym::env::REWARD_SCALE_M)?;
    d.set_item("fail_reward", depthpilot_gym::env::FAIL_REWARD)?;
    Ok(d)
}

/// One world.
#[pyclass(module = "depthpilot._native", unsendable)]
pub struct NativeEnv {
    env: Env,
}

#[pymethods]
impl NativeEnv {
    #[new]
    #[pyo3(signature = (id=None, scene=None, task=None, action="rpyt", obs=None, depth_downsample=1, realism=None))]
    fn new(
        id: Option<&str>,
        scene: Option<&str>,
        task: Option<&str>,
        action: &str,
        obs: Option<Vec<String>>,
        depth_downsample: usize,
        realism: Option<&str>,
    ) -> PyResult<Self> {
        let cfg = config(id, scene, task, action, obs, depth_downsample, realism)?;
        Ok(Self {
            env: Env::new(cfg).map_err(env_err)?,
        })
    }

    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        describe(py, self.env.config())
    }

    #[pyo3(signature = (seed=None, options=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let o = reset_options(options)?;
        let env = &mut self.env;
        py.detach(|| env.reset(seed, o)).map_err(env_err)?;
        self.obs(py)
    }

    /// `(obs, reward, terminated, truncated, info)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<(Bound<'py, PyDict>, f64, bool, bool, Bound<'py, PyDict>)> {
        let a: Vec<f64> = action.as_array().iter().copied().collect();
        let env = &mut self.env;
        let s = py.detach(|| env.step(&a)).map_err(env_err)?;
        let info = PyDict::new(py);
        info.set_item("t_s", s.t_s)?;
        info.set_item("error_m", s.error_m)?;
        if !s.end.as_str().is_empty() {
            info.set_item("end", s.end.as_str())?;
        }
        Ok((self.obs(py)?, s.reward, s.terminated, s.truncated, info))
    }

    /// The CRTP bytes (header included) the last step put on the radio link.
    fn last_packet<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.env.last_packet())
    }

    fn flight_seed(&self) -> u64 {
        self.env.flight_seed()
    }

    /// The current episode's scene, as flown, as JSON.
    fn scene_json(&self) -> PyResult<String> {
        serde_json::to_string(self.env.scene())
            .map_err(|e| PyRuntimeError::new_err(format!("serialising the scene: {e}")))
    }
}

impl NativeEnv {
    fn obs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let cfg = self.env.config();
        let mut b = ObsBuffers::new(1, cfg.lens());
        if let Some(v) = b.views().pop() {
            self.env.write_obs(v);
        }
        obs_dict(py, cfg, b, true)
    }
}

/// N worlds stepped across threads in Rust.
#[pyclass(module = "depthpilot._native", unsendable)]
pub struct NativeVecEnv {
    envs: VecEnv,
    cfg: EnvConfig,
}

#[pymethods]
impl NativeVecEnv {
    #[new]
    #[pyo3(signature = (num_envs, id=None, scene=None, task=None, action="rpyt", obs=None, depth_downsample=1, realism=None, threads=None, autoreset="next_step"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        num_envs: usize,
        id: Option<&str>,
        scene: Option<&str>,
        task: Option<&str>,
        action: &str,
        obs: Option<Vec<String>>,
        depth_downsample: usize,
        realism: Option<&str>,
        threads: Option<usize>,
        autoreset: &str,
    ) -> PyResult<Self> {
        let cfg = config(id, scene, task, action, obs, depth_downsample, realism)?;
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(num_envs.max(1))
        });
        let auto = Autoreset::parse(autoreset).map_err(env_err)?;
        let envs = VecEnv::new(&cfg, num_envs, threads, auto).map_err(env_err)?;
        Ok(Self { envs, cfg })
    }

    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = describe(py, &self.cfg)?;
        d.set_item("num_envs", self.envs.len())?;
        d.set_item("threads", self.envs.threads())?;
        d.set_item(
            "autoreset",
            match self.envs.autoreset() {
                Autoreset::NextStep => "next_step",
                Autoreset::SameStep => "same_step",
            },
        )?;
        Ok(d)
    }

    /// `seed`: an int (world i gets seed + i), a list of per-world seeds (None: that world's
    /// next episode), or None (every world's next episode).
    #[pyo3(signature = (seed=None, options=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let n = self.envs.len();
        let seeds: Vec<Option<u64>> = match seed {
            None => vec![None; n],
            Some(s) if s.is_none() => vec![None; n],
            Some(s) => match s.extract::<u64>() {
                Ok(base) => (0..n).map(|i| Some(base.wrapping_add(i as u64))).collect(),
                Err(_) => s.extract::<Vec<Option<u64>>>().map_err(|_| {
                    PyValueError::new_err(
                        "seed: expected a non-negative int, a list of them (one per world) or None",
                    )
                })?,
            },
        };
        let o = reset_options(options)?;
        let envs = &mut self.envs;
        let b = py.detach(|| envs.reset_each(&seeds, o)).map_err(env_err)?;
        obs_dict(py, &self.cfg, b, false)
    }

    /// `(obs, rewards, terminated, truncated, info)`; info has `end` (why each world's episode
    /// ended, "" while it runs), `error_m`, `reset` (which worlds were reset) and, with same-step
    /// autoreset, `final_obs` (a dict of arrays; rows of the worlds that ended).
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<(
        Bound<'py, PyDict>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyDict>,
    )> {
        let shape = actions.as_array().shape().to_vec();
        let n = self.envs.len();
        if shape != [n, 4] {
            return Err(PyValueError::new_err(format!(
                "actions must have shape ({n}, 4), not {shape:?}"
            )));
        }
        let a: Vec<f64> = actions.as_array().iter().copied().collect();
        let envs = &mut self.envs;
        let s = py.detach(|| envs.step(&a)).map_err(env_err)?;
        let info = PyDict::new(py);
        info.set_item("end", s.end.clone())?;
        info.set_item("error_m", s.error_m.into_pyarray(py))?;
        info.set_item("reset", s.reset.clone().into_pyarray(py))?;
        if let Some(f) = s.final_obs {
            info.set_item("final_obs", obs_dict(py, &self.cfg, f, false)?)?;
        }
        Ok((
            obs_dict(py, &self.cfg, s.obs, false)?,
            s.reward.into_pyarray(py).into_any(),
            s.terminated.into_pyarray(py).into_any(),
            s.truncated.into_pyarray(py).into_any(),
            info,
        ))
    }

    fn flight_seeds(&self) -> Vec<u64> {
        self.envs.envs().iter().map(|e| e.flight_seed()).collect()
    }
}
