//! Unit and model tests of the memory cache.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::FakeClock;
use crate::weigh::entry_overhead;

fn unit_cache(capacity: usize, shards: usize) -> MemoryCache<u32, u32> {
    MemoryCache::builder_with_weigher(|_, _| 1).max_bytes(capacity).shards(shards).build().unwrap()
}

#[test]
fn insert_get_remove_and_stats() {
    let c = unit_cache(10, 1);
    assert_eq!(c.get(&1), None);
    c.insert(1, 10).unwrap();
    c.insert(2, 20).unwrap();
    c.insert(1, 11).unwrap();
    assert_eq!(c.get(&1), Some(11));
    assert_eq!(c.remove(&2), Some(20));
    assert_eq!(c.remove(&2), None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.inserts), (1, 1, 3));
    assert_eq!(s.evictions, Evictions { size: 0, expired: 0, replaced: 1, removed: 1 });
    assert_eq!((s.entries, s.bytes, s.max_bytes), (1, 1, 10));
    assert!((s.hit_ratio() - 0.5).abs() < 1e-9);
}

#[test]
fn evicts_least_recently_used_within_the_byte_budget() {
    let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, v| *v as usize)
        .max_bytes(100)
        .shards(1)
        .build()
        .unwrap();
    c.insert(1, 40).unwrap();
    c.insert(2, 40).unwrap();
    assert!(c.get(&1).is_some()); // 2 is now the LRU
    c.insert(3, 30).unwrap();
    assert!(!c.contains_key(&2));
    assert!(c.contains_key(&1) && c.contains_key(&3));
    assert_eq!(c.weighted_size(), 70);
    assert_eq!(c.stats().evictions.size, 1);
    // One heavy entry pushes out as many as needed, never the budget.
    c.insert(4, 100).unwrap();
    assert_eq!((c.len(), c.weighted_size()), (1, 100));
}

#[test]
fn oversized_entries_are_refused_without_evicting() {
    let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, v| *v as usize)
        .max_bytes(100)
        .shards(2)
        .build()
        .unwrap();
    assert_eq!(c.max_entry_bytes(), 50);
    for k in 0..4 {
        c.insert(k, 10).unwrap();
    }
    let before = c.stats();
    let err = c.insert(99, 51).unwrap_err();
    assert!(err.is_oversized());
    assert!(err.to_string().contains("51 bytes"), "{err}");
    assert!(matches!(err.kind(), ErrorKind::Oversized { weight: 51, limit: 50, max_bytes: 100, shards: 2 }));
    assert_eq!(c.stats(), before);
    // Replacing a cached value with an oversized one drops the stale value.
    let err = c.insert(0, 1000).unwrap_err();
    assert!(err.is_oversized());
    assert_eq!(c.get(&0), None);
}

#[test]
fn default_weigher_counts_heap_and_bookkeeping() {
    let c: MemoryCache<String, Vec<u8>> = MemoryCache::builder().shards(1).build().unwrap();
    let key = String::from("abc");
    let value = vec![0u8; 1000];
    c.insert(key, value).unwrap();
    let overhead = entry_overhead::<String, Vec<u8>>();
    assert_eq!(c.weighted_size(), overhead + 3 + 1000);
    // node: String 24 + Vec 24 + weight 8 + deadline 8 + stamp 8 = 72 (the option's tag
    // in a niche); links 12; plain LRU's heap 4 + 16; slot: a u32 index and its control
    // byte at 7/8 load = 6.
    assert_eq!(overhead, 72 + 12 + 20 + 6);
    let node = size_of::<Option<super::arena::Node<String, Vec<u8>>>>();
    assert!(node <= 72, "the node ({node} bytes) fits what is charged");
    assert_eq!(size_of::<Option<super::arena::Node<u64, u64>>>(), 40);
}

