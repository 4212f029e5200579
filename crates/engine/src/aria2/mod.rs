//! Downloads through aria2, over its WebSocket JSON-RPC with the `aria2-ws` client:
//! [`Aria2Downloader`] implements [`Downloader`] over either the engine's own supervised
//! `aria2c` ([`Aria2Supervisor`]) or several configured daemons picked per task by
//! `mltb-balancer`.
//!
//! # Example
//!
//! ```no_run
//! use mltb_engine::aria2::{Aria2Config, Aria2Downloader};
//! use mltb_engine::{DownloadRequest, DownloadSource, Downloader, UrlSource};
//!
//! # async fn run() -> mltb_engine::Result<()> {
//! let downloader = Aria2Downloader::supervised(Aria2Config::new("/var/lib/mltb/aria2")).await?;
//! let source = DownloadSource::Url(UrlSource::new("https://example.org/a.iso").header("Referer: https://example.org/"));
//! let id = downloader.start(&DownloadRequest::new(source, "/var/lib/mltb/tasks/1")).await?;
//! let status = downloader.status(&id).await?;
//! println!("{} of {} bytes", status.done, status.total);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - **Ids.** Every download is added with a GID the downloader chooses (16 random hex
//!   digits, aria2's `gid` option), so an add that times out and lands later cannot
//!   create a second download, and a download re-added after a crash keeps its id. With
//!   one daemon the [`DownloadId`] is the GID; with several it is `NAME/GID`, so status
//!   and cancel go to the daemon that holds it.
//! - **Polling.** Status comes from `tellStatus`, asked for each poll; notifications are
//!   not used at all (see the defects below).
//! - **Re-attaching.** The downloader remembers the request behind every id it started
//!   or resumed. When a supervised `aria2c` restarts it reloads its session (saved every
//!   second) with the same GIDs; a download the session missed is added again with the
//!   same GID and `--continue`, so it continues from its partial data. This happens at
//!   once after a restart and, lazily, whenever a poll finds a remembered GID unknown to
//!   aria2. A download seen complete is remembered as complete, since aria2 forgets
//!   finished downloads on restart.
//! - **Timeouts.** Every RPC call has one ([`Aria2Config::rpc_timeout`], 10 s by
//!   default); a call that runs out fails with [`ErrorKind::Timeout`], a broken or
//!   refused connection with [`ErrorKind::Aria2Unavailable`].
//! - **Errors.** aria2's error codes become the engine's kinds: 3 → `NotFound`,
//!   24 → `AuthFailed`, 9 → `DiskFull`, 25/26/27 → `BadTorrent`, 6/19/5 → `Network`,
//!   2 → `Timeout`, others (22: an HTTP status such as 500, 13: file exists) →
//!   `Download { code, message }` with aria2's message, which names the HTTP status.
//!   URL credentials are removed from messages.
//! - **Balancing.** With several daemons each start asks the balancer for one and
//!   reports the add's outcome and latency. The pick is reported when the add answers,
//!   so the balancer's requests-in-flight count RPCs, not running downloads: round robin
//!   (the default) or P2C spread tasks; exact least connections does not.
//!
//! # aria2-ws 0.5.1 defects and how they are worked around
//!
//! - **Notifications are lossy** (a broadcast channel of capacity 1): not used; state is
//!   polled.
//! - **Calls never time out** (while the socket is down they queue): every call is
//!   wrapped in `tokio::time::timeout`.
//! - **A call can lose its answer.** The connection task registers a call's reply slot
//!   and sends its request from two channels in one `select!`; when it sends first and
//!   the reply arrives before the slot is registered, the reply is dropped and the call
//!   waits forever (rare, but seen against a local aria2c). Every call we make is safe to
//!   repeat (adds carry our own GID), so a call without an answer after a quarter of
//!   its timeout is sent again.
//! - **`Status` is decoded strictly** (required fields, no `bittorrent.info.name`): polls
//!   use `custom_tell_status` with the keys we read and decode them leniently.
//! - **The reconnect task can outlive the client.** Dropping a `Client` wakes the
//!   connection task only if it is waiting on the socket; if it is between reconnect
//!   attempts (aria2 is down) it misses the wake-up and keeps reconnecting every 3 s
//!   forever. So the supervisor restarts `aria2c` on the *same* port and keeps the
//!   same client, which reconnects by itself (within 3 s), and drops the client before
//!   killing `aria2c`.
//! - **`change_option` cannot decode aria2's answer** (`"OK"`; it expects nothing): the
//!   call is made by hand through `call_and_wait`.
//! - **Unbounded memory for notifications** of GIDs without callbacks (the client's
//!   callback worker keeps them): about a hundred bytes per download, for the client's
//!   lifetime. Not worked around; noted here.
//!
//! # aria2 quirks
//!
//! - An add whose GID is taken is logged by aria2 as "GID … is not unique" but answered
//!   with "No URI to download."; the downloader then checks whether the GID exists
//!   (another poll or the re-attach task added it first) and treats that as success.
//! - `aria2.forceShutdown` over RPC takes about four seconds to exit; the supervisor
//!   saves the session and sends `SIGTERM` instead.
//! - A download re-added with `--continue` over a complete file (it finished just before
//!   a crash) completes at once with the file kept.
//!
//! Only `ws://` is supported (aria2-ws is built without TLS); configured endpoints must
//! be on a trusted network or loopback.

