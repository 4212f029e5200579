//! Three `mltb` processes of one bot (one token) on one PostgreSQL and one Redis, each with
//! its own aria2c and data directory, against the simulator with Telegram's flood limits
//! on: 30 tasks are each done once, spread over the instances; the poller is killed
//! (`SIGKILL`) mid-run and another polls within the lease plus one poll, with no update
//! lost or served twice; an instance paused (`SIGSTOP`) past its lease loses its tasks to
//! the others and, resumed (`SIGCONT`), has its stale writes refused and follows; the
//! simulator never answers 429.
#![allow(
    clippy::print_stderr,
    reason = "the test reports the takeover time it measured, and logs on failure"
)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mltb_store::{AnyStore, Database, StoreConfig, TaskFilter, TaskState};
use mltb_telegram_sim::{Outbound, RateLimits, Sim, SimConfig};
use mltb_testkit::{FileServer, ServedFile, SharedRedis, TestDatabase};
use support::{CHAT, data, instance_command, until};

const TASKS: usize = 30;
/// The users whose private chats the tasks come from (spread, so that Telegram's one
/// message a second per chat does not make the run long). The pings go to [`CHAT`].
const USERS: [i64; 6] = [2001, 2002, 2003, 2004, 2005, 2006];
/// The instances' lease (`instance.lease`) and poll timeout.
const LEASE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_secs(1);

struct Instance {
    id: String,
    data_dir: PathBuf,
    child: tokio::process::Child,
}

impl Instance {
    fn start(sim: &Sim, dir: &Path, id: &str, database: &str, redis: &str) -> Self {
        let lease = format!("{}s", LEASE.as_secs());
        let poll = format!("{}s", POLL.as_secs());
        let (mut cmd, data_dir) = instance_command(
            sim,
            dir,
            id,
            database,
            redis,
            &[
                ("MLTB_INSTANCE_LEASE", &lease),
                ("MLTB_INSTANCE_MOST", "4"),
                ("MLTB_TELEGRAM_POLL_TIMEOUT", &poll),
                ("MLTB_STATUS_INTERVAL", "3s"),
                ("MLTB_AUTH_AUTHORIZED_CHATS", "[2000, 2001, 2002, 2003, 2004, 2005, 2006]"),
            ],
        );
        Self { id: id.to_owned(), data_dir, child: cmd.spawn().expect("the mltb binary starts") }
    }

    fn pid(&self) -> String {
        self.child.id().expect("the instance runs").to_string()
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill").args(["-s", signal, &self.pid()]).status().unwrap();
        assert!(status.success(), "kill -s {signal} {}", self.id);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("mltb.log")).unwrap_or_default()
    }
}

fn ours(o: &Outbound) -> bool {
    o.chat_id == CHAT || USERS.contains(&o.chat_id)
}

fn texts(log: &[Outbound]) -> impl Iterator<Item = &str> {
    log.iter().filter(|o| ours(o) && o.method == "sendMessage").filter_map(|o| o.text.as_deref())
}

fn pongs(log: &[Outbound]) -> usize {
    texts(log).filter(|t| t.starts_with("Pong")).count()
}

/// The "Task #N queued" replies, by task id.
fn queued(log: &[Outbound]) -> BTreeMap<i64, usize> {
    let mut out = BTreeMap::new();
    for t in texts(log) {
        if let Some(id) = t.strip_prefix("Task #").and_then(|r| r.split_once(" queued")).map(|(n, _)| n) {
            *out.entry(id.parse::<i64>().unwrap()).or_default() += 1;
        }
    }
    out
}

/// Documents sent to the chat, by file name.
fn documents(log: &[Outbound]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in log.iter().filter(|o| ours(o)) {
        if let Some(f) = &o.file {
            *out.entry(f.name.clone()).or_default() += 1;
        }
    }
    out
}

