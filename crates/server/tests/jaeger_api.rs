//! The wire shapes of the Jaeger-compatible API against the JSON Jaeger returns: the v1
//! envelope and its errors (bytes exact), typed tags, references, processes, logs; the
//! api_v3 OTLP JSON; and every trace of the legacy v1-model fixtures, span by span.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};

fn here(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jaeger")
        .join(name)
}

/// Jaeger's storage-suite fixtures copied into `tests/fixtures/jaeger-storage` (PROVENANCE.md).
fn acceptance(sub: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/jaeger-storage")
        .join(sub);
    assert!(
        dir.is_dir(),
        "the Jaeger fixtures are missing: expected {}",
        dir.display()
    );
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn post_otlp(t: &TestApp, body: String) {
    let reply = t.post("/v1/traces", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

#[tokio::test]
async fn a_trace_in_v1_json_is_exactly_jaegers() {
    let t = app();
    post_otlp(&t, read(&here("checkout.otlp.json"))).await;
    let reply = t.get("/api/traces/4bf92f3577b34da6a3ce929d0e0e4736").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    assert_eq!(reply.json(), json_file(&here("checkout.v1.json")));
}

#[tokio::test]
async fn a_trace_in_api_v3_is_otlp_json() {
    let t = app();
    post_otlp(&t, read(&here("checkout.otlp.json"))).await;
    let reply = t
        .get("/api/v3/traces/4bf92f3577b34da6a3ce929d0e0e4736")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json_file(&here("checkout.v3.json")));
    // The same body from a search, in both parameter spellings.
    for uri in [
        "/api/v3/traces?query.serviceName=payment&query.startTimeMin=2024-01-31T05:28:00Z&query.startTimeMax=2024-01-31T05:29:00Z&query.attributes=%7B%22retry.count%22%3A%222%22%7D",
        "/api/v3/traces?query.service_name=payment&query.start_time_min=2024-01-31T05:28:00Z&query.start_time_max=2024-01-31T05:29:00Z&query.duration_min=4ms&query.duration_max=4.3ms",
    ] {
        let reply = t.get(uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.json(), json_file(&here("checkout.v3.json")), "{uri}");
    }
}

#[tokio::test]
async fn envelopes_and_errors_are_byte_exact() {
    let t = app();
    post_otlp(&t, read(&here("checkout.otlp.json"))).await;
    let services = t.get("/api/services").await;
    assert_eq!(
        String::from_utf8_lossy(&services.body),
        r#"{"data":["frontend","payment"],"total":2,"limit":0,"offset":0,"errors":null}"#
    );

    let missing = t.get("/api/traces/4bf92f3577b34da6a3ce929d0e0e4737").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.content_type(), "text/plain; charset=utf-8");
    assert_eq!(
        String::from_utf8_lossy(&missing.body),
        "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":404,\"msg\":\"trace not found\"}]}\n"
    );

    for (uri, message) in [
        ("/api/traces", "parameter 'service' is required"),
        ("/api/operations", "parameter 'service' is required"),
        (
            "/api/traces?service=payment&minDuration=1000",
            "unable to parse param 'minDuration'",
        ),
        (
            "/api/traces?service=payment&minDuration=2s&maxDuration=1s",
            "'maxDuration' should be greater than 'minDuration'",
        ),
        (
            "/api/traces?service=payment&tags=%7B%22a%22%3A1%7D",
            "malformed parameter tags",
        ),
        (
            "/api/traces?service=payment&start=yesterday",
            "unable to parse param 'start'",
        ),
        ("/api/traces/not-hex", "invalid trace id"),
    ] {
        let reply = t.get(uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        let body = reply.json();
        assert_eq!(body["data"], Value::Null, "{uri}");
        assert_eq!(body["errors"][0]["code"], 400, "{uri}");
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.contains(message), "{uri}: {msg}");
    }

    // Several ids: the missing one is reported, the status stays 200.
    let reply = t
        .get("/api/traces?traceID=4bf92f3577b34da6a3ce929d0e0e4736&traceID=227")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["errors"],
        json!([{"msg": "trace not found", "traceID": "0000000000000227"}])
    );

    let v3 = t.get("/api/v3/traces?query.service_name=payment").await;
    assert_eq!(v3.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v3.json(),
        json!({"error": {"httpCode": 400,
                         "message": "query.start_time_min and query.start_time_max are required"}})
    );
    let none = t
        .get("/api/v3/traces?query.service_name=nobody&query.start_time_min=2024-01-31T05:28:00Z&query.start_time_max=2024-01-31T05:29:00Z")
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(
        String::from_utf8_lossy(&none.body),
        "{\"error\":{\"httpCode\":404,\"message\":\"No traces found\"}}\n"
    );
}

