//! Spans of a time window without scanning the time column: each segment's spans in timestamp
//! order, kept in memory per segment (segments never change), so that a window is two binary
//! searches and costs what it holds, not what the index holds.
//!
//! `timestamp` is a fast field only (no inverted index; `schema.rs`), so tantivy's
//! `RangeQuery` on it checks the column document by document: fine for a search whose other
//! terms are selective, but the analysis's "spans of other traces that started in this window"
//! has no selective term besides `kind = span`, and its cost grew with the index
//! (docs/BENCHMARKS.md, issue 13).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex, DynamicColumn, StrColumn};
use tantivy::query::{ConstScorer, EnableScoring, Explanation, Query, Scorer, TermQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::{
    DateTime, DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED, Term,
};

use crate::collect::Match;
use crate::doc::KIND_SPAN;
use crate::schema::{Fields, names};
use crate::segment_cache::SegmentCache;
use crate::trace::PEER_ATTRIBUTES;

/// Per segment, its spans in time order and the columns a lookup reads. Opening a column
/// reads its block index (a few bytes per 512 documents), so opening one per lookup would cost
/// more as the index grows; the opened columns are kept with the segment.
#[derive(Default)]
pub(crate) struct SpanTimes {
    segments: SegmentCache<SegmentSpans>,
}

/// One segment's spans and columns.
pub(crate) struct SegmentSpans {
    /// The ids of the spans that have a timestamp, ordered by (timestamp, doc id). Four bytes
    /// per span, five with `shapes`, under six with `blocks` and `roots`: 35 MB for an index of
    /// 10M records (6.4M spans).
    docs: Vec<DocId>,
    timestamp: Column<DateTime>,
    duration: Column<i64>,
    seq: Column<u64>,
    /// Per span of `docs`, whether it names no parent ([`SHAPE_ROOT`]) and its kind
    /// ([`SHAPE_KIND`], [`shape_of_kind`]): one byte per span, so that a window is filtered
    /// without reading the parent and kind columns span by span.
    shapes: Vec<u8>,
    /// Per run of [`BLOCK`] spans of `docs`, its first start, its latest end and its kinds: a
    /// window's bounds are found in the block starts before the time column is read, and a
    /// block with none of the kinds asked for, or that ended before a "still running at" time,
    /// is passed over without reading its spans. 24 bytes per 64 spans.
    blocks: Vec<Block>,
    /// The positions in `docs` of the spans that name no parent, in order: a window of roots
    /// reads only them (a trace has one root among its ~15 spans).
    roots: Vec<u32>,
    services: Option<StrColumn>,
    /// The service column's terms lower-cased, by ordinal (`None` past
    /// [`MAX_SERVICES_LOWERED`]: a continuation is then not checked by service).
    services_lower: Option<Vec<String>>,
    names: Option<StrColumn>,
    message_ids: Attribute,
    destinations: Attribute,
    /// Per attribute of [`PEER_ATTRIBUTES`].
    peers: Vec<Attribute>,
}

/// Spans per [`Block`].
const BLOCK: usize = 64;

/// A run of [`BLOCK`] spans of a segment's time order (the last run may be shorter).
#[derive(Clone, Copy)]
struct Block {
    /// The start of the run's first span.
    first_ns: i64,
    /// The latest end (start plus duration, as [`SpansInWindow`] computes it) of its spans.
    max_end_ns: i64,
    /// Bit `1 << code` for each kind code of its spans' shapes.
    kinds: u8,
}

/// A span's shape: it names no parent.
const SHAPE_ROOT: u8 = 0x80;
/// A span's shape: its kind's code (0 for a kind of no other code).
const SHAPE_KIND: u8 = 0x07;
const SPAN_KINDS: [&str; 6] = [
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
    "INTERNAL",
    "UNSPECIFIED",
];

/// The code of a `span_kind` value in a span's shape (1 to 6; 0 for any other value).
fn shape_of_kind(kind: &str) -> u8 {
    SPAN_KINDS
        .iter()
        .position(|&k| k == kind)
        .map_or(0, |i| i as u8 + 1)
}

/// The attribute columns `analysis::Continues` compares (attribute keys expand at dots).
const MESSAGE_ID_COLUMN: &str = "attributes.messaging.message.id";
const DESTINATION_COLUMN: &str = "attributes.messaging.destination.name";

/// Most distinct services of a segment whose lower-cased names are kept.
const MAX_SERVICES_LOWERED: usize = 65_536;

/// An attribute's text column, for an exact comparison.
struct Attribute {
    text: Option<StrColumn>,
    /// Which spans hold a value of the attribute that is not text (a number, a boolean): the
    /// rule compares it as its JSON text, which no column holds, so such a span may match.
    not_text: Vec<ColumnIndex>,
}

impl SpanTimes {
    /// Forgets the segments that are not in `searcher` (merged away or deleted).
    pub(crate) fn retain(&self, searcher: &tantivy::Searcher) {
        self.segments.retain(searcher);
    }

    /// Segments held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.segments.len()
    }

    /// The segment's spans and columns, read on first use.
    pub(crate) fn of(
        &self,
        fields: &Fields,
        reader: &SegmentReader,
    ) -> tantivy::Result<Arc<SegmentSpans>> {
        self.segments
            .get_or_build(reader, |reader| SegmentSpans::read(fields, reader))
    }
}

