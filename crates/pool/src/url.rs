//! [`redact_url`]: a connection URL that is safe to log or put in an error message.

/// Query parameters whose values are secrets (compared without case).
const SECRET_PARAMS: [&str; 6] = ["password", "pass", "pwd", "secret", "token", "sslpassword"];

/// `url` with its secrets replaced by `***`, for logs and error messages: the user info
/// of the authority (`user:password@`) and the values of query parameters named
/// `password`, `pass`, `pwd`, `secret`, `token` or `sslpassword`.
///
/// Only the authority (between `://` and the next `/`, `?` or `#`) is searched for `@`,
/// so an `@` in a path or query is left alone. Text that is not a URL comes back
/// unchanged.
///
/// ```
/// use mltb_pool::redact_url;
///
/// assert_eq!(redact_url("redis://:hunter2@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
/// assert_eq!(redact_url("postgres://bot:pw@db/mltb?sslmode=disable"), "postgres://***@db/mltb?sslmode=disable");
/// assert_eq!(redact_url("postgres://db/mltb?user=bot&password=pw"), "postgres://db/mltb?user=bot&password=***");
/// assert_eq!(redact_url("redis://127.0.0.1:6379/0?name=a@b"), "redis://127.0.0.1:6379/0?name=a@b");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end =
        url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => {
            out.push_str("***");
            out.push_str(&url[authority_start + at..authority_end]);
        }
        None => out.push_str(&url[authority_start..authority_end]),
    }
    let rest = &url[authority_end..];
    let Some(q) = rest.find('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(&rest[..=q]);
    let (query, fragment) = match rest[q + 1..].find('#') {
        Some(h) => (&rest[q + 1..q + 1 + h], &rest[q + 1 + h..]),
        None => (&rest[q + 1..], ""),
    };
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) => {
                out.push_str(key);
                out.push_str("=***");
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn user_info_is_hidden() {
        assert_eq!(redact_url("redis://user:pw@host:1/2"), "redis://***@host:1/2");
        assert_eq!(redact_url("redis://user@host"), "redis://***@host");
        // The last `@` of the authority ends the user info (passwords may hold `@`).
        assert_eq!(redact_url("redis://u:p@ss@host"), "redis://***@host");
    }

    #[test]
    fn secret_query_values_are_hidden() {
        assert_eq!(
            redact_url("postgres://h/db?Password=x&user=u&token=t#frag"),
            "postgres://h/db?Password=***&user=u&token=***#frag"
        );
        assert_eq!(redact_url("postgres://h/db?password"), "postgres://h/db?password");
    }

    #[test]
    fn everything_else_is_unchanged() {
        for s in ["", "host:6379", "redis://host", "redis+unix:///tmp/r.sock?db=1", "a@b", "x://@"] {
            let want = if s == "x://@" { "x://***@".to_string() } else { s.to_string() };
            assert_eq!(redact_url(s), want, "{s}");
        }
    }
}
