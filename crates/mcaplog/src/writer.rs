//! The crash-safe chunked writer.
//!
//! Chunks are uncompressed, held in memory and written whole. A chunk is closed, written and
//! flushed to the OS when (a) the next message is [`WriterOptions::chunk_span`] or more of log
//! time after the chunk's first message, (b) it holds more than [`WriterOptions::chunk_bytes`]
//! or (c), with [`WriterOptions::wall_clock_flush`], its oldest message has waited `chunk_span`
//! of wall time: checked when a message is written and by a background thread every
//! `min(chunk_span / 5, 50 ms)`, so a writer whose caller stalls still gets its data out. A
//! process killed with SIGKILL therefore loses at most the open chunk (the kernel keeps what was
//! written; a power cut needs an fsync, which the writer does not do). The MCAP magic and header
//! reach the file when it is created.

use mcap::records::MessageHeader;
use mcap::write::{NoSeek, WriteOptions, Writer};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The file could not be created or written. Both name the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
}

/// How [`ChunkedWriter`] chunks its file.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// The MCAP header's profile.
    pub profile: String,
    /// Close a chunk once it spans this much log time, or (with `wall_clock_flush`) once its
    /// oldest message has waited this long.
    pub chunk_span: Duration,
    /// Close a chunk once it holds more than this many bytes.
    pub chunk_bytes: u64,
    /// Rule (c) of the module doc. Off: the file depends only on what was written, not on when.
    pub wall_clock_flush: bool,
}

/// What [`ChunkedWriter::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteStats {
    pub messages: u64,
    pub chunks: u32,
}

type McapWriter = Writer<NoSeek<BufWriter<File>>>;

/// What the caller's thread and the flusher thread share.
struct Shared {
    writer: Option<McapWriter>,
    /// Log time of the open chunk's first message, and when (wall) it was written.
    open_chunk: Option<(u64, Instant)>,
    /// The flusher's error, returned by the next call on the writer.
    deferred: Option<mcap::McapError>,
}

