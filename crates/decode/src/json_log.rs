//! Structured JSON log lines, flat or nested, from any logging stack: trace and span ids, time,
//! level, message and service are found under the names real stacks use; every other field is
//! kept as a typed attribute under its dotted path.
//!
//! The line is walked once by a serde visitor that borrows keys and strings from the input, so a
//! line costs one pass and the allocations of the record it becomes (no `serde_json::Value`).
//! Which alias wins: the first in each list of [`lookup`]; for the same alias, a flat key
//! (`"trace.id"`) beats the nested spelling (`{"trace":{"id":..}}`). A losing alias whose value
//! differs from the winner's is kept as an attribute, so nothing is lost.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;

use model::{
    AttrValue, Attributes, IdError, KeyValue, Level, LogRecord, Problems, Record, SpanId, TraceId,
    TraceParent, TraceRef, XRayHeader,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::{DecodeError, Decoder, LineContext, Output, Warning, time};

/// Decodes one JSON object line into one log record. On error nothing is pushed (the caller
/// keeps the line as a raw record).
pub(crate) fn decode(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> Result<(), DecodeError> {
    let mut fields = Fields::new();
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Walk {
        fields: &mut fields,
        depth: 0,
    })
    .and_then(|()| de.end())
    .map_err(|e| {
        // serde_json's text ends with " at line L column C"; the error carries those apart.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        DecodeError::Json {
            line: e.line(),
            column: e.column(),
            message: message.to_owned(),
        }
    })?;
    let record = fields.finish(decoder, cx, &mut out.warnings);
    out.records.push(Record::Log(record));
    Ok(())
}

/// What a key means. The number is the alias's rank in its list (lower wins). The text decoder
/// files logfmt pairs through the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Trace(TraceKind, u16),
    Span(SpanIdKind, u16),
    Time(u16),
    Level(LevelKind, u16),
    SeverityNumber,
    /// The `nanos` beside a `timestamp.seconds`.
    TimeNanos,
    Flags,
    Message(u16),
    Service(u16),
    Attribute,
}

/// How a trace field spells its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceKind {
    /// Hex (any case, 16 or 32), Cloud trace name, X-Ray, traceparent, decimal: whatever fits.
    Any,
    /// Datadog: decimal low 64 bits first, 32 hex when 128-bit logging is on.
    Datadog,
    /// An AWS X-Ray header (`Root=...;Parent=...;Sampled=1`) or bare X-Ray id.
    XRay,
    /// A W3C `traceparent`: trace id plus the caller's span id.
    TraceParent,
    /// A B3 single header `{trace}-{span}[-{sampled}[-{parent}]]`.
    B3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanIdKind {
    Any,
    Datadog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LevelKind {
    /// Any text is the severity text, even when it is not a known level word.
    Name,
    /// Datadog's `status`: a level only when it reads as one (`"status": 200` is not a level).
    Status,
}

/// A scalar JSON value, borrowed from the line when it has no escapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    /// An unsigned integer above `i64::MAX` (a Datadog id written as a number).
    UInt(u64),
    Float(f64),
    Bool(bool),
}

/// A trace field's parsed value: a composite header also carries a span id and flags.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TraceValue {
    trace_id: TraceRef,
    span_id: Option<SpanId>,
    flags: Option<u8>,
}

/// The best candidate seen so far for one record field.
#[derive(Debug)]
struct Best<'de, V> {
    rank: u16,
    value: V,
    key: Cow<'de, str>,
    raw: Scalar<'de>,
}

/// Everything learned from one line while walking it (also used by the text decoder).
#[derive(Debug)]
pub(crate) struct Fields<'de> {
    /// The dotted path of the object being walked (empty at the top level).
    path: String,
    attributes: Vec<KeyValue>,
    trace: Option<Best<'de, TraceValue>>,
    span: Option<Best<'de, SpanId>>,
    time: Option<Best<'de, i64>>,
    level: Option<Best<'de, Option<Level>>>,
    message: Option<Best<'de, ()>>,
    service: Option<Best<'de, ()>>,
    severity_number: Option<u8>,
    time_nanos: Option<i64>,
    flags: Option<u8>,
    bad_trace: bool,
    bad_span: bool,
    /// The first time field that could not be read, for the warning when no other time is found.
    bad_time: Option<(String, String)>,
    /// Warnings are held back until the whole line has parsed: a line that turns out not to be
    /// JSON reports only that.
    warnings: Vec<String>,
}

/// Walks one JSON object, at the top level or nested under `fields.path`.
struct Walk<'a, 'de> {
    fields: &'a mut Fields<'de>,
    depth: u32,
}

/// Walks the value of one key.
struct FieldValue<'a, 'de> {
    fields: &'a mut Fields<'de>,
    depth: u32,
    key: Cow<'de, str>,
    field: Field,
}

