//! Jaeger JSON spans: the Jaeger UI download (`{"data":[{traceID, spans, processes}]}`), one
//! trace object, a bare span object with its `process` embedded (one per line), and the legacy
//! v1-model JSON written by gogo jsonpb (`{"spans":[...]}` with base64 ids, RFC 3339 start
//! times, `"5000ns"` durations and `vType`/`vStr`/... tags).
//!
//! Mapping onto the model:
//! - the process's `serviceName` is the service; the resource is `service.name` followed by the
//!   process tags;
//! - times are µs (or RFC 3339 / Go duration strings in the legacy shape) → ns;
//! - ids are hex with leading zeros dropped (`from_hex_lenient`), or base64 in the legacy shape;
//! - the first `CHILD_OF` reference within the trace is the parent; every other reference is a
//!   link with `opentracing.ref_type` = `child_of` or `follows_from`;
//! - typed tags keep their type; `span.kind` sets the kind (absent stays UNSPECIFIED, as Jaeger
//!   shows it); `error=true`, `otel.status_code` and `otel.status_description` set the status;
//!   `otel.scope.*` and `w3c.tracestate` go back to the scope and trace state;
//! - span logs become events named by their `event` field, else `"log"`.

use std::collections::HashMap;

use model::{AttrValue, Attributes, KeyValue, Record, Span, SpanEvent, SpanId, SpanLink, TraceId};
use serde::Deserialize;

use crate::common::{
    self, Bool, Enum, F64, I64, Scalar, Text, U64, lift_conventional_tags, warn_bad_id,
};
use crate::{DecodeError, Decoder, LineContext, Output, Warning};

/// Decodes a Jaeger UI download, a trace object, a legacy `{"spans":[...]}` document or one
/// span object.
pub(crate) fn decode(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let doc: Document<'_> = parse(text)?;
    let traces = match (doc.data, doc.spans) {
        (Some(data), _) => data,
        (None, Some(spans)) => vec![Trace {
            spans: Some(spans),
            processes: doc.processes,
        }],
        (None, None) => {
            let span: JaegerSpan<'_> = parse(text)?;
            if span.span_id.is_none() && span.operation_name.is_none() {
                return Err(DecodeError::WrongShape {
                    expected: "Jaeger trace or span",
                });
            }
            vec![Trace {
                spans: Some(vec![span]),
                processes: None,
            }]
        }
    };
    if traces
        .iter()
        .all(|t| t.spans.as_ref().is_none_or(Vec::is_empty))
    {
        // Nothing to index; as an error the line is kept as a raw record instead of vanishing.
        return Err(DecodeError::WrongShape {
            expected: "Jaeger trace with spans",
        });
    }
    for trace in traces {
        let processes: HashMap<String, (String, Attributes)> = trace
            .processes
            .unwrap_or_default()
            .into_iter()
            .map(|(key, process)| (key, process.into_resource(decoder)))
            .collect();
        for span in trace.spans.unwrap_or_default() {
            let span = span.into_span(&processes, decoder, cx, &mut out.warnings);
            out.records.push(Record::Span(span));
        }
    }
    Ok(())
}

/// Any of the top-level shapes; a bare span has neither `data` nor `spans`.
#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<Trace<'a>>>,
    #[serde(borrow, default)]
    spans: Option<Vec<JaegerSpan<'a>>>,
    #[serde(borrow, default)]
    processes: Option<HashMap<String, Process<'a>>>,
}

#[derive(Deserialize)]
struct Trace<'a> {
    #[serde(borrow, default)]
    spans: Option<Vec<JaegerSpan<'a>>>,
    #[serde(borrow, default)]
    processes: Option<HashMap<String, Process<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan<'a> {
    #[serde(borrow, default, alias = "traceID", alias = "trace_id")]
    trace_id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "spanID", alias = "span_id")]
    span_id: Option<Text<'a>>,
    /// Deprecated in the UI model, still written by old versions.
    #[serde(borrow, default, alias = "parentSpanID", alias = "parent_span_id")]
    parent_span_id: Option<Text<'a>>,
    #[serde(default)]
    flags: Option<U64>,
    #[serde(default, alias = "operation_name")]
    operation_name: Option<String>,
    #[serde(borrow, default)]
    references: Option<Vec<Reference<'a>>>,
    #[serde(default, alias = "start_time")]
    start_time: Option<Scalar>,
    #[serde(default)]
    duration: Option<Scalar>,
    #[serde(borrow, default)]
    tags: Option<Vec<Tag<'a>>>,
    #[serde(borrow, default)]
    logs: Option<Vec<Log<'a>>>,
    #[serde(default, alias = "processID", alias = "process_id")]
    process_id: Option<String>,
    #[serde(borrow, default)]
    process: Option<Process<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference<'a> {
    #[serde(borrow, default, alias = "ref_type")]
    ref_type: Option<Enum<'a>>,
    #[serde(borrow, default, alias = "traceID", alias = "trace_id")]
    trace_id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "spanID", alias = "span_id")]
    span_id: Option<Text<'a>>,
}

