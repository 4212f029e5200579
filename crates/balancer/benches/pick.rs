//! Pick latency of every strategy at 8 and 256 backends, on one thread and on two.
//!
//! Each pick is `pick` + drop of the guard (in-flight counted up and down by the strategies
//! that read it). Keyless picks
//! for round robin, smooth weighted, least connections and P2C; an 8-byte key for ketama
//! and Maglev (the key hash is included). Anchors in the same groups: pingora-ketama's
//! `Continuum::node` and a naive `BTreeMap` ring beside ketama, a `Mutex<usize>` round
//! robin beside round robin.
//!
//! Two-thread rows are **per thread** and labelled so (`2t_per_thread`): timed with
//! `mltb_testkit::bench::per_thread`, each thread does `iters` picks and the figure is
//! the time of one pick as each thread sees it while the other picks too (aggregate
//! throughput is two picks per figure).
//! Exact least connections is also measured busy (`mltb_busy`): every endpoint already
//! has a request in flight, so no pick stops at an idle one; and busy with a load view age
//! of 0 (`mltb_busy_age0`), reading every thread's counts on every pick, to show what the
//! per-thread views save.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mltb_testkit::bench::per_thread;
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

/// The row label for `threads` threads: multi-thread rows say they are per thread.
fn threads_label(threads: usize) -> String {
    if threads == 1 { "1t".to_owned() } else { format!("{threads}t_per_thread") }
}

/// A key per (thread, iteration), different on each thread.
fn key(threads: usize, thread: usize, i: u64) -> u64 {
    i.wrapping_mul(threads as u64) + thread as u64
}

fn bench_strategy<S: Strategy>(c: &mut Criterion, name: &str, keyed: bool, make: impl Fn() -> S) {
    let mut group = c.benchmark_group(format!("pick/{name}"));
    for n in SIZES {
        let b = Balancer::new(make(), backends(n)).expect("valid backends");
        // Preconditions: every backend is available, and a keyed pick is a hashed one
        // (the same key, the same backend).
        assert_eq!(b.stats().available, n);
        if keyed {
            let first = b.pick_key(7u64.to_le_bytes()).expect("a backend").id().to_owned();
            assert!((0..8).all(|_| b.pick_key(7u64.to_le_bytes()).expect("a backend").id() == first));
        }
        assert_eq!(
            b.tracks_in_flight(),
            matches!(name, "least_connections" | "least_connections_sampled2" | "p2c_peak_ewma")
        );
        for threads in [1, 2] {
            group.bench_function(BenchmarkId::new(format!("mltb/{}", threads_label(threads)), n), |bench| {
                bench.iter_custom(|iters| {
                    per_thread(threads, iters, |t, i| {
                        let pick =
                            if keyed { b.pick_key(key(threads, t, i).to_le_bytes()) } else { b.pick() };
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
                group.bench_function(
                    BenchmarkId::new(format!("mutex_usize/{}", threads_label(threads)), n),
                    |bench| {
                        bench.iter_custom(|iters| {
                            per_thread(threads, iters, |_, _| {
                                let i = {
                                    let mut g = next.lock();
                                    *g = (*g + 1) % ids.len();
                                    *g
                                };
                                black_box(ids[i].len());
                            })
                        })
                    },
                );
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
                group.bench_function(
                    BenchmarkId::new(format!("pingora_ketama/{}", threads_label(threads)), n),
                    |bench| {
                        bench.iter_custom(|iters| {
                            per_thread(threads, iters, |t, i| {
                                black_box(continuum.node(&key(threads, t, i).to_le_bytes()));
                            })
                        })
                    },
                );
                group.bench_function(
                    BenchmarkId::new(format!("btreemap_ring/{}", threads_label(threads)), n),
                    |bench| {
                        bench.iter_custom(|iters| {
                            per_thread(threads, iters, |t, i| {
                                let h = key_hash(&key(threads, t, i).to_le_bytes());
                                let id =
                                    ring.range(h..).next().or_else(|| ring.iter().next()).map(|(_, id)| id);
                                black_box(id.map(String::len));
                            })
                        })
                    },
                );
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
        group.bench_function(BenchmarkId::new(format!("{label}/{}", threads_label(threads)), n), |bench| {
            bench.iter_custom(|iters| {
                per_thread(threads, iters, |_, _| {
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
