//! Builders for model records and a helper that indexes them through the writer.

#![allow(dead_code)]

use std::num::NonZeroU64;

use index::{Batch, Index, Writer, WriterConfig};
use model::{
    AttrValue, Attributes, Level, LogRecord, Origin, Record, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId, TraceRef,
};
use tantivy::Term;
use tantivy::query::{BooleanQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;

/// 2026-11-20T14:00:00Z in ns.
pub const T0: i64 = 1_795_183_200_000_000_000;
pub const MS: i64 = 1_000_000;
pub const SEC: i64 = 1_000 * MS;

pub fn trace_id(hex: &str) -> TraceId {
    TraceId::from_hex(hex).unwrap()
}

pub fn span_id(n: u64) -> SpanId {
    SpanId::from_u64(n).unwrap()
}

pub fn attrs(pairs: &[(&str, AttrValue)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub struct SpanBuilder(pub Span);

pub fn span(
    trace: TraceId,
    id: u64,
    parent: Option<u64>,
    service: &str,
    name: &str,
) -> SpanBuilder {
    SpanBuilder(Span {
        trace_id: Some(trace),
        span_id: Some(span_id(id)),
        parent_span_id: parent.map(span_id),
        name: name.to_owned(),
        kind: if parent.is_none() {
            SpanKind::Server
        } else {
            SpanKind::Internal
        },
        service: service.to_owned(),
        start_ns: T0,
        end_ns: T0 + MS,
        ..Span::default()
    })
}

impl SpanBuilder {
    pub fn at(mut self, start_ns: i64, duration_ns: i64) -> Self {
        self.0.start_ns = start_ns;
        self.0.end_ns = start_ns + duration_ns;
        self
    }
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.0.kind = kind;
        self
    }
    pub fn error(mut self, message: &str) -> Self {
        self.0.status = Status {
            code: StatusCode::Error,
            message: message.to_owned(),
        };
        self
    }
    pub fn attr(mut self, key: &str, value: impl Into<AttrValue>) -> Self {
        self.0.attributes.push(key, value.into());
        self
    }
    pub fn resource(mut self, key: &str, value: impl Into<AttrValue>) -> Self {
        std::sync::Arc::make_mut(&mut self.0.resource).push(key, value.into());
        self
    }
    pub fn event(mut self, name: &str, time_ns: i64, attributes: Attributes) -> Self {
        self.0.events.push(model::SpanEvent {
            time_ns,
            name: name.to_owned(),
            attributes,
        });
        self
    }
    pub fn build(self) -> Record {
        Record::Span(self.0)
    }
}

pub struct LogBuilder(pub LogRecord);

pub fn log(trace: Option<TraceRef>, span: Option<u64>, service: &str, body: &str) -> LogBuilder {
    LogBuilder(LogRecord {
        time_ns: T0,
        service: service.to_owned(),
        level: Some(Level::Info),
        severity_text: "INFO".into(),
        body: body.to_owned(),
        trace_id: trace,
        span_id: span.map(span_id),
        origin: Some(Origin {
            source: format!("/var/log/{service}.log"),
            offset: 0,
        }),
        ..LogRecord::default()
    })
}

impl LogBuilder {
    pub fn at(mut self, time_ns: i64) -> Self {
        self.0.time_ns = time_ns;
        self
    }
    pub fn level(mut self, level: Level) -> Self {
        self.0.level = Some(level);
        self.0.severity_text = level.as_str().to_uppercase();
        self
    }
    pub fn attr(mut self, key: &str, value: impl Into<AttrValue>) -> Self {
        self.0.attributes.push(key, value.into());
        self
    }
    pub fn offset(mut self, offset: u64) -> Self {
        if let Some(origin) = &mut self.0.origin {
            origin.offset = offset;
        }
        self
    }
    pub fn build(self) -> Record {
        Record::Log(self.0)
    }
}

pub fn full(trace: TraceId) -> Option<TraceRef> {
    Some(TraceRef::Full(trace))
}

pub fn low64(trace: TraceId) -> Option<TraceRef> {
    Some(TraceRef::Low64(NonZeroU64::new(trace.low64()).unwrap()))
}

/// Indexes `batches` (one commit each, so several segments) and stops the writer.
pub fn index_batches(index: &Index, batches: Vec<Vec<Record>>) {
    let writer = Writer::start(index, WriterConfig::default()).unwrap();
    for records in batches {
        writer
            .blocking_send(Batch::new(records, Vec::new()))
            .unwrap();
        writer.blocking_flush().unwrap();
    }
    writer.shutdown().unwrap();
}

/// A fresh in-memory index holding `records` (one commit).
pub fn index_of(records: Vec<Record>) -> Index {
    let index = Index::create_in_ram().unwrap();
    index_batches(&index, vec![records]);
    index
}

// Hand-built tantivy queries, until the query language lands.

pub fn text_term(index: &Index, field: &str, value: &str) -> Box<dyn Query> {
    let field = index.fields().schema.get_field(field).unwrap();
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

pub fn attr_i64(index: &Index, path: &str, value: i64) -> Box<dyn Query> {
    let mut term = Term::from_field_json_path(index.fields().attributes, path, true);
    term.append_type_and_fast_value(value);
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

pub fn attr_str(index: &Index, path: &str, value: &str) -> Box<dyn Query> {
    let mut term = Term::from_field_json_path(index.fields().attributes, path, true);
    term.append_type_and_str(value);
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

pub fn and(queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::intersection(queries))
}
