//! A model `Record` as a tantivy document: the indexed/fast fields and the stored record JSON.
//!
//! The stored `record` is the record in the Trace-JSON shape of DESIGN.md (plus its `trace_id`),
//! so trace assembly and search hits only parse it; they never rebuild it from fields.

use model::{AttrValue, Attributes, LogRecord, Record, Span, SpanEvent, TraceRef};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use tantivy::schema::OwnedValue;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::{DateTime, TantivyDocument};

use crate::schema::Fields;

/// `kind` field values.
pub(crate) const KIND_SPAN: &str = "span";
pub(crate) const KIND_LOG: &str = "log";

/// The document for `record`, with the writer-assigned sequence number, and an estimate of its
/// size in bytes (for the writer's commit-by-size trigger).
pub(crate) fn to_document(record: &Record, fields: &Fields, seq: u64) -> (TantivyDocument, usize) {
    let mut stored = Vec::with_capacity(1024);
    serde_json::to_writer(&mut stored, &RecordJson(record)).expect("a record always serialises");
    // The document holds the stored bytes and about as many again of indexed values: sized
    // once, its buffer is not regrown (and copied) while fields are added.
    let mut doc = TantivyDocument::with_capacity(2 * stored.len() + 256);
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
    let n_bytes = stored.len() * 2;
    doc.add_bytes(fields.record, &stored);
    (doc, n_bytes)
}

/// The record in the Trace-JSON shape (see DESIGN.md), with its `trace_id` (null when unlinked).
pub fn record_json(record: &Record) -> Value {
    serde_json::to_value(RecordJson(record)).expect("a record always serialises")
}

/// Attributes as a JSON object with natural types (a repeated key keeps its last value).
pub fn attributes_json(attributes: &Attributes) -> Value {
    serde_json::to_value(AttrsJson(attributes)).expect("attributes always serialise")
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
        if needs_owned(&event.attributes) {
            let mut object = json_object(&event.attributes);
            object.push(("event.name".to_owned(), OwnedValue::Str(event.name.clone())));
            doc.add_field_value(fields.events, &OwnedValue::Object(object));
        } else {
            let object = JsonAttr::Object(&event.attributes, Some(&event.name));
            doc.add_field_value(fields.events, object);
        }
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
    if attributes.is_empty() {
        return;
    }
    if needs_owned(attributes) {
        doc.add_field_value(field, &OwnedValue::Object(json_object(attributes)));
    } else {
        doc.add_field_value(field, JsonAttr::Object(attributes, None));
    }
}

/// Attributes as a tantivy JSON value borrowed from the record: tantivy copies each leaf once
/// into the document, where an `OwnedValue` tree would first clone every key and value.
/// `Object` carries an optional extra `event.name` entry (span events).
#[derive(Debug, Clone, Copy)]
enum JsonAttr<'a> {
    Object(&'a Attributes, Option<&'a str>),
    Value(&'a AttrValue),
    Str(&'a str),
}

type JsonEntry<'a> = (&'a str, JsonAttr<'a>);

impl<'a> tantivy::schema::document::Value<'a> for JsonAttr<'a> {
    type ArrayIter = std::iter::Map<std::slice::Iter<'a, AttrValue>, fn(&'a AttrValue) -> Self>;
    type ObjectIter = std::iter::Chain<
        std::iter::Map<
            std::slice::Iter<'a, model::KeyValue>,
            fn(&'a model::KeyValue) -> JsonEntry<'a>,
        >,
        std::option::IntoIter<JsonEntry<'a>>,
    >;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        let object = |attributes: &'a Attributes, event_name: Option<&'a str>| {
            let entry: fn(&'a model::KeyValue) -> JsonEntry<'a> =
                |kv| (kv.key.as_str(), JsonAttr::Value(&kv.value));
            let extra = event_name.map(|name| ("event.name", JsonAttr::Str(name)));
            ReferenceValue::Object(attributes.iter().map(entry).chain(extra))
        };
        match *self {
            JsonAttr::Object(attributes, event_name) => object(attributes, event_name),
            JsonAttr::Str(s) => ReferenceValue::Leaf(ReferenceValueLeaf::Str(s)),
            JsonAttr::Value(value) => match value {
                AttrValue::Str(s) => ReferenceValue::Leaf(ReferenceValueLeaf::Str(s)),
                AttrValue::Bool(b) => ReferenceValue::Leaf(ReferenceValueLeaf::Bool(*b)),
                AttrValue::Int(i) => ReferenceValue::Leaf(ReferenceValueLeaf::I64(*i)),
                AttrValue::Float(f) => ReferenceValue::Leaf(ReferenceValueLeaf::F64(*f)),
                AttrValue::Array(values) => {
                    let element: fn(&'a AttrValue) -> Self = JsonAttr::Value;
                    ReferenceValue::Array(values.iter().map(element))
                }
                AttrValue::Map(map) => object(map, None),
                // `needs_owned` sends these through `OwnedValue`.
                AttrValue::Bytes(_) => ReferenceValue::Leaf(ReferenceValueLeaf::Null),
            },
        }
    }
}

/// Values whose indexed form is text made on the fly (bytes as base64, NaN and infinities),
/// which a borrowed [`JsonAttr`] cannot hand out.
fn needs_owned(attributes: &Attributes) -> bool {
    fn value(v: &AttrValue) -> bool {
        match v {
            AttrValue::Bytes(_) => true,
            AttrValue::Float(f) => !f.is_finite(),
            AttrValue::Array(values) => values.iter().any(value),
            AttrValue::Map(map) => needs_owned(map),
            AttrValue::Str(_) | AttrValue::Bool(_) | AttrValue::Int(_) => false,
        }
    }
    attributes.iter().any(|kv| value(&kv.value))
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

/// Keys whose values are bytes (stored as base64 text, so their type is kept beside them).
fn binary_keys(attributes: &Attributes) -> impl Iterator<Item = &str> {
    attributes
        .iter()
        .filter(|kv| matches!(kv.value, AttrValue::Bytes(_)))
        .map(|kv| kv.key.as_str())
}

/// The stored record (the Trace-JSON shape of [`record_json`]) serialised straight from the
/// model, without building a `serde_json::Value` tree first: building, serialising and
/// dropping that tree was a fifth of all ingest CPU (docs/BENCHMARKS.md).
pub(crate) struct RecordJson<'a>(pub &'a Record);

struct SpanJson<'a>(&'a Span);
struct LogJson<'a>(&'a LogRecord);
struct EventJson<'a>(&'a SpanEvent);
struct LinkJson<'a>(&'a model::SpanLink);
/// Logs store only the scope's name and version; spans also its attributes, when it has any.
struct ScopeJson<'a>(&'a model::Scope, bool);
struct OriginJson<'a>(&'a model::Origin);
struct StatusJson<'a>(&'a model::Status);
/// Attributes as an object with natural types (a repeated key: the reader keeps the last).
struct AttrsJson<'a>(&'a Attributes);
struct AttrJson<'a>(&'a AttrValue);
/// An id as its hex text, or null.
struct IdJson<T>(Option<T>);
/// Nanoseconds since the epoch as RFC 3339 text.
struct TimeJson(i64);
/// The keys of the bytes-valued attributes.
struct BinaryKeysJson<'a>(&'a Attributes);
struct Seq<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Record::Span(span) => SpanJson(span).serialize(s),
            Record::Log(log) => LogJson(log).serialize(s),
        }
    }
}

