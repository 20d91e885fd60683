//! [`Expr`] → tantivy query, against the index schema ([`Fields`]).

use std::ops::Bound;

use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery,
    RegexQuery, TermQuery,
};
use tantivy::schema::{Field, FieldType, IndexRecordOption, Type};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use super::QueryError;
use super::ast::{AttrPath, AttrScope, Comparison, Expr, FieldRef, NumValue, Op, Value};
use super::structure::{ChildOf, LinkFields, TraceMembers, TraceOf};
use super::value::strip_anchors;
use crate::field_catalog::Builtin;
use crate::json_terms::{PathExists, number_range};
use crate::schema::{Fields, names};

type BoxQuery = Box<dyn Query>;

pub(crate) fn compile(expr: &Expr, fields: &Fields, now_ns: i64) -> Result<BoxQuery, QueryError> {
    let body_analyzer = body_analyzer(fields)?;
    Compiler {
        fields,
        now_ns,
        body_analyzer,
    }
    .expr(expr)
}

struct Compiler<'a> {
    fields: &'a Fields,
    now_ns: i64,
    body_analyzer: TextAnalyzer,
}

/// The analyzer the schema declares for `body`, so phrases split the way documents did.
fn body_analyzer(fields: &Fields) -> Result<TextAnalyzer, QueryError> {
    let tokenizer = match fields.schema.get_field_entry(fields.body).field_type() {
        FieldType::Str(options) => options
            .get_indexing_options()
            .map(|o| o.tokenizer().to_string()),
        _ => None,
    }
    .ok_or_else(|| QueryError::Invalid("the body field is not an indexed text field".into()))?;
    TokenizerManager::default()
        .get(&tokenizer)
        .ok_or_else(|| QueryError::Invalid(format!("unknown tokenizer {tokenizer:?} for body")))
}

