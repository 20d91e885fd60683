//! The native JSON API: one trace, search, aggregate, "widen from one trace" (related),
//! services, and the health probes. Index calls are blocking (tantivy), so they run on the
//! blocking pool.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use index::MAX_SEARCH_LIMIT;
use model::{TraceId, TraceRef};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::params::{now_ns, parse_duration, parse_query, time_range};
use crate::{ApiError, AppState};

/// Hits per page of search unless `limit` says otherwise.
const DEFAULT_SEARCH_LIMIT: usize = 100;
/// Results of compare unless `limit` says otherwise.
const DEFAULT_COMPARE_LIMIT: usize = 20;
/// Rows of a trace list unless `limit` says otherwise.
const DEFAULT_TRACE_LIST_LIMIT: usize = 100;
/// Distinct values of the attribute that `related` widens on.
const MAX_RELATED_VALUES: usize = 20;
/// Sample traces `related` names.
const RELATED_SAMPLE_TRACES: usize = 10;
/// Hits looked at to choose the sample traces.
const RELATED_SAMPLE_CANDIDATES: usize = 500;
/// Nearest traces among which the sample traces with an error are looked for.
const RELATED_SAMPLE_CANDIDATES_TRACES: usize = 40;
/// Time buckets `related` aims for when no interval is given.
const RELATED_TARGET_BUCKETS: u64 = 60;

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TraceListParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// `time`, `-time` (the default), `duration`, `-duration`.
    sort: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CompareParams {
    #[serde(default)]
    q: String,
    baseline: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// `traces` (the default) or `records`.
    count: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AggregateParams {
    #[serde(default)]
    q: String,
    /// Comma-separated fields or attributes, at most two.
    by: Option<String>,
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Most values per field.
    size: Option<usize>,
    /// `records` (the default) or `traces` (distinct traces per bucket).
    count: Option<String>,
    /// `true`: duration count/min/max/avg/sum and p50, p90, p95, p99 per bucket.
    #[serde(default)]
    stats: bool,
    /// Comma-separated duration percentiles per bucket, e.g. `50,90,95,99` or `p50,p99`.
    percentiles: Option<String>,
}

/// The percentiles `stats=true` adds (those of `threadline agg --stats`).
pub const STATS_PERCENTILES: [f64; 4] = [50.0, 90.0, 95.0, 99.0];
/// Most percentiles one aggregation asks for.
const MAX_PERCENTILES: usize = 10;

#[derive(Debug, Deserialize)]
pub struct RelatedParams {
    attribute: Option<String>,
    window: Option<String>,
    interval: Option<String>,
    limit: Option<usize>,
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the index answers and the writer accepts work (a flush of nothing is a no-op
/// for the writer, and fails once its thread has stopped). While an error pauses indexing the
/// answer is a 503 naming the cause (searches still answer).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let num_docs = state.index.num_docs();
    if let Some(pause) = state.writer.status().paused {
        let for_s = pause.since.elapsed().unwrap_or_default().as_secs();
        return Err(ApiError::Unavailable(format!(
            "indexing is paused (for {for_s} s; searches still answer): {}; it resumes by itself once that is fixed",
            pause.cause
        )));
    }
    match tokio::time::timeout(Duration::from_secs(2), state.writer.flush()).await {
        Ok(Ok(_)) => Ok(Json(json!({"status": "ready", "num_docs": num_docs}))),
        Ok(Err(e)) => Err(ApiError::Unavailable(e.to_string())),
        Err(_) => Err(ApiError::Unavailable(
            "the index writer is busy; try again".into(),
        )),
    }
}

/// `?adjust_clock_skew=true` applies Jaeger's clock-skew adjustment before the analysis (each
/// shift is reported in a `clock_skew` finding); off by default.
#[derive(Debug, Deserialize)]
pub struct TraceParams {
    #[serde(default)]
    adjust_clock_skew: bool,
}

pub async fn trace(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
    params: Result<Query<TraceParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = trace_id?;
    let Query(params) = params?;
    let trace_id = parse_trace_id(&raw)?;
    let index = state.index.clone();
    let json = blocking(move || {
        let Some(trace) = index.trace(trace_id)? else {
            return Ok(None);
        };
        let options = analysis::Options {
            adjust_clock_skew: params.adjust_clock_skew,
            ..analysis::Options::default()
        };
        let analysis = index.analyze(&trace, &options);
        Ok(Some(trace.into_json_with(&analysis)))
    })
    .await?;
    json.map(Json).ok_or_else(|| not_found(trace_id))
}

pub async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params?;
    let now = now_ns();
    let (from_ns, to_ns) = time_range(p.from.as_deref(), p.to.as_deref(), now)?;
    let limit = p.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {}; got {limit}",
            MAX_SEARCH_LIMIT
        )));
    }
    let expr = parse_query(&state, &p.q)?;
    let index = state.index.clone();
    let response = blocking(move || {
        let query = index::query::compile(&expr, index.fields(), now)?;
        let request = index::SearchRequest {
            query: &p.q,
            from_ns,
            to_ns,
            limit,
            cursor: p.cursor.as_deref().filter(|c| !c.is_empty()),
            now_ns: Some(now),
        };
        Ok(index.search_compiled(query, &request)?)
    })
    .await?;
    Ok(Json(response.into_json()))
}