/// Waits (at most `secs`) until `check` answers `Ok`; a timeout shows its last `Err`.
async fn until_ok<T, F: std::future::Future<Output = Result<T, String>>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(now) => assert!(Instant::now() < deadline, "timed out waiting for {what}; now: {now}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tasks' states and holders, for a failure's message.
fn summary(all: &[mltb_store::Task]) -> Vec<String> {
    all.iter()
        .map(|t| format!("#{} {} {:?} fence {} {:?}", t.id, t.state, t.owner, t.fence, t.error))
        .collect()
}

async fn tasks(store: &AnyStore) -> Vec<mltb_store::Task> {
    store.tasks_with_files(TaskFilter::Recent(1000)).await.unwrap().into_iter().map(|t| t.task).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_bot_through_kills_and_pauses() {
    let database = TestDatabase::create().await.expect("PostgreSQL: set DATABASE_URL, or install it");
    let redis = SharedRedis::get()
        .await
        .expect("Redis: set REDIS_URL, or install it (sudo apt-get install redis-server)");
    let sim = Sim::start(SimConfig::default().rate_limits(Some(RateLimits::default()))).await.unwrap();
    // Each download takes about 2.5 s, so that tasks are mid-run when an instance dies;
    // the first half's about 10 s, so that the poller still runs one of them once every
    // /leech of that half has been answered (at 2.5 s, the poller's first tasks were
    // sometimes done by then, with none left for it to claim: 2 runs in 7).
    let mut files = FileServer::builder();
    for i in 0..TASKS {
        let delay = Duration::from_millis(if i < TASKS / 2 { 1_000 } else { 250 });
        let body = ServedFile::new(data(160_000 + i)).drip(16_384, delay);
        files = files.serve(format!("/f/file-{i:02}.bin"), body);
    }
    let server = files.start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The test's own view of the database (no instance id: it claims nothing).
    let store =
        AnyStore::open(&Database::Postgres(database.url().to_owned()), StoreConfig::new()).await.unwrap();
    let mut instances: Vec<Instance> = (1..=3)
        .map(|i| Instance::start(&sim, dir.path(), &format!("bot-{i}"), database.url(), redis.url()))
        .collect();
    let leech = |i: usize| {
        let user = USERS[i % USERS.len()];
        sim.send_text(user, user, &format!("/leech {}", server.url(&format!("/f/file-{i:02}.bin"))));
    };

    sim.send_text(CHAT, CHAT, "/ping");
    until(&sim, 60, "the first pong", |log| pongs(log) == 1).await;
    for i in 0..TASKS / 2 {
        leech(i);
    }
    until(&sim, 60, "the first half queued", |log| queued(log).len() == TASKS / 2).await;

    // SIGKILL the poller once it runs a task.
    let poller = store.role_holder("poller").await.unwrap().expect("an instance polls");
    until_ok(60, "the poller to run a task", || {
        let store = &store;
        let holder = poller.holder.clone();
        async move {
            let all = tasks(store).await;
            let runs =
                all.iter().any(|t| t.owner.as_deref() == Some(holder.as_str()) && !t.state.is_finished());
            if runs { Ok(()) } else { Err(format!("{} polls; {:#?}", holder, summary(&all))) }
        }
    })
    .await;
    let killed_at = Instant::now();
    let victim = instances.iter().position(|i| i.id == poller.holder).unwrap();
    let mut dead = instances.remove(victim);
    dead.child.start_kill().unwrap();
    dead.child.wait().await.unwrap();
    let orphaned: Vec<i64> = tasks(&store)
        .await
        .iter()
        .filter(|t| t.owner.as_deref() == Some(dead.id.as_str()) && !t.state.is_finished())
        .map(|t| t.id)
        .collect();
    sim.send_text(CHAT, CHAT, "/ping");
    until(&sim, 60, "a pong from the new poller", |log| pongs(log) == 2).await;
    let takeover = killed_at.elapsed();
    let now = store.role_holder("poller").await.unwrap().unwrap();
    assert_ne!(now.holder, dead.id, "another instance polls");
    assert!(now.fence > poller.fence, "a takeover raises the fence");
    eprintln!("poller takeover after SIGKILL: {takeover:?} (lease {LEASE:?}, poll timeout {POLL:?})");
    // The waiting instances ask every third of the lease; the new poller's first
    // `getUpdates` returns at once with the ping. A bound, not a benchmark: generous for
    // a loaded CI machine.
    let bound = LEASE + LEASE / 3 + POLL + Duration::from_secs(5);
    assert!(takeover < bound, "the takeover took {takeover:?}, over {bound:?}");

    // The last three come right before the pause below: the poller claims a task as it
    // queues it, so it has downloads in flight to lose.
    const LAST: usize = 3;
    for i in TASKS / 2..TASKS - LAST {
        leech(i);
    }
    until(&sim, 60, "the second half queued", |log| queued(log).len() == TASKS - LAST).await;

    // SIGSTOP the poller past its lease while it downloads; then SIGCONT it. Its uploads
    // send nothing past its lease, so what it had under way is sent once, by the new
    // holder.
    let polling = store.role_holder("poller").await.unwrap().unwrap().holder;
    for i in TASKS - LAST..TASKS {
        leech(i);
    }
    until(&sim, 60, "every task queued", |log| queued(log).len() == TASKS).await;
    let paused = instances.iter().position(|i| i.id == polling).unwrap();
    let paused_id = polling;
    let held = until_ok(60, "the poller to download", || {
        let (store, paused_id) = (&store, paused_id.clone());
        async move {
            let all = tasks(store).await;
            let mine: Vec<&mltb_store::Task> =
                all.iter().filter(|t| t.owner.as_deref() == Some(paused_id.as_str())).collect();
            let downloading: Vec<i64> =
                mine.iter().filter(|t| t.state == TaskState::Downloading).map(|t| t.id).collect();
            // Not while it uploads: a part whose bytes left before the pause reaches the
            // chat whatever the fence says, and the new holder, which cannot know that,
            // sends it again (Telegram has no idempotent send). Fencing is about what the
            // paused instance does after it resumes.
            let uploading = mine.iter().any(|t| t.state == TaskState::Uploading);
            if !downloading.is_empty() && !uploading {
                Ok(downloading)
            } else {
                Err(format!("{paused_id} polls; {:#?}", summary(&all)))
            }
        }
    })
    .await;
    instances[paused].signal("STOP");
    // The other instance polls once the lease runs out, and answers.
    sim.send_text(CHAT, CHAT, "/ping");
    until(&sim, 60, "a pong while the poller is paused", |log| pongs(log) == 3).await;
    until_ok(60, "the paused instance's tasks to be taken over", || {
        let (store, held, paused_id) = (&store, held.clone(), paused_id.clone());
        async move {
            let all = tasks(store).await;
            let moved = held.iter().all(|id| {
                all.iter().any(|t| {
                    t.id == *id && (t.owner.as_deref() != Some(paused_id.as_str()) || t.state.is_finished())
                })
            });
            if moved { Ok(()) } else { Err(format!("{paused_id} paused; {:#?}", summary(&all))) }
        }
    })
    .await;
    instances[paused].signal("CONT");

    let deadline = Instant::now() + Duration::from_secs(120);
    let all = loop {
        let all = tasks(&store).await;
        if all.len() >= TASKS && all.iter().all(|t| t.state.is_finished()) {
            break all;
        }
        if Instant::now() > deadline {
            for i in &instances {
                eprintln!("--- log of {}:\n{}", i.id, i.log());
            }
            panic!("every task to end: {:#?}", summary(&all));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        all.iter().all(|t| t.state == TaskState::Completed),
        "every task completes: {:#?}",
        summary(&all)
    );
    // The resumed instance found its tasks taken over and stopped them without writing.
    until_ok(30, "the resumed instance to notice its lost tasks", || {
        let log = instances[paused].log();
        async move { if log.contains("another instance took this task over") { Ok(()) } else { Err(log) } }
    })
    .await;

    let log = sim.sent();
    assert_eq!(all.len(), TASKS, "one task per /leech: no update served twice");
    assert!(queued(&log).values().all(|n| *n == 1), "each /leech answered once: {:?}", queued(&log));
    assert_eq!(pongs(&log), 3, "each /ping answered once");
    let docs = documents(&log);
    assert_eq!(docs.len(), TASKS, "every file arrived: {docs:?}");
    assert!(docs.values().all(|n| *n == 1), "each file uploaded once: {docs:?}");
    let mut by_owner: BTreeMap<String, usize> = BTreeMap::new();
    for t in &all {
        *by_owner.entry(t.owner.clone().unwrap_or_default()).or_default() += 1;
    }
    eprintln!("completed tasks by their last holder: {by_owner:?}");
    assert!(by_owner.len() >= 2, "the work is spread: {by_owner:?}");
    for id in &orphaned {
        let t = all.iter().find(|t| t.id == *id).unwrap();
        assert_ne!(
            t.owner.as_deref(),
            Some(dead.id.as_str()),
            "task {id} of the killed poller finished elsewhere"
        );
        assert!(t.fence >= 2, "taken over with a new fence: {t:?}");
    }
    for id in &held {
        let t = all.iter().find(|t| t.id == *id).unwrap();
        assert!(t.fence >= 2, "the paused instance's task {id} was taken over: {t:?}");
    }
    // The resumed instance follows: alive, not polling.
    assert!(instances[paused].child.try_wait().unwrap().is_none(), "the resumed instance runs on");
    let role = store.role_holder("poller").await.unwrap().unwrap();
    if role.holder == paused_id {
        for i in &instances {
            let log = i.log();
            let wanted: Vec<&str> =
                log.lines().filter(|l| l.contains("poll") || l.contains("role")).collect();
            eprintln!("--- {}:\n{}", i.id, wanted.join("\n"));
        }
        panic!("the resumed instance polls: {role:?}");
    }
    let stats = sim.stats();
    assert_eq!(stats.responses_429, 0, "{stats:?}");
    assert!(
        stats.max_per_chat_in_any_second <= 1 && stats.max_global_in_any_second <= 30,
        "{stats:?}; calls to one chat under a second apart: {:#?}",
        close_calls(&log)
    );

    for mut i in instances {
        i.signal("TERM");
        i.child.wait().await.unwrap();
    }
    drop(dead);
    store.close().await;
    server.shutdown().await;
}

/// Pairs of calls to one chat accepted under a second apart (method, message and the gap),
/// for a failure to show which requests came too close.
fn close_calls(log: &[Outbound]) -> Vec<String> {
    let mut last: BTreeMap<i64, &Outbound> = BTreeMap::new();
    let mut close = Vec::new();
    for call in log {
        if let Some(prev) = last.insert(call.chat_id, call) {
            let gap = call.at.duration_since(prev.at);
            if gap < Duration::from_secs(1) {
                close.push(format!(
                    "chat {}: {} {:?} then {} {:?}, {gap:?} apart",
                    call.chat_id, prev.method, prev.message_id, call.method, call.message_id
                ));
            }
        }
    }
    close
}
