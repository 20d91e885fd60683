//! Deterministic checkout traffic: spans and logs from five services, each in the format a real
//! service of its kind writes, with the ground truth of what was written.
//!
//! A request enters `api-gateway` (`POST /api/checkout`), goes to `order-service`, which reserves
//! stock in `inventory-service` (PostgreSQL query spans, sometimes an N+1 burst, one in N a 400 ms+
//! scan), charges the card through `payment-service` (a `stripe_api_call` CLIENT span: declines,
//! timeouts), and on success publishes to a queue that `email-service` consumes (sometimes
//! dropping the trace context and starting a new trace). About a third of requests are product
//! browses (`GET /api/products/{sku}`: gateway → inventory → one query).
//!
//! # Layout of the output folder
//!
//! | file | format |
//! | --- | --- |
//! | `spans/{api-gateway,order-service,payment-service,email-service}.jsonl` | OTLP/JSON `TracesData`, one batch per line (Collector file exporter) |
//! | `spans/inventory-service.zipkin.json` | Zipkin v2 JSON, an array of spans per line |
//! | `logs/api-gateway.jsonl` | ECS JSON (`@timestamp`, `log.level`, `trace.id`, `span.id`, nested attributes) |
//! | `logs/order-service.log` | logfmt (`ts= level= msg= service= trace_id= span_id= k=v`) |
//! | `logs/inventory-service.jsonl` | Python json-logger (`otelTraceID`, `otelSpanID`, `levelname`) |
//! | `logs/payment-service.jsonl` | Datadog JSON (`dd.trace_id` = low 64 bits of the trace id, decimal) |
//! | `logs/email-service.jsonl` | OTLP/JSON `LogsData`, one batch per line |
//!
//! The ground truth ([`GroundTruth::to_json`], batch mode only: per trace, the `problems` an
//! analysis should find, [`Problem`]) is returned, and [`write_ground_truth`] writes it where the
//! caller says, never into the traffic folder: indexing that folder indexes traffic only.
//!
//! # Which records carry which attribute
//!
//! Ground-truth query counts depend on this, so it is exact:
//!
//! - `decline_code`: only on declined payments, on exactly two records: the payment-service
//!   SERVER span `POST /api/payments` and the payment-service log line `payment declined`.
//! - `card.bin` (string, 6 digits): every payment-service SERVER span, and the payment-service
//!   outcome log line (`payment succeeded` / `payment declined` / `Stripe API timeout`).
//! - `payment.amount_cents` (integer): the payment-service SERVER span, the `charging card` log
//!   line and the outcome log line.
//! - `user.id`: the api-gateway root SERVER span and its access log line (ECS nests it as
//!   `{"user":{"id":..}}`), the order-service SERVER span `POST /api/orders`, the order-service
//!   `order received` and outcome log lines, the payment-service SERVER span and outcome log line,
//!   and the email-service CONSUMER span.
//! - `order.id`: every checkout's order-service spans except the two HTTP CLIENT spans, all its
//!   order-service logs, the inventory-service SERVER span and its `reserving stock` /
//!   `stock reserved` logs, the payment-service SERVER span and all its logs, and the email-service
//!   CONSUMER span and logs.
//! - `db.system = postgresql`, `db.name`, `db.statement`: inventory-service CLIENT spans only.
//! - `error.type`: the `stripe_api_call` span and the `Stripe API timeout` log line of a timeout;
//!   `exception.type`/`.message`/`.stacktrace` only in that span's `exception` event.
//!
//! Status: a Stripe timeout sets ERROR on `stripe_api_call` (with the exception event), on the
//! payment-service SERVER span, order-service's payment CLIENT span, `process_order`, the
//! order-service SERVER span and both gateway spans (HTTP 502). A decline sets ERROR only on the
//! payment-service SERVER span (message `card declined: <code>`); the `stripe_api_call` span of a
//! decline is a fast, well-formed HTTP 402 and stays UNSET, so
//! `name = stripe_api_call AND status = ERROR` counts exactly the timeouts.
//!
//! Levels: `payment declined`, `slow query`, `product not found` and gateway 4xx access lines are
//! warn; `Stripe API timeout`, the order-service `payment failed` line and gateway 5xx access lines
//! are error; everything else is info.
//!
//! # Determinism
//!
//! Output depends only on the [`SimConfig`]: the PRNG is in-house and seeded, time comes from
//! `start_ns`, and request `i` draws from its own stream. Records reach their files in the order
//! of their emission time (a span when it ends, a log when it is written), like real exporters.

