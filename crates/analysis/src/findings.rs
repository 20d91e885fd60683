//! The findings: each rule reads the tree, the critical path and self time, and asks the
//! [`Lookup`] only for the few spans it needs (an operation's p50, other traces' roots or
//! callers). Thresholds are in [`Thresholds`]; their sources are in the comments there.

use std::collections::HashMap;

use model::{SpanKind, TraceId};
use serde_json::{Value, json};

use crate::tree::{RootKind, Tree};
use crate::{Continues, Finding, FindingKind, ForeignSpan, Log, Lookup, Segment, Span, SpanQuery};

/// The numbers behind each rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// `slow_span`: at least this many times the operation's p50 ...
    pub slow_p50_factor: f64,
    /// ... with self time at least this share of the root's duration (issue 10).
    pub slow_min_share: f64,
    /// Without an operation p50 (no index, or too few samples): self time at least this share.
    pub slow_min_share_without_p50: f64,
    /// ... and never under this long: a few milliseconds more are not worth a finding, however
    /// many times the usual they are.
    pub slow_min_ns: i64,
    /// `n_plus_one`: at least this many sequential siblings with one statement or name (Sentry's
    /// N+1 DB detector counts 5 repeats).
    pub n_plus_one_min: usize,
    /// `sequential_siblings`: each call at least this long ...
    pub sequential_min_ns: i64,
    /// ... at most this far apart ...
    pub sequential_max_gap_ns: i64,
    /// ... and running them side by side would save at least this share of the root.
    pub sequential_min_saved_share: f64,
    /// How long after a producer, or before a root, a message may be consumed.
    pub async_window_ns: i64,
    /// Most spans a trace asks the index about for broken propagation.
    pub max_lookups: usize,
    /// Most findings of one kind listed (one more says how many were left out).
    pub max_per_kind: usize,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            slow_p50_factor: 5.0,
            slow_min_share: 0.2,
            slow_min_share_without_p50: 0.5,
            slow_min_ns: 50_000_000,
            n_plus_one_min: 5,
            sequential_min_ns: 100_000_000,
            sequential_max_gap_ns: 50_000_000,
            sequential_min_saved_share: 0.2,
            async_window_ns: 60_000_000_000,
            max_lookups: 16,
            max_per_kind: 100,
        }
    }
}

/// Everything the rules read.
pub(crate) struct Context<'a> {
    pub trace_id: Option<TraceId>,
    pub spans: &'a [Span],
    pub logs: &'a [Log],
    pub tree: &'a Tree,
    pub critical_path: &'a [Segment],
    pub self_time: &'a [i64],
    pub lookup: &'a dyn Lookup,
    pub thresholds: &'a Thresholds,
}

pub(crate) struct Skew {
    pub findings: Vec<Finding>,
    /// The spans with Jaeger's adjustment applied, when asked for.
    pub adjusted: Option<Vec<Span>>,
}

/// Every rule (clock skew found beforehand), in a stable order, each kind capped.
pub(crate) fn all(cx: &Context<'_>, skew: Vec<Finding>) -> Vec<Finding> {
    let mut out = Vec::new();
    let add = |out: &mut Vec<Finding>, mut found: Vec<Finding>, kind: FindingKind| {
        let max = cx.thresholds.max_per_kind;
        if found.len() > max {
            let more = found.len() - max;
            found.truncate(max);
            found.push(finding(
                kind,
                cx.spans,
                None,
                format!("{more} more {} findings not listed", kind.as_str()),
                json!({"not_listed": more}),
            ));
        }
        out.extend(found);
    };
    add(&mut out, skew, FindingKind::ClockSkew);
    add(&mut out, error_origin(cx), FindingKind::ErrorOrigin);
    add(&mut out, slow_spans(cx), FindingKind::SlowSpan);
    add(&mut out, n_plus_one(cx), FindingKind::NPlusOne);
    add(
        &mut out,
        sequential_siblings(cx),
        FindingKind::SequentialSiblings,
    );
    let (broken, detached) = propagation(cx);
    add(&mut out, broken, FindingKind::BrokenPropagation);
    add(&mut out, detached, FindingKind::DetachedRoot);
    let (orphans, cycles, duplicates) = malformed(cx);
    add(&mut out, orphans, FindingKind::Orphan);
    add(&mut out, cycles, FindingKind::ParentCycle);
    add(&mut out, duplicates, FindingKind::DuplicateSpanId);
    out
}

