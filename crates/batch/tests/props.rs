//! Invariants under random item counts, sizes, bounds and interleavings, on tokio's
//! paused clock: every item gets exactly its own result, each item is handled exactly
//! once, batches keep submission order and never exceed their bounds, and (when the
//! load fits) no item waits longer than `max_delay` plus one handler call.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mltb_batch::Batcher;
use proptest::prelude::*;
use support::Recorder;
use tokio::time::Instant;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
}

/// One submitter's plan: (pause in ms before the item, weight, await the result now?).
type Plan = Vec<(u8, u8, bool)>;

#[derive(Debug, Clone)]
struct Case {
    max_items: usize,
    max_bytes: Option<usize>,
    concurrency: usize,
    capacity: usize,
    cost_ms: u64,
    plans: Vec<Plan>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1_usize..12,
        prop::option::of(1_usize..40),
        1_usize..4,
        1_usize..40,
        0_u64..4,
        prop::collection::vec(prop::collection::vec((0_u8..4, 1_u8..16, any::<bool>()), 0..40), 1..5),
    )
        .prop_map(|(max_items, max_bytes, concurrency, capacity, cost_ms, plans)| Case {
            max_items,
            max_bytes,
            concurrency,
            capacity,
            cost_ms,
            plans,
        })
}

/// Item ids carry their submitter (`task * 1000 + k`), and weights are looked up by id.
fn item(task: usize, k: usize) -> u32 {
    u32::try_from(task * 1000 + k).expect("small")
}

fn run(case: &Case) -> Vec<Vec<u32>> {
    let weights: Arc<Vec<Vec<usize>>> =
        Arc::new(case.plans.iter().map(|p| p.iter().map(|&(_, w, _)| usize::from(w)).collect()).collect());
    paused_runtime().block_on(async {
        let (handler, probe) = Recorder::open();
        let mut builder = Batcher::builder()
            .max_items(case.max_items)
            .max_concurrency(case.concurrency)
            .queue_capacity(case.capacity)
            .max_delay(Duration::from_millis(2));
        if let Some(max_bytes) = case.max_bytes {
            let weights = Arc::clone(&weights);
            builder = builder
                .weigher(move |&i: &u32| weights[i as usize / 1000][i as usize % 1000])
                .max_bytes(max_bytes);
        }
        let batcher = builder.build(handler.cost(Duration::from_millis(case.cost_ms))).unwrap();
        let mut tasks = Vec::new();
        for (task, plan) in case.plans.iter().cloned().enumerate() {
            let batcher = batcher.clone();
            tasks.push(tokio::spawn(async move {
                let mut pending = Vec::new();
                for (k, (pause, _, wait_now)) in plan.into_iter().enumerate() {
                    tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
                    let id = item(task, k);
                    if wait_now {
                        assert_eq!(batcher.submit(id).await.unwrap(), u64::from(id) * 2);
                    } else {
                        pending.push((id, batcher.enqueue(id).await.unwrap()));
                    }
                }
                for (id, p) in pending {
                    assert_eq!(p.await.unwrap(), u64::from(id) * 2, "item {id} got another's result");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        batcher.shutdown().await;
        probe.batches()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_item_once_in_order_within_bounds(case in case()) {
        let batches = run(&case);
        let handled: Vec<u32> = batches.concat();

        let mut expected: Vec<u32> = case
            .plans
            .iter()
            .enumerate()
            .flat_map(|(t, p)| (0..p.len()).map(move |k| item(t, k)))
            .collect();
        let mut seen = handled.clone();
        seen.sort_unstable();
        expected.sort_unstable();
        prop_assert_eq!(seen, expected, "each item handled exactly once");

        // Each submitter's items reach the handler in the order it queued them.
        for task in 0..case.plans.len() {
            let mine: Vec<u32> = handled.iter().copied().filter(|&i| i as usize / 1000 == task).collect();
            prop_assert!(mine.windows(2).all(|w| w[0] < w[1]), "task {} out of order: {:?}", task, mine);
        }

        for batch in &batches {
            prop_assert!(!batch.is_empty());
            prop_assert!(batch.len() <= case.max_items.min(case.capacity), "batch {:?} too long", batch);
            if let (Some(max_bytes), true) = (case.max_bytes, batch.len() > 1) {
                let bytes: usize = batch
                    .iter()
                    .map(|&i| usize::from(case.plans[i as usize / 1000][i as usize % 1000].1))
                    .sum();
                prop_assert!(bytes <= max_bytes, "batch {:?} weighs {} > {}", batch, bytes, max_bytes);
            }
        }
    }

    #[test]
    fn wait_is_bounded_when_the_load_fits(
        max_items in 1_usize..30,
        concurrency in 1_usize..4,
        delay_ms in 0_u64..10,
        cost_ms in 0_u64..10,
        pauses in prop::collection::vec(0_u64..6, 1..30),
    ) {
        // At most max_items items in all, so every batch can take whatever is queued.
        let pauses = &pauses[..pauses.len().min(max_items)];
        let (max_delay, cost) = (Duration::from_millis(delay_ms), Duration::from_millis(cost_ms));
        let (waits, elapsed_ok) = paused_runtime().block_on(async {
            let (handler, probe) = Recorder::open();
            let batcher = Batcher::builder()
                .max_items(max_items)
                .max_concurrency(concurrency)
                .max_delay(max_delay)
                .build(handler.cost(cost))
                .unwrap();
            let submitted = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for (k, &pause) in pauses.iter().enumerate() {
                let batcher = batcher.clone();
                let submitted = Arc::clone(&submitted);
                let id = u32::try_from(k).unwrap();
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(pause * k as u64 % 17)).await;
                    submitted.lock().unwrap().push((id, Instant::now()));
                    batcher.submit(id).await.unwrap()
                }));
            }
            for (k, task) in tasks.into_iter().enumerate() {
                assert_eq!(task.await.unwrap(), k as u64 * 2);
            }
            let calls = probe.calls();
            let submitted = submitted.lock().unwrap().clone();
            let waits: Vec<Duration> = submitted
                .iter()
                .map(|(id, at)| calls.iter().find(|c| c.items.contains(id)).unwrap().at - *at)
                .collect();
            (waits, submitted.len() == pauses.len())
        });
        prop_assert!(elapsed_ok);
        for wait in waits {
            prop_assert!(wait <= max_delay + cost, "waited {:?} > {:?} + {:?}", wait, max_delay, cost);
        }
    }
}
