//! The OTLP/HTTP receiver through `router(state)`: protobuf and JSON, gzip, partial success,
//! the 4xx of bad requests, 429 when the writer's queue is full, and read-back through the API.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use index::{Batch, TrySendError, WriterConfig};
use model::{LogRecord, Record};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use server::ServerConfig;

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const ROOT: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
const CHILD: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb8];

/// `google.rpc.Status`, as an OTLP client reads a failure.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[tokio::test]
async fn protobuf_spans_are_durable_when_acked_and_readable_as_a_trace() {
    let t = app();
    let request = traces_request(
        "checkout",
        vec![
            span(TRACE, ROOT, None, "POST /checkout", 50),
            span(TRACE, CHILD, Some(ROOT), "charge", 40),
        ],
    );
    let reply = t
        .post(
            "/v1/traces",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/x-protobuf");
    let response = ExportTraceServiceResponse::decode(reply.body.clone()).unwrap();
    assert_eq!(response.partial_success, None);

    // No flush: the 200 came after the commit, and the reader is reloaded by then.
    let trace = t.get(&format!("/api/v1/traces/{}", hex(&TRACE))).await;
    assert_eq!(trace.status, StatusCode::OK);
    let trace = trace.json();
    assert_eq!(trace["trace_id"], hex(&TRACE));
    assert_eq!(trace["spans"].as_array().unwrap().len(), 2);
    assert_eq!(trace["spans"][0]["name"], "POST /checkout");
    assert_eq!(trace["spans"][1]["parent_span_id"], hex(&ROOT));
    assert_eq!(trace["spans"][0]["service"], "checkout");

    // Any spelling of the id finds it: a traceparent here.
    let traceparent = format!("00-{}-{}-01", hex(&TRACE), hex(&ROOT));
    assert_eq!(
        t.get(&format!("/api/v1/traces/{traceparent}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_logs_are_answered_in_json_and_searchable() {
    let t = app();
    let ago = now_ns() - 1_000_000_000;
    let body = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"payments"}}}}]}},
        "scopeLogs":[{{"logRecords":[
          {{"timeUnixNano":"{ago}","severityNumber":17,"severityText":"ERROR","body":{{"stringValue":"card declined"}},
            "traceId":"{trace}","spanId":"{span}","attributes":[{{"key":"decline_code","value":{{"stringValue":"do_not_honor"}}}}]}},
          {{"timeUnixNano":"{ago}","severityNumber":9,"body":{{"stringValue":"retrying charge"}}}}
        ]}}]}}]}}"#,
        trace = hex(&TRACE),
        span = hex(&CHILD),
    );
    let reply = t.post("/v1/logs", "application/json", body).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(reply.content_type().starts_with("application/json"));
    assert_eq!(reply.json(), serde_json::json!({}));

    let found = t.get(&search_uri("decline_code = do_not_honor", "")).await;
    assert_eq!(
        found.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&found.body)
    );
    let found = found.json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["hits"][0]["kind"], "log");
    assert_eq!(found["hits"][0]["trace_id"], hex(&TRACE));
    assert_eq!(found["hits"][0]["body"], "card declined");

    let all_logs = t
        .get(&search_uri(
            "kind = log AND service = payments",
            "&from=now()-1h",
        ))
        .await
        .json();
    assert_eq!(all_logs["total"], 2);
}

