//! The egress guard: the policy's reading of addresses, and the proxy that holds it on
//! every hop (redirects included), with real aria2c.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mltb_engine::ErrorKind;
use mltb_engine::egress::{AddressClass, EgressPolicy, EgressProxy, Resolver, forbidden, parse_ip_host};
use mltb_testkit::{Aria2Daemon, FileServer};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any one exchange in these tests may take.
const EXCHANGE: Duration = Duration::from_secs(20);

/// A policy that allowlists 127.0.0.1 only, as every test here does.
fn allow_loopback_one() -> EgressPolicy {
    EgressPolicy::builder().allow("127.0.0.1").build().unwrap()
}

/// A response read to end of stream.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads a whole response (the peer closes after it).
async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    tokio::time::timeout(EXCHANGE, stream.read_to_end(&mut raw))
        .await
        .expect("a reply in time")
        .expect("read");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    Reply { status, head, body: raw[end + 4..].to_vec() }
}

/// Sends `head` (without the blank line) to the proxy and reads the answer.
async fn through(proxy: &EgressProxy, head: &str) -> Reply {
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect to the proxy");
    stream.write_all(format!("{head}\r\n\r\n").as_bytes()).await.unwrap();
    read_reply(&mut stream).await
}

/// A listener on 127.0.0.2 (loopback, and not allowlisted) that counts the connections it
/// gets: the place a refused request would have reached.
struct Trap {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    _task: tokio::task::JoinHandle<()>,
}

impl Trap {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2:0");
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nSECRET")
                    .await;
            }
        });
        Self { addr, hits, _task: task }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A server that answers every request with the request head it received as its body.
async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
                    buf.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&buf).await;
            });
        }
    });
    (addr, task)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn forwards_plain_http_to_an_allowed_server() {
    let body = pattern(300_000);
    let server = FileServer::builder().file("/a.bin", body.clone()).start().await.unwrap();
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let url = server.url("/a.bin");
    let reply = through(&proxy, &format!("GET {url} HTTP/1.1\r\nHost: {}", server.addr())).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert_eq!(reply.body, body);
    assert_eq!(reply.header("connection"), Some("close"));
    let reply =
        through(&proxy, &format!("GET {url} HTTP/1.1\r\nHost: {}\r\nRange: bytes=10-19", server.addr()))
            .await;
    assert_eq!(reply.status, 206, "{}", reply.head);
    assert_eq!(reply.body, body[10..20]);
    let stats = proxy.stats();
    assert_eq!((stats.forwarded, stats.refused), (2, 0), "{stats:?}");
    assert_eq!(server.requests_for("/a.bin"), 2);
}

#[tokio::test]
async fn tunnels_connect_to_an_allowed_server() {
    let body = pattern(70_000);
    let server = FileServer::builder().file("/t.bin", body.clone()).start().await.unwrap();
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", server.addr()).as_bytes())
        .await
        .unwrap();
    let mut established = [0u8; 39];
    tokio::time::timeout(EXCHANGE, stream.read_exact(&mut established)).await.unwrap().unwrap();
    assert_eq!(&established, b"HTTP/1.1 200 Connection established\r\n\r\n");
    stream
        .write_all(
            format!("GET /t.bin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr()).as_bytes(),
        )
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, body);
}

