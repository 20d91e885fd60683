//! OTLP/JSON traces and logs (`ExportTraceServiceRequest`/`TracesData`,
//! `ExportLogsServiceRequest`/`LogsData`): one object per line as file exporters write it, or a
//! whole request body.
//!
//! The JSON is deserialized into borrowed structs (ids stay slices of the input; attributes go
//! straight into model [`Attributes`]) in one pass. When some value does not decode (an
//! `intValue` beyond 64 bits, a negative timestamp), a second pass decodes record by record:
//! the record that holds the value is rejected alone, with its place in the batch and the
//! reason, and its neighbours are kept. Input that is not JSON, or whose envelopes are not
//! OTLP's, adds nothing. Accepted beyond the strict spec, as the Collector accepts it:
//! snake_case keys, enum names, 64-bit ints as numbers, base64 ids from generic protobuf-JSON
//! encoders, and `null` for any field.

use std::sync::Arc;

use model::{
    Attributes, LogRecord, Record, Scope, Span, SpanEvent, SpanId, SpanLink, Status, TraceId,
    TraceRef,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::common::{
    self, AnyValueJson, AttrList, Enum, Text, U64, service_of, severity_number_from_name,
    warn_bad_id,
};
use crate::{DecodeError, Decoder, LineContext, Output, Rejected, Warning};

/// Decodes a `TracesData` / `ExportTraceServiceRequest` object.
pub(crate) fn decode_traces(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let data: TracesData<'_> = match parse(text) {
        Ok(data) => data,
        // Some value does not decode: find the records that hold one and keep the others.
        Err(_) => return decode_traces_one_by_one(text, decoder, cx, out),
    };
    let n_spans: usize = data
        .resource_spans
        .iter()
        .flatten()
        .flat_map(|rs| rs.scope_spans.iter().flatten())
        .map(|ss| ss.spans.as_ref().map_or(0, Vec::len))
        .sum();
    // A line whose envelopes hold no span (misspelled keys, an empty export) would otherwise
    // vanish; as an error it is kept as a raw record. The OTLP receiver treats it as empty.
    if n_spans == 0 {
        return Err(DecodeError::WrongShape {
            expected: "non-empty OTLP/JSON traces",
        });
    }
    out.records.reserve(n_spans);
    for resource_spans in data.resource_spans.unwrap_or_default() {
        // Shared by every record under it: a clone is a reference count, not a copy.
        let resource = Arc::new(
            resource_spans
                .resource
                .map(|r| r.attributes.0)
                .unwrap_or_default(),
        );
        let service = service_of(&resource, decoder);
        for scope_spans in resource_spans.scope_spans.unwrap_or_default() {
            let scope = scope_spans
                .scope
                .map(ScopeJson::into_scope)
                .unwrap_or_default();
            for span in scope_spans.spans.unwrap_or_default() {
                let span = span.into_span(&service, &resource, &scope, cx, &mut out.warnings);
                out.records.push(Record::Span(span));
            }
        }
    }
    Ok(())
}

/// Decodes a `LogsData` / `ExportLogsServiceRequest` object.
pub(crate) fn decode_logs(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let data: LogsData<'_> = match parse(text) {
        Ok(data) => data,
        Err(_) => return decode_logs_one_by_one(text, decoder, cx, out),
    };
    let n_logs: usize = data
        .resource_logs
        .iter()
        .flatten()
        .flat_map(|rl| rl.scope_logs.iter().flatten())
        .map(|sl| sl.log_records.as_ref().map_or(0, Vec::len))
        .sum();
    if n_logs == 0 {
        return Err(DecodeError::WrongShape {
            expected: "non-empty OTLP/JSON logs",
        });
    }
    out.records.reserve(n_logs);
    for resource_logs in data.resource_logs.unwrap_or_default() {
        // Shared by every record under it: a clone is a reference count, not a copy.
        let resource = Arc::new(
            resource_logs
                .resource
                .map(|r| r.attributes.0)
                .unwrap_or_default(),
        );
        let service = service_of(&resource, decoder);
        for scope_logs in resource_logs.scope_logs.unwrap_or_default() {
            let scope = scope_logs
                .scope
                .map(ScopeJson::into_scope)
                .unwrap_or_default();
            for log in scope_logs.log_records.unwrap_or_default() {
                let log = log.into_log(&service, &resource, &scope, cx, &mut out.warnings);
                out.records.push(Record::Log(log));
            }
        }
    }
    Ok(())
}

