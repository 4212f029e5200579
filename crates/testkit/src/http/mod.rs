//! An in-process HTTP/1.1 file server on a free loopback port, serving files from memory.
//!
//! It gives download code something real to fetch without the internet: byte ranges
//! (for split and resumed downloads), `Content-Disposition` names, errors, redirects and
//! slow bodies (for progress and timeouts), and counts the requests it sees.
//!
//! # Behaviour
//!
//! - `GET` and `HEAD` only; other methods get `405` with `Allow: GET, HEAD`.
//! - Unknown paths get `404`. Request paths are percent-decoded before lookup, so a file
//!   added as `/naïve.bin` is found at [`FileServer::url`]`("/naïve.bin")`.
//! - Files always carry `Content-Length`, `Content-Type` (default
//!   `application/octet-stream`) and `Accept-Ranges: bytes`.
//! - `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` get `206` with `Content-Range`; a range
//!   that no byte satisfies gets `416` with `Content-Range: bytes */LEN`. A header with
//!   several ranges, another unit or bad syntax is ignored and the whole file is sent
//!   with `200` (which RFC 9110 allows); `If-Range` is not supported.
//! - A path can require HTTP basic auth ([`FileServerBuilder::basic_auth`]: `401` with
//!   `WWW-Authenticate` otherwise) or a header ([`FileServerBuilder::require_header`]:
//!   `403` otherwise). The `Range` header of every request is recorded
//!   ([`FileServer::ranges_for`]), to show that a download was resumed.

mod body;
mod guard;
mod names;
mod range;
mod serve;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::{Error, Result};
use serve::State;

/// The longest a dripped body may take, so a mistaken drip cannot hang a test.
pub const MAX_DRIP: Duration = Duration::from_secs(60);

/// A file to serve: its bytes, and optionally a download name, a content type and a
/// slow-drip rate.
#[derive(Debug, Clone)]
pub struct ServedFile {
    body: Bytes,
    filename: Option<String>,
    content_type: String,
    drip: Option<Drip>,
}

#[derive(Debug, Clone, Copy)]
struct Drip {
    chunk: usize,
    delay: Duration,
}

impl ServedFile {
    /// A file with these bytes, served as `application/octet-stream`.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            filename: None,
            content_type: "application/octet-stream".into(),
            drip: None,
        }
    }

    /// Sends `Content-Disposition: attachment; filename="NAME"`; a name that is not plain
    /// ASCII also gets the RFC 5987 form `filename*=UTF-8''…` (with an ASCII fallback in
    /// `filename`, non-ASCII characters replaced by `_`).
    pub fn attachment(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }

    /// Sends this `Content-Type` instead of `application/octet-stream`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Sends the body (or the requested range of it) in chunks of `chunk` bytes with
    /// `delay` between chunks, on tokio's clock (so a paused clock skips the waits).
    ///
    /// The total wait must stay within [`MAX_DRIP`] and `chunk` must not be zero;
    /// [`FileServerBuilder::start`] fails otherwise.
    pub fn drip(mut self, chunk: usize, delay: Duration) -> Self {
        self.drip = Some(Drip { chunk, delay });
        self
    }
}

#[derive(Debug)]
enum Route {
    File(ServedFile),
    Status(u16),
    Redirect(String),
}

/// Routes for a [`FileServer`], from [`FileServer::builder`].
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct FileServerBuilder {
    routes: Vec<(String, Route)>,
    guards: Vec<(String, guard::Guard)>,
}

impl FileServerBuilder {
    /// Serves `body` at `path` (e.g. `/dir/name.bin`); a later route for the same path
    /// replaces an earlier one.
    pub fn file(self, path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        self.serve(path, ServedFile::new(body))
    }

    /// Serves `file`, with its name, type and drip rate, at `path`.
    pub fn serve(self, path: impl Into<String>, file: ServedFile) -> Self {
        self.route(path, Route::File(file))
    }

