//! Trace assembly: one query brings every span and log of a trace, as a tree, with logs under
//! the spans that wrote them, including logs that know only the low 64 bits of the trace id.

mod common;

use common::*;
use index::Index;
use model::{AttrValue, Level, SpanKind};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER: &str = "5b8efff798038103d269b633813fc60c";

fn checkout_trace() -> Vec<model::Record> {
    let t = trace_id(TRACE);
    let other = trace_id(OTHER);
    vec![
        // Given out of order on purpose.
        span(t, 3, Some(2), "payment", "stripe_api_call")
            .kind(SpanKind::Client)
            .at(T0 + 20 * MS, 400 * MS)
            .error("timeout")
            .event(
                "exception",
                T0 + 420 * MS,
                attrs(&[("exception.type", "TimeoutError".into())]),
            )
            .build(),
        span(t, 1, None, "frontend", "POST /checkout")
            .at(T0, 500 * MS)
            .build(),
        span(t, 2, Some(1), "payment", "charge")
            .kind(SpanKind::Server)
            .at(T0 + 10 * MS, 450 * MS)
            .build(),
        span(t, 4, Some(1), "inventory", "reserve")
            .at(T0 + 5 * MS, 4 * MS)
            .build(),
        // Its parent (99) never arrived.
        span(t, 5, Some(99), "email", "send_receipt")
            .at(T0 + 600 * MS, 10 * MS)
            .build(),
        log(full(t), Some(3), "payment", "calling stripe")
            .at(T0 + 21 * MS)
            .build(),
        log(full(t), Some(3), "payment", "stripe timed out")
            .level(Level::Error)
            .at(T0 + 421 * MS)
            .attr("decline_code", "do_not_honor")
            .build(),
        // Datadog-style: only the low 64 bits, span id of the inventory span.
        log(low64(t), Some(4), "inventory", "reserved 2 items")
            .at(T0 + 6 * MS)
            .build(),
        // A log that recorded the incoming traceparent carries the caller's span id (77, not
        // in the trace): it belongs to the server span whose parent is 77.
        span(t, 6, Some(77), "ledger", "POST /ledger")
            .kind(SpanKind::Server)
            .at(T0 + 30 * MS, 5 * MS)
            .build(),
        log(full(t), Some(77), "ledger", "request received")
            .at(T0 + 31 * MS)
            .build(),
        // No span: a trace-level log.
        log(full(t), None, "frontend", "checkout started")
            .at(T0 + 1)
            .build(),
        // Another trace sharing nothing.
        span(other, 1, None, "frontend", "GET /").at(T0, MS).build(),
        log(full(other), Some(1), "frontend", "other trace").build(),
    ]
}

