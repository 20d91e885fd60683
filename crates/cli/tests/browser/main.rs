//! The web UI in a real browser: headless Chromium (through chromedriver) against the real
//! `threadline serve` on simulated checkout traffic. Each page is looked at 1280, 768 and 390 px
//! wide (screenshots under `target/tmp/browser/screenshots/`), with no console error, script
//! error or CSP violation allowed. Without Chromium and chromedriver each test says SKIP.

#[path = "../support/mod.rs"]
mod support;

mod harness;

use std::time::Duration;

use harness::{Browser, Site, XSS_BODY, XSS_TRACE, skip};
use serde_json::{Value, json};

/// The first trace id a query finds, through the API.
fn first_trace(site: &Site, q: &str) -> String {
    let hits = site.api("/api/v1/search", &[("q", q), ("limit", "1")]);
    hits["hits"][0]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("nothing matches {q}: {hits}"))
        .to_owned()
}

fn is_full_trace_id(id: &str) -> bool {
    id.len() == 32
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !id.starts_with("0000000000000000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_lists_traces_and_filters_them() {
    if skip() {
        return;
    }
    let site = Site::start();
    let b = Browser::start("traces").await;
    b.open(&site.serve.url, "#/traces?since=24h", "traces")
        .await;
    let all = b.count(".trace-row").await;
    assert!(
        all > 10,
        "only {all} traces listed:\n{}",
        b.body_text().await
    );
    assert_eq!(b.count(".plot .dot").await, all, "one dot per trace");
    b.at_each_width("list").await;

    // Filter: errors of payment-service, through the form.
    b.js(r#"const f = document.getElementById("trace-filters");
            f.service.value = "payment-service"; f.service.dispatchEvent(new Event("change"));
            f.status.value = "error"; f.requestSubmit(); return true;"#)
        .await;
    b.wait_js(
        "the filtered list",
        "return location.hash.includes('status=error') && document.querySelector('main').dataset.state === 'ready'",
    )
    .await;
    let failing = b.count(".trace-row").await;
    assert!(failing > 0 && failing < all, "{failing} of {all} traces");
    assert_eq!(
        b.count(".trace-row.has-err").await,
        failing,
        "every listed trace has an error"
    );
    b.screenshot("errors-1280").await;

    // A span filter and a query about a log line of the same trace: payment-service errors
    // whose order-service logged a warning (declines), as the API answers `trace(...)`.
    b.js(r#"const f = document.getElementById("trace-filters");
            f.q.value = "level = warn AND service = order-service"; f.requestSubmit(); return true;"#)
        .await;
    b.wait_js(
        "the list filtered by a log line",
        "return location.hash.includes('q=level') && document.querySelector('main').dataset.state === 'ready'",
    )
    .await;
    let declined = b
        .js("return [...document.querySelectorAll('.trace-row')].map((r) => r.getAttribute('href'))")
        .await;
    let declined: Vec<&str> = declined
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let expected = site.api(
        "/api/v1/traces",
        &[
            (
                "q",
                "service = payment-service AND status = ERROR AND \
                 trace(level = warn AND service = order-service)",
            ),
            ("limit", "1000"),
        ],
    );
    let expected: Vec<&str> = expected["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert!(
        !declined.is_empty() && declined.len() < failing,
        "{} of {failing} failing traces have an order-service warning",
        declined.len()
    );
    for href in &declined {
        assert!(
            expected.iter().any(|id| href.ends_with(id)),
            "{href} is not one of {expected:?}"
        );
    }
    b.js(r#"const f = document.getElementById("trace-filters");
            f.q.value = ""; f.requestSubmit(); return true;"#)
        .await;
    b.wait_js(
        "the query cleared",
        "return !location.hash.includes('q=level') && document.querySelector('main').dataset.state === 'ready'",
    )
    .await;
    assert_eq!(b.count(".trace-row").await, failing);

    // Longest first.
    b.js(r#"const f = document.getElementById("trace-filters");
            f.sort.value = "-duration"; f.sort.dispatchEvent(new Event("change")); return true;"#)
        .await;
    b.wait_js(
        "the list sorted by duration",
        "return location.hash.includes('sort=-duration') && document.querySelector('main').dataset.state === 'ready'",
    )
    .await;
    let durations = b
        .js("return [...document.querySelectorAll('.trace-row')].map((r) => r.dataset.durationNs)")
        .await;
    let durations: Vec<u64> = durations
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(durations.len() > 1);
    assert!(
        durations.windows(2).all(|w| w[0] >= w[1]),
        "longest first: {durations:?}"
    );

    // A dot opens its trace.
    b.click(".plot .dot").await;
    b.wait_view("trace").await;
    assert!(b.count(".row.span").await > 0);
    b.assert_clean().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_trace_shows_every_span_and_log_its_critical_path_and_findings() {
    if skip() {
        return;
    }
    let site = Site::start();
    let id = first_trace(
        &site,
        "kind = span AND name = stripe_api_call AND status = ERROR",
    );
    let trace = site.api(&format!("/api/v1/traces/{id}"), &[]);
    let b = Browser::start("trace").await;
    b.open(&site.serve.url, &format!("#/trace/{id}"), "trace")
        .await;

    let summary = &trace["summary"];
    assert_eq!(
        b.count(".row.span").await as u64,
        summary["span_count"].as_u64().unwrap()
    );
    assert_eq!(
        b.count(".row.log").await as u64,
        summary["log_count"].as_u64().unwrap()
    );
    let critical = trace["analysis"]["critical_path"].as_array().unwrap().len();
    assert!(critical > 0);
    assert_eq!(
        b.count(".track .crit").await,
        critical,
        "one band per segment"
    );
    let findings = trace["analysis"]["findings"].as_array().unwrap().len();
    assert!(findings > 0, "a failing Stripe call has findings");
    assert_eq!(b.count(".finding-row").await, findings);
    assert!(b.count(".row.span.is-err").await > 0);
    b.at_each_width("waterfall").await;

    // A finding jumps to its span and opens its details inline, under the row.
    b.click(".finding-row .jump").await;
    b.wait(".row.span.selected + .detail").await;
    let widths = b
        .js("return [document.querySelector('.row.span .track').clientWidth, document.querySelector('.waterfall').clientWidth]")
        .await;
    assert!(
        widths[0].as_f64().unwrap() > widths[1].as_f64().unwrap() * 0.5,
        "the waterfall keeps its width with details open: {widths}"
    );
    b.at_each_width("detail").await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e00c}") // Escape
        .await
        .unwrap();
    b.wait_js(
        "Esc to close the details",
        "return !document.querySelector('.detail')",
    )
    .await;

    // Collapsing the root's subtree hides every other row; expanding shows them again.
    let visible = "return [...document.querySelectorAll('.waterfall .row.span, .waterfall .row.log')].filter((r) => !r.hidden).length";
    let before = b.js(visible).await;
    b.click(".row.span .toggle").await;
    let collapsed = b.js(visible).await;
    assert!(
        collapsed.as_u64() < before.as_u64(),
        "{collapsed} rows after collapsing, {before} before"
    );
    assert!(b.js("return location.hash.includes('collapsed=')").await == json!(true));
    b.screenshot("collapsed-1280").await;
    b.click(".row.span .toggle").await;
    assert_eq!(b.js(visible).await, before);

    // Find in trace highlights.
    let find = b.wait("input.find").await;
    find.send_keys("stripe").await.unwrap();
    b.wait(".row.match").await;
    assert!(b.js("return location.hash.includes('find=stripe')").await == json!(true));
    b.screenshot("find-1280").await;
    b.assert_clean().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_trace_links_to_its_likely_parent() {
    if skip() {
        return;
    }
    let site = Site::start();
    // Email consumers that lost the context start traces of their own.
    let list = site.api(
        "/api/v1/traces",
        &[("q", "service = email-service"), ("limit", "500")],
    );
    let (id, linked) = list["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["trace_id"].as_str())
        .find_map(|id| {
            let trace = site.api(&format!("/api/v1/traces/{id}"), &[]);
            let linked = trace["analysis"]["findings"]
                .as_array()?
                .iter()
                .find_map(|f| f["linked_trace_id"].as_str().map(str::to_owned))?;
            Some((id.to_owned(), linked))
        })
        .expect("the simulated traffic has a trace that lost its context");
    let b = Browser::start("detached").await;
    b.open(&site.serve.url, &format!("#/trace/{id}"), "trace")
        .await;
    b.screenshot("detached-1280").await;
    b.click(".finding-row a.linked").await;
    b.wait_js(
        "the linked trace",
        &format!("return location.hash.startsWith('#/trace/{linked}') && document.querySelector('main').dataset.state === 'ready'"),
    )
    .await;
    assert!(b.count(".row.span").await > 0);
    b.assert_clean().await;
    b.close().await;
}

/// Each example query the page offers finds something in simulated checkout traffic.
#[test]
fn every_example_query_of_the_ui_finds_something() {
    const APP_JS: &str = include_str!("../../../server/src/ui/app.js");
    let start = APP_JS
        .find("const EXAMPLES = [")
        .expect("app.js has EXAMPLES");
    let list = &APP_JS[start..start + APP_JS[start..].find("];").unwrap()];
    // One literal a line: "..." (JSON's escapes) or '...' (none used).
    let examples: Vec<String> = list
        .lines()
        .skip(1)
        .map(|line| line.trim().trim_end_matches(','))
        .filter(|line| line.len() >= 2)
        .map(|line| match line.strip_prefix('\'') {
            Some(single) => single.trim_end_matches('\'').to_owned(),
            None => serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")),
        })
        .collect();
    assert!(examples.len() >= 5, "{examples:?}");
    let site = Site::start();
    for q in &examples {
        let hits = site.api("/api/v1/search", &[("q", q), ("limit", "1")]);
        assert!(hits["total"].as_u64().unwrap() > 0, "{q} finds nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_log_body_renders_as_text() {
    if skip() {
        return;
    }
    let site = Site::start();
    let b = Browser::start("xss").await;
    b.open(&site.serve.url, &format!("#/trace/{XSS_TRACE}"), "trace")
        .await;
    let body = b.wait(".row.log .body").await.text().await.unwrap();
    assert_eq!(body, XSS_BODY);
    assert_eq!(
        b.count("main img").await,
        0,
        "no element made from the body"
    );
    b.click(".row.log").await;
    b.wait(".detail pre.logbody").await;
    b.open(
        &site.serve.url,
        "#/search?q=service%20%3D%20attacker&since=24h",
        "search",
    )
    .await;
    b.wait("table.hits tr.hit").await;
    assert_eq!(b.count("main img").await, 0);
    b.screenshot("search-1280").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.assert_clean().await; // no alert ran, no error
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widen_counts_by_value_service_status_and_time_with_full_sample_ids() {
    if skip() {
        return;
    }
    let site = Site::start();
    let id = first_trace(&site, "kind = span AND exists(decline_code)");
    let b = Browser::start("widen").await;
    b.open(
        &site.serve.url,
        &format!("#/related/{id}?attribute=decline_code"),
        "related",
    )
    .await;
    assert!(b.count(".histogram div").await > 1);
    assert!(b.count(".bars .barrow").await >= 2);
    let samples = b
        .js("return [...document.querySelectorAll('.samples li code')].map((c) => c.textContent)")
        .await;
    let samples: Vec<&str> = samples
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!samples.is_empty());
    for sample in &samples {
        assert!(is_full_trace_id(sample), "sample {sample} is not a full id");
    }
    // Errors first; and the window ends by now (the traffic ends minutes ago).
    let flags = b
        .js("return [...document.querySelectorAll('.samples li')].map((li) => !!li.querySelector('.tag'))")
        .await;
    let flags: Vec<bool> = flags
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_bool().unwrap())
        .collect();
    assert!(
        flags.windows(2).all(|w| w[0] >= w[1]),
        "errors first: {flags:?}"
    );
    let related = site.api(
        &format!("/api/v1/traces/{id}/related"),
        &[("attribute", "decline_code"), ("window", "6h")],
    );
    let to = related["to"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    assert!(
        to <= jiff::Timestamp::now(),
        "the window reaches into the future: {to}"
    );
    b.at_each_width("related").await;
    b.assert_clean().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_shows_a_histogram_and_groups_declines_by_code_and_bin() {
    if skip() {
        return;
    }
    let site = Site::start();
    let q = "kind = span AND exists(decline_code)";
    let b = Browser::start("search").await;
    b.open(
        &site.serve.url,
        "#/search?q=kind%20%3D%20span%20AND%20exists(decline_code)&since=24h&by=decline_code,card.bin",
        "search",
    )
    .await;
    b.wait(".groupby .group").await;
    b.wait(".histbox .histogram").await;
    let agg = site.api(
        "/api/v1/aggregate",
        &[("q", q), ("by", "decline_code,card.bin"), ("size", "20")],
    );
    let buckets = agg["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty());
    let codes: std::collections::BTreeSet<&str> = buckets
        .iter()
        .map(|b| b["key"]["decline_code"].as_str().unwrap())
        .collect();
    assert_eq!(b.count(".groupby .group").await, codes.len());
    assert_eq!(b.count(".groupby .group .barrow").await, buckets.len());
    // Every hit names its trace by the full id.
    let ids = b
        .js("return [...document.querySelectorAll('td.tid code')].map((c) => c.textContent)")
        .await;
    for id in ids.as_array().unwrap() {
        assert!(is_full_trace_id(id.as_str().unwrap()), "{id}");
    }
    b.at_each_width("groupby").await;

    // A hit's details open over the page (its width stays), and Esc closes them.
    let width = b
        .js("return document.querySelector('table.hits').clientWidth")
        .await;
    b.click("table.hits tr.hit td.body").await;
    b.wait("#panel:not([hidden]) .facts").await;
    assert_eq!(
        b.js("return document.querySelector('table.hits').clientWidth")
            .await,
        width
    );
    b.screenshot("panel-1280").await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e00c}") // Escape
        .await
        .unwrap();
    b.wait("#panel[hidden]").await;
    b.assert_clean().await;

    // The same question counting traces: a decline writes a span and a log, counted once.
    b.open(
        &site.serve.url,
        "#/search?q=exists(decline_code)&since=24h&by=decline_code,card.bin&count=traces",
        "search",
    )
    .await;
    let heading = b.wait(".groupby h2").await.text().await.unwrap();
    assert_eq!(heading, "Count of traces by decline_code and card.bin");
    let agg = site.api(
        "/api/v1/aggregate",
        &[
            ("q", "exists(decline_code)"),
            ("by", "decline_code,card.bin"),
            ("size", "20"),
            ("count", "traces"),
        ],
    );
    let shown = b
        .js("return [...document.querySelectorAll('.groupby .barrow .num')].map((n) => Number(n.textContent))")
        .await;
    let expected: Vec<u64> = agg["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    let mut shown: Vec<u64> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    let mut expected_sorted = expected.clone();
    shown.sort_unstable();
    expected_sorted.sort_unstable();
    assert_eq!(shown, expected_sorted);
    b.screenshot("groupby-traces-1280").await;
    b.assert_clean().await;

    // Logs known by a Datadog (low 64-bit) id are named by their trace's full id too.
    b.open(
        &site.serve.url,
        "#/search?q=service%20%3D%20payment-service%20AND%20kind%20%3D%20log&since=24h",
        "search",
    )
    .await;
    let ids = b
        .js("return [...document.querySelectorAll('td.tid code')].map((c) => c.textContent)")
        .await;
    assert!(!ids.as_array().unwrap().is_empty());
    for id in ids.as_array().unwrap() {
        assert!(is_full_trace_id(id.as_str().unwrap()), "{id}");
    }

    // A query error points at its column.
    b.open(
        &site.serve.url,
        "#/search?q=status%20%3D&since=1h",
        "search",
    )
    .await;
    let caret = b.wait(".error pre.caret").await.text().await.unwrap();
    assert!(caret.ends_with('^'), "{caret}");
    b.screenshot("query-error-1280").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_receives_a_new_record_and_pauses() {
    if skip() {
        return;
    }
    let site = Site::start();
    let b = Browser::start("live").await;
    b.open(
        &site.serve.url,
        "#/live?q=service%20%3D%20live-probe",
        "live",
    )
    .await;
    b.wait(".live-status.on").await;
    let line = |body: &str| -> Value {
        json!({"timestamp": jiff::Timestamp::now().to_string(), "level": "warn",
               "service": "live-probe", "message": body,
               "trace_id": "11112222333344445555666677778888"})
    };
    site.append_live(&line("first live line"));
    b.wait_js(
        "the first live record",
        "return document.body.innerText.includes('first live line')",
    )
    .await;
    b.at_each_width("live").await;

    // Paused: nothing new shows; resumed: what arrived meanwhile shows.
    b.click("button.pause").await;
    site.append_live(&line("second live line"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        b.js("return document.body.innerText.includes('second live line')")
            .await,
        json!(false)
    );
    b.click("button.pause").await;
    b.wait_js(
        "the record that arrived while paused",
        "return document.body.innerText.includes('second live line')",
    )
    .await;
    assert_eq!(b.count("table.hits tbody tr").await, 2, "nothing twice");
    b.assert_clean().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_read_token_the_page_asks_for_it_and_live_follows_with_it() {
    if skip() {
        return;
    }
    let site = Site::start_with("[server]\nread_token = \"r34d-t0ken\"\n");
    let b = Browser::start("token").await;
    b.open(
        &site.serve.url,
        "#/live?q=service%20%3D%20live-probe",
        "live",
    )
    .await;
    b.wait(".error input.token").await;
    b.screenshot("asked-1280").await;
    b.js(
        r#"document.querySelector(".error input.token").value = "r34d-t0ken";
            document.querySelector(".error form").requestSubmit(); return true;"#,
    )
    .await;
    b.wait(".live-status.on").await;
    site.append_live(
        &json!({"timestamp": jiff::Timestamp::now().to_string(), "level": "warn",
        "service": "live-probe", "message": "line behind a token"}),
    );
    b.wait_js(
        "the record behind the token",
        "return document.body.innerText.includes('line behind a token')",
    )
    .await;
    // The only console errors are the refusals before the token was given.
    for error in b.console_errors().await {
        assert!(error.contains("401"), "{error}");
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_page_favicon_and_keyboard() {
    if skip() {
        return;
    }
    let site = Site::start();
    let icon =
        tokio::task::block_in_place(|| support::get_text(&site.url("/favicon.ico"))).unwrap();
    assert!(icon.starts_with("<svg"), "{icon}");
    let b = Browser::start("compare").await;
    b.open(
        &site.serve.url,
        "#/compare?q=decline_code%20%3D%20do_not_honor&since=24h",
        "compare",
    )
    .await;
    b.wait(".results > *").await;
    let has_compare = site.api("/api/v1/openapi.json", &[])["paths"]
        .get("/api/v1/compare")
        .is_some();
    if has_compare {
        b.wait(".compare .cmprow").await;
    } else {
        let text = b.wait(".results .error").await.text().await.unwrap();
        assert!(text.contains("no compare endpoint"), "{text}");
    }
    b.at_each_width("compare").await;

    // "/" focuses the page's query box.
    b.js("document.activeElement.blur(); return true").await;
    b.client
        .find(fantoccini::Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("/")
        .await
        .unwrap();
    assert_eq!(
        b.js("return document.activeElement.classList.contains('q-input')")
            .await,
        json!(true)
    );
    b.assert_clean().await;
    b.close().await;
}