/// A map key, borrowed when it has no escapes.
struct Key;

/// An array element (arrays are attributes; their elements keep their types).
struct Element;

/// What each key means, by its full dotted path. The order within each group is the priority.
pub(crate) fn lookup(key: &str) -> Field {
    use Field::*;
    match key {
        "trace_id" => Trace(TraceKind::Any, 0),
        "traceId" => Trace(TraceKind::Any, 1),
        "traceID" => Trace(TraceKind::Any, 2),
        "trace.id" => Trace(TraceKind::Any, 3),
        "otelTraceID" => Trace(TraceKind::Any, 4),
        "dd.trace_id" => Trace(TraceKind::Datadog, 5),
        "logging.googleapis.com/trace" => Trace(TraceKind::Any, 6),
        "X-Amzn-Trace-Id" | "x-amzn-trace-id" => Trace(TraceKind::XRay, 7),
        "AWS-XRAY-TRACE-ID" => Trace(TraceKind::XRay, 8),
        "traceparent" => Trace(TraceKind::TraceParent, 9),
        "trace.trace_id" => Trace(TraceKind::Any, 10),
        "X-B3-TraceId" | "x-b3-traceid" => Trace(TraceKind::Any, 11),
        "b3" => Trace(TraceKind::B3, 12),
        // AWS Lambda Powertools.
        "xray_trace_id" => Trace(TraceKind::XRay, 13),

        "span_id" => Span(SpanIdKind::Any, 0),
        "spanId" => Span(SpanIdKind::Any, 1),
        "spanID" => Span(SpanIdKind::Any, 2),
        "span.id" => Span(SpanIdKind::Any, 3),
        "otelSpanID" => Span(SpanIdKind::Any, 4),
        "dd.span_id" => Span(SpanIdKind::Datadog, 5),
        "logging.googleapis.com/spanId" => Span(SpanIdKind::Any, 6),
        "trace.span_id" => Span(SpanIdKind::Any, 7),
        "X-B3-SpanId" | "x-b3-spanid" => Span(SpanIdKind::Any, 8),

        "timestamp" => Time(0),
        "@timestamp" => Time(1),
        "time" => Time(2),
        "ts" => Time(3),
        "date" => Time(4),
        "timeUnixNano" => Time(5),
        "t" => Time(6),
        // MongoDB's structured log: {"t":{"$date":"..."}}.
        "t.$date" => Time(7),
        // python-json-logger with the usual "%(asctime)s %(levelname)s ..." format.
        "asctime" => Time(8),
        // Google Cloud's protobuf-JSON Timestamp: {"seconds":..,"nanos":..}.
        "timestamp.seconds" => Time(9),
        "timestamp.nanos" => TimeNanos,

        "level" => Level(LevelKind::Name, 0),
        "log.level" => Level(LevelKind::Name, 1),
        "severity" => Level(LevelKind::Name, 2),
        "severityText" => Level(LevelKind::Name, 3),
        "levelname" => Level(LevelKind::Name, 4),
        "lvl" => Level(LevelKind::Name, 5),
        "status" => Level(LevelKind::Status, 6),
        "severityNumber" => SeverityNumber,
        "trace_flags" | "traceFlags" => Flags,

        "message" => Message(0),
        "msg" => Message(1),
        "body" => Message(2),
        "log" => Message(3),
        "event" => Message(4),

        "service" => Service(0),
        "service.name" => Service(1),
        "serviceName" => Service(2),
        "otelServiceName" => Service(3),
        "app" => Service(4),
        "application" => Service(5),
        "dd.service" => Service(6),
        // Newer Python instrumentation renames otelServiceName.
        "service_name" => Service(7),
        _ => Attribute,
    }
}

thread_local! {
    /// The attribute list of the line being decoded, reused from line to line: a record's own
    /// list is allocated once at its exact length when the line is done (a list grown per line
    /// costs several allocations, and a generous one wastes memory in every record kept).
    static SCRATCH: Cell<Vec<KeyValue>> = const { Cell::new(Vec::new()) };
}

/// Scratch lists that grew beyond this many attributes are not kept for the next line.
const SCRATCH_KEEP: usize = 256;

