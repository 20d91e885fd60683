//! Trace analysis: what went wrong in one assembled trace, where, and which trace it continues
//! in. Pure functions over plain data: spans and logs in, a typed [`Analysis`] out; no index, no
//! clock, no I/O. What only the index knows (an operation's usual duration, root spans of other
//! traces) comes in through the one narrow [`Lookup`] interface.
//!
//! - [`tree`]: the span forest, tolerant of several roots, orphans, duplicate ids and cycles.
//! - [`critical`]: Jaeger UI's critical path, as segments that tile each root.
//! - [`findings`]: error origin, slow span, N+1, sequential siblings, broken propagation,
//!   detached root, clock skew, orphans, duplicate ids, cycles.

pub mod critical;
pub mod findings;
pub mod tree;

use std::collections::BTreeMap;

use model::{SpanId, SpanKind, TraceId};
use serde::Serialize;

pub use crate::findings::Thresholds;
pub use crate::tree::Tree;

/// Analyses one trace. `lookup` supplies what only the index knows ([`NoIndex`] when there is
/// none at hand).
pub fn analyze(trace: &TraceData, lookup: &dyn Lookup, options: &Options) -> Analysis {
    let tree = Tree::build(&trace.spans);
    let skew = findings::clock_skew(&trace.spans, &tree, options.adjust_clock_skew);
    // With the adjustment on, everything below sees the corrected times (and the clock_skew
    // findings say by how much each span moved).
    let adjusted;
    let spans: &[Span] = match &skew.adjusted {
        Some(spans) => {
            adjusted = spans.clone();
            &adjusted
        }
        None => &trace.spans,
    };
    let critical_path = critical::critical_path(spans, &tree);
    let self_time = self_time_ns(spans, &tree);
    let mut self_time_ns = BTreeMap::new();
    let mut self_time_by_service_ns: BTreeMap<String, i64> = BTreeMap::new();
    for (i, span) in spans.iter().enumerate() {
        if let Some(id) = span.span_id {
            self_time_ns.entry(id.to_string()).or_insert(self_time[i]);
        }
        *self_time_by_service_ns
            .entry(span.service.clone())
            .or_default() += self_time[i];
    }
    let orphans = tree
        .orphans
        .iter()
        .filter_map(|&i| spans[i].span_id.map(|id| id.to_string()))
        .collect();
    let context = findings::Context {
        trace_id: trace.trace_id,
        spans,
        logs: &trace.logs,
        tree: &tree,
        critical_path: &critical_path,
        self_time: &self_time,
        lookup,
        thresholds: &options.thresholds,
    };
    let mut all = findings::all(&context, skew.findings);
    if trace.duplicates_dropped > 0 {
        all.push(findings::duplicates_dropped(trace.duplicates_dropped));
    }
    Analysis {
        critical_path,
        self_time_ns,
        self_time_by_service_ns,
        orphans,
        findings: all,
    }
}

/// One trace as assembled: its spans (any order) and logs.
#[derive(Debug, Clone, Default)]
pub struct TraceData {
    pub trace_id: Option<TraceId>,
    pub spans: Vec<Span>,
    pub logs: Vec<Log>,
    /// Spans the assembly left out as identical copies of another (same id, same record).
    pub duplicates_dropped: usize,
}

/// A span, reduced to what analysis reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: i64,
    /// Negative durations (bad clocks, bad input) count as zero.
    pub duration_ns: i64,
    /// `Some(status message)` when the status is ERROR.
    pub error: Option<String>,
    /// `host.id`, `host.ip` or `host.name` of its resource (clock-skew adjustment).
    pub host: Option<String>,
    /// Names the callee may go by: `peer.service`, `server.address`, the host of `url.full` /
    /// `http.url`, `rpc.service`.
    pub peer: Vec<String>,
    pub db_system: Option<String>,
    pub db_statement: Option<String>,
    /// `http.route`, `url.path` or `url.full`: what the span served or called.
    pub route: Option<String>,
    pub messaging_destination: Option<String>,
    pub messaging_message_id: Option<String>,
    /// `exception` events, in time order.
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exception {
    pub time_ns: i64,
    pub type_name: String,
    pub message: String,
}

/// A log record of the trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    pub time_ns: i64,
    /// Index into [`TraceData::spans`] of the span it belongs to.
    pub span: Option<usize>,
    /// Level error or above.
    pub is_error: bool,
    pub service: String,
    pub body: String,
}

/// What the index knows about other traces, asked only for the few spans that need it.
pub trait Lookup {
    /// The median duration of spans of this operation (service + name) across the index, or
    /// `None` when too few are recorded to say.
    fn operation_p50_ns(&self, service: &str, name: &str) -> Option<i64>;
    /// Spans of other traces (never `query.exclude`) that match `query`, at most `query.limit`.
    fn spans(&self, query: &SpanQuery) -> Vec<ForeignSpan>;
    /// Whether any span (of any trace) names `span_id` of `trace_id` as its parent.
    fn has_children(&self, trace_id: TraceId, span_id: SpanId) -> bool;
}

/// No index at hand: no p50s, no other traces.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIndex;

impl Lookup for NoIndex {
    fn operation_p50_ns(&self, _: &str, _: &str) -> Option<i64> {
        None
    }

    fn spans(&self, _: &SpanQuery) -> Vec<ForeignSpan> {
        Vec::new()
    }

