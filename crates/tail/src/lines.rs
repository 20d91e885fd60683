//! Splitting a byte stream into complete lines: a partial last line waits for its newline,
//! over-long lines are cut and flagged (OTLP/JSON lines get a much larger limit, so a whole
//! Collector file-exporter batch stays one line), and NUL runs where a line starts are skipped.

use std::collections::VecDeque;
use std::io::{self, Read};

use crate::Line;

/// How long a line may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimits {
    /// Lines longer than this are cut to it and flagged `truncated`.
    pub max_line_bytes: usize,
    /// A line whose first bytes open an OTLP/JSON object (see [`is_otlp_json_start`]) may be
    /// this long instead; longer still, it is cut to `max_line_bytes` like any other.
    pub max_otlp_line_bytes: usize,
}

/// Whether a line starting with `prefix` is an OTLP/JSON batch: `{` and then, as first key,
/// `resourceSpans`, `resourceLogs` or `resourceMetrics` (or their snake_case forms), blanks
/// allowed in between. That is what the Collector's `otlpjsonfile` exporter writes, one batch
/// per line. Needs at most the first ~24 non-blank bytes.
pub fn is_otlp_json_start(prefix: &[u8]) -> bool {
    let mut rest = prefix.trim_ascii_start();
    let Some(after) = rest.strip_prefix(b"{") else {
        return false;
    };
    rest = after.trim_ascii_start();
    const KEYS: [&[u8]; 6] = [
        b"\"resourceSpans\"",
        b"\"resourceLogs\"",
        b"\"resourceMetrics\"",
        b"\"resource_spans\"",
        b"\"resource_logs\"",
        b"\"resource_metrics\"",
    ];
    KEYS.iter().any(|key| rest.starts_with(key))
}

/// Line state of one file. Holds at most `max_line_bytes` of the current line, or
/// `max_otlp_line_bytes` of an OTLP/JSON line.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    limits: LineLimits,
    /// The start of the current line so far.
    buf: Vec<u8>,
    /// Offset of the current line's first byte.
    start: u64,
    /// Offset just past the last byte fed.
    end: u64,
    /// The current line passed its limit; its rest is being skipped.
    truncated: bool,
    /// Whether the current line is OTLP/JSON: decided once it passes `max_line_bytes`.
    otlp: Option<bool>,
}

impl LineSplitter {
    /// A splitter starting at `offset` (a line start).
    pub fn new(limits: LineLimits, offset: u64) -> LineSplitter {
        LineSplitter {
            limits: LineLimits {
                max_line_bytes: limits.max_line_bytes.max(1),
                max_otlp_line_bytes: limits.max_otlp_line_bytes.max(limits.max_line_bytes),
            },
            buf: Vec::new(),
            start: offset,
            end: offset,
            truncated: false,
            otlp: None,
        }
    }

    /// Feeds the bytes that follow those fed before; pushes every line completed to `out`.
    /// Returns the offset just past the last newline, if a line was completed.
    ///
    /// NUL bytes where a line starts are skipped: a writer without `O_APPEND` leaves a hole of
    /// zeros where a copytruncate removed the data, and a hole is not a line.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Line>) -> Option<u64> {
        let mut completed = None;
        loop {
            if self.start == self.end {
                let n = data.iter().take_while(|&&b| b == 0).count();
                self.end += n as u64;
                self.start = self.end;
                data = &data[n..];
            }
            if data.is_empty() {
                return completed;
            }
            match memchr::memchr(b'\n', data) {
                Some(newline) => {
                    self.push(&data[..newline]);
                    self.end += newline as u64 + 1;
                    out.push(self.take_line());
                    self.start = self.end;
                    completed = Some(self.end);
                    data = &data[newline + 1..];
                }
                None => {
                    self.push(data);
                    self.end += data.len() as u64;
                    return completed;
                }
            }
        }
    }

    /// The partial last line, if any, as a line of its own (its file ended without a newline).
    pub fn flush(&mut self) -> Option<Line> {
        if self.end == self.start {
            return None;
        }
        let line = self.take_line();
        self.start = self.end;
        Some(line)
    }

    /// Offset just past the last byte fed.
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn limits(&self) -> LineLimits {
        self.limits
    }

    /// The partial line held is longer than `max_line_bytes` (an OTLP/JSON line on its way):
    /// the reader finishes it before it turns to another file, or drops it at the end of the
    /// data, so at most one such line is in memory.
    pub fn holds_big_line(&self) -> bool {
        self.buf.len() > self.limits.max_line_bytes
    }

    /// Bytes held for the partial line.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.truncated || bytes.is_empty() {
            return;
        }
        let max = self.limits.max_line_bytes;
        if self.buf.len() + bytes.len() <= max {
            self.buf.extend_from_slice(bytes);
            return;
        }
        let otlp = *self.otlp.get_or_insert_with(|| {
            let mut prefix = self.buf[..self.buf.len().min(64)].to_vec();
            prefix.extend_from_slice(&bytes[..bytes.len().min(64)]);
            is_otlp_json_start(&prefix)
        });
        let limit = if otlp {
            self.limits.max_otlp_line_bytes
        } else {
            max
        };
        if self.buf.len() + bytes.len() <= limit {
            self.buf.extend_from_slice(bytes);
            return;
        }
        // Too long even for its kind: keep the usual `max_line_bytes` of it, flagged.
        self.truncated = true;
        if self.buf.len() > max {
            self.buf.truncate(max);
            self.buf.shrink_to(max);
        } else {
            let room = max - self.buf.len();
            self.buf.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    fn take_line(&mut self) -> Line {
        let mut bytes = std::mem::take(&mut self.buf);
        let truncated = std::mem::take(&mut self.truncated);
        self.otlp = None;
        if !truncated && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Line {
            offset: self.start,
            bytes,
            truncated,
        }
    }
}

