//! The flight log file of `depthpilot fly --log FILE`, in the format the extension names:
//! `.mcap` is an MCAP recording (`depthpilot_runtime::recorder`: topics `/flight/header`,
//! `/flight/state`, `/flight/summary`, and Foxglove's `/tf`, `/quad/*`, `/kinect/calibration`,
//! `/scene`, `/log`); anything else is JSON Lines, a header object then one
//! object per row.

use anyhow::Context;
use depthpilot_runtime::recorder::{FlightClock, FlightHeader, Recorder};
use depthpilot_sim::{LogRow, LogSink, Summary};
use depthpilot_types::Scene;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Whether `path` names an MCAP file (by its extension).
pub fn is_mcap_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mcap"))
}

/// A flight log being written, in either format.
pub enum FlightLog {
    Jsonl(JsonlLog),
    Mcap(Recorder),
}

impl FlightLog {
    /// Creates the log for a flight of `scene`; `link` is the remote simulator's URI or `None`
    /// (in process); `realtime`: the flight runs on the wall clock (chunks close by it too).
    pub fn create(
        path: &Path,
        scene: &Scene,
        link: Option<&str>,
        realtime: bool,
    ) -> anyhow::Result<Self> {
        if is_mcap_path(path) {
            let clock = if realtime {
                FlightClock::RealTime
            } else {
                FlightClock::Virtual
            };
            let header = FlightHeader::new(
                &scene.name,
                scene.seed,
                scene.rates.clone(),
                clock,
                link.unwrap_or("in_process"),
            );
            let rec = Recorder::start_flight(path, &header)?.with_foxglove(scene);
            return Ok(Self::Mcap(rec));
        }
        let header = serde_json::json!({
            "format": "depthpilot-flight-log",
            "version": 1,
            "scene": scene.name,
            "seed": scene.seed,
            "log_hz": scene.rates.log_hz,
        });
        Ok(Self::Jsonl(JsonlLog::create(path, &header)?))
    }

    /// Records the summary (MCAP only; a JSON Lines log has rows only), completes the file and
    /// reports the first write error, if any.
    pub fn finish(self, summary: Option<&Summary>) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(log) => log.finish(),
            Self::Mcap(mut rec) => {
                if let Some(s) = summary {
                    rec.record_summary(s)?;
                }
                rec.finish()?;
                Ok(())
            }
        }
    }
}

impl LogSink for FlightLog {
    fn row(&mut self, row: &LogRow) {
        match self {
            Self::Jsonl(log) => log.row(row),
            Self::Mcap(rec) => rec.row(row),
        }
    }
}

pub struct JsonlLog {
    path: PathBuf,
    out: BufWriter<File>,
    error: Option<std::io::Error>,
}

impl JsonlLog {
    pub fn create(path: &Path, header: &serde_json::Value) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create log file {}", path.display()))?;
        let mut out = BufWriter::new(file);
        writeln!(out, "{header}")
            .with_context(|| format!("cannot write log file {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            error: None,
        })
    }

    /// Flushes; reports the first write error, if any.
    pub fn finish(mut self) -> anyhow::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e).with_context(|| format!("writing log file {}", self.path.display()));
        }
        self.out
            .flush()
            .with_context(|| format!("writing log file {}", self.path.display()))
    }
}

impl LogSink for JsonlLog {
    fn row(&mut self, row: &LogRow) {
        if self.error.is_some() {
            return;
        }
        let line = match serde_json::to_string(row) {
            Ok(l) => l,
            Err(e) => {
                self.error = Some(std::io::Error::other(e));
                return;
            }
        };
        if let Err(e) = writeln!(self.out, "{line}") {
            self.error = Some(e);
        }
    }
}