#[test]
fn config_errors_name_the_setting() {
    let e = MemoryCache::<u32, u32>::builder().shards(0).build().unwrap_err();
    assert!(e.to_string().contains("shards"), "{e}");
    // Shards are allocated up front: a count past the cap is refused, not allocated.
    let e = MemoryCache::<u32, u32>::builder().max_bytes(usize::MAX).shards(1 << 40).build().unwrap_err();
    assert!(e.to_string().contains("shards") && e.to_string().contains(&MAX_SHARDS.to_string()), "{e}");
    assert!(MemoryCache::<u32, u32>::builder().shards(MAX_SHARDS).build().is_ok());
    let e = MemoryCache::<u32, u32>::builder().max_bytes(3).shards(4).build().unwrap_err();
    assert!(e.to_string().contains("max_bytes"), "{e}");
    // A sketch for more entries than the budget has units is refused, not allocated
    // (usize::MAX asked for 8 GiB a shard).
    let tiny = || {
        MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1).max_bytes(1_000).admission(Admission::TinyLfu)
    };
    let e = tiny().expected_entries(usize::MAX).build().unwrap_err();
    assert!(e.to_string().contains("expected_entries") && e.to_string().contains("1000"), "{e}");
    assert!(tiny().expected_entries(1_001).build().is_err());
    assert!(tiny().expected_entries(1_000).build().is_ok());
    // A window share outside 0 – 1, or given to an admission that has no fixed window.
    let fixed = || tiny().admission(Admission::TinyLfuFixedWindow);
    for bad in [f64::NAN, -0.5, 1.5, f64::INFINITY] {
        let e = fixed().window_share(bad).build().unwrap_err();
        assert!(
            e.to_string().contains("window_share") && e.to_string().contains("from 0 to 1"),
            "{bad}: {e}"
        );
    }
    for admission in [Admission::Lru, Admission::TinyLfu] {
        let e = tiny().admission(admission).window_share(0.5).build().unwrap_err();
        assert!(
            e.to_string().contains("window_share") && e.to_string().contains("TinyLfuFixedWindow"),
            "{e}"
        );
    }
    assert!(fixed().window_share(0.0).build().is_ok() && fixed().window_share(1.0).build().is_ok());
    let c = MemoryCache::<u32, u32>::new();
    assert_eq!(c.max_bytes(), DEFAULT_MAX_BYTES);
    assert!(c.shard_count() >= 1);
}

#[test]
fn ttl_per_entry_and_default_under_a_fake_clock() {
    let clock = FakeClock::new();
    let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1)
        .max_bytes(10)
        .shards(1)
        .default_ttl(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1, 1).unwrap(); // default 10 s
    c.insert_with_ttl(2, 2, Duration::from_secs(5)).unwrap();
    clock.advance(Duration::from_secs(4));
    assert_eq!((c.get(&1), c.get(&2)), (Some(1), Some(2)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(c.get(&2), None, "expires at exactly its deadline");
    assert_eq!(c.get(&1), Some(1));
    clock.advance(Duration::from_secs(5));
    assert!(!c.contains_key(&1));
    assert_eq!(c.len(), 1, "not yet noticed");
    c.purge_expired();
    let s = c.stats();
    assert_eq!((s.entries, s.bytes), (0, 0));
    assert_eq!(s.evictions.expired, 2);
    assert_eq!((s.hits, s.misses), (3, 1));
}

/// A fake clock that counts its readings.
#[derive(Debug, Clone, Default)]
struct CountingClock {
    time: FakeClock,
    reads: Arc<std::sync::atomic::AtomicU64>,
}

impl crate::Clock for CountingClock {
    fn now_nanos(&self) -> u64 {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.time.now_nanos()
    }
}

#[test]
fn a_get_reads_the_clock_only_for_a_deadline_and_at_most_once() {
    for admission in [Admission::Lru, Admission::TinyLfu] {
        let clock = CountingClock::default();
        let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1)
            .max_bytes(10)
            .shards(1)
            .admission(admission)
            .clock(clock.clone())
            .build()
            .unwrap();
        let reads = || clock.reads.load(std::sync::atomic::Ordering::Relaxed);
        c.insert(1, 1).unwrap();
        c.insert_with_ttl(2, 2, Duration::from_secs(5)).unwrap();
        let before = reads();
        assert_eq!((c.get(&1), c.get(&3)), (Some(1), None));
        assert_eq!(reads(), before, "{admission:?}: no deadline, no reading");
        assert_eq!(c.get(&2), Some(2));
        assert_eq!(reads(), before + 1, "{admission:?}: a live entry with a deadline");
        clock.time.advance(Duration::from_secs(5));
        // Found expired under the shared lock, then dropped under the exclusive one.
        assert_eq!(c.get(&2), None);
        assert_eq!(reads(), before + 2, "{admission:?}: an expired entry, read once");
        assert_eq!(c.stats().evictions.expired, 1, "{admission:?}");
    }
}

