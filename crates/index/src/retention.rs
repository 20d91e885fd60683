//! Retention: records older than `max_age` (by their own timestamp) are deleted, then the
//! oldest records while the index is bigger than `max_size`. Deletes go through the writer (the
//! one owner of the `IndexWriter`) as ordinary commits that keep the sources' checkpoints, so
//! deleted records leave every view at the next reader reload, and the segments that held them
//! are merged (or dropped whole) so their bytes come back.
//!
//! Finding "the oldest N records" needs no sort of the whole index: the cutoff is found by a
//! binary search over time, each step a count of a range over the `timestamp` fast field.

use std::ops::Bound;
use std::time::Duration;

use tantivy::collector::Count;
use tantivy::query::{Query, RangeQuery};
use tantivy::{DateTime, Term};

use crate::Index;
use crate::error::{Context as _, Result};
use crate::schema::names;

/// What to keep; `Default` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete records whose own timestamp is older than this.
    pub max_age: Option<Duration>,
    /// Then delete the oldest records while the index directory is bigger than this many bytes.
    pub max_size: Option<u64>,
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Records deleted by this pass.
    pub deleted: u64,
    /// Records older than this (ns since the epoch) are gone, when anything was deleted.
    pub cutoff_ns: Option<i64>,
    /// Bytes of the index directory before and after the pass.
    pub size_before: u64,
    pub size_after: u64,
}

impl RetentionPolicy {
    pub fn is_off(&self) -> bool {
        self.max_age.is_none() && self.max_size.is_none()
    }
}

impl Index {
    /// Bytes of the files in the index directory (0 for an in-memory index).
    pub fn size_on_disk(&self) -> Result<u64> {
        self.dir_bytes(|_| true)
    }

    /// Bytes of the files that the committed segments use (plus the metadata): the size of the
    /// index once the files that merges made obsolete are collected. Retention measures this,
    /// so a merge still running (whose inputs and output are both on disk for a moment) does
    /// not make it delete more than it must.
    pub fn live_size(&self) -> Result<u64> {
        let live: std::collections::HashSet<String> = self
            .tantivy()
            .searchable_segment_metas()
            .context("listing segments")?
            .iter()
            .map(|meta| meta.id().uuid_string())
            .collect();
        self.dir_bytes(|name| {
            let segment = name.split('.').next().unwrap_or("");
            live.contains(segment) || name == "meta.json" || name == ".managed.json"
        })
    }

    /// Bytes of the files of the index directory whose name `counts`.
    fn dir_bytes(&self, counts: impl Fn(&str) -> bool) -> Result<u64> {
        let Some(dir) = self.path() else {
            return Ok(0);
        };
        let entries = std::fs::read_dir(dir)
            .map_err(tantivy::TantivyError::from)
            .context("listing the index directory")?;
        let mut total = 0;
        for entry in entries.flatten() {
            if counts(&entry.file_name().to_string_lossy())
                && let Ok(meta) = entry.metadata()
                && meta.is_file()
            {
                total += meta.len();
            }
        }
        Ok(total)
    }

    /// [`Index::live_size`] less the share of deleted records in the segments (what it will be
    /// once the merges that drop them are done).
    pub(crate) fn live_size_without_deleted(&self) -> Result<u64> {
        let metas = self
            .tantivy()
            .searchable_segment_metas()
            .context("listing segments")?;
        let max_doc: u64 = metas.iter().map(|m| u64::from(m.max_doc())).sum();
        let num_docs: u64 = metas.iter().map(|m| u64::from(m.num_docs())).sum();
        let size = self.live_size()?;
        if max_doc == 0 {
            return Ok(size);
        }
        Ok((u128::from(size) * u128::from(num_docs) / u128::from(max_doc)) as u64)
    }

    /// Records with a timestamp before `cutoff_ns`.
    pub(crate) fn count_before(&self, cutoff_ns: i64) -> Result<u64> {
        let query = older_than(self, cutoff_ns);
        let n = self
            .searcher()
            .search(&*query, &Count)
            .context("counting old records")?;
        Ok(n as u64)
    }

    /// The smallest time `t` such that at least `n` records are older than `t`; `None` for an
    /// empty index. With `n` at least the number of records, every record is older than `t`.
    pub(crate) fn cutoff_for_oldest(&self, n: u64) -> Result<Option<i64>> {
        let Some((min, max)) = self.time_extent()? else {
            return Ok(None);
        };
        // count_before(lo) < n <= count_before(hi) holds throughout.
        let (mut lo, mut hi) = (min, max.saturating_add(1));
        if self.count_before(hi)? < n {
            return Ok(Some(hi));
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.count_before(mid)? >= n {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(Some(hi))
    }

    /// The earliest and latest record timestamps.
    fn time_extent(&self) -> Result<Option<(i64, i64)>> {
        let searcher = self.searcher();
        let mut extent: Option<(i64, i64)> = None;
        for segment in searcher.segment_readers() {
            if segment.num_docs() == 0 {
                continue;
            }
            let column = segment
                .fast_fields()
                .date(names::TIMESTAMP)
                .context("reading the timestamp column")?;
            let (lo, hi) = (
                column.min_value().into_timestamp_nanos(),
                column.max_value().into_timestamp_nanos(),
            );
            extent = Some(match extent {
                Some((a, b)) => (a.min(lo), b.max(hi)),
                None => (lo, hi),
            });
        }
        Ok(extent)
    }
}

/// `timestamp < cutoff_ns`.
pub(crate) fn older_than(index: &Index, cutoff_ns: i64) -> Box<dyn Query> {
    let term = Term::from_field_date(
        index.fields().timestamp,
        DateTime::from_timestamp_nanos(cutoff_ns),
    );
    Box::new(RangeQuery::new(Bound::Unbounded, Bound::Excluded(term)))
}
