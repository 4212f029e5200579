//! Formatted text as the official Bot API server builds it: `parse_mode` parsing (HTML,
//! MarkdownV2, legacy Markdown), explicit `entities`, then tdlib's clean-up and trimming.
//!
//! The parsers port the behaviour of tdlib's `td/telegram/MessageEntity.cpp`
//! (`parse_html`, `parse_markdown_v2`, `parse_markdown`, `fix_formatted_text`) and
//! `td/telegram/misc.cpp` (`clean_input_string`, `strip_empty_characters`): they work on
//! the UTF-8 bytes, report byte offsets in their errors, and produce entities with UTF-16
//! offsets. The Bot API layer around them (`get_formatted_text` in telegram-bot-api's
//! `Client.cpp`) decides which parser runs and how errors are worded.

mod clean;
mod html;
mod link;
mod markdown;

use serde_json::{Map, Value, json};

use crate::api::ApiError;

pub(crate) use clean::fix;

/// Largest `text`/`caption` parameter in bytes the Bot API accepts before parsing
/// (`text.size() > (1 << 15)` in `Client::get_formatted_text`).
const MAX_RAW_TEXT_BYTES: usize = 1 << 15;

/// The kind of a formatting entity, with its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    Code,
    Pre,
    PreCode(String),
    TextUrl(String),
    MentionName(i64),
    CustomEmoji(i64),
    BlockQuote,
    ExpandableBlockQuote,
}

impl Kind {
    /// tdlib's `MessageEntity::get_type_priority`: the tie-breaker of `sort_entities`.
    fn priority(&self) -> u8 {
        match self {
            Self::Bold => 90,
            Self::Italic => 91,
            Self::Code => 20,
            Self::Pre => 11,
            Self::PreCode(_) => 10,
            Self::TextUrl(_) | Self::MentionName(_) => 49,
            Self::Underline => 92,
            Self::Strikethrough => 93,
            Self::BlockQuote | Self::ExpandableBlockQuote => 0,
            Self::Spoiler => 94,
            Self::CustomEmoji(_) => 99,
        }
    }

    /// The name tdlib prints in MarkdownV2 errors (`operator<<` of `MessageEntity::Type`).
    fn td_name(&self) -> &'static str {
        match self {
            Self::Bold => "Bold",
            Self::Italic => "Italic",
            Self::Underline => "Underline",
            Self::Strikethrough => "Strikethrough",
            Self::Spoiler => "Spoiler",
            Self::Code => "Code",
            Self::Pre => "Pre",
            Self::PreCode(_) => "PreCode",
            Self::TextUrl(_) => "TextUrl",
            Self::MentionName(_) => "MentionName",
            Self::CustomEmoji(_) => "CustomEmoji",
            Self::BlockQuote => "BlockQuote",
            Self::ExpandableBlockQuote => "ExpandableBlockQuote",
        }
    }
}

/// One entity: UTF-16 offset and length, as the Bot API reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entity {
    pub(crate) kind: Kind,
    pub(crate) offset: i32,
    pub(crate) length: i32,
}

impl Entity {
    pub(crate) fn new(kind: Kind, offset: i32, length: i32) -> Self {
        Self { kind, offset, length }
    }

    fn end(&self) -> i32 {
        self.offset + self.length
    }

    /// The `MessageEntity` object, as `JsonEntity` in `Client.cpp` writes it.
    pub(crate) fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("offset".into(), json!(self.offset));
        obj.insert("length".into(), json!(self.length));
        let kind = match &self.kind {
            Kind::Bold => "bold",
            Kind::Italic => "italic",
            Kind::Underline => "underline",
            Kind::Strikethrough => "strikethrough",
            Kind::Spoiler => "spoiler",
            Kind::Code => "code",
            Kind::Pre => "pre",
            Kind::PreCode(language) => {
                obj.insert("language".into(), json!(language));
                "pre"
            }
            Kind::TextUrl(url) => {
                obj.insert("url".into(), json!(url));
                "text_link"
            }
            Kind::MentionName(user_id) => {
                obj.insert("user".into(), crate::state::user_json(*user_id));
                "text_mention"
            }
            Kind::CustomEmoji(id) => {
                obj.insert("custom_emoji_id".into(), json!(id.to_string()));
                "custom_emoji"
            }
            Kind::BlockQuote => "blockquote",
            Kind::ExpandableBlockQuote => "expandable_blockquote",
        };
        obj.insert("type".into(), json!(kind));
        Value::Object(obj)
    }
}

/// tdlib's `sort_entities`: by offset, then longer first, then by type priority.
pub(crate) fn sort(entities: &mut [Entity]) {
    entities.sort_by(|a, b| {
        a.offset.cmp(&b.offset).then(b.length.cmp(&a.length)).then(a.kind.priority().cmp(&b.kind.priority()))
    });
}

