//! File names in `Content-Disposition` (RFC 6266 with RFC 5987 for non-ASCII names) and
//! percent-encoding of URL paths.

/// `attachment; filename="…"`, plus `filename*=UTF-8''…` when `name` is not plain ASCII.
pub(crate) fn content_disposition(name: &str) -> String {
    let plain = name.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
    let fallback: String =
        name.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '_' }).collect();
    let quoted = fallback.replace('\\', "\\\\").replace('"', "\\\"");
    if plain {
        format!("attachment; filename=\"{quoted}\"")
    } else {
        format!("attachment; filename=\"{quoted}\"; filename*=UTF-8''{}", encode_attr(name))
    }
}

/// RFC 5987 `value-chars`: `attr-char` as is, every other byte as `%XX`.
fn encode_attr(s: &str) -> String {
    percent_encode(s, |b| b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b))
}

/// A URL path with everything but unreserved characters and `/` percent-encoded.
pub(crate) fn encode_path(path: &str) -> String {
    percent_encode(path, |b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
}

fn percent_encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes in a request path; a malformed escape is kept literally.
/// `None` when the decoded bytes are not UTF-8.
pub(crate) fn decode_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_names_are_quoted() {
        assert_eq!(content_disposition("report.pdf"), r#"attachment; filename="report.pdf""#);
        assert_eq!(content_disposition(r#"a "b" \c.txt"#), r#"attachment; filename="a \"b\" \\c.txt""#);
    }

    #[test]
    fn non_ascii_names_get_an_rfc5987_form_and_an_ascii_fallback() {
        assert_eq!(
            content_disposition("naïve €.txt"),
            r#"attachment; filename="na_ve _.txt"; filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt"#
        );
        assert_eq!(content_disposition("a\nb"), "attachment; filename=\"a_b\"; filename*=UTF-8''a%0Ab");
    }

    #[test]
    fn paths_round_trip() {
        let path = "/dir/naïve file%.bin";
        let encoded = encode_path(path);
        assert_eq!(encoded, "/dir/na%C3%AFve%20file%25.bin");
        assert_eq!(decode_path(&encoded).as_deref(), Some(path));
        assert_eq!(decode_path("/a%zz%4").as_deref(), Some("/a%zz%4"));
        assert_eq!(decode_path("/%FF"), None);
    }
}
