//! Rotation, truncation and deletion while the tailer runs.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use tail::Checkpoints;

use crate::util::{Run, append, config, numbered, numbered_vec, temp, write};

#[tokio::test]
async fn rename_and_create_finishes_the_old_file_with_its_late_writes() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, &numbered("old", 1..=3));
    let mut run = Run::start(config(&[&path]), &Checkpoints::new());
    run.wait_for("old lines", |r| r.count(3)).await;
    // A writer that still has the old file open after logrotate renamed it.
    let mut old_writer = OpenOptions::new().append(true).open(&path).unwrap();
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    write(&path, &numbered("new", 1..=2));
    old_writer.write_all(b"old-4\nold-5-partial").unwrap();
    run.wait_for("all lines", |r| r.has("old-4") && r.has("new-2"))
        .await;
    // After `rotate_wait` without data, the old file's partial line is emitted once and its
    // checkpoint forgotten.
    run.wait_for("the partial line", |r| r.has("old-5-partial"))
        .await;
    let old_key = run.key_of("old-1");
    run.wait_for("the old key's expiry", |r| r.expired().contains(&old_key))
        .await;
    let mut want = numbered_vec("old", 1..=4);
    want.push("old-5-partial".into());
    assert_eq!(run.lines_of_key(&old_key), want);
    assert_eq!(
        run.lines_of_key(&run.key_of("new-1")),
        numbered_vec("new", 1..=2)
    );
    assert!(run.checkpoints.get(&old_key).is_none());
    assert_eq!(run.checkpoints.len(), 1);
    run.stop();
}

#[tokio::test]
async fn rapid_repeated_rotations_lose_and_repeat_nothing() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    // The rotated names match too, so identity follows each file through its renames.
    let mut run = Run::start(config(&[&dir.join("app.log*")]), &Checkpoints::new());
    let mut n = 0;
    let mut want = Vec::new();
    for round in 0..8 {
        for _ in 0..25 {
            n += 1;
            append(&path, &format!("line-{n}\n"));
            want.push(format!("line-{n}"));
        }
        // logrotate: shift app.log.k → app.log.k+1, then app.log → app.log.1.
        for k in (1..=round).rev() {
            let from = dir.join(format!("app.log.{k}"));
            std::fs::rename(&from, dir.join(format!("app.log.{}", k + 1))).unwrap();
        }
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    }
    run.wait_for("every line", |r| r.count(want.len())).await;
    run.settle(Duration::from_millis(200)).await;
    let mut got = run.lines();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    run.stop();
}

#[tokio::test]
async fn copytruncate_while_running_restarts_at_zero() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, &numbered("before", 1..=5));
    let mut run = Run::start(config(&[&path]), &Checkpoints::new());
    run.wait_for("first lines", |r| r.count(5)).await;
    std::fs::copy(&path, dir.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "after-1\n");
    run.wait_for("the line after the truncation", |r| r.has("after-1"))
        .await;
    // Truncate and rewrite longer than before at once: the changed bytes before the read
    // position give it away even though the file did not shrink.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &numbered("rewritten", 1..=4));
    run.wait_for("the rewritten lines", |r| r.has("rewritten-4"))
        .await;
    run.settle(Duration::from_millis(150)).await;
    let mut want = numbered_vec("before", 1..=5);
    want.push("after-1".into());
    want.extend(numbered_vec("rewritten", 1..=4));
    assert_eq!(run.lines(), want);
    run.stop();
}

#[tokio::test]
async fn a_writer_without_o_append_leaves_a_nul_hole_that_is_not_emitted() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    let mut writer = std::fs::File::create(&path).unwrap(); // no O_APPEND
    writer
        .write_all(numbered("before", 1..=20).as_bytes())
        .unwrap();
    let mut run = Run::start(config(&[&path]), &Checkpoints::new());
    run.wait_for("first lines", |r| r.count(20)).await;
    std::fs::copy(&path, dir.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    // The stale writer goes on at its old offset: the file is a hole of zeros, then this.
    writer.write_all(b"after-1\nafter-2\n").unwrap();
    run.wait_for("lines after the hole", |r| r.has("after-2"))
        .await;
    run.settle(Duration::from_millis(150)).await;
    let mut want = numbered_vec("before", 1..=20);
    want.extend(numbered_vec("after", 1..=2));
    assert_eq!(run.lines(), want);
    assert!(
        run.batches
            .iter()
            .flat_map(|b| &b.lines)
            .all(|l| !l.bytes.contains(&0))
    );
    run.stop();
}

#[tokio::test]
async fn a_deleted_file_is_read_to_its_end_through_the_open_handle() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writer.write_all(b"one\n").unwrap();
    let mut run = Run::start(config(&[&path]), &Checkpoints::new());
    run.wait_for("first line", |r| r.has("one")).await;
    let key = run.key_of("one");
    std::fs::remove_file(&path).unwrap();
    writer.write_all(b"two\nthree\n").unwrap();
    run.wait_for("lines written after the delete", |r| r.has("three"))
        .await;
    run.wait_for("the expiry", |r| r.expired().contains(&key))
        .await;
    assert_eq!(run.lines(), ["one", "two", "three"]);
    assert!(run.checkpoints.is_empty());
    run.stop();
}