/// The slow path of [`decode_traces`], taken only when the batch did not decode at once: the
/// envelopes are parsed with each resource, scope and span left as raw JSON, then each span is
/// decoded alone. A span that fails (or sits under a resource or scope that fails) goes to
/// `out.rejected`; the others are decoded as usual. Envelopes that do not parse mean the
/// document is not OTLP, and the whole document fails.
fn decode_traces_one_by_one(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let data: LooseTracesData<'_> = parse(text)?;
    let resources = data.resource_spans.unwrap_or_default();
    let n_spans: usize = resources
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flatten())
        .map(|ss| ss.spans.as_ref().map_or(0, Vec::len))
        .sum();
    if n_spans == 0 {
        // Only a resource or scope failed, and it held nothing: the error is the document's.
        return parse::<TracesData<'_>>(text).map(drop);
    }
    for (i, resource_spans) in resources.into_iter().enumerate() {
        let resource = resource_spans
            .resource
            .map_or(Ok(None), parse_part::<Option<ResourceJson>>)
            .map(|r| {
                let attributes = Arc::new(r.map(|r| r.attributes.0).unwrap_or_default());
                let service = service_of(&attributes, decoder);
                (attributes, service)
            })
            .map_err(|e| format!("resource.{e}"));
        for (j, scope_spans) in resource_spans
            .scope_spans
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let scope = scope_spans
                .scope
                .map_or(Ok(None), parse_part::<Option<ScopeJson>>)
                .map(|s| s.map(ScopeJson::into_scope).unwrap_or_default())
                .map_err(|e| format!("scope.{e}"));
            for (k, raw) in scope_spans
                .spans
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let decoded = match (&resource, &scope) {
                    (Err(e), _) | (_, Err(e)) => Err(format!("the enclosing {e}")),
                    (Ok((resource, service)), Ok(scope)) => {
                        parse_part::<SpanJson<'_>>(raw).map(|span| {
                            span.into_span(service, resource, scope, cx, &mut out.warnings)
                        })
                    }
                };
                match decoded {
                    Ok(span) => out.records.push(Record::Span(span)),
                    Err(reason) => out.rejected.push(Rejected {
                        offset: cx.offset,
                        path: format!("resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"),
                        reason,
                        text: raw.get().to_owned(),
                    }),
                }
            }
        }
    }
    Ok(())
}

/// The slow path of [`decode_logs`], as [`decode_traces_one_by_one`] is for traces.
fn decode_logs_one_by_one(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let data: LooseLogsData<'_> = parse(text)?;
    let resources = data.resource_logs.unwrap_or_default();
    let n_logs: usize = resources
        .iter()
        .flat_map(|rl| rl.scope_logs.iter().flatten())
        .map(|sl| sl.log_records.as_ref().map_or(0, Vec::len))
        .sum();
    if n_logs == 0 {
        return parse::<LogsData<'_>>(text).map(drop);
    }
    for (i, resource_logs) in resources.into_iter().enumerate() {
        let resource = resource_logs
            .resource
            .map_or(Ok(None), parse_part::<Option<ResourceJson>>)
            .map(|r| {
                let attributes = Arc::new(r.map(|r| r.attributes.0).unwrap_or_default());
                let service = service_of(&attributes, decoder);
                (attributes, service)
            })
            .map_err(|e| format!("resource.{e}"));
        for (j, scope_logs) in resource_logs
            .scope_logs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let scope = scope_logs
                .scope
                .map_or(Ok(None), parse_part::<Option<ScopeJson>>)
                .map(|s| s.map(ScopeJson::into_scope).unwrap_or_default())
                .map_err(|e| format!("scope.{e}"));
            for (k, raw) in scope_logs
                .log_records
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let decoded = match (&resource, &scope) {
                    (Err(e), _) | (_, Err(e)) => Err(format!("the enclosing {e}")),
                    (Ok((resource, service)), Ok(scope)) => parse_part::<LogRecordJson<'_>>(raw)
                        .map(|log| log.into_log(service, resource, scope, cx, &mut out.warnings)),
                };
                match decoded {
                    Ok(log) => out.records.push(Record::Log(log)),
                    Err(reason) => out.rejected.push(Rejected {
                        offset: cx.offset,
                        path: format!("resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"),
                        reason,
                        text: raw.get().to_owned(),
                    }),
                }
            }
        }
    }
    Ok(())
}

