//! A lean HTTP/1.1 keep-alive client for load: each target's request is serialised once
//! and written as is; answers are parsed with `httparse` and their bodies skipped
//! (`Content-Length`, chunked, or to the end of the connection). It does one request at
//! a time per connection, as a load generator's connection does, and nothing else: no
//! pool, no channel, no second task, so its cost per request stays near wrk's.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::client::Outcome;
use crate::target::Prepared;

/// Headers an answer may carry before it is called malformed.
const MAX_HEADERS: usize = 64;
/// The largest answer head read before it is called malformed.
const MAX_HEAD: usize = 64 * 1024;

/// The bytes of `t`'s request, once.
pub(crate) fn serialise(t: &Prepared) -> Bytes {
    let mut out = Vec::with_capacity(128 + t.body.len());
    out.extend_from_slice(t.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(t.path.to_string().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &t.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let needs_length = !t.body.is_empty() || matches!(t.method.as_str(), "POST" | "PUT" | "PATCH");
    if needs_length && !t.headers.contains_key(http::header::CONTENT_LENGTH) {
        out.extend_from_slice(format!("content-length: {}\r\n", t.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&t.body);
    Bytes::from(out)
}

/// One kept connection (a TCP stream; any byte stream in tests).
#[derive(Debug)]
pub(crate) struct Conn<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    /// The server said it closes, or the body ran to the end of the connection.
    done: bool,
}

/// Why an exchange failed.
enum Fail {
    /// The connection was closed before any byte of an answer: on a kept connection,
    /// the server closed it while idle (reopen and send again, once).
    ClosedEarly,
    Io,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr, timeout: Duration) -> Option<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr)).await.ok()?.ok()?;
        // Small requests and answers: Nagle's delay would be measured as server latency.
        let _ = stream.set_nodelay(true);
        Some(Self::over(stream))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn over(stream: S) -> Self {
        Self { stream, buf: Vec::with_capacity(8 * 1024), done: false }
    }

    pub(crate) fn is_reusable(&self) -> bool {
        !self.done
    }

    async fn fill(&mut self) -> Result<usize, Fail> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await.map_err(|_| Fail::Io)?;
        Ok(n)
    }

    /// Sends `request` and reads the whole answer: its status.
    async fn exchange(&mut self, request: &[u8], head_only: bool) -> Result<u16, Fail> {
        self.buf.clear();
        self.stream.write_all(request).await.map_err(|_| Fail::ClosedEarly)?;
        loop {
            // The head.
            let (status, head_len, length) = loop {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut res = httparse::Response::new(&mut headers);
                match res.parse(&self.buf) {
                    // A head past the limit is refused even when it came whole in the read
                    // that crossed it, so that the limit does not depend on how reads fall.
                    Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => return Err(Fail::Io),
                    Ok(httparse::Status::Complete(len)) => {
                        let status = res.code.unwrap_or(0);
                        // httparse takes any three digits; 000 to 099 are no HTTP status, and
                        // counting them as successes would hide a broken server.
                        if status < 100 {
                            return Err(Fail::Io);
                        }
                        let mut length = Length::ToEnd;
                        for h in res.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                let n = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok());
                                length = Length::Exactly(n.ok_or(Fail::Io)?);
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                                && h.value.to_ascii_lowercase().ends_with(b"chunked")
                            {
                                length = Length::Chunked;
                            } else if h.name.eq_ignore_ascii_case("connection")
                                && h.value.eq_ignore_ascii_case(b"close")
                            {
                                self.done = true;
                            }
                        }
                        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
                            length = Length::Exactly(0);
                        }
                        break (status, len, length);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.buf.len() > MAX_HEAD {
                            return Err(Fail::Io);
                        }
                        let before = self.buf.len();
                        if self.fill().await? == 0 {
                            return Err(if before == 0 { Fail::ClosedEarly } else { Fail::Io });
                        }
                    }
                    Err(_) => return Err(Fail::Io),
                }
            };
            self.buf.drain(..head_len);
            match length {
                Length::Exactly(n) => self.skip(n).await?,
                Length::Chunked => self.skip_chunked().await?,
                Length::ToEnd => {
                    // The body read with the head goes first, so that the buffer is never
                    // grown to hold body bytes while reading on.
                    self.buf.clear();
                    while self.fill().await? > 0 {
                        self.buf.clear();
                    }
                    self.done = true;
                }
            }
            // 1xx answers come before the real one.
            if !(100..200).contains(&status) {
                return Ok(status);
            }
        }
    }

    /// Skips a chunked body, trailers included.
    async fn skip_chunked(&mut self) -> Result<(), Fail> {
        loop {
            let line_end = loop {
                if let Some(at) = find_crlf(&self.buf) {
                    break at;
                }
                if self.buf.len() > MAX_HEAD || self.fill().await? == 0 {
                    return Err(Fail::Io);
                }
            };
            let line = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| Fail::Io)?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| Fail::Io)?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let end = loop {
                        if let Some(at) = find_crlf(&self.buf) {
                            break at;
                        }
                        if self.buf.len() > MAX_HEAD || self.fill().await? == 0 {
                            return Err(Fail::Io);
                        }
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        return Ok(());
                    }
                }
            }
            self.skip(size).await?;
            while self.buf.len() < 2 {
                if self.fill().await? == 0 {
                    return Err(Fail::Io);
                }
            }
            if &self.buf[..2] != b"\r\n" {
                return Err(Fail::Io);
            }
            self.buf.drain(..2);
        }
    }

    /// Skips `n` body bytes, discarding as they come: a large body never accumulates.
    async fn skip(&mut self, mut n: usize) -> Result<(), Fail> {
        loop {
            let take = n.min(self.buf.len());
            self.buf.drain(..take);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(Fail::Io);
            }
        }
    }
}

