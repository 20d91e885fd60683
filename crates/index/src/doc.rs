//! A model `Record` as a tantivy document: the indexed/fast fields and the stored record JSON.
//!
//! The stored `record` is the record in the Trace-JSON shape of DESIGN.md (plus its `trace_id`),
//! so trace assembly and search hits only parse it; they never rebuild it from fields.

use std::sync::{Arc, OnceLock};

use model::{AttrValue, Attributes, Record};
use serde_json::Value;
use tantivy::DateTime;
use tantivy::schema::Field;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};

use crate::schema::Fields;

mod json;

/// `kind` field values.
pub(crate) const KIND_SPAN: &str = "span";
pub(crate) const KIND_LOG: &str = "log";

/// A record as tantivy indexes it. tantivy reads every value straight from the record (no copy
/// into a `TantivyDocument` first), and the stored JSON is made by whichever indexing thread
/// reads the document first, so that work is shared by tantivy's threads instead of queueing on
/// the writer thread. The record is dropped on the indexing thread too.
pub(crate) struct RecordDoc(Box<DocParts>);

/// Everything of a [`RecordDoc`], behind one pointer: tantivy moves each document through its
/// channels by value, in a `SmallVec` of four, so the document itself is kept to 8 bytes (the
/// record inline made that 2 KB of copying per document, and these parts inline still
/// several hundred bytes).
pub(crate) struct DocParts {
    fields: Arc<Fields>,
    record: Record,
    seq: u64,
    /// The trace id as indexed (32 hex; W3C-padded, so with a high half of zero, when only its
    /// low 64 bits are known) and those low 64 bits.
    trace: Option<(model::Hex<32>, u64)>,
    span_id: Option<u64>,
    parent_span_id: Option<u64>,
    /// Attribute sets with values whose indexed form is made on the fly (bytes as base64 text,
    /// NaN and infinities as text); `None` for nearly every record.
    indexed: Option<Box<IndexedAttributes>>,
    /// The stored record JSON, made on first use.
    stored: OnceLock<String>,
}

impl std::ops::Deref for RecordDoc {
    type Target = DocParts;
    fn deref(&self) -> &DocParts {
        &self.0
    }
}

/// The attribute sets of a record as indexed, when some value must be converted first.
struct IndexedAttributes {
    attributes: Attributes,
    resource: Attributes,
    /// Per span event, its attributes.
    events: Vec<Attributes>,
    /// Per span link, its attributes.
    links: Vec<Attributes>,
    scope: Attributes,
}

impl RecordDoc {
    /// The document for `record`, with the writer-assigned sequence number.
    pub(crate) fn new(record: Record, fields: Arc<Fields>, seq: u64) -> RecordDoc {
        // A full id whose high half is zero is a 64-bit id (old Zipkin/Jaeger): its real high
        // half is unknown, exactly like a Datadog decimal id, which is indexed padded the same
        // way.
        let trace = record.trace_ref().map(|trace| (trace.hex(), trace.low64()));
        let (span_id, parent_span_id) = match &record {
            Record::Span(span) => (span.span_id, span.parent_span_id),
            Record::Log(log) => (log.span_id, None),
        };
        let indexed = IndexedAttributes::of(&record).map(Box::new);
        RecordDoc(Box::new(DocParts {
            fields,
            seq,
            trace,
            span_id: span_id.map(model::SpanId::as_u64),
            parent_span_id: parent_span_id.map(model::SpanId::as_u64),
            indexed,
            record,
            stored: OnceLock::new(),
        }))
    }

    /// About how many bytes the record costs the index writer (for its commit-by-size
    /// trigger): its text and attributes, without serialising anything.
    pub(crate) fn approx_bytes(&self) -> usize {
        let text = match &self.record {
            Record::Span(span) => {
                span.name.len()
                    + span.status.message.len()
                    + span
                        .events
                        .iter()
                        .map(|e| e.name.len() + attributes_bytes(&e.attributes))
                        .sum::<usize>()
                    + attributes_bytes(&span.attributes)
                    + attributes_bytes(&span.resource)
            }
            Record::Log(log) => {
                log.body.len() + attributes_bytes(&log.attributes) + attributes_bytes(&log.resource)
            }
        };
        // Ids, times, kind and keys twice over: as stored JSON and as indexed values.
        2 * (text + 256)
    }