#[test]
fn the_stats_window_holds_the_recent_reads_on_the_caches_clock() {
    let clock = FakeClock::new();
    let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1)
        .max_bytes(100)
        .shards(4)
        .stats_window(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(c.stats().window.hit_ratio(), None, "no read, no ratio");
    for k in 0..10 {
        c.insert(k, k).unwrap();
    }
    for i in 0..90 {
        assert!(c.get(&(i % 10)).is_some());
    }
    for k in 100..110 {
        assert!(c.get(&k).is_none());
    }
    let w = c.stats().window;
    assert_eq!((w.hits, w.misses, w.window), (90, 10, Duration::from_secs(60)));
    assert_eq!(w.hit_ratio(), Some(0.9));

    clock.advance(Duration::from_secs(30));
    for k in 200..230 {
        assert!(c.get(&k).is_none());
    }
    assert_eq!((c.stats().window.hits, c.stats().window.misses), (90, 40));
    // The window moves in steps of a tenth: the first reads stay in it until 66 s.
    clock.advance(Duration::from_secs(35));
    assert_eq!(c.stats().window.reads(), 130);
    clock.advance(Duration::from_secs(1));
    let s = c.stats();
    assert_eq!((s.window.hits, s.window.misses), (0, 30), "the first minute's reads left the window");
    assert!(s.window.hit_ratio().is_some_and(|r| r < 0.7), "what an alert under 70 % sees");
    assert_eq!((s.hits, s.misses), (90, 40), "the totals keep every read");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(c.stats().window.hit_ratio(), None, "an idle hour: no reads in the window");

    let e = MemoryCache::<u32, u32>::builder().stats_window(Duration::ZERO).build().unwrap_err();
    assert!(e.is_config() && e.to_string().contains("stats_window = 0ns"), "{e}");
    // Without a window set, no window is counted.
    let off = unit_cache(10, 1);
    off.get(&1);
    let w = off.stats().window;
    assert_eq!((w.reads(), w.window, w.hit_ratio()), (0, Duration::ZERO, None));
}

#[test]
fn expired_victims_are_counted_as_expired() {
    let clock = FakeClock::new();
    let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1)
        .max_bytes(1)
        .shards(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert_with_ttl(1, 1, Duration::from_secs(1)).unwrap();
    clock.advance(Duration::from_secs(2));
    c.insert(2, 2).unwrap();
    assert_eq!(c.stats().evictions, Evictions { expired: 1, ..Evictions::default() });
}

#[test]
fn clear_empties_every_shard() {
    let c = unit_cache(100, 4);
    for k in 0..50 {
        c.insert(k, k).unwrap();
    }
    // The hasher is seeded at random, so a shard (a quarter of the budget) may have had
    // to evict for size; whatever was still held is what clear removes.
    let held = c.len() as u64;
    assert!(held > 0);
    c.clear();
    assert!(c.is_empty());
    let evictions = c.stats().evictions;
    assert_eq!(evictions.removed, held);
    assert_eq!(evictions.removed + evictions.size, 50);
}

#[test]
fn tinylfu_keeps_a_hot_set_through_a_scan() {
    let lru = unit_cache(100, 1);
    let tiny = MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1)
        .max_bytes(100)
        .shards(1)
        .admission(Admission::TinyLfu)
        .build()
        .unwrap();
    for c in [&lru, &tiny] {
        for _ in 0..5 {
            for k in 0..50 {
                if c.get(&k).is_none() {
                    c.insert(k, k).unwrap();
                }
            }
        }
        for k in 1000..2000 {
            c.insert(k, k).unwrap(); // a one-off scan
        }
    }
    let survivors = |c: &MemoryCache<u32, u32>| (0..50).filter(|k| c.contains_key(k)).count();
    assert_eq!(survivors(&lru), 0);
    assert!(survivors(&tiny) >= 45, "{}", survivors(&tiny));
    assert!(tiny.weighted_size() <= 100);
}