impl<'de> Fields<'de> {
    pub(crate) fn new() -> Fields<'de> {
        let mut attributes = SCRATCH.take();
        attributes.clear();
        if attributes.capacity() == 0 {
            attributes.reserve(16);
        }
        Fields {
            path: String::new(),
            attributes,
            trace: None,
            span: None,
            time: None,
            level: None,
            message: None,
            service: None,
            severity_number: None,
            time_nanos: None,
            flags: None,
            bad_trace: false,
            bad_span: false,
            bad_time: None,
            warnings: Vec::new(),
        }
    }

    /// The full dotted name of `key` at `depth`.
    fn full_key(&self, key: Cow<'de, str>, depth: u32) -> Cow<'de, str> {
        if depth == 0 {
            key
        } else {
            Cow::Owned(self.path.clone())
        }
    }

    fn push_attribute(&mut self, key: Cow<'de, str>, depth: u32, value: AttrValue) {
        // Copied straight from the line (or the dotted path) into the key, inline when short.
        let key = if depth == 0 {
            model::CompactString::from(key)
        } else {
            model::CompactString::from(self.path.as_str())
        };
        self.attributes.push(KeyValue { key, value });
    }

    /// Files one scalar under what its key means.
    pub(crate) fn scalar(
        &mut self,
        field: Field,
        key: Cow<'de, str>,
        depth: u32,
        raw: Scalar<'de>,
    ) {
        // Same alias: flat beats nested.
        let rank = |alias: u16| alias * 2 + u16::from(depth > 0);
        match field {
            Field::Attribute => self.push_attribute(key, depth, raw.into_attr()),
            Field::Trace(kind, alias) => match parse_trace(kind, &raw) {
                Ok(None) => {}
                Ok(Some(value)) => {
                    let key = self.full_key(key, depth);
                    offer(
                        &mut self.trace,
                        Best {
                            rank: rank(alias),
                            value,
                            key,
                            raw,
                        },
                        &mut self.attributes,
                    );
                }
                Err(err) => {
                    self.bad_trace = true;
                    self.bad_id("trace", key, depth, raw, &err);
                }
            },
            Field::Span(kind, alias) => match parse_span(kind, &raw) {
                Ok(None) => {}
                Ok(Some(value)) => {
                    let key = self.full_key(key, depth);
                    offer(
                        &mut self.span,
                        Best {
                            rank: rank(alias),
                            value,
                            key,
                            raw,
                        },
                        &mut self.attributes,
                    );
                }
                Err(err) => {
                    self.bad_span = true;
                    self.bad_id("span", key, depth, raw, &err);
                }
            },
            Field::Time(alias) => match parse_time(&raw) {
                Some(value) => {
                    let key = self.full_key(key, depth);
                    offer(
                        &mut self.time,
                        Best {
                            rank: rank(alias),
                            value,
                            key,
                            raw,
                        },
                        &mut self.attributes,
                    );
                }
                None => {
                    if self.bad_time.is_none() {
                        let name = self.full_key(key.clone(), depth).into_owned();
                        self.bad_time = Some((name, raw.to_text()));
                    }
                    self.push_attribute(key, depth, raw.into_attr());
                }
            },
            Field::Level(kind, alias) => match parse_level(kind, &raw) {
                Some(value) => {
                    let key = self.full_key(key, depth);
                    offer(
                        &mut self.level,
                        Best {
                            rank: rank(alias),
                            value,
                            key,
                            raw,
                        },
                        &mut self.attributes,
                    );
                }
                None => self.push_attribute(key, depth, raw.into_attr()),
            },
            Field::SeverityNumber => {
                match parse_small_int(&raw, 10).filter(|n| (1..=24).contains(n)) {
                    Some(n) if self.severity_number.is_none() => self.severity_number = Some(n),
                    _ => self.push_attribute(key, depth, raw.into_attr()),
                }
            }
            Field::TimeNanos => match raw {
                Scalar::Int(n) if (0..1_000_000_000).contains(&n) => self.time_nanos = Some(n),
                _ => self.push_attribute(key, depth, raw.into_attr()),
            },
            Field::Flags => match parse_small_int(&raw, 16) {
                Some(n) if self.flags.is_none() => self.flags = Some(n),
                _ => self.push_attribute(key, depth, raw.into_attr()),
            },
            Field::Message(alias) => {
                let key = self.full_key(key, depth);
                offer_text(
                    &mut self.message,
                    Best {
                        rank: rank(alias),
                        value: (),
                        key,
                        raw,
                    },
                    &mut self.attributes,
                );
            }
            Field::Service(alias) => match &raw {
                Scalar::Str(s) if !s.trim().is_empty() => {
                    let key = self.full_key(key, depth);
                    offer_text(
                        &mut self.service,
                        Best {
                            rank: rank(alias),
                            value: (),
                            key,
                            raw,
                        },
                        &mut self.attributes,
                    );
                }
                _ => self.push_attribute(key, depth, raw.into_attr()),
            },
        }
    }

    /// A time already parsed by the caller (a text line's leading timestamp).
    pub(crate) fn offer_time(&mut self, alias: u16, key: &'static str, raw: Scalar<'de>, ns: i64) {
        let best = Best {
            rank: alias * 2,
            value: ns,
            key: Cow::Borrowed(key),
            raw,
        };
        offer(&mut self.time, best, &mut self.attributes);
    }

    pub(crate) fn has_time(&self) -> bool {
        self.time.is_some()
    }

    pub(crate) fn has_level(&self) -> bool {
        self.level.as_ref().is_some_and(|best| best.value.is_some())
    }

    pub(crate) fn has_message(&self) -> bool {
        self.message.is_some()
    }

    pub(crate) fn has_trace(&self) -> bool {
        self.trace.is_some()
    }

    /// Whether a trace id was found, well-formed or not (so a second scan does not warn twice).
    pub(crate) fn trace_seen(&self) -> bool {
        self.trace.is_some() || self.bad_trace
    }

    pub(crate) fn span_seen(&self) -> bool {
        self.span.is_some()
            || self.bad_span
            || self
                .trace
                .as_ref()
                .is_some_and(|best| best.value.span_id.is_some())
    }

    /// A present but malformed id: warned about, and kept as an attribute so it stays searchable.
    fn bad_id(
        &mut self,
        what: &str,
        key: Cow<'de, str>,
        depth: u32,
        raw: Scalar<'de>,
        err: &IdError,
    ) {
        let name = self.full_key(key, depth).into_owned();
        self.warnings.push(format!(
            "field {name:?}: malformed {what} id {:?}: {err}",
            raw.to_text()
        ));
        self.attributes.push(KeyValue {
            key: name.into(),
            value: raw.into_attr(),
        });
    }

    pub(crate) fn finish(
        self,
        decoder: &Decoder,
        cx: &LineContext<'_>,
        warnings: &mut Vec<Warning>,
    ) -> LogRecord {
        let mut problems = Problems::empty();
        let mut composite_span = None;
        let mut flags = self.flags;
        let trace_id = self.trace.map(|best| {
            composite_span = best.value.span_id;
            flags = flags.or(best.value.flags);
            best.value.trace_id
        });
        let span_id = self.span.map(|best| best.value).or(composite_span);
        if (trace_id.is_none() && self.bad_trace) || (span_id.is_none() && self.bad_span) {
            problems.insert(Problems::BAD_ID);
        }
        let mut attributes = self.attributes;
        let time_ns = match self.time {
            Some(best) if best.key == "timestamp.seconds" => {
                best.value.saturating_add(self.time_nanos.unwrap_or(0))
            }
            Some(best) => {
                if let Some(nanos) = self.time_nanos {
                    attributes.push(KeyValue {
                        key: "timestamp.nanos".into(),
                        value: AttrValue::Int(nanos),
                    });
                }
                best.value
            }
            None => {
                problems.insert(Problems::NO_TIMESTAMP);
                if let Some((key, value)) = &self.bad_time {
                    warnings.push(Warning {
                        offset: cx.offset,
                        message: format!(
                            "field {key:?}: unrecognised time {value:?}; using the read time"
                        ),
                    });
                }
                cx.read_time_ns
            }
        };
        let (level, severity_text) = match self.level {
            Some(best) => (best.value, best.raw.into_text()),
            None => (None, String::new()),
        };
        let level = level.or_else(|| {
            self.severity_number
                .and_then(|n| Level::from_severity_number(n.into()))
        });
        let service = match self.service {
            Some(best) => best.raw.into_text(),
            None => decoder.default_service().to_owned(),
        };
        warnings.extend(self.warnings.into_iter().map(|message| Warning {
            offset: cx.offset,
            message,
        }));
        let mut scratch = attributes;
        // Moved (not cloned) into a list of exactly their number; the scratch keeps its room.
        let mut attributes = Vec::with_capacity(scratch.len());
        attributes.append(&mut scratch);
        if scratch.capacity() <= SCRATCH_KEEP {
            SCRATCH.set(scratch);
        }
        LogRecord {
            time_ns,
            service,
            severity_number: self.severity_number,
            severity_text,
            level,
            body: self
                .message
                .map(|best| best.raw.into_text())
                .unwrap_or_default(),
            attributes: Attributes(attributes),
            trace_id,
            span_id,
            flags: flags.map_or(0, u32::from),
            problems,
            ..LogRecord::default()
        }
    }
}

