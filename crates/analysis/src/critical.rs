//! The critical path as Jaeger UI defines it (`TracePage/CriticalPath`): segments, not whole
//! spans. From a root, walk back from its end: the last-finishing child is critical, then the
//! child that finished (strictly) before that one started, and so on; parent time not covered
//! by a critical child is the parent's own segment. Children are first clipped to their parent
//! (and dropped when wholly outside it), a CONSUMER under a PRODUCER is not waited for. The walk
//! keeps an explicit cursor instead of Jaeger's recursion.

use model::SpanKind;

use crate::tree::Tree;
use crate::{Segment, Span};

/// The segments of every root's tree, ordered by time; each root's segments tile it exactly.
pub fn critical_path(spans: &[Span], tree: &Tree) -> Vec<Segment> {
    let n = spans.len();
    // Clipped intervals (None = left out), visited parents first (depth-first order).
    let mut interval: Vec<Option<(i64, i64)>> = vec![None; n];
    for &i in &tree.order {
        let (start, end) = (spans[i].start_ns, spans[i].end_ns());
        interval[i] = match tree.parent[i] {
            None => Some((start, end)),
            Some(p) => {
                let non_blocking =
                    spans[i].kind == SpanKind::Consumer && spans[p].kind == SpanKind::Producer;
                match interval[p] {
                    Some((ps, pe)) if !non_blocking => clip(start, end, ps, pe),
                    _ => None,
                }
            }
        };
    }
    // Children by end time, latest first: the last-finishing child before a time R is then the
    // first one past a cursor that only moves forward (R only decreases for a given parent).
    let mut kids: Vec<Vec<usize>> = tree
        .children
        .iter()
        .map(|list| {
            let mut kept: Vec<usize> = list
                .iter()
                .copied()
                .filter(|&c| interval[c].is_some())
                .collect();
            kept.sort_by_key(|&c| (std::cmp::Reverse(interval[c].map(|(_, e)| e)), c));
            kept
        })
        .collect();
    let mut next = vec![0usize; n];
    let mut segments = Vec::new();
    for &root in &tree.roots {
        let mut found = Vec::new();
        let mut cur = root;
        let mut returning: Option<i64> = None;
        loop {
            let (start, end) = interval[cur].expect("the walk stays on kept spans");
            let section_end = returning.unwrap_or(end);
            let list = &mut kids[cur];
            let cursor = &mut next[cur];
            while *cursor < list.len() {
                let c_end = interval[list[*cursor]].expect("kept").1;
                if returning.is_none_or(|r| c_end < r) {
                    break;
                }
                *cursor += 1;
            }
            if *cursor < list.len() {
                let child = list[*cursor];
                *cursor += 1;
                let child_end = interval[child].expect("kept").1;
                push(&mut found, spans, cur, child_end, section_end);
                cur = child;
                returning = None;
            } else {
                push(&mut found, spans, cur, start, section_end);
                if cur == root {
                    break;
                }
                returning = Some(start);
                cur = tree.parent[cur].expect("a non-root has a parent");
            }
        }
        found.reverse();
        segments.extend(found);
    }
    segments.sort_by_key(|s| (s.start_ns, s.end_ns));
    segments
}

fn push(found: &mut Vec<Segment>, spans: &[Span], i: usize, start_ns: i64, end_ns: i64) {
    if start_ns < end_ns {
        found.push(Segment {
            span: i,
            span_id: spans[i].span_id,
            start_ns,
            end_ns,
        });
    }
}

/// A child's interval clipped to its parent's, as Jaeger's `sanitizeOverFlowingChildren`.
fn clip(start: i64, end: i64, ps: i64, pe: i64) -> Option<(i64, i64)> {
    if start >= ps {
        if start >= pe {
            None
        } else {
            Some((start, end.min(pe)))
        }
    } else if end <= ps {
        None
    } else {
        Some((ps, end.min(pe)))
    }
}
