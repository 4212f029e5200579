//! `aria2c` as an RPC daemon on a free loopback port, with a random secret and a download
//! directory of its own.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::process::{find_program, log_tail, wait_ready};
use crate::util::random_hex;
use crate::{Error, Result, free_port, wire};

const PROGRAM: &str = "aria2c";
const HINT: &str = "install it with `apt-get install aria2` (scripts/test does this when run as root)";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
const SPAWN_ATTEMPTS: usize = 5;
/// What aria2 logs when its RPC port is taken; it keeps running without RPC, so the
/// probe looks for this to give up on the port at once.
const RPC_BIND_FAILED: &str = "RPC: failed to bind";

/// An `aria2c` daemon this test owns, killed on drop.
///
/// It listens for JSON-RPC (HTTP and WebSocket) on `127.0.0.1` only, demands a random
/// secret, downloads into its own temporary directory, and binds every other socket it
/// opens to `127.0.0.1` (`--interface`), so it can fetch from loopback test servers and
/// nothing else. DHT, local peer discovery and peer exchange are off, and the BitTorrent
/// and DHT ports are fresh free ports rather than aria2's defaults. It exits by itself if
/// the test process dies (`--stop-with-process`).
///
/// Defaults that suit tests: `--seed-time=0` (a torrent completes instead of seeding),
/// `--follow-torrent=mem`, `--allow-overwrite=true`, `--auto-file-renaming=false`,
/// `--check-certificate=false` and `--rpc-max-request-size=16M`; pass others to
/// [`start_with_args`](Self::start_with_args).
#[derive(Debug)]
pub struct Aria2Daemon {
    port: u16,
    secret: String,
    download_dir: PathBuf,
    log: PathBuf,
    // Fields drop in declaration order: the child is killed before its directory goes.
    child: Mutex<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl Aria2Daemon {
    /// Spawns `aria2c` and waits until `aria2.getVersion` answers.
    pub async fn start() -> Result<Self> {
        Self::start_with_args::<_, &str>([]).await
    }

    /// Like [`start`](Self::start), with extra command-line options appended, e.g.
    /// `["--max-concurrent-downloads=1"]`.
    pub async fn start_with_args<I, S>(extra: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = find_program(PROGRAM, HINT)?;
        let extra: Vec<_> = extra.into_iter().map(|s| s.as_ref().to_os_string()).collect();
        let dir = tempfile::Builder::new()
            .prefix("mltb-aria2-")
            .tempdir()
            .map_err(|e| Error::io("creating a temp dir for aria2c", e))?;
        let download_dir = dir.path().join("downloads");
        std::fs::create_dir(&download_dir)
            .map_err(|e| Error::io(format!("creating {}", download_dir.display()), e))?;
        let secret = random_hex(16);
        let mut last_error = None;
        for attempt in 0..SPAWN_ATTEMPTS {
            let port = free_port()?;
            let log = dir.path().join(format!("aria2-{attempt}.log"));
            let spawn =
                Spawn { program: &program, port, secret: &secret, download_dir: &download_dir, log: &log };
            match spawn.run(&extra).await {
                Ok(child) => {
                    return Ok(Self {
                        port,
                        secret,
                        download_dir,
                        log,
                        child: Mutex::new(Some(child)),
                        _dir: dir,
                    });
                }
                Err(e) => {
                    tracing::debug!(port, error = %e, "aria2c did not start; retrying on another port");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Other("aria2c never started".into())))
    }

    /// The HTTP JSON-RPC endpoint, `http://127.0.0.1:PORT/jsonrpc`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/jsonrpc", self.port)
    }

    /// The WebSocket JSON-RPC endpoint, `ws://127.0.0.1:PORT/jsonrpc`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/jsonrpc", self.port)
    }

    /// The RPC port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The RPC secret; calls pass `"token:SECRET"` as their first parameter.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The directory downloads go to unless a call says otherwise (`--dir`).
    pub fn download_dir(&self) -> &Path {
        &self.download_dir
    }

