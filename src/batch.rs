//! `depthpilot batch`: Monte Carlo over seeds, in parallel, sliceable into shards for a scheduler
//! (Slurm array jobs, Kubernetes Indexed Jobs), and mergeable.

use crate::fly::load_inline_scene;
use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_sim::batch::{FlightRecord, Report, fly_seed};
use depthpilot_types::scene::{ControllerConfig, Realism, parse_ron};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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

fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected A..B, e.g. 0..200"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not a seed number"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not a seed number"))?;
    if b <= a {
        return Err(format!(
            "`{s}`: the range is empty (B must be greater than A)"
        ));
    }
    Ok((a, b))
}

pub(crate) fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 0/4"))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| format!("`{k}` is not a shard index"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a shard count"))?;
    if n == 0 || k >= n {
        return Err(format!("`{s}`: need 0 <= K < N"));
    }
    Ok((k, n))
}

/// The shard from the flag, else from a scheduler's environment.
pub(crate) fn shard_from_env(
    flag: Option<(usize, usize)>,
) -> Result<Option<(usize, usize)>, String> {
    if flag.is_some() {
        return Ok(flag);
    }
    let var = |name: &str| std::env::var(name).ok();
    if let (Some(k), Some(n)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
        return parse_shard(&format!("{k}/{n}")).map(Some);
    }
    if let Some(k) = var("JOB_COMPLETION_INDEX") {
        let n = var("DEPTHPILOT_SHARDS").ok_or(
            "JOB_COMPLETION_INDEX is set but DEPTHPILOT_SHARDS (the number of completions) is not",
        )?;
        return parse_shard(&format!("{k}/{n}")).map(Some);
    }
    Ok(None)
}

fn bad(msg: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::anyhow!("{msg}"),
    }
}

pub fn batch(args: &BatchArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.merge {
        let records = read_records(dir)?;
        let scene = records.0.clone();
        let report = Report::from_records(&scene, &records.1).ok_or_else(|| {
            bad(format!(
                "{}: no flight records (*.jsonl) found",
                dir.display()
            ))
        })?;
        return finish(args, &report, None, None);
    }
    let path = args
        .scene
        .as_ref()
        .ok_or_else(|| bad("a scene file is needed"))?;
    let mut scene = load_inline_scene(path)?;
    if let Some(r) = &args.realism {
        scene.realism = r.clone();
    }
    if let Some(file) = &args.controller_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| bad(format!("{}: cannot read: {e}", file.display())))?;
        scene.controller = parse_ron::<ControllerConfig>(&text, file).map_err(bad)?;
    }
    let shard = shard_from_env(args.shard).map_err(bad)?;
    let seeds: Vec<u64> = (args.seeds.0..args.seeds.1)
        .filter(|s| shard.is_none_or(|(k, n)| (*s % n as u64) as usize == k))
        .collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    // Parallel flights that fill the cores leave none for each one's camera thread.
    depthpilot_sim::set_camera_thread(depthpilot_sim::camera_thread_pays(jobs));
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<FlightRecord>> = Mutex::new(Vec::with_capacity(seeds.len()));
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let show = !args.quiet;
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    match fly_seed(&scene, seed) {
                        Ok(r) => {
                            if let Ok(mut v) = results.lock() {
                                v.push(r);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert(format!("seed {seed}: {e}"));
                            }
                        }
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if show {
                        progress(d, seeds.len(), started, tty);
                    }
                }
            });
        }
    });
    if show && tty {
        eprintln!();
    }
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(bad(e));
    }
    let mut records = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    records.sort_by_key(|r| r.seed);
    let wall = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.out {
        write_records(dir, &scene.name, shard, &records)?;
    }
    let report =
        Report::from_records(&scene.name, &records).ok_or_else(|| bad("no seeds in this slice"))?;
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

fn write_records(
    dir: &Path,
    scene: &str,
    shard: Option<(usize, usize)>,
    records: &[FlightRecord],
) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (k, n) = shard.unwrap_or((0, 1));
    let path = dir.join(format!("{scene}.shard-{k}-of-{n}.jsonl"));
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r).context("serialising a flight record")?;
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// All flight records in DIR's *.jsonl files, and the scene name from their file names.
fn read_records(dir: &Path) -> Result<(String, Vec<FlightRecord>), Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad(format!("{}: cannot read: {e}", dir.display())))?;
    let mut records = Vec::new();
    let mut scene = String::new();
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for file in files {
        if scene.is_empty() {
            scene = file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split(".shard-").next())
                .unwrap_or_default()
                .to_string();
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| bad(format!("{}: cannot read: {e}", file.display())))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: FlightRecord = serde_json::from_str(line).map_err(|e| {
                bad(format!(
                    "{}:{}: not a flight record: {e}",
                    file.display(),
                    i + 1
                ))
            })?;
            records.push(r);
        }
    }
    Ok((scene, records))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_shard_syntax() {
        assert_eq!(parse_seeds("0..200"), Ok((0, 200)));
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("a..b").is_err());
        assert!(parse_seeds("10").is_err());
        assert_eq!(parse_shard("3/8"), Ok((3, 8)));
        assert!(parse_shard("8/8").is_err());
        assert!(parse_shard("1/0").is_err());
    }
}