pub(crate) fn duplicates_dropped(n: usize) -> Finding {
    Finding {
        kind: FindingKind::DuplicateSpanId,
        span: None,
        span_id: None,
        message: format!(
            "{n} identical cop{} of spans shown once (same id, same content)",
            if n == 1 { "y" } else { "ies" }
        ),
        evidence: json!({"identical_copies_dropped": n}),
        linked_trace_id: None,
    }
}

fn finding(
    kind: FindingKind,
    spans: &[Span],
    span: Option<usize>,
    message: String,
    evidence: Value,
) -> Finding {
    Finding {
        kind,
        span,
        span_id: span.and_then(|i| spans[i].span_id),
        message,
        evidence,
        linked_trace_id: None,
    }
}

fn id_text(span: &Span) -> Value {
    span.span_id.map_or(Value::Null, |id| json!(id.to_string()))
}

fn label(span: &Span) -> String {
    format!("{} {:?}", span.service, span.name)
}

fn ms(ns: i64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// Orphans, cut cycles and duplicate ids, as the tree pass found them.
fn malformed(cx: &Context<'_>) -> (Vec<Finding>, Vec<Finding>, Vec<Finding>) {
    let spans = cx.spans;
    let mut out = Vec::new();
    let (mut cycles, mut duplicates) = (Vec::new(), Vec::new());
    for &i in &cx.tree.orphans {
        let missing = spans[i].parent_span_id.map(|p| p.to_string());
        out.push(finding(
            FindingKind::Orphan,
            spans,
            Some(i),
            format!(
                "{} names parent {} which is not in this trace",
                label(&spans[i]),
                missing.as_deref().unwrap_or("?")
            ),
            json!({"missing_parent_span_id": missing}),
        ));
    }
    for (cut, members) in &cx.tree.cycles {
        let ids: Vec<Value> = members.iter().map(|&m| id_text(&spans[m])).collect();
        cycles.push(finding(
            FindingKind::ParentCycle,
            spans,
            Some(*cut),
            format!(
                "parent links loop through {} span{}; {} is shown as a root",
                members.len(),
                if members.len() == 1 { "" } else { "s" },
                label(&spans[*cut])
            ),
            json!({"cycle": ids}),
        ));
    }
    for &i in &cx.tree.duplicate_ids {
        duplicates.push(finding(
            FindingKind::DuplicateSpanId,
            spans,
            Some(i),
            format!(
                "another span of this trace has the same id as {}; children hang under the first",
                label(&spans[i])
            ),
            json!({"identical": false}),
        ));
    }
    (out, cycles, duplicates)
}

/// Subtree bounds in depth-first order: `x` is under `e` when `pos[e] <= pos[x] < end[e]`.
fn subtree_ranges(tree: &Tree) -> (Vec<usize>, Vec<usize>) {
    let n = tree.order.len();
    let mut pos = vec![0; n];
    for (p, &i) in tree.order.iter().enumerate() {
        pos[i] = p;
    }
    let mut size = vec![1usize; n];
    for &i in tree.order.iter().rev() {
        if let Some(p) = tree.parent[i] {
            size[p] += size[i];
        }
    }
    let end = (0..n).map(|i| pos[i] + size[i]).collect();
    (pos, end)
}

/// The deepest error spans: those with no error below them; else the first exception event;
/// else the span of the first error log.
fn error_origin(cx: &Context<'_>) -> Vec<Finding> {
    let (spans, tree) = (cx.spans, cx.tree);
    let n = spans.len();
    let mut error_below = vec![false; n];
    for &i in tree.order.iter().rev() {
        if let Some(p) = tree.parent[i] {
            error_below[p] |= error_below[i] || spans[i].error.is_some();
        }
    }
    let mut origins: Vec<usize> = (0..n)
        .filter(|&i| spans[i].error.is_some() && !error_below[i])
        .collect();
    if origins.is_empty() {
        let first_exception = (0..n)
            .filter_map(|i| Some((spans[i].exceptions.first()?.time_ns, i)))
            .min();
        let first_error_log = cx
            .logs
            .iter()
            .filter(|l| l.is_error)
            .filter_map(|l| Some((l.time_ns, l.span?)))
            .min();
        origins.extend(first_exception.or(first_error_log).map(|(_, i)| i));
    }
    origins.sort_by_key(|&i| (spans[i].start_ns, i));
    let (pos, end) = subtree_ranges(tree);
    // The nearest ancestor with an error, so a chain is walked in steps of errors only.
    let mut error_above: Vec<Option<usize>> = vec![None; n];
    for &i in &tree.order {
        if let Some(p) = tree.parent[i] {
            error_above[i] = if spans[p].error.is_some() {
                Some(p)
            } else {
                error_above[p]
            };
        }
    }
    origins
        .into_iter()
        .map(|i| {
            let span = &spans[i];
            let mut chain = Vec::new();
            let mut at = error_above[i];
            while let Some(p) = at
                && chain.len() < 50
            {
                chain.push(
                    json!({"span_id": id_text(&spans[p]), "service": spans[p].service,
                    "name": spans[p].name, "message": spans[p].error}),
                );
                at = error_above[p];
            }
            let exception = span
                .exceptions
                .first()
                .map(|e| json!({"type": e.type_name, "message": e.message, "time_ns": e.time_ns}));
            let logs: Vec<Value> = cx
                .logs
                .iter()
                .filter(|l| l.is_error)
                .filter(|l| l.span.is_some_and(|s| pos[i] <= pos[s] && pos[s] < end[i]))
                .take(10)
                .map(|l| json!({"time_ns": l.time_ns, "service": l.service, "body": l.body}))
                .collect();
            let status = span.error.as_deref().filter(|m| !m.is_empty());
            let what = match (status, span.exceptions.first()) {
                (_, Some(e)) if !e.type_name.is_empty() && !e.message.is_empty() => {
                    format!("{}: {}", e.type_name, e.message)
                }
                (Some(m), Some(e)) if !e.type_name.is_empty() => format!("{}: {m}", e.type_name),
                (Some(m), _) => m.to_owned(),
                (None, Some(e)) if !e.type_name.is_empty() => e.type_name.clone(),
                _ => "error".to_owned(),
            };
            let inherited = if chain.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} span{} above inherited it",
                    chain.len(),
                    if chain.len() == 1 { "" } else { "s" }
                )
            };
            finding(
                FindingKind::ErrorOrigin,
                spans,
                Some(i),
                format!("the failure starts at {} ({what}){inherited}", label(span)),
                json!({
                    "status_message": span.error,
                    "exception": exception,
                    "error_ancestors": chain,
                    "error_logs": logs,
                }),
            )
        })
        .collect()
}

