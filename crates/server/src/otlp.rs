//! The OTLP/HTTP receiver: `POST /v1/traces` and `/v1/logs`, protobuf or JSON, plain or gzip,
//! answered in the request's content type. A 200 means durable: the handler waits for the
//! commit that holds the request's records. A full writer queue is a 429 with `Retry-After`, a
//! failed commit a 503. A retry of a request acknowledged in the last `retry_window` is
//! answered again without indexing (see `recent.rs`). Records that cannot be decoded are
//! rejected alone and counted in `partialSuccess`; a body that is not OTLP is a 400. Past the
//! body and its decoding, the path is the one `ingest.rs` shares with the gRPC receiver.

use std::io::Read as _;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use decode::{DecodeError, Format, LineContext, Output};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use prost::Message as _;
use serde_json::json;

use crate::api::blocking;
use crate::ingest::{self, Decoded, Signal};
use crate::params::now_ns;
use crate::recent::{self, Ack};
use crate::{ApiError, AppState};

/// The origin stored with records received over OTLP/HTTP.
const SOURCE: &str = "otlp/http";
pub(crate) const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
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
        .clone()
        .try_acquire_owned()
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

    let ack = ingest::ingest(state, signal, key, permit, move |state| {
        decode_body(state, signal, encoding, &body)
    })
    .await?;
    Ok(success_response(signal, encoding, &ack))
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
                && format != json_format(signal)
            {
                return Err(ApiError::BadRequest(format!(
                    "the body is {}, not an OTLP {} request: post it to {}",
                    format.name(),
                    signal.name(),
                    other_path(format),
                )));
            }
            match state.decoder.decode_document(body, &cx, &mut out) {
                Ok(format) if format == json_format(signal) => {}
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
    Ok(ingest::validate(signal, out))
}

fn success_response(signal: Signal, encoding: Encoding, ack: &Ack) -> Response {
    match encoding {
        Encoding::Protobuf => {
            let body = match signal {
                Signal::Traces => ingest::traces_response(ack).encode_to_vec(),
                Signal::Logs => ingest::logs_response(ack).encode_to_vec(),
            };
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))],
                body,
            )
                .into_response()
        }
        Encoding::Json => {
            let body = if ingest::is_partial(ack) {
                // proto3 JSON writes int64 as a string.
                let count_key = match signal {
                    Signal::Traces => "rejectedSpans",
                    Signal::Logs => "rejectedLogRecords",
                };
                json!({"partialSuccess": {
                    count_key: ingest::rejected_i64(ack).to_string(),
                    "errorMessage": ack.message,
                }})
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

/// The OTLP/JSON format a body posted for `signal` must have.
fn json_format(signal: Signal) -> Format {
    match signal {
        Signal::Traces => Format::OtlpTraces,
        Signal::Logs => Format::OtlpLogs,
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
