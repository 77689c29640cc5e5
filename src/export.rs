//! `depthpilot export SESSION OUT`: a camera session (`depthpilot record`) as an MCAP that
//! Foxglove opens: the images, the calibration, where the camera stands and what the vision
//! found, on Foxglove's well-known schemas (JSON with their verbatim JSON Schemas, like the flight
//! log's topics: `depthpilot_runtime::flight_foxglove`). The session itself is only read: it
//! stays the compact, bit-exact record that `replay` runs the vision on again.
//!
//! | topic | schema | what |
//! |---|---|---|
//! | `/kinect/depth` | `foxglove.RawImage` | depth, `16UC1` (mm, little-endian), every `--every`th frame |
//! | `/kinect/ir` | `foxglove.RawImage` | IR, `16UC1`, with the depth (not with `--no-ir`) |
//! | `/kinect/calibration` | `foxglove.CameraCalibration` | the frames' intrinsics (OpenCV convention: cx − 0.5, cy − 0.5); first frame, then once a second and when they change |
//! | `/tf` | `foxglove.FrameTransforms` | world→kinect, world→kinect_optical from the session header's camera pose, with the calibration |
//! | `/kinect/detections` | `foxglove.ImageAnnotations` | every detection record: the blob (a circle of its area), its centroid (a point) and a label; a miss says why |
//! | `/log` | `foxglove.Log` | lost frames (seq jumps), STALE stretches (> 100 ms without a frame), garbage and damage in the session |
//!
//! Times: every message's log time, and every `timestamp` in it, is the session's log time of
//! the frame it comes from: when the recording host received the frame (UNIX ns), the clock
//! the session is written on. A detection is stamped with its frame's time (so Foxglove's image
//! panel pairs it with the image); a `/log` event with the time it happened in that clock.
//! Publish time is the bridge's capture stamp (`host_stamp_ns`) for the images, the log time
//! for the rest.
//!
//! A detection's pixel is not in the session: it is the recorded world position projected
//! through the camera model (`depthpilot_vision::CameraModel`, the one the vision used), which
//! gives back the blob's centroid (the vision placed the position on the centroid's ray).
//! Foxglove's image annotations put the origin at the top-left corner of the top-left pixel,
//! as our model does, so the pixel is written unshifted. Without a session header (a damaged
//! file) the camera's pose is unknown: no `/tf`, the images float in `kinect_optical`, and the
//! detections are only labelled; `/log` says so.

use crate::Failure;
use depthpilot_camera::DEFAULT_STALE_AFTER;
use depthpilot_camera::session::{DetectionRecord, Session, SessionError, read_session};
use depthpilot_mcaplog::{ChunkedWriter, WriteError, WriterOptions};
use depthpilot_runtime::flight_foxglove::{
    FRAME_KINECT_OPTICAL, KinectFrames, TOPIC_KINECT_CALIBRATION, TOPIC_LOG, TOPIC_TF, calibration,
};
use depthpilot_runtime::foxglove_messages::{
    CAMERA_CALIBRATION_SCHEMA, CircleAnnotation, FRAME_TRANSFORMS_SCHEMA, IMAGE_ANNOTATIONS_SCHEMA,
    ImageAnnotations, LOG_SCHEMA, Log, LogLevel, Point2, PointsAnnotation, RAW_IMAGE_SCHEMA,
    RawImage, TextAnnotation, Time, base64, rgba,
};
use depthpilot_types::Vec3;
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::CameraModel;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TOPIC_DEPTH: &str = "/kinect/depth";
pub const TOPIC_IR: &str = "/kinect/ir";
pub const TOPIC_DETECTIONS: &str = "/kinect/detections";

/// Calibration and static transforms: repeated this often (a player that seeks has them within
/// a second, as on a flight log).
const STATIC_EVERY_NS: u64 = 1_000_000_000;

/// Arguments of `depthpilot export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A camera session recorded by `depthpilot record` (MCAP).
    pub session: PathBuf,
    /// The Foxglove MCAP to write (replaced if it exists).
    pub out: PathBuf,
    /// Images of every Nth frame only (1: every frame); calibration, transforms, detections and
    /// the log stay whole.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub every: u64,
    /// No `/kinect/ir`: depth images only.
    #[arg(long)]
    pub no_ir: bool,
    /// No images at all: calibration, transforms, detections and the log.
    #[arg(long)]
    pub no_images: bool,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What goes out, in log-time order; the `u8` orders equal times (frame, detection, log).