/// Spans on the critical path that are abnormally slow for what they are.
fn slow_spans(cx: &Context<'_>) -> Vec<Finding> {
    let (spans, tree, t) = (cx.spans, cx.tree, cx.thresholds);
    let mut critical_ns: HashMap<usize, i64> = HashMap::new();
    for s in cx.critical_path {
        *critical_ns.entry(s.span).or_default() += s.end_ns - s.start_ns;
    }
    let mut candidates: Vec<usize> = critical_ns.keys().copied().collect();
    candidates.sort_by_key(|&i| (spans[i].start_ns, i));
    let mut out = Vec::new();
    for i in candidates {
        let root = tree.root_of(i);
        let root_ns = spans[root].duration();
        if root_ns <= 0 || i == root {
            continue;
        }
        let self_ns = cx.self_time[i];
        let share = self_ns as f64 / root_ns as f64;
        if share < t.slow_min_share || spans[i].duration() < t.slow_min_ns {
            continue;
        }
        let span = &spans[i];
        let p50 = cx
            .lookup
            .operation_p50_ns(&span.service, &span.name)
            .filter(|&p| p > 0);
        let slow = match p50 {
            Some(p50) => span.duration() as f64 >= t.slow_p50_factor * p50 as f64,
            None => share >= t.slow_min_share_without_p50,
        };
        if !slow {
            continue;
        }
        let versus = match p50 {
            Some(p50) => format!(
                "{:.0}× its usual {}",
                span.duration() as f64 / p50 as f64,
                ms(p50)
            ),
            None => "no usual duration known".to_owned(),
        };
        out.push(finding(
            FindingKind::SlowSpan,
            spans,
            Some(i),
            format!(
                "{} took {} ({versus}), {:.0}% of the trace in itself",
                label(span),
                ms(span.duration()),
                share * 100.0
            ),
            json!({
                "duration_ns": span.duration(),
                "operation_p50_ns": p50,
                "self_time_ns": self_ns,
                "self_share_of_root": share,
                "critical_path_ns": critical_ns[&i],
                "critical_share": critical_ns[&i] as f64 / root_ns as f64,
                "statement": span.db_statement,
                "route": span.route,
            }),
        ));
    }
    out
}

