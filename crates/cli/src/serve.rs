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
//!
//! When an error pauses the writer (a full disk, too many open files), it rolls back what was
//! not committed and bumps its generation: the tailer and the decoder stop, and once the writer
//! resumes they start again from the committed checkpoints, so the rolled-back lines are read
//! again — nothing committed is lost, nothing is indexed twice. Queries keep answering meanwhile.
//!
//! One writer per index: the [`IndexLock`] is taken before the index is opened and before any
//! port is bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use decode::{Decoder, DecoderConfig, LineContext, Output};
use index::{Batch, Index, IndexLock, Writer, WriterConfig, WriterHandle};
use server::{AppState, Metrics, ServerConfig};
use tail::{TailBatch, TailConfig, Tailer, TailerHandle};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::ServeArgs;
use crate::config::{Config, SourceSection};
use crate::logging::banner;
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

/// What a caller of [`run`] may have done already: the demo takes the index lock and the port
/// before it regenerates its data, and hands them over.
#[derive(Default)]
pub struct Prepared {
    /// The lock of `config.index.dir`; taken by [`run`] when `None`.
    pub lock: Option<IndexLock>,
    /// Bound to `config.server.listen`; bound by [`run`] when `None`.
    pub listener: Option<std::net::TcpListener>,
    pub after_start: Option<AfterStart>,
}

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
    if let Some(listen) = args.otlp_grpc_listen {
        config.server.otlp_grpc_listen = Some(listen);
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
    run(config, Prepared::default())?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGINT or SIGTERM, then stops the tailer, indexes what it read, commits, and
/// stops the server. A second signal exits at once (what was not committed is read again on
/// the next start).
pub fn run(config: Config, prepared: Prepared) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("threadline")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, prepared))
}