    /// The stored record JSON. It is handed to tantivy as a string value, though the `record`
    /// field is a bytes field: tantivy's doc store writes and reads a bytes value one byte at a
    /// time (3% of all ingest CPU), a string with one copy each way. The field keeps its type
    /// so that indexes written before open unchanged; readers take either (`trace::load_record`).
    fn stored(&self) -> &str {
        self.stored.get_or_init(|| stored_json(&self.record))
    }
}

impl IndexedAttributes {
    fn of(record: &Record) -> Option<IndexedAttributes> {
        match record {
            Record::Span(span) => {
                let any = needs_owned(&span.attributes)
                    || needs_owned(&span.resource)
                    || needs_owned(&span.scope.attributes)
                    || span.events.iter().any(|e| needs_owned(&e.attributes))
                    || span.links.iter().any(|l| needs_owned(&l.attributes));
                any.then(|| IndexedAttributes {
                    attributes: indexable(&span.attributes),
                    resource: indexable(&span.resource),
                    events: span
                        .events
                        .iter()
                        .map(|e| indexable(&e.attributes))
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| indexable(&l.attributes))
                        .collect(),
                    scope: indexable(&span.scope.attributes),
                })
            }
            Record::Log(log) => {
                (needs_owned(&log.attributes) || needs_owned(&log.resource)).then(|| {
                    IndexedAttributes {
                        attributes: indexable(&log.attributes),
                        resource: indexable(&log.resource),
                        events: Vec::new(),
                        links: Vec::new(),
                        scope: Attributes::new(),
                    }
                })
            }
        }
    }
}

impl tantivy::Document for RecordDoc {
    type Value<'a> = DocValue<'a>;
    type FieldsValuesIter<'a> = std::vec::IntoIter<(Field, DocValue<'a>)>;

    /// The values in the order of their fields' ids, so that tantivy's per-document sort of
    /// them (`InvertedIndexPluginWriter::index_document`) finds them sorted already.
    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        let f = &*self.fields;
        let indexed = self.indexed.as_deref();
        fn object<'a>(
            out: &mut Vec<(Field, DocValue<'a>)>,
            field: Field,
            attributes: &'a Attributes,
        ) {
            if !attributes.is_empty() {
                out.push((field, DocValue::Object(attributes, None)));
            }
        }
        let mut out = Vec::with_capacity(24);
        let kind = match &self.record {
            Record::Span(_) => KIND_SPAN,
            Record::Log(_) => KIND_LOG,
        };
        out.push((f.kind, DocValue::Str(kind)));
        if let Some((hex, low64)) = &self.trace {
            out.push((f.trace_id, DocValue::Str(hex.as_str())));
            out.push((f.trace_low64, DocValue::U64(*low64)));
        }
        if let Some(id) = self.span_id {
            out.push((f.span_id, DocValue::U64(id)));
        }
        if let Some(id) = self.parent_span_id {
            out.push((f.parent_span_id, DocValue::U64(id)));
        }
        match &self.record {
            Record::Span(span) => {
                out.push((f.service, DocValue::Str(&span.service)));
                out.push((f.name, DocValue::Str(&span.name)));
                out.push((f.span_kind, DocValue::Str(span.kind.as_str())));
                out.push((f.status, DocValue::Str(span.status.code.as_str())));
                let start = DateTime::from_timestamp_nanos(span.start_ns);
                out.push((f.timestamp, DocValue::Date(start)));
                out.push((f.duration_ns, DocValue::I64(span.duration_ns())));
                // Only errors have an `is_error`: a value for every record cost 1.1% of
                // ingest's instructions, for a column its readers read as "0 if none".
                if span.is_error() {
                    out.push((f.is_error, DocValue::U64(1)));
                }
                out.push((f.body, DocValue::Str(&span.name)));
                if !span.status.message.is_empty() {
                    out.push((f.body, DocValue::Str(&span.status.message)));
                }
                object(
                    &mut out,
                    f.attributes,
                    indexed.map_or(&span.attributes, |i| &i.attributes),
                );
                object(
                    &mut out,
                    f.resource,
                    indexed.map_or(&span.resource, |i| &i.resource),
                );
                for (n, event) in span.events.iter().enumerate() {
                    let attributes = indexed.map_or(&event.attributes, |i| &i.events[n]);
                    out.push((f.events, DocValue::Object(attributes, Some(&event.name))));
                }
            }
            Record::Log(log) => {
                out.push((f.service, DocValue::Str(&log.service)));
                if let Some(level) = log.level {
                    out.push((f.level, DocValue::U64(u64::from(level.ordinal()))));
                }
                let time = DateTime::from_timestamp_nanos(log.time_ns);
                out.push((f.timestamp, DocValue::Date(time)));
                if log.level.is_some_and(|level| level >= model::Level::Error) {
                    out.push((f.is_error, DocValue::U64(1)));
                }
                out.push((f.body, DocValue::Str(&log.body)));
                object(
                    &mut out,
                    f.attributes,
                    indexed.map_or(&log.attributes, |i| &i.attributes),
                );
                object(
                    &mut out,
                    f.resource,
                    indexed.map_or(&log.resource, |i| &i.resource),
                );
            }
        }
        if let Some(origin) = self.record.origin() {
            out.push((f.source, DocValue::Str(&origin.source)));
        }
        out.push((f.record, DocValue::Str(self.stored())));
        out.push((f.seq, DocValue::U64(self.seq)));
        if let Record::Span(span) = &self.record {
            for (n, link) in span.links.iter().enumerate() {
                let attributes = indexed.map_or(&link.attributes, |i| &i.links[n]);
                object(&mut out, f.links, attributes);
            }
            object(
                &mut out,
                f.scope,
                indexed.map_or(&span.scope.attributes, |i| &i.scope),
            );
        }
        out.into_iter()
    }
}

