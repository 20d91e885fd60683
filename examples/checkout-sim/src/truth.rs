//! Ground truth: what was written, counted record by record as it is written, plus the answers to
//! a fixed set of queries in threadline's query language.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use crate::SimConfig;
use crate::record::{Level, Record, Val};
use crate::text::{rfc3339_secs, trace_hex};
use crate::traffic::{TROUBLED_BIN, order_id, user_id};

/// Everything the simulator knows about what it wrote. See [`crate`] docs for which records carry
/// which attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// The seed the traffic came from.
    pub seed: u64,
    /// Arrival time of the first request, in ns since the epoch.
    pub start_ns: i64,
    /// Requests simulated (checkout and browse).
    pub requests: u64,
    /// Per trace id (its 32-hex spelling is `format!("{id:032x}")`).
    pub traces: BTreeMap<u128, TraceTruth>,
    pub totals: Totals,
    pub queries: Vec<QueryCount>,
    pub aggregations: Vec<Aggregation>,
    /// Trace-level questions (`trace(...)`, `>`) and the traces that answer them.
    pub trace_queries: Vec<TraceQuery>,
}

/// A query in threadline's language with `trace(...)` or `>` in it, and the traces having a
/// record it matches (what `GET /api/v1/traces?q=` lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    pub q: String,
    pub traces: BTreeSet<u128>,
}

/// The records that belong to one trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceTruth {
    /// Span records carrying this trace id.
    pub spans: u64,
    /// Log records carrying this trace id (Datadog logs: its low 64 bits).
    pub logs: u64,
    /// Name of the span without a parent (every trace written has exactly one).
    pub root: Option<String>,
    /// Whether any of its spans has status ERROR.
    pub error: bool,
    /// What threadline's analysis should find in it (none for a healthy trace).
    pub problems: Vec<Problem>,
}

/// A finding the trace should get: its kind (`slow_span`, `n_plus_one`, `error_origin`,
/// `broken_propagation`, `detached_root`), the span, and the trace it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: &'static str,
    pub span_id: u64,
    pub linked_trace_id: Option<u128>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub traces: u64,
    pub spans: u64,
    pub logs: u64,
    /// Log records with no trace context (health checks).
    pub logs_without_trace: u64,
    pub lines: u64,
    pub bytes: u64,
    /// Per file, keyed by the path relative to the output folder.
    pub files: BTreeMap<String, FileTotals>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTotals {
    pub format: &'static str,
    pub spans: u64,
    pub logs: u64,
    pub lines: u64,
    pub bytes: u64,
}

/// A query in threadline's language and the number of records (spans + logs) it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCount {
    pub q: String,
    pub count: u64,
}

/// A query grouped by fields and/or time buckets, with the count per bucket key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    pub q: String,
    pub by: Vec<String>,
    /// e.g. `"10m"`; buckets are then keyed by their start, `YYYY-MM-DDTHH:MM:00Z`.
    pub interval: Option<String>,
    /// `"records"`: matching records per bucket; `"traces"`: distinct traces having a matching
    /// record (records without a trace are not counted).
    pub count: &'static str,
    pub buckets: BTreeMap<String, u64>,
}

