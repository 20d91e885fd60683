//! Compiled queries against a tiny in-RAM index: which records each query finds.

use std::collections::BTreeSet;

use serde_json::json;
use tantivy::collector::DocSetCollector;
use tantivy::schema::{OwnedValue, Value as _};
use tantivy::{DateTime, Index, IndexWriter, TantivyDocument};

use super::{QueryError, parse, parse_and_compile};
use crate::field_catalog::Builtin;
use crate::schema::Fields;

const NOW: i64 = 1_750_000_000_000_000_000;
const MIN: i64 = 60_000_000_000;
const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Same low 64 bits as T1, another high half.
const T3: &str = "1111111111111111a3ce929d0e0e4736";

/// One record; `tag` is stored in `record` so a test can name what matched.
#[derive(Default)]
struct Rec {
    tag: &'static str,
    kind: &'static str,
    trace: Option<&'static str>,
    span_id: Option<&'static str>,
    parent: Option<&'static str>,
    service: Option<&'static str>,
    name: Option<&'static str>,
    status: Option<&'static str>,
    level: Option<u64>,
    ago_ns: i64,
    duration_ns: Option<i64>,
    body: &'static str,
    attributes: serde_json::Value,
    resource: serde_json::Value,
    events: serde_json::Value,
}

fn records() -> Vec<Rec> {
    let low = format!("{:032x}", u128::from_str_radix(T1, 16).unwrap() as u64);
    let low: &'static str = Box::leak(low.into_boxed_str());
    vec![
        Rec {
            tag: "pay-err",
            kind: "span",
            trace: Some(T1),
            span_id: Some("00f067aa0ba902b7"),
            parent: Some("53995c3f42cd8ad8"),
            service: Some("payment-service"),
            name: Some("stripe_api_call"),
            status: Some("ERROR"),
            ago_ns: 10 * MIN,
            duration_ns: Some(2_500_000_000),
            body: "stripe_api_call card declined",
            attributes: json!({"card": {"bin": 411111}, "payment.amount_cents": 25000,
                               "region": "eu-west-1", "http.status_code": 502}),
            resource: json!({"service.name": "payment-service", "region": "us-east-1"}),
            events: json!({"event.name": "exception", "exception.type": "StripeTimeout"}),
            ..Rec::default()
        },
        Rec {
            tag: "checkout-ok",
            kind: "span",
            trace: Some(T1),
            span_id: Some("53995c3f42cd8ad8"),
            service: Some("checkout"),
            name: Some("POST /checkout"),
            status: Some("OK"),
            ago_ns: 5 * MIN,
            duration_ns: Some(500_000_000),
            body: "POST /checkout",
            attributes: json!({"card.bin": "411111", "payment.amount_cents": 5000,
                               "http.status_code": 200, "user.id": "usr_456", "retry": true}),
            resource: json!({"region": "eu-west-1"}),
            ..Rec::default()
        },
        Rec {
            tag: "warn-reset",
            kind: "log",
            trace: Some(low),
            service: Some("payment-service"),
            level: Some(4),
            ago_ns: 60 * MIN,
            body: "connection reset by peer",
            attributes: json!({"decline_code": "do_not_honor", "order.id": "ord_789"}),
            ..Rec::default()
        },
        Rec {
            tag: "info",
            kind: "log",
            level: Some(3),
            ago_ns: MIN,
            body: "health check ok, connection pooled",
            attributes: json!({"card": {"bin": "999999"}, "temp": -2.5}),
            ..Rec::default()
        },
        Rec {
            tag: "error-other",
            kind: "log",
            trace: Some(T3),
            service: Some("gateway"),
            level: Some(5),
            ago_ns: 2 * MIN,
            body: "Connection reset",
            ..Rec::default()
        },
    ]
}

