//! Pieces shared by the span decoders (OTLP JSON and protobuf, Zipkin, Jaeger): lenient serde
//! scalars, OTLP's JSON AnyValue, id checks that turn bad ids into warnings, and the log and
//! status rules every format maps onto the model the same way.

use std::borrow::Cow;
use std::fmt;
use std::num::IntErrorKind;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use model::{
    AttrValue, Attributes, IdError, KeyValue, Level, Problems, Span, SpanKind, StatusCode,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::{Decoder, LineContext, Warning};

/// proto3 JSON writes bytes as standard base64 but readers must also take the URL-safe
/// alphabet, with or without padding.
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JSON string borrowed from the input when it has no escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

/// A 64-bit unsigned integer written as a number or a decimal string (proto3 JSON for
/// `fixed64`/`uint64`, which OTLP uses for every timestamp).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct U64(pub u64);

/// A signed 64-bit integer as a number or a decimal string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct I64(pub i64);

/// A double as a number, a numeric string, or `"NaN"`/`"Infinity"`/`"-Infinity"`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct F64(pub f64);

/// A bool, or the strings `"true"`/`"false"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bool(pub bool);

/// A protobuf enum as proto3 JSON allows it: its number or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enum<'a> {
    Number(i64),
    Name(Text<'a>),
}

/// A JSON scalar of any type, for fields whose producers disagree on the type (Jaeger tag
/// values, Zipkin tags written by sloppy clients). Arrays and objects are kept as their text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(model::CompactString),
}

/// OTLP/JSON `KeyValue` list, decoded straight into model attributes (no intermediate list).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct AttrList(pub Attributes);

/// OTLP/JSON `AnyValue`. Exactly one field is set on valid input; `{}` is the empty value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AnyValueJson<'a> {
    /// Short strings (most attribute values) are kept inline, with no allocation of their own.
    #[serde(alias = "string_value")]
    string_value: Option<model::CompactString>,
    #[serde(alias = "bool_value")]
    bool_value: Option<Bool>,
    #[serde(alias = "int_value")]
    int_value: Option<I64>,
    #[serde(alias = "double_value")]
    double_value: Option<F64>,
    #[serde(alias = "array_value")]
    array_value: Option<ArrayValueJson<'a>>,
    #[serde(alias = "kvlist_value")]
    kvlist_value: Option<KvListJson>,
    #[serde(borrow, alias = "bytes_value")]
    bytes_value: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArrayValueJson<'a> {
    #[serde(borrow)]
    values: Option<Vec<AnyValueJson<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KvListJson {
    values: AttrList,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct KeyValueJson<'a> {
    key: model::CompactString,
    #[serde(borrow)]
    value: Option<AnyValueJson<'a>>,
}

// ---------------------------------------------------------------------------------------------
// Conversions shared by every format.

/// The service of a record: the resource's `service.name`, else the decoder's default.
pub(crate) fn service_of(resource: &Attributes, decoder: &Decoder) -> String {
    match resource.get_str("service.name") {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => decoder.default_service().to_owned(),
    }
}

/// OTLP's empty AnyValue (and the profiles-only string index) has no model counterpart; it
/// becomes an empty string so the key still exists.
pub(crate) fn empty_value() -> AttrValue {
    AttrValue::Str(model::CompactString::default())
}

/// A log body as text: strings as they are, anything else rendered as compact JSON.
pub(crate) fn body_text(body: Option<AttrValue>) -> String {
    match body {
        Some(AttrValue::Str(s)) => s.into(),
        Some(other) => other.to_text(),
        None => String::new(),
    }
}

/// Severity number (1..=24) and level: the number decides when it is in range, else the text.
pub(crate) fn severity(number: i64, text: &str) -> (Option<u8>, Option<Level>) {
    match Level::from_severity_number(number) {
        Some(level) => (u8::try_from(number).ok(), Some(level)),
        None => (None, Level::parse(text)),
    }
}

