//! Jaeger's api_v3 over HTTP (`/api/v3/services`, `/api/v3/operations`, `/api/v3/traces`,
//! `/api/v3/traces/{trace_id}`): traces as OTLP JSON under `{"result": {"resourceSpans": ..}}`,
//! times in RFC 3339, durations as Go strings, errors as
//! `{"error": {"httpCode": N, "message": ".."}}`. Parameters take their camelCase names
//! (canonical since Jaeger v2.19) and the snake_case ones older clients and Grafana send.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use index::Trace;
use serde_json::{Map, Value, json};

use super::duration::parse_go_duration;
use super::search::{self, DEFAULT_LIMIT, TraceQuery, parse_go_bool, parse_hex_trace_id};
use super::v1::jaeger_kind;
use super::{Params, blocking, go_http_error};
use crate::{ApiError, AppState};
use index::json_object as object;

/// An [`ApiError`] as the api_v3 gateway writes it.
#[derive(Debug)]
pub(crate) struct V3Error(ApiError);

impl From<ApiError> for V3Error {
    fn from(error: ApiError) -> Self {
        V3Error(error)
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "httpCode": self.0.status().as_u16(),
            "message": self.0.public_message(),
        }});
        go_http_error(&self.0, body.to_string())
    }
}

/// `GET /api/v3/services`: `{"services": [..]}`.
pub(crate) async fn services(State(state): State<AppState>) -> Result<Json<Value>, V3Error> {
    let index = state.index.clone();
    let services = blocking(move || Ok(index.span_services()?)).await?;
    Ok(Json(json!({"services": services})))
}

/// `GET /api/v3/operations?service=&spanKind=`: `{"operations": [{"name", "spanKind"}]}`; an
/// unspecified kind reads `internal`, as Jaeger's gateway writes it.
pub(crate) async fn operations(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, V3Error> {
    let params = Params::parse(raw.as_deref());
    let service = params
        .get(&["service"])
        .ok_or_else(|| bad("parameter 'service' is required"))?
        .to_owned();
    let kind = params
        .get(&["spanKind", "span_kind"])
        .map(str::to_ascii_lowercase);
    let index = state.index.clone();
    let operations = blocking(move || Ok(index.operations(&service)?)).await?;
    let operations: Vec<Value> = operations
        .iter()
        .map(|op| (op.name.as_str(), jaeger_kind(&op.span_kind)))
        .filter(|(_, k)| kind.as_deref().is_none_or(|want| want == *k))
        .map(|(name, k)| json!({"name": name, "spanKind": if k.is_empty() { "internal" } else { k }}))
        .collect();
    Ok(Json(json!({"operations": operations})))
}

/// `GET /api/v3/traces/{trace_id}`: the trace as OTLP JSON, or 404.
pub(crate) async fn get_trace(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, V3Error> {
    let Path(raw_id) = trace_id.map_err(ApiError::from)?;
    let trace_id = parse_hex_trace_id(&raw_id)
        .map_err(|e| bad(format!("malformed parameter trace_id: {e}")))?;
    let params = Params::parse(raw.as_deref());
    // Hints only: checked so a client learns of a typo, not needed to find the trace.
    time_param(&params, &["startTime", "start_time"])?;
    time_param(&params, &["endTime", "end_time"])?;
    bool_param(&params, &["rawTraces", "raw_traces"])?;
    let index = state.index.clone();
    let trace = blocking(move || Ok(index.trace(trace_id)?)).await?;
    Ok(Json(traces_json(trace.as_slice())?))
}

/// `GET /api/v3/traces?query.service_name=&query.start_time_min=&...`: every matching trace,
/// whole, in one OTLP JSON body; 404 when none matches.
pub(crate) async fn find_traces(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, V3Error> {
    let params = Params::parse(raw.as_deref());
    let query = search_query(&params)?;
    let index = state.index.clone();
    let traces = blocking(move || search::find_traces(&index, &query)).await?;
    Ok(Json(traces_json(&traces)?))
}

fn search_query(params: &Params) -> Result<TraceQuery, ApiError> {
    const MIN: &[&str] = &["query.startTimeMin", "query.start_time_min"];
    const MAX: &[&str] = &["query.startTimeMax", "query.start_time_max"];
    let (Some(start_min_ns), Some(start_max_ns)) =
        (time_param(params, MIN)?, time_param(params, MAX)?)
    else {
        return Err(bad(
            "query.start_time_min and query.start_time_max are required",
        ));
    };
    if start_min_ns > start_max_ns {
        return Err(bad(
            "query.start_time_min must be before query.start_time_max",
        ));
    }
    let duration = |names: &[&str]| -> Result<Option<i64>, ApiError> {
        params
            .get(names)
            .map(|text| {
                parse_go_duration(text)
                    .map_err(|e| bad(format!("malformed parameter {}: {e}", names[1])))
            })
            .transpose()
    };
    let duration_min_ns = duration(&["query.durationMin", "query.duration_min"])?;
    let duration_max_ns = duration(&["query.durationMax", "query.duration_max"])?;
    let depth_names = [
        "query.searchDepth",
        "query.search_depth",
        "query.num_traces",
        "query.numTraces",
    ];
    let limit = match params.get(&depth_names) {
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|e| bad(format!("malformed parameter query.search_depth: {e}")))?,
        None => 0,
    };
    bool_param(params, &["query.rawTraces", "query.raw_traces"])?;
    let mut tags = BTreeMap::new();
    for text in params.all("query.attributes") {
        let map: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| bad(format!("malformed parameter query.attributes: {e}")))?;
        tags.extend(map);
    }
    Ok(TraceQuery {
        service: params
            .get(&["query.serviceName", "query.service_name"])
            .map(str::to_owned),
        operation: params
            .get(&[
                "query.operationName",
                "query.operation_name",
                "query.span_name",
            ])
            .map(str::to_owned),
        tags,
        start_min_ns: Some(start_min_ns),
        start_max_ns: Some(start_max_ns),
        duration_min_ns: duration_min_ns.filter(|&ns| ns > 0),
        duration_max_ns: duration_max_ns.filter(|&ns| ns > 0),
        limit: usize::try_from(limit)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_LIMIT),
    })
}

