//! Every input format threadline reads, decoded to model records with no configuration.
//!
//! [`Decoder::decode_line`] takes one line of a file, detects its format from its first bytes and
//! top-level keys, and appends records and warnings to an [`Output`]. A line that no decoder
//! understands becomes a raw log record with [`Problems::PARSE_ERROR`] set: nothing is dropped,
//! and one bad line never affects the lines around it. Pure functions over bytes, no I/O.

mod common;
mod detect;
mod jaeger;
mod json_log;
mod otlp_json;
pub mod otlp_proto;
mod text;
pub mod time;
mod zipkin;

use model::{LogRecord, Origin, Problems, Record};
use regex::Regex;

pub use detect::{Format, detect};

/// Lines longer than this are cut and flagged (1 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// How one source's lines are decoded. Everything has a default; a source in the config may set
/// a service name and add its own regexes.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Service for records that name none (a source's configured service, else the file stem).
    pub service: Option<String>,
    /// Extra text patterns, tried before the built-in ones. Named groups `trace_id`, `span_id`,
    /// `time`, `level`, `service`, `message` fill those fields; any other group is an attribute.
    pub patterns: Vec<String>,
    pub max_line_bytes: usize,
}

/// A compiled [`DecoderConfig`].
#[derive(Debug, Clone)]
pub struct Decoder {
    service: Option<String>,
    patterns: Vec<Regex>,
    max_line_bytes: usize,
}

/// Where records of one line go, with what went wrong on the way.
#[derive(Debug, Default)]
pub struct Output {
    pub records: Vec<Record>,
    pub warnings: Vec<Warning>,
    /// Records of an OTLP/JSON batch that could not be decoded, each left out alone while the
    /// records around it were decoded. [`Decoder::decode_document`] leaves them here for the
    /// caller (the OTLP receiver counts them in `partialSuccess`); [`Decoder::decode_line`] and
    /// [`Decoder::decode_all`] keep each one as a raw record with a warning, so a file loses
    /// nothing.
    pub rejected: Vec<Rejected>,
}

/// One record of a batch that could not be decoded: where it sits, why, and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Byte offset of the line (or document) that held it.
    pub offset: u64,
    /// Its place in the batch, e.g. `resourceSpans[0].scopeSpans[1].spans[3]`.
    pub path: String,
    /// What failed inside it, e.g. `attributes[2].value.intValue: "99999999999999999999" is
    /// out of the 64-bit integer range`.
    pub reason: String,
    /// The record's JSON as it was sent.
    pub text: String,
}

/// A problem in the input that did not stop decoding: a malformed id, a value of the wrong type,
/// a line that was not understood. `offset` is the byte offset of the line in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub offset: u64,
    pub message: String,
}

/// The errors of this crate: only configuration and whole-body decoding can fail outright.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("pattern {index} ({pattern:?}) is not a valid regex: {source}")]
    Pattern {
        index: usize,
        pattern: String,
        source: regex::Error,
    },
    #[error("invalid OTLP protobuf body: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid JSON body at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the body is not a {expected} document")]
    WrongShape { expected: &'static str },
}

