//! The writer: checkpoints ride on every commit's payload and survive reopening; acks complete
//! only when their records are committed and searchable; a full queue refuses without blocking.

mod common;

use std::time::Duration;

use common::*;
use index::{Batch, Index, SearchRequest, TrySendError, Writer, WriterConfig};
use serde_json::json;

fn lines(source: &str, range: std::ops::Range<u64>) -> Vec<model::Record> {
    range
        .map(|i| {
            log(None, None, "api", &format!("{source} {i}"))
                .at(T0 + i as i64)
                .offset(i)
                .build()
        })
        .collect()
}

#[test]
fn checkpoints_survive_commits_merges_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = Index::open_or_create(dir.path()).unwrap();
        assert!(index.checkpoints().unwrap().is_empty());
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        // Many commits: enough segments for merges to run; every commit keeps all keys.
        for i in 0..12u64 {
            let checkpoints = vec![("file:a".to_owned(), json!({"offset": i * 100}))];
            writer
                .blocking_send(Batch::new(lines("a", i * 10..i * 10 + 10), checkpoints))
                .unwrap();
            if i == 3 {
                writer
                    .blocking_send(Batch::new(vec![], vec![("file:b".into(), json!(7))]))
                    .unwrap();
            }
            writer.blocking_flush().unwrap();
            let now = index.checkpoints().unwrap();
            assert_eq!(
                now.get("file:a"),
                Some(&json!({"offset": i * 100})),
                "after commit {i}"
            );
            assert_eq!(now.get("file:b").is_some(), i >= 3);
        }
        // A later batch overrides an earlier one within one commit.
        writer
            .blocking_send(Batch::new(vec![], vec![("file:b".into(), json!(8))]))
            .unwrap();
        writer
            .blocking_send(Batch::new(vec![], vec![("file:b".into(), json!(9))]))
            .unwrap();
        let stats = writer.stats();
        assert_eq!(stats.records_indexed, 120);
        assert!(stats.commits >= 12);
        writer.shutdown().unwrap();
        // The payload as tantivy stores it: compact, versioned.
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("meta.json")).unwrap()).unwrap();
        let payload: serde_json::Value =
            serde_json::from_str(meta["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["v"], 1);
        assert_eq!(payload["checkpoints"]["file:b"], 9);
    }
    let reopened = Index::open_or_create(dir.path()).unwrap();
    let checkpoints = reopened.checkpoints().unwrap();
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(checkpoints.get("file:a"), Some(&json!({"offset": 1100})));
    assert_eq!(checkpoints.get("file:b"), Some(&json!(9)));
    assert_eq!(reopened.num_docs(), 120);
    // A new writer carries the checkpoints over and keeps seq unique: paging still works.
    let writer = Writer::start(&reopened, WriterConfig::default()).unwrap();
    writer
        .blocking_send(Batch::new(
            lines("a", 120..130),
            vec![("file:c".into(), json!(1))],
        ))
        .unwrap();
    writer.shutdown().unwrap();
    let checkpoints = reopened.checkpoints().unwrap();
    assert_eq!(checkpoints.len(), 3);
    assert_eq!(checkpoints.get("file:b"), Some(&json!(9)));
    let mut seen = std::collections::HashSet::new();
    let mut cursor = None;
    loop {
        let page = reopened
            .search(&SearchRequest {
                limit: 50,
                cursor: cursor.as_deref(),
                ..Default::default()
            })
            .unwrap();
        for hit in &page.hits {
            assert!(seen.insert(hit["body"].as_str().unwrap().to_owned()));
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 130);
}

#[test]
fn a_null_checkpoint_removes_the_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = Index::open_or_create(dir.path()).unwrap();
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        let set = |key: &str, value: serde_json::Value| {
            writer
                .blocking_send(Batch::new(vec![], vec![(key.to_owned(), value)]))
                .unwrap();
        };
        set("file:a", json!({"offset": 1}));
        set("file:b", json!({"offset": 2}));
        set("file:c", json!({"offset": 3}));
        writer.blocking_flush().unwrap();
        assert_eq!(index.checkpoints().unwrap().len(), 3);

        // Expiry of a committed key, in a later commit.
        set("file:a", serde_json::Value::Null);
        // Set and expired within one commit: never stored.
        set("file:d", json!({"offset": 4}));
        set("file:d", serde_json::Value::Null);
        // Expired, then seen again within one commit: the later value wins.
        set("file:b", serde_json::Value::Null);
        set("file:b", json!({"offset": 5}));
        // Expiring a key that was never stored is harmless.
        set("file:never", serde_json::Value::Null);
        writer.blocking_flush().unwrap();

        let now = index.checkpoints().unwrap();
        let keys: Vec<&str> = now.iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["file:b", "file:c"]);
        assert_eq!(now.get("file:b"), Some(&json!({"offset": 5})));
        writer.shutdown().unwrap();
        // No `null` is ever written into the payload.
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("meta.json")).unwrap()).unwrap();
        let payload: serde_json::Value =
            serde_json::from_str(meta["payload"].as_str().unwrap()).unwrap();
        assert_eq!(
            payload["checkpoints"],
            json!({"file:b": {"offset": 5}, "file:c": {"offset": 3}})
        );
    }
    let reopened = Index::open_or_create(dir.path()).unwrap();
    assert_eq!(reopened.checkpoints().unwrap().len(), 2);
    assert!(reopened.checkpoints().unwrap().get("file:a").is_none());
}