mod format;
mod output;
mod record;
mod rng;
mod text;
mod traffic;
mod truth;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use truth::{
    Aggregation, FileTotals, GroundTruth, Problem, QueryCount, Totals, TraceQuery, TraceTruth,
};

use output::{Mode, Output};
use record::Record;
use rng::Rng;

/// What to simulate. Rates are probabilities per request unless noted.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    /// Arrival time of the first request (ns since the epoch). Batch mode never reads the clock.
    pub start_ns: i64,
    /// Requests to simulate in batch mode (ignored when `target_bytes` is set).
    pub traces: usize,
    /// Arrival rate (Poisson), in simulated time for batch mode and real time for live mode.
    pub traces_per_second: f64,
    /// Batch mode: keep starting requests until about this many bytes are written.
    pub target_bytes: Option<u64>,
    /// Share of requests that are product browses rather than checkouts.
    pub browse_ratio: f64,
    /// Card declines for ordinary BINs.
    pub decline_rate: f64,
    /// Card declines for the troubled issuer's BIN (`400022`), mostly `do_not_honor`.
    pub troubled_bin_decline_rate: f64,
    /// Stripe timeouts outside incidents.
    pub stripe_timeout_rate: f64,
    /// Stripe timeouts during an incident: minutes 10–20 of every half hour after `start_ns`.
    pub stripe_incident_timeout_rate: f64,
    /// One checkout in N hits the 400 ms+ `stock_movements` scan (0 = never).
    pub slow_query_one_in: u32,
    /// Checkouts whose stock lookup is an N+1 burst of 10–40 single-SKU queries.
    pub n_plus_one_rate: f64,
    /// Email consumers that lose the trace context and start a new trace.
    pub context_drop_rate: f64,
    /// Paid checkouts whose payment-service loses the caller's context and starts a new trace.
    pub payment_context_drop_rate: f64,
    /// Distinct users (ids drawn with a heavily skewed distribution).
    pub users: u32,
    /// Gateway health-check log lines (no trace) every this many ns; 0 = none.
    pub health_check_interval_ns: i64,
    /// Live mode: the first arrival, when it lies in the past (the requests from then until now
    /// are written at once, so live traffic continues a history without a gap); `None` or a
    /// future time starts now.
    pub live_from_ns: Option<i64>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 7,
            start_ns: 1_795_183_200_000_000_000, // 2026-11-20T14:00:00Z
            traces: 1_000,
            traces_per_second: 20.0,
            target_bytes: None,
            browse_ratio: 0.3,
            decline_rate: 0.05,
            troubled_bin_decline_rate: 0.4,
            stripe_timeout_rate: 0.005,
            stripe_incident_timeout_rate: 0.08,
            slow_query_one_in: 40,
            n_plus_one_rate: 0.05,
            context_drop_rate: 0.1,
            payment_context_drop_rate: 0.03,
            users: 50_000,
            health_check_interval_ns: 10_000_000_000,
            live_from_ns: None,
        }
    }
}

/// What live mode wrote before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub requests: u64,
    pub spans: u64,
    pub logs: u64,
    pub lines: u64,
    pub bytes: u64,
}

/// Writes the traffic of `config` into `out_dir` (created if needed; files truncated) and
/// returns its ground truth.
pub fn generate(config: &SimConfig, out_dir: &Path) -> io::Result<GroundTruth> {
    check(config)?;
    let truth = truth::Truth::new(config);
    let mut engine = Engine::new(
        config,
        Output::open(out_dir, Mode::Truncate, 1_000_000_000, Some(truth))?,
    );
    let mut t = config.start_ns;
    loop {
        let more = match config.target_bytes {
            Some(target) => engine.out.bytes() < target,
            None => (engine.requests as usize) < config.traces,
        };
        if !more {
            break;
        }
        engine.start_request(t);
        t += engine.arrivals.exp_interval(config.traces_per_second);
        engine.release(t)?;
    }
    engine.release(i64::MAX)?;
    let requests = engine.requests;
    let (totals, truth) = engine.out.finish()?;
    let truth = truth
        .map(|t| t.finish(config, requests, totals))
        .expect("batch mode keeps the truth");
    Ok(truth)
}

/// Writes `truth` as pretty JSON ([`GroundTruth::to_json`]) to `path`; keep it out of the
/// traffic folder, or indexing that folder indexes the truth as unparsed lines.
pub fn write_ground_truth(truth: &GroundTruth, path: &Path) -> io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, &truth.to_json()).map_err(io::Error::other)?;
    io::Write::write_all(&mut w, b"\n")?;
    io::Write::flush(&mut w)
}

