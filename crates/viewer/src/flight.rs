//! A flight log read for viewing: its rows (MCAP from `depthpilot fly --log x.mcap`, or JSON
//! Lines), the scene it flew, and what was wrong with the file if it was damaged. Reading is
//! forgiving: a truncated file gives the rows before the cut, a damaged chunk is skipped (the
//! rows after it are read), each with a warning; only a file with no readable row at all is an
//! error.

use depthpilot_runtime::recorder::{
    LOG_FORMAT, TOPIC_HEADER, TOPIC_STATE, is_mcap, read_recording,
};
use depthpilot_types::Scene;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One `/flight/state` row (`depthpilot_sim::LogRow`), owned. Fields a log may lack default.
#[derive(Clone, Debug, Deserialize)]
pub struct Row {
    pub t_s: f64,
    pub pos_m: [f64; 3],
    #[serde(default)]
    pub rpy_rad: [f64; 3],
    #[serde(default)]
    pub setpoint_m: [f64; 3],
    #[serde(default)]
    pub estimate_m: Option<[f64; 3]>,
    #[serde(default)]
    pub cmd_thrust_frac: f64,
    #[serde(default)]
    pub motors_pwm: [u16; 4],
    #[serde(default)]
    pub safety: String,
    #[serde(default)]
    pub firmware: String,
    #[serde(default)]
    pub mux_sources: Option<[String; 4]>,
    #[serde(default)]
    pub measurement_age_s: Option<f64>,
    #[serde(default)]
    pub detection_pixels: Option<usize>,
}

/// A flight log, read.
#[derive(Clone, Debug)]
pub struct Flight {
    pub path: PathBuf,
    /// The header's scene name (`?` if the log has no header).
    pub scene_name: String,
    /// The scene, if found (`--scene`, or `scenes/<name>.ron` near the log or the binary).
    pub scene: Option<Scene>,
    /// In time order, at least one.
    pub rows: Vec<Row>,
    /// What was wrong with the file or the scene lookup, one sentence each (the file is still
    /// shown).
    pub warnings: Vec<String>,
    /// A camera session (`depthpilot record`): the recorded depth frames, by time, which the
    /// depth panel shows instead of re-rendering.
    pub frames: Option<Vec<(f64, depthpilot_vision::DepthFrame)>>,
}

/// Why a log cannot be shown at all.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Reads `path`; `scene_path` overrides the scene lookup.
pub fn load(path: &Path, scene_path: Option<&Path>) -> Result<Flight, LoadError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| LoadError(format!("{shown}: cannot read: {e}")))?;
    let mut warnings = Vec::new();
    if is_mcap(&bytes) && is_camera_session(&bytes) {
        return load_session(path, scene_path, warnings);
    }
    let (header, rows) = if is_mcap(&bytes) {
        read_mcap(path, &bytes, &mut warnings)?
    } else {
        read_jsonl(path, &bytes, &mut warnings)?
    };
    let scene_name = header
        .as_ref()
        .and_then(|h| h["scene"].as_str())
        .unwrap_or("?")
        .to_string();
    let scene = match scene_path {
        Some(p) => {
            Some(Scene::load(p).map_err(|e| LoadError(format!("--scene {}: {e}", p.display())))?)
        }
        None => find_scene(path, &scene_name, &mut warnings),
    };
    Ok(Flight {
        path: path.to_path_buf(),
        scene_name,
        scene,
        rows,
        warnings,
        frames: None,
    })
}

/// An MCAP file with the camera session's frame channel.
fn is_camera_session(bytes: &[u8]) -> bool {
    let topic = depthpilot_camera::session::TOPIC_SESSION_FRAME.as_bytes();
    bytes.windows(topic.len()).take(1 << 20).any(|w| w == topic)
}

