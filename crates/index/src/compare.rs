//! Compare: what is different about a selection of records or traces, against a baseline —
//! attribute/value pairs ranked by how over-represented they are in the selection (Honeycomb's
//! BubbleUp, TraceQL's `compare()`).
//!
//! - Units are traces (a pair counts for a trace when any span or log of it carries the pair)
//!   or records. The baseline is, by default, every unit of the same kinds in the time range
//!   that is not in the selection; a given baseline query is also taken without the selection.
//! - Candidates: `service`, `name`, `status`, `level`, `span_kind` and every attribute, resource
//!   attribute and span-event attribute key in the index. Left out by rule: the fields the
//!   selection query constrains, and high-cardinality fields (more than [`HIGH_CARDINALITY`]
//!   distinct values and more distinct values than half the units carrying the field: ids,
//!   timestamps, amounts).
//! - Score: the pair's term of the KL divergence of the selection from the baseline (see
//!   [`score`]), with a drill-down so that values every selected unit shares (the selected
//!   service's name, its error status, the 402 of every decline) do not bury a rarer, more
//!   specific one: while the best pair marks at least 90% of the selection it is listed first
//!   and the others are scored against the baseline units that carry it too (at most 3 times,
//!   and only into at least 10 units). Pairs that mark exactly the same units are listed once.
//! - Bounded: each side is read whole up to [`MAX_TRACES_READ`] traces or [`MAX_UNITS_READ`]
//!   records, else a uniform sample of that many (by a hash of the trace id, or of the record);
//!   the answer gives the sample rate.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use model::Level;
use rustc_hash::FxHashMap;
use serde_json::{Value, json};
use tantivy::columnar::{Column, ColumnType, ColumnarReader, DynamicColumn};
use tantivy::index::{SegmentComponent, SegmentId};
use tantivy::postings::BlockSegmentPostings;
use tantivy::query::{AllQuery, BooleanQuery, EnableScoring, Occur, Query};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Searcher, SegmentOrdinal, SegmentReader};

use crate::agg::CountMode;
use crate::agg_traces::float_text;
use crate::doc::{KIND_LOG, KIND_SPAN};
use crate::error::{Context as _, Error, Result};
use crate::field_catalog::Builtin;
use crate::query::{AttrScope, Expr, FieldRef};
use crate::schema::names;
use crate::search::{elapsed_ms, kind_query, within};
use crate::{Index, query};

/// Records each side reads at most; past that, a uniform sample.
pub const MAX_UNITS_READ: u64 = 20_000;
/// Traces each side reads at most (each is all of its records); past that, a uniform sample.
pub const MAX_TRACES_READ: u64 = 5_000;
/// Results per answer at most.
pub const MAX_COMPARE_LIMIT: usize = 1_000;
/// A field with more distinct values than this (and more than half its units) is an id.
pub const HIGH_CARDINALITY: usize = 20;
/// A pair carried by at least this share of the selection is its category: compare drills
/// down into the baseline units that carry it.
const MARKER_SHARE: f64 = 0.9;
/// Most drill-downs.
const MAX_DRILL_DOWNS: usize = 3;
/// A drill-down needs at least this many baseline units.
const MIN_DRILL_DOWN_UNITS: u64 = 10;
/// Most selection traces considered.
const MAX_SELECTION_TRACES: usize = 200_000;

#[derive(Debug, Clone, Default)]
pub struct CompareRequest<'a> {
    /// The selection, in the query language.
    pub query: &'a str,
    /// The baseline; `None` means every record of the selection's kinds not in the selection.
    pub baseline: Option<&'a str>,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// Results returned (capped at [`MAX_COMPARE_LIMIT`]).
    pub limit: usize,
    /// Traces (the default) or records.
    pub count: CompareUnit,
    pub now_ns: Option<i64>,
}

/// What compare counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompareUnit {
    #[default]
    Traces,
    Records,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompareResponse {
    pub selection: SideTotals,
    pub baseline: SideTotals,
    /// Best first.
    pub results: Vec<CompareResult>,
    pub took_ms: u64,
}

/// How many records and traces one side holds, and the share of its units that were read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SideTotals {
    pub records: u64,
    pub traces: u64,
    /// 1.0 when every unit was read; else the sampled fraction (counts are the sample's).
    pub sample_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompareResult {
    /// As the query language names it: `card.bin`, `resource.host.name`, `event.exception.type`,
    /// `service`, `name`, `status`, `level`, `span_kind`.
    pub field: String,
    pub value: String,
    pub selection_count: u64,
    pub baseline_count: u64,
    pub selection_share: f64,
    pub baseline_share: f64,
    pub score: f64,
}

/// A candidate field: how the answer names it, where its values are read, whether its values are
/// level ordinals.
#[derive(Debug, Clone)]
struct Candidate {
    label: String,
    path: String,
    is_level: bool,
}

/// Selection 0, baseline 1.
const SELECTION: usize = 0;
const BASELINE: usize = 1;

impl Index {
    /// What is different about the selection: parses the request's queries, then
    /// [`Index::compare_exprs`].
    pub fn compare(&self, request: &CompareRequest<'_>) -> Result<CompareResponse> {
        let selection = query::parse(request.query)?;
        let baseline = request.baseline.map(query::parse).transpose()?;
        self.compare_exprs(&selection, baseline.as_ref(), request)
    }

