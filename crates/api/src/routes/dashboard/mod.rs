//! The task dashboard at `/dashboard`: a page showing every task live (pushed over
//! server-sent events), with totals and a cancel button on each task.
//!
//! Access: the API token, typed once into a login form, opens a session held in an
//! `HttpOnly`, `SameSite=Strict` cookie (12 hours, in memory: a restart logs everyone
//! out). Nothing but the login form and the style sheet is served without one. Every
//! state-changing request (log in, log out, cancel) must come from this site (its
//! `Origin`, when sent, is the server's own) and, once logged in, carry the session's
//! CSRF token. Every response carries a strict content security policy (scripts only
//! from this site, none inline), `X-Content-Type-Options: nosniff` and
//! `frame-ancestors 'none'`. The event stream ends when its session is closed or
//! expires, and when the server stops. Every open stream shows one shared look at the
//! tasks, taken at most once a tick however many tabs are open.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState, Auth, tasks};
use crate::model::TaskInfo;

const COOKIE: &str = "mltb_dashboard";
/// How long a session lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held at once; the oldest go first.
const MAX_SESSIONS: usize = 64;
/// How often the event stream looks for changes.
const TICK: Duration = Duration::from_millis(500);
/// Finished tasks the dashboard shows.
const FINISHED: u32 = 20;

const INDEX: &str = include_str!("index.html");
const LOGIN: &str = include_str!("login.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The policy every dashboard response carries.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// The sessions, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes, hex.
fn random_token() -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Sessions {
    fn open(&self) -> Result<(String, Session), ApiError> {
        let id = random_token()?;
        let session = Session { csrf: random_token()?, expires: Instant::now() + SESSION };
        let mut map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The session the request's cookie names, when it is open.
    fn of(&self, headers: &HeaderMap) -> Option<Session> {
        self.find(cookie(headers, COOKIE)?)
    }

    /// Session `presented`, when it is open (not closed, not expired). The id is
    /// compared in constant time.
    fn find(&self, presented: &str) -> Option<Session> {
        let map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        map.iter()
            .find(|(id, s)| s.expires > now && bool::from(id.as_bytes().ct_eq(presented.as_bytes())))
            .map(|(_, s)| s.clone())
    }

    fn close(&self, headers: &HeaderMap) {
        if let Some(presented) = cookie(headers, COOKIE) {
            self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(presented);
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// What the dashboard's handlers read.
#[derive(Clone)]
pub(crate) struct Dashboard {
    pub(crate) app: AppState,
    pub(crate) auth: Arc<Auth>,
    pub(crate) sessions: Arc<Sessions>,
    /// Whether the server speaks TLS: the cookie is then `Secure`.
    pub(crate) secure: bool,
    /// Cancelled when the server stops: open event streams end then, or the graceful
    /// shutdown would wait for them (for as long as a tab stays open).
    pub(crate) stop: CancellationToken,
    /// What the event streams show, looked up for all of them.
    pub(crate) looks: Arc<Looks>,
}

/// The tasks and totals every open event stream shows, looked up at most once a
/// [`TICK`] however many streams are open (a look reads the store and the disk); each
/// stream sends what changed since it last looked.
#[derive(Default)]
pub(crate) struct Looks {
    last: tokio::sync::Mutex<Option<(Instant, Arc<Look>)>>,
}

/// One look: the tasks (or why they could not be read) and the totals.
struct Look {
    tasks: Result<Vec<TaskInfo>, String>,
    totals: Totals,
}

impl Looks {
    /// The latest look, taken now if the last is a [`TICK`] old: streams asking while one
    /// is taken wait for it.
    async fn get(&self, app: &AppState) -> Arc<Look> {
        let mut last = self.last.lock().await;
        if let Some((at, look)) = last.as_ref()
            && at.elapsed() < TICK
        {
            return look.clone();
        }
        let look = Arc::new(Look::take(app).await);
        *last = Some((Instant::now(), look.clone()));
        look
    }
}

impl Look {
    async fn take(app: &AppState) -> Self {
        let tasks = tasks::collect(app, FINISHED).await.map_err(|e| e.1);
        let stats = super::system::stats(State(app.clone())).await.0;
        let speed = |state: &str| -> u64 {
            let Ok(tasks) = &tasks else { return 0 };
            super::saturating_sum(tasks.iter().filter(|t| t.state == state).map(|t| t.speed_bytes_per_second))
        };
        let totals = Totals {
            download_bytes_per_second: speed("downloading"),
            upload_bytes_per_second: speed("uploading"),
            disk_free_bytes: stats.disk.as_ref().map(|d| d.stats.free_bytes),
            disk_total_bytes: stats.disk.as_ref().map(|d| d.stats.size_bytes),
            downloading: stats.queue.downloading,
            uploading: stats.queue.uploading,
            waiting: stats.queue.waiting,
        };
        Self { tasks, totals }
    }
}

/// The dashboard's routes, with their security headers.
pub(crate) fn routes(d: Dashboard) -> Router {
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/app.js", get(script))
        .route("/dashboard/app.css", get(style))
        .route("/dashboard/events", get(events))
        .route("/dashboard/tasks/{id}/cancel", post(cancel))
        .with_state(d)
        .layer(axum::middleware::from_fn(security_headers))
}

/// Adds the dashboard's security headers to every answer (the selection page's too).
pub(super) async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the page's own form posts.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether a state-changing request comes from this site: its `Origin` (when sent) is
/// this server's, and `Sec-Fetch-Site` (when sent) says so.
pub(super) fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            let bare = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            !host.is_empty() && bare == Some(host)
        }
    }
}

fn forbidden(text: &str) -> Response {
    ApiError(StatusCode::FORBIDDEN, text.to_owned()).into_response()
}

/// The HTML-escaped form of `s` (for the one value put into a page).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn index(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    match d.sessions.of(&headers) {
        Some(s) => Html(INDEX.replace("{{csrf}}", &escape(&s.csrf))).into_response(),
        None => Redirect::to("/dashboard/login").into_response(),
    }
}

