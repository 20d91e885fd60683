//! OTLP protobuf bodies (`application/x-protobuf` on `/v1/traces` and `/v1/logs`) to model
//! records, by the same mapping rules as the OTLP/JSON decoder: ids checked (bad ones become
//! warnings, the record is kept unlinked), the service from the resource's `service.name`, a
//! log's time from its time, observed time or read time, its level from the severity number or
//! text.

use model::{
    AttrValue, Attributes, IdError, KeyValue, LogRecord, Origin, Problems, Record, Scope, Span,
    SpanEvent, SpanId, SpanKind, SpanLink, Status, StatusCode, TraceId, TraceRef,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue as KeyValueProto, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use crate::common::{self, service_of, warn_bad_id};
use crate::{DecodeError, Decoder, LineContext, Output, Warning};

/// Decodes an `ExportTraceServiceRequest` body. Nothing is added to `out` when the body is not
/// valid protobuf.
pub fn decode_traces(
    body: &[u8],
    decoder: &Decoder,
    source: &str,
    read_time_ns: i64,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)?;
    decode_traces_request(request, decoder, source, read_time_ns, out);
    Ok(())
}

/// Decodes an `ExportTraceServiceRequest` already parsed (the OTLP/gRPC receiver gets it
/// from its codec), by the same rules as [`decode_traces`].
pub fn decode_traces_request(
    request: ExportTraceServiceRequest,
    decoder: &Decoder,
    source: &str,
    read_time_ns: i64,
    out: &mut Output,
) {
    let cx = LineContext {
        source,
        offset: 0,
        read_time_ns,
    };
    for resource_spans in request.resource_spans {
        let resource = std::sync::Arc::new(resource_attributes(resource_spans.resource));
        let service = service_of(&resource, decoder);
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_of(scope_spans.scope);
            for span in scope_spans.spans {
                let mut bad = false;
                let mut ids = IdChecker {
                    cx: &cx,
                    warnings: &mut out.warnings,
                    bad: &mut bad,
                };
                let trace_id = ids.trace_id(&span.trace_id, "span trace id");
                let span_id = ids.span_id(&span.span_id, "span id");
                let parent_span_id = ids.span_id(&span.parent_span_id, "parent span id");
                let links = span
                    .links
                    .into_iter()
                    .map(|link| SpanLink {
                        trace_id: ids.trace_id(&link.trace_id, "link trace id"),
                        span_id: ids.span_id(&link.span_id, "link span id"),
                        trace_state: link.trace_state,
                        attributes: attributes(link.attributes),
                        flags: link.flags,
                    })
                    .collect();
                let events = span
                    .events
                    .into_iter()
                    .map(|event| SpanEvent {
                        time_ns: common::nonzero_ns(event.time_unix_nano).unwrap_or(0),
                        name: event.name,
                        attributes: attributes(event.attributes),
                    })
                    .collect();
                let status = span.status.map_or_else(Status::default, |s| Status {
                    code: StatusCode::from_otlp(i64::from(s.code)),
                    message: s.message,
                });
                out.records.push(Record::Span(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    name: span.name,
                    kind: SpanKind::from_otlp(i64::from(span.kind)),
                    service: service.clone(),
                    start_ns: common::nonzero_ns(span.start_time_unix_nano).unwrap_or(0),
                    end_ns: common::nonzero_ns(span.end_time_unix_nano).unwrap_or(0),
                    status,
                    attributes: attributes(span.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    events,
                    links,
                    trace_state: span.trace_state,
                    flags: span.flags,
                    origin: Some(Origin {
                        source: source.to_owned(),
                        offset: 0,
                    }),
                }));
            }
        }
    }
}

/// Decodes an `ExportLogsServiceRequest` body. Nothing is added to `out` when the body is not
/// valid protobuf.
pub fn decode_logs(
    body: &[u8],
    decoder: &Decoder,
    source: &str,
    read_time_ns: i64,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let request = ExportLogsServiceRequest::decode(body)?;
    decode_logs_request(request, decoder, source, read_time_ns, out);
    Ok(())
}