/// Traces with a span or log matching `q`, one row per trace.
pub async fn trace_list(
    State(state): State<AppState>,
    params: Result<Query<TraceListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params?;
    let now = now_ns();
    let (from_ns, to_ns) = time_range(p.from.as_deref(), p.to.as_deref(), now)?;
    let limit = p.limit.unwrap_or(DEFAULT_TRACE_LIST_LIMIT);
    if limit == 0 || limit > index::MAX_TRACE_LIST_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {}; got {limit}",
            index::MAX_TRACE_LIST_LIMIT
        )));
    }
    let sort: index::TraceSort = p.sort.as_deref().unwrap_or("").trim().parse()?;
    let expr = parse_query(&state, &p.q)?;
    let index = state.index.clone();
    let response = blocking(move || {
        let query = index::query::compile(&expr, index.fields(), now)?;
        let request = index::TraceListRequest {
            query: &p.q,
            from_ns,
            to_ns,
            limit,
            sort,
            now_ns: Some(now),
        };
        Ok(index.list_traces_compiled(query, &request)?)
    })
    .await?;
    Ok(Json(response.to_json()))
}

pub async fn aggregate(
    State(state): State<AppState>,
    params: Result<Query<AggregateParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params?;
    let now = now_ns();
    let (from_ns, to_ns) = time_range(p.from.as_deref(), p.to.as_deref(), now)?;
    let by: Vec<String> =
        p.by.as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    let interval = p
        .interval
        .as_deref()
        .map(|v| parse_duration("interval", v))
        .transpose()?;
    if by.is_empty() && interval.is_none() {
        return Err(ApiError::BadRequest(
            "give `by` (e.g. by=service or by=card.bin,service), `interval` (e.g. interval=10m), or both".into(),
        ));
    }
    if by.len() > 2 {
        return Err(ApiError::BadRequest(format!(
            "`by` takes at most two fields; got {}",
            by.len()
        )));
    }
    if interval.is_some_and(|i| i < Duration::from_millis(1)) {
        return Err(ApiError::BadRequest(
            "`interval` must be at least 1ms".into(),
        ));
    }
    let count: index::CountMode = p.count.as_deref().unwrap_or("").trim().parse()?;
    let mut percentiles = match p.percentiles.as_deref() {
        Some(list) => parse_percentiles(list)?,
        None => Vec::new(),
    };
    if p.stats && percentiles.is_empty() {
        percentiles = STATS_PERCENTILES.to_vec();
    }
    let expr = parse_query(&state, &p.q)?;
    let index = state.index.clone();
    let response = blocking(move || {
        let query = index::query::compile(&expr, index.fields(), now)?;
        let request = index::AggRequest {
            query: &p.q,
            from_ns,
            to_ns,
            now_ns: Some(now),
            by,
            interval,
            size: p.size.unwrap_or(0).min(10_000),
            duration_stats: p.stats,
            duration_percentiles: percentiles,
            count,
        };
        Ok(index.aggregate_compiled(query, &request)?)
    })
    .await?;
    Ok(Json(response.to_json()))
}

