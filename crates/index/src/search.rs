//! Search (matching spans and logs, newest first, cursor paging) and trace search (traces in
//! which one span matches, summarised from fast fields only).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::time::Instant;

use model::TraceId;
use serde_json::{Value, json};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{BooleanQuery, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader, Term};

use crate::collect::{Match, NewestFirst};
use crate::doc::KIND_SPAN;
use crate::error::{Context as _, Error, Result};
use crate::schema::{Fields, names};
use crate::trace::{RecordLoader, load_record};
use crate::{Index, query};

/// Largest page of search hits.
pub const MAX_SEARCH_LIMIT: usize = 10_000;

/// Spans and logs matching `query` in `[from_ns, to_ns)`, newest first.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest<'a> {
    /// The query language; blank means every record.
    pub query: &'a str,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// Hits per page (capped at [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
    /// The previous page's `cursor`, for the next page.
    pub cursor: Option<&'a str>,
    /// What `now()` means in the query; the clock when `None`.
    pub now_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResponse {
    /// Stored records plus `"kind": "span"|"log"` and `"trace_id"`; a span's own kind
    /// (`SERVER`, ...) is under `"span_kind"`.
    pub hits: Vec<Value>,
    /// Matches of the query in the time range, all pages together.
    pub total: u64,
    pub took_ms: u64,
    /// Present when there are more hits: pass it back for the next page.
    pub cursor: Option<String>,
}

/// Traces in which a single span matches `query` (Jaeger semantics), newest first.
#[derive(Debug, Clone, Default)]
pub struct TraceSearchRequest<'a> {
    pub query: &'a str,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// Most traces returned.
    pub limit: usize,
    pub now_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TraceSearchResponse {
    pub traces: Vec<TraceSummary>,
    /// Traces that matched, before the limit.
    pub total: u64,
    pub took_ms: u64,
}

/// A trace at a glance, computed from fast fields of its spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The root span's service and name (the earliest span's when no span is a root).
    pub root_service: String,
    pub root_name: String,
    pub start_ns: i64,
    pub duration_ns: i64,
    /// Service → number of spans.
    pub services: BTreeMap<String, u64>,
    pub span_count: u64,
    pub error_count: u64,
}

impl Index {
    /// Spans and logs matching the request, newest first, one page.
    pub fn search(&self, request: &SearchRequest<'_>) -> Result<SearchResponse> {
        let query = self.compile(request.query, request.now_ns)?;
        self.search_compiled(query, request)
    }

    /// [`Index::search`] with an already built tantivy query in place of `request.query`.
    pub fn search_compiled(
        &self,
        query: Box<dyn Query>,
        request: &SearchRequest<'_>,
    ) -> Result<SearchResponse> {
        let started = Instant::now();
        let fields = self.fields();
        let before = request.cursor.map(decode_cursor).transpose()?;
        let query = within(fields, query, request.from_ns, request.to_ns);
        let limit = request.limit.min(MAX_SEARCH_LIMIT);
        let searcher = self.searcher();
        let fruit = searcher
            .search(&*query, &NewestFirst { limit, before })
            .context("searching")?;
        let mut hits = Vec::with_capacity(fruit.hits.len());
        let mut loader = RecordLoader::new(self, &searcher);
        for m in &fruit.hits {
            hits.push(hit_json(loader.load(m)?, m.is_span));
        }
        resolve_partial_ids(&searcher, fields, hits.iter_mut())?;
        let cursor = match fruit.hits.last() {
            Some(last) if fruit.n_after_cursor > fruit.hits.len() as u64 => {
                Some(encode_cursor(last))
            }
            _ => None,
        };
        Ok(SearchResponse {
            hits,
            total: fruit.total,
            took_ms: elapsed_ms(started),
            cursor,
        })
    }

    /// Traces with one span matching every condition of the query, newest first.
    pub fn search_traces(&self, request: &TraceSearchRequest<'_>) -> Result<TraceSearchResponse> {
        let query = self.compile(request.query, request.now_ns)?;
        self.search_traces_compiled(query, request)
    }

