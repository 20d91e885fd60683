//! Trace-level queries at scale (issue 11): simulated checkout traffic of about a million
//! records, indexed by the real `threadline ingest`, then each of the simulator's ground-truth
//! trace-level questions (`trace(...)`, `NOT trace(...)`, `>`) as a trace list in-process —
//! the answer checked against the ground truth, p50 and p99 of each. Prints a Markdown table
//! for `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo build --release -p cli && cargo run --release -p cli --example trace_query_bench -- 1000000
//! ```
//!
//! `cargo run --example` does not build the `threadline` binary, hence the `cargo build` first.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use checkout_sim::SimConfig;
use index::{Index, TraceListRequest};
use sim_bench::percentile_ms;

mod sim_bench;

/// Runs of each question (after one warm-up).
const RUNS: usize = 15;
/// Records the simulator writes per request, on average (measured: 19.8).
const RECORDS_PER_REQUEST: u64 = 20;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: u64 = match args.next() {
        Some(n) => n
            .parse()
            .context("the first argument is the number of records")?,
        None => 1_000_000,
    };
    // A second argument keeps the traffic, truth and index there, and reuses them next time.
    let temp = tempfile::tempdir()?;
    let root = args
        .next()
        .map_or_else(|| temp.path().to_owned(), PathBuf::from);
    let index_dir = root.join("index");
    let truth_path = root.join("ground_truth.json");
    if !truth_path.exists() || !index_dir.exists() {
        let config = SimConfig {
            seed: 13,
            traces: (records / RECORDS_PER_REQUEST) as usize,
            ..SimConfig::default()
        };
        let truth = sim_bench::simulate_and_ingest(&config, &root, &index_dir)?;
        checkout_sim::write_ground_truth(&truth, &truth_path)?;
    }
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(&truth_path)?)?;
    let index = Index::open(&index_dir)?;
    println!(
        "{} records ({} spans, {} logs), {} requests\n",
        index.num_docs(),
        truth["totals"]["spans"],
        truth["totals"]["logs"],
        truth["requests"]
    );
    println!("| question | traces | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    // The baseline: a record-level query listing about as many traces as the questions do.
    let baseline = "service = payment-service AND status = ERROR";
    let times = time_runs(&index, baseline)?;
    let total = index.list_traces(&list(baseline, 1))?.total;
    println!(
        "| `{baseline}` (baseline, no trace-level predicate) | {total} | {:.1} | {:.1} |",
        percentile_ms(&times, 0.5),
        percentile_ms(&times, 0.99)
    );
    let questions = truth["trace_queries"]
        .as_array()
        .context("the ground truth has no trace_queries")?;
    for question in questions {
        let q = question["q"].as_str().context("a question without q")?;
        let times = time_runs(&index, q)?;
        let total = index.list_traces(&list(q, 1))?.total;
        // The list itself, whole, against the ground truth.
        let listed: BTreeSet<String> = index
            .list_traces(&list(q, index::MAX_TRACE_LIST_LIMIT))?
            .traces
            .into_iter()
            .map(|t| t.trace_id)
            .collect();
        let expected: BTreeSet<String> = question["traces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| Some(id.as_str()?.to_owned()))
            .collect();
        if total != expected.len() as u64
            || (expected.len() <= index::MAX_TRACE_LIST_LIMIT && listed != expected)
        {
            bail!(
                "{q}: {total} traces listed, the ground truth has {}",
                expected.len()
            );
        }
        println!(
            "| `{q}` | {total} | {:.1} | {:.1} |",
            percentile_ms(&times, 0.5),
            percentile_ms(&times, 0.99)
        );
    }
    Ok(())
}

fn list(query: &str, limit: usize) -> TraceListRequest<'_> {
    TraceListRequest {
        query,
        limit,
        ..TraceListRequest::default()
    }
}

/// `RUNS` timings of the trace list of `query`, after a warm-up.
fn time_runs(index: &Index, query: &str) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let started = Instant::now();
        index.list_traces(&list(query, 1))?;
        if run > 0 {
            times.push(started.elapsed());
        }
    }
    Ok(times)
}
