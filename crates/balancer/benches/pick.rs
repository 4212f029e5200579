//! Pick latency of every strategy at 8 and 256 backends, on one thread and on two.
//!
//! Each pick is `pick` + drop of the guard (in-flight counted up and down by the strategies
//! that read it). Keyless picks
//! for round robin, smooth weighted, least connections and P2C; an 8-byte key for ketama
//! and Maglev (the key hash is included). Anchors in the same groups: pingora-ketama's
//! `Continuum::node` and a naive `BTreeMap` ring beside ketama, a `Mutex<usize>` round
//! robin beside round robin. On two threads each thread does `iters` picks and the figure
//! is wall time / `iters`: the latency of one pick while another thread picks too.
//! Exact least connections is also measured busy (`mltb_busy`): every endpoint already
//! has a request in flight, so no pick stops at an idle one; and busy with a load view age
//! of 0 (`mltb_busy_age0`), reading every thread's counts on every pick, to show what the
//! per-thread views save.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use parking_lot::Mutex;

use mltb_balancer::{
    Backend, Balancer, Ketama, LeastConnections, Maglev, PeakEwmaP2c, RoundRobin, SmoothWeighted, Strategy,
    key_hash,
};

const SIZES: [usize; 2] = [8, 256];

fn backends(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::new(format!("node-{i}"), addr(i).to_string()).with_weight(1 + (i % 4) as u32))
        .collect()
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 256) as u8, (i % 256) as u8], 80))
}

/// Runs `f(i)` for `iters` iterations on `threads` threads; returns wall time (on two
/// threads, the longer of the two threads' own times from a common start, so that a
/// timing thread descheduled at the start cannot shorten the measure).
fn timed<F: Fn(u64) + Sync>(threads: usize, iters: u64, f: F) -> Duration {
    if threads == 1 {
        let start = Instant::now();
        for i in 0..iters {
            f(i);
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        f(i.wrapping_mul(threads as u64) + t as u64);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn bench_strategy<S: Strategy>(c: &mut Criterion, name: &str, keyed: bool, make: impl Fn() -> S) {
    let mut group = c.benchmark_group(format!("pick/{name}"));
    for n in SIZES {
        let b = Balancer::new(make(), backends(n)).expect("valid backends");
        for threads in [1, 2] {
            group.bench_function(BenchmarkId::new(format!("mltb/{threads}t"), n), |bench| {
                bench.iter_custom(|iters| {
                    timed(threads, iters, |i| {
                        let pick = if keyed { b.pick_key(i.to_le_bytes()) } else { b.pick() };
                        black_box(pick.expect("a backend").id().len());
                    })
                })
            });
        }
        if name == "least_connections" {
            bench_busy(&mut group, "mltb_busy", n, make());
            bench_busy(
                &mut group,
                "mltb_busy_age0",
                n,
                LeastConnections::new().load_view_age(Duration::ZERO),
            );
        }
        if name == "round_robin" {
            let next = Mutex::new(0usize);
            let ids: Vec<String> = backends(n).iter().map(|b| b.id().to_owned()).collect();
            for threads in [1, 2] {
                group.bench_function(BenchmarkId::new(format!("mutex_usize/{threads}t"), n), |bench| {
                    bench.iter_custom(|iters| {
                        timed(threads, iters, |_| {
                            let i = {
                                let mut g = next.lock();
                                *g = (*g + 1) % ids.len();
                                *g
                            };
                            black_box(ids[i].len());
                        })
                    })
                });
            }
        }
        if name == "ketama" {
            let buckets: Vec<pingora_ketama::Bucket> = backends(n)
                .iter()
                .enumerate()
                .map(|(i, b)| pingora_ketama::Bucket::new(addr(i), b.weight()))
                .collect();
            let continuum = pingora_ketama::Continuum::new(&buckets);
            let mut ring = BTreeMap::new();
            for b in backends(n) {
                for j in 0..160 * b.weight() {
                    ring.insert(key_hash(format!("{}-{j}", b.id()).as_bytes()), b.id().to_owned());
                }
            }
            for threads in [1, 2] {
                group.bench_function(BenchmarkId::new(format!("pingora_ketama/{threads}t"), n), |bench| {
                    bench.iter_custom(|iters| {
                        timed(threads, iters, |i| {
                            black_box(continuum.node(&i.to_le_bytes()));
                        })
                    })
                });
                group.bench_function(BenchmarkId::new(format!("btreemap_ring/{threads}t"), n), |bench| {
                    bench.iter_custom(|iters| {
                        timed(threads, iters, |i| {
                            let h = key_hash(&i.to_le_bytes());
                            let id = ring.range(h..).next().or_else(|| ring.iter().next()).map(|(_, id)| id);
                            black_box(id.map(String::len));
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

/// Picks on a balancer where every endpoint already has one request in flight, so no pick
/// finds an idle endpoint to stop at.
fn bench_busy<S: Strategy>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    n: usize,
    strategy: S,
) {
    let busy = Balancer::new(strategy, backends(n)).expect("valid backends");
    let held: Vec<_> = (0..n).map(|_| busy.pick().expect("a backend")).collect();
    assert!(busy.endpoints().iter().all(|e| e.in_flight() == 1));
    for threads in [1, 2] {
        group.bench_function(BenchmarkId::new(format!("{label}/{threads}t"), n), |bench| {
            bench.iter_custom(|iters| {
                timed(threads, iters, |_| {
                    black_box(busy.pick().expect("a backend").id().len());
                })
            })
        });
    }
    drop(held);
}

fn picks(c: &mut Criterion) {
    bench_strategy(c, "round_robin", false, RoundRobin::new);
    bench_strategy(c, "smooth_weighted", false, SmoothWeighted::new);
    bench_strategy(c, "least_connections", false, LeastConnections::new);
    bench_strategy(c, "least_connections_sampled2", false, || LeastConnections::sampled(2));
    bench_strategy(c, "p2c_peak_ewma", false, PeakEwmaP2c::new);
    bench_strategy(c, "ketama", true, Ketama::new);
    bench_strategy(c, "maglev", true, Maglev::new);
}

criterion_group!(benches, picks);
criterion_main!(benches);
