//! The cascade-gain search: candidates from the cross-entropy method
//! ([`depthpilot_control::tune::Cem`]) flown over scenes × training seeds in parallel, scored,
//! and compared with the starting gains on held-out seeds. Resumable from a small state file,
//! and sliceable into shards for a scheduler.
//!
//! The objective ([`cost`]), which the search minimises: for each scene, the p95 over seeds of
//! the flights' rms position error relative to the starting gains' p95 on the same flights,
//! averaged over scenes, plus 5 × the crash rate and 0.02 × the mean step overshoot beyond
//! 10 % (in percent) of each scene. The starting gains cost 1 plus their own penalties; lower
//! is better. The starting gains are the first scene's cascade gains, flown on every scene.

use crate::Error;
use crate::prepare_jobs;
use depthpilot_control::tune::{Cem, PARAMETERS, gains_at};
use depthpilot_sim::batch::{Draw, Randomisation, domain_seed, randomised_scene, varied_scene};
use depthpilot_types::Scene;
use depthpilot_types::scene::{CascadeGains, ControllerConfig, ControllerKind, Realism};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The initial spread of the search, in log-gain units.
const SIGMA0: f64 = 0.35;

/// What flying one set of gains over seeds gave, one entry per scene (in the scenes' order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Score {
    /// p95 over seeds of the rms position error, m.
    pub p95_rms_m: Vec<f64>,
    /// Mean over seeds of the rms position error, m.
    pub mean_rms_m: Vec<f64>,
    /// Largest rms position error of a seed, m.
    pub max_rms_m: Vec<f64>,
    /// Flights that crashed.
    pub crashes: Vec<usize>,
    /// Crashed flights / seeds.
    pub crash_rate: Vec<f64>,
    /// Mean over seeds of the summed step overshoot beyond 10 %, in percent.
    pub overshoot_excess_pct: Vec<f64>,
}

/// The objective the search minimises (see the module doc): `score` relative to `baseline`
/// (the starting gains' score on the same flights). `cost(b, b)` is 1 plus b's penalties.
pub fn cost(score: &Score, baseline: &Score) -> f64 {
    let n = score.p95_rms_m.len() as f64;
    let mut c = 0.0;
    for i in 0..score.p95_rms_m.len() {
        let base = baseline.p95_rms_m.get(i).copied().unwrap_or(0.0);
        c += score.p95_rms_m[i] / base.max(1e-6) / n;
        c += 5.0 * score.crash_rate[i];
        c += 0.02 * score.overshoot_excess_pct[i];
    }
    c
}

/// The realism items each flight flew with (as its summary reported them), by (scene index,
/// seed).
pub type FlownRealism = BTreeMap<(usize, u64), Vec<String>>;

/// One flight of an evaluation (also one line of a shard's file).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TuneFlight {
    /// The candidate's index in the generation (the starting gains are last in a sharded one).
    pub candidate: usize,
    /// The scene's index.
    pub scene: usize,
    pub seed: u64,
    pub rms_error_m: f64,
    pub crashed: bool,
    /// Summed step overshoot beyond 10 %, in percent.
    pub overshoot_excess_pct: f64,
}

impl TuneFlight {
    fn key(&self) -> (usize, usize, u64) {
        (self.candidate, self.scene, self.seed)
    }
}

/// One unit of work: (candidate, scene, seed).
type Item = (usize, usize, u64);

/// What a search runs on. `scenes` are as loaded; [`TuneConfig::training_scenes`] applies
/// `realism`, [`TuneConfig::holdout_scenes`] then `holdout_realism`.
#[derive(Clone, Debug)]
pub struct TuneConfig {
    /// Scenes to tune on; the first scene's cascade gains are the starting point.
    pub scenes: Vec<Scene>,
    /// Training seeds.
    pub train_seeds: Vec<u64>,
    /// Held-out seeds for the final comparison (disjoint from training).
    pub holdout_seeds: Vec<u64>,
    /// Candidates per generation (at least 4).
    pub population: usize,
    /// Generations of the search.
    pub generations: u32,
    /// Seed of the search (same seed, same result).
    pub seed: u64,
    /// Parallel flights (clamped to 1..=256).
    pub jobs: usize,
    /// The realism of every flight, replacing the scenes' (None: the scenes' own).
    pub realism: Option<Realism>,
    /// The realism of the held-out flights (None: as training).
    pub holdout_realism: Option<Realism>,
    /// Domain randomisation of the training flights (mass, camera latency and noise, battery;
    /// [`Randomisation::BENCH`]) drawn from the search's seed and each flight's seed.
    pub randomise: bool,
}

