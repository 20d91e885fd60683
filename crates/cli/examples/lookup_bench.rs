//! Trace lookup over HTTP as the index grows (issue 13): simulated checkout traffic → the real
//! `threadline ingest` → `threadline serve`, then `GET /api/v1/traces/{id}` (assembly and the
//! analysis, with its cross-trace lookups) and the Jaeger `GET /api/traces/{id}` (assembly only)
//! for the same trace ids, side by side, p50/p99. Prints a Markdown table.
//!
//! ```text
//! cargo build --release -p cli && cargo run --release -p cli --example lookup_bench -- --mb 500
//! ```
//!
//! `--mb 500` is about 1M records, `--mb 5000` about 10M. The ids are 30 random traces and 10
//! whose ground truth holds a `broken_propagation` or `detached_root` finding (the ones that look
//! across traces), kept in `DIR/trace_ids.txt` so that `--reuse` measures another build on the
//! same index. `--dump FILE` writes each trace's `analysis` (one JSON line per id, in id order):
//! two builds that find the same things write the same file.
//!
//! `--baseline PATH` serves a second build on a copy of the index and asks it each question right
//! beside the measured one (alternating which goes first): on a shared machine whose speed moves
//! from minute to minute, the two columns of one run compare, where two runs do not. Both builds
//! must return the same number of spans for each trace. The table adds each server's CPU time
//! per warm request (both endpoints' requests together).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use checkout_sim::{GroundTruth, SimConfig};
use serde_json::Value;
use sim_bench::{dir_size, percentile_ms, process_cpu, threadline_binary};

mod sim_bench;

/// Copies the files of an index folder (flat: tantivy keeps no subfolders).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Issue 13's targets for a trace lookup over HTTP.
const TARGET_P50_MS: f64 = 1.0;
const TARGET_P99_MS: f64 = 5.0;
/// Ground-truth problems found by looking at other traces.
const CROSS_TRACE: [&str; 2] = ["broken_propagation", "detached_root"];

#[derive(Debug)]
struct Args {
    mb: f64,
    dir: PathBuf,
    seed: u64,
    random_ids: usize,
    cross_trace_ids: usize,
    /// Timed passes over all ids (after one untimed, reported separately as "first").
    reps: usize,
    /// Keep `DIR/index` and `DIR/trace_ids.txt` from an earlier run.
    reuse: bool,
    /// Delete the simulator's files once ingested (the 10M-record input is 5 GB).
    drop_input: bool,
    dump: Option<PathBuf>,
    threadline: Option<PathBuf>,
    /// Another build, served on a copy of the index (`DIR/index-baseline`) and asked every
    /// question right beside the measured build, in alternating order, so that both see the
    /// same machine.
    baseline: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let threadline = threadline_binary(args.threadline.as_deref())?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let index_dir = args.dir.join("index");
    let ids_path = args.dir.join("trace_ids.txt");
    if !args.reuse {
        let copy = args.dir.join("index-baseline");
        if copy.exists() {
            std::fs::remove_dir_all(&copy)
                .with_context(|| format!("cannot remove {}", copy.display()))?;
        }
        build_index(&args, &threadline, &index_dir, &ids_path)?;
    }
    let ids: Vec<String> = std::fs::read_to_string(&ids_path)
        .with_context(|| format!("cannot read {} (run without --reuse)", ids_path.display()))?
        .lines()
        .map(str::to_owned)
        .collect();
    ensure!(!ids.is_empty(), "{} holds no trace ids", ids_path.display());

    let mut server = Server::start(&threadline, &index_dir)?;
    let mut baseline = match &args.baseline {
        Some(binary) => {
            let copy = args.dir.join("index-baseline");
            if !copy.exists() {
                copy_dir(&index_dir, &copy)?;
            }
            Some(Server::start(binary, &copy)?)
        }
        None => None,
    };
    let client = reqwest::blocking::Client::new();
    let get = |server: &Server, path: &str| -> anyhow::Result<(Duration, Value)> {
        let started = Instant::now();
        let response = client.get(format!("http://{}{path}", server.addr)).send()?;
        let status = response.status();
        let body = response.bytes()?;
        let took = started.elapsed();
        ensure!(status.is_success(), "GET {path}: {status}");
        Ok((took, serde_json::from_slice(&body)?))
    };

