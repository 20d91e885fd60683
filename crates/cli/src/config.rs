//! `threadline.toml`: what `serve` tails, where it indexes, how it commits and what it listens
//! on. Every key has a default (the documented `config/threadline.toml` holds exactly these), an
//! unknown key is an error, and every error names the file, the line and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Deserializer};

use crate::timespec;

/// The whole configuration of `threadline serve`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub index: IndexSection,
    pub server: ServerSection,
    pub tail: TailSection,
    pub retention: RetentionSection,
    /// `[[source]]` tables: groups of files, each with its own service name and patterns.
    #[serde(rename = "source")]
    pub sources: Vec<SourceSection>,
}

/// `[index]`: where and how records are written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexSection {
    pub dir: PathBuf,
    #[serde(deserialize_with = "duration")]
    pub commit_interval: Duration,
    #[serde(deserialize_with = "byte_size")]
    pub writer_memory: usize,
    pub writer_threads: usize,
    /// Batches waiting for the writer (from the tailer and the OTLP receiver together).
    pub queue_capacity: usize,
}

/// `[server]`: the HTTP API and the OTLP receiver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub listen: SocketAddr,
    /// A second listener with the same routes, for OTLP exporters' default port.
    pub otlp_listen: Option<SocketAddr>,
    /// The OTLP/gRPC receiver's listener (the standard port is 4317); off when unset.
    pub otlp_grpc_listen: Option<SocketAddr>,
    pub read_token: Option<String>,
    pub ingest_token: Option<String>,
    pub cors_origins: Vec<String>,
    #[serde(deserialize_with = "byte_size")]
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    pub max_query_clauses: usize,
    pub max_regex_len: usize,
    pub max_tail_streams: usize,
    #[serde(deserialize_with = "duration")]
    pub tail_poll_interval: Duration,
    pub max_concurrent_ingest: usize,
    /// Concurrent requests per OTLP/gRPC connection.
    pub max_grpc_streams: u32,
    pub retry_after_s: u64,
    /// How long an acknowledged OTLP request is remembered, so that its retry is not indexed
    /// twice; "0s" turns it off.
    #[serde(deserialize_with = "duration")]
    pub retry_window: Duration,
}

/// `[tail]`: how files are followed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailSection {
    #[serde(deserialize_with = "duration")]
    pub sweep_interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub rotate_wait: Duration,
    #[serde(deserialize_with = "byte_size")]
    pub max_line_bytes: usize,
    /// OTLP/JSON lines (Collector file-exporter batches) are read whole up to this size.
    #[serde(deserialize_with = "byte_size")]
    pub max_otlp_line_bytes: usize,
    /// Files held open at once; idle ones are closed and reopened when they change.
    pub max_open_files: usize,
    #[serde(deserialize_with = "byte_size")]
    pub read_chunk: usize,
    #[serde(deserialize_with = "byte_size")]
    pub batch_bytes: usize,
    /// Tail batches read ahead of the decoder.
    pub queue_capacity: usize,
    pub backfill_gz: bool,
    pub notify: bool,
}

/// `[retention]`: what the index keeps; off by default (everything is kept).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Delete records whose own timestamp is older than this.
    #[serde(deserialize_with = "optional_duration")]
    pub max_age: Option<Duration>,
    /// Then delete the oldest records while the index is bigger than this.
    #[serde(deserialize_with = "optional_byte_size")]
    pub max_size: Option<usize>,
    #[serde(deserialize_with = "duration")]
    pub check_interval: Duration,
}

/// One `[[source]]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSection {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub service: Option<String>,
    pub patterns: Vec<String>,
}

impl Default for IndexSection {
    fn default() -> Self {
        IndexSection {
            dir: PathBuf::from("./data/index"),
            commit_interval: Duration::from_millis(500),
            writer_memory: 128 << 20,
            writer_threads: 2,
            queue_capacity: 8,
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        let server = server::ServerConfig::default();
        ServerSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 7740)),
            otlp_listen: None,
            otlp_grpc_listen: None,
            read_token: server.read_token,
            ingest_token: server.ingest_token,
            cors_origins: server.cors_origins,
            max_body_bytes: server.max_body_bytes,
            request_timeout: server.request_timeout,
            max_query_clauses: server.max_query_clauses,
            max_regex_len: server.max_regex_len,
            max_tail_streams: server.max_tail_streams,
            tail_poll_interval: server.tail_poll_interval,
            max_concurrent_ingest: server.max_concurrent_ingest,
            max_grpc_streams: server.max_grpc_streams,
            retry_after_s: server.retry_after_s,
            retry_window: server.retry_window,
        }
    }
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            max_age: None,
            max_size: None,
            check_interval: Duration::from_secs(60),
        }
    }
}

