//! Feeds a server's bytes to the load generator's HTTP/1.1 answer reader, cut into reads
//! where the fuzzer says, on one kept connection, in two ways:
//!
//! - **raw**: arbitrary bytes, then the server closes. The reader must never panic,
//!   never wait for bytes after the close, never read on after the close, keep its buffer
//!   within one head (64 KiB) plus one read, take some bytes for each answer, and give
//!   only final statuses (200 to 999).
//! - **framed**: answers a server may send (1xx first; `Content-Length`, chunked with
//!   extensions and trailers, or to the close; no body for HEAD, 204 and 304; large
//!   heads; `connection: close`; now and then a status under 100). Each must read as
//!   exactly its status and its own bytes, no more, with the connection kept exactly
//!   when the answer allows it; a head past 64 KiB, or a status that is no HTTP status,
//!   must be refused whatever the reads.
#![no_main]

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mltb_loadgen::AnswerReader;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
const MAX_HEAD: usize = AnswerReader::<Server>::MAX_HEAD;
/// The most a raw answer script holds once its chunks are repeated.
const MAX_RAW: usize = 3 * MAX_HEAD;
/// The most reads an answer is cut into (many tiny reads of a large head only cost time).
const MAX_CUTS: usize = 64;

/// A server's bytes, read by read: a read returns at most what is left of one chunk, and
/// a chunk is sent only once the request it answers (`chunks[i].0`, counted from 0) has
/// been written. After the last chunk the server closes (reads return 0 bytes) when
/// `close`, else stays silent (reads are pending).
#[derive(Debug, Default)]
struct Server {
    chunks: Vec<(usize, Vec<u8>)>,
    next: usize,
    offset: usize,
    requests: usize,
    close: bool,
    /// Bytes handed to the reader.
    sent: usize,
    /// Reads that found the connection closed.
    ends_seen: usize,
}

impl AsyncRead for Server {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        match s.chunks.get(s.next) {
            Some((answer, bytes)) if *answer < s.requests => {
                let n = (bytes.len() - s.offset).min(buf.remaining());
                buf.put_slice(&bytes[s.offset..s.offset + n]);
                s.offset += n;
                s.sent += n;
                if s.offset == bytes.len() {
                    s.next += 1;
                    s.offset = 0;
                }
                Poll::Ready(Ok(()))
            }
            None if s.close => {
                s.ends_seen += 1;
                Poll::Ready(Ok(()))
            }
            _ => Poll::Pending,
        }
    }
}