/// Complete lines from any reader (a file, a decompressor), split as the tailer splits them:
/// the same limits, the same NUL skipping, and a last line without a newline at the end.
/// `threadline ingest` reads files with it. Memory: one read buffer and one line.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    lines: LineSplitter,
    buf: Vec<u8>,
    ready: VecDeque<Line>,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, limits: LineLimits) -> LineReader<R> {
        LineReader {
            inner,
            lines: LineSplitter::new(limits, 0),
            buf: vec![0; 64 << 10],
            ready: VecDeque::new(),
            eof: false,
        }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut out = Vec::new();
        while self.ready.is_empty() && !self.eof {
            let n = match self.inner.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                out.extend(self.lines.flush());
            } else {
                self.lines.feed(&self.buf[..n], &mut out);
            }
            self.ready.extend(out.drain(..));
        }
        Ok(self.ready.pop_front())
    }

    /// Bytes consumed from the input so far.
    pub fn position(&self) -> u64 {
        self.lines.end()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> LineLimits {
        LineLimits {
            max_line_bytes: max,
            max_otlp_line_bytes: max,
        }
    }

    fn texts(lines: &[Line]) -> Vec<(u64, String, bool)> {
        lines
            .iter()
            .map(|l| {
                (
                    l.offset,
                    String::from_utf8_lossy(&l.bytes).into_owned(),
                    l.truncated,
                )
            })
            .collect()
    }

    #[test]
    fn partial_lines_wait_and_empty_lines_count() {
        let mut s = LineSplitter::new(limits(100), 0);
        let mut out = Vec::new();
        assert_eq!(s.feed(b"ab", &mut out), None);
        assert_eq!(s.feed(b"c\n\nd\r\ne", &mut out), Some(8));
        assert_eq!(
            texts(&out),
            [
                (0, "abc".into(), false),
                (4, "".into(), false),
                (5, "d".into(), false)
            ]
        );
        assert_eq!(s.end(), 9);
        assert_eq!(texts(&[s.flush().unwrap()]), [(8, "e".into(), false)]);
        assert_eq!(s.flush(), None);
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let mut s = LineSplitter::new(limits(4), 10);
        let mut out = Vec::new();
        s.feed(b"abcdef", &mut out);
        assert_eq!(s.buffered(), 4);
        s.feed(b"gh\nxy\n", &mut out);
        assert_eq!(
            texts(&out),
            [(10, "abcd".into(), true), (19, "xy".into(), false)]
        );
    }

    #[test]
    fn nul_padding_is_skipped_at_the_restart_point() {
        let mut s = LineSplitter::new(limits(100), 0);
        let mut out = Vec::new();
        assert_eq!(s.feed(&[0, 0, 0], &mut out), None);
        assert_eq!(s.feed(b"\0\0ok\n", &mut out), Some(8));
        assert_eq!(texts(&out), [(5, "ok".into(), false)]);
    }

    #[test]
    fn nul_runs_where_a_line_starts_are_skipped() {
        let mut s = LineSplitter::new(limits(100), 0);
        let mut out = Vec::new();
        s.feed(b"a\n\0\0b\0c\n\0", &mut out);
        s.feed(b"\0\n", &mut out);
        assert_eq!(
            texts(&out),
            [
                (0, "a".into(), false),
                (4, "b\0c".into(), false),
                (10, "".into(), false)
            ]
        );
    }

    #[test]
    fn otlp_json_lines_get_the_larger_limit_and_are_cut_beyond_it() {
        let lim = LineLimits {
            max_line_bytes: 20,
            max_otlp_line_bytes: 60,
        };
        let otlp = format!("{{\"resourceSpans\":[{}]}}", "1,".repeat(15));
        let huge = format!("{{ \"resourceLogs\":[{}]}}", "1,".repeat(40));
        let text = "x".repeat(30);
        let mut s = LineSplitter::new(lim, 0);
        let mut out = Vec::new();
        for chunk in format!("{otlp}\n{huge}\n{text}\nend\n")
            .as_bytes()
            .chunks(7)
        {
            s.feed(chunk, &mut out);
            assert!(s.buffered() <= 60);
        }
        let got: Vec<(usize, bool)> = out.iter().map(|l| (l.bytes.len(), l.truncated)).collect();
        assert_eq!(
            got,
            [(otlp.len(), false), (20, true), (20, true), (3, false)]
        );
        assert_eq!(out[0].bytes, otlp.as_bytes());
    }

    #[test]
    fn otlp_detection_looks_at_the_first_key() {
        assert!(is_otlp_json_start(br#"{"resourceSpans":["#));
        assert!(is_otlp_json_start(b" {\n \"resource_logs\" :"));
        assert!(!is_otlp_json_start(br#"{"msg":"resourceSpans"}"#));
        assert!(!is_otlp_json_start(br#"["resourceSpans"]"#));
    }

    #[test]
    fn line_reader_yields_the_last_line_without_newline() {
        let input: &[u8] = b"\0\0one\ntwo";
        let mut r = LineReader::new(input, limits(100));
        let mut got = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            got.push(line);
        }
        assert_eq!(
            texts(&got),
            [(2, "one".into(), false), (6, "two".into(), false)]
        );
        assert_eq!(r.position(), 9);
    }
}
