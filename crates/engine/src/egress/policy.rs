//! [`EgressPolicy`]: which schemes and destinations a download may use.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use super::addr::{Forbidden, forbidden, parse_ip_host, parse_ipv4_loose};
use crate::{Error, ErrorKind, Result};

/// How long a name may take to resolve before the check gives up.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The schemes allowed unless configured otherwise.
pub const DEFAULT_SCHEMES: [&str; 3] = ["http", "https", "ftp"];

/// What a [`Resolver`] returns.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses: the system's resolver by default, any function in
/// tests (e.g. one whose answer changes between calls).
#[derive(Clone)]
pub struct Resolver(Arc<dyn Fn(&str) -> ResolveFuture + Send + Sync>);

impl Resolver {
    /// The system resolver (`getaddrinfo`, through tokio).
    pub fn system() -> Self {
        Self::from_fn(|host| {
            let host = host.to_string();
            Box::pin(async move {
                let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
                Ok(addrs.map(|a| a.ip()).collect())
            })
        })
    }

    /// A resolver that calls `f` with the host name.
    pub fn from_fn(f: impl Fn(&str) -> ResolveFuture + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The addresses of `host`.
    pub async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        (self.0)(host).await
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// An allowlist entry: an address range, or a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Net { net: IpAddr, len: u8 },
    Name(String),
}

impl Allowed {
    fn parse(entry: &str) -> Result<Self> {
        let bad = |expected: &str| {
            Error::from(ErrorKind::Config {
                setting: "egress allowlist",
                value: entry.to_string(),
                expected: expected.to_string(),
            })
        };
        let entry_trim = entry.trim();
        if let Some((net, len)) = entry_trim.split_once('/') {
            let net = parse_ip_host(net).ok_or_else(|| bad("an IP address before the '/' of a CIDR"))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| bad(&format!("a prefix length from 0 to {max} after the '/'")))?;
            return Ok(Allowed::Net { net, len });
        }
        if let Some(ip) = parse_ip_host(entry_trim) {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            return Ok(Allowed::Net { net: ip, len });
        }
        match Host::parse(entry_trim) {
            Ok(Host::Domain(name)) if !name.is_empty() => Ok(Allowed::Name(normalize_name(&name))),
            Ok(Host::Ipv4(ip)) => Ok(Allowed::Net { net: IpAddr::V4(ip), len: 32 }),
            Ok(Host::Ipv6(ip)) => Ok(Allowed::Net { net: IpAddr::V6(ip), len: 128 }),
            _ => Err(bad("an IP address, a CIDR such as 10.0.0.0/8, or a host name")),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Allowed::Net { net: IpAddr::V4(net), len }, IpAddr::V4(ip)) => {
                let mask = if *len == 0 { 0 } else { u32::MAX << (32 - u32::from(*len)) };
                u32::from(ip) & mask == u32::from(*net) & mask
            }
            (Allowed::Net { net: IpAddr::V6(net), len }, IpAddr::V6(ip)) => {
                let mask = if *len == 0 { 0 } else { u128::MAX << (128 - u32::from(*len)) };
                u128::from(ip) & mask == u128::from(*net) & mask
            }
            _ => false,
        }
    }
}

fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Which URLs a download may fetch: the allowed schemes, and the private addresses that
/// may be reached all the same (the allowlist).
///
/// Every other address that is private, loopback, link-local, carrier-grade NAT,
/// multicast, broadcast, unspecified, reserved, documentation or a cloud metadata
/// service is refused (see [`AddressClass`](super::AddressClass)); a name is refused when
/// *any* of its addresses is. Build one with [`EgressPolicy::builder`];
/// [`EgressPolicy::default`] allows `http`, `https` and `ftp` and allowlists nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use mltb_engine::{egress::EgressPolicy, ErrorKind};
///
/// let policy = EgressPolicy::builder().allow("127.0.0.1").build().unwrap();
/// assert!(policy.check_url("http://127.0.0.1:8080/a.iso").await.is_ok());
/// let err = policy.check_url("http://user:pw@0x7f000002/a.iso").await.unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::Refused { .. }));
/// assert_eq!(
///     err.to_string(),
///     "refused to fetch from http://127.0.0.2/a.iso: 127.0.0.2 is a loopback address"
/// );
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    schemes: Vec<String>,
    allowed: Vec<Allowed>,
    resolver: Resolver,
    resolve_timeout: Duration,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            schemes: DEFAULT_SCHEMES.iter().map(|s| s.to_string()).collect(),
            allowed: Vec::new(),
            resolver: Resolver::system(),
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
        }
    }
}

