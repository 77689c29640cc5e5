//! `depthpilot plot`: a PNG from a flight log; broken logs are clear errors or partial plots.

use crate::depthpilot;

use crate::{scene_path, temp_dir};

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn plots_a_recorded_flight_and_survives_a_truncated_log() {
    let dir = temp_dir("plot");
    let log = dir.join("flight.jsonl");
    let out = depthpilot(&[
        "fly",
        scene_path("step.ron").to_str().expect("utf-8"),
        "--log",
        log.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert!(out.status.success());
    let png = dir.join("flight.png");
    let out = depthpilot(&[
        "plot",
        log.to_str().expect("utf-8"),
        "--out",
        png.to_str().expect("utf-8"),
        "--size",
        "800x900",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("png written");
    assert_eq!(png_size(&bytes), (800, 900));
    assert!(
        bytes.len() > 20_000,
        "a plot with content, not a blank image: {} bytes",
        bytes.len()
    );

    // A log cut in the middle of a line (a killed flight): the rows before it are plotted.
    let text = std::fs::read_to_string(&log).expect("log");
    let cut = dir.join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() / 2]).expect("write");
    let out = depthpilot(&[
        "plot",
        cut.to_str().expect("utf-8"),
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("plotting the"));

    // Not a flight log at all.
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "hello\n").expect("write");
    let out = depthpilot(&[
        "plot",
        junk.to_str().expect("utf-8"),
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a depthpilot flight log"));
}
