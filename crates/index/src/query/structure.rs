//! Trace-level predicates, resolved on the searcher a query runs against:
//!
//! - `trace(Q)` ([`TraceOf`]) matches every record of each trace that has a record matching `Q`:
//!   the traces of `Q`'s matches are collected (their ids, from the `trace_id` column), then the
//!   predicate becomes a set-membership query on those ids, so it combines with anything.
//! - `A > B` ([`ChildOf`]) matches the spans matching `B` whose parent span matches `A` (TraceQL's
//!   structural `>`): the (trace, span) pairs of `A`'s spans are collected, then each span of
//!   `B` is kept when its (trace, parent span) pair is one of them. The answer is a list of
//!   documents per segment.
//!
//! Both read the index once more per predicate, so each is bounded: a predicate that would hold
//! more than [`MAX_TRACE_SET`] traces, [`MAX_PARENT_SPANS`] parents or [`MAX_CHILD_CANDIDATES`]
//! candidate children is refused with a message saying what to narrow (a 400, not a crash or an
//! unbounded allocation). A trace known only by the low 64 bits of its id (a Datadog decimal id,
//! a 64-bit Zipkin id) is the same trace as the full id those bits end, as in trace lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::{
    BitSetDocSet, BooleanQuery, ConstScorer, EmptyQuery, EnableScoring, Explanation, Occur, Query,
    Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, Score, SegmentOrdinal, SegmentReader, TantivyError, Term};

use crate::agg_traces::trace_ids_of_ords;
use crate::schema::{Fields, names};

/// Most distinct traces one `trace(...)` may stand for.
pub const MAX_TRACE_SET: usize = 1_000_000;
/// Most spans the left side of one `>` may match.
pub const MAX_PARENT_SPANS: usize = 1_000_000;
/// Most spans the right side of one `>` may match.
pub const MAX_CHILD_CANDIDATES: usize = 4_000_000;

/// The fields trace-level predicates read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkFields {
    kind: Field,
    trace_low64: Field,
}

impl LinkFields {
    pub(crate) fn new(fields: &Fields) -> LinkFields {
        LinkFields {
            kind: fields.kind,
            trace_low64: fields.trace_low64,
        }
    }

    /// `inner AND kind = span`.
    fn spans_of(self, inner: &dyn Query) -> BooleanQuery {
        let span = TermQuery::new(
            Term::from_field_text(self.kind, "span"),
            IndexRecordOption::Basic,
        );
        BooleanQuery::new(vec![
            (Occur::Must, inner.box_clone()),
            (Occur::Must, Box::new(span)),
        ])
    }

    /// Every record of the given traces.
    fn members_of(self, ids: &HashSet<u128>) -> Box<dyn Query> {
        if ids.is_empty() {
            return Box::new(EmptyQuery);
        }
        Box::new(TraceMembers::new(ids.iter().copied(), self))
    }
}

/// Every record of a set of traces, as trace lookups count them: the records carrying one of the
/// full ids, the records known only by the low 64 bits of one of them (their indexed id is
/// padded: its high half is zero), and, for an id whose high half is zero (itself known only by
/// its low bits), every record with those low bits.
///
/// `trace_id` has no inverted index (its terms, random 32-hex strings, were 40% of the term
/// dictionary's bytes and the costliest part of building it at flush): the candidates come from the
/// `trace_low64` postings, and each candidate's full id is read from the `trace_id` column (one
/// sorted pass over the segment's dictionary), so two traces whose ids share their low 64 bits
/// stay apart.
#[derive(Debug, Clone)]
pub(crate) struct TraceMembers {
    ids: Arc<HashSet<u128>>,
    /// Low halves of the ids whose high half is zero: any record with them belongs.
    partial_lows: Arc<HashSet<u64>>,
    trace_low64: Field,
}

impl TraceMembers {
    pub(crate) fn new(ids: impl IntoIterator<Item = u128>, fields: LinkFields) -> TraceMembers {
        let ids: HashSet<u128> = ids.into_iter().collect();
        let partial_lows = ids
            .iter()
            .filter(|&&id| id >> 64 == 0)
            .map(|&id| id as u64)
            .collect();
        TraceMembers {
            ids: Arc::new(ids),
            partial_lows: Arc::new(partial_lows),
            trace_low64: fields.trace_low64,
        }
    }

    /// Whether a record whose `trace_id` column holds `id` belongs (its low half is one of
    /// the set's: it was a candidate).
    fn keeps(&self, id: u128) -> bool {
        id >> 64 == 0 || self.ids.contains(&id) || self.partial_lows.contains(&(id as u64))
    }
}

impl Query for TraceMembers {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let lows: HashSet<u64> = self.ids.iter().map(|&id| id as u64).collect();
        let candidates = TermSetQuery::new(
            lows.into_iter()
                .map(|low| Term::from_field_u64(self.trace_low64, low)),
        )
        .weight(scoring)?;
        Ok(Box::new(TraceMembersWeight {
            members: self.clone(),
            candidates,
        }))
    }
}

struct TraceMembersWeight {
    members: TraceMembers,
    candidates: Box<dyn Weight>,
}

