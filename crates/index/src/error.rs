//! The index crate's one error type.

use std::path::PathBuf;

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
    #[error("the index writer has stopped")]
    WriterClosed,
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
            Error::Query { .. } | Error::Cursor { .. } | Error::Aggregation { .. }
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
