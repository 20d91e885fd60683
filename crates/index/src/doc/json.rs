//! A record in the Trace-JSON shape (see DESIGN.md), written straight into a `String`.
//!
//! This is the stored record's writer, on every indexing thread for every record. serde_json's
//! serializer checks a string for characters to escape one byte at a time, which made it
//! more than half of the stored record's cost (docs/BENCHMARKS.md). Here a string is checked
//! eight bytes at a time and copied whole when nothing in it needs escaping; the rare string
//! that does goes through serde_json, as do floats, so both come out exactly as serde_json
//! writes them. Every piece written is a `&str`, so the result is a `String` with no UTF-8
//! check of its own. Nested values recurse as deep as the decoders allow (serde_json's and
//! prost's recursion limits), as tantivy's own indexing of them does.

use std::cell::RefCell;
use std::sync::Arc;

use model::{AttrValue, Attributes, Hex, LogRecord, Record, Span, SpanId, TraceId, TraceRef};

/// Appends `record`'s JSON to `out`; with `stored`, without the
/// [`STORED_ELSEWHERE`](super::STORED_ELSEWHERE) keys.
pub(super) fn record(out: &mut String, record: &Record, stored: bool) {
    match record {
        Record::Span(span) => write_span(out, span, stored),
        Record::Log(log) => write_log(out, log, stored),
    }
}

/// Appends `attributes` as an object with natural types.
fn attributes(out: &mut String, attributes: &Attributes) {
    let mut object = Object::new(out);
    for kv in attributes {
        value(object.key(&kv.key), &kv.value);
    }
    object.end();
}

/// A JSON object being written: keys are separated and quoted, values written by the caller.
struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, first: true }
    }

    /// Writes `"key":` and hands back the output for its value.
    fn key(&mut self, key: &str) -> &mut String {
        self.separate();
        string(self.out, key);
        self.out.push(':');
        self.out
    }

    /// [`key`](Self::key) for the shape's own keys, which hold nothing to escape.
    fn field(&mut self, name: &'static str) -> &mut String {
        debug_assert!(!needs_escaping(name.as_bytes()));
        self.separate();
        self.out.reserve(name.len() + 3);
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        self.out
    }

    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
    }

    fn end(self) {
        self.out.push('}');
    }
}