mod config;
mod options;
mod rpc;
mod status;
mod supervisor;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use mltb_balancer::{AnyStrategy, Backend, Balancer};
use tokio::task::JoinHandle;

pub use self::config::{Aria2Config, MAX_TIMEOUT};
use self::options::{selection, task_options};
use self::rpc::{Rpc, RpcError, Secret, random_hex};
use self::status::Raw;
pub use self::supervisor::Aria2Supervisor;
use crate::download::{
    DownloadId, DownloadRequest, DownloadSource, DownloadState, DownloadStatus, Downloader,
};
use crate::egress::EgressProxy;
use crate::{Error, ErrorKind, Result};

/// A configured aria2 RPC daemon, for [`Aria2Downloader::endpoints`].
#[derive(Clone)]
pub struct Aria2Endpoint {
    name: String,
    url: String,
    secret: Secret,
    rpc_timeout: Duration,
    egress: Option<Arc<EgressProxy>>,
}

impl fmt::Debug for Aria2Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aria2Endpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Aria2Endpoint {
    /// The daemon `name` (unique, without `/`: it prefixes the ids of its downloads) at
    /// `url` (`ws://host:port/jsonrpc`) with its RPC `secret`. Calls time out after 10 s.
    pub fn new(name: impl Into<String>, url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            secret: Secret::new(secret),
            rpc_timeout: Duration::from_secs(10),
            egress: None,
        }
    }

    /// Sends the daemon's HTTP, HTTPS and FTP downloads through the engine's egress
    /// proxy, which judges every connection (redirects and DNS answers included) by its
    /// policy: each download is added with the proxy options
    /// ([`EgressProxy::aria2_download_options`]) and tagged, so that one the proxy refused
    /// fails with the refusal. The daemon must reach the proxy's address, a loopback one:
    /// a daemon on this host. Without it, links are checked only when submitted.
    pub fn egress(mut self, proxy: Arc<EgressProxy>) -> Self {
        self.egress = Some(proxy);
        self
    }

    /// How long one RPC call may take (at most [`MAX_TIMEOUT`], a longer one is taken as
    /// that).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout.min(MAX_TIMEOUT);
        self
    }
}

/// [`Downloader`] over aria2; see the [module docs](self).
pub struct Aria2Downloader {
    inner: Arc<Inner>,
    reattach: Vec<JoinHandle<()>>,
}

struct Inner {
    nodes: Vec<Node>,
    balancer: Option<Balancer<AnyStrategy>>,
    tracked: Mutex<Book>,
}

/// The downloads the downloader remembers: all unfinished ones, and the last
/// [`MAX_FINISHED`] finished ones.
#[derive(Default)]
struct Book {
    map: HashMap<DownloadId, Tracked>,
    finished: VecDeque<DownloadId>,
}

/// How many finished downloads keep their final status here (aria2 forgets them on
/// restart); older ones are asked of aria2, which keeps `--max-download-result` (1000).
const MAX_FINISHED: usize = 1024;

