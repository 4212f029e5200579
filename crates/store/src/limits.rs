//! The longest value the store accepts for each text field, in bytes (UTF-8).
//!
//! Longer values are refused with [`Error::TooLong`], which
//! names the field and its limit, before anything reaches the database. Text may not
//! contain NUL bytes either (PostgreSQL cannot store them in `TEXT`, and the store
//! behaves the same on both backends): [`Error::Invalid`].

use crate::{Error, Result};

/// A task's source: a URL, a magnet link or a `.torrent` path.
pub const SOURCE: usize = 4096;
/// A task's or file's display name; Telegram's own name limits are lower.
pub const NAME: usize = 255;
/// A task's error text.
pub const ERROR: usize = 4096;
/// A task's options, as JSON text.
pub const OPTIONS: usize = 16 * 1024;
/// An aria2 GID (aria2 uses 16 hex digits).
pub const GID: usize = 64;
/// A file's path inside the task's directory, or a part's remote path.
pub const PATH: usize = 4096;
/// A Telegram `file_id`.
pub const FILE_ID: usize = 512;
/// A sent file's probe (a cheap fingerprint), in bytes.
pub const PROBE: usize = 64;
/// A user's upload destination (an rclone remote and path).
pub const UPLOAD_DEST: usize = 1024;
/// A user's name prefix for uploads.
pub const NAME_PREFIX: usize = 255;
/// An audit entry's action (`auth`, `addsudo`, …).
pub const AUDIT_ACTION: usize = 64;
/// An audit entry's detail text.
pub const AUDIT_DETAIL: usize = 4096;
/// An instance id ([`StoreConfig::instance`](crate::StoreConfig::instance)); not empty.
pub const INSTANCE: usize = 64;
/// A role's name ([`Store::acquire_role`](crate::Store::acquire_role)); not empty.
pub const ROLE: usize = 64;

/// Checks `value` for `field` against `limit` and for NUL bytes.
pub(crate) fn check(field: &'static str, value: &str, limit: usize) -> Result<()> {
    if value.len() > limit {
        return Err(Error::TooLong { field, limit, actual: value.len() });
    }
    if let Some(at) = value.find('\0') {
        return Err(Error::Invalid { field, reason: format!("contains a NUL byte at offset {at}") });
    }
    Ok(())
}

/// [`check`] for a value that names something (an instance, a role): not empty either.
pub(crate) fn check_name(field: &'static str, value: &str, limit: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Invalid { field, reason: format!("is empty; expected 1 to {limit} bytes") });
    }
    check(field, value, limit)
}

/// [`check`] for an optional value.
pub(crate) fn check_opt(field: &'static str, value: Option<&str>, limit: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check(field, v, limit))
}

/// Checks that an integer that SQL stores as a signed 64-bit value fits.
pub(crate) fn to_i64(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::Invalid { field, reason: format!("{value} is larger than {}", i64::MAX) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_and_nul_is_refused() {
        assert!(check("f", &"a".repeat(10), 10).is_ok());
        let e = check("task.name", &"a".repeat(11), 10).unwrap_err();
        assert!(matches!(e, Error::TooLong { field: "task.name", limit: 10, actual: 11 }), "{e}");
        // Bytes, not chars: one emoji is four bytes.
        assert!(check("f", "🦀🦀🦀", 11).is_err());
        let e = check("task.error", "a\0b", 10).unwrap_err();
        assert!(e.to_string().contains("task.error") && e.to_string().contains("NUL"), "{e}");
        assert!(to_i64("size", u64::MAX).is_err());
        assert!(check_name("role", "poller", 64).is_ok());
        let e = check_name("role", "", 64).unwrap_err();
        assert!(matches!(&e, Error::Invalid { field: "role", .. }) && e.to_string().contains("empty"), "{e}");
        assert!(matches!(check_name("role", &"r".repeat(65), 64), Err(Error::TooLong { field: "role", .. })));
        assert!(matches!(check_name("role", "a\0", 64), Err(Error::Invalid { field: "role", .. })));
    }
}