#[tokio::test]
async fn search_applies_go_durations_tags_and_the_window() {
    let t = app();
    post_otlp(&t, read(&here("checkout.otlp.json"))).await;
    let window = "start=1706678909000000&end=1706678910000000";
    let found = |reply: Value| reply["data"].as_array().unwrap().len();
    for (query, n) in [
        ("service=payment", 1),
        ("service=payment&operation=charge", 1),
        ("service=payment&operation=POST%20%2Fcheckout", 0),
        ("service=payment&minDuration=4.3ms", 1),
        ("service=payment&minDuration=4300001ns", 0),
        ("service=payment&maxDuration=4299us", 0),
        ("service=payment&minDuration=1ms&maxDuration=1m30s", 1),
        ("service=payment&tags=%7B%22error%22%3A%22true%22%7D", 1),
        ("service=frontend&tags=%7B%22error%22%3A%22true%22%7D", 0),
        (
            "service=payment&tag=exception.type:CardError&tag=retry.count:2",
            1,
        ),
        ("service=payment&tag=retry.count:02", 0),
        (
            "service=frontend&tags=%7B%22host.name%22%3A%22web-1%22%7D",
            1,
        ),
        (
            "service=frontend&tags=%7B%22resource.host.name%22%3A%22web-1%22%7D",
            1,
        ),
        (
            "service=frontend&tags=%7B%22span.kind%22%3A%22server%22%7D",
            1,
        ),
        (
            "service=frontend&tags=%7B%22span.kind%22%3A%22client%22%7D",
            0,
        ),
    ] {
        let reply = t.get(&format!("/api/traces?{query}&{window}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
        assert_eq!(found(reply.json()), n, "{query}");
    }
    // Outside the window: nothing.
    let reply = t
        .get("/api/traces?service=payment&start=1706678910000000&end=1706678920000000")
        .await;
    assert_eq!(found(reply.json()), 0);
    // A matching trace comes back whole, with both services.
    let reply = t
        .get(&format!("/api/traces?service=payment&{window}"))
        .await
        .json();
    assert_eq!(reply["data"][0]["spans"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn dependencies_count_calls_between_services() {
    let t = app();
    post_otlp(&t, read(&here("checkout.otlp.json"))).await;
    let end_ms = 1_706_678_910_000_i64;
    let reply = t
        .get(&format!("/api/dependencies?endTs={end_ms}&lookback=60000"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"data": [{"parent": "frontend", "child": "payment", "callCount": 1}],
               "total": 0, "limit": 0, "offset": 0, "errors": null})
    );
    let reply = t
        .get(&format!(
            "/api/dependencies?endTs={}&lookback=60000",
            end_ms - 120_000
        ))
        .await;
    assert_eq!(reply.json()["data"], json!([]));
}

#[tokio::test]
async fn logs_of_a_span_appear_in_its_logs() {
    let t = app();
    post_otlp(&t, read(&here("checkout.otlp.json"))).await;
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payment"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1706678909213000000",
            "severityNumber": 17,
            "body": {"stringValue": "card declined by issuer"},
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spanId": "53ce929d0e0e4736",
            "attributes": [{"key": "decline_code", "value": {"stringValue": "do_not_honor"}}],
        }]}],
    }]});
    let reply = t
        .post("/v1/logs", "application/json", logs.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let trace = t
        .get("/api/traces/4bf92f3577b34da6a3ce929d0e0e4736")
        .await
        .json();
    let charge = &trace["data"][0]["spans"][1];
    assert_eq!(charge["operationName"], "charge");
    assert_eq!(
        charge["logs"],
        json!([
            {"timestamp": 1706678909213000_i64, "fields": [
                {"key": "level", "type": "string", "value": "error"},
                {"key": "message", "type": "string", "value": "card declined by issuer"},
                {"key": "decline_code", "type": "string", "value": "do_not_honor"}]},
            {"timestamp": 1706678909214000_i64, "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.type", "type": "string", "value": "CardError"}]}
        ])
    );
}

