//! Keeping secrets out of what rclone says, and paths on the remote inside the task's
//! folder.

use crate::{ErrorKind, Result};

/// Connection-string parameters whose values are secrets (`:webdav,pass='…':`,
/// `:s3,secret_access_key=…:`); matched as a suffix of the key, case-insensitively.
const SECRET_KEYS: &[&str] = &[
    "pass",
    "password",
    "pass2",
    "secret",
    "token",
    "key",
    "bearer_token",
    "client_secret",
    "secret_access_key",
    "session_token",
    "sas_url",
    "account_key",
    "private_key",
    "service_account_credentials",
];

/// What replaces a secret.
pub(super) const REDACTED: &str = "***";

/// `text` with the values of secret connection-string parameters (`pass=…`, `token=…`)
/// and the passwords of URLs (`http://user:pw@host`) replaced by `***`.
pub(crate) fn redact(text: &str) -> String {
    redact_url_passwords(&redact_params(text))
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|k| key == *k || key.ends_with(&format!("_{k}")))
}

/// Replaces the value of each `key=value` whose key is a secret. A value runs to the next
/// `,`, `:`, whitespace or quote, or, when it starts with a quote, to the matching quote
/// (rclone doubles a quote to escape it).
fn redact_params(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            i += 1;
            continue;
        }
        // Key characters are ASCII, so the key starts one byte after the last other one.
        let key_start = text.as_bytes()[..i]
            .iter()
            .rposition(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .map_or(0, |p| p + 1);
        let key = &text[key_start..i];
        if key.is_empty() || !is_secret_key(key) {
            i += 1;
            continue;
        }
        let value_start = i + 1;
        let value_end = value_end(bytes, value_start);
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = value_end;
        i = value_end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(&quote @ (b'\'' | b'"')) => {
            let mut j = start + 1;
            while j < bytes.len() {
                if bytes[j] == quote {
                    if bytes.get(j + 1) == Some(&quote) {
                        j += 2;
                        continue;
                    }
                    return j + 1;
                }
                j += 1;
            }
            bytes.len()
        }
        _ => bytes[start..]
            .iter()
            .position(|&b| matches!(b, b',' | b':' | b'\'' | b'"') || b.is_ascii_whitespace())
            .map_or(bytes.len(), |p| start + p),
    }
}

/// Replaces the password in each `scheme://user:password@host`.
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // An authority ends before the next URL's `://` too: ending at its `/` would take
        // that `://` apart, and the next URL's password with it.
        let authority_end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '\'' | '"') || c.is_whitespace())
            .unwrap_or(tail.len())
            .min(tail.find("://").unwrap_or(tail.len()));
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Checks a path that goes on the remote: relative, with no `..` component and no NUL.
/// An empty `path` is allowed when `allow_empty` (the remote's root).
pub(super) fn check_remote_path(setting: &'static str, path: &str, allow_empty: bool) -> Result<()> {
    let problem = if path.is_empty() && !allow_empty {
        Some("a non-empty relative path")
    } else if path.starts_with('/') || path.starts_with('\\') {
        Some("a relative path (no leading `/`)")
    } else if path.split(['/', '\\']).any(|c| c == "..") {
        Some("a path without `..` components")
    } else if path.contains('\0') {
        Some("a path without NUL bytes")
    } else {
        None
    };
    match problem {
        Some(expected) => Err(ErrorKind::Config {
            setting,
            value: format!("{:?}", redact(path)),
            expected: expected.to_string(),
        }
        .into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_parameters_are_redacted() {
        assert_eq!(
            redact(
                r#"Failed to create file system for destination ":webdav,url='http://127.0.0.1:1',pass='s3cr:et':Mirror/""#
            ),
            r#"Failed to create file system for destination ":webdav,url='http://127.0.0.1:1',pass=***:Mirror/""#
        );
        assert_eq!(
            redact(":s3,access_key_id=AK,secret_access_key=SK:b/p"),
            ":s3,access_key_id=AK,secret_access_key=***:b/p"
        );
        assert_eq!(redact(":drive,token=\"{\"\"a\"\":1}\",x=1:"), ":drive,token=***,x=1:");
        assert_eq!(redact("user=bob password=hunter2 size=3"), "user=bob password=*** size=3");
        assert_eq!(redact("pass=unterminated'quote"), "pass=***'quote");
        assert_eq!(redact("pass='never closed"), "pass=***");
        assert_eq!(redact("a=b, bypass=1"), "a=b, bypass=1");
        assert_eq!(redact("nothing = here"), "nothing = here");
        assert_eq!(redact("=x pass="), "=x pass=***");
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact("Propfind \"http://u:pw@127.0.0.1:8/a\": refused"),
            "Propfind \"http://u:***@127.0.0.1:8/a\": refused"
        );
        assert_eq!(redact("ftp://anon@h/x and https://h/y"), "ftp://anon@h/x and https://h/y");
        assert_eq!(redact(":webdav,url='http://a:b@h':p"), ":webdav,url='http://a:***@h':p");
        // Found by the mirror_destination fuzz target: a `://` whose authority ran into
        // the next URL's scheme hid that URL from redaction.
        assert_eq!(redact("a://b,url=http://u:hunter2@h/"), "a://b,url=http://u:***@h/");
        assert_eq!(redact("x://http://u:hunter2@h/"), "x://http://u:***@h/");
        let t =
            crate::mirror::MirrorTarget::parse(":local:/x://y,token='a,url='http://u:hunter2@h/'").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"), "{t:?}");
    }

    #[test]
    fn remote_paths_must_stay_relative() {
        assert!(check_remote_path("path", "", true).is_ok());
        assert!(check_remote_path("path", "Mirror/ünï code/a b.txt", false).is_ok());
        assert!(check_remote_path("path", "a..b/c..", false).is_ok());
        for bad in ["", "/etc/passwd", "a/../../b", "..", "a\\..\\b", "\\x", "a\0b"] {
            let err = check_remote_path("file", bad, false).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Config { setting: "file", .. }), "{bad:?}: {err}");
        }
    }

    proptest::proptest! {
        /// Whatever the value, quoted or not, it does not survive redaction; and no input
        /// makes redaction panic.
        #[test]
        fn secret_values_never_survive(
            value in "[A-Za-z0-9!#%&()*+./;<>?@^_{|}~=-]{1,24}",
            quoted in proptest::prelude::any::<bool>(),
            key in "(pass|password|token|client_secret|secret_access_key)",
            noise in ".{0,40}",
        ) {
            let secret = format!("Zq{value}");
            let shown = if quoted { format!("'{}'", secret) } else { secret.clone() };
            let text = format!("{noise} :webdav,url='http://h',{key}={shown}:Mirror/a.txt {noise}");
            let redacted = redact(&text);
            proptest::prop_assert!(!redacted.contains(&secret), "{redacted}");
            let _ = redact(&noise);
        }
    }
}