fn index() -> (Index, Fields) {
    let f = Fields::new();
    let index = Index::create_in_ram(f.schema.clone());
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
    for r in records() {
        let mut doc = TantivyDocument::new();
        doc.add_bytes(f.record, r.tag.as_bytes());
        doc.add_text(f.kind, r.kind);
        if let Some(id) = r.trace {
            doc.add_text(f.trace_id, id);
            doc.add_u64(f.trace_low64, u128::from_str_radix(id, 16).unwrap() as u64);
        }
        for (field, id) in [(f.span_id, r.span_id), (f.parent_span_id, r.parent)] {
            if let Some(id) = id {
                doc.add_u64(field, u64::from_str_radix(id, 16).unwrap());
            }
        }
        let texts = [
            (f.service, r.service),
            (f.name, r.name),
            (f.status, r.status),
        ];
        for (field, value) in texts {
            if let Some(value) = value {
                doc.add_text(field, value);
            }
        }
        if let Some(level) = r.level {
            doc.add_u64(f.level, level);
        }
        doc.add_date(f.timestamp, DateTime::from_timestamp_nanos(NOW - r.ago_ns));
        if let Some(d) = r.duration_ns {
            doc.add_i64(f.duration_ns, d);
        }
        doc.add_text(f.body, r.body);
        for (field, value) in [
            (f.attributes, r.attributes),
            (f.resource, r.resource),
            (f.events, r.events),
        ] {
            if !value.is_null() {
                doc.add_field_value(field, &OwnedValue::from(value));
            }
        }
        writer.add_document(doc).unwrap();
    }
    writer.commit().unwrap();
    (index, f)
}

fn search(index: &Index, f: &Fields, q: &str) -> BTreeSet<String> {
    let query = parse_and_compile(q, f, NOW).unwrap_or_else(|e| panic!("{q}: {e}"));
    let searcher = index.reader().unwrap().searcher();
    let hits = searcher
        .search(&*query, &DocSetCollector)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    hits.into_iter()
        .map(|addr| {
            let doc: TantivyDocument = searcher.doc(addr).unwrap();
            let tag = doc.get_first(f.record).and_then(|v| v.as_bytes()).unwrap();
            String::from_utf8(tag.to_vec()).unwrap()
        })
        .collect()
}

fn set(tags: &[&str]) -> BTreeSet<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