/// The record in the Trace-JSON shape (see DESIGN.md), with its `trace_id` (null when unlinked).
pub fn record_json(record: &Record) -> Value {
    let mut out = String::with_capacity(1024);
    json::record(&mut out, record, false);
    serde_json::from_str(&out).expect("the writer writes JSON")
}

/// A value of a [`RecordDoc`] as tantivy reads it, borrowed from the record. `Object` carries an
/// optional extra `event.name` entry (span events).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DocValue<'a> {
    Object(&'a Attributes, Option<&'a str>),
    Value(&'a AttrValue),
    Str(&'a str),
    U64(u64),
    I64(i64),
    Date(DateTime),
}

type JsonEntry<'a> = (&'a str, DocValue<'a>);

impl<'a> tantivy::schema::document::Value<'a> for DocValue<'a> {
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
                |kv| (kv.key.as_str(), DocValue::Value(&kv.value));
            let extra = event_name.map(|name| ("event.name", DocValue::Str(name)));
            ReferenceValue::Object(attributes.iter().map(entry).chain(extra))
        };
        let leaf = ReferenceValue::Leaf;
        match *self {
            DocValue::Object(attributes, event_name) => object(attributes, event_name),
            DocValue::Str(s) => leaf(ReferenceValueLeaf::Str(s)),
            DocValue::U64(v) => leaf(ReferenceValueLeaf::U64(v)),
            DocValue::I64(v) => leaf(ReferenceValueLeaf::I64(v)),
            DocValue::Date(v) => leaf(ReferenceValueLeaf::Date(v)),
            DocValue::Value(value) => match value {
                AttrValue::Str(s) => leaf(ReferenceValueLeaf::Str(s)),
                AttrValue::Bool(b) => leaf(ReferenceValueLeaf::Bool(*b)),
                AttrValue::Int(i) => leaf(ReferenceValueLeaf::I64(*i)),
                AttrValue::Float(f) => leaf(ReferenceValueLeaf::F64(*f)),
                AttrValue::Array(values) => {
                    let element: fn(&'a AttrValue) -> Self = DocValue::Value;
                    ReferenceValue::Array(values.iter().map(element))
                }
                AttrValue::Map(map) => object(map, None),
                // `IndexedAttributes` holds these converted to text.
                AttrValue::Bytes(_) => leaf(ReferenceValueLeaf::Null),
            },
        }
    }
}

/// Values whose indexed form is text made on the fly (bytes as base64, NaN and infinities),
/// which a borrowed [`DocValue`] cannot hand out.
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

