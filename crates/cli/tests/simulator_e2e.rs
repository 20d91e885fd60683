//! End to end: the real `threadline` binary ingests checkout-simulator traffic, and every trace,
//! search and aggregation is checked against the simulator's own ground truth.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

mod support;

/// Simulated traffic, its ground truth and the index built from it, shared by the tests. It
/// lives in a static, which is never dropped, so it is kept in one fixed folder under the
/// target directory that each run replaces (a temporary folder in /tmp was left behind by
/// every run).
struct Fixture {
    traffic: PathBuf,
    index: PathBuf,
    truth: Value,
    ingest_summary: Value,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulator_e2e");
        let _ = std::fs::remove_dir_all(&dir);
        let traffic = dir.join("traffic");
        let index = dir.join("index");
        let config = checkout_sim::SimConfig {
            seed: 42,
            traces: 400,
            traces_per_second: 0.5,
            start_ns: 1_795_183_800_000_000_000, // 2026-11-20T14:10:00Z
            ..checkout_sim::SimConfig::default()
        };
        let truth = checkout_sim::generate(&config, &traffic).unwrap().to_json();
        // The whole traffic folder: it holds traffic only (the truth is not written there).
        let args: Vec<&str> = vec![
            "--index",
            index.to_str().unwrap(),
            "ingest",
            "--json",
            traffic.to_str().unwrap(),
        ];
        let out = threadline(&args);
        assert_success(&out);
        let ingest_summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        Fixture {
            traffic,
            index,
            truth,
            ingest_summary,
        }
    })
}

fn threadline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_threadline"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "threadline failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_json(index: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--index", index.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = threadline(&all);
    // Exit code 1 means "nothing found"; the JSON answer is still printed.
    if out.status.code() != Some(1) {
        assert_success(&out);
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})"))
}

#[test]
fn ingest_summary_counts_every_record() {
    let f = fixture();
    let totals = &f.truth["totals"];
    let s = &f.ingest_summary;
    assert_eq!(s["spans"], totals["spans"], "{s}");
    assert_eq!(s["logs"], totals["logs"], "{s}");
    assert_eq!(s["unparsed"], 0, "{s}");
    assert_eq!(
        s["records"].as_u64(),
        Some(s["spans"].as_u64().unwrap() + s["logs"].as_u64().unwrap())
    );
    for key in [
        "files", "records", "spans", "logs", "unparsed", "warnings", "took_ms",
    ] {
        assert!(s[key].is_u64(), "ingest --json lacks {key}: {s}");
    }
    assert!(!f.traffic.join("ground_truth.json").exists());
}

