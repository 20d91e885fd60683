//! What analysis asks of the index ([`analysis::Lookup`]): an operation's p50 duration, spans
//! of other traces by kind and time (roots, callers), and whether a span has children. Each is
//! one bounded query in the query language, so analysis itself stays pure.

use analysis::{ForeignSpan, Lookup, SpanQuery};
use model::{SpanId, SpanKind, TraceId};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::error::Context as _;
use crate::schema::names;
use crate::search::{hit_json, resolve_partial_ids};
use crate::span_times::{NewestSpans, SpansInWindow};
use crate::trace::{RecordLoader, analysis_span, trace_query};
use crate::{AggRequest, Index, Trace};

/// Fewer spans of an operation than this and its p50 says nothing.
const MIN_P50_SAMPLES: u64 = 5;

/// How long an operation's p50 is reused once the index has changed: it moves slowly, and
/// computing it reads every span of the operation, so without reuse each trace lookup would
/// cost more as the index grows. While the index holds the same segments (and deletes) it is
/// reused however old: it would be computed again from the same spans.
const P50_TTL: Duration = Duration::from_secs(30);
/// Operations remembered at most (all forgotten at once when full).
const P50_CACHE_ENTRIES: usize = 4096;

/// (service, span name) → when its p50 was computed, from which segments, and the p50.
type P50Entries = HashMap<(String, String), P50Entry>;

#[derive(Debug, Clone, Copy)]
struct P50Entry {
    at: Instant,
    /// [`segments_key`] of the searcher it was computed from.
    segments: u64,
    p50: Option<i64>,
}

/// Recently computed p50s by (service, span name).
#[derive(Default)]
pub(crate) struct P50Cache {
    entries: Mutex<P50Entries>,
    /// When every operation's p50 was last computed at once ([`Index::warm_lookups`]), and
    /// from which segments.
    warmed: Mutex<Option<(Instant, u64)>>,
}

/// Operations per service whose p50s [`Index::warm_lookups`] computes ahead of lookups; those
/// of a service with more are computed on first use.
const WARM_P50_OPERATIONS: usize = 500;

/// Names a searcher's segments and their deletes: equal keys, equal spans.
fn segments_key(searcher: &tantivy::Searcher) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    searcher.generation().segments().hash(&mut hasher);
    hasher.finish()
}

impl P50Cache {
    /// The p50 computed from these segments, or within [`P50_TTL`] of `now`.
    fn get(&self, service: &str, name: &str, segments: u64, now: Instant) -> Option<Option<i64>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&(service.to_owned(), name.to_owned()))?;
        (entry.segments == segments || now.saturating_duration_since(entry.at) < P50_TTL)
            .then_some(entry.p50)
    }

    /// Remembers `p50`, computed at `at` from the segments named `segments`.
    fn put(&self, service: &str, name: &str, at: Instant, segments: u64, p50: Option<i64>) {
        let entry = P50Entry { at, segments, p50 };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= P50_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert((service.to_owned(), name.to_owned()), entry);
    }
}

/// Segments of at least this many documents get what a lookup's analysis reads about them
/// built ahead of the first lookup ([`Index::warm_lookups`]); a smaller one builds it on first
/// use in a few milliseconds.
const WARM_MIN_DOCS: u32 = 50_000;

impl Index {
    /// Builds, for each segment of 50,000 documents or more that has not got them yet, what a
    /// trace lookup reads on first use: its spans in time order for the analysis's windows,
    /// and its opened columns. Without this the first lookup after start-up, or after
    /// a merge, waits for them (~0.5 s at 10M records). Safe beside lookups: a lookup that needs
    /// a segment this is building waits for it instead of building it again. Also computes
    /// every operation's p50 duration when the index has changed (see `warm_p50s`).
    pub fn warm_lookups(&self) -> crate::Result<()> {
        self.warm_lookups_of(WARM_MIN_DOCS)
    }

    fn warm_lookups_of(&self, min_docs: u32) -> crate::Result<()> {
        self.warm_p50s(Instant::now())?;
        let searcher = self.searcher();
        self.inner.span_times.retain(&searcher);
        self.inner.columns.retain(&searcher);
        for reader in searcher.segment_readers() {
            if reader.max_doc() < min_docs {
                continue;
            }
            self.inner
                .span_times
                .of(self.fields(), reader)
                .context("reading a segment's spans in time order")?;
            self.inner
                .columns
                .of(reader)
                .context("opening a segment's columns")?;
        }
        Ok(())
    }

