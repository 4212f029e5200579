//! Crash recovery under a real `kill -9`, with real aria2c and the Telegram simulator.
//!
//! The binary re-executes itself as a child (selected by an environment variable) that runs
//! the engine: its own supervised aria2c, a SQLite store and a leech uploader talking to
//! the simulator the parent runs. The child prints its task's view every few milliseconds.
//! The parent kills it with SIGKILL once the task is halfway through its download (or has
//! sent some of its parts), starts a second child on the same store and aria2 session, and
//! checks that the task completes with the source's bytes: every part present, at most one
//! sent twice. A plain `main` (no libtest harness) because the child must not run tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mltb_engine::aria2::{Aria2Config, Aria2Downloader};
use mltb_engine::leech::{LeechTarget, TelegramUploader};
use mltb_engine::{Engine, EngineConfig, TaskPlanner, Uploader};
use mltb_store::{NewTask, Source, SqliteStore, StoreConfig, Task, TaskKind, TaskState};
use mltb_telegram::Client;
use mltb_telegram::scheduler::Scheduler;
use mltb_telegram_sim::{Sim, SimConfig};
use mltb_testkit::{FileServer, ServedFile};
use sha2::{Digest, Sha256};

const CHILD_ENV: &str = "MLTB_ENGINE_CRASH_CHILD";
const TESTS: [&str; 2] = [
    "kill_9_mid_download_resumes_from_partial_data",
    "kill_9_mid_upload_resumes_from_the_first_unconfirmed_part",
];
const CHAT: i64 = 4242;
const SIZE: usize = 24 * 1024 * 1024;
const SPLIT: u64 = 4 * 1024 * 1024;
/// How long a child may take to finish the task after a restart.
const FINISH_WITHIN: Duration = Duration::from_secs(120);

