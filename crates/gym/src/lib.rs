//! Learning environments on the simulated Crazyflie, for the Python package's gymnasium
//! environments (`crates/py`). Pure and deterministic, like the simulator under it: an
//! environment is a flight of the inline runner's parts (the plant behind the simulated radio
//! link, the off-board sensing and controller) that advances one radio period per step, with
//! the action going out as the Crazyflie's own CRTP bytes.
//!
//! - [`Env`]: one world. Episode `k` after `reset(seed)` flies seed
//!   [`env::episode_seed`]`(seed, k)`, so a run depends on the reset's seed alone.
//! - [`VecEnv`]: N worlds stepped across threads. World `i` after `reset(seed)` is bit for bit
//!   [`Env`] reset with `seed + i`, whatever the thread count (each world is stepped by one
//!   thread; nothing is shared).

pub mod env;
pub mod spec;
pub mod vector;

pub use env::{End, Env, EnvConfig, ResetOptions, StepOut};
pub use spec::{ActionMode, EnvSpec, Key, ObsSpec, REGISTRY, Task, spec};
pub use vector::{Autoreset, VecEnv, VecStep};

/// Why an environment refused a call.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// An argument, an action, a scene or an option that cannot be used (Python: ValueError).
    #[error("{0}")]
    BadInput(String),
    /// The simulation could not be set up (Python: RuntimeError).
    #[error("{0}")]
    Sim(String),
}

/// One world's observation slices, in [`Key::ALL`] order; a key not observed has an empty slice.
pub struct ObsOut<'a> {
    pub depth: &'a mut [u16],
    pub frame_age: &'a mut [f32],
    pub frame_new: &'a mut [u8],
    pub vision: &'a mut [f32],
    pub estimate: &'a mut [f32],
    pub state: &'a mut [f32],
    pub target: &'a mut [f32],
    pub last_action: &'a mut [f32],
}

/// The observations of N worlds, key by key, world after world (row-major `[N, …]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObsBuffers {
    pub n: usize,
    pub depth: Vec<u16>,
    pub frame_age: Vec<f32>,
    pub frame_new: Vec<u8>,
    pub vision: Vec<f32>,
    pub estimate: Vec<f32>,
    pub state: Vec<f32>,
    pub target: Vec<f32>,
    pub last_action: Vec<f32>,
}

impl ObsBuffers {
    /// Zeroed buffers for `n` worlds with the per-world lengths `lens` ([`EnvConfig::lens`]).
    pub fn new(n: usize, lens: [usize; 8]) -> Self {
        Self {
            n,
            depth: vec![0; n * lens[0]],
            frame_age: vec![0.0; n * lens[1]],
            frame_new: vec![0; n * lens[2]],
            vision: vec![0.0; n * lens[3]],
            estimate: vec![0.0; n * lens[4]],
            state: vec![0.0; n * lens[5]],
            target: vec![0.0; n * lens[6]],
            last_action: vec![0.0; n * lens[7]],
        }
    }

    /// One slice set per world.
    pub fn views(&mut self) -> Vec<ObsOut<'_>> {
        let n = self.n;
        let mut depth = split(&mut self.depth, n).into_iter();
        let mut frame_age = split(&mut self.frame_age, n).into_iter();
        let mut frame_new = split(&mut self.frame_new, n).into_iter();
        let mut vision = split(&mut self.vision, n).into_iter();
        let mut estimate = split(&mut self.estimate, n).into_iter();
        let mut state = split(&mut self.state, n).into_iter();
        let mut target = split(&mut self.target, n).into_iter();
        let mut last_action = split(&mut self.last_action, n).into_iter();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if let (
                Some(depth),
                Some(frame_age),
                Some(frame_new),
                Some(vision),
                Some(estimate),
                Some(state),
                Some(target),
                Some(last_action),
            ) = (
                depth.next(),
                frame_age.next(),
                frame_new.next(),
                vision.next(),
                estimate.next(),
                state.next(),
                target.next(),
                last_action.next(),
            ) {
                out.push(ObsOut {
                    depth,
                    frame_age,
                    frame_new,
                    vision,
                    estimate,
                    state,
                    target,
                    last_action,
                });
            }
        }
        out
    }
}

/// `buf` in `n` equal consecutive slices (empty ones when `buf` is empty).
fn split<T>(buf: &mut [T], n: usize) -> Vec<&mut [T]> {
    let per = buf.len() / n.max(1);
    let mut out = Vec::with_capacity(n);
    let mut rest = buf;
    for _ in 0..n {
        let (a, b) = rest.split_at_mut(per);
        out.push(a);
        rest = b;
    }
    out
}

#[cfg(test)]
mod tests;