    // The first pass is cold for the analysis (an operation's p50 is computed once per 30 s).
    // Per build (measured, baseline): the timings of each endpoint.
    let mut timings: [[Timings; 2]; 2] = Default::default();
    let mut cpu_start = [Duration::ZERO; 2];
    let mut analyses = BTreeMap::new();
    let mut asked = 0usize;
    for pass in 0..=args.reps {
        if pass == 1 {
            cpu_start = [
                server.cpu(),
                baseline.as_ref().map_or(Duration::ZERO, Server::cpu),
            ];
        }
        for id in &ids {
            // Which build goes first alternates, so neither always finds the other's caches warm.
            let mut builds = vec![(0, &server)];
            if let Some(b) = &baseline {
                builds.insert(asked % 2, (1, b));
            }
            asked += 1;
            for (build, server) in builds {
                let (took, trace) = get(server, &format!("/api/v1/traces/{id}"))?;
                timings[build][0].add(pass, took);
                let (took, j) = get(server, &format!("/api/traces/{id}"))?;
                timings[build][1].add(pass, took);
                let spans = trace["spans"].as_array().map_or(0, Vec::len);
                let jaeger_spans = j["data"][0]["spans"].as_array().map_or(0, Vec::len);
                ensure!(
                    spans == jaeger_spans,
                    "trace {id}: {spans} spans natively, {jaeger_spans} from the Jaeger API"
                );
                if pass == 0 {
                    // Both builds must find the same trace: their answers are compared, not
                    // only their times. `--dump` writes the measured build's analyses.
                    if let Some((other_spans, _)) = analyses.get(id) {
                        ensure!(
                            *other_spans == spans,
                            "trace {id}: {spans} spans from one build, {other_spans} from the other"
                        );
                    }
                    if build == 0 || !analyses.contains_key(id) {
                        analyses.insert(id.clone(), (spans, trace["analysis"].clone()));
                    }
                }
            }
        }
    }
    let cpu = [
        server.cpu().saturating_sub(cpu_start[0]),
        baseline
            .as_ref()
            .map_or(Duration::ZERO, Server::cpu)
            .saturating_sub(cpu_start[1]),
    ];
    let status = get(&server, "/api/v1/services").map(|_| ());
    server.stop();
    if let Some(b) = &mut baseline {
        b.stop();
    }
    status?;

