//! Two instances of one bot (same token) on one database, against the simulator: one
//! polls at a time (the store's `poller` role) and every update is answered once; when
//! the poller dies without a word, the other takes over after the lease from the saved
//! offset, and still every update is answered once.

mod support;

use mltb_bot::Exit;
use mltb_bot::config::{Config, Env};
use mltb_bot::launch::Running;
use mltb_store::TaskState;
use mltb_telegram_sim::{Outbound, RateLimits, Sim, SimConfig};
use mltb_testkit::{FileServer, ServedFile};
use support::{CHAT, OWNER, USER, until_sent};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Instance {
    running: Running,
    stop: CancellationToken,
    task: JoinHandle<Exit>,
}

async fn start(sim: &Sim, dir: &std::path::Path, id: &str) -> Instance {
    start_with(sim, dir, id, &[]).await
}

/// Instance `id` with `extra` settings (`MLTB_…` pairs) over the defaults.
async fn start_with(sim: &Sim, dir: &std::path::Path, id: &str, extra: &[(&str, &str)]) -> Instance {
    let data_dir = dir.join(id).display().to_string();
    let db = dir.join("shared.db").display().to_string();
    let chats = format!("[{CHAT}]");
    let owner = OWNER.to_string();
    let pairs = [
        ("MLTB_BOT_TOKEN", sim.token()),
        ("MLTB_TELEGRAM_API_URL", sim.api_url()),
        ("MLTB_TELEGRAM_POLL_TIMEOUT", "1s"),
        ("MLTB_DATA_DIR", data_dir.as_str()),
        ("MLTB_STORE_SQLITE_PATH", db.as_str()),
        ("MLTB_AUTH_AUTHORIZED_CHATS", chats.as_str()),
        ("MLTB_OWNER_ID", owner.as_str()),
        ("MLTB_API_ENABLED", "false"),
        ("MLTB_INSTANCE_ID", id),
        ("MLTB_INSTANCE_LEASE", "1s"),
    ];
    let mut pairs: Vec<(&str, &str)> =
        pairs.into_iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).collect();
    pairs.extend_from_slice(extra);
    let config = Config::from_toml("", &Env::from_pairs(pairs)).unwrap();
    let running = mltb_bot::launch::start(config).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (bot, stop) = (running.bot.clone(), stop.clone());
        async move { bot.run(stop).await }
    });
    Instance { running, stop, task }
}

fn pongs(log: &[Outbound]) -> usize {
    log.iter()
        .filter(|o| o.chat_id == CHAT && o.method == "sendMessage")
        .filter(|o| o.text.as_deref().is_some_and(|t| t.starts_with("Pong")))
        .count()
}

/// Sends `/ping` `n` times and waits until `total` pongs were sent in all.
async fn ping(sim: &Sim, n: usize, total: usize) {
    for _ in 0..n {
        sim.send_text(CHAT, USER, "/ping");
    }
    until_sent(sim, &format!("{total} pongs"), |log| pongs(log) >= total).await;
}

async fn poller(i: &Instance) -> Option<mltb_store::RoleLease> {
    i.running.store.role_holder("poller").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_polls_and_a_dead_pollers_updates_are_answered_once_by_the_other() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = start(&sim, dir.path(), "a").await;
    let b = start(&sim, dir.path(), "b").await;

    ping(&sim, 3, 3).await;
    let held = poller(&a).await.expect("an instance polls");
    assert_eq!(held.fence, 1);
    assert!(held.position.is_some(), "the offset is saved");
    // A last ping after the three: had any been answered twice, the count would be over.
    ping(&sim, 1, 4).await;
    assert_eq!(pongs(&sim.sent()), 4, "each update answered once");

    // The poller dies without a word: its role is not given up, its lease runs out.
    let (dead, alive) = if held.holder == "a" { (a, b) } else { (b, a) };
    dead.task.abort();
    let _ = dead.task.await;
    let saved = poller(&alive).await.unwrap().position;
    ping(&sim, 2, 6).await;
    let now = poller(&alive).await.unwrap();
    assert_ne!(now.holder, held.holder, "the other instance polls now");
    assert_eq!(now.fence, 2, "a takeover raises the fence");
    assert!(now.position > saved, "from the saved offset on");
    ping(&sim, 1, 7).await;
    assert_eq!(pongs(&sim.sent()), 7, "nothing lost, nothing answered twice");

    dead.running.shutdown().await;
    alive.stop.cancel();
    assert_eq!(alive.task.await.unwrap(), Exit::Stopped);
    // Stopping gives the role up at once.
    assert_eq!(alive.running.store.role_holder("poller").await.unwrap().unwrap().until, 0);
    alive.running.shutdown().await;
}

