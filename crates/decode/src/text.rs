//! Plain text log lines: a leading timestamp and level word, logfmt `key=value` pairs, trace
//! context written into the text (`trace_id=…`, Python's `[trace_id=… span_id=…]` group, Datadog's
//! `dd.trace_id=…`, an embedded `traceparent` or X-Ray header), and whole-line patterns (the
//! source's own, then a few well-known layouts).
//!
//! Pairs go through the JSON log decoder's alias table ([`json_log::lookup`]), so `trace_id=`,
//! `msg=`, `level=`, `ts=` or `service=` mean in a text line what they mean in a JSON line.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::{self, Finder};
use model::Record;
use regex::{Captures, Regex};

use crate::json_log::{self, Field, Fields, LevelKind, Scalar, SpanIdKind, TraceKind};
use crate::{Decoder, LineContext, Output, time};

/// Decodes one text line; false when nothing in it was recognised (the caller keeps it raw).
/// Understood means: a pattern matched, or at least one of a timestamp, a level, a trace id, or
/// two logfmt pairs was found.
pub(crate) fn decode(
    text: &str,
    decoder: &Decoder,
    cx: &LineContext<'_>,
    out: &mut Output,
) -> bool {
    let mut fields = Fields::new();
    let matched = decoder
        .patterns()
        .iter()
        .chain(
            KNOWN_LAYOUTS
                .iter()
                .filter(|(literal, _)| literal.find(text.as_bytes()).is_some())
                .map(|(_, pattern)| pattern),
        )
        .find_map(|pattern| pattern.captures(text).map(|caps| (pattern, caps)));
    let pattern_matched = matched.is_some();
    let n_pairs = match matched {
        Some((pattern, caps)) => {
            apply_captures(pattern, &caps, &mut fields);
            // Pairs inside the message still become attributes (lograge after a Ruby header).
            let message = caps.name("message").map_or("", |m| m.as_str());
            scan_pairs(message, &mut fields, Body::Keep);
            if !fields.has_message() {
                fields.scalar(
                    Field::Message(TEXT_BODY_RANK),
                    Cow::Borrowed("message"),
                    0,
                    Scalar::Str(Cow::Borrowed(text)),
                );
            }
            1
        }
        None => scan_line(text, &mut fields),
    };
    if !fields.trace_seen() || !fields.span_seen() {
        scan_embedded_ids(text, &mut fields);
        scan_sleuth_ids(text, &mut fields);
    }
    if !fields.has_time() {
        find_access_log_time(text, &mut fields);
    }
    let understood = pattern_matched
        || n_pairs >= 2
        || fields.has_time()
        || fields.has_level()
        || fields.has_trace();
    if !understood {
        return false;
    }
    let record = fields.finish(decoder, cx, &mut out.warnings);
    out.records.push(Record::Log(record));
    true
}

/// Well-known whole-line layouts, tried after the source's own patterns (named groups as for
/// configured patterns). Each has a literal that must occur, checked before the regex runs.
static KNOWN_LAYOUTS: LazyLock<Vec<(Finder<'static>, Regex)>> = LazyLock::new(|| {
    [
        // Python logging with OTEL_PYTHON_LOG_CORRELATION=true (the instrumentation's default
        // format): asctime levelname [name] [filename:lineno] [trace_id=.. span_id=..
        // resource.service.name=.. trace_sampled=..] - message
        (
            "] [trace_id=",
            r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:,\d+)?) (?P<level>[A-Za-z]+) \[(?P<logger>[^\]]*)\] \[(?P<file>[^\]]*)\] \[trace_id=(?P<trace_id>\w*) span_id=(?P<span_id>\w*) resource\.service\.name=(?P<service>[^\]\s]*) trace_sampled=(?P<trace_sampled>\w*)\] - (?P<message>.*)$",
        ),
        // Spring Boot's console layout: time level pid --- [app] [thread] [trace-span] logger :
        // message (the application and correlation groups since 3.2).
        (
            " --- [",
            r"^(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+(?P<level>[A-Z]+) (?P<pid>\d+) --- (?:\[(?P<service>[^\]]*)\] )?\[\s*(?P<thread>[^\]]*)\] (?:\[(?:(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})|\s*)\] )?(?P<logger>\S+)\s*: (?P<message>.*)$",
        ),
        // Ruby's Logger (Rails): "I, [2024-05-01T12:00:00.123456 #4242]  INFO -- progname: message".
        (
            ", [",
            r"^[DIWEFAU], \[(?P<time>\d{4}-\d{2}-\d{2}T[\d:.]+) #(?P<pid>\d+)\]\s+(?P<level>[A-Z]+) -- (?P<progname>[^:]*): (?P<message>.*)$",
        ),
    ]
    .into_iter()
    .map(|(literal, pattern)| (Finder::new(literal), Regex::new(pattern).expect("built-in pattern compiles")))
    .collect()
});

