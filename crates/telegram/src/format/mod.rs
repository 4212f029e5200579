//! Message formatting: HTML escaping, splitting long text into parts Telegram accepts,
//! human-readable sizes, speeds and ETAs, progress bars, and inline keyboards whose
//! callback data always fits Telegram's 64 bytes.

mod html;
mod human;
#[cfg(feature = "client")]
mod keyboard;

pub use self::html::{
    MAX_MESSAGE_UNITS, escape, escape_attr, split_html, split_text, text_content, utf16_len,
};
pub use self::human::{eta, human_size, progress_bar, speed};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use self::keyboard::{CallbackData, KeyboardBuilder, MAX_CALLBACK_DATA_BYTES};
