//! `threadline serve` end to end: the real binary tails real files through rotations,
//! truncations, deletions and restarts, and every line written is searchable exactly once
//! (checked per line id through `/api/v1/search`, not by counts).

mod support;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn workspace() -> Workspace {
    Workspace::new(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve_e2e"))
}

/// `serve` on `ws`'s index with the fast test config and one `--source` glob.
fn serve_cmd(ws: &Workspace, glob: &Path) -> ServeCommand {
    ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .arg("--config")
        .arg(ws.config(FAST_CONFIG))
        .source(glob)
}

fn set(ids: impl IntoIterator<Item = BTreeSet<String>>) -> BTreeSet<String> {
    ids.into_iter().flatten().collect()
}

fn hits_with_id<'a>(hits: &'a [serde_json::Value], id: &str) -> Vec<&'a serde_json::Value> {
    hits.iter().filter(|h| ids_in(h).contains(id)).collect()
}

#[test]
fn empty_lines_are_skipped_and_the_lines_around_them_kept() {
    let ws = workspace();
    let log = ws.logs().join("app.log");
    std::fs::write(
        &log,
        format!(
            "\n{}\n\n   \n{}\r\n\n",
            line("a").trim_end(),
            line("b").trim_end()
        ),
    )
    .unwrap();
    let serve = serve_cmd(&ws, &ws.logs().join("*.log")).start();
    let expected = set([BTreeSet::from(["a".to_owned(), "b".to_owned()])]);
    let counts = serve.wait_for_ids(&expected, WAIT);
    assert_exactly_once(&counts, &expected);
    assert_eq!(serve.search_all("").len(), 2, "an empty line is no record");
    serve.stop();
}

#[test]
fn a_partial_line_waits_for_its_newline_even_across_a_restart() {
    let ws = workspace();
    let log = ws.logs().join("app.log");
    let mut ids = append_lines(&log, "p", 0..5);
    let cmd = serve_cmd(&ws, &ws.logs().join("*.log"));
    let serve = cmd.start();
    let whole = line("half");
    let (head, tail) = whole.split_at(20);
    append(&log).write_all(head.as_bytes()).unwrap();
    serve.wait_for_ids(&ids, WAIT);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        serve.search_all("").len() == 5,
        "a line without its newline is not indexed"
    );
    // Completed while running.
    append(&log).write_all(tail.as_bytes()).unwrap();
    ids.insert("half".into());
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);

    // A partial line across a restart: started before the stop, completed after.
    let whole = line("across");
    let (head, tail) = whole.split_at(25);
    append(&log).write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    serve.stop();
    append(&log).write_all(tail.as_bytes()).unwrap();
    ids.insert("across".into());
    ids.extend(append_lines(&log, "after", 0..3));
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn an_over_long_line_is_cut_and_flagged_and_its_neighbours_survive() {
    let ws = workspace();
    let log = ws.logs().join("app.log");
    let mut ids = append_lines(&log, "before", 0..3);
    let long = format!(
        "{{\"message\":\"{ID_OPEN}long{ID_CLOSE} {}\"}}\n",
        "x".repeat(500)
    );
    append(&log).write_all(long.as_bytes()).unwrap();
    ids.insert("long".into());
    ids.extend(append_lines(&log, "after", 0..3));
    let serve = serve_cmd(&ws, &ws.logs().join("*.log"))
        .arg("--max-line-bytes")
        .arg("100")
        .start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    let hits = serve.search_all("");
    let long_hits = hits_with_id(&hits, "long");
    let problems = long_hits[0]["problems"].to_string();
    assert!(problems.contains("truncated"), "{}", long_hits[0]);
    assert!(long_hits[0]["body"].as_str().unwrap().len() <= 100);
    let short = hits_with_id(&hits, "after-0");
    assert!(!short[0]["problems"].to_string().contains("truncated"));
    serve.stop();
}