impl TuneConfig {
    /// Checks what the search needs: scenes, seeds, disjoint training and held-out seeds, a
    /// population of at least 4.
    pub fn check(&self) -> Result<(), Error> {
        if self.scenes.is_empty() {
            return Err(Error::BadInput("no scenes to tune on".to_string()));
        }
        if self.train_seeds.is_empty() || self.holdout_seeds.is_empty() {
            return Err(Error::BadInput(
                "the training and held-out seeds must not be empty".to_string(),
            ));
        }
        if self
            .train_seeds
            .iter()
            .any(|s| self.holdout_seeds.contains(s))
        {
            return Err(Error::BadInput(
                "training and held-out seeds overlap".to_string(),
            ));
        }
        if self.population < 4 {
            return Err(Error::BadInput(
                "--population must be at least 4".to_string(),
            ));
        }
        Ok(())
    }

    /// The scenes with `realism` applied.
    pub fn training_scenes(&self) -> Vec<Scene> {
        with_realism(&self.scenes, self.realism.as_ref())
    }

    /// The training scenes with `holdout_realism` applied.
    pub fn holdout_scenes(&self) -> Vec<Scene> {
        with_realism(&self.training_scenes(), self.holdout_realism.as_ref())
    }

    /// The starting gains: the first scene's cascade gains.
    pub fn base_gains(&self) -> CascadeGains {
        self.scenes
            .first()
            .map(|s| s.controller.cascade.clone())
            .unwrap_or_default()
    }

    /// The search's seed when the training flights are randomised.
    fn randomise_seed(&self) -> Option<u64> {
        self.randomise.then_some(self.seed)
    }
}

/// A new search state for `cfg`.
pub fn new_search(cfg: &TuneConfig) -> Cem {
    Cem::new(PARAMETERS.len(), SIGMA0, cfg.seed)
}

/// The search state saved at `path`, or None if there is no such file.
pub fn load_state(path: &Path) -> Result<Option<Cem>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Failed(format!("reading {}: {e}", path.display())))?;
    let cem = serde_json::from_str(&text)
        .map_err(|e| Error::BadInput(format!("{}: not a tune state: {e}", path.display())))?;
    Ok(Some(cem))
}

/// Saves the search state to `path`.
pub fn save_state(path: &Path, cem: &Cem) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(cem)
        .map_err(|e| Error::Failed(format!("serialising the state: {e}")))?;
    std::fs::write(path, text)
        .map_err(|e| Error::Failed(format!("writing {}: {e}", path.display())))
}

/// A tune seed range `A..B` (B excluded) as its seeds.
pub fn parse_seed_range(s: &str) -> Result<Vec<u64>, Error> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| Error::BadInput(format!("`{s}`: expected A..B")))?;
    let (a, b): (u64, u64) = (
        a.parse()
            .map_err(|_| Error::BadInput(format!("`{a}` is not a seed")))?,
        b.parse()
            .map_err(|_| Error::BadInput(format!("`{b}` is not a seed")))?,
    );
    if b <= a {
        return Err(Error::BadInput(format!("`{s}`: empty range")));
    }
    Ok((a..b).collect())
}

/// The scenes with a realism override applied.
fn with_realism(scenes: &[Scene], realism: Option<&Realism>) -> Vec<Scene> {
    scenes
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(r) = realism {
                s.realism = r.clone();
            }
            s
        })
        .collect()
}

/// The scene a flight flies: the seed's variations, and with `randomise` (the search's seed)
/// the flight's randomised domain.
fn flight_scene(scene: &Scene, seed: u64, randomise: Option<u64>) -> Scene {
    let varied = varied_scene(scene, seed);
    match randomise {
        Some(search) => {
            randomised_scene(&varied, domain_seed(search, seed), &Randomisation::BENCH).0
        }
        None => varied,
    }
}

/// The scene flown with the cascade controller and these gains.
fn with_gains(scene: &Scene, g: &CascadeGains) -> Scene {
    let mut s = scene.clone();
    s.controller.kind = ControllerKind::Cascade;
    s.controller.cascade = g.clone();
    s
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(0.0)
}

