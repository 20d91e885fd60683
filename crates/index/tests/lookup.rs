//! The analysis's cross-trace lookups through the real index: a call in flight when another
//! trace's root started is found as its caller however many finished calls came in between, and
//! a call's continuation is found however many unrelated roots started during the call.

mod common;

use analysis::{FindingKind, Options};
use common::*;
use model::{AttrValue, SpanKind, TraceId};

const ORDER: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PAYMENT: &str = "5b8efff798038103d269b633813fc60c";

/// The findings of `kind` in the analysis of `trace`.
fn findings_of(index: &index::Index, trace: TraceId, kind: FindingKind) -> Vec<analysis::Finding> {
    let trace = index.trace(trace).unwrap().unwrap();
    let analysis = index.analyze(&trace, &Options::default());
    analysis
        .findings
        .into_iter()
        .filter(|f| f.kind == kind)
        .collect()
}

#[test]
fn a_call_in_flight_is_found_behind_many_finished_calls() {
    let order = trace_id(ORDER);
    let payment = trace_id(PAYMENT);
    let root_at = T0 + 5 * SEC;
    let mut records = vec![
        span(order, 1, None, "order-service", "POST /orders")
            .at(root_at - 3 * SEC, 4 * SEC)
            .build(),
        // The call whose context was lost: started 2 s before the payment root, still running.
        span(order, 2, Some(1), "order-service", "POST /api/payments")
            .kind(SpanKind::Client)
            .attr("server.address", "payment-service")
            .at(root_at - 2 * SEC, 2500 * MS)
            .build(),
        span(payment, 10, None, "payment-service", "POST /api/payments")
            .at(root_at, 400 * MS)
            .build(),
    ];
    // 300 healthy calls of other traces to the same service, all over before the root started
    // and all later than the lost one: more than a lookup returns (200).
    for n in 0..300u64 {
        let other = trace_id(&format!("{:032x}", 0xa000 + n));
        records.push(
            span(other, 100, None, "checkout", "POST /checkout")
                .at(root_at - SEC, SEC)
                .build(),
        );
        records.push(
            span(other, 101, Some(100), "checkout", "POST /api/payments")
                .kind(SpanKind::Client)
                .attr("server.address", "payment-service")
                .at(root_at - SEC + n as i64 * MS, MS)
                .build(),
        );
        records.push(
            span(
                other,
                102,
                Some(101),
                "payment-service",
                "POST /api/payments",
            )
            .at(root_at - SEC + n as i64 * MS, MS / 2)
            .build(),
        );
    }
    let index = index_of(records);

    let detached = findings_of(&index, payment, FindingKind::DetachedRoot);
    assert_eq!(detached.len(), 1, "{detached:#?}");
    assert_eq!(detached[0].linked_trace_id, Some(order));
    assert_eq!(detached[0].evidence["caller_span_id"], "0000000000000002");

    // And the other way: the lost call links to the payment trace.
    let broken = findings_of(&index, order, FindingKind::BrokenPropagation);
    assert_eq!(broken.len(), 1, "{broken:#?}");
    assert_eq!(broken[0].linked_trace_id, Some(payment));
}

/// A lost call, the root of another trace that continues it (matched by `matched_by`), and 300
/// unrelated roots of other services that start later during the call: more than a lookup
/// returns (200), so only roots checked against the call before the limit are found.
fn continuation_behind_unrelated_roots(
    call_attr: (&str, AttrValue),
    callee_attr: Option<(&str, AttrValue)>,
    callee_service: &str,
    callee_name: &str,
    matched_by: &str,
) {
    let order = trace_id(ORDER);
    let payment = trace_id(PAYMENT);
    let call_at = T0 + 5 * SEC;
    let mut callee = span(payment, 10, None, callee_service, callee_name).at(call_at + 10 * MS, MS);
    if let Some((key, value)) = callee_attr {
        callee = callee.attr(key, value);
    }
    let mut records = vec![
        span(order, 1, None, "order-service", "POST /orders")
            .at(call_at - SEC, 4 * SEC)
            .build(),
        span(order, 2, Some(1), "order-service", "POST /api/payments")
            .kind(SpanKind::Client)
            .attr(call_attr.0, call_attr.1)
            .at(call_at, 2 * SEC)
            .build(),
        callee.build(),
    ];
    for n in 0..300u64 {
        let other = trace_id(&format!("{:032x}", 0xb000 + n));
        records.push(
            span(other, 100, None, "catalog-service", "GET /products")
                .at(call_at + 20 * MS + n as i64 * MS, MS)
                .build(),
        );
    }
    let index = index_of(records);

    let broken = findings_of(&index, order, FindingKind::BrokenPropagation);
    assert_eq!(broken.len(), 1, "{broken:#?}");
    assert_eq!(broken[0].linked_trace_id, Some(payment));
    assert_eq!(broken[0].evidence["matched_by"], matched_by);
    assert_eq!(broken[0].evidence["linked_span_id"], "000000000000000a");
    // The linked trace is not found in the other direction for an unrelated root.
    let unrelated: TraceId = trace_id(&format!("{:032x}", 0xb000));
    let trace = index.trace(unrelated).unwrap().unwrap();
    let analysis = index.analyze(&trace, &Options::default());
    assert!(
        analysis
            .findings
            .iter()
            .all(|f| f.linked_trace_id.is_none()),
        "{:#?}",
        analysis.findings
    );
}

