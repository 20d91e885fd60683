//! Trace lists: one row per trace that has a span or log matching a query (the web UI's trace
//! list, `threadline search --traces`), summarised from fast fields, sorted by start or
//! duration.
//!
//! A trace is keyed by the low 64 bits of its id, so a log known only by those bits (a Datadog
//! logger's decimal id) belongs to the trace its spans name in full. The work is bounded: at most
//! [`MAX_TRACES_CONSIDERED`] traces (those with the newest matches) are summarised and sorted; the
//! answer says when more matched.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{Query, TermSetQuery};
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader, Term};

use crate::Index;
use crate::agg_traces::{strs_of_ords, trace_ids_of_ords};
use crate::error::{Context as _, Error, Result};
use crate::schema::names;
use crate::search::{elapsed_ms, within};

/// Most traces one trace list summarises and sorts (those with the newest matching records).
pub const MAX_TRACES_CONSIDERED: usize = 20_000;
/// Largest page of a trace list.
pub const MAX_TRACE_LIST_LIMIT: usize = 1_000;

/// How a trace list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceSort {
    /// Oldest start first (`time`).
    Time,
    /// Newest start first (`-time`, the default).
    #[default]
    TimeDesc,
    /// Shortest first (`duration`).
    Duration,
    /// Longest first (`-duration`).
    DurationDesc,
}

/// Traces having a record that matches `query` in `[from_ns, to_ns)`.
#[derive(Debug, Clone, Default)]
pub struct TraceListRequest<'a> {
    pub query: &'a str,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// Rows returned (capped at [`MAX_TRACE_LIST_LIMIT`]).
    pub limit: usize,
    pub sort: TraceSort,
    pub now_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TraceListResponse {
    pub traces: Vec<TraceRow>,
    /// Traces with a matching record (at least this many when `truncated`).
    pub total: u64,
    /// More than [`MAX_TRACES_CONSIDERED`] traces matched: only those with the newest matching
    /// records were summarised and sorted.
    pub truncated: bool,
    pub took_ms: u64,
}

/// One trace at a glance: every span and log of it (not only the matching ones) counted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceRow {
    pub trace_id: String,
    /// The root span's (the earliest span's when no span is a root; empty for a trace of logs).
    pub root_name: String,
    pub root_service: String,
    /// The earliest span's start (the earliest log's time for a trace of logs only).
    pub start_ns: i64,
    /// From the earliest span start to the latest span end (0 for a trace of logs only).
    pub duration_ns: i64,
    pub span_count: u64,
    pub log_count: u64,
    /// Spans with status ERROR plus logs at level error or above.
    pub error_count: u64,
    /// Services of its spans and logs, sorted.
    pub services: Vec<String>,
}

/// The traces having a record that a query matched, keyed by the low 64 bits of their id.
#[derive(Debug, Default)]
pub(crate) struct MatchedTraces {
    /// Low 64 bits → (the id: the full one when any matching record carries it, the newest
    /// matching record's timestamp).
    pub by_low64: HashMap<u64, (u128, i64)>,
    /// More traces matched than were kept.
    pub truncated: bool,
}

impl Index {
    /// The traces having a record that matches the request's query.
    pub fn list_traces(&self, request: &TraceListRequest<'_>) -> Result<TraceListResponse> {
        let query = self.compile(request.query, request.now_ns)?;
        self.list_traces_compiled(query, request)
    }

    /// [`Index::list_traces`] with an already built tantivy query.
    pub fn list_traces_compiled(
        &self,
        query: Box<dyn Query>,
        request: &TraceListRequest<'_>,
    ) -> Result<TraceListResponse> {
        let started = Instant::now();
        let query = within(self.fields(), query, request.from_ns, request.to_ns);
        let matched = self.matched_traces(&*query, MAX_TRACES_CONSIDERED)?;
        let total = matched.by_low64.len() as u64;
        let mut traces = self.trace_rows(&matched)?;
        let key = |row: &TraceRow| match request.sort {
            TraceSort::Time | TraceSort::TimeDesc => row.start_ns,
            TraceSort::Duration | TraceSort::DurationDesc => row.duration_ns,
        };
        let descending = matches!(request.sort, TraceSort::TimeDesc | TraceSort::DurationDesc);
        traces.sort_unstable_by(|a, b| {
            let order = key(a).cmp(&key(b));
            let order = if descending { order.reverse() } else { order };
            order.then_with(|| a.trace_id.cmp(&b.trace_id))
        });
        traces.truncate(request.limit.min(MAX_TRACE_LIST_LIMIT));
        Ok(TraceListResponse {
            traces,
            total,
            truncated: matched.truncated,
            took_ms: elapsed_ms(started),
        })
    }

