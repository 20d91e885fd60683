//! Distinct traces per aggregation bucket (`count=traces`), read from columns (an attribute's
//! built from its terms, `json_terms`): a decline that wrote a span and a log line counts once.
//! A trace is known by the low 64 bits of its id, so a log known only by those bits (a Datadog
//! logger's decimal id) counts with its trace.

use std::collections::{HashMap, HashSet};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{DynamicColumn, StrColumn};
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

use model::Level;

use crate::schema::names;

/// Most (bucket, trace) pairs one aggregation keeps in memory.
pub(crate) const MAX_TRACE_PAIRS: usize = 5_000_000;

/// How a dimension's numbers read as bucket keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFormat {
    /// As numbers.
    Plain,
    /// Level ordinals, as level names.
    Level,
    /// Span ids, as 16 hex digits.
    SpanId,
}

impl KeyFormat {
    pub(crate) fn of_field(field: &str) -> KeyFormat {
        match field {
            names::LEVEL => KeyFormat::Level,
            names::SPAN_ID | names::PARENT_SPAN_ID => KeyFormat::SpanId,
            _ => KeyFormat::Plain,
        }
    }

    /// A key as text: `raw` is the number's decimal text (or any other key's text).
    pub(crate) fn text(self, raw: String) -> String {
        match self {
            KeyFormat::Plain => raw,
            KeyFormat::Level => match raw.parse::<u8>().ok().and_then(Level::from_ordinal) {
                Some(level) => level.as_str().to_owned(),
                None => raw,
            },
            KeyFormat::SpanId => match raw.parse::<u64>().ok().and_then(model::SpanId::from_u64) {
                Some(id) => id.to_string(),
                None => raw,
            },
        }
    }
}

/// What the collector groups by: field or attribute paths (with how their numbers read) and an
/// optional time interval in milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct TraceBuckets {
    pub dims: Vec<(String, KeyFormat)>,
    pub interval_ms: Option<i64>,
}

/// A bucket: the value of each dimension as text, then the time bucket's start in ms.
pub(crate) type BucketKey = (Vec<String>, Option<i64>);

#[derive(Debug, Default)]
pub(crate) struct TraceCounts {
    /// Bucket → the low 64 bits of its traces.
    pub buckets: HashMap<BucketKey, HashSet<u64>>,
    /// Every trace of the matching records.
    pub all: HashSet<u64>,
    /// [`MAX_TRACE_PAIRS`] was reached: the counts are incomplete.
    pub overflow: bool,
}

pub(crate) struct TraceBucketsSegment {
    trace_id: Option<StrColumn>,
    timestamp: tantivy::columnar::Column<DateTime>,
    /// Per dimension, its columns (one per type a JSON path holds).
    dims: Vec<(Vec<DynamicColumn>, KeyFormat)>,
    interval_ms: Option<i64>,
    low64_of_ord: HashMap<u64, Option<u64>>,
    counts: TraceCounts,
    pairs: usize,
}