impl AsyncWrite for Server {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().requests += 1;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One exchange, polled once: the server never makes the reader wait except when it is
/// silent, so `Pending` is a reader waiting for bytes that are not coming.
fn exchange(reader: &mut AnswerReader<Server>, head_only: bool) -> Poll<Option<u16>> {
    let mut fut = pin!(reader.exchange(REQUEST, head_only));
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// The reader's memory: one head, plus the one read that may carry it past the limit,
/// in a buffer that grows by doubling from 8 KiB.
fn assert_bounded(reader: &AnswerReader<Server>) {
    assert!(reader.capacity() <= 2 * MAX_HEAD, "the read buffer grew to {} bytes", reader.capacity());
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(framed) = u.arbitrary::<bool>() else { return };
    let server = if framed { framed_answers(&mut u) } else { raw_bytes(&mut u) };
    match server {
        Ok((server, None)) => check_raw(server),
        Ok((server, Some((answers, head_only)))) => check_framed(server, &answers, &head_only),
        Err(_) => {}
    }
});

/// What a framed answer must read as: its status (`None`: refused), its length on the
/// wire, and whether the connection is kept after it.
#[derive(Debug)]
struct Expected {
    status: Option<u16>,
    len: usize,
    reusable: bool,
    /// The body runs to the close.
    to_close: bool,
}

type Script = (Server, Option<(Vec<Expected>, Vec<bool>)>);

fn raw_bytes(u: &mut Unstructured<'_>) -> Result<Script> {
    let mut server = Server { close: true, ..Server::default() };
    let mut total = 0;
    while !u.is_empty() {
        let len = usize::from(u.arbitrary::<u8>()?) + 1;
        let bytes = u.bytes(len.min(u.len()))?;
        // Mostly once; now and then many times, so that heads and bodies reach the limits.
        let times = match u.arbitrary::<u8>()? {
            b @ 240.. => 1 << (b - 239),
            _ => 1,
        };
        let chunk = bytes.repeat(times.min((MAX_RAW - total) / bytes.len().max(1)).max(1));
        total += chunk.len();
        if chunk.is_empty() || total > MAX_RAW {
            break;
        }
        server.chunks.push((0, chunk));
    }
    Ok((server, None))
}

fn check_raw(server: Server) {
    let mut reader = AnswerReader::new(server);
    let mut used = 0;
    loop {
        let ends_before = reader.get_ref().ends_seen;
        let Poll::Ready(got) = exchange(&mut reader, false) else {
            panic!("the reader waits for bytes after the server closed")
        };
        assert!(reader.get_ref().ends_seen <= ends_before + 1, "the reader read on after the close");
        assert_bounded(&reader);
        let Some(status) = got else { break };
        assert!((200..=999).contains(&status), "status {status} read as a final answer");
        let now = reader.get_ref().sent - reader.buffered();
        assert!(now > used, "an answer ({status}) read from no bytes");
        used = now;
        if !reader.is_reusable() {
            break;
        }
    }
}

/// A head: status line, the given headers, padding headers of `pad` bytes in all.
fn head(out: &mut Vec<u8>, status: u16, reason: &str, headers: &[String], pad: usize) {
    out.extend_from_slice(format!("HTTP/1.1 {status:03} {reason}\r\n").as_bytes());
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut left = pad;
    while left > 0 {
        let n = left.min(8000);
        out.extend_from_slice(b"x-pad: ");
        out.extend(std::iter::repeat_n(b'p', n));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"\r\n");
}

fn pad(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match u.int_in_range(0..=9)? {
        0 => u.int_in_range(MAX_HEAD - 300..=MAX_HEAD + 100)?,
        1 => u.int_in_range(0..=4 * 1024)?,
        _ => 0,
    })
}

fn case(u: &mut Unstructured<'_>, name: &str) -> Result<String> {
    Ok(match u.int_in_range(0..=2)? {
        0 => name.to_ascii_lowercase(),
        1 => name.to_ascii_uppercase(),
        _ => name.to_owned(),
    })
}