/// A timestamp: RFC 3339, `2024-05-01 12:00:00,123` (log4j, Python), `2024/05/01 12:00:00` (Go's
/// log package). Anchored; brackets around it are handled by [`leading_time`].
static LEADING_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}(?::?\d{2})?)?")
        .expect("built-in pattern compiles")
});

/// `trace_id: HEX`, `"traceId":"HEX"` and the like, with a colon (the OpenTelemetry spec's text
/// form); `key=value` forms are logfmt pairs.
static COLON_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:^|[^\w.])"?(trace_id|traceId|traceID|span_id|spanId|spanID|dd\.trace_id|dd\.span_id)"?\s*:\s*"?([0-9A-Za-z]+)"#,
    )
    .expect("built-in pattern compiles")
});

/// A `traceparent` anywhere, matched loosely (any case) and then validated by the W3C rules.
static TRACEPARENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-fA-F]{2}-[0-9a-fA-F]{32}-[0-9a-fA-F]{16}-[0-9a-fA-F]{2}\b")
        .expect("built-in pattern compiles")
});

/// nginx's and Apache's `[01/May/2024:12:00:00 +0000]`.
static ACCESS_LOG_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")
        .expect("built-in pattern compiles")
});

/// Whether a line's unstructured text is offered as the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Pairs are scanned for fields; the body comes from elsewhere.
    Keep,
    /// A `msg=`/`message=` pair is the body.
    FromPairs,
}

/// Rank given to a body taken from the unstructured text: any `msg=` pair beats it.
const TEXT_BODY_RANK: u16 = 100;
/// Ranks of ids found in free text: below every named field.
const COLON_ID_RANK: u16 = 40;
const EMBEDDED_ID_RANK: u16 = 50;

/// Fills fields from a matched pattern's named groups.
fn apply_captures<'a>(pattern: &Regex, caps: &Captures<'a>, fields: &mut Fields<'a>) {
    for name in pattern.capture_names().flatten() {
        let Some(m) = caps.name(name) else { continue };
        let value = m.as_str();
        let field = match name {
            "trace_id" => Field::Trace(TraceKind::Any, 0),
            "span_id" => Field::Span(SpanIdKind::Any, 0),
            "time" => Field::Time(0),
            "level" => Field::Level(LevelKind::Name, 0),
            "service" => Field::Service(0),
            "message" => Field::Message(0),
            _ => Field::Attribute,
        };
        // An empty group says nothing, except an empty message, which is still the body.
        if value.is_empty() && field != Field::Message(0) {
            continue;
        }
        fields.scalar(
            field,
            Cow::Owned(name.to_owned()),
            0,
            Scalar::Str(Cow::Borrowed(value)),
        );
    }
}

