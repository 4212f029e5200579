//! Links inside entities, after tdlib's `LinkManager`: `tg://user?id=N` mentions, custom
//! emoji URLs, and the normalised URL of a `text_link`.
//!
//! `checked` is a simplification of `LinkManager::get_checked_link`: http(s) links (a bare
//! host gets `http://`) come back as `scheme://host[:port]path` with the host lowercased
//! and an empty path written as `/`; `tg:` and `ton:` links are kept; anything else
//! (another scheme, user info, an empty or odd host) is not a link, and the entity is
//! dropped as tdlib drops it.

/// The query value of `key` in `a=1&key=2#frag`.
fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

/// The query of `tg:<host>?…` / `tg://<host>/?…` (lowercased), if `url` has that shape.
fn tg_query(url: &str, host: &str) -> Result<String, TgShape> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("tg:").ok_or(TgShape::Scheme)?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.strip_prefix(host).ok_or(TgShape::Host)?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    rest.strip_prefix('?').map(str::to_owned).ok_or(TgShape::Query)
}

enum TgShape {
    Scheme,
    Host,
    Query,
}

/// The user of a `tg://user?id=N` link (`LinkManager::get_link_user_id`).
pub(super) fn user_id(url: &str) -> Option<i64> {
    let query = tg_query(url, "user").ok()?;
    let id: i64 = query_value(&query, "id")?.parse().ok()?;
    (id > 0).then_some(id)
}

/// The custom emoji of a `tg://emoji?id=N` link, or tdlib's error
/// (`LinkManager::get_link_custom_emoji_id`).
pub(super) fn custom_emoji_id(url: &str) -> Result<i64, String> {
    let query = tg_query(url, "emoji").map_err(|shape| match shape {
        TgShape::Scheme => "Custom emoji URL must have scheme tg".to_owned(),
        TgShape::Host => "Custom emoji URL must have host \"emoji\"".to_owned(),
        TgShape::Query => "Custom emoji URL must have an emoji identifier".to_owned(),
    })?;
    let value = query_value(&query, "id")
        .ok_or_else(|| "Custom emoji URL must have an emoji identifier".to_owned())?;
    match value.parse::<i64>() {
        Ok(id) if id != 0 => Ok(id),
        _ => Err("Invalid custom emoji identifier specified".into()),
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('.')
        && !host.ends_with("..")
        && host.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The normalised URL of a text link, or `None` when tdlib would not link it.
pub(super) fn checked(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    for scheme in ["tg", "ton"] {
        if let Some(rest) = lower.strip_prefix(scheme).and_then(|r| r.strip_prefix(':')) {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let rest_original = &url[url.len() - rest.len()..];
            let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let host = &rest[..host_end];
            return valid_host(host).then(|| format!("{scheme}://{host}{}", &rest_original[host_end..]));
        }
    }
    let (scheme, rest) = if lower.starts_with("http://") {
        ("http", &url["http://".len()..])
    } else if lower.starts_with("https://") {
        ("https", &url["https://".len()..])
    } else if lower.contains("://") {
        return None;
    } else {
        ("http", url)
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if !valid_host(host) {
        return None;
    }
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => format!(":{n}"),
            _ => return None,
        },
        None => String::new(),
    };
    let tail = if tail.starts_with('/') { tail.to_owned() } else { format!("/{tail}") };
    Some(format!("{scheme}://{}{port}{tail}", host.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_emoji() {
        assert_eq!(user_id("tg://user?id=123"), Some(123));
        assert_eq!(user_id("TG:user?x=1&id=42#f"), Some(42));
        assert_eq!(user_id("tg://user?id=abc"), None);
        assert_eq!(user_id("https://t.me/x"), None);
        assert_eq!(custom_emoji_id("tg://emoji?id=77"), Ok(77));
        assert_eq!(custom_emoji_id("https://x").unwrap_err(), "Custom emoji URL must have scheme tg");
        assert_eq!(
            custom_emoji_id("tg://emoji?id=0").unwrap_err(),
            "Invalid custom emoji identifier specified"
        );
    }

    #[test]
    fn links_are_normalised() {
        assert_eq!(checked("https://Example.com").as_deref(), Some("https://example.com/"));
        assert_eq!(checked("example.com/a?b#c").as_deref(), Some("http://example.com/a?b#c"));
        assert_eq!(checked("http://x.test:8080?q").as_deref(), Some("http://x.test:8080/?q"));
        assert_eq!(checked("tg://resolve?domain=x").as_deref(), Some("tg://resolve?domain=x"));
        assert_eq!(checked("ftp://x.test"), None);
        assert_eq!(checked("http://u@x.test"), None);
        assert_eq!(checked(""), None);
        assert_eq!(checked("not a link"), None);
    }
}