/// The newest `limit` matches, newest first, like the search's `NewestFirst` (by timestamp,
/// then `seq`) but reading the columns kept in [`SpanTimes`]. Only for queries that match
/// spans alone (every match is taken for a span).
pub(crate) struct NewestSpans {
    pub fields: Fields,
    pub times: Arc<SpanTimes>,
    pub limit: usize,
}

pub(crate) struct NewestSpansSegment {
    segment: SegmentOrdinal,
    spans: Arc<SegmentSpans>,
    limit: usize,
    /// A min-heap of the newest matches seen so far.
    heap: BinaryHeap<Reverse<Match>>,
}

impl Collector for NewestSpans {
    type Fruit = Vec<Match>;
    type Child = NewestSpansSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<NewestSpansSegment> {
        Ok(NewestSpansSegment {
            segment,
            spans: self.times.of(&self.fields, reader)?,
            limit: self.limit,
            heap: BinaryHeap::with_capacity(self.limit.min(10_000) + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Match>>) -> tantivy::Result<Vec<Match>> {
        let mut all: Vec<Match> = fruits.into_iter().flatten().collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(self.limit);
        Ok(all)
    }
}

impl SegmentCollector for NewestSpansSegment {
    type Fruit = Vec<Match>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let m = Match {
            ts: timestamp_ns(&self.spans.timestamp, doc),
            seq: self.spans.seq.first(doc).unwrap_or(0),
            addr: DocAddress::new(self.segment, doc),
            is_span: true,
        };
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(m));
        } else if let Some(Reverse(oldest)) = self.heap.peek()
            && m > *oldest
        {
            self.heap.pop();
            self.heap.push(Reverse(m));
        }
    }

    fn harvest(self) -> Vec<Match> {
        self.heap.into_iter().map(|Reverse(m)| m).collect()
    }
}

/// Spans whose `timestamp` is in `[from_ns, to_ns)`: the same documents as
/// `kind = span` intersected with a `RangeQuery` on `timestamp`, found from [`SpanTimes`];
/// optionally only those without `parent_span_id` (`NOT exists(parent_span_id)`) and of one of
/// `span_kinds` (a `span_kind` term each) or still running at `running_at_ns`, checked on the
/// window's spans from their columns.
#[derive(Clone)]
pub(crate) struct SpansInWindow {
    pub fields: Fields,
    pub times: Arc<SpanTimes>,
    pub from_ns: i64,
    pub to_ns: i64,
    pub roots_only: bool,
    /// Empty: any kind.
    pub span_kinds: Vec<&'static str>,
    /// Only spans ending at or after this (`timestamp` + `duration_ns`), and PRODUCER spans.
    pub running_at_ns: Option<i64>,
    /// Only spans that share a service, name or messaging attribute with a call.
    pub continues: Option<analysis::Continues>,
}

impl std::fmt::Debug for SpansInWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpansInWindow")
            .field("from_ns", &self.from_ns)
            .field("to_ns", &self.to_ns)
            .finish()
    }
}

