//! Small helpers shared by the services.

pub(crate) use mltb_pool::redact_url as redact;

/// `bytes` random bytes as lowercase hex (`2 * bytes` characters).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // getrandom only fails when the OS has no entropy source; a counter-based fallback
    // keeps tests running since these values only need to be unique, not secret.
    if getrandom::fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = (nanos >> (i * 8)) as u8);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_the_requested_length_and_varies() {
        let a = random_hex(8);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(8));
    }
}
