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

/// Decodes one file, calling `sink` with batches of records; warnings go to `on_warning`.
/// `progress` is called with the number of bytes consumed since the last call.
pub fn decode_file(
    path: &Path,
    options: &Options,
    stats: &mut Stats,
    sink: &mut dyn FnMut(Vec<Record>) -> anyhow::Result<()>,
    on_warning: &mut dyn FnMut(&str, &decode::Warning),
    progress: &dyn Fn(u64),
) -> anyhow::Result<()> {
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
    // Lines are cut by the line reader (OTLP/JSON ones at their own, larger limit): the decoder
    // takes every line it is given whole.
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
    // Rotated logs are often gzipped: read them decompressed (offsets count decompressed bytes).
    let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    // Like grep, skip binary files (a NUL byte near the start): an executable or an image would
    // otherwise become hundreds of thousands of raw records. A NUL run where a line starts is
    // not binary but a hole (copytruncate under a writer without O_APPEND): skipped, as `serve`
    // skips it.
    if is_binary(&head[..head.len().min(8192)]) {
        stats.warnings += 1;
        on_warning(
            &source,
            &decode::Warning {
                offset: 0,
                message: "binary file (NUL bytes near the start); skipped".to_owned(),
            },
        );
        return Ok(());
    }
    let multiline = first_line(head).is_some_and(starts_multiline_document);
    let read_time_ns = crate::timespec::now_ns();
    let mut out = Output::default();
    stats.files += 1;

    if multiline {
        // One JSON document over many lines (a pretty-printed OTLP body, a Jaeger download).
        let mut doc = Vec::new();
        reader
            .read_to_end(&mut doc)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let start = doc.iter().take_while(|&&b| b == 0).count();
        decoder.decode_all(&doc[start..], &source, read_time_ns, &mut out);
        stats.bytes += doc.len() as u64;
        progress(doc.len() as u64);
        flush(&mut out, &source, stats, sink, on_warning)?;
        return Ok(());
    }
    let mut lines = LineReader::new(reader, limits);
    let mut consumed = 0;
    loop {
        let next = lines
            .next_line()
            .with_context(|| format!("cannot read {} at byte {consumed}", path.display()))?;
        let Some(line) = next else {
            break;
        };
        let first = out.records.len();
        decoder.decode_line(
            &line.bytes,
            &LineContext {
                source: &source,
                offset: line.offset,
                read_time_ns,
            },
            &mut out,
        );
        if line.truncated {
            mark_truncated(&mut out, first, &line);
        }
        let position = lines.position();
        stats.bytes += position - consumed;
        progress(position - consumed);
        consumed = position;
        if out.records.len() >= BATCH_RECORDS {
            flush(&mut out, &source, stats, sink, on_warning)?;
        }
    }
    flush(&mut out, &source, stats, sink, on_warning)
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
