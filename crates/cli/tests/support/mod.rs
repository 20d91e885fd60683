//! A harness for running the real `threadline serve` on real files: start it on a free port
//! (it prints the address it bound), stop it gracefully or kill it, write lines with unique ids,
//! and check through `/api/v1/search` that every id is indexed exactly once.
//!
//! Shared by `serve_e2e.rs`, `crash.rs` and the `freshness` example; not every user needs every
//! helper.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Ids are written as `L~<id>~` so they can be found in any record the line becomes (a
/// decoded body, an attribute, or the raw text of a line that did not decode).
pub const ID_OPEN: &str = "L~";
pub const ID_CLOSE: char = '~';

/// A `threadline serve` child process.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

/// How to start a server: the binary, the index, and the rest of the arguments.
#[derive(Debug, Clone)]
pub struct ServeCommand {
    pub bin: PathBuf,
    pub index: PathBuf,
    pub args: Vec<String>,
    /// Run under this open-file limit (`ulimit -n`).
    pub nofile: Option<u64>,
}

/// A test's folder: logs, index and config, removed at the end.
#[derive(Debug)]
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A folder on the target's disk (not tmpfs): inode reuse behaves as on a real server.
    pub fn new(tmp_root: &Path) -> Workspace {
        std::fs::create_dir_all(tmp_root).unwrap();
        Workspace {
            dir: tempfile::tempdir_in(tmp_root).unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The logs folder, created.
    pub fn logs(&self) -> PathBuf {
        let logs = self.path("logs");
        std::fs::create_dir_all(&logs).unwrap();
        logs
    }

    pub fn index(&self) -> PathBuf {
        self.path("index")
    }

    /// Writes `config.toml` and returns its path.
    pub fn config(&self, text: &str) -> PathBuf {
        let path = self.path("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Fast settings for tests: quick sweeps, commits and rotation waits.
pub const FAST_CONFIG: &str = r#"
[index]
commit_interval = "100ms"
writer_memory = "32MiB"
writer_threads = 1

[tail]
sweep_interval = "200ms"
rotate_wait = "1s"
"#;

impl ServeCommand {
    pub fn new(bin: impl Into<PathBuf>, index: impl Into<PathBuf>) -> ServeCommand {
        ServeCommand {
            bin: bin.into(),
            index: index.into(),
            args: Vec::new(),
            nofile: None,
        }
    }

    /// Runs the server with at most `n` open files (soft and hard limit).
    pub fn nofile(mut self, n: u64) -> ServeCommand {
        self.nofile = Some(n);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> ServeCommand {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    /// `--source GLOB`.
    pub fn source(self, glob: &Path) -> ServeCommand {
        self.arg("--source").arg(glob)
    }

    /// Starts the server on a free port and waits until it listens.
    pub fn start(&self) -> Serve {
        let mut command = match self.nofile {
            None => Command::new(&self.bin),
            Some(n) => {
                // The shell sets the limit and execs the server (same pid).
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&self.bin);
                sh
            }
        };
        command
            .arg("--index")
            .arg(&self.index)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(&self.args);
        Serve::spawn(command)
    }
}

impl Serve {
    /// Runs `command` (a `serve` or a `demo`) and waits until it prints `listening on URL`.
    pub fn spawn(mut command: Command) -> Serve {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        {
            // Keep draining stderr so the server never blocks on a full pipe.
            let pipe = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = url_tx.send(url.trim().to_owned());
                    }
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        match url_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Serve { child, url, stderr },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "threadline serve did not start:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR` of the OTLP/gRPC receiver (`--otlp-grpc-listen`), from the line the server
    /// prints before `listening on`.
    pub fn grpc_endpoint(&self) -> String {
        let stderr = self.stderr();
        let addr = stderr
            .lines()
            .find_map(|l| l.strip_prefix("receiving OTLP/gRPC on "))
            .unwrap_or_else(|| panic!("no OTLP/gRPC listener announced:\n{stderr}"));
        format!("http://{}", addr.trim())
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, and waits for a clean exit (the final commit).
    pub fn stop(mut self) -> String {
        signal(self.pid(), "TERM");
        let status = wait_timeout(&mut self.child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("serve did not stop on SIGTERM:\n{}", self.stderr()));
        // Let the stderr thread take the last lines.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            status.success(),
            "serve failed ({status}):\n{}",
            self.stderr()
        );
        self.stderr()
    }

    /// SIGKILL: nothing after the last commit survives. Returns what it wrote to stderr.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the stderr thread take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        self.stderr()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Resident anonymous memory now (heap, stacks; not mapped files), in KiB (`RssAnon`).
    pub fn rss_anon_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Every search hit of `q` (all pages).
    pub fn search_all(&self, q: &str) -> Vec<Value> {
        search_all(&self.url, q)
    }

    /// Waits until every id of `expected` is searchable, then lets the pipeline settle and
    /// returns how often each id was found.
    pub fn wait_for_ids(&self, expected: &BTreeSet<String>, timeout: Duration) -> IdCounts {
        wait_for_ids(&self.url, expected, timeout)
    }
}

/// A child process killed when the guard is dropped, so a failed assertion never leaves a
/// server (or a `threadline tail`) running after the test.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal through `kill(1)` (the workspace forbids `unsafe`, so no `libc::kill`).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    })
}

/// GET `url` with query parameters; the status and the JSON body.
pub fn get_json(url: &str, query: &[(&str, &str)]) -> Result<(u16, Value), String> {
    let response = client()
        .get(url)
        .query(query)
        .send()
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().map_err(|e| e.to_string())?;
    let json = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    Ok((status, json))
}

/// GET `url`; the body of a 200 answer.
pub fn get_text(url: &str) -> Result<String, String> {
    let response = client().get(url).send().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{url} answered {status}: {body}"));
    }
    Ok(body)
}

/// Every hit of `q`, following cursors.
pub fn search_all(url: &str, q: &str) -> Vec<Value> {
    let mut hits = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = get_json(
            &format!("{url}/api/v1/search"),
            &[("q", q), ("limit", "10000"), ("cursor", &cursor)],
        )
        .unwrap_or_else(|e| panic!("search failed: {e}"));
        assert_eq!(status, 200, "search answered {status}: {page}");
        let page_hits = page["hits"].as_array().cloned().unwrap_or_default();
        let n = page_hits.len();
        hits.extend(page_hits);
        match page["cursor"].as_str() {
            Some(next) if n > 0 => cursor = next.to_owned(),
            _ => return hits,
        }
    }
}

/// How many records hold each id.
pub type IdCounts = BTreeMap<String, usize>;

/// The ids in one record (each counted once per record).
pub fn ids_in(hit: &Value) -> BTreeSet<String> {
    let text = hit.to_string();
    let mut ids = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(ID_OPEN) {
        rest = &rest[start + ID_OPEN.len()..];
        match rest.find(ID_CLOSE) {
            Some(end) => {
                ids.insert(rest[..end].to_owned());
                rest = &rest[end + 1..];
            }
            None => break,
        }
    }
    ids
}

pub fn id_counts(hits: &[Value]) -> IdCounts {
    let mut counts = IdCounts::new();
    for hit in hits {
        for id in ids_in(hit) {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// Polls until every expected id is searchable (or `timeout`), waits a little longer for any
/// duplicate still on its way, and returns the counts.
pub fn wait_for_ids(url: &str, expected: &BTreeSet<String>, timeout: Duration) -> IdCounts {
    let deadline = Instant::now() + timeout;
    loop {
        let counts = id_counts(&search_all(url, ""));
        let all = expected.iter().all(|id| counts.contains_key(id));
        if all || Instant::now() > deadline {
            // A late duplicate would come with the next sweep and commit.
            std::thread::sleep(Duration::from_millis(700));
            return id_counts(&search_all(url, ""));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every expected id exactly once and nothing else, with a readable report otherwise.
pub fn assert_exactly_once(counts: &IdCounts, expected: &BTreeSet<String>) {
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let unexpected: Vec<&String> = counts.keys().filter(|id| !expected.contains(*id)).collect();
    if missing.is_empty() && twice.is_empty() && unexpected.is_empty() {
        return;
    }
    let show = |v: &[String]| {
        let head: Vec<&str> = v.iter().take(12).map(String::as_str).collect();
        let more = v.len().saturating_sub(12);
        if more > 0 {
            format!("{} (+{more} more)", head.join(", "))
        } else {
            head.join(", ")
        }
    };
    panic!(
        "not exactly once ({} expected, {} found):\n  missing ({}): {}\n  more than once ({}): {}\n  unexpected ({}): {}",
        expected.len(),
        counts.len(),
        missing.len(),
        show(&missing.iter().map(|s| (*s).clone()).collect::<Vec<_>>()),
        twice.len(),
        show(
            &twice
                .iter()
                .map(|(id, n)| format!("{id}×{n}"))
                .collect::<Vec<_>>()
        ),
        unexpected.len(),
        show(&unexpected.iter().map(|s| (*s).clone()).collect::<Vec<_>>()),
    );
}

/// A JSON log line carrying `id`, with a newline.
pub fn line(id: &str) -> String {
    format!("{{\"message\":\"line {ID_OPEN}{id}{ID_CLOSE}\",\"level\":\"info\"}}\n")
}

/// Appends lines `prefix-0..n` to `path` (O_APPEND, one write each) and returns their ids.
pub fn append_lines(path: &Path, prefix: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    let mut file = append(path);
    range
        .map(|i| {
            let id = format!("{prefix}-{i}");
            file.write_all(line(&id).as_bytes()).unwrap();
            id
        })
        .collect()
}

/// Opens `path` for appending, creating it.
pub fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The checkpoints stored in the index's last commit (`meta.json` payload).
pub fn committed_checkpoints(index: &Path) -> serde_json::Map<String, Value> {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(index.join("meta.json")).unwrap()).unwrap();
    let payload: Value = meta["payload"]
        .as_str()
        .map(|p| serde_json::from_str(p).unwrap())
        .unwrap_or(Value::Null);
    payload["checkpoints"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Runs the binary to completion (killed after `timeout`): its exit status, stdout and stderr.
pub fn run_threadline(
    bin: &Path,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
) -> std::process::Output {
    let child = Command::new(bin)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            signal(pid, "KILL");
        }
    });
    let output = child.wait_with_output().unwrap();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    output
}

/// A small tmpfs mounted for one test (needs root), unmounted on drop: a disk that fills up.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None`, with the reason printed, where mounting is not permitted.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a {size} tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `filler` until the file system refuses another byte.
    pub fn fill(&self, filler: &Path) {
        let mut file = File::create(filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&[7u8]).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// One OTLP/JSON `ExportTraceServiceRequest` on one line (as the Collector's file exporter
/// writes it), with a span per id (named after it, so search finds it), each span padded with
/// an attribute of `pad` bytes. With a newline.
pub fn otlp_traces_line(ids: &[String], pad: usize) -> String {
    let padding = "p".repeat(pad);
    let spans: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"{:016x}","name":"span {ID_OPEN}{id}{ID_CLOSE}","kind":1,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000100000000","attributes":[{{"key":"pad","value":{{"stringValue":"{padding}"}}}}]}}"#,
                i + 1
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"big"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    ) + "\n"
}

/// A port nobody listens on (bound, read and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