/// A cache of 100 unit entries in one shard, W-TinyLFU with the window fixed at `share`.
#[test]
fn the_shards_window_simulations_share_one_sample_size() {
    // Every sampled request is replayed in each simulation, so a shard's simulations
    // cost in proportion to how densely they sample; each of 8 shards tracks an eighth
    // of what one shard alone would, so that the cache samples as sparsely as one shard
    // (1 key in 2^shift), not eight times as densely.
    let tracked_after = |shards: usize| -> Vec<(usize, u32)> {
        let cache = MemoryCache::builder_with_weigher(|_: &u64, _: &u64| 1)
            .max_bytes(80_000)
            .shards(shards)
            .admission(Admission::TinyLfu)
            .build()
            .unwrap();
        for k in 0..40_000_u64 {
            cache.insert(k, k).unwrap();
            assert_eq!(cache.get(&k), Some(k));
        }
        (0..shards).map(|i| cache.tiny_sims_tracked(i).unwrap()).collect()
    };
    let [(held, shift)] = tracked_after(1)[..] else { unreachable!() };
    assert!(held <= 512 && shift >= 5, "one shard: {held} tracked, 1 key in 2^{shift}");
    for (i, (held, s)) in tracked_after(8).into_iter().enumerate() {
        assert!(held <= 64, "shard {i} of 8 tracks {held}, more than its 64");
        assert!(s + 1 >= shift, "shard {i} of 8 samples 1 key in 2^{s}, one shard 1 in 2^{shift}");
    }
}

fn fixed_window_cache(share: f64) -> MemoryCache<u32, u32> {
    MemoryCache::builder_with_weigher(|_, _| 1)
        .max_bytes(100)
        .shards(1)
        .admission(Admission::TinyLfuFixedWindow)
        .window_share(share)
        .build()
        .unwrap()
}

#[test]
fn a_fixed_window_share_of_one_is_plain_lru_and_of_zero_filters_every_newcomer() {
    // Skewed reads, each miss inserted: the whole-window cache hits exactly as LRU,
    // read for read, and ends holding the same keys.
    let lru = unit_cache(100, 1);
    let whole = fixed_window_cache(1.0);
    let mut x = 99_u64;
    for i in 0..20_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let key = (((x >> 33) % 400) * ((x >> 13) % 400) / 400) as u32;
        let (a, b) = (lru.get(&key), whole.get(&key));
        assert_eq!(a, b, "read {i} of key {key}");
        if a.is_none() {
            lru.insert(key, key).unwrap();
            whole.insert(key, key).unwrap();
        }
    }
    assert_eq!(lru.stats().hits, whole.stats().hits);
    assert!((0..400).all(|k| lru.contains_key(&k) == whole.contains_key(&k)));
    // A hot set read between one-off scans: with no window, no scan key gets past the
    // filter; with the whole budget as window, each scan flushes the hot keys.
    let none = fixed_window_cache(0.0);
    for c in [&none, &whole] {
        for round in 0..20_u32 {
            for k in 0..50 {
                if c.get(&k).is_none() {
                    c.insert(k, k).unwrap();
                }
            }
            for k in 0..100 {
                let cold = 1_000 + round * 100 + k;
                if c.get(&cold).is_none() {
                    c.insert(cold, cold).unwrap();
                }
            }
        }
    }
    let hot = |c: &MemoryCache<u32, u32>| (0..50).filter(|k| c.contains_key(k)).count();
    assert_eq!(hot(&none), 50, "no window: the hot set stays");
    assert_eq!(hot(&whole), 0, "the whole budget as window: the last scan flushed it");
}

#[derive(Debug, Clone)]
enum Op {
    Insert { key: u8, weight: u8, ttl: Option<u8> },
    Get(u8),
    Remove(u8),
    Advance(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..32u8, 1..40u8, proptest::option::of(1..10u8))
            .prop_map(|(key, weight, ttl)| Op::Insert { key, weight, ttl }),
        4 => (0..32u8).prop_map(Op::Get),
        1 => (0..32u8).prop_map(Op::Remove),
        1 => (1..5u8).prop_map(Op::Advance),
    ]
}

/// The reference: a list from least to most recently used of (key, weight, deadline).
#[derive(Debug, Default)]
struct Model {
    list: VecDeque<(u8, usize, Option<u64>)>,
    now: u64,
    budget: usize,
}