#[tokio::test]
async fn gzip_bodies_are_accepted_in_both_encodings() {
    let t = app();
    let request = traces_request("gateway", vec![span(TRACE, ROOT, None, "GET /", 10)]);
    let response = t
        .call(
            Request::post("/v1/traces")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(Body::from(gzip(&request.encode_to_vec())))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);

    let json = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"gzipped json"}}]}]}]}"#;
    let response = t
        .call(
            Request::post("/v1/logs")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::from(gzip(json.as_bytes())))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        t.get(&search_uri("\"gzipped json\"", "")).await.json()["total"],
        1
    );
    assert_eq!(
        t.get(&format!("/api/v1/traces/{}", hex(&TRACE)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn spans_without_valid_ids_are_rejected_as_partial_success() {
    let t = app();
    let mut zero_trace = span([0; 16], CHILD, None, "broken", 10);
    zero_trace.trace_id = vec![0; 16];
    let mut short_span_id = span(TRACE, ROOT, None, "also broken", 10);
    short_span_id.span_id = vec![1, 2, 3];
    let good = span(TRACE, CHILD, None, "fine", 10);
    let request = traces_request("svc", vec![zero_trace, short_span_id, good]);
    let reply = t
        .post(
            "/v1/traces",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(reply.body.clone())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("2 span(s) rejected: no valid trace id or span id"),
        "{}",
        partial.error_message
    );

    // The valid span was indexed.
    let trace = t
        .get(&format!("/api/v1/traces/{}", hex(&TRACE)))
        .await
        .json();
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);

    // The same in JSON: int64 counts are strings.
    let body = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
          {{"traceId":"","spanId":"{span}","name":"no trace","startTimeUnixNano":"1","endTimeUnixNano":"2"}}
        ]}}]}}]}}"#,
        span = hex(&ROOT)
    );
    let reply = t.post("/v1/traces", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "1");
    assert!(
        json["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("no valid trace id")
    );
}

#[tokio::test]
async fn logs_with_bad_ids_are_kept_with_a_warning() {
    let t = app();
    let mut bad = log(Some(TRACE), "bad span id", 9, 10);
    bad.span_id = vec![9, 9];
    let reply = t
        .post(
            "/v1/logs",
            "application/x-protobuf",
            logs_request("svc", vec![bad]).encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = ExportLogsServiceResponse::decode(reply.body.clone())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_log_records, 0);
    assert!(
        partial.error_message.contains("warning"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        t.get(&search_uri("\"bad span id\"", "")).await.json()["total"],
        1
    );
}

#[tokio::test]
async fn empty_requests_are_ok() {
    let t = app();
    assert_eq!(
        t.post("/v1/traces", "application/json", "{}").await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.post("/v1/logs", "application/x-protobuf", Vec::<u8>::new())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.post("/v1/traces", "application/json", r#"{"resourceSpans":[]}"#)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn undecodable_bodies_are_400_in_the_request_encoding() {
    let t = app();
    let reply = t
        .post(
            "/v1/traces",
            "application/x-protobuf",
            vec![0xff, 0xff, 0xff, 0xff],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.content_type(), "application/x-protobuf");
    let status = RpcStatus::decode(reply.body.clone()).unwrap();
    assert_eq!(status.code, 3);
    assert!(
        status.message.contains("undecodable OTLP protobuf body"),
        "{}",
        status.message
    );

    let reply = t
        .post("/v1/logs", "application/json", "{\"resourceLogs\": [")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("undecodable OTLP/JSON body")
    );

    // Logs sent to the traces endpoint say where to go.
    let reply = t
        .post("/v1/traces", "application/json", r#"{"resourceLogs":[]}"#)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/logs")
    );

    let gzip_lie = Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(Body::from("not gzip at all"))
        .unwrap();
    assert_eq!(t.call(gzip_lie).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_before_and_after_decompression() {
    let config = ServerConfig {
        max_body_bytes: 4096,
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let reply = t
        .post("/v1/traces", "application/x-protobuf", vec![0u8; 5000])
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        RpcStatus::decode(reply.body.clone())
            .unwrap()
            .message
            .contains("4096-byte limit")
    );

    // Streamed without a Content-Length: still cut at the limit.
    let chunks =
        futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])));
    let streamed = Request::post("/v1/logs")
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    assert_eq!(t.call(streamed).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    // A gzip bomb: 1 MiB of spaces in ~1 KiB.
    let bomb = gzip(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 4096);
    let reply = t
        .call(
            Request::post("/v1/logs")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::from(bomb))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("once decompressed")
    );
}