impl Book {
    /// Records the final status of `id` (complete or failed).
    fn finish(&mut self, id: &DownloadId, status: &DownloadStatus) {
        let Some(t) = self.map.get_mut(id) else { return };
        if t.finished.is_some() {
            return;
        }
        t.finished = Some(status.clone());
        // Only unfinished downloads are ever added again; a torrent's bytes can go.
        if let DownloadSource::Torrent(bytes) = &mut t.request.source {
            *bytes = Vec::new();
        }
        self.finished.push_back(id.clone());
        while self.finished.len() > MAX_FINISHED {
            if let Some(old) = self.finished.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

struct Node {
    name: String,
    rpc: Rpc,
    supervisor: Option<Aria2Supervisor>,
    /// The egress proxy the daemon goes through: its downloads are tagged with their GID,
    /// and a failed one the proxy refused fails with the refusal. A supervised `aria2c`
    /// was started with the proxy's options; a configured daemon gets them with each
    /// download.
    egress: Option<Arc<EgressProxy>>,
}

/// What the downloader remembers of a download it started or resumed.
#[derive(Clone)]
struct Tracked {
    node: usize,
    gid: String,
    request: DownloadRequest,
    /// The download it follows (a magnet's metadata download), removed with it.
    parent: Option<String>,
    /// Its last status once complete.
    finished: Option<DownloadStatus>,
}

impl fmt::Debug for Aria2Downloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<_> = self.inner.nodes.iter().map(|n| (&n.name, n.rpc.url())).collect();
        f.debug_struct("Aria2Downloader")
            .field("nodes", &nodes)
            .field("balanced", &self.inner.balancer.is_some())
            .finish_non_exhaustive()
    }
}

impl Aria2Downloader {
    /// Starts the engine's own `aria2c` with `config` and downloads through it.
    pub async fn supervised(config: Aria2Config) -> Result<Self> {
        Ok(Self::new(Aria2Supervisor::start(config).await?))
    }

    /// Downloads through an already started supervisor. Ids are plain GIDs.
    pub fn new(supervisor: Aria2Supervisor) -> Self {
        let node = Node {
            name: "aria2".into(),
            rpc: supervisor.rpc().clone(),
            egress: supervisor.egress(),
            supervisor: Some(supervisor),
        };
        let inner =
            Arc::new(Inner { nodes: vec![node], balancer: None, tracked: Mutex::new(Book::default()) });
        let reattach = reattach_tasks(&inner);
        Self { inner, reattach }
    }

    /// Connects to configured daemons; each new download goes to the one `strategy`
    /// picks (e.g. `"round_robin".parse()?`). Ids are `NAME/GID`.
    ///
    /// Fails with [`ErrorKind::Config`] for no endpoints or a bad or repeated name, and
    /// with [`ErrorKind::Aria2Unavailable`] if a daemon cannot be reached (10 s each).
    pub async fn endpoints(endpoints: Vec<Aria2Endpoint>, strategy: AnyStrategy) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(config_error("aria2 endpoints", "none".into(), "at least one endpoint"));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            if e.name.is_empty() || e.name.contains('/') || nodes.iter().any(|n| n.name == e.name) {
                return Err(config_error(
                    "aria2 endpoint name",
                    e.name,
                    "a unique, non-empty name without '/'",
                ));
            }
            let rpc = Rpc::connect(&e.url, &e.secret, e.rpc_timeout, Duration::from_secs(10)).await?;
            nodes.push(Node { name: e.name, rpc, supervisor: None, egress: e.egress });
        }
        let backends = nodes.iter().map(|n| Backend::new(n.name.clone(), n.rpc.url().to_string()));
        let balancer = Balancer::new(strategy, backends)
            .map_err(|e| config_error("aria2 balancer", e.to_string(), "a valid balancer"))?;
        let inner = Arc::new(Inner { nodes, balancer: Some(balancer), tracked: Mutex::new(Book::default()) });
        Ok(Self { inner, reattach: Vec::new() })
    }

    /// The balancer that picks among configured daemons, when there are several
    /// (`None` for the engine's own `aria2c`): its members' health, ejections and picks.
    pub fn balancer(&self) -> Option<&Balancer<AnyStrategy>> {
        self.inner.balancer.as_ref()
    }

    /// The supervisor of the engine's own `aria2c`, when it runs one.
    pub fn supervisor(&self) -> Option<&Aria2Supervisor> {
        self.inner.nodes.first().and_then(|n| n.supervisor.as_ref())
    }

    /// The GIDs that aria2 holds in any queue (active, waiting or stopped), on every
    /// daemon, as ids: to check that nothing is left behind.
    pub async fn jobs(&self) -> Result<Vec<DownloadId>> {
        let mut ids = Vec::new();
        for (i, node) in self.inner.nodes.iter().enumerate() {
            for gid in node.rpc.all_gids().await? {
                ids.push(self.inner.id(i, &gid));
            }
        }
        Ok(ids)
    }

    /// Stops every supervised `aria2c` gracefully (saving its session) and waits for it.
    pub async fn shutdown(mut self) {
        for task in self.reattach.drain(..) {
            task.abort();
        }
        let Ok(mut inner) = Arc::try_unwrap(std::mem::replace(&mut self.inner, Arc::new(Inner::empty())))
        else {
            return;
        };
        for node in inner.nodes.drain(..) {
            if let Some(supervisor) = node.supervisor {
                supervisor.shutdown().await;
            }
        }
    }
}

