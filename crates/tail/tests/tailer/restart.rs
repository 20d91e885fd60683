//! Restarts from the emitted checkpoints: exact resume, rotation and truncation while stopped,
//! inode reuse, identical heads.

use std::fs::OpenOptions;
use std::time::Duration;

use tail::{Checkpoints, TailConfig};

use crate::util::{Run, append, config, inode, numbered, numbered_vec, temp};

/// Runs until `done`, stops, and returns the run (its batches count as committed).
async fn run_until(
    cfg: TailConfig,
    cps: &Checkpoints,
    what: &str,
    done: impl Fn(&Run) -> bool,
) -> Run {
    let mut run = Run::start(cfg, cps);
    run.wait_for(what, done).await;
    run.settle(Duration::from_millis(120)).await;
    run.stop()
}

#[tokio::test]
async fn resume_exactly_where_the_last_checkpoint_says() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, &numbered("line", 1..=3000));
    append(&path, "spans-the-");
    let mut cfg = config(&[&path]);
    cfg.read_chunk = 1000;
    cfg.max_buffered_bytes = 500;
    // A tiny channel: back-pressure holds the tailer mid-file.
    let mut first = Run::start_with_capacity(cfg.clone(), &Checkpoints::new(), 1);
    first.wait_for("some lines", |r| r.count(500)).await;
    let first = first.stop();
    let n = first.lines().len();
    assert!(n < 3000, "the first run read everything ({n})");

    let mut second = Run::start_with_capacity(cfg.clone(), &first.checkpoints, 1);
    second.wait_for("the rest", |r| r.count(3000 - n)).await;
    let second = second.stop();
    append(&path, "restart\n");
    let third = run_until(cfg, &second.checkpoints, "the partial line", |r| r.count(1)).await;

    let mut all = first.lines();
    all.extend(second.lines());
    all.extend(third.lines());
    let mut want = numbered_vec("line", 1..=3000);
    want.push("spans-the-restart".into());
    assert_eq!(all, want);
}

#[tokio::test]
async fn rotation_while_stopped_resumes_the_renamed_file_under_its_new_name() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, &numbered("a", 1..=3));
    let cfg = config(&[&dir.join("app.log*")]);
    let first = run_until(cfg.clone(), &Checkpoints::new(), "a", |r| r.count(3)).await;
    // While stopped: late lines, then a rotation burst (.1 → .2, app.log → .1, twice).
    append(&path, "a-late\n");
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    append(&path, &numbered("b", 1..=2));
    std::fs::rename(dir.join("app.log.1"), dir.join("app.log.2")).unwrap();
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    append(&path, &numbered("c", 1..=2));
    let second = run_until(cfg, &first.checkpoints, "the rest", |r| {
        r.has("a-late") && r.has("b-2") && r.has("c-2")
    })
    .await;
    let mut got = second.lines();
    got.sort();
    assert_eq!(got, ["a-late", "b-1", "b-2", "c-1", "c-2"]);
    assert_eq!(second.key_of("a-late"), first.key_of("a-1"));
    let rotated = second
        .batches
        .iter()
        .find(|b| b.checkpoint.0 == first.key_of("a-1"))
        .unwrap();
    assert!(rotated.path.ends_with("app.log.2"), "{}", rotated.path);
}

#[tokio::test]
async fn rotation_while_stopped_finishes_the_old_file_outside_the_glob() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    append(&path, &numbered("a", 1..=3));
    let cfg = config(&[&path]);
    let first = run_until(cfg.clone(), &Checkpoints::new(), "a", |r| r.count(3)).await;
    append(&path, "a-late\n");
    std::fs::rename(&path, dir.join("app.log.1")).unwrap();
    append(&path, "b-1\n");
    let mut second = Run::start(cfg, &first.checkpoints);
    second
        .wait_for("the rest", |r| r.has("a-late") && r.has("b-1"))
        .await;
    let old = first.key_of("a-1");
    second
        .wait_for("the old file's expiry", |r| r.expired().contains(&old))
        .await;
    let second = second.stop();
    let mut got = second.lines();
    got.sort();
    assert_eq!(got, ["a-late", "b-1"]);
    assert_eq!(second.checkpoints.len(), 1);
}