#[tokio::test]
async fn other_content_types_and_encodings_are_415() {
    let t = app();
    let reply = t.post("/v1/traces", "text/plain", "hello").await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-protobuf")
    );

    let no_type = Request::post("/v1/logs").body(Body::from("x")).unwrap();
    assert_eq!(
        t.call(no_type).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let brotli = Request::post("/v1/logs")
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(
        t.call(brotli).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn ingest_token_is_required_when_set() {
    let config = ServerConfig {
        ingest_token: Some("s3cret".into()),
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let body = traces_request("svc", vec![span(TRACE, ROOT, None, "x", 1)]).encode_to_vec();
    let reply = t
        .post("/v1/traces", "application/x-protobuf", body.clone())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");

    let wrong = Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("authorization", "Bearer nope")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(t.call(wrong).await.status, StatusCode::UNAUTHORIZED);

    let right = Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("authorization", "Bearer s3cret")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(t.call(right).await.status, StatusCode::OK);
    // The read API has no token here.
    assert_eq!(
        t.get(&format!("/api/v1/traces/{}", hex(&TRACE)))
            .await
            .status,
        StatusCode::OK
    );
}

/// A full queue is a 429 with `Retry-After`. The writer is kept busy honestly: it indexes big
/// filler batches while its one-slot queue holds another, so `try_send` finds the queue full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_is_429_with_retry_after() {
    let writer_config = WriterConfig {
        queue_capacity: 1,
        ..test_writer_config()
    };
    let config = ServerConfig {
        retry_after_s: 2,
        ..ServerConfig::default()
    };
    let t = app_with(config, writer_config);
    let filler = || {
        let records: Vec<Record> = (0..20_000)
            .map(|i| {
                Record::Log(LogRecord {
                    time_ns: 1_000 + i,
                    body: format!("filler {i}"),
                    ..LogRecord::default()
                })
            })
            .collect();
        Batch::new(records, Vec::new())
    };
    let mut body = Vec::new();
    let mut saw_429 = false;
    let mut n_acked = 0;
    for attempt in 0..20 {
        // A new request each time: an acknowledged one would be answered from memory.
        let name = format!("attempt {attempt}");
        body = traces_request("svc", vec![span(TRACE, ROOT, None, &name, 1)]).encode_to_vec();
        // Fill the queue: the writer takes one batch, the slot holds the next.
        loop {
            match t.writer().try_send(filler()) {
                Ok(()) => continue,
                Err(TrySendError::Full(_)) => break,
                Err(TrySendError::Closed(_)) => panic!("writer stopped"),
                Err(TrySendError::Paused { cause, .. }) => panic!("writer paused: {cause}"),
            }
        }
        let reply = t
            .post("/v1/traces", "application/x-protobuf", body.clone())
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.headers.get("retry-after").unwrap(), "2");
            let status = RpcStatus::decode(reply.body.clone()).unwrap();
            assert!(status.message.contains("retry after"), "{}", status.message);
            saw_429 = true;
            break;
        }
        assert_eq!(reply.status, StatusCode::OK);
        n_acked += 1;
    }
    assert!(saw_429, "never saw the queue full");

    // Once the writer has drained, the retry succeeds and is indexed: a 429 is not remembered.
    t.writer().flush().await.unwrap();
    let reply = t.post("/v1/traces", "application/x-protobuf", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        t.get(&search_uri("service = svc AND kind = span", ""))
            .await
            .json()["total"],
        n_acked + 1
    );
    let metrics = String::from_utf8(t.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("threadline_rejected_requests_total{reason=\"queue_full\"}"),
        "{metrics}"
    );
}

/// The handler waits for the commit; a server timeout shorter than the commit interval
/// answers 503 (retryable) instead of a 200 that would not yet be durable.
#[tokio::test]
async fn no_200_before_the_commit() {
    let writer_config = WriterConfig {
        commit_interval: Duration::from_secs(30),
        ..test_writer_config()
    };
    let config = ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let t = app_with(config, writer_config);
    let body =
        traces_request("svc", vec![span(TRACE, ROOT, None, "slow commit", 1)]).encode_to_vec();
    let reply = t.post("/v1/traces", "application/x-protobuf", body).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "timeout");
}

#[tokio::test]
async fn too_many_concurrent_ingest_requests_are_429() {
    let config = ServerConfig {
        max_concurrent_ingest: 0,
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let reply = t.post("/v1/logs", "application/json", "{}").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers.get("retry-after").unwrap(), "1");
    assert_eq!(reply.json()["error"]["code"], "queue_full");
}

/// An OTLP/JSON traces request of `n` spans of service `service` in one new trace.
fn json_traces(service: &str, n: usize) -> String {
    let now = now_ns();
    let trace = format!("{:032x}", u128::from(now) ^ 0x5eed);
    let spans: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"traceId":"{trace}","spanId":"{:016x}","name":"op {i}","startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}"#,
                i + 1,
                now - 5_000_000,
                now
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

/// An OTLP/JSON logs request of `n` log records of service `service`.
fn json_logs(service: &str, n: usize) -> String {
    let now = now_ns();
    let logs: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"timeUnixNano":"{}","severityNumber":9,"body":{{"stringValue":"line {i}"}}}}"#,
                now - i as u64
            )
        })
        .collect();
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        logs.join(",")
    )
}