    /// Computes the p50 duration of every operation (up to [`WARM_P50_OPERATIONS`] per service)
    /// in one aggregation, ahead of the lookups whose analysis asks for them: each would
    /// otherwise read every span of its operations on first use (0.1–0.2 s per operation at 10M
    /// records; all of them at once cost about as much as two). Done when the segments have
    /// changed since the last time and that was half a [`P50_TTL`] ago or more, so that a live
    /// index's p50s are refreshed before lookups find them stale. Returns whether it computed.
    fn warm_p50s(&self, now: Instant) -> crate::Result<bool> {
        let cache = &self.inner.p50s;
        let segments = segments_key(&self.searcher());
        let due = cache
            .warmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|(at, warmed)| {
                warmed != segments && now.saturating_duration_since(at) >= P50_TTL / 2
            });
        if !due {
            return Ok(false);
        }
        let response = self.aggregate(&AggRequest {
            query: P50_SPANS,
            by: vec![names::SERVICE.to_owned(), names::NAME.to_owned()],
            size: WARM_P50_OPERATIONS,
            duration_stats: true,
            duration_percentiles: vec![50.0],
            ..AggRequest::default()
        })?;
        for bucket in &response.buckets {
            let [(_, service), (_, name)] = bucket.key.as_slice() else {
                continue;
            };
            let p50 = bucket.duration.as_ref().and_then(p50_of);
            cache.put(service, name, now, segments, p50);
        }
        *cache.warmed.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, segments));
        Ok(true)
    }

    /// The full analysis of `trace`, with what the index knows about other traces.
    pub fn analyze(&self, trace: &Trace, options: &analysis::Options) -> analysis::Analysis {
        analysis::analyze(
            &trace.analysis_input(),
            &IndexLookup { index: self },
            options,
        )
    }
}

struct IndexLookup<'a> {
    index: &'a Index,
}

/// A string literal of the query language.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Internal => "INTERNAL",
        SpanKind::Unspecified => "UNSPECIFIED",
    }
}

impl IndexLookup<'_> {
    /// The newest matches of `query` as search hits (`Index::search`'s shape), newest first.
    fn load_hits(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn Query,
        newest: &NewestSpans,
    ) -> crate::Result<Vec<Value>> {
        let fields = self.index.fields();
        let matches = searcher
            .search(query, newest)
            .context("looking up spans of other traces")?;
        // Through the loader: a stored record keeps its times in the fast fields only.
        let mut loader = RecordLoader::new(self.index, searcher);
        let mut hits = Vec::with_capacity(matches.len());
        for m in &matches {
            hits.push(hit_json(loader.load(m)?, m.is_span));
        }
        resolve_partial_ids(searcher, fields, hits.iter_mut())?;
        Ok(hits)
    }

    /// The p50 duration of the operation's spans in the index (`None` with too few).
    fn compute_p50(&self, service: &str, name: &str) -> Option<i64> {
        let query = format!(
            "{P50_SPANS} AND service = {} AND name = {}",
            quoted(service),
            quoted(name)
        );
        let response = self
            .index
            .aggregate(&AggRequest {
                query: &query,
                duration_percentiles: vec![50.0],
                duration_stats: true,
                ..AggRequest::default()
            })
            .ok()?;
        p50_of(response.buckets.first()?.duration.as_ref()?)
    }
}

/// The spans an operation's p50 is computed from.
const P50_SPANS: &str = "kind = span";

/// The p50 of duration stats asked for it alone; `None` with too few spans to say anything.
fn p50_of(stats: &crate::agg::DurationStats) -> Option<i64> {
    if stats.count < MIN_P50_SAMPLES {
        return None;
    }
    let p50 = stats.percentiles.first()?.1?;
    Some(p50 as i64)
}