async fn serve(config: Config, prepared: Prepared) -> anyhow::Result<()> {
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
    // One writer per index, before the index is touched or a port bound.
    let _lock = match prepared.lock {
        Some(lock) => lock,
        None => IndexLock::acquire(dir)?,
    };
    let index = Index::open_or_create(dir).map_err(|e| crate::commands::cannot_open(dir, e))?;
    let writer = Writer::start(&index, writer_config(&config))
        .with_context(|| format!("cannot start the index writer on {}", dir.display()))?;

    let state = AppState::new(index.clone(), writer.handle(), server_config(&config));
    let listener = match prepared.listener {
        Some(listener) => listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .context("cannot use the bound listener")?,
        None => tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?,
    };
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
    let grpc_listener = match config.server.otlp_grpc_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (otlp_grpc_listen)"))?,
        ),
        None => None,
    };

    let mut status = writer.subscribe();
    let mut generation = status.borrow_and_update().generation;
    let inputs = PipelineInputs {
        tail: tail_config(&config, &sources),
        tail_queue: config.tail.queue_capacity.max(1),
        index: index.clone(),
        writer: writer.handle(),
        metrics: state.metrics().clone(),
    };
    let (first, n_checkpoints) = inputs.start(generation, decoders)?;
    let mut pipeline = Some(first);
    let mut idle_decoders = None;

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
    let grpc_addr = match grpc_listener {
        Some(listener) => {
            let addr = listener.local_addr().ok();
            let (state, stop) = (state.clone(), stopped(stop_rx.clone()));
            servers.push(tokio::spawn(async move {
                server::serve_otlp_grpc(listener, state, stop)
                    .await
                    .map_err(std::io::Error::other)
            }));
            addr
        }
        None => None,
    };

    tokio::spawn(warm_lookups_loop(index.clone(), stop_rx.clone()));
    if !config.retention.policy().is_off() {
        tokio::spawn(retention_loop(
            writer.handle(),
            config.retention.clone(),
            stop_rx.clone(),
        ));
    }

    let url = format!("http://{listen}");
    // The demo prints hints of its own once it has data to point at.
    let hints = prepared.after_start.is_none();
    print_started(
        &config,
        &sources,
        &index,
        n_checkpoints,
        &url,
        otlp_addr,
        grpc_addr,
    );
    if hints {
        print_hints(&config, &url);
    }
    if let Some(hook) = prepared.after_start {
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
    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
            ended = async {
                match pipeline.as_mut() {
                    Some(running) => (&mut running.decoder).await,
                    None => std::future::pending().await,
                }
            } => {
                pipeline = None;
                failure = Some(match ended {
                    Ok(Ok(_)) => anyhow::anyhow!("the file tailer stopped"),
                    Ok(Err(e)) => e,
                    Err(e) => anyhow::anyhow!("the decoder panicked: {e}"),
                });
                break;
            }
            Ok(()) = status.changed() => {
                let now = status.borrow_and_update().clone();
                if now.generation != generation
                    && let Some(running) = pipeline.take()
                {
                    // Its batches after the rollback are dropped by the writer: stop reading.
                    tracing::warn!("tailing stops while indexing is paused; lines not committed are read again when it resumes");
                    match running.stop().await {
                        Ok(decoders) => idle_decoders = Some(decoders),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                if now.paused.is_none()
                    && let Some(decoders) = idle_decoders.take()
                {
                    generation = now.generation;
                    match inputs.start(generation, decoders) {
                        Ok((running, n)) => {
                            tracing::info!(files = n, "tailing again from the last commit");
                            pipeline = Some(running);
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
        }
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
        tracing::warn!(
            "second signal: exiting now; lines not yet committed are read again next time"
        );
        std::process::exit(130);
    });

    // Stop reading, index what was read, commit it, then stop answering.
    if let Some(running) = pipeline.take()
        && let Err(e) = running.stop().await
    {
        failure.get_or_insert(e);
    }
    if failure.is_none()
        && let Err(e) = writer.flush().await
    {
        failure = Some(anyhow::Error::new(e).context(
            "the final commit failed (lines not committed are read again on the next start)",
        ));
    }
    let _ = stop_tx.send(true);
    for server in servers {
        match tokio::time::timeout(SERVER_GRACE, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("a server (HTTP or OTLP/gRPC) failed: {e}"),
            Ok(Err(e)) => tracing::error!("a server (HTTP or OTLP/gRPC) panicked: {e}"),
            Err(_) => tracing::warn!("closing HTTP connections still open"),
        }
    }
    // Commits whatever the OTLP receiver took in meanwhile.
    let shutdown = tokio::task::spawn_blocking(move || writer.shutdown())
        .await
        .context("the index writer panicked")?;
    if let Some(e) = failure {
        return Err(e);
    }
    shutdown.context("the last commit at shutdown failed")?;
    tracing::info!("stopped; {} records in the index", index.num_docs());
    Ok(())
}

/// What the tailer and the decoder need each time they start.
struct PipelineInputs {
    tail: TailConfig,
    tail_queue: usize,
    index: Index,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
}

/// The tailer and the decoder, started from the checkpoints committed before writer
/// generation `generation`.
struct Pipeline {
    tailer: TailerHandle,
    /// Hands the decoders back when the tailer ends.
    decoder: tokio::task::JoinHandle<anyhow::Result<Decoders>>,
}

impl PipelineInputs {
    /// Starts tailing from the last commit's checkpoints; also returns how many files resume.
    fn start(&self, generation: u64, decoders: Decoders) -> anyhow::Result<(Pipeline, usize)> {
        let checkpoints: tail::Checkpoints = self
            .index
            .checkpoints()
            .context("cannot read the checkpoints of the index")?
            .iter()
            .map(|(key, value)| (key.to_owned(), value.clone()))
            .collect();
        let n_checkpoints = checkpoints.len();
        let (tail_tx, tail_rx) = mpsc::channel(self.tail_queue);
        let tailer = Tailer::start(self.tail.clone(), checkpoints, tail_tx)
            .context("cannot start the file tailer")?;
        let (writer, metrics) = (self.writer.clone(), self.metrics.clone());
        let decoder = tokio::task::spawn_blocking(move || {
            decode_loop(tail_rx, decoders, writer, metrics, generation)
        });
        Ok((Pipeline { tailer, decoder }, n_checkpoints))
    }
}

impl Pipeline {
    /// Stops reading, and waits until what was read is handed to the writer.
    async fn stop(self) -> anyhow::Result<Decoders> {
        let tailer = self.tailer;
        tokio::task::spawn_blocking(move || tailer.stop())
            .await
            .context("the tailer panicked")?;
        match self.decoder.await {
            Ok(ended) => ended,
            Err(e) => Err(anyhow::anyhow!("the decoder panicked: {e}")),
        }
    }
}

/// A duration as a config file writes it: `7d`, `36h`, `1m`, `300ms`.
fn config_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

/// How often the serving index looks for large new segments (merges) to build what trace
/// lookups read about them.
const WARM_LOOKUPS_EVERY: Duration = Duration::from_secs(5);

/// Builds what trace lookups read about each large segment, and the operations' p50s, ahead of
/// the first lookup: at start-up, then every [`WARM_LOOKUPS_EVERY`] for the segments merges
/// made (the p50s when the index changed and they are 15 s old).
async fn warm_lookups_loop(index: Index, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(WARM_LOOKUPS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let index = index.clone();
        match tokio::task::spawn_blocking(move || index.warm_lookups()).await {
            Ok(Ok(())) => {}
            // A lookup reads the same and reports it; this is only ahead of it.
            Ok(Err(e)) => tracing::debug!("building what trace lookups read: {e}"),
            Err(_) => return,
        }
    }
}

/// Applies the retention policy every `check_interval` until the server stops.
async fn retention_loop(
    writer: WriterHandle,
    retention: crate::config::RetentionSection,
    mut stop: watch::Receiver<bool>,
) {
    let policy = retention.policy();
    let mut ticks = tokio::time::interval(retention.check_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        match writer.apply_retention(policy, timespec::now_ns()).await {
            Ok(report) if report.deleted > 0 => tracing::info!(
                deleted = report.deleted,
                size_before = report.size_before,
                size_after = report.size_after,
                "retention: deleted {} records older than {}",
                report.deleted,
                report
                    .cutoff_ns
                    .map(decode::time::format_rfc3339_ns)
                    .unwrap_or_default()
            ),
            Ok(_) => {}
            Err(index::Error::WriterClosed) => return,
            Err(e) => tracing::warn!("retention failed (retried at the next check): {e}"),
        }
    }
}

/// Turns tail batches into writer batches: one in, one out, the checkpoint with the records,
/// stamped with the writer generation the tailer started from. Ends with the tailer.
fn decode_loop(
    mut rx: mpsc::Receiver<TailBatch>,
    mut decoders: Decoders,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    generation: u64,
) -> anyhow::Result<Decoders> {
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
                tracing::warn!(
                    "{} at byte {}: {}",
                    batch.path,
                    warning.offset,
                    warning.message
                );
            } else if n_warnings == MAX_PRINTED_WARNINGS + 1 {
                tracing::warn!("more decode warnings are not printed");
            }
        }
        let records = std::mem::take(&mut out.records);
        if !records.is_empty() {
            metrics.count_ingest("file", records.len() as u64, 0);
        }
        let batch = Batch::new(records, vec![batch.checkpoint]).in_generation(generation);
        match writer.blocking_send(batch) {
            Ok(()) => {}
            // Read again from the last commit once the writer resumes (`serve` restarts us).
            Err(index::Error::Paused { .. }) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("cannot index the tailed lines")),
        }
    }
    Ok(decoders)
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
        max_grpc_streams: s.max_grpc_streams,
        retry_window: s.retry_window,
        ..ServerConfig::default()
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
    grpc: Option<SocketAddr>,
) {
    let dir: &PathBuf = &config.index.dir;
    banner(&format!(
        "index {} ({} records; resuming {n_checkpoints} files from the last commit)",
        dir.display(),
        index.num_docs()
    ));
    if sources.is_empty() {
        banner("no files to tail (pass --source GLOB, or [[source]] in a --config file)");
    }
    for source in sources {
        let mut line = format!("tailing {}", source.include.join(" "));
        if !source.exclude.is_empty() {
            line.push_str(&format!(" (except {})", source.exclude.join(" ")));
        }
        if let Some(service) = &source.service {
            line.push_str(&format!(" as {service}"));
        }
        banner(&line);
    }
    if let Some(addr) = otlp {
        banner(&format!(
            "receiving OTLP/HTTP on http://{addr}/v1/traces and /v1/logs"
        ));
    }
    // Tests and scripts read the bound gRPC address from this line.
    if let Some(addr) = grpc {
        banner(&format!("receiving OTLP/gRPC on {addr}"));
    }
    let retention = &config.retention;
    if let Some(age) = retention.max_age {
        banner(&format!(
            "retention: records older than {} are deleted (checked every {})",
            config_duration(age),
            config_duration(retention.check_interval)
        ));
    }
    if let Some(size) = retention.max_size {
        banner(&format!(
            "retention: the oldest records are deleted while the index is over {size} bytes"
        ));
    }
    // Tests and scripts read the bound address from this line.
    banner(&format!("listening on {url}"));
}

/// What to try first, for a person at a terminal.
fn print_hints(config: &Config, url: &str) {
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
    banner(&format!(
        "open {url}/ in a browser, or try:\n  curl -sG{auth} {url}/api/v1/search --data-urlencode 'q=level >= warn' -d limit=5\n  curl -s {url}/healthz"
    ));
}
