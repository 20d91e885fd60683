//! Every finding kind and every malformed tree, on hand-built traces: none panics, none
//! recurses with depth, and the critical path tiles each root.

use std::cell::RefCell;

use analysis::{
    Analysis, Exception, FindingKind, ForeignSpan, Log, Lookup, NoIndex, Options, Span, SpanQuery,
    TraceData, analyze,
};
use model::{SpanId, SpanKind, TraceId};

const MS: i64 = 1_000_000;

fn sid(n: u64) -> Option<SpanId> {
    SpanId::from_u64(n)
}

fn span(
    id: u64,
    parent: Option<u64>,
    service: &str,
    name: &str,
    start_ms: i64,
    dur_ms: i64,
) -> Span {
    Span {
        span_id: sid(id),
        parent_span_id: parent.and_then(sid),
        service: service.into(),
        name: name.into(),
        kind: SpanKind::Internal,
        start_ns: start_ms * MS,
        duration_ns: dur_ms * MS,
        ..Span::default()
    }
}

fn kind(mut s: Span, kind: SpanKind) -> Span {
    s.kind = kind;
    s
}

fn trace(spans: Vec<Span>) -> TraceData {
    TraceData {
        trace_id: TraceId::from_u128(1),
        spans,
        ..TraceData::default()
    }
}

fn run(t: &TraceData) -> Analysis {
    analyze(t, &NoIndex, &Options::default())
}

fn kinds(a: &Analysis, k: FindingKind) -> Vec<Option<String>> {
    a.findings
        .iter()
        .filter(|f| f.kind == k)
        .map(|f| f.span_id.map(|s| s.to_string()))
        .collect()
}

fn hex(n: u64) -> Option<String> {
    Some(format!("{n:016x}"))
}

/// The segments of each root tile it: contiguous, no overlap, exactly its duration.
fn assert_tiles(t: &TraceData, a: &Analysis) {
    let total: i64 = a.critical_path.iter().map(|s| s.end_ns - s.start_ns).sum();
    let tree = analysis::Tree::build(&t.spans);
    let roots: i64 = tree.roots.iter().map(|&r| t.spans[r].duration()).sum();
    assert_eq!(total, roots);
    assert!(a.critical_path.iter().all(|s| s.start_ns < s.end_ns));
}

#[test]
fn critical_path_is_jaegers_worked_example() {
    // A[0,100]; B child [5,25]; C child [30,80]; D child of C [45,90] (clipped to 80).
    let t = trace(vec![
        span(1, None, "a", "A", 0, 100),
        span(2, Some(1), "b", "B", 5, 20),
        span(3, Some(1), "c", "C", 30, 50),
        span(4, Some(3), "d", "D", 45, 45),
    ]);
    let a = run(&t);
    let got: Vec<(u64, i64, i64)> = a
        .critical_path
        .iter()
        .map(|s| (s.span_id.unwrap().as_u64(), s.start_ns / MS, s.end_ns / MS))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 0, 5),
            (2, 5, 25),
            (1, 25, 30),
            (3, 30, 45),
            (4, 45, 80),
            (1, 80, 100)
        ]
    );
    assert_tiles(&t, &a);
    // D ends after C: flagged, not silently fixed.
    assert_eq!(kinds(&a, FindingKind::ClockSkew), vec![hex(4)]);
    assert_eq!(a.self_time_ns[&hex(1).unwrap()], 30 * MS);
    assert_eq!(a.self_time_by_service_ns["a"], 30 * MS);
}

#[test]
fn back_to_back_siblings_leave_the_gap_to_the_parent() {
    // B ends exactly when C starts: strictly-before, so B is not on the path (Jaeger).
    let t = trace(vec![
        span(1, None, "a", "A", 0, 100),
        span(2, Some(1), "b", "B", 10, 20),
        span(3, Some(1), "c", "C", 30, 60),
    ]);
    let a = run(&t);
    assert!(a.critical_path.iter().all(|s| s.span_id != sid(2)));
    assert_tiles(&t, &a);
}