/// Builds an [`EgressPolicy`]; entries are validated in [`build`](Self::build).
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EgressPolicyBuilder {
    schemes: Option<Vec<String>>,
    allow: Vec<String>,
    resolver: Option<Resolver>,
    resolve_timeout: Option<Duration>,
}

impl EgressPolicyBuilder {
    /// Allows these schemes instead of `http`, `https` and `ftp` (compared without case).
    /// Magnets and `.torrent` files are not URLs fetched by this policy; the caller
    /// handles them.
    pub fn schemes<I, S>(mut self, schemes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.schemes = Some(schemes.into_iter().map(|s| s.into().to_ascii_lowercase()).collect());
        self
    }

    /// Lets downloads reach `entry` although it is private: an IP address (`127.0.0.1`,
    /// `[::1]`), a CIDR (`10.0.0.0/8`, `fd00::/8`), or a host name (`files.lan`, matched
    /// exactly and without case; all its addresses are then allowed).
    pub fn allow(mut self, entry: impl Into<String>) -> Self {
        self.allow.push(entry.into());
        self
    }

    /// Resolves names with `resolver` instead of the system's.
    pub fn resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// How long resolving a name may take ([`DEFAULT_RESOLVE_TIMEOUT`] by default).
    pub fn resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = Some(timeout);
        self
    }

    /// The policy; fails with [`ErrorKind::Config`] naming an allowlist entry or scheme
    /// that cannot be read.
    pub fn build(self) -> Result<EgressPolicy> {
        let mut policy = EgressPolicy::default();
        if let Some(schemes) = self.schemes {
            for s in &schemes {
                let valid = s.starts_with(|c: char| c.is_ascii_alphabetic())
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                if !valid {
                    return Err(ErrorKind::Config {
                        setting: "egress schemes",
                        value: s.clone(),
                        expected: "a URL scheme such as http".into(),
                    }
                    .into());
                }
            }
            policy.schemes = schemes;
        }
        policy.allowed = self.allow.iter().map(|e| Allowed::parse(e)).collect::<Result<_>>()?;
        if let Some(r) = self.resolver {
            policy.resolver = r;
        }
        if let Some(t) = self.resolve_timeout {
            policy.resolve_timeout = t;
        }
        Ok(policy)
    }
}

/// A URL the policy accepted, with the addresses its host had when it was checked.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    url: Url,
    addrs: Vec<IpAddr>,
}

impl CheckedUrl {
    /// The URL in normalised form (numeric hosts written as dotted quads, names in
    /// lower case): hand this, not the original text, to the downloader, so that the
    /// host it connects to is the one that was checked.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The scheme, in lower case.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The host as written in the normalised URL (IPv6 in brackets).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, or the scheme's default (80, 443, 21).
    pub fn port(&self) -> Option<u16> {
        self.url.port_or_known_default()
    }

    /// The addresses the host had when checked (the address itself for a numeric host).
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The URL without credentials or query, safe for logs and messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for CheckedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedUrl").field("url", &self.redacted()).field("addrs", &self.addrs).finish()
    }
}

/// `url` as `scheme://host[:port]/path`, the query replaced by `?…`: no user name,
/// password or signed token.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    if url.query().is_some() {
        out.push_str("?…");
    }
    out
}

/// Redacts text that did not parse as a URL: the user info and everything from `?`.
fn redact_text(text: &str) -> String {
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match text.find("://") {
        Some(i) => (&text[..i + 3], &text[i + 3..]),
        None => ("", text),
    };
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..auth_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let mut out = format!("{scheme}{rest}");
    out.truncate(out.char_indices().nth(200).map_or(out.len(), |(i, _)| i));
    out
}

fn refused(target: impl Into<String>, reason: impl Into<String>) -> Error {
    ErrorKind::Refused { target: target.into(), reason: reason.into() }.into()
}

