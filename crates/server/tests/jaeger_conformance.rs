//! Jaeger's storage integration suite, run over HTTP through `router(state)`: every fixture of
//! `tests/fixtures/jaeger-storage/otlp/traces/` is POSTed to `/v1/traces` before the first
//! query (so each case sees the others' traces as counterexamples), then every case of
//! `queries.json` must find exactly its expected traces (same ids, same span counts, order
//! ignored) through v1 `/api/traces` and through `/api/v3/traces`. Also: services, operations,
//! get-trace, a 10,008-span trace and duplicate span ids, as the suite checks them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

/// `tests/fixtures/jaeger-storage/otlp` (Jaeger's own fixtures, see PROVENANCE.md there).
fn fixtures_dir() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/jaeger-storage/otlp");
    assert!(
        dir.join("queries.json").is_file() && dir.join("traces").is_dir(),
        "the Jaeger fixtures are missing: expected queries.json and traces/ in {}",
        dir.display()
    );
    dir
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every fixture by name (file stem) with its body.
fn fixtures() -> BTreeMap<String, Value> {
    let dir = fixtures_dir().join("traces");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(name, read_json(&path));
        }
    }
    assert!(
        out.len() >= 30,
        "expected the 32 fixtures, found {}",
        out.len()
    );
    out
}

/// Trace id (as v1 writes it) → span count of an OTLP JSON body.
fn spans_by_trace(otlp: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for rs in otlp["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                let id = span["traceId"].as_str().unwrap();
                *out.entry(v1_id(id)).or_default() += 1;
            }
        }
    }
    out
}

/// A 32-digit id whose high half is zero is written with 16 digits by Jaeger v1.
fn v1_id(id: &str) -> String {
    match id.strip_prefix("0000000000000000") {
        Some(low) if id.len() == 32 => low.to_owned(),
        _ => id.to_owned(),
    }
}

async fn app_with_fixtures() -> (TestApp, BTreeMap<String, Value>) {
    let t = app();
    let fixtures = fixtures();
    for (name, body) in &fixtures {
        let reply = t
            .post("/v1/traces", "application/json", body.to_string())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "POST {name}: {:?}",
            reply.body
        );
    }
    (t, fixtures)
}

fn queries() -> Vec<Value> {
    let queries = read_json(&fixtures_dir().join("queries.json"));
    let queries = queries.as_array().unwrap().clone();
    assert_eq!(queries.len(), 25, "queries.json has 25 cases");
    queries
}

/// A query tag value as the string Jaeger compares: `123`, `72.5`, `true`.
fn tag_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn tags_json(query: &Value) -> Option<String> {
    let tags = query["Tags"].as_object().filter(|t| !t.is_empty())?;
    let strings: BTreeMap<&str, String> = tags
        .iter()
        .map(|(k, v)| (k.as_str(), tag_string(v)))
        .collect();
    Some(serde_json::to_string(&strings).unwrap())
}

fn time_ns(text: &Value) -> i64 {
    decode::time::parse_datetime(text.as_str().unwrap()).unwrap()
}

/// The `/api/traces` URI of a case, as the suite's HTTP runner builds it.
fn v1_uri(query: &Value) -> String {
    let mut uri = format!(
        "/api/traces?service={}&start={}&end={}&limit=1000&lookback=custom",
        encode(query["ServiceName"].as_str().unwrap()),
        time_ns(&query["StartTimeMin"]) / 1000,
        time_ns(&query["StartTimeMax"]) / 1000,
    );
    if let Some(op) = query["OperationName"].as_str().filter(|s| !s.is_empty()) {
        uri += &format!("&operation={}", encode(op));
    }
    if let Some(tags) = tags_json(query) {
        uri += &format!("&tags={}", encode(&tags));
    }
    for (field, param) in [
        ("DurationMin", "minDuration"),
        ("DurationMax", "maxDuration"),
    ] {
        if let Some(ns) = query[field].as_i64().filter(|&ns| ns > 0) {
            uri += &format!("&{param}={ns}ns");
        }
    }
    uri
}

/// The `/api/v3/traces` URI of a case; `snake` picks the snake_case parameter names.
fn v3_uri(query: &Value, snake: bool) -> String {
    let name =
        |camel: &'static str, snake_name: &'static str| if snake { snake_name } else { camel };
    let mut uri = format!(
        "/api/v3/traces?{}={}&{}={}&{}={}&{}=1000",
        name("query.serviceName", "query.service_name"),
        encode(query["ServiceName"].as_str().unwrap()),
        name("query.startTimeMin", "query.start_time_min"),
        encode(query["StartTimeMin"].as_str().unwrap()),
        name("query.startTimeMax", "query.start_time_max"),
        encode(query["StartTimeMax"].as_str().unwrap()),
        name("query.searchDepth", "query.search_depth"),
    );
    if let Some(op) = query["OperationName"].as_str().filter(|s| !s.is_empty()) {
        uri += &format!(
            "&{}={}",
            name("query.operationName", "query.operation_name"),
            encode(op)
        );
    }
    if let Some(tags) = tags_json(query) {
        uri += &format!("&query.attributes={}", encode(&tags));
    }
    for (field, camel, snake_name) in [
        ("DurationMin", "query.durationMin", "query.duration_min"),
        ("DurationMax", "query.durationMax", "query.duration_max"),
    ] {
        if let Some(ns) = query[field].as_i64().filter(|&ns| ns > 0) {
            uri += &format!("&{}={ns}ns", name(camel, snake_name));
        }
    }
    uri
}