#[test]
fn a_continuation_by_peer_is_found_behind_many_unrelated_roots() {
    continuation_behind_unrelated_roots(
        ("server.address", "Payment-Service.prod.svc:8443".into()),
        None,
        "payment-service",
        "charge",
        "peer",
    );
    // The service is compared lower-cased.
    continuation_behind_unrelated_roots(
        ("peer.service", "payment-service".into()),
        None,
        "Payment-Service",
        "charge",
        "peer",
    );
}

#[test]
fn a_continuation_by_name_is_found_behind_many_unrelated_roots() {
    continuation_behind_unrelated_roots(
        ("server.address", "10.0.0.7".into()),
        None,
        "payment-service",
        "POST /api/payments",
        "name",
    );
}

#[test]
fn a_continuation_by_message_id_is_found_behind_many_unrelated_roots() {
    continuation_behind_unrelated_roots(
        ("messaging.message.id", "msg-7".into()),
        Some(("messaging.message.id", "msg-7".into())),
        "ledger",
        "process",
        "messaging.message.id",
    );
    // A number is compared as its text, which the text column does not hold.
    continuation_behind_unrelated_roots(
        ("messaging.message.id", "42".into()),
        Some(("messaging.message.id", AttrValue::Int(42))),
        "ledger",
        "process",
        "messaging.message.id",
    );
}

#[test]
fn a_caller_in_flight_is_found_behind_many_unrelated_calls_in_flight() {
    let order = trace_id(ORDER);
    let payment = trace_id(PAYMENT);
    let root_at = T0 + 5 * SEC;
    let mut records = vec![
        span(order, 1, None, "order-service", "POST /orders")
            .at(root_at - 3 * SEC, 4 * SEC)
            .build(),
        span(order, 2, Some(1), "order-service", "POST /api/payments")
            .kind(SpanKind::Client)
            .attr(
                "url.full",
                "https://PAYMENT-SERVICE.internal:8443/api/payments",
            )
            .at(root_at - 2 * SEC, 2500 * MS)
            .build(),
        span(payment, 10, None, "payment-service", "charge")
            .at(root_at, 400 * MS)
            .build(),
    ];
    // 300 calls of other traces to another service, later than the lost one and still running
    // when the payment root started: more than a lookup returns (200).
    for n in 0..300u64 {
        let other = trace_id(&format!("{:032x}", 0xc000 + n));
        records.push(
            span(other, 100, None, "checkout", "POST /checkout")
                .at(root_at - SEC, 2 * SEC)
                .build(),
        );
        records.push(
            span(other, 101, Some(100), "checkout", "GET /api/products")
                .kind(SpanKind::Client)
                .attr("url.full", "http://catalog-service/api/products")
                .at(root_at - SEC + n as i64 * MS, 2 * SEC)
                .build(),
        );
    }
    let index = index_of(records);

    let detached = findings_of(&index, payment, FindingKind::DetachedRoot);
    assert_eq!(detached.len(), 1, "{detached:#?}");
    assert_eq!(detached[0].linked_trace_id, Some(order));
    assert_eq!(detached[0].evidence["matched_by"], "peer");
    assert_eq!(detached[0].evidence["caller_span_id"], "0000000000000002");
}