#[tokio::test]
async fn delete_and_recreate_at_the_same_path_reads_the_new_file() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, "first\n");
    let mut run = Run::start(config(&[&path]), &Checkpoints::new());
    run.wait_for("first", |r| r.has("first")).await;
    std::fs::remove_file(&path).unwrap();
    append(&path, "second\n");
    run.wait_for("second", |r| r.has("second")).await;
    append(&path, "third\n");
    run.wait_for("third", |r| r.has("third")).await;
    assert_eq!(run.lines(), ["first", "second", "third"]);
    assert_ne!(run.key_of("first"), run.key_of("second"));
    run.stop();
}

#[tokio::test]
async fn polling_alone_follows_rotation_and_truncation() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    let mut cfg = config(&[&dir.join("app.log*")]);
    cfg.notify = false; // as on NFS: no events at all
    append(&path, &numbered("a", 1..=3));
    let mut run = Run::start(cfg, &Checkpoints::new());
    run.wait_for("a", |r| r.count(3)).await;
    let mut old_writer = OpenOptions::new().append(true).open(&path).unwrap();
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    append(&path, "b-1\n");
    old_writer.write_all(b"a-4\n").unwrap();
    run.wait_for("rotation", |r| r.has("a-4") && r.has("b-1"))
        .await;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "c-1\n");
    run.wait_for("after truncation", |r| r.has("c-1")).await;
    run.settle(Duration::from_millis(150)).await;
    let mut got = run.lines();
    got.sort();
    assert_eq!(got, ["a-1", "a-2", "a-3", "a-4", "b-1", "c-1"]);
    run.stop();
}

#[tokio::test]
async fn copytruncate_with_the_copy_in_the_glob_reads_every_line_once() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    // A writer without O_APPEND: after each truncation it leaves a NUL hole.
    let mut writer = std::fs::File::create(&path).unwrap();
    writer.write_all(numbered("r0", 1..=5).as_bytes()).unwrap();
    let mut run = Run::start(config(&[&dir.join("app.log*")]), &Checkpoints::new());
    run.wait_for("first lines", |r| r.count(5)).await;
    let mut want = numbered_vec("r0", 1..=5);
    for round in 1..=4 {
        // Some lines the tailer may or may not have read before the copy.
        let late = format!("late{round}");
        writer.write_all(numbered(&late, 1..=3).as_bytes()).unwrap();
        want.extend(numbered_vec(&late, 1..=3));
        crate::restart::copytruncate(&dir, 3);
        let after = format!("r{round}");
        writer
            .write_all(numbered(&after, 1..=5).as_bytes())
            .unwrap();
        want.extend(numbered_vec(&after, 1..=5));
        let last = format!("{after}-5");
        run.wait_for("the lines after the truncation", |r| r.has(&last))
            .await;
        // Let a sweep see each state (as logrotate runs rarely).
        run.settle(Duration::from_millis(150)).await;
    }
    run.settle(Duration::from_millis(400)).await;
    let mut got = run.lines();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(
        run.batches
            .iter()
            .flat_map(|b| &b.lines)
            .all(|l| !l.bytes.contains(&0))
    );
    run.stop();
}

#[tokio::test]
async fn lines_read_between_the_copy_and_the_truncation_are_not_read_again_from_the_copy() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, &numbered("a", 1..=5));
    let mut run = Run::start(config(&[&dir.join("app.log*")]), &Checkpoints::new());
    run.wait_for("first lines", |r| r.count(5)).await;
    std::fs::copy(&path, dir.join("app.log.1")).unwrap();
    run.settle(Duration::from_millis(150)).await;
    // The application writes on before logrotate truncates, and the tailer reads it: more of
    // the original is read than the copy holds.
    append(&path, &numbered("between", 1..=3));
    run.wait_for("the lines between", |r| r.has("between-3"))
        .await;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "after-1\n");
    run.wait_for("the line after the truncation", |r| r.has("after-1"))
        .await;
    // Past `rotate_wait`: nothing of the copy comes later either.
    run.settle(Duration::from_millis(800)).await;
    let mut want = numbered_vec("a", 1..=5);
    want.extend(numbered_vec("between", 1..=3));
    want.push("after-1".into());
    assert_eq!(run.lines(), want);
    run.stop();
}

#[tokio::test]
async fn a_file_renamed_away_while_no_handle_is_free_is_read_before_it_is_retired() {
    let (_dir, dir) = temp();
    let (a, b) = (dir.join("a.log"), dir.join("b.log"));
    append(&a, &numbered("a", 1..=3));
    append(&b, &numbered("b", 1..=3));
    let mut cfg = config(&[&dir.join("*.log")]);
    // One handle: one file is closed so the other can be read, and the one still open after
    // leaving the globs is no candidate for closing.
    cfg.max_open_files = 1;
    let mut run = Run::start(cfg, &Checkpoints::new());
    run.wait_for("both files", |r| r.count(6)).await;
    // Both get more lines and are rotated out of the glob: the open one is read through its
    // handle; the closed one is found beside its old path but gets no handle until the open
    // one is retired — quiet, but not read, so it must not be retired with it.
    append(&a, &numbered("a", 4..=6));
    append(&b, &numbered("b", 4..=6));
    std::fs::rename(&a, dir.join("a.log.1")).unwrap();
    std::fs::rename(&b, dir.join("b.log.1")).unwrap();
    run.wait_for("every line", |r| r.count(12)).await;
    let (key_a, key_b) = (run.key_of("a-1"), run.key_of("b-1"));
    run.wait_for("both expired", |r| {
        r.expired().contains(&key_a) && r.expired().contains(&key_b)
    })
    .await;
    assert_eq!(run.lines_of_key(&key_a), numbered_vec("a", 1..=6));
    assert_eq!(run.lines_of_key(&key_b), numbered_vec("b", 1..=6));
    run.stop();
}