    /// [`Index::search_traces`] with an already built tantivy query.
    pub fn search_traces_compiled(
        &self,
        query: Box<dyn Query>,
        request: &TraceSearchRequest<'_>,
    ) -> Result<TraceSearchResponse> {
        let started = Instant::now();
        let fields = self.fields();
        let searcher = self.searcher();
        let spans_only = Box::new(BooleanQuery::intersection(vec![
            query,
            kind_query(fields, KIND_SPAN),
        ]));
        let query = within(fields, spans_only, request.from_ns, request.to_ns);
        let matched = searcher
            .search(&*query, &MatchedTraces)
            .context("searching traces")?;
        let total = matched.len() as u64;
        let mut newest: Vec<(String, i64)> = matched.into_iter().collect();
        newest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        newest.truncate(request.limit);
        if newest.is_empty() {
            return Ok(TraceSearchResponse {
                traces: Vec::new(),
                total,
                took_ms: elapsed_ms(started),
            });
        }
        // Found by the low halves of their ids (`trace_id` has no inverted index); a trace that
        // only shares those bits is summarised under its own id, and left out here.
        let wanted: HashSet<&str> = newest.iter().map(|(id, _)| id.as_str()).collect();
        let lows = newest
            .iter()
            .filter_map(|(id, _)| TraceId::from_hex(id).ok())
            .map(|id| Term::from_field_u64(fields.trace_low64, id.low64()));
        let spans_of_traces = BooleanQuery::intersection(vec![
            Box::new(TermSetQuery::new(lows)),
            kind_query(fields, KIND_SPAN),
        ]);
        let mut traces: Vec<TraceSummary> = searcher
            .search(&spans_of_traces, &Summaries)
            .context("summarising traces")?
            .into_iter()
            .filter(|(trace_id, _)| wanted.contains(trace_id.as_str()))
            .map(|(trace_id, acc)| acc.finish(trace_id))
            .collect();
        traces.sort_unstable_by(|a, b| {
            b.start_ns
                .cmp(&a.start_ns)
                .then_with(|| a.trace_id.cmp(&b.trace_id))
        });
        Ok(TraceSearchResponse {
            traces,
            total,
            took_ms: elapsed_ms(started),
        })
    }

    /// The query language to a tantivy query; blank means all documents.
    pub(crate) fn compile(&self, input: &str, now_ns: Option<i64>) -> Result<Box<dyn Query>> {
        let now_ns = now_ns.unwrap_or_else(now_ns_from_clock);
        Ok(query::parse_and_compile(input, self.fields(), now_ns)?)
    }
}

impl SearchResponse {
    /// `{"hits": [...], "total": N, "took_ms": N, "cursor": "...|null"}`.
    pub fn to_json(&self) -> Value {
        json!({"hits": self.hits, "total": self.total, "took_ms": self.took_ms, "cursor": self.cursor})
    }

    /// [`SearchResponse::to_json`], the hits moved in rather than copied.
    pub fn into_json(self) -> Value {
        crate::json_object([
            ("hits", Value::Array(self.hits)),
            ("total", json!(self.total)),
            ("took_ms", json!(self.took_ms)),
            ("cursor", json!(self.cursor)),
        ])
    }
}

impl TraceSummary {
    pub fn to_json(&self) -> Value {
        json!({
            "trace_id": self.trace_id,
            "root_service": self.root_service,
            "root_name": self.root_name,
            "start": decode::time::format_rfc3339_ns(self.start_ns),
            "duration_ns": self.duration_ns,
            "services": self.services,
            "span_count": self.span_count,
            "error_count": self.error_count,
        })
    }
}

impl TraceSearchResponse {
    pub fn to_json(&self) -> Value {
        let traces: Vec<Value> = self.traces.iter().map(TraceSummary::to_json).collect();
        json!({"traces": traces, "total": self.total, "took_ms": self.took_ms})
    }
}

/// `query AND from_ns <= timestamp < to_ns`.
pub(crate) fn within(
    fields: &Fields,
    query: Box<dyn Query>,
    from_ns: Option<i64>,
    to_ns: Option<i64>,
) -> Box<dyn Query> {
    if from_ns.is_none() && to_ns.is_none() {
        return query;
    }
    let term = |ns| Term::from_field_date(fields.timestamp, DateTime::from_timestamp_nanos(ns));
    let range = RangeQuery::new(
        from_ns.map_or(Bound::Unbounded, |ns| Bound::Included(term(ns))),
        to_ns.map_or(Bound::Unbounded, |ns| Bound::Excluded(term(ns))),
    );
    Box::new(BooleanQuery::intersection(vec![query, Box::new(range)]))
}

/// Most spans read to find the full id of a trace known by its low 64 bits.
const MAX_SPANS_PER_PARTIAL_ID: usize = 8;

