//! A model `Record` as a tantivy document: the indexed/fast fields and the stored record JSON.
//!
//! The stored `record` is the record in the Trace-JSON shape of DESIGN.md (plus its `trace_id`),
//! so trace assembly and search hits only parse it; they never rebuild it from fields.

use model::{AttrValue, Attributes, LogRecord, Record, Span, SpanEvent, TraceRef};
use serde_json::{Map, Value, json};
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, TantivyDocument};

use crate::schema::Fields;

/// `kind` field values.
pub(crate) const KIND_SPAN: &str = "span";
pub(crate) const KIND_LOG: &str = "log";

/// The document for `record`, with the writer-assigned sequence number, and an estimate of its
/// size in bytes (for the writer's commit-by-size trigger).
pub(crate) fn to_document(record: &Record, fields: &Fields, seq: u64) -> (TantivyDocument, usize) {
    let mut doc = TantivyDocument::new();
    doc.add_u64(fields.seq, seq);
    if let Some(trace) = record.trace_ref() {
        add_trace_ref(&mut doc, fields, trace);
    }
    if let Some(origin) = record.origin() {
        doc.add_text(fields.source, &origin.source);
    }
    match record {
        Record::Span(span) => add_span(&mut doc, fields, span),
        Record::Log(log) => add_log(&mut doc, fields, log),
    }
    let stored = serde_json::to_vec(&record_json(record)).expect("a JSON value always serialises");
    let n_bytes = stored.len() * 2;
    doc.add_bytes(fields.record, &stored);
    (doc, n_bytes)
}

/// The record in the Trace-JSON shape (see DESIGN.md), with its `trace_id` (null when unlinked).
pub fn record_json(record: &Record) -> Value {
    match record {
        Record::Span(span) => span_json(span),
        Record::Log(log) => log_json(log),
    }
}

/// Attributes as a JSON object with natural types (a repeated key keeps its last value).
pub fn attributes_json(attributes: &Attributes) -> Value {
    let mut map = Map::with_capacity(attributes.len());
    for kv in attributes {
        map.insert(kv.key.clone(), attr_json(&kv.value));
    }
    Value::Object(map)
}

fn add_trace_ref(doc: &mut TantivyDocument, fields: &Fields, trace: TraceRef) {
    // A full id whose high half is zero is a 64-bit id (old Zipkin/Jaeger): its real high half
    // is unknown, exactly like a Datadog decimal id.
    let (low64, partial) = match trace {
        TraceRef::Full(id) => (id.low64(), id.high64() == 0),
        TraceRef::Low64(low) => (low.get(), true),
    };
    doc.add_text(fields.trace_id, trace.to_string());
    doc.add_u64(fields.trace_low64, low64);
    if partial {
        doc.add_u64(fields.trace_partial, 1);
    }
}

fn add_span(doc: &mut TantivyDocument, fields: &Fields, span: &Span) {
    doc.add_text(fields.kind, KIND_SPAN);
    if let Some(id) = span.span_id {
        doc.add_text(fields.span_id, id.to_string());
    }
    if let Some(id) = span.parent_span_id {
        doc.add_text(fields.parent_span_id, id.to_string());
    }
    doc.add_text(fields.service, &span.service);
    doc.add_text(fields.name, &span.name);
    doc.add_text(fields.span_kind, span.kind.as_str());
    doc.add_text(fields.status, span.status.code.as_str());
    doc.add_date(
        fields.timestamp,
        DateTime::from_timestamp_nanos(span.start_ns),
    );
    doc.add_i64(fields.duration_ns, span.duration_ns());
    doc.add_u64(fields.is_error, u64::from(span.is_error()));
    doc.add_text(fields.body, &span.name);
    if !span.status.message.is_empty() {
        doc.add_text(fields.body, &span.status.message);
    }
    add_json(doc, fields.attributes, &span.attributes);
    add_json(doc, fields.resource, &span.resource);
    for event in &span.events {
        let mut object = json_object(&event.attributes);
        object.push(("event.name".to_owned(), OwnedValue::Str(event.name.clone())));
        doc.add_field_value(fields.events, &OwnedValue::Object(object));
    }
    for link in &span.links {
        add_json(doc, fields.links, &link.attributes);
    }
    add_json(doc, fields.scope, &span.scope.attributes);
    doc.add_u64(fields.problems, 0);
}

fn add_log(doc: &mut TantivyDocument, fields: &Fields, log: &LogRecord) {
    doc.add_text(fields.kind, KIND_LOG);
    if let Some(id) = log.span_id {
        doc.add_text(fields.span_id, id.to_string());
    }
    doc.add_text(fields.service, &log.service);
    if let Some(level) = log.level {
        doc.add_u64(fields.level, u64::from(level.ordinal()));
    }
    doc.add_date(
        fields.timestamp,
        DateTime::from_timestamp_nanos(log.time_ns),
    );
    let is_error = log.level.is_some_and(|level| level >= model::Level::Error);
    doc.add_u64(fields.is_error, u64::from(is_error));
    doc.add_text(fields.body, &log.body);
    add_json(doc, fields.attributes, &log.attributes);
    add_json(doc, fields.resource, &log.resource);
    doc.add_u64(fields.problems, u64::from(log.problems.bits()));
}

fn add_json(doc: &mut TantivyDocument, field: tantivy::schema::Field, attributes: &Attributes) {
    if !attributes.is_empty() {
        doc.add_field_value(field, &OwnedValue::Object(json_object(attributes)));
    }
}