impl GroundTruth {
    /// The JSON written to `ground_truth.json`.
    pub fn to_json(&self) -> Value {
        let mut traces = serde_json::Map::new();
        for (id, t) in &self.traces {
            traces.insert(
                trace_hex(*id),
                json!({"spans": t.spans, "logs": t.logs, "root": t.root, "error": t.error,
                    "problems": t.problems.iter().map(|p| json!({
                        "kind": p.kind,
                        "span_id": format!("{:016x}", p.span_id),
                        "linked_trace_id": p.linked_trace_id.map(trace_hex),
                    })).collect::<Vec<_>>()}),
            );
        }
        let files: serde_json::Map<String, Value> = self
            .totals
            .files
            .iter()
            .map(|(path, f)| {
                let v = json!({"format": f.format, "spans": f.spans, "logs": f.logs, "lines": f.lines, "bytes": f.bytes});
                (path.clone(), v)
            })
            .collect();
        json!({
            "seed": self.seed,
            "start": crate::text::rfc3339_secs(self.start_ns),
            "start_ns": self.start_ns,
            "requests": self.requests,
            "totals": {
                "traces": self.totals.traces,
                "spans": self.totals.spans,
                "logs": self.totals.logs,
                "logs_without_trace": self.totals.logs_without_trace,
                "lines": self.totals.lines,
                "bytes": self.totals.bytes,
                "files": files,
            },
            "queries": self.queries.iter().map(|q| json!({"q": q.q, "count": q.count})).collect::<Vec<_>>(),
            "aggregations": self.aggregations.iter().map(|a| json!({
                "q": a.q, "by": a.by, "interval": a.interval, "count": a.count, "buckets": a.buckets,
            })).collect::<Vec<_>>(),
            "trace_queries": self.trace_queries.iter().map(|t| json!({
                "q": t.q,
                "traces": t.traces.iter().map(|id| trace_hex(*id)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "traces": traces,
        })
    }
}

type Pred = Box<dyn Fn(&Record) -> bool>;
type KeyFn = Box<dyn Fn(&Record) -> Option<String>>;

/// Accumulates the ground truth while records are written.
pub(crate) struct Truth {
    traces: HashMap<u128, TraceTruth>,
    logs_without_trace: u64,
    queries: Vec<(String, Pred, u64)>,
    aggregations: Vec<(Aggregation, Pred, KeyFn)>,
    /// Per `count = "traces"` aggregation (same order), the traces seen per bucket.
    trace_sets: Vec<BTreeMap<String, HashSet<u128>>>,
    trace_questions: Vec<TraceQuestion>,
}

/// How a trace-level question combines its two record predicates.
enum Shape {
    /// `trace(A) AND trace(B)`: the trace has a record matching A and one matching B.
    Both,
    /// `trace(A) AND NOT trace(B)`: a record matching A and none matching B.
    Without,
    /// `(A) > (B)`: a span matching B whose parent span matches A.
    Child,
}

/// A trace-level question, with what each trace has shown of it so far (only traces where a
/// predicate matched are kept).
struct TraceQuestion {
    q: &'static str,
    shape: Shape,
    a: Pred,
    b: Pred,
    facts: HashMap<u128, TraceFacts>,
}

#[derive(Default)]
struct TraceFacts {
    a: bool,
    b: bool,
    /// Spans matching A (for `>`).
    a_spans: HashSet<u64>,
    /// Parents of the spans matching B (for `>`).
    b_parents: Vec<u64>,
}

impl TraceQuestion {
    fn observe(&mut self, trace_id: u128, record: &Record) {
        let (a, b) = ((self.a)(record), (self.b)(record));
        if !a && !b {
            return;
        }
        let facts = self.facts.entry(trace_id).or_default();
        facts.a |= a;
        facts.b |= b;
        if let (Shape::Child, Record::Span(span)) = (&self.shape, record) {
            if a {
                facts.a_spans.insert(span.span_id);
            }
            if let (true, Some(parent)) = (b, span.parent_span_id) {
                facts.b_parents.push(parent);
            }
        }
    }

    fn answer(self) -> TraceQuery {
        let shape = self.shape;
        let traces = self
            .facts
            .into_iter()
            .filter(|(_, f)| match shape {
                Shape::Both => f.a && f.b,
                Shape::Without => f.a && !f.b,
                Shape::Child => f.b_parents.iter().any(|p| f.a_spans.contains(p)),
            })
            .map(|(id, _)| id)
            .collect();
        TraceQuery {
            q: self.q.to_owned(),
            traces,
        }
    }
}

/// The trace-level questions the ground truth answers.
fn trace_questions() -> Vec<TraceQuestion> {
    let question = |q, shape, a: Pred, b: Pred| TraceQuestion {
        q,
        shape,
        a,
        b,
        facts: HashMap::new(),
    };
    let service = |r: &Record, name: &str| r.service().name() == name;
    vec![
        // Failed payments whose order-service logged a warning in the same trace: declines
        // whose trace context reached payment-service.
        question(
            "trace(service = payment-service AND status = ERROR) AND \
             trace(level = warn AND service = order-service)",
            Shape::Both,
            Box::new(move |r| span_error(r) && service(r, "payment-service")),
            Box::new(move |r| {
                matches!(r, Record::Log(l) if l.level == Level::Warn) && service(r, "order-service")
            }),
        ),
        // do_not_honor declines from other issuers than the troubled BIN's.
        question(
            "trace(decline_code = do_not_honor) AND NOT trace(card.bin = 400022)",
            Shape::Without,
            Box::new(|r| r.attr_str("decline_code") == Some("do_not_honor")),
            Box::new(|r| r.attr_str("card.bin") == Some(TROUBLED_BIN)),
        ),
        // Failed payments called by order-service's CLIENT span (context kept).
        question(
            "(service = order-service AND span_kind = CLIENT) > \
             (service = payment-service AND status = ERROR)",
            Shape::Child,
            Box::new(move |r| {
                matches!(r, Record::Span(s) if s.kind == crate::record::SpanKind::Client)
                    && service(r, "order-service")
            }),
            Box::new(move |r| span_error(r) && service(r, "payment-service")),
        ),
        // Slow queries (over 400 ms) made directly under inventory-service's SERVER span.
        question(
            "(service = inventory-service AND span_kind = SERVER) > \
             (db.system = postgresql AND duration > 400ms)",
            Shape::Child,
            Box::new(move |r| {
                matches!(r, Record::Span(s) if s.kind == crate::record::SpanKind::Server)
                    && service(r, "inventory-service")
            }),
            Box::new(|r| {
                matches!(r, Record::Span(s) if s.end_ns - s.start_ns > 400_000_000)
                    && r.attr_str("db.system") == Some("postgresql")
            }),
        ),
    ]
}

impl std::fmt::Debug for Truth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Truth")
            .field("traces", &self.traces.len())
            .finish_non_exhaustive()
    }
}

impl Truth {
    pub(crate) fn new(cfg: &SimConfig) -> Truth {
        let users = cfg.users.max(1) as u64;
        let mut queries: Vec<(String, Pred)> = Vec::new();
        for code in [
            "do_not_honor",
            "insufficient_funds",
            "card_declined",
            "expired_card",
            "incorrect_cvc",
            "fraudulent",
        ] {
            queries.push((
                format!("decline_code = \"{code}\""),
                Box::new(move |r| r.attr_str("decline_code") == Some(code)),
            ));
        }
        queries.push((
            "decline_code = \"do_not_honor\" AND kind = log".into(),
            Box::new(|r| is_log(r) && r.attr_str("decline_code") == Some("do_not_honor")),
        ));
        queries.push((
            "kind = span AND name = stripe_api_call".into(),
            Box::new(|r| span_named(r, "stripe_api_call")),
        ));
        queries.push((
            "kind = span AND name = stripe_api_call AND status = ERROR".into(),
            Box::new(|r| span_named(r, "stripe_api_call") && span_error(r)),
        ));
        queries.push((
            "kind = span AND service = payment-service AND status = ERROR".into(),
            Box::new(|r| is_span(r) && r.service().name() == "payment-service" && span_error(r)),
        ));
        queries.push((
            "exception.type = \"java.net.SocketTimeoutException\" AND kind = span".into(),
            Box::new(|r| {
                matches!(r, Record::Span(s) if s.events.iter().any(|e| e.attrs.iter().any(|a| a.key == "exception.type" && a.val == Val::Str("java.net.SocketTimeoutException".into()))))
            }),
        ));
        queries.push((
            "kind = log AND service = payment-service AND level >= error".into(),
            Box::new(|r| matches!(r, Record::Log(l) if l.service.name() == "payment-service" && l.level >= Level::Error)),
        ));
        queries.push((
            "kind = log AND level >= warn".into(),
            Box::new(|r| matches!(r, Record::Log(l) if l.level >= Level::Warn)),
        ));
        queries.push((
            "kind = log AND level = error".into(),
            Box::new(|r| matches!(r, Record::Log(l) if l.level == Level::Error)),
        ));
        queries.push((
            "kind = log AND service = api-gateway".into(),
            Box::new(|r| is_log(r) && r.service().name() == "api-gateway"),
        ));
        queries.push((
            "kind = span AND service = inventory-service".into(),
            Box::new(|r| is_span(r) && r.service().name() == "inventory-service"),
        ));
        for rank in [1, 2, 3, 50] {
            let user = user_id(rank, users);
            queries.push((
                format!("user.id = {user}"),
                Box::new(move |r| r.attr_str("user.id") == Some(user.as_str())),
            ));
        }
        if let Some(index) = (0..1_000).find(|&i| crate::traffic::is_checkout(cfg, i)) {
            let order = order_id(cfg.seed, index);
            queries.push((
                format!("order.id = {order}"),
                Box::new(move |r| r.attr_str("order.id") == Some(order.as_str())),
            ));
        }
        queries.push((
            format!("card.bin = {TROUBLED_BIN}"),
            Box::new(|r| r.attr_str("card.bin") == Some(TROUBLED_BIN)),
        ));
        queries.push((
            "kind = span AND payment.amount_cents > 10000".into(),
            Box::new(|r| {
                is_span(r)
                    && matches!(r.attr("payment.amount_cents"), Some(Val::Int(v)) if *v > 10_000)
            }),
        ));
        queries.push((
            "kind = span AND db.system = postgresql".into(),
            Box::new(|r| is_span(r) && r.attr_str("db.system") == Some("postgresql")),
        ));
        queries.push((
            "kind = span AND db.system = postgresql AND duration > 400ms".into(),
            Box::new(|r| {
                matches!(r, Record::Span(s) if s.end_ns - s.start_ns > 400_000_000)
                    && r.attr_str("db.system") == Some("postgresql")
            }),
        ));
        queries.push((
            "kind = span AND db.statement = \"SELECT sku, available FROM stock WHERE sku = $1\""
                .into(),
            Box::new(|r| {
                is_span(r)
                    && r.attr_str("db.statement")
                        == Some("SELECT sku, available FROM stock WHERE sku = $1")
            }),
        ));
        queries.push((
            "kind = span AND http.response.status_code >= 500".into(),
            Box::new(|r| {
                is_span(r)
                    && matches!(r.attr("http.response.status_code"), Some(Val::Int(v)) if *v >= 500)
            }),
        ));
        queries.push((
            "kind = span AND name = \"process order_confirmations\"".into(),
            Box::new(|r| span_named(r, "process order_confirmations")),
        ));

        let aggregations: Vec<(Aggregation, Pred, KeyFn)> = vec![
            (
                aggregation("exists(decline_code)", &["decline_code"], None),
                Box::new(|r| r.attr("decline_code").is_some()),
                Box::new(|r| r.attr_str("decline_code").map(str::to_owned)),
            ),
            (
                aggregation("kind = span AND exists(decline_code)", &["card.bin"], None),
                Box::new(|r| is_span(r) && r.attr("decline_code").is_some()),
                Box::new(|r| r.attr_str("card.bin").map(str::to_owned)),
            ),
            (
                aggregation(
                    "kind = span AND name = stripe_api_call AND status = ERROR",
                    &[],
                    Some("10m"),
                ),
                Box::new(|r| span_named(r, "stripe_api_call") && span_error(r)),
                Box::new(|r| match r {
                    Record::Span(s) => Some(rfc3339_secs(
                        s.start_ns - s.start_ns.rem_euclid(600_000_000_000),
                    )),
                    Record::Log(_) => None,
                }),
            ),
            (
                aggregation("kind = span", &["service"], None),
                Box::new(is_span),
                Box::new(|r| Some(r.service().name().to_owned())),
            ),
            (
                aggregation("kind = log", &["service"], None),
                Box::new(is_log),
                Box::new(|r| Some(r.service().name().to_owned())),
            ),
            // Distinct traces: a decline writes a span and a log line that both carry the code
            // and the BIN; the trace counts once.
            (
                traces(aggregation("exists(decline_code)", &["decline_code"], None)),
                Box::new(|r| r.attr("decline_code").is_some()),
                Box::new(|r| r.attr_str("decline_code").map(str::to_owned)),
            ),
            (
                traces(aggregation("exists(decline_code)", &["card.bin"], None)),
                Box::new(|r| r.attr("decline_code").is_some()),
                Box::new(|r| r.attr_str("card.bin").map(str::to_owned)),
            ),
            (
                traces(aggregation("kind = span", &["service"], None)),
                Box::new(is_span),
                Box::new(|r| Some(r.service().name().to_owned())),
            ),
            (
                traces(aggregation("level >= warn", &[], Some("10m"))),
                Box::new(|r| matches!(r, Record::Log(l) if l.level >= Level::Warn)),
                Box::new(|r| match r {
                    Record::Log(l) => Some(rfc3339_secs(
                        l.time_ns - l.time_ns.rem_euclid(600_000_000_000),
                    )),
                    Record::Span(_) => None,
                }),
            ),
        ];

        Truth {
            traces: HashMap::new(),
            logs_without_trace: 0,
            queries: queries.into_iter().map(|(q, p)| (q, p, 0)).collect(),
            trace_sets: vec![BTreeMap::new(); aggregations.len()],
            aggregations,
            trace_questions: trace_questions(),
        }
    }

    pub(crate) fn observe(&mut self, record: &Record) {
        match record {
            Record::Span(span) => {
                let t = self.traces.entry(span.trace_id).or_default();
                t.spans += 1;
                if span.parent_span_id.is_none() {
                    t.root = Some(span.name.to_string());
                }
                t.error |= span.error.is_some();
                t.problems
                    .extend(span.problems.iter().map(|&(kind, linked)| Problem {
                        kind,
                        span_id: span.span_id,
                        linked_trace_id: linked,
                    }));
            }
            Record::Log(log) => match log.trace_id {
                Some(trace_id) => self.traces.entry(trace_id).or_default().logs += 1,
                None => self.logs_without_trace += 1,
            },
        }
        for (_, pred, count) in &mut self.queries {
            if pred(record) {
                *count += 1;
            }
        }
        let trace_id = match record {
            Record::Span(span) => Some(span.trace_id),
            Record::Log(log) => log.trace_id,
        };
        if let Some(trace_id) = trace_id {
            for question in &mut self.trace_questions {
                question.observe(trace_id, record);
            }
        }
        for ((agg, pred, key), sets) in self.aggregations.iter_mut().zip(&mut self.trace_sets) {
            if !pred(record) {
                continue;
            }
            let Some(k) = key(record) else { continue };
            match (agg.count, trace_id) {
                ("traces", Some(trace_id)) => {
                    sets.entry(k).or_default().insert(trace_id);
                }
                ("traces", None) => {}
                _ => *agg.buckets.entry(k).or_default() += 1,
            }
        }
    }

    pub(crate) fn finish(self, cfg: &SimConfig, requests: u64, mut totals: Totals) -> GroundTruth {
        totals.traces = self.traces.len() as u64;
        totals.logs_without_trace = self.logs_without_trace;
        GroundTruth {
            seed: cfg.seed,
            start_ns: cfg.start_ns,
            requests,
            traces: self.traces.into_iter().collect(),
            totals,
            queries: self
                .queries
                .into_iter()
                .map(|(q, _, count)| QueryCount { q, count })
                .collect(),
            aggregations: self
                .aggregations
                .into_iter()
                .zip(self.trace_sets)
                .map(|((mut a, _, _), sets)| {
                    if a.count == "traces" {
                        a.buckets = sets
                            .into_iter()
                            .map(|(k, traces)| (k, traces.len() as u64))
                            .collect();
                    }
                    a
                })
                .collect(),
            trace_queries: self
                .trace_questions
                .into_iter()
                .map(TraceQuestion::answer)
                .collect(),
        }
    }
}

fn aggregation(q: &str, by: &[&str], interval: Option<&str>) -> Aggregation {
    Aggregation {
        q: q.to_owned(),
        by: by.iter().map(|b| (*b).to_owned()).collect(),
        interval: interval.map(str::to_owned),
        count: "records",
        buckets: BTreeMap::new(),
    }
}

/// The aggregation counting distinct traces instead of records.
fn traces(aggregation: Aggregation) -> Aggregation {
    Aggregation {
        count: "traces",
        ..aggregation
    }
}

fn is_span(r: &Record) -> bool {
    matches!(r, Record::Span(_))
}

fn is_log(r: &Record) -> bool {
    matches!(r, Record::Log(_))
}

fn span_named(r: &Record, name: &str) -> bool {
    matches!(r, Record::Span(s) if s.name == name)
}

fn span_error(r: &Record) -> bool {
    matches!(r, Record::Span(s) if s.error.is_some())
}