/// Attributes as indexed: bytes as their base64 text, NaN and infinities as text. Values are
/// converted directly (not through serde_json) so a string that happens to look like a date
/// stays a string, and integers stay integers.
fn indexable(attributes: &Attributes) -> Attributes {
    fn value(v: &AttrValue) -> AttrValue {
        match v {
            AttrValue::Float(f) if !f.is_finite() => AttrValue::Str(f.to_string().into()),
            AttrValue::Bytes(_) => AttrValue::Str(v.to_text().trim_matches('"').into()),
            AttrValue::Array(values) => AttrValue::Array(values.iter().map(value).collect()),
            AttrValue::Map(map) => AttrValue::Map(indexable(map)),
            other => other.clone(),
        }
    }
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), value(&kv.value)))
        .collect()
}

/// Bytes of the keys and text values of `attributes` (numbers count 8).
fn attributes_bytes(attributes: &Attributes) -> usize {
    fn value(v: &AttrValue) -> usize {
        match v {
            AttrValue::Str(s) => s.len(),
            AttrValue::Bytes(b) => b.len() * 4 / 3,
            AttrValue::Array(values) => values.iter().map(value).sum(),
            AttrValue::Map(map) => attributes_bytes(map),
            AttrValue::Bool(_) | AttrValue::Int(_) | AttrValue::Float(_) => 8,
        }
    }
    attributes
        .iter()
        .map(|kv| kv.key.len() + value(&kv.value))
        .sum()
}

/// Keys whose values are bytes (stored as base64 text, so their type is kept beside them).
fn binary_keys(attributes: &Attributes) -> impl Iterator<Item = &str> {
    attributes
        .iter()
        .filter(|kv| matches!(kv.value, AttrValue::Bytes(_)))
        .map(|kv| kv.key.as_str())
}

/// The stored form of a record: its JSON ([`record_json`]) without the values the reader
/// takes from the record's numeric fast fields ([`STORED_ELSEWHERE`]). Nanosecond times,
/// durations and span ids are nearly random: stored twice they made a third of the compressed
/// doc store (docs/BENCHMARKS.md). The trace id stays stored: reading it back from the
/// `trace_id` column's dictionary costs a zstd context per lookup, ten times a search hit's
/// whole cost. Written straight from the model (`json`), without a `serde_json::Value` tree:
/// building, serialising and dropping that tree was a fifth of all ingest CPU.
pub(crate) fn stored_json(record: &Record) -> String {
    let mut out = String::with_capacity(1024);
    json::record(&mut out, record, true);
    out
}

/// Keys of [`record_json`] left out of [`stored_json`]: the reader restores them from the fast
/// fields `timestamp`, `duration_ns`, `span_id` and `parent_span_id` (see
/// `trace::RecordLoader`).
pub(crate) const STORED_ELSEWHERE: [&str; 5] =
    ["start", "time", "duration_ns", "span_id", "parent_span_id"];

#[cfg(test)]
mod tests {
    use model::{LogRecord, Span, SpanEvent, TraceRef};
    use tantivy::Document as _;

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

    fn span_with(attributes: Attributes) -> Record {
        Record::Span(Span {
            trace_id: Some(model::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()),
            span_id: Some(model::SpanId::from_hex("00f067aa0ba902b7").unwrap()),
            name: "charge".into(),
            service: "payment".into(),
            start_ns: 1_000,
            end_ns: 2_000,
            events: vec![SpanEvent {
                time_ns: 1_500,
                name: "exception".into(),
                attributes: attributes.clone(),
            }],
            attributes,
            ..Span::default()
        })
    }

    /// The document as tantivy sees it, as JSON (field name → values).
    fn indexed(record: Record) -> serde_json::Value {
        let fields = Arc::new(Fields::new());
        let doc = RecordDoc::new(record, fields.clone(), 7);
        let json = doc.into_tantivy_document().to_json(&fields.schema);
        serde_json::from_str(&json).unwrap()
    }

