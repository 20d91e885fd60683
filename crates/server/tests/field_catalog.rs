//! One field catalog: every built-in field and each of its aliases answers the same in search,
//! aggregate, related and compare; `span_kind`, span-event attributes and unknown names behave
//! the same everywhere.

mod common;

use axum::http::StatusCode;
use common::*;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message as _;
use serde_json::Value;

const TRACE_A: [u8; 16] = [0xa1; 16];
const TRACE_B: [u8; 16] = [0xb2; 16];

/// A checkout whose charge failed with an exception event, a healthy one, and logs.
async fn seeded() -> TestApp {
    let t = app();
    let mut charge = span(TRACE_A, [0x12; 8], Some([0x11; 8]), "charge", 100);
    charge.kind = 3; // CLIENT
    charge.attributes.push(kv("card.bin", "400022"));
    charge.events.push(Event {
        time_unix_nano: now_ns() - 99_000_000,
        name: "exception".into(),
        attributes: vec![kv("exception.type", "java.net.SocketTimeoutException")],
        dropped_attributes_count: 0,
    });
    charge.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: 2,
        message: "timeout".into(),
    });
    let a = traces_request(
        "checkout",
        vec![
            span(TRACE_A, [0x11; 8], None, "POST /checkout", 110),
            charge,
        ],
    );
    let b = traces_request(
        "checkout",
        vec![span(TRACE_B, [0x21; 8], None, "POST /checkout", 90)],
    );
    post_traces(&t, [a, b]).await;
    let logs = logs_request(
        "billing",
        vec![
            log(Some(TRACE_A), "charge failed", 17, 95),
            log(Some(TRACE_B), "ok", 9, 85),
        ],
    );
    let reply = t
        .post("/v1/logs", "application/x-protobuf", logs.encode_to_vec())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    t
}

