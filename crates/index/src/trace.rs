//! Trace assembly: every span and log of one trace from one query, as a span tree with each log
//! under the span that wrote it, plus a summary and a first analysis (self time, orphans,
//! critical path).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use model::{Level, SpanId, SpanKind, TraceId};
use serde_json::{Value, json};
use tantivy::columnar::Column;
use tantivy::query::{Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::{TantivyDocument, Term};

use crate::Index;
use crate::collect::{AllMatches, Match, OpenedColumns, SegmentColumns};
use crate::error::{Context as _, Error, Result};
use crate::schema::Fields;

/// Everything recorded for one trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: TraceId,
    /// Depth-first: each root (the true root first, then orphans) followed by its subtree,
    /// siblings by start time.
    pub spans: Vec<TraceSpan>,
    /// By time.
    pub logs: Vec<TraceLog>,
    /// Spans left out because another span of the trace had the same id and the same record
    /// (a retried export, an archive read twice): shown once, as Jaeger's dedupe adjuster does.
    pub duplicates_dropped: usize,
}

#[derive(Debug, Clone)]
pub struct TraceSpan {
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
    pub service: String,
    pub name: String,
    /// `SERVER`, `CLIENT`, ...
    pub kind: String,
    pub start_ns: i64,
    pub duration_ns: i64,
    pub is_error: bool,
    /// Index of the parent in [`Trace::spans`]; `None` for the root and orphans.
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub depth: usize,
    /// Indexes into [`Trace::logs`] of the logs attached to this span.
    pub logs: Vec<usize>,
    /// The stored record (Trace-JSON shape).
    pub record: Value,
}

#[derive(Debug, Clone)]
pub struct TraceLog {
    pub time_ns: i64,
    pub span_id: Option<SpanId>,
    pub level: Option<Level>,
    /// Index into [`Trace::spans`] of the span this log belongs to; `None` for trace-level logs.
    pub span: Option<usize>,
    pub record: Value,
}

impl Index {
    /// All spans and logs of `trace_id`, including records that know only its low 64 bits;
    /// `None` when the index holds nothing of it.
    pub fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        let fields = self.fields();
        let searcher = self.searcher();
        let query = trace_query(fields, trace_id);
        let columns = &self.inner.columns;
        columns.retain(&searcher);
        let matches = searcher
            .search(&*query, &AllMatches { columns })
            .context("collecting a trace")?;
        if matches.is_empty() {
            return Ok(None);
        }
        let mut spans = Vec::new();
        let mut logs = Vec::new();
        let mut loader = RecordLoader::new(self, &searcher);
        for m in matches {
            let record = loader.load(&m)?;
            if !belongs_to(&record, trace_id) {
                continue;
            }
            if m.is_span {
                spans.push(span_from_record(&m, record));
            } else {
                logs.push(log_from_record(&m, record));
            }
        }
        if spans.is_empty() && logs.is_empty() {
            return Ok(None);
        }
        // Looked up by its low 64 bits (a Datadog decimal, a 64-bit id): name the trace by the
        // full id its spans agree on.
        let trace_id = if trace_id.high64() == 0 {
            shared_full_id(&spans).unwrap_or(trace_id)
        } else {
            trace_id
        };
        Ok(Some(Trace::assemble(trace_id, spans, logs)))
    }
}

/// The records whose trace id ends in the low 64 bits of `trace_id`: its own, those known only
/// by those bits, and (rarely) those of another trace that shares them, which
/// [`belongs_to`] then leaves out. `trace_id` itself has no inverted index (schema.rs).
pub(crate) fn trace_query(fields: &Fields, trace_id: TraceId) -> Box<dyn Query> {
    low64_query(fields, trace_id.low64())
}

/// Every record whose trace id ends in these 64 bits.
pub(crate) fn low64_query(fields: &Fields, low64: u64) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_u64(fields.trace_low64, low64),
        IndexRecordOption::Basic,
    ))
}

/// Whether a record of [`trace_query`]'s answer, by the trace id it stores, is one of
/// `trace_id`'s: it carries that id, or is known only by its low 64 bits, or `trace_id` is.
fn belongs_to(record: &Value, trace_id: TraceId) -> bool {
    if trace_id.high64() == 0 {
        return true;
    }
    match record.get("trace_id").and_then(Value::as_str) {
        Some(hex) => TraceId::from_hex(hex).is_ok_and(|id| id.high64() == 0 || id == trace_id),
        None => true,
    }
}