/// Attributes as a tantivy JSON object. Values are built directly (not through serde_json) so a
/// string that happens to look like a date stays a string, and integers stay integers.
fn json_object(attributes: &Attributes) -> Vec<(String, OwnedValue)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), owned_value(&kv.value)))
        .collect()
}

fn owned_value(value: &AttrValue) -> OwnedValue {
    match value {
        AttrValue::Str(s) => OwnedValue::Str(s.clone()),
        AttrValue::Bool(b) => OwnedValue::Bool(*b),
        AttrValue::Int(i) => OwnedValue::I64(*i),
        AttrValue::Float(f) if f.is_finite() => OwnedValue::F64(*f),
        AttrValue::Float(f) => OwnedValue::Str(f.to_string()),
        AttrValue::Bytes(_) => OwnedValue::Str(value.to_text().trim_matches('"').to_owned()),
        AttrValue::Array(values) => OwnedValue::Array(values.iter().map(owned_value).collect()),
        AttrValue::Map(map) => OwnedValue::Object(json_object(map)),
    }
}

fn attr_json(value: &AttrValue) -> Value {
    match value {
        AttrValue::Str(s) => Value::String(s.clone()),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Int(i) => Value::from(*i),
        AttrValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        AttrValue::Bytes(_) => Value::String(value.to_text().trim_matches('"').to_owned()),
        AttrValue::Array(values) => Value::Array(values.iter().map(attr_json).collect()),
        AttrValue::Map(map) => attributes_json(map),
    }
}

fn time(ns: i64) -> Value {
    Value::String(decode::time::format_rfc3339_ns(ns))
}

fn opt_string(value: Option<impl ToString>) -> Value {
    value.map_or(Value::Null, |v| Value::String(v.to_string()))
}

fn span_json(span: &Span) -> Value {
    let mut out = json!({
        "trace_id": opt_string(span.trace_id),
        "span_id": opt_string(span.span_id),
        "parent_span_id": opt_string(span.parent_span_id),
        "service": span.service,
        "name": span.name,
        "kind": span.kind.as_str(),
        "start": time(span.start_ns),
        "duration_ns": span.duration_ns(),
        "status": {"code": span.status.code.as_str(), "message": span.status.message},
        "attributes": attributes_json(&span.attributes),
        "resource": attributes_json(&span.resource),
        "events": span.events.iter().map(event_json).collect::<Vec<_>>(),
    });
    let map = out.as_object_mut().expect("built as an object");
    // Rarely set; left out when empty to keep the doc store small.
    // Bytes values are stored as base64 text; these lists keep their type for presenters that
    // tell them apart (Jaeger's `binary` tags).
    for (key, attributes) in [
        ("binary_attributes", &span.attributes),
        ("binary_resource", &span.resource),
    ] {
        let keys: Vec<&str> = binary_keys(attributes).collect();
        if !keys.is_empty() {
            map.insert(key.into(), json!(keys));
        }
    }
    if !span.links.is_empty() {
        let links = span.links.iter().map(|link| {
            json!({
                "trace_id": opt_string(link.trace_id),
                "span_id": opt_string(link.span_id),
                "trace_state": link.trace_state,
                "attributes": attributes_json(&link.attributes),
            })
        });
        map.insert("links".into(), Value::Array(links.collect()));
    }
    if !span.trace_state.is_empty() {
        map.insert(
            "trace_state".into(),
            Value::String(span.trace_state.clone()),
        );
    }
    let scope = &span.scope;
    if !scope.name.is_empty() || !scope.version.is_empty() || !scope.attributes.is_empty() {
        let mut object = json!({"name": scope.name, "version": scope.version});
        // Only when present, so records of scopes without attributes keep their shape.
        if !scope.attributes.is_empty() {
            object["attributes"] = attributes_json(&scope.attributes);
        }
        map.insert("scope".into(), object);
    }
    if let Some(origin) = &span.origin {
        map.insert(
            "origin".into(),
            json!({"source": origin.source, "offset": origin.offset}),
        );
    }
    out
}

fn event_json(event: &SpanEvent) -> Value {
    let mut out = json!({
        "name": event.name,
        "time": time(event.time_ns),
        "attributes": attributes_json(&event.attributes),
    });
    let binary: Vec<&str> = binary_keys(&event.attributes).collect();
    if !binary.is_empty() {
        out["binary_attributes"] = json!(binary);
    }
    out
}

/// Keys whose values are bytes (stored as base64 text, so their type is kept beside them).
fn binary_keys(attributes: &Attributes) -> impl Iterator<Item = &str> {
    attributes
        .iter()
        .filter(|kv| matches!(kv.value, AttrValue::Bytes(_)))
        .map(|kv| kv.key.as_str())
}

fn log_json(log: &LogRecord) -> Value {
    let mut out = json!({
        "trace_id": opt_string(log.trace_id),
        "time": time(log.time_ns),
        "service": log.service,
        "level": opt_string(log.level.map(|level| level.as_str())),
        "severity_text": log.severity_text,
        "body": log.body,
        "span_id": opt_string(log.span_id),
        "attributes": attributes_json(&log.attributes),
        "resource": attributes_json(&log.resource),
        "origin": log.origin.as_ref().map_or(Value::Null, |origin| {
            json!({"source": origin.source, "offset": origin.offset})
        }),
        "problems": log.problems.names(),
    });
    let map = out.as_object_mut().expect("built as an object");
    if !log.event_name.is_empty() {
        map.insert("event_name".into(), Value::String(log.event_name.clone()));
    }
    if !log.scope.name.is_empty() {
        map.insert(
            "scope".into(),
            json!({"name": log.scope.name, "version": log.scope.version}),
        );
    }
    out
}