#[test]
fn trace_comes_back_as_a_tree_with_logs_under_their_spans() {
    let index = index_of(checkout_trace());
    let trace = index
        .trace(trace_id(TRACE))
        .unwrap()
        .expect("trace is indexed");

    let ids: Vec<String> = trace
        .spans
        .iter()
        .map(|s| s.span_id.unwrap().to_string())
        .collect();
    let names: Vec<(&str, usize)> = trace
        .spans
        .iter()
        .map(|s| (s.name.as_str(), s.depth))
        .collect();
    // Depth first, siblings by start, the true root first, then orphans by time.
    assert_eq!(
        names,
        [
            ("POST /checkout", 0),
            ("reserve", 1),
            ("charge", 1),
            ("stripe_api_call", 2),
            ("POST /ledger", 0),
            ("send_receipt", 0),
        ],
        "{ids:?}"
    );
    assert_eq!(trace.logs.len(), 5);
    let under = |name: &str| -> Vec<String> {
        let span = trace.spans.iter().find(|s| s.name == name).unwrap();
        span.logs
            .iter()
            .map(|&l| trace.logs[l].record["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        under("stripe_api_call"),
        ["calling stripe", "stripe timed out"]
    );
    assert_eq!(
        under("reserve"),
        ["reserved 2 items"],
        "low-64 log joins its span"
    );
    assert_eq!(
        under("POST /ledger"),
        ["request received"],
        "logged traceparent joins the server span"
    );
    let trace_level: Vec<_> = trace.logs.iter().filter(|l| l.span.is_none()).collect();
    assert_eq!(trace_level.len(), 1);
    assert_eq!(trace_level[0].record["body"], "checkout started");
    // Logs in time order.
    assert!(trace.logs.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));

    let json = trace.to_json();
    assert_eq!(json["trace_id"], TRACE);
    let summary = &json["summary"];
    assert_eq!(summary["span_count"], 6);
    assert_eq!(summary["log_count"], 5);
    assert_eq!(summary["error_count"], 2, "one error span, one error log");
    assert_eq!(
        summary["services"],
        serde_json::json!(["email", "frontend", "inventory", "ledger", "payment"])
    );
    assert_eq!(summary["root_span_id"], span_id(1).to_string());
    assert_eq!(summary["start"], "2026-11-20T14:00:00.000000000Z");
    assert_eq!(summary["duration_ns"], 610 * MS);

    let stripe = &json["spans"][3];
    assert_eq!(stripe["name"], "stripe_api_call");
    assert_eq!(stripe["kind"], "CLIENT");
    assert_eq!(stripe["parent_span_id"], span_id(2).to_string());
    assert_eq!(stripe["start"], "2026-11-20T14:00:00.020000000Z");
    assert_eq!(stripe["duration_ns"], 400 * MS);
    assert_eq!(
        stripe["status"],
        serde_json::json!({"code": "ERROR", "message": "timeout"})
    );
    assert_eq!(stripe["events"][0]["name"], "exception");
    assert_eq!(
        stripe["events"][0]["attributes"]["exception.type"],
        "TimeoutError"
    );
    assert_eq!(json["spans"][0]["parent_span_id"], serde_json::Value::Null);

    let error_log = &json["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["level"] == "error")
        .unwrap();
    assert_eq!(error_log["attributes"]["decline_code"], "do_not_honor");
    assert_eq!(error_log["origin"]["source"], "/var/log/payment.log");
    let ledger_log = json["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["body"] == "request received")
        .unwrap();
    assert_eq!(ledger_log["span_id"], span_id(77).to_string());
    assert_eq!(ledger_log["attached_span_id"], span_id(6).to_string());

    let analysis = &json["analysis"];
    let orphans: Vec<String> = serde_json::from_value(analysis["orphans"].clone()).unwrap();
    assert_eq!(orphans, [span_id(6).to_string(), span_id(5).to_string()]);
    // charge (450ms) minus stripe (400ms) → 50ms of its own.
    assert_eq!(analysis["self_time_ns"][span_id(2).to_string()], 50 * MS);
    // The root: 500ms minus the union of reserve [5,9) and charge [10,460).
    assert_eq!(
        analysis["self_time_ns"][span_id(1).to_string()],
        (500 - 4 - 450) * MS
    );
    // Segments as Jaeger UI cuts them; the root's tile its 500 ms, each orphan tree its own.
    let critical: Vec<(String, i64, i64)> = analysis["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ms = |k: &str| (s[k].as_i64().unwrap() - T0) / MS;
            (
                s["span_id"].as_str().unwrap().to_owned(),
                ms("start_ns"),
                ms("end_ns"),
            )
        })
        .collect();
    let seg = |i: u64, a: i64, b: i64| (span_id(i).to_string(), a, b);
    assert_eq!(
        critical,
        [
            seg(1, 0, 5),
            seg(4, 5, 9),
            seg(1, 9, 10),
            seg(2, 10, 20),
            seg(3, 20, 420),
            seg(6, 30, 35),
            seg(2, 420, 460),
            seg(1, 460, 500),
            seg(5, 600, 610),
        ]
    );
    let mut kinds: Vec<(&str, &str)> = analysis["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["span_id"].as_str().unwrap()))
        .collect();
    kinds.sort();
    let stripe = span_id(3).to_string();
    assert_eq!(
        kinds,
        [
            ("error_origin", stripe.as_str()),
            ("orphan", span_id(5).to_string().as_str()),
            ("orphan", span_id(6).to_string().as_str()),
            // Without the index: 400 of the root's 500 ms in itself.
            ("slow_span", stripe.as_str()),
        ]
    );
}

#[test]
fn unknown_trace_is_none_and_other_traces_stay_apart() {
    let index = index_of(checkout_trace());
    assert!(
        index
            .trace(trace_id("0123456789abcdef0123456789abcdef"))
            .unwrap()
            .is_none()
    );
    let other = index.trace(trace_id(OTHER)).unwrap().unwrap();
    assert_eq!(other.spans.len(), 1);
    assert_eq!(other.logs.len(), 1);
    assert_eq!(other.logs[0].span, Some(0));
}

#[test]
fn sixty_four_bit_ids_join_full_ids_by_their_low_half() {
    let t = trace_id(TRACE);
    let short = trace_id(&TRACE[16..]); // a 64-bit Zipkin id: high half zero
    let index = index_of(vec![
        span(t, 1, None, "frontend", "GET /").build(),
        span(short, 2, Some(1), "legacy", "zipkin span")
            .at(T0 + MS, MS)
            .build(),
        log(low64(t), Some(2), "legacy", "dd log")
            .at(T0 + MS)
            .build(),
    ]);
    // The full id finds the partial records.
    let trace = index.trace(t).unwrap().unwrap();
    assert_eq!(trace.spans.len(), 2);
    assert_eq!(trace.spans[1].depth, 1);
    assert_eq!(trace.logs[0].span, Some(1));
    // The 64-bit id finds everything with that low half, the full-id span included.
    let by_short = index.trace(short).unwrap().unwrap();
    assert_eq!(by_short.spans.len(), 2);
    assert_eq!(by_short.logs.len(), 1);
    // ... and names the trace by the full id its spans carry.
    assert_eq!(by_short.trace_id, t);
}

#[test]
fn a_ten_thousand_span_trace_comes_back_whole() {
    const N: u64 = 10_008;
    let t = trace_id(TRACE);
    let mut records = vec![
        span(t, 1, None, "frontend", "batch job")
            .at(T0, 100 * SEC)
            .build(),
    ];
    for i in 2..=N {
        // Reverse time order, so nothing is sorted by accident.
        let start = T0 + (N - i) as i64 * MS;
        records.push(
            span(t, i, Some(1), "worker", "process item")
                .at(start, MS / 2)
                .attr("item", AttrValue::Int(i as i64))
                .build(),
        );
    }
    records.push(
        log(full(t), Some(N), "worker", "last item")
            .at(T0 + 1)
            .build(),
    );
    // Three commits: the trace spans several segments.
    let third = records.len() / 3;
    let rest = records.split_off(third);
    let (middle, last) = rest.split_at(third);
    let index = Index::create_in_ram().unwrap();
    index_batches(&index, vec![records, middle.to_vec(), last.to_vec()]);
    assert!(index.tantivy().searchable_segment_ids().unwrap().len() >= 2);

    let trace = index.trace(t).unwrap().unwrap();
    assert_eq!(trace.spans.len() as u64, N);
    assert_eq!(trace.logs.len(), 1);
    assert_eq!(trace.spans[0].children.len() as u64, N - 1);
    let children_starts: Vec<i64> = trace.spans[1..].iter().map(|s| s.start_ns).collect();
    assert!(
        children_starts.windows(2).all(|w| w[0] <= w[1]),
        "siblings by start time"
    );
    assert_eq!(
        trace.logs[0].span.map(|i| trace.spans[i].span_id.unwrap()),
        Some(span_id(N))
    );
    assert_eq!(trace.to_json()["summary"]["span_count"], N);
}
