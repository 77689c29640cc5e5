//! `depthpilot batch`: Monte Carlo over seeds, in parallel, sliceable into shards for a scheduler
//! (Slurm array jobs, Kubernetes Indexed Jobs), and mergeable. The flying, the shards and the
//! merge are `depthpilot_api::batch`'s; this is the arguments, the progress and the report.

use crate::fly::load_inline_scene;
use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_api::batch::{parse_seeds, parse_shard, shard_from_env, shard_seeds};
use depthpilot_sim::batch::Report;
use depthpilot_types::scene::Realism;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::Write;
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
    let records = {
        let bar = StderrBar(flights_bar(seeds.len(), stderr_target(args.quiet)));
        // indicatif draws nothing when stderr is not a terminal: logs and CI get plain lines.
        let plain = !args.quiet && bar.is_hidden();
        let records = depthpilot_api::batch(&scene, &seeds, jobs, &|done, total| {
            bar.inc(1);
            if plain {
                progress_line(done, total, started);
            }
        });
        if records.is_ok() {
            bar.finish();
        }
        records
    }?;
    let wall = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.out {
        depthpilot_api::write_records(dir, &scene.name, shard, &records)?;
    }
    let report = depthpilot_api::report(&scene.name, &records)?;
    finish(args, &report, Some((wall, jobs)), shard)
}

/// Where progress bars draw: stderr, or nowhere with `--quiet`. indicatif hides a bar whose
/// stderr is not a terminal ([`ProgressBar::is_hidden`] says so).
pub(crate) fn stderr_target(quiet: bool) -> ProgressDrawTarget {
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A progress style from `template` (indicatif's keys, plus `{rate}`: items done per second
/// since the start), drawn with `=`; the default style if the template does not parse (a unit
/// test parses each of ours).
pub(crate) fn progress_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let rate = s.pos() as f64 / s.elapsed().as_secs_f64().max(1e-9);
            let _ = w.write_fmt(format_args!("{rate:.1}/s"));
        })
        .progress_chars("=> ")
}

/// A progress bar on stderr that, dropped, leaves its last state on the terminal on a line of
/// its own (indicatif leaves the cursor at its end), finished or not: what follows (the report,
/// or an error that ended the command early) starts on a fresh line. Drop it before printing to
/// stdout.
pub(crate) struct StderrBar(pub(crate) ProgressBar);

impl std::ops::Deref for StderrBar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for StderrBar {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.abandon();
        }
        if !self.0.is_hidden() {
            eprintln!();
        }
    }
}

/// The bar of a batch: flights done of `total`, mean rate, ETA.
const FLIGHTS_TEMPLATE: &str =
    "[{elapsed_precise}] [{wide_bar}] {pos}/{len} flights, {rate}, ETA {eta}";

/// The bar of a batch's `total` flights, drawn to `target`.
fn flights_bar(total: usize, target: ProgressDrawTarget) -> ProgressBar {
    ProgressBar::with_draw_target(Some(total as u64), target)
        .with_style(progress_style(FLIGHTS_TEMPLATE))
}

/// The progress of a batch whose stderr is not a terminal: a line at every tenth of the flights
/// (and the last).
fn progress_line(done: usize, total: usize, started: Instant) {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if done == total || done.is_multiple_of((total / 10).max(1)) {
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

/// A terminal that keeps what a progress bar draws (for tests).
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub(crate) struct RecordingTerm(std::sync::Arc<std::sync::Mutex<String>>);

#[cfg(test)]
impl RecordingTerm {
    /// A draw target on this terminal (always drawn, unlike a pipe).
    pub(crate) fn target(&self) -> ProgressDrawTarget {
        ProgressDrawTarget::term_like(Box::new(self.clone()))
    }

    /// Everything drawn so far, one line per drawn line.
    pub(crate) fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn push(&self, s: &str) {
        if let Ok(mut t) = self.0.lock() {
            t.push_str(s);
        }
    }
}

#[cfg(test)]
impl indicatif::TermLike for RecordingTerm {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.push(s);
        self.push("\n");
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.push(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.push("\n");
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flights_bar_shows_done_of_total_rate_and_eta_on_a_terminal() {
        let term = RecordingTerm::default();
        let bar = flights_bar(20, term.target());
        for _ in 0..20 {
            bar.inc(1);
        }
        bar.finish();
        let text = term.text();
        let last = text.lines().rfind(|l| !l.is_empty()).unwrap_or_default();
        assert!(last.contains("] 20/20 flights, "), "{text:?}");
        assert!(last.contains("/s, ETA 0s"), "{text:?}");
        assert!(last.contains("[====="), "{text:?}");
    }

    #[test]
    fn a_quiet_batch_draws_no_bar() {
        assert!(flights_bar(20, stderr_target(true)).is_hidden());
    }

    #[test]
    fn the_flights_template_parses() {
        assert!(ProgressStyle::with_template(FLIGHTS_TEMPLATE).is_ok());
    }
}
