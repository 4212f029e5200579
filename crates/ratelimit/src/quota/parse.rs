//! The quota text syntax: `RATE/[COUNT]UNIT [burst N]`.
//!
//! Written to never panic: it only splits at positions found by `char_indices` and
//! does all arithmetic checked.

use std::borrow::Cow;
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
    let visible = without_invisible(input);
    let text = visible.trim();
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

/// `text` with invisible formatting characters turned into spaces.
///
/// Text pasted from a chat carries them unseen: bidi marks around a number in a
/// right-to-left message, a zero-width space or word joiner from a client's formatting,
/// a byte-order mark. The user cannot see them, so they separate tokens like a space
/// instead of making "10/s" fail to parse.
fn without_invisible(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_invisible) {
        Cow::Owned(text.chars().map(|c| if is_invisible(c) { ' ' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Zero-width and bidi formatting characters (Unicode format controls that render as
/// nothing), plus the soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
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

    #[test]
    fn invisible_characters_and_any_whitespace_separate_tokens() {
        let cases: &[(&str, &str)] = &[
            ("\u{200F}10/s\u{200E}", "10/s"),
            ("\u{FEFF}20/min burst 5", "20/min burst 5"),
            ("20/min\u{200B}burst\u{2060}5", "20/min burst 5"),
            ("\u{2067}5/2s\u{2069}", "5/2s"),
            ("10/s\tburst\t3", "10/s burst 3"),
            ("10 /\n s\r\nburst\n3\n", "10/s burst 3"),
            ("10\u{00A0}/\u{00A0}h", "10/h"),
            ("1/500ms\u{202C} burst=3", "1/500ms burst 3"),
        ];
        for &(text, expected) in cases {
            assert_eq!(q(text), q(expected), "{text:?}");
        }
    }

    #[test]
    fn control_characters_and_emoji_are_errors_not_panics() {
        let cases: &[(&str, &str)] = &[
            ("10/s\0", "unexpected text"),
            ("\u{0}10/s", "not a whole number"),
            ("10/👍", "no unit"),
            ("👍/s", "not a whole number"),
            ("10/s burst 5🔥", "not a whole number"),
            ("10/s\u{7}", "unexpected text"),
            ("１０/s", "not a whole number"),
        ];
        for &(text, needle) in cases {
            let message = err(text);
            assert!(message.contains(needle), "{text:?}: {message}");
            assert!(message.contains(&format!("{text:?}")), "error must name the input: {message}");
        }
    }

    /// What chat text holds besides the quota syntax: controls, whitespace of every kind,
    /// zero-width and bidi marks, emoji (with joiners, skin tones, flags and variation
    /// selectors), and any other character at all.
    fn chat_char() -> impl Strategy<Value = char> {
        const SPECIAL: &[char] = &[
            '\0',
            '\t',
            '\n',
            '\r',
            '\u{b}',
            '\u{c}',
            '\u{7f}',
            '\u{85}',
            '\u{a0}',
            '\u{ad}',
            '\u{61c}',
            '\u{180e}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{3000}',
            '\u{feff}',
            '\u{fe0f}',
            '\u{1f44d}',
            '\u{1f3fd}',
            '\u{1f1fa}',
            '\u{1f525}',
            '\u{2764}',
            '\u{ff11}',
            '\u{661}',
            'µ',
            'μ',
            'Μ',
            'İ',
            'K',
        ];
        const SYNTAX: &[char] =
            &['0', '1', '5', '9', '/', ' ', '=', ':', 's', 'm', 'i', 'n', 'h', 'd', 'b', 'u', 'r', 't'];
        prop_oneof![
            3 => any::<char>(),
            3 => proptest::sample::select(SPECIAL),
            4 => proptest::sample::select(SYNTAX),
        ]
    }

    /// Whole tokens of the syntax mixed with the same noise, so that inputs get deep into
    /// the parser rather than failing at the first character.
    fn chat_token() -> impl Strategy<Value = String> {
        const TOKENS: &[&str] = &[
            "10",
            "0",
            "/",
            "s",
            "min",
            "ms",
            "µs",
            "h",
            "2",
            " ",
            "burst",
            "burst=",
            "burst:",
            "5",
            "\u{200b}",
            "\u{200f}",
            "\u{2067}",
            "\u{feff}",
            "\n",
            "\t",
            "\0",
            "\r\n",
            "👍",
            "👨\u{200d}👩\u{200d}👧",
            "🇺🇦",
            "❤\u{fe0f}",
            "👋🏽",
            "18446744073709551616",
            "4294967296",
        ];
        prop_oneof![
            4 => proptest::sample::select(TOKENS).prop_map(str::to_owned),
            1 => chat_char().prop_map(String::from),
        ]
    }

    /// Parsing `text` never panics; what it accepts prints back to text that parses to
    /// the same quota, and what it refuses is an `InvalidQuota` naming `text`.
    fn check_total(text: &str) -> Result<(), TestCaseError> {
        match Quota::parse(text) {
            Ok(quota) => prop_assert_eq!(Quota::parse(&quota.to_string()).ok(), Some(quota), "{:?}", text),
            Err(e) => match e.kind() {
                ErrorKind::InvalidQuota { input, .. } => prop_assert_eq!(input.as_str(), text),
                other => prop_assert!(false, "{:?} gave {:?}", text, other),
            },
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn never_panics(text in "(?s:.){0,40}") {
            check_total(&text)?;
        }

        #[test]
        fn never_panics_on_chat_text(chars in proptest::collection::vec(chat_char(), 0..64)) {
            check_total(&chars.into_iter().collect::<String>())?;
        }

        #[test]
        fn never_panics_on_chat_tokens(tokens in proptest::collection::vec(chat_token(), 0..16)) {
            check_total(&tokens.concat())?;
        }

        #[test]
        fn never_panics_on_very_long_tokens(
            digits in "[0-9]{1,5000}",
            letters in "[a-zA-Zµ]{1,5000}",
            noise in "(?s:.){1,2000}",
            shape in 0usize..6,
        ) {
            let text = match shape {
                0 => format!("{digits}/s"),
                1 => format!("1/{digits}s"),
                2 => format!("1/{letters}"),
                3 => format!("1/s burst {digits}"),
                4 => format!("{digits}/{digits}{letters} burst {digits}"),
                _ => format!("10/s {noise}"),
            };
            check_total(&text)?;
        }

        #[test]
        fn never_panics_on_near_misses(text in "[0-9 ]{0,12}/[0-9 ]{0,6}[a-zµ ]{0,8}( burst[ =:]{0,2}[0-9x]{0,12})?") {
            check_total(&text)?;
        }

        /// Whitespace and invisible marks around any token leave the quota unchanged.
        #[test]
        fn invisible_padding_between_tokens_is_ignored(
            rate in 1u32..,
            count in 1u64..1000,
            unit in proptest::sample::select(&["ns", "us", "ms", "s", "min", "h", "d"][..]),
            burst in proptest::option::of(1u32..),
            pads in proptest::collection::vec("[ \t\n\u{a0}\u{200b}\u{200e}\u{200f}\u{2060}\u{2066}\u{2069}\u{feff}]{0,3}", 7),
        ) {
            let mut text = format!("{}{rate}{}/{}{count}{}{unit}{}", pads[0], pads[1], pads[2], pads[3], pads[4]);
            let mut plain = format!("{rate}/{count}{unit}");
            if let Some(burst) = burst {
                // A word needs at least a space before it.
                text.push_str(&format!(" {}burst{}{burst}{}", pads[5], pads[6], pads[0]));
                plain.push_str(&format!(" burst {burst}"));
            }
            prop_assert_eq!(Quota::parse(&text).ok(), Some(q(&plain)), "{:?}", text);
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
