//! Torrents built by the testkit, checked against aria2 itself, and downloaded by a real
//! aria2 leecher from a loopback swarm: a tracker and aria2 seeders, or web seeds.

use std::path::Path;
use std::time::{Duration, Instant};

use mltb_testkit::{Aria2Daemon, FileServer, Seeder, Torrent, TorrentBuilder, Tracker};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// aria2's own parser (`aria2c --show-files`) reads our torrents and computes the same
/// info hash, layout and piece count.
#[test]
fn aria2_reads_built_torrents_and_agrees_on_the_info_hash() {
    let dir = tempfile::tempdir().unwrap();
    let single = TorrentBuilder::single("one.bin", vec![5u8; 600_000])
        .announce("http://127.0.0.1:1/announce")
        .build()
        .unwrap();
    let multi = TorrentBuilder::multi("pair")
        .file("a.bin", vec![1u8; 70_000])
        .file("sub/b.bin", vec![2u8; 30_000])
        .piece_length(32 * 1024)
        .web_seed("http://127.0.0.1:2/")
        .build()
        .unwrap();
    for (torrent, mode, pieces, paths) in [
        (&single, "single", 3, &["./one.bin"][..]),
        (&multi, "multi", 4, &["./pair/a.bin", "./pair/sub/b.bin"][..]),
    ] {
        let path = dir.path().join(format!("{}.torrent", torrent.name()));
        torrent.save(&path).unwrap();
        let shown = show_files(&path);
        assert!(shown.contains(&format!("Info Hash: {}", torrent.info_hash_hex())), "{shown}");
        assert!(shown.contains(&format!("Mode: {mode}")), "{shown}");
        assert!(shown.contains(&format!("The Number of Pieces: {pieces}")), "{shown}");
        for path in paths {
            assert!(shown.contains(path), "{path} missing from {shown}");
        }
    }
    assert!(
        show_files(&dir.path().join("one.bin.torrent")).contains("Announce:\n http://127.0.0.1:1/announce")
    );
}

