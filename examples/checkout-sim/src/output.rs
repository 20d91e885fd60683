//! The output folder: one buffered writer per file, exporter-style batching for the span files
//! and the OTLP log file, and the byte/line/record counters the ground truth reports.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::record::{Record, SERVICES, Service};
use crate::truth::{FileTotals, Totals, Truth};
use crate::{LiveStats, format};

/// Lines are kept below 64 KiB (tailers and the Collector's reader cap line sizes).
const MAX_LINE_BYTES: usize = 60 * 1024;
/// A batching exporter's `max_export_batch_size`, scaled down so files have many lines.
const MAX_BATCH_ITEMS: usize = 64;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Create or truncate: a batch run.
    Truncate,
    /// Append to what is there: live mode.
    Append,
}

pub(crate) struct Output {
    files: Vec<FileOut>,
    /// The open batch of each batched file (index into `files`), if any.
    batches: Vec<Option<Batch>>,
    /// Flush a batch once it is this old (simulated ns), like the exporter's schedule delay.
    batch_timeout_ns: i64,
    scratch: Vec<u8>,
    truth: Option<Truth>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

struct FileOut {
    rel: &'static str,
    writer: BufWriter<File>,
    /// For batched files: the text around the items of one line.
    prefix: Vec<u8>,
    suffix: &'static [u8],
    totals: FileTotals,
}

struct Batch {
    items: Vec<u8>,
    n: usize,
    opened_ns: i64,
}

impl Output {
    pub(crate) fn open(
        dir: &Path,
        mode: Mode,
        batch_timeout_ns: i64,
        truth: Option<Truth>,
    ) -> io::Result<Output> {
        fs::create_dir_all(dir.join("spans"))?;
        fs::create_dir_all(dir.join("logs"))?;
        let mut files = Vec::new();
        for service in SERVICES {
            // Index 2 * service: spans; 2 * service + 1: logs.
            let (format, prefix, suffix): (_, _, &'static [u8]) = match service {
                Service::Inventory => ("zipkin-v2-json", b"[".to_vec(), b"]"),
                _ => (
                    "otlp-json-traces",
                    format::otlp_traces_prefix(service),
                    format::OTLP_TRACES_SUFFIX,
                ),
            };
            files.push(FileOut::open(
                dir,
                service.span_file(),
                format,
                mode,
                prefix,
                suffix,
            )?);
            let (format, prefix, suffix): (_, _, &'static [u8]) = match service {
                Service::Gateway => ("ecs-json", Vec::new(), b""),
                Service::Orders => ("logfmt", Vec::new(), b""),
                Service::Inventory => ("python-json-logger", Vec::new(), b""),
                Service::Payments => ("datadog-json", Vec::new(), b""),
                Service::Email => (
                    "otlp-json-logs",
                    format::otlp_logs_prefix(service),
                    format::OTLP_LOGS_SUFFIX,
                ),
            };
            files.push(FileOut::open(
                dir,
                service.log_file(),
                format,
                mode,
                prefix,
                suffix,
            )?);
        }
        let batches = files.iter().map(|_| None).collect();
        Ok(Output {
            files,
            batches,
            batch_timeout_ns,
            scratch: Vec::with_capacity(4096),
            truth,
        })
    }

