//! Decode throughput per input format, in bytes per second, over a few MB of generated lines.
//!
//! `cargo bench -p decode --bench decode -- json_log` runs one group member. The inputs are
//! generated in setup from a fixed seed, so runs compare.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use decode::{Decoder, DecoderConfig, Output};

/// Each input is generated up to about this size.
const INPUT_BYTES: usize = 2 << 20;

const SERVICES: [&str; 5] = [
    "checkout",
    "payment-service",
    "cart",
    "inventory",
    "frontend",
];
const LEVELS: [&str; 5] = ["INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const MESSAGES: [&str; 6] = [
    "Checkout started for order",
    "Charging card",
    "Stripe API call timed out after 2000 ms",
    "cart updated",
    "reserved stock for \\\"sku_12\\\"",
    "GET /api/cart 200",
];
const PATHS: [&str; 4] = ["/checkout", "/api/cart", "/api/inventory/sku_1", "/healthz"];

fn decode_benches(c: &mut Criterion) {
    let decoder = Decoder::new(DecoderConfig {
        service: Some("bench".into()),
        ..DecoderConfig::default()
    })
    .expect("default config");
    let inputs: [(&str, LineFn); 7] = [
        ("otlp_json_spans", otlp_span_line),
        ("otlp_json_logs", otlp_log_line),
        ("zipkin", zipkin_line),
        ("jaeger", jaeger_line),
        ("json_log_flat", flat_json_line),
        ("json_log_ecs_nested", ecs_json_line),
        ("text", text_line),
    ];
    let mut group = c.benchmark_group("decode");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, line) in inputs {
        let input = generate(line);
        group.throughput(Throughput::Bytes(input.len() as u64));
        let mut out = Output::default();
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                decoder.decode_all(black_box(input.as_bytes()), "bench.log", 1, &mut out);
                black_box(out.records.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode_benches);
criterion_main!(benches);

/// Writes one line of a format.
type LineFn = fn(&mut Gen) -> String;

/// A small deterministic generator (xorshift64*), so the inputs need no extra dependency.
struct Gen(u64);

fn generate(line: LineFn) -> String {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut input = String::with_capacity(INPUT_BYTES + 4096);
    while input.len() < INPUT_BYTES {
        input.push_str(&line(&mut g));
        input.push('\n');
    }
    input
}

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn trace_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.next() | 1, self.next())
    }

    fn span_id(&mut self) -> String {
        format!("{:016x}", self.next() | 1)
    }

    /// Nanoseconds in May 2024.
    fn time_ns(&mut self) -> u64 {
        1_714_564_800_000_000_000 + self.below(86_400_000_000_000)
    }

    fn rfc3339(&mut self) -> String {
        let ms = self.time_ns() / 1_000_000;
        let (s, ms) = (ms / 1000, ms % 1000);
        let (day, rem) = (s / 86_400 - 19_844, s % 86_400);
        format!(
            "2024-05-{:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            1 + day % 28,
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

fn otlp_span_line(g: &mut Gen) -> String {
    let trace = g.trace_id();
    let mut spans = String::new();
    for i in 0..5 {
        let start = g.time_ns();
        if i > 0 {
            spans.push(',');
        }
        let _ = write!(
            spans,
            r#"{{"traceId":"{trace}","spanId":"{}","parentSpanId":"{}","name":"{} {}","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{}","attributes":[{{"key":"http.request.method","value":{{"stringValue":"POST"}}}},{{"key":"http.response.status_code","value":{{"intValue":"200"}}}},{{"key":"user.id","value":{{"stringValue":"usr_{}"}}}}],"status":{{"code":{}}}}}"#,
            g.span_id(),
            g.span_id(),
            g.pick(&["POST", "GET"]),
            g.pick(&PATHS),
            start + g.below(2_000_000_000),
            g.below(1000),
            g.below(3),
        );
    }
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{}"}}}},{{"key":"service.version","value":{{"stringValue":"1.4.2"}}}}]}},"scopeSpans":[{{"scope":{{"name":"io.opentelemetry.http","version":"1.0"}},"spans":[{spans}]}}]}}]}}"#,
        g.pick(&SERVICES)
    )
}

fn otlp_log_line(g: &mut Gen) -> String {
    let mut records = String::new();
    for i in 0..5 {
        if i > 0 {
            records.push(',');
        }
        let _ = write!(
            records,
            r#"{{"timeUnixNano":"{}","severityNumber":{},"severityText":"{}","body":{{"stringValue":"{} {}"}},"attributes":[{{"key":"order.id","value":{{"stringValue":"ord_{}"}}}}],"traceId":"{}","spanId":"{}"}}"#,
            g.time_ns(),
            [9, 9, 5, 13, 17][g.below(5) as usize],
            g.pick(&LEVELS),
            g.pick(&MESSAGES),
            g.below(10_000),
            g.below(10_000),
            g.trace_id(),
            g.span_id(),
        );
    }
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{}"}}}}]}},"scopeLogs":[{{"scope":{{"name":"app"}},"logRecords":[{records}]}}]}}]}}"#,
        g.pick(&SERVICES)
    )
}

