//! Trace assembly cannot be crashed by input: random parent graphs (cycles of every length,
//! self-parents, forests, duplicate ids, missing parents) and a chain 100,000 spans deep come
//! back as a forest in which every span shows exactly once, with an analysis.

use std::collections::HashSet;

use index::Trace;
use model::TraceId;
use proptest::prelude::*;
use serde_json::{Value, json};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn span_record(id: u64, parent: Option<u64>, start_ms: i64, duration_ms: i64) -> Value {
    json!({
        "trace_id": TRACE,
        "span_id": format!("{id:016x}"),
        "parent_span_id": parent.map(|p| format!("{p:016x}")),
        "service": format!("svc-{}", id % 3),
        "name": format!("op-{}", id % 5),
        "kind": if id.is_multiple_of(2) { "CLIENT" } else { "SERVER" },
        "start": decode::time::format_rfc3339_ns(1_795_183_800_000_000_000 + start_ms * 1_000_000),
        "duration_ns": duration_ms * 1_000_000,
        "status": {"code": if id.is_multiple_of(7) { "ERROR" } else { "UNSET" }, "message": ""},
        "attributes": {},
    })
}

fn log_record(span: u64, at_ms: i64) -> Value {
    json!({
        "trace_id": TRACE,
        "span_id": format!("{span:016x}"),
        "service": "svc-0",
        "level": "error",
        "body": "boom",
        "time": decode::time::format_rfc3339_ns(1_795_183_800_000_000_000 + at_ms * 1_000_000),
    })
}

/// The checks every assembled trace passes, whatever went in.
fn check_forest(trace: &Trace, n_spans: usize) {
    assert_eq!(trace.spans.len(), n_spans, "no span is lost or shown twice");
    for (i, span) in trace.spans.iter().enumerate() {
        if let Some(p) = span.parent {
            assert!(p < i, "a parent comes before its children (depth-first)");
            assert_eq!(span.depth, trace.spans[p].depth + 1);
            assert!(trace.spans[p].children.contains(&i));
        } else {
            assert_eq!(span.depth, 0);
        }
        for &c in &span.children {
            assert_eq!(trace.spans[c].parent, Some(i));
        }
    }
    let json = trace.to_json();
    assert_eq!(json["spans"].as_array().unwrap().len(), n_spans);
    assert!(json["analysis"].is_object());
}

fn parents() -> impl Strategy<Value = Vec<(u64, Option<u64>, i64, i64)>> {
    // Ids from a small range so duplicates happen; parents among those ids, a few missing ones,
    // or none; any parent graph, cycles included.
    prop::collection::vec(
        (
            1u64..24,
            prop::option::weighted(0.85, 1u64..28),
            0i64..1_000,
            0i64..500,
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_parent_graph_assembles_into_a_forest(graph in parents()) {
        let spans: Vec<Value> = graph
            .iter()
            .map(|&(id, parent, start, dur)| span_record(id, parent, start, dur))
            .collect();
        let logs: Vec<Value> = graph.iter().map(|&(id, _, start, _)| log_record(id, start)).collect();
        let n = spans.len();
        let trace = Trace::from_records(TraceId::from_hex(TRACE).unwrap(), spans, logs);
        // Identical records are one span (Jaeger's dedupe adjuster); everything else stays.
        let distinct: HashSet<String> = graph
            .iter()
            .map(|&(id, parent, start, dur)| span_record(id, parent, start, dur).to_string())
            .collect();
        prop_assert!(trace.spans.len() <= n);
        check_forest(&trace, distinct.len());
    }
}

#[test]
fn cycles_of_one_two_and_three_spans_are_shown_once_each() {
    let trace_id = TraceId::from_hex(TRACE).unwrap();
    let cases: Vec<Vec<Value>> = vec![
        vec![span_record(1, Some(1), 0, 10)],
        vec![
            span_record(1, Some(2), 0, 10),
            span_record(2, Some(1), 1, 5),
        ],
        vec![
            span_record(1, Some(3), 0, 10),
            span_record(2, Some(1), 1, 5),
            span_record(3, Some(2), 2, 2),
        ],
        // A cycle hanging under a true root, and a forest beside it.
        vec![
            span_record(9, None, 0, 100),
            span_record(1, Some(2), 10, 10),
            span_record(2, Some(1), 11, 5),
            span_record(4, Some(99), 20, 5),
        ],
    ];
    for spans in cases {
        let n = spans.len();
        let trace = Trace::from_records(trace_id, spans, Vec::new());
        check_forest(&trace, n);
    }
}

#[test]
fn a_chain_100_000_spans_deep_assembles_without_recursion() {
    const N: u64 = 100_000;
    let spans: Vec<Value> = (1..=N)
        .map(|i| span_record(i, (i > 1).then(|| i - 1), i as i64, 1_000_000 - i as i64))
        .collect();
    // Run on a small stack: anything that recursed per level would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let trace = Trace::from_records(TraceId::from_hex(TRACE).unwrap(), spans, Vec::new());
            check_forest(&trace, N as usize);
            trace.spans.last().unwrap().depth
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), N as usize - 1);
}