/// A camera session as a "flight": the detected positions are the rows (the quad where the
/// camera saw it; the previous one while it saw nothing), the recorded frames go to the depth
/// panel, and the camera stands where the session's header says, with the frames' intrinsics.
fn load_session(
    path: &Path,
    scene_path: Option<&Path>,
    mut warnings: Vec<String>,
) -> Result<Flight, LoadError> {
    use depthpilot_types::scene::{CameraIntrinsics, Sensing};
    let shown = path.display();
    let session =
        depthpilot_camera::session::read_session(path).map_err(|e| LoadError(e.to_string()))?;
    if let Some(d) = &session.damage {
        warnings.push(format!("{shown}: {d}; showing what was read"));
    }
    let Some(first) = session.frames.first().map(|(t, _)| *t) else {
        return Err(LoadError(format!(
            "{shown}: a camera session without frames"
        )));
    };
    let t_of = |ns: u64| ns.saturating_sub(first) as f64 * 1e-9;
    let detections: std::collections::HashMap<u64, _> = session
        .detections
        .iter()
        .map(|(_, d)| (d.frame_seq, d.clone()))
        .collect();
    let mut rows = Vec::new();
    let mut last: Option<[f64; 3]> = None;
    for (ns, f) in &session.frames {
        let found = detections
            .get(&f.header.seq)
            .and_then(|d| d.pos_m.filter(|_| d.found));
        if found.is_some() {
            last = found;
        }
        let Some(pos) = found.or(last) else { continue };
        rows.push(Row {
            t_s: t_of(*ns),
            pos_m: pos,
            rpy_rad: [0.0; 3],
            setpoint_m: pos,
            estimate_m: found,
            cmd_thrust_frac: 0.0,
            motors_pwm: [0; 4],
            safety: if found.is_some() { "seen" } else { "not seen" }.to_string(),
            firmware: "camera session".to_string(),
            mux_sources: None,
            measurement_age_s: None,
            detection_pixels: detections.get(&f.header.seq).and_then(|d| d.pixels),
        });
    }
    if rows.is_empty() {
        return Err(LoadError(format!(
            "{shown}: the camera never saw the quad in this session ({} frames): nothing to place in 3D",
            session.frames.len()
        )));
    }
    let header = session.header.clone();
    let scene_name = header.as_ref().map_or("?".to_string(), |h| h.scene.clone());
    let mut scene = match scene_path {
        Some(p) => {
            Some(Scene::load(p).map_err(|e| LoadError(format!("--scene {}: {e}", p.display())))?)
        }
        None => find_scene(path, &scene_name, &mut warnings),
    };
    // The camera where the session says it stood, with the device's own intrinsics.
    if let (Some(scene), Some(h)) = (&mut scene, &header)
        && let Sensing::Kinect(k) = &mut scene.sensing
    {
        let v = |a: [f64; 3]| depthpilot_types::Vec3::new(a[0], a[1], a[2]);
        k.position_m = v(h.camera_position_m);
        k.look_at_m = v(h.camera_look_at_m);
        k.up_hint = v(h.camera_up_hint);
        k.intrinsics = CameraIntrinsics::Custom(session.frames[0].1.intrinsics);
    }
    let frames = session
        .frames
        .into_iter()
        .map(|(ns, f)| (t_of(ns), f.frame))
        .collect();
    Ok(Flight {
        path: path.to_path_buf(),
        scene_name,
        scene,
        rows,
        warnings,
        frames: Some(frames),
    })
}

type Parsed = (Option<serde_json::Value>, Vec<Row>);

fn read_mcap(path: &Path, bytes: &[u8], warnings: &mut Vec<String>) -> Result<Parsed, LoadError> {
    let shown = path.display();
    let recording = read_recording(bytes);
    let header = recording
        .topic(TOPIC_HEADER)
        .next()
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m.data).ok());
    let mut rows = Vec::new();
    let mut bad_row = None;
    for (i, m) in recording.topic(TOPIC_STATE).enumerate() {
        match serde_json::from_slice::<Row>(&m.data) {
            Ok(r) => rows.push(r),
            Err(e) => {
                bad_row = Some(format!(
                    "{shown}: {TOPIC_STATE} message {i} is not a flight row ({e})"
                ));
                break;
            }
        }
    }
    let damage = recording.damage.as_ref().map(|d| format!("{shown}: {d}"));
    let problems: Vec<String> = damage.into_iter().chain(bad_row).collect();
    if rows.is_empty() {
        let why = if problems.is_empty() {
            format!("the recording has no {TOPIC_STATE} messages")
        } else {
            problems.join("; ")
        };
        return Err(LoadError(format!("{shown}: no flight rows to show: {why}")));
    }
    let (first, last) = (rows[0].t_s, rows[rows.len() - 1].t_s);
    if let Some(skipped) = recording.describe_skipped() {
        warnings.push(format!(
            "{shown}: {skipped}; showing the {} rows read around {} (t = {first:.2} s .. \
             {last:.2} s, with the gap)",
            rows.len(),
            if recording.skipped.len() == 1 {
                "it"
            } else {
                "them"
            }
        ));
    }
    for p in problems {
        warnings.push(format!(
            "{p}; showing the {} rows read before it (t = {first:.2} s .. {last:.2} s)",
            rows.len()
        ));
    }
    if header.is_none() {
        warnings.push(format!(
            "{shown}: no {TOPIC_HEADER} message (scene unknown)"
        ));
    }
    Ok((header, in_time_order(rows, path, warnings)))
}