#[test]
fn rename_and_create_with_late_writes_to_the_old_file() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let mut ids = append_lines(&log, "old", 0..50);
    let serve = serve_cmd(&ws, &logs.join("*.log")).start();
    let mut old = append(&log);
    serve.wait_for_ids(&ids, WAIT);
    std::fs::rename(&log, logs.join("app.log.1")).unwrap();
    ids.extend(append_lines(&log, "new", 0..30));
    // The service still holds the old file: its late lines must be read too.
    for i in 0..10 {
        old.write_all(line(&format!("late-{i}")).as_bytes())
            .unwrap();
        ids.insert(format!("late-{i}"));
    }
    ids.extend(append_lines(&log, "new", 30..40));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn rapid_repeated_rotations_within_the_glob() {
    // Rotated names match the glob (`app.log*`), as Vector advises: however fast the
    // rotations, every file is found, and a renamed file keeps its identity and position.
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let serve = serve_cmd(&ws, &logs.join("app.log*")).start();
    let mut ids = BTreeSet::new();
    for r in 0..12 {
        ids.extend(append_lines(&log, &format!("r{r}"), 0..25));
        logrotate(&logs, r);
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..60)));
    }
    ids.extend(append_lines(&log, "last", 0..10));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn repeated_rotations_out_of_the_glob_with_late_writes() {
    // Rotated names leave the glob (`*.log`): each file is finished through its open handle.
    // A file is rotated as soon as it has been seen: one that no reader ever saw and that
    // leaves the globs cannot be found by any tailer.
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let serve = serve_cmd(&ws, &logs.join("*.log")).start();
    let mut ids = BTreeSet::new();
    for r in 0..8 {
        let first = append_lines(&log, &format!("r{r}"), 0..5);
        serve.wait_for_ids(&first, WAIT);
        ids.extend(first);
        let mut old = append(&log);
        ids.extend(append_lines(&log, &format!("r{r}"), 5..25));
        logrotate(&logs, r);
        for i in 25..30 {
            old.write_all(line(&format!("r{r}-{i}")).as_bytes())
                .unwrap();
            ids.insert(format!("r{r}-{i}"));
        }
    }
    ids.extend(append_lines(&log, "last", 0..10));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

/// logrotate's default: `app.log.N` becomes `app.log.N+1`, then `app.log` becomes `app.log.1`.
fn logrotate(logs: &Path, kept: usize) {
    for n in (1..=kept).rev() {
        let from = logs.join(format!("app.log.{n}"));
        if from.exists() {
            std::fs::rename(&from, logs.join(format!("app.log.{}", n + 1))).unwrap();
        }
    }
    std::fs::rename(logs.join("app.log"), logs.join("app.log.1")).unwrap();
}

/// What logrotate's copytruncate does.
fn copy_truncate(log: &Path, copy: &Path) {
    std::fs::copy(log, copy).unwrap();
    OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn copytruncate_while_running() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let mut ids = append_lines(&log, "a", 0..60);
    let serve = serve_cmd(&ws, &logs.join("*.log")).start();
    serve.wait_for_ids(&ids, WAIT);
    copy_truncate(&log, &logs.join("app.log.1"));
    ids.extend(append_lines(&log, "b", 0..20));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    // Again, this time growing past the old size before the tailer looks.
    copy_truncate(&log, &logs.join("app.log.2"));
    ids.extend(append_lines(&log, "c", 0..120));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn copytruncate_while_stopped() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let cmd = serve_cmd(&ws, &logs.join("*.log"));
    let mut ids = append_lines(&log, "a", 0..60);
    let serve = cmd.start();
    serve.wait_for_ids(&ids, WAIT);
    serve.stop();
    copy_truncate(&log, &logs.join("app.log.1"));
    ids.extend(append_lines(&log, "b", 0..10));
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
    // Truncated and rewritten past the old size while stopped: the bytes before the saved
    // offset changed, so the file is read from 0.
    copy_truncate(&log, &logs.join("app.log.2"));
    ids.extend(append_lines(&log, "c", 0..100));
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn a_writer_without_o_append_after_a_truncate_leaves_no_nul_records() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let serve = serve_cmd(&ws, &logs.join("*.log")).start();
    // Not O_APPEND: it keeps writing at its own offset.
    let mut writer = std::fs::File::create(&log).unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..50 {
        writer
            .write_all(line(&format!("a-{i}")).as_bytes())
            .unwrap();
        ids.insert(format!("a-{i}"));
    }
    serve.wait_for_ids(&ids, WAIT);
    copy_truncate(&log, &logs.join("app.log.1"));
    let position = writer.stream_position().unwrap();
    assert!(position > 0);
    for i in 0..20 {
        writer
            .write_all(line(&format!("b-{i}")).as_bytes())
            .unwrap();
        ids.insert(format!("b-{i}"));
    }
    assert_eq!(
        std::fs::read(&log)
            .unwrap()
            .iter()
            .take_while(|b| **b == 0)
            .count() as u64,
        position,
        "the file starts with a hole of NULs"
    );
    writer.seek(SeekFrom::End(0)).unwrap();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    let hits = serve.search_all("");
    assert!(
        hits.iter().all(|h| !h.to_string().contains("\\u0000")),
        "a NUL reached the index"
    );
    assert_eq!(hits.len(), ids.len());
    serve.stop();
}

#[test]
fn a_deleted_file_is_read_to_its_end_and_forgotten() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let keep = logs.join("keep.log");
    let cmd = serve_cmd(&ws, &logs.join("*.log"));
    let mut ids = append_lines(&log, "a", 0..30);
    ids.extend(append_lines(&keep, "k", 0..3));
    let serve = cmd.start();
    let mut held = append(&log);
    serve.wait_for_ids(&ids, WAIT);
    std::fs::remove_file(&log).unwrap();
    // Written through a handle the service still holds.
    for i in 0..10 {
        held.write_all(line(&format!("late-{i}")).as_bytes())
            .unwrap();
        ids.insert(format!("late-{i}"));
    }
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    drop(held);
    // After rotate_wait its checkpoint is dropped from the commit payload.
    let deadline = Instant::now() + WAIT;
    while committed_checkpoints(&ws.index()).len() > 1 && Instant::now() < deadline {
        // Something must be committed for the payload to change: the expiry itself is.
        std::thread::sleep(Duration::from_millis(200));
    }
    serve.stop();
    let checkpoints = committed_checkpoints(&ws.index());
    assert_eq!(
        checkpoints.len(),
        1,
        "only keep.log is left: {checkpoints:?}"
    );
    assert!(
        checkpoints.values().all(|v| !v.is_null()),
        "an expiry is a removal, not a null: {checkpoints:?}"
    );
    // Nothing is read again after a restart.
    let serve = cmd.start();
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&id_counts(&serve.search_all("")), &ids);
    serve.stop();
}