/// `SEVERITY_NUMBER_WARN3` → 15. Unknown names are unspecified (0).
pub(crate) fn severity_number_from_name(name: &str) -> i64 {
    let name = name.trim();
    let name = name.strip_prefix("SEVERITY_NUMBER_").unwrap_or(name);
    let (base, step) = match name.as_bytes().last() {
        Some(d @ b'2'..=b'4') => (&name[..name.len() - 1], i64::from(d - b'0')),
        _ => (name, 1),
    };
    let level = match base.to_ascii_uppercase().as_str() {
        "TRACE" => Level::Trace,
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "WARN" => Level::Warn,
        "ERROR" => Level::Error,
        "FATAL" => Level::Fatal,
        _ => return 0,
    };
    i64::from(level.severity_number()) + step - 1
}

/// A log's time: its own time, else the observed time, else the read time (flagged).
pub(crate) fn log_time(
    time_ns: u64,
    observed_ns: u64,
    cx: &LineContext<'_>,
) -> (i64, Option<i64>, Problems) {
    let observed = nonzero_ns(observed_ns);
    match (nonzero_ns(time_ns), observed) {
        (Some(t), _) => (t, observed, Problems::empty()),
        (None, Some(o)) => (o, observed, Problems::empty()),
        (None, None) => (cx.read_time_ns, None, Problems::NO_TIMESTAMP),
    }
}

/// Nanoseconds as the model stores them; 0 (proto3's "unset") and out-of-range values are none.
pub(crate) fn nonzero_ns(ns: u64) -> Option<i64> {
    i64::try_from(ns).ok().filter(|&ns| ns > 0)
}

/// Microseconds (Zipkin, Jaeger) to nanoseconds, saturating.
pub(crate) fn us_to_ns(us: i64) -> i64 {
    us.saturating_mul(1000)
}

/// Bytes from proto3-JSON base64 (standard or URL-safe alphabet, padding optional).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    BASE64_STANDARD
        .decode(s)
        .or_else(|_| BASE64_URL_SAFE.decode(s))
        .ok()
}

/// Records an id problem as a warning at the line's offset and returns `None` for the id.
pub(crate) fn warn_bad_id(
    warnings: &mut Vec<Warning>,
    cx: &LineContext<'_>,
    what: &str,
    raw: &dyn fmt::Debug,
    err: IdError,
) {
    warnings.push(Warning {
        offset: cx.offset,
        message: format!("{what} {raw:?} is not a valid id ({err}); record kept unlinked"),
    });
}

/// Tags that Jaeger and Zipkin exporters use to carry OTLP fields, moved back where they belong:
/// `otel.scope.name`/`otel.scope.version` (and the older `otel.library.*`), `otel.status_code`,
/// `otel.status_description`, `w3c.tracestate`, `span.kind` (when the span has no kind yet) and
/// the OpenTracing `error` tag. `error_is_message` is Zipkin's convention, where the tag's value
/// is the error message; in Jaeger it is a bool.
pub(crate) fn lift_conventional_tags(span: &mut Span, error_is_message: bool) {
    const LIFTED: [&str; 9] = [
        "otel.scope.name",
        "otel.library.name",
        "otel.scope.version",
        "otel.library.version",
        "otel.status_code",
        "otel.status_description",
        "w3c.tracestate",
        "span.kind",
        "error",
    ];
    let mut status_code = None;
    let mut status_message = None;
    let mut error_message = None;
    let scope = &mut span.scope;
    let trace_state = &mut span.trace_state;
    let kind = &mut span.kind;
    span.attributes.0.retain(|kv| {
        let key = kv.key.as_str();
        if !LIFTED.contains(&key) {
            return true;
        }
        let text = match &kv.value {
            AttrValue::Str(s) => s.as_str(),
            AttrValue::Bool(true) if key == "error" => "true",
            _ => return true,
        };
        match key {
            "otel.scope.name" | "otel.library.name" => scope.name = text.to_owned(),
            "otel.scope.version" | "otel.library.version" => scope.version = text.to_owned(),
            "otel.status_code" => match StatusCode::parse(text) {
                Some(code) => status_code = Some(code),
                None => return true,
            },
            "otel.status_description" => status_message = Some(text.to_owned()),
            "w3c.tracestate" => *trace_state = text.to_owned(),
            "span.kind" => match SpanKind::parse(text) {
                Some(parsed) if *kind == SpanKind::Unspecified => *kind = parsed,
                _ => return true,
            },
            _ if error_is_message => error_message = Some(text.to_owned()),
            _ if text.eq_ignore_ascii_case("true") => error_message = Some(String::new()),
            _ => return true,
        }
        false
    });
    if let Some(message) = error_message {
        span.status.code = StatusCode::Error;
        span.status.message = message;
    }
    if let Some(code) = status_code {
        span.status.code = code;
    }
    if let Some(message) = status_message {
        span.status.message = message;
    }
}

