//! `depthpilot matrix`: the degraded-sensing matrix (issue 19). Every architecture × manoeuvre ×
//! degradation is a scene generated from a Kinect base scene and flown over the seeds; one table
//! (stdout, and `matrix.md` / `matrix.json` in `--out`) and a heat-map PNG. The cells and their
//! scoring are `depthpilot_api::matrix`'s; this is the arguments, the progress and the files.

use crate::Failure;
use crate::batch::{StderrBar, progress_style, stderr_target};
use crate::fly::load_inline_scene;
use anyhow::Context;
use depthpilot_api::batch::parse_seeds;
use depthpilot_api::matrix::{
    Arch, Cell, CellFlight, CellReport, Degradation, Manoeuvre, TARGET_MAX_ERROR_M,
    TARGET_TRACK_GAP_S,
};
use depthpilot_types::scene::Realism;
use indicatif::ProgressBar;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `depthpilot matrix`.
#[derive(clap::Args, Debug)]
pub struct MatrixArgs {
    /// The base scene: a Kinect scene (camera, quad, controller, realism), e.g.
    /// scenes/hover_kinect.ron. Each cell replaces its trajectory, duration, architecture and
    /// faults.
    pub scene: PathBuf,
    /// Seeds per cell, as A..B (B excluded).
    #[arg(long, default_value = "0..50", value_parser = parse_seeds)]
    pub seeds: (u64, u64),
    /// Parallel flights (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Architectures, comma-separated: offboard, onboard.
    #[arg(long, value_delimiter = ',', value_parser = parse_arch, default_value = "offboard,onboard")]
    pub arch: Vec<Arch>,
    /// Manoeuvres, comma-separated: hover, steps, figure8.
    #[arg(long, value_delimiter = ',', value_parser = parse_manoeuvre, default_value = "hover,steps,figure8")]
    pub manoeuvres: Vec<Manoeuvre>,
    /// Degradations, comma-separated, by name (none, collapse-2hz, collapse-4hz, collapse-8hz,
    /// drops-10pct, drops-30pct, blackout-0.5s, blackout-1s, jitter-30ms, combined-4hz);
    /// default: all.
    #[arg(long, value_delimiter = ',', value_parser = parse_degradation)]
    pub degradations: Vec<Degradation>,
    /// The realism layer for every cell, replacing the base scene's: `Ideal`, `Bench`, or a
    /// preset with overrides (as `batch --realism`).
    #[arg(long, value_name = "SPEC", value_parser = Realism::parse_spec)]
    pub realism: Option<Realism>,
    /// Write here: scenes/<cell>.ron (each cell, replayable with `fly`), matrix.md, matrix.json
    /// (with every flight) and heatmap.png.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only the table (no progress).
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    Arch::ALL
        .into_iter()
        .find(|a| a.name() == s)
        .ok_or_else(|| format!("unknown architecture `{s}` (offboard, onboard)"))
}

fn parse_manoeuvre(s: &str) -> Result<Manoeuvre, String> {
    Manoeuvre::ALL
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| format!("unknown manoeuvre `{s}` (hover, steps, figure8)"))
}

fn parse_degradation(s: &str) -> Result<Degradation, String> {
    Degradation::ALL
        .into_iter()
        .find(|d| d.name() == s)
        .ok_or_else(|| {
            let names: Vec<String> = Degradation::ALL.iter().map(|d| d.name()).collect();
            format!("unknown degradation `{s}` ({})", names.join(", "))
        })
}

