//! `depthpilot tune`: search the cascade gains in simulation (cross-entropy method), score them on
//! held-out seeds, and write a controller file scenes can use (`controller_file: Some("…")`).

use crate::fly::load_inline_scene;
use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_control::tune::{Cem, PARAMETERS, gains_at};
use depthpilot_sim::batch::{Randomisation, domain_seed, randomised_scene, varied_scene};
use depthpilot_types::Scene;
use depthpilot_types::scene::{CascadeGains, ControllerConfig, ControllerKind, Realism};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Arguments of `depthpilot tune`.
#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// Scenes to tune on (their cascade gains are the starting point: the first scene's).
    #[arg(required = true)]
    pub scenes: Vec<PathBuf>,
    /// Controller file to write.
    #[arg(long, default_value = "tuned.ron")]
    pub out: PathBuf,
    /// Training seeds, A..B.
    #[arg(long, default_value = "0..4")]
    pub train_seeds: String,
    /// Held-out seeds for the final comparison, A..B (disjoint from training).
    #[arg(long, default_value = "1000..1020")]
    pub holdout_seeds: String,
    #[arg(long, default_value_t = 10)]
    pub generations: u32,
    #[arg(long, default_value_t = 12)]
    pub population: usize,
    /// Seed of the search (same seed, same result).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Parallel flights (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Search state file: saved after every generation, resumed from if it exists.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// On a scheduler: fly only slice K of N of the current generation's flights (also from
    /// SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX with DEPTHPILOT_SHARDS) and write them
    /// to `--flights DIR`; needs `--state`. Then `--merge DIR` advances the search one generation.
    #[arg(long, value_parser = crate::batch::parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Where shards write their flights.
    #[arg(long, value_name = "DIR")]
    pub flights: Option<PathBuf>,
    /// Merge the shards' flights of the current generation in DIR and advance the state.
    #[arg(long, value_name = "DIR")]
    pub merge: Option<PathBuf>,
    /// The realism layer for every flight, replacing the scenes' `realism`: `Ideal`, `Bench`, or
    /// a preset with overrides, e.g. `Bench,turbulence=off,battery_start_v=3.8`.
    #[arg(long, value_name = "SPEC", value_parser = Realism::parse_spec)]
    pub realism: Option<Realism>,
    /// Domain randomisation: each training flight draws its mass, extra camera latency, camera
    /// noise and battery voltage (battery and motor spread on) from the search's seed and the
    /// flight's training seed (ranges and their sources: `depthpilot_sim::batch::Randomisation`).
    /// The held-out flights are not randomised.
    #[arg(long)]
    pub randomise: bool,
    /// The realism of the held-out flights (default: as training, `--realism` or the scenes'),
    /// e.g. `Bench` to score gains tuned in the ideal simulator on the realistic one.
    #[arg(long, value_name = "SPEC", value_parser = Realism::parse_spec)]
    pub holdout_realism: Option<Realism>,
}

fn bad(msg: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::anyhow!("{msg}"),
    }
}

fn seeds(s: &str) -> Result<Vec<u64>, Failure> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| bad(format!("`{s}`: expected A..B")))?;
    let (a, b): (u64, u64) = (
        a.parse().map_err(|_| bad(format!("`{a}` is not a seed")))?,
        b.parse().map_err(|_| bad(format!("`{b}` is not a seed")))?,
    );
    if b <= a {
        return Err(bad(format!("`{s}`: empty range")));
    }
    Ok((a..b).collect())
}

/// What flying one set of gains over seeds gave, per scene.
#[derive(Clone, Debug)]
struct Score {
    p95_rms_m: Vec<f64>,
    mean_rms_m: Vec<f64>,
    max_rms_m: Vec<f64>,
    crashes: Vec<usize>,
    crash_rate: Vec<f64>,
    overshoot_excess_pct: Vec<f64>,
}

/// The realism items each flight of the first candidate flew with, by (scene, seed), as its
/// summary reported them.
type FlownRealism = BTreeMap<(usize, u64), Vec<&'static str>>;

/// The scenes with the `--realism` override applied.
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

/// One flight of an evaluation: candidate, scene, seed, rms error, crashed, overshoot beyond 10 %.
type Flown = (usize, usize, u64, f64, bool, f64);

/// One unit of work: (candidate, scene, seed).
type Item = (usize, usize, u64);