/// The heuristic path: leading time, level word, pairs, body. Returns the number of pairs.
fn scan_line<'a>(text: &'a str, fields: &mut Fields<'a>) -> usize {
    let mut rest = text;
    let mut has_time = false;
    if let Some((time_text, after)) = leading_time(text)
        && let Some(ns) = time::parse_datetime(time_text)
    {
        fields.offer_time(0, "timestamp", Scalar::Str(Cow::Borrowed(time_text)), ns);
        rest = after;
        has_time = true;
    }
    if let Some((word, after)) = leading_level(rest, has_time) {
        fields.scalar(
            Field::Level(LevelKind::Name, 0),
            Cow::Borrowed("level"),
            0,
            Scalar::Str(Cow::Borrowed(word)),
        );
        rest = after;
    }
    let n_pairs = scan_pairs(rest, fields, Body::FromPairs);
    if !fields.has_message() {
        let body = strip_separator(rest.trim());
        fields.scalar(
            Field::Message(TEXT_BODY_RANK),
            Cow::Borrowed("message"),
            0,
            Scalar::Str(Cow::Borrowed(body)),
        );
    }
    n_pairs
}

/// A timestamp at the start of the line, optionally in brackets, followed by a blank or the end.
/// Returns its text and the text after it.
fn leading_time(text: &str) -> Option<(&str, &str)> {
    let trimmed = text.trim_start();
    let (bracketed, inner) = match trimmed.strip_prefix('[') {
        Some(inner) => (true, inner),
        None => (false, trimmed),
    };
    if !inner.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let end = LEADING_TIME.find(inner)?.end();
    let (time_text, mut after) = inner.split_at(end);
    if bracketed {
        after = after.strip_prefix(']').unwrap_or(after);
    }
    if !after.is_empty() && !after.starts_with(char::is_whitespace) {
        return None;
    }
    Some((time_text, after.trim_start()))
}

/// A level word among the first few tokens: `INFO`, `[WARN]`, `ERROR:`, `<error>`. Without a
/// leading timestamp the word must be upper case, bracketed or followed by a colon, so prose
/// ("Fine, thanks") is not mistaken for a level. Returns the word and the text after it.
fn leading_level(text: &str, after_time: bool) -> Option<(&str, &str)> {
    let mut pos = 0;
    let mut n_tokens = 0;
    while n_tokens < 3 {
        let start = pos + text[pos..].find(|c: char| !c.is_whitespace())?;
        let end = text[start..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| start + i);
        let token = &text[start..end];
        // Separators do not count: Python's "%(asctime)s - %(name)s - %(levelname)s - ...".
        if token.bytes().all(|b| matches!(b, b'-' | b'|' | b':')) {
            pos = end;
            continue;
        }
        n_tokens += 1;
        if token.contains('=') {
            return None;
        }
        let bracketed = token.starts_with(['[', '(', '<']);
        let inner = token.trim_start_matches(['[', '(', '<']);
        let word_len = inner
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(inner.len());
        let word = &inner[..word_len];
        let next = inner[word_len..].chars().next();
        let colon = next == Some(':');
        let clean_end = matches!(next, None | Some(':' | ']' | ')' | '>' | '|' | ','));
        let upper = word.bytes().all(|b| b.is_ascii_uppercase());
        if (3..=9).contains(&word.len())
            && clean_end
            && (upper || bracketed || colon || after_time)
            && json_log::level_word(word).is_some()
        {
            let word_start = start + (token.len() - inner.len());
            let mut after = word_start + word_len;
            while after < end
                && matches!(
                    text.as_bytes()[after],
                    b':' | b']' | b')' | b'>' | b'|' | b','
                )
            {
                after += 1;
            }
            return Some((word, &text[after..]));
        }
        pos = end;
    }
    None
}

/// Drops one leading separator the layouts put between header and message (`- `, `: `, `| `).
fn strip_separator(body: &str) -> &str {
    for sep in ["- ", ": ", "| ", "-- : "] {
        if let Some(rest) = body.strip_prefix(sep) {
            return rest.trim_start();
        }
    }
    body
}

