//! Safe to leave running, through the real binary: one writer per index (a second `serve`,
//! `ingest` or `demo` refuses before it touches anything), an index that cannot be read is
//! refused rather than wiped, `check` names damaged files, and a full disk pauses indexing —
//! queries answering, OTLP told to retry — until space is freed, then every line is indexed
//! exactly once.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_threadline"))
}

fn workspace() -> Workspace {
    Workspace::new(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("safety"))
}

fn serve_cmd(ws: &Workspace, index: &Path) -> ServeCommand {
    ServeCommand::new(bin(), index)
        .arg("--config")
        .arg(ws.config(FAST_CONFIG))
        .source(&ws.logs().join("*.log"))
}

/// Runs `threadline ARGS...` to completion.
fn threadline(args: &[&dyn AsRef<OsStr>]) -> std::process::Output {
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    run_threadline(bin(), &args, Duration::from_secs(60))
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// An index of 50 lines made by `ingest`.
fn ingested(ws: &Workspace, name: &str) -> PathBuf {
    let log = ws.logs().join(format!("{name}.log"));
    append_lines(&log, name, 0..50);
    let index = ws.path(&format!("{name}-index"));
    let out = threadline(&[&"--index", &index, &"ingest", &log]);
    assert!(out.status.success(), "ingest failed: {}", stderr_of(&out));
    index
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// POSTs an OTLP/JSON traces request: the status, the `Retry-After` header and the body.
fn post_otlp(url: &str) -> (u16, Option<String>, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "GET /cart", "startTimeUnixNano": (now - 5_000_000).to_string(),
            "endTimeUnixNano": now.to_string()
        }]}]
    }]});
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
        .post(format!("{url}/v1/traces"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.text().unwrap())
}

#[test]
fn a_second_serve_or_ingest_is_refused_before_it_touches_the_index_or_binds_a_port() {
    let ws = workspace();
    let index = ws.index();
    let expected = append_lines(&ws.logs().join("app.log"), "a", 0..20);
    let first = serve_cmd(&ws, &index).start();
    assert_exactly_once(&first.wait_for_ids(&expected, WAIT), &expected);
    let holder = format!(
        "another threadline process (pid {}) is writing {}",
        first.pid(),
        std::path::absolute(&index).unwrap().display()
    );

    let port = free_port().to_string();
    let second = threadline(&[
        &"--index",
        &index,
        &"serve",
        &"--listen",
        &format!("127.0.0.1:{port}"),
        &"--source",
        &ws.logs().join("*.log"),
    ]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr_of(&second));
    assert_eq!(stderr_of(&second), format!("error: {holder}\n"));

    let other = ws.logs().join("other.txt");
    std::fs::write(&other, line("not-indexed")).unwrap();
    let ingest = threadline(&[&"--index", &index, &"ingest", &other]);
    assert_eq!(ingest.status.code(), Some(2), "{}", stderr_of(&ingest));
    assert!(
        stderr_of(&ingest).contains(&holder),
        "{}",
        stderr_of(&ingest)
    );

    // The first one never noticed.
    assert_exactly_once(&first.wait_for_ids(&expected, WAIT), &expected);
    first.stop();
}

#[test]
fn a_second_demo_leaves_the_running_one_and_its_data_alone() {
    let ws = workspace();
    let data = ws.path("demo");
    let listen = format!("127.0.0.1:{}", free_port());
    let demo = |listen: &str| {
        let mut command = Command::new(bin());
        command
            .arg("demo")
            .arg("--data")
            .arg(&data)
            .args(["--traces", "20", "--rate", "2", "--listen", listen]);
        command
    };
    let first = Serve::spawn(demo(&listen));
    let total = |url: &str| {
        let (status, page) = get_json(&format!("{url}/api/v1/search"), &[("q", "")]).unwrap();
        assert_eq!(status, 200, "{page}");
        page["total"].as_u64().unwrap()
    };
    wait_until("the demo history is indexed", WAIT, || {
        (total(&first.url) > 50).then_some(())
    });

    // Same port: refused before anything is deleted.
    let same_port = threadline(&[
        &"demo",
        &"--data",
        &data,
        &"--traces",
        &"5",
        &"--listen",
        &listen,
    ]);
    assert_eq!(
        same_port.status.code(),
        Some(2),
        "{}",
        stderr_of(&same_port)
    );
    assert!(
        stderr_of(&same_port).contains(&format!("cannot listen on {listen}")),
        "{}",
        stderr_of(&same_port)
    );
    // Another port, same data: the index lock refuses it.
    let other_port = format!("127.0.0.1:{}", free_port());
    let same_data = threadline(&[
        &"demo",
        &"--data",
        &data,
        &"--traces",
        &"5",
        &"--listen",
        &other_port,
    ]);
    assert_eq!(
        same_data.status.code(),
        Some(2),
        "{}",
        stderr_of(&same_data)
    );
    assert!(
        stderr_of(&same_data).contains(&format!(
            "another threadline process (pid {}) is writing",
            first.pid()
        )),
        "{}",
        stderr_of(&same_data)
    );

    // The first demo and its data are untouched and it keeps indexing.
    assert!(data.join("traffic").is_dir());
    let now = names(&data.join("index"));
    assert!(now.contains(&"meta.json".to_owned()), "{now:?}");
    let before = total(&first.url);
    wait_until("the first demo indexes more live traffic", WAIT, || {
        (total(&first.url) > before).then_some(())
    });
    first.stop();
}