#[test]
fn delete_and_recreate_at_the_same_path() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let mut ids = append_lines(&log, "first", 0..30);
    let serve = serve_cmd(&ws, &logs.join("*.log")).start();
    serve.wait_for_ids(&ids, WAIT);
    std::fs::remove_file(&log).unwrap();
    ids.extend(append_lines(&log, "second", 0..20));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    // And once more, quickly, with the same first line as before.
    std::fs::remove_file(&log).unwrap();
    ids.extend(append_lines(&log, "third", 0..20));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn rotations_while_stopped_are_caught_up_without_rereading() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let cmd = serve_cmd(&ws, &logs.join("*.log"));
    let mut ids = append_lines(&log, "a", 0..40);
    let serve = cmd.start();
    serve.wait_for_ids(&ids, WAIT);
    serve.stop();
    // Down: the file gets more lines and is rotated twice (.1, then .2); new files take
    // its place. (A file created *and* rotated out of the globs while down was never seen, so
    // no tailer can find it; rotated names inside the globs avoid that.)
    ids.extend(append_lines(&log, "unread", 0..15));
    std::fs::rename(&log, logs.join("app.log.1")).unwrap();
    ids.extend(append_lines(&log, "b", 0..20));
    std::fs::rename(logs.join("app.log.1"), logs.join("app.log.2")).unwrap();
    ids.extend(append_lines(&log, "b", 20..30));
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn inode_reuse_across_a_restart_is_read_as_a_new_file() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    let cmd = serve_cmd(&ws, &logs.join("*.log"));
    let mut ids = append_lines(&log, "old", 0..40);
    let old_ino = std::fs::metadata(&log).unwrap().ino();
    let serve = cmd.start();
    serve.wait_for_ids(&ids, WAIT);
    serve.stop();
    std::fs::remove_file(&log).unwrap();
    // Ask the file system for the freed inode: create files until one gets it.
    let mut reused = false;
    let mut spares = Vec::new();
    for i in 0..200 {
        let candidate = logs.join(format!("spare-{i}.tmp"));
        std::fs::write(&candidate, b"").unwrap();
        if std::fs::metadata(&candidate).unwrap().ino() == old_ino {
            std::fs::rename(&candidate, &log).unwrap();
            reused = true;
            break;
        }
        spares.push(candidate);
    }
    for spare in spares {
        std::fs::remove_file(spare).unwrap();
    }
    // Longer than the old file, so an offset check alone would not notice.
    ids.extend(append_lines(&log, "new", 0..80));
    eprintln!("inode reused: {reused}");
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn two_files_with_identical_heads_are_both_read() {
    let ws = workspace();
    let logs = ws.logs();
    let header: String = (0..40)
        .map(|i| format!("{{\"message\":\"header line {i}\"}}\n"))
        .collect();
    assert!(header.len() > 1024, "the head (1 KiB) is all header");
    let mut ids = BTreeSet::new();
    for name in ["a", "b"] {
        let path = logs.join(format!("{name}.log"));
        std::fs::write(&path, &header).unwrap();
        ids.extend(append_lines(&path, name, 0..20));
    }
    let cmd = serve_cmd(&ws, &logs.join("*.log"));
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    let headers = serve
        .search_all("")
        .into_iter()
        .filter(|h| h["body"] == "header line 7")
        .count();
    assert_eq!(headers, 2, "each file's header, once each");
    serve.stop();
    // And after a restart, each resumes from its own checkpoint.
    for name in ["a", "b"] {
        ids.extend(append_lines(
            &logs.join(format!("{name}.log")),
            name,
            20..30,
        ));
    }
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    assert_eq!(serve.search_all("").len(), 80 + ids.len());
    serve.stop();
}

