//! threadline's data model: ids, spans, log records and attribute values. No I/O.

mod attr;
mod ids;
mod record;

pub use attr::{AttrValue, Attributes, CompactString, KeyValue};
pub use ids::{Hex, IdError, SpanId, TraceId, TraceParent, TraceRef, XRayHeader};
pub use record::{
    Level, LogRecord, Origin, Problems, Record, Scope, Span, SpanEvent, SpanKind, SpanLink, Status,
    StatusCode,
};
