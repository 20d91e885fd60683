//! End-to-end checks of the simulator: determinism, ground truth recounted from the raw files,
//! valid JSON everywhere, and live mode writing whole lines until told to stop.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use checkout_sim::{SimConfig, generate, run_live};
use serde_json::Value;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("checkout-sim-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn small_config() -> SimConfig {
    // High failure rates so every failure mode shows up in a small run.
    SimConfig {
        seed: 42,
        traces: 600,
        traces_per_second: 0.8, // ~12.5 simulated minutes, so the 10m buckets split
        stripe_timeout_rate: 0.05,
        n_plus_one_rate: 0.2,
        slow_query_one_in: 10,
        context_drop_rate: 0.3,
        ..SimConfig::default()
    }
}

/// Every file under `dir`, relative path → bytes.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["spans", "logs"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let rel = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            out.insert(rel, fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn same_seed_same_bytes() {
    let (a, b, c) = (temp_dir("det-a"), temp_dir("det-b"), temp_dir("det-c"));
    let config = SimConfig {
        traces: 300,
        ..small_config()
    };
    let truth_a = generate(&config, &a).unwrap();
    let truth_b = generate(&config, &b).unwrap();
    assert_eq!(truth_a, truth_b);
    let (tree_a, tree_b) = (read_tree(&a), read_tree(&b));
    assert_eq!(tree_a.len(), 10, "5 span files and 5 log files");
    for (rel, bytes) in &tree_a {
        assert!(
            tree_b[rel] == *bytes,
            "{rel} differs between two runs with the same seed"
        );
    }
    generate(&SimConfig { seed: 43, ..config }, &c).unwrap();
    assert_ne!(
        read_tree(&c)["spans/api-gateway.jsonl"],
        tree_a["spans/api-gateway.jsonl"]
    );
    for dir in [a, b, c] {
        let _ = fs::remove_dir_all(dir);
    }
}

/// What the test itself reads back from the raw files.
#[derive(Default)]
struct Recount {
    /// trace id hex → (spans, logs)
    traces: BTreeMap<String, (u64, u64)>,
    /// span records, flattened: (service, trace id, span id, parent, name, error, attributes)
    spans: Vec<RawSpan>,
    /// Datadog (trace decimal, span decimal) pairs, resolved after all spans are known.
    datadog_ids: Vec<(u64, u64)>,
    logs: Vec<(String, Value)>,
}

struct RawSpan {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    error: bool,
    start_ns: i64,
    duration_ns: i64,
    attrs: HashMap<String, String>,
}

fn otlp_attrs(list: &Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for kv in list.as_array().into_iter().flatten() {
        let v = &kv["value"];
        let text = match (
            v.get("stringValue"),
            v.get("intValue"),
            v.get("doubleValue"),
        ) {
            (Some(s), _, _) => s.as_str().unwrap().to_owned(),
            (_, Some(i), _) => {
                assert!(i.is_string(), "intValue must be a string: {i}");
                i.as_str().unwrap().to_owned()
            }
            (_, _, Some(d)) => d.to_string(),
            _ => panic!("unexpected AnyValue {v}"),
        };
        out.insert(kv["key"].as_str().unwrap().to_owned(), text);
    }
    out
}

