//! The file tailer: finds files by glob, follows them through renames, truncation and deletion,
//! and emits raw complete lines in batches, each with the checkpoint that covers it.
//!
//! The tailer knows no decoding and no index. Its only seam is the channel of [`TailBatch`]es:
//! the consumer (the index writer) stores each batch's checkpoint, an opaque JSON value keyed by
//! a stable file key, in the same commit as the batch's records, and hands the stored
//! [`Checkpoints`] back to [`Tailer::start`] after a restart. Nothing is lost and nothing is
//! emitted twice, as long as the consumer commits a batch's records and its checkpoint together.
//!
//! A batch whose checkpoint value is `null` (and which has no lines) means "forget this key":
//! the file is gone and was read to its end, so the payload stays compact.
//!
//! Only `watch.rs` touches `notify`, and only as a wake-up: the periodic sweep (re-glob, stat,
//! read to EOF) is the correctness path.
//!
//! Rules, in short:
//! - A file is known by its content, as Vector's and the OTel Collector's checksum fingerprints
//!   know it: the hash of its first bytes (1 KiB, or all of a shorter file — the fingerprint
//!   grows with a small file, so small files are read at once) and of the ≤32 bytes before the
//!   read position. While it is followed, its device + inode also identify it, so a rename
//!   keeps its position.
//! - A file not followed yet that holds what a known file held up to its read position (same
//!   head, same bytes before it, at least as long) is that file's copy: copytruncate's
//!   `app.log.1`. It continues from that position under the known file's key, so with
//!   `app.log*` every line is read exactly once, also across a rotation while stopped. A copy
//!   of a file still followed is not read (its lines are the original's) until the original is
//!   truncated or gone; one checked byte for byte to hold the start of it continues from its
//!   own end when more of the original was read than it holds (lines written between the copy
//!   and the truncation). An empty file is not placed until it has data.
//! - A followed file whose bytes before the read position changed, or that got smaller
//!   (truncation, copytruncate), is read again from 0 under a new key (skipping NUL runs where
//!   lines start); what was read of it waits `rotate_wait` as an orphan for its copy.
//! - On resume a checkpoint of the same inode is trusted only if the head and the bytes before
//!   its offset are unchanged; otherwise it is offered to copies, then forgotten.
//! - Files found without a checkpoint, at start or later, are read from the beginning.
//! - A file that leaves the globs (renamed away, deleted) is read to its end through the open
//!   handle; after `rotate_wait` without data its partial last line is emitted, its key
//!   forgotten. A checkpointed file renamed away while stopped is found beside its last path.
//! - At most `max_open_files` files are open at once: idle files are closed (least recently
//!   read first) and reopened, verified at their position, when their size or mtime changes.
//!   A closed file renamed out of the globs is found beside its last path; one deleted while
//!   closed loses what was written to it after it was closed.
//! - Lines are cut at `max_line_bytes` and flagged, except OTLP/JSON lines (first key
//!   `resourceSpans`, `resourceLogs`, `resourceMetrics`), read whole up to
//!   `max_otlp_line_bytes`; one such line is held in memory at a time.
//! - `.gz` files (with `backfill_gz`) are keyed by their own identity and read decompressed
//!   once; a rotated file that was read as plain text and compressed later is read again.

mod checkpoint;
mod discover;
mod error;
mod file;
mod lines;
mod run;
mod watch;

use std::time::Duration;

pub use checkpoint::Checkpoints;
pub use error::TailError;
pub use lines::{LineLimits, LineReader, is_otlp_json_start};

