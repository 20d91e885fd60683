//! OTLP/gRPC end to end against the real binary: `threadline serve --otlp-grpc-listen`, spans
//! and logs exported by `opentelemetry-otlp`'s tonic exporters (gzip) and read back through
//! `/api/v1/traces/{id}` as soon as the export returns; a missing or wrong token
//! (`UNAUTHENTICATED`, nothing indexed); messages over the limit, as sent and once
//! decompressed (`RESOURCE_EXHAUSTED`, not retried); a busy receiver (`RESOURCE_EXHAUSTED` with
//! `RetryInfo`, then the exporter's own retry lands, once); a paused writer on a full disk
//! (`UNAVAILABLE` with `RetryInfo`, and the retry lands once space is freed).

mod support;

use std::borrow::Cow;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry_otlp::{
    Compression, LogExporter, RetryPolicy, SpanExporter, WithExportConfig as _,
    WithTonicConfig as _,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as _};
use serde_json::Value;
use support::*;
use tonic::metadata::MetadataMap;
use tonic_types::StatusExt as _;

const TOKEN: &str = "grpc-e2e";
/// Small, so the oversized tests need little data.
const MAX_BODY: usize = 256 << 10;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_threadline")
}

fn workspace() -> Workspace {
    Workspace::new(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("otlp_grpc_e2e"))
}

/// `serve` with fast commits, an ingest token, a small message limit, `extra` config lines
/// under `[server]`, the files of `ws.logs()` tailed, and the gRPC receiver on a free port;
/// returns it and `http://ADDR` of the gRPC receiver.
fn start(ws: &Workspace, index: &Path, extra: &str) -> (Serve, String) {
    let config = format!(
        "{FAST_CONFIG}\n[server]\ningest_token = \"{TOKEN}\"\nmax_body_bytes = {MAX_BODY}\n{extra}\n"
    );
    let serve = ServeCommand::new(bin(), index)
        .arg("--config")
        .arg(ws.config(&config))
        .arg("--otlp-grpc-listen")
        .arg("127.0.0.1:0")
        .source(&ws.logs().join("*.log"))
        .start();
    let endpoint = serve.grpc_endpoint();
    (serve, endpoint)
}

/// A tokio runtime: tonic's channels live on one, the exporters' futures are driven by it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn metadata(token: Option<&str>) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    if let Some(token) = token {
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    metadata
}

/// The tonic span exporter; build it inside the runtime's context.
fn span_exporter(
    endpoint: &str,
    token: Option<&str>,
    gzip: bool,
    retry: RetryPolicy,
) -> SpanExporter {
    let mut builder = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_metadata(metadata(token))
        .with_timeout(Duration::from_secs(30))
        .with_retry_policy(retry);
    if gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    builder.build().unwrap()
}

/// A finished server span of a new trace with a padding attribute of `pad` bytes.
fn span_data(trace: u128, name: &str, pad: usize) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace),
            SpanId::from(0x5eed_0000_0000_0001u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Owned(name.to_owned()),
        start_time: now - Duration::from_millis(5),
        end_time: now,
        attributes: vec![KeyValue::new("pad", "p".repeat(pad))],
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}

/// Exports `spans` with a one-off exporter: `Ok`, or the exporter's error text (which names
/// the gRPC code, e.g. "... gRPC code: Unauthenticated").
fn export_spans(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    token: Option<&str>,
    gzip: bool,
    retry: RetryPolicy,
    spans: Vec<SpanData>,
) -> Result<(), String> {
    let _in_runtime = rt.enter();
    let mut exporter = span_exporter(endpoint, token, gzip, retry);
    exporter.set_resource(&Resource::builder().with_service_name("grpc-raw").build());
    rt.block_on(exporter.export(spans))
        .map_err(|e| e.to_string())
}

fn get(serve: &Serve, path: &str, query: &[(&str, &str)]) -> Value {
    let (status, body) = get_json(&format!("{}{path}", serve.url), query)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(status, 200, "GET {path} {query:?}: {body}");
    body
}

