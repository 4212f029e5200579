//! Benchmarks of `mltb-batch` beside a naive fixed-delay batcher, in the same groups so
//! ratios come from one run:
//!
//! - `saturation`: 256 concurrent submitters, a handler costing a fixed 20 µs or 200 µs
//!   per batch (CPU on a blocking-pool thread, like a database round trip);
//!   throughput in items/s, and the mean batch size printed (target ≥ 0.9 × max_items).
//! - `low_load_latency`: one submitter, submit → result; criterion reports the mean,
//!   and the p50 is printed (target ≤ 100 µs).
//!
//! Run: `cargo bench -p mltb-batch --bench batch -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::print_stdout)] // a bench binary reports on stdout

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mltb_batch::Batcher;
use tokio::sync::{mpsc, oneshot};

const MAX_ITEMS: usize = 100;
const MAX_DELAY: Duration = Duration::from_millis(1);
const SUBMITTERS: usize = 256;
const PER_SUBMITTER: usize = 40;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// A fixed cost per batch, like the round trip of one multi-row write: CPU spent on
/// another thread (a blocking-pool thread standing in for the database server), while
/// the runtime's threads stay free for submitters, as they would during real I/O.
async fn round_trip(cost: Duration) {
    if cost.is_zero() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        while start.elapsed() < cost {
            std::hint::spin_loop();
        }
    })
    .await
    .expect("the spin does not panic");
}

/// Counts handler calls and items, for the mean batch size.
#[derive(Debug, Default)]
struct Tally {
    batches: AtomicU64,
    items: AtomicU64,
}

impl Tally {
    fn record(&self, n: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn mean(&self) -> f64 {
        let batches = self.batches.load(Ordering::Relaxed).max(1);
        self.items.load(Ordering::Relaxed) as f64 / batches as f64
    }

    fn reset(&self) {
        self.batches.store(0, Ordering::Relaxed);
        self.items.store(0, Ordering::Relaxed);
    }
}

/// The anchor: a batcher that, once an item arrives, always waits `max_delay` (or until
/// `max_items`) before calling the handler.
#[derive(Clone)]
struct FixedDelay {
    tx: mpsc::Sender<(u64, oneshot::Sender<u64>)>,
}

impl FixedDelay {
    fn new(max_items: usize, max_delay: Duration, cost: Duration, tally: Arc<Tally>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(u64, oneshot::Sender<u64>)>(1024);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + max_delay;
                while batch.len() < max_items {
                    tokio::select! {
                        biased;
                        next = rx.recv() => match next {
                            Some(next) => batch.push(next),
                            None => break,
                        },
                        () = tokio::time::sleep_until(deadline) => break,
                    }
                }
                round_trip(cost).await;
                tally.record(batch.len());
                for (item, reply) in batch {
                    let _ = reply.send(item * 2);
                }
            }
        });
        Self { tx }
    }

    async fn submit(&self, item: u64) -> u64 {
        let (reply, rx) = oneshot::channel();
        self.tx.send((item, reply)).await.expect("worker alive");
        rx.await.expect("worker replies")
    }
}

fn smart(cost: Duration, tally: Arc<Tally>) -> Batcher<u64, u64> {
    Batcher::builder()
        .max_items(MAX_ITEMS)
        .max_delay(MAX_DELAY)
        .build(move |items: Vec<u64>| {
            let tally = Arc::clone(&tally);
            async move {
                round_trip(cost).await;
                tally.record(items.len());
                Ok::<_, std::convert::Infallible>(items.into_iter().map(|i| i * 2).collect())
            }
        })
        .expect("valid settings")
}

