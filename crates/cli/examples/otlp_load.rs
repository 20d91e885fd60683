//! OTLP load: N concurrent clients send protobuf spans to a real `threadline serve` child
//! process as fast as the acks come back (OTLP/HTTP, or OTLP/gRPC with `--grpc`), then the
//! index is asked whether every acked span is there (zero lost) and how many are there more
//! than once.
//!
//! ```sh
//! cargo build --release -p cli
//! cargo run --release -p cli --example otlp_load -- --clients 32 --seconds 60
//! cargo run --release -p cli --example otlp_load -- --clients 32 --seconds 60 --slow-writer
//! cargo run --release -p cli --example otlp_load -- --clients 32 --seconds 60 --grpc
//! ```
//!
//! Options: `--clients N` (32), `--seconds S` (60), `--spans N` spans per request (50),
//! `--slow-writer` (see [`SLOW_WRITER_CONFIG`]), `--commit-interval D` (passed to `serve`),
//! `--grpc` (`TraceService/Export` on `serve --otlp-grpc-listen`, one HTTP/2 connection per
//! client; `RESOURCE_EXHAUSTED` is retried after its `RetryInfo` delay, never ambiguous, and
//! `UNAVAILABLE`, `DEADLINE_EXCEEDED` or a transport error are retried as ambiguous).
//! The binary is `target/<profile>/threadline` beside this example, or `$THREADLINE_BIN`.
//!
//! Each client is a task on one tokio runtime with its own HTTP/1.1 connection. A request is
//! `ExportTraceServiceRequest` (prost-encoded, no gzip) of `--spans` spans with unique span ids,
//! resource attribute `load.client = cNN` and span attribute `load.req = cNN-N`. 429 and 503
//! are retried after `Retry-After` (or an exponential backoff from 50 ms without it); a 429 was
//! never queued, so its retry cannot duplicate. A transport error or a 503 *may* have been
//! committed: the retry may then duplicate, which OTLP allows; such requests are counted as
//! "ambiguous". The ack latency is from sending the attempt that got the 200 to the 200
//! (`ack`), and from the first attempt (`e2e`, retries and waits included).
//!
//! At the end, for every client, `/api/v1/aggregate?q=load.client = cNN&by=load.req` counts the
//! indexed spans of each request: a request acked but not indexed in full is lost, a request
//! indexed more than once is a duplicate (only allowed for ambiguous requests).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message as _;
use support::{ServeCommand, Workspace, get_json, get_text};
use tonic_types::StatusExt as _;

/// The normal phase: `serve`'s defaults, but the API on a free port and no files to tail.
const NORMAL_CONFIG: &str = "";

/// The slow phase: a writer that falls behind on purpose, with existing knobs only.
/// - `queue_capacity = 1`: one batch may wait for the writer; the next is refused (429).
/// - `commit_interval = "2s"`: acks (and so the next request of each client) come in bursts
///   every 2 s, so 32 clients hit the one-slot queue at once.
/// - `writer_threads = 1`, `writer_memory = "16MiB"`: one indexing thread, small segments.
/// - `max_concurrent_ingest = 1024`: no 429 from the decode limit, so every 429 is the writer's
///   queue being full (`threadline_rejected_requests_total{reason="queue_full"}`).
const SLOW_WRITER_CONFIG: &str = r#"
[index]
commit_interval = "2s"
queue_capacity = 1
writer_threads = 1
writer_memory = "16MiB"

[server]
max_concurrent_ingest = 1024
retry_after_s = 1
"#;

/// Backoff without `Retry-After`: from this, doubling, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A request still not acked this long after the end is given up (and reported).
const GIVE_UP_AFTER_END: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Options {
    clients: usize,
    seconds: u64,
    spans: usize,
    slow_writer: bool,
    commit_interval: Option<String>,
    grpc: bool,
}

fn options() -> Options {
    let mut o = Options {
        clients: 32,
        seconds: 60,
        spans: 50,
        slow_writer: false,
        commit_interval: None,
        grpc: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--clients" => o.clients = value().parse().expect("--clients N"),
            "--seconds" => o.seconds = value().parse().expect("--seconds S"),
            "--spans" => o.spans = value().parse().expect("--spans N"),
            "--commit-interval" => o.commit_interval = Some(value()),
            "--slow-writer" => o.slow_writer = true,
            "--grpc" => o.grpc = true,
            other => panic!(
                "unknown argument {other}: --clients N --seconds S --spans N --slow-writer --commit-interval D --grpc"
            ),
        }
    }
    assert!(o.clients > 0 && o.spans > 0 && o.spans < (1 << 20));
    o
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientReport {
    /// `load.req` of each acked request → 1.
    acked: Vec<u64>,
    /// Requests retried after a transport error or a 503: they may be indexed twice.
    ambiguous: Vec<u64>,
    /// Requests given up (never acked).
    given_up: Vec<u64>,
    ack_us: Vec<u32>,
    e2e_us: Vec<u32>,
    by_status: BTreeMap<String, u64>,
    retries: u64,
    with_retry_after: u64,
    messages: BTreeMap<String, u64>,
}

