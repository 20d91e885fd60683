//! Search: newest first with a stable tiebreak, cursor pages without duplicates or gaps, hit
//! shape; trace search: a trace matches only when one span meets every condition.

mod common;

use std::collections::HashSet;

use common::*;
use index::{Index, SearchRequest, TraceSearchRequest};
use model::{AttrValue, Level};
use tantivy::query::AllQuery;

const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B: &str = "5b8efff798038103d269b633813fc60c";

/// 90 logs over 30 distinct times (three per timestamp), written in three commits.
fn many_logs() -> Index {
    let index = Index::create_in_ram().unwrap();
    let batches = (0..3)
        .map(|batch| {
            (0..30)
                .map(|i| {
                    log(None, None, "api", &format!("line {batch}-{i}"))
                        .at(T0 + i as i64 * SEC)
                        .offset(batch * 1000 + i)
                        .build()
                })
                .collect()
        })
        .collect();
    index_batches(&index, batches);
    index
}

#[test]
fn pages_are_newest_first_without_duplicates_or_gaps() {
    let index = many_logs();
    let mut seen = HashSet::new();
    let mut times = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let request = SearchRequest {
            limit: 7,
            cursor: cursor.as_deref(),
            ..Default::default()
        };
        let page = index.search(&request).unwrap();
        assert_eq!(page.total, 90);
        for hit in &page.hits {
            assert_eq!(hit["kind"], "log");
            assert_eq!(hit["trace_id"], serde_json::Value::Null);
            assert!(
                seen.insert(hit["body"].as_str().unwrap().to_owned()),
                "duplicate {hit}"
            );
            times.push(hit["time"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 90, "no gaps");
    assert_eq!(pages, 13);
    // RFC 3339 with a fixed width sorts as text.
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(
        index
            .search(&SearchRequest {
                cursor: Some("nonsense"),
                ..Default::default()
            })
            .is_err()
    );
}

#[test]
fn time_range_is_from_inclusive_to_exclusive() {
    let index = many_logs();
    let request = SearchRequest {
        from_ns: Some(T0 + 10 * SEC),
        to_ns: Some(T0 + 20 * SEC),
        limit: 100,
        ..Default::default()
    };
    let page = index.search(&request).unwrap();
    assert_eq!(page.total, 30);
    assert_eq!(page.hits.len(), 30);
    assert_eq!(page.cursor, None);
    assert_eq!(page.hits[0]["time"], "2026-11-20T14:00:19.000000000Z");
    assert_eq!(page.hits[29]["time"], "2026-11-20T14:00:10.000000000Z");
}

#[test]
fn span_hits_carry_kind_trace_id_and_span_kind() {
    let a = trace_id(A);
    let index = index_of(vec![
        span(a, 1, None, "frontend", "GET /").at(T0, MS).build(),
        log(full(a), Some(1), "frontend", "hello")
            .at(T0 + 1)
            .level(Level::Warn)
            .build(),
    ]);
    let page = index
        .search(&SearchRequest {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.hits.len(), 2);
    let (log_hit, span_hit) = (&page.hits[0], &page.hits[1]);
    assert_eq!(span_hit["kind"], "span");
    assert_eq!(span_hit["span_kind"], "SERVER");
    assert_eq!(span_hit["trace_id"], A);
    assert_eq!(log_hit["kind"], "log");
    assert_eq!(log_hit["level"], "warn");
    assert_eq!(log_hit["trace_id"], A);
    // Through a hand-built query as well.
    let only_spans = text_term(&index, "kind", "span");
    let page = index
        .search_compiled(
            only_spans,
            &SearchRequest {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.total, 1);
    let all = index
        .search_compiled(
            Box::new(AllQuery),
            &SearchRequest {
                limit: 0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((all.total, all.hits.len()), (2, 0));
}

#[test]
fn a_trace_matches_only_when_one_span_meets_every_condition() {
    let (a, b) = (trace_id(A), trace_id(B));
    let index = index_of(vec![
        // A: one payment span with status code 500.
        span(a, 1, None, "frontend", "POST /checkout")
            .at(T0, 500 * MS)
            .build(),
        span(a, 2, Some(1), "payment", "charge")
            .at(T0 + MS, 100 * MS)
            .attr("http.status_code", AttrValue::Int(500))
            .error("boom")
            .build(),
        // B: a payment span and a 500, but on different spans.
        span(b, 1, None, "frontend", "POST /checkout")
            .at(T0 + SEC, 300 * MS)
            .attr("http.status_code", AttrValue::Int(500))
            .build(),
        span(b, 2, Some(1), "payment", "charge")
            .at(T0 + SEC + MS, 100 * MS)
            .build(),
        // A log in B meeting both conditions does not count: spans only.
        log(full(b), Some(2), "payment", "500 from stripe")
            .attr("http.status_code", AttrValue::Int(500))
            .build(),
    ]);
    let both = || {
        and(vec![
            text_term(&index, "service", "payment"),
            attr_i64(&index, "http.status_code", 500),
        ])
    };
    let request = TraceSearchRequest {
        limit: 10,
        ..Default::default()
    };
    let found = index.search_traces_compiled(both(), &request).unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.traces.len(), 1);
    let summary = &found.traces[0];
    assert_eq!(summary.trace_id, A);
    assert_eq!(summary.root_service, "frontend");
    assert_eq!(summary.root_name, "POST /checkout");
    assert_eq!(summary.start_ns, T0);
    assert_eq!(summary.duration_ns, 500 * MS);
    assert_eq!(summary.span_count, 2);
    assert_eq!(summary.error_count, 1);
    assert_eq!(summary.services.get("payment"), Some(&1));

    // Either condition alone finds both traces, newest first.
    let payment = index
        .search_traces_compiled(text_term(&index, "service", "payment"), &request)
        .unwrap();
    let ids: Vec<&str> = payment.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids, [B, A]);
    let limited = TraceSearchRequest {
        limit: 1,
        ..Default::default()
    };
    let newest = index.search_traces(&limited).unwrap();
    assert_eq!((newest.total, newest.traces.len()), (2, 1));
    assert_eq!(newest.traces[0].trace_id, B);
    assert_eq!(
        newest.to_json()["traces"][0]["start"],
        "2026-11-20T14:00:01.000000000Z"
    );
}

/// A log known only by the low 64 bits of its trace (a Datadog logger's decimal id) is shown
/// with the full id its trace's spans carry, so the hit leads to the trace; where two traces
/// share those bits, the padded id stays (no guess).
#[test]
fn hits_known_by_low_64_bits_show_the_full_trace_id() {
    let a = trace_id(A);
    // Same low 64 bits as `c` below, different high bits.
    let b = trace_id("1111111111111111d269b633813fc60c");
    let c = trace_id("2222222222222222d269b633813fc60c");
    let index = index_of(vec![
        span(a, 1, None, "payment", "charge").build(),
        log(low64(a), None, "payment", "datadog line").build(),
        span(b, 2, None, "orders", "create").build(),
        span(c, 3, None, "orders", "create").build(),
        log(low64(b), None, "orders", "ambiguous line").build(),
    ]);
    let trace_of = |body: &str| {
        let response = index
            .search(&SearchRequest {
                query: &format!("\"{body}\""),
                limit: 5,
                ..SearchRequest::default()
            })
            .unwrap();
        assert_eq!(response.hits.len(), 1, "{body}");
        response.hits[0]["trace_id"].as_str().unwrap().to_owned()
    };
    assert_eq!(trace_of("datadog line"), A);
    assert_eq!(
        trace_of("ambiguous line"),
        "0000000000000000d269b633813fc60c"
    );
}
