//! Monte Carlo over seeds: one flight per seed in parallel, sliceable into shards for a
//! scheduler (Slurm array jobs, Kubernetes Indexed Jobs), written as JSON lines and merged.
//! A flight depends on its seed alone, so a batch gives the same report however it is sliced.

use crate::{Error, prepare_jobs};
use depthpilot_sim::batch::{FlightRecord, Report, fly_seed};
use depthpilot_types::Scene;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A seed range `A..B` (B excluded), e.g. `0..200`.
pub fn parse_seeds(s: &str) -> Result<(u64, u64), Error> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| Error::BadInput(format!("`{s}`: expected A..B, e.g. 0..200")))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| Error::BadInput(format!("`{a}` is not a seed number")))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| Error::BadInput(format!("`{b}` is not a seed number")))?;
    if b <= a {
        return Err(Error::BadInput(format!(
            "`{s}`: the range is empty (B must be greater than A)"
        )));
    }
    Ok((a, b))
}

/// A shard `K/N`: slice K (0-based) of N.
pub fn parse_shard(s: &str) -> Result<(usize, usize), Error> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| Error::BadInput(format!("`{s}`: expected K/N, e.g. 0/4")))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| Error::BadInput(format!("`{k}` is not a shard index")))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| Error::BadInput(format!("`{n}` is not a shard count")))?;
    if n == 0 || k >= n {
        return Err(Error::BadInput(format!("`{s}`: need 0 <= K < N")));
    }
    Ok((k, n))
}

/// The shard from the flag, else from a scheduler's environment: `SLURM_ARRAY_TASK_ID` and
/// `SLURM_ARRAY_TASK_COUNT`, or Kubernetes' `JOB_COMPLETION_INDEX` with `DEPTHPILOT_SHARDS`.
pub fn shard_from_env(flag: Option<(usize, usize)>) -> Result<Option<(usize, usize)>, Error> {
    if flag.is_some() {
        return Ok(flag);
    }
    let var = |name: &str| std::env::var(name).ok();
    if let (Some(k), Some(n)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
        return parse_shard(&format!("{k}/{n}")).map(Some);
    }
    if let Some(k) = var("JOB_COMPLETION_INDEX") {
        let n = var("DEPTHPILOT_SHARDS").ok_or_else(|| {
            Error::BadInput(
                "JOB_COMPLETION_INDEX is set but DEPTHPILOT_SHARDS (the number of completions) \
                 is not"
                    .to_string(),
            )
        })?;
        return parse_shard(&format!("{k}/{n}")).map(Some);
    }
    Ok(None)
}

/// The seeds of `range` (A..B, B excluded) in `shard` K/N: those with `seed % N == K` (all of
/// them without a shard).
pub fn shard_seeds(range: (u64, u64), shard: Option<(usize, usize)>) -> Vec<u64> {
    (range.0..range.1)
        .filter(|s| shard.is_none_or(|(k, n)| (*s % n as u64) as usize == k))
        .collect()
}

