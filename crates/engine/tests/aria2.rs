//! The aria2 downloader against a real, supervised `aria2c` and testkit's file server.
//! Needs `aria2c` (`apt-get install aria2`); the disk-full test mounts a 2 MiB tmpfs and
//! needs root. Torrents here come from web seeds (`url-list`) with no peers and no
//! tracker; peer and magnet downloads need the testkit tracker and seeder.

use std::path::Path;
use std::time::Duration;

use mltb_engine::aria2::{Aria2Config, Aria2Downloader, Aria2Endpoint, Aria2Supervisor};
use mltb_engine::{
    DownloadId, DownloadRequest, DownloadSource, DownloadState, DownloadStatus, Downloader, ErrorKind,
    UrlSource,
};
use mltb_testkit::http::{FileServer, ServedFile};
use mltb_testkit::torrent::TorrentBuilder;
use sha2::{Digest, Sha256};

/// Deterministic bytes that differ at every offset that matters.
fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 0x9e37_0000;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn file_sha(path: &Path) -> String {
    sha(&std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
}

fn config(state: &Path) -> Aria2Config {
    Aria2Config::new(state).rpc_timeout(Duration::from_secs(10))
}

async fn downloader(state: &Path) -> Aria2Downloader {
    Aria2Downloader::supervised(config(state)).await.expect("aria2c should start (apt-get install aria2)")
}

fn url(server: &FileServer, path: &str) -> DownloadSource {
    DownloadSource::Url(UrlSource::new(server.url(path)))
}

/// Polls until the download completes or fails, for at most `within`.
async fn finish(d: &Aria2Downloader, id: &DownloadId, within: Duration) -> DownloadStatus {
    let deadline = tokio::time::Instant::now() + within;
    let mut id = id.clone();
    loop {
        let status = d.status(&id).await.unwrap_or_else(|e| panic!("status of {id}: {e}"));
        if let Some(next) = status.followed_by.clone() {
            id = next;
            continue;
        }
        if matches!(status.state, DownloadState::Complete | DownloadState::Failed) {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} did not finish within {within:?}: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `cond` holds for the download's status, for at most `within`.
async fn until(
    d: &Aria2Downloader,
    id: &DownloadId,
    within: Duration,
    cond: impl Fn(&DownloadStatus) -> bool,
) -> DownloadStatus {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = d.status(id).await.unwrap_or_else(|e| panic!("status of {id}: {e}"));
        if cond(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: condition not met within {within:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A file served slowly: `len` bytes in 32 KiB chunks every 50 ms (about 640 KiB/s).
fn slow(len: usize, seed: u8) -> (Vec<u8>, ServedFile) {
    let body = data(len, seed);
    let file = ServedFile::new(body.clone()).drip(32 << 10, Duration::from_millis(50));
    (body, file)
}

/// Waits until process `pid` is gone (bounded).
async fn gone(pid: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        // A killed child of ours stays a zombie until reaped; that counts as gone.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z')) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "aria2c {pid} did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn failure(status: &DownloadStatus) -> &ErrorKind {
    assert_eq!(status.state, DownloadState::Failed, "{status:?}");
    status.error.as_ref().expect("a failed download carries its error").kind()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_a_file_over_http_with_the_right_bytes() {
    let body = data(4 << 20, 1);
    let server = FileServer::builder().file("/big.bin", body.clone()).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = downloader(state.path()).await;

    let request = DownloadRequest::new(url(&server, "/big.bin"), task.path()).name("renamed.bin");
    let id = d.start(&request).await.unwrap();
    assert_eq!(id.0.len(), 16, "one daemon: the id is the GID");
    let status = finish(&d, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    assert_eq!((status.done, status.total), (body.len() as u64, body.len() as u64));
    assert_eq!(status.name.as_deref(), Some("renamed.bin"));
    assert_eq!(status.files.len(), 1);
    assert_eq!(status.files[0].path, task.path().join("renamed.bin"));
    assert_eq!(file_sha(&task.path().join("renamed.bin")), sha(&body));
    // A finished download still answers.
    assert_eq!(d.status(&id).await.unwrap().state, DownloadState::Complete);

    // The RPC secret is neither on aria2c's command line nor printed.
    let supervisor = d.supervisor().unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", supervisor.pid().unwrap())).unwrap();
    let secret = supervisor.secret().to_string();
    assert_eq!(secret.len(), 32);
    assert!(!String::from_utf8_lossy(&cmdline).contains(&secret), "secret on the command line");
    assert!(!format!("{d:?} {supervisor:?}").contains(&secret), "secret in Debug");
    assert!(!state.path().join("aria2.conf").exists(), "the secret does not stay on disk");
    d.shutdown().await;
}

#[tokio::test]
async fn a_missing_aria2c_is_a_clear_config_error() {
    let state = tempfile::tempdir().unwrap();
    let e = Aria2Supervisor::start(config(state.path()).program("/nonexistent/aria2c")).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config { .. }), "{e:?}");
    assert!(
        e.to_string().contains("/nonexistent/aria2c") && e.to_string().contains("apt-get install aria2"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_become_clear_errors() {
    let server = FileServer::builder().status("/broken.bin", 500).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = Aria2Downloader::supervised(config(state.path()).arg("--max-tries=1")).await.unwrap();

    let id = d.start(&DownloadRequest::new(url(&server, "/missing.bin"), task.path())).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    let kind = failure(&status);
    assert!(matches!(kind, ErrorKind::NotFound { .. }), "{kind:?}");

    let id = d.start(&DownloadRequest::new(url(&server, "/broken.bin"), task.path())).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    let kind = failure(&status);
    assert!(matches!(kind, ErrorKind::Download { .. }), "{kind:?}");
    assert!(kind.to_string().contains("500"), "the message names the HTTP status: {kind}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_headers_and_basic_auth() {
    let body = data(300_000, 2);
    let server = FileServer::builder()
        .file("/private.bin", body.clone())
        .basic_auth("/private.bin", "alice", "s3cret")
        .file("/tagged.bin", body.clone())
        .require_header("/tagged.bin", "X-Token", "t0k")
        .start()
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = Aria2Downloader::supervised(config(state.path()).arg("--max-tries=1")).await.unwrap();

    let source = UrlSource::new(server.url("/private.bin")).basic_auth("alice", "s3cret");
    let id = d.start(&DownloadRequest::new(DownloadSource::Url(source), task.path())).await.unwrap();
    assert_eq!(finish(&d, &id, Duration::from_secs(30)).await.state, DownloadState::Complete);
    assert_eq!(file_sha(&task.path().join("private.bin")), sha(&body));

    let source = UrlSource::new(server.url("/tagged.bin")).header("X-Token: t0k");
    let id = d.start(&DownloadRequest::new(DownloadSource::Url(source), task.path())).await.unwrap();
    assert_eq!(finish(&d, &id, Duration::from_secs(30)).await.state, DownloadState::Complete);
    assert_eq!(file_sha(&task.path().join("tagged.bin")), sha(&body));

    // Without the credentials: aria2's "authorization failed".
    let other = tempfile::tempdir().unwrap();
    let source = UrlSource::new(server.url("/private.bin")).basic_auth("alice", "wrong");
    let id = d.start(&DownloadRequest::new(DownloadSource::Url(source), other.path())).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    let kind = failure(&status);
    assert!(matches!(kind, ErrorKind::AuthFailed { .. }), "{kind:?}");
    assert!(!kind.to_string().contains("wrong"), "no password in the error: {kind}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_times_out() {
    // One KiB every 3 s, and aria2 gives up on a connection silent for 2 s.
    let file = ServedFile::new(data(16 << 10, 3)).drip(1024, Duration::from_secs(3));
    let server = FileServer::builder().serve("/stalled.bin", file).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = Aria2Downloader::supervised(config(state.path()).arg("--timeout=2").arg("--max-tries=1"))
        .await
        .unwrap();
    let id = d.start(&DownloadRequest::new(url(&server, "/stalled.bin"), task.path())).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    let kind = failure(&status);
    assert!(matches!(kind, ErrorKind::Timeout { .. }), "{kind:?}");
    assert!(status.error.as_ref().unwrap().is_retryable());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_as_such() {
    let server = FileServer::builder().file("/big.bin", data(4 << 20, 4)).start().await.unwrap();
    let disk = mltb_testkit::SmallDisk::mount("2m");
    let state = tempfile::tempdir().unwrap();
    let d = Aria2Downloader::supervised(config(state.path()).arg("--max-tries=1")).await.unwrap();
    let id = d.start(&DownloadRequest::new(url(&server, "/big.bin"), disk.path())).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    let kind = failure(&status);
    assert!(matches!(kind, ErrorKind::DiskFull { .. }), "{kind:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_aria2c_is_restarted_and_the_download_finishes() {
    let (body, file) = slow(3 << 20, 5);
    let server = FileServer::builder().serve("/slow.bin", file).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = downloader(state.path()).await;
    let id = d.start(&DownloadRequest::new(url(&server, "/slow.bin"), task.path())).await.unwrap();
    until(&d, &id, Duration::from_secs(30), |s| s.done >= 512 << 10).await;

    let supervisor = d.supervisor().unwrap();
    let pid = supervisor.pid().expect("aria2c runs");
    let killed = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while supervisor.restarts() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "aria2c was not restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(supervisor.pid(), Some(pid));

    let status = finish(&d, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    assert_eq!(file_sha(&task.path().join("slow.bin")), sha(&body));
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_leaves_no_aria2_job() {
    let (_, file) = slow(3 << 20, 6);
    let server = FileServer::builder().serve("/slow.bin", file).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = downloader(state.path()).await;
    let id = d.start(&DownloadRequest::new(url(&server, "/slow.bin"), task.path())).await.unwrap();
    until(&d, &id, Duration::from_secs(30), |s| s.done > 0).await;
    assert!(d.jobs().await.unwrap().contains(&id));

    d.cancel(&id).await.unwrap();
    let jobs = d.jobs().await.unwrap();
    assert!(!jobs.contains(&id), "{id} still in aria2: {jobs:?}");
    let e = d.status(&id).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotFound { .. }), "{e:?}");
    // Cancelling again is harmless.
    d.cancel(&id).await.unwrap();
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_downloader_on_the_same_state_resumes_from_partial_data() {
    // 16 KiB every 50 ms: about 10 s in all.
    let body = data(3 << 20, 7);
    let file = ServedFile::new(body.clone()).drip(16 << 10, Duration::from_millis(50));
    let server = FileServer::builder().serve("/slow.bin", file).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let request = DownloadRequest::new(url(&server, "/slow.bin"), task.path());

    let d = downloader(state.path()).await;
    let id = d.start(&request).await.unwrap();
    until(&d, &id, Duration::from_secs(30), |s| s.done >= 512 << 10).await;
    // aria2 saves its session and control file every second: wait until both hold it.
    let session = state.path().join("aria2.session");
    let control = task.path().join("slow.bin.aria2");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(std::fs::read_to_string(&session).unwrap_or_default().contains(&id.0) && control.exists()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "aria2 did not save its session: {:?}, control file: {}",
            std::fs::read_to_string(&session),
            control.exists()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = d.supervisor().unwrap().pid().unwrap();
    drop(d); // the engine dies: aria2c is killed with it
    gone(pid).await;
    let requests_before = server.ranges_for("/slow.bin").len();

    let d = downloader(state.path()).await;
    let resumed = d.resume(&id, &request).await.unwrap();
    assert_eq!(resumed, id, "aria2 restored the GID from its session");
    let status = finish(&d, &resumed, Duration::from_secs(60)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    assert_eq!(file_sha(&task.path().join("slow.bin")), sha(&body));
    let ranges = server.ranges_for("/slow.bin");
    let later = &ranges[requests_before..];
    assert!(
        later.iter().flatten().any(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "the new aria2 asked for the rest only: {later:?}"
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_re_adds_a_download_aria2_never_saved() {
    let (body, file) = slow(1 << 20, 8);
    let server = FileServer::builder().serve("/slow.bin", file).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let request = DownloadRequest::new(url(&server, "/slow.bin"), task.path());
    let d = downloader(state.path()).await;
    let id = DownloadId("00112233445566ff".into());
    let resumed = d.resume(&id, &request).await.unwrap();
    assert_eq!(resumed, id, "re-added with the same GID");
    let status = finish(&d, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    assert_eq!(file_sha(&task.path().join("slow.bin")), sha(&body));
    let e = d.status(&DownloadId("not-a-gid".into())).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidSource { .. }), "{e:?}");
    assert!(e.to_string().contains("not-a-gid"), "{e}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_endpoints_spread_tasks_and_route_by_id() {
    let small = data(200_000, 9);
    let (_, slow_file) = slow(3 << 20, 10);
    let server = FileServer::builder()
        .file("/small.bin", small.clone())
        .serve("/slow.bin", slow_file)
        .start()
        .await
        .unwrap();
    let (sa, sb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Aria2Supervisor::start(config(sa.path())).await.unwrap();
    let b = Aria2Supervisor::start(config(sb.path())).await.unwrap();
    let endpoint = |name: &str, s: &Aria2Supervisor| {
        Aria2Endpoint::new(name, s.ws_url(), s.secret()).rpc_timeout(Duration::from_secs(2))
    };
    let d = Aria2Downloader::endpoints(
        vec![endpoint("a", &a), endpoint("b", &b)],
        "round_robin".parse().unwrap(),
    )
    .await
    .unwrap();
    assert!(!format!("{d:?}").contains(a.secret()), "no secret in Debug");

    let mut dirs = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        ids.push(d.start(&DownloadRequest::new(url(&server, "/small.bin"), dir.path())).await.unwrap());
        dirs.push(dir);
    }
    let on = |name: &str| ids.iter().filter(|id| id.0.starts_with(&format!("{name}/"))).count();
    assert_eq!((on("a"), on("b")), (2, 2), "{ids:?}");
    for (id, dir) in ids.iter().zip(&dirs) {
        assert_eq!(finish(&d, id, Duration::from_secs(30)).await.state, DownloadState::Complete);
        assert_eq!(file_sha(&dir.path().join("small.bin")), sha(&small));
    }

    let slow_dir = tempfile::tempdir().unwrap();
    let x =
        d.start(&DownloadRequest::new(url(&server, "/slow.bin"), slow_dir.path().join("x"))).await.unwrap();
    let y =
        d.start(&DownloadRequest::new(url(&server, "/slow.bin"), slow_dir.path().join("y"))).await.unwrap();
    assert_ne!(x.0[..2], y.0[..2], "one on each daemon: {x} {y}");
    for id in [&x, &y] {
        until(&d, id, Duration::from_secs(30), |s| s.state == DownloadState::Active).await;
    }
    let jobs = d.jobs().await.unwrap();
    assert!(jobs.contains(&x) && jobs.contains(&y), "{jobs:?}");
    d.cancel(&x).await.unwrap();
    let jobs = d.jobs().await.unwrap();
    assert!(!jobs.contains(&x) && jobs.contains(&y), "only {x} is gone: {jobs:?}");
    d.cancel(&y).await.unwrap();
    let jobs = d.jobs().await.unwrap();
    assert!(!jobs.contains(&y), "{jobs:?}");
    let e = d.status(&DownloadId("c/0123456789abcdef".into())).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotFound { .. }), "{e:?}");

    // With b gone, its picks fail (after the call timeout) and a takes every download.
    b.shutdown().await;
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let id = d.start(&DownloadRequest::new(url(&server, "/small.bin"), dir.path())).await.unwrap();
        assert!(id.0.starts_with("a/"), "{id}");
        assert_eq!(finish(&d, &id, Duration::from_secs(30)).await.state, DownloadState::Complete);
    }
    drop(d);
    a.shutdown().await;
}

/// A torrent with a web seed (`url-list`) and no tracker, in 16 KiB pieces: one file
/// with an empty path makes a single-file torrent named `name`.
fn web_seeded(name: &str, files: &[(&str, &[u8])], web_seed: &str) -> Vec<u8> {
    let builder = match files {
        [("", data)] => TorrentBuilder::single(name, data.to_vec()),
        _ => files.iter().fold(TorrentBuilder::multi(name), |b, (path, data)| b.file(*path, data.to_vec())),
    };
    builder.piece_length(PIECE as u32).web_seed(web_seed).build().unwrap().bytes().to_vec()
}

const PIECE: usize = mltb_testkit::torrent::MIN_PIECE_LENGTH as usize;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_with_a_web_seed_downloads_under_its_name() {
    let body = data(200_000, 11);
    let server = FileServer::builder().file("/seed/movie.mkv", body.clone()).start().await.unwrap();
    let t = web_seeded("movie.mkv", &[("", &body)], &server.url("/seed/movie.mkv"));
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = downloader(state.path()).await;
    let id = d.start(&DownloadRequest::new(DownloadSource::Torrent(t), task.path())).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    assert_eq!(status.name.as_deref(), Some("movie.mkv"));
    assert_eq!(file_sha(&task.path().join("movie.mkv")), sha(&body));

    let e = d
        .start(&DownloadRequest::new(DownloadSource::Torrent(b"d4:spami1e".to_vec()), task.path()))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::BadTorrent { .. }), "{e:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_link_is_followed_and_select_picks_files() {
    // Two files, the first exactly two pieces long, so selecting the second needs no
    // byte of the first.
    let (one, two) = (data(2 * PIECE, 12), data(50_000, 13));
    let server = FileServer::builder()
        .file("/ws/pack/one.bin", one.clone())
        .file("/ws/pack/two.bin", two.clone())
        .start()
        .await
        .unwrap();
    // A web seed ending in '/' gets the torrent's name and path appended.
    let t = web_seeded("pack", &[("one.bin", &one), ("two.bin", &two)], &server.url("/ws/"));
    let server2 = FileServer::builder()
        .serve("/pack.torrent", ServedFile::new(t).content_type("application/x-bittorrent"))
        .start()
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = downloader(state.path()).await;
    let request = DownloadRequest::new(url(&server2, "/pack.torrent"), task.path()).select(vec![2]);
    let first = d.start(&request).await.unwrap();
    let status = until(&d, &first, Duration::from_secs(30), |s| s.followed_by.is_some()).await;
    let next = status.followed_by.clone().unwrap();
    assert_ne!(next, first);
    let status = finish(&d, &next, Duration::from_secs(60)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    assert_eq!(status.name.as_deref(), Some("pack"));
    assert_eq!(status.files.len(), 2, "{status:?}");
    assert!(!status.files[0].selected && status.files[1].selected, "{status:?}");
    assert_eq!(file_sha(&task.path().join("pack/two.bin")), sha(&two));
    assert_eq!(server.requests_for("/ws/pack/one.bin"), 0, "the unselected file was not fetched");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_followed_download_removes_both() {
    let body = data(3 << 20, 14);
    let file = ServedFile::new(body.clone()).drip(16 << 10, Duration::from_millis(50));
    let server = FileServer::builder().serve("/seed/big.bin", file).start().await.unwrap();
    let t = web_seeded("big.bin", &[("", &body)], &server.url("/seed/big.bin"));
    let server2 = FileServer::builder().file("/big.torrent", t).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let d = downloader(state.path()).await;
    let first = d.start(&DownloadRequest::new(url(&server2, "/big.torrent"), task.path())).await.unwrap();
    let next =
        until(&d, &first, Duration::from_secs(30), |s| s.followed_by.is_some()).await.followed_by.unwrap();
    until(&d, &next, Duration::from_secs(30), |s| s.done > 0).await;
    d.cancel(&next).await.unwrap();
    let jobs = d.jobs().await.unwrap();
    assert!(!jobs.contains(&next) && !jobs.contains(&first), "{first} / {next} left in aria2: {jobs:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_download_that_finished_before_a_crash_completes_with_the_same_bytes() {
    let body = data(1 << 20, 15);
    let server = FileServer::builder().file("/done.bin", body.clone()).start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let task = tempfile::tempdir().unwrap();
    let request = DownloadRequest::new(url(&server, "/done.bin"), task.path());
    let d = downloader(state.path()).await;
    let id = d.start(&request).await.unwrap();
    assert_eq!(finish(&d, &id, Duration::from_secs(30)).await.state, DownloadState::Complete);
    drop(d);

    // aria2 forgets finished downloads; the engine still has the id and resumes it.
    let d = downloader(state.path()).await;
    let resumed = d.resume(&id, &request).await.unwrap();
    let status = finish(&d, &resumed, Duration::from_secs(30)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    // Re-added with --continue, aria2 finds the whole file there and keeps it (no
    // "file exists" error, no truncation).
    assert_eq!(file_sha(&task.path().join("done.bin")), sha(&body));
    assert_eq!(status.files[0].path, task.path().join("done.bin"), "not renamed");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_disposition_names_the_file_inside_the_task_dir() {
    let body = data(100_000, 16);
    let server = FileServer::builder()
        .serve("/get", ServedFile::new(body.clone()).attachment("report 2024.pdf"))
        .serve("/evil", ServedFile::new(body.clone()).attachment("../../escaped.bin"))
        .start()
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let task = root.path().join("a").join("task");
    std::fs::create_dir_all(&task).unwrap();
    let d = downloader(state.path()).await;

    let id = d.start(&DownloadRequest::new(url(&server, "/get"), &task)).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    assert_eq!(status.name.as_deref(), Some("report 2024.pdf"), "{status:?}");
    assert_eq!(file_sha(&task.join("report 2024.pdf")), sha(&body));

    let id = d.start(&DownloadRequest::new(url(&server, "/evil"), &task)).await.unwrap();
    let status = finish(&d, &id, Duration::from_secs(30)).await;
    assert_eq!(status.state, DownloadState::Complete, "{status:?}");
    for f in &status.files {
        assert!(f.path.starts_with(&task), "{} is outside {}", f.path.display(), task.display());
    }
    assert!(!root.path().join("escaped.bin").exists() && !root.path().join("a/escaped.bin").exists());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_gives_up_after_failed_restarts_and_says_why() {
    let state = tempfile::tempdir().unwrap();
    // aria2c the first time, a failing program after: restarts cannot succeed.
    let wrapper = state.path().join("aria2c-once");
    let marker = state.path().join("ran");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e '{m}' ]; then echo 'refusing to run again' >&2; exit 3; fi\ntouch '{m}'\nexec aria2c \"$@\"\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = config(state.path())
        .program(&wrapper)
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .max_failed_restarts(3);
    let d = Aria2Downloader::supervised(config).await.unwrap();
    let supervisor = d.supervisor().unwrap();
    let pid = supervisor.pid().unwrap();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while supervisor.gave_up().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the supervisor kept restarting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(supervisor.restarts(), 0);
    assert!(supervisor.gave_up().unwrap().contains("3 times"), "{:?}", supervisor.gave_up());
    let e = d.status(&DownloadId("0123456789abcdef".into())).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Aria2Unavailable { .. }), "{e:?}");
    let e = d
        .start(&DownloadRequest::new(
            DownloadSource::Url(UrlSource::new("http://127.0.0.1:9/x")),
            state.path(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Aria2Unavailable { .. }), "{e:?}");
}

const ORPHAN_ENV: &str = "MLTB_ARIA2_ORPHAN_STATE";
const ORPHAN_TEST: &str = "a_restart_after_kill_9_stops_the_old_aria2c_first";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_kill_9_stops_the_old_aria2c_first() {
    if let Ok(state) = std::env::var(ORPHAN_ENV) {
        // The child: an engine with its aria2c, killed by the parent. Watching pid 1
        // instead of this process keeps the orphan alive for as long as the test needs.
        let d = Aria2Downloader::supervised(config(Path::new(&state)).arg("--stop-with-process=1"))
            .await
            .unwrap();
        let mut out = std::io::stdout();
        std::io::Write::write_all(
            &mut out,
            format!("\naria2c-pid {}\n", d.supervisor().unwrap().pid().unwrap()).as_bytes(),
        )
        .unwrap();
        std::io::Write::flush(&mut out).unwrap();
        // Killed long before this ends.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([ORPHAN_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ORPHAN_ENV, state.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let orphan: u32 = std::io::BufRead::lines(stdout)
        .map_while(Result::ok)
        // libtest may have begun the line with the test's name.
        .find_map(|l| l.split("aria2c-pid ").nth(1).map(|p| p.trim().parse().unwrap()))
        .expect("the child reports its aria2c");
    child.kill().unwrap();
    child.wait().unwrap();
    // If the test fails, the orphan (which watches pid 1) must not outlive it.
    struct Reap(u32, std::path::PathBuf);
    impl Drop for Reap {
        fn drop(&mut self) {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&*self.1.to_string_lossy()) {
                let _ = std::process::Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
            }
        }
    }
    let _reap = Reap(orphan, state.path().to_path_buf());
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])))
    };
    assert!(alive(orphan), "the killed engine's aria2c lives on");

    let d = downloader(state.path()).await;
    assert!(!alive(orphan), "the new supervisor stopped the old aria2c before starting its own");
    assert_ne!(d.supervisor().unwrap().pid(), Some(orphan));
    d.shutdown().await;
}
