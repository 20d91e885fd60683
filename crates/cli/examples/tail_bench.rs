//! `threadline serve` tailing files against `threadline ingest` of the same files (issue 13:
//! serve within 20% of ingest's rate): simulated checkout traffic, then, alternating, the real
//! `ingest` into a fresh index (wall time to its exit) and the real `serve --source` into another
//! fresh index (wall time from its start until `/metrics` says every record is committed), each
//! with its CPU time and peak memory. Prints a Markdown table and serve's rate ÷ ingest's.
//!
//! ```text
//! cargo build --release -p cli && cargo run --release -p cli --example tail_bench -- --mb 250 --runs 3
//! ```
//!
//! `--serve-arg ARG` (repeatable) passes ARG to `serve`, e.g. `--serve-arg --commit-interval
//! --serve-arg 2s`, or `--serve-arg --config --serve-arg FILE`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use checkout_sim::SimConfig;
use sim_bench::{PeakMemory, dir_size, process_cpu, run_ingest, threadline_binary};

mod sim_bench;

/// Issue 13: `serve` tailing the same files within 20% of `ingest`.
const TARGET_RATIO: f64 = 0.8;
/// How often `/metrics` is asked for the committed count (memory is sampled more often).
const POLL_EVERY: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Args {
    mb: f64,
    dir: PathBuf,
    seed: u64,
    /// Pairs of (ingest, serve) runs, alternating.
    runs: usize,
    /// Keep `DIR/sim` from an earlier run.
    reuse: bool,
    serve_args: Vec<String>,
    threadline: Option<PathBuf>,
}

/// One timed run of either command.
struct Run {
    wall: Duration,
    cpu: Duration,
    memory: PeakMemory,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let threadline = threadline_binary(args.threadline.as_deref())?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let sim_dir = args.dir.join("sim");
    if !args.reuse || !sim_dir.exists() {
        let config = SimConfig {
            seed: args.seed,
            target_bytes: Some((args.mb * 1e6) as u64),
            ..SimConfig::default()
        };
        let truth = checkout_sim::generate(&config, &sim_dir)
            .with_context(|| format!("cannot write {}", sim_dir.display()))?;
        eprintln!(
            "simulated {:.1} MB ({} spans, {} logs)",
            truth.totals.bytes as f64 / 1e6,
            truth.totals.spans,
            truth.totals.logs
        );
    }
    let inputs = [sim_dir.join("spans"), sim_dir.join("logs")];
    let input_bytes: u64 = inputs.iter().map(|p| dir_size(p)).sum();

    let mut ingests = Vec::new();
    let mut serves = Vec::new();
    let mut records = 0;
    for run in 0..args.runs {
        let index_dir = fresh(&args.dir.join("index-ingest"))?;
        let ingest = run_ingest(&threadline, &index_dir, &inputs)?;
        ensure!(
            ingest.summary["records"].as_u64().is_some_and(|n| n > 0),
            "threadline ingest indexed no records: {}",
            ingest.summary
        );
        records = ingest.summary["records"].as_u64().unwrap_or(0);
        eprintln!(
            "run {run}: ingest {records} records in {:.2} s ({:.2} CPU-s), peak {}",
            ingest.wall.as_secs_f64(),
            ingest.cpu.as_secs_f64(),
            ingest.memory.describe()
        );
        ingests.push(Run {
            wall: ingest.wall,
            cpu: ingest.cpu,
            memory: ingest.memory,
        });

        let index_dir = fresh(&args.dir.join("index-serve"))?;
        // Both `ingest` runs took far less than this; a stuck `serve` must not hang the bench.
        let limit = ingest.wall * 10 + Duration::from_secs(60);
        let serve = run_serve(&threadline, &index_dir, &inputs, &args, records, limit)?;
        eprintln!(
            "run {run}: serve committed them in {:.2} s ({:.2} CPU-s), peak {}",
            serve.wall.as_secs_f64(),
            serve.cpu.as_secs_f64(),
            serve.memory.describe()
        );
        serves.push(serve);
    }
    for dir in ["index-ingest", "index-serve"] {
        let _ = std::fs::remove_dir_all(args.dir.join(dir));
    }

