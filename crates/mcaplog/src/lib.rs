//! The MCAP layer (<https://mcap.dev>) shared by depthpilot's two recorders: flight logs
//! (`depthpilot_runtime::recorder`) and camera sessions (`depthpilot_camera::session`).
//!
//! In scope: [`ChunkedWriter`], which writes uncompressed chunks and hands each to the OS as soon
//! as it closes (by log-time span, size, or the wall-clock age of its oldest message), so that a
//! process killed with SIGKILL leaves every chunk but the open one readable; [`scan`] and
//! [`read_bytes`], a lenient reader that walks records by their framing, checks each chunk's CRC
//! before taking any of its messages, skips a damaged chunk (and says so), and reads the chunks
//! after it; and [`repair`], which re-reads a killed or damaged file leniently and rewrites it
//! whole, with summary and index, so that seeking readers (Foxglove) open it.
//!
//! Out of scope: what the topics mean (each recorder owns its topics, schemas and messages),
//! compression, attachments and metadata records (read past, not kept).

mod reader;
mod repair;
mod writer;

pub use reader::{
    ChannelInfo, FileSource, MessageRef, ReadError, RecordedMessage, Recording, Scan, SchemaInfo,
    SkippedRecord, Source, chunk_offsets, describe_start, is_mcap, read_bytes, scan,
};
pub use repair::{RepairError, RepairReport, repair};
pub use writer::{ChunkedWriter, WriteError, WriteStats, WriterOptions};

/// The first bytes of every MCAP file.
pub const MCAP_MAGIC: &[u8] = mcap::MAGIC;

#[cfg(test)]
mod tests;