/// Text with its entities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FormattedText {
    pub(crate) text: String,
    pub(crate) entities: Vec<Entity>,
}

impl FormattedText {
    pub(crate) fn plain(text: impl Into<String>) -> Self {
        Self { text: text.into(), entities: Vec::new() }
    }

    /// The `entities` array, or `None` when there are none (the field is then absent).
    pub(crate) fn entities_json(&self) -> Option<Value> {
        (!self.entities.is_empty()).then(|| Value::Array(self.entities.iter().map(Entity::to_json).collect()))
    }

    /// Length in characters (code points), as tdlib's `utf8_length` counts it against
    /// `message_text_length_max` and `message_caption_length_max`.
    pub(crate) fn char_len(&self) -> usize {
        self.text.chars().count()
    }
}

/// An error from tdlib or the Bot API layer, worded the way `fail_query_with_error` in
/// telegram-bot-api's `Client.cpp` words it: `Bad Request: ` and the message with its
/// first letter lowercased, unless the message is an upper-case constant like
/// `BUTTON_DATA_INVALID`.
pub(crate) fn td_error(message: &str) -> ApiError {
    let bytes = message.as_bytes();
    let keep = bytes.len() >= 2 && (bytes[1] == b'_' || bytes[1].is_ascii_uppercase());
    if keep {
        return ApiError::bad_request(message);
    }
    let mut chars = message.chars();
    let lowered = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    ApiError::bad_request(lowered)
}

/// The Bot API's `get_formatted_text(text, parse_mode, entities)`: parses `text` with
/// `parse_mode` (case-insensitive `HTML`, `MarkdownV2`, `Markdown`; empty or `none` for
/// none), or else takes the explicit `entities` (JSON text). An empty `text` is never
/// parsed. The error is the message before the Bot API words it (see [`td_error`]).
pub(crate) fn formatted_text(
    text: &str,
    parse_mode: &str,
    entities: Option<&str>,
) -> Result<FormattedText, String> {
    if text.len() > MAX_RAW_TEXT_BYTES {
        return Err("Text is too long".into());
    }
    let mode = parse_mode.to_ascii_lowercase();
    if !text.is_empty() && !mode.is_empty() && mode != "none" {
        let parsed = match mode.as_str() {
            "html" => html::parse(text),
            "markdownv2" => markdown::parse_v2(text),
            "markdown" => markdown::parse_legacy(text),
            _ => return Err("Unsupported parse_mode".into()),
        };
        return parsed.map_err(|message| format!("Can't parse entities: {message}"));
    }
    let mut out = FormattedText::plain(text);
    // An unparsable `entities` value is ignored, as `Client::get_input_entities` does.
    let Some(Value::Array(items)) = entities.and_then(|e| serde_json::from_str::<Value>(e).ok()) else {
        return Ok(out);
    };
    for item in items {
        match explicit_entity(&item) {
            Ok(Some(entity)) => out.entities.push(entity),
            Ok(None) => {}
            Err(message) => return Err(format!("Can't parse MessageEntity: {message}")),
        }
    }
    Ok(out)
}

/// One client-given `MessageEntity` (`Client::get_text_entity`). Entities the server
/// finds by itself (mentions, hashtags, URLs, …) are dropped, as the Bot API drops them.
fn explicit_entity(value: &Value) -> Result<Option<Entity>, String> {
    let Some(obj) = value.as_object() else { return Err("expected an Object".into()) };
    let int = |name: &str| -> Result<i32, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Err(format!("Can't find field \"{name}\"")),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| format!("Can't parse \"{name}\" as number")),
            Some(Value::String(s)) => s.parse().map_err(|_| format!("Can't parse \"{name}\" as number")),
            Some(_) => Err(format!("Field \"{name}\" must be a number")),
        }
    };
    let string = |name: &str| -> Result<Option<String>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("Field \"{name}\" must be of type String")),
        }
    };
    let offset = int("offset")?;
    let length = int("length")?;
    let kind_name = string("type")?.ok_or_else(|| "Can't find field \"type\"".to_owned())?;
    let kind = match kind_name.as_str() {
        "" => return Err("Type is not specified".into()),
        "bold" => Kind::Bold,
        "italic" => Kind::Italic,
        "underline" => Kind::Underline,
        "strikethrough" => Kind::Strikethrough,
        "spoiler" => Kind::Spoiler,
        "code" => Kind::Code,
        "pre" => match string("language")? {
            Some(language) if !language.is_empty() => Kind::PreCode(language),
            _ => Kind::Pre,
        },
        "text_link" => {
            let url = string("url")?.ok_or_else(|| "Can't find field \"url\"".to_owned())?;
            match link::user_id(&url) {
                Some(user) => Kind::MentionName(user),
                None => match link::checked(&url) {
                    Some(url) => Kind::TextUrl(url),
                    None => return Ok(None),
                },
            }
        }
        "text_mention" => {
            let user = obj.get("user").and_then(Value::as_object).ok_or("Can't find field \"user\"")?;
            let id = user.get("id").and_then(Value::as_i64).ok_or("Can't find field \"id\"")?;
            Kind::MentionName(id)
        }
        "custom_emoji" => {
            let id = match obj.get("custom_emoji_id") {
                Some(Value::String(s)) => s.parse().ok(),
                Some(Value::Number(n)) => n.as_i64(),
                _ => return Err("Can't find field \"custom_emoji_id\"".into()),
            };
            Kind::CustomEmoji(id.ok_or("Can't parse \"custom_emoji_id\" as number")?)
        }
        "blockquote" => Kind::BlockQuote,
        "expandable_blockquote" => Kind::ExpandableBlockQuote,
        "mention" | "hashtag" | "cashtag" | "bot_command" | "url" | "email" | "phone_number"
        | "bank_card_number" => return Ok(None),
        _ => return Err("Unsupported type specified".into()),
    };
    Ok(Some(Entity::new(kind, offset, length)))
}

