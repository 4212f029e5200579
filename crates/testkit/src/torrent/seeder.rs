//! A second `aria2c` that seeds a torrent's files to the rest of a loopback swarm.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use super::{Torrent, Tracker};
use crate::process::wait_ready;
use crate::{Aria2Daemon, Error, Result, free_port};

/// How long a seeder may take to check its files and announce itself.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Seeding time in minutes: a week, i.e. for as long as any test runs. `--seed-time=0`
/// (the daemon's default) would stop seeding at once.
const SEED_MINUTES: &str = "10080";
/// Listen ports tried, each a new daemon: the port is free when picked, but another
/// process may bind it before aria2 does.
const SPAWN_ATTEMPTS: usize = 5;
/// What aria2 logs when its BitTorrent listen port is taken. It goes on verifying the
/// files and never announces itself, so the wait gives up on the port when it sees this.
const LISTEN_BIND_FAILED: &str = "BitTorrent: failed to bind TCP port";

/// An `aria2c` that seeds one torrent on `127.0.0.1`, announcing to a [`Tracker`].
///
/// It is an [`Aria2Daemon`] of its own (RPC secret, loopback only, DHT, LPD and PEX off)
/// started with a fixed BitTorrent listen port, `--seed-ratio=0.0` and a seed time of a
/// week, so it seeds until dropped. The torrent is added with `dir` set to the directory
/// holding the complete files and `check-integrity=true`: aria2 verifies every piece
/// against the torrent's hashes before it seeds, so a wrong piece hash or a missing file
/// makes [`start`](Self::start) fail rather than a download hang later.
///
/// # Example
///
/// ```no_run
/// use mltb_testkit::{Aria2Daemon, Seeder, TorrentBuilder, Tracker};
///
/// # async fn demo() -> mltb_testkit::Result<()> {
/// let tracker = Tracker::start().await?;
/// let torrent = TorrentBuilder::single("big.bin", vec![7u8; 3 << 20])
///     .announce(tracker.announce_url())
///     .build()?;
/// let files = tempfile::tempdir().unwrap();
/// torrent.write_files(files.path())?;
/// let seeder = Seeder::start(&torrent, files.path(), &tracker).await?;
/// assert_eq!(tracker.seeders(&torrent.info_hash()), [seeder.peer_addr()]);
///
/// // A leecher: by .torrent, or by magnet link with the tracker in it.
/// let leecher = Aria2Daemon::start().await?;
/// let params = format!(r#""{}""#, torrent.to_base64());
/// leecher.rpc("aria2.addTorrent", &[&params]).await?;
/// let magnet = format!(r#"["{}"]"#, torrent.magnet(Some(&tracker.announce_url())));
/// leecher.rpc("aria2.addUri", &[&magnet]).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Seeder {
    daemon: Aria2Daemon,
    gid: String,
    peer_addr: SocketAddr,
    files_dir: PathBuf,
}

impl Seeder {
    /// Starts `aria2c`, adds `torrent` with its files from `files_dir` (laid out as
    /// [`Torrent::write_files`] does), and waits until aria2 has verified them and
    /// announced itself to `tracker` as a seeder.
    ///
    /// The tracker is added to the torrent's own (`bt-tracker`), so the torrent need not
    /// name it.
    pub async fn start(torrent: &Torrent, files_dir: &Path, tracker: &Tracker) -> Result<Self> {
        for file in torrent.files() {
            let path = files_dir.join(file.path());
            let len = std::fs::metadata(&path)
                .map_err(|e| Error::io(format!("seeder: the torrent's file {}", path.display()), e))?
                .len();
            if len != file.len() {
                return Err(Error::Other(format!(
                    "seeder: {} has {len} bytes, the torrent says {}",
                    path.display(),
                    file.len()
                )));
            }
        }
        Self::start_on(torrent, files_dir, tracker, free_port).await
    }