impl Model {
    fn pos(&self, key: u8) -> Option<usize> {
        self.list.iter().position(|e| e.0 == key)
    }
    fn used(&self) -> usize {
        self.list.iter().map(|e| e.1).sum()
    }
    fn get(&mut self, key: u8) -> Option<usize> {
        let i = self.pos(key)?;
        let e = self.list.remove(i)?;
        if e.2.is_some_and(|d| self.now >= d) {
            return None;
        }
        self.list.push_back(e);
        Some(e.1)
    }
    fn insert(&mut self, key: u8, weight: usize, ttl: Option<u64>) {
        if let Some(i) = self.pos(key) {
            self.list.remove(i);
        }
        if weight > self.budget {
            return;
        }
        while self.used() + weight > self.budget {
            self.list.pop_front();
        }
        self.list.push_back((key, weight, ttl.map(|t| self.now + t)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One shard: the cache matches the reference LRU exactly (values, order, bytes), and
    /// the budget holds after every operation, TTLs included.
    #[test]
    fn single_shard_matches_reference_lru(ops in proptest::collection::vec(op(), 1..200), budget in 1..120usize) {
        let clock = FakeClock::new();
        let c = MemoryCache::<u8, u8>::builder_with_weigher(|_, w| *w as usize)
            .max_bytes(budget)
            .shards(1)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut m = Model { budget, ..Model::default() };
        for op in ops {
            match op {
                Op::Insert { key, weight, ttl } => {
                    let r = match ttl {
                        Some(t) => c.insert_with_ttl(key, weight, Duration::from_secs(u64::from(t))),
                        None => c.insert(key, weight),
                    };
                    prop_assert_eq!(r.is_err(), usize::from(weight) > budget);
                    m.insert(key, usize::from(weight), ttl.map(u64::from));
                }
                Op::Get(k) => prop_assert_eq!(c.get(&k).map(usize::from), m.get(k)),
                Op::Remove(k) => {
                    let had = m.pos(k).map(|i| m.list.remove(i));
                    prop_assert_eq!(c.remove(&k).is_some(), had.is_some());
                }
                Op::Advance(s) => {
                    clock.advance(Duration::from_secs(u64::from(s)));
                    m.now += u64::from(s);
                }
            }
            prop_assert!(c.weighted_size() <= budget);
            prop_assert_eq!(c.weighted_size(), m.used());
            let order: Vec<u8> = m.list.iter().map(|e| e.0).collect();
            prop_assert_eq!(c.lru_order(0), order);
        }
    }

    /// Any shard count and either policy: the budget holds after every operation and a
    /// read returns the last value written under that key, if anything.
    #[test]
    fn budget_holds_for_every_policy(
        ops in proptest::collection::vec(op(), 1..300),
        budget in 8..400usize,
        shards in 1..5usize,
        tiny in any::<bool>(),
    ) {
        let clock = FakeClock::new();
        let c = MemoryCache::<u8, (u8, u32)>::builder_with_weigher(|_, v| usize::from(v.0))
            .max_bytes(budget)
            .shards(shards)
            .clock(clock.clone())
            .admission(if tiny { Admission::TinyLfu } else { Admission::Lru })
            .build()
            .unwrap();
        let mut last = std::collections::HashMap::new();
        for (seq, op) in (0u32..).zip(ops) {
            match op {
                Op::Insert { key, weight, .. } => {
                    if c.insert(key, (weight, seq)).is_ok() {
                        last.insert(key, seq);
                    } else {
                        last.remove(&key);
                        prop_assert!(usize::from(weight) > c.max_entry_bytes());
                    }
                }
                Op::Get(k) => {
                    if let Some((_, s)) = c.get(&k) {
                        prop_assert_eq!(Some(&s), last.get(&k));
                    }
                }
                Op::Remove(k) => {
                    c.remove(&k);
                    last.remove(&k);
                }
                Op::Advance(s) => clock.advance(Duration::from_secs(u64::from(s))),
            }
            let s = c.stats();
            prop_assert!(s.bytes <= budget, "{} > {}", s.bytes, budget);
            prop_assert_eq!(s.bytes, c.weighted_size());
        }
    }
}

/// A key that counts how often it is hashed.
#[derive(Clone, PartialEq, Eq)]
struct Counted(u64);

thread_local! {
    static HASHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl std::hash::Hash for Counted {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        HASHED.with(|h| h.set(h.get() + 1));
        self.0.hash(state);
    }
}

#[test]
fn a_hit_hashes_its_key_once_for_the_shard_and_the_table() {
    for (admission, want) in [(Admission::Lru, 1), (Admission::TinyLfu, 2)] {
        let c = MemoryCache::<Counted, u32>::builder_with_weigher(|_, _| 1)
            .max_bytes(1000)
            .shards(8)
            .admission(admission)
            .build()
            .unwrap();
        for k in 0..100 {
            c.insert(Counted(k), 1).unwrap();
        }
        let before = HASHED.with(std::cell::Cell::get);
        for k in 0..100 {
            assert_eq!(c.get(&Counted(k)), Some(1));
        }
        // The reads still in the buffers are replayed (W-TinyLFU hashes for its sketch
        // then).
        assert_eq!(c.stats().hits, 100);
        let hashed = HASHED.with(std::cell::Cell::get) - before;
        // One hash for shard and table; W-TinyLFU's sketch has its own fixed-key hash.
        assert_eq!(hashed, want * 100, "{admission:?}: 100 hits hashed {hashed} times");
    }
}

#[test]
fn a_read_writes_only_the_first_cache_line_of_its_shard() {
    // Under the shared lock a read writes the lock word and the read line, and both sit
    // in the shard's first 64 bytes: of the shard, a read moves one line between cores,
    // as taking a read lock alone does. (Plain LRU's read writes its entry's node too.)
    for admission in [Admission::Lru, Admission::TinyLfu] {
        let c = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
            .max_bytes(100)
            .shards(2)
            .admission(admission)
            .build()
            .unwrap();
        let padded = &c.inner.shards[0];
        let base = std::ptr::from_ref(padded) as usize;
        let shard = padded.0.read();
        let data = std::ptr::from_ref(&*shard) as usize - base;
        assert_eq!(data, size_of::<usize>(), "{admission:?}: the lock word comes first");
        let reads = std::ptr::from_ref(&shard.reads) as usize - base;
        let written = reads + reads::ReadLine::WRITTEN_BY_READS;
        assert!(written <= 64, "{admission:?}: a read writes up to byte {written}");
        // What a read only reads (the store's table first) is on the next line: other
        // cores' reads, which write the first, do not take it from this core's cache.
        let store = std::ptr::from_ref(&shard.store) as usize - base;
        assert!(store >= 64, "{admission:?}: the store starts at byte {store}");
    }
}

#[test]
fn reads_under_the_shared_lock_decide_what_a_write_evicts() {
    // Hits under the shared lock stamp their entries without moving them; the insert
    // that evicts goes by the stamps, so it evicts what exact LRU evicts.
    let c = unit_cache(3, 1);
    for k in 0..3 {
        c.insert(k, k).unwrap();
    }
    assert_eq!(c.get(&0), Some(0));
    assert_eq!(c.get(&1), Some(1));
    c.insert(3, 3).unwrap();
    assert_eq!(c.lru_order(0), vec![0, 1, 3], "2 was the least recent");
    // Many reads, then an eviction: still exact.
    for _ in 0..10 {
        for k in [3, 1, 0] {
            assert!(c.get(&k).is_some());
        }
    }
    c.insert(4, 4).unwrap();
    assert_eq!(c.lru_order(0), vec![1, 0, 4]);
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (32, 0));
}

#[test]
fn concurrent_reads_lose_no_count_and_keep_the_budget() {
    for admission in [Admission::Lru, Admission::TinyLfu] {
        let c = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
            .max_bytes(64)
            .shards(2)
            .admission(admission)
            .build()
            .unwrap();
        for k in 0..32 {
            c.insert(k, k).unwrap();
        }
        let threads: u64 = 4;
        let per_thread: u64 = 20_000;
        std::thread::scope(|s| {
            for t in 0..threads {
                let c = &c;
                s.spawn(move || {
                    for i in 0..per_thread {
                        let k = (i * 7 + t) % 48;
                        if c.get(&k).is_none() && i % 16 == 0 {
                            c.insert(k, k).unwrap();
                        }
                    }
                });
            }
        });
        let s = c.stats();
        assert_eq!(s.hits + s.misses, threads * per_thread, "{admission:?}: every read counted");
        assert!(s.bytes <= 64 && s.bytes == c.weighted_size(), "{admission:?}: {} bytes", s.bytes);
        for k in 0..48 {
            if let Some(v) = c.get(&k) {
                assert_eq!(v, k);
            }
        }
    }
}

/// A one-shard W-TinyLFU cache of 100 units, with keys 0 – 49 inserted (the window holds
/// the newest; the others wait in probation).
fn tiny_cache_of_50() -> MemoryCache<u64, u64> {
    let c = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
        .max_bytes(100)
        .shards(1)
        .admission(Admission::TinyLfu)
        .build()
        .unwrap();
    for k in 0..50 {
        c.insert(k, k).unwrap();
    }
    c
}

#[test]
fn a_tinylfu_read_does_not_wait_for_another_readers_replay() {
    let c = tiny_cache_of_50();
    // The window holds the newest key; the others wait in probation.
    assert!((0..20).all(|k| c.tiny_segment(&k) == Some(1)));
    // Another reader holds the policy (and the shard, shared): reads do not wait for
    // it; the first 16 are left in the ring, the rest dropped.
    c.with_policy_held(0, || {
        for k in 0..20 {
            assert_eq!(c.get(&k), Some(k));
        }
        // A miss does not wait either (its effect on the policy is dropped).
        assert_eq!(c.get(&1_000), None);
    });
    assert!((0..20).all(|k| c.tiny_segment_shared(&k) == Some(1)), "nothing replayed yet");
    // Every read counted; the next exclusive holder replays the ring: a probation hit
    // moves to protected.
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (20, 1));
    assert_eq!(s.reads_dropped, 5, "four hits past the ring's 16, and the miss");
    let promoted: Vec<u64> = (0..20).filter(|k| c.tiny_segment(k) == Some(2)).collect();
    assert_eq!(promoted, (0..16).collect::<Vec<_>>());
    // With no one holding the policy, the reader that fills the ring replays it, under
    // the shared lock.
    for k in 20..35 {
        assert_eq!(c.get(&k), Some(k));
    }
    assert!((20..35).all(|k| c.tiny_segment_shared(&k) == Some(1)), "15 reads wait in the ring");
    assert_eq!(c.get(&35), Some(35));
    assert!((20..36).all(|k| c.tiny_segment_shared(&k) == Some(2)), "the 16th replayed them all");
    // A miss with no one holding the policy replays the hits waiting before it.
    assert_eq!(c.get(&36), Some(36));
    assert_eq!(c.get(&1_001), None);
    assert_eq!(c.tiny_segment_shared(&36), Some(2), "replayed by the miss after it");
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.reads_dropped), (37, 2, 5), "none dropped since");
}

