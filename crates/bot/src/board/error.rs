//! The board's errors: a setting it cannot run with, and a button it refuses.

use std::time::Duration;

/// `Result` with the board's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A board that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range; the message names it and what is expected.
    #[error("board setting `{setting}` {reason}")]
    Config {
        /// The setting, as [`BoardConfig`](super::BoardConfig) names it.
        setting: &'static str,
        /// What is wrong and what would be accepted (never the value of a secret).
        reason: String,
    },
    /// [`Board::spawn`](super::Board::spawn) was called while its driver runs: two
    /// drivers would post two boards per chat.
    #[error("the board's driver is already running")]
    Running,
}

impl Error {
    pub(crate) fn config(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::Config { setting, reason: reason.into() }
    }
}

/// Why a button's callback data was refused by [`Signer::verify`](super::Signer::verify).
///
/// Its `Display` is written for logs; [`ButtonError::user_text`] is what the presser is
/// told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ButtonError {
    /// Not the board's encoding at all (another bot's button, or garbage).
    #[error("callback data is malformed: {reason}")]
    Malformed {
        /// What did not parse.
        reason: &'static str,
    },
    /// The signature does not match: forged or altered data, or another key.
    #[error("callback data has a bad signature")]
    BadSignature,
    /// Signed, but by a wire version this build does not read.
    #[error("callback data has unknown version {version}")]
    UnknownVersion {
        /// The version in the header.
        version: u8,
    },
    /// Signed, but an action this build does not know.
    #[error("callback data has unknown action {code}")]
    UnknownAction {
        /// The action code in the header.
        code: u8,
    },
    /// Signed for another chat's board: a button replayed where it does not belong.
    #[error("button of chat {signed} pressed in chat {pressed}")]
    WrongChat {
        /// The chat it was signed for.
        signed: i64,
        /// The chat it was pressed in.
        pressed: i64,
    },
    /// Older than its TTL.
    #[error("button expired ({age:?} old)")]
    Expired {
        /// How old it is.
        age: Duration,
    },
    /// Made more than a minute in the future (a clock that jumped back).
    #[error("button is dated in the future")]
    FromTheFuture,
}

impl ButtonError {
    /// What to tell the user who pressed the button (at most 200 characters, as
    /// `answerCallbackQuery` allows).
    pub fn user_text(&self) -> &'static str {
        match self {
            ButtonError::Expired { .. } | ButtonError::FromTheFuture => {
                "This button has expired. Use the buttons of the current status message."
            }
            _ => "This button is not valid here.",
        }
    }
}
