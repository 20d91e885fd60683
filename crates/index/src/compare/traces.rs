//! Which trace each record belongs to, per segment (from the `trace_low64` postings, kept
//! between compares), and the records and traces a query matches.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::index::SegmentId;
use tantivy::postings::BlockSegmentPostings;
use tantivy::query::{EnableScoring, Query};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, Searcher, SegmentOrdinal, SegmentReader};

use crate::error::{Context as _, Result};

/// The records a query matches: how many, their traces, and (when asked) the records.
pub(super) struct Matched {
    pub(super) records: u64,
    /// The low 64 bits of their trace ids.
    pub(super) traces: HashSet<u64>,
    /// Per segment ordinal, the matching records, ascending (only when asked for).
    pub(super) docs: Vec<(SegmentOrdinal, Vec<DocId>)>,
}

/// One segment's records by trace, from the inverted index of the trace ids' low 64 bits (its
/// terms are plain numbers: no compressed dictionary block to open, unlike the `trace_id`
/// column's).
pub(crate) struct SegmentTraces {
    /// Per record, the index of its trace's term in `lows` (`u32::MAX`: no trace).
    pub(super) term_of_doc: Vec<u32>,
    /// Per term, the low 64 bits of a trace id.
    pub(super) lows: Vec<u64>,
}

/// Every segment's records by trace, kept from one compare to the next (a field of the
/// `Index`): a segment never changes, and reading its trace index is the costliest part of a
/// compare on a large index. Holds the segments searched last only.
#[derive(Default)]
pub(crate) struct TraceCache(Mutex<Vec<(SegmentId, Arc<SegmentTraces>)>>);

impl TraceCache {
    /// Every segment's records by trace, in the searcher's segment order.
    pub(super) fn get(&self, searcher: &Searcher, field: Field) -> Result<Vec<Arc<SegmentTraces>>> {
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
pub(super) fn matched(
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
