//! The browser tests' harness: headless Chromium driven through chromedriver (launched here on
//! a free loopback port), a real `threadline serve` on a copy of an index built once from
//! simulated checkout traffic, screenshots as test artifacts, and the browser's own log read
//! back so any console error or CSP violation fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{FAST_CONFIG, Serve, ServeCommand, Workspace, free_port, get_json};

/// The widths every page is looked at: desktop, tablet, phone.
pub const WIDTHS: [u32; 3] = [1280, 768, 390];

/// A log body that runs script if it is ever parsed as HTML.
pub const XSS_BODY: &str = "<img src=x onerror=alert(1)>";
/// The trace the hostile log line belongs to.
pub const XSS_TRACE: &str = "5ec0de5ec0de5ec0de5ec0de5ec0de01";

/// Installed before any script of every page: records script errors, CSP violations and
/// alerts (an alert would mean injected markup ran) in `window.__tl`.
const PAGE_HOOK: &str = r#"
window.__tl = { errors: [], violations: [], alerts: [] };
window.addEventListener("error", (e) => window.__tl.errors.push(String(e.message || e.type)), true);
window.addEventListener("unhandledrejection", (e) => window.__tl.errors.push("rejection: " + String(e.reason)));
document.addEventListener("securitypolicyviolation", (e) => window.__tl.violations.push(e.violatedDirective + " " + e.blockedURI));
window.alert = (m) => window.__tl.alerts.push(String(m));
"#;

/// The chromedriver and Chromium binaries, or why the browser tests cannot run here.
pub fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |var: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(var) {
            return Some(PathBuf::from(path)).filter(|path| path.is_file());
        }
        let dirs = std::env::var_os("PATH").unwrap_or_default();
        names.iter().find_map(|name| {
            std::env::split_paths(&dirs)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    };
    let driver = find("THREADLINE_CHROMEDRIVER", &["chromedriver"]).ok_or(
        "no chromedriver (on PATH or at $THREADLINE_CHROMEDRIVER; apt-get install chromium-driver)",
    )?;
    let chromium = find(
        "THREADLINE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .ok_or("no chromium (on PATH or at $THREADLINE_CHROMIUM; apt-get install chromium)")?;
    Ok((driver, chromium))
}

/// Prints why a browser test does not run and says whether it should return early.
pub fn skip() -> bool {
    match browser_binaries() {
        Ok(_) => false,
        Err(why) => {
            eprintln!("SKIP browser test: {why}");
            true
        }
    }
}

/// Simulated checkout traffic of the last hour plus a hostile log line, indexed once; each
/// test serves its own copy.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub index: PathBuf,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir_in(tmp_root()).unwrap();
        let traffic = dir.path().join("traffic");
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let config = checkout_sim::SimConfig {
            seed: 11,
            traces: 240,
            traces_per_second: 240.0 / 3000.0,
            start_ns: now_ns - 3_300_000_000_000,
            ..checkout_sim::SimConfig::default()
        };
        checkout_sim::generate(&config, &traffic).unwrap();
        let hostile = dir.path().join("hostile.jsonl");
        let time = jiff::Timestamp::from_nanosecond(i128::from(now_ns) - 600_000_000_000)
            .unwrap()
            .to_string();
        let line = json!({"timestamp": time, "level": "error", "service": "attacker",
            "message": XSS_BODY, "trace_id": XSS_TRACE, "span_id": "5ec0de5ec0de0001"});
        std::fs::write(&hostile, format!("{line}\n")).unwrap();
        let index = dir.path().join("index");
        let out = Command::new(env!("CARGO_BIN_EXE_threadline"))
            .arg("--index")
            .arg(&index)
            .arg("ingest")
            .arg(traffic.join("spans"))
            .arg(traffic.join("logs"))
            .arg(&hostile)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ingest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Fixture { _dir: dir, index }
    })
}

fn tmp_root() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Where screenshots go: `target/tmp/browser/screenshots/<test>-<page>-<width>.png`.
pub fn screenshot_dir() -> PathBuf {
    let dir = tmp_root().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server on its own copy of the fixture index, tailing `live.jsonl` in its workspace.
pub struct Site {
    pub ws: Workspace,
    pub serve: Serve,
}

impl Site {
    pub fn start() -> Site {
        Site::start_with("")
    }

    /// A site whose config has `extra` after the fast test settings.
    pub fn start_with(extra: &str) -> Site {
        let ws = Workspace::new(&tmp_root());
        copy_dir(&fixture().index, &ws.index());
        let logs = ws.logs();
        std::fs::write(logs.join("live.jsonl"), "").unwrap();
        let config = ws.config(&format!("{FAST_CONFIG}\n{extra}"));
        let serve = ServeCommand::new(env!("CARGO_BIN_EXE_threadline"), ws.index())
            .arg("--config")
            .arg(&config)
            .source(&logs.join("*.jsonl"))
            .start();
        Site { ws, serve }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.serve.url)
    }

    /// `GET /api/v1/...` as JSON.
    pub fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        // A blocking client: off the runtime's async workers.
        let (status, body) =
            tokio::task::block_in_place(|| get_json(&self.url(path), query)).unwrap();
        assert_eq!(status, 200, "{path} {query:?}: {body}");
        body
    }

    /// Appends a line to the tailed file.
    pub fn append_live(&self, line: &Value) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.ws.logs().join("live.jsonl"))
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
}

