//! The live status board: one message per chat that lists the chat's running tasks and
//! keeps itself up to date, with pages, a refresh button and cancel buttons behind a
//! confirmation; and the messages that tell a chat a task completed or failed.
//!
//! # Example
//!
//! The bot builds one [`Board`] over its engine and its one [`Scheduler`], starts the
//! driver, and hands it every callback query:
//!
//! ```no_run
//! use std::time::Duration;
//! use frankenstein::AsyncTelegramApi;
//! use frankenstein::types::CallbackQuery;
//! use mltb_bot::board::{Board, BoardConfig, SigningKey, TaskUserOnly};
//! use mltb_engine::Engine;
//! use mltb_store::SqliteBackend;
//! use mltb_telegram::Client;
//! use mltb_telegram::scheduler::Scheduler;
//!
//! # async fn run(engine: Engine<SqliteBackend>, client: Client, scheduler: Scheduler,
//! #              key_from_config: Vec<u8>, query: CallbackQuery) -> Result<(), Box<dyn std::error::Error>> {
//! let config = BoardConfig::new(SigningKey::new(key_from_config)?)
//!     .interval(Duration::from_secs(10))
//!     .page_size(4);
//! let board = Board::builder(engine, scheduler.clone(), config)
//!     .authorizer(TaskUserOnly) // the bot passes its own: task user, owner, sudo
//!     .build()?;
//! let driver = board.spawn()?;
//!
//! // In the update loop, for each callback query:
//! let reply = board.handle_callback(&query).await;
//! client.answer_callback_query(&reply.answer(query.id.clone())).await?;
//!
//! // At shutdown: the driver first, then the engine and the scheduler.
//! driver.stop().await;
//! scheduler.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What users see
//!
//! A message headed `Tasks: N` (and `page p/P` when there are more tasks than
//! [`BoardConfig::page_size`]); per task its id and name, its state and the program
//! moving its bytes (aria2 downloading; Telegram or rclone uploading), a progress bar,
//! done of total, speed, ETA and time elapsed since it was submitted — or, while queued,
//! why it waits; then counts and overall speeds. Buttons: one `✖ Cancel #id` per task on
//! the page, and `◀ Prev` `⟳ Refresh` `Next ▶` (only `⟳ Refresh` on a single page).
//! Cancel takes two presses: the first (by someone the [`Authorizer`] allows) turns the
//! task's button into `✔ Confirm cancel #id` and `↩ Back`, which only that user can
//! press, for [`BoardConfig::confirm_ttl`].
//!
//! When a task completes, its chat gets a message with its files: a link to each
//! uploaded message for a leech in a supergroup or channel (`https://t.me/c/…`), a reply
//! to the first uploaded file in chats without links, the remote paths for a mirror.
//! When it fails, a message with the reason. When it is cancelled, one line naming who
//! cancelled it (when this process was told: a `/cancel` through [`Board::cancel`] or
//! the board's button; not a cancel through the HTTP API). When the chat has no tasks
//! left, the board message is deleted.
//!
//! # Design
//!
//! - **Rendering is pure.** [`render`] makes the text and keyboard from the tasks, the
//!   page, the clock and a pending confirmation; [`notices`] makes the completion and
//!   failure messages from the store's records. Both are unit- and property-tested
//!   (under 3 500 of Telegram's 4 096 characters, callback data within 64 bytes, every
//!   task on exactly one page). Names are cut to [`NAME_CHARS`]; everything from users or
//!   the network goes through [`escape`](mltb_telegram::format::escape).
//! - **Buttons are signed.** Callback data carries the chat, the action, the task or
//!   page, the user allowed to act and the time, with a 96-bit HMAC-SHA256 tag under
//!   [`BoardConfig::signing_key`] ([`Signer`]). A forged or altered button, one copied
//!   from another chat, an expired one or an action this build does not know is refused
//!   with a typed [`ButtonError`] before anything else is looked at. Whether the presser
//!   may cancel is the bot's call, through [`Authorizer`], asked at both presses.
//! - **One driver, one scheduler.** The driver ([`Board::spawn`]) wakes on the engine's
//!   changes, on button presses and on the refresh interval. A change in a chat's set of
//!   tasks or their states renders that chat at once; progress waits for the tick. Every
//!   send, edit and delete goes through the bot's [`Scheduler`], so the board never
//!   exceeds Telegram's limits and shares them fairly with uploads; at most one board
//!   request per chat is in flight, and an edit is sent only when the text or buttons
//!   differ from what the message shows ("message is not modified" counts as shown).
//! - **The store remembers the boards.** A posted board's message id is recorded
//!   (`set_status_message`); a deleted one is forgotten. After a restart the driver edits
//!   the recorded message, or posts anew when Telegram says it is gone ("message to edit
//!   not found") and records the new id. Other failures back off per chat (the interval,
//!   doubling, up to 10 minutes).
//! - **Each end is told once, restarts included.** The store keeps when a task's end was
//!   announced (`tasks.announced_at`). On every look that sees the set of tasks change,
//!   and on every tick, the driver asks the store for finished tasks not announced yet
//!   (oldest first, 32 at a time): those that just left the engine, those that started
//!   and ended between two looks, and those that ended while no board ran (before a
//!   restart, or while the bot was down). Each is marked before its message is sent
//!   (`mark_announced` answers `true` to one caller only, so two boards on one store do
//!   not both tell it); a send that fails for a passing reason (network, 5xx, 429, the
//!   scheduler closed at shutdown) takes the mark back, up to 5 times, and a send that
//!   cannot succeed (the chat is gone, the bot was blocked) keeps it. A crash between
//!   the mark and the send loses that one message rather than telling it twice.
//!
//! [`Scheduler`]: mltb_telegram::scheduler::Scheduler

