//! Telegram's flood limits: a per-chat token bucket, a per-group and a global sliding window;
//! and the flood figures reported in [`SimStats`](crate::SimStats).

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

/// Admission state. Only accepted calls are recorded.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    buckets: HashMap<i64, Bucket>,
    groups: HashMap<i64, VecDeque<Instant>>,
    global: VecDeque<Instant>,
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
        Ok(())
    }
}

fn prune(window: &mut VecDeque<Instant>, now: Instant, span: Duration) {
    while window.front().is_some_and(|t| now.saturating_duration_since(*t) >= span) {
        window.pop_front();
    }
}

/// The most events in any window `[t, t + span)` of the sorted `times`.
pub(crate) fn max_in_window(times: &[Instant], span: Duration) -> u32 {
    let mut best = 0;
    let mut start = 0;
    for (end, t) in times.iter().enumerate() {
        while t.saturating_duration_since(times[start]) >= span {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    u32::try_from(best).unwrap_or(u32::MAX)
}

/// Flood figures over the accepted sends/edits `(chat, at)`, in acceptance order.
pub(crate) fn flood_figures(accepted: &[(i64, Instant)]) -> (u32, u32, u32) {
    let mut per_chat: HashMap<i64, Vec<Instant>> = HashMap::new();
    for (chat, at) in accepted {
        per_chat.entry(*chat).or_default().push(*at);
    }
    for times in per_chat.values_mut() {
        times.sort_unstable();
    }
    let chat_sec = per_chat.values().map(|t| max_in_window(t, SECOND)).max().unwrap_or(0);
    let group_min =
        per_chat.iter().filter(|(c, _)| **c < 0).map(|(_, t)| max_in_window(t, MINUTE)).max().unwrap_or(0);
    let mut all: Vec<Instant> = accepted.iter().map(|(_, t)| *t).collect();
    all.sort_unstable();
    (chat_sec, group_min, max_in_window(&all, SECOND))
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
        assert_eq!(flood_figures(&[(1, t0), (1, t0 + SECOND), (-2, t0), (-2, t0)]), (2, 2, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn window_counts_half_open_spans() {
        let t0 = Instant::now();
        let ts = [t0, t0 + Duration::from_millis(500), t0 + SECOND, t0 + Duration::from_millis(1400)];
        assert_eq!(max_in_window(&ts, SECOND), 3);
        assert_eq!(max_in_window(&[], SECOND), 0);
    }
}