impl TraceMembersWeight {
    fn matching(&self, reader: &SegmentReader) -> tantivy::Result<BitSet> {
        let mut set = BitSet::with_max_value(reader.max_doc());
        let Some(column) = str_column(reader, names::TRACE_ID)? else {
            return Ok(set);
        };
        let mut candidates = self.candidates.scorer(reader, 1.0)?;
        let mut docs: Vec<(DocId, u64)> = Vec::new();
        let mut doc = candidates.doc();
        while doc != tantivy::TERMINATED {
            if let Some(ord) = column.term_ords(doc).next() {
                docs.push((doc, ord));
            }
            doc = candidates.advance();
        }
        let ids = trace_ids_of_ords(&column, docs.iter().map(|&(_, ord)| ord).collect());
        for (doc, ord) in docs {
            if ids.get(&ord).is_some_and(|&id| self.members.keeps(id)) {
                set.insert(doc);
            }
        }
        Ok(set)
    }
}

impl Weight for TraceMembersWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let set = self.matching(reader)?;
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(set), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        if !self.matching(reader)?.contains(doc) {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("a record of one of the traces", 1.0))
    }
}

/// A refusal the caller can act on (the index crate answers it as a bad request).
fn too_many(message: String) -> TantivyError {
    TantivyError::InvalidArgument(message)
}

fn no_searcher() -> TantivyError {
    TantivyError::InvalidArgument(
        "trace(...) and '>' need a searcher to run against (not a bare schema)".into(),
    )
}

/// `trace(Q)`: every record of a trace that has a record matching `Q`.
#[derive(Debug)]
pub(crate) struct TraceOf {
    inner: Box<dyn Query>,
    fields: LinkFields,
}

impl TraceOf {
    pub(crate) fn new(inner: Box<dyn Query>, fields: LinkFields) -> TraceOf {
        TraceOf { inner, fields }
    }
}

impl Query for TraceOf {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let searcher = scoring.searcher().ok_or_else(no_searcher)?;
        let ids = searcher.search(
            &*self.inner,
            &Distinct {
                with_span: false,
                cap: MAX_TRACE_SET,
                refusal: trace_set_too_large,
            },
        )?;
        let ids = ids.into_iter().map(|(id, _)| id).collect();
        self.fields.members_of(&ids).weight(scoring)
    }
}

impl Clone for TraceOf {
    fn clone(&self) -> Self {
        TraceOf {
            inner: self.inner.box_clone(),
            fields: self.fields,
        }
    }
}

/// `A > B`: the spans matching B whose parent span matches A.
#[derive(Debug)]
pub(crate) struct ChildOf {
    parent: Box<dyn Query>,
    child: Box<dyn Query>,
    fields: LinkFields,
}

impl ChildOf {
    pub(crate) fn new(
        parent: Box<dyn Query>,
        child: Box<dyn Query>,
        fields: LinkFields,
    ) -> ChildOf {
        ChildOf {
            parent,
            child,
            fields,
        }
    }
}

impl Clone for ChildOf {
    fn clone(&self) -> Self {
        ChildOf {
            parent: self.parent.box_clone(),
            child: self.child.box_clone(),
            fields: self.fields,
        }
    }
}

impl Query for ChildOf {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let searcher = scoring.searcher().ok_or_else(no_searcher)?;
        let parents: HashSet<Pair> = searcher.search(
            &self.fields.spans_of(&*self.parent),
            &Distinct {
                with_span: true,
                cap: MAX_PARENT_SPANS,
                refusal: parents_too_many,
            },
        )?;
        if parents.is_empty() {
            return Ok(Box::new(DocListWeight::default()));
        }
        let docs = searcher.search(
            &self.fields.spans_of(&*self.child),
            &ChildrenOf {
                parents: Arc::new(parents),
            },
        )?;
        Ok(Box::new(DocListWeight {
            docs: docs.into_iter().collect(),
        }))
    }
}

/// The matching documents of each segment, sorted.
#[derive(Default)]
struct DocListWeight {
    docs: HashMap<SegmentId, Vec<DocId>>,
}

impl Weight for DocListWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut set = BitSet::with_max_value(reader.max_doc());
        for &doc in self.docs.get(&reader.segment_id()).into_iter().flatten() {
            set.insert(doc);
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(set), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let matched = self
            .docs
            .get(&reader.segment_id())
            .is_some_and(|docs| docs.binary_search(&doc).is_ok());
        if !matched {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("a span whose parent matches", 1.0))
    }
}

fn str_column(reader: &SegmentReader, name: &str) -> tantivy::Result<Option<StrColumn>> {
    reader.fast_fields().str(name)
}

fn u64_column(reader: &SegmentReader, name: &str) -> tantivy::Result<Option<Column<u64>>> {
    reader.fast_fields().column_opt(name)
}

fn first_ord(column: Option<&StrColumn>, doc: DocId) -> Option<u64> {
    column.and_then(|c| c.term_ords(doc).next())
}

