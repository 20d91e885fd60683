//! Format detection from a line's first byte and its distinctive top-level keys, without parsing.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The formats a line or document can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OTLP/JSON `ExportTraceServiceRequest` / `TracesData`.
    OtlpTraces,
    /// OTLP/JSON `ExportLogsServiceRequest` / `LogsData`.
    OtlpLogs,
    /// OTLP/JSON metrics: recognised so they are reported, not indexed.
    OtlpMetrics,
    /// Zipkin v2: an array of spans or one span object.
    Zipkin,
    /// Jaeger UI download `{"data":[{traceID, spans, processes}]}` or one trace object.
    Jaeger,
    /// Any other JSON object: a structured log line.
    JsonLog,
    /// Anything else: a text log line.
    Text,
}

/// Detects the format of one line. Cheap: looks at the first non-blank byte and searches for
/// quoted keys that only the span formats use. A JSON log that happens to contain such a key
/// still decodes, because a failed span decode falls back to the JSON log decoder.
pub fn detect(line: &str) -> Format {
    let trimmed = line.trim_start();
    match trimmed.as_bytes().first() {
        Some(b'{') => detect_object(trimmed),
        Some(b'[') => {
            // Only Zipkin starts with an array, and its keys are in its first span: the scan
            // stops there rather than reading a batch of hundreds of kilobytes to its end.
            let zipkin = |keys: &Keys| keys.has("traceId") && (keys.has("id") || keys.has("name"));
            if zipkin(&Keys::scan_until(trimmed, zipkin)) {
                Format::Zipkin
            } else {
                Format::Text
            }
        }
        _ => Format::Text,
    }
}

/// Detects the format of a whole document (possibly pretty-printed over many lines).
pub fn detect_document(doc: &str) -> Format {
    detect(doc)
}

fn detect_object(obj: &str) -> Format {
    // The first key decides the common case at once (the Collector writes it first).
    let first = first_key(obj);
    match first {
        Some("resourceSpans" | "resource_spans") => return Format::OtlpTraces,
        Some("resourceLogs" | "resource_logs") => return Format::OtlpLogs,
        Some("resourceMetrics" | "resource_metrics") => return Format::OtlpMetrics,
        _ => {}
    }
    // Every other answer but a JSON log needs a `resource...`, `traceId` or `traceID` key: a
    // line where no string starts that way is a JSON log without scanning its keys.
    if !may_name_a_span_format(obj) {
        return Format::JsonLog;
    }
    let keys = Keys::scan(obj);
    let has_key = |_: &str, key: &str| keys.has(key);
    if has_key(obj, "resourceSpans") || has_key(obj, "resource_spans") {
        return Format::OtlpTraces;
    }
    if has_key(obj, "resourceLogs") || has_key(obj, "resource_logs") {
        return Format::OtlpLogs;
    }
    if has_key(obj, "resourceMetrics") || has_key(obj, "resource_metrics") {
        return Format::OtlpMetrics;
    }
    if has_key(obj, "traceID")
        && (has_key(obj, "spans") || has_key(obj, "spanID"))
        && (has_key(obj, "processes") || has_key(obj, "operationName") || first == Some("data"))
    {
        return Format::Jaeger;
    }
    // Jaeger's legacy v1-model JSON (gogo jsonpb): {"spans":[{"traceId", "spanId",
    // "operationName", ...}]}, or one such span with its process embedded.
    if has_key(obj, "operationName")
        && (has_key(obj, "spans") || has_key(obj, "spanId"))
        && (has_key(obj, "traceId") || has_key(obj, "traceID"))
    {
        return Format::Jaeger;
    }
    if has_key(obj, "traceId")
        && has_key(obj, "id")
        && (has_key(obj, "localEndpoint")
            || has_key(obj, "remoteEndpoint")
            || has_key(obj, "duration")
            || has_key(obj, "annotations")
            || has_key(obj, "parentId"))
    {
        return Format::Zipkin;
    }
    Format::JsonLog
}

/// Which of the keys that tell formats apart occur in a text (in any object, at any depth),
/// found in one pass over its strings: a string is a key when the next non-blank byte is `:`.
/// Inside a JSON string quotes are escaped, so a key-like text inside a value is never taken for
/// a key. Only the keys [`Keys::bit`] knows are recorded (as bits, so nothing is allocated).
struct Keys(u32);

impl Keys {
    fn scan(text: &str) -> Keys {
        Keys::scan_until(text, |_| false)
    }