#[test]
fn cycles_of_one_two_and_three_spans_are_cut_and_reported() {
    for n in 1..=3u64 {
        let spans: Vec<Span> = (1..=n)
            .map(|i| {
                span(
                    i,
                    Some(if i == 1 { n } else { i - 1 }),
                    "s",
                    "op",
                    i as i64,
                    10,
                )
            })
            .collect();
        let t = trace(spans);
        let a = run(&t);
        assert_eq!(
            kinds(&a, FindingKind::ParentCycle),
            vec![hex(1)],
            "cycle of {n}"
        );
        assert_tiles(&t, &a);
        assert_eq!(a.self_time_ns.len(), n as usize);
    }
}

#[test]
fn several_roots_orphans_and_duplicate_ids() {
    let mut t = trace(vec![
        span(1, None, "a", "A", 0, 100),
        span(2, None, "b", "B", 200, 50),
        span(3, Some(99), "c", "C", 10, 5),
        span(1, Some(2), "a", "A again", 210, 5),
    ]);
    t.duplicates_dropped = 2;
    let a = run(&t);
    assert_eq!(a.orphans, vec![hex(3).unwrap()]);
    assert_eq!(kinds(&a, FindingKind::Orphan), vec![hex(3)]);
    let dupes = kinds(&a, FindingKind::DuplicateSpanId);
    assert_eq!(
        dupes,
        vec![hex(1), None],
        "the second id-sharer, and the dropped copies"
    );
    assert_tiles(&t, &a);
}

#[test]
fn a_chain_100_000_deep_on_a_small_stack() {
    let spans: Vec<Span> = (1..=100_000u64)
        .map(|i| {
            span(
                i,
                (i > 1).then(|| i - 1),
                "s",
                "op",
                i as i64,
                1_000_000 - 2 * i as i64,
            )
        })
        .collect();
    let t = trace(spans);
    let a = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let a = run(&t);
            assert_tiles(&t, &a);
            a
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(a.critical_path.len() > 1000);
}

#[test]
fn clock_skew_is_flagged_and_adjusted_only_on_request() {
    let mut child = kind(span(2, Some(1), "b", "B", -20, 50), SpanKind::Server);
    child.host = Some("h2".into());
    let mut parent = kind(span(1, None, "a", "A", 0, 100), SpanKind::Client);
    parent.host = Some("h1".into());
    let t = trace(vec![parent, child]);
    let a = run(&t);
    assert_eq!(kinds(&a, FindingKind::ClockSkew), vec![hex(2)]);
    assert_eq!(
        a.findings[0].evidence["adjusted_by_ns"],
        serde_json::Value::Null
    );
    let opts = Options {
        adjust_clock_skew: true,
        ..Options::default()
    };
    let adjusted = analyze(&t, &NoIndex, &opts);
    // Centred: 0 + (100 - 50) / 2 - (-20) = 45 ms.
    assert_eq!(adjusted.findings[0].evidence["adjusted_by_ns"], 45 * MS);
    assert!(adjusted.findings[0].message.contains("shifted"));
    assert_tiles(&t, &adjusted);
}

