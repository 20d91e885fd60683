//! Parser tests: precedence, quoting, values, errors with their columns, limits, printing.

use model::{Level, SpanId, StatusCode, TraceRef};

use super::value::{parse_duration, strip_anchors};
use super::{
    AttrPath, AttrScope, Comparison, Expr, FieldRef, Limits, NumValue, Number, Op, RecordKind,
    Time, Value, parse,
};
use crate::field_catalog::Builtin;

fn attribute(scope: AttrScope, path: &str) -> FieldRef {
    FieldRef::Attribute(AttrPath {
        scope,
        path: path.to_string(),
    })
}

fn p(s: &str) -> String {
    parse(s)
        .map(|e| e.to_string())
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> String {
    parse(s).expect_err(s).to_string()
}

#[test]
fn precedence_and_juxtaposition() {
    assert_eq!(p("a b OR c"), r#""a" AND "b" OR "c""#);
    assert_eq!(
        parse("a b OR c").unwrap(),
        Expr::Or(vec![
            Expr::And(vec![Expr::Text("a".into()), Expr::Text("b".into())]),
            Expr::Text("c".into())
        ])
    );
    assert_eq!(p("a OR b c"), r#""a" OR "b" AND "c""#);
    assert_eq!(p("(a OR b) c"), r#"("a" OR "b") AND "c""#);
    assert_eq!(p("not a and b"), r#"NOT "a" AND "b""#);
    assert_eq!(p("NOT (a b)"), r#"NOT ("a" AND "b")"#);
    assert_eq!(p("NOT NOT a"), r#"NOT NOT "a""#);
    assert_eq!(
        parse(r#"NOT level = info AND "connection reset""#).unwrap(),
        Expr::And(vec![
            Expr::Not(Box::new(Expr::Compare(Comparison {
                field: FieldRef::Builtin(Builtin::Level),
                op: Op::Eq,
                value: Value::Level(Level::Info),
            }))),
            Expr::Text("connection reset".into()),
        ])
    );
    assert_eq!(parse("   ").unwrap(), Expr::All);
}

#[test]
fn design_examples_parse_and_print_back() {
    for (q, printed) in [
        (
            r#"service.name = "payment-service" AND status = ERROR AND timestamp > now() - 30m"#,
            r#"service = "payment-service" AND status = ERROR AND timestamp > now() - 30m"#,
        ),
        (
            r#"decline_code = "do_not_honor" AND kind = log"#,
            r#"decline_code = "do_not_honor" AND kind = log"#,
        ),
        (
            "span.name = stripe_api_call AND duration > 2s",
            r#"name = "stripe_api_call" AND duration > 2s"#,
        ),
        (
            "user.id = usr_456 OR order.id = ord_789",
            r#"user.id = "usr_456" OR order.id = "ord_789""#,
        ),
        (
            r#"NOT level = info AND "connection reset""#,
            r#"NOT level = info AND "connection reset""#,
        ),
        (
            "http.status_code >= 500 AND exists(exception.type)",
            "http.status_code >= 500 AND exists(exception.type)",
        ),
    ] {
        assert_eq!(p(q), printed);
        assert_eq!(parse(printed).unwrap(), parse(q).unwrap(), "{printed}");
    }
}

#[test]
fn fields_and_scopes() {
    let field = |q: &str| match parse(q).unwrap() {
        Expr::Compare(c) => c.field,
        Expr::Exists(f) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!(field("severity = warn"), FieldRef::Builtin(Builtin::Level));
    assert_eq!(field("message = x"), FieldRef::Builtin(Builtin::Body));
    assert_eq!(field("service = x"), FieldRef::Builtin(Builtin::Service));
    assert_eq!(
        field("attr.region = x"),
        attribute(AttrScope::Attributes, "region")
    );
    assert_eq!(
        field("attributes.a.b = x"),
        attribute(AttrScope::Attributes, "a.b")
    );
    assert_eq!(
        field("resource.region = x"),
        attribute(AttrScope::Resource, "region")
    );
    assert_eq!(
        field("resource.service.name = x"),
        attribute(AttrScope::Resource, "service.name")
    );
    assert_eq!(
        field("event.exception.type = x"),
        attribute(AttrScope::Events, "exception.type")
    );
    assert_eq!(
        field("events.exception.type = x"),
        attribute(AttrScope::Events, "exception.type")
    );
    assert_eq!(
        field("event.name = exception"),
        attribute(AttrScope::Events, "event.name")
    );
    assert_eq!(field("region = x"), attribute(AttrScope::Any, "region"));
    assert_eq!(
        field("exists(card.bin)"),
        attribute(AttrScope::Any, "card.bin")
    );
    assert_eq!(p("attr.region = eu"), r#"attr.region = "eu""#);
    assert_eq!(
        p("event.name = exception"),
        r#"events.event.name = "exception""#
    );
    assert_eq!(
        parse(&p("event.name = exception")).unwrap(),
        parse("event.name = exception").unwrap()
    );
}

#[test]
fn values() {
    let value = |q: &str| match parse(q).unwrap() {
        Expr::Compare(c) => c.value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value("level >= WARNING"), Value::Level(Level::Warn));
    assert_eq!(value("status = error"), Value::Status(StatusCode::Error));
    assert_eq!(value("kind = SPAN"), Value::Kind(RecordKind::Span));
    assert_eq!(
        value("card.bin = 411111"),
        Value::Number(Number {
            text: "411111".into(),
            value: NumValue::I64(411111)
        })
    );
    assert_eq!(value("card.bin = \"411111\""), Value::Str("411111".into()));
    assert_eq!(
        value("x = 1.5"),
        Value::Number(Number {
            text: "1.5".into(),
            value: NumValue::F64(1.5)
        })
    );
    assert_eq!(
        value("x = 2.0"),
        Value::Number(Number {
            text: "2.0".into(),
            value: NumValue::I64(2)
        })
    );
    assert_eq!(
        value("x = -3"),
        Value::Number(Number {
            text: "-3".into(),
            value: NumValue::I64(-3)
        })
    );
    assert_eq!(
        value("x = 18446744073709551615"),
        Value::Number(Number {
            text: "18446744073709551615".into(),
            value: NumValue::U64(u64::MAX)
        })
    );
    assert_eq!(value("x = true"), Value::Bool(true));
    assert_eq!(value("x = 1.2.3"), Value::Str("1.2.3".into()));
    assert_eq!(value("x = 5m"), Value::Str("5m".into()));
    assert_eq!(value("service = 42"), Value::Str("42".into()));
    assert_eq!(value("name = 'it\\'s'"), Value::Str("it's".into()));
    assert_eq!(
        value("trace_id = 4BF92F3577B34DA6A3CE929D0E0E4736"),
        Value::TraceRef(TraceRef::parse_any("4bf92f3577b34da6a3ce929d0e0e4736").unwrap())
    );
    assert_eq!(
        value("trace_id = 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        Value::TraceRef(TraceRef::parse_any("4bf92f3577b34da6a3ce929d0e0e4736").unwrap())
    );
    assert!(matches!(
        value("trace_id = 12345"),
        Value::TraceRef(TraceRef::Low64(_))
    ));
    assert_eq!(
        value("span_id = 00F067AA0BA902B7"),
        Value::SpanId(SpanId::parse_any("00f067aa0ba902b7").unwrap())
    );
    assert_eq!(p("trace_id = 12345"), "trace_id = 12345");
    assert_eq!(
        p("parent_span_id = 00F067AA0BA902B7"),
        "parent_span_id = 00f067aa0ba902b7"
    );
}

#[test]
fn durations() {
    for (text, ns) in [
        ("430ms", 430_000_000),
        ("2s", 2_000_000_000),
        ("5m", 300_000_000_000),
        ("1h", 3_600_000_000_000),
        ("1.5s", 1_500_000_000),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("100ns", 100),
        ("1d", 86_400_000_000_000),
        ("0", 0),
        ("0.25ms", 250_000),
    ] {
        assert_eq!(parse_duration(text), Ok(ns), "{text}");
    }
    assert_eq!(p("duration > 1500ms"), "duration > 1500ms");
    assert_eq!(p("duration > 1.5s"), "duration > 1500ms");
    assert_eq!(p("duration >= 60s"), "duration >= 1m");
    assert_eq!(
        err("duration > 500"),
        r#"a duration needs a unit (ns, us, ms, s, m, h, d), got "500" at column 12"#
    );
    assert_eq!(
        err("duration > 2x"),
        r#"invalid duration "2x": expected a number and a unit (ns, us, ms, s, m, h, d) at column 12"#
    );
    assert_eq!(
        err("duration > 1.s"),
        r#"invalid duration "1.s": expected a number and a unit (ns, us, ms, s, m, h, d) at column 12"#
    );
    assert_eq!(
        err("duration > 999999999d"),
        r#"duration "999999999d" is out of range at column 12"#
    );
}

#[test]
fn times_and_now() {
    let time = |q: &str| match parse(q).unwrap() {
        Expr::Compare(Comparison {
            value: Value::Time(t),
            ..
        }) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(time("timestamp > now()"), Time::Now { offset_ns: 0 });
    assert_eq!(
        time("timestamp > now() - 30m"),
        Time::Now {
            offset_ns: -1_800_000_000_000
        }
    );
    assert_eq!(
        time("timestamp > now()-30m"),
        Time::Now {
            offset_ns: -1_800_000_000_000
        }
    );
    assert_eq!(
        time("timestamp < now() + 1h"),
        Time::Now {
            offset_ns: 3_600_000_000_000
        }
    );
    assert_eq!(
        time("timestamp < NOW()+1.5s"),
        Time::Now {
            offset_ns: 1_500_000_000
        }
    );
    assert_eq!(
        time("timestamp >= 1970-01-01T00:00:01.5Z"),
        Time::Absolute(1_500_000_000)
    );
    assert_eq!(
        time("timestamp >= 1970-01-01T02:00:01+02:00"),
        Time::Absolute(1_000_000_000)
    );
    assert_eq!(
        time("timestamp >= \"1970-01-01T00:00:01Z\""),
        Time::Absolute(1_000_000_000)
    );
    assert_eq!(p("timestamp > now() - 30m"), "timestamp > now() - 30m");
    assert_eq!(p("timestamp > now() + 90s"), "timestamp > now() + 90s");
    assert_eq!(
        p("timestamp > 2024-06-01T12:00:00.25+00:00"),
        "timestamp > 2024-06-01T12:00:00.25Z"
    );
    assert_eq!(
        p("timestamp > now() - 30m a"),
        r#"timestamp > now() - 30m AND "a""#
    );
    assert_eq!(
        err("timestamp > yesterday"),
        r#"invalid time "yesterday": expected RFC 3339 (2024-06-01T12:00:00Z) or now() - 30m at column 13"#
    );
    assert_eq!(
        err("timestamp > now() -"),
        "expected a duration after 'now() -' at column 20"
    );
    assert_eq!(
        err("timestamp > now( x"),
        "expected ')' after 'now(' at column 18"
    );
    assert_eq!(
        err("duration > now()"),
        "now() applies only to timestamp, not to duration at column 12"
    );
}

#[test]
fn regexes() {
    assert_eq!(p("service =~ \"pay.*\""), "service =~ \"pay.*\"");
    assert_eq!(p("service =~ pay-.-"), "service =~ \"pay-.-\"");
    // Regex metacharacters are not word characters: quote the pattern.
    assert_eq!(
        err("service =~ pay.*"),
        "unexpected character '*' at column 16"
    );
    assert!(parse(r#"x =~ "^(?i)err\d+$""#).is_ok());
    assert_eq!(
        err(r#"service =~ "a(b""#),
        r#"invalid regex "a(b": unclosed group at column 12"#
    );
    assert_eq!(
        err(r#"service =~ "a.*?b""#),
        r#"invalid regex "a.*?b": lazy repetition (*?, +?, ??) is not supported at column 12"#
    );
    let long = format!("x =~ \"{}\"", "a".repeat(1001));
    assert_eq!(
        err(&long),
        "regex is too long (1001 characters; the limit is 1000) at column 6"
    );
    assert_eq!(strip_anchors("^a$"), "a");
    assert_eq!(strip_anchors(r"a\$"), r"a\$");
    assert_eq!(strip_anchors(r"a\\$"), r"a\\");
}

#[test]
fn errors_name_what_was_expected() {
    assert_eq!(
        err("service.name = "),
        "expected a value after '=' at column 16"
    );
    assert_eq!(
        err("decline_code = AND x"),
        "expected a value after '=' at column 16"
    );
    assert_eq!(
        err("decline_code = )"),
        "expected a value after '=' at column 16"
    );
    assert_eq!(
        err("status = bad"),
        r#"status must be OK, ERROR or UNSET, got "bad" at column 10"#
    );
    assert_eq!(
        err("level >= loud"),
        r#"level must be trace, debug, info, warn, error or fatal, got "loud" at column 10"#
    );
    assert_eq!(
        err("kind = trace"),
        r#"kind must be span or log, got "trace" at column 8"#
    );
    assert_eq!(
        err("trace_id = xyz"),
        r#"invalid trace id "xyz": unrecognised id format at column 12"#
    );
    assert_eq!(
        err("span_id = 0"),
        r#"invalid span id "0": all-zero id is not a valid id at column 11"#
    );
    assert_eq!(
        err("status > OK"),
        "status does not support '>' (it supports = and !=) at column 8"
    );
    assert_eq!(
        err("level =~ warn"),
        "level does not support '=~' (it supports = != > >= < <=) at column 7"
    );
    assert_eq!(
        err("a AND"),
        "expected an expression after 'AND' at column 6"
    );
    assert_eq!(
        err("a OR OR b"),
        "expected an expression after 'OR', got 'OR' at column 6"
    );
    assert_eq!(err("NOT"), "expected an expression after 'NOT' at column 4");
    assert_eq!(err("(a OR b"), "expected ')' to close '(' at column 8");
    assert_eq!(err("a)"), "unmatched ')' at column 2");
    assert_eq!(
        err("()"),
        "expected an expression after '(', got ')' at column 2"
    );
    assert_eq!(err("= 5"), "expected an expression, got '=' at column 1");
    assert_eq!(
        err("a = 1 = 2"),
        "unexpected '=': expected a field name before it at column 7"
    );
    assert_eq!(
        err("\"a\" = 1"),
        "expected a field name before '=', got a string at column 1"
    );
    assert_eq!(
        err("exists(body)"),
        "exists() does not apply to body (every record has one) at column 8"
    );
    assert_eq!(
        err("exists(a"),
        "expected ')' after the field name at column 9"
    );
    assert_eq!(
        err("exists()"),
        "expected a field name after 'exists(' at column 8"
    );
    assert_eq!(
        err("attr. = x"),
        r#"invalid attribute name "attr." at column 1"#
    );
    // Columns count characters, not bytes.
    assert_eq!(err("é = )"), "expected a value after '=' at column 5");
}

#[test]
fn limits() {
    let limits = Limits {
        max_clauses: 3,
        max_depth: 2,
        ..Limits::default()
    };
    assert!(crate::query::parse_with_limits("a b c", &limits).is_ok());
    assert_eq!(
        crate::query::parse_with_limits("a b c d", &limits)
            .unwrap_err()
            .to_string(),
        "too many clauses (the limit is 3) at column 7"
    );
    assert!(crate::query::parse_with_limits("((a))", &limits).is_ok());
    assert_eq!(
        crate::query::parse_with_limits("((NOT a))", &limits)
            .unwrap_err()
            .to_string(),
        "query is nested too deeply (the limit is 2) at column 3"
    );
    let long = "a ".repeat(6000);
    assert_eq!(
        parse(&long).unwrap_err().to_string(),
        "query is too long (12000 characters; the limit is 10000) at column 10001"
    );
    let many = vec!["a"; 65].join(" ");
    assert_eq!(
        parse(&many).unwrap_err().to_string(),
        "too many clauses (the limit is 64) at column 129"
    );
    assert_eq!(parse(&vec!["a"; 64].join(" ")).unwrap().clause_count(), 64);
    let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
    assert!(parse(&deep).is_err());
}

#[test]
fn display_round_trips() {
    for q in [
        r#"a = "x\"y\\z\n" OR NOT (b != 1 c >= 2.5) AND exists(resource.host.name)"#,
        "level >= warn trace_id = 4bf92f3577b34da6a3ce929d0e0e4736 span_id = 00f067aa0ba902b7",
        "(a OR b) (c OR (d e))",
        "x = true y = false z = -0.5 w = 1e3",
        "timestamp >= 2024-06-01T12:00:00Z timestamp < now() duration <= 0",
        "body =~ \"conn.*\" body != \"reset by peer\" name =~ '\\d+'",
    ] {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let printed = e.to_string();
        assert_eq!(parse(&printed).unwrap(), e, "{q} → {printed}");
    }
}

#[test]
fn in_lists_are_ors_of_equalities() {
    assert_eq!(
        p("decline_code IN (do_not_honor, \"card_declined\", 7)"),
        p("decline_code = do_not_honor OR decline_code = \"card_declined\" OR decline_code = 7")
    );
    assert_eq!(p("status in (error)"), p("status = ERROR"));
    assert_eq!(
        p("service IN (a, b) AND level >= warn"),
        p("(service = a OR service = b) AND level >= warn")
    );
    assert_eq!(
        err("status IN ()"),
        "expected a value in 'IN (' at column 12"
    );
    assert_eq!(
        err("status IN (error"),
        "expected ',' or ')' in 'IN (...)' at column 17"
    );
    assert_eq!(
        err("status IN (error, loud)"),
        r#"status must be OK, ERROR or UNSET, got "loud" at column 19"#
    );
    // Each value is a clause: the clause limit holds.
    let many = (0..70)
        .map(|i| format!("v{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(err(&format!("x IN ({many})")).contains("too many clauses"));
    // `*` is not a word character: no glob, the regex says it.
    assert!(
        err("service = pay*").contains("column 14"),
        "{}",
        err("service = pay*")
    );
}

#[test]
fn trace_level_predicates_parse_and_print_back() {
    for (q, printed) in [
        ("trace(status = error)", "trace(status = ERROR)"),
        (
            "TRACE(a = 1 OR b = 2) trace(c = 3)",
            "trace(a = 1 OR b = 2) AND trace(c = 3)",
        ),
        ("(a = 1) > (b = 2)", "(a = 1) > (b = 2)"),
        ("(a = 1) > b = 2 > (c = 3)", "(a = 1) > (b = 2) > (c = 3)"),
        ("NOT (a = 1) > (b = 2)", "NOT (a = 1) > (b = 2)"),
        ("trace(a = 1) > exists(b)", "trace(a = 1) > exists(b)"),
        ("x IN (1, 2) > (b = 2)", "(x = 1 OR x = 2) > (b = 2)"),
        // Not trace-level: a comparison, a word, an attribute named trace.
        ("duration > 2s", "duration > 2s"),
        ("trace", "\"trace\""),
        ("trace = x", "trace = \"x\""),
    ] {
        let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(expr.to_string(), printed, "{q}");
        assert_eq!(parse(printed).unwrap(), expr, "{printed}");
    }
}

#[test]
fn trace_level_errors_point_at_the_problem() {
    assert_eq!(
        err("trace()"),
        "expected an expression after 'trace(', got ')' at column 7"
    );
    assert_eq!(
        err("trace(a = 1"),
        "expected ')' to close 'trace(' at column 12"
    );
    assert_eq!(
        err("(a = 1) >"),
        "expected an expression after '>' at column 10"
    );
    assert_eq!(
        err("(a = 1) >> (b = 2)"),
        "'>>' (descendant) is not supported: '>' links a span to its parent, so chain it: \
         (A) > (B) > (C) at column 9"
    );
    // `a > b` without parentheses is a comparison that needs a number.
    assert!(err("a = 1 > (b = 2)").contains("column"));
    let nine = ["trace(a = 1)"; 9].join(" AND ");
    assert_eq!(
        err(&nine),
        "too many trace-level predicates at 'trace(' (trace(...) and '>' count; the limit is 8) \
         at column 137"
    );
    let chain = (0..10)
        .map(|i| format!("(a = {i})"))
        .collect::<Vec<_>>()
        .join(" > ");
    assert!(err(&chain).starts_with("too many trace-level predicates at '>'"));
}