fn recount(dir: &Path, truth: &Value) -> Recount {
    let mut r = Recount::default();
    for (rel, meta) in truth["totals"]["files"].as_object().unwrap() {
        let text = fs::read_to_string(dir.join(rel)).unwrap();
        let format = meta["format"].as_str().unwrap();
        assert_eq!(
            text.len() as u64,
            meta["bytes"].as_u64().unwrap(),
            "{rel} bytes"
        );
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{rel} ends mid-line"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len() as u64,
            meta["lines"].as_u64().unwrap(),
            "{rel} lines"
        );
        let (mut n_spans, mut n_logs) = (0, 0);
        for line in lines {
            assert!(
                line.len() < 64 * 1024,
                "{rel}: line of {} bytes",
                line.len()
            );
            if format == "logfmt" {
                let field = |key: &str| {
                    line.split(' ')
                        .find_map(|kv| kv.strip_prefix(key).map(str::to_owned))
                };
                assert!(line.starts_with("ts=20"), "{line}");
                if let Some(trace_id) = field("trace_id=") {
                    assert_eq!(trace_id.len(), 32);
                    r.traces.entry(trace_id).or_default().1 += 1;
                }
                n_logs += 1;
                continue;
            }
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{rel}: {e}: {line}"));
            match format {
                "otlp-json-traces" => {
                    for rs in v["resourceSpans"].as_array().unwrap() {
                        let service =
                            otlp_attrs(&rs["resource"]["attributes"])["service.name"].clone();
                        assert!(rel.contains(&service));
                        for ss in rs["scopeSpans"].as_array().unwrap() {
                            for s in ss["spans"].as_array().unwrap() {
                                n_spans += 1;
                                assert!(s["kind"].is_u64() && s["startTimeUnixNano"].is_string());
                                let mut attrs = otlp_attrs(&s["attributes"]);
                                for e in s["events"].as_array().into_iter().flatten() {
                                    attrs.extend(otlp_attrs(&e["attributes"]));
                                }
                                r.spans.push(RawSpan {
                                    trace_id: s["traceId"].as_str().unwrap().to_owned(),
                                    span_id: s["spanId"].as_str().unwrap().to_owned(),
                                    parent: s["parentSpanId"].as_str().map(str::to_owned),
                                    name: s["name"].as_str().unwrap().to_owned(),
                                    error: s["status"]["code"] == 2,
                                    start_ns: s["startTimeUnixNano"]
                                        .as_str()
                                        .unwrap()
                                        .parse()
                                        .unwrap(),
                                    duration_ns: s["endTimeUnixNano"]
                                        .as_str()
                                        .unwrap()
                                        .parse::<i64>()
                                        .unwrap()
                                        - s["startTimeUnixNano"]
                                            .as_str()
                                            .unwrap()
                                            .parse::<i64>()
                                            .unwrap(),
                                    attrs,
                                });
                            }
                        }
                    }
                }
                "zipkin-v2-json" => {
                    for s in v.as_array().unwrap() {
                        n_spans += 1;
                        assert_eq!(s["localEndpoint"]["serviceName"], "inventory-service");
                        let tags = s["tags"].as_object().unwrap();
                        assert!(tags.values().all(Value::is_string));
                        r.spans.push(RawSpan {
                            trace_id: s["traceId"].as_str().unwrap().to_owned(),
                            span_id: s["id"].as_str().unwrap().to_owned(),
                            parent: s["parentId"].as_str().map(str::to_owned),
                            name: s["name"].as_str().unwrap().to_owned(),
                            error: tags.contains_key("error"),
                            start_ns: s["timestamp"].as_i64().unwrap() * 1_000,
                            duration_ns: s["duration"].as_i64().unwrap() * 1_000,
                            attrs: tags
                                .iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                                .collect(),
                        });
                    }
                }
                "otlp-json-logs" => {
                    for rl in v["resourceLogs"].as_array().unwrap() {
                        for sl in rl["scopeLogs"].as_array().unwrap() {
                            for l in sl["logRecords"].as_array().unwrap() {
                                n_logs += 1;
                                assert!(
                                    l["timeUnixNano"].is_string() && l["severityNumber"].is_u64()
                                );
                                if let Some(t) = l["traceId"].as_str() {
                                    r.traces.entry(t.to_owned()).or_default().1 += 1;
                                }
                                r.logs.push((rel.clone(), l.clone()));
                            }
                        }
                    }
                }
                "ecs-json" | "python-json-logger" => {
                    n_logs += 1;
                    let key = if format == "ecs-json" {
                        "trace.id"
                    } else {
                        "otelTraceID"
                    };
                    match v[key].as_str() {
                        Some("0") | None => {}
                        Some(t) => r.traces.entry(t.to_owned()).or_default().1 += 1,
                    }
                    r.logs.push((rel.clone(), v));
                }
                "datadog-json" => {
                    n_logs += 1;
                    let t: u64 = v["dd.trace_id"].as_str().unwrap().parse().unwrap();
                    let s: u64 = v["dd.span_id"].as_str().unwrap().parse().unwrap();
                    r.datadog_ids.push((t, s));
                    r.logs.push((rel.clone(), v));
                }
                other => panic!("unknown format {other}"),
            }
        }
        assert_eq!(n_spans, meta["spans"].as_u64().unwrap(), "{rel} spans");
        assert_eq!(n_logs, meta["logs"].as_u64().unwrap(), "{rel} logs");
    }
    for s in &r.spans {
        r.traces.entry(s.trace_id.clone()).or_default().0 += 1;
    }
    // Datadog ids: the low 64 bits of a real trace id, and the decimal of a real span id.
    let mut by_low64: HashMap<u64, String> = HashMap::new();
    for t in r.traces.keys() {
        let low = u64::from_str_radix(&t[16..], 16).unwrap();
        assert_ne!(
            u64::from_str_radix(&t[..16], 16).unwrap(),
            0,
            "high half is zero: {t}"
        );
        assert!(
            by_low64.insert(low, t.clone()).is_none(),
            "low 64 bits collide"
        );
    }
    let span_ids: HashMap<u64, &str> = r
        .spans
        .iter()
        .map(|s| {
            (
                u64::from_str_radix(&s.span_id, 16).unwrap(),
                s.trace_id.as_str(),
            )
        })
        .collect();
    for &(t, s) in &r.datadog_ids {
        let trace_id = by_low64
            .get(&t)
            .unwrap_or_else(|| panic!("dd.trace_id {t} is no trace's low 64 bits"));
        assert_eq!(
            span_ids.get(&s).copied(),
            Some(trace_id.as_str()),
            "dd.span_id {s} is not a span of {trace_id}"
        );
        r.traces.get_mut(trace_id).unwrap().1 += 1;
    }
    r
}

