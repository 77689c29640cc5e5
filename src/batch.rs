//! `depthpilot batch`: Monte Carlo over seeds, in parallel, sliceable into shards for a scheduler
//! (Slurm array jobs, Kubernetes Indexed Jobs), and mergeable. The flying, the shards and the
//! merge are `depthpilot_api::batch`'s; this is the arguments, the progress and the report.

use crate::fly::load_inline_scene;
use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_api::batch::{parse_seeds, parse_shard, shard_from_env, shard_seeds};
use depthpilot_sim::batch::Report;
use depthpilot_types::scene::Realism;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `depthpilot batch`.
#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    /// Scene file (RON); not needed with --merge.
    #[arg(required_unless_present = "merge")]
    pub scene: Option<PathBuf>,
    /// Seeds, as A..B (B excluded), e.g. 0..200.
    #[arg(long, default_value = "0..100", value_parser = parse_seeds)]
    pub seeds: (u64, u64),
    /// Parallel flights (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only slice K of N (0-based), e.g. 3/8. Also read from SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT, or from Kubernetes' JOB_COMPLETION_INDEX with DEPTHPILOT_SHARDS.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Directory for per-flight JSON lines (written by a shard, read by --merge).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Aggregate the JSON lines in DIR (from shards) into one report instead of flying.
    #[arg(long, value_name = "DIR")]
    pub merge: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Print only the report (no progress).
    #[arg(long, short)]
    pub quiet: bool,
    /// The realism layer for every flight, replacing the scene's `realism`: `Ideal`, `Bench`, or
    /// a preset with overrides, e.g. `Bench,turbulence=off,battery_start_v=3.8`.
    #[arg(long, value_name = "SPEC", value_parser = Realism::parse_spec)]
    pub realism: Option<Realism>,
    /// Fly with the controller in this file (e.g. from `depthpilot tune`) instead of the
    /// scene's: with `--realism Bench --seeds 1000..1050`, the held-out score of tuned gains.
    #[arg(long, value_name = "FILE")]
    pub controller_file: Option<PathBuf>,
}

pub fn batch(args: &BatchArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.merge {
        let report = depthpilot_api::merge(dir)?;
        return finish(args, &report, None, None);
    }
    let path = args.scene.as_ref().ok_or_else(|| Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::anyhow!("a scene file is needed"),
    })?;
    let mut scene = load_inline_scene(path)?;
    if let Some(r) = &args.realism {
        scene.realism = r.clone();
    }
    if let Some(file) = &args.controller_file {
        scene.controller = depthpilot_api::load_controller(file)?;
    }
    let shard = shard_from_env(args.shard)?;
    let seeds = shard_seeds(args.seeds, shard);
    let jobs = args
        .jobs
        .unwrap_or_else(depthpilot_api::default_jobs)
        .clamp(1, 256);
    let started = Instant::now();
    let show = !args.quiet;
    let tty = std::io::stderr().is_terminal();
    let records = depthpilot_api::batch(&scene, &seeds, jobs, &|done, total| {
        if show {
            progress(done, total, started, tty);
        }
    });
    if show && tty {
        eprintln!();
    }
    let records = records?;
    let wall = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.out {
        depthpilot_api::write_records(dir, &scene.name, shard, &records)?;
    }
    let report = depthpilot_api::report(&scene.name, &records)?;
    finish(args, &report, Some((wall, jobs)), shard)
}

fn progress(done: usize, total: usize, started: Instant, tty: bool) {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if tty {
        let width = 30;
        let filled = width * done / total.max(1);
        eprint!(
            "\r[{}{}] {done}/{total} flights, {rate:.1}/s",
            "=".repeat(filled),
            " ".repeat(width - filled)
        );
    } else if done == total || done.is_multiple_of((total / 10).max(1)) {
        eprintln!("{done}/{total} flights, {rate:.1}/s");
    }
}

fn finish(
    args: &BatchArgs,
    report: &Report,
    timing: Option<(f64, usize)>,
    shard: Option<(usize, usize)>,
) -> Result<(), Failure> {
    let mut json = serde_json::to_value(report).context("serialising the report")?;
    if let (Some((wall, jobs)), Some(obj)) = (timing, json.as_object_mut()) {
        obj.insert("wall_seconds".into(), wall.into());
        obj.insert("jobs".into(), jobs.into());
        obj.insert(
            "flights_per_second".into(),
            (report.flights as f64 / wall).into(),
        );
    }
    if let Some(path) = &args.summary {
        let text = serde_json::to_string_pretty(&json).context("serialising the report")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write summary {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    let shard_text = shard.map_or(String::new(), |(k, n)| format!(" (shard {k}/{n})"));
    let _ = writeln!(
        out,
        "depthpilot batch — scene `{}`{shard_text}: {} flights, seeds {}..={}",
        report.scene, report.flights, report.first_seed, report.last_seed
    );
    let _ = writeln!(
        out,
        "  rms error   mean {:.2} mm, p50 {:.2} mm, p95 {:.2} mm, worst {:.2} mm (seed {})",
        report.mean_rms_error_m * 1e3,
        report.p50_rms_error_m * 1e3,
        report.p95_rms_error_m * 1e3,
        report.worst_rms_error_m * 1e3,
        report.worst_seed
    );
    let _ = writeln!(out, "  realism     {}", realism_text(&report.realism));
    let _ = writeln!(
        out,
        "  crash rate  {:.1} %   detection rate {:.1} %",
        report.crash_rate * 100.0,
        report.detection_rate * 100.0
    );
    if let Some((wall, jobs)) = timing {
        let _ = writeln!(
            out,
            "  wall        {wall:.2} s with {jobs} job(s), {:.1} flights/s",
            report.flights as f64 / wall
        );
    }
    Ok(())
}

/// The realism items that were on, for a report line.
pub(crate) fn realism_text<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "Ideal (every item off)".to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
