//! Search, trace search and aggregations through the query language.

mod common;

use common::*;
use index::{AggRequest, Error, SearchRequest, TraceSearchRequest};
use model::{AttrValue, Level};

const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B: &str = "5b8efff798038103d269b633813fc60c";

fn records() -> Vec<model::Record> {
    let (a, b) = (trace_id(A), trace_id(B));
    vec![
        span(a, 1, None, "frontend", "POST /checkout")
            .at(T0, 500 * MS)
            .build(),
        span(a, 2, Some(1), "payment", "charge")
            .at(T0 + MS, 100 * MS)
            .attr("http.status_code", AttrValue::Int(500))
            .error("boom")
            .event(
                "exception",
                T0 + 2 * MS,
                attrs(&[("exception.type", "CardError".into())]),
            )
            .build(),
        span(b, 1, None, "frontend", "POST /checkout")
            .at(T0 + SEC, 300 * MS)
            .attr("http.status_code", AttrValue::Int(500))
            .build(),
        span(b, 2, Some(1), "payment", "charge")
            .at(T0 + SEC + MS, 100 * MS)
            .build(),
        log(full(a), Some(2), "payment", "card declined: do not honor")
            .at(T0 + 2 * MS)
            .level(Level::Error)
            .attr("card.bin", AttrValue::Int(411111))
            .build(),
        log(low64(b), Some(2), "payment", "card declined again")
            .at(T0 + SEC + 2 * MS)
            .level(Level::Warn)
            .offset(1)
            .attr("card.bin", "411111")
            .build(),
    ]
}

/// Records (or traces) per value of `by` among those `query` matches, sorted by value.
fn group_counts(
    index: &index::Index,
    query: &str,
    by: &str,
    count: index::CountMode,
) -> Vec<(String, u64)> {
    let request = AggRequest {
        query,
        by: vec![by.into()],
        count,
        ..Default::default()
    };
    let mut rows: Vec<(String, u64)> = index
        .aggregate(&request)
        .unwrap()
        .buckets
        .iter()
        .map(|b| (b.key[0].1.clone(), b.count))
        .collect();
    rows.sort();
    rows
}

/// How many records `q` matches, a minute after `T0`.
fn total(index: &index::Index, q: &str) -> u64 {
    let request = SearchRequest {
        query: q,
        limit: 100,
        now_ns: Some(T0 + 60 * SEC),
        ..Default::default()
    };
    index.search(&request).unwrap().total
}

#[test]
fn search_through_the_language() {
    let index = index_of(records());
    let search = |q: &str| {
        let request = SearchRequest {
            query: q,
            limit: 100,
            now_ns: Some(T0 + 60 * SEC),
            ..Default::default()
        };
        index.search(&request).unwrap()
    };
    assert_eq!(
        search("card.bin = 411111").total,
        2,
        "number and string values"
    );
    assert_eq!(search("kind = span AND duration > 200ms").total, 2);
    assert_eq!(search("level >= warn").total, 2);
    assert_eq!(
        search("timestamp > now() - 59500ms").total,
        3,
        "trace B's records"
    );
    assert_eq!(search("exists(exception.type)").total, 1);
    let declined = search("\"declined\"");
    assert_eq!(declined.total, 2);
    assert_eq!(declined.hits[0]["body"], "card declined again");
    // Known only by its low 64 bits, the hit carries the full id its trace's spans carry.
    assert_eq!(declined.hits[0]["trace_id"], B);

    let err = index
        .search(&SearchRequest {
            query: "service =",
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::Query(_)), "{err}");
    assert!(err.is_bad_request());
}

