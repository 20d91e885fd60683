//! Retention through the writer: records past `max_age` (by their own time) and then the oldest
//! while the index is over `max_size` leave every view at once, their disk space comes back,
//! fresh records stay, the checkpoints survive, and arrival numbers keep growing.

mod common;

use std::time::Duration;

use common::*;
use index::{Batch, Index, RetentionPolicy, SearchRequest, Writer, WriterConfig};
use serde_json::json;

const DAY: i64 = 86_400 * SEC;

/// `n` logs of `service` stamped `age_ns` before `now`, a little apart, with long bodies so
/// that sizes are measurable.
fn logs(service: &str, n: u64, now: i64, age_ns: i64) -> Vec<model::Record> {
    (0..n)
        .map(|i| {
            let body = format!(
                "{service} record {i} {}",
                "payload ".repeat(20 + (i % 7) as usize)
            );
            log(None, None, service, &body)
                .at(now - age_ns + i as i64 * MS)
                .build()
        })
        .collect()
}

/// Runs retention passes (as the periodic check does) until the index directory is below
/// `limit` bytes: merges started for the deleted records finish in the background, and each
/// pass collects the files they made obsolete.
fn shrinks_below(
    writer: &Writer,
    index: &Index,
    policy: RetentionPolicy,
    now: i64,
    limit: u64,
) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        apply(writer, policy, now);
        let size = index.size_on_disk().unwrap();
        if size < limit {
            return size;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index stayed at {size} bytes, over {limit}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(index: &Index, q: &str) -> u64 {
    index
        .search(&SearchRequest {
            query: q,
            limit: 1,
            ..SearchRequest::default()
        })
        .unwrap()
        .total
}

fn apply(writer: &Writer, policy: RetentionPolicy, now: i64) -> index::RetentionReport {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(writer.apply_retention(policy, now))
        .unwrap()
}

#[test]
fn max_age_deletes_old_records_keeps_fresh_ones_and_shrinks_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(&index, WriterConfig::default()).unwrap();
    let now = T0 + 30 * DAY;
    // One commit (segment) each of old, middle-aged and fresh records, and one that mixes
    // old and fresh, so a segment is partly deleted and must be merged.
    let mut mixed = logs("mixed-old", 300, now, 20 * DAY);
    mixed.extend(logs("mixed-fresh", 300, now, 60 * SEC));
    for (i, batch) in [
        logs("old", 3000, now, 10 * DAY),
        logs("middle", 2000, now, 3 * DAY),
        mixed,
        logs("fresh", 1000, now, 60 * SEC),
    ]
    .into_iter()
    .enumerate()
    {
        let checkpoint = vec![("file:app.log".to_owned(), json!({"offset": i}))];
        writer.blocking_send(Batch::new(batch, checkpoint)).unwrap();
        writer.blocking_flush().unwrap();
    }
    assert_eq!(index.num_docs(), 6600);
    let size_before = index.size_on_disk().unwrap();

    let report = apply(
        &writer,
        RetentionPolicy {
            max_age: Some(Duration::from_secs(7 * 86_400)),
            max_size: None,
        },
        now,
    );
    assert_eq!(report.deleted, 3300);
    // (Background merges may have compacted the four segments meanwhile.)
    let size_before = size_before.max(report.size_before);
    // Gone from every view at once; everything younger is exactly there.
    assert_eq!(count(&index, "service = old"), 0);
    assert_eq!(count(&index, "service = mixed-old"), 0);
    assert_eq!(count(&index, "service = middle"), 2000);
    assert_eq!(count(&index, "service = mixed-fresh"), 300);
    assert_eq!(count(&index, "service = fresh"), 1000);
    assert_eq!(index.num_docs(), 3300);
    // The checkpoints rode along on the retention commits.
    assert_eq!(
        index.checkpoints().unwrap().get("file:app.log"),
        Some(&json!({"offset": 3}))
    );

    // Again, an hour later: nothing else is old enough, nothing is deleted.
    let again = apply(
        &writer,
        RetentionPolicy {
            max_age: Some(Duration::from_secs(7 * 86_400)),
            max_size: None,
        },
        now + 3600 * SEC,
    );
    assert_eq!(again.deleted, 0);
    assert_eq!(index.num_docs(), 3300);
    // The space comes back: the old segment was dropped, and the merges that the mixed and
    // the partly deleted segments need run in the background; the passes that follow (the
    // periodic check) collect the files they leave behind.
    let age = RetentionPolicy {
        max_age: Some(Duration::from_secs(7 * 86_400)),
        max_size: None,
    };
    shrinks_below(&writer, &index, age, now, size_before * 7 / 10);
    assert_eq!(index.num_docs(), 3300);
    writer.shutdown().unwrap();
}

#[test]
fn max_size_deletes_the_oldest_records_until_the_index_fits() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(&index, WriterConfig::default()).unwrap();
    let now = T0 + 30 * DAY;
    for (service, age) in [("d4", 4), ("d3", 3), ("d2", 2), ("d1", 1)] {
        writer
            .blocking_send(Batch::new(logs(service, 2000, now, age * DAY), vec![]))
            .unwrap();
        writer.blocking_flush().unwrap();
    }
    let size_before = index.size_on_disk().unwrap();
    let max_size = size_before / 2;
    let report = apply(
        &writer,
        RetentionPolicy {
            max_age: None,
            max_size: Some(max_size),
        },
        now,
    );
    assert!(report.deleted > 0);
    let size_after = index.live_size().unwrap();
    assert!(
        size_after <= max_size + max_size / 10,
        "{size_before} -> {size_after} bytes, limit {max_size}"
    );
    // The next passes delete nothing more, and collect what the merges leave behind.
    let size = RetentionPolicy {
        max_age: None,
        max_size: Some(max_size),
    };
    shrinks_below(&writer, &index, size, now, max_size + max_size / 10);
    // The oldest went first: whatever is left is newer than whatever was deleted.
    let left: Vec<u64> = ["d4", "d3", "d2", "d1"]
        .iter()
        .map(|s| count(&index, &format!("service = {s}")))
        .collect();
    assert_eq!(left.iter().sum::<u64>(), index.num_docs());
    assert!(index.num_docs() <= 8000 - report.deleted);
    assert_eq!(left[3], 2000, "the newest day is kept: {left:?}");
    for older in 0..4 {
        for newer in older + 1..4 {
            if left[older] > 0 {
                assert_eq!(left[newer], 2000, "deleted newer before older: {left:?}");
            }
        }
    }
    writer.shutdown().unwrap();
}

#[test]
fn arrival_numbers_keep_growing_after_everything_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let now = T0 + 30 * DAY;
    let first_last;
    {
        let index = Index::open_or_create(dir.path()).unwrap();
        let writer = Writer::start(&index, WriterConfig::default()).unwrap();
        writer
            .blocking_send(Batch::new(logs("old", 50, now, 10 * DAY), vec![]))
            .unwrap();
        writer.blocking_flush().unwrap();
        first_last = index.last_seq().unwrap().unwrap();
        let report = apply(
            &writer,
            RetentionPolicy {
                max_age: Some(Duration::from_secs(86_400)),
                max_size: None,
            },
            now,
        );
        assert_eq!(report.deleted, 50);
        assert_eq!(index.num_docs(), 0);
        writer.shutdown().unwrap();
    }
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(&index, WriterConfig::default()).unwrap();
    writer
        .blocking_send(Batch::new(logs("new", 1, now, 0), vec![]))
        .unwrap();
    writer.blocking_flush().unwrap();
    assert!(index.last_seq().unwrap().unwrap() > first_last);
    writer.shutdown().unwrap();
}
