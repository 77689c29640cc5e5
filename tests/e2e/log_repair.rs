//! `depthpilot log repair` (issue 21): a killed recording, flight log or camera session, is
//! rewritten whole with summary and index; `plot` and `replay` then read it with no warning.

use crate::{depthpilot, refused, scene_path, temp_dir};
use depthpilot_camera::protocol::{FrameHeader, ReceivedFrame};
use depthpilot_camera::session::{SessionHeader, SessionOptions, SessionWriter, read_session};
use depthpilot_runtime::bridge_vision::{BridgeVision, record_of};
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{DepthFrame, HEIGHT, WIDTH};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// The file's first `len * 2 / 3` bytes: a recorder killed mid-file.
fn kill(path: &Path, to: &Path) {
    let bytes = std::fs::read(path).expect("read");
    std::fs::write(to, &bytes[..bytes.len() * 2 / 3]).expect("write");
}

/// Whether the file ends with a footer pointing at a summary section that holds a chunk index.
fn has_summary_and_index(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("read");
    // Footer: opcode 0x02, length 20, summary start, summary offset start, CRC; then the magic.
    let Some(footer) = bytes.len().checked_sub(8 + 29).map(|at| &bytes[at..]) else {
        return false;
    };
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
    if footer[0] != 0x02 || u64_at(footer, 1) != 20 {
        return false;
    }
    let mut at = u64_at(footer, 9) as usize;
    let end = bytes.len() - 8 - 29;
    while at != 0 && at + 9 <= end {
        if bytes[at] == 0x08 {
            return true;
        }
        at += 9 + u64_at(&bytes, at + 1) as usize;
    }
    false
}

#[test]
fn a_killed_flight_log_is_repaired_and_plots_whole() {
    let dir = temp_dir("log-repair-flight");
    let log = dir.join("flight.mcap");
    let out = depthpilot(&[
        "fly",
        s(&scene_path("step.ron")),
        "--log",
        s(&log),
        "--quiet",
    ]);
    assert!(out.status.success());
    let killed = dir.join("killed.mcap");
    kill(&log, &killed);
    assert!(!has_summary_and_index(&killed));
    let png = dir.join("plot.png");
    let before = depthpilot(&["plot", s(&killed), "--out", s(&png)]);
    let before_err = String::from_utf8_lossy(&before.stderr);
    assert!(before.status.success(), "{before_err}");
    assert!(before_err.contains("ends early"), "{before_err}");

    let out = depthpilot(&["log", "repair", s(&killed)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("flight log") && stdout.contains("ends early"),
        "{stdout}"
    );
    let repaired = dir.join("killed.repaired.mcap");
    assert!(has_summary_and_index(&repaired), "{stdout}");

    let after = depthpilot(&["plot", s(&repaired), "--out", s(&png)]);
    let after_err = String::from_utf8_lossy(&after.stderr);
    assert!(after.status.success(), "{after_err}");
    assert!(!after_err.contains("ends early"), "{after_err}");
    // The same rows as the killed file gave.
    let rows = |o: &std::process::Output| {
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        text.split_once(" rows")
            .map(|(a, _)| a.rsplit('(').next().unwrap_or("").to_string())
    };
    assert!(rows(&after).is_some());
    assert_eq!(rows(&before), rows(&after));
}

/// A camera session of `n` frames (a flat floor 2 m away) with the vision's detections.
fn write_session(path: &Path, n: u64) {
    let header = SessionHeader {
        rig: "test".to_string(),
        scene: "none".to_string(),
        camera_position_m: [0.0, 0.0, 0.0],
        camera_look_at_m: [0.0, 0.0, 1.0],
        camera_up_hint: [0.0, 1.0, 0.0],
        bridge_endpoint: None,
        started_unix_ns: 1_700_000_000_000_000_000,
    };
    let options = SessionOptions {
        wall_clock_flush: false,
        ..SessionOptions::default()
    };
    let mut w = SessionWriter::create_with(path, &header, options).expect("create");
    let mut vision = BridgeVision::at(&header.camera());
    for seq in 0..n {
        let t_ns = header.started_unix_ns + seq * 33_333_333;
        let fh = FrameHeader::kinect_v2(seq, seq * 33_333, t_ns, Intrinsics::KINECT_V2_DEVICE2);
        let depth_mm: Vec<u16> = (0..WIDTH * HEIGHT).map(|i| 2000 + (i % 7) as u16).collect();
        let f = ReceivedFrame {
            frame: DepthFrame {
                stamp_ns: fh.device_stamp_us * 1000,
                seq,
                width: WIDTH,
                height: HEIGHT,
                depth_mm,
                ir: None,
            },
            intrinsics: fh.intrinsics,
            header: fh,
        };
        w.write_frame(t_ns, &f).expect("frame");
        let r = vision.detect(&f).expect("vision");
        w.write_detection(t_ns + 1_000_000, &record_of(seq, &r))
            .expect("detection");
    }
    w.finish().expect("finish");
}

#[test]
fn a_killed_camera_session_is_repaired_and_replays() {
    let dir = temp_dir("log-repair-session");
    let session = dir.join("session.mcap");
    write_session(&session, 30);
    let killed = dir.join("killed.mcap");
    kill(&session, &killed);
    let read_before = read_session(&killed).expect("MCAP").frames.len();
    assert!((5..30).contains(&read_before), "{read_before} frames");
    let before = depthpilot(&["replay", s(&killed)]);
    assert!(String::from_utf8_lossy(&before.stderr).contains("replaying what was read"));

    let repaired = dir.join("fixed.mcap");
    let out = depthpilot(&["log", "repair", s(&killed), s(&repaired)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("camera session"), "{stdout}");
    assert!(has_summary_and_index(&repaired), "{stdout}");

    let after = depthpilot(&["replay", s(&repaired)]);
    let stdout = String::from_utf8_lossy(&after.stdout);
    let stderr = String::from_utf8_lossy(&after.stderr);
    assert!(after.status.success(), "{stderr}");
    assert!(!stderr.contains("replaying what was read"), "{stderr}");
    assert!(
        stdout.contains(&format!("{read_before} frames replayed"))
            && stdout.contains("0 different"),
        "{stdout}"
    );
}

#[test]
fn log_repair_refuses_what_is_not_mcap() {
    let dir = temp_dir("log-repair-junk");
    let junk = dir.join("junk.txt");
    std::fs::write(&junk, "t_s,x\n0,1\n").expect("write");
    let out = depthpilot(&["log", "repair", s(&junk)]);
    refused(&out, &["junk.txt", "is not an MCAP file", "74 5f 73"]);
    assert!(!dir.join("junk.repaired.mcap").exists());
    let out = depthpilot(&["log", "repair", s(&dir.join("missing.mcap"))]);
    refused(&out, &["missing.mcap"]);
}
