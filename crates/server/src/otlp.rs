//! The OTLP/HTTP receiver: `POST /v1/traces` and `/v1/logs`, protobuf or JSON, plain or gzip,
//! answered in the request's content type. A 200 means durable: the handler waits for the
//! commit that holds the request's records. A full writer queue is a 429 with `Retry-After`, a
//! failed commit a 503. A retry of a request acknowledged in the last `retry_window` is
//! answered again without indexing (see `recent.rs`). Records that cannot be decoded are
//! rejected alone and counted in `partialSuccess`; a body that is not OTLP is a 400.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use decode::{DecodeError, Format, LineContext, Output};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use index::{Batch, TrySendError};
use model::Record;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::json;
use tokio::sync::oneshot;

use crate::api::blocking;
use crate::params::now_ns;
use crate::recent::{self, Ack, Lookup};
use crate::{ApiError, AppState};

/// The origin stored with records received over OTLP/HTTP.
const SOURCE: &str = "otlp/http";
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// Rejected records named in `partialSuccess.errorMessage`; the rest are counted.
const MESSAGE_EXAMPLES: usize = 3;
/// Longest `partialSuccess.errorMessage` (ids and values quoted in it come from the client).
const MAX_MESSAGE_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Traces,
    Logs,
}

/// What decoding a request produced.
#[derive(Debug)]
struct Decoded {
    records: Vec<Record>,
    rejected: u64,
    /// For `partialSuccess.errorMessage`: why records were rejected, or warnings.
    message: String,
}

/// `google.rpc.Status`, the body of an OTLP failure response.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

pub async fn traces(State(state): State<AppState>, request: Request) -> Response {
    receive(state, Signal::Traces, request).await
}

pub async fn logs(State(state): State<AppState>, request: Request) -> Response {
    receive(state, Signal::Logs, request).await
}

async fn receive(state: AppState, signal: Signal, request: Request) -> Response {
    let encoding = match encoding_of(request.headers()) {
        Ok(encoding) => encoding,
        // The request's encoding is unknown, so the error is in ours.
        Err(e) => return e.into_response(),
    };
    match receive_in(&state, signal, encoding, request).await {
        Ok(response) => response,
        Err(e) => error_response(encoding, &e),
    }
}

async fn receive_in(
    state: &AppState,
    signal: Signal,
    encoding: Encoding,
    request: Request,
) -> Result<Response, ApiError> {
    let limit = state.config.max_body_bytes;
    let gzip = is_gzip(request.headers())?;
    // Held while the body is read, decoded, or waits for an identical request in flight; not
    // while the commit is awaited.
    let permit = state
        .ingest_permits
        .try_acquire()
        .map_err(|_| ApiError::Busy {
            retry_after_s: state.config.retry_after_s,
        })?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge {
            limit,
            decompressed: false,
        });
    }
    let body = read_limited(request.into_body(), limit).await?;
    let (body, key) = blocking(move || {
        let body = if gzip {
            Bytes::from(gunzip(&body, limit)?)
        } else {
            body
        };
        let key = recent::key(signal.name(), encoding.name(), &body);
        Ok((body, key))
    })
    .await?;

    // A retry of a request acknowledged in the window is answered again, not indexed again.
    let claim = loop {
        match state.recent.lookup(key) {
            Lookup::Acked(ack) => {
                state.metrics.count_duplicate(signal.name());
                return Ok(success_response(
                    signal,
                    encoding,
                    ack.rejected,
                    &ack.message,
                ));
            }
            Lookup::InFlight(done) => recent::wait(done).await,
            Lookup::Claimed(claim) => break claim,
        }
    };

    let state2 = state.clone();
    let decoded = blocking(move || decode_body(&state2, signal, encoding, &body)).await?;
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
        return Ok(success_response(
            signal,
            encoding,
            answer.rejected,
            &answer.message,
        ));
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
            // Not durable: 503 so that the client retries, and the request is forgotten
            // before the answer goes out, so that the retry is indexed.
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
        Ok(Ok(())) => Ok(success_response(
            signal,
            encoding,
            answer.rejected,
            &answer.message,
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::Unavailable(
            "the task waiting for the commit stopped".into(),
        )),
    }
}

/// `Content-Type` without parameters: protobuf or JSON, anything else is a 415.
fn encoding_of(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        PROTOBUF => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {value:?} is not supported: send {PROTOBUF} or {JSON}"
        ))),
    }
}

fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let value = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {value:?} is not supported: send gzip or no encoding"
        ))),
    }
}

/// The whole body, refusing more than `limit` bytes as soon as they arrive.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::TooLarge {
            limit,
            decompressed: false,
        }),
        Err(e) => Err(ApiError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// Decompresses at most `limit` bytes: a gzip bomb stops at the limit with a 413.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(compressed).take(limit as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge {
            limit,
            decompressed: true,
        });
    }
    Ok(out)
}