impl Lookup for IndexLookup<'_> {
    fn operation_p50_ns(&self, service: &str, name: &str) -> Option<i64> {
        let cache = &self.index.inner.p50s;
        let segments = segments_key(&self.index.searcher());
        let now = Instant::now();
        if let Some(p50) = cache.get(service, name, segments, now) {
            return p50;
        }
        let p50 = self.compute_p50(service, name);
        cache.put(service, name, now, segments, p50);
        p50
    }

    fn spans(&self, q: &SpanQuery) -> Vec<ForeignSpan> {
        let mut clauses = vec!["kind = span".to_owned()];
        if let Some(id) = &q.message_id {
            clauses.push(format!("messaging.message.id = {}", quoted(id)));
        }
        let query = clauses.join(" AND ");
        let Ok(compiled) = self.index.compile(&query, None) else {
            return Vec::new();
        };
        // The window picks the candidates (from each segment's spans in time order) and checks
        // root and kind from their columns, rather than a range over the time column and
        // `NOT exists(parent_span_id)`, which tantivy checks for every span.
        let searcher = self.index.searcher();
        self.index.inner.span_times.retain(&searcher);
        let window = SpansInWindow {
            fields: self.index.fields().clone(),
            times: self.index.inner.span_times.clone(),
            from_ns: q.start_from_ns,
            to_ns: q.start_to_ns.saturating_add(1),
            roots_only: q.roots_only,
            span_kinds: q.kinds.iter().map(|&k| kind_name(k)).collect(),
            running_at_ns: q.running_at_ns,
            continues: q.continues.clone(),
        };
        let mut parts: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(window)), (Occur::Must, compiled)];
        // The trace itself, as its lookup finds it: every record with the low 64 bits of its
        // id. A `trace_id = X` filter would also read each segment's trace-id dictionary to
        // keep a trace that shares those bits, which random ids do once in 2^64 per pair
        // (1.3 → 1.7 ms per analysed trace, docs/BENCHMARKS.md).
        if let Some(trace_id) = q.exclude {
            parts.push((Occur::MustNot, trace_query(self.index.fields(), trace_id)));
        }
        let query = BooleanQuery::new(parts);
        let newest = NewestSpans {
            fields: self.index.fields().clone(),
            times: self.index.inner.span_times.clone(),
            limit: q.limit.clamp(1, crate::MAX_SEARCH_LIMIT),
        };
        let Ok(hits) = self.load_hits(&searcher, &query, &newest) else {
            return Vec::new();
        };
        hits.into_iter()
            .filter_map(|mut hit| {
                // A hit's `kind` is the document kind; the span's own is under `span_kind`.
                if let Some(map) = hit.as_object_mut()
                    && let Some(kind) = map.remove("span_kind")
                {
                    map.insert("kind".into(), kind);
                }
                let start_ns = hit
                    .get("start")
                    .and_then(Value::as_str)
                    .and_then(decode::time::parse_datetime)?;
                let duration_ns = hit.get("duration_ns").and_then(Value::as_i64).unwrap_or(0);
                Some(ForeignSpan {
                    trace_id: hit
                        .get("trace_id")
                        .and_then(Value::as_str)
                        .and_then(|t| TraceId::from_hex(t).ok()),
                    span: analysis_span(start_ns, duration_ns, &hit),
                })
            })
            .collect()
    }

    fn has_children(&self, trace_id: TraceId, span_id: SpanId) -> bool {
        // The trace's records are found by term (as its lookup finds them: by the low 64 bits
        // of its id); their parent is read from the column. A term query on `parent_span_id`
        // (a fast field only) would scan the column of every segment.
        let query = trace_query(self.index.fields(), trace_id);
        self.index
            .searcher()
            .search(&*query, &ParentIs(span_id.as_u64()))
            // When the index cannot say, do not claim a lost context.
            .unwrap_or(true)
    }
}

/// Whether a matching document names this span id as its parent.
struct ParentIs(u64);

struct ParentIsSegment {
    column: Option<Column<u64>>,
    parent: u64,
    found: bool,
}

