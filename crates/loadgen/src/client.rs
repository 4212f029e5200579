//! Connections a worker sends on: one keep-alive HTTP/1.1 connection per worker and
//! address ([`crate::h1`]), or h2c connections on hyper shared by up to [`H2_STREAMS`]
//! workers each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::target::Prepared;

/// Workers sharing one h2 connection (servers commonly allow 100 concurrent streams).
pub(crate) const H2_STREAMS: usize = 100;

/// What one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response below 400, its body read whole.
    Ok,
    /// A response of 400 or more.
    Status(u16),
    /// No whole response within the timeout.
    Timeout,
    /// The connection could not be opened.
    Connect,
    /// The connection failed during the exchange.
    Io,
}

/// One h2 connection, shared by a group of workers.
#[derive(Debug, Default)]
pub(crate) struct H2Slot {
    sender: tokio::sync::Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
}

/// A worker's connections, one per distinct address of the run.
#[derive(Debug)]
pub(crate) struct Conns {
    h1: Vec<Option<crate::h1::Conn>>,
    /// With h2: this worker's slot for each address.
    h2: Option<Vec<Arc<H2Slot>>>,
}

async fn tcp(addr: SocketAddr, timeout: Duration) -> Option<TokioIo<TcpStream>> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr)).await.ok()?.ok()?;
    // Small requests and answers: Nagle's delay would be measured as server latency.
    let _ = stream.set_nodelay(true);
    Some(TokioIo::new(stream))
}

impl Conns {
    pub(crate) fn new(endpoints: usize, h2: Option<Vec<Arc<H2Slot>>>) -> Self {
        Self { h1: (0..endpoints).map(|_| None).collect(), h2 }
    }

    /// Sends one request for `t` to `addr` and reads the whole answer, within `timeout`.
    pub(crate) async fn send(&mut self, t: &Prepared, addr: SocketAddr, timeout: Duration) -> Outcome {
        let deadline = tokio::time::Instant::now() + timeout;
        match &self.h2 {
            Some(slots) => {
                let slot = slots[t.endpoint].clone();
                send_h2(&slot, t, addr, deadline).await
            }
            None => self.send_h1(t, addr, deadline).await,
        }
    }

    async fn send_h1(&mut self, t: &Prepared, addr: SocketAddr, deadline: tokio::time::Instant) -> Outcome {
        crate::h1::send(&mut self.h1[t.endpoint], t, &t.raw, addr, deadline).await
    }
}

async fn send_h2(slot: &H2Slot, t: &Prepared, addr: SocketAddr, deadline: tokio::time::Instant) -> Outcome {
    let sender = {
        let mut guard = slot.sender.lock().await;
        if guard.as_ref().is_none_or(http2::SendRequest::is_closed) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(io) = tcp(addr, left).await else { return Outcome::Connect };
            let Ok((sender, conn)) = http2::handshake(TokioExecutor::new(), io).await else {
                return Outcome::Connect;
            };
            tokio::spawn(async move {
                let _ = conn.await;
            });
            *guard = Some(sender);
        }
        let Some(sender) = guard.as_ref() else { return Outcome::Connect };
        sender.clone()
    };
    let mut sender = sender;
    match tokio::time::timeout_at(deadline, sender.ready()).await {
        Err(_) => return Outcome::Timeout,
        Ok(Err(_)) => return Outcome::Io,
        Ok(Ok(())) => {}
    }
    let mut req = Request::new(Full::new(t.body.clone()));
    *req.method_mut() = t.method.clone();
    *req.uri_mut() = t.full.clone();
    *req.headers_mut() = t.headers.clone();
    // h2 carries the authority in :authority; a Host header beside it is not allowed.
    req.headers_mut().remove(http::header::HOST);
    *req.version_mut() = http::Version::HTTP_2;
    exchange(sender.send_request(req), deadline).await
}

async fn exchange(
    response: impl Future<Output = hyper::Result<http::Response<hyper::body::Incoming>>>,
    deadline: tokio::time::Instant,
) -> Outcome {
    let whole = async {
        let response = response.await.map_err(|_| Outcome::Io)?;
        let status = response.status().as_u16();
        response.into_body().collect().await.map_err(|_| Outcome::Io)?;
        Ok::<_, Outcome>(status)
    };
    match tokio::time::timeout_at(deadline, whole).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(o)) => o,
        Ok(Ok(status)) if status >= 400 => Outcome::Status(status),
        Ok(Ok(_)) => Outcome::Ok,
    }
}