/// What is different about the selection `q` against `baseline`: attribute/value pairs ranked by
/// over-representation.
pub async fn compare(
    State(state): State<AppState>,
    params: Result<Query<CompareParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params?;
    let now = now_ns();
    let (from_ns, to_ns) = time_range(p.from.as_deref(), p.to.as_deref(), now)?;
    let limit = p.limit.unwrap_or(DEFAULT_COMPARE_LIMIT);
    if limit == 0 || limit > index::MAX_COMPARE_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {}; got {limit}",
            index::MAX_COMPARE_LIMIT
        )));
    }
    let count = match p.count.as_deref().map(str::trim) {
        None | Some("") | Some("traces") => index::CompareUnit::Traces,
        Some("records") => index::CompareUnit::Records,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown count {other:?}: use traces (the default) or records"
            )));
        }
    };
    if p.q.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "`q` is required: the selection to explain, e.g. q=decline_code = do_not_honor".into(),
        ));
    }
    let selection = parse_query(&state, &p.q)?;
    let baseline = p
        .baseline
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .map(|b| parse_query(&state, b))
        .transpose()?;
    let index = state.index.clone();
    let response = blocking(move || {
        let request = index::CompareRequest {
            query: &p.q,
            baseline: p.baseline.as_deref(),
            from_ns,
            to_ns,
            limit,
            count,
            now_ns: Some(now),
        };
        Ok(index.compare_exprs(&selection, baseline.as_ref(), &request)?)
    })
    .await?;
    Ok(Json(response.to_json()))
}

pub async fn services(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let index = state.index.clone();
    let services = blocking(move || Ok(index.services()?)).await?;
    Ok(Json(services.to_json()))
}

/// Widen from one trace: the values of `attribute` in the trace, then every span and log with
/// one of those values within ±`window` of the trace, counted by value, service and time.
pub async fn related(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
    params: Result<Query<RelatedParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = trace_id?;
    let Query(p) = params?;
    let trace_id = parse_trace_id(&raw)?;
    let attribute = p
        .attribute
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "`attribute` is required: the key to widen on, e.g. attribute=user.id".into(),
            )
        })?;
    if !is_query_name(attribute) {
        return Err(ApiError::BadRequest(format!(
            "`attribute` {attribute:?} cannot be queried: use letters, digits and _ . - : / @"
        )));
    }
    let window = parse_duration("window", p.window.as_deref().unwrap_or("1h"))?;
    let interval = p
        .interval
        .as_deref()
        .map(|v| parse_duration("interval", v))
        .transpose()?;
    let limit = p.limit.unwrap_or(20).clamp(1, 1000);
    let attribute = attribute.to_owned();
    let state2 = state.clone();
    let out =
        blocking(move || related_blocking(&state2, trace_id, &attribute, window, interval, limit))
            .await?;
    Ok(Json(out))
}

