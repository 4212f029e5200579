//! [`EgressProxy`]: a loopback HTTP forward proxy that checks every destination against an
//! [`EgressPolicy`] and connects to the address it checked.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::http::response;
use super::policy::EgressPolicy;
use conn::Connection;

mod conn;
mod request;
use crate::{Error, ErrorKind, Result};

/// Defaults of [`EgressProxyBuilder`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_CONNECTIONS: usize = 256;
const RECENT_REFUSALS: usize = 32;
const TUNNEL_SETTLE: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// One destination the proxy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// What was asked for: `host:port` (the path and query are left out: they may carry
    /// tokens).
    pub target: String,
    /// Why, e.g. "127.0.0.2 is a loopback address".
    pub reason: String,
    /// The user name the client sent in `Proxy-Authorization: Basic`, if any: the engine
    /// gives each download its own (aria2's `all-proxy-user` option, e.g. the task id) so
    /// that a refusal can be matched to the download it failed. The password is ignored.
    pub tag: Option<String>,
    /// When.
    pub at: SystemTime,
}

impl Refusal {
    /// The refusal as an engine error ([`ErrorKind::Refused`]), for a task that failed
    /// because of it.
    pub fn to_error(&self) -> Error {
        ErrorKind::Refused { target: self.target.clone(), reason: self.reason.clone() }.into()
    }
}

/// Counters of an [`EgressProxy`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EgressStats {
    /// Connections accepted from clients.
    pub connections: u64,
    /// Requests passed on to a checked destination (a tunnel opened or a request sent).
    pub forwarded: u64,
    /// Requests refused by the policy (each answered `403`).
    pub refused: u64,
    /// Requests that failed otherwise: bad syntax, a name that does not resolve, a
    /// destination that does not answer, too many connections.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Shared {
    connections: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    recent: Mutex<VecDeque<Refusal>>,
}

impl Shared {
    fn refuse(&self, target: String, reason: String, tag: Option<String>) {
        tracing::info!(%target, %reason, tag = tag.as_deref(), "egress proxy refused a destination");
        self.refused.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_REFUSALS {
            recent.pop_front();
        }
        recent.push_back(Refusal { target, reason, tag, at: SystemTime::now() });
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    idle_timeout: Duration,
    tunnel_settle: Duration,
    connect_timeout: Duration,
    head_timeout: Duration,
    max_head_bytes: usize,
}

/// Builds an [`EgressProxy`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct EgressProxyBuilder {
    policy: EgressPolicy,
    limits: Limits,
    max_connections: usize,
}

impl EgressProxyBuilder {
    /// How long resolving and connecting to a destination may take (15 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.limits.connect_timeout = timeout;
        self
    }

    /// How long a tunnel or forwarded exchange may move no byte either way before it is
    /// closed (5 min by default), so a destination that stalls cannot hold a connection
    /// slot forever. aria2's own `--timeout` is usually shorter.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.limits.idle_timeout = idle;
        self
    }

    /// How long a new tunnel holds back what the destination sends first, unless the
    /// client speaks first (1 s by default).
    ///
    /// aria2 reads the proxy's `200` answer to `CONNECT` into a buffer it then throws
    /// away, so bytes that arrive with it are lost: an FTP server's greeting, sent the
    /// moment the proxy connects, would be, and the download would hang. HTTPS and HTTP
    /// clients speak first and are not held up; an FTP control or data connection
    /// waits this long once.
    pub fn tunnel_settle(mut self, hold: Duration) -> Self {
        self.limits.tunnel_settle = hold;
        self
    }

    /// How long a client may take to send a request head, and a destination to send a
    /// response head (60 s by default).
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.limits.head_timeout = timeout;
        self
    }

    /// The largest request or response head accepted, in bytes (64 KiB by default);
    /// a larger request gets `431`.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_head_bytes = bytes;
        self
    }

    /// How many client connections may be open at once (256 by default); more are
    /// answered `503` and closed.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start(self) -> Result<EgressProxy> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| Error::io("binding the egress proxy to 127.0.0.1:0", &e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("the egress proxy's address", &e))?;
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let server = Server {
            policy: Arc::new(self.policy),
            limits: self.limits,
            shared: Arc::clone(&shared),
            permits: Arc::new(Semaphore::new(self.max_connections.max(1))),
        };
        let task = tokio::spawn(server.run(listener, stopped));
        tracing::debug!(%addr, "egress proxy listening");
        Ok(EgressProxy { addr, shared, stop: Some(stop), task })
    }
}

