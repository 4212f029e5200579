//! `parse_mode=HTML`: a port of tdlib's `parse_html` and `decode_html_entity`
//! (`td/telegram/MessageEntity.cpp`). Errors carry tdlib's wording and byte offsets into
//! the UTF-8 text.
//!
//! As in tdlib, a `&` that starts no known character reference stays a literal `&`
//! (only `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric references are decoded), while a
//! bare `<` always starts a tag, so `a < b` fails with `Unsupported start tag ""`.

use super::{Entity, FormattedText, Kind, at, is_space, link, sort, utf16_units};

struct Open {
    tag: String,
    argument: String,
    /// UTF-16 offset of the entity in the output.
    offset: i32,
    /// Byte position of the entity's start in the output.
    begin: usize,
}

const TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "span",
    "pre",
    "code",
    "blockquote",
];

/// Decodes the character reference at `*pos` (which holds `&`). Returns the code point and
/// moves `*pos` past it (and past a `;`), or returns `None` and leaves `*pos` alone when
/// tdlib would keep the `&` as text.
fn decode_entity(text: &[u8], pos: &mut usize) -> Option<u32> {
    let start = *pos;
    let mut end = start + 1;
    let code: u32;
    if at(text, start + 1) == b'#' {
        end += 1;
        let mut value: u32 = 0;
        if at(text, start + 2) == b'x' {
            end += 1;
            while let Some(d) = (at(text, end) as char).to_digit(16) {
                value = value.wrapping_mul(16).wrapping_add(d);
                end += 1;
            }
        } else {
            while at(text, end).is_ascii_digit() {
                value = value.wrapping_mul(10).wrapping_add(u32::from(at(text, end) - b'0'));
                end += 1;
            }
        }
        if value == 0 || value >= 0x10ffff || end - start >= 10 {
            return None;
        }
        code = value;
    } else {
        while at(text, end).is_ascii_alphabetic() {
            end += 1;
        }
        code = match &text[start + 1..end] {
            b"lt" => u32::from(b'<'),
            b"gt" => u32::from(b'>'),
            b"amp" => u32::from(b'&'),
            b"quot" => u32::from(b'"'),
            _ => return None,
        };
    }
    *pos = if at(text, end) == b';' { end + 1 } else { end };
    Some(code)
}

/// Appends `code` as UTF-8, surrogates included (tdlib writes them as three bytes and
/// rejects the text afterwards).
fn push_code_point(out: &mut Vec<u8>, code: u32) {
    match char::from_u32(code) {
        Some(c) => {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        None => {
            // 0xD800..=0xDFFF: the generic three-byte form, invalid UTF-8 on purpose.
            out.push(0xe0 | (code >> 12) as u8);
            out.push(0x80 | ((code >> 6) & 0x3f) as u8);
            out.push(0x80 | (code & 0x3f) as u8);
        }
    }
}

fn lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_lowercase()
}

const INVALID_AFTER_DECODING: &str = "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units";