impl RetentionSection {
    pub fn policy(&self) -> index::RetentionPolicy {
        index::RetentionPolicy {
            max_age: self.max_age,
            max_size: self.max_size.map(|n| n as u64),
        }
    }
}

impl Default for TailSection {
    fn default() -> Self {
        let tail = tail::TailConfig::default();
        TailSection {
            sweep_interval: tail.sweep_interval,
            rotate_wait: tail.rotate_wait,
            max_line_bytes: tail.max_line_bytes,
            max_otlp_line_bytes: tail.max_otlp_line_bytes,
            max_open_files: tail.max_open_files,
            read_chunk: tail.read_chunk,
            batch_bytes: tail.max_buffered_bytes,
            queue_capacity: 4,
            backfill_gz: tail.backfill_gz,
            notify: tail.notify,
        }
    }
}

/// A config error at a line (0: not at any line) of the file.
#[derive(Debug)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl Config {
    /// Reads and checks a config file; errors read `FILE:LINE: `KEY`: message`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Config::parse(&text).map_err(|e| match e.line {
            0 => anyhow::anyhow!("{}: {}", path.display(), e.message),
            line => anyhow::anyhow!("{}:{line}: {}", path.display(), e.message),
        })
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = e
                .span()
                .map(|span| locate(text, span.start))
                .unwrap_or((0, None));
            let message = e.message().trim_end();
            ConfigError {
                line,
                message: match key {
                    Some(key) => format!("`{key}`: {message}"),
                    None => message.to_owned(),
                },
            }
        })?;
        config.check(text)?;
        Ok(config)
    }

    /// What serde cannot say: a source without files, a zero that would stall the pipeline.
    fn check(&self, text: &str) -> Result<(), ConfigError> {
        for (i, source) in self.sources.iter().enumerate() {
            if source.include.iter().all(|g| g.trim().is_empty()) {
                return Err(ConfigError {
                    line: nth_table_line(text, "source", i),
                    message: format!("`source` #{}: `include` needs at least one glob", i + 1),
                });
            }
        }
        let positive = [
            ("index.writer_threads", self.index.writer_threads),
            ("index.queue_capacity", self.index.queue_capacity),
            ("tail.max_line_bytes", self.tail.max_line_bytes),
            ("tail.max_otlp_line_bytes", self.tail.max_otlp_line_bytes),
            ("tail.max_open_files", self.tail.max_open_files),
            ("tail.read_chunk", self.tail.read_chunk),
            ("tail.batch_bytes", self.tail.batch_bytes),
            ("tail.queue_capacity", self.tail.queue_capacity),
            ("server.max_tail_streams", self.server.max_tail_streams),
            (
                "server.max_concurrent_ingest",
                self.server.max_concurrent_ingest,
            ),
            (
                "server.max_grpc_streams",
                self.server.max_grpc_streams as usize,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError {
                    line: key_line(text, key),
                    message: format!("`{key}` must be at least 1"),
                });
            }
        }
        let intervals = [
            ("index.commit_interval", self.index.commit_interval),
            ("tail.sweep_interval", self.tail.sweep_interval),
            ("retention.check_interval", self.retention.check_interval),
        ];
        for (key, value) in intervals {
            if value.is_zero() {
                return Err(ConfigError {
                    line: key_line(text, key),
                    message: format!("`{key}` must be more than 0"),
                });
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.message),
            line => write!(f, "line {line}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line of byte `offset`, and the dotted key written on that line (with the table
/// header above it), if any: toml's spans point at the offending value or key.
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = table_above(&text[..line_start]);
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        let header = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
        return (line_no, Some(header.to_owned()));
    }
    let key = trimmed
        .split_once('=')
        .map(|(key, _)| key.trim().trim_matches('"').to_owned())
        .filter(|key| !key.is_empty());
    let full = match (table, key) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (None, Some(key)) => Some(key),
        (Some(table), None) => Some(table),
        (None, None) => None,
    };
    (line_no, full)
}

/// The header of the last `[table]` or `[[array]]` in `text`.
fn table_above(text: &str) -> Option<String> {
    text.lines().rev().map(str::trim).find_map(|line| {
        (line.starts_with('[') && !line.starts_with("[\"")).then(|| {
            let header = line.split('#').next().unwrap_or(line).trim();
            header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned()
        })
    })
}

/// The line where `section.key` is set, or 0 when it is not written (a default).
fn key_line(text: &str, dotted: &str) -> usize {
    let (section, key) = dotted.split_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            current = trimmed
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned();
        } else if current == section
            && trimmed
                .split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return i + 1;
        }
    }
    0
}

/// The line of the `n`th `[[name]]` header (0-based), or 0.
fn nth_table_line(text: &str, name: &str, n: usize) -> usize {
    let header = format!("[[{name}]]");
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim().starts_with(&header))
        .nth(n)
        .map_or(0, |(i, _)| i + 1)
}