fn related_blocking(
    state: &AppState,
    trace_id: TraceId,
    attribute: &str,
    window: Duration,
    interval: Option<Duration>,
    limit: usize,
) -> Result<Value, ApiError> {
    let index = &state.index;
    let trace = index.trace(trace_id)?.ok_or_else(|| not_found(trace_id))?;
    if let Ok(index::field_catalog::Resolved::Builtin(f)) = index::field_catalog::resolve(attribute)
        && !f.groupable
    {
        return Err(ApiError::BadRequest(format!(
            "`attribute` {attribute:?} cannot be widened on (a {} per record): use an attribute \
             such as user.id, or service, name, status, level, span_kind",
            f.value_type
        )));
    }
    if !index.has_field(attribute)? {
        return Err(ApiError::BadRequest(format!(
            "`attribute`: {}",
            index.field_hint(attribute)?
        )));
    }
    let mut values: Vec<Value> = Vec::new();
    let mut start_ns = i64::MAX;
    let mut end_ns = i64::MIN;
    for span in &trace.spans {
        start_ns = start_ns.min(span.start_ns);
        end_ns = end_ns.max(span.start_ns.saturating_add(span.duration_ns));
        collect_values(&span.record, attribute, &mut values);
    }
    for log in &trace.logs {
        start_ns = start_ns.min(log.time_ns);
        end_ns = end_ns.max(log.time_ns);
        collect_values(&log.record, attribute, &mut values);
    }
    values.truncate(MAX_RELATED_VALUES.min(state.config.max_query_clauses));
    let window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
    // ±window around the trace, but never into the future: what the future cannot hold goes
    // to the past, so a recent trace gets a window of the same width, all of it data.
    let now = now_ns();
    let mut from_ns = start_ns.saturating_sub(window_ns);
    let mut to_ns = end_ns.saturating_add(window_ns).saturating_add(1);
    if to_ns > now && end_ns < now {
        from_ns = from_ns.saturating_sub(to_ns - now);
        to_ns = now.saturating_add(1);
    }
    let trace_mid_ns = start_ns / 2 + end_ns / 2;
    let interval = interval.unwrap_or_else(|| auto_interval(to_ns - from_ns));
    let mut out = json!({
        "trace_id": trace_id.to_string(),
        "attribute": attribute,
        "values": values,
        "from": decode::time::format_rfc3339_ns(from_ns),
        "to": decode::time::format_rfc3339_ns(to_ns),
        "interval": format!("{}ms", interval.as_millis()),
        "query": Value::Null,
        "total": 0,
        "by_value": [],
        "by_service": [],
        "by_time": [],
        "by_status": [],
        "sample_trace_ids": [],
        "sample_traces": [],
        "hits": [],
        "cursor": Value::Null,
    });
    if values.is_empty() {
        return Ok(out);
    }
    let q = values
        .iter()
        .map(|v| format!("{attribute} = {}", query_literal(v)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let expr = parse_query(state, &q)?;
    let compile = || index::query::compile(&expr, index.fields(), now);
    let search = index.search_compiled(
        compile()?,
        &index::SearchRequest {
            query: &q,
            from_ns: Some(from_ns),
            to_ns: Some(to_ns),
            limit,
            cursor: None,
            now_ns: Some(now),
        },
    )?;
    let agg = |by: Vec<String>,
               interval: Option<Duration>,
               size: usize|
     -> Result<index::AggResponse, ApiError> {
        let request = index::AggRequest {
            query: &q,
            from_ns: Some(from_ns),
            to_ns: Some(to_ns),
            now_ns: Some(now),
            by,
            interval,
            size,
            ..index::AggRequest::default()
        };
        Ok(index.aggregate_compiled(compile()?, &request)?)
    };
    let by_value = agg(vec![attribute.to_owned()], None, MAX_RELATED_VALUES)?;
    let by_service = agg(vec!["service".into()], None, 0)?;
    let by_time = agg(Vec::new(), Some(interval), 0)?;
    let by_status = agg(vec!["status".into()], None, 0)?;
    let by_level = agg(vec!["level".into()], None, 0)?;
    // Sample traces: those with an error first, then the nearest in time to this trace, each
    // by the full id its records carry (a hit knows it even when found by a low-64-bit id).
    let candidates = index.search_compiled(
        compile()?,
        &index::SearchRequest {
            query: &q,
            from_ns: Some(from_ns),
            to_ns: Some(to_ns),
            limit: RELATED_SAMPLE_CANDIDATES,
            cursor: None,
            now_ns: Some(now),
        },
    )?;
    // Which of the nearest candidate traces have an error anywhere (not only in the records
    // that carry the value: a decline's warn log belongs to a trace whose span failed).
    let nearest = nearest_traces(
        &candidates.hits,
        trace_mid_ns,
        RELATED_SAMPLE_CANDIDATES_TRACES,
    );
    let mut with_error = std::collections::HashSet::new();
    if !nearest.is_empty() {
        let ids = nearest
            .iter()
            .map(|(id, _)| format!("trace_id = {id}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let errors_q = format!("(status = ERROR OR level >= error) AND ({ids})");
        let errors = index.search_compiled(
            index::query::compile(&parse_query(state, &errors_q)?, index.fields(), now)?,
            &index::SearchRequest {
                query: &errors_q,
                limit: RELATED_SAMPLE_CANDIDATES,
                now_ns: Some(now),
                ..index::SearchRequest::default()
            },
        )?;
        for hit in &errors.hits {
            if let Some(id) = hit.get("trace_id").and_then(Value::as_str) {
                with_error.insert(id.to_owned());
            }
        }
    }
    let samples = sample_traces(&nearest, &with_error);
    let counts = |response: &index::AggResponse, label: &str| -> Vec<Value> {
        response
            .buckets
            .iter()
            .filter_map(|b| Some(json!({label: b.key.first()?.1, "count": b.count})))
            .collect()
    };
    out["query"] = json!(q);
    out["total"] = json!(search.total);
    out["by_value"] = json!(counts(&by_value, "value"));
    out["by_service"] = json!(counts(&by_service, "service"));
    out["by_time"] = json!(counts(&by_time, "time"));
    let mut by_status = counts(&by_status, "status");
    by_status.extend(counts(&by_level, "status"));
    out["by_status"] = json!(by_status);
    out["sample_trace_ids"] = json!(samples.iter().map(|s| &s["trace_id"]).collect::<Vec<_>>());
    out["sample_traces"] = json!(samples);
    out["hits"] = Value::Array(search.hits);
    out["cursor"] = json!(search.cursor);
    Ok(out)
}

/// The distinct traces of `hits`, nearest in time to `mid_ns` first, at most `n`: (full id as
/// the hit carries it, start of its first hit).
fn nearest_traces(hits: &[Value], mid_ns: i64, n: usize) -> Vec<(String, Option<i64>)> {
    let mut first: std::collections::HashMap<&str, Option<i64>> = std::collections::HashMap::new();
    for hit in hits {
        let Some(id) = hit.get("trace_id").and_then(Value::as_str) else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        let t = hit
            .get("start")
            .or_else(|| hit.get("time"))
            .and_then(Value::as_str)
            .and_then(decode::time::parse_datetime);
        let entry = first.entry(id).or_insert(t);
        if let (Some(old), Some(new)) = (*entry, t) {
            *entry = Some(old.min(new));
        }
    }
    let mut traces: Vec<(u64, String, Option<i64>)> = first
        .into_iter()
        .map(|(id, t)| (t.map_or(u64::MAX, |t| t.abs_diff(mid_ns)), id.to_owned(), t))
        .collect();
    traces.sort();
    traces.truncate(n);
    traces.into_iter().map(|(_, id, t)| (id, t)).collect()
}

/// Up to [`RELATED_SAMPLE_TRACES`] of `nearest` (already nearest first): those with an error
/// first.
fn sample_traces(
    nearest: &[(String, Option<i64>)],
    with_error: &std::collections::HashSet<String>,
) -> Vec<Value> {
    let (errors, others): (Vec<_>, Vec<_>) =
        nearest.iter().partition(|(id, _)| with_error.contains(id));
    errors
        .into_iter()
        .chain(others)
        .take(RELATED_SAMPLE_TRACES)
        .map(|(id, t)| {
            json!({
                "trace_id": id,
                "error": with_error.contains(id),
                "start": t.map(decode::time::format_rfc3339_ns),
            })
        })
        .collect()
}

/// `50,90,p95,99.9`: percentiles in (0, 100], at most [`MAX_PERCENTILES`].
fn parse_percentiles(list: &str) -> Result<Vec<f64>, ApiError> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let number = item.strip_prefix('p').unwrap_or(item);
        match number.parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => out.push(p),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`percentiles` takes numbers in (0, 100] such as 50,90,95,99; got {item:?}"
                )));
            }
        }
    }
    if out.len() > MAX_PERCENTILES {
        return Err(ApiError::BadRequest(format!(
            "`percentiles` takes at most {MAX_PERCENTILES} values; got {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Runs index work on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

/// Any trace id spelling `TraceRef::parse_any` reads; a low-64-bit id finds the traces whose
/// low half it is.
fn parse_trace_id(raw: &str) -> Result<TraceId, ApiError> {
    let bad = |e: model::IdError| {
        ApiError::BadRequest(format!(
            "{raw:?} is not a trace id ({e}): give 32 hex digits, a traceparent, an X-Ray or \
             Cloud Trace id, or a decimal 64-bit id"
        ))
    };
    match TraceRef::parse_any(raw).map_err(bad)? {
        TraceRef::Full(id) => Ok(id),
        TraceRef::Low64(low) => {
            Ok(TraceId::from_u128(u128::from(low.get())).expect("low is non-zero"))
        }
    }
}

fn not_found(trace_id: TraceId) -> ApiError {
    ApiError::NotFound(format!("trace {trace_id} is not in the index"))
}

/// The values of `attribute` in one stored record, resolved through the index's field catalog
/// (built-in fields; else attributes, the resource and span events' attributes; a dotted key
/// also walks nested maps), appended if new.
fn collect_values(record: &Value, attribute: &str, out: &mut Vec<Value>) {
    use index::field_catalog::{AttrLocation, Builtin, Resolved};
    let is_span = record.get("span_id").is_some() && record.get("duration_ns").is_some();
    let mut found: Vec<&Value> = Vec::new();
    match index::field_catalog::resolve(attribute) {
        Ok(Resolved::Builtin(f)) => {
            let value = match f.builtin {
                Builtin::Service => record.get("service"),
                Builtin::Name => record.get("name").filter(|_| is_span),
                Builtin::Status => record.pointer("/status/code"),
                Builtin::SpanKind => record.get("kind").filter(|_| is_span),
                Builtin::Level => record.get("level"),
                Builtin::Source => record.pointer("/origin/source"),
                _ => None,
            };
            found.extend(value);
        }
        Ok(Resolved::Attribute { location, path }) => {
            let scopes: &[&str] = match location {
                AttrLocation::Any => &["attributes", "resource"],
                AttrLocation::Attributes => &["attributes"],
                AttrLocation::Resource => &["resource"],
                AttrLocation::Events => &[],
                AttrLocation::Links | AttrLocation::Instrumentation => &[],
            };
            found.extend(
                scopes
                    .iter()
                    .find_map(|scope| lookup(record.get(*scope)?, &path)),
            );
            if location == AttrLocation::Links {
                for link in record["links"].as_array().into_iter().flatten() {
                    found.extend(link.get("attributes").and_then(|a| lookup(a, &path)));
                }
            }
            if location == AttrLocation::Instrumentation {
                found.extend(
                    record
                        .pointer("/scope/attributes")
                        .and_then(|a| lookup(a, &path)),
                );
            }
            // Span events (exceptions): their attributes, and `event.name` their names.
            if matches!(location, AttrLocation::Any | AttrLocation::Events) {
                for event in record["events"].as_array().into_iter().flatten() {
                    let value = if path == "event.name" {
                        event.get("name")
                    } else {
                        event.get("attributes").and_then(|a| lookup(a, &path))
                    };
                    found.extend(value);
                }
            }
        }
        Err(_) => {}
    }
    let candidates = found.into_iter().flat_map(|found| match found {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        other => vec![other],
    });
    for value in candidates {
        let usable = matches!(value, Value::String(s) if !s.is_empty())
            || matches!(value, Value::Number(_) | Value::Bool(_));
        if usable && !out.contains(value) {
            out.push(value.clone());
        }
    }
}

/// `key` in a JSON object: as a flat dotted key, or walked through nested objects.
fn lookup<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    if let Some(value) = object.get(key) {
        return Some(value);
    }
    let (head, _) = key.split_once('.')?;
    // Try each split point: `a.b.c` may be stored as {"a": {"b.c": ..}} or {"a.b": {"c": ..}}.
    let mut split = head.len();
    loop {
        let (prefix, suffix) = (&key[..split], &key[split + 1..]);
        if let Some(inner) = object.get(prefix).and_then(|v| lookup(v, suffix)) {
            return Some(inner);
        }
        match key[split + 1..].find('.') {
            Some(next) => split += 1 + next,
            None => break,
        }
    }
    None
}

/// A JSON value as a literal of the query language: numbers and booleans bare (they match the
/// number and the same text), strings quoted.
fn query_literal(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        }
        other => other.to_string(),
    }
}

/// Whether a name can be written bare in the query language.
fn is_query_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_alphanumeric() || "_.-:/@".contains(c))
        && name.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '@')
}

