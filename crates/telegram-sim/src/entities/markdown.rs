//! `parse_mode=MarkdownV2` and legacy `parse_mode=Markdown`: ports of tdlib's
//! `parse_markdown_v2` and `parse_markdown` (`td/telegram/MessageEntity.cpp`).
//!
//! Both rewrite the text in place, as tdlib does, so the URL of a legacy `[text]` link
//! without `(url)` is read from the partly rewritten buffer exactly as tdlib reads it.

use super::{Entity, FormattedText, Kind, at, is_space, link, sort, utf16_units};

/// Legacy Markdown: `*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````,
/// `[text](url)`; `\` escapes only `_ * ` [`; no nesting. The Bot API still accepts it
/// ("retained for backward compatibility").
pub(super) fn parse_legacy(input: &str) -> Result<FormattedText, String> {
    let mut t = input.as_bytes().to_vec();
    let size = t.len();
    let mut out_len = 0;
    let mut entities = Vec::new();
    let mut utf16: i32 = 0;
    let mut i = 0;
    while i < size {
        let c = t[i];
        if c == b'\\' && matches!(at(&t, i + 1), b'_' | b'*' | b'`' | b'[') {
            t[out_len] = t[i + 1];
            out_len += 1;
            utf16 += 1;
            i += 2;
            continue;
        }
        if !matches!(c, b'_' | b'*' | b'`' | b'[') {
            utf16 += utf16_units(c);
            t[out_len] = c;
            out_len += 1;
            i += 1;
            continue;
        }
        let begin = i;
        let end_char = if c == b'[' { b']' } else { c };
        let mut is_pre = false;
        let mut language = String::new();
        i += 1;
        if c == b'`' && at(&t, i) == b'`' && at(&t, i + 1) == b'`' {
            i += 2;
            is_pre = true;
            let mut language_end = i;
            while !is_space(at(&t, language_end)) && at(&t, language_end) != b'`' {
                language_end += 1;
            }
            if i != language_end && language_end < size && at(&t, language_end) != b'`' {
                language = String::from_utf8_lossy(&t[i..language_end]).into_owned();
                i = language_end;
            }
            i = skip_one_newline(&t, i);
        }
        let offset = utf16;
        while i < size && (t[i] != end_char || (is_pre && !(at(&t, i + 1) == b'`' && at(&t, i + 2) == b'`')))
        {
            utf16 += utf16_units(t[i]);
            t[out_len] = t[i];
            out_len += 1;
            i += 1;
        }
        if i == size {
            return Err(format!("Can't find end of the entity starting at byte offset {begin}"));
        }
        if offset != utf16 {
            let length = utf16 - offset;
            let kind = match c {
                b'_' => Some(Kind::Italic),
                b'*' => Some(Kind::Bold),
                b'[' => {
                    let url = if at(&t, i + 1) != b'(' {
                        // the link text as the URL, from the buffer as rewritten so far
                        String::from_utf8_lossy(&t[begin + 1..i]).into_owned()
                    } else {
                        i += 2;
                        let mut url = Vec::new();
                        while i < size && t[i] != b')' {
                            url.push(t[i]);
                            i += 1;
                        }
                        String::from_utf8_lossy(&url).into_owned()
                    };
                    match link::user_id(&url) {
                        Some(user) => Some(Kind::MentionName(user)),
                        None => link::checked(&url).map(Kind::TextUrl),
                    }
                }
                _ if is_pre && language.is_empty() => Some(Kind::Pre),
                _ if is_pre => Some(Kind::PreCode(std::mem::take(&mut language))),
                _ => Some(Kind::Code),
            };
            if let Some(kind) = kind {
                entities.push(Entity::new(kind, offset, length));
            }
        }
        if is_pre {
            i += 2;
        }
        i += 1;
    }
    t.truncate(out_len);
    Ok(FormattedText { text: String::from_utf8_lossy(&t).into_owned(), entities })
}

/// Skips one line break (`\n`, `\r`, `\r\n` or `\n\r`) after an opening ```` ``` ````.
fn skip_one_newline(t: &[u8], i: usize) -> usize {
    let c = at(t, i);
    if c == b'\n' || c == b'\r' {
        let next = at(t, i + 1);
        if (next == b'\n' || next == b'\r') && c != next { i + 2 } else { i + 1 }
    } else {
        i
    }
}

