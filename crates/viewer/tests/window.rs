//! The viewer's window, driven as a user drives it: under a virtual X server (Xvfb), with keys
//! and the mouse from xdotool (XTEST, the same path as a real keyboard), rendered by lavapipe.
//! Replay: the window opens (its first complete frame is timed), space pauses, → scrubs, + speeds
//! up, a left drag orbits, the wheel zooms, P saves the window. Live: `depthpilot fly --view`
//! starts the viewer on the running flight, and its keyboard is the teacher: holding Tab gives
//! the axes to the teacher in the flight's mux, X is the e-stop.
//!
//! Needs Xvfb and xdotool (`scripts/setup` installs them; CI does); without them these tests
//! fail, saying what to install.

mod common;

use common::{decode, distinct_colours, record, scene_file};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VIEWER: &str = env!("CARGO_BIN_EXE_depthpilot-viewer");
/// Long enough for a debug build under lavapipe on a busy 2-core machine.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("window-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Kills the child when dropped (a failed assertion leaves nothing running).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The window tests one at a time: the live one needs the viewer's frames well inside the mux's
/// 0.5 s teacher freshness (each frame sends the keys; a frozen window must not keep a teacher
/// alive), which two debug viewers sharing two cores with a flight could stretch.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A virtual X server on a display it picked itself (`-displayfd`).
struct Xvfb {
    _server: Kill,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.kill_viewers();
    }
}

fn xvfb() -> Xvfb {
    for tool in ["Xvfb", "xdotool"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is not installed: the window tests run the viewer under a virtual X server \
             and drive it with xdotool. Run scripts/setup (it installs xvfb and xdotool; CI does)."
        );
    }
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut out = child.stdout.take().expect("stdout");
    let mut number = String::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
        number.push(char::from(byte[0]));
    }
    assert!(
        number.trim().parse::<u32>().is_ok(),
        "Xvfb did not say its display (got `{number}`)"
    );
    Xvfb {
        _server: Kill(child),
        display: format!(":{}", number.trim()),
    }
}

impl Xvfb {
    /// xdotool against this display; fails the test if it fails (or waits a minute: `--sync`
    /// waits for ever on a window that never comes).
    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .args(["60", "xdotool"])
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("run xdotool");
        assert!(
            out.status.success(),
            "xdotool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Ends the viewers on this display (`fly --view` leaves its viewer open after the flight).
    fn kill_viewers(&self) {
        let Ok(out) = Command::new("xdotool")
            .args([
                "search",
                "--name",
                "depthpilot-viewer",
                "getwindowpid",
                "%@",
            ])
            .env("DISPLAY", &self.display)
            .output()
        else {
            return;
        };
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("sh")
                .args(["-c", &format!("kill {pid}")])
                .status();
        }
    }

    /// Focuses the viewer's window (no window manager: input goes to the focused window) and
    /// puts the pointer in its middle.
    fn focus_viewer(&self) {
        let ids = self.xdotool(&["search", "--sync", "--name", "depthpilot-viewer"]);
        let id = ids.lines().next().expect("a window id").trim().to_string();
        self.xdotool(&["windowfocus", "--sync", &id]);
        self.xdotool(&["mousemove", "--window", &id, "320", "180"]);
    }
}

/// A child's stderr lines, collected as they come.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn follow(pipe: impl Read + Send + 'static) -> Self {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.0.lock().expect("lines").push(line);
            }
        });
        lines
    }

    fn all(&self) -> String {
        self.0.lock().expect("lines").join("\n")
    }

    /// Waits for a line containing `needle` after the first `from` lines; its index and text.
    fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> (usize, String) {
        let start = Instant::now();
        loop {
            {
                let lines = self.0.lock().expect("lines");
                if let Some((i, l)) = lines
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, l)| l.contains(needle))
                {
                    return (i, l.clone());
                }
            }
            assert!(
                start.elapsed() < timeout,
                "no `{needle}` within {timeout:?}; the viewer said:\n{}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn len(&self) -> usize {
        self.0.lock().expect("lines").len()
    }
}

/// The number after `key` in `line`.
fn number_after(line: &str, key: &str) -> f64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("`{key}` in `{line}`"))
        + key.len();
    line[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a number after `{key}` in `{line}`"))
}

/// The distance in `viewer: view: yaw Y°, pitch P°, D m from (…)`.
fn distance(line: &str) -> f64 {
    line.split(" m from")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no distance in `{line}`"))
}

