//! Trace lists: one row per trace with a matching span or log, counted over all of the trace's
//! records (logs known only by the low 64 bits of their trace included), in every sort order.

mod common;

use common::*;
use index::{Index, TraceListRequest, TraceSort};
use model::{AttrValue, Level};

const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B: &str = "5b8efff798038103d269b633813fc60c";
const C: &str = "00000000000000000000000000000c0c";

/// A: a 300 ms checkout with a payment error and a Datadog-style log (low 64 bits only);
/// B: a 100 ms checkout, later, healthy; C: logs only. Two commits, so two segments.
fn traces() -> Index {
    let (a, b, c) = (trace_id(A), trace_id(B), trace_id(C));
    let index = Index::create_in_ram().unwrap();
    index_batches(
        &index,
        vec![
            vec![
                span(a, 1, None, "gateway", "POST /checkout")
                    .at(T0, 300 * MS)
                    .build(),
                span(a, 2, Some(1), "payment", "charge")
                    .at(T0 + 10 * MS, 50 * MS)
                    .error("card declined")
                    .attr("decline_code", "do_not_honor")
                    .build(),
                log(low64(a), Some(2), "payment", "payment declined")
                    .at(T0 + 20 * MS)
                    .level(Level::Warn)
                    .attr("decline_code", "do_not_honor")
                    .build(),
            ],
            vec![
                span(b, 1, None, "gateway", "POST /checkout")
                    .at(T0 + SEC, 100 * MS)
                    .build(),
                log(full(b), Some(1), "gateway", "checkout ok")
                    .at(T0 + SEC + MS)
                    .build(),
                log(full(c), None, "cron", "nightly job failed")
                    .at(T0 + 2 * SEC)
                    .level(Level::Error)
                    .build(),
                log(full(a), Some(1), "gateway", "checkout failed")
                    .at(T0 + 300 * MS)
                    .level(Level::Error)
                    .attr("http.status", AttrValue::Int(402))
                    .build(),
            ],
        ],
    );
    index
}

fn list(index: &Index, query: &str, sort: TraceSort) -> Vec<String> {
    let response = index
        .list_traces(&TraceListRequest {
            query,
            limit: 10,
            sort,
            ..Default::default()
        })
        .unwrap();
    assert!(!response.truncated);
    response.traces.into_iter().map(|t| t.trace_id).collect()
}

#[test]
fn one_row_per_trace_counting_all_its_records() {
    let index = traces();
    // Both records of A that carry the code (the span and its low-64 log) give one row.
    let response = index
        .list_traces(&TraceListRequest {
            query: "decline_code = do_not_honor",
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(response.total, 1);
    let row = &response.traces[0];
    assert_eq!(row.trace_id, A);
    assert_eq!(row.root_name, "POST /checkout");
    assert_eq!(row.root_service, "gateway");
    assert_eq!(row.start_ns, T0);
    assert_eq!(row.duration_ns, 300 * MS);
    assert_eq!((row.span_count, row.log_count), (2, 2));
    // The error span and the error log.
    assert_eq!(row.error_count, 2);
    assert_eq!(row.services, ["gateway", "payment"]);
    let json = row.to_json();
    for key in [
        "trace_id",
        "root_name",
        "root_service",
        "start",
        "duration_ns",
        "span_count",
        "log_count",
        "error_count",
        "services",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["start"], "2026-11-20T14:00:00.000000000Z");

    // A log-only trace still gets a row, timed by its log.
    let response = index
        .list_traces(&TraceListRequest {
            query: "level = error AND service = cron",
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let row = &response.traces[0];
    assert_eq!(
        (row.trace_id.as_str(), row.span_count, row.log_count),
        (C, 0, 1)
    );
    assert_eq!((row.start_ns, row.duration_ns), (T0 + 2 * SEC, 0));
    assert_eq!(row.root_name, "");
}

#[test]
fn sort_orders_and_limit() {
    let index = traces();
    assert_eq!(list(&index, "", TraceSort::TimeDesc), [C, B, A]);
    assert_eq!(list(&index, "", TraceSort::Time), [A, B, C]);
    assert_eq!(list(&index, "", TraceSort::DurationDesc), [A, B, C]);
    assert_eq!(list(&index, "", TraceSort::Duration), [C, B, A]);
    assert_eq!(list(&index, "service = gateway", TraceSort::Time), [A, B]);
    let page = index
        .list_traces(&TraceListRequest {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.traces.len(), page.total), (1, 3));
    assert!(
        "sideways"
            .parse::<TraceSort>()
            .unwrap_err()
            .to_string()
            .contains("-duration")
    );
    assert_eq!("-time".parse::<TraceSort>().unwrap(), TraceSort::TimeDesc);
}

#[test]
fn time_range_selects_matching_records_but_rows_count_the_whole_trace() {
    let index = traces();
    let response = index
        .list_traces(&TraceListRequest {
            from_ns: Some(T0 + 200 * MS),
            to_ns: Some(T0 + SEC),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    // Only A's "checkout failed" log is in the range; the row counts all of A.
    assert_eq!(response.total, 1);
    assert_eq!(response.traces[0].trace_id, A);
    assert_eq!(response.traces[0].span_count, 2);
    assert!(
        index
            .list_traces(&TraceListRequest {
                query: "status =",
                limit: 1,
                ..Default::default()
            })
            .is_err()
    );
}