#[test]
fn every_trace_has_its_spans_and_logs() {
    let f = fixture();
    let traces = f.truth["traces"]
        .as_object()
        .expect("ground truth lists traces");
    assert!(traces.len() >= 400, "{} traces", traces.len());
    let mut mismatches = Vec::new();
    for (trace_id, expected) in traces {
        let trace = run_json(&f.index, &["trace", trace_id, "--json"]);
        let spans = trace["spans"].as_array().unwrap().len() as u64;
        let logs = trace["logs"].as_array().unwrap().len() as u64;
        if Some(spans) != expected["spans"].as_u64() || Some(logs) != expected["logs"].as_u64() {
            mismatches.push(format!(
                "{trace_id}: got {spans} spans/{logs} logs, expected {expected}"
            ));
        }
        assert_eq!(trace["summary"]["span_count"].as_u64(), Some(spans));
    }
    assert!(
        mismatches.is_empty(),
        "{} traces differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn unknown_trace_is_exit_code_1_and_bad_id_is_2() {
    let f = fixture();
    let index = f.index.to_str().unwrap();
    let out = threadline(&[
        "--index",
        index,
        "trace",
        "0af7651916cd43dd8448eb211c80319c",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = threadline(&["--index", index, "trace", "not-a-trace"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a trace id"));
}

#[test]
fn waterfall_shows_spans_and_logs() {
    let f = fixture();
    let (trace_id, expected) = f.truth["traces"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let out = threadline(&["--index", f.index.to_str().unwrap(), "trace", trace_id]);
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("trace {trace_id}")), "{text}");
    // Each span's bar: solid where it is on the critical path, shaded elsewhere.
    let span_lines = text
        .lines()
        .filter(|l| (l.contains('█') || l.contains('░')) && !l.contains("critical path"))
        .count() as u64;
    assert_eq!(Some(span_lines), expected["spans"].as_u64(), "{text}");
    let log_lines = text
        .lines()
        .filter(|l| l.contains('┆') || l.starts_with("  ") && l.contains(": "))
        .count() as u64;
    assert!(
        log_lines >= expected["logs"].as_u64().unwrap().min(1),
        "{text}"
    );
}

/// In an 80-column terminal (`COLUMNS=80`) the waterfall, the findings and the search hits
/// are laid out to fit: every span still has its bar, no line of the trace views is wider.
#[test]
fn trace_and_explain_fit_an_80_column_terminal() {
    let f = fixture();
    let index = f.index.to_str().unwrap();
    for (trace_id, expected) in f.truth["traces"].as_object().unwrap().iter().take(20) {
        for command in ["trace", "explain"] {
            let out = Command::new(env!("CARGO_BIN_EXE_threadline"))
                .args(["--index", index, command, trace_id])
                .env("NO_COLOR", "1")
                .env("COLUMNS", "80")
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{command} {trace_id}: {} columns:\n{line}\n\n{text}",
                    line.chars().count()
                );
                assert!(!line.contains('\u{1b}'), "NO_COLOR: {line}");
            }
            if command == "trace" {
                let bars = text
                    .lines()
                    .filter(|l| {
                        (l.contains('█') || l.contains('░')) && !l.contains("critical path")
                    })
                    .count() as u64;
                assert_eq!(Some(bars), expected["spans"].as_u64(), "{text}");
            }
        }
    }
}

#[test]
fn search_counts_match_ground_truth() {
    let f = fixture();
    let queries = f.truth["queries"]
        .as_array()
        .expect("ground truth lists queries");
    assert!(!queries.is_empty());
    for case in queries {
        let q = case["q"].as_str().unwrap();
        let result = run_json(&f.index, &["search", q, "--limit", "5", "--json"]);
        assert_eq!(result["total"], case["count"], "search {q}");
        assert!(result["hits"].as_array().unwrap().len() <= 5);
    }
}

#[test]
fn aggregations_match_ground_truth() {
    let f = fixture();
    let aggs = f.truth["aggregations"]
        .as_array()
        .expect("ground truth lists aggregations");
    assert!(!aggs.is_empty());
    let mut counted_traces = 0;
    for case in aggs {
        let q = case["q"].as_str().unwrap();
        let mut args = vec!["agg", q, "--json"];
        let by: Vec<&str> = case["by"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let by_arg = by.join(",");
        if !by.is_empty() {
            args.extend(["--by", &by_arg]);
        }
        if let Some(interval) = case["interval"].as_str() {
            args.extend(["--interval", interval]);
        }
        // Distinct traces per bucket where the ground truth counts them.
        let count = case["count"].as_str().unwrap_or("records");
        args.extend(["--count", count]);
        let result = run_json(&f.index, &args);
        let mut got = serde_json::Map::new();
        for bucket in result["buckets"].as_array().unwrap() {
            let key = bucket["key"].as_object().unwrap();
            let label = if by.len() == 1 && key.len() == 1 {
                value_text(&key[by[0]])
            } else if by.is_empty() {
                value_text(&key["time"])
            } else {
                key.values().map(value_text).collect::<Vec<_>>().join("|")
            };
            got.insert(label, bucket["count"].clone());
        }
        let expected = case["buckets"].as_object().unwrap();
        // Empty time buckets may be listed with count 0; compare the non-empty ones.
        got.retain(|_, v| v.as_u64() != Some(0));
        assert_eq!(
            &got, expected,
            "agg {q} by {by:?} interval {:?} count {count}",
            case["interval"]
        );
        if count == "traces" {
            counted_traces += 1;
        }
    }
    assert!(
        counted_traces >= 4,
        "the ground truth counts traces in {counted_traces} cases"
    );
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every problem the simulator planted is found where it was planted (slow query, N+1, the
/// span where a failed checkout's error starts, a payment or email call whose context was lost
/// and the detached trace it continued in, both ways), and traces without a problem get no
/// finding at all.
#[test]
fn explain_finds_every_planted_problem_and_nothing_on_healthy_traces() {
    const KINDS: [&str; 5] = [
        "error_origin",
        "slow_span",
        "n_plus_one",
        "broken_propagation",
        "detached_root",
    ];
    let f = fixture();
    let traces = f.truth["traces"].as_object().unwrap();
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    let mut healthy_checked = 0;
    for (trace_id, truth) in traces {
        let expected = truth["problems"].as_array().unwrap();
        if expected.is_empty() {
            healthy_checked += 1;
        }
        let mut args = vec!["--index", f.index.to_str().unwrap(), "explain", "--json"];
        args.push(trace_id);
        let out = threadline(&args);
        let code = out.status.code();
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{trace_id}: not JSON ({e}): {out:?}"));
        let findings = answer["findings"].as_array().unwrap();
        assert_eq!(code, Some(if findings.is_empty() { 1 } else { 0 }));
        if expected.is_empty() {
            assert!(
                findings.is_empty(),
                "healthy trace {trace_id} got findings: {findings:#?}"
            );
            continue;
        }
        for want in expected {
            let kind = want["kind"].as_str().unwrap();
            *checked.entry(kind).or_default() += 1;
            let found = findings.iter().any(|got| {
                got["kind"] == want["kind"]
                    && got["span_id"] == want["span_id"]
                    && (want["linked_trace_id"].is_null()
                        || got["linked_trace_id"] == want["linked_trace_id"])
            });
            assert!(found, "{trace_id}: expected {want} among {findings:#?}");
        }
        // No finding of these kinds that was not planted.
        for got in findings {
            let kind = got["kind"].as_str().unwrap();
            if !KINDS.contains(&kind) {
                continue;
            }
            let planted = expected
                .iter()
                .any(|want| want["kind"] == got["kind"] && want["span_id"] == got["span_id"]);
            assert!(planted, "{trace_id}: unexpected {got:#}");
        }
    }
    for kind in KINDS {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 0,
            "the simulated traffic has no {kind} case: {checked:?}"
        );
    }
    assert!(healthy_checked >= 50);
}

#[test]
fn explain_exit_codes_are_those_of_every_command() {
    let f = fixture();
    let index = f.index.to_str().unwrap();
    let unknown = threadline(&[
        "--index",
        index,
        "explain",
        "0123456789abcdef0123456789abcdef",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    let bad = threadline(&["--index", index, "explain", "not-a-trace"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a trace id"));
    // A failed checkout: its findings as text, with the evidence.
    let (failed, _) = f.truth["traces"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| {
            t["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["kind"] == "error_origin")
        })
        .expect("the traffic has a failed checkout");
    let out = threadline(&["--index", index, "explain", failed]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("error_origin") && text.contains("\"error_ancestors\""),
        "{text}"
    );
}

/// `search --traces`: one row per trace of the traffic, each counting exactly the spans and logs
/// the simulator wrote for it (payment-service's Datadog logs, known by the low 64 bits of
/// their trace, included), with its root span's name.
#[test]
fn trace_list_rows_match_ground_truth_per_trace() {
    let f = fixture();
    let traces = f.truth["traces"].as_object().unwrap();
    let list = run_json(
        &f.index,
        &["search", "", "--traces", "--limit", "1000", "--json"],
    );
    assert_eq!(
        list["total"].as_u64(),
        Some(traces.len() as u64),
        "{}",
        list["total"]
    );
    assert_eq!(list["truncated"], false);
    let rows = list["traces"].as_array().unwrap();
    assert_eq!(rows.len(), traces.len());
    for row in rows {
        let id = row["trace_id"].as_str().unwrap();
        let want = &traces[id];
        assert_eq!(row["span_count"], want["spans"], "{id}");
        assert_eq!(row["log_count"], want["logs"], "{id}");
        assert_eq!(row["root_name"], want["root"], "{id}");
    }
    let starts: Vec<&str> = rows.iter().map(|r| r["start"].as_str().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Declines: each declined checkout is one trace, though its span and log both match.
    let declined = run_json(
        &f.index,
        &[
            "search",
            "decline_code = do_not_honor",
            "--traces",
            "--sort",
            "-duration",
            "--json",
        ],
    );
    let spans = run_json(
        &f.index,
        &[
            "search",
            "decline_code = do_not_honor AND kind = span",
            "--limit",
            "1",
            "--json",
        ],
    );
    assert!(declined["total"].as_u64().unwrap() > 0);
    assert_eq!(declined["total"], spans["total"]);
    let durations: Vec<u64> = declined["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["duration_ns"].as_u64().unwrap())
        .collect();
    assert!(durations.windows(2).all(|w| w[0] >= w[1]), "longest first");
}

/// `compare` through the binary: on one decline code, the card BIN that dominates it ranks
/// first against the other decline codes and within the top 3 against everything else; the
/// code itself (the selection's own field) and ids are never ranked.
#[test]
fn compare_ranks_the_dominating_bin_of_a_decline_code() {
    let f = fixture();
    let code = "do_not_honor";
    let q = format!("decline_code = {code}");
    // The BIN most of this code's declined traces carry, by the ground truth's own count.
    let by_bin = run_json(
        &f.index,
        &["agg", &q, "--by", "card.bin", "--count", "traces", "--json"],
    );
    let bin = by_bin["buckets"][0]["key"]["card.bin"]
        .as_str()
        .unwrap()
        .to_owned();
    let declines = f.truth["aggregations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["count"] == "traces" && a["by"] == serde_json::json!(["decline_code"]))
        .unwrap();
    let others = run_json(
        &f.index,
        &[
            "compare",
            &q,
            "--baseline",
            "exists(decline_code)",
            "--json",
        ],
    );
    assert_eq!(
        others["selection"]["traces"], declines["buckets"][code],
        "{others}"
    );
    let total: u64 = declines["buckets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        others["baseline"]["traces"].as_u64().unwrap()
            + others["selection"]["traces"].as_u64().unwrap(),
        total
    );
    let first = &others["results"][0];
    assert_eq!(
        (first["field"].as_str(), first["value"].as_str()),
        (Some("card.bin"), Some(bin.as_str())),
        "{others:#}"
    );
    for key in [
        "field",
        "value",
        "selection_count",
        "baseline_count",
        "selection_share",
        "baseline_share",
        "score",
    ] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }

    let everything = run_json(&f.index, &["compare", &q, "--json"]);
    let results = everything["results"].as_array().unwrap();
    let rank = results
        .iter()
        .position(|r| r["field"] == "card.bin" && r["value"] == bin.as_str())
        .unwrap_or(usize::MAX);
    assert!(rank < 3, "{bin} is at {rank}: {everything:#}");
    for r in results {
        let field = r["field"].as_str().unwrap();
        assert_ne!(
            field, "decline_code",
            "the selection's own field is ranked: {r}"
        );
        assert!(
            ![
                "order.id",
                "user.id",
                "stripe.charge_id",
                "duration_ms",
                "payment.amount_cents"
            ]
            .contains(&field),
            "a high-cardinality field is ranked: {r}"
        );
    }
    // The table: 80 columns, a bar per line, no colour with NO_COLOR.
    let out = threadline(&[
        "--index",
        f.index.to_str().unwrap(),
        "compare",
        &q,
        "--baseline",
        "exists(decline_code)",
    ]);
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    let first_row = text.lines().nth(2).unwrap();
    assert!(
        first_row.starts_with(&format!("card.bin = {bin}")) && first_row.contains('█'),
        "{text}"
    );
}

/// Copies a directory's files (an index: flat, no subfolders) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Trace-level questions over HTTP (`GET /api/v1/traces?q=` with `trace(...)`, `NOT trace(...)`
/// and `>`): each lists exactly the traces the simulator's ground truth says answer it. The
/// server runs on a copy of the shared index, so it never writes under the other tests.
#[test]
fn trace_level_queries_list_exactly_the_ground_truth_traces() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    copy_dir(&f.index, &index);
    let serve = support::ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), &index).start();
    let questions = f.truth["trace_queries"].as_array().unwrap();
    assert!(questions.len() >= 3, "{questions:?}");
    let mut answered = 0;
    for question in questions {
        let q = question["q"].as_str().unwrap();
        let want: std::collections::BTreeSet<&str> = question["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let (status, body) = support::get_json(
            &format!("{}/api/v1/traces", serve.url),
            &[("q", q), ("limit", "1000")],
        )
        .unwrap();
        assert_eq!(status, 200, "{q}: {body}");
        let got: std::collections::BTreeSet<&str> = body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "{q}");
        assert_eq!(body["total"].as_u64(), Some(want.len() as u64), "{q}");
        answered += usize::from(!want.is_empty());
    }
    // The questions are not vacuous on this traffic.
    assert!(answered >= 3, "only {answered} questions have an answer");

    // A bad structural query is a 400 that points at the column.
    let (status, body) = support::get_json(
        &format!("{}/api/v1/traces", serve.url),
        &[("q", "(service = order-service) >> (status = error)")],
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("column 27"), "{body}");
    serve.stop();
}
