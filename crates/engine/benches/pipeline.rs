//! The whole leech pipeline against the bare programs, on one machine, in one run.
//!
//! For each size: a file served from loopback (testkit `FileServer`) is
//! 1. **bare**: downloaded by a plain `aria2c` (testkit `Aria2Daemon`, with aria2's default
//!    connection options, as the engine's) to disk, then sent to the simulator as plain multipart
//!    `sendDocument` uploads of the same parts, streamed from the file;
//! 2. **pipeline**: leeched by the engine (its supervised aria2c, the store, the Telegram
//!    client and scheduler, the leech uploader), in a child process so that the engine's
//!    own peak RSS (`VmHWM`) is measured apart from the server and the simulator.
//!
//! Neither side paces itself to Telegram's flood limits (the simulator enforces none
//! here): the scheduler's one-message-per-1.1-s-per-chat pacing, which dominates on
//! loopback where a 50 MB part takes a fraction of a second, is lifted, so the ratio is
//! that of the transfer machinery.
//!
//! Prints the throughput of each, their ratio, and the engine's peak RSS per size.
//! `cargo bench -p mltb-engine --bench pipeline` runs 100 MB and 1 GB (sizes in MB as
//! arguments change that); `-- --test` runs one small size as a check.

#![allow(clippy::print_stdout, reason = "a bench reports its figures on stdout")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mltb_engine::aria2::{Aria2Config, Aria2Downloader};
use mltb_engine::leech::{LeechTarget, TelegramUploader};
use mltb_engine::{Engine, EngineConfig, TaskPlanner, Uploader};
use mltb_ratelimit::Quota;
use mltb_store::{NewTask, Source, SqliteStore, StoreConfig, Task, TaskKind, TaskState};
use mltb_telegram::Client;
use mltb_telegram::scheduler::{Limits, Scheduler};
use mltb_telegram_sim::{Retention, Sim, SimConfig};
use mltb_testkit::{Aria2Daemon, FileServer, ServedFile};

const CHILD_ENV: &str = "MLTB_ENGINE_BENCH_CHILD";
const CHAT: i64 = 777;
const MB: u64 = 1_000_000;
/// The cloud Bot API's split size.
const SPLIT: u64 = 50 * MB;

#[derive(serde::Serialize, serde::Deserialize)]
struct ChildConfig {
    dir: PathBuf,
    api_url: String,
    token: String,
    url: String,
}

fn main() {
    if let Ok(config) = std::env::var(CHILD_ENV) {
        child(&serde_json::from_str(&config).expect("child config"));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("pipeline: benchmark");
        return;
    }
    let test = args.iter().any(|a| a == "--test");
    let mut sizes: Vec<u64> = args.iter().filter_map(|a| a.parse::<u64>().ok()).map(|n| n * MB).collect();
    if sizes.is_empty() {
        sizes = if test { vec![8 * MB] } else { vec![100 * MB, 1000 * MB] };
    }
    let runs = args
        .iter()
        .find_map(|a| a.strip_prefix("--runs=").and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(if test { 1 } else { 5 })
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("{runs} alternating runs per size; median [min–max]");
    println!(
        "{:>7} | {:>22} | {:>22} | {:>18} | {:>13} | {:>13} | {:>10}",
        "size", "bare MB/s", "engine MB/s", "ratio", "bare dl+up s", "engine dl+up s", "VmHWM MB"
    );
    for size in sizes {
        let rows = rt.block_on(measure(size, runs));
        let col = |f: &dyn Fn(&Row) -> f64| Stat::of(rows.iter().map(f).collect());
        let (bare, engine) = (col(&|r| r.bare), col(&|r| r.engine));
        let ratio = col(&|r| r.engine / r.bare);
        let (bd, bu) = (col(&|r| r.bare_split.0), col(&|r| r.bare_split.1));
        let (ed, eu) = (col(&|r| r.engine_split.0), col(&|r| r.engine_split.1));
        let rss = col(&|r| r.rss_kb as f64 / 1024.0);
        println!(
            "{:>5}MB | {:>22} | {:>22} | {:>18} | {:>5.2} + {:<5.2} | {:>5.2} + {:<6.2} | {:>10.1}",
            size / MB,
            bare.show(1),
            engine.show(1),
            ratio.show(2),
            bd.median,
            bu.median,
            ed.median,
            eu.median,
            rss.max,
        );
    }
    if test {
        println!("pipeline: Success");
    }
}

/// Median and range of one figure over the runs.
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Self { median, min: values[0], max: values[n - 1] }
    }

    fn show(&self, digits: usize) -> String {
        format!("{:.d$} [{:.d$}–{:.d$}]", self.median, self.min, self.max, d = digits)
    }
}

struct Row {
    /// MB/s, whole transfer.
    bare: f64,
    engine: f64,
    /// Seconds downloading and uploading.
    bare_split: (f64, f64),
    engine_split: (f64, f64),
    rss_kb: u64,
}

