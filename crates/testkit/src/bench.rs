//! Timing for criterion's `iter_custom`, shared by the crates' benches so that every
//! multi-thread figure follows one convention: **time per operation, per thread**.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Runs `op(thread, i)` for `i in 0..iters` on each of `threads` threads, started together
/// at a barrier, and returns the longest of the threads' own elapsed times.
///
/// Each thread does `iters` operations, so criterion's figure (time / `iters`) is the time
/// one operation takes as each thread sees it while the others run too: **per thread**.
/// Aggregate throughput is `threads / figure`. Each thread times itself from the barrier,
/// so a thread descheduled before it starts cannot shorten the measure. One thread runs
/// on the caller's thread with no barrier.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let counter = AtomicU64::new(0);
/// let took = mltb_testkit::bench::per_thread(2, 1_000, |_thread, _i| {
///     counter.fetch_add(1, Ordering::Relaxed);
/// });
/// assert_eq!(counter.load(Ordering::Relaxed), 2_000);
/// assert!(took > std::time::Duration::ZERO);
/// ```
pub fn per_thread<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    if threads <= 1 {
        let start = Instant::now();
        for i in 0..iters {
            op(0, i);
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (op, barrier) = (&op, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(t, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .max()
            .unwrap_or_default()
    })
}