#[test]
fn error_origin_is_the_deepest_error_with_its_chain_exception_and_logs() {
    let mut root = span(1, None, "gw", "POST /checkout", 0, 500);
    root.error = Some("HTTP 502".into());
    let mut pay = span(2, Some(1), "pay", "charge", 10, 450);
    pay.error = Some("Stripe API timeout".into());
    let mut stripe = kind(
        span(3, Some(2), "pay", "stripe_api_call", 20, 400),
        SpanKind::Client,
    );
    stripe.error = Some("timeout".into());
    stripe.exceptions.push(Exception {
        time_ns: 420 * MS,
        type_name: "SocketTimeoutException".into(),
        message: "Connection timeout after 5000ms".into(),
    });
    let ok = span(4, Some(1), "inv", "reserve", 5, 4);
    let mut t = trace(vec![root, pay, stripe, ok]);
    t.logs = vec![
        Log {
            time_ns: 421 * MS,
            span: Some(2),
            is_error: true,
            service: "pay".into(),
            body: "Stripe API timeout".into(),
        },
        Log {
            time_ns: 6 * MS,
            span: Some(3),
            is_error: false,
            service: "inv".into(),
            body: "fine".into(),
        },
    ];
    let a = run(&t);
    assert_eq!(kinds(&a, FindingKind::ErrorOrigin), vec![hex(3)]);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ErrorOrigin)
        .unwrap();
    assert_eq!(f.evidence["error_ancestors"].as_array().unwrap().len(), 2);
    assert_eq!(f.evidence["exception"]["type"], "SocketTimeoutException");
    // The error log is on the stripe span (index 2), under the origin.
    assert_eq!(f.evidence["error_logs"].as_array().unwrap().len(), 1);
    // A trace without errors has none.
    assert!(
        kinds(
            &run(&trace(vec![span(1, None, "a", "A", 0, 1)])),
            FindingKind::ErrorOrigin
        )
        .is_empty()
    );
}

#[test]
fn n_plus_one_needs_five_sequential_siblings_with_one_statement() {
    let mut spans = vec![span(1, None, "inv", "reserve", 0, 100)];
    for i in 0..6u64 {
        let mut q = kind(
            span(10 + i, Some(1), "inv", "select stock", 1 + 2 * i as i64, 1),
            SpanKind::Client,
        );
        q.db_statement = Some("SELECT * FROM stock WHERE sku = $1".into());
        q.db_system = Some("postgresql".into());
        spans.push(q);
    }
    let a = run(&trace(spans.clone()));
    assert_eq!(kinds(&a, FindingKind::NPlusOne), vec![hex(10)]);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::NPlusOne)
        .unwrap();
    assert_eq!(f.evidence["count"], 6);
    // Four are not a loop; six running side by side are not one after another.
    assert!(kinds(&run(&trace(spans[..5].to_vec())), FindingKind::NPlusOne).is_empty());
    for s in &mut spans[1..] {
        s.start_ns = MS;
    }
    assert!(kinds(&run(&trace(spans)), FindingKind::NPlusOne).is_empty());
}

#[test]
fn sequential_siblings_to_different_services() {
    let mut a1 = kind(
        span(2, Some(1), "order", "POST /reserve", 0, 400),
        SpanKind::Client,
    );
    a1.peer = vec!["inventory-service".into()];
    let mut b1 = kind(
        span(3, Some(1), "order", "POST /pay", 401, 300),
        SpanKind::Client,
    );
    b1.peer = vec!["payment-service:8080".into()];
    let t = trace(vec![
        span(1, None, "order", "process", 0, 710),
        a1.clone(),
        b1.clone(),
    ]);
    assert_eq!(
        kinds(&run(&t), FindingKind::SequentialSiblings),
        vec![hex(1)]
    );
    // The same service twice is not this finding.
    b1.peer = vec!["inventory-service".into()];
    let t = trace(vec![span(1, None, "order", "process", 0, 710), a1, b1]);
    assert!(kinds(&run(&t), FindingKind::SequentialSiblings).is_empty());
}

#[test]
fn slow_span_against_the_operations_p50_or_half_the_root_without_one() {
    let root = span(1, None, "inv", "reserve", 0, 500);
    let mut q = kind(
        span(2, Some(1), "inv", "select movements", 10, 430),
        SpanKind::Client,
    );
    q.db_statement = Some("SELECT sum(delta) FROM stock_movements".into());
    let pay = kind(span(3, Some(1), "inv", "stripe", 445, 50), SpanKind::Client);
    let t = trace(vec![root, q, pay]);
    assert_eq!(
        kinds(&run(&t), FindingKind::SlowSpan),
        vec![hex(2)],
        "86% of the root"
    );
    struct P50(i64);
    impl Lookup for P50 {
        fn operation_p50_ns(&self, _: &str, name: &str) -> Option<i64> {
            (name == "select movements").then_some(self.0)
        }
        fn spans(&self, _: &SpanQuery) -> Vec<ForeignSpan> {
            Vec::new()
        }
        fn has_children(&self, _: TraceId, _: SpanId) -> bool {
            false
        }
    }
    let a = analyze(&t, &P50(3 * MS), &Options::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::SlowSpan)
        .unwrap();
    assert_eq!(f.evidence["operation_p50_ns"], 3 * MS);
    // Its usual duration: not a finding.
    let a = analyze(&t, &P50(400 * MS), &Options::default());
    assert!(kinds(&a, FindingKind::SlowSpan).is_empty());
}

