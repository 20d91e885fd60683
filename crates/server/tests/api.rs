//! The JSON API through `router(state)`: traces, search and paging, aggregate, related,
//! services, health, metrics, tokens, CORS, live tail and the OpenAPI document.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt as _;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;
use serde_json::Value;
use server::ServerConfig;
use tower::ServiceExt as _;

const TRACE_A: [u8; 16] = [0xa1; 16];
const TRACE_B: [u8; 16] = [0xb2; 16];
const SPAN_1: [u8; 8] = [0x11; 8];
const SPAN_2: [u8; 8] = [0x22; 8];
const SPAN_3: [u8; 8] = [0x33; 8];

/// Two traces in two services sharing a decline code, and a few logs.
async fn seeded() -> TestApp {
    let t = app();
    let mut charge = span(TRACE_A, SPAN_2, Some(SPAN_1), "stripe_api_call", 100);
    charge.attributes.push(kv("decline_code", "do_not_honor"));
    charge.attributes.push(kv("user.id", "usr_456"));
    let a = traces_request(
        "checkout",
        vec![span(TRACE_A, SPAN_1, None, "POST /checkout", 110), charge],
    );
    assert_eq!(
        t.post("/v1/traces", "application/x-protobuf", a.encode_to_vec())
            .await
            .status,
        StatusCode::OK
    );
    let b = traces_request("billing", vec![span(TRACE_B, SPAN_3, None, "renew", 90)]);
    assert_eq!(
        t.post("/v1/traces", "application/x-protobuf", b.encode_to_vec())
            .await
            .status,
        StatusCode::OK
    );
    let mut declined = log(Some(TRACE_B), "renewal declined", 17, 80);
    declined.attributes.push(kv("decline_code", "do_not_honor"));
    let logs = logs_request(
        "billing",
        vec![
            declined,
            log(None, "health check ok", 9, 70),
            log(Some(TRACE_A), "charging card", 9, 95),
        ],
    );
    assert_eq!(
        t.post("/v1/logs", "application/x-protobuf", logs.encode_to_vec())
            .await
            .status,
        StatusCode::OK
    );
    t
}

#[tokio::test]
async fn trace_ids_malformed_are_400_and_unknown_are_404() {
    let t = seeded().await;
    let reply = t.get("/api/v1/traces/not-a-trace-id").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not a trace id")
    );

    let reply = t
        .get(&format!(
            "/api/v1/traces/{}",
            "0123456789abcdef0123456789abcdef"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");

    let trace = t
        .get(&format!("/api/v1/traces/{}", hex(&TRACE_A).to_uppercase()))
        .await;
    assert_eq!(trace.status, StatusCode::OK);
    let trace = trace.json();
    assert_eq!(trace["spans"].as_array().unwrap().len(), 2);
    assert_eq!(trace["logs"].as_array().unwrap().len(), 1);
    assert_eq!(trace["summary"]["span_count"], 2);
}

#[tokio::test]
async fn search_pages_with_a_cursor_in_a_stable_order() {
    let t = seeded().await;
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let extra = match &cursor {
            Some(c) => format!("&limit=2&cursor={}", encode(c)),
            None => "&limit=2".to_owned(),
        };
        let page = t
            .get(&search_uri(
                "",
                &format!("&from=now()-1h&to=now()%2B1m{extra}"),
            ))
            .await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&page.body)
        );
        let page = page.json();
        assert_eq!(page["total"], 6);
        seen.extend(page["hits"].as_array().unwrap().iter().cloned());
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut distinct: Vec<String> = seen.iter().map(|h| h.to_string()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "pages overlap");
    // Newest first.
    let time = |h: &Value| {
        h.get("start")
            .or_else(|| h.get("time"))
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(seen.windows(2).all(|w| time(&w[0]) >= time(&w[1])));
    // Every hit leads to its trace (null when unlinked).
    assert!(
        seen.iter()
            .any(|h| h["trace_id"].is_null() && h["kind"] == "log")
    );
}