/// Finds logfmt `key=value` pairs (quoted values may hold spaces and `\"`), anywhere a token
/// starts, including inside `[...]` groups. Each pair is filed by its key: ids, level, time,
/// service and (with [`Body::FromPairs`]) the message; others become typed attributes.
fn scan_pairs<'a>(text: &'a str, fields: &mut Fields<'a>, body: Body) -> usize {
    let b = text.as_bytes();
    let mut n_pairs = 0;
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        while i < b.len() && matches!(b[i], b'[' | b'(' | b'{') {
            depth += 1;
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_end = scan_key(b, i);
        if key_end > i && key_end < b.len() && b[key_end] == b'=' {
            let key = &text[i..key_end];
            let (value, quoted, end) = scan_value(text, key_end + 1, &mut depth);
            n_pairs += 1;
            file_pair(key, value, quoted, fields, body);
            i = end;
            continue;
        }
        // Not a pair: skip the token (a quoted run as a whole), closing any groups it ends.
        if b[i] == b'"' {
            i = closing_quote(b, i + 1).map_or(b.len(), |q| q + 1);
        }
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut j = i;
        while depth > 0 && matches!(b[j - 1], b']' | b')' | b'}') {
            depth -= 1;
            j -= 1;
        }
    }
    n_pairs
}

/// The end of a key starting at `start` (== `start` when there is none).
fn scan_key(b: &[u8], start: usize) -> usize {
    if !b[start].is_ascii_alphabetic() && b[start] != b'_' && b[start] != b'@' {
        return start;
    }
    let mut i = start + 1;
    while i < b.len()
        && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'/' | b'@'))
    {
        i += 1;
    }
    i
}

/// A value starting at `start`: quoted (unescaped) or bare up to the next blank, without the
/// `]`/`)`/`}` that closes an enclosing group or a trailing `,`/`;`. Returns the value, whether it
/// was quoted, and where scanning continues.
fn scan_value<'a>(text: &'a str, start: usize, depth: &mut usize) -> (Cow<'a, str>, bool, usize) {
    let b = text.as_bytes();
    if start < b.len() && b[start] == b'"' {
        let close = closing_quote(b, start + 1);
        let inner_end = close.unwrap_or(b.len());
        let inner = &text[start + 1..inner_end];
        let mut end = close.map_or(b.len(), |q| q + 1);
        while end < b.len() && matches!(b[end], b']' | b')' | b'}' | b',' | b';') {
            if matches!(b[end], b']' | b')' | b'}') {
                *depth = depth.saturating_sub(1);
            }
            end += 1;
        }
        return (unescape(inner), true, end);
    }
    let end = text[start..]
        .find(|c: char| c.is_ascii_whitespace())
        .map_or(text.len(), |i| start + i);
    let mut value_end = end;
    while value_end > start && *depth > 0 && matches!(b[value_end - 1], b']' | b')' | b'}') {
        *depth -= 1;
        value_end -= 1;
    }
    while value_end > start && matches!(b[value_end - 1], b',' | b';') {
        value_end -= 1;
    }
    (Cow::Borrowed(&text[start..value_end]), false, end)
}

/// The index of the quote that ends a string whose contents start at `from`.
fn closing_quote(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other @ ('"' | '\\')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Files one pair by what its key means.
fn file_pair<'a>(
    key: &'a str,
    value: Cow<'a, str>,
    quoted: bool,
    fields: &mut Fields<'a>,
    body: Body,
) {
    if value.is_empty() {
        return;
    }
    let field = match json_log::lookup(key) {
        // In text only msg= and message= are the message; body=, log=, event= are ordinary keys.
        Field::Message(rank) if rank <= 1 && body == Body::FromPairs => Field::Message(rank),
        Field::Message(_) => Field::Attribute,
        // status=200 is an HTTP status in access logs and lograge, never a level.
        Field::Level(LevelKind::Status, _) => Field::Attribute,
        // Heroku's router writes service=23ms: a duration, not a service name.
        Field::Service(_) if value.starts_with(|c: char| c.is_ascii_digit()) => Field::Attribute,
        Field::Attribute if key == "at" && model::Level::parse(&value).is_some() => {
            // Heroku's level key.
            Field::Level(LevelKind::Name, 7)
        }
        Field::Attribute if key == "resource.service.name" => Field::Service(8),
        // "X-Amzn-Trace-Id: Root=1-...;Parent=...": the header value is itself a pair.
        Field::Attribute if key == "Root" => {
            let header = Scalar::Str(Cow::Owned(format!("Root={value}")));
            fields.scalar(
                Field::Trace(TraceKind::XRay, 14),
                Cow::Borrowed("X-Amzn-Trace-Id"),
                0,
                header,
            );
            return;
        }
        other => other,
    };
    let raw = if field == Field::Attribute && !quoted {
        typed(value)
    } else {
        Scalar::Str(value)
    };
    fields.scalar(field, Cow::Borrowed(key), 0, raw);
}