/// A loopback HTTP forward proxy that holds an [`EgressPolicy`] on every request that
/// passes through it.
///
/// It speaks `CONNECT host:port` (tunnels, for HTTPS and anything else) and absolute-form
/// `GET http://host/…` (plain HTTP, forwarded with `Connection: close`). For each request
/// it resolves the destination itself, refuses it with `403` when any address is
/// forbidden, and otherwise connects to an address it checked, so neither a redirect
/// (each hop is a new request) nor a DNS answer that changes after the check can reach a
/// forbidden address. Refusals are counted and the latest ones kept
/// ([`recent_refusals`](Self::recent_refusals)).
///
/// Credentials (`Authorization`, `Proxy-Authorization`) are passed on or dropped, never
/// logged; refusals name only `host:port`.
///
/// Point aria2 at it with the options from [`aria2_options`](Self::aria2_options). It
/// stops when dropped (or on [`shutdown`](Self::shutdown)), closing every connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use mltb_engine::egress::{EgressPolicy, EgressProxy};
///
/// let proxy = EgressProxy::start(EgressPolicy::default()).await.unwrap();
/// assert!(proxy.url().starts_with("http://127.0.0.1:"));
/// assert_eq!(proxy.stats().refused, 0);
/// # }
/// ```
pub struct EgressProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressProxy").field("addr", &self.addr).field("stats", &self.stats()).finish()
    }
}

impl EgressProxy {
    /// A builder for a proxy enforcing `policy`.
    pub fn builder(policy: EgressPolicy) -> EgressProxyBuilder {
        EgressProxyBuilder {
            policy,
            limits: Limits {
                idle_timeout: IDLE_TIMEOUT,
                tunnel_settle: TUNNEL_SETTLE,
                connect_timeout: CONNECT_TIMEOUT,
                head_timeout: HEAD_TIMEOUT,
                max_head_bytes: MAX_HEAD_BYTES,
            },
            max_connections: MAX_CONNECTIONS,
        }
    }

    /// Starts a proxy enforcing `policy`, with the default limits.
    pub async fn start(policy: EgressPolicy) -> Result<Self> {
        Self::builder(policy).start().await
    }

    /// The address it listens on (`127.0.0.1` and a free port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `aria2c` options that send all of aria2's HTTP, HTTPS and FTP traffic through
    /// this proxy as `CONNECT` tunnels: `--all-proxy`, `--http-proxy`, `--https-proxy`
    /// and `--ftp-proxy` set to [`url`](Self::url), `--no-proxy=` and
    /// `--proxy-method=tunnel`.
    ///
    /// Each protocol is named, and `--no-proxy` emptied, because aria2 otherwise lets the
    /// `http_proxy`, `https_proxy`, `ftp_proxy` and `no_proxy` environment variables
    /// override `--all-proxy` (a `no_proxy=127.0.0.1` in its environment sends those
    /// downloads around the proxy). Never set these options per download. With aria2's
    /// default method (`get`) an FTP download would be sent as `GET ftp://…`, which this
    /// proxy does not forward; tunnels carry FTP's control and data connections both.
    pub fn aria2_options(&self) -> Vec<String> {
        self.aria2_download_options().into_iter().map(|(key, value)| format!("--{key}={value}")).collect()
    }