mod auth;
mod callback;
mod driver;
mod error;
mod handle;
mod notice;
mod render;
mod sign;

use std::time::Duration;

pub use self::auth::{Authorizer, TaskUserOnly};
pub use self::callback::{CallbackOutcome, CallbackReply};
pub use self::error::{ButtonError, Error, Result};
pub use self::handle::{Board, BoardBuilder, BoardTask};
pub use self::notice::{MAX_NOTICE_MESSAGES, NOTICE_UNITS, Notice, message_link, notices};
pub use self::render::{
    Confirm, Frame, MAX_PAGE_SIZE, NAME_CHARS, Rendered, TaskLine, page_count, page_range, render,
};
pub use self::sign::{Action, Button, MIN_KEY_BYTES, Signer, SigningKey};

/// How the board runs. Build it with [`BoardConfig::new`] and the setters; the board
/// checks it with [`validate`](Self::validate).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BoardConfig {
    /// How often every board is re-rendered (edited only if it changed). Default 10 s;
    /// 1 s to 1 h. Telegram allows about one message a second per chat and 20 a minute
    /// per group, edits included: the scheduler holds those limits whatever the
    /// interval, but an interval under 3 s in busy groups leaves little room for uploads
    /// and completion messages.
    pub interval: Duration,
    /// Tasks per page. Default 4; 1 to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// The key that signs the buttons, at least [`MIN_KEY_BYTES`] bytes. Keep it across
    /// restarts, or the buttons of boards taken over after a restart stop working until
    /// their next refresh.
    pub signing_key: SigningKey,
    /// How long the board's buttons are accepted. Default 1 h; at least twice the
    /// interval, at most 7 days.
    pub button_ttl: Duration,
    /// How long "Confirm cancel" and "Back" are shown and accepted. Default 60 s; 5 s to
    /// 1 h.
    pub confirm_ttl: Duration,
}

impl BoardConfig {
    /// The defaults, signing with `signing_key`.
    pub fn new(signing_key: SigningKey) -> Self {
        Self {
            interval: Duration::from_secs(10),
            page_size: 4,
            signing_key,
            button_ttl: Duration::from_secs(3600),
            confirm_ttl: Duration::from_secs(60),
        }
    }

    /// The refresh interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Tasks per page.
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// How long buttons are accepted.
    pub fn button_ttl(mut self, ttl: Duration) -> Self {
        self.button_ttl = ttl;
        self
    }

    /// How long a cancel confirmation lasts.
    pub fn confirm_ttl(mut self, ttl: Duration) -> Self {
        self.confirm_ttl = ttl;
        self
    }

    /// Checks every setting; the error names the first one out of range and its range.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mltb_bot::board::{BoardConfig, SigningKey};
    /// let config = BoardConfig::new(SigningKey::new([1u8; 32])?);
    /// assert!(config.clone().validate().is_ok());
    /// let err = config.interval(Duration::from_millis(200)).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "board setting `interval` is 200ms; expected 1s to 1h");
    /// # Ok::<(), mltb_bot::board::Error>(())
    /// ```
    pub fn validate(&self) -> Result<()> {
        let range = |setting, value: Duration, min: Duration, max: Duration, expected: &str| {
            if value < min || value > max {
                Err(Error::config(setting, format!("is {value:?}; expected {expected}")))
            } else {
                Ok(())
            }
        };
        let secs = Duration::from_secs;
        range("interval", self.interval, secs(1), secs(3600), "1s to 1h")?;
        range("confirm_ttl", self.confirm_ttl, secs(5), secs(3600), "5s to 1h")?;
        range(
            "button_ttl",
            self.button_ttl,
            self.interval.saturating_mul(2),
            secs(7 * 86_400),
            "at least twice the interval and at most 7 days",
        )?;
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::config(
                "page_size",
                format!("is {}; expected 1 to {MAX_PAGE_SIZE}", self.page_size),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_setting() {
        let config = BoardConfig::new(SigningKey::new([1u8; 32]).unwrap());
        let cases = [
            (config.clone().page_size(0), "page_size"),
            (config.clone().page_size(MAX_PAGE_SIZE + 1), "page_size"),
            (config.clone().confirm_ttl(Duration::from_secs(1)), "confirm_ttl"),
            (config.clone().interval(Duration::from_secs(3600)), "button_ttl"),
            (config.clone().interval(Duration::from_secs(7200)), "interval"),
        ];
        for (c, setting) in cases {
            let err = c.validate().unwrap_err();
            assert!(matches!(&err, Error::Config { setting: s, .. } if *s == setting), "{err}");
        }
        assert!(!format!("{config:?}").contains("[1, 1"), "the key is redacted");
    }
}