impl Serialize for SpanJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let span = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("trace_id", &IdJson(span.trace_id))?;
        map.serialize_entry("span_id", &IdJson(span.span_id))?;
        map.serialize_entry("parent_span_id", &IdJson(span.parent_span_id))?;
        map.serialize_entry("service", &span.service)?;
        map.serialize_entry("name", &span.name)?;
        map.serialize_entry("kind", span.kind.as_str())?;
        map.serialize_entry("start", &TimeJson(span.start_ns))?;
        map.serialize_entry("duration_ns", &span.duration_ns())?;
        map.serialize_entry("status", &StatusJson(&span.status))?;
        map.serialize_entry("attributes", &AttrsJson(&span.attributes))?;
        map.serialize_entry("resource", &AttrsJson(&span.resource))?;
        map.serialize_entry("events", &Seq(&span.events, EventJson))?;
        // Rarely set; left out when empty to keep the doc store small.
        // Bytes values are stored as base64 text; these lists keep their type for presenters
        // that tell them apart (Jaeger's `binary` tags).
        if has_binary(&span.attributes) {
            map.serialize_entry("binary_attributes", &BinaryKeysJson(&span.attributes))?;
        }
        if has_binary(&span.resource) {
            map.serialize_entry("binary_resource", &BinaryKeysJson(&span.resource))?;
        }
        if !span.links.is_empty() {
            map.serialize_entry("links", &Seq(&span.links, LinkJson))?;
        }
        if !span.trace_state.is_empty() {
            map.serialize_entry("trace_state", &span.trace_state)?;
        }
        let scope = &span.scope;
        if !scope.name.is_empty() || !scope.version.is_empty() || !scope.attributes.is_empty() {
            map.serialize_entry("scope", &ScopeJson(scope, true))?;
        }
        if let Some(origin) = &span.origin {
            map.serialize_entry("origin", &OriginJson(origin))?;
        }
        map.end()
    }
}

impl Serialize for LogJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let log = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("trace_id", &IdJson(log.trace_id))?;
        map.serialize_entry("time", &TimeJson(log.time_ns))?;
        map.serialize_entry("service", &log.service)?;
        map.serialize_entry("level", &log.level.map(|level| level.as_str()))?;
        map.serialize_entry("severity_text", &log.severity_text)?;
        map.serialize_entry("body", &log.body)?;
        map.serialize_entry("span_id", &IdJson(log.span_id))?;
        map.serialize_entry("attributes", &AttrsJson(&log.attributes))?;
        map.serialize_entry("resource", &AttrsJson(&log.resource))?;
        map.serialize_entry("origin", &log.origin.as_ref().map(OriginJson))?;
        map.serialize_entry("problems", &log.problems.names())?;
        if !log.event_name.is_empty() {
            map.serialize_entry("event_name", &log.event_name)?;
        }
        if !log.scope.name.is_empty() {
            map.serialize_entry("scope", &ScopeJson(&log.scope, false))?;
        }
        map.end()
    }
}