fn main() {
    let o = options();
    let bin = std::env::var_os("THREADLINE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(|examples| examples.parent())
                .map(|profile| profile.join("threadline"))
                .expect("target/<profile>/examples/otlp_load")
        });
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p cli) or set THREADLINE_BIN",
        bin.display()
    );
    // On the target's disk, not tmpfs: commits pay for their fsyncs.
    let tmp_root = bin
        .parent()
        .map(|p| p.join("otlp-load"))
        .unwrap_or_else(|| std::env::temp_dir().join("threadline-otlp-load"));
    let ws = Workspace::new(&tmp_root);
    let config = if o.slow_writer {
        SLOW_WRITER_CONFIG
    } else {
        NORMAL_CONFIG
    };
    let mut cmd = ServeCommand::new(&bin, ws.index())
        .arg("--config")
        .arg(ws.config(config));
    if let Some(interval) = &o.commit_interval {
        cmd = cmd.arg("--commit-interval").arg(interval);
    }
    if o.grpc {
        cmd = cmd.arg("--otlp-grpc-listen").arg("127.0.0.1:0");
    }
    let serve = cmd.start();
    let url = serve.url.clone();
    let grpc_endpoint = o.grpc.then(|| serve.grpc_endpoint());
    let pid = serve.pid();
    eprintln!(
        "{} phase over {}: {} clients × {} s, {} spans/request, server pid {pid} at {url}, config:{}",
        if o.slow_writer {
            "slow-writer"
        } else {
            "normal"
        },
        if o.grpc { "OTLP/gRPC" } else { "OTLP/HTTP" },
        o.clients,
        o.seconds,
        o.spans,
        if config.is_empty() {
            " defaults".to_owned()
        } else {
            config.replace('\n', "\n  ")
        }
    );

    // Peak RSS: VmHWM is the kernel's own peak; VmRSS sampled for the curve's maximum.
    let sampling = Arc::new(AtomicBool::new(true));
    let max_rss_kib = Arc::new(AtomicU64::new(0));
    let rss_samples = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
    let sampler = {
        let sampling = sampling.clone();
        let max_rss_kib = max_rss_kib.clone();
        let rss_samples = rss_samples.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut last_print = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = proc_status_kib(pid, "VmRSS:") {
                    max_rss_kib.fetch_max(rss, Ordering::Relaxed);
                    if last_print.elapsed() >= Duration::from_secs(5) {
                        last_print = Instant::now();
                        rss_samples
                            .lock()
                            .unwrap()
                            .push((start.elapsed().as_secs_f64(), rss));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let end = started + Duration::from_secs(o.seconds);
    let acked_spans = Arc::new(AtomicU64::new(0));
    let reports: Vec<ClientReport> = runtime.block_on(async {
        let progress = {
            let acked_spans = acked_spans.clone();
            tokio::spawn(async move {
                let mut last = 0;
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    let now = acked_spans.load(Ordering::Relaxed);
                    eprintln!(
                        "  {:>4.0} s: {now} spans acked ({:.0}/s over the last 10 s)",
                        started.elapsed().as_secs_f64(),
                        (now - last) as f64 / 10.0
                    );
                    last = now;
                }
            })
        };
        let tasks: Vec<_> = (0..o.clients)
            .map(|c| {
                let url = url.clone();
                let grpc_endpoint = grpc_endpoint.clone();
                let o = o.clone();
                let acked_spans = acked_spans.clone();
                tokio::spawn(async move {
                    match grpc_endpoint {
                        Some(endpoint) => grpc_client(c, &endpoint, &o, end, acked_spans).await,
                        None => client(c, &url, &o, end, acked_spans).await,
                    }
                })
            })
            .collect();
        let mut reports = Vec::new();
        for task in tasks {
            reports.push(task.await.unwrap());
        }
        progress.abort();
        reports
    });
    let load_secs = started.elapsed().as_secs_f64();
    drop(runtime);

    // Acked means committed: the index answers for all of it now.
    let verify_started = Instant::now();
    let verdict = verify(&url, &o, &reports);
    let verify_secs = verify_started.elapsed().as_secs_f64();
    let metrics = get_text(&format!("{url}/metrics")).unwrap_or_default();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak_hwm = serve.peak_rss_kib().unwrap_or(0);
    let stderr = serve.stop();

    // The figures.
    let n_acked_requests: usize = reports.iter().map(|r| r.acked.len()).sum();
    let acked = n_acked_requests as u64 * o.spans as u64;
    let mut ack_us: Vec<u32> = reports
        .iter()
        .flat_map(|r| r.ack_us.iter().copied())
        .collect();
    let mut e2e_us: Vec<u32> = reports
        .iter()
        .flat_map(|r| r.e2e_us.iter().copied())
        .collect();
    ack_us.sort_unstable();
    e2e_us.sort_unstable();
    let mut by_status = BTreeMap::<String, u64>::new();
    let mut messages = BTreeMap::<String, u64>::new();
    for r in &reports {
        for (k, v) in &r.by_status {
            *by_status.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.messages {
            *messages.entry(k.clone()).or_default() += v;
        }
    }
    let retries: u64 = reports.iter().map(|r| r.retries).sum();
    let with_retry_after: u64 = reports.iter().map(|r| r.with_retry_after).sum();
    let ambiguous: usize = reports.iter().map(|r| r.ambiguous.len()).sum();
    let given_up: usize = reports.iter().map(|r| r.given_up.len()).sum();

    println!();
    println!(
        "phase                 {} over {}",
        if o.slow_writer {
            "slow writer"
        } else {
            "normal"
        },
        if o.grpc { "OTLP/gRPC" } else { "OTLP/HTTP" }
    );
    println!(
        "clients × duration    {} × {} s ({load_secs:.1} s with the last acks)",
        o.clients, o.seconds
    );
    println!(
        "requests acked        {n_acked_requests} ({} spans each)",
        o.spans
    );
    println!("spans acked           {acked}");
    println!(
        "spans indexed         {} (total of kind = span: {})",
        verdict.indexed, verdict.total
    );
    println!(
        "indexed − acked       {}",
        verdict.indexed as i64 - acked as i64
    );
    println!("lost (acked, missing) {}", verdict.lost);
    println!(
        "duplicated spans      {} (in {} requests; {} requests were ambiguous: transport error, 503 or UNAVAILABLE, then retried)",
        verdict.duplicate_spans, verdict.duplicate_requests, ambiguous
    );
    println!(
        "indexed, never acked  {} requests (given up: {given_up})",
        verdict.unacked_requests
    );
    println!(
        "records/s (acked)     {:.0}",
        acked as f64 / load_secs.max(1e-9)
    );
    println!(
        "ack latency           p50 {} p90 {} p99 {} max {}",
        ms(pct(&ack_us, 0.50)),
        ms(pct(&ack_us, 0.90)),
        ms(pct(&ack_us, 0.99)),
        ms(ack_us.last().copied().unwrap_or(0))
    );
    println!(
        "e2e latency (retries) p50 {} p90 {} p99 {} max {}",
        ms(pct(&e2e_us, 0.50)),
        ms(pct(&e2e_us, 0.90)),
        ms(pct(&e2e_us, 0.99)),
        ms(e2e_us.last().copied().unwrap_or(0))
    );
    println!("responses             {by_status:?}");
    println!(
        "retries               {retries} ({with_retry_after} after a Retry-After header or RetryInfo)"
    );
    for (message, n) in &messages {
        println!("  {n:>8} × {message}");
    }
    println!(
        "server RSS            peak {:.0} MiB (VmHWM), max sampled VmRSS {:.0} MiB",
        peak_hwm as f64 / 1024.0,
        max_rss_kib.load(Ordering::Relaxed) as f64 / 1024.0
    );
    let curve: Vec<String> = rss_samples
        .lock()
        .unwrap()
        .iter()
        .map(|(t, kib)| format!("{t:.0}s:{:.0}", *kib as f64 / 1024.0))
        .collect();
    println!("VmRSS MiB every 5 s   {}", curve.join(" "));
    println!("verification          {verify_secs:.1} s");
    println!("server /metrics:");
    for line in metrics.lines().filter(|l| {
        !l.starts_with('#')
            && (l.starts_with("threadline_rejected_requests_total")
                || l.starts_with("threadline_ingest_records_total")
                || l.starts_with("threadline_writer_commits")
                || l.starts_with("threadline_writer_queue"))
    }) {
        println!("  {line}");
    }
    if let Some(last) = stderr.lines().rev().find(|l| l.starts_with("stopped")) {
        println!("server                {last}");
    }

    let ok = verdict.lost == 0 && verdict.duplicate_requests <= ambiguous && given_up == 0;
    println!(
        "\n{}",
        if ok {
            "OK: every acked span is indexed; duplicates only from ambiguous retries"
        } else {
            "FAILED: see above"
        }
    );
    if !ok {
        std::process::exit(1);
    }
}

/// One client: requests back to back until `end`, each retried until acked.
async fn client(
    c: usize,
    url: &str,
    o: &Options,
    end: Instant,
    acked_spans: Arc<AtomicU64>,
) -> ClientReport {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let endpoint = format!("{url}/v1/traces");
    let mut report = ClientReport::default();
    let mut req = 0u64;
    while Instant::now() < end {
        let body = request(c, req, o.spans).encode_to_vec();
        let first = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut ambiguous = false;
        loop {
            if Instant::now() > end + GIVE_UP_AFTER_END {
                report.given_up.push(req);
                break;
            }
            let sent = Instant::now();
            let result = http
                .post(&endpoint)
                .header("content-type", "application/x-protobuf")
                .body(body.clone())
                .send()
                .await;
            let wait = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    *report.by_status.entry(status.to_string()).or_default() += 1;
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = response.bytes().await.unwrap_or_default();
                    if status == 200 {
                        report.ack_us.push(micros(sent.elapsed()));
                        report.e2e_us.push(micros(first.elapsed()));
                        report.acked.push(req);
                        acked_spans.fetch_add(o.spans as u64, Ordering::Relaxed);
                        break;
                    }
                    let message = rpc_message(&bytes);
                    *report
                        .messages
                        .entry(format!("{status} {message}"))
                        .or_default() += 1;
                    match status {
                        429 => {}
                        // A request timeout may still commit what it queued.
                        503 => ambiguous = true,
                        _ => panic!("client {c}: unexpected {status}: {message}"),
                    }
                    if retry_after.is_some() {
                        report.with_retry_after += 1;
                    }
                    retry_after
                }
                Err(e) => {
                    ambiguous = true;
                    *report.by_status.entry("error".into()).or_default() += 1;
                    *report.messages.entry(format!("error {e}")).or_default() += 1;
                    None
                }
            };
            report.retries += 1;
            let pause = wait.unwrap_or_else(|| {
                let b = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // ±50% jitter so clients do not retry in step.
                b.mul_f64(0.5 + fastrand::f64())
            });
            tokio::time::sleep(pause).await;
        }
        if ambiguous {
            report.ambiguous.push(req);
        }
        req += 1;
    }
    report
}

