//! Scheduler logic on tokio's paused clock with an in-process transport.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::*;

#[derive(Clone, Default)]
struct Mock {
    log: Arc<Mutex<Vec<(Instant, Request)>>>,
    faults: Arc<Mutex<VecDeque<Error>>>,
    latency: Duration,
}

impl Mock {
    fn fail_next(&self, e: Error) {
        self.faults.lock().unwrap().push_back(e);
    }

    fn sent(&self) -> Vec<(Instant, Request)> {
        self.log.lock().unwrap().clone()
    }
}

impl Transport for Mock {
    async fn execute(&self, request: &Request) -> Result<Response> {
        tokio::time::sleep(self.latency).await;
        self.log.lock().unwrap().push((Instant::now(), request.clone()));
        if let Some(e) = self.faults.lock().unwrap().pop_front() {
            return Err(e);
        }
        Ok(Response::Done)
    }
}

fn api(code: u16, description: &str, retry_after: Option<u64>) -> Error {
    Error::Api {
        code,
        description: description.into(),
        retry_after: retry_after.map(Duration::from_secs),
        migrate_to_chat_id: None,
    }
}

fn text_of(r: &Request) -> String {
    match r {
        Request::SendMessage(p) => p.text.clone(),
        Request::EditMessageText(p) => p.text.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

fn chat_of(r: &Request) -> i64 {
    match r.chat() {
        Some(ChatKey::Id(id)) => id,
        other => panic!("unexpected chat {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn limits_hold_in_every_window_and_order_is_kept() {
    let mock = Mock { latency: Duration::from_millis(30), ..Mock::default() };
    let s = Scheduler::builder().build(mock.clone());
    let chats = [1i64, 2, 3, -100, -200];
    let mut tickets = Vec::new();
    for i in 0..12 {
        for c in chats {
            tickets.push(s.submit(Request::send_message(c, format!("{c}:{i}"))).await.unwrap());
        }
    }
    for t in tickets {
        assert_eq!(t.await.unwrap(), Response::Done);
    }
    let sent = mock.sent();
    assert_eq!(sent.len(), 60);
    let limits = Limits::default();
    for c in chats {
        let times: Vec<Instant> = sent.iter().filter(|(_, r)| chat_of(r) == c).map(|(t, _)| *t).collect();
        let texts: Vec<String> =
            sent.iter().filter(|(_, r)| chat_of(r) == c).map(|(_, r)| text_of(r)).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("{c}:{i}")).collect();
        assert_eq!(texts, expected, "FIFO within chat {c}");
        let min_gap =
            if c < 0 { limits.per_group.emission_interval() } else { limits.per_chat.emission_interval() };
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= min_gap, "chat {c}: {:?} apart", w[1] - w[0]);
        }
    }
    // Global: no 31 sends within 1 s (30/1100ms admits at most 28 in any second).
    let times: Vec<Instant> = sent.iter().map(|(t, _)| *t).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| **u - *t < Duration::from_secs(1)).count();
        assert!(in_window <= 30, "{in_window} sends within a second");
    }
    // Chats do not block each other: the first send of every chat went out within the first second.
    let start = times[0];
    for c in chats {
        let first = sent.iter().find(|(_, r)| chat_of(r) == c).unwrap().0;
        assert!(first - start < Duration::from_secs(1), "chat {c} waited {:?}", first - start);
    }
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn edits_coalesce_to_the_latest_and_unchanged_are_skipped() {
    let mock = Mock::default();
    let s = Scheduler::builder().build(mock.clone());
    // Occupy the chat so the edits queue up behind it.
    let first = s.submit(Request::send_message(7, "hello")).await.unwrap();
    let mut tickets = Vec::new();
    for i in 0..20 {
        tickets.push(s.submit(Request::edit_message_text(7, 42, format!("step {i}"))).await.unwrap());
    }
    first.await.unwrap();
    for t in tickets {
        assert_eq!(t.await.unwrap(), Response::Done, "every coalesced edit resolves with the sent one");
    }
    let sent = mock.sent();
    let edits: Vec<String> = sent.iter().skip(1).map(|(_, r)| text_of(r)).collect();
    assert_eq!(edits, ["step 19"]);
    assert_eq!(s.stats().coalesced, 19);
    // The same text again is not sent.
    assert_eq!(s.send(Request::edit_message_text(7, 42, "step 19")).await.unwrap(), Response::Unchanged);
    assert_eq!(mock.sent().len(), 2);
    assert_eq!(s.stats().unchanged, 1);
    // A different text is.
    s.send(Request::edit_message_text(7, 42, "step 20")).await.unwrap();
    assert_eq!(mock.sent().len(), 3);
    // The same text parsed as HTML may show differently: it is sent, then remembered.
    s.send(Request::edit_message_html(7, 42, "step 20")).await.unwrap();
    assert_eq!(mock.sent().len(), 4);
    assert_eq!(s.send(Request::edit_message_html(7, 42, "step 20")).await.unwrap(), Response::Unchanged);
    assert_eq!(mock.sent().len(), 4);
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_429_freezes_the_chat_and_the_request_is_retried() {
    let mock = Mock::default();
    let s = Scheduler::builder().freeze_scope(FreezeScope::Chat).build(mock.clone());
    mock.fail_next(api(429, "Too Many Requests: retry after 5", Some(5)));
    let start = Instant::now();
    let a = s.submit(Request::send_message(1, "a")).await.unwrap();
    let b = s.submit(Request::send_message(2, "b")).await.unwrap();
    assert_eq!(a.await.unwrap(), Response::Done);
    assert_eq!(b.await.unwrap(), Response::Done);
    let sent = mock.sent();
    assert_eq!(sent.len(), 3);
    let retried_at = sent.iter().filter(|(_, r)| chat_of(r) == 1).nth(1).unwrap().0;
    assert!(retried_at - start >= Duration::from_secs(5), "retried after {:?}", retried_at - start);
    let other = sent.iter().find(|(_, r)| chat_of(r) == 2).unwrap().0;
    assert!(other - start < Duration::from_secs(1), "chat 2 was not frozen");
    assert_eq!(s.stats().rate_limited, 1);
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_429_in_two_chats_freezes_everything_in_auto_scope() {
    let mock = Mock { latency: Duration::from_millis(10), ..Mock::default() };
    let s = Scheduler::builder().build(mock.clone());
    mock.fail_next(api(429, "Too Many Requests: retry after 3", Some(3)));
    mock.fail_next(api(429, "Too Many Requests: retry after 3", Some(3)));
    let start = Instant::now();
    let t: Vec<Ticket> = vec![
        s.submit(Request::send_message(1, "a")).await.unwrap(),
        s.submit(Request::send_message(2, "b")).await.unwrap(),
    ];
    // Submitted after both 429s: must wait for the global freeze.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = s.send(Request::send_message(3, "c")).await.unwrap();
    assert_eq!(c, Response::Done);
    let at = mock.sent().iter().find(|(_, r)| chat_of(r) == 3).unwrap().0;
    assert!(at - start >= Duration::from_secs(3), "chat 3 sent at {:?}", at - start);
    for t in t {
        t.await.unwrap();
    }
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn server_errors_back_off_then_give_up_with_the_error() {
    let mock = Mock::default();
    let retry = RetryPolicy { max_retries: 2, ..RetryPolicy::default() };
    let s = Scheduler::builder().retry(retry).build(mock.clone());
    mock.fail_next(api(502, "Bad Gateway", None));
    mock.fail_next(Error::Network("connection reset".into()));
    let start = Instant::now();
    assert_eq!(s.send(Request::send_message(1, "x")).await.unwrap(), Response::Done);
    let sent = mock.sent();
    assert_eq!(sent.len(), 3);
    assert!(sent[1].0 - sent[0].0 >= Duration::from_millis(500));
    assert!(sent[2].0 - sent[1].0 >= Duration::from_millis(1000));
    assert!(Instant::now() - start < Duration::from_secs(5));

    for _ in 0..3 {
        mock.fail_next(api(500, "Internal Server Error", None));
    }
    let err = s.send(Request::send_message(1, "y")).await.unwrap_err();
    assert_eq!(err.code(), Some(500));
    // Not retryable: returned at once.
    mock.fail_next(api(400, "Bad Request: chat not found", None));
    let err = s.send(Request::send_message(1, "z")).await.unwrap_err();
    assert!(err.to_string().contains("chat not found"));
    assert_eq!(s.stats().failed, 2);
    assert_eq!(RetryPolicy::default().backoff(40), Duration::from_secs(30));
    s.shutdown().await;
}

/// Sends `fault` for chat 1's first attempt; returns how long chat 1 waited to retry.
async fn retry_wait_after(retry: RetryPolicy, fault: Error) -> Duration {
    let mock = Mock::default();
    let s = Scheduler::builder().freeze_scope(FreezeScope::Chat).retry(retry).build(mock.clone());
    mock.fail_next(fault);
    let a = s.submit(Request::send_message(1, "a")).await.unwrap();
    let b = s.submit(Request::send_message(2, "b")).await.unwrap();
    assert_eq!(b.await.unwrap(), Response::Done, "the worker outlived the wait");
    assert_eq!(a.await.unwrap(), Response::Done);
    assert_eq!(s.send(Request::send_message(3, "c")).await.unwrap(), Response::Done);
    let sent = mock.sent();
    let tries: Vec<Instant> = sent.iter().filter(|(_, r)| chat_of(r) == 1).map(|(t, _)| *t).collect();
    assert_eq!(tries.len(), 2);
    s.shutdown().await;
    tries[1] - tries[0]
}

#[tokio::test(start_paused = true)]
async fn endless_waits_are_cut_to_a_day_and_the_worker_lives() {
    let day = Duration::from_secs(24 * 60 * 60);
    assert_eq!(worker::MAX_WAIT, day);
    let endless_default = RetryPolicy { default_retry_after: Duration::MAX, ..RetryPolicy::default() };
    let no_retry_after = api(429, "Too Many Requests", None);
    assert_eq!(retry_wait_after(endless_default, no_retry_after).await, day);

    let from_server = api(429, "Too Many Requests: retry after forever", Some(u64::MAX));
    assert_eq!(retry_wait_after(RetryPolicy::default(), from_server).await, day);

    let endless_backoff =
        RetryPolicy { base_backoff: Duration::MAX, max_backoff: Duration::MAX, ..RetryPolicy::default() };
    assert_eq!(retry_wait_after(endless_backoff, api(502, "Bad Gateway", None)).await, day);
}

#[tokio::test(start_paused = true)]
async fn not_modified_is_success() {
    let mock = Mock::default();
    let s = Scheduler::builder().build(mock.clone());
    mock.fail_next(api(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message", None));
    assert_eq!(s.send(Request::edit_message_text(1, 5, "x")).await.unwrap(), Response::Unchanged);
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn backpressure_and_shutdown_drain() {
    let mock = Mock { latency: Duration::from_millis(100), ..Mock::default() };
    let s = Scheduler::builder().capacity(3).build(mock.clone());
    let mut tickets = Vec::new();
    for i in 0..3 {
        tickets.push(s.try_submit(Request::send_message(1, format!("{i}"))).unwrap());
    }
    assert!(matches!(s.try_submit(Request::send_message(1, "x")), Err(Error::QueueFull { capacity: 3 })));
    assert_eq!(s.pending(), 3);
    // A waiting submit gets in once one resolves.
    let late = s.submit(Request::send_message(1, "late")).await.unwrap();
    tickets.push(late);
    s.shutdown().await;
    assert_eq!(mock.sent().len(), 4, "shutdown drained the queue");
    for t in tickets {
        assert_eq!(t.await.unwrap(), Response::Done);
    }
    assert!(matches!(s.submit(Request::send_message(1, "after")).await, Err(Error::Closed)));
}

/// Returns the sent message, as the Bot API does for sendMessage.
struct Messages(Arc<Mutex<u32>>);

impl Transport for Messages {
    async fn execute(&self, request: &Request) -> Result<Response> {
        *self.0.lock().unwrap() += 1;
        let chat = chat_of(request);
        let m = serde_json::json!({"message_id": 9, "date": 1, "chat": {"id": chat, "type": "private"}});
        Ok(Response::Message(Box::new(serde_json::from_value(m).unwrap())))
    }
}

#[tokio::test(start_paused = true)]
async fn an_edit_repeating_what_was_sent_is_skipped() {
    let calls = Arc::new(Mutex::new(0));
    let s = Scheduler::builder().build(Messages(calls.clone()));
    let sent = s.send(Request::send_message(7, "hello")).await.unwrap();
    assert_eq!(sent.message().unwrap().message_id, 9);
    assert_eq!(s.send(Request::edit_message_text(7, 9, "hello")).await.unwrap(), Response::Unchanged);
    assert_eq!(*calls.lock().unwrap(), 1, "the edit was not sent");
    // A different keyboard is a change.
    let mut edit = frankenstein::methods::EditMessageTextParams::builder()
        .chat_id(7)
        .message_id(9)
        .text("hello")
        .build();
    edit.reply_markup = Some(crate::format::KeyboardBuilder::new().callback("x", "y").unwrap().build());
    assert!(matches!(s.send(Request::EditMessageText(edit)).await.unwrap(), Response::Message(_)));
    assert_eq!(*calls.lock().unwrap(), 2);
    s.shutdown().await;
}

/// Uploads take a minute; everything else is instant.
struct SlowUploads(Arc<Mutex<Vec<(Instant, &'static str)>>>);

impl Transport for SlowUploads {
    async fn execute(&self, request: &Request) -> Result<Response> {
        if matches!(request, Request::SendDocument(_)) {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        self.0.lock().unwrap().push((Instant::now(), request.method()));
        Ok(Response::Done)
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_upload_does_not_hold_back_the_chats_edits() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = Scheduler::builder().build(SlowUploads(log.clone()));
    let start = Instant::now();
    let doc = frankenstein::methods::SendDocumentParams::builder()
        .chat_id(5)
        .document(frankenstein::input_file::InputFile::from(std::path::PathBuf::from("/tmp/part1")))
        .build();
    let upload = s.submit(Request::SendDocument(doc)).await.unwrap();
    for i in 0..3 {
        s.send(Request::edit_message_text(5, 1, format!("uploading {i}"))).await.unwrap();
    }
    assert!(Instant::now() - start < Duration::from_secs(10), "edits went out during the upload");
    assert_eq!(upload.await.unwrap(), Response::Done);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
        ["editMessageText", "editMessageText", "editMessageText", "sendDocument"]
    );
    // The upload still took a cell: the first edit waited for the chat's interval.
    assert!(log[0].0 - start >= Limits::default().per_chat.emission_interval());
    s.shutdown().await;
}

#[test]
fn an_abort_flag_with_a_deadline_is_set_past_it_until_the_deadline_moves_on() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let deadline = Arc::new(AtomicI64::new(now + 60_000));
    let flag = super::AbortFlag::with_deadline(deadline.clone());
    assert!(!flag.is_set(), "the lease holds");
    deadline.store(now - 1, Ordering::Release);
    assert!(flag.is_set(), "past the lease");
    deadline.store(now + 60_000, Ordering::Release);
    assert!(!flag.is_set(), "renewed");
    flag.set();
    assert!(flag.is_set() && flag.clone().is_set(), "set stays set");
    assert!(!super::AbortFlag::new().is_set());
}

/// Answers its first request `first` late and the rest at once, logging each answer's
/// instant: the latest a server can have counted it.
#[derive(Clone)]
struct LateFirst {
    first: Duration,
    log: Arc<Mutex<Vec<Instant>>>,
}

impl Transport for LateFirst {
    async fn execute(&self, _: &Request) -> Result<Response> {
        let late = self.log.lock().unwrap().is_empty();
        if late {
            tokio::time::sleep(self.first).await;
        }
        self.log.lock().unwrap().push(Instant::now());
        Ok(Response::Done)
    }
}

/// Records the holds it is asked for, with the instant.
#[derive(Default)]
struct Holds(Mutex<Vec<(Instant, ChatKey, Duration)>>);

impl SharedLimits for Holds {
    fn acquire<'a>(&'a self, _: Option<&'a ChatKey>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(std::future::ready(()))
    }

    fn answered<'a>(
        &'a self,
        chat: &'a ChatKey,
        gap: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        self.0.lock().unwrap().push((Instant::now(), chat.clone(), gap));
        Box::pin(std::future::ready(()))
    }
}

/// A request answered late (it may have reached the server as late as its answer) holds
/// the chat's next request back for the answer gap from that answer, not only the chat's
/// interval from when it was sent; the shared limits are told so, before the next
/// request goes.
#[tokio::test(start_paused = true)]
async fn the_next_request_to_a_chat_waits_the_answer_gap_after_a_late_answer() {
    let limits = Limits::default();
    let late = Duration::from_millis(600);
    let log = Arc::new(Mutex::new(Vec::new()));
    let holds = Arc::new(Holds::default());
    let s =
        Scheduler::builder().shared_limits(holds.clone()).build(LateFirst { first: late, log: log.clone() });
    let start = Instant::now();
    let tickets = [
        s.submit(Request::send_message(9, "one")).await.unwrap(),
        s.submit(Request::send_message(9, "two")).await.unwrap(),
    ];
    for t in tickets {
        assert_eq!(t.await.unwrap(), Response::Done);
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert!(log[1] - log[0] >= limits.answer_gap, "{:?} between the answers", log[1] - log[0]);
    // Without the gap the second would have gone one interval after the first was sent.
    assert!(log[1] - start >= late + limits.answer_gap);
    assert!(late + limits.answer_gap > limits.per_chat.emission_interval());
    let holds = holds.0.lock().unwrap().clone();
    assert_eq!(holds.len(), 2, "one hold per answer: {holds:?}");
    assert_eq!((holds[0].0, &holds[0].1, holds[0].2), (log[0], &ChatKey::Id(9), limits.answer_gap));
    assert!(holds[0].0 <= log[1]);

    // A zero gap turns it off: the second goes one interval after the first was sent.
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = Scheduler::builder()
        .limits(Limits { answer_gap: Duration::ZERO, ..limits })
        .build(LateFirst { first: late, log: log.clone() });
    let start = Instant::now();
    let tickets = [
        s.submit(Request::send_message(9, "one")).await.unwrap(),
        s.submit(Request::send_message(9, "two")).await.unwrap(),
    ];
    for t in tickets {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log[1] - start, limits.per_chat.emission_interval());
    s.shutdown().await;
}