    /// The traces of the records `query` matches: at most `cap`, those with the newest matches.
    pub(crate) fn matched_traces(&self, query: &dyn Query, cap: usize) -> Result<MatchedTraces> {
        let per_segment = self
            .searcher()
            .search(query, &TraceKeys { cap })
            .context("collecting the traces of matching records")?;
        let mut matched = MatchedTraces::default();
        for (id, ts) in per_segment.ids {
            let entry = matched.by_low64.entry(id as u64).or_insert((id, ts));
            if entry.0 >> 64 == 0 {
                entry.0 = id;
            }
            entry.1 = entry.1.max(ts);
        }
        matched.truncated = per_segment.truncated || matched.by_low64.len() > cap;
        if matched.by_low64.len() > cap {
            let mut newest: Vec<(u64, (u128, i64))> = matched.by_low64.drain().collect();
            newest.sort_unstable_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
            newest.truncate(cap);
            matched.by_low64 = newest.into_iter().collect();
        }
        Ok(matched)
    }

    /// A row per matched trace, from every record of it.
    fn trace_rows(&self, matched: &MatchedTraces) -> Result<Vec<TraceRow>> {
        if matched.by_low64.is_empty() {
            return Ok(Vec::new());
        }
        let fields = self.fields();
        let terms = matched
            .by_low64
            .keys()
            .map(|&low| Term::from_field_u64(fields.trace_low64, low));
        let query = TermSetQuery::new(terms);
        let ids: Arc<HashMap<u64, u128>> = Arc::new(
            matched
                .by_low64
                .iter()
                .map(|(&low, &(id, _))| (low, id))
                .collect(),
        );
        let accs = self
            .searcher()
            .search(
                &query,
                &RowCollector {
                    ids: Arc::clone(&ids),
                },
            )
            .context("summarising traces")?;
        Ok(accs
            .into_iter()
            .map(|(low, acc)| acc.finish(ids.get(&low).copied().unwrap_or(u128::from(low))))
            .collect())
    }
}

impl std::str::FromStr for TraceSort {
    type Err = Error;

    fn from_str(s: &str) -> Result<TraceSort> {
        Ok(match s {
            "time" => TraceSort::Time,
            "-time" | "" => TraceSort::TimeDesc,
            "duration" => TraceSort::Duration,
            "-duration" => TraceSort::DurationDesc,
            other => {
                return Err(Error::InvalidRequest {
                    message: format!(
                        "unknown sort {other:?}: use time, -time (newest first, the default), \
                         duration or -duration (longest first)"
                    ),
                });
            }
        })
    }
}

impl TraceListResponse {
    /// `{"traces": [...], "total": N, "truncated": bool, "took_ms": N}`.
    pub fn to_json(&self) -> Value {
        let traces: Vec<Value> = self.traces.iter().map(TraceRow::to_json).collect();
        json!({
            "traces": traces,
            "total": self.total,
            "truncated": self.truncated,
            "took_ms": self.took_ms,
        })
    }
}

impl TraceRow {
    pub fn to_json(&self) -> Value {
        json!({
            "trace_id": self.trace_id,
            "root_name": self.root_name,
            "root_service": self.root_service,
            "start": decode::time::format_rfc3339_ns(self.start_ns),
            "duration_ns": self.duration_ns,
            "span_count": self.span_count,
            "log_count": self.log_count,
            "error_count": self.error_count,
            "services": self.services,
        })
    }
}

/// Distinct trace ids (as numbers) of the matching records with their newest timestamp.
struct TraceKeys {
    cap: usize,
}

#[derive(Debug, Default)]
struct TraceIds {
    ids: Vec<(u128, i64)>,
    truncated: bool,
}

struct TraceKeysSegment {
    trace_id: Option<StrColumn>,
    timestamp: Column<DateTime>,
    newest_by_ord: HashMap<u64, i64>,
    cap: usize,
    truncated: bool,
}