impl Compiler<'_> {
    fn expr(&mut self, expr: &Expr) -> Result<BoxQuery, QueryError> {
        Ok(match expr {
            Expr::All => Box::new(AllQuery),
            Expr::And(items) => {
                // Negated operands become MustNot clauses of the same query; tantivy needs at
                // least one positive clause to match anything.
                let mut clauses = Vec::with_capacity(items.len() + 1);
                for item in items {
                    match item {
                        Expr::Not(inner) => clauses.push((Occur::MustNot, self.expr(inner)?)),
                        other => clauses.push((Occur::Must, self.expr(other)?)),
                    }
                }
                if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            Expr::Or(items) => {
                let clauses = items
                    .iter()
                    .map(|item| self.expr(item))
                    .collect::<Result<_, _>>()?;
                Box::new(BooleanQuery::union(clauses))
            }
            Expr::Not(inner) => not(self.expr(inner)?),
            Expr::Text(text) => self.body_match(text),
            Expr::Exists(field) => self.exists(field)?,
            Expr::Compare(c) => self.compare(c)?,
            Expr::Trace(inner) => Box::new(TraceOf::new(
                self.expr(inner)?,
                LinkFields::new(self.fields),
            )),
            Expr::Child { parent, child } => Box::new(ChildOf::new(
                self.expr(parent)?,
                self.expr(child)?,
                LinkFields::new(self.fields),
            )),
        })
    }

    fn compare(&mut self, c: &Comparison) -> Result<BoxQuery, QueryError> {
        let f = self.fields;
        let invalid =
            || QueryError::Invalid(format!("cannot compile `{} {} {}`", c.field, c.op, c.value));
        Ok(match (&c.field, c.op, &c.value) {
            (FieldRef::Attribute(attr), op, value) => self.attribute(attr, op, value)?,
            (_, Op::Regex, Value::Regex(pattern)) => {
                let field = match c.field {
                    FieldRef::Builtin(Builtin::Service) => f.service,
                    FieldRef::Builtin(Builtin::Name) => f.name,
                    FieldRef::Builtin(Builtin::Body) => f.body,
                    FieldRef::Builtin(Builtin::Source) => f.source,
                    _ => return Err(invalid()),
                };
                regex(strip_anchors(pattern), field)?
            }
            (FieldRef::Builtin(Builtin::Body), Op::Eq, Value::Str(text)) => self.body_match(text),
            // Every record has a body: `!=` is plain negation.
            (FieldRef::Builtin(Builtin::Body), Op::Ne, Value::Str(text)) => {
                not(self.body_match(text))
            }
            (field, op @ (Op::Eq | Op::Ne), value) => {
                let (name, eq) = match (field, value) {
                    (FieldRef::Builtin(Builtin::TraceId), Value::TraceRef(r)) => {
                        (names::TRACE_ID, self.trace(*r))
                    }
                    (FieldRef::Builtin(Builtin::SpanId), Value::SpanId(id)) => {
                        (names::SPAN_ID, u64_term(f.span_id, id.as_u64()))
                    }
                    (FieldRef::Builtin(Builtin::ParentSpanId), Value::SpanId(id)) => (
                        names::PARENT_SPAN_ID,
                        u64_term(f.parent_span_id, id.as_u64()),
                    ),
                    (FieldRef::Builtin(Builtin::Kind), Value::Kind(kind)) => {
                        (names::KIND, text_term(f.kind, kind.as_str()))
                    }
                    (FieldRef::Builtin(Builtin::Status), Value::Status(s)) => {
                        (names::STATUS, text_term(f.status, s.as_str()))
                    }
                    (FieldRef::Builtin(Builtin::Service), Value::Str(s)) => {
                        (names::SERVICE, text_term(f.service, s))
                    }
                    (FieldRef::Builtin(Builtin::Name), Value::Str(s)) => {
                        (names::NAME, text_term(f.name, s))
                    }
                    (FieldRef::Builtin(Builtin::SpanKind), Value::Str(s)) => {
                        (names::SPAN_KIND, text_term(f.span_kind, s))
                    }
                    (FieldRef::Builtin(Builtin::Source), Value::Str(s)) => {
                        (names::SOURCE, text_term(f.source, s))
                    }
                    _ => {
                        let (term, name) = self.ordered_term(field, value).ok_or_else(invalid)?;
                        return Ok(ordered(op, term, name));
                    }
                };
                if op == Op::Eq {
                    eq
                } else {
                    not_equal(exists_query(f, name), eq)
                }
            }
            (field, op, value) => match self.ordered_term(field, value) {
                Some((term, name)) if op != Op::Regex => ordered(op, term, name),
                _ => return Err(invalid()),
            },
        })
    }

    /// The term for fields compared by order (level, duration, timestamp), and the fast field
    /// that tells whether a record has one.
    fn ordered_term(&self, field: &FieldRef, value: &Value) -> Option<(Term, &'static str)> {
        let f = self.fields;
        Some(match (field, value) {
            (FieldRef::Builtin(Builtin::Level), Value::Level(level)) => (
                Term::from_field_u64(f.level, u64::from(level.ordinal())),
                names::LEVEL,
            ),
            (FieldRef::Builtin(Builtin::Duration), Value::Duration(ns)) => {
                (Term::from_field_i64(f.duration_ns, *ns), names::DURATION_NS)
            }
            (FieldRef::Builtin(Builtin::Timestamp), Value::Time(t)) => {
                let at = tantivy::DateTime::from_timestamp_nanos(t.resolve(self.now_ns));
                (Term::from_field_date(f.timestamp, at), names::TIMESTAMP)
            }
            _ => return None,
        })
    }

    /// A full id matches its own records and the records that know only its low 64 bits; an id
    /// known only by its low 64 bits (or with a zero high half) matches on the low half alone.
    fn trace(&self, r: model::TraceRef) -> BoxQuery {
        match r.full() {
            Some(id) if id.high64() != 0 => Box::new(TraceMembers::new(
                [id.as_u128()],
                LinkFields::new(self.fields),
            )),
            // Known only by its low 64 bits: every record with them.
            _ => crate::trace::low64_query(self.fields, r.low64()),
        }
    }

    fn exists(&self, field: &FieldRef) -> Result<BoxQuery, QueryError> {
        let name = match field {
            FieldRef::Builtin(Builtin::TraceId) => names::TRACE_ID,
            FieldRef::Builtin(Builtin::SpanId) => names::SPAN_ID,
            FieldRef::Builtin(Builtin::ParentSpanId) => names::PARENT_SPAN_ID,
            FieldRef::Builtin(Builtin::Kind) => names::KIND,
            FieldRef::Builtin(Builtin::Service) => names::SERVICE,
            FieldRef::Builtin(Builtin::Name) => names::NAME,
            FieldRef::Builtin(Builtin::Status) => names::STATUS,
            FieldRef::Builtin(Builtin::SpanKind) => names::SPAN_KIND,
            FieldRef::Builtin(Builtin::Source) => names::SOURCE,
            FieldRef::Builtin(Builtin::Level) => names::LEVEL,
            FieldRef::Builtin(Builtin::Duration) => names::DURATION_NS,
            FieldRef::Builtin(Builtin::Timestamp) => names::TIMESTAMP,
            FieldRef::Builtin(Builtin::Body) => {
                return Err(QueryError::Invalid(
                    "exists() does not apply to body".into(),
                ));
            }
            FieldRef::Attribute(attr) => return Ok(self.attribute_exists(attr, true)),
        };
        Ok(exists_query(self.fields, name))
    }

    fn scope_fields(&self, scope: AttrScope) -> Vec<(Field, &'static str)> {
        let f = self.fields;
        match scope {
            AttrScope::Any => vec![
                (f.attributes, names::ATTRIBUTES),
                (f.resource, names::RESOURCE),
                (f.events, names::EVENTS),
            ],
            AttrScope::Attributes => vec![(f.attributes, names::ATTRIBUTES)],
            AttrScope::Resource => vec![(f.resource, names::RESOURCE)],
            AttrScope::Events => vec![(f.events, names::EVENTS)],
            AttrScope::Links => vec![(f.links, names::LINKS)],
            AttrScope::Instrumentation => vec![(f.scope, names::SCOPE)],
        }
    }

    /// `json_subpaths`: whether a value nested under the path counts (`exists(exception)` finds
    /// `exception.type`).
    fn attribute_exists(&self, attr: &AttrPath, json_subpaths: bool) -> BoxQuery {
        union(
            self.scope_fields(attr.scope)
                .into_iter()
                .map(|(field, _)| -> BoxQuery {
                    Box::new(PathExists::new(field, &attr.path, json_subpaths))
                })
                .collect(),
        )
    }

    fn attribute(&self, attr: &AttrPath, op: Op, value: &Value) -> Result<BoxQuery, QueryError> {
        let invalid = || {
            QueryError::Invalid(format!(
                "cannot compare attribute {} with {op} {value}",
                attr.path
            ))
        };
        let mut per_field = Vec::new();
        for (field, _) in self.scope_fields(attr.scope) {
            let path_term = Term::from_field_json_path(field, &attr.path, true);
            let with_str = |s: &str| {
                let mut t = path_term.clone();
                t.append_type_and_str(s);
                t
            };
            let with_num = |n: NumValue| {
                let mut t = path_term.clone();
                match n {
                    NumValue::I64(v) => t.append_type_and_fast_value(v),
                    NumValue::U64(v) => t.append_type_and_fast_value(v),
                    NumValue::F64(v) => t.append_type_and_fast_value(v),
                }
                t
            };
            let query: BoxQuery = match (op, value) {
                (Op::Eq | Op::Ne, Value::Str(s)) => term(with_str(s)),
                // A bare number matches the attribute stored as that number or as that text.
                (Op::Eq | Op::Ne, Value::Number(n)) => {
                    union(vec![term(with_num(n.value)), term(with_str(&n.text))])
                }
                (Op::Eq | Op::Ne, Value::Bool(b)) => {
                    let mut t = path_term.clone();
                    t.append_type_and_fast_value(*b);
                    union(vec![term(t), term(with_str(&b.to_string()))])
                }
                (Op::Regex, Value::Regex(pattern)) => {
                    // Terms of a JSON field are `path \0 type value`: match the path and the
                    // string type literally, then the pattern on the value.
                    let prefix = with_str("");
                    let prefix = String::from_utf8_lossy(prefix.serialized_value_bytes());
                    let pattern =
                        format!("{}(?:{})", escape_literal(&prefix), strip_anchors(pattern));
                    regex(&pattern, field)?
                }
                (Op::Gt | Op::Ge | Op::Lt | Op::Le, Value::Number(n)) => {
                    use Bound::{Excluded, Included, Unbounded};
                    let (lower, upper) = match op {
                        Op::Gt => (Excluded(n.value), Unbounded),
                        Op::Ge => (Included(n.value), Unbounded),
                        Op::Lt => (Unbounded, Excluded(n.value)),
                        _ => (Unbounded, Included(n.value)),
                    };
                    number_range(field, &attr.path, lower, upper)
                }
                _ => return Err(invalid()),
            };
            per_field.push(query);
        }
        let eq = union(per_field);
        Ok(match op {
            // "x exists and no value of x equals v" (Loki/Quickwit users expect existence).
            Op::Ne => Box::new(BooleanQuery::new(vec![
                (Occur::Must, self.attribute_exists(attr, false)),
                (Occur::MustNot, eq),
            ])),
            _ => eq,
        })
    }

    /// Full text on the body: a term, or a phrase for several tokens.
    fn body_match(&mut self, text: &str) -> BoxQuery {
        let body = self.fields.body;
        let mut terms = Vec::new();
        let mut stream = self.body_analyzer.token_stream(text);
        while let Some(token) = stream.next() {
            terms.push((token.position, Term::from_field_text(body, &token.text)));
        }
        match terms.len() {
            // Only punctuation: nothing can match.
            0 => Box::new(EmptyQuery),
            1 => term(terms.remove(0).1),
            _ => Box::new(PhraseQuery::new_with_offset(terms)),
        }
    }
}