/// An RFC 3339 time parameter. A `+` offset sent without URL encoding arrives as a space.
fn time_param(params: &Params, names: &[&str]) -> Result<Option<i64>, ApiError> {
    let Some(text) = params.get(names) else {
        return Ok(None);
    };
    decode::time::parse_datetime(text)
        .or_else(|| decode::time::parse_datetime(&text.replace(' ', "+")))
        .map(Some)
        .ok_or_else(|| {
            bad(format!(
                "malformed parameter {}: {text:?} is not an RFC 3339 time",
                names[names.len() - 1]
            ))
        })
}

fn bool_param(params: &Params, names: &[&str]) -> Result<Option<bool>, ApiError> {
    params
        .get(names)
        .map(|text| {
            parse_go_bool(text).ok_or_else(|| {
                bad(format!(
                    "malformed parameter {}: {text:?} is not a boolean",
                    names[names.len() - 1]
                ))
            })
        })
        .transpose()
}

/// `{"result": {"resourceSpans": [..]}}` for the traces, one resource/scope block per distinct
/// resource and scope within each trace; no traces is Jaeger's 404.
pub(super) fn traces_json(traces: &[Trace]) -> Result<Value, ApiError> {
    if traces.is_empty() {
        return Err(ApiError::NotFound("No traces found".into()));
    }
    let mut resource_spans = Vec::new();
    for trace in traces {
        // (resource, [(scope, [span])]) in order of first appearance.
        let mut blocks: Vec<(&Value, Vec<ScopeBlock>)> = Vec::new();
        for span in &trace.spans {
            let record = &span.record;
            let resource = record.get("resource").unwrap_or(&Value::Null);
            let scope = scope_json(record.get("scope"));
            let at = match blocks.iter().position(|(r, _)| *r == resource) {
                Some(at) => at,
                None => {
                    blocks.push((resource, Vec::new()));
                    blocks.len() - 1
                }
            };
            let scopes = &mut blocks[at].1;
            let at = match scopes.iter().position(|(s, _)| *s == scope) {
                Some(at) => at,
                None => {
                    scopes.push((scope, Vec::new()));
                    scopes.len() - 1
                }
            };
            scopes[at]
                .1
                .push(span_json(span.start_ns, span.duration_ns, record));
        }
        for (resource, scopes) in blocks {
            let mut resource_json = Map::new();
            insert_attributes(&mut resource_json, Some(resource));
            let scope_spans: Vec<Value> = scopes
                .into_iter()
                .map(|(scope, spans)| object([("scope", scope), ("spans", Value::Array(spans))]))
                .collect();
            resource_spans.push(object([
                ("resource", Value::Object(resource_json)),
                ("scopeSpans", Value::Array(scope_spans)),
            ]));
        }
    }
    let result = object([("resourceSpans", Value::Array(resource_spans))]);
    Ok(object([("result", result)]))
}

