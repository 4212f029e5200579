//! Shared by the integration tests: a real `mltb_engine::Engine` over SQLite in a temp
//! dir, with a tiny downloader and uploader, and the API served on 127.0.0.1:0.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mltb_api::{Api, ApiBuilder, ApiConfig, Metrics, Running, Secret};
use mltb_engine::{
    DownloadId, DownloadRequest, DownloadSource, DownloadState, DownloadStatus, Downloader, Engine,
    EngineConfig, TaskPlanner, UploadContext, UploadOutcome, UploadRequest, Uploader,
};
use mltb_query_analyzer::{Analyzer, AnalyzerConfig};
use mltb_store::{NewTask, Source, SqliteBackend, SqliteStore, StoreConfig, Task, TaskKind};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const CHAT: i64 = -1001;

/// Downloads by URL: `…/hang*` stays active at 1000 of 10 000 bytes until cancelled,
/// `…/fail*` fails, `…/meta*` stays active with no file list (a magnet's metadata),
/// `…/pick*` is a torrent of [`PICK`]'s files, paused until files are selected,
/// anything else writes 4 bytes and completes.
#[derive(Debug, Default)]
pub struct Fake {
    jobs: Mutex<HashMap<String, (String, PathBuf)>>,
    next: Mutex<u64>,
    pub cancelled: Mutex<Vec<String>>,
    /// The files selected, by download.
    pub selected: Mutex<HashMap<String, Vec<u32>>>,
}

/// The files of a `…/pick*` torrent: path, size.
pub const PICK: [(&str, u64); 3] =
    [("pack/docs/a.txt", 100), ("pack/docs/b.txt", 2000), ("pack/c.bin", 30_000)];

#[async_trait::async_trait]
impl Downloader for Fake {
    async fn start(&self, request: &DownloadRequest) -> mltb_engine::Result<DownloadId> {
        let DownloadSource::Url(url) = &request.source else { panic!("the tests only use URLs") };
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let id = format!("g{next}");
        self.jobs.lock().unwrap().insert(id.clone(), (url.url.clone(), request.dir.clone()));
        Ok(DownloadId(id))
    }

    async fn status(&self, id: &DownloadId) -> mltb_engine::Result<DownloadStatus> {
        let (url, dir) = self.jobs.lock().unwrap().get(&id.0).cloned().expect("a known download");
        let name = url.rsplit('/').next().unwrap().to_owned();
        let mut status = if name.starts_with("hang") {
            let mut s = DownloadStatus::new(DownloadState::Active);
            (s.done, s.total, s.speed) = (1000, 10_000, 250);
            s
        } else if name.starts_with("fail") {
            DownloadStatus::new(DownloadState::Failed)
        } else if name.starts_with("meta") {
            DownloadStatus::new(DownloadState::Active)
        } else if name.starts_with("pick") {
            let picked = self.selected.lock().unwrap().get(&id.0).cloned();
            let mut s = DownloadStatus::new(if picked.is_some() {
                DownloadState::Complete
            } else {
                DownloadState::Paused
            });
            let absolute = std::path::absolute(&dir).unwrap();
            for (i, (path, size)) in PICK.iter().enumerate() {
                let on = picked.as_ref().is_none_or(|p| p.contains(&(i as u32 + 1)));
                if picked.is_some() && on {
                    let file = dir.join(path);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(&file, vec![b'x'; *size as usize]).unwrap();
                }
                s.files.push(mltb_engine::DownloadedFile::new(absolute.join(path), *size, on));
            }
            s.total = PICK.iter().map(|f| f.1).sum();
            s.done = if picked.is_some() { s.total } else { 0 };
            return status_named(s, "pack");
        } else {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(&name), b"data").unwrap();
            let mut s = DownloadStatus::new(DownloadState::Complete);
            (s.done, s.total) = (4, 4);
            s
        };
        status.name = Some(name);
        Ok(status)
    }

    async fn cancel(&self, id: &DownloadId) -> mltb_engine::Result<()> {
        self.cancelled.lock().unwrap().push(id.0.clone());
        Ok(())
    }

    async fn resume(&self, id: &DownloadId, request: &DownloadRequest) -> mltb_engine::Result<DownloadId> {
        if self.jobs.lock().unwrap().contains_key(&id.0) { Ok(id.clone()) } else { self.start(request).await }
    }

    async fn select(&self, id: &DownloadId, files: &[u32]) -> mltb_engine::Result<()> {
        self.selected.lock().unwrap().insert(id.0.clone(), files.to_vec());
        Ok(())
    }
}

fn status_named(mut s: DownloadStatus, name: &str) -> mltb_engine::Result<DownloadStatus> {
    s.name = Some(name.into());
    Ok(s)
}

/// Uploads nothing and succeeds.
#[derive(Debug)]
pub struct Nowhere;

