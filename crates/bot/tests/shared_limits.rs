//! Telegram's limits shared by several instances through Redis: three schedulers (three
//! instances' worth) sending for one bot to a simulator with Telegram's flood limits on
//! get no 429 together, where the same three without the shared limits do.

use std::sync::Arc;
use std::time::Duration;

use mltb_bot::limits::SharedTelegramLimits;
use mltb_telegram::Client;
use mltb_telegram::scheduler::{Limits, Request, Response, Scheduler, Transport};
use mltb_telegram_sim::{RateLimits, Sim, SimConfig};
use mltb_testkit::SharedRedis;

const INSTANCES: usize = 3;
/// Each instance sends one message to each chat: 30 chats, so each instance alone would
/// send near Telegram's 30 messages a second overall, and each chat gets one message
/// from every instance.
const CHATS: i64 = 30;

async fn sim() -> Sim {
    let sim = Sim::start(SimConfig::default().rate_limits(Some(RateLimits::default()))).await.unwrap();
    for chat in 1..=CHATS {
        sim.add_chat(chat);
    }
    sim
}

fn client(sim: &Sim) -> Client {
    Client::builder(sim.token())
        .api_url(sim.api_url())
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends every instance's messages at once; returns when each is delivered.
async fn send_all(schedulers: &[Scheduler]) {
    let mut tickets = Vec::new();
    for (i, s) in schedulers.iter().enumerate() {
        for chat in 1..=CHATS {
            tickets.push(s.submit(Request::send_message(chat, format!("from instance {i}"))).await.unwrap());
        }
    }
    for t in tickets {
        t.await.expect("every message is delivered");
    }
    for s in schedulers {
        s.shutdown().await;
    }
}

/// A bot id no other test run uses, so that its Redis buckets start empty.
fn fresh_bot_id() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) >> 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_limits_through_redis_get_no_429() {
    let redis = SharedRedis::get()
        .await
        .expect("Redis: set REDIS_URL, or install it (sudo apt-get install redis-server)");
    let sim = sim().await;
    let bot = fresh_bot_id();
    let schedulers: Vec<Scheduler> = (0..INSTANCES)
        .map(|_| {
            let shared = SharedTelegramLimits::new(redis.url(), bot, Limits::default()).unwrap();
            Scheduler::builder().shared_limits(Arc::new(shared)).build(client(&sim))
        })
        .collect();
    send_all(&schedulers).await;
    let stats = sim.stats();
    assert_eq!(stats.accepted_sends, (INSTANCES as u64) * CHATS as u64);
    assert_eq!(stats.responses_429, 0, "{stats:?}");
    assert!(stats.max_global_in_any_second <= 30, "{stats:?}");
    assert!(stats.max_per_chat_in_any_second <= 1, "{stats:?}");
}

/// The control: the same three instances, each keeping the limits on its own only, trip
/// the simulator's flood limits (so the test above can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_without_shared_limits_are_throttled() {
    let sim = sim().await;
    let schedulers: Vec<Scheduler> =
        (0..INSTANCES).map(|_| Scheduler::builder().build(client(&sim))).collect();
    send_all(&schedulers).await;
    let stats = sim.stats();
    assert_eq!(stats.accepted_sends, (INSTANCES as u64) * CHATS as u64);
    assert!(stats.responses_429 > 0, "three instances without shared limits exceed Telegram's: {stats:?}");
}

/// Holds its first request back `late` before sending it on, as a slow network or a
/// stalled process would, and says when that request has been let go by the limits.
struct LateFirst {
    client: Client,
    late: Duration,
    started: Arc<tokio::sync::Notify>,
    first: std::sync::atomic::AtomicBool,
}

impl Transport for LateFirst {
    async fn execute(&self, request: &Request) -> mltb_telegram::Result<Response> {
        if self.first.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.started.notify_one();
            tokio::time::sleep(self.late).await;
        }
        self.client.execute(request).await
    }
}

/// Two instances send to one chat, and the first's request reaches Telegram 600 ms after
/// the shared limits let it go. The second instance's request still arrives a second
/// after it: the first instance held the chat's shared bucket for the answer gap once its
/// answer came. Without the gap the two arrive half a second apart.
async fn late_arrival_then_another_instance(answer_gap: Duration) -> mltb_telegram_sim::SimStats {
    let redis = SharedRedis::get()
        .await
        .expect("Redis: set REDIS_URL, or install it (sudo apt-get install redis-server)");
    let sim = sim().await;
    let bot = fresh_bot_id();
    let limits = Limits { answer_gap, ..Limits::default() };
    let shared = || Arc::new(SharedTelegramLimits::new(redis.url(), bot, limits).unwrap());
    let started = Arc::new(tokio::sync::Notify::new());
    let late = LateFirst {
        client: client(&sim),
        late: Duration::from_millis(600),
        started: started.clone(),
        first: true.into(),
    };
    let a = Scheduler::builder().limits(limits).shared_limits(shared()).build(late);
    let b = Scheduler::builder().limits(limits).shared_limits(shared()).build(client(&sim));
    let first = a.submit(Request::send_message(1, "late")).await.unwrap();
    started.notified().await;
    let second = b.submit(Request::send_message(1, "next")).await.unwrap();
    first.await.unwrap();
    second.await.unwrap();
    a.shutdown().await;
    b.shutdown().await;
    sim.stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_arrival_holds_back_the_other_instances_next_request() {
    let stats = late_arrival_then_another_instance(Limits::default().answer_gap).await;
    assert_eq!(stats.accepted_sends, 2);
    assert_eq!(stats.max_per_chat_in_any_second, 1, "{stats:?}");
    let control = late_arrival_then_another_instance(Duration::ZERO).await;
    assert_eq!(control.max_per_chat_in_any_second, 2, "without the gap they arrive together: {control:?}");
}