enum Item {
    Frame(usize),
    Detection(usize),
    Log(Log),
}

impl Item {
    fn rank(&self) -> u8 {
        match self {
            Self::Frame(_) => 0,
            Self::Detection(_) => 1,
            Self::Log(_) => 2,
        }
    }
}

/// Channel ids of the topics written.
struct Channels {
    depth: Option<u16>,
    ir: Option<u16>,
    calibration: u16,
    tf: Option<u16>,
    detections: u16,
    log: u16,
}

/// What was written, for the summary line.
#[derive(Default)]
struct Counts {
    depth: u64,
    ir: u64,
    calibrations: u64,
    transforms: u64,
    detections: u64,
    placed: u64,
    logs: u64,
}

fn log_at(stamp_ns: u64, level: LogLevel, name: &'static str, message: String) -> Log {
    Log {
        timestamp: Time::from_ns(stamp_ns),
        level,
        message,
        name,
        file: "",
        line: 0,
    }
}

/// The `/log` events a session implies: its damage and garbage (at its start), lost frames and
/// stretches without frames (when they happened).
fn session_events(session: &Session, start_ns: u64) -> Vec<(u64, Log)> {
    let mut out = Vec::new();
    let mut say = |t, level, name, msg| out.push((t, log_at(t, level, name, msg)));
    if session.header.is_none() {
        say(
            start_ns,
            LogLevel::Warning,
            "session",
            "no session header: the camera's pose is unknown, so no /tf and the detections \
             are not placed in the image"
                .to_string(),
        );
    }
    if let Some(d) = &session.damage {
        say(
            start_ns,
            LogLevel::Error,
            "session",
            format!("the session file is damaged: {d}"),
        );
    }
    if session.undecodable_frames > 0 {
        say(
            start_ns,
            LogLevel::Error,
            "session",
            format!(
                "{} frame message(s) were garbage and skipped (first: {})",
                session.undecodable_frames,
                session
                    .first_undecodable_frame
                    .as_ref()
                    .map_or("?".to_string(), ToString::to_string)
            ),
        );
    }
    if session.undecodable_json > 0 {
        say(
            start_ns,
            LogLevel::Warning,
            "session",
            format!(
                "{} header or detection message(s) were not their JSON and skipped",
                session.undecodable_json
            ),
        );
    }
    let stale_ns = u64::try_from(DEFAULT_STALE_AFTER.as_nanos()).unwrap_or(u64::MAX);
    for pair in session.frames.windows(2) {
        let [(ta, a), (tb, b)] = pair else { continue };
        let (sa, sb) = (a.header.seq, b.header.seq);
        if sb > sa.saturating_add(1) {
            say(
                *tb,
                LogLevel::Warning,
                "bridge",
                format!(
                    "gap: {} frame(s) lost between seq {sa} and {sb}",
                    sb - sa - 1
                ),
            );
        } else if sb <= sa {
            say(
                *tb,
                LogLevel::Warning,
                "bridge",
                format!("seq went from {sa} back to {sb} (the bridge restarted?)"),
            );
        }
        let gap_ns = tb.saturating_sub(*ta);
        if gap_ns > stale_ns {
            say(
                ta + stale_ns,
                LogLevel::Warning,
                "bridge",
                format!(
                    "STALE — no frame for {} ms",
                    DEFAULT_STALE_AFTER.as_millis()
                ),
            );
            say(
                *tb,
                LogLevel::Info,
                "bridge",
                format!("frames again after {} ms", gap_ns / 1_000_000),
            );
        }
    }
    out
}

