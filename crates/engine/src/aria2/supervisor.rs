//! [`Aria2Supervisor`]: the engine's own `aria2c`, restarted when it dies.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::Aria2Config;
use super::rpc::{Rpc, Secret};
use crate::{Error, ErrorKind, Result};

/// What aria2 logs when its RPC port is taken; it keeps running without RPC.
const RPC_BIND_FAILED: &str = "RPC: failed to bind";
/// Ports tried at the first start before giving up.
const PORT_ATTEMPTS: usize = 5;

/// An `aria2c` the engine spawns and keeps alive.
///
/// - RPC on `127.0.0.1` only, on a free port, with a random secret (from the OS's
///   randomness). The secret and the proxy go to aria2 in a config file readable by the
///   owner only, not on the command line, so `ps` does not show them; they are never
///   logged and `Debug` does not print them.
/// - `--save-session` every second and `--input-file` of the same session on every
///   start, `--continue=true` and control files saved every second: after a crash of
///   `aria2c` or of the engine, unfinished downloads come back with their GIDs and
///   continue from their partial data.
/// - Seeding off (`--seed-time=0`) unless configured; `--follow-torrent=mem`; DHT, local
///   peer discovery and peer exchange off unless configured; BitTorrent and DHT ports
///   free ones rather than aria2's defaults; `--auto-file-renaming=false` and
///   `--allow-overwrite=false` (a partial file is continued, never replaced);
///   `--rpc-max-request-size=16M` for large `.torrent` files;
///   `--stop-with-process=<engine pid>` so it does not outlive the engine for long.
/// - An `aria2c` still running on the same state directory (the engine was killed and
///   restarted before it noticed) is stopped first, so two never share a session.
/// - When `aria2c` exits, it is restarted on the same port with exponential backoff
///   ([`Aria2Config::restart_backoff`]); after
///   [`Aria2Config::max_failed_restarts`] restarts in a row that fail, the supervisor
///   gives up and calls fail with [`ErrorKind::Aria2Unavailable`].
///
/// Dropping it kills `aria2c` at once (`SIGKILL`); [`shutdown`](Self::shutdown) saves the
/// session first and waits for the exit.
#[derive(Debug)]
pub struct Aria2Supervisor {
    shared: Arc<Shared>,
    rpc: Rpc,
    secret: Secret,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    watcher: Option<JoinHandle<()>>,
}

/// What the watcher task and the supervisor share.
#[derive(Debug)]
struct Shared {
    config: Aria2Config,
    pid: AtomicU32,
    restarts: AtomicU64,
    generation: watch::Sender<u64>,
    gave_up: Mutex<Option<String>>,
}

impl Aria2Supervisor {
    /// Spawns `aria2c` and connects to it; fails with [`ErrorKind::Aria2Unavailable`] if
    /// it does not answer within [`Aria2Config::connect_timeout`] (after trying a few
    /// ports), or [`ErrorKind::Config`] if `aria2c` cannot be run.
    pub async fn start(config: Aria2Config) -> Result<Self> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| Error::io(config.state_dir.display(), &e))?;
        stop_previous(&config).await;
        let secret = Secret::random()?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match spawn_ready(&config, port, &secret).await {
                Ok(child) => {
                    let url = ws_url(port);
                    let rpc =
                        match Rpc::connect(&url, &secret, config.rpc_timeout, config.connect_timeout).await {
                            Ok(rpc) => rpc,
                            Err(e) => {
                                drop(child);
                                return Err(e);
                            }
                        };
                    let (generation, _) = watch::channel(0);
                    let shared = Arc::new(Shared {
                        pid: AtomicU32::new(child.id().unwrap_or(0)),
                        config,
                        restarts: AtomicU64::new(0),
                        generation,
                        gave_up: Mutex::new(None),
                    });
                    let (stop, stop_rx) = oneshot::channel();
                    let watcher =
                        tokio::spawn(watch_child(Arc::clone(&shared), child, port, secret.clone(), stop_rx));
                    tracing::info!(port, "aria2c started");
                    return Ok(Self { shared, rpc, secret, port, stop: Some(stop), watcher: Some(watcher) });
                }
                Err(e @ SpawnError::Fatal(_)) => return Err(e.into()),
                Err(SpawnError::Retry(reason)) => {
                    tracing::debug!(port, %reason, "aria2c did not start; trying another port");
                    last = Some(reason);
                }
            }
        }
        Err(ErrorKind::Aria2Unavailable {
            reason: format!("aria2c did not start: {}", last.unwrap_or_default()),
        }
        .into())
    }

    /// The egress proxy aria2 goes through, when configured.
    pub(crate) fn egress(&self) -> Option<std::sync::Arc<crate::egress::EgressProxy>> {
        self.shared.config.egress.clone()
    }

    /// The process id of the running `aria2c` (`None` between a crash and its restart).
    pub fn pid(&self) -> Option<u32> {
        Some(self.shared.pid.load(Ordering::SeqCst)).filter(|&p| p != 0)
    }

    /// How many times `aria2c` was restarted after it died.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::SeqCst)
    }

    /// The WebSocket RPC endpoint, `ws://127.0.0.1:PORT/jsonrpc`.
    pub fn ws_url(&self) -> String {
        ws_url(self.port)
    }

    /// The RPC secret, for connecting another client to this daemon (e.g. as a
    /// configured endpoint). Treat it as a password: never log it.
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }

    /// Why the supervisor gave up restarting `aria2c`, if it did.
    pub fn gave_up(&self) -> Option<String> {
        self.shared.gave_up.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// Changes each time `aria2c` was restarted and answers again.
    pub(crate) fn restarted(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    /// Saves the session, stops `aria2c` (gracefully: it writes its control files) and
    /// waits for it to exit.
    pub async fn shutdown(mut self) {
        let _ = self.rpc.call("saveSession", |c| async move { c.save_session().await }).await;
        self.rpc.close();
        // SIGTERM is aria2's graceful stop (it writes control files) and takes about a
        // second; `aria2.forceShutdown` over RPC takes four.
        signal(self.shared.pid.load(Ordering::SeqCst), rustix::process::Signal::TERM);
        let _ = std::fs::remove_file(pid_file(&self.shared.config));
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.await;
        }
    }
}

