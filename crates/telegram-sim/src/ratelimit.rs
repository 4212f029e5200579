//! Telegram's flood limits: a per-chat token bucket, a per-group and a global sliding window;
//! and the flood figures reported in [`SimStats`](crate::SimStats).
//!
//! Both keep only what the last minute needs: chats idle for longer are forgotten once
//! the maps grow, so a long run holds state for the chats active in the last minute only.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimits;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Chats tracked before idle ones are looked for and forgotten; the threshold then grows
/// with what remains, so the sweep stays amortised O(1) per call.
const SWEEP_AT: usize = 1024;

/// Admission state. Only accepted calls are recorded.
#[derive(Debug)]
pub(crate) struct Limiter {
    buckets: HashMap<i64, Bucket>,
    groups: HashMap<i64, VecDeque<Instant>>,
    global: VecDeque<Instant>,
    sweep_at: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Self { buckets: HashMap::new(), groups: HashMap::new(), global: VecDeque::new(), sweep_at: SWEEP_AT }
    }
}

impl Limiter {
    /// Admits one send/edit to `chat` at `now`, or returns the whole seconds to wait.
    pub(crate) fn check(&mut self, limits: &RateLimits, chat: i64, now: Instant) -> Result<(), u32> {
        let rate = f64::from(limits.per_chat_per_sec);
        let cap = f64::from(limits.per_chat_burst.max(1));
        let bucket = self.buckets.entry(chat).or_insert(Bucket { tokens: cap, last: now });
        let tokens =
            (bucket.tokens + now.saturating_duration_since(bucket.last).as_secs_f64() * rate).min(cap);
        let mut wait = Duration::ZERO;
        if tokens < 1.0 {
            wait = wait.max(Duration::from_secs_f64((1.0 - tokens) / rate));
        }
        let group = self.groups.entry(chat).or_default();
        prune(group, now, MINUTE);
        if chat < 0 && group.len() >= limits.per_group_per_min as usize {
            wait = wait.max(group[0] + MINUTE - now);
        }
        prune(&mut self.global, now, SECOND);
        if self.global.len() >= limits.global_per_sec as usize {
            wait = wait.max(self.global[0] + SECOND - now);
        }
        if !wait.is_zero() {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(u32::try_from(secs.max(1)).unwrap_or(u32::MAX));
        }
        let bucket = self.buckets.get_mut(&chat).expect("inserted above");
        bucket.tokens = tokens - 1.0;
        bucket.last = now;
        if chat < 0 {
            self.groups.entry(chat).or_default().push_back(now);
        }
        self.global.push_back(now);
        if self.buckets.len() + self.groups.len() > self.sweep_at {
            self.sweep(limits, now);
        }
        Ok(())
    }

    /// Forgets chats whose bucket is full again and whose group window is empty: they
    /// behave exactly like chats never seen.
    fn sweep(&mut self, limits: &RateLimits, now: Instant) {
        let refill = Duration::from_secs_f64(
            f64::from(limits.per_chat_burst.max(1)) / f64::from(limits.per_chat_per_sec.max(1)),
        );
        self.buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
        self.groups.retain(|_, w| {
            prune(w, now, MINUTE);
            !w.is_empty()
        });
        self.sweep_at = SWEEP_AT.max(2 * (self.buckets.len() + self.groups.len()));
    }

    /// Chats with limiter state.
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len().max(self.groups.len())
    }
}

fn prune(window: &mut VecDeque<Instant>, now: Instant, span: Duration) {
    while window.front().is_some_and(|t| now.saturating_duration_since(*t) >= span) {
        window.pop_front();
    }
}

/// The densest windows of accepted sends/edits, kept up to date as calls are accepted:
/// the most in one chat within any 1 s, in one group within any 60 s, and across all
/// chats within any 1 s. Windows are half-open (`[t, t + span)`).
#[derive(Debug)]
pub(crate) struct FloodFigures {
    /// Per chat, the accepted calls of the last minute (groups) or second (others).
    recent: HashMap<i64, VecDeque<Instant>>,
    global: VecDeque<Instant>,
    pub(crate) accepted: u64,
    pub(crate) max_chat_second: u32,
    pub(crate) max_group_minute: u32,
    pub(crate) max_global_second: u32,
    sweep_at: usize,
}