    /// The tail of aria2's log (level `warn`), for assertion messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 4000)
    }

    /// Calls `method` over HTTP JSON-RPC and returns the raw JSON response.
    ///
    /// `params` are JSON values written out as text (`"\"http://…\""`, `"{}"`); the
    /// `token:SECRET` parameter is put first. An RPC error (e.g. an unknown GID) is an
    /// [`Error::Other`] carrying aria2's answer.
    pub async fn rpc(&self, method: &str, params: &[&str]) -> Result<String> {
        let answer = tokio::time::timeout(RPC_TIMEOUT, call(self.port, &self.secret, method, params))
            .await
            .map_err(|_| Error::Other(format!("aria2 {method} did not answer within {RPC_TIMEOUT:?}")))?
            .map_err(|detail| Error::Other(format!("aria2 {method}: {detail}")))?;
        match answer {
            RpcAnswer::Result(body) => Ok(body),
            RpcAnswer::Error(body) => Err(Error::Other(format!("aria2 {method} failed: {body}"))),
        }
    }

    /// aria2's version, from `aria2.getVersion`, e.g. `1.36.0`.
    pub async fn version(&self) -> Result<String> {
        let body = self.rpc("aria2.getVersion", &[]).await?;
        version_of(&body)
            .ok_or_else(|| Error::Other(format!("aria2.getVersion answered without a version: {body}")))
    }

    /// Kills the daemon and waits for it to exit; RPC connections are refused from now on.
    pub async fn stop(&self) -> Result<()> {
        if let Some(mut child) = self.child.lock().await.take() {
            child.kill().await.map_err(|e| Error::io("killing aria2c", e))?;
        }
        Ok(())
    }

    /// Whether the daemon was started and not stopped.
    pub async fn is_running(&self) -> bool {
        self.child.lock().await.is_some()
    }
}

struct Spawn<'a> {
    program: &'a Path,
    port: u16,
    secret: &'a str,
    download_dir: &'a Path,
    log: &'a Path,
}

impl Spawn<'_> {
    async fn run(&self, extra: &[std::ffi::OsString]) -> Result<Child> {
        // Free ports for BitTorrent and DHT too: aria2's defaults (6881-6999) would clash
        // between parallel daemons, and DHT is off but the option is validated anyway.
        let bt_port = free_port()?;
        let dht_port = free_port()?;
        let mut command = Command::new(self.program);
        command
            .arg("--no-conf")
            .args(["--enable-rpc=true", "--rpc-listen-all=false"])
            .arg(format!("--rpc-listen-port={}", self.port))
            .arg(format!("--rpc-secret={}", self.secret))
            .arg("--rpc-max-request-size=16M")
            .arg(format!("--dir={}", self.download_dir.display()))
            .args(["--daemon=false", "--quiet=true", "--console-log-level=error"])
            .arg(format!("--log={}", self.log.display()))
            .arg("--log-level=warn")
            .arg(format!("--stop-with-process={}", std::process::id()))
            .args(["--interface=127.0.0.1", "--disable-ipv6=true"])
            .args([
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
            ])
            .arg(format!("--listen-port={bt_port}"))
            .arg(format!("--dht-listen-port={dht_port}"))
            .args([
                "--seed-time=0",
                "--follow-torrent=mem",
                "--allow-overwrite=true",
                "--auto-file-renaming=false",
            ])
            .arg("--check-certificate=false")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child =
            command.spawn().map_err(|e| Error::io(format!("spawning {}", self.program.display()), e))?;
        let ready = wait_ready(PROGRAM, READY_TIMEOUT, || {
            let exited = child.try_wait().ok().flatten();
            let log = self.log.to_path_buf();
            async move {
                if let Some(status) = exited {
                    return Ok(Err(format!("exited with {status}")));
                }
                let tail = log_tail(&log, 4000);
                if tail.contains(RPC_BIND_FAILED) {
                    return Ok(Err(format!("RPC port {} is taken", self.port)));
                }
                match call(self.port, self.secret, "aria2.getVersion", &[]).await? {
                    RpcAnswer::Result(body) if version_of(&body).is_some() => Ok(Ok(())),
                    RpcAnswer::Result(body) | RpcAnswer::Error(body) => {
                        Err(format!("aria2.getVersion answered {body}"))
                    }
                }
            }
        })
        .await;
        let failure = match ready {
            Ok(Ok(())) => return Ok(child),
            Ok(Err(detail)) => Error::Other(format!("aria2c failed to start: {detail}")),
            Err(Error::NotReady { program, waited, detail }) => Error::NotReady { program, waited, detail },
            Err(e) => e,
        };
        let _ = child.kill().await;
        Err(match failure {
            Error::NotReady { program, waited, detail } => Error::NotReady {
                program,
                waited,
                detail: format!("{detail}; log: {}", log_tail(self.log, 2000)),
            },
            Error::Other(detail) => Error::Other(format!("{detail}; log: {}", log_tail(self.log, 2000))),
            e => e,
        })
    }
}

#[derive(Debug)]
enum RpcAnswer {
    Result(String),
    Error(String),
}

