//! Just enough HTTP/1.x for the egress proxy: reading a message head with a size cap,
//! splitting it into a start line and headers, and writing a head back out.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// A message head that was read: the start line, the header fields (bytes kept as sent),
/// and whatever followed the head in the same reads.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) start: String,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) rest: Vec<u8>,
}

/// Why a head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer closed before sending anything.
    Closed,
    /// More than the cap without the end of the head.
    TooLarge,
    /// Not HTTP/1.x syntax.
    Malformed(&'static str),
    /// The socket failed.
    Io(io::Error),
}

/// Reads until the blank line that ends a head, at most `max` bytes of head.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = reader.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Malformed("truncated head")
            });
        }
        let searched = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = find(&buf[searched..], b"\r\n\r\n") {
            let end = searched + at + 4;
            if end > max {
                return Err(HeadError::TooLarge);
            }
            let rest = buf.split_off(end);
            return parse_head(&buf[..end - 4], rest);
        }
        if buf.len() > max {
            return Err(HeadError::TooLarge);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8], rest: Vec<u8>) -> Result<Head, HeadError> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    if start.is_empty() || !start.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err(HeadError::Malformed("start line"));
    }
    let start = String::from_utf8_lossy(start).into_owned();
    let mut headers = Vec::new();
    for line in lines {
        // Folded lines (obs-fold) are refused rather than guessed at.
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(HeadError::Malformed("folded header line"));
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(HeadError::Malformed("header without ':'"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|b| is_token(*b)) {
            return Err(HeadError::Malformed("header name"));
        }
        let value = trim(&line[colon + 1..]);
        if value.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(HeadError::Malformed("header value"));
        }
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Ok(Head { start, headers, rest })
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', tail @ ..] = v {
        v = tail;
    }
    while let [head @ .., b' ' | b'\t'] = v {
        v = head;
    }
    v
}

/// Header fields a proxy must not pass on (RFC 9110 §7.6.1), plus the ones the
/// `Connection` field names.
pub(crate) fn hop_by_hop(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut names: Vec<String> = [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            for token in String::from_utf8_lossy(value).split(',') {
                let token = token.trim().to_ascii_lowercase();
                if !token.is_empty() {
                    names.push(token);
                }
            }
        }
    }
    names
}

/// `start`, then the headers not in `drop` (compared without case), then `Connection:
/// close` and the blank line.
pub(crate) fn write_head(start: &str, headers: &[(String, Vec<u8>)], drop: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if drop.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// A complete short response: `status`, a text body, `Connection: close`.
pub(crate) fn response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: usize) -> Result<Head, HeadError> {
        let mut r = bytes;
        read_head(&mut r, max).await
    }

    #[tokio::test]
    async fn heads_and_what_follows() {
        let head = read(b"GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A:  v v \r\n\r\nBODY", 1024).await.unwrap();
        assert_eq!(head.start, "GET http://a/ HTTP/1.1");
        assert_eq!(head.headers, vec![("Host".into(), b"a".to_vec()), ("X-A".into(), b"v v".to_vec())]);
        assert_eq!(head.rest, b"BODY");
        assert!(matches!(read(b"", 1024).await, Err(HeadError::Closed)));
        assert!(matches!(read(b"GET / HTTP/1.1\r\nHost: a\r\n", 1024).await, Err(HeadError::Malformed(_))));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(5000));
        assert!(matches!(read(big.as_bytes(), 4096).await, Err(HeadError::TooLarge)));
        assert!(read(big.as_bytes(), 8192).await.is_ok());
        for bad in [
            &b"GET / HTTP/1.1\r\n folded\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(read(bad, 1024).await, Err(HeadError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_fields_are_dropped() {
        let headers = vec![
            ("Host".to_string(), b"a".to_vec()),
            ("Proxy-Authorization".to_string(), b"Basic c2VjcmV0".to_vec()),
            ("Connection".to_string(), b"Keep-Alive, X-Secret".to_vec()),
            ("x-secret".to_string(), b"1".to_vec()),
            ("Range".to_string(), b"bytes=0-".to_vec()),
        ];
        let out = write_head("GET / HTTP/1.1", &headers, &hop_by_hop(&headers));
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-\r\nConnection: close\r\n\r\n");
    }
}
