//! Records per aggregation bucket when a dimension is an attribute: attributes have no fast
//! columns for tantivy's aggregations to read, so this collector reads the columns
//! `json_terms` builds from their terms (and any built-in dimension's fast field). Counts,
//! duration stats and percentiles (the same DDSketch tantivy's percentiles use) per bucket.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use sketches_ddsketch::{Config, DDSketch};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, DynamicColumn};
use tantivy::index::InvertedIndexReader;
use tantivy::schema::Field;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::agg_traces::{
    BucketKey, KeyFormat, MAX_TRACE_PAIRS, float_text, strs_of_ords, time_bucket_ms,
};
use crate::schema::names;

/// Records per value of one keyword without a fast column (`status`, `kind`, `span_kind`,
/// `source`), counts only: per segment the matching documents, then each value's postings met
/// with them. Answers as [`RecordBuckets`] would, without building the column (60–80 ms on a
/// million records, paid by every CLI command).
pub(crate) struct KeywordCounts(pub Field);

pub(crate) struct KeywordCountsSegment {
    inverted: Arc<InvertedIndexReader>,
    /// The matching documents, ascending.
    matches: Vec<DocId>,
}

/// Per value, its records; or what went wrong reading the postings.
type ValueCounts = Result<Vec<(String, u64)>, String>;

impl Collector for KeywordCounts {
    type Fruit = ValueCounts;
    type Child = KeywordCountsSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<KeywordCountsSegment> {
        Ok(KeywordCountsSegment {
            inverted: reader.inverted_index(self.0)?,
            matches: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<ValueCounts>) -> tantivy::Result<ValueCounts> {
        let mut merged: HashMap<String, u64> = HashMap::new();
        for fruit in fruits {
            for (value, n) in fruit.map_err(tantivy::TantivyError::InternalError)? {
                *merged.entry(value).or_default() += n;
            }
        }
        Ok(Ok(merged.into_iter().collect()))
    }
}

impl SegmentCollector for KeywordCountsSegment {
    type Fruit = ValueCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.matches.push(doc);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.matches.extend_from_slice(docs);
    }

    fn harvest(self) -> ValueCounts {
        if self.matches.is_empty() {
            return Ok(Vec::new());
        }
        crate::json_terms::count_keyword_values(&self.inverted, &self.matches)
            .map_err(|e| format!("reading postings: {e}"))
    }
}

/// What the collector groups by, and what it computes per bucket.
#[derive(Debug, Clone)]
pub(crate) struct RecordBuckets {
    pub dims: Vec<(String, KeyFormat)>,
    pub interval_ms: Option<i64>,
    /// Whether to keep duration stats per bucket.
    pub durations: bool,
    /// Whether to keep a duration sketch per bucket, for percentiles.
    pub percentiles: bool,
    /// With one dimension and no interval, the values per segment that are kept, those with
    /// the most records (tantivy's terms aggregation's `segment_size`): only they are turned
    /// into text.
    pub segment_size: usize,
}

/// A bucket's records and their durations.
#[derive(Clone)]
pub(crate) struct Acc {
    pub count: u64,
    /// Records with a duration (spans), and their min, max and sum.
    pub timed: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    /// Boxed: a sketch is large, and buckets move as their map grows.
    pub sketch: Option<Box<DDSketch>>,
}

impl Acc {
    fn new(percentiles: bool) -> Acc {
        Acc {
            count: 0,
            timed: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            sketch: percentiles.then(|| Box::new(DDSketch::new(Config::defaults()))),
        }
    }

    fn add(&mut self, duration: Option<f64>) {
        self.count += 1;
        if let Some(d) = duration {
            self.timed += 1;
            self.min = self.min.min(d);
            self.max = self.max.max(d);
            self.sum += d;
            if let Some(sketch) = &mut self.sketch {
                sketch.add(d);
            }
        }
    }

