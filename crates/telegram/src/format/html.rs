//! HTML escaping and splitting text into parts of at most 4096 characters as Telegram
//! counts them: UTF-16 code units of the text *after* entity parsing (tags do not count,
//! `&amp;` counts as one).

/// Telegram's limit for a message's text, in UTF-16 code units after entity parsing.
pub const MAX_MESSAGE_UNITS: usize = 4096;

/// Escapes `&`, `<` and `>` for Telegram's HTML parse mode.
///
/// ```
/// assert_eq!(mltb_telegram::format::escape("a<b> & c"), "a&lt;b&gt; &amp; c");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for an attribute value in double quotes (`href="…"`): also `"`.
pub fn escape_attr(text: &str) -> String {
    escape(text).replace('"', "&quot;")
}

/// Length in UTF-16 code units, as Telegram counts message length.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text (one character or one entity) of this many UTF-16 units.
    Text(usize),
    Open,
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    raw: &'a str,
    kind: Kind,
    /// The tag's name (lowercase ASCII expected), empty for text.
    name: &'a str,
}

fn decode_entity(entity: &str) -> Option<char> {
    let body = entity.strip_prefix('&')?.strip_suffix(';')?;
    match body {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        _ => {
            let num = body.strip_prefix('#')?;
            let value = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(value)
        }
    }
}

/// Splits Telegram HTML into tokens; malformed markup degrades to text, never a panic.
fn tokenize(html: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
        {
            let raw = &rest[..=end];
            let inner = &raw[1..raw.len() - 1];
            let (closing, inner) = match inner.strip_prefix('/') {
                Some(i) => (true, i),
                None => (false, inner),
            };
            let name_len =
                inner.find(|c: char| !c.is_ascii_alphanumeric() && c != '-').unwrap_or(inner.len());
            if name_len > 0 {
                let name = &inner[..name_len];
                tokens.push(Token { raw, kind: if closing { Kind::Close } else { Kind::Open }, name });
                rest = &rest[end + 1..];
                continue;
            }
        }
        if c == '&'
            && let Some(end) = rest.bytes().take(12).position(|b| b == b';')
            && let Some(decoded) = decode_entity(&rest[..=end])
        {
            tokens.push(Token { raw: &rest[..=end], kind: Kind::Text(decoded.len_utf16()), name: "" });
            rest = &rest[end + 1..];
            continue;
        }
        let n = c.len_utf8();
        tokens.push(Token { raw: &rest[..n], kind: Kind::Text(c.len_utf16()), name: "" });
        rest = &rest[n..];
    }
    tokens
}

/// The text Telegram shows for `html`: tags removed, entities decoded.
///
/// ```
/// assert_eq!(mltb_telegram::format::text_content("<b>a &amp; b</b>"), "a & b");
/// ```
pub fn text_content(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for t in tokenize(html) {
        if let Kind::Text(_) = t.kind {
            match decode_entity(t.raw) {
                Some(c) if t.raw.len() > 1 => out.push(c),
                _ => out.push_str(t.raw),
            }
        }
    }
    out
}

/// Splits plain text (no parse mode) into parts of at most `limit` UTF-16 units,
/// preferring line breaks, then spaces. Concatenating the parts gives `text` back.
///
/// ```
/// let parts = mltb_telegram::format::split_text("one\ntwo\nthree", 8);
/// assert_eq!(parts, ["one\ntwo\n", "three"]);
/// ```
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let tokens: Vec<Token<'_>> = text
        .char_indices()
        .map(|(i, c)| Token { raw: &text[i..i + c.len_utf8()], kind: Kind::Text(c.len_utf16()), name: "" })
        .collect();
    split_tokens(&tokens, limit)
}

/// Splits Telegram HTML into parts of at most `limit` UTF-16 units of text each
/// ([`MAX_MESSAGE_UNITS`] for a message), never inside an entity (`&amp;`) or a tag,
/// preferring line breaks, then spaces. Tags open at a cut are closed at the end of the
/// part and reopened at the start of the next, so every part is well-formed on its own.
///
/// ```
/// use mltb_telegram::format::{split_html, text_content};
/// let parts = split_html("<b>bold line\nmore bold</b>", 10);
/// assert_eq!(parts, ["<b>bold line\n</b>", "<b>more bold</b>"]);
/// assert_eq!(parts.iter().map(|p| text_content(p)).collect::<String>(), "bold line\nmore bold");
/// ```
pub fn split_html(html: &str, limit: usize) -> Vec<String> {
    split_tokens(&tokenize(html), limit)
}

#[derive(Clone)]
struct Break<'a> {
    at: usize,
    stack: Vec<Token<'a>>,
}