#[test]
fn new_files_matching_the_glob_are_found_and_others_ignored() {
    let ws = workspace();
    let logs = ws.logs();
    let mut ids = append_lines(&logs.join("first.log"), "first", 0..5);
    let serve = serve_cmd(&ws, &logs.join("**/*.log")).start();
    serve.wait_for_ids(&ids, WAIT);
    for i in 0..5 {
        ids.extend(append_lines(
            &logs.join(format!("new-{i}.log")),
            &format!("n{i}"),
            0..10,
        ));
    }
    // A new folder below the glob's root, and files that do not match.
    std::fs::create_dir_all(logs.join("sub/deeper")).unwrap();
    ids.extend(append_lines(&logs.join("sub/deeper/x.log"), "deep", 0..10));
    append_lines(&logs.join("notes.txt"), "txt", 0..5);
    append_lines(&logs.join("sub/x.log.1"), "rotated", 0..5);
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn exclude_patterns_by_name_and_by_path() {
    let ws = workspace();
    let logs = ws.logs();
    let config = format!(
        "{FAST_CONFIG}\n[[source]]\ninclude = [\"{logs}/**/*.log\"]\nexclude = [\"debug-*.log\", \"{logs}/skip/**\"]\nservice = \"configured\"\n",
        logs = logs.display()
    );
    std::fs::create_dir_all(logs.join("skip")).unwrap();
    std::fs::create_dir_all(logs.join("keep")).unwrap();
    let mut ids = append_lines(&logs.join("app.log"), "app", 0..10);
    ids.extend(append_lines(&logs.join("keep/b.log"), "keep", 0..10));
    append_lines(&logs.join("debug-app.log"), "debug", 0..10);
    append_lines(&logs.join("keep/debug-b.log"), "debug-b", 0..10);
    append_lines(&logs.join("skip/c.log"), "skipped", 0..10);
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .arg("--config")
        .arg(ws.config(&config))
        .start();
    let counts = serve.wait_for_ids(&ids, WAIT);
    // Files created later are filtered the same way.
    append_lines(&logs.join("debug-late.log"), "debug-late", 0..5);
    ids.extend(append_lines(&logs.join("late.log"), "late", 0..5));
    assert_exactly_once(
        &counts,
        &ids.iter()
            .filter(|id| !id.starts_with("late"))
            .cloned()
            .collect(),
    );
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    let hits = serve.search_all("");
    assert!(hits.iter().all(|h| h["service"] == "configured"));
    serve.stop();
}

#[test]
fn a_thousand_files() {
    let ws = workspace();
    let logs = ws.logs();
    let mut ids = BTreeSet::new();
    for f in 0..500 {
        ids.extend(append_lines(
            &logs.join(format!("f{f:04}.log")),
            &format!("f{f}"),
            0..3,
        ));
    }
    let serve = serve_cmd(&ws, &logs.join("*.log")).start();
    // Half found at start, half appearing while running.
    for f in 500..1000 {
        ids.extend(append_lines(
            &logs.join(format!("f{f:04}.log")),
            &format!("f{f}"),
            0..3,
        ));
    }
    assert_exactly_once(&serve.wait_for_ids(&ids, Duration::from_secs(90)), &ids);
    serve.stop();
    assert_eq!(committed_checkpoints(&ws.index()).len(), 1000);
}

#[test]
fn a_line_that_fails_to_decode_is_indexed_raw_and_not_read_again() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.jsonl");
    let cmd = serve_cmd(&ws, &logs.join("*.jsonl"));
    let mut ids = append_lines(&log, "ok", 0..3);
    append(&log)
        .write_all(format!("{{\"message\": \"{ID_OPEN}bad{ID_CLOSE}\", broken\n").as_bytes())
        .unwrap();
    ids.insert("bad".into());
    ids.extend(append_lines(&log, "ok", 3..6));
    let serve = cmd.start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    let hits = serve.search_all("");
    let bad = hits_with_id(&hits, "bad");
    assert!(
        bad[0]["problems"].to_string().contains("parse_error"),
        "{}",
        bad[0]
    );
    serve.stop();
    let serve = cmd.start();
    ids.extend(append_lines(&log, "ok", 6..8));
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    serve.stop();
}

