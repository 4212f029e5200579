//! [`Quota`]: how many cells per period, and how many at once.

mod parse;

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// A rate (cells per period) and a burst (cells that may be taken at once).
///
/// Parse one from config text with [`Quota::parse`] or [`str::parse`]:
///
/// | text | meaning |
/// |---|---|
/// | `10/s` | 10 per second, burst 10 |
/// | `20/min burst 5` | 20 per minute, at most 5 at once |
/// | `100/h`, `30/1m`, `5/2s`, `1/500ms` | a count before the unit multiplies the period |
///
/// Units: `ns`, `us` (`µs`), `ms`, `s` (`sec`, `second(s)`), `m` (`min`, `minute(s)`),
/// `h` (`hr`, `hour(s)`), `d` (`day(s)`); case and whitespace do not matter, and
/// invisible formatting characters pasted from chat text (zero-width spaces, bidi marks,
/// a byte-order mark) count as whitespace. The burst defaults to the rate. [`Display`](fmt::Display) prints the same syntax, so a quota
/// round-trips through text.
///
/// The limiters space cells one *emission interval* apart (`period / rate`, rounded up
/// to a whole nanosecond so that rounding never admits more than the quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    rate: NonZeroU32,
    period: Duration,
    burst: NonZeroU32,
}

/// Longest period a quota may have: what fits in `u64` nanoseconds (about 584 years).
const MAX_PERIOD_NANOS: u128 = u64::MAX as u128;

impl Quota {
    /// `rate` cells per `period`, with a burst of `rate`.
    ///
    /// Fails if `period` is zero or longer than `u64::MAX` nanoseconds.
    pub fn new(rate: NonZeroU32, period: Duration) -> Result<Self> {
        let nanos = period.as_nanos();
        if nanos == 0 || nanos > MAX_PERIOD_NANOS {
            return Err(Error::config(
                "quota period",
                format!("{period:?} is out of range; expected between 1ns and {MAX_PERIOD_NANOS}ns"),
            ));
        }
        Ok(Self { rate, period, burst: rate })
    }

    /// `rate` cells per second, burst `rate`.
    pub const fn per_second(rate: NonZeroU32) -> Self {
        Self { rate, period: Duration::from_secs(1), burst: rate }
    }

    /// `rate` cells per minute, burst `rate`.
    pub const fn per_minute(rate: NonZeroU32) -> Self {
        Self { rate, period: Duration::from_secs(60), burst: rate }
    }

    /// `rate` cells per hour, burst `rate`.
    pub const fn per_hour(rate: NonZeroU32) -> Self {
        Self { rate, period: Duration::from_secs(3600), burst: rate }
    }

    /// One cell per `period`, burst 1.
    ///
    /// Fails if `period` is zero or longer than `u64::MAX` nanoseconds.
    pub fn with_period(period: Duration) -> Result<Self> {
        Self::new(NonZeroU32::MIN, period)
    }

    /// The same rate with a different burst.
    #[must_use]
    pub const fn allow_burst(self, burst: NonZeroU32) -> Self {
        Self { burst, ..self }
    }

    /// Parses text such as `10/s` or `20/min burst 5`; see the [type docs](Quota).
    pub fn parse(text: &str) -> Result<Self> {
        parse::parse(text)
    }

    /// Cells per [`period`](Self::period).
    pub const fn rate(&self) -> NonZeroU32 {
        self.rate
    }

    /// The period the rate is counted over.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// Cells that may be taken at once from a full bucket.
    pub const fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// Time between cells at the sustained rate (`period / rate`, rounded up to 1 ns).
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission_nanos())
    }

    pub(crate) fn period_nanos(&self) -> u64 {
        // `new` and the parser keep the period within u64 nanoseconds; the const
        // constructors use at most an hour.
        u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn emission_nanos(&self) -> u64 {
        self.period_nanos().div_ceil(u64::from(self.rate.get())).max(1)
    }
}

impl FromStr for Quota {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        parse::parse(s)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.rate)?;
        let nanos = self.period_nanos();
        let (count, unit) = parse::UNITS_FOR_DISPLAY
            .iter()
            .find(|(unit_nanos, _)| nanos.is_multiple_of(*unit_nanos))
            .map(|(unit_nanos, name)| (nanos / unit_nanos, *name))
            .unwrap_or((nanos, "ns"));
        if count != 1 {
            write!(f, "{count}")?;
        }
        f.write_str(unit)?;
        if self.burst != self.rate {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn constructors_and_accessors() {
        let q = Quota::per_minute(nz(20)).allow_burst(nz(5));
        assert_eq!(q.rate().get(), 20);
        assert_eq!(q.period(), Duration::from_secs(60));
        assert_eq!(q.burst().get(), 5);
        assert_eq!(q.emission_interval(), Duration::from_secs(3));
        assert_eq!(Quota::per_hour(nz(1)).period(), Duration::from_secs(3600));
        assert_eq!(Quota::with_period(Duration::from_millis(250)).unwrap().burst().get(), 1);
        assert!(Quota::with_period(Duration::ZERO).is_err());
        assert!(Quota::new(nz(1), Duration::MAX).is_err());
    }

    #[test]
    fn emission_interval_rounds_up() {
        assert_eq!(Quota::per_second(nz(3)).emission_nanos(), 333_333_334);
        assert_eq!(Quota::new(nz(10), Duration::from_nanos(1)).unwrap().emission_nanos(), 1);
    }

    #[test]
    fn display() {
        assert_eq!(Quota::per_second(nz(10)).to_string(), "10/s");
        assert_eq!(Quota::per_minute(nz(20)).allow_burst(nz(5)).to_string(), "20/min burst 5");
        assert_eq!(Quota::per_hour(nz(100)).to_string(), "100/h");
        assert_eq!(Quota::new(nz(5), Duration::from_secs(2)).unwrap().to_string(), "5/2s");
        assert_eq!(Quota::new(nz(1), Duration::from_nanos(1500)).unwrap().to_string(), "1/1500ns");
    }
}
