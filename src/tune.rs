//! `depthpilot tune`: search the cascade gains in simulation (cross-entropy method), score them on
//! held-out seeds, and write a controller file scenes can use (`controller_file: Some("…")`).
//! The search is `depthpilot_api::tune`'s; this is the arguments, the progress and the file.

use crate::batch::{StderrBar, progress_style, stderr_target};
use crate::fly::load_inline_scene;
use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_api::tune::{self as api, Generation, TuneConfig};
use depthpilot_control::tune::Cem;
use depthpilot_types::Scene;
use depthpilot_types::scene::Realism;
use indicatif::{ProgressBar, ProgressDrawTarget};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    #[arg(long, value_parser = depthpilot_api::parse_shard)]
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

pub fn tune(args: &TuneArgs) -> Result<(), Failure> {
    let scenes: Vec<Scene> = args
        .scenes
        .iter()
        .map(|p| load_inline_scene(p))
        .collect::<Result<_, _>>()?;
    let cfg = TuneConfig {
        scenes,
        train_seeds: api::parse_seed_range(&args.train_seeds)?,
        holdout_seeds: api::parse_seed_range(&args.holdout_seeds)?,
        population: args.population,
        generations: args.generations,
        seed: args.seed,
        jobs: args
            .jobs
            .unwrap_or_else(depthpilot_api::default_jobs)
            .clamp(1, 256),
        realism: args.realism.clone(),
        holdout_realism: args.holdout_realism.clone(),
        randomise: args.randomise,
    };
    cfg.check()?;
    let started = Instant::now();
    if let Some(dir) = &args.merge {
        return merge(args, &cfg, dir, started);
    }
    if let Some(shard) = depthpilot_api::shard_from_env(args.shard)? {
        return run_shard(args, &cfg, shard);
    }
    let bar = StderrBar(generations_bar(args.generations, stderr_target(false)));
    let per_candidate = cfg.scenes.len() * cfg.train_seeds.len();
    bar.set_message(format!("the starting gains: {per_candidate} flights"));
    let (baseline, flown) = api::baseline(&cfg)?;
    bar.suspend(|| {
        for d in api::training_domains(&cfg, &flown) {
            let items = d.realism.map_or("?".to_string(), |r| r.join(" "));
            eprintln!(
                "depthpilot tune: training flight `{}` seed {}: {}; flew with realism [{items}]",
                d.scene, d.seed, d.draw
            );
        }
    });
    let mut cem = bar.suspend(|| load_state(args, &cfg))?;
    bar.set_position(u64::from(cem.generation));
    bar.reset_eta();
    while cem.generation < args.generations {
        bar.set_message(format!(
            "generation {}: {} flights",
            cem.generation + 1,
            cfg.population * per_candidate
        ));
        let g = api::run_generation(&cfg, &mut cem, &baseline)?;
        bar.set_position(u64::from(cem.generation));
        bar.suspend(|| advanced(args, &cem, &g, started))?;
    }
    let base_cost = api::cost(&baseline, &baseline);
    finish(args, &cfg, &cem, Some(base_cost), started, bar)
}

/// The search's bar: generations done of `generations` (with a spinner while one flies; the
/// API reports no progress within a generation), ETA, and what is flying.
const GENERATIONS_TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} generations, ETA {eta}; {msg}";

/// The search's bar, drawn to `target` (ticking on its own while drawn).
fn generations_bar(generations: u32, target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(u64::from(generations)), target)
        .with_style(progress_style(GENERATIONS_TEMPLATE));
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// The saved search state (saying so), or a new search.
fn load_state(args: &TuneArgs, cfg: &TuneConfig) -> Result<Cem, Failure> {
    if let Some(p) = &args.state
        && let Some(c) = api::load_state(p)?
    {
        eprintln!(
            "depthpilot tune: resuming from {} at generation {}",
            p.display(),
            c.generation
        );
        return Ok(c);
    }
    Ok(api::new_search(cfg))
}

/// Progress after a generation, and the saved state.
fn advanced(args: &TuneArgs, cem: &Cem, g: &Generation, started: Instant) -> Result<(), Failure> {
    eprintln!(
        "depthpilot tune: generation {}/{}: best cost {:.3} (this generation {:.3}; the starting gains {:.3}), {:.0} s",
        g.generation,
        args.generations,
        g.best_cost,
        g.generation_best_cost,
        g.baseline_cost,
        started.elapsed().as_secs_f64()
    );
    if let Some(p) = &args.state {
        api::save_state(p, cem)?;
    }
    Ok(())
}

