//! Regression: spans whose parents point at each other (or a span that is its own parent) once
//! overflowed the stack and aborted the server on `GET /api/v1/traces/{id}`. Every trace view
//! must answer them, through the real OTLP receiver and router.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

const CYCLE_2: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CYCLE_1: &str = "5b8efff798038103d269b633813fc60c";
const CYCLE_3: &str = "6c9f0008a9149214e37ac744924fd71d";

fn otlp_span(trace_id: &str, span_id: &str, parent: &str, start_ns: u64) -> Value {
    json!({
        "traceId": trace_id, "spanId": span_id, "parentSpanId": parent,
        "name": format!("op {span_id}"), "kind": 2,
        "startTimeUnixNano": start_ns.to_string(),
        "endTimeUnixNano": (start_ns + 5_000_000).to_string(),
    })
}

#[tokio::test]
async fn parent_cycles_are_answered_by_every_trace_view() {
    let t = app();
    let now = now_ns();
    let spans = vec![
        otlp_span(CYCLE_2, "00000000000000a1", "00000000000000a2", now),
        otlp_span(CYCLE_2, "00000000000000a2", "00000000000000a1", now + 1_000),
        otlp_span(CYCLE_1, "00000000000000b1", "00000000000000b1", now),
        otlp_span(CYCLE_3, "00000000000000c1", "00000000000000c3", now),
        otlp_span(CYCLE_3, "00000000000000c2", "00000000000000c1", now + 1_000),
        otlp_span(CYCLE_3, "00000000000000c3", "00000000000000c2", now + 2_000),
    ];
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "loop"}}]},
        "scopeSpans": [{"spans": spans}],
    }]});
    let reply = t
        .post("/v1/traces", "application/json", body.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    for (trace_id, n_spans) in [(CYCLE_2, 2), (CYCLE_1, 1), (CYCLE_3, 3)] {
        let reply = t.get(&format!("/api/v1/traces/{trace_id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{trace_id}: {:?}", reply.body);
        let trace = reply.json();
        assert_eq!(trace["spans"].as_array().unwrap().len(), n_spans);
        // The cycle is cut, said so, and the critical path tiles the span shown as root.
        let analysis = &trace["analysis"];
        let cycle = analysis["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "parent_cycle")
            .unwrap_or_else(|| panic!("{trace_id}: {analysis:#}"));
        assert_eq!(
            cycle["evidence"]["cycle"].as_array().unwrap().len(),
            n_spans
        );
        let tiled: i64 = analysis["critical_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["end_ns"].as_i64().unwrap() - s["start_ns"].as_i64().unwrap())
            .sum();
        assert_eq!(tiled, 5_000_000);

        let reply = t.get(&format!("/api/traces/{trace_id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "jaeger v1 {trace_id}");
        let spans = &reply.json()["data"][0]["spans"];
        assert_eq!(spans.as_array().unwrap().len(), n_spans);

        let reply = t.get(&format!("/api/v3/traces/{trace_id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "jaeger v3 {trace_id}");
    }
}
