//! Analysis of a 10,000-span trace (issue 10: at most 20 ms): a checkout-shaped tree of 2,000
//! requests-worth of calls, with N+1 loops, errors and a slow query, and no index at hand.

use analysis::{NoIndex, Options, Span, TraceData, analyze};
use criterion::{Criterion, criterion_group, criterion_main};
use model::{SpanId, SpanKind, TraceId};

const MS: i64 = 1_000_000;

/// A root with 500 order handlers, each with a reserve call holding 18 queries (some an N+1
/// run): 1 + 500 × 20 = 10,001 spans.
fn trace() -> TraceData {
    let mut spans = Vec::with_capacity(10_000);
    let mut next = 1u64;
    let mut id = || {
        let v = next;
        next += 1;
        SpanId::from_u64(v)
    };
    let root = id();
    spans.push(Span {
        span_id: root,
        service: "api-gateway".into(),
        name: "POST /batch".into(),
        kind: SpanKind::Server,
        start_ns: 0,
        duration_ns: 10_000 * MS,
        ..Span::default()
    });
    for h in 0..500i64 {
        let handler = id();
        let t = h * 20 * MS;
        spans.push(Span {
            span_id: handler,
            parent_span_id: root,
            service: "order-service".into(),
            name: "process_order".into(),
            kind: SpanKind::Internal,
            start_ns: t,
            duration_ns: 19 * MS,
            error: (h % 97 == 0).then(|| "boom".into()),
            ..Span::default()
        });
        let reserve = id();
        spans.push(Span {
            span_id: reserve,
            parent_span_id: handler,
            service: "order-service".into(),
            name: "POST /reserve".into(),
            kind: SpanKind::Client,
            start_ns: t + MS,
            duration_ns: 17 * MS,
            peer: vec!["inventory-service".into()],
            ..Span::default()
        });
        for q in 0..18i64 {
            spans.push(Span {
                span_id: id(),
                parent_span_id: reserve,
                service: "inventory-service".into(),
                name: "select stock".into(),
                kind: SpanKind::Client,
                start_ns: t + MS + q * (MS * 9 / 10),
                duration_ns: if h == 250 && q == 3 { 5 * MS } else { MS / 2 },
                db_system: Some("postgresql".into()),
                db_statement: Some(if h % 2 == 0 {
                    "SELECT * FROM stock WHERE sku = $1".into()
                } else {
                    format!("SELECT * FROM stock_{q}")
                }),
                ..Span::default()
            });
        }
    }
    TraceData {
        trace_id: TraceId::from_u128(7),
        spans,
        ..TraceData::default()
    }
}

fn bench(c: &mut Criterion) {
    let trace = trace();
    assert_eq!(trace.spans.len(), 10_001);
    c.bench_function("analyze 10,000-span trace", |b| {
        b.iter(|| analyze(&trace, &NoIndex, &Options::default()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