/// Whether `bytes` hold a character JSON must escape (a control character, `"` or `\`):
/// exactly those serde_json escapes. Eight bytes at a time: most strings here are keys and
/// short values, too short for the compiler's vectorised loops to start.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES << 7;
    // A high bit for some byte under `n` (n ≤ 128) when there is one, none when there is not
    // (the classic "has less" test: exact as a yes or no, not per byte).
    let has_less = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH_BITS;
    let has_byte = |w: u64, b: u8| has_less(w ^ (ONES * u64::from(b)), 1);
    let mut words = bytes.chunks_exact(8);
    let mut found = 0;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        found |= has_less(w, 0x20) | has_byte(w, b'"') | has_byte(w, b'\\');
    }
    found != 0
        || words
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn string(out: &mut String, s: &str) {
    if needs_escaping(s.as_bytes()) {
        out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

fn integer(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

fn null(out: &mut String) {
    out.push_str("null");
}

fn optional_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => null(out),
    }
}

/// An id as its hex text (`hex` of the model's ids), or null.
fn id<const N: usize>(out: &mut String, hex: Option<Hex<N>>) {
    match hex {
        Some(digits) => {
            out.push('"');
            out.push_str(digits.as_str());
            out.push('"');
        }
        None => null(out),
    }
}

/// Nanoseconds since the epoch as RFC 3339 text.
fn time(out: &mut String, ns: i64) {
    string(out, &decode::time::format_rfc3339_ns(ns));
}

fn array<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

fn value(out: &mut String, value: &AttrValue) {
    match value {
        AttrValue::Str(s) => string(out, s),
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Int(i) => integer(out, *i),
        AttrValue::Float(f) if f.is_finite() => {
            out.push_str(&serde_json::to_string(f).expect("a finite float always serialises"));
        }
        // NaN and the infinities as text ("NaN", "inf", "-inf").
        AttrValue::Float(f) => string(out, &f.to_string()),
        AttrValue::Bytes(_) => string(out, value.to_text().trim_matches('"')),
        AttrValue::Array(values) => array(out, values, self::value),
        AttrValue::Map(map) => attributes(out, map),
    }
}

thread_local! {
    /// The last shared resource this thread wrote, and its JSON.
    static LAST_RESOURCE: RefCell<Option<(Arc<Attributes>, String)>> =
        const { RefCell::new(None) };
}

/// A record's resource. The records of a resource block (OTLP's `resourceSpans`,
/// `resourceLogs`) share one `Arc` of its attributes and reach an indexing thread one after
/// another, so each thread keeps the JSON of the last shared resource it wrote and copies it
/// into the next record of the same block. The cache holds its `Arc`, so the address compared
/// is never that of a freed resource.
fn resource(out: &mut String, resource: &Arc<Attributes>) {
    if Arc::strong_count(resource) < 2 {
        // Not shared: no other record will bring it again.
        return attributes(out, resource);
    }
    LAST_RESOURCE.with_borrow_mut(|last| {
        match last {
            Some((cached, json)) if Arc::ptr_eq(cached, resource) => out.push_str(json),
            _ => {
                let start = out.len();
                attributes(out, resource);
                *last = Some((Arc::clone(resource), out[start..].to_owned()));
            }
        };
    });
}

/// The keys of the bytes-valued attributes (stored as base64 text, so their type is kept
/// beside them), or `None` when there are none.
fn binary_keys(attributes: &Attributes) -> Option<Vec<&str>> {
    let keys: Vec<&str> = super::binary_keys(attributes).collect();
    (!keys.is_empty()).then_some(keys)
}

fn strings(out: &mut String, items: &[&str]) {
    array(out, items, |out, s| string(out, s));
}

fn write_span(out: &mut String, span: &Span, stored: bool) {
    let mut o = Object::new(out);
    id(o.field("trace_id"), span.trace_id.map(TraceId::hex));
    if !stored {
        id(o.field("span_id"), span.span_id.map(SpanId::hex));
        id(
            o.field("parent_span_id"),
            span.parent_span_id.map(SpanId::hex),
        );
    }
    string(o.field("service"), &span.service);
    string(o.field("name"), &span.name);
    string(o.field("kind"), span.kind.as_str());
    if !stored {
        time(o.field("start"), span.start_ns);
        integer(o.field("duration_ns"), span.duration_ns());
    }
    let mut status = Object::new(o.field("status"));
    string(status.field("code"), span.status.code.as_str());
    string(status.field("message"), &span.status.message);
    status.end();
    attributes(o.field("attributes"), &span.attributes);
    resource(o.field("resource"), &span.resource);
    array(o.field("events"), &span.events, |out, event| {
        let mut e = Object::new(out);
        string(e.field("name"), &event.name);
        time(e.field("time"), event.time_ns);
        attributes(e.field("attributes"), &event.attributes);
        if let Some(keys) = binary_keys(&event.attributes) {
            strings(e.field("binary_attributes"), &keys);
        }
        e.end();
    });
    // Rarely set; left out when empty to keep the doc store small. Bytes values are stored
    // as base64 text; these lists keep their type for presenters that tell them apart
    // (Jaeger's `binary` tags).
    if let Some(keys) = binary_keys(&span.attributes) {
        strings(o.field("binary_attributes"), &keys);
    }
    if let Some(keys) = binary_keys(&span.resource) {
        strings(o.field("binary_resource"), &keys);
    }
    if !span.links.is_empty() {
        array(o.field("links"), &span.links, |out, link| {
            let mut l = Object::new(out);
            id(l.field("trace_id"), link.trace_id.map(TraceId::hex));
            id(l.field("span_id"), link.span_id.map(SpanId::hex));
            string(l.field("trace_state"), &link.trace_state);
            attributes(l.field("attributes"), &link.attributes);
            l.end();
        });
    }
    if !span.trace_state.is_empty() {
        string(o.field("trace_state"), &span.trace_state);
    }
    let scope = &span.scope;
    if !scope.name.is_empty() || !scope.version.is_empty() || !scope.attributes.is_empty() {
        write_scope(o.field("scope"), scope, true);
    }
    if let Some(origin) = &span.origin {
        write_origin(o.field("origin"), origin);
    }
    o.end();
}

fn write_log(out: &mut String, log: &LogRecord, stored: bool) {
    let mut o = Object::new(out);
    id(o.field("trace_id"), log.trace_id.map(TraceRef::hex));
    if !stored {
        time(o.field("time"), log.time_ns);
    }
    string(o.field("service"), &log.service);
    optional_string(o.field("level"), log.level.map(|level| level.as_str()));
    string(o.field("severity_text"), &log.severity_text);
    string(o.field("body"), &log.body);
    if !stored {
        id(o.field("span_id"), log.span_id.map(SpanId::hex));
    }
    attributes(o.field("attributes"), &log.attributes);
    resource(o.field("resource"), &log.resource);
    match &log.origin {
        Some(origin) => write_origin(o.field("origin"), origin),
        None => null(o.field("origin")),
    }
    strings(o.field("problems"), &log.problems.names());
    if !log.event_name.is_empty() {
        string(o.field("event_name"), &log.event_name);
    }
    if !log.scope.name.is_empty() {
        write_scope(o.field("scope"), &log.scope, false);
    }
    o.end();
}

/// Logs store only the scope's name and version; spans also its attributes, when it has any
/// (so records of scopes without attributes keep their shape).
fn write_scope(out: &mut String, scope: &model::Scope, with_attributes: bool) {
    let mut o = Object::new(out);
    string(o.field("name"), &scope.name);
    string(o.field("version"), &scope.version);
    if with_attributes && !scope.attributes.is_empty() {
        attributes(o.field("attributes"), &scope.attributes);
    }
    o.end();
}

fn write_origin(out: &mut String, origin: &model::Origin) {
    let mut o = Object::new(out);
    string(o.field("source"), &origin.source);
    integer(o.field("offset"), origin.offset);
    o.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string serde_json would write, written the same: plain text, every character
    /// that needs escaping, and text around them, at every length the vectorised check
    /// handles in a different part (its body and its tail).
    #[test]
    fn strings_come_out_as_serde_json_writes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "é, ü and 漢字 are not escaped".into(),
            "\u{7f} is not escaped either".into(),
        ];
        for special in ['"', '\\', '\n', '\t', '\0', '\u{1f}', '\u{8}'] {
            for len in [0, 1, 15, 16, 31, 32, 33, 100] {
                cases.push(format!("{}{special}", "a".repeat(len)));
                cases.push(format!("{special}{}", "a".repeat(len)));
            }
        }
        for case in cases {
            let mut ours = String::new();
            string(&mut ours, &case);
            assert_eq!(ours, serde_json::to_string(&case).unwrap(), "{case:?}");
        }
    }

    proptest::proptest! {
        /// The word-at-a-time check answers as a byte-by-byte one does, on any bytes (the
        /// alphabet is weighted towards the characters near the edges of the test).
        #[test]
        fn the_escaping_check_agrees_with_a_byte_by_byte_one(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![0u8, 0x1f, 0x20, 0x21, b'"', b'\\', 0x7f, 0x80, 0xff]),
                ],
                0..40,
            )
        ) {
            let expected = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escaping(&bytes), expected);
        }
    }

    /// Numbers, floats, bytes and nested values are written as serde_json writes them too.
    #[test]
    fn values_come_out_as_serde_json_writes_them() {
        let cases = [
            (AttrValue::Int(i64::MIN), "-9223372036854775808"),
            (AttrValue::Int(0), "0"),
            (AttrValue::Float(0.1), "0.1"),
            (AttrValue::Float(1e300), "1e+300"),
            (AttrValue::Float(-0.0), "-0.0"),
            (AttrValue::Float(f64::NAN), "\"NaN\""),
            (AttrValue::Float(f64::NEG_INFINITY), "\"-inf\""),
            (AttrValue::Bool(true), "true"),
            (AttrValue::Bytes(vec![1, 2, 3]), "\"AQID\""),
            (
                AttrValue::Array(vec![
                    AttrValue::Str("a\"b".into()),
                    AttrValue::Array(vec![]),
                ]),
                r#"["a\"b",[]]"#,
            ),
        ];
        for (v, expected) in cases {
            let mut out = String::new();
            value(&mut out, &v);
            assert_eq!(out, expected, "{v:?}");
        }
    }

    /// The same resource written twice in a row comes out the same, from the cache the
    /// second time; a different resource after it is not mistaken for it.
    #[test]
    fn a_shared_resource_is_written_once_and_copied() {
        let mut a = Attributes::new();
        a.push("service.name", AttrValue::Str("checkout".into()));
        let a = Arc::new(a);
        let _shared = Arc::clone(&a);
        let mut b = Attributes::new();
        b.push("service.name", AttrValue::Str("cart".into()));
        let b = Arc::new(b);
        let _shared_b = Arc::clone(&b);
        for (resource_of, expected) in [
            (&a, r#"{"service.name":"checkout"}"#),
            (&a, r#"{"service.name":"checkout"}"#),
            (&b, r#"{"service.name":"cart"}"#),
        ] {
            let mut out = String::from("prefix");
            resource(&mut out, resource_of);
            assert_eq!(out, format!("prefix{expected}"));
        }
    }
}