/// Hits known only by the low 64 bits of their trace (a Datadog logger's decimal id, stored
/// W3C-padded) take the full id that the trace's spans carry, when they agree on one: a hit
/// leads to its trace by the id the rest of the trace is known by.
pub(crate) fn resolve_partial_ids<'a>(
    searcher: &tantivy::Searcher,
    fields: &Fields,
    hits: impl Iterator<Item = &'a mut Value>,
) -> Result<()> {
    let mut resolved: HashMap<u64, Option<String>> = HashMap::new();
    for hit in hits {
        let Some(low64) = hit["trace_id"]
            .as_str()
            .and_then(|id| model::TraceId::from_hex(id).ok())
            .filter(|id| id.high64() == 0)
            .map(|id| id.low64())
        else {
            continue;
        };
        let full = match resolved.get(&low64) {
            Some(full) => full.clone(),
            None => {
                let full = full_id_of(searcher, fields, low64)?;
                resolved.insert(low64, full.clone());
                full
            }
        };
        if let (Some(full), Some(map)) = (full, hit.as_object_mut()) {
            map.insert("trace_id".into(), Value::String(full));
        }
    }
    Ok(())
}

/// The one full (128-bit) trace id that spans with these low 64 bits carry, if they agree.
fn full_id_of(searcher: &tantivy::Searcher, fields: &Fields, low64: u64) -> Result<Option<String>> {
    let query = BooleanQuery::intersection(vec![
        Box::new(TermQuery::new(
            Term::from_field_u64(fields.trace_low64, low64),
            IndexRecordOption::Basic,
        )),
        kind_query(fields, KIND_SPAN),
    ]);
    let top = searcher
        .search(
            &query,
            &tantivy::collector::TopDocs::with_limit(MAX_SPANS_PER_PARTIAL_ID).order_by_score(),
        )
        .context("looking up a trace's full id")?;
    let mut full = None;
    for (_, addr) in top {
        let m = Match {
            ts: 0,
            seq: 0,
            addr,
            is_span: true,
        };
        let record = load_record(searcher, fields, &m)?;
        let Some(id) = record["trace_id"]
            .as_str()
            .and_then(|id| model::TraceId::from_hex(id).ok())
            .filter(|id| id.high64() != 0)
        else {
            continue;
        };
        match full {
            None => full = Some(id),
            Some(seen) if seen != id => return Ok(None),
            Some(_) => {}
        }
    }
    Ok(full.map(|id| id.to_string()))
}

pub(crate) fn kind_query(fields: &Fields, kind: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(fields.kind, kind),
        IndexRecordOption::Basic,
    ))
}

pub(crate) fn now_ns_from_clock() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}

/// A stored record as a search hit: `kind` becomes the document kind.
pub(crate) fn hit_json(mut record: Value, is_span: bool) -> Value {
    if let Some(map) = record.as_object_mut() {
        if is_span && let Some(span_kind) = map.remove("kind") {
            map.insert("span_kind".into(), span_kind);
        }
        map.insert("kind".into(), json!(if is_span { "span" } else { "log" }));
        map.entry("trace_id").or_insert(Value::Null);
    }
    record
}

/// The last hit's (timestamp, seq) as opaque text: the next page starts strictly after it.
fn encode_cursor(last: &Match) -> String {
    format!("{:x}-{:x}", last.ts as u64, last.seq)
}

fn decode_cursor(cursor: &str) -> Result<(i64, u64)> {
    let bad = || Error::Cursor {
        cursor: cursor.to_owned(),
    };
    let (ts, seq) = cursor.split_once('-').ok_or_else(bad)?;
    let ts = u64::from_str_radix(ts, 16).map_err(|_| bad())? as i64;
    let seq = u64::from_str_radix(seq, 16).map_err(|_| bad())?;
    Ok((ts, seq))
}

/// Trace id → the newest matching span's timestamp.
struct MatchedTraces;

struct MatchedTracesSegment {
    trace_id: Option<StrColumn>,
    timestamp: Column<DateTime>,
    newest_by_ord: HashMap<u64, i64>,
}