    /// A document's values come in the order of their fields (tantivy sorts them per document
    /// before indexing; sorted input is its cheap case), with every optional part present.
    #[test]
    fn values_come_in_field_order() {
        let mut attributes = Attributes::default();
        attributes.push("k", AttrValue::Str("v".into()));
        let Record::Span(mut span) = span_with(attributes.clone()) else {
            unreachable!()
        };
        span.parent_span_id = Some(model::SpanId::from_hex("00f067aa0ba902b8").unwrap());
        span.status.message = "card declined".into();
        span.resource = Arc::new(attributes.clone());
        span.scope.attributes = attributes.clone();
        let origin = Some(model::Origin {
            source: "spans.jsonl".into(),
            offset: 0,
        });
        span.origin = origin.clone();
        span.links = vec![
            model::SpanLink {
                attributes: attributes.clone(),
                ..Default::default()
            };
            2
        ];
        let log = Record::Log(LogRecord {
            level: Some(model::Level::Error),
            body: "declined".into(),
            attributes: attributes.clone(),
            resource: Arc::new(attributes),
            trace_id: span.trace_id.map(TraceRef::Full),
            origin,
            ..LogRecord::default()
        });
        let fields = Arc::new(Fields::new());
        // The span is not an error: it has no `is_error`; the log (level error) has one.
        for (record, expected) in [(Record::Span(span), 22), (log, 13)] {
            let doc = RecordDoc::new(record, fields.clone(), 7);
            let ids: Vec<u32> = doc
                .iter_fields_and_values()
                .map(|(field, _)| field.field_id())
                .collect();
            assert!(ids.is_sorted(), "{ids:?}");
            assert_eq!(ids.len(), expected, "{ids:?}");
        }
    }

    /// Every value is read straight from the record, typed as it was decoded; span events carry
    /// their name under `event.name`.
    #[test]
    fn the_document_holds_the_record_values_with_their_types() {
        let doc = indexed(span_with(nested()));
        let attributes = &doc["attributes"][0];
        assert_eq!(attributes["http.status_code"], 502);
        assert_eq!(attributes["ratio"], 0.25);
        assert_eq!(attributes["retried"], true);
        assert_eq!(attributes["card"]["bin"], "411111");
        assert_eq!(attributes["tags"], serde_json::json!(["a", 1]));
        assert_eq!(doc["events"][0]["event.name"], "exception");
        assert_eq!(doc["events"][0]["card"]["last4"], 4242);
        assert_eq!(doc["trace_id"][0], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(doc["span_id"][0], 0x00f0_67aa_0ba9_02b7_u64);
        assert_eq!(doc["seq"][0], 7);
        assert_eq!(doc["kind"][0], "span");
        assert!(doc.get("parent_span_id").is_none());
    }

    /// Bytes are indexed as their base64 text and NaN as text, in events too; the stored record
    /// is the record's JSON either way.
    #[test]
    fn bytes_and_nan_are_indexed_as_text() {
        let mut attributes = nested();
        assert!(!needs_owned(&attributes));
        attributes.push("payload", AttrValue::Bytes(vec![1, 2, 3]));
        attributes.push("x", AttrValue::Array(vec![AttrValue::Float(f64::NAN)]));
        assert!(needs_owned(&attributes));
        let record = span_with(attributes);
        let stored = stored_json(&record);
        let fields = Arc::new(Fields::new());
        let doc = RecordDoc::new(record.clone(), fields, 1);
        assert_eq!(doc.stored(), stored);
        // The stored form leaves out what the fast fields hold; the full form has it all.
        let stored: Value = serde_json::from_str(&stored).unwrap();
        let whole = record_json(&record);
        for key in STORED_ELSEWHERE {
            assert!(stored.get(key).is_none(), "{key} is stored");
        }
        for key in [
            "trace_id",
            "start",
            "duration_ns",
            "span_id",
            "parent_span_id",
        ] {
            assert!(whole.get(key).is_some(), "{key} is missing");
        }
        let doc = indexed(record);
        for object in [&doc["attributes"][0], &doc["events"][0]] {
            assert_eq!(object["payload"], "AQID");
            assert_eq!(object["x"], serde_json::json!(["NaN"]));
            assert_eq!(object["http.status_code"], 502);
        }
    }

    /// `record`'s whole JSON (what readers hand out) is `expected`, and its stored form is that
    /// without the [`STORED_ELSEWHERE`] keys.
    fn assert_json_forms(record: &Record, expected: Value) {
        assert_eq!(record_json(record), expected);
        let stored: Value = serde_json::from_str(&stored_json(record)).unwrap();
        let mut expected = expected;
        for key in STORED_ELSEWHERE {
            expected.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(stored, expected);
    }

    /// The shape DESIGN.md's Trace JSON names, every optional part present, and the stored form
    /// without the keys the fast fields hold.
    #[test]
    fn a_span_is_written_in_the_trace_json_shape() {
        let mut attributes = Attributes::new();
        attributes.push("http.status_code", AttrValue::Int(-502));
        attributes.push("ratio", AttrValue::Float(0.1));
        attributes.push("nan", AttrValue::Float(f64::NAN));
        attributes.push("ok", AttrValue::Bool(false));
        attributes.push("blob", AttrValue::Bytes(vec![1, 2, 3]));
        let mut card = Attributes::new();
        card.push("last4", AttrValue::Str("4242\n\"".into()));
        attributes.push(
            "nested",
            AttrValue::Array(vec![AttrValue::Map(card), AttrValue::Array(Vec::new())]),
        );
        let mut resource = Attributes::new();
        resource.push("service.name", AttrValue::Str("payment".into()));
        let trace = model::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").ok();
        let span = Record::Span(Span {
            trace_id: trace,
            span_id: model::SpanId::from_hex("00f067aa0ba902b7").ok(),
            name: "charge \"card\"".into(),
            service: "payment".into(),
            kind: model::SpanKind::Client,
            start_ns: 1_700_000_000_123_456_789,
            end_ns: 1_700_000_000_223_456_789,
            status: model::Status {
                code: model::StatusCode::Error,
                message: "declined\tcode=51".into(),
            },
            events: vec![model::SpanEvent {
                time_ns: 1_700_000_000_200_000_000,
                name: "exception".into(),
                attributes: resource.clone(),
            }],
            links: vec![model::SpanLink {
                trace_id: trace,
                span_id: None,
                trace_state: "k=v".into(),
                attributes: Attributes::new(),
                flags: 0,
            }],
            trace_state: "congo=t61rcWkgMzE".into(),
            scope: model::Scope {
                name: "io.opentelemetry.http".into(),
                version: "1.2".into(),
                attributes: resource.clone(),
            },
            origin: Some(model::Origin {
                source: "/var/log/spans.jsonl".into(),
                offset: 1 << 40,
            }),
            attributes,
            resource: Arc::new(resource),
            ..Span::default()
        });
        let expected = serde_json::json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
            "parent_span_id": null,
            "service": "payment",
            "name": "charge \"card\"",
            "kind": "CLIENT",
            "start": "2023-11-14T22:13:20.123456789Z",
            "duration_ns": 100_000_000,
            "status": {"code": "ERROR", "message": "declined\tcode=51"},
            "attributes": {
                "http.status_code": -502, "ratio": 0.1, "nan": "NaN", "ok": false,
                "blob": "AQID", "nested": [{"last4": "4242\n\""}, []],
            },
            "resource": {"service.name": "payment"},
            "events": [{
                "name": "exception", "time": "2023-11-14T22:13:20.200000000Z",
                "attributes": {"service.name": "payment"},
            }],
            "binary_attributes": ["blob"],
            "links": [{
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": null,
                "trace_state": "k=v", "attributes": {},
            }],
            "trace_state": "congo=t61rcWkgMzE",
            "scope": {
                "name": "io.opentelemetry.http", "version": "1.2",
                "attributes": {"service.name": "payment"},
            },
            "origin": {"source": "/var/log/spans.jsonl", "offset": 1_u64 << 40},
        });
        assert_json_forms(&span, expected);
    }

