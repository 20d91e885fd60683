//! The OpenTelemetry Python SDK's OTLP/gRPC exporters (`opentelemetry-exporter-otlp-proto-grpc`,
//! grpcio underneath) against the real `threadline serve --otlp-grpc-listen`: the spans and the
//! log of `tests/python/export_otlp_grpc.py` are read back through `/api/v1/traces/{id}` as soon
//! as the script's flush returns.
//!
//! The SDK is installed from PyPI into a virtualenv under `CARGO_TARGET_TMPDIR`, one per
//! [`REQUIREMENTS`] (kept between runs). Without `python3`, its `venv` module or PyPI, the test
//! prints `SKIP` and why, and passes: CI (`.ci/run`) installs `python3-venv` so that it runs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// What the virtualenv holds; its folder is named after this, so a change makes a new one.
const REQUIREMENTS: &[&str] = &[
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
];
const TOKEN: &str = "grpc-python";
const TRACE_ID: &str = "7079746801b0a11c8e0000000000c0de";

/// The virtualenv's `python`, created and filled on first use; `None` (with `SKIP` printed)
/// when Python, its venv module or PyPI is not available here.
fn python_with_the_sdk() -> Option<PathBuf> {
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let name: String = format!("venv-{}", REQUIREMENTS.join("-"))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("python")
        .join(name);
    let venv_python = venv.join("bin").join("python");
    // Written last: a venv without it was cut short and is made again.
    let ready = venv.join(".threadline-ready");
    if ready.exists() {
        return Some(venv_python);
    }
    let skip = |why: String| {
        eprintln!("SKIP otlp_grpc_python: {why}");
        None
    };
    match Command::new(&python).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => return skip(format!("{python:?} --version failed: {out:?}")),
        Err(e) => return skip(format!("no {python:?} here ({e})")),
    }
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let out = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    if !out.status.success() {
        return skip(format!(
            "cannot make a virtualenv (on Debian: apt-get install python3-venv): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let started = Instant::now();
    let out = Command::new(&venv_python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(REQUIREMENTS)
        .output()
        .unwrap();
    if !out.status.success() {
        return skip(format!(
            "cannot install {} from PyPI: {}",
            REQUIREMENTS.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    eprintln!(
        "installed {} in {:.0} s into {}",
        REQUIREMENTS.join(" "),
        started.elapsed().as_secs_f64(),
        venv.display()
    );
    std::fs::write(&ready, REQUIREMENTS.join("\n")).unwrap();
    Some(venv_python)
}

#[test]
fn the_python_sdk_grpc_exporter_is_read_back_as_soon_as_its_flush_returns() {
    let Some(python) = python_with_the_sdk() else {
        return;
    };
    let ws = Workspace::new(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("otlp_grpc_python"));
    let config = format!("{FAST_CONFIG}\n[server]\ningest_token = \"{TOKEN}\"\n");
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
        .arg("--config")
        .arg(ws.config(&config))
        .arg("--otlp-grpc-listen")
        .arg("127.0.0.1:0")
        .start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/export_otlp_grpc.py");
    let endpoint = serve.grpc_endpoint();
    let out = run_with_timeout(
        Command::new(&python)
            .arg(&script)
            .args([endpoint.as_str(), TOKEN, TRACE_ID]),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("exported"),
        "the script failed ({}):\n{stderr}\nserver:\n{}",
        out.status,
        serve.stderr()
    );
    assert!(
        !stderr.contains("Failed to export"),
        "the exporter reported a failure:\n{stderr}"
    );

    // Acked means committed: readable at once, no polling.
    let (status, trace) = get_json(&format!("{}/api/v1/traces/{TRACE_ID}", serve.url), &[])
        .unwrap_or_else(|e| panic!("GET the trace: {e}"));
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{trace}");
    assert_eq!(spans[0]["name"], "POST /checkout");
    assert_eq!(spans[0]["service"], "checkout-python");
    assert_eq!(spans[0]["resource"]["telemetry.sdk.language"], "python");
    assert_eq!(spans[1]["name"], "stripe_api_call");
    assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
    assert_eq!(spans[1]["attributes"]["decline_code"], "do_not_honor");
    let logs = trace["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{trace}");
    assert_eq!(logs[0]["body"], "card declined by issuer");
    assert_eq!(logs[0]["level"], "error");
    assert_eq!(logs[0]["span_id"], spans[1]["span_id"]);
    assert_eq!(logs[0]["origin"]["source"], "otlp/grpc");
    serve.stop();
}

/// Runs `command` to completion, killed after `timeout`.
fn run_with_timeout(command: &mut Command, timeout: Duration) -> std::process::Output {
    let child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout).is_err() {
            signal(pid, "KILL");
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    out
}
