//! Compare: pairs ranked by over-representation in the selection, per trace or per record; the
//! selection's own fields and ids left out; the selection's category drilled into.

mod common;

use common::*;
use index::{CompareRequest, CompareUnit, Index};
use model::{AttrValue, Level, Record};

/// 10 declines with code `dnh` (BIN 400022 on 7), 10 with `funds` (400022 on 1), 30 paid
/// checkouts: each a payment span and a log line, both with the BIN, the user (one per trace)
/// and, for a decline, the code; the log is known by the low 64 bits of its trace.
fn checkouts() -> Index {
    index_of(checkout_records())
}

/// The records of [`checkouts`], spans and logs alternating.
fn checkout_records() -> Vec<Record> {
    let mut records = Vec::new();
    for i in 0..50u64 {
        let trace = trace_id(&format!("{:016x}{:016x}", 0xabc0 + i, 0x1000 + i));
        let (code, bin) = match i {
            0..=6 => (Some("dnh"), "400022"),
            7..=9 => (Some("dnh"), "424242"),
            10 => (Some("funds"), "400022"),
            11..=19 => (Some("funds"), "424242"),
            _ if i % 2 == 0 => (None, "424242"),
            _ => (None, "555555"),
        };
        let at = T0 + i as i64 * SEC;
        let mut span = span(trace, 1, None, "payment", "POST /api/payments")
            .at(at, 5 * MS)
            .attr("card.bin", bin)
            .attr("user.id", format!("usr_{i}").as_str())
            .attr(
                "http.response.status_code",
                AttrValue::Int(if code.is_some() { 402 } else { 200 }),
            );
        let mut log = log(low64(trace), Some(1), "payment", "payment outcome")
            .at(at + MS)
            .offset(i)
            .attr("card.bin", bin)
            .attr("user.id", format!("usr_{i}").as_str());
        if let Some(code) = code {
            span = span.error("card declined").attr("decline_code", code);
            log = log.level(Level::Warn).attr("decline_code", code);
        }
        records.push(span.build());
        records.push(log.build());
    }
    records
}

fn compare(
    index: &Index,
    query: &str,
    baseline: Option<&str>,
    count: CompareUnit,
) -> index::CompareResponse {
    index
        .compare(&CompareRequest {
            query,
            baseline,
            limit: 20,
            count,
            ..Default::default()
        })
        .unwrap()
}

fn pairs(response: &index::CompareResponse) -> Vec<(String, String)> {
    response
        .results
        .iter()
        .map(|r| (r.field.clone(), r.value.clone()))
        .collect()
}

fn pair(field: &str, value: &str) -> (String, String) {
    (field.to_owned(), value.to_owned())
}

#[test]
fn the_bin_of_a_decline_code_ranks_first_against_the_other_codes() {
    let index = checkouts();
    let r = compare(
        &index,
        "decline_code = dnh",
        Some("exists(decline_code)"),
        CompareUnit::Traces,
    );
    assert_eq!((r.selection.traces, r.selection.records), (10, 20));
    assert_eq!((r.baseline.traces, r.baseline.records), (10, 20));
    assert_eq!(r.selection.sample_rate, 1.0);
    let first = &r.results[0];
    assert_eq!(pair(&first.field, &first.value), pair("card.bin", "400022"));
    // Per trace: the span and the log both carry it, 7 traces of 10 against 1 of 10.
    assert_eq!((first.selection_count, first.baseline_count), (7, 1));
    assert!((first.selection_share - 0.7).abs() < 1e-9);
    assert!((first.baseline_share - 0.1).abs() < 1e-9);
    assert!(first.score > 0.0);
    // Never the selection's own field, never a per-trace id; nothing shared by both sides.
    for (field, _) in pairs(&r) {
        assert!(
            !["decline_code", "user.id", "status", "level"].contains(&field.as_str()),
            "{r:?}"
        );
    }
}

#[test]
fn against_everything_pairs_marking_the_same_traces_are_listed_once() {
    let index = checkouts();
    let r = compare(&index, "decline_code = dnh", None, CompareUnit::Traces);
    assert_eq!(r.baseline.traces, 40);
    let got = pairs(&r);
    // The BIN is the most specific; every decline's 402, ERROR status and warn level mark the
    // same traces, so only one of them is listed.
    assert_eq!(got[0], pair("card.bin", "400022"), "{got:?}");
    let category = [
        pair("http.response.status_code", "402"),
        pair("status", "ERROR"),
        pair("level", "warn"),
    ];
    assert_eq!(
        got.iter().filter(|p| category.contains(p)).count(),
        1,
        "{got:?}"
    );
    assert_eq!(got[1], pair("http.response.status_code", "402"), "{got:?}");
    let json = r.to_json();
    for key in ["records", "traces"] {
        assert!(
            json["selection"][key].is_u64() && json["baseline"][key].is_u64(),
            "{json}"
        );
    }
    for key in [
        "field",
        "value",
        "selection_count",
        "baseline_count",
        "selection_share",
        "baseline_share",
        "score",
    ] {
        assert!(json["results"][0].get(key).is_some(), "{key}: {json}");
    }
}

#[test]
fn records_count_each_record() {
    let index = checkouts();
    let r = compare(
        &index,
        "decline_code = dnh AND kind = span",
        Some("exists(decline_code) AND kind = span"),
        CompareUnit::Records,
    );
    assert_eq!((r.selection.records, r.baseline.records), (10, 10));
    let first = &r.results[0];
    assert_eq!(pair(&first.field, &first.value), pair("card.bin", "400022"));
    assert_eq!((first.selection_count, first.baseline_count), (7, 1));
    // Nothing to compare: no results, not an error.
    let none = compare(&index, "decline_code = nothing", None, CompareUnit::Traces);
    assert_eq!(none.selection.traces, 0);
    assert!(none.results.is_empty());
}

#[test]
fn score_grows_with_the_selection_share_and_shrinks_with_the_baseline_share() {
    use index::compare_score as score;
    assert!(score(7, 10, 1, 10) > score(7, 10, 3, 10));
    assert!(score(9, 10, 1, 10) > score(7, 10, 1, 10));
    assert!(score(5, 10, 5, 10) <= 0.0);
    assert_eq!(score(0, 10, 0, 10), 0.0);
    // One unit against none does not beat a strong pattern.
    assert!(score(1, 100, 0, 100) < score(70, 100, 5, 100));
}

/// Compare keeps each segment's record → trace map between calls: a segment committed after a
/// compare is read too, and a trace whose span and log are in different segments still counts
/// once with both records' values.
#[test]
fn traces_split_over_segments_committed_between_compares_count_as_one_index() {
    let (spans, logs): (Vec<Record>, Vec<Record>) = checkout_records()
        .into_iter()
        .partition(|r| matches!(r, Record::Span(_)));
    let split = Index::create_in_ram().unwrap();
    index_batches(&split, vec![spans]);
    let spans_only = compare(&split, "decline_code = dnh", None, CompareUnit::Traces);
    assert_eq!(spans_only.selection.records, 10);
    index_batches(&split, vec![logs]);
    let whole = checkouts();
    for baseline in [None, Some("exists(decline_code)")] {
        let expected = compare(&whole, "decline_code = dnh", baseline, CompareUnit::Traces);
        let got = compare(&split, "decline_code = dnh", baseline, CompareUnit::Traces);
        assert_eq!(got.selection, expected.selection, "{baseline:?}");
        assert_eq!(got.baseline, expected.baseline, "{baseline:?}");
        assert_eq!(got.results, expected.results, "{baseline:?}");
        assert!(!got.results.is_empty());
    }
}
