//! What the in-process benches share: simulated checkout traffic indexed by the real release
//! `threadline ingest`, percentiles of timings, and the peak memory and CPU of a child process
//! (from /proc). Not every bench uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use checkout_sim::{GroundTruth, SimConfig};
use serde_json::Value;

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

/// One `threadline ingest --json` run.
pub struct Ingest {
    pub wall: Duration,
    /// User + system CPU of the ingest process (all its threads).
    pub cpu: Duration,
    pub memory: PeakMemory,
    pub summary: Value,
}

/// Runs `threadline --index INDEX_DIR ingest --json INPUTS...` (its stderr passed through),
/// sampling the child's memory until it exits.
pub fn run_ingest(
    threadline: &Path,
    index_dir: &Path,
    inputs: &[PathBuf],
) -> anyhow::Result<Ingest> {
    let cpu_before = children_cpu()?;
    let started = Instant::now();
    let mut child = Command::new(threadline)
        .arg("--index")
        .arg(index_dir)
        .arg("ingest")
        .arg("--json")
        .args(inputs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", threadline.display()))?;
    let (status, memory) = wait_sampling(&mut child)?;
    let wall = started.elapsed();
    let cpu = children_cpu()?.saturating_sub(cpu_before);
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().context("no stdout")?, &mut stdout)?;
    ensure!(status.success(), "threadline ingest failed: {status}");
    let summary: Value = serde_json::from_slice(stdout.as_bytes())
        .context("threadline ingest --json printed no JSON")?;
    Ok(Ingest {
        wall,
        cpu,
        memory,
        summary,
    })
}

/// The peak memory of a process, from the `VmHWM`, `RssAnon`, `RssFile` and `RssShmem` lines of
/// `/proc/PID/status`. `hwm_kib` is the kernel's own high-water mark of the resident set, exact;
/// the anonymous (heap) and file-backed (mmapped index files, the binary) peaks are the largest
/// values seen by [`PeakMemory::sample`], so they may miss a spike shorter than the sampling
/// interval, and they need not fall at the same moment (their sum can exceed `hwm_kib`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeakMemory {
    pub hwm_kib: u64,
    pub anon_kib: u64,
    /// `RssFile` + `RssShmem`: pages mapped from files (and shared memory).
    pub file_kib: u64,
}

impl PeakMemory {
    /// Reads `/proc/PID/status` once and raises the peaks; false when it could not be read (the
    /// process is gone, or is a zombie without memory lines).
    pub fn sample(&mut self, pid: u32) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        let kib = |key: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line[key.len()..].split_whitespace().next()?.parse().ok()
        };
        let (Some(hwm), Some(anon), Some(file)) = (kib("VmHWM:"), kib("RssAnon:"), kib("RssFile:"))
        else {
            return false;
        };
        let shmem = kib("RssShmem:").unwrap_or(0);
        self.hwm_kib = self.hwm_kib.max(hwm);
        self.anon_kib = self.anon_kib.max(anon);
        self.file_kib = self.file_kib.max(file + shmem);
        true
    }

    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }

    /// `"412 MiB (anonymous 380 MiB, mapped 41 MiB)"`.
    pub fn describe(&self) -> String {
        format!(
            "{:.0} MiB (anonymous {:.0} MiB, mapped {:.0} MiB)",
            self.hwm_mib(),
            self.anon_kib as f64 / 1024.0,
            self.file_kib as f64 / 1024.0
        )
    }
}

/// How often [`wait_sampling`] reads `/proc/PID/status`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// Waits for `child`, sampling its memory every [`SAMPLE_EVERY`] until it exits.
pub fn wait_sampling(child: &mut Child) -> anyhow::Result<(ExitStatus, PeakMemory)> {
    let mut peak = PeakMemory::default();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak));
        }
        peak.sample(child.id());
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// User + system CPU of a running process so far (all its threads): `utime` + `stime` of
/// `/proc/PID/stat`, in clock ticks of 10 ms.
pub fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    Ok(cpu_fields(&stat, 11, 12))
}

/// User + system CPU of this process's waited-for children (`cutime` + `cstime` of
/// `/proc/self/stat`), in clock ticks of 10 ms.
pub fn children_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    Ok(cpu_fields(&stat, 13, 14))
}

/// The sum of two tick counts of a `/proc/*/stat` line, indexed from its third field (the one
/// after the command name, which is in parentheses and may hold spaces).
fn cpu_fields(stat: &str, a: usize, b: usize) -> Duration {
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(a) + ticks(b)) * 10)
}

/// Total bytes of the regular files under `path` (symbolic links not followed).
pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            total += meta.len();
        } else if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.filter_map(Result::ok).map(|e| e.path()));
        }
    }
    total
}
