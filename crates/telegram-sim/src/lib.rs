//! A faithful Telegram Bot API server on loopback, for tests and offline runs of a bot.
//!
//! [`Sim`] serves the Bot API methods a mirror/leech bot uses, with Telegram's exact error
//! strings, status codes, limits and flood control, so that a real client (frankenstein,
//! teloxide, curl) can be pointed at it. Tests inject what users do ([`Sim::send_text`],
//! [`Sim::press_button`], [`Sim::send_document`], [`Sim::inject_raw_update`]), observe what
//! the bot did ([`Sim::sent`], [`Sim::message`], [`Sim::callback_answers`], [`Sim::stats`])
//! and inject failures ([`Sim::inject_fault`]).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_telegram_sim::{Fault, Sim, SimConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Sim::start(SimConfig::default()).await?;
//! let update_id = sim.send_text(42, 42, "/start");
//!
//! // The bot side: any HTTP client will do.
//! let http = reqwest::Client::new();
//! let base = format!("{}/bot{}", sim.api_url(), sim.token());
//! let updates: serde_json::Value =
//!     http.get(format!("{base}/getUpdates?timeout=5")).send().await?.json().await?;
//! assert_eq!(updates["result"][0]["update_id"], update_id);
//! assert_eq!(updates["result"][0]["message"]["text"], "/start");
//!
//! let sent = http
//!     .post(format!("{base}/sendMessage"))
//!     .json(&serde_json::json!({ "chat_id": 42, "text": "hello" }))
//!     .send()
//!     .await?;
//! assert_eq!(sent.status(), 200);
//! let log = sim.wait_for_sent(1, Duration::from_secs(5)).await?;
//! assert_eq!(log[0].text.as_deref(), Some("hello"));
//!
//! // The next call fails with 429 and a Retry-After header.
//! sim.inject_fault(Fault::TooManyRequests { retry_after: 3 }, 1);
//! let limited = http.get(format!("{base}/getMe")).send().await?;
//! assert_eq!(limited.status(), 429);
//! assert_eq!(limited.headers()["retry-after"], "3");
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! No optional features. The binary `mltb-telegram-sim` runs the same server for scripts,
//! driven through the control API under `/_sim/` (routes in the README).
//!
//! - Routing: `GET|POST /bot<token>/<method>` (method names case-insensitive), 401
//!   `Unauthorized` for another token, 404 `Not Found: method not found`.
//! - Parameters from the query string and JSON, urlencoded or multipart bodies (chunked
//!   or not); in multipart, objects such as `reply_markup` are JSON text.
//! - Methods: `getMe`, `getUpdates` (offset confirmation, negative offset, `limit`,
//!   persistent `allowed_updates`, long poll, 409 for the older of two polls),
//!   `sendMessage`, `editMessageText`, `editMessageReplyMarkup`, `deleteMessage`,
//!   `answerCallbackQuery`, `sendDocument`, `sendVideo`, `sendPhoto`, `sendMediaGroup`,
//!   `getFile` and file downloads, `sendChatAction`, `setMyCommands`, `getMyCommands`,
//!   `setWebhook`, `deleteWebhook`, `getWebhookInfo`.
//! - Limits of [`Mode::Cloud`] (413 over the upload limit, `file is too big` over the
//!   download limit) and [`Mode::Local`] (`file:///abs/path` inputs, absolute `file_path`).
//! - Flood control ([`RateLimits`]) on sends and edits: 429 with `parameters.retry_after`
//!   and a `Retry-After` header; 403 `Forbidden: bot was blocked by the user` for chats
//!   marked with [`Sim::set_blocked`].
//!
//! # Design
//!
//! - One `Mutex` over the whole state, never held across an `.await`; the sim is a test
//!   double, so simplicity beats throughput.
//! - Time is tokio's clock, so tests on a paused clock control rate limits, long polls and
//!   [`Fault::Slow`]; [`Outbound::at`] is that clock converted to `std::time::Instant`.
//! - The server is hyper's http1 connection driven by hand over an axum router, so that
//!   [`Fault::DropConnection`] can close the socket without answering.
//! - Uploads stream to temporary files while they are hashed and counted: memory stays
//!   flat whatever the file size. A file part over the limit stops being stored at once;
//!   the rest of the body (up to 256 MiB) is read and discarded before the 413 is sent,
//!   because a client still writing would otherwise see a connection reset instead of
//!   the answer. A `Content-Length` over the limit plus 1 MiB of framing is refused
//!   without storing anything.
//! - Text length is counted in Unicode code points, as tdlib does (`utf8_length` against
//!   `message_text_length_max`), after dropping HTML tags: the docs say "1-4096 characters
//!   after entities parsing". Markdown is counted as written, so a MarkdownV2 text near the
//!   limit may be refused here and accepted by Telegram, never the other way round.
//!   Entity offsets the sim produces (the `bot_command` of an injected command) are in
//!   UTF-16 code units, as Telegram's are.
//! - Rate limits: a token bucket per chat (`per_chat_per_sec`, `per_chat_burst` deep),
//!   sliding windows of 60 s per group (negative chat id) and 1 s globally. Only
//!   accepted calls count; an album (`sendMediaGroup`) counts once; edits count like
//!   sends; `answerCallbackQuery`, `deleteMessage` and `sendChatAction` are not limited.
//!   [`SimStats`] reports the densest windows actually accepted, so a test can assert that
//!   a client's own scheduler never relied on the burst allowance. While limits are off
//!   ([`Sim::set_rate_limits`]) accepted calls still count in the figures but not in the
//!   limiter's state.
//! - Tests on tokio's paused clock: the clock jumps to the next timer whenever the runtime
//!   waits on I/O, so use a client without timers (e.g. `reqwest` with
//!   `pool_idle_timeout(None)`) and expect the sim's own timers (long-poll deadlines,
//!   [`Fault::Slow`]) to fire as soon as nothing else is runnable.
//!
//! Not simulated: webhooks delivery (`setWebhook` only switches `getUpdates` to 409),
//! inline mode, payments, chats' members and permissions, URL inputs (answered with
//! `failed to get HTTP URL content`), parse-mode entity errors, media other than
//! documents, videos and photos.

mod api;
mod config;
mod control;
mod entities;
mod error;
mod inject;
mod ratelimit;
mod server;
mod sim;
mod state;
mod types;

pub use config::{MB, Mode, RateLimits, Retention, SimConfig};
pub use error::{Error, ErrorKind, Result};
pub use sim::Sim;
pub use types::{
    CallbackAnswer, ChatKind, Fault, FileRecord, MessageState, Outbound, Retained, SimChat, SimStats,
};