fn split_tokens(tokens: &[Token<'_>], limit: usize) -> Vec<String> {
    // One character may take two units; a smaller limit could not make progress.
    let limit = limit.max(2);
    let mut parts = Vec::new();
    let mut stack: Vec<Token<'_>> = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let prefix: String = stack.iter().map(|t| t.raw).collect();
        let mut units = 0;
        let mut has_text = false;
        let mut newline: Option<Break<'_>> = None;
        let mut space: Option<Break<'_>> = None;
        let mut cut: Option<Break<'_>> = None;
        let mut i = start;
        while i < tokens.len() {
            let t = tokens[i];
            match t.kind {
                Kind::Open => stack.push(t),
                Kind::Close => {
                    if let Some(pos) = stack.iter().rposition(|o| o.name.eq_ignore_ascii_case(t.name)) {
                        stack.truncate(pos);
                    }
                }
                Kind::Text(n) => {
                    if has_text && units + n > limit {
                        let best = newline.take().or(space.take());
                        cut = Some(best.unwrap_or(Break { at: i, stack: stack.clone() }));
                        break;
                    }
                    units += n;
                    has_text = true;
                    if t.raw == "\n" {
                        newline = Some(Break { at: i + 1, stack: stack.clone() });
                    } else if t.raw == " " {
                        space = Some(Break { at: i + 1, stack: stack.clone() });
                    }
                }
            }
            i += 1;
        }
        let Some(Break { mut at, stack: mut open }) = cut else {
            let mut part = prefix;
            part.extend(tokens[start..].iter().map(|t| t.raw));
            parts.push(part);
            break;
        };
        // Closing tags right after the cut belong to this part.
        while let Some(t) = tokens.get(at).filter(|t| t.kind == Kind::Close) {
            if let Some(pos) = open.iter().rposition(|o| o.name.eq_ignore_ascii_case(t.name)) {
                open.truncate(pos);
            }
            at += 1;
        }
        let mut part = prefix;
        part.extend(tokens[start..at].iter().map(|t| t.raw));
        part.extend(open.iter().rev().map(|t| format!("</{}>", t.name)));
        parts.push(part);
        stack = open;
        start = at;
    }
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn units(part: &str) -> usize {
        utf16_len(&text_content(part))
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_attr("a\"<&"), "a&quot;&lt;&amp;");
        assert_eq!(text_content(&escape("<a> & \"q\"")), "<a> & \"q\"");
    }

    #[test]
    fn entities_count_as_one_and_are_never_cut() {
        let html = "&amp;".repeat(10);
        let parts = split_html(&html, 3);
        assert_eq!(parts, ["&amp;&amp;&amp;", "&amp;&amp;&amp;", "&amp;&amp;&amp;", "&amp;"]);
    }

    #[test]
    fn surrogate_pairs_count_two() {
        let parts = split_text("😀😀😀", 4);
        assert_eq!(parts, ["😀😀", "😀"]);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(split_html("&#x1F600;&#128512;a", 2), ["&#x1F600;", "&#128512;", "a"]);
    }

    #[test]
    fn tags_closed_and_reopened_with_attributes() {
        let html = "<a href=\"https://x\"><b>abcdef</b></a>";
        let parts = split_html(html, 3);
        assert_eq!(parts, ["<a href=\"https://x\"><b>abc</b></a>", "<a href=\"https://x\"><b>def</b></a>"]);
    }

    #[test]
    fn prefers_newline_then_space() {
        assert_eq!(split_text("aa bb\ncc dd", 8), ["aa bb\n", "cc dd"]);
        assert_eq!(split_text("aa bb cc", 6), ["aa bb ", "cc"]);
        assert_eq!(split_text("abcdef", 4), ["abcd", "ef"]);
    }

    #[test]
    fn malformed_markup_is_text() {
        for html in ["<", "a < b", "&", "&bogus;", "</b>x", "<b>x", "<>", "&#xZZ;", "&#99999999;"] {
            let parts = split_html(html, 2);
            assert!(parts.iter().all(|p| units(p) <= 2), "{html:?} -> {parts:?}");
        }
        assert_eq!(text_content("a < b &bogus;"), "a < b &bogus;");
    }

    #[test]
    fn limit_is_4096_for_long_text() {
        let text = "line of text\n".repeat(1000);
        let parts = split_html(&escape(&text), MAX_MESSAGE_UNITS);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| units(p) <= MAX_MESSAGE_UNITS && p.ends_with('\n')));
    }

    fn html_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z ]{0,8}",
            Just("\n".to_string()),
            Just("&amp;".to_string()),
            Just("&lt;".to_string()),
            Just("😀".to_string()),
            Just("é".to_string()),
        ];
        let node = prop_oneof![
            piece.clone(),
            (prop::sample::select(vec!["b", "i", "code", "u"]), prop::collection::vec(piece, 0..6))
                .prop_map(|(tag, inner)| format!("<{tag}>{}</{tag}>", inner.concat())),
            prop::collection::vec("[a-z]{0,5}", 0..4).prop_map(|inner| format!(
                "<a href=\"https://e.x/?a=1&amp;b=2\"><b>{}</b></a>",
                inner.concat()
            )),
        ];
        prop::collection::vec(node, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn parts_fit_keep_content_and_balance(html in html_strategy(), limit in 2usize..40) {
            let parts = split_html(&html, limit);
            for p in &parts {
                prop_assert!(units(p) <= limit, "part {p:?} over {limit}");
                // Balanced: every tag opened in the part is closed in it, in order.
                let mut stack = Vec::new();
                for t in tokenize(p) {
                    match t.kind {
                        Kind::Open => stack.push(t.name),
                        Kind::Close => prop_assert_eq!(stack.pop(), Some(t.name), "in {:?}", p),
                        Kind::Text(_) => {}
                    }
                }
                prop_assert!(stack.is_empty(), "unclosed tags in {:?}", p);
                // No entity was cut: the part's raw text never ends inside one.
                prop_assert!(!p.contains("&am<") && !p.ends_with("&am") && !p.ends_with('&'));
            }
            let joined: String = parts.iter().map(|p| text_content(p)).collect();
            prop_assert_eq!(joined, text_content(&html));
        }

        #[test]
        fn plain_split_round_trips(text in "\\PC{0,300}", limit in 2usize..50) {
            let parts = split_text(&text, limit);
            prop_assert!(parts.iter().all(|p| utf16_len(p) <= limit));
            prop_assert_eq!(parts.concat(), text);
        }
    }
}