#[test]
fn graceful_shutdown_commits_what_was_read() {
    let ws = workspace();
    let logs = ws.logs();
    let log = logs.join("app.log");
    // Commits far apart: only the shutdown's own commit can make these lines durable.
    let config = FAST_CONFIG.replace("commit_interval = \"100ms\"", "commit_interval = \"1h\"");
    let cmd = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .arg("--config")
        .arg(ws.config(&config))
        .source(&logs.join("*.log"));
    let serve = cmd.start();
    let ids = append_lines(&log, "a", 0..200);
    std::thread::sleep(Duration::from_millis(800));
    assert!(serve.search_all("").is_empty(), "not committed yet");
    let stderr = serve.stop();
    assert!(stderr.contains("200 records in the index"), "{stderr}");
    // Restarted, everything is there at once (a re-read would wait an hour for its commit).
    let serve = cmd.start();
    assert_exactly_once(&id_counts(&serve.search_all("")), &ids);
    serve.stop();
}

#[test]
fn serve_needs_no_config_file_and_reports_config_errors_by_line_and_key() {
    let ws = workspace();
    let logs = ws.logs();
    let ids = append_lines(&logs.join("app.log"), "a", 0..5);
    // No --config, and no ./threadline.toml in the working directory.
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .source(&logs.join("*.log"))
        .start();
    assert_exactly_once(&serve.wait_for_ids(&ids, WAIT), &ids);
    let (status, health) = get_json(&format!("{}/healthz", serve.url), &[]).unwrap();
    assert_eq!(status, 200, "{health}");
    serve.stop();

    let bad = ws.config("[index]\ncommit_interval = \"1s\"\n\n[tail]\nsweep_intervall = \"1s\"\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_threadline"))
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config.toml:5: `tail.sweep_intervall`: unknown field"),
        "{stderr}"
    );
}