/// Copies a folder tree (an index: a flat folder, but walked with a stack all the same).
fn copy_dir(from: &Path, to: &Path) {
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        std::fs::create_dir_all(&dst).unwrap();
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let target = dst.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push((entry.path(), target));
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}

/// A chromedriver process and one headless Chromium session in it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    test: String,
    /// `http://127.0.0.1:PORT/session/ID`, ended on drop if `close` was not reached.
    session_url: Option<String>,
    closed: bool,
    /// chromedriver's and Chromium's `TMPDIR` (their profile and scratch folders), removed
    /// after both have stopped: left in `/tmp` they piled up, ~18 folders a test run.
    _tmp: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session; `test` names the screenshots.
    pub async fn start(test: &str) -> Browser {
        let (driver_bin, chromium) = browser_binaries().unwrap();
        let port = free_port();
        let tmp = tempfile::tempdir_in(tmp_root()).unwrap();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver_bin.display()));
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-dev-shm-usage",
                         "--window-size=1280,900"],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot open a Chromium session through chromedriver: {e}"),
            }
        };
        let session_url = client
            .session_id()
            .await
            .ok()
            .flatten()
            .map(|id| format!("{url}/session/{id}"));
        let browser = Browser {
            client,
            driver,
            test: test.to_owned(),
            session_url,
            closed: false,
            _tmp: tmp,
        };
        browser
            .cdp(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({"source": PAGE_HOOK}),
            )
            .await;
        browser.viewport(1280).await;
        browser
    }

    /// A Chrome DevTools command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp(json!({"cmd": cmd, "params": params})))
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Sets the page's viewport to `width` CSS pixels (a phone's below 500), 900 high.
    pub async fn viewport(&self, width: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}),
        )
        .await;
        let inner = self.js("return window.innerWidth").await;
        assert_eq!(inner, json!(width), "the viewport did not change");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `css` matches an element, and returns it.
    pub async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no {css} within 30s: {e}\n{}", self.body_text().await),
        }
    }

    /// Waits until `script` returns true.
    pub async fn wait_js(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.js(script).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.body_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Navigates in-page to `hash` and waits until the view named `view` has rendered.
    pub async fn open(&self, base: &str, hash: &str, view: &str) {
        self.goto(&format!("{base}/{hash}")).await;
        self.wait_view(view).await;
    }

    /// Waits for the app to finish rendering a view named `view` (`main[data-view]`).
    pub async fn wait_view(&self, view: &str) {
        self.wait(&format!("main[data-view='{view}'][data-state='ready']"))
            .await;
    }

    pub async fn body_text(&self) -> String {
        match self
            .client
            .execute("return document.body.innerText", Vec::new())
            .await
        {
            Ok(Value::String(text)) => text.chars().take(3000).collect(),
            other => format!("{other:?}"),
        }
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn click(&self, css: &str) {
        self.wait(css).await.click().await.unwrap();
    }

    /// A screenshot at each width, `check` run at each; the viewport goes back to 1280 after.
    pub async fn at_each_width(&self, page: &str) {
        for width in WIDTHS {
            self.viewport(width).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            self.assert_fits(page, width).await;
            self.screenshot(&format!("{page}-{width}")).await;
        }
        self.viewport(1280).await;
    }

    /// No horizontal scrolling of the page, and no two ruler labels overlapping.
    pub async fn assert_fits(&self, page: &str, width: u32) {
        let overflow = self
            .js("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{page} at {width}px scrolls sideways by {overflow}px"
        );
        let overlaps = self
            .js(r#"
                const out = [];
                for (const ruler of document.querySelectorAll(".ruler")) {
                  const labels = [...ruler.querySelectorAll(".tick")].map((t) => [t.textContent, t.getBoundingClientRect()]);
                  for (let i = 1; i < labels.length; i++) {
                    if (labels[i][1].left < labels[i - 1][1].right + 2) out.push(labels[i - 1][0] + " | " + labels[i][0]);
                  }
                }
                return out;"#)
            .await;
        assert_eq!(
            overlaps,
            json!([]),
            "{page} at {width}px: ruler labels overlap"
        );
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{}-{name}.png", self.test));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    /// The console's errors since the last read.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .unwrap_or_else(|e| panic!("cannot read the browser log: {e}"));
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Fails on any console error, script error, CSP violation or alert since the last call.
    pub async fn assert_clean(&self) {
        let severe = self.console_errors().await;
        assert!(severe.is_empty(), "browser console errors: {severe:#?}");
        let hook = self.js("return window.__tl").await;
        for key in ["errors", "violations", "alerts"] {
            assert_eq!(hook[key], json!([]), "page {key}: {hook}");
        }
    }

    /// Closes the session (and with it Chromium).
    pub async fn close(mut self) {
        self.closed = self.client.clone().close().await.is_ok();
        // Drop stops the driver.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reaches `close`: end the session (Chromium quits) from a thread
        // of its own, as this may run on the async runtime, then stop the driver, which would
        // leave Chromium running if killed first.
        if let (false, Some(session)) = (self.closed, self.session_url.clone()) {
            let _ = std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()?;
                client.delete(session).send()
            })
            .join();
        }
        if matches!(self.driver.try_wait(), Ok(None)) {
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }
}

/// `POST /session/{id}/goog/cdp/execute`: a Chrome DevTools Protocol command.
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// `POST /session/{id}/se/log`: the browser's console log since the last read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}
