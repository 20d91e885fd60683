//! Spans, span events and links, log records, and where each record came from.

use std::sync::Arc;

use crate::attr::Attributes;
use crate::ids::{SpanId, TraceId, TraceRef};

/// Anything threadline indexes.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Span(Span),
    Log(LogRecord),
}

/// One span, in OTLP's shape. Ids are optional because a record with a malformed id is kept
/// (unlinked, with a warning) rather than dropped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub service: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status: Status,
    pub attributes: Attributes,
    /// Shared by every record of one OTLP resource block (or Zipkin/Jaeger process): the
    /// decoder builds it once, and each record holds a reference, not a copy.
    pub resource: Arc<Attributes>,
    pub scope: Scope,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    pub trace_state: String,
    pub flags: u32,
    pub origin: Option<Origin>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanEvent {
    pub time_ns: i64,
    pub name: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanLink {
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub trace_state: String,
    pub attributes: Attributes,
    pub flags: u32,
}

/// The instrumentation scope (library) that produced a record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

/// One log line or OTLP log record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord {
    /// When it happened; when the source had no time this is the time it was read
    /// ([`Problems::NO_TIMESTAMP`] is then set).
    pub time_ns: i64,
    pub observed_time_ns: Option<i64>,
    pub service: String,
    /// OTLP severity number 1..=24, when the source had one.
    pub severity_number: Option<u8>,
    pub severity_text: String,
    pub level: Option<Level>,
    pub body: String,
    pub attributes: Attributes,
    pub resource: Arc<Attributes>,
    pub scope: Scope,
    pub event_name: String,
    pub trace_id: Option<TraceRef>,
    pub span_id: Option<SpanId>,
    pub flags: u32,
    pub origin: Option<Origin>,
    pub problems: Problems,
}

/// Where a record came from: a file (or receiver) name and the byte offset of its line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub source: String,
    pub offset: u64,
}

/// Normalised log level, ordered so `level >= warn` means warn, error or fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace = 1,
    Debug = 2,
    Info = 3,
    Warn = 4,
    Error = 5,
    Fatal = 6,
}

/// What went wrong while decoding a record that was kept anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Problems(u8);

impl Problems {
    /// No decoder understood the line; the body is the raw line.
    pub const PARSE_ERROR: Problems = Problems(1);
    /// The line was not valid UTF-8 and was decoded lossily.
    pub const INVALID_UTF8: Problems = Problems(1 << 1);
    /// The line was longer than the limit and was cut.
    pub const TRUNCATED: Problems = Problems(1 << 2);
    /// The source had no usable timestamp; the read time was used.
    pub const NO_TIMESTAMP: Problems = Problems(1 << 3);
    /// A trace or span id was present but malformed; the record is unlinked.
    pub const BAD_ID: Problems = Problems(1 << 4);

    pub const fn empty() -> Problems {
        Problems(0)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn from_bits(bits: u8) -> Problems {
        Problems(bits)
    }

    pub const fn contains(self, other: Problems) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: Problems) {
        self.0 |= other.0;
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the set flags, for display and JSON.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Problems::PARSE_ERROR, "parse_error"),
            (Problems::INVALID_UTF8, "invalid_utf8"),
            (Problems::TRUNCATED, "truncated"),
            (Problems::NO_TIMESTAMP, "no_timestamp"),
            (Problems::BAD_ID, "bad_id"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
        .collect()
    }
}

impl std::ops::BitOr for Problems {
    type Output = Problems;
    fn bitor(self, rhs: Problems) -> Problems {
        Problems(self.0 | rhs.0)
    }
}

impl Span {
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns).max(0)
    }

    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }
}

impl Record {
    pub fn trace_ref(&self) -> Option<TraceRef> {
        match self {
            Record::Span(s) => s.trace_id.map(TraceRef::Full),
            Record::Log(l) => l.trace_id,
        }
    }

    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Record::Span(s) => s.origin.as_ref(),
            Record::Log(l) => l.origin.as_ref(),
        }
    }

    pub fn set_origin(&mut self, origin: Origin) {
        match self {
            Record::Span(s) => s.origin = Some(origin),
            Record::Log(l) => l.origin = Some(origin),
        }
    }

    /// The record's time: a span's start, a log's time.
    pub fn time_ns(&self) -> i64 {
        match self {
            Record::Span(s) => s.start_ns,
            Record::Log(l) => l.time_ns,
        }
    }
}

