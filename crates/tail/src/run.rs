//! The tailer's loop: sweep (re-glob, stat, match identities), read every file to its end in
//! fair rounds, send batches (waiting when the channel is full), retire files that are gone.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::checkpoint::FileCheckpoint;
use crate::discover::Sources;
use crate::file::{FileId, Pending, Tracked};
use crate::watch::{DirWatcher, Wake};
use crate::{Checkpoints, Line, TailBatch, TailConfig};

/// Chunks read from one file before the others get their turn.
const CHUNKS_PER_TURN: usize = 16;

/// After a wake-up, how long to let further events gather before sweeping.
const WAKE_GATHER: Duration = Duration::from_millis(20);

/// The tailer was stopped, or its receiver is gone.
struct Stopped;

struct State {
    config: TailConfig,
    sources: Sources,
    tx: mpsc::Sender<TailBatch>,
    stop: watch::Receiver<bool>,
    files: BTreeMap<FileId, Tracked>,
    /// Checkpoints from the last commit not yet matched to a file (only until the first sweep
    /// is done, except those of files that could not be opened yet).
    pending: Pending,
    first_sweep: bool,
    buf: Vec<u8>,
}

pub(crate) fn run(
    config: TailConfig,
    sources: Sources,
    checkpoints: Checkpoints,
    tx: mpsc::Sender<TailBatch>,
    stop: watch::Receiver<bool>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    let mut pending = Pending::new();
    for (key, value) in checkpoints.iter() {
        // A value this tailer cannot read is dropped: its file is read from 0.
        if let Some(cp) = FileCheckpoint::from_value(value) {
            pending
                .entry((cp.dev, cp.ino))
                .or_default()
                .push((key.to_owned(), cp));
        }
    }
    let buf = vec![0; config.read_chunk.max(1)];
    let mut state = State {
        config,
        sources,
        tx,
        stop,
        files: BTreeMap::new(),
        pending,
        first_sweep: true,
        buf,
    };
    runtime.block_on(state.main());
}

impl State {
    async fn main(&mut self) {
        let (wake_tx, mut wake_rx) = mpsc::channel::<Wake>(1);
        let mut watcher = DirWatcher::new(wake_tx.clone(), self.config.notify);
        loop {
            if self.sweep(&mut watcher).await.is_err() || self.tx.is_closed() {
                return;
            }
            let woken = tokio::select! {
                _ = self.stop.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep(self.config.sweep_interval) => false,
                // Every wake-up means "sweep soon"; `wake_tx` is kept, so this never ends.
                _ = wake_rx.recv() => true,
            };
            if woken {
                // Gather a burst of events into one sweep: a busy file wakes us per write.
                let gather = WAKE_GATHER.min(self.config.sweep_interval);
                tokio::select! {
                    _ = self.stop.wait_for(|stop| *stop) => return,
                    _ = tokio::time::sleep(gather) => {}
                }
                let _ = wake_rx.try_recv();
            }
        }
    }

    async fn sweep(&mut self, watcher: &mut DirWatcher) -> Result<(), Stopped> {
        let found = self.sources.find();
        watcher.set_dirs(&found.dirs);
        for file in self.files.values_mut() {
            file.in_glob = false;
        }
        let mut seen = HashSet::new();
        let mut dead_keys = Vec::new();
        for (path, source_index) in &found.files {
            let gz = path.extension().is_some_and(|e| e == "gz");
            if gz && !self.config.backfill_gz {
                continue;
            }
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if !meta.is_file() || !seen.insert(id) {
                continue;
            }
            if let Some(file) = self.files.get_mut(&id) {
                // Known identity: a rename (or nothing) — follow it under its current path.
                file.in_glob = true;
                file.missing_since = None;
                file.path.clone_from(path);
                continue;
            }
            let max = self.config.max_line_bytes;
            if let Ok(opened) = Tracked::open(path, *source_index, gz, &mut self.pending, max) {
                dead_keys.extend(opened.dead_keys);
                // Replaced between the stat and the open by a file already followed: keep
                // that one's state.
                if let Some(file) = self.files.get_mut(&opened.file.id) {
                    file.in_glob = true;
                    file.missing_since = None;
                } else {
                    seen.insert(opened.file.id);
                    self.files.insert(opened.file.id, opened.file);
                }
            }
        }
        if std::mem::take(&mut self.first_sweep) {
            self.adopt_orphans(&seen, &mut dead_keys);
        }
        for (key, path) in dead_keys {
            let source_index = self.sources.source_of(Path::new(&path)).unwrap_or(0);
            self.send(expiry(key, path, source_index)).await?;
        }
        let now = Instant::now();
        for file in self.files.values_mut() {
            if !file.in_glob && file.missing_since.is_none() {
                file.missing_since = Some(now);
            }
        }
        self.read_all().await?;
        self.retire().await
    }

