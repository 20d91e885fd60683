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
use std::time::Instant;

use serde_json::{Value, json};
use tantivy::Searcher;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query};

use crate::agg::CountMode;
use crate::doc::{KIND_LOG, KIND_SPAN};
use crate::error::{Context as _, Error, Result};
use crate::field_catalog::Builtin;
use crate::query::{AttrScope, Expr, FieldRef};
use crate::schema::names;
use crate::search::{elapsed_ms, kind_query, within};
use crate::{Index, query};

mod rank;
mod scan;
mod traces;

use scan::Scan;
pub(crate) use traces::TraceCache;
use traces::{Matched, matched};

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
        // The JSON paths with a term in any segment, sorted (one dictionary seek per path;
        // tantivy's `fields_metadata` would stream every term of every attribute, ids
        // included).
        let mut names: BTreeSet<String> = BTreeSet::new();
        let fields = self.fields();
        for reader in self.searcher().segment_readers() {
            for (field, root) in [
                (fields.attributes, names::ATTRIBUTES),
                (fields.resource, names::RESOURCE),
                (fields.events, names::EVENTS),
            ] {
                let paths =
                    crate::json_terms::paths(reader, field).context("listing attribute keys")?;
                names.extend(paths.iter().map(|p| format!("{root}.{p}")));
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
