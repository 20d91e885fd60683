//! The issue-3 benchmark, in one run: simulated checkout traffic → the real `threadline ingest`
//! (MB/s, records/s, peak RSS with its anonymous and mapped parts, index size ÷ input), then in-process queries on the index it built
//! (everything for a trace p50/p99, filter + terms aggregation p50, 10-minute histogram p50), and
//! `grep -rF` / `rg -F` for the same trace ids as the no-index baseline. Prints a Markdown table.
//!
//! ```text
//! cargo build --release -p cli && cargo run --release -p cli --example bench -- --mb 250
//! ```
//!
//! `cargo run --example` does not build the `threadline` binary, hence the `cargo build` first
//! (cargo does not relink an unchanged binary, so its age says nothing: build it before you run
//! the bench). Results go in `docs/BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use checkout_sim::{GroundTruth, SimConfig};
use index::{AggRequest, Index};
use sim_bench::{dir_size, percentile_ms, run_ingest, threadline_binary};

mod sim_bench;

/// Targets of issue 3 ("Done when").
const TARGET_INGEST_MB_S: f64 = 60.0;
const TARGET_SIZE_RATIO: f64 = 0.25;
const TARGET_TRACE_P50_MS: f64 = 1.0;
const TARGET_TRACE_P99_MS: f64 = 5.0;
const TARGET_AGG_MS: f64 = 2.0;
const TARGET_HISTOGRAM_MS: f64 = 4.0;
const TARGET_RSS_MIB: f64 = 512.0;

/// The attribute filter + terms aggregation, and the 10-minute histogram (both from the
/// simulator's ground truth, so their counts are checked too).
const AGG_QUERY: &str = "kind = span AND exists(decline_code)";
const AGG_BY: &str = "decline_code";
const HISTOGRAM_QUERY: &str = "kind = span AND name = stripe_api_call AND status = ERROR";
/// A histogram over every span, to show the cost of a non-selective query.
const HISTOGRAM_ALL_QUERY: &str = "kind = span";

#[derive(Debug)]
struct Args {
    mb: f64,
    dir: PathBuf,
    seed: u64,
    /// Random trace ids looked up in the index.
    trace_ids: usize,
    /// Trace ids looked up with grep/rg (each one reads all the input).
    grep_ids: usize,
    /// Repetitions of each aggregation.
    reps: usize,
    threadline: Option<PathBuf>,
}

struct Row {
    metric: String,
    value: String,
    target: String,
    ok: Option<bool>,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let threadline = threadline_binary(args.threadline.as_deref())?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let sim_dir = args.dir.join("sim");
    let index_dir = args.dir.join("index");

    // 1. Input.
    let truth = simulate(&args, &sim_dir)?;
    let inputs = [sim_dir.join("spans"), sim_dir.join("logs")];
    let input_bytes: u64 = inputs.iter().map(|p| dir_size(p)).sum();
    eprintln!(
        "input: {:.1} MB, {} traces, {} spans, {} logs",
        input_bytes as f64 / 1e6,
        truth.totals.traces,
        truth.totals.spans,
        truth.totals.logs
    );

    // 2. Ingest with the real binary, into an empty index.
    if index_dir.exists() {
        std::fs::remove_dir_all(&index_dir)
            .with_context(|| format!("cannot remove {}", index_dir.display()))?;
    }
    let ingest = run_ingest(&threadline, &index_dir, &inputs)?;
    let records = ingest.summary["records"].as_u64().unwrap_or(0);
    ensure!(
        records == truth.totals.spans + truth.totals.logs,
        "ingest indexed {records} records, the simulator wrote {}",
        truth.totals.spans + truth.totals.logs
    );
    let index_bytes = dir_size(&index_dir);
    let secs = ingest.wall.as_secs_f64();
    let mb_s = input_bytes as f64 / 1e6 / secs;
    let size_ratio = index_bytes as f64 / input_bytes as f64;
    let rss_mib = ingest.memory.hwm_mib();
    eprintln!(
        "ingest: {secs:.2} s ({:.2} s CPU), {mb_s:.1} MB/s, peak RSS {}",
        ingest.cpu.as_secs_f64(),
        ingest.memory.describe()
    );