#[test]
fn the_replay_window_opens_and_its_keys_and_mouse_work() {
    let _one = one_at_a_time();
    let x = xvfb();
    let dir = tmp("replay");
    let log = dir.join("step.mcap");
    let scene = scene_file("step.ron");
    record(&scene, None, &log);
    let mut child = Command::new(VIEWER)
        .arg(&log)
        .arg("--scene")
        .arg(&scene)
        .args(["--size", "640x360", "--at", "2.0"])
        .env("DISPLAY", &x.display)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depthpilot-viewer");
    let lines = Lines::follow(child.stderr.take().expect("stderr"));
    let _viewer = Kill(child);

    let (_, open) = lines.wait_for("viewer: open:", 0, OPEN_TIMEOUT);
    let opened_at = Instant::now();
    let open_ms = number_after(&open, "after ");
    eprintln!("window: {open}");
    assert!(open_ms > 0.0);
    x.focus_viewer();

    // Space pauses (the replay plays from --at when the window opens).
    let n = lines.len();
    x.xdotool(&["key", "space"]);
    let (_, paused) = lines.wait_for("viewer: paused at", n, Duration::from_secs(30));
    let paused_s = number_after(&paused, "paused at ");
    // The replay starts at --at when the window shows it, not while pipelines compile: it has
    // played no longer than the window has been open.
    let open_for_s = opened_at.elapsed().as_secs_f64();
    assert!(
        paused_s >= 2.0 && paused_s - 2.0 <= open_for_s + 0.3,
        "{paused}, {open_for_s:.2} s after the window opened"
    );
    // → one second on; + doubles the speed.
    let n = lines.len();
    x.xdotool(&["key", "Right"]);
    let (_, at) = lines.wait_for("viewer: at ", n, Duration::from_secs(30));
    let at_s = number_after(&at, "viewer: at ");
    assert!((at_s - (paused_s + 1.0)).abs() < 0.02, "{paused} → {at}");
    let n = lines.len();
    x.xdotool(&["key", "plus"]);
    let (_, speed) = lines.wait_for("viewer: speed", n, Duration::from_secs(30));
    assert!(speed.contains("speed 2×"), "{speed}");

    // P saves the window as it is.
    let n = lines.len();
    x.xdotool(&["key", "p"]);
    let (_, saved) = lines.wait_for("viewer: saved", n, Duration::from_secs(60));
    let first = dir.join("depthpilot-view-1.png");
    assert!(saved.contains("depthpilot-view-1.png"), "{saved}");
    let before = decode(&first);
    let (w, h) = (before.width, before.height);
    assert_eq!((w, h), (640, 360), "the window's size");
    let colours = distinct_colours(&before);
    assert!(
        colours >= 100,
        "the saved window has {colours} colours: blank?"
    );

    // The wheel zooms in (the view is said: yaw, pitch, distance); a left drag orbits. The
    // replay is paused: only the view moves the picture.
    let n = lines.len();
    x.xdotool(&["click", "4"]);
    let (_, zoomed) = lines.wait_for("viewer: view: yaw", n, Duration::from_secs(30));
    let n = lines.len();
    x.xdotool(&["click", "4"]);
    let (_, closer) = lines.wait_for("viewer: view: yaw", n, Duration::from_secs(30));
    assert!(
        distance(&closer) < distance(&zoomed),
        "the wheel should zoom in: {zoomed} → {closer}"
    );
    let n = lines.len();
    x.xdotool(&["mousedown", "1"]);
    for _ in 0..3 {
        x.xdotool(&["mousemove_relative", "--sync", "40", "0"]);
        std::thread::sleep(Duration::from_millis(400));
    }
    x.xdotool(&["mouseup", "1"]);
    let (_, view) = lines.wait_for("viewer: view: yaw", n, Duration::from_secs(30));
    let (yaw0, yaw1) = (number_after(&closer, "yaw "), number_after(&view, "yaw "));
    assert!(
        (yaw1 - yaw0).abs() >= 5.0,
        "a 120 px drag should orbit: {closer} → {view}"
    );
    // A right drag pans: the point looked at moves.
    let n = lines.len();
    x.xdotool(&["mousedown", "3"]);
    for _ in 0..2 {
        x.xdotool(&["mousemove_relative", "--sync", "0", "40"]);
        std::thread::sleep(Duration::from_millis(400));
    }
    x.xdotool(&["mouseup", "3"]);
    let (_, panned) = lines.wait_for("viewer: view: yaw", n, Duration::from_secs(30));
    let target = |l: &str| l.split(" from ").nth(1).unwrap_or_default().to_string();
    assert_ne!(target(&view), target(&panned), "a right drag should pan");
    let n = lines.len();
    x.xdotool(&["key", "p"]);
    lines.wait_for("viewer: saved", n, Duration::from_secs(60));
    let after = decode(&dir.join("depthpilot-view-2.png"));
    let differing = before
        .rgb
        .chunks_exact(3)
        .zip(after.rgb.chunks_exact(3))
        .filter(|(a, b)| {
            a.iter()
                .zip(b.iter())
                .map(|(p, q)| p.abs_diff(*q) as u32)
                .sum::<u32>()
                > 30
        })
        .count();
    let fraction = differing as f64 / f64::from(w * h);
    eprintln!(
        "window: opened after {open_ms:.0} ms; {paused}; {at}; {speed}; {zoomed}; {closer}; \
         {view}; {panned}; {:.0} % of the picture changed with the zoom, orbit and pan",
        fraction * 100.0
    );
    assert!(
        fraction > 0.05,
        "zoom + orbit changed only {:.1} % of the picture",
        fraction * 100.0
    );
}