#[tokio::test]
async fn refuses_loopback_that_is_not_allowlisted_in_every_form() {
    let trap = Trap::start().await;
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let port = trap.addr.port();
    let mut expected = 0;
    for head in [
        format!("GET http://127.0.0.2:{port}/x HTTP/1.1\r\nHost: 127.0.0.2"),
        format!("GET http://0x7f000002:{port}/x HTTP/1.1"),
        format!("GET http://2130706434:{port}/x HTTP/1.1"),
        format!("GET http://0177.0.0.2:{port}/x HTTP/1.1"),
        format!("GET http://127.2:{port}/x HTTP/1.1"),
        format!("CONNECT 127.0.0.2:{port} HTTP/1.1"),
        format!("CONNECT [::ffff:7f00:2]:{port} HTTP/1.1"),
        format!("CONNECT [::1]:{port} HTTP/1.1"),
        "CONNECT 169.254.169.254:80 HTTP/1.1".to_string(),
        format!("CONNECT 10.0.0.1:{port} HTTP/1.1"),
    ] {
        let reply = through(&proxy, &head).await;
        expected += 1;
        assert_eq!(reply.status, 403, "{head}: {}", reply.head);
        let body = String::from_utf8_lossy(&reply.body);
        assert!(body.starts_with("refused by the egress guard: "), "{head}: {body}");
        assert_eq!(proxy.stats().refused, expected);
    }
    assert_eq!(trap.hits(), 0, "a refused request reached 127.0.0.2");
    let refusals = proxy.recent_refusals();
    assert_eq!(refusals.len(), 10);
    assert_eq!(refusals[0].target, format!("127.0.0.2:{port}"));
    assert_eq!(refusals[0].reason, "127.0.0.2 is a loopback address");
    assert_eq!(refusals[6].reason, "::ffff:127.0.0.2 embeds 127.0.0.2, a loopback address");
    assert_eq!(proxy.last_refusal().unwrap().reason, "10.0.0.1 is a private address");
    let err = proxy.last_refusal().unwrap().to_error();
    assert!(matches!(err.kind(), ErrorKind::Refused { .. }), "{err}");
}

#[tokio::test]
async fn a_redirect_to_a_forbidden_address_is_refused_at_its_hop() {
    let trap = Trap::start().await;
    let target = format!("http://127.0.0.2:{}/x", trap.addr.port());
    let server = FileServer::builder().redirect("/hop", target.clone()).start().await.unwrap();
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    // The first hop is allowed and answers with the redirect...
    let reply =
        through(&proxy, &format!("GET {} HTTP/1.1\r\nHost: {}", server.url("/hop"), server.addr())).await;
    assert_eq!(reply.status, 302);
    let location = reply.header("location").expect("a Location").to_string();
    assert_eq!(location, target);
    // ...and the client's next hop, through the proxy as every request is, is refused.
    let reply = through(&proxy, &format!("GET {location} HTTP/1.1\r\nHost: 127.0.0.2")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(trap.hits(), 0);
    assert_eq!(proxy.stats().refused, 1);
}

#[tokio::test]
async fn connects_to_the_address_it_checked_when_dns_changes() {
    let trap = Trap::start().await;
    let server = FileServer::builder().file("/f", b"checked".to_vec()).start().await.unwrap();
    // The first answer is allowed; every later one is forbidden (a rebinding attack).
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let resolver = Resolver::from_fn(move |host| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let answer = match (host, n) {
            ("rebind.test", 0) => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
            ("rebind.test", _) => Ok(vec![IpAddr::from([127, 0, 0, 2])]),
            ("both.test", _) => Ok(vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2])]),
            _ => Err(std::io::Error::other("no such host")),
        };
        Box::pin(async move { answer })
    });
    let policy = EgressPolicy::builder().allow("127.0.0.1").resolver(resolver).build().unwrap();
    let proxy = EgressProxy::start(policy).await.unwrap();
    let port = server.addr().port();
    let reply =
        through(&proxy, &format!("GET http://rebind.test:{port}/f HTTP/1.1\r\nHost: rebind.test")).await;
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"checked"[..]), "{}", reply.head);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the name was resolved once, and that answer used");
    // The next request resolves again and gets the forbidden answer.
    let reply = through(&proxy, &format!("CONNECT rebind.test:{} HTTP/1.1", trap.addr.port())).await;
    assert_eq!(reply.status, 403);
    assert_eq!(proxy.last_refusal().unwrap().reason, "rebind.test resolves to 127.0.0.2, a loopback address");
    // One forbidden address among allowed ones is enough to refuse.
    let reply = through(&proxy, &format!("GET http://both.test:{port}/f HTTP/1.1")).await;
    assert_eq!(reply.status, 403);
    let reply = through(&proxy, &format!("GET http://nowhere.test:{port}/f HTTP/1.1")).await;
    assert_eq!(reply.status, 502);
    assert_eq!(trap.hits(), 0);
}

