//! One client connection of the egress proxy: read the request, check and connect, then
//! relay bytes until both sides are done or the exchange goes idle.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, copy_bidirectional};
use tokio::net::TcpStream;

use super::request::{Answer, Request, parse_request, proxy_user};
use super::{Limits, Shared};
use crate::ErrorKind;
use crate::egress::http::{Head, HeadError, hop_by_hop, read_head, response, write_head};
use crate::egress::policy::EgressPolicy;

pub(super) struct Connection {
    pub(super) policy: Arc<EgressPolicy>,
    pub(super) limits: Limits,
    pub(super) shared: Arc<Shared>,
}

impl Connection {
    pub(super) async fn serve(self, mut client: TcpStream) {
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
        relay(client, &mut upstream, self.limits.idle_timeout).await;
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

fn describe(e: &HeadError) -> String {
    match e {
        HeadError::Closed => "closed without a response".into(),
        HeadError::TooLarge => "response head too large".into(),
        HeadError::Malformed(what) => format!("malformed {what}"),
        HeadError::Io(e) => e.to_string(),
    }
}

/// Copies both ways until both sides are done, or until no byte has moved in either
/// direction for between `idle` and twice `idle`. Errors are the peers going away
/// mid-transfer; each side sees its own.
async fn relay(client: &mut TcpStream, upstream: &mut TcpStream, idle: Duration) {
    let activity = AtomicU64::new(0);
    let mut client = Tracked { inner: client, activity: &activity };
    let copy = copy_bidirectional(&mut client, upstream);
    let watchdog = async {
        let mut seen = 0;
        loop {
            tokio::time::sleep(idle).await;
            let now = activity.load(Ordering::Relaxed);
            if now == seen {
                return;
            }
            seen = now;
        }
    };
    tokio::select! {
        _ = copy => {}
        () = watchdog => tracing::debug!(?idle, "egress proxy closed an idle connection"),
    }
}

/// The client side of a relay, counting the reads and writes that move bytes.
struct Tracked<'a> {
    inner: &'a mut TcpStream,
    activity: &'a AtomicU64,
}

impl Tracked<'_> {
    fn touch(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut *self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut *self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
