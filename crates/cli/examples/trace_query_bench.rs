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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use checkout_sim::SimConfig;
use index::{Index, TraceListRequest};

/// Runs of each question (after one warm-up).
const RUNS: usize = 15;
/// Records the simulator writes per request, on average (measured: 19.8).
const RECORDS_PER_REQUEST: u64 = 20;

fn main() -> anyhow::Result<()> {
    let records: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().context("the argument is the number of records")?,
        None => 1_000_000,
    };
    let dir = tempfile::tempdir()?;
    let traffic = dir.path().join("traffic");
    let index_dir = dir.path().join("index");
    let config = SimConfig {
        seed: 13,
        traces: (records / RECORDS_PER_REQUEST) as usize,
        ..SimConfig::default()
    };
    eprintln!("generating {} requests ...", config.traces);
    let truth = checkout_sim::generate(&config, &traffic)?;
    let bin = threadline_binary()?;
    eprintln!("indexing with {} ...", bin.display());
    let out = Command::new(&bin)
        .arg("--index")
        .arg(&index_dir)
        .args(["ingest", "--json"])
        .arg(traffic.join("spans"))
        .arg(traffic.join("logs"))
        .output()
        .context("running threadline ingest")?;
    ensure!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let index = Index::open(&index_dir)?;
    println!(
        "{} records ({} spans, {} logs), {} requests\n",
        summary["records"], summary["spans"], summary["logs"], truth.requests
    );
    println!("| question | traces | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    for question in &truth.trace_queries {
        let request = TraceListRequest {
            query: &question.q,
            limit: 1,
            ..TraceListRequest::default()
        };
        let mut times = Vec::with_capacity(RUNS);
        let mut total = 0;
        for run in 0..=RUNS {
            let started = Instant::now();
            let answer = index.list_traces(&request)?;
            if run > 0 {
                times.push(started.elapsed());
            }
            total = answer.total;
        }
        // The list itself, whole, against the ground truth.
        let listed: BTreeSet<String> = index
            .list_traces(&TraceListRequest {
                limit: index::MAX_TRACE_LIST_LIMIT,
                ..request.clone()
            })?
            .traces
            .into_iter()
            .map(|t| t.trace_id)
            .collect();
        let expected: BTreeSet<String> = question
            .traces
            .iter()
            .map(|id| format!("{id:032x}"))
            .collect();
        if total != expected.len() as u64
            || (expected.len() <= index::MAX_TRACE_LIST_LIMIT && listed != expected)
        {
            bail!(
                "{}: {total} traces listed, the ground truth has {}",
                question.q,
                expected.len()
            );
        }
        println!(
            "| `{}` | {total} | {:.1} | {:.1} |",
            question.q,
            percentile_ms(&times, 0.5),
            percentile_ms(&times, 0.99)
        );
    }
    Ok(())
}

fn threadline_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate the bench executable")?;
    let path = me
        .parent()
        .and_then(Path::parent)
        .context("the bench is not in target/<profile>/examples")?
        .join("threadline");
    ensure!(
        path.exists(),
        "{} not found: run `cargo build --release -p cli` first",
        path.display()
    );
    Ok(path)
}

fn percentile_ms(times: &[Duration], q: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}
