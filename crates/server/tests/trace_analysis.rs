//! The trace API carries the index-backed analysis: a payment call whose context was lost is
//! linked to the trace its callee started, and that trace back to it, through the real OTLP
//! receiver, index and router.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

const ORDER: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PAYMENT: &str = "5b8efff798038103d269b633813fc60c";

fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    name: &str,
    kind: u8,
    (start, ms): (u64, u64),
    attrs: Value,
) -> Value {
    json!({
        "traceId": trace, "spanId": id, "parentSpanId": parent.unwrap_or(""),
        "name": name, "kind": kind,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + ms * 1_000_000).to_string(),
        "attributes": attrs,
    })
}

fn service(name: &str, spans: Vec<Value>) -> Value {
    json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
        "scopeSpans": [{"spans": spans}],
    })
}

#[tokio::test]
async fn a_lost_context_is_linked_both_ways_in_the_trace_api() {
    let t = app();
    let t0 = now_ns() - 60_000_000_000;
    let ms = 1_000_000;
    let peer = json!([{"key": "server.address", "value": {"stringValue": "payment-service"}}]);
    let body = json!({"resourceSpans": [
        service("order-service", vec![
            span(ORDER, "00000000000000a1", None, "POST /orders", 2, (t0, 400), json!([])),
            span(ORDER, "00000000000000a2", Some("00000000000000a1"), "POST /api/payments", 3, (t0 + 10 * ms, 330), peer),
        ]),
        service("payment-service", vec![
            span(PAYMENT, "00000000000000b1", None, "POST /api/payments", 2, (t0 + 11 * ms, 320), json!([])),
            span(PAYMENT, "00000000000000b2", Some("00000000000000b1"), "stripe_api_call", 3, (t0 + 12 * ms, 300), json!([])),
        ]),
    ]});
    let reply = t
        .post("/v1/traces", "application/json", body.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let order = t.get(&format!("/api/v1/traces/{ORDER}")).await.json();
    let broken: Vec<&Value> = order["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "broken_propagation")
        .collect();
    assert_eq!(broken.len(), 1, "{:#}", order["analysis"]);
    assert_eq!(broken[0]["span_id"], "00000000000000a2");
    assert_eq!(broken[0]["linked_trace_id"], PAYMENT);
    assert_eq!(broken[0]["evidence"]["linked_service"], "payment-service");

    let payment = t.get(&format!("/api/v1/traces/{PAYMENT}")).await.json();
    let detached: Vec<&Value> = payment["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "detached_root")
        .collect();
    assert_eq!(detached.len(), 1, "{:#}", payment["analysis"]);
    assert_eq!(detached[0]["span_id"], "00000000000000b1");
    assert_eq!(detached[0]["linked_trace_id"], ORDER);

    // The critical path tiles the root: 400 ms in segments ordered by time.
    let segments = order["analysis"]["critical_path"].as_array().unwrap();
    let total: i64 = segments
        .iter()
        .map(|s| s["end_ns"].as_i64().unwrap() - s["start_ns"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 400 * ms as i64);
    assert!(
        segments
            .windows(2)
            .all(|w| w[0]["end_ns"] == w[1]["start_ns"])
    );
    assert!(order["analysis"]["self_time_by_service_ns"]["order-service"].is_i64());

    // A malformed option is a 400 that says so.
    let reply = t
        .get(&format!("/api/v1/traces/{ORDER}?adjust_clock_skew=maybe"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}