    /// [`scan`](Keys::scan), stopping as soon as the keys found so far satisfy `done`.
    fn scan_until(text: &str, done: impl Fn(&Keys) -> bool) -> Keys {
        let b = text.as_bytes();
        let mut keys = 0;
        let mut pos = 0;
        while let Some(open) = memchr::memchr(b'"', &b[pos..]) {
            let start = pos + open + 1;
            let mut at = start;
            let mut has_escape = false;
            let end = loop {
                match memchr::memchr2(b'"', b'\\', &b[at.min(b.len())..]) {
                    None => return Keys(keys),
                    Some(k) if b[at + k] == b'\\' => {
                        has_escape = true;
                        at += k + 2;
                    }
                    Some(k) => break at + k,
                }
            };
            pos = end + 1;
            if has_escape {
                continue;
            }
            let bit = Keys::bit(&text[start..end]);
            if bit != 0 && keys & bit == 0 {
                let next = b[pos..].iter().find(|c| !c.is_ascii_whitespace());
                if next == Some(&b':') {
                    keys |= bit;
                    if done(&Keys(keys)) {
                        break;
                    }
                }
            }
        }
        Keys(keys)
    }

    /// The bit of a key detection asks about; 0 for any other key.
    fn bit(key: &str) -> u32 {
        let n = match key {
            "traceId" => 0,
            "id" => 1,
            "name" => 2,
            "resourceSpans" => 3,
            "resource_spans" => 4,
            "resourceLogs" => 5,
            "resource_logs" => 6,
            "resourceMetrics" => 7,
            "resource_metrics" => 8,
            "traceID" => 9,
            "spans" => 10,
            "spanID" => 11,
            "processes" => 12,
            "operationName" => 13,
            "spanId" => 14,
            "localEndpoint" => 15,
            "remoteEndpoint" => 16,
            "duration" => 17,
            "annotations" => 18,
            "parentId" => 19,
            _ => return 0,
        };
        1 << n
    }

    fn has(&self, key: &str) -> bool {
        let bit = Keys::bit(key);
        debug_assert!(
            bit != 0,
            "detection asks about {key:?}, which Keys::bit does not know"
        );
        self.0 & bit != 0
    }
}

/// Whether any quote in the text opens `resource` or `traceI` (a superset of the strings that
/// can be the keys [`detect_object`] needs before it answers anything but a JSON log).
fn may_name_a_span_format(text: &str) -> bool {
    static TRACE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"traceI"));
    static RESOURCE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"resource"));
    let b = text.as_bytes();
    TRACE.find(b).is_some() || RESOURCE.find(b).is_some()
}

/// The first key of an object, when it has no escapes.
fn first_key(obj: &str) -> Option<&str> {
    let rest = obj.strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let key = &rest[..end];
    (!key.contains('\\')).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_first_byte_and_keys() {
        assert_eq!(detect(r#"{"resourceSpans":[]}"#), Format::OtlpTraces);
        assert_eq!(detect(r#"{"resource_logs":[]}"#), Format::OtlpLogs);
        assert_eq!(
            detect(r#"  {"x":1, "resourceLogs" : []}"#),
            Format::OtlpLogs
        );
        assert_eq!(detect(r#"{"resourceMetrics":[]}"#), Format::OtlpMetrics);
        assert_eq!(detect(r#"[{"traceId":"a","id":"b"}]"#), Format::Zipkin);
        assert_eq!(
            detect(r#"{"traceId":"a","id":"b","localEndpoint":{"serviceName":"x"}}"#),
            Format::Zipkin
        );
        assert_eq!(
            detect(r#"{"data":[{"traceID":"a","spans":[],"processes":{}}]}"#),
            Format::Jaeger
        );
        assert_eq!(
            detect(
                r#"{"spans":[{"traceId":"AAAAAAAAAAAAAAAAAAAAEQ==","spanId":"AAAAAAAAAAM=","operationName":"op"}]}"#
            ),
            Format::Jaeger
        );
        assert_eq!(detect(r#"{"msg":"hi","trace_id":"abc"}"#), Format::JsonLog);
        assert_eq!(
            detect(r#"{"msg":"say \"resourceSpans\": now"}"#),
            Format::JsonLog
        );
        assert_eq!(
            detect(r#"{"msg":"a","trace":{"id":"b"},"spans":[],"id":"c"}"#),
            Format::JsonLog
        );
        assert_eq!(detect("2024-01-01 INFO hello"), Format::Text);
        // Keys are found only as keys, not inside values or with escapes.
        let keys = Keys::scan(r#"{"traceId":"spans","a":{"spanID" : 1},"x\"":"operationName"}"#);
        assert!(keys.has("traceId") && keys.has("spanID"));
        assert!(!keys.has("spans") && !keys.has("operationName") && !keys.has("id"));
        assert_eq!(detect("[INFO] hello"), Format::Text);
    }
}
