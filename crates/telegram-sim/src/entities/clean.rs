//! What tdlib does to every text before sending it (`fix_formatted_text` in
//! `td/telegram/MessageEntity.cpp`, `clean_input_string`, `replace_offending_characters`
//! and `strip_empty_characters` in `td/telegram/misc.cpp`):
//!
//! - control characters (U+0000–U+0009, U+000B, U+000C, U+000E–U+001F) become spaces,
//!   `\r` and U+2028–U+202E are removed, so are the combining vertical lines U+030A,
//!   U+0333 and U+033F; runs of LRM/RLM marks keep only their last mark (the others
//!   become ZWNJ);
//! - spaces and line breaks are trimmed from the end, and from the start up to the first
//!   entity; entities are moved and cut to match, empty ones dropped;
//! - a text that is then empty, or made only of invisible characters (spaces of every
//!   width, zero-width characters, BOM, NBSP, …), is refused with `Text must be
//!   non-empty`, unless empty is allowed (captions).
//!
//! Not simulated: tdlib's splitting of overlapping client-given entities, and the entities
//! the server finds by itself (URLs, mentions, hashtags, bot commands).

use super::{Entity, FormattedText, sort, td_error};
use crate::api::ApiError;

/// What a character becomes when the text is cleaned.
enum Clean {
    Keep,
    Space,
    Remove,
}

fn clean_char(c: char) -> Clean {
    match c {
        '\r' | '\u{2028}'..='\u{202e}' | '\u{030a}' | '\u{0333}' | '\u{033f}' => Clean::Remove,
        '\n' => Clean::Keep,
        '\0'..='\u{1f}' => Clean::Space,
        _ => Clean::Keep,
    }
}

/// Characters `strip_empty_characters` treats as invisible.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\n'
            | '\r'
            | '\0'
            | '\u{0b}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{180e}'
            | '\u{2000}'..='\u{200f}'
            | '\u{202e}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{2800}'
            | '\u{3000}'
            | '\u{feff}'
            | '\u{fffc}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// tdlib's `fix_formatted_text` as far as the simulator follows it (see the module docs).
/// With `allow_empty` an empty or all-whitespace text comes back empty instead of failing.
pub(crate) fn fix(ft: FormattedText, allow_empty: bool) -> Result<FormattedText, ApiError> {
    let FormattedText { text, mut entities } = ft;
    for e in &entities {
        if !(0..=1_000_000).contains(&e.offset) {
            return Err(td_error(&format!("Receive an entity with incorrect offset {}", e.offset)));
        }
        if !(0..=1_000_000).contains(&e.length) {
            return Err(td_error(&format!("Receive an entity with incorrect length {}", e.length)));
        }
    }
    entities.retain(|e| e.length > 0);
    sort(&mut entities);
    let total: i32 = text.encode_utf16().count().try_into().unwrap_or(i32::MAX);
    check_bounds(&text, &entities, total)?;

    // Clean characters; `removed[k]` counts the UTF-16 units removed before unit `k`.
    let mut cleaned = String::with_capacity(text.len());
    let mut removed_before = Vec::with_capacity(text.len() + 1);
    let mut removed = 0;
    for c in text.chars() {
        for _ in 0..c.len_utf16() {
            removed_before.push(removed);
        }
        match clean_char(c) {
            Clean::Keep => cleaned.push(c),
            Clean::Space => cleaned.push(' '),
            Clean::Remove => removed += c.len_utf16() as i32,
        }
    }
    removed_before.push(removed);
    let map =
        |pos: i32| pos - removed_before[usize::try_from(pos).unwrap_or(0).min(removed_before.len() - 1)];
    for e in &mut entities {
        let end = map(e.end());
        e.offset = map(e.offset);
        e.length = end - e.offset;
    }
    entities.retain(|e| e.length > 0);
    let mut text = replace_offending(cleaned);

    // Trim spaces and line breaks at the end.
    let keep_bytes = text.trim_end_matches([' ', '\n']).len();
    if keep_bytes == 0 {
        if allow_empty {
            return Ok(FormattedText::default());
        }
        return Err(td_error("Text must be non-empty"));
    }
    text.truncate(keep_bytes);
    let kept_units: i32 = text.encode_utf16().count().try_into().unwrap_or(i32::MAX);
    entities.retain(|e| e.offset < kept_units);
    for e in &mut entities {
        e.length = e.length.min(kept_units - e.offset);
    }
    // Trim at the start, but not into the first entity.
    let first_entity = entities.first().map_or(usize::MAX, |e| usize::try_from(e.offset).unwrap_or(0));
    let leading = text.bytes().take_while(|b| *b == b' ' || *b == b'\n').count().min(first_entity);
    if leading > 0 {
        text.drain(..leading);
        let shift = i32::try_from(leading).unwrap_or(0);
        for e in &mut entities {
            e.offset -= shift;
        }
    }
    if !allow_empty && text.chars().all(is_invisible) {
        return Err(td_error("Text must be non-empty"));
    }
    sort(&mut entities);
    Ok(FormattedText { text, entities })
}

