//! `threadline ingest`: walk files and folders, decode line by line (or a whole multi-line JSON
//! document), and hand batches of records to the index writer.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use decode::{Decoder, DecoderConfig, LineContext, Output};
use model::{Problems, Record};
use tail::{LineLimits, LineReader};

/// Records per batch sent to the writer.
const BATCH_RECORDS: usize = 4096;

/// What an ingest run did (the `ingest --json` summary).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
    pub spans: u64,
    pub logs: u64,
    pub unparsed: u64,
    pub warnings: u64,
}

/// Options shared by every file of a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub service: Option<String>,
    pub patterns: Vec<String>,
}

/// Every regular file under `paths` (recursively, sorted, hidden entries skipped).
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// One file being decoded, a step at a time, so that a run can read several files side by side
/// ([`decode_side_by_side`]).
pub struct FileDecoder {
    source: String,
    path: PathBuf,
    decoder: Decoder,
    /// `None` once the file is done.
    input: Option<Input>,
    read_time_ns: i64,
    out: Output,
    consumed: u64,
    /// Its size on disk (for a gzipped file, less than what it decompresses to).
    len: u64,
}

enum Input {
    Lines(LineReader<BufReader<Box<dyn Read>>>),
    /// One JSON document over many lines, decoded whole at the first step.
    Document(BufReader<Box<dyn Read>>),
}