    /// Answers every request for `path` with `status` (e.g. 500) and a short text body.
    pub fn status(self, path: impl Into<String>, status: u16) -> Self {
        self.route(path, Route::Status(status))
    }

    /// Answers requests for `path` with `302 Found` and `Location: target` (a path on this
    /// server such as `/real.bin`, or an absolute URL).
    pub fn redirect(self, path: impl Into<String>, target: impl Into<String>) -> Self {
        self.route(path, Route::Redirect(target.into()))
    }

    /// Requires HTTP basic auth with `user` and `password` for `path`; requests without
    /// them get `401 Unauthorized` with `WWW-Authenticate: Basic realm="testkit"`.
    pub fn basic_auth(mut self, path: impl Into<String>, user: &str, password: &str) -> Self {
        self.guards.push((normalize(path.into()), guard::Guard::basic(user, password)));
        self
    }

    /// Requires the header `name: value` for `path`; requests without it get
    /// `403 Forbidden`.
    pub fn require_header(mut self, path: impl Into<String>, name: &str, value: &str) -> Self {
        let guard = guard::Guard::Header { name: name.to_ascii_lowercase(), value: value.to_string() };
        self.guards.push((normalize(path.into()), guard));
        self
    }

    fn route(mut self, path: impl Into<String>, route: Route) -> Self {
        self.routes.push((normalize(path.into()), route));
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// Fails on a route that cannot be served (a zero or overlong drip, an invalid status
    /// code, a content type or redirect target that is not a header value).
    pub async fn start(self) -> Result<FileServer> {
        let mut state = State::default();
        for (path, route) in self.routes {
            let action = serve::action(route).map_err(|e| Error::Other(format!("route {path}: {e}")))?;
            state.routes.insert(path, action);
        }
        for (path, guard) in self.guards {
            state.guards.entry(path).or_default().push(guard);
        }
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| Error::io("binding the file server to 127.0.0.1:0", e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("reading the file server's address", e))?;
        let state = Arc::new(state);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), shutdown_rx));
        tracing::debug!(%addr, "file server started");
        Ok(FileServer { addr, state, shutdown: Some(shutdown), task: Some(task) })
    }
}

/// Paths are keys as requests will present them: absolute, without a query.
fn normalize(path: String) -> String {
    if path.starts_with('/') { path } else { format!("/{path}") }
}

/// A running in-process HTTP file server; see the [module docs](self) for what it does.
///
/// Dropping it stops accepting and aborts open connections; the listening socket closes
/// as soon as the runtime runs the aborted task. [`shutdown`](Self::shutdown) does the same
/// and waits until the socket is closed.
#[derive(Debug)]
pub struct FileServer {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Routes to serve, then [`start`](FileServerBuilder::start).
    pub fn builder() -> FileServerBuilder {
        FileServerBuilder::default()
    }

    /// The address it listens on, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/PATH`, with the path percent-encoded where it needs to be.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, names::encode_path(&normalize(path.to_string())))
    }

    /// How many requests it has answered (or begun answering), all paths together.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// How many requests named `path` (after percent-decoding), whatever the answer.
    pub fn requests_for(&self, path: &str) -> u64 {
        let per_path = self.state.per_path.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        per_path.get(&normalize(path.to_string())).copied().unwrap_or(0)
    }

    /// The `Range` header of each request for `path`, in arrival order (`None` for a
    /// request without one).
    pub fn ranges_for(&self, path: &str) -> Vec<Option<String>> {
        let ranges = self.state.ranges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        ranges.get(&normalize(path.to_string())).cloned().unwrap_or_default()
    }

    /// Stops accepting, aborts open connections and waits until the port is closed.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut shutdown: oneshot::Receiver<()>) {
    // Owning the connection tasks here means that ending this loop (on shutdown, abort or
    // runtime exit) drops the set, which aborts every open connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let response = serve::handle(&state, &req);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                            tracing::debug!(error = %e, "file server connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: pause rather than spin.
                    tracing::warn!(error = %e, "file server accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    drop(listener);
}

#[cfg(test)]
mod tests;