struct Nested {
    kind: Kind,
    argument: String,
    /// UTF-16 offset in the output.
    offset: i32,
    /// Byte offset of the opening markup in the input, for errors.
    byte_offset: usize,
    /// Byte position in the output where the entity's text starts.
    begin: usize,
}

fn reserved(c: u8) -> String {
    format!("Character '{}' is reserved and must be escaped with the preceding '\\'", c as char)
}

fn unclosed(n: &Nested) -> String {
    format!("Can't find end of {} entity at byte offset {}", n.kind.td_name(), n.byte_offset)
}

/// Reads `(url)` after `]`, starting at the `(` at `*i + 1`; leaves `*i` on the `)`.
fn read_url(t: &[u8], i: &mut usize) -> Result<String, usize> {
    *i += 2;
    let begin = *i;
    let mut url = Vec::new();
    while *i < t.len() && t[*i] != b')' {
        if t[*i] == b'\\' && (1..=126).contains(&at(t, *i + 1)) {
            url.push(t[*i + 1]);
            *i += 2;
            continue;
        }
        url.push(t[*i]);
        *i += 1;
    }
    if at(t, *i) != b')' {
        return Err(begin);
    }
    Ok(String::from_utf8_lossy(&url).into_owned())
}

/// MarkdownV2: `*bold*`, `_italic_`, `__underline__`, `~strike~`, `||spoiler||`,
/// `` `code` ``, ```` ```lang pre``` ````, `[text](url)`, `![emoji](tg://emoji?id=…)`,
/// `>` block quotes (expandable with `**>` … `||`); every other reserved character must be
/// escaped with `\`.
pub(super) fn parse_v2(input: &str) -> Result<FormattedText, String> {
    let mut t = input.as_bytes().to_vec();
    let len = t.len();
    let mut out_len = 0;
    let mut entities = Vec::new();
    let mut utf16: i32 = 0;
    let mut nested: Vec<Nested> = Vec::new();
    let mut have_blockquote = false;
    let mut can_start_blockquote = true;
    let mut i = 0;
    while i < len {
        let c = t[i];
        if c == b'\\' && (1..=126).contains(&at(&t, i + 1)) {
            i += 1;
            utf16 += 1;
            t[out_len] = t[i];
            out_len += 1;
            if t[i] != b'\r' {
                can_start_blockquote = t[i] == b'\n';
            }
            i += 1;
            continue;
        }
        let in_code =
            matches!(nested.last().map(|n| &n.kind), Some(Kind::Code | Kind::Pre | Kind::PreCode(_)));
        let reserved_chars: &[u8] = if in_code { b"`" } else { b"_*[]()~`>#+-=|{}.!\n" };
        if !reserved_chars.contains(&c) {
            if c & 0xc0 != 0x80 {
                utf16 += utf16_units(c);
                if c != b'\r' {
                    can_start_blockquote = false;
                }
            }
            t[out_len] = c;
            out_len += 1;
            i += 1;
            continue;
        }
        let is_end = match nested.last() {
            None => false,
            Some(_) if have_blockquote && c == b'\n' && (i + 1 == len || at(&t, i + 1) != b'>') => true,
            Some(top) => match top.kind {
                Kind::Bold => c == b'*',
                Kind::Italic => c == b'_' && at(&t, i + 1) != b'_',
                Kind::Code => c == b'`',
                Kind::Pre | Kind::PreCode(_) => c == b'`' && at(&t, i + 1) == b'`' && at(&t, i + 2) == b'`',
                Kind::TextUrl(_) | Kind::CustomEmoji(_) => c == b']',
                Kind::Underline => c == b'_' && at(&t, i + 1) == b'_',
                Kind::Strikethrough => c == b'~',
                Kind::Spoiler => c == b'|' && at(&t, i + 1) == b'|',
                _ => false,
            },
        };
        if !is_end {
            let byte_offset = i;
            let mut argument = String::new();
            let kind = match c {
                b'_' if at(&t, i + 1) == b'_' => {
                    i += 1;
                    Some(Kind::Underline)
                }
                b'_' => Some(Kind::Italic),
                b'*' => Some(Kind::Bold),
                b'~' => Some(Kind::Strikethrough),
                b'|' if at(&t, i + 1) == b'|' => {
                    i += 1;
                    Some(Kind::Spoiler)
                }
                b'[' => Some(Kind::TextUrl(String::new())),
                b'`' if at(&t, i + 1) == b'`' && at(&t, i + 2) == b'`' => {
                    i += 3;
                    let mut kind = Kind::Pre;
                    let mut language_end = i;
                    while !is_space(at(&t, language_end)) && at(&t, language_end) != b'`' {
                        language_end += 1;
                    }
                    if i != language_end && language_end < len && at(&t, language_end) != b'`' {
                        kind = Kind::PreCode(String::new());
                        argument = String::from_utf8_lossy(&t[i..language_end]).into_owned();
                        i = language_end;
                    }
                    i = skip_one_newline(&t, i);
                    i -= 1;
                    Some(kind)
                }
                b'`' => Some(Kind::Code),
                b'!' if at(&t, i + 1) == b'[' => {
                    i += 1;
                    Some(Kind::CustomEmoji(0))
                }
                b'\n' => {
                    utf16 += 1;
                    t[out_len] = b'\n';
                    out_len += 1;
                    can_start_blockquote = true;
                    None
                }
                b'>' if can_start_blockquote => {
                    if have_blockquote {
                        None
                    } else {
                        have_blockquote = true;
                        Some(Kind::BlockQuote)
                    }
                }
                _ => return Err(reserved(c)),
            };
            if let Some(kind) = kind {
                nested.push(Nested { kind, argument, offset: utf16, byte_offset, begin: out_len });
            }
            i += 1;
            continue;
        }
        // the end of an entity
        let mut kind = nested.last().map(|n| n.kind.clone()).expect("is_end needs an open entity");
        if c == b'\n' && kind != Kind::BlockQuote {
            // `||` right before the line break closes an expandable block quote
            let top = nested.last().expect("checked above");
            let spoiler_just_before = kind == Kind::Spoiler
                && (top.byte_offset + 2 == i
                    || (top.byte_offset + 3 == i && out_len != 0 && t[out_len - 1] == b'\r'));
            if !spoiler_just_before {
                return Err(unclosed(top));
            }
            nested.pop();
            match nested.last() {
                Some(top) if top.kind == Kind::BlockQuote => kind = Kind::ExpandableBlockQuote,
                Some(top) => return Err(unclosed(top)),
                None => return Err(format!("Can't find end of Spoiler entity at byte offset {}", i - 2)),
            }
        }
        let top = nested.last_mut().expect("an open entity");
        let mut argument = std::mem::take(&mut top.argument);
        let (offset, begin) = (top.offset, top.begin);
        let mut skip = utf16 == offset;
        let mut user = None;
        let mut emoji = None;
        match kind {
            Kind::Underline | Kind::Spoiler => i += 1,
            Kind::Pre | Kind::PreCode(_) => i += 2,
            Kind::TextUrl(_) => {
                let url = if at(&t, i + 1) != b'(' {
                    String::from_utf8_lossy(&t[begin..out_len]).into_owned()
                } else {
                    read_url(&t, &mut i).map_err(|b| format!("Can't find end of a URL at byte offset {b}"))?
                };
                user = link::user_id(&url);
                if user.is_none() {
                    match link::checked(&url) {
                        Some(url) => argument = url,
                        None => skip = true,
                    }
                }
            }
            Kind::CustomEmoji(_) => {
                if at(&t, i + 1) != b'(' {
                    return Err("Custom emoji entity must contain a tg://emoji URL".into());
                }
                let url = read_url(&t, &mut i)
                    .map_err(|b| format!("Can't find end of a custom emoji URL at byte offset {b}"))?;
                emoji = Some(link::custom_emoji_id(&url)?);
            }
            Kind::BlockQuote | Kind::ExpandableBlockQuote => {
                have_blockquote = false;
                t[out_len] = t[i];
                out_len += 1;
                can_start_blockquote = true;
                utf16 += 1;
                skip = false;
            }
            _ => {}
        }
        if !skip {
            let length = utf16 - offset;
            let kind = match (kind, user, emoji) {
                (_, Some(user), _) => Kind::MentionName(user),
                (_, _, Some(id)) => Kind::CustomEmoji(id),
                (Kind::TextUrl(_), ..) => Kind::TextUrl(argument),
                (Kind::PreCode(_), ..) => Kind::PreCode(argument),
                (kind, ..) => kind,
            };
            entities.push(Entity::new(kind, offset, length));
        }
        nested.pop();
        i += 1;
    }
    if have_blockquote {
        let mut kind = Kind::BlockQuote;
        if let Some(top) = nested.last()
            && top.kind == Kind::Spoiler
            && Some(top.byte_offset) == len.checked_sub(2)
        {
            nested.pop();
            kind = Kind::ExpandableBlockQuote;
        }
        if let Some(top) = nested.last()
            && top.kind == Kind::BlockQuote
        {
            let length = utf16 - top.offset;
            if length != 0 {
                entities.push(Entity::new(kind, top.offset, length));
            }
            nested.pop();
        }
    }
    if let Some(top) = nested.last() {
        return Err(unclosed(top));
    }
    sort(&mut entities);
    t.truncate(out_len);
    Ok(FormattedText { text: String::from_utf8_lossy(&t).into_owned(), entities })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(text: &str) -> (String, Vec<(Kind, i32, i32)>) {
        let ft = parse_v2(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        (ft.text, ft.entities.into_iter().map(|e| (e.kind, e.offset, e.length)).collect())
    }

    #[test]
    fn markdown_v2_entities() {
        let (text, entities) = v2(
            "*b* _i_ __u__ ~s~ ||p|| `c` ```rust\nfn``` [l](https://x.test) [m](tg://user?id=5) ![👍](tg://emoji?id=9) \\. 😀*x*",
        );
        assert_eq!(text, "b i u s p c fn l m 👍 . 😀x");
        assert_eq!(
            entities,
            [
                (Kind::Bold, 0, 1),
                (Kind::Italic, 2, 1),
                (Kind::Underline, 4, 1),
                (Kind::Strikethrough, 6, 1),
                (Kind::Spoiler, 8, 1),
                (Kind::Code, 10, 1),
                (Kind::PreCode("rust".into()), 12, 2),
                (Kind::TextUrl("https://x.test/".into()), 15, 1),
                (Kind::MentionName(5), 17, 1),
                (Kind::CustomEmoji(9), 19, 2),
                (Kind::Bold, 26, 1),
            ]
        );
        assert_eq!(v2("*a _b_ c*").1, [(Kind::Bold, 0, 5), (Kind::Italic, 2, 1)]);
        assert_eq!(v2("`a.b_c`").0, "a.b_c", "only ` is reserved inside code");
    }

    #[test]
    fn markdown_v2_block_quotes() {
        assert_eq!(v2(">quote\n>more\nafter").1, [(Kind::BlockQuote, 0, 11)]);
        assert_eq!(v2("**>hidden\n>text||").1, [(Kind::ExpandableBlockQuote, 0, 11)]);
        assert_eq!(v2(">end").1, [(Kind::BlockQuote, 0, 3)]);
    }

    #[test]
    fn markdown_v2_errors() {
        let err = |t: &str| parse_v2(t).unwrap_err();
        assert_eq!(err("1.5"), "Character '.' is reserved and must be escaped with the preceding '\\'");
        assert_eq!(err("a > b"), "Character '>' is reserved and must be escaped with the preceding '\\'");
        assert_eq!(err("*bold"), "Can't find end of Bold entity at byte offset 0");
        assert_eq!(err("x ```go\ncode"), "Can't find end of PreCode entity at byte offset 2");
        assert_eq!(err("[a](https://x"), "Can't find end of a URL at byte offset 4");
        assert_eq!(err("![e]x"), "Custom emoji entity must contain a tg://emoji URL");
        assert_eq!(err("![e](https://x)"), "Custom emoji URL must have scheme tg");
    }

    #[test]
    fn legacy_markdown() {
        let ft = parse_legacy("*b* _i_ `c` ```py\nx``` [l](http://x.test) \\*").unwrap();
        assert_eq!(ft.text, "b i c x l *");
        let kinds: Vec<_> = ft.entities.iter().map(|e| (e.kind.clone(), e.offset, e.length)).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Bold, 0, 1),
                (Kind::Italic, 2, 1),
                (Kind::Code, 4, 1),
                (Kind::PreCode("py".into()), 6, 1),
                (Kind::TextUrl("http://x.test/".into()), 8, 1),
            ]
        );
        assert_eq!(
            parse_legacy("a *b").unwrap_err(),
            "Can't find end of the entity starting at byte offset 2"
        );
        // reserved characters of MarkdownV2 are plain text here
        assert_eq!(parse_legacy("1.5 > 2!").unwrap().text, "1.5 > 2!");
    }
}
