//! Shared helpers for the integration tests: an event builder, a seeded RNG, a fake
//! clock and the labelled corpus generator.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use mltb_query_analyzer::{QueryEvent, SpanId};

/// A query event with `params` digested and `ms` milliseconds of duration.
pub fn ev<'a, T: std::hash::Hash + ?Sized>(
    sql: &'a str,
    params: &T,
    ms: u64,
    span: Option<u64>,
) -> QueryEvent<'a> {
    QueryEvent {
        sql,
        params_digest: mltb_query_analyzer::params_digest(params),
        duration: Duration::from_millis(ms),
        rows: 1,
        span: span.map(SpanId),
        ended_at: None,
    }
}

/// SplitMix64: a small deterministic generator, so every run sees the same corpus.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A clock that moves only when told, for [`Analyzer::with_clock`](mltb_query_analyzer::Analyzer::with_clock).
#[derive(Debug, Clone, Default)]
pub struct FakeTime(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

impl FakeTime {
    /// Moves the clock on by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the clock to `at` since its origin (never back).
    pub fn set(&self, at: Duration) {
        self.0.fetch_max(at.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// An analyzer reading this clock.
    pub fn analyzer(&self, config: mltb_query_analyzer::AnalyzerConfig) -> mltb_query_analyzer::Analyzer {
        let t = std::sync::Arc::clone(&self.0);
        mltb_query_analyzer::Analyzer::with_clock(config, move || {
            Duration::from_nanos(t.load(std::sync::atomic::Ordering::Relaxed))
        })
    }
}
pub mod corpus;
