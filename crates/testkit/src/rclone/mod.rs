//! `rclone serve webdav` on a free loopback port: a network-faithful cloud remote for
//! mirror tests, reachable through an inline connection string with no config file.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::process::{find_program, log_tail, wait_ready};
use crate::{Error, Result, free_port, wire};

const PROGRAM: &str = "rclone";
const HINT: &str = "install it with `apt-get install rclone`";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const SPAWN_ATTEMPTS: usize = 5;
/// How long one readiness probe may take: a port held by a process that never answers
/// must not stall the probe loop.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// What rclone logs when its port is taken; it exits, and the next attempt takes another.
const ADDRESS_IN_USE: &str = "address already in use";

/// An `rclone serve webdav` this test owns, killed on drop.
///
/// It serves either a temporary directory of its own ([`start`](Self::start)), so a test
/// can compare the bytes that arrived on disk, or rclone's in-memory backend
/// ([`start_memory`](Self::start_memory)). It listens on `127.0.0.1` only, without
/// authentication. The remote to copy to is [`remote`](Self::remote), an inline
/// connection string that needs no rclone config file.
#[derive(Debug)]
pub struct RcloneWebdav {
    port: u16,
    served: Option<PathBuf>,
    log: PathBuf,
    // Fields drop in declaration order: the child is killed before its directory goes.
    child: Mutex<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl RcloneWebdav {
    /// Serves a fresh temporary directory ([`dir`](Self::dir)) and waits until a WebDAV
    /// `PROPFIND` answers.
    pub async fn start() -> Result<Self> {
        Self::spawn(true).await
    }

    /// Serves rclone's in-memory backend (`:memory:`); [`dir`](Self::dir) is `None`, and
    /// what is copied lives only as long as this server.
    pub async fn start_memory() -> Result<Self> {
        Self::spawn(false).await
    }

    async fn spawn(on_disk: bool) -> Result<Self> {
        let program = find_program(PROGRAM, HINT)?;
        let dir = tempfile::Builder::new()
            .prefix("mltb-rclone-webdav-")
            .tempdir()
            .map_err(|e| Error::io("creating a temp dir for rclone serve webdav", e))?;
        let served = if on_disk {
            let served = dir.path().join("served");
            std::fs::create_dir(&served)
                .map_err(|e| Error::io(format!("creating {}", served.display()), e))?;
            Some(served)
        } else {
            None
        };
        let mut last_error = None;
        for attempt in 0..SPAWN_ATTEMPTS {
            let port = free_port()?;
            let log = dir.path().join(format!("rclone-{attempt}.log"));
            match spawn_once(&program, served.as_deref(), port, &log).await {
                Ok(child) => {
                    return Ok(Self { port, served, log, child: Mutex::new(Some(child)), _dir: dir });
                }
                Err(e) => {
                    tracing::debug!(port, error = %e, "rclone serve webdav did not start; retrying on another port");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Other("rclone serve webdav never started".into())))
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The remote to give rclone: `:webdav,url='http://127.0.0.1:PORT':`, to which a path
    /// is appended (`…:Mirror/a.bin`). It needs no config file.
    pub fn remote(&self) -> String {
        format!(":webdav,url='{}':", self.url())
    }

    /// The directory served, when it serves one ([`start`](Self::start)): a path copied to
    /// `remote() + "a/b"` lands at `dir().join("a/b")`.
    pub fn dir(&self) -> Option<&Path> {
        self.served.as_deref()
    }

    /// The tail of rclone's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 4000)
    }

    /// Kills the server and waits for it to exit; connections are refused from now on
    /// (to test a failing remote).
    pub async fn stop(&self) -> Result<()> {
        if let Some(mut child) = self.child.lock().await.take() {
            child.kill().await.map_err(|e| Error::io("killing rclone serve webdav", e))?;
        }
        Ok(())
    }

    /// Whether the server was started and not stopped.
    pub async fn is_running(&self) -> bool {
        self.child.lock().await.is_some()
    }
}

async fn spawn_once(program: &Path, served: Option<&Path>, port: u16, log: &Path) -> Result<Child> {
    let stderr =
        std::fs::File::create(log).map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
    let mut command = Command::new(program);
    command
        .args(["serve", "webdav"])
        .arg(served.map_or_else(|| ":memory:".into(), |d| d.as_os_str().to_os_string()))
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| Error::io(format!("spawning {}", program.display()), e))?;
    let ready = wait_ready(PROGRAM, READY_TIMEOUT, || {
        let exited = child.try_wait().ok().flatten();
        async move {
            if let Some(status) = exited {
                let tail = log_tail(log, 4000);
                let why = if tail.contains(ADDRESS_IN_USE) { "its port is taken" } else { "it failed" };
                return Ok(Err(format!("exited with {status} ({why})")));
            }
            propfind(port).await.map(Ok)
        }
    })
    .await;
    let failure = match ready {
        Ok(Ok(())) => return Ok(child),
        Ok(Err(detail)) => Error::Other(format!("rclone serve webdav failed to start: {detail}")),
        Err(e) => e,
    };
    let _ = child.kill().await;
    Err(match failure {
        Error::NotReady { program, waited, detail } => {
            Error::NotReady { program, waited, detail: format!("{detail}; log: {}", log_tail(log, 2000)) }
        }
        Error::Other(detail) => Error::Other(format!("{detail}; log: {}", log_tail(log, 2000))),
        e => e,
    })
}

/// A `PROPFIND /` with `Depth: 0`; a WebDAV server answers 207 Multi-Status.
async fn propfind(port: u16) -> std::result::Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let response =
        tokio::time::timeout(PROBE_TIMEOUT, wire::request(addr, "PROPFIND", "/", &[("Depth", "0")], b""))
            .await
            .map_err(|_| format!("PROPFIND / got no answer within {PROBE_TIMEOUT:?}"))??;
    if response.status == 207 { Ok(()) } else { Err(format!("PROPFIND / answered HTTP {}", response.status)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file PUT over WebDAV lands in the served directory; the server refuses
    /// connections once stopped.
    #[tokio::test]
    async fn serves_its_directory_over_webdav_and_stops() {
        let server = RcloneWebdav::start().await.unwrap();
        assert_eq!(server.remote(), format!(":webdav,url='http://127.0.0.1:{}':", server.port()));
        let dir = server.dir().unwrap().to_path_buf();
        assert!(dir.is_dir());
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        let put = wire::request(addr, "PUT", "/hello.txt", &[], b"hello webdav").await.unwrap();
        assert!(matches!(put.status, 200 | 201 | 204), "PUT answered {}: {}", put.status, server.log_tail());
        assert_eq!(std::fs::read(dir.join("hello.txt")).unwrap(), b"hello webdav");

        assert!(server.is_running().await);
        server.stop().await.unwrap();
        assert!(!server.is_running().await);
        assert!(propfind(server.port()).await.is_err(), "a stopped server must refuse connections");
    }

    #[tokio::test]
    async fn memory_backend_keeps_files_while_it_runs() {
        let server = RcloneWebdav::start_memory().await.unwrap();
        assert!(server.dir().is_none());
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        let mkcol = wire::request(addr, "MKCOL", "/bucket", &[], b"").await.unwrap();
        assert!(matches!(mkcol.status, 200 | 201), "MKCOL answered {}", mkcol.status);
        let put = wire::request(addr, "PUT", "/bucket/a.bin", &[], &[7u8; 100]).await.unwrap();
        assert!(matches!(put.status, 200 | 201 | 204), "PUT answered {}", put.status);
        let get = wire::request(addr, "GET", "/bucket/a.bin", &[], b"").await.unwrap();
        assert_eq!(get.status, 200);
        assert_eq!(get.body, vec![7u8; 100]);
    }

    #[tokio::test]
    async fn parallel_servers_get_distinct_ports() {
        let (a, b) = tokio::join!(RcloneWebdav::start(), RcloneWebdav::start());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a.port(), b.port());
        assert_ne!(a.dir(), b.dir());
    }

    /// A port someone else holds makes rclone exit at once, reported as a port clash so
    /// that `start` retries on another port.
    #[tokio::test]
    async fn a_taken_port_fails_fast_as_a_clash() {
        let program = find_program(PROGRAM, HINT).unwrap();
        let holder = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("clash.log");
        let started = std::time::Instant::now();
        let err = spawn_once(&program, None, port, &log).await.unwrap_err();
        assert!(err.to_string().contains("port is taken"), "{err}");
        assert!(started.elapsed() < READY_TIMEOUT, "took {:?}", started.elapsed());
    }
}
