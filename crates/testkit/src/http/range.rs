//! The `Range` request header, single byte ranges only (RFC 9110 §14).

/// Which part of a representation of `len` bytes to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// The whole body, status 200: no `Range`, one that is invalid or not in bytes, or
    /// several ranges (which this server does not split into multipart bodies).
    Full,
    /// Bytes `start..=end`, status 206.
    Partial { start: u64, end: u64 },
    /// Nothing of the body satisfies the range, status 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value against a body of `len` bytes.
pub(crate) fn parse(header: Option<&str>, len: u64) -> ByteRange {
    let Some(value) = header else { return ByteRange::Full };
    let value = value.trim();
    let Some((unit, spec)) = value.split_once('=') else { return ByteRange::Full };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return ByteRange::Full };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `bytes=-n`: the last n bytes.
        let Some(suffix) = number(last) else { return ByteRange::Full };
        if suffix == 0 || len == 0 {
            return ByteRange::Unsatisfiable;
        }
        return ByteRange::Partial { start: len.saturating_sub(suffix), end: len - 1 };
    }
    let Some(start) = number(first) else { return ByteRange::Full };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            // `bytes=5-2` or garbage: an invalid range is ignored.
            _ => return ByteRange::Full,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Partial { start, end: end.min(len - 1) }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse(None, 10), Full);
        assert_eq!(parse(Some("bytes=0-3"), 10), Partial { start: 0, end: 3 });
        assert_eq!(parse(Some("bytes=2-"), 10), Partial { start: 2, end: 9 });
        assert_eq!(parse(Some("bytes=-4"), 10), Partial { start: 6, end: 9 });
        assert_eq!(parse(Some("bytes=-40"), 10), Partial { start: 0, end: 9 });
        assert_eq!(parse(Some("bytes=5-100"), 10), Partial { start: 5, end: 9 });
        assert_eq!(parse(Some("Bytes = 1-1"), 10), Partial { start: 1, end: 1 });
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(parse(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=10-20"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-5"), 0), Unsatisfiable);
    }

    #[test]
    fn ignored_ranges() {
        assert_eq!(parse(Some("bytes=0-1,4-5"), 10), Full);
        assert_eq!(parse(Some("items=0-1"), 10), Full);
        assert_eq!(parse(Some("bytes=5-2"), 10), Full);
        assert_eq!(parse(Some("bytes=a-b"), 10), Full);
        assert_eq!(parse(Some("bytes=+1-2"), 10), Full);
        assert_eq!(parse(Some("bytes"), 10), Full);
        assert_eq!(parse(Some("bytes=-"), 10), Full);
        assert_eq!(parse(Some("bytes=99999999999999999999999-"), 10), Full);
    }
}
