//! Benchmarks of `mltb-batch` beside two fixed-delay batchers — the published
//! [`batched-fn`](https://crates.io/crates/batched-fn) crate and a minimal one written
//! here — in the same groups, so ratios come from one run:
//!
//! - `saturation`: 256 concurrent submitters, a handler costing a fixed 20 µs or 200 µs
//!   per batch (CPU off the runtime's threads, like a database round trip);
//!   throughput in items/s, and the mean batch size printed (target ≥ 0.9 × max_items).
//! - `low_load_latency`: one submitter, submit → result; criterion reports the mean,
//!   and the p50 is printed (target ≤ 100 µs).
//!
//! Every batcher runs the same handler ([`handle`]) with `max_items` = 100 and
//! `max_delay` = 1 ms. Ours and the local fixed-delay batcher call it on a blocking-pool
//! thread; batched-fn calls it on the thread it keeps for its handler. batched-fn counts
//! its delay in whole milliseconds and is configured per call site, so each cost has a
//! function of its own ([`batched_fn_20us`] and the like).
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

/// Counts handler calls and items, for the mean batch size.
#[derive(Debug)]
struct Tally {
    batches: AtomicU64,
    items: AtomicU64,
}

impl Tally {
    const fn new() -> Self {
        Self { batches: AtomicU64::new(0), items: AtomicU64::new(0) }
    }

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

/// The handler every batcher runs: a fixed cost per batch, like the round trip of one
/// multi-row write (CPU spent on a thread that is not a runtime worker, standing in for
/// the database server, so submitters keep the runtime as they would during real I/O),
/// then one output per item.
fn handle(items: Vec<u64>, cost: Duration, tally: &Tally) -> Vec<u64> {
    let start = Instant::now();
    while start.elapsed() < cost {
        std::hint::spin_loop();
    }
    tally.record(items.len());
    items.into_iter().map(|i| i * 2).collect()
}

/// [`handle`] on a blocking-pool thread (inline when it costs nothing).
async fn handle_off_runtime(items: Vec<u64>, cost: Duration, tally: Arc<Tally>) -> Vec<u64> {
    if cost.is_zero() {
        return handle(items, cost, &tally);
    }
    tokio::task::spawn_blocking(move || handle(items, cost, &tally))
        .await
        .expect("the handler does not panic")
}

/// The local anchor: a batcher that, once an item arrives, always waits `max_delay` (or
/// until `max_items`) before calling the handler.
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
                let (items, replies): (Vec<u64>, Vec<_>) = batch.into_iter().unzip();
                let outputs = handle_off_runtime(items, cost, Arc::clone(&tally)).await;
                for (output, reply) in outputs.into_iter().zip(replies) {
                    let _ = reply.send(output);
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
            async move { Ok::<_, std::convert::Infallible>(handle_off_runtime(items, cost, tally).await) }
        })
        .expect("valid settings")
}

/// Tallies of the batched-fn functions, by cost: 0, 20 and 200 µs.
static BATCHED_FN_TALLY: [Tally; 3] = [Tally::new(), Tally::new(), Tally::new()];

/// A batched-fn function whose handler is [`handle`] with a fixed cost. The macro keeps
/// one handler thread per call site, configured once; hence a function per cost.
macro_rules! batched_fn_with_cost {
    ($name:ident, $cost_us:expr, $tally:expr) => {
        async fn $name(item: u64) -> u64 {
            let call = batched_fn::batched_fn! {
                handler = |batch: Vec<u64>| -> Vec<u64> {
                    handle(batch, Duration::from_micros($cost_us), &BATCHED_FN_TALLY[$tally])
                };
                config = {
                    max_batch_size: MAX_ITEMS,
                    max_delay: MAX_DELAY.as_millis(),
                };
                context = {};
            };
            call(item).await.expect("batched-fn's handler thread is running")
        }
    };
}

batched_fn_with_cost!(batched_fn_0us, 0, 0);
batched_fn_with_cost!(batched_fn_20us, 20, 1);
batched_fn_with_cost!(batched_fn_200us, 200, 2);

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
    for (cost_us, batched_fn_tally) in [(20_u64, 1), (200, 2)] {
        let cost = Duration::from_micros(cost_us);
        let tally = Arc::new(Tally::new());
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

        // Criterion skips the closure when this row is filtered out or only listed.
        let mut ran = false;
        group.bench_function(format!("batched_fn/{cost_us}us"), |b| {
            ran = true;
            b.to_async(&rt).iter(|| {
                saturate(move |i| async move {
                    if cost_us == 20 { batched_fn_20us(i).await } else { batched_fn_200us(i).await }
                })
            });
        });
        let tally = &BATCHED_FN_TALLY[batched_fn_tally];
        assert!(!ran || tally.batches.load(Ordering::Relaxed) > 0, "batched-fn's handler ran");
        println!("saturation/batched_fn/{cost_us}us: mean batch size {:.1}", tally.mean());

        let fixed_tally = Arc::new(Tally::new());
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
    let tally = Arc::new(Tally::new());
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

    let batched_fn_samples = Arc::new(Mutex::new(Vec::new()));
    group.bench_function("batched_fn", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let samples = Arc::clone(&batched_fn_samples);
            async move { timed(iters, &samples, batched_fn_0us).await }
        });
    });

    let fixed_samples = Arc::new(Mutex::new(Vec::new()));
    let fixed_tally = Arc::new(Tally::new());
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

    let ours = p50(&smart_samples);
    let ratio = |theirs: Duration| theirs.as_secs_f64() / ours.as_secs_f64().max(f64::MIN_POSITIVE);
    let (batched_fn, fixed) = (p50(&batched_fn_samples), p50(&fixed_samples));
    println!(
        "low_load_latency: p50 mltb_batch {ours:?} (target <= 100us), batched_fn {batched_fn:?} ({:.1}x), fixed_delay {fixed:?} ({:.1}x)",
        ratio(batched_fn),
        ratio(fixed)
    );
    println!("low_load_latency/mltb_batch: mean batch size {:.2}", tally.mean());
    rt.block_on(batcher.shutdown());
}

criterion_group!(benches, saturation, low_load_latency);
criterion_main!(benches);