/// An index holding one other trace.
struct OtherTrace {
    trace_id: TraceId,
    spans: Vec<Span>,
    asked: RefCell<usize>,
}

impl Lookup for OtherTrace {
    fn operation_p50_ns(&self, _: &str, _: &str) -> Option<i64> {
        None
    }
    fn spans(&self, q: &SpanQuery) -> Vec<ForeignSpan> {
        *self.asked.borrow_mut() += 1;
        self.spans
            .iter()
            .filter(|_| q.exclude != Some(self.trace_id))
            .filter(|s| !q.roots_only || s.parent_span_id.is_none())
            .filter(|s| q.kinds.is_empty() || q.kinds.contains(&s.kind))
            .filter(|s| (q.start_from_ns..=q.start_to_ns).contains(&s.start_ns))
            .filter(|s| {
                s.kind == SpanKind::Producer || q.running_at_ns.is_none_or(|t| s.end_ns() >= t)
            })
            .filter(|s| {
                q.continues.as_ref().is_none_or(|c| {
                    c.services.contains(&s.service.to_ascii_lowercase())
                        || c.name.as_ref() == Some(&s.name)
                        || (c.message_id.is_some() && c.message_id == s.messaging_message_id)
                        || (c.destination.is_some() && c.destination == s.messaging_destination)
                        || c.peer_containing.as_ref().is_some_and(|service| {
                            s.peer
                                .iter()
                                .any(|p| p.to_ascii_lowercase().contains(service.as_str()))
                        })
                })
            })
            .map(|s| ForeignSpan {
                trace_id: Some(self.trace_id),
                span: s.clone(),
            })
            .collect()
    }
    fn has_children(&self, _: TraceId, span_id: SpanId) -> bool {
        self.spans.iter().any(|s| s.parent_span_id == Some(span_id))
    }
}

#[test]
fn broken_propagation_links_the_detached_trace_and_back() {
    let mut call = kind(
        span(2, Some(1), "order", "POST /api/payments", 10, 330),
        SpanKind::Client,
    );
    call.peer = vec!["http://payment-service:8080/api/payments".into()];
    let order = trace(vec![
        span(1, None, "order", "POST /orders", 0, 400),
        call.clone(),
    ]);
    let payment_spans = vec![
        kind(
            span(7, None, "payment-service", "POST /api/payments", 11, 320),
            SpanKind::Server,
        ),
        kind(
            span(8, Some(7), "payment-service", "stripe", 12, 300),
            SpanKind::Client,
        ),
    ];
    let payment_id = TraceId::from_u128(2).unwrap();
    let index = OtherTrace {
        trace_id: payment_id,
        spans: payment_spans.clone(),
        asked: RefCell::default(),
    };
    let a = analyze(&order, &index, &Options::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::BrokenPropagation)
        .unwrap();
    assert_eq!(f.span_id, sid(2));
    assert_eq!(f.linked_trace_id, Some(payment_id));
    assert_eq!(f.evidence["matched_by"], "peer");
    assert_eq!(f.evidence["linked_service"], "payment-service");

    // From the detached trace, back to its likely parent.
    let detached = TraceData {
        trace_id: Some(payment_id),
        spans: payment_spans,
        ..TraceData::default()
    };
    let order_index = OtherTrace {
        trace_id: TraceId::from_u128(1).unwrap(),
        spans: order.spans.clone(),
        asked: RefCell::default(),
    };
    let a = analyze(&detached, &order_index, &Options::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DetachedRoot)
        .unwrap();
    assert_eq!(f.span_id, sid(7));
    assert_eq!(f.linked_trace_id, TraceId::from_u128(1));
    assert_eq!(f.evidence["caller_span_id"], hex(2).unwrap());

    // Without an index nothing is claimed.
    assert!(kinds(&run(&order), FindingKind::BrokenPropagation).is_empty());
}

