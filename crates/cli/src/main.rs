//! The `threadline` binary: flags and glue; the work lives in the library crates.

mod commands;
mod compare;
mod config;
mod follow;
mod ingest;
mod logging;
mod serve;
mod term;
mod timespec;
mod waterfall;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Decoding allocates every record on one thread and the index writer frees it on another;
/// glibc's arenas made that ~13% of ingest CPU, mimalloc cuts ingest CPU by 5–15%
/// (docs/BENCHMARKS.md). Built with `no_thp` (crates/cli/Cargo.toml): without huge pages for
/// its arenas the ingest's peak RSS is ~50 MiB lower at the same CPU; the purge-delay, eager-commit
/// and `override` options measured no better (docs/BENCHMARKS.md, issue 13).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Follow one request through every service it touched: spans and logs linked by trace id.
#[derive(Debug, Parser)]
#[command(name = "threadline", version, about, long_about = None)]
struct Cli {
    /// Index directory [default: ./data/index; serve: the config's `index.dir`; demo: always DATA/index].
    #[arg(long, global = true, env = "THREADLINE_INDEX")]
    index: Option<PathBuf>,
    /// Format of the logs on stderr (filter them with RUST_LOG, e.g. RUST_LOG=debug).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "THREADLINE_LOG_FORMAT"
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The index directory when neither --index nor THREADLINE_INDEX names one.
const DEFAULT_INDEX: &str = "./data/index";

#[derive(Debug, Subcommand)]
enum Command {
    /// Tail files, receive OTLP, index, and serve the HTTP API until Ctrl-C.
    Serve(ServeArgs),
    /// Index files once (files or folders, recursively).
    Ingest(IngestArgs),
    /// Show everything for one trace: the span waterfall with each log under its span.
    Trace(TraceArgs),
    /// What went wrong in one trace: its findings with their evidence (exit 1 when none).
    Explain(TraceArgs),
    /// Search spans and logs with the query language.
    Search(SearchArgs),
    /// Count matching records by field values and/or time buckets.
    Agg(AggArgs),
    /// What is different about the records (or traces) a query selects: attribute values
    /// ranked by how over-represented they are against a baseline.
    Compare(CompareArgs),
    /// Simulated checkout traffic written live into a folder, tailed and served at once.
    Demo(DemoArgs),
    /// Validate the checksum of every index file and name the damaged ones (exit 2 if any).
    Check(CheckArgs),
    /// Print matching records as they land (a running server's live stream, or a local index).
    Tail(TailArgs),
}

#[derive(Debug, Args)]
struct TailArgs {
    /// Query selecting the records to print; empty follows everything.
    #[arg(default_value = "")]
    query: String,
    /// Follow this server's live stream (e.g. http://127.0.0.1:7740) instead of a local index;
    /// a read token is taken from THREADLINE_TOKEN.
    #[arg(long, env = "THREADLINE_SERVER")]
    server: Option<String>,
    /// One JSON object per record.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Config file (TOML, see config/threadline.toml); without it every default applies.
    #[arg(long, env = "THREADLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:7740]; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Glob of files to tail (repeatable); replaces the config's sources.
    #[arg(long = "source", value_name = "GLOB")]
    sources: Vec<String>,
    /// Glob of files not to tail, among the --source globs (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// Service name for records of the --source files that name none (default: the file name).
    #[arg(long)]
    service: Option<String>,
    /// Extra regex for text lines of the --source files (repeatable).
    #[arg(long = "pattern")]
    patterns: Vec<String>,
    /// Also receive OTLP/HTTP on this address (e.g. 127.0.0.1:4318).
    #[arg(long)]
    otlp_listen: Option<SocketAddr>,
    /// Receive OTLP/gRPC on this address (e.g. 127.0.0.1:4317); off by default.
    #[arg(long, value_name = "ADDR")]
    otlp_grpc_listen: Option<SocketAddr>,
    /// Longest a read line waits to be committed and searchable (e.g. 500ms).
    #[arg(long)]
    commit_interval: Option<String>,
    /// Lines longer than this many bytes are cut and flagged (OTLP/JSON lines have their own
    /// limit, `tail.max_otlp_line_bytes`, 64 MiB).
    #[arg(long)]
    max_line_bytes: Option<usize>,
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Files or folders to index.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Service name for records that name none (default: each file's stem).
    #[arg(long)]
    service: Option<String>,
    /// Extra regex for text lines (named groups trace_id, span_id, time, level, service, message).
    #[arg(long = "pattern")]
    patterns: Vec<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct TraceArgs {
    /// Trace id: 32 or 16 hex digits, a traceparent, an X-Ray id, a decimal Datadog id, ...
    trace_id: String,
    /// Print JSON instead of text (the Trace JSON; for explain, the findings).
    #[arg(long)]
    json: bool,
    /// Apply Jaeger's clock-skew adjustment before the analysis (every shift is reported).
    #[arg(long)]
    adjust_clock_skew: bool,
}

#[derive(Debug, Args)]
struct TimeRange {
    /// Only records newer than this (e.g. 30m, 1h, 2d).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    since: Option<String>,
    /// Start of the time range (RFC 3339 or now() - 1h).
    #[arg(long)]
    from: Option<String>,
    /// End of the time range (RFC 3339 or now()).
    #[arg(long)]
    to: Option<String>,
}

impl TimeRange {
    /// `--since` or `--from`/`--to`, resolved against `now_ns`.
    fn resolve(&self, now_ns: i64) -> anyhow::Result<timespec::Range> {
        timespec::range(
            self.since.as_deref(),
            self.from.as_deref(),
            self.to.as_deref(),
            now_ns,
        )
    }
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// Query, e.g. 'service = payment-service AND level >= warn'. Empty matches everything.
    query: String,
    #[command(flatten)]
    range: TimeRange,
    /// Maximum number of hits.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Continue after a previous page (the cursor printed by --json).
    #[arg(long, conflicts_with = "traces")]
    cursor: Option<String>,
    /// List traces instead of records: one row per trace that has a matching span or log.
    #[arg(long)]
    traces: bool,
    /// With --traces: time, -time (newest first), duration or -duration (longest first).
    #[arg(
        long,
        default_value = "-time",
        requires = "traces",
        allow_hyphen_values = true
    )]
    sort: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AggArgs {
    /// Query selecting the records to count.
    query: String,
    /// Fields or attributes to group by, comma-separated (e.g. decline_code,card.bin).
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Time bucket width (e.g. 10m, 1h), buckets aligned to the epoch in UTC.
    #[arg(long)]
    interval: Option<String>,
    /// Most values per field.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Count `records` (spans and logs) or `traces` (distinct traces with a matching record:
    /// a decline that wrote a span and a log counts once).
    #[arg(long, default_value = "records")]
    count: String,
    /// Add duration statistics per bucket: min, avg, p50, p90, p95, p99 and max.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    range: TimeRange,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The selection, e.g. 'decline_code = do_not_honor'.
    query: String,
    /// The baseline (default: every record of the same kinds not in the selection).
    #[arg(long)]
    baseline: Option<String>,
    /// Compare `traces` (a value counts for a trace when any of its spans or logs carries it)
    /// or `records`.
    #[arg(long, default_value = "traces")]
    count: String,
    /// Most values listed.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    range: TimeRange,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Folder for the simulated traffic and its index (default ./data/demo; wiped on each run,
    /// unless another threadline process is writing its index).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Requests in the hour of history written before serving (with --once: all of them).
    #[arg(long, default_value_t = 2000)]
    traces: usize,
    /// Live requests per second written while serving (default: the history's rate,
    /// --traces per hour).
    #[arg(long)]
    rate: Option<f64>,
    /// Simulator seed (same seed, same traffic).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:7740")]
    listen: SocketAddr,
    /// Generate, index, print one failing request's waterfall and exit (no server).
    #[arg(long)]
    once: bool,
    /// Also receive OTLP/gRPC on this address (e.g. 127.0.0.1:4317), beside the demo traffic.
    #[arg(long, value_name = "ADDR", conflicts_with = "once")]
    otlp_grpc_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Servers log what they do; one-shot commands only what went wrong.
    let long_running = matches!(cli.command, Command::Serve(_) | Command::Demo(_));
    let default_filter = if long_running {
        "info,tantivy=warn"
    } else {
        "warn"
    };
    logging::init(cli.log_format, default_filter);
    let index = cli.index.as_deref().unwrap_or(Path::new(DEFAULT_INDEX));
    match cli.command {
        Command::Serve(args) => serve::command(cli.index.as_deref(), args),
        Command::Ingest(args) => commands::ingest(index, args),
        Command::Trace(args) => commands::trace(index, args),
        Command::Explain(args) => commands::explain(index, args),
        Command::Search(args) => commands::search(index, args),
        Command::Agg(args) => commands::agg(index, args),
        Command::Compare(args) => compare::command(index, args),
        Command::Demo(args) => commands::demo(args),
        Command::Check(args) => commands::check(index, args),
        Command::Tail(args) => follow::command(index, args),
    }
}