fn decode_body(
    state: &AppState,
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<Decoded, ApiError> {
    let now = now_ns();
    let mut out = Output::default();
    match encoding {
        Encoding::Protobuf => {
            let result = match signal {
                Signal::Traces => {
                    decode::otlp_proto::decode_traces(body, &state.decoder, SOURCE, now, &mut out)
                }
                Signal::Logs => {
                    decode::otlp_proto::decode_logs(body, &state.decoder, SOURCE, now, &mut out)
                }
            };
            result.map_err(|e| {
                ApiError::BadRequest(format!("undecodable OTLP protobuf body: {e}"))
            })?;
        }
        Encoding::Json => {
            let cx = LineContext {
                source: SOURCE,
                offset: 0,
                read_time_ns: now,
            };
            // An OTLP body of the other signal (even an empty one) was posted to the wrong path.
            let detected = std::str::from_utf8(body).ok().map(decode::detect);
            if let Some(format @ (Format::OtlpTraces | Format::OtlpLogs | Format::OtlpMetrics)) =
                detected
                && format != signal.json_format()
            {
                return Err(ApiError::BadRequest(format!(
                    "the body is {}, not an OTLP {} request: post it to {}",
                    format.name(),
                    signal.name(),
                    other_path(format),
                )));
            }
            match state.decoder.decode_document(body, &cx, &mut out) {
                Ok(format) if format == signal.json_format() => {}
                Ok(format) => {
                    return Err(ApiError::BadRequest(format!(
                        "the body is {}, not an OTLP {} request: post it to {}",
                        format.name(),
                        signal.name(),
                        other_path(format),
                    )));
                }
                // `{}`, objects of unknown fields only and empty envelopes are empty requests
                // (unknown fields are ignored in OTLP/JSON). Anything else that is not OTLP
                // (a syntax error, envelopes of the wrong type) is a 400, never a silent 200.
                Err(DecodeError::WrongShape { .. })
                    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(
                        body,
                    )
                    .is_ok() =>
                {
                    out.clear();
                }
                Err(e) => {
                    return Err(ApiError::BadRequest(format!(
                        "undecodable OTLP/JSON body: {e}"
                    )));
                }
            }
        }
    }
    Ok(validate(signal, out))
}

/// Counts as rejected the records that could not be decoded and the spans that cannot be
/// linked (no valid trace id or span id), and drops the latter; logs without ids are valid
/// (kept unlinked), their warnings become the message.
fn validate(signal: Signal, out: Output) -> Decoded {
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

fn success_response(signal: Signal, encoding: Encoding, rejected: u64, message: &str) -> Response {
    let partial = rejected > 0 || !message.is_empty();
    let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
    match encoding {
        Encoding::Protobuf => {
            let body = match signal {
                Signal::Traces => ExportTraceServiceResponse {
                    partial_success: partial.then(|| ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: message.to_owned(),
                    }),
                }
                .encode_to_vec(),
                Signal::Logs => ExportLogsServiceResponse {
                    partial_success: partial.then(|| ExportLogsPartialSuccess {
                        rejected_log_records: rejected,
                        error_message: message.to_owned(),
                    }),
                }
                .encode_to_vec(),
            };
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))],
                body,
            )
                .into_response()
        }
        Encoding::Json => {
            let body = if partial {
                // proto3 JSON writes int64 as a string.
                let count_key = match signal {
                    Signal::Traces => "rejectedSpans",
                    Signal::Logs => "rejectedLogRecords",
                };
                json!({"partialSuccess": {count_key: rejected.to_string(), "errorMessage": message}})
            } else {
                json!({})
            };
            axum::Json(body).into_response()
        }
    }
}

/// A failure as `google.rpc.Status` in the request's encoding. The JSON form also carries the
/// API's `{"error": {...}}` object, so every client of the server reads errors one way.
fn error_response(encoding: Encoding, error: &ApiError) -> Response {
    let message = error.public_message();
    let response = match encoding {
        Encoding::Protobuf => {
            let body = RpcStatus {
                code: error.grpc_code(),
                message,
            }
            .encode_to_vec();
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))],
                body,
            )
                .into_response()
        }
        Encoding::Json => axum::Json(json!({
            "code": error.grpc_code(),
            "message": message,
            "error": {"code": error.code(), "message": message},
        }))
        .into_response(),
    };
    error.finish(response)
}

fn other_path(format: Format) -> &'static str {
    match format {
        Format::OtlpTraces => "/v1/traces",
        Format::OtlpLogs => "/v1/logs",
        _ => "the file ingester (`threadline ingest`)",
    }
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    fn json_format(self) -> Format {
        match self {
            Signal::Traces => Format::OtlpTraces,
            Signal::Logs => Format::OtlpLogs,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn gzip_is_capped_after_decompression() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            gunzip(&bomb, 1000),
            Err(ApiError::TooLarge {
                decompressed: true,
                ..
            })
        ));
        assert_eq!(gunzip(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        assert!(matches!(
            gunzip(b"not gzip", 1000),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn content_types_with_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(encoding_of(&headers).unwrap(), Encoding::Json);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(matches!(
            encoding_of(&headers),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
