//! Where an index's bytes go: per component (term dictionary, postings, positions, fast fields,
//! fieldnorms) and field, and the doc store, from tantivy's space usage. For the benches and
//! `examples/index_space.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::Index;
use crate::error::{Context as _, Result};

/// An index's bytes by component and field.
#[derive(Debug, Clone, Default)]
pub struct SpaceReport {
    pub total_bytes: u64,
    pub segments: usize,
    pub docs: u64,
    pub store_bytes: u64,
    /// Component (`terms`, `postings`, `positions`, `fast`, `fieldnorms`) → field → bytes.
    pub components: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

impl Index {
    /// Where the bytes of the searchable segments go.
    pub fn space_report(&self) -> Result<SpaceReport> {
        let searcher = self.searcher();
        let usage = searcher
            .space_usage()
            .map_err(tantivy::TantivyError::from)
            .context("computing the space usage")?;
        let mut report = SpaceReport {
            total_bytes: usage.total().get_bytes(),
            segments: usage.segments().len(),
            docs: searcher.num_docs(),
            ..SpaceReport::default()
        };
        for segment in usage.segments() {
            let parts = [
                ("terms", segment.termdict()),
                ("postings", segment.postings()),
                ("positions", segment.positions()),
                ("fast", segment.fast_fields()),
                ("fieldnorms", segment.fieldnorms()),
            ];
            for (name, per_field) in parts {
                let fields = report.components.entry(name).or_default();
                for field in per_field.fields() {
                    *fields.entry(field.field_name().to_owned()).or_default() +=
                        field.total().get_bytes();
                }
            }
            report.store_bytes += segment.store().total().get_bytes();
        }
        Ok(report)
    }
}

impl SpaceReport {
    /// A line for the whole, then a line per component with its `top` largest fields (MB).
    pub fn summary(&self, top: usize) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        let mut out = format!(
            "{:.2} MB in {} segments ({} docs); doc store {:.2} MB\n",
            mb(self.total_bytes),
            self.segments,
            self.docs,
            mb(self.store_bytes)
        );
        for (name, fields) in &self.components {
            let total: u64 = fields.values().sum();
            let mut largest: Vec<(&String, &u64)> =
                fields.iter().filter(|(_, b)| **b > 0).collect();
            largest.sort_by_key(|t| std::cmp::Reverse(*t.1));
            let largest: Vec<String> = largest
                .iter()
                .take(top)
                .map(|(f, b)| format!("{f} {:.2}", mb(**b)))
                .collect();
            let _ = writeln!(out, "  {name} {:.2} MB: {}", mb(total), largest.join(", "));
        }
        out
    }
}