/// Every (candidate, scene, seed) of an evaluation, in a fixed order (shards slice it).
fn work_items(n_gains: usize, n_scenes: usize, seeds: &[u64]) -> Vec<Item> {
    (0..n_gains)
        .flat_map(|c| (0..n_scenes).flat_map(move |s| seeds.iter().map(move |&k| (c, s, k))))
        .collect()
}

/// Flies the items in parallel (randomised from the search's seed if `randomise` is given);
/// the flights sorted by (candidate, scene, seed) and the first candidate's realism.
fn fly_items(
    scenes: &[Scene],
    gains: &[CascadeGains],
    work: &[Item],
    jobs: usize,
    randomise: Option<u64>,
) -> Result<(Vec<TuneFlight>, FlownRealism), Error> {
    let jobs = prepare_jobs(jobs);
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<TuneFlight>> = Mutex::new(Vec::new());
    let realism: Mutex<FlownRealism> = Mutex::new(BTreeMap::new());
    let err: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(c, s, k)) = work.get(i) else { break };
                    let (Some(scene), Some(g)) = (scenes.get(s), gains.get(c)) else {
                        break;
                    };
                    let scene = with_gains(scene, g);
                    match depthpilot_sim::fly(
                        &flight_scene(&scene, k, randomise),
                        &mut depthpilot_sim::NoLog,
                    ) {
                        Ok(sum) => {
                            if c == 0
                                && let Ok(mut r) = realism.lock()
                            {
                                r.insert(
                                    (s, k),
                                    sum.realism.iter().map(|x| x.to_string()).collect(),
                                );
                            }
                            let over = sum
                                .steps
                                .iter()
                                .map(|st| (st.overshoot_pct - 10.0).max(0.0))
                                .sum();
                            if let Ok(mut o) = out.lock() {
                                o.push(TuneFlight {
                                    candidate: c,
                                    scene: s,
                                    seed: k,
                                    rms_error_m: sum.rms_error_m,
                                    crashed: sum.crashed,
                                    overshoot_excess_pct: over,
                                });
                            }
                        }
                        Err(e) => {
                            if let Ok(mut x) = err.lock() {
                                x.get_or_insert(e.to_string());
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = err.into_inner().ok().flatten() {
        return Err(Error::BadInput(e));
    }
    let panicked = || Error::Failed("a worker panicked".to_string());
    let mut results = out.into_inner().map_err(|_| panicked())?;
    results.sort_by_key(TuneFlight::key);
    let realism = realism.into_inner().map_err(|_| panicked())?;
    Ok((results, realism))
}

/// A score per candidate from its flights.
fn scores_from(
    results: &[TuneFlight],
    n_gains: usize,
    n_scenes: usize,
    n_seeds: usize,
) -> Vec<Score> {
    (0..n_gains)
        .map(|c| {
            let per_scene = |s: usize| {
                results
                    .iter()
                    .filter(move |r| r.candidate == c && r.scene == s)
            };
            let rms = |s: usize| per_scene(s).map(|r| r.rms_error_m);
            let crashes = |s: usize| per_scene(s).filter(|r| r.crashed).count();
            Score {
                p95_rms_m: (0..n_scenes).map(|s| p95(rms(s).collect())).collect(),
                mean_rms_m: (0..n_scenes)
                    .map(|s| rms(s).sum::<f64>() / n_seeds.max(1) as f64)
                    .collect(),
                max_rms_m: (0..n_scenes).map(|s| rms(s).fold(0.0, f64::max)).collect(),
                crashes: (0..n_scenes).map(crashes).collect(),
                crash_rate: (0..n_scenes)
                    .map(|s| crashes(s) as f64 / n_seeds as f64)
                    .collect(),
                overshoot_excess_pct: (0..n_scenes)
                    .map(|s| {
                        per_scene(s).map(|r| r.overshoot_excess_pct).sum::<f64>() / n_seeds as f64
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Flies every (gains, scene, seed) in parallel (randomised from the search's seed if
/// `randomise` is given); a score per gains and the realism the first gains' flights flew
/// with.
pub fn evaluate(
    scenes: &[Scene],
    gains: &[CascadeGains],
    seeds: &[u64],
    jobs: usize,
    randomise: Option<u64>,
) -> Result<(Vec<Score>, FlownRealism), Error> {
    let work = work_items(gains.len(), scenes.len(), seeds);
    let (results, realism) = fly_items(scenes, gains, &work, jobs, randomise)?;
    Ok((
        scores_from(&results, gains.len(), scenes.len(), seeds.len()),
        realism,
    ))
}

/// The starting gains' score on the training flights (the cost's reference), and the realism
/// each training flight flew with.
pub fn baseline(cfg: &TuneConfig) -> Result<(Score, FlownRealism), Error> {
    let (mut scores, flown) = evaluate(
        &cfg.training_scenes(),
        &[cfg.base_gains()],
        &cfg.train_seeds,
        cfg.jobs,
        cfg.randomise_seed(),
    )?;
    let score = scores
        .pop()
        .ok_or_else(|| Error::Failed("no baseline".to_string()))?;
    Ok((score, flown))
}

/// A randomised training flight's domain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingDomain {
    pub scene: String,
    pub seed: u64,
    /// What was drawn (mass, latency, noise, battery).
    pub draw: Draw,
    /// The realism items the flight's summary says it flew with (from `flown`), if it flew.
    pub realism: Option<Vec<String>>,
}

/// Each training flight's randomised domain (with `randomise`; none without), by scene then
/// seed, with the realism `flown` (from [`baseline`]) says it flew with.
pub fn training_domains(cfg: &TuneConfig, flown: &FlownRealism) -> Vec<TrainingDomain> {
    let Some(search) = cfg.randomise_seed() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, scene) in cfg.training_scenes().iter().enumerate() {
        for &k in &cfg.train_seeds {
            let (_, draw) = randomised_scene(
                &varied_scene(scene, k),
                domain_seed(search, k),
                &Randomisation::BENCH,
            );
            out.push(TrainingDomain {
                scene: scene.name.clone(),
                seed: k,
                draw,
                realism: flown.get(&(i, k)).cloned(),
            });
        }
    }
    out
}

/// One generation of the search, done.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The generations done so far (this one included).
    pub generation: u32,
    /// The best cost found so far.
    pub best_cost: f64,
    /// The best cost of this generation's candidates.
    pub generation_best_cost: f64,
    /// The starting gains' cost (`cost(baseline, baseline)`).
    pub baseline_cost: f64,
}

/// Costs of the candidates' scores, the search's update, and what it gave.
fn advance(cem: &mut Cem, cands: &[Vec<f64>], scores: &[Score], baseline: &Score) -> Generation {
    let costs: Vec<f64> = scores.iter().map(|s| cost(s, baseline)).collect();
    cem.update(cands, &costs);
    Generation {
        generation: cem.generation,
        best_cost: cem.best_cost,
        generation_best_cost: costs.iter().cloned().fold(f64::INFINITY, f64::min),
        baseline_cost: cost(baseline, baseline),
    }
}

/// Runs one generation in this process: samples `cfg.population` candidates, flies them over
/// the training scenes × seeds, and updates the search. `baseline` is from [`baseline`].
pub fn run_generation(
    cfg: &TuneConfig,
    cem: &mut Cem,
    baseline: &Score,
) -> Result<Generation, Error> {
    let base = cfg.base_gains();
    let cands = cem.sample(cfg.population);
    let gains: Vec<CascadeGains> = cands.iter().map(|x| gains_at(&base, x)).collect();
    let (scores, _) = evaluate(
        &cfg.training_scenes(),
        &gains,
        &cfg.train_seeds,
        cfg.jobs,
        cfg.randomise_seed(),
    )?;
    Ok(advance(cem, &cands, &scores, baseline))
}

/// The current generation's candidates and, last, the starting gains (the cost's reference):
/// what a sharded generation flies.
fn generation_gains(cfg: &TuneConfig, cem: &Cem) -> (Vec<Vec<f64>>, Vec<CascadeGains>) {
    let base = cfg.base_gains();
    let cands = cem.sample(cfg.population);
    let mut gains: Vec<CascadeGains> = cands.iter().map(|x| gains_at(&base, x)).collect();
    gains.push(base);
    (cands, gains)
}

/// Flies slice K of N of the current generation's flights (its candidates and the starting
/// gains, over the training scenes × seeds).
pub fn fly_shard(
    cfg: &TuneConfig,
    cem: &Cem,
    (k, n): (usize, usize),
) -> Result<Vec<TuneFlight>, Error> {
    let (_, gains) = generation_gains(cfg, cem);
    let work: Vec<Item> = work_items(gains.len(), cfg.scenes.len(), &cfg.train_seeds)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % n.max(1) == k)
        .map(|(_, w)| w)
        .collect();
    let (flown, _) = fly_items(
        &cfg.training_scenes(),
        &gains,
        &work,
        cfg.jobs,
        cfg.randomise_seed(),
    )?;
    Ok(flown)
}

/// Writes a shard's flights of `generation` as JSON lines to
/// `DIR/gen-G.shard-K-of-N.jsonl`, creating DIR; returns the file's path.
pub fn write_shard(
    dir: &Path,
    generation: u32,
    (k, n): (usize, usize),
    flights: &[TuneFlight],
) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!("gen-{generation}.shard-{k}-of-{n}.jsonl"));
    let mut text = String::new();
    for f in flights {
        let line = serde_json::json!({
            "generation": generation, "candidate": f.candidate, "scene": f.scene,
            "seed": f.seed, "rms_error_m": f.rms_error_m, "crashed": f.crashed,
            "overshoot_excess_pct": f.overshoot_excess_pct,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text)
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// The shards' flights of generation `generation` in DIR, sorted and deduplicated.
fn read_shards(dir: &Path, generation: u32) -> Result<Vec<TuneFlight>, Error> {
    let prefix = format!("gen-{generation}.shard-");
    let mut flown: Vec<TuneFlight> = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::reading(dir, &e, format!("{}: cannot read: {e}", dir.display())))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with(&prefix) || !name.ends_with(".jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::reading(&path, &e, format!("{}: cannot read: {e}", path.display()))
        })?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| Error::BadInput(format!("{}:{}: {e}", path.display(), i + 1)))?;
            let field = |k: &str| v.get(k).cloned().unwrap_or(serde_json::Value::Null);
            let (Some(c), Some(s), Some(seed), Some(rms), Some(crashed), Some(over)) = (
                field("candidate").as_u64(),
                field("scene").as_u64(),
                field("seed").as_u64(),
                field("rms_error_m").as_f64(),
                field("crashed").as_bool(),
                field("overshoot_excess_pct").as_f64(),
            ) else {
                return Err(Error::BadInput(format!(
                    "{}:{}: not a tune flight record",
                    path.display(),
                    i + 1
                )));
            };
            flown.push(TuneFlight {
                candidate: c as usize,
                scene: s as usize,
                seed,
                rms_error_m: rms,
                crashed,
                overshoot_excess_pct: over,
            });
        }
    }
    flown.sort_by_key(TuneFlight::key);
    flown.dedup_by_key(|r| r.key());
    Ok(flown)
}

/// A generation merged from shards: the generation, and the starting gains' score on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    pub generation: Generation,
    /// The starting gains' score on the training flights.
    pub baseline: Score,
}

