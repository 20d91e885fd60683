//! Records per aggregation bucket when a dimension is an attribute: attributes have no fast
//! columns for tantivy's aggregations to read, so this collector reads the columns
//! `json_terms` builds from their terms (and any built-in dimension's fast field). Counts,
//! duration stats and percentiles (the same DDSketch tantivy's percentiles use) per bucket.

use std::collections::HashMap;

use sketches_ddsketch::{Config, DDSketch};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, DynamicColumn};
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::agg_traces::{BucketKey, KeyFormat, MAX_TRACE_PAIRS, float_text, strs_of_ords};
use crate::schema::names;

/// What the collector groups by, and what it computes per bucket.
#[derive(Debug, Clone)]
pub(crate) struct RecordBuckets {
    pub dims: Vec<(String, KeyFormat)>,
    pub interval_ms: Option<i64>,
    /// Whether to keep duration stats (and percentiles) per bucket.
    pub durations: bool,
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
    pub sketch: Option<DDSketch>,
}

impl Acc {
    fn new(durations: bool) -> Acc {
        Acc {
            count: 0,
            timed: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            sketch: durations.then(|| DDSketch::new(Config::defaults())),
        }
    }

    fn add(&mut self, duration: Option<f64>) {
        self.count += 1;
        if let (Some(d), Some(sketch)) = (duration, &mut self.sketch) {
            self.timed += 1;
            self.min = self.min.min(d);
            self.max = self.max.max(d);
            self.sum += d;
            sketch.add(d);
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
    pub buckets: HashMap<BucketKey, Acc>,
    /// More than [`MAX_TRACE_PAIRS`] buckets: the counts are incomplete.
    pub overflow: bool,
}

/// A value as the segment's column holds it: the dimension's column and the raw value (a text
/// column's term ordinal, a number's bits).
type Raw = (u8, u64);

pub(crate) struct RecordBucketsSegment {
    timestamp: Column<DateTime>,
    duration: Option<Column<i64>>,
    dims: Vec<(Vec<DynamicColumn>, KeyFormat)>,
    interval_ms: Option<i64>,
    durations: bool,
    buckets: HashMap<(Vec<Raw>, Option<i64>), Acc>,
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
        let fast = reader.fast_fields();
        let mut dims = Vec::with_capacity(self.dims.len());
        for (path, format) in &self.dims {
            dims.push((crate::json_terms::columns(reader, path)?, *format));
        }
        Ok(RecordBucketsSegment {
            timestamp: fast.date(names::TIMESTAMP)?,
            duration: fast.i64(names::DURATION_NS).ok(),
            values: vec![Vec::new(); dims.len()],
            dims,
            interval_ms: self.interval_ms,
            durations: self.durations,
            buckets: HashMap::new(),
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

impl SegmentCollector for RecordBucketsSegment {
    type Fruit = RecordCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (values, (columns, _)) in self.values.iter_mut().zip(&self.dims) {
            values.clear();
            raw_values(columns, doc, values);
            if values.is_empty() {
                return;
            }
        }
        let time = self.interval_ms.map(|interval| {
            let ms = self
                .timestamp
                .first(doc)
                .map_or(0, DateTime::into_timestamp_nanos)
                .div_euclid(1_000_000);
            ms - ms.rem_euclid(interval)
        });
        let duration = if self.durations {
            self.duration
                .as_ref()
                .and_then(|c| c.first(doc))
                .map(|d| d as f64)
        } else {
            None
        };
        // The cartesian product of each dimension's values: a multi-valued attribute counts
        // in each of its values' buckets.
        let mut at = vec![0usize; self.values.len()];
        loop {
            let key: Vec<Raw> = at.iter().zip(&self.values).map(|(&i, v)| v[i]).collect();
            let key = (key, time);
            let full = self.buckets.len() >= MAX_TRACE_PAIRS;
            match self.buckets.get_mut(&key) {
                Some(acc) => acc.add(duration),
                None if full => self.overflow = true,
                None => {
                    let mut acc = Acc::new(self.durations);
                    acc.add(duration);
                    self.buckets.insert(key, acc);
                }
            }
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

    fn harvest(self) -> RecordCounts {
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
            buckets: HashMap::with_capacity(self.buckets.len()),
            overflow: self.overflow,
        };
        for ((raws, time), acc) in self.buckets {
            let mut key = Vec::with_capacity(raws.len());
            for (d, (col, raw)) in raws.into_iter().enumerate() {
                let (columns, format) = &self.dims[d];
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
