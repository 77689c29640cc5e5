//! Live: the rows of a running flight from the bus (`depthpilot fly --view`, or `--state-out`):
//! a SUB connected to the flight's PUB (topics `flight/state`, one log row each, and
//! `flight/header`, the scene's name every second). Garbage is counted and skipped; a viewer that
//! falls behind loses rows, the flight never waits for it.

use crate::flight::{Flight, LoadError, Row};
use crate::{FlightData, Playback};
use bevy::prelude::*;
use depthpilot_runtime::bus::{self, TOPIC_FLIGHT_HEADER, TOPIC_FLIGHT_STATE};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The SUB and what came through it.
pub struct LiveSource {
    socket: zmq::Socket,
    pub endpoint: String,
    pub received: u64,
    pub garbage: u64,
    scene: Option<String>,
}

impl LiveSource {
    pub fn connect(endpoint: &str) -> Result<Self, LoadError> {
        let fail = |e: zmq::Error| LoadError(format!("--live {endpoint}: {e}"));
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::SUB).map_err(fail)?;
        socket.set_linger(0).map_err(fail)?;
        socket.set_rcvhwm(100_000).map_err(fail)?;
        socket
            .set_maxmsgsize(depthpilot_types::netpolicy::Role::State.max_message_bytes())
            .map_err(fail)?;
        socket.set_subscribe(b"flight/").map_err(fail)?;
        socket.connect(endpoint).map_err(fail)?;
        Ok(Self {
            socket,
            endpoint: endpoint.to_string(),
            received: 0,
            garbage: 0,
            scene: None,
        })
    }

    /// The rows that arrived, waiting up to `wait_ms` for the first.
    pub fn poll(&mut self, wait_ms: i64) -> Vec<Row> {
        let mut rows = Vec::new();
        if wait_ms > 0 && !matches!(self.socket.poll(zmq::POLLIN, wait_ms), Ok(n) if n > 0) {
            return rows;
        }
        while let Ok(frames) = self.socket.recv_multipart(zmq::DONTWAIT) {
            let topic = frames.first().map(Vec::as_slice).unwrap_or_default();
            if topic == TOPIC_FLIGHT_HEADER.as_bytes() {
                match bus::decode::<serde_json::Value>(TOPIC_FLIGHT_HEADER, &frames) {
                    Ok(e) => {
                        if let Some(name) = e.payload["scene"].as_str() {
                            self.scene = Some(name.to_string());
                        }
                    }
                    Err(_) => self.garbage += 1,
                }
                continue;
            }
            match bus::decode::<Row>(TOPIC_FLIGHT_STATE, &frames) {
                Ok(e) if e.payload.t_s.is_finite() => {
                    self.received += 1;
                    rows.push(e.payload);
                }
                _ => {
                    self.garbage += 1;
                    if self.garbage <= 3 {
                        eprintln!(
                            "depthpilot-viewer: live: skipped a message on {} that is not a flight row",
                            self.endpoint
                        );
                    }
                }
            }
        }
        rows
    }
}

/// Waits for the flight: its first rows (and, with `until_t`, every row up to that time).
pub fn first_flight(
    src: &mut LiveSource,
    scene_path: Option<&Path>,
    until_t: Option<f64>,
    timeout: Duration,
) -> Result<Flight, LoadError> {
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut said = false;
    loop {
        for r in src.poll(100) {
            if rows.last().is_none_or(|l| r.t_s > l.t_s) {
                rows.push(r);
            }
        }
        let enough = match (until_t, rows.last()) {
            (Some(t), Some(l)) => l.t_s >= t,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if enough {
            break;
        }
        if started.elapsed() > timeout {
            return Err(LoadError(match rows.last() {
                None => format!(
                    "--live {}: no flight rows within {:.0} s (start one with `depthpilot fly SCENE --view`, or `--state-out {}`)",
                    src.endpoint,
                    timeout.as_secs_f64(),
                    src.endpoint
                ),
                Some(l) => format!(
                    "--live {}: the flight reached only t = {:.2} s within {:.0} s",
                    src.endpoint,
                    l.t_s,
                    timeout.as_secs_f64()
                ),
            }));
        }
        if !said && started.elapsed() > Duration::from_secs(2) {
            said = true;
            eprintln!(
                "depthpilot-viewer: waiting for a flight on {}",
                src.endpoint
            );
        }
    }
    let mut warnings = Vec::new();
    let scene_name = src.scene.clone().unwrap_or_else(|| "?".to_string());
    let scene = match scene_path {
        Some(p) => Some(
            depthpilot_types::Scene::load(p)
                .map_err(|e| LoadError(format!("--scene {}: {e}", p.display())))?,
        ),
        None => crate::flight::find_scene(Path::new("."), &scene_name, &mut warnings),
    };
    Ok(Flight {
        path: PathBuf::from(&src.endpoint),
        scene_name,
        scene,
        rows,
        warnings,
        frames: None,
    })
}

/// The window follows the flight: new rows appended, the clock at the newest.
pub fn add(app: &mut App, src: LiveSource) {
    app.insert_non_send(src)
        .add_systems(Update, follow.before(crate::Redraw));
}

fn follow(
    mut src: NonSendMut<LiveSource>,
    mut flight: ResMut<FlightData>,
    mut playback: ResMut<Playback>,
) {
    let mut moved = false;
    for r in src.poll(0) {
        let rows = &mut flight.0.rows;
        if rows.last().is_none_or(|l| r.t_s > l.t_s) {
            rows.push(r);
            moved = true;
        }
    }
    if moved {
        playback.t_s = flight.0.end_s();
    }
}
