//! The quota text syntax: `RATE/[COUNT]UNIT [burst N]`.
//!
//! Written to never panic: it only splits at positions found by `char_indices` and
//! does all arithmetic checked.

use std::num::NonZeroU32;
use std::time::Duration;

use super::{MAX_PERIOD_NANOS, Quota};
use crate::{Error, ErrorKind, Result};

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const MIN: u64 = 60 * S;
const H: u64 = 60 * MIN;
const D: u64 = 24 * H;

/// Units tried by `Display`, largest first; the first that divides the period is used.
pub(super) const UNITS_FOR_DISPLAY: [(u64, &str); 7] =
    [(D, "d"), (H, "h"), (MIN, "min"), (S, "s"), (MS, "ms"), (US, "us"), (NS, "ns")];

const UNIT_NAMES: &str = "ns, us, ms, s, m/min, h, d";

pub(super) fn parse(input: &str) -> Result<Quota> {
    let fail = |reason: String| Error::new(ErrorKind::InvalidQuota { input: input.to_string(), reason });
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("it is empty".into()));
    }
    let Some((rate_text, rest)) = text.split_once('/') else {
        return Err(fail("there is no '/' between the rate and the period".into()));
    };
    let rate = parse_count(rate_text.trim(), "rate").map_err(&fail)?;
    let rate = u32::try_from(rate)
        .map_err(|_| fail(format!("the rate {rate} is too large; the maximum is {}", u32::MAX)))?;
    let rate = NonZeroU32::new(rate).ok_or_else(|| fail("the rate is zero; expected at least 1".into()))?;

    let rest = rest.trim_start();
    let (count_text, rest) = split_while(rest, |c| c.is_ascii_digit());
    let count =
        if count_text.is_empty() { 1 } else { parse_count(count_text, "period count").map_err(&fail)? };
    if count == 0 {
        return Err(fail("the period is zero; expected a positive duration".into()));
    }
    let rest = rest.trim_start();
    let (unit_text, rest) = split_while(rest, |c| c.is_alphabetic());
    if unit_text.is_empty() {
        return Err(fail(format!("the period has no unit; expected one of {UNIT_NAMES}")));
    }
    let unit = unit_nanos(unit_text)
        .ok_or_else(|| fail(format!("unknown unit {unit_text:?}; expected one of {UNIT_NAMES}")))?;
    let period_nanos =
        count.checked_mul(unit).filter(|n| u128::from(*n) <= MAX_PERIOD_NANOS).ok_or_else(|| {
            fail(format!(
                "the period {count}{unit_text} is too long (overflow); the maximum is about 584 years"
            ))
        })?;

    let burst = parse_burst(rest).map_err(&fail)?;
    let quota = Quota { rate, period: Duration::from_nanos(period_nanos), burst: burst.unwrap_or(rate) };
    Ok(quota)
}

/// Parses the optional tail `burst N` (also `burst=N`, `burst: N`).
fn parse_burst(rest: &str) -> std::result::Result<Option<NonZeroU32>, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    let (word, after) = split_while(rest, |c| c.is_alphabetic());
    if !word.eq_ignore_ascii_case("burst") {
        return Err(format!("unexpected text {rest:?} after the period; expected nothing or \"burst N\""));
    }
    let after = after.trim_start();
    let after = after.strip_prefix(['=', ':']).unwrap_or(after).trim();
    if after.is_empty() {
        return Err("\"burst\" has no number after it".into());
    }
    let (digits, trailing) = split_while(after, |c| c.is_ascii_digit());
    if !trailing.trim().is_empty() || digits.is_empty() {
        return Err(format!("the burst {after:?} is not a whole number"));
    }
    let burst = parse_count(digits, "burst")?;
    let burst = u32::try_from(burst)
        .map_err(|_| format!("the burst {burst} is too large; the maximum is {}", u32::MAX))?;
    NonZeroU32::new(burst).map(Some).ok_or_else(|| "the burst is zero; expected at least 1".into())
}