    if let Some(path) = &args.dump {
        let mut out = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        for (id, (_, analysis)) in &analyses {
            writeln!(
                out,
                "{}",
                serde_json::json!({"trace_id": id, "analysis": analysis})
            )?;
        }
    }
    let linked = analyses
        .values()
        .map(|(_, analysis)| analysis)
        .flat_map(|a| a["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| CROSS_TRACE.contains(&f["kind"].as_str().unwrap_or("")))
        .count();

    let index_mb = dir_size(&index_dir) as f64 / 1e6;
    println!(
        "{} trace ids ({} cross-trace findings among them), index {index_mb:.0} MB at {}, {} timed passes",
        ids.len(),
        linked,
        index_dir.display(),
        args.reps
    );
    println!();
    let warm_requests = (ids.len() * args.reps * 2).max(1) as f64;
    println!(
        "| build | endpoint | first pass p50 | first pass max | p50 | p99 | server CPU per request | target |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let builds = if baseline.is_some() { 2 } else { 1 };
    for (build, name) in ["measured", "baseline"]
        .into_iter()
        .enumerate()
        .take(builds)
    {
        for (endpoint, t) in [
            "`/api/v1/traces/{id}` (with analysis)",
            "`/api/traces/{id}` (Jaeger, no analysis)",
        ]
        .into_iter()
        .zip(&timings[build])
        {
            println!(
                "| {name} | {endpoint} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | p50 ≤ {TARGET_P50_MS} ms, p99 ≤ {TARGET_P99_MS} ms |",
                percentile_ms(&t.first, 0.5),
                percentile_ms(&t.first, 1.0),
                percentile_ms(&t.warm, 0.5),
                percentile_ms(&t.warm, 0.99),
                cpu[build].as_secs_f64() * 1e3 / warm_requests,
            );
        }
    }
    Ok(())
}

#[derive(Default)]
struct Timings {
    first: Vec<Duration>,
    warm: Vec<Duration>,
}

impl Timings {
    fn add(&mut self, pass: usize, took: Duration) {
        if pass == 0 {
            self.first.push(took);
        } else {
            self.warm.push(took);
        }
    }
}

/// Simulates `args.mb` of traffic, ingests it into an empty `index_dir` and writes the ids to
/// look up into `ids_path`.
fn build_index(
    args: &Args,
    threadline: &Path,
    index_dir: &Path,
    ids_path: &Path,
) -> anyhow::Result<()> {
    let sim_dir = args.dir.join("sim");
    let config = SimConfig {
        seed: args.seed,
        target_bytes: Some((args.mb * 1e6) as u64),
        ..SimConfig::default()
    };
    let started = Instant::now();
    let truth = checkout_sim::generate(&config, &sim_dir)
        .with_context(|| format!("cannot write {}", sim_dir.display()))?;
    eprintln!(
        "simulated {:.1} MB ({} spans, {} logs) in {:.1} s",
        truth.totals.bytes as f64 / 1e6,
        truth.totals.spans,
        truth.totals.logs,
        started.elapsed().as_secs_f64()
    );
    if index_dir.exists() {
        std::fs::remove_dir_all(index_dir)
            .with_context(|| format!("cannot remove {}", index_dir.display()))?;
    }
    let started = Instant::now();
    let output = Command::new(threadline)
        .arg("--index")
        .arg(index_dir)
        .args(["ingest", "--json"])
        .arg(sim_dir.join("spans"))
        .arg(sim_dir.join("logs"))
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", threadline.display()))?;
    ensure!(
        output.status.success(),
        "threadline ingest failed: {}",
        output.status
    );
    let summary: Value = serde_json::from_slice(&output.stdout)
        .context("threadline ingest --json printed no JSON")?;
    eprintln!(
        "ingested {} records in {:.1} s",
        summary["records"],
        started.elapsed().as_secs_f64()
    );
    if args.drop_input {
        std::fs::remove_dir_all(&sim_dir)
            .with_context(|| format!("cannot remove {}", sim_dir.display()))?;
    }
    let ids = pick_ids(&truth, args.random_ids, args.cross_trace_ids, args.seed);
    let text: String = ids.iter().map(|id| format!("{id:032x}\n")).collect();
    std::fs::write(ids_path, text).with_context(|| format!("cannot write {}", ids_path.display()))
}

/// `random` ids drawn uniformly, then the first `cross` (in id order, not yet drawn) whose
/// ground truth holds a finding that links to another trace.
fn pick_ids(truth: &GroundTruth, random: usize, cross: usize, seed: u64) -> Vec<u128> {
    let all: Vec<u128> = truth.traces.keys().copied().collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ids: Vec<u128> = Vec::new();
    while ids.len() < random.min(all.len()) {
        let id = all[rng.usize(..all.len())];
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let linked = truth
        .traces
        .iter()
        .filter(|(id, t)| {
            !ids.contains(id) && t.problems.iter().any(|p| CROSS_TRACE.contains(&p.kind))
        })
        .map(|(id, _)| *id)
        .take(cross)
        .collect::<Vec<_>>();
    ids.extend(linked);
    ids
}

/// `threadline serve` on a loopback port of the system's choosing, stopped on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(threadline: &Path, index_dir: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(threadline)
            .arg("--index")
            .arg(index_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", threadline.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("threadline serve ended before it listened");
            };
            let line = line?;
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                break url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server { child, addr })
    }

    /// The server's CPU time so far (user + system, every thread; zero where `/proc` is not).
    fn cpu(&self) -> Duration {
        process_cpu(self.child.id()).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mb: 500.0,
        dir: std::env::temp_dir().join("threadline-lookup-bench"),
        seed: 13,
        random_ids: 30,
        cross_trace_ids: 10,
        reps: 5,
        reuse: false,
        drop_input: false,
        dump: None,
        threadline: None,
        baseline: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mb" => args.mb = value()?.parse().context("--mb")?,
            "--dir" => args.dir = value()?.into(),
            "--seed" => args.seed = value()?.parse().context("--seed")?,
            "--random-ids" => args.random_ids = value()?.parse().context("--random-ids")?,
            "--cross-trace-ids" => {
                args.cross_trace_ids = value()?.parse().context("--cross-trace-ids")?
            }
            "--reps" => args.reps = value()?.parse().context("--reps")?,
            "--reuse" => args.reuse = true,
            "--drop-input" => args.drop_input = true,
            "--dump" => args.dump = Some(value()?.into()),
            "--threadline" => args.threadline = Some(value()?.into()),
            "--baseline" => args.baseline = Some(value()?.into()),
            "-h" | "--help" => {
                println!(
                    "lookup_bench [--mb 500] [--dir DIR] [--seed 13] [--random-ids 30] \
                     [--cross-trace-ids 10] [--reps 5] [--reuse] [--drop-input] [--dump FILE] \
                     [--threadline PATH] [--baseline PATH]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(args)
}
