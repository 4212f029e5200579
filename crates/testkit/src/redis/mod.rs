//! `redis-server` on a free loopback port, or the server named by `REDIS_URL`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::process::{find_program, log_tail, wait_ready};
use crate::util::{random_hex, redact};
use crate::{Error, Result, free_port};

const PROGRAM: &str = "redis-server";
const HINT: &str = "install it with `apt-get install redis-server` (scripts/test does this when run as root)";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const SPAWN_ATTEMPTS: usize = 5;

/// A `redis-server` this test owns: its own port, its own empty data, killed on drop.
///
/// Use it when a test must stop or restart Redis (fault tests); use [`SharedRedis`] when
/// any Redis will do.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Spawns `redis-server` on a free loopback port and waits until it answers `PING`.
    pub async fn start() -> Result<Self> {
        let program = find_program(PROGRAM, HINT)?;
        let dir = tempfile::Builder::new()
            .prefix("mltb-redis-")
            .tempdir()
            .map_err(|e| Error::io("creating a temp dir for redis-server", e))?;
        let mut last_error = None;
        for _ in 0..SPAWN_ATTEMPTS {
            let port = free_port()?;
            match spawn(&program, dir.path().to_path_buf(), port).await {
                Ok(child) => return Ok(Self { port, dir, child: Mutex::new(Some(child)) }),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Other("redis-server never started".into())))
    }

    /// The server's URL, `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and waits for it to exit; connections to it fail from now on.
    pub async fn stop(&self) -> Result<()> {
        if let Some(mut child) = self.child.lock().await.take() {
            child.kill().await.map_err(|e| Error::io("killing redis-server", e))?;
        }
        Ok(())
    }

    /// Starts the server again on the same port (with empty data) after [`stop`](Self::stop).
    pub async fn restart(&self) -> Result<()> {
        let mut guard = self.child.lock().await;
        if guard.is_some() {
            return Ok(());
        }
        let program = find_program(PROGRAM, HINT)?;
        *guard = Some(spawn(&program, self.dir.path().to_path_buf(), self.port).await?);
        Ok(())
    }

    /// Whether the server was started and not stopped.
    pub async fn is_running(&self) -> bool {
        self.child.lock().await.is_some()
    }
}

async fn spawn(program: &std::path::Path, dir: PathBuf, port: u16) -> Result<Child> {
    let log = dir.join(format!("redis-{port}.log"));
    let mut child = Command::new(program)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io(format!("spawning {}", program.display()), e))?;
    let ready = wait_ready(PROGRAM, READY_TIMEOUT, || {
        let exited = child.try_wait().ok().flatten();
        async move {
            match exited {
                Some(status) => Err(format!("exited with {status}")),
                None => ping(port).await,
            }
        }
    })
    .await;
    match ready {
        Ok(()) => Ok(child),
        Err(Error::NotReady { program, waited, detail }) => {
            let _ = child.kill().await;
            Err(Error::NotReady {
                program,
                waited,
                detail: format!("{detail}; log: {}", log_tail(&log, 2000)),
            })
        }
        Err(e) => Err(e),
    }
}

/// Sends `PING` over a raw connection and expects `+PONG`.
async fn ping(port: u16) -> std::result::Result<(), String> {
    ping_addr(&format!("127.0.0.1:{port}")).await
}

async fn ping_addr(addr: &str) -> std::result::Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    stream.write_all(b"PING\r\n").await.map_err(|e| format!("write to {addr}: {e}"))?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).await.map_err(|e| format!("read from {addr}: {e}"))?;
    if buf[..n].starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(format!("{addr} answered PING with {:?}", String::from_utf8_lossy(&buf[..n])))
    }
}

/// Any Redis a test may use: `REDIS_URL` when set, otherwise a spawned [`RedisServer`].
///
/// Keys on a shared server outlive the test, so namespace them with
/// [`key_prefix`](Self::key_prefix).
#[derive(Debug)]
pub struct SharedRedis {
    url: String,
    prefix: String,
    _owned: Option<RedisServer>,
}

impl SharedRedis {
    /// Connects to `REDIS_URL` (checking it answers `PING`) or spawns a server.
    pub async fn get() -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "mltb-test:{}:{}:{}:",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            random_hex(4)
        );
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => {
                let addr = host_port(&url).ok_or_else(|| Error::BadEnv {
                    var: "REDIS_URL",
                    value: redact(&url),
                    detail: "expected redis://HOST:PORT[/DB] without a password (plain TCP)".into(),
                })?;
                ping_addr(&addr).await.map_err(|detail| Error::BadEnv {
                    var: "REDIS_URL",
                    value: redact(&url),
                    detail,
                })?;
                Ok(Self { url, prefix, _owned: None })
            }
            _ => {
                let server = RedisServer::start().await?;
                Ok(Self { url: server.url(), prefix, _owned: Some(server) })
            }
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A key prefix unique to this handle, e.g. `mltb-test:1234:0:9f3a1c2e:`.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }
}

/// `REDIS_URL` when set, otherwise `redis://127.0.0.1:6379/`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".into())
}

fn host_port(url: &str) -> Option<String> {
    let rest = url.strip_prefix("redis://")?;
    if rest.contains('@') {
        return None;
    }
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    Some(if authority.contains(':') { authority.to_string() } else { format!("{authority}:6379") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_stop_restart_on_same_port() {
        let server = RedisServer::start().await.unwrap();
        ping(server.port()).await.unwrap();
        server.stop().await.unwrap();
        assert!(ping(server.port()).await.is_err(), "a stopped server must refuse connections");
        server.restart().await.unwrap();
        ping(server.port()).await.unwrap();
    }

    #[tokio::test]
    async fn shared_redis_answers_and_prefixes_are_unique() {
        let a = SharedRedis::get().await.unwrap();
        let b = SharedRedis::get().await.unwrap();
        assert_ne!(a.key_prefix(), b.key_prefix());
        ping_addr(&host_port(a.url()).unwrap()).await.unwrap();
    }

    #[test]
    fn url_parsing_and_redaction() {
        assert_eq!(host_port("redis://127.0.0.1:6380/0").as_deref(), Some("127.0.0.1:6380"));
        assert_eq!(host_port("redis://localhost").as_deref(), Some("localhost:6379"));
        assert_eq!(host_port("redis://:pw@localhost"), None);
        assert_eq!(host_port("http://x"), None);
        assert_eq!(redact("redis://user:secret@host:1/"), "redis://***@host:1/");
    }
}