/// Each request to `/v1/traces` as protobuf, accepted.
async fn post_traces<const N: usize>(
    t: &TestApp,
    requests: [opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest; N],
) {
    for request in requests {
        let reply = t
            .post(
                "/v1/traces",
                "application/x-protobuf",
                request.encode_to_vec(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

async fn ok(t: &TestApp, uri: &str) -> Value {
    let reply = t.get(uri).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The bucket values and counts of an aggregate by one field, whatever it is called.
fn buckets(json: &Value, label: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = json["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["key"][label].as_str().unwrap().to_owned(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn every_builtin_field_and_alias_answers_the_same_everywhere() {
    let t = seeded().await;
    let a = hex(&TRACE_A);
    // A value of each groupable built-in field in trace A.
    let values = [
        ("kind", "span"),
        ("service", "checkout"),
        ("name", "charge"),
        ("status", "ERROR"),
        ("span_kind", "CLIENT"),
        ("level", "error"),
    ];
    for f in index::field_catalog::BUILTIN_FIELDS {
        let Some(&(_, value)) = values.iter().find(|(n, _)| *n == f.name) else {
            continue;
        };
        let names: Vec<&str> = std::iter::once(f.name)
            .chain(f.aliases.iter().copied())
            .collect();
        let mut answers = Vec::new();
        for name in &names {
            let q = format!("{name} = {value}");
            let search = ok(&t, &search_uri(&q, "&from=now()-1h")).await;
            let agg = ok(&t, &format!("/api/v1/aggregate?by={name}&from=now()-1h")).await;
            let related = ok(
                &t,
                &format!("/api/v1/traces/{a}/related?attribute={name}&window=1h"),
            )
            .await;
            let compare = ok(
                &t,
                &format!(
                    "/api/v1/compare?q={}&from=now()-1h&count=records",
                    encode(&q)
                ),
            )
            .await;
            for r in compare["results"].as_array().unwrap() {
                assert_ne!(
                    r["field"], f.name,
                    "{q}: its own field is ranked: {compare}"
                );
            }
            answers.push((
                search["total"].clone(),
                buckets(&agg, name),
                related["values"].clone(),
                compare["selection"].clone(),
            ));
        }
        assert!(
            answers[0].0.as_u64().unwrap() > 0,
            "{} = {value} matches nothing",
            f.name
        );
        for (name, answer) in names.iter().zip(&answers) {
            assert_eq!(answer, &answers[0], "{name} differs from {}", f.name);
        }
    }
}

#[tokio::test]
async fn span_kind_span_events_and_unknown_fields() {
    let t = seeded().await;
    let a = hex(&TRACE_A);
    let search = ok(&t, &search_uri("span_kind = server", "&from=now()-1h")).await;
    assert_eq!(search["total"], 2, "both root spans: {search}");
    // `by` and `related` find the exception type in the span event, as search does.
    let agg = ok(&t, "/api/v1/aggregate?by=exception.type&from=now()-1h").await;
    assert_eq!(
        buckets(&agg, "exception.type"),
        [("java.net.SocketTimeoutException".to_owned(), 1)]
    );
    let related = ok(
        &t,
        &format!("/api/v1/traces/{a}/related?attribute=exception.type&window=1h"),
    )
    .await;
    assert_eq!(
        related["values"],
        serde_json::json!(["java.net.SocketTimeoutException"])
    );
    assert_eq!(related["total"], 1, "{related}");
    // An unknown name: a 400 naming the closest fields and the keys seen, never an empty answer.
    for uri in [
        "/api/v1/aggregate?by=card.bim".to_owned(),
        format!("/api/v1/traces/{a}/related?attribute=card.bim"),
        format!("/api/v1/compare?q={}", encode("card.bim = 400022")),
    ] {
        let reply = t.get(&uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("closest known fields: card.bin")
                && message.contains("attribute keys seen"),
            "{uri}: {message}"
        );
    }
}

/// `link.x` and `instrumentation.x` (TraceQL's names) address span-link and scope attributes in
/// search, aggregate and related alike, and the Jaeger search, which looks for a tag in those
/// places too, finds them through the same catalog.
#[tokio::test]
async fn link_and_instrumentation_attributes_answer_everywhere() {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::trace::v1::span::Link;
    let t = app();
    let mut retried = span(TRACE_A, [0x31; 8], None, "POST /checkout", 100);
    retried.links.push(Link {
        trace_id: TRACE_B.to_vec(),
        span_id: vec![0x21; 8],
        attributes: vec![kv("link.reason", "retry")],
        ..Default::default()
    });
    let mut request = traces_request("checkout", vec![retried]);
    request.resource_spans[0].scope_spans[0].scope = Some(InstrumentationScope {
        name: "io.opentelemetry.okhttp".into(),
        version: "1.0".into(),
        attributes: vec![kv("flavor", "java-agent")],
        ..Default::default()
    });
    let other = traces_request(
        "checkout",
        vec![span(TRACE_B, [0x21; 8], None, "POST /checkout", 90)],
    );
    post_traces(&t, [request, other]).await;
    let a = hex(&TRACE_A);
    for (name, value) in [
        ("link.link.reason", "retry"),
        ("instrumentation.flavor", "java-agent"),
    ] {
        let q = format!("{name} = {value}");
        let search = ok(&t, &search_uri(&q, "&from=now()-1h")).await;
        assert_eq!(search["total"], 1, "{q}: {search}");
        assert_eq!(search["hits"][0]["trace_id"], a.as_str(), "{q}");
        // Not found by the scopes that do not hold it.
        let bare = name.split_once('.').unwrap().1;
        let elsewhere = ok(
            &t,
            &search_uri(&format!("{bare} = {value}"), "&from=now()-1h"),
        )
        .await;
        assert_eq!(elsewhere["total"], 0, "{bare}: {elsewhere}");
        let agg = ok(&t, &format!("/api/v1/aggregate?by={name}&from=now()-1h")).await;
        assert_eq!(buckets(&agg, name), [(value.to_owned(), 1)], "{agg}");
        let related = ok(
            &t,
            &format!("/api/v1/traces/{a}/related?attribute={name}&window=1h"),
        )
        .await;
        assert_eq!(related["values"], serde_json::json!([value]), "{related}");
        // Jaeger's tag search looks in links and the scope.
        let tags = encode(&format!("{{\"{bare}\":\"{value}\"}}"));
        let jaeger = ok(&t, &format!("/api/traces?service=checkout&tags={tags}")).await;
        let ids: Vec<&str> = jaeger["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [a.as_str()], "{jaeger}");
    }
}