#[test]
fn a_tinylfu_batch_owner_leaves_its_hits_in_a_ring_of_its_own() {
    let c = tiny_cache_of_50();
    assert!((0..40).all(|k| c.tiny_segment(&k) == Some(1)), "all in probation");
    c.with_policy_held(0, || {
        // This thread owns the batch: its ring takes 16 hits, drops the rest.
        for k in 0..20 {
            assert_eq!(c.get(&k), Some(k));
        }
        // Another thread's hits go to the shared ring, which has room: none dropped.
        std::thread::scope(|s| {
            s.spawn(|| (20..30).for_each(|k| assert_eq!(c.get(&k), Some(k))));
        });
    });
    let s = c.stats();
    assert_eq!((s.hits, s.reads_dropped), (30, 4), "only the owner's four past its ring's 16");
    let promoted: Vec<u64> = (0..40).filter(|k| c.tiny_segment(k) == Some(2)).collect();
    assert_eq!(promoted, (0..16).chain(20..30).collect::<Vec<_>>(), "both rings replayed");
}

#[test]
fn hits_from_several_threads_give_their_entries_a_second_chance() {
    // One shard, three entries, least recent first: 0, 1, 2.
    let c = unit_cache(3, 1);
    for k in 0..3 {
        c.insert(k, k).unwrap();
    }
    // Two threads' reads in one batch: 0 by the thread that claims the batch (stamped),
    // then 1 by another (the batch is shared now: 1 is only marked seen).
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(c.get(&0), Some(0)));
    });
    assert_eq!(c.get(&1), Some(1));
    c.insert(3, 3).unwrap();
    // 2, not read, is evicted; 1, seen, was given the newest stamp then.
    assert_eq!(c.lru_order(0), vec![0, 1, 3]);
    assert_eq!(c.stats().hits, 2, "both reads counted");
    // After a batch seen shared, the next batches start shared, for a number of writes:
    // a lone thread's read only marks its entry, and its stamp stays.
    assert_eq!(c.get(&0), Some(0));
    assert_eq!(c.lru_order(0), vec![0, 1, 3], "0 marked, not stamped");
    // After that many writes, a lone thread's read is stamped again.
    for k in 0..u32::from(reads::STICKY_WRITES) {
        c.insert(100 + k, k).unwrap();
    }
    let order = c.lru_order(0);
    assert_eq!(c.get(&order[0]), Some(order[0] - 100));
    assert_eq!(c.lru_order(0), vec![order[1], order[2], order[0]], "the least recent read last");
}