/// A bare logfmt value keeps the type it reads as: `200` an integer, `12.5` a float, `true` a
/// bool. Numbers with leading zeros or signs in odd places stay text (zip codes, ids).
fn typed(value: Cow<'_, str>) -> Scalar<'_> {
    let v = value.as_ref();
    if v == "true" || v == "false" {
        return Scalar::Bool(v == "true");
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    let (int_part, frac) = match digits.split_once('.') {
        Some((int_part, frac)) => (int_part, Some(frac)),
        None => (digits, None),
    };
    let plain_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = int_part == "0" || !int_part.starts_with('0');
    if plain_digits(int_part) && no_leading_zero && int_part.len() <= 18 {
        match frac {
            None => {
                if let Ok(n) = v.parse::<i64>() {
                    return Scalar::Int(n);
                }
            }
            Some(frac) if plain_digits(frac) => {
                if let Ok(f) = v.parse::<f64>() {
                    return Scalar::Float(f);
                }
            }
            Some(_) => {}
        }
    }
    Scalar::Str(value)
}

/// Trace context written into free text: `trace_id: HEX`, an embedded `traceparent`, an X-Ray
/// `Root=` header.
fn scan_embedded_ids<'a>(text: &'a str, fields: &mut Fields<'a>) {
    let b = text.as_bytes();
    if memmem::find(b, b"race").is_some() || memmem::find(b, b"pan").is_some() {
        for caps in COLON_ID.captures_iter(text) {
            let (Some(key), Some(value)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            let field = match json_log::lookup(key.as_str()) {
                Field::Trace(kind, _) if !fields.trace_seen() => Field::Trace(kind, COLON_ID_RANK),
                Field::Span(kind, _) if !fields.span_seen() => Field::Span(kind, COLON_ID_RANK),
                _ => continue,
            };
            fields.scalar(
                field,
                Cow::Borrowed(key.as_str()),
                0,
                Scalar::Str(Cow::Borrowed(value.as_str())),
            );
        }
    }
    if !fields.trace_seen()
        && let Some(m) = TRACEPARENT.find(text)
    {
        let field = Field::Trace(TraceKind::TraceParent, EMBEDDED_ID_RANK);
        fields.scalar(
            field,
            Cow::Borrowed("traceparent"),
            0,
            Scalar::Str(Cow::Borrowed(m.as_str())),
        );
    }
    if !fields.trace_seen()
        && let Some(at) = memmem::find(b, b"Root=1-")
    {
        let end = text[at..]
            .find(|c: char| c.is_whitespace() || c == '"')
            .map_or(text.len(), |i| at + i);
        let field = Field::Trace(TraceKind::XRay, EMBEDDED_ID_RANK);
        fields.scalar(
            field,
            Cow::Borrowed("X-Amzn-Trace-Id"),
            0,
            Scalar::Str(Cow::Borrowed(&text[at..end])),
        );
    }
}

/// Spring Cloud Sleuth's `[app,traceId,spanId]` (Sleuth 3) or `[app,traceId,spanId,exportable]`
/// (Sleuth 2) after the level in Spring Boot 2 logs.
static SLEUTH_IDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\[([\w.-]*),([0-9a-fA-F]{16}|[0-9a-fA-F]{32}),([0-9a-fA-F]{16})(?:,(?:true|false))?\]",
    )
    .expect("built-in pattern compiles")
});