fn term(t: Term) -> BoxQuery {
    Box::new(TermQuery::new(t, IndexRecordOption::Basic))
}

fn text_term(field: Field, text: &str) -> BoxQuery {
    term(Term::from_field_text(field, text))
}

fn u64_term(field: Field, value: u64) -> BoxQuery {
    term(Term::from_field_u64(field, value))
}

fn union(mut queries: Vec<BoxQuery>) -> BoxQuery {
    if queries.len() == 1 {
        return queries.remove(0);
    }
    Box::new(BooleanQuery::union(queries))
}

fn not(query: BoxQuery) -> BoxQuery {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, query),
    ]))
}

/// `x != v` on a known field: the record has an `x` and it is not `v`.
/// `field != value`: the records that have the field, less those equal to the value.
fn not_equal(exists: BoxQuery, eq: BoxQuery) -> BoxQuery {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, exists),
        (Occur::MustNot, eq),
    ]))
}

/// The records having a value of the built-in field `name`: its fast column says, or, for a
/// keyword without one, its terms.
fn exists_query(fields: &Fields, name: &str) -> BoxQuery {
    match crate::json_terms::terms_only(&fields.schema, name) {
        Some(field) => Box::new(PathExists::any_term(field)),
        None => Box::new(ExistsQuery::new(name.to_string(), false)),
    }
}

