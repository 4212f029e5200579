//! Sizes in flags: `500mb`, `2gb`, `1.5g`, `4000000000`.

/// Parses a size. Units are **binary**, as the Python bot's are: `kb`/`k`/`kib` = 1024,
/// `mb`/`m`/`mib` = 1024², `gb`/`g`/`gib` = 1024³, `tb`/`t`/`tib` = 1024⁴; `b` or no unit
/// is bytes. Case does not matter; a decimal fraction is allowed (`1.5gb`), and the result
/// is rounded down to whole bytes. Zero is refused.
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let multiplier: u64 = match unit.trim_start() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut bytes = whole.checked_mul(multiplier)?;
    if !frac.is_empty() {
        let digits: u64 = frac.parse().ok()?;
        let scale = 10u64.pow(u32::try_from(frac.len()).ok()?);
        let extra = u128::from(digits) * u128::from(multiplier) / u128::from(scale);
        bytes = bytes.checked_add(u64::try_from(extra).ok()?)?;
    }
    (bytes > 0).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500mb"), Some(500 << 20));
        assert_eq!(parse_size("2GB"), Some(2 << 30));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("4000000000"), Some(4_000_000_000));
        assert_eq!(parse_size("10 kb"), Some(10_240));
        assert_eq!(parse_size("7b"), Some(7));
        for bad in
            ["", "abc", "0", "0mb", "1.", ".5g", "1.2.3m", "5xb", "99999999999999999999", "20000000000tb"]
        {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