/// The stored record JSON of a match as stored, without what [`RecordLoader`] adds back from
/// the fast fields (its start or time, duration and span ids may be missing): for readers of
/// its trace id.
pub(crate) fn load_record(
    searcher: &tantivy::Searcher,
    fields: &Fields,
    m: &Match,
) -> Result<Value> {
    let document: TantivyDocument = searcher.doc(m.addr).context("loading a stored record")?;
    // A string since the stored JSON is handed to tantivy as one (`doc::RecordDoc::stored`);
    // bytes in indexes written before.
    let bytes = document
        .get_first(fields.record)
        .and_then(|v| v.as_str().map(str::as_bytes).or_else(|| v.as_bytes()))
        .unwrap_or(b"{}");
    serde_json::from_slice(bytes).map_err(|source| Error::StoredRecord { source })
}

/// Reads stored records in the Trace-JSON shape: the stored bytes plus what the writer keeps
/// only in fast fields (`doc::STORED_ELSEWHERE`): the start or time (the match's timestamp), a
/// span's duration, and the span ids. Records stored whole (indexes written before that change)
/// already carry them and are returned as stored.
pub(crate) struct RecordLoader<'a> {
    searcher: &'a tantivy::Searcher,
    fields: &'a Fields,
    columns: &'a OpenedColumns,
    /// Per segment ordinal, its opened columns.
    segments: HashMap<u32, Arc<SegmentColumns>>,
}

/// A span id column's value as the record's hex text, or null.
fn id_value(column: Option<&Column<u64>>, doc: tantivy::DocId) -> Value {
    column
        .and_then(|c| c.first(doc))
        .and_then(SpanId::from_u64)
        .map_or(Value::Null, |id| Value::String(id.to_string()))
}

impl<'a> RecordLoader<'a> {
    pub(crate) fn new(index: &'a Index, searcher: &'a tantivy::Searcher) -> RecordLoader<'a> {
        RecordLoader {
            searcher,
            fields: index.fields(),
            columns: &index.inner.columns,
            segments: HashMap::new(),
        }
    }

    pub(crate) fn load(&mut self, m: &Match) -> Result<Value> {
        let mut record = load_record(self.searcher, self.fields, m)?;
        let Value::Object(map) = &mut record else {
            return Ok(record);
        };
        let [start_key, time_key, duration_key, span_key, parent_key] =
            crate::doc::STORED_ELSEWHERE;
        let time_key = if m.is_span { start_key } else { time_key };
        if !map.contains_key(time_key) {
            map.insert(
                time_key.to_owned(),
                Value::String(decode::time::format_rfc3339_ns(m.ts)),
            );
        }
        // Spans lack `duration_ns`, `span_id` and `parent_span_id`; logs `span_id`.
        let complete = map.contains_key(span_key)
            && (!m.is_span || map.contains_key(duration_key) && map.contains_key(parent_key));
        if complete {
            return Ok(record);
        }
        let columns = match self.segments.entry(m.addr.segment_ord) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                self.columns
                    .of(self.searcher.segment_reader(m.addr.segment_ord))
                    .context("reading a record's columns")?,
            ),
        };
        let doc = m.addr.doc_id;
        if !map.contains_key(span_key) {
            map.insert(span_key.to_owned(), id_value(columns.span_id.as_ref(), doc));
        }
        if m.is_span {
            if !map.contains_key(parent_key) {
                let parent = id_value(columns.parent_span_id.as_ref(), doc);
                map.insert(parent_key.to_owned(), parent);
            }
            if !map.contains_key(duration_key) {
                let duration = columns.duration.first(doc);
                map.insert(
                    duration_key.to_owned(),
                    duration.map_or(Value::Null, Value::from),
                );
            }
        }
        Ok(record)
    }
}

fn str_field<'a>(record: &'a Value, key: &str) -> &'a str {
    record.get(key).and_then(Value::as_str).unwrap_or("")
}

fn span_id_field(record: &Value, key: &str) -> Option<SpanId> {
    record
        .get(key)
        .and_then(Value::as_str)
        .and_then(|s| SpanId::from_hex(s).ok())
}

/// The one 128-bit trace id the spans carry (64-bit ids aside), when they agree on one.
fn shared_full_id(spans: &[TraceSpan]) -> Option<TraceId> {
    let mut full_ids = spans
        .iter()
        .filter_map(|s| s.record.get("trace_id")?.as_str())
        .filter_map(|hex| TraceId::from_hex(hex).ok())
        .filter(|id| id.high64() != 0);
    let first = full_ids.next()?;
    full_ids.all(|id| id == first).then_some(first)
}