#[test]
fn n_plus_one_by_name_when_each_statement_carries_its_literal() {
    let mut spans = vec![span(1, None, "api", "GET /orders", 0, 100)];
    for i in 0..5u64 {
        let mut q = kind(
            span(10 + i, Some(1), "api", "SELECT orders", 1 + 2 * i as i64, 1),
            SpanKind::Client,
        );
        q.db_statement = Some(format!("SELECT * FROM orders WHERE id = {i}"));
        spans.push(q);
    }
    let a = run(&trace(spans));
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::NPlusOne)
        .unwrap();
    assert_eq!(
        (f.evidence["count"].as_u64(), f.evidence["same"].as_str()),
        (Some(5), Some("name"))
    );
    assert_eq!(kinds(&a, FindingKind::NPlusOne).len(), 1);
}

#[test]
fn a_cluster_dns_name_names_the_service() {
    let mut call = kind(
        span(2, Some(1), "order", "charge", 10, 330),
        SpanKind::Client,
    );
    call.peer = vec!["payment-service.prod.svc.cluster.local:8443".into()];
    let order = trace(vec![span(1, None, "order", "POST /orders", 0, 400), call]);
    let index = OtherTrace {
        trace_id: TraceId::from_u128(2).unwrap(),
        spans: vec![kind(
            span(7, None, "payment-service", "POST /pay", 11, 320),
            SpanKind::Server,
        )],
        asked: RefCell::default(),
    };
    let a = analyze(&order, &index, &Options::default());
    assert_eq!(kinds(&a, FindingKind::BrokenPropagation), vec![hex(2)]);
    assert_eq!(
        *index.asked.borrow(),
        1,
        "one lookup for the one childless call"
    );
}

proptest::proptest! {
    /// Any parent graph over a few ids (duplicates, self-parents, cycles of any length, missing
    /// parents, negative durations): the analysis finishes and its critical path tiles every
    /// root exactly, with or without the clock-skew adjustment.
    #[test]
    fn any_parent_graph_is_analysed_and_tiled(
        graph in proptest::collection::vec(
            (1u64..16, proptest::option::weighted(0.85, 1u64..20), 0i64..1_000, -10i64..400, 0u8..6),
            1..40,
        ),
        adjust in proptest::bool::ANY,
    ) {
        let kinds = [SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer, SpanKind::Internal, SpanKind::Unspecified];
        let spans: Vec<Span> = graph
            .iter()
            .map(|&(id, parent, start, dur, k)| {
                let mut s = kind(span(id, parent, "svc", "op", start, dur), kinds[k as usize]);
                s.host = (k % 2 == 0).then(|| format!("h{}", id % 3));
                s.error = (id % 5 == 0).then(String::new);
                s
            })
            .collect();
        let t = trace(spans);
        let opts = Options { adjust_clock_skew: adjust, ..Options::default() };
        let a = analyze(&t, &NoIndex, &opts);
        let tree = analysis::Tree::build(&t.spans);
        proptest::prop_assert_eq!(tree.order.len(), t.spans.len());
        // Tiling is over the (possibly adjusted) roots; roots are never shifted.
        let total: i64 = a.critical_path.iter().map(|s| s.end_ns - s.start_ns).sum();
        let roots: i64 = tree.roots.iter().map(|&r| t.spans[r].duration()).sum();
        proptest::prop_assert_eq!(total, roots);
        proptest::prop_assert!(serde_json::to_string(&a).is_ok());
    }
}