#[tokio::test]
async fn copytruncate_while_stopped_reads_only_the_new_content() {
    let (_dir, dir) = temp();
    let short = dir.join("short.log");
    let long = dir.join("long.log");
    // Identical heads before and after the truncation: only the offset marker tells.
    let header = format!("# banner {}\n", "=".repeat(1100));
    append(&short, &format!("{header}{}", numbered("old-short", 1..=3)));
    append(&long, &format!("{header}{}", numbered("old-long", 1..=3)));
    let cfg = config(&[&dir.join("*.log")]);
    let first = run_until(cfg.clone(), &Checkpoints::new(), "old", |r| r.count(8)).await;
    for path in [&short, &long] {
        std::fs::copy(path, path.with_extension("log.1")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    append(&short, "short\n");
    append(&long, &format!("{header}{}", numbered("new", 1..=9)));
    let second = run_until(cfg, &first.checkpoints, "new", |r| {
        r.has("short") && r.has("new-9")
    })
    .await;
    let mut want = vec![header.trim_end().to_owned(), "short".into()];
    want.extend(numbered_vec("new", 1..=9));
    let mut got = second.lines();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_reused_inode_is_read_from_zero_not_resumed() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    let header = format!("# banner {}\n", "=".repeat(1100));
    append(&path, &format!("{header}{}", numbered("old", 1..=2)));
    let old_inode = inode(&path);
    let cfg = config(&[&path]);
    let first = run_until(cfg.clone(), &Checkpoints::new(), "old", |r| r.has("old-2")).await;
    std::fs::remove_file(&path).unwrap();
    append(&path, &format!("{header}{}", numbered("new", 1..=5)));
    if inode(&path) != old_inode {
        eprintln!("the file system did not reuse the inode; the test still checks a fresh start");
    }
    let mut second = Run::start(cfg, &first.checkpoints);
    second.wait_for("new", |r| r.has("new-5")).await;
    // The stale checkpoint is forgotten: at once if the inode holds the new file, after
    // `rotate_wait` (waiting for a copy of the old file) if not.
    let old = first.key_of("old-1");
    second
        .wait_for("the old key's expiry", |r| r.expired().contains(&old))
        .await;
    second.settle(Duration::from_millis(120)).await;
    let second = second.stop();
    let mut want = vec![header.trim_end().to_owned()];
    want.extend(numbered_vec("new", 1..=5));
    assert_eq!(second.lines(), want);
    assert_eq!(second.checkpoints.len(), 1);
}

#[tokio::test]
async fn two_files_with_identical_heads_are_both_read_fully() {
    let (_dir, dir) = temp();
    let header = format!("# csv header {}\n", "h".repeat(2000));
    let a = dir.join("a.log");
    let b = dir.join("b.log");
    append(&a, &format!("{header}a-1\n"));
    append(&b, &format!("{header}b-1\n"));
    let cfg = config(&[&dir.join("*.log")]);
    let first = run_until(cfg.clone(), &Checkpoints::new(), "both", |r| {
        r.has("a-1") && r.has("b-1")
    })
    .await;
    assert_eq!(first.lines().len(), 4);
    assert_ne!(first.key_of("a-1"), first.key_of("b-1"));
    append(&a, "a-2\n");
    append(&b, "b-2\n");
    let second = run_until(cfg, &first.checkpoints, "both", |r| {
        r.has("a-2") && r.has("b-2")
    })
    .await;
    let mut got = second.lines();
    got.sort();
    assert_eq!(got, ["a-2", "b-2"]);
}

/// logrotate's copytruncate with `rotate N`: shift `app.log.k` to `app.log.k+1`, copy
/// `app.log` to `app.log.1`, truncate `app.log`.
pub fn copytruncate(dir: &std::path::Path, generations: usize) {
    for k in (1..generations).rev() {
        let from = dir.join(format!("app.log.{k}"));
        if from.exists() {
            std::fs::rename(&from, dir.join(format!("app.log.{}", k + 1))).unwrap();
        }
    }
    std::fs::copy(dir.join("app.log"), dir.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(dir.join("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[tokio::test]
async fn copytruncate_while_stopped_with_the_copy_in_the_glob_reads_every_line_once() {
    let (_dir, dir) = temp();
    let path = dir.join("app.log");
    let cfg = config(&[&dir.join("app.log*")]);
    append(&path, &numbered("a", 1..=3));
    let mut checkpoints = Checkpoints::new();
    let mut all = Vec::new();
    let mut want = numbered_vec("a", 1..=3);
    let first = run_until(cfg.clone(), &checkpoints, "a", |r| r.has("a-3")).await;
    all.extend(first.lines());
    checkpoints = first.checkpoints;
    for round in 0..3 {
        // Written while stopped and never read from `app.log`: only the copy holds them.
        let unread = format!("unread{round}");
        append(&path, &numbered(&unread, 1..=4));
        want.extend(numbered_vec(&unread, 1..=4));
        copytruncate(&dir, 3);
        let fresh = format!("fresh{round}");
        append(&path, &numbered(&fresh, 1..=2));
        want.extend(numbered_vec(&fresh, 1..=2));
        let last = format!("{fresh}-2");
        let unread_last = format!("{unread}-4");
        let run = run_until(cfg.clone(), &checkpoints, "the rest", |r| {
            r.has(&last) && r.has(&unread_last)
        })
        .await;
        all.extend(run.lines());
        checkpoints = run.checkpoints;
    }
    all.sort();
    want.sort();
    assert_eq!(all, want);
}