/// A detection as image annotations at `stamp_ns`: the blob (a circle of its area) and its
/// centroid where `model` projects the recorded position; a label either way.
fn annotations(
    d: &DetectionRecord,
    model: Option<&CameraModel>,
    stamp_ns: u64,
) -> ImageAnnotations {
    let timestamp = Time::from_ns(stamp_ns);
    let mut a = ImageAnnotations {
        timestamp,
        circles: Vec::new(),
        points: Vec::new(),
        texts: Vec::new(),
    };
    let green = rgba(0.2, 1.0, 0.3, 1.0);
    let clear = rgba(0.0, 0.0, 0.0, 0.0);
    let label = |position, text| TextAnnotation {
        timestamp,
        position,
        text,
        font_size: 14.0,
        text_color: rgba(1.0, 1.0, 1.0, 1.0),
        background_color: rgba(0.0, 0.0, 0.0, 0.6),
    };
    let pixel = d
        .pos_m
        .filter(|_| d.found)
        .zip(model)
        .and_then(|(p, m)| m.pixel_of(m.camera_from_world(Vec3::new(p[0], p[1], p[2]))))
        .filter(|&(u, v)| u.is_finite() && v.is_finite());
    match (pixel, d.pos_m) {
        (Some((u, v)), Some(p)) => {
            let pixels = d.pixels.unwrap_or(0) as f64;
            // The diameter of a disc of the blob's area.
            let diameter = (2.0 * (pixels / std::f64::consts::PI).sqrt()).max(6.0);
            let at = Point2 { x: u, y: v };
            a.circles.push(CircleAnnotation {
                timestamp,
                position: at,
                diameter,
                thickness: 2.0,
                fill_color: clear,
                outline_color: green,
            });
            a.points.push(PointsAnnotation {
                timestamp,
                kind: 1,
                points: vec![at],
                outline_color: green,
                outline_colors: Vec::new(),
                fill_color: green,
                thickness: 4.0,
            });
            let yaw = d
                .yaw_rad
                .map_or(String::new(), |y| format!(", yaw {:.0}°", y.to_degrees()));
            a.texts.push(label(
                Point2 {
                    x: u + diameter / 2.0 + 4.0,
                    y: v,
                },
                format!(
                    "seq {}: ({:.3}, {:.3}, {:.3}) m, {} px{yaw}",
                    d.frame_seq, p[0], p[1], p[2], pixels
                ),
            ));
        }
        (None, Some(p)) if d.found => a.texts.push(label(
            Point2 { x: 8.0, y: 20.0 },
            format!(
                "seq {}: found at ({:.3}, {:.3}, {:.3}) m (not placed: camera pose unknown)",
                d.frame_seq, p[0], p[1], p[2]
            ),
        )),
        _ => a.texts.push(label(
            Point2 { x: 8.0, y: 20.0 },
            format!(
                "seq {}: no detection: {}",
                d.frame_seq,
                d.miss.as_deref().unwrap_or("?")
            ),
        )),
    }
    a
}

/// The u16 pixels as `16UC1` (little-endian) in base64.
fn image_16uc1(pixels: &[u16]) -> String {
    let bytes: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    base64(&bytes)
}

/// Writes `msg` as JSON on channel `ch` at log time `log_ns`.
fn put<T: serde::Serialize>(
    w: &mut ChunkedWriter,
    ch: u16,
    log_ns: u64,
    publish_ns: u64,
    msg: &T,
) -> Result<(), Failure> {
    let json = serde_json::to_vec(msg).map_err(|e| {
        Failure::from(anyhow::Error::new(e).context(format!("{}: a message", w.path().display())))
    })?;
    w.write(ch, log_ns, publish_ns, &json)
        .map_err(|e| Failure::from(anyhow::Error::new(e)))
}

