//! The task pipeline over the real aria2 downloader: a supervised `aria2c` fetching from
//! testkit's file server, leeching to the Telegram simulator. Needs `aria2c`
//! (`apt-get install aria2`).

use std::sync::Arc;
use std::time::Duration;

use mltb_engine::aria2::{Aria2Config, Aria2Downloader};
use mltb_engine::egress::{EgressPolicy, EgressProxy};
use mltb_engine::leech::{LeechTarget, TelegramUploader};
use mltb_engine::{DownloadId, Engine, EngineConfig, TaskPlanner, Uploader};
use mltb_store::{NewTask, Source, SqliteBackend, SqliteStore, StoreConfig, Task, TaskKind, TaskState};
use mltb_telegram::Client;
use mltb_telegram::scheduler::Scheduler;
use mltb_telegram_sim::{Sim, SimConfig};
use mltb_testkit::http::{FileServer, ServedFile};
use sha2::{Digest, Sha256};

const CHAT: i64 = 601;

struct Leech {
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
    split: u64,
}

#[async_trait::async_trait]
impl TaskPlanner for Leech {
    async fn uploader(&self, task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(Arc::new(TelegramUploader::new(
            self.scheduler.clone(),
            self.store.clone(),
            LeechTarget::new(task.chat, self.split),
        )?))
    }
}

struct Setup {
    sim: Sim,
    store: Arc<SqliteStore>,
    aria2: Arc<Aria2Downloader>,
    engine: Engine<SqliteBackend>,
    _dir: tempfile::TempDir,
}

async fn setup(split: u64) -> Setup {
    setup_with(split, None).await
}

/// With `egress`, the engine checks submitted links and aria2 goes through the proxy.
async fn setup_with(split: u64, egress: Option<(Arc<EgressPolicy>, Arc<EgressProxy>)>) -> Setup {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_chat(CHAT);
    let client = Client::builder(sim.token()).api_url(sim.api_url()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open_sqlite(dir.path().join("mltb.db"), StoreConfig::new()).await.unwrap());
    let planner =
        Arc::new(Leech { scheduler: Scheduler::builder().build(client), store: store.clone(), split });
    // How the bot composes it: the engine's own aria2c, its session beside the store.
    let mut aria2_config = Aria2Config::new(dir.path().join("aria2"));
    let mut config = EngineConfig::new(dir.path().join("downloads")).poll_interval(Duration::from_millis(50));
    if let Some((policy, proxy)) = egress {
        aria2_config = aria2_config.egress(proxy);
        config = config.egress(policy);
    }
    let aria2 = Arc::new(
        Aria2Downloader::supervised(aria2_config).await.expect("aria2c should start (apt-get install aria2)"),
    );
    let engine = Engine::start(store.clone(), aria2.clone(), planner, config).await.unwrap();
    Setup { sim, store, aria2, engine, _dir: dir }
}

fn leech(url: String) -> NewTask {
    NewTask {
        chat: CHAT,
        user: 1,
        source: Source::Url(url),
        kind: TaskKind::Leech,
        name: None,
        options: serde_json::json!({}),
    }
}

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