fn data(len: u64) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `runs` rounds of bare then engine over one served file and one simulator.
async fn measure(size: u64, runs: usize) -> Vec<Row> {
    let scratch = tempfile::tempdir().unwrap();
    let server = FileServer::builder().serve("/f.bin", ServedFile::new(data(size))).start().await.unwrap();
    let sim_config = SimConfig::default()
        .rate_limits(None)
        .files_dir(scratch.path().join("sim"))
        .retention(Retention::default().file_bytes(u64::MAX));
    let sim = Sim::start(sim_config).await.unwrap();
    sim.add_chat(CHAT);
    let mut rows = Vec::with_capacity(runs);
    for run in 0..runs {
        let bare_split = bare(&server, &sim, size).await;
        let config = ChildConfig {
            dir: scratch.path().join(format!("engine-{run}")),
            api_url: sim.api_url().to_string(),
            token: sim.token().to_string(),
            url: server.url("/f.bin"),
        };
        let dir = config.dir.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, serde_json::to_string(&config).unwrap())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .output()
                .expect("run the engine child")
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "the engine child failed: {}\n{text}", output.status);
        let field = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
                .unwrap_or_else(|| panic!("no {name} in the child's output: {text}"))
        };
        let engine_secs = field("elapsed_secs");
        let engine_download = field("download_secs");
        let mb = size as f64 / MB as f64;
        rows.push(Row {
            bare: mb / (bare_split.0 + bare_split.1),
            engine: mb / engine_secs,
            bare_split,
            engine_split: (engine_download, engine_secs - engine_download),
            rss_kb: field("vm_hwm_kb") as u64,
        });
        // What this run's engine left (its store, aria2's state) goes.
        let _ = std::fs::remove_dir_all(dir);
    }
    sim.shutdown().await;
    server.shutdown().await;
    rows
}

/// `aria2c` to disk, then plain multipart uploads of the parts; seconds for each.
async fn bare(server: &FileServer, sim: &Sim, size: u64) -> (f64, f64) {
    // aria2's own connection defaults, as the engine's supervised aria2c uses them.
    let daemon = Aria2Daemon::start().await.unwrap();
    let started = Instant::now();
    let url = serde_json::to_string(&vec![server.url("/f.bin")]).unwrap();
    let answer = daemon.rpc("aria2.addUri", &[&url]).await.unwrap();
    let gid: String = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["result"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("addUri answered {answer}"));
    let gid_param = serde_json::to_string(&gid).unwrap();
    loop {
        let status = daemon.rpc("aria2.tellStatus", &[&gid_param, r#"["status"]"#]).await.unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        match status["result"]["status"].as_str() {
            Some("complete") => break,
            Some("error" | "removed") => panic!("bare aria2c failed: {status}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let downloaded = started.elapsed();
    let path = daemon.download_dir().join("f.bin");
    let client = reqwest::Client::new();
    let url = format!("{}/bot{}/sendDocument", sim.api_url(), sim.token());
    let mut offset = 0;
    let mut index = 1;
    while offset < size {
        let len = SPLIT.min(size - offset);
        upload_part(&client, &url, &path, offset, len, index).await;
        offset += len;
        index += 1;
    }
    let total = started.elapsed();
    (downloaded.as_secs_f64(), (total - downloaded).as_secs_f64())
}

async fn upload_part(client: &reqwest::Client, url: &str, path: &Path, offset: u64, len: u64, index: u32) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await.unwrap();
    file.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    let body = reqwest::Body::wrap_stream(stream);
    let part = reqwest::multipart::Part::stream_with_length(body, len).file_name(format!("f.bin.{index:03}"));
    let form = reqwest::multipart::Form::new().text("chat_id", CHAT.to_string()).part("document", part);
    let response = client.post(url).multipart(form).send().await.unwrap();
    assert!(response.status().is_success(), "bare upload: {}", response.text().await.unwrap_or_default());
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

/// The engine leeching one URL; prints the time it took and its peak RSS.
fn child(config: &ChildConfig) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        std::fs::create_dir_all(&config.dir).unwrap();
        let store =
            Arc::new(SqliteStore::open_sqlite(config.dir.join("mltb.db"), StoreConfig::new()).await.unwrap());
        let downloader =
            Arc::new(Aria2Downloader::supervised(Aria2Config::new(config.dir.join("aria2"))).await.unwrap());
        let client = Client::builder(&config.token)
            .api_url(&config.api_url)
            .request_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        // The simulator runs without flood limits, and the bare uploads do not pace
        // themselves; the scheduler's Telegram pacing (one message per 1.1 s per chat)
        // is lifted alike, so the comparison is of the transfer machinery.
        let mut limits = Limits::default();
        let unpaced = Quota::parse("100000/1s burst 1").unwrap();
        (limits.global, limits.per_chat, limits.per_group) = (unpaced, unpaced, unpaced);
        limits.answer_gap = Duration::ZERO;
        let scheduler = Scheduler::builder().limits(limits).build(client);
        let planner = Arc::new(Leech { scheduler, store: store.clone() });
        let engine_config =
            EngineConfig::new(config.dir.join("downloads")).poll_interval(Duration::from_millis(50));
        let engine = Engine::start(store.clone(), downloader, planner, engine_config).await.unwrap();
        let started = Instant::now();
        let task = NewTask {
            chat: CHAT,
            user: 1,
            source: Source::Url(config.url.clone()),
            kind: TaskKind::Leech,
            name: None,
            options: serde_json::json!({}),
        };
        let task = engine.submit(&task).await.unwrap();
        // When the download ended: the first view in the upload stage.
        let mut changes = engine.changes();
        let watcher = {
            let engine = engine.clone();
            tokio::spawn(async move {
                loop {
                    if engine.tasks().iter().any(|v| v.state == TaskState::Uploading) {
                        return started.elapsed();
                    }
                    if changes.changed().await.is_err() {
                        return started.elapsed();
                    }
                }
            })
        };
        engine.wait(task.id).await;
        let elapsed = started.elapsed();
        let downloaded = watcher.await.unwrap();
        let stored = store.task(task.id).await.unwrap().unwrap();
        assert_eq!(stored.state, TaskState::Completed, "{:?}", stored.error);
        engine.shutdown().await;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let hwm =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB");
        let mut out = std::io::stdout();
        let _ = writeln!(out, "elapsed_secs {}", elapsed.as_secs_f64());
        let _ = writeln!(out, "download_secs {}", downloaded.as_secs_f64());
        let _ = writeln!(out, "vm_hwm_kb {hwm}");
    });
}