/// Merges the shards' flights of the current generation in DIR and advances the search; it
/// is [`Error::BadInput`] unless every flight of the generation is there.
pub fn merge_generation(cfg: &TuneConfig, cem: &mut Cem, dir: &Path) -> Result<Merged, Error> {
    let (cands, gains) = generation_gains(cfg, cem);
    let flown = read_shards(dir, cem.generation)?;
    let expected = work_items(gains.len(), cfg.scenes.len(), &cfg.train_seeds);
    let have: Vec<Item> = flown.iter().map(TuneFlight::key).collect();
    if have != expected {
        return Err(Error::BadInput(format!(
            "{}: generation {} has {} of its {} flights: are all shards done, with the same \
             scenes and seeds?",
            dir.display(),
            cem.generation,
            have.len(),
            expected.len()
        )));
    }
    let mut scores = scores_from(&flown, gains.len(), cfg.scenes.len(), cfg.train_seeds.len());
    let baseline = scores
        .pop()
        .ok_or_else(|| Error::Failed("no baseline".to_string()))?;
    let generation = advance(cem, &cands, &scores, &baseline);
    Ok(Merged {
        generation,
        baseline,
    })
}

/// The search's best gains, or the starting gains (and `true`) when no candidate's training
/// cost beat theirs (`base_cost`, when known): a search that found nothing better must not
/// return something worse.
pub fn chosen_gains(
    base: &CascadeGains,
    cem: &Cem,
    base_cost: Option<f64>,
) -> (CascadeGains, bool) {
    if base_cost.is_some_and(|b| cem.best_cost >= b) {
        (base.clone(), true)
    } else {
        (gains_at(base, &cem.best_x), false)
    }
}