/// `depthpilot fly --view`: the flight's own binary is next to the viewer's (`cargo test
/// --workspace` builds both).
fn depthpilot() -> PathBuf {
    let exe = Path::new(VIEWER).with_file_name("depthpilot");
    assert!(
        exe.exists(),
        "{} not built: run the tests with `cargo test --workspace` (it builds the CLI too)",
        exe.display()
    );
    exe
}

fn free_tcp_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("tcp://127.0.0.1:{}", l.local_addr().expect("addr").port())
}

#[test]
fn fly_view_shows_the_flight_and_its_keyboard_is_the_teacher() {
    let _one = one_at_a_time();
    let x = xvfb();
    let dir = tmp("live");
    // hover.ron, long enough for a debug viewer to open under lavapipe on a busy machine.
    let text = std::fs::read_to_string(scene_file("hover.ron")).expect("hover.ron");
    assert!(
        text.contains("duration_s: 10.0"),
        "hover.ron's duration moved"
    );
    let scene = dir.join("hover.ron");
    std::fs::write(
        &scene,
        text.replace("duration_s: 10.0", "duration_s: 240.0"),
    )
    .expect("scene");
    let log = dir.join("live.jsonl");
    let mut child = Command::new(depthpilot())
        .arg("fly")
        .arg(&scene)
        .arg("--view")
        .args(["--state-out", &free_tcp_endpoint()])
        .args(["--teacher-in", &free_tcp_endpoint()])
        .arg("--log")
        .arg(&log)
        .env("DISPLAY", &x.display)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start depthpilot fly --view");
    // The viewer's stderr is fly's (inherited).
    let lines = Lines::follow(child.stderr.take().expect("stderr"));
    let mut fly = Kill(child);
    lines.wait_for("viewer: open:", 0, OPEN_TIMEOUT);
    x.focus_viewer();
    // Hands off for a second, Tab held for two, then X.
    std::thread::sleep(Duration::from_secs(1));
    x.xdotool(&["keydown", "Tab"]);
    std::thread::sleep(Duration::from_secs(2));
    x.xdotool(&["keyup", "Tab"]);
    std::thread::sleep(Duration::from_secs(1));
    x.xdotool(&["key", "x"]);
    // The e-stop ends the flight.
    let start = Instant::now();
    let status = loop {
        if let Some(s) = fly.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the flight did not end after the e-stop:\n{}",
            lines.all()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("the flight log")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| r.get("t_s").is_some())
        .collect();
    let sources: Vec<String> = rows
        .iter()
        .map(|r| r["mux_sources"][0].as_str().unwrap_or("?").to_string())
        .collect();
    // The sequence of sources, runs collapsed: student, teacher (Tab), student, estop (X).
    let mut runs: Vec<(String, usize)> = Vec::new();
    for s in &sources {
        match runs.last_mut() {
            Some((last, n)) if last == s => *n += 1,
            _ => runs.push((s.clone(), 1)),
        }
    }
    eprintln!(
        "fly --view: {} rows, roll source runs {runs:?}, exit {status}",
        rows.len()
    );
    let order: Vec<&str> = runs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        order,
        ["student", "teacher", "student", "estop"],
        "{}",
        lines.all()
    );
    let teacher_rows = runs[1].1;
    // 2 s of Tab at 100 rows a second, give or take the key's travel to the flight.
    assert!(
        (150..=260).contains(&teacher_rows),
        "Tab was held for 2 s: {teacher_rows} rows under the teacher"
    );
}