/// ≥ N siblings with one name, or one statement, under one parent, one after another.
fn n_plus_one(cx: &Context<'_>) -> Vec<Finding> {
    let (spans, tree, t) = (cx.spans, cx.tree, cx.thresholds);
    let mut out = Vec::new();
    for (parent, children) in tree.children.iter().enumerate() {
        if children.len() < t.n_plus_one_min {
            continue;
        }
        // Grouped by name and, separately, by statement: an ORM may name every query alike
        // with literals in the statement, or name each differently with one statement.
        let mut groups: HashMap<(bool, &str), Vec<usize>> = HashMap::new();
        for &c in children {
            groups
                .entry((false, spans[c].name.as_str()))
                .or_default()
                .push(c);
            if let Some(statement) = spans[c].db_statement.as_deref() {
                groups.entry((true, statement)).or_default().push(c);
            }
        }
        let mut groups: Vec<((bool, &str), Vec<usize>)> = groups.into_iter().collect();
        groups.sort_by_key(|(key, g)| (g[0], key.0));
        let mut reported: Vec<usize> = Vec::new();
        for ((by_statement, key), group) in groups {
            // The longest run in which each starts once the one before has ended.
            let (mut best, mut run): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
            for &c in &group {
                if run
                    .last()
                    .is_some_and(|&l| spans[c].start_ns < spans[l].end_ns())
                {
                    if run.len() > best.len() {
                        best = std::mem::take(&mut run);
                    }
                    run.clear();
                }
                run.push(c);
            }
            if run.len() > best.len() {
                best = run;
            }
            if best.len() < t.n_plus_one_min || reported.contains(&best[0]) {
                continue;
            }
            reported.push(best[0]);
            let total: i64 = best.iter().map(|&c| spans[c].duration()).sum();
            let first = best[0];
            let ids: Vec<Value> = best.iter().take(50).map(|&c| id_text(&spans[c])).collect();
            out.push(finding(
                FindingKind::NPlusOne,
                spans,
                Some(first),
                format!(
                    "{} ran {} {:?} one after another ({} in all): an N+1 loop",
                    label(&spans[parent]),
                    best.len(),
                    key,
                    ms(total)
                ),
                json!({
                    "parent_span_id": id_text(&spans[parent]),
                    "count": best.len(),
                    "total_ns": total,
                    "same": if by_statement { "db.statement" } else { "name" },
                    "statement": spans[first].db_statement,
                    "name": spans[first].name,
                    "span_ids": ids,
                }),
            ));
        }
    }
    out
}

/// The service a call goes to: the service of its first child, else the first peer name.
fn callee(cx: &Context<'_>, i: usize) -> Option<String> {
    cx.tree.children[i]
        .first()
        .map(|&c| cx.spans[c].service.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| cx.spans[i].peer.first().cloned())
}

