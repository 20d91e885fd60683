//! Recursive-descent parser: tokens → [`Expr`], interpreting each value for its field.
//!
//! Grammar (precedence NOT > AND > OR; juxtaposition is AND):
//!
//! ```text
//! query   = [ or ]
//! or      = and { "OR" and }
//! and     = unary { [ "AND" ] unary }
//! unary   = "NOT" unary | chain
//! chain   = primary { ">" primary }     (a `>` after `)` is structural: TraceQL's child-of)
//! primary = "(" or ")" | "exists" "(" field ")" | "trace" "(" or ")" | field op value
//!         | field "IN" "(" value { "," value } ")" | word | string
//! value   = word | string | "now" "(" ")" [ ("+" | "-") duration ]
//! ```

use model::{Level, SpanId, StatusCode, TraceRef};

use super::ast::{
    AttrPath, AttrScope, Comparison, Expr, FieldRef, Number, Op, RecordKind, Time, Value,
};
use super::lexer::{Tok, Token, tokenize};
use super::value::{parse_duration, parse_number, parse_time, validate_regex};
use super::{Limits, QueryError};
use crate::field_catalog::Builtin;

/// Parses a whole query under the given limits.
pub(crate) fn parse(input: &str, limits: &Limits) -> Result<Expr, QueryError> {
    let n_chars = input.chars().count();
    if n_chars > limits.max_query_len {
        return Err(QueryError::At {
            column: limits.max_query_len + 1,
            message: format!(
                "query is too long ({n_chars} characters; the limit is {})",
                limits.max_query_len
            ),
        });
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        input,
        tokens,
        pos: 0,
        limits,
        n_clauses: 0,
        n_trace_predicates: 0,
        depth: 0,
    };
    if parser.tokens.is_empty() {
        return Ok(Expr::All);
    }
    let expr = parser.or()?;
    if let Some(token) = parser.peek() {
        let message = match &token.tok {
            Tok::RParen => "unmatched ')'".to_string(),
            Tok::Op(op) => format!("unexpected '{op}': expected a field name before it"),
            Tok::Plus => "unexpected '+'".to_string(),
            // `and` stops only at the tokens above.
            _ => "expected AND, OR or the end of the query".to_string(),
        };
        return Err(parser.error_at(token.at, message));
    }
    Ok(expr)
}

