//! What the spans say about the system, read from fast fields (span kinds from their terms):
//! the services that wrote spans, each service's operations (span name and kind), and the
//! service dependency graph (which service's spans are parents of which service's spans).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{AllQuery, BooleanQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader, Term};

use crate::Index;
use crate::doc::KIND_SPAN;
use crate::error::{Context as _, Result};
use crate::schema::names;
use crate::search::{kind_query, within};

/// A span name and kind seen for a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    pub name: String,
    /// `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER`, `INTERNAL` or `UNSPECIFIED`.
    pub span_kind: String,
}

/// Calls from one service to another: spans of `child` whose parent span is in `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

impl Index {
    /// Distinct services of spans (log-only services are left out), sorted.
    pub fn span_services(&self) -> Result<Vec<String>> {
        let query = kind_query(self.fields(), KIND_SPAN);
        let pairs = self
            .searcher()
            .search(&*query, &DistinctStrs(&[names::SERVICE]))
            .context("listing span services")?;
        Ok(pairs
            .into_iter()
            .filter_map(|mut v| v.pop())
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// Distinct (span name, span kind) pairs of `service`'s spans, sorted. `span_kind` has
    /// no column: the names are collected once per kind the index has a term of.
    pub fn operations(&self, service: &str) -> Result<Vec<Operation>> {
        let fields = self.fields();
        let mut span_kinds = BTreeSet::new();
        for reader in self.searcher().segment_readers() {
            span_kinds.extend(
                crate::json_terms::keyword_values(reader, fields.span_kind)
                    .context("listing span kinds")?,
            );
        }
        let mut out = BTreeSet::new();
        for span_kind in span_kinds {
            let query = BooleanQuery::intersection(vec![
                kind_query(fields, KIND_SPAN),
                Box::new(TermQuery::new(
                    Term::from_field_text(fields.service, service),
                    IndexRecordOption::Basic,
                )),
                Box::new(TermQuery::new(
                    Term::from_field_text(fields.span_kind, &span_kind),
                    IndexRecordOption::Basic,
                )),
            ]);
            let names = self
                .searcher()
                .search(&query, &DistinctStrs(&[names::NAME]))
                .context("listing operations")?;
            out.extend(names.into_iter().filter_map(|mut v| {
                Some(Operation {
                    name: v.pop()?,
                    span_kind: span_kind.clone(),
                })
            }));
        }
        Ok(out.into_iter().collect())
    }

    /// Parent → child service pairs over the spans that started in `[from_ns, to_ns)`, with how
    /// many child spans have a parent span of the other service. Calls within one service are
    /// counted too (as Jaeger does); a span whose parent is not in the range is not.
    pub fn dependencies(&self, from_ns: i64, to_ns: i64) -> Result<Vec<DependencyLink>> {
        let fields = self.fields();
        let spans: Box<dyn Query> = Box::new(BooleanQuery::intersection(vec![
            Box::new(AllQuery),
            kind_query(fields, KIND_SPAN),
        ]));
        let query = within(fields, spans, Some(from_ns), Some(to_ns));
        let edges = self
            .searcher()
            .search(&*query, &SpanEdges)
            .context("collecting span parents")?;
        let mut service_of: HashMap<(u128, u64), u32> = HashMap::with_capacity(edges.spans.len());
        for span in &edges.spans {
            service_of
                .entry((span.trace, span.span))
                .or_insert(span.service);
        }
        let mut counts: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for span in &edges.spans {
            let Some(parent) = span.parent else { continue };
            if let Some(&parent_service) = service_of.get(&(span.trace, parent)) {
                *counts.entry((parent_service, span.service)).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent: edges.services[parent as usize].clone(),
                child: edges.services[child as usize].clone(),
                call_count,
            })
            .filter(|link| !link.parent.is_empty() && !link.child.is_empty())
            .collect())
    }
}

/// Distinct tuples of the first value of each named string fast field (a missing value reads
/// as ""), sorted.
struct DistinctStrs<'a>(&'a [&'static str]);

struct DistinctStrsSegment {
    columns: Vec<Option<StrColumn>>,
    seen: HashSet<Vec<Option<u64>>>,
}

impl Collector for DistinctStrs<'_> {
    type Fruit = BTreeSet<Vec<String>>;
    type Child = DistinctStrsSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<DistinctStrsSegment> {
        let fast = reader.fast_fields();
        let columns = self
            .0
            .iter()
            .map(|name| fast.str(name))
            .collect::<tantivy::Result<_>>()?;
        Ok(DistinctStrsSegment {
            columns,
            seen: HashSet::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BTreeSet<Vec<String>>>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for DistinctStrsSegment {
    type Fruit = BTreeSet<Vec<String>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let key = self
            .columns
            .iter()
            .map(|column| column.as_ref()?.term_ords(doc).next())
            .collect();
        self.seen.insert(key);
    }

    fn harvest(self) -> BTreeSet<Vec<String>> {
        self.seen
            .into_iter()
            .map(|ords| {
                ords.into_iter()
                    .zip(&self.columns)
                    .map(|(ord, column)| match (ord, column) {
                        (Some(ord), Some(column)) => {
                            let mut out = String::new();
                            let _ = column.ord_to_str(ord, &mut out);
                            out
                        }
                        _ => String::new(),
                    })
                    .collect()
            })
            .collect()
    }
}

/// Every span as (trace id, span id, parent span id, service), with services interned.
struct SpanEdges;

#[derive(Debug, Default)]
struct Edges {
    services: Vec<String>,
    spans: Vec<EdgeSpan>,
}

#[derive(Debug, Clone, Copy)]
struct EdgeSpan {
    trace: u128,
    span: u64,
    parent: Option<u64>,
    service: u32,
}

struct SpanEdgesSegment {
    trace_id: Option<StrColumn>,
    span_id: Option<Column<u64>>,
    parent_span_id: Option<Column<u64>>,
    service: Option<StrColumn>,
    /// Service term ordinal → index into `edges.services`.
    service_index: HashMap<u64, u32>,
    edges: Edges,
}

impl Collector for SpanEdges {
    type Fruit = Edges;
    type Child = SpanEdgesSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SpanEdgesSegment> {
        let fast = reader.fast_fields();
        Ok(SpanEdgesSegment {
            trace_id: fast.str(names::TRACE_ID)?,
            span_id: fast.column_opt(names::SPAN_ID)?,
            parent_span_id: fast.column_opt(names::PARENT_SPAN_ID)?,
            service: fast.str(names::SERVICE)?,
            service_index: HashMap::new(),
            edges: Edges::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Edges>) -> tantivy::Result<Edges> {
        let mut merged = Edges::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        for fruit in fruits {
            let remap: Vec<u32> = fruit
                .services
                .into_iter()
                .map(|name| {
                    let next = merged.services.len() as u32;
                    *index.entry(name.clone()).or_insert_with(|| {
                        merged.services.push(name);
                        next
                    })
                })
                .collect();
            merged
                .spans
                .extend(fruit.spans.into_iter().map(|span| EdgeSpan {
                    service: remap[span.service as usize],
                    ..span
                }));
        }
        Ok(merged)
    }
}

impl SegmentCollector for SpanEdgesSegment {
    type Fruit = Edges;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(trace) = hex_id(&self.trace_id, doc) else {
            return;
        };
        let Some(span) = self.span_id.as_ref().and_then(|c| c.first(doc)) else {
            return;
        };
        let parent = self.parent_span_id.as_ref().and_then(|c| c.first(doc));
        let service_ord = self.service.as_ref().and_then(|c| c.term_ords(doc).next());
        // A span without a service is interned under an ordinal no term has.
        let key = service_ord.unwrap_or(u64::MAX);
        let service = match self.service_index.get(&key) {
            Some(&i) => i,
            None => {
                let mut name = String::new();
                if let (Some(ord), Some(column)) = (service_ord, &self.service) {
                    let _ = column.ord_to_str(ord, &mut name);
                }
                let i = self.edges.services.len() as u32;
                self.edges.services.push(name);
                self.service_index.insert(key, i);
                i
            }
        };
        self.edges.spans.push(EdgeSpan {
            trace,
            span,
            parent,
            service,
        });
    }

    fn harvest(self) -> Edges {
        self.edges
    }
}

/// A trace id from its string fast field.
fn hex_id(column: &Option<StrColumn>, doc: DocId) -> Option<u128> {
    let column = column.as_ref()?;
    let ord = column.term_ords(doc).next()?;
    let mut text = String::new();
    column.ord_to_str(ord, &mut text).ok()?;
    u128::from_str_radix(&text, 16).ok()
}
