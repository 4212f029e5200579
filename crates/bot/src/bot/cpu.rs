//! CPU use for `/stats`: the whole machine's and the bot's own, as percentages over the
//! time since the previous `/stats` (or a short sample when there was none recently).

use std::time::{Duration, Instant};

use std::sync::Mutex;

/// The shortest span a percentage is computed over; a `/stats` sooner after the last
/// one (or the first) samples this long.
const MIN_SPAN: Duration = Duration::from_millis(250);
/// A sample older than this is not reused: the figure should say what happens now.
const MAX_SPAN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// The machine's busy and total jiffies, from `/proc/stat`.
    busy: u64,
    total: u64,
    /// The process's user + system jiffies, from `/proc/self/stat`.
    process: u64,
}

/// CPU percentages over a span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuUse {
    /// The machine's busy share, 0–100 %, all cores together.
    pub(super) system: f64,
    /// The bot's share of one core (100 % = one core busy).
    pub(super) process: f64,
    /// Cores the machine has.
    pub(super) cores: usize,
    /// The span the figures cover.
    pub(super) span: Duration,
}

/// Keeps the last sample.
#[derive(Debug, Default)]
pub(super) struct CpuMeter {
    last: Mutex<Option<Sample>>,
}

impl CpuMeter {
    /// CPU use since the last call (if between [`MIN_SPAN`] and [`MAX_SPAN`] ago), else
    /// over a fresh [`MIN_SPAN`] sample. `None` where `/proc` is not readable.
    pub(super) async fn measure(&self) -> Option<CpuUse> {
        let previous = *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = match previous {
            Some(s) if (MIN_SPAN..MAX_SPAN).contains(&s.at.elapsed()) => s,
            _ => {
                let s = sample()?;
                tokio::time::sleep(MIN_SPAN).await;
                s
            }
        };
        let now = sample()?;
        *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
        Some(between(&start, &now))
    }
}

fn between(a: &Sample, b: &Sample) -> CpuUse {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let span = b.at.duration_since(a.at);
    let total = b.total.saturating_sub(a.total);
    let system = if total == 0 { 0.0 } else { 100.0 * b.busy.saturating_sub(a.busy) as f64 / total as f64 };
    // Jiffies are 1/100 s (USER_HZ) on Linux.
    let secs = span.as_secs_f64();
    let process =
        if secs <= 0.0 { 0.0 } else { 100.0 * (b.process.saturating_sub(a.process) as f64 / 100.0) / secs };
    CpuUse { system: system.clamp(0.0, 100.0), process: process.max(0.0), cores, span }
}

fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let (busy, total) = machine(&stat)?;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    Some(Sample { at: Instant::now(), busy, total, process: process_ticks(&own)? })
}

/// The machine's busy and total jiffies from the `cpu` line of `/proc/stat`: idle and
/// iowait are idle; guest time is already counted in user.
fn machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let idle = field(3) + field(4);
    let total: u64 = (0..8).map(field).sum();
    Some((total.saturating_sub(idle), total))
}

/// User + system jiffies from `/proc/self/stat` (fields 14 and 15; the name in
/// parentheses may hold spaces).
fn process_ticks(stat: &str) -> Option<u64> {
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_lines_parse() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n";
        assert_eq!(machine(stat), Some((160, 980)));
        assert_eq!(machine("intr 1 2"), None);
        let own = "4242 (mltb (bot) x) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0";
        assert_eq!(process_ticks(own), Some(280));
        assert_eq!(process_ticks("garbage"), None);
    }

    #[test]
    fn percentages_over_a_span() {
        let t = Instant::now();
        let a = Sample { at: t, busy: 100, total: 1000, process: 10 };
        let b = Sample { at: t + Duration::from_secs(2), busy: 400, total: 1400, process: 110 };
        let u = between(&a, &b);
        assert!((u.system - 75.0).abs() < 1e-9, "{u:?}");
        // 100 jiffies = 1 s of CPU over 2 s: half a core.
        assert!((u.process - 50.0).abs() < 1e-9, "{u:?}");
    }

    #[tokio::test]
    async fn a_busy_process_shows_in_its_share() {
        let meter = CpuMeter::default();
        meter.measure().await.expect("/proc is readable on Linux");
        // Burn CPU on this thread for about 300 ms, then measure since the last call.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let u = meter.measure().await.unwrap();
        assert!(u.process > 30.0, "a thread busy for the whole span shows: {u:?}");
        assert!(u.system > 0.0 && u.system <= 100.0, "{u:?}");
        assert!(u.span >= Duration::from_millis(250), "{u:?}");
    }
}
