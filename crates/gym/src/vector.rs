//! N worlds stepped together across threads.

use crate::env::{Env, EnvConfig, ResetOptions};
use crate::{EnvError, ObsBuffers, ObsOut};

/// What happens to a world whose episode ended (gymnasium's `AutoresetMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autoreset {
    /// The step after the end resets the world (its action is ignored) and returns the first
    /// observation of the new episode with reward 0 (gymnasium's default, `NEXT_STEP`).
    NextStep,
    /// The step that ends an episode resets the world at once: it returns the new episode's first
    /// observation, and the ending observation in `final_obs` (`SAME_STEP`; stable-baselines3's
    /// convention).
    SameStep,
}

impl Autoreset {
    pub fn parse(s: &str) -> Result<Self, EnvError> {
        match s {
            "next_step" | "NextStep" | "NEXT_STEP" => Ok(Self::NextStep),
            "same_step" | "SameStep" | "SAME_STEP" => Ok(Self::SameStep),
            other => Err(EnvError::BadInput(format!(
                "autoreset mode `{other}`: expected next_step or same_step"
            ))),
        }
    }
}

/// The results of one vector step, world by world.
#[derive(Clone, Debug, PartialEq)]
pub struct VecStep {
    pub obs: ObsBuffers,
    pub reward: Vec<f64>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    /// Distance from the setpoint after the step.
    pub error_m: Vec<f64>,
    /// Why each world's episode ended at this step ("" while it runs).
    pub end: Vec<&'static str>,
    /// Same-step autoreset: the observation at the end of the episode for the worlds that ended
    /// (`ended`); other rows are zero.
    pub final_obs: Option<ObsBuffers>,
    /// Worlds whose episode ended at this step (same step), or which were reset at this step
    /// (next step).
    pub reset: Vec<bool>,
}

/// N environments of one configuration.
pub struct VecEnv {
    envs: Vec<Env>,
    threads: usize,
    autoreset: Autoreset,
    needs_reset: Vec<bool>,
    lens: [usize; 8],
}

/// Most worlds one vector holds.
pub const MAX_WORLDS: usize = 4096;

impl VecEnv {
    /// `n` worlds stepped by `threads` threads.
    pub fn new(
        cfg: &EnvConfig,
        n: usize,
        threads: usize,
        autoreset: Autoreset,
    ) -> Result<Self, EnvError> {
        if !(1..=MAX_WORLDS).contains(&n) {
            return Err(EnvError::BadInput(format!(
                "num_envs {n}: expected 1 to {MAX_WORLDS}"
            )));
        }
        if !(1..=256).contains(&threads) {
            return Err(EnvError::BadInput(format!(
                "threads {threads}: expected 1 to 256"
            )));
        }
        let envs = (0..n)
            .map(|_| Env::new(cfg.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            envs,
            threads,
            autoreset,
            needs_reset: vec![false; n],
            lens: cfg.lens(),
        })
    }

    pub fn len(&self) -> usize {
        self.envs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn autoreset(&self) -> Autoreset {
        self.autoreset
    }

    pub fn envs(&self) -> &[Env] {
        &self.envs
    }

    /// Resets every world: world `i` with `seed + i` (without a seed: each its next episode).
    pub fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<ResetOptions>,
    ) -> Result<ObsBuffers, EnvError> {
        let seeds: Vec<Option<u64>> = (0..self.envs.len())
            .map(|i| seed.map(|s| s.wrapping_add(i as u64)))
            .collect();
        self.reset_each(&seeds, options)
    }