#[test]
fn a_second_writer_on_the_same_index_is_refused() {
    let index = Index::create_in_ram().unwrap();
    let writer = Writer::start(&index, WriterConfig::default()).unwrap();
    assert!(Writer::start(&index, WriterConfig::default()).is_err());
    writer.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_means_committed_and_searchable() {
    let index = Index::create_in_ram().unwrap();
    let config = WriterConfig {
        commit_interval: Duration::from_millis(50),
        ..WriterConfig::default()
    };
    let writer = Writer::start(&index, config).unwrap();
    let handle = writer.handle();
    let mut acks = Vec::new();
    for i in 0..5u64 {
        let (batch, ack) = Batch::with_ack(lines("otlp", i * 3..i * 3 + 3), vec![]);
        handle.send(batch).await.unwrap();
        acks.push(ack);
    }
    for ack in acks {
        let opstamp = ack.await.unwrap().unwrap();
        assert!(opstamp > 0);
    }
    // Acked by the interval commit, with no flush: everything is visible.
    assert_eq!(index.num_docs(), 15);
    assert!(index.checkpoints().unwrap().is_empty());
    assert_eq!(
        handle.flush().await.unwrap(),
        handle.flush().await.unwrap(),
        "nothing pending: no new commit"
    );
    tokio::task::spawn_blocking(move || writer.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert!(
        handle.send(Batch::default()).await.is_err(),
        "closed after shutdown"
    );
}

#[test]
fn try_send_refuses_when_the_queue_is_full() {
    let index = Index::create_in_ram().unwrap();
    let config = WriterConfig {
        queue_capacity: 1,
        commit_interval: Duration::from_secs(60),
        ..WriterConfig::default()
    };
    let writer = Writer::start(&index, config).unwrap();
    let mut full = 0;
    let mut sent = 0;
    for i in 0..2_000u64 {
        match writer.try_send(Batch::new(lines("x", i * 50..i * 50 + 50), vec![])) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(batch)) => {
                assert_eq!(batch.records.len(), 50, "the batch is handed back");
                full += 1;
            }
            Err(TrySendError::Closed(_)) => panic!("writer closed"),
            Err(TrySendError::Paused { cause, .. }) => panic!("writer paused: {cause}"),
        }
    }
    assert!(full > 0, "a one-slot queue fills up");
    assert!(writer.stats().queue_capacity == 1);
    writer.shutdown().unwrap();
    assert_eq!(
        index.num_docs(),
        sent * 50,
        "shutdown commits everything received"
    );
}