impl Query for SpansInWindow {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for SpansInWindow {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let spans = self.times.of(&self.fields, reader)?;
        let at = |doc: DocId| timestamp_ns(&spans.timestamp, doc);
        let start = spans.first_at_or_after(self.from_ns, 0);
        let end = spans.first_at_or_after(self.to_ns, start);
        // Root and kind from the shapes kept beside the docs, without reading a column.
        let kinds: Option<u8> = (!self.span_kinds.is_empty()).then(|| {
            self.span_kinds
                .iter()
                .map(|&kind| shape_of_kind(kind))
                .fold(0u8, |mask, code| mask | (1 << code))
        });
        let wanted = |shape: u8| {
            (!self.roots_only || shape & SHAPE_ROOT != 0)
                && kinds.is_none_or(|mask| {
                    let code = shape & SHAPE_KIND;
                    code != 0 && mask & (1 << code) != 0
                })
        };
        let producer = shape_of_kind("PRODUCER");
        // Still running at `running_at` (a producer whatever its end): a span of a block that
        // ended before it is not, and its times are not read.
        let running = |block: &Block, doc: DocId, shape: u8| match self.running_at_ns {
            None => true,
            Some(running_at) => {
                shape & SHAPE_KIND == producer
                    || block.max_end_ns >= running_at
                        && at(doc).saturating_add(duration_ns(&spans.duration, doc)) >= running_at
            }
        };
        // A block none of whose spans can pass is skipped without looking at them.
        let may_hold = |block: &Block| {
            let kinds = block.kinds & kinds.map_or(u8::MAX, |mask| mask & !1);
            let ended = self
                .running_at_ns
                .is_some_and(|running_at| block.max_end_ns < running_at);
            kinds != 0 && (!ended || kinds & (1 << producer) != 0)
        };
        let keep = |i: usize, block: &Block| {
            let (doc, shape) = (spans.docs[i], spans.shapes[i]);
            (wanted(shape) && running(block, doc, shape)).then_some(doc)
        };
        let mut window: Vec<DocId> = Vec::new();
        if self.roots_only {
            // The window's roots alone, from their positions.
            let first = spans.roots.partition_point(|&i| (i as usize) < start);
            let last = first + spans.roots[first..].partition_point(|&i| (i as usize) < end);
            window.extend(spans.roots[first..last].iter().filter_map(|&i| {
                let i = i as usize;
                keep(i, &spans.blocks[i / BLOCK])
            }));
        } else {
            for b in (start / BLOCK)..end.div_ceil(BLOCK) {
                let block = &spans.blocks[b];
                if may_hold(block) {
                    let (from, to) = ((b * BLOCK).max(start), ((b + 1) * BLOCK).min(end));
                    window.extend((from..to).filter_map(|i| keep(i, block)));
                }
            }
        }
        if let Some(continues) = &self.continues {
            keep_continuations(&spans, continues, &mut window)?;
        }
        window.sort_unstable();
        Ok(Box::new(ConstScorer::new(SortedDocs::new(window), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc || doc == TERMINATED {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document #{doc} is not a span of the window"
            )));
        }
        Ok(Explanation::new("SpansInWindow", 1.0))
    }
}

/// Keeps the spans of `window` that `continues` lets through, from the columns (unordered).
fn keep_continuations(
    spans: &SegmentSpans,
    continues: &analysis::Continues,
    window: &mut Vec<DocId>,
) -> tantivy::Result<()> {
    let Some(filter) = ContinuesFilter::new(spans, continues)? else {
        return Ok(());
    };
    let mut unmatched = Vec::new();
    window.retain(|&doc| {
        let keep = filter.matches(spans, doc);
        if !keep {
            unmatched.push(doc);
        }
        keep
    });
    let Some(service) = &continues.peer_containing else {
        return Ok(());
    };
    // The peer attributes' texts are read in one sorted pass per column (a dictionary block
    // read costs a decompression), for the spans nothing else matched.
    for peer in &spans.peers {
        let Some(text) = &peer.text else { continue };
        let mut ords: Vec<u64> = unmatched.iter().flat_map(|&d| text.term_ords(d)).collect();
        ords.sort_unstable();
        ords.dedup();
        let mut naming = Vec::new();
        let mut at = ords.iter();
        text.dictionary().sorted_ords_to_term_cb(&ords, |term| {
            let ord = at.next().copied();
            if String::from_utf8_lossy(term)
                .to_ascii_lowercase()
                .contains(service.as_str())
            {
                naming.extend(ord);
            }
        })?;
        unmatched.retain(|&doc| {
            let names = text
                .term_ords(doc)
                .any(|o| naming.binary_search(&o).is_ok());
            if names {
                window.push(doc);
            }
            !names
        });
    }
    // A peer that is not text (a number) may name the service as its JSON text.
    window.extend(unmatched.into_iter().filter(|&doc| {
        spans
            .peers
            .iter()
            .any(|peer| peer.not_text.iter().any(|index| index.has_value(doc)))
    }));
    Ok(())
}

