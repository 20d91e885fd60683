//! The query language: text → [`Expr`] (parse) → tantivy query (compile).
//!
//! ```text
//! service.name = "payment-service" AND status = ERROR AND timestamp > now() - 30m
//! decline_code = "do_not_honor" AND kind = log
//! span.name = stripe_api_call AND duration > 2s
//! user.id = usr_456 OR order.id = ord_789
//! NOT level = info AND "connection reset"
//! http.status_code >= 500 AND exists(exception.type)
//! ```
//!
//! - `AND`, `OR`, `NOT` (any case) and parentheses; juxtaposition means AND; NOT binds tighter
//!   than AND, AND tighter than OR. Keywords are never values: quote `"not"` to search for it.
//! - Comparisons `= != > >= < <=` and `=~`. A regex (`regex` crate syntax) must match the *whole*
//!   value, as in Loki and Prometheus: `service =~ "pay.*"`. A leading `^` / trailing `$` is
//!   accepted and redundant. The index runs regexes as automata, so lazy repetition (`*?`) and
//!   `\b` are rejected with a message. On `body`, a regex matches single lowercased words.
//! - Values: `"..."` or `'...'` (escapes `\\ \" \' \n \r \t \u{..}`; any other backslash is kept,
//!   so `"\d+"` works), bare words (letters, digits, `_ . - : / @`), numbers, durations (`430ms`,
//!   `1.5s`, `250us`, `100ns`, `5m`, `1h`, `1d`), RFC 3339 times, `now()`, `now() - 30m`,
//!   `now() + 1h`.
//! - Known fields (the index's field catalog, `crate::field_catalog`, which aggregations,
//!   compare and `related` share): `trace_id` (any spelling `TraceRef::parse_any` reads),
//!   `span_id`, `parent_span_id`, `kind` (`span`|`log`), `service`/`service.name`,
//!   `name`/`span.name`/`operation`, `status`/`status.code` (`OK`|`ERROR`|`UNSET`),
//!   `span_kind`/`span.kind` (`SERVER`|`CLIENT`|`PRODUCER`|`CONSUMER`|`INTERNAL`|`UNSPECIFIED`),
//!   `level`/`severity` (`trace` < `debug` < `info` < `warn` < `error` < `fatal`),
//!   `duration`/`duration_ns`, `timestamp`, `body`/`message`, `source` (the file a record came
//!   from). Field names are case-sensitive; enum values are not.
//! - `duration` takes a duration; a bare number other than `0` is an error (is `500` ms or ns?).
//! - Any other name is an attribute, looked up in the record attributes, the resource attributes
//!   and the span-event attributes; `attr.x`/`attributes.x`, `resource.x` and `event.x`/`events.x`
//!   pick one (`event.name` is the event's name); `link.x`/`links.x` and `instrumentation.x`
//!   look in a span's link attributes and its instrumentation scope's (TraceQL's names). A bare
//!   value that reads as a number matches the number or the same text (`card.bin = 411111`); a
//!   quoted value is always text; `true`/`false` match booleans or text. `> >= < <=` on an attribute need a bare number.
//! - `x != v` means "x has a value and it is not v" (as in Loki and Quickwit); `NOT x = v` also
//!   matches records without x. `body != "..."` is plain negation.
//! - `x IN (a, b, c)` means `x = a OR x = b OR x = c`; each value counts as a clause.
//! - No glob: `*` is not a word character, so `x = ab*` is an error; a prefix is the regex
//!   `x =~ "ab.*"` (run as an automaton over the index's terms).
//! - `exists(x)` on an attribute is true when x, or anything nested under it, has a value.
//! - A quoted string or bare word on its own is full-text search on the body (which holds log
//!   bodies and span names): several words are a phrase.
//! - Trace-level: `trace(Q)` holds for every record of each trace that has a record matching
//!   `Q`, so `trace(service = payment-service AND status = ERROR) AND trace(level = warn)` finds
//!   the records of traces having both, and `NOT trace(Q)` those of traces having none (and
//!   records without a trace). `(A) > (B)` matches the spans matching B whose parent span matches
//!   A (TraceQL's structural `>`); a `>` is structural only after `)`, and chains:
//!   `(A) > (B) > (C)`. Each reads the index once more (at most [`MAX_TRACE_PREDICATES`] per
//!   query, each bounded: see `structure`).

