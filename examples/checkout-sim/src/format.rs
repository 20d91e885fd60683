//! The wire formats, written by hand the way each service's logging or tracing library would:
//! OTLP/JSON spans and logs, Zipkin v2 spans, ECS JSON, logfmt, Python json-logger and Datadog JSON.

use std::io::Write;

use crate::record::{Attr, Level, Log, Service, Span, Val};
use crate::text::{hex64, hex128, iso_micros_offset, json_str, rfc3339_ms};

/// The start of an OTLP `TracesData` line for `service`, up to the opening of its `spans` array.
pub(crate) fn otlp_traces_prefix(service: Service) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(br#"{"resourceSpans":[{"resource":{"attributes":["#);
    resource_attrs(&mut out, service);
    out.extend_from_slice(br#"]},"scopeSpans":[{"scope":{"name":"#);
    let (scope, version) = scope(service);
    json_str(&mut out, scope);
    out.extend_from_slice(br#","version":"#);
    json_str(&mut out, version);
    out.extend_from_slice(br#"},"spans":["#);
    out
}

pub(crate) const OTLP_TRACES_SUFFIX: &[u8] = br#"]}]}]}"#;

/// The start of an OTLP `LogsData` line for `service`, up to the opening of `logRecords`.
pub(crate) fn otlp_logs_prefix(service: Service) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(br#"{"resourceLogs":[{"resource":{"attributes":["#);
    resource_attrs(&mut out, service);
    out.extend_from_slice(br#"]},"scopeLogs":[{"scope":{"name":"#);
    json_str(&mut out, logger_name(service));
    out.extend_from_slice(br#"},"logRecords":["#);
    out
}

pub(crate) const OTLP_LOGS_SUFFIX: &[u8] = br#"]}]}]}"#;

/// One OTLP/JSON span object.
pub(crate) fn otlp_span(out: &mut Vec<u8>, span: &Span) {
    out.extend_from_slice(br#"{"traceId":""#);
    hex128(out, span.trace_id);
    out.extend_from_slice(br#"","spanId":""#);
    hex64(out, span.span_id);
    out.push(b'"');
    if let Some(parent) = span.parent_span_id {
        out.extend_from_slice(br#","parentSpanId":""#);
        hex64(out, parent);
        out.push(b'"');
    }
    // Sampled, with "is remote" known (0x100) and set (0x200) for a remote parent.
    let flags = if span.remote_parent { 769 } else { 257 };
    let _ = write!(out, r#","flags":{flags},"name":"#);
    json_str(out, &span.name);
    let _ = write!(
        out,
        r#","kind":{},"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":["#,
        span.kind as u8, span.start_ns, span.end_ns
    );
    otlp_attrs(out, &span.attrs);
    out.push(b']');
    if !span.events.is_empty() {
        out.extend_from_slice(br#","events":["#);
        for (i, event) in span.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(out, r#"{{"timeUnixNano":"{}","name":"#, event.time_ns);
            json_str(out, event.name);
            out.extend_from_slice(br#","attributes":["#);
            otlp_attrs(out, &event.attrs);
            out.extend_from_slice(b"]}");
        }
        out.push(b']');
    }
    match &span.error {
        Some(message) => {
            out.extend_from_slice(br#","status":{"code":2,"message":"#);
            json_str(out, message);
            out.extend_from_slice(b"}}");
        }
        None => out.extend_from_slice(br#","status":{}}"#),
    }
}

/// One OTLP/JSON log record object.
pub(crate) fn otlp_log(out: &mut Vec<u8>, log: &Log) {
    let (number, text) = match log.level {
        Level::Info => (9, "INFO"),
        Level::Warn => (13, "WARN"),
        Level::Error => (17, "ERROR"),
    };
    // The collector observes the record a fixed 2 ms later (deterministic on purpose).
    let _ = write!(
        out,
        r#"{{"timeUnixNano":"{}","observedTimeUnixNano":"{}","severityNumber":{number},"severityText":"{text}","body":{{"stringValue":"#,
        log.time_ns,
        log.time_ns + 2_000_000
    );
    json_str(out, &log.message);
    out.extend_from_slice(br#"},"attributes":["#);
    otlp_attrs(out, &log.attrs);
    out.push(b']');
    if let (Some(trace_id), Some(span_id)) = (log.trace_id, log.span_id) {
        out.extend_from_slice(br#","flags":1,"traceId":""#);
        hex128(out, trace_id);
        out.extend_from_slice(br#"","spanId":""#);
        hex64(out, span_id);
        out.push(b'"');
    }
    out.push(b'}');
}

/// One Zipkin v2 span object (times in microseconds, tags as strings).
pub(crate) fn zipkin_span(out: &mut Vec<u8>, span: &Span) {
    out.extend_from_slice(br#"{"traceId":""#);
    hex128(out, span.trace_id);
    out.extend_from_slice(br#"","id":""#);
    hex64(out, span.span_id);
    out.push(b'"');
    if let Some(parent) = span.parent_span_id {
        out.extend_from_slice(br#","parentId":""#);
        hex64(out, parent);
        out.push(b'"');
    }
    if let Some(kind) = span.kind.zipkin() {
        let _ = write!(out, r#","kind":"{kind}""#);
    }
    out.extend_from_slice(br#","name":"#);
    json_str(out, &span.name);
    let start_us = span.start_ns / 1_000;
    let duration_us = ((span.end_ns - span.start_ns) / 1_000).max(1);
    let _ = write!(
        out,
        r#","timestamp":{start_us},"duration":{duration_us},"localEndpoint":{{"serviceName":"{}","ipv4":"10.0.3.17","port":8080}}"#,
        span.service.name()
    );
    if let Some(Val::Str(peer)) = span
        .attrs
        .iter()
        .find(|a| a.key == "db.system")
        .map(|a| &a.val)
    {
        let _ = write!(
            out,
            r#","remoteEndpoint":{{"serviceName":"{peer}","ipv4":"10.0.9.4","port":5432}}"#
        );
    }
    out.extend_from_slice(br#","tags":{"#);
    for (i, attr) in span.attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, attr.key);
        out.push(b':');
        match &attr.val {
            Val::Str(v) => json_str(out, v),
            Val::Int(v) => {
                let _ = write!(out, "\"{v}\"");
            }
            Val::F64(v) => {
                let _ = write!(out, "\"{v}\"");
            }
        }
    }
    if let Some(message) = &span.error {
        if !span.attrs.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(br#""otel.status_code":"ERROR","error":"#);
        json_str(out, message);
    }
    out.extend_from_slice(b"}}");
}

/// An ECS JSON line (Elastic's ecs-logging): dotted keys at the top level for the core fields,
/// attributes nested by their dotted path (`http.request.method` → `{"http":{"request":{...}}}`).
pub(crate) fn ecs_line(out: &mut Vec<u8>, log: &Log) {
    out.extend_from_slice(br#"{"@timestamp":""#);
    rfc3339_ms(out, log.time_ns);
    let level = match log.level {
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    let _ = write!(out, r#"","log.level":"{level}","message":"#);
    json_str(out, &log.message);
    out.extend_from_slice(br#","ecs.version":"8.11.0","service":{"name":"#);
    json_str(out, log.service.name());
    out.push(b'}');
    if let (Some(trace_id), Some(span_id)) = (log.trace_id, log.span_id) {
        out.extend_from_slice(br#","trace.id":""#);
        hex128(out, trace_id);
        out.extend_from_slice(br#"","span.id":""#);
        hex64(out, span_id);
        out.extend_from_slice(br#"","transaction.id":""#);
        hex64(out, span_id);
        out.push(b'"');
    }
    let mut nested = serde_json::Map::new();
    for attr in &log.attrs {
        let mut node = &mut nested;
        let mut parts = attr.key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), json_value(&attr.val));
                break;
            }
            let child = node
                .entry(part.to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            match child {
                serde_json::Value::Object(map) => node = map,
                _ => break, // a leaf and a group share a name: never happens with our keys
            }
        }
    }
    for (key, value) in &nested {
        out.push(b',');
        json_str(out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.push(b'}');
}

/// A logfmt line, as Go's `log/slog` text handler or go-kit write it.
pub(crate) fn logfmt_line(out: &mut Vec<u8>, log: &Log) {
    out.extend_from_slice(b"ts=");
    rfc3339_ms(out, log.time_ns);
    let level = match log.level {
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    let _ = write!(out, " level={level} msg=");
    logfmt_value(out, &log.message);
    let _ = write!(out, " service={}", log.service.name());
    if let (Some(trace_id), Some(span_id)) = (log.trace_id, log.span_id) {
        out.extend_from_slice(b" trace_id=");
        hex128(out, trace_id);
        out.extend_from_slice(b" span_id=");
        hex64(out, span_id);
    }
    for attr in &log.attrs {
        let _ = write!(out, " {}=", attr.key);
        match &attr.val {
            Val::Str(v) => logfmt_value(out, v),
            Val::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Val::F64(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

/// A Python `python-json-logger` line with `opentelemetry-instrumentation-logging` correlation.
pub(crate) fn python_json_line(out: &mut Vec<u8>, log: &Log) {
    out.extend_from_slice(br#"{"timestamp":""#);
    iso_micros_offset(out, log.time_ns);
    let level = match log.level {
        Level::Info => "INFO",
        Level::Warn => "WARNING",
        Level::Error => "ERROR",
    };
    let _ = write!(
        out,
        r#"","levelname":"{level}","name":"inventory.stock","message":"#
    );
    json_str(out, &log.message);
    match (log.trace_id, log.span_id) {
        (Some(trace_id), Some(span_id)) => {
            out.extend_from_slice(br#","otelTraceID":""#);
            hex128(out, trace_id);
            out.extend_from_slice(br#"","otelSpanID":""#);
            hex64(out, span_id);
            out.extend_from_slice(br#"","otelTraceSampled":true"#);
        }
        // The instrumentation writes "0" when there is no active span.
        _ => out
            .extend_from_slice(br#","otelTraceID":"0","otelSpanID":"0","otelTraceSampled":false"#),
    }
    out.extend_from_slice(br#","otelServiceName":"#);
    json_str(out, log.service.name());
    flat_attrs(out, &log.attrs);
    out.push(b'}');
}

/// A Datadog JSON log line with log injection: ids as unsigned decimals, the trace id holding
/// only the low 64 bits of the 128-bit trace id.
pub(crate) fn datadog_line(out: &mut Vec<u8>, log: &Log) {
    out.extend_from_slice(br#"{"date":""#);
    rfc3339_ms(out, log.time_ns);
    let level = match log.level {
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    let _ = write!(out, r#"","status":"{level}","message":"#);
    json_str(out, &log.message);
    if let (Some(trace_id), Some(span_id)) = (log.trace_id, log.span_id) {
        let _ = write!(
            out,
            r#","dd.trace_id":"{}","dd.span_id":"{}""#,
            trace_id as u64, span_id
        );
    }
    out.extend_from_slice(br#","dd.service":"#);
    json_str(out, log.service.name());
    out.extend_from_slice(br#","dd.env":"production","dd.version":"3.14.2""#);
    flat_attrs(out, &log.attrs);
    out.push(b'}');
}

fn resource_attrs(out: &mut Vec<u8>, service: Service) {
    let (version, language) = match service {
        Service::Gateway => ("1.9.3", "go"),
        Service::Orders => ("2.4.1", "go"),
        Service::Inventory => ("0.31.0", "python"),
        Service::Payments => ("3.14.2", "java"),
        Service::Email => ("1.2.0", "nodejs"),
    };
    let attrs = [
        crate::record::s("service.name", service.name()),
        crate::record::s("service.version", version),
        crate::record::s("deployment.environment.name", "production"),
        crate::record::s("host.name", format!("{}-7c9f5b6d4-x2k4p", service.name())),
        crate::record::s("telemetry.sdk.name", "opentelemetry"),
        crate::record::s("telemetry.sdk.language", language),
    ];
    otlp_attrs(out, &attrs);
}

fn scope(service: Service) -> (&'static str, &'static str) {
    match service {
        Service::Gateway | Service::Orders => (
            "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
            "0.63.0",
        ),
        Service::Inventory => ("opentelemetry.instrumentation.flask", "0.58b0"),
        Service::Payments => ("io.opentelemetry.spring-webmvc-6.0", "2.20.1-alpha"),
        Service::Email => ("@opentelemetry/instrumentation-amqplib", "0.55.0"),
    }
}

fn logger_name(service: Service) -> &'static str {
    match service {
        Service::Email => "email-worker",
        _ => service.name(),
    }
}

fn otlp_attrs(out: &mut Vec<u8>, attrs: &[Attr]) {
    for (i, attr) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"key":"#);
        json_str(out, attr.key);
        out.extend_from_slice(br#","value":{"#);
        match &attr.val {
            Val::Str(v) => {
                out.extend_from_slice(br#""stringValue":"#);
                json_str(out, v);
            }
            Val::Int(v) => {
                let _ = write!(out, r#""intValue":"{v}""#);
            }
            Val::F64(v) => {
                let _ = write!(out, r#""doubleValue":{v}"#);
            }
        }
        out.extend_from_slice(b"}}");
    }
}

fn flat_attrs(out: &mut Vec<u8>, attrs: &[Attr]) {
    for attr in attrs {
        out.push(b',');
        json_str(out, attr.key);
        out.push(b':');
        match &attr.val {
            Val::Str(v) => json_str(out, v),
            Val::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Val::F64(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

fn json_value(val: &Val) -> serde_json::Value {
    match val {
        Val::Str(v) => serde_json::Value::String(v.to_string()),
        Val::Int(v) => serde_json::Value::from(*v),
        Val::F64(v) => serde_json::Value::from(*v),
    }
}

fn logfmt_value(out: &mut Vec<u8>, v: &str) {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        out.extend_from_slice(v.as_bytes());
    } else {
        // logfmt quoting is JSON-string-like.
        json_str(out, v);
    }
}