    /// Writes one record (into its file's batch, or as its own line), counting it.
    pub(crate) fn write(&mut self, record: &Record) -> io::Result<()> {
        if let Some(truth) = &mut self.truth {
            truth.observe(record);
        }
        let emit_ns = record.emit_ns();
        self.scratch.clear();
        let (file, batched) = match record {
            Record::Span(span) => {
                match span.service {
                    Service::Inventory => format::zipkin_span(&mut self.scratch, span),
                    _ => format::otlp_span(&mut self.scratch, span),
                }
                (2 * span.service.index(), true)
            }
            Record::Log(log) => {
                match log.service {
                    Service::Gateway => format::ecs_line(&mut self.scratch, log),
                    Service::Orders => format::logfmt_line(&mut self.scratch, log),
                    Service::Inventory => format::python_json_line(&mut self.scratch, log),
                    Service::Payments => format::datadog_line(&mut self.scratch, log),
                    Service::Email => format::otlp_log(&mut self.scratch, log),
                }
                (2 * log.service.index() + 1, log.service == Service::Email)
            }
        };
        match record {
            Record::Span(_) => self.files[file].totals.spans += 1,
            Record::Log(_) => self.files[file].totals.logs += 1,
        }
        if !batched {
            self.scratch.push(b'\n');
            return self.files[file].write_line(&self.scratch);
        }
        let room =
            MAX_LINE_BYTES - self.files[file].prefix.len() - self.files[file].suffix.len() - 1;
        if let Some(batch) = &self.batches[file]
            && (batch.n >= MAX_BATCH_ITEMS || batch.items.len() + 1 + self.scratch.len() > room)
        {
            self.flush_batch(file)?;
        }
        let batch = self.batches[file].get_or_insert_with(|| Batch {
            items: Vec::with_capacity(16 * 1024),
            n: 0,
            opened_ns: emit_ns,
        });
        if batch.n > 0 {
            batch.items.push(b',');
        }
        batch.items.extend_from_slice(&self.scratch);
        batch.n += 1;
        Ok(())
    }

    /// Writes out every batch opened at least `batch_timeout_ns` before `now_ns`.
    pub(crate) fn flush_stale(&mut self, now_ns: i64) -> io::Result<()> {
        for file in 0..self.batches.len() {
            if let Some(batch) = &self.batches[file]
                && now_ns - batch.opened_ns >= self.batch_timeout_ns
            {
                self.flush_batch(file)?;
            }
        }
        Ok(())
    }

    /// Writes out every open batch and flushes every file to the OS: afterwards the files hold
    /// only whole lines.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        for file in 0..self.batches.len() {
            self.flush_batch(file)?;
        }
        for f in &mut self.files {
            f.writer.flush()?;
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.totals.bytes).sum()
    }

    pub(crate) fn stats(&self) -> LiveStats {
        let mut stats = LiveStats::default();
        for f in &self.files {
            stats.spans += f.totals.spans;
            stats.logs += f.totals.logs;
            stats.lines += f.totals.lines;
            stats.bytes += f.totals.bytes;
        }
        stats
    }

    /// Flushes everything and hands back the counters (and the ground truth, if kept).
    pub(crate) fn finish(mut self) -> io::Result<(Totals, Option<Truth>)> {
        self.flush()?;
        let mut totals = Totals::default();
        for f in &self.files {
            totals.spans += f.totals.spans;
            totals.logs += f.totals.logs;
            totals.lines += f.totals.lines;
            totals.bytes += f.totals.bytes;
            totals.files.insert(f.rel.to_owned(), f.totals.clone());
        }
        Ok((totals, self.truth.take()))
    }

    fn flush_batch(&mut self, file: usize) -> io::Result<()> {
        let Some(batch) = self.batches[file].take() else {
            return Ok(());
        };
        let f = &mut self.files[file];
        let mut line = Vec::with_capacity(f.prefix.len() + batch.items.len() + f.suffix.len() + 1);
        line.extend_from_slice(&f.prefix);
        line.extend_from_slice(&batch.items);
        line.extend_from_slice(f.suffix);
        line.push(b'\n');
        f.write_line(&line)
    }
}

impl FileOut {
    fn open(
        dir: &Path,
        rel: &'static str,
        format: &'static str,
        mode: Mode,
        prefix: Vec<u8>,
        suffix: &'static [u8],
    ) -> io::Result<FileOut> {
        let path = dir.join(rel);
        let file = match mode {
            Mode::Truncate => File::create(&path),
            Mode::Append => OpenOptions::new().create(true).append(true).open(&path),
        }
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(FileOut {
            rel,
            writer: BufWriter::with_capacity(256 * 1024, file),
            prefix,
            suffix,
            totals: FileTotals {
                format,
                ..FileTotals::default()
            },
        })
    }

    /// One `write_all` per line: `BufWriter` then never splits a line across two of its flushes
    /// unless the line is larger than its buffer, which ours never are.
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.writer.write_all(line)?;
        self.totals.lines += 1;
        self.totals.bytes += line.len() as u64;
        Ok(())
    }
}