/// Keeps the better of the current and the new candidate; the loser becomes an attribute unless
/// it means the same as the winner (`"ts": 1714564800` beside the same `"time"` in RFC 3339).
fn offer<'de, V: PartialEq>(
    slot: &mut Option<Best<'de, V>>,
    new: Best<'de, V>,
    attributes: &mut Vec<KeyValue>,
) {
    offer_by(slot, new, attributes, |a, b| a.value == b.value);
}

/// [`offer`] for text fields (message, service), which mean the same only when they read the same.
fn offer_text<'de>(
    slot: &mut Option<Best<'de, ()>>,
    new: Best<'de, ()>,
    attributes: &mut Vec<KeyValue>,
) {
    offer_by(slot, new, attributes, |a, b| a.raw == b.raw);
}

fn offer_by<'de, V>(
    slot: &mut Option<Best<'de, V>>,
    new: Best<'de, V>,
    attributes: &mut Vec<KeyValue>,
    same: impl Fn(&Best<'de, V>, &Best<'de, V>) -> bool,
) {
    match slot {
        None => *slot = Some(new),
        Some(current) => {
            let loser = if new.rank < current.rank {
                std::mem::replace(current, new)
            } else {
                new
            };
            if !same(&loser, current) {
                attributes.push(KeyValue {
                    key: loser.key.into(),
                    value: loser.raw.into_attr(),
                });
            }
        }
    }
}

