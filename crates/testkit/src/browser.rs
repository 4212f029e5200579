//! [`Browser`]: headless Chromium driven over WebDriver (`chromedriver` on a free loopback
//! port), for tests of the web pages in a real browser.
//!
//! The W3C WebDriver protocol is plain JSON over HTTP, so this speaks it directly: a
//! session, navigation, elements found by CSS selector, clicks, typing, scripts and
//! screenshots. Waiting is always for a condition the page reports ([`Browser::wait`]),
//! polled with a deadline.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{find_program, wait_ready};
use crate::{Error, Result, free_port};

/// The key WebDriver names a found element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session, closed (and its driver stopped) on drop.
///
/// `chromedriver` runs in a process group of its own, which the browser it starts
/// joins; dropping or closing the session kills that whole group, so no Chromium is
/// left running after a test, whether it closed the session or not (a killed driver
/// alone leaves its browser orphaned).
#[derive(Debug)]
pub struct Browser {
    driver: tokio::process::Child,
    http: reqwest::Client,
    session: String,
    base: String,
    profile: tempfile::TempDir,
}

/// An element of the page, by its WebDriver id.
#[derive(Debug, Clone)]
pub struct Element(String);

fn other(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("webdriver {what}: {e}"))
}

impl Browser {
    /// Starts `chromedriver` and a headless `chromium` session of `width`×`height`.
    ///
    /// # Errors
    /// [`Error::NotInstalled`] without `chromedriver` or `chromium` (Debian:
    /// `apt-get install chromium chromium-driver`); the driver does not answer.
    pub async fn start(width: u32, height: u32) -> Result<Self> {
        let hint = "apt-get install chromium chromium-driver";
        let driver_bin = find_program("chromedriver", hint)?;
        let chromium = find_program("chromium", hint)?;
        let port = free_port()?;
        let driver = tokio::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Io { context: "spawning chromedriver".into(), source: e })?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| other("client", e))?;
        let status = format!("{base}/status");
        wait_ready("chromedriver", Duration::from_secs(20), || {
            let (http, status) = (http.clone(), status.clone());
            async move {
                let v: Value = http
                    .get(&status)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                if v["value"]["ready"] == true { Ok(()) } else { Err(format!("not ready: {v}")) }
            }
        })
        .await?;
        let profile =
            tempfile::tempdir().map_err(|e| Error::Io { context: "a browser profile".into(), source: e })?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .map_err(|e| other("new session", e))?
            .json()
            .await
            .map_err(|e| other("new session", e))?;
        let session = created["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| other("new session", format!("no session id in {created}")))?
            .to_owned();
        Ok(Self { driver, http, session, base, profile })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value =
            req.send().await.map_err(|e| other(path, e))?.json().await.map_err(|e| other(path, e))?;
        if let Some(err) = v["value"]["error"].as_str() {
            return Err(other(path, format!("{err}: {}", v["value"]["message"])));
        }
        Ok(v["value"].clone())
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await.map(drop)
    }

    /// Resizes the window to `width`×`height` CSS pixels (e.g. a phone's 390×844).
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height})))
            .await
            .map(drop)
    }

    /// The page's URL now.
    pub async fn url(&self) -> Result<String> {
        Ok(self.call(reqwest::Method::GET, "/url", None).await?.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching CSS `selector`, if any.
    pub async fn find(&self, selector: &str) -> Result<Option<Element>> {
        let body = json!({"using": "css selector", "value": selector});
        let found = self.call(reqwest::Method::POST, "/elements", Some(body)).await?;
        let Some(first) = found.as_array().and_then(|a| a.first()) else { return Ok(None) };
        match first[ELEMENT].as_str() {
            Some(id) => Ok(Some(Element(id.to_owned()))),
            None => Err(other("find", format!("no element id in {first}"))),
        }
    }

    /// Clicks `e`.
    pub async fn click(&self, e: &Element) -> Result<()> {
        self.call(reqwest::Method::POST, &format!("/element/{}/click", e.0), Some(json!({}))).await.map(drop)
    }

    /// Types `text` into `e`.
    pub async fn type_text(&self, e: &Element, text: &str) -> Result<()> {
        self.call(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({"text": text})))
            .await
            .map(drop)
    }

    /// The rendered text of `e`.
    pub async fn text(&self, e: &Element) -> Result<String> {
        Ok(self
            .call(reqwest::Method::GET, &format!("/element/{}/text", e.0), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns
    /// its value. An `async` body's promise is awaited.
    pub async fn run(&self, script: &str, args: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, "/execute/async", Some(json!({
            "script": format!("const done = arguments[arguments.length - 1]; \
                               Promise.resolve((async () => {{ {script} }})()).then(done, e => done({{error: String(e)}}));"),
            "args": args,
        })))
        .await
    }

    /// Waits until `script` (as for [`run`](Self::run)) returns something truthy, polling
    /// every 50 ms for at most `timeout`; returns that value.
    ///
    /// A poll that fails counts as "not yet": a script that runs while the page navigates
    /// (a form just submitted, say) has its document unloaded under it, and ChromeDriver
    /// answers with an error (`script timeout`, at once) instead of a value. The last
    /// error is in the message if the condition never holds.
    ///
    /// # Errors
    /// The condition did not hold in time (the message names `what`).
    pub async fn wait(&self, what: &str, timeout: Duration, script: &str) -> Result<Value> {
        let start = Instant::now();
        loop {
            let last = match self.run(script, json!([])).await {
                Ok(v) if !(v.is_null() || v == false || v == 0 || v == "") => return Ok(v),
                Ok(v) => v.to_string(),
                Err(e) => format!("error: {e}"),
            };
            if start.elapsed() > timeout {
                return Err(Error::Other(format!(
                    "the page did not show {what} within {timeout:?} (last: {last})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let png = decode_base64(b64.as_str().unwrap_or_default())
            .ok_or_else(|| other("screenshot", "not base64"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Io { context: format!("creating {}", dir.display()), source: e })?;
        }
        std::fs::write(path, png)
            .map_err(|e| Error::Io { context: format!("writing {}", path.display()), source: e })
    }

    /// The browser's profile directory (removed when the session is dropped).
    #[must_use]
    pub fn profile(&self) -> &std::path::Path {
        self.profile.path()
    }

    /// Ends the session and stops the driver and the browser.
    pub async fn close(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
        self.kill_group();
        let _ = self.driver.kill().await;
    }

    /// Kills the driver's process group: the driver and the browser it started.
    fn kill_group(&self) {
        if let Some(pid) =
            self.driver.id().and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw)
        {
            // The driver is not reaped yet, so its pid (the group's id) is not reused.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Standard base64 (with padding) to bytes.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(decode_base64("aGk=\n").unwrap(), b"hi");
        assert!(decode_base64("a*==").is_none());
        assert!(decode_base64("abc").is_none());
    }
}
