//! The subcommands: each opens the index, calls the library, and prints text or JSON.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use index::{AggRequest, Batch, Index, IndexLock, SearchRequest, Writer, WriterConfig};
use indicatif::{ProgressBar, ProgressStyle};
use model::TraceRef;
use serde_json::{Value, json};

use crate::ingest::{self, Options, Stats};
use crate::term::Term;
use crate::{AggArgs, CheckArgs, DemoArgs, IngestArgs, SearchArgs, TraceArgs, timespec, waterfall};

/// Warnings printed to stderr per run; the rest are only counted.
const MAX_PRINTED_WARNINGS: u64 = 20;

pub fn ingest(index_dir: &Path, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let files = ingest::collect_files(&args.paths)?;
    let options = Options {
        service: args.service,
        patterns: args.patterns,
    };
    // One writer per index: refuse before anything is touched.
    let lock = IndexLock::acquire(index_dir)?;
    let started = Instant::now();
    let stats = ingest_files(&lock, &files, &options, !args.json)?;
    let took_ms = started.elapsed().as_millis() as u64;
    if args.json {
        print_json(&json!({
            "files": stats.files, "records": stats.records, "spans": stats.spans, "logs": stats.logs,
            "unparsed": stats.unparsed, "warnings": stats.warnings, "took_ms": took_ms,
        }));
    } else {
        let mb = stats.bytes as f64 / 1e6;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "indexed {} records ({} spans, {} logs, {} unparsed) from {} files, {mb:.1} MB in {:.2}s ({:.1} MB/s); {} warnings",
            stats.records,
            stats.spans,
            stats.logs,
            stats.unparsed,
            stats.files,
            secs,
            mb / secs,
            stats.warnings
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Decodes and indexes `files` into the locked index, committing at the end. Shows a progress
/// bar on a terminal.
pub fn ingest_files(
    lock: &IndexLock,
    files: &[std::path::PathBuf],
    options: &Options,
    progress: bool,
) -> anyhow::Result<Stats> {
    let index_dir = lock.dir();
    let index = Index::open_or_create(index_dir).map_err(|e| cannot_open(index_dir, e))?;
    let writer =
        Writer::start(&index, bulk_writer_config()).context("cannot start the index writer")?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = if progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut stats = Stats::default();
    let mut printed = 0u64;
    bar.set_message(format!("{} files", files.len()));
    let mut sink = |records| {
        writer
            .blocking_send(Batch::new(records, Vec::new()))
            .context("nothing of this run was committed")
    };
    let mut on_warning = |source: &str, w: &decode::Warning| {
        printed += 1;
        if printed <= MAX_PRINTED_WARNINGS {
            bar.suspend(|| eprintln!("warning: {source} at byte {}: {}", w.offset, w.message));
        }
    };
    ingest::decode_side_by_side(
        files,
        ingest::SIDE_BY_SIDE_ROUND,
        options,
        &mut stats,
        &mut sink,
        &mut on_warning,
        &|n| bar.inc(n),
    )?;
    bar.finish_and_clear();
    if stats.warnings > MAX_PRINTED_WARNINGS {
        eprintln!(
            "... and {} more warnings",
            stats.warnings - MAX_PRINTED_WARNINGS
        );
    }
    writer
        .blocking_flush()
        .context("the commit failed; nothing of this run was committed")?;
    writer.shutdown().context("the index writer failed")?;
    Ok(stats)
}

/// A bulk load's segments of more than this many records are left unmerged: it flushes segments
/// of 250k–600k records (two indexing threads, 128 MiB each), reads its files side by side so
/// that each holds whole traces, and merging them would cost a fifth of a large load's CPU and
/// its peak memory (docs/BENCHMARKS.md). A server opening the index later merges them as its
/// own policy says.
const BULK_MAX_MERGE_DOCS: usize = 100_000;

/// The writer of a one-shot bulk load (measurements in docs/BENCHMARKS.md).
fn bulk_writer_config() -> WriterConfig {
    WriterConfig {
        // One commit, at the end: `ingest` has no checkpoints to resume from, and each commit
        // would cut every indexing thread's segment short (more, smaller segments to merge).
        commit_interval: std::time::Duration::from_secs(24 * 3600),
        commit_records: usize::MAX,
        commit_bytes: usize::MAX,
        // Decoding outruns indexing: a short queue bounds the decoded records held in memory
        // (with the default 64 batches of 4,096 records the peak RSS was 660 MiB, with 2 it is
        // under 300 MiB).
        queue_capacity: 2,
        // Two indexing threads, each flushing a segment per 128 MiB: 250 MB of input makes two
        // segments and no merge.
        memory_budget: 256 << 20,
        num_threads: 2,
        max_merge_docs: BULK_MAX_MERGE_DOCS,
        ..WriterConfig::default()
    }
}

pub fn trace(index_dir: &Path, args: TraceArgs) -> anyhow::Result<ExitCode> {
    let Some(trace_json) = analysed_trace(index_dir, &args)? else {
        return Ok(ExitCode::from(1));
    };
    if args.json {
        print_json(&trace_json);
    } else {
        print!("{}", waterfall::render(&trace_json, Term::stdout()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `threadline explain ID`: the findings only, with their evidence; exit 1 when there are none.
pub fn explain(index_dir: &Path, args: TraceArgs) -> anyhow::Result<ExitCode> {
    let Some(trace_json) = analysed_trace(index_dir, &args)? else {
        return Ok(ExitCode::from(1));
    };
    let findings = &trace_json["analysis"]["findings"];
    if args.json {
        print_json(&serde_json::json!({
            "trace_id": trace_json["trace_id"],
            "findings": findings,
        }));
    } else {
        print!(
            "{}",
            waterfall::render_findings(&trace_json, Term::stdout(), true)
        );
    }
    let found = findings.as_array().is_some_and(|f| !f.is_empty());
    Ok(ExitCode::from(if found { 0 } else { 1 }))
}

/// The Trace JSON with the index-backed analysis; `None` (after saying so) when not found.
fn analysed_trace(index_dir: &Path, args: &TraceArgs) -> anyhow::Result<Option<serde_json::Value>> {
    let index = open_existing(index_dir)?;
    let trace_ref = TraceRef::parse_any(&args.trace_id)
        .with_context(|| format!("{:?} is not a trace id", args.trace_id))?;
    let Some(trace_id) = trace_ref
        .full()
        .or_else(|| model::TraceId::from_u128(u128::from(trace_ref.low64())))
    else {
        bail!("{:?} is not a trace id", args.trace_id);
    };
    let Some(trace) = index.trace(trace_id)? else {
        eprintln!("trace {trace_id} not found in {}", index_dir.display());
        return Ok(None);
    };
    let options = analysis::Options {
        adjust_clock_skew: args.adjust_clock_skew,
        ..analysis::Options::default()
    };
    let analysis = index.analyze(&trace, &options);
    Ok(Some(trace.into_json_with(&analysis)))
}

pub fn search(index_dir: &Path, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let index = open_existing(index_dir)?;
    let now_ns = timespec::now_ns();
    let range = args.range.resolve(now_ns)?;
    if args.traces {
        return search_traces(&index, &args, range, now_ns);
    }
    let response = index.search(&SearchRequest {
        query: &args.query,
        from_ns: range.from_ns,
        to_ns: range.to_ns,
        limit: args.limit,
        cursor: args.cursor.as_deref(),
        now_ns: Some(now_ns),
    })?;
    if args.json {
        print_json(&response.to_json());
    } else {
        let mut out = std::io::stdout().lock();
        let service_width = response
            .hits
            .iter()
            .map(|h| h["service"].as_str().unwrap_or("").chars().count())
            .max()
            .unwrap_or(0);
        let term = Term::stdout();
        for hit in &response.hits {
            let _ = writeln!(out, "{}", hit_line(hit, service_width, term));
        }
        eprintln!(
            "{} of {} matches ({} ms)",
            response.hits.len(),
            response.total,
            response.took_ms
        );
    }
    Ok(found(response.total != 0))
}

/// The percentiles `agg --stats` prints (the HTTP API's `stats=true` gives the same).
const STATS_PERCENTILES: [f64; 4] = [50.0, 90.0, 95.0, 99.0];

/// `search --traces`: one row per trace with a matching record.
fn search_traces(
    index: &Index,
    args: &SearchArgs,
    range: timespec::Range,
    now_ns: i64,
) -> anyhow::Result<ExitCode> {
    let sort: index::TraceSort = args.sort.parse().context("--sort")?;
    let response = index.list_traces(&index::TraceListRequest {
        query: &args.query,
        from_ns: range.from_ns,
        to_ns: range.to_ns,
        limit: args.limit,
        sort,
        now_ns: Some(now_ns),
    })?;
    if args.json {
        print_json(&response.to_json());
    } else {
        let mut out = std::io::stdout().lock();
        for row in &response.traces {
            let start = decode::time::format_rfc3339_ns(row.start_ns);
            let errors = if row.error_count > 0 {
                let s = if row.error_count == 1 { "" } else { "s" };
                format!(" {} error{s}", row.error_count)
            } else {
                String::new()
            };
            let root: String = format!("{}: {}", row.root_service, row.root_name)
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            let _ = writeln!(
                out,
                "{start:<30} {} {:>9} {:>4} spans {:>4} logs  {root}{errors}",
                row.trace_id,
                waterfall::format_duration(row.duration_ns),
                row.span_count,
                row.log_count,
            );
        }
        let more = if response.truncated {
            " (more matched than were summarised; narrow the query or the time range)"
        } else {
            ""
        };
        eprintln!(
            "{} of {} traces ({} ms){more}",
            response.traces.len(),
            response.total,
            response.took_ms
        );
    }
    Ok(found(response.total != 0))
}

pub fn agg(index_dir: &Path, args: AggArgs) -> anyhow::Result<ExitCode> {
    if args.by.is_empty() && args.interval.is_none() {
        bail!("agg needs --by FIELD[,FIELD] and/or --interval DURATION");
    }
    let index = open_existing(index_dir)?;
    let now_ns = timespec::now_ns();
    let range = args.range.resolve(now_ns)?;
    let interval = args
        .interval
        .as_deref()
        .map(|i| timespec::parse_duration(i).with_context(|| format!("--interval {i:?}")))
        .transpose()?
        .map(|ns| std::time::Duration::from_nanos(ns.max(0) as u64));
    let count: index::CountMode = args.count.parse().context("--count")?;
    let response = index.aggregate(&AggRequest {
        query: &args.query,
        from_ns: range.from_ns,
        to_ns: range.to_ns,
        now_ns: Some(now_ns),
        by: args.by.clone(),
        interval,
        size: args.size,
        duration_stats: args.stats,
        duration_percentiles: if args.stats {
            STATS_PERCENTILES.to_vec()
        } else {
            Vec::new()
        },
        count,
    })?;
    let json = response.to_json();
    if args.json {
        print_json(&json);
    } else {
        let mut out = std::io::stdout().lock();
        for bucket in json["buckets"].as_array().into_iter().flatten() {
            let key: Vec<String> = bucket["key"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect();
            let stats = match &bucket["duration_ns"] {
                Value::Object(d) => {
                    let fmt = |k: &str| {
                        d.get(k)
                            .and_then(Value::as_f64)
                            .map(|v| waterfall::format_duration(v as i64))
                            .unwrap_or_default()
                    };
                    let cells: Vec<String> = ["min", "avg", "p50", "p90", "p95", "p99", "max"]
                        .iter()
                        .map(|k| format!("{k} {}", fmt(k)))
                        .collect();
                    format!("  {}", cells.join(" "))
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "{:>8}  {}{stats}", bucket["count"], key.join("  "));
        }
        let what = match count {
            index::CountMode::Records => "matching records",
            index::CountMode::Traces => "traces with a matching record",
        };
        eprintln!("{} {what} ({} ms)", response.total, response.took_ms);
    }
    Ok(found(response.total != 0))
}

/// Exit 0 when something was found, 1 when nothing was (as grep does).
pub(crate) fn found(anything: bool) -> ExitCode {
    if anything {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Marks a folder the demo made, so a later demo may wipe it and nothing else.
const DEMO_MARKER: &str = ".threadline-demo";

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let root = args
        .data
        .clone()
        .unwrap_or_else(|| Path::new("data").join("demo"));
    // The port, then the index lock, before anything is deleted: a second demo leaves the
    // running one and its data alone.
    let listener = if args.once {
        None
    } else {
        Some(std::net::TcpListener::bind(args.listen).with_context(|| {
            format!(
                "cannot listen on {} (is another threadline running? pass --listen ADDR)",
                args.listen
            )
        })?)
    };
    if root.exists() && !root.join(DEMO_MARKER).exists() {
        bail!(
            "{} exists and was not made by `threadline demo`; pass --data DIR",
            root.display()
        );
    }
    let traffic = root.join("traffic");
    let index_dir = root.join("index");
    let lock = IndexLock::acquire(&index_dir)?;
    clear_demo(&root, &index_dir)?;
    std::fs::create_dir_all(&traffic)
        .with_context(|| format!("cannot create {}", traffic.display()))?;
    std::fs::write(root.join(DEMO_MARKER), "made by threadline demo\n")?;

    // The last hour of checkout traffic: something to look at from the start. Requests started
    // near the end of the window finish (and log) up to a minute or two later, so the window
    // ends a few minutes ago and no history record lies in the future.
    let window_s = 3600.0;
    let now_ns = timespec::now_ns();
    let history = checkout_sim::SimConfig {
        seed: args.seed,
        traces: args.traces,
        traces_per_second: args.traces as f64 / window_s,
        start_ns: now_ns - ((window_s + 180.0) * 1e9) as i64,
        ..checkout_sim::SimConfig::default()
    };
    eprintln!(
        "simulating {} checkout requests of the last hour into {} ...",
        args.traces,
        traffic.display()
    );
    let truth = checkout_sim::generate(&history, &traffic).context("the simulator failed")?;
    // Beside the traffic, not in it: `ingest data/demo/traffic` indexes traffic only.
    let truth_path = root.join("ground_truth.json");
    checkout_sim::write_ground_truth(&truth, &truth_path)
        .with_context(|| format!("cannot write {}", truth_path.display()))?;
    // A failing Stripe call: the request the demo shows first.
    const FAILED_STRIPE_CALL: &str = "kind = span AND name = stripe_api_call AND status = ERROR";

    /// The trace id of a failing Stripe call, and the waterfall of that request.
    fn example_trace(index: &Index, now_ns: i64) -> anyhow::Result<Option<(String, String)>> {
        let example = index.search(&SearchRequest {
            query: FAILED_STRIPE_CALL,
            limit: 1,
            now_ns: Some(now_ns),
            ..SearchRequest::default()
        })?;
        let Some(id) = example.hits.first().and_then(|h| h["trace_id"].as_str()) else {
            return Ok(None);
        };
        let Some(trace) = model::TraceId::from_hex(id)
            .ok()
            .and_then(|id| index.trace(id).transpose())
            .transpose()?
        else {
            return Ok(None);
        };
        Ok(Some((
            id.to_owned(),
            waterfall::render(
                &trace.to_json_with(&index.analyze(&trace, &analysis::Options::default())),
                Term::stdout(),
            ),
        )))
    }

    if args.once {
        // Index the history once, show one request, exit.
        let files = ingest::collect_files(&[traffic.join("spans"), traffic.join("logs")])?;
        let started = Instant::now();
        let stats = ingest_files(&lock, &files, &Options::default(), true)?;
        drop(lock);
        eprintln!(
            "indexed {} spans and {} logs from {} files in {:.2}s\n",
            stats.spans,
            stats.logs,
            stats.files,
            started.elapsed().as_secs_f64()
        );
        let index = open_existing(&index_dir)?;
        let example = example_trace(&index, now_ns)?;
        if let Some((_, waterfall)) = &example {
            println!(
                "A checkout whose Stripe call failed — every span and log line of that request:\n"
            );
            print!("{waterfall}");
        }
        let idx = index_dir.display();
        let id = example.map_or_else(|| "TRACE_ID".to_owned(), |(id, _)| id);
        let me = self_command();
        println!(
            "\nTry:\n  {me} --index {idx} trace {id}\n  {me} --index {idx} search 'decline_code = \"do_not_honor\"' --since 2h\n  {me} --index {idx} agg 'exists(decline_code)' --by decline_code --count traces\n  {me} --index {idx} agg 'kind = span AND name = stripe_api_call AND status = ERROR' --interval 10m"
        );
        return Ok(ExitCode::SUCCESS);
    }

    // Live: the simulator keeps appending, `serve` tails the folder.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = checkout_sim::SimConfig {
        // Another seed than the history's, so live requests do not repeat its trace ids.
        seed: args.seed ^ now_ns as u64,
        // As fast as the history: a histogram over the last hours shows no cliff at "now".
        traces_per_second: args.rate.unwrap_or(history.traces_per_second),
        // From where the history's arrivals end (a few minutes ago): no gap before "now". At
        // another `--rate` those minutes would be written at that rate at once: start now.
        live_from_ns: args
            .rate
            .is_none()
            .then(|| history.start_ns + (window_s * 1e9) as i64),
        ..checkout_sim::SimConfig::default()
    };
    let simulator = {
        let (traffic, stop) = (traffic.clone(), stop.clone());
        std::thread::Builder::new()
            .name("checkout-sim".into())
            .spawn(move || checkout_sim::run_live(&live, &traffic, stop))
            .context("cannot start the simulator")?
    };
    let mut config = crate::config::Config::default();
    config.index.dir = index_dir.clone();
    config.server.listen = args.listen;
    config.server.otlp_grpc_listen = args.otlp_grpc_listen;
    config.sources = vec![crate::config::SourceSection {
        include: ["spans", "logs"]
            .iter()
            .map(|d| traffic.join(d).join("*").to_string_lossy().into_owned())
            .collect(),
        ..crate::config::SourceSection::default()
    }];
    let traffic_shown = traffic.display().to_string();
    let idx = index_dir.display().to_string();
    let history_records = truth.totals.spans + truth.totals.logs;
    // Without a failing Stripe call in the history (few --traces), any failing request.
    let fallback = truth
        .traces
        .iter()
        .find(|(_, t)| t.error)
        .or_else(|| truth.traces.iter().next())
        .map(|(id, _)| format!("{id:032x}"));
    let show_examples = move |started: crate::serve::Started| {
        // Wait until the history is indexed, then show one request and what to try.
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        while started.index.num_docs() < history_records && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let example = example_trace(&started.index, timespec::now_ns())
            .ok()
            .flatten()
            .or_else(|| {
                let id = fallback?;
                let index = &started.index;
                let trace = index.trace(model::TraceId::from_hex(&id).ok()?).ok()??;
                let analysis = index.analyze(&trace, &analysis::Options::default());
                Some((
                    id,
                    waterfall::render(&trace.to_json_with(&analysis), Term::stdout()),
                ))
            });
        let url = &started.url;
        let mut out = std::io::stdout().lock();
        if let Some((_, waterfall)) = &example {
            let _ = writeln!(
                out,
                "\nA failing checkout — every span and log line of that request:\n"
            );
            let _ = write!(out, "{waterfall}");
        }
        let id = example.map_or_else(|| "TRACE_ID".to_owned(), |(id, _)| id);
        let me = self_command();
        let _ = writeln!(
            out,
            "\nthreadline is live: the simulator appends checkout traffic to {traffic_shown}; every line is searchable within a second.\nOpen {url}/ in a browser, or try:\n  curl -s {url}/api/v1/traces/{id}\n  curl -sG {url}/api/v1/search --data-urlencode 'q=decline_code = \"do_not_honor\"' -d limit=5\n  curl -sG {url}/api/v1/aggregate --data-urlencode 'q=exists(decline_code)' -d by=decline_code -d count=traces\n  curl -sG {url}/api/v1/aggregate --data-urlencode 'q={FAILED_STRIPE_CALL}' -d interval=10m\n  curl -sG {url}/api/v1/search --data-urlencode 'q=timestamp > now() - 10s' -d limit=3\n  {me} --index {idx} trace {id}\n  {me} tail 'level >= warn' --server {url}\nCtrl-C stops."
        );
    };
    let served = crate::serve::run(
        config,
        crate::serve::Prepared {
            lock: Some(lock),
            listener,
            after_start: Some(Box::new(show_examples)),
        },
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let simulated = simulator.join();
    served?;
    match simulated {
        Ok(Ok(stats)) => eprintln!(
            "the simulator wrote {} live requests ({} spans, {} logs)",
            stats.requests, stats.spans, stats.logs
        ),
        Ok(Err(e)) => return Err(anyhow::Error::new(e).context("the simulator failed")),
        Err(_) => bail!("the simulator panicked"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Empties a previous demo's folder, keeping the index lock file this process holds (deleting
/// it would let another process lock a new file of the same name).
fn clear_demo(root: &Path, index_dir: &Path) -> anyhow::Result<()> {
    let remove = |path: &Path| {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.with_context(|| format!("cannot clear {}", path.display()))
    };
    for entry in
        std::fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))?
    {
        let path = entry?.path();
        if path != index_dir {
            remove(&path)?;
        }
    }
    for entry in std::fs::read_dir(index_dir)
        .with_context(|| format!("cannot list {}", index_dir.display()))?
    {
        let path = entry?.path();
        if path.file_name() != Some(std::ffi::OsStr::new(index::LOCK_FILE)) {
            remove(&path)?;
        }
    }
    Ok(())
}

/// `threadline check`: every file of every committed segment against its checksum.
pub fn check(index_dir: &Path, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = index::check(index_dir)
        .with_context(|| format!("cannot check the index {}", index_dir.display()))?;
    if args.json {
        print_json(&json!({
            "ok": report.damaged.is_empty(),
            "segments": report.segments,
            "files": report.files,
            "docs": report.docs,
            "damaged": report.damaged.iter().map(|d| json!({
                "segment": d.segment,
                "file": d.file.to_string_lossy(),
                "problem": d.problem,
            })).collect::<Vec<_>>(),
        }));
    } else {
        for damaged in &report.damaged {
            eprintln!(
                "damaged: segment {} file {}: {}",
                damaged.segment,
                index_dir.join(&damaged.file).display(),
                damaged.problem
            );
        }
        eprintln!(
            "{}: {} segments, {} files checked, {} records, {} damaged",
            index_dir.display(),
            report.segments,
            report.files,
            report.docs,
            report.damaged.len()
        );
    }
    Ok(if report.damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// One hit per line, in columns: time, kind, service (padded to `service_width`), trace id,
/// then a span's name, duration and ERROR (OTel's default UNSET and OK show nothing, as in
/// Jaeger) or a log's level and body. On a terminal: colors, and the time to the millisecond.
fn hit_line(hit: &Value, service_width: usize, term: Term) -> String {
    let kind = hit["kind"].as_str().unwrap_or("?");
    let time = hit["start"].as_str().or(hit["time"].as_str()).unwrap_or("");
    let trace = hit["trace_id"].as_str().unwrap_or("-");
    let service = hit["service"].as_str().unwrap_or("");
    let text = crate::follow::record_text(hit, term.color);
    // Padded before painting: escape codes are not columns.
    let service = crate::follow::paint(
        term.color,
        crate::follow::service_color(service),
        &format!("{service:<service_width$}"),
    );
    if term.width.is_some() {
        // A person reads it: `2026-12-03 21:44:16.931Z` (millisecond; the JSON has all of it).
        let short = match (time.get(..10), time.get(11..23)) {
            (Some(day), Some(clock)) if time.len() > 23 && time.ends_with('Z') => {
                format!("{day} {clock}Z")
            }
            _ => time.to_owned(),
        };
        format!("{short:<24} {kind:<4} {service} {trace:<32} {text}")
    } else {
        // RFC 3339 with nanoseconds is 30 characters; shorter ones are padded to line up.
        format!("{time:<30} {kind:<4} {service} {trace:<32} {text}")
    }
}

/// How the user runs this binary from where they are: `threadline` when that is it on the PATH,
/// `cargo run --release --` under cargo, else its path.
fn self_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "threadline".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::canonicalize(dir.join("threadline"))
                .is_ok_and(|found| std::fs::canonicalize(&exe).is_ok_and(|exe| exe == found))
        })
    });
    if on_path {
        return "threadline".into();
    }
    // `cargo run` sets CARGO for the program it runs.
    if std::env::var_os("CARGO").is_some() {
        let release = exe.components().any(|c| c.as_os_str() == "release");
        return if release {
            "cargo run --release --".into()
        } else {
            "cargo run --".into()
        };
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    match exe.strip_prefix(&cwd) {
        Ok(relative) => format!("./{}", relative.display()),
        Err(_) => exe.display().to_string(),
    }
}

pub fn open_existing(index_dir: &Path) -> anyhow::Result<Index> {
    match Index::open(index_dir) {
        Ok(index) => Ok(index),
        Err(index::Error::NoIndex { .. }) => bail!(
            "no index at {} (run `threadline ingest PATH` first, or pass --index DIR)",
            index_dir.display()
        ),
        Err(e) => Err(cannot_open(index_dir, e)),
    }
}

/// An index that does not open, with what to do about it.
pub fn cannot_open(index_dir: &Path, err: index::Error) -> anyhow::Error {
    match err {
        // The message says it all.
        e @ (index::Error::MissingMeta { .. } | index::Error::OtherVersion { .. }) => {
            anyhow::Error::new(e)
        }
        e @ (index::Error::Damaged { .. } | index::Error::Open { .. }) => anyhow::Error::new(e)
            .context(format!(
                "cannot open index {} (`threadline check --index {0}` tells which file is damaged)",
                index_dir.display()
            )),
        e => anyhow::Error::new(e).context(format!("cannot open index {}", index_dir.display())),
    }
}

pub fn print_json(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}