/// `Ok(None)` means "no id here" (empty, or the `"0"` Python writes when there is no span).
fn parse_trace(kind: TraceKind, raw: &Scalar<'_>) -> Result<Option<TraceValue>, IdError> {
    let full = |trace_id| TraceValue {
        trace_id,
        span_id: None,
        flags: None,
    };
    let s = match raw {
        Scalar::Str(s) => s.trim(),
        Scalar::Int(0) => return Ok(None),
        // A number is a Datadog-style decimal id: the low 64 bits (negative: two's complement).
        Scalar::Int(n) if matches!(kind, TraceKind::Any | TraceKind::Datadog) => {
            return Ok(NonZeroU64::new(*n as u64).map(|low| full(TraceRef::Low64(low))));
        }
        Scalar::UInt(n) if matches!(kind, TraceKind::Any | TraceKind::Datadog) => {
            return Ok(NonZeroU64::new(*n).map(|low| full(TraceRef::Low64(low))));
        }
        _ => return Err(IdError::Unrecognised),
    };
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let value = match kind {
        TraceKind::Any => full(parse_trace_text(s)?),
        TraceKind::Datadog if is_decimal(s) => full(TraceRef::from_decimal(s)?),
        TraceKind::Datadog => full(TraceRef::Full(TraceId::from_hex(s)?)),
        TraceKind::XRay if s.contains("Root=") => {
            let header = XRayHeader::parse(s)?;
            TraceValue {
                trace_id: TraceRef::Full(header.trace_id),
                span_id: header.parent_id,
                flags: header.sampled.map(u8::from),
            }
        }
        TraceKind::XRay => full(TraceRef::Full(TraceId::from_xray(s)?)),
        TraceKind::TraceParent => {
            let tp = TraceParent::parse(s)?;
            TraceValue {
                trace_id: TraceRef::Full(tp.trace_id),
                span_id: Some(tp.parent_id),
                flags: Some(tp.flags),
            }
        }
        TraceKind::B3 => {
            let mut parts = s.split('-');
            let trace = parts.next().unwrap_or_default();
            // A lone sampling decision ("0", "1", "d") carries no ids.
            if trace.len() <= 1 {
                return Ok(None);
            }
            let trace_id = TraceRef::Full(TraceId::from_hex(trace)?);
            let span_id = parts.next().map(SpanId::from_hex).transpose()?;
            let flags = match parts.next() {
                Some("1" | "d") => Some(1),
                Some("0") => Some(0),
                _ => None,
            };
            TraceValue {
                trace_id,
                span_id,
                flags,
            }
        }
    };
    Ok(Some(value))
}

/// Like [`TraceRef::parse_any`], but hex must be 16 or 32 digits: in a log field a shorter hex
/// id is a cut-off id, not one whose leading zeros were dropped.
fn parse_trace_text(s: &str) -> Result<TraceRef, IdError> {
    if s.len() == 32
        && let (Some(high), Some(low)) =
            (hex_u64(&s.as_bytes()[..16]), hex_u64(&s.as_bytes()[16..]))
    {
        let value = (u128::from(high) << 64) | u128::from(low);
        return TraceId::from_u128(value)
            .map(TraceRef::Full)
            .ok_or(IdError::AllZero);
    }
    if !is_decimal(s) && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.len() != 16 && s.len() != 32
    {
        return Err(IdError::Length {
            expected: "16 or 32 hex digits",
            got: s.len(),
        });
    }
    TraceRef::parse_any(s)
}

fn parse_span(kind: SpanIdKind, raw: &Scalar<'_>) -> Result<Option<SpanId>, IdError> {
    let s = match raw {
        Scalar::Str(s) => s.trim(),
        Scalar::Int(0) => return Ok(None),
        Scalar::Int(n) => {
            return SpanId::from_u64(*n as u64)
                .ok_or(IdError::AllZero)
                .map(Some);
        }
        Scalar::UInt(n) => return SpanId::from_u64(*n).ok_or(IdError::AllZero).map(Some),
        _ => return Err(IdError::Unrecognised),
    };
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    match kind {
        SpanIdKind::Datadog if is_decimal(s) => SpanId::from_decimal(s).map(Some),
        _ if s.len() == 16
            && let Some(value) = hex_u64(s.as_bytes()) =>
        {
            SpanId::from_u64(value).ok_or(IdError::AllZero).map(Some)
        }
        _ if !is_decimal(s) && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.len() != 16 => {
            Err(IdError::Length {
                expected: "16 hex digits",
                got: s.len(),
            })
        }
        _ => SpanId::parse_any(s).map(Some),
    }
}