/// The held-out comparison of the starting and the chosen gains.
#[derive(Clone, Debug, PartialEq)]
pub struct Holdout {
    /// The held-out scenes (with `holdout_realism`).
    pub scenes: Vec<Scene>,
    /// The starting gains' score.
    pub baseline: Score,
    /// The chosen gains' score.
    pub tuned: Score,
    /// The realism each of the starting gains' held-out flights flew with.
    pub realism: FlownRealism,
}

/// Flies the starting gains and `tuned` on the held-out scenes and seeds (not randomised).
pub fn holdout(cfg: &TuneConfig, tuned: &CascadeGains) -> Result<Holdout, Error> {
    let scenes = cfg.holdout_scenes();
    let (mut held, realism) = evaluate(
        &scenes,
        &[cfg.base_gains(), tuned.clone()],
        &cfg.holdout_seeds,
        cfg.jobs,
        None,
    )?;
    let missing = || Error::Failed("no held-out score".to_string());
    let tuned = held.pop().ok_or_else(missing)?;
    let baseline = held.pop().ok_or_else(missing)?;
    Ok(Holdout {
        scenes,
        baseline,
        tuned,
        realism,
    })
}

/// A cascade controller with these gains, as RON (the body of a controller file).
pub fn controller_ron(gains: &CascadeGains) -> Result<String, Error> {
    let cfg = ControllerConfig {
        kind: ControllerKind::Cascade,
        cascade: gains.clone(),
        bitcraze2015: Default::default(),
    };
    ron::ser::to_string_pretty(&cfg, ron::ser::PrettyConfig::default())
        .map_err(|e| Error::Failed(format!("serialising the gains: {e}")))
}