/// An OTLP/JSON id: empty means absent; hex in any case (32/16 chars), or base64 as generic
/// protobuf-JSON encoders write it (24/12 chars ending in `=`).
pub(crate) fn parse_trace_id(s: &str) -> Result<Option<TraceId>, model::IdError> {
    match s.len() {
        0 => Ok(None),
        12 | 24 if s.ends_with('=') => TraceId::from_base64(s).map(Some),
        _ => TraceId::from_hex(s).map(Some),
    }
}

pub(crate) fn parse_span_id(s: &str) -> Result<Option<SpanId>, model::IdError> {
    match s.len() {
        0 => Ok(None),
        12 if s.ends_with('=') => SpanId::from_base64(s).map(Some),
        _ => SpanId::from_hex(s).map(Some),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire shapes. Every field is optional and `null` is accepted wherever a value is.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TracesData<'a> {
    #[serde(borrow, default, alias = "resource_spans")]
    resource_spans: Option<Vec<ResourceSpans<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    #[serde(default)]
    resource: Option<ResourceJson>,
    #[serde(
        borrow,
        default,
        alias = "scope_spans",
        alias = "instrumentationLibrarySpans",
        alias = "instrumentation_library_spans"
    )]
    scope_spans: Option<Vec<ScopeSpans<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeSpans<'a> {
    #[serde(
        default,
        alias = "instrumentationLibrary",
        alias = "instrumentation_library"
    )]
    scope: Option<ScopeJson>,
    #[serde(borrow, default)]
    spans: Option<Vec<SpanJson<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogsData<'a> {
    #[serde(borrow, default, alias = "resource_logs")]
    resource_logs: Option<Vec<ResourceLogs<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceLogs<'a> {
    #[serde(default)]
    resource: Option<ResourceJson>,
    #[serde(
        borrow,
        default,
        alias = "scope_logs",
        alias = "instrumentationLibraryLogs",
        alias = "instrumentation_library_logs"
    )]
    scope_logs: Option<Vec<ScopeLogs<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeLogs<'a> {
    #[serde(
        default,
        alias = "instrumentationLibrary",
        alias = "instrumentation_library"
    )]
    scope: Option<ScopeJson>,
    #[serde(borrow, default, alias = "log_records")]
    log_records: Option<Vec<LogRecordJson<'a>>>,
}

#[derive(Deserialize)]
#[serde(expecting = "an OTLP Resource object")]
struct ResourceJson {
    #[serde(default)]
    attributes: AttrList,
}

#[derive(Deserialize)]
#[serde(expecting = "an OTLP InstrumentationScope object")]
struct ScopeJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    attributes: AttrList,
}