    fn has_children(&self, _: TraceId, _: SpanId) -> bool {
        false
    }
}

/// Spans of other traces to look for.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanQuery {
    pub exclude: Option<TraceId>,
    /// Only spans that name no parent.
    pub roots_only: bool,
    /// Any of these kinds (empty: any kind).
    pub kinds: Vec<SpanKind>,
    /// Start time range, inclusive.
    pub start_from_ns: i64,
    pub start_to_ns: i64,
    /// Only spans with this `messaging.message.id`.
    pub message_id: Option<String>,
    /// Only spans still running at this time (ending at or after it), PRODUCER spans whatever
    /// their end (they do not wait for their consumer). Applied before `limit`, so finished
    /// calls never crowd out a call in flight.
    pub running_at_ns: Option<i64>,
    /// Only spans that share one of these with a call (see [`Continues`]). Applied before
    /// `limit`, so other roots that started during a call never crowd out its continuation.
    pub continues: Option<Continues>,
    pub limit: usize,
}

/// What a span of another trace must share with a span of this one for the two to be taken for
/// a call and its continuation (any one suffices): the conditions of the match of
/// `broken_propagation` and `detached_root`, as an index can check them on its columns before
/// it reads a record. `findings::continues` makes it from a call, `findings::continued`
/// from a root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Continues {
    /// The span's service, lower-cased, is one of these (the call's peer names).
    pub services: Vec<String>,
    /// Its span name is this.
    pub name: Option<String>,
    /// Its `messaging.message.id` attribute is this.
    pub message_id: Option<String>,
    /// Its `messaging.destination.name` attribute is this.
    pub destination: Option<String>,
    /// One of its peer attributes (those [`Span::peer`] holds), lower-cased, contains this: a
    /// call whose peer names may name this service.
    pub peer_containing: Option<String>,
}

/// A span of another trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForeignSpan {
    pub trace_id: Option<TraceId>,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Apply Jaeger's clock-skew adjustment (shift a child on another host into its parent)
    /// before analysing; every shift is reported in a `clock_skew` finding.
    pub adjust_clock_skew: bool,
    pub thresholds: Thresholds,
}

/// The result, in the `analysis` shape of the Trace JSON (DESIGN.md).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    /// Ordered by time; each root's segments tile its duration exactly.
    pub critical_path: Vec<Segment>,
    /// By span id (the first span of a duplicated id).
    pub self_time_ns: BTreeMap<String, i64>,
    pub self_time_by_service_ns: BTreeMap<String, i64>,
    /// Span ids whose parent is not in the trace.
    pub orphans: Vec<String>,
    pub findings: Vec<Finding>,
}

/// A stretch of time when `span` itself (not a child it waits on) is what the trace waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Index into the input spans.
    #[serde(skip)]
    pub span: usize,
    #[serde(serialize_with = "ser_id")]
    pub span_id: Option<SpanId>,
    pub start_ns: i64,
    pub end_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// Index into the input spans of the span it is about.
    #[serde(skip)]
    pub span: Option<usize>,
    #[serde(serialize_with = "ser_id")]
    pub span_id: Option<SpanId>,
    pub message: String,
    pub evidence: serde_json::Value,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_trace_id"
    )]
    pub linked_trace_id: Option<TraceId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    ErrorOrigin,
    SlowSpan,
    NPlusOne,
    SequentialSiblings,
    BrokenPropagation,
    DetachedRoot,
    ClockSkew,
    Orphan,
    /// Spans share an id (different content; identical copies are dropped and counted here).
    DuplicateSpanId,
    /// A span's parent chain loops back to it; the loop was cut to show the tree.
    ParentCycle,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::ErrorOrigin => "error_origin",
            FindingKind::SlowSpan => "slow_span",
            FindingKind::NPlusOne => "n_plus_one",
            FindingKind::SequentialSiblings => "sequential_siblings",
            FindingKind::BrokenPropagation => "broken_propagation",
            FindingKind::DetachedRoot => "detached_root",
            FindingKind::ClockSkew => "clock_skew",
            FindingKind::Orphan => "orphan",
            FindingKind::DuplicateSpanId => "duplicate_span_id",
            FindingKind::ParentCycle => "parent_cycle",
        }
    }
}

impl Span {
    pub fn end_ns(&self) -> i64 {
        self.start_ns.saturating_add(self.duration_ns.max(0))
    }

    pub fn duration(&self) -> i64 {
        self.end_ns() - self.start_ns
    }
}

/// Per span, its duration minus the union of its children's intervals clipped to it.
pub fn self_time_ns(spans: &[Span], tree: &Tree) -> Vec<i64> {
    let mut out = Vec::with_capacity(spans.len());
    let mut intervals = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let (start, end) = (span.start_ns, span.end_ns());
        intervals.clear();
        intervals.extend(
            tree.children[i]
                .iter()
                .map(|&c| (spans[c].start_ns.max(start), spans[c].end_ns().min(end)))
                .filter(|(s, e)| e > s),
        );
        intervals.sort_unstable();
        let mut covered = 0;
        let mut reach = i64::MIN;
        for &(s, e) in &intervals {
            let s = s.max(reach);
            if e > s {
                covered += e - s;
                reach = e;
            }
        }
        out.push((end - start - covered).max(0));
    }
    out
}

fn ser_id<S: serde::Serializer>(id: &Option<SpanId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}

fn ser_trace_id<S: serde::Serializer>(id: &Option<TraceId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}