/// One client over OTLP/gRPC: as [`client`], with one HTTP/2 connection of its own.
async fn grpc_client(
    c: usize,
    endpoint: &str,
    o: &Options,
    end: Instant,
    acked_spans: Arc<AtomicU64>,
) -> ClientReport {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .expect("the gRPC endpoint")
        .timeout(Duration::from_secs(60))
        .connect_lazy();
    let mut grpc = TraceServiceClient::new(channel);
    let mut report = ClientReport::default();
    let mut req = 0u64;
    while Instant::now() < end {
        let message = request(c, req, o.spans);
        let first = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut ambiguous = false;
        loop {
            if Instant::now() > end + GIVE_UP_AFTER_END {
                report.given_up.push(req);
                break;
            }
            let sent = Instant::now();
            let wait = match grpc.export(message.clone()).await {
                Ok(_) => {
                    *report.by_status.entry("OK".into()).or_default() += 1;
                    report.ack_us.push(micros(sent.elapsed()));
                    report.e2e_us.push(micros(first.elapsed()));
                    report.acked.push(req);
                    acked_spans.fetch_add(o.spans as u64, Ordering::Relaxed);
                    break;
                }
                Err(status) => {
                    let code = format!("{:?}", status.code());
                    *report.by_status.entry(code.clone()).or_default() += 1;
                    *report
                        .messages
                        .entry(format!("{code} {}", status.message()))
                        .or_default() += 1;
                    let retry_after = status.get_details_retry_info().and_then(|r| r.retry_delay);
                    match status.code() {
                        // Never queued (a full queue or every ingest slot taken).
                        tonic::Code::ResourceExhausted if retry_after.is_some() => {}
                        // A failed commit, a timeout or a broken connection: may be indexed.
                        tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Cancelled
                        | tonic::Code::Unknown => ambiguous = true,
                        _ => panic!("client {c}: unexpected {status:?}"),
                    }
                    if retry_after.is_some() {
                        report.with_retry_after += 1;
                    }
                    retry_after
                }
            };
            report.retries += 1;
            let pause = wait.unwrap_or_else(|| {
                let b = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                b.mul_f64(0.5 + fastrand::f64())
            });
            tokio::time::sleep(pause).await;
        }
        if ambiguous {
            report.ambiguous.push(req);
        }
        req += 1;
    }
    report
}

