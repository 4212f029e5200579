//! One aria2 RPC endpoint: an `aria2_ws::Client` whose every call has a timeout and whose
//! errors become the engine's.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aria2_ws::{Client, Map, TaskOptions};
use serde_json::Value;

use crate::{Error, ErrorKind, Result};

/// The RPC secret: never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// 16 random bytes from the OS, as 32 hex digits.
    pub(crate) fn random() -> Result<Self> {
        Ok(Self(random_hex(16)?))
    }

    pub(crate) fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `n` random bytes as hex.
pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::from(ErrorKind::Aria2Unavailable { reason: format!("no randomness from the OS: {e}") })
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What an RPC call failed with, before it becomes an [`Error`]: "GID not found" is
/// handled by the downloader (it re-attaches), everything else is passed on.
#[derive(Debug)]
pub(crate) enum RpcError {
    /// aria2 does not know the GID.
    GidNotFound,
    /// Anything else.
    Other(Error),
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::GidNotFound => {
                ErrorKind::NotFound { what: "the download is not known to aria2".into() }.into()
            }
            RpcError::Other(e) => e,
        }
    }
}

pub(crate) type RpcResult<T> = std::result::Result<T, RpcError>;

/// A connected endpoint. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Rpc {
    // `None` once the endpoint is closed. aria2-ws's client is dropped here first, while
    // it is still connected: see the module docs of `aria2` on its reconnect task.
    client: Arc<Mutex<Option<Client>>>,
    url: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rpc").field("url", &self.url).field("timeout", &self.timeout).finish()
    }
}

impl Rpc {
    /// Connects to `url` (`ws://host:port/jsonrpc`), retrying until `within` has passed:
    /// aria2-ws fails at once while nothing listens yet. Checks the secret with
    /// `getVersion`.
    pub(crate) async fn connect(
        url: &str,
        secret: &Secret,
        timeout: Duration,
        within: Duration,
    ) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + within;
        let mut delay = Duration::from_millis(10);
        let client = loop {
            let attempt = tokio::time::timeout(timeout, Client::connect(url, Some(secret.expose()))).await;
            let reason = match attempt {
                Ok(Ok(client)) => break client,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no websocket handshake within {timeout:?}"),
            };
            if tokio::time::Instant::now() + delay > deadline {
                return Err(ErrorKind::Aria2Unavailable {
                    reason: format!("cannot connect to {url} within {within:?}: {reason}"),
                }
                .into());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        };
        let rpc = Self { client: Arc::new(Mutex::new(Some(client))), url: url.into(), timeout };
        rpc.call("getVersion", |c| async move { c.get_version().await }).await.map_err(Error::from)?;
        Ok(rpc)
    }

    /// Drops the client (and its reconnect task).
    pub(crate) fn close(&self) {
        let client = self.client.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(client);
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn client(&self) -> RpcResult<Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or_else(|| {
            RpcError::Other(ErrorKind::Aria2Unavailable { reason: format!("{} is closed", self.url) }.into())
        })
    }