/// How many records `q` finds in the last hour.
async fn count(t: &TestApp, q: &str) -> u64 {
    let found = t.get(&search_uri(q, "&from=now()-1h")).await;
    assert_eq!(found.status, StatusCode::OK, "{q}");
    found.json()["total"].as_u64().unwrap()
}

#[tokio::test]
async fn a_retried_request_is_acknowledged_again_not_indexed_twice() {
    let t = app();
    let traces = json_traces("retry", 20);
    let logs = json_logs("retry", 10);
    for attempt in 0..2 {
        let reply = t
            .post("/v1/traces", "application/json", traces.clone())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "attempt {attempt}");
        assert_eq!(reply.json(), serde_json::json!({}));
        let reply = t.post("/v1/logs", "application/json", logs.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "attempt {attempt}");
    }
    assert_eq!(count(&t, "service = retry AND kind = span").await, 20);
    assert_eq!(count(&t, "service = retry AND kind = log").await, 10);

    // A repeated request that was partly rejected gets the same partial success again.
    let partly_bad = json_traces("retry-partial", 2).replacen(
        r#""name":"op 1""#,
        r#""name":"op 1","attributes":[{"key":"n","value":{"intValue":"99999999999999999999"}}]"#,
        1,
    );
    let first = t
        .post("/v1/traces", "application/json", partly_bad.clone())
        .await;
    let again = t.post("/v1/traces", "application/json", partly_bad).await;
    assert_eq!(first.json()["partialSuccess"]["rejectedSpans"], "1");
    assert_eq!(first.json(), again.json());
    assert_eq!(count(&t, "service = retry-partial").await, 1);

    // The same body on the other path, or in the other encoding, is another request.
    let other = t.post("/v1/logs", "application/json", traces).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    let metrics = String::from_utf8(t.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("threadline_ingest_duplicate_requests_total{signal=\"traces\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("threadline_ingest_duplicate_requests_total{signal=\"logs\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn gzip_and_plain_copies_of_a_request_are_the_same_request() {
    let t = app();
    let request = traces_request(
        "gzip-retry",
        vec![
            span(TRACE, ROOT, None, "POST /checkout", 50),
            span(TRACE, CHILD, Some(ROOT), "charge", 40),
        ],
    )
    .encode_to_vec();
    let plain = t
        .post("/v1/traces", "application/x-protobuf", request.clone())
        .await;
    assert_eq!(plain.status, StatusCode::OK);
    let gzipped = t
        .call(
            Request::post("/v1/traces")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(Body::from(gzip(&request)))
                .unwrap(),
        )
        .await;
    assert_eq!(gzipped.status, StatusCode::OK);
    assert_eq!(gzipped.body, plain.body);
    assert_eq!(count(&t, "service = gzip-retry").await, 2);
}

/// Two identical requests at once: the second waits for the first's commit and is answered
/// with its outcome, not indexed beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_in_flight_at_once_are_indexed_once() {
    let writer_config = WriterConfig {
        commit_interval: Duration::from_millis(400),
        ..test_writer_config()
    };
    let t = app_with(ServerConfig::default(), writer_config);
    let body = json_traces("twins", 5);
    let (a, b, c) = tokio::join!(
        t.post("/v1/traces", "application/json", body.clone()),
        t.post("/v1/traces", "application/json", body.clone()),
        t.post("/v1/traces", "application/json", body.clone()),
    );
    for reply in [&a, &b, &c] {
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    t.writer().flush().await.unwrap();
    assert_eq!(count(&t, "service = twins").await, 5);
}

/// The exporter gave up on a request (here the server's own timeout answered 503) whose commit
/// then succeeded: its retry is answered 200 from memory, not indexed a second time.
#[tokio::test]
async fn a_503_after_a_commit_that_happened_does_not_invite_a_duplicate() {
    let writer_config = WriterConfig {
        commit_interval: Duration::from_millis(700),
        ..test_writer_config()
    };
    let config = ServerConfig {
        request_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let t = app_with(config, writer_config);
    let body = json_logs("late-ack", 3);
    let first = t.post("/v1/logs", "application/json", body.clone()).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.error_code(), "timeout");
    // The commit happens after the answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&t, "service = late-ack").await < 3 {
        assert!(std::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let retry = t.post("/v1/logs", "application/json", body).await;
    assert_eq!(
        retry.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    t.writer().flush().await.unwrap();
    assert_eq!(count(&t, "service = late-ack").await, 3);
}

#[tokio::test]
async fn one_undecodable_value_rejects_only_its_record() {
    let t = app();
    let body = json_traces("bad-int", 3).replacen(
        r#""name":"op 1""#,
        r#""name":"op 1","attributes":[{"key":"order.total","value":{"intValue":99999999999999999999}}]"#,
        1,
    );
    let reply = t.post("/v1/traces", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "1", "{json}");
    let message = json["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("resourceSpans[0].scopeSpans[0].spans[1]")
            && message.contains("attributes[0].value.intValue")
            && message.contains("out of the 64-bit integer range"),
        "{message}"
    );
    assert_eq!(count(&t, "service = bad-int").await, 2);

    // The same in protobuf's answer shape is covered by the ids test; here logs with a bad
    // timestamp, in the request's JSON.
    let body = json_logs("bad-time", 4)
        .replacen(r#""timeUnixNano":""#, r#""timeUnixNano":"-"#, 1)
        .replacen(
            r#""body""#,
            r#""observedTimeUnixNano":99999999999999999999,"body""#,
            3,
        );
    let reply = t.post("/v1/logs", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["partialSuccess"]["rejectedLogRecords"], "3", "{json}");
    let message = json["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("3 log record(s) rejected as undecodable: resourceLogs[0].scopeLogs[0].logRecords[0]: timeUnixNano: \"-"),
        "{message}"
    );
    assert!(
        message.contains("logRecords[2]: observedTimeUnixNano"),
        "{message}"
    );
    assert_eq!(count(&t, "service = bad-time").await, 1);
}

#[tokio::test]
async fn json_that_is_not_otlp_is_a_400_not_an_empty_200() {
    let t = app();
    for body in [
        r#"{"resourceSpans":5}"#,
        r#"{"resourceSpans":[{"scopeSpans":{"spans":[]}}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":{"name":"not a list"}}]}]}"#,
    ] {
        let reply = t.post("/v1/traces", "application/json", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains("undecodable OTLP/JSON body"), "{message}");
    }
    // Unknown fields only, or empty envelopes: an empty request, as OTLP says.
    for body in [
        r#"{"whatever":1}"#,
        r#"{"resourceSpans":[{"scopeSpans":[]}]}"#,
    ] {
        let reply = t.post("/v1/traces", "application/json", body).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}");
    }
    // Truncated protobuf: a 400 that says why.
    let whole = traces_request("svc", vec![span(TRACE, ROOT, None, "x", 1)]).encode_to_vec();
    let reply = t
        .post(
            "/v1/traces",
            "application/x-protobuf",
            whole[..whole.len() - 3].to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let status = RpcStatus::decode(reply.body.clone()).unwrap();
    assert!(
        status.message.contains("undecodable OTLP protobuf body"),
        "{}",
        status.message
    );
}

/// A writer that fails (here the index directory is gone) is a retryable 503 with
/// `Retry-After`, not a 500, and the request is not remembered: the retry is tried again, not
/// answered 200 from memory.
#[tokio::test]
async fn a_writer_failure_is_a_retryable_503_and_not_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("index");
    let index = index::Index::open_or_create(&index_dir).unwrap();
    let writer = index::Writer::start(&index, test_writer_config()).unwrap();
    let app = server::router(server::AppState::new(
        index.clone(),
        writer.handle(),
        ServerConfig::default(),
    ));
    std::fs::remove_dir_all(&index_dir).unwrap();
    let body = json_logs("doomed", 2);
    for attempt in 0..2 {
        let response = tower::ServiceExt::oneshot(
            app.clone(),
            Request::post("/v1/logs")
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}"
        );
        assert!(response.headers().contains_key("retry-after"));
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let message = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("writer") || message.contains("commit"),
            "attempt {attempt}: {message}"
        );
    }
}