fn span_from_record(m: &Match, record: Value) -> TraceSpan {
    span_from_parts(m.ts, record)
}

fn span_from_parts(start_ns: i64, record: Value) -> TraceSpan {
    TraceSpan {
        span_id: span_id_field(&record, "span_id"),
        parent_span_id: span_id_field(&record, "parent_span_id"),
        service: str_field(&record, "service").to_owned(),
        name: str_field(&record, "name").to_owned(),
        kind: str_field(&record, "kind").to_owned(),
        start_ns,
        duration_ns: record
            .get("duration_ns")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        is_error: record.pointer("/status/code").and_then(Value::as_str) == Some("ERROR"),
        parent: None,
        children: Vec::new(),
        depth: 0,
        logs: Vec::new(),
        record,
    }
}

fn log_from_record(m: &Match, record: Value) -> TraceLog {
    log_from_parts(m.ts, record)
}

fn log_from_parts(time_ns: i64, record: Value) -> TraceLog {
    TraceLog {
        time_ns,
        span_id: span_id_field(&record, "span_id"),
        level: Level::parse(str_field(&record, "level")),
        span: None,
        record,
    }
}

impl Trace {
    /// Assembles a trace from stored records (the Trace-JSON shape of DESIGN.md) without an
    /// index, as [`Index::trace`] does from what it finds: for tools and tests that hold records.
    /// Spans are ordered by their `start`, logs by their `time`.
    pub fn from_records(trace_id: TraceId, spans: Vec<Value>, logs: Vec<Value>) -> Trace {
        let time = |record: &Value, key: &str| {
            record
                .get(key)
                .and_then(Value::as_str)
                .and_then(decode::time::parse_datetime)
                .unwrap_or(0)
        };
        let mut spans: Vec<TraceSpan> = spans
            .into_iter()
            .map(|record| span_from_parts(time(&record, "start"), record))
            .collect();
        spans.sort_by_key(|s| s.start_ns);
        let mut logs: Vec<TraceLog> = logs
            .into_iter()
            .map(|record| log_from_parts(time(&record, "time"), record))
            .collect();
        logs.sort_by_key(|l| l.time_ns);
        Trace::assemble(trace_id, spans, logs)
    }
}

impl TraceSpan {
    pub fn end_ns(&self) -> i64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    /// The parent is named but not in the trace (lost, not yet arrived, or broken propagation).
    pub fn is_orphan(&self) -> bool {
        self.parent_span_id.is_some() && self.parent.is_none()
    }
}