    /// [`Index::compare`] with the queries already parsed (the request's query texts unused).
    pub fn compare_exprs(
        &self,
        selection: &Expr,
        baseline: Option<&Expr>,
        request: &CompareRequest<'_>,
    ) -> Result<CompareResponse> {
        let started = Instant::now();
        let now_ns = request
            .now_ns
            .unwrap_or_else(crate::search::now_ns_from_clock);
        let fields = self.fields();
        let range = |q: Box<dyn Query>| within(fields, q, request.from_ns, request.to_ns);
        let selection_q = range(query::compile(selection, fields, now_ns)?);
        let searcher = self.searcher();
        let keep_docs = request.count == CompareUnit::Records;
        let traces = self.trace_cache().get(&searcher, fields.trace_low64)?;
        let selection_side = matched(&searcher, &traces, &*selection_q, keep_docs)?;
        let selection_records = selection_side.records;
        if selection_records == 0 {
            // An attribute no record has: say so, with the names that exist.
            for name in attribute_names(selection) {
                if !self.has_field(&name)? {
                    return Err(Error::InvalidRequest {
                        message: self.field_hint(&name)?,
                    });
                }
            }
        }
        // The baseline: the given query, or every record of the selection's kinds; never the
        // selection itself.
        let baseline_base: Box<dyn Query> = match baseline {
            Some(expr) => query::compile(expr, fields, now_ns)?,
            None => self.kinds_of(&searcher, &*selection_q)?,
        };
        let baseline_q = range(Box::new(BooleanQuery::new(vec![
            (Occur::Must, baseline_base),
            (Occur::MustNot, query::compile(selection, fields, now_ns)?),
        ])));
        let baseline_side = matched(&searcher, &traces, &*baseline_q, keep_docs)?;
        let baseline_records = baseline_side.records;
        let candidates = self.candidates(selection)?;
        let mut scan = Scan::new(&candidates);
        let (selection_totals, baseline_totals) = match request.count {
            CompareUnit::Traces => {
                let sel_ids = selection_side.traces;
                if sel_ids.len() > MAX_SELECTION_TRACES {
                    return Err(Error::InvalidRequest {
                        message: format!(
                            "the selection has more than {MAX_SELECTION_TRACES} traces: narrow \
                             the query or the time range"
                        ),
                    });
                }
                let base_ids: HashSet<u64> = baseline_side
                    .traces
                    .into_iter()
                    .filter(|low| !sel_ids.contains(low))
                    .collect();
                let rates = [
                    rate(sel_ids.len() as u64, MAX_TRACES_READ),
                    rate(base_ids.len() as u64, MAX_TRACES_READ),
                ];
                let mut side_of: HashMap<u64, usize> = HashMap::new();
                for (side, ids) in [(SELECTION, &sel_ids), (BASELINE, &base_ids)] {
                    for &low in ids {
                        if sampled(low, rates[side]) {
                            side_of.insert(low, side);
                        }
                    }
                }
                let in_range = range(Box::new(AllQuery));
                let in_range =
                    (request.from_ns.is_some() || request.to_ns.is_some()).then_some(&*in_range);
                scan.traces(&searcher, &traces, &side_of, in_range)?;
                (
                    SideTotals {
                        records: selection_records,
                        traces: sel_ids.len() as u64,
                        sample_rate: rates[SELECTION],
                    },
                    SideTotals {
                        records: baseline_records,
                        traces: base_ids.len() as u64,
                        sample_rate: rates[BASELINE],
                    },
                )
            }
            CompareUnit::Records => {
                let rates = [
                    rate(selection_records, MAX_UNITS_READ),
                    rate(baseline_records, MAX_UNITS_READ),
                ];
                scan.records(&searcher, &selection_side.docs, SELECTION, rates[SELECTION])?;
                scan.records(&searcher, &baseline_side.docs, BASELINE, rates[BASELINE])?;
                // As many as a trace list would consider.
                let traces = |side: &Matched| side.traces.len().min(MAX_SELECTION_TRACES) as u64;
                (
                    SideTotals {
                        records: selection_records,
                        traces: traces(&selection_side),
                        sample_rate: rates[SELECTION],
                    },
                    SideTotals {
                        records: baseline_records,
                        traces: traces(&baseline_side),
                        sample_rate: rates[BASELINE],
                    },
                )
            }
        };
        let mut results = scan.pairs().results();
        results.truncate(request.limit.min(MAX_COMPARE_LIMIT));
        Ok(CompareResponse {
            selection: selection_totals,
            baseline: baseline_totals,
            results,
            took_ms: elapsed_ms(started),
        })
    }

    /// `kind = span`, `kind = log` or both: the kinds the selection holds.
    fn kinds_of(&self, searcher: &Searcher, selection: &dyn Query) -> Result<Box<dyn Query>> {
        let fields = self.fields();
        let mut kinds: Vec<Box<dyn Query>> = Vec::new();
        for kind in [KIND_SPAN, KIND_LOG] {
            let q =
                BooleanQuery::intersection(vec![selection.box_clone(), kind_query(fields, kind)]);
            if count(searcher, &q)? > 0 {
                kinds.push(kind_query(fields, kind));
            }
        }
        Ok(match kinds.len() {
            0 => Box::new(AllQuery),
            1 => kinds.remove(0),
            _ => Box::new(AllQuery),
        })
    }

