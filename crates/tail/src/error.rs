//! The tailer's errors: only configuration and start-up fail; I/O errors on single files are
//! retried at the next sweep.

/// Why a tailer could not start, or checkpoints could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("source {source_index}: invalid glob {pattern:?}: {message}")]
    Glob {
        source_index: usize,
        pattern: String,
        message: String,
    },
    #[error("source {source_index} has no include glob")]
    NoInclude { source_index: usize },
    #[error("checkpoints are not a JSON object of file key to checkpoint")]
    Checkpoints,
    #[error("could not start the tailer thread: {0}")]
    Spawn(#[source] std::io::Error),
}