fn total(serve: &Serve, q: &str) -> u64 {
    get(serve, "/api/v1/search", &[("q", q)])["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn spans_and_logs_exported_over_grpc_read_back_at_once() {
    let ws = workspace();
    let (serve, endpoint) = start(&ws, &ws.index(), "");
    let rt = runtime();
    let _in_runtime = rt.enter();
    let span_exporter = span_exporter(&endpoint, Some(TOKEN), true, RetryPolicy::default());
    let log_exporter = LogExporter::builder()
        .with_tonic()
        .with_endpoint(&endpoint)
        .with_metadata(metadata(Some(TOKEN)))
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let resource = Resource::builder()
        .with_service_name("checkout-grpc")
        .with_attribute(KeyValue::new("deployment.environment", "e2e"))
        .build();
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_simple_exporter(span_exporter)
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_simple_exporter(log_exporter)
        .build();
    let tracer = tracer_provider.tracer("otlp-grpc-e2e");
    let logger = logger_provider.logger("otlp-grpc-e2e");
    let trace_id = tracer.in_span("POST /checkout", |cx| {
        let mut child = tracer.start_with_context("stripe_api_call", &cx);
        child.set_attribute(KeyValue::new("decline_code", "do_not_honor"));
        let child_cx = child.span_context().clone();
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from("card declined by issuer"));
        record.set_severity_number(Severity::Error);
        record.set_severity_text("ERROR");
        record.set_timestamp(SystemTime::now());
        record.set_trace_context(child_cx.trace_id(), child_cx.span_id(), None);
        logger.emit(record);
        child.end();
        cx.span().span_context().trace_id().to_string()
    });
    tracer_provider.force_flush().unwrap();
    logger_provider.force_flush().unwrap();
    tracer_provider.shutdown().unwrap();
    logger_provider.shutdown().unwrap();

    // Acked means committed: readable at once, no polling.
    let trace = get(&serve, &format!("/api/v1/traces/{trace_id}"), &[]);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{trace}");
    assert_eq!(spans[0]["name"], "POST /checkout");
    assert_eq!(spans[0]["service"], "checkout-grpc");
    assert_eq!(spans[1]["name"], "stripe_api_call");
    assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
    assert_eq!(spans[1]["attributes"]["decline_code"], "do_not_honor");
    assert_eq!(spans[1]["resource"]["deployment.environment"], "e2e");
    let logs = trace["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{trace}");
    assert_eq!(logs[0]["body"], "card declined by issuer");
    assert_eq!(logs[0]["level"], "error");
    assert_eq!(logs[0]["span_id"], spans[1]["span_id"]);
    assert_eq!(total(&serve, ""), 3, "nothing else, nothing twice");

    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    for route in ["grpc TraceService/Export", "grpc LogsService/Export"] {
        assert!(
            metrics.contains(&format!("route=\"{route}\"")),
            "{route} in /metrics:\n{metrics}"
        );
    }
    serve.stop();
}