    fn merge(&mut self, other: Acc) {
        self.count += other.count;
        self.timed += other.timed;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        if let (Some(into), Some(from)) = (&mut self.sketch, &other.sketch) {
            // Sketches of one config always merge.
            let _ = into.merge(from);
        }
    }
}

#[derive(Default)]
pub(crate) struct RecordCounts {
    pub buckets: FxHashMap<BucketKey, Acc>,
    /// More than [`MAX_TRACE_PAIRS`] buckets: the counts are incomplete.
    pub overflow: bool,
}

/// A value as the segment's column holds it: the dimension's column and the raw value (a text
/// column's term ordinal, a number's bits).
type Raw = (u8, u64);

/// The raw value of a dimension the request does not have.
const NO_RAW: Raw = (u8::MAX, 0);

pub(crate) struct RecordBucketsSegment {
    /// Read only with an interval.
    timestamp: Option<Column<DateTime>>,
    /// Read only for duration stats.
    duration: Option<Column<i64>>,
    dims: Vec<(Vec<DynamicColumn>, KeyFormat)>,
    interval_ms: Option<i64>,
    percentiles: bool,
    /// By each dimension's raw value (at most two dimensions; an absent one is `NO_RAW`).
    buckets: FxHashMap<([Raw; 2], Option<i64>), Acc>,
    /// One dimension of text, no interval (a group-by's usual shape): per column, the
    /// buckets by term ordinal, as tantivy's terms aggregation counts.
    /// (Per column, each ordinal's index in `ord_accs`, or `u32::MAX`: four bytes an
    /// ordinal, so that a column of many values stays in cache.)
    by_ord: Option<Vec<Vec<u32>>>,
    ord_accs: Vec<(Raw, Acc)>,
    /// With `by_ord` and neither durations nor an interval: the first column's records per
    /// ordinal, counted straight from a block's ordinals (folded into `ord_accs` at harvest).
    ord_counts: Option<Vec<u64>>,
    /// The ordinals of the one dimension when it is a single-valued text column: read a block
    /// at a time.
    block_ords: Option<Column<u64>>,
    /// A block's documents that have a value, their rows in the column and their term
    /// ordinals (reused).
    doc_buf: Vec<DocId>,
    row_buf: Vec<u32>,
    ord_buf: Vec<u64>,
    segment_size: usize,
    overflow: bool,
    /// Per dimension, the document's values (reused).
    values: Vec<Vec<Raw>>,
}

impl Collector for RecordBuckets {
    type Fruit = RecordCounts;
    type Child = RecordBucketsSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<RecordBucketsSegment> {
        if self.dims.len() > 2 {
            return Err(tantivy::TantivyError::InvalidArgument(
                "at most two fields in `by`".into(),
            ));
        }
        let fast = reader.fast_fields();
        let mut dims = Vec::with_capacity(self.dims.len());
        for (path, format) in &self.dims {
            dims.push((crate::json_terms::columns(reader, path)?, *format));
        }
        let by_ord: Option<Vec<Vec<u32>>> =
            (dims.len() == 1 && self.interval_ms.is_none()).then(|| {
                dims[0]
                    .0
                    .iter()
                    .map(|column| match column {
                        DynamicColumn::Str(c) => vec![u32::MAX; c.num_terms()],
                        _ => Vec::new(),
                    })
                    .collect()
            });
        let block_ords = match &dims[..] {
            [(columns, _)] => match &columns[..] {
                [DynamicColumn::Str(c)]
                    if c.ords().get_cardinality()
                        != tantivy::columnar::Cardinality::Multivalued =>
                {
                    Some(c.ords().clone())
                }
                _ => None,
            },
            _ => None,
        };
        let counts_only = !(self.durations || self.percentiles);
        let ord_counts = match (&by_ord, counts_only) {
            (Some(slots), true) => slots.first().map(|first| vec![0; first.len()]),
            _ => None,
        };
        Ok(RecordBucketsSegment {
            ord_counts,
            block_ords,
            timestamp: match self.interval_ms {
                Some(_) => Some(fast.date(names::TIMESTAMP)?),
                None => None,
            },
            duration: if self.durations || self.percentiles {
                fast.i64(names::DURATION_NS).ok()
            } else {
                None
            },
            values: vec![Vec::new(); dims.len()],
            dims,
            interval_ms: self.interval_ms,
            percentiles: self.percentiles,
            buckets: FxHashMap::default(),
            by_ord,
            ord_accs: Vec::new(),
            doc_buf: Vec::new(),
            row_buf: Vec::new(),
            ord_buf: Vec::new(),
            segment_size: self.segment_size,
            overflow: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RecordCounts>) -> tantivy::Result<RecordCounts> {
        let mut merged = RecordCounts::default();
        for fruit in fruits {
            merged.overflow |= fruit.overflow;
            for (key, acc) in fruit.buckets {
                match merged.buckets.get_mut(&key) {
                    Some(into) => into.merge(acc),
                    None => {
                        merged.buckets.insert(key, acc);
                    }
                }
            }
        }
        Ok(merged)
    }
}

impl RecordBucketsSegment {
    /// Counts `n` records (of `duration`, if known) in the bucket of a text value's ordinal
    /// (one dimension, no interval). False when `raw` is not a text column's ordinal: such
    /// values go to [`Self::add`].
    fn add_by_ord(&mut self, (col, ord): Raw, n: u64, duration: Option<f64>) -> bool {
        let Some(by_ord) = &mut self.by_ord else {
            return false;
        };
        let slots = &mut by_ord[usize::from(col)];
        if slots.is_empty() {
            return false;
        }
        // An ordinal past the column's terms cannot happen; it is not counted.
        if let Some(slot) = slots.get_mut(ord as usize) {
            if *slot == u32::MAX {
                *slot = self.ord_accs.len() as u32;
                self.ord_accs.push(((col, ord), Acc::new(self.percentiles)));
            }
            let acc = &mut self.ord_accs[*slot as usize].1;
            match duration {
                None => acc.count += n,
                Some(_) => (0..n).for_each(|_| acc.add(duration)),
            }
        }
        true
    }

    /// Counts a record (of `duration`, if known) in the bucket `key`.
    fn add(&mut self, key: ([Raw; 2], Option<i64>), duration: Option<f64>) {
        let full = self.buckets.len() >= MAX_TRACE_PAIRS;
        match self.buckets.get_mut(&key) {
            Some(acc) => acc.add(duration),
            None if full => self.overflow = true,
            None => {
                let mut acc = Acc::new(self.percentiles);
                acc.add(duration);
                self.buckets.insert(key, acc);
            }
        }
    }
}

impl SegmentCollector for RecordBucketsSegment {
    type Fruit = RecordCounts;

    /// A block of documents at once when the one dimension is a single-valued text column:
    /// its ordinals (and the times and durations asked for) are read in one batch each, as
    /// tantivy's aggregations read them.
    fn collect_block(&mut self, docs: &[DocId]) {
        let Some(ords) = &self.block_ords else {
            for &doc in docs {
                self.collect(doc, 0.0);
            }
            return;
        };
        // The block's documents that have a value and their ordinals, in two batch reads
        // (as tantivy's aggregations read a column), then their times and durations.
        self.doc_buf.clear();
        self.row_buf.clear();
        ords.index
            .docids_to_rowids(docs, &mut self.doc_buf, &mut self.row_buf);
        let n = self.doc_buf.len();
        self.ord_buf.clear();
        self.ord_buf.resize(n, 0);
        ords.values.get_vals(&self.row_buf, &mut self.ord_buf);
        if let Some(counts) = &mut self.ord_counts {
            for &ord in &self.ord_buf {
                // An ordinal past the column's terms cannot happen; it is not counted.
                if let Some(count) = counts.get_mut(ord as usize) {
                    *count += 1;
                }
            }
            return;
        }
        let mut times = [None; tantivy::COLLECT_BLOCK_BUFFER_LEN];
        let mut durations = [None; tantivy::COLLECT_BLOCK_BUFFER_LEN];
        let batched = n <= tantivy::COLLECT_BLOCK_BUFFER_LEN;
        if let (Some(column), true) = (&self.timestamp, batched) {
            column.first_vals(&self.doc_buf, &mut times[..n]);
        }
        if let (Some(column), true) = (&self.duration, batched) {
            column.first_vals(&self.doc_buf, &mut durations[..n]);
        }
        for i in 0..n {
            let (ord, doc) = (self.ord_buf[i], self.doc_buf[i]);
            let (time, duration) = if batched {
                (times[i], durations[i])
            } else {
                (
                    self.timestamp.as_ref().and_then(|c| c.first(doc)),
                    self.duration.as_ref().and_then(|c| c.first(doc)),
                )
            };
            let duration = duration.map(|d| d as f64);
            if self.add_by_ord((0, ord), 1, duration) {
                continue;
            }
            let time = self
                .interval_ms
                .map(|interval| time_bucket_ms(time, interval));
            let mut key = [NO_RAW; 2];
            key[0] = (0, ord);
            self.add((key, time), duration);
        }
    }

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (values, (columns, _)) in self.values.iter_mut().zip(&self.dims) {
            values.clear();
            raw_values(columns, doc, values);
            if values.is_empty() {
                return;
            }
        }
        let time = self.interval_ms.map(|interval| {
            time_bucket_ms(self.timestamp.as_ref().and_then(|c| c.first(doc)), interval)
        });
        let duration = self
            .duration
            .as_ref()
            .and_then(|c| c.first(doc))
            .map(|d| d as f64);
        if self.by_ord.is_some() {
            // Text values by ordinal; numbers (and booleans) go to the map below.
            let mut values = std::mem::take(&mut self.values[0]);
            values.retain(|&raw| !self.add_by_ord(raw, 1, duration));
            self.values[0] = values;
            if self.values[0].is_empty() {
                return;
            }
        }
        // The cartesian product of each dimension's values: a multi-valued attribute counts
        // in each of its values' buckets.
        let mut at = [0usize; 2];
        let at = &mut at[..self.values.len()];
        loop {
            let mut key = [NO_RAW; 2];
            for ((slot, &i), values) in key.iter_mut().zip(at.iter()).zip(&self.values) {
                *slot = values[i];
            }
            self.add((key, time), duration);
            // The next combination, the last dimension fastest.
            let mut d = at.len();
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                at[d] += 1;
                if at[d] < self.values[d].len() {
                    break;
                }
                at[d] = 0;
            }
        }
    }