    /// [`start`](Self::start), listening on the ports `port` gives, one a try.
    async fn start_on(
        torrent: &Torrent,
        files_dir: &Path,
        tracker: &Tracker,
        mut port: impl FnMut() -> Result<u16>,
    ) -> Result<Self> {
        let mut last_error = None;
        for _ in 0..SPAWN_ATTEMPTS {
            let seeder = Self::spawn(torrent, files_dir, tracker, port()?).await?;
            match seeder.wait_seeding(torrent, tracker).await {
                Ok(()) => {
                    tracing::debug!(peer_addr = %seeder.peer_addr, info_hash = %torrent.info_hash_hex(), "seeder ready");
                    return Ok(seeder);
                }
                // Dropped: its daemon is killed, and the next one listens on another port.
                Err(e) if seeder.port_taken() => {
                    tracing::debug!(peer_addr = %seeder.peer_addr, "the seeder's listen port was taken; retrying on another");
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Other("the seeder never started".into())))
    }

    /// A daemon listening for peers on `port`, seeding `torrent` (not yet verified or
    /// announced).
    async fn spawn(torrent: &Torrent, files_dir: &Path, tracker: &Tracker, port: u16) -> Result<Self> {
        let daemon = Aria2Daemon::start_with_args([
            format!("--listen-port={port}"),
            "--seed-ratio=0.0".into(),
            format!("--seed-time={SEED_MINUTES}"),
        ])
        .await?;
        let options = serde_json::json!({
            "dir": files_dir.to_string_lossy(),
            "check-integrity": "true",
            "seed-ratio": "0.0",
            "seed-time": SEED_MINUTES,
            "bt-tracker": tracker.announce_url(),
        });
        let params = [Json::from(torrent.to_base64()).to_string(), "[]".into(), options.to_string()];
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let answer = daemon.rpc("aria2.addTorrent", &params).await?;
        let gid = result(&answer)?
            .as_str()
            .ok_or_else(|| Error::Other(format!("aria2.addTorrent answered without a GID: {answer}")))?
            .to_string();
        let peer_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Ok(Self { daemon, gid, peer_addr, files_dir: files_dir.to_path_buf() })
    }

    /// Whether aria2 could not listen on the seeder's port (another process took it).
    fn port_taken(&self) -> bool {
        self.daemon.log_tail().contains(LISTEN_BIND_FAILED)
    }

    async fn wait_seeding(&self, torrent: &Torrent, tracker: &Tracker) -> Result<()> {
        let info_hash = torrent.info_hash();
        let gid = Json::from(self.gid.as_str()).to_string();
        let keys = r#"["status","completedLength","totalLength","errorCode","errorMessage","verifiedLength","verifyIntegrityPending"]"#;
        let waited = wait_ready("aria2c (seeder)", READY_TIMEOUT, || {
            let gid = &gid;
            async move {
                if self.port_taken() {
                    return Ok(Err(format!(
                        "its listen port {} was taken by another process",
                        self.peer_addr
                    )));
                }
                let status = self
                    .daemon
                    .rpc("aria2.tellStatus", &[gid, keys])
                    .await
                    .and_then(|answer| result(&answer))
                    .map_err(|e| e.to_string())?;
                let field = |k: &str| status.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
                if field("status") == "error" || field("status") == "removed" {
                    return Ok(Err(format!(
                        "the seed download stopped: {} (code {}); {status}",
                        field("errorMessage"),
                        field("errorCode")
                    )));
                }
                let checking =
                    status.get("verifiedLength").is_some() || status.get("verifyIntegrityPending").is_some();
                let complete =
                    field("totalLength") != "0" && field("completedLength") == field("totalLength");
                let announced = tracker.peers(&info_hash).contains(&self.peer_addr);
                if !complete && !checking && announced {
                    // aria2 announces once its check is over; with pieces missing it now leeches.
                    return Ok(Err(format!(
                        "aria2 checked the files and only {} of {} bytes match the torrent's piece hashes",
                        field("completedLength"),
                        field("totalLength")
                    )));
                }
                if !complete {
                    return Err(format!("not verified yet: {status}"));
                }
                if !tracker.seeders(&info_hash).contains(&self.peer_addr) {
                    return Err(format!(
                        "verified, but the tracker does not list {} as a seeder yet (peers: {:?})",
                        self.peer_addr,
                        tracker.peers(&info_hash)
                    ));
                }
                Ok(Ok(()))
            }
        })
        .await;
        let failure = match waited {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(detail)) => Error::Other(format!("seeder for {}: {detail}", self.files_dir.display())),
            Err(Error::NotReady { program, waited, detail }) => Error::NotReady { program, waited, detail },
            Err(e) => e,
        };
        Err(match failure {
            Error::NotReady { program, waited, detail } => Error::NotReady {
                program,
                waited,
                detail: format!("{detail}; log: {}", self.daemon.log_tail()),
            },
            Error::Other(detail) => Error::Other(format!("{detail}; log: {}", self.daemon.log_tail())),
            e => e,
        })
    }

    /// The `aria2c` doing the seeding, for RPC calls of the test's own.
    pub fn daemon(&self) -> &Aria2Daemon {
        &self.daemon
    }

    /// The GID of the seeding download in [`daemon`](Self::daemon).
    pub fn gid(&self) -> &str {
        &self.gid
    }

    /// Where other peers reach it: `127.0.0.1:LISTEN_PORT`, as the tracker lists it.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// How many bytes it has uploaded so far (`uploadLength`).
    pub async fn uploaded(&self) -> Result<u64> {
        let gid = Json::from(self.gid.as_str()).to_string();
        let answer = self.daemon.rpc("aria2.tellStatus", &[&gid, r#"["uploadLength"]"#]).await?;
        let status = result(&answer)?;
        status.get("uploadLength").and_then(Json::as_str).and_then(|n| n.parse().ok()).ok_or_else(|| {
            Error::Other(format!("aria2.tellStatus answered without an uploadLength: {answer}"))
        })
    }

    /// Stops seeding: kills the daemon.
    pub async fn stop(&self) -> Result<()> {
        self.daemon.stop().await
    }
}

/// The `result` member of a JSON-RPC answer.
fn result(answer: &str) -> Result<Json> {
    let mut parsed: Json = serde_json::from_str(answer)
        .map_err(|e| Error::Other(format!("aria2 answered something that is not JSON ({e}): {answer}")))?;
    match parsed.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(Error::Other(format!("aria2 answered without a result: {answer}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TorrentBuilder;

    #[tokio::test]
    async fn a_listen_port_taken_before_aria2_binds_it_is_given_up_for_another() {
        let tracker = Tracker::start().await.unwrap();
        let torrent = TorrentBuilder::single("one.bin", vec![3u8; 100_000])
            .announce(tracker.announce_url())
            .build()
            .unwrap();
        let files = tempfile::tempdir().unwrap();
        torrent.write_files(files.path()).unwrap();
        // The first port offered is held here, as another process may take a free port
        // between the pick and aria2's bind.
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let mut offered = vec![taken_port];
        let seeder =
            Seeder::start_on(&torrent, files.path(), &tracker, || offered.pop().map_or_else(free_port, Ok))
                .await
                .expect("a seeder on the next port");
        assert_ne!(seeder.peer_addr().port(), taken_port);
        assert_eq!(tracker.seeders(&torrent.info_hash()), [seeder.peer_addr()]);
        drop(taken);
    }
}