impl Serialize for EventJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &event.name)?;
        map.serialize_entry("time", &TimeJson(event.time_ns))?;
        map.serialize_entry("attributes", &AttrsJson(&event.attributes))?;
        if has_binary(&event.attributes) {
            map.serialize_entry("binary_attributes", &BinaryKeysJson(&event.attributes))?;
        }
        map.end()
    }
}

impl Serialize for LinkJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let link = self.0;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("trace_id", &IdJson(link.trace_id))?;
        map.serialize_entry("span_id", &IdJson(link.span_id))?;
        map.serialize_entry("trace_state", &link.trace_state)?;
        map.serialize_entry("attributes", &AttrsJson(&link.attributes))?;
        map.end()
    }
}

impl Serialize for ScopeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ScopeJson(scope, with_attributes) = *self;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &scope.name)?;
        map.serialize_entry("version", &scope.version)?;
        // Only when present, so records of scopes without attributes keep their shape.
        if with_attributes && !scope.attributes.is_empty() {
            map.serialize_entry("attributes", &AttrsJson(&scope.attributes))?;
        }
        map.end()
    }
}

impl Serialize for OriginJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("source", &self.0.source)?;
        map.serialize_entry("offset", &self.0.offset)?;
        map.end()
    }
}

impl Serialize for StatusJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("code", self.0.code.as_str())?;
        map.serialize_entry("message", &self.0.message)?;
        map.end()
    }
}

impl Serialize for AttrsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for kv in self.0 {
            map.serialize_entry(&kv.key, &AttrJson(&kv.value))?;
        }
        map.end()
    }
}

impl Serialize for AttrJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Bool(v) => s.serialize_bool(*v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::Float(v) if v.is_finite() => s.serialize_f64(*v),
            AttrValue::Float(v) => s.collect_str(v),
            AttrValue::Bytes(_) => s.serialize_str(self.0.to_text().trim_matches('"')),
            AttrValue::Array(values) => {
                let mut seq = s.serialize_seq(Some(values.len()))?;
                for value in values {
                    seq.serialize_element(&AttrJson(value))?;
                }
                seq.end()
            }
            AttrValue::Map(map) => AttrsJson(map).serialize(s),
        }
    }
}

impl<T: std::fmt::Display + Copy> Serialize for IdJson<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(id) => s.collect_str(&id),
            None => s.serialize_none(),
        }
    }
}

impl Serialize for TimeJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&decode::time::format_rfc3339_ns(self.0))
    }
}

impl Serialize for BinaryKeysJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(binary_keys(self.0))
    }
}

impl<'a, T, W: Serialize> Serialize for Seq<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

fn has_binary(attributes: &Attributes) -> bool {
    binary_keys(attributes).next().is_some()
}

#[cfg(test)]
mod tests {
    use tantivy::schema::Document as _;

    use super::*;

    fn nested() -> Attributes {
        let mut card = Attributes::new();
        card.push("bin", AttrValue::Str("411111".into()));
        card.push("last4", AttrValue::Int(4242));
        let mut attributes = Attributes::new();
        attributes.push("http.status_code", AttrValue::Int(502));
        attributes.push("ratio", AttrValue::Float(0.25));
        attributes.push("retried", AttrValue::Bool(true));
        attributes.push("card", AttrValue::Map(card));
        attributes.push(
            "tags",
            AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Int(1)]),
        );
        attributes
    }

    /// The borrowed fast path must index exactly what the `OwnedValue` path indexes.
    #[test]
    fn borrowed_attributes_make_the_same_document_as_owned_ones() {
        let fields = Fields::new();
        let attributes = nested();
        let mut borrowed = TantivyDocument::new();
        borrowed.add_field_value(fields.attributes, JsonAttr::Object(&attributes, None));
        borrowed.add_field_value(
            fields.events,
            JsonAttr::Object(&attributes, Some("exception")),
        );
        let mut owned = TantivyDocument::new();
        owned.add_field_value(
            fields.attributes,
            &OwnedValue::Object(json_object(&attributes)),
        );
        let mut event = json_object(&attributes);
        event.push(("event.name".into(), OwnedValue::Str("exception".into())));
        owned.add_field_value(fields.events, &OwnedValue::Object(event));
        assert!(!needs_owned(&attributes));
        assert_eq!(
            borrowed.to_json(&fields.schema),
            owned.to_json(&fields.schema)
        );
    }

    #[test]
    fn bytes_and_nan_take_the_owned_path() {
        let mut attributes = nested();
        assert!(!needs_owned(&attributes));
        attributes.push("payload", AttrValue::Bytes(vec![1, 2, 3]));
        assert!(needs_owned(&attributes));
        let mut nan = Attributes::new();
        nan.push("x", AttrValue::Array(vec![AttrValue::Float(f64::NAN)]));
        assert!(needs_owned(&nan));
    }
}
