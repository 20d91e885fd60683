//! OTLP/HTTP end to end against the real binary: `threadline serve` on a free port, spans and
//! logs exported by `opentelemetry-otlp`'s HTTP exporters (protobuf and JSON) and read back
//! through `/api/v1/traces/{id}` and `/api/v1/search`; then raw requests: a gzip'd OTLP/JSON
//! body, bodies over the size limit (plain and after decompression) and undecodable bodies;
//! then the exporter's own retries after a 503 (not indexed twice) and a batch with one
//! undecodable value (only that record rejected).

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{
    Compression, LogExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig as _,
    WithHttpConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "ingest-e2e";
/// Small, so the 413 tests need little data.
const MAX_BODY: usize = 256 << 10;

fn workspace() -> Workspace {
    Workspace::new(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("otlp_e2e"))
}

/// `serve` with fast commits, an ingest token and a small body limit.
fn start(ws: &Workspace) -> Serve {
    let config = format!(
        "{FAST_CONFIG}\n[server]\ningest_token = \"{TOKEN}\"\nmax_body_bytes = {MAX_BODY}\n"
    );
    ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .arg("--config")
        .arg(ws.config(&config))
        .start()
}

/// Exports one trace (a root and a child span) and one log inside the child with `protocol`,
/// waits for the exporters to finish, and returns the trace id. The exporters got their 200
/// only after the commit that holds the records.
fn export(url: &str, protocol: Protocol, service: &'static str) -> String {
    let headers = HashMap::from([("authorization".to_owned(), format!("Bearer {TOKEN}"))]);
    let span_exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{url}/v1/traces"))
        .with_headers(headers.clone())
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let log_exporter = LogExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{url}/v1/logs"))
        .with_headers(headers)
        .with_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resource = Resource::builder()
        .with_service_name(service)
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
    let tracer = tracer_provider.tracer("otlp-e2e");
    let logger = logger_provider.logger("otlp-e2e");

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
}

fn get(serve: &Serve, path: &str, query: &[(&str, &str)]) -> Value {
    let (status, body) = get_json(&format!("{}{path}", serve.url), query)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(status, 200, "GET {path} {query:?}: {body}");
    body
}

#[test]
fn spans_and_logs_exported_by_opentelemetry_otlp_read_back_through_the_api() {
    let ws = workspace();
    let serve = start(&ws);
    for (protocol, service) in [
        (Protocol::HttpBinary, "checkout-proto"),
        (Protocol::HttpJson, "checkout-json"),
    ] {
        let trace_id = export(&serve.url, protocol, service);
        // Acked means committed: readable at once, no polling.
        let trace = get(&serve, &format!("/api/v1/traces/{trace_id}"), &[]);
        assert_eq!(
            trace["trace_id"],
            trace_id.as_str(),
            "{protocol:?}: {trace}"
        );
        let spans = trace["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2, "{protocol:?}: {trace}");
        assert_eq!(spans[0]["name"], "POST /checkout");
        assert_eq!(spans[0]["service"], service);
        assert_eq!(spans[0]["parent_span_id"], Value::Null);
        assert_eq!(spans[1]["name"], "stripe_api_call");
        assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
        assert_eq!(spans[1]["attributes"]["decline_code"], "do_not_honor");
        assert_eq!(
            spans[1]["resource"]["deployment.environment"], "e2e",
            "{protocol:?}: {trace}"
        );
        let logs = trace["logs"].as_array().unwrap();
        assert_eq!(logs.len(), 1, "{protocol:?}: {trace}");
        assert_eq!(logs[0]["body"], "card declined by issuer");
        assert_eq!(logs[0]["level"], "error");
        assert_eq!(logs[0]["service"], service);
        assert_eq!(logs[0]["span_id"], spans[1]["span_id"]);
        assert_eq!(trace["summary"]["span_count"], 2);
        assert_eq!(trace["summary"]["log_count"], 1);

        let found = get(
            &serve,
            "/api/v1/search",
            &[("q", &format!("service = {service} AND kind = span"))],
        );
        assert_eq!(found["total"], 2, "{protocol:?}: {found}");
        let found = get(
            &serve,
            "/api/v1/search",
            &[(
                "q",
                &format!("decline_code = do_not_honor AND service = {service}"),
            )],
        );
        assert_eq!(found["total"], 1, "{protocol:?}: {found}");
        assert_eq!(found["hits"][0]["kind"], "span");
        assert_eq!(found["hits"][0]["trace_id"], trace_id.as_str());
        let found = get(
            &serve,
            "/api/v1/search",
            &[("q", &format!("kind = log AND service = {service}"))],
        );
        assert_eq!(found["total"], 1, "{protocol:?}: {found}");
        assert_eq!(found["hits"][0]["trace_id"], trace_id.as_str());
        assert_eq!(found["hits"][0]["body"], "card declined by issuer");
    }
    // Both protocols, nothing twice.
    let all = get(&serve, "/api/v1/search", &[("q", "")]);
    assert_eq!(all["total"], 6, "{all}");
    serve.stop();
}

/// A raw POST: the status, the `Content-Type` and the body.
fn post(
    serve: &Serve,
    path: &str,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut request = client
        .post(format!("{}{path}", serve.url))
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {TOKEN}"));
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    let response = request.body(body).send().unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.bytes().unwrap().to_vec())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

/// An OTLP/JSON traces request as a collector sends it: hex ids, string nanoseconds.
fn otlp_json_traces() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "gzip-json"}}
        ]},
        "scopeSpans": [{"scope": {"name": "raw"}, "spans": [
            {"traceId": TRACE_ID, "spanId": "eee19b7ec3c1b174", "name": "GET /cart",
             "kind": 2, "startTimeUnixNano": (now - 5_000_000).to_string(),
             "endTimeUnixNano": now.to_string(),
             "attributes": [{"key": "http.status_code", "value": {"intValue": "500"}}],
             "status": {"code": 2, "message": "boom"}},
            {"traceId": TRACE_ID, "spanId": "eee19b7ec3c1b175",
             "parentSpanId": "eee19b7ec3c1b174", "name": "SELECT cart",
             "startTimeUnixNano": (now - 4_000_000).to_string(),
             "endTimeUnixNano": (now - 1_000_000).to_string()}
        ]}]
    }]})
}

