//! The simulator's own neutral records: what a service did, before any wire format.
//!
//! Every writer formats exactly these values, and the ground truth is computed from them at the
//! moment they are written, so the two cannot disagree.

use std::borrow::Cow;

/// The five services of the checkout system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Service {
    Gateway,
    Orders,
    Inventory,
    Payments,
    Email,
}

pub(crate) const SERVICES: [Service; 5] = [
    Service::Gateway,
    Service::Orders,
    Service::Inventory,
    Service::Payments,
    Service::Email,
];

impl Service {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::Gateway => "api-gateway",
            Service::Orders => "order-service",
            Service::Inventory => "inventory-service",
            Service::Payments => "payment-service",
            Service::Email => "email-service",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Relative path of the span file.
    pub(crate) fn span_file(self) -> &'static str {
        match self {
            Service::Gateway => "spans/api-gateway.jsonl",
            Service::Orders => "spans/order-service.jsonl",
            Service::Inventory => "spans/inventory-service.zipkin.json",
            Service::Payments => "spans/payment-service.jsonl",
            Service::Email => "spans/email-service.jsonl",
        }
    }

    /// Relative path of the log file.
    pub(crate) fn log_file(self) -> &'static str {
        match self {
            Service::Gateway => "logs/api-gateway.jsonl",
            Service::Orders => "logs/order-service.log",
            Service::Inventory => "logs/inventory-service.jsonl",
            Service::Payments => "logs/payment-service.jsonl",
            Service::Email => "logs/email-service.jsonl",
        }
    }

    /// How finely this service's log format writes time, in nanoseconds.
    pub(crate) fn log_time_unit_ns(self) -> i64 {
        match self {
            Service::Gateway | Service::Orders | Service::Payments => 1_000_000,
            Service::Inventory => 1_000,
            Service::Email => 1,
        }
    }

    /// How finely this service's span format writes time (Zipkin: microseconds).
    pub(crate) fn span_time_unit_ns(self) -> i64 {
        match self {
            Service::Inventory => 1_000,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(Cow<'static, str>),
    Int(i64),
    F64(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr {
    pub key: &'static str,
    pub val: Val,
}

pub(crate) fn s(key: &'static str, val: impl Into<Cow<'static, str>>) -> Attr {
    Attr {
        key,
        val: Val::Str(val.into()),
    }
}

pub(crate) fn int(key: &'static str, val: i64) -> Attr {
    Attr {
        key,
        val: Val::Int(val),
    }
}

pub(crate) fn float(key: &'static str, val: f64) -> Attr {
    Attr {
        key,
        val: Val::F64(val),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    /// Zipkin's spelling; `None` for a local span.
    pub(crate) fn zipkin(self) -> Option<&'static str> {
        match self {
            SpanKind::Internal => None,
            SpanKind::Server => Some("SERVER"),
            SpanKind::Client => Some("CLIENT"),
            SpanKind::Producer => Some("PRODUCER"),
            SpanKind::Consumer => Some("CONSUMER"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanEvent {
    pub time_ns: i64,
    pub name: &'static str,
    pub attrs: Vec<Attr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    pub service: Service,
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: Option<u64>,
    /// The parent lives in another process (a SERVER or CONSUMER span under a remote caller).
    pub remote_parent: bool,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub start_ns: i64,
    pub end_ns: i64,
    /// `Some(message)` is status ERROR; `None` is UNSET.
    pub error: Option<String>,
    pub attrs: Vec<Attr>,
    pub events: Vec<SpanEvent>,
    /// What is wrong at this span, for the ground truth only (never written): a finding kind
    /// threadline should report here, and the trace it links to.
    pub problems: Vec<(&'static str, Option<u128>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Log {
    pub service: Service,
    pub time_ns: i64,
    pub level: Level,
    pub message: Cow<'static, str>,
    pub trace_id: Option<u128>,
    pub span_id: Option<u64>,
    pub attrs: Vec<Attr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    Span(Span),
    Log(Log),
}

impl Record {
    pub(crate) fn attr(&self, key: &str) -> Option<&Val> {
        let attrs = match self {
            Record::Span(s) => &s.attrs,
            Record::Log(l) => &l.attrs,
        };
        attrs.iter().find(|a| a.key == key).map(|a| &a.val)
    }

    pub(crate) fn attr_str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Val::Str(v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn service(&self) -> Service {
        match self {
            Record::Span(s) => s.service,
            Record::Log(l) => l.service,
        }
    }

    /// When the record reaches its file: a span when it ends (exporters send finished spans), a
    /// log when it is written.
    pub(crate) fn emit_ns(&self) -> i64 {
        match self {
            Record::Span(s) => s.end_ns,
            Record::Log(l) => l.time_ns,
        }
    }
}