    fn harvest(mut self) -> RecordCounts {
        if let Some(counts) = self.ord_counts.take() {
            // Through the slot table, which records that came one at a time went to.
            for (ord, count) in (0u64..).zip(counts) {
                if count > 0 {
                    self.add_by_ord((0, ord), count, None);
                }
            }
        }
        if self.by_ord.take().is_some() {
            let mut found = std::mem::take(&mut self.ord_accs);
            found.extend(self.buckets.drain().map(|((key, _), acc)| (key[0], acc)));
            let keep = self.segment_size.max(1);
            if found.len() > keep {
                found.select_nth_unstable_by(keep - 1, |a, b| b.1.count.cmp(&a.1.count));
                found.truncate(keep);
            }
            for (raw, acc) in found {
                let mut key = [NO_RAW; 2];
                key[0] = raw;
                self.buckets.insert((key, None), acc);
            }
        }
        // Raw values to text: a text column's ordinals in one sorted pass over its dictionary.
        let texts: Vec<Vec<HashMap<u64, String>>> = self
            .dims
            .iter()
            .enumerate()
            .map(|(d, (columns, _))| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(c, column)| match column {
                        DynamicColumn::Str(column) => strs_of_ords(
                            column,
                            self.buckets
                                .keys()
                                .map(|(key, _)| key[d])
                                .filter(|&(col, _)| usize::from(col) == c)
                                .map(|(_, ord)| ord),
                        ),
                        _ => HashMap::new(),
                    })
                    .collect()
            })
            .collect();
        let mut out = RecordCounts {
            buckets: FxHashMap::with_capacity_and_hasher(self.buckets.len(), Default::default()),
            overflow: self.overflow,
        };
        for ((raws, time), acc) in self.buckets {
            let mut key = Vec::with_capacity(raws.len());
            for (d, (columns, format)) in self.dims.iter().enumerate() {
                let (col, raw) = raws[d];
                let text = match &columns[usize::from(col)] {
                    DynamicColumn::Str(_) => texts[d][usize::from(col)]
                        .get(&raw)
                        .cloned()
                        .unwrap_or_default(),
                    DynamicColumn::I64(_) => (raw as i64).to_string(),
                    DynamicColumn::U64(_) => format.text(raw.to_string()),
                    DynamicColumn::F64(_) => float_text(f64::from_bits(raw)),
                    DynamicColumn::Bool(_) => (raw != 0).to_string(),
                    DynamicColumn::DateTime(_) => decode::time::format_rfc3339_ns(raw as i64),
                    DynamicColumn::IpAddr(_) | DynamicColumn::Bytes(_) => String::new(),
                };
                key.push(text);
            }
            match out.buckets.get_mut(&(key.clone(), time)) {
                Some(into) => into.merge(acc),
                None => {
                    out.buckets.insert((key, time), acc);
                }
            }
        }
        out
    }
}