    /// Resets every world, world `i` with `seeds[i]` (None: its next episode).
    pub fn reset_each(
        &mut self,
        seeds: &[Option<u64>],
        options: Option<ResetOptions>,
    ) -> Result<ObsBuffers, EnvError> {
        if let Some(o) = &options {
            o.validate()?;
        }
        let n = self.envs.len();
        if seeds.len() != n {
            return Err(EnvError::BadInput(format!(
                "{} seeds for {n} worlds",
                seeds.len()
            )));
        }
        let mut obs = ObsBuffers::new(n, self.lens);
        let mut errors: Vec<Option<EnvError>> = (0..n).map(|_| None).collect();
        let work: Vec<Work<'_>> = self
            .envs
            .iter_mut()
            .zip(obs.views())
            .zip(errors.iter_mut())
            .enumerate()
            .map(|(i, ((env, out), err))| Work {
                i,
                env,
                out,
                fin: None,
                slot: Slot::Reset(err),
            })
            .collect();
        run(work, self.threads, &|w: Work<'_>| {
            let Work {
                i, env, out, slot, ..
            } = w;
            let r = env.reset(seeds[i], options.clone());
            match (r, slot) {
                (Ok(()), _) => env.write_obs(out),
                (Err(e), Slot::Reset(err)) => *err = Some(e),
                (Err(_), Slot::Step(_)) => {}
            }
        });
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(e);
        }
        self.needs_reset.iter_mut().for_each(|r| *r = false);
        Ok(obs)
    }

    /// One step of every world, `actions` row-major `[N, 4]`. Every action is checked before any
    /// world moves: one bad action leaves them all unchanged.
    pub fn step(&mut self, actions: &[f64]) -> Result<VecStep, EnvError> {
        let n = self.envs.len();
        if actions.len() != 4 * n {
            return Err(EnvError::BadInput(format!(
                "actions for {n} worlds have shape ({n}, 4): {} values given",
                actions.len()
            )));
        }
        for (i, a) in actions.chunks_exact(4).enumerate() {
            Env::check_action(a).map_err(|e| EnvError::BadInput(format!("world {i}: {e}")))?;
        }
        let mut obs = ObsBuffers::new(n, self.lens);
        let same = self.autoreset == Autoreset::SameStep;
        let mut fin = same.then(|| ObsBuffers::new(n, self.lens));
        let mut results: Vec<Outcome> = (0..n).map(|_| Outcome::default()).collect();
        let fin_views: Vec<Option<ObsOut<'_>>> = match &mut fin {
            Some(f) => f.views().into_iter().map(Some).collect(),
            None => (0..n).map(|_| None).collect(),
        };
        let work: Vec<Work<'_>> = self
            .envs
            .iter_mut()
            .zip(obs.views())
            .zip(fin_views)
            .zip(results.iter_mut())
            .enumerate()
            .map(|(i, (((env, out), fin), res))| Work {
                i,
                env,
                out,
                fin,
                slot: Slot::Step(res),
            })
            .collect();
        let needs_reset = &self.needs_reset;
        run(work, self.threads, &|w: Work<'_>| {
            let Work {
                i,
                env,
                out,
                fin,
                slot,
            } = w;
            let Slot::Step(res) = slot else { return };
            let a = &actions[4 * i..4 * i + 4];
            if needs_reset[i] {
                // Next-step autoreset: this step only resets.
                res.error = env.reset(None, None).err();
                res.reset = true;
                env.write_obs(out);
                return;
            }
            match env.step(a) {
                Ok(s) => {
                    res.reward = s.reward;
                    res.terminated = s.terminated;
                    res.truncated = s.truncated;
                    res.error_m = s.error_m;
                    res.end = s.end.as_str();
                    if (s.terminated || s.truncated)
                        && let Some(f) = fin
                    {
                        env.write_obs(f);
                        res.error = env.reset(None, None).err();
                        res.reset = true;
                    }
                }
                Err(e) => res.error = Some(e),
            }
            env.write_obs(out);
        });
        let mut out = VecStep {
            obs,
            reward: Vec::with_capacity(n),
            terminated: Vec::with_capacity(n),
            truncated: Vec::with_capacity(n),
            error_m: Vec::with_capacity(n),
            end: Vec::with_capacity(n),
            final_obs: fin,
            reset: Vec::with_capacity(n),
        };
        let mut first_error = None;
        for (i, r) in results.into_iter().enumerate() {
            if let Some(e) = r.error {
                first_error.get_or_insert(EnvError::Sim(format!("world {i}: {e}")));
            }
            let ended = r.terminated || r.truncated;
            self.needs_reset[i] = !same && ended;
            out.reward.push(r.reward);
            out.terminated.push(r.terminated);
            out.truncated.push(r.truncated);
            out.error_m.push(r.error_m);
            out.end.push(r.end);
            out.reset.push(r.reset);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// One world's result of a vector step.
#[derive(Debug, Default)]
struct Outcome {
    reward: f64,
    terminated: bool,
    truncated: bool,
    error_m: f64,
    end: &'static str,
    reset: bool,
    error: Option<EnvError>,
}

enum Slot<'a> {
    Reset(&'a mut Option<EnvError>),
    Step(&'a mut Outcome),
}

/// One world's part of a vector call.
struct Work<'a> {
    i: usize,
    env: &'a mut Env,
    out: ObsOut<'a>,
    fin: Option<ObsOut<'a>>,
    slot: Slot<'a>,
}

/// Runs `f` on every item, in consecutive chunks on up to `threads` threads (inline for one).
/// Each item touches only its own world and slices, so the result does not depend on how the
/// items are split.
fn run<'a>(mut work: Vec<Work<'a>>, threads: usize, f: &(dyn Fn(Work<'a>) + Sync)) {
    let threads = threads.min(work.len()).max(1);
    if threads == 1 {
        work.into_iter().for_each(f);
        return;
    }
    let per = work.len().div_ceil(threads);
    std::thread::scope(|s| {
        while !work.is_empty() {
            let rest = work.split_off(per.min(work.len()));
            let chunk = std::mem::replace(&mut work, rest);
            s.spawn(move || chunk.into_iter().for_each(f));
        }
    });
}