/// A tag in the UI shape (`key`, `type`, `value`) or the v1-model shape (`key`, `vType`, `vStr`,
/// `vInt64`, `vFloat64`, `vBool`, `vBinary`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tag<'a> {
    #[serde(default)]
    key: String,
    #[serde(borrow, default, rename = "type")]
    value_type: Option<Text<'a>>,
    #[serde(default)]
    value: Option<Scalar>,
    #[serde(borrow, default, alias = "v_type")]
    v_type: Option<Enum<'a>>,
    #[serde(default, alias = "v_str")]
    v_str: Option<String>,
    #[serde(default, alias = "v_int64")]
    v_int64: Option<I64>,
    #[serde(default, alias = "v_float64")]
    v_float64: Option<F64>,
    #[serde(default, alias = "v_bool")]
    v_bool: Option<Bool>,
    #[serde(borrow, default, alias = "v_binary")]
    v_binary: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Log<'a> {
    #[serde(default)]
    timestamp: Option<Scalar>,
    #[serde(borrow, default)]
    fields: Option<Vec<Tag<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process<'a> {
    #[serde(default, alias = "service_name")]
    service_name: Option<String>,
    #[serde(borrow, default)]
    tags: Option<Vec<Tag<'a>>>,
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|e| DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// A Jaeger trace id: base64 (legacy v1 model, always padded with `=` at these lengths), else
/// hex of up to 32 digits with leading zeros dropped.
fn parse_trace_id(s: &str) -> Result<TraceId, model::IdError> {
    if s.ends_with('=') {
        TraceId::from_base64(s)
    } else {
        TraceId::from_hex_lenient(s)
    }
}

fn parse_span_id(s: &str) -> Result<SpanId, model::IdError> {
    if s.ends_with('=') {
        SpanId::from_base64(s)
    } else {
        SpanId::from_hex_lenient(s)
    }
}

fn check<T>(
    raw: Option<&Text<'_>>,
    parse: fn(&str) -> Result<T, model::IdError>,
    what: &str,
    cx: &LineContext<'_>,
    warnings: &mut Vec<Warning>,
) -> Option<T> {
    let raw = raw?.as_str();
    if raw.is_empty() {
        return None;
    }
    parse(raw)
        .map_err(|err| warn_bad_id(warnings, cx, what, &raw, err))
        .ok()
}

impl Process<'_> {
    fn into_resource(self, decoder: &Decoder) -> (String, Attributes) {
        let service = self
            .service_name
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| decoder.default_service().to_owned());
        let mut resource = Attributes::new();
        resource.push("service.name", AttrValue::Str(service.as_str().into()));
        resource.0.extend(
            self.tags
                .unwrap_or_default()
                .into_iter()
                .map(Tag::into_key_value),
        );
        (service, resource)
    }
}

