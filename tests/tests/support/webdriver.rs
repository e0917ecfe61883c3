//! A small W3C WebDriver client for the dashboard's browser test: starts Debian's
//! `chromedriver` on a free loopback port and drives headless Chromium through it.
//!
//! Hand-written over plain HTTP/1.1 on loopback rather than a crate: the WebDriver crates pull
//! a second TLS provider into the workspace's rustls (feature unification), and the dozen
//! commands used here are a few lines each.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Chromium and its driver are, or why the browser test cannot run here.
pub fn find_browser() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(|n| Path::new("/usr/bin").join(n))
            .find(|p| p.exists())
    };
    let driver = find(&["chromedriver"])
        .ok_or("chromedriver is not installed (apt-get install -y chromium-driver)")?;
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"])
        .ok_or("chromium is not installed (apt-get install -y chromium)")?;
    Ok((chromium, driver))
}

/// A running chromedriver and one browser session on it. Dropping it ends both.
pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with its own profile directory under `dir`.
    pub async fn start(dir: &Path) -> Browser {
        let (chromium, driver_bin) = find_browser().expect("a browser");
        let port = free_port();
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser {
            port,
            session: String::new(),
            driver,
            profile: profile.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(status) = browser.http("GET", "/status", None).await {
                if status["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // As root Chromium refuses to start without --no-sandbox.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1440,900",
                         format!("--user-data-dir={}", profile.display())],
            },
        }}});
        let created = browser
            .http("POST", "/session", Some(caps))
            .await
            .expect("a browser session");
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_string();
        browser
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        match self.http(method, &path, body).await {
            Ok(v) => v["value"].clone(),
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        }
    }

    /// One WebDriver call: the parsed JSON answer, or the error it reported.
    async fn http(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let host = format!("127.0.0.1:{}", self.port);
        let json = [("Content-Type", "application/json")];
        let (status, _, body) = exchange(&host, method, path, &json, &body).await?;
        let value: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(value["value"]["message"]
                .as_str()
                .unwrap_or(&body)
                .to_string())
        }
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The element `css` selects, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/session/{}/element", self.session);
            let found = self
                .http(
                    "POST",
                    &path,
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Ok(v) = found {
                return v["value"][ELEMENT].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no element matches {css}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` selects, as a user would (it must be visible).
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    /// Empties the field `css` selects and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The text of the first element `css` selects ("" when none does).
    pub async fn text(&self, css: &str) -> String {
        let v = self
            .eval(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                vec![json!(css)],
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Waits up to `timeout` until `script` returns something truthy, and returns it.
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script, vec![]).await;
            let truthy = !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0));
            if truthy {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Accepts the page's `confirm()` dialog.
    pub async fn accept_dialog(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let path = format!("/session/{}/alert/accept", self.session);
            if self.http("POST", &path, Some(json!({}))).await.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "no dialog to accept");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.cmd("GET", "/screenshot", None).await;
        let bytes = kube9_proto::base64::decode(png.as_str().expect("base64 PNG"))
            .expect("a valid PNG in base64");
        std::fs::write(path, bytes).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session's Chromium goes with its driver; the profile goes with the test.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let marker = format!("user-data-dir={}", self.profile.display());
        let _ = Command::new("pkill").arg("-f").arg(marker).status();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One HTTP/1.1 request to `host` (`ip:port`) on a fresh connection: the answer's status,
/// head and body.
pub async fn exchange(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String, String), String> {
    let mut stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = read_response(&mut stream).await?;
    let status = (head.get(9..12))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {head:?}"))?;
    Ok((status, head, body))
}

/// Reads one HTTP/1.1 answer: chromedriver keeps the connection open even when asked to
/// close it, so the body is read by its `Content-Length`.
async fn read_response(stream: &mut TcpStream) -> Result<(String, String), String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok());
            let body_start = end + 4;
            if let Some(n) = length.filter(|n| raw.len() >= body_start + n) {
                let body = String::from_utf8_lossy(&raw[body_start..body_start + n]);
                return Ok((head, body.into_owned()));
            }
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
            return Ok((head.to_string(), body.to_string()));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
