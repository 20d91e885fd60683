//! What a lookup keeps per segment (opened columns, span time orders): segments never change,
//! so a value built once serves every later search until its segment is merged away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::SegmentReader;
use tantivy::index::SegmentId;

/// Per segment, one value built on first use.
pub(crate) struct SegmentCache<T> {
    segments: Mutex<HashMap<SegmentId, Arc<T>>>,
}

impl<T> Default for SegmentCache<T> {
    fn default() -> Self {
        SegmentCache {
            segments: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> SegmentCache<T> {
    /// The segment's value, built by `build` on first use. Built outside the lock: a concurrent
    /// lookup of another segment need not wait; two lookups of a new segment may both build
    /// it, and both get the same answer.
    pub(crate) fn get_or_build(
        &self,
        reader: &SegmentReader,
        build: impl FnOnce(&SegmentReader) -> tantivy::Result<T>,
    ) -> tantivy::Result<Arc<T>> {
        let id = reader.segment_id();
        if let Some(value) = self.lock().get(&id) {
            return Ok(value.clone());
        }
        let value = Arc::new(build(reader)?);
        self.lock().insert(id, value.clone());
        Ok(value)
    }

    /// Forgets the segments that are not in `searcher` (merged away or deleted).
    pub(crate) fn retain(&self, searcher: &tantivy::Searcher) {
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        self.lock().retain(|id, _| live.contains(id));
    }

    /// Segments held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<T>>> {
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }
}