/// Flies `scene` once per seed, `jobs` flights at a time (clamped to 1..=256; parallel
/// flights that fill the cores turn the camera thread off), and returns the records sorted by
/// seed. `progress(done, total)` is called after each flight, from the worker threads.
pub fn batch(
    scene: &Scene,
    seeds: &[u64],
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<FlightRecord>, Error> {
    let mut records = per_seed(seeds, jobs, &|seed| fly_seed(scene, seed), progress)
        .map_err(|(seed, e)| Error::BadInput(format!("seed {seed}: {e}")))?;
    records.sort_by_key(|r| r.seed);
    Ok(records)
}

/// Runs `fly(seed)` for every seed, `jobs` at a time (see [`batch`] for the clamp and the camera
/// thread), and returns the results in the order of `seeds`, or the first failure with its
/// seed. `progress(done, total)` is called after each one, from the worker threads.
pub(crate) fn per_seed<T: Send, E: Send>(
    seeds: &[u64],
    jobs: usize,
    fly: &(dyn Fn(u64) -> Result<T, E> + Sync),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<T>, (u64, E)> {
    let jobs = prepare_jobs(jobs);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<T>>> = seeds.iter().map(|_| Mutex::new(None)).collect();
    let first_error: Mutex<Option<(u64, E)>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    match fly(seed) {
                        Ok(r) => {
                            if let Ok(mut slot) = results[i].lock() {
                                *slot = Some(r);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert((seed, e));
                            }
                        }
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(d, seeds.len());
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    // A worker that panicked propagates out of the scope; every slot is filled here.
    Ok(results
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect())
}

/// The aggregate report of a batch's records; no records is [`Error::BadInput`].
pub fn report(scene_name: &str, records: &[FlightRecord]) -> Result<Report, Error> {
    Report::from_records(scene_name, records)
        .ok_or_else(|| Error::BadInput("no seeds in this slice".to_string()))
}

/// Writes the records as JSON lines to `DIR/<scene>.shard-K-of-N.jsonl` (0-of-1 without a
/// shard), creating DIR; returns the file's path.
pub fn write_records(
    dir: &Path,
    scene_name: &str,
    shard: Option<(usize, usize)>,
    records: &[FlightRecord],
) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let (k, n) = shard.unwrap_or((0, 1));
    let path = dir.join(format!("{scene_name}.shard-{k}-of-{n}.jsonl"));
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r)
            .map_err(|e| Error::Failed(format!("serialising a flight record: {e}")))?;
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&path, text)
        .map_err(|e| Error::Failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// All flight records in DIR's `*.jsonl` files (in file-name order), and the scene name from
/// the first file's name.
pub fn read_records(dir: &Path) -> Result<(String, Vec<FlightRecord>), Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::reading(dir, &e, format!("{}: cannot read: {e}", dir.display())))?;
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
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Error::reading(&file, &e, format!("{}: cannot read: {e}", file.display()))
        })?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: FlightRecord = serde_json::from_str(line).map_err(|e| {
                Error::BadInput(format!(
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

/// The report of the records the shards wrote to DIR; none is [`Error::BadInput`].
pub fn merge(dir: &Path) -> Result<Report, Error> {
    let (scene, records) = read_records(dir)?;
    Report::from_records(&scene, &records).ok_or_else(|| {
        Error::BadInput(format!(
            "{}: no flight records (*.jsonl) found",
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_scene;
    use crate::tests::{scene_path, temp_dir};

    #[test]
    fn seed_and_shard_syntax() {
        assert_eq!(parse_seeds("0..200").ok(), Some((0, 200)));
        let e = parse_seeds("5..5").expect_err("empty");
        assert!(matches!(e, Error::BadInput(_)));
        assert!(e.to_string().contains("range is empty"), "{e}");
        assert!(parse_seeds("a..b").is_err());
        assert!(parse_seeds("10").is_err());
        assert_eq!(parse_shard("3/8").ok(), Some((3, 8)));
        assert!(parse_shard("8/8").is_err());
        assert!(parse_shard("1/0").is_err());
        assert_eq!(shard_seeds((0, 7), Some((1, 3))), vec![1, 4]);
        assert_eq!(shard_seeds((2, 5), None), vec![2, 3, 4]);
    }

    #[test]
    fn a_batch_is_fly_seed_per_seed_whatever_the_jobs() {
        let scene = load_scene(&scene_path("hover.ron")).expect("hover");
        let seeds = [4, 0, 2];
        let calls = AtomicUsize::new(0);
        let one = batch(&scene, &seeds, 1, &|_, total| {
            assert_eq!(total, 3);
            calls.fetch_add(1, Ordering::Relaxed);
        })
        .expect("batch");
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        let two = batch(&scene, &seeds, 2, &|_, _| {}).expect("batch");
        let direct: Vec<FlightRecord> = [0, 2, 4]
            .iter()
            .map(|&s| fly_seed(&scene, s).expect("fly"))
            .collect();
        assert_eq!(one, direct);
        assert_eq!(two, direct);
    }

    #[test]
    fn merged_records_give_the_direct_report() {
        let scene = load_scene(&scene_path("hover.ron")).expect("hover");
        let records: Vec<FlightRecord> = [0, 1, 2]
            .iter()
            .map(|&s| fly_seed(&scene, s).expect("fly"))
            .collect();
        let direct = report(&scene.name, &records).expect("report");
        let dir = temp_dir("merge");
        let a = write_records(&dir, &scene.name, Some((0, 2)), &records[..1]).expect("write");
        write_records(&dir, &scene.name, Some((1, 2)), &records[1..]).expect("write");
        assert_eq!(a, dir.join("hover.shard-0-of-2.jsonl"));
        assert_eq!(merge(&dir).expect("merge"), direct);
        assert_eq!(direct.flights, 3);
    }

    #[test]
    fn bad_records_are_bad_input_and_a_missing_dir_not_found() {
        let dir = temp_dir("bad-records");
        std::fs::write(dir.join("x.shard-0-of-1.jsonl"), "{\"seed\": \"oops\"}\n").expect("w");
        let e = merge(&dir).expect_err("bad line");
        assert!(matches!(e, Error::BadInput(_)), "{e:?}");
        assert!(e.to_string().contains("x.shard-0-of-1.jsonl:1"), "{e}");
        let empty = temp_dir("no-records");
        let e = merge(&empty).expect_err("empty");
        assert!(e.to_string().contains("no flight records"), "{e}");
        let missing = Path::new("/nonexistent/depthpilot-shards");
        match merge(missing) {
            Err(Error::NotFound { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert!(matches!(report("x", &[]), Err(Error::BadInput(_))));
    }
}
