//! The web UI at `GET /`: three embedded files served with their types and a strict
//! Content-Security-Policy, never a file chosen by the request path; a script that never turns
//! data into markup; and hostile log bodies that reach the browser only as JSON strings.

mod common;

use std::net::SocketAddr;

use axum::http::StatusCode;
use common::*;
use prost::Message as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const APP_JS: &str = include_str!("../src/ui/app.js");
const APP_CSS: &str = include_str!("../src/ui/app.css");
const INDEX_HTML: &str = include_str!("../src/ui/index.html");

/// Markup that runs script if it is ever parsed as HTML.
const PAYLOAD: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

const TRACE: [u8; 16] = [0xc3; 16];
const SPAN: [u8; 8] = [0x44; 8];

#[tokio::test]
async fn page_script_and_stylesheet_have_their_types_and_a_strict_csp() {
    let t = app();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "application/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let reply = t.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(
            reply.content_type().starts_with(content_type),
            "{path}: {}",
            reply.content_type()
        );
        let csp = reply.headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    }
    assert_eq!(t.get("/").await.content_type(), "text/html; charset=utf-8");
    assert_eq!(t.get("/").await.body, INDEX_HTML.as_bytes());
    assert_eq!(t.get("/ui/app.js").await.body, APP_JS.as_bytes());

    // Only those three paths: nothing is looked up by the path a request names.
    for path in [
        "/ui/",
        "/ui/mod.rs",
        "/ui/index.html",
        "/ui/app.js/x",
        "/ui/../lib.rs",
        "/ui/%2e%2e/openapi.json",
        "/index.html",
        "/app.js",
    ] {
        assert_eq!(t.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_page_is_open_even_when_the_api_needs_a_read_token() {
    let config = server::ServerConfig {
        read_token: Some("r34d".into()),
        ..server::ServerConfig::default()
    };
    let t = app_with(config, test_writer_config());
    for path in ["/", "/ui/app.js", "/ui/app.css"] {
        assert_eq!(t.get(path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(
        t.get("/api/v1/services").await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The CSP forbids inline code, so the page must have none; and the script builds the DOM
/// from text nodes only, so no sink that parses markup or code may appear in it.
#[test]
fn the_script_has_no_html_or_code_sinks_and_the_page_no_inline_code() {
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setAttribute",
        "createContextualFragment",
        "DOMParser",
        "srcdoc",
        "javascript:",
        "setTimeout(\"",
        "setInterval(\"",
    ] {
        assert!(!APP_JS.contains(sink), "app.js uses {sink}");
    }
    assert!(
        APP_JS.is_ascii(),
        "keep app.js ASCII (use \\u escapes) so no charset can change it"
    );

    assert_eq!(
        INDEX_HTML.matches("<script").count(),
        INDEX_HTML
            .matches("<script src=\"/ui/app.js\" defer></script>")
            .count(),
        "every script is the external /ui/app.js with an empty body"
    );
    assert!(INDEX_HTML.contains("<link rel=\"stylesheet\" href=\"/ui/app.css\">"));
    assert!(!INDEX_HTML.contains("<style"), "no inline stylesheet");
    for attribute in INDEX_HTML.split_whitespace() {
        assert!(
            !attribute.starts_with("style="),
            "no inline style: {attribute}"
        );
        assert!(
            !(attribute.starts_with("on") && attribute.contains('=')),
            "no inline handler: {attribute}"
        );
    }
    // Nothing fetched from elsewhere.
    for (name, text) in [
        ("index.html", INDEX_HTML),
        ("app.js", APP_JS),
        ("app.css", APP_CSS),
    ] {
        for external in ["http://", "https://", "\"//", "@import", "url("] {
            assert!(!text.contains(external), "{name} contains {external}");
        }
    }
}

/// A log body, a span name and an attribute written by an attacker reach the browser only as
/// JSON strings (exactly as written, for the script to show as text) and never in the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_and_attributes_reach_the_browser_only_as_json_strings() {
    let t = app();
    let mut hostile_span = span(TRACE, SPAN, None, PAYLOAD, 50);
    hostile_span.attributes.push(kv("note", PAYLOAD));
    hostile_span.attributes.push(kv(PAYLOAD, "a hostile key"));
    let request = traces_request(PAYLOAD, vec![hostile_span]);
    let reply = t
        .post(
            "/v1/traces",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut hostile_log = log(Some(TRACE), PAYLOAD, 17, 40);
    hostile_log.span_id = SPAN.to_vec();
    hostile_log.attributes.push(kv("user.id", PAYLOAD));
    let request = logs_request("checkout", vec![hostile_log]);
    let reply = t
        .post(
            "/v1/logs",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, t.state.clone(), async move {
        let _ = stopped.await;
    }));

    for path in ["/", "/ui/app.js", "/ui/app.css"] {
        let (status, headers, body) = http_get(addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            headers.contains(
                "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'"
            ),
            "{path}: {headers}"
        );
        assert!(!body.contains("alert("), "{path} carries data");
    }

    let trace_id = hex(&TRACE);
    let (status, headers, body) = http_get(addr, &format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    let trace: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(trace["logs"][0]["body"], PAYLOAD);
    assert_eq!(trace["logs"][0]["attached_span_id"], hex(&SPAN));
    assert_eq!(trace["spans"][0]["name"], PAYLOAD);
    assert_eq!(trace["spans"][0]["service"], PAYLOAD);
    assert_eq!(trace["spans"][0]["attributes"]["note"], PAYLOAD);
    assert_eq!(trace["spans"][0]["attributes"][PAYLOAD], "a hostile key");

    let q = encode("kind = log AND level >= error");
    let (status, headers, body) =
        http_get(addr, &format!("/api/v1/search?q={q}&from=now()-1h")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["hits"][0]["body"], PAYLOAD);

    // Widening on the hostile value quotes it into the query: still data, still a 200.
    let (status, _, body) = http_get(
        addr,
        &format!("/api/v1/traces/{trace_id}/related?attribute=user.id"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let related: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(related["values"][0], PAYLOAD);
    assert_eq!(related["total"], 1);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// One GET on a fresh connection: status, the header block (lowercase names) and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}
