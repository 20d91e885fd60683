//! The binary's own logs (`tracing-subscriber` on stderr): human-readable lines by default,
//! `--log-format json` for log shippers, filtered like `RUST_LOG` (`RUST_LOG=debug`,
//! `RUST_LOG=info,tantivy=debug`). Libraries log through `tracing` (tantivy's `log` records are
//! bridged), so a 5xx's cause, a paused writer or a failed merge shows up here.
//!
//! What a person reads at start (the addresses, the files tailed, the `curl` hints) is a banner
//! printed as plain lines in the text format, and logged as events in the JSON format so that
//! stderr stays one JSON object per line.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How the binary writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, with time and level.
    #[default]
    Text,
    /// One JSON object per event (time, level, target, message, fields).
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the subscriber. `default_filter` applies when `RUST_LOG` is unset or empty
/// (long-running commands log `info`, one-shot commands only warnings).
pub fn init(format: LogFormat, default_filter: &str) {
    let _ = FORMAT.set(format);
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .and_then(|f| match EnvFilter::try_new(&f) {
            Ok(filter) => Some(filter),
            Err(e) => {
                eprintln!(
                    "warning: RUST_LOG={f:?} is not a valid filter ({e}); using {default_filter:?}"
                );
                None
            }
        })
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = installed {
        eprintln!("warning: cannot install the logger: {e}");
    }
}

/// A banner line for a person: printed as is in the text format, an `info` event in JSON.
pub fn banner(line: &str) {
    match FORMAT.get().copied().unwrap_or_default() {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => tracing::info!(target: "threadline", "{line}"),
    }
}