#[test]
fn bad_tokens_and_oversized_messages_are_refused_and_nothing_is_indexed() {
    let ws = workspace();
    let (serve, endpoint) = start(&ws, &ws.index(), "");
    let rt = runtime();
    let one = || {
        vec![span_data(
            0xbad0_0000_0000_0000_0000_0000_0000_0001,
            "GET /a",
            10,
        )]
    };

    for token in [None, Some("wrong-token")] {
        let error = export_spans(&rt, &endpoint, token, false, RetryPolicy::default(), one())
            .expect_err("refused without the right token");
        assert!(error.contains("Unauthenticated"), "{token:?}: {error}");
    }
    // Over the limit as sent, and small on the wire but over it once decompressed: refused as
    // RESOURCE_EXHAUSTED without RetryInfo, which the exporter does not retry.
    for gzip in [false, true] {
        let big = vec![span_data(
            0xbad0_0000_0000_0000_0000_0000_0000_0002,
            "GET /big",
            MAX_BODY + 1024,
        )];
        let started = Instant::now();
        let error = export_spans(
            &rt,
            &endpoint,
            Some(TOKEN),
            gzip,
            RetryPolicy::default(),
            big,
        )
        .expect_err("over max_body_bytes");
        assert!(error.contains("ResourceExhausted"), "gzip {gzip}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not retried: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(total(&serve, ""), 0, "nothing indexed");

    // The right token, a message under the limit: accepted.
    export_spans(
        &rt,
        &endpoint,
        Some(TOKEN),
        true,
        RetryPolicy::default(),
        one(),
    )
    .unwrap();
    assert_eq!(total(&serve, "service = grpc-raw"), 1);
    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    assert!(
        metrics.contains("threadline_rejected_requests_total{reason=\"unauthorized\"} 2"),
        "{metrics}"
    );
    serve.stop();
}

/// Raw `TraceService/Export` calls: a span without a valid trace id is rejected alone and
/// counted in `partial_success`; the same request again (over gRPC, then the same protobuf
/// body over OTLP/HTTP) is answered again, not indexed twice; an empty request is a success.
#[test]
fn partial_success_and_retries_over_grpc_are_answered_as_over_http() {
    let ws = workspace();
    let (serve, endpoint) = start(&ws, &ws.index(), "");
    let mut request = one_span_request();
    let mut bad = request.resource_spans[0].scope_spans[0].spans[0].clone();
    bad.trace_id = vec![1, 2, 3];
    bad.name = "bad id".into();
    request.resource_spans[0].scope_spans[0].spans.push(bad);
    let rt = runtime();
    let answers = rt.block_on(async {
        let mut client = TraceServiceClient::connect(endpoint.clone())
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let mut answers = Vec::new();
        for message in [request.clone(), request.clone(), Default::default()] {
            let mut call = tonic::Request::new(message);
            *call.metadata_mut() = metadata(Some(TOKEN));
            answers.push(client.export(call).await.unwrap().into_inner());
        }
        answers
    });
    let partial = answers[0].partial_success.clone().expect("partial success");
    assert_eq!(partial.rejected_spans, 1, "{partial:?}");
    assert!(
        partial.error_message.contains("no valid trace id"),
        "{partial:?}"
    );
    assert_eq!(answers[1], answers[0], "the retry gets the same answer");
    assert_eq!(answers[2].partial_success, None, "an empty request");

    // The same body over OTLP/HTTP is the same request.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/traces", serve.url))
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(prost::Message::encode_to_vec(&request))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    assert_eq!(total(&serve, ""), 1, "the good span, once");
    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    assert!(
        metrics.contains("threadline_ingest_duplicate_requests_total{signal=\"traces\"} 2"),
        "{metrics}"
    );
    serve.stop();
}

/// The receiver is busy: its one ingest slot is held by an OTLP/HTTP upload that is still
/// arriving. A raw gRPC call sees `RESOURCE_EXHAUSTED` with `RetryInfo` (the delay of
/// `retry_after_s`); the exporter retries on it, and its spans land once, when the slot frees.
#[test]
fn a_busy_receiver_answers_resource_exhausted_with_retry_info_and_the_retry_lands_once() {
    let ws = workspace();
    let (serve, endpoint) = start(&ws, &ws.index(), "max_concurrent_ingest = 1");
    let rt = runtime();
    let api = serve.url.trim_start_matches("http://").to_owned();
    let mut client = rt
        .block_on(TraceServiceClient::connect(endpoint.clone()))
        .unwrap();
    let mut upload = start_upload(&api);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        // A probe that came first took the slot and the upload was refused: upload again.
        if was_answered(&mut upload) {
            upload = start_upload(&api);
        }
        let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
        *request.metadata_mut() = metadata(Some(TOKEN));
        match rt.block_on(client.export(request)) {
            Err(status) if status.code() == tonic::Code::ResourceExhausted => break status,
            other => assert!(Instant::now() < deadline, "never busy: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let retry = status
        .get_details_retry_info()
        .unwrap_or_else(|| panic!("RetryInfo in {status:?}"));
    assert_eq!(
        retry.retry_delay,
        Some(Duration::from_secs(1)),
        "{status:?}"
    );
    assert!(status.message().contains("busy"), "{status:?}");

    // The exporter retries while the slot is held; the upload then gives up.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(upload);
    });
    let trace = 0x0b05_0000_0000_0000_0000_0000_0000_0001u128;
    let retry = RetryPolicy::default()
        .with_max_retries(20)
        .with_initial_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_millis(500));
    let started = Instant::now();
    export_spans(
        &rt,
        &endpoint,
        Some(TOKEN),
        true,
        retry,
        vec![span_data(trace, "GET /busy", 10)],
    )
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "acked only after a retry: {:?}",
        started.elapsed()
    );
    releaser.join().unwrap();
    let found = get(&serve, &format!("/api/v1/traces/{trace:032x}"), &[]);
    assert_eq!(found["spans"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(total(&serve, ""), 1, "once");
    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    assert!(
        metrics.contains("threadline_rejected_requests_total{reason=\"queue_full\"}"),
        "{metrics}"
    );
    serve.stop();
}

/// An OTLP/HTTP upload that sends 10 of its 1000 bytes and waits: its request holds an ingest
/// slot while its body is read.
fn start_upload(api: &str) -> std::net::TcpStream {
    let mut upload = std::net::TcpStream::connect(api).unwrap();
    write!(
        upload,
        "POST /v1/traces HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/x-protobuf\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    )
    .unwrap();
    upload.write_all(&[0u8; 10]).unwrap();
    upload
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    upload
}

/// Whether the server answered the upload (a 429, when a probe held the slot first).
fn was_answered(upload: &mut std::net::TcpStream) -> bool {
    use std::io::Read as _;
    let mut buf = [0u8; 256];
    !matches!(upload.read(&mut buf), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// A full disk pauses the writer: gRPC exports are answered `UNAVAILABLE` with `RetryInfo`
/// and the cause; once space is freed, the exporter's retry is committed, once.
#[test]
fn a_paused_writer_answers_unavailable_with_retry_info_and_the_retry_lands_once_resumed() {
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        return;
    };
    let ws = workspace();
    let log = ws.logs().join("app.log");
    let (serve, endpoint) = start(&ws, &tmpfs.path().join("index"), "");
    let filler = tmpfs.path().join("filler");
    tmpfs.fill(&filler);
    // Tailed lines make the writer hit the full disk.
    let _ = append_lines(&log, "a", 0..3_000);
    let readyz = format!("{}/readyz", serve.url);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_json(&readyz, &[]).unwrap().0 != 503 {
        assert!(Instant::now() < deadline, "the writer never paused");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rt = runtime();
    let status = rt.block_on(async {
        let mut client = TraceServiceClient::connect(endpoint.clone()).await.unwrap();
        let mut request = tonic::Request::new(one_span_request());
        *request.metadata_mut() = metadata(Some(TOKEN));
        client.export(request).await.expect_err("paused")
    });
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("No space left on device"),
        "names the cause: {status:?}"
    );
    let retry = status
        .get_details_retry_info()
        .unwrap_or_else(|| panic!("RetryInfo in {status:?}"));
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));

    // The exporter keeps retrying while the disk is full; it is acked once space is freed.
    let freer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        std::fs::remove_file(&filler).unwrap();
        tmpfs
    });
    let trace = 0x9a05_0000_0000_0000_0000_0000_0000_0001u128;
    let retry = RetryPolicy::default()
        .with_max_retries(60)
        .with_initial_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(1));
    export_spans(
        &rt,
        &endpoint,
        Some(TOKEN),
        true,
        retry,
        vec![span_data(trace, "GET /paused", 10)],
    )
    .unwrap();
    let tmpfs = freer.join().unwrap();
    let found = get(&serve, &format!("/api/v1/traces/{trace:032x}"), &[]);
    assert_eq!(found["spans"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(total(&serve, "service = grpc-raw"), 1, "once");
    serve.stop();
    drop(tmpfs);
}

/// One span of a fixed trace, as a raw request.
fn one_span_request() -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0x9a; 16],
                    span_id: vec![0x9b; 8],
                    name: "probe".into(),
                    start_time_unix_nano: now - 1000,
                    end_time_unix_nano: now,
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}
