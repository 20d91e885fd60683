//! Jaeger's v1 query API (`/api/services`, `/api/operations`, `/api/traces`,
//! `/api/dependencies`), as Grafana's Jaeger data source and the Jaeger UI call it. Every
//! answer is the envelope `{"data", "total", "limit", "offset", "errors"}`; times are µs
//! (`start`, `end`) or ms (`endTs`, `lookback`); durations are Go strings.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::duration::parse_go_duration;
use super::search::{self, DEFAULT_LIMIT, TraceQuery, parse_hex_trace_id};
use super::v1_json::{trace_json, v1_trace_id};
use super::{Params, blocking, go_http_error};
use crate::params::now_ns;
use crate::{ApiError, AppState};

/// Search window when `start` is not given.
const DEFAULT_LOOKBACK_NS: i64 = 48 * 3600 * 1_000_000_000;
/// Dependency window when `lookback` is not given, in ms.
const DEFAULT_DEPENDENCY_LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// An [`ApiError`] in the v1 envelope: `{"data":null,...,"errors":[{"code":N,"msg":"..."}]}`.
#[derive(Debug)]
pub(crate) struct V1Error(ApiError);

impl From<ApiError> for V1Error {
    fn from(error: ApiError) -> Self {
        V1Error(error)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let envelope = Envelope {
            data: Value::Null,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![StructuredError {
                code: self.0.status().as_u16(),
                msg: self.0.public_message(),
                trace_id: String::new(),
            }]),
        };
        let body = serde_json::to_string(&envelope).expect("the envelope serialises");
        go_http_error(&self.0, body)
    }
}

/// Jaeger's `structuredResponse`, fields in its order.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope {
    data: Value,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<StructuredError>>,
}

/// Jaeger's `structuredError`: `code` is left out when 0, `traceID` when empty.
#[derive(Debug, Serialize)]
pub(crate) struct StructuredError {
    #[serde(skip_serializing_if = "is_zero")]
    code: u16,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "String::is_empty")]
    trace_id: String,
}

fn is_zero(code: &u16) -> bool {
    *code == 0
}

/// `GET /api/services`: the services that wrote spans.
pub(crate) async fn services(State(state): State<AppState>) -> Result<Json<Envelope>, V1Error> {
    let index = state.index.clone();
    let services = blocking(move || Ok(index.span_services()?)).await?;
    Ok(envelope(json!(services), services.len()))
}

/// `GET /api/services/{service}/operations`: the span names of one service, every kind.
pub(crate) async fn service_operations(
    State(state): State<AppState>,
    service: Result<Path<String>, PathRejection>,
) -> Result<Json<Envelope>, V1Error> {
    let Path(service) = service.map_err(ApiError::from)?;
    let index = state.index.clone();
    let operations = blocking(move || Ok(index.operations(&service)?)).await?;
    let mut names: Vec<String> = operations.into_iter().map(|op| op.name).collect();
    names.dedup();
    Ok(envelope(json!(names), names.len()))
}