#[derive(Deserialize)]
#[serde(expecting = "an OTLP Span object")]
#[serde(rename_all = "camelCase")]
struct SpanJson<'a> {
    #[serde(borrow, default, alias = "trace_id")]
    trace_id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "span_id")]
    span_id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "parent_span_id")]
    parent_span_id: Option<Text<'a>>,
    #[serde(default, alias = "trace_state")]
    trace_state: Option<String>,
    #[serde(default)]
    flags: Option<U64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    kind: Option<Enum<'a>>,
    #[serde(default, alias = "start_time_unix_nano")]
    start_time_unix_nano: Option<U64>,
    #[serde(default, alias = "end_time_unix_nano")]
    end_time_unix_nano: Option<U64>,
    #[serde(default)]
    attributes: AttrList,
    #[serde(default)]
    events: Option<Vec<EventJson>>,
    #[serde(borrow, default)]
    links: Option<Vec<LinkJson<'a>>>,
    #[serde(borrow, default)]
    status: Option<StatusJson<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventJson {
    #[serde(default, alias = "time_unix_nano")]
    time_unix_nano: Option<U64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    attributes: AttrList,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkJson<'a> {
    #[serde(borrow, default, alias = "trace_id")]
    trace_id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "span_id")]
    span_id: Option<Text<'a>>,
    #[serde(default, alias = "trace_state")]
    trace_state: Option<String>,
    #[serde(default)]
    attributes: AttrList,
    #[serde(default)]
    flags: Option<U64>,
}

#[derive(Deserialize)]
struct StatusJson<'a> {
    #[serde(default)]
    message: Option<String>,
    #[serde(borrow, default)]
    code: Option<Enum<'a>>,
}

#[derive(Deserialize)]
#[serde(expecting = "an OTLP LogRecord object")]
#[serde(rename_all = "camelCase")]
struct LogRecordJson<'a> {
    #[serde(default, alias = "time_unix_nano")]
    time_unix_nano: Option<U64>,
    #[serde(default, alias = "observed_time_unix_nano")]
    observed_time_unix_nano: Option<U64>,
    #[serde(borrow, default, alias = "severity_number")]
    severity_number: Option<Enum<'a>>,
    #[serde(default, alias = "severity_text")]
    severity_text: Option<String>,
    #[serde(borrow, default)]
    body: Option<AnyValueJson<'a>>,
    #[serde(default)]
    attributes: AttrList,
    #[serde(default)]
    flags: Option<U64>,
    #[serde(borrow, default, alias = "trace_id")]
    trace_id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "span_id")]
    span_id: Option<Text<'a>>,
    #[serde(default, alias = "event_name")]
    event_name: Option<String>,
}

/// The envelopes of a traces batch with every resource, scope and span left as raw JSON, so
/// that one bad value fails only the record that holds it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseTracesData<'a> {
    #[serde(borrow, default, alias = "resource_spans")]
    resource_spans: Option<Vec<LooseResourceSpans<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseResourceSpans<'a> {
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        alias = "scope_spans",
        alias = "instrumentationLibrarySpans",
        alias = "instrumentation_library_spans"
    )]
    scope_spans: Option<Vec<LooseScopeSpans<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseScopeSpans<'a> {
    #[serde(
        borrow,
        default,
        alias = "instrumentationLibrary",
        alias = "instrumentation_library"
    )]
    scope: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spans: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseLogsData<'a> {
    #[serde(borrow, default, alias = "resource_logs")]
    resource_logs: Option<Vec<LooseResourceLogs<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseResourceLogs<'a> {
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        alias = "scope_logs",
        alias = "instrumentationLibraryLogs",
        alias = "instrumentation_library_logs"
    )]
    scope_logs: Option<Vec<LooseScopeLogs<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseScopeLogs<'a> {
    #[serde(
        borrow,
        default,
        alias = "instrumentationLibrary",
        alias = "instrumentation_library"
    )]
    scope: Option<&'a RawValue>,
    #[serde(borrow, default, alias = "log_records")]
    log_records: Option<Vec<&'a RawValue>>,
}

// ---------------------------------------------------------------------------------------------
// Wire shapes into the model.

fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|e| DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Decodes one part of a batch. The error names the field inside the part that failed and why,
/// e.g. `attributes[2].value.intValue: "1e30" is not an integer`.
fn parse_part<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize::<_, T>(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        // The position is within the part, which the caller names better.
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        match path.as_str() {
            "." | "?" => message.to_owned(),
            _ => format!("{path}: {message}"),
        }
    })
}

fn flags(flags: Option<U64>) -> u32 {
    // Only 32 bits exist on the wire; anything wider is garbage we do not keep.
    flags.map_or(0, |f| u32::try_from(f.0).unwrap_or(0))
}

fn ns(value: Option<U64>) -> i64 {
    value.and_then(|v| common::nonzero_ns(v.0)).unwrap_or(0)
}

/// Parses an optional id, warning about a malformed one; `bad` is set when it was malformed.
fn checked<T>(
    raw: Option<&Text<'_>>,
    parse: fn(&str) -> Result<Option<T>, model::IdError>,
    what: &str,
    cx: &LineContext<'_>,
    warnings: &mut Vec<Warning>,
    bad: &mut bool,
) -> Option<T> {
    let raw = raw?.as_str();
    match parse(raw) {
        Ok(id) => id,
        Err(err) => {
            warn_bad_id(warnings, cx, what, &raw, err);
            *bad = true;
            None
        }
    }
}

impl ScopeJson {
    fn into_scope(self) -> Scope {
        Scope {
            name: self.name.unwrap_or_default(),
            version: self.version.unwrap_or_default(),
            attributes: self.attributes.0,
        }
    }
}

impl SpanJson<'_> {
    fn into_span(
        self,
        service: &str,
        resource: &Arc<Attributes>,
        scope: &Scope,
        cx: &LineContext<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Span {
        let mut bad = false;
        let trace_id = checked(
            self.trace_id.as_ref(),
            parse_trace_id,
            "span trace id",
            cx,
            warnings,
            &mut bad,
        );
        let span_id = checked(
            self.span_id.as_ref(),
            parse_span_id,
            "span id",
            cx,
            warnings,
            &mut bad,
        );
        let parent_span_id = checked(
            self.parent_span_id.as_ref(),
            parse_span_id,
            "parent span id",
            cx,
            warnings,
            &mut bad,
        );
        let events = self
            .events
            .unwrap_or_default()
            .into_iter()
            .map(|e| SpanEvent {
                time_ns: ns(e.time_unix_nano),
                name: e.name.unwrap_or_default(),
                attributes: e.attributes.0,
            });
        let links = self
            .links
            .unwrap_or_default()
            .into_iter()
            .map(|l| SpanLink {
                trace_id: checked(
                    l.trace_id.as_ref(),
                    parse_trace_id,
                    "link trace id",
                    cx,
                    warnings,
                    &mut bad,
                ),
                span_id: checked(
                    l.span_id.as_ref(),
                    parse_span_id,
                    "link span id",
                    cx,
                    warnings,
                    &mut bad,
                ),
                trace_state: l.trace_state.unwrap_or_default(),
                attributes: l.attributes.0,
                flags: flags(l.flags),
            });
        let status = self.status.map_or_else(Status::default, |s| Status {
            code: s.code.as_ref().map(Enum::status_code).unwrap_or_default(),
            message: s.message.unwrap_or_default(),
        });
        Span {
            trace_id,
            span_id,
            parent_span_id,
            name: self.name.unwrap_or_default(),
            kind: self.kind.as_ref().map(Enum::span_kind).unwrap_or_default(),
            service: service.to_owned(),
            start_ns: ns(self.start_time_unix_nano),
            end_ns: ns(self.end_time_unix_nano),
            status,
            attributes: self.attributes.0,
            resource: resource.clone(),
            scope: scope.clone(),
            events: events.collect(),
            links: links.collect(),
            trace_state: self.trace_state.unwrap_or_default(),
            flags: flags(self.flags),
            origin: None,
        }
    }
}

