//! What to request: a [`Target`] as given, and the prepared form a run sends.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One HTTP request a run sends over and over: method, URL, headers and body.
///
/// ```
/// use mltb_loadgen::Target;
/// let t = Target::get("http://127.0.0.1:8080/api/v1/tasks")
///     .name("tasks")
///     .header("authorization", "Bearer secret");
/// assert_eq!(t.method, "GET");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Target {
    /// The name in reports; the URL's path when empty.
    #[serde(default)]
    pub name: String,
    /// The method, `GET` unless given.
    #[serde(default = "default_method")]
    pub method: String,
    /// An `http://` URL; its host must be on this machine unless the plan allows remote targets.
    pub url: String,
    /// Headers sent with every request (`authorization`, `content-type`, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body; none when absent.
    #[serde(default)]
    pub body: Option<String>,
    /// The target's share of the requests, relative to the others' (1 to 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_method() -> String {
    "GET".into()
}

fn default_weight() -> u32 {
    1
}

impl Target {
    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A request with `method` to `url`.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: String::new(),
            method: method.into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            weight: 1,
        }
    }

    /// Names the target in reports.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the target's share of the requests.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Parses `Name: value` (as curl's and wrk's `-H` take it) into a header of this target.
    pub fn header_line(self, line: &str) -> Result<Self> {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            Error::invalid(
                format!("header {line:?}"),
                "expected NAME: VALUE, e.g. \"Authorization: Bearer …\"",
            )
        })?;
        Ok(self.header(name.trim(), value.trim()))
    }

    /// The name in reports.
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        self.url.parse::<Uri>().ok().map_or_else(|| self.url.clone(), |u| u.path().to_owned())
    }
}

/// A target checked and ready to send: parsed once, cloned per request.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) method: Method,
    /// Origin form (`/path?query`) for HTTP/1.1.
    pub(crate) path: Uri,
    /// Absolute form for HTTP/2's pseudo-headers.
    pub(crate) full: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Which of the run's distinct addresses it goes to.
    pub(crate) endpoint: usize,
    /// The whole HTTP/1.1 request, serialised once.
    pub(crate) raw: Bytes,
}

/// Where a target's host and port point, before resolution.
pub(crate) struct Parsed {
    pub(crate) host: String,
    pub(crate) port: u16,
    prepared: Prepared,
}

impl Parsed {
    pub(crate) fn into_prepared(mut self, endpoint: usize) -> Prepared {
        self.prepared.endpoint = endpoint;
        self.prepared.raw = crate::h1::serialise(&self.prepared);
        self.prepared
    }
}

/// Checks everything about `t` that needs no network.
pub(crate) fn parse(t: &Target) -> Result<Parsed> {
    let what = || format!("target {:?}", t.display_name());
    let uri: Uri = t.url.parse().map_err(|e| Error::invalid(what(), format!("URL {:?}: {e}", t.url)))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(Error::invalid(
                what(),
                format!(
                    "{}: https is not supported (the generator speaks plain HTTP/1.1 and h2c; measure TLS apart)",
                    t.url
                ),
            ));
        }
        _ => return Err(Error::invalid(what(), format!("{:?}: expected an http:// URL", t.url))),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| {
            Error::invalid(what(), format!("{:?}: expected a host, as in http://127.0.0.1:8080/", t.url))
        })?
        .clone();
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = authority.port_u16().unwrap_or(80);
    let method = Method::from_bytes(t.method.as_bytes())
        .map_err(|_| Error::invalid(what(), format!("method {:?}: expected GET, POST, …", t.method)))?;
    if !(1..=100).contains(&t.weight) {
        return Err(Error::invalid(what(), format!("weight {}: expected 1 to 100", t.weight)));
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let path: Uri = path_and_query.parse().map_err(|e| Error::invalid(what(), format!("path: {e}")))?;
    let mut headers = HeaderMap::new();
    let host_value = HeaderValue::from_str(authority.as_str())
        .map_err(|_| Error::invalid(what(), "the host is not a valid Host header"))?;
    headers.insert(http::header::HOST, host_value);
    for (name, value) in &t.headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| Error::invalid(what(), format!("header name {name:?}")))?;
        let v = HeaderValue::from_str(value.trim()).map_err(|_| {
            Error::invalid(what(), format!("the value of header {name:?} is not valid in HTTP"))
        })?;
        headers.insert(n, v);
    }
    let body = Bytes::from(t.body.clone().unwrap_or_default());
    Ok(Parsed {
        host,
        port,
        prepared: Prepared {
            name: t.display_name(),
            url: t.url.clone(),
            method,
            path,
            full: uri,
            headers,
            body,
            endpoint: 0,
            raw: Bytes::new(),
        },
    })
}

/// Resolves `host:port` and refuses anything off this machine unless `allow_remote`.
pub(crate) async fn resolve(url: &str, host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| Error::new(ErrorKind::Resolve { host: host.to_owned(), source }))?
        .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(Error::new(ErrorKind::Resolve {
            host: host.to_owned(),
            source: std::io::Error::other("no address"),
        }));
    };
    if !allow_remote && let Some(off) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(Error::new(ErrorKind::Remote { url: url.to_owned(), resolved: off.ip().to_string() }));
    }
    // Prefer IPv4 loopback, where servers on this machine usually listen.
    Ok(addrs.iter().copied().find(SocketAddr::is_ipv4).unwrap_or(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_named() {
        let p = parse(&Target::get("http://127.0.0.1:9/a/b?x=1")).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 9));
        assert_eq!(p.prepared.path, "/a/b?x=1");
        assert_eq!(p.prepared.name, "/a/b");
        let err = parse(&Target::get("https://127.0.0.1/")).err().unwrap().to_string();
        assert!(err.contains("https is not supported"), "{err}");
        let err = parse(&Target::get("127.0.0.1:80")).err().unwrap().to_string();
        assert!(err.contains("expected an http:// URL"), "{err}");
        let err = parse(&Target::new("G ET", "http://127.0.0.1/")).err().unwrap().to_string();
        assert!(err.contains("method"), "{err}");
        let t = Target::get("http://[::1]:80/").header_line("X-A: b").unwrap();
        assert_eq!(parse(&t).unwrap().host, "::1");
        assert!(Target::get("http://x/").header_line("nocolon").is_err());
    }

    #[tokio::test]
    async fn remote_hosts_are_refused_unless_allowed() {
        assert!(resolve("u", "127.0.0.1", 80, false).await.is_ok());
        assert!(resolve("u", "localhost", 80, false).await.unwrap().ip().is_loopback());
        let err = resolve("http://192.0.2.1/", "192.0.2.1", 80, false).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Remote { .. }), "{err}");
        assert!(err.to_string().contains("allow_remote"), "{err}");
        // Allowed, it resolves (nothing is sent here).
        assert!(resolve("http://192.0.2.1/", "192.0.2.1", 80, true).await.is_ok());
    }
}
