//! Aggregations on tantivy's aggregation module: counts by field or attribute value, by time
//! bucket, and both; duration stats and percentiles; and the services listing.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggContextParams, AggregationCollector};
use tantivy::collector::Count;
use tantivy::query::{AllQuery, Query};
use tantivy::schema::Type;

use crate::Index;
use crate::agg_records::{KeywordCounts, RecordBuckets};
use crate::agg_traces::{KeyFormat, MAX_TRACE_PAIRS, TraceBuckets, TraceCounts, float_text};
use crate::error::{Context as _, Error, Result};
use crate::schema::names;
use crate::search::{elapsed_ms, within};

/// Buckets per field unless the request says otherwise.
const DEFAULT_SIZE: usize = 100;
/// Most time buckets in one series (empty ones included).
pub const MAX_TIME_BUCKETS: u64 = 10_000;
/// Most buckets in one answer once empty time buckets are filled in.
pub const MAX_BUCKETS: u64 = 100_000;

/// What a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountMode {
    /// Matching spans and logs (the default).
    #[default]
    Records,
    /// Distinct traces having a matching span or log: a decline that wrote a span and a log
    /// line counts once. Records without a trace are not counted.
    Traces,
}

/// Counts of matching records grouped by up to two fields and/or a time interval.
#[derive(Debug, Clone, Default)]
pub struct AggRequest<'a> {
    pub query: &'a str,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    pub now_ns: Option<i64>,
    /// Field or attribute names (at most two): `service`, `name`, `status`, `level`, `kind`,
    /// `span_kind`, `source`, `trace_id`, ... or an attribute (`card.bin`, which means
    /// `attributes.card.bin` or else `resource.card.bin`; `attr.x`/`resource.x` pick one).
    pub by: Vec<String>,
    /// Fixed time buckets aligned to the epoch (UTC), at least 1 ms.
    pub interval: Option<Duration>,
    /// Most values per field (0 means 100).
    pub size: usize,
    /// Compute count/min/max/avg/sum of `duration_ns` per bucket (spans only have one).
    pub duration_stats: bool,
    /// Percentiles of `duration_ns` per bucket, e.g. `[50.0, 95.0, 99.0]`.
    pub duration_percentiles: Vec<f64>,
    /// Records or distinct traces per bucket.
    pub count: CountMode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggResponse {
    pub buckets: Vec<AggBucket>,
    /// Records matching the query in the time range (with [`CountMode::Traces`], the distinct
    /// traces of those records).
    pub total: u64,
    pub took_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggBucket {
    /// (name, value) per dimension, in request order, then `("time", RFC 3339)`.
    pub key: Vec<(String, String)>,
    /// Records, or distinct traces with [`CountMode::Traces`]; 0 for an empty time bucket.
    pub count: u64,
    pub duration: Option<DurationStats>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DurationStats {
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub sum: f64,
    /// (percent, value in ns).
    pub percentiles: Vec<(f64, Option<f64>)>,
}

/// What the index holds: services with their span names, and attribute keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Services {
    pub services: Vec<ServiceInfo>,
    pub attribute_keys: Vec<AttributeKey>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceInfo {
    pub name: String,
    /// Spans and logs.
    pub records: u64,
    /// Span names (operations), most frequent first.
    pub span_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttributeKey {
    /// As the query language addresses it: `attributes.card.bin`, `resource.service.version`,
    /// `events.exception.type`.
    pub path: String,
    /// `str`, `i64`, `f64`, `bool`, ... (a key can have several).
    pub types: Vec<String>,
    /// Distinct string values in the largest segment: a rough lower bound.
    pub cardinality: Option<u64>,
}

/// One dimension of the request, resolved to a fast field path.
#[derive(Debug)]
struct Dimension {
    label: String,
    field: String,
    key: KeyFormat,
}

impl Index {
    /// Counts (and duration metrics) of matching records per bucket.
    pub fn aggregate(&self, request: &AggRequest<'_>) -> Result<AggResponse> {
        let query = self.compile(request.query, request.now_ns)?;
        self.aggregate_compiled(query, request)
    }

    /// [`Index::aggregate`] with an already built tantivy query.
    pub fn aggregate_compiled(
        &self,
        query: Box<dyn Query>,
        request: &AggRequest<'_>,
    ) -> Result<AggResponse> {
        let started = Instant::now();
        if request.by.len() > 2 {
            return Err(Error::Aggregation {
                message: "at most two fields in `by`".into(),
            });
        }
        let dims: Vec<Dimension> = request
            .by
            .iter()
            .map(|by| self.dimension(by))
            .collect::<Result<_>>()?;
        let size = if request.size == 0 {
            DEFAULT_SIZE
        } else {
            request.size
        };
        let interval_ms = match request.interval {
            Some(interval) if interval.as_millis() == 0 => {
                return Err(Error::Aggregation {
                    message: "the interval must be at least 1ms".into(),
                });
            }
            Some(interval) => Some(interval.as_millis()),
            None => None,
        };
        let query = within(self.fields(), query, request.from_ns, request.to_ns);
        let schema = &self.fields().schema;
        let from_terms = dims
            .iter()
            .any(|d| crate::json_terms::from_terms(schema, &d.field));
        let counts_only = interval_ms.is_none()
            && !request.duration_stats
            && request.duration_percentiles.is_empty();
        let keyword = match &dims[..] {
            [dim] if counts_only => crate::json_terms::terms_only(schema, &dim.field),
            _ => None,
        };
        let (total, buckets) = if let Some(field) = keyword {
            self.keyword_buckets(&*query, &dims[0], field)?
        } else if from_terms {
            self.record_buckets(&*query, &dims, interval_ms, size, request)?
        } else {
            self.tantivy_buckets(&*query, &dims, interval_ms, size, request)?
        };
        let mut buckets = merge_and_sort(buckets);
        let mut total = total;
        if request.count == CountMode::Traces {
            let collector = TraceBuckets {
                dims: dims.iter().map(|d| (d.field.clone(), d.key)).collect(),
                interval_ms: interval_ms.map(|ms| ms as i64),
            };
            let counts = self
                .searcher()
                .search(&*query, &collector)
                .context("counting traces per bucket")?;
            if counts.overflow {
                return Err(Error::Aggregation {
                    message: format!(
                        "more than {MAX_TRACE_PAIRS} (bucket, trace) pairs: narrow the query, \
                         the time range or the fields"
                    ),
                });
            }
            total = counts.all.len() as u64;
            buckets = merge_and_sort(trace_buckets(&dims, counts, buckets));
        }
        let buckets = keep_top_values(buckets, dims.len(), size);
        let buckets = match interval_ms {
            Some(ms) => fill_time_buckets(buckets, ms as i64, request)?,
            None => buckets,
        };
        Ok(AggResponse {
            buckets,
            total,
            took_ms: elapsed_ms(started),
        })
    }

    /// Buckets from tantivy's aggregations (every dimension a fast field).
    fn tantivy_buckets(
        &self,
        query: &dyn Query,
        dims: &[Dimension],
        interval_ms: Option<u128>,
        size: usize,
        request: &AggRequest<'_>,
    ) -> Result<(u64, Vec<AggBucket>)> {
        let tree = agg_tree(dims, interval_ms, size, request);
        let aggregations: Aggregations =
            serde_json::from_value(Value::Object(tree)).map_err(|e| Error::Aggregation {
                message: e.to_string(),
            })?;
        let collector = AggregationCollector::from_aggs(aggregations, AggContextParams::default());
        let (total, results) = self
            .searcher()
            .search(query, &(Count, collector))
            .map_err(|e| Error::Aggregation {
                message: e.to_string(),
            })?;
        let results = serde_json::to_value(&results).map_err(|e| Error::Aggregation {
            message: e.to_string(),
        })?;
        let mut buckets = Vec::new();
        let mut prefix = Vec::new();
        flatten(
            dims,
            interval_ms.is_some(),
            &results,
            total as u64,
            &mut prefix,
            &mut buckets,
        );
        Ok((total as u64, buckets))
    }

    /// Records per value of one keyword without a fast column, counts only: its postings met
    /// with the matching records ([`KeywordCounts`]), no column built.
    fn keyword_buckets(
        &self,
        query: &dyn Query,
        dim: &Dimension,
        field: tantivy::schema::Field,
    ) -> Result<(u64, Vec<AggBucket>)> {
        let (total, values) = self
            .searcher()
            .search(query, &(Count, KeywordCounts(field)))
            .context("counting records per value")?;
        // A segment's error is raised when the segments' counts are merged.
        let values = values
            .map_err(tantivy::TantivyError::InternalError)
            .context("counting records per value")?;
        let buckets = values
            .into_iter()
            .map(|(value, count)| AggBucket {
                key: vec![(dim.label.clone(), dim.key.text(value))],
                count,
                duration: None,
            })
            .collect();
        Ok((total as u64, buckets))
    }

    /// Buckets counted by [`RecordBuckets`] (a dimension is an attribute, or a keyword without
    /// a fast column, which tantivy's aggregations cannot read).
    fn record_buckets(
        &self,
        query: &dyn Query,
        dims: &[Dimension],
        interval_ms: Option<u128>,
        size: usize,
        request: &AggRequest<'_>,
    ) -> Result<(u64, Vec<AggBucket>)> {
        let collector = RecordBuckets {
            dims: dims.iter().map(|d| (d.field.clone(), d.key)).collect(),
            interval_ms: interval_ms.map(|ms| ms as i64),
            durations: request.duration_stats || !request.duration_percentiles.is_empty(),
            percentiles: !request.duration_percentiles.is_empty(),
            // As the terms aggregation is asked (`agg_tree`).
            segment_size: size * 20,
        };
        let (total, counts) = self
            .searcher()
            .search(query, &(Count, collector))
            .context("counting records per bucket")?;
        if counts.overflow {
            return Err(Error::Aggregation {
                message: format!(
                    "more than {MAX_TRACE_PAIRS} buckets: narrow the query, the time range or \
                     the fields"
                ),
            });
        }
        let mut counts = counts.buckets;
        if dims.len() == 1 {
            // Only the `size` values with the most records can be kept (`keep_top_values`):
            // drop the others before their buckets are built, sorted and merged.
            let mut per_value: HashMap<&str, u64> = HashMap::new();
            for ((values, _), acc) in &counts {
                *per_value.entry(values[0].as_str()).or_default() += acc.count;
            }
            let mut values: Vec<(&str, u64)> = per_value.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let kept: std::collections::HashSet<String> = values
                .into_iter()
                .take(size)
                .map(|(v, _)| v.to_owned())
                .collect();
            counts.retain(|(values, _), _| kept.contains(&values[0]));
        }
        let buckets = counts
            .into_iter()
            .map(|((values, time), acc)| {
                let mut key: Vec<(String, String)> = dims
                    .iter()
                    .zip(values)
                    .map(|(d, v)| (d.label.clone(), v))
                    .collect();
                if let Some(ms) = time {
                    let text = jiff::Timestamp::from_millisecond(ms)
                        .map_or_else(|_| ms.to_string(), |t| t.to_string());
                    key.push(("time".into(), text));
                }
                let wants_durations =
                    request.duration_stats || !request.duration_percentiles.is_empty();
                let duration = wants_durations.then(|| {
                    let timed = acc.timed > 0;
                    DurationStats {
                        count: acc.timed,
                        min: timed.then_some(acc.min),
                        max: timed.then_some(acc.max),
                        avg: timed.then(|| acc.sum / acc.timed as f64),
                        sum: acc.sum,
                        percentiles: request
                            .duration_percentiles
                            .iter()
                            .map(|&p| {
                                let value = acc
                                    .sketch
                                    .as_ref()
                                    .and_then(|sketch| sketch.quantile(p / 100.0).ok().flatten());
                                (p, value)
                            })
                            .collect(),
                    }
                });
                AggBucket {
                    key,
                    count: acc.count,
                    duration,
                }
            })
            .collect();
        Ok((total as u64, buckets))
    }

    /// Services, their span names, and the attribute keys in the index.
    pub fn services(&self) -> Result<Services> {
        let request = json!({
            "services": {
                "terms": {"field": names::SERVICE, "size": 10_000},
                "aggs": {"names": {"terms": {"field": names::NAME, "size": 10_000}}},
            }
        });
        let aggregations: Aggregations =
            serde_json::from_value(request).map_err(|e| Error::Aggregation {
                message: e.to_string(),
            })?;
        let collector = AggregationCollector::from_aggs(aggregations, AggContextParams::default());
        let results = self
            .searcher()
            .search(&AllQuery, &collector)
            .context("listing services")?;
        let results = serde_json::to_value(&results).map_err(|e| Error::Aggregation {
            message: e.to_string(),
        })?;
        let services = buckets_of(&results["services"])
            .map(|bucket| ServiceInfo {
                name: key_text(&bucket["key"]),
                records: bucket["doc_count"].as_u64().unwrap_or(0),
                span_names: buckets_of(&bucket["names"])
                    .map(|b| key_text(&b["key"]))
                    .collect(),
            })
            .filter(|s| !s.name.is_empty())
            .collect();
        Ok(Services {
            services,
            attribute_keys: self.attribute_keys()?,
        })
    }

    fn attribute_keys(&self) -> Result<Vec<AttributeKey>> {
        let metadata = self
            .tantivy()
            .fields_metadata()
            .context("listing attribute keys")?;
        let searcher = self.searcher();
        let mut keys: BTreeMap<String, AttributeKey> = BTreeMap::new();
        for field in metadata {
            let is_attr = [names::ATTRIBUTES, names::RESOURCE, names::EVENTS]
                .iter()
                .any(|root| {
                    field
                        .field_name
                        .strip_prefix(root)
                        .is_some_and(|r| r.starts_with('.'))
                });
            if !is_attr {
                continue;
            }
            let key = keys
                .entry(field.field_name.clone())
                .or_insert_with(|| AttributeKey {
                    path: field.field_name.clone(),
                    types: Vec::new(),
                    cardinality: None,
                });
            let typ = type_name(field.typ).to_owned();
            if !key.types.contains(&typ) {
                key.types.push(typ);
            }
            if field.typ == Type::Str {
                for segment in searcher.segment_readers() {
                    let n = crate::json_terms::text_values(segment, &field.field_name)
                        .context("counting an attribute's values")?;
                    if n > 0 {
                        key.cardinality = Some(key.cardinality.unwrap_or(0).max(n));
                    }
                }
            }
        }
        Ok(keys.into_values().collect())
    }

    /// A `by` name to a fast field path, through the field catalog: a built-in field, or an
    /// attribute in the record attributes, else the resource, else the span events (`attr.x`,
    /// `resource.x`, `event.x` pick one). A name no record has is refused with a hint.
    fn dimension(&self, by: &str) -> Result<Dimension> {
        use crate::field_catalog::{self, Resolved};
        let label = by.to_owned();
        if by.is_empty() {
            return Err(Error::Aggregation {
                message: "empty field name in `by`".into(),
            });
        }
        let resolved = field_catalog::resolve(by).map_err(|message| Error::Aggregation {
            message: format!("`by`: {message}"),
        })?;
        match resolved {
            Resolved::Builtin(f) if f.groupable => Ok(Dimension {
                label,
                field: f.index_field.to_owned(),
                key: KeyFormat::of_field(f.index_field),
            }),
            Resolved::Builtin(f) => Err(Error::Aggregation {
                message: format!(
                    "`by` cannot group by {} (a {} per record): use `interval` for time, \
                     or `stats` for durations",
                    f.name, f.value_type
                ),
            }),
            Resolved::Attribute { location, path } => {
                for root in field_catalog::attr_roots(location) {
                    let field = format!("{root}.{path}");
                    if self.has_terms(&field, false)? {
                        return Ok(Dimension {
                            label,
                            field,
                            key: KeyFormat::Plain,
                        });
                    }
                }
                Err(Error::InvalidRequest {
                    message: format!("`by`: {}", self.field_hint(by)?),
                })
            }
        }
    }

    /// The hint for an unknown field name: closest known fields and attribute keys seen.
    pub fn field_hint(&self, name: &str) -> Result<String> {
        let keys: Vec<String> = self
            .attribute_keys()?
            .iter()
            .filter_map(|k| crate::field_catalog::query_name(&k.path))
            .collect();
        Ok(crate::field_catalog::hint(name, &keys))
    }

    /// Whether any record has the field or attribute `name` (as the query language writes it).
    pub fn has_field(&self, name: &str) -> Result<bool> {
        use crate::field_catalog::{self, Resolved};
        match field_catalog::resolve(name) {
            Ok(Resolved::Builtin(_)) => Ok(true),
            Ok(Resolved::Attribute { location, path }) => {
                for root in field_catalog::attr_roots(location) {
                    let name = format!("{root}.{path}");
                    if self.has_terms(&name, false)? || self.has_terms(&name, true)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    }

    /// Whether any segment has a term at the JSON path `path` (or under it, with `subpaths`).
    fn has_terms(&self, path: &str, subpaths: bool) -> Result<bool> {
        for segment in self.searcher().segment_readers() {
            if crate::json_terms::has_terms(segment, path, subpaths).context("reading terms")? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl AggResponse {
    /// `{"buckets": [{"key": {...}, "count": N, "duration_ns"?: {...}}], "total": N, "took_ms": N}`.
    pub fn to_json(&self) -> Value {
        let buckets: Vec<Value> = self.buckets.iter().map(AggBucket::to_json).collect();
        json!({"buckets": buckets, "total": self.total, "took_ms": self.took_ms})
    }
}

impl AggBucket {
    pub fn to_json(&self) -> Value {
        let key: Map<String, Value> = self
            .key
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut out = json!({"key": key, "count": self.count});
        if let Some(d) = &self.duration {
            let mut stats =
                json!({"count": d.count, "min": d.min, "max": d.max, "avg": d.avg, "sum": d.sum});
            for (percent, value) in &d.percentiles {
                stats[format!("p{percent}")] = json!(value);
            }
            out["duration_ns"] = stats;
        }
        out
    }
}

impl Services {
    pub fn to_json(&self) -> Value {
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| json!({"name": s.name, "records": s.records, "span_names": s.span_names}))
            .collect();
        let keys: Vec<Value> = self
            .attribute_keys
            .iter()
            .map(|k| json!({"path": k.path, "types": k.types, "cardinality": k.cardinality}))
            .collect();
        json!({"services": services, "attribute_keys": keys})
    }
}

/// The nested request: terms(by[0]) → terms(by[1]) → date_histogram → metrics.
fn agg_tree(
    dims: &[Dimension],
    interval_ms: Option<u128>,
    size: usize,
    request: &AggRequest<'_>,
) -> Map<String, Value> {
    let mut leaf = Map::new();
    if request.duration_stats || !request.duration_percentiles.is_empty() {
        leaf.insert(
            "stats".into(),
            json!({"stats": {"field": names::DURATION_NS}}),
        );
    }
    if !request.duration_percentiles.is_empty() {
        leaf.insert(
            "pct".into(),
            json!({"percentiles": {"field": names::DURATION_NS, "percents": request.duration_percentiles, "keyed": false}}),
        );
    }
    let mut tree = leaf;
    if let Some(ms) = interval_ms {
        let mut agg = json!({"date_histogram": {"field": names::TIMESTAMP, "fixed_interval": format!("{ms}ms"), "min_doc_count": 1}});
        if !tree.is_empty() {
            agg["aggs"] = Value::Object(tree);
        }
        tree = Map::from_iter([("time".to_owned(), agg)]);
    }
    for (i, dim) in dims.iter().enumerate().rev() {
        // Ask for more than `size`: a value stored as a number in some records and as text in
        // others comes back twice and is merged afterwards.
        let mut agg =
            json!({"terms": {"field": dim.field, "size": size * 2, "segment_size": size * 20}});
        if !tree.is_empty() {
            agg["aggs"] = Value::Object(tree);
        }
        tree = Map::from_iter([(format!("by{i}"), agg)]);
    }
    tree
}

/// Walks the nested results into flat buckets.
fn flatten(
    dims: &[Dimension],
    has_time: bool,
    node: &Value,
    count: u64,
    prefix: &mut Vec<(String, String)>,
    out: &mut Vec<AggBucket>,
) {
    let depth = prefix.len();
    if depth < dims.len() {
        let dim = &dims[depth];
        for bucket in buckets_of(&node[format!("by{depth}")]) {
            let value = dim.key.text(key_text(&bucket["key"]));
            prefix.push((dim.label.clone(), value));
            flatten(
                dims,
                has_time,
                bucket,
                bucket["doc_count"].as_u64().unwrap_or(0),
                prefix,
                out,
            );
            prefix.pop();
        }
        return;
    }
    if has_time {
        for bucket in buckets_of(&node["time"]) {
            let ms = bucket["key"].as_f64().unwrap_or(0.0) as i64;
            let time = jiff::Timestamp::from_millisecond(ms)
                .map_or_else(|_| ms.to_string(), |t| t.to_string());
            let mut key = prefix.clone();
            key.push(("time".into(), time));
            let count = bucket["doc_count"].as_u64().unwrap_or(0);
            out.push(AggBucket {
                key,
                count,
                duration: duration_of(bucket),
            });
        }
        return;
    }
    out.push(AggBucket {
        key: prefix.clone(),
        count,
        duration: duration_of(node),
    });
}

fn duration_of(node: &Value) -> Option<DurationStats> {
    let stats = node.get("stats")?;
    let mut d = DurationStats {
        count: stats["count"].as_u64().unwrap_or(0),
        min: stats["min"].as_f64(),
        max: stats["max"].as_f64(),
        avg: stats["avg"].as_f64(),
        sum: stats["sum"].as_f64().unwrap_or(0.0),
        percentiles: Vec::new(),
    };
    if let Some(values) = node.pointer("/pct/values").and_then(Value::as_array) {
        d.percentiles = values
            .iter()
            .map(|v| (v["key"].as_f64().unwrap_or(0.0), v["value"].as_f64()))
            .collect();
    }
    Some(d)
}

/// Buckets with the same key text (a number and its string) become one; then the largest
/// groups first, time ascending within a group.
fn merge_and_sort(buckets: Vec<AggBucket>) -> Vec<AggBucket> {
    let mut merged: Vec<AggBucket> = Vec::with_capacity(buckets.len());
    let mut position: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    for bucket in buckets {
        match position.get(&bucket.key) {
            Some(&i) => {
                let into = &mut merged[i];
                into.duration = merge_duration(
                    into.duration.take(),
                    bucket.duration,
                    into.count,
                    bucket.count,
                );
                into.count += bucket.count;
            }
            None => {
                position.insert(bucket.key.clone(), merged.len());
                merged.push(bucket);
            }
        }
    }
    sort_buckets(merged)
}

/// The largest groups first, time ascending within a group.
fn sort_buckets(mut buckets: Vec<AggBucket>) -> Vec<AggBucket> {
    let group = |b: &AggBucket| -> Vec<(String, String)> {
        b.key.iter().filter(|(k, _)| k != "time").cloned().collect()
    };
    let mut group_count: HashMap<Vec<(String, String)>, u64> = HashMap::new();
    for b in &buckets {
        *group_count.entry(group(b)).or_default() += b.count;
    }
    // By the time itself, not its text: `14:00:00.5Z` comes after `14:00:00Z`.
    buckets.sort_by_cached_key(|b| {
        let g = group(b);
        let time = b
            .key
            .iter()
            .find(|(k, _)| k == "time")
            .and_then(|(_, t)| t.parse::<jiff::Timestamp>().ok());
        (std::cmp::Reverse(group_count[&g]), g, time)
    });
    buckets
}

/// At most `size` values of each field: for the first field overall, for the next one within
/// each value of the fields before it; the values with the most records win (ties by value).
/// tantivy is asked for more than `size` so that a number and its text can be merged first.
fn keep_top_values(mut buckets: Vec<AggBucket>, n_dims: usize, size: usize) -> Vec<AggBucket> {
    /// A (field, value) pair of a bucket's key.
    type Pair = (String, String);
    let dims_of = |b: &AggBucket| -> Vec<Pair> {
        b.key.iter().filter(|(k, _)| k != "time").cloned().collect()
    };
    for d in 0..n_dims {
        let mut counts: HashMap<(Vec<Pair>, Pair), u64> = HashMap::new();
        for b in &buckets {
            let dims = dims_of(b);
            if let Some(value) = dims.get(d) {
                *counts
                    .entry((dims[..d].to_vec(), value.clone()))
                    .or_default() += b.count;
            }
        }
        let mut by_prefix: HashMap<Vec<Pair>, Vec<(Pair, u64)>> = HashMap::new();
        for ((prefix, value), count) in counts {
            by_prefix.entry(prefix).or_default().push((value, count));
        }
        let mut kept = std::collections::HashSet::new();
        for (prefix, mut values) in by_prefix {
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            for (value, _) in values.into_iter().take(size) {
                kept.insert((prefix.clone(), value));
            }
        }
        buckets.retain(|b| {
            let dims = dims_of(b);
            dims.get(d)
                .is_none_or(|value| kept.contains(&(dims[..d].to_vec(), value.clone())))
        });
    }
    buckets
}

/// Stats merge exactly; percentiles cannot, so the larger bucket's are kept.
fn merge_duration(
    a: Option<DurationStats>,
    b: Option<DurationStats>,
    n_a: u64,
    n_b: u64,
) -> Option<DurationStats> {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (a, b) => return a.or(b),
    };
    let pick = |x: Option<f64>, y: Option<f64>, f: fn(f64, f64) -> f64| match (x, y) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    };
    let count = a.count + b.count;
    let sum = a.sum + b.sum;
    Some(DurationStats {
        count,
        min: pick(a.min, b.min, f64::min),
        max: pick(a.max, b.max, f64::max),
        avg: (count > 0).then(|| sum / count as f64),
        sum,
        percentiles: if n_a >= n_b {
            a.percentiles
        } else {
            b.percentiles
        },
    })
}

fn buckets_of(node: &Value) -> impl Iterator<Item = &Value> {
    node.get("buckets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A bucket key as text: strings as they are, whole numbers without a fraction.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                float_text(n.as_f64().unwrap_or(0.0))
            }
        }
        other => other.to_string(),
    }
}

fn type_name(typ: Type) -> &'static str {
    match typ {
        Type::Str => "str",
        Type::U64 => "u64",
        Type::I64 => "i64",
        Type::F64 => "f64",
        Type::Bool => "bool",
        Type::Date => "date",
        Type::Facet => "facet",
        Type::Bytes => "bytes",
        Type::Json => "json",
        Type::IpAddr => "ip",
        _ => "other",
    }
}

impl std::str::FromStr for CountMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<CountMode> {
        match s {
            "" | "records" => Ok(CountMode::Records),
            "traces" => Ok(CountMode::Traces),
            other => Err(Error::InvalidRequest {
                message: format!(
                    "unknown count {other:?}: use records (spans and logs) or traces (distinct \
                     traces)"
                ),
            }),
        }
    }
}

/// The buckets of distinct-trace counts, with the duration statistics of the record buckets
/// of the same key.
fn trace_buckets(
    dims: &[Dimension],
    counts: TraceCounts,
    record_buckets: Vec<AggBucket>,
) -> Vec<AggBucket> {
    let mut stats: HashMap<Vec<(String, String)>, Option<DurationStats>> = record_buckets
        .into_iter()
        .map(|b| (b.key, b.duration))
        .collect();
    counts
        .buckets
        .into_iter()
        .map(|((values, time_ms), traces)| {
            let mut key: Vec<(String, String)> =
                dims.iter().map(|d| d.label.clone()).zip(values).collect();
            if let Some(ms) = time_ms {
                key.push(("time".into(), time_key(ms)));
            }
            let duration = stats.remove(&key).flatten();
            AggBucket {
                key,
                count: traces.len() as u64,
                duration,
            }
        })
        .collect()
}

/// A time bucket's key: its start, RFC 3339.
fn time_key(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Adds the empty time buckets (count 0) of every series over the requested range: from `from`
/// (else the first bucket with records) to `to` (else now, when `from` is given, else the last
/// bucket with records). Refuses ranges of more than [`MAX_TIME_BUCKETS`] buckets per series or
/// [`MAX_BUCKETS`] in all.
fn fill_time_buckets(
    buckets: Vec<AggBucket>,
    interval_ms: i64,
    request: &AggRequest<'_>,
) -> Result<Vec<AggBucket>> {
    let align = |ms: i64| ms - ms.rem_euclid(interval_ms);
    let time_of = |b: &AggBucket| -> Option<i64> {
        let (_, text) = b.key.iter().find(|(k, _)| k == "time")?;
        let ts: jiff::Timestamp = text.parse().ok()?;
        Some(ts.as_millisecond())
    };
    let seen: Vec<i64> = buckets.iter().filter_map(time_of).collect();
    let from_ms = request
        .from_ns
        .map(|ns| align(ns.div_euclid(1_000_000)))
        .or_else(|| seen.iter().copied().min());
    let last_ms = match request.to_ns {
        // `to` is exclusive: the last bucket holds `to - 1 ns`.
        Some(to) => Some(align((to - 1).div_euclid(1_000_000))),
        None if request.from_ns.is_some() => {
            let now = request
                .now_ns
                .unwrap_or_else(crate::search::now_ns_from_clock);
            let now = align(now.div_euclid(1_000_000));
            Some(seen.iter().copied().max().map_or(now, |m| m.max(now)))
        }
        None => seen.iter().copied().max(),
    };
    let (Some(from_ms), Some(last_ms)) = (from_ms, last_ms) else {
        return Ok(buckets);
    };
    if last_ms < from_ms {
        return Ok(buckets);
    }
    let slots = ((last_ms - from_ms) / interval_ms) as u64 + 1;
    if slots > MAX_TIME_BUCKETS {
        return Err(Error::Aggregation {
            message: format!(
                "the range makes {slots} time buckets of {interval_ms} ms; at most \
                 {MAX_TIME_BUCKETS}: use a larger interval or a shorter range"
            ),
        });
    }
    let group = |b: &AggBucket| -> Vec<(String, String)> {
        b.key.iter().filter(|(k, _)| k != "time").cloned().collect()
    };
    let mut groups: Vec<Vec<(String, String)>> = Vec::new();
    let mut present: std::collections::HashSet<(Vec<(String, String)>, i64)> =
        std::collections::HashSet::new();
    for b in &buckets {
        let g = group(b);
        if let Some(ms) = time_of(b) {
            present.insert((g.clone(), ms));
        }
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    if groups.is_empty() {
        // No records at all: one empty series (only when no field splits it).
        groups.push(Vec::new());
    }
    let n_groups = groups.len() as u64;
    if slots.saturating_mul(n_groups) > MAX_BUCKETS {
        return Err(Error::Aggregation {
            message: format!(
                "{n_groups} series of {slots} time buckets are more than {MAX_BUCKETS} buckets: \
                 use a larger interval, a shorter range or a smaller size"
            ),
        });
    }
    let mut out = buckets;
    for g in &groups {
        for i in 0..slots {
            let ms = from_ms + i as i64 * interval_ms;
            if present.contains(&(g.clone(), ms)) {
                continue;
            }
            let mut key = g.clone();
            key.push(("time".into(), time_key(ms)));
            out.push(AggBucket {
                key,
                count: 0,
                duration: None,
            });
        }
    }
    Ok(sort_buckets(out))
}