/// A kept connection's answer reader over any byte stream, as a run reads answers: for
/// the fuzz target `h1_response` (in `fuzz/`), not for use.
#[doc(hidden)]
#[derive(Debug)]
pub struct AnswerReader<S>(Conn<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AnswerReader<S> {
    /// The largest answer head read before it is called malformed.
    pub const MAX_HEAD: usize = MAX_HEAD;

    /// A reader over `stream`, as a freshly opened connection.
    pub fn new(stream: S) -> Self {
        Self(Conn::over(stream))
    }

    /// Writes `request`, then reads one whole answer (1xx answers before it included):
    /// its status, or `None` where a run counts an I/O error.
    pub async fn exchange(&mut self, request: &[u8], head_only: bool) -> Option<u16> {
        self.0.exchange(request, head_only).await.ok()
    }

    /// Bytes read past the last answer and not yet used.
    pub fn buffered(&self) -> usize {
        self.0.buf.len()
    }

    /// What the read buffer holds in memory, in bytes.
    pub fn capacity(&self) -> usize {
        self.0.buf.capacity()
    }

    /// Whether a run would send its next request on this connection.
    pub fn is_reusable(&self) -> bool {
        self.0.is_reusable()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.0.stream
    }
}

enum Length {
    Exactly(usize),
    Chunked,
    ToEnd,
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Sends `t` on `slot`'s connection (opening one when there is none), within `deadline`.
pub(crate) async fn send(
    slot: &mut Option<Conn>,
    t: &Prepared,
    request: &[u8],
    addr: SocketAddr,
    deadline: Instant,
) -> Outcome {
    let head_only = t.method == http::Method::HEAD;
    for attempt in 0..2 {
        let reused = slot.is_some();
        if slot.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match Conn::open(addr, left).await {
                Some(c) => *slot = Some(c),
                None => return Outcome::Connect,
            }
        }
        let Some(conn) = slot.as_mut() else { return Outcome::Connect };
        let outcome = match tokio::time::timeout_at(deadline, conn.exchange(request, head_only)).await {
            Err(_) => Outcome::Timeout,
            Ok(Err(Fail::ClosedEarly)) if reused && attempt == 0 => {
                *slot = None;
                continue;
            }
            Ok(Err(_)) => Outcome::Io,
            Ok(Ok(status)) if status >= 400 => Outcome::Status(status),
            Ok(Ok(_)) => Outcome::Ok,
        };
        if matches!(outcome, Outcome::Timeout | Outcome::Io) || !slot.as_ref().is_some_and(Conn::is_reusable)
        {
            // A late answer may still come: never reuse a connection with one pending.
            *slot = None;
        }
        return outcome;
    }
    Outcome::Io
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn server(answers: &'static [&'static [u8]]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for a in answers {
                let _ = s.read(&mut buf).await.unwrap();
                // Split the answer in two writes to exercise partial reads.
                let (x, y) = a.split_at(a.len() / 2);
                s.write_all(x).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(y).await.unwrap();
            }
        });
        addr
    }

    fn prepared(url: &str) -> Prepared {
        crate::target::parse(&crate::Target::get(url)).ok().unwrap().into_prepared(0)
    }

    #[tokio::test]
    async fn lengths_chunks_and_continues_are_read_whole_on_one_connection() {
        let addr = server(&[
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        ])
        .await;
        let t = prepared(&format!("http://{addr}/x?y=1"));
        let req = serialise(&t);
        assert!(req.starts_with(b"GET /x?y=1 HTTP/1.1\r\nhost: 127.0.0.1:"), "{req:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut slot = None;
        assert_eq!(send(&mut slot, &t, &req, addr, deadline).await, Outcome::Ok);
        assert_eq!(send(&mut slot, &t, &req, addr, deadline).await, Outcome::Status(503));
        assert_eq!(send(&mut slot, &t, &req, addr, deadline).await, Outcome::Ok);
        assert!(slot.is_some(), "kept alive");
        assert_eq!(send(&mut slot, &t, &req, addr, deadline).await, Outcome::Ok);
        assert!(slot.is_none(), "closed as the server said");
    }

    /// An answer as a server may frame it.
    fn answer(status: u16, body: &[u8], chunks: Option<&[usize]>) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} X\r\n").into_bytes();
        let no_body = status == 204;
        match chunks {
            Some(sizes) if !no_body => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = body;
                for &n in sizes.iter().chain(std::iter::once(&usize::MAX)) {
                    let n = n.clamp(1, rest.len().max(1)).min(rest.len());
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            _ if no_body => out.extend_from_slice(b"\r\n"),
            _ => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the framing and however the bytes arrive, each answer is read whole,
        /// its status is the one sent, and the connection stays usable for the next.
        #[test]
        fn answers_are_framed_exactly(
            answers in proptest::collection::vec(
                (
                    proptest::sample::select(vec![200u16, 204, 404, 503]),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                    proptest::option::of(proptest::collection::vec(1usize..80, 0..6)),
                ),
                1..8,
            ),
            cuts in proptest::collection::vec(1usize..40, 1..20),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (client, mut server) = tokio::io::duplex(1 << 16);
                let wire: Vec<Vec<u8>> =
                    answers.iter().map(|(s, b, c)| answer(*s, b, c.as_deref())).collect();
                let cuts2 = cuts.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 1024];
                    for bytes in wire {
                        // Answer only once the request is in, as a server does.
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            let n = server.read(&mut buf).await.unwrap();
                            seen.extend_from_slice(&buf[..n]);
                        }
                        seen.clear();
                        let mut rest = &bytes[..];
                        let mut k = 0;
                        while !rest.is_empty() {
                            let n = cuts2[k % cuts2.len()].min(rest.len());
                            server.write_all(&rest[..n]).await.unwrap();
                            tokio::task::yield_now().await;
                            rest = &rest[n..];
                            k += 1;
                        }
                    }
                });
                let mut conn = Conn::over(client);
                for (status, _, _) in &answers {
                    let got = conn.exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", false).await;
                    assert!(matches!(got, Ok(s) if s == *status), "expected {status}");
                    assert!(conn.buf.is_empty() && !conn.done);
                }
            });
        }
    }

    #[tokio::test]
    async fn absurd_sizes_fail_the_request_not_the_generator() {
        let addr =
            server(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab"]).await;
        let t = prepared(&format!("http://{addr}/"));
        let req = serialise(&t);
        let mut slot = None;
        // The server sends 2 of 2^64 - 1 bytes and closes: a failed request, nothing
        // held, no overflow.
        let deadline = Instant::now() + Duration::from_millis(300);
        let got = send(&mut slot, &t, &req, addr, deadline).await;
        assert!(matches!(got, Outcome::Io | Outcome::Timeout), "{got:?}");
        assert!(slot.is_none());
    }

    /// A head of `len` bytes, sent at once: the reader takes it in reads of its own sizes.
    async fn read_head_of(len: usize) -> Result<u16, Fail> {
        let mut head = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-pad: ".to_vec();
        head.resize(len - 4, b'p');
        head.extend_from_slice(b"\r\n\r\n");
        let (client, mut server) = tokio::io::duplex(4 * MAX_HEAD);
        server.write_all(&head).await.unwrap();
        Conn::over(client).exchange(b"GET / HTTP/1.1\r\n\r\n", false).await
    }

    #[tokio::test]
    async fn heads_past_the_limit_are_refused_however_they_arrive() {
        // Found by the h1_response fuzz target: a head past MAX_HEAD that arrived whole
        // in the read crossing the limit was taken.
        assert!(matches!(read_head_of(MAX_HEAD).await, Ok(200)));
        assert!(matches!(read_head_of(MAX_HEAD + 100).await, Err(Fail::Io)));
    }

    #[tokio::test]
    async fn statuses_under_100_are_malformed_answers() {
        // Found by the h1_response fuzz target: `HTTP/1.1 000` read as status 0, which a
        // run counted as a success.
        for line in ["000 Zero", "099 Low", "100 Continue\r\n\r\nHTTP/1.1 042 Late"] {
            let (client, mut server) = tokio::io::duplex(1024);
            server
                .write_all(format!("HTTP/1.1 {line}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let got = Conn::over(client).exchange(b"GET / HTTP/1.1\r\n\r\n", false).await;
            assert!(matches!(got, Err(Fail::Io)), "{line:?}");
        }
    }

    #[tokio::test]
    async fn a_body_to_the_close_is_not_held_while_reading_on() {
        // Found by the h1_response fuzz target: the body bytes that came with the head
        // stayed in the buffer while the rest was read, which doubled the buffer (up to
        // four heads' worth).
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        answer.resize(40_000, b'b');
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(&answer).await.unwrap();
        server.shutdown().await.unwrap();
        let mut conn = Conn::over(client);
        let before = conn.buf.capacity();
        assert!(matches!(conn.exchange(b"GET / HTTP/1.1\r\n\r\n", false).await, Ok(200)));
        assert!(conn.done && conn.buf.is_empty());
        assert_eq!(conn.buf.capacity(), before, "the buffer grew to hold a skipped body");
    }

    #[test]
    fn bodies_get_a_length() {
        let mut t = prepared("http://127.0.0.1:1/p");
        t.method = http::Method::POST;
        t.body = Bytes::from_static(b"{}");
        let req = serialise(&t);
        assert!(req.ends_with(b"content-length: 2\r\n\r\n{}"), "{req:?}");
    }
}
