//! Inline keyboards whose callback data is checked against Telegram's 64-byte limit.

use frankenstein::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::{Error, Result};

/// Telegram's limit on `callback_data`: 1-64 bytes.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// Callback data known to be 1-64 bytes, so Telegram never answers `BUTTON_DATA_INVALID`.
///
/// ```
/// use mltb_telegram::format::CallbackData;
/// let data = CallbackData::short("c", "3f2a9c1e-77d0-4e8b")?;
/// assert_eq!(data.as_str(), "c:3f2a9c1e");
/// assert!(CallbackData::new("x".repeat(65)).is_err());
/// # Ok::<(), mltb_telegram::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallbackData(String);

impl CallbackData {
    /// Checks `data`: refused when empty or over 64 bytes (UTF-8).
    pub fn new(data: impl Into<String>) -> Result<Self> {
        let data = data.into();
        if data.is_empty() || data.len() > MAX_CALLBACK_DATA_BYTES {
            return Err(Error::Invalid {
                what: "callback data",
                reason: format!(
                    "{:?} is {} bytes; expected 1 to {MAX_CALLBACK_DATA_BYTES} bytes",
                    data,
                    data.len()
                ),
            });
        }
        Ok(Self(data))
    }

    /// A short id `prefix:<first 8 characters of id>`, e.g. `c:3f2a9c1e` to cancel a task.
    pub fn short(prefix: &str, id: &str) -> Result<Self> {
        let id: String = id.chars().take(8).collect();
        Self::new(format!("{prefix}:{id}"))
    }

    /// The data.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The data as a `String`.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Builds an [`InlineKeyboardMarkup`] row by row.
///
/// ```
/// use mltb_telegram::format::KeyboardBuilder;
/// let markup = KeyboardBuilder::new()
///     .callback("Cancel", "c:3f2a9c1e")?
///     .url("Open", "https://example.com")
///     .row()
///     .callback("Refresh", "r")?
///     .build();
/// assert_eq!(markup.inline_keyboard.len(), 2);
/// assert!(KeyboardBuilder::new().callback("Too long", "x".repeat(65)).is_err());
/// # Ok::<(), mltb_telegram::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct KeyboardBuilder {
    rows: Vec<Vec<InlineKeyboardButton>>,
    current: Vec<InlineKeyboardButton>,
}

impl KeyboardBuilder {
    /// An empty keyboard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a callback button to the current row; refuses data that is empty or over 64 bytes.
    pub fn callback(mut self, text: impl Into<String>, data: impl Into<String>) -> Result<Self> {
        let data = CallbackData::new(data)?;
        self.current
            .push(InlineKeyboardButton::builder().text(text.into()).callback_data(data.into_inner()).build());
        Ok(self)
    }

    /// Adds a URL button to the current row.
    pub fn url(mut self, text: impl Into<String>, url: impl Into<String>) -> Self {
        self.current.push(InlineKeyboardButton::builder().text(text.into()).url(url.into()).build());
        self
    }

    /// Ends the current row (no-op when it is empty).
    pub fn row(mut self) -> Self {
        if !self.current.is_empty() {
            self.rows.push(std::mem::take(&mut self.current));
        }
        self
    }

    /// The markup.
    pub fn build(self) -> InlineKeyboardMarkup {
        let this = self.row();
        InlineKeyboardMarkup::builder().inline_keyboard(this.rows).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_limits_count_bytes() {
        assert!(CallbackData::new("").is_err());
        assert!(CallbackData::new("x".repeat(64)).is_ok());
        // 22 three-byte characters are 66 bytes.
        let err = CallbackData::new("€".repeat(22)).unwrap_err();
        assert!(err.to_string().contains("66 bytes"), "{err}");
        assert_eq!(CallbackData::short("c", "abc").unwrap().as_str(), "c:abc");
    }

    #[test]
    fn builder_rows() {
        let m = KeyboardBuilder::new().callback("a", "1").unwrap().row().row().build();
        assert_eq!(m.inline_keyboard.len(), 1);
        assert_eq!(m.inline_keyboard[0][0].callback_data.as_deref(), Some("1"));
    }
}
