//! A damaged index is refused with a clear error, never wiped and never a panic: a missing
//! `meta.json` beside segment files, a missing or cut-short segment file, a flipped byte; and
//! one process at a time holds the index lock.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use index::{Batch, Error, Index, IndexLock, Writer, WriterConfig};

/// An index of 300 records in two segments, closed.
fn committed_index() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_or_create(dir.path()).unwrap();
    let writer = Writer::start(&index, WriterConfig::default()).unwrap();
    for part in 0..2i64 {
        let records = (0..150)
            .map(|i| {
                log(None, None, "api", &format!("line {part} {i}"))
                    .at(T0 + i)
                    .build()
            })
            .collect();
        writer
            .blocking_send(Batch::new(
                records,
                vec![("file:a".into(), serde_json::json!(part))],
            ))
            .unwrap();
        writer.blocking_flush().unwrap();
    }
    writer.shutdown().unwrap();
    dir
}

/// The index's files with this extension.
fn segment_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn segments_without_meta_json_are_refused_not_wiped() {
    let dir = committed_index();
    std::fs::remove_file(dir.path().join("meta.json")).unwrap();
    let before = file_names(dir.path());
    let err = Index::open_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, Error::MissingMeta { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no meta.json"), "{message}");
    assert!(
        message.contains(".managed.json"),
        "names what it found: {message}"
    );
    assert!(matches!(
        Index::open(dir.path()),
        Err(Error::MissingMeta { .. })
    ));
    assert!(matches!(
        index::check(dir.path()),
        Err(Error::MissingMeta { .. })
    ));
    assert_eq!(file_names(dir.path()), before, "nothing was touched");

    // Only `.managed.json` left is refused too; an empty directory is a new index.
    for file in segment_files(dir.path(), "idx") {
        std::fs::remove_file(file).unwrap();
    }
    assert!(matches!(
        Index::open_or_create(dir.path()),
        Err(Error::MissingMeta { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Index::open(empty.path()),
        Err(Error::NoIndex { .. })
    ));
    assert_eq!(Index::open_or_create(empty.path()).unwrap().num_docs(), 0);
}

#[test]
fn check_passes_a_healthy_index_and_names_a_damaged_file() {
    let dir = committed_index();
    let report = index::check(dir.path()).unwrap();
    assert_eq!(report.docs, 300);
    assert!(report.segments >= 1);
    assert!(report.files >= 5 * report.segments, "{report:?}");
    assert!(report.damaged.is_empty(), "{report:?}");

    // One flipped byte in the middle of a doc store.
    let store = segment_files(dir.path(), "store").remove(0);
    let mut bytes = std::fs::read(&store).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&store, &bytes).unwrap();
    let report = index::check(dir.path()).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let damaged = &report.damaged[0];
    assert_eq!(damaged.file, Path::new(store.file_name().unwrap()));
    assert!(damaged.problem.contains("checksum"), "{damaged:?}");
    assert!(store.to_string_lossy().contains(&damaged.segment));
}

#[test]
fn a_missing_segment_file_is_a_clear_error_at_open() {
    let dir = committed_index();
    let postings = segment_files(dir.path(), "idx").remove(0);
    std::fs::remove_file(&postings).unwrap();
    let err = Index::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }), "{err:?}");
    let name = postings.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.to_string().contains(&name), "names the file: {err}");
    let report = index::check(dir.path()).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].file, Path::new(&name));
    assert_eq!(report.damaged[0].problem, "missing");
}

#[test]
fn a_cut_short_segment_file_is_a_clear_error_at_open() {
    for ext in ["idx", "term", "fast", "store", "fieldnorm", "pos"] {
        let dir = committed_index();
        let file = segment_files(dir.path(), ext).remove(0);
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let opened = std::panic::catch_unwind(|| Index::open(dir.path()).map(|i| i.num_docs()));
        let opened = opened.unwrap_or_else(|_| panic!("opening with a cut {ext} file panicked"));
        assert!(opened.is_err(), "a .{ext} cut in half opened: {opened:?}");
        let report = index::check(dir.path()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            report.damaged.iter().any(|d| d.file == Path::new(&name)),
            "check names the cut .{ext} file: {report:?}"
        );
    }
}

#[test]
fn the_index_lock_is_held_by_one_owner_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("index");
    let first = IndexLock::acquire(&index_dir).unwrap();
    let err = IndexLock::acquire(&index_dir).unwrap_err();
    let message = err.to_string();
    assert_eq!(
        message,
        format!(
            "another threadline process (pid {}) is writing {}",
            std::process::id(),
            index_dir.display()
        )
    );
    drop(first);
    let again = IndexLock::acquire(&index_dir).unwrap();
    // The lock file is no index file: the index opens (empty) beside it.
    assert_eq!(Index::open_or_create(&index_dir).unwrap().num_docs(), 0);
    drop(again);
}
