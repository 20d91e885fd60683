//! `checkout-sim`: writes simulated checkout traffic (spans + logs + ground truth) to a folder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use checkout_sim::SimConfig;
use clap::Parser;

/// Deterministic checkout traffic simulator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Output folder (spans/, logs/).
    #[arg(long)]
    out: PathBuf,
    /// Where the ground truth goes (batch mode); default `ground_truth.json` beside --out, not
    /// in it, so indexing the traffic folder indexes traffic only.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// PRNG seed: same seed and flags, same bytes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of requests to simulate.
    #[arg(long, default_value_t = 1000)]
    traces: usize,
    /// Generate about this many MB (10^6 bytes) instead of a number of requests.
    #[arg(long, conflicts_with = "traces")]
    target_mb: Option<f64>,
    /// Arrival time of the first request (RFC 3339). Default: 2026-11-20T14:00:00Z.
    #[arg(long)]
    start: Option<String>,
    /// Append traffic in real time until interrupted, instead of a batch.
    #[arg(long)]
    live: bool,
    /// Requests per second (simulated time in batch mode, real time with --live).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = SimConfig {
        seed: args.seed,
        traces: args.traces,
        traces_per_second: args.rate,
        ..SimConfig::default()
    };
    if let Some(start) = &args.start {
        let ts: jiff::Timestamp = start
            .parse()
            .with_context(|| format!("--start {start:?} is not an RFC 3339 time"))?;
        config.start_ns = i64::try_from(ts.as_nanosecond()).context("--start is out of range")?;
    }
    if let Some(mb) = args.target_mb {
        config.target_bytes = Some((mb * 1e6) as u64);
    }
    if args.live {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = checkout_sim::run_live(&config, &args.out, stop)
            .with_context(|| format!("writing to {}", args.out.display()))?;
        println!("{stats:?}");
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let truth = checkout_sim::generate(&config, &args.out)
        .with_context(|| format!("writing to {}", args.out.display()))?;
    let truth_path = args.truth.clone().unwrap_or_else(|| {
        args.out
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."))
            .join("ground_truth.json")
    });
    checkout_sim::write_ground_truth(&truth, &truth_path)
        .with_context(|| format!("writing {}", truth_path.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let mb = truth.totals.bytes as f64 / 1e6;
    println!(
        "{} requests, {} traces, {} spans, {} logs, {:.1} MB in {:.2} s ({:.1} MB/s) -> {}",
        truth.requests,
        truth.totals.traces,
        truth.totals.spans,
        truth.totals.logs,
        mb,
        secs,
        mb / secs,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
