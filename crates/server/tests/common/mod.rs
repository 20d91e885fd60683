//! Shared test harness: a real index in a temp dir, a real writer, the router, and helpers to
//! build OTLP requests and read responses.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use index::{Index, Writer, WriterConfig};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::Value;
use server::{AppState, ServerConfig, router};
use tower::ServiceExt as _;

pub struct TestApp {
    pub app: Router,
    pub state: AppState,
    pub index: Index,
    /// `Some` until dropped (see `Drop`) or taken.
    writer: Option<Writer>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn writer(&self) -> &Writer {
        self.writer.as_ref().expect("the writer was not taken")
    }

    /// The writer, for a test that stops it itself.
    pub fn take_writer(&mut self) -> Writer {
        self.writer.take().expect("the writer was not taken")
    }
}

/// The writer is stopped (its commits and tantivy's merges finished) before the index folder
/// is removed: left running, it recreated index files in a fresh folder in /tmp. On a thread of
/// its own, as this runs inside the tests' tokio runtime, where `shutdown` may not block.
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = std::thread::spawn(move || writer.shutdown()).join();
        }
    }
}

/// A writer that commits quickly, with little memory, for tests.
pub fn test_writer_config() -> WriterConfig {
    WriterConfig {
        commit_interval: Duration::from_millis(20),
        memory_budget: 20_000_000,
        num_threads: 1,
        ..WriterConfig::default()
    }
}

pub fn app() -> TestApp {
    app_with(ServerConfig::default(), test_writer_config())
}

pub fn app_with(config: ServerConfig, writer_config: WriterConfig) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(&index, writer_config).unwrap();
    let state = AppState::new(index.clone(), writer.handle(), config);
    TestApp {
        app: router(state.clone()),
        state,
        index,
        writer: Some(writer),
        _dir: dir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `error.code` of an error reply.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl TestApp {
    pub async fn call(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, uri: &str, content_type: &str, body: impl Into<Body>) -> Reply {
        let request = Request::post(uri)
            .header("content-type", content_type)
            .body(body.into())
            .unwrap();
        self.call(request).await
    }
}

/// `/api/v1/search?q=...` with the query URL-encoded.
pub fn search_uri(q: &str, extra: &str) -> String {
    format!("/api/v1/search?q={}{extra}", encode(q))
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span of `trace_id` that started `ago_ms` milliseconds ago and lasted 5 ms.
pub fn span(
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &str,
    ago_ms: u64,
) -> Span {
    let start = now_ns() - ago_ms * 1_000_000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 5_000_000,
        ..Default::default()
    }
}

pub fn traces_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn log(trace_id: Option<[u8; 16]>, body: &str, severity: i32, ago_ms: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: now_ns() - ago_ms * 1_000_000,
        severity_number: severity,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        trace_id: trace_id.map(|t| t.to_vec()).unwrap_or_default(),
        ..Default::default()
    }
}

pub fn logs_request(service: &str, log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}