#[test]
fn ground_truth_matches_the_files() {
    let dir = temp_dir("truth");
    let config = small_config();
    let truth = generate(&config, &dir).unwrap();
    assert!(
        !dir.join("ground_truth.json").exists(),
        "the truth stays out of the traffic folder"
    );
    let truth_path = dir.with_extension("truth.json");
    checkout_sim::write_ground_truth(&truth, &truth_path).unwrap();
    let json: Value = serde_json::from_slice(&fs::read(&truth_path).unwrap()).unwrap();
    assert_eq!(json, truth.to_json());
    let r = recount(&dir, &json);

    // Per trace: spans and logs, root name, error flag.
    let traces = json["traces"].as_object().unwrap();
    assert_eq!(traces.len(), r.traces.len());
    for (id, (spans, logs)) in &r.traces {
        let t = &traces[id];
        assert_eq!(
            (t["spans"].as_u64().unwrap(), t["logs"].as_u64().unwrap()),
            (*spans, *logs),
            "trace {id}"
        );
        let roots: Vec<&RawSpan> = r
            .spans
            .iter()
            .filter(|s| &s.trace_id == id && s.parent.is_none())
            .collect();
        assert_eq!(roots.len(), 1, "trace {id} has one root");
        assert_eq!(t["root"], roots[0].name.as_str());
        let error = r.spans.iter().any(|s| &s.trace_id == id && s.error);
        assert_eq!(t["error"], error, "trace {id}");
    }
    let totals = &json["totals"];
    assert_eq!(totals["spans"].as_u64().unwrap(), r.spans.len() as u64);
    let logfmt_lines = fs::read_to_string(dir.join("logs/order-service.log"))
        .unwrap()
        .lines()
        .count() as u64;
    assert_eq!(
        totals["logs"].as_u64().unwrap(),
        r.logs.len() as u64 + logfmt_lines
    );
    let untraced = logs_without_trace(&r) + count_logfmt_without_trace(&dir);
    assert!(untraced > 0, "health checks have no trace");
    assert_eq!(totals["logs_without_trace"].as_u64().unwrap(), untraced);

    // Every failure mode occurred.
    let broken = r
        .spans
        .iter()
        .filter(|s| s.name == "process order_confirmations" && s.parent.is_none())
        .count();
    assert!(broken > 0, "no broken propagation");
    assert!(
        r.spans
            .iter()
            .any(|s| s.name == "process order_confirmations" && s.parent.is_some())
    );
    assert!(
        r.spans
            .iter()
            .any(|s| s.name.starts_with("select") && s.attrs["db.statement"].ends_with("sku = $1")),
        "no N+1"
    );

    // Queries, recounted from the raw records.
    let query = |q: &str| -> u64 {
        let found = json["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["q"] == q);
        found.unwrap_or_else(|| panic!("no query {q}"))["count"]
            .as_u64()
            .unwrap()
    };
    let span_count = |f: &dyn Fn(&RawSpan) -> bool| r.spans.iter().filter(|s| f(s)).count() as u64;
    let log_count = |f: &dyn Fn(&Value) -> bool| r.logs.iter().filter(|(_, l)| f(l)).count() as u64;
    let dnh_spans = span_count(&|s| {
        s.attrs
            .get("decline_code")
            .is_some_and(|c| c == "do_not_honor")
    });
    let dnh_logs = log_count(&|l| l["decline_code"] == "do_not_honor");
    assert!(dnh_spans > 0);
    assert_eq!(dnh_spans, dnh_logs, "one span and one log per decline");
    assert_eq!(
        query("decline_code = \"do_not_honor\""),
        dnh_spans + dnh_logs
    );
    assert_eq!(
        query("decline_code = \"do_not_honor\" AND kind = log"),
        dnh_logs
    );
    let timeouts = span_count(&|s| s.name == "stripe_api_call" && s.error);
    assert!(timeouts > 0);
    assert_eq!(
        query("kind = span AND name = stripe_api_call AND status = ERROR"),
        timeouts
    );
    assert_eq!(
        query("exception.type = \"java.net.SocketTimeoutException\" AND kind = span"),
        timeouts
    );
    assert_eq!(
        query("kind = log AND service = payment-service AND level >= error"),
        log_count(&|l| l["status"] == "error")
    );
    assert_eq!(
        query("kind = span AND db.system = postgresql AND duration > 400ms"),
        span_count(&|s| s.attrs.contains_key("db.system") && s.duration_ns > 400_000_000)
    );
    let user = json["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["q"].as_str().unwrap().starts_with("user.id = "))
        .unwrap();
    let user_id = user["q"]
        .as_str()
        .unwrap()
        .trim_start_matches("user.id = ")
        .to_owned();
    let user_spans = span_count(&|s| s.attrs.get("user.id") == Some(&user_id));
    let user_logs =
        log_count(&|l| l["user.id"] == user_id.as_str() || l["user"]["id"] == user_id.as_str());
    let user_logfmt = fs::read_to_string(dir.join("logs/order-service.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!(" user.id={user_id}")))
        .count() as u64;
    assert!(user_spans > 0);
    assert_eq!(
        user["count"].as_u64().unwrap(),
        user_spans + user_logs + user_logfmt
    );

    // Aggregations.
    let agg = |q: &str| {
        json["aggregations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["q"] == q)
            .unwrap()
            .clone()
    };
    let per_10m = agg("kind = span AND name = stripe_api_call AND status = ERROR");
    assert_eq!(per_10m["interval"], "10m");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for s in r
        .spans
        .iter()
        .filter(|s| s.name == "stripe_api_call" && s.error)
    {
        let bucket = s.start_ns - s.start_ns.rem_euclid(600_000_000_000);
        *expected.entry(format_bucket(bucket)).or_default() += 1;
    }
    let got: BTreeMap<String, u64> = per_10m["buckets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, expected);
    assert!(got.len() >= 2, "several 10m buckets: {got:?}");
    let by_bin = agg("kind = span AND exists(decline_code)");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for s in r
        .spans
        .iter()
        .filter(|s| s.attrs.contains_key("decline_code"))
    {
        *expected.entry(s.attrs["card.bin"].clone()).or_default() += 1;
    }
    let got: BTreeMap<String, u64> = by_bin["buckets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, expected);
    let _ = fs::remove_dir_all(dir);
    let _ = fs::remove_file(truth_path);
}

fn logs_without_trace(r: &Recount) -> u64 {
    r.logs
        .iter()
        .filter(|(_, l)| {
            l.get("trace.id").is_none()
                && l.get("dd.trace_id").is_none()
                && l.get("traceId").is_none()
                && l["otelTraceID"].as_str().is_none_or(|t| t == "0")
        })
        .count() as u64
}

fn count_logfmt_without_trace(dir: &Path) -> u64 {
    fs::read_to_string(dir.join("logs/order-service.log"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" trace_id="))
        .count() as u64
}

fn format_bucket(ns: i64) -> String {
    let secs = ns / 1_000_000_000;
    let ts = jiff::Timestamp::from_second(secs).unwrap();
    ts.strftime("%Y-%m-%dT%H:%M:00Z").to_string()
}

#[test]
fn live_mode_writes_whole_lines_and_stops() {
    let dir = temp_dir("live");
    let config = SimConfig {
        traces_per_second: 200.0,
        ..SimConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || run_live(&config, &dir, stop))
    };
    let mut saw_data = false;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(150));
        for (rel, bytes) in read_tree_partial(&dir) {
            if bytes.is_empty() {
                continue;
            }
            saw_data = true;
            // A line may be in the middle of its write(2); everything before the last newline is whole.
            let whole = &bytes[..bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)];
            for line in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                if !rel.ends_with(".log") {
                    serde_json::from_slice::<Value>(line).unwrap_or_else(|e| panic!("{rel}: {e}"));
                }
            }
        }
    }
    assert!(saw_data, "live mode wrote nothing within a second");
    let asked = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let stats = handle.join().unwrap().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        asked.elapsed()
    );
    assert!(
        stats.requests > 50 && stats.spans > 0 && stats.logs > 0,
        "{stats:?}"
    );
    let tree = read_tree_partial(&dir);
    let total: u64 = tree.values().map(|b| b.len() as u64).sum();
    assert_eq!(total, stats.bytes);
    for (rel, bytes) in tree {
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{rel} ends mid-line after stop"
        );
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if !rel.ends_with(".log") {
                serde_json::from_slice::<Value>(line).unwrap_or_else(|e| panic!("{rel}: {e}"));
            }
        }
    }
    // Timestamps are now, not the configured start.
    let gateway = fs::read_to_string(dir.join("logs/api-gateway.jsonl")).unwrap();
    assert!(
        !gateway.contains("2026-11-20T14:00"),
        "live mode must use the clock"
    );
    let _ = fs::remove_dir_all(dir);
}