/// `"500ms"`, `"30s"`, `"5m"`: a duration written as the CLI writes them.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom("expected a duration in quotes, such as \"500ms\" or \"30s\"")
    })?;
    let ns = timespec::parse_duration(&text).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration; write e.g. \"500ms\", \"30s\" or \"5m\""
        ))
    })?;
    if ns < 0 {
        return Err(serde::de::Error::custom("a duration cannot be negative"));
    }
    Ok(Duration::from_nanos(ns as u64))
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let value = duration(deserializer)?;
    if value.is_zero() {
        return Err(serde::de::Error::custom(
            "must be more than 0 (leave the key out to keep everything)",
        ));
    }
    Ok(Some(value))
}

fn optional_byte_size<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<usize>, D::Error> {
    let value = byte_size(deserializer)?;
    if value == 0 {
        return Err(serde::de::Error::custom(
            "must be more than 0 (leave the key out to keep everything)",
        ));
    }
    Ok(Some(value))
}

/// A size: a number of bytes, or a string with a unit (`"64KiB"`, `"1MiB"`, `"2GB"`).
fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let bad = |what: &str| {
        serde::de::Error::custom(format!(
            "{what} is not a size; write a number of bytes or e.g. \"64KiB\", \"128MiB\""
        ))
    };
    let bytes = match Size::deserialize(deserializer).map_err(|_| bad("this"))? {
        Size::Bytes(n) => n,
        Size::Text(text) => parse_size(&text).ok_or_else(|| bad(&format!("{text:?}")))?,
    };
    usize::try_from(bytes).map_err(|_| bad("this"))
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped config documents exactly the defaults.
    #[test]
    fn the_documented_config_is_the_default() {
        let text = include_str!("../../../config/threadline.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
    }

    #[test]
    fn sources_sizes_and_durations() {
        let config = Config::parse(
            r#"
[index]
commit_interval = "250ms"
writer_memory = "64MiB"

[tail]
max_line_bytes = 100

[[source]]
include = ["/var/log/app/*.log"]
exclude = ["*.gz"]
service = "checkout"

[[source]]
include = ["/var/log/other/**/*.jsonl"]
"#,
        )
        .unwrap();
        assert_eq!(config.index.commit_interval, Duration::from_millis(250));
        assert_eq!(config.index.writer_memory, 64 << 20);
        assert_eq!(config.tail.max_line_bytes, 100);
        assert_eq!(config.sources.len(), 2);
        assert_eq!(config.sources[0].service.as_deref(), Some("checkout"));
        assert_eq!(config.sources[1].exclude, Vec::<String>::new());
        assert_eq!(config.server.listen.port(), 7740);
    }

    /// `LINE: message`, as `load` prints it after the file name.
    fn error(text: &str) -> String {
        let e = Config::parse(text).unwrap_err();
        format!("{}: {}", e.line, e.message)
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = error("[index]\ncommit_interval = \"soon\"\n");
        assert!(e.starts_with("2: `index.commit_interval`:"), "{e}");
        assert!(e.contains("not a duration"), "{e}");

        let e = error("[server]\n\nlisten = \"localhost\"\n");
        assert!(e.starts_with("3: `server.listen`:"), "{e}");

        let e = error("[tail]\nmax_line_bytes = \"lots\"\n");
        assert!(e.starts_with("2: `tail.max_line_bytes`:"), "{e}");

        let e = error("[index]\ncommit_interval = 5\n");
        assert!(e.starts_with("2: `index.commit_interval`:"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = error("[index]\ndir = \"x\"\ncommit_intervall = \"1s\"\n");
        assert!(e.starts_with("3: `index.commit_intervall`:"), "{e}");
        assert!(e.contains("unknown field"), "{e}");

        let e = error("[[source]]\ninclude = [\"a\"]\nservise = \"x\"\n");
        assert!(e.starts_with("3: `source.servise`:"), "{e}");

        let e = error("listen = \"127.0.0.1:1\"\n");
        assert!(e.starts_with("1: `listen`:"), "{e}");

        let e = error("[indexx]\n");
        assert!(e.starts_with("1: `indexx`:"), "{e}");
    }

    #[test]
    fn checks_beyond_types() {
        let e = error("[[source]]\nservice = \"x\"\n");
        assert!(e.starts_with("1: `source` #1:"), "{e}");
        let e = error("[index]\nwriter_threads = 0\n");
        assert!(e.starts_with("2: `index.writer_threads`"), "{e}");
        let e = error("[index]\ncommit_interval = \"0s\"\n");
        assert!(e.starts_with("2: `index.commit_interval`"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 MiB"), Some(12 << 20));
        assert_eq!(parse_size("12XB"), None);
        assert_eq!(parse_size("MiB"), None);
    }
}