pub(super) fn parse(input: &str) -> Result<FormattedText, String> {
    let text = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut entities: Vec<Raw> = Vec::new();
    let mut utf16: i32 = 0;
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c == b'&' {
            let mut pos = i;
            if let Some(code) = decode_entity(text, &mut pos) {
                utf16 += if code > 0xffff { 2 } else { 1 };
                push_code_point(&mut out, code);
                i = pos;
                continue;
            }
        }
        if c != b'<' {
            utf16 += utf16_units(c);
            out.push(c);
            i += 1;
            continue;
        }
        let begin = i;
        i += 1;
        if at(text, i) != b'/' {
            while !is_space(at(text, i)) && at(text, i) != b'>' {
                i += 1;
            }
            if at(text, i) == 0 {
                return Err(format!("Unclosed start tag at byte offset {begin}"));
            }
            let tag = lower(&text[begin + 1..i]);
            if !TAGS.contains(&tag.as_str()) {
                return Err(format!("Unsupported start tag \"{tag}\" at byte offset {begin}"));
            }
            let argument = attributes(text, &mut i, &tag, begin)?;
            if tag == "span" && argument != "spoiler" {
                return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"));
            }
            stack.push(Open { tag, argument, offset: utf16, begin: out.len() });
            i += 1; // past '>'
            continue;
        }
        // an end tag
        let Some(top) = stack.last() else {
            return Err(format!("Unexpected end tag at byte offset {begin}"));
        };
        while !is_space(at(text, i)) && at(text, i) != b'>' {
            i += 1;
        }
        let end_tag = lower(&text[(begin + 2).min(i)..i]);
        while is_space(at(text, i)) && at(text, i) != 0 {
            i += 1;
        }
        if at(text, i) != b'>' {
            return Err(format!("Unclosed end tag at byte offset {begin}"));
        }
        if !end_tag.is_empty() && end_tag != top.tag {
            return Err(format!(
                "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{end_tag}>\"",
                top.tag
            ));
        }
        let top = stack.pop().expect("checked above");
        if utf16 > top.offset {
            close(&mut entities, top, utf16, &out)?;
        }
        i += 1; // past '>'
    }
    if let Some(top) = stack.last() {
        return Err(format!("Can't find end tag corresponding to start tag \"{}\"", top.tag));
    }
    let mut entities: Vec<Entity> = entities.into_iter().map(|raw| raw.entity).collect();
    sort(&mut entities);
    let text = String::from_utf8(out).map_err(|_| INVALID_AFTER_DECODING.to_owned())?;
    Ok(FormattedText { text, entities })
}

/// Reads the attributes of a start tag up to its `>` (left at `*i`); returns the argument
/// the tag keeps (`href`, a language, the span class, the emoji id, `expandable`).
fn attributes(text: &[u8], i: &mut usize, tag: &str, begin: usize) -> Result<String, String> {
    let mut argument = String::new();
    while at(text, *i) != b'>' {
        while at(text, *i) != 0 && is_space(at(text, *i)) {
            *i += 1;
        }
        if at(text, *i) == b'>' {
            break;
        }
        let name_begin = *i;
        while !is_space(at(text, *i)) && !matches!(at(text, *i), b'=' | b'>' | b'/' | b'"' | b'\'') {
            *i += 1;
        }
        let name = &text[name_begin..*i];
        if name.is_empty() {
            return Err(format!("Empty attribute name in the tag \"{tag}\" at byte offset {begin}"));
        }
        while at(text, *i) != 0 && is_space(at(text, *i)) {
            *i += 1;
        }
        if at(text, *i) != b'=' {
            if at(text, *i) == 0 {
                return Err(format!("Unclosed start tag \"{tag}\" at byte offset {begin}"));
            }
            if tag == "blockquote" && name == b"expandable" {
                argument = "1".into();
            }
            continue;
        }
        *i += 1;
        while at(text, *i) != 0 && is_space(at(text, *i)) {
            *i += 1;
        }
        if at(text, *i) == 0 {
            return Err(format!("Unclosed start tag \"{tag}\" at byte offset {begin}"));
        }
        let value = if at(text, *i) != b'\'' && at(text, *i) != b'"' {
            // a name token: letters, digits, periods, hyphens; case-insensitive
            let token_begin = *i;
            while at(text, *i).is_ascii_alphanumeric() || matches!(at(text, *i), b'.' | b'-') {
                *i += 1;
            }
            let token = lower(&text[token_begin..*i]);
            if !is_space(at(text, *i)) && at(text, *i) != b'>' {
                return Err(format!("Unexpected end of name token at byte offset {token_begin}"));
            }
            token
        } else {
            let quote = at(text, *i);
            *i += 1;
            let mut value = Vec::new();
            while at(text, *i) != quote && at(text, *i) != 0 {
                if at(text, *i) == b'&' {
                    let mut pos = *i;
                    if let Some(code) = decode_entity(text, &mut pos) {
                        push_code_point(&mut value, code);
                        *i = pos;
                        continue;
                    }
                }
                value.push(at(text, *i));
                *i += 1;
            }
            if at(text, *i) == quote {
                *i += 1;
            }
            String::from_utf8_lossy(&value).into_owned()
        };
        if at(text, *i) == 0 {
            return Err(format!("Unclosed start tag at byte offset {begin}"));
        }
        match (tag, name) {
            ("a", b"href") | ("tg-emoji", b"emoji-id") => argument = value,
            ("code", b"class") if value.starts_with("language-") => {
                argument = value["language-".len()..].into()
            }
            ("span", b"class") if value.starts_with("tg-") => argument = value["tg-".len()..].into(),
            ("blockquote", b"expandable") => argument = "1".into(),
            _ => {}
        }
    }
    Ok(argument)
}

