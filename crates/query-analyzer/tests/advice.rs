//! Cache advice: read queries that repeat with few writes are recommended, with a hit
//! ratio that matches replaying the same keys through `mltb-cache` directly.
#![cfg(feature = "advice")]

mod support;

use mltb_cache::{Admission, MemoryCache};
use mltb_query_analyzer::{Analyzer, AnalyzerConfig, DEFAULT_MIN_HIT_RATIO, QuerySink, params_digest};
use support::{Rng, ev};

const READ: &str = "SELECT * FROM settings WHERE user_id = ?";
const WRITE: &str = "UPDATE settings SET v = ? WHERE user_id = ?";

/// A skewed key: 80% of reads go to 20 hot users, the rest to 2 000 cold ones.
fn key(rng: &mut Rng) -> u64 {
    if rng.chance(0.8) { rng.range(0, 19) } else { rng.range(20, 2_019) }
}

fn direct_hit_ratio(keys: &[u64], capacity: usize) -> f64 {
    let cache = MemoryCache::<u64, ()>::builder_with_weigher(|_, _| 1)
        .max_bytes(capacity)
        .shards(1)
        .admission(Admission::TinyLfu)
        .expected_entries(capacity)
        .build()
        .unwrap();
    let mut hits = 0;
    for k in keys {
        if cache.get(k).is_some() {
            hits += 1;
        } else {
            cache.insert(*k, ()).unwrap();
        }
    }
    hits as f64 / keys.len() as f64
}

#[test]
fn hot_reads_get_advice_with_the_replayed_hit_ratio() {
    let mut config = AnalyzerConfig::default();
    config.advice.sample_size = 1_000;
    let a = Analyzer::new(config);
    let mut rng = Rng(7);
    let keys: Vec<u64> = (0..1_000).map(|_| key(&mut rng)).collect();
    for k in &keys {
        a.record(&ev(READ, k, 1, None));
    }
    let r = a.report();
    assert_eq!(r.cache_advice.len(), 1, "{r}");
    let adv = &r.cache_advice[0];
    assert_eq!(&*adv.fingerprint.normalized, READ);
    assert_eq!((adv.reads, adv.writes, adv.sample), (1_000, 0, 1_000));
    let distinct = keys.iter().collect::<std::collections::HashSet<_>>().len();
    assert_eq!(adv.distinct_keys, distinct);
    assert!(adv.capacity <= distinct);
    // The prediction is the hit ratio mltb-cache itself gets on these reads at that
    // size, keyed as the analyzer keys them: by the parameters' digest (which keys
    // collide in W-TinyLFU's frequency sketch follows from the key, so the raw ids may
    // give another figure).
    let digests: Vec<u64> = keys.iter().map(params_digest).collect();
    let direct = direct_hit_ratio(&digests, adv.capacity);
    assert!((adv.predicted_hit_ratio - direct).abs() < 1e-9, "{} vs {direct}", adv.predicted_hit_ratio);
    assert!(adv.predicted_hit_ratio > 0.5);
    assert!(r.to_string().contains("cache `SELECT * FROM settings WHERE user_id = ?`"));
}

#[test]
fn frequent_writes_to_the_table_rule_advice_out() {
    let a = Analyzer::default();
    let mut rng = Rng(9);
    for i in 0..1_000_u64 {
        a.record(&ev(READ, &key(&mut rng), 1, None));
        if i % 4 == 0 {
            a.record(&ev(WRITE, &(i, key(&mut rng)), 1, None));
        }
    }
    let r = a.report();
    assert!(r.cache_advice.is_empty(), "{r}");
}

#[test]
fn rare_writes_lower_the_prediction_but_keep_the_advice() {
    let mut config = AnalyzerConfig::default();
    config.advice.sample_size = 2_000;
    // Writes every 100 reads take this stream below the default threshold; this test is
    // about the prediction, so it accepts any ratio above one half.
    config.advice.min_hit_ratio = 0.5;
    let quiet = Analyzer::new(config.clone());
    let written = Analyzer::new(config);
    let mut rng = Rng(11);
    for i in 0..2_000_u64 {
        let k = key(&mut rng);
        quiet.record(&ev(READ, &k, 1, None));
        written.record(&ev(READ, &k, 1, None));
        if i % 100 == 99 {
            written.record(&ev(WRITE, &(i, k), 1, None));
        }
    }
    let (q, w) = (&quiet.report().cache_advice[0], &written.report().cache_advice[0]);
    assert_eq!((q.writes, w.writes), (0, 20));
    assert!(
        w.predicted_hit_ratio < q.predicted_hit_ratio,
        "{} vs {}",
        w.predicted_hit_ratio,
        q.predicted_hit_ratio
    );
}

#[test]
fn unique_keys_and_writes_get_no_advice() {
    let a = Analyzer::default();
    for i in 0..500_u64 {
        a.record(&ev(READ, &i, 1, None)); // never repeats: no hits to predict
        a.record(&ev("INSERT INTO log (m) VALUES (?)", &i, 1, None));
    }
    assert!(a.report().cache_advice.is_empty());
}

/// 60 % of reads go to 10 hot users, 40 % to users never seen again: a cache would hit
/// about 60 % of the time.
fn sixty_percent_hits(a: &Analyzer) {
    let mut rng = Rng(13);
    for i in 0..1_000_u64 {
        let k = if rng.chance(0.6) { rng.range(0, 9) } else { 1_000 + i };
        a.record(&ev(READ, &k, 1, None));
    }
}

#[test]
fn advice_needs_a_predicted_hit_ratio_of_seventy_percent_by_default() {
    assert_eq!(DEFAULT_MIN_HIT_RATIO, 0.70);
    assert_eq!(AnalyzerConfig::default().advice.min_hit_ratio, 0.70);
    let mut config = AnalyzerConfig::default();
    config.advice.sample_size = 1_000;
    let a = Analyzer::new(config.clone());
    sixty_percent_hits(&a);
    assert!(a.report().cache_advice.is_empty(), "{}", a.report());

    // The same stream with the threshold lowered: advice, at the ratio the default refused.
    config.advice.min_hit_ratio = 0.5;
    let lowered = Analyzer::new(config);
    sixty_percent_hits(&lowered);
    let r = lowered.report();
    assert_eq!(r.cache_advice.len(), 1, "{r}");
    let ratio = r.cache_advice[0].predicted_hit_ratio;
    assert!((0.5..DEFAULT_MIN_HIT_RATIO).contains(&ratio), "{ratio}");
}
