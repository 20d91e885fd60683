//! The compare benchmark (issue 11): simulated checkout traffic of about a million records,
//! indexed by the real `threadline ingest`, then `compare` in-process — per trace against
//! everything, per trace against the other decline codes, per record — p50 and p99 of each,
//! and the time of the first compare on a freshly opened index (nothing cached).
//! Prints a Markdown table for `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo build --release -p cli && cargo run --release -p cli --example compare_bench -- 1000000
//! ```
//!
//! `cargo run --example` does not build the `threadline` binary, hence the `cargo build` first.
//! `--index DIR` keeps the index in DIR and reuses it on the next run (to time two builds on the
//! same data); `--dump FILE` writes every case's whole answer (less `took_ms`) as JSON, so two
//! builds' answers can be diffed; `--runs N` times each case N times.

use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use checkout_sim::SimConfig;
use index::{CompareRequest, CompareUnit, Index};
use sim_bench::percentile_ms;

mod sim_bench;

/// Issue 11's target for compare on 1M records.
const TARGET_P50_MS: f64 = 200.0;
/// Runs of each case (after one warm-up).
const RUNS: usize = 15;
/// Records the simulator writes per request, on average (measured: 19.8).
const RECORDS_PER_REQUEST: u64 = 20;

/// What the command line asks for.
struct Args {
    records: u64,
    /// Where the index is kept and reused; a temporary directory when `None`.
    index: Option<PathBuf>,
    /// Where every case's answer is written.
    dump: Option<PathBuf>,
    runs: usize,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let temp = tempfile::tempdir()?;
    let index_dir = args
        .index
        .clone()
        .unwrap_or_else(|| temp.path().join("index"));
    let requests = (args.records / RECORDS_PER_REQUEST) as usize;
    if index_dir.join("meta.json").exists() {
        eprintln!("reusing the index in {}", index_dir.display());
    } else {
        ingest(requests, temp.path(), &index_dir)?;
    }
    let index = Index::open(&index_dir)?;
    println!("{} records, {requests} requests\n", index.num_docs());
    println!(
        "| compare | selection | baseline | first ms (fresh index) | p50 ms | p99 ms | first result |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let cases: [(&str, Option<&str>, CompareUnit); 3] = [
        ("decline_code = do_not_honor", None, CompareUnit::Traces),
        (
            "decline_code = do_not_honor",
            Some("exists(decline_code)"),
            CompareUnit::Traces,
        ),
        ("decline_code = do_not_honor", None, CompareUnit::Records),
    ];
    let mut worst_p50: f64 = 0.0;
    let mut answers = Vec::new();
    for (query, baseline, count) in cases {
        let request = CompareRequest {
            query,
            baseline,
            limit: 20,
            count,
            ..Default::default()
        };
        // The first compare of a freshly opened index: nothing cached yet.
        let fresh = Index::open(&index_dir)?;
        let started = Instant::now();
        fresh.compare(&request)?;
        let first_ms = started.elapsed().as_secs_f64() * 1e3;
        drop(fresh);
        let warm = index.compare(&request)?;
        let mut answer = warm.to_json();
        if let Some(fields) = answer.as_object_mut() {
            fields.remove("took_ms");
        }
        answers.push(serde_json::json!({
            "query": query, "baseline": baseline, "count": format!("{count:?}"), "answer": answer,
        }));
        let mut times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let started = Instant::now();
            let response = index.compare(&request)?;
            times.push(started.elapsed());
            ensure!(
                response.results == warm.results,
                "compare is not deterministic"
            );
        }
        let (p50, p99) = (percentile_ms(&times, 0.5), percentile_ms(&times, 0.99));
        worst_p50 = worst_p50.max(p50);
        let unit = match count {
            CompareUnit::Traces => "traces",
            CompareUnit::Records => "records",
        };
        let side = |s: &index::SideTotals| {
            let n = match count {
                CompareUnit::Traces => s.traces,
                CompareUnit::Records => s.records,
            };
            if s.sample_rate < 1.0 {
                format!("{n} {unit} (sampled {:.1}%)", s.sample_rate * 100.0)
            } else {
                format!("{n} {unit}")
            }
        };
        let first = warm
            .results
            .first()
            .map_or_else(String::new, |r| format!("{} = {}", r.field, r.value));
        println!(
            "| `{query}`{} | {} | {} | {first_ms:.1} | {p50:.1} | {p99:.1} | `{first}` |",
            baseline.map_or_else(String::new, |b| format!(" vs `{b}`")),
            side(&warm.selection),
            side(&warm.baseline),
        );
    }
    if let Some(path) = &args.dump {
        std::fs::write(path, serde_json::to_string_pretty(&answers)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("\ntarget: p50 <= {TARGET_P50_MS} ms; worst p50 {worst_p50:.1} ms");
    if worst_p50 > TARGET_P50_MS {
        bail!("compare is slower than its target");
    }
    Ok(())
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        records: 1_000_000,
        index: None,
        dump: None,
        runs: RUNS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} takes a value"));
        match arg.as_str() {
            "--index" => args.index = Some(value()?.into()),
            "--dump" => args.dump = Some(value()?.into()),
            "--runs" => args.runs = value()?.parse().context("--runs takes a number")?,
            n => args.records = n.parse().context("the argument is the number of records")?,
        }
    }
    ensure!(args.runs > 0, "--runs must be at least 1");
    Ok(args)
}

/// Simulates `requests` checkout requests into `scratch` and indexes them with the real
/// `threadline ingest` into `index_dir`.
fn ingest(requests: usize, scratch: &Path, index_dir: &Path) -> anyhow::Result<()> {
    let config = SimConfig {
        seed: 11,
        traces: requests,
        ..SimConfig::default()
    };
    sim_bench::simulate_and_ingest(&config, scratch, index_dir)?;
    Ok(())
}
