use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::FakeClock;

fn quota(rate: u32, period_ms: u64, burst: u32) -> Quota {
    Quota::new(NonZeroU32::new(rate).unwrap(), Duration::from_millis(period_ms))
        .unwrap()
        .allow_burst(NonZeroU32::new(burst).unwrap())
}

fn limiter(q: Quota, max_keys: usize, shards: usize, clock: &FakeClock) -> KeyedLimiter<u32, FakeClock> {
    KeyedLimiter::builder(q).max_keys(max_keys).shards(shards).clock(clock.clone()).build().unwrap()
}

const UNIVERSE: u32 = 12;

proptest! {
    /// Against an unbounded reference: identical decisions except `KeysExhausted`, which
    /// happens only when every tracked key is still limited; `len` never exceeds the cap;
    /// only idle keys disappear.
    #[test]
    fn bounded_table_matches_unbounded_reference(
        rate in 1u32..5,
        period_ms in 1u64..2000,
        burst in 1u32..4,
        max_keys in 1usize..6,
        shards in 1usize..5,
        ops in proptest::collection::vec((0u32..UNIVERSE, 0u64..1500, 1u32..4), 1..150),
    ) {
        let q = quota(rate, period_ms, burst);
        let clock = FakeClock::new();
        let limiter = limiter(q, max_keys, shards, &clock);
        let gcra = Gcra::new(&q);
        let reference: HashMap<u32, Bucket> = (0..UNIVERSE).map(|k| (k, Bucket::default())).collect();
        for (key, gap_ms, n) in ops {
            clock.advance(Duration::from_millis(gap_ms));
            let now = clock.now_nanos();
            let before: Vec<u32> = (0..UNIVERSE).filter(|k| limiter.contains_key(k)).collect();
            match limiter.check_n(&key, n) {
                Err(Denied::KeysExhausted { capacity, retry_after }) => {
                    prop_assert_eq!(capacity, max_keys);
                    prop_assert_eq!(before.len(), max_keys);
                    prop_assert!(!before.contains(&key));
                    let soonest = before.iter().map(|k| reference[k].tat()).min().unwrap();
                    prop_assert!(soonest > now, "refused a new key while key with TAT {} was idle at {}", soonest, now);
                    prop_assert!(retry_after > Duration::ZERO);
                    prop_assert!(retry_after <= Duration::from_nanos(soonest - now));
                }
                decision => {
                    let expected = gcra.check_n(&reference[&key], now, n);
                    prop_assert_eq!(decision, expected);
                }
            }
            let after: Vec<u32> = (0..UNIVERSE).filter(|k| limiter.contains_key(k)).collect();
            prop_assert!(limiter.len() <= max_keys);
            prop_assert_eq!(limiter.len(), after.len());
            for gone in before.iter().filter(|k| !after.contains(k)) {
                prop_assert!(reference[gone].is_idle(now), "evicted key {} was not idle", gone);
            }
        }
    }
}

#[test]
fn retain_recent_evicts_only_idle_keys() {
    let clock = FakeClock::new();
    let limiter = limiter(quota(1, 1000, 1), 100, 4, &clock);
    for k in 0..10 {
        limiter.check(&k).unwrap();
    }
    clock.advance(Duration::from_millis(500));
    for k in 0..3 {
        assert!(limiter.check(&k).is_err());
    }
    assert_eq!(limiter.retain_recent(), 0, "nothing idle yet");
    clock.advance(Duration::from_millis(500));
    // Keys 0..3 were refused, so their TAT is still 1s: all ten are idle now.
    assert_eq!(limiter.retain_recent(), 10);
    assert!(limiter.is_empty());
    limiter.shrink_to_fit();
    assert!(limiter.check(&0).is_ok());
    assert_eq!(limiter.remaining(&0), 0);
    assert_eq!(limiter.remaining(&1), 1, "unknown keys are full");
    limiter.clear();
    assert_eq!(limiter.len(), 0);
}

#[test]
fn full_table_refuses_new_keys_with_exact_retry_after() {
    let clock = FakeClock::new();
    let limiter = limiter(quota(1, 1000, 1), 3, 2, &clock);
    for k in 0..3 {
        limiter.check(&k).unwrap();
        clock.advance(Duration::from_millis(100));
    }
    // Key 0 turns idle at 1000ms; now is 300ms.
    let err = limiter.check(&7).unwrap_err();
    assert_eq!(err, Denied::KeysExhausted { capacity: 3, retry_after: Duration::from_millis(700) });
    assert!(limiter.check(&0).is_err(), "known keys keep their limits");
    clock.advance(Duration::from_millis(700));
    limiter.check(&7).unwrap();
    assert!(!limiter.contains_key(&0), "the idle key made room");
    assert_eq!(limiter.len(), 3);
}

#[test]
fn oversized_and_empty_checks_do_not_take_slots() {
    let clock = FakeClock::new();
    let limiter = limiter(quota(1, 1000, 2), 1, 1, &clock);
    assert_eq!(limiter.check_n(&1, 3), Err(Denied::InsufficientCapacity { requested: 3, capacity: 2 }));
    assert_eq!(limiter.check_n(&1, 0), Ok(()));
    assert!(limiter.is_empty());
}

#[test]
fn builder_rejects_zero() {
    let q = quota(1, 1000, 1);
    let err = KeyedLimiter::<u32>::builder(q).max_keys(0).build().unwrap_err();
    assert!(err.to_string().contains("max_keys"), "{err}");
    let err = KeyedLimiter::<u32>::builder(q).shards(0).build().unwrap_err();
    assert!(err.to_string().contains("shards"), "{err}");
    assert_eq!(KeyedLimiter::<u32>::new(q, 5).unwrap().max_keys(), 5);
}

