//! Prometheus metrics, kept by hand (a few counters and histograms do not need a library):
//! records ingested and rejected, the writer's queue and commits, request latency per route,
//! OTLP ack latency, and rejected requests by reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use index::WriterStats;

use crate::AppState;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS_S: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's counters; shared by every request, and by other components through
/// [`AppState::metrics`].
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Signal (`traces`, `logs`, or a source name) → records accepted for indexing.
    ingested: BTreeMap<String, u64>,
    /// Signal → records refused (partial success).
    rejected_records: BTreeMap<String, u64>,
    /// Signal → OTLP requests answered again without indexing (retries of acknowledged ones).
    duplicates: BTreeMap<&'static str, u64>,
    /// Reason (`unauthorized`, `too_large`, `queue_full`, ...) → requests refused.
    rejected_requests: BTreeMap<&'static str, u64>,
    /// Route → latency.
    requests: BTreeMap<String, Histogram>,
    /// From handing a batch to the writer to its commit.
    ack_latency: Histogram,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    counts: [u64; BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

impl Metrics {
    /// Records of `signal` accepted for indexing and refused as invalid.
    pub fn count_ingest(&self, signal: &str, accepted: u64, rejected: u64) {
        let mut inner = self.lock();
        *inner.ingested.entry(signal.to_owned()).or_default() += accepted;
        if rejected > 0 {
            *inner.rejected_records.entry(signal.to_owned()).or_default() += rejected;
        }
    }

    /// An OTLP request of `signal` that repeated one acknowledged recently: not indexed again.
    pub fn count_duplicate(&self, signal: &'static str) {
        *self.lock().duplicates.entry(signal).or_default() += 1;
    }

    pub fn count_rejected(&self, reason: &'static str) {
        *self.lock().rejected_requests.entry(reason).or_default() += 1;
    }

    pub fn observe_request(&self, route: &str, elapsed: Duration) {
        let mut inner = self.lock();
        match inner.requests.get_mut(route) {
            Some(h) => h.observe(elapsed),
            None => {
                let mut h = Histogram::default();
                h.observe(elapsed);
                inner.requests.insert(route.to_owned(), h);
            }
        }
    }

    pub fn observe_ack(&self, elapsed: Duration) {
        self.lock().ack_latency.observe(elapsed);
    }

    /// The Prometheus text exposition of everything, plus the writer's own numbers.
    pub fn render(&self, writer: &WriterStats, num_docs: u64) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        let gauge = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        };

        counter(
            &mut out,
            "threadline_ingest_records_total",
            "Records accepted for indexing, by signal.",
        );
        for (signal, n) in &inner.ingested {
            let _ = writeln!(
                out,
                "threadline_ingest_records_total{{signal=\"{}\"}} {n}",
                escape(signal)
            );
        }
        counter(
            &mut out,
            "threadline_ingest_rejected_records_total",
            "Records refused as invalid (OTLP partial success), by signal.",
        );
        for (signal, n) in &inner.rejected_records {
            let _ = writeln!(
                out,
                "threadline_ingest_rejected_records_total{{signal=\"{}\"}} {n}",
                escape(signal)
            );
        }
        counter(
            &mut out,
            "threadline_ingest_duplicate_requests_total",
            "OTLP requests identical to one acknowledged recently, answered again without indexing, by signal.",
        );
        for (signal, n) in &inner.duplicates {
            let _ = writeln!(
                out,
                "threadline_ingest_duplicate_requests_total{{signal=\"{signal}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "threadline_rejected_requests_total",
            "Requests refused, by reason.",
        );
        for (reason, n) in &inner.rejected_requests {
            let _ = writeln!(
                out,
                "threadline_rejected_requests_total{{reason=\"{reason}\"}} {n}"
            );
        }

        counter(
            &mut out,
            "threadline_index_records_total",
            "Records in successful commits since start.",
        );
        let _ = writeln!(
            out,
            "threadline_index_records_total {}",
            writer.records_indexed
        );
        counter(
            &mut out,
            "threadline_index_commits_total",
            "Commits since start.",
        );
        let _ = writeln!(out, "threadline_index_commits_total {}", writer.commits);
        gauge(
            &mut out,
            "threadline_index_last_commit_seconds",
            "Duration of the last commit.",
        );
        let _ = writeln!(
            out,
            "threadline_index_last_commit_seconds {}",
            writer.last_commit_latency.as_secs_f64()
        );
        gauge(
            &mut out,
            "threadline_index_documents",
            "Spans and logs visible to searches.",
        );
        let _ = writeln!(out, "threadline_index_documents {num_docs}");
        gauge(
            &mut out,
            "threadline_writer_queue_depth",
            "Batches waiting for the writer.",
        );
        let _ = writeln!(out, "threadline_writer_queue_depth {}", writer.queue_depth);
        gauge(
            &mut out,
            "threadline_writer_queue_capacity",
            "Batches the writer's queue holds.",
        );
        let _ = writeln!(
            out,
            "threadline_writer_queue_capacity {}",
            writer.queue_capacity
        );
        gauge(
            &mut out,
            "threadline_writer_up",
            "1 while the writer indexes; 0 while an error (a full disk, too many open files) pauses it (the cause is in the log and /readyz) or after it stopped.",
        );
        let up = writer.paused.is_none() && !writer.stopped;
        let _ = writeln!(out, "threadline_writer_up {}", u8::from(up));
        counter(
            &mut out,
            "threadline_writer_pauses_total",
            "Times an error paused indexing (uncommitted work rolled back) since start.",
        );
        let _ = writeln!(out, "threadline_writer_pauses_total {}", writer.pauses);

        let name = "threadline_ingest_ack_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From queuing an OTLP batch to the commit that holds it.\n# TYPE {name} histogram"
        );
        inner.ack_latency.render(&mut out, name, "");

        let name = "threadline_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Request latency by route.\n# TYPE {name} histogram"
        );
        for (route, h) in &inner.requests {
            h.render(&mut out, name, &format!("route=\"{}\"", escape(route)));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still just numbers.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        let slot = BUCKETS_S
            .iter()
            .position(|&le| s <= le)
            .unwrap_or(BUCKETS_S.len());
        self.counts[slot] += 1;
        self.sum_s += s;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, le) in BUCKETS_S.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_s);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// A label value in the exposition format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state
        .metrics
        .render(&state.writer.stats(), state.index.num_docs());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
