//! Test harness: drives the real tailer over real files in a temp dir, collects what it emits
//! as the index writer would (every batch committed, checkpoints applied), and restarts it
//! from those checkpoints.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tail::{Checkpoints, SourceConfig, TailBatch, TailConfig, Tailer, TailerHandle};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(10);

/// A config with one source and short intervals, so the suite stays fast.
pub fn config(include: &[&Path]) -> TailConfig {
    TailConfig {
        sources: vec![SourceConfig {
            include: include
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            ..SourceConfig::default()
        }],
        sweep_interval: Duration::from_millis(40),
        rotate_wait: Duration::from_millis(300),
        ..TailConfig::default()
    }
}

/// A running tailer and everything it has emitted.
pub struct Run {
    handle: Option<TailerHandle>,
    rx: mpsc::Receiver<TailBatch>,
    pub batches: Vec<TailBatch>,
    pub checkpoints: Checkpoints,
}

impl Run {
    pub fn start(config: TailConfig, checkpoints: &Checkpoints) -> Run {
        Run::start_with_capacity(config, checkpoints, 8)
    }

    pub fn start_with_capacity(config: TailConfig, checkpoints: &Checkpoints, cap: usize) -> Run {
        // Through JSON, as the commit payload would carry them.
        let checkpoints = Checkpoints::from_json(&checkpoints.to_json()).unwrap();
        let (tx, rx) = mpsc::channel(cap);
        let handle = Tailer::start(config, checkpoints.clone(), tx).unwrap();
        Run {
            handle: Some(handle),
            rx,
            batches: Vec::new(),
            checkpoints,
        }
    }

    /// Receives batches until `done` holds; panics with what was seen after `WAIT`.
    pub async fn wait_for(&mut self, what: &str, done: impl Fn(&Run) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(batch)) => self.take(batch),
                _ => panic!(
                    "timed out waiting for {what}; lines so far: {:?}",
                    self.lines()
                ),
            }
        }
    }

    /// Receives whatever arrives during `d`.
    pub async fn settle(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(batch)) => self.take(batch),
                _ => return,
            }
        }
    }

    /// Stops the tailer; batches already in the channel count as committed.
    pub fn stop(mut self) -> Run {
        if let Some(handle) = self.handle.take() {
            handle.stop();
        }
        while let Ok(batch) = self.rx.try_recv() {
            self.take(batch);
        }
        self
    }

    fn take(&mut self, batch: TailBatch) {
        let (key, value) = batch.checkpoint.clone();
        if let Some(line) = batch.lines.last() {
            // The checkpoint covers exactly the lines sent: its offset is past the last one.
            let offset = value["offset"].as_u64().unwrap();
            assert!(
                offset > line.offset,
                "checkpoint {offset} not past line at {}",
                line.offset
            );
        }
        self.checkpoints.apply(key, value);
        self.batches.push(batch);
    }

    /// Every line emitted, in order, as text.
    pub fn lines(&self) -> Vec<String> {
        self.batches
            .iter()
            .flat_map(|b| b.lines.iter().map(text))
            .collect()
    }

    /// Lines emitted with a checkpoint under `key`.
    pub fn lines_of_key(&self, key: &str) -> Vec<String> {
        self.batches
            .iter()
            .filter(|b| b.checkpoint.0 == key)
            .flat_map(|b| b.lines.iter().map(text))
            .collect()
    }

    /// The file key whose batches carried `line`.
    pub fn key_of(&self, line: &str) -> String {
        self.batches
            .iter()
            .find(|b| b.lines.iter().any(|l| text(l) == line))
            .map(|b| b.checkpoint.0.clone())
            .unwrap_or_else(|| panic!("no line {line:?}"))
    }

    /// Keys that were expired (a `null` checkpoint).
    pub fn expired(&self) -> Vec<String> {
        self.batches
            .iter()
            .filter(|b| b.checkpoint.1.is_null())
            .map(|b| b.checkpoint.0.clone())
            .collect()
    }

    pub fn has(&self, line: &str) -> bool {
        self.lines().iter().any(|l| l == line)
    }

    pub fn count(&self, n: usize) -> bool {
        self.lines().len() >= n
    }
}

pub fn text(line: &tail::Line) -> String {
    String::from_utf8_lossy(&line.bytes).into_owned()
}

pub fn append(path: &Path, s: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

pub fn write(path: &Path, s: &str) {
    let mut f = File::create(path).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// `prefix-1\n` … `prefix-n\n`.
pub fn numbered(prefix: &str, range: std::ops::RangeInclusive<usize>) -> String {
    range.map(|i| format!("{prefix}-{i}\n")).collect()
}

pub fn numbered_vec(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

pub fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

pub fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}