/// One JSON-RPC call over HTTP; `Err` when the transport or the HTTP exchange fails.
async fn call(
    port: u16,
    secret: &str,
    method: &str,
    params: &[&str],
) -> std::result::Result<RpcAnswer, String> {
    let mut all_params = vec![json_string(&format!("token:{secret}"))];
    all_params.extend(params.iter().map(|p| p.to_string()));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"mltb-testkit","method":{},"params":[{}]}}"#,
        json_string(method),
        all_params.join(",")
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let response =
        wire::request(addr, "POST", "/jsonrpc", &[("Content-Type", "application/json")], body.as_bytes())
            .await?;
    let text = response.text();
    if !text.contains(r#""id":"mltb-testkit""#) {
        return Err(format!("HTTP {} without a JSON-RPC answer: {text}", response.status));
    }
    // aria2 answers errors with HTTP 400 and an "error" member; results with 200.
    if response.status == 200 && !text.contains(r#""error":{"#) {
        Ok(RpcAnswer::Result(text))
    } else {
        Ok(RpcAnswer::Error(text))
    }
}

/// The `"version"` string in a `getVersion` answer.
fn version_of(body: &str) -> Option<String> {
    let start = body.find(r#""version":""#)? + r#""version":""#.len();
    let len = body[start..].find('"')?;
    Some(body[start..start + len].to_string()).filter(|v| !v.is_empty())
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_with_its_secret_refuses_others_and_stops() {
        let daemon = Aria2Daemon::start().await.unwrap();
        assert_eq!(daemon.rpc_url(), format!("http://127.0.0.1:{}/jsonrpc", daemon.port()));
        assert_eq!(daemon.ws_url(), format!("ws://127.0.0.1:{}/jsonrpc", daemon.port()));
        assert_eq!(daemon.secret().len(), 32);
        assert!(daemon.download_dir().is_dir());

        let version = daemon.version().await.unwrap();
        assert!(version.split('.').count() >= 2, "not a version: {version}");

        match call(daemon.port(), "not-the-secret", "aria2.getVersion", &[]).await.unwrap() {
            RpcAnswer::Error(body) => assert!(body.contains("Unauthorized"), "{body}"),
            RpcAnswer::Result(body) => panic!("a wrong secret was accepted: {body}"),
        }
        let err = daemon.rpc("aria2.tellStatus", &[r#""0000000000000000""#]).await.unwrap_err();
        assert!(err.to_string().contains("is not found"), "{err}");

        assert!(daemon.is_running().await);
        daemon.stop().await.unwrap();
        assert!(!daemon.is_running().await);
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", daemon.port())).await;
        assert!(refused.is_err(), "a stopped daemon must refuse connections");
    }

    #[tokio::test]
    async fn parallel_daemons_get_distinct_ports_and_secrets() {
        let (a, b) = tokio::join!(Aria2Daemon::start(), Aria2Daemon::start());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a.port(), b.port());
        assert_ne!(a.secret(), b.secret());
        assert_ne!(a.download_dir(), b.download_dir());
        a.version().await.unwrap();
        b.version().await.unwrap();
    }

    /// aria2 really downloads from the loopback file server (its sockets are bound to
    /// 127.0.0.1), in several ranged pieces, under the name the server gives.
    #[tokio::test]
    async fn downloads_from_the_file_server_in_ranges() {
        use crate::http::{FileServer, ServedFile};
        let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        let files = FileServer::builder()
            .serve("/get", ServedFile::new(body.clone()).attachment("named.bin"))
            .start()
            .await
            .unwrap();
        let daemon = Aria2Daemon::start().await.unwrap();
        let uri = json_string(&files.url("/get"));
        let options = r#"{"split":"4","min-split-size":"1M","max-connection-per-server":"4"}"#;
        let added = daemon.rpc("aria2.addUri", &[&format!("[{uri}]"), options]).await.unwrap();
        let gid =
            added.split(r#""result":""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_string();
        let gid_param = json_string(&gid);
        wait_ready("aria2 download", Duration::from_secs(20), || {
            let (daemon, gid_param) = (&daemon, &gid_param);
            async move {
                let status = daemon.rpc("aria2.tellStatus", &[gid_param]).await.map_err(|e| e.to_string())?;
                if status.contains(r#""status":"complete""#) {
                    Ok(())
                } else if status.contains(r#""status":"error""#) {
                    panic!("download failed: {status}");
                } else {
                    Err(status)
                }
            }
        })
        .await
        .unwrap();
        let saved = std::fs::read(daemon.download_dir().join("named.bin")).unwrap();
        assert!(saved == body, "downloaded bytes differ ({} of {} bytes)", saved.len(), body.len());
        assert!(
            files.requests_for("/get") > 1,
            "expected ranged requests, saw {}",
            files.requests_for("/get")
        );
    }

    #[test]
    fn json_helpers() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
        assert_eq!(
            version_of(r#"{"result":{"enabledFeatures":[],"version":"1.36.0"}}"#).as_deref(),
            Some("1.36.0")
        );
        assert_eq!(version_of(r#"{"result":{}}"#), None);
    }
}