/// `ExportTraceServiceRequest` with `n` spans of one new trace; span ids are unique across
/// clients and requests: client (8 bits) | request (36 bits) | span (20 bits).
fn request(c: usize, req: u64, n: usize) -> ExportTraceServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(0x7100_0000_0000_0000 | c as u64).to_be_bytes());
    trace_id[8..].copy_from_slice(&(req + 1).to_be_bytes());
    let string = |key: &str, value: String| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    };
    let client_id = format!("c{c:02}");
    let req_id = format!("{client_id}-{req}");
    let root_id = span_id(c, req, 0);
    let spans = (0..n)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id(c, req, i).to_vec(),
            parent_span_id: if i == 0 { Vec::new() } else { root_id.to_vec() },
            name: if i == 0 {
                "POST /load".to_owned()
            } else {
                format!("step {}", i % 8)
            },
            kind: if i == 0 {
                span::SpanKind::Server as i32
            } else {
                span::SpanKind::Internal as i32
            },
            start_time_unix_nano: now - 1_000_000 + i as u64 * 1000,
            end_time_unix_nano: now,
            attributes: vec![
                string("load.req", req_id.clone()),
                string("http.route", "/load".to_owned()),
            ],
            status: Some(Status {
                code: if i % 10 == 9 { 2 } else { 1 },
                message: String::new(),
            }),
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", "otlp-load".to_owned()),
                    string("load.client", client_id),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "otlp_load".to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn span_id(c: usize, req: u64, i: usize) -> [u8; 8] {
    (((c as u64 & 0xff) << 56) | ((req & 0xf_ffff_ffff) << 20) | i as u64 | (1 << 55)).to_be_bytes()
}