#[test]
fn concurrent_reads_writes_and_removals_keep_lrus_list_and_heap_whole() {
    // Four threads on one shard and on three: reads (stamped or seen), inserts and
    // updates of varying weight, removals and TTLs, the clock moving. After each round,
    // every entry is in the list or the heap once and both weigh what is counted
    // (`lru_order` checks), and the budget holds.
    for shards in [1, 3] {
        let clock = FakeClock::new();
        let c = MemoryCache::<u32, u32>::builder_with_weigher(|_, w| 1 + (*w as usize % 4))
            .max_bytes(90)
            .shards(shards)
            .clock(clock.clone())
            .build()
            .unwrap();
        for round in 0..20_u32 {
            std::thread::scope(|s| {
                for t in 0..4_u32 {
                    let c = &c;
                    s.spawn(move || {
                        let mut x = u64::from(round * 4 + t + 1);
                        for _ in 0..2_000 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let k = (x % 64) as u32;
                            match x >> 60 {
                                0..=9 => {
                                    if let Some(v) = c.get(&k) {
                                        assert_eq!(v % 64, k, "a value read back is one written for its key");
                                    }
                                }
                                10..=12 => c.insert(k, k + 64 * (x >> 40 & 3) as u32).unwrap(),
                                13 => c.insert_with_ttl(k, k, Duration::from_secs(x >> 50 & 3)).unwrap(),
                                _ => {
                                    c.remove(&k);
                                }
                            }
                        }
                    });
                }
            });
            clock.advance(Duration::from_secs(1));
            for shard in 0..shards {
                c.lru_order(shard);
            }
            assert!(c.weighted_size() <= 90, "{} bytes", c.weighted_size());
        }
    }
}