/// Peak memory while tailing a 2 GB file that is written as fast as possible: memory is
/// bounded by the channels and the writer's budget, not by the file.
/// `cargo test --release -p cli --test serve_e2e -- --ignored two_gigabyte --nocapture`
#[test]
#[ignore = "writes and indexes 2 GB: run in release, by hand"]
fn two_gigabyte_file_keeps_memory_bounded() {
    // `BIG_FILE_MB` to compare sizes: the peak should not grow with the file.
    let target_bytes: u64 = std::env::var("BIG_FILE_MB")
        .ok()
        .and_then(|mb| mb.parse::<u64>().ok())
        .unwrap_or(2048)
        << 20;
    let ws = workspace();
    let log = ws.logs().join("big.jsonl");
    std::fs::write(&log, b"").unwrap();
    // The defaults, as a user runs it (or `BIG_FILE_CONFIG=FILE` to compare settings).
    let mut cmd = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .source(&ws.logs().join("*.jsonl"));
    if let Some(config) = std::env::var_os("BIG_FILE_CONFIG") {
        cmd = cmd.arg("--config").arg(config);
    }
    let serve = cmd.start();
    let started = Instant::now();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut file = std::io::BufWriter::with_capacity(1 << 20, append(&log));
            let (mut bytes, mut lines) = (0u64, 0u64);
            while bytes < target_bytes {
                let line = format!(
                    "{{\"timestamp\":\"2026-11-20T14:{:02}:{:02}.{:06}Z\",\"level\":\"info\",\"service\":\"big\",\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\",\"message\":\"request {lines} handled\",\"http.status_code\":200,\"user.id\":\"usr_{}\",\"pad\":\"{}\"}}\n",
                    (lines / 60_000_000) % 60,
                    (lines / 1_000_000) % 60,
                    lines % 1_000_000,
                    u128::from(lines) * 0x9e37_79b9 + 1,
                    lines * 31 + 1,
                    lines % 5000,
                    "x".repeat((lines % 64) as usize),
                );
                file.write_all(line.as_bytes()).unwrap();
                bytes += line.len() as u64;
                lines += 1;
            }
            file.flush().unwrap();
            (bytes, lines)
        })
    };
    let (mut peak_kib, mut peak_anon_kib) = (0, 0);
    let mut sample = |serve: &Serve| {
        peak_kib = peak_kib.max(serve.peak_rss_kib().unwrap_or(0));
        peak_anon_kib = peak_anon_kib.max(serve.rss_anon_kib().unwrap_or(0));
    };
    while !writer.is_finished() {
        sample(&serve);
        std::thread::sleep(Duration::from_millis(200));
    }
    let (bytes, lines) = writer.join().unwrap();
    let write_s = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        sample(&serve);
        let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
        let indexed = metrics
            .lines()
            .find_map(|l| l.strip_prefix("threadline_index_records_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if indexed >= lines || Instant::now() > deadline {
            assert_eq!(indexed, lines, "every line indexed");
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let total_s = started.elapsed().as_secs_f64();
    serve.stop();
    eprintln!(
        "big file: {lines} lines, {:.2} GB written in {write_s:.0}s, all indexed after {total_s:.0}s ({:.1} MB/s); serve's peak RSS {:.0} MiB (VmHWM, mapped index files included), peak anonymous RSS {:.0} MiB (sampled)",
        bytes as f64 / 1e9,
        bytes as f64 / 1e6 / total_s,
        peak_kib as f64 / 1024.0,
        peak_anon_kib as f64 / 1024.0
    );
    assert!(peak_kib < 1 << 20, "peak RSS {peak_kib} KiB: not bounded");
}

#[test]
fn demo_serves_live_simulated_traffic_until_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let ws = workspace();
    let data = ws.path("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_threadline"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--traces",
            "400",
            "--rate",
            "20",
        ])
        .arg("--data")
        .arg(&data)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let (mut url, mut trace_id, mut output) = (None, None, String::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while (url.is_none() || trace_id.is_none() || !output.contains("Ctrl-C stops."))
        && Instant::now() < deadline
    {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        output.push_str(&line);
        output.push('\n');
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.trim().to_owned());
        }
        if let Some((_, id)) = line.split_once("/api/v1/traces/") {
            trace_id = Some(id.trim().to_owned());
        }
    }
    let (Some(url), Some(trace_id)) = (url, trace_id) else {
        let _ = child.kill();
        panic!("the demo printed no URL or trace:\n{output}");
    };
    assert!(output.contains("curl -sG"), "{output}");
    // The demo's own hints, not also serve's generic ones.
    assert_eq!(
        output.matches("in a browser, or try:").count(),
        1,
        "{output}"
    );
    let (status, trace) = get_json(&format!("{url}/api/v1/traces/{trace_id}"), &[]).unwrap();
    assert_eq!(status, 200, "{trace}");
    assert!(!trace["spans"].as_array().unwrap().is_empty());
    // Live traffic keeps arriving: records newer than the start show up.
    let live = || search_all(&url, "timestamp > now() - 3s").len();
    // Live lines are appended after the history, which a loaded machine takes a while to read.
    let deadline = Instant::now() + Duration::from_secs(90);
    while live() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(live() > 0, "no live records");
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(data.join(".threadline-demo").exists());
    // The ground truth lies beside the traffic folder, so indexing that folder indexes
    // traffic only.
    assert!(data.join("ground_truth.json").exists());
    assert!(!data.join("traffic").join("ground_truth.json").exists());
}