impl FileDecoder {
    /// Opens `path`; `None` (after a warning) for a binary file, which is skipped.
    pub fn open(
        path: &Path,
        options: &Options,
        stats: &mut Stats,
        on_warning: &mut dyn FnMut(&str, &decode::Warning),
    ) -> anyhow::Result<Option<FileDecoder>> {
        let source = path.to_string_lossy().into_owned();
        let service = options.service.clone().or_else(|| {
            path.file_stem().map(|s| {
                s.to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
        });
        // Lines are cut by the line reader (OTLP/JSON ones at their own, larger limit): the
        // decoder takes every line it is given whole.
        let limits = LineLimits {
            max_line_bytes: tail::DEFAULT_MAX_LINE_BYTES,
            max_otlp_line_bytes: tail::DEFAULT_MAX_OTLP_LINE_BYTES,
        };
        let decoder = Decoder::new(DecoderConfig {
            service,
            patterns: options.patterns.clone(),
            max_line_bytes: limits.max_otlp_line_bytes,
        })
        .context("invalid --pattern")?;
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata().map_or(0, |m| m.len());
        // Rotated logs are often gzipped: read them decompressed (offsets count decompressed
        // bytes).
        let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut reader = BufReader::with_capacity(1 << 20, input);
        let head = reader
            .fill_buf()
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Like grep, skip binary files (a NUL byte near the start): an executable or an image
        // would otherwise become hundreds of thousands of raw records. A NUL run where a line
        // starts is not binary but a hole (copytruncate under a writer without O_APPEND):
        // skipped, as `serve` skips it.
        if is_binary(&head[..head.len().min(8192)]) {
            stats.warnings += 1;
            on_warning(
                &source,
                &decode::Warning {
                    offset: 0,
                    message: "binary file (NUL bytes near the start); skipped".to_owned(),
                },
            );
            return Ok(None);
        }
        let multiline = first_line(head).is_some_and(starts_multiline_document);
        stats.files += 1;
        let input = if multiline {
            Input::Document(reader)
        } else {
            Input::Lines(LineReader::new(reader, limits))
        };
        Ok(Some(FileDecoder {
            source,
            path: path.to_owned(),
            decoder,
            input: Some(input),
            read_time_ns: crate::timespec::now_ns(),
            out: Output::default(),
            consumed: 0,
            len,
        }))
    }

    /// How far through the file it is, 0 to 1 (by bytes on disk; a gzipped file, whose
    /// decompressed bytes are counted, soon reads as 1 and is read after the others).
    pub fn fraction(&self) -> f64 {
        if self.input.is_none() || self.len == 0 {
            return 1.0;
        }
        (self.consumed as f64 / self.len as f64).min(1.0)
    }

    /// Decodes lines until at least `budget` more bytes are consumed or the file ends, handing
    /// every full batch to `sink`; returns whether the file is done (its last records sent).
    pub fn step(
        &mut self,
        budget: u64,
        stats: &mut Stats,
        sink: &mut dyn FnMut(Vec<Record>) -> anyhow::Result<()>,
        on_warning: &mut dyn FnMut(&str, &decode::Warning),
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<bool> {
        let Some(input) = &mut self.input else {
            return Ok(true);
        };
        let lines = match input {
            Input::Document(reader) => {
                let mut doc = Vec::new();
                reader
                    .read_to_end(&mut doc)
                    .with_context(|| format!("cannot read {}", self.path.display()))?;
                let start = doc.iter().take_while(|&&b| b == 0).count();
                self.decoder.decode_all(
                    &doc[start..],
                    &self.source,
                    self.read_time_ns,
                    &mut self.out,
                );
                stats.bytes += doc.len() as u64;
                progress(doc.len() as u64);
                self.input = None;
                flush(&mut self.out, &self.source, stats, sink, on_warning)?;
                return Ok(true);
            }
            Input::Lines(lines) => lines,
        };
        let until = self.consumed.saturating_add(budget);
        while self.consumed < until {
            let next = lines.next_line().with_context(|| {
                format!(
                    "cannot read {} at byte {}",
                    self.path.display(),
                    self.consumed
                )
            })?;
            let Some(line) = next else {
                self.input = None;
                flush(&mut self.out, &self.source, stats, sink, on_warning)?;
                return Ok(true);
            };
            let first = self.out.records.len();
            self.decoder.decode_line(
                &line.bytes,
                &LineContext {
                    source: &self.source,
                    offset: line.offset,
                    read_time_ns: self.read_time_ns,
                },
                &mut self.out,
            );
            if line.truncated {
                mark_truncated(&mut self.out, first, &line);
            }
            let position = lines.position();
            stats.bytes += position - self.consumed;
            progress(position - self.consumed);
            self.consumed = position;
            if self.out.records.len() >= BATCH_RECORDS {
                flush(&mut self.out, &self.source, stats, sink, on_warning)?;
            }
        }
        // Sent now rather than held until a batch fills: a run reading many files side by side
        // would otherwise hold part of a batch for each.
        flush(&mut self.out, &self.source, stats, sink, on_warning)?;
        Ok(false)
    }
}

/// Files read side by side at most (each holds a 1 MiB read buffer).
const SIDE_BY_SIDE_FILES: usize = 32;
/// Bytes read from one file, at least, before the scheduler looks again.
const MIN_STEP: u64 = 1 << 20;
/// Bytes read from all open files together in one turn of the side-by-side reading
/// (`ingest`'s round for [`decode_side_by_side`]).
pub const SIDE_BY_SIDE_ROUND: u64 = 64 << 20;

/// Decodes `files` side by side: up to [`SIDE_BY_SIDE_FILES`] open at once, and always the
/// one least far through next (by the share of its bytes read), `round` bytes over all open
/// files at a time (at least 1 MiB from each). Files written over the same hours (one per
/// service) are then read at about the same moment of time, so the records of a trace, which
/// every service's file holds a part of, reach the index together and land in the same
/// segments: one copy of the trace's terms and trace-id column entry where reading file after
/// file made one per file. Long runs of one file's records keep the postings and columns of a
/// segment nearly as small as reading file after file does (docs/BENCHMARKS.md).
pub fn decode_side_by_side(
    files: &[PathBuf],
    round: u64,
    options: &Options,
    stats: &mut Stats,
    sink: &mut dyn FnMut(Vec<Record>) -> anyhow::Result<()>,
    on_warning: &mut dyn FnMut(&str, &decode::Warning),
    progress: &dyn Fn(u64),
) -> anyhow::Result<()> {
    let mut waiting = files.iter();
    let mut open: Vec<FileDecoder> = Vec::new();
    loop {
        while open.len() < SIDE_BY_SIDE_FILES {
            let Some(path) = waiting.next() else {
                break;
            };
            let opened = FileDecoder::open(path, options, stats, on_warning)
                .with_context(|| format!("while ingesting {}", path.display()))?;
            open.extend(opened);
        }
        let Some(next) =
            (0..open.len()).min_by(|&a, &b| open[a].fraction().total_cmp(&open[b].fraction()))
        else {
            return Ok(());
        };
        let step = (round / open.len() as u64).max(MIN_STEP);
        let file = &mut open[next];
        let done = file
            .step(step, stats, sink, on_warning, progress)
            .with_context(|| format!("while ingesting {}", file.path.display()))?;
        if done {
            open.swap_remove(next);
        }
    }
}

/// A line the line reader cut (it holds only its first `max_line_bytes`): flags its records as
/// the decoder would have, with a warning.
pub fn mark_truncated(out: &mut Output, first_record: usize, line: &tail::Line) {
    for record in &mut out.records[first_record..] {
        if let Record::Log(log) = record {
            log.problems.insert(Problems::TRUNCATED);
        }
    }
    out.warnings.push(decode::Warning {
        offset: line.offset,
        message: format!("line cut to the {}-byte limit", line.bytes.len()),
    });
}

/// A NUL byte that is not part of a run where a line starts.
fn is_binary(window: &[u8]) -> bool {
    let mut line_start = true;
    let mut in_hole = false;
    for &b in window {
        if b == 0 {
            if !line_start && !in_hole {
                return true;
            }
            in_hole = true;
        } else {
            in_hole = false;
            line_start = b == b'\n';
        }
    }
    false
}

/// The first line in `buffered` after leading NULs, if its newline is there.
fn first_line(buffered: &[u8]) -> Option<&[u8]> {
    let start = buffered.iter().take_while(|&&b| b == 0).count();
    let rest = &buffered[start..];
    rest.iter()
        .position(|&b| b == b'\n')
        .map(|end| &rest[..end])
}

fn flush(
    out: &mut Output,
    source: &str,
    stats: &mut Stats,
    sink: &mut dyn FnMut(Vec<Record>) -> anyhow::Result<()>,
    on_warning: &mut dyn FnMut(&str, &decode::Warning),
) -> anyhow::Result<()> {
    for record in &out.records {
        stats.records += 1;
        match record {
            Record::Span(_) => stats.spans += 1,
            Record::Log(log) => {
                stats.logs += 1;
                if log.problems.contains(Problems::PARSE_ERROR) {
                    stats.unparsed += 1;
                }
            }
        }
    }
    for warning in &out.warnings {
        stats.warnings += 1;
        on_warning(source, warning);
    }
    out.warnings.clear();
    if !out.records.is_empty() {
        sink(std::mem::take(&mut out.records))?;
    }
    Ok(())
}

/// The first line opens a JSON value that it does not close.
fn starts_multiline_document(first_line: &[u8]) -> bool {
    let trimmed = first_line.trim_ascii();
    matches!(trimmed.first(), Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON log lines of ~200 bytes, numbered, until the file holds `bytes`.
    fn write_log(dir: &Path, name: &str, bytes: usize) -> PathBuf {
        let mut text = String::new();
        let mut n = 0;
        while text.len() < bytes {
            text.push_str(&format!(
                "{{\"time\":\"2026-11-20T14:00:00Z\",\"level\":\"info\",\"msg\":\"{name} line {n:06}\",\"pad\":\"{}\"}}\n",
                "x".repeat(120)
            ));
            n += 1;
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Every record of every file arrives once and in its file's order, the files interleaved
    /// (the one least far through goes next); a binary file is skipped with a warning and a
    /// multi-line document is read whole.
    #[test]
    fn files_are_read_side_by_side_each_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let big = write_log(dir.path(), "big.log", 3 << 20);
        let half = write_log(dir.path(), "half.log", 3 << 19);
        let binary = dir.path().join("image.bin");
        std::fs::write(&binary, b"\x7fELF\x02\x01\x01\0\0\0rest").unwrap();
        let document = dir.path().join("doc.json");
        std::fs::write(
            &document,
            "{\n\"resourceLogs\": [{\"scopeLogs\": [{\"logRecords\": [\n\
             {\"timeUnixNano\": \"1795183200000000000\", \"body\": {\"stringValue\": \"whole\"}}\n\
             ]}]}]\n}\n",
        )
        .unwrap();
        let files = vec![big.clone(), binary, half.clone(), document];
        let mut arrivals: Vec<(String, u64)> = Vec::new();
        let mut warnings = Vec::new();
        let mut stats = Stats::default();
        // 2 MiB a turn: 1 MiB from each of the two line files.
        decode_side_by_side(
            &files,
            2 << 20,
            &Options::default(),
            &mut stats,
            &mut |records| {
                for record in records {
                    let origin = record.origin().unwrap();
                    arrivals.push((origin.source.clone(), origin.offset));
                }
                Ok(())
            },
            &mut |source, w| warnings.push(format!("{source}: {}", w.message)),
            &|_| {},
        )
        .unwrap();
        assert_eq!(stats.files, 3);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("image.bin: binary file"),
            "{warnings:?}"
        );
        let of = |path: &Path| -> Vec<usize> {
            let source = path.to_string_lossy();
            (0..arrivals.len())
                .filter(|&n| arrivals[n].0 == source)
                .collect()
        };
        for (path, len) in [(&big, 3u64 << 20), (&half, 3 << 19)] {
            let at = of(path);
            let offsets: Vec<u64> = at.iter().map(|&n| arrivals[n].1).collect();
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{path:?} in order");
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            assert_eq!(offsets.len(), lines, "{path:?}: each line once");
            assert!(*offsets.last().unwrap() < len + 256);
        }
        assert_eq!(of(&files[3]).len(), 1, "the document is one record");
        // Side by side: the smaller file starts before the larger one is half read, and ends
        // before the larger one does.
        let (big_at, half_at) = (of(&big), of(&half));
        assert!(
            half_at[0] < big_at[big_at.len() / 2],
            "{} {}",
            half_at[0],
            big_at.len()
        );
        assert!(half_at.last() < big_at.last());
        assert_eq!(stats.records as usize, arrivals.len());
    }

    #[test]
    fn nul_runs_where_lines_start_are_holes_other_nuls_binary() {
        assert!(!is_binary(b"\0\0\0\0a line\n\0\0next\n"));
        assert!(!is_binary(b"plain text\n"));
        assert!(is_binary(b"\x7fELF\x02\x01\x01\0\0\0"));
        assert!(is_binary(b"\0\0text\0more"));
        assert_eq!(first_line(b"\0\0{\n}"), Some(&b"{"[..]));
        assert_eq!(first_line(b"no newline"), None);
    }
}