fn login_page(message: &str) -> String {
    LOGIN.replace("{{message}}", &escape(message))
}

async fn login_form(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if d.sessions.of(&headers).is_some() {
        return Redirect::to("/dashboard").into_response();
    }
    Html(login_page("")).into_response()
}

async fn login(State(d): State<Dashboard>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !same_site(&headers) {
        return forbidden("a login must come from the dashboard's own page");
    }
    if !d.auth.is_on() {
        return (StatusCode::FORBIDDEN, Html(login_page("The API is off: no API token is configured.")))
            .into_response();
    }
    let token = form_field(&body, "token");
    if !token.as_deref().is_some_and(|t| d.auth.accepts(t.trim().as_bytes())) {
        tracing::debug!("refused a dashboard login with a wrong token");
        return (StatusCode::UNAUTHORIZED, Html(login_page("That is not the API token."))).into_response();
    }
    let (id, _) = match d.sessions.open() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let secure = if d.secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION.as_secs()
    );
    let mut response = Redirect::to("/dashboard").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Field `name` of an `application/x-www-form-urlencoded` body, decoded (`+` is a space,
/// `%XX` a byte); `None` when it is missing or not UTF-8.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let raw = body.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name)?.1;
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The session of a state-changing request, when it is logged in, from this site, and
/// carries the session's CSRF token (header `X-CSRF-Token`).
fn checked(d: &Dashboard, headers: &HeaderMap) -> Result<Session, ApiError> {
    let Some(session) = d.sessions.of(headers) else {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "log in first: /dashboard/login".into()));
    };
    if !same_site(headers) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the request does not come from the dashboard's own page".into(),
        ));
    }
    let presented = headers.get("x-csrf-token").map(HeaderValue::as_bytes).unwrap_or_default();
    if !bool::from(presented.ct_eq(session.csrf.as_bytes())) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the CSRF token is missing or wrong: reload the dashboard".into(),
        ));
    }
    Ok(session)
}