    // 3. Queries, in process, warm.
    let index = Index::open_or_create(&index_dir).context("cannot open the index")?;
    let ids = sample_trace_ids(&truth, args.trace_ids, args.seed);
    let trace_times = time_traces(&index, &truth, &ids)?;
    let agg_times = time_agg(&index, &truth, args.reps)?;
    let hist_times = time_histogram(&index, &truth, HISTOGRAM_QUERY, args.reps)?;
    let hist_all_times = time_histogram(&index, &truth, HISTOGRAM_ALL_QUERY, args.reps)?;

    // 4. The no-index baseline, same ids.
    let grep_ids: Vec<String> = ids
        .iter()
        .take(args.grep_ids)
        .map(|id| format!("{id:032x}"))
        .collect();
    let grep = time_grep("grep", &["-rF", "--no-filename", "--"], &inputs, &grep_ids)?;
    let rg = if has_program("rg") {
        Some(time_grep(
            "rg",
            &["-F", "--no-filename", "--no-config", "--"],
            &inputs,
            &grep_ids,
        )?)
    } else {
        None
    };

    // 5. Report.
    let p = |times: &[Duration], q: f64| percentile_ms(times, q);
    let mut rows = vec![
        Row::new(
            "ingest throughput (read + decode + index + commit)",
            format!("{mb_s:.1} MB/s ({:.2} s)", secs),
            format!("≥ {TARGET_INGEST_MB_S} MB/s"),
            Some(mb_s >= TARGET_INGEST_MB_S),
        ),
        Row::new(
            "ingest CPU time (user + system, all threads)",
            format!(
                "{:.2} s ({:.1} MB per CPU-second)",
                ingest.cpu.as_secs_f64(),
                input_bytes as f64 / 1e6 / ingest.cpu.as_secs_f64().max(1e-9)
            ),
            String::new(),
            None,
        ),
        Row::new(
            "ingest records/s",
            format!("{:.0}", records as f64 / secs),
            String::new(),
            None,
        ),
        Row::new(
            "index size ÷ input size",
            format!(
                "{size_ratio:.3} ({:.1} MB / {:.1} MB)",
                index_bytes as f64 / 1e6,
                input_bytes as f64 / 1e6
            ),
            format!("≤ {TARGET_SIZE_RATIO}"),
            Some(size_ratio <= TARGET_SIZE_RATIO),
        ),
        Row::new(
            "peak RSS of `threadline ingest` (VmHWM; peaks of RssAnon, RssFile + RssShmem)",
            ingest.memory.describe(),
            format!("≤ {TARGET_RSS_MIB} MiB"),
            Some(rss_mib <= TARGET_RSS_MIB),
        ),
        Row::new(
            &format!(
                "everything for this trace p50 ({} random ids, `trace` + `to_json`)",
                ids.len()
            ),
            format!("{:.3} ms", p(&trace_times, 0.50)),
            format!("≤ {TARGET_TRACE_P50_MS} ms"),
            Some(p(&trace_times, 0.50) <= TARGET_TRACE_P50_MS),
        ),
        Row::new(
            "everything for this trace p99",
            format!(
                "{:.3} ms (max {:.3} ms)",
                p(&trace_times, 0.99),
                p(&trace_times, 1.0)
            ),
            format!("≤ {TARGET_TRACE_P99_MS} ms"),
            Some(p(&trace_times, 0.99) <= TARGET_TRACE_P99_MS),
        ),
        Row::new(
            &format!("filter + terms aggregation p50 (`{AGG_QUERY}` by `{AGG_BY}`)"),
            format!("{:.3} ms", p(&agg_times, 0.50)),
            format!("≤ {TARGET_AGG_MS} ms"),
            Some(p(&agg_times, 0.50) <= TARGET_AGG_MS),
        ),
        Row::new(
            &format!("10-minute histogram p50 (`{HISTOGRAM_QUERY}`)"),
            format!("{:.3} ms", p(&hist_times, 0.50)),
            format!("≤ {TARGET_HISTOGRAM_MS} ms"),
            Some(p(&hist_times, 0.50) <= TARGET_HISTOGRAM_MS),
        ),
        Row::new(
            &format!("10-minute histogram p50 (`{HISTOGRAM_ALL_QUERY}`, every span)"),
            format!("{:.3} ms", p(&hist_all_times, 0.50)),
            String::new(),
            None,
        ),
        Row::new(
            &format!("baseline: `grep -rF ID` per trace id ({} ids)", grep.len()),
            format!("{:.1} ms p50", p(&grep, 0.50)),
            String::new(),
            None,
        ),
    ];
    match &rg {
        Some(rg) => rows.push(Row::new(
            &format!("baseline: `rg -F ID` per trace id ({} ids)", rg.len()),
            format!("{:.1} ms p50", p(rg, 0.50)),
            String::new(),
            None,
        )),
        None => rows.push(Row::new(
            "baseline: `rg -F ID`",
            "rg not installed".into(),
            String::new(),
            None,
        )),
    }
    space_report(&index)?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{:.1} MB of simulator input (seed {}, {} traces, {} spans, {} logs) on {} cores\n",
        input_bytes as f64 / 1e6,
        args.seed,
        truth.totals.traces,
        truth.totals.spans,
        truth.totals.logs,
        cores
    );
    println!("| metric | result | target | |");
    println!("| --- | --- | --- | --- |");
    for row in &rows {
        let mark = match row.ok {
            Some(true) => "✅",
            Some(false) => "❌",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} |",
            row.metric, row.value, row.target, mark
        );
    }
    Ok(())
}