    /// Every field compare may rank, less those the selection constrains.
    fn candidates(&self, selection: &Expr) -> Result<Vec<Candidate>> {
        let constrained = constrained_fields(selection);
        let is_constrained = |label: &str| {
            constrained.iter().any(|c| {
                label == c
                    || label
                        .strip_prefix(c.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            })
        };
        let mut out: Vec<Candidate> = [
            ("service", names::SERVICE),
            ("name", names::NAME),
            ("status", names::STATUS),
            ("level", names::LEVEL),
            ("span_kind", names::SPAN_KIND),
        ]
        .into_iter()
        .map(|(label, path)| Candidate {
            label: label.to_owned(),
            path: path.to_owned(),
            is_level: path == names::LEVEL,
        })
        .collect();
        // The fast columns' names, sorted: tantivy's `fields_metadata` would also list the
        // indexed JSON paths by streaming every term of every attribute (ids included), which
        // took a third of a compare; every attribute path is a fast column too.
        let mut names: BTreeSet<String> = BTreeSet::new();
        let segments = self
            .tantivy()
            .searchable_segments()
            .context("listing segments")?;
        for segment in segments {
            let file = segment
                .open_read(SegmentComponent::FastFields)
                .map_err(tantivy::TantivyError::from)
                .context("opening the fast fields")?;
            let columnar = ColumnarReader::open(file)
                .map_err(tantivy::TantivyError::from)
                .context("opening the fast fields")?;
            let columns = columnar
                .iter_columns()
                .map_err(tantivy::TantivyError::from)
                .context("listing attribute keys")?;
            for (name, handle) in columns {
                if matches!(
                    handle.column_type(),
                    ColumnType::Bytes | ColumnType::IpAddr | ColumnType::DateTime
                ) {
                    continue;
                }
                // Path segments are separated by \u{1} in a column's name.
                names.insert(name.replace('\u{1}', "."));
            }
        }
        for name in names {
            let label = if let Some(key) = name.strip_prefix("attributes.") {
                key.to_owned()
            } else if let Some(key) = name.strip_prefix("resource.") {
                format!("resource.{key}")
            } else if let Some(key) = name.strip_prefix("events.") {
                format!("event.{key}")
            } else {
                continue;
            };
            out.push(Candidate {
                label,
                path: name,
                is_level: false,
            });
        }
        out.retain(|c| !is_constrained(&c.label));
        Ok(out)
    }
}

impl CompareUnit {
    pub fn from_count(count: CountMode) -> CompareUnit {
        match count {
            CountMode::Records => CompareUnit::Records,
            CountMode::Traces => CompareUnit::Traces,
        }
    }
}

impl CompareResponse {
    /// `{"selection": {"records", "traces", "sample_rate"}, "baseline": {...}, "results": [...],
    /// "took_ms"}`.
    pub fn to_json(&self) -> Value {
        let side = |s: &SideTotals| json!({"records": s.records, "traces": s.traces, "sample_rate": s.sample_rate});
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "field": r.field,
                    "value": r.value,
                    "selection_count": r.selection_count,
                    "baseline_count": r.baseline_count,
                    "selection_share": r.selection_share,
                    "baseline_share": r.baseline_share,
                    "score": r.score,
                })
            })
            .collect();
        json!({
            "selection": side(&self.selection),
            "baseline": side(&self.baseline),
            "results": results,
            "took_ms": self.took_ms,
        })
    }
}

/// How over-represented a pair is: `s × ln(s′ / b′)`, where `s` is the selection's share and
/// `s′`, `b′` are the selection's and the baseline's shares smoothed by half a unit (so that a
/// pair seen once against nothing does not win by an infinite ratio) — the pair's term of the
/// Kullback–Leibler divergence of the selection from the baseline. A pair no more common in
/// the selection than in the baseline scores 0 or less.
pub fn score(sel_count: u64, sel_units: u64, base_count: u64, base_units: u64) -> f64 {
    if sel_units == 0 || sel_count == 0 {
        return 0.0;
    }
    let s = sel_count as f64 / sel_units as f64;
    let s_smooth = (sel_count as f64 + 0.5) / (sel_units as f64 + 1.0);
    let b_smooth = (base_count as f64 + 0.5) / (base_units as f64 + 1.0);
    s * (s_smooth / b_smooth).ln()
}

fn count(searcher: &Searcher, query: &dyn Query) -> Result<u64> {
    Ok(searcher
        .search(query, &tantivy::collector::Count)
        .context("counting")? as u64)
}

/// 1.0 when `units` fit in `max`, else the fraction that does.
fn rate(units: u64, max: u64) -> f64 {
    if units <= max {
        1.0
    } else {
        max as f64 / units as f64
    }
}

/// Whether the unit with this key is in a uniform sample of `rate`.
fn sampled(key: u64, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    (mix(key) as f64) < rate * u64::MAX as f64
}

