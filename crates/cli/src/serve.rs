//! `threadline serve`: the tailer, the decoder, the index writer and the HTTP server on one
//! tokio runtime, connected by bounded channels, with a graceful shutdown on SIGINT/SIGTERM.
//!
//! Exactly once: each batch of lines from the tailer becomes exactly one writer batch holding
//! all its records *and* its checkpoint, so a commit never holds a file's lines without its
//! position, or the reverse. On start the tailer resumes from the last commit's checkpoints; a
//! crash loses only what was not committed, and that is read again.
//!
//! Back-pressure: tailer → (`tail.queue_capacity` batches of ≤ `tail.batch_bytes`) → decoder →
//! (`index.queue_capacity` batches) → writer. When the writer falls behind, everything upstream
//! waits; nothing grows with the size of the files.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use decode::{Decoder, DecoderConfig, LineContext, Output};
use index::{Batch, Index, Writer, WriterConfig, WriterHandle};
use server::{AppState, Metrics, ServerConfig};
use tail::{TailBatch, TailConfig, Tailer};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::ServeArgs;
use crate::config::{Config, SourceSection};
use crate::timespec;

/// Decode warnings printed to stderr; later ones are only counted.
const MAX_PRINTED_WARNINGS: u64 = 20;
/// How long open HTTP connections (live tails) may keep the server up after a shutdown signal.
const SERVER_GRACE: Duration = Duration::from_secs(5);

/// What a caller of [`run`] learns once the server listens.
#[derive(Debug, Clone)]
pub struct Started {
    /// `http://ADDR` of the API.
    pub url: String,
    pub index: Index,
}

/// Runs with a hook once the server listens (the demo prints its examples from there).
pub type AfterStart = Box<dyn FnOnce(Started) + Send>;

/// `threadline serve`: the config file (if any), overridden by the flags.
pub fn command(index_dir: Option<&Path>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = index_dir {
        config.index.dir = dir.to_owned();
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(listen) = args.otlp_listen {
        config.server.otlp_listen = Some(listen);
    }
    if let Some(interval) = &args.commit_interval {
        let ns = timespec::parse_duration(interval)
            .with_context(|| format!("--commit-interval {interval:?}"))?;
        if ns <= 0 {
            bail!("--commit-interval must be more than 0");
        }
        config.index.commit_interval = Duration::from_nanos(ns as u64);
    }
    if let Some(max) = args.max_line_bytes {
        config.tail.max_line_bytes = max.max(1);
    }
    if !args.sources.is_empty() {
        config.sources = vec![SourceSection {
            include: args.sources,
            exclude: args.excludes,
            service: args.service,
            patterns: args.patterns,
        }];
    } else if !args.excludes.is_empty() || args.service.is_some() || !args.patterns.is_empty() {
        bail!("--exclude, --service and --pattern apply to --source globs; pass --source GLOB");
    }
    run(config, None)?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGINT or SIGTERM, then stops the tailer, indexes what it read, commits, and
/// stops the server. A second signal exits at once (what was not committed is read again on
/// the next start).
pub fn run(config: Config, after_start: Option<AfterStart>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("threadline")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, after_start))
}