#[test]
fn queries_find_the_right_records() {
    let (index, f) = index();
    let all = [
        "pay-err",
        "checkout-ok",
        "warn-reset",
        "info",
        "error-other",
    ];
    let dd_decimal = (u128::from_str_radix(T1, 16).unwrap() as u64).to_string();
    let cases: Vec<(String, &[&str])> = vec![
        ("".into(), &all),
        ("   ".into(), &all),
        // Known fields.
        ("level >= warn".into(), &["warn-reset", "error-other"]),
        ("level < WARNING".into(), &["info"]),
        ("level = error".into(), &["error-other"]),
        ("severity != info".into(), &["warn-reset", "error-other"]),
        (
            "NOT level = info".into(),
            &["pay-err", "checkout-ok", "warn-reset", "error-other"],
        ),
        ("duration > 2s".into(), &["pay-err"]),
        ("duration <= 500ms".into(), &["checkout-ok"]),
        ("duration = 2.5s".into(), &["pay-err"]),
        (
            "timestamp > now() - 30m".into(),
            &["pay-err", "checkout-ok", "info", "error-other"],
        ),
        (
            "timestamp >= now() - 2m timestamp < now() + 1h".into(),
            &["info", "error-other"],
        ),
        (
            "timestamp > 2025-06-15T15:00:00Z".into(),
            &["checkout-ok", "info", "error-other"],
        ),
        ("timestamp > 2025-06-15T15:06:40Z".into(), &[]),
        ("timestamp = 2025-06-15T15:05:40Z".into(), &["info"]),
        ("timestamp = 2025-06-15T15:05:40.000000001Z".into(), &[]),
        ("kind = log".into(), &["warn-reset", "info", "error-other"]),
        (
            "kind != span".into(),
            &["warn-reset", "info", "error-other"],
        ),
        ("status = error".into(), &["pay-err"]),
        ("status != OK".into(), &["pay-err"]),
        (
            "service = payment-service".into(),
            &["pay-err", "warn-reset"],
        ),
        (
            "service.name != payment-service".into(),
            &["checkout-ok", "error-other"],
        ),
        ("name = \"POST /checkout\"".into(), &["checkout-ok"]),
        ("span_id = 00F067AA0BA902B7".into(), &["pay-err"]),
        (
            "exists(level)".into(),
            &["warn-reset", "info", "error-other"],
        ),
        (
            "exists(trace_id)".into(),
            &["pay-err", "checkout-ok", "warn-reset", "error-other"],
        ),
        // Trace ids: a full id also finds records that know only its low 64 bits.
        (
            format!("trace_id = {T1}"),
            &["pay-err", "checkout-ok", "warn-reset"],
        ),
        (
            format!("trace_id = {}", T1.to_uppercase()),
            &["pay-err", "checkout-ok", "warn-reset"],
        ),
        (
            format!("trace_id = {dd_decimal}"),
            &["pay-err", "checkout-ok", "warn-reset", "error-other"],
        ),
        (format!("trace_id != {T1}"), &["error-other"]),
        // Regexes match whole values.
        ("service =~ \"pay.*\"".into(), &["pay-err", "warn-reset"]),
        ("service =~ \"^pay\"".into(), &[]),
        ("service =~ \"(?i)GATE.*\"".into(), &["error-other"]),
        ("name =~ 'POST /.*'".into(), &["checkout-ok"]),
        ("region =~ \"eu-.*\"".into(), &["pay-err", "checkout-ok"]),
        ("attr.region =~ \"eu-.*\"".into(), &["pay-err"]),
        ("decline_code =~ \"do_.*_honor\"".into(), &["warn-reset"]),
        ("card.bin =~ \"4.*\"".into(), &["checkout-ok"]),
        (
            "body =~ \"conn.*\"".into(),
            &["warn-reset", "info", "error-other"],
        ),
        // Attributes: scopes.
        ("region = eu-west-1".into(), &["pay-err", "checkout-ok"]),
        ("attr.region = eu-west-1".into(), &["pay-err"]),
        ("resource.region = eu-west-1".into(), &["checkout-ok"]),
        ("resource.region = us-east-1".into(), &["pay-err"]),
        ("attributes.region = us-east-1".into(), &[]),
        (
            "resource.service.name = payment-service".into(),
            &["pay-err"],
        ),
        ("event.name = exception".into(), &["pay-err"]),
        ("events.exception.type = StripeTimeout".into(), &["pay-err"]),
        ("exception.type = StripeTimeout".into(), &["pay-err"]),
        ("attr.exception.type = StripeTimeout".into(), &[]),
        // Bare numbers match numbers and text; quoted values only text.
        ("card.bin = 411111".into(), &["pay-err", "checkout-ok"]),
        ("card.bin = \"411111\"".into(), &["checkout-ok"]),
        ("card.bin != 411111".into(), &["info"]),
        (
            "NOT card.bin = 411111".into(),
            &["warn-reset", "info", "error-other"],
        ),
        ("payment.amount_cents > 10000".into(), &["pay-err"]),
        ("payment.amount_cents <= 5000".into(), &["checkout-ok"]),
        ("payment.amount_cents >= 5000.5".into(), &["pay-err"]),
        ("http.status_code >= 500".into(), &["pay-err"]),
        ("temp < -1".into(), &["info"]),
        ("temp = -2.5".into(), &["info"]),
        ("retry = true".into(), &["checkout-ok"]),
        // exists() on attributes, nested paths included.
        ("exists(exception.type)".into(), &["pay-err"]),
        // Dots are expanded: `{"card.bin": ..}` and `{"card": {"bin": ..}}` are one path.
        ("exists(card)".into(), &["pay-err", "checkout-ok", "info"]),
        (
            "exists(card.bin)".into(),
            &["pay-err", "checkout-ok", "info"],
        ),
        (
            "exists(resource.region)".into(),
            &["pay-err", "checkout-ok"],
        ),
        ("exists(nope)".into(), &[]),
        // Full text on the body.
        (
            "\"connection reset\"".into(),
            &["warn-reset", "error-other"],
        ),
        ("connection".into(), &["warn-reset", "info", "error-other"]),
        ("body = \"reset connection\"".into(), &[]),
        (
            "message = \"CONNECTION RESET\"".into(),
            &["warn-reset", "error-other"],
        ),
        ("body != connection".into(), &["pay-err", "checkout-ok"]),
        ("stripe_api_call".into(), &["pay-err"]),
        ("\"!!!\"".into(), &[]),
        // Boolean structure.
        (
            "NOT level = info AND \"connection reset\"".into(),
            &["warn-reset", "error-other"],
        ),
        ("connection reset".into(), &["warn-reset", "error-other"]),
        ("connection NOT reset".into(), &["info"]),
        ("NOT connection NOT kind = span".into(), &[]),
        (
            "kind = span OR level = fatal".into(),
            &["pay-err", "checkout-ok"],
        ),
        (
            "(kind = span OR level >= error) NOT status = OK".into(),
            &["pay-err", "error-other"],
        ),
        // The design's examples.
        (
            "service.name = \"payment-service\" AND status = ERROR AND timestamp > now() - 30m"
                .into(),
            &["pay-err"],
        ),
        (
            "decline_code = \"do_not_honor\" AND kind = log".into(),
            &["warn-reset"],
        ),
        (
            "span.name = stripe_api_call AND duration > 2s".into(),
            &["pay-err"],
        ),
        (
            "user.id = usr_456 OR order.id = ord_789".into(),
            &["checkout-ok", "warn-reset"],
        ),
        (
            "http.status_code >= 500 AND exists(exception.type)".into(),
            &["pay-err"],
        ),
        // Trace-level: every record of a trace having a match (a record known by the low 64
        // bits of its trace id belongs to every full id with those bits, as in trace_id = X).
        (
            "trace(status = error)".into(),
            &["pay-err", "checkout-ok", "warn-reset"],
        ),
        (
            "trace(level = error)".into(),
            &["warn-reset", "error-other"],
        ),
        (
            "trace(status = error) AND kind = log".into(),
            &["warn-reset"],
        ),
        ("NOT trace(status = error)".into(), &["info", "error-other"]),
        (
            "trace(service = payment-service AND kind = span) AND trace(user.id = usr_456) \
             AND kind = span"
                .into(),
            &["pay-err", "checkout-ok"],
        ),
        (
            "trace(status = error) AND trace(service = nobody)".into(),
            &[],
        ),
        (
            "trace(trace(level = error)) AND kind = log".into(),
            &["warn-reset", "error-other"],
        ),
        // Structure: spans matching the right side whose parent matches the left.
        (
            "(name = \"POST /checkout\") > (service = payment-service)".into(),
            &["pay-err"],
        ),
        (
            "(service = payment-service) > (name = \"POST /checkout\")".into(),
            &[],
        ),
        ("(status = ok) > status = error".into(), &["pay-err"]),
        ("(kind = span) > (kind = span) > (kind = span)".into(), &[]),
        (
            "NOT (status = ok) > (status = error)".into(),
            &["checkout-ok", "warn-reset", "info", "error-other"],
        ),
        (
            "trace((status = ok) > (status = error))".into(),
            &["pay-err", "checkout-ok", "warn-reset"],
        ),
    ];
    let mut failures = Vec::new();
    for (q, want) in &cases {
        let got = search(&index, &f, q);
        if got != set(want) {
            failures.push(format!("{q:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn printed_queries_compile_to_the_same_results() {
    let (index, f) = index();
    for q in [
        "card.bin = 411111 OR NOT (level >= warn connection)",
        "timestamp > now() - 30m region =~ 'eu-.*'",
        "event.name = exception",
        "trace(status = error OR level >= warn) AND NOT trace(kind = log)",
        "(name = \"POST /checkout\") > (service = payment-service) > status = ok",
        "NOT (status = ok) > (status = error OR level = warn) AND trace(kind = span)",
    ] {
        let printed = parse(q).unwrap().to_string();
        assert_eq!(
            search(&index, &f, q),
            search(&index, &f, &printed),
            "{q} → {printed}"
        );
    }
}

#[test]
fn compile_rejects_ill_typed_expressions() {
    use super::{Comparison, Expr, FieldRef, Op, Value, compile};
    let f = Fields::new();
    let bad = Expr::Compare(Comparison {
        field: FieldRef::Builtin(Builtin::Level),
        op: Op::Eq,
        value: Value::Str("x".into()),
    });
    let err = compile(&bad, &f, NOW).err().unwrap();
    assert_eq!(
        err,
        QueryError::Invalid("cannot compile `level = \"x\"`".into())
    );
    assert_eq!(err.column(), None);
}

/// Trace-level predicates read the index they run on: a bare schema cannot run them, and a
/// predicate over its bounds is refused with a message, never an unbounded allocation.
#[test]
fn trace_level_predicates_need_a_searcher() {
    use tantivy::query::{EnableScoring, Query as _};
    let f = Fields::new();
    let query = parse_and_compile("trace(status = error)", &f, NOW).unwrap();
    let err = query
        .weight(EnableScoring::disabled_from_schema(&f.schema))
        .err()
        .unwrap();
    assert!(err.to_string().contains("need a searcher"), "{err}");
}
