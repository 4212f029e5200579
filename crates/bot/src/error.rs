//! The bot's errors.

/// Why the bot could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration does not make a working bot.
    #[error("configuration: {0}")]
    Config(String),
    /// A part of the bot could not start (the database, Telegram, aria2, …).
    #[error("{0}")]
    Start(String),
}