/// The entity errors of `clean_input_string_with_entities`: boundaries past the end of the
/// text or inside a surrogate pair.
fn check_bounds(text: &str, entities: &[Entity], total: i32) -> Result<(), ApiError> {
    let mut second_halves = Vec::new();
    let mut unit = 0;
    let mut byte_of_unit = Vec::new();
    for (byte, c) in text.char_indices() {
        byte_of_unit.push(byte);
        if c.len_utf16() == 2 {
            // tdlib notices the split at the start of the next character
            second_halves.push(unit + 1);
            byte_of_unit.push(byte + c.len_utf8());
        }
        unit += c.len_utf16() as i32;
    }
    let byte = |pos: i32| byte_of_unit.get(usize::try_from(pos).unwrap_or(0)).copied().unwrap_or(text.len());
    for e in entities {
        if e.offset > total {
            return Err(td_error(&format!(
                "Entity begins after the end of the text at UTF-16 offset {}",
                e.offset
            )));
        }
        if e.end() > total {
            return Err(td_error(&format!(
                "Entity beginning at UTF-16 offset {} ends after the end of the text at UTF-16 offset {}",
                e.offset,
                e.end()
            )));
        }
        if second_halves.binary_search(&e.offset).is_ok() {
            return Err(td_error(&format!(
                "Entity begins in a middle of a UTF-16 symbol at byte offset {}",
                byte(e.offset)
            )));
        }
        if second_halves.binary_search(&e.end()).is_ok() {
            return Err(td_error(&format!(
                "Entity beginning at UTF-16 offset {} ends in a middle of a UTF-16 symbol at byte offset {}",
                e.offset,
                byte(e.end())
            )));
        }
    }
    Ok(())
}

/// `replace_offending_characters`: in a run of LRM/RLM marks every mark but the last
/// becomes a zero-width non-joiner.
fn replace_offending(text: String) -> String {
    if !text.contains(['\u{200e}', '\u{200f}']) {
        return text;
    }
    let chars: Vec<char> = text.chars().collect();
    let is_mark = |c: char| c == '\u{200e}' || c == '\u{200f}';
    chars
        .iter()
        .enumerate()
        .map(
            |(k, &c)| {
                if is_mark(c) && chars.get(k + 1).is_some_and(|n| is_mark(*n)) { '\u{200c}' } else { c }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn ft(text: &str, entities: &[(Kind, i32, i32)]) -> FormattedText {
        FormattedText {
            text: text.into(),
            entities: entities.iter().map(|(k, o, l)| Entity::new(k.clone(), *o, *l)).collect(),
        }
    }

    fn fixed(text: &str, entities: &[(Kind, i32, i32)]) -> (String, Vec<(Kind, i32, i32)>) {
        let out = fix(ft(text, entities), false).unwrap_or_else(|e| panic!("{text:?}: {}", e.description));
        (out.text, out.entities.into_iter().map(|e| (e.kind, e.offset, e.length)).collect())
    }

    #[test]
    fn trims_and_moves_entities() {
        assert_eq!(fixed("  hi  \n", &[]), ("hi".into(), vec![]));
        assert_eq!(fixed("\n x \n", &[(Kind::Bold, 2, 3)]), ("x".into(), vec![(Kind::Bold, 0, 1)]));
        // leading spaces inside the first entity stay
        assert_eq!(fixed("  x", &[(Kind::Code, 1, 2)]), (" x".into(), vec![(Kind::Code, 0, 2)]));
        // an entity only over trailing spaces disappears
        assert_eq!(fixed("x   ", &[(Kind::Bold, 2, 2)]), ("x".into(), vec![]));
    }

    #[test]
    fn cleans_characters() {
        assert_eq!(fixed("a\tb\r\nc\u{0}d\u{2028}e", &[]).0, "a b\nc de");
        assert_eq!(fixed("a\r\rbc", &[(Kind::Bold, 3, 2)]), ("abc".into(), vec![(Kind::Bold, 1, 2)]));
        assert_eq!(fixed("\u{200e}\u{200f}\u{200e}x", &[]).0, "\u{200c}\u{200c}\u{200e}x");
    }

    #[test]
    fn empty_and_invisible_texts() {
        let err = |text: &str| fix(ft(text, &[]), false).unwrap_err().description;
        assert_eq!(err(" \n "), "Bad Request: text must be non-empty");
        assert_eq!(err("\u{200b}\u{feff}\u{a0}"), "Bad Request: text must be non-empty");
        assert_eq!(fix(ft(" ", &[]), true).unwrap(), FormattedText::default());
        assert_eq!(fixed("\u{200b}x", &[]).0, "\u{200b}x");
    }

    #[test]
    fn client_entities_out_of_bounds() {
        let err = |text: &str, e: &[(Kind, i32, i32)]| fix(ft(text, e), false).unwrap_err().description;
        assert_eq!(
            err("ab", &[(Kind::Bold, 1, 5)]),
            "Bad Request: entity beginning at UTF-16 offset 1 ends after the end of the text at UTF-16 offset 6"
        );
        assert_eq!(
            err("ab", &[(Kind::Bold, 3, 1)]),
            "Bad Request: entity begins after the end of the text at UTF-16 offset 3"
        );
        assert_eq!(
            err("😀", &[(Kind::Bold, 1, 1)]),
            "Bad Request: entity begins in a middle of a UTF-16 symbol at byte offset 4"
        );
        assert_eq!(
            err("a", &[(Kind::Bold, -1, 1)]),
            "Bad Request: receive an entity with incorrect offset -1"
        );
    }
}