fn read_jsonl(path: &Path, bytes: &[u8], warnings: &mut Vec<String>) -> Result<Parsed, LoadError> {
    let shown = path.display();
    let not_a_log = || {
        LoadError(format!(
            "{shown}: not a depthpilot flight log (neither MCAP nor JSON Lines with a \
             `{LOG_FORMAT}` header)"
        ))
    };
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let header: serde_json::Value = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .filter(|h: &serde_json::Value| h["format"] == LOG_FORMAT)
        .ok_or_else(not_a_log)?;
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        match serde_json::from_str::<Row>(line) {
            Ok(r) => rows.push(r),
            Err(e) => {
                let p = format!("{shown}: line {} is not a flight row ({e})", i + 2);
                if rows.is_empty() {
                    return Err(LoadError(format!("{p}; no flight rows to show")));
                }
                warnings.push(format!("{p}; showing the {} rows before it", rows.len()));
                break;
            }
        }
    }
    if rows.is_empty() {
        return Err(LoadError(format!("{shown}: no flight rows to show")));
    }
    Ok((Some(header), in_time_order(rows, path, warnings)))
}

/// Drops rows whose time is not finite or goes backwards (a damaged log), with a warning.
fn in_time_order(rows: Vec<Row>, path: &Path, warnings: &mut Vec<String>) -> Vec<Row> {
    let n = rows.len();
    let mut out: Vec<Row> = Vec::with_capacity(n);
    for r in rows {
        let ok = r.t_s.is_finite()
            && r.pos_m.iter().all(|v| v.is_finite())
            && out.last().is_none_or(|l| r.t_s >= l.t_s);
        if ok {
            out.push(r);
        }
    }
    if out.len() < n {
        warnings.push(format!(
            "{}: {} rows dropped (time not increasing or not finite)",
            path.display(),
            n - out.len()
        ));
    }
    out
}

/// Looks for `scenes/<name>.ron` in and above the working directory, the log and the binary.
pub(crate) fn find_scene(log: &Path, name: &str, warnings: &mut Vec<String>) -> Option<Scene> {
    if name == "?" || name.is_empty() || name.contains(['/', '\\']) {
        return None;
    }
    let file = format!("{name}.ron");
    // The working directory and above it (run from inside a checkout), then above the log and
    // the binary.
    let mut roots: Vec<PathBuf> = std::env::current_dir()
        .map(|d| d.ancestors().map(Path::to_path_buf).collect())
        .unwrap_or_else(|_| vec![PathBuf::from(".")]);
    let log_dir = std::fs::canonicalize(log)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    for dir in [log_dir, exe_dir].into_iter().flatten() {
        roots.extend(dir.ancestors().map(Path::to_path_buf));
    }
    let mut tried = Vec::new();
    for root in roots {
        let candidate = root.join("scenes").join(&file);
        if !candidate.is_file() {
            continue;
        }
        match Scene::load(&candidate) {
            Ok(s) if s.name == name => return Some(s),
            Ok(_) => {}
            Err(e) => tried.push(format!("{}: {e}", candidate.display())),
        }
    }
    warnings.push(format!(
        "scene `{name}` not found (looked for scenes/{file} here and above the log and the \
         binary{}); showing the flight without the scene's boxes and camera (pass --scene FILE)",
        if tried.is_empty() {
            String::new()
        } else {
            format!("; unreadable: {}", tried.join("; "))
        }
    ));
    None
}

