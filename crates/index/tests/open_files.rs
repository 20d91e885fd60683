//! Running out of file descriptors ("Too many open files") pauses the writer with the cause
//! named, and it resumes by itself once descriptors are free again. A test binary of its own:
//! it uses up every file descriptor of its process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use index::{Batch, Index, Writer, WriterConfig};
use serde_json::json;

fn lines(prefix: &str, n: u64) -> Vec<model::Record> {
    (0..n)
        .map(|i| {
            log(None, None, "api", &format!("{prefix} {i}"))
                .at(T0 + i as i64)
                .build()
        })
        .collect()
}

#[test]
fn running_out_of_file_descriptors_pauses_the_writer_until_some_are_free() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(
        &index,
        WriterConfig {
            commit_interval: Duration::from_secs(60),
            retry_interval: Duration::from_millis(50),
            max_retry_interval: Duration::from_millis(200),
            num_threads: 1,
            memory_budget: 16 << 20,
            ..WriterConfig::default()
        },
    )
    .unwrap();
    writer
        .blocking_send(Batch::new(
            lines("before", 100),
            vec![("file:a".into(), json!(1))],
        ))
        .unwrap();
    writer.blocking_flush().unwrap();

    // A lower limit (when prlimit is there) keeps the number of files to open small.
    let _ = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg("--nofile=1024:1024")
        .status();
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) if e.raw_os_error() == Some(24) => break,
            Err(e) => panic!("unexpected error while using up descriptors: {e}"),
        }
        if held.len() > 2_000_000 {
            eprintln!("SKIPPED: the open-file limit is too high to reach");
            return;
        }
    }
    writer
        .blocking_send(Batch::new(
            lines("starved", 500),
            vec![("file:a".into(), json!(2))],
        ))
        .unwrap();
    let err = writer.blocking_flush().unwrap_err().to_string();
    // Free a few descriptors for the assertions' own needs before checking.
    held.truncate(held.len() - 8);
    assert!(
        err.contains("Too many open files (os error 24)"),
        "the cause is named: {err}"
    );
    let status = writer.status();
    assert!(status.paused.is_some());
    assert_eq!(
        index.num_docs(),
        100,
        "searches answer from the last commit"
    );
    assert_eq!(index.checkpoints().unwrap().get("file:a"), Some(&json!(1)));

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.status().paused.is_some() {
        assert!(Instant::now() < deadline, "did not resume");
        std::thread::sleep(Duration::from_millis(20));
    }
    let generation = writer.status().generation;
    writer
        .blocking_send(
            Batch::new(lines("starved", 500), vec![("file:a".into(), json!(2))])
                .in_generation(generation),
        )
        .unwrap();
    writer.blocking_flush().unwrap();
    assert_eq!(index.num_docs(), 600);
    assert_eq!(index.checkpoints().unwrap().get("file:a"), Some(&json!(2)));
    writer.shutdown().unwrap();
}