impl EgressPolicy {
    /// A builder, starting from the defaults.
    pub fn builder() -> EgressPolicyBuilder {
        EgressPolicyBuilder::default()
    }

    /// The allowed schemes, in lower case.
    pub fn schemes(&self) -> &[String] {
        &self.schemes
    }

    /// Whether `ip` may be fetched from: a public address, or one the allowlist names.
    /// An IPv6 address embedding an IPv4 one is also allowed when the IPv4 address is.
    pub fn check_ip(&self, ip: IpAddr) -> std::result::Result<(), Forbidden> {
        let Some(why) = forbidden(ip) else {
            return Ok(());
        };
        if self.allowed.iter().any(|a| a.contains(ip) || why.embedded.is_some_and(|v4| a.contains(v4.into())))
        {
            return Ok(());
        }
        Err(why)
    }

    fn name_allowed(&self, name: &str) -> bool {
        let name = normalize_name(name);
        self.allowed.iter().any(|a| matches!(a, Allowed::Name(n) if *n == name))
    }

    /// Checks everything about `url` that needs no name lookup: that it parses, that its
    /// scheme is allowed, and, for a numeric host in any form (`2130706433`,
    /// `0x7f000001`, `[::ffff:7f00:1]`), that the address is allowed.
    ///
    /// Returns the URL and, for a numeric host, its address; for a named host the address
    /// list is empty and [`check_url`](Self::check_url) is what resolves and checks it.
    pub fn check_url_syntax(&self, url: &str) -> Result<CheckedUrl> {
        // Characters on which URL parsers disagree (WHATWG strips tabs and newlines and
        // reads `\` as `/`; aria2 and curl do not) are refused, so the URL checked and
        // the URL fetched cannot differ.
        if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control() || *c == '\\') {
            return Err(ErrorKind::InvalidSource {
                input: redact_text(url),
                expected: format!(
                    "a URL without whitespace, control characters or backslashes (found {c:?}; percent-encode it)"
                ),
            }
            .into());
        }
        let parsed = Url::parse(url).map_err(|e| ErrorKind::InvalidSource {
            input: redact_text(url),
            expected: format!("a URL such as http://host/path ({e})"),
        })?;
        let scheme = parsed.scheme();
        if !self.schemes.iter().any(|s| s == scheme) {
            return Err(refused(
                redact_url(&parsed),
                format!("the scheme {scheme:?} is not allowed (allowed: {})", self.schemes.join(", ")),
            ));
        }
        let addrs = match numeric_host(&parsed)? {
            Some(ip) => {
                self.check_ip(ip).map_err(|why| refused(redact_url(&parsed), describe_literal(&why)))?;
                vec![ip]
            }
            None => Vec::new(),
        };
        Ok(CheckedUrl { url: parsed, addrs })
    }

    /// Checks `url` before anything is fetched: [`check_url_syntax`](Self::check_url_syntax),
    /// then, for a named host, resolves it and refuses it when any of its addresses is
    /// forbidden (unless the allowlist names the host).
    ///
    /// Errors: [`ErrorKind::Refused`] naming the URL (without credentials or query) and
    /// why, e.g. "files.example resolves to 127.0.0.2, a loopback address";
    /// [`ErrorKind::InvalidSource`] for text that is not a URL;
    /// [`ErrorKind::Network`] / [`ErrorKind::Timeout`] when the name does not resolve.
    ///
    /// A check alone does not stop a redirect or a DNS answer that changes before the
    /// download connects; route the downloader through an
    /// [`EgressProxy`](super::EgressProxy) for that.
    pub async fn check_url(&self, url: &str) -> Result<CheckedUrl> {
        let mut checked = self.check_url_syntax(url)?;
        if checked.addrs.is_empty() {
            let name = checked.host().to_string();
            checked.addrs = self.resolve_checked(&name).await.map_err(|e| match e.into_kind() {
                ErrorKind::Refused { reason, .. } => refused(checked.redacted(), reason),
                other => other.into(),
            })?;
        }
        Ok(checked)
    }

    /// Resolves `host` (a name, or a numeric host in any form) and checks every address:
    /// what the [`EgressProxy`](super::EgressProxy) does before it connects. The
    /// addresses returned are the ones to connect to.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>> {
        if let Some(ip) = parse_ip_host(host) {
            self.check_ip(ip).map_err(|why| refused(host, describe_literal(&why)))?;
            return Ok(vec![ip]);
        }
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !valid {
            return Err(ErrorKind::InvalidSource {
                input: redact_text(host),
                expected: "a host name of letters, digits, '-', '_' and '.'".into(),
            }
            .into());
        }
        let addrs = tokio::time::timeout(self.resolve_timeout, self.resolver.resolve(host))
            .await
            .map_err(|_| ErrorKind::Timeout {
                what: format!("resolving {host}"),
                after: self.resolve_timeout,
            })?
            .map_err(|e| ErrorKind::Network { reason: format!("cannot resolve {host}: {e}") })?;
        if addrs.is_empty() {
            return Err(ErrorKind::Network { reason: format!("{host} has no addresses") }.into());
        }
        if self.name_allowed(host) {
            return Ok(addrs);
        }
        for ip in &addrs {
            if let Err(why) = self.check_ip(*ip) {
                return Err(refused(host, format!("{host} resolves to {why}")));
            }
        }
        Ok(addrs)
    }
}