fn main() {
    if let Ok(config) = std::env::var(CHILD_ENV) {
        child(&serde_json::from_str(&config).expect("child: config"));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            for name in TESTS {
                let _ = writeln!(out, "{name}: test");
            }
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let chosen: Vec<&str> =
        TESTS.into_iter().filter(|t| filter.is_none_or(|f| t.contains(f.as_str()))).collect();
    let _ = writeln!(out, "\nrunning {} tests", chosen.len());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for name in &chosen {
        let stage = if name.contains("download") { Stage::Download } else { Stage::Upload };
        rt.block_on(kill_and_resume(stage));
        let _ = writeln!(out, "test {name} ... ok");
    }
    let _ = writeln!(
        out,
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; {} filtered out\n",
        chosen.len(),
        TESTS.len() - chosen.len()
    );
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ChildConfig {
    db: PathBuf,
    aria2_dir: PathBuf,
    download_dir: PathBuf,
    api_url: String,
    token: String,
    /// The URL to submit; `None` for a child that only resumes.
    submit: Option<String>,
}

struct Leech {
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
}

#[async_trait::async_trait]
impl TaskPlanner for Leech {
    async fn uploader(&self, task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        let target = LeechTarget::new(task.chat, SPLIT);
        Ok(Arc::new(TelegramUploader::new(self.scheduler.clone(), self.store.clone(), target)?))
    }
}

/// The engine as the bot runs it. Prints `view <id> <state> <done> <total>` lines, then
/// `done <id> <state>` once every task has ended.
fn child(config: &ChildConfig) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let store =
            Arc::new(SqliteStore::open_sqlite(&config.db, StoreConfig::new()).await.expect("child: store"));
        let downloader = Arc::new(
            Aria2Downloader::supervised(Aria2Config::new(&config.aria2_dir)).await.expect("child: aria2c"),
        );
        let client = Client::builder(&config.token)
            .api_url(&config.api_url)
            .request_timeout(Duration::from_secs(60))
            .build()
            .expect("child: client");
        let planner = Arc::new(Leech { scheduler: Scheduler::builder().build(client), store: store.clone() });
        let engine_config = EngineConfig::new(&config.download_dir).poll_interval(Duration::from_millis(50));
        let engine =
            Engine::start(store.clone(), downloader, planner, engine_config).await.expect("child: engine");
        if let Some(url) = &config.submit {
            let task = NewTask {
                chat: CHAT,
                user: 1,
                source: Source::Url(url.clone()),
                kind: TaskKind::Leech,
                name: None,
                options: serde_json::json!({}),
            };
            engine.submit(&task).await.expect("child: submit");
        }
        let ids: Vec<i64> = engine.tasks().iter().map(|v| v.id).collect();
        let printer = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut out = std::io::stdout();
                loop {
                    for v in engine.tasks() {
                        let _ = writeln!(out, "view {} {:?} {} {}", v.id, v.state, v.done, v.total);
                    }
                    let _ = out.flush();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        for id in &ids {
            engine.wait(*id).await;
        }
        printer.abort();
        let mut out = std::io::stdout();
        for id in ids {
            let state = store.task(id).await.expect("child: task").map(|t| t.state);
            let _ = writeln!(
                out,
                "done {id} {}",
                state.map_or_else(|| "missing".to_string(), |s| format!("{s:?}"))
            );
        }
        let _ = out.flush();
        engine.shutdown().await;
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Download,
    Upload,
}

fn source() -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A child, with a thread draining its stdout (it prints often; a full pipe would block it).
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn spawn(config: &ChildConfig) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, serde_json::to_string(config).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line, waiting at most 20 ms (so the caller's checks keep running); `None`
    /// when there was none, or the child's stdout is closed and drained.
    async fn line(&mut self) -> Option<String> {
        let lines = &self.lines;
        match lines.try_recv() {
            Ok(line) => return Some(line),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        lines.try_recv().ok()
    }

    /// The lines left once the child has exited (bounded: a grandchild holding the pipe
    /// open cannot stall it).
    fn rest(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push(line);
        }
        out
    }
}

/// A line of the child's view: (state, done, total).
fn parse_view(line: &str) -> Option<(String, u64, u64)> {
    let mut words = line.strip_prefix("view ")?.split(' ');
    let _id = words.next()?;
    Some((words.next()?.to_string(), words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

async fn kill_and_resume(stage: Stage) {
    let data = source();
    // Slow enough (about 8 MB/s a connection) that the kill lands mid-download.
    let file = ServedFile::new(data.clone()).drip(64 * 1024, Duration::from_millis(8));
    let server = FileServer::builder().serve("/big.bin", file).start().await.expect("file server");
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    sim.add_chat(CHAT);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ChildConfig {
        db: dir.path().join("mltb.db"),
        aria2_dir: dir.path().join("aria2"),
        download_dir: dir.path().join("downloads"),
        api_url: sim.api_url().to_string(),
        token: sim.token().to_string(),
        submit: Some(server.url("/big.bin")),
    };

    let mut first = Running::spawn(&config);
    let sim_parts = || sim.sent().iter().filter(|o| o.file.is_some()).count();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed_at = None;
    while killed_at.is_none() {
        assert!(Instant::now() < deadline, "the child never reached the {stage:?} stage to kill it in");
        let Some(line) = first.line().await else { continue };
        assert!(!line.starts_with("done"), "the child finished before it was killed: {line}");
        let Some((state, done, total)) = parse_view(&line) else { continue };
        let kill = match stage {
            Stage::Download => state == "Downloading" && total > 0 && done > total / 3 && done < total,
            Stage::Upload => state == "Uploading" && sim_parts() >= 2,
        };
        if kill {
            first.child.kill().expect("SIGKILL the child");
            killed_at = Some((state, done));
        }
    }
    let status = first.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the child must die of SIGKILL: {status}");

    // The store as the kill left it: the task unfinished, in the stage it was killed in.
    {
        let store = SqliteStore::open_sqlite(&config.db, StoreConfig::new()).await.unwrap();
        let unfinished = store.unfinished_tasks().await.unwrap();
        assert_eq!(unfinished.len(), 1, "one unfinished task after the kill");
        let want = if stage == Stage::Download { TaskState::Downloading } else { TaskState::Uploading };
        assert_eq!(unfinished[0].task.state, want, "killed at {killed_at:?}");
    }
    let sent_before_kill = sim_parts();
    let requests_before = server.requests_for("/big.bin");

    config.submit = None;
    let mut second = Running::spawn(&config);
    let deadline = Instant::now() + FINISH_WITHIN;
    let mut done = Vec::new();
    while second.child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = second.child.kill();
            panic!("the restarted child did not finish within {FINISH_WITHIN:?}");
        }
        if let Some(line) = second.line().await
            && line.starts_with("done")
        {
            done.push(line);
        }
    }
    done.extend(second.rest().into_iter().filter(|l| l.starts_with("done")));
    let status = second.child.wait().unwrap();
    assert!(status.success(), "the second child failed: {status}");
    assert_eq!(done.len(), 1, "one task ended: {done:?}");
    assert!(done[0].ends_with("Completed"), "{}", done[0]);
    if stage == Stage::Download {
        // Continued, not started over: a request after the restart asks from past byte 0.
        let ranges = server.ranges_for("/big.bin");
        let after: Vec<u64> = ranges[requests_before as usize..]
            .iter()
            .flatten()
            .filter_map(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok())
            .collect();
        assert!(after.iter().any(|&start| start > 0), "no ranged request after the restart: {ranges:?}");
    }
    assert_parts(&sim, &data, sent_before_kill);
    sim.shutdown().await;
    server.shutdown().await;
}

/// Every part is in the chat, at most one was sent twice, and the parts join to `data`.
fn assert_parts(sim: &Sim, data: &[u8], sent_before_kill: usize) {
    let files: Vec<_> = sim.sent().into_iter().filter_map(|o| o.file).collect();
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        by_name.entry(f.name.clone()).or_default().push(f.sha256.clone());
    }
    let want: Vec<String> = data.chunks(SPLIT as usize).map(|c| format!("{:x}", Sha256::digest(c))).collect();
    let names: Vec<String> = (1..=want.len()).map(|i| format!("big.bin.{i:03}")).collect();
    assert_eq!(by_name.keys().cloned().collect::<Vec<_>>(), names, "every part, by name");
    for (name, hash) in names.iter().zip(&want) {
        let sent = &by_name[name];
        assert!(sent.iter().all(|h| h == hash), "{name} holds the wrong bytes");
    }
    let duplicates = files.len() - want.len();
    assert!(
        duplicates <= 1,
        "{duplicates} parts sent twice (at most one per kill); {sent_before_kill} before the kill"
    );
}
