//! Value forms the config file and the environment share: sizes, durations and quotas
//! written as text.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes, written as a whole number of bytes (`50000000`) or as text with a
/// unit: `b`, decimal `kb` `mb` `gb` `tb` (powers of 1000) or binary `kib` `mib` `gib`
/// `tib` (powers of 1024), e.g. `"50MB"`, `"2000MiB"`, `"1.5GiB"`. Units are decimal here,
/// as Telegram states its limits (50 MB is 50 000 000 bytes), unlike the `-sp` flag of
/// the Python bot, whose `mb` means MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// Parses `text` (see [`Size`]); `None` when it is not a size.
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.trim().to_ascii_lowercase();
        let split = lower.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(lower.len());
        let (number, unit) = lower.split_at(split);
        let multiplier: u64 = match unit.trim_start() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty()
            || frac.contains('.')
            || frac.len() > 9
            || (number.contains('.') && frac.is_empty())
        {
            return None;
        }
        let mut bytes = whole.parse::<u64>().ok()?.checked_mul(multiplier)?;
        if !frac.is_empty() {
            let digits: u64 = frac.parse().ok()?;
            let scale = 10u64.pow(u32::try_from(frac.len()).ok()?);
            let extra = u128::from(digits) * u128::from(multiplier) / u128::from(scale);
            bytes = bytes.checked_add(u64::try_from(extra).ok()?)?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a size: a number of bytes, or text such as "50MB" or "2000MiB""#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("a size cannot be negative, got {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).ok_or_else(|| {
                    E::custom(format!(r#"expected a size such as "50MB", "2000MiB" or 50000000, got "{v}""#))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration, written as whole seconds (`30`) or as text with a unit: `ms`, `s`, `m`,
/// `h`, `d` (`"500ms"`, `"10s"`, `"5m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// Parses `text` (see [`Span`]); `None` when it is not a duration.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().ok()?;
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        Some(Self(d))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            s.serialize_str(&format!("{}s", ms / 1000))
        } else {
            s.serialize_str(&format!("{ms}ms"))
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration: whole seconds, or text such as "500ms", "10s" or "5m""#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(|s| Span(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("a duration cannot be negative, got {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span(Duration::from_secs(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                Span::parse(v).ok_or_else(|| {
                    E::custom(format!(r#"expected a duration such as "500ms", "10s" or "5m", got "{v}""#))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A rate quota as text (`"10/1s"`, `"20/1m burst 5"`), checked by
/// [`mltb_ratelimit::Quota::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaText {
    text: String,
    quota: mltb_ratelimit::Quota,
}

impl QuotaText {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        mltb_ratelimit::Quota::parse(text)
            .map(|quota| Self { text: text.trim().to_owned(), quota })
            .map_err(|e| e.to_string())
    }

    /// The quota.
    pub fn quota(&self) -> mltb_ratelimit::Quota {
        self.quota
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for QuotaText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for QuotaText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        QuotaText::parse(&text)
            .map_err(|e| de::Error::custom(format!(r#"expected a quota such as "10/1s", got "{text}": {e}"#)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_decimal_or_binary_by_unit() {
        assert_eq!(Size::parse("50MB"), Some(Size(50_000_000)));
        assert_eq!(Size::parse("2000MiB"), Some(Size(2000 << 20)));
        assert_eq!(Size::parse("1.5 GiB"), Some(Size(1_610_612_736)));
        assert_eq!(Size::parse("0"), Some(Size(0)));
        for bad in ["", "MB", "1.", ".5mb", "1..2mb", "5 parsecs", "-1", "99999999999999999999"] {
            assert_eq!(Size::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn spans_take_a_unit() {
        assert_eq!(Span::parse("500ms"), Some(Span(Duration::from_millis(500))));
        assert_eq!(Span::parse("10"), Some(Span(Duration::from_secs(10))));
        assert_eq!(Span::parse("5m"), Some(Span(Duration::from_secs(300))));
        for bad in ["", "s", "1.5s", "10 fortnights", "-3s"] {
            assert_eq!(Span::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn quotas_are_checked() {
        assert!(QuotaText::parse("10/1s").is_ok());
        assert!(QuotaText::parse("ten a second").is_err());
    }
}
