//! The scheduler against the simulator with Telegram's flood limits on.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mltb_telegram::scheduler::{Request, Response, Scheduler};
use mltb_telegram_sim::{Fault, RateLimits, SimConfig};
use support::{client, start};

/// A simulator with Telegram's limits that knows `chats` (the bot can write only there).
async fn sim_with(chats: impl IntoIterator<Item = i64>) -> mltb_telegram_sim::Sim {
    let sim = start(SimConfig::default().rate_limits(Some(RateLimits::default()))).await;
    for chat in chats {
        sim.add_chat(chat);
    }
    sim
}
use tokio::sync::Mutex;

const CHATS: [i64; 10] = [11, 12, 13, 14, 15, 16, -21, -22, -23, -24];

async fn status_messages(s: &Scheduler) -> Vec<(i64, i32)> {
    let mut tickets = Vec::new();
    for chat in CHATS {
        tickets
            .push((chat, s.submit(Request::send_message(chat, format!("status of {chat}"))).await.unwrap()));
    }
    let mut out = Vec::new();
    for (chat, t) in tickets {
        let Response::Message(m) = t.await.unwrap() else { panic!("sendMessage returns the message") };
        out.push((chat, m.message_id));
    }
    out
}

/// 100 tasks edit the status messages of 10 chats (4 of them groups) concurrently.
/// Returns, per message, the text submitted last.
async fn run_tasks(
    s: &Scheduler,
    messages: &[(i64, i32)],
    steps: usize,
    every: Duration,
) -> HashMap<(i64, i32), String> {
    // Submission order per message is made observable by a lock around "pick text, submit".
    let latest: Arc<Mutex<HashMap<(i64, i32), String>>> = Arc::default();
    let mut tasks = Vec::new();
    for task in 0..100usize {
        let (chat, mid) = messages[task % messages.len()];
        let s = s.clone();
        let latest = latest.clone();
        tasks.push(tokio::spawn(async move {
            let mut tickets = Vec::new();
            for step in 0..steps {
                let text = format!("task {task}: step {step}");
                let ticket = {
                    let mut latest = latest.lock().await;
                    latest.insert((chat, mid), text.clone());
                    s.submit(Request::edit_message_text(chat, mid, text)).await.unwrap()
                };
                tickets.push(ticket);
                // Progress reports arrive spread out, as a download's do.
                tokio::time::sleep(every).await;
            }
            for t in tickets {
                let r = t.await.expect("every edit resolves Ok");
                assert!(matches!(r, Response::Message(_) | Response::Unchanged), "{r:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(latest).unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_edits_of_100_tasks_never_trip_the_limits() {
    let sim = sim_with(CHATS).await;
    let s = Scheduler::builder().build(client(&sim));
    let messages = status_messages(&s).await;
    // 100 tasks × 10 reports over 4 s: edits keep flowing for the whole run.
    let latest = run_tasks(&s, &messages, 10, Duration::from_millis(400)).await;
    s.shutdown().await;

    let stats = sim.stats();
    assert_eq!(stats.responses_429, 0, "{stats:?}");
    assert!(stats.max_per_chat_in_any_second <= 1, "{stats:?}");
    assert!(stats.max_per_group_in_any_minute <= 20, "{stats:?}");
    assert!(stats.max_global_in_any_second <= 30, "{stats:?}");
    let edits = sim.sent().iter().filter(|o| o.method == "editMessageText").count();
    assert!(edits < 1000, "coalescing sent {edits} of 1000 edits");
    assert!(edits >= 20, "edits went out throughout the run, not only at the end: {edits}");
    assert!(s.stats().coalesced > 0);
    for ((chat, mid), text) in latest {
        let shown = sim.message(chat, mid).unwrap().text;
        assert_eq!(shown.as_deref(), Some(text.as_str()), "chat {chat} shows the latest text");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_delays_but_loses_nothing() {
    let sim = sim_with(CHATS).await;
    let s = Scheduler::builder().build(client(&sim));
    let messages = status_messages(&s).await;
    // Mid-run: the next 8 calls of any kind get 429 retry after 1.
    sim.inject_fault(Fault::TooManyRequests { retry_after: 1 }, 8);
    let latest = run_tasks(&s, &messages, 5, Duration::from_millis(200)).await;
    // And new messages sent during the storm arrive too.
    for chat in CHATS {
        assert!(matches!(
            s.send(Request::send_message(chat, "after the storm")).await.unwrap(),
            Response::Message(_)
        ));
    }
    s.shutdown().await;

    let stats = sim.stats();
    assert_eq!(stats.responses_429, 8, "only the injected ones: {stats:?}");
    assert!(s.stats().rate_limited >= 8);
    for ((chat, mid), text) in latest {
        assert_eq!(sim.message(chat, mid).unwrap().text.as_deref(), Some(text.as_str()));
    }
    for chat in CHATS {
        assert!(sim.sent().iter().any(|o| o.chat_id == chat && o.text.as_deref() == Some("after the storm")));
    }
    assert_eq!(s.stats().failed, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_60_chats_stays_under_the_global_limit() {
    let sim = sim_with(1..=60).await;
    let s = Scheduler::builder().build(client(&sim));
    let mut tickets = Vec::new();
    for chat in 1..=60i64 {
        tickets.push(s.submit(Request::send_message(chat, "announcement")).await.unwrap());
    }
    for t in tickets {
        assert!(matches!(t.await.unwrap(), Response::Message(_)));
    }
    let stats = sim.stats();
    assert_eq!(stats.responses_429, 0, "{stats:?}");
    assert_eq!(stats.accepted_sends, 60);
    assert!(stats.max_global_in_any_second <= 30, "{stats:?}");
    // The global limit was the binding one: about 27 a second.
    assert!(stats.max_global_in_any_second >= 20, "{stats:?}");
    s.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_status_edits_are_parsed_and_compared_like_telegram() {
    let sim = sim_with([31]).await;
    let s = Scheduler::builder().build(client(&sim));
    let Response::Message(sent) = s.send(Request::send_html(31, "<b>Downloading</b> 0%")).await.unwrap()
    else {
        panic!("sendMessage returns the message")
    };
    assert_eq!(sent.text.as_deref(), Some("Downloading 0%"));
    let bold = &sent.entities.as_ref().expect("the bold entity")[0];
    assert_eq!((bold.offset, bold.length), (0, 11));
    let mid = sent.message_id;

    let edit = |html: &str| s.send(Request::edit_message_html(31, mid, html));
    assert!(matches!(edit("<b>Downloading</b> 40%").await.unwrap(), Response::Message(_)));
    // Identical input: skipped without asking the server.
    assert_eq!(edit("<b>Downloading</b> 40%").await.unwrap(), Response::Unchanged);
    // Other markup for the same parsed message: the server says "not modified".
    assert_eq!(edit("<strong>Downloading</strong> 40%").await.unwrap(), Response::Unchanged);
    // Same visible text without the entity is a change Telegram shows.
    let Response::Message(plain) =
        s.send(Request::edit_message_text(31, mid, "Downloading 40%")).await.unwrap()
    else {
        panic!("a change returns the message")
    };
    assert!(plain.entities.is_none());
    // Bad markup is the Bot API's typed 400, not retried.
    let err = edit("<b>Downloading 50%").await.unwrap_err();
    assert_eq!(err.code(), Some(400));
    assert!(err.to_string().contains("can't parse entities"), "{err}");
    s.shutdown().await;

    let state = sim.message(31, mid).unwrap();
    assert_eq!((state.text.as_deref(), state.entities.as_ref()), (Some("Downloading 40%"), None));
    let edits = sim.sent().iter().filter(|o| o.method == "editMessageText").count();
    assert_eq!(edits, 2, "the skipped and the not-modified edits changed nothing");
    sim.shutdown().await;
}
