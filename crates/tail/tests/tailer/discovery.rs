//! Discovery: files appearing later, exclude patterns, many files, `.gz` backfill, stop.

use std::io::Write;
use std::time::{Duration, Instant};

use tail::{Checkpoints, SourceConfig, TailError, Tailer};

use crate::util::{Run, append, config, numbered_vec, temp};

#[tokio::test]
async fn new_files_are_read_from_the_start_and_excludes_are_skipped() {
    let (_dir, dir) = temp();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let mut cfg = config(&[&dir.join("**/*.log")]);
    cfg.sources[0].exclude = vec![
        "skip-*".into(),
        format!("{}/sub/private.log", dir.display()),
    ];
    let mut run = Run::start(cfg, &Checkpoints::new());
    run.settle(Duration::from_millis(100)).await;
    append(&dir.join("a.log"), "a-1\na-2\n");
    append(&dir.join("skip-me.log"), "skipped\n");
    append(&dir.join("c.txt"), "not matched\n");
    append(&dir.join("sub/b.log"), "b-1\n");
    append(&dir.join("sub/private.log"), "private\n");
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    append(&dir.join("sub/deeper/d.log"), "d-1\n");
    run.wait_for("new files", |r| r.count(4)).await;
    run.settle(Duration::from_millis(200)).await;
    let mut got = run.lines();
    got.sort();
    assert_eq!(got, ["a-1", "a-2", "b-1", "d-1"]);
    run.stop();
}

#[tokio::test]
async fn a_thousand_files() {
    let (_dir, dir) = temp();
    let mut want = Vec::new();
    for i in 0..1000 {
        let mut f = std::fs::File::create(dir.join(format!("f{i:04}.log"))).unwrap();
        for j in 0..3 {
            writeln!(f, "f{i}-{j}").unwrap();
            want.push(format!("f{i}-{j}"));
        }
    }
    let mut run = Run::start(config(&[&dir.join("*.log")]), &Checkpoints::new());
    run.wait_for("3000 lines", |r| r.count(3000)).await;
    let first = run.stop();
    let mut got = first.lines();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(first.checkpoints.len(), 1000);
    // A restart reads nothing again.
    let mut again = Run::start(config(&[&dir.join("*.log")]), &first.checkpoints);
    append(&dir.join("f0999.log"), "more\n");
    again.wait_for("the new line", |r| r.has("more")).await;
    again.settle(Duration::from_millis(100)).await;
    assert_eq!(again.stop().lines(), ["more"]);
}

#[tokio::test]
async fn gz_backfill_reads_each_archive_once() {
    let (_dir, dir) = temp();
    let gz = dir.join("app.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    for i in 1..=50 {
        writeln!(enc, "gz-{i}").unwrap();
    }
    write!(enc, "gz-last-without-newline").unwrap();
    enc.finish().unwrap();
    append(&dir.join("app.log"), "plain-1\n");
    let mut cfg = config(&[&dir.join("app.log*")]);
    cfg.read_chunk = 64;
    let off = Run::start(cfg.clone(), &Checkpoints::new());
    let mut off = off;
    off.wait_for("plain", |r| r.has("plain-1")).await;
    off.settle(Duration::from_millis(100)).await;
    assert_eq!(
        off.stop().lines(),
        ["plain-1"],
        "gz files are skipped without backfill"
    );

    cfg.backfill_gz = true;
    let mut first = Run::start(cfg.clone(), &Checkpoints::new());
    first
        .wait_for("the archive", |r| {
            r.has("gz-last-without-newline") && r.has("plain-1")
        })
        .await;
    let first = first.stop();
    let mut want = numbered_vec("gz", 1..=50);
    want.push("gz-last-without-newline".into());
    assert_eq!(first.lines_of_key(&first.key_of("gz-1")), want);
    let cp = first.checkpoints.get(&first.key_of("gz-1")).unwrap();
    assert_eq!(
        (cp["gz"].as_bool(), cp["done"].as_bool()),
        (Some(true), Some(true))
    );

    let mut second = Run::start(cfg, &first.checkpoints);
    append(&dir.join("app.log"), "plain-2\n");
    second.wait_for("plain-2", |r| r.has("plain-2")).await;
    second.settle(Duration::from_millis(100)).await;
    assert_eq!(second.stop().lines(), ["plain-2"]);
}

#[tokio::test]
async fn bad_globs_are_reported_and_stop_is_prompt() {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let cfg = tail::TailConfig {
        sources: vec![SourceConfig {
            include: vec!["/tmp/[".into()],
            ..SourceConfig::default()
        }],
        ..tail::TailConfig::default()
    };
    assert!(matches!(
        Tailer::start(cfg, Checkpoints::new(), tx),
        Err(TailError::Glob { .. })
    ));

    // A tailer blocked on a full channel still stops at once.
    let (_dir, dir) = temp();
    append(&dir.join("a.log"), &"x\n".repeat(10_000));
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut cfg = config(&[&dir.join("*.log")]);
    cfg.max_buffered_bytes = 10;
    let handle = Tailer::start(cfg, Checkpoints::new(), tx).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    handle.stop();
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(rx);
}

#[tokio::test]
async fn more_files_than_max_open_files_are_all_read_and_followed() {
    let (_dir, dir) = temp();
    let mut want = Vec::new();
    for i in 0..120 {
        let lines: String = (0..3).map(|j| format!("f{i}-{j}\n")).collect();
        append(&dir.join(format!("f{i:03}.log")), &lines);
        want.extend((0..3).map(|j| format!("f{i}-{j}")));
    }
    let mut cfg = config(&[&dir.join("*.log")]);
    cfg.max_open_files = 7;
    let mut run = Run::start(cfg.clone(), &Checkpoints::new());
    run.wait_for("every line", |r| r.count(360)).await;
    // Closed files are reopened where they stood when they change, renamed or not.
    for i in (0..120).step_by(10) {
        append(&dir.join(format!("f{i:03}.log")), &format!("more-{i}\n"));
        want.push(format!("more-{i}"));
    }
    std::fs::rename(dir.join("f005.log"), dir.join("f005-renamed.log")).unwrap();
    append(&dir.join("f005-renamed.log"), "more-5\n");
    want.push("more-5".into());
    run.wait_for("the appended lines", |r| r.count(373)).await;
    run.settle(Duration::from_millis(200)).await;
    let first = run.stop();
    let mut got = first.lines();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(first.checkpoints.len(), 120);
    let mut again = Run::start(cfg, &first.checkpoints);
    append(&dir.join("f119.log"), "last\n");
    again.wait_for("the new line", |r| r.has("last")).await;
    again.settle(Duration::from_millis(200)).await;
    assert_eq!(again.stop().lines(), ["last"]);
}