impl Shared {
    fn close_chunk(&mut self) -> Result<(), mcap::McapError> {
        if self.open_chunk.take().is_some()
            && let Some(w) = self.writer.as_mut()
        {
            w.flush()?;
        }
        Ok(())
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// Writes an MCAP file that survives a killed process. See the module doc. Dropped without
/// [`ChunkedWriter::finish`] (an error path), it still completes its file.
pub struct ChunkedWriter {
    path: PathBuf,
    chunk_span: Duration,
    wall_clock_flush: bool,
    shared: Arc<Mutex<Shared>>,
    flusher: Option<Flusher>,
    sequence: u32,
    messages: u64,
}

impl ChunkedWriter {
    /// Creates the file (replacing it), writes the MCAP magic and header to it and, with
    /// `wall_clock_flush`, starts the flusher thread.
    pub fn create(path: &Path, options: WriterOptions) -> Result<Self, WriteError> {
        let create_err = |source| WriteError::Create {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(create_err)?;
        let writer = WriteOptions::new()
            .profile(options.profile.clone())
            .compression(None)
            .chunk_size(Some(options.chunk_bytes))
            .disable_seeking(true)
            .create(NoSeek::new(BufWriter::with_capacity(64 * 1024, file)))
            .map_err(|source| WriteError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        let shared = Arc::new(Mutex::new(Shared {
            writer: Some(writer),
            open_chunk: None,
            deferred: None,
        }));
        let flusher = if options.wall_clock_flush {
            Some(spawn_flusher(Arc::clone(&shared), options.chunk_span).map_err(create_err)?)
        } else {
            None
        };
        let mut w = Self {
            path: path.to_path_buf(),
            chunk_span: options.chunk_span,
            wall_clock_flush: options.wall_clock_flush,
            shared,
            flusher,
            sequence: 0,
            messages: 0,
        };
        w.with_writer(|w| w.flush())?;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Messages written so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Adds a schema (`encoding` e.g. `jsonschema`); its id, for [`ChunkedWriter::add_channel`].
    pub fn add_schema(
        &mut self,
        name: &str,
        encoding: &str,
        data: &[u8],
    ) -> Result<u16, WriteError> {
        self.with_writer(|w| w.add_schema(name, encoding, data))
    }

    /// Adds a channel (`schema_id` 0: schema-less); its id, for [`ChunkedWriter::write`].
    pub fn add_channel(
        &mut self,
        schema_id: u16,
        topic: &str,
        message_encoding: &str,
    ) -> Result<u16, WriteError> {
        self.with_writer(|w| w.add_channel(schema_id, topic, message_encoding, &BTreeMap::new()))
    }

    /// Writes one message; its sequence number is the count of messages before it.
    pub fn write(
        &mut self,
        channel_id: u16,
        log_time_ns: u64,
        publish_time_ns: u64,
        data: &[u8],
    ) -> Result<(), WriteError> {
        let header = MessageHeader {
            channel_id,
            sequence: self.sequence,
            log_time: log_time_ns,
            publish_time: publish_time_ns,
        };
        let span = self.chunk_span;
        let span_ns = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        let wall_clock_flush = self.wall_clock_flush;
        let mut shared = lock(&self.shared);
        if let Some(e) = shared.deferred.take() {
            drop(shared);
            return Err(self.write_error(e));
        }
        let now = Instant::now();
        let result = (|| {
            // A chunk spans less than `chunk_span` of log time: close the open one first if
            // this message lies beyond it (deterministic, unlike the wall clock).
            if let Some((first_ns, _)) = shared.open_chunk
                && log_time_ns.saturating_sub(first_ns) >= span_ns
            {
                shared.close_chunk()?;
            }
            let Some(w) = shared.writer.as_mut() else {
                return Err(mcap::McapError::AttemptedWriteAfterFailure);
            };
            w.write_to_known_channel(&header, data)?;
            let (_, since) = *shared.open_chunk.get_or_insert((log_time_ns, now));
            if wall_clock_flush && now.duration_since(since) >= span {
                shared.close_chunk()?;
            }
            Ok(())
        })();
        drop(shared);
        result.map_err(|e| self.write_error(e))?;
        self.sequence = self.sequence.wrapping_add(1);
        self.messages += 1;
        Ok(())
    }

    /// Closes the open chunk now and hands it to the OS (nothing if no chunk is open).
    pub fn close_chunk(&mut self) -> Result<(), WriteError> {
        let closed = lock(&self.shared).close_chunk();
        closed.map_err(|e| self.write_error(e))
    }

    /// Writes the last chunk, the summary section and the footer.
    pub fn finish(mut self) -> Result<WriteStats, WriteError> {
        self.close()
    }

    fn close(&mut self) -> Result<WriteStats, WriteError> {
        if let Some(f) = self.flusher.take() {
            drop(f.stop);
            let _ = f.thread.join();
        }
        let mut shared = lock(&self.shared);
        let deferred = shared.deferred.take();
        let writer = shared.writer.take();
        drop(shared);
        if let Some(e) = deferred {
            return Err(self.write_error(e));
        }
        let Some(mut writer) = writer else {
            return Err(self.write_error(mcap::McapError::AttemptedWriteAfterFailure));
        };
        let summary = writer.finish().map_err(|e| self.write_error(e))?;
        writer
            .into_inner()
            .into_inner()
            .into_inner()
            .map_err(|e| self.write_error(mcap::McapError::Io(e.into_error())))?;
        Ok(WriteStats {
            messages: self.messages,
            chunks: summary.stats.map_or(0, |s| s.chunk_count),
        })
    }

    fn write_error(&self, source: mcap::McapError) -> WriteError {
        WriteError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn with_writer<R>(
        &mut self,
        f: impl FnOnce(&mut McapWriter) -> Result<R, mcap::McapError>,
    ) -> Result<R, WriteError> {
        let mut shared = lock(&self.shared);
        let result = match shared.writer.as_mut() {
            Some(w) => f(w),
            None => Err(mcap::McapError::AttemptedWriteAfterFailure),
        };
        drop(shared);
        result.map_err(|e| self.write_error(e))
    }
}

impl Drop for ChunkedWriter {
    /// A writer dropped without `finish` (an error path) still completes its file.
    fn drop(&mut self) {
        if self.flusher.is_some() || lock(&self.shared).writer.is_some() {
            let _ = self.close();
        }
    }
}

fn spawn_flusher(shared: Arc<Mutex<Shared>>, span: Duration) -> std::io::Result<Flusher> {
    let (stop, stopped) = mpsc::channel::<()>();
    let tick = (span / 5).clamp(Duration::from_millis(1), Duration::from_millis(50));
    let thread = std::thread::Builder::new()
        .name("mcap-flush".to_string())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                let mut s = lock(&shared);
                if s.deferred.is_none()
                    && let Some((_, since)) = s.open_chunk
                    && since.elapsed() >= span
                    && let Err(e) = s.close_chunk()
                {
                    s.deferred = Some(e);
                }
            }
        })?;
    Ok(Flusher { stop, thread })
}
