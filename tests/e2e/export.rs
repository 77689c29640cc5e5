//! `depthpilot export` (issue 21): a camera session as a Foxglove MCAP. A recorded session's
//! detections land on the pixels the vision found, one image per frame (or per `--every`th),
//! the session untouched; a session without a header, with lost frames and a stall, says so on
//! `/log`; garbage, missing, unwritable and self-overwriting paths are refused, naming the file.

use crate::{depthpilot, free_port, refused, temp_dir};
use depthpilot_camera::protocol::{FrameHeader, encode_frame};
use depthpilot_camera::session::{FRAME_ENCODING, TOPIC_SESSION_FRAME, pack_parts, read_session};
use depthpilot_mcaplog::{ChunkedWriter, Recording, WriterOptions, read_bytes};
use depthpilot_runtime::bridge_vision::BridgeVision;
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{HEIGHT, WIDTH};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// Kills the fake bridge when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn export(args: &[&str]) -> Recording {
    let out = depthpilot(&[&["export"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_bytes(&std::fs::read(args[1]).expect("export written"))
}

fn json(data: &[u8]) -> serde_json::Value {
    serde_json::from_slice(data).expect("JSON")
}

/// Records 2 s from the fake bridge, exports it: every frame's depth and IR image and its
/// detection annotation at the frame's time, the circle on the pixel where the vision (run
/// again, bit for bit) found the quad, `--every 3` a third of the images; the session's bytes
/// do not change.
#[test]
fn an_exported_session_has_every_image_and_the_detections_on_the_vision_s_pixels() {
    let dir = temp_dir("export-recorded");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let _bridge = Killed(
        Command::new(env!("CARGO_BIN_EXE_depthpilot"))
            .args(["fake-bridge", "scenes/hover_kinect.ron", "--duration", "6"])
            .args(["--bind", &endpoint, "--quiet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fake-bridge"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let session = dir.join("session.mcap");
    let rec = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args(["record", "hil/bridge_sim.ron", "--duration", "2", "--quiet"])
        .args(["--bridge-endpoint", &endpoint, "--out", s(&session)])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("record");
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let before = std::fs::read(&session).expect("session");

    let out = dir.join("foxglove.mcap");
    let r = export(&[s(&session), s(&out)]);
    assert!(r.damage.is_none(), "{:?}", r.damage);
    assert_eq!(std::fs::read(&session).expect("session"), before);

    let sess = read_session(&session).expect("session");
    let n = sess.frames.len();
    assert!(n > 40, "{n} frames");
    let count = |topic| r.topic(topic).count();
    assert_eq!(count("/kinect/depth"), n);
    assert_eq!(count("/kinect/ir"), n);
    assert_eq!(count("/kinect/detections"), sess.detections.len());
    assert!((2..=3).contains(&count("/kinect/calibration")));
    assert_eq!(count("/tf"), count("/kinect/calibration"));
    // An intact session: nothing said about the file (a loaded machine may still show a
    // stretch without frames, said by `bridge`).
    for m in r.topic("/log") {
        let l = json(&m.data);
        assert_eq!(l["name"], "bridge", "{l}");
    }

    // The vision again, for the pixels.
    let h = sess.header.as_ref().expect("header");
    let mut vision = BridgeVision::at(&h.camera());
    let mut found = HashMap::new();
    let times: HashMap<u64, u64> = sess
        .frames
        .iter()
        .map(|(t, f)| (*t, f.header.seq))
        .collect();
    for (_, f) in &sess.frames {
        if let Ok(d) = vision.detect(f).expect("vision") {
            found.insert(f.header.seq, d);
        }
    }
    assert!(found.len() > n / 2, "{} of {n} found", found.len());
    let mut placed = 0;
    for m in r.topic("/kinect/detections") {
        let seq = times[&m.log_time_ns];
        let a = json(&m.data);
        let circles = a["circles"].as_array().expect("circles");
        match found.get(&seq) {
            Some(d) => {
                let c = &circles[0];
                let (x, y) = (
                    c["position"]["x"].as_f64().expect("x"),
                    c["position"]["y"].as_f64().expect("y"),
                );
                assert!(
                    (x - d.pixel.0).abs() < 1e-3 && (y - d.pixel.1).abs() < 1e-3,
                    "seq {seq}: ({x}, {y}) vs the vision's {:?}",
                    d.pixel
                );
                let area =
                    std::f64::consts::PI * (c["diameter"].as_f64().expect("d") / 2.0).powi(2);
                assert!(
                    (area - d.pixels as f64).abs() < 1e-6 * area.max(30.0),
                    "{area} vs {}",
                    d.pixels
                );
                placed += 1;
            }
            None => {
                assert!(circles.is_empty());
                let text = a["texts"][0]["text"].as_str().expect("text");
                assert!(text.contains("no detection"), "{text}");
            }
        }
    }
    assert_eq!(placed, found.len());
    // The first depth image is the first frame's depth, little-endian.
    let first = json(&r.topic("/kinect/depth").next().expect("depth").data);
    let want: Vec<u8> = sess.frames[0]
        .1
        .frame
        .depth_mm
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    assert_eq!(
        first["data"].as_str().map(str::len),
        Some(want.len().div_ceil(3) * 4)
    );
    assert_eq!(
        first["data"].as_str(),
        Some(depthpilot_runtime::foxglove_messages::base64(&want).as_str())
    );

    let every = dir.join("every3.mcap");
    let r3 = export(&[s(&session), s(&every), "--every", "3", "--no-ir"]);
    assert_eq!(r3.topic("/kinect/depth").count(), n.div_ceil(3));
    assert_eq!(r3.topic("/kinect/ir").count(), 0);
    assert_eq!(
        r3.topic("/kinect/detections").count(),
        sess.detections.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A session of `seqs` frames (a flat floor, with IR) at `times_ms` after a start, and no
/// header: what a damaged file can leave.
fn headerless_session(path: &Path, seqs: &[u64], times_ms: &[u64]) {
    let mut w = ChunkedWriter::create(
        path,
        WriterOptions {
            profile: "depthpilot".to_string(),
            chunk_span: Duration::from_millis(500),
            chunk_bytes: 4 << 20,
            wall_clock_flush: false,
        },
    )
    .expect("create");
    let ch = w
        .add_channel(0, TOPIC_SESSION_FRAME, FRAME_ENCODING)
        .expect("channel");
    let start_ns = 1_700_000_000_000_000_000u64;
    for (&seq, &ms) in seqs.iter().zip(times_ms) {
        let t = start_ns + ms * 1_000_000;
        let fh = FrameHeader::kinect_v2(seq, ms * 1000, t, Intrinsics::KINECT_V2_DEVICE2);
        let depth: Vec<u16> = (0..WIDTH * HEIGHT).map(|i| 2000 + (i % 7) as u16).collect();
        let ir = vec![100u16; WIDTH * HEIGHT];
        let packed = pack_parts(&encode_frame(&fh, &depth, Some(&ir))).expect("pack");
        w.write(ch, t, t, &packed).expect("frame");
    }
    w.finish().expect("finish");
}

/// No header: the images without /tf, and /log says the pose is unknown; two frames lost
/// (seq 2 → 5) and a 300 ms stall are said when they happened; `--no-images` keeps no image.
#[test]
fn a_session_without_header_with_lost_frames_and_a_stall_says_so_on_log() {
    let dir = temp_dir("export-headerless");
    let session = dir.join("s.mcap");
    headerless_session(&session, &[0, 1, 2, 5, 6], &[0, 33, 66, 366, 400]);
    let out = dir.join("f.mcap");
    let r = export(&[s(&session), s(&out)]);
    assert_eq!(r.topic("/kinect/depth").count(), 5);
    assert_eq!(r.topic("/kinect/ir").count(), 5);
    assert_eq!(r.topic("/tf").count(), 0);
    let logs: Vec<(u64, String)> = r
        .topic("/log")
        .map(|m| {
            let l = json(&m.data);
            (
                m.log_time_ns,
                l["message"].as_str().expect("message").to_string(),
            )
        })
        .collect();
    let at = |what: &str| {
        logs.iter()
            .find(|(_, m)| m.contains(what))
            .map(|(t, _)| (t - 1_700_000_000_000_000_000) / 1_000_000)
    };
    assert_eq!(at("no session header"), Some(0), "{logs:?}");
    assert_eq!(
        at("gap: 2 frame(s) lost between seq 2 and 5"),
        Some(366),
        "{logs:?}"
    );
    assert_eq!(at("STALE"), Some(166), "{logs:?}");
    assert_eq!(at("frames again after 300 ms"), Some(366), "{logs:?}");
    // In log-time order.
    let times: Vec<u64> = r.messages.iter().map(|m| m.log_time_ns).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let bare = dir.join("bare.mcap");
    let r = export(&[s(&session), s(&bare), "--no-images"]);
    assert_eq!(
        r.topic("/kinect/depth").count() + r.topic("/kinect/ir").count(),
        0
    );
    assert_eq!(r.topic("/kinect/calibration").count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Garbage, a missing file, an MCAP that is not a session, an output that cannot be created
/// and the session as its own output: exit 2, naming the file; the session survives.
#[test]
fn export_refuses_bad_paths_naming_them() {
    let dir = temp_dir("export-refused");
    let out = dir.join("out.mcap");
    let junk = dir.join("junk.mcap");
    std::fs::write(&junk, "t_s,x\n0,1\n").expect("write");
    refused(
        &depthpilot(&["export", s(&junk), s(&out)]),
        &["junk.mcap", "is not an MCAP"],
    );
    let missing = dir.join("missing.mcap");
    refused(
        &depthpilot(&["export", s(&missing), s(&out)]),
        &["missing.mcap"],
    );
    let other = dir.join("other.mcap");
    let mut w = ChunkedWriter::create(
        &other,
        WriterOptions {
            profile: String::new(),
            chunk_span: Duration::from_secs(1),
            chunk_bytes: 1 << 20,
            wall_clock_flush: false,
        },
    )
    .expect("create");
    let ch = w.add_channel(0, "/something", "json").expect("channel");
    w.write(ch, 1, 1, b"{}").expect("write");
    w.finish().expect("finish");
    refused(
        &depthpilot(&["export", s(&other), s(&out)]),
        &["other.mcap", "not a camera session"],
    );
    assert!(!out.exists());

    let session = dir.join("s.mcap");
    headerless_session(&session, &[0, 1], &[0, 33]);
    let nowhere = dir.join("no").join("such").join("out.mcap");
    refused(
        &depthpilot(&["export", s(&session), s(&nowhere)]),
        &["cannot create", "no/such/out.mcap"],
    );
    let before = std::fs::read(&session).expect("read");
    refused(
        &depthpilot(&["export", s(&session), s(&session)]),
        &["s.mcap", "the session itself"],
    );
    assert_eq!(std::fs::read(&session).expect("read"), before);
    refused(
        &depthpilot(&["export", s(&session), s(&out), "--every", "0"]),
        &["--every"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
