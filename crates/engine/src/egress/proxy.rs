//! [`EgressProxy`]: a loopback HTTP forward proxy that checks every destination against an
//! [`EgressPolicy`] and connects to the address it checked.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::http::{Head, HeadError, hop_by_hop, read_head, response, write_head};
use super::policy::EgressPolicy;
use crate::{Error, ErrorKind, Result};

/// Defaults of [`EgressProxyBuilder`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_CONNECTIONS: usize = 256;
const RECENT_REFUSALS: usize = 32;
const TUNNEL_SETTLE: Duration = Duration::from_millis(500);

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

    /// How long a new tunnel holds back what the destination sends first, unless the
    /// client speaks first (500 ms by default).
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
    /// this proxy as `CONNECT` tunnels: `--all-proxy=http://127.0.0.1:PORT` and
    /// `--proxy-method=tunnel`. With aria2's default method (`get`) an FTP download would
    /// be sent as `GET ftp://…`, which this proxy does not forward.
    pub fn aria2_options(&self) -> Vec<String> {
        vec![format!("--all-proxy={}", self.url()), "--proxy-method=tunnel".to_string()]
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

/// What a request asks for.
enum Request {
    Tunnel { host: String, port: u16 },
    Forward { host: String, port: u16, start: String },
}

/// A request that is answered with an error status instead of being forwarded.
struct Answer {
    status: u16,
    reason: &'static str,
    body: String,
}

impl Answer {
    fn new(status: u16, reason: &'static str, body: impl Into<String>) -> Self {
        Self { status, reason, body: body.into() }
    }
}

struct Connection {
    policy: Arc<EgressPolicy>,
    limits: Limits,
    shared: Arc<Shared>,
}

impl Connection {
    async fn serve(self, mut client: TcpStream) {
        let head = match tokio::time::timeout(
            self.limits.head_timeout,
            read_head(&mut client, self.limits.max_head_bytes),
        )
        .await
        {
            Ok(Ok(head)) => head,
            Ok(Err(HeadError::Closed)) | Ok(Err(HeadError::Io(_))) => return,
            Ok(Err(HeadError::TooLarge)) => {
                return self
                    .fail(
                        &mut client,
                        Answer::new(431, "Request Header Fields Too Large", "request head too large\n"),
                    )
                    .await;
            }
            Ok(Err(HeadError::Malformed(what))) => {
                return self
                    .fail(
                        &mut client,
                        Answer::new(400, "Bad Request", format!("malformed request: {what}\n")),
                    )
                    .await;
            }
            Err(_) => {
                return self
                    .fail(&mut client, Answer::new(408, "Request Timeout", "request head timed out\n"))
                    .await;
            }
        };
        if let Err(answer) = self.handle(&mut client, head).await {
            self.fail(&mut client, answer).await;
        }
    }

    async fn fail(&self, client: &mut TcpStream, answer: Answer) {
        if answer.status != 403 {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        let _ = client.write_all(&response(answer.status, answer.reason, &answer.body)).await;
        let _ = client.shutdown().await;
    }

    async fn handle(&self, client: &mut TcpStream, head: Head) -> Result<(), Answer> {
        let request = parse_request(&head.start)?;
        let (host, port) = match &request {
            Request::Tunnel { host, port } | Request::Forward { host, port, .. } => (host.as_str(), *port),
        };
        let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let tag = proxy_user(&head.headers);
        let mut upstream = self.connect(host, port, &target, tag).await?;
        self.shared.forwarded.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%target, "egress proxy forwarding");
        match request {
            Request::Tunnel { .. } => {
                if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                    return Ok(());
                }
                if !head.rest.is_empty() && upstream.write_all(&head.rest).await.is_err() {
                    return Ok(());
                }
                // See `EgressProxyBuilder::tunnel_settle`: what the destination says first
                // waits until the client has spoken or had time to read the 200.
                if head.rest.is_empty() {
                    let mut first = [0u8; 4096];
                    tokio::select! {
                        read = client.read(&mut first) => match read {
                            Ok(0) | Err(_) => return Ok(()),
                            Ok(n) => {
                                if upstream.write_all(&first[..n]).await.is_err() {
                                    return Ok(());
                                }
                            }
                        },
                        _ = tokio::time::sleep(self.limits.tunnel_settle) => {}
                    }
                }
            }
            Request::Forward { start, .. } => {
                let out = write_head(&start, &head.headers, &hop_by_hop(&head.headers));
                if upstream.write_all(&out).await.is_err() || upstream.write_all(&head.rest).await.is_err() {
                    return Err(Answer::new(502, "Bad Gateway", format!("{target} closed the connection\n")));
                }
                let reply = tokio::time::timeout(
                    self.limits.head_timeout,
                    read_head(&mut upstream, self.limits.max_head_bytes),
                )
                .await
                .map_err(|_| {
                    Answer::new(504, "Gateway Timeout", format!("{target} sent no response head in time\n"))
                })?
                .map_err(|e| {
                    Answer::new(
                        502,
                        "Bad Gateway",
                        format!("{target} sent a bad response: {}\n", describe(&e)),
                    )
                })?;
                let out = write_head(&reply.start, &reply.headers, &hop_by_hop(&reply.headers));
                if client.write_all(&out).await.is_err() || client.write_all(&reply.rest).await.is_err() {
                    return Ok(());
                }
            }
        }
        // Errors here are the peers going away mid-transfer; each side sees its own.
        let _ = copy_bidirectional(client, &mut upstream).await;
        Ok(())
    }

    /// Resolves `host`, checks every address, and connects to a checked one.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        target: &str,
        tag: Option<String>,
    ) -> Result<TcpStream, Answer> {
        let addrs: Vec<IpAddr> = match tokio::time::timeout(
            self.limits.connect_timeout,
            self.policy.resolve_checked(host),
        )
        .await
        {
            Err(_) => {
                return Err(Answer::new(504, "Gateway Timeout", format!("resolving {target} timed out\n")));
            }
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                return Err(match e.into_kind() {
                    ErrorKind::Refused { reason, .. } => {
                        self.shared.refuse(target.to_string(), reason.clone(), tag);
                        Answer::new(403, "Forbidden", format!("refused by the egress guard: {reason}\n"))
                    }
                    ErrorKind::InvalidSource { expected, .. } => Answer::new(
                        400,
                        "Bad Request",
                        format!("bad destination {target}: expected {expected}\n"),
                    ),
                    ErrorKind::Timeout { .. } => {
                        Answer::new(504, "Gateway Timeout", format!("resolving {target} timed out\n"))
                    }
                    other => Answer::new(502, "Bad Gateway", format!("{other}\n")),
                });
            }
        };
        let mut last = None;
        for ip in addrs {
            match tokio::time::timeout(self.limits.connect_timeout, TcpStream::connect((ip, port))).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => last = Some(format!("no answer within {:?}", self.limits.connect_timeout)),
            }
        }
        Err(Answer::new(
            502,
            "Bad Gateway",
            format!("cannot connect to {target}: {}\n", last.unwrap_or_default()),
        ))
    }
}