/// splitmix64's finaliser: a well-mixed hash, so consecutive keys look independent.
fn mix(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fields a query constrains, as compare labels (an attribute in any scope in each of its
/// spellings).
fn constrained_fields(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        let field = match e {
            Expr::And(items) | Expr::Or(items) => {
                stack.extend(items);
                continue;
            }
            Expr::Not(inner) => {
                stack.push(inner);
                continue;
            }
            Expr::Exists(field) => field,
            Expr::Compare(c) => &c.field,
            Expr::All | Expr::Text(_) => continue,
        };
        match field {
            FieldRef::Builtin(Builtin::Service) => out.push("service".to_owned()),
            FieldRef::Builtin(Builtin::Name) => out.push("name".to_owned()),
            FieldRef::Builtin(Builtin::Status) => out.push("status".to_owned()),
            FieldRef::Builtin(Builtin::Level) => out.push("level".to_owned()),
            FieldRef::Builtin(Builtin::SpanKind) => out.push("span_kind".to_owned()),
            FieldRef::Attribute(attr) => {
                let p = &attr.path;
                match attr.scope {
                    AttrScope::Any => {
                        out.push(p.clone());
                        out.push(format!("resource.{p}"));
                        out.push(format!("event.{p}"));
                    }
                    AttrScope::Attributes => out.push(p.clone()),
                    AttrScope::Resource => out.push(format!("resource.{p}")),
                    AttrScope::Events => out.push(format!("event.{p}")),
                }
            }
            _ => {}
        }
    }
    out
}

/// The attribute names a query mentions, as written (`card.bin`, `resource.x`).
fn attribute_names(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::And(items) | Expr::Or(items) => stack.extend(items),
            Expr::Not(inner) => stack.push(inner),
            Expr::Exists(field @ FieldRef::Attribute(_)) => out.push(field.to_string()),
            Expr::Compare(c) if matches!(c.field, FieldRef::Attribute(_)) => {
                out.push(c.field.to_string());
            }
            _ => {}
        }
    }
    out
}

/// The records a query matches: how many, their traces, and (when asked) the records.
struct Matched {
    records: u64,
    /// The low 64 bits of their trace ids.
    traces: HashSet<u64>,
    /// Per segment ordinal, the matching records, ascending (only when asked for).
    docs: Vec<(SegmentOrdinal, Vec<DocId>)>,
}

/// One segment's records by trace, from the inverted index of the trace ids' low 64 bits (its
/// terms are plain numbers: no compressed dictionary block to open, unlike the `trace_id`
/// column's).
pub(crate) struct SegmentTraces {
    /// Per record, the index of its trace's term in `lows` (`u32::MAX`: no trace).
    term_of_doc: Vec<u32>,
    /// Per term, the low 64 bits of a trace id.
    lows: Vec<u64>,
}

/// The pass over the units' records, in two steps. First every candidate column's values of
/// every unit are read as raw values (a string column's term ordinals) and each distinct raw
/// value of a column gets a slot. Then the fields that are high-cardinality whatever their
/// texts are dropped (see [`Scan::surely_high_cardinality`]), and only the others' slots are
/// turned into text — a string column's in one sorted pass over its dictionary — and into
/// (field, value) pairs, counted per side by [`Pairs`].
struct Scan<'a> {
    candidates: &'a [Candidate],
    /// Every candidate column of every segment read.
    columns: Vec<ReadColumn>,
    /// Per slot: its column and its raw value.
    slots: Vec<(u32, u64)>,
    /// Every unit: its side, its key (for the sample and the fingerprints) and its slots.
    units: Vec<(usize, u64, Vec<u32>)>,
    /// Per slot, the unit it was last added to.
    last_unit: Vec<u32>,
}

/// One candidate's column in one segment, and the slots of the raw values read from it.
struct ReadColumn {
    candidate: usize,
    column: DynamicColumn,
    /// Raw value → slot, for a numeric column.
    slot_of_value: FxHashMap<u64, u32>,
    /// Term ordinal → slot (`u32::MAX`: not read), for a string column.
    slot_of_ord: Vec<u32>,
}

/// Reused buffers of a column read.
#[derive(Default)]
struct ReadBuffers {
    docs: Vec<DocId>,
    rows: Vec<u32>,
}

/// (field, value) pairs and the units carrying them.
struct Pairs<'a> {
    candidates: &'a [Candidate],
    /// (candidate, value text) → pair id.
    pair_ids: HashMap<(usize, String), u32>,
    pairs: Vec<(usize, String)>,
    /// Per pair, units of each side carrying it.
    counts: Vec<[u64; 2]>,
    /// Per candidate, units of each side carrying the field.
    field_units: Vec<[u64; 2]>,
    /// Units read per side.
    units: [u64; 2],
    /// Every unit read: its side and its pairs.
    unit_pairs: Vec<(usize, Vec<u32>)>,
    /// Per pair, a hash of the set of units carrying it (XOR of the units' hashes): pairs that
    /// mark exactly the same units are shown once.
    fingerprints: Vec<u64>,
}

/// Every segment's records by trace, kept from one compare to the next (a field of the
/// [`Index`]): a segment never changes, and reading its trace index is the costliest part of a
/// compare on a large index. Holds the segments searched last only.
#[derive(Default)]
pub(crate) struct TraceCache(Mutex<Vec<(SegmentId, Arc<SegmentTraces>)>>);

impl TraceCache {
    /// Every segment's records by trace, in the searcher's segment order.
    fn get(&self, searcher: &Searcher, field: Field) -> Result<Vec<Arc<SegmentTraces>>> {
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(searcher.segment_readers().len());
        for reader in searcher.segment_readers() {
            let id = reader.segment_id();
            let found = cached.iter().find(|(c, _)| *c == id);
            out.push(match found {
                Some((_, traces)) => Arc::clone(traces),
                None => Arc::new(segment_traces(reader, field)?),
            });
        }
        *cached = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .zip(out.iter().cloned())
            .collect();
        Ok(out)
    }
}

