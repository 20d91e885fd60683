//! The one path of an OTLP request once a transport holds it, shared by the OTLP/HTTP receiver
//! (`otlp.rs`) and the OTLP/gRPC receiver (`grpc.rs`): a retry of a request acknowledged
//! recently is answered again (`recent.rs`), anything else is decoded, handed to the writer,
//! and answered only after the commit that holds its records. Records that cannot be decoded
//! or linked are rejected alone and counted in the partial-success answer.

use std::sync::Arc;
use std::time::Instant;

use decode::Output;
use index::{Batch, TrySendError};
use model::Record;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use tokio::sync::oneshot;

use crate::api::blocking;
use crate::recent::{self, Ack, Key, Lookup};
use crate::{ApiError, AppState};

/// Rejected records named in the partial-success message; the rest are counted.
const MESSAGE_EXAMPLES: usize = 3;
/// Longest partial-success message (ids and values quoted in it come from the client).
const MAX_MESSAGE_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Logs,
}

/// What decoding a request produced.
#[derive(Debug)]
pub(crate) struct Decoded {
    records: Vec<Record>,
    rejected: u64,
    /// For the partial-success message: why records were rejected, or warnings.
    message: String,
}

/// Indexes one OTLP request known by `key` (see [`recent::key`]) and returns its answer once
/// the commit holding its records is durable. `permit` (what holds one of `ingest_permits`,
/// which bound the requests held in memory) is dropped once `decode` has run, before the
/// commit is awaited; `decode` runs on the blocking pool, and only when the request is not a
/// retry of one acknowledged in the window.
pub(crate) async fn ingest<F, P>(
    state: &AppState,
    signal: Signal,
    key: Key,
    permit: P,
    decode: F,
) -> Result<Ack, ApiError>
where
    F: FnOnce(&AppState) -> Result<Decoded, ApiError> + Send + 'static,
    P: Send,
{
    // A retry of a request acknowledged in the window is answered again, not indexed again.
    let claim = loop {
        match state.recent.lookup(key) {
            Lookup::Acked(ack) => {
                state.metrics.count_duplicate(signal.name());
                return Ok(ack);
            }
            Lookup::InFlight(done) => recent::wait(done).await,
            Lookup::Claimed(claim) => break claim,
        }
    };

    let state2 = state.clone();
    let decoded = blocking(move || decode(&state2)).await?;
    drop(permit);
    let answer = Ack {
        rejected: decoded.rejected,
        message: decoded.message,
    };
    let accepted = decoded.records.len() as u64;
    if decoded.records.is_empty() {
        state
            .metrics
            .count_ingest(signal.name(), 0, decoded.rejected);
        claim.acked(answer.clone());
        return Ok(answer);
    }
    let (batch, ack) = Batch::with_ack(decoded.records, Vec::new());
    match state.writer.try_send(batch) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(ApiError::Busy {
                retry_after_s: state.config.retry_after_s,
            });
        }
        Err(TrySendError::Closed(_)) => {
            return Err(index::Error::WriterClosed.into());
        }
        Err(TrySendError::Paused { cause, .. }) => {
            return Err(index::Error::Paused { cause }.into());
        }
    }
    // From here the outcome is settled by a task of its own, so that a commit that succeeds
    // after this request was given up (the server's timeout, a client that hung up) is still
    // remembered as acknowledged: the exporter's retry is then answered, not indexed again.
    let (outcome_tx, outcome_rx) = oneshot::channel();
    let metrics = Arc::clone(&state.metrics);
    let settled_answer = answer.clone();
    let queued = Instant::now();
    tokio::spawn(async move {
        let outcome = match ack.await {
            Ok(Ok(_opstamp)) => {
                metrics.observe_ack(queued.elapsed());
                metrics.count_ingest(signal.name(), accepted, settled_answer.rejected);
                claim.acked(settled_answer);
                Ok(())
            }
            // Not durable: retryable, and the request is forgotten before the answer goes
            // out, so that the retry is indexed.
            Ok(Err(e @ index::Error::Paused { .. })) => {
                drop(claim);
                Err(ApiError::from(e))
            }
            Ok(Err(e)) => {
                drop(claim);
                Err(ApiError::Unavailable(format!("the commit failed: {e}")))
            }
            Err(_) => {
                drop(claim);
                Err(ApiError::Unavailable(
                    "the index writer stopped before committing".to_owned(),
                ))
            }
        };
        if let Err(Err(cause)) = outcome_tx.send(outcome) {
            // Nobody is left to answer; the cause still belongs in the log.
            tracing::error!(signal = signal.name(), %cause, "OTLP request not committed");
        }
    });
    match outcome_rx.await {
        Ok(Ok(())) => Ok(answer),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::Unavailable(
            "the task waiting for the commit stopped".into(),
        )),
    }
}

