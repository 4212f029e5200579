//! A minimal HTTP BitTorrent tracker (BEP 3, compact peers per BEP 23) on loopback.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::bencode::Value;
use super::escape::{hex, percent_decode};
use crate::{Error, Result};

/// The re-announce interval the tracker asks for, in seconds (`interval` and
/// `min interval`): short, so a client that asked before a seeder arrived asks again soon.
pub const ANNOUNCE_INTERVAL_SECS: i64 = 1;
/// The most bytes of request head (request line and headers) the tracker reads.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most headers a request may carry.
const MAX_HEADERS: usize = 64;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The most peers one answer lists, whatever `numwant` asks for.
const MAX_NUMWANT: usize = 200;
const DEFAULT_NUMWANT: usize = 50;

/// A peer as the tracker knows it.
#[derive(Debug, Clone)]
struct Peer {
    addr: SocketAddr,
    left: Option<u64>,
}

#[derive(Debug, Default)]
struct Swarm {
    /// By peer id, in arrival order of their first announce.
    peers: Vec<(Vec<u8>, Peer)>,
    announces: u64,
}

#[derive(Debug, Default)]
struct State {
    swarms: Mutex<HashMap<[u8; 20], Swarm>>,
    announces: AtomicU64,
}

impl State {
    fn swarms(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 20], Swarm>> {
        self.swarms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A BitTorrent tracker on `127.0.0.1`, in process, for swarms of test peers.
///
/// `GET /announce?info_hash=…&peer_id=…&port=…` records the peer under the info hash
/// (its IP is always the address the request came from, never the `ip` parameter) and
/// answers with the other peers of that swarm: compact 6-byte entries unless the query
/// says `compact=0`, then a list of `{ip, peer id, port}` dictionaries. `event=stopped`
/// removes the peer. The answer also carries `complete`, `incomplete`, and an `interval`
/// and `min interval` of [`ANNOUNCE_INTERVAL_SECS`]. A request it cannot use gets a
/// bencoded `failure reason` naming the problem.
///
/// `info_hash` and `peer_id` are binary and percent-decoded byte by byte (`%XX`; every
/// other character, `+` included, is itself). Request heads are capped at
/// [`MAX_HEAD_BYTES`]. Dropping the tracker stops it.
///
/// # Example
///
/// ```no_run
/// use mltb_testkit::{Tracker, TorrentBuilder};
///
/// # async fn demo() -> mltb_testkit::Result<()> {
/// let tracker = Tracker::start().await?;
/// let torrent = TorrentBuilder::single("f.bin", vec![0u8; 1000])
///     .announce(tracker.announce_url())
///     .build()?;
/// // … a seeder and a leecher announce …
/// assert!(tracker.announces_for(&torrent.info_hash()) > 0);
/// println!("peers: {:?}", tracker.peers(&torrent.info_hash()));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Tracker {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Tracker {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| Error::io("binding the tracker to 127.0.0.1:0", e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("reading the tracker's address", e))?;
        let state = Arc::new(State::default());
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), shutdown_rx));
        tracing::debug!(%addr, "tracker started");
        Ok(Self { addr, state, shutdown: Some(shutdown), task: Some(task) })
    }

    /// The address it listens on, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/announce`, for a torrent's `announce` or a magnet's `tr`.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// How many announces it has accepted, all swarms together.
    pub fn announces(&self) -> u64 {
        self.state.announces.load(Ordering::Relaxed)
    }

    /// How many announces it has accepted for `info_hash`.
    pub fn announces_for(&self, info_hash: &[u8; 20]) -> u64 {
        self.state.swarms().get(info_hash).map_or(0, |swarm| swarm.announces)
    }

    /// The peers of `info_hash`'s swarm, in the order they first announced.
    pub fn peers(&self, info_hash: &[u8; 20]) -> Vec<SocketAddr> {
        self.state
            .swarms()
            .get(info_hash)
            .map_or_else(Vec::new, |swarm| swarm.peers.iter().map(|(_, peer)| peer.addr).collect())
    }

    /// The peers of `info_hash`'s swarm that last said they have everything (`left=0`).
    pub fn seeders(&self, info_hash: &[u8; 20]) -> Vec<SocketAddr> {
        self.state.swarms().get(info_hash).map_or_else(Vec::new, |swarm| {
            swarm.peers.iter().filter(|(_, peer)| peer.left == Some(0)).map(|(_, peer)| peer.addr).collect()
        })
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

impl Drop for Tracker {
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
    // Dropping the set when the loop ends aborts every open connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let state = Arc::clone(&state);
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let response = handle(&state, remote, &req);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let served = http1::Builder::new()
                            .max_buf_size(MAX_HEAD_BYTES)
                            .max_headers(MAX_HEADERS)
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEAD_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(e) = served {
                            tracing::debug!(error = %e, "tracker connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: pause rather than spin.
                    tracing::warn!(error = %e, "tracker accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

fn handle<B>(state: &State, remote: SocketAddr, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, b"GET only\n".to_vec());
    }
    if req.uri().path() != "/announce" {
        return reply(StatusCode::NOT_FOUND, b"404 Not Found\n".to_vec());
    }
    let body = match Announce::parse(req.uri().query().unwrap_or("")) {
        Ok(announce) => announce_answer(state, remote, &announce),
        Err(reason) => {
            tracing::debug!(%remote, %reason, "tracker refused an announce");
            Value::dict([("failure reason", Value::from(reason))])
        }
    };
    reply(StatusCode::OK, body.encode())
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let len = body.len();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// What one announce says.
#[derive(Debug)]
struct Announce {
    info_hash: [u8; 20],
    peer_id: Vec<u8>,
    port: u16,
    left: Option<u64>,
    event: Option<String>,
    compact: bool,
    numwant: usize,
}

impl Announce {
    fn parse(query: &str) -> std::result::Result<Self, String> {
        let mut fields: HashMap<&str, Vec<u8>> = HashMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)
                .ok_or_else(|| format!("{key}: {value:?} has a '%' without two hex digits after it"))?;
            fields.insert(key, value);
        }
        let text = |key: &str| fields.get(key).map(|v| String::from_utf8_lossy(v).into_owned());
        let number = |key: &str| -> std::result::Result<Option<u64>, String> {
            text(key)
                .map(|v| v.parse::<u64>().map_err(|_| format!("{key}: {v:?} is not a number")))
                .transpose()
        };
        let info_hash = fields.get("info_hash").ok_or("missing info_hash")?;
        let info_hash: [u8; 20] = info_hash.as_slice().try_into().map_err(|_| {
            format!("info_hash: {} bytes after percent-decoding, expected 20", info_hash.len())
        })?;
        let peer_id = fields.get("peer_id").ok_or("missing peer_id")?.clone();
        if peer_id.len() != 20 {
            return Err(format!("peer_id: {} bytes after percent-decoding, expected 20", peer_id.len()));
        }
        let port = number("port")?.ok_or("missing port")?;
        let port =
            u16::try_from(port).ok().filter(|p| *p != 0).ok_or(format!("port: {port} is not 1-65535"))?;
        let compact = text("compact").as_deref() != Some("0");
        let numwant = number("numwant")?.map_or(DEFAULT_NUMWANT, |n| (n as usize).min(MAX_NUMWANT));
        Ok(Self { info_hash, peer_id, port, left: number("left")?, event: text("event"), compact, numwant })
    }
}

/// Records the announce and lists the swarm's other peers.
fn announce_answer(state: &State, remote: SocketAddr, announce: &Announce) -> Value {
    let addr = SocketAddr::new(remote.ip(), announce.port);
    let mut swarms = state.swarms();
    let swarm = swarms.entry(announce.info_hash).or_default();
    swarm.announces += 1;
    state.announces.fetch_add(1, Ordering::Relaxed);
    let known = swarm.peers.iter().position(|(id, _)| *id == announce.peer_id);
    match (announce.event.as_deref(), known) {
        (Some("stopped"), Some(i)) => {
            swarm.peers.remove(i);
        }
        (Some("stopped"), None) => {}
        (_, Some(i)) => swarm.peers[i].1 = Peer { addr, left: announce.left.or(swarm.peers[i].1.left) },
        (_, None) => swarm.peers.push((announce.peer_id.clone(), Peer { addr, left: announce.left })),
    }
    tracing::debug!(
        info_hash = %hex(&announce.info_hash), %addr, event = ?announce.event, left = ?announce.left,
        "tracker announce"
    );
    let complete = swarm.peers.iter().filter(|(_, p)| p.left == Some(0)).count();
    let incomplete = swarm.peers.len() - complete;
    let others = swarm.peers.iter().filter(|(id, _)| *id != announce.peer_id).take(announce.numwant);
    let peers = if announce.compact {
        let mut packed = Vec::new();
        for (_, peer) in others {
            // Compact entries are IPv4 only; the tracker listens on 127.0.0.1, so all are.
            if let IpAddr::V4(ip) = peer.addr.ip() {
                packed.extend_from_slice(&ip.octets());
                packed.extend_from_slice(&peer.addr.port().to_be_bytes());
            }
        }
        Value::Bytes(packed)
    } else {
        Value::List(
            others
                .map(|(id, peer)| {
                    Value::dict([
                        ("ip", Value::from(peer.addr.ip().to_string())),
                        ("peer id", Value::from(id.as_slice())),
                        ("port", Value::from(i64::from(peer.addr.port()))),
                    ])
                })
                .collect(),
        )
    };
    let count = |n: usize| Value::from(i64::try_from(n).unwrap_or(i64::MAX));
    Value::dict([
        ("complete", count(complete)),
        ("incomplete", count(incomplete)),
        ("interval", Value::from(ANNOUNCE_INTERVAL_SECS)),
        ("min interval", Value::from(ANNOUNCE_INTERVAL_SECS)),
        ("peers", peers),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::bencode::decode;
    use crate::torrent::escape::percent_encode;
    use crate::wire;

    const HASH: [u8; 20] = *b"\x00\xff%&=+ \x80abcdefghijkl";

    fn query(peer_id: &[u8; 20], port: u16, extra: &str) -> String {
        format!(
            "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&compact=1{extra}",
            percent_encode(&HASH),
            percent_encode(peer_id)
        )
    }

    async fn get(tracker: &Tracker, path: &str) -> (u16, Value) {
        let response = wire::request(tracker.addr(), "GET", path, &[], b"").await.unwrap();
        let body = decode(&response.body).unwrap_or_else(|e| panic!("{e}: {:?}", response.text()));
        (response.status, body)
    }

    #[tokio::test]
    async fn lists_other_peers_compactly_and_forgets_stopped_ones() {
        let tracker = Tracker::start().await.unwrap();
        assert_eq!(tracker.announce_url(), format!("http://{}/announce", tracker.addr()));
        let (a, b) = (*b"-AA0001-aaaaaaaaaaaa", *b"-BB0001-bbbbbbbbbbbb");

        let (status, first) = get(&tracker, &query(&a, 6001, "&left=0&event=started")).await;
        assert_eq!(status, 200);
        assert_eq!(first.get("interval").and_then(Value::as_int), Some(1));
        assert_eq!(first.get("min interval").and_then(Value::as_int), Some(1));
        assert_eq!(first.get("peers").and_then(Value::as_bytes), Some(&[][..]), "a lone peer sees nobody");
        assert_eq!(first.get("complete").and_then(Value::as_int), Some(1));

        let (_, second) = get(&tracker, &query(&b, 6002, "&left=5&event=started")).await;
        assert_eq!(second.get("peers").and_then(Value::as_bytes), Some(&[127, 0, 0, 1, 0x17, 0x71][..]));
        assert_eq!(second.get("incomplete").and_then(Value::as_int), Some(1));
        let (_, again) = get(&tracker, &query(&a, 6001, "&left=0")).await;
        assert_eq!(again.get("peers").and_then(Value::as_bytes), Some(&[127, 0, 0, 1, 0x17, 0x72][..]));

        let addr = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert_eq!(tracker.peers(&HASH), [addr(6001), addr(6002)]);
        assert_eq!(tracker.seeders(&HASH), [addr(6001)]);
        assert_eq!(tracker.announces_for(&HASH), 3);
        assert_eq!(tracker.announces_for(&[0; 20]), 0);
        assert!(tracker.peers(&[0; 20]).is_empty());

        get(&tracker, &query(&a, 6001, "&event=stopped")).await;
        assert_eq!(tracker.peers(&HASH), [addr(6002)]);
        assert_eq!(tracker.announces(), 4);
    }

    #[tokio::test]
    async fn answers_the_dictionary_form_when_not_compact_and_ignores_the_ip_parameter() {
        let tracker = Tracker::start().await.unwrap();
        let (a, b) = (*b"-AA0001-aaaaaaaaaaaa", *b"-BB0001-bbbbbbbbbbbb");
        get(&tracker, &query(&a, 7000, "&ip=203.0.113.9")).await;
        let (_, answer) = get(&tracker, &format!("{}&compact=0", query(&b, 7001, ""))).await;
        let peers = answer.get("peers").and_then(Value::as_list).unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].get("ip").and_then(Value::as_str), Some("127.0.0.1"));
        assert_eq!(peers[0].get("port").and_then(Value::as_int), Some(7000));
        assert_eq!(peers[0].get("peer id").and_then(Value::as_bytes), Some(&a[..]));
    }

    #[tokio::test]
    async fn bad_announces_get_a_failure_reason_naming_the_field() {
        let tracker = Tracker::start().await.unwrap();
        let id = percent_encode(b"-AA0001-aaaaaaaaaaaa");
        let hash = percent_encode(&HASH);
        for (path, reason) in [
            (format!("/announce?peer_id={id}&port=1"), "missing info_hash"),
            (format!("/announce?info_hash=abc&peer_id={id}&port=1"), "info_hash: 3 bytes"),
            (format!("/announce?info_hash=%zz&peer_id={id}&port=1"), "info_hash: \"%zz\""),
            (format!("/announce?info_hash={hash}&port=1"), "missing peer_id"),
            (format!("/announce?info_hash={hash}&peer_id=x&port=1"), "peer_id: 1 bytes"),
            (format!("/announce?info_hash={hash}&peer_id={id}"), "missing port"),
            (format!("/announce?info_hash={hash}&peer_id={id}&port=70000"), "port: 70000"),
            (format!("/announce?info_hash={hash}&peer_id={id}&port=1&left=x"), "left: \"x\""),
        ] {
            let (status, answer) = get(&tracker, &path).await;
            assert_eq!(status, 200);
            let got = answer.get("failure reason").and_then(Value::as_str).unwrap_or_default();
            assert!(got.contains(reason), "{path}: {reason:?} not in {got:?}");
        }
        assert_eq!(tracker.announces(), 0);
        let response = wire::request(tracker.addr(), "GET", "/scrape", &[], b"").await.unwrap();
        assert_eq!(response.status, 404);
    }

    #[tokio::test]
    async fn refuses_an_oversized_head_and_stops_on_shutdown() {
        let tracker = Tracker::start().await.unwrap();
        let addr = tracker.addr();
        let huge = "x".repeat(MAX_HEAD_BYTES + 1);
        let answer = wire::request(addr, "GET", "/announce", &[("X-Padding", &huge)], b"").await;
        // hyper answers 431 or closes the connection; either way nothing is recorded.
        if let Ok(response) = answer {
            assert_eq!(response.status, 431, "{}", response.text());
        }
        assert_eq!(tracker.announces(), 0);
        tracker.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "a stopped tracker must refuse connections"
        );
    }
}