/// The address of a numeric host, `None` for a name; an error for a URL without a host.
fn numeric_host(url: &Url) -> Result<Option<IpAddr>> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok(Some(ip.into())),
        Some(Host::Ipv6(ip)) => Ok(Some(ip.into())),
        // A name libc would still read as a number is judged as that number.
        Some(Host::Domain(d)) if !d.is_empty() => Ok(parse_ipv4_loose(d).map(IpAddr::V4)),
        _ => {
            Err(ErrorKind::InvalidSource { input: redact_url(url), expected: "a URL with a host".into() }
                .into())
        }
    }
}

/// "127.0.0.2 is a loopback address".
fn describe_literal(why: &Forbidden) -> String {
    match why.embedded {
        Some(v4) => format!("{} embeds {v4}, {}", why.addr, why.class),
        None => format!("{} is {}", why.addr, why.class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> EgressPolicy {
        EgressPolicy::builder()
            .allow("127.0.0.1")
            .resolver(Resolver::from_fn(|host| {
                let answer = match host.trim_end_matches('.') {
                    "loop.test" => Ok(vec!["127.0.0.2".parse().unwrap()]),
                    "mixed.test" => Ok(vec!["93.184.215.14".parse().unwrap(), "10.1.2.3".parse().unwrap()]),
                    "public.test" => Ok(vec!["93.184.215.14".parse().unwrap()]),
                    "empty.test" => Ok(vec![]),
                    _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
                };
                Box::pin(async move { answer })
            }))
            .build()
            .unwrap()
    }

    fn refusal(r: Result<CheckedUrl>) -> (String, String) {
        match r.map(|c| c.redacted()).map_err(Error::into_kind) {
            Err(ErrorKind::Refused { target, reason }) => (target, reason),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn numeric_forms_are_refused_as_loopback() {
        let strict = EgressPolicy::default();
        for url in [
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:127.0.0.2]/",
            "http://127.0.0.2/",
            "http://0x7f.0.0.2/",
            "http://[::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:2::]/",
            "https://127.000.000.002:8443/",
        ] {
            let (_, reason) = refusal(strict.check_url_syntax(url));
            assert!(reason.contains("a loopback address"), "{url}: {reason}");
        }
        let p = policy();
        let (_, reason) = refusal(p.check_url_syntax("http://0x7f000002/"));
        assert_eq!(reason, "127.0.0.2 is a loopback address");
        let (_, reason) = refusal(p.check_url_syntax("http://[::ffff:7f00:2]/"));
        assert_eq!(reason, "::ffff:127.0.0.2 embeds 127.0.0.2, a loopback address");
        // 127.0.0.1 is allowlisted in every form, even embedded in IPv6.
        for url in ["http://127.0.0.1:8080/a", "http://2130706433/", "http://[::ffff:127.0.0.1]/"] {
            assert!(p.check_url_syntax(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_classes_are_refused() {
        let p = policy();
        for (url, why) in [
            ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
            ("http://[fd00:ec2::254]/", "a cloud metadata address"),
            ("http://100.100.100.200/", "a cloud metadata address"),
            ("http://10.0.0.1/", "a private address"),
            ("http://0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://100.64.1.1/", "carrier-grade NAT"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://[fe80::1]/", "link-local"),
            ("ftp://192.168.0.1/f", "a private address"),
        ] {
            let (_, reason) = refusal(p.check_url_syntax(url));
            assert!(reason.contains(why), "{url}: {reason}");
        }
    }

    #[test]
    fn schemes_and_credentials() {
        let p = policy();
        let (target, reason) = refusal(p.check_url_syntax("file:///etc/passwd"));
        assert_eq!(target, "file:///etc/passwd");
        assert!(reason.contains("\"file\" is not allowed (allowed: http, https, ftp)"), "{reason}");
        let (target, _) = refusal(p.check_url_syntax("gopher://u:secret@example.com/x?token=t"));
        assert!(!target.contains("secret") && !target.contains("token"), "{target}");
        let (target, reason) = refusal(p.check_url_syntax("http://bob:hunter2@10.0.0.1/f?sig=abc"));
        assert_eq!(target, "http://10.0.0.1/f?…");
        assert_eq!(reason, "10.0.0.1 is a private address");
        // User info is fine where the host is.
        assert!(p.check_url_syntax("http://bob:hunter2@93.184.215.14/f").is_ok());
        let only_https = EgressPolicy::builder().schemes(["HTTPS"]).build().unwrap();
        assert!(only_https.check_url_syntax("https://93.184.215.14/").is_ok());
        refusal(only_https.check_url_syntax("http://93.184.215.14/"));
    }

    #[test]
    fn parser_differentials_are_refused() {
        let p = policy();
        for url in [
            "http://93.184.215.14\\@127.0.0.2/",
            "http://127.0.0.2\t/",
            "http://exa\nmple.com/",
            " http://127.0.0.2/",
        ] {
            let err = p.check_url_syntax(url).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::InvalidSource { .. }), "{url}: {err}");
        }
        let err = p.check_url_syntax("http://u:pw@[::1/").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(matches!(err.kind(), ErrorKind::InvalidSource { .. }), "{err}");
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        let p = policy();
        let (target, reason) = refusal(p.check_url("http://loop.test:8080/a").await);
        assert_eq!(target, "http://loop.test:8080/a");
        assert_eq!(reason, "loop.test resolves to 127.0.0.2, a loopback address");
        let (_, reason) = refusal(p.check_url("https://Mixed.Test/a").await);
        assert_eq!(reason, "mixed.test resolves to 10.1.2.3, a private address");
        let ok = p.check_url("https://public.test/a").await.unwrap();
        assert_eq!(ok.addrs(), ["93.184.215.14".parse::<IpAddr>().unwrap()]);
        assert_eq!(ok.port(), Some(443));
        let err = p.check_url("http://nowhere.test/").await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Network { .. }), "{err}");
        let err = p.check_url("http://empty.test/").await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Network { .. }), "{err}");
    }

    #[tokio::test]
    async fn allowlisted_names_and_ranges() {
        let p = EgressPolicy::builder()
            .allow("loop.test")
            .allow("10.0.0.0/8")
            .allow("[fd00::]/8")
            .resolver(policy().resolver)
            .build()
            .unwrap();
        assert!(p.check_url("http://LOOP.test./x").await.is_ok());
        assert!(p.check_url("http://mixed.test/x").await.is_ok());
        assert!(p.check_url("http://10.200.0.1/x").await.is_ok());
        assert!(p.check_url("http://[fd12::1]/x").await.is_ok());
        assert!(p.check_url("http://11.0.0.1/x").await.is_ok());
        refusal(p.check_url("http://127.0.0.1/x").await);
        refusal(p.check_url("http://[fe80::1]/x").await);
    }

    #[test]
    fn bad_allowlist_entries_name_themselves() {
        for entry in ["10.0.0.0/33", "::/129", "nonsense/8", "", "a b", "10.0.0.0/x"] {
            let err = EgressPolicy::builder().allow(entry).build().unwrap_err();
            match err.kind() {
                ErrorKind::Config { setting: "egress allowlist", value, .. } => assert_eq!(value, entry),
                other => panic!("{entry}: {other:?}"),
            }
        }
        let err = EgressPolicy::builder().schemes(["ht tp"]).build().unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Config { setting: "egress schemes", .. }), "{err}");
    }
}
