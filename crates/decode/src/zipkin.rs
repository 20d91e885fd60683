//! Zipkin v2 JSON spans: an array of spans (a `POST /api/v2/spans` body, one per line or one
//! document), or one span object per line.
//!
//! Mapping onto the model:
//! - `timestamp`/`duration` are µs; `localEndpoint.serviceName` is the service (and the resource's
//!   `service.name`), else the decoder's default service;
//! - `kind` is the span kind, absent means INTERNAL (a local span);
//! - `tags` become string attributes; the `error` tag sets status ERROR with its value as the
//!   message (Zipkin's convention) and OTel exporters' `otel.status_code`,
//!   `otel.status_description` and `otel.scope.*` tags go back to the status and scope;
//! - `annotations` become events named by their value;
//! - endpoint addresses become attributes with OTel names: `remoteEndpoint` → `peer.service`,
//!   `network.peer.address` (ipv4, else ipv6), `network.peer.port`; `localEndpoint` →
//!   `network.local.address`, `network.local.port`;
//! - `shared` and `debug` are kept as `zipkin.shared` and `zipkin.debug` (bool attributes).
//! - 64-bit trace ids (16 hex) are left-padded to 128 bits.

use model::{AttrValue, Attributes, KeyValue, Record, Span, SpanEvent, SpanId, SpanKind, TraceId};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::common::{self, Scalar, Text, U64, lift_conventional_tags, warn_bad_id};
use crate::{DecodeError, Decoder, LineContext, Output, Warning};

/// Decodes a Zipkin v2 array of spans or a single span object.
pub(crate) fn decode(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let spans: Vec<ZipkinSpan<'_>> = if text.trim_start().starts_with('[') {
        parse(text)?
    } else {
        vec![parse(text)?]
    };
    if spans.is_empty() {
        return Err(DecodeError::WrongShape {
            expected: "Zipkin span array with spans",
        });
    }
    out.records.reserve(spans.len());
    for span in spans {
        let span = span.into_span(decoder, cx, &mut out.warnings);
        out.records.push(Record::Span(span));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan<'a> {
    #[serde(borrow, default, alias = "traceID", alias = "trace_id")]
    trace_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default, alias = "parentID", alias = "parent_id")]
    parent_id: Option<Text<'a>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(default)]
    timestamp: Option<U64>,
    #[serde(default)]
    duration: Option<U64>,
    #[serde(default, alias = "local_endpoint")]
    local_endpoint: Option<Endpoint>,
    #[serde(default, alias = "remote_endpoint")]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    annotations: Option<Vec<Annotation>>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    debug: Option<bool>,
    #[serde(default)]
    shared: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default, alias = "service_name")]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<U64>,
}

#[derive(Deserialize)]
struct Annotation {
    #[serde(default)]
    timestamp: Option<U64>,
    #[serde(default)]
    value: Option<String>,
}

/// Zipkin tags, `{string: string}`; values of other JSON types are kept as their text.
struct Tags(Attributes);

fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|e| DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