fn zipkin_line(g: &mut Gen) -> String {
    let trace = g.trace_id();
    let mut spans = Vec::new();
    for _ in 0..4 {
        spans.push(format!(
            r#"{{"traceId":"{trace}","id":"{}","parentId":"{}","kind":"SERVER","name":"{} {}","timestamp":{},"duration":{},"localEndpoint":{{"serviceName":"{}","ipv4":"10.0.0.{}"}},"tags":{{"http.method":"POST","http.path":"{}","http.status_code":"200"}}}}"#,
            g.span_id(),
            g.span_id(),
            g.pick(&["post", "get"]),
            g.pick(&PATHS),
            g.time_ns() / 1000,
            g.below(2_000_000),
            g.pick(&SERVICES),
            g.below(255),
            g.pick(&PATHS),
        ));
    }
    format!("[{}]", spans.join(","))
}

fn jaeger_line(g: &mut Gen) -> String {
    let trace = g.trace_id();
    let mut spans = Vec::new();
    for _ in 0..4 {
        spans.push(format!(
            r#"{{"traceID":"{trace}","spanID":"{}","operationName":"{}","references":[{{"refType":"CHILD_OF","traceID":"{trace}","spanID":"{}"}}],"startTime":{},"duration":{},"tags":[{{"key":"span.kind","type":"string","value":"server"}},{{"key":"http.status_code","type":"int64","value":200}}],"logs":[],"processID":"p1"}}"#,
            g.span_id(),
            g.pick(&PATHS),
            g.span_id(),
            g.time_ns() / 1000,
            g.below(2_000_000),
        ));
    }
    format!(
        r#"{{"traceID":"{trace}","spans":[{}],"processes":{{"p1":{{"serviceName":"{}","tags":[{{"key":"hostname","type":"string","value":"web-1"}}]}}}}}}"#,
        spans.join(","),
        g.pick(&SERVICES)
    )
}

/// Go slog / logback / pino-style flat lines.
fn flat_json_line(g: &mut Gen) -> String {
    match g.below(3) {
        0 => format!(
            r#"{{"time":"{}","level":"{}","msg":"{}","method":"POST","path":"{}","status":{},"duration_ms":{}.{},"trace_id":"{}","span_id":"{}","service":"{}"}}"#,
            g.rfc3339(),
            g.pick(&LEVELS),
            g.pick(&MESSAGES),
            g.pick(&PATHS),
            g.pick(&[200, 201, 404, 500]),
            g.below(2000),
            g.below(10),
            g.trace_id(),
            g.span_id(),
            g.pick(&SERVICES),
        ),
        1 => format!(
            r#"{{"@timestamp":"{}","@version":"1","message":"{} ord_{}","logger_name":"com.example.payment.PaymentService","thread_name":"http-nio-8080-exec-{}","level":"{}","level_value":20000,"traceId":"{}","spanId":"{}","application":"{}"}}"#,
            g.rfc3339(),
            g.pick(&MESSAGES),
            g.below(100_000),
            g.below(20),
            g.pick(&LEVELS),
            g.trace_id(),
            g.span_id(),
            g.pick(&SERVICES),
        ),
        _ => format!(
            r#"{{"level":{},"time":{},"pid":4242,"hostname":"web-7f9c","name":"{}","msg":"{}","trace_id":"{}","span_id":"{}","trace_flags":"01","responseTime":{}}}"#,
            g.pick(&[20, 30, 30, 40, 50]),
            g.time_ns() / 1_000_000,
            g.pick(&SERVICES),
            g.pick(&MESSAGES),
            g.trace_id(),
            g.span_id(),
            g.below(500),
        ),
    }
}