impl JaegerSpan<'_> {
    fn into_span(
        self,
        processes: &HashMap<String, (String, Attributes)>,
        decoder: &Decoder,
        cx: &LineContext<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Span {
        let trace_id = check(
            self.trace_id.as_ref(),
            parse_trace_id,
            "Jaeger trace id",
            cx,
            warnings,
        );
        let span_id = check(
            self.span_id.as_ref(),
            parse_span_id,
            "Jaeger span id",
            cx,
            warnings,
        );

        let (service, resource) = match (self.process, self.process_id) {
            (Some(process), _) => process.into_resource(decoder),
            (None, Some(id)) => processes.get(&id).cloned().unwrap_or_else(|| {
                warnings.push(Warning {
                    offset: cx.offset,
                    message: format!("Jaeger span refers to unknown process {id:?}"),
                });
                Process {
                    service_name: None,
                    tags: None,
                }
                .into_resource(decoder)
            }),
            (None, None) => Process {
                service_name: None,
                tags: None,
            }
            .into_resource(decoder),
        };

        let mut parent_span_id = None;
        let mut links = Vec::new();
        for reference in self.references.unwrap_or_default() {
            let ref_trace_id = check(
                reference.trace_id.as_ref(),
                parse_trace_id,
                "Jaeger reference trace id",
                cx,
                warnings,
            );
            let ref_span_id = check(
                reference.span_id.as_ref(),
                parse_span_id,
                "Jaeger reference span id",
                cx,
                warnings,
            );
            // jsonpb leaves out CHILD_OF, the enum's zero value.
            let follows_from = reference.ref_type.as_ref().is_some_and(|t| {
                t.number(|name| i64::from(name.eq_ignore_ascii_case("FOLLOWS_FROM"))) == 1
            });
            let same_trace = ref_trace_id.is_none() || ref_trace_id == trace_id;
            if !follows_from && same_trace && parent_span_id.is_none() && ref_span_id.is_some() {
                parent_span_id = ref_span_id;
                continue;
            }
            let mut attributes = Attributes::new();
            let ref_type = if follows_from {
                "follows_from"
            } else {
                "child_of"
            };
            attributes.push("opentracing.ref_type", AttrValue::Str(ref_type.into()));
            links.push(SpanLink {
                trace_id: ref_trace_id.or(trace_id),
                span_id: ref_span_id,
                attributes,
                ..SpanLink::default()
            });
        }
        if parent_span_id.is_none() {
            parent_span_id = check(
                self.parent_span_id.as_ref(),
                parse_span_id,
                "Jaeger parent span id",
                cx,
                warnings,
            );
        }

        let start_ns = match self.start_time.and_then(time_ns) {
            Some(ns) => ns,
            None => {
                warnings.push(Warning {
                    offset: cx.offset,
                    message: "Jaeger span has no usable startTime; using the read time".to_owned(),
                });
                cx.read_time_ns
            }
        };
        let end_ns = start_ns.saturating_add(self.duration.map_or(0, duration_ns));

        let events = self
            .logs
            .unwrap_or_default()
            .into_iter()
            .map(|log| {
                let mut attributes: Attributes = Attributes(
                    log.fields
                        .unwrap_or_default()
                        .into_iter()
                        .map(Tag::into_key_value)
                        .collect(),
                );
                let name = match attributes.0.iter().position(|kv| kv.key == "event") {
                    Some(at) => attributes.0.remove(at).value.to_text(),
                    None => "log".to_owned(),
                };
                SpanEvent {
                    time_ns: log.timestamp.and_then(time_ns).unwrap_or(start_ns),
                    name,
                    attributes,
                }
            })
            .collect();

        let mut span = Span {
            trace_id,
            span_id,
            parent_span_id,
            name: self.operation_name.unwrap_or_default(),
            service,
            start_ns,
            end_ns,
            attributes: Attributes(
                self.tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(Tag::into_key_value)
                    .collect(),
            ),
            resource: std::sync::Arc::new(resource),
            events,
            links,
            flags: self.flags.map_or(0, |f| u32::try_from(f.0).unwrap_or(0)),
            ..Span::default()
        };
        lift_conventional_tags(&mut span, false);
        span
    }
}

impl Tag<'_> {
    fn into_key_value(self) -> KeyValue {
        let value = if let Some(value_type) = &self.value_type {
            typed_value(value_type.as_str(), self.value.unwrap_or(Scalar::Null))
        } else if self.v_type.is_some()
            || self.v_str.is_some()
            || self.v_int64.is_some()
            || self.v_float64.is_some()
            || self.v_bool.is_some()
            || self.v_binary.is_some()
        {
            self.v1_value()
        } else {
            self.value
                .map_or_else(common::empty_value, Scalar::into_value)
        };
        KeyValue {
            key: self.key.into(),
            value,
        }
    }

    /// The v1-model value: `vType` names the field that holds it (STRING, the zero value, may
    /// be left out).
    fn v1_value(&self) -> AttrValue {
        let v_type = self.v_type.as_ref().map_or(0, |t| {
            t.number(|name| match name.to_ascii_uppercase().as_str() {
                "BOOL" => 1,
                "INT64" => 2,
                "FLOAT64" => 3,
                "BINARY" => 4,
                _ => 0,
            })
        });
        match v_type {
            1 => AttrValue::Bool(self.v_bool.unwrap_or_default().0),
            2 => AttrValue::Int(self.v_int64.unwrap_or_default().0),
            3 => AttrValue::Float(self.v_float64.unwrap_or_default().0),
            4 => binary(self.v_binary.as_ref().map_or("", Text::as_str)),
            _ => AttrValue::Str(self.v_str.as_deref().unwrap_or_default().into()),
        }
    }
}