/// Length in UTF-16 code units of the byte that starts a UTF-8 sequence, 0 for a
/// continuation byte: tdlib's `1 + (c >= 0xf0)` after `is_utf8_character_first_code_unit`.
fn utf16_units(byte: u8) -> i32 {
    if byte & 0xc0 == 0x80 {
        0
    } else if byte >= 0xf0 {
        2
    } else {
        1
    }
}

/// The byte at `i`, or 0 past the end: the parsers read their input as tdlib reads a
/// NUL-terminated C string.
fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// tdlib's `is_space`: the NUL terminator counts as space.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0 | 0x0b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(text: &str) -> Result<FormattedText, String> {
        formatted_text(text, "HTML", None).map_err(|e| td_error(&e).description)
    }

    fn err(text: &str, mode: &str, entities: Option<&str>) -> String {
        td_error(&formatted_text(text, mode, entities).unwrap_err()).description
    }

    #[test]
    fn errors_are_worded_like_the_bot_api() {
        assert_eq!(td_error("Unsupported parse_mode").description, "Bad Request: unsupported parse_mode");
        assert_eq!(td_error("BUTTON_DATA_INVALID").description, "Bad Request: BUTTON_DATA_INVALID");
        assert_eq!(
            html("<b>x").unwrap_err(),
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
        );
        assert_eq!(err("x", "Textile", None), "Bad Request: unsupported parse_mode");
        // `none` and an empty mode parse nothing; an empty text is never parsed
        assert_eq!(formatted_text("<b>", "none", None).unwrap().text, "<b>");
        assert_eq!(formatted_text("", "Textile", None).unwrap().text, "");
    }

    #[test]
    fn explicit_entities_are_kept_and_server_found_ones_dropped() {
        let entities = r#"[{"type":"bold","offset":0,"length":2},{"type":"url","offset":3,"length":1},
            {"type":"pre","offset":0,"length":1,"language":"rust"}]"#;
        let ft = formatted_text("hi x", "", Some(entities)).unwrap();
        assert_eq!(
            ft.entities,
            [Entity::new(Kind::Bold, 0, 2), Entity::new(Kind::PreCode("rust".into()), 0, 1)]
        );
        assert_eq!(
            err("hi", "", Some(r#"[{"type":"sparkle","offset":0,"length":1}]"#)),
            "Bad Request: can't parse MessageEntity: Unsupported type specified"
        );
        assert_eq!(
            err("hi", "", Some(r#"[{"type":"bold","length":1}]"#)),
            "Bad Request: can't parse MessageEntity: Can't find field \"offset\""
        );
        // parse_mode wins over entities; unparsable entities are ignored
        assert_eq!(formatted_text("<i>a</i>", "html", Some("[{}]")).unwrap().entities.len(), 1);
        assert!(formatted_text("a", "", Some("{not json")).unwrap().entities.is_empty());
    }

    #[test]
    fn entity_json_matches_the_bot_api() {
        assert_eq!(
            Entity::new(Kind::TextUrl("https://x.test/".into()), 1, 2).to_json(),
            json!({"offset": 1, "length": 2, "type": "text_link", "url": "https://x.test/"})
        );
        assert_eq!(
            Entity::new(Kind::PreCode("py".into()), 0, 3).to_json(),
            json!({"offset": 0, "length": 3, "type": "pre", "language": "py"})
        );
        assert_eq!(Entity::new(Kind::CustomEmoji(5), 0, 2).to_json()["custom_emoji_id"], "5");
        assert_eq!(Entity::new(Kind::MentionName(7), 0, 2).to_json()["user"]["id"], 7);
    }

    #[test]
    fn oversized_raw_text_is_refused_before_parsing() {
        assert_eq!(err(&"a".repeat(MAX_RAW_TEXT_BYTES + 1), "HTML", None), "Bad Request: text is too long");
    }
}
