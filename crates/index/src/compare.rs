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

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use model::Level;
use serde_json::{Value, json};
use tantivy::columnar::DynamicColumn;
use tantivy::query::{AllQuery, BooleanQuery, EnableScoring, Occur, Query};
use tantivy::schema::Type;
use tantivy::{DocId, Searcher, SegmentReader};

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
        let selection_records = count(&searcher, &*selection_q)?;
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
        let baseline_records = count(&searcher, &*baseline_q)?;
        let candidates = self.candidates(selection)?;
        let mut scan = Scan::new(&candidates);
        let (selection_totals, baseline_totals) = match request.count {
            CompareUnit::Traces => {
                let sel = self.matched_traces(&*selection_q, MAX_SELECTION_TRACES)?;
                if sel.truncated {
                    return Err(Error::InvalidRequest {
                        message: format!(
                            "the selection has more than {MAX_SELECTION_TRACES} traces: narrow \
                             the query or the time range"
                        ),
                    });
                }
                let base = self.matched_traces(&*baseline_q, usize::MAX)?;
                let sel_ids: HashSet<u64> = sel.by_low64.keys().copied().collect();
                let base_ids: HashSet<u64> = base
                    .by_low64
                    .keys()
                    .copied()
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
                let everything = range(Box::new(AllQuery));
                scan.traces(&searcher, &*everything, &side_of)?;
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
                scan.records(&searcher, &*selection_q, SELECTION, rates[SELECTION])?;
                scan.records(&searcher, &*baseline_q, BASELINE, rates[BASELINE])?;
                let traces = |q: &dyn Query| -> Result<u64> {
                    Ok(self.matched_traces(q, MAX_SELECTION_TRACES)?.by_low64.len() as u64)
                };
                (
                    SideTotals {
                        records: selection_records,
                        traces: traces(&*selection_q)?,
                        sample_rate: rates[SELECTION],
                    },
                    SideTotals {
                        records: baseline_records,
                        traces: traces(&*baseline_q)?,
                        sample_rate: rates[BASELINE],
                    },
                )
            }
        };
        let mut results = scan.results();
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
        let metadata = self
            .tantivy()
            .fields_metadata()
            .context("listing attribute keys")?;
        let mut seen = HashSet::new();
        for field in metadata {
            if matches!(
                field.typ,
                Type::Bytes | Type::IpAddr | Type::Date | Type::Json
            ) {
                continue;
            }
            let name = &field.field_name;
            let label = if let Some(key) = name.strip_prefix("attributes.") {
                key.to_owned()
            } else if let Some(key) = name.strip_prefix("resource.") {
                format!("resource.{key}")
            } else if let Some(key) = name.strip_prefix("events.") {
                format!("event.{key}")
            } else {
                continue;
            };
            if seen.insert(name.clone()) {
                out.push(Candidate {
                    label,
                    path: name.clone(),
                    is_level: false,
                });
            }
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
            Expr::Not(inner) | Expr::Trace(inner) => {
                stack.push(inner);
                continue;
            }
            Expr::Child { parent, child } => {
                stack.push(parent);
                stack.push(child);
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
                    AttrScope::Links => out.push(format!("link.{p}")),
                    AttrScope::Instrumentation => out.push(format!("instrumentation.{p}")),
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
            Expr::Not(inner) | Expr::Trace(inner) => stack.push(inner),
            Expr::Child { parent, child } => {
                stack.push(parent);
                stack.push(child);
            }
            Expr::Exists(field @ FieldRef::Attribute(_)) => out.push(field.to_string()),
            Expr::Compare(c) if matches!(c.field, FieldRef::Attribute(_)) => {
                out.push(c.field.to_string());
            }
            _ => {}
        }
    }
    out
}

/// The pass over the records: interns (field, value) pairs and counts them per side.
struct Scan<'a> {
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

/// One segment's columns of every candidate.
struct SegmentColumns {
    columns: Vec<Vec<DynamicColumn>>,
    /// Per candidate, per column: a cache of value → pair id.
    cache: Vec<Vec<HashMap<u64, u32>>>,
}

