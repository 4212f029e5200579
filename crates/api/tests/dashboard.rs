//! The task dashboard over HTTP: nothing without the token, a login that sets a strict
//! session cookie, tasks pushed live over server-sent events, cancel behind the CSRF
//! token and the same-origin check, and the security headers on every answer.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use support::{TOKEN, World, serve};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn assert_strict_headers(h: &HeaderMap, what: &str) {
    let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h.get("x-content-type-options").map(HeaderValue::as_bytes), Some(&b"nosniff"[..]), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_nothing_is_served() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let http = client();
    let t = w.submit("http://files.example/hang-secret-name.bin").await;
    w.until_downloading(t.id).await;

    let r = http.get(s.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/dashboard/login");
    assert_strict_headers(r.headers(), "/dashboard");
    for path in ["/dashboard/events", "/dashboard/app.js"] {
        let r = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_strict_headers(r.headers(), path);
        assert!(!r.text().await.unwrap().contains("hang-secret-name"), "{path}");
    }
    let r = http.post(s.url(&format!("/dashboard/tasks/{}/cancel", t.id))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A made-up session cookie opens nothing either.
    let r = http
        .get(s.url("/dashboard/events"))
        .header("cookie", format!("mltb_dashboard={}", "a".repeat(64)))
        .send();
    assert_eq!(r.await.unwrap().status(), 401);

    let r = http.get(s.url("/dashboard/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_strict_headers(r.headers(), "/dashboard/login");
    let page = r.text().await.unwrap();
    assert!(page.contains("<form") && !page.contains("hang-secret-name"), "{page}");
    // A wrong token: refused, no cookie.
    let r = http
        .post(s.url("/dashboard/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("not the API token"));
    assert!(w.engine.tasks().iter().any(|v| v.id == t.id), "still running");
}

/// Logs in; returns the session cookie (`name=value`) and the page's CSRF token.
async fn log_in(http: &reqwest::Client, s: &support::Served) -> (String, String) {
    let r = http
        .post(s.url("/dashboard/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/dashboard");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/dashboard"),
        "{set}"
    );
    assert!(!set.contains(TOKEN), "the cookie is a session id, not the token");
    let cookie = set.split(';').next().unwrap().to_owned();
    let r = http.get(s.url("/dashboard")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_strict_headers(r.headers(), "/dashboard");
    let page = r.text().await.unwrap();
    let csrf =
        page.split("name=\"csrf-token\" content=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(csrf.len(), 64, "{page}");
    (cookie, csrf)
}

/// Server-sent events read from a response, one `(event, data)` at a time.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> (String, serde_json::Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
                };
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    return (event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = self.body.next().await.expect("the stream stays open").unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads (bounded) until the server ends the stream; returns the events read.
    async fn until_end(&mut self) -> Vec<(String, serde_json::Value)> {
        let rest = async {
            while let Some(chunk) = self.body.next().await {
                self.buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            }
            let mut seen = Vec::new();
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
                };
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    seen.push((event, serde_json::from_str(&data).unwrap()));
                }
            }
            seen
        };
        // A guard against a stream that never ends, not a wait: it ends within a tick.
        tokio::time::timeout(Duration::from_secs(10), rest).await.expect("the stream ends")
    }

    /// Reads until the first look's `ready` event.
    async fn until_ready(&mut self) {
        let ready = async { while self.next().await.0 != "ready" {} };
        tokio::time::timeout(Duration::from_secs(10), ready).await.expect("the first look ends with `ready`");
    }

    /// Waits (bounded) for a `task` event about `id` in `state`.
    async fn until_task(&mut self, id: i64, state: &str) -> serde_json::Value {
        let wanted = async {
            loop {
                let (event, data) = self.next().await;
                if event == "task" && data["id"] == id && data["state"] == state {
                    return data;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wanted)
            .await
            .unwrap_or_else(|_| panic!("task {id} {state}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_token_tasks_appear_live_and_cancel_needs_the_csrf_token() {
    let w = World::new().await;
    let s = serve(w.api(World::config()).download_dir(w.download_dir())).await;
    let http = client();
    let (cookie, csrf) = log_in(&http, &s).await;
    let r = http.get(s.url("/dashboard/app.js")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));

    let r = http.get(s.url("/dashboard/events")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut events = Events { body: Box::pin(r.bytes_stream()), buffer: String::new() };
    // The first look ends with `ready`, after the totals.
    let mut seen = Vec::new();
    loop {
        let (event, data) = events.next().await;
        if event == "ready" {
            break;
        }
        seen.push((event, data));
    }
    let totals = &seen.iter().find(|(e, _)| e == "totals").expect("totals come first").1;
    assert!(totals["disk_free_bytes"].as_u64().is_some_and(|b| b > 0), "{totals}");

    // A task submitted now is pushed, then its progress.
    let t = w.submit("http://files.example/hang-live.bin").await;
    let live = events.until_task(t.id, "downloading").await;
    assert_eq!(live["name"], "hang-live.bin");

    let cancel = s.url(&format!("/dashboard/tasks/{}/cancel", t.id));
    // Forged: no CSRF token, a wrong one, or the right one from another site.
    for (token, origin) in
        [(None, None), (Some("f".repeat(64)), None), (Some(csrf.clone()), Some("http://evil.example"))]
    {
        let mut req = http.post(&cancel).header("cookie", &cookie);
        if let Some(t) = &token {
            req = req.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{token:?} {origin:?}");
        assert_strict_headers(r.headers(), "a refused cancel");
    }
    assert!(w.engine.tasks().iter().any(|v| v.id == t.id), "a forged request cancels nothing");
    let r = http
        .post(&cancel)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    events.until_task(t.id, "cancelled").await;

    // Logged out, the session opens nothing.
    let r =
        http.post(s.url("/dashboard/logout")).header("cookie", &cookie).header("x-csrf-token", &csrf).send();
    assert_eq!(r.await.unwrap().status(), 303);
    let r = http.get(s.url("/dashboard")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

/// Opens the event stream of session `cookie`.
async fn open_events(http: &reqwest::Client, s: &support::Served, cookie: &str) -> Events {
    let r = http.get(s.url("/dashboard/events")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut events = Events { body: Box::pin(r.bytes_stream()), buffer: String::new() };
    events.until_ready().await;
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_ends_the_event_stream() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let http = client();
    let (cookie, csrf) = log_in(&http, &s).await;
    let mut events = open_events(&http, &s, &cookie).await;
    // Another session's stream goes on.
    let (other, _) = log_in(&http, &s).await;
    let mut others = open_events(&http, &s, &other).await;

    let r =
        http.post(s.url("/dashboard/logout")).header("cookie", &cookie).header("x-csrf-token", &csrf).send();
    assert_eq!(r.await.unwrap().status(), 303);
    let t = w.submit("http://files.example/hang-after-logout.bin").await;
    let after = events.until_end().await;
    assert!(
        !after.iter().any(|(e, d)| e == "task" && d["id"] == t.id),
        "a task submitted after the logout was sent: {after:?}"
    );
    others.until_task(t.id, "downloading").await;
    w.engine.cancel(t.id);
    w.engine.wait(t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_ends_open_event_streams_and_wait_returns() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let http = client();
    let (cookie, _) = log_in(&http, &s).await;
    let mut events = open_events(&http, &s, &cookie).await;

    s.stop.cancel();
    // A guard, not a wait: without the stream ending, `wait` never returns.
    tokio::time::timeout(Duration::from_secs(10), s.running.wait())
        .await
        .expect("the server stops with a dashboard tab open")
        .unwrap();
    events.until_end().await;
}

/// Six open tabs share one look at the tasks: the streams that ask while it is taken
/// wait for it instead of each reading the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_event_streams_share_one_look_at_the_tasks() {
    const TABS: usize = 6;
    let (open, gate) = tokio::sync::watch::channel(false);
    let engine = std::sync::Arc::new(support::StandIn { gate: Some(gate), ..Default::default() });
    let metrics = std::sync::Arc::new(mltb_api::Metrics::new());
    let s = serve(mltb_api::Api::builder(World::config(), metrics, engine.clone())).await;
    let http = client();
    let (cookie, _) = log_in(&http, &s).await;
    let mut tabs = Vec::new();
    for _ in 0..TABS {
        let r = http.get(s.url("/dashboard/events")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), 200);
        tabs.push(Events { body: Box::pin(r.bytes_stream()), buffer: String::new() });
    }
    open.send(true).unwrap();
    for tab in &mut tabs {
        tab.until_ready().await;
    }
    let reads = engine.reads.load(std::sync::atomic::Ordering::SeqCst);
    // One look serves the six; a stream first polled a tick after the gate opened would
    // take a second one.
    assert!((1..=2).contains(&reads), "{reads} reads of the task list for {TABS} streams");
    s.stop.cancel();
}