/// A small tmpfs mounted for one test (needs root); unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None`, with the reason printed, where mounting is not permitted.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a {size} tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the file system with `filler` until it refuses another byte.
    fn fill(&self, filler: &std::path::Path) {
        use std::io::Write as _;
        let mut file = std::fs::File::create(filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        // Whatever a 64 KiB chunk left over.
        while file.write_all(&[7u8]).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_pauses_indexing_acknowledges_nothing_loses_nothing_and_resumes() {
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        return;
    };
    let dir = tmpfs.path().join("index");
    let index = Index::open_or_create(&dir).unwrap();
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
            lines("before", 0..200),
            vec![("file:a".into(), json!(1))],
        ))
        .unwrap();
    writer.blocking_flush().unwrap();
    assert_eq!(index.num_docs(), 200);

    let filler = tmpfs.path().join("filler");
    tmpfs.fill(&filler);
    let (batch, ack) = Batch::with_ack(lines("full", 0..2_000), vec![("file:a".into(), json!(2))]);
    writer.blocking_send(batch).unwrap();
    let err = writer.blocking_flush().unwrap_err().to_string();
    assert!(
        err.contains("No space left on device (os error 28)"),
        "the cause is named: {err}"
    );
    let acked = ack.blocking_recv().unwrap();
    assert!(acked.is_err(), "nothing uncommitted is acknowledged");
    let status = writer.status();
    let pause = status.paused.expect("paused");
    assert_eq!(pause.io_kind.as_deref(), Some("StorageFull"));
    assert_eq!(status.generation, 1);
    assert_eq!(writer.stats().pauses, 1);
    // Refused while paused, with the cause; searches still answer from the last commit.
    let refused = writer.blocking_send(Batch::new(lines("refused", 0..5), vec![]));
    assert!(
        matches!(refused, Err(index::Error::Paused { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        writer.try_send(Batch::new(vec![], vec![])),
        Err(TrySendError::Paused { .. })
    ));
    assert_eq!(index.num_docs(), 200);
    assert_eq!(index.checkpoints().unwrap().get("file:a"), Some(&json!(1)));
    std::thread::sleep(Duration::from_millis(500));
    assert!(writer.status().paused.is_some(), "still full: still paused");

    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while writer.status().paused.is_some() {
        assert!(std::time::Instant::now() < deadline, "did not resume");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A batch its source made before the rollback is dropped; one re-read from the committed
    // checkpoint (generation 1) is indexed.
    let (stale, stale_ack) =
        Batch::with_ack(lines("stale", 0..10), vec![("file:a".into(), json!(99))]);
    writer.blocking_send(stale.in_generation(0)).unwrap();
    let (again, again_ack) =
        Batch::with_ack(lines("full", 0..2_000), vec![("file:a".into(), json!(2))]);
    writer.blocking_send(again.in_generation(1)).unwrap();
    writer.blocking_flush().unwrap();
    assert!(matches!(
        stale_ack.blocking_recv().unwrap(),
        Err(index::Error::Stale)
    ));
    assert!(again_ack.blocking_recv().unwrap().is_ok());
    assert_eq!(index.num_docs(), 2_200);
    assert_eq!(index.checkpoints().unwrap().get("file:a"), Some(&json!(2)));

    // Shut down while paused: an error naming the cause, not a panic; the index is intact.
    tmpfs.fill(&filler);
    writer
        .blocking_send(Batch::new(lines("lost", 0..2_000), vec![]))
        .unwrap();
    assert!(writer.blocking_flush().is_err());
    let err = writer.shutdown().unwrap_err();
    assert!(matches!(err, index::Error::Paused { .. }), "{err:?}");
    std::fs::remove_file(&filler).unwrap();
    drop(index);
    let reopened = Index::open_or_create(&dir).unwrap();
    assert_eq!(reopened.num_docs(), 2_200, "nothing committed was lost");
    assert_eq!(
        reopened.checkpoints().unwrap().get("file:a"),
        Some(&json!(2))
    );
}

/// A queue kept full (a backfill, a burst) with no record or byte bound still commits, and
/// acks, while the stream goes on: within `max_commit_delay` of the first pending batch.
#[test]
fn a_steady_backlog_is_committed_within_the_max_commit_delay() {
    let index = Index::create_in_ram().unwrap();
    let config = WriterConfig {
        commit_interval: Duration::from_millis(20),
        max_commit_delay: Duration::from_millis(300),
        commit_records: usize::MAX,
        commit_bytes: usize::MAX,
        queue_capacity: 1,
        ..WriterConfig::default()
    };
    let writer = Writer::start(&index, config).unwrap();
    let handle = writer.handle();
    // Built beforehand, so that sending outpaces indexing and the queue stays full.
    const BATCHES: u64 = 400;
    let batches: Vec<Batch> = (1..BATCHES)
        .map(|i| Batch::new(lines("burst", i * 500..i * 500 + 500), vec![]))
        .collect();
    let (first, ack) = Batch::with_ack(lines("burst", 0..200), vec![]);
    handle.blocking_send(first).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let handle = handle.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut records = 200;
            let mut sent = 1;
            for batch in batches {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                records += batch.records.len() as u64;
                handle.blocking_send(batch).unwrap();
                sent += 1;
            }
            (sent, records)
        })
    };
    let started = std::time::Instant::now();
    let opstamp = ack.blocking_recv().unwrap().unwrap();
    let waited = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, records) = sender.join().unwrap();
    assert!(opstamp > 0);
    assert!(
        sent < BATCHES,
        "the ack came only when the queue drained ({waited:?})"
    );
    assert!(waited < Duration::from_secs(10), "acked after {waited:?}");
    writer.shutdown().unwrap();
    assert_eq!(index.num_docs(), records);
}