impl<'a> Scan<'a> {
    fn new(candidates: &'a [Candidate]) -> Scan<'a> {
        Scan {
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

    fn open(&self, reader: &SegmentReader) -> Result<SegmentColumns> {
        let fast = reader.fast_fields();
        let mut columns = Vec::with_capacity(self.candidates.len());
        for c in self.candidates {
            let handles = fast
                .dynamic_column_handles(&c.path)
                .context("opening columns")?;
            let opened = handles
                .into_iter()
                .map(|h| h.open())
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| Error::Tantivy {
                    context: "opening a column",
                    source: e.into(),
                })?;
            columns.push(opened);
        }
        let cache = columns
            .iter()
            .map(|cols| cols.iter().map(|_| HashMap::new()).collect())
            .collect();
        Ok(SegmentColumns { columns, cache })
    }

    /// The distinct pairs of one record, appended to `out`.
    fn pairs_of(&mut self, seg: &mut SegmentColumns, doc: DocId, out: &mut Vec<u32>) {
        for (ci, cols) in seg.columns.iter().enumerate() {
            for (k, column) in cols.iter().enumerate() {
                let cache = &mut seg.cache[ci][k];
                let mut push = |raw: u64, text: &dyn Fn() -> Option<String>| {
                    let id = match cache.get(&raw) {
                        Some(&id) => id,
                        None => {
                            let Some(text) = text() else { return };
                            let next = self.pairs.len() as u32;
                            let id =
                                *self.pair_ids.entry((ci, text.clone())).or_insert_with(|| {
                                    self.pairs.push((ci, text));
                                    self.counts.push([0; 2]);
                                    self.fingerprints.push(0);
                                    next
                                });
                            cache.insert(raw, id);
                            id
                        }
                    };
                    if !out.contains(&id) {
                        out.push(id);
                    }
                };
                let is_level = self.candidates[ci].is_level;
                match column {
                    DynamicColumn::Str(c) => {
                        for ord in c.term_ords(doc) {
                            push(ord, &|| {
                                let mut s = String::new();
                                c.ord_to_str(ord, &mut s).ok()?.then_some(s)
                            });
                        }
                    }
                    DynamicColumn::I64(c) => {
                        for v in c.values_for_doc(doc) {
                            push(v as u64, &|| Some(v.to_string()));
                        }
                    }
                    DynamicColumn::U64(c) => {
                        for v in c.values_for_doc(doc) {
                            push(v, &|| {
                                let level = is_level
                                    .then(|| u8::try_from(v).ok().and_then(Level::from_ordinal))
                                    .flatten();
                                Some(level.map_or_else(|| v.to_string(), |l| l.as_str().into()))
                            });
                        }
                    }
                    DynamicColumn::F64(c) => {
                        for v in c.values_for_doc(doc) {
                            push(v.to_bits(), &|| Some(float_text(v)));
                        }
                    }
                    DynamicColumn::Bool(c) => {
                        for v in c.values_for_doc(doc) {
                            push(u64::from(v), &|| Some(v.to_string()));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Counts records matching `query` for `side`, a uniform sample of `rate` of them.
    fn records(
        &mut self,
        searcher: &Searcher,
        query: &dyn Query,
        side: usize,
        rate: f64,
    ) -> Result<()> {
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(searcher))
            .context("preparing the compare query")?;
        let mut pairs = Vec::new();
        for (seg_ord, reader) in searcher.segment_readers().iter().enumerate() {
            let mut seg = self.open(reader)?;
            let alive = reader.alive_bitset();
            let mut docs = Vec::new();
            weight
                .for_each_no_score(reader, &mut |batch| docs.extend_from_slice(batch))
                .context("reading the compare query's records")?;
            for doc in docs {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                if !sampled(((seg_ord as u64) << 32) | u64::from(doc), rate) {
                    continue;
                }
                pairs.clear();
                self.pairs_of(&mut seg, doc, &mut pairs);
                self.add_unit(
                    side,
                    ((seg_ord as u64) << 32) | u64::from(doc),
                    pairs.clone(),
                );
            }
        }
        Ok(())
    }

    /// Counts traces: every record of `query` whose trace is in `side_of` adds its pairs to its
    /// trace; then each trace counts once per pair.
    fn traces(
        &mut self,
        searcher: &Searcher,
        query: &dyn Query,
        side_of: &HashMap<u64, usize>,
    ) -> Result<()> {
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(searcher))
            .context("preparing the compare query")?;
        let mut per_trace: HashMap<u64, Vec<u32>> = HashMap::with_capacity(side_of.len());
        let mut pairs = Vec::new();
        for reader in searcher.segment_readers() {
            let mut seg = self.open(reader)?;
            let alive = reader.alive_bitset();
            let trace_col = reader
                .fast_fields()
                .str(names::TRACE_ID)
                .context("opening trace ids")?;
            let Some(trace_col) = trace_col else { continue };
            let mut docs: Vec<(DocId, u64)> = Vec::new();
            weight
                .for_each_no_score(reader, &mut |batch| {
                    docs.extend(
                        batch
                            .iter()
                            .filter_map(|&doc| Some((doc, trace_col.term_ords(doc).next()?))),
                    );
                })
                .context("reading the traces' records")?;
            // Ordinal → the trace's low 64 bits, for the traces compared only.
            let trace_of_ord: HashMap<u64, u64> = crate::agg_traces::trace_ids_of_ords(
                &trace_col,
                docs.iter().map(|&(_, ord)| ord).collect(),
            )
            .into_iter()
            .map(|(ord, id)| (ord, id as u64))
            .filter(|(_, low)| side_of.contains_key(low))
            .collect();
            for (doc, ord) in docs {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let Some(&low) = trace_of_ord.get(&ord) else {
                    continue;
                };
                pairs.clear();
                self.pairs_of(&mut seg, doc, &mut pairs);
                // Deduplicated once per trace below: a linear check per pair here made a trace
                // of many records quadratic.
                per_trace.entry(low).or_default().extend_from_slice(&pairs);
            }
        }
        for (low, side) in side_of {
            let mut pairs = per_trace.remove(low).unwrap_or_default();
            pairs.sort_unstable();
            pairs.dedup();
            self.add_unit(*side, *low, pairs);
        }
        Ok(())
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