/// Decodes an `ExportLogsServiceRequest` already parsed, by the same rules as
/// [`decode_logs`].
pub fn decode_logs_request(
    request: ExportLogsServiceRequest,
    decoder: &Decoder,
    source: &str,
    read_time_ns: i64,
    out: &mut Output,
) {
    let cx = LineContext {
        source,
        offset: 0,
        read_time_ns,
    };
    for resource_logs in request.resource_logs {
        let resource = std::sync::Arc::new(resource_attributes(resource_logs.resource));
        let service = service_of(&resource, decoder);
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_of(scope_logs.scope);
            for log in scope_logs.log_records {
                let mut bad = false;
                let mut ids = IdChecker {
                    cx: &cx,
                    warnings: &mut out.warnings,
                    bad: &mut bad,
                };
                let trace_id = ids.trace_id(&log.trace_id, "log trace id");
                let span_id = ids.span_id(&log.span_id, "log span id");
                let (time_ns, observed_time_ns, mut problems) =
                    common::log_time(log.time_unix_nano, log.observed_time_unix_nano, &cx);
                if bad {
                    problems.insert(Problems::BAD_ID);
                }
                let (severity_number, level) =
                    common::severity(i64::from(log.severity_number), &log.severity_text);
                out.records.push(Record::Log(LogRecord {
                    time_ns,
                    observed_time_ns,
                    service: service.clone(),
                    severity_number,
                    severity_text: log.severity_text,
                    level,
                    body: common::body_text(log.body.map(any_value)),
                    attributes: attributes(log.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    event_name: log.event_name,
                    trace_id: trace_id.map(TraceRef::Full),
                    span_id,
                    flags: log.flags,
                    origin: Some(Origin {
                        source: source.to_owned(),
                        offset: 0,
                    }),
                    problems,
                }));
            }
        }
    }
}

/// Checks binary ids: empty is absent, anything else must be 16/8 bytes and not all zero.
struct IdChecker<'c, 'w> {
    cx: &'c LineContext<'c>,
    warnings: &'w mut Vec<Warning>,
    bad: &'w mut bool,
}

impl IdChecker<'_, '_> {
    fn trace_id(&mut self, bytes: &[u8], what: &str) -> Option<TraceId> {
        self.check(bytes, what, TraceId::from_bytes)
    }

    fn span_id(&mut self, bytes: &[u8], what: &str) -> Option<SpanId> {
        self.check(bytes, what, SpanId::from_bytes)
    }

    fn check<T>(
        &mut self,
        bytes: &[u8],
        what: &str,
        parse: fn(&[u8]) -> Result<T, IdError>,
    ) -> Option<T> {
        if bytes.is_empty() {
            return None;
        }
        match parse(bytes) {
            Ok(id) => Some(id),
            Err(err) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                warn_bad_id(self.warnings, self.cx, what, &hex, err);
                *self.bad = true;
                None
            }
        }
    }
}

fn resource_attributes(resource: Option<Resource>) -> Attributes {
    resource
        .map(|r| attributes(r.attributes))
        .unwrap_or_default()
}

fn scope_of(scope: Option<InstrumentationScope>) -> Scope {
    scope.map_or_else(Scope::default, |s| Scope {
        name: s.name,
        version: s.version,
        attributes: attributes(s.attributes),
    })
}

fn attributes(list: Vec<KeyValueProto>) -> Attributes {
    Attributes(
        list.into_iter()
            .map(|kv| KeyValue {
                key: kv.key.into(),
                value: kv.value.map_or_else(common::empty_value, any_value),
            })
            .collect(),
    )
}