impl ZipkinSpan<'_> {
    fn into_span(
        self,
        decoder: &Decoder,
        cx: &LineContext<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Span {
        let trace_id = self.trace_id.as_ref().and_then(|raw| {
            check(
                raw.as_str(),
                TraceId::from_hex,
                "Zipkin trace id",
                cx,
                warnings,
            )
        });
        let span_id = self.id.as_ref().and_then(|raw| {
            check(
                raw.as_str(),
                SpanId::from_hex,
                "Zipkin span id",
                cx,
                warnings,
            )
        });
        let parent_span_id = self.parent_id.as_ref().and_then(|raw| {
            check(
                raw.as_str(),
                SpanId::from_hex,
                "Zipkin parent id",
                cx,
                warnings,
            )
        });
        let kind = match self.kind.as_ref() {
            None => SpanKind::Internal,
            Some(kind) => match SpanKind::parse(kind.as_str()) {
                Some(SpanKind::Unspecified) | None => SpanKind::Internal,
                Some(kind) => kind,
            },
        };
        let events: Vec<SpanEvent> = self
            .annotations
            .unwrap_or_default()
            .into_iter()
            .map(|a| SpanEvent {
                time_ns: us(a.timestamp),
                name: a.value.unwrap_or_default(),
                attributes: Attributes::new(),
            })
            .collect();
        // A span without a timestamp (possible in Zipkin) starts at its first annotation, else
        // at the read time.
        let start_ns = match us(self.timestamp) {
            0 => match events.iter().map(|e| e.time_ns).filter(|&t| t > 0).min() {
                Some(t) => t,
                None => {
                    warnings.push(Warning {
                        offset: cx.offset,
                        message: "Zipkin span has no timestamp; using the read time".to_owned(),
                    });
                    cx.read_time_ns
                }
            },
            t => t,
        };
        let end_ns = start_ns.saturating_add(us(self.duration));

        let service = self
            .local_endpoint
            .as_ref()
            .and_then(|e| e.service_name.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or(decoder.default_service())
            .to_owned();
        let mut resource = Attributes::new();
        resource.push("service.name", AttrValue::Str(service.as_str().into()));

        let mut attributes = self.tags.map(|t| t.0).unwrap_or_default();
        if let Some(mut remote) = self.remote_endpoint {
            if let Some(name) = remote.service_name.take().filter(|s| !s.is_empty()) {
                attributes.push("peer.service", AttrValue::Str(name.into()));
            }
            push_address(
                &mut attributes,
                remote,
                "network.peer.address",
                "network.peer.port",
            );
        }
        if let Some(local) = self.local_endpoint {
            push_address(
                &mut attributes,
                local,
                "network.local.address",
                "network.local.port",
            );
        }
        if let Some(shared) = self.shared {
            attributes.push("zipkin.shared", AttrValue::Bool(shared));
        }
        if let Some(debug) = self.debug {
            attributes.push("zipkin.debug", AttrValue::Bool(debug));
        }

        let mut span = Span {
            trace_id,
            span_id,
            parent_span_id,
            name: self.name.unwrap_or_default(),
            kind,
            service,
            start_ns,
            end_ns,
            attributes,
            resource: std::sync::Arc::new(resource),
            events,
            ..Span::default()
        };
        lift_conventional_tags(&mut span, true);
        span
    }
}

fn us(value: Option<U64>) -> i64 {
    value.map_or(0, |v| {
        common::us_to_ns(i64::try_from(v.0).unwrap_or(i64::MAX))
    })
}

/// Parses an id; an empty one is absent, a malformed one a warning.
fn check<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, model::IdError>,
    what: &str,
    cx: &LineContext<'_>,
    warnings: &mut Vec<Warning>,
) -> Option<T> {
    if raw.is_empty() {
        return None;
    }
    parse(raw)
        .map_err(|err| warn_bad_id(warnings, cx, what, &raw, err))
        .ok()
}

fn push_address(
    attributes: &mut Attributes,
    endpoint: Endpoint,
    address_key: &str,
    port_key: &str,
) {
    if let Some(address) = endpoint.ipv4.or(endpoint.ipv6).filter(|a| !a.is_empty()) {
        attributes.push(address_key, AttrValue::Str(address.into()));
    }
    if let Some(port) = endpoint.port.filter(|p| p.0 > 0) {
        attributes.push(port_key, AttrValue::Int(i64::try_from(port.0).unwrap_or(0)));
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor;
        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = Tags;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of string tags")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tags, E> {
                Ok(Tags(Attributes::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tags, A::Error> {
                let mut tags = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some((key, value)) = map.next_entry::<model::CompactString, Scalar>()? {
                    tags.push(KeyValue {
                        key,
                        value: AttrValue::Str(value.into_text()),
                    });
                }
                Ok(Tags(Attributes(tags)))
            }
        }
        deserializer.deserialize_any(TagsVisitor)
    }
}