// ---------------------------------------------------------------------------------------------
// JSON AnyValue into the model.

impl AnyValueJson<'_> {
    pub(crate) fn into_value(self) -> AttrValue {
        if let Some(s) = self.string_value {
            return AttrValue::Str(s);
        }
        if let Some(b) = self.bool_value {
            return AttrValue::Bool(b.0);
        }
        if let Some(i) = self.int_value {
            return AttrValue::Int(i.0);
        }
        if let Some(f) = self.double_value {
            return AttrValue::Float(f.0);
        }
        if let Some(array) = self.array_value {
            let values = array.values.unwrap_or_default();
            return AttrValue::Array(values.into_iter().map(AnyValueJson::into_value).collect());
        }
        if let Some(kvlist) = self.kvlist_value {
            return AttrValue::Map(kvlist.values.0);
        }
        if let Some(Text(b64)) = self.bytes_value {
            // Not base64 after all: keep the text rather than lose the value.
            return match decode_base64(&b64) {
                Some(bytes) => AttrValue::Bytes(bytes),
                None => AttrValue::Str(b64.into()),
            };
        }
        empty_value()
    }
}

impl<'de> Deserialize<'de> for AttrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = AttrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of {\"key\", \"value\"} objects")
            }
            fn visit_unit<E: de::Error>(self) -> Result<AttrList, E> {
                Ok(AttrList::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrList, A::Error> {
                let mut attrs = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(64));
                while let Some(kv) = seq.next_element::<KeyValueJson<'de>>()? {
                    let value = kv.value.map_or_else(empty_value, AnyValueJson::into_value);
                    attrs.push(KeyValue { key: kv.key, value });
                }
                Ok(AttrList(Attributes(attrs)))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient scalars.

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct U64Visitor;
        impl Visitor<'_> for U64Visitor {
            type Value = U64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer or a decimal string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
                Ok(U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64, E> {
                u64::try_from(v).map(U64).map_err(|_| {
                    E::custom(format!("{v} is negative: expected an unsigned integer"))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<U64, E> {
                if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 {
                    Ok(U64(v as u64))
                } else if v < 0.0 {
                    Err(E::custom(format!(
                        "{v} is negative: expected an unsigned integer"
                    )))
                } else if v.is_finite() {
                    Err(E::custom(format!(
                        "{v:e} is out of the unsigned 64-bit range"
                    )))
                } else {
                    Err(E::custom(format!("{v} is not an unsigned integer")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
                let t = v.trim();
                if t.is_empty() {
                    return Ok(U64(0));
                }
                t.parse().map(U64).map_err(|e: std::num::ParseIntError| {
                    E::custom(match e.kind() {
                        _ if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) => {
                            format!("{v:?} is negative: expected an unsigned integer")
                        }
                        IntErrorKind::PosOverflow => {
                            format!("{v:?} is out of the unsigned 64-bit range")
                        }
                        _ => format!("{v:?} is not an unsigned integer"),
                    })
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<U64, E> {
                Ok(U64(0))
            }
        }
        deserializer.deserialize_any(U64Visitor)
    }
}

impl<'de> Deserialize<'de> for I64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct I64Visitor;
        impl Visitor<'_> for I64Visitor {
            type Value = I64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a decimal string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<I64, E> {
                Ok(I64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<I64, E> {
                i64::try_from(v)
                    .map(I64)
                    .map_err(|_| E::custom(format!("{v} is out of the 64-bit integer range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<I64, E> {
                if v.fract() == 0.0 && v.abs() < 9.2e18 {
                    Ok(I64(v as i64))
                } else if v.is_finite() && v.fract() == 0.0 {
                    // Beyond u64, serde_json has already rounded the digits to a double.
                    Err(E::custom(format!(
                        "{v:e} is out of the 64-bit integer range"
                    )))
                } else {
                    Err(E::custom(format!("{v} is not an integer")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<I64, E> {
                let t = v.trim();
                if t.is_empty() {
                    return Ok(I64(0));
                }
                t.parse().map(I64).map_err(|e: std::num::ParseIntError| {
                    E::custom(match e.kind() {
                        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                            format!("{v:?} is out of the 64-bit integer range")
                        }
                        _ => format!("{v:?} is not an integer"),
                    })
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<I64, E> {
                Ok(I64(0))
            }
        }
        deserializer.deserialize_any(I64Visitor)
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct F64Visitor;
        impl Visitor<'_> for F64Visitor {
            type Value = F64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, a numeric string, \"NaN\" or \"Infinity\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<F64, E> {
                Ok(F64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<F64, E> {
                match v.trim() {
                    "NaN" => Ok(F64(f64::NAN)),
                    "Infinity" => Ok(F64(f64::INFINITY)),
                    "-Infinity" => Ok(F64(f64::NEG_INFINITY)),
                    t => t
                        .parse()
                        .map(F64)
                        .map_err(|_| E::custom(format!("{v:?} is not a number"))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<F64, E> {
                Ok(F64(0.0))
            }
        }
        deserializer.deserialize_any(F64Visitor)
    }
}

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoolVisitor;
        impl Visitor<'_> for BoolVisitor {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bool")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
                Ok(Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool, E> {
                match v.trim() {
                    t if t.eq_ignore_ascii_case("true") => Ok(Bool(true)),
                    t if t.eq_ignore_ascii_case("false") || t.is_empty() => Ok(Bool(false)),
                    _ => Err(E::custom(format!("{v:?} is not a bool"))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Bool, E> {
                Ok(Bool(false))
            }
        }
        deserializer.deserialize_any(BoolVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Enum<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnumVisitor;
        impl<'de> Visitor<'de> for EnumVisitor {
            type Value = Enum<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an enum number or name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Enum<'de>, E> {
                Ok(Enum::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Enum<'de>, E> {
                Ok(Enum::Number(i64::try_from(v).unwrap_or(-1)))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Enum<'de>, E> {
                Ok(Enum::Name(Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Enum<'de>, E> {
                Ok(Enum::Name(Text(Cow::Owned(v.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Enum<'de>, E> {
                Ok(Enum::Number(0))
            }
        }
        deserializer.deserialize_any(EnumVisitor)
    }
}

impl Enum<'_> {
    /// The enum as a number; a name is looked up with `by_name` (which knows the prefixes).
    pub(crate) fn number(&self, by_name: impl Fn(&str) -> i64) -> i64 {
        match self {
            Enum::Number(n) => *n,
            Enum::Name(name) => {
                let name = name.as_str().trim();
                // A number written as a string is still the number.
                name.parse().unwrap_or_else(|_| by_name(name))
            }
        }
    }

    pub(crate) fn span_kind(&self) -> SpanKind {
        match self {
            Enum::Number(n) => SpanKind::from_otlp(*n),
            Enum::Name(name) => match name.as_str().trim().parse() {
                Ok(n) => SpanKind::from_otlp(n),
                Err(_) => SpanKind::parse(name.as_str()).unwrap_or_default(),
            },
        }
    }

    pub(crate) fn status_code(&self) -> StatusCode {
        match self {
            Enum::Number(n) => StatusCode::from_otlp(*n),
            Enum::Name(name) => match name.as_str().trim().parse() {
                Ok(n) => StatusCode::from_otlp(n),
                Err(_) => StatusCode::parse(name.as_str()).unwrap_or_default(),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                let value: serde_json::Value =
                    Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Scalar::Str(value.to_string().into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                let value: serde_json::Value =
                    Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Scalar::Str(value.to_string().into()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl Scalar {
    /// The value as text, as Zipkin tags and string-typed Jaeger tags want it.
    pub(crate) fn into_text(self) -> model::CompactString {
        use compact_str::ToCompactString as _;
        match self {
            Scalar::Null => model::CompactString::default(),
            Scalar::Bool(b) => b.to_compact_string(),
            Scalar::Int(i) => i.to_compact_string(),
            Scalar::Float(f) => f.to_compact_string(),
            Scalar::Str(s) => s,
        }
    }

    /// The value with its JSON type.
    pub(crate) fn into_value(self) -> AttrValue {
        match self {
            Scalar::Null => empty_value(),
            Scalar::Bool(b) => AttrValue::Bool(b),
            Scalar::Int(i) => AttrValue::Int(i),
            Scalar::Float(f) => AttrValue::Float(f),
            Scalar::Str(s) => AttrValue::Str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> AttrValue {
        serde_json::from_str::<AnyValueJson<'_>>(json)
            .unwrap()
            .into_value()
    }

    #[test]
    fn any_value_accepts_every_variant_and_spelling() {
        assert_eq!(value(r#"{"stringValue":"x"}"#), AttrValue::Str("x".into()));
        assert_eq!(
            value(r#"{"string_value":"x\ny"}"#),
            AttrValue::Str("x\ny".into())
        );
        assert_eq!(value(r#"{"boolValue":true}"#), AttrValue::Bool(true));
        assert_eq!(value(r#"{"intValue":"10"}"#), AttrValue::Int(10));
        assert_eq!(value(r#"{"intValue":-3}"#), AttrValue::Int(-3));
        assert_eq!(value(r#"{"doubleValue":1.5}"#), AttrValue::Float(1.5));
        assert_eq!(value(r#"{"doubleValue":2}"#), AttrValue::Float(2.0));
        assert_eq!(
            value(r#"{"doubleValue":"-Infinity"}"#),
            AttrValue::Float(f64::NEG_INFINITY)
        );
        assert!(matches!(value(r#"{"doubleValue":"NaN"}"#), AttrValue::Float(f) if f.is_nan()));
        assert_eq!(
            value(r#"{"bytesValue":"AQI="}"#),
            AttrValue::Bytes(vec![1, 2])
        );
        assert_eq!(
            value(r#"{"bytesValue":"_-8"}"#),
            AttrValue::Bytes(vec![0xff, 0xef])
        );
        assert_eq!(value(r#"{}"#), AttrValue::Str(String::new().into()));
        assert_eq!(
            value(r#"{"stringValueStrindex":3}"#),
            AttrValue::Str(String::new().into())
        );
        assert_eq!(
            value(r#"{"arrayValue":{"values":[{"intValue":1},{"boolValue":false}]}}"#),
            AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Bool(false)])
        );
        let mut map = Attributes::new();
        map.push("k", AttrValue::Str("v".into()));
        assert_eq!(
            value(r#"{"kvlistValue":{"values":[{"value":{"stringValue":"v"},"key":"k"}]}}"#),
            AttrValue::Map(map)
        );
        assert_eq!(value(r#"{"arrayValue":{}}"#), AttrValue::Array(Vec::new()));
    }

    #[test]
    fn severity_names_map_to_numbers() {
        assert_eq!(severity_number_from_name("SEVERITY_NUMBER_INFO"), 9);
        assert_eq!(severity_number_from_name("SEVERITY_NUMBER_WARN3"), 15);
        assert_eq!(severity_number_from_name("FATAL4"), 24);
        assert_eq!(severity_number_from_name("SEVERITY_NUMBER_UNSPECIFIED"), 0);
        assert_eq!(severity(17, ""), (Some(17), Some(Level::Error)));
        assert_eq!(severity(0, "Warning"), (None, Some(Level::Warn)));
    }

    #[test]
    fn conventional_tags_are_lifted() {
        let mut span = Span::default();
        span.attributes.push("otel.scope.name", "lib".into());
        span.attributes.push("span.kind", "client".into());
        span.attributes.push("error", AttrValue::Bool(true));
        span.attributes
            .push("otel.status_description", "boom".into());
        span.attributes.push("http.method", "GET".into());
        lift_conventional_tags(&mut span, false);
        assert_eq!(span.scope.name, "lib");
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.status.code, StatusCode::Error);
        assert_eq!(span.status.message, "boom");
        assert_eq!(span.attributes.len(), 1);
        assert_eq!(span.attributes.get_str("http.method"), Some("GET"));
    }
}