/// A comparison on an ordered value. Equality on dates is a one-point range, since the inverted
/// index keeps dates at second precision while the fast field keeps nanoseconds.
/// `exists_field` names the fast field for `!=`.
fn ordered(op: Op, t: Term, exists_field: &str) -> BoxQuery {
    use Bound::{Excluded, Included, Unbounded};
    let (lower, upper) = match op {
        Op::Eq if t.typ() != Type::Date => return term(t),
        Op::Eq => (Included(t.clone()), Included(t)),
        Op::Ne => {
            let exists = Box::new(ExistsQuery::new(exists_field.to_string(), false));
            return not_equal(exists, ordered(Op::Eq, t, exists_field));
        }
        Op::Gt => (Excluded(t), Unbounded),
        Op::Ge => (Included(t), Unbounded),
        Op::Lt => (Unbounded, Excluded(t)),
        Op::Le => (Unbounded, Included(t)),
        // The parser never pairs `=~` with an ordered value.
        Op::Regex => return Box::new(EmptyQuery),
    };
    Box::new(RangeQuery::new(lower, upper))
}

fn regex(pattern: &str, field: Field) -> Result<BoxQuery, QueryError> {
    RegexQuery::from_pattern(pattern, field)
        .map(|q| Box::new(q) as BoxQuery)
        .map_err(|e| QueryError::Invalid(format!("invalid regex: {e}")))
}

/// Every character of `s` as a regex literal (`\x{..}` for anything not alphanumeric ASCII, which
/// covers the JSON path separators `\x01` and `\x00`).
fn escape_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:x}}}", c as u32));
        }
    }
    out
}
