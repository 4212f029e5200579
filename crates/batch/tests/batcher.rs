//! Behaviour of the batcher on tokio's paused clock: timing assertions are exact.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use mltb_batch::{BatchObserver, BatchOutcome, Batcher, Completed, Dispatched, ErrorKind, FlushReason};
use support::{Behaviour, Poison, Recorder};
use tokio::time::{Instant, timeout};

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn idle_lone_item_goes_at_once() {
    let (handler, probe) = Recorder::open();
    let batcher = Batcher::builder().max_delay(LONG).build(handler).unwrap();
    let start = Instant::now();
    assert_eq!(batcher.submit(21).await.unwrap(), 42);
    assert_eq!(start.elapsed(), Duration::ZERO, "a lone item on an idle handler must not wait");
    assert_eq!(probe.batches(), vec![vec![21]]);
    let stats = batcher.stats();
    assert_eq!(stats.batches_for(FlushReason::Idle), 1);
    assert_eq!((stats.submitted, stats.dispatched, stats.batches), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn items_accumulate_only_while_handler_is_busy() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().max_delay(LONG).build(handler).unwrap();
    let first = batcher.enqueue(0).await.unwrap();
    assert_eq!(probe.entered().await, vec![0]);
    let mut rest = Vec::new();
    for i in 1..=5 {
        rest.push(batcher.enqueue(i).await.unwrap());
    }
    probe.release(1);
    assert_eq!(first.await.unwrap(), 0);
    assert_eq!(probe.entered().await, vec![1, 2, 3, 4, 5]);
    probe.release(1);
    for (i, pending) in (1..=5_u32).zip(rest) {
        assert_eq!(pending.await.unwrap(), u64::from(i) * 2);
    }
    assert_eq!(batcher.stats().batches, 2);
}

#[tokio::test(start_paused = true)]
async fn no_batch_exceeds_max_items() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().max_items(3).build(handler).unwrap();
    let mut pending = vec![batcher.enqueue(0).await.unwrap()];
    assert_eq!(probe.entered().await, vec![0]);
    for i in 1..10 {
        pending.push(batcher.enqueue(i).await.unwrap());
    }
    probe.release(10);
    for (i, p) in (0..10_u32).zip(pending) {
        assert_eq!(p.await.unwrap(), u64::from(i) * 2);
    }
    assert_eq!(probe.batches(), vec![vec![0], vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
    let stats = batcher.stats();
    assert_eq!(stats.batches_for(FlushReason::Full), 3, "{stats:?}");
    assert_eq!(stats.batches_for(FlushReason::Idle), 1);
}

#[tokio::test(start_paused = true)]
async fn byte_bound_limits_batches_and_oversized_item_goes_alone() {
    let (handler, mut probe) = Recorder::gated();
    let batcher =
        Batcher::builder().weigher(|item: &u32| *item as usize).max_bytes(10).build(handler).unwrap();
    let mut pending = vec![batcher.enqueue(1).await.unwrap()];
    assert_eq!(probe.entered().await, vec![1]);
    for i in [6, 4, 5, 30, 2, 3] {
        pending.push(batcher.enqueue(i).await.unwrap());
    }
    probe.release(10);
    for p in pending {
        p.await.unwrap();
    }
    assert_eq!(probe.batches(), vec![vec![1], vec![6, 4], vec![5], vec![30], vec![2, 3]]);
}

#[tokio::test(start_paused = true)]
async fn weights_summing_past_usize_max_keep_the_batcher_alive() {
    // Item 1000 and up weigh usize::MAX: two of them queued together overflow a usize sum.
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder()
        .weigher(|item: &u32| if *item >= 1000 { usize::MAX } else { *item as usize })
        .max_bytes(100)
        .build(handler)
        .unwrap();
    let mut pending = vec![batcher.enqueue(0).await.unwrap()];
    assert_eq!(probe.entered().await, vec![0]);
    for i in [1000, 10, 1001, 20, 30] {
        pending.push(batcher.enqueue(i).await.unwrap());
    }
    probe.release(10);
    for (i, p) in [0_u32, 1000, 10, 1001, 20, 30].into_iter().zip(pending) {
        assert_eq!(p.await.unwrap(), u64::from(i) * 2, "item {i}");
    }
    assert_eq!(probe.batches(), vec![vec![0], vec![1000], vec![10], vec![1001], vec![20, 30]]);
    // The last batch went because the handler was idle, not because the queue looked full.
    assert_eq!(batcher.stats().batches_for(FlushReason::Idle), 2);
}

#[tokio::test(start_paused = true)]
async fn max_delay_holds_items_while_partially_busy_then_flushes() {
    let (handler, mut probe) = Recorder::gated();
    let delay = Duration::from_millis(10);
    let batcher = Batcher::builder().max_concurrency(2).max_delay(delay).build(handler).unwrap();
    let _first = batcher.enqueue(0).await.unwrap();
    assert_eq!(probe.entered().await, vec![0]);
    let start = Instant::now();
    let second = batcher.enqueue(1).await.unwrap();
    let third = batcher.enqueue(2).await.unwrap();
    // One call in flight and a slot free: items wait for company, exactly max_delay.
    assert_eq!(probe.entered().await, vec![1, 2]);
    assert_eq!(start.elapsed(), delay);
    probe.release(2);
    assert_eq!(second.await.unwrap(), 2);
    assert_eq!(third.await.unwrap(), 4);
    assert_eq!(batcher.stats().batches_for(FlushReason::Delay), 1);
}

#[tokio::test(start_paused = true)]
async fn no_item_waits_longer_than_max_delay_plus_handler_time() {
    for concurrency in [1, 2, 3] {
        let cost = Duration::from_millis(7);
        let max_delay = Duration::from_millis(3);
        let (handler, probe) = Recorder::open();
        let batcher = Batcher::builder()
            .max_items(50)
            .max_delay(max_delay)
            .max_concurrency(concurrency)
            .build(handler.cost(cost))
            .unwrap();
        let submitted = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for task in 0..4_u32 {
            let batcher = batcher.clone();
            let submitted = Arc::clone(&submitted);
            tasks.push(tokio::spawn(async move {
                for k in 0..10_u32 {
                    // Spread arrivals over virtual time: 0, 1, 2 ... ms apart per task.
                    tokio::time::sleep(Duration::from_millis(u64::from((task + k) % 4))).await;
                    let item = task * 100 + k;
                    submitted.lock().unwrap().push((item, Instant::now()));
                    assert_eq!(batcher.submit(item).await.unwrap(), u64::from(item) * 2);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let calls = probe.calls();
        let submitted = submitted.lock().unwrap().clone();
        assert_eq!(submitted.len(), 40);
        for (item, at) in submitted {
            let call = calls.iter().find(|c| c.items.contains(&item)).unwrap();
            let waited = call.at - at;
            assert!(waited <= max_delay + cost, "concurrency {concurrency}: item {item} waited {waited:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn order_is_kept_across_batches() {
    let (handler, probe) = Recorder::open();
    let batcher = Batcher::builder().max_items(7).build(handler.cost(Duration::from_millis(1))).unwrap();
    let mut pending = Vec::new();
    for i in 0..100 {
        pending.push(batcher.enqueue(i).await.unwrap());
    }
    for (i, p) in (0..100_u32).zip(pending) {
        assert_eq!(p.await.unwrap(), u64::from(i) * 2);
    }
    let handled: Vec<u32> = probe.batches().concat();
    assert_eq!(handled, (0..100).collect::<Vec<_>>());
    assert!(probe.batches().iter().all(|b| b.len() <= 7));
    let calls = probe.calls();
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_everything_then_refuses() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().max_items(8).build(handler).unwrap();
    let mut pending = vec![batcher.enqueue(0).await.unwrap()];
    assert_eq!(probe.entered().await, vec![0]);
    for i in 1..50 {
        pending.push(batcher.enqueue(i).await.unwrap());
    }
    let stopper = batcher.clone();
    let mut shutdown = Box::pin(async move { stopper.shutdown().await });
    // While the handler is held, shutdown cannot have drained yet.
    assert!(timeout(LONG, &mut shutdown).await.is_err());
    assert!(batcher.is_closed());
    let late = batcher.submit(99).await.unwrap_err();
    assert!(late.is_closed() && !late.reached_handler());
    assert!(batcher.try_submit(98).unwrap_err().is_closed());
    probe.release(usize::MAX >> 4);
    shutdown.await;
    for (i, p) in (0..50_u32).zip(pending) {
        assert_eq!(p.await.unwrap(), u64::from(i) * 2);
    }
    assert_eq!(probe.batches().concat(), (0..50).collect::<Vec<_>>());
    let stats = batcher.stats();
    // 49 items queued behind the first: six full batches of 8, then the last one.
    assert_eq!(stats.batches_for(FlushReason::Full), 6);
    assert_eq!(stats.batches_for(FlushReason::Shutdown), 1);
    assert_eq!(stats.queue_depth, 0);
    // A second shutdown and a flush after shutdown return at once.
    batcher.shutdown().await;
    batcher.flush().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_drains_the_queue() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().build(handler).unwrap();
    let mut pending = vec![batcher.enqueue(0).await.unwrap()];
    assert_eq!(probe.entered().await, vec![0]);
    for i in 1..5 {
        pending.push(batcher.enqueue(i).await.unwrap());
    }
    drop(batcher);
    probe.release(2);
    for (i, p) in (0..5_u32).zip(pending) {
        assert_eq!(p.await.unwrap(), u64::from(i) * 2);
    }
    assert_eq!(probe.entered().await, vec![1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn dropped_submit_is_handled_exactly_once_or_never() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().queue_capacity(1).build(handler).unwrap();
    let first = batcher.enqueue(0).await.unwrap();
    assert_eq!(probe.entered().await, vec![0]);
    let second = batcher.enqueue(1).await.unwrap(); // takes the only queue place

    // Queue full: this submit waits for room and is dropped before it gets any.
    let mut never = Box::pin(batcher.submit(2));
    assert!((&mut never).now_or_never().is_none());
    assert_eq!(batcher.stats().queue_depth, 1, "item 2 took no queue place");
    drop(never);

    probe.release(1);
    first.await.unwrap();
    assert_eq!(probe.entered().await, vec![1]);
    // Room now: this submit queues its item on the first poll, then is dropped.
    let mut once = Box::pin(batcher.submit(3));
    assert!((&mut once).now_or_never().is_none());
    drop(once);
    probe.release(2);
    second.await.unwrap();
    batcher.flush().await;
    assert_eq!(probe.batches(), vec![vec![0], vec![1], vec![3]]);
    assert_eq!(batcher.stats().dispatched, 3);
}

#[tokio::test(start_paused = true)]
async fn handler_error_reaches_every_item_of_its_batch_only() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().build(handler.behaviour(Behaviour::FailOn(13))).unwrap();
    let first = batcher.enqueue(1).await.unwrap();
    assert_eq!(probe.entered().await, vec![1]);
    let failing: Vec<_> = [12, 13, 14].iter().map(|&i| batcher.try_submit(i).unwrap()).collect();
    probe.release(2);
    assert_eq!(first.await.unwrap(), 2);
    for p in failing {
        let err = p.await.unwrap_err();
        assert!(err.is_handler() && err.reached_handler(), "{err}");
        assert_eq!(err.downcast_handler_ref::<Poison>(), Some(&Poison(13)));
        assert_eq!(err.to_string(), "batch handler failed: item 13 is poison");
    }
    probe.release(1);
    assert_eq!(batcher.submit(15).await.unwrap(), 30, "later batches still work");
    assert_eq!(batcher.stats().failed_batches, 1);
}

#[tokio::test(start_paused = true)]
async fn panicking_handler_fails_its_batch_not_the_batcher() {
    let (handler, _probe) = Recorder::open();
    let batcher = Batcher::builder().build(handler.behaviour(Behaviour::PanicOn(7))).unwrap();
    let err = batcher.submit(7).await.unwrap_err();
    assert!(err.is_panic(), "{err}");
    match err.kind() {
        ErrorKind::Panicked { message } => assert_eq!(message, "poison item 7"),
        other => panic!("unexpected kind {other:?}"),
    }
    assert_eq!(batcher.submit(8).await.unwrap(), 16);
    let stats = batcher.stats();
    assert_eq!(stats.panicked_batches, 1);
    assert_eq!(stats.batches, 2);
}

#[tokio::test(start_paused = true)]
async fn wrong_result_count_fails_the_batch_with_a_clear_error() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().build(handler.behaviour(Behaviour::ShortOn(5))).unwrap();
    let first = batcher.enqueue(1).await.unwrap();
    assert_eq!(probe.entered().await, vec![1]);
    let short: Vec<_> = [4, 5, 6].iter().map(|&i| batcher.try_submit(i).unwrap()).collect();
    probe.release(2);
    first.await.unwrap();
    for p in short {
        let err = p.await.unwrap_err();
        assert!(err.is_result_count());
        assert!(matches!(err.kind(), ErrorKind::ResultCount { expected: 3, actual: 2 }));
    }
    probe.release(1);
    assert_eq!(batcher.submit(9).await.unwrap(), 18);
}

#[tokio::test(start_paused = true)]
async fn try_submit_hands_the_item_back_when_full() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().queue_capacity(2).build(handler).unwrap();
    let first = batcher.try_submit(0).unwrap();
    assert_eq!(probe.entered().await, vec![0]);
    assert_eq!(batcher.stats().queue_depth, 0, "a dispatched item frees its place");
    let a = batcher.try_submit(1).unwrap();
    let b = batcher.try_submit(2).unwrap();
    assert_eq!(batcher.stats().queue_depth, 2);
    let refused = batcher.try_submit(3).unwrap_err();
    assert!(refused.is_full() && !refused.is_closed());
    assert_eq!(refused.into_inner(), 3);

    // submit waits for room instead, and gets it when the queue moves.
    let mut waiting = tokio::spawn({
        let batcher = batcher.clone();
        async move { batcher.submit(3).await }
    });
    assert!(timeout(LONG, &mut waiting).await.is_err(), "submit waits while the queue is full");
    probe.release(usize::MAX >> 4);
    for p in [first, a, b] {
        p.await.unwrap();
    }
    assert_eq!(waiting.await.unwrap().unwrap(), 6);
    batcher.shutdown().await;
    assert!(batcher.try_submit(4).unwrap_err().is_closed());
}

#[tokio::test(start_paused = true)]
async fn flush_sends_what_is_queued_now_and_waits_for_it() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().max_concurrency(2).max_delay(LONG).build(handler).unwrap();
    let first = batcher.enqueue(0).await.unwrap();
    assert_eq!(probe.entered().await, vec![0]);
    let a = batcher.enqueue(1).await.unwrap();
    let b = batcher.enqueue(2).await.unwrap();
    let start = Instant::now();
    let flusher = batcher.clone();
    let mut flush = Box::pin(async move { flusher.flush().await });
    // The flush sends [1, 2] without waiting out max_delay...
    tokio::select! {
        entered = probe.entered() => assert_eq!(entered, vec![1, 2]),
        () = &mut flush => panic!("flush resolved before its items were handled"),
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    // ...and resolves only after they (and the earlier item) are handled.
    probe.release(1);
    assert!(timeout(Duration::from_secs(1), &mut flush).await.is_err());
    probe.release(1);
    flush.await;
    for p in [first, a, b] {
        assert!(p.now_or_never().expect("handled before flush resolved").is_ok());
    }
    assert_eq!(batcher.stats().batches_for(FlushReason::Flush), 1);
}

#[derive(Debug, Default)]
struct Events {
    dispatched: Mutex<Vec<Dispatched>>,
    completed: Mutex<Vec<Completed>>,
}

#[derive(Debug, Clone, Default)]
struct Record(Arc<Events>);

impl BatchObserver for Record {
    fn on_dispatch(&self, batch: &Dispatched) {
        self.0.dispatched.lock().unwrap().push(*batch);
    }
    fn on_complete(&self, batch: &Completed) {
        self.0.completed.lock().unwrap().push(*batch);
    }
}

#[tokio::test(start_paused = true)]
async fn observer_sees_size_reason_depth_and_duration() {
    let (handler, _probe) = Recorder::open();
    let record = Record::default();
    let batcher = Batcher::builder()
        .max_items(2)
        .weigher(|_: &u32| 3)
        .max_bytes(100)
        .observer(record.clone())
        .build(handler.cost(Duration::from_millis(5)).behaviour(Behaviour::FailOn(4)))
        .unwrap();
    let pending: Vec<_> = (0..5).map(|i| batcher.try_submit(i).unwrap()).collect();
    for p in pending {
        let _ = p.await;
    }
    batcher.shutdown().await;
    let dispatched = record.0.dispatched.lock().unwrap().clone();
    let summary: Vec<_> = dispatched.iter().map(|d| (d.size, d.bytes, d.reason, d.queue_depth)).collect();
    assert_eq!(
        summary,
        vec![
            // All five were queued before the worker first ran.
            (2, 6, FlushReason::Full, 3),
            (2, 6, FlushReason::Full, 1),
            (1, 3, FlushReason::Idle, 0),
        ]
    );
    let completed = record.0.completed.lock().unwrap().clone();
    assert_eq!(completed.len(), 3);
    assert!(completed.iter().all(|c| c.duration == Duration::from_millis(5)));
    let outcomes: Vec<_> = completed.iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, vec![BatchOutcome::Ok, BatchOutcome::Ok, BatchOutcome::Error]);
}

#[derive(Debug)]
struct Grumpy;

impl BatchObserver for Grumpy {
    fn on_dispatch(&self, _: &Dispatched) {
        panic!("observer bug");
    }
}

#[tokio::test(start_paused = true)]
async fn panicking_observer_does_not_stop_the_batcher() {
    let batcher = Batcher::builder()
        .observer(Grumpy)
        .build(|items: Vec<u8>| async move { Ok::<_, &'static str>(items) })
        .unwrap();
    assert_eq!(batcher.submit(1).await.unwrap(), 1);
    assert_eq!(batcher.submit(2).await.unwrap(), 2);
}

#[tokio::test]
async fn closure_handler_with_string_errors() {
    let batcher = Batcher::builder()
        .build(|items: Vec<i32>| async move {
            if items.contains(&-1) {
                Err(format!("negative in batch of {}", items.len()))
            } else {
                Ok(items.into_iter().map(|i| i.to_string()).collect())
            }
        })
        .unwrap();
    assert_eq!(batcher.submit(5).await.unwrap(), "5");
    let err = batcher.submit(-1).await.unwrap_err();
    assert_eq!(err.to_string(), "batch handler failed: negative in batch of 1");
    assert!(err.handler_error().is_some());
}

#[tokio::test]
async fn an_unbounded_concurrency_is_taken_as_given() {
    // `usize::MAX` as "no limit": the worker once reserved room for that many calls in
    // flight and panicked ("capacity overflow"), so no item was ever answered.
    let batcher =
        Batcher::builder()
            .max_concurrency(usize::MAX)
            .build(|items: Vec<u32>| async move {
                Ok::<_, &'static str>(items.into_iter().map(|i| i * 2).collect())
            })
            .unwrap();
    let answers = futures_util::future::join_all((0..100_u32).map(|i| batcher.submit(i))).await;
    let answers: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, (0..100).map(|i| i * 2).collect::<Vec<_>>());
}

#[tokio::test]
async fn build_rejects_bad_settings_by_name() {
    let handler = |items: Vec<u8>| async move { Ok::<_, &'static str>(items) };
    let setting = |r: mltb_batch::Result<Batcher<u8, u8>>| match r.unwrap_err().kind() {
        ErrorKind::InvalidConfig { setting, .. } => *setting,
        other => panic!("unexpected kind {other:?}"),
    };
    assert_eq!(setting(Batcher::builder().max_items(0).build(handler)), "max_items");
    assert_eq!(setting(Batcher::builder().queue_capacity(0).build(handler)), "queue_capacity");
    assert_eq!(setting(Batcher::builder().max_concurrency(0).build(handler)), "max_concurrency");
    assert_eq!(setting(Batcher::builder().max_bytes(10).build(handler)), "max_bytes");
    let err = Batcher::builder().weigher(|_: &u8| 1).max_bytes(0).build(handler).unwrap_err();
    assert_eq!(err.to_string(), "invalid batcher setting `max_bytes`: at least 1");
}

#[test]
fn build_outside_a_runtime_is_an_error_not_a_panic() {
    let err =
        Batcher::builder().build(|items: Vec<u8>| async move { Ok::<_, &'static str>(items) }).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoRuntime));
}

#[tokio::test(start_paused = true)]
async fn shutdown_refuses_submitters_waiting_for_room() {
    let (handler, mut probe) = Recorder::gated();
    let batcher = Batcher::builder().queue_capacity(1).build(handler).unwrap();
    let first = batcher.enqueue(0).await.unwrap();
    assert_eq!(probe.entered().await, vec![0]);
    let queued = batcher.enqueue(1).await.unwrap();
    let mut waiting = tokio::spawn({
        let batcher = batcher.clone();
        async move { batcher.submit(2).await }
    });
    assert!(timeout(LONG, &mut waiting).await.is_err(), "no room: the submit waits");
    let stopper = batcher.clone();
    let shutdown = tokio::spawn(async move { stopper.shutdown().await });
    let refused = waiting.await.unwrap().unwrap_err();
    assert!(refused.is_closed(), "{refused}");
    probe.release(2);
    shutdown.await.unwrap();
    assert_eq!(first.await.unwrap(), 0);
    assert_eq!(queued.await.unwrap(), 2, "what was queued before shutdown is still handled");
    assert_eq!(probe.batches(), vec![vec![0], vec![1]]);
}
