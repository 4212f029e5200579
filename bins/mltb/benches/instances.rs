//! Task throughput with 1, 2 and 3 `mltb` instances of one bot on one machine: many small
//! `/leech` tasks, each from its own user, against the simulator with Telegram's flood
//! limits on, one PostgreSQL and one Redis (the instances share Telegram's limits), a real
//! aria2c per instance. Recorded in `docs/benchmarks.md` ("Several instances").
//!
//! ```text
//! cargo bench -p mltb --bench instances
//! ```
//!
//! Each run starts N fresh instances on a fresh database, waits until all run and one
//! polls, sends every `/leech` at once, and times from the first `/leech` to the last file
//! the simulator receives. Beside tasks per second it reports what could hold the curve
//! flat: the Telegram sends per second the simulator accepted (its limit is 30 a second
//! for the whole bot) and how busy the machine's CPUs were.
//!
//! Knobs (environment): `INSTANCES` ("1 2 3"), `TASKS` (120), `RUNS` (3), `SIZE` (bytes per
//! file, 65536), `MOST` (`instance.most`, 8). With `--test` (what `cargo bench -- --test`
//! passes, as CI does), one short run each of 1 and 2 instances checks the harness.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark reports on the terminal")]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mltb_telegram_sim::{RateLimits, Sim, SimConfig};
use mltb_testkit::{FileServer, ServedFile, SharedRedis, TestDatabase};
use support::{CHAT, data, instance_command};

/// The first of the users the tasks come from (one task each).
const FIRST_USER: i64 = 100_000;

struct Knobs {
    instances: Vec<usize>,
    tasks: usize,
    runs: usize,
    size: usize,
    most: usize,
}

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?}: expected a whole number")),
        Err(_) => default,
    }
}

impl Knobs {
    fn read(smoke: bool) -> Self {
        if smoke {
            return Self { instances: vec![1, 2], tasks: 8, runs: 1, size: 16_384, most: 8 };
        }
        let instances = std::env::var("INSTANCES")
            .unwrap_or_else(|_| "1 2 3".into())
            .split_whitespace()
            .map(|n| match n.parse::<usize>() {
                Ok(n @ 1..=16) => n,
                _ => panic!("INSTANCES: expected counts from 1 to 16 apart by spaces, got {n:?}"),
            })
            .collect();
        Self {
            instances,
            tasks: knob("TASKS", 120),
            runs: knob("RUNS", 3),
            size: knob("SIZE", 65_536),
            most: knob("MOST", 8),
        }
    }
}

struct Instance {
    data_dir: PathBuf,
    child: tokio::process::Child,
}

impl Instance {
    fn start(sim: &Sim, dir: &Path, id: &str, database: &str, redis: &str, knobs: &Knobs) -> Self {
        let chats: Vec<String> = std::iter::once(CHAT)
            .chain((0..knobs.tasks as i64).map(|i| FIRST_USER + i))
            .map(|c| c.to_string())
            .collect();
        let (mut cmd, data_dir) = instance_command(
            sim,
            dir,
            id,
            database,
            redis,
            &[
                ("MLTB_INSTANCE_LEASE", "6s"),
                ("MLTB_INSTANCE_MOST", &knobs.most.to_string()),
                ("MLTB_AUTH_AUTHORIZED_CHATS", &format!("[{}]", chats.join(", "))),
            ],
        );
        Self { data_dir, child: cmd.spawn().expect("the mltb binary starts") }
    }

    fn running(&self) -> bool {
        std::fs::read_to_string(self.data_dir.join("mltb.log")).is_ok_and(|l| l.contains("mltb is running"))
    }
}

/// Busy and total CPU time of the whole machine so far (`/proc/stat`), in ticks.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

struct Run {
    seconds: f64,
    /// Telegram sends the simulator accepted during the run.
    sends: u64,
    /// Of them, status board edits.
    edits: u64,
    /// The most sends of the whole bot in any one second.
    busiest: u32,
    cpu_busy: Option<f64>,
}

async fn wait_for(secs: u64, what: &str, done: impl FnMut() -> bool) {
    assert!(within(secs, done).await, "timed out after {secs} s waiting for {what}");
}