/// The user name of `Proxy-Authorization: Basic …`, printable ASCII, at most 64 bytes.
fn proxy_user(headers: &[(String, Vec<u8>)]) -> Option<String> {
    let (_, value) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("proxy-authorization"))?;
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(credentials.trim())?;
    let user = decoded.split(|&b| b == b':').next()?;
    let user: String = user.iter().take(64).map(|&b| b as char).filter(|c| c.is_ascii_graphic()).collect();
    (!user.is_empty()).then_some(user)
}

/// Standard base64 with optional padding; `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn describe(e: &HeadError) -> String {
    match e {
        HeadError::Closed => "closed without a response".into(),
        HeadError::TooLarge => "response head too large".into(),
        HeadError::Malformed(what) => format!("malformed {what}"),
        HeadError::Io(e) => e.to_string(),
    }
}

/// Reads the request line: `CONNECT host:port HTTP/1.x`, or `METHOD http://host[:port]/path
/// HTTP/1.x` (rewritten to origin form for the destination).
fn parse_request(start: &str) -> Result<Request, Answer> {
    let bad = |what: &str| Answer::new(400, "Bad Request", format!("{what}\n"));
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected a request line \"METHOD TARGET HTTP/1.1\""));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(Answer::new(505, "HTTP Version Not Supported", "expected HTTP/1.0 or HTTP/1.1\n"));
    }
    if method == "CONNECT" {
        let (host, port) = split_authority(target, None).ok_or_else(|| bad("expected CONNECT host:port"))?;
        return Ok(Request::Tunnel { host, port });
    }
    let Some(rest) = strip_prefix_ignore_case(target, "http://") else {
        if target.contains("://") {
            return Err(Answer::new(
                501,
                "Not Implemented",
                "only http:// is forwarded; other schemes must use CONNECT (aria2: --proxy-method=tunnel)\n",
            ));
        }
        return Err(bad("expected CONNECT or an absolute http:// URL"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
    // User info has no place in a request target; it is dropped, not forwarded.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) =
        split_authority(authority, Some(80)).ok_or_else(|| bad("expected http://host[:port]/path"))?;
    Ok(Request::Forward { host, port, start: format!("{method} {path} {version}") })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `host:port`, `[v6]:port`, or (with a default port) `host` / `[v6]`.
fn split_authority(authority: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return None,
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => default_port?,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_user_names() {
        let h = |v: &str| vec![("Proxy-Authorization".to_string(), v.as_bytes().to_vec())];
        assert_eq!(proxy_user(&h("Basic dGFzay03OnNlY3JldA==")), Some("task-7".into()));
        assert_eq!(proxy_user(&h("basic dGFzay03")), Some("task-7".into()));
        assert_eq!(proxy_user(&h("Bearer dGFzay03")), None);
        assert_eq!(proxy_user(&h("Basic !!!")), None);
        assert_eq!(proxy_user(&h("Basic OnB3")), None); // ":pw", no user
        assert_eq!(proxy_user(&[]), None);
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ").unwrap(), b"hello world");
    }

    #[test]
    fn request_lines() {
        let Ok(Request::Tunnel { host, port }) = parse_request("CONNECT example.com:443 HTTP/1.1") else {
            panic!()
        };
        assert_eq!((host.as_str(), port), ("example.com", 443));
        let Ok(Request::Tunnel { host, port }) = parse_request("CONNECT [::1]:8443 HTTP/1.1") else {
            panic!()
        };
        assert_eq!((host.as_str(), port), ("::1", 8443));
        let Ok(Request::Forward { host, port, start }) =
            parse_request("GET http://u:p@Files.example:8080/a/b.iso?x=1 HTTP/1.1")
        else {
            panic!()
        };
        assert_eq!(
            (host.as_str(), port, start.as_str()),
            ("Files.example", 8080, "GET /a/b.iso?x=1 HTTP/1.1")
        );
        let Ok(Request::Forward { port, start, .. }) = parse_request("HEAD HTTP://h?q HTTP/1.0") else {
            panic!()
        };
        assert_eq!((port, start.as_str()), (80, "HEAD /?q HTTP/1.0"));
        for (line, status) in [
            ("CONNECT example.com HTTP/1.1", 400),
            ("CONNECT example.com:0 HTTP/1.1", 400),
            ("CONNECT ::1:443 HTTP/1.1", 400),
            ("GET /relative HTTP/1.1", 400),
            ("GET ftp://h/f HTTP/1.1", 501),
            ("GET http://h/ HTTP/2", 505),
            ("GET http://h/  HTTP/1.1", 400),
            ("GET http://:80/ HTTP/1.1", 400),
        ] {
            match parse_request(line) {
                Err(a) => assert_eq!(a.status, status, "{line}"),
                Ok(_) => panic!("{line} was accepted"),
            }
        }
    }
}