fn parse_time(raw: &Scalar<'_>) -> Option<i64> {
    match raw {
        Scalar::Str(s) => time::parse_any(s),
        Scalar::Int(n) => time::epoch_int_to_ns(*n),
        Scalar::UInt(n) => i64::try_from(*n).ok().and_then(time::epoch_int_to_ns),
        Scalar::Float(f) => time::epoch_to_ns(*f),
        Scalar::Bool(_) => None,
    }
}

/// `Some(level)` when the field is taken as the level field (the level itself may be unknown,
/// like Google's `DEFAULT`); `None` when it stays an attribute.
fn parse_level(kind: LevelKind, raw: &Scalar<'_>) -> Option<Option<Level>> {
    let level = match raw {
        Scalar::Str(s) if kind == LevelKind::Status => {
            level_word(s).filter(|_| !is_decimal(s.trim()))
        }
        Scalar::Str(s) => level_word(s)
            .or_else(|| s.trim().parse::<i64>().ok().and_then(level_from_number))
            .or_else(|| four_letter_level(s)),
        Scalar::Int(n) if kind == LevelKind::Name => level_from_number(*n),
        Scalar::Float(f) if kind == LevelKind::Name && f.fract() == 0.0 && f.abs() < 1e6 => {
            level_from_number(*f as i64)
        }
        _ => return None,
    };
    match (kind, raw) {
        (LevelKind::Status, _) if level.is_none() => None,
        (_, Scalar::Str(s)) if s.trim().is_empty() => None,
        _ => Some(level),
    }
}

/// A level word: the usual spellings at once, anything else through [`Level::parse`] (which
/// lowercases into a new string).
pub(crate) fn level_word(s: &str) -> Option<Level> {
    match s {
        "info" | "INFO" | "Info" => Some(Level::Info),
        "debug" | "DEBUG" | "Debug" => Some(Level::Debug),
        "warn" | "WARN" | "Warn" | "warning" | "WARNING" | "Warning" => Some(Level::Warn),
        "error" | "ERROR" | "Error" => Some(Level::Error),
        "trace" | "TRACE" | "Trace" => Some(Level::Trace),
        "fatal" | "FATAL" | "Fatal" => Some(Level::Fatal),
        _ => Level::parse(s),
    }
}