impl Collector for TraceKeys {
    type Fruit = TraceIds;
    type Child = TraceKeysSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TraceKeysSegment> {
        let fast = reader.fast_fields();
        Ok(TraceKeysSegment {
            trace_id: fast.str(names::TRACE_ID)?,
            timestamp: fast.date(names::TIMESTAMP)?,
            newest_by_ord: HashMap::new(),
            cap: self.cap,
            truncated: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<TraceIds>) -> tantivy::Result<TraceIds> {
        let mut merged = TraceIds::default();
        for fruit in fruits {
            merged.truncated |= fruit.truncated;
            merged.ids.extend(fruit.ids);
        }
        Ok(merged)
    }
}

impl SegmentCollector for TraceKeysSegment {
    type Fruit = TraceIds;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(ord) = self.trace_id.as_ref().and_then(|c| c.term_ords(doc).next()) else {
            return;
        };
        let ts = self
            .timestamp
            .first(doc)
            .map_or(0, DateTime::into_timestamp_nanos);
        // Bounded memory: past the cap, only traces already seen are updated. The segment's
        // first `cap` traces are kept, which is enough to tell that more matched.
        let full = self.newest_by_ord.len() >= self.cap.saturating_add(1);
        match self.newest_by_ord.get_mut(&ord) {
            Some(newest) => *newest = (*newest).max(ts),
            None if full => self.truncated = true,
            None => {
                self.newest_by_ord.insert(ord, ts);
            }
        }
    }

    fn harvest(self) -> TraceIds {
        let Some(column) = &self.trace_id else {
            return TraceIds::default();
        };
        let id_of = crate::agg_traces::trace_ids_of_ords(
            column,
            self.newest_by_ord.keys().copied().collect(),
        );
        let ids = self
            .newest_by_ord
            .into_iter()
            .filter_map(|(ord, ts)| Some((*id_of.get(&ord)?, ts)))
            .collect();
        TraceIds {
            ids,
            truncated: self.truncated,
        }
    }
}

/// Per wanted trace (by low 64 bits), the row of all its records.
struct RowCollector {
    /// Low 64 bits → the trace's id; a record with another full id of the same low half is
    /// another trace and is left out.
    ids: Arc<HashMap<u64, u128>>,
}

struct RowSegment {
    ids: Arc<HashMap<u64, u128>>,
    trace_id: Option<StrColumn>,
    is_span: crate::collect::IsSpan,
    service: Option<StrColumn>,
    name: Option<StrColumn>,
    parent_span_id: Option<Column<u64>>,
    timestamp: Column<DateTime>,
    duration_ns: Column<i64>,
    is_error: Column<u64>,
    /// By trace id ordinal (resolved to ids, and checked against `ids`, at harvest).
    by_trace: HashMap<u64, SegmentRow>,
}

/// A trace's records in one segment, strings still as ordinals.
#[derive(Debug, Default)]
struct SegmentRow {
    row: RowAcc,
    services: BTreeSet<u64>,
    /// (is not a root, start, service ordinal, name ordinal).
    root: Option<(bool, i64, Option<u64>, Option<u64>)>,
}

#[derive(Debug, Default)]
struct RowAcc {
    span_start: Option<i64>,
    span_end: i64,
    log_start: Option<i64>,
    span_count: u64,
    log_count: u64,
    error_count: u64,
    services: BTreeSet<String>,
    /// (is not a root, start, service, name): the smallest is the root.
    root: Option<(bool, i64, String, String)>,
}

impl Collector for RowCollector {
    type Fruit = HashMap<u64, RowAcc>;
    type Child = RowSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<RowSegment> {
        let fast = reader.fast_fields();
        Ok(RowSegment {
            ids: Arc::clone(&self.ids),
            trace_id: fast.str(names::TRACE_ID)?,
            is_span: crate::collect::IsSpan::open(reader)?,
            service: fast.str(names::SERVICE)?,
            name: fast.str(names::NAME)?,
            parent_span_id: fast.column_opt(names::PARENT_SPAN_ID)?,
            timestamp: fast.date(names::TIMESTAMP)?,
            duration_ns: fast.i64(names::DURATION_NS)?,
            is_error: fast.u64(names::IS_ERROR)?,
            by_trace: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashMap<u64, RowAcc>>) -> tantivy::Result<Self::Fruit> {
        let mut merged: HashMap<u64, RowAcc> = HashMap::new();
        for (low, acc) in fruits.into_iter().flatten() {
            merged.entry(low).or_default().merge(acc);
        }
        Ok(merged)
    }
}

impl SegmentCollector for RowSegment {
    type Fruit = HashMap<u64, RowAcc>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(column) = &self.trace_id else { return };
        let Some(trace_ord) = column.term_ords(doc).next() else {
            return;
        };
        let ts = self
            .timestamp
            .first(doc)
            .map_or(0, DateTime::into_timestamp_nanos);
        let is_span = self.is_span.get(doc);
        let service = first_ord(&self.service, doc);
        let acc = self.by_trace.entry(trace_ord).or_default();
        acc.row.error_count += u64::from(self.is_error.first(doc).unwrap_or(0) != 0);
        if let Some(service) = service {
            acc.services.insert(service);
        }
        if !is_span {
            acc.row.log_count += 1;
            acc.row.log_start = Some(acc.row.log_start.map_or(ts, |s| s.min(ts)));
            return;
        }
        let duration = self.duration_ns.first(doc).unwrap_or(0);
        acc.row.span_count += 1;
        acc.row.span_start = Some(acc.row.span_start.map_or(ts, |s| s.min(ts)));
        acc.row.span_end = acc.row.span_end.max(ts.saturating_add(duration));
        let is_root = self
            .parent_span_id
            .as_ref()
            .and_then(|c| c.first(doc))
            .is_none();
        let candidate = (!is_root, ts, service, first_ord(&self.name, doc));
        if acc.root.is_none_or(|root| candidate < root) {
            acc.root = Some(candidate);
        }
    }

    fn harvest(self) -> HashMap<u64, RowAcc> {
        let Some(trace_ids) = &self.trace_id else {
            return HashMap::new();
        };
        // Every ordinal resolved in one sorted pass per column.
        let id_of = trace_ids_of_ords(trace_ids, self.by_trace.keys().copied().collect());
        let resolve = |column: &Option<StrColumn>, ords: Vec<u64>| match column {
            Some(column) => strs_of_ords(column, ords),
            None => HashMap::new(),
        };
        let service_of = resolve(
            &self.service,
            self.by_trace
                .values()
                .flat_map(|seg| {
                    seg.services
                        .iter()
                        .copied()
                        .chain(seg.root.and_then(|r| r.2))
                })
                .collect(),
        );
        let name_of = resolve(
            &self.name,
            self.by_trace
                .values()
                .filter_map(|seg| seg.root?.3)
                .collect(),
        );
        let text = |of: &HashMap<u64, String>, ord: Option<u64>| {
            ord.and_then(|ord| of.get(&ord).cloned())
                .unwrap_or_default()
        };
        let mut out: HashMap<u64, RowAcc> = HashMap::new();
        for (ord, seg) in self.by_trace {
            let Some(&id) = id_of.get(&ord) else { continue };
            let Some(&wanted) = self.ids.get(&(id as u64)) else {
                continue;
            };
            // Same trace: the same id, or either side known only by its low 64 bits.
            if !(id == wanted || id >> 64 == 0 || wanted >> 64 == 0) {
                continue;
            }
            let mut row = seg.row;
            row.services = seg
                .services
                .into_iter()
                .map(|ord| text(&service_of, Some(ord)))
                .filter(|s| !s.is_empty())
                .collect();
            row.root = seg.root.map(|(not_root, start, service, name)| {
                (
                    not_root,
                    start,
                    text(&service_of, service),
                    text(&name_of, name),
                )
            });
            // A full id and the low-64 form of the same trace are two ordinals here.
            out.entry(id as u64).or_default().merge(row);
        }
        out
    }
}

impl RowAcc {
    fn merge(&mut self, other: RowAcc) {
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.span_start = min(self.span_start, other.span_start);
        self.log_start = min(self.log_start, other.log_start);
        self.span_end = self.span_end.max(other.span_end);
        self.span_count += other.span_count;
        self.log_count += other.log_count;
        self.error_count += other.error_count;
        self.services.extend(other.services);
        if let Some(root) = other.root
            && self.root.as_ref().is_none_or(|mine| root < *mine)
        {
            self.root = Some(root);
        }
    }

    fn finish(self, id: u128) -> TraceRow {
        let (start_ns, duration_ns) = match self.span_start {
            Some(start) => (start, (self.span_end - start).max(0)),
            None => (self.log_start.unwrap_or(0), 0),
        };
        let (_, _, root_service, root_name) = self.root.unwrap_or_default();
        TraceRow {
            trace_id: format!("{id:032x}"),
            root_name,
            root_service,
            start_ns,
            duration_ns,
            span_count: self.span_count,
            log_count: self.log_count,
            error_count: self.error_count,
            services: self.services.into_iter().collect(),
        }
    }
}

fn first_ord(column: &Option<StrColumn>, doc: DocId) -> Option<u64> {
    column.as_ref()?.term_ords(doc).next()
}
