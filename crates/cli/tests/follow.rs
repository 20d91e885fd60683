//! `threadline tail`: follows a running server's live stream and prints tailed log lines and
//! late spans as they land, across a server restart, each exactly once; `--json` prints one
//! object per record.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{KillOnDrop, free_port};

/// `threadline serve` on `port`, tailing `dir/*.log` into `dir/index`; returns once it listens.
fn serve(dir: &Path, port: u16) -> KillOnDrop {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_threadline"))
            .arg("serve")
            .arg("--index")
            .arg(dir.join("index"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--source"])
            .arg(dir.join("*.log"))
            .args(["--commit-interval", "100ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if line.starts_with("listening on ") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn stop(mut child: KillOnDrop) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

fn append(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn log_line(message: &str) -> String {
    format!(
        "{{\"time\":\"{}\",\"level\":\"warn\",\"service\":\"checkout\",\"message\":\"{message}\"}}",
        jiff::Timestamp::now()
    )
}

/// Posts one span that started 10 s ago (as an exporter sends it after the span ended).
fn post_late_span(port: u16, name: &str, span_byte: u8) {
    let start = jiff::Timestamp::now().as_nanosecond() - 10_000_000_000;
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": format!("{span_byte:016x}"),
            "name": name,
            "kind": 2,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + 5_000_000).to_string(),
        }]}]
    }]});
    let reply = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/traces"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
}

/// Collects stdout lines of `tail` until `done` holds for them.
fn read_until(rx: &mpsc::Receiver<String>, seen: &mut Vec<Value>, done: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("not seen in time; got {seen:#?}"));
        seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
}

fn has(seen: &[Value], text: &str) -> bool {
    seen.iter()
        .any(|r| r["body"].as_str() == Some(text) || r["name"].as_str() == Some(text))
}

fn count(seen: &[Value], text: &str) -> usize {
    seen.iter()
        .filter(|r| r["body"].as_str() == Some(text) || r["name"].as_str() == Some(text))
        .count()
}

#[test]
fn tail_follows_lines_and_late_spans_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &log_line("written before the tail"));
    let port = free_port();
    let server = serve(dir.path(), port);
    // Indexed before the tail opens: not printed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/v1/search?limit=1"))
            .unwrap()
            .text()
            .unwrap();
        let reply: Value = serde_json::from_str(&body).unwrap();
        if reply["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the first line was not indexed");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut tail = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_threadline"))
            .args([
                "tail",
                "--json",
                "--server",
                &format!("http://127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Let the stream open before anything new lands.
    std::thread::sleep(Duration::from_millis(1500));

    let mut seen = Vec::new();
    append(&log, &log_line("first line"));
    post_late_span(port, "late span one", 1);
    read_until(&rx, &mut seen, |s| {
        has(s, "first line") && has(s, "late span one")
    });

    // The server restarts; what lands meanwhile and after shows up once the tail reconnects.
    stop(server);
    append(&log, &log_line("written while the server was down"));
    let server = serve(dir.path(), port);
    append(&log, &log_line("after the restart"));
    post_late_span(port, "late span two", 2);
    read_until(&rx, &mut seen, |s| {
        has(s, "written while the server was down")
            && has(s, "after the restart")
            && has(s, "late span two")
    });
    std::thread::sleep(Duration::from_millis(1000));
    while let Ok(line) = rx.try_recv() {
        seen.push(serde_json::from_str(&line).unwrap());
    }
    assert_eq!(count(&seen, "written before the tail"), 0, "{seen:#?}");
    for text in [
        "first line",
        "late span one",
        "written while the server was down",
        "after the restart",
        "late span two",
    ] {
        assert_eq!(count(&seen, text), 1, "{text}: {seen:#?}");
    }
    let _ = tail.kill();
    let _ = tail.wait();
    stop(server);
}

#[test]
fn tail_refuses_a_bad_query_and_an_unreachable_server_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_threadline"))
        .args(["tail", "service = ", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid query"));
    let out = Command::new(env!("CARGO_BIN_EXE_threadline"))
        .args([
            "tail",
            "--server",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
