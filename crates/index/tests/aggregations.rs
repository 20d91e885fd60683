//! Aggregations: counts by attribute (number and string values merged), by epoch-aligned time
//! bucket, value × interval, two fields × interval, level names, duration metrics, services.

mod common;

use std::time::Duration;

use common::*;
use index::{AggRequest, Index};
use model::{AttrValue, Level};

const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Declines: card.bin 411111 as a number (3, at :03, :07, :12) and as a string (2, at :14, :16),
/// 550000 as a string (1, at :21); plus spans with durations in the resource-only attribute.
fn declines() -> Index {
    let a = trace_id(A);
    let min = 60 * SEC;
    let mut records = vec![];
    for (i, m) in [3, 7, 12].into_iter().enumerate() {
        records.push(
            log(None, None, "payment", "declined")
                .at(T0 + m * min)
                .offset(i as u64)
                .level(Level::Warn)
                .attr("card.bin", AttrValue::Int(411111))
                .build(),
        );
    }
    for (i, m) in [14, 16].into_iter().enumerate() {
        records.push(
            log(None, None, "payment", "declined")
                .at(T0 + m * min)
                .offset(10 + i as u64)
                .level(Level::Error)
                .attr("card.bin", "411111")
                .build(),
        );
    }
    records.push(
        log(None, None, "checkout", "declined")
            .at(T0 + 21 * min)
            .offset(20)
            .attr("card.bin", "550000")
            .build(),
    );
    for (i, ms) in [100, 200, 300, 400].into_iter().enumerate() {
        records.push(
            span(a, i as u64 + 1, None, "payment", "charge")
                .at(T0 + i as i64 * SEC, ms * MS)
                .resource("deployment.environment", "prod")
                .build(),
        );
    }
    let index = Index::create_in_ram().unwrap();
    // Two commits: mixed types across segments too.
    let second = records.split_off(4);
    index_batches(&index, vec![records, second]);
    index
}

fn keys(response: &index::AggResponse) -> Vec<(Vec<(String, String)>, u64)> {
    response
        .buckets
        .iter()
        .map(|b| (b.key.clone(), b.count))
        .collect()
}

/// The buckets with records (empty time buckets left out).
fn nonzero(response: &index::AggResponse) -> Vec<(Vec<(String, String)>, u64)> {
    keys(response).into_iter().filter(|(_, n)| *n > 0).collect()
}

