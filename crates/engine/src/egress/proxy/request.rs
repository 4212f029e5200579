//! The request line and the proxy credentials of an egress-proxy request.

/// What a request asks for.
pub(super) enum Request {
    Tunnel { host: String, port: u16 },
    Forward { host: String, port: u16, start: String },
}

/// A request that is answered with an error status instead of being forwarded.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) reason: &'static str,
    pub(super) body: String,
}

impl Answer {
    pub(super) fn new(status: u16, reason: &'static str, body: impl Into<String>) -> Self {
        Self { status, reason, body: body.into() }
    }
}

/// The user name of `Proxy-Authorization: Basic …`, printable ASCII, at most 64 bytes.
pub(super) fn proxy_user(headers: &[(String, Vec<u8>)]) -> Option<String> {
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

/// Reads the request line: `CONNECT host:port HTTP/1.x`, or `METHOD http://host[:port]/path
/// HTTP/1.x` (rewritten to origin form for the destination).
pub(super) fn parse_request(start: &str) -> Result<Request, Answer> {
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
