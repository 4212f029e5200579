//! [`ApiConfig`]: where the API listens, its token, TLS files and rate limit.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use mltb_ratelimit::Quota;

use crate::{Error, Result};

/// The port the API listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9180;

/// Shortest token accepted, in bytes.
const MIN_TOKEN: usize = 16;
/// Longest token accepted, in bytes.
const MAX_TOKEN: usize = 512;

/// The API's bearer token. Its `Debug` prints `Secret(<redacted>)`, it has no `Display`,
/// and errors about it give its length, never its text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A token of 16 to 512 bytes of visible ASCII (RFC 6750's `b64token` characters:
    /// letters, digits and `-._~+/=`), as a client puts it after `Bearer `.
    ///
    /// ```
    /// use mltb_api::Secret;
    ///
    /// assert!(Secret::new("kq3Vd9-2mX_8ZpL1rT0w").is_ok());
    /// let err = Secret::new("short").unwrap_err();
    /// assert_eq!(err.to_string(), "api.token: is 5 bytes long; expected 16 to 512 bytes");
    /// ```
    pub fn new(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        if !(MIN_TOKEN..=MAX_TOKEN).contains(&token.len()) {
            return Err(Error::config(
                "api.token",
                format!("is {} bytes long; expected {MIN_TOKEN} to {MAX_TOKEN} bytes", token.len()),
            ));
        }
        if let Some(at) = token.bytes().position(|b| !is_token_byte(b)) {
            return Err(Error::config(
                "api.token",
                format!(
                    "byte {at} is not allowed; expected only letters, digits and -._~+/= \
                     (no spaces or control characters)"
                ),
            ));
        }
        Ok(Self(token))
    }

    /// The token's text, to hand to a client. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A TLS certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM `CERTIFICATE` blocks).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The certificate chain at `cert` and the key at `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self { cert: cert.into(), key: key.into() }
    }
}

/// How the API is served. Every setting has a default (see [`new`](Self::new)); the
/// setters check nothing, [`validate`](Self::validate) checks everything, and
/// [`Api::builder`](crate::Api::builder) calls it.
///
/// ```
/// use mltb_api::{ApiConfig, Secret};
///
/// let config = ApiConfig::new()
///     .bind_str("127.0.0.1:9180")?
///     .token(Secret::new("kq3Vd9-2mX_8ZpL1rT0w")?)
///     .rate("20/s burst 40".parse().unwrap());
/// config.validate()?;
///
/// let err = ApiConfig::new().bind_str("localhost").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "api.bind: \"localhost\" is not an address; expected an IP address and a port, e.g. 127.0.0.1:9180"
/// );
/// # Ok::<(), mltb_api::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) token: Option<Secret>,
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) rate: Quota,
    pub(crate) rate_max_clients: usize,
    pub(crate) protect_metrics: bool,
    pub(crate) ready_timeout: Duration,
    pub(crate) ready_interval: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_finished: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            token: None,
            tls: None,
            rate: Quota::per_second(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN)),
            rate_max_clients: 10_000,
            protect_metrics: false,
            ready_timeout: Duration::from_secs(2),
            ready_interval: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            max_finished: 100,
        }
    }
}

impl ApiConfig {
    /// The defaults: listen on `127.0.0.1:9180`, no token (so `/api/*` answers 403),
    /// no TLS, `10/s burst 20` per client address on `/api/*` (at most 10 000 addresses
    /// tracked), `/metrics` open, 2 s per readiness check, 10 s per TLS handshake, at
    /// most 100 finished tasks per list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where to listen. Port 0 picks a free port ([`Running::local_addr`](crate::Running::local_addr)
    /// says which).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Where to listen, from text such as `127.0.0.1:9180` or `[::1]:9180`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming `api.bind` and the text.
    pub fn bind_str(self, addr: &str) -> Result<Self> {
        let parsed = addr.trim().parse::<SocketAddr>().map_err(|_| {
            Error::config(
                "api.bind",
                format!("{addr:?} is not an address; expected an IP address and a port, e.g. 127.0.0.1:9180"),
            )
        })?;
        Ok(self.bind(parsed))
    }