#[test]
fn trace_search_needs_one_span_to_match_everything() {
    let index = index_of(records());
    let find = |q: &str| {
        let request = TraceSearchRequest {
            query: q,
            limit: 10,
            ..Default::default()
        };
        let found = index.search_traces(&request).unwrap();
        found
            .traces
            .into_iter()
            .map(|t| t.trace_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(find("service = payment AND http.status_code = 500"), [A]);
    assert_eq!(find("service = payment"), [B, A]);
    assert_eq!(find("http.status_code = 500"), [B, A]);
    // Logs never make a trace match.
    assert_eq!(find("card.bin = 411111"), Vec::<String>::new());
}

#[test]
fn aggregate_through_the_language() {
    let index = index_of(records());
    let request = AggRequest {
        query: "kind = log",
        by: vec!["card.bin".into(), "level".into()],
        ..Default::default()
    };
    let response = index.aggregate(&request).unwrap();
    assert_eq!(response.total, 2);
    let keys: Vec<_> = response
        .buckets
        .iter()
        .map(|b| (b.key[0].1.as_str(), b.key[1].1.as_str(), b.count))
        .collect();
    assert_eq!(keys, [("411111", "error", 1), ("411111", "warn", 1)]);
}

/// Two traces whose ids share their low 64 bits are found through those bits (`trace_id` has
/// no inverted index) and then told apart by their full ids: a lookup, `trace_id = X`,
/// `trace(...)` and a trace search each keep to their own trace, while a log known only by
/// those bits belongs to both, as before (and, being ambiguous, shows its padded id).
#[test]
fn traces_sharing_their_low_64_bits_stay_apart() {
    const B1: &str = "1111111111111111d269b633813fc60c";
    const B2: &str = "2222222222222222d269b633813fc60c";
    let (b1, b2) = (trace_id(B1), trace_id(B2));
    let index = index_of(vec![
        span(b1, 1, None, "orders", "create").at(T0, MS).build(),
        span(b1, 2, Some(1), "orders", "only-b1").at(T0, MS).build(),
        span(b2, 3, None, "orders", "create")
            .at(T0 + SEC, MS)
            .build(),
        log(low64(b1), None, "orders", "shared line").at(T0).build(),
    ]);

    let trace = index.trace(b1).unwrap().unwrap();
    let names: Vec<&str> = trace.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["create", "only-b1"]);
    assert_eq!(trace.logs.len(), 1);
    let trace = index.trace(b2).unwrap().unwrap();
    assert_eq!(trace.spans.len(), 1);
    assert_eq!(trace.logs.len(), 1);

    let hits = |q: &str| {
        let request = SearchRequest {
            query: q,
            limit: 100,
            now_ns: Some(T0 + 60 * SEC),
            ..Default::default()
        };
        let mut found: Vec<String> = index
            .search(&request)
            .unwrap()
            .hits
            .iter()
            .map(|h| {
                let name = h["name"].as_str().or(h["body"].as_str()).unwrap();
                format!("{} {name}", &h["trace_id"].as_str().unwrap()[..4])
            })
            .collect();
        found.sort();
        found
    };
    assert_eq!(
        hits(&format!("trace_id = {B1}")),
        ["0000 shared line", "1111 create", "1111 only-b1"]
    );
    assert_eq!(
        hits(&format!("trace_id = {B2}")),
        ["0000 shared line", "2222 create"]
    );
    assert_eq!(
        hits("trace(name = only-b1)"),
        ["0000 shared line", "1111 create", "1111 only-b1"]
    );
    assert_eq!(
        hits(&format!("trace_id != {B1} AND kind = span")),
        ["2222 create"]
    );

    let found = index
        .search_traces(&TraceSearchRequest {
            query: "name = create",
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let summaries: Vec<(&str, u64)> = found
        .traces
        .iter()
        .map(|t| (t.trace_id.as_str(), t.span_count))
        .collect();
    assert_eq!(summaries, [(B2, 1), (B1, 2)]);
}

/// Attributes have no fast columns: a range on one is a term range per type the index keeps
/// its numbers as (whole numbers as i64, others as f64), text values never match a range, and
/// `exists()` and group-bys read the terms.
#[test]
fn attribute_ranges_exists_and_groups_read_terms() {
    let a = trace_id(A);
    let values = [
        AttrValue::Int(3),
        AttrValue::Float(5.5),
        AttrValue::Float(7.0),
        AttrValue::Int(-2),
        AttrValue::Str("9".into()),
    ];
    let records: Vec<model::Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let i = i as u64;
            let mut s = span(a, i + 1, None, "svc", "op")
                .at(T0 + i as i64 * SEC, (i as i64 + 1) * MS)
                .attr("retry.count", v.clone());
            if i.is_multiple_of(2) {
                s = s
                    .attr("net.peer.port", AttrValue::Int(443))
                    .attr("peer.service", "card-api");
            }
            s.build()
        })
        .collect();
    let index = index_of(records);
    let search = |q: &str| total(&index, q);
    assert_eq!(search("retry.count > 5"), 2, "5.5 and 7");
    assert_eq!(search("retry.count >= 5.5"), 2, "5.5 and 7");
    assert_eq!(
        search("retry.count > 5.5"),
        1,
        "7 (indexed as the whole number 7)"
    );
    assert_eq!(search("retry.count < 5.5"), 2, "3 and -2");
    assert_eq!(search("retry.count <= -2"), 1);
    assert_eq!(search("retry.count < -2.5"), 0);
    assert_eq!(
        search("retry.count > 100"),
        0,
        "the text \"9\" is not a number"
    );
    assert_eq!(search("retry.count = 7"), 1);
    assert_eq!(search("retry.count != 7"), 4);
    assert_eq!(search("exists(retry.count)"), 5);
    assert_eq!(search("exists(net)"), 3, "a parent path finds its children");
    assert_eq!(search("exists(net.peer.port)"), 3);
    assert_eq!(search("exists(net.peer.port.x)"), 0);
    assert_eq!(search("NOT exists(net.peer)"), 2);

    // A number, and a text (read in blocks of ordinals).
    for (by, value) in [("net.peer.port", "443"), ("peer.service", "card-api")] {
        let request = AggRequest {
            query: "kind = span",
            by: vec![by.into()],
            interval: Some(std::time::Duration::from_secs(2)),
            duration_stats: true,
            duration_percentiles: vec![50.0, 100.0],
            ..Default::default()
        };
        let response = index.aggregate(&request).unwrap();
        assert_eq!(response.total, 5);
        let rows: Vec<_> = response
            .buckets
            .iter()
            .map(|b| {
                let d = b.duration.as_ref().unwrap();
                (
                    b.key[0].1.clone(),
                    b.key[1].1.clone(),
                    b.count,
                    d.count,
                    d.min,
                    d.max,
                )
            })
            .collect();
        // Spans 1, 3 and 5 (at 0 s, 2 s and 4 s, lasting 1, 3 and 5 ms) have the port.
        let ms = |n: f64| Some(n * MS as f64);
        assert_eq!(
            rows,
            [
                (value.into(), time(T0), 1, 1, ms(1.0), ms(1.0)),
                (value.into(), time(T0 + 2 * SEC), 1, 1, ms(3.0), ms(3.0)),
                (value.into(), time(T0 + 4 * SEC), 1, 1, ms(5.0), ms(5.0)),
            ],
            "{by}"
        );
        let p100 = response.buckets[2].duration.as_ref().unwrap().percentiles[1];
        let p100 = p100.1.unwrap();
        assert!((p100 / (5.0 * MS as f64) - 1.0).abs() < 0.02, "{p100}");
    }

    let by_retry = AggRequest {
        query: "kind = span",
        by: vec!["retry.count".into(), "service".into()],
        ..Default::default()
    };
    let response = index.aggregate(&by_retry).unwrap();
    let mut keys: Vec<_> = response
        .buckets
        .iter()
        .map(|b| (b.key[0].1.clone(), b.key[1].1.clone(), b.count))
        .collect();
    keys.sort();
    let expected: Vec<(String, String, u64)> = ["-2", "3", "5.5", "7", "9"]
        .iter()
        .map(|v| (v.to_string(), "svc".to_string(), 1))
        .collect();
    assert_eq!(keys, expected);
}

fn time(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128)
        .unwrap()
        .to_string()
}

