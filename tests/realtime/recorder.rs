//! The MCAP flight recorder: `fly --log flight.mcap` holds every row of the JSON Lines log,
//! standard MCAP tools (Python's `mcap`) read it, a `kill -9` of a real-time flight loses at most
//! half a second, and `plot` survives cut and corrupt files.

use crate::{scene_path, temp_dir};
use depthpilot_runtime::recorder::{
    FlightClock, FlightHeader, ReadError, TOPIC_HEADER, TOPIC_STATE, TOPIC_SUMMARY, read_recording,
};
use depthpilot_types::Scene;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn depthpilot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args(args)
        .output()
        .expect("run depthpilot")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Flies `scene` inline with `--log log` (and `--summary summary`).
fn fly_logged(scene: &str, log: &Path, summary: &Path) {
    let out = depthpilot(&[
        "fly",
        s(&scene_path(scene)),
        "--log",
        s(log),
        "--summary",
        s(summary),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

#[test]
fn mcap_log_holds_every_row_of_the_jsonl_log_and_header_and_summary() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("recorder-rows");
    let scene = Scene::load(&scene_path("step.ron")).expect("scene");
    let (mcap, jsonl) = (dir.join("a.mcap"), dir.join("a.jsonl"));
    let summary = dir.join("a.json");
    fly_logged("step.ron", &mcap, &summary);
    fly_logged("step.ron", &jsonl, &dir.join("b.json"));

    let bytes = std::fs::read(&mcap).expect("mcap written");
    let rec = read_recording(&bytes);
    assert!(rec.damage.is_none(), "complete file: {:?}", rec.damage);

    // Every row: duration × log rate (± 1).
    let rows: Vec<_> = rec.topic(TOPIC_STATE).collect();
    let expected = scene.duration_s * scene.rates.log_hz;
    assert!(
        (rows.len() as f64 - expected).abs() <= 1.0,
        "{} rows, expected {expected}",
        rows.len()
    );
    // The same rows as the JSON Lines log of the same flight, byte for byte (so value for
    // value), each at its own flight time.
    let text = std::fs::read_to_string(&jsonl).expect("jsonl written");
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), lines.len());
    for (m, line) in rows.iter().zip(&lines) {
        assert_eq!(std::str::from_utf8(&m.data).expect("utf-8"), *line);
        let a: serde_json::Value = serde_json::from_slice(&m.data).expect("json");
        let b: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(a, b);
        let t_s = a["t_s"].as_f64().expect("t_s");
        assert_eq!(m.log_time_ns, (t_s * 1e9).round() as u64);
        assert_eq!(
            m.publish_time_ns, m.log_time_ns,
            "virtual time: publish = log time"
        );
    }

    // The header, first, and the summary, last, equal to `--summary` (minus wall-clock fields).
    assert_eq!(rec.messages[0].topic, TOPIC_HEADER);
    assert_eq!(rec.topic(TOPIC_HEADER).count(), 1);
    let header: FlightHeader =
        serde_json::from_slice(&rec.messages[0].data).expect("header parses");
    assert_eq!(
        header,
        FlightHeader::new(
            &scene.name,
            scene.seed,
            scene.rates.clone(),
            FlightClock::Virtual,
            "in_process"
        )
    );
    let last = rec.messages.last().expect("messages");
    assert_eq!(last.topic, TOPIC_SUMMARY);
    assert_eq!(rec.topic(TOPIC_SUMMARY).count(), 1);
    let recorded: serde_json::Value = serde_json::from_slice(&last.data).expect("summary");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    let obj = file.as_object_mut().expect("object");
    obj.remove("wall_seconds");
    obj.remove("realtime_factor");
    assert_eq!(recorded, file);

    // Virtual time: the same flight records the same bytes.
    let again = dir.join("again.mcap");
    fly_logged("step.ron", &again, &dir.join("c.json"));
    assert!(
        std::fs::read(&again).expect("mcap") == bytes,
        "two recordings of the same virtual flight differ"
    );
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Python's `mcap` (the reference implementation's reader) on a complete recording (indexed,
/// seeking reader) and on one cut in the middle of a chunk (non-seeking reader).
const PY_READ: &str = r#"
import io, json, sys
from collections import Counter
from mcap.reader import make_reader, NonSeekingReader
data = open(sys.argv[1], "rb").read()
r = make_reader(io.BytesIO(data))
summary = r.get_summary()
topics = Counter()
encodings = set()
for schema, channel, message in r.iter_messages():
    topics[channel.topic] += 1
    encodings.add((channel.message_encoding, schema.encoding if schema else ""))
    json.loads(message.data)
cut = NonSeekingReader(io.BytesIO(data[: len(data) // 2]))
before_cut = 0
error = None
try:
    for _s, _c, _m in cut.iter_messages(log_time_order=False):
        before_cut += 1
except Exception as e:
    error = type(e).__name__
print(json.dumps({
    "topics": topics,
    "encodings": sorted(encodings),
    "chunks": summary.statistics.chunk_count,
    "messages": summary.statistics.message_count,
    "before_cut": before_cut,
    "cut_error": error,
}))
"#;

#[test]
fn python_mcap_reads_the_flight_log() {
    let _slot = crate::realtime_slot();
    let has_mcap = Command::new(python())
        .args(["-c", "import mcap.reader"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_mcap,
        "this test needs Python with the `mcap` package: run scripts/setup (it installs it), \
         or set PYTHON"
    );
    let dir = temp_dir("recorder-python");
    let mcap = dir.join("hover.mcap");
    fly_logged("hover.ron", &mcap, &dir.join("s.json"));
    let out = Command::new(python())
        .args(["-c", PY_READ, s(&mcap)])
        .output()
        .expect("run python");
    assert!(out.status.success(), "python mcap failed: {}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    eprintln!("python mcap: {r}");
    let rows = r["topics"][TOPIC_STATE].as_u64().expect("state rows");
    assert!((1000..=1001).contains(&rows), "{rows} rows");
    assert_eq!(r["topics"][TOPIC_HEADER], 1);
    assert_eq!(r["topics"][TOPIC_SUMMARY], 1);
    // Every message is counted (the Foxglove topics beside the rows and the header and summary).
    let total: u64 = r["topics"]
        .as_object()
        .expect("topics")
        .values()
        .filter_map(|n| n.as_u64())
        .sum();
    assert!(total > rows + 2, "{r}");
    assert_eq!(r["messages"], total);
    assert_eq!(r["encodings"], serde_json::json!([["json", "jsonschema"]]));
    // The cut file: the whole chunks before the cut, then the reader's end-of-file error.
    let before = r["before_cut"].as_u64().expect("count");
    assert!(
        before > total / 3 && before < total / 2 + 2,
        "{before} messages before the cut"
    );
    assert!(r["cut_error"].is_string(), "{r}");
}

#[test]
fn kill_9_of_a_real_time_flight_loses_at_most_half_a_second() {
    let _slot = crate::realtime_slot();
    let scene = scene_path("hover_kinect.ron");
    // A port nobody uses right now (tests run in parallel, with other programs around).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|sock| sock.local_addr())
        .expect("an ephemeral UDP port")
        .port();
    let sitl = crate::sitl::start_sitl(port, &["--scene", s(&scene)]);
    let dir = temp_dir("recorder-kill");
    let mcap = dir.join("killed.mcap");
    let uri = format!("udp://127.0.0.1:{}", sitl.port);
    let mut child = Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "fly",
            s(&scene),
            "--link",
            &uri,
            "--log",
            s(&mcap),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depthpilot fly");
    // Wait until the file shows the flight under way (the flight clock starts at the first
    // truth sample, after the connection), then let it fly ~4 s in all.
    let deadline = Instant::now() + Duration::from_secs(20);
    let started = loop {
        let rec = read_recording(&std::fs::read(&mcap).unwrap_or_default());
        if let Some(m) = rec.topic(TOPIC_STATE).next() {
            break m.publish_time_ns - m.log_time_ns;
        }
        let exited = child.try_wait().expect("poll");
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("fly's output");
            panic!(
                "no flight state in {mcap:?} (fly exited: {exited:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let kill_at_flight_s = 4.0 + 0.137; // off the 0.25 s chunk grid
    let kill_unix_ns = started + (kill_at_flight_s * 1e9) as u64;
    std::thread::sleep(Duration::from_nanos(
        kill_unix_ns.saturating_sub(unix_now_ns()),
    ));
    let killed_unix_ns = unix_now_ns();
    child.kill().expect("SIGKILL");
    let out = child.wait_with_output().expect("fly's output");
    if !out.stderr.is_empty() {
        eprintln!("fly's stderr: {}", String::from_utf8_lossy(&out.stderr));
    }

    let rec = read_recording(&std::fs::read(&mcap).expect("file exists"));
    assert!(
        matches!(rec.damage, Some(ReadError::Truncated(_))),
        "a killed recording ends without summary and footer: {:?}",
        rec.damage
    );
    let rows: Vec<_> = rec.topic(TOPIC_STATE).collect();
    let first = rows.first().expect("rows");
    let last = rows.last().expect("rows");
    let header: FlightHeader = serde_json::from_slice(
        &rec.topic(TOPIC_HEADER)
            .next()
            .expect("header survives")
            .data,
    )
    .expect("header parses");
    assert_eq!(header.clock, FlightClock::RealTime);
    // Wall clock of the flight's t = 0, from the first row; the kill on the flight clock.
    let t0_unix_ns = first.publish_time_ns - first.log_time_ns;
    let kill_flight_s = (killed_unix_ns - t0_unix_ns) as f64 * 1e-9;
    let last_flight_s = last.log_time_ns as f64 * 1e-9;
    let lost_wall_s = (killed_unix_ns as f64 - last.publish_time_ns as f64) * 1e-9;
    eprintln!(
        "kill -9 at flight time {kill_flight_s:.3} s: the file holds {} rows up to {last_flight_s:.3} s; \
         lost {:.3} s of flight ({lost_wall_s:.3} s by the wall clock of the last row)",
        rows.len(),
        kill_flight_s - last_flight_s
    );
    assert!(kill_flight_s > 3.5, "flew long enough: {kill_flight_s}");
    assert!(lost_wall_s >= 0.0, "a row recorded after the kill?");
    assert!(
        lost_wall_s <= 0.5 && kill_flight_s - last_flight_s <= 0.5,
        "lost {lost_wall_s:.3} s (wall), {:.3} s (flight clock): more than 0.5 s",
        kill_flight_s - last_flight_s
    );
    // No gap: a row every log period up to the last.
    let expected = last_flight_s * header.rates.log_hz;
    assert!(
        rows.len() as f64 >= 0.95 * expected,
        "{} rows for {last_flight_s:.2} s",
        rows.len()
    );
    drop(sitl);
}

/// A deterministic byte stream (xorshift) for garbage.
fn garbage(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn plot_of_a_cut_or_corrupt_mcap_names_the_file_and_plots_what_is_readable() {
    let _slot = crate::realtime_slot();
    let dir = temp_dir("recorder-plot");
    let mcap = dir.join("flight.mcap");
    fly_logged("step.ron", &mcap, &dir.join("s.json"));
    let bytes = std::fs::read(&mcap).expect("mcap");
    let png = dir.join("out.png");
    let plot = |file: &Path| depthpilot(&["plot", s(file), "--out", s(&png)]);

    let out = plot(&mcap);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(1001 rows"));

    // Cut in the middle of a chunk: the rows of the chunks before it, and a warning.
    let cut = dir.join("cut.mcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 1234]).expect("write");
    let _ = std::fs::remove_file(&png);
    let out = plot(&cut);
    let err = stderr(&out);
    eprintln!("cut: {err}");
    assert!(out.status.success(), "{err}");
    assert!(err.contains(s(&cut)) && err.contains("ends early"), "{err}");
    assert!(png.exists(), "a partial plot");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.contains("(1001 rows") && stdout.contains("rows"),
        "{stdout}"
    );

    // Garbage over the middle of the file: the chunk's CRC fails; the rows around it plot.
    let corrupt = dir.join("corrupt.mcap");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid..mid + 200].copy_from_slice(&garbage(200, 7));
    std::fs::write(&corrupt, &b).expect("write");
    let _ = std::fs::remove_file(&png);
    let out = plot(&corrupt);
    let err = stderr(&out);
    eprintln!("corrupt: {err}");
    assert!(out.status.success(), "{err}");
    // The damaged chunk is skipped and said; the rows after it are plotted too.
    assert!(
        err.contains(s(&corrupt)) && err.contains("damaged record skipped"),
        "{err}"
    );
    assert!(
        err.contains("CRC fails") && err.contains("(to 10.00 s"),
        "{err}"
    );
    assert!(png.exists(), "a partial plot");

    // Random garbage, and a file cut before its first row: nothing to plot, bad input (2).
    let junk = dir.join("junk.mcap");
    std::fs::write(&junk, garbage(5000, 11)).expect("write");
    let out = plot(&junk);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(s(&junk)) && err.contains("not an MCAP file"),
        "{err}"
    );
    let stub = dir.join("stub.mcap");
    std::fs::write(&stub, &bytes[..40]).expect("write");
    let out = plot(&stub);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(s(&stub)), "{}", stderr(&out));

    // JSON Lines still plots.
    let jsonl = dir.join("flight.jsonl");
    fly_logged("step.ron", &jsonl, &dir.join("t.json"));
    let out = plot(&jsonl);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_unwritable_mcap_log_path_is_named() {
    let _slot = crate::realtime_slot();
    let path = "/nonexistent-depthpilot-dir/flight.mcap";
    let out = depthpilot(&["fly", s(&scene_path("hover.ron")), "--log", path, "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(path), "{}", stderr(&out));
}
