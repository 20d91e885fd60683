//! A trace in the JSON of Jaeger's v1 query API (the UI model): µs times, typed tags,
//! references, processes `p1`, `p2`, ... shared by spans with the same service and tags.
//!
//! The mapping is the OpenTelemetry → Jaeger translator's (resource → process, scope →
//! `otel.scope.*` tags, kind and status → `span.kind`, `otel.status_code`, `error`, events →
//! logs, parent and links → references), after Jaeger's "sort tags by key" adjuster. The logs
//! threadline holds for a span are added to its `logs` too, so trace views show them.

use std::collections::HashMap;

use index::{Trace, TraceLog, TraceSpan};
use model::TraceId;
use serde_json::{Value, json};

use index::json_object as object;

/// Jaeger's process name for a resource without attributes.
const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";
/// Integers beyond this lose precision as JSON numbers, so Jaeger writes them as strings.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// `{"traceID", "spans", "processes", "warnings"}`.
pub(crate) fn trace_json(trace: &Trace) -> Value {
    let trace_id = v1_trace_id(trace.trace_id);
    let mut processes = Processes::default();
    let spans: Vec<Value> = trace
        .spans
        .iter()
        .map(|span| {
            let process_id = processes.key_of(span);
            span_json(trace, span, &trace_id, process_id)
        })
        .collect();
    object([
        ("traceID", Value::String(trace_id)),
        ("spans", Value::Array(spans)),
        ("processes", processes.into_json()),
        ("warnings", Value::Null),
    ])
}

/// Lowercase hex: 16 digits when the high 64 bits are zero, else 32 (Jaeger's `TraceID.String`).
pub(crate) fn v1_trace_id(trace_id: TraceId) -> String {
    if trace_id.high64() == 0 {
        format!("{:016x}", trace_id.low64())
    } else {
        trace_id.to_string()
    }
}

/// A typed tag `{"key", "type", "value"}` from a stored attribute value.
pub(crate) fn key_value(key: &str, value: &Value) -> Value {
    let (kind, value) = match value {
        Value::String(s) => ("string", json!(s)),
        Value::Bool(b) => ("bool", json!(b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) => ("int64", json!(i)),
            Some(i) => ("int64", json!(i.to_string())),
            // Beyond i64 (a u64): Jaeger has no such type; keep the digits.
            None if n.is_u64() => ("int64", json!(n.to_string())),
            None => ("float64", value.clone()),
        },
        Value::Null => ("string", json!("")),
        // Maps and arrays become JSON text, as the translator writes them.
        other => ("string", json!(other.to_string())),
    };
    object([
        ("key", Value::String(key.to_owned())),
        ("type", Value::String(kind.to_owned())),
        ("value", value),
    ])
}