/// A value as written, before it is interpreted for its field.
enum Raw {
    Quoted(String),
    Bare(String),
    Now { offset_ns: i64 },
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    limits: &'a Limits,
    n_clauses: usize,
    n_trace_predicates: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_tok(&self) -> Option<&Tok> {
        self.peek().map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    /// Byte offset of the next token, or the end of the input.
    fn here(&self) -> usize {
        self.peek().map_or(self.input.len(), |t| t.at)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> QueryError {
        QueryError::at(self.input, at, message)
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.and(None)?];
        while self.is_keyword("OR") {
            self.next();
            items.push(self.and(Some("OR"))?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let mut items = vec![self.unary(after)?];
        loop {
            if self.is_keyword("AND") {
                self.next();
                items.push(self.unary(Some("AND"))?);
                continue;
            }
            let starts_operand = match self.peek_tok() {
                Some(Tok::Word(w)) => !w.eq_ignore_ascii_case("OR"),
                Some(Tok::Quoted(_) | Tok::LParen) => true,
                _ => false,
            };
            if !starts_operand {
                break;
            }
            items.push(self.unary(None)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        if !self.is_keyword("NOT") {
            return self.chain(after);
        }
        let at = self.here();
        self.next();
        self.enter(at)?;
        let inner = self.unary(Some("NOT"))?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn enter(&mut self, at: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.error_at(
                at,
                format!(
                    "query is nested too deeply (the limit is {})",
                    self.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    /// A primary, then any `> primary` links: `(A) > (B) > (C)` is the spans matching C whose
    /// parent matches B and whose grandparent matches A. A `>` is structural only after `)`
    /// (`duration > 2s` is a comparison, read inside the primary).
    fn chain(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let mut expr = self.primary(after)?;
        let mut linked = false;
        while let Some(Token {
            tok: Tok::Op(Op::Gt),
            at,
        }) = self.peek().cloned()
        {
            let after_paren = self.pos > 0
                && matches!(
                    self.tokens.get(self.pos - 1).map(|t| &t.tok),
                    Some(Tok::RParen)
                );
            if !linked && !after_paren {
                break;
            }
            self.next();
            if let Some(Token {
                tok: Tok::Op(Op::Gt),
                at: next_at,
            }) = self.peek()
                && *next_at == at + 1
            {
                return Err(self.error_at(
                    at,
                    "'>>' (descendant) is not supported: '>' links a span to its parent, so \
                     chain it: (A) > (B) > (C)",
                ));
            }
            self.count_trace_predicate(at, "'>'")?;
            let child = self.primary(Some(">"))?;
            expr = Expr::Child {
                parent: Box::new(expr),
                child: Box::new(child),
            };
            linked = true;
        }
        Ok(expr)
    }

    fn count_trace_predicate(&mut self, at: usize, what: &str) -> Result<(), QueryError> {
        self.n_trace_predicates += 1;
        if self.n_trace_predicates > self.limits.max_trace_predicates {
            return Err(self.error_at(
                at,
                format!(
                    "too many trace-level predicates at {what} (trace(...) and '>' count; the \
                     limit is {})",
                    self.limits.max_trace_predicates
                ),
            ));
        }
        Ok(())
    }

    fn count_clause(&mut self, at: usize) -> Result<(), QueryError> {
        self.n_clauses += 1;
        if self.n_clauses > self.limits.max_clauses {
            return Err(self.error_at(
                at,
                format!(
                    "too many clauses (the limit is {})",
                    self.limits.max_clauses
                ),
            ));
        }
        Ok(())
    }

    fn expected_expression(&self, after: Option<&str>) -> QueryError {
        let after = after.map(|a| format!(" after '{a}'")).unwrap_or_default();
        let got = match self.peek_tok() {
            None => String::new(),
            Some(Tok::RParen) => ", got ')'".to_string(),
            Some(Tok::Op(op)) => format!(", got '{op}'"),
            Some(Tok::Plus) => ", got '+'".to_string(),
            Some(Tok::Comma) => ", got ','".to_string(),
            Some(Tok::Word(w)) => format!(", got '{w}'"),
            Some(Tok::Quoted(_) | Tok::LParen) => String::new(),
        };
        self.error_at(self.here(), format!("expected an expression{after}{got}"))
    }

    fn primary(&mut self, after: Option<&str>) -> Result<Expr, QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected_expression(after));
        };
        match token.tok {
            Tok::LParen => {
                self.next();
                self.enter(token.at)?;
                if matches!(self.peek_tok(), Some(Tok::RParen)) {
                    return Err(self.expected_expression(Some("(")));
                }
                let inner = self.or_in_parens()?;
                self.depth -= 1;
                if !matches!(self.peek_tok(), Some(Tok::RParen)) {
                    return Err(self.error_at(self.here(), "expected ')' to close '('"));
                }
                self.next();
                Ok(inner)
            }
            Tok::Quoted(text) => {
                self.next();
                if let Some(Tok::Op(op)) = self.peek_tok() {
                    let message = format!("expected a field name before '{op}', got a string");
                    return Err(self.error_at(token.at, message));
                }
                self.count_clause(token.at)?;
                Ok(Expr::Text(text))
            }
            Tok::Word(word) => {
                if ["AND", "OR", "NOT"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    return Err(self.expected_expression(after));
                }
                self.next();
                if word.eq_ignore_ascii_case("exists")
                    && matches!(self.peek_tok(), Some(Tok::LParen))
                {
                    self.count_clause(token.at)?;
                    return self.exists();
                }
                if word.eq_ignore_ascii_case("trace")
                    && matches!(self.peek_tok(), Some(Tok::LParen))
                {
                    return self.trace_of(token.at);
                }
                if self.is_in_list() {
                    return self.in_list(&word, token.at);
                }
                match self.peek().cloned() {
                    Some(Token {
                        tok: Tok::Op(op),
                        at: op_at,
                    }) => {
                        self.count_clause(token.at)?;
                        self.next();
                        self.comparison(&word, token.at, op, op_at)
                    }
                    _ => {
                        self.count_clause(token.at)?;
                        Ok(Expr::Text(word))
                    }
                }
            }
            Tok::RParen | Tok::Op(_) | Tok::Plus | Tok::Comma => {
                Err(self.expected_expression(after))
            }
        }
    }

    /// `or` without the top level's "end of query" check: stops at `)`.
    fn or_in_parens(&mut self) -> Result<Expr, QueryError> {
        let expr = self.or()?;
        match self.peek_tok() {
            None | Some(Tok::RParen) => Ok(expr),
            Some(Tok::Op(op)) => {
                let message = format!("unexpected '{op}': expected a field name before it");
                Err(self.error_at(self.here(), message))
            }
            Some(_) => Err(self.error_at(self.here(), "expected AND, OR or ')'")),
        }
    }

    /// After the word `trace`: `( or )`.
    fn trace_of(&mut self, at: usize) -> Result<Expr, QueryError> {
        self.count_trace_predicate(at, "'trace('")?;
        let open_at = self.here();
        self.next(); // (
        self.enter(open_at)?;
        if matches!(self.peek_tok(), Some(Tok::RParen)) {
            return Err(self.expected_expression(Some("trace(")));
        }
        let inner = self.or_in_parens()?;
        self.depth -= 1;
        if !matches!(self.peek_tok(), Some(Tok::RParen)) {
            return Err(self.error_at(self.here(), "expected ')' to close 'trace('"));
        }
        self.next();
        Ok(Expr::Trace(Box::new(inner)))
    }

    /// After the word `exists`: `( field )`.
    fn exists(&mut self) -> Result<Expr, QueryError> {
        self.next(); // (
        let Some(Token {
            tok: Tok::Word(name),
            at,
        }) = self.peek().cloned()
        else {
            return Err(self.error_at(self.here(), "expected a field name after 'exists('"));
        };
        self.next();
        let field = resolve_field(&name).map_err(|m| self.error_at(at, m))?;
        if field == FieldRef::Builtin(Builtin::Body) {
            return Err(self.error_at(at, "exists() does not apply to body (every record has one)"));
        }
        if !matches!(self.peek_tok(), Some(Tok::RParen)) {
            return Err(self.error_at(self.here(), "expected ')' after the field name"));
        }
        self.next();
        Ok(Expr::Exists(field))
    }

    /// Whether the next tokens are `IN (`.
    fn is_in_list(&self) -> bool {
        matches!(self.peek_tok(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN"))
            && matches!(
                self.tokens.get(self.pos + 1).map(|t| &t.tok),
                Some(Tok::LParen)
            )
    }

    /// `field IN (a, b, c)`: `field = a OR field = b OR field = c`, each value a clause.
    fn in_list(&mut self, name: &str, name_at: usize) -> Result<Expr, QueryError> {
        let in_at = self.here();
        self.next(); // IN
        self.next(); // (
        let mut items = Vec::new();
        loop {
            if items.is_empty() && matches!(self.peek_tok(), Some(Tok::RParen)) {
                return Err(self.error_at(self.here(), "expected a value in 'IN ('"));
            }
            if !items.is_empty() {
                self.count_clause(name_at)?;
            }
            items.push(self.comparison(name, name_at, Op::Eq, in_at)?);
            match self.peek_tok() {
                Some(Tok::Comma) => {
                    self.next();
                }
                Some(Tok::RParen) => {
                    self.next();
                    break;
                }
                _ => {
                    return Err(self.error_at(self.here(), "expected ',' or ')' in 'IN (...)'"));
                }
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn comparison(
        &mut self,
        name: &str,
        name_at: usize,
        op: Op,
        op_at: usize,
    ) -> Result<Expr, QueryError> {
        let field = resolve_field(name).map_err(|m| self.error_at(name_at, m))?;
        check_op(&field, op).map_err(|m| self.error_at(op_at, m))?;
        let value_at = self.here();
        let raw = self.raw_value(op)?;
        let value = self.interpret(&field, op, raw, value_at)?;
        Ok(Expr::Compare(Comparison { field, op, value }))
    }

    fn raw_value(&mut self, op: Op) -> Result<Raw, QueryError> {
        let expected = || format!("expected a value after '{op}'");
        let Some(token) = self.peek().cloned() else {
            return Err(self.error_at(self.here(), expected()));
        };
        match token.tok {
            Tok::Quoted(text) => {
                self.next();
                Ok(Raw::Quoted(text))
            }
            Tok::Word(word)
                if ["AND", "OR", "NOT"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k)) =>
            {
                Err(self.error_at(token.at, expected()))
            }
            Tok::Word(word) => {
                self.next();
                if word.eq_ignore_ascii_case("now") && matches!(self.peek_tok(), Some(Tok::LParen))
                {
                    return self.now();
                }
                Ok(Raw::Bare(word))
            }
            _ => Err(self.error_at(token.at, expected())),
        }
    }

    /// After `now`: `()` and an optional `+ 1h`, `- 30m` or `-30m`.
    fn now(&mut self) -> Result<Raw, QueryError> {
        self.next(); // (
        if !matches!(self.peek_tok(), Some(Tok::RParen)) {
            return Err(self.error_at(self.here(), "expected ')' after 'now('"));
        }
        self.next();
        let (negative, inline) = match self.peek_tok() {
            Some(Tok::Plus) => (false, None),
            Some(Tok::Word(w)) if w == "-" => (true, None),
            Some(Tok::Word(w)) if w.starts_with('-') => (true, Some(w[1..].to_string())),
            _ => return Ok(Raw::Now { offset_ns: 0 }),
        };
        let sign_at = self.here();
        self.next();
        let (text, at) = match inline {
            Some(text) => (text, sign_at + 1),
            None => match self.peek().cloned() {
                Some(Token {
                    tok: Tok::Word(w),
                    at,
                }) => {
                    self.next();
                    (w, at)
                }
                _ => {
                    let sign = if negative { '-' } else { '+' };
                    let message = format!("expected a duration after 'now() {sign}'");
                    return Err(self.error_at(self.here(), message));
                }
            },
        };
        let ns = parse_duration(&text).map_err(|m| self.error_at(at, m))?;
        Ok(Raw::Now {
            offset_ns: if negative { -ns } else { ns },
        })
    }

    fn interpret(
        &self,
        field: &FieldRef,
        op: Op,
        raw: Raw,
        at: usize,
    ) -> Result<Value, QueryError> {
        let err = |message: String| self.error_at(at, message);
        let (text, quoted) = match raw {
            Raw::Now { offset_ns } => {
                return match field {
                    FieldRef::Builtin(Builtin::Timestamp) => {
                        Ok(Value::Time(Time::Now { offset_ns }))
                    }
                    _ => Err(err(format!(
                        "now() applies only to timestamp, not to {field}"
                    ))),
                };
            }
            Raw::Quoted(text) => (text, true),
            Raw::Bare(text) => (text, false),
        };
        if op == Op::Regex {
            return self.regex(text, at);
        }
        Ok(match field {
            FieldRef::Builtin(Builtin::TraceId) => Value::TraceRef(
                TraceRef::parse_any(&text)
                    .map_err(|e| err(format!("invalid trace id {text:?}: {e}")))?,
            ),
            FieldRef::Builtin(Builtin::SpanId) | FieldRef::Builtin(Builtin::ParentSpanId) => {
                Value::SpanId(
                    SpanId::parse_any(&text)
                        .map_err(|e| err(format!("invalid span id {text:?}: {e}")))?,
                )
            }
            FieldRef::Builtin(Builtin::Kind) => match text.to_ascii_lowercase().as_str() {
                "span" => Value::Kind(RecordKind::Span),
                "log" => Value::Kind(RecordKind::Log),
                _ => return Err(err(format!("kind must be span or log, got {text:?}"))),
            },
            FieldRef::Builtin(Builtin::Status) => match StatusCode::parse(&text) {
                Some(status) if !text.trim().is_empty() => Value::Status(status),
                _ => {
                    return Err(err(format!(
                        "status must be OK, ERROR or UNSET, got {text:?}"
                    )));
                }
            },
            FieldRef::Builtin(Builtin::Level) => {
                Value::Level(Level::parse(&text).ok_or_else(|| {
                    err(format!(
                        "level must be trace, debug, info, warn, error or fatal, got {text:?}"
                    ))
                })?)
            }
            FieldRef::Builtin(Builtin::Duration) => {
                Value::Duration(parse_duration(&text).map_err(err)?)
            }
            FieldRef::Builtin(Builtin::Timestamp) => {
                Value::Time(Time::Absolute(parse_time(&text).map_err(err)?))
            }
            FieldRef::Builtin(Builtin::Service)
            | FieldRef::Builtin(Builtin::Name)
            | FieldRef::Builtin(Builtin::Body)
            | FieldRef::Builtin(Builtin::Source) => Value::Str(text),
            FieldRef::Builtin(Builtin::SpanKind) => match text.to_ascii_uppercase().as_str() {
                kind @ ("SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER" | "INTERNAL"
                | "UNSPECIFIED") => Value::Str(kind.to_owned()),
                _ => {
                    return Err(err(format!(
                        "span_kind must be SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL or \
                         UNSPECIFIED, got {text:?}"
                    )));
                }
            },
            FieldRef::Attribute(_) if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) => {
                match parse_number(&text).filter(|_| !quoted) {
                    Some(value) => Value::Number(Number { text, value }),
                    None => {
                        let shown = if quoted { format!("{text:?}") } else { text };
                        return Err(err(format!("expected a number after '{op}', got {shown}")));
                    }
                }
            }
            FieldRef::Attribute(_) if quoted => Value::Str(text),
            FieldRef::Attribute(_) => super::bare_attribute_value(&text),
        })
    }

    fn regex(&self, pattern: String, at: usize) -> Result<Value, QueryError> {
        let n_chars = pattern.chars().count();
        if n_chars > self.limits.max_regex_len {
            let message = format!(
                "regex is too long ({n_chars} characters; the limit is {})",
                self.limits.max_regex_len
            );
            return Err(self.error_at(at, message));
        }
        validate_regex(&pattern)
            .map_err(|m| self.error_at(at, format!("invalid regex {pattern:?}: {m}")))?;
        Ok(Value::Regex(pattern))
    }
}

/// Maps a field name to what it addresses (the index's field catalog); unknown names are
/// attributes.
fn resolve_field(name: &str) -> Result<FieldRef, String> {
    use crate::field_catalog::{AttrLocation, Resolved};
    Ok(match crate::field_catalog::resolve(name)? {
        Resolved::Builtin(f) => FieldRef::Builtin(f.builtin),
        Resolved::Attribute { location, path } => {
            let scope = match location {
                AttrLocation::Any => AttrScope::Any,
                AttrLocation::Attributes => AttrScope::Attributes,
                AttrLocation::Resource => AttrScope::Resource,
                AttrLocation::Events => AttrScope::Events,
                AttrLocation::Links => AttrScope::Links,
                AttrLocation::Instrumentation => AttrScope::Instrumentation,
            };
            attribute(scope, &path)
        }
    })
}

fn attribute(scope: AttrScope, path: &str) -> FieldRef {
    FieldRef::Attribute(AttrPath {
        scope,
        path: path.to_string(),
    })
}

/// Which operators a field supports.
fn check_op(field: &FieldRef, op: Op) -> Result<(), String> {
    let (allowed, help): (&[Op], &str) = match field {
        FieldRef::Builtin(Builtin::TraceId)
        | FieldRef::Builtin(Builtin::SpanId)
        | FieldRef::Builtin(Builtin::ParentSpanId)
        | FieldRef::Builtin(Builtin::Kind)
        | FieldRef::Builtin(Builtin::SpanKind)
        | FieldRef::Builtin(Builtin::Status) => (&[Op::Eq, Op::Ne], "= and !="),
        FieldRef::Builtin(Builtin::Service)
        | FieldRef::Builtin(Builtin::Name)
        | FieldRef::Builtin(Builtin::Body)
        | FieldRef::Builtin(Builtin::Source) => (&[Op::Eq, Op::Ne, Op::Regex], "=, != and =~"),
        FieldRef::Builtin(Builtin::Level)
        | FieldRef::Builtin(Builtin::Duration)
        | FieldRef::Builtin(Builtin::Timestamp) => (
            &[Op::Eq, Op::Ne, Op::Gt, Op::Ge, Op::Lt, Op::Le],
            "= != > >= < <=",
        ),
        FieldRef::Attribute(_) => return Ok(()),
    };
    if allowed.contains(&op) {
        Ok(())
    } else {
        Err(format!(
            "{field} does not support '{op}' (it supports {help})"
        ))
    }
}