async fn logout(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if let Err(e) = checked(&d, &headers) {
        return e.into_response();
    }
    d.sessions.close(&headers);
    let mut response = Redirect::to("/dashboard/login").into_response();
    let gone = format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&gone) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn script(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if d.sessions.of(&headers).is_none() {
        return ApiError(StatusCode::UNAUTHORIZED, "log in first: /dashboard/login".into()).into_response();
    }
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn cancel(State(d): State<Dashboard>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = checked(&d, &headers) {
        return e.into_response();
    }
    let id = match tasks::parse_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match tasks::cancel_task(&d.app, id).await {
        Ok(accepted) => {
            tracing::info!(task = id, "cancelled from the dashboard");
            (StatusCode::ACCEPTED, axum::Json(accepted)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The totals line: bandwidth, disk, queue.
#[derive(Debug, Clone, Serialize, PartialEq)]
struct Totals {
    download_bytes_per_second: u64,
    upload_bytes_per_second: u64,
    disk_free_bytes: Option<u64>,
    disk_total_bytes: Option<u64>,
    downloading: u64,
    uploading: u64,
    waiting: u64,
}

/// What the event stream has sent so far, and what is left to send.
struct Stream {
    d: Dashboard,
    /// The session that opened the stream: the stream ends with it.
    session: String,
    sent: HashMap<i64, TaskInfo>,
    totals: Option<Totals>,
    pending: VecDeque<Event>,
    first: bool,
}

impl Stream {
    /// Queues events for what changed since the last look: `task` (a task new or
    /// changed, as the API's JSON), `gone` (`{"id": n}`), `totals`.
    async fn look(&mut self) {
        let look = self.d.looks.get(&self.d.app).await;
        let tasks = match &look.tasks {
            Ok(t) => t,
            Err(e) => {
                self.pending.push_back(Event::default().event("problem").data(e));
                return;
            }
        };
        let mut now: HashMap<i64, TaskInfo> = HashMap::with_capacity(tasks.len());
        for t in tasks {
            if self.sent.get(&t.id) != Some(t)
                && let Ok(e) = Event::default().event("task").json_data(t)
            {
                self.pending.push_back(e);
            }
            now.insert(t.id, t.clone());
        }
        for id in self.sent.keys().filter(|id| !now.contains_key(id)) {
            self.pending.push_back(Event::default().event("gone").data(format!("{{\"id\":{id}}}")));
        }
        self.sent = now;
        if self.totals.as_ref() != Some(&look.totals) {
            if let Ok(e) = Event::default().event("totals").json_data(&look.totals) {
                self.pending.push_back(e);
            }
            self.totals = Some(look.totals.clone());
        }
        if self.first {
            // The page knows it has the whole list once this arrives.
            self.pending.push_back(Event::default().event("ready").data("{}"));
            self.first = false;
        }
    }
}

/// `GET /dashboard/events`: the tasks as server-sent events, until the session is closed
/// or expires, or the server stops.
async fn events(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let Some(session) = cookie(&headers, COOKIE).filter(|id| d.sessions.find(id).is_some()) else {
        return ApiError(StatusCode::UNAUTHORIZED, "log in first: /dashboard/login".into()).into_response();
    };
    let stop = d.stop.clone().cancelled_owned();
    let start = Stream {
        d,
        session: session.to_owned(),
        sent: HashMap::new(),
        totals: None,
        pending: VecDeque::new(),
        first: true,
    };
    let stream = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            // Logged out or expired since the last look: nothing more is sent.
            s.d.sessions.find(&s.session)?;
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(e), s));
            }
            if !s.first {
                tokio::time::sleep(TICK).await;
            }
            s.look().await;
        }
    })
    .take_until(stop);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let h = headers(&[("cookie", "a=1; mltb_dashboard=abc ; b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "mltb"), None);
    }

    #[test]
    fn only_this_sites_requests_change_state() {
        assert!(same_site(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
        assert!(!same_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(!same_site(&headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")])));
        assert!(same_site(&headers(&[("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn sessions_open_are_found_by_their_cookie_and_closed() {
        let s = Sessions::default();
        let (id, session) = s.open().unwrap();
        assert_eq!(id.len(), 64);
        let h = headers(&[("cookie", &format!("{COOKIE}={id}"))]);
        assert_eq!(s.of(&h).map(|x| x.csrf), Some(session.csrf));
        // Another id: its first digit changed (to '1' when it was '0': a fixed '0' left
        // one id in sixteen unchanged, and the test failed then).
        let other = if id.starts_with('0') { '1' } else { '0' };
        assert!(s.of(&headers(&[("cookie", &format!("{COOKIE}={other}{}", &id[1..]))])).is_none());
        s.close(&h);
        assert!(s.of(&h).is_none());
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(form_field(b"a=1&token=ab%2Bc+d%21", "token").as_deref(), Some("ab+c d!"));
        assert_eq!(form_field(b"token=%zz", "token"), None);
        assert_eq!(form_field(b"tokens=1", "token"), None);
    }

    #[test]
    fn page_values_are_escaped() {
        assert_eq!(escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