/// Some gains' score on scenes × seeds, against the starting gains.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GainsScore {
    /// The scenes' names, in the order of the per-scene entries.
    pub scenes: Vec<String>,
    /// The gains' score.
    pub score: Score,
    /// The starting gains' (the first scene's cascade gains) score on the same flights.
    pub baseline: Score,
    /// The tuner's objective, [`cost`]`(score, baseline)`: lower is better; the starting gains
    /// cost 1 plus their own crash and overshoot penalties.
    pub cost: f64,
    /// The starting gains' cost, `cost(baseline, baseline)`.
    pub baseline_cost: f64,
}

/// Flies `gains` (cascade controller) and the starting gains (the first scene's cascade gains)
/// on every scene × seed, `jobs` flights at a time, not randomised, with each scene's own
/// realism, and scores both with the tuner's objective. The objective for an external tuner
/// (e.g. Ray Tune): minimise `cost`.
pub fn score_gains(
    scenes: &[Scene],
    gains: &CascadeGains,
    seeds: &[u64],
    jobs: usize,
) -> Result<GainsScore, Error> {
    let base = scenes
        .first()
        .map(|s| s.controller.cascade.clone())
        .ok_or_else(|| Error::BadInput("no scenes to score on".to_string()))?;
    if seeds.is_empty() {
        return Err(Error::BadInput("no seeds to score on".to_string()));
    }
    let (mut scores, _) = evaluate(scenes, &[gains.clone(), base], seeds, jobs, None)?;
    let missing = || Error::Failed("no score".to_string());
    let baseline = scores.pop().ok_or_else(missing)?;
    let score = scores.pop().ok_or_else(missing)?;
    Ok(GainsScore {
        scenes: scenes.iter().map(|s| s.name.clone()).collect(),
        cost: cost(&score, &baseline),
        baseline_cost: cost(&baseline, &baseline),
        score,
        baseline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_scene;
    use crate::tests::{scene_path, temp_dir};

    fn hover() -> Scene {
        load_scene(&scene_path("hover.ron")).expect("hover")
    }

    fn config() -> TuneConfig {
        TuneConfig {
            scenes: vec![hover()],
            train_seeds: vec![0],
            holdout_seeds: vec![50],
            population: 4,
            generations: 1,
            seed: 3,
            jobs: 2,
            realism: None,
            holdout_realism: None,
            randomise: false,
        }
    }

    #[test]
    fn a_search_that_beat_nothing_keeps_the_starting_gains() {
        let base = CascadeGains::default();
        let mut cem = Cem::new(PARAMETERS.len(), SIGMA0, 1);
        cem.best_x = vec![0.5; PARAMETERS.len()];
        cem.best_cost = 1.2;
        let moved = gains_at(&base, &cem.best_x);
        assert_ne!(moved, base);
        assert_eq!(chosen_gains(&base, &cem, Some(1.1)), (base.clone(), true));
        assert_eq!(chosen_gains(&base, &cem, Some(1.3)), (moved.clone(), false));
        assert_eq!(chosen_gains(&base, &cem, None), (moved, false));
    }

    #[test]
    fn score_gains_on_the_default_gains_is_finite_deterministic_and_the_baseline() {
        let scenes = [hover()];
        let gains = scenes[0].controller.cascade.clone();
        let a = score_gains(&scenes, &gains, &[0, 1], 2).expect("score");
        let b = score_gains(&scenes, &gains, &[0, 1], 1).expect("score");
        assert_eq!(a, b);
        assert!(a.cost.is_finite());
        assert_eq!(a.score, a.baseline);
        assert_eq!(a.cost, a.baseline_cost);
        assert!(a.cost >= 1.0, "{}", a.cost);
        assert_eq!(a.scenes, vec!["hover".to_string()]);
        assert!(a.score.p95_rms_m[0] > 0.0 && a.score.p95_rms_m[0] < 0.05);
        assert_eq!(a.score.crashes, vec![0]);
        // Other gains score differently, against the same baseline.
        let mut soft = gains.clone();
        soft.pos_kp_xy *= 0.5;
        let c = score_gains(&scenes, &soft, &[0, 1], 2).expect("score");
        assert_eq!(c.baseline, a.baseline);
        assert_ne!(c.cost, a.cost);
        assert!(matches!(
            score_gains(&[], &gains, &[0], 1),
            Err(Error::BadInput(_))
        ));
        assert!(matches!(
            score_gains(&scenes, &gains, &[], 1),
            Err(Error::BadInput(_))
        ));
    }

    #[test]
    fn sharded_generation_merged_equals_the_local_generation() {
        let cfg = config();
        let (base_score, _) = baseline(&cfg).expect("baseline");
        let mut local = new_search(&cfg);
        let g = run_generation(&cfg, &mut local, &base_score).expect("generation");
        assert_eq!(g.generation, 1);
        let dir = temp_dir("tune-shards");
        let mut sharded = new_search(&cfg);
        for k in 0..2 {
            let flights = fly_shard(&cfg, &sharded, (k, 2)).expect("shard");
            write_shard(&dir, sharded.generation, (k, 2), &flights).expect("write");
        }
        let merged = merge_generation(&cfg, &mut sharded, &dir).expect("merge");
        assert_eq!(merged.baseline, base_score);
        assert_eq!(merged.generation, g);
        assert_eq!(sharded, local);
        // A missing shard is bad input naming the directory.
        let state = temp_dir("tune-state").join("state.json");
        save_state(&state, &sharded).expect("save");
        assert_eq!(load_state(&state).expect("load"), Some(sharded.clone()));
        let e = merge_generation(&cfg, &mut sharded, &dir).expect_err("generation 1 unflown");
        assert!(matches!(e, Error::BadInput(_)), "{e:?}");
        assert!(e.to_string().contains("has 0 of its 5 flights"), "{e}");
    }

    #[test]
    fn bad_tune_input_is_refused() {
        let mut cfg = config();
        assert!(cfg.check().is_ok());
        cfg.holdout_seeds = vec![0];
        assert!(
            cfg.check()
                .is_err_and(|e| e.to_string().contains("overlap"))
        );
        cfg = config();
        cfg.population = 3;
        assert!(matches!(cfg.check(), Err(Error::BadInput(_))));
        assert_eq!(parse_seed_range("2..5").ok(), Some(vec![2, 3, 4]));
        assert!(parse_seed_range("5..5").is_err_and(|e| e.to_string().contains("empty range")));
        assert_eq!(
            load_state(Path::new("/nonexistent/state.json")).ok(),
            Some(None)
        );
    }
}
