//! `depthpilot log repair`: a killed or damaged recording (a flight log from `fly --log X.mcap`
//! or a camera session from `record`) rewritten whole, with summary and index, so that seeking
//! MCAP readers (Foxglove) open it. Every intact message is kept; a damaged chunk's are lost.

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_mcaplog::{RepairError, RepairReport, repair};
use std::path::{Path, PathBuf};

/// Arguments of `depthpilot log`.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LogCommand {
    /// Rewrite a killed or damaged MCAP recording (flight log or camera session) whole, with
    /// summary and index: every intact message, a damaged chunk skipped.
    Repair(RepairArgs),
}

#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    /// The recording to repair (MCAP).
    pub input: PathBuf,
    /// Where to write it (may be INPUT itself); default: INPUT with `.repaired.mcap`, e.g.
    /// flight.mcap → flight.repaired.mcap.
    pub output: Option<PathBuf>,
}

pub fn log(args: &LogArgs) -> Result<(), Failure> {
    match &args.command {
        LogCommand::Repair(a) => log_repair(a),
    }
}

fn log_repair(args: &RepairArgs) -> Result<(), Failure> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.input));
    let report = repair(&args.input, &output).map_err(|e| Failure {
        code: match e {
            RepairError::Read { .. } | RepairError::NotMcap { .. } => EXIT_BAD_INPUT,
            RepairError::Write { .. } => 1,
        },
        error: e.into(),
    })?;
    println!("{}", describe(&args.input, &output, &report));
    Ok(())
}

/// `x.mcap` → `x.repaired.mcap` (`x` → `x.repaired.mcap`).
fn default_output(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap_or(input.as_os_str());
    let mut name = stem.to_os_string();
    name.push(".repaired.mcap");
    input.with_file_name(name)
}

fn describe(input: &Path, output: &Path, r: &RepairReport) -> String {
    let has = |t: &str| r.topics.iter().any(|x| x == t);
    let kind = if has(depthpilot_runtime::recorder::TOPIC_HEADER) {
        "flight log"
    } else if has(depthpilot_camera::session::TOPIC_SESSION_FRAME) {
        "camera session"
    } else {
        "MCAP recording"
    };
    let mut said = format!(
        "depthpilot log repair — {kind} {} → {}: {} messages in {} chunk{}, with summary and index",
        input.display(),
        output.display(),
        r.messages,
        r.chunks,
        if r.chunks == 1 { "" } else { "s" }
    );
    if r.input_was_whole() {
        said.push_str("; the input was already whole");
    }
    for (i, s) in r.skipped.iter().enumerate() {
        if i == 0 {
            said.push_str(&format!(
                "\n  skipped     {} damaged record(s), their messages lost",
                r.skipped.len()
            ));
        }
        said.push_str(&format!("\n    {s}"));
    }
    if let Some(d) = &r.damage {
        said.push_str(&format!("\n  input       {d}"));
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_output_sits_beside_the_input() {
        assert_eq!(
            default_output(Path::new("logs/flight.mcap")),
            PathBuf::from("logs/flight.repaired.mcap")
        );
        assert_eq!(
            default_output(Path::new("session")),
            PathBuf::from("session.repaired.mcap")
        );
    }
}