/// At its own rate the demo's live traffic continues its history without a gap: the minutes
/// between the history's last request and the start are there at once.
#[test]
fn demo_live_traffic_continues_the_history_without_a_gap() {
    let ws = workspace();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_threadline"));
    command
        .args(["demo", "--listen", "127.0.0.1:0", "--traces", "1800"])
        .arg("--data")
        .arg(ws.path("demo"));
    let serve = Serve::spawn(command);
    // The history's arrivals end three minutes before the start.
    let q = "kind = span AND timestamp > now() - 170s AND timestamp < now() - 60s";
    // The server reads the history first (longer on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut found = search_all(&serve.url, q).len();
    while found == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        found = search_all(&serve.url, q).len();
    }
    // 110 s at 0.5 requests/s, several spans each.
    assert!(found > 50, "{found} spans in the minutes before the start");
    serve.stop();
}

#[test]
fn more_files_than_the_open_file_limit_are_all_tailed() {
    let ws = workspace();
    let logs = ws.logs();
    let mut expected = BTreeSet::new();
    for i in 0..1200 {
        expected.extend(append_lines(
            &logs.join(format!("f{i:04}.log")),
            &format!("f{i}"),
            0..1,
        ));
    }
    // 1,200 files under `ulimit -n 1024`: the tailer holds at most `max_open_files` (256).
    let serve = serve_cmd(&ws, &logs.join("*.log")).nofile(1024).start();
    let counts = serve.wait_for_ids(&expected, Duration::from_secs(90));
    assert_exactly_once(&counts, &expected);
    // Files closed while idle are reopened where they stood when they grow.
    let more = set([
        append_lines(&logs.join("f0000.log"), "more0", 0..2),
        append_lines(&logs.join("f1199.log"), "more1199", 0..2),
    ]);
    expected.extend(more);
    assert_exactly_once(&serve.wait_for_ids(&expected, WAIT), &expected);
    serve.stop();
}

#[test]
fn a_5_mib_otlp_json_line_keeps_every_span_when_tailed_and_when_ingested() {
    let ws = workspace();
    let ids: Vec<String> = (0..1000).map(|i| format!("span-{i}")).collect();
    let big = otlp_traces_line(&ids, 5 << 10);
    assert!(big.len() > 5 << 20, "{}", big.len());
    let mut expected: BTreeSet<String> = ids.iter().cloned().collect();
    expected.extend(["before".to_owned(), "after".to_owned()]);
    let text = format!("{}{big}{}", line("before"), line("after"));

    let tailed = ws.logs().join("otel.jsonl");
    std::fs::write(&tailed, &text).unwrap();
    let serve = serve_cmd(&ws, &ws.logs().join("*.jsonl")).start();
    assert_exactly_once(&serve.wait_for_ids(&expected, WAIT), &expected);
    serve.stop();

    // `ingest`: the same file into another index, then served (with nothing to tail).
    let index = ws.path("ingested");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_threadline"))
        .arg("--index")
        .arg(&index)
        .args(["ingest", "--json"])
        .arg(&tailed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["spans"], 1000, "{summary}");
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), &index).start();
    assert_exactly_once(&serve.wait_for_ids(&expected, WAIT), &expected);
    serve.stop();
}

#[test]
fn ingest_skips_the_nul_hole_of_a_copytruncate_and_indexes_the_lines() {
    let ws = workspace();
    let log = ws.logs().join("app.log");
    // What a writer without O_APPEND leaves after a copytruncate: zeros where the old data
    // was, then its new lines; a second hole later, after a partial rotation.
    let mut bytes = vec![0u8; 20_000];
    let mut expected = BTreeSet::new();
    for i in 0..5 {
        bytes.extend_from_slice(line(&format!("h-{i}")).as_bytes());
        expected.insert(format!("h-{i}"));
    }
    bytes.extend(std::iter::repeat_n(0u8, 3000));
    bytes.extend_from_slice(line("h-5").as_bytes());
    expected.insert("h-5".to_owned());
    std::fs::write(&log, &bytes).unwrap();
    let index = ws.path("ingested");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_threadline"))
        .arg("--index")
        .arg(&index)
        .args(["ingest", "--json"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["files"].as_u64(), summary["logs"].as_u64()),
        (Some(1), Some(6)),
        "{summary}"
    );
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), &index).start();
    let counts = serve.wait_for_ids(&expected, WAIT);
    assert_exactly_once(&counts, &expected);
    assert!(
        serve
            .search_all("")
            .iter()
            .all(|hit| !hit.to_string().contains("\\u0000")),
        "no record holds a NUL"
    );
    serve.stop();
}