impl Drop for Aria2Supervisor {
    fn drop(&mut self) {
        // The client goes first, while connected: see the module docs on aria2-ws's
        // reconnect task.
        self.rpc.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Kill now rather than when the runtime gets to the watcher, so a supervisor
        // started right after on the same state directory never meets this one.
        signal(self.shared.pid.swap(0, Ordering::SeqCst), rustix::process::Signal::KILL);
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
    }
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Waits for `aria2c` to exit and restarts it, until stopped or out of attempts.
async fn watch_child(
    shared: Arc<Shared>,
    mut child: Child,
    port: u16,
    secret: Secret,
    mut stop: oneshot::Receiver<()>,
) {
    let config = &shared.config;
    let mut backoff = config.backoff_min;
    let mut started = Instant::now();
    loop {
        let status = tokio::select! {
            status = child.wait() => status,
            _ = &mut stop => {
                // A graceful shutdown was asked for; give aria2 a moment to finish it.
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                shared.pid.store(0, Ordering::SeqCst);
                return;
            }
        };
        shared.pid.store(0, Ordering::SeqCst);
        if started.elapsed() >= config.healthy_after {
            backoff = config.backoff_min;
        }
        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        tracing::warn!(%status, "aria2c exited; restarting it");
        let mut failures = 0u32;
        child = loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = &mut stop => return,
            }
            backoff = backoff.saturating_mul(2).min(config.backoff_max);
            match spawn_ready(config, port, &secret).await {
                Ok(child) => break child,
                Err(e) => {
                    failures += 1;
                    let reason = match e {
                        SpawnError::Fatal(e) => e.to_string(),
                        SpawnError::Retry(reason) => reason,
                    };
                    tracing::warn!(failures, %reason, "aria2c restart failed");
                    if failures >= config.max_failed_restarts {
                        let reason =
                            format!("aria2c failed to restart {failures} times in a row; last: {reason}");
                        tracing::error!(%reason, "giving up on aria2c");
                        *shared.gave_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                        return;
                    }
                }
            }
        };
        started = Instant::now();
        shared.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        shared.restarts.fetch_add(1, Ordering::SeqCst);
        shared.generation.send_modify(|g| *g += 1);
        tracing::info!(port, "aria2c restarted");
    }
}

enum SpawnError {
    /// Cannot work however often it is tried (no program, no state directory).
    Fatal(Error),
    /// May work on another attempt or port.
    Retry(String),
}

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::Fatal(e) => e,
            SpawnError::Retry(reason) => ErrorKind::Aria2Unavailable { reason }.into(),
        }
    }
}