impl Trace {
    /// Builds the tree from spans and logs in time order, and attaches the logs.
    fn assemble(trace_id: TraceId, spans: Vec<TraceSpan>, mut logs: Vec<TraceLog>) -> Trace {
        let n_given = spans.len();
        let spans = drop_identical_duplicates(spans);
        let duplicates_dropped = n_given - spans.len();
        let mut spans = order_as_tree(spans);
        let mut by_id = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            if let Some(id) = span.span_id {
                by_id.entry(id).or_insert(i);
            }
        }
        // A log that recorded an incoming traceparent names the caller's span: it belongs to the
        // server span that is that span's child (prefer SERVER/CONSUMER kinds).
        let mut child_of = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            if let Some(parent) = span.parent_span_id {
                let receiving = matches!(span.kind.as_str(), "SERVER" | "CONSUMER");
                let entry = child_of.entry(parent).or_insert((i, receiving));
                if receiving && !entry.1 {
                    *entry = (i, receiving);
                }
            }
        }
        for (li, log) in logs.iter_mut().enumerate() {
            let Some(span_id) = log.span_id else { continue };
            let span = by_id
                .get(&span_id)
                .copied()
                .or_else(|| child_of.get(&span_id).map(|c| c.0));
            if let Some(si) = span {
                log.span = Some(si);
                spans[si].logs.push(li);
            }
        }
        Trace {
            trace_id,
            spans,
            logs,
            duplicates_dropped,
        }
    }

    /// The true root (a span without a parent) or else the earliest orphan.
    pub fn root(&self) -> Option<&TraceSpan> {
        self.spans.first()
    }

    /// Spans whose parent is named but missing.
    pub fn orphans(&self) -> impl Iterator<Item = &TraceSpan> {
        self.spans.iter().filter(|s| s.is_orphan())
    }

    /// Spans with status ERROR plus logs at level error or above.
    pub fn error_count(&self) -> usize {
        let spans = self.spans.iter().filter(|s| s.is_error).count();
        let logs = self
            .logs
            .iter()
            .filter(|l| l.level.is_some_and(|l| l >= Level::Error))
            .count();
        spans + logs
    }

    /// The trace as analysis reads it: spans in this trace's order (so indexes agree) and logs
    /// with the index of their span.
    pub fn analysis_input(&self) -> analysis::TraceData {
        analysis::TraceData {
            trace_id: Some(self.trace_id),
            spans: self
                .spans
                .iter()
                .map(|s| analysis_span(s.start_ns, s.duration_ns, &s.record))
                .collect(),
            logs: self
                .logs
                .iter()
                .map(|l| analysis::Log {
                    time_ns: l.time_ns,
                    span: l.span,
                    is_error: l.level.is_some_and(|level| level >= Level::Error),
                    service: str_field(&l.record, "service").to_owned(),
                    body: str_field(&l.record, "body").to_owned(),
                })
                .collect(),
            duplicates_dropped: self.duplicates_dropped,
        }
    }

    /// The Trace JSON of DESIGN.md with an analysis made without the index (no operation
    /// p50s, no other traces); [`Index::analyze`] makes the full one for [`Trace::to_json_with`].
    pub fn to_json(&self) -> Value {
        let analysis = analysis::analyze(
            &self.analysis_input(),
            &analysis::NoIndex,
            &analysis::Options::default(),
        );
        self.to_json_with(&analysis)
    }

    /// The Trace JSON of DESIGN.md. Each span also has `depth` and `children` (span ids); each
    /// log has `attached_span_id`, the span it belongs to (which differs from its `span_id` when
    /// the log recorded an incoming traceparent).
    pub fn to_json_with(&self, analysis: &analysis::Analysis) -> Value {
        self.clone().into_json_with(analysis)
    }

    /// [`Trace::to_json_with`] without copying the records: they move into the JSON.
    pub fn into_json_with(self, analysis: &analysis::Analysis) -> Value {
        let summary = self.summary_json();
        let span_ids: Vec<Value> = self
            .spans
            .iter()
            .map(|s| json!(s.span_id.map(|id| id.to_string())))
            .collect();
        let spans: Vec<Value> = self
            .spans
            .into_iter()
            .map(|span| {
                let mut record = span.record;
                if let Some(map) = record.as_object_mut() {
                    map.insert("depth".into(), json!(span.depth));
                    let children: Vec<Value> =
                        span.children.iter().map(|&c| span_ids[c].clone()).collect();
                    map.insert("children".into(), Value::Array(children));
                }
                record
            })
            .collect();
        let logs: Vec<Value> = self
            .logs
            .into_iter()
            .map(|log| {
                let mut record = log.record;
                if let Some(map) = record.as_object_mut() {
                    let attached = log.span.map_or(Value::Null, |s| span_ids[s].clone());
                    map.insert("attached_span_id".into(), attached);
                }
                record
            })
            .collect();
        crate::json_object([
            ("trace_id", Value::String(self.trace_id.to_string())),
            ("spans", Value::Array(spans)),
            ("logs", Value::Array(logs)),
            ("summary", summary),
            (
                "analysis",
                serde_json::to_value(analysis).unwrap_or(Value::Null),
            ),
        ])
    }

    fn summary_json(&self) -> Value {
        let services: BTreeSet<&str> = self
            .spans
            .iter()
            .map(|s| s.service.as_str())
            .chain(self.logs.iter().map(|l| str_field(&l.record, "service")))
            .filter(|s| !s.is_empty())
            .collect();
        // The spans' extent; logs only when there is no span (a log without a time of its own
        // carries its read time and must not stretch the trace).
        let (start, end) = if self.spans.is_empty() {
            let times = || self.logs.iter().map(|l| l.time_ns);
            (times().min().unwrap_or(0), times().max().unwrap_or(0))
        } else {
            let start = self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
            (
                start,
                self.spans.iter().map(|s| s.end_ns()).max().unwrap_or(start),
            )
        };
        json!({
            "span_count": self.spans.len(),
            "log_count": self.logs.len(),
            "error_count": self.error_count(),
            "services": services,
            "root_span_id": self.root().and_then(|s| s.span_id).map(|id| id.to_string()),
            "start": decode::time::format_rfc3339_ns(start),
            "duration_ns": end - start,
        })
    }
}