pub fn matrix(args: &MatrixArgs) -> Result<(), Failure> {
    let mut base = load_inline_scene(&args.scene)?;
    if let Some(r) = &args.realism {
        base.realism = r.clone();
    }
    let degradations = if args.degradations.is_empty() {
        Degradation::ALL.to_vec()
    } else {
        args.degradations.clone()
    };
    let cells = Cell::all(&args.arch, &args.manoeuvres, &degradations);
    let scenes = cells
        .iter()
        .map(|c| c.scene(&base))
        .collect::<Result<Vec<_>, _>>()?;
    let seeds: Vec<u64> = (args.seeds.0..args.seeds.1).collect();
    let jobs = args
        .jobs
        .unwrap_or_else(depthpilot_api::default_jobs)
        .clamp(1, 256);
    if let Some(dir) = &args.out {
        let scene_dir = dir.join("scenes");
        std::fs::create_dir_all(&scene_dir)
            .with_context(|| format!("creating {}", scene_dir.display()))?;
        for (cell, scene) in cells.iter().zip(&scenes) {
            let path = scene_dir.join(format!("{}.ron", cell.name()));
            std::fs::write(&path, cell.ron(scene)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let total = cells.len() * seeds.len();
    let started = Instant::now();
    let mut reports = Vec::with_capacity(cells.len());
    let mut flights: Vec<(String, Vec<CellFlight>)> = Vec::with_capacity(cells.len());
    {
        let bar = StderrBar(
            ProgressBar::with_draw_target(Some(total as u64), stderr_target(args.quiet))
                .with_style(progress_style(
                    "[{elapsed_precise}] [{wide_bar}] {pos}/{len} flights, {rate}, ETA {eta} {msg}",
                )),
        );
        let plain = !args.quiet && bar.is_hidden();
        for (i, (cell, scene)) in cells.iter().zip(&scenes).enumerate() {
            bar.set_message(cell.name());
            let (report, f) =
                depthpilot_api::matrix::fly_cell(*cell, scene, &seeds, jobs, &|| bar.inc(1))?;
            if plain {
                eprintln!(
                    "cell {}/{} {}: max {:.3} m, {} crashed, {:.0} s",
                    i + 1,
                    cells.len(),
                    cell.name(),
                    report.max_error_m,
                    report.crashes,
                    started.elapsed().as_secs_f64()
                );
            }
            reports.push(report);
            flights.push((cell.name(), f));
        }
        bar.finish();
    }
    let wall = started.elapsed().as_secs_f64();
    let table = table(&reports, &args.seeds, wall, jobs);
    print!("{table}");
    if let Some(dir) = &args.out {
        let md = dir.join("matrix.md");
        std::fs::write(&md, &table).with_context(|| format!("writing {}", md.display()))?;
        let json = serde_json::json!({
            "base_scene": args.scene,
            "seeds": [args.seeds.0, args.seeds.1],
            "wall_seconds": wall,
            "jobs": jobs,
            "targets": {"max_error_m": TARGET_MAX_ERROR_M, "track_gap_s": TARGET_TRACK_GAP_S},
            "cells": reports,
            "flights": flights.iter().map(|(n, f)| serde_json::json!({"cell": n, "flights": f}))
                .collect::<Vec<_>>(),
        });
        let path = dir.join("matrix.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&json).context("serialising")?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
        let png = dir.join("heatmap.png");
        heatmap(&reports, &png)?;
        eprintln!(
            "wrote {} cell scenes, {}, {} and {}",
            cells.len(),
            md.display(),
            path.display(),
            png.display()
        );
    }
    let missed = reports
        .iter()
        .filter(|r| r.in_envelope && !r.meets_target)
        .count();
    if missed > 0 {
        eprintln!(
            "{missed} cell(s) inside the envelope miss the target (0 crashes, max ≤ {} m, track \
             back ≤ {} s)",
            TARGET_MAX_ERROR_M, TARGET_TRACK_GAP_S
        );
    }
    Ok(())
}

/// The table, in Markdown: one line per cell.
fn table(reports: &[CellReport], seeds: &(u64, u64), wall_s: f64, jobs: usize) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Degraded-sensing matrix: seeds {}..{} per cell, {} flights in {:.0} s on {} jobs.\n\
         Error: distance from the path after take-off. Track gap: the longest time without a \
         fused measurement after frames returned.\n\
         Target inside the envelope (rate ≥ 4 Hz, drops ≤ 30 %, blackouts ≤ 1 s): 0 crashes, \
         max ≤ {:.2} m, track back ≤ {:.1} s.\n",
        seeds.0,
        seeds.1,
        reports.iter().map(|r| r.flights).sum::<usize>(),
        wall_s,
        jobs,
        TARGET_MAX_ERROR_M,
        TARGET_TRACK_GAP_S
    );
    let _ = writeln!(
        t,
        "| architecture | manoeuvre | degradation | crashes | landed | p95 error (m) | max error (m) | worst seed | track gap (s) | target |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let verdict = match (r.in_envelope, r.meets_target) {
            (false, _) => "(outside)",
            (true, true) => "met",
            (true, false) => "MISSED",
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {}/{} | {}/{} | {:.3} | {:.3} | {} | {:.2} | {} |",
            r.cell.arch.name(),
            r.cell.manoeuvre.name(),
            r.cell.degradation.name(),
            r.crashes,
            r.flights,
            r.landed,
            r.flights,
            r.p95_error_m,
            r.max_error_m,
            r.worst_seed,
            r.max_track_gap_s,
            verdict
        );
    }
    t
}

/// Colour of a max error: green up to the target, through yellow, to red at 3× the target.
fn colour(max_m: f64) -> RGBColor {
    let u = ((max_m / TARGET_MAX_ERROR_M - 0.5) / 2.5).clamp(0.0, 1.0);
    let (r, g) = if u < 0.5 {
        (2.0 * u, 1.0)
    } else {
        (1.0, 2.0 * (1.0 - u))
    };
    RGBColor((60.0 + 190.0 * r) as u8, (60.0 + 170.0 * g) as u8, 70)
}

/// The heat-map: a row per architecture × manoeuvre, a column per degradation, coloured by the
/// max error, each cell labelled with max / p95 (cm), crashes, and the track gap.
fn heatmap(reports: &[CellReport], path: &Path) -> Result<(), Failure> {
    crate::plot::load_font()?;
    let mut rows: Vec<(Arch, Manoeuvre)> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    for r in reports {
        if !rows.contains(&(r.cell.arch, r.cell.manoeuvre)) {
            rows.push((r.cell.arch, r.cell.manoeuvre));
        }
        if !cols.contains(&r.cell.degradation.name()) {
            cols.push(r.cell.degradation.name());
        }
    }
    let (cw, ch, left, top) = (150u32, 78u32, 170u32, 70u32);
    let size = (
        left + cw * cols.len() as u32 + 10,
        top + ch * rows.len() as u32 + 50,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| Failure {
        code: 1,
        error: anyhow::anyhow!("drawing {}: {e}", path.display()),
    };
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let font = |px: u32| ("sans-serif", px).into_font();
    root.draw(&Text::new(
        "max error from the path (colour; green ≤ target), p95, crashes, track gap",
        (10, 10),
        font(18),
    ))
    .map_err(|e| err(&e))?;
    for (j, c) in cols.iter().enumerate() {
        let x = (left + cw * j as u32 + 6) as i32;
        root.draw(&Text::new(c.clone(), (x, (top - 26) as i32), font(15)))
            .map_err(|e| err(&e))?;
    }
    for (i, (a, m)) in rows.iter().enumerate() {
        let y = (top + ch * i as u32) as i32;
        root.draw(&Text::new(
            format!("{} {}", a.name(), m.name()),
            (8, y + ch as i32 / 2 - 8),
            font(16),
        ))
        .map_err(|e| err(&e))?;
        for (j, c) in cols.iter().enumerate() {
            let Some(r) = reports.iter().find(|r| {
                r.cell.arch == *a && r.cell.manoeuvre == *m && r.cell.degradation.name() == *c
            }) else {
                continue;
            };
            let x = (left + cw * j as u32) as i32;
            let fill = if r.crashes > 0 {
                RGBColor(120, 20, 30)
            } else {
                colour(r.max_error_m)
            };
            root.draw(&Rectangle::new(
                [(x + 1, y + 1), (x + cw as i32 - 1, y + ch as i32 - 1)],
                fill.filled(),
            ))
            .map_err(|e| err(&e))?;
            if !r.in_envelope {
                root.draw(&Rectangle::new(
                    [(x + 3, y + 3), (x + cw as i32 - 3, y + ch as i32 - 3)],
                    ShapeStyle::from(&RGBColor(90, 90, 90)).stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
            }
            let ink = if r.crashes > 0 { WHITE } else { BLACK };
            let lines = [
                format!("max {:.0} cm", r.max_error_m * 100.0),
                format!("p95 {:.0} cm", r.p95_error_m * 100.0),
                format!("{} crash, gap {:.2} s", r.crashes, r.max_track_gap_s),
            ];
            for (k, l) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    l.clone(),
                    (x + 8, y + 6 + 23 * k as i32),
                    font(15).color(&ink),
                ))
                .map_err(|e| err(&e))?;
            }
        }
    }
    root.draw(&Text::new(
        "grey frame: outside the envelope (2 Hz collapses); dark red: a crash",
        (10, (top + ch * rows.len() as u32 + 16) as i32),
        font(15),
    ))
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
