//! The analysis's cross-trace lookups through the real index: a call in flight when another
//! trace's root started is found as its caller however many finished calls came in between.

mod common;

use analysis::{FindingKind, Options};
use common::*;
use model::SpanKind;

const ORDER: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PAYMENT: &str = "5b8efff798038103d269b633813fc60c";

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

    let trace = index.trace(payment).unwrap().unwrap();
    let analysis = index.analyze(&trace, &Options::default());
    let detached: Vec<_> = analysis
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DetachedRoot)
        .collect();
    assert_eq!(detached.len(), 1, "{:#?}", analysis.findings);
    assert_eq!(detached[0].linked_trace_id, Some(order));
    assert_eq!(detached[0].evidence["caller_span_id"], "0000000000000002");

    // And the other way: the lost call links to the payment trace.
    let trace = index.trace(order).unwrap().unwrap();
    let analysis = index.analyze(&trace, &Options::default());
    let broken: Vec<_> = analysis
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::BrokenPropagation)
        .collect();
    assert_eq!(broken.len(), 1, "{:#?}", analysis.findings);
    assert_eq!(broken[0].linked_trace_id, Some(payment));
}