/// Every (candidate, scene, seed) of an evaluation, in a fixed order (shards slice it).
fn work_items(n_gains: usize, n_scenes: usize, seeds: &[u64]) -> Vec<Item> {
    (0..n_gains)
        .flat_map(|c| (0..n_scenes).flat_map(move |s| seeds.iter().map(move |&k| (c, s, k))))
        .collect()
}

/// Flies the items in parallel (randomised from the search's seed if `randomise` is given).
fn fly_items(
    scenes: &[Scene],
    gains: &[CascadeGains],
    work: &[Item],
    jobs: usize,
    randomise: Option<u64>,
) -> Result<(Vec<Flown>, FlownRealism), Failure> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Flown>> = Mutex::new(Vec::new());
    let realism: Mutex<FlownRealism> = Mutex::new(BTreeMap::new());
    let err: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(c, s, k)) = work.get(i) else { break };
                    let scene = with_gains(&scenes[s], &gains[c]);
                    match depthpilot_sim::fly(
                        &flight_scene(&scene, k, randomise),
                        &mut depthpilot_sim::NoLog,
                    ) {
                        Ok(sum) => {
                            if c == 0
                                && let Ok(mut r) = realism.lock()
                            {
                                r.insert((s, k), sum.realism.clone());
                            }
                            let over = sum
                                .steps
                                .iter()
                                .map(|st| (st.overshoot_pct - 10.0).max(0.0))
                                .sum();
                            if let Ok(mut o) = out.lock() {
                                o.push((c, s, k, sum.rms_error_m, sum.crashed, over));
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
        return Err(bad(e));
    }
    let mut results = out
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    results.sort_by_key(|r| (r.0, r.1, r.2));
    let realism = realism
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    Ok((results, realism))
}

/// A score per candidate from its flights.
fn scores_from(results: &[Flown], n_gains: usize, n_scenes: usize, n_seeds: usize) -> Vec<Score> {
    (0..n_gains)
        .map(|c| {
            let per_scene = |s: usize| results.iter().filter(move |r| r.0 == c && r.1 == s);
            Score {
                p95_rms_m: (0..n_scenes)
                    .map(|s| p95(per_scene(s).map(|r| r.3).collect()))
                    .collect(),
                mean_rms_m: (0..n_scenes)
                    .map(|s| per_scene(s).map(|r| r.3).sum::<f64>() / n_seeds.max(1) as f64)
                    .collect(),
                max_rms_m: (0..n_scenes)
                    .map(|s| per_scene(s).map(|r| r.3).fold(0.0, f64::max))
                    .collect(),
                crashes: (0..n_scenes)
                    .map(|s| per_scene(s).filter(|r| r.4).count())
                    .collect(),
                crash_rate: (0..n_scenes)
                    .map(|s| per_scene(s).filter(|r| r.4).count() as f64 / n_seeds as f64)
                    .collect(),
                overshoot_excess_pct: (0..n_scenes)
                    .map(|s| per_scene(s).map(|r| r.5).sum::<f64>() / n_seeds as f64)
                    .collect(),
            }
        })
        .collect()
}

/// Flies every (candidate, scene, seed) in parallel; returns a score per candidate and the
/// realism the first candidate's flights flew with.
fn evaluate(
    scenes: &[Scene],
    gains: &[CascadeGains],
    seeds: &[u64],
    jobs: usize,
    randomise: Option<u64>,
) -> Result<(Vec<Score>, FlownRealism), Failure> {
    let work = work_items(gains.len(), scenes.len(), seeds);
    let (results, realism) = fly_items(scenes, gains, &work, jobs, randomise)?;
    Ok((
        scores_from(&results, gains.len(), scenes.len(), seeds.len()),
        realism,
    ))
}

/// The search's seed when the training flights are randomised.
fn randomise(args: &TuneArgs) -> Option<u64> {
    args.randomise.then_some(args.seed)
}

/// Prints each training flight's randomised domain (from the scene it flies) and the realism
/// items its summary says it flew with.
fn print_domains(scenes: &[Scene], train: &[u64], search_seed: u64, flown: &FlownRealism) {
    for (i, scene) in scenes.iter().enumerate() {
        for &k in train {
            let (_, draw) = randomised_scene(
                &varied_scene(scene, k),
                domain_seed(search_seed, k),
                &Randomisation::BENCH,
            );
            let items = flown.get(&(i, k)).map_or("?".to_string(), |r| r.join(" "));
            eprintln!(
                "depthpilot tune: training flight `{}` seed {k}: {draw}; flew with realism [{items}]",
                scene.name
            );
        }
    }
}

/// The objective: p95 rms error relative to the starting gains, averaged over scenes, plus
/// penalties for crashes and for step overshoot beyond 10 %.
fn cost(score: &Score, baseline: &Score) -> f64 {
    let n = score.p95_rms_m.len() as f64;
    let mut c = 0.0;
    for i in 0..score.p95_rms_m.len() {
        c += score.p95_rms_m[i] / baseline.p95_rms_m[i].max(1e-6) / n;
        c += 5.0 * score.crash_rate[i];
        c += 0.02 * score.overshoot_excess_pct[i];
    }
    c
}

pub fn tune(args: &TuneArgs) -> Result<(), Failure> {
    let loaded: Vec<Scene> = args
        .scenes
        .iter()
        .map(|p| load_inline_scene(p))
        .collect::<Result<_, _>>()?;
    let scenes = with_realism(&loaded, args.realism.as_ref());
    let train = seeds(&args.train_seeds)?;
    let holdout = seeds(&args.holdout_seeds)?;
    if train.iter().any(|s| holdout.contains(s)) {
        return Err(bad("training and held-out seeds overlap"));
    }
    if args.population < 4 {
        return Err(bad("--population must be at least 4"));
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    // Parallel flights that fill the cores leave none for each one's camera thread.
    depthpilot_sim::set_camera_thread(depthpilot_sim::camera_thread_pays(jobs));
    let base = scenes[0].controller.cascade.clone();
    let started = Instant::now();
    if let Some(dir) = &args.merge {
        return merge(args, &scenes, &base, &train, &holdout, dir, jobs, started);
    }
    if let Some(shard) = crate::batch::shard_from_env(args.shard).map_err(bad)? {
        return run_shard(args, &scenes, &base, &train, shard, jobs);
    }
    let (mut baseline, flown) = evaluate(
        &scenes,
        std::slice::from_ref(&base),
        &train,
        jobs,
        randomise(args),
    )?;
    let baseline = baseline.remove(0);
    if let Some(search) = randomise(args) {
        print_domains(&scenes, &train, search, &flown);
    }
    let mut cem = load_state(args)?;
    while cem.generation < args.generations {
        let cands = cem.sample(args.population);
        let gains: Vec<CascadeGains> = cands.iter().map(|x| gains_at(&base, x)).collect();
        let (scores, _) = evaluate(&scenes, &gains, &train, jobs, randomise(args))?;
        advance(args, &mut cem, &cands, &scores, &baseline, started)?;
    }
    let base_cost = cost(&baseline, &baseline);
    finish(
        args,
        &scenes,
        &base,
        &cem,
        Some(base_cost),
        &holdout,
        jobs,
        started,
    )
}

fn load_state(args: &TuneArgs) -> Result<Cem, Failure> {
    Ok(match &args.state {
        Some(p) if p.exists() => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let c: Cem = serde_json::from_str(&text)
                .map_err(|e| bad(format!("{}: not a tune state: {e}", p.display())))?;
            eprintln!(
                "depthpilot tune: resuming from {} at generation {}",
                p.display(),
                c.generation
            );
            c
        }
        _ => Cem::new(PARAMETERS.len(), 0.35, args.seed),
    })
}

/// Costs, the update, progress, and the saved state.
fn advance(
    args: &TuneArgs,
    cem: &mut Cem,
    cands: &[Vec<f64>],
    scores: &[Score],
    baseline: &Score,
    started: Instant,
) -> Result<(), Failure> {
    let costs: Vec<f64> = scores.iter().map(|s| cost(s, baseline)).collect();
    cem.update(cands, &costs);
    let gen_best = costs.iter().cloned().fold(f64::INFINITY, f64::min);
    eprintln!(
        "depthpilot tune: generation {}/{}: best cost {:.3} (this generation {:.3}; the starting gains {:.3}), {:.0} s",
        cem.generation,
        args.generations,
        cem.best_cost,
        gen_best,
        cost(baseline, baseline),
        started.elapsed().as_secs_f64()
    );
    if let Some(p) = &args.state {
        let text = serde_json::to_string_pretty(&cem).context("serialising the state")?;
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The current generation's candidates and, last, the starting gains (the cost's reference).
fn generation_gains(
    cem: &Cem,
    args: &TuneArgs,
    base: &CascadeGains,
) -> (Vec<Vec<f64>>, Vec<CascadeGains>) {
    let cands = cem.sample(args.population);
    let mut gains: Vec<CascadeGains> = cands.iter().map(|x| gains_at(base, x)).collect();
    gains.push(base.clone());
    (cands, gains)
}

fn run_shard(
    args: &TuneArgs,
    scenes: &[Scene],
    base: &CascadeGains,
    train: &[u64],
    (k, n): (usize, usize),
    jobs: usize,
) -> Result<(), Failure> {
    if args.state.is_none() {
        return Err(bad(
            "--shard needs --state (the search state the shards share)",
        ));
    }
    let dir = args
        .flights
        .as_ref()
        .ok_or_else(|| bad("--shard needs --flights DIR"))?;
    let cem = load_state(args)?;
    if cem.generation >= args.generations {
        println!(
            "depthpilot tune: the search is complete ({} generations)",
            cem.generation
        );
        return Ok(());
    }
    let (_, gains) = generation_gains(&cem, args, base);
    let work: Vec<Item> = work_items(gains.len(), scenes.len(), train)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % n == k)
        .map(|(_, w)| w)
        .collect();
    let (flown, _) = fly_items(scenes, &gains, &work, jobs, randomise(args))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("gen-{}.shard-{k}-of-{n}.jsonl", cem.generation));
    let mut text = String::new();
    for (c, s, seed, rms, crashed, over) in &flown {
        let line = serde_json::json!({
            "generation": cem.generation, "candidate": c, "scene": s, "seed": seed,
            "rms_error_m": rms, "crashed": crashed, "overshoot_excess_pct": over,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "depthpilot tune: generation {} shard {k}/{n}: {} flights written to {}",
        cem.generation,
        flown.len(),
        path.display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn merge(
    args: &TuneArgs,
    scenes: &[Scene],
    base: &CascadeGains,
    train: &[u64],
    holdout: &[u64],
    dir: &std::path::Path,
    jobs: usize,
    started: Instant,
) -> Result<(), Failure> {
    if args.state.is_none() {
        return Err(bad("--merge needs --state"));
    }
    let mut cem = load_state(args)?;
    if cem.generation >= args.generations {
        return finish(args, scenes, base, &cem, None, holdout, jobs, started);
    }
    let (cands, gains) = generation_gains(&cem, args, base);
    let prefix = format!("gen-{}.shard-", cem.generation);
    let mut flown: Vec<Flown> = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad(format!("{}: cannot read: {e}", dir.display())))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with(&prefix) || !name.ends_with(".jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| bad(format!("{}: cannot read: {e}", path.display())))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| bad(format!("{}:{}: {e}", path.display(), i + 1)))?;
            let field = |k: &str| v.get(k).cloned().unwrap_or(serde_json::Value::Null);
            let (Some(c), Some(s), Some(seed), Some(rms), Some(crashed), Some(over)) = (
                field("candidate").as_u64(),
                field("scene").as_u64(),
                field("seed").as_u64(),
                field("rms_error_m").as_f64(),
                field("crashed").as_bool(),
                field("overshoot_excess_pct").as_f64(),
            ) else {
                return Err(bad(format!(
                    "{}:{}: not a tune flight record",
                    path.display(),
                    i + 1
                )));
            };
            flown.push((c as usize, s as usize, seed, rms, crashed, over));
        }
    }
    flown.sort_by_key(|r| (r.0, r.1, r.2));
    flown.dedup_by_key(|r| (r.0, r.1, r.2));
    let expected = work_items(gains.len(), scenes.len(), train);
    let have: Vec<Item> = flown.iter().map(|r| (r.0, r.1, r.2)).collect();
    if have != expected {
        return Err(bad(format!(
            "{}: generation {} has {} of its {} flights: are all shards done, with the same scenes and seeds?",
            dir.display(),
            cem.generation,
            have.len(),
            expected.len()
        )));
    }
    let mut scores = scores_from(&flown, gains.len(), scenes.len(), train.len());
    let baseline = scores.pop().ok_or_else(|| bad("no baseline"))?;
    advance(args, &mut cem, &cands, &scores, &baseline, started)?;
    if cem.generation >= args.generations {
        let base_cost = cost(&baseline, &baseline);
        return finish(
            args,
            scenes,
            base,
            &cem,
            Some(base_cost),
            holdout,
            jobs,
            started,
        );
    }
    Ok(())
}

/// The search's best gains, or the starting gains (and `true`) when no candidate's training
/// cost beat theirs: a search that found nothing better must not return something worse.
fn chosen_gains(base: &CascadeGains, cem: &Cem, base_cost: Option<f64>) -> (CascadeGains, bool) {
    if base_cost.is_some_and(|b| cem.best_cost >= b) {
        (base.clone(), true)
    } else {
        (gains_at(base, &cem.best_x), false)
    }
}

/// Scores the best gains (or, when no candidate beat the starting gains' cost `base_cost` on
/// the training flights, the starting gains themselves) on the held-out seeds and writes them.
#[allow(clippy::too_many_arguments)]
fn finish(
    args: &TuneArgs,
    scenes: &[Scene],
    base: &CascadeGains,
    cem: &Cem,
    base_cost: Option<f64>,
    holdout: &[u64],
    jobs: usize,
    started: Instant,
) -> Result<(), Failure> {
    let (tuned, kept_start) = chosen_gains(base, cem, base_cost);
    let held_scenes = with_realism(scenes, args.holdout_realism.as_ref());
    let (held, flown) = evaluate(
        &held_scenes,
        &[base.clone(), tuned.clone()],
        holdout,
        jobs,
        None,
    )?;
    let mut report = format!(
        "//   training: seeds {}{}; held out: seeds {} (none a training seed), not randomised\n",
        args.train_seeds,
        if args.randomise {
            ", randomised (tune --randomise)"
        } else {
            ""
        },
        args.holdout_seeds,
    );
    if let (true, Some(b)) = (kept_start, base_cost) {
        report.push_str(&format!(
            "//   no candidate beat the starting gains on the training flights (best cost {:.3}, \
             starting gains {b:.3}): these are the starting gains\n",
            cem.best_cost
        ));
    }
    for (i, s) in held_scenes.iter().enumerate() {
        // The seeds and realism the held-out flights' summaries report.
        let seeds: Vec<String> = flown
            .keys()
            .filter(|(scene, _)| *scene == i)
            .map(|(_, k)| k.to_string())
            .collect();
        let mut items: Vec<String> = flown
            .iter()
            .filter(|((scene, _), _)| *scene == i)
            .map(|(_, r)| r.join(" "))
            .collect();
        items.dedup();
        report.push_str(&format!(
            "//   {}: held-out flights on seeds {}, realism {:?} [{}]\n",
            s.name,
            seeds.join(" "),
            s.realism.preset,
            items.join(" | ")
        ));
        let (b, t) = (held[0].p95_rms_m[i], held[1].p95_rms_m[i]);
        report.push_str(&format!(
            "//   {}: held-out p95 rms {:.2} mm -> {:.2} mm ({:+.1} %), mean {:.2} -> {:.2} mm, max {:.2} -> {:.2} mm, crashes {} -> {} of {}\n",
            s.name,
            b * 1e3,
            t * 1e3,
            100.0 * (t - b) / b.max(1e-9),
            held[0].mean_rms_m[i] * 1e3,
            held[1].mean_rms_m[i] * 1e3,
            held[0].max_rms_m[i] * 1e3,
            held[1].max_rms_m[i] * 1e3,
            held[0].crashes[i],
            held[1].crashes[i],
            holdout.len()
        ));
    }
    let cfg = ControllerConfig {
        kind: ControllerKind::Cascade,
        cascade: tuned,
        bitcraze2015: Default::default(),
    };
    let body = ron::ser::to_string_pretty(&cfg, ron::ser::PrettyConfig::default())
        .context("serialising the gains")?;
    let header = format!(
        "// Cascade gains from `depthpilot tune` (seed {}, {} generations × {}, train seeds {}, held out {}).\n// Use from a scene: controller_file: Some(\"{}\").\n{report}",
        args.seed,
        args.generations,
        args.population,
        args.train_seeds,
        args.holdout_seeds,
        args.out
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("tuned.ron")
    );
    std::fs::write(&args.out, format!("{header}{body}\n"))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "depthpilot tune: wrote {} in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.replace("//   ", "  "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_that_beat_nothing_keeps_the_starting_gains() {
        let base = CascadeGains::default();
        let mut cem = Cem::new(PARAMETERS.len(), 0.35, 1);
        cem.best_x = vec![0.5; PARAMETERS.len()];
        cem.best_cost = 1.2;
        let moved = gains_at(&base, &cem.best_x);
        assert_ne!(moved, base);
        assert_eq!(chosen_gains(&base, &cem, Some(1.1)), (base.clone(), true));
        assert_eq!(chosen_gains(&base, &cem, Some(1.3)), (moved.clone(), false));
        assert_eq!(chosen_gains(&base, &cem, None), (moved, false));
    }
}
