//! One followed file: its identity, where reading stands, the checks that notice when the bytes
//! under that position were replaced (truncation, copytruncate, inode reuse), and the content
//! fingerprint by which a copy of it is recognised.
//!
//! A tracked file may be closed (to keep the number of open files bounded): it then keeps only
//! its committed position and the bytes before it, and is reopened and verified at that
//! position when it changes.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use flate2::read::MultiGzDecoder;

use crate::Line;
use crate::checkpoint::{FileCheckpoint, HEAD_BYTES, MARKER_BYTES, hash, hex};
use crate::lines::{LineLimits, LineSplitter};

/// (device, inode): the identity of an open file.
pub(crate) type FileId = (u64, u64);

/// Size and modification time, as last seen.
pub(crate) type Stat = (u64, Option<SystemTime>);

type GzDecoder = MultiGzDecoder<BufReader<File>>;

pub(crate) struct Tracked {
    pub key: String,
    pub source_index: usize,
    pub path: PathBuf,
    pub id: FileId,
    gz: bool,
    /// A `.gz` file read to its end.
    done: bool,
    open: Option<Open>,
    head_len: u64,
    head_hash: u64,
    /// The head's bytes once read (for telling a short copy of this file by its bytes).
    head_bytes: Vec<u8>,
    /// Offset just past the last complete line emitted, and the ≤ `MARKER_BYTES` before it.
    committed: u64,
    committed_marker: Vec<u8>,
    /// Size and mtime at the last check: unchanged means no need to re-verify or read.
    seen: Option<Stat>,
    /// A read found the bytes before the read position replaced (see `take_replaced`).
    replaced: bool,
    /// Size and mtime of its path in the last sweep (how a closed file is known to change).
    pub path_stat: Option<Stat>,
    /// Matched by a glob in the last sweep.
    pub in_glob: bool,
    /// When it stopped matching (renamed away or deleted).
    pub missing_since: Option<Instant>,
    /// When data was last read from it (or it was opened).
    pub last_data: Instant,
}

/// What an open file adds: the handle, the partial line, the bytes before the read position.
struct Open {
    reader: Reader,
    lines: LineSplitter,
    /// The ≤ `MARKER_BYTES` bytes just before `lines.end()`.
    recent: Vec<u8>,
}

enum Reader {
    Plain(File),
    Gz(Box<GzDecoder>),
}

/// Where a tracked file starts: a verified position (its marker bytes read from the file) and
/// the head it had.
pub(crate) struct Start {
    pub offset: u64,
    pub marker: Vec<u8>,
    pub head_len: u64,
    pub head_hash: u64,
    pub done: bool,
}

/// What a check before reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Same size and mtime as at the last check.
    Unchanged,
    /// It changed, and the bytes before the read position are still those read.
    Changed,
    /// The bytes under the read position were replaced (truncation, copytruncate): the file
    /// must be read again from 0, and what was read so far may live on in a copy.
    Replaced,
}

impl Start {
    pub fn zero() -> Start {
        Start {
            offset: 0,
            marker: Vec::new(),
            head_len: 0,
            head_hash: hash(b""),
            done: false,
        }
    }

    /// A checkpoint's position, with the marker bytes it was verified against.
    pub fn of(cp: &FileCheckpoint, marker: Vec<u8>) -> Option<Start> {
        Some(Start {
            offset: cp.offset,
            marker,
            head_len: cp.head_len,
            head_hash: u64::from_str_radix(&cp.head_hash, 16).ok()?,
            done: cp.done,
        })
    }
}

