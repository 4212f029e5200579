//! Per-path request requirements: HTTP basic auth and required headers.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// What a request for a path must carry.
#[derive(Debug, Clone)]
pub(crate) enum Guard {
    /// `Authorization: Basic …` with these credentials, else `401`.
    Basic(String),
    /// This header with this value, else `403`.
    Header { name: String, value: String },
}

impl Guard {
    pub(crate) fn basic(user: &str, password: &str) -> Self {
        Guard::Basic(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())))
    }

    /// `None` when `headers` satisfy the guard, else the status to answer.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Option<u16> {
        match self {
            Guard::Basic(expected) => {
                let ok = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
                (!ok).then_some(401)
            }
            Guard::Header { name, value } => {
                let ok =
                    headers.get_all(name.as_str()).iter().any(|v| v.to_str().ok() == Some(value.as_str()));
                (!ok).then_some(403)
            }
        }
    }
}

/// Standard base64 with padding (RFC 4648).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }
}