impl Drop for Aria2Downloader {
    fn drop(&mut self) {
        for task in &self.reattach {
            task.abort();
        }
    }
}

fn config_error(setting: &'static str, value: String, expected: &str) -> Error {
    ErrorKind::Config { setting, value, expected: expected.into() }.into()
}

/// One task per supervised daemon: re-attach what it was running after each restart.
fn reattach_tasks(inner: &Arc<Inner>) -> Vec<JoinHandle<()>> {
    inner
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let mut restarted = node.supervisor.as_ref()?.restarted();
            let weak: Weak<Inner> = Arc::downgrade(inner);
            Some(tokio::spawn(async move {
                while restarted.changed().await.is_ok() {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.reattach_node(i).await;
                }
            }))
        })
        .collect()
}

impl Inner {
    fn empty() -> Self {
        Self { nodes: Vec::new(), balancer: None, tracked: Mutex::new(Book::default()) }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self, node: usize, gid: &str) -> DownloadId {
        if self.balancer.is_some() {
            DownloadId(format!("{}/{gid}", self.nodes[node].name))
        } else {
            DownloadId(gid.to_string())
        }
    }

    /// The daemon and GID of `id`; `Ok(None)` for a `NAME/GID` whose daemon is no longer
    /// configured.
    fn locate<'a>(&self, id: &'a DownloadId) -> Result<(Option<usize>, &'a str)> {
        let bad = || -> Error {
            ErrorKind::InvalidSource {
                input: id.0.clone(),
                expected: if self.balancer.is_some() {
                    "an aria2 download id NAME/GID (GID: 16 hex digits)".into()
                } else {
                    "an aria2 GID (16 hex digits)".into()
                },
            }
            .into()
        };
        let (node, gid) = if self.balancer.is_some() {
            let (name, gid) = id.0.split_once('/').ok_or_else(bad)?;
            (self.nodes.iter().position(|n| n.name == name), gid)
        } else {
            (Some(0), id.0.as_str())
        };
        if !is_gid(gid) {
            return Err(bad());
        }
        Ok((node, gid))
    }

    /// Picks a daemon for a new download and adds it there.
    async fn add(&self, request: &DownloadRequest, gid: &str, parent: Option<String>) -> Result<DownloadId> {
        let node = match &self.balancer {
            None => 0,
            Some(balancer) => {
                // A daemon that is down fails its pick, and the next pick (up to one per
                // daemon) gets the download.
                let mut last = None;
                for _ in 0..self.nodes.len() {
                    let pick = balancer.pick().map_err(|e| {
                        Error::from(ErrorKind::Aria2Unavailable {
                            reason: format!("no aria2 daemon to use: {e}"),
                        })
                    })?;
                    let node = self.nodes.iter().position(|n| n.name == pick.id()).unwrap_or(0);
                    let started = Instant::now();
                    match self.add_on(node, request, gid).await {
                        Ok(()) => {
                            pick.success(started.elapsed());
                            return Ok(self.track(node, gid, request, parent));
                        }
                        Err(e) if is_daemon_failure(&e) => {
                            tracing::warn!(daemon = %self.nodes[node].name, error = %e, "aria2 daemon failed an add");
                            pick.failure(started.elapsed());
                            last = Some(e);
                        }
                        // A refused request (bad input) says nothing about the daemon.
                        Err(e) => {
                            pick.success(started.elapsed());
                            return Err(e);
                        }
                    }
                }
                return Err(last.unwrap_or_else(|| {
                    ErrorKind::Aria2Unavailable { reason: "no aria2 daemon answered".into() }.into()
                }));
            }
        };
        self.add_on(node, request, gid).await?;
        Ok(self.track(node, gid, request, parent))
    }

    fn track(&self, node: usize, gid: &str, request: &DownloadRequest, parent: Option<String>) -> DownloadId {
        let id = self.id(node, gid);
        let tracked =
            Tracked { node, gid: gid.to_string(), request: request.clone(), parent, finished: None };
        self.book().map.insert(id.clone(), tracked);
        id
    }

    /// Fails if daemon `node` is a supervised `aria2c` that its supervisor gave up on.
    fn alive(&self, node: usize) -> Result<()> {
        match self.nodes[node].supervisor.as_ref().and_then(Aria2Supervisor::gave_up) {
            Some(reason) => Err(ErrorKind::Aria2Unavailable { reason }.into()),
            None => Ok(()),
        }
    }

    /// Adds `request` on daemon `node` as `gid`, continuing any partial data.
    async fn add_on(&self, node: usize, request: &DownloadRequest, gid: &str) -> Result<()> {
        self.alive(node)?;
        let Node { rpc, egress, supervisor, .. } = &self.nodes[node];
        let mut options = task_options(request, gid)?;
        if let Some(proxy) = egress {
            let through = if supervisor.is_none() { proxy.aria2_download_options() } else { Vec::new() };
            for (key, value) in through.into_iter().chain(EgressProxy::aria2_tag_options(gid)) {
                options.extra_options.insert(key.into(), serde_json::Value::String(value));
            }
        }
        let added = match &request.source {
            DownloadSource::Url(url) => rpc.add_uri(vec![url.url.clone()], options).await,
            DownloadSource::Magnet(magnet) => rpc.add_uri(vec![magnet.clone()], options).await,
            DownloadSource::Torrent(bytes) => rpc.add_torrent(bytes.clone(), options).await,
        };
        match added {
            Ok(_) => Ok(()),
            // Someone (the re-attach task, a poll) added it first; it is there.
            Err(RpcError::Other(e)) if is_duplicate_gid(&e) && rpc.tell(gid).await.is_ok() => Ok(()),
            Err(RpcError::Other(e)) if matches!(e.kind(), ErrorKind::Timeout { .. }) => {
                // The add may still land; it carries our GID, so it can be removed.
                let _ = rpc.force_remove(gid).await;
                Err(e)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Polls `id`, re-attaching it if aria2 lost it.
    async fn status(&self, id: &DownloadId) -> Result<DownloadStatus> {
        let (node, gid) = self.locate(id)?;
        let tracked = self.book().map.get(id).cloned();
        if let Some(status) = tracked.as_ref().and_then(|t| t.finished.clone()) {
            return Ok(status);
        }
        let Some(node) = node.or(tracked.as_ref().map(|t| t.node)) else {
            return Err(unknown(id));
        };
        self.alive(node)?;
        let rpc = &self.nodes[node].rpc;
        let raw = match rpc.tell(gid).await {
            Ok(raw) => raw,
            Err(RpcError::GidNotFound) => {
                let Some(t) = &tracked else { return Err(unknown(id)) };
                tracing::info!(%id, "aria2 lost the download; adding it again to continue");
                self.add_on(node, &t.request, gid).await?;
                rpc.tell(gid).await?
            }
            Err(RpcError::Other(e)) => return Err(e),
        };
        let raw = Raw(&raw);
        let followed_by = raw.followed_by().filter(|g| is_gid(g)).map(|next| {
            let request = tracked.as_ref().map(|t| t.request.clone());
            let next_id = self.id(node, &next);
            match request {
                Some(request) if !self.book().map.contains_key(&next_id) => {
                    self.track(node, &next, &request, Some(gid.to_string()))
                }
                _ => next_id,
            }
        });
        let mut status = raw.to_status(followed_by);
        if status.state == DownloadState::Failed
            && let Some(refusal) = self.nodes[node].egress.as_ref().and_then(|p| p.last_refusal_for(gid))
        {
            status.error = Some(refusal.to_error());
        }
        let last = status.state == DownloadState::Failed
            || (status.state == DownloadState::Complete && status.followed_by.is_none());
        if last {
            self.book().finish(id, &status);
        }
        Ok(status)
    }

    async fn cancel(&self, id: &DownloadId) -> Result<()> {
        let (node, gid) = self.locate(id)?;
        let tracked = self.book().map.get(id).cloned();
        let Some(node) = node.or(tracked.as_ref().map(|t| t.node)) else {
            self.book().map.remove(id);
            return Ok(());
        };
        let rpc = &self.nodes[node].rpc;
        match rpc.force_remove(gid).await {
            Ok(()) | Err(RpcError::GidNotFound) => {}
            // A stopped download cannot be removed, only its result.
            Err(RpcError::Other(e)) if matches!(e.kind(), ErrorKind::Download { .. }) => {}
            Err(RpcError::Other(e)) => return Err(e),
        }
        // forceRemove returns at once; the download stops a moment later.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match rpc.tell(gid).await {
                Err(RpcError::GidNotFound) => break,
                Ok(raw) if !matches!(Raw(&raw).status(), "active" | "waiting" | "paused") => break,
                Ok(_) => {}
                Err(RpcError::Other(e)) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ErrorKind::Timeout {
                    what: format!("aria2 stopping download {id}"),
                    after: Duration::from_secs(10),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for g in std::iter::once(gid).chain(tracked.as_ref().and_then(|t| t.parent.as_deref())) {
            match rpc.remove_result(g).await {
                Ok(()) | Err(RpcError::GidNotFound) => {}
                Err(RpcError::Other(e)) if matches!(e.kind(), ErrorKind::Download { .. }) => {}
                Err(RpcError::Other(e)) => return Err(e),
            }
        }
        self.book().map.remove(id);
        Ok(())
    }

    async fn resume(&self, id: &DownloadId, request: &DownloadRequest) -> Result<DownloadId> {
        let (node, gid) = self.locate(id)?;
        let Some(node) = node else {
            // Its daemon is gone from the config: continue elsewhere, same GID.
            return self.add(request, gid, None).await;
        };
        match self.nodes[node].rpc.tell(gid).await {
            Ok(_) => Ok(self.track(node, gid, request, None)),
            Err(RpcError::GidNotFound) => {
                self.add_on(node, request, gid).await?;
                Ok(self.track(node, gid, request, None))
            }
            Err(RpcError::Other(e)) => Err(e),
        }
    }

    /// Downloads only `files` of the paused torrent `id`, and starts it; adds it again,
    /// chosen, when aria2 lost it.
    async fn select(&self, id: &DownloadId, files: &[u32]) -> Result<()> {
        let (node, gid) = self.locate(id)?;
        let chosen = selection(files)?;
        let tracked = {
            let mut book = self.book();
            // A re-add after a loss downloads the chosen files, unpaused.
            if let Some(t) = book.map.get_mut(id) {
                t.request.select = Some(files.to_vec());
                t.request.choose = false;
            }
            book.map.get(id).cloned()
        };
        let Some(node) = node.or(tracked.as_ref().map(|t| t.node)) else {
            return Err(unknown(id));
        };
        self.alive(node)?;
        let rpc = &self.nodes[node].rpc;
        let options = chosen.into_iter().map(|(k, v)| (k.to_owned(), serde_json::Value::String(v))).collect();
        match rpc.change_option(gid, options).await {
            Ok(()) => {}
            Err(RpcError::GidNotFound) => {
                let Some(t) = &tracked else { return Err(unknown(id)) };
                return self.add_on(node, &t.request, gid).await;
            }
            Err(RpcError::Other(e)) => return Err(e),
        }
        match rpc.unpause(gid).await {
            Ok(()) => Ok(()),
            // Started already (a repeat): nothing left to do.
            Err(e) => match rpc.tell(gid).await {
                Ok(raw) if Raw(&raw).status() != "paused" => Ok(()),
                _ => Err(e.into()),
            },
        }
    }

    /// After a restart of daemon `node`: adds again what its session did not restore.
    async fn reattach_node(&self, node: usize) {
        let pending: Vec<(DownloadId, Tracked)> = self
            .book()
            .map
            .iter()
            .filter(|(_, t)| t.node == node && t.finished.is_none())
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        let rpc = &self.nodes[node].rpc;
        for (id, t) in pending {
            let result = match rpc.tell(&t.gid).await {
                Ok(_) => Ok(()),
                Err(RpcError::GidNotFound) => self.add_on(node, &t.request, &t.gid).await,
                Err(RpcError::Other(e)) => Err(e),
            };
            match result {
                Ok(()) => tracing::debug!(%id, "download re-attached after aria2c restarted"),
                Err(e) => {
                    tracing::warn!(%id, error = %e, "could not re-attach a download after aria2c restarted")
                }
            }
        }
    }
}

fn is_daemon_failure(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Timeout { .. } | ErrorKind::Aria2Unavailable { .. })
}

fn unknown(id: &DownloadId) -> Error {
    ErrorKind::NotFound { what: format!("download {id} (neither aria2 nor this downloader knows it)") }.into()
}

fn is_gid(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// aria2 may have refused an add because the GID is taken. aria2 1.36 logs "GID … is
/// not unique" but answers addUri with "No URI to download." (it drops the failed
/// group); the caller checks that the GID exists.
fn is_duplicate_gid(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Download { message, .. }
        if message.contains("not unique") || message.contains("No URI to download"))
}

#[async_trait::async_trait]
impl Downloader for Aria2Downloader {
    #[tracing::instrument(skip_all)]
    async fn start(&self, request: &DownloadRequest) -> Result<DownloadId> {
        // The id the pipeline recorded before the start, when it is a GID; else our own.
        let gid = match &request.id {
            Some(id) if is_gid(&id.0) => id.0.clone(),
            _ => random_hex(8)?,
        };
        self.inner.add(request, &gid, None).await
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn status(&self, id: &DownloadId) -> Result<DownloadStatus> {
        self.inner.status(id).await
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn cancel(&self, id: &DownloadId) -> Result<()> {
        self.inner.cancel(id).await
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn resume(&self, id: &DownloadId, request: &DownloadRequest) -> Result<DownloadId> {
        self.inner.resume(id, request).await
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn select(&self, id: &DownloadId, files: &[u32]) -> Result<()> {
        self.inner.select(id, files).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_downloads_are_remembered_up_to_a_bound() {
        let mut book = Book::default();
        let request = DownloadRequest::new(DownloadSource::Torrent(b"d4:infod4:name1:aee".to_vec()), "/d");
        let done = DownloadStatus::new(DownloadState::Complete);
        for i in 0..MAX_FINISHED + 5 {
            let id = DownloadId(format!("{i:016x}"));
            let t = Tracked {
                node: 0,
                gid: id.0.clone(),
                request: request.clone(),
                parent: None,
                finished: None,
            };
            book.map.insert(id.clone(), t);
            book.finish(&id, &done);
            book.finish(&id, &done);
        }
        let unfinished = DownloadId("ffffffffffffffff".into());
        let t = Tracked { node: 0, gid: unfinished.0.clone(), request, parent: None, finished: None };
        book.map.insert(unfinished.clone(), t);
        assert_eq!(book.map.len(), MAX_FINISHED + 1);
        assert!(!book.map.contains_key(&DownloadId(format!("{:016x}", 0))), "the oldest went first");
        assert!(book.map.contains_key(&unfinished));
        let last = &book.map[&DownloadId(format!("{:016x}", MAX_FINISHED + 4))];
        assert_eq!(last.request.source, DownloadSource::Torrent(Vec::new()), "bytes dropped");
    }

    #[test]
    fn gids() {
        assert!(is_gid("0123456789abcdef"));
        assert!(!is_gid("0123456789abcde"));
        assert!(!is_gid("0123456789abcdeg"));
    }
}
