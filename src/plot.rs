//! `depthpilot plot`: a flight log as a PNG — position against setpoint and estimate per axis,
//! attitude against the command, thrust and motor commands, and who was flying.

use crate::{EXIT_BAD_INPUT, Failure};
use anyhow::Context;
use depthpilot_runtime::recorder::{TOPIC_HEADER, TOPIC_STATE, is_mcap, read_recording};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Arguments of `depthpilot plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Flight log written by `depthpilot fly --log` (JSON Lines or MCAP).
    pub log: PathBuf,
    /// PNG to write.
    #[arg(long, default_value = "flight.png")]
    pub out: PathBuf,
    /// Image size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1400x1600", value_parser = parse_size)]
    pub size: (u32, u32),
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}`: expected WIDTHxHEIGHT"))?;
    let w: u32 = w.parse().map_err(|_| format!("`{w}` is not a width"))?;
    let h: u32 = h.parse().map_err(|_| format!("`{h}` is not a height"))?;
    if !(200..=8000).contains(&w) || !(200..=8000).contains(&h) {
        return Err(format!("`{s}`: each side must be 200..8000 pixels"));
    }
    Ok((w, h))
}

#[derive(Deserialize)]
struct Row {
    t_s: f64,
    pos_m: [f64; 3],
    rpy_rad: [f64; 3],
    setpoint_m: [f64; 3],
    estimate_m: Option<[f64; 3]>,
    cmd_roll_rad: f64,
    cmd_pitch_rad: f64,
    cmd_thrust_frac: f64,
    motors_pwm: [u16; 4],
    safety: String,
    #[serde(default)]
    measurement_age_s: Option<f64>,
    #[serde(default)]
    detection_pixels: Option<usize>,
}

/// Fonts searched, in order (Debian's fonts-dejavu-core; `scripts/setup` installs it).
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

pub(crate) fn load_font() -> Result<(), Failure> {
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no DejaVu Sans font found ({}); install fonts-dejavu-core",
                FONTS.join(", ")
            )
        })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("the DejaVu Sans font could not be loaded"))?;
    Ok(())
}

fn read_log(path: &Path) -> Result<(String, Vec<Row>), Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| bad(format!("{}: cannot read: {e}", path.display())))?;
    let (header, rows) = if is_mcap(&bytes) || crate::log_file::is_mcap_path(path) {
        read_mcap(path, &bytes)?
    } else {
        read_jsonl(path, &bytes)?
    };
    let title = format!(
        "scene `{}`, seed {}",
        header["scene"].as_str().unwrap_or("?"),
        header["seed"].as_u64().unwrap_or(0)
    );
    Ok((title, rows))
}

fn bad(msg: String) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        error: anyhow::anyhow!(msg),
    }
}

fn is_flight_header(h: &serde_json::Value) -> bool {
    h["format"] == depthpilot_runtime::recorder::LOG_FORMAT
}

fn read_jsonl(path: &Path, bytes: &[u8]) -> Result<(serde_json::Value, Vec<Row>), Failure> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| bad(format!("{}: cannot read: not text ({e})", path.display())))?;
    let mut lines = text.lines();
    let header: serde_json::Value = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .filter(is_flight_header)
        .ok_or_else(|| {
            bad(format!(
                "{}: not a depthpilot flight log (no header line)",
                path.display()
            ))
        })?;
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        match serde_json::from_str::<Row>(line) {
            Ok(r) => rows.push(r),
            // A log cut short (a killed flight) keeps everything before the broken line.
            Err(e) => {
                eprintln!(
                    "depthpilot plot: {}:{}: {e}; plotting the {} rows before it",
                    path.display(),
                    i + 2,
                    rows.len()
                );
                break;
            }
        }
    }
    if rows.is_empty() {
        return Err(bad(format!("{}: no rows to plot", path.display())));
    }
    Ok((header, rows))
}

/// An MCAP recording: the rows of `/flight/state` (a damaged chunk skipped, the rows after it
/// read; up to the cut of a killed flight or a cut file), with a warning naming what is wrong.
fn read_mcap(path: &Path, bytes: &[u8]) -> Result<(serde_json::Value, Vec<Row>), Failure> {
    let recording = read_recording(bytes);
    let mut damage = recording.damage.as_ref().map(ToString::to_string);
    let header = recording
        .topic(TOPIC_HEADER)
        .next()
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m.data).ok())
        .filter(is_flight_header);
    let Some(header) = header else {
        return Err(bad(match damage {
            Some(d) => format!("{}: {d}; no flight log to plot", path.display()),
            None => format!(
                "{}: not a depthpilot flight log (no `{TOPIC_HEADER}` message)",
                path.display()
            ),
        }));
    };
    let mut rows = Vec::new();
    for m in recording.topic(TOPIC_STATE) {
        match serde_json::from_slice::<Row>(&m.data) {
            Ok(r) => rows.push(r),
            Err(e) => {
                damage = Some(format!(
                    "a `{TOPIC_STATE}` message at {:.3} s is not a flight log row: {e}",
                    m.log_time_ns as f64 * 1e-9
                ));
                break;
            }
        }
    }
    if let (Some(skipped), Some(last)) = (recording.describe_skipped(), rows.last()) {
        eprintln!(
            "depthpilot plot: {}: {skipped}; plotting the {} rows read around it (to {:.2} s, \
             with the gap)",
            path.display(),
            rows.len(),
            last.t_s
        );
    }
    match (damage, rows.last()) {
        (Some(d), Some(last)) => eprintln!(
            "depthpilot plot: {}: {d}; plotting the {} rows read before it (to {:.2} s)",
            path.display(),
            rows.len(),
            last.t_s
        ),
        (Some(d), None) => {
            return Err(bad(format!("{}: {d}; no rows to plot", path.display())));
        }
        (None, None) => return Err(bad(format!("{}: no rows to plot", path.display()))),
        (None, Some(_)) => {}
    }
    Ok((header, rows))
}

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    t_max: f64,
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (_, _, pts) in series {
        for &(_, y) in pts {
            lo = lo.min(y);
            hi = hi.max(y);
        }
    }
    if lo.is_nan() || hi.is_nan() || lo >= hi {
        lo -= 1.0;
        hi += 1.0;
    }
    let pad = 0.08 * (hi - lo);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .draw()?;
    for (name, color, pts) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