#[tokio::test]
async fn forwards_in_origin_form_without_hop_by_hop_fields_or_proxy_credentials() {
    let (addr, _server) = echo_server().await;
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let reply = through(
        &proxy,
        &format!(
            "GET http://{addr}/p/q?x=1 HTTP/1.1\r\nHost: {addr}\r\nProxy-Authorization: Basic cHJveHk6aHVudGVyMg==\r\n\
             Authorization: Basic dXNlcjpwdw==\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nRange: bytes=0-"
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = String::from_utf8_lossy(&reply.body);
    assert!(seen.starts_with("GET /p/q?x=1 HTTP/1.1\r\n"), "{seen}");
    assert!(!seen.contains("Proxy-Authorization") && !seen.contains("cHJveHk6aHVudGVyMg"), "{seen}");
    assert!(!seen.contains("X-Hop") && !seen.contains("keep-alive"), "{seen}");
    assert!(
        seen.contains("Authorization: Basic dXNlcjpwdw==\r\n"),
        "the origin's own credentials pass: {seen}"
    );
    assert!(seen.contains("Range: bytes=0-\r\n") && seen.contains("Connection: close\r\n"), "{seen}");
    // The destination's keep-alive is replaced too: the client must not reuse the connection.
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("keep-alive"), None);
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let proxy = EgressProxy::builder(allow_loopback_one()).max_head_bytes(1024).start().await.unwrap();
    let big = format!("GET http://127.0.0.1:1/ HTTP/1.1\r\nX-Big: {}", "a".repeat(2000));
    assert_eq!(through(&proxy, &big).await.status, 431);
    assert_eq!(through(&proxy, "GET /relative HTTP/1.1").await.status, 400);
    assert_eq!(through(&proxy, "GET ftp://127.0.0.1/f HTTP/1.1").await.status, 501);
    assert_eq!(through(&proxy, "CONNECT bad_host!:80 HTTP/1.1").await.status, 400);
    // 127.0.0.1 is allowed, but nothing listens on port 1.
    assert_eq!(through(&proxy, "CONNECT 127.0.0.1:1 HTTP/1.1").await.status, 502);
    let stats = proxy.stats();
    assert_eq!((stats.failed, stats.refused, stats.forwarded), (5, 0, 0), "{stats:?}");
}

#[tokio::test]
async fn a_slow_client_is_cut_off() {
    let proxy = EgressProxy::builder(allow_loopback_one())
        .head_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(b"GET http://127.0.0.1/ HTTP/1.1\r\n").await.unwrap();
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 408);
}