fn scan_sleuth_ids<'a>(text: &'a str, fields: &mut Fields<'a>) {
    if fields.trace_seen() || memchr::memchr(b',', text.as_bytes()).is_none() {
        return;
    }
    let Some(caps) = SLEUTH_IDS.captures(text) else {
        return;
    };
    let (Some(app), Some(trace), Some(span)) = (caps.get(1), caps.get(2), caps.get(3)) else {
        return;
    };
    if !app.is_empty() {
        fields.scalar(
            Field::Service(EMBEDDED_ID_RANK),
            Cow::Borrowed("service"),
            0,
            Scalar::Str(Cow::Borrowed(app.as_str())),
        );
    }
    fields.scalar(
        Field::Trace(TraceKind::Any, EMBEDDED_ID_RANK),
        Cow::Borrowed("traceId"),
        0,
        Scalar::Str(Cow::Borrowed(trace.as_str())),
    );
    if !fields.span_seen() {
        fields.scalar(
            Field::Span(SpanIdKind::Any, EMBEDDED_ID_RANK),
            Cow::Borrowed("spanId"),
            0,
            Scalar::Str(Cow::Borrowed(span.as_str())),
        );
    }
}

fn find_access_log_time<'a>(text: &'a str, fields: &mut Fields<'a>) {
    if memchr::memchr(b'[', text.as_bytes()).is_none() {
        return;
    }
    if let Some(m) = ACCESS_LOG_TIME.captures(text).and_then(|caps| caps.get(1))
        && let Some(ns) = time::parse_clf(m.as_str())
    {
        fields.offer_time(0, "time", Scalar::Str(Cow::Borrowed(m.as_str())), ns);
    }
}

#[cfg(test)]
mod tests {
    use model::{AttrValue, Level, LogRecord, Problems, Record};

    use crate::{Decoder, DecoderConfig, LineContext, Output};

    fn decoder(patterns: &[&str]) -> Decoder {
        Decoder::new(DecoderConfig {
            service: Some("svc".into()),
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            ..DecoderConfig::default()
        })
        .unwrap()
    }

    fn decode_with(decoder: &Decoder, line: &str) -> Option<LogRecord> {
        let cx = LineContext {
            source: "t",
            offset: 0,
            read_time_ns: 42,
        };
        let mut out = Output::default();
        if !super::decode(line, decoder, &cx, &mut out) {
            assert!(out.records.is_empty());
            return None;
        }
        match out.records.pop() {
            Some(Record::Log(log)) => Some(log),
            other => panic!("expected a log record, got {other:?}"),
        }
    }

    fn decode(line: &str) -> Option<LogRecord> {
        decode_with(&decoder(&[]), line)
    }