/// Counts as rejected the records that could not be decoded and the spans that cannot be
/// linked (no valid trace id or span id), and drops the latter; logs without ids are valid
/// (kept unlinked), their warnings become the message.
pub(crate) fn validate(signal: Signal, out: Output) -> Decoded {
    let undecodable = out.rejected.len() as u64;
    let n_before = out.records.len();
    let records: Vec<Record> = out
        .records
        .into_iter()
        .filter(|record| match record {
            Record::Span(span) => span.trace_id.is_some() && span.span_id.is_some(),
            Record::Log(_) => true,
        })
        .collect();
    let unlinkable = (n_before - records.len()) as u64;
    let noun = match signal {
        Signal::Traces => "span(s)",
        Signal::Logs => "log record(s)",
    };
    let mut parts = Vec::new();
    if undecodable > 0 {
        let mut where_why: Vec<String> = out
            .rejected
            .iter()
            .take(MESSAGE_EXAMPLES)
            .map(|r| format!("{}: {}", r.path, r.reason))
            .collect();
        if out.rejected.len() > MESSAGE_EXAMPLES {
            where_why.push(format!(
                "and {} more",
                out.rejected.len() - MESSAGE_EXAMPLES
            ));
        }
        parts.push(format!(
            "{undecodable} {noun} rejected as undecodable: {}",
            where_why.join("; ")
        ));
    }
    let first_warning = out.warnings.first().map(|w| w.message.as_str());
    if unlinkable > 0 {
        // The decoder's warning says the record is kept unlinked; here the span is rejected.
        parts.push(format!(
            "{unlinkable} span(s) rejected: no valid trace id or span id{}",
            first_warning
                .map(|w| format!(" (first: {})", w.trim_end_matches("; record kept unlinked")))
                .unwrap_or_default()
        ));
    } else if let Some(first) = first_warning {
        parts.push(format!(
            "accepted with {} warning(s); first: {first}",
            out.warnings.len(),
        ));
    }
    Decoded {
        records,
        rejected: undecodable + unlinkable,
        message: truncate(parts.join("; "), MAX_MESSAGE_BYTES),
    }
}

/// The protobuf answer to a traces request: `partial_success` only when something was
/// rejected or there is a warning (an empty one means full success).
pub(crate) fn traces_response(ack: &Ack) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: is_partial(ack).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected_i64(ack),
            error_message: ack.message.clone(),
        }),
    }
}

/// The protobuf answer to a logs request, as [`traces_response`].
pub(crate) fn logs_response(ack: &Ack) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: is_partial(ack).then(|| ExportLogsPartialSuccess {
            rejected_log_records: rejected_i64(ack),
            error_message: ack.message.clone(),
        }),
    }
}

pub(crate) fn is_partial(ack: &Ack) -> bool {
    ack.rejected > 0 || !ack.message.is_empty()
}

pub(crate) fn rejected_i64(ack: &Ack) -> i64 {
    i64::try_from(ack.rejected).unwrap_or(i64::MAX)
}

/// `s` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Signal {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }
}