/// Runs `SUBMITTERS` tasks, each submitting `PER_SUBMITTER` items one after another.
async fn saturate<F, Fut>(submit: F)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    let tasks: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let submit = submit.clone();
            tokio::spawn(async move {
                for k in 0..PER_SUBMITTER {
                    let item = (t * PER_SUBMITTER + k) as u64;
                    assert_eq!(submit(item).await, item * 2);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("submitter");
    }
}

fn saturation(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("saturation");
    group.throughput(Throughput::Elements((SUBMITTERS * PER_SUBMITTER) as u64));
    group.sample_size(20);

    // A cheap round trip (20 µs per batch) and a slower one (200 µs). With the cheap one
    // on two cores, submitters rather than the handler can be the bottleneck, and smart
    // batching then (rightly) sends smaller batches: it never waits when the handler is free.
    for cost_us in [20_u64, 200] {
        let cost = Duration::from_micros(cost_us);
        let tally = Arc::new(Tally::default());
        let batcher = rt.block_on(async { smart(cost, Arc::clone(&tally)) });
        group.bench_function(format!("mltb_batch/{cost_us}us"), |b| {
            b.to_async(&rt).iter(|| {
                let batcher = batcher.clone();
                saturate(move |i| {
                    let batcher = batcher.clone();
                    async move { batcher.submit(i).await.expect("handled") }
                })
            });
        });
        let stats = batcher.stats();
        println!(
            "saturation/mltb_batch/{cost_us}us: mean batch size {:.1} over {} batches (max_items {MAX_ITEMS}, target >= {:.0})",
            stats.mean_batch_size(),
            stats.batches,
            0.9 * MAX_ITEMS as f64
        );
        rt.block_on(batcher.shutdown());

        let fixed_tally = Arc::new(Tally::default());
        let fixed =
            rt.block_on(async { FixedDelay::new(MAX_ITEMS, MAX_DELAY, cost, Arc::clone(&fixed_tally)) });
        group.bench_function(format!("fixed_delay/{cost_us}us"), |b| {
            b.to_async(&rt).iter(|| {
                let fixed = fixed.clone();
                saturate(move |i| {
                    let fixed = fixed.clone();
                    async move { fixed.submit(i).await }
                })
            });
        });
        println!("saturation/fixed_delay/{cost_us}us: mean batch size {:.1}", fixed_tally.mean());
    }
    group.finish();
}

fn p50(samples: &Mutex<Vec<Duration>>) -> Duration {
    let mut samples = samples.lock().expect("not poisoned").clone();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Times `iters` sequential submits one by one, keeping each for the p50.
async fn timed<F, Fut>(iters: u64, samples: &Mutex<Vec<Duration>>, submit: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    let mut total = Duration::ZERO;
    let mut local = Vec::with_capacity(iters as usize);
    for i in 0..iters {
        let start = Instant::now();
        let out = submit(i).await;
        let took = start.elapsed();
        assert_eq!(out, i * 2);
        total += took;
        local.push(took);
    }
    samples.lock().expect("not poisoned").extend(local);
    total
}

fn low_load_latency(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("low_load_latency");
    group.sample_size(20);

    let smart_samples = Arc::new(Mutex::new(Vec::new()));
    let tally = Arc::new(Tally::default());
    let batcher = rt.block_on(async { smart(Duration::ZERO, Arc::clone(&tally)) });
    tally.reset();
    group.bench_function("mltb_batch", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let batcher = batcher.clone();
            let samples = Arc::clone(&smart_samples);
            async move {
                timed(iters, &samples, |i| {
                    let batcher = batcher.clone();
                    async move { batcher.submit(i).await.expect("handled") }
                })
                .await
            }
        });
    });

    let fixed_samples = Arc::new(Mutex::new(Vec::new()));
    let fixed_tally = Arc::new(Tally::default());
    let fixed = rt
        .block_on(async { FixedDelay::new(MAX_ITEMS, MAX_DELAY, Duration::ZERO, Arc::clone(&fixed_tally)) });
    group.bench_function("fixed_delay", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let fixed = fixed.clone();
            let samples = Arc::clone(&fixed_samples);
            async move {
                timed(iters, &samples, |i| {
                    let fixed = fixed.clone();
                    async move { fixed.submit(i).await }
                })
                .await
            }
        });
    });
    group.finish();

    let (ours, theirs) = (p50(&smart_samples), p50(&fixed_samples));
    println!(
        "low_load_latency: p50 mltb_batch {ours:?} (target <= 100us), fixed_delay {theirs:?}, ratio {:.1}x",
        theirs.as_secs_f64() / ours.as_secs_f64().max(f64::MIN_POSITIVE)
    );
    println!("low_load_latency/mltb_batch: mean batch size {:.2}", tally.mean());
    rt.block_on(batcher.shutdown());
}

criterion_group!(benches, saturation, low_load_latency);
criterion_main!(benches);
