//! `threadline ingest`: walk files and folders, decode line by line (or a whole multi-line JSON
//! document), and hand batches of records to the index writer.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use decode::{Decoder, DecoderConfig, LineContext, Output};
use model::{Problems, Record};

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
    let decoder = Decoder::new(DecoderConfig {
        service,
        patterns: options.patterns.clone(),
        ..DecoderConfig::default()
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
    // Like grep, skip binary files (a NUL byte near the start): an executable or an image would
    // otherwise become hundreds of thousands of raw records.
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if head[..head.len().min(8192)].contains(&0) {
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
    let read_time_ns = crate::timespec::now_ns();
    let mut out = Output::default();
    let mut line = Vec::with_capacity(4096);
    let mut offset = 0u64;
    stats.files += 1;

    let first_len = reader
        .read_until(b'\n', &mut line)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if starts_multiline_document(&line) {
        // One JSON document over many lines (a pretty-printed OTLP body, a Jaeger download).
        reader
            .read_to_end(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        decoder.decode_all(&line, &source, read_time_ns, &mut out);
        stats.bytes += line.len() as u64;
        progress(line.len() as u64);
        flush(&mut out, &source, stats, sink, on_warning)?;
        return Ok(());
    }
    let mut len = first_len;
    while len > 0 {
        decoder.decode_line(
            &line,
            &LineContext {
                source: &source,
                offset,
                read_time_ns,
            },
            &mut out,
        );
        offset += len as u64;
        stats.bytes += len as u64;
        progress(len as u64);
        if out.records.len() >= BATCH_RECORDS {
            flush(&mut out, &source, stats, sink, on_warning)?;
        }
        line.clear();
        len = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {} at byte {offset}", path.display()))?;
    }
    flush(&mut out, &source, stats, sink, on_warning)
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