impl Tracked {
    /// A closed file at `start`; it is opened when it is to be read.
    pub fn new(
        key: String,
        path: &Path,
        source_index: usize,
        id: FileId,
        gz: bool,
        start: Start,
    ) -> Tracked {
        Tracked {
            key,
            source_index,
            path: path.to_owned(),
            id,
            gz,
            done: gz && start.done,
            open: None,
            head_len: start.head_len,
            head_hash: start.head_hash,
            head_bytes: Vec::new(),
            committed: start.offset,
            committed_marker: start.marker,
            seen: None,
            replaced: false,
            path_stat: None,
            in_glob: true,
            missing_since: None,
            last_data: Instant::now(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    pub fn is_gz(&self) -> bool {
        self.gz
    }

    /// Whether a closed file may have something to read: its path changed since the last check.
    pub fn changed_on_disk(&self) -> bool {
        !self.done && (self.seen.is_none() || self.path_stat != self.seen)
    }

    /// Opens `path` (which must still be this file) at the committed position. `Ok(false)`: a
    /// `.gz` file whose decompressed stream no longer holds the committed bytes.
    pub fn open(&mut self, path: &Path, limits: LineLimits) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.id {
            return Err(io::Error::other("replaced by another file"));
        }
        let reader = if !self.gz {
            Reader::Plain(file)
        } else {
            match resume_gz(file, self.committed, &self.committed_marker)? {
                Some(decoder) => Reader::Gz(decoder),
                None => return Ok(false),
            }
        };
        self.path = path.to_owned();
        self.open = Some(Open {
            reader,
            lines: LineSplitter::new(limits, self.committed),
            recent: self.committed_marker.clone(),
        });
        // Verify the position against the file before the first read.
        self.seen = None;
        self.last_data = Instant::now();
        Ok(true)
    }

    /// Closes the handle; a partial line is dropped and read again from the committed position.
    pub fn close(&mut self) {
        self.open = None;
    }

    /// Before reading: notices that the bytes under the read position or the head were
    /// replaced (smaller than what was read, or different bytes), and extends the head hash
    /// while the file is shorter than `HEAD_BYTES` (the fingerprint grows with a small file).
    pub fn check(&mut self) -> io::Result<Checked> {
        let Some(open) = &self.open else {
            return Ok(Checked::Unchanged);
        };
        let Reader::Plain(file) = &open.reader else {
            return Ok(Checked::Changed);
        };
        let meta = file.metadata()?;
        let len = meta.len();
        let seen = Some((len, meta.modified().ok()));
        if seen == self.seen {
            return Ok(Checked::Unchanged);
        }
        self.seen = seen;
        let end = open.lines.end();
        let recent_len = open.recent.len() as u64;
        let replaced = len < end
            || read_hash_at(file, end - recent_len, recent_len)? != Some(hash(&open.recent))
            || (self.head_len > 0 && read_hash_at(file, 0, self.head_len)? != Some(self.head_hash));
        if replaced {
            return Ok(Checked::Replaced);
        }
        if self.head_len < HEAD_BYTES.min(len) || self.head_bytes.len() as u64 != self.head_len {
            self.set_head(read_head(file, len)?);
        }
        Ok(Checked::Changed)
    }

    /// From 0 (after `check` found it replaced; the handle stays open). The caller gives it a
    /// new key.
    pub fn restart(&mut self) -> io::Result<()> {
        self.committed = 0;
        self.committed_marker.clear();
        self.set_head(Vec::new());
        if let Some(open) = &mut self.open {
            open.lines = LineSplitter::new(open.lines.limits(), 0);
            open.recent.clear();
            if let Reader::Plain(file) = &open.reader {
                let len = file.metadata()?.len();
                let head = read_head(file, len)?;
                self.set_head(head);
            }
        }
        Ok(())
    }

    fn set_head(&mut self, bytes: Vec<u8>) {
        self.head_len = bytes.len() as u64;
        self.head_hash = hash(&bytes);
        self.head_bytes = bytes;
    }

    /// This file starts with `bytes` (all of a file shorter than this one's head).
    pub fn starts_with(&self, bytes: &[u8]) -> bool {
        self.head_bytes.len() as u64 == self.head_len && self.head_bytes.starts_with(bytes)
    }

    /// Reads one chunk into `buf` and pushes the lines it completes; 0 at the end of the data.
    pub fn read_chunk(&mut self, buf: &mut [u8], out: &mut Vec<Line>) -> io::Result<usize> {
        let Some(open) = &mut self.open else {
            return Ok(0);
        };
        let end = open.lines.end();
        let n = match &mut open.reader {
            Reader::Plain(file) => {
                let n = file.read_at(buf, end)?;
                // Checked after the read: if the bytes before the read position changed
                // meanwhile (truncated, and a writer without O_APPEND went on past a hole),
                // what was read is not the continuation of what was read before.
                let before = open.recent.len() as u64;
                if n > 0
                    && before > 0
                    && read_hash_at(file, end - before, before)? != Some(hash(&open.recent))
                {
                    self.replaced = true;
                    return Ok(0);
                }
                n
            }
            Reader::Gz(decoder) => match decoder.read(buf)? {
                0 => {
                    // A compressed file is complete: its last line needs no newline.
                    if let Some(line) = open.lines.flush() {
                        out.push(line);
                    }
                    self.committed = open.lines.end();
                    self.committed_marker = open.recent.clone();
                    self.done = true;
                    self.open = None;
                    return Ok(0);
                }
                n => n,
            },
        };
        if n == 0 {
            return Ok(0);
        }
        let data = &buf[..n];
        if let Some(completed) = open.lines.feed(data, out) {
            let upto = &data[..(completed - end) as usize];
            self.committed = completed;
            self.committed_marker = tail_of(&open.recent, upto);
        }
        open.recent = tail_of(&open.recent, data);
        self.last_data = Instant::now();
        Ok(n)
    }

    /// The last `read_chunk` ended because the file was replaced under the read position.
    pub fn take_replaced(&mut self) -> bool {
        std::mem::take(&mut self.replaced)
    }

    /// A partial line longer than `max_line_bytes` is held (an OTLP/JSON line being read).
    pub fn holds_big_line(&self) -> bool {
        self.open.as_ref().is_some_and(|o| o.lines.holds_big_line())
    }

    /// Drops the partial line and goes back to the committed position (a big line that is not
    /// complete yet is read again once it is, rather than held in memory meanwhile).
    pub fn rewind(&mut self) {
        if let Some(open) = &mut self.open
            && matches!(open.reader, Reader::Plain(_))
        {
            open.lines = LineSplitter::new(open.lines.limits(), self.committed);
            open.recent = self.committed_marker.clone();
            // The rest of the line is on disk: look again at the next sweep.
            self.seen = None;
        }
    }

    /// Whether the file holds bytes beyond what was read of it: `Some(true)` when more is on
    /// disk (it must be read before the file may be retired), `None` when the file cannot be
    /// found under its last path (deleted while closed). A file found with more to read is
    /// marked changed, so the next read takes it even if its size was seen before.
    pub fn unread(&mut self) -> Option<bool> {
        use std::os::unix::fs::MetadataExt;
        if self.gz {
            return Some(!self.done);
        }
        let (len, read_to) = match &self.open {
            Some(Open {
                reader: Reader::Plain(file),
                lines,
                ..
            }) => (file.metadata().ok()?.len(), lines.end()),
            Some(_) => return Some(!self.done),
            None => {
                let meta = std::fs::metadata(&self.path).ok()?;
                if (meta.dev(), meta.ino()) != self.id {
                    return None;
                }
                (meta.len(), self.committed)
            }
        };
        let more = len > read_to;
        if more {
            self.seen = None;
        }
        Some(more)
    }

    /// The file is done (gone and quiet): its partial last line, if any, becomes a line.
    pub fn finish(&mut self) -> Option<Line> {
        let open = self.open.as_mut()?;
        let line = open.lines.flush()?;
        self.committed = open.lines.end();
        self.committed_marker = open.recent.clone();
        Some(line)
    }

    /// The checkpoint covering every line emitted so far.
    pub fn state(&self) -> FileCheckpoint {
        FileCheckpoint {
            v: 1,
            dev: self.id.0,
            ino: self.id.1,
            head_len: self.head_len,
            head_hash: hex(self.head_hash),
            offset: self.committed,
            marker_len: self.committed_marker.len() as u64,
            marker_hash: hex(hash(&self.committed_marker)),
            path: self.path.to_string_lossy().into_owned(),
            gz: self.gz,
            done: self.done,
        }
    }

    /// The content fingerprint of what was read (`None` for `.gz` files).
    pub fn print(&self) -> Option<Print> {
        (!self.gz).then(|| Print {
            head_len: self.head_len,
            head_hash: self.head_hash,
            offset: self.committed,
            marker_len: self.committed_marker.len() as u64,
            marker_hash: hash(&self.committed_marker),
        })
    }

    /// The ≤ `MARKER_BYTES` bytes of `copy` before `copy_len` if this file has the same bytes
    /// there (with the same head, `copy` is then a copy of this file's first `copy_len` bytes).
    pub fn same_bytes_before(&self, copy: &File, copy_len: u64) -> Option<Vec<u8>> {
        use std::os::unix::fs::MetadataExt;
        let reopened;
        let file = match &self.open {
            Some(Open {
                reader: Reader::Plain(file),
                ..
            }) => file,
            _ => {
                reopened = File::open(&self.path).ok()?;
                let meta = reopened.metadata().ok()?;
                if (meta.dev(), meta.ino()) != self.id {
                    return None;
                }
                &reopened
            }
        };
        let n = copy_len.min(MARKER_BYTES);
        let mut theirs = vec![0; n as usize];
        let mut ours = vec![0; n as usize];
        let got_theirs = read_full_at(copy, &mut theirs, copy_len - n).ok()?;
        let got_ours = read_full_at(file, &mut ours, copy_len - n).ok()?;
        (n > 0 && got_theirs == theirs.len() && got_ours == ours.len() && theirs == ours)
            .then_some(theirs)
    }

    pub fn head_hash(&self) -> u64 {
        self.head_hash
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    pub fn checkpoint(&self) -> serde_json::Value {
        self.state().to_value()
    }
}

/// The first bytes of a file (up to `HEAD_BYTES`), for matching fingerprints.
pub(crate) struct Head {
    /// `prefix[k]`: the hash of the first `k` bytes.
    prefix: Vec<u64>,
    /// The first `HEAD_BYTES` bytes (all of a shorter file).
    pub bytes: Vec<u8>,
    /// The file's length.
    pub len: u64,
}

impl Head {
    pub fn read(file: &File, len: u64) -> io::Result<Head> {
        let bytes = read_head(file, len)?;
        Ok(Head {
            prefix: crate::checkpoint::prefix_hashes(&bytes),
            bytes,
            len,
        })
    }

    pub fn hash(&self) -> u64 {
        self.prefix.last().copied().unwrap_or_else(|| hash(b""))
    }

    /// How a file read up to `print.offset` relates to this file.
    pub fn compare(&self, file: &File, print: &Print) -> io::Result<Fingerprint> {
        let head_len = print.head_len as usize;
        if print.offset == 0 || head_len == 0 || head_len >= self.prefix.len() {
            return Ok(Fingerprint::Different);
        }
        if self.prefix[head_len] != print.head_hash {
            return Ok(Fingerprint::Different);
        }
        if self.len < print.offset {
            return Ok(Fingerprint::ShorterCopy);
        }
        if print.marker_len > print.offset.min(MARKER_BYTES) {
            return Ok(Fingerprint::Different);
        }
        let mut marker = vec![0; print.marker_len as usize];
        let got = read_full_at(file, &mut marker, print.offset - print.marker_len)?;
        Ok(
            if got == marker.len() && hash(&marker) == print.marker_hash {
                Fingerprint::Copy(marker)
            } else {
                Fingerprint::Different
            },
        )
    }
}

/// What identifies the content of a plain file read up to `offset`: its head and the bytes
/// before `offset`, hashed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Print {
    pub head_len: u64,
    pub head_hash: u64,
    pub offset: u64,
    pub marker_len: u64,
    pub marker_hash: u64,
}

impl Print {
    /// `None` for a `.gz` checkpoint (not matched by content) or one that cannot be read.
    pub fn of(cp: &FileCheckpoint) -> Option<Print> {
        if cp.gz {
            return None;
        }
        Some(Print {
            head_len: cp.head_len,
            head_hash: u64::from_str_radix(&cp.head_hash, 16).ok()?,
            offset: cp.offset,
            marker_len: cp.marker_len,
            marker_hash: u64::from_str_radix(&cp.marker_hash, 16).ok()?,
        })
    }
}

/// Whether a file holds what a checkpoint's file held.
pub(crate) enum Fingerprint {
    /// Same head and the same bytes before the checkpoint's offset: a copy (or the file
    /// itself), to be read from that offset. Holds the marker bytes.
    Copy(Vec<u8>),
    /// Same head, but shorter than the checkpoint's offset: maybe a copy still being made.
    ShorterCopy,
    Different,
}

/// The first `HEAD_BYTES` bytes (or all of a shorter file).
fn read_head(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len.min(HEAD_BYTES) as usize];
    let got = read_full_at(file, &mut buf, 0)?;
    buf.truncate(got);
    Ok(buf)
}

/// Hash of `len` bytes at `offset`, or `None` if the file is shorter.
fn read_hash_at(file: &File, offset: u64, len: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0; len as usize];
    let got = read_full_at(file, &mut buf, offset)?;
    Ok((got == buf.len()).then(|| hash(&buf)))
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The plain file `file` (of length `len`) still holds the checkpoint's head and the bytes
/// before its offset: those bytes.
pub(crate) fn verify_plain(
    file: &File,
    len: u64,
    cp: &FileCheckpoint,
) -> io::Result<Option<Vec<u8>>> {
    if cp.gz || cp.head_len > len || cp.head_len > HEAD_BYTES {
        return Ok(None);
    }
    if read_hash_at(file, 0, cp.head_len)?.map(hex).as_deref() != Some(cp.head_hash.as_str()) {
        return Ok(None);
    }
    verify_marker(file, len, cp)
}

/// The bytes before the checkpoint's offset if they are still those it saw.
fn verify_marker(file: &File, len: u64, cp: &FileCheckpoint) -> io::Result<Option<Vec<u8>>> {
    if cp.offset > len || cp.marker_len > cp.offset.min(MARKER_BYTES) {
        return Ok(None);
    }
    let mut marker = vec![0; cp.marker_len as usize];
    let got = read_full_at(file, &mut marker, cp.offset - cp.marker_len)?;
    Ok((got == marker.len() && hex(hash(&marker)) == cp.marker_hash).then_some(marker))
}

/// A decoder of the `.gz` file positioned at `offset` of the decompressed stream (decompressing
/// and discarding up to it), with the ≤ `MARKER_BYTES` bytes before it; `None` if the stream is
/// shorter or cannot be read.
fn gz_at(file: File, offset: u64) -> io::Result<Option<(Box<GzDecoder>, Vec<u8>)>> {
    let mut decoder = Box::new(MultiGzDecoder::new(BufReader::new(file)));
    let mut left = offset;
    let mut recent = Vec::new();
    let mut buf = vec![0; 64 << 10];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match decoder.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        recent = tail_of(&recent, &buf[..n]);
        left -= n as u64;
    }
    Ok(Some((decoder, recent)))
}