impl Default for FloodFigures {
    fn default() -> Self {
        Self {
            recent: HashMap::new(),
            global: VecDeque::new(),
            accepted: 0,
            max_chat_second: 0,
            max_group_minute: 0,
            max_global_second: 0,
            sweep_at: SWEEP_AT,
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl FloodFigures {
    /// Records one accepted call. Calls arrive in time order (they are accepted under one
    /// lock on a monotonic clock), so the densest window ending at each call is the
    /// densest window overall.
    pub(crate) fn record(&mut self, chat: i64, now: Instant) {
        self.accepted += 1;
        let window = self.recent.entry(chat).or_default();
        window.push_back(now);
        prune(window, now, if chat < 0 { MINUTE } else { SECOND });
        let last_second =
            window.iter().rev().take_while(|t| now.saturating_duration_since(**t) < SECOND).count();
        self.max_chat_second = self.max_chat_second.max(count(last_second));
        if chat < 0 {
            self.max_group_minute = self.max_group_minute.max(count(window.len()));
        }
        self.global.push_back(now);
        prune(&mut self.global, now, SECOND);
        self.max_global_second = self.max_global_second.max(count(self.global.len()));
        if self.recent.len() > self.sweep_at {
            self.recent.retain(|chat, w| {
                prune(w, now, if *chat < 0 { MINUTE } else { SECOND });
                !w.is_empty()
            });
            self.sweep_at = SWEEP_AT.max(2 * self.recent.len());
        }
    }

    /// Chats with recent calls tracked.
    pub(crate) fn tracked(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn private_chat_allows_burst_then_one_per_second() {
        let limits = RateLimits::default();
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check(&limits, 7, t0).unwrap();
        }
        assert_eq!(l.check(&limits, 7, t0), Err(1));
        assert_eq!(l.check(&limits, 7, t0 + Duration::from_millis(999)), Err(1));
        l.check(&limits, 7, t0 + SECOND).unwrap();
        // another chat is independent
        l.check(&limits, 8, t0 + SECOND).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn group_limit_is_twenty_per_minute() {
        let limits = RateLimits { per_chat_per_sec: 100, per_chat_burst: 100, ..RateLimits::default() };
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..20 {
            l.check(&limits, -5, t0 + Duration::from_millis(i * 100)).unwrap();
        }
        let retry = l.check(&limits, -5, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(retry, 50);
        l.check(&limits, -5, t0 + MINUTE).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn global_limit_is_thirty_per_second() {
        let limits = RateLimits::default();
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for chat in 0..30 {
            l.check(&limits, chat + 1, t0).unwrap();
        }
        assert_eq!(l.check(&limits, 99, t0), Err(1));
    }

    #[tokio::test(start_paused = true)]
    async fn flood_figures_count_half_open_windows() {
        let t0 = Instant::now();
        let mut f = FloodFigures::default();
        for (chat, at) in [(1, t0), (-2, t0), (-2, t0), (1, t0 + SECOND)] {
            f.record(chat, at);
        }
        assert_eq!((f.max_chat_second, f.max_group_minute, f.max_global_second), (2, 2, 3));
        let mut f = FloodFigures::default();
        for ms in [0, 500, 1000, 1400] {
            f.record(1, t0 + Duration::from_millis(ms));
        }
        assert_eq!((f.max_chat_second, f.accepted), (3, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_chats_are_forgotten() {
        let limits = RateLimits::default();
        let mut l = Limiter::default();
        let mut f = FloodFigures::default();
        let mut now = Instant::now();
        for chat in 0..10_000_i64 {
            // 1 500 new chats a minute, each sending once: a long, wide run
            now += Duration::from_millis(40);
            let chat = if chat % 2 == 0 { chat + 1 } else { -chat };
            l.check(&limits, chat, now).unwrap();
            f.record(chat, now);
        }
        assert!(l.tracked() <= 2 * SWEEP_AT + 1_500, "limiter tracks {}", l.tracked());
        assert!(f.tracked() <= 2 * SWEEP_AT + 1_500, "figures track {}", f.tracked());
        assert_eq!(f.accepted, 10_000);
    }
}