/// Elastic Common Schema lines with nested objects.
fn ecs_json_line(g: &mut Gen) -> String {
    format!(
        r#"{{"@timestamp":"{}","log":{{"level":"{}","logger":"com.example.checkout.CheckoutController"}},"message":"{}","ecs":{{"version":"1.6.0"}},"service":{{"name":"{}","version":"2.4.1","environment":"production"}},"event":{{"dataset":"checkout.log"}},"process":{{"thread":{{"name":"http-nio-8080-exec-{}"}}}},"trace":{{"id":"{}"}},"transaction":{{"id":"{}"}},"span":{{"id":"{}"}},"http":{{"request":{{"method":"POST"}},"response":{{"status_code":{}}}}},"url":{{"path":"{}"}},"user":{{"id":"usr_{}"}},"order":{{"id":"ord_{}","amount_cents":{}}}}}"#,
        g.rfc3339(),
        g.pick(&["info", "debug", "warn", "error"]),
        g.pick(&MESSAGES),
        g.pick(&SERVICES),
        g.below(20),
        g.trace_id(),
        g.span_id(),
        g.span_id(),
        g.pick(&[200, 201, 402, 500]),
        g.pick(&PATHS),
        g.below(10_000),
        g.below(100_000),
        g.below(50_000),
    )
}

/// log4j with OTel MDC, Python's correlation format, logfmt and nginx lines.
fn text_line(g: &mut Gen) -> String {
    let time = g.rfc3339();
    match g.below(4) {
        0 => format!(
            "{} {:<5} [http-nio-8080-exec-{}] c.e.payment.StripeClient [trace_id={} span_id={} trace_flags=01] - {} ord_{}",
            time.replace('T', " ").trim_end_matches('Z'),
            g.pick(&LEVELS),
            g.below(20),
            g.trace_id(),
            g.span_id(),
            g.pick(&MESSAGES),
            g.below(100_000),
        ),
        1 => format!(
            "{} {} [checkout.views] [views.py:{}] [trace_id={} span_id={} resource.service.name={} trace_sampled=True] - {}",
            time.replace('T', " ")
                .trim_end_matches('Z')
                .replace('.', ","),
            g.pick(&["INFO", "WARNING", "ERROR"]),
            g.below(200),
            g.trace_id(),
            g.span_id(),
            g.pick(&SERVICES),
            g.pick(&MESSAGES),
        ),
        2 => format!(
            r#"time={time} level={} msg="{}" method=POST path={} status={} duration={}.{} trace_id={} span_id={} service={}"#,
            g.pick(&LEVELS),
            g.pick(&MESSAGES),
            g.pick(&PATHS),
            g.pick(&[200, 201, 404, 500]),
            g.below(2000),
            g.below(100),
            g.trace_id(),
            g.span_id(),
            g.pick(&SERVICES),
        ),
        _ => format!(
            r#"203.0.113.{} - - [01/May/2024:12:{:02}:{:02} +0000] "POST {} HTTP/1.1" {} {} "-" "Mozilla/5.0" "00-{}-{}-01" rt=0.{}"#,
            g.below(255),
            g.below(60),
            g.below(60),
            g.pick(&PATHS),
            g.pick(&[200, 201, 404, 500]),
            g.below(10_000),
            g.trace_id(),
            g.span_id(),
            g.below(1000),
        ),
    }
}
