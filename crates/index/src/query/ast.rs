//! The parsed query: a tree of typed comparisons, displayed back as query text.
//!
//! Every value is already interpreted for its field (a `Level`, a duration in nanoseconds, a
//! `TraceRef`, ...), so compiling a parsed query cannot fail on bad input.

use std::fmt;

use model::{Level, SpanId, StatusCode, TraceRef};

pub use crate::field_catalog::Builtin;

pub use super::lexer::Op;

/// A query expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every document (the empty query).
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A bare word or quoted string alone: full-text search on the body (which also holds span
    /// names); several words are a phrase.
    Text(String),
    /// `exists(field)`.
    Exists(FieldRef),
    Compare(Comparison),
    /// `trace(Q)`: every record of each trace that has a record matching `Q`.
    Trace(Box<Expr>),
    /// `A > B`: the spans matching `B` whose parent span matches `A` (TraceQL's structural `>`).
    Child {
        parent: Box<Expr>,
        child: Box<Expr>,
    },
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: FieldRef,
    pub op: Op,
    pub value: Value,
}

/// What a comparison looks at: a built-in field (its names and where it lives are in the
/// [field catalog](crate::field_catalog)), or an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    Builtin(Builtin),
    Attribute(AttrPath),
}

/// An attribute key (dots expanded) and where to look for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub scope: AttrScope,
    pub path: String,
}

/// Which JSON fields an attribute name is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrScope {
    /// Span/log attributes, resource attributes and span-event attributes.
    Any,
    /// `attr.x` / `attributes.x`.
    Attributes,
    /// `resource.x`.
    Resource,
    /// `event.x` / `events.x`.
    Events,
    /// `link.x` / `links.x`: attributes of a span's links.
    Links,
    /// `instrumentation.x`: attributes of a span's instrumentation scope.
    Instrumentation,
}

/// A comparison's value, interpreted for its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string: quoted, or a bare word on a text field.
    Str(String),
    /// A bare word that reads as a number (attributes only): matches the attribute stored as this
    /// number or as this exact text.
    Number(Number),
    /// A bare `true`/`false` (attributes only): matches the boolean or the text.
    Bool(bool),
    /// A regular expression (`=~`), already validated.
    Regex(String),
    TraceRef(TraceRef),
    SpanId(SpanId),
    Kind(RecordKind),
    Status(StatusCode),
    Level(Level),
    /// Nanoseconds.
    Duration(i64),
    Time(Time),
}

/// A bare number as written, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub text: String,
    pub value: NumValue,
}

/// A number normalised the way tantivy indexes JSON numbers: i64 when it fits, else u64, else f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumValue {
    I64(i64),
    U64(u64),
    F64(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Span,
    Log,
}

/// A point in time: absolute, or relative to the `now_ns` given at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// Nanoseconds since the Unix epoch.
    Absolute(i64),
    /// `now()` plus this many nanoseconds (negative for `now() - 30m`).
    Now { offset_ns: i64 },
}

impl Expr {
    /// The number of leaf clauses (comparisons, `exists`, text searches): what the API limits.
    pub fn clause_count(&self) -> usize {
        match self {
            Expr::All => 0,
            Expr::And(items) | Expr::Or(items) => items.iter().map(Expr::clause_count).sum(),
            Expr::Not(inner) => inner.clause_count(),
            Expr::Text(_) | Expr::Exists(_) | Expr::Compare(_) => 1,
            Expr::Trace(inner) => inner.clause_count(),
            Expr::Child { parent, child } => parent.clause_count() + child.clause_count(),
        }
    }

    /// The number of trace-level predicates (`trace(...)` and `>`): each reads the index once
    /// more before the query runs.
    pub fn trace_predicate_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Expr::All | Expr::Text(_) | Expr::Exists(_) | Expr::Compare(_) => {}
                Expr::And(items) | Expr::Or(items) => stack.extend(items),
                Expr::Not(inner) => stack.push(inner),
                Expr::Trace(inner) => {
                    count += 1;
                    stack.push(inner);
                }
                Expr::Child { parent, child } => {
                    count += 1;
                    stack.push(parent);
                    stack.push(child);
                }
            }
        }
        count
    }
}

impl RecordKind {
    /// The value stored in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Span => "span",
            RecordKind::Log => "log",
        }
    }
}

impl Time {
    /// Nanoseconds since the epoch, given the current time (saturating).
    pub fn resolve(self, now_ns: i64) -> i64 {
        match self {
            Time::Absolute(ns) => ns,
            Time::Now { offset_ns } => now_ns.saturating_add(offset_ns),
        }
    }
}