/// Where `out` would overwrite `input` (the same file).
fn same_file(input: &Path, out: &Path) -> bool {
    match (std::fs::canonicalize(input), std::fs::canonicalize(out)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn export(args: &ExportArgs) -> Result<(), Failure> {
    let path = &args.session;
    let session = read_session(path).map_err(|e| match e {
        SessionError::Read { .. } | SessionError::NotMcap { .. } => {
            Failure::bad_input(anyhow::Error::new(e))
        }
        e => Failure::from(anyhow::Error::new(e)),
    })?;
    if session.header.is_none() && session.frames.is_empty() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "{}: not a camera session (no /session/header, no /kinect/frame message{}); \
             sessions come from `depthpilot record`",
            path.display(),
            session
                .damage
                .as_ref()
                .map_or(String::new(), |d| format!("; {d}"))
        )));
    }
    if same_file(path, &args.out) {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "{}: the output is the session itself; give another file",
            args.out.display()
        )));
    }
    if !args.quiet
        && let Some(d) = &session.damage
    {
        eprintln!(
            "depthpilot export: {}: {d}; exporting what was read",
            path.display()
        );
    }

    let camera = session.header.as_ref().map(|h| h.camera());
    let kinect = camera.as_ref().and_then(|c| {
        let k = session
            .frames
            .first()
            .map_or(Intrinsics::KINECT_V2_DEVICE2, |(_, f)| f.intrinsics);
        KinectFrames::at(c.position_m, c.look_at_m, c.up_hint, k)
    });
    if session.header.is_some() && kinect.is_none() && !args.quiet {
        eprintln!(
            "depthpilot export: {}: the header's camera pose is degenerate (look-at on the \
             camera, or up along the view): no /tf",
            path.display()
        );
    }
    let model_of = |k: Intrinsics| {
        let c = camera.as_ref()?;
        CameraModel::new(k, c.position_m, c.look_at_m, c.up_hint).ok()
    };

    // Frames by seq: a detection is stamped with its frame's time and projected with its
    // intrinsics.
    let by_seq: HashMap<u64, usize> = session
        .frames
        .iter()
        .enumerate()
        .map(|(i, (_, f))| (f.header.seq, i))
        .collect();
    let start_ns = session
        .frames
        .first()
        .map(|(t, _)| *t)
        .or(session.header.as_ref().map(|h| h.started_unix_ns))
        .unwrap_or(0);
    let mut items: Vec<(u64, Item)> = Vec::new();
    items.extend(
        session
            .frames
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (*t, Item::Frame(i))),
    );
    items.extend(session.detections.iter().enumerate().map(|(i, (t, d))| {
        let t = by_seq
            .get(&d.frame_seq)
            .map_or(*t, |&f| session.frames[f].0);
        (t, Item::Detection(i))
    }));
    items.extend(
        session_events(&session, start_ns)
            .into_iter()
            .map(|(t, l)| (t, Item::Log(l))),
    );
    items.sort_by_key(|(t, item)| (*t, item.rank()));

    let write_err = |e: WriteError| Failure::from(anyhow::Error::new(e));
    let mut w = ChunkedWriter::create(
        &args.out,
        WriterOptions {
            profile: String::new(),
            chunk_span: Duration::from_secs(1),
            chunk_bytes: 4 * 1024 * 1024,
            wall_clock_flush: false,
        },
    )
    .map_err(|e| match e {
        WriteError::Create { .. } => Failure::bad_input(anyhow::Error::new(e)),
        e => write_err(e),
    })?;
    let images = !args.no_images && !session.frames.is_empty();
    let with_ir = images && !args.no_ir && session.frames.iter().any(|(_, f)| f.frame.ir.is_some());
    let channels = (|| -> Result<Channels, WriteError> {
        let raw = w.add_schema(
            "foxglove.RawImage",
            "jsonschema",
            RAW_IMAGE_SCHEMA.as_bytes(),
        )?;
        let cal = w.add_schema(
            "foxglove.CameraCalibration",
            "jsonschema",
            CAMERA_CALIBRATION_SCHEMA.as_bytes(),
        )?;
        let ann = w.add_schema(
            "foxglove.ImageAnnotations",
            "jsonschema",
            IMAGE_ANNOTATIONS_SCHEMA.as_bytes(),
        )?;
        let log = w.add_schema("foxglove.Log", "jsonschema", LOG_SCHEMA.as_bytes())?;
        let tf = match kinect {
            Some(_) => Some(w.add_schema(
                "foxglove.FrameTransforms",
                "jsonschema",
                FRAME_TRANSFORMS_SCHEMA.as_bytes(),
            )?),
            None => None,
        };
        Ok(Channels {
            depth: images
                .then(|| w.add_channel(raw, TOPIC_DEPTH, "json"))
                .transpose()?,
            ir: with_ir
                .then(|| w.add_channel(raw, TOPIC_IR, "json"))
                .transpose()?,
            calibration: w.add_channel(cal, TOPIC_KINECT_CALIBRATION, "json")?,
            tf: tf.map(|s| w.add_channel(s, TOPIC_TF, "json")).transpose()?,
            detections: w.add_channel(ann, TOPIC_DETECTIONS, "json")?,
            log: w.add_channel(log, TOPIC_LOG, "json")?,
        })
    })()
    .map_err(write_err)?;

    let mut n = Counts::default();
    let mut last_static: Option<(u64, Intrinsics)> = None;
    for (t, item) in &items {
        let t = *t;
        match item {
            Item::Frame(i) => {
                let (_, f) = &session.frames[*i];
                let due = last_static.is_none_or(|(at, k)| {
                    t.saturating_sub(at) >= STATIC_EVERY_NS || k != f.intrinsics
                });
                if due {
                    last_static = Some((t, f.intrinsics));
                    if let (Some(k), Some(ch)) = (&kinect, channels.tf) {
                        let tf = depthpilot_runtime::foxglove_messages::FrameTransforms {
                            transforms: k.transforms(t).to_vec(),
                        };
                        put(&mut w, ch, t, t, &tf)?;
                        n.transforms += 1;
                    }
                    let c = calibration(&f.intrinsics, t);
                    put(&mut w, channels.calibration, t, t, &c)?;
                    n.calibrations += 1;
                }
                if !(*i as u64).is_multiple_of(args.every) {
                    continue;
                }
                let image = |pixels: &[u16]| RawImage {
                    timestamp: Time::from_ns(t),
                    frame_id: FRAME_KINECT_OPTICAL,
                    width: f.header.width,
                    height: f.header.height,
                    encoding: "16UC1",
                    step: 2 * f.header.width,
                    data: image_16uc1(pixels),
                };
                let capture_ns = f.header.host_stamp_ns;
                if let Some(ch) = channels.depth {
                    put(&mut w, ch, t, capture_ns, &image(&f.frame.depth_mm))?;
                    n.depth += 1;
                }
                if let (Some(ch), Some(ir)) = (channels.ir, &f.frame.ir) {
                    put(&mut w, ch, t, capture_ns, &image(ir))?;
                    n.ir += 1;
                }
            }
            Item::Detection(i) => {
                let (_, d) = &session.detections[*i];
                let k = by_seq
                    .get(&d.frame_seq)
                    .map_or(Intrinsics::KINECT_V2_DEVICE2, |&f| {
                        session.frames[f].1.intrinsics
                    });
                let a = annotations(d, model_of(k).as_ref(), t);
                n.placed += u64::from(!a.circles.is_empty());
                put(&mut w, channels.detections, t, t, &a)?;
                n.detections += 1;
            }
            Item::Log(l) => {
                put(&mut w, channels.log, t, t, l)?;
                n.logs += 1;
            }
        }
    }
    let stats = w.finish().map_err(write_err)?;
    if !args.quiet {
        let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
        let session_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        // The time the frames cover: first to last, plus one mean frame period.
        let frames = session.frames.len();
        let span_s = match (session.frames.first(), session.frames.last()) {
            (Some((a, _)), Some((b, _))) if b > a => {
                (b - a) as f64 * 1e-9 * frames as f64 / (frames - 1) as f64
            }
            _ => 0.0,
        };
        let per_min = |b: u64| {
            if span_s > 0.0 {
                format!("{:.1} MB/min", b as f64 / 1e6 * 60.0 / span_s)
            } else {
                "-".to_string()
            }
        };
        println!(
            "depthpilot export — {} → {}: {} frames over {span_s:.2} s; {} depth and {} IR \
             images, {} calibrations, {} transforms, {} detection annotations ({} placed), \
             {} log messages; {} messages, {} chunks",
            path.display(),
            args.out.display(),
            session.frames.len(),
            n.depth,
            n.ir,
            n.calibrations,
            n.transforms,
            n.detections,
            n.placed,
            n.logs,
            stats.messages,
            stats.chunks
        );
        println!(
            "  size        export {:.2} MB ({}), session {:.2} MB ({})",
            bytes as f64 / 1e6,
            per_min(bytes),
            session_bytes as f64 / 1e6,
            per_min(session_bytes)
        );
    }
    Ok(())
}