impl SpanKind {
    /// OTLP's enum number (0..=5); anything else is unspecified.
    pub fn from_otlp(n: i64) -> SpanKind {
        match n {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    pub fn as_otlp(self) -> i32 {
        self as i32
    }

    /// Names as OTLP (`SPAN_KIND_SERVER`), Jaeger/OpenTracing (`server`) and Zipkin (`SERVER`)
    /// spell them, any case.
    pub fn parse(s: &str) -> Option<SpanKind> {
        let s = s.trim();
        let s = s
            .strip_prefix("SPAN_KIND_")
            .or_else(|| s.strip_prefix("span_kind_"))
            .unwrap_or(s);
        Some(match s.to_ascii_lowercase().as_str() {
            "unspecified" | "" => SpanKind::Unspecified,
            "internal" | "local" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// Upper-case name without prefix, as the Trace JSON shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }
}

impl StatusCode {
    pub fn from_otlp(n: i64) -> StatusCode {
        match n {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// `STATUS_CODE_ERROR`, `ERROR`, `error`, `Ok`, ...
    pub fn parse(s: &str) -> Option<StatusCode> {
        let s = s.trim();
        let s = s.strip_prefix("STATUS_CODE_").unwrap_or(s);
        Some(match s.to_ascii_lowercase().as_str() {
            "unset" | "" => StatusCode::Unset,
            "ok" => StatusCode::Ok,
            "error" => StatusCode::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "UNSET",
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
        }
    }
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// OTLP severity number ranges: 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error,
    /// 21–24 fatal.
    pub fn from_severity_number(n: i64) -> Option<Level> {
        Some(match n {
            1..=4 => Level::Trace,
            5..=8 => Level::Debug,
            9..=12 => Level::Info,
            13..=16 => Level::Warn,
            17..=20 => Level::Error,
            21..=24 => Level::Fatal,
            _ => return None,
        })
    }

    /// The first severity number of this level's range.
    pub fn severity_number(self) -> u8 {
        (self as u8 - 1) * 4 + 1
    }

    /// Level words as logging libraries write them (log4j, logback, Python, Go slog/zap,
    /// syslog, Bunyan/pino numbers, single letters), any case.
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        // Lowercased into a buffer on the stack: levels are read on nearly every log line.
        let mut buf = [0u8; 16];
        let buf = &mut buf[..s.len()];
        buf.copy_from_slice(s.as_bytes());
        buf.make_ascii_lowercase();
        // ASCII lowercasing keeps UTF-8 valid.
        let lower = std::str::from_utf8(buf).ok()?;
        Some(match lower {
            "trace" | "trc" | "finest" | "finer" | "verbose" | "t" | "10" => Level::Trace,
            "debug" | "dbg" | "fine" | "config" | "d" | "20" => Level::Debug,
            "info" | "inf" | "information" | "informational" | "notice" | "i" | "30" => Level::Info,
            "warn" | "warning" | "wrn" | "w" | "40" => Level::Warn,
            "error" | "err" | "severe" | "e" | "dpanic" | "50" => Level::Error,
            "fatal" | "ftl" | "critical" | "crit" | "panic" | "emerg" | "emergency" | "alert"
            | "f" | "c" | "60" => Level::Fatal,
            _ => {
                // OTLP-style suffixed names: INFO2, WARN4 ...
                let trimmed = lower.trim_end_matches(|c: char| c.is_ascii_digit());
                if trimmed.len() != lower.len() && !trimmed.is_empty() {
                    return Level::parse(trimmed);
                }
                return None;
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    pub fn ordinal(self) -> u8 {
        self as u8
    }

    pub fn from_ordinal(n: u8) -> Option<Level> {
        Level::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_normalise_and_order() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("Info"), Some(Level::Info));
        assert_eq!(Level::parse("CRITICAL"), Some(Level::Fatal));
        assert_eq!(Level::parse("INFO2"), Some(Level::Info));
        assert_eq!(Level::parse("nonsense"), None);
        assert_eq!(Level::from_severity_number(17), Some(Level::Error));
        assert_eq!(Level::from_severity_number(0), None);
        assert!(Level::Error >= Level::Warn);
        assert_eq!(Level::Warn.severity_number(), 13);
        for level in Level::ALL {
            assert_eq!(Level::from_ordinal(level.ordinal()), Some(level));
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
    }

    #[test]
    fn kinds_and_status_accept_every_spelling() {
        assert_eq!(SpanKind::parse("SPAN_KIND_SERVER"), Some(SpanKind::Server));
        assert_eq!(SpanKind::parse("client"), Some(SpanKind::Client));
        assert_eq!(SpanKind::from_otlp(4), SpanKind::Producer);
        assert_eq!(
            StatusCode::parse("STATUS_CODE_ERROR"),
            Some(StatusCode::Error)
        );
        assert_eq!(StatusCode::from_otlp(1), StatusCode::Ok);
    }

    #[test]
    fn problems_are_a_bit_set() {
        let mut p = Problems::empty();
        p.insert(Problems::PARSE_ERROR);
        p.insert(Problems::TRUNCATED);
        assert!(p.contains(Problems::TRUNCATED));
        assert!(!p.contains(Problems::BAD_ID));
        assert_eq!(p.names(), ["parse_error", "truncated"]);
    }
}