#[tokio::test]
async fn search_errors_say_what_to_fix() {
    let t = seeded().await;
    let reply = t.get(&search_uri("service = ", "")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("column"),
        "{}",
        reply.json()
    );

    let reply = t.get(&search_uri("", "&from=yesterday")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`from` must be")
    );

    assert_eq!(
        t.get(&search_uri("", "&limit=0")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get(&search_uri("", "&limit=abc")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get(&search_uri("", "&cursor=zzz")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get(&search_uri("", "&from=now()&to=now()-1h"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn query_limits_are_enforced_with_clear_400s() {
    let config = ServerConfig {
        max_query_clauses: 2,
        max_regex_len: 5,
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let reply = t.get(&search_uri("a = 1 AND b = 2 AND c = 3", "")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("clause"), "{message}");
    let reply = t.get(&search_uri("service =~ \"pay.*ment.*\"", "")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("regex"),
        "{}",
        reply.json()
    );
    assert_eq!(
        t.get(&search_uri("a = 1 AND b = 2", "")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn aggregate_by_field_and_interval() {
    let t = seeded().await;
    let reply = t
        .get(&format!(
            "/api/v1/aggregate?q={}&by=service",
            encode("decline_code = do_not_honor")
        ))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["total"], 2);
    let mut services: Vec<&str> = json["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"]["service"].as_str().unwrap())
        .collect();
    services.sort_unstable();
    assert_eq!(services, ["billing", "checkout"]);

    let reply = t
        .get("/api/v1/aggregate?interval=1m&from=now()-1h")
        .await
        .json();
    let counted: u64 = reply["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 6);
    assert!(
        reply["buckets"][0]["key"]["time"]
            .as_str()
            .unwrap()
            .ends_with(":00Z")
    );
    // Every minute of the hour is listed, the empty ones with 0.
    let n = reply["buckets"].as_array().unwrap().len();
    assert!((60..=61).contains(&n), "{n} buckets");

    // Distinct traces: trace A has records in both services, B in billing only; the health
    // check has no trace.
    let reply = t
        .get("/api/v1/aggregate?by=service&count=traces")
        .await
        .json();
    assert_eq!(reply["total"], 2, "{reply}");
    assert_eq!(
        reply["buckets"],
        serde_json::json!([
            {"key": {"service": "billing"}, "count": 2},
            {"key": {"service": "checkout"}, "count": 1},
        ])
    );
    let reply = t.get("/api/v1/aggregate?by=service&count=spans").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // Duration statistics and percentiles, as `threadline agg --stats` has them.
    let uri = format!(
        "/api/v1/aggregate?q={}&by=service&stats=true",
        encode("kind = span")
    );
    let reply = t.get(&uri).await.json();
    let checkout = reply["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["key"]["service"] == "checkout")
        .unwrap();
    let d = &checkout["duration_ns"];
    for key in [
        "count", "min", "max", "avg", "sum", "p50", "p90", "p95", "p99",
    ] {
        assert!(d.get(key).is_some(), "{key} missing: {checkout}");
    }
    assert_eq!(d["count"], 2);
    assert_eq!(d["max"].as_f64(), Some(5_000_000.0));
    let uri = format!(
        "/api/v1/aggregate?q={}&by=service&percentiles=p75,99.9",
        encode("kind = span")
    );
    let reply = t.get(&uri).await.json();
    let d = &reply["buckets"][0]["duration_ns"];
    assert!(
        d.get("p75").is_some() && d.get("p99.9").is_some(),
        "{reply}"
    );
    assert_eq!(
        t.get("/api/v1/aggregate?by=service&percentiles=150")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let reply = t.get("/api/v1/aggregate?q=").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`by`")
    );
    assert_eq!(
        t.get("/api/v1/aggregate?by=a,b,c").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get("/api/v1/aggregate?interval=soon").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn trace_list_has_one_row_per_trace_with_all_its_records() {
    let t = seeded().await;
    let uri = format!(
        "/api/v1/traces?q={}&from=now()-1h",
        encode("decline_code = do_not_honor")
    );
    let reply = t.get(&uri).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["total"], 2, "{json}");
    assert_eq!(json["truncated"], false);
    let rows = json["traces"].as_array().unwrap();
    // Newest start first: B started 90 ms ago, A 110 ms ago.
    assert_eq!(rows[0]["trace_id"], hex(&TRACE_B));
    assert_eq!(rows[1]["trace_id"], hex(&TRACE_A));
    let a = &rows[1];
    assert_eq!(a["root_name"], "POST /checkout");
    assert_eq!(a["root_service"], "checkout");
    assert_eq!(
        (a["span_count"].as_u64(), a["log_count"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(a["error_count"], 0);
    assert_eq!(a["services"], serde_json::json!(["billing", "checkout"]));
    assert!(a["duration_ns"].as_u64().unwrap() >= 5_000_000);
    assert!(a["start"].as_str().unwrap().ends_with('Z'));
    let b = &rows[0];
    assert_eq!(
        (b["span_count"].as_u64(), b["log_count"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(b["error_count"], 1, "the ERROR log: {b}");

    let oldest = t.get(&format!("{uri}&sort=time&limit=1")).await.json();
    assert_eq!(oldest["total"], 2);
    assert_eq!(oldest["traces"].as_array().unwrap().len(), 1);
    assert_eq!(oldest["traces"][0]["trace_id"], hex(&TRACE_A));

    let reply = t.get(&format!("{uri}&sort=sideways")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("-duration")
    );
    assert_eq!(
        t.get("/api/v1/traces?limit=0").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get(&format!("/api/v1/traces?q={}", encode("status =")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn compare_answers_in_the_documented_shape() {
    let t = seeded().await;
    let uri = format!(
        "/api/v1/compare?q={}&from=now()-1h",
        encode("decline_code = do_not_honor")
    );
    let reply = t.get(&uri).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    // Both traces carry the code; the baseline (no record of either kind matching) is empty of
    // traces, so nothing is over-represented against it.
    assert_eq!(json["selection"]["traces"], 2, "{json}");
    assert_eq!(json["selection"]["records"], 2, "{json}");
    for key in ["records", "traces"] {
        assert!(json["baseline"][key].is_u64(), "{json}");
    }
    assert!(json["results"].is_array());
    let reply = t
        .get(&format!(
            "/api/v1/compare?q={}&count=records&baseline={}",
            encode("service = billing"),
            encode("service = checkout")
        ))
        .await
        .json();
    assert_eq!(reply["selection"]["records"], 4, "{reply}");
    for r in reply["results"].as_array().unwrap() {
        assert_ne!(r["field"], "service", "the selection's own field: {reply}");
        for key in [
            "field",
            "value",
            "selection_count",
            "baseline_count",
            "selection_share",
            "baseline_share",
            "score",
        ] {
            assert!(r.get(key).is_some(), "{key}: {r}");
        }
    }
    assert_eq!(
        t.get("/api/v1/compare?q=").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get(&format!(
            "/api/v1/compare?q={}&count=spans",
            encode("kind = span")
        ))
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn related_widens_from_one_trace_across_services() {
    let t = seeded().await;
    let uri = format!(
        "/api/v1/traces/{}/related?attribute=decline_code&window=1h",
        hex(&TRACE_A)
    );
    let reply = t.get(&uri).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["values"], serde_json::json!(["do_not_honor"]));
    assert_eq!(json["total"], 2);
    assert_eq!(
        json["by_value"],
        serde_json::json!([{"value": "do_not_honor", "count": 2}])
    );
    let mut services: Vec<&str> = json["by_service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["service"].as_str().unwrap())
        .collect();
    services.sort_unstable();
    assert_eq!(services, ["billing", "checkout"]);
    let mut samples: Vec<&str> = json["sample_trace_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    samples.sort_unstable();
    assert_eq!(samples, [hex(&TRACE_A), hex(&TRACE_B)]);
    // The sample traces with an error come first: trace B logged its decline at ERROR.
    let ordered: Vec<(&str, bool)> = json["sample_traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["trace_id"].as_str().unwrap(),
                t["error"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ordered,
        [
            (hex(&TRACE_B).as_str(), true),
            (hex(&TRACE_A).as_str(), false)
        ]
    );
    let in_time: u64 = json["by_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(in_time, 2);
    assert_eq!(json["hits"].as_array().unwrap().len(), 2);

    // Known fields work too: the span names of the trace.
    let uri = format!(
        "/api/v1/traces/{}/related?attribute=span.name",
        hex(&TRACE_A)
    );
    let json = t.get(&uri).await.json();
    assert_eq!(json["values"].as_array().unwrap().len(), 2);

    // An attribute the trace lacks gives empty results; one no record has is a 400 with a hint
    // (it used to answer an empty result, which reads as "nothing related"); a missing
    // attribute is a 400.
    let uri = format!(
        "/api/v1/traces/{}/related?attribute=renewal.id",
        hex(&TRACE_A)
    );
    let reply = t.get(&uri).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closest known fields")
    );
    let uri = format!("/api/v1/traces/{}/related?attribute=user.id", hex(&TRACE_B));
    assert_eq!(t.get(&uri).await.json()["total"], 0);
    let uri = format!("/api/v1/traces/{}/related", hex(&TRACE_A));
    assert_eq!(t.get(&uri).await.status, StatusCode::BAD_REQUEST);
    let uri = format!(
        "/api/v1/traces/{}/related?attribute=x&window=forever",
        hex(&TRACE_A)
    );
    assert_eq!(t.get(&uri).await.status, StatusCode::BAD_REQUEST);
    let uri = "/api/v1/traces/0123456789abcdef0123456789abcdef/related?attribute=x";
    assert_eq!(t.get(uri).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn services_list_names_and_attribute_keys() {
    let t = seeded().await;
    let json = t.get("/api/v1/services").await.json();
    let names: Vec<&str> = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"checkout") && names.contains(&"billing"),
        "{json}"
    );
    assert!(
        json["attribute_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["path"].as_str().unwrap().contains("decline_code"))
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_unknown_routes() {
    let t = seeded().await;
    assert_eq!(t.get("/healthz").await.json()["status"], "ok");
    let ready = t.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["num_docs"], 6);

    let _ = t.get("/api/v1/search?q=").await;
    let _ = t.get("/api/v1/traces/zzz").await;
    let metrics = t.get("/metrics").await;
    assert!(metrics.content_type().starts_with("text/plain"));
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    for expected in [
        "threadline_ingest_records_total{signal=\"traces\"} 3",
        "threadline_ingest_records_total{signal=\"logs\"} 3",
        "threadline_writer_queue_depth ",
        "threadline_index_commits_total ",
        "threadline_ingest_ack_seconds_count 3",
        "threadline_http_request_duration_seconds_count{route=\"/api/v1/search\"} 1",
        "threadline_http_request_duration_seconds_bucket{route=\"/v1/traces\",le=\"+Inf\"} 2",
        "threadline_rejected_requests_total{reason=\"bad_request\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }

    let reply = t.get("/api/v2/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");

    // The writer stopped: not ready, still healthy.
    let mut t = t;
    let writer = t.take_writer();
    let app = t.app.clone();
    tokio::task::spawn_blocking(move || writer.shutdown())
        .await
        .unwrap()
        .unwrap();
    let call = |uri: &'static str| {
        app.clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
    };
    assert_eq!(
        call("/readyz").await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(call("/healthz").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn read_token_guards_the_api_but_not_health() {
    let config = ServerConfig {
        read_token: Some("r34d".into()),
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let reply = t.get("/api/v1/search").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");
    assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Bearer");
    let authed = Request::get("/api/v1/search")
        .header("authorization", "Bearer r34d")
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.call(authed).await.status, StatusCode::OK);
    assert_eq!(t.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(t.get("/metrics").await.status, StatusCode::OK);
    // No read token needed to ingest when only the read token is set.
    assert_eq!(
        t.post("/v1/logs", "application/json", "{}").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let config = ServerConfig {
        cors_origins: vec!["https://ui.example.com".into()],
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let preflight = |origin: &str| {
        Request::options("/api/v1/search")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = t.call(preflight("https://ui.example.com")).await;
    assert_eq!(
        allowed.headers.get("access-control-allow-origin").unwrap(),
        "https://ui.example.com"
    );
    let refused = t.call(preflight("https://evil.example.com")).await;
    assert!(refused.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn live_tail_streams_new_matches_as_events() {
    let config = ServerConfig {
        tail_poll_interval: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    assert_eq!(
        t.get(&format!("/api/v1/tail?q={}", encode("service = ")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let response = t
        .app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/tail?q={}", encode("level >= error")))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    // Written after the tail started, with a time after its start.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut future_log = log(None, "tail me", 17, 0);
    future_log.time_unix_nano = now_ns() + 1_000_000;
    let quiet = log(None, "not an error", 9, 0);
    let request = logs_request("svc", vec![future_log, quiet]);
    assert_eq!(
        t.post(
            "/v1/logs",
            "application/x-protobuf",
            request.encode_to_vec()
        )
        .await
        .status,
        StatusCode::OK
    );

    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("tail me") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("no event in time");
        let frame = frame.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.contains("event: log"), "{text}");
    assert!(!text.contains("not an error"), "{text}");
}

/// Reads server-sent events from `body` until `done` holds for the text read so far.
async fn read_events_until(body: &mut Body, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&text) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no such event in time; got:\n{text}"));
        let frame = frame.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text
}

/// The `id:` of the event whose data contains `needle`.
fn event_id(text: &str, needle: &str) -> u64 {
    let event = text
        .split("\n\n")
        .find(|event| event.contains(needle))
        .unwrap_or_else(|| panic!("no event with {needle} in:\n{text}"));
    let id = event
        .lines()
        .find_map(|line| line.strip_prefix("id:"))
        .unwrap_or_else(|| panic!("event without id: {event}"));
    id.trim().parse().unwrap()
}

/// Records arrive late (a span is exported after it ends; a log line is shipped late): the live
/// tail follows arrival order, and `Last-Event-ID` resumes after a reconnect with nothing lost
/// and nothing repeated.
#[tokio::test]
async fn live_tail_follows_arrival_order_and_resumes_after_last_event_id() {
    let config = ServerConfig {
        tail_poll_interval: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let open = |last_event_id: Option<u64>| {
        let mut request = Request::get("/api/v1/tail");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        t.app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let post_logs = |logs: Vec<LogRecord>| {
        t.post(
            "/v1/logs",
            "application/x-protobuf",
            logs_request("svc", logs).encode_to_vec(),
        )
    };
    // Committed before the stream opens: not sent.
    assert_eq!(
        post_logs(vec![log(None, "before the stream", 9, 0)])
            .await
            .status,
        StatusCode::OK
    );

    let response = open(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // A span that started 10 s ago and a log line stamped 10 s ago, sent after the stream opened.
    let late_span = span([7; 16], [1; 8], None, "late span", 10_000);
    let reply = t
        .post(
            "/v1/traces",
            "application/x-protobuf",
            traces_request("svc", vec![late_span]).encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        post_logs(vec![log(None, "late log one", 9, 10_000)])
            .await
            .status,
        StatusCode::OK
    );
    let text = read_events_until(&mut body, |t| {
        t.contains("late span") && t.contains("late log one")
    })
    .await;
    assert!(!text.contains("before the stream"), "{text}");
    let span_id = event_id(&text, "late span");
    let log_id = event_id(&text, "late log one");
    assert!(span_id < log_id, "events come in arrival order: {text}");
    drop(body);

    // While disconnected, two more records land; the reconnect resumes after the last event.
    assert_eq!(
        post_logs(vec![
            log(None, "late log two", 9, 60_000),
            log(None, "late log three", 9, 0)
        ])
        .await
        .status,
        StatusCode::OK
    );
    let response = open(Some(log_id)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let text = read_events_until(&mut body, |t| {
        t.contains("late log two") && t.contains("late log three")
    })
    .await;
    assert!(
        !text.contains("late log one"),
        "repeated after resume: {text}"
    );
    assert!(!text.contains("late span"), "repeated after resume: {text}");
    assert!(event_id(&text, "late log two") > log_id);

    // A Last-Event-ID that is not a number is refused, not silently ignored.
    let bad = t
        .call(
            Request::get("/api/v1/tail")
                .header("last-event-id", "yesterday")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn live_tails_are_bounded() {
    let config = ServerConfig {
        max_tail_streams: 1,
        ..ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    let first = t
        .app
        .clone()
        .oneshot(Request::get("/api/v1/tail").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = t.get("/api/v1/tail").await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    drop(first);
    assert_eq!(
        t.app
            .clone()
            .oneshot(Request::get("/api/v1/tail").body(Body::empty()).unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// The OpenAPI document lists exactly the router's routes, and each of them is routed.
#[tokio::test]
async fn openapi_lists_every_route_and_nothing_else() {
    let t = app();
    let reply = t.get("/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut routed: Vec<(String, String)> = server::routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);

    // Every `$ref` resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = format!("/{}", &part[..part.find('"').unwrap()]);
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }

    // Each route reaches a handler: not the fallback's 404, not a 405.
    for (method, path) in routed {
        let uri = path.replace("{trace_id}", &hex(&TRACE_A));
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = t.app.clone().oneshot(request).await.unwrap();
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        if response.status() == StatusCode::NOT_FOUND {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(
                !String::from_utf8_lossy(&body).contains("no route for"),
                "{method} {uri} is not routed"
            );
        }
    }
}