mod ast;
mod compile;
mod lexer;
mod parser;
mod structure;
mod value;

#[cfg(test)]
mod compile_tests;
#[cfg(test)]
mod parse_tests;

pub use ast::{
    AttrPath, AttrScope, Comparison, Expr, FieldRef, NumValue, Number, Op, RecordKind, Time, Value,
};

use crate::schema::Fields;

/// At most this many clauses (comparisons, `exists`, text searches) in one query.
pub const MAX_CLAUSES: usize = 64;
/// At most this many characters in one regex.
pub const MAX_REGEX_LEN: usize = 1_000;
/// At most this many nested parentheses and `NOT`s.
pub const MAX_DEPTH: usize = 32;
/// At most this many characters in one query.
pub const MAX_QUERY_LEN: usize = 10_000;
/// At most this many trace-level predicates (`trace(...)` and `>`) in one query: each reads the
/// index once more before the query runs.
pub const MAX_TRACE_PREDICATES: usize = 8;

/// The value a bare (unquoted) word has on an attribute: a number matches the attribute stored
/// as that number or as that text, `true`/`false` the boolean or the text, anything else the
/// text.
pub fn bare_attribute_value(text: &str) -> Value {
    match (value::parse_number(text), text) {
        (Some(value), _) => Value::Number(Number {
            text: text.to_owned(),
            value,
        }),
        (None, "true") => Value::Bool(true),
        (None, "false") => Value::Bool(false),
        (None, _) => Value::Str(text.to_owned()),
    }
}

/// Parses a query under the default [`Limits`]. Blank input is [`Expr::All`].
pub fn parse(input: &str) -> Result<Expr, QueryError> {
    parse_with_limits(input, &Limits::default())
}

/// Parses a query under the given limits (the HTTP API may tighten them).
pub fn parse_with_limits(input: &str, limits: &Limits) -> Result<Expr, QueryError> {
    parser::parse(input, limits)
}

/// Builds the tantivy query. `now_ns` (nanoseconds since the epoch) resolves `now()`.
pub fn compile(
    expr: &Expr,
    fields: &Fields,
    now_ns: i64,
) -> Result<Box<dyn tantivy::query::Query>, QueryError> {
    compile::compile(expr, fields, now_ns)
}

/// [`parse`] then [`compile`]; blank input matches every document.
pub fn parse_and_compile(
    input: &str,
    fields: &Fields,
    now_ns: i64,
) -> Result<Box<dyn tantivy::query::Query>, QueryError> {
    compile(&parse(input)?, fields, now_ns)
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Bad query text. `column` is 1-based and counts characters.
    #[error("{message} at column {column}")]
    At { column: usize, message: String },
    /// An [`Expr`] built by hand that cannot be compiled (parsed queries always compile).
    #[error("{0}")]
    Invalid(String),
}

/// Bounds on what one query may ask of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_clauses: usize,
    pub max_regex_len: usize,
    pub max_depth: usize,
    pub max_query_len: usize,
    pub max_trace_predicates: usize,
}

impl QueryError {
    /// An error at byte offset `at` of `input`.
    pub(crate) fn at(input: &str, at: usize, message: impl Into<String>) -> QueryError {
        QueryError::At {
            column: QueryError::column_of(input, at),
            message: message.into(),
        }
    }

    /// The 1-based character column of byte offset `at`.
    pub(crate) fn column_of(input: &str, at: usize) -> usize {
        input.get(..at).map_or(at, |s| s.chars().count()) + 1
    }

    /// The 1-based column the error points at, if it came from query text.
    pub fn column(&self) -> Option<usize> {
        match self {
            QueryError::At { column, .. } => Some(*column),
            QueryError::Invalid(_) => None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clauses: MAX_CLAUSES,
            max_regex_len: MAX_REGEX_LEN,
            max_depth: MAX_DEPTH,
            max_query_len: MAX_QUERY_LEN,
            max_trace_predicates: MAX_TRACE_PREDICATES,
        }
    }
}
