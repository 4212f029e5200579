//! Answering one request from the route table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, ALLOW, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue,
    LOCATION, RANGE, WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode};

use super::body::Payload;
use super::guard::Guard;
use super::names::{content_disposition, decode_path, encode_path};
use super::range::{self, ByteRange};
use super::{Drip, ServedFile};

/// What a path answers, fixed when the server starts.
#[derive(Debug)]
pub(crate) enum Action {
    File { file: ServedFile, disposition: Option<HeaderValue>, content_type: HeaderValue },
    Status(StatusCode),
    Redirect(HeaderValue),
}

/// The routes and the request counters, shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) routes: HashMap<String, Action>,
    pub(crate) requests: AtomicU64,
    pub(crate) per_path: Mutex<HashMap<String, u64>>,
    pub(crate) guards: HashMap<String, Vec<Guard>>,
    pub(crate) ranges: Mutex<HashMap<String, Vec<Option<String>>>>,
}

impl State {
    fn count(&self, path: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut per_path = self.per_path.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *per_path.entry(path.to_string()).or_default() += 1;
    }
}

pub(crate) fn handle<B>(state: &State, req: &Request<B>) -> Response<Payload> {
    let path = decode_path(req.uri().path());
    state.count(path.as_deref().unwrap_or(req.uri().path()));
    let head = req.method() == Method::HEAD;
    if let Some(path) = &path {
        let range = req.headers().get(RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut ranges = state.ranges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        ranges.entry(path.clone()).or_default().push(range);
    }
    let refused = path
        .as_deref()
        .and_then(|p| state.guards.get(p))
        .and_then(|guards| guards.iter().find_map(|g| g.check(req.headers())));
    if let Some(code) = refused {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
        let mut response = text(status, head);
        if code == 401 {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"testkit\""));
        }
        return response;
    }
    if !head && req.method() != Method::GET {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, head);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path.as_deref().and_then(|p| state.routes.get(p)) {
        None => text(StatusCode::NOT_FOUND, head),
        Some(Action::Status(status)) => text(*status, head),
        Some(Action::Redirect(location)) => {
            let mut response = text(StatusCode::FOUND, head);
            response.headers_mut().insert(LOCATION, location.clone());
            response
        }
        Some(Action::File { file, disposition, content_type }) => {
            let range = req.headers().get(RANGE).and_then(|v| v.to_str().ok());
            serve_file(file, disposition.as_ref(), content_type, range, head)
        }
    }
}

fn serve_file(
    file: &ServedFile,
    disposition: Option<&HeaderValue>,
    content_type: &HeaderValue,
    range: Option<&str>,
    head: bool,
) -> Response<Payload> {
    let len = file.body.len() as u64;
    let (status, part, content_range) = match range::parse(range, len) {
        ByteRange::Full => (StatusCode::OK, file.body.clone(), None),
        ByteRange::Partial { start, end } => {
            // Both bounds are below `len`, which came from a usize.
            let part = file.body.slice(start as usize..=end as usize);
            (StatusCode::PARTIAL_CONTENT, part, Some(format!("bytes {start}-{end}/{len}")))
        }
        ByteRange::Unsatisfiable => {
            (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new(), Some(format!("bytes */{len}")))
        }
    };
    let content_length = part.len();
    let body = match (head, file.drip) {
        (true, _) => Payload::empty(),
        (false, Some(Drip { chunk, delay })) => Payload::drip(part, chunk, delay),
        (false, None) => Payload::full(part),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(content_length));
    if status != StatusCode::RANGE_NOT_SATISFIABLE {
        headers.insert(CONTENT_TYPE, content_type.clone());
        if let Some(disposition) = disposition {
            headers.insert(CONTENT_DISPOSITION, disposition.clone());
        }
    }
    if let Some(content_range) = content_range {
        // Digits, spaces, `-`, `*` and `/` are always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            headers.insert(CONTENT_RANGE, value);
        }
    }
    response
}

/// A short plain-text answer naming the status, e.g. `404 Not Found`.
fn text(status: StatusCode, head: bool) -> Response<Payload> {
    let message = format!("{status}\n");
    let mut response = Response::new(if head { Payload::empty() } else { Payload::full(message.clone()) });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(message.len()));
    response
}

/// Turns a builder route into an [`Action`], checking what can be checked up front.
pub(crate) fn action(route: super::Route) -> Result<Action, String> {
    Ok(match route {
        super::Route::File(file) => {
            if let Some(Drip { chunk, delay }) = file.drip {
                if chunk == 0 {
                    return Err("a drip chunk must be at least one byte".into());
                }
                let pauses = (file.body.len() / chunk) as u32;
                let total = delay.saturating_mul(pauses);
                if total > super::MAX_DRIP {
                    return Err(format!(
                        "dripping {} bytes in chunks of {chunk} every {delay:?} takes {total:?}, more than the {:?} allowed",
                        file.body.len(),
                        super::MAX_DRIP
                    ));
                }
            }
            let disposition = match &file.filename {
                Some(name) => Some(
                    HeaderValue::from_str(&content_disposition(name))
                        .map_err(|e| format!("file name {name:?} makes no header: {e}"))?,
                ),
                None => None,
            };
            let content_type = HeaderValue::from_str(&file.content_type)
                .map_err(|e| format!("content type {:?} is not a header value: {e}", file.content_type))?;
            Action::File { file, disposition, content_type }
        }
        super::Route::Status(code) => {
            Action::Status(StatusCode::from_u16(code).map_err(|_| format!("{code} is not an HTTP status"))?)
        }
        super::Route::Redirect(location) => {
            let location = if location.starts_with('/') { encode_path(&location) } else { location };
            Action::Redirect(
                HeaderValue::from_str(&location)
                    .map_err(|e| format!("redirect target {location:?} is not a header value: {e}"))?,
            )
        }
    })
}