impl Row {
    fn new(metric: &str, value: String, target: String, ok: Option<bool>) -> Row {
        Row {
            metric: metric.to_owned(),
            value,
            target,
            ok,
        }
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mb: 250.0,
        dir: std::env::temp_dir().join("threadline-bench"),
        seed: 7,
        trace_ids: 2000,
        grep_ids: 20,
        reps: 200,
        threadline: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mb" => args.mb = value()?.parse().context("--mb")?,
            "--dir" => args.dir = value()?.into(),
            "--seed" => args.seed = value()?.parse().context("--seed")?,
            "--trace-ids" => args.trace_ids = value()?.parse().context("--trace-ids")?,
            "--grep-ids" => args.grep_ids = value()?.parse().context("--grep-ids")?,
            "--reps" => args.reps = value()?.parse().context("--reps")?,
            "--threadline" => args.threadline = Some(value()?.into()),
            "-h" | "--help" => {
                println!(
                    "bench [--mb 250] [--dir DIR] [--seed 7] [--trace-ids 2000] [--grep-ids 20] \
                     [--reps 200] [--threadline PATH]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(args)
}

/// Writes the simulator output (deterministic, about 1 s) and returns its ground truth.
fn simulate(args: &Args, sim_dir: &Path) -> anyhow::Result<GroundTruth> {
    let config = SimConfig {
        seed: args.seed,
        target_bytes: Some((args.mb * 1e6) as u64),
        ..SimConfig::default()
    };
    let started = Instant::now();
    let truth = checkout_sim::generate(&config, sim_dir)
        .with_context(|| format!("cannot write {}", sim_dir.display()))?;
    eprintln!(
        "simulated {:.1} MB in {:.2} s",
        truth.totals.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(truth)
}

/// `n` distinct trace ids drawn from the ground truth with a seeded xorshift (same every run).
fn sample_trace_ids(truth: &GroundTruth, n: usize, seed: u64) -> Vec<u128> {
    let all: Vec<u128> = truth.traces.keys().copied().collect();
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut picked = BTreeMap::new();
    let n = n.min(all.len());
    while picked.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let i = (state % all.len() as u64) as usize;
        let next = picked.len();
        picked.entry(all[i]).or_insert(next);
    }
    // In draw order, not id order, so neighbouring lookups are unrelated.
    let mut ids: Vec<(usize, u128)> = picked.into_iter().map(|(id, k)| (k, id)).collect();
    ids.sort_unstable();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// `Index::trace` + `Trace::to_json` per id; each result is checked against the ground truth.
/// One untimed pass first (warm: the OS page cache and tantivy's caches).
fn time_traces(index: &Index, truth: &GroundTruth, ids: &[u128]) -> anyhow::Result<Vec<Duration>> {
    let lookup = |id: u128| -> anyhow::Result<(Duration, usize, usize)> {
        let trace_id = model::TraceId::from_u128(id).context("zero trace id")?;
        let started = Instant::now();
        let trace = index
            .trace(trace_id)?
            .with_context(|| format!("trace {trace_id} not found"))?;
        let json = trace.to_json();
        let took = started.elapsed();
        let spans = json["spans"].as_array().map_or(0, Vec::len);
        let logs = json["logs"].as_array().map_or(0, Vec::len);
        std::hint::black_box(json);
        Ok((took, spans, logs))
    };
    for &id in ids {
        let (_, spans, logs) = lookup(id)?;
        let expected = &truth.traces[&id];
        ensure!(
            (spans as u64, logs as u64) == (expected.spans, expected.logs),
            "trace {id:032x}: {spans} spans / {logs} logs, the ground truth says {} / {}",
            expected.spans,
            expected.logs
        );
    }
    ids.iter().map(|&id| Ok(lookup(id)?.0)).collect()
}

fn time_agg(index: &Index, truth: &GroundTruth, reps: usize) -> anyhow::Result<Vec<Duration>> {
    let request = AggRequest {
        query: AGG_QUERY,
        by: vec![AGG_BY.to_owned()],
        ..AggRequest::default()
    };
    // The ground truth counts the same records by card BIN; every declined span has one.
    let expected: u64 = truth
        .aggregations
        .iter()
        .find(|a| a.q == AGG_QUERY)
        .map(|a| a.buckets.values().sum())
        .context("the ground truth has no aggregation for the bench query")?;
    let response = index.aggregate(&request)?;
    let counted: u64 = response.buckets.iter().map(|b| b.count).sum();
    ensure!(
        counted == expected,
        "`{AGG_QUERY}` by {AGG_BY} counted {counted}, the ground truth says {expected}"
    );
    (0..reps)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(index.aggregate(&request)?);
            Ok(started.elapsed())
        })
        .collect()
}

fn time_histogram(
    index: &Index,
    truth: &GroundTruth,
    query: &str,
    reps: usize,
) -> anyhow::Result<Vec<Duration>> {
    let request = AggRequest {
        query,
        interval: Some(Duration::from_secs(600)),
        ..AggRequest::default()
    };
    let response = index.aggregate(&request)?;
    if let Some(expected) = truth
        .aggregations
        .iter()
        .find(|a| a.q == query && a.interval.as_deref() == Some("10m"))
    {
        let got: BTreeMap<String, u64> = response
            .buckets
            .iter()
            .map(|b| {
                let key = b
                    .key
                    .iter()
                    .find(|(k, _)| k == "time")
                    .map(|(_, v)| v.clone());
                (key.unwrap_or_default(), b.count)
            })
            .collect();
        ensure!(
            got == expected.buckets,
            "`{query}` per 10m: {got:?}, the ground truth says {:?}",
            expected.buckets
        );
    }
    (0..reps)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(index.aggregate(&request)?);
            Ok(started.elapsed())
        })
        .collect()
}

/// Wall time of `program ARGS ID INPUTS...` per id (output discarded; exit 1 = no match is fine).
/// One untimed run first so both tools read from the page cache.
fn time_grep(
    program: &str,
    args: &[&str],
    inputs: &[PathBuf],
    ids: &[String],
) -> anyhow::Result<Vec<Duration>> {
    let run = |id: &str| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new(program)
            .args(args)
            .arg(id)
            .args(inputs)
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {program}"))?;
        ensure!(
            status.code().is_some_and(|c| c <= 1),
            "{program} failed: {status}"
        );
        Ok(started.elapsed())
    };
    if let Some(first) = ids.first() {
        run(first)?;
    }
    ids.iter().map(|id| run(id)).collect()
}

fn has_program(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where the index bytes go: per component (term dictionary, postings, positions, fast fields,
/// fieldnorms, doc store), the largest fields of each. Printed to stderr.
fn space_report(index: &Index) -> anyhow::Result<()> {
    eprint!("index space: {}", index.space_report()?.summary(8));
    Ok(())
}