    let mb = input_bytes as f64 / 1e6;
    let median = |runs: &[Run], f: fn(&Run) -> f64| -> f64 {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{mb:.1} MB of simulator input (seed {}, {records} records), {} runs each, alternating; \
         medians\n",
        args.seed, args.runs
    );
    println!(
        "| | wall | MB/s | records/s | CPU-s (user + sys) | peak RSS (VmHWM; anonymous, mapped) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, runs) in [
        ("`threadline ingest` (to exit)", &ingests),
        ("`threadline serve --source` (to all committed)", &serves),
    ] {
        let wall = median(runs, |r| r.wall.as_secs_f64());
        let worst = runs
            .iter()
            .map(|r| r.memory)
            .max_by_key(|m| m.hwm_kib)
            .unwrap_or_default();
        println!(
            "| {name} | {wall:.2} s | {:.1} | {:.0} | {:.2} | {} |",
            mb / wall,
            records as f64 / wall,
            median(runs, |r| r.cpu.as_secs_f64()),
            worst.describe()
        );
    }
    let ratio =
        median(&ingests, |r| r.wall.as_secs_f64()) / median(&serves, |r| r.wall.as_secs_f64());
    let mark = if ratio >= TARGET_RATIO { "✅" } else { "❌" };
    println!("\nserve's rate ÷ ingest's: {ratio:.2} (target ≥ {TARGET_RATIO}) {mark}");
    Ok(())
}

/// Starts `serve` on a free loopback port tailing `inputs`, and waits until its `/metrics`
/// count of committed records reaches `records`; then stops it. The wall time runs from the
/// start of the process, as `ingest`'s does.
fn run_serve(
    threadline: &Path,
    index_dir: &Path,
    inputs: &[PathBuf],
    args: &Args,
    records: u64,
    limit: Duration,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let mut command = Command::new(threadline);
    command
        .arg("--index")
        .arg(index_dir)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    for input in inputs {
        command
            .arg("--source")
            .arg(format!("{}/**", input.display()));
    }
    let mut child = command
        .args(&args.serve_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", threadline.display()))?;
    let pid = child.id();
    let result = (|| {
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                bail!("threadline serve ended before it listened");
            };
            let line = line?;
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                break url.trim_end_matches('/').to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let client = reqwest::blocking::Client::new();
        let mut memory = PeakMemory::default();
        let mut last_poll = Instant::now() - POLL_EVERY;
        loop {
            memory.sample(pid);
            if last_poll.elapsed() >= POLL_EVERY {
                last_poll = Instant::now();
                let committed = committed_records(&client, &addr)?;
                if committed >= records {
                    let wall = started.elapsed();
                    let cpu = process_cpu(pid)?;
                    memory.sample(pid);
                    ensure!(
                        committed == records,
                        "serve committed {committed} records, ingest {records}"
                    );
                    return Ok(Run { wall, cpu, memory });
                }
                ensure!(
                    started.elapsed() < limit,
                    "serve committed {committed} of {records} records in {limit:?}"
                );
            }
            if let Some(status) = child.try_wait()? {
                bail!("threadline serve exited ({status}) before committing everything");
            }
            std::thread::sleep(sim_bench::SAMPLE_EVERY);
        }
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `threadline_index_records_total` of `/metrics`: records in the commits since start.
fn committed_records(client: &reqwest::blocking::Client, addr: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{addr}/metrics"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .context("GET /metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix("threadline_index_records_total "))
        .and_then(|n| n.trim().parse().ok())
        .context("/metrics has no threadline_index_records_total")
}

/// Removes `dir` if it exists; returns it.
fn fresh(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(dir.to_owned())
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mb: 250.0,
        dir: std::env::temp_dir().join("threadline-tail-bench"),
        seed: 7,
        runs: 3,
        reuse: false,
        serve_args: Vec::new(),
        threadline: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mb" => args.mb = value()?.parse().context("--mb")?,
            "--dir" => args.dir = value()?.into(),
            "--seed" => args.seed = value()?.parse().context("--seed")?,
            "--runs" => args.runs = value()?.parse::<usize>().context("--runs")?.max(1),
            "--reuse" => args.reuse = true,
            "--serve-arg" => args.serve_args.push(value()?),
            "--threadline" => args.threadline = Some(value()?.into()),
            "-h" | "--help" => {
                println!(
                    "tail_bench [--mb 250] [--dir DIR] [--seed 7] [--runs 3] [--reuse] \
                     [--serve-arg ARG]... [--threadline PATH]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(args)
}
