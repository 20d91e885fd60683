//! Freshness: how long after a line is appended to a tailed file it is returned by
//! `/api/v1/search`, with `threadline serve` at its defaults (no config file).
//!
//! ```sh
//! cargo build --release && cargo run --release -p cli --example freshness -- [LINES [COMMIT_INTERVAL]]
//! ```
//!
//! Appends LINES (default 300) lines with unique ids at random intervals (0–150 ms) to a file that
//! a real `threadline serve` child process tails, polls the API every 10 ms, and prints the
//! p50/p99/max delay from the write to the first search that returns the line. The binary is
//! `target/<profile>/threadline` beside this example, or `$THREADLINE_BIN`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{ServeCommand, Workspace, append, id_counts, line, search_all};

/// How often the API is asked.
const POLL: Duration = Duration::from_millis(10);

fn main() {
    let n_lines: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let commit_interval = std::env::args().nth(2);
    let bin = std::env::var_os("THREADLINE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(|examples| examples.parent())
                .map(|profile| profile.join("threadline"))
                .expect("target/<profile>/examples/freshness")
        });
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --release) or set THREADLINE_BIN",
        bin.display()
    );
    let ws = Workspace::new(&std::env::temp_dir().join("threadline-freshness"));
    let log = ws.logs().join("app.log");
    // One line before the start, so the file exists and the tailer follows it.
    append(&log).write_all(line("warmup").as_bytes()).unwrap();
    let mut cmd = ServeCommand::new(&bin, ws.index()).source(&ws.logs().join("*.log"));
    if let Some(interval) = &commit_interval {
        cmd = cmd.arg("--commit-interval").arg(interval);
    }
    let serve = cmd.start();
    let url = serve.url.clone();
    while id_counts(&search_all(&url, "")).is_empty() {
        std::thread::sleep(POLL);
    }

    let written: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || {
            let mut file = append(&log);
            for i in 0..n_lines {
                std::thread::sleep(Duration::from_millis(fastrand::u64(0..150)));
                let id = format!("fresh-{i}");
                let bytes = line(&id);
                // The time is taken just before the write: the delay includes the write.
                written.lock().unwrap().insert(id, Instant::now());
                file.write_all(bytes.as_bytes()).unwrap();
            }
        })
    };

    let mut delays: Vec<Duration> = Vec::with_capacity(n_lines);
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(n_lines as u64 + 60);
    while seen.len() < n_lines && Instant::now() < deadline {
        let found = id_counts(&search_all(&url, ""));
        let now = Instant::now();
        let written = written.lock().unwrap();
        for id in found.keys() {
            if let Some(at) = written.get(id)
                && seen.insert(id.clone())
            {
                delays.push(now.duration_since(*at));
            }
        }
        drop(written);
        std::thread::sleep(POLL);
    }
    writer.join().unwrap();
    serve.stop();
    assert_eq!(delays.len(), n_lines, "some lines were never found");

    delays.sort();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "freshness over {n_lines} lines (commit_interval {}, other settings default; poll every {} ms):",
        commit_interval.as_deref().unwrap_or("500ms (default)"),
        POLL.as_millis()
    );
    println!(
        "  p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        ms(at(0.50)),
        ms(at(0.90)),
        ms(at(0.99)),
        ms(*delays.last().unwrap())
    );
}