/// An entity while parsing, with the language a `<code>` tag carried: tdlib keeps it on the
/// code entity until an enclosing `<pre>` of the same span turns the pair into `pre` with
/// a language, and drops it otherwise.
struct Raw {
    entity: Entity,
    code_language: String,
}

/// Turns a closed tag into its entity, as the end-tag branch of `parse_html` does.
fn close(entities: &mut Vec<Raw>, top: Open, utf16: i32, out: &[u8]) -> Result<(), String> {
    let offset = top.offset;
    let length = utf16 - offset;
    let same_span = |e: &Entity| e.offset == offset && e.length == length;
    let mut code_language = String::new();
    let kind = match top.tag.as_str() {
        "i" | "em" => Kind::Italic,
        "b" | "strong" => Kind::Bold,
        "s" | "strike" | "del" => Kind::Strikethrough,
        "u" | "ins" => Kind::Underline,
        "tg-spoiler" | "span" => Kind::Spoiler,
        "tg-emoji" => match top.argument.parse::<i64>() {
            Ok(id) if id != 0 => Kind::CustomEmoji(id),
            _ => return Err("Invalid custom emoji identifier specified".into()),
        },
        "a" => {
            let url = if top.argument.is_empty() {
                String::from_utf8_lossy(&out[top.begin..]).into_owned()
            } else {
                top.argument
            };
            match link::user_id(&url) {
                Some(user) => Kind::MentionName(user),
                None => match link::checked(&url) {
                    Some(url) => Kind::TextUrl(url),
                    None => return Ok(()),
                },
            }
        }
        "pre" => {
            if let Some(last) = entities.last_mut()
                && same_span(&last.entity)
                && last.entity.kind == Kind::Code
                && !last.code_language.is_empty()
            {
                last.entity.kind = Kind::PreCode(std::mem::take(&mut last.code_language));
                return Ok(());
            }
            Kind::Pre
        }
        "code" => {
            if let Some(last) = entities.last_mut()
                && same_span(&last.entity)
                && last.entity.kind == Kind::Pre
                && !top.argument.is_empty()
            {
                last.entity.kind = Kind::PreCode(top.argument);
                return Ok(());
            }
            code_language = top.argument;
            Kind::Code
        }
        "blockquote" if !top.argument.is_empty() => Kind::ExpandableBlockQuote,
        "blockquote" => Kind::BlockQuote,
        other => unreachable!("tag {other} was checked against TAGS"),
    };
    entities.push(Raw { entity: Entity::new(kind, offset, length), code_language });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Vec<(Kind, i32, i32)>) {
        let ft = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        (ft.text, ft.entities.into_iter().map(|e| (e.kind, e.offset, e.length)).collect())
    }

    #[test]
    fn every_documented_tag() {
        let (text, entities) = ok(concat!(
            "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins>",
            "<s>s</s><strike>k</strike><del>d</del>",
            "<span class=\"tg-spoiler\">p</span><tg-spoiler>q</tg-spoiler>",
            "<a href=\"https://example.com\">l</a><a href=\"tg://user?id=123\">m</a>",
            "<tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>",
            "<code>c</code><pre>p</pre><pre><code class=\"language-rust\">r</code></pre>",
            "<blockquote>q</blockquote><blockquote expandable>x</blockquote>",
        ));
        assert_eq!(text, "bsieunskdpqlm👍cprqx");
        assert_eq!(
            entities,
            [
                (Kind::Bold, 0, 1),
                (Kind::Bold, 1, 1),
                (Kind::Italic, 2, 1),
                (Kind::Italic, 3, 1),
                (Kind::Underline, 4, 1),
                (Kind::Underline, 5, 1),
                (Kind::Strikethrough, 6, 1),
                (Kind::Strikethrough, 7, 1),
                (Kind::Strikethrough, 8, 1),
                (Kind::Spoiler, 9, 1),
                (Kind::Spoiler, 10, 1),
                (Kind::TextUrl("https://example.com/".into()), 11, 1),
                (Kind::MentionName(123), 12, 1),
                (Kind::CustomEmoji(5368324170671202286), 13, 2),
                (Kind::Code, 15, 1),
                (Kind::Pre, 16, 1),
                (Kind::PreCode("rust".into()), 17, 1),
                (Kind::BlockQuote, 18, 1),
                (Kind::ExpandableBlockQuote, 19, 1),
            ]
        );
    }

    #[test]
    fn character_references_and_utf16_offsets() {
        let (text, entities) = ok("&lt;&gt;&amp;&quot;&#65;&#x42;&#x1F600; <b>😀x</b> &nope; & &#0; &amp");
        assert_eq!(text, "<>&\"AB😀 😀x &nope; & &#0; &");
        // the emoji before the bold text counts as two UTF-16 units
        assert_eq!(entities, [(Kind::Bold, 9, 3)]);
        // a reference without its semicolon is still decoded; the name is the whole run of letters
        assert_eq!(ok("a&lt b").0, "a< b");
        assert_eq!(ok("a&ltb").0, "a&ltb");
        // nested tags: outer first when they start together
        assert_eq!(ok("<b><i>x</i>y</b>").1, [(Kind::Bold, 0, 2), (Kind::Italic, 0, 1)]);
        // empty entities are not reported; tag names are case-insensitive, attribute names
        // are not (an unknown attribute is ignored, so the link text becomes the URL)
        assert_eq!(
            ok("<B></B><A href=\"http://x.test\">y</a>").1,
            [(Kind::TextUrl("http://x.test/".into()), 0, 1)]
        );
        assert_eq!(
            ok("<a HREF=\"http://x.test\">y.test</a>").1,
            [(Kind::TextUrl("http://y.test/".into()), 0, 6)]
        );
        assert_eq!(ok("<code class=\"language-py\">c</code>").1, [(Kind::Code, 0, 1)]);
        assert_eq!(ok("<a href=x.test>x</a>").1, [(Kind::TextUrl("http://x.test/".into()), 0, 1)]);
        assert_eq!(ok("<b>x</>").1, [(Kind::Bold, 0, 1)], "an empty end tag closes the open one");
        assert_eq!(ok("<pre><code>x</code></pre>").1, [(Kind::Pre, 0, 1), (Kind::Code, 0, 1)]);
        assert_eq!(
            ok("<code class=\"language-go\"><pre>x</pre></code>").1,
            [(Kind::PreCode("go".into()), 0, 1)]
        );
    }

    #[test]
    fn errors_name_the_byte_offset() {
        let err = |text: &str| parse(text).unwrap_err();
        assert_eq!(err("<b>bold"), "Can't find end tag corresponding to start tag \"b\"");
        assert_eq!(err("é <foo>x</foo>"), "Unsupported start tag \"foo\" at byte offset 3");
        assert_eq!(err("1 < 2"), "Unsupported start tag \"\" at byte offset 2");
        assert_eq!(err("a <"), "Unclosed start tag at byte offset 2");
        assert_eq!(
            err("<b><i>x</b></i>"),
            "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\""
        );
        assert_eq!(err("x</b>"), "Unexpected end tag at byte offset 1");
        assert_eq!(err("<b>x</b"), "Unclosed end tag at byte offset 4");
        assert_eq!(err("<span>x</span>"), "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0");
        assert_eq!(err("<a href=\"x"), "Unclosed start tag at byte offset 0");
        assert_eq!(err("<a href=x\"y\">"), "Unexpected end of name token at byte offset 8");
        assert_eq!(err("<a =x>"), "Empty attribute name in the tag \"a\" at byte offset 0");
        assert_eq!(
            err("<tg-emoji emoji-id=\"abc\">x</tg-emoji>"),
            "Invalid custom emoji identifier specified"
        );
        assert_eq!(err("&#xD83D;"), INVALID_AFTER_DECODING);
    }
}