/// Parses ASCII digits into a `u64`, naming `what` in errors.
fn parse_count(text: &str, what: &str) -> std::result::Result<u64, String> {
    if text.is_empty() {
        return Err(format!("the {what} is missing; expected a whole number"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} {text:?} is not a whole number"));
    }
    text.parse::<u64>().map_err(|_| format!("the {what} {text} is too large (overflow)"))
}

/// Splits `text` after the longest prefix whose chars satisfy `keep`.
fn split_while(text: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    let end = text.char_indices().find(|(_, c)| !keep(*c)).map_or(text.len(), |(i, _)| i);
    text.split_at(end)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    let unit = unit.to_lowercase();
    Some(match unit.as_str() {
        "ns" | "nanos" | "nanosecond" | "nanoseconds" => NS,
        "us" | "µs" | "μs" | "micros" | "microsecond" | "microseconds" => US,
        "ms" | "millis" | "millisecond" | "milliseconds" => MS,
        "s" | "sec" | "secs" | "second" | "seconds" => S,
        "m" | "min" | "mins" | "minute" | "minutes" => MIN,
        "h" | "hr" | "hrs" | "hour" | "hours" => H,
        "d" | "day" | "days" => D,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn q(text: &str) -> Quota {
        Quota::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> String {
        match Quota::parse(text) {
            Ok(q) => panic!("{text:?} parsed as {q}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_the_documented_forms() {
        let cases: &[(&str, u32, u64, u32)] = &[
            ("10/s", 10, S, 10),
            ("20/min burst 5", 20, MIN, 5),
            ("100/h", 100, H, 100),
            ("5/2s", 5, 2 * S, 5),
            ("30/1m", 30, MIN, 30),
            ("  7 / 3 ms  ", 7, 3 * MS, 7),
            ("1/500ms burst=3", 1, 500 * MS, 3),
            ("2/Hour BURST: 9", 2, H, 9),
            ("4/µs", 4, US, 4),
            ("1/2days", 1, 2 * D, 1),
        ];
        for &(text, rate, period, burst) in cases {
            let quota = q(text);
            assert_eq!(quota.rate().get(), rate, "{text}");
            assert_eq!(quota.period(), Duration::from_nanos(period), "{text}");
            assert_eq!(quota.burst().get(), burst, "{text}");
        }
    }

    #[test]
    fn errors_name_the_input_and_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("10", "no '/'"),
            ("0/s", "rate is zero"),
            ("x/s", "rate \"x\" is not a whole number"),
            ("/s", "rate is missing"),
            ("-1/s", "not a whole number"),
            ("5000000000/s", "too large"),
            ("99999999999999999999999/s", "too large"),
            ("10/0s", "period is zero"),
            ("10/", "no unit"),
            ("10/5", "no unit"),
            ("10/fortnight", "unknown unit \"fortnight\""),
            ("10/999999999999d", "overflow"),
            ("10/s burst 0", "burst is zero"),
            ("10/s burst", "no number"),
            ("10/s burst x", "not a whole number"),
            ("10/s burst 9999999999", "too large"),
            ("10/s please", "unexpected text"),
        ];
        for &(text, needle) in cases {
            let message = err(text);
            assert!(message.contains(needle), "{text:?}: {message}");
            assert!(message.contains(&format!("{text:?}")), "error must name the input: {message}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = Quota::parse(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "[0-9 ]{0,12}/[0-9 ]{0,6}[a-zµ ]{0,8}( burst[ =:]{0,2}[0-9x]{0,12})?") {
            let _ = Quota::parse(&text);
        }

        #[test]
        fn display_round_trips(rate in 1u32.., nanos in 1u64.., burst in 1u32..) {
            let quota = Quota::new(NonZeroU32::new(rate).unwrap(), Duration::from_nanos(nanos))
                .unwrap()
                .allow_burst(NonZeroU32::new(burst).unwrap());
            prop_assert_eq!(Quota::parse(&quota.to_string()).unwrap(), quota);
        }
    }
}