fn framed_answers(u: &mut Unstructured<'_>) -> Result<Script> {
    let count = u.int_in_range(1..=6)?;
    let mut server = Server::default();
    let mut answers = Vec::new();
    let mut head_only = Vec::new();
    for i in 0..count {
        let last = i + 1 == count;
        let is_head = u.ratio(1, 5)?;
        let mut bytes = Vec::new();
        let mut refused = false;
        for _ in 0..u.int_in_range(0..=2)? {
            let at = bytes.len();
            head(&mut bytes, u.int_in_range(100..=199)?, "Continue", &[], pad(u)?);
            refused |= bytes.len() - at > MAX_HEAD;
        }
        // Now and then a three-digit status that is no HTTP status (000 to 099).
        let status = if u.ratio(1, 50)? { u.int_in_range(0..=99)? } else { u.int_in_range(200..=999)? };
        refused |= status < 100;
        let no_body = is_head || status == 204 || status == 304;
        let body_len = match u.int_in_range(0..=3)? {
            0 => 0,
            1 => u.int_in_range(0..=200_000)?,
            _ => u.int_in_range(0..=300)?,
        };
        let seed = u.arbitrary::<u8>()?;
        let body: Vec<u8> = (0..body_len).map(|k| seed.wrapping_add(k as u8)).collect();
        let close_header = u.ratio(1, 6)?;
        let mut headers = Vec::new();
        if close_header {
            headers.push(format!("{}: {}", case(u, "Connection")?, case(u, "close")?));
        }
        // 0: Content-Length, 1: chunked, 2: to the close (the last answer only).
        let framing = if last { u.int_in_range(0..=2)? } else { u.int_in_range(0..=1)? };
        let mut wire_body = Vec::new();
        match framing {
            0 => {
                headers.push(format!("{}: {}", case(u, "Content-Length")?, body.len()));
                wire_body.extend_from_slice(&body);
            }
            1 => {
                let te = *u.choose(&["chunked", "Chunked", "gzip, chunked"])?;
                headers.push(format!("{}: {te}", case(u, "Transfer-Encoding")?));
                let mut rest = &body[..];
                while !rest.is_empty() {
                    let n = u.int_in_range(1..=rest.len().min(70_000))?;
                    let n = if u.is_empty() { rest.len() } else { n };
                    let size = if u.ratio(1, 4)? { format!("{n:X}") } else { format!("{n:x}") };
                    let ext = if u.ratio(1, 4)? { ";name=value" } else { "" };
                    wire_body.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    wire_body.extend_from_slice(&rest[..n]);
                    wire_body.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                wire_body.extend_from_slice(b"0\r\n");
                for _ in 0..u.int_in_range(0..=2)? {
                    wire_body.extend_from_slice(b"x-trailer: t\r\n");
                }
                wire_body.extend_from_slice(b"\r\n");
            }
            _ => wire_body.extend_from_slice(&body),
        }
        let at = bytes.len();
        let reason = *u.choose(&["OK", "", "Some Reason"])?;
        head(&mut bytes, status, reason, &headers, pad(u)?);
        refused |= bytes.len() - at > MAX_HEAD;
        if !no_body {
            bytes.extend_from_slice(&wire_body);
        }
        let to_close = framing == 2 && !no_body;
        answers.push(Expected {
            status: (!refused).then_some(status),
            len: bytes.len(),
            reusable: !(close_header || to_close),
            to_close,
        });
        head_only.push(is_head);
        if last {
            server.close = to_close || u.arbitrary()?;
        }
        // Cut into reads.
        let mut rest = &bytes[..];
        let mut cuts = 0;
        while !rest.is_empty() {
            cuts += 1;
            let n = if cuts == MAX_CUTS || u.is_empty() {
                rest.len()
            } else {
                let bits = u.int_in_range(0..=17)?;
                u.int_in_range(1..=1usize << bits)?.min(rest.len())
            };
            server.chunks.push((i, rest[..n].to_vec()));
            rest = &rest[n..];
        }
        if refused || !answers.last().is_some_and(|a| a.reusable) {
            break;
        }
    }
    Ok((server, Some((answers, head_only))))
}

fn check_framed(server: Server, answers: &[Expected], head_only: &[bool]) {
    let mut reader = AnswerReader::new(server);
    let mut end = 0;
    for (i, (want, &is_head)) in answers.iter().zip(head_only).enumerate() {
        let Poll::Ready(got) = exchange(&mut reader, is_head) else {
            panic!("answer {i} ({want:?}): the reader waits for bytes past the answer")
        };
        assert_bounded(&reader);
        assert_eq!(got, want.status, "answer {i}: {want:?}");
        if got.is_none() {
            return;
        }
        end += want.len;
        let server = reader.get_ref();
        if want.to_close {
            // The rest of the body may stay in the buffer of a connection that is done.
            assert!(
                server.sent == end && server.ends_seen == 1,
                "answer {i} ({want:?}) not read to the close"
            );
        } else {
            let taken = server.sent - reader.buffered();
            assert_eq!(taken, end, "answer {i} ({want:?}) took other bytes than its own");
        }
        assert_eq!(reader.is_reusable(), want.reusable, "answer {i}: {want:?}");
    }
}