#[test]
fn an_index_without_meta_json_is_refused_not_wiped_and_check_names_damaged_files() {
    let ws = workspace();
    let index = ingested(&ws, "meta");
    let ok = threadline(&[&"--index", &index, &"check", &"--json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr_of(&ok));
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["docs"], 50, "{report}");

    // One flipped byte in a doc store: check names the file and exits 2.
    let store = files_with_ext(&index, "store").remove(0);
    let mut bytes = std::fs::read(&store).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&store, &bytes).unwrap();
    let damaged = threadline(&[&"--index", &index, &"check"]);
    assert_eq!(damaged.status.code(), Some(2), "{}", stderr_of(&damaged));
    assert!(
        stderr_of(&damaged).contains(&format!("file {}: checksum mismatch", store.display())),
        "{}",
        stderr_of(&damaged)
    );

    // meta.json gone: serve refuses, and deletes nothing.
    let index = ingested(&ws, "nometa");
    std::fs::remove_file(index.join("meta.json")).unwrap();
    let before = names(&index);
    let serve = threadline(&[&"--index", &index, &"serve", &"--listen", &"127.0.0.1:0"]);
    assert_eq!(serve.status.code(), Some(2), "{}", stderr_of(&serve));
    let message = stderr_of(&serve);
    assert!(message.contains("but no meta.json"), "{message}");
    assert!(
        message.contains("refusing to start an empty index"),
        "{message}"
    );
    assert!(!message.contains("listening on"), "{message}");
    assert_eq!(names(&index), before, "nothing was deleted");
    for command in [&["search", ""][..], &["check"][..]] {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"--index", &index];
        args.extend(command.iter().map(|a| a as &dyn AsRef<OsStr>));
        let out = threadline(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command:?}: {}",
            stderr_of(&out)
        );
        assert!(
            stderr_of(&out).contains("but no meta.json"),
            "{}",
            stderr_of(&out)
        );
    }
    assert_eq!(names(&index), before, "nothing was deleted");
}