/// One segment's records by trace.
fn segment_traces(reader: &SegmentReader, field: Field) -> Result<SegmentTraces> {
    let index = reader
        .inverted_index(field)
        .context("opening the trace index")?;
    let io = |e: std::io::Error| tantivy::TantivyError::from(e);
    let mut term_of_doc = vec![u32::MAX; reader.max_doc() as usize];
    let mut lows = Vec::new();
    let mut terms = index
        .terms()
        .stream()
        .map_err(io)
        .context("reading the trace index")?;
    // One postings reader, reset for each term: opening one per term cost more than reading.
    let mut postings: Option<BlockSegmentPostings> = None;
    while terms.advance() {
        // A u64 term is its 8 big-endian bytes.
        let Ok(bytes) = <[u8; 8]>::try_from(terms.key()) else {
            continue;
        };
        let term = lows.len() as u32;
        lows.push(u64::from_be_bytes(bytes));
        let info = terms.value();
        let block = match &mut postings {
            Some(block) => {
                index
                    .reset_block_postings_from_terminfo(info, block)
                    .map_err(io)
                    .context("reading the trace index")?;
                block
            }
            None => postings.insert(
                index
                    .read_block_postings_from_terminfo(info, IndexRecordOption::Basic)
                    .map_err(io)
                    .context("reading the trace index")?,
            ),
        };
        let mut left = block.doc_freq() as usize;
        while left > 0 && !block.docs().is_empty() {
            for &doc in block.docs().iter().take(left) {
                if let Some(slot) = term_of_doc.get_mut(doc as usize) {
                    *slot = term;
                }
            }
            left = left.saturating_sub(block.docs().len());
            block.advance();
        }
    }
    Ok(SegmentTraces { term_of_doc, lows })
}

/// The records of `query`, counted, with their traces (and the records when `keep_docs`).
fn matched(
    searcher: &Searcher,
    traces: &[Arc<SegmentTraces>],
    query: &dyn Query,
    keep_docs: bool,
) -> Result<Matched> {
    let weight = query
        .weight(EnableScoring::disabled_from_searcher(searcher))
        .context("preparing the compare query")?;
    let mut out = Matched {
        records: 0,
        traces: HashSet::new(),
        docs: Vec::new(),
    };
    for ((seg_ord, reader), seg_traces) in searcher.segment_readers().iter().enumerate().zip(traces)
    {
        let alive = reader.alive_bitset();
        let mut seen = vec![false; seg_traces.lows.len()];
        let mut docs = Vec::new();
        let mut records = 0;
        weight
            .for_each_no_score(reader, &mut |batch| {
                for &doc in batch {
                    if alive.is_some_and(|a| a.is_deleted(doc)) {
                        continue;
                    }
                    records += 1;
                    if keep_docs {
                        docs.push(doc);
                    }
                    if let Some(term) = seg_traces.term_of_doc.get(doc as usize)
                        && let Some(seen) = seen.get_mut(*term as usize)
                    {
                        *seen = true;
                    }
                }
            })
            .context("reading the matching records")?;
        out.records += records;
        out.traces.extend(
            seen.iter()
                .zip(&seg_traces.lows)
                .filter(|(seen, _)| **seen)
                .map(|(_, low)| *low),
        );
        if keep_docs {
            out.docs.push((seg_ord as SegmentOrdinal, docs));
        }
    }
    Ok(out)
}