/// Calls to different services, back to back under one parent, long enough that running them
/// side by side would save a good share of the trace.
fn sequential_siblings(cx: &Context<'_>) -> Vec<Finding> {
    let (spans, tree, t) = (cx.spans, cx.tree, cx.thresholds);
    let mut out = Vec::new();
    for (parent, children) in tree.children.iter().enumerate() {
        let calls: Vec<(usize, String)> = children
            .iter()
            .filter(|&&c| matches!(spans[c].kind, SpanKind::Client | SpanKind::Producer))
            .filter(|&&c| spans[c].duration() >= t.sequential_min_ns)
            .filter_map(|&c| Some((c, callee(cx, c)?)))
            .collect();
        let mut runs: Vec<Vec<(usize, String)>> = Vec::new();
        for call in calls {
            let continues = runs.last().and_then(|r| r.last()).is_some_and(|(l, _)| {
                let gap = spans[call.0].start_ns - spans[*l].end_ns();
                (0..=t.sequential_max_gap_ns).contains(&gap)
            });
            if continues {
                runs.last_mut().expect("a run").push(call);
            } else {
                runs.push(vec![call]);
            }
        }
        let root_ns = spans[tree.root_of(parent)].duration().max(1);
        for run in runs {
            let mut services: Vec<&str> = run.iter().map(|(_, s)| s.as_str()).collect();
            services.sort_unstable();
            services.dedup();
            if services.len() < 2 {
                continue;
            }
            let total: i64 = run.iter().map(|(c, _)| spans[*c].duration()).sum();
            let longest = run
                .iter()
                .map(|(c, _)| spans[*c].duration())
                .max()
                .unwrap_or(0);
            let saved = total - longest;
            if (saved as f64) < t.sequential_min_saved_share * root_ns as f64 {
                continue;
            }
            let calls: Vec<Value> = run
                .iter()
                .map(|(c, s)| {
                    json!({"span_id": id_text(&spans[*c]), "name": spans[*c].name,
                    "callee": s, "duration_ns": spans[*c].duration()})
                })
                .collect();
            out.push(finding(
                FindingKind::SequentialSiblings,
                spans,
                Some(parent),
                format!(
                    "{} calls {} one after another; side by side they could save {}",
                    label(&spans[parent]),
                    services.join(", "),
                    ms(saved)
                ),
                json!({"calls": calls, "total_ns": total, "saved_ns": saved}),
            ));
        }
    }
    out
}

/// Lower-case names a callee may go by, without ports or schemes.
fn peer_names(span: &Span) -> Vec<String> {
    span.peer
        .iter()
        .map(|p| {
            let p = p.split("://").last().unwrap_or(p);
            let host = p.split(['/', '?']).next().unwrap_or(p);
            let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            });
            host.to_ascii_lowercase()
        })
        .filter(|p| !p.is_empty())
        // `payment-service.prod.svc.cluster.local` also names `payment-service`.
        .flat_map(|host| {
            let first = host.split('.').next().unwrap_or("").to_owned();
            let ip = host.chars().all(|c| c.is_ascii_digit() || c == '.');
            let extra = (!ip && !first.is_empty() && first != host).then_some(first);
            std::iter::once(host).chain(extra)
        })
        .collect()
}

/// Why `callee` (a root of another trace) is likely the continuation of `caller`, if it is.
fn continuation(caller: &Span, callee: &Span) -> Option<&'static str> {
    if caller.messaging_message_id.is_some()
        && caller.messaging_message_id == callee.messaging_message_id
    {
        return Some("messaging.message.id");
    }
    let service = callee.service.to_ascii_lowercase();
    if !service.is_empty() && peer_names(caller).contains(&service) {
        return Some("peer");
    }
    if caller.kind == SpanKind::Producer
        && caller.messaging_destination.is_some()
        && caller.messaging_destination == callee.messaging_destination
    {
        return Some("messaging.destination.name");
    }
    if !caller.name.is_empty() && caller.name == callee.name {
        return Some("name");
    }
    None
}

/// What a root must share with `caller` for [`continuation`] to match it, branch by branch: an
/// index checks this before reading records, so it must let through every root that matches.
fn continues(caller: &Span) -> Continues {
    Continues {
        services: peer_names(caller),
        name: Some(caller.name.clone()).filter(|n| !n.is_empty()),
        message_id: caller.messaging_message_id.clone(),
        destination: caller
            .messaging_destination
            .clone()
            .filter(|_| caller.kind == SpanKind::Producer),
        peer_containing: None,
    }
}

/// What a call must share with `root` for [`continuation`] to match the two; a peer name is a
/// lower-cased part of a peer attribute, so the attribute lower-cased contains it.
fn continued(root: &Span) -> Continues {
    Continues {
        services: Vec::new(),
        name: Some(root.name.clone()).filter(|n| !n.is_empty()),
        message_id: root.messaging_message_id.clone(),
        destination: root.messaging_destination.clone(),
        peer_containing: Some(root.service.to_ascii_lowercase()).filter(|s| !s.is_empty()),
    }
}