/// The tags of a stored attribute map; keys listed under `binary_list` of the record were bytes
/// (stored as base64 text) and become `binary` tags.
fn tags_of(record: &Value, map_key: &str, binary_list: &str) -> Vec<Value> {
    let binary: Vec<&str> = record
        .get(binary_list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let attributes = record.get(map_key).and_then(Value::as_object);
    attributes
        .into_iter()
        .flatten()
        .filter(|(k, _)| !(map_key == "resource" && k.as_str() == "service.name"))
        .map(|(k, v)| match v {
            Value::String(b64) if binary.contains(&k.as_str()) => {
                json!({"key": k, "type": "binary", "value": b64})
            }
            _ => key_value(k, v),
        })
        .collect()
}

/// Process keys in order of first use; spans with equal (service, tags) share one.
#[derive(Default)]
struct Processes<'a> {
    /// By the process's JSON text, its place in `list`; the place `i` is the key `p{i+1}`.
    places: HashMap<String, usize>,
    list: Vec<Value>,
    /// What made the processes of spans already keyed (service, resource, binary resource
    /// keys) and the process's place in `list`: a span with the same has the same process,
    /// found without building its tags. At most [`MAX_SEEN`].
    seen: Vec<(&'a str, Option<&'a Value>, Option<&'a Value>, usize)>,
}

/// Distinct process inputs remembered per trace; beyond, a span's process is built to be
/// looked up (the answer is the same).
const MAX_SEEN: usize = 64;

fn process_key(place: usize) -> String {
    format!("p{}", place + 1)
}

impl<'a> Processes<'a> {
    fn key_of(&mut self, span: &'a TraceSpan) -> String {
        let resource = span.record.get("resource");
        let binary = span.record.get("binary_resource");
        let same = |&&(service, r, b, _): &&(&str, Option<&Value>, Option<&Value>, usize)| {
            service == span.service && r == resource && b == binary
        };
        if let Some(&(.., place)) = self.seen.iter().find(same) {
            return process_key(place);
        }
        let attributes = resource.and_then(Value::as_object);
        let service = match (span.service.as_str(), attributes) {
            ("", None) => NO_SERVICE_NAME,
            ("", Some(r)) if r.is_empty() => NO_SERVICE_NAME,
            (service, _) => service,
        };
        let tags = tags_of(&span.record, "resource", "binary_resource");
        let process = object([
            ("serviceName", Value::String(service.to_owned())),
            ("tags", Value::Array(tags)),
        ]);
        let next = self.list.len();
        let place = *self.places.entry(process.to_string()).or_insert(next);
        if place == next {
            self.list.push(process);
        }
        if self.seen.len() < MAX_SEEN {
            self.seen.push((&span.service, resource, binary, place));
        }
        process_key(place)
    }

    fn into_json(self) -> Value {
        let processes = self.list.into_iter().enumerate();
        Value::Object(
            processes
                .map(|(place, p)| (process_key(place), p))
                .collect(),
        )
    }
}

fn span_json(trace: &Trace, span: &TraceSpan, trace_id: &str, process_id: String) -> Value {
    let record = &span.record;
    let span_id = record.get("span_id").and_then(Value::as_str).unwrap_or("");
    object([
        ("traceID", Value::String(trace_id.to_owned())),
        ("spanID", Value::String(span_id.to_owned())),
        ("operationName", Value::String(span.name.clone())),
        ("references", Value::Array(references(record, trace_id))),
        ("startTime", json!(span.start_ns.div_euclid(1000))),
        ("duration", json!(span.duration_ns.max(0) / 1000)),
        ("tags", Value::Array(tags(record))),
        ("logs", Value::Array(logs(trace, span))),
        ("processID", Value::String(process_id)),
        ("warnings", Value::Null),
    ])
}

/// The parent as `CHILD_OF` first, then each link: `FOLLOWS_FROM`, or `CHILD_OF` when the link
/// says `opentracing.ref_type = child_of`. A link to the parent retypes the parent reference.
fn references(record: &Value, trace_id: &str) -> Vec<Value> {
    let mut refs = Vec::new();
    let parent = record.get("parent_span_id").and_then(Value::as_str);
    if let Some(parent) = parent {
        refs.push(json!({"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}));
    }
    let links = record.get("links").and_then(Value::as_array);
    for link in links.into_iter().flatten() {
        let link_trace = link
            .get("trace_id")
            .and_then(Value::as_str)
            .and_then(|id| TraceId::from_hex(id).ok())
            .map(v1_trace_id);
        let (Some(link_trace), Some(link_span)) =
            (link_trace, link.get("span_id").and_then(Value::as_str))
        else {
            continue;
        };
        let child_of = link
            .pointer("/attributes/opentracing.ref_type")
            .and_then(Value::as_str)
            == Some("child_of");
        let ref_type = if child_of { "CHILD_OF" } else { "FOLLOWS_FROM" };
        if parent == Some(link_span) && link_trace == trace_id {
            refs[0]["refType"] = json!(ref_type);
            continue;
        }
        refs.push(json!({"refType": ref_type, "traceID": link_trace, "spanID": link_span}));
    }
    refs
}

/// Scope name and version, the attributes (by key), then kind, status, error, status
/// description and trace state, as the translator orders them.
fn tags(record: &Value) -> Vec<Value> {
    let mut tags = Vec::new();
    let text = |pointer: &str| {
        record
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = text("/scope/name") {
        tags.push(key_value("otel.scope.name", &json!(name)));
    }
    if let Some(version) = text("/scope/version") {
        tags.push(key_value("otel.scope.version", &json!(version)));
    }
    tags.extend(tags_of(record, "attributes", "binary_attributes"));
    match text("/kind") {
        Some("UNSPECIFIED") | None => {}
        Some(kind) => tags.push(key_value("span.kind", &json!(kind.to_ascii_lowercase()))),
    }
    if let Some(code @ ("OK" | "ERROR")) = text("/status/code") {
        tags.push(key_value("otel.status_code", &json!(code)));
        if code == "ERROR" {
            tags.push(key_value("error", &json!(true)));
        }
    }
    if let Some(message) = text("/status/message") {
        tags.push(key_value("otel.status_description", &json!(message)));
    }
    if let Some(state) = text("/trace_state") {
        tags.push(key_value("w3c.tracestate", &json!(state)));
    }
    tags
}

/// Span events, then the span's log records, in time order.
fn logs(trace: &Trace, span: &TraceSpan) -> Vec<Value> {
    let mut logs: Vec<(i64, Value)> = Vec::new();
    let events = span.record.get("events").and_then(Value::as_array);
    for event in events.into_iter().flatten() {
        let time_ns = event
            .get("time")
            .and_then(Value::as_str)
            .and_then(decode::time::parse_datetime)
            .unwrap_or(span.start_ns);
        let attributes = event.get("attributes").and_then(Value::as_object);
        let mut fields = Vec::new();
        let name = event.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() && !attributes.is_some_and(|a| a.contains_key("event")) {
            fields.push(key_value("event", &json!(name)));
        }
        fields.extend(tags_of(event, "attributes", "binary_attributes"));
        logs.push((
            time_ns,
            object([
                ("timestamp", json!(time_ns.div_euclid(1000))),
                ("fields", Value::Array(fields)),
            ]),
        ));
    }
    for &i in &span.logs {
        let log = &trace.logs[i];
        logs.push((log.time_ns, log_record_json(log)));
    }
    logs.sort_by_key(|(time_ns, _)| *time_ns);
    logs.into_iter().map(|(_, log)| log).collect()
}

/// A threadline log record as a span log: `level`, `message` (the body), then its attributes.
fn log_record_json(log: &TraceLog) -> Value {
    let mut fields = Vec::new();
    if let Some(level) = log.level {
        fields.push(key_value("level", &json!(level.as_str())));
    }
    if let Some(body) = log.record.get("body").and_then(Value::as_str) {
        fields.push(key_value("message", &json!(body)));
    }
    let attributes = log.record.get("attributes").and_then(Value::as_object);
    fields.extend(
        attributes
            .into_iter()
            .flatten()
            .map(|(k, v)| key_value(k, v)),
    );
    object([
        ("timestamp", json!(log.time_ns.div_euclid(1000))),
        ("fields", Value::Array(fields)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    use index::testing::{chain, graph_trace as random_trace, parent_graphs as graphs};

    proptest::proptest! {
        #[test]
        fn any_parent_graph_converts_to_both_jaeger_shapes(graph in graphs()) {
            let trace = random_trace(&graph);
            let v1 = trace_json(&trace);
            proptest::prop_assert_eq!(v1["spans"].as_array().unwrap().len(), trace.spans.len());
            let v3 = crate::jaeger::v3::traces_json(std::slice::from_ref(&trace)).unwrap();
            proptest::prop_assert!(v3["result"]["resourceSpans"].is_array());
        }
    }

    #[test]
    fn a_chain_100_000_spans_deep_converts_on_a_small_stack() {
        let trace = random_trace(&chain(100_000));
        let n = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let v1 = trace_json(&trace);
                let v3 = crate::jaeger::v3::traces_json(std::slice::from_ref(&trace)).unwrap();
                assert!(v3["result"]["resourceSpans"].is_array());
                v1["spans"].as_array().unwrap().len()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(n, 100_000);
    }

    #[test]
    fn ids_and_typed_values() {
        let short = TraceId::from_u128(0x227).unwrap();
        assert_eq!(v1_trace_id(short), "0000000000000227");
        let long = TraceId::from_u128(1 << 64 | 5).unwrap();
        assert_eq!(v1_trace_id(long), "00000000000000010000000000000005");
        assert_eq!(
            key_value("n", &json!(123)),
            json!({"key": "n", "type": "int64", "value": 123})
        );
        assert_eq!(
            key_value("big", &json!(9_007_199_254_740_993_i64)),
            json!({"key": "big", "type": "int64", "value": "9007199254740993"})
        );
        assert_eq!(
            key_value("f", &json!(72.5)),
            json!({"key": "f", "type": "float64", "value": 72.5})
        );
        assert_eq!(
            key_value("b", &json!(true)),
            json!({"key": "b", "type": "bool", "value": true})
        );
        assert_eq!(
            key_value("m", &json!({"a": [1]})),
            json!({"key": "m", "type": "string", "value": "{\"a\":[1]}"})
        );
    }
}