async fn serve(config: Config, after_start: Option<AfterStart>) -> anyhow::Result<()> {
    // Before anything is announced: a signal right after "listening on" must be handled.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let sources: Vec<SourceSection> = config
        .sources
        .iter()
        .map(|s| absolute_source(s, &cwd))
        .collect();
    // The tailer cuts lines (OTLP/JSON ones at their own, larger limit): the decoder takes
    // every line it is given whole.
    let decoders = Decoders::new(
        &sources,
        config
            .tail
            .max_line_bytes
            .max(config.tail.max_otlp_line_bytes),
    )?;

    let dir = &config.index.dir;
    let index = Index::open_or_create(dir)
        .with_context(|| format!("cannot open index {}", dir.display()))?;
    let checkpoints: tail::Checkpoints = index
        .checkpoints()
        .with_context(|| format!("cannot read the checkpoints of {}", dir.display()))?
        .iter()
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect();
    let writer = Writer::start(&index, writer_config(&config)).with_context(|| {
        format!(
            "cannot start the index writer on {} (is another threadline writing it?)",
            dir.display()
        )
    })?;

    let state = AppState::new(index.clone(), writer.handle(), server_config(&config));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let listen = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let otlp_listener = match config.server.otlp_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (otlp_listen)"))?,
        ),
        None => None,
    };

    let (tail_tx, tail_rx) = mpsc::channel(config.tail.queue_capacity.max(1));
    let n_checkpoints = checkpoints.len();
    let tailer = Tailer::start(tail_config(&config, &sources), checkpoints, tail_tx)
        .context("cannot start the file tailer")?;
    let mut pipeline = {
        let writer = writer.handle();
        let metrics = state.metrics().clone();
        tokio::task::spawn_blocking(move || decode_loop(tail_rx, decoders, writer, metrics))
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    servers.push(tokio::spawn(server::serve(
        listener,
        state.clone(),
        stopped(stop_rx.clone()),
    )));
    let otlp_addr = match otlp_listener {
        Some(listener) => {
            let addr = listener.local_addr().ok();
            servers.push(tokio::spawn(server::serve(
                listener,
                state.clone(),
                stopped(stop_rx.clone()),
            )));
            addr
        }
        None => None,
    };

    let url = format!("http://{listen}");
    print_started(&config, &sources, &index, n_checkpoints, &url, otlp_addr);
    if let Some(hook) = after_start {
        let started = Started {
            url: url.clone(),
            index: index.clone(),
        };
        std::thread::Builder::new()
            .name("threadline-after-start".into())
            .spawn(move || hook(started))
            .context("cannot start a thread")?;
    }

    let mut failure = None;
    tokio::select! {
        _ = sigterm.recv() => eprintln!("SIGTERM: shutting down"),
        _ = sigint.recv() => eprintln!("\nSIGINT: shutting down"),
        ended = &mut pipeline => {
            failure = Some(match ended {
                Ok(Ok(())) => anyhow::anyhow!("the file tailer stopped"),
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!("the decoder panicked: {e}"),
            });
        }
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
        eprintln!("second signal: exiting now; lines not yet committed are read again next time");
        std::process::exit(130);
    });

    // Stop reading, index what was read, commit it, then stop answering.
    tokio::task::spawn_blocking(move || tailer.stop())
        .await
        .context("the tailer panicked")?;
    if failure.is_none() {
        match pipeline.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow::anyhow!("the decoder panicked: {e}")),
        }
    }
    if failure.is_none()
        && let Err(e) = writer.flush().await
    {
        failure = Some(anyhow::Error::new(e).context("the final commit failed"));
    }
    let _ = stop_tx.send(true);
    for server in servers {
        match tokio::time::timeout(SERVER_GRACE, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("warning: the HTTP server failed: {e}"),
            Ok(Err(e)) => eprintln!("warning: the HTTP server panicked: {e}"),
            Err(_) => eprintln!("warning: closing HTTP connections still open"),
        }
    }
    // Commits whatever the OTLP receiver took in meanwhile.
    let shutdown = tokio::task::spawn_blocking(move || writer.shutdown())
        .await
        .context("the index writer panicked")?;
    if let Some(e) = failure {
        return Err(e);
    }
    shutdown.context("the index writer failed")?;
    eprintln!("stopped; {} records in the index", index.num_docs());
    Ok(())
}

/// Turns tail batches into writer batches: one in, one out, the checkpoint with the records.
fn decode_loop(
    mut rx: mpsc::Receiver<TailBatch>,
    mut decoders: Decoders,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let mut out = Output::default();
    let mut n_warnings = 0u64;
    while let Some(batch) = rx.blocking_recv() {
        let decoder = decoders.get(batch.source_index, &batch.path);
        let read_time_ns = timespec::now_ns();
        for line in &batch.lines {
            let first = out.records.len();
            let cx = LineContext {
                source: &batch.path,
                offset: line.offset,
                read_time_ns,
            };
            decoder.decode_line(&line.bytes, &cx, &mut out);
            if line.truncated {
                // The tailer cut it (it never holds more than max_line_bytes of a line), so
                // the decoder cannot know: flag its records as the decoder would have.
                crate::ingest::mark_truncated(&mut out, first, line);
            }
        }
        for warning in out.warnings.drain(..) {
            n_warnings += 1;
            if n_warnings <= MAX_PRINTED_WARNINGS {
                eprintln!(
                    "warning: {} at byte {}: {}",
                    batch.path, warning.offset, warning.message
                );
            } else if n_warnings == MAX_PRINTED_WARNINGS + 1 {
                eprintln!("warning: more decode warnings are not printed");
            }
        }
        let records = std::mem::take(&mut out.records);
        if !records.is_empty() {
            metrics.count_ingest("file", records.len() as u64, 0);
        }
        writer
            .blocking_send(Batch::new(records, vec![batch.checkpoint]))
            .context("the index writer stopped")?;
    }
    Ok(())
}

/// A decoder per source and service: a source without a service names records after the
/// file, as `ingest` does.
struct Decoders {
    sources: Vec<(Option<String>, Vec<String>)>,
    max_line_bytes: usize,
    by_service: HashMap<(usize, String), Decoder>,
}

impl Decoders {
    fn new(sources: &[SourceSection], max_line_bytes: usize) -> anyhow::Result<Decoders> {
        for (i, source) in sources.iter().enumerate() {
            Decoder::new(DecoderConfig {
                patterns: source.patterns.clone(),
                ..DecoderConfig::default()
            })
            .with_context(|| format!("source #{}: invalid pattern", i + 1))?;
        }
        Ok(Decoders {
            sources: sources
                .iter()
                .map(|s| (s.service.clone(), s.patterns.clone()))
                .collect(),
            max_line_bytes,
            by_service: HashMap::new(),
        })
    }