fn part_hashes(source: &[u8], split: usize) -> Vec<String> {
    source.chunks(split).map(|c| format!("{:x}", Sha256::digest(c))).collect()
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leech_through_aria2_sends_byte_exact_parts() {
    let s = setup(1_000_000).await;
    let source = data(2_500_000, 1);
    let server = FileServer::builder().file("/a.iso", source.clone()).start().await.unwrap();
    let task = s.engine.submit(&leech(server.url("/a.iso"))).await.unwrap();
    s.engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.name.as_deref()), (TaskState::Completed, Some("a.iso")), "{stored:?}");
    assert_eq!(stored.gid.as_deref().map(str::len), Some(16), "the aria2 GID is recorded");
    let hashes: Vec<_> = s.sim.sent().into_iter().filter_map(|o| o.file.map(|f| f.sha256)).collect();
    assert_eq!(hashes, part_hashes(&source, 1_000_000));
    assert!(!s.engine.task_dir(task.id).exists());
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_download_leaves_no_aria2_job_and_no_files() {
    let s = setup(10_000_000).await;
    let file = ServedFile::new(data(3 << 20, 2)).drip(16 << 10, Duration::from_millis(50));
    let server = FileServer::builder().serve("/slow.bin", file).start().await.unwrap();
    let task = s.engine.submit(&leech(server.url("/slow.bin"))).await.unwrap();
    let store = s.store.clone();
    until("the download makes progress", || {
        let store = store.clone();
        async move {
            let t = store.task(task.id).await.unwrap().unwrap();
            t.state == TaskState::Downloading && t.gid.is_some()
        }
    })
    .await;
    let gid = DownloadId(s.store.task(task.id).await.unwrap().unwrap().gid.unwrap());
    until("aria2 runs it", || {
        let aria2 = s.aria2.clone();
        let gid = gid.clone();
        async move { aria2.jobs().await.unwrap().contains(&gid) }
    })
    .await;
    assert!(s.engine.cancel(task.id));
    s.engine.wait(task.id).await;
    assert_eq!(s.store.task(task.id).await.unwrap().unwrap().state, TaskState::Cancelled);
    let jobs = s.aria2.jobs().await.unwrap();
    assert!(!jobs.contains(&gid), "{gid} left in aria2: {jobs:?}");
    assert!(!s.engine.task_dir(task.id).exists(), "the partial files are removed");
    assert!(s.sim.sent().is_empty());
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_survives_aria2c_being_killed_under_it() {
    let s = setup(1_000_000).await;
    let source = data(3 << 20, 3);
    let file = ServedFile::new(source.clone()).drip(32 << 10, Duration::from_millis(50));
    let server = FileServer::builder().serve("/slow.bin", file).start().await.unwrap();
    let task = s.engine.submit(&leech(server.url("/slow.bin"))).await.unwrap();
    let store = s.store.clone();
    until("a quarter is downloaded", || {
        let store = store.clone();
        async move {
            let t = store.task(task.id).await.unwrap().unwrap();
            t.state == TaskState::Downloading && t.progress.done >= 768 << 10
        }
    })
    .await;
    let supervisor = s.aria2.supervisor().unwrap();
    let pid = supervisor.pid().unwrap();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    s.engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Completed, "{stored:?}");
    assert!(supervisor.restarts() >= 1);
    let hashes: Vec<_> = s.sim.sent().into_iter().filter_map(|o| o.file.map(|f| f.sha256)).collect();
    assert_eq!(hashes, part_hashes(&source, 1_000_000));
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

/// The policy the tests use: 127.0.0.1 allowed, everything else private refused.
fn loopback_one() -> EgressPolicy {
    EgressPolicy::builder().allow("127.0.0.1").build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_refused_address_fails_the_task_at_the_egress_proxy() {
    let proxy = Arc::new(EgressProxy::start(loopback_one()).await.unwrap());
    let s = setup_with(1_000_000, Some((Arc::new(loopback_one()), proxy.clone()))).await;
    // 127.0.0.2 is loopback too: only the allowlist lets 127.0.0.1 through.
    let hidden = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let hidden_url = format!("http://{}/secret", hidden.local_addr().unwrap());
    let source = data(300_000, 4);
    let server = FileServer::builder()
        .file("/ok.bin", source.clone())
        .redirect("/jump", hidden_url.clone())
        .start()
        .await
        .unwrap();

    // Refused up front: the link itself.
    let err = s.engine.submit(&leech(hidden_url.clone())).await.expect_err("a refused link");
    assert!(err.to_string().contains("127.0.0.2"), "{err}");

    // Refused at the proxy: a hop aria2 follows by itself.
    let task = s.engine.submit(&leech(server.url("/jump"))).await.unwrap();
    s.engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Failed);
    let error = stored.error.unwrap_or_default();
    assert!(error.contains("127.0.0.2") && error.contains("loopback"), "the task says why: {error}");
    assert!(proxy.stats().refused >= 1);
    let accepted = tokio::time::timeout(Duration::from_millis(200), hidden.accept()).await;
    assert!(accepted.is_err(), "nothing connected to 127.0.0.2");

    // The allowed server still works through the proxy.
    let task = s.engine.submit(&leech(server.url("/ok.bin"))).await.unwrap();
    s.engine.wait(task.id).await;
    assert_eq!(s.store.task(task.id).await.unwrap().unwrap().state, TaskState::Completed);
    assert!(proxy.stats().forwarded >= 1, "the download went through the proxy");
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_fails_the_task_with_a_clear_error() {
    let s = setup(1_000_000).await;
    let server = FileServer::builder().status("/gone.bin", 404).start().await.unwrap();
    let task = s.engine.submit(&leech(server.url("/gone.bin"))).await.unwrap();
    s.engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Failed);
    let error = stored.error.unwrap_or_default();
    assert!(error.contains("not found"), "{error}");
    assert!(!s.engine.task_dir(task.id).exists(), "a failed task's files are removed by default");
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_and_a_magnet_download_from_the_local_seeder() {
    use mltb_testkit::{Seeder, TorrentBuilder, Tracker};
    let s = setup(1_000_000).await;
    let tracker = Tracker::start().await.unwrap();
    let seeds = tempfile::tempdir().unwrap();
    let mut seeders = Vec::new();
    let mut cases = Vec::new();
    for (i, name) in ["by-torrent.bin", "by-magnet.bin"].into_iter().enumerate() {
        let content = data(1_500_000 + i * 1000, 10 + i as u32);
        let torrent =
            TorrentBuilder::single(name, content.clone()).announce(tracker.announce_url()).build().unwrap();
        let dir = seeds.path().join(i.to_string());
        torrent.write_files(&dir).unwrap();
        seeders.push(Seeder::start(&torrent, &dir, &tracker).await.expect("the seeder starts"));
        cases.push((name, content, torrent));
    }
    let torrent_file = seeds.path().join("a.torrent");
    cases[0].2.save(&torrent_file).unwrap();
    let by_torrent =
        NewTask { source: Source::Torrent(torrent_file.display().to_string()), ..leech(String::new()) };
    let by_magnet = NewTask {
        source: Source::Magnet(cases[1].2.magnet(Some(&tracker.announce_url()))),
        ..leech(String::new())
    };
    for (task, (name, content, _)) in [by_torrent, by_magnet].iter().zip(&cases) {
        let task = s.engine.submit(task).await.unwrap();
        s.engine.wait(task.id).await;
        let stored = s.store.task(task.id).await.unwrap().unwrap();
        assert_eq!(stored.state, TaskState::Completed, "{name}: {:?}", stored.error);
        assert_eq!(stored.name.as_deref(), Some(*name));
        let sent: Vec<_> = s
            .sim
            .sent()
            .into_iter()
            .filter_map(|o| o.file)
            .filter(|f| f.name.starts_with(name))
            .map(|f| f.sha256)
            .collect();
        assert_eq!(sent, part_hashes(content, 1_000_000), "{name}: the parts join to the source");
    }
    for seeder in &seeders {
        assert!(seeder.uploaded().await.unwrap() > 0, "the bytes came from the peer");
    }
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

/// The task's view, once `cond` holds for it.
async fn until_view(
    engine: &Engine<SqliteBackend>,
    id: i64,
    what: &str,
    cond: impl Fn(&mltb_engine::TaskView) -> bool,
) {
    until(what, || {
        let seen = engine.tasks().iter().any(|v| v.id == id && cond(v));
        async move { seen }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrents_files_are_chosen_before_its_download_and_only_those_arrive() {
    use mltb_engine::ChoiceError;
    use mltb_testkit::{Seeder, TorrentBuilder, Tracker};
    let s = setup(10_000_000).await;
    let tracker = Tracker::start().await.unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("docs/a.txt", data(40_000, 1)),
        ("docs/b.txt", data(300_000, 2)),
        ("video/c.bin", data(700_000, 3)),
        ("video/d.bin", data(500_000, 4)),
        ("e.bin", data(90_000, 5)),
    ];
    let mut builder = TorrentBuilder::multi("pack").announce(tracker.announce_url());
    for (path, content) in &files {
        builder = builder.file(*path, content.clone());
    }
    let torrent = builder.build().unwrap();
    let seeds = tempfile::tempdir().unwrap();
    torrent.write_files(seeds.path()).unwrap();
    let seeder = Seeder::start(&torrent, seeds.path(), &tracker).await.expect("the seeder starts");
    let torrent_file = seeds.path().join("pack.torrent");
    torrent.save(&torrent_file).unwrap();
    let choose = serde_json::json!({"choose": true});

    // A .torrent file: added paused, its file list known at once.
    let task = s
        .engine
        .submit(&NewTask {
            source: Source::Torrent(torrent_file.display().to_string()),
            options: choose.clone(),
            ..leech(String::new())
        })
        .await
        .unwrap();
    until_view(&s.engine, task.id, "the task waits for a choice", |v| v.choosing).await;
    let key = s.engine.choice_key(task.id).expect("an open choice has a key");
    assert_eq!(key.len(), 32);
    assert_eq!(s.engine.choice(task.id, &"0".repeat(32)).await, Err(ChoiceError::Unknown));
    assert_eq!(s.engine.choice(task.id + 100, &key).await, Err(ChoiceError::Unknown));
    let choice = s.engine.choice(task.id, &key).await.unwrap();
    let listed: Vec<(u32, &str, u64)> =
        choice.files.iter().map(|f| (f.index, f.path.as_str(), f.size)).collect();
    let want: Vec<(u32, String, u64)> =
        files.iter().zip(1..).map(|((p, c), i)| (i, format!("pack/{p}"), c.len() as u64)).collect();
    assert_eq!(listed, want.iter().map(|(i, p, n)| (*i, p.as_str(), *n)).collect::<Vec<_>>());
    assert!(matches!(s.engine.choose(task.id, &key, &[2, 6]), Err(ChoiceError::Invalid(_))));
    assert!(matches!(s.engine.choose(task.id, &key, &[]), Err(ChoiceError::Invalid(_))));
    assert_eq!(s.engine.choose(task.id, "wrong", &[2]), Err(ChoiceError::Unknown));
    // Nothing downloads while the choice is open.
    assert_eq!(seeder.uploaded().await.unwrap(), 0);
    let chosen = s.engine.choose(task.id, &key, &[4, 2, 4]).unwrap();
    assert_eq!((chosen.files, chosen.bytes), (2, 800_000));
    assert_eq!(s.engine.choose(task.id, &key, &[1]), Err(ChoiceError::Closed), "a choice is taken once");
    s.engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Completed, "{:?}", stored.error);
    assert_eq!(stored.options["select"], serde_json::json!([2, 4]), "the choice is recorded");
    let mut sent: Vec<(String, String)> =
        s.sim.sent().into_iter().filter_map(|o| o.file).map(|f| (f.name, f.sha256)).collect();
    sent.sort();
    let hash = |c: &[u8]| format!("{:x}", Sha256::digest(c));
    assert_eq!(
        sent,
        [("b.txt".to_string(), hash(&files[1].1)), ("d.bin".to_string(), hash(&files[3].1))],
        "only the chosen files are downloaded and sent"
    );
    assert_eq!(s.engine.choice(task.id, &key).await, Err(ChoiceError::Closed), "the link expires");

    // A magnet: the metadata comes first, then the torrent waits paused; a cancel while
    // it waits removes it and closes the choice.
    let magnet = s
        .engine
        .submit(&NewTask {
            source: Source::Magnet(torrent.magnet(Some(&tracker.announce_url()))),
            options: choose,
            ..leech(String::new())
        })
        .await
        .unwrap();
    until_view(&s.engine, magnet.id, "the magnet waits for a choice", |v| v.choosing).await;
    let key = s.engine.choice_key(magnet.id).unwrap();
    assert_eq!(s.engine.choice(magnet.id, &key).await.unwrap().files.len(), 5);
    let gid = s.store.task(magnet.id).await.unwrap().unwrap().gid.unwrap();
    assert!(s.engine.cancel(magnet.id));
    s.engine.wait(magnet.id).await;
    assert_eq!(s.store.task(magnet.id).await.unwrap().unwrap().state, TaskState::Cancelled);
    assert_eq!(s.engine.choice(magnet.id, &key).await, Err(ChoiceError::Closed));
    assert_eq!(s.engine.choose(magnet.id, &key, &[1]), Err(ChoiceError::Closed));
    let jobs = s.aria2.jobs().await.unwrap();
    assert!(!jobs.contains(&DownloadId(gid.clone())), "{gid} left in aria2: {jobs:?}");
    assert!(!s.engine.task_dir(magnet.id).exists());
    s.engine.shutdown().await;
    s.sim.shutdown().await;
}

/// Several instances with one download directory (a shared filesystem) and an aria2c
/// each: a download taken over from an instance that died continues from its partial
/// data on the new holder's aria2c (the same GID added again with `--continue`), and the
/// file arrives byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_taken_over_where_the_directory_is_shared_continues_from_its_partial_data() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_chat(CHAT);
    let client = Client::builder(sim.token()).api_url(sim.api_url()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("downloads");
    let lease = Duration::from_millis(900);
    let instance = |id: &'static str| {
        let (client, dir, downloads) = (client.clone(), dir.path().to_owned(), downloads.clone());
        async move {
            let config = StoreConfig::new().instance(id);
            let store = Arc::new(SqliteStore::open_sqlite(dir.join("mltb.db"), config).await.unwrap());
            let planner = Arc::new(Leech {
                scheduler: Scheduler::builder().build(client),
                store: store.clone(),
                split: 1 << 20,
            });
            let aria2 = Arc::new(
                Aria2Downloader::supervised(Aria2Config::new(dir.join(format!("aria2-{id}"))))
                    .await
                    .expect("aria2c should start (apt-get install aria2)"),
            );
            let config = EngineConfig::new(downloads)
                .poll_interval(Duration::from_millis(50))
                .cluster(mltb_engine::Cluster::new(lease, 4));
            let engine = Engine::start(store.clone(), aria2.clone(), planner, config).await.unwrap();
            (store, aria2, engine)
        }
    };
    let source = data(3 << 20, 5);
    let file = ServedFile::new(source.clone()).drip(32 << 10, Duration::from_millis(50));
    let server = FileServer::builder().serve("/shared.bin", file).start().await.unwrap();

    let (store_a, aria2_a, a) = instance("a").await;
    let task = a.submit(&leech(server.url("/shared.bin"))).await.unwrap();
    until("a has a quarter of it", || {
        let store = store_a.clone();
        async move {
            let t = store.task(task.id).await.unwrap().unwrap();
            t.state == TaskState::Downloading && t.progress.done >= 768 << 10
        }
    })
    .await;
    // `a` dies, its aria2c with it (`--stop-with-process`); its partial file stays.
    a.shutdown().await;
    drop(a);
    Arc::try_unwrap(aria2_a).unwrap_or_else(|_| panic!("the engine let its downloader go")).shutdown().await;
    let row = store_a.task(task.id).await.unwrap().unwrap();
    assert_eq!((row.owner.as_deref(), row.state), (Some("a"), TaskState::Downloading));

    let (store_b, _aria2_b, b) = instance("b").await;
    until("b finishes it", || {
        let store = store_b.clone();
        async move { store.task(task.id).await.unwrap().unwrap().state.is_finished() }
    })
    .await;
    let row = store_b.task(task.id).await.unwrap().unwrap();
    assert_eq!((row.state, row.owner.as_deref(), row.fence), (TaskState::Completed, Some("b"), 2), "{row:?}");
    let ranges = server.ranges_for("/shared.bin");
    let resumed_at = ranges
        .iter()
        .flatten()
        .filter_map(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse::<u64>().ok())
        .max();
    assert!(
        resumed_at.is_some_and(|at| at >= 768 << 10),
        "b asked for the rest only, from where a stopped: {ranges:?}"
    );
    let hashes: Vec<_> = sim.sent().into_iter().filter_map(|o| o.file.map(|f| f.sha256)).collect();
    assert_eq!(hashes, part_hashes(&source, 1 << 20), "the file arrives byte-exact, once");
    b.shutdown().await;
    sim.shutdown().await;
}