/// A document's distinct values of one dimension, raw.
fn raw_values(columns: &[DynamicColumn], doc: DocId, out: &mut Vec<Raw>) {
    let mut push = |raw: Raw| {
        if !out.contains(&raw) {
            out.push(raw);
        }
    };
    for (c, column) in columns.iter().enumerate() {
        let c = c as u8;
        match column {
            DynamicColumn::Str(col) => col.term_ords(doc).for_each(|ord| push((c, ord))),
            DynamicColumn::I64(col) => col.values_for_doc(doc).for_each(|v| push((c, v as u64))),
            DynamicColumn::U64(col) => col.values_for_doc(doc).for_each(|v| push((c, v))),
            DynamicColumn::F64(col) => col.values_for_doc(doc).for_each(|v| {
                // One raw value per text: 0 and -0 are both "0".
                let v = if v == 0.0 { 0.0 } else { v };
                push((c, v.to_bits()));
            }),
            DynamicColumn::Bool(col) => {
                col.values_for_doc(doc)
                    .for_each(|v| push((c, u64::from(v))));
            }
            DynamicColumn::DateTime(col) => col
                .values_for_doc(doc)
                .for_each(|v| push((c, v.into_timestamp_nanos() as u64))),
            DynamicColumn::IpAddr(_) | DynamicColumn::Bytes(_) => {}
        }
    }
}
