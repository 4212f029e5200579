//! The aria2 downloader against a real, supervised `aria2c` and testkit's file server.
//! Needs `aria2c` (`apt-get install aria2`).

use std::path::Path;
use std::time::Duration;

use mltb_engine::aria2::{Aria2Config, Aria2Downloader};
use mltb_engine::{
    DownloadId, DownloadRequest, DownloadSource, DownloadState, DownloadStatus, Downloader, ErrorKind,
    UrlSource,
};
use mltb_testkit::http::FileServer;
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
    d.shutdown().await;
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