fn k(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn terms_on_an_attribute_merge_numbers_and_strings() {
    let index = declines();
    let response = index
        .aggregate(&AggRequest {
            by: vec!["card.bin".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        keys(&response),
        [
            (k(&[("card.bin", "411111")]), 5),
            (k(&[("card.bin", "550000")]), 1)
        ]
    );
    assert_eq!(response.total, 10);
    let json = response.to_json();
    assert_eq!(
        json["buckets"][0],
        serde_json::json!({"key": {"card.bin": "411111"}, "count": 5})
    );
}

/// `size` is the number of values per field: the largest first (tantivy is asked for more, so
/// that numbers and their text merge before the cut).
#[test]
fn size_gives_that_many_values_per_field() {
    let index = declines();
    let one = index
        .aggregate(&AggRequest {
            by: vec!["card.bin".into()],
            size: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&one), [(k(&[("card.bin", "411111")]), 5)]);
    // Per value of the first field, `size` values of the second; time buckets are not cut.
    let two = index
        .aggregate(&AggRequest {
            by: vec!["service".into(), "level".into()],
            interval: Some(Duration::from_secs(600)),
            size: 1,
            ..Default::default()
        })
        .unwrap();
    let services: std::collections::BTreeSet<String> =
        two.buckets.iter().map(|b| b.key[0].1.clone()).collect();
    assert_eq!(services.len(), 1, "{:?}", keys(&two));
    let levels: std::collections::BTreeSet<String> =
        two.buckets.iter().map(|b| b.key[1].1.clone()).collect();
    assert_eq!(levels.len(), 1, "{:?}", keys(&two));
    let times: std::collections::BTreeSet<String> =
        two.buckets.iter().map(|b| b.key[2].1.clone()).collect();
    assert!(times.len() > 1, "{:?}", keys(&two));
}

#[test]
fn date_histogram_buckets_align_to_the_epoch_and_cover_the_range() {
    let index = declines();
    let request = AggRequest {
        by: vec![],
        interval: Some(Duration::from_secs(600)),
        from_ns: Some(T0 + 60 * SEC),
        to_ns: Some(T0 + 40 * 60 * SEC),
        ..Default::default()
    };
    let response = index.aggregate(&request).unwrap();
    // The empty 14:30 bucket is listed: a chart of the range has no hole.
    assert_eq!(
        keys(&response),
        [
            (k(&[("time", "2026-11-20T14:00:00Z")]), 2),
            (k(&[("time", "2026-11-20T14:10:00Z")]), 3),
            (k(&[("time", "2026-11-20T14:20:00Z")]), 1),
            (k(&[("time", "2026-11-20T14:30:00Z")]), 0),
        ]
    );
    // Without `to`, the range ends now; with neither, it is the data's.
    let until_now = index
        .aggregate(&AggRequest {
            to_ns: None,
            now_ns: Some(T0 + 55 * 60 * SEC),
            ..request.clone()
        })
        .unwrap();
    assert_eq!(until_now.buckets.len(), 6);
    assert_eq!(
        until_now.buckets[5].key,
        k(&[("time", "2026-11-20T14:50:00Z")])
    );
    let data = index
        .aggregate(&AggRequest {
            query: "service = checkout OR level = warn",
            interval: Some(Duration::from_secs(600)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        keys(&data),
        [
            (k(&[("time", "2026-11-20T14:00:00Z")]), 2),
            (k(&[("time", "2026-11-20T14:10:00Z")]), 1),
            (k(&[("time", "2026-11-20T14:20:00Z")]), 1),
        ]
    );
    // A range too long for the interval is refused, not allocated.
    let err = index
        .aggregate(&AggRequest {
            interval: Some(Duration::from_millis(1)),
            from_ns: Some(T0),
            to_ns: Some(T0 + 3_600 * SEC),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("larger interval"), "{err}");
}

#[test]
fn value_by_interval_and_two_fields_by_interval() {
    let index = declines();
    let request = AggRequest {
        by: vec!["card.bin".into()],
        interval: Some(Duration::from_secs(600)),
        ..Default::default()
    };
    let response = index.aggregate(&request).unwrap();
    // Each value's series covers the data's range, its empty buckets at 0.
    assert_eq!(response.buckets.len(), 6, "{:?}", keys(&response));
    assert_eq!(
        response.buckets[2].key,
        k(&[("card.bin", "411111"), ("time", "2026-11-20T14:20:00Z")])
    );
    assert_eq!(response.buckets[2].count, 0);
    assert_eq!(
        nonzero(&response),
        [
            (
                k(&[("card.bin", "411111"), ("time", "2026-11-20T14:00:00Z")]),
                2
            ),
            (
                k(&[("card.bin", "411111"), ("time", "2026-11-20T14:10:00Z")]),
                3
            ),
            (
                k(&[("card.bin", "550000"), ("time", "2026-11-20T14:20:00Z")]),
                1
            ),
        ]
    );
    assert_eq!(
        response.to_json()["buckets"][1]["key"],
        serde_json::json!({"card.bin": "411111", "time": "2026-11-20T14:10:00Z"})
    );

    let request = AggRequest {
        query: "",
        by: vec!["service".into(), "level".into()],
        interval: Some(Duration::from_secs(600)),
        from_ns: Some(T0 + 60 * SEC),
        now_ns: Some(T0 + 25 * 60 * SEC),
        ..Default::default()
    };
    let response = index.aggregate(&request).unwrap();
    // Three series of three buckets (14:00 .. 14:20), empty ones included.
    assert_eq!(response.buckets.len(), 9, "{:?}", keys(&response));
    assert_eq!(
        nonzero(&response),
        [
            // Largest (service, level) group first, then time ascending within it.
            (
                k(&[
                    ("service", "payment"),
                    ("level", "warn"),
                    ("time", "2026-11-20T14:00:00Z")
                ]),
                2
            ),
            (
                k(&[
                    ("service", "payment"),
                    ("level", "warn"),
                    ("time", "2026-11-20T14:10:00Z")
                ]),
                1
            ),
            (
                k(&[
                    ("service", "payment"),
                    ("level", "error"),
                    ("time", "2026-11-20T14:10:00Z")
                ]),
                2
            ),
            (
                k(&[
                    ("service", "checkout"),
                    ("level", "info"),
                    ("time", "2026-11-20T14:20:00Z")
                ]),
                1
            ),
        ]
    );
}

#[test]
fn duration_stats_percentiles_and_resource_fallback() {
    let index = declines();
    let request = AggRequest {
        by: vec!["deployment.environment".into()],
        duration_stats: true,
        duration_percentiles: vec![50.0, 99.0],
        ..Default::default()
    };
    let response = index.aggregate(&request).unwrap();
    assert_eq!(response.buckets.len(), 1);
    let bucket = &response.buckets[0];
    assert_eq!(bucket.key, k(&[("deployment.environment", "prod")]));
    assert_eq!(bucket.count, 4);
    let d = bucket.duration.as_ref().unwrap();
    assert_eq!(d.count, 4);
    assert_eq!(d.min, Some(100.0 * MS as f64));
    assert_eq!(d.max, Some(400.0 * MS as f64));
    assert_eq!(d.avg, Some(250.0 * MS as f64));
    assert_eq!(d.percentiles.len(), 2);
    let p50 = d.percentiles[0].1.unwrap();
    assert!(
        (190.0 * MS as f64..=310.0 * MS as f64).contains(&p50),
        "{p50}"
    );
    let json = bucket.to_json();
    assert!(json["duration_ns"]["p50"].is_number());

    // No dimension at all: one bucket over everything.
    let all = index
        .aggregate(&AggRequest {
            duration_stats: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.buckets.len(), 1);
    assert_eq!(all.buckets[0].count, 10);
    assert_eq!(all.buckets[0].duration.as_ref().unwrap().count, 4);

    assert!(
        index
            .aggregate(&AggRequest {
                by: vec!["a".into(), "b".into(), "c".into()],
                ..Default::default()
            })
            .is_err()
    );
}

#[test]
fn services_listing() {
    let index = declines();
    let services = index.services().unwrap();
    let names: Vec<(&str, u64, Vec<String>)> = services
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.records, s.span_names.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("payment", 9, vec!["charge".to_owned()]),
            ("checkout", 1, vec![])
        ]
    );
    let keys: Vec<&str> = services
        .attribute_keys
        .iter()
        .map(|k| k.path.as_str())
        .collect();
    assert_eq!(
        keys,
        ["attributes.card.bin", "resource.deployment.environment"]
    );
    let bin = &services.attribute_keys[0];
    assert!(
        bin.types.contains(&"str".to_owned()) && bin.types.contains(&"i64".to_owned()),
        "{:?}",
        bin.types
    );
    assert!(bin.cardinality.is_some());
}

/// `count = traces`: distinct traces per bucket. A decline writes a span and a log line (the
/// log known only by the low 64 bits of its trace): one trace, not two.
#[test]
fn count_traces_counts_each_trace_once_per_bucket() {
    let (a, b, c) = (
        trace_id(A),
        trace_id("5b8efff798038103d269b633813fc60c"),
        trace_id("6c9f0000000000000000000000000001"),
    );
    let mut records = Vec::new();
    for (t, code, minute) in [
        (a, "do_not_honor", 1),
        (b, "do_not_honor", 2),
        (c, "fraudulent", 12),
    ] {
        records.push(
            span(t, 1, None, "payment", "POST /api/payments")
                .at(T0 + minute * 60 * SEC, 5 * MS)
                .attr("decline_code", code)
                .build(),
        );
        records.push(
            log(low64(t), Some(1), "payment", "payment declined")
                .at(T0 + minute * 60 * SEC + MS)
                .level(Level::Warn)
                .attr("decline_code", code)
                .offset(minute as u64)
                .build(),
        );
    }
    records.push(
        log(None, None, "payment", "no trace")
            .attr("decline_code", "fraudulent")
            .build(),
    );
    let index = index_of(records);
    let by_code = |count| {
        index
            .aggregate(&AggRequest {
                query: "exists(decline_code)",
                by: vec!["decline_code".into()],
                count,
                ..Default::default()
            })
            .unwrap()
    };
    let records = by_code(index::CountMode::Records);
    assert_eq!(
        keys(&records),
        [
            (k(&[("decline_code", "do_not_honor")]), 4),
            (k(&[("decline_code", "fraudulent")]), 3)
        ]
    );
    assert_eq!(records.total, 7);
    let traces = by_code(index::CountMode::Traces);
    assert_eq!(
        keys(&traces),
        [
            (k(&[("decline_code", "do_not_honor")]), 2),
            (k(&[("decline_code", "fraudulent")]), 1)
        ]
    );
    assert_eq!(traces.total, 3);
    // By level and time: the warn logs' traces per 10 minutes, the empty 14:20 bucket listed.
    let by_time = index
        .aggregate(&AggRequest {
            query: "exists(decline_code)",
            by: vec!["level".into()],
            interval: Some(Duration::from_secs(600)),
            from_ns: Some(T0),
            to_ns: Some(T0 + 30 * 60 * SEC),
            count: index::CountMode::Traces,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        keys(&by_time),
        [
            (k(&[("level", "warn"), ("time", "2026-11-20T14:00:00Z")]), 2),
            (k(&[("level", "warn"), ("time", "2026-11-20T14:10:00Z")]), 1),
            (k(&[("level", "warn"), ("time", "2026-11-20T14:20:00Z")]), 0),
        ]
    );
    assert!("distinct".parse::<index::CountMode>().is_err());
    assert_eq!(
        "traces".parse::<index::CountMode>().unwrap(),
        index::CountMode::Traces
    );
}