    /// The bearer token `/api/*` requires (and `/metrics`, with
    /// [`protect_metrics`](Self::protect_metrics)).
    pub fn token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// Serve TLS 1.3 (only) with this certificate and key.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Requests per client address on `/api/*` (GCRA, `mltb-ratelimit`).
    pub fn rate(mut self, quota: Quota) -> Self {
        self.rate = quota;
        self
    }

    /// Most client addresses the rate limiter tracks at once (idle ones are forgotten
    /// first; a new address past the cap is refused with 429 until one is idle).
    pub fn rate_max_clients(mut self, n: usize) -> Self {
        self.rate_max_clients = n;
        self
    }

    /// Whether `/metrics` needs the token too (default: open, like `/health` and
    /// `/ready`, for a scraper on the same machine).
    pub fn protect_metrics(mut self, protect: bool) -> Self {
        self.protect_metrics = protect;
        self
    }

    /// How long each readiness check may take before it counts as failed.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How often the server runs the readiness checks by itself, so that
    /// `mltb_ready_check_ok{check}` says how each part stands even when nobody asks
    /// `/ready` (default 15 s; zero: only when `/ready` is asked).
    pub fn ready_interval(mut self, every: Duration) -> Self {
        self.ready_interval = every;
        self
    }

    /// How long a client may take to finish its TLS handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Most finished tasks `GET /api/v1/tasks?finished=N` may ask for.
    pub fn max_finished(mut self, n: u32) -> Self {
        self.max_finished = n;
        self
    }

    /// The address to listen on.
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind
    }

    /// Whether TLS is configured.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Checks every setting; the error names the first one out of range.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config).
    pub fn validate(&self) -> Result<()> {
        if self.rate_max_clients == 0 {
            return Err(Error::config("api.rate_max_clients", "is 0; expected at least 1"));
        }
        for (field, d) in
            [("api.ready_timeout", self.ready_timeout), ("api.handshake_timeout", self.handshake_timeout)]
        {
            if d.is_zero() || d > Duration::from_secs(300) {
                return Err(Error::config(field, format!("is {d:?}; expected more than 0 and at most 300s")));
            }
        }
        if self.max_finished > 10_000 {
            return Err(Error::config(
                "api.max_finished",
                format!("is {}; expected at most 10000", self.max_finished),
            ));
        }
        if let Some(tls) = &self.tls {
            for (field, path) in [("api.tls.cert", &tls.cert), ("api.tls.key", &tls.key)] {
                if path.as_os_str().is_empty() {
                    return Err(Error::config(field, "is empty; expected the path of a PEM file"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_or_errors() {
        let s = Secret::new("abcdefghijklmnop-secret").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let config = ApiConfig::new().token(s);
        assert!(!format!("{config:?}").contains("abcdefghijklmnop"));
        let err = Secret::new("abcdefghijklmnop secret").unwrap_err();
        assert!(!err.to_string().contains("abcdefghijklmnop"), "{err}");
        assert!(err.to_string().contains("byte 16"), "{err}");
    }

    #[test]
    fn validate_names_the_setting() {
        let err = ApiConfig::new().rate_max_clients(0).validate().unwrap_err();
        assert!(err.is_config());
        assert_eq!(err.to_string(), "api.rate_max_clients: is 0; expected at least 1");
        let err = ApiConfig::new().ready_timeout(Duration::ZERO).validate().unwrap_err();
        assert!(err.to_string().starts_with("api.ready_timeout: is 0ns"), "{err}");
        let err = ApiConfig::new().tls(TlsFiles::new("", "k.pem")).validate().unwrap_err();
        assert!(err.to_string().starts_with("api.tls.cert: is empty"), "{err}");
    }

    #[test]
    fn binds_loopback_by_default() {
        assert!(ApiConfig::new().bind_addr().ip().is_loopback());
        let c = ApiConfig::new().bind_str(" [::1]:0 ").unwrap();
        assert_eq!(c.bind_addr(), "[::1]:0".parse().unwrap());
    }
}