#[async_trait::async_trait]
impl Uploader for Nowhere {
    async fn upload(&self, _: &UploadRequest, _: UploadContext<'_>) -> mltb_engine::Result<UploadOutcome> {
        Ok(UploadOutcome::default())
    }
}

#[derive(Debug)]
pub struct Planner;

#[async_trait::async_trait]
impl TaskPlanner for Planner {
    async fn uploader(&self, _: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(Arc::new(Nowhere))
    }
}

/// An engine over a fresh SQLite store, with the query analyzer as the store's sink.
#[derive(Debug)]
pub struct World {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub engine: Engine<SqliteBackend>,
    pub downloads: Arc<Fake>,
    pub analyzer: Arc<Analyzer>,
    pub metrics: Arc<Metrics>,
}

impl World {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
        let store = Arc::new(
            SqliteStore::open_sqlite(dir.path().join("mltb.db"), StoreConfig::new().sink(analyzer.clone()))
                .await
                .unwrap(),
        );
        let downloads = Arc::new(Fake::default());
        let config = EngineConfig::new(dir.path().join("downloads")).poll_interval(Duration::from_millis(20));
        let engine =
            Engine::start(store.clone(), downloads.clone(), Arc::new(Planner), config).await.unwrap();
        Self { dir, store, engine, downloads, analyzer, metrics: Arc::new(Metrics::new()) }
    }

    pub fn download_dir(&self) -> PathBuf {
        self.dir.path().join("downloads")
    }

    pub async fn submit(&self, url: &str) -> Task {
        self.submit_with(url, serde_json::json!({})).await
    }

    pub async fn submit_with(&self, url: &str, options: serde_json::Value) -> Task {
        self.engine
            .submit(&NewTask {
                chat: CHAT,
                user: 7,
                source: Source::Url(url.into()),
                kind: TaskKind::Leech,
                name: None,
                options,
            })
            .await
            .unwrap()
    }

    /// Waits (bounded) until the live task `id` reports progress.
    pub async fn until_downloading(&self, id: i64) {
        let mut changes = self.engine.changes();
        let downloading = async {
            while !self
                .engine
                .tasks()
                .iter()
                .any(|v| v.id == id && v.done == 1000 && v.state.as_str() == "downloading")
            {
                changes.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(10), downloading)
            .await
            .expect("the task downloads within 10 s");
    }

    pub fn config() -> ApiConfig {
        ApiConfig::new().bind_str("127.0.0.1:0").unwrap().token(Secret::new(TOKEN).unwrap())
    }

    pub fn api(&self, config: ApiConfig) -> ApiBuilder {
        Api::builder(config, self.metrics.clone(), Arc::new(self.engine.clone()))
    }
}

/// A served API and the token that stops it.
#[derive(Debug)]
pub struct Served {
    pub running: Running,
    pub stop: CancellationToken,
    pub base: String,
}

pub async fn serve(builder: ApiBuilder) -> Served {
    let stop = CancellationToken::new();
    let running = builder.build().unwrap().serve(stop.clone().cancelled_owned()).await.unwrap();
    let base = format!("http://{}", running.local_addr());
    Served { running, stop, base }
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A stand-in engine with no tasks of its own, for what the real one cannot be made to
/// do: it counts the reads of the task list, each waiting for `gate` to open when there
/// is one, and answers `choice` for `choice_key` with `choice`.
#[derive(Default)]
pub struct StandIn {
    pub reads: std::sync::atomic::AtomicUsize,
    pub gate: Option<tokio::sync::watch::Receiver<bool>>,
    pub choice: Option<(String, mltb_engine::Choice)>,
}

#[async_trait::async_trait]
impl mltb_api::TaskEngine for StandIn {
    fn live(&self) -> Vec<mltb_engine::TaskView> {
        Vec::new()
    }

    fn cancel(&self, _: i64) -> bool {
        false
    }

    fn queue_counts(&self) -> mltb_api::QueueCounts {
        mltb_api::QueueCounts::default()
    }

    async fn stored(&self, _: i64) -> mltb_store::Result<Option<Task>> {
        Ok(None)
    }

    async fn unfinished(&self) -> mltb_store::Result<Vec<Task>> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _ = gate.clone().wait_for(|open| *open).await;
        }
        Ok(Vec::new())
    }

    async fn recent(&self, _: u32) -> mltb_store::Result<Vec<Task>> {
        Ok(Vec::new())
    }

    async fn choice(&self, _: i64, key: &str) -> Result<mltb_engine::Choice, mltb_engine::ChoiceError> {
        match &self.choice {
            Some((k, choice)) if k == key => Ok(choice.clone()),
            _ => Err(mltb_engine::ChoiceError::Unknown),
        }
    }
}
