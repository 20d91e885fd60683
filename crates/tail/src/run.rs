//! The tailer's loop: sweep (re-glob, stat, match identities and content fingerprints), read
//! every changed file to its end in fair rounds with a bounded number of files open, send
//! batches (waiting when the channel is full), retire files that are gone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::checkpoint::{FileCheckpoint, MARKER_BYTES, file_key};
use crate::discover::Sources;
use crate::file::{Checked, FileId, Fingerprint, Head, Print, Start, Stat, Tracked};
use crate::lines::LineLimits;
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
    limits: LineLimits,
    sources: Sources,
    tx: mpsc::Sender<TailBatch>,
    stop: watch::Receiver<bool>,
    files: BTreeMap<FileId, Tracked>,
    /// Files of `files` with an open handle (at most `max_open_files`).
    n_open: usize,
    /// Checkpoints from the last commit not yet matched to a file (until the first sweep ends).
    pending: Vec<(String, FileCheckpoint)>,
    /// What was read of files that are gone or were replaced (truncated), kept a while so a
    /// copy of them (copytruncate's `app.log.1`) takes over where reading stopped.
    orphans: Vec<Orphan>,
    /// Files that may be a copy still being made: (size and mtime when last seen, first seen).
    deferred: HashMap<FileId, (Option<Stat>, Instant)>,
    /// Copies of a prefix of a followed file, checked against its bytes while it was intact:
    /// when the original is truncated after more of it was read than the copy holds (lines
    /// written between the copy and the truncation), the copy was read to its end.
    prefix_copies: HashMap<FileId, PrefixCopy>,
    first_sweep: bool,
    buf: Vec<u8>,
}

struct Orphan {
    key: String,
    cp: FileCheckpoint,
    source_index: usize,
    /// Forgotten then: set when the orphan was first offered to the files of a sweep, so a
    /// long read (back-pressure) between its birth and the next sweep cannot expire it unseen.
    until: Option<Instant>,
}

impl Orphan {
    /// What was read of a file no longer followed; its time starts at the next sweep.
    fn new(key: String, cp: FileCheckpoint, source_index: usize) -> Orphan {
        Orphan {
            key,
            cp,
            source_index,
            until: None,
        }
    }
}

struct PrefixCopy {
    /// The key of the original.
    key: String,
    /// The copy's size and mtime when checked.
    stat: Stat,
    /// Its last bytes.
    marker: Vec<u8>,
}