    fn get(&mut self, source_index: usize, path: &str) -> &Decoder {
        let configured = self.sources.get(source_index);
        let service = configured
            .and_then(|(service, _)| service.clone())
            .unwrap_or_else(|| service_of(Path::new(path)));
        let max_line_bytes = self.max_line_bytes;
        self.by_service
            .entry((source_index, service))
            .or_insert_with_key(|(_, service)| {
                Decoder::new(DecoderConfig {
                    service: Some(service.clone()),
                    patterns: configured.map(|(_, p)| p.clone()).unwrap_or_default(),
                    max_line_bytes,
                })
                .expect("patterns were checked at start")
            })
    }
}

/// A file's service when its source names none: its name up to the first dot.
fn service_of(path: &Path) -> String {
    path.file_name()
        .map(|n| {
            n.to_string_lossy()
                .split('.')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Globs relative to the working directory made absolute, so origins and checkpoints do not
/// depend on where `serve` was started.
fn absolute_source(source: &SourceSection, cwd: &Path) -> SourceSection {
    let absolute = |glob: &String| {
        let trimmed = glob.trim();
        if Path::new(trimmed).is_absolute() {
            return trimmed.to_owned();
        }
        let relative = trimmed.strip_prefix("./").unwrap_or(trimmed);
        cwd.join(relative).to_string_lossy().into_owned()
    };
    SourceSection {
        include: source.include.iter().map(absolute).collect(),
        // A pattern without `/` matches file names wherever they are: leave it so.
        exclude: source
            .exclude
            .iter()
            .map(|g| {
                if g.contains('/') {
                    absolute(g)
                } else {
                    g.clone()
                }
            })
            .collect(),
        ..source.clone()
    }
}

fn tail_config(config: &Config, sources: &[SourceSection]) -> TailConfig {
    TailConfig {
        sources: sources
            .iter()
            .map(|s| tail::SourceConfig {
                include: s.include.clone(),
                exclude: s.exclude.clone(),
                service: s.service.clone(),
                patterns: s.patterns.clone(),
                format: None,
            })
            .collect(),
        sweep_interval: config.tail.sweep_interval,
        rotate_wait: config.tail.rotate_wait,
        max_line_bytes: config.tail.max_line_bytes,
        max_otlp_line_bytes: config.tail.max_otlp_line_bytes,
        max_open_files: config.tail.max_open_files,
        read_chunk: config.tail.read_chunk,
        max_buffered_bytes: config.tail.batch_bytes,
        backfill_gz: config.tail.backfill_gz,
        notify: config.tail.notify,
    }
}

fn writer_config(config: &Config) -> WriterConfig {
    WriterConfig {
        commit_interval: config.index.commit_interval,
        memory_budget: config.index.writer_memory,
        num_threads: config.index.writer_threads,
        queue_capacity: config.index.queue_capacity,
        ..WriterConfig::default()
    }
}

fn server_config(config: &Config) -> ServerConfig {
    let s = &config.server;
    ServerConfig {
        max_body_bytes: s.max_body_bytes,
        request_timeout: s.request_timeout,
        read_token: s.read_token.clone().filter(|t| !t.is_empty()),
        ingest_token: s.ingest_token.clone().filter(|t| !t.is_empty()),
        cors_origins: s.cors_origins.clone(),
        max_query_clauses: s.max_query_clauses,
        max_regex_len: s.max_regex_len,
        max_tail_streams: s.max_tail_streams,
        tail_poll_interval: s.tail_poll_interval,
        retry_after_s: s.retry_after_s,
        max_concurrent_ingest: s.max_concurrent_ingest,
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn print_started(
    config: &Config,
    sources: &[SourceSection],
    index: &Index,
    n_checkpoints: usize,
    url: &str,
    otlp: Option<SocketAddr>,
) {
    let dir: &PathBuf = &config.index.dir;
    eprintln!(
        "index {} ({} records; resuming {n_checkpoints} files from the last commit)",
        dir.display(),
        index.num_docs()
    );
    if sources.is_empty() {
        eprintln!("no files to tail (pass --source GLOB, or [[source]] in a --config file)");
    }
    for source in sources {
        let mut line = format!("tailing {}", source.include.join(" "));
        if !source.exclude.is_empty() {
            line.push_str(&format!(" (except {})", source.exclude.join(" ")));
        }
        if let Some(service) = &source.service {
            line.push_str(&format!(" as {service}"));
        }
        eprintln!("{line}");
    }
    if let Some(addr) = otlp {
        eprintln!("receiving OTLP/HTTP on http://{addr}/v1/traces and /v1/logs");
    }
    // Tests and scripts read the bound address from this line.
    eprintln!("listening on {url}");
    let auth = if config
        .server
        .read_token
        .as_deref()
        .is_some_and(|t| !t.is_empty())
    {
        " -H 'Authorization: Bearer <read_token>'"
    } else {
        ""
    };
    eprintln!(
        "open {url}/ in a browser, or try:\n  curl -sG{auth} {url}/api/v1/search --data-urlencode 'q=level >= warn' -d limit=5\n  curl -s {url}/healthz"
    );
}
