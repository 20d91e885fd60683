//! End to end with a real OTLP client: `opentelemetry-otlp`'s HTTP exporters (protobuf and
//! JSON, gzip, a bearer token) send spans and logs made by `opentelemetry_sdk` to the server on
//! a loopback port; the test reads them back over HTTP from the same server.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::test_writer_config;
use index::{Index, Writer};
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{
    Compression, LogExporter, Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use server::{AppState, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TOKEN: &str = "ingest-e2e";

/// A plain HTTP/1.1 GET over the socket: status and JSON body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// Exports one trace (a root and a child span) and one log inside it with the given protocol,
/// from a plain thread (the blocking reqwest client must not run on the async runtime).
/// Returns the trace id.
fn export(addr: SocketAddr, protocol: Protocol, service: &'static str) -> String {
    std::thread::spawn(move || {
        let headers = HashMap::from([("authorization".to_owned(), format!("Bearer {TOKEN}"))]);
        let span_exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("http://{addr}/v1/traces"))
            .with_headers(headers.clone())
            .with_compression(Compression::Gzip)
            .build()
            .unwrap();
        let log_exporter = LogExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("http://{addr}/v1/logs"))
            .with_headers(headers)
            .build()
            .unwrap();
        let resource = Resource::builder().with_service_name(service).build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_simple_exporter(span_exporter)
            .build();
        let logger_provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_simple_exporter(log_exporter)
            .build();
        let tracer = tracer_provider.tracer("e2e");
        let logger = logger_provider.logger("e2e");

        let trace_id = tracer.in_span("POST /checkout", |cx| {
            let root = cx.span().span_context().clone();
            let mut child = tracer.start_with_context("stripe_api_call", &cx);
            child.set_attribute(KeyValue::new("decline_code", "do_not_honor"));
            let child_cx = child.span_context().clone();
            let mut record = logger.create_log_record();
            record.set_body(AnyValue::from("card declined by issuer"));
            record.set_severity_number(Severity::Error);
            record.set_severity_text("ERROR");
            record.set_timestamp(std::time::SystemTime::now());
            record.set_trace_context(child_cx.trace_id(), child_cx.span_id(), None);
            logger.emit(record);
            child.end();
            root.trace_id().to_string()
        });
        tracer_provider.force_flush().unwrap();
        logger_provider.force_flush().unwrap();
        tracer_provider.shutdown().unwrap();
        logger_provider.shutdown().unwrap();
        trace_id
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_otlp_client_exports_spans_and_logs_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(&index, test_writer_config()).unwrap();
    let config = ServerConfig {
        ingest_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    };
    let state = AppState::new(index, writer.handle(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    for (protocol, service) in [
        (Protocol::HttpBinary, "checkout-proto"),
        (Protocol::HttpJson, "checkout-json"),
    ] {
        let trace_id = tokio::task::spawn_blocking(move || export(addr, protocol, service))
            .await
            .unwrap();
        // The exporter got its 200 only after the commit: no waiting needed here.
        let (status, trace) = http_get(addr, &format!("/api/v1/traces/{trace_id}")).await;
        assert_eq!(status, 200, "{protocol:?}: {trace}");
        assert_eq!(
            trace["spans"].as_array().unwrap().len(),
            2,
            "{protocol:?}: {trace}"
        );
        assert_eq!(trace["spans"][0]["name"], "POST /checkout");
        assert_eq!(trace["spans"][0]["service"], service);
        assert_eq!(
            trace["spans"][1]["attributes"]["decline_code"],
            "do_not_honor"
        );
        let logs = trace["logs"].as_array().unwrap();
        assert_eq!(logs.len(), 1, "{protocol:?}: {trace}");
        assert_eq!(logs[0]["body"], "card declined by issuer");
        assert_eq!(logs[0]["level"], "error");
        assert_eq!(logs[0]["span_id"], trace["spans"][1]["span_id"]);

        let q = common::encode(&format!("service = {service} AND kind = log"));
        let (status, found) = http_get(addr, &format!("/api/v1/search?q={q}")).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["total"], 1);
        assert_eq!(found["hits"][0]["trace_id"], trace_id.as_str());
    }

    let (status, related) = http_get(
        addr,
        &format!(
            "/api/v1/traces/{}/related?attribute=decline_code",
            "0".repeat(31) + "1"
        ),
    )
    .await;
    assert_eq!(status, 404, "{related}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    tokio::task::spawn_blocking(move || writer.shutdown())
        .await
        .unwrap()
        .unwrap();
}
