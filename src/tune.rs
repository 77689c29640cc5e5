//! `depthpilot tune`: search the cascade gains in simulation (cross-entropy method), score them on
//! held-out seeds, and write a controller file scenes can use (`controller_file: Some("…")`).

use crate::fly::load_scene;
use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_control::tune::{Cem, PARAMETERS, gains_at};
use depthpilot_types::Scene;
use depthpilot_types::scene::{CascadeGains, ControllerConfig, ControllerKind};
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
    crash_rate: Vec<f64>,
    overshoot_excess_pct: Vec<f64>,
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

/// One flight of an evaluation: candidate, scene, rms error, crashed, overshoot beyond 10 %.
type Flown = (usize, usize, f64, bool, f64);

/// Flies every (candidate, scene, seed) in parallel; returns a score per candidate.
fn evaluate(
    scenes: &[Scene],
    gains: &[CascadeGains],
    seeds: &[u64],
    jobs: usize,
) -> Result<Vec<Score>, Failure> {
    let work: Vec<(usize, usize, u64)> = (0..gains.len())
        .flat_map(|c| (0..scenes.len()).flat_map(move |s| seeds.iter().map(move |&k| (c, s, k))))
        .collect();
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Flown>> = Mutex::new(Vec::new());
    let err: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(c, s, k)) = work.get(i) else { break };
                    let scene = with_gains(&scenes[s], &gains[c]);
                    match depthpilot_sim::fly(
                        &depthpilot_sim::batch::varied_scene(&scene, k),
                        &mut depthpilot_sim::NoLog,
                    ) {
                        Ok(sum) => {
                            let over = sum
                                .steps
                                .iter()
                                .map(|st| (st.overshoot_pct - 10.0).max(0.0))
                                .sum();
                            if let Ok(mut o) = out.lock() {
                                o.push((c, s, sum.rms_error_m, sum.crashed, over));
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
    let results = out
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    Ok((0..gains.len())
        .map(|c| {
            let per_scene = |s: usize| results.iter().filter(move |r| r.0 == c && r.1 == s);
            Score {
                p95_rms_m: (0..scenes.len())
                    .map(|s| p95(per_scene(s).map(|r| r.2).collect()))
                    .collect(),
                crash_rate: (0..scenes.len())
                    .map(|s| per_scene(s).filter(|r| r.3).count() as f64 / seeds.len() as f64)
                    .collect(),
                overshoot_excess_pct: (0..scenes.len())
                    .map(|s| per_scene(s).map(|r| r.4).sum::<f64>() / seeds.len() as f64)
                    .collect(),
            }
        })
        .collect())
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
    let scenes: Vec<Scene> = args
        .scenes
        .iter()
        .map(|p| load_scene(p, None, None))
        .collect::<Result<_, _>>()?;
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
    let base = scenes[0].controller.cascade.clone();
    let started = Instant::now();
    let baseline = evaluate(&scenes, std::slice::from_ref(&base), &train, jobs)?.remove(0);
    let mut cem = match &args.state {
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
    };
    while cem.generation < args.generations {
        let cands = cem.sample(args.population);
        let gains: Vec<CascadeGains> = cands.iter().map(|x| gains_at(&base, x)).collect();
        let scores = evaluate(&scenes, &gains, &train, jobs)?;
        let costs: Vec<f64> = scores.iter().map(|s| cost(s, &baseline)).collect();
        cem.update(&cands, &costs);
        let gen_best = costs.iter().cloned().fold(f64::INFINITY, f64::min);
        eprintln!(
            "depthpilot tune: generation {}/{}: best cost {:.3} (this generation {:.3}; 1.0 = the starting gains), {:.0} s",
            cem.generation,
            args.generations,
            cem.best_cost,
            gen_best,
            started.elapsed().as_secs_f64()
        );
        if let Some(p) = &args.state {
            let text = serde_json::to_string_pretty(&cem).context("serialising the state")?;
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    let tuned = gains_at(&base, &cem.best_x);
    let held = evaluate(&scenes, &[base.clone(), tuned.clone()], &holdout, jobs)?;
    let mut report = String::new();
    for (i, s) in scenes.iter().enumerate() {
        let (b, t) = (held[0].p95_rms_m[i], held[1].p95_rms_m[i]);
        report.push_str(&format!(
            "//   {}: held-out p95 rms {:.2} mm -> {:.2} mm ({:+.1} %), crash rate {:.0} % -> {:.0} %\n",
            s.name,
            b * 1e3,
            t * 1e3,
            100.0 * (t - b) / b.max(1e-9),
            held[0].crash_rate[i] * 100.0,
            held[1].crash_rate[i] * 100.0
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
