//! Data-driven golden tests: every input under `tests/fixtures/decode/<format>/{ok,err}/` is
//! decoded as `threadline ingest` would (whole document or line by line) and compared with the
//! `<input>.expected.json` beside it. `UPDATE_GOLDEN=1 cargo test -p decode --test golden`
//! rewrites the expected files; review the diff before committing.
//!
//! `ok/` inputs must decode without a raw (unparsed) record; `err/` inputs must produce at least
//! one warning or raw record, and must still keep every good record around the bad ones.

use std::path::{Path, PathBuf};

use decode::{Decoder, DecoderConfig, Output};
use model::{AttrValue, Attributes, LogRecord, Problems, Record, Span};
use serde_json::{Value, json};

/// Fixed "read time" so records without a time render the same on every run.
const READ_TIME_NS: i64 = 1_700_000_000_000_000_000;

#[test]
fn golden_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/decode");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut inputs = Vec::new();
    collect_inputs(&root, &mut inputs);
    inputs.sort();
    assert!(!inputs.is_empty(), "no fixtures under {}", root.display());

    let mut failures = Vec::new();
    for input in &inputs {
        let rel = input
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let expect_ok = rel.split('/').nth(1) == Some("ok");
        let actual = render_file(input, &rel);
        let n_raw = actual["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["problems"]
                    .as_array()
                    .is_some_and(|p| p.contains(&json!("parse_error")))
            })
            .count();
        let n_warnings = actual["warnings"].as_array().unwrap().len();
        if expect_ok && n_raw > 0 {
            failures.push(format!("{rel}: {n_raw} line(s) were not understood"));
        }
        if !expect_ok && n_raw + n_warnings == 0 {
            failures.push(format!(
                "{rel}: an err/ fixture produced no warning and no raw record"
            ));
        }
        let actual_text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        let expected_path = expected_path(input);
        if update {
            std::fs::write(&expected_path, &actual_text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual_text => {}
            Ok(expected) => failures.push(format!(
                "{rel}: output differs from {}\n{}",
                expected_path.display(),
                first_difference(&expected, &actual_text)
            )),
            Err(_) => failures.push(format!(
                "{rel}: no {} (run with UPDATE_GOLDEN=1)",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn collect_inputs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_inputs(&path, out);
        } else if !path.to_string_lossy().ends_with(".expected.json")
            && path
                .file_name()
                .is_some_and(|n| n != "README.md" && n != "LICENSE")
        {
            out.push(path);
        }
    }
}

fn expected_path(input: &Path) -> PathBuf {
    let mut name = input.file_name().unwrap().to_os_string();
    name.push(".expected.json");
    input.with_file_name(name)
}

fn render_file(path: &Path, rel: &str) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let decoder = Decoder::new(DecoderConfig {
        service: Some(stem),
        ..DecoderConfig::default()
    })
    .unwrap();
    let mut out = Output::default();
    decoder.decode_all(&bytes, rel, READ_TIME_NS, &mut out);
    json!({
        "records": out.records.iter().map(render_record).collect::<Vec<_>>(),
        "warnings": out.warnings.iter().map(|w| json!({"offset": w.offset, "message": w.message})).collect::<Vec<_>>(),
    })
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("  line {}:\n  expected: {e}\n  actual:   {a}", i + 1);
        }
    }
    format!(
        "  expected {} lines, got {}",
        expected.lines().count(),
        actual.lines().count()
    )
}

fn render_record(record: &Record) -> Value {
    match record {
        Record::Span(span) => render_span(span),
        Record::Log(log) => render_log(log),
    }
}

fn render_span(s: &Span) -> Value {
    json!({
        "kind": "span",
        "trace_id": s.trace_id.map(|id| id.to_string()),
        "span_id": s.span_id.map(|id| id.to_string()),
        "parent_span_id": s.parent_span_id.map(|id| id.to_string()),
        "service": s.service,
        "name": s.name,
        "span_kind": s.kind.as_str(),
        "start": decode::time::format_rfc3339_ns(s.start_ns),
        "duration_ns": s.duration_ns(),
        "status": {"code": s.status.code.as_str(), "message": s.status.message},
        "attributes": render_attrs(&s.attributes),
        "resource": render_attrs(&s.resource),
        "scope": {"name": s.scope.name, "version": s.scope.version, "attributes": render_attrs(&s.scope.attributes)},
        "events": s.events.iter().map(|e| json!({
            "name": e.name,
            "time": decode::time::format_rfc3339_ns(e.time_ns),
            "attributes": render_attrs(&e.attributes),
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| json!({
            "trace_id": l.trace_id.map(|id| id.to_string()),
            "span_id": l.span_id.map(|id| id.to_string()),
            "trace_state": l.trace_state,
            "attributes": render_attrs(&l.attributes),
            "flags": l.flags,
        })).collect::<Vec<_>>(),
        "trace_state": s.trace_state,
        "flags": s.flags,
        "origin": s.origin.as_ref().map(|o| json!({"source": o.source, "offset": o.offset})),
    })
}

fn render_log(l: &LogRecord) -> Value {
    json!({
        "kind": "log",
        "time": decode::time::format_rfc3339_ns(l.time_ns),
        "observed_time": l.observed_time_ns.map(decode::time::format_rfc3339_ns),
        "service": l.service,
        "severity_number": l.severity_number,
        "severity_text": l.severity_text,
        "level": l.level.map(|lv| lv.as_str()),
        "body": l.body,
        "attributes": render_attrs(&l.attributes),
        "resource": render_attrs(&l.resource),
        "scope": {"name": l.scope.name, "version": l.scope.version, "attributes": render_attrs(&l.scope.attributes)},
        "event_name": l.event_name,
        "trace_id": l.trace_id.map(|t| t.to_string()),
        "trace_id_low64_only": l.trace_id.is_some_and(|t| t.full().is_none()),
        "span_id": l.span_id.map(|id| id.to_string()),
        "flags": l.flags,
        "origin": l.origin.as_ref().map(|o| json!({"source": o.source, "offset": o.offset})),
        "problems": if l.problems == Problems::empty() { Vec::new() } else { l.problems.names() },
    })
}

fn render_attrs(attrs: &Attributes) -> Value {
    Value::Array(
        attrs
            .iter()
            .map(|kv| json!([kv.key, render_value(&kv.value)]))
            .collect(),
    )
}

/// Typed: the type is part of the expected output, so a decoder that turns an int into a string
/// fails the golden test.
fn render_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({"str": s}),
        AttrValue::Bool(b) => json!({"bool": b}),
        AttrValue::Int(i) => json!({"int": i}),
        AttrValue::Float(f) if f.is_finite() => json!({"float": f}),
        AttrValue::Float(f) => json!({"float": f.to_string()}),
        AttrValue::Bytes(b) => {
            json!({"bytes": AttrValue::Bytes(b.clone()).to_text().trim_matches('"')})
        }
        AttrValue::Array(values) => {
            json!({"array": values.iter().map(render_value).collect::<Vec<_>>()})
        }
        AttrValue::Map(map) => json!({"map": render_attrs(map)}),
    }
}