/// Where one line sits, so records can point back to it.
#[derive(Debug, Clone, Copy)]
pub struct LineContext<'a> {
    /// The source name stored as the record's origin (usually the file path).
    pub source: &'a str,
    /// Byte offset of the line's first byte in the source.
    pub offset: u64,
    /// The time the line was read; used for records that carry no time of their own.
    pub read_time_ns: i64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            service: None,
            patterns: Vec::new(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl Decoder {
    pub fn new(config: DecoderConfig) -> Result<Decoder, DecodeError> {
        let patterns = config
            .patterns
            .iter()
            .enumerate()
            .map(|(index, pattern)| {
                Regex::new(pattern).map_err(|source| DecodeError::Pattern {
                    index,
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Decoder {
            service: config.service,
            patterns,
            max_line_bytes: config.max_line_bytes,
        })
    }

    /// The service given to records that name none.
    pub fn default_service(&self) -> &str {
        self.service.as_deref().unwrap_or("unknown")
    }

    /// The source's own text patterns, tried before the built-in ones.
    pub(crate) fn patterns(&self) -> &[Regex] {
        &self.patterns
    }

    /// Decodes one line (without its newline) and appends what it holds to `out`.
    pub fn decode_line(&self, line: &[u8], cx: &LineContext<'_>, out: &mut Output) {
        let first_record = out.records.len();
        let first_rejected = out.rejected.len();
        let mut problems = Problems::empty();
        let line = strip_line_end(line);
        let line = if line.len() > self.max_line_bytes {
            problems.insert(Problems::TRUNCATED);
            out.warnings.push(Warning {
                offset: cx.offset,
                message: format!(
                    "line of {} bytes cut to the {}-byte limit",
                    line.len(),
                    self.max_line_bytes
                ),
            });
            &line[..self.max_line_bytes]
        } else {
            line
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        // A truncated line is never valid JSON; keep its text so the data is not lost.
        let decoded = if problems.contains(Problems::TRUNCATED) {
            false
        } else {
            match std::str::from_utf8(line) {
                Ok(text) => self.decode_text(text, cx, out),
                Err(_) => {
                    problems.insert(Problems::INVALID_UTF8);
                    out.warnings.push(Warning {
                        offset: cx.offset,
                        message: "line is not valid UTF-8; replaced invalid bytes".to_owned(),
                    });
                    let text = String::from_utf8_lossy(line);
                    self.decode_text(&text, cx, out)
                }
            }
        };
        if !decoded {
            out.records.truncate(first_record);
            out.rejected.truncate(first_rejected);
            problems.insert(Problems::PARSE_ERROR);
            out.records
                .push(Record::Log(self.raw_record(line, problems, cx)));
        } else {
            self.keep_rejected_as_raw(out, first_rejected, cx);
            if !problems.is_empty() {
                for record in &mut out.records[first_record..] {
                    if let Record::Log(log) = record {
                        log.problems.insert(problems);
                    }
                }
            }
        }
        for record in &mut out.records[first_record..] {
            if record.origin().is_none() {
                record.set_origin(Origin {
                    source: cx.source.to_owned(),
                    offset: cx.offset,
                });
            }
        }
    }

    /// Decodes a whole document: an OTLP/JSON request body, a Jaeger UI download, a Zipkin
    /// array, possibly pretty-printed over many lines. OTLP/JSON records that cannot be decoded
    /// go to `out.rejected`; an error means the document as a whole is not of a known format.
    pub fn decode_document(
        &self,
        doc: &[u8],
        cx: &LineContext<'_>,
        out: &mut Output,
    ) -> Result<Format, DecodeError> {
        let text = std::str::from_utf8(doc).map_err(|e| DecodeError::Json {
            line: 1,
            column: e.valid_up_to() + 1,
            message: "not valid UTF-8".to_owned(),
        })?;
        let format = detect::detect_document(text);
        let ok = match format {
            Format::OtlpTraces => otlp_json::decode_traces(text, self, cx, out),
            Format::OtlpLogs => otlp_json::decode_logs(text, self, cx, out),
            Format::Zipkin => zipkin::decode(text, self, cx, out),
            Format::Jaeger => jaeger::decode(text, self, cx, out),
            _ => Err(json_error(text)),
        };
        ok.map(|()| format)
    }

    /// Decodes a whole file's bytes: one JSON document spread over many lines (a pretty-printed
    /// OTLP request, a Jaeger UI download) is decoded whole, anything else line by line.
    /// Returns the number of lines (or 1 for a document).
    pub fn decode_all(
        &self,
        bytes: &[u8],
        source: &str,
        read_time_ns: i64,
        out: &mut Output,
    ) -> usize {
        if is_multiline_document(bytes) {
            let cx = LineContext {
                source,
                offset: 0,
                read_time_ns,
            };
            let first_record = out.records.len();
            let first_rejected = out.rejected.len();
            match self.decode_document(bytes, &cx, out) {
                Ok(_) => {
                    self.keep_rejected_as_raw(out, first_rejected, &cx);
                    for record in &mut out.records[first_record..] {
                        if record.origin().is_none() {
                            record.set_origin(Origin {
                                source: source.to_owned(),
                                offset: 0,
                            });
                        }
                    }
                    return 1;
                }
                Err(err) => {
                    out.records.truncate(first_record);
                    out.rejected.truncate(first_rejected);
                    out.warnings.push(Warning {
                        offset: 0,
                        message: err.to_string(),
                    });
                }
            }
        }
        let mut n_lines = 0;
        let mut start = 0;
        // Lines as `split_inclusive(b'\n')` gives them (each with its newline, a last line
        // without one when the bytes do not end in a newline), found with memchr.
        let newlines = memchr::memchr_iter(b'\n', bytes).map(|at| at + 1);
        let ends = newlines.chain((!bytes.is_empty()).then_some(bytes.len()));
        for end in ends {
            if end <= start {
                break;
            }
            let cx = LineContext {
                source,
                offset: start as u64,
                read_time_ns,
            };
            self.decode_line(&bytes[start..end], &cx, out);
            start = end;
            n_lines += 1;
        }
        n_lines
    }

    /// Tries each format on a line of text; false when none understood it.
    fn decode_text(&self, text: &str, cx: &LineContext<'_>, out: &mut Output) -> bool {
        let format = detect(text);
        let result = match format {
            Format::OtlpTraces => otlp_json::decode_traces(text, self, cx, out),
            Format::OtlpLogs => otlp_json::decode_logs(text, self, cx, out),
            Format::Zipkin => zipkin::decode(text, self, cx, out),
            Format::Jaeger => jaeger::decode(text, self, cx, out),
            Format::JsonLog => json_log::decode(text, self, cx, out),
            Format::Text => return text::decode(text, self, cx, out),
            Format::OtlpMetrics => {
                out.warnings.push(Warning {
                    offset: cx.offset,
                    message: "OTLP metrics are not indexed; line kept as a raw record".to_owned(),
                });
                return false;
            }
        };
        match result {
            Ok(()) => true,
            // A JSON log that merely mentions a span format's key is still a JSON log.
            Err(_)
                if matches!(format, Format::Zipkin | Format::Jaeger)
                    && text.trim_start().starts_with('{')
                    && json_log::decode(text, self, cx, out).is_ok() =>
            {
                true
            }
            Err(err) => {
                out.warnings.push(Warning {
                    offset: cx.offset,
                    message: format!("{}: {err}", format.name()),
                });
                false
            }
        }
    }

    /// Turns the records rejected since `first` into raw records, each with a warning naming
    /// where it was and what failed: in a file nothing is dropped.
    fn keep_rejected_as_raw(&self, out: &mut Output, first: usize, cx: &LineContext<'_>) {
        for rejected in out.rejected.drain(first..) {
            out.warnings.push(Warning {
                offset: rejected.offset,
                message: format!(
                    "{}: {}; record kept as raw text",
                    rejected.path, rejected.reason
                ),
            });
            out.records.push(Record::Log(self.raw_record(
                rejected.text.as_bytes(),
                Problems::PARSE_ERROR,
                cx,
            )));
        }
    }

    /// The record for a line nobody understood: the text is the body, nothing else is guessed
    /// except a time (the read time, flagged).
    fn raw_record(&self, line: &[u8], problems: Problems, cx: &LineContext<'_>) -> LogRecord {
        LogRecord {
            time_ns: cx.read_time_ns,
            service: self.default_service().to_owned(),
            body: String::from_utf8_lossy(line).into_owned(),
            problems: problems | Problems::NO_TIMESTAMP,
            ..LogRecord::default()
        }
    }
}

impl Output {
    pub fn clear(&mut self) {
        self.records.clear();
        self.warnings.clear();
        self.rejected.clear();
    }
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::OtlpTraces => "OTLP/JSON traces",
            Format::OtlpLogs => "OTLP/JSON logs",
            Format::OtlpMetrics => "OTLP/JSON metrics",
            Format::Zipkin => "Zipkin v2 JSON",
            Format::Jaeger => "Jaeger JSON",
            Format::JsonLog => "JSON log",
            Format::Text => "text",
        }
    }
}

/// serde_json's error for a document, with its line and column.
pub(crate) fn json_error(text: &str) -> DecodeError {
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Err(e) => DecodeError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        },
        Ok(_) => DecodeError::WrongShape {
            expected: "known JSON",
        },
    }
}

/// Whether the bytes hold a single JSON value that spans several lines.
fn is_multiline_document(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else { return false };
    if !matches!(bytes[start], b'{' | b'[') {
        return false;
    }
    let body = &bytes[start..];
    let Some(first_newline) = memchr::memchr(b'\n', body) else {
        return false;
    };
    if body[first_newline..].iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    // A JSON-lines file fails here at its second line, after parsing only the first.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
