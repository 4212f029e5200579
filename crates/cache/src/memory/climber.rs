//! Hill climbing on the window's share, after Caffeine: every sample period, step the
//! window in the direction that last raised the hit ratio; a big change in hit ratio
//! restarts with a full step, otherwise steps decay.

const STEP_PERCENT: f64 = 0.0625;
const STEP_DECAY: f64 = 0.98;
const RESTART_THRESHOLD: f64 = 0.05;
/// Caffeine samples over as many requests as the sketch's aging period (ten per entry);
/// a fifth of that adapts faster on short traces and scored better on every trace in
/// `../shared/traces` (measured with the `trace_replay` example).
const SAMPLE_DIVISOR: u64 = 5;

#[derive(Debug)]
pub(crate) struct HillClimber {
    enabled: bool,
    hits: u64,
    misses: u64,
    previous_hit_rate: f64,
    step: f64,
    budget: f64,
}

impl HillClimber {
    pub(crate) fn new(budget: usize, enabled: bool) -> Self {
        let budget = budget as f64;
        Self { enabled, hits: 0, misses: 0, previous_hit_rate: 0.0, step: -STEP_PERCENT * budget, budget }
    }

    /// Records one read; at the end of a sample returns how much to grow (positive) or
    /// shrink (negative) the window, in weight units. Until the cache is `warm` (half
    /// full, as Caffeine waits for) nothing is sampled.
    #[inline]
    pub(crate) fn record(&mut self, hit: bool, warm: bool, sample_size: usize) -> Option<i64> {
        if !self.enabled {
            return None;
        }
        if !warm {
            self.hits = 0;
            self.misses = 0;
            self.previous_hit_rate = 0.0;
            return None;
        }
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        let requests = self.hits + self.misses;
        if requests < (sample_size as u64 / SAMPLE_DIVISOR).max(1) {
            return None;
        }
        let hit_rate = self.hits as f64 / requests as f64;
        let change = hit_rate - self.previous_hit_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERCENT * self.budget * amount.signum()
        } else {
            STEP_DECAY * amount
        };
        self.previous_hit_rate = hit_rate;
        self.hits = 0;
        self.misses = 0;
        Some(amount as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_direction_while_hit_ratio_improves_and_reverses_when_it_drops() {
        let mut c = HillClimber::new(1000, true);
        let run = |c: &mut HillClimber, hits: u64| {
            let mut out = None;
            for i in 0..10 {
                out = out.or(c.record(i < hits, true, 10 * SAMPLE_DIVISOR as usize));
            }
            out.unwrap_or(0)
        };
        let first = run(&mut c, 5);
        assert_eq!(first, -62);
        // Better again (by more than the restart threshold): full step, same direction.
        assert!(run(&mut c, 7) < 0);
        // Worse: turn around.
        assert!(run(&mut c, 2) > 0);
    }
}
