//! Bytes a second from a running count of bytes done: the upload speed the status board
//! shows (aria2 reports its own download speed; an upload reports only the bytes sent).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate looks: long enough to smooth a part's bursts, short enough to
/// follow a change of pace within a few status edits.
const WINDOW: Duration = Duration::from_secs(3);
/// The shortest span a rate is told over; below it the rate is 0 (not yet known).
const MIN_SPAN: Duration = Duration::from_millis(250);
/// Samples closer together than this are merged, which bounds the samples kept to about
/// `WINDOW / MIN_GAP` however often progress is reported.
const MIN_GAP: Duration = Duration::from_millis(50);

/// A running count's rate over the last [`WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct Rate {
    /// `(when, count)`, oldest first; the first at or before the window's start once the
    /// count has run that long.
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// Notes that the count is `count` at `at`, and returns the bytes a second over the
    /// last [`WINDOW`] (0 until [`MIN_SPAN`] is covered). A count below the last one (a
    /// part sent again from its start) or a time before the last starts over.
    pub(crate) fn record(&mut self, at: Instant, count: u64) -> u64 {
        if self.samples.back().is_some_and(|&(t, c)| count < c || at < t) {
            self.samples.clear();
        }
        let len = self.samples.len();
        if len >= 2 && self.samples.get(len - 2).is_some_and(|&(t, _)| at.duration_since(t) < MIN_GAP) {
            self.samples.pop_back();
        }
        self.samples.push_back((at, count));
        while self.samples.get(1).is_some_and(|&(t, _)| at.duration_since(t) >= WINDOW) {
            self.samples.pop_front();
        }
        let Some(&(since, from)) = self.samples.front() else { return 0 };
        let span = at.duration_since(since);
        if span < MIN_SPAN {
            return 0;
        }
        ((count - from) as f64 / span.as_secs_f64()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rate` fed `per_step` bytes every `step` for `steps` steps from `start`; the last
    /// rate and the time after.
    fn feed(
        rate: &mut Rate,
        start: Instant,
        count: &mut u64,
        step: Duration,
        per_step: u64,
        steps: u32,
    ) -> (u64, Instant) {
        let mut at = start;
        let mut last = 0;
        for _ in 0..steps {
            at += step;
            *count += per_step;
            last = rate.record(at, *count);
        }
        (last, at)
    }

    #[test]
    fn a_steady_count_gives_its_rate_once_a_quarter_second_is_covered() {
        let mut rate = Rate::default();
        let t0 = Instant::now();
        let mut count = 0;
        assert_eq!(rate.record(t0, 0), 0, "one sample: no rate");
        let (early, at) = feed(&mut rate, t0, &mut count, Duration::from_millis(100), 100_000, 2);
        assert_eq!(early, 0, "200 ms covered");
        let (steady, _) = feed(&mut rate, at, &mut count, Duration::from_millis(100), 100_000, 40);
        assert!((990_000..=1_010_000).contains(&steady), "1 MB/s, got {steady}");
    }

    #[test]
    fn the_rate_follows_a_change_of_pace_within_the_window() {
        let mut rate = Rate::default();
        let t0 = Instant::now();
        let mut count = 0;
        rate.record(t0, 0);
        let (fast, at) = feed(&mut rate, t0, &mut count, Duration::from_millis(10), 100_000, 500);
        assert!((9_900_000..=10_100_000).contains(&fast), "10 MB/s, got {fast}");
        let (slow, _) = feed(&mut rate, at, &mut count, Duration::from_millis(100), 10_000, 40);
        assert!((99_000..=101_000).contains(&slow), "4 s later at 100 kB/s, got {slow}");
        assert!(rate.samples.len() <= 70, "{} samples kept", rate.samples.len());
    }

    #[test]
    fn bursts_are_averaged_and_a_stall_brings_the_rate_down() {
        let mut rate = Rate::default();
        let t0 = Instant::now();
        rate.record(t0, 0);
        // 1 MB in one burst a second, reported as it happens and once more before the
        // next burst, for 5 seconds.
        let mut last = 0;
        for s in 1..=5u64 {
            let burst = t0 + Duration::from_secs(s - 1) + Duration::from_millis(10);
            rate.record(burst, s * 1_000_000);
            last = rate.record(t0 + Duration::from_secs(s), s * 1_000_000);
        }
        assert!((990_000..=1_010_000).contains(&last), "1 MB/s on average, got {last}");
        // Nothing more for 2 s: progress reported with the same count.
        let stalled = rate.record(t0 + Duration::from_secs(7), 5_000_000);
        assert!(stalled < last / 2, "{stalled} after a 2 s stall, from {last}");
    }

    #[test]
    fn a_count_that_goes_back_starts_over() {
        let mut rate = Rate::default();
        let t0 = Instant::now();
        let mut count = 0;
        rate.record(t0, 0);
        let (before, at) = feed(&mut rate, t0, &mut count, Duration::from_millis(100), 100_000, 10);
        assert!(before > 0);
        assert_eq!(rate.record(at + Duration::from_millis(100), 400_000), 0, "a part sent again");
        let (after, _) = feed(
            &mut rate,
            at + Duration::from_millis(100),
            &mut 400_000,
            Duration::from_millis(100),
            50_000,
            5,
        );
        assert!((495_000..=505_000).contains(&after), "500 kB/s from the restart, got {after}");
    }
}