/// Legacy model JSON (`{"spans": [..]}`, base64 ids, embedded processes) as the v1 UI JSON
/// Jaeger serves for it, keyed by span id; tags sorted by key.
fn legacy_to_ui(legacy: &Value) -> BTreeMap<String, Value> {
    // Some fixture ids have non-zero trailing bits, which Go's decoder accepts.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let b64 = |v: &Value| {
        let bytes = lenient.decode(v.as_str().unwrap()).unwrap();
        hex(&bytes)
    };
    let trace_id = |v: &Value| {
        let id = b64(v);
        match id.strip_prefix("0000000000000000") {
            Some(low) if id.len() == 32 => low.to_owned(),
            _ => id,
        }
    };
    let micros = |v: &Value| decode::time::parse_datetime(v.as_str().unwrap()).unwrap() / 1000;
    let tag = |t: &Value| {
        let kind = t["vType"].as_str().unwrap_or("STRING").to_ascii_lowercase();
        let value = match kind.as_str() {
            "string" => t["vStr"].clone(),
            "bool" => t["vBool"].clone(),
            "int64" => t["vInt64"].clone(),
            "float64" => t["vFloat64"].clone(),
            "binary" => t["vBinary"].clone(),
            other => panic!("unknown vType {other}"),
        };
        json!({"key": t["key"], "type": kind, "value": value})
    };
    let tags = |list: &Value| sorted(list.as_array().into_iter().flatten().map(tag).collect());
    legacy["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| {
            let duration_ns: i64 = span["duration"]
                .as_str()
                .unwrap()
                .trim_end_matches("ns")
                .parse()
                .unwrap();
            let references: Vec<Value> = span["references"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    json!({"refType": r["refType"].as_str().unwrap_or("CHILD_OF"),
                           "traceID": trace_id(&r["traceId"]), "spanID": b64(&r["spanId"])})
                })
                .collect();
            let logs: Vec<Value> = span["logs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    let fields: Vec<Value> = l["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(tag)
                        .collect();
                    json!({"timestamp": micros(&l["timestamp"]), "fields": sorted(fields)})
                })
                .collect();
            let ui = json!({
                "traceID": trace_id(&span["traceId"]),
                "spanID": b64(&span["spanId"]),
                "operationName": span["operationName"],
                "references": references,
                "startTime": micros(&span["startTime"]),
                "duration": duration_ns / 1000,
                "tags": tags(&span["tags"]),
                "logs": logs,
                "process": {"serviceName": span["process"]["serviceName"],
                            "tags": tags(&span["process"]["tags"])},
            });
            (b64(&span["spanId"]), ui)
        })
        .collect()
}

fn sorted(mut tags: Vec<Value>) -> Vec<Value> {
    tags.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    tags
}

/// Our v1 trace in the same comparable form: the process embedded, tags sorted by key.
fn ours_comparable(trace: &Value) -> BTreeMap<String, Value> {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| {
            let process = &trace["processes"][span["processID"].as_str().unwrap()];
            assert!(process.is_object(), "processID {} has no process", span["processID"]);
            let logs: Vec<Value> = span["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| json!({"timestamp": l["timestamp"], "fields": sorted(l["fields"].as_array().unwrap().clone())}))
                .collect();
            let ui = json!({
                "traceID": span["traceID"],
                "spanID": span["spanID"],
                "operationName": span["operationName"],
                "references": span["references"],
                "startTime": span["startTime"],
                "duration": span["duration"],
                "tags": sorted(span["tags"].as_array().unwrap().clone()),
                "logs": logs,
                "process": {"serviceName": process["serviceName"],
                            "tags": sorted(process["tags"].as_array().unwrap().clone())},
            });
            assert_eq!(span["warnings"], Value::Null);
            (span["spanID"].as_str().unwrap().to_owned(), ui)
        })
        .collect()
}

#[tokio::test]
async fn every_legacy_fixture_reads_back_as_its_v1_model() {
    let otlp_dir = acceptance("otlp/traces");
    let legacy_dir = acceptance("legacy-v1model/traces");
    let t = app();
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&legacy_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for legacy_path in names {
        let name = legacy_path.file_name().unwrap();
        let otlp_path = otlp_dir.join(name);
        if !otlp_path.is_file() {
            continue;
        }
        let otlp = json_file(&otlp_path);
        post_otlp(&t, otlp.to_string()).await;
        let otlp_id = otlp
            .pointer("/resourceSpans/0/scopeSpans/0/spans/0/traceId")
            .unwrap();
        let trace_id = otlp_id.as_str().unwrap().trim_start_matches('0').to_owned();
        let trace_id = format!("{trace_id:0>16}");
        let mut want = legacy_to_ui(&json_file(&legacy_path));
        // The OTLP suite renumbered one trace (`default`: 0x11 → 0x227); follow it.
        for span in want.values_mut() {
            span["traceID"] = json!(trace_id);
        }
        let reply = t.get(&format!("/api/traces/{trace_id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{name:?}");
        let body = reply.json();
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        let got = ours_comparable(&body["data"][0]);
        // The OTLP suite named spans the legacy one left unnamed (`default`, `multiple*`, ...).
        for (span_id, span) in want.iter_mut() {
            if span["operationName"] == "" {
                span["operationName"] = got
                    .get(span_id)
                    .map_or(Value::Null, |g| g["operationName"].clone());
            }
        }
        if got != want {
            failures.push(format!(
                "{name:?}\n  got  {}\n  want {}",
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap()
            ));
        }
        compared += 1;
    }
    assert!(compared >= 29, "compared only {compared} fixtures");
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