/// A round interval that cuts `span_ns` into about [`RELATED_TARGET_BUCKETS`] buckets.
fn auto_interval(span_ns: i64) -> Duration {
    const STEPS_S: [u64; 14] = [
        1,
        5,
        10,
        30,
        60,
        300,
        600,
        1800,
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86_400,
        7 * 86_400,
    ];
    let span_s = u64::try_from(span_ns.max(0)).unwrap_or(0) / 1_000_000_000;
    let wanted = span_s / RELATED_TARGET_BUCKETS;
    let step = STEPS_S
        .iter()
        .copied()
        .find(|&s| s >= wanted)
        .unwrap_or(STEPS_S[STEPS_S.len() - 1]);
    Duration::from_secs(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_flat_nested_and_known_fields() {
        let span = json!({
            "span_id": "eee19b7ec3c1b174", "duration_ns": 5, "service": "checkout", "name": "charge",
            "attributes": {"user.id": "usr_1", "card": {"bin": 411111}},
            "resource": {"deployment.environment": "prod"},
        });
        let mut out = Vec::new();
        collect_values(&span, "user.id", &mut out);
        collect_values(&span, "card.bin", &mut out);
        collect_values(&span, "deployment.environment", &mut out);
        collect_values(&span, "span.name", &mut out);
        collect_values(&span, "service.name", &mut out);
        collect_values(&span, "user.id", &mut out);
        assert_eq!(
            out,
            vec![
                json!("usr_1"),
                json!(411111),
                json!("prod"),
                json!("charge"),
                json!("checkout")
            ]
        );
    }

    #[test]
    fn literals_are_quoted_and_escaped() {
        assert_eq!(query_literal(&json!("a \"b\"")), r#""a \"b\"""#);
        assert_eq!(query_literal(&json!(411111)), "411111");
    }

    #[test]
    fn auto_interval_is_round() {
        assert_eq!(
            auto_interval(2 * 3600 * 1_000_000_000),
            Duration::from_secs(300)
        );
        assert_eq!(auto_interval(0), Duration::from_secs(1));
    }
}
