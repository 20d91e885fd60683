//! Test helpers for the crates that show traces (the CLI waterfall, the Jaeger views): random
//! parent graphs with duplicates, self-parents, cycles of any length, missing parents and
//! several roots, and chains of any depth, as assembled traces. Behind the `testing` feature.

use proptest::prelude::*;

use crate::Trace;

/// One span of a graph: `(span id, parent id, start in ms, duration in ms)`.
pub type GraphSpan = (u64, Option<u64>, i64, i64);

/// Graphs over a few ids (so that duplicates and cycles are common), negative durations too.
pub fn parent_graphs() -> impl Strategy<Value = Vec<GraphSpan>> {
    prop::collection::vec(
        (
            1u64..20,
            prop::option::weighted(0.85, 1u64..24),
            0i64..1_000,
            -5i64..500,
        ),
        1..40,
    )
}

/// A parent chain `n` spans deep.
pub fn chain(n: u64) -> Vec<GraphSpan> {
    (1..=n)
        .map(|i| (i, (i > 1).then(|| i - 1), i as i64, 1_000_000 - i as i64))
        .collect()
}

/// The graph as an assembled trace, each span with an exception event and a log line.
pub fn graph_trace(graph: &[GraphSpan]) -> Trace {
    let time =
        |ms: i64| decode::time::format_rfc3339_ns(1_795_183_800_000_000_000 + ms * 1_000_000);
    let spans = graph
        .iter()
        .map(|&(id, parent, start_ms, dur_ms)| {
            serde_json::json!({
                "span_id": format!("{id:016x}"),
                "parent_span_id": parent.map(|p| format!("{p:016x}")),
                "service": format!("svc-{}", id % 3),
                "name": "op",
                "kind": "SERVER",
                "start": time(start_ms),
                "duration_ns": dur_ms * 1_000_000,
                "status": {"code": "UNSET"},
                "attributes": {"n": id},
                "events": [{"name": "exception", "time": "2026-11-20T14:10:00Z", "attributes": {}}],
            })
        })
        .collect();
    let logs = graph
        .iter()
        .map(|&(id, _, start_ms, _)| {
            serde_json::json!({"span_id": format!("{id:016x}"), "service": "svc", "level": "info",
                "body": "x", "time": time(start_ms)})
        })
        .collect();
    Trace::from_records(
        model::TraceId::from_u128(0xabc).expect("not zero"),
        spans,
        logs,
    )
}