fn any_value(value: AnyValue) -> AttrValue {
    match value.value {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s.into()),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::DoubleValue(f)) => AttrValue::Float(f),
        Some(any_value::Value::ArrayValue(array)) => {
            AttrValue::Array(array.values.into_iter().map(any_value).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => AttrValue::Map(attributes(list.values)),
        Some(any_value::Value::BytesValue(bytes)) => AttrValue::Bytes(bytes),
        // A string-table index only means something inside a profile.
        Some(any_value::Value::StringValueStrindex(_)) | None => common::empty_value(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as LogProto, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span as SpanProto, span, status,
    };

    use super::*;
    use crate::DecoderConfig;

    const TRACE_ID: [u8; 16] = [
        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6,
        0x0c,
    ];
    const SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
    const PARENT_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73];

    fn decoder() -> Decoder {
        Decoder::new(DecoderConfig {
            service: Some("fallback".into()),
            ..DecoderConfig::default()
        })
        .unwrap()
    }

    fn kv(key: &str, value: any_value::Value) -> KeyValueProto {
        KeyValueProto {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn string(s: &str) -> any_value::Value {
        any_value::Value::StringValue(s.into())
    }

    fn scope() -> InstrumentationScope {
        InstrumentationScope {
            name: "my.library".into(),
            version: "1.0.0".into(),
            attributes: vec![kv("my.scope.attribute", string("some scope attribute"))],
            ..Default::default()
        }
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![kv("service.name", string("my.service"))],
            ..Default::default()
        }
    }

    /// `opentelemetry-proto/examples/trace.json`, as protobuf.
    fn example_trace_request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans: vec![SpanProto {
                        trace_id: TRACE_ID.to_vec(),
                        span_id: SPAN_ID.to_vec(),
                        parent_span_id: PARENT_ID.to_vec(),
                        name: "I'm a server span".into(),
                        start_time_unix_nano: 1_544_712_660_000_000_000,
                        end_time_unix_nano: 1_544_712_661_000_000_000,
                        kind: 2,
                        attributes: vec![kv("my.span.attr", string("some value"))],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn without_origin(mut records: Vec<Record>) -> Vec<Record> {
        for record in &mut records {
            match record {
                Record::Span(s) => s.origin = None,
                Record::Log(l) => l.origin = None,
            }
        }
        records
    }

    #[test]
    fn proto_trace_example_matches_the_json_one() {
        let body = example_trace_request().encode_to_vec();
        let mut from_proto = Output::default();
        decode_traces(&body, &decoder(), "proto", 0, &mut from_proto).unwrap();

        let json = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/decode/otlp-json/ok/proto-examples/trace.json"
        ))
        .unwrap();
        let mut from_json = Output::default();
        let cx = LineContext {
            source: "json",
            offset: 0,
            read_time_ns: 0,
        };
        crate::otlp_json::decode_traces(&json, &decoder(), &cx, &mut from_json).unwrap();

        assert_eq!(from_proto.records.len(), 1);
        assert!(from_proto.warnings.is_empty() && from_json.warnings.is_empty());
        assert_eq!(
            without_origin(from_proto.records),
            without_origin(from_json.records)
        );
    }

    #[test]
    fn proto_span_fields_are_mapped() {
        let mut request = example_trace_request();
        let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
        span.flags = 0x301;
        span.trace_state = "rojo=1".into();
        span.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
            code: status::StatusCode::Error as i32,
            message: "card declined".into(),
        });
        span.events.push(span::Event {
            time_unix_nano: 1_544_712_660_500_000_000,
            name: "exception".into(),
            attributes: vec![kv("exception.type", string("CardError"))],
            ..Default::default()
        });
        span.links.push(span::Link {
            trace_id: TRACE_ID.to_vec(),
            span_id: PARENT_ID.to_vec(),
            flags: 256,
            ..Default::default()
        });
        span.attributes.push(kv(
            "nested",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(any_value::Value::IntValue(7)),
                    },
                    AnyValue {
                        value: Some(any_value::Value::BytesValue(vec![1, 2])),
                    },
                    AnyValue { value: None },
                ],
            }),
        ));
        let mut out = Output::default();
        decode_traces(&request.encode_to_vec(), &decoder(), "src", 0, &mut out).unwrap();
        let Record::Span(span) = &out.records[0] else {
            panic!("not a span")
        };
        assert_eq!(
            span.trace_id.unwrap().to_string(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(span.parent_span_id.unwrap().to_string(), "eee19b7ec3c1b173");
        assert_eq!(span.service, "my.service");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.duration_ns(), 1_000_000_000);
        assert_eq!(span.flags, 0x301);
        assert_eq!(span.trace_state, "rojo=1");
        assert_eq!(
            span.status,
            Status {
                code: StatusCode::Error,
                message: "card declined".into()
            }
        );
        assert_eq!(span.events[0].name, "exception");
        assert_eq!(
            span.events[0].attributes.get_str("exception.type"),
            Some("CardError")
        );
        assert_eq!(
            span.links[0].span_id.unwrap().to_string(),
            "eee19b7ec3c1b173"
        );
        assert_eq!(span.links[0].flags, 256);
        assert_eq!(
            span.attributes.get("nested"),
            Some(&AttrValue::Array(vec![
                AttrValue::Int(7),
                AttrValue::Bytes(vec![1, 2]),
                AttrValue::Str(String::new().into())
            ]))
        );
        assert_eq!(span.scope.name, "my.library");
        assert_eq!(
            span.origin,
            Some(Origin {
                source: "src".into(),
                offset: 0
            })
        );
    }

    #[test]
    fn proto_logs_are_mapped_and_bad_ids_warned() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![
                        LogProto {
                            time_unix_nano: 1_544_712_660_300_000_000,
                            severity_number: 17,
                            severity_text: "ERROR".into(),
                            body: Some(AnyValue {
                                value: Some(string("charge failed")),
                            }),
                            trace_id: TRACE_ID.to_vec(),
                            span_id: SPAN_ID.to_vec(),
                            flags: 1,
                            ..Default::default()
                        },
                        LogProto {
                            observed_time_unix_nano: 1_544_712_660_400_000_000,
                            severity_text: "warning".into(),
                            body: Some(AnyValue {
                                value: Some(any_value::Value::KvlistValue(KeyValueList {
                                    values: vec![kv("k", any_value::Value::BoolValue(true))],
                                })),
                            }),
                            event_name: "checkout.retry".into(),
                            trace_id: vec![0; 16],
                            span_id: vec![1, 2, 3],
                            ..Default::default()
                        },
                        LogProto::default(),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut out = Output::default();
        decode_logs(&request.encode_to_vec(), &decoder(), "src", 42, &mut out).unwrap();
        let logs: Vec<&LogRecord> = out
            .records
            .iter()
            .map(|r| match r {
                Record::Log(l) => l,
                Record::Span(_) => panic!("not a log"),
            })
            .collect();
        assert_eq!(logs.len(), 3);
        assert_eq!(logs[0].service, "fallback");
        assert_eq!(logs[0].level, Some(model::Level::Error));
        assert_eq!(logs[0].severity_number, Some(17));
        assert_eq!(logs[0].body, "charge failed");
        assert_eq!(
            logs[0].trace_id.unwrap().to_string(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(logs[0].span_id.unwrap().to_string(), "eee19b7ec3c1b174");
        assert_eq!(logs[0].flags, 1);
        assert!(logs[0].problems.is_empty());

        assert_eq!(logs[1].time_ns, 1_544_712_660_400_000_000);
        assert_eq!(logs[1].level, Some(model::Level::Warn));
        assert_eq!(logs[1].body, r#"{"k":true}"#);
        assert_eq!(logs[1].event_name, "checkout.retry");
        assert_eq!((logs[1].trace_id, logs[1].span_id), (None, None));
        assert!(logs[1].problems.contains(Problems::BAD_ID));
        assert_eq!(out.warnings.len(), 2);

        assert_eq!(logs[2].time_ns, 42);
        assert!(logs[2].problems.contains(Problems::NO_TIMESTAMP));
    }

    #[test]
    fn garbage_is_an_error_and_adds_nothing() {
        let mut out = Output::default();
        assert!(decode_traces(b"\xff\xff\xff\xff", &decoder(), "src", 0, &mut out).is_err());
        assert!(out.records.is_empty());
    }
}