/// `GET /api/operations?service=&spanKind=`: `[{"name", "spanKind"}]`, kind `""` when unset.
pub(crate) async fn operations(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Envelope>, V1Error> {
    let params = Params::parse(raw.as_deref());
    let service = params
        .get(&["service"])
        .ok_or_else(|| bad("parameter 'service' is required"))?
        .to_owned();
    let kind = params.get(&["spanKind"]).map(str::to_ascii_lowercase);
    let index = state.index.clone();
    let operations = blocking(move || Ok(index.operations(&service)?)).await?;
    let data: Vec<Value> = operations
        .iter()
        .map(|op| (op.name.as_str(), jaeger_kind(&op.span_kind)))
        .filter(|(_, k)| kind.as_deref().is_none_or(|want| want == *k))
        .map(|(name, k)| json!({"name": name, "spanKind": k}))
        .collect();
    let total = data.len();
    Ok(envelope(json!(data), total))
}

/// `GET /api/traces`: search, or `?traceID=a&traceID=b` to fetch several traces.
pub(crate) async fn find_traces(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Envelope>, V1Error> {
    let params = Params::parse(raw.as_deref());
    let ids: Vec<&str> = params.all("traceID").collect();
    if !ids.is_empty() {
        let ids = ids
            .into_iter()
            .map(|raw| parse_hex_trace_id(raw).map_err(bad))
            .collect::<Result<Vec<_>, _>>()?;
        let index = state.index.clone();
        let (found, missing) = blocking(move || {
            let (mut found, mut missing) = (Vec::new(), Vec::new());
            for id in ids {
                match index.trace(id)? {
                    Some(trace) => found.push(trace_json(&trace)),
                    None => missing.push(StructuredError {
                        code: 0,
                        msg: "trace not found".into(),
                        trace_id: v1_trace_id(id),
                    }),
                }
            }
            Ok((found, missing))
        })
        .await?;
        let mut out = envelope(Value::Array(found), 0);
        if !missing.is_empty() {
            out.0.errors = Some(missing);
        }
        return Ok(out);
    }
    let query = search_query(&params, now_ns())?;
    let index = state.index.clone();
    let traces = blocking(move || {
        let traces = search::find_traces(&index, &query)?;
        Ok(traces.iter().map(trace_json).collect::<Vec<_>>())
    })
    .await?;
    Ok(envelope(Value::Array(traces), 0))
}

/// `GET /api/traces/{traceID}`: `[trace]`, or 404 `trace not found`. `start`/`end` are hints
/// (Grafana sends ms or µs) and are not needed by the index.
pub(crate) async fn get_trace(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Envelope>, V1Error> {
    let Path(raw) = trace_id.map_err(ApiError::from)?;
    let trace_id = parse_hex_trace_id(&raw).map_err(bad)?;
    let index = state.index.clone();
    let trace = blocking(move || Ok(index.trace(trace_id)?)).await?;
    match trace {
        Some(trace) => Ok(envelope(Value::Array(vec![trace_json(&trace)]), 0)),
        None => Err(ApiError::NotFound("trace not found".into()).into()),
    }
}

/// `GET /api/dependencies?endTs=&lookback=&service=`: parent → child service calls.
pub(crate) async fn dependencies(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Envelope>, V1Error> {
    let params = Params::parse(raw.as_deref());
    let now_ms = now_ns() / 1_000_000;
    let end_ms = int_param(&params, "endTs")?.unwrap_or(now_ms);
    let lookback_ms = int_param(&params, "lookback")?.unwrap_or(DEFAULT_DEPENDENCY_LOOKBACK_MS);
    if lookback_ms < 0 {
        return Err(bad("'lookback' must not be negative").into());
    }
    let service = params.get(&["service"]).map(str::to_owned);
    let to_ns = end_ms.saturating_mul(1_000_000).saturating_add(1);
    let from_ns = end_ms.saturating_sub(lookback_ms).saturating_mul(1_000_000);
    let index = state.index.clone();
    let links = blocking(move || Ok(index.dependencies(from_ns, to_ns)?)).await?;
    let data: Vec<Value> = links
        .iter()
        .filter(|l| {
            service
                .as_deref()
                .is_none_or(|s| l.parent == s || l.child == s)
        })
        .map(|l| json!({"parent": l.parent, "child": l.child, "callCount": l.call_count}))
        .collect();
    Ok(envelope(json!(data), 0))
}

/// The search parameters of `/api/traces` (Jaeger's `parseTraceQueryParams`).
fn search_query(params: &Params, now_ns: i64) -> Result<TraceQuery, ApiError> {
    let service = params
        .get(&["service"])
        .ok_or_else(|| bad("parameter 'service' is required"))?;
    let mut tags = BTreeMap::new();
    for text in params.all("tags") {
        let map: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| bad(format!("malformed parameter tags: {e}")))?;
        tags.extend(map);
    }
    for pair in params.all("tag") {
        let (key, value) = pair.split_once(':').ok_or_else(|| {
            bad(format!(
                "malformed 'tag' parameter, expecting key:value, received: {pair}"
            ))
        })?;
        tags.insert(key.to_owned(), value.to_owned());
    }
    let end_ns = match int_param(params, "end")? {
        Some(us) => us.saturating_mul(1000),
        None => now_ns,
    };
    let start_ns = match int_param(params, "start")? {
        Some(us) => us.saturating_mul(1000),
        None => now_ns - DEFAULT_LOOKBACK_NS,
    };
    let duration = |name: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(&[name])
            .map(|text| {
                parse_go_duration(text)
                    .map_err(|e| bad(format!("unable to parse param '{name}': {e}")))
            })
            .transpose()
    };
    let duration_min_ns = duration("minDuration")?;
    let duration_max_ns = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (duration_min_ns, duration_max_ns)
        && max < min
    {
        return Err(bad("'maxDuration' should be greater than 'minDuration'"));
    }
    let limit = match int_param(params, "limit")? {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => DEFAULT_LIMIT,
    };
    Ok(TraceQuery {
        service: Some(service.to_owned()),
        operation: params.get(&["operation"]).map(str::to_owned),
        tags,
        start_min_ns: Some(start_ns),
        start_max_ns: Some(end_ns),
        duration_min_ns: duration_min_ns.filter(|&ns| ns > 0),
        duration_max_ns: duration_max_ns.filter(|&ns| ns > 0),
        limit,
    })
}

/// `{"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}`.
fn envelope(data: Value, total: usize) -> Json<Envelope> {
    Json(Envelope {
        data,
        total,
        limit: 0,
        offset: 0,
        errors: None,
    })
}

/// The stored span kind (`SERVER`) as Jaeger writes it (`server`; `""` when unspecified).
pub(super) fn jaeger_kind(kind: &str) -> &'static str {
    match kind {
        "SERVER" => "server",
        "CLIENT" => "client",
        "PRODUCER" => "producer",
        "CONSUMER" => "consumer",
        "INTERNAL" => "internal",
        _ => "",
    }
}

fn int_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(&[name])
        .map(|text| {
            text.trim()
                .parse::<i64>()
                .map_err(|e| bad(format!("unable to parse param '{name}': {e}")))
        })
        .transpose()
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}