#[tokio::test]
async fn an_idle_exchange_is_closed_but_a_slow_one_is_not() {
    // A destination that accepts and then says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    // A destination that drips 10 chunks 100 ms apart: slow, never idle for 300 ms.
    let body = pattern(10_000);
    let server = FileServer::builder()
        .serve("/slow", mltb_testkit::ServedFile::new(body.clone()).drip(1000, Duration::from_millis(100)))
        .start()
        .await
        .unwrap();
    let proxy = EgressProxy::builder(allow_loopback_one())
        .idle_timeout(Duration::from_millis(300))
        .tunnel_settle(Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let reply = through(&proxy, &format!("CONNECT {silent_addr} HTTP/1.1")).await;
    assert_eq!(reply.status, 200, "the tunnel opened, then closed when idle");
    assert!(started.elapsed() < EXCHANGE);
    let reply =
        through(&proxy, &format!("GET {} HTTP/1.1\r\nHost: {}", server.url("/slow"), server.addr())).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, body, "a slow transfer is not cut off");
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_port_and_its_tunnels() {
    let server = FileServer::builder().file("/f", b"x".to_vec()).start().await.unwrap();
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let addr = proxy.addr();
    let mut tunnel = TcpStream::connect(addr).await.unwrap();
    tunnel.write_all(format!("CONNECT {} HTTP/1.1\r\n\r\n", server.addr()).as_bytes()).await.unwrap();
    let mut established = [0u8; 39];
    tokio::time::timeout(EXCHANGE, tunnel.read_exact(&mut established)).await.unwrap().unwrap();
    drop(proxy);
    // The open tunnel ends...
    let mut rest = Vec::new();
    let read =
        tokio::time::timeout(EXCHANGE, tunnel.read_to_end(&mut rest)).await.expect("the tunnel closes");
    assert!(read.is_ok_and(|n| n == 0) || rest.is_empty());
    // ...and the port stops accepting.
    let deadline = tokio::time::Instant::now() + EXCHANGE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the proxy's port still accepts");
        tokio::task::yield_now().await;
    }
}

/// One number written in base 8, 10 or 16, with leading zeros where the base allows.
fn number(value: u32, base: u8, zeros: usize, upper: bool) -> String {
    match base {
        8 => format!("0{}{value:o}", "0".repeat(zeros)),
        16 if upper => format!("0X{}{value:X}", "0".repeat(zeros)),
        16 => format!("0x{}{value:x}", "0".repeat(zeros)),
        _ => value.to_string(),
    }
}

/// `ip` in the textual forms libc accepts: 1 to 4 parts, each in any base, or IPv6 forms
/// that embed it.
fn text_form(
    ip: Ipv4Addr,
    form: u8,
    bases: [u8; 4],
    zeros: usize,
    upper: bool,
    trailing_dot: bool,
) -> String {
    let [a, b, c, d] = ip.octets().map(u32::from);
    let n = |v, i: usize| number(v, bases[i], zeros, upper);
    let bits = u32::from(ip);
    let host = match form % 8 {
        0 => n(bits, 0),
        1 => format!("{}.{}", n(a, 0), n(bits & 0xff_ffff, 1)),
        2 => format!("{}.{}.{}", n(a, 0), n(b, 1), n(bits & 0xffff, 2)),
        3 => format!("{}.{}.{}.{}", n(a, 0), n(b, 1), n(c, 2), n(d, 3)),
        4 => format!("[::ffff:{ip}]"),
        5 => format!("[::ffff:{:x}:{:x}]", bits >> 16, bits & 0xffff),
        6 => format!("[64:ff9b::{ip}]"),
        _ => format!("[2002:{:x}:{:x}::1]", bits >> 16, bits & 0xffff),
    };
    if trailing_dot && !host.starts_with('[') { format!("{host}.") } else { host }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn check_ip_never_panics(bits in any::<u128>(), v4 in any::<u32>()) {
        let policy = EgressPolicy::default();
        let _ = policy.check_ip(IpAddr::from(std::net::Ipv6Addr::from(bits)));
        let _ = policy.check_ip(IpAddr::from(Ipv4Addr::from(v4)));
    }

    #[test]
    fn loopback_in_any_textual_form_is_refused(
        low in 0u32..(1 << 24),
        form in any::<u8>(),
        bases in proptest::array::uniform4(prop::sample::select(vec![8u8, 10, 16])),
        zeros in 0usize..3,
        upper in any::<bool>(),
        trailing_dot in any::<bool>(),
        port in proptest::option::of(1u16..),
    ) {
        let ip = Ipv4Addr::from((127 << 24) | low);
        let host = text_form(ip, form, bases, zeros, upper, trailing_dot);
        let url = match port {
            Some(p) => format!("http://{host}:{p}/x"),
            None => format!("http://{host}/x"),
        };
        // No allowlist, and no name lookup: a form read as a name would not be refused.
        let err = EgressPolicy::default().check_url_syntax(&url).expect_err(&url);
        match err.kind() {
            ErrorKind::Refused { reason, .. } => prop_assert!(reason.contains("loopback"), "{url}: {reason}"),
            other => prop_assert!(false, "{url}: {other:?}"),
        }
        prop_assert_eq!(forbidden(IpAddr::V4(ip)).map(|f| f.class), Some(AddressClass::Loopback));
        // The proxy reads hosts (as aria2 sends them) with `parse_ip_host`: the same verdict.
        let read = parse_ip_host(&host).expect("a numeric host");
        prop_assert_eq!(forbidden(read).map(|f| f.class), Some(AddressClass::Loopback), "{}", host);
        prop_assert!(EgressPolicy::default().check_ip(read).is_err());
    }
}

