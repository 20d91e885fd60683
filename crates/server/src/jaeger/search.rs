//! Jaeger trace search over the index, with the semantics of Jaeger's reference store: a trace
//! matches when one of its spans meets every condition at once; a tag `k=v` holds when `v`
//! equals the string form of `k` in the span's attributes, its scope's, its resource's, one of
//! its events' or one of its links' (`error`, `span.kind`, `span.status`, `scope.name`,
//! `scope.version` and `resource.<k>` are special); the whole trace comes back.
//!
//! The index narrows the spans (service, name, time, duration, and each tag's value as text or
//! as the number or boolean it reads as); each candidate is then checked exactly on its stored
//! record, so numbers compare by their text as Jaeger does (`0123` is not `123`).

use std::collections::{BTreeMap, HashSet};

use index::field_catalog::Builtin;
use index::query::{AttrPath, AttrScope, Comparison, Expr, FieldRef, Op, RecordKind};
use index::{Index, SearchRequest, Trace, TraceSearchRequest};
use model::{StatusCode, TraceId};
use serde_json::Value;

use crate::ApiError;

/// Traces returned when the request names no limit (Jaeger's default).
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Most traces one search returns: each comes back whole.
pub(crate) const MAX_LIMIT: usize = 10_000;
/// Candidate spans read per page when tags must be checked on the stored records.
const PAGE: usize = 2_000;

/// One Jaeger search, in nanoseconds; `None` and empty mean "no condition".
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Key → value, compared as strings.
    pub tags: BTreeMap<String, String>,
    pub start_min_ns: Option<i64>,
    /// Inclusive, as in Jaeger's stores.
    pub start_max_ns: Option<i64>,
    pub duration_min_ns: Option<i64>,
    pub duration_max_ns: Option<i64>,
    pub limit: usize,
}

/// The traces matching `query`, newest first, each whole.
pub(crate) fn find_traces(index: &Index, query: &TraceQuery) -> Result<Vec<Trace>, ApiError> {
    let ids = matching_trace_ids(index, query)?;
    let mut traces = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(trace) = index.trace(id)? {
            traces.push(trace);
        }
    }
    Ok(traces)
}

/// A trace id as Jaeger clients send it: 1 to 32 hex digits, leading zeros optional.
pub(crate) fn parse_hex_trace_id(raw: &str) -> Result<TraceId, String> {
    let bad = || format!("invalid trace id {raw:?}: give 1 to 32 hex digits");
    if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let value = u128::from_str_radix(raw, 16).map_err(|_| bad())?;
    TraceId::from_u128(value).ok_or_else(|| format!("invalid trace id {raw:?}: it is zero"))
}