/// Precedence levels for printing: an operand binds tighter than its parent or is parenthesised.
fn precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::Or(_) => 1,
        Expr::And(_) => 2,
        Expr::Not(_) => 3,
        _ => 4,
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, expr: &Expr, min: u8) -> fmt::Result {
    if precedence(expr) < min {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

/// Prints the query so that parsing it gives back the same `Expr`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::All => Ok(()),
            Expr::And(items) | Expr::Or(items) => {
                let (sep, min) = match self {
                    Expr::And(_) => (" AND ", 3),
                    _ => (" OR ", 2),
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write_operand(f, item, min)?;
                }
                Ok(())
            }
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                write_operand(f, inner, 3)
            }
            Expr::Text(text) => write_quoted(f, text),
            Expr::Exists(field) => write!(f, "exists({field})"),
            Expr::Compare(c) => write!(f, "{} {} {}", c.field, c.op, c.value),
            Expr::Trace(inner) => write!(f, "trace({inner})"),
            Expr::Child { parent, child } => {
                // The left side of `>` must end with `)`: a chain, or a group.
                match **parent {
                    Expr::Child { .. } | Expr::Trace(_) | Expr::Exists(_) => write!(f, "{parent}")?,
                    _ => write!(f, "({parent})")?,
                }
                match **child {
                    Expr::Trace(_) | Expr::Exists(_) => write!(f, " > {child}"),
                    _ => write!(f, " > ({child})"),
                }
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Regex => "=~",
        })
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FieldRef::Builtin(Builtin::TraceId) => "trace_id",
            FieldRef::Builtin(Builtin::SpanId) => "span_id",
            FieldRef::Builtin(Builtin::ParentSpanId) => "parent_span_id",
            FieldRef::Builtin(Builtin::Kind) => "kind",
            FieldRef::Builtin(Builtin::Service) => "service",
            FieldRef::Builtin(Builtin::Name) => "name",
            FieldRef::Builtin(Builtin::Status) => "status",
            FieldRef::Builtin(Builtin::SpanKind) => "span_kind",
            FieldRef::Builtin(Builtin::Level) => "level",
            FieldRef::Builtin(Builtin::Duration) => "duration",
            FieldRef::Builtin(Builtin::Timestamp) => "timestamp",
            FieldRef::Builtin(Builtin::Body) => "body",
            FieldRef::Builtin(Builtin::Source) => "source",
            FieldRef::Attribute(attr) => {
                let prefix = match attr.scope {
                    AttrScope::Any => "",
                    AttrScope::Attributes => "attr.",
                    AttrScope::Resource => "resource.",
                    AttrScope::Events => "events.",
                    AttrScope::Links => "link.",
                    AttrScope::Instrumentation => "instrumentation.",
                };
                return write!(f, "{prefix}{}", attr.path);
            }
        };
        f.write_str(name)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) | Value::Regex(s) => write_quoted(f, s),
            Value::Number(n) => f.write_str(&n.text),
            Value::Bool(b) => write!(f, "{b}"),
            // A low-64 reference prints as the decimal it came from, so it parses back the same.
            Value::TraceRef(TraceRef::Low64(low)) => write!(f, "{low}"),
            Value::TraceRef(r) => write!(f, "{r}"),
            Value::SpanId(id) => write!(f, "{id}"),
            Value::Kind(kind) => f.write_str(kind.as_str()),
            Value::Status(status) => f.write_str(status.as_str()),
            Value::Level(level) => f.write_str(level.as_str()),
            Value::Duration(ns) => write_duration(f, *ns),
            Value::Time(Time::Absolute(ns)) => {
                match jiff::Timestamp::from_nanosecond(i128::from(*ns)) {
                    Ok(ts) => write!(f, "{ts}"),
                    // Unreachable for any i64 of nanoseconds; keep Display total anyway.
                    Err(_) => write!(f, "{ns}"),
                }
            }
            Value::Time(Time::Now { offset_ns }) => {
                f.write_str("now()")?;
                match offset_ns.cmp(&0) {
                    std::cmp::Ordering::Equal => Ok(()),
                    std::cmp::Ordering::Greater => {
                        f.write_str(" + ")?;
                        write_duration(f, *offset_ns)
                    }
                    std::cmp::Ordering::Less => {
                        f.write_str(" - ")?;
                        write_duration(f, offset_ns.unsigned_abs() as i64)
                    }
                }
            }
        }
    }
}

/// The largest unit that divides the duration exactly: `30m`, `1500ms`, `0s`.
fn write_duration(f: &mut fmt::Formatter<'_>, ns: i64) -> fmt::Result {
    if ns == 0 {
        return f.write_str("0s");
    }
    for (unit, size) in super::value::DURATION_UNITS_DESC {
        if ns % size == 0 {
            return write!(f, "{}{unit}", ns / size);
        }
    }
    write!(f, "{ns}ns")
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}