// --- With real aria2c --------------------------------------------------------------

mod aria2 {
    use super::*;
    use serde_json::Value;

    /// `aria2.addUri` for `url` with `options` (a JSON object); the new GID.
    pub(super) async fn add_uri(daemon: &Aria2Daemon, url: &str, options: &str) -> String {
        let uris = serde_json::to_string(&[url]).unwrap();
        let answer = daemon.rpc("aria2.addUri", &[&uris, options]).await.expect("addUri");
        let v: Value = serde_json::from_str(&answer).unwrap();
        v["result"].as_str().expect("a GID").to_string()
    }

    /// Polls `tellStatus` until the download is `complete`, `error` or `removed`, within
    /// `EXCHANGE`; the final status object.
    pub(super) async fn wait_done(daemon: &Aria2Daemon, gid: &str) -> Value {
        let gid = serde_json::to_string(gid).unwrap();
        let deadline = tokio::time::Instant::now() + EXCHANGE;
        loop {
            let answer = daemon.rpc("aria2.tellStatus", &[&gid]).await.expect("tellStatus");
            let v: Value = serde_json::from_str(&answer).unwrap();
            let status = v["result"].clone();
            if matches!(status["status"].as_str(), Some("complete" | "error" | "removed")) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "download {gid} not done after {EXCHANGE:?}: {status}\n{}",
                daemon.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn aria2_downloads_through_the_proxy_and_a_redirect_to_127_0_0_2_is_refused() {
    let trap = Trap::start().await;
    let body = pattern(3 * 1024 * 1024 + 17);
    let forbidden_target = format!("http://127.0.0.2:{}/x", trap.addr.port());
    let server = FileServer::builder()
        .file("/ok.bin", body.clone())
        .redirect("/hop.bin", forbidden_target)
        .start()
        .await
        .unwrap();

    // Control: without the proxy, aria2 follows the redirect to 127.0.0.2 and gets its bytes.
    let bare = Aria2Daemon::start().await.expect("aria2c");
    let gid = aria2::add_uri(&bare, &server.url("/hop.bin"), r#"{"out":"bare.bin","max-tries":"1"}"#).await;
    let status = aria2::wait_done(&bare, &gid).await;
    assert_eq!(status["status"], "complete", "{status}");
    assert_eq!(std::fs::read(bare.download_dir().join("bare.bin")).unwrap(), b"SECRET");
    assert_eq!(trap.hits(), 1);
    drop(bare);

    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let daemon = Aria2Daemon::start_with_args(proxy.aria2_options()).await.expect("aria2c");
    // Both proxy methods: aria2's default `get`, then tunnels (what the engine uses). The
    // proxy closes each forwarded `get` exchange, so the tunnel is a connection of its own.
    for (name, method) in [("get.bin", "get"), ("tunnel.bin", "tunnel")] {
        let options = format!(r#"{{"out":"{name}","proxy-method":"{method}","max-tries":"1"}}"#);
        let gid = aria2::add_uri(&daemon, &server.url("/ok.bin"), &options).await;
        let status = aria2::wait_done(&daemon, &gid).await;
        assert_eq!(status["status"], "complete", "{method}: {status}\n{}", daemon.log_tail());
        let got = std::fs::read(daemon.download_dir().join(name)).unwrap();
        assert!(got == body, "{method}: {} bytes, not the {} served", got.len(), body.len());
    }
    let before = proxy.stats();
    assert_eq!((before.forwarded, before.refused), (2, 0), "aria2 went through the proxy: {before:?}");
    assert_eq!(server.requests_for("/ok.bin"), 2);

    // Each download tagged with its own proxy user name, as the engine does with task ids.
    for (method, code) in [("tunnel", "1"), ("get", "22")] {
        let mut options = serde_json::json!({
            "out": format!("hop-{method}.bin"), "proxy-method": method, "max-tries": "1",
        });
        for (key, value) in EgressProxy::aria2_tag_options(&format!("task-{method}")) {
            options[key] = value.into();
        }
        let options = options.to_string();
        let gid = aria2::add_uri(&daemon, &server.url("/hop.bin"), &options).await;
        let status = aria2::wait_done(&daemon, &gid).await;
        assert_eq!(status["status"], "error", "{method}: {status}");
        // aria2's words: "Proxy connection failed." (1) for a refused tunnel, "status=403"
        // (22) for a refused `get`; the proxy's record says why.
        assert_eq!(status["errorCode"], code, "{method}: {status}");
        let refusal = proxy.last_refusal_for(&format!("task-{method}")).expect("a refusal for this download");
        assert_eq!(refusal.target, format!("127.0.0.2:{}", trap.addr.port()));
        assert_eq!(refusal.reason, "127.0.0.2 is a loopback address");
    }
    assert_eq!(server.requests_for("/hop.bin"), 3, "the first hop was fetched each time");
    assert_eq!(trap.hits(), 1, "aria2 reached 127.0.0.2 through the proxy");
    assert!(proxy.recent_refusals().iter().all(|r| r.tag.is_some()));
}

#[tokio::test]
async fn aria2_options_hold_against_proxy_environment_variables() {
    let aria2c = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("aria2c"))
        .find(|p| p.is_file())
        .expect("aria2c is not on PATH: install it with `apt-get install aria2`");
    let body = pattern(50_000);
    let server = FileServer::builder().file("/f.bin", body.clone()).start().await.unwrap();
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = "http://127.0.0.1:1";
    let mut command = tokio::process::Command::new(aria2c);
    command
        .args(["--no-conf", "--quiet=true", "--max-tries=1", "--timeout=10"])
        .arg(format!("--dir={}", dir.path().display()))
        .args(proxy.aria2_options())
        .arg(server.url("/f.bin"))
        // Every variable aria2 reads, pointing elsewhere or exempting the destination.
        .env("http_proxy", nowhere)
        .env("HTTPS_PROXY", nowhere)
        .env("ftp_proxy", nowhere)
        .env("all_proxy", nowhere)
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true);
    let status = tokio::time::timeout(EXCHANGE, command.status()).await.expect("aria2c exits").unwrap();
    assert!(status.success(), "aria2c failed: {status}");
    assert!(std::fs::read(dir.path().join("f.bin")).unwrap() == body);
    assert_eq!(proxy.stats().forwarded, 1, "the download went through the proxy");
}

/// A one-file FTP server on 127.0.0.1 (enough of RFC 959 for aria2), whose `PASV` answer
/// names `pasv_host` and whose data listener is on `data_host`.
async fn ftp_server(body: Vec<u8>, data_host: Ipv4Addr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, body) = (Arc::clone(&seen), body.clone());
            tokio::spawn(async move {
                let data = TcpListener::bind((data_host, 0)).await.unwrap();
                let port = data.local_addr().unwrap().port();
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 mltb test ftp\r\n").await;
                while let Ok(Ok(Some(line))) = tokio::time::timeout(EXCHANGE, lines.next_line()).await {
                    log.lock().unwrap().push(line.clone());
                    let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
                    let [a, b, c, d] = data_host.octets();
                    let reply = match verb.as_str() {
                        "USER" => "331 password please\r\n".to_string(),
                        "PASS" => "230 in\r\n".into(),
                        "TYPE" | "MODE" => "200 ok\r\n".into(),
                        "PWD" => "257 \"/\"\r\n".into(),
                        "CWD" => "250 ok\r\n".into(),
                        "SIZE" => format!("213 {}\r\n", body.len()),
                        "PASV" => format!(
                            "227 Entering Passive Mode ({a},{b},{c},{d},{},{})\r\n",
                            port >> 8,
                            port & 0xff
                        ),
                        "REST" => "350 ok\r\n".into(),
                        "RETR" => {
                            let _ = write.write_all(b"150 sending\r\n").await;
                            match tokio::time::timeout(EXCHANGE, data.accept()).await {
                                Ok(Ok((mut conn, _))) => {
                                    let _ = conn.write_all(&body).await;
                                    drop(conn);
                                    "226 done\r\n".into()
                                }
                                _ => "425 no data connection\r\n".into(),
                            }
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => "502 not implemented\r\n".into(),
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, log)
}

#[tokio::test]
async fn aria2_ftp_goes_through_the_proxy_as_two_tunnels() {
    let body = pattern(200_000);
    let (ftp, log) = ftp_server(body.clone(), Ipv4Addr::LOCALHOST).await;
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let daemon = Aria2Daemon::start_with_args(proxy.aria2_options()).await.expect("aria2c");
    let gid = aria2::add_uri(&daemon, &format!("ftp://{ftp}/f.bin"), r#"{"max-tries":"1"}"#).await;
    let status = aria2::wait_done(&daemon, &gid).await;
    assert_eq!(status["status"], "complete", "{status}\n{:?}", log.lock().unwrap());
    assert!(std::fs::read(daemon.download_dir().join("f.bin")).unwrap() == body);
    // The control connection and the data connection were both tunnels through the proxy.
    assert_eq!(proxy.stats().forwarded, 2, "{:?}", proxy.stats());

    // An FTP server on a forbidden address is refused at the control connection.
    let trap = Trap::start().await;
    let mut options = serde_json::json!({"max-tries": "1"});
    for (key, value) in EgressProxy::aria2_tag_options("ftp-task") {
        options[key] = value.into();
    }
    let options = &options.to_string();
    let gid = aria2::add_uri(&daemon, &format!("ftp://127.0.0.2:{}/f.bin", trap.addr.port()), options).await;
    let status = aria2::wait_done(&daemon, &gid).await;
    assert_eq!(status["status"], "error", "{status}");
    assert_eq!(trap.hits(), 0);
    assert!(proxy.last_refusal_for("ftp-task").is_some());

    // aria2's default proxy method would send `GET ftp://…`, which the proxy does not forward.
    let gid = aria2::add_uri(
        &daemon,
        &format!("ftp://{ftp}/f.bin"),
        r#"{"out":"get.bin","proxy-method":"get","max-tries":"1"}"#,
    )
    .await;
    let status = aria2::wait_done(&daemon, &gid).await;
    assert_eq!(status["status"], "error", "{status}");
    assert_eq!(status["errorMessage"], "The response status is not successful. status=501", "{status}");
}

#[tokio::test]
async fn aria2_ignores_a_pasv_address_and_stays_on_the_control_host() {
    // A hostile FTP server answers PASV with 127.0.0.2 (where its data listener is): aria2
    // connects to the control connection's host instead, through the proxy, and fails;
    // nothing reaches 127.0.0.2 either way.
    let (ftp, log) = ftp_server(pattern(10), Ipv4Addr::new(127, 0, 0, 2)).await;
    let proxy = EgressProxy::start(allow_loopback_one()).await.unwrap();
    let daemon = Aria2Daemon::start_with_args(proxy.aria2_options()).await.expect("aria2c");
    let gid = aria2::add_uri(&daemon, &format!("ftp://{ftp}/f.bin"), r#"{"max-tries":"1"}"#).await;
    let status = aria2::wait_done(&daemon, &gid).await;
    assert_eq!(status["status"], "error", "{status}");
    let commands = log.lock().unwrap().clone();
    assert!(commands.iter().any(|c| c == "PASV"), "{commands:?}");
    assert!(!commands.iter().any(|c| c.starts_with("RETR")), "{commands:?}");
    // The data tunnel was asked for 127.0.0.1 (the control host), which had no listener
    // on that port: forwarded once (control), failed once (data), refused never.
    let stats = proxy.stats();
    assert_eq!((stats.forwarded, stats.failed, stats.refused), (1, 1, 0), "{stats:?}");
}

/// Polls the downloader until the download completes or fails, for at most 30 s.
async fn finished(
    d: &mltb_engine::aria2::Aria2Downloader,
    id: &mltb_engine::DownloadId,
) -> mltb_engine::DownloadStatus {
    use mltb_engine::{DownloadState, Downloader};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = d.status(id).await.unwrap_or_else(|e| panic!("status of {id}: {e}"));
        if matches!(status.state, DownloadState::Complete | DownloadState::Failed) {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} did not finish: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_daemon_given_the_proxy_goes_through_it_per_download() {
    use mltb_engine::aria2::{Aria2Downloader, Aria2Endpoint};
    use mltb_engine::{DownloadRequest, DownloadSource, DownloadState, Downloader, UrlSource};

    let trap = Trap::start().await;
    let body = pattern(300_000);
    let server = FileServer::builder()
        .file("/ok.bin", body.clone())
        .redirect("/hop.bin", format!("http://127.0.0.2:{}/x", trap.addr.port()))
        .start()
        .await
        .unwrap();
    let proxy = Arc::new(EgressProxy::start(allow_loopback_one()).await.unwrap());
    // A daemon of the operator's own (`downloads.aria2_endpoints`), started with no proxy
    // option: each download names the proxy itself.
    let daemon = Aria2Daemon::start().await.expect("aria2c (apt-get install aria2)");
    let endpoint = Aria2Endpoint::new("own", daemon.ws_url(), daemon.secret()).egress(Arc::clone(&proxy));
    let d = Aria2Downloader::endpoints(vec![endpoint], "round_robin".parse().unwrap()).await.unwrap();
    let source = |path: &str| DownloadSource::Url(UrlSource::new(server.url(path)));

    let dir = tempfile::tempdir().unwrap();
    let ok = d.start(&DownloadRequest::new(source("/ok.bin"), dir.path())).await.unwrap();
    assert_eq!(finished(&d, &ok).await.state, DownloadState::Complete);
    assert_eq!(std::fs::read(dir.path().join("ok.bin")).unwrap(), body);
    assert_eq!(proxy.stats().forwarded, 1, "the download went through the proxy");

    let hop_dir = tempfile::tempdir().unwrap();
    let hop = d.start(&DownloadRequest::new(source("/hop.bin"), hop_dir.path())).await.unwrap();
    let status = finished(&d, &hop).await;
    assert_eq!(status.state, DownloadState::Failed, "{status:?}");
    let error = status.error.expect("the refusal");
    assert!(matches!(error.kind(), ErrorKind::Refused { .. }), "{error:?}");
    assert!(error.to_string().contains("127.0.0.2 is a loopback address"), "{error}");
    assert_eq!(trap.hits(), 0, "the redirect to 127.0.0.2 was not followed");
    assert!(server.requests_for("/hop.bin") >= 1, "the first hop was fetched (aria2 tries it again)");
}