impl<'a> Scan<'a> {
    fn new(candidates: &'a [Candidate]) -> Scan<'a> {
        Scan {
            candidates,
            columns: Vec::new(),
            slots: Vec::new(),
            units: Vec::new(),
            last_unit: Vec::new(),
        }
    }

    /// Reads the records of a side: each of `docs` (per segment, ascending) in a uniform
    /// sample of `rate` is a unit.
    fn records(
        &mut self,
        searcher: &Searcher,
        docs: &[(SegmentOrdinal, Vec<DocId>)],
        side: usize,
        rate: f64,
    ) -> Result<()> {
        let mut buffers = ReadBuffers::default();
        for (seg_ord, seg_docs) in docs {
            let key = |doc: DocId| (u64::from(*seg_ord) << 32) | u64::from(doc);
            let read: Vec<DocId> = seg_docs
                .iter()
                .copied()
                .filter(|&doc| sampled(key(doc), rate))
                .collect();
            let first_unit = self.units.len() as u32;
            self.units
                .extend(read.iter().map(|&doc| (side, key(doc), Vec::new())));
            let unit_of: Vec<u32> = (first_unit..self.units.len() as u32).collect();
            let reader = searcher.segment_reader(*seg_ord);
            self.read(reader, &read, &unit_of, &mut buffers)?;
        }
        Ok(())
    }

    /// Reads the traces of `side_of` (by the low 64 bits of their ids; each is a unit): every
    /// record of them (in `in_range`, when given).
    fn traces(
        &mut self,
        searcher: &Searcher,
        traces: &[Arc<SegmentTraces>],
        side_of: &HashMap<u64, usize>,
        in_range: Option<&dyn Query>,
    ) -> Result<()> {
        let mut unit_of_low: HashMap<u64, u32> = HashMap::with_capacity(side_of.len());
        for (&low, &side) in side_of {
            unit_of_low.insert(low, self.units.len() as u32);
            self.units.push((side, low, Vec::new()));
        }
        let in_range = in_range
            .map(|q| q.weight(EnableScoring::disabled_from_searcher(searcher)))
            .transpose()
            .context("preparing the time range")?;
        let mut buffers = ReadBuffers::default();
        for (reader, seg_traces) in searcher.segment_readers().iter().zip(traces) {
            let unit_of_term: Vec<u32> = seg_traces
                .lows
                .iter()
                .map(|low| unit_of_low.get(low).copied().unwrap_or(u32::MAX))
                .collect();
            let alive = reader.alive_bitset();
            let mut scorer = in_range
                .as_ref()
                .map(|w| w.scorer(reader, 1.0))
                .transpose()
                .context("reading the time range")?;
            let (mut read, mut unit_of) = (Vec::new(), Vec::new());
            for (doc, &term) in seg_traces.term_of_doc.iter().enumerate() {
                let Some(&unit) = unit_of_term.get(term as usize) else {
                    continue;
                };
                let doc = doc as DocId;
                if unit == u32::MAX || alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                if let Some(scorer) = &mut scorer {
                    if scorer.doc() < doc {
                        scorer.seek(doc);
                    }
                    if scorer.doc() != doc {
                        continue;
                    }
                }
                read.push(doc);
                unit_of.push(unit);
            }
            self.read(reader, &read, &unit_of, &mut buffers)?;
        }
        Ok(())
    }

    /// Reads every candidate column of one segment for `docs` (ascending, distinct), adding
    /// the slots of `docs[i]`'s values to unit `unit_of[i]`.
    fn read(
        &mut self,
        reader: &SegmentReader,
        docs: &[DocId],
        unit_of: &[u32],
        buffers: &mut ReadBuffers,
    ) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let fast = reader.fast_fields();
        for (ci, c) in self.candidates.iter().enumerate() {
            let handles = fast
                .dynamic_column_handles(&c.path)
                .context("opening columns")?;
            for handle in handles {
                let column = handle
                    .open()
                    .map_err(tantivy::TantivyError::from)
                    .context("opening a column")?;
                let slot_of_ord = match &column {
                    DynamicColumn::Str(c) => vec![u32::MAX; c.num_terms()],
                    DynamicColumn::I64(_)
                    | DynamicColumn::U64(_)
                    | DynamicColumn::F64(_)
                    | DynamicColumn::Bool(_) => Vec::new(),
                    _ => continue,
                };
                let column_id = self.columns.len() as u32;
                let mut read = ReadColumn {
                    candidate: ci,
                    column,
                    slot_of_value: FxHashMap::default(),
                    slot_of_ord,
                };
                let slots = &mut self.slots;
                let units = &mut self.units;
                let last_unit = &mut self.last_unit;
                let mut add = |i: usize, raw: u64, slot: &mut u32| {
                    if *slot == u32::MAX {
                        *slot = slots.len() as u32;
                        slots.push((column_id, raw));
                        last_unit.push(u32::MAX);
                    }
                    // A trace's records are mostly neighbours: most repeats of a slot in a
                    // unit are skipped here, the rest when the unit's slots are deduplicated.
                    let unit = unit_of[i];
                    if last_unit[*slot as usize] != unit {
                        last_unit[*slot as usize] = unit;
                        units[unit as usize].2.push(*slot);
                    }
                };
                let ReadColumn {
                    column,
                    slot_of_value,
                    slot_of_ord,
                    ..
                } = &mut read;
                let mut by_value = |i: usize, raw: u64| {
                    add(i, raw, slot_of_value.entry(raw).or_insert(u32::MAX));
                };
                match column {
                    DynamicColumn::Str(c) => each_value(c.ords(), docs, buffers, |i, ord| {
                        add(i, ord, &mut slot_of_ord[ord as usize]);
                    }),
                    DynamicColumn::I64(c) => {
                        each_value(c, docs, buffers, |i, v| by_value(i, v as u64));
                    }
                    DynamicColumn::U64(c) => each_value(c, docs, buffers, &mut by_value),
                    DynamicColumn::F64(c) => each_value(c, docs, buffers, |i, v| {
                        // One raw value per text: 0 and -0 are both "0".
                        let v = if v == 0.0 { 0.0 } else { v };
                        by_value(i, v.to_bits());
                    }),
                    DynamicColumn::Bool(c) => {
                        each_value(c, docs, buffers, |i, v| by_value(i, u64::from(v)));
                    }
                    _ => {}
                }
                self.columns.push(read);
            }
        }
        Ok(())
    }

    /// Per candidate, whether the rule of [`Pairs::results`] surely finds it high-cardinality,
    /// from the slots alone (each unit's slots deduplicated): it has more distinct values than any one column of it has slots
    /// (a column's distinct raw values are distinct texts), and no value is carried by more
    /// units than the most-carried slot of each column together.
    fn surely_high_cardinality(&self) -> Vec<bool> {
        let n = self.candidates.len();
        let mut slot_units = vec![0u64; self.slots.len()];
        let mut field_units = vec![0u64; n];
        let mut last_unit = vec![usize::MAX; n];
        for (u, (_, _, slots)) in self.units.iter().enumerate() {
            for &slot in slots {
                slot_units[slot as usize] += 1;
                let ci = self.columns[self.slots[slot as usize].0 as usize].candidate;
                if last_unit[ci] != u {
                    last_unit[ci] = u;
                    field_units[ci] += 1;
                }
            }
        }
        let mut column_slots = vec![0u64; self.columns.len()];
        let mut column_top = vec![0u64; self.columns.len()];
        for (slot, &(column, _)) in self.slots.iter().enumerate() {
            column_slots[column as usize] += 1;
            column_top[column as usize] = column_top[column as usize].max(slot_units[slot]);
        }
        let mut distinct_at_least = vec![0u64; n];
        let mut top_at_most = vec![0u64; n];
        for (k, column) in self.columns.iter().enumerate() {
            let ci = column.candidate;
            distinct_at_least[ci] = distinct_at_least[ci].max(column_slots[k]);
            top_at_most[ci] += column_top[k];
        }
        (0..n)
            .map(|ci| {
                let (distinct, units) = (distinct_at_least[ci], field_units[ci]);
                distinct > HIGH_CARDINALITY as u64
                    && (distinct * 2 > units || top_at_most[ci] * 20 < units)
            })
            .collect()
    }