/// `kind`, `status` and `source` have no fast columns: group-bys (records and traces) read
/// columns built from their terms, and `exists()` and `!=` read the terms.
#[test]
fn keywords_without_columns_group_and_filter_by_their_terms() {
    let index = index_of(records());
    let search = |q: &str| total(&index, q);
    assert_eq!(search("exists(status)"), 4, "every span");
    assert_eq!(search("status != ERROR"), 3);
    assert_eq!(search("kind != span"), 2);
    assert_eq!(search("exists(source)"), 2, "the logs came from a file");
    assert_eq!(search("NOT exists(source)"), 4);
    assert_eq!(search("source != /var/log/payment.log"), 0);

    let group =
        |query: &str, by: &str, count: index::CountMode| group_counts(&index, query, by, count);
    let rows = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    let records = index::CountMode::Records;
    assert_eq!(
        group("kind = span", "status", records),
        rows(&[("ERROR", 1), ("UNSET", 3)])
    );
    assert_eq!(
        group("kind = span", "status", index::CountMode::Traces),
        rows(&[("ERROR", 1), ("UNSET", 2)]),
        "trace A has the error; both have unset spans"
    );
    assert_eq!(
        group("service = payment OR service = frontend", "kind", records),
        rows(&[("log", 2), ("span", 4)])
    );
    assert_eq!(
        group("kind = log", "source", records),
        rows(&[("/var/log/payment.log", 2)])
    );
    // Counts alone walk the keyword's postings; with duration stats the column is built: the
    // two agree.
    let with_stats = AggRequest {
        query: "kind = span",
        by: vec!["status".into()],
        duration_stats: true,
        ..Default::default()
    };
    let mut counted: Vec<(String, u64, u64)> = index
        .aggregate(&with_stats)
        .unwrap()
        .buckets
        .iter()
        .map(|b| {
            let timed = b.duration.as_ref().map_or(0, |d| d.count);
            (b.key[0].1.clone(), b.count, timed)
        })
        .collect();
    counted.sort();
    assert_eq!(
        counted,
        [("ERROR".to_string(), 1, 1), ("UNSET".to_string(), 3, 3)]
    );

    // A few matches against a value of many records: the postings are skipped through.
    let a = trace_id(A);
    let many: Vec<model::Record> = (1..=40)
        .map(|i| {
            let service = if i % 20 == 0 { "rare" } else { "common" };
            let s = span(a, i, None, service, "op").at(T0 + i as i64 * MS, MS);
            if i == 40 { s.error("boom") } else { s }.build()
        })
        .collect();
    let index = index_of(many);
    let group = |query: &str| group_counts(&index, query, "status", index::CountMode::Records);
    assert_eq!(group("service = rare"), rows(&[("ERROR", 1), ("UNSET", 1)]));
    assert_eq!(group("kind = span"), rows(&[("ERROR", 1), ("UNSET", 39)]));
}