/// A UI-shape tag value of the given `type`; a value that does not fit its type keeps its own.
fn typed_value(value_type: &str, value: Scalar) -> AttrValue {
    match (value_type.to_ascii_lowercase().as_str(), value) {
        ("string", value) => AttrValue::Str(value.into_text()),
        ("bool", Scalar::Str(s)) if s.eq_ignore_ascii_case("true") => AttrValue::Bool(true),
        ("bool", Scalar::Str(s)) if s.eq_ignore_ascii_case("false") => AttrValue::Bool(false),
        // int64 values outside ±(2^53−1) are written as decimal strings.
        ("int64", Scalar::Str(s)) if s.trim().parse::<i64>().is_ok() => {
            AttrValue::Int(s.trim().parse().unwrap_or_default())
        }
        ("int64", Scalar::Float(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            AttrValue::Int(f as i64)
        }
        ("float64", Scalar::Int(i)) => AttrValue::Float(i as f64),
        ("float64", Scalar::Str(s)) if s.trim().parse::<f64>().is_ok() => {
            AttrValue::Float(s.trim().parse().unwrap_or_default())
        }
        ("binary", Scalar::Str(s)) => binary(&s),
        (_, value) => value.into_value(),
    }
}

fn binary(b64: &str) -> AttrValue {
    match common::decode_base64(b64) {
        Some(bytes) => AttrValue::Bytes(bytes),
        None => AttrValue::Str(b64.into()),
    }
}

/// A Jaeger time: µs since the epoch as a number (or digits), or an RFC 3339 string.
fn time_ns(value: Scalar) -> Option<i64> {
    match value {
        Scalar::Int(us) if us > 0 => Some(common::us_to_ns(us)),
        Scalar::Float(us) if us > 0.0 && us < 9.2e15 => Some((us * 1000.0) as i64),
        Scalar::Str(s) => match s.trim().parse::<i64>() {
            Ok(us) if us > 0 => Some(common::us_to_ns(us)),
            Ok(_) => None,
            Err(_) => crate::time::parse_datetime(&s),
        },
        _ => None,
    }
}

/// A Jaeger duration: µs as a number (or digits), or a Go duration string (`"5000ns"`,
/// `"1.5ms"`, `"1h2m"`) as gogo jsonpb writes it. Unparseable or negative durations are 0.
fn duration_ns(value: Scalar) -> i64 {
    match value {
        Scalar::Int(us) => common::us_to_ns(us.max(0)),
        Scalar::Float(us) if us > 0.0 && us < 9.2e15 => (us * 1000.0) as i64,
        Scalar::Str(s) => match s.trim().parse::<i64>() {
            Ok(us) => common::us_to_ns(us.max(0)),
            Err(_) => go_duration_ns(s.trim()).unwrap_or(0).max(0),
        },
        _ => 0,
    }
}

/// Go's `time.ParseDuration`: an optional sign, then `<number><unit>` pairs with units `ns`,
/// `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`; `"0"` alone is allowed.
fn go_duration_ns(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_ns("5000ns"), Some(5000));
        assert_eq!(go_duration_ns("1.5ms"), Some(1_500_000));
        assert_eq!(go_duration_ns("1h2m3s"), Some(3_723_000_000_000));
        assert_eq!(go_duration_ns("250µs"), Some(250_000));
        assert_eq!(go_duration_ns("0"), Some(0));
        assert_eq!(go_duration_ns("1000"), None);
        assert_eq!(go_duration_ns("5 days"), None);
        assert_eq!(duration_ns(Scalar::Int(5)), 5000);
        assert_eq!(duration_ns(Scalar::Str("100000ns".into())), 100_000);
    }

    #[test]
    fn ids_hex_lenient_or_base64() {
        assert_eq!(
            parse_trace_id("227").unwrap().to_string(),
            "00000000000000000000000000000227"
        );
        assert_eq!(
            parse_trace_id("AAAAAAAAAAAAAAAAAAAAEQ==")
                .unwrap()
                .to_string(),
            "00000000000000000000000000000011"
        );
        assert_eq!(
            parse_span_id("AAAAAAAAAAM=").unwrap().to_string(),
            "0000000000000003"
        );
        assert!(parse_span_id("xyz").is_err());
    }
}