impl Collector for MatchedTraces {
    type Fruit = HashMap<String, i64>;
    type Child = MatchedTracesSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<MatchedTracesSegment> {
        let fast = reader.fast_fields();
        Ok(MatchedTracesSegment {
            trace_id: fast.str(names::TRACE_ID)?,
            timestamp: fast.date(names::TIMESTAMP)?,
            newest_by_ord: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashMap<String, i64>>) -> tantivy::Result<Self::Fruit> {
        let mut merged = HashMap::new();
        for (id, ts) in fruits.into_iter().flatten() {
            let newest = merged.entry(id).or_insert(ts);
            *newest = (*newest).max(ts);
        }
        Ok(merged)
    }
}

impl SegmentCollector for MatchedTracesSegment {
    type Fruit = HashMap<String, i64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(trace_id) = &self.trace_id else {
            return;
        };
        let Some(ord) = trace_id.term_ords(doc).next() else {
            return;
        };
        let ts = self
            .timestamp
            .first(doc)
            .map_or(0, DateTime::into_timestamp_nanos);
        let newest = self.newest_by_ord.entry(ord).or_insert(ts);
        *newest = (*newest).max(ts);
    }

    fn harvest(self) -> HashMap<String, i64> {
        let Some(column) = &self.trace_id else {
            return HashMap::new();
        };
        self.newest_by_ord
            .into_iter()
            .filter_map(|(ord, ts)| Some((ord_str(column, ord)?, ts)))
            .collect()
    }
}

/// Per trace, the summary of its spans.
struct Summaries;

struct SummariesSegment {
    trace_id: Option<StrColumn>,
    service: Option<StrColumn>,
    name: Option<StrColumn>,
    parent_span_id: Option<Column<u64>>,
    timestamp: Column<DateTime>,
    duration_ns: Column<i64>,
    is_error: Column<u64>,
    by_trace: HashMap<String, SummaryAcc>,
}

#[derive(Debug, Default)]
struct SummaryAcc {
    start_ns: Option<i64>,
    end_ns: i64,
    services: BTreeMap<String, u64>,
    span_count: u64,
    error_count: u64,
    /// (is not a root, start, service, name): the smallest is the root.
    root: Option<(bool, i64, String, String)>,
}

impl Collector for Summaries {
    type Fruit = HashMap<String, SummaryAcc>;
    type Child = SummariesSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SummariesSegment> {
        let fast = reader.fast_fields();
        Ok(SummariesSegment {
            trace_id: fast.str(names::TRACE_ID)?,
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

    fn merge_fruits(
        &self,
        fruits: Vec<HashMap<String, SummaryAcc>>,
    ) -> tantivy::Result<Self::Fruit> {
        let mut merged: HashMap<String, SummaryAcc> = HashMap::new();
        for (id, acc) in fruits.into_iter().flatten() {
            merged.entry(id).or_default().merge(acc);
        }
        Ok(merged)
    }
}

impl SegmentCollector for SummariesSegment {
    type Fruit = HashMap<String, SummaryAcc>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(trace_id) = doc_str(&self.trace_id, doc) else {
            return;
        };
        let start = self
            .timestamp
            .first(doc)
            .map_or(0, DateTime::into_timestamp_nanos);
        let duration = self.duration_ns.first(doc).unwrap_or(0);
        let service = doc_str(&self.service, doc).unwrap_or_default();
        let name = doc_str(&self.name, doc).unwrap_or_default();
        let is_root = self
            .parent_span_id
            .as_ref()
            .and_then(|c| c.first(doc))
            .is_none();
        let acc = self.by_trace.entry(trace_id).or_default();
        acc.start_ns = Some(acc.start_ns.map_or(start, |s| s.min(start)));
        acc.end_ns = acc.end_ns.max(start.saturating_add(duration));
        acc.span_count += 1;
        acc.error_count += u64::from(self.is_error.first(doc).unwrap_or(0) != 0);
        let candidate = (!is_root, start, service.clone(), name);
        if acc.root.as_ref().is_none_or(|root| candidate < *root) {
            acc.root = Some(candidate);
        }
        *acc.services.entry(service).or_default() += 1;
    }

    fn harvest(self) -> HashMap<String, SummaryAcc> {
        self.by_trace
    }
}

impl SummaryAcc {
    fn merge(&mut self, other: SummaryAcc) {
        self.start_ns = match (self.start_ns, other.start_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end_ns = self.end_ns.max(other.end_ns);
        self.span_count += other.span_count;
        self.error_count += other.error_count;
        for (service, n) in other.services {
            *self.services.entry(service).or_default() += n;
        }
        if let Some(root) = other.root
            && self.root.as_ref().is_none_or(|mine| root < *mine)
        {
            self.root = Some(root);
        }
    }

    fn finish(self, trace_id: String) -> TraceSummary {
        let start_ns = self.start_ns.unwrap_or(0);
        let (_, _, root_service, root_name) = self.root.unwrap_or_default();
        TraceSummary {
            trace_id,
            root_service,
            root_name,
            start_ns,
            duration_ns: (self.end_ns - start_ns).max(0),
            services: self
                .services
                .into_iter()
                .filter(|(s, _)| !s.is_empty())
                .collect(),
            span_count: self.span_count,
            error_count: self.error_count,
        }
    }
}

fn ord_str(column: &StrColumn, ord: u64) -> Option<String> {
    let mut out = String::new();
    column.ord_to_str(ord, &mut out).ok()?.then_some(out)
}

fn doc_str(column: &Option<StrColumn>, doc: DocId) -> Option<String> {
    let column = column.as_ref()?;
    let ord = column.term_ords(doc).next()?;
    ord_str(column, ord)
}