    /// [`aria2_options`](Self::aria2_options) as per-download options (`addUri`'s
    /// options object), for an aria2 daemon started without them.
    pub fn aria2_download_options(&self) -> Vec<(&'static str, String)> {
        let url = self.url();
        vec![
            ("all-proxy", url.clone()),
            ("http-proxy", url.clone()),
            ("https-proxy", url.clone()),
            ("ftp-proxy", url),
            ("no-proxy", String::new()),
            ("proxy-method", "tunnel".to_string()),
        ]
    }

    /// Per-download aria2 options that tag the download's requests with `tag` (a task id,
    /// say), so that its refusals can be found with
    /// [`last_refusal_for`](Self::last_refusal_for): the proxy user name of every
    /// protocol (`all-proxy-user`, `http-proxy-user`, `https-proxy-user`,
    /// `ftp-proxy-user`; aria2 takes the per-protocol ones once
    /// [`aria2_options`](Self::aria2_options) names each protocol's proxy) set to `tag`,
    /// cut to printable ASCII without `:` and to 64 bytes, with dummy passwords.
    ///
    /// ```
    /// use mltb_engine::egress::EgressProxy;
    ///
    /// let options = EgressProxy::aria2_tag_options("task 42");
    /// assert!(options.contains(&("http-proxy-user", "task42".to_string())));
    /// ```
    pub fn aria2_tag_options(tag: &str) -> Vec<(&'static str, String)> {
        let tag: String = tag.chars().filter(|c| c.is_ascii_graphic() && *c != ':').take(64).collect();
        let mut options = Vec::with_capacity(8);
        for (user, passwd) in [
            ("all-proxy-user", "all-proxy-passwd"),
            ("http-proxy-user", "http-proxy-passwd"),
            ("https-proxy-user", "https-proxy-passwd"),
            ("ftp-proxy-user", "ftp-proxy-passwd"),
        ] {
            options.push((user, tag.clone()));
            options.push((passwd, "-".to_string()));
        }
        options
    }

    /// The counters since start.
    pub fn stats(&self) -> EgressStats {
        let s = &self.shared;
        EgressStats {
            connections: s.connections.load(Ordering::Relaxed),
            forwarded: s.forwarded.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    }

    /// The latest refusal, if any.
    pub fn last_refusal(&self) -> Option<Refusal> {
        self.shared.recent.lock().unwrap_or_else(|e| e.into_inner()).back().cloned()
    }

    /// The latest refusal of a request tagged `tag` (see [`Refusal::tag`]), if it is among
    /// the recent ones.
    pub fn last_refusal_for(&self, tag: &str) -> Option<Refusal> {
        let recent = self.shared.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().find(|r| r.tag.as_deref() == Some(tag)).cloned()
    }

    /// The latest refusals (at most 32), oldest first.
    pub fn recent_refusals(&self) -> Vec<Refusal> {
        self.shared.recent.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// Stops accepting, closes every connection and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        // Aborting the server task drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

struct Server {
    policy: Arc<EgressPolicy>,
    limits: Limits,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
}

impl Server {
    async fn run(self, listener: TcpListener, mut stopped: oneshot::Receiver<()>) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        self.shared.connections.fetch_add(1, Ordering::Relaxed);
                        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
                            self.shared.failed.fetch_add(1, Ordering::Relaxed);
                            connections.spawn(reject_busy(stream));
                            continue;
                        };
                        let conn = Connection {
                            policy: Arc::clone(&self.policy),
                            limits: self.limits,
                            shared: Arc::clone(&self.shared),
                        };
                        connections.spawn(async move {
                            conn.serve(stream).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "egress proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        connections.shutdown().await;
    }
}

async fn reject_busy(mut stream: TcpStream) {
    let _ =
        stream.write_all(&response(503, "Service Unavailable", "egress proxy: too many connections\n")).await;
}