    /// The pairs of every unit: the slots of the fields that may be ranked, as text.
    fn pairs(mut self) -> Pairs<'a> {
        for (_, _, slots) in &mut self.units {
            slots.sort_unstable();
            slots.dedup();
        }
        let dropped = self.surely_high_cardinality();
        let mut pairs = Pairs::new(self.candidates);
        let mut pair_of_slot = vec![u32::MAX; self.slots.len()];
        let mut texts: Vec<(u32, String)> = Vec::new();
        for column in &self.columns {
            if dropped[column.candidate] {
                continue;
            }
            texts.clear();
            let is_level = self.candidates[column.candidate].is_level;
            match &column.column {
                DynamicColumn::Str(c) => {
                    let (ords, slots): (Vec<u64>, Vec<u32>) = column
                        .slot_of_ord
                        .iter()
                        .enumerate()
                        .filter(|&(_, &slot)| slot != u32::MAX)
                        .map(|(ord, &slot)| (ord as u64, slot))
                        .unzip();
                    let mut slots = slots.into_iter();
                    let _ = c.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
                        if let Some(slot) = slots.next()
                            && let Ok(text) = std::str::from_utf8(bytes)
                        {
                            texts.push((slot, text.to_owned()));
                        }
                    });
                }
                typed => {
                    for (&raw, &slot) in &column.slot_of_value {
                        texts.push((slot, value_text(typed, raw, is_level)));
                    }
                }
            }
            for (slot, text) in texts.drain(..) {
                pair_of_slot[slot as usize] = pairs.intern(column.candidate, text);
            }
        }
        for (side, key, slots) in std::mem::take(&mut self.units) {
            let mut unit: Vec<u32> = slots
                .into_iter()
                .map(|slot| pair_of_slot[slot as usize])
                .filter(|&p| p != u32::MAX)
                .collect();
            unit.sort_unstable();
            unit.dedup();
            pairs.add_unit(side, key, unit);
        }
        pairs
    }
}

/// Every value of `column` of `docs` (ascending): `each(i, value)` for a value of `docs[i]`.
fn each_value<T>(
    column: &Column<T>,
    docs: &[DocId],
    buffers: &mut ReadBuffers,
    mut each: impl FnMut(usize, T),
) where
    T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + Default + 'static,
{
    buffers.docs.clear();
    buffers.rows.clear();
    column.row_ids_for_docs(docs, &mut buffers.docs, &mut buffers.rows);
    let mut values = vec![T::default(); buffers.rows.len()];
    column.values.get_vals(&buffers.rows, &mut values);
    let mut i = 0;
    for (&doc, value) in buffers.docs.iter().zip(values) {
        while docs[i] < doc {
            i += 1;
        }
        each(i, value);
    }
}

/// The text of a numeric column's raw value, as the query language writes it.
fn value_text(column: &DynamicColumn, raw: u64, is_level: bool) -> String {
    match column {
        DynamicColumn::I64(_) => (raw as i64).to_string(),
        DynamicColumn::F64(_) => float_text(f64::from_bits(raw)),
        DynamicColumn::Bool(_) => (raw != 0).to_string(),
        _ => {
            let level = is_level
                .then(|| u8::try_from(raw).ok().and_then(Level::from_ordinal))
                .flatten();
            level.map_or_else(|| raw.to_string(), |l| l.as_str().into())
        }
    }
}