/// [`analysis::Continues`] as term ordinals of one segment's columns.
struct ContinuesFilter {
    services: Vec<u64>,
    name: Option<u64>,
    message_id: Option<u64>,
    destination: Option<u64>,
    asks_message_id: bool,
    asks_destination: bool,
}

impl ContinuesFilter {
    /// `None` when the columns cannot decide (every span may continue the call).
    fn new(
        spans: &SegmentSpans,
        continues: &analysis::Continues,
    ) -> tantivy::Result<Option<ContinuesFilter>> {
        let services = match (&spans.services_lower, continues.services.is_empty()) {
            (_, true) => Vec::new(),
            (Some(lower), false) => (0u64..)
                .zip(lower)
                .filter(|(_, service)| continues.services.contains(service))
                .map(|(ord, _)| ord)
                .collect(),
            (None, false) => return Ok(None),
        };
        let name = match (&spans.names, &continues.name) {
            (Some(names), Some(name)) => names.dictionary().term_ord(name)?,
            _ => None,
        };
        let message_id = match &continues.message_id {
            Some(id) => spans.message_ids.ord(id)?,
            None => None,
        };
        let destination = match &continues.destination {
            Some(destination) => spans.destinations.ord(destination)?,
            None => None,
        };

        Ok(Some(ContinuesFilter {
            services,
            name,
            message_id,
            destination,
            asks_message_id: continues.message_id.is_some(),
            asks_destination: continues.destination.is_some(),
        }))
    }

    fn matches(&self, spans: &SegmentSpans, doc: DocId) -> bool {
        let has = |column: &Option<StrColumn>, ord: Option<u64>| match (column, ord) {
            (Some(column), Some(ord)) => column.term_ords(doc).any(|o| o == ord),
            _ => false,
        };
        let service = !self.services.is_empty()
            && spans
                .services
                .as_ref()
                .is_some_and(|c| c.term_ords(doc).any(|o| self.services.contains(&o)));
        service
            || has(&spans.names, self.name)
            || spans
                .message_ids
                .may_have(doc, self.asks_message_id, self.message_id)
            || spans
                .destinations
                .may_have(doc, self.asks_destination, self.destination)
    }
}

impl Attribute {
    fn read(reader: &SegmentReader, path: &str) -> tantivy::Result<Attribute> {
        let mut text = None;
        let mut not_text = Vec::new();
        for column in crate::json_terms::columns(reader, path)? {
            match column {
                DynamicColumn::Str(column) => text = Some(column),
                other => not_text.push(other.into_column_index()),
            }
        }
        Ok(Attribute { text, not_text })
    }

    /// `value`'s ordinal in the text column (`None`: no span has it as text).
    fn ord(&self, value: &str) -> tantivy::Result<Option<u64>> {
        Ok(match &self.text {
            Some(text) => text.dictionary().term_ord(value)?,
            None => None,
        })
    }

    /// Whether `doc` may have the value whose text ordinal is `ord` (asked for: `asked`).
    fn may_have(&self, doc: DocId, asked: bool, ord: Option<u64>) -> bool {
        if !asked {
            return false;
        }
        let as_text = match (&self.text, ord) {
            (Some(text), Some(ord)) => text.term_ords(doc).any(|o| o == ord),
            _ => false,
        };
        as_text || self.not_text.iter().any(|index| index.has_value(doc))
    }
}

/// Ascending, distinct doc ids as a [`DocSet`].
struct SortedDocs {
    docs: Vec<DocId>,
    at: usize,
}