/// A path found by the sweep that is not followed yet.
struct Entry {
    path: PathBuf,
    source_index: usize,
    id: FileId,
    gz: bool,
    stat: Stat,
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
    // A value this tailer cannot read is dropped: its file is read from 0.
    let pending = checkpoints
        .iter()
        .filter_map(|(key, value)| Some((key.to_owned(), FileCheckpoint::from_value(value)?)))
        .collect();
    let buf = vec![0; config.read_chunk.max(1)];
    let limits = LineLimits {
        max_line_bytes: config.max_line_bytes,
        max_otlp_line_bytes: config.max_otlp_line_bytes,
    };
    let mut state = State {
        config,
        limits,
        sources,
        tx,
        stop,
        files: BTreeMap::new(),
        n_open: 0,
        pending,
        orphans: Vec::new(),
        deferred: HashMap::new(),
        prefix_copies: HashMap::new(),
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

    fn max_open(&self) -> usize {
        self.config.max_open_files.max(1)
    }

    /// How long what was read of a gone or replaced file waits for a copy to take it over.
    fn orphan_wait(&self) -> Duration {
        self.config.rotate_wait.max(self.config.sweep_interval * 2)
    }

    async fn sweep(&mut self, watcher: &mut DirWatcher) -> Result<(), Stopped> {
        let found = self.sources.find();
        watcher.set_dirs(&found.dirs);
        for file in self.files.values_mut() {
            file.in_glob = false;
        }
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        for (path, source_index) in found.files {
            let gz = path.extension().is_some_and(|e| e == "gz");
            if gz && !self.config.backfill_gz {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if !meta.is_file() || !seen.insert(id) {
                continue;
            }
            let stat = (meta.len(), meta.modified().ok());
            if let Some(file) = self.files.get_mut(&id) {
                // Known identity: a rename (or nothing) — follow it under its current path.
                file.in_glob = true;
                file.missing_since = None;
                file.path = path;
                file.path_stat = Some(stat);
                continue;
            }
            fresh.push(Entry {
                path,
                source_index,
                id,
                gz,
                stat,
            });
        }
        let first_sweep = std::mem::take(&mut self.first_sweep);
        if first_sweep {
            // Checkpoints of the same inode first, so a copy cannot take what its original
            // still holds.
            fresh.retain(|entry| !self.resume_by_inode(entry));
        }
        for entry in fresh {
            self.place(entry);
        }
        let mut dead_keys = Vec::new();
        if first_sweep {
            self.settle_pending(&seen, &mut dead_keys);
        }
        let until = Instant::now() + self.orphan_wait();
        for orphan in &mut self.orphans {
            orphan.until.get_or_insert(until);
        }
        self.deferred.retain(|id, _| seen.contains(id));
        let files = &self.files;
        self.prefix_copies
            .retain(|id, _| seen.contains(id) && !files.contains_key(id));
        for (key, path) in dead_keys {
            let source_index = self.sources.source_of(Path::new(&path)).unwrap_or(0);
            self.send(expiry(key, path, source_index)).await?;
        }
        let now = Instant::now();
        for file in self.files.values_mut() {
            if !file.in_glob && file.missing_since.is_none() {
                file.missing_since = Some(now);
                if !file.is_open() {
                    // Closed while idle, then renamed away: find it beside its last path.
                    if let Some((path, stat)) =
                        file.path.parent().and_then(|d| find_inode(d, file.id))
                    {
                        file.path = path;
                        file.path_stat = Some(stat);
                    }
                }
            }
        }
        self.read_all().await?;
        self.retire().await?;
        self.expire_orphans().await
    }

    /// At start: the checkpoint of this very file (same inode, same head and bytes before the
    /// offset), if there is one.
    fn resume_by_inode(&mut self, entry: &Entry) -> bool {
        let candidates: Vec<usize> = (0..self.pending.len())
            .filter(|&i| {
                let cp = &self.pending[i].1;
                (cp.dev, cp.ino) == entry.id && cp.gz == entry.gz
            })
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let Ok(file) = File::open(&entry.path) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if (meta.dev(), meta.ino()) != entry.id {
            return false;
        }
        for i in candidates {
            let cp = &self.pending[i].1;
            let marker = if !cp.gz {
                crate::file::verify_plain(&file, meta.len(), cp)
            } else if cp.done {
                Ok(Some(Vec::new()))
            } else {
                crate::file::verify_gz(&file, cp)
            };
            let Ok(Some(marker)) = marker else {
                continue;
            };
            let Some(start) = Start::of(cp, marker) else {
                continue;
            };
            let (key, _) = self.pending.remove(i);
            tracing::debug!(key, path = %entry.path.display(), offset = start.offset, "resumed by inode");
            self.track(key, entry, start);
            return true;
        }
        false
    }

    /// A file not followed yet: a copy of a file read before (it continues from there), a copy
    /// of a file still followed (not read: its lines are those of the original), possibly a
    /// copy still being made (looked at again at the next sweep), or a new file (from 0).
    fn place(&mut self, entry: Entry) {
        if entry.gz {
            let key = self.fresh_key(file_key(entry.id.0, entry.id.1, 0));
            self.track(key, &entry, Start::zero());
            return;
        }
        if entry.stat.0 == 0 {
            // Nothing to read, and nothing to tell a new file from a copy just created: it is
            // placed once it has data.
            return;
        }
        let Ok(file) = File::open(&entry.path) else {
            return;
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        if (meta.dev(), meta.ino()) != entry.id || meta.len() == 0 {
            return; // replaced since the walk: the next sweep sees the new one
        }
        let Ok(head) = Head::read(&file, meta.len()) else {
            return;
        };
        let mut maybe_copying = false;
        // What was read of files no longer followed: the copy takes over.
        let gone = self
            .pending
            .iter()
            .map(|(key, cp)| (key, cp))
            .chain(self.orphans.iter().map(|o| (&o.key, &o.cp)));
        let mut claim = None;
        let prefix_of = self
            .prefix_copies
            .get(&entry.id)
            .filter(|copy| copy.stat == entry.stat);
        for (key, cp) in gone {
            let Some(print) = Print::of(cp) else {
                continue;
            };
            if let Some(copy) = prefix_of.filter(|copy| copy.key == *key && cp.offset > head.len) {
                // More of the original was read than this copy of its start holds.
                let start = Start {
                    offset: head.len,
                    marker: copy.marker.clone(),
                    head_len: head.len.min(crate::checkpoint::HEAD_BYTES),
                    head_hash: head.hash(),
                    done: false,
                };
                claim = Some((key.clone(), start));
                break;
            }
            match head.compare(&file, &print) {
                Ok(Fingerprint::Copy(marker)) => {
                    claim = Start::of(cp, marker).map(|start| (key.clone(), start));
                    if claim.is_some() {
                        break;
                    }
                }
                Ok(Fingerprint::ShorterCopy) => maybe_copying = true,
                _ => {}
            }
        }
        if let Some((key, start)) = claim {
            tracing::debug!(key, path = %entry.path.display(), offset = start.offset, "a copy continues what was read");
            self.pending.retain(|(k, _)| *k != key);
            self.orphans.retain(|o| o.key != key);
            self.track(key, &entry, start);
            return;
        }
        // A copy of a file still followed: its lines are read from the original.
        let mut prefix_copy = None;
        for followed in self.files.values() {
            let Some(print) = followed.print() else {
                continue;
            };
            if print.offset > 0 && head.len < print.head_len {
                // Shorter than the other's head: compared byte for byte.
                if followed.starts_with(&head.bytes) {
                    let from = head.bytes.len().saturating_sub(MARKER_BYTES as usize);
                    prefix_copy = Some(PrefixCopy {
                        key: followed.key.clone(),
                        stat: entry.stat,
                        marker: head.bytes[from..].to_vec(),
                    });
                    break;
                }
                continue;
            }
            let shorter = match head.compare(&file, &print) {
                Ok(Fingerprint::Copy(_)) => false,
                Ok(Fingerprint::ShorterCopy) => true,
                _ => continue,
            };
            if let Some(marker) = followed.same_bytes_before(&file, head.len) {
                prefix_copy = Some(PrefixCopy {
                    key: followed.key.clone(),
                    stat: entry.stat,
                    marker,
                });
                break;
            }
            if !shorter {
                return;
            }
            maybe_copying = true;
        }
        if let Some(copy) = prefix_copy {
            tracing::debug!(path = %entry.path.display(), of = copy.key, "a copy of a followed file: not read");
            self.prefix_copies.insert(entry.id, copy);
            return;
        }
        if maybe_copying {
            // Same head, shorter than what was read: a copy still being written, or another
            // file with the same first bytes. Wait while it grows (at most `rotate_wait`).
            let now = Instant::now();
            let wait = self.config.rotate_wait;
            let (last, since) = self.deferred.entry(entry.id).or_insert((None, now));
            if *last != Some(entry.stat) && now.duration_since(*since) < wait {
                *last = Some(entry.stat);
                return;
            }
        }
        let key = self.fresh_key(file_key(entry.id.0, entry.id.1, head.hash()));
        tracing::debug!(key, path = %entry.path.display(), "new file: read from 0");
        self.track(key, &entry, Start::zero());
    }

    fn track(&mut self, key: String, entry: &Entry, start: Start) {
        let mut file = Tracked::new(
            key,
            &entry.path,
            entry.source_index,
            entry.id,
            entry.gz,
            start,
        );
        file.path_stat = Some(entry.stat);
        self.deferred.remove(&entry.id);
        self.files.insert(entry.id, file);
    }

    /// `base`, or `base~N` if a followed file, an orphan or a checkpoint already has it.
    fn fresh_key(&self, base: String) -> String {
        let taken = |key: &str| {
            self.files.values().any(|f| f.key == key)
                || self.orphans.iter().any(|o| o.key == key)
                || self.pending.iter().any(|(k, _)| k == key)
        };
        if !taken(&base) {
            return base;
        }
        (1u64..)
            .map(|n| format!("{base}~{n}"))
            .find(|key| !taken(key))
            .unwrap_or(base)
    }

    /// After the first sweep, checkpoints that no file took: a file no glob matches any more
    /// may have been rotated away while threadline was down, or between the directory walk
    /// and the open (look beside its last path and finish it); the others wait a while for a
    /// copy, as orphans, and are then forgotten.
    fn settle_pending(&mut self, seen: &HashSet<FileId>, dead_keys: &mut Vec<(String, String)>) {
        for (key, cp) in std::mem::take(&mut self.pending) {
            let id = (cp.dev, cp.ino);
            let last = Path::new(&cp.path);
            let source_index = self.sources.source_of(last);
            if self.files.contains_key(&id) {
                // Its inode holds another file now (reused, or truncated and rewritten): what
                // was read of it waits as an orphan for a copy still being made.
                tracing::debug!(
                    key,
                    path = cp.path,
                    offset = cp.offset,
                    "checkpoint of a reused inode: orphan"
                );
                self.orphans
                    .push(Orphan::new(key, cp, source_index.unwrap_or(0)));
                continue;
            }
            // Seen by this sweep's walk is not proof of anything: renamed away just after the
            // walk, the file was not where the walk saw it when it was opened.
            let found = last.parent().and_then(|dir| find_inode(dir, id));
            if let (Some((path, stat)), Some(source_index)) = (found, source_index) {
                let marker = File::open(&path).ok().and_then(|file| {
                    let meta = file.metadata().ok()?;
                    if (meta.dev(), meta.ino()) != id {
                        return None;
                    }
                    if cp.gz {
                        if cp.done {
                            Some(Vec::new())
                        } else {
                            crate::file::verify_gz(&file, &cp).ok().flatten()
                        }
                    } else {
                        crate::file::verify_plain(&file, meta.len(), &cp)
                            .ok()
                            .flatten()
                    }
                });
                match marker.and_then(|marker| Start::of(&cp, marker)) {
                    Some(start) => {
                        tracing::debug!(key, path = %path.display(), offset = start.offset, "moved away while stopped or since the walk: found beside its last path");
                        let entry = Entry {
                            path,
                            source_index,
                            id,
                            gz: cp.gz,
                            stat,
                        };
                        self.track(key, &entry, start);
                        if let Some(file) = self.files.get_mut(&id) {
                            // The next sweep says whether a glob still matches it.
                            file.in_glob = false;
                        }
                    }
                    None if seen.contains(&id) => {
                        // Truncated and rewritten in place: a copy may still take it over.
                        tracing::debug!(
                            key,
                            path = cp.path,
                            offset = cp.offset,
                            "the file no longer holds what was read: orphan"
                        );
                        self.orphans.push(Orphan::new(key, cp, source_index));
                    }
                    None => {
                        tracing::warn!(
                            "{}: the file at {} no longer holds what was read of it; its checkpoint is dropped",
                            cp.path,
                            path.display()
                        );
                        dead_keys.push((key, cp.path))
                    }
                }
                continue;
            }
            tracing::debug!(
                key,
                path = cp.path,
                offset = cp.offset,
                "no file for a checkpoint: orphan"
            );
            self.orphans
                .push(Orphan::new(key, cp, source_index.unwrap_or(0)));
        }
    }

    /// Reads every file that may have data to its current end, a few chunks per file per turn,
    /// with at most `max_open_files` open: files are taken in windows of that many, and files
    /// of earlier windows (least recently read first) are closed to make room.
    async fn read_all(&mut self) -> Result<(), Stopped> {
        // Files that left the globs first: they are retired once quiet, so they must not wait
        // behind the others for a handle.
        let mut want: Vec<FileId> = self
            .files
            .values()
            .filter(|f| f.is_open() || f.changed_on_disk())
            .map(|f| f.id)
            .collect();
        want.sort_by_key(|id| self.files.get(id).is_some_and(|f| f.in_glob));
        let max_open = self.max_open();
        for window in want.chunks(max_open) {
            let in_window: HashSet<FileId> = window.iter().copied().collect();
            let mut active = Vec::with_capacity(window.len());
            for &id in window {
                if self.prepare(id, &in_window) {
                    active.push(id);
                }
            }
            self.read_rounds(active).await?;
        }
        Ok(())
    }

    /// Opens (if need be) and checks a file before reading; false if it cannot be read now.
    fn prepare(&mut self, id: FileId, in_window: &HashSet<FileId>) -> bool {
        let Some(file) = self.files.get(&id) else {
            return false;
        };
        if !file.is_open() {
            if !self.make_room(in_window) {
                return false;
            }
            let Some(file) = self.files.get_mut(&id) else {
                return false;
            };
            let path = file.path.clone();
            match file.open(&path, self.limits) {
                Ok(true) => self.n_open += 1,
                Ok(false) => {
                    // A `.gz` file that no longer holds what was read: from 0.
                    self.replace(id);
                    let Some(file) = self.files.get_mut(&id) else {
                        return false;
                    };
                    match file.open(&path, self.limits) {
                        Ok(true) => self.n_open += 1,
                        _ => return false,
                    }
                }
                Err(_) => return false,
            }
        }
        let Some(file) = self.files.get_mut(&id) else {
            return false;
        };
        match file.check() {
            Ok(Checked::Replaced) => {
                self.replace(id);
                true
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// The bytes under a file's read position were replaced (truncation, copytruncate): what
    /// was read becomes an orphan a copy may take over, and the file starts again from 0 under
    /// a new key.
    fn replace(&mut self, id: FileId) {
        let Some(file) = self.files.get_mut(&id) else {
            return;
        };
        if file.committed() == 0 {
            let _ = file.restart();
            return;
        }
        let orphan = Orphan::new(file.key.clone(), file.state(), file.source_index);
        tracing::debug!(key = orphan.key, path = %file.path.display(), offset = orphan.cp.offset, "truncated: read again from 0, what was read is an orphan");
        let _ = file.restart();
        let base = file_key(id.0, id.1, file.head_hash());
        self.orphans.push(orphan);
        let key = self.fresh_key(base);
        if let Some(file) = self.files.get_mut(&id) {
            file.key = key;
        }
    }

    /// Makes room for one more open file: closes the least recently read file that can be
    /// reopened (in a glob, not in this window, not a `.gz` being read). False if none.
    fn make_room(&mut self, in_window: &HashSet<FileId>) -> bool {
        if self.n_open < self.max_open() {
            return true;
        }
        let victim = self
            .files
            .values()
            .filter(|f| f.is_open() && f.in_glob && !f.is_gz() && !in_window.contains(&f.id))
            .min_by_key(|f| f.last_data)
            .map(|f| f.id);
        match victim.and_then(|id| self.files.get_mut(&id)) {
            Some(file) => {
                file.close();
                self.n_open -= 1;
                true
            }
            None => false,
        }
    }

    /// Reads the given (open, checked) files to their end, a few chunks each per turn. A line
    /// longer than `max_line_bytes` (an OTLP/JSON batch) is read to its end in one turn, and
    /// dropped to be read again if the data ends before it does: one such line in memory.
    async fn read_rounds(&mut self, mut active: Vec<FileId>) -> Result<(), Stopped> {
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
                let mut chunks = 0;
                loop {
                    let before = lines.len();
                    match file.read_chunk(&mut self.buf, &mut lines) {
                        Ok(0) | Err(_) => {
                            if file.holds_big_line() {
                                file.rewind();
                            }
                            more = false;
                            break;
                        }
                        Ok(_) => {}
                    }
                    bytes += lines[before..]
                        .iter()
                        .map(|l: &Line| l.bytes.len())
                        .sum::<usize>();
                    chunks += 1;
                    if file.holds_big_line() {
                        continue;
                    }
                    if chunks >= CHUNKS_PER_TURN || bytes >= self.config.max_buffered_bytes {
                        break;
                    }
                }
                if !file.is_open() {
                    // A `.gz` file read to its end closes itself.
                    self.n_open -= 1;
                }
                let replaced = file.take_replaced();
                if !lines.is_empty() {
                    let batch = batch_of(file, lines);
                    self.send(batch).await?;
                }
                if replaced {
                    self.replace(id);
                    still.push(id);
                } else if more {
                    still.push(id);
                }
            }
            active = still;
        }
        Ok(())
    }

    /// Files that left the globs and have been quiet for `rotate_wait`: their partial last line
    /// is emitted, their handle closed, and what was read of them waits a while as an orphan
    /// (a copy may take it over) before its checkpoint is forgotten.
    async fn retire(&mut self) -> Result<(), Stopped> {
        let now = Instant::now();
        let wait = self.config.rotate_wait;
        let quiet: Vec<FileId> = self
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
        let mut done = Vec::with_capacity(quiet.len());
        for id in quiet {
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            // Quiet is not the same as read: a file that could not be opened or read in time
            // (no handle free, back-pressure, a slow machine) still holds lines. It stays
            // until they are read.
            if file.unread() == Some(true) {
                tracing::debug!(key = file.key, path = %file.path.display(), "left the globs with lines unread: kept until they are read");
                continue;
            }
            done.push(id);
        }
        for id in done {
            let Some(mut file) = self.files.remove(&id) else {
                continue;
            };
            if let Some(line) = file.finish() {
                let batch = batch_of(&file, vec![line]);
                self.send(batch).await?;
            }
            if file.is_open() {
                self.n_open -= 1;
            }
            tracing::debug!(key = file.key, path = %file.path.display(), offset = file.state().offset, "retired: left the globs and quiet");
            if file.print().is_some_and(|p| p.offset > 0) {
                self.orphans.push(Orphan::new(
                    file.key.clone(),
                    file.state(),
                    file.source_index,
                ));
            } else {
                let path = file.path.to_string_lossy().into_owned();
                self.send(expiry(file.key, path, file.source_index)).await?;
            }
        }
        Ok(())
    }

    /// Orphans no copy took over in time: their checkpoints are forgotten.
    async fn expire_orphans(&mut self) -> Result<(), Stopped> {
        let now = Instant::now();
        let (expired, kept): (Vec<Orphan>, Vec<Orphan>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|o| o.until.is_some_and(|until| until <= now));
        self.orphans = kept;
        for orphan in expired {
            tracing::debug!(
                key = orphan.key,
                path = orphan.cp.path,
                offset = orphan.cp.offset,
                "orphan forgotten"
            );
            self.send(expiry(orphan.key, orphan.cp.path, orphan.source_index))
                .await?;
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

/// The path in `dir` of the file with identity `id`, and its size and mtime.
fn find_inode(dir: &Path, id: FileId) -> Option<(PathBuf, Stat)> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let path = e.path();
        let meta = std::fs::metadata(&path).ok()?;
        (meta.is_file() && (meta.dev(), meta.ino()) == id)
            .then(|| (path, (meta.len(), meta.modified().ok())))
    })
}
