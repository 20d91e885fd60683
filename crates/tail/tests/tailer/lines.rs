//! Lines: empty lines, partial lines, over-long lines, offsets, the checkpoint's shape.

use std::time::Duration;

use tail::Checkpoints;

use crate::util::{Run, append, config, temp, text};

#[tokio::test]
async fn empty_lines_are_lines_and_a_partial_line_waits_for_its_newline() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, "a\n\nb\r\n\npar");
    let mut run = Run::start(config(&[&dir.join("*.log")]), &Checkpoints::new());
    run.wait_for("4 lines", |r| r.count(4)).await;
    run.settle(Duration::from_millis(200)).await;
    assert_eq!(run.lines(), ["a", "", "b", ""]);
    append(&path, "tial\n");
    run.wait_for("the completed line", |r| r.count(5)).await;
    let offsets: Vec<u64> = run
        .batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.offset))
        .collect();
    assert_eq!(run.lines(), ["a", "", "b", "", "partial"]);
    assert_eq!(offsets, [0, 2, 3, 6, 7]);
    let batch = run.batches.last().unwrap();
    assert_eq!(batch.path, path.to_string_lossy());
    assert_eq!(batch.source_index, 0);
    // The checkpoint's documented shape.
    let (key, value) = &batch.checkpoint;
    assert_eq!(key.split(':').count(), 3, "{key}");
    assert_eq!(value["v"], 1);
    assert_eq!(value["offset"], 15);
    assert_eq!(value["head_len"], 15);
    assert_eq!(value["marker_len"], 15);
    assert_eq!(value["path"], path.to_string_lossy().as_ref());
    for field in ["dev", "ino"] {
        assert!(value[field].is_u64(), "{field}");
    }
    for field in ["head_hash", "marker_hash"] {
        assert_eq!(value[field].as_str().unwrap().len(), 16, "{field}");
    }
    run.stop();
}

#[tokio::test]
async fn an_over_long_line_is_cut_flagged_and_its_neighbours_survive() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    let long = "x".repeat(100);
    append(&path, &format!("before\n{long}\nafter\n{long}"));
    let mut cfg = config(&[&dir.join("*.log")]);
    cfg.max_line_bytes = 16;
    cfg.read_chunk = 7; // lines and the cut both cross chunk boundaries
    let mut run = Run::start(cfg, &Checkpoints::new());
    run.wait_for("3 lines", |r| r.count(3)).await;
    append(&path, "yy\nlast\n");
    run.wait_for("5 lines", |r| r.count(5)).await;
    let lines: Vec<(String, bool, u64)> = run
        .batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| (text(l), l.truncated, l.offset)))
        .collect();
    let cut = "x".repeat(16);
    assert_eq!(
        lines,
        [
            ("before".into(), false, 0),
            (cut.clone(), true, 7),
            ("after".into(), false, 108),
            (cut, true, 114),
            ("last".into(), false, 217),
        ]
    );
    run.stop();
}

#[tokio::test]
async fn an_otlp_json_line_is_read_whole_up_to_its_own_limit() {
    let (_dir, dir) = temp();
    let path = dir.join("spans.jsonl");
    // A Collector file-exporter batch of ~5 MiB, written in two parts (the reader sees the
    // first part alone), between ordinary lines; then a long line that is not OTLP.
    let span =
        r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x"},"#;
    let spans = span.repeat(5 * (1 << 20) / span.len());
    let otlp = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.trim_end_matches(',')
    );
    let (part1, part2) = otlp.split_at(3 << 20);
    append(&path, &format!("before\n{part1}"));
    let mut cfg = config(&[&dir.join("*.jsonl")]);
    cfg.max_line_bytes = 1 << 20;
    cfg.max_otlp_line_bytes = 64 << 20;
    let mut run = Run::start(cfg, &Checkpoints::new());
    run.wait_for("the first line", |r| r.has("before")).await;
    run.settle(Duration::from_millis(200)).await;
    append(&path, &format!("{part2}\n{}\nafter\n", "y".repeat(2 << 20)));
    run.wait_for("every line", |r| r.has("after")).await;
    let lines: Vec<(usize, bool)> = run
        .batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| (l.bytes.len(), l.truncated)))
        .collect();
    assert_eq!(
        lines,
        [(6, false), (otlp.len(), false), (1 << 20, true), (5, false)]
    );
    let whole = run.batches.iter().flat_map(|b| &b.lines).nth(1).unwrap();
    assert_eq!(whole.bytes, otlp.as_bytes());
    run.stop();
}