impl LogRecordJson<'_> {
    fn into_log(
        self,
        service: &str,
        resource: &Arc<Attributes>,
        scope: &Scope,
        cx: &LineContext<'_>,
        warnings: &mut Vec<Warning>,
    ) -> LogRecord {
        let mut bad = false;
        let trace_id = checked(
            self.trace_id.as_ref(),
            parse_trace_id,
            "log trace id",
            cx,
            warnings,
            &mut bad,
        );
        let span_id = checked(
            self.span_id.as_ref(),
            parse_span_id,
            "log span id",
            cx,
            warnings,
            &mut bad,
        );
        let (time_ns, observed_time_ns, mut problems) = common::log_time(
            self.time_unix_nano.unwrap_or_default().0,
            self.observed_time_unix_nano.unwrap_or_default().0,
            cx,
        );
        if bad {
            problems.insert(model::Problems::BAD_ID);
        }
        let severity_text = self.severity_text.unwrap_or_default();
        let number = self
            .severity_number
            .as_ref()
            .map_or(0, |n| n.number(severity_number_from_name));
        let (severity_number, level) = common::severity(number, &severity_text);
        LogRecord {
            time_ns,
            observed_time_ns,
            service: service.to_owned(),
            severity_number,
            severity_text,
            level,
            body: common::body_text(self.body.map(AnyValueJson::into_value)),
            attributes: self.attributes.0,
            resource: resource.clone(),
            scope: scope.clone(),
            event_name: self.event_name.unwrap_or_default(),
            trace_id: trace_id.map(TraceRef::Full),
            span_id,
            flags: flags(self.flags),
            origin: None,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use model::{Problems, SpanKind, StatusCode};

    use super::*;
    use crate::DecoderConfig;

    fn decoder() -> Decoder {
        Decoder::new(DecoderConfig::default()).unwrap()
    }

    const CX: LineContext<'static> = LineContext {
        source: "t",
        offset: 7,
        read_time_ns: 99,
    };

    #[test]
    fn a_bad_line_adds_no_record() {
        let mut out = Output::default();
        let text = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"a"},{"startTimeUnixNano":"x"}"#;
        assert!(decode_traces(text, &decoder(), &CX, &mut out).is_err());
        assert!(out.records.is_empty() && out.warnings.is_empty() && out.rejected.is_empty());
        // Envelopes of the wrong type are not OTLP: the document fails as a whole.
        let text = r#"{"resourceSpans":[{"scopeSpans":{"spans":[{"name":"a"}]}}]}"#;
        assert!(decode_traces(text, &decoder(), &CX, &mut out).is_err());
        assert!(out.records.is_empty() && out.rejected.is_empty());
    }

    #[test]
    fn a_bad_record_is_rejected_alone() {
        let mut out = Output::default();
        let text = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"a"},{"name":"b","startTimeUnixNano":"x"},{"name":"c","attributes":[{"key":"k","value":{"intValue":"99999999999999999999"}}]}]}]}]}"#;
        decode_traces(text, &decoder(), &CX, &mut out).unwrap();
        assert_eq!(out.records.len(), 1);
        let paths: Vec<(&str, &str)> = out
            .rejected
            .iter()
            .map(|r| (r.path.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                (
                    "resourceSpans[0].scopeSpans[0].spans[1]",
                    r#"startTimeUnixNano: "x" is not an unsigned integer"#
                ),
                (
                    "resourceSpans[0].scopeSpans[0].spans[2]",
                    r#"attributes[0].value.intValue: "99999999999999999999" is out of the 64-bit integer range"#
                ),
            ]
        );
        assert_eq!(
            out.rejected[0].text,
            r#"{"name":"b","startTimeUnixNano":"x"}"#
        );
        assert_eq!(out.rejected[0].offset, 7);

        // A resource that fails takes its records with it, and only them.
        let mut out = Output::default();
        let text = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"pid","value":{"intValue":-1.5}}]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]},{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"y"}}]}]}]}"#;
        decode_logs(text, &decoder(), &CX, &mut out).unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(
            out.rejected[0].reason,
            "the enclosing resource.attributes[0].value.intValue: -1.5 is not an integer"
        );
    }

    #[test]
    fn ids_in_every_spelling() {
        let hex = parse_trace_id("5B8EFFF798038103D269B633813FC60C")
            .unwrap()
            .unwrap();
        assert_eq!(
            parse_trace_id("W47/95gDgQPSabYzgT/GDA==").unwrap(),
            Some(hex)
        );
        assert_eq!(
            parse_span_id("7uGbfsPBsXQ=").unwrap().unwrap().to_string(),
            "eee19b7ec3c1b174"
        );
        assert_eq!(parse_trace_id("").unwrap(), None);
        assert!(parse_trace_id("00000000000000000000000000000000").is_err());
        assert!(parse_span_id("eee19b7ec3c1b17").is_err());
    }

    #[test]
    fn spans_and_logs_are_mapped() {
        let mut out = Output::default();
        let traces = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[{"traceId":"","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_OK"},"startTimeUnixNano":5,"endTimeUnixNano":"15"}]}]}]}"#;
        decode_traces(traces, &decoder(), &CX, &mut out).unwrap();
        let Record::Span(span) = &out.records[0] else {
            panic!()
        };
        assert_eq!(
            (span.trace_id, span.kind, span.status.code),
            (None, SpanKind::Consumer, StatusCode::Ok)
        );
        assert_eq!((span.service.as_str(), span.duration_ns()), ("svc", 10));
        assert!(
            out.warnings.is_empty(),
            "an empty id is absent, not malformed"
        );

        let logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_ERROR2","traceId":"xyz","body":{"intValue":"3"}}]}]}]}"#;
        decode_logs(logs, &decoder(), &CX, &mut out).unwrap();
        let Record::Log(log) = &out.records[1] else {
            panic!()
        };
        assert_eq!(
            (log.severity_number, log.level),
            (Some(18), Some(model::Level::Error))
        );
        assert_eq!(
            (log.time_ns, log.body.as_str(), log.service.as_str()),
            (99, "3", "unknown")
        );
        assert!(
            log.problems
                .contains(Problems::BAD_ID | Problems::NO_TIMESTAMP)
        );
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(out.warnings[0].offset, 7);
    }

    /// One Collector file-exporter line: a resource with the usual attributes, one scope and
    /// `n_spans` spans with HTTP-ish attributes and one event each.
    fn collector_line(n_spans: usize, salt: usize) -> String {
        let mut spans = Vec::new();
        for i in 0..n_spans {
            spans.push(format!(
                r#"{{"traceId":"4bf92f3577b34da6a3ce929d0e{salt:06x}","spanId":"00f067aa0b{i:06x}","parentSpanId":"b7ad6b7169203331","traceState":"","flags":769,"name":"POST /api/v1/checkout/{i}","kind":2,"startTimeUnixNano":"1706678909209712000","endTimeUnixNano":"1706678909214832000","attributes":[{{"key":"http.request.method","value":{{"stringValue":"POST"}}}},{{"key":"url.path","value":{{"stringValue":"/api/v1/checkout/{i}"}}}},{{"key":"http.response.status_code","value":{{"intValue":"200"}}}},{{"key":"server.address","value":{{"stringValue":"checkout.internal"}}}},{{"key":"server.port","value":{{"intValue":"8080"}}}},{{"key":"user.id","value":{{"stringValue":"usr_{salt}"}}}},{{"key":"payment.amount_cents","value":{{"intValue":"12999"}}}},{{"key":"retry","value":{{"boolValue":false}}}}],"droppedAttributesCount":0,"events":[{{"timeUnixNano":"1706678909214000000","name":"cache.miss","attributes":[{{"key":"cache.key","value":{{"stringValue":"cart:{salt}"}}}}]}}],"droppedEventsCount":0,"links":[],"droppedLinksCount":0,"status":{{"code":1,"message":""}}}}"#
            ));
        }
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}},{{"key":"service.version","value":{{"stringValue":"1.4.2"}}}},{{"key":"deployment.environment.name","value":{{"stringValue":"prod"}}}},{{"key":"host.name","value":{{"stringValue":"web-17"}}}},{{"key":"telemetry.sdk.language","value":{{"stringValue":"go"}}}}],"droppedAttributesCount":0}},"scopeSpans":[{{"scope":{{"name":"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp","version":"0.49.0"}},"spans":[{}],"schemaUrl":""}}],"schemaUrl":"https://opentelemetry.io/schemas/1.24.0"}}]}}"#,
            spans.join(",")
        )
    }

    /// Throughput of OTLP/JSON span lines through `Decoder::decode_line` (detection included).
    /// `cargo test -p decode --release --lib -- --ignored --nocapture otlp_json_throughput`
    #[test]
    #[ignore = "benchmark; run in release mode"]
    fn otlp_json_throughput() {
        let lines: Vec<String> = (0..2000).map(|i| collector_line(1 + i % 10, i)).collect();
        let bytes: usize = lines.iter().map(String::len).sum();
        let decoder = decoder();
        let mut out = Output::default();
        let mut best = f64::MAX;
        let mut n_spans = 0;
        for _ in 0..7 {
            let started = std::time::Instant::now();
            n_spans = 0;
            for (i, line) in lines.iter().enumerate() {
                let cx = LineContext {
                    source: "bench.jsonl",
                    offset: i as u64,
                    read_time_ns: 0,
                };
                decoder.decode_line(line.as_bytes(), &cx, &mut out);
                n_spans += out.records.len();
                out.clear();
            }
            best = best.min(started.elapsed().as_secs_f64());
        }
        let mb_per_s = bytes as f64 / best / 1e6;
        if std::env::var_os("BENCH_DETAIL").is_some() {
            let time = |f: &dyn Fn(&str)| {
                let mut best = f64::MAX;
                for _ in 0..7 {
                    let started = std::time::Instant::now();
                    for line in &lines {
                        f(line);
                    }
                    best = best.min(started.elapsed().as_secs_f64());
                }
                bytes as f64 / best / 1e6
            };
            let ignored = time(&|l| {
                serde_json::from_str::<serde::de::IgnoredAny>(l).unwrap();
            });
            let parsed = time(&|l| {
                std::hint::black_box(parse::<TracesData<'_>>(l).unwrap());
            });
            let decoded = time(&|l| {
                let mut out = Output::default();
                decode_traces(l, &decoder, &CX, &mut out).unwrap();
            });
            // The same lines with one value per line that does not decode: the record-by-record
            // second pass.
            let bad: Vec<String> = lines
                .iter()
                .map(|l| l.replacen(r#"{"intValue":"200"}"#, r#"{"intValue":"1e30"}"#, 1))
                .collect();
            let mut best_bad = f64::MAX;
            for _ in 0..7 {
                let started = std::time::Instant::now();
                for line in &bad {
                    let mut out = Output::default();
                    decode_traces(line, &decoder, &CX, &mut out).unwrap();
                    assert_eq!(out.rejected.len(), 1);
                }
                best_bad = best_bad.min(started.elapsed().as_secs_f64());
            }
            let one_bad = bytes as f64 / best_bad / 1e6;
            println!(
                "IgnoredAny {ignored:.0} MB/s, parse only {parsed:.0} MB/s, decode_traces {decoded:.0} MB/s, with one bad value per line {one_bad:.0} MB/s"
            );
        }
        println!(
            "OTLP/JSON: {:.1} MB in {:.1} ms = {mb_per_s:.0} MB/s, {:.2} M spans/s ({n_spans} spans, {} lines)",
            bytes as f64 / 1e6,
            best * 1e3,
            n_spans as f64 / best / 1e6,
            lines.len()
        );
    }
}