/// Reorders spans (given in time order) depth-first, and sets parent, children and depth, from
/// the one span forest analysis builds (`analysis::Tree`: true roots, then orphans, then spans
/// cut out of a parent cycle; children by start time). Every walk over `parent`/`children`
/// ends, and none recurses.
fn order_as_tree(spans: Vec<TraceSpan>) -> Vec<TraceSpan> {
    let links: Vec<analysis::Span> = spans
        .iter()
        .map(|s| analysis::Span {
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            start_ns: s.start_ns,
            ..analysis::Span::default()
        })
        .collect();
    let tree = analysis::Tree::build(&links);
    let n = spans.len();
    let mut new_index = vec![0; n];
    for (new, &old) in tree.order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<TraceSpan>> = spans.into_iter().map(Some).collect();
    tree.order
        .iter()
        .map(|&old| {
            let mut span = slots[old].take().expect("each span is ordered once");
            span.depth = tree.depth[old];
            span.parent = tree.parent[old].map(|p| new_index[p]);
            span.children = tree.children[old].iter().map(|&c| new_index[c]).collect();
            span
        })
        .collect()
}

/// Keeps the first of spans that share an id and their whole record (start included); spans
/// that share only an id stay, and the tree hangs children under the first of them.
fn drop_identical_duplicates(spans: Vec<TraceSpan>) -> Vec<TraceSpan> {
    let mut kept: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut out: Vec<TraceSpan> = Vec::with_capacity(spans.len());
    for span in spans {
        if let Some(id) = span.span_id {
            let same = kept.entry(id).or_default();
            if same
                .iter()
                .any(|&k| out[k].start_ns == span.start_ns && out[k].record == span.record)
            {
                continue;
            }
            same.push(out.len());
        }
        out.push(span);
    }
    out
}

/// The attributes that name where a call goes (`analysis::Span::peer`), in order.
pub(crate) const PEER_ATTRIBUTES: [&str; 5] = [
    "peer.service",
    "server.address",
    "url.full",
    "http.url",
    "rpc.service",
];

/// A stored span record reduced to what analysis reads; also used for spans of other traces.
pub(crate) fn analysis_span(start_ns: i64, duration_ns: i64, record: &Value) -> analysis::Span {
    let attr = |key: &str| -> Option<String> {
        let attributes = record.get("attributes")?;
        // Flat (`db.statement`) as OTLP writes keys, or nested as some log formats do.
        let value = attributes
            .get(key)
            .or_else(|| key.split('.').try_fold(attributes, |at, part| at.get(part)))?;
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let resource = |key: &str| -> Option<String> {
        record
            .get("resource")?
            .get(key)?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let kind = match str_field(record, "kind") {
        "SERVER" => SpanKind::Server,
        "CLIENT" => SpanKind::Client,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        "INTERNAL" => SpanKind::Internal,
        _ => SpanKind::Unspecified,
    };
    let exceptions = record
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("name").and_then(Value::as_str) == Some("exception"))
        .map(|e| {
            let text = |k: &str| {
                e.pointer(&format!("/attributes/{}", k.replace('/', "~1")))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            analysis::Exception {
                time_ns: e
                    .get("time")
                    .and_then(Value::as_str)
                    .and_then(decode::time::parse_datetime)
                    .unwrap_or(start_ns),
                type_name: text("exception.type"),
                message: text("exception.message"),
            }
        })
        .collect();
    let peer = PEER_ATTRIBUTES.into_iter().filter_map(attr).collect();
    analysis::Span {
        span_id: span_id_field(record, "span_id"),
        parent_span_id: span_id_field(record, "parent_span_id"),
        service: str_field(record, "service").to_owned(),
        name: str_field(record, "name").to_owned(),
        kind,
        start_ns,
        duration_ns,
        error: (record.pointer("/status/code").and_then(Value::as_str) == Some("ERROR")).then(
            || {
                record
                    .pointer("/status/message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            },
        ),
        host: resource("host.id")
            .or_else(|| resource("host.ip"))
            .or_else(|| resource("host.name")),
        peer,
        db_system: attr("db.system"),
        db_statement: attr("db.statement").or_else(|| attr("db.query.text")),
        route: attr("http.route")
            .or_else(|| attr("url.path"))
            .or_else(|| attr("url.full")),
        messaging_destination: attr("messaging.destination.name"),
        messaging_message_id: attr("messaging.message.id"),
        exceptions,
    }
}
