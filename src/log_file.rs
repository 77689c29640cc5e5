//! The flight log file: JSON Lines, a header object then one object per row. (The MCAP recorder
//! replaces it with the actor runtime.)

use anyhow::Context;
use depthpilot_sim::{LogRow, LogSink};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