#[test]
fn entries_read_before_they_reach_the_end_are_evicted_by_their_last_read() {
    // 0, 1 and 2 read after they were written, in another order than written; 0 read
    // again once it is in the heap: each eviction takes the least recent by last use.
    let c = unit_cache(4, 1);
    for k in 0..4 {
        c.insert(k, k).unwrap();
    }
    for k in [1, 0, 2] {
        assert_eq!(c.get(&k), Some(k));
    }
    c.insert(4, 4).unwrap();
    assert_eq!(c.lru_order(0), vec![1, 0, 2, 4], "3 was the least recent");
    assert_eq!(c.get(&1), Some(1));
    c.insert(5, 5).unwrap();
    assert_eq!(c.lru_order(0), vec![2, 4, 1, 5], "0: its read came before 2's and 1's second");
    c.insert(6, 6).unwrap();
    c.insert(7, 7).unwrap();
    assert_eq!(c.lru_order(0), vec![1, 5, 6, 7]);
    // An update makes its entry the most recent: 1, in the heap, goes back to the list.
    assert_eq!(c.get(&5), Some(5));
    c.insert(1, 10).unwrap();
    c.insert(8, 8).unwrap();
    assert_eq!(c.lru_order(0), vec![7, 5, 1, 8]);
}

/// Hits of a W-TinyLFU cache of 64 entries with sketch seed `seed` (`None`: the default)
/// on a fixed skewed workload that overflows it.
fn tiny_hits(seed: Option<u64>) -> u64 {
    let mut b = MemoryCache::<u32, u32>::builder_with_weigher(|_, _| 1)
        .max_bytes(64)
        .shards(1)
        .admission(Admission::TinyLfu)
        .expected_entries(64);
    if let Some(seed) = seed {
        b = b.sketch_seed(seed);
    }
    let c = b.build().unwrap();
    let mut x = 12_345_u64;
    for _ in 0..20_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        // Skewed: the product of two uniform draws favours small keys.
        let key = (((x >> 33) % 512) * ((x >> 13) % 512) / 512) as u32;
        if c.get(&key).is_none() {
            c.insert(key, key).unwrap();
        }
    }
    c.stats().hits
}

#[test]
fn the_sketch_seed_fixes_a_replay_and_decides_which_keys_collide() {
    let default = tiny_hits(None);
    assert_eq!(default, tiny_hits(None), "a replay with the same seed gives the same figures");
    let seeded: Vec<u64> = [1_u64, 2, 3, 0xdead_beef].iter().map(|&s| tiny_hits(Some(s))).collect();
    assert_eq!(seeded, [1_u64, 2, 3, 0xdead_beef].iter().map(|&s| tiny_hits(Some(s))).collect::<Vec<_>>());
    assert!(
        seeded.iter().any(|&h| h != default),
        "the seed is used: some seed changes the hits ({default} with the default, {seeded:?})"
    );
}
