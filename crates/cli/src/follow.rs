//! `threadline tail QUERY`: prints matching records as they land, like `kubectl logs -f` or
//! `logcli --tail`. With `--server URL` it follows the server's live stream (server-sent events
//! in arrival order) and, when the connection drops (a restart, a network blip), reconnects with
//! `Last-Event-ID`, so nothing is lost or printed twice. Without it, it follows a local index
//! directly, polling for what was committed since.

use std::io::{BufReader, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::{Context as _, bail};
use index::Index;
use serde_json::Value;

use crate::{TailArgs, timespec};

/// How often a local index is polled.
const LOCAL_POLL: Duration = Duration::from_millis(500);
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Records asked for per poll of a local index.
const LOCAL_BATCH: usize = 500;

pub fn command(index_dir: &Path, args: TailArgs) -> anyhow::Result<ExitCode> {
    // A bad query is an error now, not after the first connection.
    index::query::parse(&args.query).map_err(|e| anyhow::anyhow!("invalid query: {e}"))?;
    let printer = Printer {
        json: args.json,
        color: !args.json && crate::term::Term::stdout().color,
    };
    match &args.server {
        Some(url) => follow_server(url, &args, &printer),
        None => follow_local(index_dir, &args.query, &printer),
    }
}

/// Follows `GET {url}/api/v1/tail` until interrupted.
fn follow_server(url: &str, args: &TailArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        // A stream has no end; keep-alive comments arrive every ~15 s.
        .timeout(None)
        .build()
        .context("cannot build the HTTP client")?;
    let endpoint = format!("{}/api/v1/tail", url.trim_end_matches('/'));
    let token = std::env::var("THREADLINE_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let mut last_id: Option<u64> = None;
    let mut backoff = Duration::from_millis(200);
    let mut connected_once = false;
    loop {
        let mut request = client.get(&endpoint).query(&[("q", args.query.as_str())]);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = match request.send() {
            Ok(response) => response,
            Err(e) => {
                if !connected_once {
                    bail!("cannot reach {endpoint}: {e}");
                }
                eprintln!("threadline tail: {url} unreachable ({e}); retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let status = response.status();
        if status.is_client_error() {
            let body = response.text().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            bail!("{endpoint}: {status}: {message}");
        }
        if !status.is_success() {
            eprintln!("threadline tail: {endpoint} answered {status}; retrying");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        if connected_once {
            eprintln!("threadline tail: reconnected");
        }
        connected_once = true;
        backoff = Duration::from_millis(200);
        read_events(BufReader::new(response), printer, &mut last_id);
        eprintln!("threadline tail: the stream ended; reconnecting");
    }
}

/// Reads server-sent events until the stream ends, printing records and keeping the last id.
fn read_events(reader: impl std::io::BufRead, printer: &Printer, last_id: &mut Option<u64>) {
    let (mut event, mut id, mut data) = (String::new(), None, String::new());
    for line in reader.lines() {
        let Ok(line) = line else { return };
        if line.is_empty() {
            if !data.is_empty() {
                match event.as_str() {
                    "error" => eprintln!("threadline tail: the server says: {data}"),
                    _ => {
                        if let Ok(record) = serde_json::from_str::<Value>(&data) {
                            printer.print(&record);
                        }
                    }
                }
                if id.is_some() {
                    *last_id = id;
                }
            }
            (event, id, data) = (String::new(), None, String::new());
            continue;
        }
        if line.starts_with(':') {
            continue; // a keep-alive comment
        }
        let (field, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_owned(),
            "id" => id = value.trim().parse().ok(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
}

/// Polls a local index for what was committed after the tail started.
fn follow_local(index_dir: &Path, query: &str, printer: &Printer) -> anyhow::Result<ExitCode> {
    let index = match Index::open(index_dir) {
        Ok(index) => index,
        Err(index::Error::NoIndex { .. }) => bail!(
            "no index at {} (pass --index DIR, or --server URL to follow a running server)",
            index_dir.display()
        ),
        Err(e) => return Err(crate::commands::cannot_open(index_dir, e)),
    };
    let expr = index::query::parse(query).map_err(|e| anyhow::anyhow!("invalid query: {e}"))?;
    let mut after = index.last_seq()?;
    loop {
        std::thread::sleep(LOCAL_POLL);
        // Another process (serve) writes this index: see its latest commit.
        index.reload()?;
        let compiled = index::query::compile(&expr, index.fields(), timespec::now_ns())
            .map_err(|e| anyhow::anyhow!("invalid query: {e}"))?;
        let arrivals = index.arrivals_compiled(compiled, after, LOCAL_BATCH)?;
        for (seq, record) in &arrivals.hits {
            printer.print(record);
            after = Some(after.map_or(*seq, |a| a.max(*seq)));
        }
    }
}

/// One line per record: time, service, level or span, text; or the record as JSON.
struct Printer {
    json: bool,
    color: bool,
}

impl Printer {
    fn print(&self, record: &Value) {
        let mut out = std::io::stdout().lock();
        let line = if self.json {
            record.to_string()
        } else {
            self.human(record)
        };
        // A closed pipe (`| head`) ends the command quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    }

    fn human(&self, record: &Value) -> String {
        let kind = record["kind"].as_str().unwrap_or("log");
        let time = record["start"]
            .as_str()
            .or(record["time"].as_str())
            .unwrap_or("");
        let service = record["service"].as_str().unwrap_or("-");
        let service = paint(self.color, service_color(service), service);
        let trace = record["trace_id"].as_str().unwrap_or("-");
        let text = record_text(record, self.color);
        let text = if kind == "span" {
            format!("span {text}")
        } else {
            text
        };
        format!("{time} {service} {trace} {text}")
    }
}

/// What a record says, for one line: a span's name, duration and ERROR (OTel's default UNSET
/// and OK show nothing, as in Jaeger), or a log's level (padded to 5) and body; control
/// characters dropped. Shared by `tail` and `search`.
pub(crate) fn record_text(record: &Value, color: bool) -> String {
    if record["kind"].as_str() == Some("span") {
        let duration = record["duration_ns"]
            .as_i64()
            .map(crate::waterfall::format_duration)
            .unwrap_or_default();
        let status = match record["status"]["code"].as_str() {
            Some("ERROR") => paint(color, AnsiColor::Red, " ERROR"),
            _ => String::new(),
        };
        format!(
            "{} {duration}{status}",
            clean(record["name"].as_str().unwrap_or(""))
        )
    } else {
        let level = record["level"].as_str().unwrap_or("-");
        // Padded before it is painted: escape codes are not columns.
        let padded = format!("{level:<5}");
        let level = match level {
            "error" | "fatal" => paint(color, AnsiColor::Red, &padded),
            "warn" => paint(color, AnsiColor::Yellow, &padded),
            "debug" | "trace" => paint(color, AnsiColor::BrightBlack, &padded),
            _ => padded,
        };
        format!("{level} {}", clean(record["body"].as_str().unwrap_or("")))
    }
}

/// `text` in `color` when `on`.
pub(crate) fn paint(on: bool, color: AnsiColor, text: &str) -> String {
    if !on {
        return text.to_owned();
    }
    let style = Style::new().fg_color(Some(color.into()));
    format!("{style}{text}{style:#}")
}

/// The same service always gets the same color.
pub(crate) fn service_color(service: &str) -> AnsiColor {
    const COLORS: [AnsiColor; 6] = [
        AnsiColor::Cyan,
        AnsiColor::Green,
        AnsiColor::Magenta,
        AnsiColor::Blue,
        AnsiColor::Yellow,
        AnsiColor::BrightCyan,
    ];
    let hash = service
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    COLORS[hash as usize % COLORS.len()]
}

/// Control characters (a log body may hold escape sequences) are not printed.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