/// The distinct traces (with `with_span`, the distinct (trace, span id) pairs; else the span is
/// 0) of the matching records that have them, at most `cap` (beyond it, `refusal` is the
/// error).
struct Distinct {
    with_span: bool,
    cap: usize,
    refusal: fn() -> TantivyError,
}

struct DistinctSegment {
    trace_id: Option<StrColumn>,
    span_id: Option<Column<u64>>,
    with_span: bool,
    /// (trace ordinal, span id).
    keys: HashSet<(u64, u64)>,
    cap: usize,
    refusal: fn() -> TantivyError,
}

impl Collector for Distinct {
    type Fruit = HashSet<Pair>;
    type Child = DistinctSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(DistinctSegment {
            trace_id: str_column(reader, names::TRACE_ID)?,
            span_id: u64_column(reader, names::SPAN_ID)?,
            with_span: self.with_span,
            keys: HashSet::new(),
            cap: self.cap,
            refusal: self.refusal,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<tantivy::Result<Self::Fruit>>,
    ) -> tantivy::Result<Self::Fruit> {
        let mut all = HashSet::new();
        for fruit in fruits {
            all.extend(fruit?);
            if all.len() > self.cap {
                return Err((self.refusal)());
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for DistinctSegment {
    type Fruit = tantivy::Result<HashSet<Pair>>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.keys.len() > self.cap {
            return;
        }
        let Some(trace) = first_ord(self.trace_id.as_ref(), doc) else {
            return;
        };
        let span = if self.with_span {
            match self.span_id.as_ref().and_then(|c| c.first(doc)) {
                Some(span) => span,
                None => return,
            }
        } else {
            0
        };
        self.keys.insert((trace, span));
    }

    fn harvest(self) -> Self::Fruit {
        if self.keys.len() > self.cap {
            return Err((self.refusal)());
        }
        let Some(column) = &self.trace_id else {
            return Ok(HashSet::new());
        };
        let trace_of = trace_ids_of_ords(column, self.keys.iter().map(|k| k.0).collect());
        Ok(self
            .keys
            .iter()
            .filter_map(|&(ord, span)| Some((*trace_of.get(&ord)?, span)))
            .collect())
    }
}

fn trace_set_too_large() -> TantivyError {
    too_many(format!(
        "trace(...) matched more than {MAX_TRACE_SET} traces: narrow what is inside it or the time range"
    ))
}

fn parents_too_many() -> TantivyError {
    too_many(format!(
        "the left side of '>' matched more than {MAX_PARENT_SPANS} spans: narrow it or the time range"
    ))
}

/// A span's place: its trace id and the span id (or the parent span id).
type Pair = (u128, u64);

/// The matching spans whose (trace id, parent span id) is one of `parents`, by segment.
struct ChildrenOf {
    parents: Arc<HashSet<Pair>>,
}

struct ChildrenSegment {
    segment: SegmentId,
    parents: Arc<HashSet<Pair>>,
    trace_id: Option<StrColumn>,
    parent: Option<Column<u64>>,
    /// (doc, trace ordinal, parent span id) of each candidate.
    candidates: Vec<(DocId, u64, u64)>,
}

fn children_too_many() -> TantivyError {
    too_many(format!(
        "the right side of '>' matched more than {MAX_CHILD_CANDIDATES} spans: narrow it or the time range"
    ))
}

impl Collector for ChildrenOf {
    type Fruit = Vec<(SegmentId, Vec<DocId>)>;
    type Child = ChildrenSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(ChildrenSegment {
            segment: reader.segment_id(),
            parents: Arc::clone(&self.parents),
            trace_id: str_column(reader, names::TRACE_ID)?,
            parent: u64_column(reader, names::PARENT_SPAN_ID)?,
            candidates: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<tantivy::Result<(SegmentId, Vec<DocId>)>>,
    ) -> tantivy::Result<Self::Fruit> {
        fruits.into_iter().collect()
    }
}

impl SegmentCollector for ChildrenSegment {
    type Fruit = tantivy::Result<(SegmentId, Vec<DocId>)>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.candidates.len() > MAX_CHILD_CANDIDATES {
            return;
        }
        if let (Some(trace), Some(parent)) = (
            first_ord(self.trace_id.as_ref(), doc),
            self.parent.as_ref().and_then(|c| c.first(doc)),
        ) {
            self.candidates.push((doc, trace, parent));
        }
    }

    fn harvest(self) -> Self::Fruit {
        if self.candidates.len() > MAX_CHILD_CANDIDATES {
            return Err(children_too_many());
        }
        let Some(traces) = &self.trace_id else {
            return Ok((self.segment, Vec::new()));
        };
        let trace_ords = self.candidates.iter().map(|&(_, t, _)| t).collect();
        let trace_of = trace_ids_of_ords(traces, trace_ords);
        // Collected in document order, so the kept documents are sorted.
        let docs = self
            .candidates
            .iter()
            .filter(|&&(_, t, parent)| {
                trace_of
                    .get(&t)
                    .is_some_and(|&trace| self.parents.contains(&(trace, parent)))
            })
            .map(|&(doc, _, _)| doc)
            .collect();
        Ok((self.segment, docs))
    }
}