impl Collector for TraceBuckets {
    type Fruit = TraceCounts;
    type Child = TraceBucketsSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TraceBucketsSegment> {
        let fast = reader.fast_fields();
        let mut dims = Vec::with_capacity(self.dims.len());
        for (path, format) in &self.dims {
            dims.push((crate::json_terms::columns(reader, path)?, *format));
        }
        Ok(TraceBucketsSegment {
            trace_id: fast.str(names::TRACE_ID)?,
            timestamp: fast.date(names::TIMESTAMP)?,
            dims,
            interval_ms: self.interval_ms,
            low64_of_ord: HashMap::new(),
            counts: TraceCounts::default(),
            pairs: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<TraceCounts>) -> tantivy::Result<TraceCounts> {
        let mut merged = TraceCounts::default();
        for fruit in fruits {
            merged.overflow |= fruit.overflow;
            merged.all.extend(fruit.all);
            for (key, traces) in fruit.buckets {
                merged.buckets.entry(key).or_default().extend(traces);
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for TraceBucketsSegment {
    type Fruit = TraceCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(column) = &self.trace_id else { return };
        let Some(ord) = column.term_ords(doc).next() else {
            return;
        };
        let low = *self.low64_of_ord.entry(ord).or_insert_with(|| {
            let mut text = String::new();
            column.ord_to_str(ord, &mut text).ok()?;
            u128::from_str_radix(&text, 16).ok().map(|id| id as u64)
        });
        let Some(low) = low else { return };
        if self.pairs >= MAX_TRACE_PAIRS {
            self.counts.overflow = true;
            return;
        }
        self.counts.all.insert(low);
        let time = self
            .interval_ms
            .map(|interval| time_bucket_ms(self.timestamp.first(doc), interval));
        // The cartesian product of each dimension's values (a multi-valued attribute counts in
        // each of its values' buckets, as the record counts do).
        let mut keys: Vec<Vec<String>> = vec![Vec::new()];
        for (columns, format) in &self.dims {
            let values = values_of(columns, *format, doc);
            if values.is_empty() {
                return;
            }
            keys = keys
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut key = prefix.clone();
                        key.push(v.clone());
                        key
                    })
                })
                .collect();
        }
        for key in keys {
            if self
                .counts
                .buckets
                .entry((key, time))
                .or_default()
                .insert(low)
            {
                self.pairs += 1;
            }
        }
    }

    fn harvest(self) -> TraceCounts {
        self.counts
    }
}

/// A document's distinct values of one dimension, as text the way aggregation keys read.
fn values_of(columns: &[DynamicColumn], format: KeyFormat, doc: DocId) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: String| {
        if !out.contains(&v) {
            out.push(v);
        }
    };
    for column in columns {
        match column {
            DynamicColumn::Str(c) => {
                for ord in c.term_ords(doc) {
                    let mut text = String::new();
                    if c.ord_to_str(ord, &mut text).unwrap_or(false) {
                        push(text);
                    }
                }
            }
            DynamicColumn::I64(c) => c.values_for_doc(doc).for_each(|v| push(v.to_string())),
            DynamicColumn::U64(c) => c
                .values_for_doc(doc)
                .for_each(|v| push(format.text(v.to_string()))),
            DynamicColumn::F64(c) => c.values_for_doc(doc).for_each(|v| push(float_text(v))),
            DynamicColumn::Bool(c) => c.values_for_doc(doc).for_each(|v| push(v.to_string())),
            DynamicColumn::DateTime(c) => c.values_for_doc(doc).for_each(|v| {
                push(decode::time::format_rfc3339_ns(v.into_timestamp_nanos()));
            }),
            DynamicColumn::IpAddr(_) | DynamicColumn::Bytes(_) => {}
        }
    }
    out
}

/// The start, in ms since the epoch, of the `interval_ms` bucket that `time` falls in (buckets
/// aligned to the epoch, as tantivy's date histogram aligns them); no time is the epoch's.
pub(crate) fn time_bucket_ms(time: Option<DateTime>, interval_ms: i64) -> i64 {
    let ms = time
        .map_or(0, DateTime::into_timestamp_nanos)
        .div_euclid(1_000_000);
    ms - ms.rem_euclid(interval_ms)
}

/// A float as aggregation keys print it: whole numbers without a fraction.
pub(crate) fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        (f as i64).to_string()
    } else {
        f.to_string()
    }
}

/// Term ordinals of a string column → their text, in one sorted pass over the column's
/// dictionary (looking ordinals up one by one decompresses a dictionary block each).
pub(crate) fn strs_of_ords(
    column: &StrColumn,
    ords: impl IntoIterator<Item = u64>,
) -> HashMap<u64, String> {
    let mut ords: Vec<u64> = ords.into_iter().collect();
    ords.sort_unstable();
    ords.dedup();
    let mut out = HashMap::with_capacity(ords.len());
    let mut next = ords.iter();
    let _ = column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
        if let Some(&ord) = next.next() {
            out.insert(ord, String::from_utf8_lossy(bytes).into_owned());
        }
    });
    out
}

/// The trace ids (as numbers) of a trace-id column's term ordinals, read in one sorted pass
/// over the dictionary: looking ordinals up one by one decompresses a dictionary block each
/// time, which dominated compare and trace lists on large indexes.
pub(crate) fn trace_ids_of_ords(column: &StrColumn, mut ords: Vec<u64>) -> HashMap<u64, u128> {
    ords.sort_unstable();
    ords.dedup();
    let mut out = HashMap::with_capacity(ords.len());
    let mut next = ords.iter();
    let _ = column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
        if let Some(&ord) = next.next()
            && let Some(id) = std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| u128::from_str_radix(text, 16).ok())
        {
            out.insert(ord, id);
        }
    });
    out
}
