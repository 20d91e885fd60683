//! One followed file: its identity, where reading stands, and the checks that notice when the
//! bytes under that position were replaced (truncation, copytruncate, inode reuse).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use flate2::read::MultiGzDecoder;

use crate::Line;
use crate::checkpoint::{FileCheckpoint, HEAD_BYTES, MARKER_BYTES, file_key, hash, hex};
use crate::lines::LineSplitter;

/// (device, inode): the identity of an open file.
pub(crate) type FileId = (u64, u64);

/// Checkpoints handed over at start that no file has claimed yet, by identity.
type GzDecoder = MultiGzDecoder<BufReader<File>>;

pub(crate) type Pending = HashMap<FileId, Vec<(String, FileCheckpoint)>>;

pub(crate) struct Tracked {
    pub key: String,
    pub source_index: usize,
    pub path: PathBuf,
    pub id: FileId,
    reader: Reader,
    head_len: u64,
    head_hash: u64,
    lines: LineSplitter,
    /// The ≤ `MARKER_BYTES` bytes just before `lines.end()`.
    recent: Vec<u8>,
    /// Offset just past the last complete line emitted, and the bytes before it.
    committed: u64,
    committed_marker: Vec<u8>,
    /// Size and mtime at the last check: unchanged means no need to re-verify.
    seen: Option<(u64, Option<SystemTime>)>,
    /// Matched by a glob in the last sweep.
    pub in_glob: bool,
    /// When it stopped matching (renamed away or deleted).
    pub missing_since: Option<Instant>,
    /// When data was last read from it.
    pub last_data: Instant,
}

enum Reader {
    Plain(File),
    /// A `.gz` file is read decompressed, once; `None` once it was read to the end.
    Gz(Option<Box<GzDecoder>>),
}

/// What opening a file found.
pub(crate) struct Opened {
    pub file: Tracked,
    /// It continues from a checkpoint (rather than from 0).
    pub resumed: bool,
    /// Checkpoints (key, last path) for this identity that no longer describe it (reused
    /// inode, truncated while stopped): to be forgotten.
    pub dead_keys: Vec<(String, String)>,
}

impl Tracked {
    /// Opens `path` and decides where to start: from a checkpoint of the same device and inode
    /// whose head and offset marker still match the file, else from 0.
    pub fn open(
        path: &Path,
        source_index: usize,
        gz: bool,
        pending: &mut Pending,
        max_line_bytes: usize,
    ) -> io::Result<Opened> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let id = (meta.dev(), meta.ino());
        let (head_len, head_hash) = read_head(&file, meta.len())?;
        let candidates = pending.remove(&id).unwrap_or_default();
        let mut start = None;
        let mut dead_keys = Vec::new();
        let mut reader = if gz {
            Reader::Gz(None)
        } else {
            Reader::Plain(file.try_clone()?)
        };
        for (key, cp) in candidates {
            if start.is_some() || cp.gz != gz || !head_matches(&file, meta.len(), &cp)? {
                dead_keys.push((key, cp.path));
                continue;
            }
            let resumed = if gz {
                resume_gz(&file, &cp)?.map(|(decoder, recent)| {
                    reader = Reader::Gz(decoder);
                    recent
                })
            } else {
                resume_plain(&file, meta.len(), &cp)?
            };
            match resumed {
                Some(recent) => start = Some((key, cp.offset, recent)),
                None => dead_keys.push((key, cp.path)),
            }
        }
        let resumed = start.is_some();
        let (key, offset, recent) = match start {
            Some(start) => start,
            None => {
                if gz {
                    let decoder = Box::new(MultiGzDecoder::new(BufReader::new(file.try_clone()?)));
                    reader = Reader::Gz(Some(decoder));
                }
                (file_key(id.0, id.1, head_hash), 0, Vec::new())
            }
        };
        let file = Tracked {
            key,
            source_index,
            path: path.to_owned(),
            id,
            reader,
            head_len,
            head_hash,
            // Leading NULs at a start from 0 are padding (see `LineSplitter::skip_nul`).
            lines: LineSplitter::new(max_line_bytes, offset, offset == 0),
            committed_marker: recent.clone(),
            recent,
            committed: offset,
            seen: Some((meta.len(), meta.modified().ok())),
            in_glob: true,
            missing_since: None,
            last_data: Instant::now(),
        };
        Ok(Opened {
            file,
            resumed,
            dead_keys,
        })
    }

    /// Before reading: notices truncation (smaller than what was read, or the bytes before the
    /// read position or the head changed) and restarts at 0, skipping NUL padding. Also extends
    /// the head hash while the file is shorter than `HEAD_BYTES`.
    pub fn check(&mut self) -> io::Result<()> {
        let Reader::Plain(file) = &self.reader else {
            return Ok(());
        };
        let meta = file.metadata()?;
        let len = meta.len();
        let seen = Some((len, meta.modified().ok()));
        if seen == self.seen {
            return Ok(());
        }
        self.seen = seen;
        let end = self.lines.end();
        let replaced = len < end
            || read_hash_at(
                file,
                end - self.recent.len() as u64,
                self.recent.len() as u64,
            )? != Some(hash(&self.recent))
            || (self.head_len > 0 && read_hash_at(file, 0, self.head_len)? != Some(self.head_hash));
        if replaced {
            self.restart();
        }
        if self.head_len < HEAD_BYTES.min(len) {
            let Reader::Plain(file) = &self.reader else {
                return Ok(());
            };
            (self.head_len, self.head_hash) = read_head(file, len)?;
        }
        Ok(())
    }

    /// Reads one chunk into `buf` and pushes the lines it completes; 0 at the end of the data.
    pub fn read_chunk(&mut self, buf: &mut [u8], out: &mut Vec<Line>) -> io::Result<usize> {
        let end = self.lines.end();
        let n = match &mut self.reader {
            Reader::Plain(file) => file.read_at(buf, end)?,
            Reader::Gz(None) => 0,
            Reader::Gz(Some(decoder)) => match decoder.read(buf)? {
                0 => {
                    // A compressed file is complete: its last line needs no newline.
                    self.reader = Reader::Gz(None);
                    if let Some(line) = self.lines.flush() {
                        out.push(line);
                    }
                    self.committed = self.lines.end();
                    self.committed_marker = self.recent.clone();
                    return Ok(0);
                }
                n => n,
            },
        };
        if n == 0 {
            return Ok(0);
        }
        let data = &buf[..n];
        if let Some(completed) = self.lines.feed(data, out) {
            let upto = &data[..(completed - end) as usize];
            self.committed = completed;
            self.committed_marker = tail_of(&self.recent, upto);
        }
        self.recent = tail_of(&self.recent, data);
        self.last_data = Instant::now();
        Ok(n)
    }

    /// The file is done (gone and quiet): its partial last line, if any, becomes a line.
    pub fn finish(&mut self) -> Option<Line> {
        let line = self.lines.flush()?;
        self.committed = self.lines.end();
        self.committed_marker = self.recent.clone();
        Some(line)
    }

    /// A `.gz` file read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self.reader, Reader::Gz(None))
    }

    /// The checkpoint covering every line emitted so far.
    pub fn checkpoint(&self) -> serde_json::Value {
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
            gz: matches!(self.reader, Reader::Gz(_)),
            done: self.is_done(),
        }
        .to_value()
    }

    fn restart(&mut self) {
        let max = self.lines.max_line_bytes();
        self.lines = LineSplitter::new(max, 0, true);
        self.recent.clear();
        self.committed = 0;
        self.committed_marker.clear();
        self.head_len = 0;
        self.head_hash = hash(b"");
    }
}

