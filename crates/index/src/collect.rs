//! Custom collectors over fast fields: every match of a trace in time order, and the newest N
//! matches after a cursor. Neither needs scores nor loads stored documents.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::segment_cache::SegmentCache;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DateTime, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::schema::names;

/// One matching document with its sort key: (timestamp, seq) is unique per document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Match {
    pub ts: i64,
    pub seq: u64,
    pub addr: DocAddress,
    pub is_span: bool,
}

/// The columns every collector here reads.
pub(crate) struct SortColumns {
    segment: SegmentOrdinal,
    timestamp: Column<DateTime>,
    seq: Column<u64>,
    is_span: IsSpan,
}

/// Per segment, the columns a trace lookup reads, opened once and kept: opening a column reads
/// its block index, a cost per segment that every lookup would otherwise pay again, and that
/// grows with the index (docs/BENCHMARKS.md, issue 13).
#[derive(Default)]
pub(crate) struct OpenedColumns {
    segments: SegmentCache<SegmentColumns>,
}

/// One segment's opened columns.
pub(crate) struct SegmentColumns {
    timestamp: Column<DateTime>,
    seq: Column<u64>,
    pub duration: Column<i64>,
    pub span_id: Option<Column<u64>>,
    pub parent_span_id: Option<Column<u64>>,
}

impl OpenedColumns {
    /// The segment's columns, opened on first use. Segments not in the searcher the last
    /// [`OpenedColumns::retain`] saw are forgotten there.
    pub(crate) fn of(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentColumns>> {
        self.segments.get_or_build(reader, |reader| {
            let fast = reader.fast_fields();
            Ok(SegmentColumns {
                timestamp: fast.date(names::TIMESTAMP)?,
                seq: fast.u64(names::SEQ)?,
                duration: fast.i64(names::DURATION_NS)?,
                span_id: fast.column_opt(names::SPAN_ID)?,
                parent_span_id: fast.column_opt(names::PARENT_SPAN_ID)?,
            })
        })
    }

    /// Segments held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.segments.len()
    }

    /// Forgets the segments that are not in `searcher` (merged away or deleted).
    pub(crate) fn retain(&self, searcher: &tantivy::Searcher) {
        self.segments.retain(searcher);
    }
}

/// Tells spans from logs per document without reading the doc store: spans, and only spans,
/// have a `duration_ns` (`doc::RecordDoc`; `kind` has no column).
#[derive(Clone)]
pub(crate) struct IsSpan(Column<i64>);

impl IsSpan {
    pub(crate) fn open(reader: &SegmentReader) -> tantivy::Result<IsSpan> {
        Ok(IsSpan(reader.fast_fields().i64(names::DURATION_NS)?))
    }

    pub(crate) fn get(&self, doc: DocId) -> bool {
        self.0.index.has_value(doc)
    }
}

impl SortColumns {
    pub(crate) fn open(
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SortColumns> {
        let fast = reader.fast_fields();
        Ok(SortColumns {
            segment,
            timestamp: fast.date(names::TIMESTAMP)?,
            seq: fast.u64(names::SEQ)?,
            is_span: IsSpan::open(reader)?,
        })
    }

    /// The columns kept in `opened`.
    pub(crate) fn kept(
        segment: SegmentOrdinal,
        reader: &SegmentReader,
        opened: &OpenedColumns,
    ) -> tantivy::Result<SortColumns> {
        let columns = opened.of(reader)?;
        Ok(SortColumns {
            segment,
            timestamp: columns.timestamp.clone(),
            seq: columns.seq.clone(),
            is_span: IsSpan(columns.duration.clone()),
        })
    }

    pub(crate) fn get(&self, doc: DocId) -> Match {
        let ts = self
            .timestamp
            .first(doc)
            .map_or(0, DateTime::into_timestamp_nanos);
        Match {
            ts,
            seq: self.seq.first(doc).unwrap_or(0),
            addr: DocAddress::new(self.segment, doc),
            is_span: self.is_span.get(doc),
        }
    }
}

/// Every match, sorted by (timestamp, seq) ascending. No cap: a trace comes back whole.
pub(crate) struct AllMatches<'a> {
    pub columns: &'a OpenedColumns,
}

pub(crate) struct AllMatchesSegment {
    columns: SortColumns,
    matches: Vec<Match>,
}

impl Collector for AllMatches<'_> {
    type Fruit = Vec<Match>;
    type Child = AllMatchesSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<AllMatchesSegment> {
        Ok(AllMatchesSegment {
            columns: SortColumns::kept(segment, reader, self.columns)?,
            matches: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Match>>) -> tantivy::Result<Vec<Match>> {
        let mut all: Vec<Match> = fruits.into_iter().flatten().collect();
        all.sort_unstable();
        Ok(all)
    }
}

impl SegmentCollector for AllMatchesSegment {
    type Fruit = Vec<Match>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.matches.push(self.columns.get(doc));
    }

    fn harvest(self) -> Vec<Match> {
        self.matches
    }
}

/// The newest `limit` matches strictly before `before` (a cursor), newest first, plus the number
/// of all matches and of those before the cursor.
#[derive(Debug)]
pub(crate) struct NewestFirst {
    pub limit: usize,
    pub before: Option<(i64, u64)>,
}

#[derive(Debug, Default)]
pub(crate) struct NewestFruit {
    /// Every match of the query (ignoring the cursor).
    pub total: u64,
    /// Matches older than the cursor (all of them without a cursor).
    pub n_after_cursor: u64,
    /// Newest first, at most `limit`.
    pub hits: Vec<Match>,
}

pub(crate) struct NewestFirstSegment {
    columns: SortColumns,
    limit: usize,
    before: Option<(i64, u64)>,
    fruit: NewestFruit,
    /// A min-heap of the newest matches seen so far.
    heap: BinaryHeap<Reverse<Match>>,
}

impl Collector for NewestFirst {
    type Fruit = NewestFruit;
    type Child = NewestFirstSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<NewestFirstSegment> {
        Ok(NewestFirstSegment {
            columns: SortColumns::open(segment, reader)?,
            limit: self.limit,
            before: self.before,
            fruit: NewestFruit::default(),
            heap: BinaryHeap::with_capacity(self.limit.min(10_000) + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<NewestFruit>) -> tantivy::Result<NewestFruit> {
        let mut merged = NewestFruit::default();
        for fruit in fruits {
            merged.total += fruit.total;
            merged.n_after_cursor += fruit.n_after_cursor;
            merged.hits.extend(fruit.hits);
        }
        merged.hits.sort_unstable_by(|a, b| b.cmp(a));
        merged.hits.truncate(self.limit);
        Ok(merged)
    }
}

impl SegmentCollector for NewestFirstSegment {
    type Fruit = NewestFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.fruit.total += 1;
        let m = self.columns.get(doc);
        if let Some(before) = self.before
            && (m.ts, m.seq) >= before
        {
            return;
        }
        self.fruit.n_after_cursor += 1;
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(m));
        } else if let Some(Reverse(oldest)) = self.heap.peek()
            && m > *oldest
        {
            self.heap.pop();
            self.heap.push(Reverse(m));
        }
    }

    fn harvest(mut self) -> NewestFruit {
        self.fruit.hits = self.heap.into_iter().map(|Reverse(m)| m).collect();
        self.fruit
    }
}