fn read_tree_partial(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["spans", "logs"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            out.insert(
                format!("{sub}/{}", path.file_name().unwrap().to_string_lossy()),
                fs::read(&path).unwrap(),
            );
        }
    }
    out
}

/// Live mode continuing a history: with `live_from_ns` in the past, the requests from then
/// until now are written at once (no gap between a history and live traffic).
#[test]
fn live_mode_catches_up_from_a_past_start() {
    let dir = temp_dir("live-from");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let from_ns = now_ns - 120_000_000_000;
    let config = SimConfig {
        traces_per_second: 2.0,
        live_from_ns: Some(from_ns),
        ..SimConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || run_live(&config, &dir, stop))
    };
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let stats = handle.join().unwrap().unwrap();
    // About 240 requests arrived in the two minutes before the start, far more than 0.8 s of
    // real time brings at 2 per second.
    assert!(stats.requests > 150, "{stats:?}");
    let starts: Vec<i64> = fs::read_to_string(dir.join("spans/api-gateway.jsonl"))
        .unwrap()
        .lines()
        .flat_map(|line| {
            let batch: Value = serde_json::from_str(line).unwrap();
            let spans = batch
                .pointer("/resourceSpans/0/scopeSpans/0/spans")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            spans
                .into_iter()
                .filter_map(|s| s["startTimeUnixNano"].as_str()?.parse().ok())
                .collect::<Vec<i64>>()
        })
        .collect();
    let first = *starts.iter().min().expect("gateway spans were written");
    assert!(
        first >= from_ns && first < from_ns + 10_000_000_000,
        "first request at {first}, the history ended at {from_ns}"
    );
    let _ = fs::remove_dir_all(dir);
}