impl SortedDocs {
    fn new(docs: Vec<DocId>) -> SortedDocs {
        debug_assert!(docs.windows(2).all(|w| w[0] < w[1]));
        SortedDocs { docs, at: 0 }
    }
}

impl DocSet for SortedDocs {
    fn advance(&mut self) -> DocId {
        self.at = (self.at + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.at += self.docs[self.at..].partition_point(|&doc| doc < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        (self.docs.len() - self.at) as u32
    }
}

fn timestamp_ns(column: &Column<DateTime>, doc: DocId) -> i64 {
    column
        .first(doc)
        .map_or(i64::MIN, DateTime::into_timestamp_nanos)
}

/// A span's duration for "still running at": none or negative counts as 0.
fn duration_ns(column: &Column<i64>, doc: DocId) -> i64 {
    column.first(doc).unwrap_or(0).max(0)
}

impl SegmentSpans {
    /// The position in `docs` of the first span, at or after `from`, that starts at or after
    /// `ns` (`docs.len()` if none does): the block starts narrow it to one block, whose spans'
    /// times are then read.
    fn first_at_or_after(&self, ns: i64, from: usize) -> usize {
        // Blocks whose first span starts before `ns`: every span before the last of them
        // starts before `ns` too, and every span from the next block on does not.
        let before = self.blocks.partition_point(|b| b.first_ns < ns);
        let lo = (before.saturating_sub(1) * BLOCK).max(from);
        let hi = (before * BLOCK).min(self.docs.len()).max(lo);
        lo + self.docs[lo..hi].partition_point(|&doc| timestamp_ns(&self.timestamp, doc) < ns)
    }

    /// The segment's spans that have a timestamp, by (timestamp, doc id), and its columns.
    /// Deleted documents are kept: a search skips them by the segment's alive bitset, which
    /// deletes change.
    fn read(fields: &Fields, reader: &SegmentReader) -> tantivy::Result<SegmentSpans> {
        let fast = reader.fast_fields();
        let timestamp = fast.date(names::TIMESTAMP)?;
        let spans = TermQuery::new(
            Term::from_field_text(fields.kind, KIND_SPAN),
            IndexRecordOption::Basic,
        );
        let mut scorer = spans
            .weight(EnableScoring::disabled_from_schema(&fields.schema))?
            .scorer(reader, 1.0)?;
        let mut keyed: Vec<(i64, DocId)> = Vec::new();
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if let Some(ts) = timestamp.first(doc) {
                keyed.push((ts.into_timestamp_nanos(), doc));
            }
            doc = scorer.advance();
        }
        keyed.sort_unstable();
        let parents: Option<Column<u64>> = fast.column_opt(names::PARENT_SPAN_ID)?;
        // `span_kind` has no column: its few terms' postings give each span's kind.
        let kinds = crate::json_terms::keyword_codes(reader, fields.span_kind, shape_of_kind)?;
        let shapes: Vec<u8> = keyed
            .iter()
            .map(|&(_, doc)| {
                let root = parents.as_ref().is_none_or(|p| p.first(doc).is_none());
                let kind = kinds.get(doc as usize).copied().unwrap_or(0);
                if root { SHAPE_ROOT | kind } else { kind }
            })
            .collect();
        let services = fast.str(names::SERVICE)?;
        let services_lower = match &services {
            Some(column) if column.num_terms() <= MAX_SERVICES_LOWERED => {
                let mut lower = Vec::with_capacity(column.num_terms());
                let mut terms = column.dictionary().stream()?;
                while terms.advance() {
                    lower.push(String::from_utf8_lossy(terms.key()).to_ascii_lowercase());
                }
                Some(lower)
            }
            Some(_) => None,
            None => Some(Vec::new()),
        };
        let duration = fast.i64(names::DURATION_NS)?;
        let blocks = keyed
            .chunks(BLOCK)
            .zip(shapes.chunks(BLOCK))
            .map(|(run, shapes)| Block {
                first_ns: run[0].0,
                max_end_ns: run
                    .iter()
                    .map(|&(ts, doc)| ts.saturating_add(duration_ns(&duration, doc)))
                    .max()
                    .unwrap_or(i64::MIN),
                kinds: shapes
                    .iter()
                    .fold(0, |kinds, shape| kinds | 1 << (shape & SHAPE_KIND)),
            })
            .collect();
        let roots = (0u32..)
            .zip(&shapes)
            .filter(|&(_, shape)| shape & SHAPE_ROOT != 0)
            .map(|(i, _)| i)
            .collect();
        Ok(SegmentSpans {
            docs: keyed.into_iter().map(|(_, doc)| doc).collect(),
            roots,
            timestamp,
            duration,
            blocks,
            seq: fast.u64(names::SEQ)?,
            shapes,
            services,
            services_lower,
            names: fast.str(names::NAME)?,
            message_ids: Attribute::read(reader, MESSAGE_ID_COLUMN)?,
            destinations: Attribute::read(reader, DESTINATION_COLUMN)?,
            peers: PEER_ATTRIBUTES
                .iter()
                .map(|key| Attribute::read(reader, &format!("{}.{key}", names::ATTRIBUTES)))
                .collect::<tantivy::Result<_>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use model::{LogRecord, Record, Span, SpanId, SpanKind, TraceId};
    use tantivy::collector::DocSetCollector;
    use tantivy::query::{BooleanQuery, ExistsQuery, Occur, RangeQuery};

    use super::*;
    use crate::collect::NewestFirst;
    use crate::{Batch, Index, Writer, WriterConfig};

    const T0: i64 = 1_795_183_200_000_000_000;

    /// Three commits (three segments or more) of spans and logs at times that repeat and
    /// interleave across segments, 160 spans (three blocks) each.
    fn index() -> Index {
        let index = Index::create_in_ram().unwrap();
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        let mut n = 0u64;
        for segment in 0..3i64 {
            let mut records = Vec::new();
            for i in 0..240i64 {
                n += 1;
                let at = T0 + ((i * 37 + segment * 11) % 50) * 1_000;
                records.push(if i % 3 == 0 {
                    Record::Log(LogRecord {
                        time_ns: at,
                        service: "api".into(),
                        body: format!("log {n}"),
                        ..LogRecord::default()
                    })
                } else {
                    Record::Span(Span {
                        trace_id: TraceId::from_u128(u128::from(n)),
                        span_id: SpanId::from_u64(n),
                        // Roots in the first segment only, servers only in the second, so
                        // that some blocks hold no span a window asks for.
                        parent_span_id: SpanId::from_u64(n * 1_000)
                            .filter(|_| i % 4 != 1 || segment > 0),
                        kind: [SpanKind::Server, SpanKind::Client, SpanKind::Producer]
                            [if segment == 1 { 0 } else { (i % 3) as usize }],
                        name: "op".into(),
                        service: "api".into(),
                        start_ns: at,
                        // Mostly short, some long enough to run past later spans' starts.
                        end_ns: at + if n.is_multiple_of(17) { 30_000 } else { 5 },
                        ..Span::default()
                    })
                });
            }
            writer
                .blocking_send(Batch::new(records, Vec::new()))
                .unwrap();
            writer.blocking_flush().unwrap();
        }
        writer.shutdown().unwrap();
        index
    }

    #[test]
    fn a_window_holds_the_spans_a_range_over_the_time_column_holds() {
        let index = index();
        let fields = index.fields();
        let searcher = index.searcher();
        let n_segments = searcher.segment_readers().len();
        assert!(n_segments >= 3, "{n_segments} segments");
        let times = Arc::new(SpanTimes::default());
        let term = |ns| Term::from_field_date(fields.timestamp, DateTime::from_timestamp_nanos(ns));
        let mut windows = vec![(i64::MIN, i64::MAX), (T0, T0), (T0 + 1, T0 + 1_000)];
        for from in (-2..52).map(|i| T0 + i * 1_000) {
            for len in [0, 1, 999, 1_000, 1_001, 7_000, 60_000] {
                windows.push((from, from + len));
            }
        }
        let mut non_empty = 0;
        let span_kind = |kind| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(fields.span_kind, kind),
                IndexRecordOption::Basic,
            ))
        };
        for (from_ns, to_ns) in windows {
            let range = || -> Box<dyn Query> {
                Box::new(BooleanQuery::intersection(vec![
                    crate::search::kind_query(fields, KIND_SPAN),
                    Box::new(RangeQuery::new(
                        Bound::Included(term(from_ns)),
                        Bound::Excluded(term(to_ns)),
                    )),
                ]))
            };
            let roots = BooleanQuery::new(vec![
                (Occur::Must, range()),
                (
                    Occur::MustNot,
                    Box::new(ExistsQuery::new(names::PARENT_SPAN_ID.into(), false)),
                ),
            ]);
            let callers = BooleanQuery::intersection(vec![
                range(),
                Box::new(BooleanQuery::union(vec![
                    span_kind("CLIENT"),
                    span_kind("PRODUCER"),
                ])),
            ]);
            let cases: [(&dyn Query, bool, Vec<&'static str>); 3] = [
                (&*range(), false, vec![]),
                (&roots, true, vec![]),
                (&callers, false, vec!["CLIENT", "PRODUCER"]),
            ];
            for (expected, roots_only, span_kinds) in cases {
                let window = SpansInWindow {
                    fields: fields.clone(),
                    times: times.clone(),
                    from_ns,
                    to_ns,
                    roots_only,
                    span_kinds,
                    running_at_ns: None,
                    continues: None,
                };
                let newest = NewestSpans {
                    fields: fields.clone(),
                    times: times.clone(),
                    limit: 5,
                };
                let newest_first = NewestFirst {
                    limit: 5,
                    before: None,
                };
                assert_eq!(
                    searcher.search(&window, &newest).unwrap(),
                    searcher.search(expected, &newest_first).unwrap().hits,
                    "the newest of [{from_ns}, {to_ns}) roots_only {roots_only}"
                );
                let expected = searcher.search(expected, &DocSetCollector).unwrap();
                let found = searcher.search(&window, &DocSetCollector).unwrap();
                assert_eq!(
                    found, expected,
                    "[{from_ns}, {to_ns}) roots_only {roots_only}"
                );
                non_empty += usize::from(!found.is_empty());
            }
        }
        assert!(non_empty > 300, "only {non_empty} windows held a span");

        // Still running at a time: against every span's own columns, read one by one.
        let mut running_found = 0;
        for running_at in (-1..56).map(|i| T0 + i * 1_000 + 3) {
            for from_ns in [i64::MIN, running_at - 20_000, running_at - 1_000] {
                let window = SpansInWindow {
                    fields: fields.clone(),
                    times: times.clone(),
                    from_ns,
                    to_ns: running_at + 1,
                    roots_only: false,
                    span_kinds: Vec::new(),
                    running_at_ns: Some(running_at),
                    continues: None,
                };
                let found = searcher.search(&window, &DocSetCollector).unwrap();
                let mut expected = std::collections::HashSet::new();
                for (ord, reader) in searcher.segment_readers().iter().enumerate() {
                    let fast = reader.fast_fields();
                    let ts = fast.date(names::TIMESTAMP).unwrap();
                    let duration = fast.i64(names::DURATION_NS).unwrap();
                    let kind =
                        match &crate::json_terms::columns(reader, names::SPAN_KIND).unwrap()[..] {
                            [DynamicColumn::Str(kind)] => kind.clone(),
                            other => panic!("span_kind: {} columns", other.len()),
                        };
                    for doc in 0..reader.max_doc() {
                        let Some(start) = ts.first(doc).map(DateTime::into_timestamp_nanos) else {
                            continue;
                        };
                        let mut text = String::new();
                        let Some(ord_of_kind) = kind.term_ords(doc).next() else {
                            continue; // a log
                        };
                        kind.ord_to_str(ord_of_kind, &mut text).unwrap();
                        let end = start + duration.first(doc).unwrap_or(0).max(0);
                        if start >= from_ns
                            && start <= running_at
                            && (end >= running_at || text == "PRODUCER")
                        {
                            expected.insert(DocAddress::new(ord as u32, doc));
                        }
                    }
                }
                assert_eq!(
                    found.len(),
                    expected.len(),
                    "running at {running_at} from {from_ns}"
                );
                assert!(found.iter().all(|a| expected.contains(a)));
                running_found += found.len();
            }
        }
        assert!(running_found > 100, "only {running_found} running spans");
        // One entry per segment, kept across lookups.
        assert_eq!(times.segments.len(), n_segments);
        times.retain(&searcher);
        assert_eq!(times.segments.len(), n_segments);
    }
}
