//! What a lookup keeps per segment (opened columns, span time orders): segments never change,
//! so a value built once serves every later search until its segment is merged away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::SegmentReader;
use tantivy::index::SegmentId;

/// Per segment, one value built on first use.
pub(crate) struct SegmentCache<T> {
    segments: Mutex<HashMap<SegmentId, Arc<Slot<T>>>>,
}

/// A segment's value once built; locked while it is built.
type Slot<T> = Mutex<Option<Arc<T>>>;

impl<T> Default for SegmentCache<T> {
    fn default() -> Self {
        SegmentCache {
            segments: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> SegmentCache<T> {
    /// The segment's value, built by `build` on first use, once: a lookup that needs it while
    /// another builds it (the first lookups beside `serve`'s warming) waits for that build
    /// rather than doing it again on the other core; a lookup of another segment does not
    /// wait. A failed build leaves the next use to try again.
    pub(crate) fn get_or_build(
        &self,
        reader: &SegmentReader,
        build: impl FnOnce(&SegmentReader) -> tantivy::Result<T>,
    ) -> tantivy::Result<Arc<T>> {
        let slot = self.lock().entry(reader.segment_id()).or_default().clone();
        let mut value = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = &*value {
            return Ok(value.clone());
        }
        let built = Arc::new(build(reader)?);
        *value = Some(built.clone());
        Ok(built)
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

    /// Segments whose value is built.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|slot| slot.lock().is_ok_and(|value| value.is_some()))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<Slot<T>>>> {
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use model::{Record, Span, SpanId, TraceId};

    use super::*;
    use crate::{Batch, Index, Writer, WriterConfig};

    #[test]
    fn a_segment_is_built_once_however_many_ask_at_once_and_again_after_a_failure() {
        let index = Index::create_in_ram().unwrap();
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        let span = Span {
            trace_id: TraceId::from_u128(7),
            span_id: SpanId::from_u64(1),
            name: "op".into(),
            start_ns: 1,
            end_ns: 2,
            ..Span::default()
        };
        writer
            .blocking_send(Batch::new(vec![Record::Span(span)], Vec::new()))
            .unwrap();
        writer.blocking_flush().unwrap();
        writer.shutdown().unwrap();
        let searcher = index.searcher();
        let reader = &searcher.segment_readers()[0];

        let cache: SegmentCache<u32> = SegmentCache::default();
        let failed = cache.get_or_build(reader, |_| {
            Err(tantivy::TantivyError::InternalError("no".into()))
        });
        assert!(failed.is_err());
        assert_eq!(cache.len(), 0);

        let builds = AtomicUsize::new(0);
        let values: Vec<u32> = std::thread::scope(|scope| {
            let askers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let value = cache.get_or_build(reader, |r| {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Ok(r.max_doc())
                        });
                        *value.unwrap()
                    })
                })
                .collect();
            askers.into_iter().map(|a| a.join().unwrap()).collect()
        });
        assert_eq!(values, vec![1; 4]);
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(cache.len(), 1);
    }
}