fn strength(reason: &str) -> u8 {
    match reason {
        "messaging.message.id" => 0,
        "peer" => 1,
        "messaging.destination.name" => 2,
        _ => 3,
    }
}

/// `broken_propagation`: a call with no child here whose callee started a trace of its own;
/// `detached_root`: this trace's root is such a callee, and the call is in another trace.
fn propagation(cx: &Context<'_>) -> (Vec<Finding>, Vec<Finding>) {
    let (spans, tree, t) = (cx.spans, cx.tree, cx.thresholds);
    let mut broken = Vec::new();
    let mut detached = Vec::new();
    let mut calls: Vec<usize> = (0..spans.len())
        .filter(|&i| matches!(spans[i].kind, SpanKind::Client | SpanKind::Producer))
        .filter(|&i| tree.children[i].is_empty() && spans[i].db_system.is_none())
        .collect();
    calls.sort_by_key(|&i| (std::cmp::Reverse(spans[i].duration()), i));
    calls.truncate(t.max_lookups);
    calls.sort_unstable();
    for i in calls {
        let caller = &spans[i];
        let producer = caller.kind == SpanKind::Producer;
        let query = SpanQuery {
            exclude: cx.trace_id,
            roots_only: true,
            kinds: Vec::new(),
            start_from_ns: caller.start_ns,
            start_to_ns: if producer {
                caller.end_ns().saturating_add(t.async_window_ns)
            } else {
                caller.end_ns()
            },
            message_id: caller.messaging_message_id.clone().filter(|_| producer),
            running_at_ns: None,
            continues: Some(continues(caller)),
            limit: 200,
        };
        let best = cx
            .lookup
            .spans(&query)
            .into_iter()
            .filter_map(|f| Some((continuation(caller, &f.span)?, f)))
            .min_by_key(|(why, f)| (strength(why), f.span.start_ns - caller.start_ns));
        let Some((why, found)) = best else { continue };
        let mut out = finding(
            FindingKind::BrokenPropagation,
            spans,
            Some(i),
            format!(
                "{} has no child here: {} continued in trace {} ({} later), the trace context was lost",
                label(caller),
                label(&found.span),
                found.trace_id.map(|t| t.to_string()).unwrap_or_default(),
                ms(found.span.start_ns - caller.start_ns)
            ),
            linked_evidence(caller, &found, why),
        );
        out.linked_trace_id = found.trace_id;
        broken.push(out);
    }
    for &r in &tree.roots {
        let root = &spans[r];
        if tree.root_kind(spans, r) != RootKind::True
            || !matches!(root.kind, SpanKind::Server | SpanKind::Consumer)
        {
            continue;
        }
        let consumer = root.kind == SpanKind::Consumer;
        let query = SpanQuery {
            exclude: cx.trace_id,
            roots_only: false,
            kinds: vec![SpanKind::Client, SpanKind::Producer],
            start_from_ns: root.start_ns.saturating_sub(if consumer {
                t.async_window_ns
            } else {
                10_000_000_000
            }),
            start_to_ns: root.start_ns,
            message_id: root.messaging_message_id.clone().filter(|_| consumer),
            // A caller that had finished before this root started did not call it.
            running_at_ns: Some(root.start_ns),
            continues: Some(continued(root)),
            limit: 200,
        };
        let mut found: Vec<(&'static str, ForeignSpan)> = cx
            .lookup
            .spans(&query)
            .into_iter()
            .filter(|f| f.span.kind == SpanKind::Producer || f.span.end_ns() >= root.start_ns)
            .filter_map(|f| Some((continuation(&f.span, root)?, f)))
            .collect();
        found.sort_by_key(|(why, f)| (strength(why), root.start_ns - f.span.start_ns));
        // The caller must itself have lost its child, else it is someone else's healthy call.
        let Some((why, caller)) =
            found
                .into_iter()
                .find(|(_, f)| match (f.trace_id, f.span.span_id) {
                    (Some(trace), Some(span)) => !cx.lookup.has_children(trace, span),
                    _ => false,
                })
        else {
            continue;
        };
        let mut out = finding(
            FindingKind::DetachedRoot,
            spans,
            Some(r),
            format!(
                "this trace likely continues {} of trace {} ({} earlier), whose context was lost",
                label(&caller.span),
                caller.trace_id.map(|t| t.to_string()).unwrap_or_default(),
                ms(root.start_ns - caller.span.start_ns)
            ),
            linked_evidence(
                &caller.span,
                &ForeignSpan {
                    trace_id: caller.trace_id,
                    span: root.clone(),
                },
                why,
            ),
        );
        out.evidence["caller_span_id"] = id_text(&caller.span);
        out.linked_trace_id = caller.trace_id;
        detached.push(out);
    }
    (broken, detached)
}

fn linked_evidence(caller: &Span, callee: &ForeignSpan, why: &str) -> Value {
    json!({
        "matched_by": why,
        "caller": {"service": caller.service, "name": caller.name, "peer": caller.peer},
        "linked_span_id": id_text(&callee.span),
        "linked_service": callee.span.service,
        "linked_name": callee.span.name,
        "offset_ns": callee.span.start_ns - caller.start_ns,
    })
}

/// Children that start before or end after their parent (a CONSUMER under a PRODUCER may: it
/// runs later by design). With `adjust`, Jaeger's adjustment: a child on another host (or on an
/// unknown one) that does not fit its parent is shifted into it (centred, or only to the
/// parent's start when it is longer), and its same-host descendants move with it.
pub(crate) fn clock_skew(spans: &[Span], tree: &Tree, adjust: bool) -> Skew {
    let n = spans.len();
    let mut delta = vec![0i64; n];
    let mut own = vec![0i64; n];
    let mut findings = Vec::new();
    for &i in &tree.order {
        let Some(p) = tree.parent[i] else { continue };
        let (child, parent) = (&spans[i], &spans[p]);
        let async_child = parent.kind == SpanKind::Producer
            || (child.kind == SpanKind::Consumer && parent.kind != SpanKind::Client);
        if adjust {
            let same_host = child.host.is_some() && child.host == parent.host;
            delta[i] = if same_host || async_child {
                delta[p]
            } else {
                let ps = parent.start_ns + delta[p];
                let (pd, cd) = (parent.duration(), child.duration());
                let d = if cd > pd {
                    (ps - child.start_ns).max(0)
                } else if child.start_ns >= ps && child.end_ns() <= ps + pd {
                    0
                } else {
                    ps + (pd - cd) / 2 - child.start_ns
                };
                own[i] = d;
                d
            };
        }
        if async_child {
            continue;
        }
        let before = parent.start_ns - child.start_ns;
        let after = child.end_ns() - parent.end_ns();
        if before <= 0 && after <= 0 {
            continue;
        }
        let what = match (before > 0, after > 0) {
            (true, true) => format!("starts {} before and ends {} after", ms(before), ms(after)),
            (true, false) => format!("starts {} before", ms(before)),
            _ => format!("ends {} after", ms(after)),
        };
        let adjusted = if own[i] != 0 {
            format!("; shifted by {} (clock-skew adjustment on)", ms(own[i]))
        } else {
            String::new()
        };
        findings.push(finding(
            FindingKind::ClockSkew,
            spans,
            Some(i),
            format!(
                "{} {what} its parent {}{adjusted}",
                label(child),
                label(parent)
            ),
            json!({
                "parent_span_id": id_text(parent),
                "starts_before_parent_ns": before.max(0),
                "ends_after_parent_ns": after.max(0),
                "same_host": child.host.is_some() && child.host == parent.host,
                "adjusted_by_ns": adjust.then_some(own[i]),
            }),
        ));
    }
    let adjusted = adjust.then(|| {
        spans
            .iter()
            .zip(&delta)
            .map(|(s, &d)| {
                let mut s = s.clone();
                s.start_ns = s.start_ns.saturating_add(d);
                for e in &mut s.exceptions {
                    e.time_ns = e.time_ns.saturating_add(d);
                }
                s
            })
            .collect()
    });
    Skew { findings, adjusted }
}