/// Lines longer than this are cut and flagged (1 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// OTLP/JSON lines (one Collector file-exporter batch each) may be this long (64 MiB).
pub const DEFAULT_MAX_OTLP_LINE_BYTES: usize = 64 << 20;
/// Files held open at once by default.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// What to tail and how.
#[derive(Debug, Clone)]
pub struct TailConfig {
    pub sources: Vec<SourceConfig>,
    /// How often every file is re-globbed and stat'ed, whatever `notify` says (default 1 s).
    pub sweep_interval: Duration,
    /// How long a file that left the globs (renamed away, deleted) is kept open after its last
    /// data, for late writes; then its partial last line is emitted and it is closed (5 s).
    pub rotate_wait: Duration,
    /// Lines longer than this are cut and flagged `truncated` (1 MiB).
    pub max_line_bytes: usize,
    /// OTLP/JSON lines may be this long before they are cut like others (64 MiB).
    pub max_otlp_line_bytes: usize,
    /// Files held open at once (256); idle ones are closed and reopened when they change.
    pub max_open_files: usize,
    /// Bytes read from a file at a time (64 KiB).
    pub read_chunk: usize,
    /// A batch is sent once it holds this many bytes of lines (1 MiB); with the channel's
    /// capacity this bounds the memory in flight.
    pub max_buffered_bytes: usize,
    /// Read `.gz` files that match the globs, decompressed, once (default false: `.gz` files are
    /// ignored).
    pub backfill_gz: bool,
    /// Use file-system events as wake-ups (default true). Off, the tailer polls only, every
    /// `sweep_interval` (as it does anyway where no events come, e.g. NFS).
    pub notify: bool,
}

/// One group of files, with what the decoder needs to know about them.
#[derive(Debug, Clone, Default)]
pub struct SourceConfig {
    /// Globs of the files to read (`*` does not cross `/`; `**` does).
    pub include: Vec<String>,
    /// Globs of files not to read: matched against the whole path, and a pattern without `/`
    /// also against the file name.
    pub exclude: Vec<String>,
    /// Passed through for the decoder.
    pub service: Option<String>,
    /// Passed through for the decoder.
    pub patterns: Vec<String>,
    /// Passed through for the decoder.
    pub format: Option<String>,
}

/// Complete lines of one file, and the checkpoint that covers them.
#[derive(Debug, Clone, PartialEq)]
pub struct TailBatch {
    /// Index into [`TailConfig::sources`].
    pub source_index: usize,
    /// The file's current path (its origin source name).
    pub path: String,
    pub lines: Vec<Line>,
    /// File key → checkpoint value covering every line of this file up to and including this
    /// batch. A `null` value (with no lines) means the key is to be forgotten.
    pub checkpoint: (String, serde_json::Value),
}

/// One line of a file, without its newline (and without a `\r` before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the line's start in the file (in the decompressed stream of a `.gz`).
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// The line was longer than its limit; `bytes` holds its first `max_line_bytes`.
    pub truncated: bool,
}

/// Starts tailers.
#[derive(Debug)]
pub struct Tailer {
    _private: (),
}

/// A running tailer; [`TailerHandle::stop`] ends it. Dropping the handle also asks it to stop.
#[derive(Debug)]
pub struct TailerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Default for TailConfig {
    fn default() -> TailConfig {
        TailConfig {
            sources: Vec::new(),
            sweep_interval: Duration::from_secs(1),
            rotate_wait: Duration::from_secs(5),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_otlp_line_bytes: DEFAULT_MAX_OTLP_LINE_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            read_chunk: 64 << 10,
            max_buffered_bytes: 1 << 20,
            backfill_gz: false,
            notify: true,
        }
    }
}

impl Tailer {
    /// Starts tailing on a thread of its own (file reads block; the thread runs a small
    /// runtime for the channel and timers). `checkpoints` are those of the last commit.
    /// Batches go to `tx`; when it is full the tailer waits, so a slow consumer slows reading.
    /// The tailer ends when stopped or when the receiver is dropped.
    pub fn start(
        config: TailConfig,
        checkpoints: Checkpoints,
        tx: tokio::sync::mpsc::Sender<TailBatch>,
    ) -> Result<TailerHandle, TailError> {
        let sources = discover::Sources::new(&config.sources)?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("threadline-tail".into())
            .spawn(move || run::run(config, sources, checkpoints, tx, stop_rx))
            .map_err(TailError::Spawn)?;
        Ok(TailerHandle {
            stop,
            thread: Some(thread),
        })
    }
}

impl TailerHandle {
    /// Stops the tailer and waits for its thread (promptly: it checks between reads and while
    /// waiting on the channel). Batches already sent stay in the channel.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Whether the tailer has ended (stopped, or its receiver was dropped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for TailerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