fn expected(case: &Value, fixtures: &BTreeMap<String, Value>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for name in case["ExpectedFixtures"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let fixture = fixtures
            .get(name)
            .unwrap_or_else(|| panic!("queries.json names a missing fixture {name}"));
        out.extend(spans_by_trace(fixture));
    }
    out
}

/// Trace id → span count of a v1 search answer.
fn v1_found(reply: &Value) -> BTreeMap<String, usize> {
    reply["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trace| {
            let id = trace["traceID"].as_str().unwrap().to_owned();
            (id, trace["spans"].as_array().unwrap().len())
        })
        .collect()
}

#[tokio::test]
async fn every_storage_suite_query_finds_exactly_its_traces_through_v1() {
    let (t, fixtures) = app_with_fixtures().await;
    let mut failures = Vec::new();
    let cases = queries();
    for case in &cases {
        let query = &case["Query"];
        let uri = v1_uri(query);
        let reply = t.get(&uri).await;
        if reply.status != StatusCode::OK {
            failures.push(format!(
                "{}: {} {:?}",
                case["Caption"], reply.status, reply.body
            ));
            continue;
        }
        let body = reply.json();
        assert_eq!(body["errors"], Value::Null, "{uri}");
        let (found, want) = (v1_found(&body), expected(case, &fixtures));
        if found != want {
            failures.push(format!(
                "{}: {uri}\n  found {found:?}\n  want  {want:?}",
                case["Caption"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_storage_suite_query_finds_exactly_its_traces_through_v3() {
    let (t, fixtures) = app_with_fixtures().await;
    let mut failures = Vec::new();
    let cases = queries();
    for (i, case) in cases.iter().enumerate() {
        // Alternate the spellings: camelCase (canonical) and snake_case (Grafana, older UIs).
        let uri = v3_uri(&case["Query"], i % 2 == 1);
        let reply = t.get(&uri).await;
        if reply.status != StatusCode::OK {
            failures.push(format!(
                "{}: {} {:?}",
                case["Caption"], reply.status, reply.body
            ));
            continue;
        }
        let found = spans_by_trace(&reply.json()["result"]);
        let want = expected(case, &fixtures);
        if found != want {
            failures.push(format!(
                "{}: {uri}\n  found {found:?}\n  want  {want:?}",
                case["Caption"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A single fixture in a fresh index.
async fn app_with(names: &[&str]) -> TestApp {
    let t = app();
    let fixtures = fixtures();
    for name in names {
        let reply = t
            .post(
                "/v1/traces",
                "application/json",
                fixtures[*name].to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    t
}

#[tokio::test]
async fn services_are_exactly_the_span_services() {
    let t = app_with(&["example_trace"]).await;
    let reply = t.get("/api/services").await.json();
    assert_eq!(
        reply,
        json!({"data": ["example-service-1", "example-service-2", "example-service-3"],
               "total": 3, "limit": 0, "offset": 0, "errors": null})
    );
    let reply = t.get("/api/v3/services").await.json();
    assert_eq!(
        reply,
        json!({"services": ["example-service-1", "example-service-2", "example-service-3"]})
    );
}

#[tokio::test]
async fn operations_carry_their_span_kinds() {
    let t = app_with(&["example_trace"]).await;
    let reply = t
        .get("/api/operations?service=example-service-1")
        .await
        .json();
    assert_eq!(
        reply,
        json!({"data": [
                   {"name": "example-operation-1", "spanKind": ""},
                   {"name": "example-operation-3", "spanKind": "server"},
                   {"name": "example-operation-4", "spanKind": "client"}],
               "total": 3, "limit": 0, "offset": 0, "errors": null})
    );
    let reply = t
        .get("/api/operations?service=example-service-1&spanKind=server")
        .await
        .json();
    assert_eq!(
        reply["data"],
        json!([{"name": "example-operation-3", "spanKind": "server"}])
    );
    let reply = t
        .get("/api/services/example-service-1/operations")
        .await
        .json();
    assert_eq!(
        reply["data"],
        json!([
            "example-operation-1",
            "example-operation-3",
            "example-operation-4"
        ])
    );
    assert_eq!(reply["total"], 3);
    let reply = t
        .get("/api/v3/operations?service=example-service-1")
        .await
        .json();
    assert_eq!(
        reply,
        json!({"operations": [
            {"name": "example-operation-1", "spanKind": "internal"},
            {"name": "example-operation-3", "spanKind": "server"},
            {"name": "example-operation-4", "spanKind": "client"}]})
    );
    let reply = t
        .get("/api/v3/operations?service=example-service-1&span_kind=client")
        .await
        .json();
    assert_eq!(
        reply["operations"],
        json!([{"name": "example-operation-4", "spanKind": "client"}])
    );
}

#[tokio::test]
async fn get_trace_returns_the_example_trace_and_404_for_an_unknown_one() {
    let t = app_with(&["example_trace"]).await;
    let reply = t.get("/api/traces/0000000000000011").await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], "0000000000000011");
    assert_eq!(trace["spans"].as_array().unwrap().len(), 5);
    let services: BTreeSet<&str> = trace["processes"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["serviceName"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from([
            "example-service-1",
            "example-service-2",
            "example-service-3"
        ])
    );
    // The short and the full spelling of the id find the same trace.
    let full = t.get("/api/traces/00000000000000000000000000000011").await;
    assert_eq!(full.json(), body);

    let missing = t.get("/api/traces/1").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        String::from_utf8_lossy(&missing.body),
        "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":404,\"msg\":\"trace not found\"}]}\n"
    );

    let v3 = t
        .get("/api/v3/traces/00000000000000000000000000000011")
        .await;
    assert_eq!(v3.status, StatusCode::OK);
    assert_eq!(
        spans_by_trace(&v3.json()["result"]),
        BTreeMap::from([("0000000000000011".to_owned(), 5)])
    );
    let v3_missing = t.get("/api/v3/traces/1").await;
    assert_eq!(v3_missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        v3_missing.json(),
        json!({"error": {"httpCode": 404, "message": "No traces found"}})
    );
}

/// An OTLP JSON body of one trace whose spans all belong to one service.
fn one_trace(service: &str, spans: Vec<Value>) -> String {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {}, "spans": spans}],
    }]})
    .to_string()
}

fn otlp_span(trace_id: &str, span_id: u64, parent: Option<u64>, start_ns: i64) -> Value {
    let mut span = json!({
        "traceId": trace_id,
        "spanId": format!("{span_id:016x}"),
        "name": format!("op-{}", span_id % 7),
        "startTimeUnixNano": start_ns.to_string(),
        "endTimeUnixNano": (start_ns + 1_000).to_string(),
        "status": {},
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    span
}

const BASE_NS: i64 = 1_485_449_191_639_875_000;

#[tokio::test]
async fn a_trace_of_10008_spans_comes_back_whole() {
    let t = app();
    let trace_id = "000000000000000000000000000000a1";
    let spans: Vec<Value> = (1..=10_008u64)
        .map(|i| otlp_span(trace_id, i, (i > 1).then_some(1), BASE_NS + i as i64))
        .collect();
    let reply = t
        .post(
            "/v1/traces",
            "application/json",
            one_trace("large-service", spans),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let by_id = t.get("/api/traces/00000000000000a1").await.json();
    assert_eq!(by_id["data"][0]["spans"].as_array().unwrap().len(), 10_008);

    let start_us = BASE_NS / 1000 - 1;
    let search = t
        .get(&format!(
            "/api/traces?service=large-service&start={start_us}&end={}",
            start_us + 1_000_000
        ))
        .await
        .json();
    assert_eq!(
        v1_found(&search),
        BTreeMap::from([("00000000000000a1".to_owned(), 10_008)])
    );

    let v3 = t.get(&format!("/api/v3/traces/{trace_id}")).await.json();
    assert_eq!(
        spans_by_trace(&v3["result"]),
        BTreeMap::from([("00000000000000a1".to_owned(), 10_008)])
    );
    let v3_search = t
        .get("/api/v3/traces?query.service_name=large-service&query.start_time_min=2017-01-26T00:00:00Z&query.start_time_max=2017-01-27T00:00:00Z")
        .await
        .json();
    assert_eq!(
        spans_by_trace(&v3_search["result"]),
        BTreeMap::from([("00000000000000a1".to_owned(), 10_008)])
    );
}

#[tokio::test]
async fn duplicate_span_ids_survive() {
    let t = app();
    let trace_id = "000000000000000000000000000000a2";
    // 200 spans; every 20th reuses the id of the span before it.
    let spans: Vec<Value> = (1..=200u64)
        .map(|i| {
            let id = if i % 20 == 0 { i - 1 } else { i };
            otlp_span(trace_id, id, None, BASE_NS + i as i64)
        })
        .collect();
    let reply = t
        .post(
            "/v1/traces",
            "application/json",
            one_trace("dup-service", spans),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let trace = t.get("/api/traces/00000000000000a2").await.json();
    assert_eq!(trace["data"][0]["spans"].as_array().unwrap().len(), 200);
}