impl<'a> Pairs<'a> {
    fn new(candidates: &'a [Candidate]) -> Pairs<'a> {
        Pairs {
            candidates,
            pair_ids: HashMap::new(),
            pairs: Vec::new(),
            counts: Vec::new(),
            field_units: vec![[0; 2]; candidates.len()],
            units: [0; 2],
            fingerprints: Vec::new(),
            unit_pairs: Vec::new(),
        }
    }

    /// The id of the pair (candidate, text).
    fn intern(&mut self, candidate: usize, text: String) -> u32 {
        let next = self.pairs.len() as u32;
        *self
            .pair_ids
            .entry((candidate, text.clone()))
            .or_insert_with(|| {
                self.pairs.push((candidate, text));
                self.counts.push([0; 2]);
                self.fingerprints.push(0);
                next
            })
    }

    fn add_unit(&mut self, side: usize, key: u64, pairs: Vec<u32>) {
        self.units[side] += 1;
        let unit_hash = mix(key ^ side as u64);
        let mut fields: Vec<usize> = Vec::new();
        for &p in &pairs {
            self.counts[p as usize][side] += 1;
            self.fingerprints[p as usize] ^= unit_hash;
            let field = self.pairs[p as usize].0;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        for f in fields {
            self.field_units[f][side] += 1;
        }
        self.unit_pairs.push((side, pairs));
    }

    /// Ranked results, best first; high-cardinality fields left out, and of pairs that mark
    /// exactly the same units only the first.
    fn results(self) -> Vec<CompareResult> {
        let n = self.candidates.len();
        let (mut distinct, mut singletons) = (vec![0usize; n], vec![0usize; n]);
        let mut top = vec![0u64; n];
        for ((field, _), counts) in self.pairs.iter().zip(&self.counts) {
            let units = counts[SELECTION] + counts[BASELINE];
            distinct[*field] += 1;
            top[*field] = top[*field].max(units);
            if units == 1 {
                singletons[*field] += 1;
            }
        }
        // An id, a timestamp or a measurement: many values, each carried by few units — more
        // values than half the units, or none carried by 5% of them — or values that are
        // nearly all unique.
        let high_cardinality: Vec<bool> = (0..n)
            .map(|f| {
                let units = self.field_units[f][SELECTION] + self.field_units[f][BASELINE];
                let many = distinct[f] > HIGH_CARDINALITY
                    && ((distinct[f] as u64) * 2 > units || top[f] * 20 < units);
                let mostly_unique = distinct[f] >= 5 && singletons[f] * 5 >= distinct[f] * 4;
                many || mostly_unique
            })
            .collect();
        let [sel_units, base_units] = self.units;
        let share = |n: u64, units: u64| {
            if units == 0 {
                0.0
            } else {
                n as f64 / units as f64
            }
        };
        let eligible: Vec<bool> = self
            .pairs
            .iter()
            .zip(&self.counts)
            .map(|((field, _), counts)| !high_cardinality[*field] && counts[SELECTION] > 0)
            .collect();
        // Greedy, as a drill-down: while the best pair marks (nearly) every selected unit — the
        // selection's category, such as `http.response.status_code = 402` for one decline code
        // — it is listed, and the rest are scored against the baseline units that carry it
        // too: what is different about the selection *among declines*. Pairs that category
        // explains (every decline's status, its level) then score nothing and drop out.
        let mut in_baseline: Vec<bool> = self
            .unit_pairs
            .iter()
            .map(|(side, _)| *side == BASELINE)
            .collect();
        let mut base_counts: Vec<u64> = self.counts.iter().map(|c| c[BASELINE]).collect();
        let mut current_base_units = base_units;
        let mut chosen: Vec<(u32, f64)> = Vec::new();
        let mut scores: Vec<f64>;
        loop {
            scores = (0..self.pairs.len())
                .map(|p| {
                    if !eligible[p] || chosen.iter().any(|(c, _)| *c as usize == p) {
                        return 0.0;
                    }
                    score(
                        self.counts[p][SELECTION],
                        sel_units,
                        base_counts[p],
                        current_base_units,
                    )
                })
                .collect();
            if chosen.len() >= MAX_DRILL_DOWNS {
                break;
            }
            let best = (0..self.pairs.len())
                .filter(|&p| scores[p] > 0.0)
                .max_by(|&a, &b| {
                    scores[a]
                        .total_cmp(&scores[b])
                        .then_with(|| self.pairs[b].cmp(&self.pairs[a]))
                });
            let Some(best) = best else { break };
            if share(self.counts[best][SELECTION], sel_units) < MARKER_SHARE {
                break;
            }
            // The baseline units that carry the marker too.
            let narrowed: Vec<bool> = self
                .unit_pairs
                .iter()
                .zip(&in_baseline)
                .map(|((_, pairs), &inb)| inb && pairs.contains(&(best as u32)))
                .collect();
            let n_narrowed = narrowed.iter().filter(|&&b| b).count() as u64;
            if n_narrowed < MIN_DRILL_DOWN_UNITS {
                break;
            }
            chosen.push((best as u32, scores[best]));
            in_baseline = narrowed;
            current_base_units = n_narrowed;
            base_counts = vec![0; self.pairs.len()];
            for ((_, pairs), &inb) in self.unit_pairs.iter().zip(&in_baseline) {
                if inb {
                    for &p in pairs {
                        base_counts[p as usize] += 1;
                    }
                }
            }
        }
        let result = |p: usize, score: f64| CompareResult {
            field: self.candidates[self.pairs[p].0].label.clone(),
            value: self.pairs[p].1.clone(),
            selection_count: self.counts[p][SELECTION],
            baseline_count: self.counts[p][BASELINE],
            selection_share: share(self.counts[p][SELECTION], sel_units),
            baseline_share: share(self.counts[p][BASELINE], base_units),
            score,
        };
        let mut rest: Vec<(u64, CompareResult)> = (0..self.pairs.len())
            .filter(|&p| scores[p] > 0.0)
            .map(|p| (self.fingerprints[p], result(p, scores[p])))
            .collect();
        rest.sort_by(|(_, a), (_, b)| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| b.selection_count.cmp(&a.selection_count))
                .then_with(|| a.field.cmp(&b.field))
                .then_with(|| a.value.cmp(&b.value))
        });
        let mut seen = HashSet::new();
        chosen
            .into_iter()
            .map(|(p, score)| (self.fingerprints[p as usize], result(p as usize, score)))
            .chain(rest)
            .filter(|(fp, r)| seen.insert((*fp, r.selection_count, r.baseline_count)))
            .map(|(_, r)| r)
            .collect()
    }
}