fn matching_trace_ids(index: &Index, query: &TraceQuery) -> Result<Vec<TraceId>, ApiError> {
    let expr = prefilter(query);
    let compile = || index::query::compile(&expr, index.fields(), 0);
    let from_ns = query.start_min_ns;
    let to_ns = query.start_max_ns.map(|ns| ns.saturating_add(1));
    let limit = query.limit.clamp(1, MAX_LIMIT);

    if query.tags.is_empty() {
        // Nothing to check on the records: the index's trace search answers from fast fields.
        let found = index.search_traces_compiled(
            compile()?,
            &TraceSearchRequest {
                query: "",
                from_ns,
                to_ns,
                limit,
                now_ns: None,
            },
        )?;
        return Ok(found
            .traces
            .iter()
            .filter_map(|t| parse_hex_trace_id(&t.trace_id).ok())
            .collect());
    }

    let mut ids = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = index.search_compiled(
            compile()?,
            &SearchRequest {
                query: "",
                from_ns,
                to_ns,
                limit: PAGE,
                cursor: cursor.as_deref(),
                now_ns: None,
            },
        )?;
        for hit in &page.hits {
            let Some(trace_id) = hit.get("trace_id").and_then(Value::as_str) else {
                continue;
            };
            if seen.contains(trace_id) || !span_matches(hit, &query.tags) {
                continue;
            }
            seen.insert(trace_id.to_owned());
            if let Ok(id) = parse_hex_trace_id(trace_id) {
                ids.push(id);
            }
            if ids.len() >= limit {
                return Ok(ids);
            }
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
}

/// Whether a stored span record (or a search hit of one) holds every tag.
pub(crate) fn span_matches(record: &Value, tags: &BTreeMap<String, String>) -> bool {
    tags.iter()
        .all(|(key, value)| tag_holds(record, key, value))
}

fn tag_holds(record: &Value, key: &str, value: &str) -> bool {
    let status = record
        .pointer("/status/code")
        .and_then(Value::as_str)
        .unwrap_or("UNSET");
    match key {
        "error" => match parse_go_bool(value) {
            Some(true) => status == "ERROR",
            Some(false) => status == "OK",
            None => false,
        },
        "span.status" => status == status_name(value),
        "span.kind" => {
            // A search hit keeps the span's kind under `span_kind`; a stored record under `kind`.
            let kind = record
                .get("span_kind")
                .or_else(|| record.get("kind"))
                .and_then(Value::as_str)
                .unwrap_or("UNSPECIFIED");
            kind == kind_name(value)
        }
        "scope.name" | "scope.version" => {
            let field = &key["scope.".len()..];
            let found = record
                .get("scope")
                .and_then(|s| s.get(field))
                .and_then(Value::as_str)
                .unwrap_or("");
            found == value
        }
        _ => {
            if let Some(resource_key) = key.strip_prefix("resource.") {
                return holds_in(record.get("resource"), resource_key, value);
            }
            let in_list = |list: &str| {
                record
                    .get(list)
                    .and_then(Value::as_array)
                    .is_some_and(|items| {
                        items
                            .iter()
                            .any(|item| holds_in(item.get("attributes"), key, value))
                    })
            };
            holds_in(record.get("attributes"), key, value)
                || holds_in(record.pointer("/scope/attributes"), key, value)
                || holds_in(record.get("resource"), key, value)
                || in_list("events")
                || in_list("links")
        }
    }
}

/// `attributes[key]`, in its string form, equals `value`.
fn holds_in(attributes: Option<&Value>, key: &str, value: &str) -> bool {
    attributes
        .and_then(|a| a.get(key))
        .is_some_and(|found| string_form(found) == value)
}

/// An attribute value as Go's `pcommon.Value.AsString` writes it.
pub(crate) fn string_form(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{f}"),
            _ => n.to_string(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `ok`/`error` in any case to the stored status; anything else is unset.
fn status_name(text: &str) -> &'static str {
    match text.to_ascii_uppercase().as_str() {
        "OK" => "OK",
        "ERROR" => "ERROR",
        _ => "UNSET",
    }
}

/// A span kind in any case to the stored kind; anything else is unspecified.
fn kind_name(text: &str) -> &'static str {
    match text.to_ascii_uppercase().as_str() {
        "CLIENT" => "CLIENT",
        "SERVER" => "SERVER",
        "PRODUCER" => "PRODUCER",
        "CONSUMER" => "CONSUMER",
        "INTERNAL" => "INTERNAL",
        _ => "UNSPECIFIED",
    }
}

/// The spans a search can match, in the query language (so names resolve through the index's
/// field catalog): the service, operation and duration conditions, and each tag as a superset
/// of the spans holding it (the stored records are checked after).
fn prefilter(query: &TraceQuery) -> Expr {
    let mut all = vec![builtin(
        Builtin::Kind,
        Op::Eq,
        index::query::Value::Kind(RecordKind::Span),
    )];
    if let Some(service) = query.service.as_deref().filter(|s| !s.is_empty()) {
        all.push(builtin(Builtin::Service, Op::Eq, text(service)));
    }
    if let Some(operation) = query.operation.as_deref().filter(|s| !s.is_empty()) {
        all.push(builtin(Builtin::Name, Op::Eq, text(operation)));
    }
    let duration = |op, ns| builtin(Builtin::Duration, op, index::query::Value::Duration(ns));
    all.extend(query.duration_min_ns.map(|ns| duration(Op::Ge, ns)));
    all.extend(query.duration_max_ns.map(|ns| duration(Op::Le, ns)));
    for (key, value) in &query.tags {
        all.push(tag_prefilter(key, value));
    }
    Expr::And(all)
}

/// What every span holding the tag `key=value` matches.
fn tag_prefilter(key: &str, value: &str) -> Expr {
    let status = |code| builtin(Builtin::Status, Op::Eq, index::query::Value::Status(code));
    let nothing = || Expr::Not(Box::new(Expr::All));
    match key {
        "error" => match parse_go_bool(value) {
            Some(true) => status(StatusCode::Error),
            Some(false) => status(StatusCode::Ok),
            None => nothing(),
        },
        "span.status" => status(match status_name(value) {
            "OK" => StatusCode::Ok,
            "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        }),
        "span.kind" => builtin(Builtin::SpanKind, Op::Eq, text(kind_name(value))),
        // Scope names are not indexed; the record check decides.
        "scope.name" | "scope.version" => Expr::All,
        _ => {
            let value = index::query::bare_attribute_value(value);
            let scopes: &[AttrScope] = match key.strip_prefix("resource.") {
                Some(_) => &[AttrScope::Resource],
                // Attributes, resource and span events; links; the instrumentation scope.
                None => &[AttrScope::Any, AttrScope::Links, AttrScope::Instrumentation],
            };
            let path = key.strip_prefix("resource.").unwrap_or(key);
            Expr::Or(
                scopes
                    .iter()
                    .map(|&scope| {
                        Expr::Compare(Comparison {
                            field: FieldRef::Attribute(AttrPath {
                                scope,
                                path: path.to_owned(),
                            }),
                            op: Op::Eq,
                            value: value.clone(),
                        })
                    })
                    .collect(),
            )
        }
    }
}

fn builtin(field: Builtin, op: Op, value: index::query::Value) -> Expr {
    Expr::Compare(Comparison {
        field: FieldRef::Builtin(field),
        op,
        value,
    })
}

fn text(s: &str) -> index::query::Value {
    index::query::Value::Str(s.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags_found_in_every_place_as_strings() {
        let span = json!({
            "kind": "SERVER", "status": {"code": "ERROR", "message": ""},
            "attributes": {"a": "x", "n": 123},
            "resource": {"service.name": "svc", "r": 72.5},
            "scope": {"name": "lib", "version": "1.0", "attributes": {"s": true}},
            "events": [{"name": "e", "attributes": {"ev": "y"}}],
            "links": [{"attributes": {"l": 7}}],
        });
        let all = tags(&[
            ("a", "x"),
            ("n", "123"),
            ("r", "72.5"),
            ("s", "true"),
            ("ev", "y"),
            ("l", "7"),
            ("error", "true"),
            ("span.kind", "server"),
            ("span.status", "error"),
            ("scope.name", "lib"),
            ("scope.version", "1.0"),
            ("resource.r", "72.5"),
        ]);
        assert!(span_matches(&span, &all));
        for (k, v) in [
            ("n", "0123"),
            ("resource.a", "x"),
            ("error", "false"),
            ("error", "maybe"),
            ("span.kind", "client"),
            ("a", "X"),
            ("missing", ""),
        ] {
            assert!(!span_matches(&span, &tags(&[(k, v)])), "{k}={v}");
        }
    }

    #[test]
    fn hex_trace_ids() {
        assert_eq!(
            parse_hex_trace_id("227").unwrap().to_string(),
            "00000000000000000000000000000227"
        );
        assert!(parse_hex_trace_id("0").is_err());
        assert!(parse_hex_trace_id("xyz").is_err());
        assert!(parse_hex_trace_id(&"1".repeat(33)).is_err());
    }
}