    /// Runs one call with the timeout, mapping its error.
    ///
    /// Every call we make is safe to repeat (reads, removals, and adds that carry our
    /// GID), so within the timeout a call is sent again when the connection dropped
    /// (aria2c restarting) or when no answer came within a quarter of the timeout
    /// (aria2-ws can lose an answer: see the module docs of `aria2`).
    pub(crate) async fn call<T, F, Fut>(&self, method: &'static str, f: F) -> RpcResult<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, aria2_ws::Error>>,
    {
        let now = tokio::time::Instant::now;
        let deadline = now() + self.timeout;
        let attempt = (self.timeout / 4).max(Duration::from_millis(500));
        loop {
            let client = self.client()?;
            match tokio::time::timeout_at(deadline.min(now() + attempt), f(client)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(
                    e @ (aria2_ws::Error::WebsocketClosed { .. } | aria2_ws::Error::WebsocketIo { .. }),
                )) if now() + RECONNECT_PAUSE < deadline => {
                    tracing::debug!(method, error = %e, "aria2 connection lost; asking again");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
                Ok(Err(e)) => return Err(map_rpc_error(method, &self.url, e)),
                Err(_) if now() < deadline => {
                    tracing::debug!(method, "no answer from aria2 yet; asking again")
                }
                Err(_) => {
                    return Err(RpcError::Other(
                        ErrorKind::Timeout {
                            what: format!("aria2 {method} at {}", self.url),
                            after: self.timeout,
                        }
                        .into(),
                    ));
                }
            }
        }
    }

    /// `tellStatus` with our own keys, decoded leniently (see the module docs).
    pub(crate) async fn tell(&self, gid: &str) -> RpcResult<Map<String, Value>> {
        let ask = |c: Client| {
            let keys: Vec<String> = STATUS_KEYS.iter().map(|k| (*k).to_string()).collect();
            let gid = gid.to_string();
            async move { c.custom_tell_status(&gid, Some(keys)).await }
        };
        self.call("tellStatus", ask).await
    }

    pub(crate) async fn add_uri(&self, uris: Vec<String>, options: TaskOptions) -> RpcResult<String> {
        self.call("addUri", |c| {
            let (uris, options) = (uris.clone(), options.clone());
            async move { c.add_uri(uris, Some(options), None, None).await }
        })
        .await
    }

    pub(crate) async fn add_torrent(&self, torrent: Vec<u8>, options: TaskOptions) -> RpcResult<String> {
        self.call("addTorrent", |c| {
            let (torrent, options) = (torrent.clone(), options.clone());
            async move { c.add_torrent(torrent, None, Some(options), None, None).await }
        })
        .await
    }

    /// `changeOption` with `options` (aria2's names and values). aria2 answers "OK",
    /// which aria2-ws 0.5.1's `change_option` cannot decode (it expects nothing), so the
    /// call is made by hand.
    pub(crate) async fn change_option(&self, gid: &str, options: Map<String, Value>) -> RpcResult<()> {
        self.call("changeOption", |c| {
            let params = vec![Value::String(gid.to_string()), Value::Object(options.clone())];
            async move { c.call_and_wait::<String>("changeOption", params).await.map(drop) }
        })
        .await
    }

    pub(crate) async fn unpause(&self, gid: &str) -> RpcResult<()> {
        self.call("unpause", |c| {
            let gid = gid.to_string();
            async move { c.unpause(&gid).await }
        })
        .await
    }

    pub(crate) async fn force_remove(&self, gid: &str) -> RpcResult<()> {
        self.call("forceRemove", |c| {
            let gid = gid.to_string();
            async move { c.force_remove(&gid).await }
        })
        .await
    }

    pub(crate) async fn remove_result(&self, gid: &str) -> RpcResult<()> {
        self.call("removeDownloadResult", |c| {
            let gid = gid.to_string();
            async move { c.remove_download_result(&gid).await }
        })
        .await
    }

    /// The GIDs aria2 holds in any queue (active, waiting, stopped).
    pub(crate) async fn all_gids(&self) -> RpcResult<Vec<String>> {
        let keys = || Some(vec!["gid".to_string()]);
        let mut maps = self.call("tellActive", |c| async move { c.custom_tell_active(keys()).await }).await?;
        maps.extend(
            self.call("tellWaiting", |c| async move { c.custom_tell_waiting(0, 1000, keys()).await }).await?,
        );
        maps.extend(
            self.call("tellStopped", |c| async move { c.custom_tell_stopped(0, 1000, keys()).await }).await?,
        );
        Ok(maps.iter().filter_map(|m| m.get("gid").and_then(Value::as_str).map(str::to_string)).collect())
    }
}

/// How long to wait before asking again on a dropped connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// The `tellStatus` keys the downloader reads.
const STATUS_KEYS: &[&str] = &[
    "gid",
    "status",
    "totalLength",
    "completedLength",
    "downloadSpeed",
    "errorCode",
    "errorMessage",
    "followedBy",
    "dir",
    "files",
    "bittorrent",
];

fn map_rpc_error(method: &str, url: &str, e: aria2_ws::Error) -> RpcError {
    use aria2_ws::Error as E;
    let kind = match e {
        E::Aria2 { source } => {
            let message = source.message;
            if message.contains("GID") && message.contains("not found") {
                return RpcError::GidNotFound;
            }
            if message == "Unauthorized" {
                ErrorKind::Aria2Unavailable { reason: format!("{url} refused the RPC secret") }
            } else if is_torrent_message(&message) {
                ErrorKind::BadTorrent { reason: super::status::redact(&message) }
            } else {
                ErrorKind::Download { code: i64::from(source.code), message: super::status::redact(&message) }
            }
        }
        E::WebsocketIo { .. } | E::WebsocketClosed { .. } | E::ReconnectTaskTimeout { .. } => {
            ErrorKind::Aria2Unavailable { reason: format!("{method} at {url}: {e}") }
        }
        E::Json { .. } | E::Parse { .. } => {
            ErrorKind::Aria2Unavailable { reason: format!("{method} at {url}: unexpected answer: {e}") }
        }
    };
    RpcError::Other(kind.into())
}

/// aria2 rejects a bad `.torrent` or magnet at `addTorrent`/`addUri` with code 1 and a
/// message naming what failed to parse.
fn is_torrent_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["bencode", "torrent", "magnet", "info hash", "infohash"].iter().any(|w| m.contains(w))
}