fn run_shard(args: &TuneArgs, cfg: &TuneConfig, (k, n): (usize, usize)) -> Result<(), Failure> {
    if args.state.is_none() {
        return Err(bad(
            "--shard needs --state (the search state the shards share)",
        ));
    }
    let dir = args
        .flights
        .as_ref()
        .ok_or_else(|| bad("--shard needs --flights DIR"))?;
    let cem = load_state(args, cfg)?;
    if cem.generation >= args.generations {
        println!(
            "depthpilot tune: the search is complete ({} generations)",
            cem.generation
        );
        return Ok(());
    }
    let flown = api::fly_shard(cfg, &cem, (k, n))?;
    let path = api::write_shard(dir, cem.generation, (k, n), &flown)?;
    println!(
        "depthpilot tune: generation {} shard {k}/{n}: {} flights written to {}",
        cem.generation,
        flown.len(),
        path.display()
    );
    Ok(())
}

fn merge(
    args: &TuneArgs,
    cfg: &TuneConfig,
    dir: &std::path::Path,
    started: Instant,
) -> Result<(), Failure> {
    if args.state.is_none() {
        return Err(bad("--merge needs --state"));
    }
    let mut cem = load_state(args, cfg)?;
    let no_bar = || StderrBar(ProgressBar::hidden());
    if cem.generation >= args.generations {
        return finish(args, cfg, &cem, None, started, no_bar());
    }
    let merged = api::merge_generation(cfg, &mut cem, dir)?;
    advanced(args, &cem, &merged.generation, started)?;
    if cem.generation >= args.generations {
        return finish(
            args,
            cfg,
            &cem,
            Some(merged.generation.baseline_cost),
            started,
            no_bar(),
        );
    }
    Ok(())
}

/// Scores the chosen gains (the best, or the starting gains when no candidate beat their
/// training cost `base_cost`) on the held-out seeds and writes them. `bar` (the search's) is
/// done before the report.
fn finish(
    args: &TuneArgs,
    cfg: &TuneConfig,
    cem: &Cem,
    base_cost: Option<f64>,
    started: Instant,
    bar: StderrBar,
) -> Result<(), Failure> {
    let (tuned, kept_start) = api::chosen_gains(&cfg.base_gains(), cem, base_cost);
    let held_out = 2 * cfg.scenes.len() * cfg.holdout_seeds.len();
    bar.set_message(format!("held out: {held_out} flights"));
    let held = api::holdout(cfg, &tuned)?;
    bar.finish();
    drop(bar);
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
    let (base, best) = (&held.baseline, &held.tuned);
    for (i, s) in held.scenes.iter().enumerate() {
        // The seeds and realism the held-out flights' summaries report.
        let seeds: Vec<String> = held
            .realism
            .keys()
            .filter(|(scene, _)| *scene == i)
            .map(|(_, k)| k.to_string())
            .collect();
        let mut items: Vec<String> = held
            .realism
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
        let (b, t) = (base.p95_rms_m[i], best.p95_rms_m[i]);
        report.push_str(&format!(
            "//   {}: held-out p95 rms {:.2} mm -> {:.2} mm ({:+.1} %), mean {:.2} -> {:.2} mm, max {:.2} -> {:.2} mm, crashes {} -> {} of {}\n",
            s.name,
            b * 1e3,
            t * 1e3,
            100.0 * (t - b) / b.max(1e-9),
            base.mean_rms_m[i] * 1e3,
            best.mean_rms_m[i] * 1e3,
            base.max_rms_m[i] * 1e3,
            best.max_rms_m[i] * 1e3,
            base.crashes[i],
            best.crashes[i],
            cfg.holdout_seeds.len()
        ));
    }
    let body = api::controller_ron(&tuned)?;
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
    use crate::batch::RecordingTerm;

    #[test]
    fn the_generations_bar_shows_generations_done_and_what_flies() {
        let term = RecordingTerm::default();
        let bar = generations_bar(10, term.target());
        bar.set_message("generation 4: 48 flights");
        bar.set_position(3);
        bar.abandon();
        let text = term.text();
        assert!(
            text.contains("] 3/10 generations, ETA ")
                && text.contains("; generation 4: 48 flights"),
            "{text:?}"
        );
    }

    #[test]
    fn the_generations_template_parses() {
        assert!(indicatif::ProgressStyle::with_template(GENERATIONS_TEMPLATE).is_ok());
    }
}
