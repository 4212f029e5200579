//! Two instances of one bot (same token) on one database, against the simulator: one
//! polls at a time (the store's `poller` role) and every update is answered once; when
//! the poller dies without a word, the other takes over after the lease from the saved
//! offset, and still every update is answered once.

mod support;

use mltb_bot::Exit;
use mltb_bot::config::{Config, Env};
use mltb_bot::launch::Running;
use mltb_telegram_sim::{Outbound, Sim, SimConfig};
use support::{CHAT, OWNER, USER, until_sent};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Instance {
    running: Running,
    stop: CancellationToken,
    task: JoinHandle<Exit>,
}

async fn start(sim: &Sim, dir: &std::path::Path, id: &str) -> Instance {
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