fn otlp_json_logs() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "gzip-json"}}
        ]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": now.to_string(), "severityNumber": 17, "severityText": "ERROR",
             "body": {"stringValue": "cart lookup failed"},
             "traceId": TRACE_ID, "spanId": "eee19b7ec3c1b175"}
        ]}]
    }]})
}

#[test]
fn raw_requests_gzip_json_oversized_and_undecodable_bodies() {
    let ws = workspace();
    let serve = start(&ws);
    const PROTOBUF: &str = "application/x-protobuf";
    const JSON: &str = "application/json";

    // A gzip'd OTLP/JSON body, answered in JSON, readable at once.
    let body = gzip(otlp_json_traces().to_string().as_bytes());
    let (status, content_type, answer) = post(&serve, "/v1/traces", JSON, true, body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(content_type.starts_with(JSON), "{content_type}");
    let answer = json_body(&answer);
    assert!(
        answer
            .get("partialSuccess")
            .is_none_or(|p| p.get("rejectedSpans").is_none_or(|n| n == 0 || n == "0")),
        "{answer}"
    );
    let body = gzip(otlp_json_logs().to_string().as_bytes());
    let (status, _, answer) = post(&serve, "/v1/logs", JSON, true, body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let trace = get(&serve, &format!("/api/v1/traces/{TRACE_ID}"), &[]);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{trace}");
    assert_eq!(spans[0]["name"], "GET /cart");
    assert_eq!(spans[0]["service"], "gzip-json");
    assert_eq!(spans[0]["status"]["code"], "ERROR");
    assert_eq!(spans[1]["parent_span_id"], "eee19b7ec3c1b174");
    assert_eq!(trace["logs"].as_array().unwrap().len(), 1, "{trace}");
    assert_eq!(trace["logs"][0]["body"], "cart lookup failed");
    assert_eq!(trace["logs"][0]["level"], "error");
    let found = get(
        &serve,
        "/api/v1/search",
        &[("q", "service = gzip-json AND http.status_code >= 500")],
    );
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["hits"][0]["trace_id"], TRACE_ID);

    // Over the limit as sent: 413, in the request's content type.
    let big = vec![b'x'; MAX_BODY + 1];
    let (status, content_type, answer) = post(&serve, "/v1/traces", PROTOBUF, false, big.clone());
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&answer));
    assert!(content_type.starts_with(PROTOBUF), "{content_type}");
    let (status, content_type, answer) = post(&serve, "/v1/logs", JSON, false, big);
    assert_eq!(status, 413);
    assert!(content_type.starts_with(JSON), "{content_type}");
    assert!(
        json_body(&answer).to_string().contains("limit"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Small on the wire, over the limit once decompressed: no gzip bombs.
    let bomb = gzip(&vec![b' '; 8 * MAX_BODY]);
    assert!(bomb.len() < MAX_BODY / 8);
    let (status, _, answer) = post(&serve, "/v1/traces", JSON, true, bomb);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&answer));

    // Undecodable: 400, and nothing indexed.
    let (status, content_type, _) = post(
        &serve,
        "/v1/traces",
        PROTOBUF,
        false,
        b"\xff\xff\xff\xff not protobuf".to_vec(),
    );
    assert_eq!(status, 400);
    assert!(content_type.starts_with(PROTOBUF), "{content_type}");
    let (status, _, answer) = post(
        &serve,
        "/v1/logs",
        JSON,
        false,
        b"{\"resourceLogs\": [".to_vec(),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    assert!(
        json_body(&answer).get("message").is_some(),
        "google.rpc.Status"
    );
    let (status, _, _) = post(
        &serve,
        "/v1/traces",
        JSON,
        true,
        b"not gzip at all".to_vec(),
    );
    assert_eq!(status, 400);

    // No token: refused before anything is read.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/traces", serve.url))
        .header("content-type", JSON)
        .body(otlp_json_traces().to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let all = get(&serve, "/api/v1/search", &[("q", "")]);
    assert_eq!(all["total"], 3, "only the two spans and the log: {all}");
    serve.stop();
}

/// What every OTLP exporter does: its request timed out (here the server's 300 ms timeout
/// answers 503 before the 1.5 s commit), so it sends the same request again, with backoff,
/// until it gets a 200. The first attempt was committed after all; the retries must not add
/// copies. `opentelemetry-otlp`'s own retry loop does the resending.
#[test]
fn an_exporter_retrying_after_a_late_commit_does_not_index_twice() {
    let ws = workspace();
    let config = format!(
        "[index]\ncommit_interval = \"1500ms\"\nwriter_memory = \"32MiB\"\nwriter_threads = 1\n\
         [server]\ningest_token = \"{TOKEN}\"\nrequest_timeout = \"300ms\"\n"
    );
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .arg("--config")
        .arg(ws.config(&config))
        .start();
    let headers = HashMap::from([("authorization".to_owned(), format!("Bearer {TOKEN}"))]);
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", serve.url))
        .with_headers(headers)
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(30))
        .with_retry_policy(
            RetryPolicy::default()
                .with_max_retries(20)
                .with_initial_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_millis(800)),
        )
        .build()
        .unwrap();
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("retrier").build())
        .with_simple_exporter(exporter)
        .build();
    let tracer = tracer_provider.tracer("otlp-e2e");
    let trace_id = tracer.in_span("POST /checkout", |cx| {
        tracer.start_with_context("charge", &cx).end();
        cx.span().span_context().trace_id().to_string()
    });
    tracer_provider.force_flush().unwrap();
    tracer_provider.shutdown().unwrap();

    // Both spans once, however many attempts the exporter made.
    let trace = get(&serve, &format!("/api/v1/traces/{trace_id}"), &[]);
    let names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["POST /checkout", "charge"]);
    std::thread::sleep(Duration::from_millis(2000));
    let found = get(&serve, "/api/v1/search", &[("q", "service = retrier")]);
    assert_eq!(found["total"], 2, "{found}");
    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    assert!(
        metrics.contains("threadline_ingest_duplicate_requests_total{signal=\"traces\"}"),
        "the exporter never retried: {metrics}"
    );
    serve.stop();
}

#[test]
fn a_batch_with_one_undecodable_value_keeps_its_good_spans() {
    let ws = workspace();
    let serve = start(&ws);
    let mut request = otlp_json_traces();
    request["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] =
        json!("one-bad-int");
    // 2^64 * 5: no 64-bit integer, as a JSON number (as some encoders write it).
    let body = request.to_string().replacen(
        r#"{"key":"http.status_code","value":{"intValue":"500"}}"#,
        r#"{"key":"http.status_code","value":{"intValue":92233720368547758070}}"#,
        1,
    );
    let (status, _, answer) = post(&serve, "/v1/traces", "application/json", false, body.into());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer = json_body(&answer);
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("resourceSpans[0].scopeSpans[0].spans[0]: attributes[0].value.intValue"),
        "{message}"
    );
    // The good neighbour was indexed, and the answer came after its commit.
    let found = get(&serve, "/api/v1/search", &[("q", "service = one-bad-int")]);
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["hits"][0]["name"], "SELECT cart");
    serve.stop();
}