    #[test]
    fn configured_patterns_come_first_and_fill_named_fields() {
        let d = decoder(&[
            r"^(?P<time>\S+) \| (?P<level>\w+) \| req=(?P<request_id>\S+) \| (?P<trace_id>[0-9a-f]{32})/(?P<span_id>[0-9a-f]{16}) \| (?P<service>\w+) \| (?P<message>.*)$",
        ]);
        let l = decode_with(
            &d,
            "2024-05-01T12:00:00Z | WARN | req=r-1 | 5b8efff798038103d269b633813fc60c/eee19b7ec3c1b174 | cart | slow cart level=error",
        )
        .unwrap();
        assert_eq!(l.level, Some(Level::Warn));
        assert_eq!(l.service, "cart");
        assert_eq!(l.body, "slow cart level=error");
        assert_eq!(
            l.trace_id.unwrap().to_string(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(l.span_id.unwrap().to_string(), "eee19b7ec3c1b174");
        assert_eq!(l.attributes.get_str("request_id"), Some("r-1"));
        assert_eq!(l.time_ns, 1_714_564_800_000_000_000);
        // A line the pattern does not match falls through to the built-ins.
        assert_eq!(
            decode_with(&d, "[ERROR] boom").unwrap().level,
            Some(Level::Error)
        );
    }

    #[test]
    fn understood_needs_time_level_trace_or_two_pairs() {
        assert!(decode("just words here").is_none());
        assert!(decode("Fine, thanks for asking").is_none());
        assert!(decode("\tat com.example.Foo.bar(Foo.java:12)").is_none());
        assert!(decode("Traceback (most recent call last):").is_none());
        assert!(decode("only one=pair").is_none());
        assert!(decode("a=1 b=2").is_some());
        assert!(decode("request trace_id=5b8efff798038103d269b633813fc60c").is_some());
        assert!(
            decode("00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01 proxied").is_some()
        );
    }

    #[test]
    fn level_words_in_their_usual_places() {
        let cases = [
            ("INFO starting", Level::Info, "starting"),
            ("[WARN] disk", Level::Warn, "disk"),
            ("ERROR:root:boom", Level::Error, "root:boom"),
            ("<critical> core dumped", Level::Fatal, "core dumped"),
            ("2024-05-01 12:00:00 [main] debug: x=1", Level::Debug, "x=1"),
            (
                "level=warning msg=\"low disk\" free=3",
                Level::Warn,
                "low disk",
            ),
        ];
        for (line, level, body) in cases {
            let l = decode(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((l.level, l.body.as_str()), (Some(level), body), "{line}");
        }
    }

    #[test]
    fn logfmt_values_keep_their_types() {
        let l = decode(r#"a=1 b=2.5 c=true d="4" e=007 f=-3 g=1e5 h="x \"y\"""#).unwrap();
        let get = |k| l.attributes.get(k).cloned();
        assert_eq!(get("a"), Some(AttrValue::Int(1)));
        assert_eq!(get("b"), Some(AttrValue::Float(2.5)));
        assert_eq!(get("c"), Some(AttrValue::Bool(true)));
        assert_eq!(get("d"), Some(AttrValue::Str("4".into())));
        assert_eq!(get("e"), Some(AttrValue::Str("007".into())));
        assert_eq!(get("f"), Some(AttrValue::Int(-3)));
        assert_eq!(get("g"), Some(AttrValue::Str("1e5".into())));
        assert_eq!(get("h"), Some(AttrValue::Str("x \"y\"".into())));
        assert!(l.problems.contains(Problems::NO_TIMESTAMP));
    }

    #[test]
    fn over_long_lines_are_cut_flagged_and_kept() {
        let d = Decoder::new(DecoderConfig {
            max_line_bytes: 64,
            ..DecoderConfig::default()
        })
        .unwrap();
        let long = format!("2024-05-01T12:00:00Z INFO {}", "x".repeat(100));
        let lines = format!(
            "2024-05-01T12:00:00Z INFO short\n{long}\n{{\"msg\":\"{}\"}}\n[WARN] after\n",
            "y".repeat(80)
        );
        let mut out = Output::default();
        assert_eq!(d.decode_all(lines.as_bytes(), "f", 42, &mut out), 4);
        let logs: Vec<&LogRecord> = out
            .records
            .iter()
            .map(|r| match r {
                Record::Log(l) => l,
                Record::Span(_) => panic!("span"),
            })
            .collect();
        assert_eq!(logs.len(), 4);
        assert!(logs[0].problems.is_empty());
        for cut in &logs[1..3] {
            assert!(
                cut.problems.contains(Problems::TRUNCATED)
                    && cut.problems.contains(Problems::PARSE_ERROR)
            );
            assert_eq!(cut.body.len(), 64);
        }
        assert_eq!(logs[3].level, Some(Level::Warn));
        assert_eq!(out.warnings.len(), 2);
    }
}
