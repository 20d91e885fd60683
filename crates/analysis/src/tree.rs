//! The span tree as real data makes it: several roots, orphans, duplicate span ids, parent
//! cycles of any length (a span that is its own parent included). Built and walked without
//! recursion, so a chain 100,000 spans deep costs no stack.

use std::collections::HashMap;

use model::SpanId;

use crate::Span;

/// A forest over the spans of one trace. Every span is in it exactly once; following `parent`
/// always ends at a root.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Parent of each span (by index into the input); `None` for roots.
    pub parent: Vec<Option<usize>>,
    /// Children of each span, by start time.
    pub children: Vec<Vec<usize>>,
    /// Depth of each span (roots 0).
    pub depth: Vec<usize>,
    /// The root of each span's tree.
    pub root: Vec<usize>,
    /// Roots: spans without a parent first, then orphans, then spans cut out of a cycle; each
    /// group by start time.
    pub roots: Vec<usize>,
    /// Depth-first order: each root followed by its subtree.
    pub order: Vec<usize>,
    /// Spans whose named parent is not in the trace.
    pub orphans: Vec<usize>,
    /// Spans whose parent link was cut because it closed a cycle (a self-parent included),
    /// with the cycle's members as found.
    pub cycles: Vec<(usize, Vec<usize>)>,
    /// Spans whose id an earlier span already has: they keep their own parent, but children
    /// naming that id hang under the first.
    pub duplicate_ids: Vec<usize>,
}

/// Why a span is a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// It names no parent.
    True,
    /// Its parent is not in the trace.
    Orphan,
    /// Its parent link closed a cycle and was cut.
    Cycle,
}

impl Tree {
    /// Builds the forest. `spans` may come in any order; ties in start time keep input order.
    pub fn build(spans: &[Span]) -> Tree {
        let n = spans.len();
        let mut by_id: HashMap<SpanId, usize> = HashMap::with_capacity(n);
        let mut duplicate_ids = Vec::new();
        for (i, span) in spans.iter().enumerate() {
            if let Some(id) = span.span_id
                && by_id.insert(id, i).is_some()
            {
                duplicate_ids.push(i);
            }
        }
        // The first span with an id is the one its children hang under.
        for (i, span) in spans.iter().enumerate().rev() {
            if let Some(id) = span.span_id {
                by_id.insert(id, i);
            }
        }
        let mut orphans = Vec::new();
        let mut parent: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let named = s.parent_span_id?;
                let found = by_id.get(&named).copied();
                if found.is_none() {
                    orphans.push(i);
                }
                found
            })
            .collect();
        let cycles = cut_cycles(spans, &mut parent);
        let mut children = vec![Vec::new(); n];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(i);
            }
        }
        let by_start = |list: &mut Vec<usize>| list.sort_by_key(|&i| (spans[i].start_ns, i));
        for list in &mut children {
            by_start(list);
        }
        let kind_of = |i: usize| {
            if spans[i].parent_span_id.is_none() {
                RootKind::True
            } else if cycles.iter().any(|(cut, _)| *cut == i) {
                RootKind::Cycle
            } else {
                RootKind::Orphan
            }
        };
        let mut roots: Vec<usize> = (0..n).filter(|&i| parent[i].is_none()).collect();
        let rank = |k: RootKind| match k {
            RootKind::True => 0,
            RootKind::Orphan => 1,
            RootKind::Cycle => 2,
        };
        roots.sort_by_key(|&i| (rank(kind_of(i)), spans[i].start_ns, i));
        let mut order = Vec::with_capacity(n);
        let mut depth = vec![0; n];
        let mut root_of = vec![0; n];
        let mut stack = Vec::new();
        for &root in &roots {
            stack.push((root, 0));
            while let Some((i, d)) = stack.pop() {
                depth[i] = d;
                root_of[i] = root;
                order.push(i);
                stack.extend(children[i].iter().rev().map(|&c| (c, d + 1)));
            }
        }
        debug_assert_eq!(order.len(), n, "a forest reaches every span from a root");
        Tree {
            parent,
            children,
            depth,
            root: root_of,
            roots,
            order,
            orphans,
            cycles,
            duplicate_ids,
        }
    }

    /// Why `i` (a root) is a root.
    pub fn root_kind(&self, spans: &[Span], i: usize) -> RootKind {
        if spans[i].parent_span_id.is_none() {
            RootKind::True
        } else if self.cycles.iter().any(|(cut, _)| *cut == i) {
            RootKind::Cycle
        } else {
            RootKind::Orphan
        }
    }

    /// The root of the tree `i` is in.
    pub fn root_of(&self, i: usize) -> usize {
        self.root[i]
    }
}

/// Follows every parent chain once (colouring spans as on the current path or done) and cuts
/// the link that closes a cycle at the cycle's earliest-starting span, which becomes a root.
fn cut_cycles(spans: &[Span], parent: &mut [Option<usize>]) -> Vec<(usize, Vec<usize>)> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let n = parent.len();
    let mut state = vec![NEW; n];
    let mut cycles = Vec::new();
    let mut path = Vec::new();
    for start in 0..n {
        if state[start] != NEW {
            continue;
        }
        path.clear();
        let mut cur = Some(start);
        while let Some(i) = cur {
            match state[i] {
                NEW => {
                    state[i] = ON_PATH;
                    path.push(i);
                    cur = parent[i];
                }
                ON_PATH => {
                    // The path from `i` on is a cycle.
                    let at = path.iter().position(|&p| p == i).expect("on the path");
                    let members: Vec<usize> = path[at..].to_vec();
                    let cut = *members
                        .iter()
                        .min_by_key(|&&m| (spans[m].start_ns, m))
                        .expect("a cycle has members");
                    parent[cut] = None;
                    cycles.push((cut, members));
                    break;
                }
                _ => break,
            }
        }
        for &p in &path {
            state[p] = DONE;
        }
    }
    cycles
}