/// Appends traffic to `out_dir` in real time (timestamps = now) at `config.traces_per_second`
/// until `stop` is set. Lines are flushed within ~100 ms and files only ever hold whole lines
/// between iterations. On stop, requests in flight are completed and written.
pub fn run_live(
    config: &SimConfig,
    out_dir: &Path,
    stop: Arc<AtomicBool>,
) -> io::Result<LiveStats> {
    check(config)?;
    let wall0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(io::Error::other)?
        .as_nanos() as i64;
    let clock = Instant::now();
    let now = || wall0 + clock.elapsed().as_nanos() as i64;
    let first = config.live_from_ns.filter(|&t| t < wall0).unwrap_or(wall0);
    let config = SimConfig {
        start_ns: first,
        ..config.clone()
    };
    // Exporters in live mode flush quickly so the demo shows traffic at once.
    let mut engine = Engine::new(
        &config,
        Output::open(out_dir, Mode::Append, 200_000_000, None)?,
    );
    let mut next_arrival = first;
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        while next_arrival <= t {
            engine.start_request(next_arrival);
            next_arrival += engine.arrivals.exp_interval(config.traces_per_second);
        }
        engine.release(t)?;
        engine.out.flush_stale(t)?;
        engine.out.flush()?;
        let next_event = engine
            .pending
            .peek()
            .map_or(i64::MAX, |p| p.0.emit_ns)
            .min(next_arrival);
        let wait = (next_event - now()).clamp(1_000_000, 100_000_000);
        std::thread::sleep(Duration::from_nanos(wait as u64));
    }
    engine.release(i64::MAX)?;
    let requests = engine.requests;
    engine.out.flush()?;
    let mut stats = engine.out.stats();
    stats.requests = requests;
    Ok(stats)
}

fn check(config: &SimConfig) -> io::Result<()> {
    if !(config.traces_per_second > 0.0 && config.traces_per_second.is_finite()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "traces_per_second must be positive",
        ));
    }
    Ok(())
}

/// Requests in flight: records wait in a heap until simulated (or real) time reaches their
/// emission time, so each file is written in the order a real exporter would write it. Memory
/// is bounded by the requests of the last few seconds.
struct Engine<'a> {
    config: &'a SimConfig,
    out: Output,
    arrivals: Rng,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    requests: u64,
    next_health_ns: i64,
    scratch: Vec<Record>,
}

struct Pending {
    emit_ns: i64,
    seq: u64,
    record: Record,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Pending) -> bool {
        (self.emit_ns, self.seq) == (other.emit_ns, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Pending) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Pending) -> std::cmp::Ordering {
        (self.emit_ns, self.seq).cmp(&(other.emit_ns, other.seq))
    }
}

impl Engine<'_> {
    fn new(config: &SimConfig, out: Output) -> Engine<'_> {
        Engine {
            config,
            out,
            arrivals: Rng::derive(config.seed, 0, 0),
            pending: BinaryHeap::new(),
            seq: 0,
            requests: 0,
            next_health_ns: config.start_ns,
            scratch: Vec::new(),
        }
    }

    fn start_request(&mut self, t: i64) {
        // Health checks up to this arrival: periodic, independent of the requests.
        let interval = self.config.health_check_interval_ns;
        while interval > 0 && self.next_health_ns <= t {
            let record = traffic::health_check(self.next_health_ns);
            self.next_health_ns += interval;
            self.push(record);
        }
        let mut records = std::mem::take(&mut self.scratch);
        traffic::request(self.config, self.requests, t, &mut records);
        self.requests += 1;
        for record in records.drain(..) {
            self.push(record);
        }
        self.scratch = records;
    }

    fn push(&mut self, record: Record) {
        self.seq += 1;
        self.pending.push(Reverse(Pending {
            emit_ns: record.emit_ns(),
            seq: self.seq,
            record,
        }));
    }

    /// Writes every record due at or before `now`, in emission order.
    fn release(&mut self, now: i64) -> io::Result<()> {
        while let Some(p) = self.pending.peek() {
            if p.0.emit_ns > now {
                break;
            }
            let Some(Reverse(p)) = self.pending.pop() else {
                break;
            };
            self.out.flush_stale(p.emit_ns)?;
            self.out.write(&p.record)?;
        }
        Ok(())
    }
}
