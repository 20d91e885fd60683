//! Records in arrival order: every record gets a sequence number from the writer when it is
//! indexed (`seq`, unique and increasing across restarts), so "what was committed after this
//! point" is a range over `seq`, whatever the records' own timestamps say. The live tail follows
//! this order: a span exported after it ended, or a late log line, is still "new".

use std::collections::BinaryHeap;
use std::ops::Bound;

use serde_json::Value;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{BooleanQuery, Query, RangeQuery};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader, Term};

use crate::Index;
use crate::collect::{Match, SortColumns};
use crate::error::{Context as _, Result};
use crate::schema::names;
use crate::search::hit_json;
use crate::trace::RecordLoader;

/// Records that arrived after a point, oldest arrival first.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    /// `(seq, hit)` in arrival order; each hit has the shape of a search hit.
    pub hits: Vec<(u64, Value)>,
    /// Matches after the point that did not fit in `limit` (they come with the next call).
    pub more: u64,
}

impl Index {
    /// The sequence number of the newest record committed so far (`None` for an empty index):
    /// a live stream that opens now follows what arrives after it.
    pub fn last_seq(&self) -> Result<Option<u64>> {
        let searcher = self.searcher();
        let mut last = None;
        for segment in searcher.segment_readers() {
            if segment.num_docs() == 0 {
                continue;
            }
            let column = segment
                .fast_fields()
                .u64(names::SEQ)
                .context("reading the seq column")?;
            last = last.max(Some(column.max_value()));
        }
        Ok(last)
    }

    /// Records matching `query` whose sequence number is greater than `after_seq` (all of them
    /// without one), the `limit` earliest arrivals first.
    pub fn arrivals_compiled(
        &self,
        query: Box<dyn Query>,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Arrivals> {
        let fields = self.fields();
        let query: Box<dyn Query> = match after_seq {
            Some(after) => {
                let range = RangeQuery::new(
                    Bound::Excluded(Term::from_field_u64(fields.seq, after)),
                    Bound::Unbounded,
                );
                Box::new(BooleanQuery::intersection(vec![query, Box::new(range)]))
            }
            None => query,
        };
        let searcher = self.searcher();
        let fruit = searcher
            .search(&*query, &EarliestArrivals { limit })
            .context("searching for new arrivals")?;
        let mut hits = Vec::with_capacity(fruit.hits.len());
        let mut loader = RecordLoader::new(self, &searcher);
        for (seq, m) in &fruit.hits {
            let record = loader.load(m)?;
            hits.push((*seq, hit_json(record, m.is_span)));
        }
        crate::search::resolve_partial_ids(&searcher, fields, hits.iter_mut().map(|(_, hit)| hit))?;
        let more = fruit.total.saturating_sub(hits.len() as u64);
        Ok(Arrivals { hits, more })
    }
}

/// The `limit` matches with the smallest `seq`, ascending, and the number of all matches.
struct EarliestArrivals {
    limit: usize,
}

#[derive(Default)]
struct ArrivalsFruit {
    total: u64,
    hits: Vec<(u64, Match)>,
}

struct EarliestArrivalsSegment {
    columns: SortColumns,
    limit: usize,
    total: u64,
    /// A max-heap (by seq) of the earliest arrivals seen so far.
    heap: BinaryHeap<(u64, Match)>,
}

impl Collector for EarliestArrivals {
    type Fruit = ArrivalsFruit;
    type Child = EarliestArrivalsSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<EarliestArrivalsSegment> {
        Ok(EarliestArrivalsSegment {
            columns: SortColumns::open(segment, reader)?,
            limit: self.limit,
            total: 0,
            heap: BinaryHeap::with_capacity(self.limit.min(10_000) + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<ArrivalsFruit>) -> tantivy::Result<ArrivalsFruit> {
        let mut merged = ArrivalsFruit::default();
        for fruit in fruits {
            merged.total += fruit.total;
            merged.hits.extend(fruit.hits);
        }
        merged.hits.sort_unstable();
        merged.hits.truncate(self.limit);
        Ok(merged)
    }
}

impl SegmentCollector for EarliestArrivalsSegment {
    type Fruit = ArrivalsFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        if self.limit == 0 {
            return;
        }
        let m = self.columns.get(doc);
        let key = (m.seq, m);
        if self.heap.len() < self.limit {
            self.heap.push(key);
        } else if self.heap.peek().is_some_and(|latest| key < *latest) {
            self.heap.pop();
            self.heap.push(key);
        }
    }

    fn harvest(self) -> ArrivalsFruit {
        ArrivalsFruit {
            total: self.total,
            hits: self.heap.into_vec(),
        }
    }
}
