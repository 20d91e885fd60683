//! The index crate's one error type.

use std::path::PathBuf;

impl Error {
    /// [`Error::OtherVersion`] from `schema::Fields::from_schema`'s refusal.
    pub(crate) fn other_version(dir: &std::path::Path, err: tantivy::TantivyError) -> Error {
        Error::OtherVersion {
            path: dir.to_owned(),
            message: match err {
                tantivy::TantivyError::SchemaError(message) => message,
                other => other.to_string(),
            },
        }
    }
}

/// Everything that can go wrong in the index crate, with enough context to act on.
///
/// `Query`, `Cursor` and `Aggregation` are the caller's mistakes (HTTP 400); the others are ours.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create index directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open index at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    /// Another process holds the index's lock ([`crate::IndexLock`]).
    #[error(
        "another threadline process{pid} is writing {dir}",
        pid = .pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        dir = .dir.display()
    )]
    Locked { dir: PathBuf, pid: Option<u32> },
    #[error("cannot take the index lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Segment files without the `meta.json` that lists them: starting an empty index there
    /// would delete them at its first commit.
    #[error(
        "{path} holds index files ({found}) but no meta.json, the file that lists them: refusing to start an empty index there, whose first commit would delete them. Restore meta.json from a backup, or move the directory away to start afresh",
        path = .path.display()
    )]
    MissingMeta { path: PathBuf, found: String },
    #[error("no index at {path}", path = .path.display())]
    NoIndex { path: PathBuf },
    /// An index of another schema: written by another version of threadline. The message says
    /// how to rebuild it.
    #[error("cannot open index at {path}: {message}", path = .path.display())]
    OtherVersion { path: PathBuf, message: String },
    /// A segment file is missing or unreadable (found when opening the index).
    #[error("the index at {path} is damaged: {message}", path = .path.display())]
    Damaged { path: PathBuf, message: String },
    #[error("{context}: {source}")]
    Tantivy {
        context: &'static str,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("the last commit's payload is not a threadline checkpoint payload: {message}")]
    Payload { message: String },
    #[error("a stored record is not valid JSON: {source}")]
    StoredRecord {
        #[source]
        source: serde_json::Error,
    },
    /// Displays the parser's message only (it already names the column), so a printed error
    /// chain does not repeat it.
    #[error("invalid query: {0}")]
    Query(crate::query::QueryError),
    #[error("invalid cursor {cursor:?}")]
    Cursor { cursor: String },
    #[error("invalid aggregation: {message}")]
    Aggregation { message: String },
    /// A request that cannot be answered as asked (an unknown sort order, an unknown field);
    /// the message says what to write instead.
    #[error("{message}")]
    InvalidRequest { message: String },
    /// The writer thread is gone: shut down, or it panicked (its panic message is in the log).
    #[error("the index writer is not running (it was shut down or it panicked)")]
    WriterClosed,
    /// An error (a full disk, too many open files) paused indexing; the writer retries by
    /// itself. Retryable: nothing of the refused work was committed.
    #[error("indexing is paused: {cause}; nothing was committed, retry later")]
    Paused { cause: String },
    /// A batch made before the writer's last rollback: its source must restart from the
    /// committed checkpoints.
    #[error(
        "the batch was produced before the writer rolled back; re-read it from the last commit"
    )]
    Stale,
    #[error("commit failed: {message}")]
    Commit { message: String },
    #[error("the index writer thread panicked")]
    WriterPanicked,
}

impl Error {
    /// True when the request was wrong (bad query, cursor or aggregation), not the index.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Error::Query { .. }
                | Error::Cursor { .. }
                | Error::Aggregation { .. }
                | Error::InvalidRequest { .. }
                // Raised by the query's own weights (a trace-level predicate over its bounds).
                | Error::Tantivy {
                    source: tantivy::TantivyError::InvalidArgument(_),
                    ..
                }
        )
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a short description of what was being done to a tantivy error.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T> Context<T> for tantivy::Result<T> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|source| Error::Tantivy { context, source })
    }
}

impl From<crate::query::QueryError> for Error {
    fn from(err: crate::query::QueryError) -> Self {
        Error::Query(err)
    }
}