/// An index written by an earlier version (here: `trace_id` with the inverted index it had
/// before it became a column only) is refused by every command with one message saying how to
/// rebuild it — not called damaged — and left as it is.
#[test]
fn an_index_of_an_earlier_version_is_refused_with_the_rebuild_command() {
    let ws = workspace();
    let index = ingested(&ws, "older");
    let meta_path = index.join("meta.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let trace_id = meta["schema"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|field| field["name"] == "trace_id")
        .unwrap();
    trace_id["options"]["indexing"] =
        serde_json::json!({"record": "basic", "fieldnorms": false, "tokenizer": "raw"});
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let before = std::fs::read(&meta_path).unwrap();
    let files = names(&index);

    for command in [
        &["search", ""][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["ingest", "/dev/null"][..],
        &["check"][..],
    ] {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"--index", &index];
        args.extend(command.iter().map(|a| a as &dyn AsRef<OsStr>));
        let out = threadline(&args);
        let message = stderr_of(&out);
        assert!(!out.status.success(), "{command:?}: {message}");
        assert!(
            message.contains("field \"trace_id\" differs from this version's schema"),
            "{command:?}: {message}"
        );
        assert_eq!(
            message.matches("threadline ingest PATH...").count(),
            1,
            "{command:?}: {message}"
        );
        assert!(!message.contains("damaged"), "{command:?}: {message}");
    }
    assert_eq!(std::fs::read(&meta_path).unwrap(), before, "meta.json kept");
    assert_eq!(names(&index), files, "nothing was deleted");
}

#[test]
fn a_missing_or_cut_segment_file_is_a_clear_error_at_start_not_a_panic() {
    let ws = workspace();
    for (name, damage) in [("missing", "remove"), ("cut", "truncate")] {
        let index = ingested(&ws, name);
        let postings = files_with_ext(&index, "idx").remove(0);
        if damage == "remove" {
            std::fs::remove_file(&postings).unwrap();
        } else {
            let len = std::fs::metadata(&postings).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&postings)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }
        let file = postings.file_name().unwrap().to_string_lossy().into_owned();
        let serve = threadline(&[&"--index", &index, &"serve", &"--listen", &"127.0.0.1:0"]);
        let message = stderr_of(&serve);
        assert_eq!(serve.status.code(), Some(2), "{damage}: {message}");
        assert!(message.contains("is damaged"), "{damage}: {message}");
        assert!(message.contains("threadline check"), "{damage}: {message}");
        assert!(!message.contains("panicked"), "{damage}: {message}");
        let search = threadline(&[&"--index", &index, &"search", &""]);
        assert_eq!(
            search.status.code(),
            Some(2),
            "{damage}: {}",
            stderr_of(&search)
        );
        let check = threadline(&[&"--index", &index, &"check"]);
        assert_eq!(
            check.status.code(),
            Some(2),
            "{damage}: {}",
            stderr_of(&check)
        );
        assert!(
            stderr_of(&check).contains(&file),
            "{damage}: {}",
            stderr_of(&check)
        );
    }
}

#[test]
fn a_full_disk_pauses_indexing_keeps_queries_answering_and_resumes_once_space_is_freed() {
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        return;
    };
    let ws = workspace();
    let log = ws.logs().join("app.log");
    let mut expected = append_lines(&log, "a", 0..200);
    let mut serve = serve_cmd(&ws, &tmpfs.path().join("index")).start();
    assert_exactly_once(&serve.wait_for_ids(&expected, WAIT), &expected);
    let readyz = format!("{}/readyz", serve.url);
    assert_eq!(get_json(&readyz, &[]).unwrap().0, 200);

    let filler = tmpfs.path().join("filler");
    tmpfs.fill(&filler);
    expected.extend(append_lines(&log, "b", 0..3_000));
    let paused = wait_until("/readyz reports the pause", WAIT, || {
        let (status, body) = get_json(&readyz, &[]).unwrap();
        (status == 503).then_some(body)
    });
    let message = paused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("No space left on device (os error 28)"),
        "names the cause: {message}"
    );
    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    assert!(metrics.contains("\nthreadline_writer_up 0\n"), "{metrics}");
    assert!(
        !metrics.contains("\nthreadline_writer_pauses_total 0\n"),
        "{metrics}"
    );
    // OTLP is told to retry, with the cause.
    let (status, retry_after, body) = post_otlp(&serve.url);
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "a Retry-After header");
    assert!(body.contains("No space left on device"), "{body}");
    // Queries answer from the last commit; the server is still up.
    let hits = serve.search_all("");
    let a_ids: Vec<_> = hits.iter().flat_map(ids_in).collect();
    assert_eq!(a_ids.len(), 200, "what was committed stays searchable");
    std::thread::sleep(Duration::from_secs(2));
    assert!(serve.is_running(), "a full disk does not stop the server");
    assert_eq!(
        get_json(&readyz, &[]).unwrap().0,
        503,
        "still full, still paused"
    );

    std::fs::remove_file(&filler).unwrap();
    wait_until("indexing resumes", WAIT, || {
        (get_json(&readyz, &[]).unwrap().0 == 200).then_some(())
    });
    expected.extend(append_lines(&log, "c", 0..100));
    assert_exactly_once(&serve.wait_for_ids(&expected, WAIT), &expected);
    let (status, _, body) = post_otlp(&serve.url);
    assert_eq!(status, 200, "{body}");
    let metrics = get_text(&format!("{}/metrics", serve.url)).unwrap();
    assert!(metrics.contains("\nthreadline_writer_up 1\n"), "{metrics}");
    serve.stop();
}