/// Spawns `aria2c` on `port` and waits until it listens there.
async fn spawn_ready(
    config: &Aria2Config,
    port: u16,
    secret: &Secret,
) -> std::result::Result<Child, SpawnError> {
    let conf = config.state_dir.join("aria2.conf");
    write_conf(&conf, config, secret).map_err(|e| SpawnError::Fatal(Error::io(conf.display(), &e)))?;
    let session = config.session_file();
    let log = config.log_file();
    // A stale log would still hold an old bind failure.
    let _ = std::fs::remove_file(&log);
    let bt_port = free_port().map_err(SpawnError::Fatal)?;
    let dht_port = free_port().map_err(SpawnError::Fatal)?;
    let mut command = Command::new(&config.program);
    command
        .arg(format!("--conf-path={}", conf.display()))
        .args(["--enable-rpc=true", "--rpc-listen-all=false", "--rpc-max-request-size=16M"])
        .arg(format!("--rpc-listen-port={port}"))
        .args(["--daemon=false", "--quiet=true", "--console-log-level=error"])
        .arg(format!("--log={}", log.display()))
        .arg("--log-level=warn")
        .arg(format!("--save-session={}", session.display()))
        .args(["--save-session-interval=1", "--auto-save-interval=1", "--continue=true"])
        .arg(format!("--seed-time={}", config.seed_time.unwrap_or(0)))
        .arg("--follow-torrent=mem")
        .arg(format!("--enable-dht={}", config.dht))
        .arg(format!("--enable-dht6={}", config.dht))
        .arg(format!("--bt-enable-lpd={}", config.lpd))
        .arg(format!("--enable-peer-exchange={}", config.pex))
        .arg(format!("--listen-port={bt_port}"))
        .arg(format!("--dht-listen-port={dht_port}"))
        .args(["--auto-file-renaming=false", "--allow-overwrite=false"])
        .arg(format!("--stop-with-process={}", std::process::id()))
        .arg(format!("--dir={}", config.state_dir.display()));
    if session.exists() {
        command.arg(format!("--input-file={}", session.display()));
    }
    command
        .args(&config.extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        SpawnError::Fatal(
            ErrorKind::Config {
                setting: "aria2 program",
                value: config.program.display().to_string(),
                expected: format!("an aria2c that can be run ({e}); install it with `apt-get install aria2`"),
            }
            .into(),
        )
    })?;
    let deadline = Instant::now() + config.connect_timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(SpawnError::Retry(format!("aria2c exited with {status}: {}", log_tail(&log))));
        }
        if log_tail(&log).contains(RPC_BIND_FAILED) {
            let _ = child.kill().await;
            return Err(SpawnError::Retry(format!("RPC port {port} is taken")));
        }
        if tokio::net::TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await.is_ok() {
            // aria2 has read it; the secret need not stay on disk.
            let _ = std::fs::remove_file(&conf);
            if let Some(pid) = child.id() {
                let _ = std::fs::write(pid_file(config), pid.to_string());
            }
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill().await;
            return Err(SpawnError::Retry(format!(
                "aria2c did not listen on port {port} within {:?}: {}",
                config.connect_timeout,
                log_tail(&log)
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

fn pid_file(config: &Aria2Config) -> std::path::PathBuf {
    config.state_dir.join("aria2.pid")
}

/// Stops an `aria2c` that a previous engine on the same state directory left running.
///
/// After the engine is killed (`kill -9`), its `aria2c` lives on until it notices
/// (`--stop-with-process` polls); a new one on the same session and files meanwhile
/// would write the same files twice. The pid file names it; its command line must name
/// our session file, so an unrelated process that reused the pid is left alone.
async fn stop_previous(config: &Aria2Config) {
    let Some(pid) = std::fs::read_to_string(pid_file(config)).ok().and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let ours = format!("--save-session={}", config.session_file().display());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !cmdline.split(|&b| b == 0).any(|arg| arg == ours.as_bytes()) || !running(pid) {
        return;
    }
    tracing::warn!(pid, "stopping an aria2c left running by a previous engine");
    for (sig, wait) in [
        (rustix::process::Signal::TERM, Duration::from_secs(5)),
        (rustix::process::Signal::KILL, Duration::from_secs(2)),
    ] {
        signal(pid, sig);
        let deadline = Instant::now() + wait;
        while running(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !running(pid) {
            return;
        }
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The options that must not appear on the command line, in a file only the owner reads.
fn write_conf(path: &Path, config: &Aria2Config, secret: &Secret) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = format!("rpc-secret={}\n", secret.expose());
    if let Some(proxy) = &config.all_proxy {
        text.push_str(&format!("all-proxy={proxy}\n"));
    }
    if let Some(egress) = &config.egress {
        for option in egress.aria2_options() {
            text.push_str(option.trim_start_matches("--"));
            text.push('\n');
        }
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(2000);
            String::from_utf8_lossy(&bytes[start..]).trim().to_string()
        }
        Err(_) => String::new(),
    }
}

fn ws_url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/jsonrpc")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| Error::io("127.0.0.1:0", &e))?;
    Ok(listener.local_addr().map_err(|e| Error::io("127.0.0.1:0", &e))?.port())
}