/// Up to 16 hex digits of any case; `None` for anything else. Ids are read on nearly every
/// line, so the common spellings skip the general parsers (which explain failures instead).
fn hex_u64(s: &[u8]) -> Option<u64> {
    const NOT_HEX: u8 = 0xff;
    const DIGITS: [u8; 256] = {
        let mut table = [NOT_HEX; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut value = 0u64;
    for &b in s {
        let digit = DIGITS[usize::from(b)];
        if digit == NOT_HEX {
            return None;
        }
        value = (value << 4) | u64::from(digit);
    }
    Some(value)
}

/// Grafana's and log15's four-letter words that [`Level::parse`] does not know.
fn four_letter_level(s: &str) -> Option<Level> {
    match s.trim() {
        "dbug" | "DBUG" => Some(Level::Debug),
        "eror" | "EROR" => Some(Level::Error),
        "crit" | "CRIT" => Some(Level::Fatal),
        _ => None,
    }
}

/// Numeric levels: pino and Bunyan (10 trace .. 60 fatal) and Google Cloud's `severity`
/// (100 DEBUG, 200 INFO, 300 NOTICE, 400 WARNING, 500 ERROR, 600+ CRITICAL/ALERT/EMERGENCY).
fn level_from_number(n: i64) -> Option<Level> {
    Some(match n {
        10..=19 => Level::Trace,
        20..=29 => Level::Debug,
        30..=39 => Level::Info,
        40..=49 => Level::Warn,
        50..=59 => Level::Error,
        60..=69 => Level::Fatal,
        100..=199 => Level::Debug,
        200..=399 => Level::Info,
        400..=499 => Level::Warn,
        500..=599 => Level::Error,
        600..=899 => Level::Fatal,
        _ => return None,
    })
}

/// A small unsigned number written as a JSON number or as text in `radix` (flags `"01"`).
fn parse_small_int(raw: &Scalar<'_>, radix: u32) -> Option<u8> {
    match raw {
        Scalar::Int(n) => u8::try_from(*n).ok(),
        Scalar::Str(s) => u8::from_str_radix(s.trim(), radix).ok(),
        _ => None,
    }
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Scalar<'_> {
    fn into_attr(self) -> AttrValue {
        match self {
            Scalar::Str(s) => AttrValue::Str(s.into()),
            Scalar::Int(n) => AttrValue::Int(n),
            // Beyond i64: keep every digit (these are ids, not quantities).
            Scalar::UInt(n) => AttrValue::Str(n.to_string().into()),
            Scalar::Float(f) => AttrValue::Float(f),
            Scalar::Bool(b) => AttrValue::Bool(b),
        }
    }

    fn into_text(self) -> String {
        match self {
            Scalar::Str(s) => s.into_owned(),
            other => other.to_text(),
        }
    }

    fn to_text(&self) -> String {
        match self {
            Scalar::Str(s) => s.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::UInt(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let base = self.fields.path.len();
        while let Some(key) = map.next_key_seed(Key)? {
            let field = if self.depth == 0 {
                lookup(&key)
            } else {
                self.fields.path.truncate(base);
                self.fields.path.push('.');
                self.fields.path.push_str(&key);
                lookup(&self.fields.path)
            };
            map.next_value_seed(FieldValue {
                fields: &mut *self.fields,
                depth: self.depth,
                key,
                field,
            })?;
        }
        self.fields.path.truncate(base);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for FieldValue<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldValue<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.fields
            .scalar(self.field, self.key, self.depth, Scalar::Bool(v));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.fields
            .scalar(self.field, self.key, self.depth, Scalar::Int(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let value = i64::try_from(v).map_or(Scalar::UInt(v), Scalar::Int);
        self.fields.scalar(self.field, self.key, self.depth, value);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.fields
            .scalar(self.field, self.key, self.depth, Scalar::Float(v));
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.fields.scalar(
            self.field,
            self.key,
            self.depth,
            Scalar::Str(Cow::Borrowed(v)),
        );
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.fields.scalar(
            self.field,
            self.key,
            self.depth,
            Scalar::Str(Cow::Owned(v.to_owned())),
        );
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.fields
            .scalar(self.field, self.key, self.depth, Scalar::Str(Cow::Owned(v)));
        Ok(())
    }

    /// `null` says nothing: no attribute, no id.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        if self.depth == 0 {
            self.fields.path.clear();
            self.fields.path.push_str(&self.key);
        }
        let result = Walk {
            fields: &mut *self.fields,
            depth: self.depth + 1,
        }
        .visit_map(map);
        if self.depth == 0 {
            self.fields.path.clear();
        }
        result
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let values = Element.visit_seq(seq)?;
        self.fields.push_attribute(self.key, self.depth, values);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Array elements and the objects inside arrays become typed [`AttrValue`]s; `null`s inside an
/// array are kept as empty strings so positions do not shift.
impl<'de> DeserializeSeed<'de> for Element {
    type Value = AttrValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<AttrValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element {
    type Value = AttrValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
        Ok(AttrValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
        Ok(AttrValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
        Ok(i64::try_from(v).map_or_else(|_| AttrValue::Str(v.to_string().into()), AttrValue::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AttrValue, E> {
        Ok(AttrValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
        Ok(AttrValue::Str(v.into()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
        Ok(AttrValue::Str(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<AttrValue, E> {
        Ok(AttrValue::Str(model::CompactString::default()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrValue, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(value) = seq.next_element_seed(Element)? {
            values.push(value);
        }
        Ok(AttrValue::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrValue, A::Error> {
        let mut attributes = Attributes::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let value = map.next_value_seed(Element)?;
            attributes.push(key.into_owned(), value);
        }
        Ok(AttrValue::Map(attributes))
    }
}

#[cfg(test)]
mod tests {
    use model::{Level, Problems, Record, TraceRef};

    use crate::{Decoder, DecoderConfig, LineContext, Output};

    const TRACE: &str = "5b8efff798038103d269b633813fc60c";
    const SPAN: &str = "eee19b7ec3c1b174";

    fn decode(line: &str) -> (Result<(), crate::DecodeError>, Output) {
        let decoder = Decoder::new(DecoderConfig {
            service: Some("svc".into()),
            ..DecoderConfig::default()
        })
        .unwrap();
        let cx = LineContext {
            source: "t",
            offset: 7,
            read_time_ns: 42,
        };
        let mut out = Output::default();
        (super::decode(line, &decoder, &cx, &mut out), out)
    }

    fn log(line: &str) -> model::LogRecord {
        let (result, out) = decode(line);
        result.unwrap();
        match out.records.into_iter().next() {
            Some(Record::Log(log)) => log,
            other => panic!("expected one log record, got {other:?}"),
        }
    }

    #[test]
    fn first_alias_wins_and_flat_beats_nested() {
        let l = log(&format!(
            r#"{{"trace":{{"id":"0af7651916cd43dd8448eb211c80319c"}},"trace.id":"{TRACE}","msg":"m","message":"winner"}}"#
        ));
        assert_eq!(l.trace_id.map(|t| t.to_string()).as_deref(), Some(TRACE));
        assert_eq!(l.body, "winner");
        // The losers that said something else are kept.
        assert_eq!(
            l.attributes.get_str("trace.id"),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(l.attributes.get_str("msg"), Some("m"));
        assert_eq!(l.service, "svc");
        assert!(l.problems.contains(Problems::NO_TIMESTAMP));
        assert_eq!(l.time_ns, 42);
    }

    #[test]
    fn datadog_numbers_are_low_64_bits() {
        let l = log(
            r#"{"dd":{"trace_id":15161849952847513100,"span_id":"17213210219539181940"},"status":"error"}"#,
        );
        assert!(
            matches!(l.trace_id, Some(TraceRef::Low64(low)) if low.get() == 0xd269b633813fc60c)
        );
        assert_eq!(l.span_id.map(|s| s.to_string()).as_deref(), Some(SPAN));
        assert_eq!(l.level, Some(Level::Error));
    }

    #[test]
    fn malformed_ids_warn_and_keep_the_record() {
        let (result, out) = decode(r#"{"trace_id":"abc","span_id":"0","msg":"x"}"#);
        result.unwrap();
        let Record::Log(l) = &out.records[0] else {
            panic!()
        };
        assert_eq!(l.trace_id, None);
        assert!(l.problems.contains(Problems::BAD_ID));
        assert_eq!(
            out.warnings.len(),
            1,
            "span_id \"0\" means none, without a warning"
        );
        assert!(
            out.warnings[0].message.contains("trace_id") && out.warnings[0].message.contains("abc")
        );
        assert_eq!(out.warnings[0].offset, 7);
    }

    #[test]
    fn multibyte_text_in_an_id_is_a_bad_id_not_a_panic() {
        // 32 bytes with a two-byte character across the middle (found by tests/fuzz.rs).
        let (result, out) = decode(
            r#"{"trace_id":"5b8efff79803810\u00e9d269b633813fc60","span_id":"eee19b7ec3c1b17\u00e9"}"#,
        );
        result.unwrap();
        let Record::Log(l) = &out.records[0] else {
            panic!()
        };
        assert_eq!((l.trace_id, l.span_id), (None, None));
        assert!(l.problems.contains(Problems::BAD_ID));
        assert_eq!(out.warnings.len(), 2);
    }

    #[test]
    fn invalid_json_pushes_nothing() {
        for line in [
            r#"{"msg":"unterminated"#,
            r#"{"a":1} x"#,
            r#"{"trace_id":"bad","a":}"#,
        ] {
            let (result, out) = decode(line);
            assert!(result.is_err(), "{line}");
            assert!(out.records.is_empty() && out.warnings.is_empty(), "{line}");
        }
    }

    #[test]
    fn levels_numbers_and_severity_numbers() {
        assert_eq!(log(r#"{"level":30}"#).level, Some(Level::Info));
        assert_eq!(log(r#"{"level":60}"#).level, Some(Level::Fatal));
        assert_eq!(log(r#"{"severity":500}"#).level, Some(Level::Error));
        let l = log(r#"{"severityNumber":13,"body":"b"}"#);
        assert_eq!(
            (l.level, l.severity_number, l.body.as_str()),
            (Some(Level::Warn), Some(13), "b")
        );
        let l = log(r#"{"status":200,"lvl":"dbug"}"#);
        assert_eq!(l.level, Some(Level::Debug));
        assert_eq!(
            l.attributes.get("status"),
            Some(&model::AttrValue::Int(200))
        );
    }

    #[test]
    fn times_in_every_spelling() {
        let ns = 1_714_564_800_123_000_000;
        for line in [
            r#"{"ts":1714564800.123}"#,
            r#"{"time":1714564800123}"#,
            r#"{"timestamp":"1714564800123000"}"#,
            r#"{"timeUnixNano":"1714564800123000000"}"#,
            r#"{"@timestamp":"2024-05-01T14:00:00.123+02:00"}"#,
            r#"{"date":"2024-05-01 12:00:00.123"}"#,
            r#"{"timestamp":{"seconds":1714564800,"nanos":123000000}}"#,
        ] {
            let l = log(line);
            assert!((l.time_ns - ns).abs() < 1_000, "{line}: {}", l.time_ns);
            assert!(!l.problems.contains(Problems::NO_TIMESTAMP), "{line}");
        }
    }

    #[test]
    fn escaped_keys_and_values_are_unescaped() {
        let l = log(r#"{"m\u0065ssage":"a\"b","k\"":{"x":[1,"y",{"z":true}]}}"#);
        assert_eq!(l.body, "a\"b");
        assert!(
            matches!(l.attributes.get("k\".x"), Some(model::AttrValue::Array(v)) if v.len() == 3)
        );
    }
}