/// The flight at one instant: positions interpolated between the two rows around it, the rest
/// from the row at or before it.
#[derive(Clone, Debug)]
pub struct Sample<'a> {
    pub t_s: f64,
    /// Index of the row at or before `t_s`.
    pub index: usize,
    pub row: &'a Row,
    pub pos_m: [f64; 3],
    pub rpy_rad: [f64; 3],
    pub estimate_m: Option<[f64; 3]>,
}

impl Flight {
    pub fn start_s(&self) -> f64 {
        self.rows.first().map_or(0.0, |r| r.t_s)
    }

    pub fn end_s(&self) -> f64 {
        self.rows.last().map_or(0.0, |r| r.t_s)
    }

    /// Index of the last row at or before `t_s` (0 before the start).
    pub fn index_at(&self, t_s: f64) -> usize {
        self.rows
            .partition_point(|r| r.t_s <= t_s)
            .saturating_sub(1)
    }

    /// The flight at `t_s`, clamped to the log's span.
    pub fn sample(&self, t_s: f64) -> Sample<'_> {
        let t_s = t_s.clamp(self.start_s(), self.end_s());
        let index = self.index_at(t_s);
        let row = &self.rows[index];
        let next = self.rows.get(index + 1).unwrap_or(row);
        let span = next.t_s - row.t_s;
        let f = if span > 0.0 {
            ((t_s - row.t_s) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let lerp = |a: [f64; 3], b: [f64; 3]| std::array::from_fn(|i| a[i] + (b[i] - a[i]) * f);
        let rpy_rad = std::array::from_fn(|i| {
            let d = wrap_pi(next.rpy_rad[i] - row.rpy_rad[i]);
            row.rpy_rad[i] + d * f
        });
        let estimate_m = match (row.estimate_m, next.estimate_m) {
            (Some(a), Some(b)) => Some(lerp(a, b)),
            (a, _) => a,
        };
        Sample {
            t_s,
            index,
            row,
            pos_m: lerp(row.pos_m, next.pos_m),
            rpy_rad,
            estimate_m,
        }
    }
}

fn wrap_pi(a: f64) -> f64 {
    (a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_s: f64, x: f64, yaw: f64) -> Row {
        Row {
            t_s,
            pos_m: [x, 0.0, 1.0],
            rpy_rad: [0.0, 0.0, yaw],
            setpoint_m: [0.0, 0.0, 1.0],
            estimate_m: None,
            cmd_thrust_frac: 0.5,
            motors_pwm: [0; 4],
            safety: "tracking".into(),
            firmware: "fresh".into(),
            mux_sources: None,
            measurement_age_s: None,
            detection_pixels: None,
        }
    }

    fn flight(rows: Vec<Row>) -> Flight {
        Flight {
            path: PathBuf::from("x.mcap"),
            scene_name: "x".into(),
            scene: None,
            rows,
            warnings: Vec::new(),
            frames: None,
        }
    }

    #[test]
    fn sample_interpolates_and_clamps() {
        let f = flight(vec![row(0.0, 0.0, 3.1), row(1.0, 1.0, -3.1)]);
        let s = f.sample(0.25);
        assert_eq!(s.index, 0);
        assert!((s.pos_m[0] - 0.25).abs() < 1e-12);
        // Yaw goes the short way round through ±π.
        assert!(s.rpy_rad[2] > 3.1);
        assert_eq!(f.sample(5.0).pos_m[0], 1.0);
        assert_eq!(f.sample(-1.0).pos_m[0], 0.0);
    }

    #[test]
    fn rows_out_of_order_are_dropped() {
        let mut w = Vec::new();
        let rows = in_time_order(
            vec![row(0.0, 0.0, 0.0), row(1.0, 0.0, 0.0), row(0.5, 0.0, 0.0)],
            Path::new("x"),
            &mut w,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn garbage_is_not_a_log() {
        let mut w = Vec::new();
        let e = read_jsonl(Path::new("g.bin"), b"\x00\x01garbage", &mut w)
            .err()
            .map(|e| e.0);
        assert!(e.is_some_and(|m| m.contains("not a depthpilot flight log")));
    }
}
