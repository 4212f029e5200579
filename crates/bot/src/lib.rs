//! The mltb bot: what a user talks to. It parses commands, authorizes them, submits
//! tasks to the engine ([`mltb_engine`]), keeps one live status board per chat, and
//! reads its configuration from one TOML file with environment overrides.
//!
//! The binary (`bins/mltb`) composes it with the engine, the store, the Telegram client
//! and the HTTP API; this crate knows commands, chats and the status board, but no HTTP.

pub mod auth;
pub mod board;
mod bot;
pub mod check;
pub mod config;
mod error;
pub mod launch;
pub mod limits;
pub mod logging;

pub use bot::{Bot, BotParts, Exit, NoObserver, Observer};
pub use error::Error;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
