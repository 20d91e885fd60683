//! The binary's own logs: human lines by default, one JSON object per line with
//! `--log-format json` (what log shippers need), and `RUST_LOG` filters.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::KillOnDrop;

/// Starts `serve` with `args` on a free port, waits until it listens, stops it with SIGTERM,
/// and returns everything it wrote to stderr.
fn serve_and_stop(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.log"),
        "{\"time\":\"2026-12-03T10:00:00Z\",\"level\":\"info\",\"message\":\"hello\"}\n",
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_threadline"));
    command
        .arg("serve")
        .arg("--index")
        .arg(dir.path().join("index"))
        .args(["--listen", "127.0.0.1:0", "--source"])
        .arg(dir.path().join("*.log"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = KillOnDrop(command.spawn().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if line.contains("listening on http://") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.recv_timeout(Duration::from_millis(100)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        assert!(child.try_wait().unwrap().is_none(), "serve exited early");
    }
    // Let the tailer read the file before stopping.
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap()
}

#[test]
fn json_logs_are_one_object_per_line() {
    let stderr = serve_and_stop(&["--log-format", "json"], &[]);
    let events: Vec<Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}\n{stderr}"))
        })
        .collect();
    for event in &events {
        assert!(event["timestamp"].is_string(), "{event}");
        assert!(event["level"].is_string(), "{event}");
        assert!(event["message"].is_string(), "{event}");
    }
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("listening on http://127.0.0.1:")),
        "{stderr}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("tailing ")),
        "{stderr}"
    );
    assert!(
        messages.contains(&"stopped; 1 records in the index"),
        "{stderr}"
    );
}

#[test]
fn text_logs_are_human_and_rust_log_filters_them() {
    let stderr = serve_and_stop(&[], &[]);
    assert!(
        stderr.contains("\nlistening on http://127.0.0.1:"),
        "{stderr}"
    );
    let stopped = stderr
        .lines()
        .find(|l| l.ends_with("stopped; 1 records in the index"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        stopped.contains(" INFO "),
        "time and level first: {stopped}"
    );

    // RUST_LOG=warn hides the info events; the banner for the person stays.
    let quiet = serve_and_stop(&[], &[("RUST_LOG", "warn")]);
    assert!(quiet.contains("listening on http://"), "{quiet}");
    assert!(!quiet.contains("stopped;"), "{quiet}");
}