/// A scope (as OTLP JSON) and its spans.
type ScopeBlock = (Value, Vec<Value>);

fn scope_json(scope: Option<&Value>) -> Value {
    let mut out = Map::new();
    for key in ["name", "version"] {
        if let Some(text) = scope.and_then(|s| s.get(key)).and_then(Value::as_str)
            && !text.is_empty()
        {
            out.insert(key.into(), json!(text));
        }
    }
    insert_attributes(&mut out, scope.and_then(|s| s.get("attributes")));
    Value::Object(out)
}

/// An OTLP JSON span; zero and empty fields are left out, as Jaeger's marshaller does.
fn span_json(start_ns: i64, duration_ns: i64, record: &Value) -> Value {
    let mut out = Map::new();
    let text = |key: &str| {
        record
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    for (from, to) in [
        ("trace_id", "traceId"),
        ("span_id", "spanId"),
        ("parent_span_id", "parentSpanId"),
        ("trace_state", "traceState"),
        ("name", "name"),
    ] {
        if let Some(value) = text(from) {
            out.insert(to.into(), json!(value));
        }
    }
    let kind = match text("kind") {
        Some("INTERNAL") => 1,
        Some("SERVER") => 2,
        Some("CLIENT") => 3,
        Some("PRODUCER") => 4,
        Some("CONSUMER") => 5,
        _ => 0,
    };
    if kind != 0 {
        out.insert("kind".into(), json!(kind));
    }
    insert_time(&mut out, "startTimeUnixNano", start_ns);
    insert_time(
        &mut out,
        "endTimeUnixNano",
        start_ns.saturating_add(duration_ns),
    );
    insert_attributes(&mut out, record.get("attributes"));
    let events: Vec<Value> = list(record, "events")
        .map(|event| {
            let mut e = Map::new();
            let time_ns = event
                .get("time")
                .and_then(Value::as_str)
                .and_then(decode::time::parse_datetime)
                .unwrap_or(0);
            insert_time(&mut e, "timeUnixNano", time_ns);
            if let Some(name) = event
                .get("name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                e.insert("name".into(), json!(name));
            }
            insert_attributes(&mut e, event.get("attributes"));
            Value::Object(e)
        })
        .collect();
    if !events.is_empty() {
        out.insert("events".into(), json!(events));
    }
    let links: Vec<Value> = list(record, "links")
        .map(|link| {
            let mut l = Map::new();
            for (from, to) in [
                ("trace_id", "traceId"),
                ("span_id", "spanId"),
                ("trace_state", "traceState"),
            ] {
                if let Some(value) = link
                    .get(from)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    l.insert(to.into(), json!(value));
                }
            }
            insert_attributes(&mut l, link.get("attributes"));
            Value::Object(l)
        })
        .collect();
    if !links.is_empty() {
        out.insert("links".into(), json!(links));
    }
    let mut status = Map::new();
    let code = match record.pointer("/status/code").and_then(Value::as_str) {
        Some("OK") => 1,
        Some("ERROR") => 2,
        _ => 0,
    };
    if code != 0 {
        status.insert("code".into(), json!(code));
    }
    if let Some(message) = record
        .pointer("/status/message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        status.insert("message".into(), json!(message));
    }
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

fn list<'a>(record: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    record
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Nanoseconds as OTLP JSON writes 64-bit integers: a decimal string; zero is left out.
fn insert_time(out: &mut Map<String, Value>, key: &str, ns: i64) {
    if ns != 0 {
        out.insert(key.into(), json!(ns.to_string()));
    }
}

/// `"attributes": [{"key", "value": AnyValue}]` when there are any.
fn insert_attributes(out: &mut Map<String, Value>, attributes: Option<&Value>) {
    let Some(map) = attributes
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return;
    };
    out.insert("attributes".into(), key_values(map));
}

fn key_values(map: &Map<String, Value>) -> Value {
    Value::Array(
        map.iter()
            .map(|(k, v)| json!({"key": k, "value": any_value(v)}))
            .collect(),
    )
}

/// A stored attribute value as an OTLP JSON `AnyValue` (64-bit integers as strings).
fn any_value(value: &Value) -> Value {
    match value {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::Array(items) => {
            json!({"arrayValue": {"values": items.iter().map(any_value).collect::<Vec<_>>()}})
        }
        Value::Object(map) => json!({"kvlistValue": {"values": key_values(map)}}),
        Value::Null => json!({}),
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}
