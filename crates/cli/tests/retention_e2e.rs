//! Retention in `threadline serve`: with `[retention] max_age`, records stamped older than that
//! leave every view while the server runs; fresh ones stay, exactly.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::KillOnDrop;

fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .unwrap()
        .to_string()
}

fn total(url: &str, q: &str) -> u64 {
    let body = reqwest::blocking::Client::new()
        .get(format!("{url}/api/v1/search"))
        .query(&[("q", q), ("limit", "1")])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let reply: Value = serde_json::from_str(&body).unwrap();
    reply["total"].as_u64().unwrap_or_else(|| panic!("{reply}"))
}

#[test]
fn serve_deletes_records_older_than_max_age_and_keeps_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    let day = 86_400 * 1_000_000_000i64;
    let mut text = String::new();
    for i in 0..40 {
        let (age, tag) = if i % 2 == 0 {
            (10 * day, "old")
        } else {
            (60 * 1_000_000_000, "fresh")
        };
        text.push_str(&format!(
            "{{\"time\":\"{}\",\"level\":\"info\",\"message\":\"{tag} line {i}\",\"tag\":\"{tag}\"}}\n",
            rfc3339(now - age + i64::from(i))
        ));
    }
    std::fs::write(dir.path().join("app.log"), text).unwrap();
    let config = dir.path().join("threadline.toml");
    std::fs::write(
        &config,
        "[retention]\nmax_age = \"7d\"\ncheck_interval = \"300ms\"\n",
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_threadline"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--index")
            .arg(dir.path().join("index"))
            .args(["--listen", "127.0.0.1:0", "--source"])
            .arg(dir.path().join("*.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut banner = String::new();
    let url = loop {
        let line = lines.next().expect("serve exited").unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        banner.contains("retention: records older than 7d"),
        "{banner}"
    );

    // The tailer reads all 40 lines; the retention check removes the 20 old ones.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (old, fresh) = (total(&url, "tag = old"), total(&url, "tag = fresh"));
        if old == 0 && fresh == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "old {old}, fresh {fresh}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // And they stay that way: the fresh ones are never deleted, the old ones never re-read.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(total(&url, "tag = old"), 0);
    assert_eq!(total(&url, "tag = fresh"), 20);
    assert_eq!(total(&url, ""), 20);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