    /// After the first sweep: a checkpointed file that no glob matches any more may have been
    /// rotated away while threadline was down. Look for it beside its last known path and
    /// finish it from its checkpoint; forget the checkpoints of files that are gone.
    fn adopt_orphans(&mut self, seen: &HashSet<FileId>, dead_keys: &mut Vec<(String, String)>) {
        let orphans: Vec<FileId> = self
            .pending
            .keys()
            .filter(|id| !seen.contains(id))
            .copied()
            .collect();
        for id in orphans {
            let Some(cps) = self.pending.get(&id) else {
                continue;
            };
            let last = Path::new(&cps[0].1.path);
            let source_index = self.sources.source_of(last);
            let gz = cps[0].1.gz;
            let found = last.parent().and_then(|dir| find_inode(dir, id));
            let adopted = match (found, source_index) {
                (Some(path), Some(source_index)) => {
                    let max = self.config.max_line_bytes;
                    match Tracked::open(&path, source_index, gz, &mut self.pending, max) {
                        Ok(opened) => {
                            dead_keys.extend(opened.dead_keys);
                            // Not resumed: only its inode was reused, and the checkpoint is
                            // among the dead keys.
                            if opened.resumed {
                                let mut file = opened.file;
                                file.in_glob = false;
                                self.files.insert(file.id, file);
                            }
                            true
                        }
                        Err(_) => false,
                    }
                }
                _ => false,
            };
            if !adopted && let Some(cps) = self.pending.remove(&id) {
                dead_keys.extend(cps.into_iter().map(|(key, cp)| (key, cp.path)));
            }
        }
    }

    /// Reads every file to its current end, a few chunks per file per turn.
    async fn read_all(&mut self) -> Result<(), Stopped> {
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        let mut active: Vec<FileId> = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            if file.check().is_ok() {
                active.push(id);
            }
        }
        while !active.is_empty() {
            let mut still = Vec::with_capacity(active.len());
            for id in active {
                if *self.stop.borrow() {
                    return Err(Stopped);
                }
                let Some(file) = self.files.get_mut(&id) else {
                    continue;
                };
                let mut lines = Vec::new();
                let mut bytes = 0;
                let mut more = true;
                for _ in 0..CHUNKS_PER_TURN {
                    let before = lines.len();
                    match file.read_chunk(&mut self.buf, &mut lines) {
                        Ok(0) | Err(_) => {
                            more = false;
                            break;
                        }
                        Ok(_) => {}
                    }
                    bytes += lines[before..]
                        .iter()
                        .map(|l: &Line| l.bytes.len())
                        .sum::<usize>();
                    if bytes >= self.config.max_buffered_bytes {
                        break;
                    }
                }
                if !lines.is_empty() {
                    let batch = batch_of(file, lines);
                    self.send(batch).await?;
                }
                if more {
                    still.push(id);
                }
            }
            active = still;
        }
        Ok(())
    }

    /// Files that left the globs and have been quiet for `rotate_wait`: their partial last line
    /// is emitted, their checkpoint forgotten, their handle closed.
    async fn retire(&mut self) -> Result<(), Stopped> {
        let now = Instant::now();
        let wait = self.config.rotate_wait;
        let done: Vec<FileId> = self
            .files
            .values()
            .filter(|f| {
                f.missing_since
                    .is_some_and(|since| now.duration_since(since.max(f.last_data)) >= wait)
                    // A failed directory walk is not a rotation: the file is still where the
                    // globs want it, so it stays (forgetting it would read it again from 0).
                    && !self.still_in_place(f)
            })
            .map(|f| f.id)
            .collect();
        for id in done {
            let Some(mut file) = self.files.remove(&id) else {
                continue;
            };
            if let Some(line) = file.finish() {
                let batch = batch_of(&file, vec![line]);
                self.send(batch).await?;
            }
            let path = file.path.to_string_lossy().into_owned();
            self.send(expiry(file.key, path, file.source_index)).await?;
        }
        Ok(())
    }

    fn still_in_place(&self, file: &Tracked) -> bool {
        std::fs::metadata(&file.path).is_ok_and(|m| (m.dev(), m.ino()) == file.id)
            && self.sources.source_of(&file.path).is_some()
    }

    /// Sends a batch, waiting while the channel is full, unless stopped meanwhile.
    async fn send(&mut self, batch: TailBatch) -> Result<(), Stopped> {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|stop| *stop) => Err(Stopped),
            permit = self.tx.reserve() => {
                permit.map_err(|_| Stopped)?.send(batch);
                Ok(())
            }
        }
    }
}

fn batch_of(file: &Tracked, lines: Vec<Line>) -> TailBatch {
    TailBatch {
        source_index: file.source_index,
        path: file.path.to_string_lossy().into_owned(),
        lines,
        checkpoint: (file.key.clone(), file.checkpoint()),
    }
}

/// The batch that tells the consumer to forget `key`.
fn expiry(key: String, path: String, source_index: usize) -> TailBatch {
    TailBatch {
        source_index,
        path,
        lines: Vec::new(),
        checkpoint: (key, serde_json::Value::Null),
    }
}

/// The path in `dir` of the file with identity `id`.
fn find_inode(dir: &Path, id: FileId) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) == id))
}