/// Hash of the first `HEAD_BYTES` bytes (or all of a shorter file), and how many that was.
fn read_head(file: &File, len: u64) -> io::Result<(u64, u64)> {
    let n = len.min(HEAD_BYTES);
    let mut buf = vec![0; n as usize];
    let got = read_full_at(file, &mut buf, 0)?;
    buf.truncate(got);
    Ok((got as u64, hash(&buf)))
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

fn head_matches(file: &File, len: u64, cp: &FileCheckpoint) -> io::Result<bool> {
    if cp.head_len > len || cp.head_len > HEAD_BYTES {
        return Ok(false);
    }
    Ok(read_hash_at(file, 0, cp.head_len)?.map(hex).as_deref() == Some(cp.head_hash.as_str()))
}

/// The bytes before the checkpoint's offset if they are still those it saw.
fn resume_plain(file: &File, len: u64, cp: &FileCheckpoint) -> io::Result<Option<Vec<u8>>> {
    if cp.offset > len || cp.marker_len > cp.offset.min(MARKER_BYTES) {
        return Ok(None);
    }
    let mut marker = vec![0; cp.marker_len as usize];
    let got = read_full_at(file, &mut marker, cp.offset - cp.marker_len)?;
    Ok((got == marker.len() && hex(hash(&marker)) == cp.marker_hash).then_some(marker))
}

/// A decoder positioned at the checkpoint's offset (decompressing and discarding up to it),
/// or `None` for a file already read to its end; `None` overall if the stream differs.
type GzResume = (Option<Box<GzDecoder>>, Vec<u8>);

fn resume_gz(file: &File, cp: &FileCheckpoint) -> io::Result<Option<GzResume>> {
    if cp.done {
        return Ok(Some((None, Vec::new())));
    }
    let mut decoder = Box::new(MultiGzDecoder::new(BufReader::new(file.try_clone()?)));
    let mut left = cp.offset;
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
    let marker = &recent[recent.len() - (cp.marker_len as usize).min(recent.len())..];
    Ok((hex(hash(marker)) == cp.marker_hash).then(|| (Some(decoder), marker.to_vec())))
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
            .field("read", &self.lines.end())
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