    #[test]
    fn a_log_is_written_in_the_trace_json_shape() {
        let mut problems = model::Problems::empty();
        problems.insert(model::Problems::NO_TIMESTAMP);
        let log = Record::Log(LogRecord {
            time_ns: 1_700_000_000_000_000_001,
            service: "checkout".into(),
            level: Some(model::Level::Warn),
            severity_text: "WARNING".into(),
            body: "retrying \u{1}payment".into(),
            span_id: model::SpanId::from_hex("00f067aa0ba902b7").ok(),
            event_name: "retry".into(),
            scope: model::Scope {
                name: "checkout.logger".into(),
                version: String::new(),
                attributes: Attributes::new(),
            },
            problems,
            ..LogRecord::default()
        });
        let expected = serde_json::json!({
            "trace_id": null,
            "time": "2023-11-14T22:13:20.000000001Z",
            "service": "checkout",
            "level": "warn",
            "severity_text": "WARNING",
            "body": "retrying \u{1}payment",
            "span_id": "00f067aa0ba902b7",
            "attributes": {},
            "resource": {},
            "origin": null,
            "problems": ["no_timestamp"],
            "event_name": "retry",
            "scope": {"name": "checkout.logger", "version": ""},
        });
        assert_json_forms(&log, expected);
    }
}