impl Collector for ParentIs {
    type Fruit = bool;
    type Child = ParentIsSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<ParentIsSegment> {
        Ok(ParentIsSegment {
            column: reader.fast_fields().column_opt(names::PARENT_SPAN_ID)?,
            parent: self.0,
            found: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<bool>) -> tantivy::Result<bool> {
        Ok(fruits.into_iter().any(|found| found))
    }
}

impl SegmentCollector for ParentIsSegment {
    type Fruit = bool;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let (false, Some(column)) = (self.found, &self.column) {
            self.found = column.first(doc) == Some(self.parent);
        }
    }

    fn harvest(self) -> bool {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Writer, WriterConfig};
    use model::{Record, Span};

    #[test]
    fn warming_builds_what_lookups_read_for_the_large_segments_only() {
        let index = Index::create_in_ram().unwrap();
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        for spans in [3u64, 10] {
            write_spans(&writer, "api", "op", &vec![1; spans as usize], spans);
        }
        writer.shutdown().unwrap();
        let sizes: Vec<u32> = index
            .searcher()
            .segment_readers()
            .iter()
            .map(|r| r.max_doc())
            .collect();
        let built = || (index.inner.span_times.len(), index.inner.columns.len());
        assert_eq!(built(), (0, 0));
        index.warm_lookups().unwrap();
        assert_eq!(built(), (0, 0), "every segment is small: {sizes:?}");
        // Larger segments first, then every segment.
        let largest = *sizes.iter().max().unwrap();
        assert!(largest > 3, "{sizes:?}");
        for min_docs in [largest, 1] {
            index.warm_lookups_of(min_docs).unwrap();
            let n = sizes.iter().filter(|&&size| size >= min_docs).count();
            assert_eq!(built(), (n, n), "at least {min_docs} of {sizes:?}");
        }
        assert_eq!(built().0, sizes.len());
    }

    /// Spans of `service`/`name` lasting `durations_ms`, flushed as one segment.
    fn write_spans(writer: &Writer, service: &str, name: &str, durations_ms: &[i64], seed: u64) {
        let records = durations_ms
            .iter()
            .zip(1u64..)
            .map(|(&ms, i)| {
                Record::Span(Span {
                    trace_id: TraceId::from_u128(u128::from(seed * 1_000 + i)),
                    span_id: SpanId::from_u64(i),
                    name: name.into(),
                    service: service.into(),
                    start_ns: 1_000,
                    end_ns: 1_000 + ms * 1_000_000,
                    ..Span::default()
                })
            })
            .collect();
        writer
            .blocking_send(Batch::new(records, Vec::new()))
            .unwrap();
        writer.blocking_flush().unwrap();
    }

    /// One aggregation puts every operation's p50 in the cache, each as computing that
    /// operation alone gives it (`None` with too few spans); it runs again only once the
    /// segments have changed and half the reuse time has passed.
    #[test]
    fn warming_computes_every_operations_p50_as_one_at_a_time_would() {
        let index = Index::create_in_ram().unwrap();
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        let slow: Vec<i64> = (1..=40).map(|n| n * n).collect();
        write_spans(&writer, "api", "GET /", &[5, 7, 9, 11, 300, 2, 8], 1);
        write_spans(&writer, "api", "POST /pay", &slow, 2);
        write_spans(&writer, "db", "select", &[1, 1, 2], 3);
        let lookup = IndexLookup { index: &index };
        let operations = [("api", "GET /"), ("api", "POST /pay"), ("db", "select")];
        let alone: Vec<_> = operations
            .iter()
            .map(|&(service, name)| lookup.compute_p50(service, name))
            .collect();
        assert!(alone[0].is_some() && alone[1].is_some() && alone[2].is_none());
        let cache = &index.inner.p50s;
        let segments = segments_key(&index.searcher());
        let start = Instant::now();
        assert!(index.warm_p50s(start).unwrap());
        for (&(service, name), p50) in operations.iter().zip(&alone) {
            assert_eq!(
                cache.get(service, name, segments, start),
                Some(*p50),
                "{name}"
            );
        }
        // Same segments: nothing to do, however late.
        assert!(!index.warm_p50s(start + P50_TTL * 3).unwrap());
        write_spans(&writer, "api", "GET /", &[1, 1, 1, 1, 1, 1, 1, 1, 1], 4);
        writer.shutdown().unwrap();
        assert!(!index.warm_p50s(start + P50_TTL / 4).unwrap());
        assert!(index.warm_p50s(start + P50_TTL / 2).unwrap());
        let segments = segments_key(&index.searcher());
        let now = start + P50_TTL / 2;
        assert_eq!(
            cache.get("api", "GET /", segments, now),
            Some(lookup.compute_p50("api", "GET /"))
        );
        assert_ne!(lookup.compute_p50("api", "GET /"), alone[0]);
    }

    #[test]
    fn a_p50_is_reused_while_the_segments_are_the_same_and_for_a_while_after() {
        let cache = P50Cache::default();
        let now = Instant::now();
        let computed = now.checked_sub(P50_TTL * 10).unwrap_or(now);
        cache.put("api", "GET /", computed, 1, Some(7));
        assert_eq!(cache.get("api", "GET /", 1, now), Some(Some(7)));
        assert_eq!(
            cache.get("api", "GET /", 2, computed + P50_TTL / 2),
            Some(Some(7))
        );
        if computed + P50_TTL <= now {
            assert_eq!(cache.get("api", "GET /", 2, now), None);
        }
        assert_eq!(cache.get("api", "POST /", 1, now), None);
    }
}