#[test]
fn concurrent_new_keys_never_exceed_the_cap_or_the_quota() {
    let clock = FakeClock::new();
    let limiter = limiter(quota(1, 1000, 2), 64, 8, &clock);
    let admitted: Vec<AtomicUsize> = (0..256).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (limiter, admitted) = (&limiter, &admitted);
            s.spawn(move || {
                for i in 0..2000usize {
                    let key = ((i * 7 + t * 13) % 256) as u32;
                    if limiter.check(&key).is_ok() {
                        admitted[key as usize].fetch_add(1, Ordering::Relaxed);
                    }
                    assert!(limiter.len() <= 64);
                }
            });
        }
    });
    // No time passed: each key gets at most its burst, and only 64 keys fit.
    assert!(admitted.iter().all(|a| a.load(Ordering::Relaxed) <= 2));
    let keys_admitted = admitted.iter().filter(|a| a.load(Ordering::Relaxed) > 0).count();
    assert_eq!(keys_admitted, 64);
    assert_eq!(limiter.len(), 64);
}

#[test]
fn memory_estimate_grows_with_keys_and_shrinks_after_eviction() {
    let clock = FakeClock::new();
    let limiter = limiter(quota(1, 1000, 1), 100_000, 4, &clock);
    let empty = limiter.approx_memory_bytes();
    for k in 0..50_000 {
        limiter.check(&k).unwrap();
    }
    let full = limiter.approx_memory_bytes();
    let per_key = (full - empty) as f64 / 50_000.0;
    // (u32, AtomicU64) is 16 bytes + 1 control byte, 8/7..16/7 slots per key.
    assert!((19.0..=39.0).contains(&per_key), "{per_key} bytes per key");
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.retain_recent(), 50_000);
    limiter.shrink_to_fit();
    assert_eq!(limiter.approx_memory_bytes(), empty);
}

/// A key whose `clone` panics for one value, as a user's key type might.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Fragile(u32);

impl Clone for Fragile {
    fn clone(&self) -> Self {
        assert_ne!(self.0, 13, "Fragile(13) cannot be cloned");
        Fragile(self.0)
    }
}

/// A key that panics while being inserted must not keep its slot: with one slot, every
/// later new key would otherwise find the table full and empty at once.
#[test]
fn a_key_that_panics_on_insert_takes_no_slot() {
    let limiter = std::sync::Arc::new(
        KeyedLimiter::<Fragile, _>::builder(quota(1, 1000, 1))
            .max_keys(1)
            .shards(1)
            .clock(FakeClock::new())
            .build()
            .unwrap(),
    );
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| limiter.check(&Fragile(13))));
    assert!(panicked.is_err());
    assert_eq!(limiter.len(), 0, "the panicked insertion counts no key");

    // On a thread of its own with a deadline, so a check that never returns fails the test
    // rather than hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = limiter.clone();
    std::thread::spawn(move || tx.send(worker.check(&Fragile(1))));
    let decision = rx.recv_timeout(Duration::from_secs(30)).expect("the check returned");
    assert_eq!(decision, Ok(()));
    assert_eq!(limiter.len(), 1);
}

/// Many threads inserting distinct keys at the cap while the clock makes keys idle: every
/// check returns, the cap holds at every moment, and afterwards `len` counts exactly the
/// keys in the tables (no slot counted for a key that never landed).
#[test]
fn new_keys_contending_at_the_cap_never_wait_on_each_other() {
    const THREADS: usize = 4;
    const CHECKS: usize = 3000;
    const MAX_KEYS: usize = 8;
    let clock = FakeClock::new();
    let limiter = limiter(quota(1, 1000, 1), MAX_KEYS, 4, &clock);
    let outcomes: Vec<[AtomicUsize; 3]> = (0..THREADS).map(|_| Default::default()).collect();
    std::thread::scope(|s| {
        for (t, outcome) in outcomes.iter().enumerate() {
            let (limiter, clock) = (&limiter, &clock);
            s.spawn(move || {
                for i in 0..CHECKS {
                    let key = (i * THREADS + t) as u32 % 256;
                    let slot = match limiter.check(&key) {
                        Ok(()) => 0,
                        Err(Denied::NotUntil(_)) => 1,
                        Err(Denied::KeysExhausted { capacity, .. }) => {
                            assert_eq!(capacity, MAX_KEYS);
                            2
                        }
                        Err(other) => panic!("unexpected {other:?}"),
                    };
                    outcome[slot].fetch_add(1, Ordering::Relaxed);
                    assert!(limiter.len() <= MAX_KEYS);
                    if t == 0 && i % 16 == 0 {
                        // Every key tracked so far turns idle.
                        clock.advance(Duration::from_secs(1));
                    }
                }
            });
        }
    });
    let total = |slot: usize| outcomes.iter().map(|o| o[slot].load(Ordering::Relaxed)).sum::<usize>();
    assert_eq!(total(0) + total(1) + total(2), THREADS * CHECKS);
    assert!(total(0) > 0 && total(2) > 0, "both slots were taken and refused: {} / {}", total(0), total(2));
    let tracked = (0..256).filter(|k| limiter.contains_key(k)).count();
    assert_eq!(limiter.len(), tracked);
    clock.advance(Duration::from_secs(1));
    assert!(limiter.check(&1000).is_ok(), "idle keys make room for a new one");
}