pub fn plot(args: &PlotArgs) -> Result<(), Failure> {
    let (title, rows) = read_log(&args.log)?;
    load_font()?;
    let t_max = rows.last().map_or(1.0, |r| r.t_s).max(1e-3);
    let root = BitMapBackend::new(&args.out, args.size).into_drawing_area();
    root.fill(&WHITE).context("drawing")?;
    let root = root
        .titled(&format!("depthpilot flight — {title}"), ("sans-serif", 28))
        .context("drawing")?;
    let panels = root.split_evenly((6, 1));
    let axis_names = ["x", "y", "z"];
    for (k, area) in panels.iter().take(3).enumerate() {
        let truth: Vec<(f64, f64)> = rows.iter().map(|r| (r.t_s, r.pos_m[k])).collect();
        let sp: Vec<(f64, f64)> = rows.iter().map(|r| (r.t_s, r.setpoint_m[k])).collect();
        let est: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.estimate_m.map(|e| (r.t_s, e[k])))
            .collect();
        panel(
            area,
            &format!("{} position", axis_names[k]),
            "m",
            t_max,
            &[
                ("setpoint", RGBColor(120, 120, 120), sp),
                ("estimate", RGBColor(230, 140, 0), est),
                ("truth", RGBColor(20, 90, 200), truth),
            ],
        )?;
    }
    let deg = |r: f64| r.to_degrees();
    panel(
        &panels[3],
        "attitude",
        "deg",
        t_max,
        &[
            (
                "roll",
                RGBColor(200, 40, 40),
                rows.iter().map(|r| (r.t_s, deg(r.rpy_rad[0]))).collect(),
            ),
            (
                "roll command",
                RGBColor(240, 150, 150),
                rows.iter().map(|r| (r.t_s, deg(r.cmd_roll_rad))).collect(),
            ),
            (
                "pitch",
                RGBColor(30, 140, 60),
                rows.iter().map(|r| (r.t_s, deg(r.rpy_rad[1]))).collect(),
            ),
            (
                "pitch command",
                RGBColor(140, 210, 150),
                rows.iter().map(|r| (r.t_s, deg(r.cmd_pitch_rad))).collect(),
            ),
            (
                "yaw",
                RGBColor(110, 60, 170),
                rows.iter().map(|r| (r.t_s, deg(r.rpy_rad[2]))).collect(),
            ),
        ],
    )?;
    let safety_marks: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            let level = match r.safety.as_str() {
                "tracking" | "landed" => 0.0,
                "acquiring" => 0.25,
                "holding" => 0.5,
                "landing" => 0.75,
                _ => 1.0,
            };
            (r.t_s, 65535.0 * level)
        })
        .collect();
    panel(
        &panels[4],
        "thrust and motors (raw PWM); grey steps: controller state (tracking 0, acquiring ¼, holding ½, landing ¾, cut/idle 1)",
        "raw",
        t_max,
        &[
            (
                "thrust command",
                RGBColor(0, 0, 0),
                rows.iter()
                    .map(|r| (r.t_s, r.cmd_thrust_frac * 65535.0))
                    .collect(),
            ),
            (
                "M1",
                RGBColor(200, 40, 40),
                rows.iter()
                    .map(|r| (r.t_s, f64::from(r.motors_pwm[0])))
                    .collect(),
            ),
            (
                "M2",
                RGBColor(30, 140, 60),
                rows.iter()
                    .map(|r| (r.t_s, f64::from(r.motors_pwm[1])))
                    .collect(),
            ),
            (
                "M3",
                RGBColor(20, 90, 200),
                rows.iter()
                    .map(|r| (r.t_s, f64::from(r.motors_pwm[2])))
                    .collect(),
            ),
            (
                "M4",
                RGBColor(230, 140, 0),
                rows.iter()
                    .map(|r| (r.t_s, f64::from(r.motors_pwm[3])))
                    .collect(),
            ),
            ("controller state", RGBColor(150, 150, 150), safety_marks),
        ],
    )?;
    let age: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.measurement_age_s.map(|a| (r.t_s, a * 1e3)))
        .collect();
    let pixels: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.t_s, r.detection_pixels.map_or(0.0, |p| p as f64 / 10.0)))
        .collect();
    let mut quality: Vec<Series<'_>> = vec![(
        "measurement age (ms): capture to now",
        RGBColor(20, 90, 200),
        age,
    )];
    if rows.iter().any(|r| r.detection_pixels.is_some()) {
        quality.push((
            "detected blob (pixels / 10; 0 = no detection)",
            RGBColor(30, 140, 60),
            pixels,
        ));
    }
    panel(
        &panels[5],
        "sensing: latency and detection quality",
        "",
        t_max,
        &quality,
    )?;
    root.present()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "depthpilot plot: wrote {} ({} rows, {:.1} s)",
        args.out.display(),
        rows.len(),
        t_max
    );
    Ok(())
}