fn show_files(path: &std::path::Path) -> String {
    let output =
        std::process::Command::new("aria2c").arg("--show-files=true").arg(path).output().unwrap_or_else(
            |e| panic!("running aria2c failed ({e}); install it with `apt-get install aria2`"),
        );
    assert!(output.status.success(), "aria2c -S failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// --- a loopback swarm: tracker, aria2 seeders, an aria2 leecher ------------------------

const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes that differ from piece to piece, so a misplaced piece cannot go unnoticed.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The tracker, the seeders of a single-file and a two-file torrent, and their content.
struct Swarm {
    tracker: Tracker,
    single: Torrent,
    multi: Torrent,
    content: Vec<(String, Vec<u8>)>,
    seeders: Vec<Seeder>,
    _files: tempfile::TempDir,
}

impl Swarm {
    async fn start() -> Swarm {
        let tracker = Tracker::start().await.unwrap();
        let big = pattern(3 * 1024 * 1024 + 12_345, 1);
        let (a, b) = (pattern(700_000, 2), pattern(333_333, 3));
        let single =
            TorrentBuilder::single("big.bin", big.clone()).announce(tracker.announce_url()).build().unwrap();
        let multi = TorrentBuilder::multi("pair")
            .file("a.bin", a.clone())
            .file("nested/b.bin", b.clone())
            .piece_length(64 * 1024)
            .announce(tracker.announce_url())
            .build()
            .unwrap();
        let files = tempfile::tempdir().unwrap();
        single.write_files(files.path()).unwrap();
        multi.write_files(files.path()).unwrap();
        let (s1, s2) = tokio::join!(
            Seeder::start(&single, files.path(), &tracker),
            Seeder::start(&multi, files.path(), &tracker)
        );
        let content =
            vec![("big.bin".into(), big), ("pair/a.bin".into(), a), ("pair/nested/b.bin".into(), b)];
        Swarm { tracker, single, multi, content, seeders: vec![s1.unwrap(), s2.unwrap()], _files: files }
    }

    fn assert_downloaded(&self, dir: &Path) {
        for (path, bytes) in &self.content {
            let got = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(sha256(&got) == sha256(bytes), "{path}: {} bytes that differ from the source", got.len());
        }
    }

    async fn assert_seeders_uploaded(&self) {
        for seeder in &self.seeders {
            let uploaded = seeder.uploaded().await.unwrap();
            assert!(uploaded > 0, "seeder {} uploaded nothing", seeder.peer_addr());
        }
    }

    fn logs(&self) -> String {
        self.seeders
            .iter()
            .map(|s| format!("seeder {}: {}\n", s.peer_addr(), s.daemon().log_tail()))
            .collect()
    }
}

fn json(text: &str) -> String {
    Json::from(text).to_string()
}

fn gid_of(answer: &str) -> String {
    let answer: Json = serde_json::from_str(answer).unwrap();
    answer["result"].as_str().unwrap_or_else(|| panic!("no GID in {answer}")).to_string()
}

async fn tell_status(daemon: &Aria2Daemon, gid: &str) -> Json {
    let answer = daemon.rpc("aria2.tellStatus", &[&json(gid)]).await.unwrap();
    serde_json::from_str::<Json>(&answer).unwrap()["result"].take()
}

/// Polls `gid` until `done` says so; panics with aria2's logs on an error or the deadline.
async fn wait_for(
    daemon: &Aria2Daemon,
    gid: &str,
    logs: &dyn Fn() -> String,
    done: impl Fn(&Json) -> bool,
) -> Json {
    let start = Instant::now();
    loop {
        let status = tell_status(daemon, gid).await;
        if done(&status) {
            return status;
        }
        let state = status["status"].as_str().unwrap_or_default();
        if state == "error" || state == "removed" || start.elapsed() > DOWNLOAD_TIMEOUT {
            panic!(
                "download {gid} stuck or failed after {:?}: {status}\nleecher log: {}\n{}",
                start.elapsed(),
                daemon.log_tail(),
                logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_complete(daemon: &Aria2Daemon, gid: &str, logs: &dyn Fn() -> String) -> Json {
    wait_for(daemon, gid, logs, |s| s["status"] == "complete").await
}

/// A magnet's `[METADATA]` download hands over to the real one: its GID is in `followedBy`.
async fn follow_metadata(daemon: &Aria2Daemon, gid: &str, logs: &dyn Fn() -> String) -> String {
    let status =
        wait_for(daemon, gid, logs, |s| s["followedBy"].as_array().is_some_and(|f| !f.is_empty())).await;
    status["followedBy"][0].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_downloads_single_and_multi_file_torrents_from_a_loopback_seeder() {
    let swarm = Swarm::start().await;
    let leecher = Aria2Daemon::start().await.unwrap();
    let logs = || swarm.logs();
    let mut gids = Vec::new();
    for torrent in [&swarm.single, &swarm.multi] {
        let added = leecher.rpc("aria2.addTorrent", &[&json(&torrent.to_base64())]).await.unwrap();
        gids.push(gid_of(&added));
    }
    for gid in &gids {
        let status = wait_complete(&leecher, gid, &logs).await;
        assert_eq!(status["completedLength"], status["totalLength"]);
    }
    swarm.assert_downloaded(leecher.download_dir());
    swarm.assert_seeders_uploaded().await;
    // Each seeder announced, and so did the leecher for each torrent.
    for torrent in [&swarm.single, &swarm.multi] {
        assert!(swarm.tracker.announces_for(&torrent.info_hash()) >= 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_downloads_by_magnet_link_with_metadata_from_the_seeder() {
    let swarm = Swarm::start().await;
    let leecher = Aria2Daemon::start().await.unwrap();
    let logs = || swarm.logs();
    let announce = swarm.tracker.announce_url();
    let mut metadata_gids = Vec::new();
    for torrent in [&swarm.single, &swarm.multi] {
        let magnet = torrent.magnet(Some(&announce));
        let added = leecher.rpc("aria2.addUri", &[&format!("[{}]", json(&magnet))]).await.unwrap();
        metadata_gids.push(gid_of(&added));
    }
    for gid in &metadata_gids {
        let real = follow_metadata(&leecher, gid, &logs).await;
        assert_ne!(&real, gid);
        let status = wait_complete(&leecher, &real, &logs).await;
        assert_eq!(status["completedLength"], status["totalLength"]);
    }
    swarm.assert_downloaded(leecher.download_dir());
    swarm.assert_seeders_uploaded().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_downloads_from_web_seeds_with_no_peers_at_all() {
    let big = pattern(2 * 1024 * 1024 + 7, 4);
    let (a, b) = (pattern(100_000, 5), pattern(50_000, 6));
    let server = FileServer::builder()
        .file("/seed/big.bin", big.clone())
        .file("/tree/pair/a.bin", a.clone())
        .file("/tree/pair/nested/b.bin", b.clone())
        .start()
        .await
        .unwrap();
    // A single-file web seed names the file itself; a multi-file one is a directory URL.
    let single =
        TorrentBuilder::single("big.bin", big.clone()).web_seed(server.url("/seed/big.bin")).build().unwrap();
    let multi = TorrentBuilder::multi("pair")
        .file("a.bin", a.clone())
        .file("nested/b.bin", b.clone())
        .piece_length(16 * 1024)
        .web_seed(server.url("/tree/"))
        .build()
        .unwrap();
    let leecher = Aria2Daemon::start().await.unwrap();
    let no_logs = || String::new();
    for torrent in [&single, &multi] {
        let added = leecher.rpc("aria2.addTorrent", &[&json(&torrent.to_base64())]).await.unwrap();
        wait_complete(&leecher, &gid_of(&added), &no_logs).await;
    }
    for (path, bytes) in [("big.bin", &big), ("pair/a.bin", &a), ("pair/nested/b.bin", &b)] {
        let got = std::fs::read(leecher.download_dir().join(path)).unwrap();
        assert!(sha256(&got) == sha256(bytes), "{path} differs from the source");
    }
    assert!(server.requests_for("/seed/big.bin") > 0);
    assert!(server.requests_for("/tree/pair/nested/b.bin") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_with_files_that_do_not_match_the_torrent_fails_to_start() {
    let tracker = Tracker::start().await.unwrap();
    let torrent =
        TorrentBuilder::single("x.bin", pattern(100_000, 7)).piece_length(16 * 1024).build().unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("x.bin"), pattern(100_000, 8)).unwrap();
    let err = Seeder::start(&torrent, files.path(), &tracker).await.unwrap_err().to_string();
    assert!(err.contains("match the torrent's piece hashes"), "{err}");

    std::fs::write(files.path().join("x.bin"), b"short").unwrap();
    let err = Seeder::start(&torrent, files.path(), &tracker).await.unwrap_err().to_string();
    assert!(err.contains("has 5 bytes, the torrent says 100000"), "{err}");
}