/// `google.rpc.Status.message` of a protobuf error body (field 2), or the raw text.
fn rpc_message(body: &[u8]) -> String {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    match RpcStatus::decode(body) {
        Ok(status) => status.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(120).collect(),
    }
}

/// What the index holds, against what was acked.
#[derive(Debug, Default)]
struct Verdict {
    /// `kind = span` total.
    total: u64,
    /// Spans of this run (by `load.req` buckets).
    indexed: u64,
    lost: u64,
    duplicate_spans: u64,
    duplicate_requests: usize,
    unacked_requests: usize,
}

fn verify(url: &str, o: &Options, reports: &[ClientReport]) -> Verdict {
    let mut v = Verdict::default();
    let (status, found) = get_json(
        &format!("{url}/api/v1/search"),
        &[("q", "kind = span"), ("limit", "1")],
    )
    .expect("search");
    assert_eq!(status, 200, "{found}");
    v.total = found["total"].as_u64().unwrap_or(0);
    let spans = o.spans as u64;
    for (c, report) in reports.iter().enumerate() {
        let client_id = format!("c{c:02}");
        let expected_requests = report.acked.len() + report.given_up.len();
        let (status, agg) = get_json(
            &format!("{url}/api/v1/aggregate"),
            &[
                ("q", &format!("load.client = {client_id} AND kind = span")),
                ("by", "load.req"),
                ("size", "10000"),
            ],
        )
        .expect("aggregate");
        assert_eq!(status, 200, "{agg}");
        let buckets = agg["buckets"].as_array().cloned().unwrap_or_default();
        assert!(
            buckets.len() < 10_000 && expected_requests < 10_000,
            "client {c}: more than 10 000 requests; the per-request check needs smaller runs"
        );
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        for bucket in &buckets {
            let key = bucket["key"]["load.req"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| bucket["key"]["load.req"].to_string());
            let req: u64 = key
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bucket key {key:?}"));
            *counts.entry(req).or_default() += bucket["count"].as_u64().unwrap_or(0);
        }
        v.indexed += counts.values().sum::<u64>();
        for req in &report.acked {
            let n = counts.get(req).copied().unwrap_or(0);
            v.lost += spans.saturating_sub(n);
            if n > spans {
                v.duplicate_spans += n - spans;
                v.duplicate_requests += 1;
            }
        }
        let acked: std::collections::BTreeSet<u64> = report.acked.iter().copied().collect();
        v.unacked_requests += counts.keys().filter(|r| !acked.contains(r)).count();
    }
    v
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(us: u32) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}