/// Whether `done` came true within `secs` (checked every 20 ms).
async fn within(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn run(n: usize, knobs: &Knobs, redis: &SharedRedis) -> Run {
    let database = TestDatabase::create().await.expect("PostgreSQL: set DATABASE_URL, or install it");
    let sim = Sim::start(SimConfig::default().rate_limits(Some(RateLimits::default()))).await.unwrap();
    let mut files = FileServer::builder();
    for i in 0..knobs.tasks {
        files = files.serve(format!("/f/file-{i:04}.bin"), ServedFile::new(data(knobs.size + i)));
    }
    let server = files.start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut instances: Vec<Instance> = (1..=n)
        .map(|i| Instance::start(&sim, dir.path(), &format!("bot-{i}"), database.url(), redis.url(), knobs))
        .collect();
    wait_for(60, "every instance to run", || instances.iter().all(Instance::running)).await;
    sim.send_text(CHAT, CHAT, "/ping");
    wait_for(60, "a poller to answer /ping", || {
        sim.sent().iter().any(|o| o.text.as_deref().is_some_and(|t| t.starts_with("Pong")))
    })
    .await;

    let before = sim.stats();
    let edits_of = |s: &mltb_telegram_sim::SimStats| s.by_method.get("editMessageText").copied().unwrap_or(0);
    let cpu_before = cpu_ticks();
    let start = Instant::now();
    for i in 0..knobs.tasks {
        let user = FIRST_USER + i as i64;
        sim.send_text(user, user, &format!("/leech {}", server.url(&format!("/f/file-{i:04}.bin"))));
    }
    let limit = 60 + knobs.tasks as u64;
    let arrived =
        within(limit, || sim.sent().iter().filter(|o| o.file.is_some()).count() >= knobs.tasks).await;
    if !arrived {
        // What the instances said about it, before the panic.
        for i in &instances {
            let log = std::fs::read_to_string(i.data_dir.join("mltb.log")).unwrap_or_default();
            let notable: Vec<&str> =
                log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
            eprintln!(
                "--- {}: {} lines, the last warnings:\n{}",
                i.data_dir.display(),
                log.lines().count(),
                notable[notable.len().saturating_sub(40)..].join("\n")
            );
        }
        // Which users are still waiting, and the last the bot told each of them.
        let sent = sim.sent();
        let waiting: Vec<i64> = (0..knobs.tasks as i64)
            .map(|i| FIRST_USER + i)
            .filter(|u| !sent.iter().any(|o| o.chat_id == *u && o.file.is_some()))
            .collect();
        for user in &waiting {
            let said: Vec<String> = sent
                .iter()
                .filter(|o| o.chat_id == *user)
                .map(|o| {
                    format!("{} {:?}", o.method, o.text.as_deref().or(o.caption.as_deref()).unwrap_or(""))
                })
                .collect();
            eprintln!(
                "--- user {user} has no file; the bot sent: {}",
                said[said.len().saturating_sub(3)..].join(" | ")
            );
        }
        // The instances' logs and databases stay for a look.
        eprintln!("--- the instances' directories are kept in {}", dir.keep().display());
        let files = sent.iter().filter(|o| o.file.is_some()).count();
        panic!("{files} of {} files arrived in {limit} s; waiting: {waiting:?}", knobs.tasks);
    }
    let cpu_after = cpu_ticks();
    let sent = sim.sent();
    let last = sent.iter().filter(|o| o.file.is_some()).map(|o| o.at).max().expect("files arrived");
    let seconds = last.duration_since(start).as_secs_f64();
    let stats = sim.stats();
    let files = sent.iter().filter(|o| o.file.is_some()).count();
    assert_eq!(files, knobs.tasks, "each file once");
    assert_eq!(stats.responses_429, 0, "the instances keep Telegram's limits together: {stats:?}");
    let cpu_busy =
        cpu_before.zip(cpu_after).map(|((b0, t0), (b1, t1))| (b1 - b0) as f64 / (t1 - t0).max(1) as f64);

    for i in &mut instances {
        let _ = std::process::Command::new("kill")
            .args(["-s", "TERM", &i.child.id().unwrap_or(0).to_string()])
            .status();
    }
    for i in &mut instances {
        let _ = tokio::time::timeout(Duration::from_secs(20), i.child.wait()).await;
    }
    server.shutdown().await;
    Run {
        seconds,
        sends: stats.accepted_sends - before.accepted_sends,
        edits: edits_of(&stats) - edits_of(&before),
        busiest: stats.max_global_in_any_second,
        cpu_busy,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let knobs = Knobs::read(smoke);
    let redis = SharedRedis::get()
        .await
        .expect("Redis: set REDIS_URL, or install it (sudo apt-get install redis-server)");
    println!(
        "{} small leech tasks ({} bytes each, one user each), instance.most {}, {} run(s) each; {} CPUs",
        knobs.tasks,
        knobs.size,
        knobs.most,
        knobs.runs,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "| instances | run | seconds | tasks/s | Telegram sends/s | sends/task | board edits/task | busiest second | CPU busy |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut summary = Vec::new();
    for &n in &knobs.instances {
        let mut rates = Vec::new();
        for r in 1..=knobs.runs {
            let run = run(n, &knobs, &redis).await;
            let rate = knobs.tasks as f64 / run.seconds;
            let cpu = run.cpu_busy.map_or("n/a".into(), |c| format!("{:.0}%", c * 100.0));
            let tasks = knobs.tasks as f64;
            println!(
                "| {n} | {r} | {:.2} | {rate:.2} | {:.1} | {:.1} | {:.1} | {} | {cpu} |",
                run.seconds,
                run.sends as f64 / run.seconds,
                run.sends as f64 / tasks,
                run.edits as f64 / tasks,
                run.busiest,
            );
            rates.push(rate);
        }
        let (lo, hi) = rates.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        summary.push((n, median(rates), lo, hi));
    }
    println!();
    println!("| instances | tasks/s (median) | range | vs one instance |");
    println!("|---:|---:|---:|---:|");
    let one = summary.iter().find(|s| s.0 == 1).map(|s| s.1);
    for (n, m, lo, hi) in &summary {
        let ratio = one.map_or("n/a".into(), |o| format!("{:.2}x", m / o));
        println!("| {n} | {m:.2} | {lo:.2}–{hi:.2} | {ratio} |");
    }
}
