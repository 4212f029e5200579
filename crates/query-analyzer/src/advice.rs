//! Cache advice: replays a read fingerprint's recent parameter stream through
//! `mltb-cache`'s W-TinyLFU cache to predict the hit ratio a cache would get.
//!
//! The advisor sees plain [`Candidate`]s, not the analyzer's entries: the analyzer
//! depends on it, never the other way round.

use mltb_cache::{Admission, MemoryCache};

use crate::config::AdviceConfig;
use crate::fingerprint::Fingerprint;
use crate::hash::FastMap;
use crate::report::CacheAdvice;
use crate::sample::INVALIDATE;

/// A read query that might be worth caching: what the analyzer saw of it.
#[derive(Debug)]
pub(crate) struct Candidate<'a> {
    pub(crate) fingerprint: &'a Fingerprint,
    /// Its executions.
    pub(crate) reads: u64,
    /// Writes to the tables it reads.
    pub(crate) writes: u64,
    /// Its recent parameter digests, with [`INVALIDATE`] markers.
    pub(crate) sample: Vec<u64>,
}

/// Recommendations for every candidate that qualifies, best first.
pub(crate) fn advise<'a>(
    candidates: impl IntoIterator<Item = Candidate<'a>>,
    config: &AdviceConfig,
) -> Vec<CacheAdvice> {
    let mut out = Vec::new();
    for Candidate { fingerprint, reads, writes, sample } in candidates {
        if reads < config.min_reads || reads == 0 {
            continue;
        }
        if writes as f64 > config.max_write_ratio * reads as f64 {
            continue;
        }
        let Some(p) = predict(&sample, config.max_capacity) else { continue };
        if p.hit_ratio < config.min_hit_ratio {
            continue;
        }
        out.push(CacheAdvice {
            fingerprint: fingerprint.clone(),
            reads,
            writes,
            distinct_keys: p.distinct,
            sample: p.reads,
            capacity: p.capacity,
            predicted_hit_ratio: p.hit_ratio,
        });
    }
    out.sort_by(|a, b| b.predicted_hit_ratio.total_cmp(&a.predicted_hit_ratio).then(b.reads.cmp(&a.reads)));
    out
}

/// What replaying one sample predicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prediction {
    pub(crate) capacity: usize,
    pub(crate) hit_ratio: f64,
    pub(crate) distinct: usize,
    pub(crate) reads: usize,
}

/// Tries caches of 1/16, 1/8, 1/4, 1/2 and all of the sample's distinct keys (at most
/// `max_capacity`) and proposes the smallest within 0.02 of the best hit ratio.
pub(crate) fn predict(sample: &[u64], max_capacity: usize) -> Option<Prediction> {
    let mut distinct: FastMap<u64, ()> = FastMap::default();
    let mut reads = 0;
    for &d in sample {
        if d != INVALIDATE {
            reads += 1;
            distinct.insert(d, ());
        }
    }
    let distinct = distinct.len();
    if reads == 0 {
        return None;
    }
    let mut sizes: Vec<usize> =
        [16, 8, 4, 2, 1].iter().map(|div| (distinct / div).clamp(1, max_capacity)).collect();
    sizes.dedup();
    let tried: Vec<(usize, f64)> = sizes.iter().map(|&cap| (cap, replay(sample, cap))).collect();
    let best = tried.iter().map(|t| t.1).fold(0.0, f64::max);
    let &(capacity, hit_ratio) = tried.iter().find(|t| t.1 >= best - 0.02)?;
    Some(Prediction { capacity, hit_ratio, distinct, reads })
}

/// The hit ratio of a `capacity`-entry W-TinyLFU cache (one shard, as the bot's caches
/// use the same policy) over `sample`; an [`INVALIDATE`] marker clears the cache, as a
/// write to a table invalidates what was cached from it.
pub(crate) fn replay(sample: &[u64], capacity: usize) -> f64 {
    let Ok(cache) = MemoryCache::<u64, ()>::builder_with_weigher(|_, _| 1)
        .max_bytes(capacity)
        .shards(1)
        .admission(Admission::TinyLfu)
        .expected_entries(capacity)
        .build()
    else {
        return 0.0;
    };
    let (mut hits, mut reads) = (0u64, 0u64);
    for &d in sample {
        if d == INVALIDATE {
            cache.clear();
            continue;
        }
        reads += 1;
        if cache.get(&d).is_some() {
            hits += 1;
        } else {
            // An entry of weight 1 always fits a cache of capacity >= 1.
            let _ = cache.insert(d, ());
        }
    }
    if reads == 0 { 0.0 } else { hits as f64 / reads as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_counts_hits_and_invalidations_clear() {
        let sample = [1, 2, 1, 2, 1, 2];
        assert!((replay(&sample, 2) - 4.0 / 6.0).abs() < 1e-9);
        let with_write = [1, 2, INVALIDATE, 1, 2];
        assert_eq!(replay(&with_write, 2), 0.0);
    }

    #[test]
    fn prediction_prefers_the_smallest_good_enough_cache() {
        // 90% of reads go to key 0, the rest to 1000 distinct cold keys.
        let mut sample = Vec::new();
        for i in 0..10_000u64 {
            sample.push(if i % 10 == 0 { 1 + i } else { 0 });
        }
        let p = predict(&sample, 100_000).unwrap();
        assert!(p.capacity < p.distinct, "{p:?}");
        assert!(p.hit_ratio > 0.85, "{p:?}");
        assert_eq!(p.reads, 10_000);
    }
}