/// Boards posted in `CHAT` (each `sendMessage` of a text starting `Tasks:`).
fn boards_posted(log: &[Outbound]) -> usize {
    log.iter()
        .filter(|o| o.chat_id == CHAT && o.method == "sendMessage")
        .filter(|o| o.text.as_deref().is_some_and(|t| t.starts_with("Tasks:")))
        .count()
}

/// Waits (bounded) until task `id` is in `state` in the store.
async fn until_state(i: &Instance, id: i64, state: TaskState) {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let now = i.running.store.task(id).await.unwrap().map(|t| t.state);
        if now == Some(state) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "task {id} never became {state}: {now:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two tasks of one chat run on two instances (one each): the chat has one status board,
/// the poller's, showing both; `/cancel` of the task the other instance runs stops it
/// there; the simulator, flood limits on, never answers 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_two_instances_share_one_board_and_cancel_from_the_poller() {
    let sim = Sim::start(SimConfig::default().rate_limits(Some(RateLimits::default()))).await.unwrap();
    // Slow enough to stay running while the test looks (each alone would take ~50 s).
    let slow = || ServedFile::new(support::data(1 << 20)).drip(4096, std::time::Duration::from_millis(200));
    let server =
        FileServer::builder().serve("/one.bin", slow()).serve("/two.bin", slow()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("MLTB_INSTANCE_MOST", "1"),
        ("MLTB_DOWNLOADS_ALLOW", "[\"127.0.0.1\"]"),
        ("MLTB_QUEUE_MIN_FREE_DISK", "0"),
        ("MLTB_STATUS_INTERVAL", "3s"),
    ];
    let a = start_with(&sim, dir.path(), "a", &extra).await;
    let b = start_with(&sim, dir.path(), "b", &extra).await;
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/one.bin")));
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/two.bin")));
    until_sent(&sim, "one board showing both tasks", |log| {
        log.iter().any(|o| {
            o.chat_id == CHAT
                && o.text.as_deref().is_some_and(|t| {
                    t.starts_with("Tasks: 2") && t.contains("one.bin") && t.contains("two.bin")
                })
        })
    })
    .await;
    let (deadline, mut split) = (tokio::time::Instant::now() + support::WAIT, false);
    while !split {
        split = a.running.engine.tasks().len() == 1 && b.running.engine.tasks().len() == 1;
        assert!(tokio::time::Instant::now() < deadline, "each instance runs one task");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let holder = poller(&a).await.expect("an instance polls").holder;
    let (poller_i, other) = if holder == "a" { (&a, &b) } else { (&b, &a) };
    assert_eq!(boards_posted(&sim.sent()), 1, "one board, the poller's");

    // `/cancel` reaches the poller; the other instance runs the task and stops it.
    let theirs = other.running.engine.tasks()[0].id;
    sim.send_text(CHAT, USER, &format!("/cancel {theirs}"));
    until_sent(&sim, "the cancel acknowledged", |log| {
        log.iter().any(|o| o.text.as_deref() == Some(&format!("Cancelling task #{theirs}.")))
    })
    .await;
    until_state(other, theirs, TaskState::Cancelled).await;
    let mine = poller_i.running.engine.tasks()[0].id;
    sim.send_text(CHAT, USER, &format!("/cancel {mine}"));
    until_state(poller_i, mine, TaskState::Cancelled).await;
    until_sent(&sim, "the board goes once no task is left", |log| {
        log.iter().any(|o| o.chat_id == CHAT && o.method == "deleteMessage")
    })
    .await;
    assert!(other.running.engine.tasks().is_empty() && poller_i.running.engine.tasks().is_empty());
    assert_eq!(boards_posted(&sim.sent()), 1, "still one board");
    let stats = sim.stats();
    assert_eq!(stats.responses_429, 0, "{stats:?}");

    for i in [a, b] {
        i.stop.cancel();
        assert_eq!(i.task.await.unwrap(), Exit::Stopped);
        i.running.shutdown().await;
    }
    server.shutdown().await;
}
