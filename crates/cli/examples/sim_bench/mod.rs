//! What the in-process benches share: simulated checkout traffic indexed by the real release
//! `threadline ingest`, and percentiles of timings. Not every bench uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use checkout_sim::{GroundTruth, SimConfig};

/// Simulates `config` into `scratch/traffic` and indexes it with the real `threadline ingest`
/// into `index_dir`; the simulator's ground truth.
pub fn simulate_and_ingest(
    config: &SimConfig,
    scratch: &Path,
    index_dir: &Path,
) -> anyhow::Result<GroundTruth> {
    let traffic = scratch.join("traffic");
    eprintln!("generating {} requests ...", config.traces);
    let truth = checkout_sim::generate(config, &traffic)?;
    let bin = threadline_binary(None)?;
    eprintln!("indexing with {} ...", bin.display());
    let out = Command::new(&bin)
        .arg("--index")
        .arg(index_dir)
        .args(["ingest", "--json"])
        .arg(traffic.join("spans"))
        .arg(traffic.join("logs"))
        .output()
        .context("running threadline ingest")?;
    ensure!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(truth)
}

/// `explicit`, else the `threadline` beside this example (`target/<profile>/threadline`).
pub fn threadline_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe().context("cannot locate the bench executable")?;
    let path = me
        .parent()
        .and_then(Path::parent)
        .context("the bench is not in target/<profile>/examples")?
        .join("threadline");
    ensure!(
        path.exists(),
        "{} not found: run `cargo build --release -p cli` first",
        path.display()
    );
    Ok(path)
}

/// The `q` quantile (nearest rank) of `times`, in milliseconds (NaN for none).
pub fn percentile_ms(times: &[Duration], q: f64) -> f64 {
    if times.is_empty() {
        return f64::NAN;
    }
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}