/// A decoder positioned at `offset`, if the stream still holds `marker` just before it.
fn resume_gz(file: File, offset: u64, marker: &[u8]) -> io::Result<Option<Box<GzDecoder>>> {
    Ok(gz_at(file, offset)?.and_then(|(decoder, recent)| {
        (recent[recent.len() - marker.len().min(recent.len())..] == *marker).then_some(decoder)
    }))
}

/// The marker bytes of a `.gz` checkpoint, read from the decompressed stream (`None`: the
/// stream is shorter or different).
pub(crate) fn verify_gz(file: &File, cp: &FileCheckpoint) -> io::Result<Option<Vec<u8>>> {
    if !cp.gz {
        return Ok(None);
    }
    Ok(
        gz_at(file.try_clone()?, cp.offset)?.and_then(|(_, recent)| {
            let marker = &recent[recent.len() - (cp.marker_len as usize).min(recent.len())..];
            (hex(hash(marker)) == cp.marker_hash).then(|| marker.to_vec())
        }),
    )
}

/// The last ≤ `MARKER_BYTES` bytes of `before` followed by `data`.
fn tail_of(before: &[u8], data: &[u8]) -> Vec<u8> {
    let keep = MARKER_BYTES as usize;
    if data.len() >= keep {
        return data[data.len() - keep..].to_vec();
    }
    let from_before = (keep - data.len()).min(before.len());
    let mut out = before[before.len() - from_before..].to_vec();
    out.extend_from_slice(data);
    out
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("key", &self.key)
            .field("path", &self.path)
            .field("open", &self.open.is_some())
            .field("committed", &self.committed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_of_keeps_the_last_marker_bytes() {
        assert_eq!(tail_of(b"abc", b"de"), b"abcde");
        let long = [7u8; 40];
        assert_eq!(tail_of(b"abc", &long), &long[8..]);
        let before = [1u8; 32];
        let out = tail_of(&before, b"xy");
        assert_eq!(out.len(), 32);
        assert_eq!(&out[30..], b"xy");
    }
}
